/*
 * conn.c - client and backend connections: reads, writes, queues, and the
 * hand-off of replies to requests.
 *
 * Writes are batched: routing and reply delivery only append to buffers and
 * put the connection on the worker's flush list; worker_before_sleep writes
 * every listed connection once per loop turn, so one write(2) carries all the
 * requests that arrived in that turn (twemproxy's batching, and redis's
 * handleClientsWithPendingWrites).
 *
 * Invariant: a connection is on a flush list at most once (in_flush).
 */
#define _GNU_SOURCE
#include "proxy.h"

#include <errno.h>
#include <hiredis/read.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t proxy_stop;
volatile sig_atomic_t proxy_drain;

uint64_t proxy_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t proxy_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- requests ----------------------------------------------------------- */

/* A few freed requests are kept per worker for the next ones: one request
 * a command makes malloc and free the busiest calls of a pipelined load.
 * Not under AddressSanitizer, which must see every request freed. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHASH_PROXY_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(CHASH_PROXY_ASAN)
#define REQ_SPARES 0
#else
#define REQ_SPARES 1
#endif
#define REQ_SPARE_MAX 256u

static void req_free(req *r) {
    for (uint32_t i = 0; i < r->frag_count; i++) buf_free(&r->frags[i].reply);
    if (r->frags != &r->one) free(r->frags);
    free(r->key_frag);
    free(r->key_off);
    buf_free(&r->keys);
    buf_free(&r->reply);
    worker *w = r->w;
    if (REQ_SPARES && w->spare_count < REQ_SPARE_MAX) {
        r->next = w->spare;
        w->spare = r;
        w->spare_count++;
        return;
    }
    free(r);
}

void worker_free_spares(worker *w) {
    while (w->spare) {
        req *r = w->spare;
        w->spare = r->next;
        free(r);
    }
    w->spare_count = 0;
}

req *req_new(client *c, req_kind kind, uint32_t frag_count) {
    worker *w = c->w;
    req *r = w->spare;
    if (r) {
        w->spare = r->next;
        w->spare_count--;
        memset(r, 0, sizeof *r);
    } else {
        r = calloc(1, sizeof *r);
        if (!r) return NULL;
    }
    r->w = w;
    if (frag_count > 1) {
        r->frags = calloc(frag_count, sizeof *r->frags);
        if (!r->frags) {
            r->frags = &r->one;
            req_free(r);
            return NULL;
        }
    } else {
        r->frags = &r->one;
    }
    r->frag_count = frag_count;
    r->frag_pending = frag_count + 1; /* the dispatch guard */
    for (uint32_t i = 0; i < frag_count; i++) r->frags[i].r = r;
    r->kind = kind;
    r->c = c;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->depth++;
    return r;
}

void client_schedule(client *c) {
    if (c->in_flush || c->is_closed) return;
    c->in_flush = true;
    c->next_flush = c->w->flush_clients;
    c->w->flush_clients = c;
}

/* Moves the replies of finished requests at the head of the queue to out. */
static void client_advance(client *c) {
    while (c->head && c->head->is_done) {
        req *r = c->head;
        if (!r->is_noreply) buf_append(&c->out, buf_start(&r->reply), buf_used(&r->reply));
        c->head = r->next;
        if (!c->head) c->tail = NULL;
        c->depth--;
        c->held_bytes -= r->held_bytes;
        req_free(r);
    }
    client_schedule(c);
}

void req_release(req *r) {
    if (--r->frag_pending) return;
    client *c = r->c;
    if (!c) {
        req_free(r);
        return;
    }
    if (r->kind != REQ_FORWARD && r->kind != REQ_LOCAL) merge_reply(r);
    r->is_done = true;
    if (r == c->head) client_advance(c);
}

void client_reply(client *c, const char *data, size_t len, bool then_close) {
    if (then_close) c->is_draining = true;
    if (!c->head) {
        buf_append(&c->out, data, len);
        client_schedule(c);
        return;
    }
    req *r = req_new(c, REQ_LOCAL, 0);
    if (!r) {
        c->out.is_oom = true; /* the flush closes the client */
        client_schedule(c);
        return;
    }
    buf_append(&r->reply, data, len);
    r->frag_pending = 0;
    r->is_done = true;
}

