/*
 * client.c - client connections: accept, read and parse commands, hand each
 * to routing, write the replies req.c put in order, and close.
 *
 * Backpressure: a client is not read while it has max_pipeline requests in
 * flight or its unsent replies pass half its max_client_buffer; one that
 * asks faster than it reads past the whole buffer is closed, so no client
 * can hold the proxy's memory.
 */
#define _GNU_SOURCE
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void client_count_down(wpool *p);

/* client.tls_phase */
enum { CLIENT_TLS_NONE, CLIENT_TLS_HELLO, CLIENT_TLS_HANDSHAKE, CLIENT_TLS_OPEN };

static void tls_wait_remove(client *c) {
    worker *w = c->w;
    if (c->tls_prev)
        c->tls_prev->tls_next = c->tls_next;
    else
        w->tls_wait = c->tls_next;
    if (c->tls_next)
        c->tls_next->tls_prev = c->tls_prev;
    else
        w->tls_wait_tail = c->tls_prev;
    c->tls_prev = c->tls_next = NULL;
    if (c->tls_phase == CLIENT_TLS_HANDSHAKE) w->tls_handshaking--;
}

void client_close(client *c, bool is_error) {
    if (c->is_closed) return;
    worker *w = c->w;
    wpool *p = c->pool;
    c->is_closed = true;
    warmup_detach(c);
    if (c->tls_phase == CLIENT_TLS_HELLO || c->tls_phase == CLIENT_TLS_HANDSHAKE) {
        tls_wait_remove(c);
        /* One that connects and leaves without a byte (a port check) is
         * not an error. */
        if (is_error) stat_add(&p->st.tls_handshake_errors, 1);
    }
    tls_free(c->tls);
    c->tls = NULL;
    /* After what was written: on io_uring the loop may still hold replies. */
    loop_close(w->loop, &c->io);
    /* Requests still waiting for servers live on without the client and are
     * freed when their last fragment is answered. */
    client_drop_requests(c);
    held_release(c);
    pubsub_release(c);
    resp_parser_free(&c->rp);
    mc_parser_free(&c->mp);
    buf_free(&c->out);
    buf_free(&c->name);
    buf_free(&c->user_name);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    c->next_dead = w->dead;
    w->dead = c;
    client_count_down(p);
    stat_sub(&p->st.client_connections, 1);
    if (is_error) stat_add(&p->st.client_err, 1);
}

static void client_set_mask(client *c) {
    uint32_t mask = 0;
    if (!c->is_paused && !c->is_draining) mask |= LOOP_READ;
    if (buf_used(&c->out)) mask |= LOOP_WRITE;
    if (c->tls_io_flip == FLIP_READ_WANTS_WRITE) mask |= LOOP_WRITE;
    if (c->tls_io_flip == FLIP_WRITE_WANTS_READ) mask |= LOOP_READ;
    loop_set(c->w->loop, &c->io, mask);
}

void client_drain(client *c) {
    c->is_draining = true;
    client_set_mask(c);
    client_schedule(c);
}

/* Whether a client of pool p may not take a command now (--etcd only): a
 * change's switch holds the pool, the worker has not yet taken a published
 * configuration, or the permit ran out (a frozen or cut-off proxy checks
 * with etcd before it serves again: fleet.c). The clock is read here, not
 * the loop's: after a SIGSTOP the loop's time is from before. */
static bool fleet_gate(const wpool *p) {
    const proxy *px = p->w->px;
    if (p->is_fleet_held) return true;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return now >= atomic_load(&px->fleet_permit_ms);
}

/* Reading stops at max_pipeline requests in flight, or when the replies
 * held for the client reach half its max_client_buffer (16 MB at most), so
 * that a client which does read never comes near the limit; and while a
 * reload's fence, a configuration not yet taken, a warm-up move or the
 * fleet holds it. */
