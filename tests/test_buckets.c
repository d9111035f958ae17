/*
 * test_buckets.c - CHASH_ALGO_BUCKETS beyond the property suite
 * (test_algos.c runs it with the other algorithms):
 *
 *   digits       the bucket a key falls in, by its trailing digits (with and
 *                without a hash tag, too few digits, none) and by hash
 *   rendezvous   an unpinned bucket's owner is rendezvous' for its number
 *   movement     add / remove / reweight move only the buckets they must,
 *                pins stay, a removed node's pins go, later pins follow
 *                their node to its new index
 *   assign       pins, unpins, errors; keys follow their bucket
 *   overrides    a key beats its bucket, tagged keys move together, lookup_n
 *                leads with it; removal; a removed node's overrides go
 *   clone        carries pins and overrides and shares nothing
 *   diff         the exact runs by bucket, names, stops, refusals
 *   ownership    2^32 split by bucket, as lookup_hash answers
 *   allocation   override, remove and clone under an allocator failing the
 *                n-th call: each failure changes nothing and leaks nothing
 *   others       every bucket call is CHASH_ENOTSUP for the other algorithms
 */
#include "failing_alloc.h"
#include "testlib.h"

#include <chash.h>

static chash *make(uint32_t bucket_count, chash_bucket_by by, const char *tag, size_t nodes) {
    chash_config cfg = {.struct_size = sizeof cfg,
                        .algo = CHASH_ALGO_BUCKETS,
                        .bucket_count = bucket_count,
                        .bucket_by = by};
    if (tag) memcpy(cfg.hash_tag, tag, strlen(tag) + 1);
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    for (size_t i = 0; i < nodes; i++) {
        char name[32];
        int len = sprintf(name, "s%zu", i);
        ASSERT_OK(chash_add(c, name, (size_t)len, 1));
    }
    return c;
}

static uint32_t bucket(const chash *c, const char *key) {
    uint32_t b = UINT32_MAX;
    ASSERT_OK(chash_bucket_of(c, key, strlen(key), &b));
    return b;
}

static size_t owner_of(const chash *c, uint32_t b) {
    size_t n = SIZE_MAX;
    ASSERT_OK(chash_bucket_owner(c, b, &n));
    return n;
}

static size_t lookup(const chash *c, const char *key) {
    size_t n = SIZE_MAX;
    ASSERT_OK(chash_lookup(c, key, strlen(key), &n));
    return n;
}

static size_t index_of(const chash *c, const char *name) {
    size_t i = SIZE_MAX;
    ASSERT_OK(chash_find(c, name, strlen(name), &i));
    return i;
}

static bool is_named(const chash *c, size_t node, const char *name) {
    const void *n;
    size_t len;
    ASSERT_OK(chash_node(c, node, &n, &len, NULL));
    return len == strlen(name) && memcmp(n, name, len) == 0;
}

static bool same_owner(const chash *a, const chash *b, uint32_t bucket_index) {
    const void *na, *nb;
    size_t la, lb;
    ASSERT_OK(chash_node(a, owner_of(a, bucket_index), &na, &la, NULL));
    ASSERT_OK(chash_node(b, owner_of(b, bucket_index), &nb, &lb, NULL));
    return la == lb && memcmp(na, nb, la) == 0;
}

/* ---- digits ------------------------------------------------------------ */

