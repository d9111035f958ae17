/*
 * chash.h - consistent hashing: the virtual-node CRC32 ring and its peers.
 *
 * One placement object, `chash`, maps keys to nodes. It holds a membership
 * (nodes named by arbitrary bytes, each with a weight) and the lookup
 * structure of one algorithm (the ring by default). Lookups take a const
 * object, never allocate and never lock, so any number of threads may read one
 * object at once. Changes are made on a private copy (chash_clone) and then
 * published by swapping a pointer: see "Publishing changes" below.
 *
 * Errors: every call that can fail returns CHASH_OK (0) or a negative
 * chash_error; chash_strerror() names it. A failed call leaves the object as
 * it was.
 *
 * ABI: within one major version, functions are only added and the layout of
 * chash_config only grows at its end (zero means "default" for every field).
 */
#ifndef CHASH_H
#define CHASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CHASH_VERSION_MAJOR 0
#define CHASH_VERSION_MINOR 1
#define CHASH_VERSION_PATCH 0
#define CHASH_VERSION_STRING "0.1.0"

#if defined(_WIN32) && defined(CHASH_BUILDING_SHARED)
#define CHASH_API __declspec(dllexport)
#elif defined(__GNUC__)
#define CHASH_API __attribute__((visibility("default")))
#else
#define CHASH_API
#endif

typedef enum chash_error {
    CHASH_OK = 0,
    CHASH_EINVAL = -1,   /* a NULL or out-of-range argument, or a bad config */
    CHASH_ENOMEM = -2,   /* the allocator returned NULL */
    CHASH_EEMPTY = -3,   /* lookup on a placement with no nodes */
    CHASH_EEXIST = -4,   /* a node of that name is already a member */
    CHASH_ENOENT = -5,   /* no node of that name (or no such index) */
    CHASH_ENAME = -6,    /* empty name, or longer than CHASH_NAME_MAX bytes */
    CHASH_EWEIGHT = -7,  /* weight 0, or above CHASH_WEIGHT_MAX */
    CHASH_ETOOBIG = -8,  /* more nodes or points than the structure can hold */
    CHASH_ENOTSUP = -9,  /* the algorithm or scheme cannot do this */
    CHASH_EUNKNOWN = -10 /* an algorithm or scheme name that we do not know */
} chash_error;

#define CHASH_NAME_MAX 4096u
#define CHASH_WEIGHT_MAX 65535u
#define CHASH_VNODES_DEFAULT 160u
#define CHASH_VNODES_MAX 65536u
/* Points of one ring, all nodes together; keeps point indexes in 32 bits. */
#define CHASH_POINTS_MAX (1u << 30)

/* The placement algorithm. */
typedef enum chash_algo {
    CHASH_ALGO_RING = 0, /* virtual-node ring (default) */
    CHASH_ALGO_MODULO,   /* hash(key) % total weight: the baseline that storms */
    CHASH_ALGO__COUNT
} chash_algo;

/*
 * How points and keys are hashed onto the ring. Presets reproduce other
 * programs' placement exactly.
 */
typedef enum chash_scheme {
    /* CRC32 of the key, then a bijective 32-bit mix; point i of node "name" at
     * mix(CRC32(name || LE32(i))). Ties between equal points go to the node
     * whose name sorts first (bytewise, shorter first on a common prefix), so
     * placement depends only on the membership. */
    CHASH_SCHEME_NATIVE = 0,
    /* Go groupcache consistenthash: point i = CRC32(decimal(i) || name),
     * key at CRC32(key), equal points owned by the node added last. */
    CHASH_SCHEME_GROUPCACHE,
    CHASH_SCHEME__COUNT
} chash_scheme;

/*
 * A per-object allocator, inherited by clones. Any field NULL means the whole
 * allocator is libc's malloc/realloc/free.
 */
typedef struct chash_allocator {
    void *(*malloc_fn)(void *user, size_t size);
    void *(*realloc_fn)(void *user, void *ptr, size_t size);
    void (*free_fn)(void *user, void *ptr);
    void *user;
} chash_allocator;

/* Zero-initialise, then set what you need: zero means the default. */
typedef struct chash_config {
    chash_algo algo;          /* default CHASH_ALGO_RING */
    chash_scheme scheme;      /* default CHASH_SCHEME_NATIVE */
    uint32_t vnodes;          /* ring points per unit of weight; 0 = 160 */
    chash_allocator allocator;
} chash_config;

typedef struct chash chash;

/* Library version as "MAJOR.MINOR.PATCH"; static storage. */
CHASH_API const char *chash_version(void);

/* A static, one-line English message for an error code; never NULL. */
CHASH_API const char *chash_strerror(int err);

