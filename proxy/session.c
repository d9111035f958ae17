/*
 * session.c - the commands about the connection itself, answered by the
 * proxy: PING, ECHO, QUIT, AUTH, HELLO, RESET.
 *
 * AUTH checks the pool's redis_auth (the default user only); HELLO speaks
 * RESP2 and can authenticate. SELECT is held.c's.
 */
#include "proxy.h"

#include <stdio.h>
#include <string.h>

void session_arity_error(client *c, const resp_arg *name) {
    buf b = {0};
    buf_append_str(&b, "-ERR wrong number of arguments for '");
    /* Named as the table names it, as Redis does (lowercase). */
    char lower[32];
    size_t n = name->len < sizeof lower ? name->len : sizeof lower;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)(name->ptr[i] >= 'A' && name->ptr[i] <= 'Z' ? name->ptr[i] + 32
                                                                     : name->ptr[i]);
    buf_append_safe(&b, lower, n);
    buf_append_str(&b, "' command\r\n");
    client_reply_buf(c, &b);
}

/* One argument as a bulk string (PING msg, ECHO). */
static void reply_bulk(client *c, const resp_arg *a) {
    buf b = {0};
    buf_append_bulk(&b, a->ptr, a->len);
    client_reply_buf(c, &b);
}

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

static void auth(client *c, const resp_msg *m) {
    const conf_pool *cf = c->pool->cf;
    if (m->argc != 2 && m->argc != 3) {
        session_arity_error(c, &m->argv[0]);
        return;
    }
    if (!cf->redis_auth) {
        client_reply_str(c, "-ERR AUTH <password> called without any password configured "
                            "for the default user. Are you sure your configuration is "
                            "correct?\r\n");
        return;
    }
    bool user_ok = m->argc == 2 || resp_arg_is(&m->argv[1], "default");
    bool pass_ok = password_ok(cf, &m->argv[m->argc - 1]);
    if (!user_ok || !pass_ok) {
        client_reply_str(c, wrongpass);
        return;
    }
    client_set_authed(c, true);
    client_reply_str(c, "+OK\r\n");
}

static void hello(client *c, const resp_msg *m) {
    const conf_pool *cf = c->pool->cf;
    size_t i = 1;
    if (m->argc >= 2) {
        long long proto;
        if (!resp_arg_int(&m->argv[1], &proto)) {
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
        if (resp_arg_is(&m->argv[i], "auth") && i + 2 < m->argc) {
            if (cf->redis_auth &&
                (!resp_arg_is(&m->argv[i + 1], "default") || !password_ok(cf, &m->argv[i + 2]))) {
                client_reply_str(c, wrongpass);
                return;
            }
            is_authed = true;
            i += 2;
        } else if (resp_arg_is(&m->argv[i], "setname") && i + 1 < m->argc) {
            /* Named at once, as redis-server 7.0 does, before AUTH is checked. */
            if (!client_set_name(c, &m->argv[++i])) {
                client_reply_str(c, CLIENT_NAME_ERROR);
                return;
            }
        } else {
            buf b = {0};
            buf_append_str(&b, "-ERR Syntax error in HELLO option '");
            buf_append_safe(&b, m->argv[i].ptr, m->argv[i].len);
            buf_append_str(&b, "'\r\n");
            client_reply_buf(c, &b);
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
    client_set_authed(c, true);
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
    /* As INFO's cluster_enabled:1 and CLUSTER (clustercmd.c) say: the
     * proxy looks like a cluster to the clients that ask. */
    buf_append_bulk(&b, "mode", 4);
    buf_append_bulk(&b, "cluster", 7);
    buf_append_bulk(&b, "role", 4);
    buf_append_bulk(&b, "master", 6);
    buf_append_bulk(&b, "modules", 7);
    buf_append_header(&b, '*', 0);
    client_reply_buf(c, &b);
}

void session_command(client *c, const cmd_spec *spec, const resp_msg *m) {
    const resp_arg *name = &m->argv[0];
    switch (spec->kind) {
    case CK_PING:
        if (m->argc == 1)
            client_reply_str(c, "+PONG\r\n");
        else if (m->argc == 2)
            reply_bulk(c, &m->argv[1]);
        else
            session_arity_error(c, name);
        return;
    case CK_ECHO:
        if (m->argc != 2)
            session_arity_error(c, name);
        else
            reply_bulk(c, &m->argv[1]);
        return;
    case CK_QUIT:
        client_reply(c, "+OK\r\n", 5, true);
        return;
    case CK_RESET:
        /* held.c and pubsub.c have dropped what the servers knew; the rest
         * as redis-server's RESET: no name, replies on, NO-EVICT off. */
        client_set_authed(c, c->pool->cf->redis_auth == NULL);
        buf_clear(&c->name);
        c->reply_mode = REPLY_ON;
        c->is_no_evict = false;
        client_reply_str(c, "+RESET\r\n");
        return;
    case CK_HELLO:
        hello(c, m);
        return;
    case CK_AUTH:
        auth(c, m);
        return;
    default:
        return;
    }
}