void client_reply_str(client *c, const char *s) { client_reply(c, s, strlen(s), false); }

/* Counts reply bytes the proxy holds for c; past max_client_buffer the
 * client is closed at the next flush (its requests still drain from the
 * servers, and their replies are dropped). */
static void client_hold(client *c, req *r, size_t len) {
    r->held_bytes += len;
    c->held_bytes += len;
}

static void client_check_held(client *c) {
    if (c->is_over_limit || c->held_bytes + buf_used(&c->out) <= c->pool->cf->max_client_buffer)
        return;
    c->is_over_limit = true;
    client_schedule(c);
}

void frag_deliver(frag *f, const char *data, size_t len) {
    if (f->on_reply) {
        f->on_reply(f, data, len);
        return;
    }
    if (f->is_swallowed) {
        if (len > 0 && data[0] == '-' && !f->is_late)
            proxy_log(LOG_WARN, "server answered an injected AUTH/SELECT with %.*s",
                      (int)(len > 2 ? len - 2 : len), data);
        buf_free(&f->reply);
        free(f);
        return;
    }
    req *r = f->r;
    client *c = r->c;
    if (c && !c->is_over_limit) {
        if (r->kind == REQ_FORWARD) {
            if (!r->is_noreply) {
                /* The head's reply can go straight out: everything before
                 * it has been written to out already. */
                if (r == c->head) {
                    buf_append(&c->out, data, len);
                    client_schedule(c);
                } else {
                    buf_append(&r->reply, data, len);
                    client_hold(c, r, len);
                }
            }
        } else {
            buf_append(&f->reply, data, len);
            client_hold(c, r, len);
        }
        client_check_held(c);
    }
    req_release(r);
}

void frag_fail(frag *f, bool is_redis, const char *reason) {
    char text[256];
    int n = snprintf(text, sizeof text, is_redis ? "-ERR %s\r\n" : "SERVER_ERROR %s\r\n", reason);
    if (n < 0 || (size_t)n >= sizeof text) n = (int)sizeof text - 1;
    f->failed = true;
    if (f->r && f->r->c) stat_add(&f->r->c->pool->st.forward_error, 1);
    frag_deliver(f, text, (size_t)n);
}

/* ---- backend connections ------------------------------------------------ */

enum fail_kind { FAIL_ERR, FAIL_EOF, FAIL_TIMEOUT };

static void bconn_schedule(bconn *bc) {
    if (bc->in_flush) return;
    worker *w = bc->b->pool->w;
    bc->in_flush = true;
    bc->next_flush = w->flush_bconns;
    w->flush_bconns = bc;
}

static void bconn_reset(bconn *bc) {
    worker *w = bc->b->pool->w;
    if (bc->io.fd >= 0) {
        loop_del(w->loop, &bc->io);
        close(bc->io.fd);
        bc->io.fd = -1;
        stat_sub(&bc->b->st.server_connections, 1);
    }
    bc->state = BC_IDLE;
    bc->late = 0;
    stat_sub(&bc->b->st.in_queue_bytes, buf_used(&bc->out));
    buf_free(&bc->out);
    buf_free(&bc->in);
    if (bc->reader) {
        redisReaderFree(bc->reader);
        bc->reader = NULL;
    }
    mc_reply_reset(&bc->mcr);
}

/* Closes bc and answers everything it carried with `reason`. */
static void bconn_fail(bconn *bc, const char *reason, enum fail_kind kind) {
    backend *b = bc->b;
    bool is_redis = b->pool->cf->redis;
    if (bc->state != BC_IDLE)
        proxy_log(LOG_INFO, "pool %s: server %s: %s", b->pool->cf->name, b->cf->name, reason);
    bconn_reset(bc);
    frag *f = bc->head;
    bc->head = bc->tail = NULL;
    stat_sub(&b->st.out_queue, bc->inflight);
    bc->inflight = 0;
    while (f) {
        frag *next = f->next;
        frag_fail(f, is_redis, reason);
        f = next;
    }
    stat_add(kind == FAIL_EOF ? &b->st.server_eof
             : kind == FAIL_TIMEOUT ? &b->st.server_timedout
                                    : &b->st.server_err,
             1);
    health_failure(b);
}

