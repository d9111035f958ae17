/*
 * merge.c - one reply from the replies to a split request's fragments.
 *
 * MGET: the elements go back in the order of the keys; a fragment that failed
 * (server down, timeout, an error reply) turns into an error element for each
 * of its keys, and the other keys still get their values (Envoy does the same;
 * nutcracker fails the whole MGET). DEL/UNLINK/EXISTS/TOUCH: the integers are
 * added; MSET: +OK when every part is. Both report the first error otherwise.
 * memcached get/gets/gat/gats: the VALUE blocks in key order, then END; a
 * failed fragment's keys are misses (there is no per-key error in that
 * protocol), and when every fragment failed the first error is the reply.
 * A command sent to every server (fanout.c): integers added (DBSIZE), +OK
 * when all are (FLUSHALL), the one reply they all gave (SCRIPT LOAD), arrays
 * joined (KEYS), 1 where all said 1 (SCRIPT EXISTS), +OK when one did it
 * (SCRIPT KILL), counts added per name (PUBSUB NUMSUB), one of their keys
 * (RANDOMKEY), the newest entries (SLOWLOG GET), INFO's sections merged by
 * one table of rules (info_rules). There, an error from a server is the
 * reply: as it is when every server said it (what one redis-server says),
 * else naming the server; a reply of the wrong shape is an error naming
 * the server, never a guess.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char bad_reply[] = "-ERR unexpected reply from server\r\n";

/* The first line of a reply, if it is an error line ("-..." with CRLF). */
static bool is_error_reply(const buf *b) {
    return buf_used(b) >= 3 && buf_start(b)[0] == '-';
}

static void merge_mget(req *r) {
    /* Each fragment: position after its array header, or error. */
    for (uint32_t f = 0; f < r->frag_count; f++) {
        frag *fr = &r->frags[f];
        const char *s = buf_start(&fr->reply);
        size_t n = buf_used(&fr->reply);
        fr->cursor = 0;
        if (fr->failed || n < 4 || s[0] != '*') {
            fr->failed = true;
            continue;
        }
        const char *nl = memchr(s, '\n', n);
        if (!nl) {
            fr->failed = true;
            continue;
        }
        fr->cursor = (size_t)(nl - s) + 1;
    }
    buf_append_header(&r->reply, '*', r->key_count);
    for (uint32_t i = 0; i < r->key_count; i++) {
        frag *fr = &r->frags[r->key_frag[i]];
        const char *s = buf_start(&fr->reply);
        size_t n = buf_used(&fr->reply);
        if (!fr->failed) {
            size_t len = fr->cursor < n ? resp_value_len(s + fr->cursor, n - fr->cursor) : 0;
            if (len) {
                buf_append(&r->reply, s + fr->cursor, len);
                fr->cursor += len;
                continue;
            }
            fr->failed = true; /* fewer elements than keys */
            fr->cursor = 0;
        }
        if (is_error_reply(&fr->reply)) {
            const char *nl = memchr(s, '\n', n);
            buf_append(&r->reply, s, nl ? (size_t)(nl - s) + 1 : n);
        } else {
            buf_append_str(&r->reply, bad_reply);
        }
    }
}

/* ---- replies from every server ------------------------------------------ */

/* The server that answered fragment f of a request sent to every server,
 * or NULL (a split request, whose fragments are not one per server). */
static const char *frag_server(const req *r, uint32_t f) {
    return r->all_pool && f < r->all_pool->server_count ? r->all_pool->backends[f].cf->name
                                                        : NULL;
}

static bool frag_erred(const req *r, uint32_t f) {
    return r->frags[f].failed || is_error_reply(&r->frags[f].reply);
}

/* Fragment f's reply is not what the command answers (another server
 * version, a confused server): the client is told, with the server. */
static void reply_unexpected(req *r, uint32_t f) {
    const char *name = frag_server(r, f);
    buf_clear(&r->reply);
    if (!name) {
        buf_append_str(&r->reply, bad_reply);
        return;
    }
    buf_append_str(&r->reply, "-ERR unexpected reply from server ");
    buf_append_str(&r->reply, name);
    buf_append_str(&r->reply, "\r\n");
}

/* Whether s[0..n) has `server NAME` in it. */
static bool names_server(const char *s, size_t n, const char *name) {
    size_t len = strlen(name);
    for (size_t i = 0; i + 7 + len <= n; i++)
        if (memcmp(s + i, "server ", 7) == 0 && memcmp(s + i + 7, name, len) == 0) return true;
    return false;
}

/* Fragment f's error line as the client's reply, its server named after the
 * error code (-CODE server NAME: message), unless the line names it already
 * ("server X is down" does; "Connection timed out" and the server's own
 * errors do not). The code stays first, so clients still match on it. */
static void reply_named_error(req *r, uint32_t f) {
    const buf *b = &r->frags[f].reply;
    const char *s = buf_start(b), *name = frag_server(r, f);
    size_t n = buf_used(b);
    if (!is_error_reply(b)) {
        reply_unexpected(r, f);
        return;
    }
    buf_clear(&r->reply);
    size_t line = n >= 2 && s[n - 2] == '\r' ? n - 2 : n;
    if (!name || names_server(s, line, name)) {
        buf_append(&r->reply, s, n);
        return;
    }
    const char *space = memchr(s, ' ', line);
    size_t code = space ? (size_t)(space - s) : line;
    buf_append(&r->reply, s, code);
    buf_append_str(&r->reply, " server ");
    buf_append_str(&r->reply, name);
    buf_append_str(&r->reply, ":");
    buf_append(&r->reply, s + code, line - code);
    buf_append_str(&r->reply, "\r\n");
}

