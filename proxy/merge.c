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
        while (f < r->frag_count && info_bulk_text(&r->frags[f].reply, &texts[f])) f++;
        if (f < r->frag_count) {
            reply_unexpected(r, f);
        } else if (!info_merge(r->frag_count, texts, &text)) {
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
    case REQ_MC_QUIET:
    case REQ_MC_ALLSYNC:
    case REQ_MC_FAILOVER: mc_merge_reply(r); break;
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