static void bconn_on_event(loop_io *io, uint32_t events);

bconn *backend_conn_for(backend *b, const client *c) {
    return &b->conns[b->conn_count == 1 ? 0 : c->id % b->conn_count];
}

static void swallow_command(bconn *bc, const char *const *argv, const size_t *lens, size_t argc) {
    frag *f = calloc(1, sizeof *f);
    if (!f) return;
    f->is_swallowed = true;
    size_t before = buf_used(&bc->out);
    buf_append_header(&bc->out, '*', argc);
    for (size_t i = 0; i < argc; i++) buf_append_bulk(&bc->out, argv[i], lens[i]);
    bconn_push(bc, f, buf_used(&bc->out) - before);
}

int bconn_ensure(bconn *bc) {
    if (bc->state != BC_IDLE) return 0;
    backend *b = bc->b;
    wpool *p = b->pool;
    const conf_addr *a = &b->cf->addr;
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
    bc->io.fn = bconn_on_event;
    bc->io.owner = bc;
    bc->state = rc == 0 ? BC_READY : BC_CONNECTING;
    bc->since_ms = p->w->now_ms;
    if (loop_add(p->w->loop, &bc->io, rc == 0 ? LOOP_READ : LOOP_WRITE) != 0) {
        int e = errno;
        close(fd);
        bc->io.fd = -1;
        bc->state = BC_IDLE;
        return -(e ? e : EIO);
    }
    stat_add(&b->st.server_connections, 1);
    if (p->cf->redis) {
        bc->reader = redisReaderCreateWithFunctions(NULL);
        if (!bc->reader) {
            bconn_reset(bc);
            return -ENOMEM;
        }
        /* AUTH first, then SELECT: a server with a password refuses SELECT
         * before AUTH (twemproxy #457). */
        if (p->cf->redis_auth) {
            const char *argv[2] = {"AUTH", p->cf->redis_auth};
            size_t lens[2] = {4, p->cf->redis_auth_len};
            swallow_command(bc, argv, lens, 2);
        }
        if (p->cf->redis_db != 0) {
            char db[16];
            int n = snprintf(db, sizeof db, "%d", p->cf->redis_db);
            const char *argv[2] = {"SELECT", db};
            size_t lens[2] = {6, (size_t)n};
            swallow_command(bc, argv, lens, 2);
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

bconn *frag_conn(frag *f, backend *b, const client *c) {
    if (b->is_down) {
        /* on_failure: error (or reroute with nowhere to go): fail at once,
         * never write the key anywhere else. */
        char reason[200];
        snprintf(reason, sizeof reason, "server %s is down", b->cf->name);
        stat_add(&b->pool->st.forward_error, 1);
        frag_fail(f, b->pool->cf->redis, reason);
        return NULL;
    }
    bconn *bc = backend_conn_for(b, c);
    int rc = bconn_ensure(bc);
    if (rc < 0) {
        stat_add(&b->st.server_err, 1);
        health_failure(b);
        frag_fail(f, b->pool->cf->redis, strerror(-rc));
        return NULL;
    }
    return bc;
}

void frag_send(frag *f, backend *b, const client *c, const void *data, size_t len) {
    bconn *bc = frag_conn(f, b, c);
    if (!bc) return;
    buf_append(&bc->out, data, len);
    bconn_push(bc, f, len);
}

static int bconn_write(bconn *bc) {
    worker *w = bc->b->pool->w;
    if (bc->out.is_oom) {
        bconn_fail(bc, "out of memory", FAIL_ERR);
        return -1;
    }
    while (buf_used(&bc->out)) {
        ssize_t n = write(bc->io.fd, buf_start(&bc->out), buf_used(&bc->out));
        if (n > 0) {
            stat_sub(&bc->b->st.in_queue_bytes, (uint64_t)n);
            buf_consume(&bc->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            loop_set(w->loop, &bc->io, LOOP_READ | LOOP_WRITE);
            return 0;
        }
        bconn_fail(bc, n < 0 ? strerror(errno) : "write failed", FAIL_ERR);
        return -1;
    }
    loop_set(w->loop, &bc->io, LOOP_READ);
    return 0;
}

static frag *bconn_pop(bconn *bc) {
    frag *f = bc->head;
    bc->head = f->next;
    if (!bc->head) bc->tail = NULL;
    bc->inflight--;
    bc->replied_ms = bc->b->pool->w->now_ms;
    if (f->is_late) bc->late--;
    stat_sub(&bc->b->st.out_queue, 1);
    stat_add(&bc->b->st.responses, 1);
    return f;
}

/* Hands every complete reply to its fragment. Returns -1 if bc failed. */
static int bconn_parse(bconn *bc) {
    backend *b = bc->b;
    if (b->pool->cf->redis) {
        redisReader *rd = bc->reader;
        while (bc->head) {
            void *reply = NULL;
            if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
                bconn_fail(bc, "Protocol error from server", FAIL_ERR);
                return -1;
            }
            if (!reply) break;
            /* The reader keeps its own copy; what it has not consumed is the
             * tail of ours, so the reply is everything before that. */
            size_t rlen = buf_used(&bc->in) - (rd->len - rd->pos);
            frag *f = bconn_pop(bc);
            health_success(b);
            stats_latency(&b->st, b->pool->w->now_us - f->sent_us);
            frag_deliver(f, buf_start(&bc->in), rlen);
            buf_consume(&bc->in, rlen);
        }
        if (!bc->head && buf_used(&bc->in)) {
            bconn_fail(bc, "unexpected data from server", FAIL_ERR);
            return -1;
        }
        return 0;
    }
    /* An emptied buffer may have no memory at all (buf_start is NULL):
     * nothing to parse then. */
    while (bc->head && buf_used(&bc->in)) {
        size_t rlen;
        int rc = mc_reply_next(&bc->mcr, buf_start(&bc->in), buf_used(&bc->in),
                               bc->head->is_retrieval, &rlen);
        if (rc < 0) {
            bconn_fail(bc, "protocol error from server", FAIL_ERR);
            return -1;
        }
        if (rc == 0) break;
        frag *f = bconn_pop(bc);
        health_success(b);
        stats_latency(&b->st, b->pool->w->now_us - f->sent_us);
        frag_deliver(f, buf_start(&bc->in), rlen);
        buf_consume(&bc->in, rlen);
        mc_reply_reset(&bc->mcr);
    }
    if (!bc->head && buf_used(&bc->in)) {
        bconn_fail(bc, "unexpected data from server", FAIL_ERR);
        return -1;
    }
    return 0;
}

static void bconn_read(bconn *bc) {
    for (int round = 0; round < 4; round++) {
        if (buf_reserve(&bc->in, READ_CHUNK) != 0) {
            bconn_fail(bc, "out of memory", FAIL_ERR);
            return;
        }
        size_t avail = bc->in.cap - bc->in.len;
        ssize_t n = read(bc->io.fd, bc->in.data + bc->in.len, avail);
        if (n == 0) {
            bconn_fail(bc, "Connection closed by server", FAIL_EOF);
            return;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            bconn_fail(bc, strerror(errno), FAIL_ERR);
            return;
        }
        stat_add(&bc->b->st.response_bytes, (uint64_t)n);
        bc->heard_ms = bc->b->pool->w->now_ms;
        size_t old = bc->in.len;
        bc->in.len += (size_t)n;
        if (bc->reader && redisReaderFeed(bc->reader, bc->in.data + old, (size_t)n) != REDIS_OK) {
            bconn_fail(bc, "out of memory", FAIL_ERR);
            return;
        }
        if (bconn_parse(bc) < 0) return;
        if ((size_t)n < avail) return;
    }
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
            return;
        }
        if (!(events & (LOOP_WRITE | EPOLLERR | EPOLLHUP))) return;
        bc->state = BC_READY;
        bconn_write(bc);
        return;
    }
    if (events & (LOOP_READ | EPOLLERR | EPOLLHUP)) {
        bconn_read(bc);
        if (bc->state != BC_READY) return;
        if ((events & (EPOLLERR | EPOLLHUP)) && !(events & LOOP_READ)) {
            bconn_fail(bc, "connection error", FAIL_ERR);
            return;
        }
    }
    if (events & LOOP_WRITE) bconn_write(bc);
}

/* ---- clients ------------------------------------------------------------ */

static void client_close(client *c, bool is_error) {
    if (c->is_closed) return;
    worker *w = c->w;
    wpool *p = c->pool;
    c->is_closed = true;
    warmup_detach(c);
    loop_del(w->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;
    /* Requests still waiting for servers live on without the client and are
     * freed when their last fragment is answered. */
    req *r = c->head;
    while (r) {
        req *next = r->next;
        if (r->frag_pending == 0)
            req_free(r);
        else
            r->c = NULL;
        r = next;
    }
    c->head = c->tail = NULL;
    c->depth = 0;
    resp_parser_free(&c->rp);
    mc_parser_free(&c->mp);
    buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    c->next_dead = w->dead;
    w->dead = c;
    atomic_fetch_sub(&w->px->pool_clients[p->index], 1);
    stat_sub(&p->st.client_connections, 1);
    if (is_error) stat_add(&p->st.client_err, 1);
}

static void client_set_mask(client *c) {
    uint32_t mask = 0;
    if (!c->is_paused && !c->is_draining) mask |= LOOP_READ;
    if (buf_used(&c->out)) mask |= LOOP_WRITE;
    loop_set(c->w->loop, &c->io, mask);
}

/* Reading stops at max_pipeline requests in flight, or when the replies
 * held for the client reach half its max_client_buffer (16 MB at most), so
 * that a client which does read never comes near the limit. */
static bool client_is_full(const client *c) {
    uint64_t pause = c->pool->cf->max_client_buffer / 2;
    if (pause > CLIENT_OUT_PAUSE) pause = CLIENT_OUT_PAUSE;
    return c->warm || c->depth >= c->pool->cf->max_pipeline ||
           buf_used(&c->out) + c->held_bytes >= pause;
}

/* Routes every complete command, until the pipeline limit pauses reading. */
static void client_process(client *c) {
    bool is_redis = c->pool->cf->redis;
    while (!c->is_draining && !c->is_closed) {
        if (client_is_full(c)) {
            c->is_paused = true;
            break;
        }
        int rc;
        if (is_redis) {
            resp_msg m;
            rc = resp_next(&c->rp, &m);
            if (rc == 1) route_redis(c, &m);
        } else {
            mc_msg m;
            rc = mc_next(&c->mp, &m);
            if (rc == 1) route_memcache(c, &m);
        }
        if (rc == 0) break;
        if (rc < 0) {
            char text[160];
            int n = snprintf(text, sizeof text, is_redis ? "-ERR %s\r\n" : "%s\r\n",
                             is_redis ? c->rp.errstr : c->mp.errstr);
            stat_add(&c->pool->st.client_err, 1);
            client_reply(c, text, (size_t)n, true);
            break;
        }
    }
    client_set_mask(c);
}

static void client_read(client *c) {
    size_t avail = 0;
    char *dst = c->pool->cf->redis ? resp_space(&c->rp, READ_CHUNK, &avail)
                                   : mc_space(&c->mp, READ_CHUNK, &avail);
    if (!dst) {
        client_close(c, true);
        return;
    }
    ssize_t n = read(c->io.fd, dst, avail);
    if (n == 0) {
        /* Half-closed: answer what was asked, then close. */
        stat_add(&c->pool->st.client_eof, 1);
        c->is_draining = true;
        client_set_mask(c);
        client_schedule(c);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        client_close(c, true);
        return;
    }
    if (c->pool->cf->redis)
        resp_commit(&c->rp, (size_t)n);
    else
        mc_commit(&c->mp, (size_t)n);
    client_process(c);
}

static void client_write(client *c) {
    if (c->out.is_oom) {
        client_close(c, true);
        return;
    }
    if (c->is_over_limit) {
        proxy_log(LOG_WARN, "pool %s: closing a client holding %zu bytes of replies "
                  "(max_client_buffer %llu): it asks faster than it reads", c->pool->cf->name,
                  c->held_bytes + buf_used(&c->out),
                  (unsigned long long)c->pool->cf->max_client_buffer);
        client_close(c, true);
        return;
    }
    while (buf_used(&c->out)) {
        ssize_t n = write(c->io.fd, buf_start(&c->out), buf_used(&c->out));
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        client_close(c, true);
        return;
    }
    if (c->is_draining && !c->head && !c->warm && !buf_used(&c->out)) {
        client_close(c, false);
        return;
    }
    if (c->is_paused && !client_is_full(c)) {
        c->is_paused = false;
        client_process(c);
        if (c->is_closed) return;
        if (buf_used(&c->out)) {
            client_schedule(c);
            return;
        }
    }
    client_set_mask(c);
}

static void client_on_event(loop_io *io, uint32_t events) {
    client *c = io->owner;
    if (c->is_closed) return;
    if (events & LOOP_READ) {
        client_read(c);
        if (c->is_closed) return;
    } else if (events & (EPOLLERR | EPOLLHUP)) {
        client_close(c, true);
        return;
    }
    if (events & LOOP_WRITE) client_write(c);
}

void listener_on_event(loop_io *io, uint32_t events) {
    (void)events;
    wpool *p = io->owner;
    worker *w = p->w;
    proxy *px = w->px;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                proxy_log(LOG_WARN, "pool %s: accept: %s", p->cf->name, strerror(errno));
            return;
        }
        uint32_t count = atomic_fetch_add(&px->pool_clients[p->index], 1) + 1;
        if (p->cf->client_connections && count > p->cf->client_connections) {
            atomic_fetch_sub(&px->pool_clients[p->index], 1);
            const char *msg = p->cf->redis ? "-ERR max number of clients reached\r\n"
                                           : "SERVER_ERROR max number of clients reached\r\n";
            ssize_t wr = write(fd, msg, strlen(msg));
            (void)wr;
            close(fd);
            stat_add(&p->st.client_err, 1);
            continue;
        }
        if (!p->cf->listen_addr.is_unix) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        client *c = calloc(1, sizeof *c);
        if (!c) {
            atomic_fetch_sub(&px->pool_clients[p->index], 1);
            close(fd);
            continue;
        }
        c->w = w;
        c->pool = p;
        c->id = w->next_client_id++;
        c->io = (loop_io){.fd = fd, .fn = client_on_event, .owner = c};
        resp_parser_init(&c->rp);
        c->rp.max_bulk_len = p->cf->max_bulk_length;
        c->rp.max_args = p->cf->max_arguments;
        c->rp.max_buffer = p->cf->max_client_buffer;
        mc_parser_init(&c->mp);
        c->mp.max_keys = p->cf->max_arguments;
        c->mp.max_value_len = p->cf->max_bulk_length;
        c->is_authed = p->cf->redis_auth == NULL;
        if (loop_add(w->loop, &c->io, LOOP_READ) != 0) {
            atomic_fetch_sub(&px->pool_clients[p->index], 1);
            close(fd);
            free(c);
            continue;
        }
        c->next = w->clients;
        if (w->clients) w->clients->prev = c;
        w->clients = c;
        stat_add(&p->st.client_connections, 1);
        atomic_fetch_add(&px->total_connections, 1);
    }
}

