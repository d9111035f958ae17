/*
 * test_resp.c - the RESP request parser: framing, pipelines fed whole, byte by
 * byte and in random chunks, limits, and every malformed case of the issue's
 * bad-input corpus (each must end in a sticky error, never a wait or a crash).
 */
#include "../testlib.h"
#include "resp.h"

typedef struct cmd {
    size_t argc;
    char *args[8];
    size_t lens[8];
} cmd;

static void encode(buf *b, const cmd *c) {
    buf_append_header(b, '*', c->argc);
    for (size_t i = 0; i < c->argc; i++) buf_append_bulk(b, c->args[i], c->lens[i]);
}

static void check_msg(const resp_msg *m, const cmd *c) {
    ASSERT_UEQ(m->argc, c->argc);
    for (size_t i = 0; i < c->argc; i++) {
        ASSERT_UEQ(m->argv[i].len, c->lens[i]);
        ASSERT_TRUE(memcmp(m->argv[i].ptr, c->args[i], c->lens[i]) == 0);
    }
}

/* Feeds all of `in` in chunks from `next_chunk`, checking each command. */
static void run_pipeline(const buf *in, const cmd *cmds, size_t count, uint64_t *rng,
                         int mode) {
    resp_parser p;
    resp_parser_init(&p);
    size_t pos = 0, got = 0, total = buf_used(in);
    while (pos < total || got < count) {
        if (pos < total) {
            size_t n = mode == 0 ? total : mode == 1 ? 1 : 1 + test_rand(rng) % 300;
            if (n > total - pos) n = total - pos;
            if (test_rand(rng) & 1) {
                ASSERT_OK(resp_feed(&p, buf_start(in) + pos, n));
            } else {
                size_t avail;
                char *dst = resp_space(&p, n, &avail);
                ASSERT_TRUE(dst && avail >= n);
                memcpy(dst, buf_start(in) + pos, n);
                resp_commit(&p, n);
            }
            pos += n;
        }
        resp_msg m;
        int rc;
        while ((rc = resp_next(&p, &m)) == 1) {
            ASSERT_TRUE(got < count);
            check_msg(&m, &cmds[got]);
            got++;
        }
        ASSERT_EQ(rc, 0);
    }
    ASSERT_UEQ(got, count);
    ASSERT_UEQ(resp_buffered(&p), 0);
    resp_parser_free(&p);
}

static void test_random_pipelines(void) {
    uint64_t rng = 42;
    for (int round = 0; round < 60; round++) {
        size_t count = 1 + test_rand(&rng) % 40;
        cmd *cmds = calloc(count, sizeof *cmds);
        buf in = {0};
        for (size_t i = 0; i < count; i++) {
            cmds[i].argc = 1 + test_rand(&rng) % 8;
            for (size_t a = 0; a < cmds[i].argc; a++) {
                size_t len = test_rand(&rng) % 5 == 0 ? test_rand(&rng) % 3000
                                                      : test_rand(&rng) % 12;
                cmds[i].args[a] = malloc(len + 1);
                for (size_t k = 0; k < len; k++) cmds[i].args[a][k] = (char)test_rand(&rng);
                cmds[i].lens[a] = len;
            }
            encode(&in, &cmds[i]);
        }
        for (int mode = 0; mode < 3; mode++) run_pipeline(&in, cmds, count, &rng, mode);
        for (size_t i = 0; i < count; i++)
            for (size_t a = 0; a < cmds[i].argc; a++) free(cmds[i].args[a]);
        free(cmds);
        buf_free(&in);
    }
}

/* Parses `text` whole; returns the commands pulled before rc. */
static int parse_all(resp_parser *p, const char *text, size_t len, size_t *commands) {
    *commands = 0;
    if (resp_feed(p, text, len) != 0) return -1;
    resp_msg m;
    int rc;
    while ((rc = resp_next(p, &m)) == 1) (*commands)++;
    return rc;
}

static void expect_error(const char *text, size_t len, resp_err err, size_t before) {
    resp_parser p;
    resp_parser_init(&p);
    size_t n;
    ASSERT_EQ(parse_all(&p, text, len, &n), -1);
    ASSERT_UEQ(n, before);
    ASSERT_EQ(p.err, err);
    ASSERT_TRUE(p.errstr != NULL);
    /* sticky */
    resp_msg m;
    ASSERT_EQ(resp_next(&p, &m), -1);
    ASSERT_EQ(resp_feed(&p, "*1\r\n$4\r\nPING\r\n", sizeof("*1\r\n$4\r\nPING\r\n") - 1), -1);
    ASSERT_EQ(resp_next(&p, &m), -1);
    resp_parser_free(&p);
    /* the same byte by byte */
    resp_parser_init(&p);
    int rc = 0;
    size_t got = 0;
    for (size_t i = 0; i < len && rc >= 0; i++) {
        ASSERT_OK(resp_feed(&p, text + i, 1));
        while ((rc = resp_next(&p, &m)) == 1) got++;
    }
    ASSERT_EQ(rc, -1);
    ASSERT_UEQ(got, before);
    resp_parser_free(&p);
}
#define EXPECT_ERROR(lit, err, before) expect_error(lit, sizeof(lit) - 1, err, before)

