/*
 * test_errors.c - every error the API promises, and allocation failure: an
 * allocator that fails the n-th allocation, swept over every n of each
 * operation, must leave the object exactly as it was and leak nothing.
 */
#include "failing_alloc.h"
#include "testlib.h"

#include <chash.h>

static void test_messages(void) {
    for (int e = 0; e >= CHASH_ESIZE; e--) {
        const char *m = chash_strerror(e);
        ASSERT_TRUE(m && strlen(m) > 3 && strcmp(m, "unknown error code") != 0);
    }
    ASSERT_TRUE(strcmp(chash_strerror(-999), "unknown error code") == 0);
    ASSERT_TRUE(strcmp(chash_strerror(1), "unknown error code") == 0);
    ASSERT_TRUE(strcmp(chash_version_string(), CHASH_VERSION_STRING) == 0);
    ASSERT_UEQ(chash_version(), CHASH_VERSION_NUMBER);
    chash_algo a;
    chash_scheme s;
    ASSERT_OK(chash_algo_from_name("ring", &a));
    ASSERT_EQ(a, CHASH_ALGO_RING);
    ASSERT_OK(chash_scheme_from_name("groupcache", &s));
    ASSERT_EQ(s, CHASH_SCHEME_GROUPCACHE);
    ASSERT_EQ(chash_algo_from_name("Ring", &a), CHASH_EUNKNOWN);
    ASSERT_EQ(chash_scheme_from_name("", &s), CHASH_EUNKNOWN);
    ASSERT_EQ(chash_algo_from_name(NULL, &a), CHASH_EINVAL);
    ASSERT_EQ(chash_scheme_from_name("native", NULL), CHASH_EINVAL);
    ASSERT_TRUE(chash_algo_name((chash_algo)99) == NULL);
    ASSERT_TRUE(chash_scheme_name((chash_scheme)-1) == NULL);
    ASSERT_TRUE(strcmp(chash_algo_name(CHASH_ALGO_MODULO), "modulo") == 0);
}

