/*
 * mcroute.c - memcached commands to servers.
 *
 * get/gets/gat/gats split like MGET; the rest have one key. "noreply" is
 * stripped before forwarding and the reply dropped in req.c, so every
 * request sent to a server gets exactly one reply and the FIFO match of
 * replies to requests can never slip.
 */
#include "proxy.h"

#include <stdlib.h>
#include <string.h>

static void forward_mc(client *c, const mc_msg *m, backend *b) {
    bool is_retrieval = mc_cmd_is_retrieval(m->cmd);
    if (!m->noreply) {
        forward(c, b, m->raw, m->raw_len, false, is_retrieval, false);
        return;
    }
    buf tmp = {0}; /* without "noreply": the reply is dropped when it comes */
    buf_append(&tmp, m->raw, m->line_keep_len);
    buf_append(&tmp, "\r\n", 2);
    if (m->data) {
        buf_append(&tmp, m->data, m->data_len);
        buf_append(&tmp, "\r\n", 2);
    }
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

/*
 * memcached 1.6 closes a connection whose command line passes 2048 bytes
 * before its end has arrived, unless it is a get or gets: a long gat would
 * reset the connection every client shares. So gat and gats go in lines of
 * at most this many bytes, several to a server when the keys need it.
 */
#define MC_GAT_LINE_MAX 2048u

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
        fr->is_retrieval = true;
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

void route_memcache(client *c, const mc_msg *m) {
    stat_add(&c->pool->st.requests, 1);
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
