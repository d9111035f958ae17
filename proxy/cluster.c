/*
 * cluster.c - a pool in front of a Redis Cluster (distribution:
 * redis-cluster), as one worker runs it.
 *
 * The pool's servers are the cluster's shards (topology.c finds them and
 * names each slot's shard); a key goes to its slot's shard, whose backend
 * follows the shard's primary and replicas like a Sentinel shard's
 * (shard.c). The client never sees the cluster move:
 * - every request keeps a copy of its bytes (cluster_keep), so a node's
 *   -MOVED sends it on to the slot's owner (and corrects this worker's
 *   map at once, the topology asked to check), an -ASK sends it with
 *   ASKING to the node importing the slot; a node the map does not know
 *   yet makes it wait for the next map;
 * - -TRYAGAIN (a multi-key command while its slot migrates) and, with
 *   failover_wait, -CLUSTERDOWN are sent again a little later;
 * - order: a client whose commands were routed by an older map reads
 *   nothing more until they are answered (client.c), so a command routed
 *   by the new map never passes one redirected from the old owner.
 *   A -TRYAGAIN's retry may still be passed by the client's commands
 *   already sent behind it (docs/proxy.md).
 */
#include "proxy.h"

#include "clustermap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redirects one request follows before its error reaches the client
 * (redis-cli follows 16; a healthy cluster needs 2: MOVED, then ASK). */
#define HOPS_MAX 5u
/* How long a redirected request waits for a map naming its node, and
 * between two tries after -TRYAGAIN / -CLUSTERDOWN. */
#define MAP_WAIT_MS 2000u
#define RETRY_MS 50u

void cluster_sync(wpool *p) {
    if (!p->slots ||
        !topology_cluster_slots(p->w->px, p->cf->name, p->slots, &p->slots_gen))
        return;
    p->map_gen++;
    cluster_tick(p, p->w->now_ms);
}

/* The shard entry whose primary is at `addr` ("ip:port" as the node
 * said it), or NULL. */
static backend *primary_at(wpool *p, const char *addr, size_t len) {
    char text[TOPO_ADDR_MAX];
    const char *colon = memchr(addr, ':', len);
    bool is_v6 = colon && memchr(colon + 1, ':', len - (size_t)(colon + 1 - addr)) &&
                 addr[0] != '[';
    if (is_v6) { /* "::1:7000": the last colon ends the address */
        size_t at = len;
        while (at && addr[at - 1] != ':') at--;
        if (!at) return NULL;
        snprintf(text, sizeof text, "[%.*s]:%.*s", (int)(at - 1), addr, (int)(len - at),
                 addr + at);
    } else {
        snprintf(text, sizeof text, "%.*s", (int)len, addr);
    }
    for (size_t k = 0; k < p->server_count; k++)
        if (strcmp(p->backends[k].addr_text, text) == 0) return &p->backends[k];
    return NULL;
}

/* f leaves the connection that answered it: its client's count of
 * requests on shared connections drops (as frag_deliver does). */
static void leave_shared(frag *f) {
    if (!f->on_shared) return;
    f->on_shared = false;
    client *owner = f->r ? f->r->c : NULL;
    if (owner && --owner->shared_inflight == 0 && owner->has_corked) client_schedule(owner);
}

static void send_to(frag *f, parked *pk, backend *b, client *c, bool is_asking) {
    if (!is_asking && (shard_parks(b) || b->parked)) { /* its primary is down: failover_wait */
        shard_park(f, b, pk->data, pk->len);
        free(pk);
        return;
    }
    f->kept = pk;
    if (!is_asking) {
        frag_send(f, b, c, pk->data, pk->len);
        return;
    }
    bconn *bc = frag_conn(f, b, c);
    if (!bc) return;
    /* ASKING lets the importing node take the next command, once. */
    bconn_swallow(bc, "*1\r\n$6\r\nASKING\r\n", 16, 0);
    size_t before = buf_used(&bc->out);
    buf_append(&bc->out, pk->data, pk->len);
    bconn_push(bc, f, buf_used(&bc->out) - before);
}

static void wait_add(wpool *p, parked *pk) {
    pk->next = NULL;
    if (p->cl_wait_tail)
        p->cl_wait_tail->next = pk;
    else
        p->cl_wait = pk;
    p->cl_wait_tail = pk;
}

/* A node answered f with an error: a redirect is followed (true), any
 * other error is f's reply (false). */
