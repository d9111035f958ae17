/*
 * held.c - commands that need a server connection of the client's own:
 * transactions (MULTI, EXEC, DISCARD, WATCH, UNWATCH), blocking commands
 * (BLPOP, XREAD BLOCK...), WAIT; and SELECT, RESET and what a reload or a
 * lost connection does to that state.
 *
 * A client that holds a connection to a server sends all its commands for
 * that server on it (frag_conn), so they stay in its order there; a held
 * connection made while the client still waits for replies on shared ones
 * is corked until those are answered (server.c), so nothing it sends can
 * overtake them. The client keeps its held connections until it closes:
 * a job worker looping on BRPOP does not connect once a job.
 *
 * A transaction is MULTI, EXEC and everything between on the connection of
 * its keys' server. The proxy answers MULTI itself and keeps commands
 * without keys (PING, TIME) until a key names the server; then MULTI and
 * those go first, their replies dropped (they were answered QUEUED). A
 * command whose keys live on another server, or that needs every server,
 * is refused and the transaction discarded at EXEC (EXECABORT), as Redis
 * does on a queuing error.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct txn {
    bool is_multi;   /* between MULTI and EXEC or DISCARD */
    bool is_dirty;   /* a command was refused: EXEC answers EXECABORT */
    bool is_broken;  /* its connection was lost or the pool reloaded */
    bool multi_sent; /* MULTI is on conn */
    bconn *conn;     /* the connection of its keys' server (WATCH or a key), or NULL */
    uint32_t conn_gen; /* conn's socket that carries it (bconn.gen), or 0 */
    buf early;       /* commands without keys, before conn was known */
};

static const char execabort[] = "-EXECABORT Transaction discarded because of previous errors.\r\n";

static struct txn *txn_get(client *c) {
    if (!c->txn) c->txn = calloc(1, sizeof *c->txn);
    return c->txn;
}

/* Back to no transaction; the connection stays held (see above). */
static void txn_end(struct txn *t) {
    buf_free(&t->early);
    *t = (struct txn){0};
}

/* The client's held connection to b, made if needed; NULL after replying
 * when there can be none. */
static bconn *held_conn(client *c, backend *b) {
    bconn *bc = held_conn_find(c, b);
    if (!bc) bc = bconn_held_new(b, c);
    if (!bc)
        client_reply_str(c, "-ERR the proxy cannot open a server connection for this client "
                            "(out of memory or file descriptors)\r\n");
    return bc;
}

/* Whether t's connection still carries what the server knows of it: the
 * same socket (a lost one may have been replaced since). */
static bool txn_conn_ok(client *c, const struct txn *t) {
    return t->conn && !t->is_broken && held_conn_find(c, t->conn->b) == t->conn &&
           (t->conn_gen == 0 || (t->conn->gen == t->conn_gen && t->conn->state != BC_IDLE));
}

/* What the server now knows of the transaction lives on this socket. */
static void txn_used(struct txn *t) {
    if (!t->conn_gen) t->conn_gen = t->conn->gen;
}

/* MULTI and the early commands, ahead of the first one with a key; the
 * client's database first, which inside MULTI would be queued. */
static void txn_open(client *c, struct txn *t) {
    if (t->multi_sent) return;
    static const char multi[] = "*1\r\n$5\r\nMULTI\r\n";
    if (bconn_ensure(t->conn) < 0) {
        t->is_broken = true;
        return;
    }
    bconn_use_db(t->conn, c->db);
    txn_used(t);
    bconn_swallow(t->conn, multi, sizeof multi - 1, 0);
    const char *p = buf_start(&t->early);
    size_t left = buf_used(&t->early);
    while (left) { /* one swallowed request per early command */
        resp_reply_parser rr;
        resp_reply_init(&rr);
        size_t len = 0;
        if (resp_reply_next(&rr, p, left, &len) != 1) break;
        bconn_swallow(t->conn, p, len, 0);
        p += len;
        left -= len;
    }
    buf_free(&t->early);
    t->multi_sent = true;
}

/* A refused command inside MULTI: its error now, EXECABORT at EXEC. */
static void txn_refuse(client *c, const char *text) {
    c->txn->is_dirty = true;
    client_reply_str(c, text);
}

void held_dirty(client *c) {
    if (c->txn && c->txn->is_multi) c->txn->is_dirty = true;
}

