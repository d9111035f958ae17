/*
 * warmup.c - scale-out without a miss storm (redis pools, `warmup: MS`).
 *
 * After a reload changes a pool's servers, the ~1/N of keys whose owner
 * changed would miss on their new owner N although their previous owner P
 * still holds them. For `warmup` ms after the reload, a command on such a
 * key first moves the key from P to N, then runs on N as usual:
 *
 *   to P:  MIGRATE N.host N.port key db timeout [AUTH password]
 *            +OK      the value, with its remaining TTL, is now on N only
 *            +NOKEY   P had nothing: nothing to do
 *            -ERR ... BUSYKEY  N already has a value, newer than P's (every
 *                     write since the reload went to N): P's copy is deleted
 *            -other   the move failed: P's copy is deleted, the key misses
 *   then the command, to N.
 *
 * Why no stale value can come back: MIGRATE is atomic on P (P restores the
 * key on N and waits for N's answer before it deletes its copy or serves
 * anyone else), and every command on a moved key - read, write or delete -
 * waits for its key's move (or DEL) before it is sent to N. So P never
 * holds a copy older than N's once a command has run, and a write or a
 * delete on N cannot be overtaken by a copy arriving later from P.
 *
 * Cost: the client's pipeline waits for the move (one round trip to P, which
 * makes one to N), once per moved key and worker: a direct-mapped cache of
 * key fingerprints remembers keys already moved (a collision only costs
 * another MIGRATE, which answers NOKEY). Keys that did not move cost one
 * extra ring lookup during the window.
 *
 * A server the reload removed is asked too, while the window lasts: it
 * becomes a backend beyond the configured ones, off the ring, and its
 * connections close when the window ends (scale-in without a miss storm,
 * if it keeps running that long).
 *
 * Limits (docs/proxy.md): P sends the key, so servers must reach each other
 * at the addresses of the configuration, and N must be a TCP server; a
 * server that fails during the window is not asked again by the worker that
 * saw it fail; several proxies in front of the same servers should reload
 * together (one still on the old ring keeps writing to P).
 */
#define _GNU_SOURCE /* memmem */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEEN_SLOTS 65536u /* 512 KB per pool and worker, during a window only */

struct warm_job {
    client *c;        /* NULL once the client is gone */
    uint32_t pending; /* moves in flight, plus one while they are issued */
    void (*resume)(client *c); /* runs the held command once its keys moved */
};

typedef struct warm_op {
    frag f;
    warm_job *job;
    backend *prev;
    uint64_t fingerprint;
    bool is_dropping; /* the DEL after a failed move */
    size_t key_len;
    char key[];
} warm_op;

/* The backend of p that is server `s` of the previous configuration. */
static uint32_t same_backend(const wpool *p, const conf_server *s) {
    for (size_t k = 0; k < p->backend_count; k++)
        if (conf_server_same(p->backends[k].cf, s)) return (uint32_t)k;
    return UINT32_MAX;
}

/* Former servers: closed (what they still owe fails: only moves, and with
 * the window over nobody needs them) and dropped. */
static void drop_former(wpool *p) {
    /* redis-cluster (no warm-up): the entries past server_count are shards
     * the cluster has not named yet, not former servers. */
    if (p->slots) return;
    for (size_t k = p->server_count; k < p->backend_count; k++) {
        backend *b = &p->backends[k];
        backend_close(b, "warm-up over");
        health_stop(b);
        free(b->conns);
        b->conns = NULL;
        b->conn_count = 0;
    }
    p->backend_count = p->server_count;
}

/* Removed servers still hold their keys: they become backends of p beyond
 * its configured ones, off the ring, asked only by warm-up. Returns false
 * when out of memory. */
static bool add_former(wpool *p, const conf_pool *before) {
    size_t extra = 0;
    for (size_t i = 0; i < before->server_count; i++)
        extra += same_backend(p, &before->servers[i]) == UINT32_MAX;
    if (extra == 0) return true;
    backend *all = realloc(p->backends, (p->server_count + extra) * sizeof *all);
    if (!all) return false;
    p->backends = all;
    /* The array moved: each connection's way back to its backend too. */
    for (size_t k = 0; k < p->backend_count; k++) {
        for (uint32_t j = 0; j < all[k].conn_count; j++) all[k].conns[j].b = &all[k];
        for (uint32_t i = 0; all[k].replicas && i < CONF_REPLICAS_MAX; i++)
            all[k].replicas[i].shard = &all[k];
    }
    for (size_t i = 0; i < before->server_count; i++) {
        if (same_backend(p, &before->servers[i]) != UINT32_MAX) continue;
        backend *b = &all[p->backend_count];
        *b = (backend){.is_former = true};
        if (!backend_init(b, p, &before->servers[i], (uint32_t)p->backend_count)) return false;
        p->backend_count++;
    }
    return true;
}

