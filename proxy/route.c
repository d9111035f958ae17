/*
 * route.c - from a parsed command to the servers that own its keys.
 *
 * Redis: a table gives each supported command's key positions. Single-key
 * commands go to the key's server as received (no copy is re-encoded);
 * MGET, DEL, UNLINK, EXISTS, TOUCH and MSET are split into one command per
 * server when their keys span servers and merged back in merge.c; other
 * multi-key commands go through only when every key maps to one server.
 * Commands about the connection (PING, ECHO, QUIT, SELECT, HELLO, AUTH) are
 * answered here. Anything else gets "-ERR unsupported command" in its turn
 * and the connection stays open.
 *
 * memcached: get/gets/gat/gats split like MGET; the rest have one key.
 * "noreply" is stripped before forwarding and the reply dropped here, so
 * every request sent to a server gets exactly one reply and the FIFO match
 * of replies to requests can never slip.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum cmd_kind {
    CK_KEY,     /* one key, at argv[first] */
    CK_KEYS,    /* keys argv[first..last] every step; one server needed */
    CK_NUMKEYS, /* argv[first] keys follow it (and argv[1] if has_dest); one server */
    CK_MGET,
    CK_SUM,
    CK_MSET,
    CK_PING,
    CK_ECHO,
    CK_QUIT,
    CK_SELECT,
    CK_HELLO,
    CK_AUTH,
    CK_PROXY, /* admin.c */
} cmd_kind;

typedef struct cmd_spec {
    const char *name; /* lowercase */
    cmd_kind kind;
    int first;
    int last; /* negative: from the end, -1 is the last argument */
    int step;
    bool has_dest;
} cmd_spec;

#define KEY(n) {n, CK_KEY, 1, 1, 1, false}
#define KEY_AT(n, i) {n, CK_KEY, i, i, 1, false}
#define KEYS(n, f, l, s) {n, CK_KEYS, f, l, s, false}
#define NUMKEYS(n, i, d) {n, CK_NUMKEYS, i, 0, 1, d}
#define LOCAL(n, k) {n, k, 0, 0, 0, false}

/* Sorted at start-up (route_init), so the order here is free. Blocking
 * commands (BLPOP...) are left out on purpose: they would stall every other
 * client sharing the server connection. */
