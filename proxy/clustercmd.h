/*
 * clustercmd.h - the proxy looks like a Redis Cluster to cluster-aware
 * clients: CLUSTER SLOTS, SHARDS, NODES, INFO, MYID, KEYSLOT, LINKS, HELP,
 * READONLY, READWRITE and ASKING (CK_CLUSTER), for every Redis pool.
 *
 * What it describes is the proxy itself - alone, one node owning slots
 * 0-16383 - or, with --etcd, the fleet's live proxies, each owning an equal
 * contiguous range in the order of their ids. The fleet's members reach the
 * workers through a view fleet.c publishes (cluster_members_*): a leaf
 * that calls nothing above it, read by clustercmd_command.
 */
#ifndef PROXY_CLUSTERCMD_H
#define PROXY_CLUSTERCMD_H

#include "command.h"
#include "resp.h"

#include <stddef.h>

struct client;

/* Answers a CK_CLUSTER command for client c (route.c). */
void clustercmd_command(struct client *c, const cmd_spec *spec, const resp_msg *m);

/*
 * The fleet's members as the fleet's thread sees them (P/proxies/ID), the
 * only writer: it puts and deletes records as etcd tells it, then
 * publishes. A publication is an immutable snapshot swapped in under a
 * mutex held for a pointer swap only: workers never wait on etcd, and a
 * snapshot a worker still reads is freed by its last reader.
 */
typedef struct cluster_members cluster_members;

/* Members of the fleet under etcd prefix `prefix`, this proxy being
 * `self_id` (both copied); NULL when out of memory. Nothing is published
 * until cluster_members_publish. */
cluster_members *cluster_members_new(const char *prefix, const char *self_id);
/* Withdraws what it published (CLUSTER then describes the proxy alone) and
 * frees it; NULL-safe. */
void cluster_members_free(cluster_members *cm);
/* Forgets every member (before a full read of P/proxies/). */
void cluster_members_clear(cluster_members *cm);
/* Member `id` (id_len bytes) is now the fleet_member JSON `json`; one that
 * does not decode is dropped (logged). */
void cluster_members_put(cluster_members *cm, const char *id, size_t id_len, const char *json,
                         size_t json_len);
void cluster_members_delete(cluster_members *cm, const char *id, size_t id_len);
/* Makes the members put so far what every worker's CLUSTER describes, if
 * they changed since the last publication. */
void cluster_members_publish(cluster_members *cm);

#endif