static bool client_is_full(client *c) {
    if (c->pool->slots && c->cluster_gen != c->pool->map_gen) {
        /* redis-cluster: the map changed under its commands in flight. */
        c->cluster_gen = c->pool->map_gen;
        if (c->head) c->is_fenced = true;
    }
    if (c->is_fenced) {
        for (const req *r = c->head; r; r = r->next)
            if (!r->is_done) return true;
        c->is_fenced = false;
    }
    uint64_t pause = c->pool->cf->max_client_buffer / 2;
    if (pause > CLIENT_OUT_PAUSE) pause = CLIENT_OUT_PAUSE;
    /* A configuration was published that this worker has not taken yet:
     * the command waits for it (the end of this loop turn, worker_sync),
     * so whatever is read after a reload runs under its pools and users. */
    if (c->w->conf_gen != atomic_load(&c->w->px->conf_gen)) return true;
    if (c->w->px->fleet && fleet_gate(c->pool)) return true;
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

/* Whether a blocking command of c's waits on one of its held connections. */
static bool client_is_blocked(const client *c) {
    for (const bconn *bc = c->held; bc; bc = bc->owner_next)
        for (const frag *f = bc->head; f; f = f->next)
            if (f->is_blocking) return true;
    return false;
}

/* A client's first read, and the least it reserves: an idle connection (or
 * one that sent two bytes and stopped) holds this much, not READ_CHUNK. */
#define CLIENT_READ_MIN 4096u

/* read(2), or TLS: errno EAGAIN when it would block (tls_io_flip says
 * whether TLS waits to write), EPROTO when TLS failed. */
static ssize_t client_recv(client *c, void *dst, size_t avail) {
    if (!c->tls) return loop_recv(c->w->loop, &c->io, dst, avail);
    if (c->tls_io_flip == FLIP_READ_WANTS_WRITE) c->tls_io_flip = FLIP_NONE;
    ssize_t n = tls_read(c->tls, dst, avail);
    if (n >= 0) return n;
    if (n == TLS_AGAIN) {
        if (!tls_wants_read(c->tls)) c->tls_io_flip = FLIP_READ_WANTS_WRITE;
        errno = EAGAIN;
        return -1;
    }
    static log_limit limit;
    proxy_log_limited(&limit, LOG_INFO, "pool %s: client %s", c->pool->cf->name,
                      tls_why(c->tls));
    errno = EPROTO;
    return -1;
}

/* One read into the parser: bytes read (> 0), 0 at EOF, -1 with errno. */
static ssize_t client_read_once(client *c) {
    bool is_redis = c->pool->cf->redis;
    size_t avail = 0;
    char *dst = is_redis ? resp_space(&c->rp, c->read_want, &avail)
                         : mc_space(&c->mp, c->read_want, &avail);
    if (!dst) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n = client_recv(c, dst, avail);
    if (n <= 0) return n;
    /* A full read: the client sends more than this; read more at a time. */
    if ((size_t)n == avail && c->read_want < READ_CHUNK) c->read_want *= 2;
    if (is_redis)
        resp_commit(&c->rp, (size_t)n);
    else
        mc_commit(&c->mp, (size_t)n);
    return n;
}

/* The client sent its last byte: a blocked command or a subscription
 * would keep it waiting for ever, and the server holding a connection for
 * nobody, so it is closed; else (half-closed) what it asked is answered,
 * then it is closed. */
static void client_eof(client *c) {
    stat_add(&c->pool->st.client_eof, 1);
    if (pubsub_count(c) || client_is_blocked(c)) {
        client_close(c, false);
        return;
    }
    c->is_draining = true;
    client_set_mask(c);
    client_schedule(c);
}

static void client_read(client *c) {
    bool is_redis = c->pool->cf->redis;
    if (c->read_want < CLIENT_READ_MIN) c->read_want = CLIENT_READ_MIN;
    ssize_t n = client_read_once(c);
    /* What TLS took from the socket beyond one read's room is not
     * announced by the socket again: take it now (and a close_notify
     * behind it, which the socket will not announce either). */
    bool is_eof_after = false;
    while (n > 0 && c->tls && tls_pending(c->tls)) {
        ssize_t more = client_read_once(c);
        if (more > 0) continue;
        if (more == 0)
            is_eof_after = true;
        else if (errno != EAGAIN)
            n = more;
        break;
    }
    if (n < 0 && errno == ENOMEM) {
        client_close(c, true);
        return;
    }
    if (n == 0) {
        client_eof(c);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            if (c->tls_io_flip) client_set_mask(c);
            return;
        }
        client_close(c, true);
        return;
    }
    client_process(c);
    if (is_eof_after && !c->is_closed) client_eof(c);
    if (c->w->px->max_memory && buf_held_bytes() > c->w->px->max_memory) {
        client_shed(c->w);
        if (c->is_closed) return;
    }
    /* Between commands, large buffers go back (not while warm-up holds a
     * command whose arguments point into them). */
    if (c->is_closed || c->warm) return;
    size_t before = is_redis ? resp_buffered(&c->rp) : mc_buffered(&c->mp);
    if (before == 0) {
        if (is_redis)
            resp_trim(&c->rp, CLIENT_READ_MIN);
        else
            mc_trim(&c->mp, CLIENT_READ_MIN);
        if (c->read_want > CLIENT_READ_MIN) c->read_want /= 2;
    }
}

