/*
 * test_memcache.c - the memcached ASCII parsers: every command, pipelines fed
 * whole, byte by byte and in random chunks, line errors that keep the stream
 * in sync, framing errors that are sticky, oversized values skipped, and the
 * server-reply parser over the same chunkings.
 */
#include "../testlib.h"
#include "memcache.h"

typedef struct expect {
    mc_cmd cmd;
    size_t keys;
    size_t data_len;
    bool noreply;
    const char *error;
} expect;

static const char pipeline[] =
    "get a\r\n"
    "gets a b  c\r\n"
    "gat 100 k1 k2\r\n"
    "gats -1 k\r\n"
    "set k 1 0 5\r\nhello\r\n"
    "add k 0 0 0 noreply\r\n\r\n"
    "replace k 4294967295 10 3\r\nabc\r\n"
    "append k 0 0 2\r\n\r\n\r\n"
    "prepend k 0 0 1\r\nx\r\n"
    "cas k 0 0 1 99\r\ny\r\n"
    "delete k\r\n"
    "delete k 0 noreply\n"
    "incr n 5\r\n"
    "decr n 18446744073709551615 noreply\r\n"
    "touch k 10\r\n"
    "version\r\n"
    "get \r\n"
    "bogus cmd\r\n"
    "stats\r\n"
    "\r\n"
    "incr n x\r\n"
    "set k 0 0 2 extra\r\nzz\r\n"
    "set k abc 0 2\r\nzz\r\n"
    "delete k 5\r\n"
    "quit\r\n";

static const expect expected[] = {
    {MC_GET, 1, 0, false, NULL},
    {MC_GETS, 3, 0, false, NULL},
    {MC_GAT, 2, 0, false, NULL},
    {MC_GATS, 1, 0, false, NULL},
    {MC_SET, 1, 5, false, NULL},
    {MC_ADD, 1, 0, true, NULL},
    {MC_REPLACE, 1, 3, false, NULL},
    {MC_APPEND, 1, 2, false, NULL},
    {MC_PREPEND, 1, 1, false, NULL},
    {MC_CAS, 1, 1, false, NULL},
    {MC_DELETE, 1, 0, false, NULL},
    {MC_DELETE, 1, 0, true, NULL},
    {MC_INCR, 1, 0, false, NULL},
    {MC_DECR, 1, 0, true, NULL},
    {MC_TOUCH, 1, 0, false, NULL},
    {MC_VERSION, 0, 0, false, NULL},
    {MC_INVALID, 0, 0, false, "ERROR"},
    {MC_INVALID, 0, 0, false, "ERROR"},
    {MC_INVALID, 0, 0, false, "SERVER_ERROR unsupported command"},
    {MC_INVALID, 0, 0, false, "ERROR"},
    {MC_INVALID, 0, 0, false, "CLIENT_ERROR invalid numeric delta argument"},
    /* "extra" is not noreply: ignored, as memcached does */
    {MC_SET, 1, 2, false, NULL},
    {MC_INVALID, 0, 0, false, "CLIENT_ERROR bad command line format"},
    {MC_INVALID, 0, 0, false, NULL},
    {MC_QUIT, 0, 0, false, NULL},
};
#define EXPECTED (sizeof expected / sizeof expected[0])

static void check(const mc_msg *m, const expect *e) {
    ASSERT_EQ(m->cmd, e->cmd);
    if (e->cmd == MC_INVALID) {
        ASSERT_TRUE(m->error != NULL);
        if (e->error) ASSERT_TRUE(strcmp(m->error, e->error) == 0);
        return;
    }
    ASSERT_UEQ(m->key_count, e->keys);
    ASSERT_UEQ(m->data_len, e->data_len);
    ASSERT_EQ(m->noreply, e->noreply);
}

static void run(uint64_t *rng, int mode) {
    mc_parser p;
    mc_parser_init(&p);
    size_t total = sizeof pipeline - 1, pos = 0, got = 0;
    while (pos < total) {
        size_t n = mode == 0 ? total : mode == 1 ? 1 : 1 + test_rand(rng) % 40;
        if (n > total - pos) n = total - pos;
        ASSERT_OK(mc_feed(&p, pipeline + pos, n));
        pos += n;
        mc_msg m;
        int rc;
        while ((rc = mc_next(&p, &m)) == 1) {
            ASSERT_TRUE(got < EXPECTED);
            check(&m, &expected[got]);
            got++;
        }
        ASSERT_EQ(rc, 0);
    }
    ASSERT_UEQ(got, EXPECTED);
    ASSERT_UEQ(mc_buffered(&p), 0);
    mc_parser_free(&p);
}

static void test_details(void) {
    mc_parser p;
    mc_parser_init(&p);
    static const char text[] = "set kk 7 0 3 noreply\r\nabc\r\ngat 5 x y\r\n";
    ASSERT_OK(mc_feed(&p, text, sizeof text - 1));
    mc_msg m;
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_EQ(m.cmd, MC_SET);
    ASSERT_TRUE(m.noreply);
    ASSERT_UEQ(m.line_keep_len, 12); /* "set kk 7 0 3" */
    ASSERT_UEQ(m.raw_len, 27);
    ASSERT_TRUE(memcmp(m.data, "abc", 3) == 0);
    ASSERT_TRUE(m.keys[0].len == 2 && memcmp(m.keys[0].ptr, "kk", 2) == 0);
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_EQ(m.cmd, MC_GAT);
    ASSERT_TRUE(m.exptime_len == 1 && m.exptime[0] == '5');
    ASSERT_UEQ(m.key_count, 2);
    ASSERT_TRUE(m.keys[1].ptr[0] == 'y');
    mc_parser_free(&p);

    /* key length: 250 is fine, 251 is not */
    char line[600];
    char key[252];
    memset(key, 'k', sizeof key);
    key[250] = '\0';
    mc_parser_init(&p);
    snprintf(line, sizeof line, "get %s\r\n", key);
    ASSERT_OK(mc_feed(&p, line, strlen(line)));
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_EQ(m.cmd, MC_GET);
    key[250] = 'k';
    key[251] = '\0';
    snprintf(line, sizeof line, "get a %s\r\nset %s 0 0 1\r\nx\r\nversion\r\n", key, key);
    ASSERT_OK(mc_feed(&p, line, strlen(line)));
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_EQ(m.cmd, MC_INVALID);
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_EQ(m.cmd, MC_INVALID); /* and its data swallowed */
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_EQ(m.cmd, MC_VERSION);
    mc_parser_free(&p);
}

