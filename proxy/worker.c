/*
 * worker.c - one event loop per thread: its listeners, pools, backends.
 *
 * TCP pools: every worker has its own listening socket bound with
 * SO_REUSEPORT, so the kernel spreads new connections over the workers.
 * Unix-socket pools: one socket, registered by every worker with
 * LOOP_EXCLUSIVE so one of them wakes per connection.
 *
 * A loop turn: wait for events (handlers read, route and queue), take a
 * reloaded configuration if one was published, run the timers every
 * tick_ms, then flush every connection that has output.
 */
#define _GNU_SOURCE
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

atomic_int proxy_stop;
atomic_int proxy_drain;

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * The worker's clock (now_ms, now_us), which timeouts, probes and windows
 * read, advances by at most one tick plus STALL_SLACK_MS a loop turn: when
 * the proxy itself stops (a stopped process, a starved core, swapping), the
 * time it was not running does not count against the servers. At b733ada a
 * 600 ms stall of the proxy failed 2,121 requests to healthy servers.
 */
#define STALL_SLACK_MS 50u

static void clock_advance(worker *w) {
    uint64_t real = now_us();
    uint64_t delta = real - w->real_us, most = ((uint64_t)w->tick_ms + STALL_SLACK_MS) * 1000u;
    w->real_us = real;
    w->now_us += delta < most ? delta : most;
    w->now_ms = w->now_us / 1000u;
}

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

/* Builds a pool's runtime (backends, ring) from its configuration. */
static int wpool_init(worker *w, wpool *p, const conf_pool *cp, uint32_t index, char *err,
                      size_t err_len) {
    p->cf = cp;
    p->w = w;
    p->index = index;
    p->listen_io.fd = -1;
    p->backend_count = p->server_count = cp->server_count;
    p->backends = calloc(p->backend_count ? p->backend_count : 1, sizeof *p->backends);
    if (!p->backends) goto oom;
    for (size_t k = 0; k < p->backend_count; k++) {
        backend *b = &p->backends[k];
        if (!backend_init(b, p, &cp->servers[k], (uint32_t)k)) goto oom;
        if (!conf_pool_has_topology(cp)) continue;
        /* Replica slots: filled by shard_sync from the topology. */
        b->replicas = calloc(CONF_REPLICAS_MAX, sizeof *b->replicas);
        if (!b->replicas) goto oom;
        for (uint32_t i = 0; i < CONF_REPLICAS_MAX; i++) {
            if (!backend_init(&b->replicas[i], p, &cp->servers[k], i)) goto oom;
            b->replicas[i].shard = b;
        }
    }
    if (conf_pool_is_cluster(cp)) {
        p->server_count = 0; /* the shards the topology names: shard_sync */
        /* No shard serves a slot until the topology's map says so. */
        p->slots = malloc(16384 * sizeof *p->slots);
        if (!p->slots) goto oom;
        memset(p->slots, 0xff, 16384 * sizeof *p->slots);
    }
    shard_sync(p);
    cluster_sync(p);
    if (cp->redis) {
        p->cmd_requests = calloc(command_count(), sizeof *p->cmd_requests);
        if (!p->cmd_requests) goto oom;
    }
    if (pool_build_ring(p) != CHASH_OK) {
        snprintf(err, err_len, "pool %s: cannot build the ring", cp->name);
        return -1;
    }
    if (cp->timeout_ms > 0 && (uint64_t)cp->timeout_ms / 4 < w->tick_ms)
        w->tick_ms = cp->timeout_ms / 4 > 5 ? (uint32_t)(cp->timeout_ms / 4) : 5;
    return 0;
oom:
    snprintf(err, err_len, "out of memory");
    return -1;
}

/* Frees what wpool_init made. */
static void wpool_free(wpool *p) {
    warmup_stop(p); /* first: it closes the former servers among the backends */
    shard_release(p, "the pool is closing");
    cluster_release(p, "the pool is closing");
    free(p->slots);
    p->slots = NULL;
    for (size_t k = 0; p->backends && k < p->backend_count; k++) {
        backend *b = &p->backends[k];
        if (p->w->loop) health_stop(b);
        free(b->conns);
        for (uint32_t i = 0; b->replicas && i < CONF_REPLICAS_MAX; i++) {
            if (p->w->loop) health_stop(&b->replicas[i]);
            free(b->replicas[i].conns);
        }
        free(b->replicas);
    }
    free(p->backends);
    free(p->cmd_requests);
    p->cmd_requests = NULL;
    chash_free(p->ring);
    free(p->node_backend);
    p->backends = NULL;
    p->ring = NULL;
    p->node_backend = NULL;
}