/* write(2), or TLS (see client_recv). */
static ssize_t client_send(client *c, const void *data, size_t len) {
    if (!c->tls) return loop_send(c->w->loop, &c->io, data, len);
    if (c->tls_io_flip == FLIP_WRITE_WANTS_READ) c->tls_io_flip = FLIP_NONE;
    ssize_t n = tls_write(c->tls, data, len);
    if (n >= 0) return n;
    if (n == TLS_AGAIN) {
        if (tls_wants_read(c->tls)) c->tls_io_flip = FLIP_WRITE_WANTS_READ;
        errno = EAGAIN;
        return -1;
    }
    errno = EPROTO;
    return -1;
}

void client_flush(client *c) {
    if (c->is_held_lost) held_check(c);
    if (c->has_corked && c->shared_inflight == 0) server_uncork(c);
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
        ssize_t n = client_send(c, buf_start(&c->out), buf_used(&c->out));
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

/* Tells a plaintext client of a TLS listener why it is closed: what the
 * protocol lets it read. */
static void client_refuse_plain(client *c) {
    const char *msg = c->pool->cf->redis
                          ? "-ERR this port takes TLS connections only\r\n"
                          : "SERVER_ERROR this port takes TLS connections only\r\n";
    ssize_t wr = write(c->io.fd, msg, strlen(msg));
    (void)wr;
    static log_limit limit;
    proxy_log_limited(&limit, LOG_INFO, "pool %s: a client spoke plaintext to the TLS listener",
                      c->pool->cf->name);
    client_close(c, true);
}

/* A TLS client before its handshake completes: its first byte, then the
 * handshake, then (done) whatever it sent with its last flight. */
static void client_tls_step(client *c) {
    worker *w = c->w;
    if (c->tls_phase == CLIENT_TLS_HELLO) {
        switch (tls_sniff(c->io.fd)) {
        case TLS_SNIFF_AGAIN: return;
        case TLS_SNIFF_EOF: client_close(c, false); return;
        case TLS_SNIFF_PLAIN: client_refuse_plain(c); return;
        default: break;
        }
        if (w->tls_handshaking >= c->pool->cf->tls_max_handshakes) {
            static log_limit limit;
            proxy_log_limited(&limit, LOG_WARN, "pool %s: %u TLS handshakes in progress "
                              "(tls_max_handshakes): closing a new one", c->pool->cf->name,
                              w->tls_handshaking);
            client_close(c, true);
            return;
        }
        /* A reload may have taken TLS off the pool since it connected: it
         * asked for TLS, and gets no plaintext answer it could read. */
        c->tls = c->pool->cf->tls ? tls_accept(c->pool->cf->tls, c->io.fd) : NULL;
        if (!c->tls) {
            client_close(c, true);
            return;
        }
        c->tls_phase = CLIENT_TLS_HANDSHAKE;
        w->tls_handshaking++;
    }
    int rc = tls_handshake(c->tls);
    if (rc == TLS_AGAIN) {
        loop_set(w->loop, &c->io, tls_wants_read(c->tls) ? LOOP_READ : LOOP_WRITE);
        return;
    }
    if (rc != 1) {
        static log_limit limit;
        proxy_log_limited(&limit, LOG_INFO, "pool %s: a client's TLS handshake failed: %s",
                          c->pool->cf->name, tls_why(c->tls));
        client_close(c, true);
        return;
    }
    tls_wait_remove(c);
    c->tls_phase = CLIENT_TLS_OPEN;
    stat_add(&c->pool->st.tls_handshakes, 1);
    client_set_mask(c);
    client_read(c); /* it may have sent a command with its Finished */
}

/* What a client makes the proxy hold: its unparsed input, its unsent
 * replies and the replies waiting in its queued requests. */
static size_t client_footprint(const client *c) {
    return c->rp.in.cap + c->rp.scratch.cap + c->mp.in.cap + c->out.cap + c->held_bytes;
}

void client_shed(worker *w) {
    uint64_t max = w->px->max_memory;
    while (max && buf_held_bytes() > max) {
        client *worst = NULL;
        size_t most = CLIENT_SHED_FLOOR - 1;
        for (client *c = w->clients; c; c = c->next) {
            size_t n = client_footprint(c);
            if (n > most) {
                most = n;
                worst = c;
            }
        }
        if (!worst) return; /* the rest is not this worker's clients' */
        static log_limit limit;
        proxy_log_limited(&limit, LOG_WARN, "pool %s: closing client id=%llu holding %zu bytes: "
                          "the process holds %llu bytes, over --max-memory %llu",
                          worst->pool->cf->name, (unsigned long long)worst->id, most,
                          (unsigned long long)buf_held_bytes(), (unsigned long long)max);
        stat_add(&worst->pool->st.client_memory_shed, 1);
        client_close(worst, true);
    }
}

void client_tls_expire(worker *w, uint64_t now_ms) {
    while (w->tls_wait && w->tls_wait->tls_deadline_ms <= now_ms) {
        client *c = w->tls_wait;
        static log_limit limit;
        proxy_log_limited(&limit, LOG_INFO, "pool %s: closing a client whose TLS handshake "
                          "took over %lld ms (tls_handshake_timeout)", c->pool->cf->name,
                          (long long)c->pool->cf->tls_handshake_timeout_ms);
        client_close(c, true);
    }
}

static void client_on_event(loop_io *io, uint32_t events) {
    client *c = io->owner;
    if (c->is_closed) return;
    if (c->tls_phase == CLIENT_TLS_HELLO || c->tls_phase == CLIENT_TLS_HANDSHAKE) {
        client_tls_step(c);
        return;
    }
    uint8_t flip = c->tls_io_flip;
    if ((events & LOOP_READ) || (flip == FLIP_READ_WANTS_WRITE && (events & LOOP_WRITE))) {
        client_read(c);
        if (c->is_closed) return;
    } else if (events & LOOP_ERROR) {
        client_close(c, true);
        return;
    }
    if ((events & LOOP_WRITE) || (flip == FLIP_WRITE_WANTS_READ && (events & LOOP_READ)))
        client_flush(c);
}

/* A client on fd, accepted on p's listener, or NULL (fd then closed). */
static client *client_new(wpool *p, int fd) {
    worker *w = p->w;
    if (!p->cf->listen_addr.is_unix) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->w = w;
    c->pool = p;
    c->id = w->next_client_id++;
    c->created_ms = c->command_ms = w->now_ms;
    c->io = (loop_io){.fd = fd, .fn = client_on_event, .owner = c};
    resp_parser_init(&c->rp);
    c->rp.max_buffer = p->cf->max_client_buffer;
    mc_parser_init(&c->mp);
    c->mp.max_keys = p->cf->max_arguments;
    c->mp.max_value_len = p->cf->max_bulk_length;
    session_begin(c);
    c->db = p->cf->redis_db;
    /* A TLS pool's clients do their own I/O (OpenSSL on the fd). */
    if (loop_add(w->loop, &c->io, LOOP_READ | (p->cf->tls ? 0 : LOOP_STREAM)) != 0) {
        close(fd);
        free(c);
        return NULL;
    }
    if (p->cf->tls) {
        c->tls_phase = CLIENT_TLS_HELLO;
        c->tls_deadline_ms = w->now_ms + (uint64_t)p->cf->tls_handshake_timeout_ms;
        c->tls_prev = w->tls_wait_tail;
        if (w->tls_wait_tail)
            w->tls_wait_tail->tls_next = c;
        else
            w->tls_wait = c;
        w->tls_wait_tail = c;
    }
    c->next = w->clients;
    if (w->clients) w->clients->prev = c;
    w->clients = c;
    return c;
}

/* Past a client limit: told so, and closed. */
static void client_refuse(wpool *p, int fd) {
    const char *msg = p->cf->redis ? "-ERR max number of clients reached\r\n"
                                   : "SERVER_ERROR max number of clients reached\r\n";
    /* A TLS client could not read it: closed without a word. */
    ssize_t wr = p->cf->tls ? 0 : write(fd, msg, strlen(msg));
    (void)wr;
    close(fd);
    stat_add(&p->st.client_err, 1);
}

/* How long accepting stops when the process is out of descriptors. */
#define ACCEPT_PAUSE_MS 100u

/*
 * Out of descriptors (or kernel memory) at accept: the pending connections
 * would make the listener ready forever, and accept fail forever (at
 * b733ada: 100 % CPU and 280 MB of log in 7 s). The reserve descriptor is
 * let go to accept and refuse what is waiting, then the listener rests for
 * ACCEPT_PAUSE_MS.
 */
static void listener_overloaded(wpool *p, int err) {
    static log_limit limit;
    worker *w = p->w;
    /* Under accept_lock, so another worker's accept cannot take the
     * descriptor let go (and leave this worker without a reserve, its
     * waiting clients told nothing). A reserve lost anyway (another use of
     * a descriptor got it) is taken again when one is free. */
    pthread_mutex_lock(&w->px->accept_lock);
    if (w->reserve_fd < 0) w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->reserve_fd >= 0) {
        close(w->reserve_fd);
        for (int i = 0; i < 64; i++) {
            int fd = accept4(p->listen_io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) break;
            client_refuse(p, fd);
        }
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    pthread_mutex_unlock(&w->px->accept_lock);
    proxy_log_limited(&limit, LOG_WARN, "pool %s: accept: %s; refusing clients for %u ms",
                      p->cf->name, strerror(err), ACCEPT_PAUSE_MS);
    loop_del(w->loop, &p->listen_io);
    p->accept_resume_ms = w->now_ms + ACCEPT_PAUSE_MS;
}

void listener_tick(wpool *p, uint64_t now_ms) {
    if (!p->accept_resume_ms || now_ms < p->accept_resume_ms || p->w->is_draining) return;
    p->accept_resume_ms = 0;
    if (p->listen_io.fd >= 0) loop_add(p->w->loop, &p->listen_io, p->listen_mask);
}

/* Counts one more client of p: false (nothing counted) past a limit. */
static bool client_count_up(wpool *p) {
    proxy *px = p->w->px;
    uint32_t count = atomic_fetch_add(&px->pool_clients[p->index], 1) + 1;
    uint32_t total = atomic_fetch_add(&px->client_count, 1) + 1;
    if ((p->cf->client_connections && count > p->cf->client_connections) ||
        (px->max_clients && total > px->max_clients)) {
        atomic_fetch_sub(&px->pool_clients[p->index], 1);
        atomic_fetch_sub(&px->client_count, 1);
        return false;
    }
    return true;
}

static void client_count_down(wpool *p) {
    atomic_fetch_sub(&p->w->px->pool_clients[p->index], 1);
    atomic_fetch_sub(&p->w->px->client_count, 1);
}

void listener_on_event(loop_io *io, uint32_t events) {
    (void)events;
    wpool *p = io->owner;
    proxy *px = p->w->px;
    for (int i = 0; i < 64; i++) {
        pthread_mutex_lock(&px->accept_lock); /* see listener_overloaded */
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int err = errno;
        pthread_mutex_unlock(&px->accept_lock);
        errno = err;
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                listener_overloaded(p, errno);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                static log_limit limit;
                proxy_log_limited(&limit, LOG_WARN, "pool %s: accept: %s", p->cf->name,
                                  strerror(errno));
            }
            return;
        }
        if (!client_count_up(p)) {
            client_refuse(p, fd);
            continue;
        }
        if (!client_new(p, fd)) {
            client_count_down(p);
            continue;
        }
        stat_add(&p->st.client_connections, 1);
        atomic_fetch_add(&px->total_connections, 1);
    }
}