static void test_arguments(void) {
    chash *c = NULL;
    size_t n, found;
    uint64_t shares[4], space;
    ASSERT_EQ(chash_create(NULL, NULL), CHASH_EINVAL);
    chash_config bad = {.struct_size = sizeof bad, .vnodes = CHASH_VNODES_MAX + 1};
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    int algo_end = 0; /* the first value past the last algorithm */
    while (chash_algo_name((chash_algo)algo_end)) algo_end++;
    bad = (chash_config){.struct_size = sizeof(chash_config), .algo = (chash_algo)algo_end};
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    bad = (chash_config){.struct_size = sizeof(chash_config), .scheme = (chash_scheme)77};
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    ASSERT_TRUE(c == NULL);
    ASSERT_OK(chash_create(NULL, &c));

    /* Empty ring: lookups say so. */
    ASSERT_EQ(chash_lookup(c, "k", 1, &n), CHASH_EEMPTY);
    ASSERT_EQ(chash_lookup_hash(c, 5, &n), CHASH_EEMPTY);
    ASSERT_EQ(chash_lookup_n(c, "k", 1, 2, shares, &found), CHASH_EEMPTY);
    ASSERT_EQ(chash_ownership(c, shares, 4, &space), CHASH_EEMPTY);
    ASSERT_EQ(chash_point(c, 0, NULL, NULL), CHASH_ENOENT);

    ASSERT_EQ(chash_add(NULL, "a", 1, 1), CHASH_EINVAL);
    ASSERT_EQ(chash_add(c, NULL, 1, 1), CHASH_EINVAL);
    ASSERT_EQ(chash_add(c, "", 0, 1), CHASH_ENAME);
    static char long_name[CHASH_NAME_MAX + 1];
    memset(long_name, 'x', sizeof long_name);
    ASSERT_EQ(chash_add(c, long_name, CHASH_NAME_MAX + 1, 1), CHASH_ENAME);
    ASSERT_OK(chash_add(c, long_name, CHASH_NAME_MAX, 1));
    ASSERT_EQ(chash_add(c, "a", 1, 0), CHASH_EWEIGHT);
    ASSERT_EQ(chash_add(c, "a", 1, CHASH_WEIGHT_MAX + 1), CHASH_EWEIGHT);
    ASSERT_OK(chash_add(c, "a", 1, 1));
    ASSERT_EQ(chash_add(c, "a", 1, 2), CHASH_EEXIST);
    ASSERT_OK(chash_add(c, "a\0b", 3, 1)); /* names are bytes, NUL included */
    ASSERT_EQ(chash_node_count(c), 3);

    chash_node_spec dup[2] = {{"x", 1, 1}, {"x", 1, 1}};
    ASSERT_EQ(chash_add_many(c, dup, 2), CHASH_EEXIST);
    chash_node_spec zero_w[2] = {{"y", 1, 1}, {"z", 1, 0}};
    ASSERT_EQ(chash_add_many(c, zero_w, 2), CHASH_EWEIGHT);
    ASSERT_EQ(chash_add_many(c, NULL, 1), CHASH_EINVAL);
    ASSERT_OK(chash_add_many(c, NULL, 0));
    ASSERT_EQ(chash_node_count(c), 3); /* all or nothing */
    ASSERT_EQ(chash_find(c, "y", 1, &n), CHASH_ENOENT);

    ASSERT_EQ(chash_remove(c, "nope", 4), CHASH_ENOENT);
    ASSERT_EQ(chash_remove(NULL, "a", 1), CHASH_EINVAL);
    ASSERT_EQ(chash_remove(c, NULL, 1), CHASH_EINVAL);
    ASSERT_EQ(chash_set_weight(c, "nope", 4, 2), CHASH_ENOENT);
    ASSERT_EQ(chash_set_weight(c, "a", 1, 0), CHASH_EWEIGHT);
    ASSERT_EQ(chash_find(c, "a", 2, &n), CHASH_ENOENT);
    ASSERT_EQ(chash_find(c, NULL, 0, &n), CHASH_ENOENT);
    ASSERT_EQ(chash_find(c, "a", 1, NULL), CHASH_EINVAL);

    ASSERT_EQ(chash_lookup(c, NULL, 1, &n), CHASH_EINVAL);
    ASSERT_OK(chash_lookup(c, NULL, 0, &n)); /* the empty key is a key */
    ASSERT_EQ(chash_lookup(c, "k", 1, NULL), CHASH_EINVAL);
    ASSERT_EQ(chash_lookup(NULL, "k", 1, &n), CHASH_EINVAL);
    ASSERT_EQ(chash_lookup_n(c, "k", 1, 2, NULL, &found), CHASH_EINVAL);
    ASSERT_EQ(chash_ownership(c, shares, 2, &space), CHASH_EINVAL); /* too small */
    ASSERT_EQ(chash_node(c, 3, NULL, NULL, NULL), CHASH_ENOENT);
    ASSERT_EQ(chash_point(c, chash_point_count(c), NULL, NULL), CHASH_ENOENT);
    ASSERT_EQ(chash_clone(c, NULL), CHASH_EINVAL);
    ASSERT_EQ(chash_node_count(NULL), 0);
    ASSERT_EQ(chash_memory(NULL), 0);

    /* Too many points: 65535 * 65536 per node is past CHASH_POINTS_MAX. */
    chash *big = NULL;
    chash_config many = {.struct_size = sizeof many, .vnodes = CHASH_VNODES_MAX};
    ASSERT_OK(chash_create(&many, &big));
    ASSERT_EQ(chash_add(big, "huge", 4, CHASH_WEIGHT_MAX), CHASH_ETOOBIG);
    ASSERT_EQ(chash_node_count(big), 0);
    chash_free(big);

    /* Removing every node gives an empty ring that works again after. */
    ASSERT_OK(chash_remove(c, "a", 1));
    ASSERT_OK(chash_remove(c, "a\0b", 3));
    ASSERT_OK(chash_remove(c, long_name, CHASH_NAME_MAX));
    ASSERT_EQ(chash_lookup(c, "k", 1, &n), CHASH_EEMPTY);
    ASSERT_OK(chash_add(c, "again", 5, 1));
    ASSERT_OK(chash_lookup(c, "k", 1, &n));
    ASSERT_EQ(n, 0);
    chash_free(c);
    chash_free(NULL);
}

/* ---- allocation failure ------------------------------------------------ */