/* Whether every fragment's reply is e's, byte for byte. */
static bool all_said(const req *r, const buf *e) {
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (buf_used(b) != buf_used(e) || memcmp(buf_start(b), buf_start(e), buf_used(e)) != 0)
            return false;
    }
    return true;
}

/*
 * When a fragment failed or answered an error, that is the reply: if every
 * server answered the same error, that error word for word, as one
 * redis-server would say it (a bad argument gets the same error from each);
 * else the first one, naming its server, since the others did not fail.
 * A split request's first error goes as it is. Returns false when none
 * erred.
 */
static bool merge_errors(req *r) {
    uint32_t first = UINT32_MAX;
    for (uint32_t f = 0; f < r->frag_count && first == UINT32_MAX; f++)
        if (frag_erred(r, f)) first = f;
    if (first == UINT32_MAX) return false;
    const buf *e = &r->frags[first].reply;
    if (!r->all_pool || all_said(r, e)) {
        buf_clear(&r->reply);
        buf_append(&r->reply, buf_start(e), buf_used(e));
    } else {
        reply_named_error(r, first);
    }
    return true;
}

/* An integer reply, ":n\r\n" (n may be negative). */
static bool value_int(const char *s, size_t n, long long *out) {
    size_t i = n >= 4 && s[0] == ':' && s[1] == '-' ? 2 : 1;
    if (n < 4 || s[0] != ':' || s[n - 2] != '\r' || i >= n - 2 || n - 2 - i > 18) return false;
    long long v = 0;
    for (; i < n - 2; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = s[1] == '-' ? -v : v;
    return true;
}

/* The value at b[*at], as an integer; *at moves past it. */
static bool element_int(const buf *b, size_t *at, long long *out) {
    size_t len = *at < buf_used(b) ? resp_value_len(buf_start(b) + *at, buf_used(b) - *at) : 0;
    if (!len || !value_int(buf_start(b) + *at, len, out)) return false;
    *at += len;
    return true;
}

/* The value at b[*at], whole; *at moves past it. 0 when there is none. */
static size_t element(const buf *b, size_t *at) {
    size_t len = *at < buf_used(b) ? resp_value_len(buf_start(b) + *at, buf_used(b) - *at) : 0;
    *at += len;
    return len;
}

/* DBSIZE, SLOWLOG LEN (every server), DEL, EXISTS... (split): added. */
static void merge_sum(req *r) {
    if (merge_errors(r)) return;
    long long total = 0, v;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (!value_int(buf_start(b), buf_used(b), &v) || v < 0 || v > (1LL << 53)) {
            reply_unexpected(r, f);
            return;
        }
        total += v;
    }
    buf_append_header(&r->reply, ':', (uint64_t)total);
}

/* MSET (split), FLUSHALL, CONFIG SET... (every server): +OK when all are. */
static void merge_mset(req *r) {
    if (merge_errors(r)) return;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (buf_used(b) != 5 || memcmp(buf_start(b), "+OK\r\n", 5) != 0) {
            reply_unexpected(r, f);
            return;
        }
    }
    buf_append_str(&r->reply, "+OK\r\n");
}

/* Every server must have said the same (SCRIPT LOAD: the same sha;
 * FUNCTION LOAD: the library's name): that reply, else an error naming the
 * first server that said otherwise. */
static void merge_same(req *r) {
    if (merge_errors(r)) return;
    const buf *first = &r->frags[0].reply;
    for (uint32_t f = 1; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (buf_used(b) == buf_used(first) &&
            memcmp(buf_start(b), buf_start(first), buf_used(b)) == 0)
            continue;
        const char *name = frag_server(r, f), *name0 = frag_server(r, 0);
        buf_append_str(&r->reply, "-ERR the servers of the pool answered differently: server ");
        buf_append_str(&r->reply, name ? name : "?");
        buf_append_str(&r->reply, " did not answer what server ");
        buf_append_str(&r->reply, name0 ? name0 : "?");
        buf_append_str(&r->reply, " did\r\n");
        return;
    }
    buf_append(&r->reply, buf_start(first), buf_used(first));
}

/* The element count of an array reply and where its elements start, or
 * false when b is not an array. */
static bool array_head(const buf *b, uint64_t *count, size_t *body) {
    const char *s = buf_start(b);
    size_t n = buf_used(b);
    if (n < 4 || s[0] != '*') return false;
    uint64_t v = 0;
    size_t i = 1;
    for (; i < n && i < 12 && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10 + (uint64_t)(s[i] - '0');
    if (i == 1 || i + 1 >= n || s[i] != '\r' || s[i + 1] != '\n') return false;
    *count = v;
    *body = i + 2;
    return true;
}

/* Every server's array, one after another (KEYS, PUBSUB CHANNELS). */
static void merge_concat(req *r) {
    if (merge_errors(r)) return;
    uint64_t total = 0, count;
    size_t body;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        if (!array_head(&r->frags[f].reply, &count, &body)) {
            reply_unexpected(r, f);
            return;
        }
        total += count;
    }
    buf_append_header(&r->reply, '*', total);
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        array_head(b, &count, &body);
        buf_append(&r->reply, buf_start(b) + body, buf_used(b) - body);
    }
}

/* Each fragment's array header read, with the same element count in all:
 * that count, fragments' cursors at their first element. False after
 * replying when a reply is not such an array. */
static bool arrays_alike(req *r, uint64_t *count) {
    for (uint32_t f = 0; f < r->frag_count; f++) {
        uint64_t n;
        size_t body;
        if (!array_head(&r->frags[f].reply, &n, &body) || (f > 0 && n != *count)) {
            reply_unexpected(r, f);
            return false;
        }
        *count = n;
        r->frags[f].cursor = body;
    }
    return true;
}

