/*
 * test_abi.c - the ABI promise of chash.h, from the side of a program built
 * against an older header: its chash_config is shorter (the same leading
 * fields, fewer trailing ones), and the library must neither read nor write
 * past it, give the missing fields their defaults, and place keys exactly as
 * for a full-size config with the same values. Also a newer caller (a longer
 * config), sizes that cannot be right, and the run-time version number.
 *
 * The old layouts are declared here as an older chash.h would have had them.
 * Each sits in a box with guard bytes after it, and once more in a heap block
 * of exactly its size, so a library that copied the whole current struct
 * fails here (guards or values) and under ASan (heap overflow).
 */
#include "testlib.h"

#include <chash.h>
#include <stddef.h>

#define GUARD_BYTE 0xA5
#define GUARD_LEN 64

/* chash_config before maglev_table_size, probe_count and load_epsilon. */
typedef struct config_through_tag {
    size_t struct_size;
    chash_algo algo;
    chash_scheme scheme;
    uint32_t vnodes;
    chash_allocator allocator;
    chash_hash key_hash;
    char hash_tag[4];
} config_through_tag;
_Static_assert(sizeof(config_through_tag) == offsetof(chash_config, maglev_table_size),
               "the old layout must be a prefix of the new one");

/* chash_config before load_epsilon. */
typedef struct config_through_probes {
    size_t struct_size;
    chash_algo algo;
    chash_scheme scheme;
    uint32_t vnodes;
    chash_allocator allocator;
    chash_hash key_hash;
    char hash_tag[4];
    uint32_t maglev_table_size;
    uint32_t probe_count;
} config_through_probes;
_Static_assert(sizeof(config_through_probes) == offsetof(chash_config, load_epsilon),
               "the old layout must be a prefix of the new one");

/* chash_config of 1.0.0: before bucket_count and bucket_by. */
typedef struct config_through_epsilon {
    size_t struct_size;
    chash_algo algo;
    chash_scheme scheme;
    uint32_t vnodes;
    chash_allocator allocator;
    chash_hash key_hash;
    char hash_tag[4];
    uint32_t maglev_table_size;
    uint32_t probe_count;
    double load_epsilon;
} config_through_epsilon;
_Static_assert(sizeof(config_through_epsilon) == offsetof(chash_config, bucket_count),
               "the old layout must be a prefix of the new one");

/* A newer caller's chash_config: one field this library does not have. */
typedef struct config_newer {
    chash_config current;
    uint64_t future_option;
} config_newer;

static void assert_guard(const unsigned char *guard) {
    for (size_t i = 0; i < GUARD_LEN; i++) ASSERT_UEQ(guard[i], GUARD_BYTE);
}

static chash *with_nodes(chash *c) {
    for (int i = 0; i < 12; i++) {
        char name[16];
        int len = snprintf(name, sizeof name, "node-%d", i);
        ASSERT_OK(chash_add(c, name, (size_t)len, (uint32_t)(1 + i % 3)));
    }
    return c;
}

/* Same owner, replicas where the algorithm has them, and bounded choices
 * under the same loads: the two placements cannot be told apart. */
