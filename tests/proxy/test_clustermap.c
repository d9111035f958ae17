/*
 * test_clustermap.c - the slot map reader (clustermap.c): CLUSTER SHARDS
 * in RESP2 and RESP3, CLUSTER SLOTS, a failed primary left on its own
 * after its replica took over, and replies that are not a map.
 */
#include "../testlib.h"
#include "clustermap.h"

#include <string.h>

#define NODE(id, port, role, health)                                                       \
    "*14\r\n$2\r\nid\r\n$40\r\n" id "\r\n$4\r\nport\r\n:" port "\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n" \
    "$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$" role "\r\n"                    \
    "$18\r\nreplication-offset\r\n:10\r\n$6\r\nhealth\r\n$" health "\r\n"

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccccccccccc"

static int parse(const char *text, bool is_shards, cluster_map *m, char *why) {
    return cluster_map_parse(text, strlen(text), is_shards, m, why, 200);
}

static void test_shards(void) {
    /* Shard 1: slots 0-99 and 200-299, A primary, B replica; shard 2:
     * 100-199, C primary; shard 3: a failed primary without slots. */
    const char *text =
        "*3\r\n"
        "*4\r\n$5\r\nslots\r\n*4\r\n:0\r\n:99\r\n:200\r\n:299\r\n$5\r\nnodes\r\n*2\r\n" NODE(
            ID_A, "7001", "6\r\nmaster", "6\r\nonline") NODE(ID_B, "7004", "7\r\nreplica",
                                                             "6\r\nonline")
        "*4\r\n$5\r\nslots\r\n*2\r\n:100\r\n:199\r\n$5\r\nnodes\r\n*1\r\n" NODE(
            ID_C, "7002", "6\r\nmaster", "6\r\nonline")
        "*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n" NODE(
            "dddddddddddddddddddddddddddddddddddddddd", "7003", "6\r\nmaster", "4\r\nfail");
    cluster_map m;
    char why[200] = "";
    ASSERT_EQ(parse(text, true, &m, why), 0);
    ASSERT_UEQ(m.shard_count, 3);
    ASSERT_UEQ(m.slot_shard[0], 0);
    ASSERT_UEQ(m.slot_shard[299], 0);
    ASSERT_UEQ(m.slot_shard[150], 1);
    ASSERT_UEQ(m.slot_shard[300], CLUSTER_NO_SHARD);
    ASSERT_UEQ(m.shards[0].slot_count, 200);
    ASSERT_UEQ(m.shards[0].node_count, 2);
    ASSERT_EQ(m.shards[0].primary, 0);
    ASSERT_EQ(m.shards[0].nodes[1].port, 7004);
    ASSERT_TRUE(strcmp(m.shards[0].nodes[1].id, ID_B) == 0);
    ASSERT_TRUE(strcmp(m.shards[0].nodes[0].ip, "127.0.0.1") == 0);
    ASSERT_UEQ(m.shards[2].slot_count, 0);
    ASSERT_TRUE(m.shards[2].nodes[0].is_failed);
    cluster_map_free(&m);

    /* RESP3: the same fields as maps; an unknown field is skipped. */
    const char *resp3 = "*1\r\n%3\r\n$5\r\nslots\r\n*2\r\n:5\r\n:5\r\n$5\r\nextra\r\n%1\r\n+a\r\n:1\r\n"
                        "$5\r\nnodes\r\n*1\r\n%3\r\n$2\r\nid\r\n$1\r\nx\r\n$4\r\nport\r\n:9\r\n"
                        "$2\r\nip\r\n$3\r\n::1\r\n";
    ASSERT_EQ(parse(resp3, true, &m, why), 0);
    ASSERT_UEQ(m.slot_shard[5], 0);
    ASSERT_EQ(m.shards[0].primary, -1); /* no role given */
    ASSERT_TRUE(strcmp(m.shards[0].nodes[0].ip, "::1") == 0);
    cluster_map_free(&m);
}

static void test_slots(void) {
    /* Two ranges of one primary are one shard. */
    const char *text = "*2\r\n"
                       "*4\r\n:0\r\n:10\r\n*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$40\r\n" ID_A "\r\n"
                       "*3\r\n$9\r\n127.0.0.1\r\n:7004\r\n$40\r\n" ID_B "\r\n"
                       "*3\r\n:20\r\n:30\r\n*4\r\n$9\r\n127.0.0.1\r\n:7001\r\n$40\r\n" ID_A
                       "\r\n%0\r\n";
    cluster_map m;
    char why[200] = "";
    ASSERT_EQ(parse(text, false, &m, why), 0);
    ASSERT_UEQ(m.shard_count, 1);
    ASSERT_UEQ(m.shards[0].slot_count, 22);
    ASSERT_UEQ(m.shards[0].node_count, 2);
    ASSERT_TRUE(m.shards[0].nodes[0].is_primary);
    ASSERT_UEQ(m.slot_shard[25], 0);
    ASSERT_UEQ(m.slot_shard[15], CLUSTER_NO_SHARD);
    cluster_map_free(&m);
}

static void test_refused(void) {
    static const char *const bad[][2] = {
        {"-ERR This instance has cluster support disabled\r\n", "cluster support disabled"},
        {"+OK\r\n", "not a list"},
        {"*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\na\r\n:1\r\n", "0..16383"},
        {"*2\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\na\r\n:1\r\n*3\r\n:5\r\n:6\r\n*2\r\n$1\r\nb\r\n:2\r\n",
         "served twice"},
        {"*1\r\n*3\r\n:9\r\n:5\r\n*2\r\n$1\r\na\r\n:1\r\n", "backwards"},
        {"*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\na\r\n:70000\r\n", "[ip, port, id]"},
        {"*2\r\n*3\r\n:0\r\n", "0..16383"},
        {"", "not a RESP reply"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cluster_map m;
        char why[200] = "";
        ASSERT_EQ(parse(bad[i][0], false, &m, why), -1);
        if (!strstr(why, bad[i][1])) fprintf(stderr, "case %zu: %s\n", i, why);
        ASSERT_TRUE(strstr(why, bad[i][1]) != NULL);
        cluster_map_free(&m);
    }
    cluster_map m;
    char why[200] = "";
    ASSERT_EQ(parse("*1\r\n*2\r\n$5\r\nslots\r\n*1\r\n:1\r\n", true, &m, why), -1);
    ASSERT_TRUE(strstr(why, "pairs") != NULL);
    cluster_map_free(&m);
}

int main(void) {
    test_shards();
    test_slots();
    test_refused();
    TEST_DONE();
}
