/*
 * test_ring.c - the ring's promises: minimal movement on add and remove, the
 * moved fraction near 1/(N+1), replica lists in ring order, exact ownership,
 * placement independent of insertion order, incremental changes equal to a
 * fresh build, and the memory bound.
 */
#include "testlib.h"

#include <chash.h>
#include <math.h>

#define KEYS 100000

static size_t key_of(uint64_t i, char *buf) { return (size_t)sprintf(buf, "k%llu", (unsigned long long)i); }

static chash *ring_named(chash_scheme scheme, uint32_t vnodes, size_t n, const char *prefix) {
    chash *c = NULL;
    chash_config cfg = {.struct_size = sizeof cfg, .scheme = scheme, .vnodes = vnodes};
    ASSERT_OK(chash_create(&cfg, &c));
    for (size_t i = 0; i < n; i++) {
        char name[64];
        int len = sprintf(name, "%s%zu", prefix, i);
        ASSERT_OK(chash_add(c, name, (size_t)len, 1));
    }
    return c;
}

static const char *name_of(const chash *c, size_t idx, size_t *len) {
    const void *name;
    ASSERT_OK(chash_node(c, idx, &name, len, NULL));
    return name;
}

static int same_name(const chash *a, size_t ia, const chash *b, size_t ib) {
    size_t la, lb;
    const char *na = name_of(a, ia, &la), *nb = name_of(b, ib, &lb);
    return la == lb && memcmp(na, nb, la) == 0;
}

/* Adding a node: every key that moves, moves to it; the fraction is near
 * 1/(N+1) and equals the new node's exact share up to sampling. */
static void test_add_monotone(chash_scheme scheme, size_t n) {
    chash *before = ring_named(scheme, 160, n, "node-");
    chash *after = NULL;
    ASSERT_OK(chash_clone(before, &after));
    ASSERT_OK(chash_add(after, "node-new", 8, 1));
    size_t added;
    ASSERT_OK(chash_find(after, "node-new", 8, &added));
    size_t moved = 0;
    for (uint64_t i = 0; i < KEYS; i++) {
        char k[32];
        size_t len = key_of(i, k), a, b;
        ASSERT_OK(chash_lookup(before, k, len, &b));
        ASSERT_OK(chash_lookup(after, k, len, &a));
        if (!same_name(before, b, after, a)) {
            ASSERT_EQ(a, added);
            moved++;
        }
    }
    uint64_t shares[1100], space;
    ASSERT_OK(chash_ownership(after, shares, 1100, &space));
    double exact = (double)shares[added] / (double)space;
    double frac = (double)moved / KEYS;
    double sampling = sqrt(exact * (1 - exact) / KEYS);
    ASSERT_NEAR(frac, exact, 4 * sampling + 1e-9);
    if (scheme == CHASH_SCHEME_NATIVE) {
        /* A node's share of V random points has stddev/mean ~ 1/sqrt(V). */
        double ideal = 1.0 / (double)(n + 1);
        ASSERT_NEAR(frac, ideal, 3 * (ideal / sqrt(160.0)) + 4 * sampling);
    }
    chash_free(before);
    chash_free(after);
}

/* Removing a node moves only its keys, each to a surviving node. */
static void test_remove_minimal(chash_scheme scheme) {
    chash *before = ring_named(scheme, 100, 20, "n");
    chash *after = NULL;
    ASSERT_OK(chash_clone(before, &after));
    ASSERT_OK(chash_remove(after, "n7", 2));
    ASSERT_EQ(chash_node_count(after), 19);
    size_t gone;
    ASSERT_EQ(chash_find(after, "n7", 2, &gone), CHASH_ENOENT);
    ASSERT_OK(chash_find(before, "n7", 2, &gone));
    for (uint64_t i = 0; i < KEYS; i++) {
        char k[32];
        size_t len = key_of(i, k), a, b;
        ASSERT_OK(chash_lookup(before, k, len, &b));
        ASSERT_OK(chash_lookup(after, k, len, &a));
        if (b != gone) ASSERT_TRUE(same_name(before, b, after, a));
    }
    chash_free(before);
    chash_free(after);
}