bool held_in_multi(const client *c, const cmd_spec *spec) {
    if (!c->txn || !c->txn->is_multi) return false;
    switch (spec->kind) {
    case CK_EXEC:
    case CK_DISCARD:
    case CK_MULTI:
    case CK_WATCH:
    case CK_QUIT:
    case CK_RESET:
        return false;
    default:
        return true;
    }
}

void held_queue(client *c, const cmd_spec *spec, const resp_msg *m, backend *b) {
    struct txn *t = c->txn;
    if (t->is_dirty || t->is_broken) {
        /* Redis queues on after an error; EXEC then discards it all. */
        client_reply_str(c, "+QUEUED\r\n");
        return;
    }
    switch (spec->kind) {
    case CK_KEY:
    case CK_KEYS:
    case CK_NUMKEYS:
    case CK_XREAD:
    case CK_MGET:
    case CK_SUM:
    case CK_MSET:
    case CK_ONE:
    case CK_PING:
    case CK_ECHO:
    case CK_UNWATCH:
        break;
    default: {
        char text[200];
        snprintf(text, sizeof text, "-ERR '%s' cannot be queued in a transaction through the "
                 "proxy: a transaction runs on one server\r\n", spec->name);
        txn_refuse(c, text);
        return;
    }
    }
    if (!b && !t->conn) {
        buf tmp = {0};
        const char *data;
        size_t len;
        resp_wire(m, &tmp, &data, &len);
        buf_append(&t->early, data, len);
        buf_free(&tmp);
        if (t->early.is_oom) {
            txn_refuse(c, "-ERR out of memory\r\n");
            return;
        }
        client_reply_str(c, "+QUEUED\r\n");
        return;
    }
    if (b && t->conn && t->conn->b != b) {
        txn_refuse(c, "-ERR the transaction's keys must live on one server: this command's "
                      "keys are on another (use a hash tag)\r\n");
        return;
    }
    if (!t->conn) {
        t->conn = held_conn(c, b);
        if (!t->conn) {
            t->is_dirty = true;
            return;
        }
    }
    if (!txn_conn_ok(c, t)) {
        txn_refuse(c, "-ERR the transaction's server connection was lost\r\n");
        return;
    }
    txn_open(c, t);
    forward_resp(c, m, t->conn->b);
}

/* The first live server: where a transaction without keys runs. */
static backend *any_server(wpool *p) {
    for (size_t k = 0; k < p->server_count; k++)
        if (!backend_is_out(&p->backends[k])) return &p->backends[k];
    return NULL;
}

static void txn_exec(client *c, const resp_msg *m) {
    struct txn *t = c->txn;
    if (!t || !t->is_multi) {
        client_reply_str(c, "-ERR EXEC without MULTI\r\n");
        return;
    }
    if (t->is_dirty || t->is_broken) {
        if (t->multi_sent && txn_conn_ok(c, t)) {
            static const char discard[] = "*1\r\n$7\r\nDISCARD\r\n";
            bconn_swallow(t->conn, discard, sizeof discard - 1, 0);
        }
        client_reply_str(c, t->is_broken ? "-EXECABORT Transaction discarded: its server "
                                           "connection was lost or the pool reloaded\r\n"
                                         : execabort);
        txn_end(t);
        return;
    }
    if (!t->conn && buf_used(&t->early) == 0) {
        client_reply_str(c, "*0\r\n");
        txn_end(t);
        return;
    }
    if (!t->conn) {
        backend *b = any_server(c->pool);
        t->conn = b ? held_conn(c, b) : NULL;
        if (!b) reply_no_server(c);
        if (!t->conn) {
            txn_end(t);
            return;
        }
    }
    if (!txn_conn_ok(c, t)) {
        client_reply_str(c, "-EXECABORT Transaction discarded: its server connection was "
                            "lost\r\n");
        txn_end(t);
        return;
    }
    txn_open(c, t);
    forward_resp(c, m, t->conn->b);
    txn_end(t);
}

static void txn_discard(client *c, const resp_msg *m) {
    struct txn *t = c->txn;
    if (!t || !t->is_multi) {
        client_reply_str(c, "-ERR DISCARD without MULTI\r\n");
        return;
    }
    if (t->multi_sent && txn_conn_ok(c, t))
        forward_resp(c, m, t->conn->b); /* the server's +OK; it unwatches too */
    else
        client_reply_str(c, "+OK\r\n");
    txn_end(t);
}

