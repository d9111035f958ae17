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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void client_close(client *c, bool is_error) {
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
    client_drop_requests(c);
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

void client_drain(client *c) {
    c->is_draining = true;
    client_set_mask(c);
    client_schedule(c);
}

/* Reading stops at max_pipeline requests in flight, or when the replies
 * held for the client reach half its max_client_buffer (16 MB at most), so
 * that a client which does read never comes near the limit; and while a
 * reload's fence or a warm-up move holds it. */
static bool client_is_full(client *c) {
    if (c->is_fenced) {
        for (const req *r = c->head; r; r = r->next)
            if (!r->is_done) return true;
        c->is_fenced = false;
    }
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

void client_flush(client *c) {
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
    } else if (events & LOOP_ERROR) {
        client_close(c, true);
        return;
    }
    if (events & LOOP_WRITE) client_flush(c);
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
        close(fd);
        free(c);
        return NULL;
    }
    c->next = w->clients;
    if (w->clients) w->clients->prev = c;
    w->clients = c;
    return c;
}

/* Past the pool's client_connections: told so, and closed. */
static void client_refuse(wpool *p, int fd) {
    const char *msg = p->cf->redis ? "-ERR max number of clients reached\r\n"
                                   : "SERVER_ERROR max number of clients reached\r\n";
    ssize_t wr = write(fd, msg, strlen(msg));
    (void)wr;
    close(fd);
    stat_add(&p->st.client_err, 1);
}

void listener_on_event(loop_io *io, uint32_t events) {
    (void)events;
    wpool *p = io->owner;
    proxy *px = p->w->px;
    _Atomic uint32_t *clients = &px->pool_clients[p->index];
    for (int i = 0; i < 64; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                proxy_log(LOG_WARN, "pool %s: accept: %s", p->cf->name, strerror(errno));
            return;
        }
        uint32_t count = atomic_fetch_add(clients, 1) + 1;
        if (p->cf->client_connections && count > p->cf->client_connections) {
            atomic_fetch_sub(clients, 1);
            client_refuse(p, fd);
            continue;
        }
        if (!client_new(p, fd)) {
            atomic_fetch_sub(clients, 1);
            continue;
        }
        stat_add(&p->st.client_connections, 1);
        atomic_fetch_add(&px->total_connections, 1);
    }
}
