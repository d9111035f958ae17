/*
 * clientcmd.c - CLIENT: about the client's own connection, which is to the
 * proxy (the servers only see the proxy's connections), so the proxy
 * answers.
 *
 * ID is the proxy's id of the connection. INFO and LIST describe
 * connections to the proxy in redis-server's line format, with the fields
 * the proxy knows: no field is made up, so some of redis-server's (multi,
 * sub, tot-mem...) are left out. LIST covers the clients of the same pool
 * on the same worker thread: a worker owns its clients, and reading
 * another worker's would race with it. REPLY sets c->reply_mode, which
 * req.c reads as each reply is made; NO-EVICT is remembered and shown
 * (flag e), as a server never sees the proxy's clients to evict them.
 *
 * Arguments are checked as redis-server 7.0 checks them, with its words.
 */
#include "proxy.h"

#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A socket address as redis-server writes it: ip:port, [ipv6]:port, or a
 * Unix socket's path:0 (a Unix client has no name of its own: redis-server
 * shows the listening path for both ends, as here). */
static void append_addr(buf *b, const struct sockaddr_storage *sa, const conf_pool *cf) {
    char ip[INET6_ADDRSTRLEN] = "?";
    char text[INET6_ADDRSTRLEN + 16];
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(text, sizeof text, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(text, sizeof text, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else if (cf->listen_addr.is_unix) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&cf->listen_addr.sa;
        const char *end = memchr(un->sun_path, '\0', sizeof un->sun_path);
        size_t len = end ? (size_t)(end - un->sun_path) : sizeof un->sun_path;
        buf_append(b, un->sun_path, len);
        buf_append_str(b, ":0");
        return;
    } else {
        snprintf(text, sizeof text, "?:0");
    }
    buf_append_str(b, text);
}

/*
 * One line of CLIENT INFO / LIST for x, without its newline: every field of
 * redis-server 7.0's, in its order (client libraries parse them all), with
 * the proxy's figures for x: sub/psub/ssub its subscriptions, multi -1 or,
 * in a transaction, 0 (what it queued is not counted), qbuf what it sent
 * that is not a command yet, rbs/rbp and qbuf-free the input buffer, obl
 * the replies not yet written, oll its requests waiting for their reply,
 * omem those replies' bytes, tot-mem what the proxy holds for it. argv-mem
 * and multi-mem are 0: the proxy keeps no arguments between reads, and a
 * transaction's commands wait on its server. `spec` is any command kind a
 * transaction would queue (held_in_multi then says whether x is in one).
 */
static void append_line(buf *b, const client *x, const cmd_spec *spec) {
    const uint64_t now_ms = x->w->now_ms;
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    char text[400];
    snprintf(text, sizeof text, "id=%llu addr=", (unsigned long long)x->id);
    buf_append_str(b, text);
    memset(&sa, 0, sizeof sa);
    if (getpeername(x->io.fd, (struct sockaddr *)&sa, &len) != 0) sa.ss_family = AF_UNSPEC;
    append_addr(b, &sa, x->pool->cf);
    buf_append_str(b, " laddr=");
    len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockname(x->io.fd, (struct sockaddr *)&sa, &len) != 0) sa.ss_family = AF_UNSPEC;
    append_addr(b, &sa, x->pool->cf);
    snprintf(text, sizeof text, " fd=%d name=", x->io.fd);
    buf_append_str(b, text);
    buf_append(b, buf_start(&x->name), buf_used(&x->name));
    size_t channels, patterns, shards;
    pubsub_counts(x, &channels, &patterns, &shards);
    bool in_multi = held_in_multi(x, spec);
    /* redis-server's flag letters, in its order, for what the proxy has. */
    char flags[8], *f = flags;
    if (channels + patterns + shards) *f++ = 'P';
    if (in_multi) *f++ = 'x';
    if (x->is_draining) *f++ = 'c';
    if (x->pool->cf->listen_addr.is_unix) *f++ = 'U';
    if (x->is_no_evict) *f++ = 'e';
    if (f == flags) *f++ = 'N';
    *f = '\0';
    size_t out_bytes = buf_used(&x->out), in_cap = x->rp.in.cap;
    size_t queued = resp_buffered(&x->rp);
    size_t tot_mem = sizeof *x + in_cap + x->out.cap + x->held_bytes + x->name.cap;
    snprintf(text, sizeof text,
             " age=%llu idle=%llu flags=%s db=%d sub=%zu psub=%zu ssub=%zu multi=%d qbuf=%zu"
             " qbuf-free=%zu argv-mem=0 multi-mem=0 rbs=%zu rbp=%zu obl=%zu oll=%u omem=%zu"
             " tot-mem=%zu events=%s%s cmd=",
             (unsigned long long)((now_ms - x->created_ms) / 1000),
             (unsigned long long)((now_ms - x->command_ms) / 1000), flags, x->db, channels,
             patterns, shards, in_multi ? 0 : -1, queued, in_cap - x->rp.in.len, in_cap, in_cap,
             out_bytes, x->depth, out_bytes + x->held_bytes, tot_mem,
             x->is_paused || x->is_draining ? "" : "r", out_bytes ? "w" : "");
    buf_append_str(b, text);
    buf_append_str(b, x->last_cmd ? x->last_cmd->name : "NULL");
    /* Its user (users:), else Redis's default; the proxy tracks nothing
     * and speaks RESP2. */
    buf_append_str(b, " user=");
    buf_append_str(b, x->user ? x->user->name : "default");
    buf_append_str(b, " redir=-1 resp=2");
}