static void assert_same_placement(const chash *a, const chash *b) {
    chash_config ca = CHASH_CONFIG_INIT, cb = CHASH_CONFIG_INIT;
    ASSERT_OK(chash_get_config(a, &ca));
    ASSERT_OK(chash_get_config(b, &cb));
    ASSERT_EQ(ca.algo, cb.algo);
    ASSERT_EQ(ca.scheme, cb.scheme);
    ASSERT_EQ(ca.vnodes, cb.vnodes);
    ASSERT_EQ(ca.key_hash, cb.key_hash);
    ASSERT_TRUE(memcmp(ca.hash_tag, cb.hash_tag, sizeof ca.hash_tag) == 0);
    ASSERT_EQ(ca.maglev_table_size, cb.maglev_table_size);
    ASSERT_EQ(ca.probe_count, cb.probe_count);
    ASSERT_NEAR(ca.load_epsilon, cb.load_epsilon, 0);
    ASSERT_EQ(chash_point_count(a), chash_point_count(b));
    chash_loads *la = NULL, *lb = NULL;
    ASSERT_OK(chash_loads_create(a, &la));
    ASSERT_OK(chash_loads_create(b, &lb));
    for (int k = 0; k < 4000; k++) {
        char key[24];
        int len = snprintf(key, sizeof key, "key:%d", k);
        size_t na, nb, ra[3], rb[3], fa, fb;
        ASSERT_OK(chash_lookup(a, key, (size_t)len, &na));
        ASSERT_OK(chash_lookup(b, key, (size_t)len, &nb));
        ASSERT_EQ(na, nb);
        int rc = chash_lookup_n(a, key, (size_t)len, 3, ra, &fa);
        ASSERT_EQ(chash_lookup_n(b, key, (size_t)len, 3, rb, &fb), rc);
        if (rc == CHASH_OK) {
            ASSERT_EQ(fa, fb);
            for (size_t i = 0; i < fa; i++) ASSERT_EQ(ra[i], rb[i]);
        }
        rc = chash_lookup_bounded(a, la, key, (size_t)len, &na);
        ASSERT_EQ(chash_lookup_bounded(b, lb, key, (size_t)len, &nb), rc);
        if (rc == CHASH_OK) {
            ASSERT_EQ(na, nb);
            ASSERT_OK(chash_loads_acquire(la, na));
            ASSERT_OK(chash_loads_acquire(lb, nb));
        }
    }
    chash_loads_free(la);
    chash_loads_free(lb);
}

/* An old caller without load_epsilon: bounded loads at the default 0.25. */
static void test_older_without_epsilon(void) {
    struct {
        config_through_probes cfg;
        unsigned char guard[GUARD_LEN];
    } box;
    memset(&box, GUARD_BYTE, sizeof box);
    memset(&box.cfg, 0, sizeof box.cfg);
    box.cfg.struct_size = sizeof box.cfg;
    box.cfg.algo = CHASH_ALGO_BOUNDED;
    box.cfg.vnodes = 40;

    chash *old = NULL;
    ASSERT_OK(chash_create((const chash_config *)&box.cfg, &old));
    assert_guard(box.guard);
    chash_config full = {.struct_size = sizeof full, .algo = CHASH_ALGO_BOUNDED, .vnodes = 40};
    chash *cur = NULL;
    ASSERT_OK(chash_create(&full, &cur));

    chash_config seen = CHASH_CONFIG_INIT;
    ASSERT_OK(chash_get_config(old, &seen));
    ASSERT_NEAR(seen.load_epsilon, CHASH_LOAD_EPSILON_DEFAULT, 0);
    ASSERT_EQ(seen.vnodes, 40);
    ASSERT_EQ(seen.probe_count, CHASH_PROBES_DEFAULT);
    assert_same_placement(with_nodes(old), with_nodes(cur));

    /* get_config into the old layout: its fields, nothing after them. */
    memset(&box.cfg, 0, sizeof box.cfg);
    box.cfg.struct_size = sizeof box.cfg;
    ASSERT_OK(chash_get_config(old, (chash_config *)&box.cfg));
    assert_guard(box.guard);
    ASSERT_UEQ(box.cfg.struct_size, sizeof box.cfg);
    ASSERT_EQ(box.cfg.algo, CHASH_ALGO_BOUNDED);
    ASSERT_EQ(box.cfg.vnodes, 40);
    ASSERT_EQ(box.cfg.key_hash, CHASH_HASH_CRC32A);
    ASSERT_EQ(box.cfg.maglev_table_size, CHASH_MAGLEV_TABLE_DEFAULT);
    ASSERT_EQ(box.cfg.probe_count, CHASH_PROBES_DEFAULT);

    /* The same in a heap block of exactly the old size, for ASan. */
    config_through_probes *heap = malloc(sizeof *heap);
    ASSERT_TRUE(heap != NULL);
    memset(heap, 0, sizeof *heap);
    heap->struct_size = sizeof *heap;
    heap->algo = CHASH_ALGO_BOUNDED;
    heap->vnodes = 40;
    chash *again = NULL;
    ASSERT_OK(chash_create((const chash_config *)heap, &again));
    ASSERT_OK(chash_get_config(again, (chash_config *)heap));
    ASSERT_EQ(heap->vnodes, 40);
    free(heap);
    chash_free(again);
    chash_free(old);
    chash_free(cur);
}

