/*
 * mcrepl.c - replicated memcached pools (`replication: N`): each key lives
 * on its copies, the first N distinct servers of its ring order
 * (chash_lookup_n over the ring of servers that are not ejected), as
 * mcrouter's AllSync and failover routes keep them.
 *
 * Writes (set, add, replace, append, prepend, incr, decr, touch, delete;
 * ms, md, ma) go to every copy that is not out (ejected or down), one
 * fragment each, all sent when the command is routed; the client gets one
 * reply (mcmerge.c): the first copy's, in ring order, that answered without
 * an error, except that a delete says DELETED (md: HD) when any copy had the
 * key; when no copy answered, the first copy's error. cas, and a meta
 * command with C, are refused: each copy has a cas unique of its own.
 *
 * Reads (get, gets, gat, gats; mg) go to each key's first copy that is not
 * out; a key that missed there, or whose copy failed, is asked of its next
 * copy when that reply comes, until one has it or none is left. A multi-key
 * get sends one line per server (gat: per MC_GAT_LINE_MAX bytes) in each
 * round, and each key asks each copy once, so a get sends at most N times
 * the fragments of one that is not replicated. The hits go back in key
 * order, as mcroute.c's get.
 *
 * When every copy of a key is out, the first is asked anyway and answers
 * with its error ("server X is down"), as an unreplicated key would.
 *
 * The FIFO rule of mcroute.c holds: "noreply" and a single q flag are taken
 * out of what is sent (two q flags, or ma's N with q: an mn follows), so
 * every fragment sent gets exactly one reply; the request's reply is
 * dropped or trimmed by the proxy.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writes: every live copy ---------------------------------------------- */

/* The key's copies that may be used now, not out, in ring order; when all
 * are out, the first (which fails with its reason). Returns how many. */
static size_t live_copies(const wpool *p, const char *key, size_t len, uint32_t *out) {
    uint32_t all[CONF_REPLICATION_MAX];
    size_t n = pool_copies(p, key, len, p->cf->replication, all), live = 0;
    for (size_t i = 0; i < n; i++)
        if (!backend_is_out(&p->backends[all[i]])) out[live++] = all[i];
    if (live == 0 && n > 0) out[live++] = all[0];
    return live;
}

/* `data` (the command as the servers must read it) to every live copy of
 * key; is_quiet: a q flag was taken out, so its reply is dropped. */
static void repl_write(client *c, const char *key, size_t key_len, const char *data, size_t len,
                       bool is_oom, mc_cmd cmd, mc_reply_kind reply, bool is_noreply,
                       bool is_quiet) {
    wpool *p = c->pool;
    uint32_t copies[CONF_REPLICATION_MAX];
    size_t n = live_copies(p, key, key_len, copies);
    if (n == 0) {
        reply_no_server(c);
        return;
    }
    req *r = req_new(c, REQ_MC_ALLSYNC, (uint32_t)n);
    if (!r) {
        reply_oom(c);
        return;
    }
    r->is_noreply |= is_noreply;
    r->mc_quiet = cmd;
    r->mc_is_quiet = is_quiet;
    stat_add(&p->st.fragments, n);
    for (size_t k = 0; k < n; k++) {
        frag *f = &r->frags[k];
        f->mc_reply = reply;
        if (is_oom)
            frag_fail(f, false, "out of memory");
        else
            frag_send(f, &p->backends[copies[k]], c, data, len);
    }
    req_release(r);
}

static void refuse_cas(client *c) {
    client_reply_str(c, "CLIENT_ERROR cas is not supported in a replicated pool: each copy "
                        "has a cas unique of its own\r\n");
}

/* set, add, replace, append, prepend, incr, decr, touch, delete. */
static void route_write(client *c, const mc_msg *m) {
    if (!m->noreply) {
        repl_write(c, m->keys[0].ptr, m->keys[0].len, m->raw, m->raw_len, false, m->cmd,
                   MC_REPLY_LINE, false, false);
        return;
    }
    buf tmp = {0}; /* without "noreply": the reply is dropped when it comes */
    mc_without_noreply(m, &tmp);
    repl_write(c, m->keys[0].ptr, m->keys[0].len, buf_start(&tmp), buf_used(&tmp), tmp.is_oom,
               m->cmd, MC_REPLY_LINE, true, false);
    buf_free(&tmp);
}

/* ---- reads: copy after copy ----------------------------------------------- */

