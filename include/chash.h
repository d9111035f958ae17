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
 * ABI: see "Versions and the ABI promise" below.
 */
#ifndef CHASH_H
#define CHASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Versions and the ABI promise.
 *
 * CHASH_VERSION_MAJOR is the shared library's SONAME (libchash.so.MAJOR).
 * Within one major version a program built against an older header runs
 * with any newer library:
 *   - a minor release (x.Y.0) may add functions, enum values (at the end of
 *     their enum, never renumbering) and chash_config fields (at its end only,
 *     zero meaning the old behaviour); a patch release (x.y.Z) changes no
 *     interface at all;
 *   - the library reads and writes a caller's chash_config only up to the
 *     struct_size the caller compiled in, so fields the caller does not know
 *     take their defaults and nothing past its struct is touched;
 *   - no enum carries a count: loop with the *_name functions, which return
 *     NULL for the first value past the last (a newer library may have more).
 * The other way round, a program built against a newer header may run with
 * an older library of the same major version as long as it uses nothing
 * newer: chash_create refuses (CHASH_ESIZE) a config that sets a field the
 * library does not have, rather than ignore it.
 * Anything else - removing or renaming a function, changing its parameters,
 * return type or meaning, renumbering an enum, moving, resizing or removing a
 * chash_config field - bumps the major version and with it the SONAME.
 * Compare chash_version() with CHASH_VERSION_NUMBER to see which library a
 * program actually runs with.
 */
#define CHASH_VERSION_MAJOR 1
#define CHASH_VERSION_MINOR 2
#define CHASH_VERSION_PATCH 0
#define CHASH_VERSION_STRING "1.2.0"
/* major * 10000 + minor * 100 + patch: 10000 for 1.0.0; grows with every
 * release, so `>=` tests for a feature. */
#define CHASH_VERSION_NUMBER \
    (CHASH_VERSION_MAJOR * 10000 + CHASH_VERSION_MINOR * 100 + CHASH_VERSION_PATCH)

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
    CHASH_EUNKNOWN = -10, /* an algorithm or scheme name that we do not know */
    /* chash_config.struct_size is 0, smaller than the field itself or
     * implausibly large, or a newer caller's config sets a field this
     * library does not have. */
    CHASH_ESIZE = -11
} chash_error;

#define CHASH_NAME_MAX 4096u
#define CHASH_WEIGHT_MAX 65535u
#define CHASH_VNODES_DEFAULT 160u
#define CHASH_VNODES_MAX 65536u
/* Points of one ring, all nodes together; keeps point indexes in 32 bits. */
#define CHASH_POINTS_MAX (1u << 30)

/*
 * The placement algorithm. All take the same calls; where one cannot do
 * something it says CHASH_ENOTSUP. In short (docs/algorithms.md has figures):
 *
 *   algo        lookup       add / remove / set_weight   lookup_n  ownership
 *   ring        O(1)         any                          yes       exact
 *   modulo      O(1)         any, but moves ~all keys      no        exact
 *   jump        O(log N)     append / the last node only  no        -
 *   rendezvous  O(N)         any                          yes       -
 *   maglev      O(1)         any, moves a bit more         no        exact
 *   multiprobe  O(k log N)   any                          yes       -
 *   bounded     ring + walk  any                          yes       exact*
 *   memento     ~ jump       any (history-dependent)      no        -
 *   buckets     O(1)         any; O(buckets) each          yes       exact**
 *
 * "-": chash_ownership returns CHASH_ENOTSUP (no cheap exact answer).
 * "**": the hashes of each node's buckets (see chash_ownership).
 * Keys land at the 32-bit key hash of the scheme (chash_key_hash) for every
 * algorithm; the ones that need 64 bits widen it with a bijective mix, so
 * the scheme and key hash options apply to all of them. Buckets alone may
 * take a number from the key instead (CHASH_BUCKET_BY_DIGITS). The ring
 * schemes' point rules matter only to ring, multiprobe and bounded.
 */
