/*
 * memcache.c - the memcached ASCII parsers of memcache.h.
 *
 * Invariant (requests): in.off is the first byte of the command being parsed;
 * a returned command is skipped by moving in.off only, and the bytes are
 * reclaimed on the next feed. While `skip` is non-zero the parser is dropping
 * an oversized data block and sees nothing else.
 */
#include "memcache.h"

#include <stdlib.h>
#include <string.h>


/* Longest reply line we expect from a server (VALUE lines are short). */
#define REPLY_LINE_MAX (64u * 1024u)

void mc_parser_init(mc_parser *p) { memset(p, 0, sizeof *p); }

void mc_parser_free(mc_parser *p) {
    buf_free(&p->in);
    free(p->keys);
    p->keys = NULL;
    p->key_cap = 0;
}

static size_t lim_line(const mc_parser *p) { return p->max_line ? p->max_line : MC_MAX_LINE_DEFAULT; }
static size_t lim_keys(const mc_parser *p) { return p->max_keys ? p->max_keys : MC_MAX_KEYS_DEFAULT; }
static uint64_t lim_value(const mc_parser *p) {
    return p->max_value_len ? p->max_value_len : MC_MAX_VALUE_DEFAULT;
}
static size_t lim_key(const mc_parser *p) {
    return p->max_key_len && p->max_key_len < MC_KEY_MAX ? p->max_key_len : MC_KEY_MAX;
}

static int fail(mc_parser *p, mc_err err, const char *text) {
    p->err = err;
    p->errstr = text;
    return -1;
}

int mc_feed(mc_parser *p, const void *data, size_t len) {
    size_t avail;
    char *dst = mc_space(p, len, &avail);
    if (!dst) return -1;
    memcpy(dst, data, len);
    mc_commit(p, len);
    return 0;
}

char *mc_space(mc_parser *p, size_t want, size_t *avail) {
    if (p->err) return NULL;
    if (p->in.off > 0 && p->in.off == p->in.len) buf_clear(&p->in);
    if (buf_reserve(&p->in, want ? want : 1) != 0) {
        fail(p, MC_ERR_NOMEM, "SERVER_ERROR out of memory");
        return NULL;
    }
    *avail = p->in.cap - p->in.len;
    return p->in.data + p->in.len;
}

void mc_commit(mc_parser *p, size_t n) { p->in.len += n; }

void mc_trim(mc_parser *p, size_t keep) {
    if (buf_used(&p->in) == 0 && p->in.cap > keep) buf_free(&p->in);
}

size_t mc_buffered(const mc_parser *p) { return buf_used(&p->in); }

/* Unsigned decimal, all of the token, at most max. */
static bool parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out) {
    if (n == 0 || n > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (v > max) return false;
    *out = v;
    return true;
}

/* A signed 32-bit decimal (expiry times may be negative: "expire now"). */
static bool valid_i32(const char *s, size_t n) {
    uint64_t v;
    if (n > 0 && s[0] == '-') return parse_u64(s + 1, n - 1, UINT64_C(0x80000000), &v);
    return parse_u64(s, n, UINT64_C(0x7fffffff), &v);
}

static bool tok_is(const mc_key *t, const char *s) {
    size_t n = strlen(s);
    return t->len == n && memcmp(t->ptr, s, n) == 0;
}

/* Splits a line on spaces into p->keys; runs of spaces count as one.
 * Returns 1 when there are more than max_tokens (the first max_tokens are
 * in p->keys, *count says so). */
static int tokenize(mc_parser *p, const char *line, size_t len, size_t max_tokens,
                    size_t *count) {
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && line[i] == ' ') i++;
        if (i == len) break;
        size_t start = i;
        while (i < len && line[i] != ' ') i++;
        if (n == max_tokens) {
            *count = n;
            return 1;
        }
        if (n == p->key_cap) {
            size_t cap = p->key_cap ? p->key_cap * 2 : 16;
            mc_key *k = realloc(p->keys, cap * sizeof *k);
            if (!k) return fail(p, MC_ERR_NOMEM, "SERVER_ERROR out of memory");
            p->keys = k;
            p->key_cap = cap;
        }
        p->keys[n++] = (mc_key){line + start, i - start};
    }
    *count = n;
    return 0;
}

