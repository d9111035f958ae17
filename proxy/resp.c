/*
 * resp.c - the Redis request parser of resp.h.
 *
 * Invariant: in.off is the first byte of the command being parsed; every
 * offset kept between calls (scan, args[]) is relative to it, so sliding or
 * growing the buffer never has to fix them up. A returned command is skipped
 * by moving in.off only; the bytes are reclaimed on the next feed, which is
 * why commands stay valid until then.
 */
#include "resp.h"

#include <stdlib.h>
#include <string.h>

enum { ST_START, ST_BULK_LEN, ST_BULK_DATA, ST_INLINE };

/* "*2147483648\r\n" and friends: a sign and 19 digits is as long as a length
 * line may be; anything longer is malformed, not incomplete. */
#define NUM_LINE_MAX 22

void resp_parser_init(resp_parser *p) { memset(p, 0, sizeof *p); }

void resp_parser_free(resp_parser *p) {
    buf_free(&p->in);
    buf_free(&p->scratch);
    free(p->args);
    free(p->argv);
    p->args = NULL;
    p->argv = NULL;
    p->arg_count = p->arg_cap = p->argv_cap = 0;
}

static uint64_t lim_bulk(const resp_parser *p) {
    return p->max_bulk_len ? p->max_bulk_len : RESP_MAX_BULK_DEFAULT;
}
static size_t lim_args(const resp_parser *p) {
    return p->max_args ? p->max_args : RESP_MAX_ARGS_DEFAULT;
}
static size_t lim_inline(const resp_parser *p) {
    return p->max_inline_len ? p->max_inline_len : RESP_MAX_INLINE_DEFAULT;
}
static uint64_t lim_buffer(const resp_parser *p) {
    return p->max_buffer ? p->max_buffer : RESP_MAX_BUFFER_DEFAULT;
}

static int fail(resp_parser *p, resp_err err, const char *text) {
    p->err = err;
    p->errstr = text;
    return -1;
}

/* Drops the bytes of returned commands, and the whole buffer when it is empty
 * and large. */
static void reclaim(resp_parser *p) {
    if (p->in.off == 0) return;
    if (p->in.off == p->in.len) buf_clear(&p->in);
}

int resp_feed(resp_parser *p, const void *data, size_t len) {
    size_t avail;
    char *dst = resp_space(p, len, &avail);
    if (!dst) return -1;
    memcpy(dst, data, len);
    resp_commit(p, len);
    return 0;
}

char *resp_space(resp_parser *p, size_t want, size_t *avail) {
    if (p->err) return NULL;
    reclaim(p);
    if (buf_reserve(&p->in, want ? want : 1) != 0) {
        fail(p, RESP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    *avail = p->in.cap - p->in.len;
    return p->in.data + p->in.len;
}

void resp_commit(resp_parser *p, size_t n) { p->in.len += n; }

void resp_trim(resp_parser *p, size_t keep) {
    if (buf_used(&p->in) != 0) return;
    if (p->in.cap > keep) buf_free(&p->in);
    if (p->scratch.cap > keep) buf_free(&p->scratch);
}

size_t resp_buffered(const resp_parser *p) { return buf_used(&p->in); }

/*
 * A length line after its type byte: optional '-', 1..19 digits, CRLF; with
 * is_strict, as Redis reads a request (string2ll): no leading zero, no "-0"
 * — the proxy forwards requests as received, so what it takes the server
 * must take too, or the server drops the connection every client shares.
 * Replies are read as hiredis reads them. Returns 1 (value in *v, bytes
 * including CRLF in *used), 0 (incomplete), -1 (malformed or out of int64
 * range).
 */
static int parse_num_line(const char *s, size_t n, bool is_strict, int64_t *v, size_t *used) {
    size_t i = 0;
    bool is_neg = false;
    if (n == 0) return 0;
    if (s[0] == '-') {
        is_neg = true;
        i = 1;
    }
    uint64_t acc = 0;
    size_t digits = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (is_strict && ((digits == 1 && acc == 0) || (digits == 0 && c == '0' && is_neg)))
                return -1;
            uint64_t d = (uint64_t)(c - '0');
            if (acc > (UINT64_C(0x7fffffffffffffff) - d) / 10) return -1;
            acc = acc * 10 + d;
            if (++digits > 19) return -1;
            continue;
        }
        if (c != '\r' || digits == 0) return -1;
        if (i + 1 >= n) return 0;
        if (s[i + 1] != '\n') return -1;
        *v = is_neg ? -(int64_t)acc : (int64_t)acc;
        *used = i + 2;
        return 1;
    }
    return n >= NUM_LINE_MAX ? -1 : 0;
}