typedef enum chash_algo {
    CHASH_ALGO_RING = 0, /* virtual-node ring (default) */
    CHASH_ALGO_MODULO,   /* hash(key) % total weight: the baseline that storms */
    /* Jump consistent hash (Lamping & Veach 2014): no table, exact balance,
     * minimal disruption. Nodes are buckets in insertion order; a node of
     * weight w owns w consecutive buckets. Only the last node may be removed
     * or reweighted (else CHASH_ENOTSUP); adding appends. */
    CHASH_ALGO_JUMP,
    /* Weighted rendezvous / highest random weight (Thaler & Ravishankar
     * 1998): each node scores -w / ln(U(key, node)), the highest wins. Any
     * change moves only the keys it must; O(N) per lookup. */
    CHASH_ALGO_RENDEZVOUS,
    /* Maglev (Eisenbud et al., NSDI 2016): a prime-sized table
     * (maglev_table_size, default 65537) filled by per-node permutations,
     * weights as turn frequency. O(1) lookup, slots within one of even;
     * rebuilt on every change, which moves somewhat more than the minimum. */
    CHASH_ALGO_MAGLEV,
    /* Multi-probe consistent hashing (Appleton & O'Reilly 2015): one ring
     * point per unit of weight, probe_count (default 21) probes per key, the
     * point nearest after any probe wins. Schemes: native, groupcache,
     * nginx. */
    CHASH_ALGO_MULTIPROBE,
    /* Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam
     * 2018) on the ring: chash_lookup_bounded() skips, clockwise, nodes whose
     * live load (chash_loads) is at the cap ceil((1 + load_epsilon) * mean).
     * chash_lookup and *ownership ignore loads: they are the ring's. */
    CHASH_ALGO_BOUNDED,
    /* MementoHash (Coluzzi et al. 2023): jump plus a record of removed
     * buckets, so any node can be removed with minimal disruption; adding
     * a node restores the most recently removed bucket first (LIFO). The
     * placement depends on the order of changes, not only on the
     * membership: publish clones of one object rather than rebuilding. */
    CHASH_ALGO_MEMENTO,
    /* Fixed buckets ("units", "cells"; Alipay's LDC): a key falls in one of
     * bucket_count buckets, by its key hash mod the count or by the number
     * its trailing digits spell (chash_config.bucket_by), and each bucket
     * has one owner: a node pinned to it by chash_bucket_assign, else the
     * weighted rendezvous winner for the bucket (so a membership change
     * moves only the buckets it must). chash_bucket_override sends single
     * keys elsewhere. O(1) lookup; every change costs O(buckets), plus a
     * rendezvous choice, O(nodes), per bucket that must move. Exact plans
     * between two placements, by bucket: chash_bucket_diff. The only
     * algorithm of CHASH_SCHEME_REDIS_CLUSTER, whose buckets are the slots. */
    CHASH_ALGO_BUCKETS
} chash_algo;

/* How CHASH_ALGO_BUCKETS finds a key's bucket (chash_config.bucket_by). */
typedef enum chash_bucket_by {
    /* The scheme's 32-bit key hash (after the hash tag) mod bucket_count. */
    CHASH_BUCKET_BY_HASH = 0,
    /* The number spelled by the key's trailing decimal digits (of the part
     * between the hash tag's marks when the tag applies), taking at most as
     * many digits as bucket_count - 1 has (100 buckets: the last two, so
     * "user1234" is bucket 34, "user7" bucket 7), mod bucket_count. A key
     * that does not end in a digit goes by its hash, as
     * CHASH_BUCKET_BY_HASH. */
    CHASH_BUCKET_BY_DIGITS
} chash_bucket_by;

/* Defaults and limits of the algorithms' options in chash_config. */
#define CHASH_MAGLEV_TABLE_DEFAULT 65537u
#define CHASH_MAGLEV_TABLE_MAX ((1u << 30) - 35u) /* the largest prime below 2^30 */
#define CHASH_PROBES_DEFAULT 21u
#define CHASH_PROBES_MAX 4096u
#define CHASH_LOAD_EPSILON_DEFAULT 0.25
#define CHASH_LOAD_EPSILON_MAX 1000.0
#define CHASH_BUCKETS_DEFAULT 100u
#define CHASH_BUCKETS_MAX 1000000u

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
    /* libmemcached weighted ketama (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED).
     * Node names are "host:port"; a node hashes "host-k" when the port is
     * 11211 (or missing), else "host:port-k", k = 0, 1, ...; each MD5 digest
     * gives 4 points (little-endian words). Points per node
     * floor(float32(w / W * vnodes / 4 * N)) * 4 for weight w of W over N
     * nodes, so every change rebuilds the ring. Keys at MD5 word 0 by
     * default. Equal points: the lower node index first. No server limit. */
    CHASH_SCHEME_KETAMA,
    /* twemproxy (nutcracker 0.5.0) ketama: points as CHASH_SCHEME_KETAMA
     * but from "name-k" for the node name as given (nutcracker's server
     * name: its explicit name, else "host" for port 11211, else
     * "host:port"). Keys at fnv1a_64 by default; a key that is empty after
     * the hash tag lands at 0. Equal points: nutcracker's server order first
     * (shorter name, then bytewise lower), whatever the insertion order. */
    CHASH_SCHEME_TWEMPROXY,
    /* nginx `hash $key consistent`: node names are the `server` strings;
     * weight * vnodes points chained by CRC-32 from "host\0port"; keys at
     * CRC-32. Equal points: the lower node index first. */
    CHASH_SCHEME_NGINX,
    /* Redis Cluster (added in 1.2.0): a key's bucket is its hash slot,
     * chash_redis_slot(). Only with CHASH_ALGO_BUCKETS; bucket_count 0 or
     * CHASH_REDIS_SLOTS, bucket_by hash, key_hash and hash_tag left at 0
     * (or as chash_get_config reports them: crc16 and "{}"); anything else
     * is CHASH_EINVAL at chash_create. Slots are owned as buckets are: the
     * node chash_bucket_assign pinned, else by rendezvous. A real cluster
     * pins every slot (from CLUSTER SHARDS or CLUSTER NODES): the
     * rendezvous owner of an unpinned slot is no node Redis knows of. */
    CHASH_SCHEME_REDIS_CLUSTER
} chash_scheme;