/* An older caller still: maglev and multi-probe options at their defaults,
 * a scheme, key hash and hash tag of its own. */
static void test_older_through_tag(void) {
    static const chash_algo algos[] = {CHASH_ALGO_MAGLEV, CHASH_ALGO_MULTIPROBE, CHASH_ALGO_RING};
    for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
        struct {
            config_through_tag cfg;
            unsigned char guard[GUARD_LEN];
        } box;
        memset(&box, GUARD_BYTE, sizeof box);
        memset(&box.cfg, 0, sizeof box.cfg);
        box.cfg.struct_size = sizeof box.cfg;
        box.cfg.algo = algos[a];
        box.cfg.key_hash = CHASH_HASH_MURMUR;
        memcpy(box.cfg.hash_tag, "{}", 3);
        if (algos[a] == CHASH_ALGO_RING) box.cfg.scheme = CHASH_SCHEME_KETAMA;

        chash *old = NULL;
        ASSERT_OK(chash_create((const chash_config *)&box.cfg, &old));
        assert_guard(box.guard);
        chash_config full = {.struct_size = sizeof full,
                             .algo = algos[a],
                             .scheme = box.cfg.scheme,
                             .key_hash = CHASH_HASH_MURMUR,
                             .hash_tag = "{}"};
        chash *cur = NULL;
        ASSERT_OK(chash_create(&full, &cur));
        ASSERT_UEQ(chash_key_hash(old, "a{b}c", 5), chash_hash32(CHASH_HASH_MURMUR, "b", 1));
        assert_same_placement(with_nodes(old), with_nodes(cur));

        memset(&box.cfg, 0, sizeof box.cfg);
        box.cfg.struct_size = sizeof box.cfg;
        ASSERT_OK(chash_get_config(old, (chash_config *)&box.cfg));
        assert_guard(box.guard);
        ASSERT_EQ(box.cfg.algo, algos[a]);
        ASSERT_EQ(box.cfg.key_hash, CHASH_HASH_MURMUR);
        ASSERT_TRUE(strcmp(box.cfg.hash_tag, "{}") == 0);
        chash_free(old);
        chash_free(cur);
    }
}

/* A 1.0.0 caller, which knows no buckets: everything as before, the bucket
 * options at their defaults, nothing written past its struct. A program
 * that picks CHASH_ALGO_BUCKETS by number (from chash_algo_from_name, say)
 * gets the default 100 buckets by hash. */
