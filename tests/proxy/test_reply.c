/*
 * test_reply.c - the server reply reader (reply.c): where replies end, for
 * every type of RESP2 and RESP3, at any nesting depth, fed in any pieces;
 * and what is not RESP.
 */
#include "../testlib.h"
#include "reply.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *text;
    size_t len;
} complete[] = {
    {"+OK\r\n", 5},
    {"-ERR x\r\n", 8},
    {":12\r\n", 5},
    {":-12\r\n", 6},
    {"$-1\r\n", 5},
    {"$3\r\nabc\r\n", 9},
    {"$0\r\n\r\n", 6},
    {"$4\r\na\r\nb\r\n", 10}, /* CR LF inside a bulk string is data */
    {"+a\nb\r\n", 6},         /* a lone LF inside a status line is part of it */
    {"*-1\r\n", 5},
    {"*0\r\n", 4},
    {"*2\r\n$1\r\na\r\n$-1\r\n", 16},
    {"*2\r\n*1\r\n:1\r\n*1\r\n*1\r\n+x\r\n", 24},
    /* RESP3 */
    {"_\r\n", 3},
    {"#t\r\n", 4},
    {",3.14\r\n", 7},
    {",-inf\r\n", 7},
    {"(3492890328409238509324850943850943825024385\r\n", 46},
    {"=15\r\ntxt:Some string\r\n", 22},
    {"!21\r\nSYNTAX invalid syntax\r\n", 28},
    {"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", 29},
    {"~2\r\n+a\r\n+b\r\n", 12},
    {">3\r\n+message\r\n+ch\r\n+hi\r\n", 24},
    {"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n", 47},
    {"%0\r\n", 4},
};

static const char *const not_resp[] = {
    "?x\r\n", "\r\n", ":12a\r\n", ":\r\n", "$-2\r\n", "$3\r\nabcX\r\n", "$x\r\n", "*-2\r\n",
    "_x\r\n", "#x\r\n", "#tt\r\n", "%-1\r\n", "~-1\r\n", "!-1\r\n", "*1\r\n?\r\n",
    ":99999999999999999999\r\n",
};

/* Feeds text one byte more each time, as a socket might; returns what the
 * last call said and the length found. */
static int feed_bytes(const char *text, size_t n, size_t *len) {
    resp_reply_parser p;
    resp_reply_init(&p);
    int rc = 0;
    for (size_t k = 1; k <= n; k++) {
        rc = resp_reply_next(&p, text, k, len);
        if (rc != 0) return k == n || rc < 0 ? rc : 2; /* 2: ended early */
    }
    return rc;
}

static void test_complete(void) {
    for (size_t i = 0; i < sizeof complete / sizeof complete[0]; i++) {
        const char *t = complete[i].text;
        size_t n = strlen(t), len = 0;
        ASSERT_UEQ(resp_value_len(t, n), complete[i].len);
        char extra[128];
        memcpy(extra, t, n);
        memcpy(extra + n, "+tail\r\n", 7);
        ASSERT_UEQ(resp_value_len(extra, n + 7), complete[i].len);
        for (size_t k = 0; k < n; k++) ASSERT_UEQ(resp_value_len(t, k), 0);
        ASSERT_EQ(feed_bytes(t, n, &len), 1);
        ASSERT_UEQ(len, complete[i].len);
    }
}

static void test_not_resp(void) {
    for (size_t i = 0; i < sizeof not_resp / sizeof not_resp[0]; i++) {
        resp_reply_parser p;
        resp_reply_init(&p);
        size_t len;
        ASSERT_EQ(resp_reply_next(&p, not_resp[i], strlen(not_resp[i]), &len), -1);
    }
    /* A bulk string over the limit is refused when its header arrives. */
    resp_reply_parser p;
    resp_reply_init(&p);
    p.max_bulk_len = 10;
    size_t len;
    ASSERT_EQ(resp_reply_next(&p, "$11\r\n", 5, &len), -1);
    ASSERT_EQ(resp_reply_next(&p, "$10\r\n", 5, &len), 0);
}

/* Nesting costs nothing: a million levels, as deep as memory holds text. */
static void test_depth(void) {
    size_t depth = 1000000, n = depth * 4 + 4;
    char *t = malloc(n + 1);
    ASSERT_TRUE(t != NULL);
    for (size_t i = 0; i < depth; i++) memcpy(t + 4 * i, "*1\r\n", 4);
    memcpy(t + 4 * depth, ":7\r\n", 4);
    ASSERT_UEQ(resp_value_len(t, n), n);
    ASSERT_UEQ(resp_value_len(t, n - 1), 0);
    free(t);
}

/* Replies back to back, each consumed as the proxy consumes it, in pieces
 * of every size: the same ends every time. */
static void test_stream(void) {
    char stream[2048];
    size_t n = 0, ends[64], count = 0;
    for (size_t i = 0; i < sizeof complete / sizeof complete[0]; i++) {
        size_t len = strlen(complete[i].text);
        memcpy(stream + n, complete[i].text, len);
        n += len;
        ends[count++] = n;
    }
    for (size_t piece = 1; piece <= 64; piece++) {
        resp_reply_parser p;
        resp_reply_init(&p);
        size_t start = 0, arrived = 0, found = 0;
        while (arrived < n) {
            arrived = arrived + piece < n ? arrived + piece : n;
            size_t len;
            int rc;
            while ((rc = resp_reply_next(&p, stream + start, arrived - start, &len)) == 1) {
                start += len;
                ASSERT_UEQ(start, ends[found]);
                found++;
            }
            ASSERT_EQ(rc, 0);
        }
        ASSERT_UEQ(found, count);
    }
}

int main(void) {
    test_complete();
    test_not_resp();
    test_depth();
    test_stream();
    TEST_DONE();
}
