/*
 * test_etcd_client.c - the etcd client (proxy/etcd.h) against a real etcd
 * cluster that test_etcd.py starts and breaks (etcdfleet.py). One command a
 * case; each asserts what the client itself can see and prints what the
 * Python side cross-checks (with etcdctl, or against the faults it caused):
 *
 *   kv ENDPOINTS PREFIX              round trips: binary keys and values, prefixes
 *   cas ENDPOINTS PREFIX             compare-and-swap, alone and two racing writers
 *   txn ENDPOINTS PREFIX             transactions: every compare and op kind, refusals
 *   lease ENDPOINTS PREFIX TTL       keep-alive keeps a key; without it the key goes
 *   writer ENDPOINTS PREFIX N        N create-once keys, each acknowledged once
 *   watch ENDPOINTS PREFIX REV PROBE_MS   every event from REV on until PREFIX/stop
 *   outage ENDPOINTS PREFIX TIMEOUT_MS    2 of 3 down (told on stdin): clear errors
 *                                    in time; a member back: calls and the watch work
 *   auth ENDPOINTS PREFIX PASSWORD TTL    wrong/no/right password, roles, renewal
 *   tls ENDPOINTS PREFIX CA CERT KEY      https with a client certificate
 *
 * Lines on stdout: "KV hexkey hexvalue mod_revision", "ACK i revision",
 * "EV ms revision PUT|DELETE hexkey hexvalue", "LOG text", "FIGURE name value".
 */
#define _POSIX_C_SOURCE 200809L
#include "../testlib.h"
#include "etcd.h"

#include <pthread.h>
#include <time.h>

static const char *endpoints;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void print_hex(const char *p, size_t n) {
    if (n == 0) fputc('-', stdout);
    for (size_t i = 0; i < n; i++) printf("%02x", (unsigned char)p[i]);
}

/* The client's log lines, counted by what they say, and echoed. */
static _Atomic int reauth_lines, left_lines;

static void on_log(void *user, const char *line) {
    (void)user;
    if (strstr(line, "authenticating again")) reauth_lines++;
    if (strstr(line, "watch left")) left_lines++;
    printf("LOG %s\n", line);
    fflush(stdout);
}

static etcd *open_with(const etcd_options *opt) {
    etcd *e = NULL;
    int rc = etcd_create(endpoints, opt, &e);
    if (rc != ETCD_OK) TEST_FAIL_AT("etcd_create(%s): %s", endpoints, etcd_strerror(rc));
    return e;
}

static etcd *open_default(void) {
    etcd_options opt = {.timeout_ms = 2000, .log = on_log};
    return open_with(&opt);
}