static cmd_spec commands[] = {
    /* strings and generic */
    KEY("append"), KEY("bitcount"), KEY("bitfield"), KEY("bitfield_ro"), KEY("bitpos"),
    KEY("decr"), KEY("decrby"), KEY("dump"), KEY("expire"), KEY("expireat"), KEY("expiretime"),
    KEY("get"), KEY("getbit"), KEY("getdel"), KEY("getex"), KEY("getrange"), KEY("getset"),
    KEY("incr"), KEY("incrby"), KEY("incrbyfloat"), KEY("persist"), KEY("pexpire"),
    KEY("pexpireat"), KEY("pexpiretime"), KEY("psetex"), KEY("pttl"), KEY("restore"),
    KEY("set"), KEY("setbit"), KEY("setex"), KEY("setnx"), KEY("setrange"), KEY("sort"),
    KEY("sort_ro"), KEY("strlen"), KEY("substr"), KEY("ttl"), KEY("type"),
    /* hashes */
    KEY("hdel"), KEY("hexists"), KEY("hget"), KEY("hgetall"), KEY("hincrby"),
    KEY("hincrbyfloat"), KEY("hkeys"), KEY("hlen"), KEY("hmget"), KEY("hmset"),
    KEY("hrandfield"), KEY("hscan"), KEY("hset"), KEY("hsetnx"), KEY("hstrlen"), KEY("hvals"),
    /* lists */
    KEY("lindex"), KEY("linsert"), KEY("llen"), KEY("lpop"), KEY("lpos"), KEY("lpush"),
    KEY("lpushx"), KEY("lrange"), KEY("lrem"), KEY("lset"), KEY("ltrim"), KEY("rpop"),
    KEY("rpush"), KEY("rpushx"),
    /* sets */
    KEY("sadd"), KEY("scard"), KEY("sismember"), KEY("smembers"), KEY("smismember"),
    KEY("spop"), KEY("srandmember"), KEY("srem"), KEY("sscan"),
    /* sorted sets */
    KEY("zadd"), KEY("zcard"), KEY("zcount"), KEY("zincrby"), KEY("zlexcount"), KEY("zmscore"),
    KEY("zpopmax"), KEY("zpopmin"), KEY("zrandmember"), KEY("zrange"), KEY("zrangebylex"),
    KEY("zrangebyscore"), KEY("zrank"), KEY("zrem"), KEY("zremrangebylex"),
    KEY("zremrangebyrank"), KEY("zremrangebyscore"), KEY("zrevrange"), KEY("zrevrangebylex"),
    KEY("zrevrangebyscore"), KEY("zrevrank"), KEY("zscan"), KEY("zscore"),
    /* hyperloglog, geo, streams */
    KEY("pfadd"), KEY("geoadd"), KEY("geodist"), KEY("geohash"), KEY("geopos"),
    KEY("georadius"), KEY("georadius_ro"), KEY("georadiusbymember"),
    KEY("georadiusbymember_ro"), KEY("geosearch"), KEY("xack"), KEY("xadd"), KEY("xautoclaim"),
    KEY("xclaim"), KEY("xdel"), KEY("xlen"), KEY("xpending"), KEY("xrange"), KEY("xrevrange"),
    KEY("xsetid"), KEY("xtrim"), KEY_AT("xinfo", 2), KEY_AT("xgroup", 2),
    /* several keys, one server */
    KEYS("rpoplpush", 1, 2, 1), KEYS("lmove", 1, 2, 1), KEYS("smove", 1, 2, 1),
    KEYS("rename", 1, 2, 1), KEYS("renamenx", 1, 2, 1), KEYS("copy", 1, 2, 1),
    KEYS("geosearchstore", 1, 2, 1), KEYS("zrangestore", 1, 2, 1), KEYS("lcs", 1, 2, 1),
    KEYS("sdiff", 1, -1, 1), KEYS("sdiffstore", 1, -1, 1), KEYS("sinter", 1, -1, 1),
    KEYS("sinterstore", 1, -1, 1), KEYS("sunion", 1, -1, 1), KEYS("sunionstore", 1, -1, 1),
    KEYS("pfcount", 1, -1, 1), KEYS("pfmerge", 1, -1, 1), KEYS("bitop", 2, -1, 1),
    KEYS("msetnx", 1, -2, 2),
    NUMKEYS("eval", 2, false), NUMKEYS("evalsha", 2, false), NUMKEYS("eval_ro", 2, false),
    NUMKEYS("evalsha_ro", 2, false), NUMKEYS("fcall", 2, false), NUMKEYS("fcall_ro", 2, false),
    NUMKEYS("zunion", 1, false), NUMKEYS("zinter", 1, false), NUMKEYS("zdiff", 1, false),
    NUMKEYS("zintercard", 1, false), NUMKEYS("sintercard", 1, false),
    NUMKEYS("lmpop", 1, false), NUMKEYS("zmpop", 1, false), NUMKEYS("zunionstore", 2, true),
    NUMKEYS("zinterstore", 2, true), NUMKEYS("zdiffstore", 2, true),
    /* split and merged */
    {"mget", CK_MGET, 1, -1, 1, false}, {"del", CK_SUM, 1, -1, 1, false},
    {"unlink", CK_SUM, 1, -1, 1, false}, {"exists", CK_SUM, 1, -1, 1, false},
    {"touch", CK_SUM, 1, -1, 1, false}, {"mset", CK_MSET, 1, -1, 2, false},
    /* the connection */
    LOCAL("ping", CK_PING), LOCAL("echo", CK_ECHO), LOCAL("quit", CK_QUIT),
    LOCAL("select", CK_SELECT), LOCAL("hello", CK_HELLO), LOCAL("auth", CK_AUTH),
    LOCAL("proxy", CK_PROXY),
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])
#define NAME_MAX_LEN 24

static int spec_order(const void *a, const void *b) {
    return strcmp(((const cmd_spec *)a)->name, ((const cmd_spec *)b)->name);
}

/* Command names hashed (case folded) into an open-addressing table, built
 * once at start-up: one pass over the name finds its spec. */
#define COMMAND_SLOTS 1024u /* a power of two, well above COMMAND_COUNT */
static uint16_t command_slot[COMMAND_SLOTS]; /* index + 1; 0: empty */

static inline char fold(char ch) { return (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch); }

static uint32_t name_hash(const char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)fold(p[i])) * 16777619u;
    return h;
}

void route_init(void) {
    qsort(commands, COMMAND_COUNT, sizeof commands[0], spec_order);
    _Static_assert(COMMAND_COUNT < COMMAND_SLOTS / 2, "command table too full");
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        uint32_t at = name_hash(commands[i].name, strlen(commands[i].name)) & (COMMAND_SLOTS - 1);
        while (command_slot[at]) at = (at + 1) & (COMMAND_SLOTS - 1);
        command_slot[at] = (uint16_t)(i + 1);
    }
}

size_t route_command_count(void) { return COMMAND_COUNT; }