typedef struct fo_op {
    frag f; /* first: the frag is the op */
    req *r;
    uint32_t key_count;
    uint32_t keys[]; /* indexes into r->fo->keys, in the order asked */
} fo_op;

static bool is_mg(const req *r) { return r->mc_quiet == MC_MG; }

static bool is_error_line(const char *s, size_t n) {
    return (n >= 5 && memcmp(s, "ERROR", 5) == 0) ||
           (n >= 12 && (memcmp(s, "CLIENT_ERROR", 12) == 0 || memcmp(s, "SERVER_ERROR", 12) == 0));
}

static bool is_values(const char *s, size_t n) {
    return (n >= 6 && memcmp(s, "VALUE ", 6) == 0) || (n == 5 && memcmp(s, "END\r\n", 5) == 0);
}

/* The next copy of k to ask: one not out, or, when k has asked none yet
 * and all are out, its first. False when none is left. */
static bool next_copy(const wpool *p, mc_fo_key *k, uint32_t *backend_index) {
    bool is_first = k->tried == 0;
    while (k->tried < k->copy_count) {
        uint32_t b = k->copies[k->tried++];
        if (!backend_is_out(&p->backends[b])) {
            *backend_index = b;
            return true;
        }
    }
    if (!is_first || k->copy_count == 0) return false;
    *backend_index = k->copies[0];
    return true;
}

static void fo_error(mc_failover *fo, const char *data, size_t len) {
    if (buf_used(&fo->error) == 0) buf_append(&fo->error, data, len);
}

static void fo_dispatch(req *r, const uint32_t *keys, uint32_t n);

static void fo_on_reply(frag *f, const char *data, size_t len) {
    fo_op *op = (fo_op *)f;
    req *r = op->r;
    mc_failover *fo = r->fo;
    uint32_t retry = 0; /* op->keys[0 .. retry) are asked again */
    bool is_answer = !f->failed && (is_mg(r) ? !is_error_line(data, len) : is_values(data, len));
    if (!is_answer) {
        fo_error(fo, data, len);
        retry = op->key_count;
    } else if (is_mg(r)) {
        fo->has_answer = true;
        mc_fo_key *k = &fo->keys[op->keys[0]];
        bool is_hit = !(len >= 3 && data[0] == 'E' && data[1] == 'N' &&
                        (data[2] == '\r' || data[2] == ' ' || data[2] == '\n'));
        if (is_hit || !k->has_reply) { /* the first miss stands for them all */
            k->value_off = (uint32_t)buf_used(&fo->values);
            k->value_len = (uint32_t)len;
            buf_append(&fo->values, data, len);
            k->has_reply = true;
            k->is_hit = is_hit;
        }
        if (!is_hit) retry = 1;
    } else {
        fo->has_answer = true;
        const char *names = buf_start(&r->keys);
        size_t off = 0;
        for (uint32_t i = 0; i < op->key_count; i++) {
            uint32_t ki = op->keys[i];
            size_t at = off, block;
            mc_key key;
            size_t klen = r->key_off[ki + 1] - r->key_off[ki];
            /* Hits come in the order asked: the next block is this key's
             * or a later key's. */
            if (mc_value_next(data, len, &off, &key, &block) && key.len == klen &&
                memcmp(key.ptr, names + r->key_off[ki], klen) == 0) {
                mc_fo_key *k = &fo->keys[ki];
                k->value_off = (uint32_t)buf_used(&fo->values);
                k->value_len = (uint32_t)block;
                buf_append(&fo->values, data + at, block);
                k->is_hit = k->has_reply = true;
                continue;
            }
            off = at;
            op->keys[retry++] = ki;
        }
    }
    fo_dispatch(r, op->keys, retry);
    free(op);
    req_release(r);
}

/* Puts op on a connection to backend b, or fails it (then fo_on_reply has
 * run and op is gone). */
static void fo_send(req *r, fo_op *op, uint32_t backend_index) {
    mc_failover *fo = r->fo;
    op->f.on_reply = fo_on_reply;
    op->f.mc_reply = is_mg(r) ? MC_REPLY_META : MC_REPLY_VALUES;
    op->r = r;
    r->frag_pending++;
    stat_add(&fo->pool->st.fragments, 1);
    bconn *bc = frag_conn(&op->f, &fo->pool->backends[backend_index], r->c);
    if (!bc) return;
    size_t before = buf_used(&bc->out);
    buf_append(&bc->out, buf_start(&fo->line), buf_used(&fo->line));
    if (!is_mg(r)) {
        const char *names = buf_start(&r->keys);
        for (uint32_t i = 0; i < op->key_count; i++) {
            uint32_t ki = op->keys[i];
            buf_append(&bc->out, " ", 1);
            buf_append(&bc->out, names + r->key_off[ki], r->key_off[ki + 1] - r->key_off[ki]);
        }
        buf_append(&bc->out, "\r\n", 2);
    }
    bconn_push(bc, &op->f, buf_used(&bc->out) - before);
}