static void warm_free(wpool *p) {
    drop_former(p);
    chash_free(p->prev_ring);
    free(p->prev_backend);
    free(p->warm_seen);
    p->prev_ring = NULL;
    p->prev_backend = NULL;
    p->warm_seen = NULL;
    p->warm_until_ms = 0;
}

void warmup_start(wpool *p, const conf_pool *before) {
    const conf_pool *cf = p->cf;
    if (cf->warmup_ms <= 0 || !cf->redis || cf->dist == CONF_DIST_RANDOM) return;
    /* Nothing moved when the servers and the placement are the same. */
    bool is_same = before->server_count == p->backend_count && before->dist == cf->dist &&
                   before->algo == cf->algo && before->hash == cf->hash &&
                   strcmp(before->hash_tag, cf->hash_tag) == 0 &&
                   conf_pool_buckets_same(before, cf);
    for (size_t i = 0; is_same && i < before->server_count; i++) {
        uint32_t k = same_backend(p, &before->servers[i]);
        is_same = k != UINT32_MAX && p->backends[k].cf->weight == before->servers[i].weight;
    }
    if (is_same) return;
    /* The previous ring, complete: an ejection is a worker's passing view. */
    int rc = conf_pool_ring(before, &p->prev_ring);
    size_t n = rc == CHASH_OK ? chash_node_count(p->prev_ring) : 0;
    p->prev_backend = malloc((n ? n : 1) * sizeof *p->prev_backend);
    p->warm_seen = calloc(SEEN_SLOTS, sizeof *p->warm_seen);
    if (rc != CHASH_OK || !p->prev_backend || !p->warm_seen || !add_former(p, before)) {
        proxy_log(LOG_ERROR, "pool %s: no warm-up: out of memory", cf->name);
        warm_free(p);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const void *name;
        size_t len;
        p->prev_backend[i] = UINT32_MAX;
        if (chash_node(p->prev_ring, i, &name, &len, NULL) != CHASH_OK) continue;
        for (size_t j = 0; j < before->server_count; j++) {
            const conf_server *s = &before->servers[j];
            if (strlen(s->name) == len && memcmp(s->name, name, len) == 0)
                p->prev_backend[i] = same_backend(p, s);
        }
    }
    p->warm_until_ms = p->w->now_ms + (uint64_t)cf->warmup_ms;
    proxy_log(LOG_INFO, "pool %s: warm-up for %lld ms: keys that moved are pulled from their "
              "previous owner", cf->name, (long long)cf->warmup_ms);
}

void warmup_tick(wpool *p, uint64_t now_ms) {
    if (p->prev_ring && now_ms >= p->warm_until_ms) warm_free(p);
}

void warmup_stop(wpool *p) { warm_free(p); }

/* A key of one database: the same name in another is another key. */
static uint64_t key_fingerprint(const void *key, size_t len, int db) {
    uint64_t hi = chash_hash32(CHASH_HASH_FNV1A_32, key, len) ^ (uint32_t)db * 2654435761u;
    return (hi << 32 | chash_crc32(0, key, len)) | 1u; /* 0 marks an empty slot */
}

static void seen_mark(wpool *p, uint64_t fp) {
    if (p->warm_seen) p->warm_seen[fp & (SEEN_SLOTS - 1)] = fp;
}

warm_job *warmup_begin(client *c, void (*resume)(client *c)) {
    warm_job *job = calloc(1, sizeof *job);
    if (!job) return NULL;
    job->c = c;
    job->pending = 1;
    job->resume = resume;
    return job;
}

static void job_release(warm_job *job) {
    if (--job->pending) return;
    client *c = job->c;
    /* Decided before the job is freed: is it still the one c waits for? */
    bool is_waiting = c && c->warm == job;
    void (*resume)(client *) = job->resume;
    free(job);
    if (!is_waiting) return;
    c->warm = NULL;
    resume(c);
    client_schedule(c); /* reading resumes (client_flush) */
}

