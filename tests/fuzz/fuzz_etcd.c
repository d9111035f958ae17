/*
 * fuzz_etcd.c - libFuzzer harness for the etcd client's pure half
 * (proxy/etcdmsg.c): every etcd_parse_* function, the watch stream's
 * framer, base64 and prefix ends.
 *
 * A txn answer ('t') goes to both txn readers: the compare-and-swap's
 * (etcd_txn_cas) and the general one's (etcd_txn).
 *
 * The first byte names the parser the rest goes to (r range, h header,
 * t txn, g lease grant, k keep-alive, a auth, s status, w watch stream,
 * e error; any other byte picks one by its value), as in the seed corpus of
 * real etcd 3.4 answers (corpus/etcd, recorded by tools/etcd_corpus.py).
 * A watch stream is fed whole, a byte at a time and in random pieces: the
 * framer must cut it into the same messages each way, and each message
 * must be a balanced JSON object.
 *
 * Whatever the bytes, nothing crashes, leaks (the sanitizer's leak checker)
 * or reads outside them; a failed parse leaves its output zeroed; a
 * successful one holds NUL-terminated keys and values, non-negative
 * revisions, and survives a round trip: this file encodes what was read
 * the way etcd's gateway writes it, and parsing that gives the same
 * structs.
 */
#include "etcd.h"
#include "fuzz.h"

#include <jansson.h>
#include <string.h>

/* ---- encoding what was read, as the gateway writes it ---------------- */

static json_t *bytes_json(const char *p, size_t n) {
    char *text = malloc((n + 2) / 3 * 4 + 1);
    FUZZ_CHECK(text != NULL);
    size_t len = etcd_base64_encode(p, n, text);
    FUZZ_CHECK_EQ(len, (n + 2) / 3 * 4);
    json_t *s = json_stringn(text, len);
    free(text);
    FUZZ_CHECK(s != NULL);
    return s;
}

static json_t *int_json(int64_t v) {
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)v);
    return json_string(text);
}

static json_t *kv_json(const etcd_kv *kv) {
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "key", bytes_json(kv->key, kv->key_len),
                     "value", bytes_json(kv->value, kv->value_len), "create_revision",
                     int_json(kv->create_revision), "mod_revision", int_json(kv->mod_revision),
                     "version", int_json(kv->version), "lease", int_json(kv->lease));
}

static json_t *kvs_json(const etcd_kvs *r) {
    json_t *kvs = json_array();
    for (size_t i = 0; i < r->kv_count; i++) json_array_append_new(kvs, kv_json(&r->kvs[i]));
    return json_pack("{s:{s:o},s:o,s:o,s:b}", "header", "revision", int_json(r->revision), "kvs",
                     kvs, "count", int_json(r->count), "more", r->has_more);
}

/* Parses the encoding of j (taking it) with parse; the parse's result. */
static char *dump(json_t *j, size_t *len) {
    FUZZ_CHECK(j != NULL);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    FUZZ_CHECK(text != NULL);
    *len = strlen(text);
    return text;
}

/* ---- comparing -------------------------------------------------------- */

static void check_kv(const etcd_kv *kv) {
    FUZZ_CHECK(kv->key != NULL && kv->value != NULL);
    FUZZ_CHECK(kv->key[kv->key_len] == '\0' && kv->value[kv->value_len] == '\0');
    FUZZ_CHECK(kv->create_revision >= 0 && kv->mod_revision >= 0 && kv->version >= 0 &&
               kv->lease >= 0);
}

static void same_kv(const etcd_kv *a, const etcd_kv *b) {
    FUZZ_CHECK_EQ(a->key_len, b->key_len);
    FUZZ_CHECK(memcmp(a->key, b->key, a->key_len) == 0);
    FUZZ_CHECK_EQ(a->value_len, b->value_len);
    FUZZ_CHECK(memcmp(a->value, b->value, a->value_len) == 0);
    FUZZ_CHECK_EQ(a->create_revision, b->create_revision);
    FUZZ_CHECK_EQ(a->mod_revision, b->mod_revision);
    FUZZ_CHECK_EQ(a->version, b->version);
    FUZZ_CHECK_EQ(a->lease, b->lease);
}

static void check_kvs(const etcd_kvs *r) {
    FUZZ_CHECK(r->revision >= 0 && r->count >= 0);
    FUZZ_CHECK((r->kv_count == 0) == (r->kvs == NULL));
    for (size_t i = 0; i < r->kv_count; i++) check_kv(&r->kvs[i]);
}