/* An etcd call that must succeed: its message when it does not. */
#define ETCD_OK_OR_FAIL(e, expr)                                                             \
    do {                                                                                     \
        testlib_checks++;                                                                    \
        int erc_ = (expr);                                                                   \
        if (erc_ != ETCD_OK)                                                                 \
            TEST_FAIL_AT("%s: %s (%s)", #expr, etcd_strerror(erc_), etcd_errmsg(e));         \
    } while (0)

static void cat(char *out, size_t *len, const void *p, size_t n) {
    memcpy(out + *len, p, n);
    *len += n;
}

/* ---- kv --------------------------------------------------------------- */

static void check_kv(const etcd_kv *kv, const char *key, size_t key_len, const char *value,
                     size_t value_len) {
    ASSERT_UEQ(kv->key_len, key_len);
    ASSERT_TRUE(memcmp(kv->key, key, key_len) == 0);
    ASSERT_UEQ(kv->value_len, value_len);
    ASSERT_TRUE(memcmp(kv->value, value, value_len) == 0);
    ASSERT_TRUE(kv->key[key_len] == '\0' && kv->value[value_len] == '\0');
}

static void cmd_kv(const char *prefix) {
    etcd *e = open_default();
    size_t plen = strlen(prefix);
    char key[1024], all[256];
    for (int i = 0; i < 256; i++) all[i] = (char)i;

    /* A key holding every byte value, and its value too. */
    size_t key_len = 0;
    cat(key, &key_len, prefix, plen);
    cat(key, &key_len, "/bin/", 5);
    cat(key, &key_len, all, 256);
    int64_t rev1 = 0, rev2 = 0;
    ETCD_OK_OR_FAIL(e, etcd_put(e, key, key_len, all, 256, 0, &rev1));
    ASSERT_TRUE(rev1 > 0);
    etcd_kvs got;
    ETCD_OK_OR_FAIL(e, etcd_get(e, key, key_len, false, &got));
    ASSERT_UEQ(got.kv_count, 1);
    check_kv(&got.kvs[0], key, key_len, all, 256);
    ASSERT_EQ(got.kvs[0].mod_revision, rev1);
    ASSERT_EQ(got.kvs[0].create_revision, rev1);
    ASSERT_EQ(got.kvs[0].version, 1);
    ASSERT_TRUE(got.revision >= rev1);
    etcd_kvs_free(&got);

    /* Overwritten with an empty value: same key, new revision, version 2. */
    ETCD_OK_OR_FAIL(e, etcd_put(e, key, key_len, "", 0, 0, &rev2));
    ASSERT_TRUE(rev2 > rev1);
    ETCD_OK_OR_FAIL(e, etcd_get(e, key, key_len, false, &got));
    ASSERT_UEQ(got.kv_count, 1);
    check_kv(&got.kvs[0], key, key_len, "", 0);
    ASSERT_EQ(got.kvs[0].create_revision, rev1);
    ASSERT_EQ(got.kvs[0].mod_revision, rev2);
    ASSERT_EQ(got.kvs[0].version, 2);
    etcd_kvs_free(&got);

    /* Every single-byte value, each in its own key, values of every length
     * 0..255 (all 256 byte values again, at every offset). */
    char keys[256][64];
    size_t key_lens[256];
    for (int i = 0; i < 256; i++) {
        key_lens[i] = 0;
        cat(keys[i], &key_lens[i], prefix, plen);
        cat(keys[i], &key_lens[i], "/keep/", 6);
        char b = (char)i;
        cat(keys[i], &key_lens[i], &b, 1);
        char value[256];
        for (int j = 0; j < i; j++) value[j] = (char)(255 - j);
        ETCD_OK_OR_FAIL(e, etcd_put(e, keys[i], key_lens[i], value, (size_t)i, 0, NULL));
    }
    char keep[1024];
    size_t keep_len = 0;
    cat(keep, &keep_len, prefix, plen);
    cat(keep, &keep_len, "/keep/", 6);
    ETCD_OK_OR_FAIL(e, etcd_get(e, keep, keep_len, true, &got));
    ASSERT_UEQ(got.kv_count, 256);
    ASSERT_EQ(got.count, 256);
    ASSERT_TRUE(!got.has_more);
    for (size_t i = 0; i < 256; i++) {
        char value[256];
        for (size_t j = 0; j < i; j++) value[j] = (char)(255 - j);
        /* In key order, which is byte order. */
        check_kv(&got.kvs[i], keys[i], key_lens[i], value, i);
        printf("KV ");
        print_hex(got.kvs[i].key, got.kvs[i].key_len);
        putchar(' ');
        print_hex(got.kvs[i].value, got.kvs[i].value_len);
        printf(" %lld\n", (long long)got.kvs[i].mod_revision);
    }
    etcd_kvs_free(&got);

    /* A prefix ending in 0xff bytes: its range end is computed from the
     * byte before them. */
    char ff[1024];
    size_t ff_len = 0;
    cat(ff, &ff_len, prefix, plen);
    cat(ff, &ff_len, "/ff\xff", 4);
    static const char *const suffixes[] = {"", "\xff", "\x00", "\xff\xff\x01"};
    static const size_t suffix_lens[] = {0, 1, 1, 3};
    for (size_t i = 0; i < 4; i++) {
        char k[1100];
        size_t k_len = 0;
        cat(k, &k_len, ff, ff_len);
        cat(k, &k_len, suffixes[i], suffix_lens[i]);
        ETCD_OK_OR_FAIL(e, etcd_put(e, k, k_len, "x", 1, 0, NULL));
    }
    char outside[1024];
    size_t outside_len = 0;
    cat(outside, &outside_len, prefix, plen);
    cat(outside, &outside_len, "/fg", 3); /* right after "ff\xff..." */
    ETCD_OK_OR_FAIL(e, etcd_put(e, outside, outside_len, "y", 1, 0, NULL));
    ETCD_OK_OR_FAIL(e, etcd_get(e, ff, ff_len, true, &got));
    ASSERT_UEQ(got.kv_count, 4);
    etcd_kvs_free(&got);

    /* A 1,000,000-byte value (1.33 MB of base64, under etcd's 1.5 MiB). */
    char *big = malloc(1000000);
    ASSERT_TRUE(big != NULL);
    uint64_t rng = 42;
    for (size_t i = 0; i < 1000000; i++) big[i] = (char)test_rand(&rng);
    char big_key[1024];
    size_t big_key_len = 0;
    cat(big_key, &big_key_len, prefix, plen);
    cat(big_key, &big_key_len, "/big", 4);
    ETCD_OK_OR_FAIL(e, etcd_put(e, big_key, big_key_len, big, 1000000, 0, NULL));
    ETCD_OK_OR_FAIL(e, etcd_get(e, big_key, big_key_len, false, &got));
    ASSERT_UEQ(got.kv_count, 1);
    check_kv(&got.kvs[0], big_key, big_key_len, big, 1000000);
    etcd_kvs_free(&got);

    /* A response over max_response_bytes is an error, and the handle goes
     * on working. */
    etcd_options small = {.timeout_ms = 2000, .max_response_bytes = 100000, .log = on_log};
    etcd *s = open_with(&small);
    ASSERT_EQ(etcd_get(s, big_key, big_key_len, false, &got), ETCD_ETOOBIG);
    ASSERT_TRUE(strstr(etcd_errmsg(s), "100000") != NULL);
    ETCD_OK_OR_FAIL(s, etcd_get(s, key, key_len, false, &got));
    ASSERT_UEQ(got.kv_count, 1);
    etcd_kvs_free(&got);
    etcd_free(s);
    free(big);

    /* Deletes: one key, then a prefix; nothing there is not an error. */
    int64_t deleted = -1, rev = 0;
    ETCD_OK_OR_FAIL(e, etcd_delete(e, key, key_len, false, &deleted, &rev));
    ASSERT_EQ(deleted, 1);
    ETCD_OK_OR_FAIL(e, etcd_get(e, key, key_len, false, &got));
    ASSERT_UEQ(got.kv_count, 0);
    ASSERT_TRUE(got.revision >= rev);
    etcd_kvs_free(&got);
    ETCD_OK_OR_FAIL(e, etcd_delete(e, key, key_len, false, &deleted, NULL));
    ASSERT_EQ(deleted, 0);
    ETCD_OK_OR_FAIL(e, etcd_delete(e, ff, ff_len, true, &deleted, NULL));
    ASSERT_EQ(deleted, 4);
    ETCD_OK_OR_FAIL(e, etcd_get(e, outside, outside_len, false, &got));
    ASSERT_UEQ(got.kv_count, 1); /* the prefix's neighbour stays */
    etcd_kvs_free(&got);

    /* The empty prefix is every key: ours among them. */
    ETCD_OK_OR_FAIL(e, etcd_get(e, "", 0, true, &got));
    ASSERT_TRUE(got.kv_count >= 257);
    etcd_kvs_free(&got);

    /* Arguments the client refuses before sending anything. */
    ASSERT_EQ(etcd_get(e, "", 0, false, &got), ETCD_EINVAL);
    ASSERT_EQ(etcd_put(e, "", 0, "v", 1, 0, NULL), ETCD_EINVAL);
    etcd *bad = NULL;
    ASSERT_EQ(etcd_create("ftp://127.0.0.1:1", NULL, &bad), ETCD_EINVAL);
    ASSERT_EQ(etcd_create("http://127.0.0.1:1,,http://x", NULL, &bad), ETCD_EINVAL);
    ASSERT_TRUE(bad == NULL);
    etcd_options no_user = {.password = "x"};
    ASSERT_EQ(etcd_create(endpoints, &no_user, &bad), ETCD_EINVAL);
    etcd_free(NULL);
    etcd_free(e);
}

/* ---- cas -------------------------------------------------------------- */

typedef struct racer {
    const char *key;
    size_t key_len;
    int64_t mod_revision;
    char value[16];
    pthread_barrier_t *start;
    etcd *e;
    etcd_cas_result result;
} racer;

static void *race(void *arg) {
    racer *r = arg;
    etcd_cas c = {.key = r->key,
                  .key_len = r->key_len,
                  .mod_revision = r->mod_revision,
                  .value = r->value,
                  .value_len = strlen(r->value)};
    pthread_barrier_wait(r->start);
    ETCD_OK_OR_FAIL(r->e, etcd_txn_cas(r->e, &c, &r->result));
    return NULL;
}

static void cmd_cas(const char *prefix) {
    etcd *e = open_default();
    char key[512];
    snprintf(key, sizeof key, "%s/cas", prefix);
    size_t key_len = strlen(key);
    etcd_cas_result res;

    /* Create-if-absent succeeds once. */
    etcd_cas create = {.key = key, .key_len = key_len, .mod_revision = 0, .value = "one",
                       .value_len = 3};
    ETCD_OK_OR_FAIL(e, etcd_txn_cas(e, &create, &res));
    ASSERT_TRUE(res.is_swapped);
    int64_t rev_one = res.revision;
    ASSERT_UEQ(res.current.kv_count, 0);
    etcd_cas_result_free(&res);
    create.value = "two";
    ETCD_OK_OR_FAIL(e, etcd_txn_cas(e, &create, &res));
    ASSERT_TRUE(!res.is_swapped);
    ASSERT_UEQ(res.current.kv_count, 1); /* what is there instead */
    check_kv(&res.current.kvs[0], key, key_len, "one", 3);
    ASSERT_EQ(res.current.kvs[0].mod_revision, rev_one);
    etcd_cas_result_free(&res);

    /* On the revision read: swaps; on a stale one: does not. */
    etcd_cas on_rev = {.key = key, .key_len = key_len, .mod_revision = rev_one,
                       .value = "three", .value_len = 5};
    ETCD_OK_OR_FAIL(e, etcd_txn_cas(e, &on_rev, &res));
    ASSERT_TRUE(res.is_swapped);
    ASSERT_TRUE(res.revision > rev_one);
    etcd_cas_result_free(&res);
    ETCD_OK_OR_FAIL(e, etcd_txn_cas(e, &on_rev, &res));
    ASSERT_TRUE(!res.is_swapped);
    check_kv(&res.current.kvs[0], key, key_len, "three", 5);
    etcd_cas_result_free(&res);

    /* On the value, any byte in it. */
    etcd_cas on_value = {.key = key, .key_len = key_len, .is_value_compare = true,
                         .expected = "three", .expected_len = 5, .value = "f\0ur",
                         .value_len = 4};
    ETCD_OK_OR_FAIL(e, etcd_txn_cas(e, &on_value, &res));
    ASSERT_TRUE(res.is_swapped);
    etcd_cas_result_free(&res);
    ETCD_OK_OR_FAIL(e, etcd_txn_cas(e, &on_value, &res));
    ASSERT_TRUE(!res.is_swapped);
    check_kv(&res.current.kvs[0], key, key_len, "f\0ur", 4);
    etcd_cas_result_free(&res);
    /* A missing key never equals a value, not even the empty one. */
    char missing[512];
    snprintf(missing, sizeof missing, "%s/cas-missing", prefix);
    etcd_cas on_missing = {.key = missing, .key_len = strlen(missing), .is_value_compare = true,
                           .expected = "", .expected_len = 0, .value = "v", .value_len = 1};
    ETCD_OK_OR_FAIL(e, etcd_txn_cas(e, &on_missing, &res));
    ASSERT_TRUE(!res.is_swapped);
    ASSERT_UEQ(res.current.kv_count, 0);
    etcd_cas_result_free(&res);

    /* Fencing: compare one key, write another. */
    char other[512];
    snprintf(other, sizeof other, "%s/cas-fenced", prefix);
    etcd_kvs now;
    ETCD_OK_OR_FAIL(e, etcd_get(e, key, key_len, false, &now));
    etcd_cas fenced = {.key = key, .key_len = key_len, .mod_revision = now.kvs[0].mod_revision,
                       .put_key = other, .put_key_len = strlen(other), .value = "fenced",
                       .value_len = 6};
    etcd_kvs_free(&now);
    ETCD_OK_OR_FAIL(e, etcd_txn_cas(e, &fenced, &res));
    ASSERT_TRUE(res.is_swapped);
    etcd_cas_result_free(&res);
    ETCD_OK_OR_FAIL(e, etcd_get(e, other, strlen(other), false, &now));
    ASSERT_UEQ(now.kv_count, 1);
    check_kv(&now.kvs[0], other, strlen(other), "fenced", 6);
    etcd_kvs_free(&now);

    /* Two writers, each with its own handle, released together on the same
     * compare: exactly one wins each round, and the loser sees the winner's
     * value. Rounds alternate create (0) and update (the revision read). */
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    racer r[2];
    etcd *handles[2] = {open_default(), open_default()};
    int wins[2] = {0, 0};
    const int rounds = 40;
    for (int round = 0; round < rounds; round++) {
        char rkey[512];
        snprintf(rkey, sizeof rkey, "%s/race/%d", prefix, round / 2);
        int64_t mod = 0;
        if (round % 2 == 1) {
            ETCD_OK_OR_FAIL(e, etcd_get(e, rkey, strlen(rkey), false, &now));
            ASSERT_UEQ(now.kv_count, 1);
            mod = now.kvs[0].mod_revision;
            etcd_kvs_free(&now);
        }
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
            r[i] = (racer){.key = rkey, .key_len = strlen(rkey), .mod_revision = mod,
                           .start = &start, .e = handles[i]};
            snprintf(r[i].value, sizeof r[i].value, "w%d-%d", i, round);
            ASSERT_EQ(pthread_create(&t[i], NULL, race, &r[i]), 0);
        }
        for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
        ASSERT_TRUE(r[0].result.is_swapped != r[1].result.is_swapped);
        int winner = r[0].result.is_swapped ? 0 : 1;
        wins[winner]++;
        const etcd_kvs *seen = &r[1 - winner].result.current;
        ASSERT_UEQ(seen->kv_count, 1);
        check_kv(&seen->kvs[0], rkey, strlen(rkey), r[winner].value, strlen(r[winner].value));
        ASSERT_EQ(seen->kvs[0].mod_revision, r[winner].result.revision);
        for (int i = 0; i < 2; i++) etcd_cas_result_free(&r[i].result);
    }
    printf("FIGURE cas_race_wins %d/%d\n", wins[0], wins[1]);
    pthread_barrier_destroy(&start);
    etcd_free(handles[0]);
    etcd_free(handles[1]);
    etcd_free(e);
}

