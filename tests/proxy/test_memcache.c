/*
 * test_memcache.c - the memcached ASCII parsers: every command, pipelines fed
 * whole, byte by byte and in random chunks, line errors that keep the stream
 * in sync, framing errors that are sticky, oversized values skipped, and the
 * server-reply parser over the same chunkings. Meta commands, flush_all,
 * verbosity and stats: what memcached refuses before a server sees them,
 * with its reply, ms's data block framed, and base64 keys decoded as
 * memcached does.
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
    "mg k v q O1\r\n"
    "ms k 3 T0 q\r\nabc\r\n"
    "md k q\r\n"
    "ma n N0 D5\r\n"
    "me k\r\n"
    "mn\r\n"
    "flush_all 0 noreply\r\n"
    "verbosity 1\r\n"
    "stats items\r\n"
    "mg\r\n"
    "me\r\n"
    "ms k abc\r\n"
    "mg k a b c d e f g h i j k l m n o p r s\r\n"
    "ms k 2 a b c d e f g h i j k l m n o p r\r\nxx\r\n"
    "flush_all 1 2 3\r\n"
    "verbosity\r\n"
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
    {MC_STATS, 0, 0, false, NULL},
    {MC_INVALID, 0, 0, false, "ERROR"},
    {MC_INVALID, 0, 0, false, "CLIENT_ERROR invalid numeric delta argument"},
    /* "extra" is not noreply: ignored, as memcached does */
    {MC_SET, 1, 2, false, NULL},
    {MC_INVALID, 0, 0, false, "CLIENT_ERROR bad command line format"},
    {MC_INVALID, 0, 0, false, NULL},
    {MC_MG, 1, 0, false, NULL},
    {MC_MS, 1, 3, false, NULL},
    {MC_MD, 1, 0, false, NULL},
    {MC_MA, 1, 0, false, NULL},
    {MC_ME, 1, 0, false, NULL},
    {MC_MN, 0, 0, false, NULL},
    {MC_FLUSH_ALL, 0, 0, true, NULL},
    {MC_VERBOSITY, 0, 0, false, NULL},
    {MC_STATS, 0, 0, false, NULL},
    {MC_INVALID, 0, 0, false, "ERROR"},
    {MC_INVALID, 0, 0, false, "CLIENT_ERROR bad command line format"},
    {MC_INVALID, 0, 0, false, "CLIENT_ERROR bad command line format"},
    {MC_INVALID, 0, 0, false, "CLIENT_ERROR options flags are too long"},
    /* its data block is dropped with it */
    {MC_INVALID, 0, 0, false, "CLIENT_ERROR options flags too long"},
    {MC_INVALID, 0, 0, false, "ERROR"},
    {MC_INVALID, 0, 0, false, "ERROR"},
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

static bool arg_is(const mc_key *k, const char *s) {
    return k->len == strlen(s) && memcmp(k->ptr, s, k->len) == 0;
}

/* One command from text (fed whole); returns it, with the parser left for
 * the caller to free. */
static mc_msg one(mc_parser *p, const char *text) {
    mc_parser_init(p);
    ASSERT_OK(mc_feed(p, text, strlen(text)));
    mc_msg m;
    ASSERT_EQ(mc_next(p, &m), 1);
    return m;
}

