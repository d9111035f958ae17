/*
 * test_etcdmsg.c - the etcd client's pure half (proxy/etcdmsg.c) on exact
 * cases: base64 against RFC 4648's vectors and its non-canonical spellings,
 * prefix ends, the watch stream's framer, and each parser on answers
 * recorded from etcd 3.4.23 (as in tests/fuzz/corpus/etcd) and on the
 * malformed variants it must refuse.
 */
#include "../testlib.h"
#include "etcd.h"

#define LIT(s) s, sizeof(s) - 1

static void test_base64(void) {
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char text[16], back[16];
        size_t n = etcd_base64_encode(plain[i], strlen(plain[i]), text);
        ASSERT_UEQ(n, strlen(coded[i]));
        ASSERT_TRUE(strcmp(text, coded[i]) == 0);
        ASSERT_EQ(etcd_base64_decode(coded[i], n, back), (long long)strlen(plain[i]));
        ASSERT_TRUE(memcmp(back, plain[i], strlen(plain[i])) == 0);
    }
    char all[256], text[400], back[300];
    for (int i = 0; i < 256; i++) all[i] = (char)i;
    size_t n = etcd_base64_encode(all, 256, text);
    ASSERT_EQ(etcd_base64_decode(text, n, back), 256);
    ASSERT_TRUE(memcmp(all, back, 256) == 0);
    /* Refused: bad length, stray bits under padding, padding inside,
     * whitespace, the URL alphabet, too much padding. */
    static const char *const bad[] = {"Zg=",  "Zh==", "Zm9=", "Zg==Zg==", "Zm9v\n",
                                      "Zm-_", "====", "Z===", "=Zm9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ(etcd_base64_decode(bad[i], strlen(bad[i]), back), -1);
}

static void test_prefix_end(void) {
    char out[8];
    ASSERT_UEQ(etcd_prefix_end(LIT("abc"), out), 3);
    ASSERT_TRUE(memcmp(out, "abd", 3) == 0);
    ASSERT_UEQ(etcd_prefix_end(LIT("a\xff\xff"), out), 1);
    ASSERT_TRUE(out[0] == 'b');
    ASSERT_UEQ(etcd_prefix_end(LIT("a\xfe"), out), 2);
    ASSERT_TRUE(memcmp(out, "a\xff", 2) == 0);
    ASSERT_UEQ(etcd_prefix_end(LIT("\xff\xff"), out), 1);
    ASSERT_TRUE(out[0] == '\0');
    ASSERT_UEQ(etcd_prefix_end("", 0, out), 1);
    ASSERT_TRUE(out[0] == '\0');
}

static void test_framer(void) {
    /* Braces and quotes inside strings do not count; whitespace between
     * messages is skipped. */
    static const char stream[] = " {\"a\":\"}\\\"{\",\"b\":[1,{}]}\n\n{\"c\":\"\\\\\"}\n{\"d";
    static const size_t want_start[] = {1, 26}, want_len[] = {23, 10};
    for (int mode = 0; mode < 2; mode++) {
        etcd_framer f = {0};
        size_t consumed = 0, arrived = 0, got = 0;
        while (arrived < sizeof stream - 1) {
            arrived = mode == 0 ? sizeof stream - 1 : arrived + 1;
            size_t start, len;
            int rc;
            while ((rc = etcd_framer_next(&f, stream + consumed, arrived - consumed, &start,
                                          &len)) == 1) {
                ASSERT_TRUE(got < 2);
                ASSERT_UEQ(consumed + start, want_start[got]);
                ASSERT_UEQ(len, want_len[got]);
                consumed += start + len;
                got++;
            }
            ASSERT_EQ(rc, 0);
        }
        ASSERT_UEQ(got, 2); /* the third is incomplete: more bytes needed */
    }
    etcd_framer f = {0};
    size_t start, len;
    ASSERT_EQ(etcd_framer_next(&f, LIT("  [1]"), &start, &len), -1);
    f = (etcd_framer){0};
    ASSERT_EQ(etcd_framer_next(&f, LIT("{}x{}"), &start, &len), 1);
    f = (etcd_framer){0};
    ASSERT_EQ(etcd_framer_next(&f, LIT("x{}"), &start, &len), -1);
}