/* ---- lease ------------------------------------------------------------ */

static bool key_exists(etcd *e, const char *key, int64_t *lease) {
    etcd_kvs got;
    ETCD_OK_OR_FAIL(e, etcd_get(e, key, strlen(key), false, &got));
    bool is_there = got.kv_count == 1;
    if (is_there && lease) *lease = got.kvs[0].lease;
    etcd_kvs_free(&got);
    return is_there;
}

/* ---- txn -------------------------------------------------------------- */

/* The value of key under prefix, or "-" when absent (into out). */
static const char *value_of(etcd *e, const char *key, char *out, size_t cap) {
    etcd_kvs got;
    ETCD_OK_OR_FAIL(e, etcd_get(e, key, strlen(key), false, &got));
    snprintf(out, cap, "%s", got.kv_count ? got.kvs[0].value : "-");
    etcd_kvs_free(&got);
    return out;
}

static int64_t mod_revision_of(etcd *e, const char *key) {
    etcd_kvs got;
    ETCD_OK_OR_FAIL(e, etcd_get(e, key, strlen(key), false, &got));
    int64_t rev = got.kv_count ? got.kvs[0].mod_revision : 0;
    etcd_kvs_free(&got);
    return rev;
}

static void cmd_txn(const char *prefix) {
    etcd *e = open_default();
    char a[512], b[512], dir[512], d1[512], d2[512], leased[512], buf[64];
    snprintf(a, sizeof a, "%s/a", prefix);
    snprintf(b, sizeof b, "%s/b", prefix);
    snprintf(dir, sizeof dir, "%s/dir/", prefix);
    snprintf(d1, sizeof d1, "%s/dir/1", prefix);
    snprintf(d2, sizeof d2, "%s/dir/2", prefix);
    snprintf(leased, sizeof leased, "%s/leased", prefix);
    bool is_ok = false;
    int64_t rev = 0;

    /* Create-if-absent: once. */
    etcd_compare absent = {.kind = ETCD_CMP_ABSENT, .key = a, .key_len = strlen(a)};
    etcd_op put_a = {.kind = ETCD_OP_PUT, .key = a, .key_len = strlen(a), .value = "one",
                     .value_len = 3};
    ETCD_OK_OR_FAIL(e, etcd_txn(e, &absent, 1, &put_a, 1, &is_ok, &rev));
    ASSERT_TRUE(is_ok);
    ASSERT_EQ(mod_revision_of(e, a), rev);
    int64_t rev_a = rev;
    put_a.value = "two";
    ETCD_OK_OR_FAIL(e, etcd_txn(e, &absent, 1, &put_a, 1, &is_ok, &rev));
    ASSERT_TRUE(!is_ok);
    ASSERT_TRUE(rev >= rev_a);
    ASSERT_TRUE(strcmp(value_of(e, a, buf, sizeof buf), "one") == 0);

    /* No compares: always. Puts under dir/ to delete by prefix below. */
    etcd_op fill[] = {{.kind = ETCD_OP_PUT, .key = d1, .key_len = strlen(d1), .value = "x",
                       .value_len = 1},
                      {.kind = ETCD_OP_PUT, .key = d2, .key_len = strlen(d2), .value = "",
                       .value_len = 0}};
    ETCD_OK_OR_FAIL(e, etcd_txn(e, NULL, 0, fill, 2, &is_ok, &rev));
    ASSERT_TRUE(is_ok);
    ASSERT_EQ(mod_revision_of(e, d1), rev);
    ASSERT_EQ(mod_revision_of(e, d2), rev); /* one revision for the whole txn */

    /* Three compares that hold, four ops of every kind, one revision. */
    int64_t lease = 0;
    ETCD_OK_OR_FAIL(e, etcd_lease_grant(e, 30, &lease, NULL));
    etcd_compare all[] = {
        {.kind = ETCD_CMP_MOD_REVISION, .key = a, .key_len = strlen(a), .mod_revision = rev_a},
        {.kind = ETCD_CMP_VALUE, .key = a, .key_len = strlen(a), .value = "one", .value_len = 3},
        {.kind = ETCD_CMP_ABSENT, .key = b, .key_len = strlen(b)},
    };
    etcd_op ops[] = {
        {.kind = ETCD_OP_PUT, .key = b, .key_len = strlen(b), .value = "b\0b", .value_len = 3},
        {.kind = ETCD_OP_PUT, .key = leased, .key_len = strlen(leased), .value = "l",
         .value_len = 1, .lease = lease},
        {.kind = ETCD_OP_DELETE, .key = a, .key_len = strlen(a)},
        {.kind = ETCD_OP_DELETE_PREFIX, .key = dir, .key_len = strlen(dir)},
    };
    /* One compare wrong (a stale revision): nothing happens. */
    all[0].mod_revision = rev_a - 1;
    ETCD_OK_OR_FAIL(e, etcd_txn(e, all, 3, ops, 4, &is_ok, &rev));
    ASSERT_TRUE(!is_ok);
    ASSERT_TRUE(strcmp(value_of(e, a, buf, sizeof buf), "one") == 0);
    ASSERT_TRUE(strcmp(value_of(e, b, buf, sizeof buf), "-") == 0);
    ASSERT_TRUE(strcmp(value_of(e, d1, buf, sizeof buf), "x") == 0);
    all[0].mod_revision = rev_a;
    ETCD_OK_OR_FAIL(e, etcd_txn(e, all, 3, ops, 4, &is_ok, &rev));
    ASSERT_TRUE(is_ok);
    ASSERT_TRUE(strcmp(value_of(e, a, buf, sizeof buf), "-") == 0);
    ASSERT_TRUE(strcmp(value_of(e, d1, buf, sizeof buf), "-") == 0);
    ASSERT_TRUE(strcmp(value_of(e, d2, buf, sizeof buf), "-") == 0);
    etcd_kvs got;
    ETCD_OK_OR_FAIL(e, etcd_get(e, b, strlen(b), false, &got));
    ASSERT_UEQ(got.kv_count, 1);
    ASSERT_UEQ(got.kvs[0].value_len, 3);
    ASSERT_TRUE(memcmp(got.kvs[0].value, "b\0b", 3) == 0);
    ASSERT_EQ(got.kvs[0].mod_revision, rev);
    etcd_kvs_free(&got);
    ETCD_OK_OR_FAIL(e, etcd_get(e, leased, strlen(leased), false, &got));
    ASSERT_UEQ(got.kv_count, 1);
    ASSERT_EQ(got.kvs[0].lease, lease);
    etcd_kvs_free(&got);
    /* The compare on a deleted key: absent again, create works. */
    ETCD_OK_OR_FAIL(e, etcd_txn(e, &absent, 1, &put_a, 1, &is_ok, &rev));
    ASSERT_TRUE(is_ok);

    /* Two writers on the same revision: exactly one wins. */
    int64_t rev_b = mod_revision_of(e, b);
    etcd_compare on_b = {.kind = ETCD_CMP_MOD_REVISION, .key = b, .key_len = strlen(b),
                         .mod_revision = rev_b};
    etcd_op put_b = {.kind = ETCD_OP_PUT, .key = b, .key_len = strlen(b), .value = "first",
                     .value_len = 5};
    ETCD_OK_OR_FAIL(e, etcd_txn(e, &on_b, 1, &put_b, 1, &is_ok, NULL));
    ASSERT_TRUE(is_ok);
    put_b.value = "second";
    put_b.value_len = 6;
    ETCD_OK_OR_FAIL(e, etcd_txn(e, &on_b, 1, &put_b, 1, &is_ok, NULL));
    ASSERT_TRUE(!is_ok);
    ASSERT_TRUE(strcmp(value_of(e, b, buf, sizeof buf), "first") == 0);

    /* etcd's refusals: one key twice (a put inside a deleted prefix too),
     * a lease that does not exist. */
    etcd_op twice[] = {{.kind = ETCD_OP_PUT, .key = d1, .key_len = strlen(d1), .value = "x",
                        .value_len = 1},
                       {.kind = ETCD_OP_DELETE_PREFIX, .key = dir, .key_len = strlen(dir)}};
    ASSERT_EQ(etcd_txn(e, NULL, 0, twice, 2, &is_ok, &rev), ETCD_EREFUSED);
    printf("FIGURE duplicate_key_error %s\n", etcd_errmsg(e));
    ASSERT_TRUE(strstr(etcd_errmsg(e), "duplicate key") != NULL);
    etcd_op no_lease = {.kind = ETCD_OP_PUT, .key = d1, .key_len = strlen(d1), .value = "x",
                        .value_len = 1, .lease = 12345};
    ASSERT_EQ(etcd_txn(e, NULL, 0, &no_lease, 1, &is_ok, &rev), ETCD_ENOTFOUND);
    ASSERT_TRUE(strcmp(value_of(e, d1, buf, sizeof buf), "-") == 0);

    /* Refused before sending: empty keys, bad kinds, negative numbers. */
    etcd_compare bad_cmp = {.kind = ETCD_CMP_MOD_REVISION, .key = a, .key_len = strlen(a),
                            .mod_revision = -1};
    ASSERT_EQ(etcd_txn(e, &bad_cmp, 1, NULL, 0, NULL, NULL), ETCD_EINVAL);
    bad_cmp = (etcd_compare){.kind = (etcd_compare_kind)7, .key = a, .key_len = strlen(a)};
    ASSERT_EQ(etcd_txn(e, &bad_cmp, 1, NULL, 0, NULL, NULL), ETCD_EINVAL);
    etcd_op bad_op = {.kind = ETCD_OP_PUT, .key = "", .key_len = 0};
    ASSERT_EQ(etcd_txn(e, NULL, 0, &bad_op, 1, NULL, NULL), ETCD_EINVAL);
    ASSERT_EQ(etcd_txn(e, NULL, 1, NULL, 0, NULL, NULL), ETCD_EINVAL);
    ASSERT_EQ(etcd_txn(NULL, NULL, 0, NULL, 0, NULL, NULL), ETCD_EINVAL);
    ETCD_OK_OR_FAIL(e, etcd_lease_revoke(e, lease));
    etcd_free(e);
}