/*
 * Names of algorithms and schemes ("ring", "modulo"; "native", "groupcache")
 * and back. The *_name functions return NULL for a value out of range; the
 * *_from_name functions return CHASH_EUNKNOWN for a name they do not know.
 */
CHASH_API const char *chash_algo_name(chash_algo algo);
CHASH_API const char *chash_scheme_name(chash_scheme scheme);
CHASH_API int chash_algo_from_name(const char *name, chash_algo *out);
CHASH_API int chash_scheme_from_name(const char *name, chash_scheme *out);

/*
 * chash_crc32 - CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the
 * value of zlib crc32() and Go crc32.ChecksumIEEE.
 *
 * Pass crc = 0 to start; pass a previous result to continue over more bytes.
 * buf may be NULL only when len is 0. Uses carry-less multiply (x86-64
 * PCLMULQDQ) or the ARMv8 CRC32 instructions when the CPU has them, tables
 * otherwise. Cost: O(len); no allocation, thread-safe.
 */
CHASH_API uint32_t chash_crc32(uint32_t crc, const void *buf, size_t len);

/*
 * chash_create - a placement with no nodes.
 *
 * cfg may be NULL for all defaults. On success *out owns the new object;
 * release it with chash_free(). Errors: CHASH_EINVAL (out NULL, unknown algo
 * or scheme, vnodes above CHASH_VNODES_MAX, a scheme the algo cannot use),
 * CHASH_ENOMEM. Cost: O(1).
 */
CHASH_API int chash_create(const chash_config *cfg, chash **out);

/* Frees c and everything it owns. chash_free(NULL) does nothing. */
CHASH_API void chash_free(chash *c);

/*
 * chash_clone - an independent copy of c, to change while c is still read.
 *
 * Only reads c, so it may run while other threads look up in c. Errors:
 * CHASH_EINVAL, CHASH_ENOMEM. Cost: O(nodes + points).
 */
CHASH_API int chash_clone(const chash *c, chash **out);

/*
 * chash_add - make a node a member with the given weight (1..CHASH_WEIGHT_MAX).
 *
 * name is copied. The ring gains weight * vnodes points, merged into place
 * without re-sorting the rest. Errors: CHASH_EINVAL (c NULL, name NULL),
 * CHASH_ENAME, CHASH_EWEIGHT, CHASH_EEXIST, CHASH_ETOOBIG (points would pass
 * CHASH_POINTS_MAX), CHASH_ENOMEM. Cost: O(points).
 */
CHASH_API int chash_add(chash *c, const void *name, size_t name_len, uint32_t weight);

/* One node for chash_add_many. */
typedef struct chash_node_spec {
    const void *name;
    size_t name_len;
    uint32_t weight;
} chash_node_spec;

/*
 * chash_add_many - add several nodes at once, in array order, rebuilding the
 * lookup structure once. All or nothing: on any error (as for chash_add, and
 * CHASH_EEXIST also for a name repeated inside the array) no node is added.
 * Cost: O(points log points).
 */
CHASH_API int chash_add_many(chash *c, const chash_node_spec *nodes, size_t count);

/*
 * chash_remove - drop a member and its points. Indexes of the nodes after it
 * shift down by one. Errors: CHASH_EINVAL, CHASH_ENOENT, CHASH_ENOMEM.
 * Cost: O(points).
 */
CHASH_API int chash_remove(chash *c, const void *name, size_t name_len);

/*
 * chash_set_weight - change a member's weight; its points are recomputed,
 * every other node keeps its own. Errors: CHASH_EINVAL, CHASH_ENOENT,
 * CHASH_EWEIGHT, CHASH_ETOOBIG, CHASH_ENOMEM. Cost: O(points).
 */
CHASH_API int chash_set_weight(chash *c, const void *name, size_t name_len, uint32_t weight);

/* Number of member nodes (0 for NULL). */
CHASH_API size_t chash_node_count(const chash *c);

/*
 * chash_node - the name and weight of node `index` (0 .. count-1, in the
 * order they were added, removals closing the gaps). The name points into c
 * and lives until c is changed or freed. Any out pointer may be NULL.
 * Errors: CHASH_EINVAL, CHASH_ENOENT (index out of range). Cost: O(1).
 */
CHASH_API int chash_node(const chash *c, size_t index, const void **name, size_t *name_len,
                         uint32_t *weight);

/* chash_find - the index of the node with that name. Errors: CHASH_EINVAL,
 * CHASH_ENOENT. Cost: O(1) expected. */
CHASH_API int chash_find(const chash *c, const void *name, size_t name_len, size_t *index);

