/*
 * algo_bounded.c - consistent hashing with bounded loads (Mirrokni, Thorup,
 * Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018, arXiv
 * 1608.01350) on the virtual-node ring: a new unit of load for a key goes to
 * the first node clockwise from the key whose load is below its cap
 * ceil((1 + epsilon) * mean), the mean counting the new unit.
 *
 * Guarantee: no node ever holds more than its cap, so with m units over N
 * equal nodes max/mean <= 1 + epsilon + N/m; a membership change moves
 * O(1/epsilon^2) units per change in expectation (the paper's bound), and a
 * key still goes to its ring owner whenever that node has room. With weights
 * the cap is ceil((1 + epsilon) * (total + 1) * w_i / W).
 *
 * The loads live outside the placement, in chash_loads (loads.c): atomic
 * counters the caller moves with acquire and release (or sets from its own
 * counts), so the placement stays const and lookups stay lock-free. Plain
 * chash_lookup, lookup_n and ownership ignore loads and are the ring's; the
 * bounded lookup is this table's lookup_bounded.
 *
 * Invariant: ring is the ring of exactly this membership; cap_factor[i] is
 * (1 + epsilon) * w_i / W, so node i has room while load_i < cap_factor[i] *
 * (total + 1) (for an integer load, below the ceiling means below the value).
 */
#include "internal.h"

typedef struct bounded_state {
    void *ring;
    double *cap_factor;
    size_t count;
} bounded_state;

static void bounded_free(const algo_ctx *ctx, void *state) {
    bounded_state *s = state;
    if (!s) return;
    if (s->ring) chash_algo_ring.free(ctx, s->ring);
    chash_mem_free(ctx->alloc, s->cap_factor);
    chash_mem_free(ctx->alloc, s);
}

/* Wraps a fresh ring state with the caps of `nodes`; frees ring on failure. */
static int wrap(const algo_ctx *ctx, int rc, void *ring, const algo_nodes *nodes, void **out) {
    if (rc != CHASH_OK) return rc;
    bounded_state *s = chash_mem_alloc(ctx->alloc, sizeof *s);
    if (s) {
        memset(s, 0, sizeof *s);
        s->ring = ring;
        s->count = nodes->count;
    }
    if (s && nodes->count) {
        s->cap_factor = chash_mem_alloc(ctx->alloc, chash_mul_size(nodes->count, sizeof(double)));
        if (!s->cap_factor) {
            bounded_free(ctx, s);
            return CHASH_ENOMEM;
        }
    }
    if (!s) {
        chash_algo_ring.free(ctx, ring);
        return CHASH_ENOMEM;
    }
    double weight_sum = 0;
    for (size_t i = 0; i < nodes->count; i++) weight_sum += nodes->nodes[i].weight;
    for (size_t i = 0; i < nodes->count; i++)
        s->cap_factor[i] = (1 + ctx->load_epsilon) * nodes->nodes[i].weight / weight_sum;
    *out = s;
    return CHASH_OK;
}

static int build(const algo_ctx *ctx, const algo_nodes *nodes, void **out) {
    void *ring = NULL;
    int rc = chash_algo_ring.build(ctx, nodes, &ring);
    return wrap(ctx, rc, ring, nodes, out);
}

static int added(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                 void **out) {
    void *ring = NULL;
    int rc = chash_algo_ring.added(ctx, ((const bounded_state *)old)->ring, nodes, index, &ring);
    return wrap(ctx, rc, ring, nodes, out);
}

static int removed(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                   void **out) {
    void *ring = NULL;
    int rc =
        chash_algo_ring.removed(ctx, ((const bounded_state *)old)->ring, nodes, index, &ring);
    return wrap(ctx, rc, ring, nodes, out);
}

static int reweighted(const algo_ctx *ctx, const void *old, const algo_nodes *nodes,
                      size_t index, void **out) {
    void *ring = NULL;
    int rc = chash_algo_ring.reweighted(ctx, ((const bounded_state *)old)->ring, nodes, index,
                                        &ring);
    return wrap(ctx, rc, ring, nodes, out);
}

static int bounded_clone(const algo_ctx *ctx, const void *state, void **out) {
    const bounded_state *s = state;
    bounded_state *k = chash_mem_alloc(ctx->alloc, sizeof *k);
    if (!k) return CHASH_ENOMEM;
    memset(k, 0, sizeof *k);
    k->count = s->count;
    if (s->count) {
        k->cap_factor = chash_mem_alloc(ctx->alloc, s->count * sizeof *k->cap_factor);
        if (!k->cap_factor) {
            bounded_free(ctx, k);
            return CHASH_ENOMEM;
        }
        memcpy(k->cap_factor, s->cap_factor, s->count * sizeof *k->cap_factor);
    }
    int rc = chash_algo_ring.clone(ctx, s->ring, &k->ring);
    if (rc != CHASH_OK) {
        k->ring = NULL;
        bounded_free(ctx, k);
        return rc;
    }
    *out = k;
    return CHASH_OK;
}

static size_t lookup(const void *state, uint64_t hash) {
    return chash_algo_ring.lookup(((const bounded_state *)state)->ring, hash);
}

static size_t lookup_n(const void *state, uint64_t hash, size_t want, size_t *nodes) {
    return chash_algo_ring.lookup_n(((const bounded_state *)state)->ring, hash, want, nodes);
}

static uint64_t ownership(const void *state, uint64_t *shares, size_t node_count) {
    return chash_algo_ring.ownership(((const bounded_state *)state)->ring, shares, node_count);
}

static size_t point_index(const void *state, uint64_t hash) {
    return chash_algo_ring.point_index(((const bounded_state *)state)->ring, hash);
}

static size_t point_count(const void *state) {
    return chash_algo_ring.point_count(((const bounded_state *)state)->ring);
}

static int point(const void *state, size_t index, uint32_t *hash, size_t *node) {
    return chash_algo_ring.point(((const bounded_state *)state)->ring, index, hash, node);
}

static size_t memory(const void *state) {
    const bounded_state *s = state;
    return sizeof *s + s->count * sizeof *s->cap_factor + chash_algo_ring.memory(s->ring);
}

/* The first node clockwise from the key whose load is below its cap. */
static size_t lookup_bounded(const void *state, uint64_t hash, const chash_loads *loads) {
    const bounded_state *s = state;
    size_t count = chash_algo_ring.point_count(s->ring);
    size_t i = chash_algo_ring.point_index(s->ring, hash), first = SIZE_MAX;
    double units = (double)chash_loads_total(loads) + 1;
    /* Caps sum to (1 + epsilon) * (total + 1) > total, so some node has
     * room and one lap finds it, unless loads change under us meanwhile:
     * then the ring owner, as if unbounded. */
    for (size_t walked = 0; walked < count; walked++) {
        size_t node;
        chash_algo_ring.point(s->ring, i, NULL, &node);
        if (first == SIZE_MAX) first = node;
        uint64_t load = chash_loads_get(loads, node);
        if ((double)load < s->cap_factor[node] * units) return node;
        if (++i == count) i = 0;
    }
    return first;
}

const algo_ops chash_algo_bounded = {
    .build = build,
    .added = added,
    .removed = removed,
    .reweighted = reweighted,
    .clone = bounded_clone,
    .free = bounded_free,
    .lookup = lookup,
    .lookup_n = lookup_n,
    .ownership = ownership,
    .point_index = point_index,
    .lookup_bounded = lookup_bounded,
    .point_count = point_count,
    .point = point,
    .memory = memory,
};

