/*
 * internal.h - what the entry points (chash.c) and the algorithms (algo_*.c)
 * share. Nothing here is installed.
 *
 * Data flows one way: hash functions -> an algorithm's state, built from the
 * plain node array -> lookups. An algorithm never sees more of `chash` than
 * the node array, the scheme and the allocator, and never calls back into
 * chash.c: the entry points reach every algorithm through its algo_ops only.
 */
#ifndef CHASH_INTERNAL_H
#define CHASH_INTERNAL_H

#include "chash.h"

#include <stdbool.h>
#include <string.h>

/*
 * One past the last value of each public enum. chash.h carries no counts, as
 * they would be compiled into callers and go stale with a newer library. A
 * value added to an enum moves its end here too; the name tables, sized by
 * these, refuse to compile a name past the end.
 */
#define CHASH_ALGO_END ((int)CHASH_ALGO_BUCKETS + 1)
#define CHASH_SCHEME_END ((int)CHASH_SCHEME_REDIS_CLUSTER + 1)
#define CHASH_HASH_END ((int)CHASH_HASH_CRC16 + 1)
#define CHASH_BUCKET_BY_END ((int)CHASH_BUCKET_BY_DIGITS + 1)

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
    /* Options of the other algorithms, defaults filled in (chash_config). */
    uint32_t maglev_table_size;
    uint32_t probe_count;
    double load_epsilon;
    uint32_t bucket_count;
} algo_ctx;

/*
 * What CHASH_ALGO_BUCKETS does beyond the common table (algo_buckets.c). The
 * entry points check every argument (bucket ranges, node indexes) first;
 * these change the state in place, which chash.c allows only for calls that
 * either cannot fail once checked or fail before changing anything.
 */
typedef struct algo_bucket_ops {
    /* The node the override of a key names; false when it has none. `part`
     * is what the key's placement reads (chash_config_key_part). */
    bool (*override_find)(const void *state, const uint8_t *part, size_t part_len,
                          size_t *node);
    /* lookup_n with `first` as the owner: it, then the bucket's rendezvous
     * order without it. want <= node count. */
    size_t (*lookup_n_from)(const void *state, uint64_t hash, size_t first, size_t want,
                            size_t *nodes);
    void (*assign)(void *state, uint32_t first, uint32_t last, size_t node);
    void (*unassign)(void *state, uint32_t first, uint32_t last);
    int (*override_set)(const algo_ctx *ctx, void *state, const uint8_t *part, size_t part_len,
                        size_t node);
    int (*override_remove)(const algo_ctx *ctx, void *state, const uint8_t *part,
                           size_t part_len);
    size_t (*override_count)(const void *state);
    void (*override_at)(const void *state, size_t index, const uint8_t **part,
                        size_t *part_len, size_t *node);
    size_t (*owner)(const void *state, uint32_t bucket);
} algo_bucket_ops;

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
    /* Bounded loads: the node a new unit of load for `hash` goes to, given
     * live loads with a counter for every node (loads.c); NULL:
     * CHASH_ENOTSUP. Called only with at least one node. */
    size_t (*lookup_bounded)(const void *state, uint64_t hash, const chash_loads *loads);
    size_t (*point_count)(const void *state);
    int (*point)(const void *state, size_t index, uint32_t *hash, size_t *node);
    size_t (*memory)(const void *state);
    /* The state depends on the order of changes, not only on the membership
     * (memento's removals, buckets' pins and overrides): chash_add_many then
     * applies `added` node by node, and build is called only with an empty
     * state to replace. */
    bool has_history;
    /* CHASH_ALGO_BUCKETS only; NULL elsewhere (CHASH_ENOTSUP). */
    const algo_bucket_ops *buckets;
} algo_ops;

/*
 * Schemes (scheme.c): where keys and a node's points land. The ring asks for
 * a node's points all at once because some schemes derive several points
 * from one digest or chain each point from the previous one.
 */
/* Where a key lands under a config: its hash tag, its key hash (or the
 * scheme's), and the scheme's rule for empty keys (hash_keys.c). */
uint32_t chash_config_key_hash(const chash_config *cfg, const void *key, size_t key_len);
/* The two halves of chash_config_key_hash: the bytes placement reads (the
 * part between the hash tag's marks when the tag applies, else the whole
 * key), and the 32-bit hash of such a part. */
void chash_config_key_part(const chash_config *cfg, const uint8_t **key, size_t *key_len);
uint32_t chash_config_part_hash(const chash_config *cfg, const uint8_t *part, size_t part_len);
/* Buckets (algo_buckets.c): chash_key_hash of a key's part - its digits'
 * number (CHASH_BUCKET_BY_DIGITS, when it ends in one), else its hash. */
uint64_t chash_buckets_position(const chash_config *cfg, const uint8_t *part, size_t part_len);
chash_hash chash_scheme_default_hash(chash_scheme scheme);
/* "" or exactly two characters. */
bool chash_hash_tag_valid(const char tag[4]);
/* Fills in what CHASH_SCHEME_REDIS_CLUSTER fixes (key hash, hash tag, slot
 * count); false when cfg asks for something else (hash_keys.c). */
bool chash_redis_cluster_normalise(chash_config *cfg);

/* What the weighted schemes (ketama, twemproxy) need of the whole membership
 * to count one node's points. */
