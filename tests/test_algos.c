#define _POSIX_C_SOURCE 200809L
/*
 * test_algos.c - one property suite over every placement algorithm: what
 * each one promises (docs/algorithms.md) is checked the same way for all.
 *
 *   known answers   jump(256, 1024) = 520 as in the paper; placement vectors
 *                   that pin every algorithm's answers across versions
 *   disruption      minimal where promised, asserted key by key: after an
 *                   add only keys now on the new node moved, after a remove
 *                   only the removed node's keys; jump, rendezvous and
 *                   memento move 1/(N+1) +- 10 %; modulo N/(N+1); maglev
 *                   at most 1.30x the minimum (assert_move_factor says why)
 *   balance         max/mean bounds per algorithm, weighted shares
 *   determinism     same membership twice, in another order, by add_many or
 *                   one add at a time, by clone: same answers where promised
 *   lookup_n        distinct, owner first, or CHASH_ENOTSUP
 *   bounded loads   no node past ceil((1 + eps) * mean), counters, errors
 *   memento         any removal, LIFO restore, weights
 *   buckets         run here with 65,536 buckets (suite_config), so that
 *                   buckets are as even as keys; its own calls (pins,
 *                   overrides, digits, plans) are test_buckets.c's
 *   errors          every CHASH_ENOTSUP / EINVAL / ETOOBIG the API names
 *   allocation      an allocator failing the n-th call, swept over every n
 *   threads         readers sharing one object (also run alone, as
 *                   `test_algos threads`, under ThreadSanitizer)
 */
#include "failing_alloc.h"
#include "testlib.h"

#include <chash.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../src/internal.h" /* chash_jump_bucket: the paper's function */

/* What each algorithm promises; the suite checks exactly these. */
typedef struct traits {
    chash_algo algo;
    bool is_minimal;    /* keys move only to an added / from a removed node */
    bool removes_any;   /* any node may leave (jump: only the last) */
    bool is_order_free; /* the membership alone decides, not the order */
    bool has_lookup_n;
    bool has_ownership;
    bool is_even;     /* balanced in expectation: add moves 1/(N+1) +- 10 % */
    double max_ratio; /* max/mean bound, 100 nodes, 1,000,000 keys */
    double weighted_tolerance; /* |share/ideal - 1| with weights 1..4 */
} traits;

static const traits all_algos[] = {
    /* Even algorithms: 1,000,000 keys over 100 nodes leave a sampling
     * spread of 1 % per node, so the max of 100 sits near 1.03. */
    {CHASH_ALGO_RING, true, true, true, true, true, false, 1.40, 0.30},
    {CHASH_ALGO_MODULO, false, true, false, false, true, true, 1.05, 0.05},
    {CHASH_ALGO_JUMP, true, false, false, false, false, true, 1.05, 0.05},
    {CHASH_ALGO_RENDEZVOUS, true, true, true, true, false, true, 1.05, 0.05},
    {CHASH_ALGO_MAGLEV, false, true, true, false, true, true, 1.05, 0.05},
    {CHASH_ALGO_MULTIPROBE, true, true, true, true, false, false, 1.10, -1},
    {CHASH_ALGO_BOUNDED, true, true, true, true, true, false, 1.40, 0.30},
    {CHASH_ALGO_MEMENTO, true, true, false, false, false, true, 1.05, 0.05},
    /* 65,536 buckets over 100 nodes: ~655 each, a spread of 4 % per node
     * on top of the keys', so the max of 100 sits near 1.12; weights 1..4
     * over 12 nodes: 2,185 buckets per unit, 2 % each, 6 % at most. */
    {CHASH_ALGO_BUCKETS, true, true, true, true, true, true, 1.20, 0.08},
};
#define ALGO_COUNT (sizeof all_algos / sizeof all_algos[0])

static const char *algo_name(const traits *t) { return chash_algo_name(t->algo); }

/* The config the suite builds each algorithm with: the defaults, but for
 * buckets 65,536 of them (the default 100 suits ids' last two digits, not
 * 100 nodes sharing keys evenly). */
static chash_config suite_config(chash_algo algo) {
    chash_config cfg = {.struct_size = sizeof cfg, .algo = algo};
    if (algo == CHASH_ALGO_BUCKETS) cfg.bucket_count = 65536;
    return cfg;
}

/* ---- helpers ----------------------------------------------------------- */

static chash *make(chash_algo algo, size_t first, size_t count) {
    chash_config cfg = suite_config(algo);
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    for (size_t i = first; i < first + count; i++) {
        char name[32];
        int len = sprintf(name, "node-%zu", i);
        ASSERT_OK(chash_add(c, name, (size_t)len, 1));
    }
    return c;
}

/* Key hashes of `count` keys "key-<i>"; the same for every algorithm. */
static uint64_t *make_keys(const chash *c, size_t count) {
    uint64_t *h = malloc(count * sizeof *h);
    ASSERT_TRUE(h != NULL);
    for (size_t i = 0; i < count; i++) {
        char key[32];
        int len = sprintf(key, "key-%zu", i);
        h[i] = chash_key_hash(c, key, (size_t)len);
    }
    return h;
}

static size_t owner(const chash *c, uint64_t hash) {
    size_t n = SIZE_MAX;
    ASSERT_OK(chash_lookup_hash(c, hash, &n));
    return n;
}

static bool same_node(const chash *a, size_t ia, const chash *b, size_t ib) {
    const void *na, *nb;
    size_t la, lb;
    ASSERT_OK(chash_node(a, ia, &na, &la, NULL));
    ASSERT_OK(chash_node(b, ib, &nb, &lb, NULL));
    return la == lb && memcmp(na, nb, la) == 0;
}

static size_t index_of(const chash *c, const char *name) {
    size_t i = SIZE_MAX;
    ASSERT_OK(chash_find(c, name, strlen(name), &i));
    return i;
}

