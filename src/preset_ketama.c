/*
 * preset_ketama.c - CHASH_SCHEME_KETAMA: libmemcached 1.x weighted ketama
 * (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED; update_continuum() in hosts.cc,
 * dispatch_host() in hash.cc), and the point rule twemproxy shares with it.
 *
 * The rule, for nodes 0..N-1 with weights w (sum W), all live:
 *   - node name "host:port" as the user configured the server (not
 *     resolved). The hashed prefix is "host" when the port is 11211 (or the
 *     name has no ":digits" port, which libmemcached reads as 11211), else
 *     "host:port" with the port in decimal;
 *   - points per node: pct = float(w) / float(W); then
 *     floor(float(float(float(pct * vnodes) / 4) * float(N))) * 4, each step
 *     rounded to IEEE float32 as an SSE build of libmemcached does (vnodes
 *     160). The float rounding gives 156 instead of 160 points to every node
 *     of some equal-weight pools (first at N = 25) - copied on purpose;
 *   - for k = 0 .. points/4 - 1: d = MD5(prefix "-" decimal(k)); the node
 *     gets the four little-endian words of d as points;
 *   - a key lands at MD5 word 0 of the key; its owner is the first point at
 *     or after it, wrapping past the top (lower_bound);
 *   - equal points: libmemcached's comparator puts the lower server index
 *     first, and that one owns them (the ring's tie order for this scheme);
 *   - a single server owns every key (libmemcached skips hashing, the ring
 *     has only its points).
 * Not copied: libmemcached aborts beyond 100 servers (MEMCACHED_CONTINUUM_SIZE
 * assertion) - we have no limit; auto-ejection, SORT_HOSTS and the namespace
 * prefix (HASH_WITH_NAMESPACE) are not modelled. Bytes >= 0x80 in keys and
 * names need no care: MD5 reads unsigned bytes on every CPU.
 */
#include "preset.h"

#include <stdio.h>

uint64_t chash_ketama_point_count(uint32_t vnodes, const scheme_totals *totals, uint32_t weight) {
    /* Each step stored to a float: with FLT_EVAL_METHOD 0 (SSE) that is the
     * peers' arithmetic; C11 rounds assignments even on x87. The peers' added
     * 1e-10 cannot change a float at or above 1/1024, nor floor() below it. */
    float pct = (float)weight / (float)totals->weight_sum;
    float scaled = pct * (float)vnodes;
    scaled = scaled / 4.0f;
    scaled = scaled * (float)totals->node_count;
    /* floor(): the value is never negative, so truncation is floor. */
    return (uint64_t)scaled * 4;
}

void chash_ketama_points_from(const uint8_t *prefix, size_t prefix_len, uint64_t count,
                              uint32_t *out) {
    /* "prefix-k": the prefix is copied once and only the digits change. */
    uint8_t buf[CHASH_NAME_MAX + 32];
    memcpy(buf, prefix, prefix_len);
    buf[prefix_len] = '-';
    char *digits = (char *)buf + prefix_len + 1;
    size_t n;
    chash_dec_start(digits, &n);
    for (uint64_t k = 0; k < count / 4; k++, chash_dec_next(digits, &n)) {
        uint8_t d[16];
        chash_md5(buf, prefix_len + 1 + n, d);
        for (int x = 0; x < 4; x++)
            out[4 * k + (uint64_t)x] = (uint32_t)d[4 * x] | (uint32_t)d[4 * x + 1] << 8 |
                                       (uint32_t)d[4 * x + 2] << 16 |
                                       (uint32_t)d[4 * x + 3] << 24;
    }
}

void chash_preset_ketama_points(const chash_node_rec *rec, uint64_t count, uint32_t *out) {
    /* Split "host:port" at the last colon when 1..5 digits follow it. */
    size_t len = rec->name_len, colon = len;
    for (size_t i = len; i > 0; i--)
        if (rec->name[i - 1] == ':') {
            colon = i - 1;
            break;
        }
    size_t digits = len - colon - (colon < len);
    bool has_port = colon < len && digits >= 1 && digits <= 5;
    unsigned port = 0;
    for (size_t i = colon + 1; has_port && i < len; i++) {
        has_port = rec->name[i] >= '0' && rec->name[i] <= '9';
        port = port * 10 + (unsigned)(rec->name[i] & 0x0f);
    }
    if (!has_port) {
        chash_ketama_points_from(rec->name, len, count, out);
        return;
    }
    /* libmemcached stores the port as a number; 0 means the default. */
    if (port == 0 || port == 11211) {
        chash_ketama_points_from(rec->name, colon, count, out);
        return;
    }
    uint8_t prefix[CHASH_NAME_MAX + 8];
    memcpy(prefix, rec->name, colon);
    int n = snprintf((char *)prefix + colon, 8, ":%u", port);
    chash_ketama_points_from(prefix, colon + (size_t)n, count, out);
}
