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

int pool_build_ring(wpool *p) {
    if (p->slots) return CHASH_OK; /* redis-cluster: the slot map places keys */
    size_t n = p->server_count; /* former servers are never on the ring */
    bool *is_live = malloc((n ? n : 1) * sizeof *is_live);
    uint32_t *map = malloc((n ? n : 1) * sizeof *map);
    chash *ring = NULL;
    int rc = CHASH_ENOMEM;
    if (is_live && map) {
        /* backends[k] is servers[k] of the pool's configuration. */
        for (size_t k = 0; k < n; k++) is_live[k] = !p->backends[k].is_ejected;
        rc = conf_pool_ring_live(p->cf, is_live, &ring, map);
    }
    if (rc == CHASH_OK) {
        chash_free(p->ring);
        free(p->node_backend);
        p->ring = ring;
        p->node_backend = map;
        p->live_count = chash_node_count(ring);
        map = NULL;
    } else {
        proxy_log(LOG_ERROR, "pool %s: cannot build the ring: %s", p->cf->name,
                  chash_strerror(rc));
    }
    free(map);
    free(is_live);
    return rc;
}

/* Longest ring-order walk for a rerouted key: past this many down servers
 * in a row it gets an error instead. */
#define REROUTE_WALK_MAX 32

/* redis-cluster: the shard serving the key's slot (the slot map, which
 * cluster.c keeps). */
static backend *slot_pick(wpool *p, const void *key, size_t len) {
    uint16_t k = p->slots[chash_redis_slot(key, len)];
    return k < p->server_count ? &p->backends[k] : NULL;
}

backend *pool_pick(wpool *p, const void *key, size_t len) {
    if (p->slots) return slot_pick(p, key, len);
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

size_t pool_copies(const wpool *p, const void *key, size_t len, size_t want, uint32_t *out) {
    size_t nodes[CONF_REPLICATION_MAX], found = 0;
    if (p->live_count == 0) return 0;
    if (want > CONF_REPLICATION_MAX) want = CONF_REPLICATION_MAX;
    if (chash_lookup_n(p->ring, key, len, want, nodes, &found) != CHASH_OK) return 0;
    for (size_t i = 0; i < found; i++) out[i] = p->node_backend[nodes[i]];
    return found;
}
