/*
 * worker.c - one event loop per thread: its listeners, pools, backends.
 *
 * TCP pools: every worker has its own listening socket bound with
 * SO_REUSEPORT, so the kernel spreads new connections over the workers.
 * Unix-socket pools: one socket, registered by every worker with
 * EPOLLEXCLUSIVE so one of them wakes per connection.
 */
#define _GNU_SOURCE
#include "proxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int proxy_listen(const conf_pool *cp, bool reuseport, char *err, size_t err_len) {
    const conf_addr *a = &cp->listen_addr;
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) goto fail;
    int one = 1;
    if (a->is_unix) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&a->sa;
        unlink(un->sun_path); /* a stale socket from an earlier run */
    } else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            goto fail;
    }
    if (bind(fd, (const struct sockaddr *)&a->sa, a->sa_len) != 0) goto fail;
    if (a->is_unix && cp->listen_mode >= 0) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&a->sa;
        if (chmod(un->sun_path, (mode_t)cp->listen_mode) != 0) goto fail;
    }
    if (listen(fd, cp->backlog) != 0) goto fail;
    return fd;
fail:
    snprintf(err, err_len, "pool %s: listen on %s: %s", cp->name, cp->listen, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
}

int worker_init(worker *w, proxy *px, uint32_t id, char *err, size_t err_len) {
    memset(w, 0, sizeof *w);
    w->id = id;
    w->px = px;
    w->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)id << 32) ^ (uint64_t)getpid();
    w->next_client_id = (uint64_t)id << 48;
    w->now_ms = proxy_now_ms();
    w->tick_ms = 100;
    if (loop_create(&w->loop) != 0) {
        snprintf(err, err_len, "cannot create an event loop");
        return -1;
    }
    w->pool_count = px->cf->pool_count;
    w->pools = calloc(w->pool_count, sizeof *w->pools);
    if (!w->pools) goto oom;
    for (size_t i = 0; i < w->pool_count; i++) {
        wpool *p = &w->pools[i];
        const conf_pool *cp = &px->cf->pools[i];
        p->cf = cp;
        p->w = w;
        p->index = (uint32_t)i;
        p->listen_io.fd = -1;
        p->backend_count = cp->server_count;
        p->backends = calloc(p->backend_count, sizeof *p->backends);
        if (!p->backends) goto oom;
        for (size_t k = 0; k < p->backend_count; k++) {
            backend *b = &p->backends[k];
            b->pool = p;
            b->cf = &cp->servers[k];
            b->index = (uint32_t)k;
            b->conn_count = cp->server_connections;
            b->conns = calloc(b->conn_count, sizeof *b->conns);
            if (!b->conns) goto oom;
            for (uint32_t j = 0; j < b->conn_count; j++) {
                b->conns[j].b = b;
                b->conns[j].io.fd = -1;
            }
        }
        if (pool_build_ring(p) != CHASH_OK) {
            snprintf(err, err_len, "pool %s: cannot build the ring", cp->name);
            return -1;
        }
        if (cp->timeout_ms > 0 && (uint64_t)cp->timeout_ms / 4 < w->tick_ms)
            w->tick_ms = cp->timeout_ms / 4 > 5 ? (uint32_t)(cp->timeout_ms / 4) : 5;
    }
    return 0;
oom:
    snprintf(err, err_len, "out of memory");
    return -1;
}

/* Registers the worker's listener for each pool (fds[i], owned elsewhere). */
int worker_listen(worker *w, const int *fds, char *err, size_t err_len) {
    for (size_t i = 0; i < w->pool_count; i++) {
        wpool *p = &w->pools[i];
        p->listen_io = (loop_io){.fd = fds[i], .fn = listener_on_event, .owner = p};
        uint32_t mask = LOOP_READ;
        if (p->cf->listen_addr.is_unix) mask |= EPOLLEXCLUSIVE;
        if (loop_add(w->loop, &p->listen_io, mask) != 0) {
            snprintf(err, err_len, "pool %s: cannot watch the listener", p->cf->name);
            return -1;
        }
    }
    return 0;
}

void worker_run(worker *w) {
    w->now_ms = proxy_now_ms();
    worker_preconnect(w);
    worker_before_sleep(w);
    w->next_tick_ms = w->now_ms + w->tick_ms;
    while (!proxy_stop) {
        int timeout = (w->flush_clients || w->flush_bconns) ? 0 : (int)w->tick_ms;
        loop_poll(w->loop, timeout);
        w->now_ms = proxy_now_ms();
        if (w->now_ms >= w->next_tick_ms) {
            worker_tick(w);
            w->next_tick_ms = w->now_ms + w->tick_ms;
        }
        worker_before_sleep(w);
    }
}

void worker_destroy(worker *w) {
    if (w->loop) {
        for (size_t i = 0; i < w->pool_count; i++)
            if (w->pools && w->pools[i].listen_io.fd >= 0) loop_del(w->loop, &w->pools[i].listen_io);
        worker_close_all(w);
    }
    for (size_t i = 0; w->pools && i < w->pool_count; i++) {
        wpool *p = &w->pools[i];
        for (size_t k = 0; p->backends && k < p->backend_count; k++) free(p->backends[k].conns);
        free(p->backends);
        chash_free(p->ring);
        free(p->node_backend);
    }
    free(w->pools);
    loop_free(w->loop);
    w->pools = NULL;
    w->loop = NULL;
}