static void test_older_without_buckets(void) {
    static const chash_algo algos[] = {CHASH_ALGO_RING, CHASH_ALGO_BOUNDED, CHASH_ALGO_BUCKETS};
    for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
        struct {
            config_through_epsilon cfg;
            unsigned char guard[GUARD_LEN];
        } box;
        memset(&box, GUARD_BYTE, sizeof box);
        memset(&box.cfg, 0, sizeof box.cfg);
        box.cfg.struct_size = sizeof box.cfg;
        box.cfg.algo = algos[a];
        box.cfg.load_epsilon = 0.5;
        memcpy(box.cfg.hash_tag, "{}", 3);

        chash *old = NULL;
        ASSERT_OK(chash_create((const chash_config *)&box.cfg, &old));
        assert_guard(box.guard);
        chash_config full = {.struct_size = sizeof full,
                             .algo = algos[a],
                             .load_epsilon = 0.5,
                             .hash_tag = "{}",
                             .bucket_count = CHASH_BUCKETS_DEFAULT,
                             .bucket_by = CHASH_BUCKET_BY_HASH};
        chash *cur = NULL;
        ASSERT_OK(chash_create(&full, &cur));
        chash_config seen = CHASH_CONFIG_INIT;
        ASSERT_OK(chash_get_config(old, &seen));
        ASSERT_EQ(seen.bucket_count, CHASH_BUCKETS_DEFAULT);
        ASSERT_EQ(seen.bucket_by, CHASH_BUCKET_BY_HASH);
        ASSERT_NEAR(seen.load_epsilon, 0.5, 0);
        assert_same_placement(with_nodes(old), with_nodes(cur));

        memset(&box.cfg, 0, sizeof box.cfg);
        box.cfg.struct_size = sizeof box.cfg;
        ASSERT_OK(chash_get_config(old, (chash_config *)&box.cfg));
        assert_guard(box.guard);
        ASSERT_EQ(box.cfg.algo, algos[a]);
        ASSERT_NEAR(box.cfg.load_epsilon, 0.5, 0);

        /* Exactly the old size on the heap, for ASan. */
        config_through_epsilon *heap = malloc(sizeof *heap);
        ASSERT_TRUE(heap != NULL);
        memset(heap, 0, sizeof *heap);
        heap->struct_size = sizeof *heap;
        heap->algo = algos[a];
        chash *again = NULL;
        ASSERT_OK(chash_create((const chash_config *)heap, &again));
        ASSERT_OK(chash_get_config(again, (chash_config *)heap));
        ASSERT_EQ(heap->algo, algos[a]);
        free(heap);
        chash_free(again);
        chash_free(old);
        chash_free(cur);
    }

    /* A struct_size that ends after bucket_count: bucket_by is not read. */
    chash_config cut = {.struct_size = offsetof(chash_config, bucket_by),
                        .algo = CHASH_ALGO_BUCKETS,
                        .bucket_count = 10,
                        .bucket_by = CHASH_BUCKET_BY_DIGITS};
    chash *c = NULL;
    ASSERT_OK(chash_create(&cut, &c));
    chash_config seen = CHASH_CONFIG_INIT;
    ASSERT_OK(chash_get_config(c, &seen));
    ASSERT_EQ(seen.bucket_count, 10);
    ASSERT_EQ(seen.bucket_by, CHASH_BUCKET_BY_HASH);
    chash_free(c);
}

/* A field cut by struct_size is not read (default) and not written. */
static void test_size_inside_a_field(void) {
    chash_config cfg = {.struct_size = offsetof(chash_config, probe_count) + 2,
                        .algo = CHASH_ALGO_MULTIPROBE,
                        .probe_count = 5};
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    chash_config seen = CHASH_CONFIG_INIT;
    ASSERT_OK(chash_get_config(c, &seen));
    ASSERT_EQ(seen.probe_count, CHASH_PROBES_DEFAULT);
    cfg.probe_count = 0xdeadbeefu;
    ASSERT_OK(chash_get_config(c, &cfg));
    ASSERT_UEQ(cfg.probe_count, 0xdeadbeefu);
    ASSERT_EQ(cfg.maglev_table_size, CHASH_MAGLEV_TABLE_DEFAULT);
    chash_free(c);
}

/* A newer caller: its extra option must be zero, since silently ignoring it
 * would place keys otherwise than it asked; get_config leaves it alone. */
