/*
 * fuzz_memcache.c - libFuzzer harness for the memcached ASCII parsers
 * (memcache.c): client requests and server replies.
 *
 * As a request stream, the input is delivered three ways (one read, one byte
 * per read, random reads drained lazily) through mc_space and mc_commit, under
 * the default limits and under small ones; every delivery must yield the same
 * commands, then the same error or unparsed tail. Each command is checked
 * against the bytes fed: raw is exactly the next bytes of the stream, keys and
 * data lie inside it, limits hold, and the reply for a bad line is one
 * memcached would send.
 *
 * Meta commands (mg ms md ma me mn) and flush_all, verbosity and stats are
 * checked the same way: the key and the flags lie inside the line, the
 * token limit holds, ms carries exactly its data block, and a base64 key
 * decodes within its bounds.
 *
 * As a reply stream, the input is cut into replies by mc_reply_next the way
 * the proxy reads a server (the buffer grows between calls, progress kept),
 * with the reply kind of each request taken from the input's hash; the cut
 * must not depend on how the bytes arrived, mc_value_next must walk each
 * retrieval reply to exactly its END or error line, and each reply must
 * have its kind's shape.
 */
#include "fuzz.h"
#include "memcache.h"

#include <stdbool.h>
#include <string.h>

typedef struct outcome {
    size_t count;
    uint64_t digest;
    size_t consumed;
    int last_rc; /* 0: input ran out; -1: error */
    mc_err err;
    const char *errstr;
} outcome;