/* ---- the loop's turn ---------------------------------------------------- */

void worker_before_sleep(worker *w) {
    for (int round = 0; round < 8 && (w->flush_clients || w->flush_bconns); round++) {
        client *cl = w->flush_clients;
        w->flush_clients = NULL;
        while (cl) {
            client *next = cl->next_flush;
            cl->in_flush = false;
            if (!cl->is_closed) client_write(cl);
            cl = next;
        }
        bconn *bl = w->flush_bconns;
        w->flush_bconns = NULL;
        while (bl) {
            bconn *next = bl->next_flush;
            bl->in_flush = false;
            if (bl->state == BC_READY) bconn_write(bl);
            bl = next;
        }
    }
    while (w->dead) {
        client *c = w->dead;
        w->dead = c->next_dead;
        free(c);
    }
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
        /* Sent in queue order: the first one in time ends the scan. */
        if (now_ms - f->sent_ms < timeout) break;
        frag *late = calloc(1, sizeof *late);
        if (!late) {
            bconn_fail(bc, "Connection timed out", FAIL_TIMEOUT);
            return;
        }
        late->next = f->next;
        late->sent_ms = f->sent_ms;
        late->sent_us = f->sent_us;
        late->is_retrieval = f->is_retrieval;
        late->is_swallowed = late->is_late = true;
        *at = late;
        if (bc->tail == f) bc->tail = late;
        bc->late++;
        at = &late->next;
        expired++;
        stat_add(&b->st.server_timedout, 1);
        frag_fail(f, is_redis, "Connection timed out");
    }
    if (expired) {
        proxy_log(LOG_INFO, "pool %s: server %s: %u request(s) timed out", b->pool->cf->name,
                  b->cf->name, expired);
        health_failure(b);
    }
    if (bc->late > LATE_MAX ||
        (bc->head && now_ms - bc->head->sent_ms >= 2 * timeout &&
         now_ms - bc->replied_ms >= 2 * timeout))
        bconn_fail(bc, "Connection timed out", FAIL_TIMEOUT);
}

