/*
 * forward.c - a command to the one server that owns it, or split into one
 * command per server: the two ways route.c, fanout.c, held.c and
 * mcroute.c put requests on server connections.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reply_oom(client *c) {
    client_reply_str(c, c->pool->cf->redis ? "-ERR out of memory\r\n"
                                           : "SERVER_ERROR out of memory\r\n");
}

void reply_no_server(client *c) {
    if (c->pool->slots) { /* redis-cluster: Redis's words for it */
        client_reply_str(c, "-CLUSTERDOWN Hash slot not served (the proxy knows no node "
                            "serving it: see its log)\r\n");
        return;
    }
    client_reply_str(c, c->pool->cf->redis
                            ? "-ERR no server available: all are ejected\r\n"
                            : "SERVER_ERROR no server available: all are ejected\r\n");
}

/*
 * One command, whole, to server b as a request of its own. `data` is the
 * command as the server must read it; is_oom says it could not be made.
 */
void forward(client *c, backend *b, const char *data, size_t len, bool is_oom,
                    bool is_retrieval, bool is_noreply) {
    req *r = req_new(c, REQ_FORWARD, 1);
    if (!r) {
        reply_oom(c);
        return;
    }
    r->one.mc_reply = is_retrieval ? MC_REPLY_VALUES : MC_REPLY_LINE;
    r->one.ack_want = c->write_ack;
    r->is_noreply |= is_noreply;
    if (is_oom)
        frag_fail(&r->one, c->pool->cf->redis, "out of memory");
    else if (shard_parks(b) || b->parked) /* behind those already waiting, in order */
        shard_park(&r->one, b, data, len);
    else {
        shard_keep_read(&r->one, b, c->last_cmd && (c->last_cmd->flags & CMD_READONLY), data,
                        len);
        if (conf_pool_is_cluster(c->pool->cf)) cluster_keep(&r->one, data, len);
        frag_send(&r->one, b, c, data, len);
    }
    req_release(r);
}

/* The command as a server must read it: as received, or, for an inline
 * command, re-encoded as RESP into tmp (servers want RESP; check
 * tmp->is_oom). */
void resp_wire(const resp_msg *m, buf *tmp, const char **data, size_t *len) {
    *data = m->raw;
    *len = m->raw_len;
    if (!m->is_inline) return;
    buf_append_header(tmp, '*', m->argc);
    for (size_t i = 0; i < m->argc; i++) buf_append_bulk(tmp, m->argv[i].ptr, m->argv[i].len);
    *data = buf_start(tmp);
    *len = buf_used(tmp);
}

void forward_resp(client *c, const resp_msg *m, backend *b) {
    buf tmp = {0};
    const char *data;
    size_t len;
    resp_wire(m, &tmp, &data, &len);
    forward(c, b, data, len, tmp.is_oom, false, false);
    buf_free(&tmp);
}

/* ---- splitting by server ------------------------------------------------- */

void split_free(split *s) {
    free(s->key_frag);
    free(s->frag_backend);
    free(s->frag_first);
    free(s->frag_last);
    free(s->frag_cost);
    free(s->next_key);
    free(s->frag_of);
    free(s->group_slot);
    free(s->group_frag);
}

/* Returns false when out of memory (s is then freed). */
bool split_init(split *s, const wpool *p, size_t key_count, size_t budget) {
    size_t n = p->backend_count;
    size_t frags = (budget || p->slots) && key_count > n ? key_count : n; /* one a key at most */
    *s = (split){.budget = budget};
    s->key_frag = malloc(key_count * sizeof *s->key_frag);
    s->next_key = malloc(key_count * sizeof *s->next_key);
    s->frag_backend = malloc(frags * sizeof *s->frag_backend);
    s->frag_first = malloc(frags * sizeof *s->frag_first);
    s->frag_last = malloc(frags * sizeof *s->frag_last);
    s->frag_cost = malloc(frags * sizeof *s->frag_cost);
    s->frag_of = malloc(n * sizeof *s->frag_of);
    if (!s->key_frag || !s->next_key || !s->frag_backend || !s->frag_first || !s->frag_last ||
        !s->frag_cost || !s->frag_of) {
        split_free(s);
        return false;
    }
    for (size_t i = 0; i < n; i++) s->frag_of[i] = UINT32_MAX;
    if (p->slots) {
        s->group_cap = 16;
        while (s->group_cap < 2 * key_count) s->group_cap *= 2;
        s->group_slot = calloc(s->group_cap, sizeof *s->group_slot);
        s->group_frag = malloc(s->group_cap * sizeof *s->group_frag);
        if (!s->group_slot || !s->group_frag) {
            split_free(s);
            return false;
        }
    }
    return true;
}

void split_add_slot(split *s, uint32_t i, const backend *b, uint32_t slot) {
    size_t at = (slot * 2654435761u) & (s->group_cap - 1);
    while (s->group_slot[at] && s->group_slot[at] != slot + 1) at = (at + 1) & (s->group_cap - 1);
    uint32_t f;
    if (!s->group_slot[at]) {
        s->group_slot[at] = slot + 1;
        f = s->group_frag[at] = s->frag_count++;
        s->frag_backend[f] = b->index;
        s->frag_first[f] = i;
        s->frag_cost[f] = 0;
    } else {
        f = s->group_frag[at];
        s->next_key[s->frag_last[f]] = i;
    }
    s->frag_last[f] = i;
    s->next_key[i] = UINT32_MAX;
    s->key_frag[i] = f;
}

/* Key i (keys are added in order) belongs to server b; it costs `cost`
 * bytes of its fragment, which starts at `base` bytes. */
void split_add(split *s, uint32_t i, const backend *b, size_t base, size_t cost) {
    uint32_t f = s->frag_of[b->index];
    if (f != UINT32_MAX && s->budget && s->frag_cost[f] + cost > s->budget) f = UINT32_MAX;
    if (f == UINT32_MAX) {
        f = s->frag_of[b->index] = s->frag_count++;
        s->frag_backend[f] = b->index;
        s->frag_first[f] = i;
        s->frag_cost[f] = base;
    } else {
        s->next_key[s->frag_last[f]] = i;
    }
    s->frag_cost[f] += cost;
    s->frag_last[f] = i;
    s->next_key[i] = UINT32_MAX;
    s->key_frag[i] = f;
}

/* The request that gathers a split's fragments, with the key -> fragment
 * map moved into it; NULL (after replying) when out of memory. */
req *split_req(client *c, split *s, req_kind kind, size_t key_count) {
    req *r = req_new(c, kind, s->frag_count);
    if (!r) {
        reply_oom(c);
        return NULL;
    }
    r->key_count = (uint32_t)key_count;
    r->key_frag = s->key_frag;
    s->key_frag = NULL;
    stat_add(&c->pool->st.fragments, s->frag_count);
    return r;
}

