/*
 * resp.h - an incremental parser for Redis requests (RESP2 arrays of bulk
 * strings, and inline commands), with no I/O.
 *
 * Feed it bytes as they arrive (resp_feed, or resp_space + resp_commit to read
 * straight into its buffer), then pull complete commands with resp_next.
 * Incomplete input is not an error. An error is sticky: the stream cannot be
 * resynchronised, so the caller answers with p->errstr and closes.
 *
 * Every length is checked for overflow and against the limits below, which
 * are plain fields (zero means the default), before anything is allocated
 * for it: a client cannot make the parser reserve what it merely announces.
 */
#ifndef PROXY_RESP_H
#define PROXY_RESP_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RESP_MAX_BULK_DEFAULT (512ull * 1024 * 1024)
#define RESP_MAX_ARGS_DEFAULT (1024u * 1024u)
#define RESP_MAX_INLINE_DEFAULT (64u * 1024u)
#define RESP_MAX_BUFFER_DEFAULT (1024ull * 1024 * 1024)

typedef struct resp_arg {
    const char *ptr;
    size_t len;
} resp_arg;

/* One command. Pointers are into the parser's buffers and stay valid until
 * the next resp_next, resp_feed, resp_space or resp_parser_free. An inline
 * command's arguments are unquoted copies, not inside raw. */
typedef struct resp_msg {
    size_t argc;
    const resp_arg *argv;
    const char *raw; /* the command exactly as received */
    size_t raw_len;
    bool is_inline;
} resp_msg;

typedef enum resp_err {
    RESP_ERR_NONE = 0,
    RESP_ERR_PROTOCOL, /* malformed framing */
    RESP_ERR_LIMIT,    /* a length beyond a limit */
    RESP_ERR_NOMEM,
} resp_err;

typedef struct resp_off {
    size_t off, len; /* relative to the start of the command */
} resp_off;

typedef struct resp_parser {
    /* Limits; zero means the default. */
    uint64_t max_bulk_len;  /* bytes of one argument */
    size_t max_args;        /* arguments of one command */
    size_t max_inline_len;  /* bytes of one inline command line */
    uint64_t max_buffer;    /* bytes of one command, framing included */

    resp_err err;
    const char *errstr; /* static text, e.g. "Protocol error: invalid bulk length" */

    /* private */
    buf in;       /* in.off is the start of the command being parsed */
    size_t scan;  /* parse position, relative to in.off */
    int state;
    uint64_t want; /* arguments still to come, or bytes of the current bulk */
    resp_off *args;
    size_t arg_count, arg_cap;
    resp_arg *argv;
    size_t argv_cap;
    size_t line_scanned; /* inline: bytes already searched for a newline */
    buf scratch;         /* inline: the arguments, unquoted */
    bool args_in_scratch;
} resp_parser;

void resp_parser_init(resp_parser *p);
void resp_parser_free(resp_parser *p);
/* Appends bytes. Returns 0, or -1 with a sticky error (out of memory). */
int resp_feed(resp_parser *p, const void *data, size_t len);
/* Room to read into: at least `want` bytes (fewer than asked only on error,
 * then NULL). Call resp_commit with the count actually written. */
char *resp_space(resp_parser *p, size_t want, size_t *avail);
void resp_commit(resp_parser *p, size_t n);
/* 1: *msg holds the next command; 0: need more bytes; -1: error (sticky). */
int resp_next(resp_parser *p, resp_msg *msg);
/* Bytes fed but not yet returned as commands. */
size_t resp_buffered(const resp_parser *p);
/* Between commands (nothing buffered), gives back buffers larger than
 * `keep` bytes, so an idle connection holds little. Invalidates the last
 * resp_msg. */
void resp_trim(resp_parser *p, size_t keep);

/* True when a equals `lower` (ASCII lowercase) in any case. */
bool resp_arg_is(const resp_arg *a, const char *lower);
/* A's decimal integer (optional '-', at most 19 digits) into *out; false
 * when a is not one. */
bool resp_arg_int(const resp_arg *a, long long *out);

#endif