/* Every key's owner, by name, is the same in a and b. */
static void assert_same_answers(const chash *a, const chash *b, const uint64_t *keys,
                                size_t count) {
    for (size_t k = 0; k < count; k++) ASSERT_TRUE(same_node(a, owner(a, keys[k]), b, owner(b, keys[k])));
}

/*
 * The movement from `before` to `after`: keys whose owner (by name)
 * changed. When `to` is non-NULL every move must end on that node; when
 * `from` is, every move must start on it and every key of it must move.
 */
static size_t moved_keys(const chash *before, const chash *after, const uint64_t *keys,
                         size_t count, const char *to, const char *from) {
    size_t moved = 0;
    for (size_t k = 0; k < count; k++) {
        size_t ob = owner(before, keys[k]), oa = owner(after, keys[k]);
        const void *nb, *na;
        size_t lb, la;
        chash_node(before, ob, &nb, &lb, NULL);
        chash_node(after, oa, &na, &la, NULL);
        bool was_from = from && lb == strlen(from) && memcmp(nb, from, lb) == 0;
        if (lb == la && memcmp(nb, na, lb) == 0) {
            if (from && was_from) TEST_FAIL_AT("a key stayed on removed node %s", from);
            continue;
        }
        moved++;
        if (to && !(la == strlen(to) && memcmp(na, to, la) == 0))
            TEST_FAIL_AT("key %zu moved to %.*s, not to the added %s", k, (int)la,
                         (const char *)na, to);
        if (from && !was_from)
            TEST_FAIL_AT("key %zu moved from %.*s, not from the removed %s", k, (int)lb,
                         (const char *)nb, from);
    }
    return moved;
}

/* ---- known answers ----------------------------------------------------- */

/* The paper's function as printed (integer jumps), the oracle for ours,
 * which keeps the jumps in double to shorten the loop. */
static int32_t jump_as_in_paper(uint64_t key, int32_t num_buckets) {
    int64_t b = -1, j = 0;
    while (j < num_buckets) {
        b = j;
        key = key * 2862933555777941757ull + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1ll << 31) / (double)((key >> 33) + 1)));
    }
    return (int32_t)b;
}

/* The owners of 10,000 keys over 37 nodes (weights 1..3), folded FNV-1a
 * style into one number. */
static uint64_t placement_vector(chash_algo algo) {
    chash_config cfg = suite_config(algo);
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    for (int i = 0; i < 37; i++) {
        char name[32];
        int len = sprintf(name, "cache-%02d", i);
        ASSERT_OK(chash_add(c, name, (size_t)len, 1 + (uint32_t)(i % 3)));
    }
    uint64_t h = 1469598103934665603ull;
    for (int k = 0; k < 10000; k++) {
        char key[32];
        size_t n;
        int len = sprintf(key, "user:%d", k);
        ASSERT_OK(chash_lookup(c, key, (size_t)len, &n));
        h = (h ^ n) * 1099511628211ull;
    }
    chash_free(c);
    return h;
}

/* "CHASH_ALGO_RING" for ring: the table's own spelling. */
static const char *algo_enum_name(chash_algo algo) {
    static char buf[32];
    const char *name = chash_algo_name(algo);
    size_t i = (size_t)sprintf(buf, "CHASH_ALGO_");
    for (; *name && i + 1 < sizeof buf; name++) buf[i++] = (char)(*name - 'a' + 'A');
    buf[i] = '\0';
    return buf;
}

static void test_known_answers(void) {
    /* Lamping & Veach: key 256 over 1024 buckets is bucket 520. */
    ASSERT_EQ(chash_jump_bucket(256, 1024), 520);
    ASSERT_EQ(chash_jump_bucket(256, 1), 0);
    ASSERT_EQ(chash_jump_bucket(0, 1), 0);
    uint64_t diff_seed = 11;
    for (int i = 0; i < 300000; i++) {
        uint64_t key = test_rand(&diff_seed);
        /* Small, mid and the largest bucket counts. */
        int32_t n = i % 3 == 0   ? 1 + (int32_t)(key % 64)
                    : i % 3 == 1 ? 1 + (int32_t)(key % 100000)
                                 : INT32_MAX - (int32_t)(key % 1000);
        ASSERT_EQ(chash_jump_bucket(key, n), jump_as_in_paper(key, n));
    }
    /* Monotone in the bucket count: a key only ever jumps to the new one. */
    uint64_t seed = 7;
    for (int i = 0; i < 2000; i++) {
        uint64_t key = test_rand(&seed);
        int32_t prev = 0;
        for (int32_t n = 1; n <= 64; n++) {
            int32_t b = chash_jump_bucket(key, n);
            ASSERT_TRUE(b == prev || b == n - 1);
            prev = b;
        }
    }

    /* Placement vectors: owners of 10,000 keys over 37 nodes (weights 1..3),
     * folded into one number per algorithm (`test_algos print-vectors`
     * prints them). A change here moves users' keys: it needs a new major
     * version, not a new vector. Jump and memento agree with no removals, as
     * do ring and bounded for plain lookups. */
    static const uint64_t expected[] = {
        [CHASH_ALGO_RING] = 0x6b426dd76c0321b3ull,
        [CHASH_ALGO_MODULO] = 0xa9d2fbafdebb27b8ull,
        [CHASH_ALGO_JUMP] = 0x97c88c81f15aba1bull,
        [CHASH_ALGO_RENDEZVOUS] = 0x188e6f51b99452ceull,
        [CHASH_ALGO_MAGLEV] = 0xba8283c9eab3caa4ull,
        [CHASH_ALGO_MULTIPROBE] = 0x6f107fe4134d1b27ull,
        [CHASH_ALGO_BOUNDED] = 0x6b426dd76c0321b3ull,
        [CHASH_ALGO_MEMENTO] = 0x97c88c81f15aba1bull,
        [CHASH_ALGO_BUCKETS] = 0xd1060dd2359f7fa6ull,
    };
    /* Every algorithm the library names has a vector. */
    size_t algo_count = 0;
    while (chash_algo_name((chash_algo)algo_count)) algo_count++;
    ASSERT_EQ(algo_count, sizeof expected / sizeof expected[0]);
    for (int a = 0; a < (int)algo_count; a++)
        ASSERT_UEQ(placement_vector((chash_algo)a), expected[a]);
}