/*
 * Asks the next copy of each of keys[0..n): one fragment per server, its
 * keys in the order given (gat and gats: as many as keep each line within
 * MC_GAT_LINE_MAX). A key with no copy left is done, a miss. Nothing more is
 * asked once the client is gone or was moved to a reloaded pool.
 */
static void fo_dispatch(req *r, const uint32_t *keys, uint32_t n) {
    mc_failover *fo = r->fo;
    wpool *p = fo->pool;
    if (n == 0 || !r->c || r->c->pool != p) return;
    uint32_t *dest = malloc(n * sizeof *dest);
    if (!dest) {
        fo_error(fo, "SERVER_ERROR out of memory\r\n", 28);
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        if (!next_copy(p, &fo->keys[keys[i]], &dest[i])) dest[i] = UINT32_MAX;
    bool is_gat = r->mc_quiet == MC_GAT || r->mc_quiet == MC_GATS;
    for (uint32_t i = 0; i < n; i++) {
        if (dest[i] == UINT32_MAX) continue;
        uint32_t b = dest[i], count = 0;
        for (uint32_t j = i; j < n; j++) count += dest[j] == b;
        fo_op *op = calloc(1, sizeof *op + count * sizeof op->keys[0]);
        if (!op) {
            fo_error(fo, "SERVER_ERROR out of memory\r\n", 28);
            break;
        }
        size_t line = buf_used(&fo->line) + 2;
        for (uint32_t j = i; j < n; j++) {
            if (dest[j] != b) continue;
            uint32_t ki = keys[j];
            size_t cost = is_gat ? 1 + r->key_off[ki + 1] - r->key_off[ki] : 0;
            if (is_gat && op->key_count > 0 && line + cost > MC_GAT_LINE_MAX) {
                fo_send(r, op, b); /* this line is full: the rest in another */
                op = calloc(1, sizeof *op + count * sizeof op->keys[0]);
                if (!op) {
                    fo_error(fo, "SERVER_ERROR out of memory\r\n", 28);
                    free(dest);
                    return;
                }
                line = buf_used(&fo->line) + 2;
            }
            op->keys[op->key_count++] = ki;
            line += cost;
            dest[j] = UINT32_MAX;
        }
        fo_send(r, op, b);
    }
    free(dest);
}

/* A REQ_MC_FAILOVER request for key_count keys, with their copies; NULL
 * after replying when out of memory. */
static req *fo_new(client *c, mc_cmd cmd, size_t key_count) {
    req *r = req_new(c, REQ_MC_FAILOVER, 0);
    if (!r) {
        reply_oom(c);
        return NULL;
    }
    r->mc_quiet = cmd;
    r->fo = calloc(1, sizeof *r->fo + key_count * sizeof r->fo->keys[0]);
    if (!r->fo) {
        buf_append_str(&r->reply, "SERVER_ERROR out of memory\r\n");
        req_release(r);
        return NULL;
    }
    r->fo->pool = c->pool;
    r->fo->key_count = (uint32_t)key_count;
    r->key_count = (uint32_t)key_count;
    return r;
}

/* Key i's copies from its placement key; none: the pool has no live server. */
static void fo_place(req *r, uint32_t i, const char *key, size_t len) {
    mc_failover *fo = r->fo;
    mc_fo_key *k = &fo->keys[i];
    k->copy_count = (uint8_t)pool_copies(fo->pool, key, len, fo->pool->cf->replication, k->copies);
    if (k->copy_count == 0) fo_error(fo, "SERVER_ERROR no server available: all are ejected\r\n",
                                     51);
}

/* get, gets, gat, gats. */
static void repl_get(client *c, const mc_msg *m) {
    req *r = fo_new(c, m->cmd, m->key_count);
    if (!r) return;
    mc_failover *fo = r->fo;
    static const char *const names[] = {[MC_GET] = "get", [MC_GETS] = "gets", [MC_GAT] = "gat",
                                        [MC_GATS] = "gats"};
    buf_append_str(&fo->line, names[m->cmd]);
    if (m->exptime) {
        buf_append(&fo->line, " ", 1);
        buf_append(&fo->line, m->exptime, m->exptime_len);
    }
    uint32_t *all = malloc(m->key_count * sizeof *all);
    r->key_off = malloc((m->key_count + 1) * sizeof *r->key_off);
    if (all && r->key_off) {
        for (uint32_t i = 0; i < m->key_count; i++) {
            r->key_off[i] = (uint32_t)buf_used(&r->keys);
            buf_append(&r->keys, m->keys[i].ptr, m->keys[i].len);
            fo_place(r, i, m->keys[i].ptr, m->keys[i].len);
            all[i] = i;
        }
        r->key_off[m->key_count] = (uint32_t)buf_used(&r->keys);
    }
    if (!all || !r->key_off || r->keys.is_oom || fo->line.is_oom)
        fo_error(fo, "SERVER_ERROR out of memory\r\n", 28);
    else
        fo_dispatch(r, all, (uint32_t)m->key_count);
    free(all);
    req_release(r);
}

/* mg: `line` (a q flag taken out when is_quiet) to the key's copies. */
static void repl_mg(client *c, const char *key, size_t key_len, const char *line, size_t len,
                    bool is_oom, bool is_quiet) {
    req *r = fo_new(c, MC_MG, 1);
    if (!r) return;
    r->mc_is_quiet = is_quiet;
    buf_append(&r->fo->line, line, len);
    fo_place(r, 0, key, key_len);
    uint32_t first = 0;
    if (is_oom || r->fo->line.is_oom)
        fo_error(r->fo, "SERVER_ERROR out of memory\r\n", 28);
    else
        fo_dispatch(r, &first, 1);
    req_release(r);
}

/* ---- meta commands -------------------------------------------------------- */

static bool route_meta(client *c, const mc_msg *m) {
    size_t count = 0, quiet_count = 0, vivify_count = 0;
    if (m->cmd == MC_ME) return false;
    if (m->cmd != MC_MG && mc_meta_flag(m, 'C', &count)) {
        refuse_cas(c);
        return true;
    }
    const mc_key *q = mc_meta_flag(m, 'q', &quiet_count);
    mc_meta_flag(m, 'N', &vivify_count);
    /* mg with N creates what it misses, so a failover would write a copy
     * ahead of the others; with q twice it needs its mn. Both read the
     * first copy, unreplicated. */
    if (m->cmd == MC_MG && (vivify_count > 0 || quiet_count > 1)) return false;
    char decoded[MC_KEY_MAX];
    const char *key;
    size_t key_len = mc_meta_key(m, decoded, &key);
    buf tmp = {0};
    const char *data = m->raw;
    size_t len = m->raw_len;
    mc_reply_kind reply = MC_REPLY_META;
    if (q && (quiet_count > 1 || (m->cmd == MC_MA && vivify_count > 0))) {
        buf_append(&tmp, m->raw, m->raw_len);
        buf_append(&tmp, "mn\r\n", 4);
        reply = MC_REPLY_META_MN;
    } else if (q) {
        /* Without " q" (mcroute.c's way): a flag is never first. */
        size_t at = (size_t)(q->ptr - m->raw) - 1;
        buf_append(&tmp, m->raw, at);
        buf_append(&tmp, q->ptr + q->len, m->raw_len - at - 1 - q->len);
    }
    if (q) {
        data = buf_start(&tmp);
        len = buf_used(&tmp);
    }
    if (m->cmd == MC_MG)
        repl_mg(c, key, key_len, data, len, tmp.is_oom, q != NULL);
    else
        repl_write(c, key, key_len, data, len, tmp.is_oom, m->cmd, reply, false, q != NULL);
    buf_free(&tmp);
    return true;
}

bool mcrepl_route(client *c, const mc_msg *m) {
    switch (m->cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        repl_get(c, m);
        return true;
    case MC_SET:
    case MC_ADD:
    case MC_REPLACE:
    case MC_APPEND:
    case MC_PREPEND:
    case MC_DELETE:
    case MC_INCR:
    case MC_DECR:
    case MC_TOUCH:
        route_write(c, m);
        return true;
    case MC_CAS:
        refuse_cas(c);
        return true;
    case MC_MG:
    case MC_MS:
    case MC_MD:
    case MC_MA:
    case MC_ME:
        return route_meta(c, m);
    default:
        return false;
    }
}