/*
 * Key hashes (the twemproxy / libhashkit set), for chash_config.key_hash and
 * chash_hash32(). All return 32 bits. Names as in a twemproxy `hash:` line.
 * Where the peers widen a byte >= 0x80 through a signed char (x86), so do we,
 * on every CPU: see docs/compat.md.
 */
typedef enum chash_hash {
    CHASH_HASH_DEFAULT = 0,   /* "default": the scheme's own key hash */
    CHASH_HASH_CRC32A,        /* "crc32a": CRC-32 (chash_crc32) */
    CHASH_HASH_MD5,           /* "md5": MD5 digest bytes 0..3, little-endian */
    CHASH_HASH_FNV1A_64,      /* "fnv1a_64": twemproxy's, really 32-bit FNV-1a */
    CHASH_HASH_FNV1_64,       /* "fnv1_64": low 32 bits of 64-bit FNV-1 */
    CHASH_HASH_FNV1A_32,      /* "fnv1a_32" */
    CHASH_HASH_FNV1_32,       /* "fnv1_32" */
    CHASH_HASH_CRC32_15,      /* "crc32": libmemcached's, (CRC-32 >> 16) & 0x7fff */
    CHASH_HASH_ONE_AT_A_TIME, /* "one_at_a_time": Jenkins one-at-a-time */
    CHASH_HASH_MURMUR,        /* "murmur": MurmurHash2, seed 0xdeadbeef * len */
    CHASH_HASH_JENKINS,       /* "jenkins": lookup3 hashlittle, initval 13 */
    CHASH_HASH_HSIEH,         /* "hsieh": SuperFastHash from 0 */
    CHASH_HASH_CRC16          /* "crc16": twemproxy's unmasked XMODEM loop */
} chash_hash;

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

/*
 * The options of chash_create. Zero means the default for every field but
 * struct_size, which must be sizeof(chash_config) as the caller compiled it:
 *
 *     chash_config cfg = {.struct_size = sizeof cfg, .algo = CHASH_ALGO_JUMP};
 *     chash_config cfg = CHASH_CONFIG_INIT;   // all defaults; C and C++
 *
 * It lets a program built against an older, shorter chash_config run with a
 * newer library: the library reads and writes only the fields that lie wholly
 * within struct_size and takes the defaults for the rest. Fields are only
 * ever added at the end (see "Versions and the ABI promise").
 */
