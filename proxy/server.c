/*
 * server.c - connections to the servers: connect, write, read, match each
 * reply to the fragment it answers, and give up on late ones.
 *
 * Writes are batched: routing only appends to a connection's output and
 * lists it (bconn_push); the worker flushes every listed connection once per
 * loop turn (bconn_flush), so one write(2) carries every request that
 * arrived in that turn (twemproxy's batching, redis's
 * handleClientsWithPendingWrites).
 *
 * Invariants: a bconn's queue holds the fragments it sent, in send order,
 * and servers answer in order, so each complete reply answers the head; a
 * connection is on the flush list at most once (in_flush).
 */
#define _GNU_SOURCE
#include "proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum fail_kind { FAIL_ERR, FAIL_EOF, FAIL_TIMEOUT };

/* A read a replica failed goes to its primary instead (shard.c), if it
 * was kept for that; false: fail it. */
static bool frag_again(frag *f, const char *reason) {
    parked *pk = f->retry;
    if (!pk) return false;
    f->retry = NULL;
    if (f->on_shared) { /* it leaves this connection: counted again where it goes */
        f->on_shared = false;
        client *owner = f->r ? f->r->c : NULL;
        if (owner && --owner->shared_inflight == 0 && owner->has_corked) client_schedule(owner);
    }
    pk->again(f, pk, reason);
    return true;
}

static void retry_drop(frag *f) {
    free(f->retry);
    f->retry = NULL;
}

/* A write's kept reply, when its WAIT will not come. */
static void ack_drop(frag *f) {
    if (!f->ack_first) return;
    buf_free(f->ack_first);
    free(f->ack_first);
    f->ack_first = NULL;
}

/* f will get no reply from this server: a kept read goes elsewhere,
 * anything else fails with reason. */
static void frag_give_up(frag *f, bool is_redis, const char *reason) {
    ack_drop(f);
    if (!frag_again(f, reason)) frag_fail(f, is_redis, reason);
}

static void bconn_schedule(bconn *bc) {
    if (bc->in_flush || bc->is_corked) return;
    worker *w = bc->b->pool->w;
    bc->in_flush = true;
    bc->next_flush = w->flush_bconns;
    w->flush_bconns = bc;
}

static void bconn_reset(bconn *bc) {
    worker *w = bc->b->pool->w;
    if (bc->io.fd >= 0) {
        tls_free(bc->tls);
        bc->tls = NULL;
        bc->tls_flip = 0;
        loop_close(w->loop, &bc->io);
        stat_sub(&bc->b->st.server_connections, 1);
    }
    bc->state = BC_IDLE;
    bc->late = 0;
    stat_sub(&bc->b->st.in_queue_bytes, buf_used(&bc->out));
    buf_free(&bc->out);
    buf_free(&bc->in);
    resp_reply_init(&bc->rr);
    mc_reply_reset(&bc->mcr);
}

/* Closes bc and answers everything it carried with `reason`: the one way a
 * server connection ends, whether it failed or the proxy closed it. */
static void bconn_abort(bconn *bc, const char *reason) {
    backend *b = bc->b;
    bool is_redis = b->pool->cf->redis;
    bconn_reset(bc);
    frag *f = bc->head;
    bc->head = bc->tail = NULL;
    stat_sub(&b->st.out_queue, bc->inflight);
    bc->inflight = 0;
    while (f) {
        frag *next = f->next;
        frag_give_up(f, is_redis, reason);
        f = next;
    }
    bc->is_corked = false;
    if (bc->owner && !bc->is_retiring) {
        /* What the server knew of the client (MULTI, WATCH, subscriptions)
         * is gone with the connection: held.c and pubsub.c look at it. */
        bc->owner->is_held_lost = true;
        client_schedule(bc->owner);
    }
}

/* bc failed: closed as above, counted, and told to the health checks. */
static void bconn_fail(bconn *bc, const char *reason, enum fail_kind kind) {
    backend *b = bc->b;
    if (bc->state != BC_IDLE)
        proxy_log(LOG_INFO, "pool %s: server %s: %s", b->pool->cf->name, b->cf->name, reason);
    bconn_abort(bc, reason);
    stat_add(kind == FAIL_EOF ? &b->st.server_eof
             : kind == FAIL_TIMEOUT ? &b->st.server_timedout
                                    : &b->st.server_err,
             1);
    /* A replica that closed a connection (Sentinel's CLIENT KILL when it
     * is promoted) is not failing: the next connect says whether it is. */
    if (kind != FAIL_EOF || !b->shard) health_failure(b);
}

