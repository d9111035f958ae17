/*
 * mcroute.c - memcached commands to servers.
 *
 * get/gets/gat/gats split like MGET; the rest have one key, but flush_all,
 * verbosity and stats, which go to every server. "noreply" is stripped
 * before forwarding and the reply dropped in req.c, so every request sent
 * to a server gets exactly one reply and the FIFO match of replies to
 * requests can never slip.
 *
 * Meta commands keep that rule. A q flag makes memcached leave out the
 * reply that says "as expected" (mg: EN, ms and md: HD, ma: HD or VA), so
 * q is taken out of the line and that reply dropped by the proxy
 * (mcmerge.c). Where the reply alone cannot say whether q would have left
 * it out (ma with N: a created item is answered, an incremented one is
 * not), or q comes twice, the line goes as it is with an mn after it, and
 * the server's MN closes its reply. mn itself is answered by the proxy:
 * replies leave in request order, so MN follows every earlier one.
 *
 * A pool with `replication` above 1 sends the commands that read or write
 * a key to its copies (mcrepl.c), by the same rules.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void forward_mc(client *c, const mc_msg *m, backend *b) {
    bool is_retrieval = mc_cmd_is_retrieval(m->cmd);
    if (!m->noreply) {
        forward(c, b, m->raw, m->raw_len, false, is_retrieval, false);
        return;
    }
    buf tmp = {0}; /* without "noreply": the reply is dropped when it comes */
    mc_without_noreply(m, &tmp);
    forward(c, b, buf_start(&tmp), buf_used(&tmp), tmp.is_oom, is_retrieval, true);
    buf_free(&tmp);
}

static void mc_reply_line(client *c, const char *line) {
    buf b = {0};
    buf_append_str(&b, line);
    buf_append(&b, "\r\n", 2);
    client_reply_buf(c, &b);
}

static const char *mc_name(mc_cmd cmd) {
    switch (cmd) {
    case MC_GETS: return "gets";
    case MC_GAT: return "gat";
    case MC_GATS: return "gats";
    default: return "get";
    }
}

/* The keys of a split get, kept to match the VALUE blocks that come back:
 * key i at r->keys[key_off[i] .. key_off[i + 1]). Returns false when out
 * of memory. */
static bool mc_keep_keys(req *r, const mc_msg *m) {
    r->key_off = malloc((m->key_count + 1) * sizeof *r->key_off);
    if (!r->key_off) return false;
    for (size_t i = 0; i < m->key_count; i++) {
        r->key_off[i] = (uint32_t)buf_used(&r->keys);
        buf_append(&r->keys, m->keys[i].ptr, m->keys[i].len);
    }
    r->key_off[m->key_count] = (uint32_t)buf_used(&r->keys);
    return !r->keys.is_oom;
}

static void mc_route_get(client *c, const mc_msg *m) {
    wpool *p = c->pool;
    const char *cmd = mc_name(m->cmd);
    bool is_gat = m->cmd == MC_GAT || m->cmd == MC_GATS;
    /* A fragment's line: the command, the expiry, then " key" a key, CRLF. */
    size_t base = strlen(cmd) + (m->exptime ? 1 + m->exptime_len : 0) + 2;
    split s;
    if (!split_init(&s, p, m->key_count, is_gat ? MC_GAT_LINE_MAX : 0)) {
        reply_oom(c);
        return;
    }
    for (uint32_t i = 0; i < m->key_count; i++) {
        backend *b = pool_pick(p, m->keys[i].ptr, m->keys[i].len);
        if (!b) {
            reply_no_server(c);
            split_free(&s);
            return;
        }
        split_add(&s, i, b, base, 1 + m->keys[i].len);
    }
    bool is_whole = s.frag_count == 1 && (!is_gat || m->raw_len <= MC_GAT_LINE_MAX);
    req *r = is_whole ? NULL : split_req(c, &s, REQ_MC_GET, m->key_count);
    if (is_whole) forward_mc(c, m, &p->backends[s.frag_backend[0]]);
    bool has_keys = r && mc_keep_keys(r, m);
    for (uint32_t f = 0; r && f < s.frag_count; f++) {
        frag *fr = &r->frags[f];
        fr->mc_reply = MC_REPLY_VALUES;
        if (!has_keys) {
            frag_fail(fr, false, "out of memory");
            continue;
        }
        bconn *bc = frag_conn(fr, &p->backends[s.frag_backend[f]], c);
        if (!bc) continue;
        size_t before = buf_used(&bc->out);
        buf_append_str(&bc->out, cmd);
        if (m->exptime) {
            buf_append(&bc->out, " ", 1);
            buf_append(&bc->out, m->exptime, m->exptime_len);
        }
        for (uint32_t i = s.frag_first[f]; i != UINT32_MAX; i = s.next_key[i]) {
            buf_append(&bc->out, " ", 1);
            buf_append(&bc->out, m->keys[i].ptr, m->keys[i].len);
            fr->count++;
        }
        buf_append(&bc->out, "\r\n", 2);
        bconn_push(bc, fr, buf_used(&bc->out) - before);
    }
    if (r) req_release(r);
    split_free(&s);
}

