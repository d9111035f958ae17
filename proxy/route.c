/*
 * route.c - from a parsed command to the servers that own its keys.
 *
 * Redis: the command table (command.c) gives each supported command's key
 * positions. Single-key commands go to the key's server as received (no
 * copy is re-encoded); MGET, DEL, UNLINK, EXISTS, TOUCH and MSET are split
 * into one command per server when their keys span servers and merged back
 * in merge.c; other multi-key commands go through only when every key maps
 * to one server. Commands about the connection are answered by session.c,
 * PROXY by admin.c. Anything else gets "-ERR unsupported command" in its
 * turn and the connection stays open. During a warm-up window (warmup.c) a
 * command waits until its keys have moved to their new owner.
 *
 * memcached: get/gets/gat/gats split like MGET; the rest have one key.
 * "noreply" is stripped before forwarding and the reply dropped in req.c,
 * so every request sent to a server gets exactly one reply and the FIFO
 * match of replies to requests can never slip.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_oom(client *c) {
    client_reply_str(c, c->pool->cf->redis ? "-ERR out of memory\r\n"
                                           : "SERVER_ERROR out of memory\r\n");
}

static void reply_no_server(client *c) {
    client_reply_str(c, c->pool->cf->redis
                            ? "-ERR no server available: all are ejected\r\n"
                            : "SERVER_ERROR no server available: all are ejected\r\n");
}

/* ---- forwarding --------------------------------------------------------- */

/*
 * One command, whole, to server b as a request of its own. `data` is the
 * command as the server must read it; is_oom says it could not be made.
 */
static void forward(client *c, backend *b, const char *data, size_t len, bool is_oom,
                    bool is_retrieval, bool is_noreply) {
    req *r = req_new(c, REQ_FORWARD, 1);
    if (!r) {
        reply_oom(c);
        return;
    }
    r->one.is_retrieval = is_retrieval;
    r->is_noreply = is_noreply;
    if (is_oom)
        frag_fail(&r->one, c->pool->cf->redis, "out of memory");
    else
        frag_send(&r->one, b, c, data, len);
    req_release(r);
}

/* The command as a server must read it: as received, or, for an inline
 * command, re-encoded as RESP into tmp (servers want RESP; check
 * tmp->is_oom). */
static void resp_wire(const resp_msg *m, buf *tmp, const char **data, size_t *len) {
    *data = m->raw;
    *len = m->raw_len;
    if (!m->is_inline) return;
    buf_append_header(tmp, '*', m->argc);
    for (size_t i = 0; i < m->argc; i++) buf_append_bulk(tmp, m->argv[i].ptr, m->argv[i].len);
    *data = buf_start(tmp);
    *len = buf_used(tmp);
}

static void forward_resp(client *c, const resp_msg *m, backend *b) {
    buf tmp = {0};
    const char *data;
    size_t len;
    resp_wire(m, &tmp, &data, &len);
    forward(c, b, data, len, tmp.is_oom, false, false);
    buf_free(&tmp);
}

static void forward_mc(client *c, const mc_msg *m, backend *b) {
    bool is_retrieval = mc_cmd_is_retrieval(m->cmd);
    if (!m->noreply) {
        forward(c, b, m->raw, m->raw_len, false, is_retrieval, false);
        return;
    }
    buf tmp = {0}; /* without "noreply": the reply is dropped when it comes */
    buf_append(&tmp, m->raw, m->line_keep_len);
    buf_append(&tmp, "\r\n", 2);
    if (m->data) {
        buf_append(&tmp, m->data, m->data_len);
        buf_append(&tmp, "\r\n", 2);
    }
    forward(c, b, buf_start(&tmp), buf_used(&tmp), tmp.is_oom, is_retrieval, true);
    buf_free(&tmp);
}

/* ---- splitting by server ------------------------------------------------- */

/* A multi-key command's keys grouped by server, each group in key order;
 * with a budget, a server's keys go in as many fragments as keep each
 * under it. */
typedef struct split {
    uint32_t frag_count;
    size_t budget;          /* bytes a fragment may cost, or 0: no limit */
    uint32_t *key_frag;     /* key -> its fragment (handed over to the req) */
    uint32_t *frag_backend; /* fragment -> backend index */
    uint32_t *frag_first;   /* fragment -> its first key */
    uint32_t *frag_last;    /* fragment -> its last key so far */
    size_t *frag_cost;      /* fragment -> bytes so far */
    uint32_t *next_key;     /* key -> the next key of its fragment, or UINT32_MAX */
    uint32_t *frag_of;      /* backend index -> its open fragment, or UINT32_MAX */
} split;