/* `test_algos print-vectors`: the table above, for a new major version.
 * A tool mode, not a test: ctest never runs it, and it checks nothing. */
static void print_vectors(void) {
    for (int a = 0; chash_algo_name((chash_algo)a); a++)
        printf("        [%s] = 0x%016llxull,\n", algo_enum_name((chash_algo)a),
               (unsigned long long)placement_vector((chash_algo)a));
}

/* ---- disruption -------------------------------------------------------- */

/*
 * Keys moved by one change, over the least any placement must move (the
 * new or removed node's fair share), against what each algorithm promises.
 * The change is test_disruption's: 30 nodes, one added or node-7 removed,
 * 100,000 keys, so a fair share of 3,200 or 3,300 keys has a sampling
 * spread of about 2 %.
 *   even and minimal  1 +- 0.10: exactly the new or removed node's keys.
 *   modulo            a key stays only if h mod 30 and h mod 31 (h mod 29)
 *                     name the same node: 1 of 31 (1 of 30) residue pairs,
 *                     so it moves `modulo_factor` = 30 (29) times the
 *                     minimum, to within 1 % (the spread is 0.06 %).
 *   maglev            at least the minimum (the new node claims a fair share
 *                     of entries, to 1 %) and at most 1.30x: some entries
 *                     change hands between nodes that stay. Measured with
 *                     this change (add, remove the 8th) over 1,000 random
 *                     30-node memberships at the default 65,537 entries:
 *                     mean 1.12x, sd 0.03, one membership past 1.25; ours
 *                     moves 1.10x and 1.11x. Refilling the table from
 *                     scratch, as modulo does its slots, would move ~30x.
 *   ring, multiprobe, bounded: minimal, so the moved keys are exactly the
 *                     new node's load (moved_keys checks each); how fair
 *                     that load is, is test_balance's to check.
 */
static void assert_move_factor(const traits *t, double factor, int modulo_factor) {
    if (t->is_even && t->is_minimal) ASSERT_NEAR(factor, 1.0, 0.10);
    if (t->algo == CHASH_ALGO_MODULO) ASSERT_NEAR(factor, modulo_factor, 0.01 * modulo_factor);
    if (t->algo == CHASH_ALGO_MAGLEV) ASSERT_TRUE(factor >= 0.90 && factor <= 1.30);
}

static void test_disruption(const traits *t) {
    enum { N = 30, KEYS = 100000 };
    chash *c = make(t->algo, 0, N);
    uint64_t *keys = make_keys(c, KEYS);

    /* Add one node. */
    chash *grown = NULL;
    ASSERT_OK(chash_clone(c, &grown));
    ASSERT_OK(chash_add(grown, "node-new", 8, 1));
    size_t moved = moved_keys(c, grown, keys, KEYS, t->is_minimal ? "node-new" : NULL, NULL);
    double ideal = (double)KEYS / (N + 1), factor = (double)moved / ideal;
    printf("  %-10s add:    moved %5.2f%% of keys, %.2fx the minimum\n", algo_name(t),
           100.0 * (double)moved / KEYS, factor);
    assert_move_factor(t, factor, N);

    /* Remove one: a middle node where allowed, else the last. */
    const char *victim = t->removes_any ? "node-7" : "node-29";
    chash *shrunk = NULL;
    ASSERT_OK(chash_clone(c, &shrunk));
    ASSERT_OK(chash_remove(shrunk, victim, strlen(victim)));
    moved = moved_keys(c, shrunk, keys, KEYS, NULL, t->is_minimal ? victim : NULL);
    ideal = (double)KEYS / N;
    factor = (double)moved / ideal;
    printf("  %-10s remove: moved %5.2f%% of keys, %.2fx the minimum\n", algo_name(t),
           100.0 * (double)moved / KEYS, factor);
    assert_move_factor(t, factor, N - 1);
    if (!t->removes_any) {
        /* Plain jump: a middle node cannot go, and trying changes nothing. */
        chash *k = NULL;
        ASSERT_OK(chash_clone(c, &k));
        ASSERT_EQ(chash_remove(k, "node-7", 6), CHASH_ENOTSUP);
        ASSERT_EQ(chash_set_weight(k, "node-7", 6, 2), CHASH_ENOTSUP);
        ASSERT_EQ(chash_node_count(k), N);
        assert_same_answers(c, k, keys, 2000);
        chash_free(k);
    }

    /* Reweighting: heavier moves keys only to the node, lighter only from it
     * (a subset of its keys: not every key of it must move). */
    if (t->is_minimal) {
        const char *who = t->removes_any ? "node-3" : "node-29";
        chash *heavy = NULL;
        ASSERT_OK(chash_clone(c, &heavy));
        ASSERT_OK(chash_set_weight(heavy, who, strlen(who), 3));
        size_t up = moved_keys(c, heavy, keys, KEYS, who, NULL);
        if (t->is_even) ASSERT_NEAR((double)up / KEYS, 2.0 / (N + 2), 0.1 * 2.0 / (N + 2));
        chash *light = NULL;
        ASSERT_OK(chash_clone(heavy, &light));
        ASSERT_OK(chash_set_weight(light, who, strlen(who), 1));
        size_t w = index_of(heavy, who);
        for (size_t k = 0; k < KEYS; k++) {
            size_t ob = owner(heavy, keys[k]), oa = owner(light, keys[k]);
            if (!same_node(heavy, ob, light, oa)) ASSERT_EQ(ob, w);
        }
        /* Back to weight 1 gives back the first answers. */
        assert_same_answers(c, light, keys, KEYS);
        chash_free(heavy);
        chash_free(light);
    }
    chash_free(grown);
    chash_free(shrunk);
    chash_free(c);
    free(keys);
}