/* SCRIPT EXISTS sha...: a script is there only where every server has it
 * (EVALSHA may go to any of them). */
static void merge_and(req *r) {
    uint64_t count = 0;
    if (merge_errors(r) || !arrays_alike(r, &count)) return;
    buf_append_header(&r->reply, '*', count);
    for (uint64_t i = 0; i < count; i++) {
        bool is_all = true;
        for (uint32_t f = 0; f < r->frag_count; f++) {
            long long v;
            if (!element_int(&r->frags[f].reply, &r->frags[f].cursor, &v)) {
                reply_unexpected(r, f);
                return;
            }
            is_all &= v == 1;
        }
        buf_append_str(&r->reply, is_all ? ":1\r\n" : ":0\r\n");
    }
}

/*
 * SCRIPT KILL, FUNCTION KILL: +OK when a server killed its script (the
 * others answer NOTBUSY). When none did, the reply says why: NOTBUSY when
 * that is all they said, else the first other error (UNKILLABLE, a server
 * down...), naming its server.
 */
static void merge_any(req *r) {
    uint32_t other = UINT32_MAX;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (!r->frags[f].failed && buf_used(b) == 5 && memcmp(buf_start(b), "+OK\r\n", 5) == 0) {
            buf_append_str(&r->reply, "+OK\r\n");
            return;
        }
        if (!frag_erred(r, f)) {
            reply_unexpected(r, f);
            return;
        }
        if (other == UINT32_MAX && (buf_used(b) < 8 || memcmp(buf_start(b), "-NOTBUSY", 8) != 0))
            other = f;
    }
    if (other == UINT32_MAX)
        merge_errors(r);
    else if (all_said(r, &r->frags[other].reply))
        buf_append(&r->reply, buf_start(&r->frags[other].reply), buf_used(&r->frags[other].reply));
    else
        reply_named_error(r, other);
}

/* PUBSUB NUMSUB / SHARDNUMSUB ch...: [ch, n, ...] from each server, in the
 * order asked; the counts of each channel added. */
static void merge_pairs(req *r) {
    uint64_t count = 0;
    if (merge_errors(r) || !arrays_alike(r, &count)) return;
    if (count % 2) {
        reply_unexpected(r, 0);
        return;
    }
    buf_append_header(&r->reply, '*', count);
    const buf *b0 = &r->frags[0].reply;
    for (uint64_t i = 0; i < count; i += 2) {
        size_t at0 = r->frags[0].cursor, name_len = element(b0, &(size_t){at0});
        long long total = 0;
        for (uint32_t f = 0; f < r->frag_count; f++) {
            frag *fr = &r->frags[f];
            const char *name = buf_start(&fr->reply) + fr->cursor;
            long long v;
            if (element(&fr->reply, &fr->cursor) != name_len || name_len == 0 || name[0] != '$' ||
                memcmp(name, buf_start(b0) + at0, name_len) != 0 ||
                !element_int(&fr->reply, &fr->cursor, &v)) {
                reply_unexpected(r, f);
                return;
            }
            total += v;
        }
        buf_append(&r->reply, buf_start(b0) + at0, name_len);
        buf_append(&r->reply, ":", 1);
        char text[24];
        snprintf(text, sizeof text, "%lld\r\n", total);
        buf_append_str(&r->reply, text);
    }
}

static uint64_t worker_random(worker *w) {
    uint64_t x = w->rng; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return x;
}

/* RANDOMKEY: one of the keys the servers drew, each server's as likely;
 * nil only when every server is empty. */
static void merge_random(req *r) {
    if (merge_errors(r)) return;
    uint32_t hits = 0;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (buf_used(b) < 4 || buf_start(b)[0] != '$' ||
            resp_value_len(buf_start(b), buf_used(b)) != buf_used(b)) {
            reply_unexpected(r, f);
            return;
        }
        hits += buf_start(b)[1] != '-';
    }
    if (hits == 0) {
        buf_append_str(&r->reply, "$-1\r\n");
        return;
    }
    uint32_t pick = (uint32_t)(worker_random(r->w) % hits);
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (buf_start(b)[1] == '-' || pick--) continue;
        buf_append(&r->reply, buf_start(b), buf_used(b));
        return;
    }
}

/* One SLOWLOG entry, [id, time, duration, args, addr, name], of server f. */
typedef struct slow_entry {
    const char *p;
    size_t len;
    long long time;
    uint32_t server, index;
} slow_entry;

static int slow_newer(const void *a, const void *b) {
    const slow_entry *x = a, *y = b;
    if (x->time != y->time) return x->time > y->time ? -1 : 1;
    if (x->server != y->server) return x->server < y->server ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * SLOWLOG GET [count]: every server's entries, newest first (by their
 * unix time; ties keep each server's order, then the servers'), as many as
 * asked. Entry ids are each server's own.
 */