static void op_send(warm_op *op, const char *const *argv, const size_t *lens, size_t argc) {
    client *c = op->job->c;
    bconn *bc = frag_conn(&op->f, op->prev, c);
    if (!bc) return; /* op->f failed: on_reply ran */
    size_t before = buf_used(&bc->out);
    buf_append_header(&bc->out, '*', argc);
    for (size_t i = 0; i < argc; i++) buf_append_bulk(&bc->out, argv[i], lens[i]);
    bconn_push(bc, &op->f, buf_used(&bc->out) - before);
}

static void op_on_reply(frag *f, const char *data, size_t len) {
    warm_op *op = (warm_op *)f;
    backend *prev = op->prev;
    wpool *p = prev->pool;
    warm_job *job = op->job;
    bool is_error = len == 0 || data[0] == '-';
    if (f->failed) {
        /* No answer from P: leave it alone for the rest of the window. */
        prev->is_warm_off = true;
        stat_add(&p->st.warmup_failed, 1);
    } else if (op->is_dropping) {
        if (!is_error) seen_mark(p, op->fingerprint);
        if (is_error) stat_add(&p->st.warmup_failed, 1);
    } else if (!is_error) {
        seen_mark(p, op->fingerprint);
        stat_add(len >= 3 && memcmp(data, "+OK", 3) == 0 ? &p->st.warmup_moved
                                                         : &p->st.warmup_absent, 1);
    } else {
        /* N has a newer value (BUSYKEY), or the move failed: P's copy must
         * go before the command runs on N. */
        /* "-ERR Target instance replied with error: BUSYKEY ..." */
        if (!memmem(data, len, "BUSYKEY", 7)) {
            proxy_log(LOG_INFO, "pool %s: warm-up: MIGRATE on %s: %.*s", p->cf->name,
                      prev->cf->name, (int)(len > 2 ? len - 2 : len), data);
            stat_add(&p->st.warmup_failed, 1);
        } else {
            stat_add(&p->st.warmup_stale, 1);
        }
        op->is_dropping = true;
        memset(&op->f, 0, sizeof op->f);
        op->f.on_reply = op_on_reply;
        const char *argv[2] = {"DEL", op->key};
        size_t lens[2] = {3, op->key_len};
        op_send(op, argv, lens, 2);
        return;
    }
    free(op);
    job_release(job);
}

void warmup_key(warm_job *job, wpool *p, const void *key, size_t len) {
    if (!p->prev_ring) return;
    size_t node;
    if (chash_lookup(p->prev_ring, key, len, &node) != CHASH_OK) return;
    uint32_t k = p->prev_backend[node];
    if (k == UINT32_MAX) return;
    backend *prev = &p->backends[k];
    backend *next = pool_pick(p, key, len);
    if (!next || next == prev || backend_is_out(prev) || prev->is_warm_off ||
        backend_is_out(next) || next->cf->addr.is_unix)
        return;
    uint64_t fp = key_fingerprint(key, len, job->c ? job->c->db : p->cf->redis_db);
    if (p->warm_seen[fp & (SEEN_SLOTS - 1)] == fp) return;
    warm_op *op = calloc(1, sizeof *op + len + 1);
    if (!op) return; /* the key misses: no worse than no warm-up */
    op->f.on_reply = op_on_reply;
    op->job = job;
    op->prev = prev;
    op->fingerprint = fp;
    op->key_len = len;
    memcpy(op->key, key, len);
    job->pending++;
    const conf_pool *cf = p->cf;
    char port[16], db[16], timeout[24];
    snprintf(port, sizeof port, "%d", next->cf->port);
    /* The client's database: frag_conn selects it on P as well. */
    snprintf(db, sizeof db, "%d", job->c ? job->c->db : cf->redis_db);
    snprintf(timeout, sizeof timeout, "%lld", (long long)(cf->timeout_ms > 0 ? cf->timeout_ms
                                                                             : 1000));
    const char *argv[8] = {"MIGRATE", next->cf->host, port, op->key, db, timeout, "AUTH",
                           cf->redis_auth};
    size_t lens[8] = {7, strlen(next->cf->host), strlen(port), len, strlen(db),
                      strlen(timeout), 4, cf->redis_auth_len};
    op_send(op, argv, lens, cf->redis_auth ? 8 : 6);
}

bool warmup_end(warm_job *job, const resp_msg *m) {
    client *c = job->c;
    if (job->pending == 1) { /* nothing to move */
        free(job);
        return false;
    }
    c->warm = job;
    c->warm_msg = *m;
    job_release(job); /* the moves may all have ended already */
    return true;
}

void warmup_detach(client *c) {
    if (c->warm) c->warm->c = NULL;
    c->warm = NULL;
}