/* Timers of one pool: probes of failed servers, the warm-up window, and
 * requests that waited too long. */
static void pool_tick(wpool *p, uint64_t now_ms) {
    listener_tick(p, now_ms);
    shard_sync(p);
    cluster_sync(p);
    health_tick(p, now_ms);
    shard_tick(p, now_ms);
    cluster_tick(p, now_ms);
    warmup_tick(p, now_ms);
    server_expire(p, now_ms);
    /* For the status page, which the stats thread draws. */
    for (size_t k = 0; k < p->server_count; k++) {
        const backend *b = &p->backends[k];
        atomic_store_explicit(&p->backends[k].shown,
                              b->is_ejected ? BACKEND_SHOWN_EJECTED
                              : b->is_down  ? BACKEND_SHOWN_DOWN
                                            : BACKEND_SHOWN_UP,
                              memory_order_relaxed);
    }
    atomic_store_explicit(&p->shown_warm_left_ms,
                          p->prev_ring && p->warm_until_ms > now_ms ? p->warm_until_ms - now_ms : 0,
                          memory_order_relaxed);
}

/* Pools a reload replaced, kept until no request is in flight on them. */
typedef struct retired {
    wpool *pools;
    size_t count;
    uint64_t gen; /* of the configuration they were built from */
    struct retired *next;
} retired;

/* See worker.oldest_gen; published for reload_collect. */
static void publish_oldest_gen(worker *w) {
    uint64_t g = w->cf_gen;
    for (const retired *r = w->retired; r; r = r->next)
        if (r->gen < g) g = r->gen;
    for (size_t i = 0; i < w->pool_count; i++)
        if (warmup_active(&w->pools[i]) && w->pools[i].warm_gen < g) g = w->pools[i].warm_gen;
    atomic_store(&w->oldest_gen, g);
}

static bool backend_is_idle(const backend *b) {
    if (b->held || b->parked) return false;
    for (uint32_t j = 0; j < b->conn_count; j++)
        if (b->conns[j].head) return false;
    return true;
}

static bool pool_is_idle(const wpool *p) {
    for (size_t k = 0; k < p->backend_count; k++) {
        const backend *b = &p->backends[k];
        if (!backend_is_idle(b)) return false;
        for (uint32_t i = 0; b->replicas && i < CONF_REPLICAS_MAX; i++)
            if (!backend_is_idle(&b->replicas[i])) return false;
    }
    return true;
}

/* Timeouts on the old pools, and closing them once they are idle. */
static void retired_tick(worker *w, bool force) {
    for (retired **at = &w->retired; *at;) {
        retired *r = *at;
        bool is_idle = true;
        for (size_t i = 0; i < r->count; i++) {
            pool_tick(&r->pools[i], w->now_ms);
            is_idle &= pool_is_idle(&r->pools[i]);
        }
        if (!is_idle && !force) {
            at = &r->next;
            continue;
        }
        pthread_mutex_lock(&w->px->lock);
        *at = r->next;
        pthread_mutex_unlock(&w->px->lock);
        for (size_t i = 0; i < r->count; i++) {
            pool_close(&r->pools[i], "server removed by a reload");
            wpool_free(&r->pools[i]);
        }
        free(r->pools);
        free(r);
    }
}

/* A reloaded pool's statistics go on from the old pool's: its counters, the
 * client gauge (its clients move over), and the counters of each server
 * still in it (same name and address). Gauges of server connections stay
 * with the connections, which stay with the old pool until it drains. */
