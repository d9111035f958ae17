/*
 * clustermap.h - a Redis Cluster's slot map, read from a node's reply to
 * CLUSTER SHARDS (Redis 7) or CLUSTER SLOTS (older): which shard serves
 * each of the 16384 slots, and each shard's primary and replicas.
 *
 * The bytes come from a server, so they are untrusted: anything that is
 * not the documented shape is refused with a reason, never read past.
 * Pure functions of the bytes (fuzz/fuzz_clustermap.c).
 */
#ifndef PROXY_CLUSTERMAP_H
#define PROXY_CLUSTERMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLUSTER_SLOT_COUNT 16384u
#define CLUSTER_NO_SHARD UINT16_MAX
/* The most shards a map holds, and nodes kept per shard (a primary and
 * up to 8 replicas; more replicas are left out). */
#define CLUSTER_MAP_SHARDS_MAX 1024u
#define CLUSTER_SHARD_NODES_MAX 9u
#define CLUSTER_ID_MAX 40u /* a node id: 40 hex characters */

typedef struct cluster_node {
    char id[CLUSTER_ID_MAX + 1];   /* "" when SLOTS gave none */
    char ip[64];                   /* "" when the node knows none (a lone node) */
    int port;                      /* tls-port for a TLS-only node; > 0 */
    bool is_primary;
    bool is_failed; /* health "fail"/"failed" (SHARDS) */
} cluster_node;

typedef struct cluster_shard {
    cluster_node nodes[CLUSTER_SHARD_NODES_MAX];
    uint32_t node_count;
    int primary;         /* index in nodes, -1: none named */
    uint32_t slot_count; /* slots it serves */
} cluster_shard;

typedef struct cluster_map {
    cluster_shard *shards;
    size_t shard_count;
    uint16_t slot_shard[CLUSTER_SLOT_COUNT]; /* CLUSTER_NO_SHARD: not served */
} cluster_map;

/*
 * cluster_map_parse - a CLUSTER SHARDS (is_shards) or CLUSTER SLOTS reply
 * (one whole RESP2 or RESP3 value) into *out, which the caller frees with
 * cluster_map_free (also after a failure). Returns 0, or -1 with a reason
 * in why: an error reply (its text), a shape that is not the command's, a
 * slot out of range or served twice, more than CLUSTER_MAP_SHARDS_MAX
 * shards, out of memory. Cost: O(len + 16384).
 */
int cluster_map_parse(const char *data, size_t len, bool is_shards, cluster_map *out, char *why,
                      size_t why_len);
void cluster_map_free(cluster_map *m);

#endif