static void split_free(split *s) {
    free(s->key_frag);
    free(s->frag_backend);
    free(s->frag_first);
    free(s->frag_last);
    free(s->frag_cost);
    free(s->next_key);
    free(s->frag_of);
}

/* Returns false when out of memory (s is then freed). */
static bool split_init(split *s, const wpool *p, size_t key_count, size_t budget) {
    size_t n = p->backend_count;
    size_t frags = budget && key_count > n ? key_count : n; /* at most one a key */
    *s = (split){.budget = budget};
    s->key_frag = malloc(key_count * sizeof *s->key_frag);
    s->next_key = malloc(key_count * sizeof *s->next_key);
    s->frag_backend = malloc(frags * sizeof *s->frag_backend);
    s->frag_first = malloc(frags * sizeof *s->frag_first);
    s->frag_last = malloc(frags * sizeof *s->frag_last);
    s->frag_cost = malloc(frags * sizeof *s->frag_cost);
    s->frag_of = malloc(n * sizeof *s->frag_of);
    if (!s->key_frag || !s->next_key || !s->frag_backend || !s->frag_first || !s->frag_last ||
        !s->frag_cost || !s->frag_of) {
        split_free(s);
        return false;
    }
    for (size_t i = 0; i < n; i++) s->frag_of[i] = UINT32_MAX;
    return true;
}

/* Key i (keys are added in order) belongs to server b; it costs `cost`
 * bytes of its fragment, which starts at `base` bytes. */
static void split_add(split *s, uint32_t i, const backend *b, size_t base, size_t cost) {
    uint32_t f = s->frag_of[b->index];
    if (f != UINT32_MAX && s->budget && s->frag_cost[f] + cost > s->budget) f = UINT32_MAX;
    if (f == UINT32_MAX) {
        f = s->frag_of[b->index] = s->frag_count++;
        s->frag_backend[f] = b->index;
        s->frag_first[f] = i;
        s->frag_cost[f] = base;
    } else {
        s->next_key[s->frag_last[f]] = i;
    }
    s->frag_cost[f] += cost;
    s->frag_last[f] = i;
    s->next_key[i] = UINT32_MAX;
    s->key_frag[i] = f;
}

/* The request that gathers a split's fragments, with the key -> fragment
 * map moved into it; NULL (after replying) when out of memory. */
static req *split_req(client *c, split *s, req_kind kind, size_t key_count) {
    req *r = req_new(c, kind, s->frag_count);
    if (!r) {
        reply_oom(c);
        return NULL;
    }
    r->key_count = (uint32_t)key_count;
    r->key_frag = s->key_frag;
    s->key_frag = NULL;
    stat_add(&c->pool->st.fragments, s->frag_count);
    return r;
}

/* ---- redis -------------------------------------------------------------- */

static void reply_key_too_long(client *c) {
    char text[96];
    int n = snprintf(text, sizeof text, "-ERR key longer than max_key_length (%u bytes)\r\n",
                     c->pool->cf->max_key_length);
    client_reply(c, text, (size_t)n, false);
}

static void reply_unsupported(client *c, const resp_arg *name) {
    buf b = {0};
    buf_append_str(&b, "-ERR unsupported command '");
    buf_append_safe(&b, name->ptr, name->len);
    buf_append_str(&b, "'\r\n");
    client_reply_buf(c, &b);
}

static const resp_arg *key_at(const resp_msg *m, const cmd_keys *k, size_t i) {
    return &m->argv[k->first + i * k->step];
}

/* Every key must be no longer than the limit; returns false after replying. */
static bool keys_ok(client *c, const resp_msg *m, const cmd_keys *k) {
    uint32_t limit = c->pool->cf->max_key_length;
    bool is_ok = !k->dest || k->dest->len <= limit;
    for (size_t i = 0; is_ok && i < k->count; i++) is_ok = key_at(m, k, i)->len <= limit;
    if (!is_ok) reply_key_too_long(c);
    return is_ok;
}