/* The same pool, seen from one worker: a reload gives every client a new
 * pool of the same index. */
static bool same_pool(const client *a, const client *b) {
    return a->pool->index == b->pool->index;
}

/* CLIENT LIST [TYPE type | ID id...]: parsed as redis-server 7.0 does (TYPE
 * takes exactly one argument; everything after ID is an id). */
static void cmd_list(client *c, const cmd_spec *spec, const resp_msg *m) {
    enum { ALL, NORMAL, PUBSUB, NONE } type = ALL;
    if (m->argc == 4 && resp_arg_is(&m->argv[2], "type")) {
        const resp_arg *t = &m->argv[3];
        if (resp_arg_is(t, "normal")) {
            type = NORMAL;
        } else if (resp_arg_is(t, "pubsub")) {
            type = PUBSUB;
        } else if (resp_arg_is(t, "master") || resp_arg_is(t, "replica") ||
                   resp_arg_is(t, "slave")) {
            type = NONE; /* a proxy's clients are never replication links */
        } else {
            buf e = {0};
            buf_append_str(&e, "-ERR Unknown client type '");
            buf_append_safe(&e, t->ptr, t->len);
            buf_append_str(&e, "'\r\n");
            client_reply_buf(c, &e);
            return;
        }
    } else if (m->argc > 3 && resp_arg_is(&m->argv[2], "id")) {
        long long id;
        for (size_t i = 3; i < m->argc; i++)
            if (!resp_arg_int(&m->argv[i], &id)) {
                client_reply_str(c, "-ERR Invalid client ID\r\n");
                return;
            }
        buf text = {0};
        for (size_t i = 3; i < m->argc; i++) {
            resp_arg_int(&m->argv[i], &id);
            for (const client *x = c->w->clients; x; x = x->next)
                if ((unsigned long long)id == x->id && same_pool(x, c)) {
                    append_line(&text, x, spec);
                    buf_append(&text, "\n", 1);
                }
        }
        client_reply_text(c, &text);
        return;
    } else if (m->argc != 2) {
        client_reply_str(c, "-ERR syntax error\r\n");
        return;
    }
    /* Oldest first, as redis-server lists them; the worker's list is
     * newest first. */
    const client *oldest = c->w->clients;
    while (oldest && oldest->next) oldest = oldest->next;
    buf text = {0};
    for (const client *x = oldest; x && type != NONE; x = x->prev) {
        if (!same_pool(x, c)) continue;
        bool is_pubsub = pubsub_count(x) > 0;
        if ((type == NORMAL && is_pubsub) || (type == PUBSUB && !is_pubsub)) continue;
        append_line(&text, x, spec);
        buf_append(&text, "\n", 1);
    }
    client_reply_text(c, &text);
}

