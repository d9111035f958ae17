/*
 * slot_table_reply.c - a slot table from a CLUSTER SHARDS or CLUSTER SLOTS
 * reply (slot_table.h), walked with the proxy's bounds-checked RESP cursor
 * (proxy/reply.h) rather than a second RESP reader. No I/O.
 *
 *   SHARDS (Redis 7): [ {slots: [first, last, ...], nodes: [ {id, port,
 *                     tls-port, ip, endpoint, hostname, role,
 *                     replication-offset, health}, ... ]}, ... ]
 *   SLOTS:            [ [first, last, [ip, port, id, {...}], replica...], ... ]
 *
 * Maps are flat arrays in RESP2 and maps ('%') in RESP3: both are read.
 * Fields this file does not know are skipped whole, so a newer server's
 * additions do not break it.
 */
#include "slot_table.h"
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool fail(slot_table_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(slot_table_error *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->why, sizeof err->why, fmt, ap);
    va_end(ap);
    err->line = 0;
    return false;
}

static bool is(const char *s, size_t len, const char *text) {
    return len == strlen(text) && memcmp(s, text, len) == 0;
}

static bool is_aggregate(const resp_item *it) {
    return !it->is_null && (it->type == '*' || it->type == '%' || it->type == '~');
}

static bool next_string(resp_cursor *c, resp_item *it) {
    return resp_cursor_next(c, it) && !it->is_null && (it->type == '$' || it->type == '+');
}

/* An integer, or (leniently) a string of digits, in [0, max]. */
static bool next_number(resp_cursor *c, uint32_t max, uint32_t *out) {
    resp_item it;
    if (!resp_cursor_next(c, &it) || it.is_null || (it.type != ':' && it.type != '$')) return false;
    if (it.len == 0 || it.len > 9) return false;
    uint32_t v = 0;
    for (size_t i = 0; i < it.len; i++) {
        if (it.s[i] < '0' || it.s[i] > '9') return false;
        v = v * 10 + (uint32_t)(it.s[i] - '0');
    }
    if (v > max) return false;
    *out = v;
    return true;
}

/* The reply's first header: an aggregate, or an error reply into err. */
static bool open_reply(resp_cursor *c, resp_item *top, bool *is_error_reply,
                       slot_table_error *err) {
    *is_error_reply = false;
    if (!resp_cursor_next(c, top)) return fail(err, "not a RESP reply");
    if (top->type == '-' || top->type == '!') {
        *is_error_reply = true;
        /* Only printable bytes: the text goes to a terminal. */
        size_t n = top->len < sizeof err->why - 1 ? top->len : sizeof err->why - 1;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)top->s[i];
            err->why[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
        err->why[n] = '\0';
        err->line = 0;
        return false;
    }
    if (!is_aggregate(top)) return fail(err, "expected an array, got a '%c' reply", top->type);
    return true;
}

/* "ip:port", the ip of a node that does not know its own being the host
 * the reply came from. */
static bool add_node(slot_table *m, const char *ip, size_t ip_len, uint32_t port,
                     const char *asked_host, uint32_t *index, slot_table_error *err) {
    if (ip_len == 0 || is(ip, ip_len, "?")) {
        ip = asked_host;
        ip_len = strlen(asked_host);
    }
    for (size_t i = 0; i < ip_len; i++)
        if (ip[i] < 0x21 || ip[i] > 0x7e) return fail(err, "a control or non-ASCII byte in an ip");
    char name[SLOT_TABLE_NAME_MAX];
    if (ip_len > SLOT_TABLE_NAME_MAX - 7) return fail(err, "an ip of %zu bytes", ip_len);
    int n = snprintf(name, sizeof name, "%.*s:%u", (int)ip_len, ip, port);
    return slot_table_node(m, name, (size_t)n, index, err);
}

/* ---- CLUSTER SHARDS ------------------------------------------------------ */

typedef struct shard_node {
    const char *ip;
    size_t ip_len;
    uint32_t port, tls_port;
    bool has_port, has_tls_port, is_master, is_failed;
} shard_node;

static bool read_shard_node(resp_cursor *c, shard_node *n, slot_table_error *err) {
    resp_item map, key, value;
    if (!resp_cursor_next(c, &map) || !is_aggregate(&map) || map.count % 2 != 0)
        return fail(err, "CLUSTER SHARDS: a node is not a map");
    *n = (shard_node){0};
    for (int64_t i = 0; i < map.count; i += 2) {
        if (!next_string(c, &key)) return fail(err, "CLUSTER SHARDS: a node's key is not a string");
        bool ok = true;
        if (is(key.s, key.len, "port")) {
            ok = n->has_port = next_number(c, 65535, &n->port);
        } else if (is(key.s, key.len, "tls-port")) {
            ok = n->has_tls_port = next_number(c, 65535, &n->tls_port);
        } else if (is(key.s, key.len, "ip")) {
            ok = resp_cursor_next(c, &value) &&
                 (value.type == '$' || value.type == '+' || value.type == '_');
            if (ok && !value.is_null) {
                n->ip = value.s;
                n->ip_len = value.len;
            }
        } else if (is(key.s, key.len, "role")) {
            ok = next_string(c, &value);
            n->is_master = ok && is(value.s, value.len, "master");
        } else if (is(key.s, key.len, "health")) {
            ok = next_string(c, &value);
            n->is_failed = ok && is(value.s, value.len, "failed");
        } else {
            ok = resp_cursor_skip(c);
        }
        if (!ok)
            return fail(err, "CLUSTER SHARDS: bad value of a node's '%.*s'",
                        (int)(key.len < 32 ? key.len : 32), key.s);
    }
    return true;
}