static void same_kvs(const etcd_kvs *a, const etcd_kvs *b) {
    FUZZ_CHECK_EQ(a->revision, b->revision);
    FUZZ_CHECK_EQ(a->count, b->count);
    FUZZ_CHECK_EQ(a->has_more, b->has_more);
    FUZZ_CHECK_EQ(a->kv_count, b->kv_count);
    for (size_t i = 0; i < a->kv_count; i++) same_kv(&a->kvs[i], &b->kvs[i]);
}

static bool is_zero(const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i]) return false;
    return true;
}

/* ---- one parser each -------------------------------------------------- */

static void fuzz_range(const char *body, size_t len) {
    etcd_kvs r, again;
    const char *why = NULL;
    int rc = etcd_parse_range(body, len, &r, &why);
    if (rc != ETCD_OK) {
        FUZZ_CHECK(is_zero(&r, sizeof r));
        FUZZ_CHECK(rc != ETCD_EPROTO || why != NULL);
        return;
    }
    check_kvs(&r);
    size_t n;
    char *text = dump(kvs_json(&r), &n);
    FUZZ_CHECK_EQ(etcd_parse_range(text, n, &again, NULL), ETCD_OK);
    same_kvs(&r, &again);
    free(text);
    etcd_kvs_free(&again);
    etcd_kvs_free(&r);
    FUZZ_CHECK(is_zero(&r, sizeof r));
}

static void fuzz_header(const char *body, size_t len) {
    int64_t rev = -1, deleted = -1, rev2 = -1, deleted2 = -1;
    if (etcd_parse_header(body, len, &rev, &deleted, NULL) != ETCD_OK) {
        FUZZ_CHECK(rev == -1 && deleted == -1); /* untouched */
        return;
    }
    FUZZ_CHECK(rev >= 0 && deleted >= 0);
    size_t n;
    char *text = dump(json_pack("{s:{s:o},s:o}", "header", "revision", int_json(rev), "deleted",
                                int_json(deleted)),
                      &n);
    FUZZ_CHECK_EQ(etcd_parse_header(text, n, &rev2, &deleted2, NULL), ETCD_OK);
    FUZZ_CHECK_EQ(rev, rev2);
    FUZZ_CHECK_EQ(deleted, deleted2);
    free(text);
}

/* etcd_txn's reader: the outcome and revision only, untouched on refusal. */
static void fuzz_txn_general(const char *body, size_t len) {
    bool is_ok = true, is_ok2 = false;
    int64_t rev = -1, rev2 = -1;
    if (etcd_parse_txn(body, len, &is_ok, &rev, NULL) != ETCD_OK) {
        FUZZ_CHECK(is_ok && rev == -1);
        return;
    }
    FUZZ_CHECK(rev >= 0);
    size_t n;
    char *text = dump(json_pack("{s:{s:o},s:b,s:[{s:{}}]}", "header", "revision", int_json(rev),
                                "succeeded", is_ok, "responses", "response_put"),
                      &n);
    FUZZ_CHECK_EQ(etcd_parse_txn(text, n, &is_ok2, &rev2, NULL), ETCD_OK);
    FUZZ_CHECK_EQ(is_ok, is_ok2);
    FUZZ_CHECK_EQ(rev, rev2);
    free(text);
}

static void fuzz_txn(const char *body, size_t len) {
    etcd_cas_result r, again;
    fuzz_txn_general(body, len);
    if (etcd_parse_txn_cas(body, len, &r, NULL) != ETCD_OK) {
        FUZZ_CHECK(is_zero(&r, sizeof r));
        return;
    }
    FUZZ_CHECK(r.revision >= 0);
    check_kvs(&r.current);
    FUZZ_CHECK(!r.is_swapped || r.current.kv_count == 0);
    json_t *j = json_pack("{s:{s:o},s:b,s:[]}", "header", "revision", int_json(r.revision),
                          "succeeded", r.is_swapped, "responses");
    FUZZ_CHECK(j != NULL);
    if (!r.is_swapped)
        json_array_append_new(json_object_get(j, "responses"),
                              json_pack("{s:o}", "response_range", kvs_json(&r.current)));
    size_t n;
    char *text = dump(j, &n);
    FUZZ_CHECK_EQ(etcd_parse_txn_cas(text, n, &again, NULL), ETCD_OK);
    FUZZ_CHECK_EQ(r.is_swapped, again.is_swapped);
    FUZZ_CHECK_EQ(r.revision, again.revision);
    same_kvs(&r.current, &again.current);
    free(text);
    etcd_cas_result_free(&again);
    etcd_cas_result_free(&r);
}