/* lookup_n: distinct nodes, the owner first, then clockwise. */
static void test_lookup_n(void) {
    chash *c = ring_named(CHASH_SCHEME_NATIVE, 20, 12, "r");
    size_t points = chash_point_count(c);
    ASSERT_EQ(points, 12 * 20);
    for (uint64_t i = 0; i < 2000; i++) {
        char k[32];
        size_t len = key_of(i, k), got[12], found, owner;
        ASSERT_OK(chash_lookup_n(c, k, len, 5, got, &found));
        ASSERT_EQ(found, 5);
        ASSERT_OK(chash_lookup(c, k, len, &owner));
        ASSERT_EQ(got[0], owner);
        /* Reference: walk the points from the key's position. */
        uint32_t h = (uint32_t)chash_key_hash(c, k, len);
        size_t at = 0;
        while (at < points) {
            uint32_t ph;
            ASSERT_OK(chash_point(c, at, &ph, NULL));
            if (ph >= h) break;
            at++;
        }
        size_t want[5], n = 0;
        for (size_t walked = 0; walked < points && n < 5; walked++) {
            size_t node;
            ASSERT_OK(chash_point(c, (at + walked) % points, NULL, &node));
            int seen = 0;
            for (size_t j = 0; j < n; j++) seen |= want[j] == node;
            if (!seen) want[n++] = node;
        }
        for (size_t j = 0; j < 5; j++) ASSERT_EQ(got[j], want[j]);
    }
    /* Asking for more than there are gives them all. */
    size_t all[20], found;
    ASSERT_OK(chash_lookup_n(c, "x", 1, 20, all, &found));
    ASSERT_EQ(found, 12);
    for (size_t i = 0; i < found; i++)
        for (size_t j = i + 1; j < found; j++) ASSERT_TRUE(all[i] != all[j]);
    ASSERT_OK(chash_lookup_n(c, "x", 1, 0, NULL, &found));
    ASSERT_EQ(found, 0);
    chash_free(c);
}

/* Ownership from arcs sums to the whole circle and matches sampled load. */
static void test_ownership(chash_algo algo) {
    chash_config cfg = {.struct_size = sizeof cfg, .algo = algo, .vnodes = 40};
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    for (int i = 0; i < 7; i++) {
        char name[16];
        int len = sprintf(name, "w%d", i);
        ASSERT_OK(chash_add(c, name, (size_t)len, (uint32_t)(i + 1)));
    }
    uint64_t shares[7], space, sum = 0;
    ASSERT_OK(chash_ownership(c, shares, 7, &space));
    ASSERT_UEQ(space, 1ull << 32);
    for (int i = 0; i < 7; i++) sum += shares[i];
    ASSERT_UEQ(sum, space);
    uint64_t load[7] = {0};
    const uint64_t samples = 400000;
    for (uint64_t i = 0; i < samples; i++) {
        char k[32];
        size_t len = key_of(i, k), n;
        ASSERT_OK(chash_lookup(c, k, len, &n));
        load[n]++;
    }
    for (int i = 0; i < 7; i++) {
        double p = (double)shares[i] / (double)space;
        ASSERT_NEAR((double)load[i] / samples, p, 5 * sqrt(p * (1 - p) / samples));
    }
    /* Weight w gets w times the points. */
    if (algo == CHASH_ALGO_RING) ASSERT_EQ(chash_point_count(c), 40 * (1 + 2 + 3 + 4 + 5 + 6 + 7));
    chash_free(c);
}

static void find_native_tie(char *a, size_t *la, char *b, size_t *lb);

/*
 * Same membership, any arrival order: the same ring, point for point. Two
 * of the names collide at point 0, so the tie rule (name order) is always
 * used: 160,000 random points would collide only about 3 times, and these
 * 1000 names happen not to collide at all.
 */
