/*
 * shard.c - a shard's primary and replicas, as one worker uses them.
 *
 * In a pool with replicas (`sentinels:` or `replicas:`), each configured
 * server is a shard: the ring places keys on its name, and its backend is
 * the shard's primary, at whatever address the topology (topology.c) says
 * now. Its replicas are backends of their own (CONF_REPLICAS_MAX slots per
 * shard, outside pool->backends and never on the ring), each with its
 * connections, health and probes.
 *
 * - shard_sync: a new primary's address replaces the old one; the old
 *   connections close, and what they carried gets an error (it may or may
 *   not have run: the client is told so). Replicas are matched to slots by
 *   address, so a reordered list closes nothing.
 * - shard_reader: read_from chooses a replica for a read; a client's
 *   reads keep to one replica while it stays usable (its id picks it), so
 *   its successive reads do not go back in time by hopping between replicas
 *   of different lag.
 * - shard_park / shard_tick: with failover_wait, a request for a shard
 *   whose primary is down waits (a copy of its bytes, in order) for the
 *   new primary, or fails when the wait is over; requests for other shards
 *   never wait behind it.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool addr_same(const conf_addr *a, const conf_addr *b) {
    return a->sa_len == b->sa_len && memcmp(&a->sa, &b->sa, a->sa_len) == 0;
}

/* b now lives at n's address: what went to the old one fails. */
static void backend_move(backend *b, const topo_node *n, const char *why) {
    backend_close(b, why);
    health_stop(b);
    b->addr = n->sa;
    snprintf(b->addr_text, sizeof b->addr_text, "%s", n->addr);
    b->failures = 0;
    b->retry_at_ms = 0;
    b->is_down = false;
}

static void sync_replicas(backend *b, const topo_shard *v) {
    bool is_kept[CONF_REPLICAS_MAX] = {false};
    for (uint32_t i = 0; i < CONF_REPLICAS_MAX; i++) {
        backend *r = &b->replicas[i];
        if (!r->is_present) continue;
        uint32_t j = 0;
        while (j < v->replica_count && !(strcmp(v->replicas[j].addr, r->addr_text) == 0 &&
                                         addr_same(&v->replicas[j].sa, &r->addr)))
            j++;
        if (j == v->replica_count) { /* gone from the topology */
            backend_close(r, "the replica left the shard");
            health_stop(r);
            r->is_present = r->is_usable = r->is_down = false;
            continue;
        }
        is_kept[j] = true;
        r->is_usable = v->replicas[j].is_usable;
        r->answers = v->replicas[j].answers;
    }
    for (uint32_t j = 0; j < v->replica_count; j++) {
        if (is_kept[j]) continue;
        for (uint32_t i = 0; i < CONF_REPLICAS_MAX; i++) {
            backend *r = &b->replicas[i];
            if (r->is_present) continue;
            backend_move(r, &v->replicas[j], "the replica left the shard");
            r->is_present = true;
            r->is_usable = v->replicas[j].is_usable;
            r->answers = v->replicas[j].answers;
            break;
        }
    }
}

void shard_sync(wpool *p) {
    proxy *px = p->w->px;
    uint64_t gen = atomic_load(&px->topo_gen);
    if (!conf_pool_has_topology(p->cf) || gen == p->topo_gen) return;
    p->topo_gen = gen;
    /* redis-cluster: every shard entry, of which those the topology gave a
     * shard (the first ones) are the pool's servers. */
    bool is_cluster = conf_pool_is_cluster(p->cf);
    size_t count = is_cluster ? p->backend_count : p->server_count, used = 0;
    for (size_t k = 0; k < count; k++) {
        backend *b = &p->backends[k];
        topo_shard v;
        if (!b->replicas || !topology_shard(px, p->cf->name, b->cf->name, &v)) continue;
        if (v.primary.addr[0]) used = k + 1;
        if (v.primary.addr[0] && strcmp(v.primary.addr, b->addr_text) != 0) {
            char why[200];
            snprintf(why, sizeof why, "failover: shard %s moved from %s to %s; this command "
                     "may or may not have run", b->cf->name, b->addr_text, v.primary.addr);
            proxy_log(LOG_INFO, "pool %s: worker %u follows shard %s to %s", p->cf->name,
                      p->w->id, b->cf->name, v.primary.addr);
            backend_move(b, &v.primary, why);
        }
        sync_replicas(b, &v);
    }
    if (is_cluster && used > p->server_count) p->server_count = used;
}

/* Whether replica r of primary b takes reads now: usable (linked, within
 * the lag limit), or, while b is down, one that answers though its link is
 * down too: it holds what the primary sent it, the freshest copy there is
 * (reads stay available through a failover). */
static bool replica_serves(const backend *r, const backend *b) {
    return r->is_present && !r->is_down && (r->is_usable || (b->is_down && r->answers));
}