typedef struct cmd_name {
    const char *name;
    mc_cmd cmd;
} cmd_name;

static const cmd_name commands[] = {
    {"get", MC_GET},         {"gets", MC_GETS},       {"gat", MC_GAT},     {"gats", MC_GATS},
    {"set", MC_SET},         {"add", MC_ADD},         {"replace", MC_REPLACE},
    {"append", MC_APPEND},   {"prepend", MC_PREPEND}, {"cas", MC_CAS},     {"delete", MC_DELETE},
    {"incr", MC_INCR},       {"decr", MC_DECR},       {"touch", MC_TOUCH}, {"version", MC_VERSION},
    {"quit", MC_QUIT},       {"flush_all", MC_FLUSH_ALL}, {"verbosity", MC_VERBOSITY},
    {"stats", MC_STATS},     {"mg", MC_MG},           {"ms", MC_MS},       {"md", MC_MD},
    {"ma", MC_MA},           {"me", MC_ME},           {"mn", MC_MN},
};

/* memcached commands the proxy knows but does not route: they change or
 * read one server's settings, or hold its connection. */
static const char *const unsupported[] = {
    "shutdown", "cache_memlimit", "slabs", "lru_crawler", "lru", "watch", "misbehave",
    "debugtime", "extstore",
};

static mc_cmd lookup_cmd(const mc_key *t, bool *is_known) {
    *is_known = true;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (tok_is(t, commands[i].name)) return commands[i].cmd;
    *is_known = false;
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (tok_is(t, unsupported[i])) *is_known = true;
    return MC_INVALID;
}

static bool is_storage(mc_cmd c) {
    return c == MC_SET || c == MC_ADD || c == MC_REPLACE || c == MC_APPEND || c == MC_PREPEND ||
           c == MC_CAS;
}

static bool is_meta(mc_cmd c) {
    return c == MC_MG || c == MC_MS || c == MC_MD || c == MC_MA || c == MC_ME || c == MC_MN;
}

/* Commands for which memcached reads a final "noreply". */
static bool takes_noreply(mc_cmd c) {
    return is_storage(c) || c == MC_DELETE || c == MC_INCR || c == MC_DECR || c == MC_TOUCH ||
           c == MC_FLUSH_ALL || c == MC_VERBOSITY;
}

/* Commands with a data block after the line. */
static bool has_data(mc_cmd c) { return is_storage(c) || c == MC_MS; }

static const char bad_format[] = "CLIENT_ERROR bad command line format";

/* Emits an MC_INVALID for the line; `skip` bytes after it are dropped. */
static int emit_invalid(mc_parser *p, mc_msg *msg, size_t raw_len, const char *error,
                        uint64_t skip) {
    memset(msg, 0, sizeof *msg);
    msg->cmd = MC_INVALID;
    msg->raw = buf_start(&p->in);
    msg->raw_len = raw_len;
    msg->error = error;
    p->in.off += raw_len;
    p->skip = skip;
    p->line_scanned = 0;
    return 1;
}

/* The tokens of one command line: t[0] is the command, t[1..n); `args`
 * leaves out a final "noreply". */
typedef struct mc_line {
    const mc_key *t;
    size_t n, args;
} mc_line;

/* get/gets <key>*, gat/gats <exptime> <key>*. Returns NULL, or the error. */
static const char *parse_retrieval(const mc_parser *p, mc_cmd cmd, const mc_line *l,
                                   mc_msg *msg) {
    const mc_key *t = l->t;
    size_t n = l->n, first = (cmd == MC_GAT || cmd == MC_GATS) ? 2 : 1;
    if (n <= first) {
        /* memcached: "get" alone is an error; "gat <exptime>" alone reads
         * the expiry, then finds nothing to get */
        if (first == 1 || n == 1) return "ERROR";
        return valid_i32(t[1].ptr, t[1].len) ? "END" : "CLIENT_ERROR invalid exptime argument";
    }
    if (n - first > lim_keys(p)) return "CLIENT_ERROR too many keys";
    if (first == 2) {
        if (!valid_i32(t[1].ptr, t[1].len)) return "CLIENT_ERROR invalid exptime argument";
        msg->exptime = t[1].ptr;
        msg->exptime_len = t[1].len;
    }
    for (size_t i = first; i < n; i++)
        if (t[i].len > lim_key(p)) return bad_format;
    msg->keys = t + first;
    msg->key_count = n - first;
    return NULL;
}