void pool_tick(wpool *p, uint64_t now_ms) {
    health_tick(p, now_ms);
    warmup_tick(p, now_ms);
    int64_t timeout = p->cf->timeout_ms;
    if (timeout <= 0) return;
    for (size_t k = 0; k < p->backend_count; k++) {
        backend *b = &p->backends[k];
        for (uint32_t j = 0; j < b->conn_count; j++) {
            bconn *bc = &b->conns[j];
            if (bc->state == BC_CONNECTING && now_ms - bc->since_ms >= (uint64_t)timeout)
                bconn_fail(bc, "Connection timed out", FAIL_TIMEOUT);
            else if (bc->state == BC_READY && bc->head)
                bconn_expire(bc, now_ms, (uint64_t)timeout);
        }
    }
}

void worker_tick(worker *w) {
    for (size_t i = 0; i < w->pool_count; i++) pool_tick(&w->pools[i], w->now_ms);
}

bool worker_drain(worker *w) {
    if (!w->is_draining) {
        w->is_draining = true;
        for (size_t i = 0; i < w->pool_count; i++)
            if (w->pools[i].listen_io.fd >= 0) loop_del(w->loop, &w->pools[i].listen_io);
        /* Half-closed clients are answered, then closed: the same here. */
        for (client *c = w->clients; c; c = c->next) {
            c->is_draining = true;
            client_set_mask(c);
            client_schedule(c);
        }
    }
    return w->clients == NULL;
}