static void test_bad_input(void) {
    EXPECT_ERROR("*2147483648\r\n", RESP_ERR_LIMIT, 0);
    EXPECT_ERROR("*1\r\n$99999999999\r\n", RESP_ERR_LIMIT, 0);
    EXPECT_ERROR("*1\r\n$99999999999999999999999\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*99999999999999999999\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*9223372036854775808\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*-2\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*1\r\n$-1\r\n", RESP_ERR_LIMIT, 0);
    EXPECT_ERROR("*1\r\n$-5\r\n", RESP_ERR_LIMIT, 0);
    EXPECT_ERROR("*1\n$4\r\nPING\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*1\r\n$4\nPING\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*1\r\n$4\r\nPINGx\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*1\r\n$4\r\nPING\n\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*1\r\n*1\r\n*1\r\n*1\r\n$1\r\nx\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*1\r\n:1\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*1x\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*+1\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*1\r\n$\r\n", RESP_ERR_PROTOCOL, 0);
    EXPECT_ERROR("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPIN\r\n\r\n", RESP_ERR_PROTOCOL, 1);
    /* a length line that never ends is malformed once it is too long */
    EXPECT_ERROR("*1111111111111111111111111", RESP_ERR_PROTOCOL, 0);

    /* skipped, as redis does */
    resp_parser p;
    resp_parser_init(&p);
    size_t n;
    ASSERT_EQ(parse_all(&p, "*0\r\n*-1\r\n\r\n  \r\n*1\r\n$4\r\nPING\r\n", sizeof("*0\r\n*-1\r\n\r\n  \r\n*1\r\n$4\r\nPING\r\n") - 1, &n), 0);
    ASSERT_UEQ(n, 1);
    resp_parser_free(&p);

    /* binary garbage becomes an inline command (answered "unsupported"), or
     * an error if no line end comes within the inline limit */
    char garbage[70000];
    uint64_t rng = 7;
    for (size_t i = 0; i < sizeof garbage; i++) {
        garbage[i] = (char)test_rand(&rng);
        if (garbage[i] == '\n' || garbage[i] == '*') garbage[i] = 'x';
    }
    garbage[0] = 'Z';
    expect_error(garbage, sizeof garbage, RESP_ERR_LIMIT, 0);
}

static void test_limits(void) {
    resp_parser p;
    resp_parser_init(&p);
    p.max_args = 2;
    size_t n;
    ASSERT_EQ(parse_all(&p, "*2\r\n$1\r\na\r\n$1\r\nb\r\n*3\r\n", sizeof("*2\r\n$1\r\na\r\n$1\r\nb\r\n*3\r\n") - 1, &n), -1);
    ASSERT_UEQ(n, 1);
    ASSERT_EQ(p.err, RESP_ERR_LIMIT);
    resp_parser_free(&p);

    resp_parser_init(&p);
    p.max_bulk_len = 10;
    ASSERT_EQ(parse_all(&p, "*1\r\n$10\r\n0123456789\r\n*1\r\n$11\r\n", sizeof("*1\r\n$10\r\n0123456789\r\n*1\r\n$11\r\n") - 1, &n), -1);
    ASSERT_UEQ(n, 1);
    resp_parser_free(&p);

    /* announced size beyond max_buffer fails before the bytes come */
    resp_parser_init(&p);
    p.max_buffer = 100;
    ASSERT_EQ(parse_all(&p, "*1\r\n$200\r\n", sizeof("*1\r\n$200\r\n") - 1, &n), -1);
    resp_parser_free(&p);

    resp_parser_init(&p);
    p.max_inline_len = 8;
    ASSERT_EQ(parse_all(&p, "GET abc\r\nGET abcdefgh\r\n", sizeof("GET abc\r\nGET abcdefgh\r\n") - 1, &n), -1);
    ASSERT_UEQ(n, 1);
    resp_parser_free(&p);

    /* a 1 MB argument is fine by default, whatever the chunking */
    buf in = {0};
    size_t big = 1024 * 1024;
    char *key = malloc(big);
    memset(key, 'k', big);
    buf_append_header(&in, '*', 2);
    buf_append_bulk(&in, "GET", 3);
    buf_append_bulk(&in, key, big);
    resp_parser_init(&p);
    resp_msg m;
    for (size_t pos = 0; pos < buf_used(&in); pos += 4096) {
        size_t k = buf_used(&in) - pos < 4096 ? buf_used(&in) - pos : 4096;
        ASSERT_OK(resp_feed(&p, buf_start(&in) + pos, k));
        if (pos + k < buf_used(&in)) ASSERT_EQ(resp_next(&p, &m), 0);
    }
    ASSERT_EQ(resp_next(&p, &m), 1);
    ASSERT_UEQ(m.argc, 2);
    ASSERT_UEQ(m.argv[1].len, big);
    ASSERT_UEQ(m.raw_len, buf_used(&in));
    resp_parser_free(&p);
    free(key);
    buf_free(&in);
}