typedef struct chash_config {
    size_t struct_size;       /* sizeof(chash_config); 0 is CHASH_ESIZE */
    chash_algo algo;          /* default CHASH_ALGO_RING */
    chash_scheme scheme;      /* default CHASH_SCHEME_NATIVE */
    /* Ring points per unit of weight (ketama and twemproxy: per node at
     * average weight); 0 = 160, the value the peer presets need. */
    uint32_t vnodes;
    chash_allocator allocator;
    /* How keys are hashed; default (0) the scheme's own: CRC-32 for native,
     * groupcache and nginx, md5 for ketama, fnv1a_64 for twemproxy. */
    chash_hash key_hash;
    /* twemproxy's hash_tag: "" for none, or two characters such as "{}".
     * When the key holds the first and, after it, the second with at least
     * one byte between them, only the bytes between are hashed. */
    char hash_tag[4];
    /* Maglev: lookup table entries, a prime from the node count up to
     * CHASH_MAGLEV_TABLE_MAX; 0 = 65537. Keep it >= 100 * nodes for slot
     * shares within 1 % of even. */
    uint32_t maglev_table_size;
    /* Multi-probe: probes per lookup, 1..CHASH_PROBES_MAX; 0 = 21 (peak
     * load about 1.05 x the mean). */
    uint32_t probe_count;
    /* Bounded loads: a node takes a key only while its load is below
     * ceil((1 + load_epsilon) * (total load + 1) * weight / total weight);
     * 0 = 0.25, else in (0, CHASH_LOAD_EPSILON_MAX]. */
    double load_epsilon;
    /* Buckets (added after 1.0.0): the number of buckets,
     * 1..CHASH_BUCKETS_MAX; 0 = 100, the last two digits of an id
     * (CHASH_SCHEME_REDIS_CLUSTER: 0 = CHASH_REDIS_SLOTS, its only value).
     * With buckets placed by rendezvous, give each node about 100 buckets
     * per unit of weight for shares within about 10 % of the weights. */
    uint32_t bucket_count;
    /* How a key finds its bucket; default (0) CHASH_BUCKET_BY_HASH. */
    chash_bucket_by bucket_by;
    /* New fields go here, and only here, each starting at or after the old
     * sizeof(chash_config) (pad explicitly where needed): an older caller's
     * struct_size then never covers part of a new field. */
} chash_config;

/* An initializer for a chash_config of all defaults. */
#ifdef __cplusplus
#define CHASH_CONFIG_INIT {sizeof(chash_config)}
#else
#define CHASH_CONFIG_INIT {.struct_size = sizeof(chash_config)}
#endif

typedef struct chash chash;

/*
 * chash_version - the version of the library the program runs with, as
 * CHASH_VERSION_NUMBER (major * 10000 + minor * 100 + patch) of its header.
 * A program may compare it with the CHASH_VERSION_NUMBER it was built
 * against: the same major part (value / 10000) is compatible as chash.h
 * promises above, a smaller one means an older library. Never fails; O(1).
 */
CHASH_API unsigned chash_version(void);

/* chash_version_string - the same version as "MAJOR.MINOR.PATCH" (the
 * library's CHASH_VERSION_STRING); static storage, never NULL. Cost: O(1). */
CHASH_API const char *chash_version_string(void);

/* A static, one-line English message for an error code; never NULL. */
CHASH_API const char *chash_strerror(int err);

/*
 * Names of algorithms and schemes ("ring", "modulo", "jump", "rendezvous",
 * "maglev", "multiprobe", "bounded", "memento", "buckets"; "native", "groupcache",
 * "ketama", "twemproxy", "nginx", "redis-cluster") and back. The *_name
 * functions return NULL for a value out of range; the *_from_name functions
 * return CHASH_EUNKNOWN for a name they do not know (CHASH_EINVAL for a NULL
 * argument). Values run from 0 without gaps, so this visits every algorithm
 * the library has:
 *
 *     for (int a = 0; chash_algo_name((chash_algo)a); a++) ...
 *
 * The names are static storage. Cost: O(1); *_from_name O(values).
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

/* chash_md5 - the MD5 digest (RFC 1321) of buf[0..len-1] into digest[16].
 * buf may be NULL only when len is 0. Cost: O(len); no allocation. */
CHASH_API void chash_md5(const void *buf, size_t len, uint8_t digest[16]);

/*
 * chash_hash32 - key hash `hash` of buf[0..len-1], exactly as the peers
 * compute it (CHASH_HASH_DEFAULT gives CRC-32). No hash tag is applied.
 * Returns 0 for a value out of range. Cost: O(len); no allocation.
 */
CHASH_API uint32_t chash_hash32(chash_hash hash, const void *buf, size_t len);

/* Names of key hashes ("md5", "fnv1a_64", ...; "default") and back: NULL for
 * a value out of range (so the loop above works for them too), CHASH_EUNKNOWN
 * for a name we do not know. */
CHASH_API const char *chash_hash_name(chash_hash hash);
CHASH_API int chash_hash_from_name(const char *name, chash_hash *out);

/* Names of chash_bucket_by values ("hash", "digits") and back, as above:
 * NULL past the last, CHASH_EUNKNOWN for a name we do not know, CHASH_EINVAL
 * for a NULL argument. Static storage; O(1), *_from_name O(values). */
CHASH_API const char *chash_bucket_by_name(chash_bucket_by by);
CHASH_API int chash_bucket_by_from_name(const char *name, chash_bucket_by *out);