static void merge_slowlog(req *r) {
    uint64_t total = 0, count;
    size_t body;
    if (merge_errors(r)) return;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        if (!array_head(&r->frags[f].reply, &count, &body)) {
            reply_unexpected(r, f);
            return;
        }
        r->frags[f].cursor = body;
        total += count;
    }
    slow_entry *e = total ? malloc(total * sizeof *e) : NULL;
    if (total && !e) {
        buf_append_str(&r->reply, "-ERR out of memory\r\n");
        return;
    }
    size_t k = 0;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        frag *fr = &r->frags[f];
        array_head(&fr->reply, &count, &body);
        for (uint32_t i = 0; i < count; i++) {
            /* [id, time, ...]: the time is the entry's second element. */
            size_t at = fr->cursor, inner, len = element(&fr->reply, &fr->cursor);
            uint64_t fields;
            buf one = {.data = (char *)buf_start(&fr->reply) + at, .len = len};
            long long id;
            if (!len || !array_head(&one, &fields, &inner) || fields < 2 ||
                !element_int(&one, &inner, &id) || !element_int(&one, &inner, &e[k].time)) {
                free(e);
                reply_unexpected(r, f);
                return;
            }
            e[k].p = buf_start(&fr->reply) + at;
            e[k].len = len;
            e[k].server = f;
            e[k++].index = i;
        }
    }
    if (total) qsort(e, total, sizeof *e, slow_newer);
    uint64_t keep = r->limit < 0 || (uint64_t)r->limit > total ? total : (uint64_t)r->limit;
    buf_append_header(&r->reply, '*', keep);
    for (uint64_t i = 0; i < keep; i++) buf_append(&r->reply, e[i].p, e[i].len);
    free(e);
}

/*
 * SCAN's reply from server k, [cursor, keys]: the client's cursor names the
 * server too, (server cursor << SCAN_SERVER_BITS) | k, and a server that is
 * done hands over to the next one (k + 1, cursor 0); 0 after the last.
 */
static void merge_scan(req *r) {
    const buf *b = &r->one.reply;
    const char *s = buf_start(b);
    size_t n = buf_used(b), body, len;
    uint64_t count, cursor = 0;
    if (r->one.failed || !array_head(b, &count, &body) || count != 2 ||
        (len = resp_value_len(s + body, n - body)) < 4 || s[body] != '$') {
        buf_append(&r->reply, s, n); /* an error (or not SCAN's reply): as it is */
        return;
    }
    const char *digits = memchr(s + body, '\n', len);
    for (const char *d = digits ? digits + 1 : s + body + len; d < s + body + len - 2; d++) {
        if (*d < '0' || *d > '9' || cursor > (UINT64_MAX >> SCAN_SERVER_BITS) / 10) {
            buf_append_str(&r->reply, "-ERR a server's SCAN cursor is beyond the proxy's "
                                      "range\r\n");
            return;
        }
        cursor = cursor * 10 + (uint64_t)(*d - '0');
    }
    uint64_t next = cursor ? cursor << SCAN_SERVER_BITS | r->scan_server
                    : r->scan_server + 1 < r->scan_servers ? r->scan_server + 1
                                                          : 0;
    char text[24];
    int k = snprintf(text, sizeof text, "%llu", (unsigned long long)next);
    buf_append_str(&r->reply, "*2\r\n");
    buf_append_bulk(&r->reply, text, (size_t)k);
    buf_append(&r->reply, s + body + len, n - body - len);
}

static bool mc_is_values(const buf *b) {
    const char *s = buf_start(b);
    size_t n = buf_used(b);
    return (n >= 6 && memcmp(s, "VALUE ", 6) == 0) || (n == 5 && memcmp(s, "END\r\n", 5) == 0);
}

static void merge_mc_get(req *r) {
    uint32_t usable = 0;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        frag *fr = &r->frags[f];
        fr->cursor = 0;
        if (fr->failed || !mc_is_values(&fr->reply))
            fr->failed = true;
        else
            usable++;
    }
    if (usable == 0) { /* nothing to return: pass the first error on */
        const buf *b = &r->frags[0].reply;
        if (buf_used(b) > 0)
            buf_append(&r->reply, buf_start(b), buf_used(b));
        else
            buf_append_str(&r->reply, "SERVER_ERROR unexpected reply from server\r\n");
        return;
    }
    const char *keys = buf_start(&r->keys);
    for (uint32_t i = 0; i < r->key_count; i++) {
        frag *fr = &r->frags[r->key_frag[i]];
        if (fr->failed) continue;
        /* A server returns hits in the order asked, so the next block of this
         * fragment is either this key's or a later key's. */
        const char *s = buf_start(&fr->reply);
        size_t off = fr->cursor, block;
        mc_key key;
        if (!mc_value_next(s, buf_used(&fr->reply), &off, &key, &block)) continue;
        size_t klen = r->key_off[i + 1] - r->key_off[i];
        if (key.len != klen || memcmp(key.ptr, keys + r->key_off[i], klen) != 0) continue;
        buf_append(&r->reply, s + fr->cursor, block);
        fr->cursor = off;
    }
    buf_append_str(&r->reply, "END\r\n");
}

/* A non-negative integer reply (":n\r\n"). */
static bool reply_integer(const buf *b, long long *out) {
    const char *s = buf_start(b);
    size_t n = buf_used(b);
    long long v = 0;
    bool ok = n >= 4 && s[0] == ':' && s[n - 2] == '\r';
    for (size_t i = 1; ok && i < n - 2; i++) {
        ok = s[i] >= '0' && s[i] <= '9' && v < (1LL << 53);
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return ok;
}

/* SUBSCRIBE and its kin: the confirmations were written when the command
 * was routed (pubsub.c); a server's error takes their place. */
static void merge_prebuilt(req *r) {
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (!r->frags[f].failed && !is_error_reply(b)) continue;
        buf_free(&r->reply);
        buf_append(&r->reply, buf_start(b), buf_used(b));
        return;
    }
}

/* SELECT n, checked by a server: the client's database is n if it said OK. */
static void merge_select(req *r) {
    const buf *b = &r->one.reply;
    if (buf_used(b) == 5 && memcmp(buf_start(b), "+OK\r\n", 5) == 0) r->c->db = r->select_db;
    buf_append(&r->reply, buf_start(b), buf_used(b));
}