/* Keys that must live on one server (one key is the simplest case). */
static void route_same_server(client *c, const resp_msg *m, const cmd_keys *k) {
    backend *first = k->dest ? pool_pick(c->pool, k->dest->ptr, k->dest->len) : NULL;
    if (!first && k->count) first = pool_pick(c->pool, key_at(m, k, 0)->ptr, key_at(m, k, 0)->len);
    if (!first) {
        reply_no_server(c);
        return;
    }
    /* The first key chose `first` unless there is a destination key. */
    for (size_t i = k->dest ? 0 : 1; i < k->count; i++) {
        if (pool_pick(c->pool, key_at(m, k, i)->ptr, key_at(m, k, i)->len) != first) {
            client_reply_str(c, "-CROSSSLOT Keys in request don't map to the same server "
                                "(use a hash tag)\r\n");
            return;
        }
    }
    forward_resp(c, m, first);
}

/*
 * MGET, DEL/UNLINK/EXISTS/TOUCH, MSET: one command per server holding some of
 * the keys, keys in their original order within each (with their values,
 * for MSET: k->step is 2).
 */
static void route_split(client *c, const resp_msg *m, const cmd_keys *k, req_kind kind) {
    wpool *p = c->pool;
    split s;
    if (!split_init(&s, p, k->count, 0)) {
        reply_oom(c);
        return;
    }
    for (uint32_t i = 0; i < k->count; i++) {
        backend *b = pool_pick(p, key_at(m, k, i)->ptr, key_at(m, k, i)->len);
        if (!b) {
            reply_no_server(c);
            split_free(&s);
            return;
        }
        split_add(&s, i, b, 0, 0);
    }
    req *r = s.frag_count == 1 ? NULL : split_req(c, &s, kind, k->count);
    if (s.frag_count == 1) forward_resp(c, m, &p->backends[s.frag_backend[0]]);
    for (uint32_t f = 0; r && f < s.frag_count; f++) {
        frag *fr = &r->frags[f];
        for (uint32_t i = s.frag_first[f]; i != UINT32_MAX; i = s.next_key[i]) fr->count++;
        bconn *bc = frag_conn(fr, &p->backends[s.frag_backend[f]], c);
        if (!bc) continue;
        size_t before = buf_used(&bc->out);
        buf_append_header(&bc->out, '*', 1 + (uint64_t)fr->count * k->step);
        buf_append_bulk(&bc->out, m->argv[0].ptr, m->argv[0].len);
        for (uint32_t i = s.frag_first[f]; i != UINT32_MAX; i = s.next_key[i])
            for (size_t j = 0; j < k->step; j++) {
                const resp_arg *a = key_at(m, k, i) + j;
                buf_append_bulk(&bc->out, a->ptr, a->len);
            }
        bconn_push(bc, fr, buf_used(&bc->out) - before);
    }
    if (r) req_release(r);
    split_free(&s);
}

/* ---- commands for every server ------------------------------------------ */

/*
 * The command, whole, to every configured server of the pool; the replies
 * merge by `kind`. A server that is down or ejected fails its part, and the
 * merged reply is that error: a DBSIZE without one server's keys would be
 * a wrong answer, not a smaller one.
 */
static void route_all(client *c, const resp_msg *m, req_kind kind) {
    wpool *p = c->pool;
    if (p->server_count == 0) {
        reply_no_server(c);
        return;
    }
    req *r = req_new(c, kind, (uint32_t)p->server_count);
    if (!r) {
        reply_oom(c);
        return;
    }
    buf tmp = {0};
    const char *data;
    size_t len;
    resp_wire(m, &tmp, &data, &len);
    stat_add(&p->st.fragments, p->server_count);
    for (size_t k = 0; k < p->server_count; k++) {
        backend *b = &p->backends[k];
        if (tmp.is_oom || b->is_ejected) {
            char reason[200];
            if (tmp.is_oom)
                snprintf(reason, sizeof reason, "out of memory");
            else
                snprintf(reason, sizeof reason, "server %s is ejected", b->cf->name);
            frag_fail(&r->frags[k], true, reason);
        } else {
            frag_send(&r->frags[k], b, c, data, len);
        }
    }
    buf_free(&tmp);
    req_release(r);
}