/*
 * chash_create - a placement with no nodes.
 *
 * cfg may be NULL for all defaults; it is not kept. Only the fields that lie
 * wholly within cfg->struct_size are read, the others take their defaults;
 * bytes past this library's last field must be zero. On success *out owns
 * the new object; release it with chash_free(). Errors: CHASH_ESIZE
 * (struct_size 0, smaller than the struct_size field or above 4096, or a
 * non-zero byte past this library's last field: an option it does not
 * have), CHASH_EINVAL (out NULL, unknown algo, scheme or key hash, vnodes
 * above CHASH_VNODES_MAX, a hash tag that is not two characters, a scheme
 * the algo cannot use, an algorithm option out of range: maglev_table_size
 * not a prime, probe_count, load_epsilon, bucket_count, bucket_by; for
 * CHASH_SCHEME_REDIS_CLUSTER an algo other than buckets, or a bucket_count,
 * bucket_by, key_hash or hash_tag it does not take), CHASH_ENOMEM. Cost:
 * O(1); buckets O(bucket_count).
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
 * without re-sorting the rest (ketama and twemproxy, whose point counts
 * depend on every weight, rebuild the ring: O(points log points)).
 * Errors: CHASH_EINVAL (c NULL, name NULL; ketama or twemproxy with so few
 * vnodes that no node would get a point), CHASH_ENAME, CHASH_EWEIGHT,
 * CHASH_EEXIST, CHASH_ETOOBIG (points would pass
 * CHASH_POINTS_MAX; jump and memento: total weight past CHASH_POINTS_MAX;
 * maglev: more nodes than table entries), CHASH_ENOMEM. Cost: O(points);
 * the other algorithms O(nodes) or O(buckets), maglev O(table log table).
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
 * lookup structure once (memento, whose placement depends on the order of
 * changes, adds them one by one). All or nothing: on any error (as for
 * chash_add, and CHASH_EEXIST also for a name repeated inside the array) no
 * node is added.
 * Cost: O(points log points).
 */
CHASH_API int chash_add_many(chash *c, const chash_node_spec *nodes, size_t count);

/*
 * chash_remove - drop a member and its points. Indexes of the nodes after it
 * shift down by one. Errors: CHASH_EINVAL, CHASH_ENOENT, CHASH_ENOMEM,
 * CHASH_ENOTSUP (jump: any node but the last). Cost: O(points).
 */
CHASH_API int chash_remove(chash *c, const void *name, size_t name_len);

/*
 * chash_set_weight - change a member's weight; its points are recomputed,
 * every other node keeps its own. Errors: CHASH_EINVAL, CHASH_ENOENT,
 * CHASH_EWEIGHT, CHASH_ETOOBIG, CHASH_ENOMEM, CHASH_ENOTSUP (jump: any node
 * but the last). Cost: O(points).
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
 * space (for the ring schemes, a 32-bit value). Pure function of the scheme,
 * key hash, hash tag and the key bytes (and for buckets, bucket_by). key may
 * be NULL when key_len is 0. Buckets: a value whose remainder mod
 * bucket_count is the key's bucket - the 32-bit key hash, or by digits the
 * number of the key's trailing digits; CHASH_SCHEME_REDIS_CLUSTER: the slot,
 * chash_redis_slot(key).
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

/* chash_lookup_hash - as chash_lookup, for a value of chash_key_hash().
 * Buckets: the owner of bucket hash mod bucket_count (per-key overrides need
 * the key: chash_lookup). */
CHASH_API int chash_lookup_hash(const chash *c, uint64_t hash, size_t *node);

/*
 * chash_lookup_n - a replica preference list: up to `want` distinct nodes,
 * the owner first, then the next distinct nodes clockwise. Writes them to
 * nodes[0..*found-1]; *found = min(want, node count), fewer only when some
 * node has no point (ketama and twemproxy give none to a node whose weight is
 * below about 1/40 of the mean). Errors: as chash_lookup,
 * and CHASH_ENOTSUP for an algorithm with no natural order (modulo, jump,
 * maglev, memento). Rendezvous lists nodes by falling score; multiprobe
 * walks clockwise from the winning point; bounded is the ring's list;
 * buckets gives the key's owner (its override, else its bucket's owner),
 * then the other nodes in the bucket's rendezvous order.
 * Cost: O(want^2 + points walked), rendezvous O(nodes * log want); no
 * allocation.
 */
CHASH_API int chash_lookup_n(const chash *c, const void *key, size_t key_len, size_t want,
                             size_t *nodes, size_t *found);