/* set/add/replace/append/prepend <key> <flags> <exptime> <bytes>, cas ...
 * <cas>. *data_needed: the data block's bytes with its line end; *skip_bad:
 * what to drop after a bad line (memcached swallows the data too). */
static const char *parse_storage(const mc_parser *p, mc_cmd cmd, const mc_line *l,
                                 uint64_t *data_needed, uint64_t *skip_bad) {
    const mc_key *t = l->t;
    uint64_t v, bytes;
    /* memcached ignores a token after <bytes> (or <cas>) that is not
     * "noreply"; so do we, and forward it as it is. */
    size_t want = cmd == MC_CAS ? 6 : 5;
    if (l->n != want && l->n != want + 1) return "ERROR"; /* no such command that long */
    if (!parse_u64(t[4].ptr, t[4].len, UINT64_C(0x7ffffffd), &bytes)) return bad_format;
    bool ok = t[1].len <= lim_key(p) && parse_u64(t[2].ptr, t[2].len, UINT32_MAX, &v) &&
              valid_i32(t[3].ptr, t[3].len) &&
              (cmd != MC_CAS || parse_u64(t[5].ptr, t[5].len, UINT64_MAX, &v));
    if (!ok || bytes > lim_value(p)) {
        *skip_bad = bytes + 2;
        return ok ? "SERVER_ERROR object too large for cache" : bad_format;
    }
    *data_needed = bytes + 2;
    return NULL;
}

/* delete <key> [0], incr/decr <key> <delta>, touch <key> <exptime>. */
static const char *parse_one_key(const mc_parser *p, mc_cmd cmd, const mc_line *l) {
    const mc_key *t = l->t;
    uint64_t v;
    if (cmd == MC_DELETE) {
        /* The 0 is an old, still accepted, time. */
        if (l->args < 2) return "ERROR";
        if (l->args > 3 || (l->args == 3 && !tok_is(&t[2], "0")))
            return "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
        return t[1].len > lim_key(p) ? bad_format : NULL;
    }
    if (l->args != 3 || t[1].len > lim_key(p)) return "ERROR";
    if (cmd == MC_TOUCH)
        return valid_i32(t[2].ptr, t[2].len) ? NULL : "CLIENT_ERROR invalid exptime argument";
    return parse_u64(t[2].ptr, t[2].len, UINT64_MAX, &v)
               ? NULL
               : "CLIENT_ERROR invalid numeric delta argument";
}

/* ms's data length as memcached reads it (a signed decimal that strtol
 * takes whole, then 0 .. INT_MAX - 2). */
static bool parse_meta_len(const mc_key *t, uint64_t *bytes) {
    const char *s = t->ptr;
    size_t n = t->len;
    bool is_negative = n > 0 && s[0] == '-';
    if (n > 0 && (s[0] == '+' || s[0] == '-')) s++, n--;
    if (n == 0) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > 0x7fffffffu) v = UINT64_C(0x80000000); /* stays too large */
    }
    if (is_negative && v != 0) return false;
    if (v > 0x7ffffffdu) return false;
    *bytes = v;
    return true;
}

/*
 * mg/md/ma/me <key> <flag>*, ms <key> <datalen> <flag>*, mn. Only what the
 * proxy needs is checked here, with memcached's reply and in memcached's
 * order: a key to route by, the token count (so the q flag can be taken
 * out without changing what the server would say), and ms's data length
 * (so its data block is framed). Flags are the server's to judge.
 * `overflow`: the line has more tokens than l holds.
 */
