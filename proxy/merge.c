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
 * A command sent to every server: integers added (DBSIZE), +OK when all
 * are (FLUSHALL), or the one reply they all gave (SCRIPT LOAD).
 */
#include "proxy.h"

#include <stdio.h>
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

static void merge_sum(req *r) {
    long long total = 0;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        const char *s = buf_start(b);
        size_t n = buf_used(b);
        long long v = 0;
        bool ok = n >= 4 && s[0] == ':' && !r->frags[f].failed;
        for (size_t i = 1; ok && i < n && s[i] != '\r'; i++) {
            if (s[i] < '0' || s[i] > '9' || v > (1LL << 53)) ok = false;
            v = v * 10 + (s[i] - '0');
        }
        if (!ok) {
            buf_clear(&r->reply);
            if (is_error_reply(b))
                buf_append(&r->reply, s, n);
            else
                buf_append_str(&r->reply, bad_reply);
            return;
        }
        total += v;
    }
    buf_append_header(&r->reply, ':', (uint64_t)total);
}

static void merge_mset(req *r) {
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (buf_used(b) == 5 && memcmp(buf_start(b), "+OK\r\n", 5) == 0) continue;
        if (is_error_reply(b))
            buf_append(&r->reply, buf_start(b), buf_used(b));
        else
            buf_append_str(&r->reply, bad_reply);
        return;
    }
    buf_append_str(&r->reply, "+OK\r\n");
}

/* Every server must have said the same (SCRIPT LOAD: the same sha): that
 * reply; the first error if any; else an error saying they differ. */
static void merge_same(req *r) {
    const buf *first = &r->frags[0].reply;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (is_error_reply(b) || r->frags[f].failed) {
            buf_append(&r->reply, buf_start(b), buf_used(b));
            return;
        }
        if (buf_used(b) != buf_used(first) || memcmp(buf_start(b), buf_start(first),
                                                     buf_used(b)) != 0) {
            buf_append_str(&r->reply, "-ERR the servers of the pool answered differently\r\n");
            return;
        }
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
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10 + (uint64_t)(s[i] - '0');
    if (i == 1 || i + 1 >= n || s[i] != '\r' || s[i + 1] != '\n') return false;
    *count = v;
    *body = i + 2;
    return true;
}

/* Every server's array, one after another (KEYS). */
static void merge_concat(req *r) {
    uint64_t total = 0, count;
    size_t body;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (r->frags[f].failed || !array_head(b, &count, &body)) {
            if (is_error_reply(b))
                buf_append(&r->reply, buf_start(b), buf_used(b));
            else
                buf_append_str(&r->reply, bad_reply);
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
    case REQ_LOCAL:
    case REQ_FORWARD: break;
    }
}