static void fuzz_grant(const char *body, size_t len) {
    int64_t id = -1, ttl = -1, id2, ttl2;
    if (etcd_parse_lease_grant(body, len, &id, &ttl, NULL) != ETCD_OK) {
        FUZZ_CHECK(id == -1 && ttl == -1);
        return;
    }
    FUZZ_CHECK(id > 0 && ttl >= 0);
    size_t n;
    char *text = dump(json_pack("{s:o,s:o}", "ID", int_json(id), "TTL", int_json(ttl)), &n);
    FUZZ_CHECK_EQ(etcd_parse_lease_grant(text, n, &id2, &ttl2, NULL), ETCD_OK);
    FUZZ_CHECK_EQ(id, id2);
    FUZZ_CHECK_EQ(ttl, ttl2);
    free(text);
}

static void fuzz_keepalive(const char *body, size_t len) {
    int64_t id = -1, ttl = -1, id2, ttl2;
    int rc = etcd_parse_lease_keepalive(body, len, &id, &ttl, NULL);
    if (rc != ETCD_OK) {
        FUZZ_CHECK(id == -1 && ttl == -1);
        return;
    }
    FUZZ_CHECK(id >= 0 && ttl >= 0);
    size_t n;
    char *text = dump(json_pack("{s:{s:o,s:o}}", "result", "ID", int_json(id), "TTL",
                                int_json(ttl)),
                      &n);
    FUZZ_CHECK_EQ(etcd_parse_lease_keepalive(text, n, &id2, &ttl2, NULL), ETCD_OK);
    FUZZ_CHECK_EQ(id, id2);
    FUZZ_CHECK_EQ(ttl, ttl2);
    free(text);
}

static void fuzz_auth(const char *body, size_t len) {
    char *token = (char *)1, *again = NULL;
    if (etcd_parse_auth(body, len, &token, NULL) != ETCD_OK) {
        FUZZ_CHECK(token == NULL);
        return;
    }
    /* It goes into an HTTP header: no control bytes, no spaces. */
    size_t n = strlen(token);
    FUZZ_CHECK(n > 0);
    for (size_t i = 0; i < n; i++) FUZZ_CHECK(token[i] > 0x20 && token[i] < 0x7f);
    size_t text_len;
    char *text = dump(json_pack("{s:s}", "token", token), &text_len);
    FUZZ_CHECK_EQ(etcd_parse_auth(text, text_len, &again, NULL), ETCD_OK);
    FUZZ_CHECK(strcmp(token, again) == 0);
    free(text);
    free(again);
    free(token);
}

static void fuzz_status(const char *body, size_t len) {
    uint64_t member = 1, leader = 1, member2, leader2;
    if (etcd_parse_status(body, len, &member, &leader, NULL) != ETCD_OK) {
        FUZZ_CHECK(member == 1 && leader == 1);
        return;
    }
    char m[24], l[24];
    snprintf(m, sizeof m, "%llu", (unsigned long long)member);
    snprintf(l, sizeof l, "%llu", (unsigned long long)leader);
    size_t n;
    char *text = dump(json_pack("{s:{s:s},s:s}", "header", "member_id", m, "leader", l), &n);
    FUZZ_CHECK_EQ(etcd_parse_status(text, n, &member2, &leader2, NULL), ETCD_OK);
    FUZZ_CHECK_EQ(member, member2);
    FUZZ_CHECK_EQ(leader, leader2);
    free(text);
}

static void fuzz_error(const char *body, size_t len) {
    char msg[64], msg2[64];
    int code = -1, code2;
    memset(msg, 'x', sizeof msg);
    if (etcd_parse_error(body, len, &code, msg, sizeof msg) != ETCD_OK) {
        FUZZ_CHECK(msg[0] == '\0' && code == 0);
        return;
    }
    FUZZ_CHECK(memchr(msg, '\0', sizeof msg) != NULL);
    FUZZ_CHECK(code >= 0 && code <= 0xffff);
    /* A cut message may end inside a UTF-8 sequence: only whole ones go
     * round. Both spellings of etcd's reports must give the same. */
    if (strlen(msg) + 1 >= sizeof msg) return;
    for (int streamed = 0; streamed < 2; streamed++) {
        json_t *j = streamed ? json_pack("{s:{s:i,s:s}}", "error", "grpc_code", code, "message",
                                         msg)
                             : json_pack("{s:s,s:i,s:s}", "error", msg, "code", code,
                                         "message", msg);
        if (!j) return; /* not UTF-8 after all (a NUL cut it short) */
        size_t n;
        char *text = dump(j, &n);
        FUZZ_CHECK_EQ(etcd_parse_error(text, n, &code2, msg2, sizeof msg2), ETCD_OK);
        FUZZ_CHECK_EQ(code, code2);
        FUZZ_CHECK(strcmp(msg, msg2) == 0);
        free(text);
    }
}