const char *route_command_name(size_t i) { return i < COMMAND_COUNT ? commands[i].name : NULL; }

static const cmd_spec *find_command(const resp_arg *name) {
    if (name->len == 0 || name->len > NAME_MAX_LEN) return NULL;
    uint32_t at = name_hash(name->ptr, name->len) & (COMMAND_SLOTS - 1);
    for (; command_slot[at]; at = (at + 1) & (COMMAND_SLOTS - 1)) {
        const cmd_spec *spec = &commands[command_slot[at] - 1];
        size_t i = 0;
        while (i < name->len && spec->name[i] && fold(name->ptr[i]) == spec->name[i]) i++;
        if (i == name->len && spec->name[i] == '\0') return spec;
    }
    return NULL;
}

static bool arg_is(const resp_arg *a, const char *lower) {
    size_t n = strlen(lower);
    if (a->len != n) return false;
    for (size_t i = 0; i < n; i++)
        if (fold(a->ptr[i]) != lower[i]) return false;
    return true;
}

static bool arg_int(const resp_arg *a, long long *out) {
    if (a->len == 0 || a->len > 19) return false;
    size_t i = 0;
    bool is_neg = a->ptr[0] == '-';
    if (is_neg) i = 1;
    if (i == a->len) return false;
    long long v = 0;
    for (; i < a->len; i++) {
        if (a->ptr[i] < '0' || a->ptr[i] > '9') return false;
        v = v * 10 + (a->ptr[i] - '0');
    }
    *out = is_neg ? -v : v;
    return true;
}

/* ---- placement ---------------------------------------------------------- */

/* Longest ring-order walk for a rerouted key: past this many down servers
 * in a row it gets an error instead. */
#define REROUTE_WALK_MAX 32

backend *pool_pick(wpool *p, const void *key, size_t len) {
    if (p->live_count == 0) return NULL;
    size_t node;
    if (p->cf->dist == CONF_DIST_RANDOM) {
        uint64_t x = p->w->rng; /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p->w->rng = x;
        node = (size_t)(x % p->live_count);
    } else if (chash_lookup(p->ring, key, len, &node) != CHASH_OK) {
        return NULL;
    }
    backend *b = &p->backends[p->node_backend[node]];
    /* on_failure: error hands the down owner back, and frag_conn answers
     * with the error; reroute walks to the first live server in the key's
     * ring order, so no other key moves. */
    if (!b->is_down || p->cf->on_failure != CONF_FAIL_REROUTE) return b;
    size_t order[REROUTE_WALK_MAX], found = 0;
    size_t want = p->live_count < REROUTE_WALK_MAX ? p->live_count : REROUTE_WALK_MAX;
    if (chash_lookup_n(p->ring, key, len, want, order, &found) != CHASH_OK) return b;
    for (size_t i = 1; i < found; i++) {
        backend *next = &p->backends[p->node_backend[order[i]]];
        if (!next->is_down) return next;
    }
    return b;
}

/* ---- replies made here -------------------------------------------------- */

/* The name as the client sent it, made safe to echo in a one-line reply. */
static void append_safe(buf *b, const char *s, size_t n) {
    size_t limit = n > 64 ? 64 : n;
    for (size_t i = 0; i < limit; i++) {
        char ch = s[i];
        buf_append(b, (ch >= 0x20 && ch < 0x7f && ch != '\'') ? &ch : "?", 1);
    }
    if (n > limit) buf_append_str(b, "...");
}

static void reply_buf(client *c, buf *b) {
    if (b->is_oom) {
        client_reply_str(c, "-ERR out of memory\r\n");
    } else {
        client_reply(c, buf_start(b), buf_used(b), false);
    }
    buf_free(b);
}

static void reply_unsupported(client *c, const resp_arg *name) {
    buf b = {0};
    buf_append_str(&b, "-ERR unsupported command '");
    append_safe(&b, name->ptr, name->len);
    buf_append_str(&b, "'\r\n");
    reply_buf(c, &b);
}

static void reply_arity(client *c, const resp_arg *name) {
    buf b = {0};
    buf_append_str(&b, "-ERR wrong number of arguments for '");
    append_safe(&b, name->ptr, name->len);
    buf_append_str(&b, "' command\r\n");
    reply_buf(c, &b);
}

static void reply_key_too_long(client *c) {
    char text[96];
    int n = snprintf(text, sizeof text, "-ERR key longer than max_key_length (%u bytes)\r\n",
                     c->pool->cf->max_key_length);
    client_reply(c, text, (size_t)n, false);
}

static const char no_server[] = "-ERR no server available: all are ejected\r\n";