typedef struct scheme_totals {
    size_t node_count;
    uint64_t weight_sum;
} scheme_totals;
scheme_totals chash_scheme_totals(const algo_nodes *nodes);
/* True when a node's point count depends on the other nodes (ketama,
 * twemproxy): any change of membership or weight moves every node's points,
 * so the ring rebuilds instead of merging. */
bool chash_scheme_counts_are_global(chash_scheme scheme);
/* Points node `rec` gets: weight * vnodes, or the ketama formula. */
uint64_t chash_scheme_point_count(const algo_ctx *ctx, const scheme_totals *totals,
                                  const chash_node_rec *rec);
/* Writes chash_scheme_point_count() points of `rec` to out, in point order. */
void chash_scheme_points(const algo_ctx *ctx, const scheme_totals *totals,
                         const chash_node_rec *rec, uint32_t *out);

/* The hashkit key hashes (hash_hashkit.c); see chash_hash in chash.h. */
uint32_t chash_hash_one_at_a_time(const uint8_t *key, size_t len);
uint32_t chash_hash_fnv1_64(const uint8_t *key, size_t len);
uint32_t chash_hash_fnv1a_64(const uint8_t *key, size_t len);
uint32_t chash_hash_fnv1_32(const uint8_t *key, size_t len);
uint32_t chash_hash_fnv1a_32(const uint8_t *key, size_t len);
uint32_t chash_hash_crc32_15(const uint8_t *key, size_t len);
uint32_t chash_hash_crc16(const uint8_t *key, size_t len);
uint32_t chash_hash_murmur(const uint8_t *key, size_t len);
uint32_t chash_hash_jenkins(const uint8_t *key, size_t len);
uint32_t chash_hash_hsieh(const uint8_t *key, size_t len);

extern const algo_ops chash_algo_ring;
extern const algo_ops chash_algo_modulo;
extern const algo_ops chash_algo_jump;
extern const algo_ops chash_algo_rendezvous;
extern const algo_ops chash_algo_maglev;
extern const algo_ops chash_algo_multiprobe;
extern const algo_ops chash_algo_bounded;
extern const algo_ops chash_algo_memento;
extern const algo_ops chash_algo_buckets;

/* Jump consistent hash as Lamping & Veach give it: the bucket in
 * [0, bucket_count) of a 64-bit key (algo_jump.c). bucket_count >= 1. */
int32_t chash_jump_bucket(uint64_t key, int32_t bucket_count);
/* A 64-bit hash of a node's name, to seed per-node choices (rendezvous
 * scores, maglev permutations): FNV-1a 64 then fmix64 (algo_rendezvous.c). */
uint64_t chash_name_hash64(const chash_node_rec *rec);
/* True when node a outranks node b for a hash in a state built by
 * chash_algo_rendezvous, exactly as its lookup decides (algo_rendezvous.c). */
bool chash_rendezvous_outranks(const void *state, uint64_t hash, size_t a, size_t b);
/* Live load counters (loads.c), one per node: zeroed counters allocated
 * with `alloc` (copied); the public chash_loads_* functions do the rest. */
int chash_loads_new(const chash_allocator *alloc, size_t node_count, chash_loads **out);
size_t chash_loads_node_count(const chash_loads *loads);

/* Allocation through the object's allocator (alloc.c): its functions when
 * all three are set (chash_allocator_is_custom), libc's otherwise. */
bool chash_allocator_is_custom(const chash_allocator *a);
void *chash_mem_alloc(const chash_allocator *a, size_t size);
void *chash_mem_realloc(const chash_allocator *a, void *ptr, size_t size);
void chash_mem_free(const chash_allocator *a, void *ptr);
/* size_a * size_b, or SIZE_MAX if it overflows (so the allocation fails). */
static inline size_t chash_mul_size(size_t a, size_t b) {
    return (b != 0 && a > SIZE_MAX / b) ? SIZE_MAX : a * b;
}

/*
 * A counter's decimal text in dec[0 .. *len), stepped by one: what
 * snprintf("%llu") gives for 0, 1, 2..., without its cost (the schemes that
 * hash "name-17" or "17name" format every point's index, and snprintf was
 * most of a groupcache ring's build). dec has room for 20 digits.
 */
static inline void chash_dec_start(char *dec, size_t *len) {
    dec[0] = '0';
    *len = 1;
}

static inline void chash_dec_next(char *dec, size_t *len) {
    size_t i = *len;
    while (i > 0 && dec[i - 1] == '9') dec[--i] = '0';
    if (i > 0) {
        dec[i - 1]++;
        return;
    }
    memmove(dec + 1, dec, *len); /* 9..9 -> 10..0 */
    dec[0] = '1';
    (*len)++;
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

/*
 * A bijective 64-bit finaliser (MurmurHash3 fmix64). The algorithms that
 * need a 64-bit key (jump, memento, rendezvous, multi-probe) widen the 32-bit
 * key hash with it: distinct key hashes stay distinct, and every output bit
 * depends on every input bit.
 */
static inline uint64_t chash_mix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

/* Bytewise order on names, a shorter name first on a common prefix. */
static inline int chash_name_cmp(const chash_node_rec *a, const chash_node_rec *b) {
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int r = n ? memcmp(a->name, b->name, n) : 0;
    if (r != 0) return r;
    return (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

#endif