static void test_sticky(void) {
    static const char *const bad[] = {
        "set k 0 0 3\r\nabcd\r\n", /* data not followed by CRLF */
        "set k 0 0 3\r\nabc\n\n",
    };
    for (size_t i = 0; i < 2; i++) {
        mc_parser p;
        mc_parser_init(&p);
        ASSERT_OK(mc_feed(&p, bad[i], strlen(bad[i])));
        mc_msg m;
        ASSERT_EQ(mc_next(&p, &m), -1);
        ASSERT_EQ(p.err, MC_ERR_PROTOCOL);
        ASSERT_EQ(mc_feed(&p, "version\r\n", 9), -1);
        ASSERT_EQ(mc_next(&p, &m), -1);
        mc_parser_free(&p);
    }
    /* a line that never ends */
    mc_parser p;
    mc_parser_init(&p);
    p.max_line = 100;
    char junk[300];
    memset(junk, 'j', sizeof junk);
    ASSERT_OK(mc_feed(&p, junk, sizeof junk));
    mc_msg m;
    ASSERT_EQ(mc_next(&p, &m), -1);
    ASSERT_EQ(p.err, MC_ERR_LIMIT);
    mc_parser_free(&p);
}

static void test_oversized_skip(void) {
    mc_parser p;
    mc_parser_init(&p);
    p.max_value_len = 10;
    mc_msg m;
    ASSERT_OK(mc_feed(&p, "set k 0 0 20\r\n0123456789", 24));
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_EQ(m.cmd, MC_INVALID);
    ASSERT_TRUE(strcmp(m.error, "SERVER_ERROR object too large for cache") == 0);
    ASSERT_EQ(mc_next(&p, &m), 0);
    ASSERT_OK(mc_feed(&p, "0123456789\r\nversion\r\n", 21));
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_EQ(m.cmd, MC_VERSION);
    ASSERT_UEQ(mc_buffered(&p), 0);
    mc_parser_free(&p);
}

static void test_replies(uint64_t *rng) {
    static const struct {
        const char *text;
        bool retrieval;
        size_t len;
    } cases[] = {
        {"STORED\r\n", false, 8},
        {"END\r\n", true, 5},
        {"VALUE a 0 3\r\nabc\r\nVALUE bb 5 0 77\r\n\r\nEND\r\n", true, 42},
        {"VALUE a 0 5\r\nEND\r\n\r\nEND\r\n", true, 25}, /* data may look like END */
        {"SERVER_ERROR out of memory\r\n", true, 28},
        {"ERROR\r\n", true, 7},
        {"12345\r\n", false, 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *t = cases[i].text;
        size_t n = strlen(t);
        ASSERT_UEQ(n, cases[i].len);
        for (int mode = 0; mode < 3; mode++) {
            mc_reply_parser rp = {0};
            size_t have = 0, len = 0;
            int rc = 0;
            while (rc == 0) {
                ASSERT_TRUE(have < n);
                have += mode == 0 ? n : mode == 1 ? 1 : 1 + test_rand(rng) % 7;
                if (have > n) have = n;
                rc = mc_reply_next(&rp, t, have, cases[i].retrieval, &len);
            }
            ASSERT_EQ(rc, 1);
            ASSERT_UEQ(len, n);
        }
    }
    mc_reply_parser rp = {0};
    size_t len;
    ASSERT_EQ(mc_reply_next(&rp, "VALUE a 0 3\r\nabcd\r\n", 19, true, &len), -1);
    mc_reply_reset(&rp);
    ASSERT_EQ(mc_reply_next(&rp, "HELLO\r\n", 7, true, &len), -1);
    mc_reply_reset(&rp);
    ASSERT_EQ(mc_reply_next(&rp, "VALUE a x 3\r\n", 13, true, &len), -1);

    /* walking the blocks */
    const char *r = cases[2].text;
    size_t off = 0, block;
    mc_key key;
    ASSERT_EQ(mc_value_next(r, 42, &off, &key, &block), 1);
    ASSERT_TRUE(key.len == 1 && key.ptr[0] == 'a');
    ASSERT_UEQ(block, 18);
    ASSERT_EQ(mc_value_next(r, 42, &off, &key, &block), 1);
    ASSERT_TRUE(key.len == 2);
    ASSERT_EQ(mc_value_next(r, 42, &off, &key, &block), 0);
}

int main(void) {
    uint64_t rng = 1;
    for (int mode = 0; mode < 3; mode++)
        for (int rep = 0; rep < (mode == 2 ? 200 : 1); rep++) run(&rng, mode);
    test_details();
    test_sticky();
    test_oversized_skip();
    test_replies(&rng);
    TEST_DONE();
}