/*
 * Bounded loads (CHASH_ALGO_BOUNDED). A chash_loads holds one live load
 * counter per node of the placement it was created for (the node indexes of
 * that snapshot): requests, connections, whatever the caller balances. The
 * counters are atomic, so any number of threads may acquire, release and
 * look up at once; the placement itself stays const and lock-free. After a
 * membership change, create a tracker for the new snapshot.
 *
 *     chash_loads *loads;
 *     chash_loads_create(c, &loads);
 *     chash_lookup_bounded(c, loads, key, key_len, &node);
 *     chash_loads_acquire(loads, node);   // when the request starts
 *     ...
 *     chash_loads_release(loads, node);   // when it ends
 *
 * Two threads that pick the same nearly full node at the same moment may
 * each acquire it, so under concurrency a cap can be passed by at most the
 * number of racing threads.
 */
typedef struct chash_loads chash_loads;

/*
 * chash_loads_create - zeroed load counters for every node of c, allocated
 * with c's allocator. c need not use the bounded algorithm. Errors:
 * CHASH_EINVAL (NULL argument), CHASH_ENOMEM. Cost: O(nodes).
 */
CHASH_API int chash_loads_create(const chash *c, chash_loads **out);

/* Frees the counters; chash_loads_free(NULL) does nothing. */
CHASH_API void chash_loads_free(chash_loads *loads);

/*
 * chash_loads_acquire / chash_loads_release - one more / one less unit of
 * load on a node. Atomic. Errors: CHASH_EINVAL (loads NULL, or release of
 * a load that is already 0), CHASH_ENOENT (no such node). Cost: O(1).
 */
CHASH_API int chash_loads_acquire(chash_loads *loads, size_t node);
CHASH_API int chash_loads_release(chash_loads *loads, size_t node);

/* chash_loads_set - feed a node's live load as counted elsewhere. Atomic.
 * Errors: CHASH_EINVAL, CHASH_ENOENT. Cost: O(1). */
CHASH_API int chash_loads_set(chash_loads *loads, size_t node, uint64_t load);

/* A node's current load (0 for NULL or a node out of range), and the total
 * over all nodes. */
CHASH_API uint64_t chash_loads_get(const chash_loads *loads, size_t node);
CHASH_API uint64_t chash_loads_total(const chash_loads *loads);

/*
 * chash_lookup_bounded - the node a new unit of load for this key should go
 * to: the first node clockwise from the key (the ring owner first) whose
 * load is below its cap ceil((1 + load_epsilon) * (total + 1) * weight /
 * total weight). Reads the counters, changes nothing: acquire the node
 * after. Does not allocate or lock. Errors: as chash_lookup, CHASH_ENOTSUP
 * (c is not CHASH_ALGO_BOUNDED), CHASH_EINVAL (loads NULL or made for a
 * different node count). Cost: O(points walked), about 1/epsilon^2 nodes
 * when the loads are near their caps, O(1) when they are not.
 */
CHASH_API int chash_lookup_bounded(const chash *c, const chash_loads *loads, const void *key,
                                   size_t key_len, size_t *node);

/*
 * chash_ownership - each node's exact share of the hash space, from the arc
 * lengths (no sampling). shares[i] is node i's count of hash values; they sum
 * to `*space` (2^32 for the ring schemes). node_count must be at least
 * chash_node_count(c). Errors: CHASH_EINVAL, CHASH_EEMPTY, CHASH_ENOTSUP
 * (jump, rendezvous, multiprobe, memento: no exact answer short of trying
 * all 2^32 key hashes). Maglev counts the hashes of each table entry;
 * bounded gives the ring's shares, those of chash_lookup. Buckets counts
 * the 32-bit values v with v mod bucket_count in each node's buckets (those
 * of chash_lookup_hash): the exact key shares by hash, overrides aside, and
 * the shares of buckets (to within 2^-32) for keys by digits. Cost:
 * O(points), maglev O(table), buckets O(buckets).
 */
CHASH_API int chash_ownership(const chash *c, uint64_t *shares, size_t node_count,
                              uint64_t *space);

/* Number of points on the ring (0 for algorithms without points; multiprobe
 * has one per unit of weight, bounded the ring's). */
CHASH_API size_t chash_point_count(const chash *c);

/*
 * chash_point - point `index` in clockwise order (ascending hash; equal hashes
 * in owner order). Point i owns the hashes after point i-1 up to and
 * including its own (point 0 also owns the wrap-around from the last point).
 * Errors: CHASH_EINVAL, CHASH_ENOENT (index out of range), CHASH_ENOTSUP
 * (an algorithm without points). Cost: O(1).
 */
