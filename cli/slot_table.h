/*
 * slot_table.h - a Redis Cluster's slot table for `chash lookup --scheme
 * redis-cluster`: which primary ("ip:port") owns each of the 16384 slots.
 *
 * Read from what a cluster says about itself, all of it untrusted bytes:
 *   slot_table.c        CLUSTER NODES text (a node's nodes.conf is the same);
 *   slot_table_reply.c  CLUSTER SHARDS and CLUSTER SLOTS replies (RESP), read
 *                       by the proxy's reader of them (proxy/clustermap.c),
 *                       built where it is (CHASH_HAVE_CLUSTER_REPLY);
 *   slot_table_query.c  asking a live node over TCP (the only file with I/O).
 * The parsers print nothing: a failure fills a slot_table_error, which the
 * command prints with the file name or the address.
 */
#ifndef CHASH_CLI_SLOT_TABLE_H
#define CHASH_CLI_SLOT_TABLE_H

#include <chash.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* owner[] of a slot no primary serves. */
#define SLOT_TABLE_NO_OWNER UINT32_MAX
/* Longest "ip:port" kept: Redis's NET_IP_STR_LEN (46) and a port. */
#define SLOT_TABLE_NAME_MAX 64

typedef struct slot_table {
    char (*names)[SLOT_TABLE_NAME_MAX]; /* the primaries, "ip:port", NUL-terminated */
    size_t node_count;
    size_t node_capacity;
    uint32_t *owner; /* [CHASH_REDIS_SLOTS]: an index into names, or SLOT_TABLE_NO_OWNER */
} slot_table;

typedef struct slot_table_error {
    unsigned long line; /* CLUSTER NODES: the 1-based line at fault; 0 otherwise */
    char why[256];
} slot_table_error;

/* An empty map (no primaries, every slot without owner); false when out of
 * memory. Free it with slot_table_free, which takes a zeroed map too. */
bool slot_table_init(slot_table *m);
void slot_table_free(slot_table *m);

/*
 * slot_table_parse_nodes - the slot table in CLUSTER NODES text:
 *
 *   <id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch>
 *   <link> [<slot> | <first>-<last> | [<slot>-><-<id>] | [<slot>-<-<id>]]...
 *
 * The primaries are the lines whose flags say master and none of fail,
 * noaddr or handshake (fail? is a suspicion only: kept); their slots and
 * ranges are the table; the bracketed migrating and importing entries are
 * checked and left out, as are nodes.conf's `vars` lines and blank lines. A
 * node that does not know its own address (a lone node: ":6379@16379") is
 * named ":PORT", as Redis prints it. m must be fresh from slot_table_init.
 * Returns false with err filled (the line, and why) on anything else: a
 * field missing or malformed, a slot out of range, a slot or an address
 * given twice, a NUL byte, no primary at all. Cost: O(len + primaries^2).
 */
bool slot_table_parse_nodes(slot_table *m, const char *text, size_t len, slot_table_error *err);

/*
 * The primary named `name` (name_len bytes), added when new; its index in
 * *index. False when the name is empty or too long, or out of memory (err
 * says which).
 */
bool slot_table_node(slot_table *m, const char *name, size_t name_len, uint32_t *index,
                      slot_table_error *err);

/* Gives slots first..last (first <= last < 16384) to node `index`; false
 * (err says which) when one of them already has an owner. */
bool slot_table_assign(slot_table *m, uint32_t first, uint32_t last, uint32_t index,
                        slot_table_error *err);

#ifdef CHASH_HAVE_CLUSTER_REPLY
/*
 * slot_table_from_shards / slot_table_from_slots - the slot table in one
 * complete CLUSTER SHARDS (Redis 7) or CLUSTER SLOTS reply, RESP2 or RESP3.
 * SHARDS: each shard's slots go to its node whose role is master and whose
 * health is not "failed"; a shard without one leaves its slots without
 * owner. SLOTS: each range goes to its first node. A node named by no ip
 * (empty, NULL or "?": the node that does not know its own address) is
 * named asked_host:PORT, asked_host being the host the reply came from, as
 * Redis tells clients to do. m must be fresh from slot_table_init.
 * Returns false with err filled when the reply is an error reply (err->why
 * holds its text, *is_error_reply set) or not the expected shape.
 */
bool slot_table_from_shards(slot_table *m, const char *reply, size_t len,
                             const char *asked_host, bool *is_error_reply, slot_table_error *err);
bool slot_table_from_slots(slot_table *m, const char *reply, size_t len,
                            const char *asked_host, bool *is_error_reply, slot_table_error *err);

/*
 * slot_table_query - the slot table of the cluster that HOST:PORT (or
 * [IPv6]:PORT) belongs to: CLUSTER SHARDS, or CLUSTER SLOTS where the node
 * does not know SHARDS (before Redis 7). Waits at most timeout_ms for each
 * step (connect, each reply). Returns false with err filled: the node cannot
 * be reached, is not in cluster mode, refuses, or answers something else.
 */
bool slot_table_query(const char *address, int timeout_ms, slot_table *m, slot_table_error *err);
#endif

#endif