static void test_newer_caller(void) {
    config_newer newer;
    memset(&newer, 0, sizeof newer);
    newer.current.struct_size = sizeof newer;
    newer.current.algo = CHASH_ALGO_JUMP;
    chash *c = NULL;
    ASSERT_OK(chash_create(&newer.current, &c));
    newer.future_option = 0x1234;
    ASSERT_OK(chash_get_config(c, &newer.current));
    ASSERT_UEQ(newer.future_option, 0x1234);
    ASSERT_UEQ(newer.current.struct_size, sizeof newer);
    ASSERT_EQ(newer.current.algo, CHASH_ALGO_JUMP);
    chash_free(c);

    chash *d = NULL;
    ASSERT_EQ(chash_create(&newer.current, &d), CHASH_ESIZE);
    ASSERT_TRUE(d == NULL);
}

/* Sizes no caller can have: a config filled without struct_size, say. */
static void test_bad_sizes(void) {
    static const size_t sizes[] = {0, 1, sizeof(size_t) - 1, 4097, (size_t)-1};
    chash *c = NULL, *ok = NULL;
    ASSERT_OK(chash_create(NULL, &ok));
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        chash_config cfg = {.struct_size = sizes[i], .vnodes = 7};
        ASSERT_EQ(chash_create(&cfg, &c), CHASH_ESIZE);
        ASSERT_TRUE(c == NULL);
        ASSERT_EQ(chash_get_config(ok, &cfg), CHASH_ESIZE);
        ASSERT_EQ(cfg.vnodes, 7); /* unchanged */
    }
    /* Only the size field: all defaults, as NULL. */
    chash_config bare = {.struct_size = sizeof(size_t), .vnodes = 7};
    ASSERT_OK(chash_create(&bare, &c));
    chash_config seen = CHASH_CONFIG_INIT;
    ASSERT_OK(chash_get_config(c, &seen));
    ASSERT_EQ(seen.vnodes, CHASH_VNODES_DEFAULT);
    ASSERT_UEQ(seen.struct_size, sizeof seen);
    const char *m = chash_strerror(CHASH_ESIZE);
    ASSERT_TRUE(m && strcmp(m, "unknown error code") != 0);
    chash_free(c);
    chash_free(ok);
}

static void test_version(void) {
    ASSERT_UEQ(chash_version(), CHASH_VERSION_NUMBER);
    ASSERT_UEQ(CHASH_VERSION_NUMBER,
               CHASH_VERSION_MAJOR * 10000 + CHASH_VERSION_MINOR * 100 + CHASH_VERSION_PATCH);
    char text[32];
    snprintf(text, sizeof text, "%d.%d.%d", CHASH_VERSION_MAJOR, CHASH_VERSION_MINOR,
             CHASH_VERSION_PATCH);
    ASSERT_TRUE(strcmp(chash_version_string(), text) == 0);
    ASSERT_TRUE(strcmp(CHASH_VERSION_STRING, text) == 0);
}

/* No counts in the enums: the names end, without gaps, at the first NULL. */
static void test_enum_ends(void) {
    int algos = 0, schemes = 0, hashes = 0;
    while (chash_algo_name((chash_algo)algos)) algos++;
    while (chash_scheme_name((chash_scheme)schemes)) schemes++;
    while (chash_hash_name((chash_hash)hashes)) hashes++;
    ASSERT_EQ(algos, CHASH_ALGO_BUCKETS + 1);
    ASSERT_EQ(schemes, CHASH_SCHEME_REDIS_CLUSTER + 1);
    ASSERT_EQ(hashes, CHASH_HASH_CRC16 + 1);
    chash_config cfg = {.struct_size = sizeof cfg, .algo = (chash_algo)algos};
    chash *c = NULL;
    ASSERT_EQ(chash_create(&cfg, &c), CHASH_EINVAL);
}

int main(void) {
    test_version();
    test_older_without_epsilon();
    test_older_through_tag();
    test_older_without_buckets();
    test_size_inside_a_field();
    test_newer_caller();
    test_bad_sizes();
    test_enum_ends();
    TEST_DONE();
}