void proxy_limit_clients(proxy *px) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return;
    /* Per worker: its server connections, a probe a server, its listeners,
     * its event loop and reserve; then the process's own (stats, log,
     * standard streams, reload) with room to spare. */
    uint64_t reserved = 64;
    for (size_t i = 0; i < px->cf->pool_count; i++) {
        const conf_pool *cp = &px->cf->pools[i];
        reserved += (uint64_t)px->worker_count *
                    (cp->server_count * ((uint64_t)cp->server_connections + 1) + 1);
    }
    reserved += 2u * px->worker_count;
    uint64_t left = rl.rlim_cur > reserved ? rl.rlim_cur - reserved : 0;
    px->max_clients = left > UINT32_MAX ? UINT32_MAX : left ? (uint32_t)left : 1;
    if (left == 0)
        proxy_log(LOG_WARN, "file descriptor limit %llu leaves nothing for clients after %llu "
                  "for servers: one client at a time (raise it with ulimit -n)",
                  (unsigned long long)rl.rlim_cur, (unsigned long long)reserved);
    else
        proxy_log(LOG_INFO, "file descriptor limit %llu: at most %u clients, %llu kept for "
                  "servers", (unsigned long long)rl.rlim_cur, px->max_clients,
                  (unsigned long long)reserved);
}