/* ---- forwarding --------------------------------------------------------- */

static void forward_resp(client *c, const resp_msg *m, backend *b) {
    req *r = req_new(c, REQ_FORWARD, 1);
    if (!r) {
        client_reply_str(c, "-ERR out of memory\r\n");
        return;
    }
    if (m->is_inline) { /* servers want RESP: re-encode the inline command */
        buf tmp = {0};
        buf_append_header(&tmp, '*', m->argc);
        for (size_t i = 0; i < m->argc; i++) buf_append_bulk(&tmp, m->argv[i].ptr, m->argv[i].len);
        if (tmp.is_oom)
            frag_fail(&r->one, true, "out of memory");
        else
            frag_send(&r->one, b, c, buf_start(&tmp), buf_used(&tmp));
        buf_free(&tmp);
    } else {
        frag_send(&r->one, b, c, m->raw, m->raw_len);
    }
    req_release(r);
}

/* Every key must be no longer than the limit; returns false after replying. */
static bool keys_ok(client *c, const resp_arg *keys, size_t count, size_t step) {
    uint32_t limit = c->pool->cf->max_key_length;
    for (size_t i = 0; i < count; i++)
        if (keys[i * step].len > limit) {
            reply_key_too_long(c);
            return false;
        }
    return true;
}

/* Several keys that must live on one server. */
static void route_same_server(client *c, const resp_msg *m, const resp_arg *keys, size_t count,
                              size_t step, const resp_arg *extra) {
    if (!keys_ok(c, keys, count, step)) return;
    if (extra && !keys_ok(c, extra, 1, 1)) return;
    backend *first = extra ? pool_pick(c->pool, extra->ptr, extra->len) : NULL;
    if (!first && count) first = pool_pick(c->pool, keys[0].ptr, keys[0].len);
    if (!first) {
        client_reply_str(c, no_server);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (pool_pick(c->pool, keys[i * step].ptr, keys[i * step].len) != first) {
            client_reply_str(c, "-CROSSSLOT Keys in request don't map to the same server "
                                "(use a hash tag)\r\n");
            return;
        }
    }
    forward_resp(c, m, first);
}

/*
 * MGET, DEL/UNLINK/EXISTS/TOUCH, MSET: one command per server holding some of
 * the keys, keys in their original order within each. `step` is 2 for MSET
 * (key, value pairs).
 */
static void route_split(client *c, const resp_msg *m, req_kind kind, size_t step) {
    wpool *p = c->pool;
    size_t nkeys = (m->argc - 1) / step;
    const resp_arg *first_key = &m->argv[1];
    if (!keys_ok(c, first_key, nkeys, step)) return;
    uint32_t *key_frag = malloc(nkeys * sizeof *key_frag);
    uint32_t *frag_of = malloc(p->backend_count * sizeof *frag_of);
    uint32_t *frag_backend = malloc(p->backend_count * sizeof *frag_backend);
    uint32_t *next_key = malloc(nkeys * sizeof *next_key);
    uint32_t *frag_first = malloc(p->backend_count * sizeof *frag_first);
    uint32_t *frag_last = malloc(p->backend_count * sizeof *frag_last);
    req *r = NULL;
    if (!key_frag || !frag_of || !frag_backend || !next_key || !frag_first || !frag_last) {
        client_reply_str(c, "-ERR out of memory\r\n");
        goto done;
    }
    for (size_t i = 0; i < p->backend_count; i++) frag_of[i] = UINT32_MAX;
    uint32_t nfrags = 0;
    for (size_t i = 0; i < nkeys; i++) {
        const resp_arg *k = &first_key[i * step];
        backend *b = pool_pick(p, k->ptr, k->len);
        if (!b) {
            client_reply_str(c, no_server);
            goto done;
        }
        uint32_t f = frag_of[b->index];
        if (f == UINT32_MAX) {
            f = frag_of[b->index] = nfrags++;
            frag_backend[f] = b->index;
            frag_first[f] = (uint32_t)i;
        } else {
            next_key[frag_last[f]] = (uint32_t)i;
        }
        frag_last[f] = (uint32_t)i;
        next_key[i] = UINT32_MAX;
        key_frag[i] = f;
    }
    if (nfrags == 1) { /* one server: no need to split */
        forward_resp(c, m, &p->backends[frag_backend[0]]);
        goto done;
    }
    r = req_new(c, kind, nfrags);
    if (!r) {
        client_reply_str(c, "-ERR out of memory\r\n");
        goto done;
    }
    r->key_count = (uint32_t)nkeys;
    r->key_frag = key_frag;
    key_frag = NULL;
    stat_add(&p->st.fragments, nfrags);
    for (uint32_t f = 0; f < nfrags; f++) {
        backend *b = &p->backends[frag_backend[f]];
        frag *fr = &r->frags[f];
        uint32_t count = 0;
        for (uint32_t i = frag_first[f]; i != UINT32_MAX; i = next_key[i]) count++;
        fr->count = count;
        bconn *bc = frag_conn(fr, b, c);
        if (!bc) continue;
        size_t before = buf_used(&bc->out);
        buf_append_header(&bc->out, '*', 1 + (uint64_t)count * step);
        buf_append_bulk(&bc->out, m->argv[0].ptr, m->argv[0].len);
        for (uint32_t i = frag_first[f]; i != UINT32_MAX; i = next_key[i])
            for (size_t s = 0; s < step; s++) {
                const resp_arg *a = &first_key[i * step + s];
                buf_append_bulk(&bc->out, a->ptr, a->len);
            }
        bconn_push(bc, fr, buf_used(&bc->out) - before);
    }
    req_release(r);
done:
    free(key_frag);
    free(frag_of);
    free(frag_backend);
    free(next_key);
    free(frag_first);
    free(frag_last);
}