static uint64_t mix(uint64_t h, uint64_t v) {
    for (int i = 0; i < 8; i++) h = (h ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3u;
    return h;
}

static bool has_prefix(const char *s, size_t n, const char *prefix) {
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

/* A line memcached could answer with: ERROR, CLIENT_ERROR ..., SERVER_ERROR ... */
static bool is_reply_error(const char *s) {
    return strcmp(s, "ERROR") == 0 || has_prefix(s, strlen(s), "CLIENT_ERROR ") ||
           has_prefix(s, strlen(s), "SERVER_ERROR ");
}

/* ---- requests ----------------------------------------------------------- */

static size_t lim_key(const mc_parser *p) {
    return p->max_key_len && p->max_key_len < MC_KEY_MAX ? p->max_key_len : MC_KEY_MAX;
}

static void check_key(const mc_key *k, const char *line, size_t line_len, size_t max_len) {
    FUZZ_CHECK(k->ptr >= line && k->ptr + k->len <= line + line_len);
    FUZZ_CHECK(k->len >= 1 && k->len <= max_len);
    FUZZ_CHECK(memchr(k->ptr, ' ', k->len) == NULL);
    FUZZ_CHECK(memchr(k->ptr, '\n', k->len) == NULL);
    FUZZ_CHECK(k->ptr == line || k->ptr[-1] == ' ');
}

/* A base64 key decodes into at most three bytes for every four, in a
 * buffer of exactly that size (so the sanitizer sees a write past it). */
static void check_base64(const mc_key *k) {
    size_t cap = k->len * 3 / 4;
    char *out = malloc(cap ? cap : 1);
    FUZZ_CHECK(out != NULL);
    size_t n = mc_base64_decode(k->ptr, k->len, out);
    FUZZ_CHECK(n <= cap);
    free(out);
}

static void check_command(const mc_parser *p, const mc_msg *m, const uint8_t *data,
                          size_t consumed_before, size_t consumed) {
    FUZZ_CHECK(m->raw_len >= 1);
    FUZZ_CHECK(consumed - consumed_before >= m->raw_len);
    FUZZ_CHECK(memcmp(m->raw, data + consumed - m->raw_len, m->raw_len) == 0);
    FUZZ_CHECK(m->cmd >= MC_INVALID && m->cmd <= MC_MN);
    /* The command line: up to its first newline, without CR LF. */
    const char *nl = memchr(m->raw, '\n', m->raw_len);
    FUZZ_CHECK(nl != NULL);
    size_t line_raw = (size_t)(nl - m->raw) + 1;
    size_t line_len = line_raw - 1;
    if (line_len > 0 && m->raw[line_len - 1] == '\r') line_len--;
    size_t max_line = p->max_line ? p->max_line : MC_MAX_LINE_DEFAULT;
    FUZZ_CHECK(line_raw <= max_line + 2);
    if (m->cmd == MC_INVALID) {
        FUZZ_CHECK(m->error != NULL);
        FUZZ_CHECK(strpbrk(m->error, "\r\n") == NULL);
        /* or, as memcached, an empty "END" for a gat/gats with no key */
        size_t lead = 0;
        while (lead < line_len && m->raw[lead] == ' ') lead++;
        FUZZ_CHECK(is_reply_error(m->error) ||
                   (strcmp(m->error, "END") == 0 && line_len - lead >= 3 &&
                    memcmp(m->raw + lead, "gat", 3) == 0));
        FUZZ_CHECK(m->key_count == 0 && m->data == NULL);
        FUZZ_CHECK_EQ(m->raw_len, line_raw);
        return;
    }
    FUZZ_CHECK(m->error == NULL);
    /* memcached stops reading a line at a NUL: none may be sent on */
    FUZZ_CHECK(memchr(m->raw, '\0', line_len) == NULL);
    size_t max_keys = p->max_keys ? p->max_keys : MC_MAX_KEYS_DEFAULT;
    FUZZ_CHECK(m->key_count <= max_keys);
    for (size_t i = 0; i < m->key_count; i++)
        check_key(&m->keys[i], m->raw, line_len, lim_key(p));
    FUZZ_CHECK(m->line_keep_len <= line_len);
    if (m->noreply) {
        const char *rest = m->raw + m->line_keep_len;
        size_t rest_len = line_len - m->line_keep_len;
        while (rest_len && rest[0] == ' ') rest++, rest_len--;
        while (rest_len && rest[rest_len - 1] == ' ') rest_len--;
        FUZZ_CHECK(rest_len == 7 && memcmp(rest, "noreply", 7) == 0);
        FUZZ_CHECK(!mc_cmd_is_retrieval(m->cmd) && m->cmd != MC_VERSION && m->cmd != MC_QUIT &&
                   m->cmd != MC_STATS && m->cmd < MC_MG);
    } else {
        FUZZ_CHECK_EQ(m->line_keep_len, line_len);
    }
    /* Meta flags and stats arguments: tokens of the line, after the key. */
    for (size_t i = 0; i < m->arg_count; i++) {
        check_key(&m->args[i], m->raw, line_len, line_len);
        if (m->key_count) FUZZ_CHECK(m->args[i].ptr > m->keys[0].ptr);
    }
    switch (m->cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        FUZZ_CHECK(m->key_count >= 1);
        FUZZ_CHECK_EQ(m->line_keep_len, line_len);
        if (m->cmd == MC_GAT || m->cmd == MC_GATS) {
            FUZZ_CHECK(m->exptime != NULL && m->exptime_len >= 1);
            FUZZ_CHECK(m->exptime > m->raw && m->exptime + m->exptime_len < m->keys[0].ptr);
        }
        FUZZ_CHECK_EQ(m->raw_len, line_raw);
        break;
    case MC_SET:
    case MC_ADD:
    case MC_REPLACE:
    case MC_APPEND:
    case MC_PREPEND:
    case MC_CAS: {
        FUZZ_CHECK_EQ(m->key_count, 1);
        FUZZ_CHECK(m->data == m->raw + line_raw);
        FUZZ_CHECK_EQ(line_raw + m->data_len + 2, m->raw_len);
        FUZZ_CHECK(m->data[m->data_len] == '\r' && m->data[m->data_len + 1] == '\n');
        uint64_t max_value = p->max_value_len ? p->max_value_len : MC_MAX_VALUE_DEFAULT;
        FUZZ_CHECK(m->data_len <= max_value);
        break;
    }
    case MC_DELETE:
    case MC_INCR:
    case MC_DECR:
    case MC_TOUCH:
        FUZZ_CHECK_EQ(m->key_count, 1);
        FUZZ_CHECK_EQ(m->raw_len, line_raw);
        break;
    case MC_VERSION:
    case MC_QUIT:
    case MC_FLUSH_ALL:
    case MC_VERBOSITY:
    case MC_MN:
        FUZZ_CHECK_EQ(m->key_count, 0);
        FUZZ_CHECK_EQ(m->arg_count, 0);
        FUZZ_CHECK_EQ(m->raw_len, line_raw);
        break;
    case MC_STATS:
        FUZZ_CHECK_EQ(m->key_count, 0);
        FUZZ_CHECK_EQ(m->raw_len, line_raw);
        break;
    case MC_MG:
    case MC_MD:
    case MC_MA:
    case MC_ME:
        FUZZ_CHECK_EQ(m->key_count, 1);
        FUZZ_CHECK(m->cmd == MC_ME || m->arg_count + 2 <= MC_META_MAX_TOKENS);
        FUZZ_CHECK_EQ(m->raw_len, line_raw);
        check_base64(&m->keys[0]);
        break;
    case MC_MS: {
        FUZZ_CHECK_EQ(m->key_count, 1);
        FUZZ_CHECK(m->arg_count + 3 <= MC_META_MAX_TOKENS);
        FUZZ_CHECK(m->data == m->raw + line_raw);
        FUZZ_CHECK_EQ(line_raw + m->data_len + 2, m->raw_len);
        FUZZ_CHECK(m->data[m->data_len] == '\r' && m->data[m->data_len + 1] == '\n');
        uint64_t max_value = p->max_value_len ? p->max_value_len : MC_MAX_VALUE_DEFAULT;
        FUZZ_CHECK(m->data_len <= max_value);
        check_base64(&m->keys[0]);
        break;
    }
    case MC_INVALID:
        break;
    }
}

static void check_error(const mc_parser *p) {
    FUZZ_CHECK(p->err != MC_ERR_NONE);
    FUZZ_CHECK(p->errstr != NULL);
    FUZZ_CHECK(strpbrk(p->errstr, "\r\n") == NULL);
    FUZZ_CHECK(has_prefix(p->errstr, strlen(p->errstr), "CLIENT_ERROR ") ||
               has_prefix(p->errstr, strlen(p->errstr), "SERVER_ERROR "));
}

static int pull(mc_parser *p, const uint8_t *data, size_t fed, size_t max, outcome *out) {
    for (size_t k = 0; k < max; k++) {
        size_t consumed_before = fed - mc_buffered(p);
        mc_msg m;
        int rc = mc_next(p, &m);
        FUZZ_CHECK(rc == -1 || rc == 0 || rc == 1);
        FUZZ_CHECK(mc_buffered(p) <= fed);
        size_t consumed = fed - mc_buffered(p);
        FUZZ_CHECK(consumed >= consumed_before);
        if (rc == 0) return 0;
        if (rc < 0) {
            check_error(p);
            out->last_rc = -1;
            out->err = p->err;
            out->errstr = p->errstr;
            out->consumed = consumed;
            mc_msg again;
            FUZZ_CHECK(mc_next(p, &again) == -1);
            FUZZ_CHECK(p->err == out->err && p->errstr == out->errstr);
            size_t avail;
            FUZZ_CHECK(mc_space(p, 16, &avail) == NULL);
            FUZZ_CHECK(mc_feed(p, "version\r\n", 9) == -1);
            FUZZ_CHECK(mc_buffered(p) == fed - consumed);
            return -1;
        }
        check_command(p, &m, data, consumed_before, consumed);
        out->count++;
        out->digest = mix(out->digest, consumed);
        out->digest = mix(out->digest, m.raw_len);
        out->digest = mix(out->digest, (uint64_t)m.cmd);
        out->digest = mix(out->digest, m.noreply);
        out->digest = mix(out->digest, m.line_keep_len);
        out->digest = mix(out->digest, m.data_len);
        out->digest = mix(out->digest, (uint64_t)(uintptr_t)m.error);
        out->digest = mix(out->digest, m.key_count);
        out->digest = mix(out->digest, m.arg_count);
        for (size_t i = 0; i < m.arg_count; i++)
            out->digest = mix(out->digest, (uint64_t)(m.args[i].ptr - m.raw));
        for (size_t i = 0; i < m.key_count; i++) {
            out->digest = mix(out->digest, (uint64_t)(m.keys[i].ptr - m.raw));
            out->digest = mix(out->digest, m.keys[i].len);
        }
    }
    return 0;
}

static outcome deliver_requests(const uint8_t *data, size_t size, enum fuzz_mode mode,
                                const mc_parser *limits) {
    mc_parser p;
    mc_parser_init(&p);
    p.max_line = limits->max_line;
    p.max_keys = limits->max_keys;
    p.max_value_len = limits->max_value_len;
    p.max_key_len = limits->max_key_len;
    outcome out = {0};
    out.digest = 0xcbf29ce484222325u;
    fuzz_rng rng = fuzz_rng_from(data, size, mode);
    size_t fed = 0;
    bool has_failed = false;
    while (fed < size && !has_failed) {
        size_t n = fuzz_chunk(mode, &rng, size - fed);
        size_t want = mode == FUZZ_RANDOM ? 1 + (size_t)(fuzz_rng_next(&rng) % 256) : n;
        size_t avail = 0;
        char *dst = mc_space(&p, want, &avail);
        FUZZ_CHECK(dst != NULL);
        FUZZ_CHECK(avail >= want);
        if (n > avail) n = avail;
        memcpy(dst, data + fed, n);
        mc_commit(&p, n);
        fed += n;
        size_t max = SIZE_MAX;
        if (mode == FUZZ_RANDOM && fuzz_rng_next(&rng) % 2) max = fuzz_rng_next(&rng) % 3;
        has_failed = pull(&p, data, fed, max, &out) < 0;
    }
    if (!has_failed && pull(&p, data, fed, SIZE_MAX, &out) == 0)
        out.consumed = fed - mc_buffered(&p);
    mc_parser_free(&p);
    mc_parser_free(&p); /* freeing twice is harmless */
    return out;
}

static void check_requests(const uint8_t *data, size_t size, const mc_parser *limits) {
    outcome whole = deliver_requests(data, size, FUZZ_WHOLE, limits);
    for (int mode = FUZZ_BYTES; mode < FUZZ_MODE_COUNT; mode++) {
        outcome o = deliver_requests(data, size, (enum fuzz_mode)mode, limits);
        FUZZ_CHECK_EQ(o.count, whole.count);
        FUZZ_CHECK(o.digest == whole.digest);
        FUZZ_CHECK_EQ(o.last_rc, whole.last_rc);
        FUZZ_CHECK_EQ(o.err, whole.err);
        FUZZ_CHECK(o.errstr == whole.errstr);
        FUZZ_CHECK_EQ(o.consumed, whole.consumed);
    }
}

/* ---- replies ------------------------------------------------------------ */

/* A retrieval reply: VALUE blocks, then END or one error line. */
static void check_retrieval_reply(const char *r, size_t len) {
    size_t off = 0, blocks_len = 0;
    mc_key key;
    size_t block_len;
    while (mc_value_next(r, len, &off, &key, &block_len) == 1) {
        FUZZ_CHECK(block_len >= 1 && off <= len);
        FUZZ_CHECK(key.ptr >= r + off - block_len && key.ptr + key.len <= r + off);
        blocks_len += block_len;
    }
    FUZZ_CHECK_EQ(off, blocks_len);
    const char *tail = r + off;
    size_t tail_len = len - off;
    FUZZ_CHECK(tail_len >= 1 && tail[tail_len - 1] == '\n');
    FUZZ_CHECK(memchr(tail, '\n', tail_len) == tail + tail_len - 1); /* one line */
    FUZZ_CHECK(has_prefix(tail, tail_len, "END") || has_prefix(tail, tail_len, "ERROR") ||
               has_prefix(tail, tail_len, "CLIENT_ERROR") ||
               has_prefix(tail, tail_len, "SERVER_ERROR"));
}

/* A meta reply: one line, or a VA line and its data block. */
static void check_meta_reply(const char *r, size_t len) {
    const char *nl = memchr(r, '\n', len);
    FUZZ_CHECK(nl != NULL);
    size_t line_raw = (size_t)(nl - r) + 1;
    if (line_raw == len) return;
    FUZZ_CHECK(has_prefix(r, len, "VA "));
    FUZZ_CHECK(len >= line_raw + 2 && r[len - 2] == '\r' && r[len - 1] == '\n');
}

/* STAT lines, then END or an error line. */
static void check_stats_reply(const char *r, size_t len) {
    size_t off = 0;
    for (;;) {
        const char *nl = memchr(r + off, '\n', len - off);
        FUZZ_CHECK(nl != NULL);
        size_t next = (size_t)(nl - r) + 1;
        if (next == len) {
            FUZZ_CHECK(has_prefix(r + off, len - off, "END") ||
                       has_prefix(r + off, len - off, "ERROR") ||
                       has_prefix(r + off, len - off, "CLIENT_ERROR") ||
                       has_prefix(r + off, len - off, "SERVER_ERROR"));
            return;
        }
        FUZZ_CHECK(has_prefix(r + off, len - off, "STAT "));
        off = next;
    }
}

static void check_reply(mc_reply_kind kind, const char *r, size_t len) {
    switch (kind) {
    case MC_REPLY_LINE: /* one line */
        FUZZ_CHECK(memchr(r, '\n', len) == r + len - 1);
        break;
    case MC_REPLY_VALUES: check_retrieval_reply(r, len); break;
    case MC_REPLY_META: check_meta_reply(r, len); break;
    case MC_REPLY_META_MN:
        /* ends with the MN line; what comes before is one meta reply */
        FUZZ_CHECK(len >= 3 && r[len - 1] == '\n');
        FUZZ_CHECK((len >= 4 && memcmp(r + len - 4, "MN\r\n", 4) == 0) ||
                   memcmp(r + len - 3, "MN\n", 3) == 0);
        if (len > 4 && memchr(r, '\n', len) != r + len - 1) {
            size_t mn = memcmp(r + len - 4, "MN\r\n", 4) == 0 ? 4 : 3;
            check_meta_reply(r, len - mn);
        }
        break;
    case MC_REPLY_STATS: check_stats_reply(r, len); break;
    }
}

#define KIND_COUNT 5

static outcome deliver_replies(const uint8_t *data, size_t size, enum fuzz_mode mode,
                               uint64_t kinds) {
    outcome out = {0};
    out.digest = 0xcbf29ce484222325u;
    fuzz_rng rng = fuzz_rng_from(data, size, 7 + (uint64_t)mode);
    mc_reply_parser rp = {0};
    size_t consumed = 0, fed = 0;
    for (;;) {
        /* kinds: one reply kind for all, or (>= KIND_COUNT) a mix drawn
         * from its bits, three a reply */
        mc_reply_kind kind = (mc_reply_kind)(kinds < KIND_COUNT
                                                 ? kinds
                                                 : ((kinds >> (3 * (out.count % 21))) & 7) %
                                                       KIND_COUNT);
        size_t window = fed - consumed;
        size_t reply_len = 0;
        int rc;
        if (mode == FUZZ_RANDOM) {
            /* An exact copy, so the sanitizer sees any read past the bytes given. */
            char *copy = malloc(window ? window : 1);
            FUZZ_CHECK(copy != NULL);
            memcpy(copy, data + consumed, window);
            rc = mc_reply_next(&rp, copy, window, kind, &reply_len);
            if (rc == 1) check_reply(kind, copy, reply_len);
            free(copy);
        } else {
            rc = mc_reply_next(&rp, (const char *)data + consumed, window, kind, &reply_len);
            if (rc == 1) check_reply(kind, (const char *)data + consumed, reply_len);
        }
        FUZZ_CHECK(rc == -1 || rc == 0 || rc == 1);
        if (rc == 1) {
            FUZZ_CHECK(reply_len >= 1 && reply_len <= window);
            FUZZ_CHECK(data[consumed + reply_len - 1] == '\n');
            out.count++;
            out.digest = mix(out.digest, reply_len);
            consumed += reply_len;
            mc_reply_reset(&rp);
            continue;
        }
        if (rc < 0) {
            out.last_rc = -1;
            break;
        }
        if (fed == size) break;
        fed += fuzz_chunk(mode, &rng, size - fed);
    }
    out.consumed = consumed;
    return out;
}

static void check_replies(const uint8_t *data, size_t size) {
    fuzz_rng rng = fuzz_rng_from(data, size, 99);
    uint64_t kinds = fuzz_rng_next(&rng);
    /* Each kind for every reply, and a mix. */
    const uint64_t patterns[] = {MC_REPLY_LINE,    MC_REPLY_VALUES, MC_REPLY_META,
                                 MC_REPLY_META_MN, MC_REPLY_STATS,  kinds | KIND_COUNT};
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        outcome whole = deliver_replies(data, size, FUZZ_WHOLE, patterns[i]);
        for (int mode = FUZZ_BYTES; mode < FUZZ_MODE_COUNT; mode++) {
            outcome o = deliver_replies(data, size, (enum fuzz_mode)mode, patterns[i]);
            FUZZ_CHECK_EQ(o.count, whole.count);
            FUZZ_CHECK(o.digest == whole.digest);
            FUZZ_CHECK_EQ(o.last_rc, whole.last_rc);
            FUZZ_CHECK_EQ(o.consumed, whole.consumed);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mc_parser defaults = {0};
    /* Small limits, so a short input can cross every one of them. */
    mc_parser small = {0};
    small.max_line = 48;
    small.max_keys = 3;
    small.max_value_len = 16;
    small.max_key_len = 8;
    check_requests(data, size, &defaults);
    check_requests(data, size, &small);
    check_replies(data, size);
    return 0;
}