static void test_digits(void) {
    chash *c = make(100, CHASH_BUCKET_BY_DIGITS, NULL, 3);
    ASSERT_EQ(bucket(c, "user1234"), 34);
    ASSERT_EQ(bucket(c, "user7"), 7); /* fewer digits than two: the one there */
    ASSERT_EQ(bucket(c, "42"), 42);
    ASSERT_EQ(bucket(c, "order:2024:00"), 0);
    ASSERT_UEQ(chash_key_hash(c, "user1234", 8), 34);
    /* No trailing digit: by hash, CRC-32 (the native scheme's) mod 100. */
    ASSERT_EQ(bucket(c, "nodigits"), chash_crc32(0, "nodigits", 8) % 100);
    ASSERT_EQ(bucket(c, "12ab"), chash_crc32(0, "12ab", 4) % 100);
    ASSERT_EQ(bucket(c, ""), 0); /* CRC-32 of nothing is 0 */
    /* The key's bucket decides its owner. */
    ASSERT_EQ(lookup(c, "user1234"), owner_of(c, 34));
    ASSERT_EQ(lookup(c, "x99"), owner_of(c, 99));
    size_t n;
    ASSERT_OK(chash_lookup_hash(c, 34, &n));
    ASSERT_EQ(n, owner_of(c, 34));
    ASSERT_OK(chash_lookup_hash(c, 134, &n)); /* any value: mod bucket_count */
    ASSERT_EQ(n, owner_of(c, 34));
    chash_free(c);

    /* With a hash tag, the digits of the part between the marks. */
    c = make(100, CHASH_BUCKET_BY_DIGITS, "{}", 3);
    ASSERT_EQ(bucket(c, "{user77}:cart"), 77);
    ASSERT_EQ(bucket(c, "{user77}:cart:5"), 77);
    ASSERT_EQ(bucket(c, "user77:{cart}"), chash_crc32(0, "cart", 4) % 100);
    ASSERT_EQ(bucket(c, "{}user12"), 12); /* an empty tag does not apply */
    chash_free(c);

    /* As many digits as bucket_count - 1 has, then mod bucket_count. */
    c = make(1000, CHASH_BUCKET_BY_DIGITS, NULL, 2);
    ASSERT_EQ(bucket(c, "u123456"), 456);
    chash_free(c);
    c = make(150, CHASH_BUCKET_BY_DIGITS, NULL, 2);
    ASSERT_EQ(bucket(c, "u1234"), 234 % 150);
    ASSERT_EQ(bucket(c, "u99"), 99);
    chash_free(c);
    c = make(10, CHASH_BUCKET_BY_DIGITS, NULL, 2);
    ASSERT_EQ(bucket(c, "u1234"), 4);
    chash_free(c);
    c = make(1, CHASH_BUCKET_BY_DIGITS, NULL, 2);
    ASSERT_EQ(bucket(c, "u1234"), 0);
    ASSERT_EQ(bucket(c, "abc"), 0);
    chash_free(c);
    c = make(CHASH_BUCKETS_MAX, CHASH_BUCKET_BY_DIGITS, NULL, 2);
    ASSERT_EQ(bucket(c, "id-1234567890"), 567890);
    chash_free(c);

    /* By hash: the key hash (after the tag) mod bucket_count. */
    c = make(1000, CHASH_BUCKET_BY_HASH, "{}", 2);
    ASSERT_EQ(bucket(c, "user1234"), chash_crc32(0, "user1234", 8) % 1000);
    ASSERT_EQ(bucket(c, "{user1234}:x"), chash_crc32(0, "user1234", 8) % 1000);
    ASSERT_UEQ(chash_key_hash(c, "user1234", 8), chash_crc32(0, "user1234", 8));
    chash_free(c);

    /* Defaults and names. */
    c = make(0, CHASH_BUCKET_BY_HASH, NULL, 0);
    chash_config got = CHASH_CONFIG_INIT;
    ASSERT_OK(chash_get_config(c, &got));
    ASSERT_EQ(got.bucket_count, CHASH_BUCKETS_DEFAULT);
    ASSERT_EQ(got.bucket_by, CHASH_BUCKET_BY_HASH);
    ASSERT_EQ(bucket(c, "k"), chash_crc32(0, "k", 1) % 100); /* no nodes needed */
    ASSERT_EQ(chash_bucket_owner(c, 0, &got.struct_size), CHASH_EEMPTY);
    chash_free(c);
    chash_bucket_by by;
    ASSERT_OK(chash_bucket_by_from_name("digits", &by));
    ASSERT_EQ(by, CHASH_BUCKET_BY_DIGITS);
    ASSERT_EQ(chash_bucket_by_from_name("tens", &by), CHASH_EUNKNOWN);
    ASSERT_EQ(chash_bucket_by_from_name(NULL, &by), CHASH_EINVAL);
    ASSERT_TRUE(strcmp(chash_bucket_by_name(CHASH_BUCKET_BY_HASH), "hash") == 0);
    ASSERT_TRUE(chash_bucket_by_name((chash_bucket_by)2) == NULL);
    chash_algo a;
    ASSERT_OK(chash_algo_from_name("buckets", &a));
    ASSERT_EQ(a, CHASH_ALGO_BUCKETS);

    /* Options out of range, whatever the algorithm. */
    chash_config bad = {.struct_size = sizeof bad,
                        .algo = CHASH_ALGO_BUCKETS,
                        .bucket_count = CHASH_BUCKETS_MAX + 1};
    c = NULL;
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    bad = (chash_config){.struct_size = sizeof bad, .bucket_by = (chash_bucket_by)2};
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    ASSERT_TRUE(c == NULL);
}

/* ---- rendezvous -------------------------------------------------------- */