static void carry_stats(wpool *to, const wpool *from) {
    stats_carry_pool(&to->st, &from->st);
    for (size_t i = 0; from->cmd_requests && to->cmd_requests && i < command_count(); i++)
        stat_add(&to->cmd_requests[i], stat_get(&from->cmd_requests[i]));
    for (size_t k = 0; k < to->server_count; k++) {
        for (size_t j = 0; j < from->server_count; j++) {
            if (!conf_server_same(to->backends[k].cf, from->backends[j].cf)) continue;
            stats_carry_server(&to->backends[k].st, &from->backends[j].st);
            break;
        }
    }
}

/* Whether nothing of pool p is on a shared server connection, waiting for a
 * server (held connections - transactions, blocking commands - are the
 * client's own and are not waited for). */
static bool pool_is_drained(const wpool *p) {
    for (size_t k = 0; k < p->backend_count; k++) {
        const backend *b = &p->backends[k];
        if (b->parked) return false;
        for (uint32_t j = 0; j < b->conn_count; j++)
            if (b->conns[j].head) return false;
        for (uint32_t i = 0; b->replicas && i < CONF_REPLICAS_MAX; i++) {
            const backend *r = &b->replicas[i];
            for (uint32_t j = 0; j < r->conn_count; j++)
                if (r->conns[j].head) return false;
        }
    }
    return true;
}

/* Fleet (--etcd): takes the holds the fleet's thread set, resumes clients
 * it paused when holds or the permit changed, and says when the held pools
 * have nothing in flight (fleet.c waits for every worker before it tells
 * etcd this proxy no longer serves them by the old epoch). */
static void worker_fleet_sync(worker *w, bool is_new_conf) {
    proxy *px = w->px;
    uint64_t seq = atomic_load(&px->fleet_seq);
    if (seq != w->fleet_seq || is_new_conf) {
        w->fleet_seq = seq;
        for (size_t i = 0; i < w->pool_count; i++) {
            w->pools[i].is_fleet_held = atomic_load(&px->fleet_hold[i]) != 0;
            health_fleet_sync(&w->pools[i]);
        }
        for (client *c = w->clients; c; c = c->next)
            if (c->is_paused) client_schedule(c);
    }
    if (atomic_load(&w->fleet_drained) == seq) return;
    if (w->retired) return; /* an older epoch's requests still in flight */
    for (size_t i = 0; i < w->pool_count; i++)
        if (w->pools[i].is_fleet_held && !pool_is_drained(&w->pools[i])) return;
    atomic_store(&w->fleet_drained, seq);
}

static void worker_on_wake(loop_io *io, uint32_t events) {
    (void)events;
    uint64_t n;
    while (read(io->fd, &n, sizeof n) > 0) {
    }
}

/* Takes a newer configuration if one was published: new pools, listeners
 * and clients moved over, the old pools kept until their requests finish. */