CHASH_API int chash_point(const chash *c, size_t index, uint32_t *hash, size_t *node);

/*
 * chash_memory - bytes of heap the object holds (nodes, names and the
 * algorithm's structure: points and index, table, buckets). Cost: O(1).
 */
CHASH_API size_t chash_memory(const chash *c);

/*
 * chash_get_config - the configuration c was created with, defaults filled
 * in (vnodes 0 becomes 160, and so on).
 *
 * Set out->struct_size first (CHASH_CONFIG_INIT does): only the fields that
 * lie wholly within it are written, struct_size itself and any bytes after
 * the last such field are left alone. The allocator's user pointer is c's,
 * still owned by the caller who gave it. Errors: CHASH_EINVAL (c or out
 * NULL), CHASH_ESIZE (out->struct_size 0 or smaller than the struct_size
 * field); out is unchanged on error. Cost: O(1).
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
 * Both placements must use the ring algorithm (buckets: chash_bucket_diff)
 * and the same scheme, key hash and hash tag (so keys land at the same
 * positions), else CHASH_ENOTSUP. Either may be empty only if both are
 * (CHASH_EEMPTY otherwise). Returns CHASH_OK, CHASH_EINVAL (NULL
 * argument), or the first non-zero value fn returned. Does not allocate.
 * Cost: O((points of from + points of to) * name length).
 */
CHASH_API int chash_diff(const chash *from, const chash *to, chash_range_fn fn, void *user);

/*
 * Buckets (CHASH_ALGO_BUCKETS). A key's bucket is fixed by the config (see
 * chash_bucket_by); a bucket's owner is the node pinned to it, else the
 * weighted rendezvous winner among all nodes for the bucket's number (the
 * node CHASH_ALGO_RENDEZVOUS gives for chash_lookup_hash(bucket) over the
 * same membership). A per-key override beats both. Pins and overrides
 * belong to a node, not to an index: they follow it when an earlier node's
 * removal shifts its index down (as every index does), and go with it when
 * it is removed (its buckets then go by rendezvous, its overridden keys by
 * their buckets). Clones carry them. Every function below returns
 * CHASH_ENOTSUP for another algorithm and CHASH_EINVAL for a NULL object or
 * out pointer, and leaves the object unchanged when it fails.
 *
 * "Cut flow", moving buckets 50-74 to node s4: clone the live object,
 * change the clone, print the exact plan, then publish the clone.
 *
 *     chash_clone(live, &next);
 *     chash_find(next, "s4", 2, &s4);
 *     chash_bucket_assign(next, 50, 74, s4);
 *     chash_bucket_diff(live, next, print_range, stdout);
 */

/*
 * chash_bucket_assign - pin buckets first..last (inclusive) to node
 * node_index, replacing the pins they had. Does not allocate. Errors:
 * CHASH_EINVAL (first > last, last >= bucket_count), CHASH_ENOENT (no such
 * node), CHASH_ENOTSUP. Cost: O(last - first + 1).
 */
CHASH_API int chash_bucket_assign(chash *c, uint32_t first, uint32_t last, size_t node_index);

/*
 * chash_bucket_unassign - drop the pins of buckets first..last: each goes
 * back to its rendezvous owner; buckets without a pin are left alone. Does
 * not allocate. Errors: CHASH_EINVAL (first > last, last >= bucket_count),
 * CHASH_ENOTSUP. Cost: O(nodes) per pinned bucket in the range, O(1) per
 * other.
 */
CHASH_API int chash_bucket_unassign(chash *c, uint32_t first, uint32_t last);

/*
 * chash_bucket_override - send one key to node node_index whatever its
 * bucket, replacing the key's earlier override. A key is matched by the
 * bytes its placement reads: with a hash tag that applies, the part between
 * the marks, so an override of "{user7}:cart" also moves "{user7}:profile"
 * (keys that share a tag stay together). The bytes are copied into memory
 * allocated here, never during a lookup. Errors: CHASH_EINVAL (key NULL
 * with key_len > 0, key_len above UINT32_MAX - 1), CHASH_ENOENT (no such
 * node), CHASH_ENOMEM, CHASH_ENOTSUP. Cost: O(key_len) expected, plus
 * O(overrides) when the table grows.
 */
CHASH_API int chash_bucket_override(chash *c, const void *key, size_t key_len,
                                    size_t node_index);

