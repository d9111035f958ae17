/*
 * slot_table_reply.c - a slot table from a CLUSTER SHARDS or CLUSTER SLOTS
 * reply (slot_table.h): read by the proxy's own reader of those replies
 * (proxy/clustermap.c, fuzzed there), then each shard's primary named and
 * given its slots. No I/O.
 */
#include "slot_table.h"

#include "clustermap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "ip:port", the ip of a node that does not know its own being the host
 * the reply came from. */
static bool add_node(slot_table *m, const cluster_node *n, const char *asked_host,
                     uint32_t *index, slot_table_error *err) {
    const char *ip = n->ip[0] ? n->ip : asked_host;
    size_t ip_len = strlen(ip);
    for (size_t i = 0; i < ip_len; i++)
        if (ip[i] < 0x21 || ip[i] > 0x7e) {
            snprintf(err->why, sizeof err->why, "a control or non-ASCII byte in an ip");
            return false;
        }
    if (ip_len > SLOT_TABLE_NAME_MAX - 7) {
        snprintf(err->why, sizeof err->why, "an ip of %zu bytes", ip_len);
        return false;
    }
    char name[SLOT_TABLE_NAME_MAX];
    int len = snprintf(name, sizeof name, "%s:%d", ip, n->port);
    return slot_table_node(m, name, (size_t)len, index, err);
}

static bool from_reply(slot_table *m, const char *reply, size_t len, bool is_shards,
                       const char *asked_host, bool *is_error_reply, slot_table_error *err) {
    *is_error_reply = len > 0 && (reply[0] == '-' || reply[0] == '!');
    err->line = 0;
    cluster_map map;
    char why[200];
    if (cluster_map_parse(reply, len, is_shards, &map, why, sizeof why) != 0) {
        /* An error reply is the node's own words; anything else is ours. */
        static const char said[] = "the node answered: ";
        if (*is_error_reply && strncmp(why, said, sizeof said - 1) == 0)
            snprintf(err->why, sizeof err->why, "%s", why + sizeof said - 1);
        else
            snprintf(err->why, sizeof err->why, "CLUSTER %s: %s", is_shards ? "SHARDS" : "SLOTS",
                     why);
        cluster_map_free(&map);
        return false;
    }
    /* Each shard's slots go to its primary: a master that has not failed
     * (clustermap.c's pick); without one, they have no owner. */
    uint32_t *owner = malloc((map.shard_count + 1) * sizeof *owner);
    bool ok = owner != NULL;
    if (!ok) snprintf(err->why, sizeof err->why, "out of memory");
    for (size_t s = 0; ok && s < map.shard_count; s++) {
        const cluster_shard *sh = &map.shards[s];
        owner[s] = SLOT_TABLE_NO_OWNER;
        if (sh->primary >= 0 && !sh->nodes[sh->primary].is_failed && sh->slot_count)
            ok = add_node(m, &sh->nodes[sh->primary], asked_host, &owner[s], err);
    }
    for (uint32_t first = 0; ok && first < CHASH_REDIS_SLOTS;) {
        uint16_t s = map.slot_shard[first];
        uint32_t last = first;
        while (last + 1 < CHASH_REDIS_SLOTS && map.slot_shard[last + 1] == s) last++;
        if (s != CLUSTER_NO_SHARD && owner[s] != SLOT_TABLE_NO_OWNER)
            ok = slot_table_assign(m, first, last, owner[s], err);
        first = last + 1;
    }
    free(owner);
    cluster_map_free(&map);
    return ok;
}

bool slot_table_from_shards(slot_table *m, const char *reply, size_t len,
                             const char *asked_host, bool *is_error_reply, slot_table_error *err) {
    return from_reply(m, reply, len, true, asked_host, is_error_reply, err);
}

bool slot_table_from_slots(slot_table *m, const char *reply, size_t len,
                            const char *asked_host, bool *is_error_reply, slot_table_error *err) {
    return from_reply(m, reply, len, false, asked_host, is_error_reply, err);
}