static const char *parse_meta(const mc_parser *p, mc_cmd cmd, const mc_line *l, bool overflow,
                              mc_msg *msg, uint64_t *data_needed, uint64_t *skip_bad) {
    const mc_key *t = l->t;
    size_t n = l->n;
    bool is_too_long = overflow || n > MC_META_MAX_TOKENS;
    if (cmd == MC_MN) return NULL; /* memcached ignores its arguments */
    if (n < 2) return cmd == MC_ME ? bad_format : "ERROR";
    bool is_key_ok = t[1].len <= lim_key(p);
    if (cmd == MC_MS) {
        uint64_t bytes = 0;
        bool has_len = n >= 3 && parse_meta_len(&t[2], &bytes);
        /* memcached reads no data block after these errors, and would run
         * it as a command; when its length is known the proxy drops it, as
         * for a classic set with a bad key. */
        const char *error = !is_key_ok || n == 2 ? bad_format
                            : is_too_long        ? "CLIENT_ERROR options flags too long"
                            : !has_len           ? bad_format
                            : bytes > lim_value(p) ? "SERVER_ERROR object too large for cache"
                                                   : NULL;
        if (error) {
            *skip_bad = has_len ? bytes + 2 : 0;
            return error;
        }
        *data_needed = bytes + 2;
        msg->args = t + 3;
        msg->arg_count = n - 3;
    } else {
        if (!is_key_ok) return bad_format;
        if (is_too_long && cmd != MC_ME)
            return cmd == MC_MG ? "CLIENT_ERROR options flags are too long"
                                : "CLIENT_ERROR options flags too long";
        msg->args = t + 2;
        msg->arg_count = n - 2; /* me: only its first one counts */
    }
    msg->keys = t + 1;
    msg->key_count = 1;
    return NULL;
}

/* The command's own syntax; NULL when it is well formed. */
static const char *parse_command(const mc_parser *p, mc_cmd cmd, const mc_line *l, mc_msg *msg,
                                 uint64_t *data_needed, uint64_t *skip_bad) {
    switch (cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        return parse_retrieval(p, cmd, l, msg);
    case MC_SET:
    case MC_ADD:
    case MC_REPLACE:
    case MC_APPEND:
    case MC_PREPEND:
    case MC_CAS:
    case MC_DELETE:
    case MC_INCR:
    case MC_DECR:
    case MC_TOUCH: {
        const char *error = is_storage(cmd) ? parse_storage(p, cmd, l, data_needed, skip_bad)
                                            : parse_one_key(p, cmd, l);
        if (!error) {
            msg->keys = l->t + 1;
            msg->key_count = 1;
        }
        return error;
    }
    case MC_FLUSH_ALL: /* the servers read the delay */
        return l->n <= 3 ? NULL : "ERROR";
    case MC_VERBOSITY:
        return l->n == 2 || l->n == 3 ? NULL : "ERROR";
    case MC_STATS:
        msg->args = l->t + 1;
        msg->arg_count = l->n - 1;
        return NULL;
    case MC_MG:
    case MC_MS:
    case MC_MD:
    case MC_MA:
    case MC_ME:
    case MC_MN:
        return NULL; /* parse_meta */
    case MC_VERSION:
    case MC_QUIT:
    case MC_INVALID:
        return NULL; /* memcached ignores any further tokens */
    }
    return NULL;
}

/*
 * Parses one complete line (without its line end). Returns 1 with *msg filled
 * (for storage commands *msg is complete only when the data block is there:
 * *data_needed says how many bytes must follow the line), or -1.
 */