static void cmd_lease(const char *prefix, int ttl) {
    etcd *e = open_default();
    char key[512];
    snprintf(key, sizeof key, "%s/leased", prefix);
    int64_t id = 0, granted = 0, ttl_left = 0, on_key = 0;
    ETCD_OK_OR_FAIL(e, etcd_lease_grant(e, ttl, &id, &granted));
    ASSERT_TRUE(id > 0);
    ASSERT_EQ(granted, ttl);
    ETCD_OK_OR_FAIL(e, etcd_put(e, key, strlen(key), "alive", 5, id, NULL));

    /* Kept alive every 500 ms for three TTLs: the key stays. */
    int64_t until = now_ms() + 3000 * ttl, last_keepalive = 0;
    int rounds = 0;
    while (now_ms() < until) {
        ETCD_OK_OR_FAIL(e, etcd_lease_keepalive(e, id, &ttl_left));
        last_keepalive = now_ms();
        ASSERT_EQ(ttl_left, ttl);
        ASSERT_TRUE(key_exists(e, key, &on_key));
        ASSERT_EQ(on_key, id);
        rounds++;
        sleep_ms(500);
    }
    /* Left alone: gone within TTL + 1 s of the last keep-alive (etcd checks
     * expiry every 500 ms, then revokes through raft). */
    int64_t gone_at = 0;
    while (now_ms() < last_keepalive + (ttl + 5) * 1000) {
        if (!key_exists(e, key, NULL)) {
            gone_at = now_ms();
            break;
        }
        sleep_ms(50);
    }
    ASSERT_TRUE(gone_at != 0);
    int64_t gone_ms = gone_at - last_keepalive;
    printf("FIGURE lease_keepalive_rounds %d\n", rounds);
    printf("FIGURE lease_gone_after_ms %lld (ttl %d s)\n", (long long)gone_ms, ttl);
    ASSERT_TRUE(gone_ms <= (ttl + 1) * 1000);
    /* Too early would be as wrong: the TTL counts from the last round. */
    ASSERT_TRUE(gone_ms >= ttl * 1000 - 600);
    ETCD_OK_OR_FAIL(e, etcd_lease_keepalive(e, id, &ttl_left));
    ASSERT_EQ(ttl_left, 0); /* the lease is gone */
    ASSERT_EQ(etcd_lease_revoke(e, id), ETCD_ENOTFOUND);
    ASSERT_EQ(etcd_put(e, key, strlen(key), "v", 1, id, NULL), ETCD_ENOTFOUND);
    ASSERT_TRUE(strstr(etcd_errmsg(e), "lease not found") != NULL);

    /* Revoked: its keys go at once. */
    ETCD_OK_OR_FAIL(e, etcd_lease_grant(e, 60, &id, NULL));
    ETCD_OK_OR_FAIL(e, etcd_put(e, key, strlen(key), "v", 1, id, NULL));
    ASSERT_TRUE(key_exists(e, key, NULL));
    ETCD_OK_OR_FAIL(e, etcd_lease_revoke(e, id));
    ASSERT_TRUE(!key_exists(e, key, NULL));
    ASSERT_EQ(etcd_lease_grant(e, 0, &id, NULL), ETCD_EINVAL);
    etcd_free(e);
}

