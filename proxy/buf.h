/*
 * buf.h - a growable byte buffer: the live bytes are data[off .. len).
 *
 * Errors are sticky: once an allocation fails, is_oom is set and every later
 * append is a no-op, so a caller can append freely and check once, at the
 * point where it would send the bytes (and then drop the connection).
 * An emptied buffer above BUF_KEEP bytes gives its memory back, so a burst
 * does not pin memory for the life of a connection.
 */
#ifndef PROXY_BUF_H
#define PROXY_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUF_KEEP (64u * 1024u)

typedef struct buf {
    char *data;
    size_t off; /* first live byte */
    size_t len; /* end of the live bytes */
    size_t cap;
    bool is_oom;
} buf;

static inline size_t buf_used(const buf *b) { return b->len - b->off; }
/* An empty buffer may have no memory at all: NULL + 0 is undefined in C. */
static inline const char *buf_start(const buf *b) { return b->data ? b->data + b->off : NULL; }

/* Room for at least `extra` more bytes after len; moves live bytes to the front
 * when that avoids growing. Returns 0, or -1 (and sets is_oom). */
int buf_reserve(buf *b, size_t extra);
void buf_append(buf *b, const void *p, size_t n);
void buf_append_str(buf *b, const char *s);
/* Decimal text of v. */
void buf_append_u64(buf *b, uint64_t v);
/* A name as a client sent it, made safe to echo in a one-line reply:
 * printable ASCII but the quote, the rest as '?', cut at 64 bytes ("..."). */
void buf_append_safe(buf *b, const char *s, size_t n);
/* A RESP header: prefix (one of "*$:") then v and CRLF. */
void buf_append_header(buf *b, char prefix, uint64_t v);
/* A RESP bulk string. */
void buf_append_bulk(buf *b, const void *p, size_t n);
/* Drops n live bytes from the front; an emptied buffer shrinks to nothing when
 * it has grown past BUF_KEEP. */
void buf_consume(buf *b, size_t n);
void buf_clear(buf *b);
void buf_free(buf *b);

/* Bytes every buffer of the process holds (their capacities): what the
 * proxy's --max-memory counts. Relaxed; thread-safe. */
uint64_t buf_held_bytes(void);

#endif