void backend_close(backend *b, const char *why) {
    for (uint32_t j = 0; j < b->conn_count; j++) {
        bconn *bc = &b->conns[j];
        bconn_reset(bc);
        frag *f = bc->head;
        bc->head = bc->tail = NULL;
        bc->inflight = 0;
        while (f) {
            frag *next = f->next;
            frag_fail(f, b->pool->cf->redis, why);
            f = next;
        }
    }
}

void pool_close(wpool *p, const char *why) {
    for (size_t k = 0; k < p->backend_count; k++) backend_close(&p->backends[k], why);
}

void worker_close_all(worker *w) {
    while (w->clients) client_close(w->clients, false);
    for (size_t i = 0; i < w->pool_count; i++) pool_close(&w->pools[i], "shutting down");
    worker_before_sleep(w);
}

/* Connects every backend now (preconnect: true). */
void worker_preconnect(worker *w) {
    for (size_t i = 0; i < w->pool_count; i++) {
        wpool *p = &w->pools[i];
        if (!p->cf->preconnect) continue;
        for (size_t k = 0; k < p->server_count; k++)
            for (uint32_t j = 0; j < p->backends[k].conn_count; j++)
                if (bconn_ensure(&p->backends[k].conns[j]) < 0) health_failure(&p->backends[k]);
    }
}