/* ---- commands about the connection --------------------------------------- */

/* Compares a client's password with the configured one in time that depends
 * only on the configured length. */
static bool password_ok(const conf_pool *cf, const resp_arg *pass) {
    const unsigned char *want = (const unsigned char *)cf->redis_auth;
    const unsigned char *got = (const unsigned char *)pass->ptr;
    unsigned diff = pass->len != cf->redis_auth_len;
    for (size_t i = 0; i < cf->redis_auth_len; i++)
        diff |= (unsigned)(want[i] ^ (i < pass->len ? got[i] : 0u));
    return diff == 0;
}

static const char wrongpass[] =
    "-WRONGPASS invalid username-password pair or user is disabled.\r\n";

static void cmd_auth(client *c, const resp_msg *m) {
    const conf_pool *cf = c->pool->cf;
    if (m->argc != 2 && m->argc != 3) {
        reply_arity(c, &m->argv[0]);
        return;
    }
    if (!cf->redis_auth) {
        client_reply_str(c, "-ERR AUTH <password> called without any password configured "
                            "for the default user. Are you sure your configuration is "
                            "correct?\r\n");
        return;
    }
    bool user_ok = m->argc == 2 || arg_is(&m->argv[1], "default");
    bool pass_ok = password_ok(cf, &m->argv[m->argc - 1]);
    if (!user_ok || !pass_ok) {
        client_reply_str(c, wrongpass);
        return;
    }
    c->is_authed = true;
    client_reply_str(c, "+OK\r\n");
}

static void cmd_hello(client *c, const resp_msg *m) {
    const conf_pool *cf = c->pool->cf;
    size_t i = 1;
    if (m->argc >= 2) {
        long long proto;
        if (!arg_int(&m->argv[1], &proto)) {
            client_reply_str(c, "-ERR Protocol version is not an integer or out of range\r\n");
            return;
        }
        if (proto != 2) {
            client_reply_str(c, "-NOPROTO sorry, this protocol version is not supported.\r\n");
            return;
        }
        i = 2;
    }
    bool is_authed = c->is_authed;
    for (; i < m->argc; i++) {
        if (arg_is(&m->argv[i], "auth") && i + 2 < m->argc) {
            if (cf->redis_auth &&
                (!arg_is(&m->argv[i + 1], "default") || !password_ok(cf, &m->argv[i + 2]))) {
                client_reply_str(c, wrongpass);
                return;
            }
            is_authed = true;
            i += 2;
        } else if (arg_is(&m->argv[i], "setname") && i + 1 < m->argc) {
            i += 1;
        } else {
            buf b = {0};
            buf_append_str(&b, "-ERR Syntax error in HELLO option '");
            append_safe(&b, m->argv[i].ptr, m->argv[i].len);
            buf_append_str(&b, "'\r\n");
            reply_buf(c, &b);
            return;
        }
    }
    if (!is_authed) {
        client_reply_str(c, "-NOAUTH HELLO must be called with the client already "
                            "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
                            "option can be used to authenticate the client and select the "
                            "RESP protocol version at the same time\r\n");
        return;
    }
    c->is_authed = true;
    buf b = {0};
    buf_append_header(&b, '*', 14);
    buf_append_bulk(&b, "server", 6);
    buf_append_bulk(&b, PROXY_NAME, strlen(PROXY_NAME));
    buf_append_bulk(&b, "version", 7);
    buf_append_bulk(&b, CHASH_VERSION_STRING, strlen(CHASH_VERSION_STRING));
    buf_append_bulk(&b, "proto", 5);
    buf_append_header(&b, ':', 2);
    buf_append_bulk(&b, "id", 2);
    buf_append_header(&b, ':', c->id);
    buf_append_bulk(&b, "mode", 4);
    buf_append_bulk(&b, "standalone", 10);
    buf_append_bulk(&b, "role", 4);
    buf_append_bulk(&b, "master", 6);
    buf_append_bulk(&b, "modules", 7);
    buf_append_header(&b, '*', 0);
    reply_buf(c, &b);
}