static bool on_error(frag *f, backend *from, parked *pk, const char *data, size_t len) {
    client *c = f->r ? f->r->c : NULL;
    wpool *p = c ? c->pool : NULL;
    bool is_moved = len > 7 && memcmp(data, "-MOVED ", 7) == 0;
    bool is_ask = len > 5 && memcmp(data, "-ASK ", 5) == 0;
    bool is_again = len >= 9 && memcmp(data, "-TRYAGAIN", 9) == 0;
    bool is_down = len >= 12 && memcmp(data, "-CLUSTERDOWN", 12) == 0;
    if (!c || c->is_closed || (!is_moved && !is_ask && !is_again && !is_down)) return false;
    if (is_down && p->cf->failover_wait_ms <= 0) return false;
    /* Only redirects count: a retry waits on its own clock. */
    if ((is_moved || is_ask) && ++pk->hops > HOPS_MAX) {
        stat_add(&p->st.cluster_redirect_failed, 1);
        return false;
    }
    f->kept = NULL; /* pk travels with f from here */
    leave_shared(f);
    /* Nothing of c's is read until this is answered: what it sends next
     * must not pass it. */
    c->is_fenced = true;
    uint64_t now = p->w->now_ms;
    if (is_again || is_down) {
        stat_add(&p->st.cluster_retried, 1);
        pk->retry_ms = now + RETRY_MS;
        pk->until_ms = now + (is_down ? (uint64_t)p->cf->failover_wait_ms : MAP_WAIT_MS);
        pk->map_gen = p->map_gen;
        pk->from = from;
        pk->slot = CLUSTER_SLOT_COUNT;
        pk->f = f;
        wait_add(p, pk);
        return true;
    }
    /* "-MOVED 3999 127.0.0.1:6381": the slot, then the node. */
    const char *at = data + (is_moved ? 7 : 5), *end = data + len;
    while (end > at && (end[-1] == '\r' || end[-1] == '\n')) end--;
    char *num_end = NULL;
    unsigned long slot = strtoul(at, &num_end, 10);
    const char *node = num_end && *num_end == ' ' ? num_end + 1 : NULL;
    if (!node || node >= end || slot >= CLUSTER_SLOT_COUNT) {
        f->kept = pk;
        return false; /* not the shape Redis gives: the client sees it */
    }
    pk->slot = (uint32_t)slot;
    backend *to = primary_at(p, node, (size_t)(end - node));
    if (is_moved) {
        stat_add(&p->st.cluster_moved, 1);
        topology_recheck(p->w->px);
        if (to && p->slots[slot] != to->index) {
            p->slots[slot] = (uint16_t)to->index;
            p->map_gen++;
        }
    } else {
        stat_add(&p->st.cluster_ask, 1);
    }
    if (to) {
        send_to(f, pk, to, c, is_ask);
        return true;
    }
    /* A node the map does not have yet (a promoted replica, a new
     * primary): wait for the next map, then go by the slot. */
    topology_recheck(p->w->px);
    pk->retry_ms = 0;
    pk->until_ms = now + MAP_WAIT_MS;
    pk->map_gen = p->map_gen;
    pk->f = f;
    wait_add(p, pk);
    return true;
}

/* A kept request its primary refused to connect for (never sent): it
 * waits for the shard's next primary (failover_wait), or fails. */
static void not_sent(frag *f, parked *pk, const char *reason) {
    backend *b = pk->from;
    if (shard_parks(b))
        shard_park(f, b, pk->data, pk->len);
    else
        frag_fail(f, true, reason);
    free(pk);
}

void cluster_keep(frag *f, const char *data, size_t len) {
    parked *pk = malloc(sizeof *pk + len);
    if (!pk) return;
    *pk = (parked){.on_error = on_error, .again = not_sent, .len = len};
    memcpy(pk->data, data, len);
    f->kept = pk;
}

/* Where a waiting redirect goes now, or NULL: a retry to the server that
 * asked for it once its time comes; a redirect to a node the map lacked
 * to the slot's owner once the map changed. */
static backend *wait_target(wpool *p, const parked *pk, uint64_t now_ms) {
    if (pk->retry_ms) return now_ms >= pk->retry_ms ? pk->from : NULL;
    if (pk->map_gen == p->map_gen) return NULL;
    uint16_t k = p->slots[pk->slot];
    return k < p->server_count ? &p->backends[k] : NULL;
}

void cluster_tick(wpool *p, uint64_t now_ms) {
    parked *pk = p->cl_wait, *keep = NULL, *keep_tail = NULL;
    p->cl_wait = p->cl_wait_tail = NULL;
    while (pk) {
        parked *next = pk->next;
        frag *f = pk->f;
        client *c = f->r ? f->r->c : NULL;
        backend *b = c ? wait_target(p, pk, now_ms) : NULL;
        if (!c) {
            frag_fail(f, true, "the client is gone");
            free(pk);
        } else if (b) {
            pk->retry_ms = 0;
            pk->f = NULL;
            send_to(f, pk, b, c, false);
        } else if (now_ms >= pk->until_ms) {
            stat_add(&p->st.cluster_redirect_failed, 1);
            char why[160];
            snprintf(why, sizeof why, "the proxy found no node serving slot %u in time "
                     "(the cluster is moving it, or failing over)", (unsigned)pk->slot);
            frag_fail(f, true, why);
            free(pk);
        } else {
            pk->next = NULL;
            if (keep_tail)
                keep_tail->next = pk;
            else
                keep = pk;
            keep_tail = pk;
        }
        pk = next;
    }
    /* Those still waiting go first, ahead of any added meanwhile. */
    if (keep) {
        keep_tail->next = p->cl_wait;
        if (!p->cl_wait) p->cl_wait_tail = keep_tail;
        p->cl_wait = keep;
    }
}

void cluster_release(wpool *p, const char *why) {
    while (p->cl_wait) {
        parked *pk = p->cl_wait;
        p->cl_wait = pk->next;
        frag_fail(pk->f, true, why);
        free(pk);
    }
    p->cl_wait_tail = NULL;
}
