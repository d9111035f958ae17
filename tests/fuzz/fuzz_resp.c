/*
 * fuzz_resp.c - libFuzzer harness for the Redis request parser (resp.c).
 *
 * The input is a client's byte stream. It is delivered three ways (one read,
 * one byte per read, random reads drained lazily) through resp_space and
 * resp_commit, as the proxy reads a socket, under the default limits and
 * under small ones. Every delivery must yield the same commands, then the
 * same error or the same unparsed tail: how the bytes were split must never
 * change what they mean. Each command is checked against the bytes that were
 * fed (raw is exactly the next bytes of the stream, every argument lies inside
 * it and is framed as the protocol says), and an error must be sticky and
 * printable as a one-line reply. (Server replies: fuzz_reply.c.)
 */
#include "fuzz.h"
#include "resp.h"

#include <stdbool.h>
#include <string.h>

/* What one delivery produced, to compare with the others. */
typedef struct outcome {
    size_t cmd_count;
    uint64_t digest; /* of every command's position, arguments and kind */
    size_t consumed; /* bytes of the stream parsed when the input ran out */
    resp_err err;
    const char *errstr;
} outcome;

typedef struct limits {
    uint64_t max_bulk_len;
    size_t max_args;
    size_t max_inline_len;
    uint64_t max_buffer;
} limits;

