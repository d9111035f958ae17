/*
 * algo_jump.c - jump consistent hash (Lamping & Veach, "A Fast, Minimal
 * Memory, Consistent Hash Algorithm", arXiv 1406.2294, 2014): a key's bucket
 * among B is found by jumping forward through the bucket counts at which
 * the key would move, with no table at all.
 *
 * Guarantee: each of the B buckets gets 1/B of the keys in expectation, and
 * going from B to B + 1 buckets moves only keys into the new bucket, 1/(B+1)
 * of them; dropping the last bucket moves only its own keys. Nodes are
 * buckets in insertion order, so a node can be appended, and only the last
 * one removed or reweighted: anything else is CHASH_ENOTSUP (memento lifts
 * that limit).
 *
 * Weights: a node of weight w owns w consecutive buckets, so it gets w / W of
 * the keys and the tail rule holds bucket by bucket. Keys: the 32-bit key
 * hash widened by chash_mix64 (a bijection, so distinct hashes stay distinct
 * 64-bit keys); the paper's function itself is chash_jump_bucket().
 *
 * Invariant: bucket_node is NULL when every weight is 1 (bucket b is node b),
 * else bucket_node[b] is the node owning bucket b, non-decreasing in b.
 */
#include "internal.h"

typedef struct jump_state {
    uint32_t *bucket_node;
    uint32_t bucket_count;
    size_t node_count;
} jump_state;

/*
 * The paper's loop: a 64-bit LCG draws the next bucket count at which the
 * key jumps, (b + 1) / u for u uniform in (0, 1]; the last jump below
 * bucket_count is the answer. The reference converts each jump to an integer
 * and back; we test the double itself (trunc(x) < n exactly when x < n, for
 * x >= 0 and an integer n) and truncate only what feeds the next step, so
 * the answers are the reference's bit for bit while the loop-carried chain
 * is shorter. JUMP_LOOP is that loop, written once for both builds below.
 */
#define JUMP_LOOP(TRUNC)                                                            \
    do {                                                                            \
        double b = -1, next = 0, limit = (double)bucket_count;                      \
        while (next < limit) {                                                      \
            b = TRUNC(next);                                                        \
            key = key * 2862933555777941757ull + 1;                                 \
            next = (b + 1) * ((double)(1ll << 31) / (double)((key >> 33) + 1));     \
        }                                                                           \
        return (int32_t)b;                                                          \
    } while (0)

/* Inside the loop 0 <= next < bucket_count <= 2^31, so the int64 round trip
 * is an exact truncation. */
#define JUMP_TRUNC_PORTABLE(x) ((double)(int64_t)(x))

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* SSE4.1's roundsd truncates in one step instead of two conversions: about
 * 1.4x faster at 1000 buckets here (bench/). */
__attribute__((target("sse4.1"))) static int32_t jump_bucket_sse41(uint64_t key,
                                                                     int32_t bucket_count) {
    JUMP_LOOP(__builtin_trunc);
}
#endif

int32_t chash_jump_bucket(uint64_t key, int32_t bucket_count) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("sse4.1")) return jump_bucket_sse41(key, bucket_count);
#endif
    JUMP_LOOP(JUMP_TRUNC_PORTABLE);
}

static void jump_free(const algo_ctx *ctx, void *state) {
    jump_state *s = state;
    if (!s) return;
    chash_mem_free(ctx->alloc, s->bucket_node);
    chash_mem_free(ctx->alloc, s);
}

static int build(const algo_ctx *ctx, const algo_nodes *nodes, void **out) {
    uint64_t total = 0;
    bool is_unit_weight = true;
    for (size_t i = 0; i < nodes->count; i++) {
        total += nodes->nodes[i].weight;
        is_unit_weight &= nodes->nodes[i].weight == 1;
    }
    if (total > CHASH_POINTS_MAX) return CHASH_ETOOBIG;
    jump_state *s = chash_mem_alloc(ctx->alloc, sizeof *s);
    if (!s) return CHASH_ENOMEM;
    memset(s, 0, sizeof *s);
    s->bucket_count = (uint32_t)total;
    s->node_count = nodes->count;
    if (!is_unit_weight) {
        s->bucket_node = chash_mem_alloc(ctx->alloc, (size_t)total * sizeof *s->bucket_node);
        if (!s->bucket_node) {
            jump_free(ctx, s);
            return CHASH_ENOMEM;
        }
        size_t b = 0;
        for (size_t i = 0; i < nodes->count; i++)
            for (uint32_t w = 0; w < nodes->nodes[i].weight; w++)
                s->bucket_node[b++] = (uint32_t)i;
    }
    *out = s;
    return CHASH_OK;
}

/* Appending needs nothing the fresh build does not do: jump keeps no
 * per-key state, so the new state is a function of the weights in order. */
static int added(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                 void **out) {
    (void)old;
    (void)index;
    return build(ctx, nodes, out);
}

/* Only the tail may go: `nodes` is the new membership, so the old last node
 * had index nodes->count. */
static int removed(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                   void **out) {
    (void)old;
    if (index != nodes->count) return CHASH_ENOTSUP;
    return build(ctx, nodes, out);
}

static int reweighted(const algo_ctx *ctx, const void *old, const algo_nodes *nodes,
                      size_t index, void **out) {
    (void)old;
    if (index + 1 != nodes->count) return CHASH_ENOTSUP;
    return build(ctx, nodes, out);
}

static int jump_clone(const algo_ctx *ctx, const void *state, void **out) {
    const jump_state *s = state;
    jump_state *k = chash_mem_alloc(ctx->alloc, sizeof *k);
    if (!k) return CHASH_ENOMEM;
    *k = *s;
    if (s->bucket_node) {
        size_t bytes = (size_t)s->bucket_count * sizeof *k->bucket_node;
        k->bucket_node = chash_mem_alloc(ctx->alloc, bytes);
        if (!k->bucket_node) {
            chash_mem_free(ctx->alloc, k);
            return CHASH_ENOMEM;
        }
        memcpy(k->bucket_node, s->bucket_node, bytes);
    }
    *out = k;
    return CHASH_OK;
}

static size_t lookup(const void *state, uint64_t hash) {
    const jump_state *s = state;
    int32_t b = chash_jump_bucket(chash_mix64(hash), (int32_t)s->bucket_count);
    return s->bucket_node ? s->bucket_node[b] : (size_t)b;
}

static size_t memory(const void *state) {
    const jump_state *s = state;
    return sizeof *s + (s->bucket_node ? (size_t)s->bucket_count * sizeof *s->bucket_node : 0);
}

const algo_ops chash_algo_jump = {
    .build = build,
    .added = added,
    .removed = removed,
    .reweighted = reweighted,
    .clone = jump_clone,
    .free = jump_free,
    .lookup = lookup,
    .memory = memory,
};
