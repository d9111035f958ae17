/*
 * route.c - from a parsed command to the servers that own its keys.
 *
 * Redis: the command table (command.c) gives each supported command's key
 * positions. Single-key commands go to the key's server as received (no
 * copy is re-encoded); MGET, DEL, UNLINK, EXISTS, TOUCH and MSET are split
 * into one command per server when their keys span servers and merged back
 * in merge.c; other multi-key commands go through only when every key maps
 * to one server. Commands about the connection are answered by session.c
 * (CLIENT by clientcmd.c; CLUSTER, READONLY, READWRITE, ASKING by clustercmd.c),
 * PROXY by admin.c, and every command is first checked against the client's
 * user (session_check: AUTH, the users' ACL rules), commands for every server go to fanout.c, transactions
 * and blocking commands to held.c, pub/sub to pubsub.c. A command the table
 * refuses gets its reason; one it does not know "-ERR unknown command", in
 * its turn, and the connection stays open. During a warm-up window
 * (warmup.c) a command waits until its keys have moved to their new owner.
 */
#include "proxy.h"

#include "clustercmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_key_too_long(client *c) {
    char text[96];
    int n = snprintf(text, sizeof text, "-ERR key longer than max_key_length (%u bytes)\r\n",
                     c->pool->cf->max_key_length);
    client_reply(c, text, (size_t)n, false);
}

/* As redis-server words it, so clients that test for it still match. */
static void reply_unknown(client *c, const resp_msg *m) {
    buf b = {0};
    buf_append_str(&b, "-ERR unknown command '");
    buf_append_safe(&b, m->argv[0].ptr, m->argv[0].len);
    buf_append_str(&b, "', with args beginning with: ");
    for (size_t i = 1; i < m->argc && i < 8; i++) {
        buf_append_str(&b, "'");
        buf_append_safe(&b, m->argv[i].ptr, m->argv[i].len > 64 ? 64 : m->argv[i].len);
        buf_append_str(&b, "' ");
    }
    buf_append_str(&b, "\r\n");
    client_reply_buf(c, &b);
}

/* Refused by the table (MONITOR...) or by the pool (refuse_admin_commands). */
static void reply_refused(client *c, const cmd_spec *spec, const char *why) {
    buf b = {0};
    buf_append_str(&b, "-ERR the proxy refuses '");
    buf_append_str(&b, spec->name);
    buf_append_str(&b, "': ");
    buf_append_str(&b, why);
    buf_append_str(&b, "\r\n");
    client_reply_buf(c, &b);
}

/* A container command (CONFIG, CLIENT...) without a subcommand it knows. */
static void reply_unknown_sub(client *c, const cmd_spec *spec, const resp_msg *m) {
    buf b = {0};
    if (m->argc < 2) {
        buf_append_str(&b, "-ERR wrong number of arguments for '");
        buf_append_str(&b, spec->name);
        buf_append_str(&b, "' command\r\n");
    } else if (spec->why) {
        buf_free(&b);
        reply_refused(c, spec, spec->why);
        return;
    } else {
        buf_append_str(&b, "-ERR unknown subcommand '");
        buf_append_safe(&b, m->argv[1].ptr, m->argv[1].len > 64 ? 64 : m->argv[1].len);
        buf_append_str(&b, "'. Try ");
        for (const char *p = spec->name; *p; p++)
            buf_append(&b, &(char){(char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p)}, 1);
        buf_append_str(&b, " HELP.\r\n");
    }
    client_reply_buf(c, &b);
}


/* Every key must be no longer than the limit; returns false after replying. */
static bool keys_ok(client *c, const resp_msg *m, const cmd_keys *k) {
    uint32_t limit = c->pool->cf->max_key_length;
    bool is_ok = !k->dest || k->dest->len <= limit;
    for (size_t i = 0; is_ok && i < k->count; i++) is_ok = command_key(m, k, i)->len <= limit;
    if (!is_ok) reply_key_too_long(c);
    return is_ok;
}

/* The one server of m's keys (one key is the simplest case), or NULL after
 * replying: no server live, or keys on two servers. */
static backend *keys_server(client *c, const resp_msg *m, const cmd_keys *k) {
    backend *first = k->dest ? pool_pick(c->pool, k->dest->ptr, k->dest->len) : NULL;
    if (!first && k->count)
        first = pool_pick(c->pool, command_key(m, k, 0)->ptr, command_key(m, k, 0)->len);
    if (!first) {
        reply_no_server(c);
        return NULL;
    }
    /* The first key chose `first` unless there is a destination key. */
    for (size_t i = k->dest ? 0 : 1; i < k->count; i++) {
        if (pool_pick(c->pool, command_key(m, k, i)->ptr, command_key(m, k, i)->len) != first) {
            client_reply_str(c, "-CROSSSLOT Keys in request don't map to the same server "
                                "(use a hash tag)\r\n");
            return NULL;
        }
    }
    return first;
}