/* WAIT: the least count over the servers; the first error if any. */
static void merge_min(req *r) {
    long long least = -1;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        long long v;
        if (r->frags[f].failed || is_error_reply(b)) {
            buf_append(&r->reply, buf_start(b), buf_used(b));
            return;
        }
        if (!reply_integer(b, &v)) {
            buf_append_str(&r->reply, bad_reply);
            return;
        }
        if (least < 0 || v < least) least = v;
    }
    buf_append_header(&r->reply, ':', (uint64_t)(least < 0 ? 0 : least));
}

/* ---- INFO ------------------------------------------------------------------ */

/*
 * How INFO's fields merge over the servers: the first row whose name
 * matches a field's wins ("x*": names starting with x, "*x": ending with
 * x). A field no row names is added up when every server's value is a
 * number (a 0/1 state then counts the servers in it), merged element by
 * element when it is a k=v,... list (cmdstat_*, errorstat_*, dbN, each k by
 * these same rules), and else the first server's. The rows name k's too.
 */
typedef enum info_rule {
    INFO_AUTO,     /* no row: as above */
    INFO_DROP,     /* left out */
    INFO_FIRST,    /* the first server's */
    INFO_MIN,      /* the least */
    INFO_MAX,      /* the largest */
    INFO_HUMAN,    /* NAME_human: the merged NAME, written as redis-server writes sizes */
    INFO_ALL_OK,   /* "ok" when every server says ok, else the first server's other word */
    INFO_PER_CALL, /* usec / calls of the merged k=v list */
    INFO_TTL_MEAN, /* the servers' avg_ttl weighted by their expires */
} info_rule;

static const struct {
    const char *name;
    info_rule rule;
} info_rules[] = {
    /* One server's identity, or a ratio of one server's figures: nothing
     * the pool as a whole has. */
    {"process_id", INFO_DROP}, {"run_id", INFO_DROP}, {"tcp_port", INFO_DROP},
    {"executable", INFO_DROP}, {"config_file", INFO_DROP}, {"lru_clock", INFO_DROP},
    {"master_*", INFO_DROP}, {"slave*", INFO_DROP}, {"repl_*", INFO_DROP},
    {"second_repl_offset", INFO_DROP}, {"*_ratio", INFO_DROP}, {"*_perc", INFO_DROP},
    {"latency_percentiles_usec_*", INFO_DROP},
    /* The same on every server of a pool (build, configuration), even
     * where it reads as a number. */
    {"redis_git_sha1", INFO_FIRST}, {"redis_git_dirty", INFO_FIRST},
    {"redis_build_id", INFO_FIRST}, {"arch_bits", INFO_FIRST}, {"hz", INFO_FIRST},
    {"configured_hz", INFO_FIRST}, {"maxclients", INFO_FIRST}, {"io_threads_active", INFO_FIRST},
    {"total_system_memory", INFO_FIRST}, {"module", INFO_FIRST},
    /* Ages and high-water marks: the pool's are its youngest server's and
     * its largest. */
    {"uptime_in_*", INFO_MIN}, {"rdb_last_save_time", INFO_MIN},
    {"server_time_usec", INFO_MAX}, {"client_recent_max_*", INFO_MAX},
    {"latest_fork_usec", INFO_MAX}, {"*_time_sec", INFO_MAX},
    {"*_status", INFO_ALL_OK}, {"*_human", INFO_HUMAN},
    {"usec_per_call", INFO_PER_CALL}, {"avg_ttl", INFO_TTL_MEAN},
};

static info_rule info_rule_of(const char *key, size_t len) {
    for (size_t i = 0; i < sizeof info_rules / sizeof info_rules[0]; i++) {
        const char *name = info_rules[i].name;
        size_t n = strlen(name);
        bool is_match = name[0] == '*'   ? len >= n - 1 && memcmp(key + len - (n - 1), name + 1, n - 1) == 0
                        : name[n - 1] == '*' ? len >= n - 1 && memcmp(key, name, n - 1) == 0
                                             : len == n && memcmp(key, name, n) == 0;
        if (is_match) return info_rules[i].rule;
    }
    return INFO_AUTO;
}

/* A piece of one server's reply; p NULL: the server has no such field. */
typedef struct info_val {
    const char *p;
    size_t len;
} info_val;

/* A number as INFO writes them: -?digits(.digits)?. */
typedef struct info_num {
    bool is_int;
    long long i;
    double d;
    int frac; /* digits after the point */
} info_num;

static bool info_number(info_val v, info_num *out) {
    size_t at = v.len && v.p[0] == '-' ? 1 : 0, digits = 0, point = 0; /* 0: none */
    *out = (info_num){.is_int = true};
    for (size_t k = at; k < v.len; k++) {
        if (v.p[k] == '.' && !point && digits) {
            point = k;
        } else if (v.p[k] >= '0' && v.p[k] <= '9') {
            digits++;
        } else {
            return false;
        }
    }
    if (!digits || (point && point + 1 == v.len) || digits > 18) return false;
    char text[24];
    memcpy(text, v.p, v.len);
    text[v.len] = '\0';
    out->d = strtod(text, NULL);
    out->is_int = point == 0;
    out->i = out->is_int ? strtoll(text, NULL, 10) : 0;
    out->frac = point ? (int)(v.len - point - 1) : 0;
    return true;
}

/* vals[0 .. count) merged as numbers by rule (INFO_AUTO: added), into
 * *out; false when a server's value is not a number, or none has one. */