static void test_rendezvous(void) {
    chash_config rcfg = {.struct_size = sizeof rcfg, .algo = CHASH_ALGO_RENDEZVOUS};
    chash *r = NULL;
    ASSERT_OK(chash_create(&rcfg, &r));
    chash *c = make(5000, CHASH_BUCKET_BY_HASH, NULL, 0);
    uint64_t weight_sum = 0;
    for (uint32_t i = 0; i < 9; i++) {
        char name[16];
        int len = sprintf(name, "w%u", i);
        ASSERT_OK(chash_add(r, name, (size_t)len, 1 + i % 3));
        ASSERT_OK(chash_add(c, name, (size_t)len, 1 + i % 3));
        weight_sum += 1 + i % 3;
    }
    uint64_t count[9] = {0};
    for (uint32_t b = 0; b < 5000; b++) {
        size_t n;
        ASSERT_OK(chash_lookup_hash(r, b, &n));
        ASSERT_EQ(owner_of(c, b), n);
        count[n]++;
    }
    /* Weighted shares of buckets, within sampling (about 100 buckets per
     * weight unit here: 10 % each way is 3 sd and more). */
    for (uint32_t i = 0; i < 9; i++)
        ASSERT_NEAR((double)count[i] / 5000, (double)(1 + i % 3) / (double)weight_sum,
                    0.25 * (double)(1 + i % 3) / (double)weight_sum);
    chash_free(r);
    chash_free(c);
}

/* ---- movement ---------------------------------------------------------- */

/* Buckets whose owner changed from a to b: each must have moved to `to` (if
 * given) and from `from` (if given); every bucket of `from` must move. */
static uint32_t moved_buckets(const chash *a, const chash *b, const char *to, const char *from) {
    chash_config cfg = CHASH_CONFIG_INIT;
    ASSERT_OK(chash_get_config(a, &cfg));
    uint32_t moved = 0;
    for (uint32_t i = 0; i < cfg.bucket_count; i++) {
        bool was_from = from && is_named(a, owner_of(a, i), from);
        if (same_owner(a, b, i)) {
            ASSERT_TRUE(!was_from);
            continue;
        }
        moved++;
        if (to) ASSERT_TRUE(is_named(b, owner_of(b, i), to));
        if (from) ASSERT_TRUE(was_from);
    }
    return moved;
}

static void test_movement(void) {
    enum { B = 20000, N = 10 };
    chash *c = make(B, CHASH_BUCKET_BY_HASH, NULL, N);
    /* Pins: 0-99 on s3, 100-199 on s7, and 200-299 on s0. */
    ASSERT_OK(chash_bucket_assign(c, 0, 99, 3));
    ASSERT_OK(chash_bucket_assign(c, 100, 199, 7));
    ASSERT_OK(chash_bucket_assign(c, 200, 299, 0));

    /* Add: only buckets the newcomer wins move, and none that is pinned. */
    chash *grown = NULL;
    ASSERT_OK(chash_clone(c, &grown));
    ASSERT_OK(chash_add(grown, "new", 3, 1));
    uint32_t moved = moved_buckets(c, grown, "new", NULL);
    printf("  add 1 to %d: %u of %d buckets moved (fair share %d)\n", N, moved, B, B / (N + 1));
    ASSERT_NEAR(moved, (double)(B - 300) / (N + 1), 0.1 * B / (N + 1));
    for (uint32_t b = 0; b < 300; b++) ASSERT_TRUE(same_owner(c, grown, b));

    /* add_many keeps the pins too, and agrees with adds one at a time. */
    chash *many = NULL;
    ASSERT_OK(chash_clone(c, &many));
    chash_node_spec specs[2] = {{"new", 3, 1}, {"newer", 5, 2}};
    ASSERT_OK(chash_add_many(many, specs, 2));
    ASSERT_OK(chash_add(grown, "newer", 5, 2));
    for (uint32_t b = 0; b < B; b++) ASSERT_EQ(owner_of(many, b), owner_of(grown, b));
    chash_free(many);

    /* Remove s3: its buckets move (its pins go, so 0-99 go by rendezvous),
     * nothing else does; the later pins follow s7 from index 7 to 6. */
    chash *shrunk = NULL;
    ASSERT_OK(chash_clone(c, &shrunk));
    ASSERT_OK(chash_remove(shrunk, "s3", 2));
    moved = moved_buckets(c, shrunk, NULL, "s3");
    printf("  remove 1 of %d: %u buckets moved\n", N, moved);
    for (uint32_t b = 100; b < 200; b++) ASSERT_EQ(owner_of(shrunk, b), 6);
    for (uint32_t b = 200; b < 300; b++) ASSERT_EQ(owner_of(shrunk, b), 0);
    /* Pins of s3 are gone: adding it back does not restore them. */
    ASSERT_OK(chash_add(shrunk, "s3", 2, 1));
    chash *fresh = make(B, CHASH_BUCKET_BY_HASH, NULL, 0);
    for (size_t i = 0; i < chash_node_count(shrunk); i++) {
        const void *name;
        size_t len;
        ASSERT_OK(chash_node(shrunk, i, &name, &len, NULL));
        ASSERT_OK(chash_add(fresh, name, len, 1));
    }
    ASSERT_OK(chash_bucket_assign(fresh, 100, 199, index_of(fresh, "s7")));
    ASSERT_OK(chash_bucket_assign(fresh, 200, 299, index_of(fresh, "s0")));
    for (uint32_t b = 0; b < B; b++) ASSERT_TRUE(same_owner(fresh, shrunk, b));

    /* Reweight: heavier takes buckets only to it, and back to 1 restores. */
    chash *heavy = NULL;
    ASSERT_OK(chash_clone(c, &heavy));
    ASSERT_OK(chash_set_weight(heavy, "s5", 2, 3));
    moved = moved_buckets(c, heavy, "s5", NULL);
    /* s5's share of the unpinned buckets goes from 1/10 to 3/12. */
    double share = 3.0 / (N + 2) - 1.0 / N;
    ASSERT_NEAR(moved, (B - 300) * share, 0.1 * (B - 300) * share);
    chash *light = NULL;
    ASSERT_OK(chash_clone(heavy, &light));
    ASSERT_OK(chash_set_weight(light, "s5", 2, 1));
    moved_buckets(heavy, light, NULL, NULL);
    for (uint32_t b = 0; b < B; b++) {
        ASSERT_EQ(owner_of(light, b), owner_of(c, b));
        if (owner_of(heavy, b) != owner_of(light, b)) ASSERT_EQ(owner_of(heavy, b), 5);
    }
    /* A pinned bucket stays on its node, heavy or light. */
    for (uint32_t b = 0; b < 100; b++) ASSERT_EQ(owner_of(heavy, b), 3);

    /* Removing every node drops every pin. */
    chash *empty = NULL;
    ASSERT_OK(chash_clone(c, &empty));
    for (int i = 0; i < N; i++) {
        char name[16];
        int len = sprintf(name, "s%d", i);
        ASSERT_OK(chash_remove(empty, name, (size_t)len));
    }
    ASSERT_EQ(chash_lookup(empty, "k", 1, &(size_t){0}), CHASH_EEMPTY);
    ASSERT_OK(chash_add(empty, "only", 4, 1));
    for (uint32_t b = 0; b < 300; b++) ASSERT_EQ(owner_of(empty, b), 0);

    chash_free(empty);
    chash_free(heavy);
    chash_free(light);
    chash_free(fresh);
    chash_free(grown);
    chash_free(shrunk);
    chash_free(c);
}