/* ---- balance ----------------------------------------------------------- */

static double max_over_mean(const chash *c, size_t keys) {
    size_t n = chash_node_count(c);
    uint64_t *load = calloc(n, sizeof *load);
    ASSERT_TRUE(load != NULL);
    for (size_t k = 0; k < keys; k++) {
        char key[32];
        size_t o;
        int len = sprintf(key, "b%zu", k);
        ASSERT_OK(chash_lookup(c, key, (size_t)len, &o));
        load[o]++;
    }
    uint64_t max = 0;
    for (size_t i = 0; i < n; i++)
        if (load[i] > max) max = load[i];
    free(load);
    return (double)max / ((double)keys / (double)n);
}

static void test_balance(const traits *t) {
    chash *c = make(t->algo, 0, 100);
    double r = max_over_mean(c, 1000000);
    printf("  %-10s max/mean %.4f at 100 nodes, 1,000,000 keys (bound %.2f)\n", algo_name(t), r,
           t->max_ratio);
    ASSERT_TRUE(r <= t->max_ratio);
    chash_free(c);

    if (t->weighted_tolerance < 0) return; /* multiprobe: a point per weight unit */
    chash_config cfg = suite_config(t->algo);
    ASSERT_OK(chash_create(&cfg, &c));
    uint32_t weight_sum = 0;
    for (uint32_t i = 0; i < 12; i++) {
        char name[32];
        int len = sprintf(name, "w-%u", i);
        ASSERT_OK(chash_add(c, name, (size_t)len, 1 + i % 4));
        weight_sum += 1 + i % 4;
    }
    enum { KEYS = 400000 };
    uint64_t load[12] = {0};
    for (size_t k = 0; k < KEYS; k++) {
        char key[32];
        size_t o;
        int len = sprintf(key, "w%zu", k);
        ASSERT_OK(chash_lookup(c, key, (size_t)len, &o));
        load[o]++;
    }
    for (uint32_t i = 0; i < 12; i++) {
        double ideal = (double)KEYS * (1 + i % 4) / weight_sum;
        ASSERT_NEAR((double)load[i] / ideal, 1.0, t->weighted_tolerance);
    }
    chash_free(c);
}

/* ---- determinism ------------------------------------------------------- */

static void test_determinism(const traits *t) {
    enum { N = 40, KEYS = 20000 };
    chash *a = make(t->algo, 0, N), *b = make(t->algo, 0, N);
    uint64_t *keys = make_keys(a, KEYS);
    assert_same_answers(a, b, keys, KEYS);

    /* add_many gives what one add at a time gives. */
    chash_config cfg = suite_config(t->algo);
    chash *m = NULL;
    ASSERT_OK(chash_create(&cfg, &m));
    ASSERT_OK(chash_add(m, "node-0", 6, 1));
    chash_node_spec specs[N - 1];
    char names[N][32];
    for (size_t i = 1; i < N; i++) {
        int len = sprintf(names[i], "node-%zu", i);
        specs[i - 1] = (chash_node_spec){names[i], (size_t)len, 1};
    }
    ASSERT_OK(chash_add_many(m, specs, N - 1));
    assert_same_answers(a, m, keys, KEYS);

    /* A clone answers as its original. */
    chash *k = NULL;
    ASSERT_OK(chash_clone(a, &k));
    assert_same_answers(a, k, keys, KEYS);

    /* Another order of the same membership. */
    chash *r = NULL;
    ASSERT_OK(chash_create(&cfg, &r));
    for (size_t i = N; i-- > 0;) {
        char name[32];
        int len = sprintf(name, "node-%zu", i);
        ASSERT_OK(chash_add(r, name, (size_t)len, 1));
    }
    if (t->is_order_free) assert_same_answers(a, r, keys, KEYS);

    /* An extra node added and removed again leaves what was there. */
    chash *back = NULL;
    ASSERT_OK(chash_clone(a, &back));
    ASSERT_OK(chash_add(back, "transient", 9, 2));
    ASSERT_OK(chash_remove(back, "transient", 9));
    assert_same_answers(a, back, keys, KEYS);

    chash_free(a);
    chash_free(b);
    chash_free(m);
    chash_free(k);
    chash_free(r);
    chash_free(back);
    free(keys);
}

/* ---- lookup_n ---------------------------------------------------------- */

static void test_lookup_n(const traits *t) {
    chash *c = make(t->algo, 0, 12);
    size_t list[16], found = 0, n;
    if (!t->has_lookup_n) {
        ASSERT_EQ(chash_lookup_n(c, "k", 1, 3, list, &found), CHASH_ENOTSUP);
        chash_free(c);
        return;
    }
    for (int k = 0; k < 2000; k++) {
        char key[32];
        int len = sprintf(key, "r%d", k);
        size_t want = 1 + (size_t)k % 14;
        ASSERT_OK(chash_lookup_n(c, key, (size_t)len, want, list, &found));
        ASSERT_EQ(found, want < 12 ? want : 12);
        ASSERT_OK(chash_lookup(c, key, (size_t)len, &n));
        ASSERT_EQ(list[0], n);
        for (size_t i = 0; i < found; i++) {
            ASSERT_TRUE(list[i] < 12);
            for (size_t j = 0; j < i; j++) ASSERT_TRUE(list[i] != list[j]);
        }
        /* Ring and rendezvous: the second choice is the owner once the first
         * is gone (multi-probe picks again over all probes). */
        if (k < 200 && found >= 2 && t->algo != CHASH_ALGO_MULTIPROBE) {
            chash *less = NULL;
            const void *name;
            size_t name_len;
            ASSERT_OK(chash_clone(c, &less));
            ASSERT_OK(chash_node(c, list[0], &name, &name_len, NULL));
            ASSERT_OK(chash_remove(less, name, name_len));
            ASSERT_OK(chash_lookup(less, key, (size_t)len, &n));
            ASSERT_TRUE(same_node(c, list[1], less, n));
            chash_free(less);
        }
    }
    ASSERT_OK(chash_lookup_n(c, "k", 1, 0, list, &found));
    ASSERT_EQ(found, 0);
    chash_free(c);
}