static void cmd_help(client *c, const cmd_spec *spec, const resp_msg *m) {
    (void)spec;
    (void)m;
    static const char *const lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection (the proxy's).",
        "INFO",
        "    Return information about the current client connection.",
        "LIST [options ...]",
        "    Return information about the connections to this pool on this proxy worker.",
        "    Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "    * ID <client-id> [<client-id> ...]",
        "      Return clients of the given ids.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction (servers never see it).",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "HELP",
        "    Prints this help.",
    };
    buf b = {0};
    buf_append_header(&b, '*', sizeof lines / sizeof lines[0]);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        buf_append(&b, "+", 1);
        buf_append_str(&b, lines[i]);
        buf_append(&b, "\r\n", 2);
    }
    client_reply_buf(c, &b);
}

static void cmd_setname(client *c, const cmd_spec *spec, const resp_msg *m) {
    (void)spec;
    client_reply_str(c, client_set_name(c, &m->argv[2]) ? "+OK\r\n" : CLIENT_NAME_ERROR);
}

static void cmd_getname(client *c, const cmd_spec *spec, const resp_msg *m) {
    (void)spec;
    (void)m;
    if (buf_used(&c->name) == 0) {
        client_reply_str(c, "$-1\r\n");
        return;
    }
    buf b = {0};
    buf_append_bulk(&b, buf_start(&c->name), buf_used(&c->name));
    client_reply_buf(c, &b);
}

static void cmd_id(client *c, const cmd_spec *spec, const resp_msg *m) {
    (void)spec;
    (void)m;
    buf b = {0};
    buf_append_header(&b, ':', c->id);
    client_reply_buf(c, &b);
}

static void cmd_info(client *c, const cmd_spec *spec, const resp_msg *m) {
    (void)m;
    buf line = {0};
    append_line(&line, c, spec);
    buf_append(&line, "\n", 1);
    client_reply_text(c, &line);
}

static void cmd_no_evict(client *c, const cmd_spec *spec, const resp_msg *m) {
    (void)spec;
    if (!resp_arg_is(&m->argv[2], "on") && !resp_arg_is(&m->argv[2], "off")) {
        client_reply_str(c, "-ERR syntax error\r\n");
        return;
    }
    c->is_no_evict = resp_arg_is(&m->argv[2], "on");
    client_reply_str(c, "+OK\r\n");
}

/* OFF and SKIP are not answered: their own reply is the first one they
 * drop. ON's +OK goes out, as ON comes first. */
static void cmd_reply(client *c, const cmd_spec *spec, const resp_msg *m) {
    (void)spec;
    const resp_arg *mode = &m->argv[2];
    if (resp_arg_is(mode, "on")) {
        c->reply_mode = REPLY_ON;
        client_reply_str(c, "+OK\r\n");
    } else if (resp_arg_is(mode, "off")) {
        c->reply_mode = REPLY_OFF;
    } else if (resp_arg_is(mode, "skip")) {
        if (c->reply_mode != REPLY_OFF) c->reply_mode = REPLY_SKIP_NEXT;
    } else {
        client_reply_str(c, "-ERR syntax error\r\n");
    }
}

/* The subcommands, with the arguments each takes counting CLIENT and its
 * name, as redis-server 7.0's table has them (negative: at least). */
static const struct {
    const char *name;
    int arity;
    void (*fn)(client *c, const cmd_spec *spec, const resp_msg *m);
} subcommands[] = {
    {"client|getname", 2, cmd_getname}, {"client|setname", 3, cmd_setname},
    {"client|id", 2, cmd_id},           {"client|info", 2, cmd_info},
    {"client|list", -2, cmd_list},      {"client|no-evict", 3, cmd_no_evict},
    {"client|reply", 3, cmd_reply},     {"client|help", 2, cmd_help},
};

void clientcmd_command(client *c, const cmd_spec *spec, const resp_msg *m) {
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) {
        if (strcmp(subcommands[i].name, spec->name) != 0) continue;
        int arity = subcommands[i].arity;
        if (arity >= 0 ? m->argc != (size_t)arity : m->argc < (size_t)-arity) {
            char text[96];
            snprintf(text, sizeof text, "-ERR wrong number of arguments for '%s' command\r\n",
                     spec->name);
            client_reply_str(c, text);
            return;
        }
        subcommands[i].fn(c, spec, m);
        return;
    }
    client_reply_str(c, "-ERR the proxy has no such CLIENT subcommand\r\n");
}