static int parse_line(mc_parser *p, const char *line, size_t len, mc_msg *msg,
                      uint64_t *data_needed, uint64_t *skip_bad) {
    *data_needed = 0;
    *skip_bad = 0;
    memset(msg, 0, sizeof *msg);
    msg->cmd = MC_INVALID;
    size_t n = 0;
    /* Enough tokens for a get of max_keys keys, and never too few for the
     * longest other command (a meta command may have MC_META_MAX_TOKENS),
     * so a small max_keys cannot turn another command into "too many
     * keys". */
    size_t max_tokens = lim_keys(p) + 2 > MC_META_MAX_TOKENS + 1 ? lim_keys(p) + 2
                                                                 : MC_META_MAX_TOKENS + 1;
    int rc = tokenize(p, line, len, max_tokens, &n);
    if (rc < 0) return -1;
    if (n == 0) {
        msg->error = "ERROR";
        return 1;
    }
    const mc_key *t = p->keys;
    bool is_known;
    mc_cmd cmd = lookup_cmd(&t[0], &is_known);
    /* More tokens than were kept: too many for a get, too long for a meta
     * command (parse_meta says so), too many for flush_all and verbosity;
     * stats and me look at their first ones only, as memcached does. */
    bool is_overflow = rc > 0;
    if (is_overflow && !is_meta(cmd) && cmd != MC_STATS) {
        msg->error = cmd == MC_FLUSH_ALL || cmd == MC_VERBOSITY ? "ERROR"
                                                                : "CLIENT_ERROR too many keys";
        return 1;
    }
    if (cmd == MC_INVALID) {
        msg->error = is_known ? "SERVER_ERROR unsupported command" : "ERROR";
        return 1;
    }
    bool has_noreply = n > 1 && tok_is(&t[n - 1], "noreply") && takes_noreply(cmd);
    mc_line l = {.t = t, .n = n, .args = has_noreply ? n - 1 : n};
    msg->line_keep_len = has_noreply ? (size_t)(t[l.args - 1].ptr + t[l.args - 1].len - line)
                                     : len;
    if (is_meta(cmd)) {
        msg->error = parse_meta(p, cmd, &l, is_overflow, msg, data_needed, skip_bad);
    } else {
        msg->error = parse_command(p, cmd, &l, msg, data_needed, skip_bad);
    }
    if (msg->error) return 1;
    /* memcached reads a command line only up to a NUL byte: it would take
     * "set a<NUL>b 0 0 1" for "set a", answer ERROR, then answer the data
     * line as a command too - two replies to one request, and every later
     * reply on the shared server connection one off. Such a line is never
     * sent on; a storage command's data block is dropped with it. */
    if (memchr(line, '\0', len)) {
        msg->error = bad_format;
        *skip_bad = *data_needed;
        *data_needed = 0;
        msg->keys = NULL;
        msg->key_count = 0;
        msg->exptime = NULL;
        msg->exptime_len = 0;
        msg->args = NULL;
        msg->arg_count = 0;
        return 1;
    }
    msg->cmd = cmd;
    msg->noreply = has_noreply;
    return 1;
}

void mc_without_noreply(const mc_msg *m, buf *out) {
    buf_append(out, m->raw, m->line_keep_len);
    buf_append(out, "\r\n", 2);
    if (m->data) {
        buf_append(out, m->data, m->data_len);
        buf_append(out, "\r\n", 2);
    }
}

int mc_next(mc_parser *p, mc_msg *msg) {
    if (p->err) return -1;
    for (;;) {
        size_t avail = buf_used(&p->in);
        if (p->skip) {
            uint64_t drop = p->skip < avail ? p->skip : avail;
            p->in.off += (size_t)drop;
            p->skip -= drop;
            if (p->skip) return 0;
            continue;
        }
        const char *base = buf_start(&p->in);
        if (avail == 0) return 0;
        size_t limit = lim_line(p);
        size_t look = avail < limit + 2 ? avail : limit + 2;
        const char *nl = NULL;
        if (look > p->line_scanned)
            nl = memchr(base + p->line_scanned, '\n', look - p->line_scanned);
        if (!nl) {
            if (avail > limit + 1) return fail(p, MC_ERR_LIMIT, "CLIENT_ERROR line too long");
            p->line_scanned = avail;
            return 0;
        }
        size_t line_raw = (size_t)(nl - base) + 1;
        size_t line_len = line_raw - 1;
        if (line_len > 0 && base[line_len - 1] == '\r') line_len--;
        uint64_t need, skip_bad;
        if (parse_line(p, base, line_len, msg, &need, &skip_bad) < 0) return -1;
        if (msg->cmd == MC_INVALID) return emit_invalid(p, msg, line_raw, msg->error, skip_bad);
        if (has_data(msg->cmd)) {
            /* line_raw + need cannot wrap: need < 2^31 and line_raw <= limit. */
            if (line_raw + need > MC_MAX_BUFFER_DEFAULT)
                return fail(p, MC_ERR_LIMIT, "SERVER_ERROR object too large for cache");
            if (avail - line_raw < need) {
                p->line_scanned = line_raw - 1; /* the newline is found again at once */
                return 0;
            }
            const char *end = base + line_raw + need;
            if (end[-2] != '\r' || end[-1] != '\n')
                return fail(p, MC_ERR_PROTOCOL, "CLIENT_ERROR bad data chunk");
            msg->data = base + line_raw;
            msg->data_len = (size_t)need - 2;
            msg->raw_len = line_raw + (size_t)need;
        } else {
            msg->raw_len = line_raw;
        }
        msg->raw = base;
        p->in.off += msg->raw_len;
        p->line_scanned = 0;
        return 1;
    }
}

