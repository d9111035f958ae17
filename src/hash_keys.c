/*
 * hash_keys.c - the key hashes by enum and by name, and where a key lands
 * under a config: hash tag first, then the key hash, then the scheme's rule
 * for empty keys.
 *
 * Invariant: hash_names[] and chash_hash32() cover every chash_hash value
 * below CHASH_HASH_END (the switch has no default, so the compiler flags a
 * missing one). chash_redis_slot() and a CHASH_SCHEME_REDIS_CLUSTER
 * placement go through the same chash_config_key_hash, so they cannot
 * disagree.
 */
#include "internal.h"

static const char *const hash_names[CHASH_HASH_END] = {
    [CHASH_HASH_DEFAULT] = "default",
    [CHASH_HASH_CRC32A] = "crc32a",
    [CHASH_HASH_MD5] = "md5",
    [CHASH_HASH_FNV1A_64] = "fnv1a_64",
    [CHASH_HASH_FNV1_64] = "fnv1_64",
    [CHASH_HASH_FNV1A_32] = "fnv1a_32",
    [CHASH_HASH_FNV1_32] = "fnv1_32",
    [CHASH_HASH_CRC32_15] = "crc32",
    [CHASH_HASH_ONE_AT_A_TIME] = "one_at_a_time",
    [CHASH_HASH_MURMUR] = "murmur",
    [CHASH_HASH_JENKINS] = "jenkins",
    [CHASH_HASH_HSIEH] = "hsieh",
    [CHASH_HASH_CRC16] = "crc16",
};

const char *chash_hash_name(chash_hash hash) {
    return (unsigned)hash < CHASH_HASH_END ? hash_names[hash] : NULL;
}

int chash_hash_from_name(const char *name, chash_hash *out) {
    if (!name || !out) return CHASH_EINVAL;
    for (int i = 0; i < CHASH_HASH_END; i++)
        if (strcmp(name, hash_names[i]) == 0) {
            *out = (chash_hash)i;
            return CHASH_OK;
        }
    return CHASH_EUNKNOWN;
}