static int push_arg(resp_parser *p, size_t off, size_t len) {
    if (p->arg_count == p->arg_cap) {
        size_t cap = p->arg_cap ? p->arg_cap * 2 : 8;
        resp_off *a = realloc(p->args, cap * sizeof *a);
        if (!a) return fail(p, RESP_ERR_NOMEM, "out of memory");
        p->args = a;
        p->arg_cap = cap;
    }
    p->args[p->arg_count++] = (resp_off){off, len};
    return 0;
}

static int emit(resp_parser *p, resp_msg *msg, size_t raw_len, bool is_inline) {
    if (p->argv_cap < p->arg_count) {
        size_t cap = p->argv_cap ? p->argv_cap : 8;
        while (cap < p->arg_count) cap *= 2;
        resp_arg *a = realloc(p->argv, cap * sizeof *a);
        if (!a) return fail(p, RESP_ERR_NOMEM, "out of memory");
        p->argv = a;
        p->argv_cap = cap;
    }
    const char *base = buf_start(&p->in);
    const char *args = p->args_in_scratch ? buf_start(&p->scratch) : base;
    for (size_t i = 0; i < p->arg_count; i++)
        p->argv[i] = (resp_arg){args + p->args[i].off, p->args[i].len};
    p->args_in_scratch = false;
    msg->argc = p->arg_count;
    msg->argv = p->argv;
    msg->raw = base;
    msg->raw_len = raw_len;
    msg->is_inline = is_inline;
    p->in.off += raw_len;
    p->scan = 0;
    p->state = ST_START;
    p->arg_count = 0;
    return 1;
}