/* ---- assign ------------------------------------------------------------ */

static void test_assign(void) {
    chash *c = make(100, CHASH_BUCKET_BY_DIGITS, NULL, 4);
    chash *before = NULL;
    ASSERT_OK(chash_clone(c, &before));
    ASSERT_OK(chash_bucket_assign(c, 50, 74, 2));
    ASSERT_OK(chash_bucket_assign(c, 7, 7, 1));
    for (int id = 0; id < 1000; id++) {
        char key[32];
        sprintf(key, "user%d", id);
        uint32_t b = (uint32_t)(id % 100);
        size_t want = b >= 50 && b <= 74 ? 2 : b == 7 ? 1 : owner_of(before, b);
        ASSERT_EQ(lookup(c, key), want);
        size_t list[4], found;
        ASSERT_OK(chash_lookup_n(c, key, strlen(key), 4, list, &found));
        ASSERT_EQ(found, 4);
        ASSERT_EQ(list[0], want);
        for (size_t i = 0; i < 4; i++)
            for (size_t j = 0; j < i; j++) ASSERT_TRUE(list[i] != list[j]);
    }
    /* Reassigning replaces; unassigning goes back to rendezvous, and an
     * unpinned bucket in the range is left alone. */
    ASSERT_OK(chash_bucket_assign(c, 60, 64, 3));
    ASSERT_EQ(owner_of(c, 62), 3);
    ASSERT_OK(chash_bucket_unassign(c, 0, 99));
    for (uint32_t b = 0; b < 100; b++) ASSERT_EQ(owner_of(c, b), owner_of(before, b));
    ASSERT_OK(chash_bucket_unassign(c, 0, 99));

    /* Errors change nothing. */
    ASSERT_EQ(chash_bucket_assign(c, 5, 4, 0), CHASH_EINVAL);
    ASSERT_EQ(chash_bucket_assign(c, 90, 100, 0), CHASH_EINVAL);
    ASSERT_EQ(chash_bucket_assign(c, 0, 0, 4), CHASH_ENOENT);
    ASSERT_EQ(chash_bucket_assign(NULL, 0, 0, 0), CHASH_EINVAL);
    ASSERT_EQ(chash_bucket_unassign(c, 0, 100), CHASH_EINVAL);
    ASSERT_EQ(chash_bucket_owner(c, 100, &(size_t){0}), CHASH_EINVAL);
    ASSERT_EQ(chash_bucket_owner(c, 0, NULL), CHASH_EINVAL);
    ASSERT_EQ(chash_bucket_of(c, NULL, 1, &(uint32_t){0}), CHASH_EINVAL);
    for (uint32_t b = 0; b < 100; b++) ASSERT_EQ(owner_of(c, b), owner_of(before, b));
    chash_free(before);
    chash_free(c);
}