static void cmd_select(client *c, const resp_msg *m) {
    if (m->argc != 2) {
        reply_arity(c, &m->argv[0]);
        return;
    }
    long long db;
    if (!arg_int(&m->argv[1], &db)) {
        client_reply_str(c, "-ERR value is not an integer or out of range\r\n");
        return;
    }
    if (db != c->pool->cf->redis_db) {
        char text[128];
        int n = snprintf(text, sizeof text,
                         "-ERR this pool serves database %d only (redis_db)\r\n",
                         c->pool->cf->redis_db);
        client_reply(c, text, (size_t)n, false);
        return;
    }
    client_reply_str(c, "+OK\r\n");
}

/* ---- redis -------------------------------------------------------------- */

/* CK_KEYS: how many keys m has at spec's positions, or 0 when its arguments
 * do not fit them (an arity error). */
static size_t keys_span(const cmd_spec *spec, const resp_msg *m) {
    size_t first = (size_t)spec->first, step = (size_t)spec->step;
    size_t last = spec->last < 0 ? m->argc - (size_t)(-spec->last) : (size_t)spec->last;
    if (m->argc <= first || m->argc <= last || last < first || (last - first) % step != 0)
        return 0;
    return (last - first) / step + 1;
}

/*
 * Warm-up: hands each key of m to warmup_key. Arguments that do not fit the
 * command are left to route_spec, which replies with the error. Returns true
 * when m is held back until its keys have moved.
 */
static bool warm_keys(client *c, const cmd_spec *spec, const resp_msg *m) {
    size_t first = 0, count = 0, step = 1;
    const resp_arg *extra = NULL;
    long long numkeys;
    switch (spec->kind) {
    case CK_KEY:
        if (m->argc <= (size_t)spec->first) return false;
        first = (size_t)spec->first;
        count = 1;
        break;
    case CK_KEYS:
        count = keys_span(spec, m);
        if (count == 0) return false;
        first = (size_t)spec->first;
        step = (size_t)spec->step;
        break;
    case CK_NUMKEYS:
        if (m->argc <= (size_t)spec->first || !arg_int(&m->argv[spec->first], &numkeys) ||
            numkeys < 0 || (unsigned long long)numkeys > m->argc - (size_t)spec->first - 1)
            return false;
        first = (size_t)spec->first + 1;
        count = (size_t)numkeys;
        if (spec->has_dest) extra = &m->argv[1];
        break;
    case CK_MGET:
    case CK_SUM:
        if (m->argc < 2) return false;
        first = 1;
        count = m->argc - 1;
        break;
    case CK_MSET:
        if (m->argc < 3 || m->argc % 2 == 0) return false;
        first = 1;
        step = 2;
        count = (m->argc - 1) / 2;
        break;
    default:
        return false;
    }
    warm_job *job = warmup_begin(c);
    if (!job) return false;
    uint32_t limit = c->pool->cf->max_key_length;
    if (extra && extra->len <= limit) warmup_key(job, c->pool, extra->ptr, extra->len);
    for (size_t i = 0; i < count; i++) {
        const resp_arg *k = &m->argv[first + i * step];
        if (k->len <= limit) warmup_key(job, c->pool, k->ptr, k->len);
    }
    return warmup_end(job, m);
}

static void route_spec(client *c, const cmd_spec *spec, const resp_msg *m);

void route_redis(client *c, const resp_msg *m) {
    stat_add(&c->pool->st.requests, 1);
    const resp_arg *name = &m->argv[0];
    const cmd_spec *spec = find_command(name);
    if (!spec) {
        reply_unsupported(c, name);
        return;
    }
    if (c->pool->cmd_requests) stat_add(&c->pool->cmd_requests[spec - commands], 1);
    if (!c->is_authed && spec->kind != CK_AUTH && spec->kind != CK_HELLO &&
        spec->kind != CK_QUIT) {
        client_reply_str(c, "-NOAUTH Authentication required.\r\n");
        return;
    }
    if (warmup_active(c->pool) && warm_keys(c, spec, m)) return;
    route_spec(c, spec, m);
}

