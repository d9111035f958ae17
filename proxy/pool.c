/*
 * pool.c - where a pool's keys go: its ring of live servers, and the server
 * for a key under the pool's failure policy.
 *
 * Invariant: p->ring holds the backends that are not ejected, in
 * nutcracker's server order, and node_backend maps its node indexes back.
 */
#include "proxy.h"

#include <stdlib.h>
#include <string.h>

/* Backends in nutcracker's server order (conf_server_order). */
static int server_order(const void *a, const void *b) {
    const backend *x = *(backend *const *)a, *y = *(backend *const *)b;
    const conf_server *sx = x->cf, *sy = y->cf;
    return conf_server_order(&sx, &sy);
}

int pool_build_ring(wpool *p) {
    const conf_pool *cf = p->cf;
    chash_config cc;
    conf_pool_chash_config(cf, &cc);

    size_t n = p->server_count; /* former servers are never on the ring */
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

/* Longest ring-order walk for a rerouted key: past this many down servers
 * in a row it gets an error instead. */
#define REROUTE_WALK_MAX 32

backend *pool_pick(wpool *p, const void *key, size_t len) {
    if (p->live_count == 0) return NULL;
    size_t node;
    if (p->cf->dist == CONF_DIST_RANDOM) {
        uint64_t x = p->w->rng; /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p->w->rng = x;
        node = (size_t)(x % p->live_count);
    } else if (chash_lookup(p->ring, key, len, &node) != CHASH_OK) {
        return NULL;
    }
    backend *b = &p->backends[p->node_backend[node]];
    /* on_failure: error hands the down owner back, and frag_conn answers
     * with the error; reroute walks to the first live server in the key's
     * ring order, so no other key moves. */
    if (!b->is_down || p->cf->on_failure != CONF_FAIL_REROUTE) return b;
    size_t order[REROUTE_WALK_MAX], found = 0;
    size_t want = p->live_count < REROUTE_WALK_MAX ? p->live_count : REROUTE_WALK_MAX;
    if (chash_lookup_n(p->ring, key, len, want, order, &found) != CHASH_OK) return b;
    for (size_t i = 1; i < found; i++) {
        backend *next = &p->backends[p->node_backend[order[i]]];
        if (!next->is_down) return next;
    }
    return b;
}