static json_t *batch_json(const etcd_watch_batch *b) {
    json_t *events = json_array();
    for (size_t i = 0; i < b->event_count; i++)
        json_array_append_new(events,
                              json_pack("{s:s,s:o}", "type",
                                        b->events[i].type == ETCD_EVENT_PUT ? "PUT" : "DELETE",
                                        "kv", kv_json(&b->events[i].kv)));
    json_t *r = json_pack("{s:{s:o},s:o,s:b,s:b,s:o,s:o}", "header", "revision",
                          int_json(b->revision), "watch_id", int_json(b->watch_id), "created",
                          b->is_created, "canceled", b->is_canceled, "compact_revision",
                          int_json(b->compact_revision), "events", events);
    FUZZ_CHECK(r != NULL);
    if (b->cancel_reason)
        json_object_set_new(r, "cancel_reason", json_string(b->cancel_reason));
    return json_pack("{s:o}", "result", r);
}

static void fuzz_watch_message(const char *msg, size_t len) {
    etcd_watch_batch b, again;
    int rc = etcd_parse_watch(msg, len, &b, NULL);
    if (rc != ETCD_OK) {
        FUZZ_CHECK(is_zero(&b, sizeof b));
        if (rc == ETCD_EREFUSED) fuzz_error(msg, len);
        return;
    }
    FUZZ_CHECK(b.revision >= 0 && b.compact_revision >= 0);
    FUZZ_CHECK((b.event_count == 0) == (b.events == NULL));
    for (size_t i = 0; i < b.event_count; i++) {
        FUZZ_CHECK(b.events[i].type == ETCD_EVENT_PUT || b.events[i].type == ETCD_EVENT_DELETE);
        check_kv(&b.events[i].kv);
    }
    size_t n;
    char *text = dump(batch_json(&b), &n);
    FUZZ_CHECK_EQ(etcd_parse_watch(text, n, &again, NULL), ETCD_OK);
    FUZZ_CHECK_EQ(b.revision, again.revision);
    FUZZ_CHECK_EQ(b.watch_id, again.watch_id);
    FUZZ_CHECK_EQ(b.is_created, again.is_created);
    FUZZ_CHECK_EQ(b.is_canceled, again.is_canceled);
    FUZZ_CHECK_EQ(b.compact_revision, again.compact_revision);
    FUZZ_CHECK((b.cancel_reason == NULL) == (again.cancel_reason == NULL));
    FUZZ_CHECK(!b.cancel_reason || strcmp(b.cancel_reason, again.cancel_reason) == 0);
    FUZZ_CHECK_EQ(b.event_count, again.event_count);
    for (size_t i = 0; i < b.event_count; i++) {
        FUZZ_CHECK_EQ(b.events[i].type, again.events[i].type);
        same_kv(&b.events[i].kv, &again.events[i].kv);
    }
    free(text);
    etcd_watch_batch_free(&again);
    etcd_watch_batch_free(&b);
    FUZZ_CHECK(is_zero(&b, sizeof b));
}

/* The framer's cuts of the stream delivered in `mode`: frames as
 * (start, length) pairs into out (at most cap), their count; -1 when the
 * framer refused the stream at some point. */
static long frames(const char *data, size_t size, enum fuzz_mode mode, size_t *out, size_t cap) {
    fuzz_rng rng = fuzz_rng_from((const uint8_t *)data, size, mode);
    etcd_framer f = {0};
    size_t consumed = 0, arrived = 0, count = 0;
    while (consumed < size) {
        if (arrived < size) arrived += fuzz_chunk(mode, &rng, size - arrived);
        /* The framer sees only what arrived and was not consumed, as the
         * watch's buffer holds it. */
        size_t start, len;
        int rc = etcd_framer_next(&f, data + consumed, arrived - consumed, &start, &len);
        if (rc < 0) return -1;
        if (rc == 0) {
            if (arrived == size) break;
            continue;
        }
        FUZZ_CHECK(len >= 2 && start + len <= arrived - consumed);
        FUZZ_CHECK(data[consumed + start] == '{');
        FUZZ_CHECK(data[consumed + start + len - 1] == '}' ||
                   data[consumed + start + len - 1] == ']');
        if (count < cap) {
            out[2 * count] = consumed + start;
            out[2 * count + 1] = len;
        }
        count++;
        consumed += start + len;
    }
    return (long)count;
}