/* ---- ownership --------------------------------------------------------- */

static void test_ownership(const traits *t) {
    chash *c = make(t->algo, 0, 9);
    uint64_t shares[9], space = 0;
    if (!t->has_ownership) {
        ASSERT_EQ(chash_ownership(c, shares, 9, &space), CHASH_ENOTSUP);
        chash_free(c);
        return;
    }
    ASSERT_OK(chash_ownership(c, shares, 9, &space));
    uint64_t sum = 0;
    for (int i = 0; i < 9; i++) sum += shares[i];
    ASSERT_UEQ(sum, space);
    ASSERT_UEQ(space, (uint64_t)1 << 32);
    /* Sampled uniform hashes agree with the exact shares. */
    enum { SAMPLES = 300000 };
    uint64_t hits[9] = {0}, seed = 3;
    for (int s = 0; s < SAMPLES; s++) hits[owner(c, (uint32_t)test_rand(&seed))]++;
    for (int i = 0; i < 9; i++)
        ASSERT_NEAR((double)hits[i] / SAMPLES, (double)shares[i] / (double)space, 0.005);
    chash_free(c);
}

/* ---- maglev ------------------------------------------------------------ */

static void test_maglev(void) {
    /* Small tables: each node holds floor or ceil of M/N entries. */
    chash_config cfg = {.struct_size = sizeof cfg,
                        .algo = CHASH_ALGO_MAGLEV, .maglev_table_size = 1009};
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    for (int i = 0; i < 7; i++) {
        char name[32];
        int len = sprintf(name, "m%d", i);
        ASSERT_OK(chash_add(c, name, (size_t)len, 1));
    }
    uint64_t shares[7], space;
    ASSERT_OK(chash_ownership(c, shares, 7, &space));
    /* 1009 / 7 = 144.1: 144 or 145 entries of about 2^32 / 1009 hashes. */
    double per_entry = (double)space / 1009;
    for (int i = 0; i < 7; i++) {
        double entries = (double)shares[i] / per_entry;
        ASSERT_TRUE(entries > 143.9 && entries < 145.1);
    }
    chash_config got = CHASH_CONFIG_INIT;
    ASSERT_OK(chash_get_config(c, &got));
    ASSERT_EQ(got.maglev_table_size, 1009);
    chash_free(c);

    /* Weights as turn frequency: weight 3 gets three times the entries. */
    ASSERT_OK(chash_create(&cfg, &c));
    ASSERT_OK(chash_add(c, "light", 5, 1));
    ASSERT_OK(chash_add(c, "heavy", 5, 3));
    ASSERT_OK(chash_ownership(c, shares, 2, &space));
    ASSERT_NEAR((double)shares[1] / (double)space, 0.75, 0.002);
    chash_free(c);

    /* No more nodes than entries. */
    cfg.maglev_table_size = 5;
    ASSERT_OK(chash_create(&cfg, &c));
    for (int i = 0; i < 5; i++) {
        char name[16];
        int len = sprintf(name, "t%d", i);
        ASSERT_OK(chash_add(c, name, (size_t)len, 1));
    }
    ASSERT_EQ(chash_add(c, "t5", 2, 1), CHASH_ETOOBIG);
    ASSERT_EQ(chash_node_count(c), 5);
    chash_free(c);
}

/* ---- bounded loads ----------------------------------------------------- */

static void fill_bounded(double epsilon, const uint32_t *weights, size_t n, size_t units) {
    chash_config cfg = {.struct_size = sizeof cfg,
                        .algo = CHASH_ALGO_BOUNDED, .load_epsilon = epsilon};
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    uint64_t weight_sum = 0;
    for (size_t i = 0; i < n; i++) {
        char name[32];
        int len = sprintf(name, "b-%zu", i);
        ASSERT_OK(chash_add(c, name, (size_t)len, weights ? weights[i] : 1));
        weight_sum += weights ? weights[i] : 1;
    }
    chash_loads *loads = NULL;
    ASSERT_OK(chash_loads_create(c, &loads));
    size_t at_owner = 0;
    for (size_t u = 0; u < units; u++) {
        char key[32];
        int len = sprintf(key, "u%zu", u);
        size_t node, plain;
        ASSERT_OK(chash_lookup_bounded(c, loads, key, (size_t)len, &node));
        ASSERT_OK(chash_lookup(c, key, (size_t)len, &plain));
        if (u == 0) ASSERT_EQ(node, plain); /* empty loads: the ring's answer */
        at_owner += node == plain;
        /* The cap holds at every step, for the units placed so far. */
        uint32_t w = weights ? weights[node] : 1;
        double cap = (1 + epsilon) * (double)(u + 1) * w / (double)weight_sum;
        ASSERT_TRUE((double)chash_loads_get(loads, node) < cap * (1 + 1e-12));
        ASSERT_OK(chash_loads_acquire(loads, node));
    }
    ASSERT_UEQ(chash_loads_total(loads), units);
    double mean = (double)units / (double)weight_sum, worst = 0;
    for (size_t i = 0; i < n; i++) {
        double r = (double)chash_loads_get(loads, i) / (mean * (weights ? weights[i] : 1));
        if (r > worst) worst = r;
    }
    /* The bar: max/mean <= 1 + eps + 1/mean. */
    ASSERT_TRUE(worst <= 1 + epsilon + 1 / mean + 1e-9);
    printf("  bounded eps=%.2f %s: max/mean %.4f (bound %.4f), %.1f%% at the ring owner\n",
           epsilon, weights ? "weighted" : "equal", worst, 1 + epsilon + 1 / mean,
           100.0 * (double)at_owner / (double)units);
    for (size_t i = 0; i < n; i++) {
        uint64_t l = chash_loads_get(loads, i);
        for (uint64_t j = 0; j < l; j++) ASSERT_OK(chash_loads_release(loads, i));
    }
    ASSERT_UEQ(chash_loads_total(loads), 0);
    chash_loads_free(loads);
    chash_free(c);
}

