/*
 * memcache.h - incremental parsers for the memcached ASCII protocol, with no
 * I/O: requests from clients (mc_parser) and replies from servers
 * (mc_reply_parser).
 *
 * Requests: feed bytes (mc_feed, or mc_space + mc_commit), pull commands with
 * mc_next. A malformed command line is not fatal: it comes back as
 * MC_INVALID with the reply memcached would give (line errors leave the stream
 * in sync). Framing errors (a data block not ended by CRLF, a line over the
 * limit) are sticky: answer p->errstr and close. A storage command whose data
 * block is larger than max_value_len is answered as memcached does, and its
 * data is skipped as it arrives rather than buffered.
 *
 * Replies: the server's bytes stay in the caller's buffer (the proxy forwards
 * them as they are); mc_reply_next says how long the next complete reply is,
 * given what kind of request it answers.
 */
#ifndef PROXY_MEMCACHE_H
#define PROXY_MEMCACHE_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_KEY_MAX 250u
/* memcached refuses a meta command line of more tokens than this, whatever
 * they are ("CLIENT_ERROR options flags too long"). */
#define MC_META_MAX_TOKENS 19u
/*
 * memcached 1.6 closes a connection whose command line passes 2048 bytes
 * before its end has arrived, unless it is a get or gets: a long gat would
 * reset the connection every client shares. So gat and gats go in lines of
 * at most this many bytes, several to a server when the keys need it.
 */
#define MC_GAT_LINE_MAX 2048u
#define MC_MAX_LINE_DEFAULT (1024u * 1024u)
#define MC_MAX_KEYS_DEFAULT (1024u * 1024u)
#define MC_MAX_VALUE_DEFAULT (512ull * 1024 * 1024)
#define MC_MAX_BUFFER_DEFAULT (1024ull * 1024 * 1024)

typedef enum mc_cmd {
    MC_INVALID = 0, /* answer msg.error */
    MC_GET,
    MC_GETS,
    MC_GAT,
    MC_GATS,
    MC_SET,
    MC_ADD,
    MC_REPLACE,
    MC_APPEND,
    MC_PREPEND,
    MC_CAS,
    MC_DELETE,
    MC_INCR,
    MC_DECR,
    MC_TOUCH,
    MC_VERSION,
    MC_QUIT,
    MC_FLUSH_ALL, /* every server */
    MC_VERBOSITY, /* every server */
    MC_STATS,     /* every server, or refused (args: its arguments) */
    MC_MG,        /* meta commands: a key, then flags (args) */
    MC_MS,        /* ... a key, a data length, flags, then a data block */
    MC_MD,
    MC_MA,
    MC_ME,
    MC_MN, /* no key: the pipeline's end marker */
} mc_cmd;

typedef struct mc_key {
    const char *ptr;
    size_t len;
} mc_key;

/* One command; pointers valid until the next mc_feed, mc_space or free. */
typedef struct mc_msg {
    mc_cmd cmd;
    const char *raw; /* command line and data block, exactly as received */
    size_t raw_len;
    const mc_key *keys;
    size_t key_count;
    const char *exptime; /* gat, gats: the expiry token */
    size_t exptime_len;
    const char *data; /* storage commands: the data block, without CRLF */
    size_t data_len;
    bool noreply;
    /* The command line up to its last token before "noreply", so the proxy
     * can forward it without the flag (and swallow the reply itself). */
    size_t line_keep_len;
    /* Meta commands: the tokens after the key (ms: after the data length),
     * at most MC_META_MAX_TOKENS - 2 of them; stats: its arguments. */
    const mc_key *args;
    size_t arg_count;
    const char *error; /* MC_INVALID: the reply line, without CRLF (an error,
                        * or "END" for a gat without keys) */
} mc_msg;

/* m as a server must read it without its "noreply" (the proxy keeps that
 * for itself, so every request sent gets a reply): the line up to before
 * it, then the data block if any. Appended to out (check out->is_oom). */
void mc_without_noreply(const mc_msg *m, buf *out);

typedef enum mc_err { MC_ERR_NONE = 0, MC_ERR_PROTOCOL, MC_ERR_LIMIT, MC_ERR_NOMEM } mc_err;