static bool info_numbers(const info_val *vals, size_t count, info_rule rule, info_num *out) {
    bool any = false;
    *out = (info_num){.is_int = true};
    for (size_t k = 0; k < count; k++) {
        info_num n;
        if (!vals[k].p) continue;
        if (!info_number(vals[k], &n)) return false;
        if (!any) {
            *out = n;
            any = true;
            continue;
        }
        out->is_int &= n.is_int;
        if (n.frac > out->frac) out->frac = n.frac;
        if (rule == INFO_MIN || rule == INFO_MAX) {
            bool is_less = n.is_int && out->is_int ? n.i < out->i : n.d < out->d;
            if ((rule == INFO_MIN) == is_less) {
                out->i = n.i;
                out->d = n.d;
            }
        } else {
            out->i += n.i;
            out->d += n.d;
        }
    }
    return any;
}

static void append_number(buf *b, const info_num *n) {
    char text[64];
    if (n->is_int)
        snprintf(text, sizeof text, "%lld", n->i);
    else
        snprintf(text, sizeof text, "%.*f", n->frac, n->d);
    buf_append_str(b, text);
}

/* Bytes as redis-server's bytesToHuman writes them (used_memory_human). */
static void append_human(buf *b, double v) {
    static const char units[] = "KMGTP";
    char text[48];
    if (v < 1024) {
        snprintf(text, sizeof text, "%.0fB", v);
    } else {
        int u = 0;
        double scaled = v / 1024;
        while (u < 4 && scaled >= 1024) {
            scaled /= 1024;
            u++;
        }
        snprintf(text, sizeof text, "%.2f%c", scaled, units[u]);
    }
    buf_append_str(b, text);
}

static info_val first_val(const info_val *vals, size_t count) {
    for (size_t k = 0; k < count; k++)
        if (vals[k].p) return vals[k];
    return (info_val){0};
}

/* In a k=v,... list, the value of k (p NULL when absent). */
static info_val list_get(info_val list, const char *key, size_t key_len) {
    for (size_t at = 0; list.p && at < list.len;) {
        const char *comma = memchr(list.p + at, ',', list.len - at);
        size_t end = comma ? (size_t)(comma - list.p) : list.len;
        const char *eq = memchr(list.p + at, '=', end - at);
        if (eq && (size_t)(eq - list.p) - at == key_len && memcmp(list.p + at, key, key_len) == 0)
            return (info_val){eq + 1, (size_t)(list.p + end - eq - 1)};
        at = end + 1;
    }
    return (info_val){0};
}

/* Sub-value k of each server's list into subs; the servers that have it. */
static size_t list_gather(const info_val *vals, size_t count, const char *key, size_t key_len,
                          info_val *subs) {
    size_t found = 0;
    for (size_t k = 0; k < count; k++) {
        subs[k] = vals[k].p ? list_get(vals[k], key, key_len) : (info_val){0};
        found += subs[k].p != NULL;
    }
    return found;
}

/* A k=v,... list merged k by k, in the first server's order; subs is
 * scratch room for `count` values. */
static void append_list(buf *b, const info_val *vals, size_t count, info_val *subs) {
    info_val first = first_val(vals, count);
    for (size_t at = 0; at < first.len;) {
        const char *comma = memchr(first.p + at, ',', first.len - at);
        size_t end = comma ? (size_t)(comma - first.p) : first.len;
        const char *eq = memchr(first.p + at, '=', end - at);
        size_t key_len = eq ? (size_t)(eq - first.p) - at : end - at;
        const char *key = first.p + at;
        if (at) buf_append(b, ",", 1);
        buf_append(b, key, key_len);
        at = end + 1;
        if (!eq) continue;
        buf_append(b, "=", 1);
        info_rule rule = info_rule_of(key, key_len);
        info_num n, m;
        if (rule == INFO_PER_CALL) {
            list_gather(vals, count, "usec", 4, subs);
            bool has_usec = info_numbers(subs, count, INFO_AUTO, &n);
            list_gather(vals, count, "calls", 5, subs);
            if (has_usec && info_numbers(subs, count, INFO_AUTO, &m)) {
                char text[48];
                snprintf(text, sizeof text, "%.2f", m.d > 0 ? n.d / m.d : 0.0);
                buf_append_str(b, text);
                continue;
            }
            rule = INFO_FIRST;
        } else if (rule == INFO_TTL_MEAN) {
            /* Each server's mean stands for its keys with a TTL. */
            double weighted = 0, expires = 0;
            bool is_ok = true;
            for (size_t k = 0; k < count && is_ok; k++) {
                info_val ttl = vals[k].p ? list_get(vals[k], key, key_len) : (info_val){0};
                info_val exp = vals[k].p ? list_get(vals[k], "expires", 7) : (info_val){0};
                if (!ttl.p) continue;
                is_ok = exp.p && info_number(ttl, &n) && info_number(exp, &m);
                weighted += is_ok ? n.d * m.d : 0;
                expires += is_ok ? m.d : 0;
            }
            if (is_ok) {
                char text[48];
                snprintf(text, sizeof text, "%lld", (long long)(expires > 0 ? weighted / expires : 0));
                buf_append_str(b, text);
                continue;
            }
            rule = INFO_FIRST;
        }
        list_gather(vals, count, key, key_len, subs);
        if (rule != INFO_FIRST && info_numbers(subs, count, rule, &n)) {
            append_number(b, &n);
        } else {
            info_val v = first_val(subs, count);
            buf_append(b, v.p, v.len);
        }
    }
}

/*
 * The servers' INFO texts, gathered as sections of fields: each field is a
 * (section, name) pair in the order it first appears, with each server's
 * value of it.
 */
typedef struct info_field {
    uint32_t section;
    const char *key;
    size_t key_len;
} info_field;

typedef struct info_set {
    size_t servers;
    info_val *sections; /* their names ("Server"; empty: lines before any header) */
    size_t section_count, section_cap;
    info_field *fields;
    size_t field_count, field_cap;
    uint32_t *slots; /* open addressing: field index + 1, or 0 */
    size_t slot_mask;
    info_val *vals; /* field i, server k: vals[i * servers + k] */
    bool is_oom;
} info_set;

