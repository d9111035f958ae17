/*
 * admin.c - the PROXY command on Redis pools: what the proxy knows about
 * placement, asked in the protocol the client already speaks (redis-cli).
 *
 *   PROXY LOCATE key   the servers that would serve key, in preference order
 *                      (the owner first, then its ring successors), each as
 *                      [name, address, state]; the first live one serves it
 *   PROXY RING         one line a server: name, address, weight, state and
 *                      its exact share of the key space; the last reload
 *   PROXY RELOAD       re-read the configuration file (reload.c); answers
 *                      with the plan, or the reason it was refused
 *   PROXY HELP
 *
 * Everything answered here is this worker's view: ejection is judged per
 * worker, as nutcracker does.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most this many servers in a LOCATE answer. */
#define LOCATE_MAX 16

static const char *backend_state(const backend *b) {
    return b->is_ejected ? "ejected" : b->is_down ? "down" : "up";
}

static void append_bulk_str(buf *b, const char *s) { buf_append_bulk(b, s, strlen(s)); }

static void append_backend(buf *out, const backend *b) {
    char addr[300];
    if (b->pool->slots) /* redis-cluster: where the shard's primary is now */
        snprintf(addr, sizeof addr, "%s", b->addr_text);
    else if (b->cf->port)
        snprintf(addr, sizeof addr, "%s:%d", b->cf->host, b->cf->port);
    else
        snprintf(addr, sizeof addr, "%s", b->cf->host);
    buf_append_header(out, '*', 3);
    append_bulk_str(out, b->cf->name);
    append_bulk_str(out, addr);
    append_bulk_str(out, backend_state(b));
}

static void locate(client *c, const resp_arg *key) {
    wpool *p = c->pool;
    buf out = {0};
    size_t nodes[LOCATE_MAX], found = 0;
    if (p->slots) { /* redis-cluster: the slot's shard */
        backend *b = pool_pick(p, key->ptr, key->len);
        buf_append_header(&out, '*', b != NULL);
        if (b) append_backend(&out, b);
        client_reply_buf(c, &out);
        return;
    }
    if (p->live_count == 0 || !p->ring) {
        client_reply_str(c, "-ERR no server available: all are ejected\r\n");
        return;
    }
    size_t want = p->live_count < LOCATE_MAX ? p->live_count : LOCATE_MAX;
    int rc = chash_lookup_n(p->ring, key->ptr, key->len, want, nodes, &found);
    if (rc == CHASH_ENOTSUP) {
        /* No ring order (modula, jump, maglev...): the owner alone. */
        rc = chash_lookup(p->ring, key->ptr, key->len, &nodes[0]);
        found = rc == CHASH_OK;
    }
    if (rc != CHASH_OK) {
        char text[128];
        snprintf(text, sizeof text, "-ERR cannot locate the key: %s\r\n", chash_strerror(rc));
        client_reply_str(c, text);
        return;
    }
    if (p->cf->dist == CONF_DIST_RANDOM) found = 0; /* no owner: any live server */
    buf_append_header(&out, '*', found);
    for (size_t i = 0; i < found; i++) append_backend(&out, &p->backends[p->node_backend[nodes[i]]]);
    client_reply_buf(c, &out);
}