/* One request of `kind` to server b, `len` bytes; is_oom: they could not
 * be made. */
static void send_one(client *c, backend *b, req_kind kind, mc_reply_kind reply, mc_cmd cmd,
                     const char *data, size_t len, bool is_oom) {
    req *r = req_new(c, kind, 1);
    if (!r) {
        reply_oom(c);
        return;
    }
    r->one.mc_reply = reply;
    r->mc_quiet = cmd;
    if (is_oom)
        frag_fail(&r->one, false, "out of memory");
    else
        frag_send(&r->one, b, c, data, len);
    req_release(r);
}

static void mc_route_meta(client *c, const mc_msg *m) {
    char decoded[MC_KEY_MAX];
    const char *key;
    size_t key_len = mc_meta_key(m, decoded, &key);
    backend *b = pool_pick(c->pool, key, key_len);
    if (!b) {
        reply_no_server(c);
        return;
    }
    size_t quiet_count = 0, vivify_count = 0;
    const mc_key *q = m->cmd == MC_ME ? NULL : mc_meta_flag(m, 'q', &quiet_count);
    if (m->cmd == MC_MA) mc_meta_flag(m, 'N', &vivify_count);
    if (!q) {
        send_one(c, b, REQ_FORWARD, MC_REPLY_META, m->cmd, m->raw, m->raw_len, false);
        return;
    }
    buf tmp = {0};
    if (quiet_count > 1 || vivify_count > 0) {
        buf_append(&tmp, m->raw, m->raw_len);
        buf_append(&tmp, "mn\r\n", 4);
        send_one(c, b, REQ_MC_QUIET, MC_REPLY_META_MN, m->cmd, buf_start(&tmp), buf_used(&tmp),
                 tmp.is_oom);
    } else {
        /* Without " q": a flag is never the line's first token, so a space
         * comes before it. */
        size_t at = (size_t)(q->ptr - m->raw) - 1;
        buf_append(&tmp, m->raw, at);
        buf_append(&tmp, q->ptr + q->len, m->raw_len - at - 1 - q->len);
        send_one(c, b, REQ_MC_QUIET, MC_REPLY_META, m->cmd, buf_start(&tmp), buf_used(&tmp),
                 tmp.is_oom);
    }
    buf_free(&tmp);
}

/*
 * The command, whole, to every configured server of the pool; the replies
 * merge by `kind` (mcmerge.c). A server that is ejected or down fails its
 * part, and the reply is that error, naming it: a flush_all that missed a
 * server is not done, and its stats would be short.
 */