/* A command with no key that any server can answer: the first live one. */
static void route_one(client *c, const resp_msg *m) {
    wpool *p = c->pool;
    for (size_t k = 0; k < p->server_count; k++)
        if (!backend_is_out(&p->backends[k])) {
            forward_resp(c, m, &p->backends[k]);
            return;
        }
    reply_no_server(c);
}

/* SCRIPT LOAD: every server loads it, and they must agree on its sha;
 * SCRIPT FLUSH [ASYNC|SYNC]: every server. The rest (EXISTS, KILL...) are
 * about one server's state: refused with the reason. */
static void route_script(client *c, const resp_msg *m) {
    const resp_arg *sub = m->argc >= 2 ? &m->argv[1] : NULL;
    if (sub && resp_arg_is(sub, "load")) {
        route_all(c, m, REQ_SAME);
    } else if (sub && resp_arg_is(sub, "flush")) {
        route_all(c, m, REQ_MSET);
    } else {
        client_reply_str(c, "-ERR the proxy supports SCRIPT LOAD and SCRIPT FLUSH only: the "
                            "other subcommands are about one server\r\n");
    }
}

/*
 * SCAN cursor [options]: the cursor names a server (merge_scan makes them),
 * so the proxy keeps no state and a client may reconnect mid-scan. The
 * server gets its own cursor and the options as they came (MATCH, COUNT,
 * TYPE). Servers are walked in configuration order.
 */
static void route_scan(client *c, const resp_msg *m) {
    wpool *p = c->pool;
    if (m->argc < 2) {
        session_arity_error(c, &m->argv[0]);
        return;
    }
    if (p->server_count == 0 || p->server_count > (1u << SCAN_SERVER_BITS)) {
        client_reply_str(c, "-ERR SCAN through the proxy needs 1 to 1024 servers\r\n");
        return;
    }
    /* Redis takes the cursor as an unsigned 64-bit number. */
    uint64_t v = 0;
    bool is_ok = m->argv[1].len > 0 && m->argv[1].len <= 20;
    for (size_t i = 0; is_ok && i < m->argv[1].len; i++) {
        char d = m->argv[1].ptr[i];
        is_ok = d >= '0' && d <= '9' && v <= (UINT64_MAX - (uint64_t)(d - '0')) / 10;
        if (is_ok) v = v * 10 + (uint64_t)(d - '0');
    }
    uint64_t server = v & ((1u << SCAN_SERVER_BITS) - 1);
    if (!is_ok || server >= p->server_count) {
        client_reply_str(c, "-ERR invalid cursor\r\n");
        return;
    }
    req *r = req_new(c, REQ_SCAN, 1);
    if (!r) {
        reply_oom(c);
        return;
    }
    r->scan_server = (uint32_t)server;
    r->scan_servers = (uint32_t)p->server_count;
    char text[24];
    int n = snprintf(text, sizeof text, "%llu", (unsigned long long)(v >> SCAN_SERVER_BITS));
    buf cmd = {0};
    buf_append_header(&cmd, '*', m->argc);
    buf_append_bulk(&cmd, m->argv[0].ptr, m->argv[0].len);
    buf_append_bulk(&cmd, text, (size_t)n);
    for (size_t i = 2; i < m->argc; i++) buf_append_bulk(&cmd, m->argv[i].ptr, m->argv[i].len);
    backend *b = &p->backends[server];
    if (cmd.is_oom)
        frag_fail(&r->one, true, "out of memory");
    else if (b->is_ejected)
        frag_fail(&r->one, true, "the cursor's server is ejected");
    else
        frag_send(&r->one, b, c, buf_start(&cmd), buf_used(&cmd));
    buf_free(&cmd);
    req_release(r);
}

/* Answers a command whose arguments do not fit its keys (command_keys). */
static void reply_keys_error(client *c, const resp_msg *m, cmd_keys_err err) {
    switch (err) {
    case CMD_KEYS_ARITY:
        session_arity_error(c, &m->argv[0]);
        return;
    case CMD_KEYS_NUMKEYS:
        client_reply_str(c, "-ERR numkeys should be a non-negative integer\r\n");
        return;
    case CMD_KEYS_NUMKEYS_BIG:
        client_reply_str(c, "-ERR Number of keys can't be greater than number of args\r\n");
        return;
    case CMD_KEYS_NONE:
        client_reply_str(c, "-ERR the proxy needs at least one key to route this command\r\n");
        return;
    case CMD_KEYS_SYNTAX:
        client_reply_str(c, "-ERR syntax error\r\n");
        return;
    case CMD_KEYS_OK:
        return;
    }
}

