/*
 * internal.h - what the entry points (chash.c) and the algorithms (algo_*.c)
 * share. Nothing here is installed.
 *
 * Data flows one way: hash functions -> an algorithm's state, built from the
 * plain node array -> lookups. An algorithm never sees more of `chash` than
 * the node array, the scheme and the allocator.
 */
#ifndef CHASH_INTERNAL_H
#define CHASH_INTERNAL_H

#include "chash.h"

#include <stdbool.h>
#include <string.h>

typedef struct chash_node_rec {
    uint8_t *name;
    uint32_t name_len;
    uint32_t weight;
} chash_node_rec;

/* The membership an algorithm is built from: nodes in insertion order. */
typedef struct algo_nodes {
    const chash_node_rec *nodes;
    size_t count;
} algo_nodes;

typedef struct algo_ctx {
    chash_scheme scheme;
    uint32_t vnodes;
    const chash_allocator *alloc;
} algo_ctx;

/*
 * The table each algorithm fills. Every function that builds returns a fresh
 * state (never changing the old one) so a failed change leaves the object as
 * it was and a clone can share nothing. States are opaque to chash.c.
 */
typedef struct algo_ops {
    /* A state for the whole membership. */
    int (*build)(const algo_ctx *ctx, const algo_nodes *nodes, void **out);
    /* A state after node `index` (the last of `nodes`) was appended; NULL: build. */
    int (*added)(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                 void **out);
    /* A state after the node at `index` of the old membership was removed
     * (`nodes` is the new membership, later indexes shifted down); NULL: build. */
    int (*removed)(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                   void **out);
    /* A state after node `index` changed weight; NULL: build. */
    int (*reweighted)(const algo_ctx *ctx, const void *old, const algo_nodes *nodes,
                      size_t index, void **out);
    int (*clone)(const algo_ctx *ctx, const void *state, void **out);
    void (*free)(const algo_ctx *ctx, void *state);

    /* Called only with at least one node. */
    size_t (*lookup)(const void *state, uint64_t hash);
    /* NULL: CHASH_ENOTSUP. Called only with at least one node. */
    size_t (*lookup_n)(const void *state, uint64_t hash, size_t want, size_t *nodes);
    /* shares[0..node_count-1] zeroed by the caller. Returns the space size. */
    uint64_t (*ownership)(const void *state, uint64_t *shares, size_t node_count);
    /* Ring-like algorithms: the first point at or after hash (wrapping);
     * NULL elsewhere. Lets an algorithm built on the ring walk its points. */
    size_t (*point_index)(const void *state, uint64_t hash);
    size_t (*point_count)(const void *state);
    int (*point)(const void *state, size_t index, uint32_t *hash, size_t *node);
    size_t (*memory)(const void *state);
} algo_ops;

/*
 * Schemes (scheme.c): where keys and a node's points land. The ring asks for
 * a node's points all at once because some schemes derive several points
 * from one digest or chain each point from the previous one.
 */
uint32_t chash_scheme_key_hash(chash_scheme scheme, const void *key, size_t key_len);
/* Points node `rec` gets: weight * vnodes for the schemes so far. */
uint64_t chash_scheme_point_count(const algo_ctx *ctx, const chash_node_rec *rec);
/* Writes chash_scheme_point_count() points of `rec` to out, in point order. */
void chash_scheme_points(const algo_ctx *ctx, const chash_node_rec *rec, uint32_t *out);

extern const algo_ops chash_algo_ring;
extern const algo_ops chash_algo_modulo;

/* Allocation through the object's allocator (libc when none was given). */
void *chash_mem_alloc(const chash_allocator *a, size_t size);
void *chash_mem_realloc(const chash_allocator *a, void *ptr, size_t size);
void chash_mem_free(const chash_allocator *a, void *ptr);
/* size_a * size_b, or SIZE_MAX if it overflows (so the allocation fails). */
static inline size_t chash_mul_size(size_t a, size_t b) {
    return (b != 0 && a > SIZE_MAX / b) ? SIZE_MAX : a * b;
}

/*
 * A bijective 32-bit finaliser (MurmurHash3 fmix32). CRC32 is linear over
 * GF(2), so CRC32s of structured strings land in structured positions; this
 * mix breaks the linearity while keeping every value distinct.
 */
static inline uint32_t chash_mix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* Bytewise order on names, a shorter name first on a common prefix. */
static inline int chash_name_cmp(const chash_node_rec *a, const chash_node_rec *b) {
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int r = n ? memcmp(a->name, b->name, n) : 0;
    if (r != 0) return r;
    return (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

#endif
