/*
 * fanout.c - commands for every server of the pool (DBSIZE, FLUSHALL, KEYS,
 * SCRIPT LOAD, INFO, RANDOMKEY...), for any one of them (TIME, CONFIG
 * GET...), and SCAN, which walks the servers one after the other.
 *
 * A command for every server goes to each configured server as fragment k
 * of one request (k: the server's index), and merge.c makes the one reply
 * from theirs by the request's kind.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * A request for every configured server of the pool, fragment k for server
 * k (merges name a server by it), or NULL after replying.
 */
static req *all_req(client *c, req_kind kind) {
    wpool *p = c->pool;
    if (p->server_count == 0) {
        reply_no_server(c);
        return NULL;
    }
    req *r = req_new(c, kind, (uint32_t)p->server_count);
    if (!r) {
        reply_oom(c);
        return NULL;
    }
    r->all_pool = p;
    return r;
}

/*
 * The command, whole, to every server as r's fragments; the replies merge
 * by r's kind. A server that is down or ejected fails its part, and the
 * merged reply is that error: a DBSIZE without one server's keys would be
 * a wrong answer, not a smaller one.
 *
 * is_own: each part goes on a connection of the client's own, closed once
 * answered. SCRIPT KILL and FUNCTION KILL need it: the busy script's EVAL
 * holds the shared connection, and a KILL queued behind it would reach
 * the server only once the script is over.
 */
static void all_send(client *c, req *r, const resp_msg *m, bool is_own) {
    wpool *p = c->pool;
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
            continue;
        }
        /* A client with a connection of its own to b (a transaction, a
         * blocked command) already has its turn there. */
        bconn *own = is_own && !b->is_down && !held_conn_find(c, b) ? bconn_held_new(b, c) : NULL;
        frag_send(&r->frags[k], b, c, data, len);
        if (own) bconn_held_retire(own);
    }
    buf_free(&tmp);
    req_release(r);
}

static void route_all(client *c, const resp_msg *m, req_kind kind) {
    req *r = all_req(c, kind);
    if (r) all_send(c, r, m, false);
}

static void info_stat(void *arg, const char *name, uint64_t v) {
    buf *b = arg;
    buf_append_str(b, "proxy_");
    buf_append_str(b, name);
    buf_append(b, ":", 1);
    buf_append_u64(b, v);
    buf_append(b, "\r\n", 2);
}

/*
 * INFO's section about the proxy and the pool, in INFO's "name:value"
 * lines. Live servers are this worker's view (each worker judges its
 * servers on its own). The pool's statistics are stats.h's, summed over
 * the workers and named proxy_NAME, as memcached's stats has them.
 */
static void info_proxy(client *c, buf *b) {
    proxy *px = c->w->px;
    const wpool *p = c->pool;
    size_t live = 0;
    for (size_t k = 0; k < p->server_count; k++) live += !backend_is_out(&p->backends[k]);
    char text[256];
    snprintf(text, sizeof text,
             "# Proxy\r\nproxy_version:%s\r\nproxy_uptime_in_seconds:%llu\r\n"
             "proxy_workers:%u\r\nproxy_worker:%u\r\nproxy_pool:",
             CHASH_VERSION_STRING, (unsigned long long)((uint64_t)time(NULL) - px->start_time),
             px->worker_count, c->w->id);
    buf_append_str(b, text);
    buf_append_safe(b, p->cf->name, strlen(p->cf->name));
    snprintf(text, sizeof text, "\r\nproxy_servers:%zu\r\nproxy_servers_live:%zu\r\n",
             p->server_count, live);
    buf_append_str(b, text);
    stats_pool_each(px, p->index, info_stat, b);
}

/*
 * INFO [section...]: the proxy's section, when the sections asked include
 * it (none, default, all, everything, proxy; any case, as Redis reads
 * them), then every server's sections merged (merge.c). The servers judge
 * the section names themselves.
 */
static void route_info(client *c, const resp_msg *m) {
    bool has_proxy = m->argc == 1;
    for (size_t i = 1; i < m->argc; i++)
        has_proxy |= resp_arg_is(&m->argv[i], "default") || resp_arg_is(&m->argv[i], "all") ||
                     resp_arg_is(&m->argv[i], "everything") || resp_arg_is(&m->argv[i], "proxy");
    req *r = all_req(c, REQ_INFO);
    if (!r) return;
    if (has_proxy) info_proxy(c, &r->reply);
    all_send(c, r, m, false);
}

/* SLOWLOG GET [count]: the servers check count; the merge keeps as many of
 * the newest entries (10 unless asked, all for -1). */
static void route_slowlog(client *c, const resp_msg *m) {
    long long count = 10;
    if (m->argc >= 3 && (!resp_arg_int(&m->argv[2], &count) || count < -1)) count = 10;
    req *r = all_req(c, REQ_SLOWLOG);
    if (!r) return;
    r->limit = count;
    all_send(c, r, m, false);
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


void fanout_command(client *c, const cmd_spec *spec, const resp_msg *m) {
    switch (spec->kind) {
    case CK_ALL_SUM:
        route_all(c, m, REQ_SUM);
        return;
    case CK_ALL_OK:
        route_all(c, m, REQ_MSET);
        return;
    case CK_ALL_SAME:
        route_all(c, m, REQ_SAME);
        return;
    case CK_ALL_CONCAT:
        route_all(c, m, REQ_CONCAT);
        return;
    case CK_ALL_AND:
        route_all(c, m, REQ_AND);
        return;
    case CK_ALL_ANY: {
        req *r = all_req(c, REQ_ANY);
        if (r) all_send(c, r, m, true);
        return;
    }
    case CK_ALL_PAIRS:
        route_all(c, m, REQ_PAIRS);
        return;
    case CK_ALL_NEWEST:
        route_slowlog(c, m);
        return;
    case CK_ALL_INFO:
        route_info(c, m);
        return;
    case CK_RANDOM:
        route_all(c, m, REQ_RANDOM);
        return;
    case CK_ONE:
        route_one(c, m);
        return;
    case CK_SCAN:
        route_scan(c, m);
        return;
    default: {
        char text[160];
        snprintf(text, sizeof text, "-ERR '%s' is not served by the proxy yet\r\n", spec->name);
        client_reply_str(c, text);
        return;
    }
    }
}