static void bconn_on_event(loop_io *io, uint32_t events);

/* Errors that say the proxy ran out of descriptors or memory. */
static bool is_local_error(int err) {
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

bconn *backend_conn_for(backend *b, const client *c) {
    return &b->conns[b->conn_count == 1 ? 0 : c->id % b->conn_count];
}

static void swallow_command(bconn *bc, const char *const *argv, const size_t *lens, size_t argc) {
    frag *f = calloc(1, sizeof *f);
    if (!f) {
        bc->out.is_oom = true; /* the flush fails the connection: never skip a SELECT */
        return;
    }
    f->is_swallowed = true;
    size_t before = buf_used(&bc->out);
    buf_append_header(&bc->out, '*', argc);
    for (size_t i = 0; i < argc; i++) buf_append_bulk(&bc->out, argv[i], lens[i]);
    bconn_push(bc, f, buf_used(&bc->out) - before);
}

void bconn_swallow(bconn *bc, const char *data, size_t len, uint32_t replies) {
    frag *f = calloc(1, sizeof *f);
    if (!f) {
        bc->out.is_oom = true;
        return;
    }
    f->is_swallowed = true;
    f->replies = replies;
    buf_append(&bc->out, data, len);
    bconn_push(bc, f, len);
}

/* Puts bc on database db (SELECT ahead of what comes next). */
static void bconn_select(bconn *bc, int db) {
    char text[16];
    int n = snprintf(text, sizeof text, "%d", db);
    const char *argv[2] = {"SELECT", text};
    size_t lens[2] = {6, (size_t)n};
    swallow_command(bc, argv, lens, 2);
    bc->db = db;
}

int bconn_ensure(bconn *bc) {
    if (bc->state != BC_IDLE) return 0;
    backend *b = bc->b;
    wpool *p = b->pool;
    const conf_addr *a = &b->addr;
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (!a->is_unix) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (p->cf->tcpkeepalive) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    }
    int rc = connect(fd, (const struct sockaddr *)&a->sa, a->sa_len);
    if (rc != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    bc->io.fd = fd;
    bc->gen++;
    bc->io.fn = bconn_on_event;
    bc->io.owner = bc;
    /* A TLS connection begins its handshake from the first event, even
     * when connect completed at once. */
    bool is_ready = rc == 0 && !p->cf->server_tls_ctx;
    bc->state = is_ready ? BC_READY : BC_CONNECTING;
    bc->since_ms = p->w->now_ms;
    uint32_t stream = p->cf->server_tls_ctx ? 0 : LOOP_STREAM; /* TLS: OpenSSL's I/O */
    if (loop_add(p->w->loop, &bc->io, (is_ready ? LOOP_READ : LOOP_WRITE) | stream) != 0) {
        int e = errno;
        close(fd);
        bc->io.fd = -1;
        bc->state = BC_IDLE;
        return -(e ? e : EIO);
    }
    stat_add(&b->st.server_connections, 1);
    if (p->cf->redis) {
        /* AUTH first, then SELECT: a server with a password refuses SELECT
         * before AUTH (twemproxy #457). */
        if (p->cf->redis_auth) {
            const char *argv[2] = {"AUTH", p->cf->redis_auth};
            size_t lens[2] = {4, p->cf->redis_auth_len};
            swallow_command(bc, argv, lens, 2);
        }
        bc->db = 0;
        if (p->cf->redis_db != 0) bconn_select(bc, p->cf->redis_db);
        /* A cluster's replica serves reads only to a READONLY connection. */
        if (b->shard && conf_pool_is_cluster(p->cf)) {
            const char *argv[1] = {"READONLY"};
            size_t lens[1] = {8};
            swallow_command(bc, argv, lens, 1);
        }
    }
    return 0;
}

void bconn_push(bconn *bc, frag *f, size_t bytes) {
    f->next = NULL;
    if (bc->tail)
        bc->tail->next = f;
    else
        bc->head = f;
    bc->tail = f;
    bc->inflight++;
    f->sent_ms = bc->b->pool->w->now_ms;
    f->sent_us = bc->b->pool->w->now_us;
    server_stats *st = &bc->b->st;
    stat_add(&st->requests, 1);
    stat_add(&st->request_bytes, bytes);
    stat_add(&st->out_queue, 1);
    stat_add(&st->in_queue_bytes, bytes);
    if (bc->state == BC_READY) bconn_schedule(bc);
}

bconn *frag_conn(frag *f, backend *b, client *c) {
    if (b->is_down) {
        /* on_failure: error (or reroute with nowhere to go): fail at once,
         * never write the key anywhere else. */
        char reason[200];
        snprintf(reason, sizeof reason, "server %s is down", b->cf->name);
        stat_add(&b->pool->st.forward_error, 1);
        frag_give_up(f, b->pool->cf->redis, reason);
        return NULL;
    }
    bconn *bc = c ? held_conn_find(c, b) : NULL;
    if (!bc) bc = backend_conn_for(b, c);
    int rc = bconn_ensure(bc);
    if (rc < 0) {
        char reason[160];
        if (is_local_error(-rc)) {
            /* The proxy is out of something: not the server's fault, so
             * not counted against it (which would eject healthy servers). */
            static log_limit limit;
            snprintf(reason, sizeof reason, "proxy cannot connect: %s", strerror(-rc));
            proxy_log_limited(&limit, LOG_WARN, "pool %s: server %s: %s", b->pool->cf->name,
                              b->cf->name, reason);
        } else {
            snprintf(reason, sizeof reason, "%s", strerror(-rc));
            stat_add(&b->st.server_err, 1);
            health_failure(b);
            /* Never written: a kept request may wait for the shard's next
             * primary rather than fail (cluster.c). */
            if (f->kept && f->kept->again && b->is_down) {
                parked *pk = f->kept;
                f->kept = NULL;
                pk->from = b;
                pk->again(f, pk, reason);
                return NULL;
            }
        }
        frag_give_up(f, b->pool->cf->redis, reason);
        return NULL;
    }
    if (!bc->owner && c && f->r) {
        f->on_shared = true;
        c->shared_inflight++;
    }
    if (bc->owner && c && c->shared_inflight && !bc->is_corked) {
        /* Its commands must not pass the client's earlier ones, which are
         * on shared connections: this one waits until they are answered. */
        bc->is_corked = true;
        c->has_corked = true;
    }
    int db = c ? c->db : b->pool->cf->redis_db;
    bconn_use_db(bc, db);
    return bc;
}

void bconn_use_db(bconn *bc, int db) {
    /* Not in subscriber mode, where SELECT is refused (and channels have no
     * database). */
    if (bc->b->pool->cf->redis && bc->db != db && !bc->is_sub) bconn_select(bc, db);
}

void frag_send(frag *f, backend *b, client *c, const void *data, size_t len) {
    bconn *bc = frag_conn(f, b, c);
    if (!bc) return;
    size_t before = buf_used(&bc->out);
    buf_append(&bc->out, data, len);
    bconn_put_wait(bc, f);
    bconn_push(bc, f, buf_used(&bc->out) - before);
}

void bconn_put_wait(bconn *bc, frag *f) {
    if (!f->ack_want) return;
    char want[8], ms[24];
    snprintf(want, sizeof want, "%u", (unsigned)f->ack_want);
    snprintf(ms, sizeof ms, "%lld", (long long)bc->b->pool->cf->min_replicas_ack_timeout_ms);
    buf_append_header(&bc->out, '*', 3);
    buf_append_bulk(&bc->out, "WAIT", 4);
    buf_append_bulk(&bc->out, want, strlen(want));
    buf_append_bulk(&bc->out, ms, strlen(ms));
}

/* The WAIT after a write answered: the write's own reply if enough
 * replicas have it (or the write failed: WAIT says nothing then), else an
 * error that says what is known. */
static void ack_deliver(frag *f, backend *b, const char *data, size_t len) {
    buf *first = f->ack_first;
    f->ack_first = NULL;
    long long got = -1;
    if (len > 3 && data[0] == ':') got = strtoll(data + 1, NULL, 10);
    if (buf_start(first)[0] == '-' || got >= f->ack_want) {
        frag_deliver(f, buf_start(first), buf_used(first));
    } else {
        int64_t timeout_ms = b->pool->cf->min_replicas_ack_timeout_ms;
        stat_add(&b->st.write_ack_failed, 1);
        char text[320];
        int n = snprintf(text, sizeof text,
                         "-NOREPLICAS the write reached %lld of %u replicas within %lld ms "
                         "(min_replicas_ack): it is on the primary, and a failover may lose "
                         "it\r\n",
                         got < 0 ? 0 : got, (unsigned)f->ack_want, (long long)timeout_ms);
        frag_deliver(f, text, (size_t)n);
    }
    buf_free(first);
    free(first);
}

/* write(2), or TLS: -1 with errno EAGAIN when it would block (tls_flip
 * says whether TLS waits to read), EPROTO when TLS failed. */
static ssize_t bconn_send(bconn *bc, const void *data, size_t len) {
    if (!bc->tls) return loop_send(bc->b->pool->w->loop, &bc->io, data, len);
    if (bc->tls_flip == FLIP_WRITE_WANTS_READ) bc->tls_flip = FLIP_NONE;
    ssize_t n = tls_write(bc->tls, data, len);
    if (n >= 0) return n;
    if (n == TLS_AGAIN && tls_wants_read(bc->tls)) bc->tls_flip = FLIP_WRITE_WANTS_READ;
    errno = n == TLS_AGAIN ? EAGAIN : EPROTO;
    return -1;
}

static ssize_t bconn_recv(bconn *bc, void *data, size_t len) {
    if (!bc->tls) return loop_recv(bc->b->pool->w->loop, &bc->io, data, len);
    if (bc->tls_flip == FLIP_READ_WANTS_WRITE) bc->tls_flip = FLIP_NONE;
    ssize_t n = tls_read(bc->tls, data, len);
    if (n >= 0) return n;
    if (n == TLS_AGAIN && !tls_wants_read(bc->tls)) bc->tls_flip = FLIP_READ_WANTS_WRITE;
    errno = n == TLS_AGAIN ? EAGAIN : EPROTO;
    return -1;
}

/* Why TLS with bc's server failed, into out (copied: the failure frees
 * the session). Said in the log once as the server goes from serving to
 * failing; every failure is at the info level (bconn_fail) and in its
 * requests' errors. */
static const char *tls_failure(const bconn *bc, char *out, size_t len) {
    const backend *b = bc->b;
    snprintf(out, len, "TLS to %s: %s", b->addr_text, tls_why(bc->tls));
    if (b->failures == 0 && !b->is_down && !b->is_ejected)
        proxy_log(LOG_WARN, "pool %s: server %s: %s", b->pool->cf->name, b->cf->name, out);
    return out;
}

/* The reason a failed read or write gives. */
static const char *io_reason(const bconn *bc, int err, char *out, size_t len) {
    if (err == EPROTO && bc->tls) return tls_failure(bc, out, len);
    snprintf(out, len, "%s", strerror(err));
    return out;
}

/* The mask of a ready connection: reads always, writes while output waits
 * (or TLS waits to write to finish a read). */
static void bconn_set_mask(bconn *bc, bool has_output) {
    uint32_t mask = LOOP_READ;
    if (has_output || bc->tls_flip == FLIP_READ_WANTS_WRITE) mask |= LOOP_WRITE;
    loop_set(bc->b->pool->w->loop, &bc->io, mask);
}

int bconn_flush(bconn *bc) {
    worker *w = bc->b->pool->w;
    if (bc->out.is_oom) {
        bconn_fail(bc, "out of memory", FAIL_ERR);
        return -1;
    }
    (void)w;
    if (bc->is_corked) {
        bconn_set_mask(bc, false);
        return 0;
    }
    while (buf_used(&bc->out)) {
        ssize_t n = bconn_send(bc, buf_start(&bc->out), buf_used(&bc->out));
        if (n > 0) {
            stat_sub(&bc->b->st.in_queue_bytes, (uint64_t)n);
            buf_consume(&bc->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            bconn_set_mask(bc, bc->tls_flip != FLIP_WRITE_WANTS_READ);
            return 0;
        }
        char why[224];
        bconn_fail(bc, n < 0 ? io_reason(bc, errno, why, sizeof why) : "write failed",
                   FAIL_ERR);
        return -1;
    }
    bconn_set_mask(bc, false);
    return 0;
}

static void bconn_pop(bconn *bc) {
    frag *f = bc->head;
    bc->head = f->next;
    if (!bc->head) bc->tail = NULL;
    bc->inflight--;
    bc->replied_ms = bc->b->pool->w->now_ms;
    if (f->is_late) bc->late--;
    stat_sub(&bc->b->st.out_queue, 1);
    stat_add(&bc->b->st.responses, 1);
}

/* The length of the complete reply at the front of bc->in: 1 with *len set,
 * 0 when more bytes are needed, -1 when the bytes are not a reply. */
static int bconn_next_reply(bconn *bc, size_t *len) {
    if (bc->b->pool->cf->redis)
        return resp_reply_next(&bc->rr, buf_start(&bc->in), buf_used(&bc->in), len);
    int rc = mc_reply_next(&bc->mcr, buf_start(&bc->in), buf_used(&bc->in),
                           bc->head->mc_reply, len);
    if (rc == 1) mc_reply_reset(&bc->mcr);
    return rc;
}

/* A message a subscriber connection was sent unasked: an array whose first
 * element is "message", "pmessage" or "smessage". */
static bool is_push(const char *data, size_t len) {
    static const char *const kinds[] = {"$7\r\nmessage\r\n", "$8\r\npmessage\r\n",
                                        "$8\r\nsmessage\r\n"};
    if (len < 4 || (data[0] != '*' && data[0] != '>')) return false;
    const char *eol = memchr(data, '\n', len);
    if (!eol) return false;
    size_t at = (size_t)(eol - data) + 1;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t n = strlen(kinds[i]);
        if (len - at >= n && memcmp(data + at, kinds[i], n) == 0) return true;
    }
    return false;
}

static bool ack_keep(frag *f, const char *data, size_t len) {
    f->ack_first = calloc(1, sizeof *f->ack_first);
    if (!f->ack_first) return false;
    buf_append(f->ack_first, data, len);
    if (!f->ack_first->is_oom) return true;
    ack_drop(f);
    return false;
}

/* A primary of a pool with replicas that answers -READONLY is one no more
 * (Sentinel demoted it, or will): health_demoted marks it down. */
static bool is_readonly_reply(const backend *b, const char *data, size_t len) {
    return !b->shard && b->replicas && len > 9 && memcmp(data, "-READONLY", 9) == 0;
}

/* Hands every complete reply to its fragment. Returns -1 if bc failed. */
static int bconn_parse(bconn *bc) {
    backend *b = bc->b;
    /* An emptied buffer may have no memory at all (buf_start is NULL):
     * nothing to parse then. */
    while ((bc->head || bc->is_sub) && buf_used(&bc->in)) {
        size_t rlen = 0;
        int rc = bconn_next_reply(bc, &rlen);
        if (rc < 0) {
            bconn_fail(bc, b->pool->cf->redis ? "Protocol error from server"
                                              : "protocol error from server", FAIL_ERR);
            return -1;
        }
        if (rc == 0) break;
        const char *data = buf_start(&bc->in);
        /* A message comes unasked, or between the confirmations of an
         * (UN)SUBSCRIBE: never in place of another command's reply (an
         * LRANGE sent before SUBSCRIBE may answer ["message", ...]). */
        if (bc->is_sub && (!bc->head || bc->head->is_sub_cmd) && is_push(data, rlen)) {
            if (bc->on_push && !bc->is_retiring) bc->on_push(bc, data, rlen);
            buf_consume(&bc->in, rlen);
            continue;
        }
        if (!bc->head) {
            bconn_fail(bc, "unexpected data from server", FAIL_ERR);
            return -1;
        }
        frag *f = bc->head;
        if (f->replies > 1 && data[0] != '-') {
            f->replies--; /* one confirmation of several */
            buf_consume(&bc->in, rlen);
            continue;
        }
        if (f->ack_want && !f->ack_seen) { /* the write's reply; WAIT's comes next */
            f->ack_seen = true;
            if (!f->is_swallowed && !ack_keep(f, data, rlen)) {
                bconn_fail(bc, "out of memory", FAIL_ERR);
                return -1;
            }
            if (is_readonly_reply(b, data, rlen)) health_demoted(b);
            buf_consume(&bc->in, rlen);
            continue;
        }
        bconn_pop(bc);
        retry_drop(f);
        health_success(b);
        stats_latency(&b->st, b->pool->w->now_us - f->sent_us);
        if (!f->ack_want && is_readonly_reply(b, data, rlen)) health_demoted(b);
        /* redis-cluster: a -MOVED or -ASK is followed, not answered. */
        if (f->kept && data[0] == '-' && f->kept->on_error(f, b, f->kept, data, rlen)) {
            buf_consume(&bc->in, rlen);
            continue;
        }
        if (f->ack_want && !f->is_swallowed)
            ack_deliver(f, b, data, rlen);
        else
            frag_deliver(f, data, rlen);
        buf_consume(&bc->in, rlen);
        /* The server has answered what unsubscribed the last channel (and
         * no other (UN)SUBSCRIBE waits). */
        if (bc->is_sub && bc->sub_count == 0 && (!bc->head || !bc->head->is_sub_cmd))
            bc->is_sub = false;
    }
    if (!bc->head && !bc->is_sub && buf_used(&bc->in)) {
        bconn_fail(bc, "unexpected data from server", FAIL_ERR);
        return -1;
    }
    return 0;
}

static void bconn_read(bconn *bc) {
    /* Four reads at most, for fairness; but what TLS holds already read
     * the socket will not announce again. */
    for (int round = 0; round < 4 || (bc->tls && tls_pending(bc->tls)); round++) {
        if (buf_reserve(&bc->in, READ_CHUNK) != 0) {
            bconn_fail(bc, "out of memory", FAIL_ERR);
            return;
        }
        size_t avail = bc->in.cap - bc->in.len;
        ssize_t n = bconn_recv(bc, bc->in.data + bc->in.len, avail);
        if (n == 0) {
            bconn_fail(bc, "Connection closed by server", FAIL_EOF);
            return;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (bc->tls_flip == FLIP_READ_WANTS_WRITE) bconn_set_mask(bc, true);
                return;
            }
            int err = errno;
            char why[224];
            bconn_fail(bc, io_reason(bc, err, why, sizeof why),
                       err == ECONNRESET ? FAIL_EOF : FAIL_ERR);
            return;
        }
        stat_add(&bc->b->st.response_bytes, (uint64_t)n);
        bc->heard_ms = bc->b->pool->w->now_ms;
        bc->in.len += (size_t)n;
        if (bconn_parse(bc) < 0) return;
        if ((size_t)n < avail && !(bc->tls && tls_pending(bc->tls))) return;
    }
}