static void test_bounded(void) {
    fill_bounded(0.25, NULL, 20, 50000);
    fill_bounded(0.05, NULL, 50, 20000);
    static const uint32_t w[8] = {1, 2, 3, 4, 1, 2, 3, 4};
    fill_bounded(0.10, w, 8, 20000);

    chash *c = make(CHASH_ALGO_BOUNDED, 0, 4), *ring = make(CHASH_ALGO_RING, 0, 4);
    chash_loads *loads = NULL, *ring_loads = NULL;
    size_t n;
    ASSERT_OK(chash_loads_create(c, &loads));
    ASSERT_OK(chash_loads_create(ring, &ring_loads));
    ASSERT_EQ(chash_lookup_bounded(ring, ring_loads, "k", 1, &n), CHASH_ENOTSUP);
    ASSERT_EQ(chash_lookup_bounded(c, NULL, "k", 1, &n), CHASH_EINVAL);
    ASSERT_EQ(chash_lookup_bounded(c, loads, NULL, 1, &n), CHASH_EINVAL);
    ASSERT_EQ(chash_loads_release(loads, 0), CHASH_EINVAL); /* already 0 */
    ASSERT_EQ(chash_loads_acquire(loads, 4), CHASH_ENOENT);
    ASSERT_EQ(chash_loads_acquire(NULL, 0), CHASH_EINVAL);
    ASSERT_EQ(chash_loads_set(loads, 9, 1), CHASH_ENOENT);
    ASSERT_EQ(chash_loads_create(NULL, &loads), CHASH_EINVAL);
    ASSERT_UEQ(chash_loads_get(NULL, 0), 0);
    ASSERT_UEQ(chash_loads_total(NULL), 0);
    /* set feeds live counts: the owner at its cap sends the key on. */
    ASSERT_OK(chash_lookup(c, "k", 1, &n));
    ASSERT_OK(chash_loads_set(loads, n, 100));
    ASSERT_OK(chash_loads_set(loads, (n + 1) % 4, 2));
    ASSERT_UEQ(chash_loads_total(loads), 102);
    size_t m;
    ASSERT_OK(chash_lookup_bounded(c, loads, "k", 1, &m));
    ASSERT_TRUE(m != n);
    ASSERT_OK(chash_loads_set(loads, n, 0));
    ASSERT_UEQ(chash_loads_total(loads), 2);
    ASSERT_OK(chash_lookup_bounded(c, loads, "k", 1, &m));
    ASSERT_EQ(m, n);
    /* A tracker made for another membership is refused. */
    ASSERT_OK(chash_add(c, "node-9", 6, 1));
    ASSERT_EQ(chash_lookup_bounded(c, loads, "k", 1, &m), CHASH_EINVAL);
    chash_loads_free(loads);
    chash_loads_free(ring_loads);
    chash_loads_free(NULL);
    chash_free(c);
    chash_free(ring);
}

/* ---- memento ----------------------------------------------------------- */

static void test_memento(void) {
    enum { N = 50, KEYS = 60000 };
    chash *c = make(CHASH_ALGO_MEMENTO, 0, N);
    uint64_t *keys = make_keys(c, KEYS);
    chash *original = NULL;
    ASSERT_OK(chash_clone(c, &original));

    /* Remove 10 nodes in a scattered order; each step moves only the
     * removed node's keys, and the rest stay balanced. */
    static const int order[10] = {17, 3, 44, 28, 9, 49, 0, 33, 21, 38};
    for (int i = 0; i < 10; i++) {
        char name[32];
        sprintf(name, "node-%d", order[i]);
        chash *next = NULL;
        ASSERT_OK(chash_clone(c, &next));
        ASSERT_OK(chash_remove(next, name, strlen(name)));
        moved_keys(c, next, keys, KEYS, NULL, name);
        chash_free(c);
        c = next;
    }
    double r = max_over_mean(c, 400000);
    printf("  memento after 10 of 50 removed: max/mean %.4f over 400,000 keys\n", r);
    ASSERT_TRUE(r < 1.10);

    /* A new node takes exactly the bucket removed last (LIFO). */
    chash *plus = NULL;
    ASSERT_OK(chash_clone(c, &plus));
    ASSERT_OK(chash_add(plus, "fresh", 5, 1));
    chash *before_last = NULL; /* the membership before node-38 left */
    ASSERT_OK(chash_clone(original, &before_last));
    for (int i = 0; i < 9; i++) {
        char name[32];
        sprintf(name, "node-%d", order[i]);
        ASSERT_OK(chash_remove(before_last, name, strlen(name)));
    }
    size_t fresh = index_of(plus, "fresh"), old38 = index_of(before_last, "node-38");
    for (size_t k = 0; k < KEYS; k++) {
        size_t a = owner(plus, keys[k]), b = owner(before_last, keys[k]);
        if (b == old38)
            ASSERT_EQ(a, fresh);
        else
            ASSERT_TRUE(same_node(plus, a, before_last, b));
    }
    moved_keys(c, plus, keys, KEYS, "fresh", NULL);

    /* Adding the removed nodes back, last removed first, restores every
     * answer. */
    for (int i = 9; i >= 0; i--) {
        char name[32];
        int len = sprintf(name, "node-%d", order[i]);
        ASSERT_OK(chash_add(c, name, (size_t)len, 1));
    }
    assert_same_answers(original, c, keys, KEYS);

    /* Weights: a node of weight 3 holds three buckets; changing it moves
     * keys only to or from it. */
    chash *w = NULL;
    ASSERT_OK(chash_clone(c, &w));
    ASSERT_OK(chash_remove(w, "node-12", 7));
    ASSERT_OK(chash_add(w, "heavy", 5, 3));
    chash *w2 = NULL;
    ASSERT_OK(chash_clone(w, &w2));
    ASSERT_OK(chash_set_weight(w2, "heavy", 5, 1));
    size_t h = index_of(w, "heavy");
    for (size_t k = 0; k < KEYS; k++) {
        size_t a = owner(w, keys[k]), b = owner(w2, keys[k]);
        if (!same_node(w, a, w2, b)) ASSERT_EQ(a, h);
    }
    ASSERT_OK(chash_remove(w2, "node-0", 6)); /* any node, even the first */
    ASSERT_OK(chash_remove(w2, "heavy", 5));
    chash_free(w);
    chash_free(w2);
    chash_free(plus);
    chash_free(before_last);
    chash_free(original);
    chash_free(c);
    free(keys);
}