static void txn_multi(client *c, const resp_msg *m) {
    struct txn *t = txn_get(c);
    if (!t) {
        reply_oom(c);
        return;
    }
    if (t->is_multi) {
        client_reply_str(c, "-ERR MULTI calls can not be nested\r\n");
        return;
    }
    t->is_multi = true;
    if (t->conn && txn_conn_ok(c, t)) {
        t->multi_sent = true;
        forward_resp(c, m, t->conn->b);
        return;
    }
    client_reply_str(c, "+OK\r\n");
}

static void txn_watch(client *c, const resp_msg *m, backend *b) {
    struct txn *t = txn_get(c);
    if (!t) {
        reply_oom(c);
        return;
    }
    if (t->is_multi) {
        client_reply_str(c, "-ERR WATCH inside MULTI is not allowed\r\n");
        return;
    }
    if (t->conn && t->conn->b != b) {
        client_reply_str(c, "-ERR the proxy watches keys of one server at a time: these live "
                            "on another server than the keys already watched (use a hash "
                            "tag)\r\n");
        return;
    }
    if (!t->conn) t->conn = held_conn(c, b);
    if (!t->conn) return;
    if (!txn_conn_ok(c, t)) {
        client_reply_str(c, "-ERR the watched keys' server connection was lost: UNWATCH or "
                            "DISCARD, then try again\r\n");
        return;
    }
    forward_resp(c, m, b);
    txn_used(t);
}

static void txn_unwatch(client *c, const resp_msg *m) {
    struct txn *t = c->txn;
    if (t && t->conn && txn_conn_ok(c, t))
        forward_resp(c, m, t->conn->b);
    else
        client_reply_str(c, "+OK\r\n");
    if (t) txn_end(t);
}

void held_command(client *c, const cmd_spec *spec, const resp_msg *m, backend *b) {
    switch (spec->kind) {
    case CK_MULTI:
        txn_multi(c, m);
        return;
    case CK_EXEC:
        txn_exec(c, m);
        return;
    case CK_DISCARD:
        txn_discard(c, m);
        return;
    case CK_WATCH:
        txn_watch(c, m, b);
        return;
    case CK_UNWATCH:
        txn_unwatch(c, m);
        return;
    default:
        return;
    }
}

/* ---- blocking commands and WAIT ----------------------------------------- */

void held_blocking(client *c, const resp_msg *m, backend *b) {
    if (!held_conn(c, b)) return;
    req *r = req_new(c, REQ_FORWARD, 1);
    if (!r) {
        reply_oom(c);
        return;
    }
    r->one.is_blocking = true;
    buf tmp = {0};
    const char *data;
    size_t len;
    resp_wire(m, &tmp, &data, &len);
    if (tmp.is_oom)
        frag_fail(&r->one, true, "out of memory");
    else
        frag_send(&r->one, b, c, data, len);
    buf_free(&tmp);
    req_release(r);
}

/*
 * WAIT numreplicas timeout: on every server, the replicas that have
 * everything it had when WAIT arrived, after this client's earlier
 * commands were answered; the reply is the least of the servers' counts.
 * Redis counts from the last write of the connection WAIT arrives on, and
 * the client's writes went on shared connections: so each held connection
 * first PUBLISHes to a channel of the proxy's own (which the server
 * replicates, and no one reads), which makes its offset the server's.
 */
#define WAIT_CHANNEL "__chash-proxy:wait__"