void route_redis_resume(client *c) {
    const cmd_spec *spec = find_command(&c->warm_msg.argv[0]);
    if (spec) route_spec(c, spec, &c->warm_msg);
}

static void route_spec(client *c, const cmd_spec *spec, const resp_msg *m) {
    const resp_arg *name = &m->argv[0];
    switch (spec->kind) {
    case CK_KEY: {
        if (m->argc <= (size_t)spec->first) {
            reply_arity(c, name);
            return;
        }
        const resp_arg *k = &m->argv[spec->first];
        if (!keys_ok(c, k, 1, 1)) return;
        backend *b = pool_pick(c->pool, k->ptr, k->len);
        if (!b) {
            client_reply_str(c, no_server);
            return;
        }
        forward_resp(c, m, b);
        return;
    }
    case CK_KEYS: {
        size_t count = keys_span(spec, m);
        if (count == 0) {
            reply_arity(c, name);
            return;
        }
        route_same_server(c, m, &m->argv[spec->first], count, (size_t)spec->step, NULL);
        return;
    }
    case CK_NUMKEYS: {
        long long numkeys;
        if (m->argc <= (size_t)spec->first) {
            reply_arity(c, name);
            return;
        }
        if (!arg_int(&m->argv[spec->first], &numkeys) || numkeys < 0) {
            client_reply_str(c, "-ERR numkeys should be a non-negative integer\r\n");
            return;
        }
        if ((unsigned long long)numkeys > m->argc - (size_t)spec->first - 1) {
            client_reply_str(c, "-ERR Number of keys can't be greater than number of args\r\n");
            return;
        }
        if (numkeys == 0 && !spec->has_dest) {
            client_reply_str(c, "-ERR the proxy needs at least one key to route this command\r\n");
            return;
        }
        route_same_server(c, m, &m->argv[spec->first + 1], (size_t)numkeys, 1,
                          spec->has_dest ? &m->argv[1] : NULL);
        return;
    }
    case CK_MGET:
    case CK_SUM:
        if (m->argc < 2) {
            reply_arity(c, name);
            return;
        }
        route_split(c, m, spec->kind == CK_MGET ? REQ_MGET : REQ_SUM, 1);
        return;
    case CK_MSET:
        if (m->argc < 3 || m->argc % 2 == 0) {
            reply_arity(c, name);
            return;
        }
        route_split(c, m, REQ_MSET, 2);
        return;
    case CK_PING:
        if (m->argc == 1) {
            client_reply_str(c, "+PONG\r\n");
        } else if (m->argc == 2) {
            buf b = {0};
            buf_append_bulk(&b, m->argv[1].ptr, m->argv[1].len);
            reply_buf(c, &b);
        } else {
            reply_arity(c, name);
        }
        return;
    case CK_ECHO:
        if (m->argc != 2) {
            reply_arity(c, name);
        } else {
            buf b = {0};
            buf_append_bulk(&b, m->argv[1].ptr, m->argv[1].len);
            reply_buf(c, &b);
        }
        return;
    case CK_QUIT:
        client_reply(c, "+OK\r\n", 5, true);
        return;
    case CK_SELECT:
        cmd_select(c, m);
        return;
    case CK_HELLO:
        cmd_hello(c, m);
        return;
    case CK_AUTH:
        cmd_auth(c, m);
        return;
    case CK_PROXY:
        admin_redis(c, m);
        return;
    }
}

/* ---- memcached ---------------------------------------------------------- */

static void mc_reply_line(client *c, const char *line) {
    buf b = {0};
    buf_append_str(&b, line);
    buf_append(&b, "\r\n", 2);
    if (b.is_oom)
        client_reply_str(c, "SERVER_ERROR out of memory\r\n");
    else
        client_reply(c, buf_start(&b), buf_used(&b), false);
    buf_free(&b);
}

static const char *mc_name(mc_cmd cmd) {
    switch (cmd) {
    case MC_GETS: return "gets";
    case MC_GAT: return "gat";
    case MC_GATS: return "gats";
    default: return "get";
    }
}