static void mc_route_all(client *c, const char *line, size_t len, bool is_oom, req_kind kind,
                         mc_reply_kind reply, bool is_noreply) {
    wpool *p = c->pool;
    if (p->server_count == 0) {
        reply_no_server(c);
        return;
    }
    req *r = req_new(c, kind, (uint32_t)p->server_count);
    if (!r) {
        reply_oom(c);
        return;
    }
    r->is_noreply = is_noreply;
    r->all_pool = p;
    stat_add(&p->st.fragments, p->server_count);
    for (size_t k = 0; k < p->server_count; k++) {
        frag *f = &r->frags[k];
        backend *b = &p->backends[k];
        f->mc_reply = reply;
        if (is_oom) {
            frag_fail(f, false, "out of memory");
        } else if (b->is_ejected) {
            char reason[200];
            snprintf(reason, sizeof reason, "server %s is ejected", b->cf->name);
            frag_fail(f, false, reason);
        } else {
            frag_send(f, b, c, line, len); /* frag_conn fails it if b is down */
        }
    }
    req_release(r);
}

/* flush_all and verbosity: the servers check the arguments; without
 * "noreply", which the proxy keeps for itself. */
static void mc_route_setting(client *c, const mc_msg *m) {
    if (!m->noreply) {
        mc_route_all(c, m->raw, m->raw_len, false, REQ_MC_SAME, MC_REPLY_LINE, false);
        return;
    }
    buf tmp = {0};
    mc_without_noreply(m, &tmp);
    mc_route_all(c, buf_start(&tmp), buf_used(&tmp), tmp.is_oom, REQ_MC_SAME, MC_REPLY_LINE,
                 true);
    buf_free(&tmp);
}

/* memcached's stats arguments but reset: each describes one server (its
 * slabs, its settings, its connections) and has no pool-wide meaning. */
static const char *const stats_per_server[] = {
    "settings", "items", "slabs", "sizes", "sizes_enable", "sizes_disable", "conns",
    "detail", "cachedump", "extstore", "proxy",
};

/* stats: the pool's sums (mcmerge.c); stats reset: every server's RESET;
 * the others are refused, and an argument memcached does not know gets its
 * ERROR. */
static void mc_route_stats(client *c, const mc_msg *m) {
    if (m->arg_count == 0) {
        mc_route_all(c, "stats\r\n", 7, false, REQ_MC_STATS, MC_REPLY_STATS, false);
        return;
    }
    const mc_key *arg = &m->args[0];
    if (arg->len == 5 && memcmp(arg->ptr, "reset", 5) == 0) {
        mc_route_all(c, "stats reset\r\n", 13, false, REQ_MC_SAME, MC_REPLY_LINE, false);
        return;
    }
    for (size_t i = 0; i < sizeof stats_per_server / sizeof stats_per_server[0]; i++)
        if (arg->len == strlen(stats_per_server[i]) &&
            memcmp(arg->ptr, stats_per_server[i], arg->len) == 0) {
            mc_reply_line(c, "SERVER_ERROR stats with an argument is per server: the proxy "
                             "serves stats and stats reset");
            return;
        }
    mc_reply_line(c, "ERROR");
}

void route_memcache(client *c, const mc_msg *m) {
    stat_add(&c->pool->st.requests, 1);
    if (c->pool->cf->replication > 1 && mcrepl_route(c, m)) return;
    switch (m->cmd) {
    case MC_INVALID:
        mc_reply_line(c, m->error);
        return;
    case MC_QUIT:
        client_reply(c, "", 0, true);
        return;
    case MC_VERSION:
        mc_reply_line(c, "VERSION " PROXY_NAME "-" CHASH_VERSION_STRING);
        return;
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        mc_route_get(c, m);
        return;
    case MC_MN:
        client_reply_str(c, "MN\r\n");
        return;
    case MC_MG:
    case MC_MS:
    case MC_MD:
    case MC_MA:
    case MC_ME:
        mc_route_meta(c, m);
        return;
    case MC_FLUSH_ALL:
    case MC_VERBOSITY:
        mc_route_setting(c, m);
        return;
    case MC_STATS:
        mc_route_stats(c, m);
        return;
    default: {
        backend *b = pool_pick(c->pool, m->keys[0].ptr, m->keys[0].len);
        if (!b) {
            reply_no_server(c);
            return;
        }
        forward_mc(c, m, b);
        return;
    }
    }
}