/* server_tls: the handshake, from the connect's completion on. A server
 * whose certificate does not verify fails like one that refuses, with
 * the reason in the log and in what its requests are answered. */
static void bconn_tls_step(bconn *bc) {
    backend *b = bc->b;
    const conf_pool *cf = b->pool->cf;
    if (!bc->tls) {
        /* The host as written, or the address the topology found. */
        char name[256];
        tls_peer_name(cf->server_tls_name, b->addr_text, name, sizeof name);
        bc->tls = tls_connect(cf->server_tls_ctx, bc->io.fd, name);
        if (!bc->tls) {
            bconn_fail(bc, "out of memory", FAIL_ERR);
            return;
        }
        bc->state = BC_HANDSHAKE;
    }
    int rc = tls_handshake(bc->tls);
    if (rc == TLS_AGAIN) {
        loop_set(b->pool->w->loop, &bc->io, tls_wants_read(bc->tls) ? LOOP_READ : LOOP_WRITE);
        return;
    }
    if (rc != 1) {
        char reason[224];
        bconn_fail(bc, tls_failure(bc, reason, sizeof reason), FAIL_ERR);
        return;
    }
    bc->state = BC_READY;
    bconn_flush(bc);
}

static void bconn_on_event(loop_io *io, uint32_t events) {
    bconn *bc = io->owner;
    if (bc->state == BC_IDLE) return;
    if (bc->state == BC_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err) {
            bconn_fail(bc, strerror(err), FAIL_ERR);
            /* As after a read: a retiring connection that failed carries
             * nothing more (else it would stay, counted, until its client
             * closes). */
            if (bc->is_retiring && !bc->head) bconn_held_free(bc, "closed");
            return;
        }
        if (!(events & (LOOP_WRITE | LOOP_ERROR))) return;
        if (bc->b->pool->cf->server_tls_ctx) {
            bconn_tls_step(bc);
            return;
        }
        bc->state = BC_READY;
        bconn_flush(bc);
        return;
    }
    if (bc->state == BC_HANDSHAKE) {
        bconn_tls_step(bc);
        return;
    }
    uint8_t flip = bc->tls_flip;
    if (flip == FLIP_READ_WANTS_WRITE && (events & LOOP_WRITE)) events |= LOOP_READ;
    if (flip == FLIP_WRITE_WANTS_READ && (events & LOOP_READ)) events |= LOOP_WRITE;
    if (events & (LOOP_READ | LOOP_ERROR)) {
        bconn_read(bc);
        if (bc->is_retiring && !bc->head) {
            bconn_held_free(bc, "closed");
            return;
        }
        if (bc->state != BC_READY) return;
        if ((events & LOOP_ERROR) && !(events & LOOP_READ)) {
            bconn_fail(bc, "connection error", FAIL_ERR);
            return;
        }
    }
    if (events & LOOP_WRITE) bconn_flush(bc);
}