static void mc_forward(client *c, const mc_msg *m, backend *b) {
    req *r = req_new(c, REQ_FORWARD, 1);
    if (!r) {
        client_reply_str(c, "SERVER_ERROR out of memory\r\n");
        return;
    }
    r->one.is_retrieval = mc_cmd_is_retrieval(m->cmd);
    if (m->noreply) {
        /* Forward without "noreply"; the reply is dropped when it comes. */
        r->is_noreply = true;
        buf tmp = {0};
        buf_append(&tmp, m->raw, m->line_keep_len);
        buf_append(&tmp, "\r\n", 2);
        if (m->data) {
            buf_append(&tmp, m->data, m->data_len);
            buf_append(&tmp, "\r\n", 2);
        }
        if (tmp.is_oom)
            frag_fail(&r->one, false, "out of memory");
        else
            frag_send(&r->one, b, c, buf_start(&tmp), buf_used(&tmp));
        buf_free(&tmp);
    } else {
        frag_send(&r->one, b, c, m->raw, m->raw_len);
    }
    req_release(r);
}

static void mc_route_get(client *c, const mc_msg *m) {
    wpool *p = c->pool;
    size_t nkeys = m->key_count;
    uint32_t *key_frag = malloc(nkeys * sizeof *key_frag);
    uint32_t *frag_of = malloc(p->backend_count * sizeof *frag_of);
    uint32_t *frag_backend = malloc(p->backend_count * sizeof *frag_backend);
    uint32_t *key_off = malloc((nkeys + 1) * sizeof *key_off);
    req *r = NULL;
    if (!key_frag || !frag_of || !frag_backend || !key_off) {
        client_reply_str(c, "SERVER_ERROR out of memory\r\n");
        goto done;
    }
    for (size_t i = 0; i < p->backend_count; i++) frag_of[i] = UINT32_MAX;
    uint32_t nfrags = 0;
    for (size_t i = 0; i < nkeys; i++) {
        backend *b = pool_pick(p, m->keys[i].ptr, m->keys[i].len);
        if (!b) {
            client_reply_str(c, "SERVER_ERROR no server available: all are ejected\r\n");
            goto done;
        }
        if (frag_of[b->index] == UINT32_MAX) {
            frag_of[b->index] = nfrags;
            frag_backend[nfrags++] = b->index;
        }
        key_frag[i] = frag_of[b->index];
    }
    if (nfrags == 1) {
        mc_forward(c, m, &p->backends[frag_backend[0]]);
        goto done;
    }
    r = req_new(c, REQ_MC_GET, nfrags);
    if (!r) {
        client_reply_str(c, "SERVER_ERROR out of memory\r\n");
        goto done;
    }
    r->key_count = (uint32_t)nkeys;
    /* The keys are kept to match the VALUE blocks that come back. */
    for (size_t i = 0; i < nkeys; i++) {
        key_off[i] = (uint32_t)buf_used(&r->keys);
        buf_append(&r->keys, m->keys[i].ptr, m->keys[i].len);
    }
    key_off[nkeys] = (uint32_t)buf_used(&r->keys);
    r->key_frag = key_frag;
    r->key_off = key_off;
    key_frag = NULL;
    key_off = NULL;
    stat_add(&p->st.fragments, nfrags);
    const char *cmd = mc_name(m->cmd);
    for (uint32_t f = 0; f < nfrags; f++) {
        backend *b = &p->backends[frag_backend[f]];
        frag *fr = &r->frags[f];
        fr->is_retrieval = true;
        bconn *bc = frag_conn(fr, b, c);
        if (!bc) continue;
        size_t before = buf_used(&bc->out);
        buf_append_str(&bc->out, cmd);
        if (m->exptime) {
            buf_append(&bc->out, " ", 1);
            buf_append(&bc->out, m->exptime, m->exptime_len);
        }
        for (size_t i = 0; i < nkeys; i++) {
            if (r->key_frag[i] != f) continue;
            buf_append(&bc->out, " ", 1);
            buf_append(&bc->out, m->keys[i].ptr, m->keys[i].len);
            fr->count++;
        }
        buf_append(&bc->out, "\r\n", 2);
        bconn_push(bc, fr, buf_used(&bc->out) - before);
    }
    req_release(r);
done:
    free(key_frag);
    free(frag_of);
    free(frag_backend);
    free(key_off);
}

void route_memcache(client *c, const mc_msg *m) {
    stat_add(&c->pool->st.requests, 1);
    switch (m->cmd) {
    case MC_INVALID:
        mc_reply_line(c, m->error);
        return;
    case MC_QUIT:
        client_reply(c, "", 0, true);
        return;
    case MC_VERSION:
        mc_reply_line(c, "VERSION " PROXY_NAME "-" CHASH_VERSION_STRING);
        return;
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        mc_route_get(c, m);
        return;
    default: {
        backend *b = pool_pick(c->pool, m->keys[0].ptr, m->keys[0].len);
        if (!b) {
            client_reply_str(c, "SERVER_ERROR no server available: all are ejected\r\n");
            return;
        }
        mc_forward(c, m, b);
        return;
    }
    }
}