/* ---- writer and watcher ------------------------------------------------ */

/* N keys PREFIX/k00000..., each created once (compare mod_revision 0), so a
 * retry of an attempt that was applied but not acknowledged cannot write a
 * second revision: it finds its own value there. */
static void cmd_writer(const char *prefix, int count) {
    etcd_options opt = {.timeout_ms = 1500, .log = on_log};
    etcd *e = open_with(&opt);
    int retries = 0;
    for (int i = 0; i <= count; i++) {
        char key[512], value[64];
        if (i < count)
            snprintf(key, sizeof key, "%s/k%05d", prefix, i);
        else
            snprintf(key, sizeof key, "%s/stop", prefix);
        snprintf(value, sizeof value, "v%d", i);
        etcd_cas c = {.key = key, .key_len = strlen(key), .value = value,
                      .value_len = strlen(value)};
        int64_t give_up = now_ms() + 60000;
        for (;;) {
            etcd_cas_result res;
            int rc = etcd_txn_cas(e, &c, &res);
            if (rc == ETCD_OK) {
                int64_t rev = res.revision;
                if (!res.is_swapped) {
                    ASSERT_UEQ(res.current.kv_count, 1);
                    check_kv(&res.current.kvs[0], key, strlen(key), value, strlen(value));
                    rev = res.current.kvs[0].mod_revision;
                }
                etcd_cas_result_free(&res);
                printf("ACK %d %lld\n", i, (long long)rev);
                fflush(stdout);
                break;
            }
            ASSERT_EQ(rc, ETCD_EUNAVAILABLE);
            printf("RETRY %d %s\n", i, etcd_errmsg(e));
            fflush(stdout);
            retries++;
            ASSERT_TRUE(now_ms() < give_up);
            sleep_ms(100);
        }
        sleep_ms(5);
    }
    printf("FIGURE writer_retries %d\n", retries);
    etcd_free(e);
}