#define MAX_FRAMES 256

static void fuzz_watch_stream(const char *data, size_t size) {
    static size_t cuts[FUZZ_MODE_COUNT][2 * MAX_FRAMES];
    long counts[FUZZ_MODE_COUNT];
    for (int mode = 0; mode < FUZZ_MODE_COUNT; mode++)
        counts[mode] = frames(data, size, (enum fuzz_mode)mode, cuts[mode], MAX_FRAMES);
    for (int mode = 1; mode < FUZZ_MODE_COUNT; mode++) {
        FUZZ_CHECK_EQ(counts[mode], counts[0]);
        size_t n = counts[0] > MAX_FRAMES ? MAX_FRAMES : (size_t)(counts[0] < 0 ? 0 : counts[0]);
        FUZZ_CHECK(memcmp(cuts[mode], cuts[0], 2 * n * sizeof(size_t)) == 0);
    }
    size_t n = counts[0] > MAX_FRAMES ? MAX_FRAMES : (size_t)(counts[0] < 0 ? 0 : counts[0]);
    for (size_t i = 0; i < n; i++) fuzz_watch_message(data + cuts[0][2 * i], cuts[0][2 * i + 1]);
    /* The whole input as one message too, framed or not. */
    fuzz_watch_message(data, size);
}

/* ---- helpers on raw bytes --------------------------------------------- */

static void fuzz_base64(const char *data, size_t size) {
    char *text = malloc((size + 2) / 3 * 4 + 1), *back = malloc(size + 1);
    FUZZ_CHECK(text != NULL && back != NULL);
    size_t len = etcd_base64_encode(data, size, text);
    FUZZ_CHECK(text[len] == '\0');
    FUZZ_CHECK_EQ(etcd_base64_decode(text, len, back), size);
    FUZZ_CHECK(memcmp(back, data, size) == 0);
    /* The input as base64: accepted only in its one canonical spelling. */
    char *raw = malloc(size / 4 * 3 + 1);
    FUZZ_CHECK(raw != NULL);
    long long n = etcd_base64_decode(data, size, raw);
    if (n >= 0) {
        char *again = malloc((size_t)n / 3 * 4 + 8);
        FUZZ_CHECK(again != NULL);
        FUZZ_CHECK_EQ(etcd_base64_encode(raw, (size_t)n, again), size);
        FUZZ_CHECK(memcmp(again, data, size) == 0);
        free(again);
    }
    free(raw);
    free(text);
    free(back);
}

static void fuzz_prefix_end(const char *data, size_t size) {
    char *end = malloc(size + 1);
    FUZZ_CHECK(end != NULL);
    size_t n = etcd_prefix_end(data, size, end);
    size_t keep = size;
    while (keep > 0 && (unsigned char)data[keep - 1] == 0xff) keep--;
    if (keep == 0) {
        FUZZ_CHECK(n == 1 && end[0] == '\0');
    } else {
        /* The shortest key above every key with the prefix. */
        FUZZ_CHECK_EQ(n, keep);
        FUZZ_CHECK(memcmp(end, data, n - 1) == 0);
        FUZZ_CHECK_EQ((unsigned char)end[n - 1], (unsigned char)data[n - 1] + 1);
    }
    free(end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    static const char kinds[] = "rhtgkaswe";
    const char *kind = memchr(kinds, data[0], sizeof kinds - 1);
    size_t which = kind ? (size_t)(kind - kinds) : data[0] % (sizeof kinds - 1);
    /* An exact-size copy of the body, so a read past its end is seen. */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    FUZZ_CHECK(body != NULL);
    memcpy(body, data + 1, len);
    switch (which) {
    case 0: fuzz_range(body, len); break;
    case 1: fuzz_header(body, len); break;
    case 2: fuzz_txn(body, len); break;
    case 3: fuzz_grant(body, len); break;
    case 4: fuzz_keepalive(body, len); break;
    case 5: fuzz_auth(body, len); break;
    case 6: fuzz_status(body, len); break;
    case 7: fuzz_watch_stream(body, len); break;
    default: fuzz_error(body, len); break;
    }
    fuzz_base64(body, len);
    fuzz_prefix_end(body, len);
    free(body);
    return 0;
}
