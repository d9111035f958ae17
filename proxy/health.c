/*
 * health.c - server failures, what a pool does about them, and probes.
 *
 * A server fails when a connect, write or read errs, the server closes, or a
 * request times out; a reply resets the count. After server_failure_limit
 * failures in a row, the pool's on_failure policy applies:
 * - eject (nutcracker's rule, with auto_eject_hosts): the ring is rebuilt
 *   without the server, so its keys (and, for ketama, some others) move;
 * - error (consistency): the server stays on the ring, marked down, and its
 *   keys get an error at once; nothing is written anywhere else;
 * - reroute (availability): the server stays on the ring, marked down, and
 *   its keys go to the next live server in their ring order (pool.c), so no
 *   other key moves, and they come back when it does.
 * An ejected or down server comes back only when an active probe (PING, or
 * memcached's `version`) gets an answer, tried every server_retry_timeout
 * ms: never on a blind timer. Each worker judges on its own observations, as
 * nutcracker's single process does.
 *
 * The ring itself is pool.c's: ejecting or restoring a server rebuilds it.
 */
#include "proxy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A probe waits this long for its answer at the most. */
#define PROBE_TIMEOUT_MS 1000u

typedef struct health_probe {
    loop_io io;
    backend *b;
    uint64_t deadline_ms;
    bool is_sent;
    struct tls_conn *tls; /* server_tls: the probe's own session */
    size_t got;
    char in[64];
} health_probe;

static const char *policy_name(const conf_pool *cf) {
    return cf->on_failure == CONF_FAIL_ERROR ? "error" : "reroute";
}

/* How soon a replica that failed, or a primary of a Sentinel group, is
 * probed again: failover takes seconds, not server_retry_timeout. */
#define SHARD_RETRY_MS 500u

/* A shard that fails over (Sentinel's, a cluster's): its primary is down
 * at its first failure and comes back as whatever the topology names,
 * never ejected (its keys stay). */
static bool fails_over(const conf_pool *cf) {
    return cf->sentinel_count || conf_pool_is_cluster(cf);
}

void health_failure(backend *b) {
    wpool *p = b->pool;
    if (b->shard) { /* a replica: its reads go elsewhere until it answers */
        if (!b->is_down)
            proxy_log(LOG_WARN, "pool %s: replica %s of %s failed; reads go elsewhere",
                      p->cf->name, b->addr_text, b->cf->name);
        b->is_down = true;
        b->retry_at_ms = p->w->now_ms + SHARD_RETRY_MS;
        return;
    }
    /* A Sentinel group's primary: ask the sentinels now. */
    if (fails_over(p->cf)) topology_recheck(p->w->px);
    b->failures++;
    /* A Sentinel group's primary is down at its first failure: its
     * requests wait (failover_wait) or fail at once, not one by one. */
    if (backend_is_out(b) ||
        (b->failures < p->cf->server_failure_limit && !fails_over(p->cf)))
        return;
    b->failures = 0;
    b->retry_at_ms = p->w->now_ms + (fails_over(p->cf)
                                         ? SHARD_RETRY_MS
                                         : (uint64_t)p->cf->server_retry_timeout_ms);
    stat_add(&p->st.server_ejects, 1);
    atomic_store_explicit(&b->st.server_ejected_at, p->w->now_ms * 1000u, memory_order_relaxed);
    /* A Sentinel group is failed over, never ejected: its keys stay. */
    if (fails_over(p->cf) && p->cf->on_failure != CONF_FAIL_REROUTE) {
        b->is_down = true;
        proxy_log(LOG_WARN, "pool %s: shard %s: primary %s is down; its requests %s until "
                  "%s names a new one or it answers", p->cf->name, b->cf->name,
                  b->addr_text, p->cf->failover_wait_ms ? "wait (failover_wait)" : "fail",
                  p->cf->sentinel_count ? "Sentinel" : "the cluster");
        return;
    }
    if (p->cf->on_failure != CONF_FAIL_EJECT || p->cf->sentinel_count) {
        b->is_down = true;
        size_t k = (size_t)(b - p->backends);
        /* Told to the fleet's thread, which tells etcd: every worker of
         * every proxy then has it down (health_fleet_sync). */
        if (p->w->px->fleet && k < p->server_count)
            atomic_fetch_or(&p->cf->verdicts[k], CONF_VERDICT_LOCAL);
        proxy_log(LOG_WARN, "pool %s: server %s is down (on_failure: %s); probing every %llu ms",
                  p->cf->name, b->cf->name, policy_name(p->cf),
                  (unsigned long long)(b->retry_at_ms - p->w->now_ms));
        return;
    }
    if (!p->cf->auto_eject_hosts) return;
    b->is_ejected = true;
    proxy_log(LOG_WARN, "pool %s: ejecting server %s; probing every %lld ms", p->cf->name,
              b->cf->name, (long long)p->cf->server_retry_timeout_ms);
    if (pool_build_ring(p) != CHASH_OK) b->is_ejected = false;
}