/*
 * Late requests. Each request has `timeout` ms from when it was sent; one
 * still unanswered then, on a connection whose server has sent nothing for
 * `timeout` ms either, gets "Connection timed out" on its own, and a
 * placeholder takes its place in the connection's FIFO so that its reply,
 * if the server sends it after all, is matched and dropped. Requests behind
 * it keep their own deadlines, and the connection stays up: a slow reply
 * fails one request, not every client's requests on the connection (as
 * closing it, nutcracker's way, would). A server that is sending is busy,
 * not gone: requests queued behind one client's large replies are not
 * failed for the time those take (with one connection per server, they
 * would be other clients' requests).
 *
 * A connection is closed, failing what it carries, when it holds LATE_MAX
 * placeholders, or when its head has waited twice the timeout with no reply
 * completed meanwhile: the reply stream is stuck (a silent server, or a
 * reply that never ends while bytes still come), and nothing behind the
 * head can arrive.
 */
#define LATE_MAX 1024u

static void bconn_expire(bconn *bc, uint64_t now_ms, uint64_t timeout) {
    backend *b = bc->b;
    bool is_redis = b->pool->cf->redis;
    uint32_t expired = 0;
    bool is_silent = now_ms - bc->heard_ms >= timeout;
    for (frag **at = &bc->head; is_silent && *at;) {
        frag *f = *at;
        if (f->is_swallowed) {
            at = &f->next;
            continue;
        }
        /* Sent in queue order: the first one in time ends the scan; a
         * blocking command waits as long as it says, and what is behind it
         * waits for it. */
        if (now_ms - f->sent_ms < timeout || f->is_blocking) break;
        frag *late = calloc(1, sizeof *late);
        if (!late) {
            bconn_fail(bc, "Connection timed out", FAIL_TIMEOUT);
            return;
        }
        late->next = f->next;
        late->sent_ms = f->sent_ms;
        late->sent_us = f->sent_us;
        late->mc_reply = f->mc_reply;
        late->ack_want = f->ack_want;
        late->ack_seen = f->ack_seen;
        late->is_swallowed = late->is_late = true;
        *at = late;
        if (bc->tail == f) bc->tail = late;
        bc->late++;
        at = &late->next;
        expired++;
        stat_add(&b->st.server_timedout, 1);
        frag_give_up(f, is_redis, "Connection timed out");
    }
    if (expired) {
        proxy_log(LOG_INFO, "pool %s: server %s: %u request(s) timed out", b->pool->cf->name,
                  b->cf->name, expired);
        health_failure(b);
    }
    if (bc->late > LATE_MAX ||
        (bc->head && !bc->head->is_blocking && now_ms - bc->head->sent_ms >= 2 * timeout &&
         now_ms - bc->replied_ms >= 2 * timeout))
        bconn_fail(bc, "Connection timed out", FAIL_TIMEOUT);
}

