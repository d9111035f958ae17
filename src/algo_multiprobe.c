/*
 * algo_multiprobe.c - multi-probe consistent hashing (Appleton & O'Reilly,
 * "Multi-Probe Consistent Hashing", arXiv 1505.00062, 2015): one ring point
 * per node (per unit of weight), and each key hashed k times; of the points
 * found at or after each probe, the nearest one owns the key.
 *
 * Guarantee: a key's owner depends on the ring points alone, so adding a
 * node moves keys only to it and removing one moves only its keys: minimal
 * disruption, as on the ring. Balance without virtual nodes: k probes give a
 * peak-to-mean load of about 1 + 1/(k - 1) (21 probes: about 1.05) with N
 * points instead of the ring's N * 160. Cost: k ring searches per lookup.
 *
 * The ring is algo_ring.c's, built with one point per unit of weight and
 * used only through its table (point_index and point). Schemes whose point
 * counts depend on the whole membership (ketama, twemproxy) cannot give one
 * point per node: CHASH_EINVAL at creation.
 *
 * Invariant: ring is the ring of exactly this membership at 1 vnode.
 */
#include "internal.h"

typedef struct multiprobe_state {
    void *ring;
    uint32_t probe_count;
} multiprobe_state;

/* The ring's context: one point per unit of weight. */
static algo_ctx ring_ctx(const algo_ctx *ctx) {
    algo_ctx r = *ctx;
    r.vnodes = 1;
    return r;
}

static void multiprobe_free(const algo_ctx *ctx, void *state) {
    multiprobe_state *s = state;
    if (!s) return;
    algo_ctx rc = ring_ctx(ctx);
    if (s->ring) chash_algo_ring.free(&rc, s->ring);
    chash_mem_free(ctx->alloc, s);
}

/* Wraps a fresh ring state (NULL on failure, which frees nothing else). */
static int wrap(const algo_ctx *ctx, int rc, void *ring, void **out) {
    if (rc != CHASH_OK) return rc;
    multiprobe_state *s = chash_mem_alloc(ctx->alloc, sizeof *s);
    if (!s) {
        algo_ctx r = ring_ctx(ctx);
        chash_algo_ring.free(&r, ring);
        return CHASH_ENOMEM;
    }
    s->ring = ring;
    s->probe_count = ctx->probe_count;
    *out = s;
    return CHASH_OK;
}

static int build(const algo_ctx *ctx, const algo_nodes *nodes, void **out) {
    if (chash_scheme_counts_are_global(ctx->scheme)) return CHASH_EINVAL;
    algo_ctx r = ring_ctx(ctx);
    void *ring = NULL;
    int rc = chash_algo_ring.build(&r, nodes, &ring);
    return wrap(ctx, rc, ring, out);
}

static int added(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                 void **out) {
    algo_ctx r = ring_ctx(ctx);
    void *ring = NULL;
    int rc = chash_algo_ring.added(&r, ((const multiprobe_state *)old)->ring, nodes, index, &ring);
    return wrap(ctx, rc, ring, out);
}

static int removed(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                   void **out) {
    algo_ctx r = ring_ctx(ctx);
    void *ring = NULL;
    int rc =
        chash_algo_ring.removed(&r, ((const multiprobe_state *)old)->ring, nodes, index, &ring);
    return wrap(ctx, rc, ring, out);
}

static int reweighted(const algo_ctx *ctx, const void *old, const algo_nodes *nodes,
                      size_t index, void **out) {
    algo_ctx r = ring_ctx(ctx);
    void *ring = NULL;
    int rc = chash_algo_ring.reweighted(&r, ((const multiprobe_state *)old)->ring, nodes, index,
                                        &ring);
    return wrap(ctx, rc, ring, out);
}

static int multiprobe_clone(const algo_ctx *ctx, const void *state, void **out) {
    algo_ctx r = ring_ctx(ctx);
    void *ring = NULL;
    int rc = chash_algo_ring.clone(&r, ((const multiprobe_state *)state)->ring, &ring);
    return wrap(ctx, rc, ring, out);
}

/* Probe j of a key: independent 32-bit positions from one 64-bit key. */
static inline uint32_t probe(uint64_t key, uint32_t j) {
    return (uint32_t)(chash_mix64(key + (uint64_t)(j + 1) * 0x9e3779b97f4a7c15ull) >> 32);
}

/* Index of the winning point: the smallest clockwise distance from a probe
 * to the point at or after it; the earlier probe wins a tie. */
static size_t winning_point(const multiprobe_state *s, uint64_t hash) {
    uint64_t key = chash_mix64(hash);
    uint32_t best_distance = UINT32_MAX;
    size_t best = 0;
    for (uint32_t j = 0; j < s->probe_count; j++) {
        uint32_t at = probe(key, j), point;
        size_t i = chash_algo_ring.point_index(s->ring, at), node;
        chash_algo_ring.point(s->ring, i, &point, &node);
        uint32_t distance = point - at; /* mod 2^32: the wrap past the top */
        if (distance < best_distance || j == 0) {
            best_distance = distance;
            best = i;
        }
    }
    return best;
}

static size_t lookup(const void *state, uint64_t hash) {
    const multiprobe_state *s = state;
    size_t node;
    chash_algo_ring.point(s->ring, winning_point(s, hash), NULL, &node);
    return node;
}

/* The owner, then the next distinct nodes clockwise from its point. */
static size_t lookup_n(const void *state, uint64_t hash, size_t want, size_t *nodes) {
    const multiprobe_state *s = state;
    size_t count = chash_algo_ring.point_count(s->ring);
    size_t i = winning_point(s, hash), found = 0;
    for (size_t walked = 0; walked < count && found < want; walked++) {
        size_t n;
        chash_algo_ring.point(s->ring, i, NULL, &n);
        bool seen = false;
        for (size_t f = 0; f < found && !seen; f++) seen = nodes[f] == n;
        if (!seen) nodes[found++] = n;
        if (++i == count) i = 0;
    }
    return found;
}

static size_t point_count(const void *state) {
    return chash_algo_ring.point_count(((const multiprobe_state *)state)->ring);
}

static int point(const void *state, size_t index, uint32_t *hash, size_t *node) {
    return chash_algo_ring.point(((const multiprobe_state *)state)->ring, index, hash, node);
}

static size_t memory(const void *state) {
    const multiprobe_state *s = state;
    return sizeof *s + chash_algo_ring.memory(s->ring);
}

const algo_ops chash_algo_multiprobe = {
    .build = build,
    .added = added,
    .removed = removed,
    .reweighted = reweighted,
    .clone = multiprobe_clone,
    .free = multiprobe_free,
    .lookup = lookup,
    .lookup_n = lookup_n,
    .point_count = point_count,
    .point = point,
    .memory = memory,
};