/* ---- overrides --------------------------------------------------------- */

static void test_overrides(void) {
    chash *c = make(100, CHASH_BUCKET_BY_DIGITS, "{}", 5);
    size_t by_bucket = owner_of(c, 34), other = (by_bucket + 1) % 5;
    ASSERT_OK(chash_bucket_override(c, "user1234", 8, other));
    ASSERT_EQ(lookup(c, "user1234"), other);
    ASSERT_EQ(lookup(c, "user1334"), by_bucket); /* same bucket, not overridden */
    ASSERT_EQ(lookup(c, "{user1234}:cart"), other); /* the same tagged part */
    size_t list[5], found, n;
    ASSERT_OK(chash_lookup_n(c, "user1234", 8, 5, list, &found));
    ASSERT_EQ(found, 5);
    ASSERT_EQ(list[0], other);
    for (size_t i = 0; i < 5; i++)
        for (size_t j = 0; j < i; j++) ASSERT_TRUE(list[i] != list[j]);
    ASSERT_OK(chash_lookup_n(c, "user1234", 8, 1, list, &found));
    ASSERT_EQ(list[0], other);
    /* lookup_hash knows buckets only. */
    ASSERT_OK(chash_lookup_hash(c, chash_key_hash(c, "user1234", 8), &n));
    ASSERT_EQ(n, by_bucket);

    /* An override of a tagged key covers the tag: keys that share it stay
     * together. */
    ASSERT_OK(chash_bucket_override(c, "{acct9}:a", 9, 4));
    ASSERT_EQ(lookup(c, "{acct9}:b"), 4);
    ASSERT_EQ(lookup(c, "acct9"), 4);
    ASSERT_EQ(chash_bucket_override_count(c), 2);
    /* Replacing keeps one entry. */
    ASSERT_OK(chash_bucket_override(c, "acct9", 5, 3));
    ASSERT_EQ(chash_bucket_override_count(c), 2);
    ASSERT_EQ(lookup(c, "{acct9}:b"), 3);
    const void *k;
    size_t kl, kn;
    bool seen_acct = false;
    for (size_t i = 0; i < 2; i++) {
        ASSERT_OK(chash_bucket_override_at(c, i, &k, &kl, &kn));
        if (kl == 5 && memcmp(k, "acct9", 5) == 0) {
            seen_acct = true;
            ASSERT_EQ(kn, 3);
        }
    }
    ASSERT_TRUE(seen_acct);
    ASSERT_EQ(chash_bucket_override_at(c, 2, &k, &kl, &kn), CHASH_ENOENT);

    /* Many overrides: the table grows, every one still found. */
    for (int i = 0; i < 500; i++) {
        char key[32];
        int len = sprintf(key, "many%dx", i);
        ASSERT_OK(chash_bucket_override(c, key, (size_t)len, (size_t)i % 5));
    }
    for (int i = 0; i < 500; i++) {
        char key[32];
        sprintf(key, "many%dx", i);
        ASSERT_EQ(lookup(c, key), (size_t)i % 5);
    }
    for (int i = 0; i < 500; i += 2) {
        char key[32];
        int len = sprintf(key, "many%dx", i);
        ASSERT_OK(chash_bucket_override_remove(c, key, (size_t)len));
    }
    ASSERT_EQ(chash_bucket_override_count(c), 252);
    for (int i = 1; i < 500; i += 2) {
        char key[32];
        sprintf(key, "many%dx", i);
        ASSERT_EQ(lookup(c, key), (size_t)i % 5);
    }

    /* Removal: back to the bucket; a second removal finds nothing. */
    ASSERT_OK(chash_bucket_override_remove(c, "{user1234}:x", 12));
    ASSERT_EQ(lookup(c, "user1234"), by_bucket);
    ASSERT_EQ(chash_bucket_override_remove(c, "user1234", 8), CHASH_ENOENT);

    /* An empty key may be overridden too. */
    ASSERT_OK(chash_bucket_override(c, "", 0, 2));
    ASSERT_EQ(lookup(c, ""), 2);
    ASSERT_OK(chash_bucket_override_remove(c, NULL, 0));

    /* Overrides of a removed node go with it; later ones follow their node. */
    ASSERT_OK(chash_bucket_override(c, "on-s1", 5, 1));
    ASSERT_OK(chash_bucket_override(c, "on-s4", 5, 4));
    ASSERT_OK(chash_remove(c, "s1", 2));
    ASSERT_EQ(chash_bucket_override_remove(c, "on-s1", 5), CHASH_ENOENT);
    ASSERT_TRUE(is_named(c, lookup(c, "on-s4"), "s4"));
    ASSERT_TRUE(is_named(c, lookup(c, "{acct9}:b"), "s3"));

    /* Errors. */
    ASSERT_EQ(chash_bucket_override(c, "k", 1, 4), CHASH_ENOENT);
    ASSERT_EQ(chash_bucket_override(c, NULL, 1, 0), CHASH_EINVAL);
    ASSERT_EQ(chash_bucket_override(NULL, "k", 1, 0), CHASH_EINVAL);
    ASSERT_EQ(chash_bucket_override_remove(NULL, "k", 1), CHASH_EINVAL);
    ASSERT_EQ(chash_bucket_override_count(NULL), 0);
    chash_free(c);
}