void held_wait(client *c, const resp_msg *m) {
    wpool *p = c->pool;
    long long n, ms;
    if (m->argc != 3) {
        session_arity_error(c, &m->argv[0]);
        return;
    }
    if (!resp_arg_int(&m->argv[1], &n) || !resp_arg_int(&m->argv[2], &ms)) {
        client_reply_str(c, "-ERR value is not an integer or out of range\r\n");
        return;
    }
    if (ms < 0) {
        client_reply_str(c, "-ERR timeout is negative\r\n");
        return;
    }
    if (p->server_count == 0) {
        reply_no_server(c);
        return;
    }
    for (size_t k = 0; k < p->server_count; k++)
        if (!held_conn(c, &p->backends[k])) return;
    req *r = req_new(c, REQ_MIN, (uint32_t)p->server_count);
    if (!r) {
        reply_oom(c);
        return;
    }
    buf cmd = {0};
    buf_append_header(&cmd, '*', 3);
    buf_append_bulk(&cmd, "WAIT", 4);
    buf_append_bulk(&cmd, m->argv[1].ptr, m->argv[1].len);
    buf_append_bulk(&cmd, m->argv[2].ptr, m->argv[2].len);
    static const char publish[] = "*3\r\n$7\r\nPUBLISH\r\n$20\r\n" WAIT_CHANNEL "\r\n$0\r\n\r\n";
    stat_add(&p->st.fragments, p->server_count);
    for (size_t k = 0; k < p->server_count; k++) {
        backend *b = &p->backends[k];
        frag *f = &r->frags[k];
        f->is_blocking = true;
        if (cmd.is_oom) {
            frag_fail(f, true, "out of memory");
            continue;
        }
        bconn *bc = frag_conn(f, b, c);
        if (!bc) continue;
        bconn_swallow(bc, publish, sizeof publish - 1, 0);
        buf_append(&bc->out, buf_start(&cmd), buf_used(&cmd));
        bconn_push(bc, f, buf_used(&cmd));
    }
    buf_free(&cmd);
    req_release(r);
}

/* ---- SELECT, RESET, and the end of it all ------------------------------- */

/*
 * SELECT n: the first live server says whether n exists (a server has
 * `databases` of them; the proxy does not know how many). The client reads
 * nothing more until it has answered, so its next command runs in the
 * database it asked for, on any server: frag_conn selects it there.
 */
void held_select(client *c, const resp_msg *m) {
    long long db;
    if (m->argc != 2) {
        session_arity_error(c, &m->argv[0]);
        return;
    }
    if (!resp_arg_int(&m->argv[1], &db) || db < 0 || db > INT32_MAX) {
        client_reply_str(c, resp_arg_int(&m->argv[1], &db)
                                ? "-ERR DB index is out of range\r\n"
                                : "-ERR value is not an integer or out of range\r\n");
        return;
    }
    if (db == c->db) {
        client_reply_str(c, "+OK\r\n");
        return;
    }
    backend *b = any_server(c->pool);
    if (!b) {
        reply_no_server(c);
        return;
    }
    req *r = req_new(c, REQ_SELECT, 1);
    if (!r) {
        reply_oom(c);
        return;
    }
    r->select_db = (int)db;
    bconn *bc = frag_conn(&r->one, b, c);
    if (bc) {
        size_t before = buf_used(&bc->out);
        buf_append_header(&bc->out, '*', 2);
        buf_append_bulk(&bc->out, "SELECT", 6);
        buf_append_bulk(&bc->out, m->argv[1].ptr, m->argv[1].len);
        bconn_push(bc, &r->one, buf_used(&bc->out) - before);
        bc->db = -1; /* n, if the server has it: the next user selects again */
    }
    c->is_fenced = true;
    req_release(r);
}

/* RESET: the server-side state goes with the held connections, closed once
 * what they carry is answered; the rest is the client's own. */
void held_reset(client *c) {
    /* Nothing after RESET may overtake what the held connections still
     * carry: the client reads no more until all it asked is answered (and
     * a client cannot stack blocked connections with BLPOP, RESET, ...). */
    if (c->held) c->is_fenced = true;
    if (c->txn) txn_end(c->txn);
    for (bconn *bc = c->held; bc;) {
        bconn *next = bc->owner_next;
        bconn_held_retire(bc);
        bc = next;
    }
    c->db = c->pool->cf->redis_db;
}

/* The pool was reloaded: held connections belong to the old one. */
void held_reload(client *c) {
    if (c->txn && (c->txn->is_multi || c->txn->conn)) {
        c->txn->is_broken = true; /* EXEC answers EXECABORT */
        c->txn->conn = NULL;      /* retired below, maybe freed */
    }
    for (bconn *bc = c->held; bc;) {
        bconn *next = bc->owner_next;
        bconn_held_retire(bc);
        bc = next;
    }
}

void held_check(client *c) {
    c->is_held_lost = false;
    pubsub_check(c);
}

void held_release(client *c) {
    if (c->txn) {
        txn_end(c->txn);
        free(c->txn);
        c->txn = NULL;
    }
    while (c->held) bconn_held_free(c->held, "client closed");
}