static void test_inline(void) {
    resp_parser p;
    resp_parser_init(&p);
    ASSERT_OK(resp_feed(&p, "SET  k\tv\r\nget \r\nPING\n", sizeof("SET  k\tv\r\nget \r\nPING\n") - 1));
    resp_msg m;
    ASSERT_EQ(resp_next(&p, &m), 1);
    ASSERT_TRUE(m.is_inline);
    ASSERT_UEQ(m.argc, 3);
    ASSERT_TRUE(m.argv[1].len == 1 && m.argv[1].ptr[0] == 'k');
    ASSERT_TRUE(m.argv[2].len == 1 && m.argv[2].ptr[0] == 'v');
    ASSERT_UEQ(m.raw_len, 10);
    ASSERT_EQ(resp_next(&p, &m), 1);
    ASSERT_UEQ(m.argc, 1); /* "get " -> GET with no key: the router's error */
    ASSERT_EQ(resp_next(&p, &m), 1);
    ASSERT_UEQ(m.argc, 1);
    ASSERT_EQ(resp_next(&p, &m), 0);
    resp_parser_free(&p);
}

/* The stream is malformed at once, with `errstr_part` in the error. */
static void expect_malformed(const char *input, const char *errstr_part) {
    resp_parser p;
    resp_parser_init(&p);
    ASSERT_OK(resp_feed(&p, input, strlen(input)));
    resp_msg m;
    ASSERT_EQ(resp_next(&p, &m), -1);
    ASSERT_TRUE(strstr(p.errstr, errstr_part) != NULL);
    resp_parser_free(&p);
}

/* Lengths as Redis reads them: a leading zero or "-0" is malformed, "0" is
 * an empty argument. */
static void test_strict_lengths(void) {
    static const char *const bad[] = {"*1\r\n$04\r\nPING\r\n", "*01\r\n$4\r\nPING\r\n",
                                      "*2\r\n$3\r\nGET\r\n$00\r\n\r\n", "*-0\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_malformed(bad[i], "Protocol error");
    resp_parser p;
    resp_parser_init(&p);
    static const char empty_arg[] = "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n";
    ASSERT_OK(resp_feed(&p, empty_arg, sizeof empty_arg - 1));
    resp_msg m;
    ASSERT_EQ(resp_next(&p, &m), 1);
    ASSERT_UEQ(m.argc, 2);
    ASSERT_UEQ(m.argv[1].len, 0);
    resp_parser_free(&p);
}

/* Inline arguments unquoted as Redis's sdssplitargs does. */
static void test_inline_quotes(void) {
    static const struct {
        const char *line;
        int argc;
        const char *args[4];
        size_t lens[4];
    } ok[] = {
        {"SET \"a b\" 'c d'\r\n", 3, {"SET", "a b", "c d"}, {3, 3, 3}},
        {"SET \"\\x41\\x7a\\n\\\"\" ''\n", 3, {"SET", "Az\n\"", ""}, {3, 4, 0}},
        {"ECHO 'it\\'s'\n", 2, {"ECHO", "it's"}, {4, 4}},
        {"ECHO 'a\\nb'\n", 2, {"ECHO", "a\\nb"}, {4, 4}},
        {"ECHO \"\\x4g\"\n", 2, {"ECHO", "x4g"}, {4, 3}},
        {"ECHO \"\\x00\"\n", 2, {"ECHO", "\0"}, {4, 1}},
        {"ECHO x\"y z\"\n", 2, {"ECHO", "xy z"}, {4, 4}},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        resp_parser p;
        resp_parser_init(&p);
        ASSERT_OK(resp_feed(&p, ok[i].line, strlen(ok[i].line)));
        resp_msg m;
        ASSERT_EQ(resp_next(&p, &m), 1);
        ASSERT_UEQ(m.argc, (size_t)ok[i].argc);
        for (int a = 0; a < ok[i].argc; a++) {
            ASSERT_UEQ(m.argv[a].len, ok[i].lens[a]);
            ASSERT_TRUE(memcmp(m.argv[a].ptr, ok[i].args[a], ok[i].lens[a]) == 0);
        }
        ASSERT_EQ(resp_next(&p, &m), 0);
        resp_parser_free(&p);
    }
    static const char *const bad[] = {
        "SET \"a b\n", "SET 'a\n", "SET \"a\"b\n", "SET 'a'b\n", "SET \"a\\\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_malformed(bad[i], "unbalanced quotes");
}

int main(void) {
    test_random_pipelines();
    test_bad_input();
    test_limits();
    test_inline();
    test_inline_quotes();
    test_strict_lengths();
    TEST_DONE();
}