backend *shard_reader(client *c, const cmd_spec *spec, backend *b, const char **why) {
    const conf_pool *cf = b->pool->cf;
    if (!b->replicas || !(spec->flags & CMD_READONLY)) return b;
    /* A client that holds a connection to the shard (WATCH, a
     * transaction) reads where it writes. */
    if (cf->read_from == CONF_READ_PRIMARY || held_conn_find(c, b)) {
        stat_add(&b->st.reads_primary, 1);
        return b;
    }
    uint32_t usable = 0;
    for (uint32_t i = 0; i < CONF_REPLICAS_MAX; i++) usable += replica_serves(&b->replicas[i], b);
    if (usable) {
        uint32_t pick = (uint32_t)(c->id % usable);
        for (uint32_t i = 0; i < CONF_REPLICAS_MAX; i++) {
            backend *r = &b->replicas[i];
            if (!replica_serves(r, b)) continue;
            if (pick-- == 0) {
                stat_add(&b->st.reads_replica, 1);
                return r;
            }
        }
    }
    if (cf->read_from == CONF_READ_PREFER_REPLICA) {
        stat_add(&b->st.reads_primary, 1);
        return b;
    }
    stat_add(&b->st.reads_refused, 1);
    *why = "no replica of the shard is usable (read_from: replica)";
    return NULL;
}

bool shard_parks(const backend *b) {
    return b->is_down && !b->shard && b->pool->cf->failover_wait_ms > 0 &&
           conf_pool_has_topology(b->pool->cf);
}

void shard_park(frag *f, backend *b, const char *data, size_t len) {
    parked *pk = malloc(sizeof *pk + len);
    if (!pk) {
        frag_fail(f, true, "out of memory");
        return;
    }
    pk->next = NULL;
    pk->f = f;
    pk->until_ms = b->pool->w->now_ms + (uint64_t)b->pool->cf->failover_wait_ms;
    pk->len = len;
    memcpy(pk->data, data, len);
    if (b->parked_tail)
        b->parked_tail->next = pk;
    else
        b->parked = pk;
    b->parked_tail = pk;
    stat_add(&b->st.failover_waited, 1);
}

/* Sends b's waiting requests, in the order they came, now that b is up. */
static void unpark(backend *b, uint64_t now_ms) {
    while (b->parked && !b->is_down) {
        parked *pk = b->parked;
        b->parked = pk->next;
        if (!b->parked) b->parked_tail = NULL;
        client *c = pk->f->r ? pk->f->r->c : NULL;
        if (!c) {
            frag_fail(pk->f, true, "the client is gone");
        } else if (now_ms > pk->until_ms) {
            stat_add(&b->st.failover_wait_expired, 1);
            frag_fail(pk->f, true, "the shard had no primary for failover_wait");
        } else {
            frag_send(pk->f, b, c, pk->data, pk->len);
        }
        free(pk);
    }
}

void shard_tick(wpool *p, uint64_t now_ms) {
    for (size_t k = 0; k < p->server_count; k++) {
        backend *b = &p->backends[k];
        if (!b->parked) continue;
        if (!b->is_down) {
            unpark(b, now_ms);
            continue;
        }
        /* Still down: those whose wait is over fail (they are in arrival
         * order, so the first still waiting ends the scan). */
        while (b->parked && now_ms >= b->parked->until_ms) {
            parked *pk = b->parked;
            b->parked = pk->next;
            if (!b->parked) b->parked_tail = NULL;
            char why[200];
            snprintf(why, sizeof why, "shard %s has had no primary for %lld ms (failover_wait)",
                     b->cf->name, (long long)p->cf->failover_wait_ms);
            stat_add(&b->st.failover_wait_expired, 1);
            frag_fail(pk->f, true, why);
            free(pk);
        }
    }
}

/* Where a kept read goes when pk->from failed it, or NULL. From a
 * replica: the primary, or while the primary is down the same replica
 * again if it is not down (a closed connection, not a dead server). From
 * the primary: a replica that answers, linked or not (the primary has
 * just failed, and its freshest copy is there). */
static backend *read_target(const parked *pk) {
    const backend *from = pk->from;
    if (from->shard) {
        if (!from->shard->is_down && !from->shard->parked) return from->shard;
        return from->is_down ? NULL : (backend *)from;
    }
    for (uint32_t i = 0; i < CONF_REPLICAS_MAX; i++) {
        backend *r = &from->replicas[i];
        if (r->is_present && !r->is_down && (r->is_usable || r->answers)) return r;
    }
    return NULL;
}

/* A kept read its server failed: sent once more, to read_target. */
static void read_again(frag *f, parked *pk, const char *reason) {
    backend *to = read_target(pk);
    client *c = f->r ? f->r->c : NULL;
    if (!c || !to) {
        frag_fail(f, true, reason);
    } else {
        backend *shard = pk->from->shard ? pk->from->shard : pk->from;
        stat_add(&shard->st.reads_retried, 1);
        frag_send(f, to, c, pk->data, pk->len);
    }
    free(pk);
}

void shard_keep_read(frag *f, backend *b, bool is_read, const char *data, size_t len) {
    client *c = f->r ? f->r->c : NULL;
    /* A client holding the shard's connection (WATCH...) reads there only. */
    if (!is_read || !c || !(b->shard || b->replicas) ||
        b->pool->cf->read_from != CONF_READ_PREFER_REPLICA || held_conn_find(c, b))
        return;
    parked *pk = malloc(sizeof *pk + len);
    if (!pk) return; /* not kept: a failure then reaches the client */
    *pk = (parked){.from = b, .again = read_again, .len = len};
    memcpy(pk->data, data, len);
    f->retry = pk;
}

void shard_release(wpool *p, const char *why) {
    for (size_t k = 0; p->backends && k < p->server_count; k++) {
        backend *b = &p->backends[k];
        while (b->parked) {
            parked *pk = b->parked;
            b->parked = pk->next;
            frag_fail(pk->f, true, why);
            free(pk);
        }
        b->parked_tail = NULL;
    }
}
