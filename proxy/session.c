/*
 * session.c - who the client is, and the commands about the connection
 * itself, answered by the proxy: PING, ECHO, QUIT, AUTH, HELLO, RESET, ACL
 * WHOAMI and ACL CAT.
 *
 * In a pool with `users:` (acl.h) a client is a user: `default` until it
 * authenticates when that user is on and nopass (as Redis), else nobody,
 * and then it may only AUTH, HELLO or QUIT. AUTH and HELLO ... AUTH check
 * a user's password (its SHA-256, in constant time); every other command
 * passes acl_check first (session_check). Without `users:`, AUTH checks the
 * pool's redis_auth (the default user only) and nothing else is checked.
 * A reload re-resolves each client's user by name (session_rebind). HELLO
 * speaks RESP2. SELECT is held.c's.
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

/* A wrong name or password: counted (auth_failed: a guesser shows), logged
 * at most once a second without what was tried, and answered as Redis. */
static void auth_failed(client *c) {
    static log_limit limit;
    stat_add(&c->pool->st.auth_failed, 1);
    proxy_log_limited(&limit, LOG_WARN, "pool %s: client id=%llu: AUTH failed",
                      c->pool->cf->name, (unsigned long long)c->id);
    client_reply_str(c, wrongpass);
}

/* The user an unauthenticated client of the pool is: `default` when it is
 * on and nopass, else none (it must AUTH). */
static const acl_user *implicit_user(const conf_pool *cf) {
    const acl_user *u = acl_user_find(cf->users, cf->user_count, "default", 7);
    return u && u->is_on && u->is_nopass ? u : NULL;
}

void session_begin(client *c) {
    const conf_pool *cf = c->pool->cf;
    c->user = cf->user_count ? implicit_user(cf) : NULL;
    buf_clear(&c->user_name);
    c->is_user_lost = false;
    client_set_authed(c, cf->user_count ? c->user != NULL : cf->redis_auth == NULL);
}

/* c is now the user `name` (authenticated). */
static void become(client *c, const acl_user *u, const char *name, size_t len) {
    c->user = u;
    buf_clear(&c->user_name);
    buf_append(&c->user_name, name, len);
    c->is_user_lost = false;
    client_set_authed(c, true);
}

void session_rebind(client *c, const conf_pool *before) {
    const conf_pool *cf = c->pool->cf;
    /* Between pools without users, as it always was: nothing changes. */
    if ((!before->user_count && !cf->user_count) || c->is_user_lost) return;
    if (buf_used(&c->user_name) == 0) { /* never authenticated: as a new client */
        session_begin(c);
        return;
    }
    const char *name = buf_start(&c->user_name);
    size_t len = buf_used(&c->user_name);
    const acl_user *u = acl_user_find(cf->users, cf->user_count, name, len);
    if (u && u->is_on) {
        c->user = u; /* its rules as they are now */
        return;
    }
    if (!cf->user_count && !cf->redis_auth) { /* users gone, and no password */
        c->user = NULL;
        client_set_authed(c, true);
        return;
    }
    /* Removed, switched off, or users gone for redis_auth, which it did not
     * give: told at its next command (the name is kept for that), then it
     * must AUTH again. */
    c->user = NULL;
    c->is_user_lost = true;
    client_set_authed(c, false);
}

/* Whether kind may run before AUTH (Redis's no-auth commands the proxy
 * answers; RESET needs a session in the proxy). */
static bool is_no_auth(cmd_kind kind) {
    return kind == CK_AUTH || kind == CK_HELLO || kind == CK_QUIT;
}

bool session_check(client *c, const cmd_spec *spec, const resp_msg *m) {
    if (c->is_user_lost && !is_no_auth(spec->kind)) {
        buf b = {0};
        buf_append_str(&b, "-NOAUTH user '");
        buf_append_safe(&b, buf_start(&c->user_name), buf_used(&c->user_name));
        buf_append_str(&b, "' was removed or disabled by a configuration reload: AUTH "
                           "again\r\n");
        client_reply_buf(c, &b);
        c->is_user_lost = false;
        buf_clear(&c->user_name);
        return false;
    }
    if (!c->is_authed && !is_no_auth(spec->kind)) {
        client_reply_str(c, "-NOAUTH Authentication required.\r\n");
        return false;
    }
    if (!c->user) return true;
    acl_verdict v = acl_check(c->user, spec, m);
    if (v == ACL_OK) return true;
    char text[300];
    acl_verdict_text(v, spec, text, sizeof text);
    client_reply_str(c, text);
    return false;
}

static const char no_default_pass[] =
    "-ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?\r\n";