void health_success(backend *b) { b->failures = 0; }

void health_demoted(backend *b) {
    wpool *p = b->pool;
    topology_recheck(p->w->px);
    if (b->is_down || b->is_ejected) return;
    static log_limit limit;
    proxy_log_limited(&limit, LOG_WARN,
                      "pool %s: server %s (%s) answers READONLY: a replica now; its requests "
                      "wait for the new primary", p->cf->name, b->cf->name, b->addr_text);
    b->is_down = true;
    b->failures = 0;
    b->retry_at_ms = p->w->now_ms + SHARD_RETRY_MS;
}

void health_stop(backend *b) {
    health_probe *pr = b->probe;
    if (!pr) return;
    tls_free(pr->tls);
    loop_close(b->pool->w->loop, &pr->io);
    free(pr);
    b->probe = NULL;
}

/* Whether the fleet decides the health of p's servers now: --etcd, etcd
 * answering, on_failure error or reroute, no Sentinel (which has its own
 * failover). Otherwise each worker judges alone, as without a fleet. */
static bool fleet_decides(const wpool *p) {
    const proxy *px = p->w->px;
    return px->fleet && p->cf->on_failure != CONF_FAIL_EJECT && !fails_over(p->cf) &&
           atomic_load(&px->fleet_state) != FLEET_ISOLATED;
}

void health_fleet_sync(wpool *p) {
    bool decides = fleet_decides(p);
    for (size_t k = 0; k < p->server_count; k++) {
        backend *b = &p->backends[k];
        bool is_down = (atomic_load(&p->cf->verdicts[k]) & CONF_VERDICT_FLEET) != 0;
        if (is_down == b->is_fleet_down) continue;
        b->is_fleet_down = is_down;
        if (!decides) continue;
        if (is_down && !b->is_down) {
            b->is_down = true;
            b->failures = 0;
            b->retry_at_ms = p->w->now_ms + (uint64_t)p->cf->server_retry_timeout_ms;
            proxy_log(LOG_WARN, "pool %s: server %s is down for the whole fleet (on_failure: "
                      "%s)", p->cf->name, b->cf->name, policy_name(p->cf));
        } else if (!is_down && b->is_down) {
            health_stop(b);
            b->is_down = false;
            b->failures = 0;
            b->retry_at_ms = 0;
            proxy_log(LOG_INFO, "pool %s: server %s is up for the whole fleet", p->cf->name,
                      b->cf->name);
        }
    }
}

/* The server answered: back on the ring (or up again). */
static void server_back(backend *b) {
    wpool *p = b->pool;
    health_stop(b);
    b->failures = 0;
    b->retry_at_ms = 0;
    size_t k = (size_t)(b - p->backends);
    if (b->is_down && p->w->px->fleet && k < p->server_count) {
        atomic_fetch_and(&p->cf->verdicts[k], (unsigned char)~CONF_VERDICT_LOCAL);
        /* Up when the fleet says so: every proxy whose workers had it down
         * must have seen it answer (health_fleet_sync brings it back). */
        if (fleet_decides(p) && b->is_fleet_down) {
            b->retry_at_ms = p->w->now_ms + (uint64_t)p->cf->server_retry_timeout_ms;
            return;
        }
    }
    if (b->is_down) {
        b->is_down = false;
        proxy_log(LOG_INFO, "pool %s: server %s answered its probe: up again", p->cf->name,
                  b->cf->name);
        return;
    }
    b->is_ejected = false;
    if (pool_build_ring(p) != CHASH_OK) { /* keep the old ring; probe again later */
        b->is_ejected = true;
        b->retry_at_ms = p->w->now_ms + 1000;
        return;
    }
    proxy_log(LOG_INFO, "pool %s: server %s answered its probe: back on the ring", p->cf->name,
              b->cf->name);
}

/* A shard's primary in a pool with replicas: its probe asks ROLE, since
 * a demoted primary still answers PING. */
static bool probes_role(const backend *b) { return b->replicas && !b->shard; }

static void probe_failed(backend *b) {
    health_stop(b);
    b->retry_at_ms = b->pool->w->now_ms + (b->shard || fails_over(b->pool->cf)
                                               ? SHARD_RETRY_MS
                                               : (uint64_t)b->pool->cf->server_retry_timeout_ms);
}

/* 1: the server is serving: +PONG, or an error such as -NOAUTH (it is
 * there, it wants a password the real connections send); memcached's
 * VERSION line; ROLE's "master". 0: more bytes needed; -1: not an answer
 * (ROLE's "slave": not a primary). */
