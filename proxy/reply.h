/*
 * reply.h - where a Redis server's replies end, with no I/O and no depth
 * limit.
 *
 * The proxy passes replies through byte for byte; it only needs to know
 * where each one ends (to match it to its request) and that the bytes are
 * RESP at all (or the connection is out of step). So this reader builds no
 * reply objects: it walks the headers keeping one counter of the values
 * still owed, which makes any nesting depth cost nothing (Debian 12's
 * hiredis 0.14 reader stops at 7 levels, and a Lua script can return more).
 * It reads RESP2 and RESP3 (null, double, boolean, big number, verbatim
 * string, blob error, map, set, attribute, push).
 *
 * Use: feed the whole unconsumed input each time; the parser remembers how
 * far it checked the reply in progress, so a reply arriving in pieces is
 * scanned once. After a complete reply (1), the caller consumes its bytes.
 */
#ifndef PROXY_REPLY_H
#define PROXY_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest bulk string a reply may hold; Redis's own proto-max-bulk-len. */
#define RESP_REPLY_MAX_BULK_DEFAULT (512ull * 1024 * 1024)

typedef struct resp_reply_parser {
    uint64_t max_bulk_len; /* zero means the default */
    /* private */
    uint64_t owed; /* values still to read in the reply in progress */
    size_t pos;    /* bytes of it already checked */
} resp_reply_parser;

static inline void resp_reply_init(resp_reply_parser *p) { *p = (resp_reply_parser){0}; }

/*
 * resp_reply_next - is data[0..n) the start of a complete reply?
 *
 * Returns 1 with its length in *len (the parser is then ready for the next
 * reply), 0 when more bytes are needed, -1 when the bytes are not RESP (the
 * stream cannot be resynchronised). data must begin where the previous
 * complete reply ended and hold at least the bytes given before.
 * Cost: linear in the bytes of the reply, each examined once.
 */
int resp_reply_next(resp_reply_parser *p, const char *data, size_t n, size_t *len);

/*
 * resp_value_len - the length of the first complete value in p[0..n), or 0
 * when it is incomplete or not RESP. One-shot resp_reply_next, e.g. to
 * split an array already read into its elements.
 */
size_t resp_value_len(const char *p, size_t n);

/*
 * Reading the values of a reply (the proxy's own questions to servers and
 * sentinels): a cursor over bytes, one value header per call, elements
 * following their aggregate. Bounds-checked: any bytes are safe.
 */
typedef struct resp_cursor {
    const char *p;
    size_t n;
    size_t at;
} resp_cursor;

typedef struct resp_item {
    char type;      /* '+', '-', ':', '$', '*', '%', '_'... (RESP2 and RESP3) */
    bool is_null;   /* $-1, *-1, _ */
    const char *s;  /* strings and errors: the text; integers: the digits */
    size_t len;
    int64_t count;  /* aggregates: values that follow (a map's pairs count 2) */
} resp_item;

/* The next value header into *it; false at the end or when not RESP. */
bool resp_cursor_next(resp_cursor *c, resp_item *it);
/* Skips the next whole value (an aggregate with its elements); false when
 * there is none. */
bool resp_cursor_skip(resp_cursor *c);

#endif