static void bconn_tick(bconn *bc, uint64_t now_ms, uint64_t timeout) {
    if ((bc->state == BC_CONNECTING || bc->state == BC_HANDSHAKE) &&
        now_ms - bc->since_ms >= timeout)
        bconn_fail(bc, "Connection timed out", FAIL_TIMEOUT);
    else if (bc->state == BC_READY && bc->head)
        bconn_expire(bc, now_ms, timeout);
}

static void backend_expire(backend *b, uint64_t now_ms, uint64_t timeout) {
    for (uint32_t j = 0; j < b->conn_count; j++) bconn_tick(&b->conns[j], now_ms, timeout);
    for (bconn *bc = b->held; bc; bc = bc->held_next) bconn_tick(bc, now_ms, timeout);
}

void server_expire(wpool *p, uint64_t now_ms) {
    int64_t timeout = p->cf->timeout_ms;
    if (timeout <= 0) return;
    for (size_t k = 0; k < p->backend_count; k++) {
        backend *b = &p->backends[k];
        backend_expire(b, now_ms, (uint64_t)timeout);
        for (uint32_t i = 0; b->replicas && i < CONF_REPLICAS_MAX; i++)
            backend_expire(&b->replicas[i], now_ms, (uint64_t)timeout);
    }
}

void backend_close(backend *b, const char *why) {
    for (uint32_t j = 0; j < b->conn_count; j++) {
        bconn_abort(&b->conns[j], why);
    }
    for (bconn *bc = b->held; bc; bc = bc->held_next) bconn_abort(bc, why);
}