/* ---- errors ------------------------------------------------------------ */

static void test_errors(void) {
    for (int a = 0; chash_algo_name((chash_algo)a); a++) {
        chash_algo back;
        ASSERT_OK(chash_algo_from_name(chash_algo_name((chash_algo)a), &back));
        ASSERT_EQ(back, a);
    }
    chash *c = NULL;
    chash_config bad = {.struct_size = sizeof bad,
                        .algo = CHASH_ALGO_MAGLEV, .maglev_table_size = 65536};
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    bad.maglev_table_size = 1;
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    bad.maglev_table_size = CHASH_MAGLEV_TABLE_MAX + 2;
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    bad = (chash_config){.struct_size = sizeof(chash_config),
                         .algo = CHASH_ALGO_MULTIPROBE, .probe_count = CHASH_PROBES_MAX + 1};
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    bad = (chash_config){.struct_size = sizeof(chash_config),
                         .algo = CHASH_ALGO_MULTIPROBE, .scheme = CHASH_SCHEME_KETAMA};
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    bad = (chash_config){.struct_size = sizeof(chash_config),
                         .algo = CHASH_ALGO_BOUNDED, .load_epsilon = -0.5};
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    bad.load_epsilon = NAN;
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    bad.load_epsilon = CHASH_LOAD_EPSILON_MAX * 2;
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    ASSERT_TRUE(c == NULL);

    /* Defaults are filled in. */
    ASSERT_OK(chash_create(NULL, &c));
    chash_config got = CHASH_CONFIG_INIT;
    ASSERT_OK(chash_get_config(c, &got));
    ASSERT_EQ(got.maglev_table_size, CHASH_MAGLEV_TABLE_DEFAULT);
    ASSERT_EQ(got.probe_count, CHASH_PROBES_DEFAULT);
    ASSERT_NEAR(got.load_epsilon, CHASH_LOAD_EPSILON_DEFAULT, 0);
    chash_free(c);

    /* What each algorithm cannot do. */
    for (size_t i = 0; i < ALGO_COUNT; i++) {
        const traits *t = &all_algos[i];
        c = make(t->algo, 0, 5);
        uint32_t h;
        size_t n;
        if (chash_point_count(c) == 0) ASSERT_EQ(chash_point(c, 0, &h, &n), CHASH_ENOTSUP);
        else ASSERT_OK(chash_point(c, 0, &h, &n));
        ASSERT_TRUE(chash_memory(c) > 0);
        chash_free(c);
    }
    ASSERT_EQ(chash_point_count(NULL), 0);

    /* Jump and memento hold a bucket per unit of weight: past
     * CHASH_POINTS_MAX buckets is too big, and nothing is added. */
    enum { HEAVY = (int)(CHASH_POINTS_MAX / CHASH_WEIGHT_MAX) + 1 };
    chash_node_spec *specs = calloc(HEAVY, sizeof *specs);
    char *names = calloc(HEAVY, 16);
    ASSERT_TRUE(specs && names);
    for (int i = 0; i < HEAVY; i++) {
        int len = sprintf(names + 16 * i, "h%d", i);
        specs[i] = (chash_node_spec){names + 16 * i, (size_t)len, CHASH_WEIGHT_MAX};
    }
    static const chash_algo bucketed[2] = {CHASH_ALGO_JUMP, CHASH_ALGO_MEMENTO};
    for (int a = 0; a < 2; a++) {
        c = make(bucketed[a], 0, 0);
        ASSERT_EQ(chash_add_many(c, specs, HEAVY), CHASH_ETOOBIG);
        ASSERT_EQ(chash_node_count(c), 0);
        chash_free(c);
    }
    free(specs);
    free(names);
}

/* ---- allocation failure ------------------------------------------------ */

typedef int (*operation)(chash *c);
static int op_add(chash *c) { return chash_add(c, "new-node", 8, 2); }
static int op_add_many(chash *c) {
    chash_node_spec s[3] = {{"m1", 2, 1}, {"m2", 2, 2}, {"m3", 2, 1}};
    return chash_add_many(c, s, 3);
}
static int op_remove_mid(chash *c) { return chash_remove(c, "n3", 2); }
static int op_remove_last(chash *c) { return chash_remove(c, "n5", 2); }
static int op_weight_mid(chash *c) { return chash_set_weight(c, "n1", 2, 3); }
static int op_weight_last(chash *c) { return chash_set_weight(c, "n5", 2, 3); }
static int op_clone(chash *c) {
    chash *k = NULL;
    int rc = chash_clone(c, &k);
    if (rc == CHASH_OK) {
        ASSERT_UEQ(chash_fingerprint(k), chash_fingerprint(c));
        chash_free(k);
    }
    return rc;
}
static int op_loads(chash *c) {
    chash_loads *l = NULL;
    int rc = chash_loads_create(c, &l);
    chash_loads_free(l);
    return rc;
}