/* ---- replies ----------------------------------------------------------- */

static bool starts_with(const char *s, size_t n, const char *prefix) {
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

static bool is_error_line(const char *s, size_t n) {
    return (n == 5 && memcmp(s, "ERROR", 5) == 0) || starts_with(s, n, "CLIENT_ERROR") ||
           starts_with(s, n, "SERVER_ERROR");
}

/* "VALUE <key> <flags> <bytes> [<cas>]": the key and the data length. */
static bool parse_value_line(const char *s, size_t n, mc_key *key, uint64_t *bytes) {
    const char *tok[5];
    size_t tlen[5], count = 0, i = 0;
    while (i < n) {
        while (i < n && s[i] == ' ') i++;
        if (i == n) break;
        if (count == 5) return false;
        tok[count] = s + i;
        size_t start = i;
        while (i < n && s[i] != ' ') i++;
        tlen[count++] = i - start;
    }
    if (count < 4 || tlen[0] != 5 || memcmp(tok[0], "VALUE", 5) != 0) return false;
    uint64_t flags;
    if (!parse_u64(tok[2], tlen[2], UINT32_MAX, &flags)) return false;
    if (!parse_u64(tok[3], tlen[3], UINT64_C(0x7fffffff), bytes)) return false;
    key->ptr = tok[1];
    key->len = tlen[1];
    return true;
}

/* "VA <size> <flags>*": the size of the data block that follows. */
static bool parse_va_line(const char *s, size_t n, uint64_t *bytes) {
    if (n < 4 || memcmp(s, "VA ", 3) != 0) return false;
    size_t k = 3;
    while (k < n && s[k] != ' ') k++;
    return parse_u64(s + 3, k - 3, UINT64_C(0x7fffffff), bytes);
}

static bool is_line(const char *s, size_t n, const char *text) {
    size_t k = strlen(text);
    return n == k && memcmp(s, text, k) == 0;
}

int mc_reply_next(mc_reply_parser *p, const char *data, size_t len, mc_reply_kind kind,
                  size_t *reply_len) {
    if (len == 0) return 0; /* nothing yet: data may be NULL */
    for (;;) {
        if (p->in_data) {
            if (len - p->scan < p->need) return 0;
            const char *end = data + p->scan + p->need;
            if (end[-2] != '\r' || end[-1] != '\n') return -1;
            p->scan += (size_t)p->need;
            p->in_data = false;
            if (kind == MC_REPLY_META) {
                *reply_len = p->scan;
                return 1;
            }
            if (kind == MC_REPLY_META_MN) p->has_meta = true;
            continue;
        }
        const char *line = data + p->scan;
        size_t rest = len - p->scan;
        /* However the bytes were split between reads, a line longer than
         * REPLY_LINE_MAX is refused: look no further for its end. */
        size_t look = rest < REPLY_LINE_MAX + 1 ? rest : REPLY_LINE_MAX + 1;
        const char *nl = memchr(line, '\n', look);
        if (!nl) return rest > REPLY_LINE_MAX ? -1 : 0;
        size_t line_len = (size_t)(nl - line);
        if (line_len > 0 && line[line_len - 1] == '\r') line_len--;
        size_t next = (size_t)(nl - data) + 1;
        uint64_t bytes = 0;
        if (kind == MC_REPLY_LINE || (kind == MC_REPLY_META && !parse_va_line(line, line_len,
                                                                               &bytes))) {
            *reply_len = next;
            return 1;
        }
        if (kind == MC_REPLY_META_MN) {
            /* The server's own reply to the command, if it sent one, then
             * the MN of the mn the proxy sent after it. */
            if (is_line(line, line_len, "MN")) {
                *reply_len = next;
                return 1;
            }
            if (p->has_meta) return -1;
            p->scan = next;
            if (parse_va_line(line, line_len, &bytes)) {
                p->need = bytes + 2;
                p->in_data = true;
            } else {
                p->has_meta = true;
            }
            continue;
        }
        if (kind == MC_REPLY_META) { /* a VA line */
            p->scan = next;
            p->need = bytes + 2;
            p->in_data = true;
            continue;
        }
        if (is_line(line, line_len, "END") || is_error_line(line, line_len)) {
            *reply_len = next;
            return 1;
        }
        if (kind == MC_REPLY_STATS) {
            if (line_len < 5 || memcmp(line, "STAT ", 5) != 0) return -1;
            p->scan = next;
            continue;
        }
        mc_key key;
        if (!parse_value_line(line, line_len, &key, &bytes)) return -1;
        p->scan = next;
        p->need = bytes + 2;
        p->in_data = true;
    }
}

/* ---- base64 keys --------------------------------------------------------- */

/* A base64 digit's value, 0 for the padding '=', -1 outside the alphabet. */
static int b64_digit(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    if (ch == '=') return 0;
    return -1;
}

size_t mc_base64_decode(const char *src, size_t len, char *out) {
    size_t digits = 0;
    for (size_t i = 0; i < len; i++)
        if (b64_digit((unsigned char)src[i]) >= 0) digits++;
    if (digits == 0 || digits % 4) return 0;
    uint32_t group = 0;
    size_t in_group = 0, pads = 0, n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_digit((unsigned char)src[i]);
        if (v < 0) continue;
        if (src[i] == '=') pads++;
        group = group << 6 | (uint32_t)v;
        if (++in_group < 4) continue;
        out[n++] = (char)(group >> 16);
        out[n++] = (char)(group >> 8);
        out[n++] = (char)group;
        group = 0;
        in_group = 0;
        /* memcached reads no further than the first group with padding */
        if (pads) return pads > 2 ? 0 : n - pads;
    }
    return n;
}