static void cmd_watch(const char *prefix, int64_t start_rev, int probe_ms) {
    etcd_options opt = {.timeout_ms = 1000, .watch_probe_ms = probe_ms, .log = on_log};
    etcd *e = open_with(&opt);
    etcd_watch *w = NULL;
    char stop[512];
    snprintf(stop, sizeof stop, "%s/stop", prefix);
    ETCD_OK_OR_FAIL(e, etcd_watch_open(e, prefix, strlen(prefix), true, start_rev, &w));
    int64_t last_rev = start_rev - 1, give_up = now_ms() + 110000;
    int created = 0, unavailable = 0;
    for (bool is_stopped = false; !is_stopped;) {
        ASSERT_TRUE(now_ms() < give_up);
        etcd_watch_batch b;
        int rc = etcd_watch_next(w, 1000, &b);
        if (rc == 0) continue;
        if (rc == ETCD_EUNAVAILABLE) {
            unavailable++;
            printf("UNAVAILABLE %s\n", etcd_watch_errmsg(w));
            fflush(stdout);
            continue;
        }
        if (rc != 1) TEST_FAIL_AT("watch: %s (%s)", etcd_strerror(rc), etcd_watch_errmsg(w));
        if (b.is_created) {
            created++;
            ASSERT_EQ(b.event_count, 0);
            printf("CREATED %lld\n", (long long)b.revision);
        }
        for (size_t i = 0; i < b.event_count; i++) {
            const etcd_event *ev = &b.events[i];
            /* One put a revision here: each strictly after the last. */
            ASSERT_TRUE(ev->kv.mod_revision > last_rev);
            last_rev = ev->kv.mod_revision;
            printf("EV %lld %lld %s ", (long long)now_ms(), (long long)ev->kv.mod_revision,
                   ev->type == ETCD_EVENT_PUT ? "PUT" : "DELETE");
            print_hex(ev->kv.key, ev->kv.key_len);
            putchar(' ');
            print_hex(ev->kv.value, ev->kv.value_len);
            putchar('\n');
            if (ev->type == ETCD_EVENT_PUT && ev->kv.key_len == strlen(stop) &&
                memcmp(ev->kv.key, stop, ev->kv.key_len) == 0)
                is_stopped = true;
        }
        ASSERT_EQ(etcd_watch_revision(w), last_rev + 1);
        fflush(stdout);
        etcd_watch_batch_free(&b);
    }
    ASSERT_EQ(created, 1); /* reopenings are not the caller's business */
    printf("FIGURE watch_reopened %d\nFIGURE watch_unavailable_reports %d\n", (int)left_lines,
           unavailable);
    etcd_watch_close(w);
    etcd_watch_close(NULL);
    etcd_free(e);
}

/* ---- outage ----------------------------------------------------------- */

/* Each operation fails, as EUNAVAILABLE naming every endpoint, within the
 * documented bound: every endpoint once plus one authentication. */
