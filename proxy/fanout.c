/*
 * fanout.c - commands for every server of the pool (DBSIZE, FLUSHALL, KEYS,
 * SCRIPT LOAD...), for any one of them (TIME, CONFIG GET...), and SCAN,
 * which walks the servers one after the other.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