/*
 * MGET, DEL/UNLINK/EXISTS/TOUCH, MSET: one command per server holding some of
 * the keys, keys in their original order within each (with their values,
 * for MSET: k->step is 2).
 */
/* m to shard b's primary, or to a replica if it is a read and read_from
 * says so (shard.c). */
static void forward_to(client *c, const cmd_spec *spec, const resp_msg *m, backend *b) {
    const char *why = NULL;
    backend *to = shard_reader(c, spec, b, &why);
    if (!to) {
        char text[200];
        snprintf(text, sizeof text, "-ERR %s\r\n", why);
        client_reply_str(c, text);
        return;
    }
    forward_resp(c, m, to);
}

/* Fragment f of split s: the command with its keys (and values). */
static void put_part(buf *out, const resp_msg *m, const cmd_keys *k, const split *s, uint32_t f,
                     uint32_t count) {
    buf_append_header(out, '*', 1 + (uint64_t)count * k->step);
    buf_append_bulk(out, m->argv[0].ptr, m->argv[0].len);
    for (uint32_t i = s->frag_first[f]; i != UINT32_MAX; i = s->next_key[i])
        for (size_t j = 0; j < k->step; j++) {
            const resp_arg *a = command_key(m, k, i) + j;
            buf_append_bulk(out, a->ptr, a->len);
        }
}