/* MD5 digest bytes 0..3 as a little-endian word, as both peers read it. */
static uint32_t md5_word0(const void *buf, size_t len) {
    uint8_t d[16];
    chash_md5(buf, len, d);
    return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

uint32_t chash_hash32(chash_hash hash, const void *buf, size_t len) {
    const uint8_t *p = buf;
    if (!p && len > 0) return 0;
    switch (hash) {
    case CHASH_HASH_DEFAULT:
    case CHASH_HASH_CRC32A: return chash_crc32(0, p, len);
    case CHASH_HASH_MD5: return md5_word0(p, len);
    case CHASH_HASH_FNV1A_64: return chash_hash_fnv1a_64(p, len);
    case CHASH_HASH_FNV1_64: return chash_hash_fnv1_64(p, len);
    case CHASH_HASH_FNV1A_32: return chash_hash_fnv1a_32(p, len);
    case CHASH_HASH_FNV1_32: return chash_hash_fnv1_32(p, len);
    case CHASH_HASH_CRC32_15: return chash_hash_crc32_15(p, len);
    case CHASH_HASH_ONE_AT_A_TIME: return chash_hash_one_at_a_time(p, len);
    case CHASH_HASH_MURMUR: return chash_hash_murmur(p, len);
    case CHASH_HASH_JENKINS: return chash_hash_jenkins(p, len);
    case CHASH_HASH_HSIEH: return chash_hash_hsieh(p, len);
    case CHASH_HASH_CRC16: return chash_hash_crc16(p, len);
    }
    return 0;
}

chash_hash chash_scheme_default_hash(chash_scheme scheme) {
    switch (scheme) {
    case CHASH_SCHEME_KETAMA: return CHASH_HASH_MD5;
    case CHASH_SCHEME_TWEMPROXY: return CHASH_HASH_FNV1A_64;
    case CHASH_SCHEME_REDIS_CLUSTER: return CHASH_HASH_CRC16;
    case CHASH_SCHEME_NATIVE:
    case CHASH_SCHEME_GROUPCACHE:
    case CHASH_SCHEME_NGINX: break;
    }
    return CHASH_HASH_CRC32A;
}

bool chash_hash_tag_valid(const char tag[4]) {
    if (tag[0] == '\0') return tag[1] == '\0';
    return tag[1] != '\0' && tag[2] == '\0';
}

void chash_config_key_part(const chash_config *cfg, const uint8_t **key, size_t *key_len) {
    const uint8_t *p = *key;
    size_t len = *key_len;
    if (cfg->hash_tag[0] != '\0' && len > 0) {
        /* twemproxy: the first open mark, then the first close mark after
         * it; an empty or unclosed tag leaves the key whole. */
        const uint8_t *open = memchr(p, (unsigned char)cfg->hash_tag[0], len);
        if (open) {
            size_t after = (size_t)(open - p) + 1;
            const uint8_t *close =
                memchr(open + 1, (unsigned char)cfg->hash_tag[1], len - after);
            if (close && close - open > 1) {
                *key = open + 1;
                *key_len = (size_t)(close - open) - 1;
            }
        }
    }
}

uint32_t chash_config_part_hash(const chash_config *cfg, const uint8_t *p, size_t len) {
    /* twemproxy hashes no empty key: it lands at 0 (the lowest point). */
    if (len == 0 && cfg->scheme == CHASH_SCHEME_TWEMPROXY) return 0;
    /* The slot itself rather than the CRC it comes from, so chash_key_hash
     * and chash_lookup_hash speak in slots, as Redis does. */
    if (cfg->scheme == CHASH_SCHEME_REDIS_CLUSTER)
        return chash_hash_crc16(p, len) & (CHASH_REDIS_SLOTS - 1);
    chash_hash h = cfg->key_hash != CHASH_HASH_DEFAULT ? cfg->key_hash
                                                      : chash_scheme_default_hash(cfg->scheme);
    /* The common cases first, without the switch's indirect jump. */
    if (h == CHASH_HASH_CRC32A) return chash_crc32(0, p, len);
    if (h == CHASH_HASH_MD5) return md5_word0(p, len);
    return chash_hash32(h, p, len);
}

uint32_t chash_config_key_hash(const chash_config *cfg, const void *key, size_t len) {
    const uint8_t *p = key;
    chash_config_key_part(cfg, &p, &len);
    return chash_config_part_hash(cfg, p, len);
}

/* What chash_create makes of any CHASH_SCHEME_REDIS_CLUSTER config: Redis's
 * hash tag is twemproxy's rule with "{}" (the first '{', the first '}' after
 * it, at least one byte between). */
static const chash_config redis_cluster_config = {
    .struct_size = sizeof(chash_config),
    .algo = CHASH_ALGO_BUCKETS,
    .scheme = CHASH_SCHEME_REDIS_CLUSTER,
    .key_hash = CHASH_HASH_CRC16,
    .hash_tag = "{}",
    .bucket_count = CHASH_REDIS_SLOTS,
};

uint32_t chash_redis_slot(const void *key, size_t key_len) {
    if (!key && key_len > 0) return 0;
    return chash_config_key_hash(&redis_cluster_config, key, key_len);
}

bool chash_redis_cluster_normalise(chash_config *cfg) {
    /* Redis fixes all of these. The values chash_get_config reports pass
     * too, so a config read back creates the same placement. */
    const chash_config *r = &redis_cluster_config;
    bool ok = cfg->algo == r->algo && cfg->bucket_by == r->bucket_by &&
              (cfg->bucket_count == 0 || cfg->bucket_count == r->bucket_count) &&
              (cfg->key_hash == CHASH_HASH_DEFAULT || cfg->key_hash == r->key_hash) &&
              (cfg->hash_tag[0] == '\0' || memcmp(cfg->hash_tag, r->hash_tag, 3) == 0);
    if (ok) {
        cfg->bucket_count = r->bucket_count;
        cfg->key_hash = r->key_hash;
        memcpy(cfg->hash_tag, r->hash_tag, sizeof cfg->hash_tag);
    }
    return ok;
}