int mc_value_next(const char *data, size_t len, size_t *off, mc_key *key, size_t *block_len) {
    if (*off >= len) return 0;
    const char *line = data + *off;
    const char *nl = memchr(line, '\n', len - *off);
    if (!nl) return 0;
    size_t line_len = (size_t)(nl - line);
    if (line_len > 0 && line[line_len - 1] == '\r') line_len--;
    uint64_t bytes;
    if (!parse_value_line(line, line_len, key, &bytes)) return 0;
    size_t total = (size_t)(nl - line) + 1 + (size_t)bytes + 2;
    if (total > len - *off) return 0;
    *block_len = total;
    *off += total;
    return 1;
}

/* The first flag of a meta command that starts with `flag`, and how many do. */
const mc_key *mc_meta_flag(const mc_msg *m, char flag, size_t *count) {
    const mc_key *found = NULL;
    *count = 0;
    for (size_t i = 0; i < m->arg_count; i++) {
        if (m->args[i].ptr[0] != flag) continue;
        if (!found) found = &m->args[i];
        ++*count;
    }
    return found;
}

/* The key a meta command is placed by: decoded when the b flag says it is
 * base64 (me: only a "b" right after the key), so that it goes where the
 * same key sent plain goes. A key that does not decode is placed as sent:
 * the server answers it with an error. */
size_t mc_meta_key(const mc_msg *m, char *decoded, const char **key) {
    size_t count, n;
    bool is_base64 = m->cmd == MC_ME ? m->arg_count > 0 && m->args[0].len == 1 &&
                                           m->args[0].ptr[0] == 'b'
                                     : mc_meta_flag(m, 'b', &count) != NULL;
    if (is_base64 && (n = mc_base64_decode(m->keys[0].ptr, m->keys[0].len, decoded)) > 0) {
        *key = decoded;
        return n;
    }
    *key = m->keys[0].ptr;
    return m->keys[0].len;
}