static void sweep(chash_algo algo, operation op, const char *what) {
    long failures = 0;
    for (long n = 0;; n++) {
        failing f = {.fail_at = -1};
        chash_config cfg = {.struct_size = sizeof cfg, .algo = algo,
                            .vnodes = 8,
                            .maglev_table_size = 101,
                            .bucket_count = 64,
                            .allocator = failing_allocator(&f)};
        chash *c = NULL;
        ASSERT_OK(chash_create(&cfg, &c));
        for (int i = 0; i < 7; i++) {
            char name[16];
            int len = sprintf(name, "n%d", i);
            ASSERT_OK(chash_add(c, name, (size_t)len, 1 + (uint32_t)(i % 2)));
        }
        /* Memento with a removal on record, so copies carry history. */
        ASSERT_OK(chash_remove(c, "n6", 2));
        if (algo == CHASH_ALGO_MEMENTO) ASSERT_OK(chash_remove(c, "n2", 2));
        uint64_t before = chash_fingerprint(c);
        f.calls = 0;
        f.fail_at = n;
        int rc = op(c);
        f.fail_at = -1;
        if (rc == CHASH_OK) {
            chash_free(c);
            ASSERT_EQ(f.live, 0);
            break; /* n passed the operation's last allocation */
        }
        ASSERT_EQ(rc, CHASH_ENOMEM);
        ASSERT_UEQ(chash_fingerprint(c), before); /* a failed call changes nothing */
        ASSERT_OK(op(c));                   /* and the object still works */
        chash_free(c);
        ASSERT_EQ(f.live, 0);
        failures++;
    }
    ASSERT_TRUE(failures > 0);
    (void)what;
}

static void test_allocation(const traits *t) {
    sweep(t->algo, op_add, "add");
    sweep(t->algo, op_add_many, "add_many");
    sweep(t->algo, t->removes_any ? op_remove_mid : op_remove_last, "remove");
    sweep(t->algo, t->removes_any ? op_weight_mid : op_weight_last, "set_weight");
    sweep(t->algo, op_clone, "clone");
    sweep(t->algo, op_loads, "loads_create");
}

/* ---- threads ----------------------------------------------------------- */

enum { READERS = 3, THREAD_KEYS = 3000 };

typedef struct shared {
    const chash *c;
    chash_loads *loads;
    const size_t *expected;
    bool has_lookup_n;
} shared;

static void *reader(void *arg) {
    const shared *s = arg;
    for (int round = 0; round < 3; round++)
        for (size_t k = 0; k < THREAD_KEYS; k++) {
            char key[32];
            size_t n, list[4], found;
            int len = sprintf(key, "t%zu", k);
            ASSERT_OK(chash_lookup(s->c, key, (size_t)len, &n));
            ASSERT_EQ(n, s->expected[k]);
            if (s->has_lookup_n) {
                ASSERT_OK(chash_lookup_n(s->c, key, (size_t)len, 4, list, &found));
                ASSERT_EQ(list[0], n);
            }
            if (s->loads) {
                ASSERT_OK(chash_lookup_bounded(s->c, s->loads, key, (size_t)len, &n));
                ASSERT_OK(chash_loads_acquire(s->loads, n));
                if (k % 2) ASSERT_OK(chash_loads_release(s->loads, n));
            }
        }
    return NULL;
}

static void test_threads(void) {
    for (size_t i = 0; i < ALGO_COUNT; i++) {
        const traits *t = &all_algos[i];
        chash *c = make(t->algo, 0, 40);
        if (t->algo == CHASH_ALGO_MEMENTO) ASSERT_OK(chash_remove(c, "node-11", 7));
        size_t *expected = malloc(THREAD_KEYS * sizeof *expected);
        ASSERT_TRUE(expected != NULL);
        for (size_t k = 0; k < THREAD_KEYS; k++) {
            char key[32];
            int len = sprintf(key, "t%zu", k);
            ASSERT_OK(chash_lookup(c, key, (size_t)len, &expected[k]));
        }
        shared s = {c, NULL, expected, t->has_lookup_n};
        if (t->algo == CHASH_ALGO_BOUNDED) ASSERT_OK(chash_loads_create(c, &s.loads));
        pthread_t threads[READERS];
        for (int r = 0; r < READERS; r++)
            ASSERT_EQ(pthread_create(&threads[r], NULL, reader, &s), 0);
        for (int r = 0; r < READERS; r++) ASSERT_EQ(pthread_join(threads[r], NULL), 0);
        if (s.loads) {
            /* Every thread kept half its units. */
            ASSERT_UEQ(chash_loads_total(s.loads), READERS * 3 * (THREAD_KEYS / 2));
            chash_loads_free(s.loads);
        }
        free(expected);
        chash_free(c);
    }
    printf("  %zu algorithms read by %d threads at once\n", ALGO_COUNT, READERS);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "threads") == 0) {
        test_threads();
        TEST_DONE();
    }
    if (argc > 1 && strcmp(argv[1], "print-vectors") == 0) {
        print_vectors();
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: test_algos [threads | print-vectors]\n");
        return 2;
    }
    test_known_answers();
    test_errors();
    test_maglev();
    test_bounded();
    test_memento();
    for (size_t i = 0; i < ALGO_COUNT; i++) {
        const traits *t = &all_algos[i];
        test_disruption(t);
        test_balance(t);
        test_determinism(t);
        test_lookup_n(t);
        test_ownership(t);
        test_allocation(t);
    }
    test_threads();
    TEST_DONE();
}