/*
 * A script runs on the one server of its keys, so a command in it that
 * acts on a server's whole keyspace (or switches it) would act on one
 * shard of many: refused. Found by its name as a quoted string, as
 * redis.call('FLUSHALL') spells it; a name built at run time is not seen.
 */
static const char *script_acts_on_server(const resp_arg *script) {
    static const char *const names[] = {"flushall", "flushdb", "swapdb", "select"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        for (size_t at = 0; at + n + 2 <= script->len; at++) {
            char q = script->ptr[at];
            if ((q != '\'' && q != '"') || script->ptr[at + n + 1] != q) continue;
            resp_arg word = {script->ptr + at + 1, n};
            if (resp_arg_is(&word, names[i])) return names[i];
        }
    }
    return NULL;
}

static void route_spec(client *c, const cmd_spec *spec, const resp_msg *m) {
    cmd_keys k;
    cmd_keys_err err = command_keys(spec, m, &k);
    if (err != CMD_KEYS_OK) {
        reply_keys_error(c, m, err);
        return;
    }
    const char *what = spec->flags & CMD_SCRIPT ? script_acts_on_server(&m->argv[1]) : NULL;
    if (what) {
        char text[160];
        snprintf(text, sizeof text, "-ERR the proxy refuses a script that calls %s: it would "
                 "act on one server of the pool\r\n", what);
        client_reply_str(c, text);
        return;
    }
    switch (spec->kind) {
    case CK_KEY:
    case CK_KEYS:
    case CK_NUMKEYS:
        if (keys_ok(c, m, &k)) route_same_server(c, m, &k);
        return;
    case CK_MGET:
    case CK_SUM:
    case CK_MSET:
        if (keys_ok(c, m, &k))
            route_split(c, m, &k, spec->kind == CK_MGET ? REQ_MGET
                                  : spec->kind == CK_SUM ? REQ_SUM
                                                         : REQ_MSET);
        return;
    case CK_ALL_SUM:
        route_all(c, m, REQ_SUM);
        return;
    case CK_ALL_OK:
        route_all(c, m, REQ_MSET);
        return;
    case CK_ONE:
        route_one(c, m);
        return;
    case CK_SCRIPT:
        route_script(c, m);
        return;
    case CK_ALL_CONCAT:
        route_all(c, m, REQ_CONCAT);
        return;
    case CK_SCAN:
        route_scan(c, m);
        return;
    case CK_PROXY:
        admin_command(c, m);
        return;
    default:
        session_command(c, spec, m);
        return;
    }
}

/* Routes c->warm_msg, the command warm-up held back. */
static void route_resume(client *c) {
    const cmd_spec *spec = command_find(&c->warm_msg.argv[0]);
    if (spec) route_spec(c, spec, &c->warm_msg);
}

/*
 * Warm-up: hands each key of m to warmup_key. Arguments that do not fit the
 * command are left to route_spec, which replies with the error. Returns true
 * when m is held back until its keys have moved.
 */
static bool warm_keys(client *c, const cmd_spec *spec, const resp_msg *m) {
    cmd_keys k;
    if (command_keys(spec, m, &k) != CMD_KEYS_OK || (k.count == 0 && !k.dest)) return false;
    warm_job *job = warmup_begin(c, route_resume);
    if (!job) return false;
    uint32_t limit = c->pool->cf->max_key_length;
    if (k.dest && k.dest->len <= limit) warmup_key(job, c->pool, k.dest->ptr, k.dest->len);
    for (size_t i = 0; i < k.count; i++) {
        const resp_arg *key = key_at(m, &k, i);
        if (key->len <= limit) warmup_key(job, c->pool, key->ptr, key->len);
    }
    return warmup_end(job, m);
}

void route_redis(client *c, const resp_msg *m) {
    stat_add(&c->pool->st.requests, 1);
    const resp_arg *name = &m->argv[0];
    const cmd_spec *spec = command_find(name);
    if (!spec) {
        reply_unsupported(c, name);
        return;
    }
    if (c->pool->cmd_requests) stat_add(&c->pool->cmd_requests[command_index(spec)], 1);
    if (!c->is_authed && spec->kind != CK_AUTH && spec->kind != CK_HELLO &&
        spec->kind != CK_QUIT) {
        client_reply_str(c, "-NOAUTH Authentication required.\r\n");
        return;
    }
    if (warmup_active(c->pool) && warm_keys(c, spec, m)) return;
    route_spec(c, spec, m);
}