static void ring(client *c) {
    wpool *p = c->pool;
    size_t n = p->server_count, live = p->live_count; /* nodes on the ring */
    uint64_t *shares = calloc(live ? live : 1, sizeof *shares), space = 0;
    if (!shares) {
        client_reply_str(c, "-ERR out of memory\r\n");
        return;
    }
    /* Exact shares where the algorithm has them (ring, modulo, maglev). */
    bool has_shares = live && p->ring &&
                      chash_ownership(p->ring, shares, live, &space) == CHASH_OK && space;
    double *share_of = calloc(n ? n : 1, sizeof *share_of);
    if (!share_of) {
        free(shares);
        client_reply_str(c, "-ERR out of memory\r\n");
        return;
    }
    for (size_t i = 0; has_shares && i < live; i++)
        share_of[p->node_backend[i]] = 100.0 * (double)shares[i] / (double)space;
    if (p->slots) { /* redis-cluster: each shard's slots of the 16384 */
        has_shares = true;
        for (size_t k = 0; k < 16384; k++)
            if (p->slots[k] < n) share_of[p->slots[k]] += 100.0 / 16384.0;
    }
    char last[sizeof p->w->px->last_reload + 16];
    pthread_mutex_lock(&p->w->px->lock);
    snprintf(last, sizeof last, "last reload: %s",
             p->w->px->last_reload[0] ? p->w->px->last_reload : "none");
    pthread_mutex_unlock(&p->w->px->lock);
    for (char *s = last; *s; s++)
        if (*s == '\n') *s = ';';
    buf out = {0};
    buf_append_header(&out, '*', 2 + n);
    char line[512];
    size_t up = 0;
    for (size_t i = 0; i < n; i++) up += !backend_is_out(&p->backends[i]);
    snprintf(line, sizeof line, "pool %s distribution %s hash %s servers %zu up %zu", p->cf->name,
             conf_dist_name(p->cf), p->slots ? "crc16-slot" : chash_hash_name(p->cf->hash), n, up);
    append_bulk_str(&out, line);
    for (size_t i = 0; i < n; i++) {
        const backend *b = &p->backends[i];
        char share[32] = "-";
        if (has_shares && !b->is_ejected) snprintf(share, sizeof share, "%.3f%%", share_of[i]);
        if (p->slots)
            snprintf(line, sizeof line, "%s %s weight %u %s share %s", b->cf->name,
                     b->addr_text, b->cf->weight, backend_state(b), share);
        else
            snprintf(line, sizeof line, "%s %s:%d weight %u %s share %s", b->cf->name,
                     b->cf->host, b->cf->port, b->cf->weight, backend_state(b), share);
        append_bulk_str(&out, line);
    }
    append_bulk_str(&out, last);
    free(shares);
    free(share_of);
    client_reply_buf(c, &out);
}

/* Synchronous: this worker waits while the file is read and checked (the
 * others do not); the new configuration reaches this worker on its next
 * loop turn, like every other. One line of the answer per line of plan. */
static void reload(client *c) {
    char msg[2048];
    if (proxy_reload(c->w->px, msg, sizeof msg) != 0) {
        for (char *s = msg; *s; s++)
            if (*s == '\r' || *s == '\n') *s = ' ';
        buf out = {0};
        buf_append_str(&out, "-ERR ");
        buf_append_str(&out, msg);
        buf_append_str(&out, "\r\n");
        client_reply_buf(c, &out);
        return;
    }
    size_t lines = 1;
    for (const char *s = msg; *s; s++) lines += *s == '\n';
    buf out = {0};
    buf_append_header(&out, '*', lines);
    for (char *line = msg;;) {
        char *eol = strchr(line, '\n');
        buf_append_bulk(&out, line, eol ? (size_t)(eol - line) : strlen(line));
        if (!eol) break;
        line = eol + 1;
    }
    client_reply_buf(c, &out);
}

void admin_command(client *c, const resp_msg *m) {
    const resp_arg *sub = m->argc >= 2 ? &m->argv[1] : NULL;
    if (sub && resp_arg_is(sub, "locate") && m->argc == 3) {
        locate(c, &m->argv[2]);
    } else if (sub && resp_arg_is(sub, "ring") && m->argc == 2) {
        ring(c);
    } else if (sub && resp_arg_is(sub, "reload") && m->argc == 2) {
        reload(c);
    } else if (sub && resp_arg_is(sub, "help") && m->argc == 2) {
        buf out = {0};
        buf_append_header(&out, '*', 4);
        append_bulk_str(&out, "PROXY LOCATE <key> - the servers for key, owner first: "
                              "[name, address, state]");
        append_bulk_str(&out, "PROXY RING - every server: address, weight, state, "
                              "exact share of the key space");
        append_bulk_str(&out, "PROXY RELOAD - re-read the configuration file; answers with "
                              "the exact plan, or why it was refused");
        append_bulk_str(&out, "PROXY HELP - this text");
        client_reply_buf(c, &out);
    } else {
        client_reply_str(c, "-ERR usage: PROXY LOCATE <key> | PROXY RING | PROXY RELOAD | PROXY HELP\r\n");
    }
}