/* A backend's connections (not yet open), at its configured address. */
bool backend_init(backend *b, wpool *p, const conf_server *cs, uint32_t index) {
    b->pool = p;
    b->cf = cs;
    b->index = index;
    b->addr = cs->addr;
    snprintf(b->addr_text, sizeof b->addr_text, cs->port ? "%s:%d" : "%s", cs->host, cs->port);
    b->conn_count = p->cf->server_connections;
    b->conns = calloc(b->conn_count, sizeof *b->conns);
    if (!b->conns) return false;
    for (uint32_t j = 0; j < b->conn_count; j++) {
        b->conns[j].b = b;
        b->conns[j].io.fd = -1;
    }
    return true;
}

/* ---- a client's own connections (held.c decides when) ------------------- */

bconn *bconn_held_new(backend *b, client *c) {
    proxy *px = b->pool->w->px;
    if (px->max_clients &&
        atomic_load(&px->client_count) + atomic_load(&px->held_count) >= px->max_clients)
        return NULL;
    bconn *bc = calloc(1, sizeof *bc);
    if (!bc) return NULL;
    bc->b = b;
    bc->io.fd = -1;
    bc->db = -1;
    bc->owner = c;
    bc->owner_next = c->held;
    c->held = bc;
    c->held_count++;
    bc->held_next = b->held;
    if (b->held) b->held->held_prev = bc;
    b->held = bc;
    atomic_fetch_add(&px->held_count, 1);
    stat_add(&b->pool->st.held_connections, 1);
    return bc;
}