static void route_split(client *c, const cmd_spec *spec, const resp_msg *m, const cmd_keys *k,
                        req_kind kind) {
    wpool *p = c->pool;
    split s;
    if (!split_init(&s, p, k->count, 0)) {
        reply_oom(c);
        return;
    }
    for (uint32_t i = 0; i < k->count; i++) {
        const resp_arg *key = command_key(m, k, i);
        backend *b = pool_pick(p, key->ptr, key->len);
        if (!b) {
            reply_no_server(c);
            split_free(&s);
            return;
        }
        if (p->slots)
            split_add_slot(&s, i, b, chash_redis_slot(key->ptr, key->len));
        else
            split_add(&s, i, b, 0, 0);
    }
    req *r = s.frag_count == 1 ? NULL : split_req(c, &s, kind, k->count);
    if (s.frag_count == 1) forward_to(c, spec, m, &p->backends[s.frag_backend[0]]);
    for (uint32_t f = 0; r && f < s.frag_count; f++) {
        frag *fr = &r->frags[f];
        for (uint32_t i = s.frag_first[f]; i != UINT32_MAX; i = s.next_key[i]) fr->count++;
        const char *why = NULL;
        backend *b = shard_reader(c, spec, &p->backends[s.frag_backend[f]], &why);
        if (!b) {
            frag_fail(fr, true, why);
            continue;
        }
        fr->ack_want = c->write_ack;
        if (p->slots) { /* redis-cluster: the part's bytes are kept for redirects */
            buf part = {0};
            put_part(&part, m, k, &s, f, fr->count);
            if (part.is_oom) {
                frag_fail(fr, true, "out of memory");
            } else {
                cluster_keep(fr, buf_start(&part), buf_used(&part));
                frag_send(fr, b, c, buf_start(&part), buf_used(&part));
            }
            buf_free(&part);
            continue;
        }
        bconn *bc = frag_conn(fr, b, c);
        if (!bc) continue;
        size_t before = buf_used(&bc->out);
        put_part(&bc->out, m, k, &s, f, fr->count);
        bconn_put_wait(bc, fr);
        bconn_push(bc, fr, buf_used(&bc->out) - before);
    }
    if (r) req_release(r);
    split_free(&s);
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

/* Replies to what makes m impossible to route as it is; false then. */
static bool route_check(client *c, const cmd_spec *spec, const resp_msg *m, cmd_keys *k) {
    if (spec->kind == CK_REFUSED) {
        reply_refused(c, spec, spec->why);
        return false;
    }
    if ((spec->flags & CMD_ADMIN) && c->pool->cf->refuse_admin_commands) {
        reply_refused(c, spec, "the pool refuses administrative commands "
                               "(refuse_admin_commands)");
        return false;
    }
    cmd_keys_err err = command_keys(spec, m, k);
    if (err != CMD_KEYS_OK) {
        reply_keys_error(c, m, err);
        return false;
    }
    const char *what = spec->flags & CMD_SCRIPT ? script_acts_on_server(&m->argv[1]) : NULL;
    if (what) {
        char text[160];
        snprintf(text, sizeof text, "-ERR the proxy refuses a script that calls %s: it would "
                 "act on one server of the pool\r\n", what);
        client_reply_str(c, text);
        return false;
    }
    return keys_ok(c, m, k);
}

/* m, checked, to where its kind of routing says. */
static void route_kind(client *c, const cmd_spec *spec, const resp_msg *m, const cmd_keys *k) {
    backend *b;
    switch (spec->kind) {
    case CK_KEY:
    case CK_KEYS:
    case CK_NUMKEYS:
    case CK_XREAD:
        if (!(b = keys_server(c, m, k))) return;
        if (k->is_blocking)
            held_blocking(c, m, b);
        else
            forward_to(c, spec, m, b);
        return;
    case CK_MGET:
    case CK_SUM:
    case CK_MSET:
        route_split(c, spec, m, k, spec->kind == CK_MGET ? REQ_MGET
                              : spec->kind == CK_SUM ? REQ_SUM
                                                     : REQ_MSET);
        return;
    case CK_WATCH:
        if ((b = keys_server(c, m, k))) held_command(c, spec, m, b);
        return;
    case CK_MULTI:
    case CK_EXEC:
    case CK_DISCARD:
    case CK_UNWATCH:
        held_command(c, spec, m, NULL);
        return;
    case CK_WAIT:
        held_wait(c, m);
        return;
    case CK_SELECT:
        held_select(c, m);
        return;
    case CK_SUBSCRIBE:
    case CK_PSUBSCRIBE:
    case CK_UNSUBSCRIBE:
    case CK_PUNSUBSCRIBE:
        pubsub_command(c, spec, m);
        return;
    case CK_PROXY:
        admin_command(c, m);
        return;
    case CK_PING:
        if (pubsub_count(c))
            pubsub_ping(c, m);
        else
            session_command(c, spec, m);
        return;
    case CK_RESET:
        held_reset(c);
        pubsub_release(c);
        session_command(c, spec, m);
        return;
    case CK_ECHO:
    case CK_QUIT:
    case CK_HELLO:
    case CK_AUTH:
    case CK_ACL:
        session_command(c, spec, m);
        return;
    case CK_CLIENT:
        clientcmd_command(c, spec, m);
        return;
    case CK_CLUSTER:
        clustercmd_command(c, spec, m);
        return;
    default:
        fanout_command(c, spec, m);
        return;
    }
}

static void route_spec(client *c, const cmd_spec *spec, const resp_msg *m) {
    if (pubsub_count(c) && !pubsub_allows(spec)) {
        pubsub_refuse(c, spec);
        return;
    }
    bool in_multi = held_in_multi(c, spec);
    cmd_keys k;
    if (!route_check(c, spec, m, &k)) {
        if (in_multi) held_dirty(c);
        return;
    }
    if (!in_multi) {
        /* A write with keys counts once min_replicas_ack replicas have it:
         * each fragment sent now carries a WAIT (server.c). */
        bool is_write = (k.count || k.dest) && !(spec->flags & CMD_READONLY) && !k.is_blocking;
        c->write_ack = is_write ? (uint8_t)c->pool->cf->min_replicas_ack : 0;
        route_kind(c, spec, m, &k);
        c->write_ack = 0;
        return;
    }
    backend *b = NULL;
    if ((k.count || k.dest) && !(b = keys_server(c, m, &k))) {
        held_dirty(c);
        return;
    }
    held_queue(c, spec, m, b);
}

/* Routes c->warm_msg, the command warm-up held back. */
static void route_resume(client *c) {
    const cmd_spec *spec = command_find(&c->warm_msg.argv[0]);
    if (spec) spec = command_sub(spec, &c->warm_msg);
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
        const resp_arg *key = command_key(m, &k, i);
        if (key->len <= limit) warmup_key(job, c->pool, key->ptr, key->len);
    }
    return warmup_end(job, m);
}

void route_redis(client *c, const resp_msg *m) {
    stat_add(&c->pool->st.requests, 1);
    clientcmd_begin(c);
    const cmd_spec *spec = command_find(&m->argv[0]);
    if (!spec) {
        reply_unknown(c, m);
        return;
    }
    const cmd_spec *sub = command_sub(spec, m);
    if (!sub) {
        reply_unknown_sub(c, spec, m);
        return;
    }
    spec = sub;
    c->last_cmd = spec;
    if (c->pool->cmd_requests) stat_add(&c->pool->cmd_requests[command_index(spec)], 1);
    /* Before anything moves or is queued: a refused command inside MULTI
     * makes EXEC fail, as Redis does. */
    if (!session_check(c, spec, m)) {
        if (held_in_multi(c, spec)) held_dirty(c);
        return;
    }
    if (warmup_active(c->pool) && warm_keys(c, spec, m)) return;
    route_spec(c, spec, m);
}