static void test_order_independent(void) {
    enum { N = 1002 };
    chash *fwd = NULL, *rev = NULL, *shuf = NULL;
    ASSERT_OK(chash_create(NULL, &fwd));
    ASSERT_OK(chash_create(NULL, &rev));
    ASSERT_OK(chash_create(NULL, &shuf));
    static char names[N][24];
    size_t lens[N], perm[N];
    for (size_t i = 0; i < N - 2; i++) lens[i] = (size_t)sprintf(names[i], "node-%zu", i);
    find_native_tie(names[N - 2], &lens[N - 2], names[N - 1], &lens[N - 1]);
    for (size_t i = 0; i < N; i++) perm[i] = i;
    uint64_t seed = 7;
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = (size_t)(test_rand(&seed) % (i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    chash_node_spec specs[N];
    for (size_t i = 0; i < N; i++) {
        ASSERT_OK(chash_add(fwd, names[i], lens[i], 1));
        ASSERT_OK(chash_add(rev, names[N - 1 - i], lens[N - 1 - i], 1));
        specs[i] = (chash_node_spec){names[perm[i]], lens[perm[i]], 1};
    }
    ASSERT_OK(chash_add_many(shuf, specs, N));
    size_t points = chash_point_count(fwd), ties = 0;
    ASSERT_EQ(points, N * 160);
    ASSERT_EQ(chash_point_count(rev), points);
    ASSERT_EQ(chash_point_count(shuf), points);
    uint32_t prev_hash = 0;
    size_t prev_node = 0;
    for (size_t i = 0; i < points; i++) {
        uint32_t h1, h2, h3;
        size_t n1, n2, n3;
        ASSERT_OK(chash_point(fwd, i, &h1, &n1));
        ASSERT_OK(chash_point(rev, i, &h2, &n2));
        ASSERT_OK(chash_point(shuf, i, &h3, &n3));
        ASSERT_UEQ(h1, h2);
        ASSERT_UEQ(h1, h3);
        ASSERT_TRUE(same_name(fwd, n1, rev, n2));
        ASSERT_TRUE(same_name(fwd, n1, shuf, n3));
        if (i > 0) {
            ASSERT_TRUE(prev_hash <= h1);
            if (prev_hash == h1) { /* ties in name order */
                size_t la, lb;
                const char *a = name_of(fwd, prev_node, &la), *b = name_of(fwd, n1, &lb);
                size_t m = la < lb ? la : lb;
                int cmp = memcmp(a, b, m);
                ASSERT_TRUE(cmp < 0 || (cmp == 0 && la < lb));
                ties++;
            }
        }
        prev_hash = h1;
        prev_node = n1;
    }
    printf("order independence: %zu tied points checked\n", ties);
    ASSERT_TRUE(ties > 0);
    chash_free(fwd);
    chash_free(rev);
    chash_free(shuf);
}

static void assert_same_ring(const chash *a, const chash *b) {
    ASSERT_EQ(chash_node_count(a), chash_node_count(b));
    ASSERT_EQ(chash_point_count(a), chash_point_count(b));
    for (size_t i = 0; i < chash_point_count(a); i++) {
        uint32_t ha, hb;
        size_t na, nb;
        ASSERT_OK(chash_point(a, i, &ha, &na));
        ASSERT_OK(chash_point(b, i, &hb, &nb));
        ASSERT_UEQ(ha, hb);
        ASSERT_TRUE(same_name(a, na, b, nb));
    }
    for (uint64_t i = 0; i < 5000; i++) {
        char k[32];
        size_t len = key_of(i, k), x, y;
        ASSERT_OK(chash_lookup(a, k, len, &x));
        ASSERT_OK(chash_lookup(b, k, len, &y));
        ASSERT_TRUE(same_name(a, x, b, y));
    }
}

/* Incremental add, remove and reweight equal a fresh build of the result. */
static void test_incremental_equals_build(chash_scheme scheme) {
    chash *inc = ring_named(scheme, 50, 30, "m");
    ASSERT_OK(chash_remove(inc, "m3", 2));
    ASSERT_OK(chash_remove(inc, "m29", 3));
    ASSERT_OK(chash_set_weight(inc, "m10", 3, 4));
    ASSERT_OK(chash_add(inc, "m3", 2, 2));
    ASSERT_OK(chash_set_weight(inc, "m11", 3, 1)); /* unchanged: a no-op */

    chash_config cfg = {.struct_size = sizeof cfg, .scheme = scheme, .vnodes = 50};
    chash *fresh = NULL;
    ASSERT_OK(chash_create(&cfg, &fresh));
    for (size_t i = 0; i < 30; i++) {
        if (i == 3 || i == 29) continue;
        char name[16];
        int len = sprintf(name, "m%zu", i);
        ASSERT_OK(chash_add(fresh, name, (size_t)len, i == 10 ? 4 : 1));
    }
    ASSERT_OK(chash_add(fresh, "m3", 2, 2));
    assert_same_ring(inc, fresh);
    chash_free(inc);
    chash_free(fresh);
}

/* groupcache: when two nodes' points collide, the node added later owns it. */
static void test_groupcache_tie(void) {
    /* "11" + "node" == "1" + "1node": point 11 of node, point 1 of 1node. */
    chash_config cfg = {.struct_size = sizeof cfg, .scheme = CHASH_SCHEME_GROUPCACHE, .vnodes = 12};
    for (int order = 0; order < 2; order++) {
        chash *c = NULL;
        ASSERT_OK(chash_create(&cfg, &c));
        ASSERT_OK(chash_add(c, order ? "1node" : "node", order ? 5 : 4, 1));
        ASSERT_OK(chash_add(c, order ? "node" : "1node", order ? 4 : 5, 1));
        size_t owner, len;
        ASSERT_OK(chash_lookup(c, "11node", 6, &owner));
        const char *name = name_of(c, owner, &len);
        ASSERT_TRUE(len == (order ? 4u : 5u));
        ASSERT_TRUE(memcmp(name, order ? "node" : "1node", len) == 0);
        /* Removing the later node hands the point back. */
        ASSERT_OK(chash_remove(c, order ? "node" : "1node", order ? 4 : 5));
        ASSERT_OK(chash_lookup(c, "11node", 6, &owner));
        ASSERT_EQ(owner, 0);
        chash_free(c);
    }
}

typedef struct cand {
    uint32_t point;
    uint32_t id;
} cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return x->point != y->point ? (x->point > y->point) - (x->point < y->point)
                                : (x->id > y->id) - (x->id < y->id);
}

static uint32_t mix32(uint32_t h) { /* the documented native finaliser */
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* Two names whose point 0 collide under the native scheme, found by a
 * birthday search over names, using the documented point formula
 * mix32(CRC32(name || LE32(0))). a and b hold 24 bytes. */
static void find_native_tie(char *a, size_t *la, char *b, size_t *lb) {
    enum { CANDIDATES = 300000 };
    cand *c = malloc(CANDIDATES * sizeof *c);
    ASSERT_TRUE(c != NULL);
    static const uint8_t zero[4] = {0, 0, 0, 0};
    for (uint32_t i = 0; i < CANDIDATES; i++) {
        char name[24];
        int len = sprintf(name, "t%x-%u", i * 2654435761u, i);
        c[i] = (cand){mix32(chash_crc32(chash_crc32(0, name, (size_t)len), zero, 4)), i};
    }
    qsort(c, CANDIDATES, sizeof *c, cand_cmp);
    size_t at = 0;
    while (at + 1 < CANDIDATES && c[at].point != c[at + 1].point) at++;
    ASSERT_TRUE(at + 1 < CANDIDATES);
    *la = (size_t)sprintf(a, "t%x-%u", c[at].id * 2654435761u, c[at].id);
    *lb = (size_t)sprintf(b, "t%x-%u", c[at + 1].id * 2654435761u, c[at + 1].id);
    free(c);
}

/* native: of two names whose point 0 collide, the name that sorts first
 * owns the point, whichever was added first. */
static void test_native_tie(void) {
    char a[24], b[24];
    size_t la, lb;
    find_native_tie(a, &la, b, &lb);
    int a_first = strcmp(a, b) < 0;
    chash_config cfg = {.struct_size = sizeof cfg, .vnodes = 1};
    for (int order = 0; order < 2; order++) {
        chash *r = NULL;
        ASSERT_OK(chash_create(&cfg, &r));
        ASSERT_OK(chash_add(r, order ? b : a, order ? lb : la, 1));
        ASSERT_OK(chash_add(r, order ? a : b, order ? la : lb, 1));
        uint32_t h0, h1;
        size_t n0, len;
        ASSERT_OK(chash_point(r, 0, &h0, &n0));
        ASSERT_OK(chash_point(r, 1, &h1, NULL));
        ASSERT_UEQ(h0, h1);
        const char *owner = name_of(r, n0, &len);
        ASSERT_TRUE(memcmp(owner, a_first ? a : b, len) == 0);
        uint64_t shares[2], space;
        ASSERT_OK(chash_ownership(r, shares, 2, &space));
        ASSERT_UEQ(shares[n0], space); /* the other point owns an empty arc */
        chash_free(r);
    }
}

static void test_modulo(void) {
    chash_config cfg = {.struct_size = sizeof cfg, .algo = CHASH_ALGO_MODULO};
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    ASSERT_OK(chash_add(c, "a", 1, 1));
    ASSERT_OK(chash_add(c, "b", 1, 2));
    ASSERT_OK(chash_add(c, "c", 1, 1));
    for (uint64_t i = 0; i < 1000; i++) {
        char k[32];
        size_t len = key_of(i, k), n;
        ASSERT_OK(chash_lookup(c, k, len, &n));
        uint64_t slot = chash_key_hash(c, k, len) % 4;
        ASSERT_EQ(n, slot == 0 ? 0 : slot == 3 ? 2 : 1);
    }
    uint64_t shares[3], space;
    ASSERT_OK(chash_ownership(c, shares, 3, &space));
    ASSERT_UEQ(shares[0] + shares[1] + shares[2], space);
    ASSERT_UEQ(shares[1], 2 * (space / 4));
    size_t nodes[2], found;
    ASSERT_EQ(chash_lookup_n(c, "k", 1, 2, nodes, &found), CHASH_ENOTSUP);
    ASSERT_EQ(chash_point_count(c), 0);
    chash_free(c);
}

/* The lookup structure's size is a property, not a timing: assert it. */
static void test_memory_per_point(void) {
    chash *c = ring_named(CHASH_SCHEME_NATIVE, 160, 1000, "node-");
    double per_point = (double)chash_memory(c) / (double)chash_point_count(c);
    printf("memory: %.2f bytes per point at N=1000, V=160\n", per_point);
    ASSERT_TRUE(per_point <= 12.0);
    chash_free(c);
}

int main(void) {
    test_add_monotone(CHASH_SCHEME_NATIVE, 10);
    test_add_monotone(CHASH_SCHEME_NATIVE, 100);
    test_add_monotone(CHASH_SCHEME_GROUPCACHE, 10);
    test_remove_minimal(CHASH_SCHEME_NATIVE);
    test_remove_minimal(CHASH_SCHEME_GROUPCACHE);
    test_lookup_n();
    test_ownership(CHASH_ALGO_RING);
    test_ownership(CHASH_ALGO_MODULO);
    test_order_independent();
    test_incremental_equals_build(CHASH_SCHEME_NATIVE);
    test_incremental_equals_build(CHASH_SCHEME_GROUPCACHE);
    test_groupcache_tie();
    test_native_tie();
    test_modulo();
    test_memory_per_point();
    TEST_DONE();
}