/* ---- memcached ---------------------------------------------------------- */

static void mc_reply_line(client *c, const char *line) {
    buf b = {0};
    buf_append_str(&b, line);
    buf_append(&b, "\r\n", 2);
    client_reply_buf(c, &b);
}

static const char *mc_name(mc_cmd cmd) {
    switch (cmd) {
    case MC_GETS: return "gets";
    case MC_GAT: return "gat";
    case MC_GATS: return "gats";
    default: return "get";
    }
}

/* The keys of a split get, kept to match the VALUE blocks that come back:
 * key i at r->keys[key_off[i] .. key_off[i + 1]). Returns false when out
 * of memory. */
static bool mc_keep_keys(req *r, const mc_msg *m) {
    r->key_off = malloc((m->key_count + 1) * sizeof *r->key_off);
    if (!r->key_off) return false;
    for (size_t i = 0; i < m->key_count; i++) {
        r->key_off[i] = (uint32_t)buf_used(&r->keys);
        buf_append(&r->keys, m->keys[i].ptr, m->keys[i].len);
    }
    r->key_off[m->key_count] = (uint32_t)buf_used(&r->keys);
    return !r->keys.is_oom;
}

/*
 * memcached 1.6 closes a connection whose command line passes 2048 bytes
 * before its end has arrived, unless it is a get or gets: a long gat would
 * reset the connection every client shares. So gat and gats go in lines of
 * at most this many bytes, several to a server when the keys need it.
 */
#define MC_GAT_LINE_MAX 2048u

static void mc_route_get(client *c, const mc_msg *m) {
    wpool *p = c->pool;
    const char *cmd = mc_name(m->cmd);
    bool is_gat = m->cmd == MC_GAT || m->cmd == MC_GATS;
    /* A fragment's line: the command, the expiry, then " key" a key, CRLF. */
    size_t base = strlen(cmd) + (m->exptime ? 1 + m->exptime_len : 0) + 2;
    split s;
    if (!split_init(&s, p, m->key_count, is_gat ? MC_GAT_LINE_MAX : 0)) {
        reply_oom(c);
        return;
    }
    for (uint32_t i = 0; i < m->key_count; i++) {
        backend *b = pool_pick(p, m->keys[i].ptr, m->keys[i].len);
        if (!b) {
            reply_no_server(c);
            split_free(&s);
            return;
        }
        split_add(&s, i, b, base, 1 + m->keys[i].len);
    }
    bool is_whole = s.frag_count == 1 && (!is_gat || m->raw_len <= MC_GAT_LINE_MAX);
    req *r = is_whole ? NULL : split_req(c, &s, REQ_MC_GET, m->key_count);
    if (is_whole) forward_mc(c, m, &p->backends[s.frag_backend[0]]);
    bool has_keys = r && mc_keep_keys(r, m);
    for (uint32_t f = 0; r && f < s.frag_count; f++) {
        frag *fr = &r->frags[f];
        fr->is_retrieval = true;
        if (!has_keys) {
            frag_fail(fr, false, "out of memory");
            continue;
        }
        bconn *bc = frag_conn(fr, &p->backends[s.frag_backend[f]], c);
        if (!bc) continue;
        size_t before = buf_used(&bc->out);
        buf_append_str(&bc->out, cmd);
        if (m->exptime) {
            buf_append(&bc->out, " ", 1);
            buf_append(&bc->out, m->exptime, m->exptime_len);
        }
        for (uint32_t i = s.frag_first[f]; i != UINT32_MAX; i = s.next_key[i]) {
            buf_append(&bc->out, " ", 1);
            buf_append(&bc->out, m->keys[i].ptr, m->keys[i].len);
            fr->count++;
        }
        buf_append(&bc->out, "\r\n", 2);
        bconn_push(bc, fr, buf_used(&bc->out) - before);
    }
    if (r) req_release(r);
    split_free(&s);
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
            reply_no_server(c);
            return;
        }
        forward_mc(c, m, b);
        return;
    }
    }
}
