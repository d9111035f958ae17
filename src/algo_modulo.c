/*
 * algo_modulo.c - hash(key) % W: the placement consistent hashing replaces.
 * Kept as the baseline the simulator measures against: changing W remaps
 * almost every key (all but ~1/max(W, W') of them), a cache-miss storm.
 *
 * Weights as twemproxy's `modula` distribution: node i occupies weight[i]
 * consecutive slots in insertion order; key -> slot hash % W -> its node.
 * Invariant: slot_end[i] is the number of slots of nodes 0..i.
 */
#include "internal.h"

typedef struct modulo_state {
    uint32_t *slot_end;
    size_t count;
    uint64_t slot_count;
    bool is_unit_weight; /* every weight 1: slot == node, no search */
} modulo_state;

static void modulo_free(const algo_ctx *ctx, void *state) {
    modulo_state *s = state;
    if (!s) return;
    chash_mem_free(ctx->alloc, s->slot_end);
    chash_mem_free(ctx->alloc, s);
}

static int build(const algo_ctx *ctx, const algo_nodes *nodes, void **out) {
    modulo_state *s = chash_mem_alloc(ctx->alloc, sizeof *s);
    if (!s) return CHASH_ENOMEM;
    memset(s, 0, sizeof *s);
    s->count = nodes->count;
    s->is_unit_weight = true;
    if (nodes->count) {
        s->slot_end = chash_mem_alloc(ctx->alloc, nodes->count * sizeof *s->slot_end);
        if (!s->slot_end) {
            modulo_free(ctx, s);
            return CHASH_ENOMEM;
        }
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < nodes->count; i++) {
        sum += nodes->nodes[i].weight;
        if (sum > UINT32_MAX) {
            modulo_free(ctx, s);
            return CHASH_ETOOBIG;
        }
        s->slot_end[i] = (uint32_t)sum;
        if (nodes->nodes[i].weight != 1) s->is_unit_weight = false;
    }
    s->slot_count = sum;
    *out = s;
    return CHASH_OK;
}

static int modulo_clone(const algo_ctx *ctx, const void *state, void **out) {
    const modulo_state *s = state;
    modulo_state *k = chash_mem_alloc(ctx->alloc, sizeof *k);
    if (!k) return CHASH_ENOMEM;
    *k = *s;
    if (s->count) {
        k->slot_end = chash_mem_alloc(ctx->alloc, s->count * sizeof *k->slot_end);
        if (!k->slot_end) {
            chash_mem_free(ctx->alloc, k);
            return CHASH_ENOMEM;
        }
        memcpy(k->slot_end, s->slot_end, s->count * sizeof *k->slot_end);
    }
    *out = k;
    return CHASH_OK;
}

/* The node whose slots contain `slot`: first i with slot_end[i] > slot. */
static size_t node_of_slot(const modulo_state *s, uint64_t slot) {
    if (s->is_unit_weight) return (size_t)slot;
    size_t lo = 0, hi = s->count - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->slot_end[mid] > slot)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static size_t lookup(const void *state, uint64_t hash) {
    const modulo_state *s = state;
    return node_of_slot(s, hash % s->slot_count);
}

static uint64_t ownership(const void *state, uint64_t *shares, size_t node_count) {
    const modulo_state *s = state;
    (void)node_count;
    /* Of the 2^32 hashes, slot k gets q of them, plus one when k < r. */
    uint64_t space = (uint64_t)1 << 32, q = space / s->slot_count, r = space % s->slot_count;
    uint64_t start = 0;
    for (size_t i = 0; i < s->count; i++) {
        uint64_t end = s->slot_end[i];
        uint64_t extra = end <= r ? end - start : (start < r ? r - start : 0);
        shares[i] = (end - start) * q + extra;
        start = end;
    }
    return space;
}

static size_t memory(const void *state) {
    const modulo_state *s = state;
    return sizeof *s + s->count * sizeof *s->slot_end;
}

const algo_ops chash_algo_modulo = {
    .build = build,
    .clone = modulo_clone,
    .free = modulo_free,
    .lookup = lookup,
    .ownership = ownership,
    .memory = memory,
};