typedef struct mc_parser {
    /* Limits; zero means the default. */
    size_t max_line;        /* bytes of one command line */
    size_t max_keys;        /* keys of one get */
    uint64_t max_value_len; /* bytes of one data block */
    size_t max_key_len;     /* at most MC_KEY_MAX (also the default) */

    mc_err err;
    const char *errstr;

    /* private */
    buf in;
    uint64_t skip;       /* bytes of an oversized data block still to drop */
    size_t line_scanned;
    mc_key *keys;
    size_t key_cap;
} mc_parser;

void mc_parser_init(mc_parser *p);
void mc_parser_free(mc_parser *p);
int mc_feed(mc_parser *p, const void *data, size_t len);
char *mc_space(mc_parser *p, size_t want, size_t *avail);
void mc_commit(mc_parser *p, size_t n);
/* 1: *msg is the next command; 0: need more bytes; -1: error (sticky). */
int mc_next(mc_parser *p, mc_msg *msg);
size_t mc_buffered(const mc_parser *p);
/* Between commands (nothing buffered), gives back a buffer larger than
 * `keep` bytes. Invalidates the last mc_msg. */
void mc_trim(mc_parser *p, size_t keep);

/* True for commands whose reply is a run of VALUE blocks ended by END. */
static inline bool mc_cmd_is_retrieval(mc_cmd c) {
    return c == MC_GET || c == MC_GETS || c == MC_GAT || c == MC_GATS;
}

/*
 * mc_base64_decode - a meta command's base64 key ("b" flag) as memcached
 * decodes it, so the proxy places it where the plain key goes: bytes outside
 * the alphabet are skipped, the rest must be a non-empty multiple of four,
 * and decoding stops after the first group with padding. Returns the decoded
 * length (at most len * 3 / 4, which out must hold), or 0 where memcached
 * answers "error decoding key".
 */
size_t mc_base64_decode(const char *src, size_t len, char *out);

/* The first flag of a meta command that starts with `flag`, and how many
 * flags do. */
const mc_key *mc_meta_flag(const mc_msg *m, char flag, size_t *count);
/* The key a meta command is placed by (*key, its length returned): decoded
 * into `decoded` (MC_KEY_MAX bytes) when the b flag says it is base64, so
 * it goes where the same key sent plain goes; else as sent. */
size_t mc_meta_key(const mc_msg *m, char *decoded, const char **key);

/* What a server's reply to a request looks like. */
typedef enum mc_reply_kind {
    MC_REPLY_LINE = 0,   /* one line */
    MC_REPLY_VALUES = 1, /* get/gets/gat/gats: VALUE blocks, then END, or one error line */
    MC_REPLY_META,       /* mg/ms/md/ma/me: one line; "VA <size> ..." adds a data block */
    MC_REPLY_META_MN,    /* a meta reply, or none, then the MN of an mn sent after it */
    MC_REPLY_STATS,      /* STAT lines, then END, or one error line */
} mc_reply_kind;

typedef struct mc_reply_parser {
    size_t scan;    /* validated bytes of the reply in progress */
    uint64_t need;  /* bytes of a VALUE data block (plus CRLF) still to come */
    bool in_data;
    bool has_meta;  /* MC_REPLY_META_MN: the meta reply is in, the MN is next */
} mc_reply_parser;

/*
 * mc_reply_next - is data[0..len) the start of a complete reply of the given
 * kind? Returns 1 with the reply's length in *reply_len (then reset with
 * mc_reply_reset), 0 when more bytes are needed (progress is kept in p; data
 * must start at the same reply), -1 when the bytes cannot be a reply.
 */
int mc_reply_next(mc_reply_parser *p, const char *data, size_t len, mc_reply_kind kind,
                  size_t *reply_len);
static inline void mc_reply_reset(mc_reply_parser *p) { *p = (mc_reply_parser){0}; }

/*
 * mc_value_next - walk the VALUE blocks of a complete retrieval reply:
 * from *off, the next block's key and its whole length (line and data).
 * Returns 1, or 0 at END, an error line or the end of the bytes.
 */
int mc_value_next(const char *data, size_t len, size_t *off, mc_key *key, size_t *block_len);

#endif