static uint64_t mix(uint64_t h, uint64_t v) {
    for (int i = 0; i < 8; i++) h = (h ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3u;
    return h;
}

static bool has_prefix(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void check_error(resp_parser *p) {
    FUZZ_CHECK(p->err != RESP_ERR_NONE);
    FUZZ_CHECK(p->errstr != NULL);
    /* The proxy answers "-ERR <errstr>\r\n": one clean line. */
    FUZZ_CHECK(strpbrk(p->errstr, "\r\n") == NULL);
    FUZZ_CHECK(has_prefix(p->errstr, "Protocol error") || strcmp(p->errstr, "out of memory") == 0);
    FUZZ_CHECK((p->err == RESP_ERR_NOMEM) == (strcmp(p->errstr, "out of memory") == 0));
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* An inline command: its arguments are unquoted copies, never longer in all
 * than the line; a line without quotes is split on white space alone. */
static void check_inline(const resp_msg *m) {
    size_t total = 0;
    for (size_t i = 0; i < m->argc; i++) total += m->argv[i].len;
    FUZZ_CHECK(total <= m->raw_len);
    if (memchr(m->raw, '"', m->raw_len) || memchr(m->raw, '\'', m->raw_len)) return;
    size_t i = 0, argc = 0;
    while (i < m->raw_len) {
        while (i < m->raw_len && is_space(m->raw[i])) i++;
        if (i == m->raw_len) break;
        size_t start = i;
        while (i < m->raw_len && !is_space(m->raw[i])) i++;
        FUZZ_CHECK(argc < m->argc);
        FUZZ_CHECK(m->argv[argc].len == i - start);
        FUZZ_CHECK(memcmp(m->argv[argc].ptr, m->raw + start, i - start) == 0);
        argc++;
    }
    FUZZ_CHECK(argc == m->argc);
}

/* One command just returned: it must be the next raw_len bytes of the stream
 * before `consumed`, and its arguments must lie inside it. */
static void check_command(const resp_parser *p, const resp_msg *m, const uint8_t *data,
                          size_t consumed_before, size_t consumed, const limits *lim) {
    FUZZ_CHECK(m->raw_len >= 1);
    FUZZ_CHECK(consumed - consumed_before >= m->raw_len);
    FUZZ_CHECK(memcmp(m->raw, data + consumed - m->raw_len, m->raw_len) == 0);
    FUZZ_CHECK(m->argc >= 1);
    FUZZ_CHECK(m->argc <= (lim->max_args ? lim->max_args : RESP_MAX_ARGS_DEFAULT));
    FUZZ_CHECK(m->is_inline == (m->raw[0] != '*'));
    FUZZ_CHECK(m->raw[m->raw_len - 1] == '\n');
    const char *end = m->raw + m->raw_len;
    const char *prev_end = m->raw;
    if (m->is_inline) {
        check_inline(m);
        size_t max_inline = lim->max_inline_len ? lim->max_inline_len : RESP_MAX_INLINE_DEFAULT;
        FUZZ_CHECK(m->raw_len <= max_inline + 1);
        (void)p;
        return;
    }
    for (size_t i = 0; i < m->argc; i++) {
        const resp_arg *a = &m->argv[i];
        FUZZ_CHECK(a->ptr >= prev_end && a->ptr <= end && a->len <= (size_t)(end - a->ptr));
        uint64_t max_bulk = lim->max_bulk_len ? lim->max_bulk_len : RESP_MAX_BULK_DEFAULT;
        FUZZ_CHECK(a->len <= max_bulk);
        FUZZ_CHECK(a->ptr[-1] == '\n' && a->ptr[-2] == '\r'); /* after "$<len>\r\n" */
        FUZZ_CHECK((size_t)(end - a->ptr) - a->len >= 2);
        FUZZ_CHECK(a->ptr[a->len] == '\r' && a->ptr[a->len + 1] == '\n');
        prev_end = a->ptr + a->len;
    }
    FUZZ_CHECK(prev_end + 2 == end); /* the last argument ends the command */
    uint64_t max_buffer = lim->max_buffer ? lim->max_buffer : RESP_MAX_BUFFER_DEFAULT;
    FUZZ_CHECK(m->raw_len <= max_buffer);
    (void)p;
}

/* Pulls up to `max` commands (SIZE_MAX: until the parser wants more). */
static int pull(resp_parser *p, const uint8_t *data, size_t fed, size_t max, const limits *lim,
                outcome *out) {
    for (size_t k = 0; k < max; k++) {
        size_t consumed_before = fed - resp_buffered(p);
        resp_msg m;
        int rc = resp_next(p, &m);
        FUZZ_CHECK(rc == -1 || rc == 0 || rc == 1);
        size_t consumed = fed - resp_buffered(p);
        FUZZ_CHECK(resp_buffered(p) <= fed && consumed >= consumed_before);
        if (rc == 0) return 0;
        if (rc < 0) {
            check_error(p);
            out->err = p->err;
            out->errstr = p->errstr;
            out->consumed = consumed;
            /* Sticky: the same error again, and no more bytes taken. */
            resp_msg again;
            FUZZ_CHECK(resp_next(p, &again) == -1);
            FUZZ_CHECK(p->err == out->err && p->errstr == out->errstr);
            size_t avail;
            FUZZ_CHECK(resp_space(p, 16, &avail) == NULL);
            FUZZ_CHECK(resp_feed(p, "PING\r\n", 6) == -1);
            FUZZ_CHECK(resp_buffered(p) == fed - consumed);
            return -1;
        }
        check_command(p, &m, data, consumed_before, consumed, lim);
        out->cmd_count++;
        out->digest = mix(out->digest, consumed);
        out->digest = mix(out->digest, m.raw_len);
        out->digest = mix(out->digest, m.is_inline);
        out->digest = mix(out->digest, m.argc);
        for (size_t i = 0; i < m.argc; i++) {
            /* An inline argument is a copy: its bytes, not its place, count. */
            if (m.is_inline)
                for (size_t b = 0; b < m.argv[i].len; b++)
                    out->digest = mix(out->digest, (uint8_t)m.argv[i].ptr[b]);
            else
                out->digest = mix(out->digest, (uint64_t)(m.argv[i].ptr - m.raw));
            out->digest = mix(out->digest, m.argv[i].len);
        }
    }
    return 0;
}

static outcome deliver(const uint8_t *data, size_t size, enum fuzz_mode mode, const limits *lim) {
    resp_parser p;
    resp_parser_init(&p);
    p.max_bulk_len = lim->max_bulk_len;
    p.max_args = lim->max_args;
    p.max_inline_len = lim->max_inline_len;
    p.max_buffer = lim->max_buffer;
    outcome out = {0};
    out.digest = 0xcbf29ce484222325u;
    fuzz_rng rng = fuzz_rng_from(data, size, mode);
    size_t fed = 0;
    bool has_failed = false;
    while (fed < size && !has_failed) {
        size_t n = fuzz_chunk(mode, &rng, size - fed);
        size_t avail = 0;
        /* The proxy asks for a fixed read size and gets what the socket has. */
        size_t want = mode == FUZZ_RANDOM ? 1 + (size_t)(fuzz_rng_next(&rng) % 256) : n;
        char *dst = resp_space(&p, want, &avail);
        FUZZ_CHECK(dst != NULL);
        FUZZ_CHECK(avail >= want);
        if (n > avail) n = avail;
        memcpy(dst, data + fed, n);
        resp_commit(&p, n);
        fed += n;
        size_t max = SIZE_MAX;
        /* A paused client reads more before it parses what it has. */
        if (mode == FUZZ_RANDOM && fuzz_rng_next(&rng) % 2) max = fuzz_rng_next(&rng) % 3;
        has_failed = pull(&p, data, fed, max, lim, &out) < 0;
    }
    if (!has_failed && pull(&p, data, fed, SIZE_MAX, lim, &out) == 0)
        out.consumed = fed - resp_buffered(&p);
    resp_parser_free(&p);
    resp_parser_free(&p); /* freeing twice is harmless */
    return out;
}

static void check_deliveries(const uint8_t *data, size_t size, const limits *lim) {
    outcome whole = deliver(data, size, FUZZ_WHOLE, lim);
    for (int mode = FUZZ_BYTES; mode < FUZZ_MODE_COUNT; mode++) {
        outcome o = deliver(data, size, (enum fuzz_mode)mode, lim);
        FUZZ_CHECK_EQ(o.cmd_count, whole.cmd_count);
        FUZZ_CHECK(o.digest == whole.digest);
        FUZZ_CHECK_EQ(o.err, whole.err);
        FUZZ_CHECK(o.errstr == whole.errstr);
        FUZZ_CHECK_EQ(o.consumed, whole.consumed);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const limits defaults = {0, 0, 0, 0};
    /* Small limits, so a short input can cross every one of them. */
    static const limits small = {16, 4, 24, 64};
    check_deliveries(data, size, &defaults);
    check_deliveries(data, size, &small);
    return 0;
}