/* ---- clone ------------------------------------------------------------- */

static void test_clone(void) {
    chash *c = make(1000, CHASH_BUCKET_BY_DIGITS, NULL, 6);
    ASSERT_OK(chash_bucket_assign(c, 0, 499, 5));
    ASSERT_OK(chash_bucket_override(c, "vip1", 4, 2));
    chash *k = NULL;
    ASSERT_OK(chash_clone(c, &k));
    for (uint32_t b = 0; b < 1000; b++) ASSERT_EQ(owner_of(k, b), owner_of(c, b));
    ASSERT_EQ(lookup(k, "vip1"), 2);
    ASSERT_EQ(chash_bucket_override_count(k), 1);
    /* Changing the clone leaves the original alone. */
    ASSERT_OK(chash_bucket_unassign(k, 0, 999));
    ASSERT_OK(chash_bucket_override_remove(k, "vip1", 4));
    ASSERT_OK(chash_bucket_override(k, "vip2", 4, 0));
    ASSERT_EQ(owner_of(c, 123), 5);
    ASSERT_EQ(lookup(c, "vip1"), 2);
    ASSERT_EQ(chash_bucket_override_count(c), 1);
    /* And the original's pins still hold through its own changes. */
    ASSERT_OK(chash_add(c, "s6", 2, 1));
    ASSERT_EQ(owner_of(c, 123), 5);
    chash_free(c);
    ASSERT_EQ(lookup(k, "vip2"), 0);
    chash_free(k);
}

/* ---- diff -------------------------------------------------------------- */

typedef struct plan {
    chash_bucket_range ranges[64];
    char from[64][8], to[64][8];
    size_t count;
    size_t stop_after;
} plan;

static int collect(void *user, const chash_bucket_range *r) {
    plan *p = user;
    ASSERT_TRUE(p->count < 64);
    p->ranges[p->count] = *r;
    snprintf(p->from[p->count], 8, "%.*s", (int)r->from_name_len, (const char *)r->from_name);
    snprintf(p->to[p->count], 8, "%.*s", (int)r->to_name_len, (const char *)r->to_name);
    p->count++;
    return p->count == p->stop_after ? 42 : 0;
}

static int no_range(void *user, const chash_range *r) {
    (void)user;
    (void)r;
    TEST_FAIL_AT("chash_diff reported a range for buckets");
}