/*
 * chash_bucket_override_remove - drop a key's override (matched as above):
 * the key goes by its bucket again. Does not allocate. Errors: CHASH_EINVAL,
 * CHASH_ENOENT (no override for the key), CHASH_ENOTSUP. Cost:
 * O(overrides).
 */
CHASH_API int chash_bucket_override_remove(chash *c, const void *key, size_t key_len);

/* chash_bucket_override_count - the number of overrides (0 for NULL or
 * another algorithm). Cost: O(1). */
CHASH_API size_t chash_bucket_override_count(const chash *c);

/*
 * chash_bucket_override_at - override `index` (0 .. count-1, in an order
 * that any change may reshuffle): the matched bytes, pointing into c and
 * valid until c changes or is freed, and the node. Any out pointer may be
 * NULL. Errors: CHASH_EINVAL (c NULL), CHASH_ENOENT (index out of range),
 * CHASH_ENOTSUP. Cost: O(1).
 */
CHASH_API int chash_bucket_override_at(const chash *c, size_t index, const void **key,
                                       size_t *key_len, size_t *node);

/*
 * chash_bucket_of - the bucket a key falls in (0 .. bucket_count-1),
 * overrides aside; needs no nodes. Does not allocate. Errors: CHASH_EINVAL
 * (key NULL with key_len > 0), CHASH_ENOTSUP. Cost: O(key_len).
 */
CHASH_API int chash_bucket_of(const chash *c, const void *key, size_t key_len,
                              uint32_t *bucket);

/*
 * chash_bucket_owner - the node that owns a bucket (pinned there, else by
 * rendezvous). Does not allocate. Errors: CHASH_EINVAL (bucket >=
 * bucket_count), CHASH_EEMPTY (no nodes), CHASH_ENOTSUP. Cost: O(1).
 */
CHASH_API int chash_bucket_owner(const chash *c, uint32_t bucket, size_t *node);

/* One maximal run of consecutive buckets whose owner moves from one node to
 * another between two placements; the names point into the placements. */
typedef struct chash_bucket_range {
    uint32_t first; /* inclusive */
    uint32_t last;  /* inclusive */
    size_t from;    /* owner's node index in the old placement */
    size_t to;      /* owner's node index in the new placement */
    const void *from_name;
    size_t from_name_len;
    const void *to_name;
    size_t to_name_len;
} chash_bucket_range;

/* Called once per range, in ascending order; non-zero stops the walk. */
typedef int (*chash_bucket_range_fn)(void *user, const chash_bucket_range *range);

/*
 * chash_bucket_diff - the exact plan, by bucket, from `from` to `to`: each
 * maximal run of consecutive buckets whose owner changes (nodes compared by
 * name) with the same old and the same new owner throughout. Overrides are
 * single keys, not buckets, and are not reported: compare chash_lookup of
 * each overridden key (chash_bucket_override_at) for those. Both must be
 * CHASH_ALGO_BUCKETS with the same bucket_count, bucket_by, scheme, key
 * hash and hash tag (so every key is in the same bucket in both), else
 * CHASH_ENOTSUP. Either may be empty only if both are (CHASH_EEMPTY
 * otherwise). Returns CHASH_OK, CHASH_EINVAL (NULL argument), or the first
 * non-zero value fn returned. Does not allocate. Cost: O(buckets * name
 * length).
 */
CHASH_API int chash_bucket_diff(const chash *from, const chash *to, chash_bucket_range_fn fn,
                                void *user);

/*
 * Redis Cluster. A key's hash slot, as the server's CLUSTER KEYSLOT answers:
 * CRC-16/XMODEM (polynomial 0x1021, initial 0, not reflected; "123456789"
 * gives 0x31C3) mod 16384, of the whole key or, when the key holds a '{'
 * and after the first '{' a '}' with at least one byte between them, of
 * only the bytes between that '{' and the first '}' after it ("{user1}.a"
 * and "{user1}.b" share a slot; "{}x" and "a{b" hash whole). A placement of
 * CHASH_SCHEME_REDIS_CLUSTER puts every key in this bucket.
 */
#define CHASH_REDIS_SLOTS 16384u

/*
 * chash_redis_slot - the hash slot of a key, 0 .. CHASH_REDIS_SLOTS - 1.
 *
 * Pure: no object, no allocation, thread-safe. key may be NULL when key_len
 * is 0 (slot 0); a NULL key with key_len > 0 gives 0. Cost: O(key_len).
 */
CHASH_API uint32_t chash_redis_slot(const void *key, size_t key_len);

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