static bool grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return true;
    size_t cap2 = *cap ? *cap * 2 : 16;
    while (cap2 < need) cap2 *= 2;
    void *q = realloc(*p, cap2 * size);
    if (!q) return false;
    *p = q;
    *cap = cap2;
    return true;
}

static size_t info_section(info_set *s, const char *name, size_t len) {
    for (size_t i = 0; i < s->section_count; i++)
        if (s->sections[i].len == len && memcmp(s->sections[i].p, name, len) == 0) return i;
    if (!grow((void **)&s->sections, &s->section_cap, s->section_count + 1, sizeof *s->sections)) {
        s->is_oom = true;
        return 0;
    }
    s->sections[s->section_count] = (info_val){name, len};
    return s->section_count++;
}

/* The field's index, added when `add` (SIZE_MAX: absent, or no room). */
static size_t info_find(info_set *s, size_t section, const char *key, size_t len, bool add) {
    uint32_t h = 2166136261u ^ (uint32_t)section;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 16777619u;
    for (size_t at = h & s->slot_mask;; at = (at + 1) & s->slot_mask) {
        uint32_t slot = s->slots[at];
        if (!slot) {
            if (!add || !grow((void **)&s->fields, &s->field_cap, s->field_count + 1,
                              sizeof *s->fields)) {
                s->is_oom |= add;
                return SIZE_MAX;
            }
            s->fields[s->field_count] = (info_field){(uint32_t)section, key, len};
            s->slots[at] = (uint32_t)++s->field_count;
            return s->field_count - 1;
        }
        const info_field *f = &s->fields[slot - 1];
        if (f->section == section && f->key_len == len && memcmp(f->key, key, len) == 0)
            return slot - 1;
    }
}

/*
 * One server's INFO text, line by line: "# Section" starts a section,
 * "name:value" is a field; anything else is passed over. Without vals the
 * fields are gathered; with vals, server k's values are filed.
 */
static void info_read(info_set *s, info_val text, size_t k, bool has_vals) {
    size_t section = info_section(s, "", 0);
    for (size_t at = 0; at < text.len && !s->is_oom;) {
        const char *nl = memchr(text.p + at, '\n', text.len - at);
        size_t end = nl ? (size_t)(nl - text.p) : text.len;
        const char *line = text.p + at;
        size_t len = end - at - (end > at && text.p[end - 1] == '\r');
        at = end + 1;
        const char *colon = memchr(line, ':', len);
        if (len >= 2 && line[0] == '#' && line[1] == ' ') {
            section = info_section(s, line + 2, len - 2);
        } else if (colon) {
            size_t key_len = (size_t)(colon - line);
            size_t i = info_find(s, section, line, key_len, !has_vals);
            if (has_vals && i != SIZE_MAX)
                s->vals[i * s->servers + k] = (info_val){colon + 1, len - key_len - 1};
        }
    }
}

/* The text of a bulk string reply, or false. */
static bool bulk_text(const buf *b, info_val *text) {
    const char *s = buf_start(b);
    size_t n = buf_used(b);
    if (n < 5 || s[0] != '$' || resp_value_len(s, n) != n || s[1] == '-') return false;
    const char *nl = memchr(s, '\n', n);
    *text = (info_val){nl + 1, n - (size_t)(nl + 1 - s) - 2};
    return true;
}

/* dbN by N, as redis-server lists its Keyspace. */
static long long db_number(const info_field *f) {
    long long n = 0;
    for (size_t i = 2; i < f->key_len && i < 12; i++) n = n * 10 + (f->key[i] - '0');
    return n;
}

/* Field i's merged value when it is a number, by its rule. */
static bool info_merged_number(const info_set *s, size_t i, info_num *n) {
    const info_val *vals = &s->vals[i * s->servers];
    info_rule rule = info_rule_of(s->fields[i].key, s->fields[i].key_len);
    if (rule == INFO_FIRST) return info_number(first_val(vals, s->servers), n);
    return (rule == INFO_AUTO || rule == INFO_MIN || rule == INFO_MAX) &&
           info_numbers(vals, s->servers, rule, n);
}

/* Field i's merged value into b; false when it is left out. */
static bool info_value(info_set *s, size_t i, buf *b, info_val *subs) {
    const info_field *f = &s->fields[i];
    const info_val *vals = &s->vals[i * s->servers];
    info_rule rule = info_rule_of(f->key, f->key_len);
    info_val first = first_val(vals, s->servers);
    info_num n;
    bool is_list = true;
    switch (rule) {
    case INFO_DROP:
        return false;
    case INFO_HUMAN: {
        size_t base = info_find(s, f->section, f->key, f->key_len - strlen("_human"), false);
        if (base != SIZE_MAX && info_merged_number(s, base, &n)) {
            append_human(b, n.d);
            return true;
        }
        break;
    }
    case INFO_ALL_OK:
        for (size_t k = 0; k < s->servers; k++)
            if (vals[k].p && (vals[k].len != 2 || memcmp(vals[k].p, "ok", 2) != 0)) {
                buf_append(b, vals[k].p, vals[k].len);
                return true;
            }
        break;
    case INFO_AUTO:
    case INFO_MIN:
    case INFO_MAX:
    case INFO_PER_CALL:
    case INFO_TTL_MEAN:
        if (info_numbers(vals, s->servers, rule, &n)) {
            append_number(b, &n);
            return true;
        }
        for (size_t k = 0; k < s->servers; k++)
            is_list &= !vals[k].p || memchr(vals[k].p, '=', vals[k].len) != NULL;
        if (rule == INFO_AUTO && is_list) {
            append_list(b, vals, s->servers, subs);
            return true;
        }
        break;
    case INFO_FIRST:
        break;
    }
    buf_append(b, first.p, first.len);
    return true;
}