static void expect_down(etcd *e, int timeout_ms, const char *prefix) {
    size_t endpoint_count = 1;
    for (const char *p = endpoints; *p; p++) endpoint_count += *p == ',';
    int64_t bound = (int64_t)(endpoint_count + 1) * timeout_ms;
    char key[512];
    snprintf(key, sizeof key, "%s/outage", prefix);
    for (int op = 0; op < 3; op++) {
        int64_t t0 = now_ms(), id;
        etcd_kvs got;
        int rc = op == 0   ? etcd_get(e, key, strlen(key), false, &got)
                 : op == 1 ? etcd_put(e, key, strlen(key), "v", 1, 0, NULL)
                           : etcd_lease_grant(e, 5, &id, NULL);
        int64_t took = now_ms() - t0;
        printf("DOWN %s %lld ms: %s\n", op == 0 ? "get" : op == 1 ? "put" : "grant",
               (long long)took, etcd_errmsg(e));
        printf("FIGURE down_%s_ms %lld\n", op == 0 ? "get" : op == 1 ? "put" : "grant",
               (long long)took);
        ASSERT_EQ(rc, ETCD_EUNAVAILABLE);
        ASSERT_TRUE(took <= bound);
        for (const char *p = endpoints; *p;) {
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            char url[256];
            snprintf(url, sizeof url, "%.*s", (int)n, p);
            ASSERT_TRUE(strstr(etcd_errmsg(e), url) != NULL);
            p += n + (end ? 1 : 0);
        }
    }
}

static void wait_line(const char *what) {
    char line[64];
    printf("%s\n", what);
    fflush(stdout);
    ASSERT_TRUE(fgets(line, sizeof line, stdin) != NULL);
}

static void cmd_outage(const char *prefix, int timeout_ms) {
    etcd_options opt = {.timeout_ms = timeout_ms, .watch_probe_ms = 1000, .log = on_log};
    etcd *e = open_with(&opt);
    /* A watch established while the cluster is whole. */
    etcd_watch *w = NULL;
    ETCD_OK_OR_FAIL(e, etcd_watch_open(e, prefix, strlen(prefix), true, 0, &w));
    etcd_watch_batch b;
    int rc = etcd_watch_next(w, 10000, &b);
    ASSERT_EQ(rc, 1);
    ASSERT_TRUE(b.is_created);
    etcd_watch_batch_free(&b);
    wait_line("READY"); /* test_etcd.py kills two members, then says so */

    expect_down(e, timeout_ms, prefix);
    /* The watch reports the outage, and does not hang. */
    int64_t t0 = now_ms();
    do {
        rc = etcd_watch_next(w, 30000, &b);
        ASSERT_TRUE(rc != 1);
    } while (rc == 0 && now_ms() - t0 < 30000);
    printf("FIGURE down_watch_ms %lld\n", (long long)(now_ms() - t0));
    printf("DOWN watch: %s\n", etcd_watch_errmsg(w));
    ASSERT_EQ(rc, ETCD_EUNAVAILABLE);
    wait_line("DOWN-CHECKED"); /* a member comes back */

    int64_t back = now_ms(), put_rev = 0;
    char key[512];
    snprintf(key, sizeof key, "%s/after", prefix);
    for (;;) {
        rc = etcd_put(e, key, strlen(key), "back", 4, 0, &put_rev);
        if (rc == ETCD_OK) break;
        ASSERT_EQ(rc, ETCD_EUNAVAILABLE);
        ASSERT_TRUE(now_ms() - back < 60000);
        sleep_ms(100);
    }
    printf("FIGURE up_put_after_ms %lld\n", (long long)(now_ms() - back));
    /* The same watch sees the put, and nothing else happened under the
     * prefix: it is the first event. */
    for (;;) {
        rc = etcd_watch_next(w, 1000, &b);
        ASSERT_TRUE(now_ms() - back < 60000);
        if (rc == 0 || rc == ETCD_EUNAVAILABLE) continue;
        ASSERT_EQ(rc, 1);
        if (b.event_count == 0) {
            etcd_watch_batch_free(&b);
            continue;
        }
        ASSERT_UEQ(b.event_count, 1);
        ASSERT_EQ(b.events[0].kv.mod_revision, put_rev);
        check_kv(&b.events[0].kv, key, strlen(key), "back", 4);
        etcd_watch_batch_free(&b);
        break;
    }
    printf("FIGURE up_watch_after_ms %lld\n", (long long)(now_ms() - back));
    etcd_watch_close(w);
    etcd_free(e);
}

/* ---- auth ------------------------------------------------------------- */