static void test_meta(void) {
    mc_parser p;
    mc_msg m = one(&p, "mg  foo v q O1 k\r\n");
    ASSERT_EQ(m.cmd, MC_MG);
    ASSERT_TRUE(m.key_count == 1 && arg_is(&m.keys[0], "foo"));
    ASSERT_UEQ(m.arg_count, 4);
    ASSERT_TRUE(arg_is(&m.args[1], "q") && arg_is(&m.args[3], "k"));
    ASSERT_TRUE(!m.noreply);
    mc_parser_free(&p);

    /* "noreply" is a flag like another to a meta command (the server
     * refuses it): never stripped */
    m = one(&p, "md foo noreply\r\n");
    ASSERT_EQ(m.cmd, MC_MD);
    ASSERT_TRUE(!m.noreply);
    ASSERT_UEQ(m.line_keep_len, 14);
    mc_parser_free(&p);

    m = one(&p, "ms foo 3 q b\r\nabc\r\nmn\r\n");
    ASSERT_EQ(m.cmd, MC_MS);
    ASSERT_TRUE(m.data_len == 3 && memcmp(m.data, "abc", 3) == 0);
    ASSERT_UEQ(m.raw_len, 19);
    ASSERT_TRUE(m.arg_count == 2 && arg_is(&m.args[0], "q"));
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_EQ(m.cmd, MC_MN);
    mc_parser_free(&p);

    /* the data length as memcached's strtol reads it */
    m = one(&p, "ms k +2\r\nxx\r\n");
    ASSERT_TRUE(m.cmd == MC_MS && m.data_len == 2);
    mc_parser_free(&p);
    m = one(&p, "ms k -0\r\n\r\n");
    ASSERT_TRUE(m.cmd == MC_MS && m.data_len == 0);
    mc_parser_free(&p);
    static const char *const bad_len[] = {"ms k -1\r\n", "ms k 2x\r\n", "ms k 2147483646\r\n",
                                          "ms k +\r\n", "ms k\r\n"};
    for (size_t i = 0; i < sizeof bad_len / sizeof bad_len[0]; i++) {
        m = one(&p, bad_len[i]);
        ASSERT_EQ(m.cmd, MC_INVALID);
        ASSERT_TRUE(strcmp(m.error, "CLIENT_ERROR bad command line format") == 0);
        ASSERT_UEQ(mc_buffered(&p), 0); /* no data block is read after it */
        mc_parser_free(&p);
    }

    /* a bad key with a known length: its data is dropped, not run */
    char line[700];
    char key[252];
    memset(key, 'k', sizeof key - 1);
    key[251] = '\0';
    snprintf(line, sizeof line, "ms %s 7\r\nversion\r\nmn\r\n", key);
    m = one(&p, line);
    ASSERT_EQ(m.cmd, MC_INVALID);
    ASSERT_TRUE(strcmp(m.error, "CLIENT_ERROR bad command line format") == 0);
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_EQ(m.cmd, MC_MN);
    mc_parser_free(&p);
    snprintf(line, sizeof line, "mg %s v\r\n", key);
    m = one(&p, line);
    ASSERT_TRUE(m.cmd == MC_INVALID &&
                strcmp(m.error, "CLIENT_ERROR bad command line format") == 0);
    mc_parser_free(&p);

    /* too large for the pool: answered as memcached does, data skipped */
    mc_parser_init(&p);
    p.max_value_len = 4;
    ASSERT_OK(mc_feed(&p, "ms k 5\r\nhello\r\nmn\r\n", 20));
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_TRUE(m.cmd == MC_INVALID &&
                strcmp(m.error, "SERVER_ERROR object too large for cache") == 0);
    ASSERT_EQ(mc_next(&p, &m), 1);
    ASSERT_EQ(m.cmd, MC_MN);
    mc_parser_free(&p);

    /* more tokens than memcached takes: refused for mg/md/ma/ms, not for
     * me, which reads only its first ones; also past the tokenizer's room */
    strcpy(line, "mg k");
    for (int i = 0; i < 30; i++) strcat(line, " v");
    strcat(line, "\r\n");
    m = one(&p, line);
    ASSERT_TRUE(m.cmd == MC_INVALID &&
                strcmp(m.error, "CLIENT_ERROR options flags are too long") == 0);
    mc_parser_free(&p);
    line[1] = 'e';
    m = one(&p, line);
    ASSERT_EQ(m.cmd, MC_ME);
    mc_parser_free(&p);
    line[1] = 'a';
    m = one(&p, line);
    ASSERT_TRUE(m.cmd == MC_INVALID &&
                strcmp(m.error, "CLIENT_ERROR options flags too long") == 0);
    mc_parser_free(&p);
    strcpy(line, "mg k");
    for (int i = 0; i < 17; i++) strcat(line, " v");
    strcat(line, "\r\n");
    m = one(&p, line); /* 19 tokens: the most memcached takes */
    ASSERT_TRUE(m.cmd == MC_MG && m.arg_count == 17);
    mc_parser_free(&p);

    /* the others */
    m = one(&p, "flush_all 10 noreply\r\n");
    ASSERT_TRUE(m.cmd == MC_FLUSH_ALL && m.noreply && m.line_keep_len == 12);
    mc_parser_free(&p);
    m = one(&p, "flush_all 10 20\r\n");
    ASSERT_TRUE(m.cmd == MC_FLUSH_ALL && !m.noreply);
    mc_parser_free(&p);
    m = one(&p, "verbosity 1 noreply\r\n");
    ASSERT_TRUE(m.cmd == MC_VERBOSITY && m.noreply);
    mc_parser_free(&p);
    m = one(&p, "stats reset now\r\n");
    ASSERT_TRUE(m.cmd == MC_STATS && m.arg_count == 2 && arg_is(&m.args[0], "reset"));
    mc_parser_free(&p);
    m = one(&p, "stats noreply\r\n");
    ASSERT_TRUE(m.cmd == MC_STATS && !m.noreply && m.arg_count == 1);
    mc_parser_free(&p);
    m = one(&p, "mn\r\n");
    ASSERT_TRUE(m.cmd == MC_MN && m.key_count == 0);
    mc_parser_free(&p);
    m = one(&p, "mx k\r\n");
    ASSERT_TRUE(m.cmd == MC_INVALID && strcmp(m.error, "ERROR") == 0);
    mc_parser_free(&p);
}