static void info_free(info_set *s) {
    free(s->sections);
    free(s->fields);
    free(s->slots);
    free(s->vals);
}

/* Every server's INFO text merged into out; false when out of memory. */
static bool info_merge(req *r, const info_val *texts, buf *out) {
    info_set s = {.servers = r->frag_count};
    size_t lines = 0;
    for (size_t k = 0; k < s.servers; k++)
        for (size_t i = 0; i < texts[k].len; i++) lines += texts[k].p[i] == '\n';
    size_t slot_count = 64;
    while (slot_count < 2 * lines + 2) slot_count *= 2;
    s.slots = calloc(slot_count, sizeof *s.slots);
    s.slot_mask = slot_count - 1;
    s.is_oom = !s.slots;
    for (size_t k = 0; k < s.servers && !s.is_oom; k++) info_read(&s, texts[k], k, false);
    if (!s.is_oom && s.field_count) {
        s.vals = calloc(s.field_count * s.servers, sizeof *s.vals);
        s.is_oom = !s.vals;
    }
    for (size_t k = 0; k < s.servers && !s.is_oom && s.vals; k++) info_read(&s, texts[k], k, true);
    size_t *order = s.is_oom ? NULL : malloc((s.field_count + 1) * sizeof *order);
    info_val *subs = s.is_oom ? NULL : malloc(s.servers * sizeof *subs);
    if (!order || !subs) s.is_oom = true;
    for (size_t sec = 0; sec < s.section_count && !s.is_oom; sec++) {
        size_t count = 0;
        for (size_t i = 0; i < s.field_count; i++)
            if (s.fields[i].section == sec) order[count++] = i;
        if (s.sections[sec].len == 0 && count == 0) continue;
        if (s.sections[sec].len == 8 && memcmp(s.sections[sec].p, "Keyspace", 8) == 0)
            for (size_t i = 1; i < count; i++)
                for (size_t j = i; j > 0 && db_number(&s.fields[order[j - 1]]) >
                                            db_number(&s.fields[order[j]]); j--) {
                    size_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        if (buf_used(out)) buf_append(out, "\r\n", 2);
        if (s.sections[sec].len) {
            buf_append(out, "# ", 2);
            buf_append(out, s.sections[sec].p, s.sections[sec].len);
            buf_append(out, "\r\n", 2);
        }
        for (size_t j = 0; j < count; j++) {
            const info_field *f = &s.fields[order[j]];
            size_t before = buf_used(out);
            buf_append(out, f->key, f->key_len);
            buf_append(out, ":", 1);
            if (!info_value(&s, order[j], out, subs)) {
                out->len = out->off + before; /* left out */
                continue;
            }
            buf_append(out, "\r\n", 2);
        }
    }
    free(order);
    free(subs);
    bool is_ok = !s.is_oom && !out->is_oom;
    info_free(&s);
    return is_ok;
}

/*
 * INFO: r->reply holds the proxy's sections (fanout.c), which come first;
 * then the servers' sections, merged by info_rules. The reply is one bulk
 * string, as redis-server's.
 */
static void merge_info(req *r) {
    buf own = r->reply, text = {0};
    r->reply = (buf){0};
    info_val *texts = malloc(r->frag_count * sizeof *texts);
    if (!texts) {
        buf_append_str(&r->reply, "-ERR out of memory\r\n");
    } else if (!merge_errors(r)) {
        uint32_t f = 0;
        while (f < r->frag_count && bulk_text(&r->frags[f].reply, &texts[f])) f++;
        if (f < r->frag_count) {
            reply_unexpected(r, f);
        } else if (!info_merge(r, texts, &text)) {
            buf_append_str(&r->reply, "-ERR out of memory\r\n");
        } else {
            /* A blank line between sections, as within the servers'. */
            bool has_both = buf_used(&own) && buf_used(&text);
            buf_append_header(&r->reply, '$', buf_used(&own) + has_both * 2 + buf_used(&text));
            buf_append(&r->reply, buf_start(&own), buf_used(&own));
            if (has_both) buf_append(&r->reply, "\r\n", 2);
            buf_append(&r->reply, buf_start(&text), buf_used(&text));
            buf_append(&r->reply, "\r\n", 2);
        }
    }
    free(texts);
    buf_free(&text);
    buf_free(&own);
}

void merge_reply(req *r) {
    switch (r->kind) {
    case REQ_PREBUILT: merge_prebuilt(r); break;
    case REQ_SELECT: merge_select(r); break;
    case REQ_MIN: merge_min(r); break;
    case REQ_MGET: merge_mget(r); break;
    case REQ_SUM: merge_sum(r); break;
    case REQ_MSET: merge_mset(r); break;
    case REQ_MC_GET: merge_mc_get(r); break;
    case REQ_MC_SAME:
    case REQ_MC_STATS:
    case REQ_MC_QUIET: mc_merge_reply(r); break;
    case REQ_SAME: merge_same(r); break;
    case REQ_CONCAT: merge_concat(r); break;
    case REQ_SCAN: merge_scan(r); break;
    case REQ_AND: merge_and(r); break;
    case REQ_ANY: merge_any(r); break;
    case REQ_PAIRS: merge_pairs(r); break;
    case REQ_INFO: merge_info(r); break;
    case REQ_RANDOM: merge_random(r); break;
    case REQ_SLOWLOG: merge_slowlog(r); break;
    case REQ_LOCAL:
    case REQ_FORWARD: break;
    }
}
