/*
 * test_plan.c - chash_diff is exact: every hash inside a reported range
 * changes owner (by name) between the two rings, every hash outside keeps
 * it, ranges are ascending, disjoint and maximal, and their total equals the
 * exact share the added node owns.
 */
#include "testlib.h"

#include <chash.h>

typedef struct collected {
    chash_range ranges[4096];
    size_t count;
} collected;

static int collect(void *user, const chash_range *r) {
    collected *c = user;
    ASSERT_TRUE(c->count < 4096);
    c->ranges[c->count++] = *r;
    return 0;
}

static int stop_at_three(void *user, const chash_range *r) {
    (void)r;
    return ++*(int *)user == 3 ? 42 : 0;
}

static int moved(const chash *a, const chash *b, uint32_t h) {
    size_t x, y, la, lb;
    const void *na, *nb;
    ASSERT_OK(chash_lookup_hash(a, h, &x));
    ASSERT_OK(chash_lookup_hash(b, h, &y));
    chash_node(a, x, &na, &la, NULL);
    chash_node(b, y, &nb, &lb, NULL);
    return !(la == lb && memcmp(na, nb, la) == 0);
}

static chash *ring(chash_scheme scheme, uint32_t vnodes, const char *const *names, size_t n) {
    chash_config cfg = {.struct_size = sizeof cfg, .scheme = scheme, .vnodes = vnodes};
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    for (size_t i = 0; i < n; i++) ASSERT_OK(chash_add(c, names[i], strlen(names[i]), 1));
    return c;
}

static void check_pair(const chash *a, const chash *b, uint64_t *seed) {
    static collected got;
    got.count = 0;
    ASSERT_OK(chash_diff(a, b, collect, &got));
    uint64_t total = 0;
    for (size_t i = 0; i < got.count; i++) {
        const chash_range *r = &got.ranges[i];
        ASSERT_TRUE(r->first <= r->last);
        if (i) ASSERT_TRUE(got.ranges[i - 1].last < r->first);
        total += (uint64_t)r->last - r->first + 1;
        /* Inside: both ends and a random middle move, to the reported pair. */
        uint32_t mid = r->first + (uint32_t)(test_rand(seed) % ((uint64_t)r->last - r->first + 1));
        ASSERT_TRUE(moved(a, b, r->first));
        ASSERT_TRUE(moved(a, b, r->last));
        ASSERT_TRUE(moved(a, b, mid));
        size_t x, y;
        ASSERT_OK(chash_lookup_hash(a, mid, &x));
        ASSERT_OK(chash_lookup_hash(b, mid, &y));
        ASSERT_EQ(x, r->from);
        ASSERT_EQ(y, r->to);
        /* Just outside: the neighbours stay (or belong to an adjacent range
         * with another pair, which must then be the next or previous one). */
        if (r->first > 0 && !(i && got.ranges[i - 1].last == r->first - 1))
            ASSERT_TRUE(!moved(a, b, r->first - 1));
        if (r->last < UINT32_MAX && !(i + 1 < got.count && got.ranges[i + 1].first == r->last + 1))
            ASSERT_TRUE(!moved(a, b, r->last + 1));
    }
    /* Sampled hashes agree with membership in a range. */
    for (int k = 0; k < 20000; k++) {
        uint32_t h = (uint32_t)test_rand(seed);
        int inside = 0;
        size_t lo = 0, hi = got.count;
        while (lo < hi) { /* first range with last >= h */
            size_t mid = (lo + hi) / 2;
            if (got.ranges[mid].last < h) lo = mid + 1;
            else hi = mid;
        }
        if (lo < got.count && got.ranges[lo].first <= h) inside = 1;
        ASSERT_EQ(inside, moved(a, b, h));
    }
    printf("diff: %zu ranges, %.4f%% of the space\n", got.count, 100.0 * (double)total / 4294967296.0);
}

int main(void) {
    uint64_t seed = 3;
    static const char *const ten[] = {"node-0", "node-1", "node-2", "node-3", "node-4",
                                      "node-5", "node-6", "node-7", "node-8", "node-9", "node-10"};
    for (int s = 0; chash_scheme_name((chash_scheme)s); s++) {
        if (s == CHASH_SCHEME_REDIS_CLUSTER) continue; /* buckets only: no ring */
        chash *a = ring((chash_scheme)s, 160, ten, 10), *b = ring((chash_scheme)s, 160, ten, 11);
        check_pair(a, b, &seed); /* add */
        check_pair(b, a, &seed); /* remove */
        /* Adding: the plan's total is exactly the new node's ownership. */
        static collected got;
        got.count = 0;
        ASSERT_OK(chash_diff(a, b, collect, &got));
        uint64_t total = 0, shares[11], space;
        for (size_t i = 0; i < got.count; i++) {
            total += (uint64_t)got.ranges[i].last - got.ranges[i].first + 1;
            ASSERT_EQ(got.ranges[i].to, 10);
        }
        ASSERT_OK(chash_ownership(b, shares, 11, &space));
        ASSERT_UEQ(total, shares[10]);
        /* Identical rings: nothing moves. */
        got.count = 0;
        ASSERT_OK(chash_diff(a, a, collect, &got));
        ASSERT_EQ(got.count, 0);
        int calls = 0;
        ASSERT_EQ(chash_diff(a, b, stop_at_three, &calls), 42);
        ASSERT_EQ(calls, 3);
        chash_free(a);
        chash_free(b);
    }
    /* A reweight and a rename at once, few points: small exhaustive ranges. */
    static const char *const x[] = {"a", "b", "c"}, *const y[] = {"a", "c", "d"};
    chash *a = ring(CHASH_SCHEME_NATIVE, 3, x, 3), *b = ring(CHASH_SCHEME_NATIVE, 3, y, 3);
    ASSERT_OK(chash_set_weight(b, "a", 1, 3));
    check_pair(a, b, &seed);
    /* Unsupported and bad arguments. */
    chash_config mod = {.struct_size = sizeof mod, .algo = CHASH_ALGO_MODULO},
                 gc = {.struct_size = sizeof gc, .scheme = CHASH_SCHEME_GROUPCACHE};
    chash *m = NULL, *g = NULL, *empty = NULL;
    ASSERT_OK(chash_create(&mod, &m));
    ASSERT_OK(chash_add(m, "a", 1, 1));
    ASSERT_OK(chash_create(&gc, &g));
    ASSERT_OK(chash_add(g, "a", 1, 1));
    ASSERT_OK(chash_create(NULL, &empty));
    collected *sink = malloc(sizeof *sink);
    sink->count = 0;
    ASSERT_EQ(chash_diff(a, m, collect, sink), CHASH_ENOTSUP);
    ASSERT_EQ(chash_diff(a, g, collect, sink), CHASH_ENOTSUP);
    ASSERT_EQ(chash_diff(a, empty, collect, sink), CHASH_EEMPTY);
    ASSERT_OK(chash_diff(empty, empty, collect, sink));
    ASSERT_EQ(chash_diff(a, b, NULL, sink), CHASH_EINVAL);
    ASSERT_EQ(chash_diff(NULL, b, collect, sink), CHASH_EINVAL);
    ASSERT_EQ(sink->count, 0);
    free(sink);
    chash_free(m);
    chash_free(g);
    chash_free(empty);
    chash_free(a);
    chash_free(b);
    TEST_DONE();
}
