/*
 * scheme.c - where a node's points land on the 32-bit circle, per scheme
 * (keys: hash_keys.c). The peer presets live in preset_*.c, each opening with
 * its exact rule and the quirks it copies.
 *
 * native:     point i of a node at mix32(CRC32(name || LE32(i))). The 4-byte
 *             little-endian suffix makes (name, i) -> bytes injective, and
 *             mix32 undoes CRC32's linearity, which otherwise clumps the
 *             points of one node.
 * groupcache: point i at CRC32(decimal(i) || name), as Go's groupcache
 *             consistenthash does (its collisions included, e.g.
 *             "11" || "node" == "1" || "1node").
 * ketama, twemproxy: preset_ketama.c, preset_twemproxy.c.
 * nginx:      preset_nginx.c.
 * redis-cluster: no points; only buckets (chash_create), whose buckets are
 *             the slots (hash_keys.c).
 *
 * Invariant: chash_scheme_points() writes exactly chash_scheme_point_count()
 * points, and both depend only on the node and `totals`.
 */
#include "preset.h"


scheme_totals chash_scheme_totals(const algo_nodes *nodes) {
    scheme_totals t = {nodes->count, 0};
    for (size_t i = 0; i < nodes->count; i++) t.weight_sum += nodes->nodes[i].weight;
    return t;
}

bool chash_scheme_counts_are_global(chash_scheme scheme) {
    return scheme == CHASH_SCHEME_KETAMA || scheme == CHASH_SCHEME_TWEMPROXY;
}

uint64_t chash_scheme_point_count(const algo_ctx *ctx, const scheme_totals *totals,
                                  const chash_node_rec *rec) {
    if (chash_scheme_counts_are_global(ctx->scheme))
        return chash_ketama_point_count(ctx->vnodes, totals, rec->weight);
    return (uint64_t)rec->weight * ctx->vnodes;
}

void chash_scheme_points(const algo_ctx *ctx, const scheme_totals *totals,
                         const chash_node_rec *rec, uint32_t *out) {
    uint64_t count = chash_scheme_point_count(ctx, totals, rec);
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
    case CHASH_SCHEME_GROUPCACHE: {
        char dec[24];
        size_t n;
        chash_dec_start(dec, &n);
        for (uint64_t i = 0; i < count; i++, chash_dec_next(dec, &n))
            out[i] = chash_crc32(chash_crc32(0, dec, n), rec->name, rec->name_len);
        return;
    }
    case CHASH_SCHEME_KETAMA: chash_preset_ketama_points(rec, count, out); return;
    case CHASH_SCHEME_TWEMPROXY: chash_preset_twemproxy_points(rec, count, out); return;
    case CHASH_SCHEME_NGINX: chash_preset_nginx_points(rec, count, out); return;
    case CHASH_SCHEME_REDIS_CLUSTER: return; /* never on a ring: chash_create refuses */
    }
}
