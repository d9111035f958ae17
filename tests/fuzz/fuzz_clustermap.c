/*
 * fuzz_clustermap.c - libFuzzer harness for the slot map reader
 * (proxy/clustermap.c): what a cluster node answers CLUSTER SHARDS or
 * CLUSTER SLOTS with, as the proxy's topology thread reads it.
 *
 * The first byte picks the command ('S' SHARDS, 'L' SLOTS, any other
 * byte by its low bit), as in the seed corpus (corpus/clustermap): real
 * replies of a 3 x 2 cluster on loopback, RESP2 and RESP3.
 *
 * Whatever the bytes, nothing crashes, leaks or reads outside them; a
 * refused reply gives a reason; an accepted map is consistent: every
 * served slot names a shard that exists, each shard's slot_count is the
 * number of slots naming it, a named primary is one of its nodes, every
 * node has a port and NUL-terminated texts.
 */
#include "clustermap.h"
#include "fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool is_shards = data[0] == 'S' || (data[0] != 'L' && (data[0] & 1));
    cluster_map m;
    char why[200] = "";
    int rc = cluster_map_parse((const char *)data + 1, size - 1, is_shards, &m, why, sizeof why);
    if (rc != 0) {
        FUZZ_CHECK(why[0] != '\0');
        cluster_map_free(&m);
        return 0;
    }
    FUZZ_CHECK(m.shard_count <= CLUSTER_MAP_SHARDS_MAX);
    uint32_t *counted = calloc(m.shard_count + 1, sizeof *counted);
    FUZZ_CHECK(counted != NULL);
    for (size_t k = 0; k < CLUSTER_SLOT_COUNT; k++) {
        if (m.slot_shard[k] == CLUSTER_NO_SHARD) continue;
        FUZZ_CHECK(m.slot_shard[k] < m.shard_count);
        counted[m.slot_shard[k]]++;
    }
    for (size_t s = 0; s < m.shard_count; s++) {
        const cluster_shard *sh = &m.shards[s];
        FUZZ_CHECK_EQ(sh->slot_count, counted[s]);
        FUZZ_CHECK(sh->node_count <= CLUSTER_SHARD_NODES_MAX);
        FUZZ_CHECK(sh->primary < (int)sh->node_count);
        for (uint32_t i = 0; i < sh->node_count; i++) {
            const cluster_node *n = &sh->nodes[i];
            FUZZ_CHECK(n->port >= 0 && n->port <= 65535);
            FUZZ_CHECK(memchr(n->id, '\0', sizeof n->id) != NULL);
            FUZZ_CHECK(memchr(n->ip, '\0', sizeof n->ip) != NULL);
        }
    }
    free(counted);
    cluster_map_free(&m);
    return 0;
}
