/*
 * reply.c - the end of each server reply, checked as RESP2 and RESP3.
 *
 * Invariant: between calls, data[0..pos) holds whole values of the reply in
 * progress and `owed` counts the values still to come; a value is counted
 * off when its header is read, and an aggregate adds its elements.
 */
#include "reply.h"

#include <stdbool.h>
#include <string.h>

/* Elements one aggregate header may announce (a map's count is doubled):
 * far above any reply that fits in memory, low enough that owed never wraps. */
#define AGGREGATE_MAX (UINT64_C(1) << 40)

/* The end of the line starting at p[pos] (index of its '\n'), or 0. A line
 * ends at its first CR LF, as hiredis and redis read it: a lone LF inside a
 * status line is part of the line. */
static size_t line_end(const char *p, size_t n, size_t pos) {
    size_t i = pos;
    while (i + 1 < n) {
        const char *cr = memchr(p + i, '\r', n - 1 - i);
        if (!cr) return 0;
        i = (size_t)(cr - p);
        if (p[i + 1] == '\n') return i + 1;
        i++;
    }
    return 0;
}

/* A header's number: s[0..len) is an optional '-' and 1 to 19 digits. */
static bool parse_int(const char *s, size_t len, int64_t *v) {
    size_t i = s[0] == '-' && len > 1 ? 1 : 0;
    if (len == 0 || len - i > 19) return false;
    uint64_t acc = 0;
    for (size_t k = i; k < len; k++) {
        if (s[k] < '0' || s[k] > '9') return false;
        acc = acc * 10 + (uint64_t)(s[k] - '0');
    }
    if (acc > (uint64_t)INT64_MAX) return false;
    *v = i ? -(int64_t)acc : (int64_t)acc;
    return true;
}

static uint64_t max_bulk(const resp_reply_parser *p) {
    return p->max_bulk_len ? p->max_bulk_len : RESP_REPLY_MAX_BULK_DEFAULT;
}

/* One value's header at data[pos], its line ending at nl ('\n'). Returns the
 * values it adds to owed (its elements), or -1 when it is not RESP; a
 * length-prefixed string's header also sets *body (its bytes, -1: null). */
static int64_t header(const resp_reply_parser *p, const char *data, size_t pos, size_t nl,
                      int64_t *body) {
    *body = -1;
    if (nl < pos + 2) return -1; /* "\r\n" alone: no type */
    const char *s = data + pos + 1;
    size_t len = nl - 1 - (pos + 1); /* between the type and CR */
    int64_t v;
    switch (data[pos]) {
    case '+': /* simple string, error, double, big number: any line */
    case '-':
    case ',':
    case '(':
        return 0;
    case ':':
        return parse_int(s, len, &v) ? 0 : -1;
    case '_':
        return len == 0 ? 0 : -1;
    case '#':
        return len == 1 && (s[0] == 't' || s[0] == 'f') ? 0 : -1;
    case '$': /* bulk, blob error, verbatim: a length, then that many bytes */
    case '!':
    case '=':
        if (!parse_int(s, len, &v) || v < -1 || (v >= 0 && (uint64_t)v > max_bulk(p)))
            return -1;
        if (v == -1 && data[pos] != '$') return -1; /* only bulk strings may be null */
        *body = v;
        return 0;
    case '*': /* array, set, push: n values; map: n pairs */
    case '~':
    case '>':
    case '%':
    case '|': /* attribute: n pairs, then the value they describe */
        if (!parse_int(s, len, &v) || v < -1 || (uint64_t)(v < 0 ? 0 : v) > AGGREGATE_MAX)
            return -1;
        if (v < 0) return data[pos] == '*' ? 0 : -1; /* only arrays may be null */
        if (data[pos] == '%') return 2 * v;
        if (data[pos] == '|') return 2 * v + 1;
        return v;
    default:
        return -1;
    }
}

int resp_reply_next(resp_reply_parser *p, const char *data, size_t n, size_t *len) {
    if (p->owed == 0) {
        p->owed = 1;
        p->pos = 0;
    }
    while (p->owed) {
        size_t pos = p->pos;
        if (pos >= n) return 0;
        size_t nl = line_end(data, n, pos);
        if (!nl) return 0;
        int64_t body;
        int64_t adds = header(p, data, pos, nl, &body);
        if (adds < 0) return -1;
        size_t next = nl + 1;
        if (body >= 0) {
            if ((uint64_t)body > n - next || n - next - (size_t)body < 2) return 0;
            if (data[next + body] != '\r' || data[next + body + 1] != '\n') return -1;
            next += (size_t)body + 2;
        }
        p->owed = p->owed - 1 + (uint64_t)adds;
        p->pos = next;
    }
    *len = p->pos;
    p->pos = 0;
    return 1;
}

size_t resp_value_len(const char *p, size_t n) {
    resp_reply_parser r;
    resp_reply_init(&r);
    size_t len = 0;
    return resp_reply_next(&r, p, n, &len) == 1 ? len : 0;
}

bool resp_cursor_next(resp_cursor *c, resp_item *it) {
    static const resp_reply_parser limits = {0};
    if (c->at >= c->n) return false;
    size_t nl = line_end(c->p, c->n, c->at);
    if (!nl) return false;
    int64_t body;
    int64_t adds = header(&limits, c->p, c->at, nl, &body);
    if (adds < 0) return false;
    *it = (resp_item){.type = c->p[c->at], .s = c->p + c->at + 1, .len = nl - 1 - (c->at + 1)};
    size_t next = nl + 1;
    if (body >= 0) {
        if ((uint64_t)body > c->n - next || c->n - next - (size_t)body < 2) return false;
        it->s = c->p + next;
        it->len = (size_t)body;
        next += (size_t)body + 2;
    }
    bool is_aggregate = strchr("*~>%|", it->type) != NULL;
    it->count = is_aggregate ? adds : 0;
    /* A null: "$-1", "*-1" or "_". */
    it->is_null = it->type == '_' || (it->type == '$' && body < 0) ||
                  (it->type == '*' && adds == 0 && it->len == 2 && it->s[0] == '-');
    c->at = next;
    return true;
}

bool resp_cursor_skip(resp_cursor *c) {
    size_t len = c->at < c->n ? resp_value_len(c->p + c->at, c->n - c->at) : 0;
    c->at += len;
    return len > 0;
}
