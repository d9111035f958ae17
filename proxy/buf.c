/*
 * buf.c - the growable byte buffer of buf.h.
 *
 * Invariant: off <= len <= cap, and data is NULL exactly when cap is 0.
 */
#include "buf.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The sum of every buffer's cap, across threads. A relaxed add at each
 * growth and release only: appends that fit cost nothing. */
static _Atomic uint64_t held_bytes;

uint64_t buf_held_bytes(void) { return atomic_load_explicit(&held_bytes, memory_order_relaxed); }

static void held_add(size_t n) { atomic_fetch_add_explicit(&held_bytes, n, memory_order_relaxed); }
static void held_sub(size_t n) { atomic_fetch_sub_explicit(&held_bytes, n, memory_order_relaxed); }

int buf_reserve(buf *b, size_t extra) {
    if (b->is_oom) return -1;
    if (b->cap - b->len >= extra) return 0;
    size_t used = b->len - b->off;
    /* Sliding the live bytes down is cheaper than growing when they are a
     * small part of the buffer; this also keeps a queue from creeping. */
    if (b->off > 0 && b->cap - used >= extra && used <= b->cap / 2) {
        memmove(b->data, b->data + b->off, used);
        b->off = 0;
        b->len = used;
        return 0;
    }
    if (extra > SIZE_MAX / 2 - b->len) {
        b->is_oom = true;
        return -1;
    }
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 512;
    while (cap < want) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->is_oom = true;
        return -1;
    }
    held_add(cap - b->cap);
    b->data = p;
    b->cap = cap;
    return 0;
}

void buf_append(buf *b, const void *p, size_t n) {
    if (n == 0 || buf_reserve(b, n) != 0) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void buf_append_str(buf *b, const char *s) { buf_append(b, s, strlen(s)); }

static size_t u64_text(char *out, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

void buf_append_u64(buf *b, uint64_t v) {
    char tmp[24];
    buf_append(b, tmp, u64_text(tmp, v));
}

void buf_append_safe(buf *b, const char *s, size_t n) {
    size_t limit = n > 64 ? 64 : n;
    for (size_t i = 0; i < limit; i++) {
        char ch = s[i];
        buf_append(b, (ch >= 0x20 && ch < 0x7f && ch != '\'') ? &ch : "?", 1);
    }
    if (n > limit) buf_append_str(b, "...");
}

void buf_append_header(buf *b, char prefix, uint64_t v) {
    char tmp[32];
    tmp[0] = prefix;
    size_t n = 1 + u64_text(tmp + 1, v);
    tmp[n++] = '\r';
    tmp[n++] = '\n';
    buf_append(b, tmp, n);
}

void buf_append_bulk(buf *b, const void *p, size_t n) {
    buf_append_header(b, '$', n);
    if (buf_reserve(b, n + 2) != 0) return;
    if (n) memcpy(b->data + b->len, p, n); /* p may be NULL when n is 0 */
    b->data[b->len + n] = '\r';
    b->data[b->len + n + 1] = '\n';
    b->len += n + 2;
}

void buf_consume(buf *b, size_t n) {
    b->off += n;
    if (b->off < b->len) return;
    b->off = b->len = 0;
    if (b->cap > BUF_KEEP) {
        held_sub(b->cap);
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}

void buf_clear(buf *b) { buf_consume(b, b->len - b->off); }

void buf_free(buf *b) {
    held_sub(b->cap);
    free(b->data);
    *b = (buf){0};
}