static void test_base64(void) {
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"Zm9v", "foo"},      {"Zm9v!", "foo"}, /* bytes outside the alphabet are skipped */
        {"Zg==", "f"},        {"Zm8=", "fo"},   {"Zm9vYg==", "foob"},
        {"Zm9vYg==Zm9v", "foob"}, /* decoding stops after padding */
        {"Zg", ""},           {"Z", ""},        {"Z===", ""}, {"====", ""}, {"", ""},
        {"!!!!", ""},         {"+/+/", "\xfb\xff\xbf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[16];
        size_t n = mc_base64_decode(cases[i].in, strlen(cases[i].in), out);
        ASSERT_UEQ(n, strlen(cases[i].out));
        ASSERT_TRUE(memcmp(out, cases[i].out, n) == 0);
    }
}

static void test_replies(uint64_t *rng) {
    static const struct {
        const char *text;
        mc_reply_kind kind;
        size_t len;
    } cases[] = {
        {"STORED\r\n", MC_REPLY_LINE, 8},
        {"END\r\n", MC_REPLY_VALUES, 5},
        {"VALUE a 0 3\r\nabc\r\nVALUE bb 5 0 77\r\n\r\nEND\r\n", MC_REPLY_VALUES, 42},
        {"VALUE a 0 5\r\nEND\r\n\r\nEND\r\n", MC_REPLY_VALUES, 25}, /* data may look like END */
        {"SERVER_ERROR out of memory\r\n", MC_REPLY_VALUES, 28},
        {"ERROR\r\n", MC_REPLY_VALUES, 7},
        {"12345\r\n", MC_REPLY_LINE, 7},
        {"HD kfoo O1\r\n", MC_REPLY_META, 12},
        {"EN\r\n", MC_REPLY_META, 4},
        {"VA 4 f0\r\nMN\r\n\r\n", MC_REPLY_META, 15}, /* data may look like MN */
        {"MN\r\n", MC_REPLY_META_MN, 4},
        {"NF\r\nMN\r\n", MC_REPLY_META_MN, 8},
        {"VA 2\r\nMN\r\nMN\r\n", MC_REPLY_META_MN, 14},
        {"STAT pid 1\r\nSTAT x y z\r\nEND\r\n", MC_REPLY_STATS, 29},
        {"ERROR\r\n", MC_REPLY_STATS, 7},
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
                rc = mc_reply_next(&rp, t, have, cases[i].kind, &len);
            }
            ASSERT_EQ(rc, 1);
            ASSERT_UEQ(len, n);
        }
    }
    mc_reply_parser rp = {0};
    size_t len;
    ASSERT_EQ(mc_reply_next(&rp, "VA 2\r\nabc\r\n", 11, MC_REPLY_META, &len), -1);
    mc_reply_reset(&rp);
    ASSERT_EQ(mc_reply_next(&rp, "HD\r\nEN\r\n", 8, MC_REPLY_META_MN, &len), -1);
    mc_reply_reset(&rp);
    ASSERT_EQ(mc_reply_next(&rp, "STAT a 1\r\nVALUE x\r\n", 20, MC_REPLY_STATS, &len), -1);
    mc_reply_reset(&rp);
    ASSERT_EQ(mc_reply_next(&rp, "VALUE a 0 3\r\nabcd\r\n", 19, MC_REPLY_VALUES, &len), -1);
    mc_reply_reset(&rp);
    ASSERT_EQ(mc_reply_next(&rp, "HELLO\r\n", 7, MC_REPLY_VALUES, &len), -1);
    mc_reply_reset(&rp);
    ASSERT_EQ(mc_reply_next(&rp, "VALUE a x 3\r\n", 13, MC_REPLY_VALUES, &len), -1);

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
    test_meta();
    test_base64();
    test_replies(&rng);
    TEST_DONE();
}