static void test_diff(void) {
    chash *a = make(100, CHASH_BUCKET_BY_DIGITS, NULL, 3);
    ASSERT_OK(chash_bucket_assign(a, 0, 33, 0));
    ASSERT_OK(chash_bucket_assign(a, 34, 66, 1));
    ASSERT_OK(chash_bucket_assign(a, 67, 99, 2));
    plan p = {.count = 0};
    ASSERT_OK(chash_bucket_diff(a, a, collect, &p));
    ASSERT_EQ(p.count, 0);

    /* Cut flow: 50-74 to a new unit s3, and 90 to s0. */
    chash *b = NULL;
    ASSERT_OK(chash_clone(a, &b));
    ASSERT_OK(chash_add(b, "s3", 2, 1));
    ASSERT_OK(chash_bucket_assign(b, 50, 74, 3));
    ASSERT_OK(chash_bucket_assign(b, 90, 90, 0));
    ASSERT_OK(chash_bucket_diff(a, b, collect, &p));
    ASSERT_EQ(p.count, 3);
    ASSERT_EQ(p.ranges[0].first, 50);
    ASSERT_EQ(p.ranges[0].last, 66);
    ASSERT_TRUE(strcmp(p.from[0], "s1") == 0 && strcmp(p.to[0], "s3") == 0);
    ASSERT_EQ(p.ranges[0].from, 1);
    ASSERT_EQ(p.ranges[0].to, 3);
    ASSERT_EQ(p.ranges[1].first, 67);
    ASSERT_EQ(p.ranges[1].last, 74);
    ASSERT_TRUE(strcmp(p.from[1], "s2") == 0 && strcmp(p.to[1], "s3") == 0);
    ASSERT_EQ(p.ranges[2].first, 90);
    ASSERT_EQ(p.ranges[2].last, 90);
    ASSERT_TRUE(strcmp(p.from[2], "s2") == 0 && strcmp(p.to[2], "s0") == 0);
    /* The callback's non-zero stops the walk and is returned. */
    p = (plan){.stop_after = 2};
    ASSERT_EQ(chash_bucket_diff(a, b, collect, &p), 42);
    ASSERT_EQ(p.count, 2);

    /* Nodes are matched by name, not index: removing s0 shifts indexes,
     * and only s0's buckets are in the plan. */
    chash *c = NULL;
    ASSERT_OK(chash_clone(a, &c));
    ASSERT_OK(chash_remove(c, "s0", 2));
    p = (plan){.count = 0};
    ASSERT_OK(chash_bucket_diff(a, c, collect, &p));
    uint32_t covered = 0;
    for (size_t i = 0; i < p.count; i++) {
        ASSERT_TRUE(strcmp(p.from[i], "s0") == 0);
        ASSERT_TRUE(p.ranges[i].last <= 33);
        covered += p.ranges[i].last - p.ranges[i].first + 1;
        if (i) ASSERT_TRUE(p.ranges[i].first > p.ranges[i - 1].last);
    }
    ASSERT_EQ(covered, 34);

    /* Refusals. */
    chash *other = make(1000, CHASH_BUCKET_BY_DIGITS, NULL, 3);
    ASSERT_EQ(chash_bucket_diff(a, other, collect, &p), CHASH_ENOTSUP);
    chash_free(other);
    other = make(100, CHASH_BUCKET_BY_HASH, NULL, 3);
    ASSERT_EQ(chash_bucket_diff(a, other, collect, &p), CHASH_ENOTSUP);
    chash_free(other);
    other = make(100, CHASH_BUCKET_BY_DIGITS, "{}", 3);
    ASSERT_EQ(chash_bucket_diff(a, other, collect, &p), CHASH_ENOTSUP);
    chash_free(other);
    other = make(100, CHASH_BUCKET_BY_DIGITS, NULL, 0);
    ASSERT_EQ(chash_bucket_diff(a, other, collect, &p), CHASH_EEMPTY);
    chash *none = make(100, CHASH_BUCKET_BY_DIGITS, NULL, 0);
    ASSERT_OK(chash_bucket_diff(none, other, collect, &p));
    chash_free(none);
    chash_free(other);
    ASSERT_EQ(chash_bucket_diff(a, NULL, collect, &p), CHASH_EINVAL);
    ASSERT_EQ(chash_bucket_diff(a, b, NULL, &p), CHASH_EINVAL);
    /* Buckets have no hash-range plan: chash_diff is the ring's. */
    ASSERT_EQ(chash_diff(a, b, no_range, NULL), CHASH_ENOTSUP);
    chash_free(a);
    chash_free(b);
    chash_free(c);
}

/* ---- ownership --------------------------------------------------------- */

static void test_ownership(void) {
    chash *c = make(7, CHASH_BUCKET_BY_HASH, NULL, 3);
    ASSERT_OK(chash_bucket_assign(c, 0, 2, 0));
    ASSERT_OK(chash_bucket_assign(c, 3, 3, 1));
    ASSERT_OK(chash_bucket_assign(c, 4, 6, 2));
    uint64_t shares[3], space;
    ASSERT_OK(chash_ownership(c, shares, 3, &space));
    ASSERT_UEQ(space, (uint64_t)1 << 32);
    /* 2^32 = 7 * 613566756 + 4: buckets 0-3 hold one value more. */
    ASSERT_UEQ(shares[0], 3 * 613566757ull);
    ASSERT_UEQ(shares[1], 613566757ull);
    ASSERT_UEQ(shares[2], 3 * 613566756ull);
    chash_free(c);
}

/* ---- allocation failure ------------------------------------------------ */

typedef int (*operation)(chash *c);
static int op_override(chash *c) { return chash_bucket_override(c, "fresh-key", 9, 1); }
static int op_override_many(chash *c) {
    for (int i = 0; i < 12; i++) {
        char key[16];
        int len = sprintf(key, "o%d", i);
        int rc = chash_bucket_override(c, key, (size_t)len, (size_t)i % 3);
        if (rc != CHASH_OK) {
            /* Undo this call's earlier overrides: the sweep compares with
             * the object as it was before the whole operation. */
            while (i-- > 0) {
                len = sprintf(key, "o%d", i);
                ASSERT_OK(chash_bucket_override_remove(c, key, (size_t)len));
            }
            return rc;
        }
    }
    return CHASH_OK;
}
static int op_remove(chash *c) { return chash_remove(c, "n1", 2); }
static int op_add(chash *c) { return chash_add(c, "n9", 2, 2); }
static int op_clone(chash *c) {
    chash *k = NULL;
    int rc = chash_clone(c, &k);
    if (rc == CHASH_OK) {
        ASSERT_UEQ(chash_fingerprint(k), chash_fingerprint(c));
        ASSERT_EQ(chash_bucket_override_count(k), chash_bucket_override_count(c));
        chash_free(k);
    }
    return rc;
}

