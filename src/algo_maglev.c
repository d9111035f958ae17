/*
 * algo_maglev.c - Maglev hashing (Eisenbud et al., "Maglev: A Fast and
 * Reliable Software Network Load Balancer", NSDI 2016, section 3.4): a
 * lookup table of M entries, M prime, filled by letting the nodes take turns
 * claiming the next free entry of their own permutation of 0..M-1
 * (offset + j * skip mod M, both from the node's name).
 *
 * Guarantee: a lookup is one table read, O(1). With equal weights every node
 * holds floor(M/N) or ceil(M/N) entries, so shares are within 1 / (M/N) of
 * even (M >= 100 N keeps them within 1 %). Not minimal disruption: the table
 * is refilled on every change and a few entries change hands between nodes
 * that stay (Envoy's documentation reports about twice the ring's movement
 * on removal; `chash bench --algo maglev` measures ours).
 * Weights: in each round node i takes a turn when its accumulated weight
 * reaches the largest weight, so it claims about w_i / W of the entries.
 *
 * Keys: entry floor(mix32(h) * M / 2^32) for key hash h; mix32 is a
 * bijection, so each entry owns an exactly known count of the 2^32 hashes,
 * and chash_ownership is exact.
 *
 * Invariant: table[e] is the owning node's index for every e < table_size
 * (no table when there are no nodes). Turns go in name order, so the table
 * depends only on the membership, not on the order nodes were added.
 */
#include "internal.h"

#include <stdlib.h>

#define MAGLEV_EMPTY UINT32_MAX

typedef struct maglev_state {
    uint32_t *table;
    uint32_t table_size;
    size_t node_count;
} maglev_state;

/* What one node needs while the table fills. */
typedef struct maglev_walker {
    uint32_t next;   /* next entry of its permutation to try */
    uint32_t skip;   /* 1 .. M-1: a full cycle because M is prime */
    uint32_t credit; /* weight accumulated toward its next turn */
    uint32_t weight;
    uint32_t node;
} maglev_walker;

static void maglev_free(const algo_ctx *ctx, void *state) {
    maglev_state *s = state;
    if (!s) return;
    chash_mem_free(ctx->alloc, s->table);
    chash_mem_free(ctx->alloc, s);
}

static int name_order(const void *a, const void *b) {
    return chash_name_cmp(*(const chash_node_rec *const *)a, *(const chash_node_rec *const *)b);
}

/* Fills table[0..m-1]; walkers in turn order. */
static void populate(uint32_t *table, uint32_t m, maglev_walker *w, size_t count,
                     uint32_t max_weight) {
    for (uint32_t e = 0; e < m; e++) table[e] = MAGLEV_EMPTY;
    uint32_t filled = 0;
    for (;;) {
        for (size_t i = 0; i < count; i++) {
            w[i].credit += w[i].weight;
            if (w[i].credit < max_weight) continue;
            w[i].credit -= max_weight;
            uint32_t e = w[i].next;
            while (table[e] != MAGLEV_EMPTY) {
                e += w[i].skip;
                if (e >= m) e -= m;
            }
            table[e] = w[i].node;
            e += w[i].skip;
            w[i].next = e >= m ? e - m : e;
            if (++filled == m) return;
        }
    }
}

static int build(const algo_ctx *ctx, const algo_nodes *nodes, void **out) {
    uint32_t m = ctx->maglev_table_size;
    if (nodes->count > m) return CHASH_ETOOBIG;
    maglev_state *s = chash_mem_alloc(ctx->alloc, sizeof *s);
    if (!s) return CHASH_ENOMEM;
    memset(s, 0, sizeof *s);
    s->table_size = m;
    s->node_count = nodes->count;
    if (nodes->count == 0) {
        *out = s;
        return CHASH_OK;
    }
    s->table = chash_mem_alloc(ctx->alloc, (size_t)m * sizeof *s->table);
    maglev_walker *w = chash_mem_alloc(ctx->alloc, chash_mul_size(nodes->count, sizeof *w));
    const chash_node_rec **by_name =
        chash_mem_alloc(ctx->alloc, chash_mul_size(nodes->count, sizeof *by_name));
    if (!s->table || !w || !by_name) {
        chash_mem_free(ctx->alloc, w);
        chash_mem_free(ctx->alloc, (void *)by_name);
        maglev_free(ctx, s);
        return CHASH_ENOMEM;
    }
    for (size_t i = 0; i < nodes->count; i++) by_name[i] = &nodes->nodes[i];
    qsort(by_name, nodes->count, sizeof *by_name, name_order);
    uint32_t max_weight = 0;
    for (size_t i = 0; i < nodes->count; i++) {
        const chash_node_rec *rec = by_name[i];
        uint64_t h = chash_name_hash64(rec);
        /* Two halves of one 64-bit hash serve as the paper's two hashes. */
        w[i] = (maglev_walker){
            .next = (uint32_t)((h >> 32) % m),
            .skip = m > 1 ? (uint32_t)((h & 0xffffffffu) % (m - 1)) + 1 : 1,
            .credit = 0,
            .weight = rec->weight,
            .node = (uint32_t)(rec - nodes->nodes),
        };
        if (rec->weight > max_weight) max_weight = rec->weight;
    }
    populate(s->table, m, w, nodes->count, max_weight);
    chash_mem_free(ctx->alloc, w);
    chash_mem_free(ctx->alloc, (void *)by_name);
    *out = s;
    return CHASH_OK;
}

static int maglev_clone(const algo_ctx *ctx, const void *state, void **out) {
    const maglev_state *s = state;
    maglev_state *k = chash_mem_alloc(ctx->alloc, sizeof *k);
    if (!k) return CHASH_ENOMEM;
    *k = *s;
    if (s->table) {
        k->table = chash_mem_alloc(ctx->alloc, (size_t)s->table_size * sizeof *k->table);
        if (!k->table) {
            chash_mem_free(ctx->alloc, k);
            return CHASH_ENOMEM;
        }
        memcpy(k->table, s->table, (size_t)s->table_size * sizeof *k->table);
    }
    *out = k;
    return CHASH_OK;
}

static inline uint32_t entry_of(const maglev_state *s, uint64_t hash) {
    return (uint32_t)(((uint64_t)chash_mix32((uint32_t)hash) * s->table_size) >> 32);
}

static size_t lookup(const void *state, uint64_t hash) {
    const maglev_state *s = state;
    return s->table[entry_of(s, hash)];
}

static uint64_t ownership(const void *state, uint64_t *shares, size_t node_count) {
    const maglev_state *s = state;
    (void)node_count;
    /* Entry e owns the x = mix32(h) with floor(x * M / 2^32) == e, that is
     * x in [ceil(e 2^32 / M), ceil((e+1) 2^32 / M)); mix32 is a bijection,
     * so it owns as many hashes h. */
    uint64_t space = (uint64_t)1 << 32, m = s->table_size, start = 0;
    for (uint64_t e = 0; e < m; e++) {
        uint64_t end = ((e + 1) * space + m - 1) / m;
        shares[s->table[e]] += end - start;
        start = end;
    }
    return space;
}

static size_t memory(const void *state) {
    const maglev_state *s = state;
    return sizeof *s + (s->table ? (size_t)s->table_size * sizeof *s->table : 0);
}

const algo_ops chash_algo_maglev = {
    .build = build,
    .clone = maglev_clone,
    .free = maglev_free,
    .lookup = lookup,
    .ownership = ownership,
    .memory = memory,
};