static void worker_sync(worker *w) {
    proxy *px = w->px;
    if (w->retired) retired_tick(w, false);
    uint64_t gen = atomic_load(&px->conf_gen);
    if (gen == w->conf_gen) {
        if (px->fleet) worker_fleet_sync(w, false);
        return;
    }
    pthread_mutex_lock(&px->lock);
    const conf *cf = px->cf;
    pthread_mutex_unlock(&px->lock);
    w->conf_gen = gen;
    char err[256];
    wpool *fresh = calloc(cf->pool_count, sizeof *fresh);
    retired *old = malloc(sizeof *old);
    size_t built = 0;
    if (!fresh || !old) goto fail;
    for (; built < cf->pool_count; built++)
        if (wpool_init(w, &fresh[built], &cf->pools[built], (uint32_t)built, err,
                       sizeof err) != 0) {
            built++;
            goto fail;
        }
    /* Pools keep their index across reloads (reload.c refuses otherwise). */
    for (size_t i = 0; i < w->pool_count && i < cf->pool_count; i++) {
        carry_stats(&fresh[i], &w->pools[i]);
        warmup_start(&fresh[i], w->pools[i].cf);
        fresh[i].warm_gen = w->cf_gen;
    }
    /* The same listening sockets, now owned by the new pools. */
    for (size_t i = 0; i < w->pool_count; i++) {
        loop_io *io = &w->pools[i].listen_io;
        if (io->fd < 0) continue;
        int fd = io->fd;
        if (!w->is_draining) loop_del(w->loop, io);
        io->fd = -1;
        fresh[i].listen_io = (loop_io){.fd = fd, .fn = listener_on_event, .owner = &fresh[i]};
        fresh[i].listen_mask = w->pools[i].listen_mask;
        if (!w->is_draining) loop_add(w->loop, &fresh[i].listen_io, fresh[i].listen_mask);
    }
    for (client *c = w->clients; c; c = c->next) {
        const conf_pool *before = c->pool->cf;
        c->pool = &fresh[c->pool->index];
        session_rebind(c, before); /* its user, by name, in the new users */
        c->is_fenced = c->head != NULL; /* see client_is_full */
        /* Its channels may have moved: it subscribes again on reconnect. */
        if (pubsub_count(c)) client_drain(c);
        if (c->held || c->txn) held_reload(c);
    }
    old->pools = w->pools;
    old->count = w->pool_count;
    old->gen = w->cf_gen;
    pthread_mutex_lock(&px->lock);
    old->next = w->retired;
    w->retired = old;
    w->pools = fresh;
    w->pool_count = cf->pool_count;
    w->cf = cf;
    w->cf_gen = gen;
    pthread_mutex_unlock(&px->lock);
    publish_oldest_gen(w);
    if (px->fleet) {
        worker_fleet_sync(w, true);
    } else {
        /* Clients that waited for this configuration (client_is_full). */
        for (client *c = w->clients; c; c = c->next)
            if (c->is_paused) client_schedule(c);
    }
    return;
fail:
    proxy_log(LOG_ERROR, "worker %u: cannot take the new configuration: %s", w->id,
              fresh ? err : "out of memory");
    for (size_t i = 0; fresh && i < built; i++) wpool_free(&fresh[i]);
    free(fresh);
    free(old);
    for (client *c = w->clients; c; c = c->next) /* they waited for nothing */
        if (c->is_paused) client_schedule(c);
}

int worker_init(worker *w, proxy *px, uint32_t id, char *err, size_t err_len) {
    memset(w, 0, sizeof *w);
    w->id = id;
    w->px = px;
    w->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)id << 32) ^ (uint64_t)getpid();
    w->next_client_id = (uint64_t)id << 48;
    w->now_us = w->real_us = now_us();
    w->now_ms = w->now_us / 1000u;
    w->tick_ms = 100;
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->wake_io = (loop_io){.fd = -1, .fn = worker_on_wake, .owner = w};
    int rc = loop_create(&w->loop, (loop_kind)px->loop_kind);
    if (rc != 0) {
        snprintf(err, err_len, "cannot create an event loop (%s): %s",
                 px->loop_kind == LOOP_URING ? "io_uring" : "epoll", strerror(-rc));
        return -1;
    }
    w->cf = px->cf;
    w->conf_gen = w->cf_gen = atomic_load(&px->conf_gen);
    atomic_store(&w->oldest_gen, w->cf_gen);
    w->pool_count = px->cf->pool_count;
    w->pools = calloc(w->pool_count, sizeof *w->pools);
    if (!w->pools) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < w->pool_count; i++)
        if (wpool_init(w, &w->pools[i], &px->cf->pools[i], (uint32_t)i, err, err_len) != 0)
            return -1;
    if (px->fleet) {
        /* The fleet's thread wakes an idle worker when a hold or the
         * permit changes, instead of waiting for its next tick. */
        w->wake_io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->wake_io.fd < 0 || loop_add(w->loop, &w->wake_io, LOOP_READ) != 0) {
            snprintf(err, err_len, "cannot create the worker's eventfd");
            return -1;
        }
        w->fleet_seq = UINT64_MAX; /* the first turn copies the holds */
    }
    return 0;
}

/* Registers the worker's listener for each pool (fds[i], owned elsewhere). */
int worker_listen(worker *w, const int *fds, char *err, size_t err_len) {
    for (size_t i = 0; i < w->pool_count; i++) {
        wpool *p = &w->pools[i];
        p->listen_io = (loop_io){.fd = fds[i], .fn = listener_on_event, .owner = p};
        p->listen_mask = LOOP_READ;
        if (p->cf->listen_addr.is_unix) p->listen_mask |= LOOP_EXCLUSIVE;
        if (loop_add(w->loop, &p->listen_io, p->listen_mask) != 0) {
            snprintf(err, err_len, "pool %s: cannot watch the listener", p->cf->name);
            return -1;
        }
    }
    return 0;
}

