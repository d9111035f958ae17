/*
 * clustermap.c - CLUSTER SHARDS / CLUSTER SLOTS replies into a slot map.
 *
 * CLUSTER SHARDS: per shard a field list {"slots": [start, end, ...],
 * "nodes": [{"id", "port", "ip", "endpoint", "role", "health", ...}]};
 * CLUSTER SLOTS: per range [start, end, [ip, port, id, meta]...], the
 * first node the primary. Fields the proxy does not use are skipped, so a
 * newer server's extra fields (hostname, tls-port, shard-id) change
 * nothing. RESP3 maps read as RESP2 field lists.
 */
#include "clustermap.h"

#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parse {
    resp_cursor cur;
    cluster_map *m;
    char *why;
    size_t why_len;
} parse;

static int fail(parse *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, p->why_len, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_text(const resp_item *it) {
    return !it->is_null && (it->type == '$' || it->type == '+' || it->type == '=');
}

static bool is_aggregate(const resp_item *it) {
    return !it->is_null && (it->type == '*' || it->type == '%' || it->type == '~');
}

static bool item_is(const resp_item *it, const char *s) {
    return is_text(it) && it->len == strlen(s) && memcmp(it->s, s, it->len) == 0;
}

/* An integer, as ':' or as digits in a string. */
static bool item_int(const resp_item *it, long long lo, long long hi, long long *out) {
    if (it->is_null || (it->type != ':' && !is_text(it)) || it->len == 0 || it->len > 20)
        return false;
    long long v = 0;
    size_t i = 0;
    bool neg = it->s[0] == '-';
    if (neg) i++;
    if (i == it->len) return false;
    for (; i < it->len; i++) {
        if (it->s[i] < '0' || it->s[i] > '9') return false;
        if (v > (hi + 9) / 10) return false;
        v = v * 10 + (it->s[i] - '0');
    }
    if (neg) v = -v;
    if (v < lo || v > hi) return false;
    *out = v;
    return true;
}

static void item_copy(const resp_item *it, char *out, size_t cap) {
    size_t n = it->len < cap - 1 ? it->len : cap - 1;
    memcpy(out, it->s, n);
    out[n] = '\0';
}

/* Slots first..last to shard s. */
static int claim(parse *p, long long first, long long last, size_t s) {
    if (first > last) return fail(p, "slot range %lld-%lld is backwards", first, last);
    for (long long k = first; k <= last; k++) {
        if (p->m->slot_shard[k] != CLUSTER_NO_SHARD)
            return fail(p, "slot %lld is served twice", k);
        p->m->slot_shard[k] = (uint16_t)s;
    }
    p->m->shards[s].slot_count += (uint32_t)(last - first + 1);
    return 0;
}

static int new_shard(parse *p, size_t *s) {
    if (p->m->shard_count == CLUSTER_MAP_SHARDS_MAX)
        return fail(p, "more than %u shards", CLUSTER_MAP_SHARDS_MAX);
    *s = p->m->shard_count++;
    p->m->shards[*s] = (cluster_shard){.primary = -1};
    return 0;
}

/* ---- CLUSTER SHARDS ------------------------------------------------------ */

/* One node's field list into *n; false when it is not one. */
static bool shards_node(parse *p, cluster_node *n) {
    resp_item head, k, v;
    if (!resp_cursor_next(&p->cur, &head) || !is_aggregate(&head)) return false;
    char endpoint[64] = "";
    bool has_id = false, has_port = false;
    long long tls_port = 0;
    *n = (cluster_node){0};
    for (int64_t i = 0; i + 1 < head.count; i += 2) {
        size_t at = p->cur.at;
        if (!resp_cursor_next(&p->cur, &k)) return false;
        if (!is_text(&k)) { /* a field name that is not a string: skip the pair */
            p->cur.at = at;
            if (!resp_cursor_skip(&p->cur) || !resp_cursor_skip(&p->cur)) return false;
            continue;
        }
        at = p->cur.at;
        if (!resp_cursor_next(&p->cur, &v)) return false;
        if (v.count > 0 || is_aggregate(&v)) { /* a nested value no field here has */
            p->cur.at = at;
            if (!resp_cursor_skip(&p->cur)) return false;
            continue;
        }
        long long port;
        if (item_is(&k, "id") && is_text(&v) && v.len <= CLUSTER_ID_MAX) {
            item_copy(&v, n->id, sizeof n->id);
            has_id = true;
        } else if (item_is(&k, "port") && item_int(&v, 0, 65535, &port)) {
            n->port = (int)port;
            has_port = true;
        } else if (item_is(&k, "tls-port") && item_int(&v, 0, 65535, &port)) {
            tls_port = port;
        } else if (item_is(&k, "ip") && is_text(&v)) {
            item_copy(&v, n->ip, sizeof n->ip);
        } else if (item_is(&k, "endpoint") && is_text(&v)) {
            item_copy(&v, endpoint, sizeof endpoint);
        } else if (item_is(&k, "role")) {
            n->is_primary = item_is(&v, "master");
        } else if (item_is(&k, "health")) {
            n->is_failed = item_is(&v, "fail") || item_is(&v, "failed");
        }
    }
    if (head.count % 2 && !resp_cursor_skip(&p->cur)) return false;
    if (!n->ip[0] || strcmp(n->ip, "?") == 0) memcpy(n->ip, endpoint, sizeof n->ip);
    if (strcmp(n->ip, "?") == 0) n->ip[0] = '\0';
    /* A TLS-only node says port 0 (tls-port is its port). */
    if (n->port == 0) n->port = (int)tls_port;
    return (has_id || has_port) && n->port > 0;
}

static int shards_one(parse *p) {
    resp_item head, k;
    if (!resp_cursor_next(&p->cur, &head) || !is_aggregate(&head))
        return fail(p, "a shard is not a field list");
    size_t s = 0;
    if (new_shard(p, &s) != 0) return -1;
    cluster_shard *sh = &p->m->shards[s];
    for (int64_t i = 0; i < head.count; i += 2) {
        size_t at = p->cur.at;
        if (!resp_cursor_next(&p->cur, &k)) return fail(p, "the reply ends early");
        if (!is_text(&k)) { /* not a field name: skip it whole */
            p->cur.at = at;
            if (!resp_cursor_skip(&p->cur)) return fail(p, "the reply ends early");
            if (i + 1 < head.count && !resp_cursor_skip(&p->cur))
                return fail(p, "the reply ends early");
            continue;
        }
        if (i + 1 == head.count) break; /* a name without a value */
        resp_item list;
        if (item_is(&k, "slots")) {
            if (!resp_cursor_next(&p->cur, &list) || !is_aggregate(&list) || list.count % 2)
                return fail(p, "a shard's slots are not start, end pairs");
            for (int64_t j = 0; j < list.count; j += 2) {
                resp_item a, b;
                long long first, last;
                if (!resp_cursor_next(&p->cur, &a) || !resp_cursor_next(&p->cur, &b) ||
                    !item_int(&a, 0, CLUSTER_SLOT_COUNT - 1, &first) ||
                    !item_int(&b, 0, CLUSTER_SLOT_COUNT - 1, &last))
                    return fail(p, "a shard's slot is not 0..16383");
                if (claim(p, first, last, s) != 0) return -1;
            }
        } else if (item_is(&k, "nodes")) {
            if (!resp_cursor_next(&p->cur, &list) || !is_aggregate(&list))
                return fail(p, "a shard's nodes are not a list");
            for (int64_t j = 0; j < list.count; j++) {
                cluster_node n;
                if (!shards_node(p, &n)) return fail(p, "a node without id and port");
                if (sh->node_count == CLUSTER_SHARD_NODES_MAX) continue;
                /* The primary first among equals: a shard names one. */
                if (n.is_primary && (sh->primary < 0 || sh->nodes[sh->primary].is_failed))
                    sh->primary = (int)sh->node_count;
                sh->nodes[sh->node_count++] = n;
            }
        } else if (!resp_cursor_skip(&p->cur)) {
            return fail(p, "the reply ends early");
        }
    }
    return 0;
}

/* ---- CLUSTER SLOTS ------------------------------------------------------- */

/* [ip, port, id, meta...] into *n. */
static bool slots_node(parse *p, cluster_node *n) {
    resp_item head, ip, port, id;
    long long pv;
    if (!resp_cursor_next(&p->cur, &head) || head.type != '*' || head.count < 2) return false;
    *n = (cluster_node){0};
    /* A node that does not know its own address: an empty or null ip. */
    if (!resp_cursor_next(&p->cur, &ip) || (!is_text(&ip) && !ip.is_null)) return false;
    if (!resp_cursor_next(&p->cur, &port) || !item_int(&port, 0, 65535, &pv)) return false;
    if (!ip.is_null) item_copy(&ip, n->ip, sizeof n->ip);
    if (strcmp(n->ip, "?") == 0) n->ip[0] = '\0';
    n->port = (int)pv;
    int64_t used = 2;
    if (head.count >= 3) {
        if (!resp_cursor_next(&p->cur, &id) || !is_text(&id) || id.len > CLUSTER_ID_MAX)
            return false;
        item_copy(&id, n->id, sizeof n->id);
        used = 3;
    }
    for (; used < head.count; used++)
        if (!resp_cursor_skip(&p->cur)) return false;
    return true;
}

static int slots_one(parse *p) {
    resp_item head, a, b;
    long long first, last;
    if (!resp_cursor_next(&p->cur, &head) || head.type != '*' || head.count < 3)
        return fail(p, "a slot range is not [start, end, primary...]");
    if (!resp_cursor_next(&p->cur, &a) || !resp_cursor_next(&p->cur, &b) ||
        !item_int(&a, 0, CLUSTER_SLOT_COUNT - 1, &first) ||
        !item_int(&b, 0, CLUSTER_SLOT_COUNT - 1, &last))
        return fail(p, "a slot is not 0..16383");
    cluster_node nodes[CLUSTER_SHARD_NODES_MAX];
    uint32_t count = 0;
    for (int64_t j = 2; j < head.count; j++) {
        cluster_node n;
        if (!slots_node(p, &n)) return fail(p, "a node is not [ip, port, id]");
        if (count < CLUSTER_SHARD_NODES_MAX) nodes[count++] = n;
    }
    nodes[0].is_primary = true;
    /* Ranges of one primary are one shard (matched by id, else address). */
    size_t s = 0;
    for (; s < p->m->shard_count; s++) {
        const cluster_node *pri = &p->m->shards[s].nodes[0];
        if (nodes[0].id[0] ? strcmp(pri->id, nodes[0].id) == 0
                           : strcmp(pri->ip, nodes[0].ip) == 0 && pri->port == nodes[0].port)
            break;
    }
    if (s == p->m->shard_count) {
        if (new_shard(p, &s) != 0) return -1;
        cluster_shard *sh = &p->m->shards[s];
        memcpy(sh->nodes, nodes, count * sizeof *nodes);
        sh->node_count = count;
        sh->primary = 0;
    }
    return claim(p, first, last, s);
}

int cluster_map_parse(const char *data, size_t len, bool is_shards, cluster_map *out, char *why,
                      size_t why_len) {
    *out = (cluster_map){0};
    for (size_t k = 0; k < CLUSTER_SLOT_COUNT; k++) out->slot_shard[k] = CLUSTER_NO_SHARD;
    parse p = {.cur = {data, len, 0}, .m = out, .why = why, .why_len = why_len};
    resp_item head;
    if (!resp_cursor_next(&p.cur, &head)) return fail(&p, "not a RESP reply");
    if (head.type == '-' || head.type == '!') {
        char text[160];
        size_t n = head.len < sizeof text - 1 ? head.len : sizeof text - 1;
        for (size_t i = 0; i < n; i++)
            text[i] = head.s[i] >= ' ' && head.s[i] <= '~' ? head.s[i] : '?';
        text[n] = '\0';
        return fail(&p, "the node answered: %s", text);
    }
    if (head.type != '*' || head.is_null) return fail(&p, "not a list");
    size_t cap = head.count < (int64_t)CLUSTER_MAP_SHARDS_MAX ? (size_t)head.count
                                                               : CLUSTER_MAP_SHARDS_MAX;
    out->shards = calloc(cap ? cap : 1, sizeof *out->shards);
    if (!out->shards) return fail(&p, "out of memory");
    /* Each entry makes at most one shard (SLOTS' ranges of one primary
     * share one), so cap shards always do. */
    for (int64_t i = 0; i < head.count; i++)
        if ((is_shards ? shards_one(&p) : slots_one(&p)) != 0) return -1;
    return 0;
}

void cluster_map_free(cluster_map *m) {
    free(m->shards);
    m->shards = NULL;
    m->shard_count = 0;
}