static uint64_t fingerprint(const chash *c) {
    uint64_t h = chash_fingerprint(c);
    for (uint32_t b = 0; b < 64; b++) h = (h ^ owner_of(c, b)) * 1099511628211ull;
    static const char *const keys[] = {"over-0", "over-1", "over-2", "o5", "fresh-key"};
    for (size_t i = 0; i < 5; i++) h = (h ^ lookup(c, keys[i])) * 1099511628211ull;
    return (h ^ chash_bucket_override_count(c)) * 1099511628211ull;
}

static void sweep(operation op, const char *what) {
    long failures = 0;
    for (long n = 0;; n++) {
        failing f = {.fail_at = -1};
        chash_config cfg = {.struct_size = sizeof cfg,
                            .algo = CHASH_ALGO_BUCKETS,
                            .bucket_count = 64,
                            .allocator = failing_allocator(&f)};
        chash *c = NULL;
        ASSERT_OK(chash_create(&cfg, &c));
        for (int i = 0; i < 5; i++) {
            char name[16];
            int len = sprintf(name, "n%d", i);
            ASSERT_OK(chash_add(c, name, (size_t)len, 1));
        }
        ASSERT_OK(chash_bucket_assign(c, 10, 19, 1));
        ASSERT_OK(chash_bucket_assign(c, 20, 29, 3));
        for (int i = 0; i < 3; i++) {
            char key[16];
            int len = sprintf(key, "over-%d", i);
            ASSERT_OK(chash_bucket_override(c, key, (size_t)len, (size_t)i + 1));
        }
        uint64_t before = fingerprint(c);
        f.calls = 0;
        f.fail_at = n;
        int rc = op(c);
        f.fail_at = -1;
        if (rc == CHASH_OK) {
            chash_free(c);
            ASSERT_EQ(f.live, 0);
            break;
        }
        ASSERT_EQ(rc, CHASH_ENOMEM);
        ASSERT_UEQ(fingerprint(c), before);
        ASSERT_OK(op(c));
        chash_free(c);
        ASSERT_EQ(f.live, 0);
        failures++;
    }
    printf("  %s: %ld allocation failures survived\n", what, failures);
    ASSERT_TRUE(failures > 0);
}

static void test_allocation(void) {
    sweep(op_override, "override");
    sweep(op_override_many, "override x12");
    sweep(op_remove, "remove");
    sweep(op_add, "add");
    sweep(op_clone, "clone");
}

/* ---- other algorithms -------------------------------------------------- */

static void test_others(void) {
    for (int a = 0; chash_algo_name((chash_algo)a); a++) {
        if (a == CHASH_ALGO_BUCKETS) continue;
        chash_config cfg = {.struct_size = sizeof cfg, .algo = (chash_algo)a};
        chash *c = NULL, *d = NULL;
        ASSERT_OK(chash_create(&cfg, &c));
        ASSERT_OK(chash_add(c, "n", 1, 1));
        ASSERT_EQ(chash_bucket_assign(c, 0, 0, 0), CHASH_ENOTSUP);
        ASSERT_EQ(chash_bucket_unassign(c, 0, 0), CHASH_ENOTSUP);
        ASSERT_EQ(chash_bucket_override(c, "k", 1, 0), CHASH_ENOTSUP);
        ASSERT_EQ(chash_bucket_override_remove(c, "k", 1), CHASH_ENOTSUP);
        ASSERT_EQ(chash_bucket_override_at(c, 0, NULL, NULL, NULL), CHASH_ENOTSUP);
        ASSERT_EQ(chash_bucket_override_count(c), 0);
        ASSERT_EQ(chash_bucket_of(c, "k", 1, &(uint32_t){0}), CHASH_ENOTSUP);
        ASSERT_EQ(chash_bucket_owner(c, 0, &(size_t){0}), CHASH_ENOTSUP);
        ASSERT_OK(chash_clone(c, &d));
        ASSERT_EQ(chash_bucket_diff(c, d, collect, NULL), CHASH_ENOTSUP);
        chash_free(c);
        chash_free(d);
    }
}

int main(void) {
    test_digits();
    test_rendezvous();
    test_movement();
    test_assign();
    test_overrides();
    test_clone();
    test_diff();
    test_ownership();
    test_allocation();
    test_others();
    TEST_DONE();
}
