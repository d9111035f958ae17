/*
 * fuzz_reply.c - libFuzzer harness for the server reply reader (reply.c).
 *
 * The input is a server's byte stream. It is delivered three ways (one read,
 * one byte per read, random reads), each complete reply consumed as the
 * proxy consumes it; every delivery must find the same replies and end the
 * same way (an error, or the same bytes still waiting): how the bytes were
 * split must never change where replies end. A complete value is complete
 * on its own and no shorter prefix is. Where hiredis is built in (Debian's
 * libhiredis-dev, a test-only oracle), every reply we find in RESP2 that
 * hiredis can read at all (it stops at 7 levels of nesting) must have the
 * length hiredis gives it.
 *
 * The value cursor (resp_cursor_next / _skip, how the proxy reads what
 * sentinels and servers answer it) walks any bytes without reading past
 * them; over a complete value it visits exactly that value's headers, and
 * skipping it lands on its end.
 */
#include "fuzz.h"
#include "reply.h"

#include <stdbool.h>
#include <string.h>
#ifdef CHASH_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif

typedef struct outcome {
    size_t count;    /* complete replies */
    uint64_t digest; /* of their lengths */
    size_t consumed; /* bytes they took */
    int last;        /* 0: waiting for more bytes, -1: not RESP */
} outcome;

static outcome deliver(const uint8_t *data, size_t size, enum fuzz_mode mode, uint64_t max_bulk) {
    fuzz_rng rng = fuzz_rng_from(data, size, (uint64_t)mode);
    resp_reply_parser p;
    resp_reply_init(&p);
    p.max_bulk_len = max_bulk;
    outcome o = {0, 0xcbf29ce484222325u, 0, 0};
    size_t arrived = 0;
    while (arrived < size) {
        arrived += fuzz_chunk(mode, &rng, size - arrived);
        for (;;) {
            size_t len = 0;
            int rc = resp_reply_next(&p, (const char *)data + o.consumed, arrived - o.consumed,
                                     &len);
            if (rc < 0) {
                o.last = -1;
                return o;
            }
            if (rc == 0) break;
            FUZZ_CHECK(len > 0 && len <= arrived - o.consumed);
            o.count++;
            o.digest = (o.digest ^ len) * 0x100000001b3u;
            o.consumed += len;
        }
    }
    return o;
}

#ifdef CHASH_HAVE_HIREDIS
/* hiredis 0.14 allocates an array's element pointers as soon as it reads
 * "*<count>", before any element arrives: counts above the input's size
 * (which cannot be complete anyway) skip the comparison. */
static bool has_huge_array(const uint8_t *data, size_t size) {
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '*') continue;
        uint64_t count = 0;
        for (size_t j = i + 1; j < size && data[j] >= '0' && data[j] <= '9'; j++) {
            count = count * 10 + (uint64_t)(data[j] - '0');
            if (count > size) return true;
        }
    }
    return false;
}

static bool is_resp2(const uint8_t *data, size_t size) {
    for (size_t i = 0; i < size; i++)
        if (strchr(",(_#!=~>%|", data[i]) && data[i] != '\0') return false;
    return true;
}

static void check_hiredis(const uint8_t *data, size_t size, size_t ours) {
    if (ours == 0 || has_huge_array(data, size) || !is_resp2(data, ours)) return;
    redisReader *r = redisReaderCreate();
    FUZZ_CHECK(r != NULL);
    void *reply = NULL;
    /* An error is hiredis's limit (depth) or strictness of ours it lacks. */
    if (redisReaderFeed(r, (const char *)data, ours) == REDIS_OK &&
        redisReaderGetReply(r, &reply) == REDIS_OK) {
        FUZZ_CHECK(reply != NULL);          /* the same bytes complete it */
        FUZZ_CHECK_EQ(r->len - r->pos, 0); /* and it takes them all */
        freeReplyObject(reply);
    }
    redisReaderFree(r);
}
#endif

/* Walks every header the cursor finds in data[0..size); on a complete value
 * of n bytes (n > 0) the walk ends at n, visiting 1 + the elements each
 * aggregate announces. */
static void check_cursor(const char *data, size_t size, size_t n) {
    resp_cursor c = {data, size, 0};
    resp_item it;
    uint64_t owed = 1, seen = 0;
    while (resp_cursor_next(&c, &it)) {
        FUZZ_CHECK(c.at <= size);
        FUZZ_CHECK(it.s >= data && it.s + it.len <= data + size);
        FUZZ_CHECK(it.count >= 0);
        seen++;
        if (n && c.at <= n) owed = owed - 1 + (uint64_t)it.count;
        if (n && c.at == n) break;
    }
    if (n) {
        FUZZ_CHECK_EQ(c.at, n);
        FUZZ_CHECK_EQ(owed, 0);
        FUZZ_CHECK(seen > 0);
        resp_cursor whole = {data, size, 0};
        FUZZ_CHECK(resp_cursor_skip(&whole));
        FUZZ_CHECK_EQ(whole.at, n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint64_t max_bulks[2] = {0, 16};
    for (int k = 0; k < 2; k++) {
        outcome whole = deliver(data, size, FUZZ_WHOLE, max_bulks[k]);
        for (int mode = FUZZ_BYTES; mode < FUZZ_MODE_COUNT; mode++) {
            outcome o = deliver(data, size, (enum fuzz_mode)mode, max_bulks[k]);
            FUZZ_CHECK_EQ(o.count, whole.count);
            FUZZ_CHECK(o.digest == whole.digest);
            FUZZ_CHECK_EQ(o.consumed, whole.consumed);
            FUZZ_CHECK_EQ(o.last, whole.last);
        }
    }
    const char *s = (const char *)data;
    size_t n = resp_value_len(s, size);
    FUZZ_CHECK(n <= size);
    if (n > 0) {
        FUZZ_CHECK_EQ(resp_value_len(s, n), n);
        FUZZ_CHECK_EQ(resp_value_len(s, n - 1), 0);
    }
    check_cursor(s, size, n);
#ifdef CHASH_HAVE_HIREDIS
    check_hiredis(data, size, n);
#endif
    return 0;
}