/*
 * chash_key_hash - where a key lands: its position in the algorithm's hash
 * space (for the ring schemes, a 32-bit value). Pure function of the scheme
 * and the key bytes. key may be NULL when key_len is 0.
 */
CHASH_API uint64_t chash_key_hash(const chash *c, const void *key, size_t key_len);

/*
 * chash_lookup - the node that owns a key.
 *
 * Does not allocate or modify c, so threads may share it freely. Writes the
 * node's index to *node. Errors: CHASH_EINVAL (c or node NULL, key NULL with
 * key_len > 0), CHASH_EEMPTY (no nodes). Cost: O(1) expected.
 */
CHASH_API int chash_lookup(const chash *c, const void *key, size_t key_len, size_t *node);

/* chash_lookup_hash - as chash_lookup, for a value of chash_key_hash(). */
CHASH_API int chash_lookup_hash(const chash *c, uint64_t hash, size_t *node);

/*
 * chash_lookup_n - a replica preference list: up to `want` distinct nodes,
 * the owner first, then the next distinct nodes clockwise. Writes them to
 * nodes[0..*found-1]; *found = min(want, node count). Errors: as chash_lookup,
 * and CHASH_ENOTSUP for an algorithm with no natural order (modulo).
 * Cost: O(want^2 + points walked); no allocation.
 */
CHASH_API int chash_lookup_n(const chash *c, const void *key, size_t key_len, size_t want,
                             size_t *nodes, size_t *found);

/*
 * chash_ownership - each node's exact share of the hash space, from the arc
 * lengths (no sampling). shares[i] is node i's count of hash values; they sum
 * to `*space` (2^32 for the ring schemes). node_count must be at least
 * chash_node_count(c). Errors: CHASH_EINVAL, CHASH_EEMPTY. Cost: O(points).
 */
CHASH_API int chash_ownership(const chash *c, uint64_t *shares, size_t node_count,
                              uint64_t *space);

/* Number of points on the ring (0 for algorithms without points). */
CHASH_API size_t chash_point_count(const chash *c);

/*
 * chash_point - point `index` in clockwise order (ascending hash; equal hashes
 * in owner order). Point i owns the hashes after point i-1 up to and
 * including its own (point 0 also owns the wrap-around from the last point).
 * Errors: CHASH_EINVAL, CHASH_ENOENT (index out of range). Cost: O(1).
 */
CHASH_API int chash_point(const chash *c, size_t index, uint32_t *hash, size_t *node);

/*
 * chash_memory - bytes of heap the object holds (nodes, names, points and
 * index). Cost: O(1).
 */
CHASH_API size_t chash_memory(const chash *c);

/*
 * chash_get_config - the configuration c was created with, defaults filled
 * in (vnodes 0 becomes 160, and so on). Errors: CHASH_EINVAL. Cost: O(1).
 */
CHASH_API int chash_get_config(const chash *c, chash_config *out);

/* One maximal run of hash values whose owner differs between two placements. */
typedef struct chash_range {
    uint32_t first; /* inclusive */
    uint32_t last;  /* inclusive */
    size_t from;    /* owner's node index in the old placement */
    size_t to;      /* owner's node index in the new placement */
} chash_range;

/* Called once per range, in ascending order; non-zero stops the walk. */
typedef int (*chash_range_fn)(void *user, const chash_range *range);

/*
 * chash_diff - the exact migration plan from `from` to `to`: every range of
 * the 32-bit key-hash space whose owner changes, nodes matched by name.
 * Summing (last - first + 1) over the ranges, divided by 2^32, gives the
 * exact fraction of keys that move; no sampling.
 *
 * Both placements must use the ring algorithm and the same scheme (so keys
 * land at the same positions), else CHASH_ENOTSUP. Either may be empty only
 * if both are (CHASH_EEMPTY otherwise). Returns CHASH_OK, CHASH_EINVAL (NULL
 * argument), or the first non-zero value fn returned. Does not allocate.
 * Cost: O((points of from + points of to) * name length).
 */
CHASH_API int chash_diff(const chash *from, const chash *to, chash_range_fn fn, void *user);

/*
 * Publishing changes (copy-on-write). Readers share one immutable snapshot:
 *
 *     _Atomic(chash *) live;                 // readers: atomic_load, lookup
 *     chash *next;
 *     chash_clone(atomic_load(&live), &next); // writer, off the request path
 *     chash_add(next, "node-10", 7, 1);
 *     chash *old = atomic_exchange(&live, next);
 *     // free `old` once no reader can still hold it (an epoch or a
 *     // quiescent point in each reader's loop), e.g. chash_free(old).
 *
 * The library keeps no global state, so snapshots are fully independent.
 */

#ifdef __cplusplus
}
#endif

#endif /* CHASH_H */