static bool inline_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int hex_digit(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/*
 * Splits an inline line into arguments as Redis does (sdssplitargs): on
 * white space, with "double quotes" (escapes \\n \\r \\t \\b \\a \\xHH, and
 * \\<c> for c) and 'single quotes' (only \\' escaped) around arguments that
 * hold spaces or bytes a terminal cannot type. A closing quote must end the
 * argument, and every quote must close: otherwise the request is malformed.
 * The arguments, unquoted, go to p->scratch, so raw stays as received.
 */
static int split_inline(resp_parser *p, const char *line, size_t len) {
    static const char unbalanced[] = "Protocol error: unbalanced quotes in request";
    buf *out = &p->scratch;
    buf_clear(out);
    if (buf_reserve(out, len + 1) != 0) return fail(p, RESP_ERR_NOMEM, "out of memory");
    p->arg_count = 0;
    p->args_in_scratch = true;
    size_t i = 0;
    while (i < len) {
        while (i < len && inline_space(line[i])) i++;
        if (i == len) break;
        size_t start = buf_used(out);
        char quote = 0;
        for (;;) {
            if (i == len) {
                if (quote) return fail(p, RESP_ERR_PROTOCOL, unbalanced);
                break;
            }
            char c = line[i], byte;
            if (quote == '"' && c == '\\' && i + 3 < len && line[i + 1] == 'x' &&
                hex_digit(line[i + 2]) >= 0 && hex_digit(line[i + 3]) >= 0) {
                byte = (char)(hex_digit(line[i + 2]) * 16 + hex_digit(line[i + 3]));
                i += 4;
            } else if (quote == '"' && c == '\\' && i + 1 < len) {
                char e = line[i + 1];
                byte = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t'
                     : e == 'b' ? '\b' : e == 'a' ? '\a' : e;
                i += 2;
            } else if (quote == '\'' && c == '\\' && i + 1 < len && line[i + 1] == '\'') {
                byte = '\'';
                i += 2;
            } else if (quote && c == quote) {
                i++;
                if (i < len && !inline_space(line[i]))
                    return fail(p, RESP_ERR_PROTOCOL, unbalanced);
                break;
            } else if (!quote && inline_space(c)) {
                break;
            } else if (!quote && (c == '"' || c == '\'')) {
                quote = c;
                i++;
                continue;
            } else {
                byte = c;
                i++;
            }
            buf_append(out, &byte, 1); /* within the reserve: the line is longer */
        }
        if (p->arg_count >= lim_args(p))
            return fail(p, RESP_ERR_LIMIT, "Protocol error: too many arguments");
        if (push_arg(p, start, buf_used(out) - start) != 0) return -1;
    }
    return 0;
}

int resp_next(resp_parser *p, resp_msg *msg) {
    if (p->err) return -1;
    for (;;) {
        const char *base = buf_start(&p->in);
        size_t avail = buf_used(&p->in);
        int64_t v;
        size_t used;
        int rc;
        switch (p->state) {
        case ST_START:
            if (avail == 0) return 0;
            if (base[0] != '*') {
                p->state = ST_INLINE;
                p->line_scanned = 0;
                break;
            }
            rc = parse_num_line(base + 1, avail - 1, true, &v, &used);
            /* Waiting costs at most NUM_LINE_MAX bytes. The buffer limit is
             * judged on whole lengths only, so that the verdict (and its
             * message) does not depend on where reads split the stream. */
            if (rc == 0) return 0;
            if (rc < 0 || v < -1)
                return fail(p, RESP_ERR_PROTOCOL, "Protocol error: invalid multibulk length");
            if (v <= 0) { /* "*0" and "*-1": nothing to do, as in redis */
                p->in.off += 1 + used;
                break;
            }
            if ((uint64_t)v > lim_args(p))
                return fail(p, RESP_ERR_LIMIT, "Protocol error: invalid multibulk length");
            p->want = (uint64_t)v;
            p->arg_count = 0;
            p->args_in_scratch = false;
            p->scan = 1 + used;
            p->state = ST_BULK_LEN;
            break;
        case ST_BULK_LEN:
            if (p->scan >= avail) return 0;
            if (base[p->scan] != '$')
                return fail(p, RESP_ERR_PROTOCOL, "Protocol error: expected '$'");
            rc = parse_num_line(base + p->scan + 1, avail - p->scan - 1, true, &v, &used);
            if (rc == 0) return 0; /* as above: scan + NUM_LINE_MAX bytes at most */
            if (rc < 0) return fail(p, RESP_ERR_PROTOCOL, "Protocol error: invalid bulk length");
            if (v < 0 || (uint64_t)v > lim_bulk(p))
                return fail(p, RESP_ERR_LIMIT, "Protocol error: invalid bulk length");
            /* Both terms are far below 2^63, so the sum cannot wrap. */
            if ((uint64_t)p->scan + 1 + used + (uint64_t)v + 2 > lim_buffer(p))
                return fail(p, RESP_ERR_LIMIT, "Protocol error: request too large");
            if (push_arg(p, p->scan + 1 + used, (size_t)v) != 0) return -1;
            p->scan += 1 + used;
            p->state = ST_BULK_DATA;
            break;
        case ST_BULK_DATA: {
            const resp_off *a = &p->args[p->arg_count - 1];
            /* Within max_buffer: checked when the length arrived. */
            if (avail - a->off < a->len + 2) return 0;
            if (base[a->off + a->len] != '\r' || base[a->off + a->len + 1] != '\n')
                return fail(p, RESP_ERR_PROTOCOL,
                            "Protocol error: bulk string not followed by CRLF");
            p->scan = a->off + a->len + 2;
            if (--p->want == 0) return emit(p, msg, p->scan, false);
            p->state = ST_BULK_LEN;
            break;
        }
        case ST_INLINE: {
            size_t limit = lim_inline(p);
            size_t look = avail < limit + 1 ? avail : limit + 1;
            const char *nl = NULL;
            if (look > p->line_scanned)
                nl = memchr(base + p->line_scanned, '\n', look - p->line_scanned);
            if (!nl) {
                if (avail > limit)
                    return fail(p, RESP_ERR_LIMIT, "Protocol error: too big inline request");
                p->line_scanned = avail;
                return 0;
            }
            size_t raw_len = (size_t)(nl - base) + 1;
            size_t line_len = raw_len - 1;
            if (line_len > 0 && base[line_len - 1] == '\r') line_len--;
            if (split_inline(p, base, line_len) != 0) return -1;
            if (p->arg_count == 0) { /* an empty line is skipped */
                p->args_in_scratch = false;
                p->in.off += raw_len;
                p->state = ST_START;
                break;
            }
            return emit(p, msg, raw_len, true);
        }
        }
    }
}

static char fold(char ch) { return (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch); }

bool resp_arg_is(const resp_arg *a, const char *lower) {
    size_t n = strlen(lower);
    if (a->len != n) return false;
    for (size_t i = 0; i < n; i++)
        if (fold(a->ptr[i]) != lower[i]) return false;
    return true;
}

bool resp_arg_int(const resp_arg *a, long long *out) {
    if (a->len == 0 || a->len > 19) return false;
    size_t i = 0;
    bool is_neg = a->ptr[0] == '-';
    if (is_neg) i = 1;
    if (i == a->len) return false;
    long long v = 0;
    for (; i < a->len; i++) {
        if (a->ptr[i] < '0' || a->ptr[i] > '9') return false;
        v = v * 10 + (a->ptr[i] - '0');
    }
    *out = is_neg ? -v : v;
    return true;
}