void bconn_held_free(bconn *bc, const char *why) {
    backend *b = bc->b;
    worker *w = b->pool->w;
    client *c = bc->owner;
    bc->is_retiring = true;
    bconn_abort(bc, why);
    if (bc->in_flush)
        for (bconn **at = &w->flush_bconns; *at; at = &(*at)->next_flush)
            if (*at == bc) {
                *at = bc->next_flush;
                break;
            }
    for (bconn **at = &c->held; *at; at = &(*at)->owner_next)
        if (*at == bc) {
            *at = bc->owner_next;
            break;
        }
    c->held_count--;
    if (bc->held_prev)
        bc->held_prev->held_next = bc->held_next;
    else
        b->held = bc->held_next;
    if (bc->held_next) bc->held_next->held_prev = bc->held_prev;
    atomic_fetch_sub(&w->px->held_count, 1);
    stat_sub(&b->pool->st.held_connections, 1);
    /* Freed at the end of the turn: an event of this loop turn may still
     * name it (it is idle then, and ignored). */
    bc->next_dead = w->dead_bconns;
    w->dead_bconns = bc;
}

void bconn_held_retire(bconn *bc) {
    if (!bc->head) {
        bconn_held_free(bc, "closed");
        return;
    }
    bc->is_retiring = true;
}

void server_uncork(client *c) {
    c->has_corked = false;
    for (bconn *bc = c->held; bc; bc = bc->owner_next) {
        if (!bc->is_corked) continue;
        bc->is_corked = false;
        if (bc->state == BC_READY && buf_used(&bc->out)) bconn_schedule(bc);
    }
}

void pool_close(wpool *p, const char *why) {
    for (size_t k = 0; k < p->backend_count; k++) {
        backend *b = &p->backends[k];
        backend_close(b, why);
        for (uint32_t i = 0; b->replicas && i < CONF_REPLICAS_MAX; i++)
            backend_close(&b->replicas[i], why);
    }
}

void pool_preconnect(wpool *p) {
    if (!p->cf->preconnect) return;
    for (size_t k = 0; k < p->server_count; k++)
        for (uint32_t j = 0; j < p->backends[k].conn_count; j++) {
            int rc = bconn_ensure(&p->backends[k].conns[j]);
            if (rc < 0 && !is_local_error(-rc)) health_failure(&p->backends[k]);
        }
}