/* Answers recorded from etcd 3.4.23. */
static const char range_body[] =
    "{\"header\":{\"cluster_id\":\"3493112011347116934\",\"member_id\":\"7762250927385124819\","
    "\"revision\":\"4\",\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"L2MvYQ==\",\"create_revision\":"
    "\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"b25l\"},{\"key\":\"L2MvZW1wdHk=\","
    "\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\"}],\"count\":\"2\"}";
static const char txn_failed[] =
    "{\"header\":{\"cluster_id\":\"3493112011347116934\",\"member_id\":\"7762250927385124819\","
    "\"revision\":\"6\",\"raft_term\":\"2\"},\"responses\":[{\"response_range\":{\"header\":"
    "{\"revision\":\"6\"},\"kvs\":[{\"key\":\"L2MvYQ==\",\"create_revision\":\"2\",\"mod_revision\":"
    "\"2\",\"version\":\"1\",\"value\":\"b25l\"}],\"count\":\"1\"}}]}";
static const char txn_swapped[] =
    "{\"header\":{\"cluster_id\":\"3493112011347116934\",\"member_id\":\"7762250927385124819\","
    "\"revision\":\"7\",\"raft_term\":\"2\"},\"succeeded\":true,\"responses\":[{\"response_put\":"
    "{\"header\":{\"revision\":\"7\"}}}]}";
