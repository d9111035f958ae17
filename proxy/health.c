/*
 * health.c - server failures, ejection and the ring of live servers.
 *
 * nutcracker's rules (nc_server.c): with auto_eject_hosts, a server is taken
 * out of the ring after server_failure_limit consecutive failures (connect
 * errors, resets, EOF, timeouts) and put back, optimistically, after
 * server_retry_timeout ms; its keys move to the other servers meanwhile. A
 * reply resets the count. Each worker judges on its own observations.
 *
 * Invariant: p->ring holds exactly the backends that are not ejected, added
 * in nutcracker's server order, and node_backend maps its node indexes back.
 */
#include "proxy.h"

#include <stdlib.h>
#include <string.h>

/* nutcracker keeps a pool's servers sorted by name, shorter names first (it
 * sorts them to find duplicates); modula's slots and ketama's tie-breaks
 * follow that order, so ours must too. */
static int server_order(const void *a, const void *b) {
    const backend *x = *(backend *const *)a, *y = *(backend *const *)b;
    size_t lx = strlen(x->cf->name), ly = strlen(y->cf->name);
    if (lx != ly) return lx < ly ? -1 : 1;
    return memcmp(x->cf->name, y->cf->name, lx);
}

int pool_build_ring(wpool *p) {
    const conf_pool *cf = p->cf;
    chash_config cc = {0};
    switch (cf->dist) {
    case CONF_DIST_KETAMA:
        cc.algo = CHASH_ALGO_RING;
        cc.scheme = CHASH_SCHEME_TWEMPROXY;
        break;
    case CONF_DIST_MODULA:
        cc.algo = CHASH_ALGO_MODULO;
        cc.scheme = CHASH_SCHEME_TWEMPROXY;
        break;
    case CONF_DIST_RANDOM:
        cc.algo = CHASH_ALGO_RING;
        break;
    case CONF_DIST_ALGO:
        cc.algo = cf->algo;
        cc.scheme = CHASH_SCHEME_NATIVE;
        break;
    }
    cc.key_hash = cf->hash;
    memcpy(cc.hash_tag, cf->hash_tag, sizeof cc.hash_tag);

    size_t n = p->backend_count;
    backend **order = malloc(n * sizeof *order);
    chash_node_spec *specs = malloc(n * sizeof *specs);
    uint32_t *map = malloc(n * sizeof *map);
    chash *ring = NULL;
    int rc = CHASH_ENOMEM;
    if (!order || !specs || !map) goto done;
    size_t live = 0;
    for (size_t i = 0; i < n; i++)
        if (!p->backends[i].is_ejected) order[live++] = &p->backends[i];
    qsort(order, live, sizeof *order, server_order);
    for (size_t i = 0; i < live; i++) {
        specs[i] = (chash_node_spec){order[i]->cf->name, strlen(order[i]->cf->name),
                                     order[i]->cf->weight};
        map[i] = order[i]->index;
    }
    rc = chash_create(&cc, &ring);
    if (rc != CHASH_OK) goto done;
    if (live) rc = chash_add_many(ring, specs, live);
    if (rc != CHASH_OK) goto done;
    chash_free(p->ring);
    free(p->node_backend);
    p->ring = ring;
    p->node_backend = map;
    p->live_count = live;
    ring = NULL;
    map = NULL;
done:
    if (rc != CHASH_OK)
        proxy_log(LOG_ERROR, "pool %s: cannot build the ring: %s", cf->name, chash_strerror(rc));
    chash_free(ring);
    free(map);
    free(specs);
    free(order);
    return rc;
}

void health_failure(backend *b) {
    wpool *p = b->pool;
    b->failures++;
    if (!p->cf->auto_eject_hosts || b->is_ejected || b->failures < p->cf->server_failure_limit)
        return;
    b->is_ejected = true;
    b->failures = 0;
    b->retry_at_ms = p->w->now_ms + (uint64_t)p->cf->server_retry_timeout_ms;
    stat_add(&p->st.server_ejects, 1);
    atomic_store_explicit(&b->st.server_ejected_at, p->w->now_ms * 1000u, memory_order_relaxed);
    proxy_log(LOG_WARN, "pool %s: ejecting server %s for %lld ms", p->cf->name, b->cf->name,
              (long long)p->cf->server_retry_timeout_ms);
    if (pool_build_ring(p) != CHASH_OK) b->is_ejected = false;
}

void health_success(backend *b) { b->failures = 0; }

void health_tick(wpool *p, uint64_t now_ms) {
    bool changed = false;
    for (size_t i = 0; i < p->backend_count; i++) {
        backend *b = &p->backends[i];
        if (b->is_ejected && now_ms >= b->retry_at_ms) {
            b->is_ejected = false;
            changed = true;
            proxy_log(LOG_INFO, "pool %s: retrying server %s", p->cf->name, b->cf->name);
        }
    }
    if (!changed) return;
    bool is_built = pool_build_ring(p) == CHASH_OK;
    for (size_t i = 0; i < p->backend_count; i++) {
        backend *b = &p->backends[i];
        if (b->is_ejected || b->retry_at_ms == 0) continue;
        if (is_built) {
            b->retry_at_ms = 0;
        } else { /* keep the old ring; try again in a second */
            b->is_ejected = true;
            b->retry_at_ms = now_ms + 1000;
        }
    }
}
