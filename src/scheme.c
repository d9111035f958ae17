/*
 * scheme.c - where keys and points land on the 32-bit circle, per scheme.
 *
 * native:     key at CRC32(key); point i of a node at
 *             mix32(CRC32(name || LE32(i))). The 4-byte little-endian suffix
 *             makes (name, i) -> bytes injective, and mix32 undoes CRC32's
 *             linearity, which otherwise clumps the points of one node.
 * groupcache: key at CRC32(key); point i at CRC32(decimal(i) || name), as
 *             Go's groupcache consistenthash does (its collisions included,
 *             e.g. "11" || "node" == "1" || "1node").
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>

uint32_t chash_scheme_key_hash(chash_scheme scheme, const void *key, size_t key_len) {
    (void)scheme; /* both schemes so far put keys at their plain CRC32 */
    return chash_crc32(0, key, key_len);
}

uint64_t chash_scheme_point_count(const algo_ctx *ctx, const chash_node_rec *rec) {
    return (uint64_t)rec->weight * ctx->vnodes;
}

void chash_scheme_points(const algo_ctx *ctx, const chash_node_rec *rec, uint32_t *out) {
    uint64_t count = chash_scheme_point_count(ctx, rec);
    switch (ctx->scheme) {
    case CHASH_SCHEME_NATIVE: {
        /* CRC32 continues over the suffix, so the name is hashed once. */
        uint32_t name_crc = chash_crc32(0, rec->name, rec->name_len);
        for (uint64_t i = 0; i < count; i++) {
            uint8_t le[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16),
                             (uint8_t)(i >> 24)};
            out[i] = chash_mix32(chash_crc32(name_crc, le, sizeof le));
        }
        return;
    }
    case CHASH_SCHEME_GROUPCACHE:
        for (uint64_t i = 0; i < count; i++) {
            char dec[24];
            int n = snprintf(dec, sizeof dec, "%" PRIu64, i);
            out[i] = chash_crc32(chash_crc32(0, dec, (size_t)n), rec->name, rec->name_len);
        }
        return;
    case CHASH_SCHEME__COUNT:
        break;
    }
}