/* Writes every connection with output, in one pass each, then frees the
 * clients closed during the turn (their events may have been pending). */
static void worker_before_sleep(worker *w) {
    for (int round = 0; round < 8 && (w->flush_clients || w->flush_bconns); round++) {
        client *cl = w->flush_clients;
        w->flush_clients = NULL;
        while (cl) {
            client *next = cl->next_flush;
            cl->in_flush = false;
            if (!cl->is_closed) client_flush(cl);
            cl = next;
        }
        bconn *bl = w->flush_bconns;
        w->flush_bconns = NULL;
        while (bl) {
            bconn *next = bl->next_flush;
            bl->in_flush = false;
            if (bl->state == BC_READY) bconn_flush(bl);
            bl = next;
        }
    }
    while (w->dead) {
        client *c = w->dead;
        w->dead = c->next_dead;
        free(c);
    }
    while (w->dead_bconns) {
        bconn *bc = w->dead_bconns;
        w->dead_bconns = bc->next_dead;
        free(bc);
    }
}

/* Graceful shutdown: no more accepts; every client is answered, then
 * closed. Returns true once the worker has no client left. */
static bool worker_drain(worker *w) {
    if (!w->is_draining) {
        w->is_draining = true;
        for (size_t i = 0; i < w->pool_count; i++)
            if (w->pools[i].listen_io.fd >= 0) loop_del(w->loop, &w->pools[i].listen_io);
        /* Half-closed clients are answered, then closed: the same here. */
        for (client *c = w->clients; c; c = c->next) client_drain(c);
    }
    return w->clients == NULL;
}

static void worker_close_all(worker *w) {
    while (w->clients) client_close(w->clients, false);
    for (size_t i = 0; i < w->pool_count; i++) pool_close(&w->pools[i], "shutting down");
    worker_before_sleep(w);
}

void worker_run(worker *w) {
    w->now_us = w->real_us = now_us();
    w->now_ms = w->now_us / 1000u;
    for (size_t i = 0; i < w->pool_count; i++) pool_preconnect(&w->pools[i]);
    worker_before_sleep(w);
    w->next_tick_ms = w->now_ms + w->tick_ms;
    while (!proxy_stop) {
        if (proxy_drain) {
            if (!w->is_draining) w->drain_deadline_ms = w->now_ms + DRAIN_TIMEOUT_MS;
            if (worker_drain(w) || w->now_ms >= w->drain_deadline_ms) break;
        }
        int timeout = (w->flush_clients || w->flush_bconns) ? 0 : (int)w->tick_ms;
        loop_poll(w->loop, timeout);
        clock_advance(w);
        worker_sync(w);
        if (w->now_ms >= w->next_tick_ms) {
            for (size_t i = 0; i < w->pool_count; i++) pool_tick(&w->pools[i], w->now_ms);
            client_tls_expire(w, w->now_ms);
            client_shed(w);
            publish_oldest_gen(w); /* retired pools and warm-up windows end here */
            w->next_tick_ms = w->now_ms + w->tick_ms;
        }
        worker_before_sleep(w);
    }
    /* The clients' closes done (their replies written first); a forced stop
     * does not wait for slow readers. */
    loop_flush(w->loop, proxy_stop ? 0 : 1000);
}

void worker_destroy(worker *w) {
    if (w->loop) {
        for (size_t i = 0; i < w->pool_count; i++)
            if (w->pools && w->pools[i].listen_io.fd >= 0) loop_del(w->loop, &w->pools[i].listen_io);
        worker_close_all(w);
    }
    retired_tick(w, true); /* in flight or not */
    for (size_t i = 0; w->pools && i < w->pool_count; i++) wpool_free(&w->pools[i]);
    free(w->pools);
    req_free_spares(w);
    if (w->wake_io.fd >= 0) {
        if (w->loop) loop_del(w->loop, &w->wake_io);
        close(w->wake_io.fd);
        w->wake_io.fd = -1;
    }
    loop_free(w->loop);
    if (w->reserve_fd >= 0) close(w->reserve_fd);
    w->reserve_fd = -1;
    w->pools = NULL;
    w->loop = NULL;
}