static void cmd_auth(const char *root_password, const char *prefix, int token_ttl) {
    char key[512];
    snprintf(key, sizeof key, "%s/auth", prefix);
    etcd_kvs got;

    /* A wrong password, and none at all: clear errors. */
    etcd_options wrong = {.timeout_ms = 2000, .username = "root", .password = "wrong"};
    etcd *e = open_with(&wrong);
    ASSERT_EQ(etcd_get(e, key, strlen(key), false, &got), ETCD_EAUTH);
    printf("AUTH wrong: %s\n", etcd_errmsg(e));
    ASSERT_TRUE(strstr(etcd_errmsg(e), "invalid user ID or password") != NULL);
    etcd_free(e);
    e = open_with(&(etcd_options){.timeout_ms = 2000});
    ASSERT_EQ(etcd_put(e, key, strlen(key), "v", 1, 0, NULL), ETCD_EAUTH);
    printf("AUTH none: %s\n", etcd_errmsg(e));
    ASSERT_TRUE(strstr(etcd_errmsg(e), "user name is empty") != NULL);
    etcd_free(e);

    /* The right one works. */
    etcd_options right = {.timeout_ms = 2000, .username = "root", .password = root_password,
                          .log = on_log};
    e = open_with(&right);
    int64_t rev = 0;
    ETCD_OK_OR_FAIL(e, etcd_put(e, key, strlen(key), "v1", 2, 0, &rev));
    ETCD_OK_OR_FAIL(e, etcd_get(e, key, strlen(key), false, &got));
    ASSERT_UEQ(got.kv_count, 1);
    etcd_kvs_free(&got);

    /* A user whose role reads and writes only PREFIX/app/: refused
     * elsewhere, also for a watch. */
    etcd_options app = {.timeout_ms = 2000, .username = "app", .password = "app-pw",
                        .log = on_log};
    etcd *a = open_with(&app);
    char mine[512];
    snprintf(mine, sizeof mine, "%s/app/x", prefix);
    ETCD_OK_OR_FAIL(a, etcd_put(a, mine, strlen(mine), "ok", 2, 0, NULL));
    ASSERT_EQ(etcd_put(a, key, strlen(key), "no", 2, 0, NULL), ETCD_EPERM);
    printf("AUTH denied: %s\n", etcd_errmsg(a));
    etcd_watch *w = NULL;
    ETCD_OK_OR_FAIL(a, etcd_watch_open(a, key, strlen(key), false, 0, &w));
    etcd_watch_batch b;
    int rc = etcd_watch_next(w, 5000, &b);
    printf("AUTH watch denied: %s\n", etcd_watch_errmsg(w));
    ASSERT_EQ(rc, ETCD_EPERM);
    ASSERT_EQ(etcd_watch_next(w, 0, &b), ETCD_EPERM); /* and stays over */
    etcd_watch_close(w);
    etcd_free(a);

    /* Idle past the token's TTL (etcd --auth-token-ttl): etcd forgets the
     * token; the next call is refused once, authenticates again and
     * succeeds. A watch opened with the stale token does the same. */
    int before = reauth_lines;
    sleep_ms(token_ttl * 1000 + 2500);
    ETCD_OK_OR_FAIL(e, etcd_get(e, key, strlen(key), false, &got));
    ASSERT_UEQ(got.kv_count, 1);
    etcd_kvs_free(&got);
    ASSERT_EQ(reauth_lines, before + 1);
    sleep_ms(token_ttl * 1000 + 2500);
    ETCD_OK_OR_FAIL(e, etcd_watch_open(e, key, strlen(key), false, rev, &w));
    bool is_seen = false;
    for (int64_t t0 = now_ms(); !is_seen && now_ms() - t0 < 10000;) {
        rc = etcd_watch_next(w, 1000, &b);
        if (rc == 0) continue;
        if (rc != 1) TEST_FAIL_AT("watch: %s (%s)", etcd_strerror(rc), etcd_watch_errmsg(w));
        is_seen = b.event_count > 0 && b.events[0].kv.mod_revision == rev;
        etcd_watch_batch_free(&b);
    }
    ASSERT_TRUE(is_seen);
    ASSERT_EQ(reauth_lines, before + 2);
    etcd_watch_close(w);
    etcd_free(e);
}

/* ---- tls -------------------------------------------------------------- */

static void cmd_tls(const char *ca, const char *cert, const char *key_file, const char *prefix) {
    char key[512];
    snprintf(key, sizeof key, "%s/tls", prefix);
    etcd_kvs got;
    etcd_options opt = {.timeout_ms = 3000, .ca_file = ca, .cert_file = cert,
                        .key_file = key_file};
    etcd *e = open_with(&opt);
    ETCD_OK_OR_FAIL(e, etcd_put(e, key, strlen(key), "secure", 6, 0, NULL));
    ETCD_OK_OR_FAIL(e, etcd_get(e, key, strlen(key), false, &got));
    ASSERT_UEQ(got.kv_count, 1);
    check_kv(&got.kvs[0], key, strlen(key), "secure", 6);
    int64_t put_rev = got.kvs[0].mod_revision;
    etcd_kvs_free(&got);
    etcd_watch *w = NULL;
    ETCD_OK_OR_FAIL(e, etcd_watch_open(e, key, strlen(key), false, put_rev, &w));
    etcd_watch_batch b;
    int rc;
    while ((rc = etcd_watch_next(w, 5000, &b)) == 1 && b.event_count == 0)
        etcd_watch_batch_free(&b);
    ASSERT_EQ(rc, 1);
    check_kv(&b.events[0].kv, key, strlen(key), "secure", 6);
    etcd_watch_batch_free(&b);
    etcd_watch_close(w);
    etcd_free(e);

    /* Without the client certificate etcd refuses the handshake; without
     * the CA we refuse etcd's certificate. Both are endpoint failures. */
    e = open_with(&(etcd_options){.timeout_ms = 3000, .ca_file = ca});
    ASSERT_EQ(etcd_get(e, key, strlen(key), false, &got), ETCD_EUNAVAILABLE);
    printf("TLS no client cert: %s\n", etcd_errmsg(e));
    etcd_free(e);
    e = open_with(&(etcd_options){.timeout_ms = 3000, .cert_file = cert, .key_file = key_file});
    ASSERT_EQ(etcd_get(e, key, strlen(key), false, &got), ETCD_EUNAVAILABLE);
    printf("TLS unknown CA: %s\n", etcd_errmsg(e));
    ASSERT_TRUE(strstr(etcd_errmsg(e), "certificate") != NULL);
    etcd_free(e);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s COMMAND ENDPOINTS PREFIX [ARGS]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cmd = argv[1], *prefix = argv[3];
    endpoints = argv[2];
    if (strcmp(cmd, "kv") == 0)
        cmd_kv(prefix);
    else if (strcmp(cmd, "cas") == 0)
        cmd_cas(prefix);
    else if (strcmp(cmd, "txn") == 0)
        cmd_txn(prefix);
    else if (strcmp(cmd, "lease") == 0 && argc == 5)
        cmd_lease(prefix, atoi(argv[4]));
    else if (strcmp(cmd, "writer") == 0 && argc == 5)
        cmd_writer(prefix, atoi(argv[4]));
    else if (strcmp(cmd, "watch") == 0 && argc == 6)
        cmd_watch(prefix, atoll(argv[4]), atoi(argv[5]));
    else if (strcmp(cmd, "outage") == 0 && argc == 5)
        cmd_outage(prefix, atoi(argv[4]));
    else if (strcmp(cmd, "auth") == 0 && argc == 6)
        cmd_auth(argv[4], prefix, atoi(argv[5]));
    else if (strcmp(cmd, "tls") == 0 && argc == 7)
        cmd_tls(argv[4], argv[5], argv[6], prefix);
    else {
        fprintf(stderr, "%s: bad command or arguments\n", argv[0]);
        return 2;
    }
    TEST_DONE();
}