typedef int (*operation)(chash *c);
static int op_add(chash *c) { return chash_add(c, "new-node", 8, 3); }
static int op_add_many(chash *c) {
    chash_node_spec s[3] = {{"m1", 2, 1}, {"m2", 2, 2}, {"m3", 2, 1}};
    return chash_add_many(c, s, 3);
}
static int op_remove(chash *c) { return chash_remove(c, "n3", 2); }
static int op_weight(chash *c) { return chash_set_weight(c, "n1", 2, 5); }
static int op_clone(chash *c) {
    chash *k = NULL;
    int rc = chash_clone(c, &k);
    if (rc == CHASH_OK) {
        ASSERT_UEQ(chash_fingerprint(k), chash_fingerprint(c));
        chash_free(k);
    }
    return rc;
}

static void sweep(chash_algo algo, chash_scheme scheme, operation op, const char *what) {
    long failures = 0;
    for (long n = 0;; n++) {
        failing f = {.fail_at = -1};
        chash_config cfg = {.struct_size = sizeof cfg, .algo = algo,
                            .scheme = scheme,
                            .vnodes = 8,
                            .allocator = failing_allocator(&f)};
        chash *c = NULL;
        ASSERT_OK(chash_create(&cfg, &c));
        for (int i = 0; i < 6; i++) {
            char name[8];
            int len = sprintf(name, "n%d", i);
            ASSERT_OK(chash_add(c, name, (size_t)len, 1));
        }
        uint64_t before = chash_fingerprint(c);
        f.calls = 0;
        f.fail_at = n;
        int rc = op(c);
        f.fail_at = -1;
        if (rc == CHASH_OK) {
            chash_free(c);
            ASSERT_EQ(f.live, 0);
            ASSERT_TRUE(n > 0 || failures == 0);
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
    printf("%s/%s %s: %ld allocation failures survived\n", chash_algo_name(algo),
           chash_scheme_name(scheme), what, failures);
}

static void test_create_failure(void) {
    for (long n = 0; n < 4; n++) {
        failing f = {.fail_at = n};
        chash_config cfg = {.struct_size = sizeof cfg, .allocator = failing_allocator(&f)};
        chash *c = NULL;
        int rc = chash_create(&cfg, &c);
        if (rc == CHASH_OK) {
            chash_free(c);
        } else {
            ASSERT_EQ(rc, CHASH_ENOMEM);
            ASSERT_TRUE(c == NULL);
        }
        ASSERT_EQ(f.live, 0);
    }
}

/* Ketama floors each node's points to groups of 4: with 3 vnodes no node
 * gets one. Refused (a ring with members and no point would have no owner
 * for any key), with nothing changed; a heavier node that does get points
 * is fine (the peers leave the light ones unreachable). */
static void test_no_points(void) {
    chash_config cfg = {.struct_size = sizeof cfg, .scheme = CHASH_SCHEME_KETAMA, .vnodes = 3};
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    ASSERT_EQ(chash_add(c, "a", 1, 1), CHASH_EINVAL);
    ASSERT_UEQ(chash_node_count(c), 0);
    size_t node;
    ASSERT_EQ(chash_lookup(c, "k", 1, &node), CHASH_EEMPTY);
    static const chash_node_spec two[] = {{"a", 1, 1}, {"b", 1, 1}};
    ASSERT_EQ(chash_add_many(c, two, 2), CHASH_EINVAL);
    ASSERT_UEQ(chash_node_count(c), 0);
    static const chash_node_spec heavy[] = {{"a", 1, 1}, {"b", 1, 9}};
    ASSERT_OK(chash_add_many(c, heavy, 2));
    ASSERT_OK(chash_lookup(c, "k", 1, &node));
    ASSERT_UEQ(node, 1);
    chash_free(c);
}

int main(void) {
    test_messages();
    test_no_points();
    test_arguments();
    test_create_failure();
    static const operation ops[] = {op_add, op_add_many, op_remove, op_weight, op_clone};
    static const char *names[] = {"add", "add_many", "remove", "set_weight", "clone"};
    for (int s = 0; chash_scheme_name((chash_scheme)s); s++)
        if (s != CHASH_SCHEME_REDIS_CLUSTER) /* buckets only: test_redis_cluster */
            for (size_t i = 0; i < 5; i++)
                sweep(CHASH_ALGO_RING, (chash_scheme)s, ops[i], names[i]);
    for (size_t i = 0; i < 5; i++) sweep(CHASH_ALGO_MODULO, CHASH_SCHEME_NATIVE, ops[i], names[i]);
    TEST_DONE();
}