static int probe_answered(const health_probe *pr, bool is_redis, bool is_role) {
    const char *eol = memchr(pr->in, '\n', pr->got);
    if (!eol) return 0;
    if (is_redis && is_role && pr->in[0] == '*') {
        static const char master[] = "$6\r\nmaster\r\n";
        size_t at = (size_t)(eol - pr->in) + 1;
        if (pr->got - at < sizeof master - 1) return 0;
        return memcmp(pr->in + at, master, sizeof master - 1) == 0 ? 1 : -1;
    }
    if (is_redis) return pr->in[0] == '+' || pr->in[0] == '-' ? 1 : -1;
    return pr->got >= 8 && memcmp(pr->in, "VERSION ", 8) == 0 ? 1 : -1;
}

/* server_tls: the probe's handshake. True once done; false while it goes
 * on or when it failed (the probe is then over: a certificate that does
 * not verify keeps the server out, and the log says why). */
static bool probe_tls(health_probe *pr) {
    backend *b = pr->b;
    const conf_pool *cf = b->pool->cf;
    if (!pr->tls) {
        char name[256];
        tls_peer_name(cf->server_tls_name, b->addr_text, name, sizeof name);
        pr->tls = tls_connect(cf->server_tls_ctx, pr->io.fd, name);
        if (!pr->tls) {
            probe_failed(b);
            return false;
        }
    }
    int rc = tls_handshake(pr->tls);
    if (rc == 1) return true;
    if (rc == TLS_AGAIN) {
        loop_set(b->pool->w->loop, &pr->io, tls_wants_read(pr->tls) ? LOOP_READ : LOOP_WRITE);
        return false;
    }
    static log_limit limit;
    proxy_log_limited(&limit, LOG_WARN, "pool %s: server %s: probe: TLS to %s: %s", cf->name,
                      b->cf->name, b->addr_text, tls_why(pr->tls));
    probe_failed(b);
    return false;
}

static void probe_on_event(loop_io *io, uint32_t events) {
    health_probe *pr = io->owner;
    backend *b = pr->b;
    bool is_redis = b->pool->cf->redis;
    if (!pr->is_sent) {
        if (!pr->tls) {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
                probe_failed(b);
                return;
            }
        }
        const conf_pool *cf = b->pool->cf;
        if (cf->server_tls_ctx && !probe_tls(pr)) return;
        const char *ask = !is_redis ? "version\r\n" : probes_role(b) ? "ROLE\r\n" : "PING\r\n";
        size_t len = strlen(ask);
        ssize_t n = pr->tls ? tls_write(pr->tls, ask, len) : send(io->fd, ask, len, MSG_NOSIGNAL);
        if (n != (ssize_t)len) { /* a fresh connection takes 14 bytes or is broken */
            probe_failed(b);
            return;
        }
        pr->is_sent = true;
        loop_set(b->pool->w->loop, io, LOOP_READ);
        return;
    }
    (void)events;
    size_t room = sizeof pr->in - 1 - pr->got;
    ssize_t n = pr->tls ? tls_read(pr->tls, pr->in + pr->got, room)
                        : read(io->fd, pr->in + pr->got, room);
    if (pr->tls ? n == TLS_AGAIN : n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        probe_failed(b);
        return;
    }
    pr->got += (size_t)n;
    int answer = probe_answered(pr, is_redis, probes_role(b));
    if (answer > 0)
        server_back(b);
    else if (answer < 0 || pr->got == sizeof pr->in - 1)
        probe_failed(b); /* not an answer we know */
}

static void probe_start(backend *b, uint64_t now_ms) {
    const conf_addr *a = &b->addr;
    health_probe *pr = calloc(1, sizeof *pr);
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!pr || fd < 0) goto fail;
    if (connect(fd, (const struct sockaddr *)&a->sa, a->sa_len) != 0 && errno != EINPROGRESS)
        goto fail;
    pr->io = (loop_io){.fd = fd, .fn = probe_on_event, .owner = pr};
    pr->b = b;
    pr->deadline_ms = now_ms + PROBE_TIMEOUT_MS;
    if (loop_add(b->pool->w->loop, &pr->io, LOOP_WRITE) != 0) goto fail;
    b->probe = pr;
    return;
fail:
    if (fd >= 0) close(fd);
    free(pr);
    b->retry_at_ms = now_ms + (uint64_t)b->pool->cf->server_retry_timeout_ms;
}

static void backend_tick(backend *b, uint64_t now_ms) {
    if (!backend_is_out(b)) return;
    if (b->probe) {
        if (now_ms >= b->probe->deadline_ms) probe_failed(b);
    } else if (now_ms >= b->retry_at_ms) {
        probe_start(b, now_ms);
    }
}

void health_tick(wpool *p, uint64_t now_ms) {
    for (size_t i = 0; i < p->backend_count; i++) {
        backend *b = &p->backends[i];
        backend_tick(b, now_ms);
        for (uint32_t k = 0; b->replicas && k < CONF_REPLICAS_MAX; k++)
            if (b->replicas[k].is_present) backend_tick(&b->replicas[k], now_ms);
    }
}