/* AUTH [user] password with the pool's redis_auth, as it always was. */
static void auth_redis_auth(client *c, const resp_msg *m) {
    const conf_pool *cf = c->pool->cf;
    if (m->argc != 2 && m->argc != 3) {
        session_arity_error(c, &m->argv[0]);
        return;
    }
    if (!cf->redis_auth) {
        client_reply_str(c, no_default_pass);
        return;
    }
    bool user_ok = m->argc == 2 || resp_arg_is(&m->argv[1], "default");
    bool pass_ok = password_ok(cf, &m->argv[m->argc - 1]);
    if (!user_ok || !pass_ok) {
        auth_failed(c);
        return;
    }
    become(c, NULL, "default", 7);
    client_reply_str(c, "+OK\r\n");
}

/* AUTH [user] password against the pool's users, as Redis 7.0 answers. */
static void auth(client *c, const resp_msg *m) {
    const conf_pool *cf = c->pool->cf;
    if (!cf->user_count) {
        auth_redis_auth(c, m);
        return;
    }
    if (m->argc < 2) {
        session_arity_error(c, &m->argv[0]);
        return;
    }
    if (m->argc > 3) {
        client_reply_str(c, "-ERR syntax error\r\n");
        return;
    }
    const acl_user *def = acl_user_find(cf->users, cf->user_count, "default", 7);
    if (m->argc == 2 && def && def->is_nopass) {
        client_reply_str(c, no_default_pass);
        return;
    }
    const resp_arg *name = m->argc == 3 ? &m->argv[1] : &(resp_arg){"default", 7};
    const resp_arg *pass = &m->argv[m->argc - 1];
    const acl_user *u =
        acl_authenticate(cf->users, cf->user_count, name->ptr, name->len, pass->ptr, pass->len);
    if (!u) {
        auth_failed(c);
        return;
    }
    become(c, u, name->ptr, name->len);
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
            const resp_arg *name = &m->argv[i + 1], *pass = &m->argv[i + 2];
            const acl_user *u = NULL;
            if (cf->user_count) {
                u = acl_authenticate(cf->users, cf->user_count, name->ptr, name->len,
                                     pass->ptr, pass->len);
                if (!u) {
                    auth_failed(c);
                    return;
                }
            } else if (cf->redis_auth &&
                       (!resp_arg_is(name, "default") || !password_ok(cf, pass))) {
                auth_failed(c);
                return;
            }
            become(c, u, name->ptr, name->len);
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

/* ACL WHOAMI: the client's user; ACL CAT [category]: Redis's categories,
 * or the commands of one (each as the table names it: "config|get"). */
static void acl_command(client *c, const cmd_spec *spec, const resp_msg *m) {
    buf b = {0};
    if (strcmp(spec->name, "acl|whoami") == 0) {
        if (m->argc != 2) {
            client_reply_str(c, "-ERR wrong number of arguments for 'acl|whoami' command\r\n");
            return;
        }
        const char *name = c->user ? c->user->name : "default";
        buf_append_bulk(&b, name, strlen(name));
        client_reply_buf(c, &b);
        return;
    }
    if (m->argc > 3) {
        buf_append_str(&b, "-ERR unknown subcommand or wrong number of arguments for '");
        buf_append_safe(&b, m->argv[1].ptr, m->argv[1].len);
        buf_append_str(&b, "'. Try ACL HELP.\r\n");
        client_reply_buf(c, &b);
        return;
    }
    if (m->argc == 2) {
        buf_append_header(&b, '*', CMD_ACL_CATEGORY_COUNT);
        for (unsigned i = 0; i < CMD_ACL_CATEGORY_COUNT; i++)
            buf_append_bulk(&b, command_acl_name(i), strlen(command_acl_name(i)));
        client_reply_buf(c, &b);
        return;
    }
    uint32_t category = command_acl_find(m->argv[2].ptr, m->argv[2].len);
    if (!category) {
        buf_append_str(&b, "-ERR Unknown category '");
        buf_append_safe(&b, m->argv[2].ptr, m->argv[2].len > 64 ? 64 : m->argv[2].len);
        buf_append_str(&b, "'\r\n");
        client_reply_buf(c, &b);
        return;
    }
    size_t count = 0;
    for (size_t i = 0; i < command_count(); i++) count += (command_at(i)->acl & category) != 0;
    buf_append_header(&b, '*', count);
    for (size_t i = 0; i < command_count(); i++)
        if (command_at(i)->acl & category)
            buf_append_bulk(&b, command_name(i), strlen(command_name(i)));
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
        session_begin(c);
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
    case CK_ACL:
        acl_command(c, spec, m);
        return;
    default:
        return;
    }
}