bool slot_table_from_shards(slot_table *m, const char *reply, size_t len,
                             const char *asked_host, bool *is_error_reply, slot_table_error *err) {
    resp_cursor c = {reply, len, 0};
    resp_item top, shard, key, list;
    if (!open_reply(&c, &top, is_error_reply, err)) return false;
    /* A shard's ranges wait for its primary, which may come after them. */
    uint32_t(*ranges)[2] = malloc(CHASH_REDIS_SLOTS * sizeof *ranges);
    if (!ranges) return fail(err, "out of memory");
    bool ok = true;
    for (int64_t s = 0; ok && s < top.count; s++) {
        if (!resp_cursor_next(&c, &shard) || !is_aggregate(&shard) || shard.count % 2 != 0) {
            ok = fail(err, "CLUSTER SHARDS: a shard is not a map");
            break;
        }
        size_t range_count = 0;
        shard_node primary = {0};
        bool has_primary = false;
        for (int64_t i = 0; ok && i < shard.count; i += 2) {
            if (!next_string(&c, &key)) {
                ok = fail(err, "CLUSTER SHARDS: a shard's key is not a string");
            } else if (is(key.s, key.len, "slots")) {
                if (!resp_cursor_next(&c, &list) || !is_aggregate(&list) || list.count % 2 != 0 ||
                    list.count / 2 > CHASH_REDIS_SLOTS) {
                    ok = fail(err, "CLUSTER SHARDS: 'slots' is not a list of ranges");
                    break;
                }
                for (int64_t r = 0; ok && r < list.count / 2; r++) {
                    if (range_count == CHASH_REDIS_SLOTS) {
                        ok = fail(err, "CLUSTER SHARDS: more ranges than slots");
                        break;
                    }
                    uint32_t *range = ranges[range_count++];
                    if (!next_number(&c, CHASH_REDIS_SLOTS - 1, &range[0]) ||
                        !next_number(&c, CHASH_REDIS_SLOTS - 1, &range[1]) || range[0] > range[1])
                        ok = fail(err, "CLUSTER SHARDS: a slot range that is not 'first, last' "
                                       "in 0..16383");
                }
            } else if (is(key.s, key.len, "nodes")) {
                if (!resp_cursor_next(&c, &list) || !is_aggregate(&list)) {
                    ok = fail(err, "CLUSTER SHARDS: 'nodes' is not a list");
                    break;
                }
                for (int64_t n = 0; ok && n < list.count; n++) {
                    shard_node node;
                    ok = read_shard_node(&c, &node, err);
                    if (ok && !has_primary && node.is_master && !node.is_failed &&
                        (node.has_port || node.has_tls_port)) {
                        primary = node;
                        has_primary = true;
                    }
                }
            } else if (!resp_cursor_skip(&c)) {
                ok = fail(err, "CLUSTER SHARDS: a shard ends early");
            }
        }
        if (!ok || !has_primary) continue; /* no primary: its slots have no owner */
        uint32_t index;
        ok = add_node(m, primary.ip, primary.ip_len,
                      primary.has_port && primary.port ? primary.port : primary.tls_port,
                      asked_host, &index, err);
        for (size_t r = 0; ok && r < range_count; r++)
            ok = slot_table_assign(m, ranges[r][0], ranges[r][1], index, err);
    }
    free(ranges);
    return ok;
}

/* ---- CLUSTER SLOTS ------------------------------------------------------- */

bool slot_table_from_slots(slot_table *m, const char *reply, size_t len,
                            const char *asked_host, bool *is_error_reply, slot_table_error *err) {
    resp_cursor c = {reply, len, 0};
    resp_item top, range, node, ip;
    if (!open_reply(&c, &top, is_error_reply, err)) return false;
    for (int64_t r = 0; r < top.count; r++) {
        uint32_t first, last, port, index;
        if (!resp_cursor_next(&c, &range) || !is_aggregate(&range) || range.count < 3)
            return fail(err, "CLUSTER SLOTS: a range is not [first, last, node, ...]");
        if (!next_number(&c, CHASH_REDIS_SLOTS - 1, &first) ||
            !next_number(&c, CHASH_REDIS_SLOTS - 1, &last) || first > last)
            return fail(err, "CLUSTER SLOTS: a range that is not 'first, last' in 0..16383");
        if (!resp_cursor_next(&c, &node) || !is_aggregate(&node) || node.count < 2 ||
            !resp_cursor_next(&c, &ip) || !(ip.type == '$' || ip.type == '+' || ip.type == '_') ||
            !next_number(&c, 65535, &port))
            return fail(err, "CLUSTER SLOTS: a node is not [ip, port, ...]");
        for (int64_t i = 2; i < node.count; i++)
            if (!resp_cursor_skip(&c)) return fail(err, "CLUSTER SLOTS: a node ends early");
        for (int64_t i = 3; i < range.count; i++) /* the replicas */
            if (!resp_cursor_skip(&c)) return fail(err, "CLUSTER SLOTS: a range ends early");
        if (!add_node(m, ip.is_null ? "" : ip.s, ip.is_null ? 0 : ip.len, port, asked_host,
                      &index, err) ||
            !slot_table_assign(m, first, last, index, err))
            return false;
    }
    return true;
}