static const char watch_events[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"3493112011347116934\",\"member_id\":"
    "\"7762250927385124819\",\"revision\":\"9\",\"raft_term\":\"2\"},\"events\":[{\"kv\":{\"key\":"
    "\"L2MvbGVhc2Vk\",\"create_revision\":\"5\",\"mod_revision\":\"5\",\"version\":\"1\",\"value\":"
    "\"eA==\",\"lease\":\"2293355047982789390\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":"
    "\"L2MvbGVhc2Vk\",\"mod_revision\":\"6\"}}]}}";
static const char watch_compacted[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"3493112011347116934\",\"member_id\":"
    "\"7762250927385124819\",\"raft_term\":\"2\"},\"canceled\":true,\"compact_revision\":\"4\"}}";
static const char watch_denied[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"3493112011347116934\",\"member_id\":"
    "\"7762250927385124819\",\"revision\":\"9\",\"raft_term\":\"2\"},\"watch_id\":\"-1\","
    "\"created\":true,\"canceled\":true,\"cancel_reason\":\"rpc error: code = PermissionDenied "
    "desc = etcdserver: permission denied\"}}";
static const char stream_error[] =
    "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\","
    "\"http_status\":\"Service Unavailable\"}}";
static const char unary_error[] =
    "{\"error\":\"etcdserver: invalid auth token\",\"message\":\"etcdserver: invalid auth "
    "token\",\"code\":16}";

static void test_parsers(void) {
    etcd_kvs r;
    ASSERT_OK(etcd_parse_range(LIT(range_body), &r, NULL));
    ASSERT_EQ(r.revision, 4);
    ASSERT_EQ(r.count, 2);
    ASSERT_UEQ(r.kv_count, 2);
    ASSERT_TRUE(strcmp(r.kvs[0].key, "/c/a") == 0 && strcmp(r.kvs[0].value, "one") == 0);
    ASSERT_EQ(r.kvs[0].mod_revision, 2);
    ASSERT_TRUE(strcmp(r.kvs[1].key, "/c/empty") == 0);
    ASSERT_UEQ(r.kvs[1].value_len, 0); /* an empty value: "value" left out */
    ASSERT_TRUE(r.kvs[1].value != NULL && r.kvs[1].value[0] == '\0');
    etcd_kvs_free(&r);
    etcd_kvs_free(NULL);

    etcd_cas_result c;
    ASSERT_OK(etcd_parse_txn_cas(LIT(txn_failed), &c, NULL));
    ASSERT_TRUE(!c.is_swapped); /* "succeeded" left out when false */
    ASSERT_EQ(c.revision, 6);
    ASSERT_UEQ(c.current.kv_count, 1);
    ASSERT_TRUE(strcmp(c.current.kvs[0].value, "one") == 0);
    etcd_cas_result_free(&c);
    ASSERT_OK(etcd_parse_txn_cas(LIT(txn_swapped), &c, NULL));
    ASSERT_TRUE(c.is_swapped);
    ASSERT_EQ(c.revision, 7);
    etcd_cas_result_free(&c);

    etcd_watch_batch b;
    ASSERT_OK(etcd_parse_watch(LIT(watch_events), &b, NULL));
    ASSERT_EQ(b.revision, 9);
    ASSERT_UEQ(b.event_count, 2);
    ASSERT_EQ(b.events[0].type, ETCD_EVENT_PUT); /* "type" left out for PUT */
    ASSERT_EQ(b.events[0].kv.lease, 2293355047982789390LL);
    ASSERT_EQ(b.events[1].type, ETCD_EVENT_DELETE);
    ASSERT_EQ(b.events[1].kv.mod_revision, 6);
    ASSERT_EQ(b.events[1].kv.version, 0);
    etcd_watch_batch_free(&b);
    ASSERT_OK(etcd_parse_watch(LIT(watch_compacted), &b, NULL));
    ASSERT_TRUE(b.is_canceled && b.compact_revision == 4 && b.revision == 0);
    etcd_watch_batch_free(&b);
    ASSERT_OK(etcd_parse_watch(LIT(watch_denied), &b, NULL));
    ASSERT_TRUE(b.is_created && b.is_canceled && b.watch_id == -1);
    ASSERT_TRUE(strstr(b.cancel_reason, "PermissionDenied") != NULL);
    etcd_watch_batch_free(&b);
    ASSERT_EQ(etcd_parse_watch(LIT(stream_error), &b, NULL), ETCD_EREFUSED);

    int code;
    char msg[16];
    ASSERT_OK(etcd_parse_error(LIT(stream_error), &code, msg, sizeof msg));
    ASSERT_EQ(code, 14);
    ASSERT_TRUE(strcmp(msg, "etcdserver: no ") == 0); /* cut to the buffer */
    ASSERT_OK(etcd_parse_error(LIT(unary_error), &code, msg, sizeof msg));
    ASSERT_EQ(code, 16);
    ASSERT_EQ(etcd_parse_error(LIT(range_body), &code, msg, sizeof msg), ETCD_EPROTO);
    ASSERT_TRUE(msg[0] == '\0');

    /* Member ids are unsigned: above INT64_MAX too. */
    uint64_t member, leader;
    ASSERT_OK(etcd_parse_status(LIT("{\"header\":{\"member_id\":\"11935128386744211282\"},"
                                    "\"leader\":\"11935128386744211282\"}"),
                                &member, &leader, NULL));
    ASSERT_UEQ(member, 11935128386744211282ull);
    ASSERT_UEQ(leader, member);
    ASSERT_EQ(etcd_parse_status(LIT("{\"header\":{\"member_id\":\"18446744073709551616\"}}"),
                                &member, &leader, NULL),
              ETCD_EPROTO);

    int64_t id, ttl;
    ASSERT_OK(etcd_parse_lease_keepalive(
        LIT("{\"result\":{\"header\":{\"revision\":\"5\"},\"ID\":\"12345\"}}\n"), &id, &ttl,
        NULL));
    ASSERT_TRUE(id == 12345 && ttl == 0); /* TTL left out: the lease is gone */
    ASSERT_EQ(etcd_parse_lease_keepalive(LIT(stream_error), &id, &ttl, NULL), ETCD_EREFUSED);
    ASSERT_OK(etcd_parse_lease_grant(LIT("{\"ID\":\"7\",\"TTL\":\"30\"}"), &id, &ttl, NULL));
    ASSERT_TRUE(id == 7 && ttl == 30);

    char *token = NULL;
    ASSERT_OK(etcd_parse_auth(LIT("{\"token\":\"tgYBCNzzPbKyrrfS.21\"}"), &token, NULL));
    ASSERT_TRUE(strcmp(token, "tgYBCNzzPbKyrrfS.21") == 0);
    free(token);
    /* A token that would split the Authorization header. */
    ASSERT_EQ(etcd_parse_auth(LIT("{\"token\":\"a\\r\\nX-Evil: 1\"}"), &token, NULL),
              ETCD_EPROTO);
    ASSERT_TRUE(token == NULL);

    /* Refused: numbers etcd never sends, bytes that are not base64, the
     * wrong shapes. */
    static const char *const bad_ranges[] = {
        "{\"header\":{\"revision\":\"-1\"}}",
        "{\"header\":{\"revision\":\"1e3\"}}",
        "{\"header\":{\"revision\":\"9223372036854775808\"}}",
        "{\"header\":{\"revision\":1.5}}",
        "{\"header\":[]}",
        "{\"kvs\":{}}",
        "{\"kvs\":[{\"key\":\"L2M\"}]}",
        "{\"kvs\":[{\"key\":1}]}",
        "{\"kvs\":[{\"key\":\"YQ==\",\"version\":\"-2\"}]}",
        "{\"more\":\"yes\"}",
        "{\"kvs\":[],\"kvs\":[]}",
        "[]",
        "{",
        "{} {}",
    };
    for (size_t i = 0; i < sizeof bad_ranges / sizeof bad_ranges[0]; i++) {
        const char *why = NULL;
        ASSERT_EQ(etcd_parse_range(bad_ranges[i], strlen(bad_ranges[i]), &r, &why),
                  ETCD_EPROTO);
        ASSERT_TRUE(why != NULL && r.kvs == NULL && r.revision == 0);
    }
    ASSERT_OK(etcd_parse_range(LIT("{\"header\":{\"revision\":9223372036854775807}}"), &r, NULL));
    ASSERT_EQ(r.revision, INT64_MAX);
    ASSERT_EQ(etcd_parse_watch(LIT("{\"result\":{\"events\":[{\"type\":\"MOVE\",\"kv\":{}}]}}"),
                               &b, NULL),
              ETCD_EPROTO);
    ASSERT_EQ(etcd_parse_txn_cas(LIT("{\"header\":{\"revision\":\"6\"}}"), &c, NULL),
              ETCD_EPROTO); /* failed, and the key's read is missing */
}

/* etcd_txn's reader: only the outcome and the revision. */
static void test_parse_txn(void) {
    bool is_ok = false;
    int64_t rev = 0;
    ASSERT_OK(etcd_parse_txn(LIT(txn_swapped), &is_ok, &rev, NULL));
    ASSERT_TRUE(is_ok);
    ASSERT_EQ(rev, 7);
    ASSERT_OK(etcd_parse_txn(LIT(txn_failed), &is_ok, &rev, NULL));
    ASSERT_TRUE(!is_ok);
    ASSERT_EQ(rev, 6);
    /* A failed txn with an empty failure branch: no responses at all. */
    is_ok = true;
    ASSERT_OK(etcd_parse_txn(LIT("{\"header\":{\"revision\":\"12\"}}"), &is_ok, &rev, NULL));
    ASSERT_TRUE(!is_ok);
    ASSERT_EQ(rev, 12);
    ASSERT_OK(etcd_parse_txn(LIT(txn_swapped), NULL, NULL, NULL));
    static const char *const bad[] = {
        "[]", "{\"succeeded\":\"yes\"}", "{\"header\":{\"revision\":\"-1\"}}",
        "{\"responses\":{}}", "{\"responses\":[1]}", "{\"header\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        is_ok = true;
        rev = -5;
        ASSERT_EQ(etcd_parse_txn(bad[i], strlen(bad[i]), &is_ok, &rev, &why), ETCD_EPROTO);
        ASSERT_TRUE(why != NULL && is_ok && rev == -5); /* untouched */
    }
}

int main(void) {
    test_base64();
    test_prefix_end();
    test_framer();
    test_parsers();
    test_parse_txn();
    ASSERT_TRUE(strcmp(etcd_strerror(ETCD_EUNAVAILABLE), "no etcd endpoint answered") == 0);
    ASSERT_TRUE(strcmp(etcd_strerror(12345), "unknown error") == 0);
    TEST_DONE();
}
