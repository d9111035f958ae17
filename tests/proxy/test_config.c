/*
 * test_config.c - the config loader's key table and ring builder, without
 * the proxy: defaults of a pool that sets nothing, every integer key at and
 * past both ends of its range (the message names the key, the range and the
 * value's line), the enum and boolean messages, the docs table printed from
 * the same table, and conf_pool_ring_live over any set of live servers
 * agreeing with a ring built directly from those servers; distribution:
 * buckets (its table's weighted splits, overrides, every message, the ring
 * built with them, and the plan between two pools).
 */
#include "../testlib.h"
#include "config.h"

#include <chash.h>

#define BASE "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n"
#define SERVERS "  servers:\n   - 127.0.0.1:6379:1\n"

static conf *load(const char *text, char *err) {
    conf *cf = NULL;
    err[0] = '\0';
    if (conf_parse_with(NULL, text, strlen(text), "t.yml", &cf, err, CONF_ERR_MAX) != 0)
        return NULL;
    return cf;
}

static void test_defaults(void) {
    char err[CONF_ERR_MAX];
    conf *cf = load(BASE SERVERS, err);
    if (!cf) TEST_FAIL_AT("%s", err);
    const conf_pool *p = &cf->pools[0];
    ASSERT_EQ(p->hash, CHASH_HASH_FNV1A_64);
    ASSERT_EQ(p->dist, CONF_DIST_KETAMA);
    ASSERT_EQ(p->hash_tag[0], 0);
    ASSERT_EQ(p->timeout_ms, -1);
    ASSERT_EQ(p->backlog, 512);
    ASSERT_EQ(p->listen_mode, -1);
    ASSERT_EQ(p->preconnect, false);
    ASSERT_TRUE(p->redis_auth == NULL);
    ASSERT_EQ(p->redis_db, 0);
    ASSERT_EQ(p->server_connections, 1);
    ASSERT_EQ(p->client_connections, 0);
    ASSERT_EQ(p->auto_eject_hosts, false);
    ASSERT_EQ(p->server_retry_timeout_ms, 30000);
    ASSERT_EQ(p->server_failure_limit, 2);
    ASSERT_EQ(p->tcpkeepalive, false);
    ASSERT_EQ(p->reuseport, false);
    ASSERT_EQ(p->on_failure, CONF_FAIL_EJECT);
    ASSERT_EQ(p->warmup_ms, 0);
    ASSERT_EQ(p->replication, 1);
    ASSERT_UEQ(p->max_bulk_length, 512u << 20);
    ASSERT_EQ(p->max_arguments, 1024 * 1024);
    ASSERT_EQ(p->max_key_length, 64 * 1024);
    ASSERT_EQ(p->max_pipeline, 10000);
    ASSERT_UEQ(p->max_client_buffer, (uint64_t)1 << 30);
    conf_free(cf);
}

typedef struct int_key {
    const char *name;
    int64_t min, max;
} int_key;

/* The ranges as they were before the table: a change here is a change of
 * behaviour, and of docs/proxy.md. */
static const int_key int_keys[] = {
    {"timeout", 1, INT32_MAX},
    {"backlog", 1, INT32_MAX},
    {"redis_db", 0, INT32_MAX},
    {"server_connections", 1, 1024},
    {"client_connections", 0, INT32_MAX},
    {"server_retry_timeout", 1, INT32_MAX},
    {"server_failure_limit", 1, INT32_MAX},
    {"warmup", 0, INT32_MAX},
    {"max_bulk_length", 1, INT64_C(1) << 40},
    {"max_arguments", 2, INT32_MAX},
    {"max_key_length", 1, INT32_MAX},
    {"max_pipeline", 1, INT32_MAX},
    {"max_client_buffer", 1024, INT64_C(1) << 40},
};

/* Keys that only distribution: buckets takes, and their ranges. */
static const int_key bucket_int_keys[] = {
    {"buckets", 1, CHASH_BUCKETS_MAX},
};

/* A pool with one `key: value` on line 4. */
static conf *load_key(const char *key, const char *value, char *err) {
    char text[512];
    snprintf(text, sizeof text, BASE "  %s: %s\n" SERVERS, key, value);
    return load(text, err);
}

static void test_int_ranges(void) {
    char err[CONF_ERR_MAX], value[32], want[160];
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++) {
        const int_key *k = &int_keys[i];
        int64_t good[] = {k->min, k->max}, bad[] = {k->min - 1, k->max + 1};
        for (int j = 0; j < 2; j++) {
            snprintf(value, sizeof value, "%lld", (long long)good[j]);
            conf *cf = load_key(k->name, value, err);
            if (!cf) TEST_FAIL_AT("%s: %s: %s", k->name, value, err);
            conf_free(cf);
            snprintf(value, sizeof value, "%lld", (long long)bad[j]);
            ASSERT_TRUE(load_key(k->name, value, err) == NULL);
            snprintf(want, sizeof want, "t.yml:4: %s: expected an integer in %lld..%lld",
                     k->name, (long long)k->min, (long long)k->max);
            if (strcmp(err, want) != 0) TEST_FAIL_AT("got '%s', want '%s'", err, want);
        }
    }
}

static void expect_error(const char *key, const char *value, const char *want) {
    char err[CONF_ERR_MAX];
    ASSERT_TRUE(load_key(key, value, err) == NULL);
    if (strcmp(err, want) != 0) TEST_FAIL_AT("got '%s', want '%s'", err, want);
}

static void test_messages(void) {
    expect_error("on_failure", "retry", "t.yml:4: on_failure: expected error, reroute or eject");
    expect_error("preconnect", "yes", "t.yml:4: preconnect: expected true or false");
    expect_error("hash", "md6", "t.yml:4: hash: unknown 'md6'");
    expect_error("hash_tag", "\"{\"", "t.yml:4: hash_tag: expected two characters, like \"{}\"");
    expect_error("redis_auth", "\"\"", "t.yml:4: redis_auth: 1..255 bytes");
    expect_error("colour", "blue", "t.yml:4: pool 'alpha': unknown key 'colour'");
    expect_error("timeout", "[1]", "t.yml:4: timeout: expected a single value");
    char err[CONF_ERR_MAX];
    conf *cf = load_key("on_failure", "reroute", err);
    if (!cf) TEST_FAIL_AT("%s", err);
    ASSERT_EQ(cf->pools[0].on_failure, CONF_FAIL_REROUTE);
    conf_free(cf);
    cf = load_key("redis_auth", "secret", err);
    if (!cf) TEST_FAIL_AT("%s", err);
    ASSERT_TRUE(strcmp(cf->pools[0].redis_auth, "secret") == 0);
    ASSERT_EQ(cf->pools[0].redis_auth_len, 6);
    conf_free(cf);
    ASSERT_TRUE(load("alpha:\n  listen: 127.0.0.1:22121\n", err) == NULL);
    ASSERT_TRUE(strcmp(err, "t.yml:1: pool 'alpha': no servers") == 0);
    ASSERT_TRUE(load("alpha:\n" SERVERS, err) == NULL);
    ASSERT_TRUE(strcmp(err, "t.yml:1: pool 'alpha': no listen address") == 0);
}

/* Every row of the docs table names a key the parser knows. */
static void test_markdown(void) {
    FILE *f = tmpfile();
    ASSERT_TRUE(f != NULL);
    conf_keys_markdown(f);
    rewind(f);
    char line[1024];
    size_t rows = 0;
    while (fgets(line, sizeof line, f)) {
        ASSERT_TRUE(line[0] == '|' && strchr(line, '\n') != NULL);
        if (strncmp(line, "| `", 3) != 0) continue;
        rows++;
        char key[64], err[CONF_ERR_MAX];
        ASSERT_TRUE(sscanf(line, "| `%63[^`]`", key) == 1);
        conf *cf = load_key(key, "\"@@\"", err);
        conf_free(cf);
        ASSERT_TRUE(strstr(err, "unknown key") == NULL);
    }
    fclose(f);
    ASSERT_EQ(rows, 57);
}

/* replication: memcached pools only, no more copies than servers, and a
 * distribution whose keys have a ring order to place the copies by. */
static void test_replication(void) {
    static const char mc[] = "beta:\n  listen: 127.0.0.1:22122\n%s  servers:\n"
                             "   - 127.0.0.1:11211:1 a\n   - 127.0.0.1:11212:1 b\n"
                             "   - 127.0.0.1:11213:1 c\n";
    static const struct {
        const char *keys, *err; /* err NULL: loads */
        uint32_t replication;
    } cases[] = {
        {"  replication: 2\n", NULL, 2},
        {"  replication: 3\n  distribution: ring\n", NULL, 3},
        {"", NULL, 1},
        {"  replication: 4\n",
         "t.yml:1: pool 'beta': replication: 4 copies need at least 4 servers, the pool has 3",
         0},
        {"  replication: 0\n", "t.yml:3: replication: expected an integer in 1..16", 0},
        {"  replication: 17\n", "t.yml:3: replication: expected an integer in 1..16", 0},
        {"  replication: 2\n  redis: true\n",
         "t.yml:1: pool 'beta': replication is for memcached pools (a Redis server keeps its "
         "own replicas)",
         0},
        {"  replication: 2\n  distribution: modula\n",
         "t.yml:1: pool 'beta': replication needs a distribution with a ring order (ketama, "
         "ring, rendezvous, multiprobe, bounded, buckets), not modula",
         0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512], err[CONF_ERR_MAX];
        snprintf(text, sizeof text, mc, cases[i].keys);
        conf *cf = load(text, err);
        if (!cases[i].err) {
            if (!cf) TEST_FAIL_AT("%s: %s", cases[i].keys, err);
            ASSERT_EQ(cf->pools[0].replication, cases[i].replication);
            conf_free(cf);
            continue;
        }
        ASSERT_TRUE(cf == NULL);
        if (strcmp(err, cases[i].err) != 0) TEST_FAIL_AT("got '%s', want '%s'", err, cases[i].err);
    }
}

/* Sentinel groups and replicas: Redis only, named shards, replicas of
 * shards that exist, reads from replicas only where there are some. */
static void test_topology_keys(void) {
    static const char base[] = "gamma:\n  listen: 127.0.0.1:22123\n  timeout: 1000\n%s"
                               "  servers:\n%s";
    static const char named[] = "   - 127.0.0.1:7001:1 sa\n   - 127.0.0.1:7011:1 sb\n";
    static const struct {
        const char *keys, *servers, *err; /* err NULL: loads */
    } cases[] = {
        {"  redis: true\n  sentinels:\n   - 127.0.0.1:26379\n   - 127.0.0.1:26380\n"
         "  sentinel_password: pw\n  read_from: prefer_replica\n  min_replicas_ack: 1\n"
         "  failover_wait: 5000\n",
         named, NULL},
        {"  redis: true\n  replicas:\n   - 127.0.0.1:7002 sa\n   - 127.0.0.1:7012 sb\n"
         "  read_from: replica\n",
         named, NULL},
        {"  sentinels:\n   - 127.0.0.1:26379\n", named,
         "t.yml:1: pool 'gamma': sentinels, replicas, read_from, min_replicas_ack and "
         "sentinel_* need redis: true"},
        {"  redis: true\n  sentinels:\n   - 127.0.0.1:26379\n", "   - 127.0.0.1:7001:1\n",
         "t.yml:1: pool 'gamma': with sentinels, server '127.0.0.1:7001:1' needs "
         "host:port:weight NAME, NAME its Sentinel master name"},
        {"  redis: true\n  replicas:\n   - 127.0.0.1:7002 sc\n", named,
         "t.yml:1: pool 'gamma': replica '127.0.0.1:7002 sc': no server is named 'sc'"},
        {"  redis: true\n  replicas:\n   - 127.0.0.1:7002\n", named,
         "t.yml:6: replica '127.0.0.1:7002' is not host:port SHARD (a server's name)"},
        {"  redis: true\n  sentinels:\n   - 127.0.0.1:26379 x\n", named,
         "t.yml:6: sentinel '127.0.0.1:26379 x' is not host:port"},
        {"  redis: true\n  sentinels:\n   - 127.0.0.1:26379\n   - 127.0.0.1:26379\n", named,
         "t.yml:7: sentinels: '127.0.0.1:26379' is listed twice"},
        {"  redis: true\n  read_from: replica\n", named,
         "t.yml:1: pool 'gamma': read_from: replica needs replicas (sentinels: or replicas:)"},
        {"  redis: true\n  read_from: nearest\n", named,
         "t.yml:5: read_from: expected primary, prefer_replica or replica"},
        {"  redis: true\n  sentinel_password: pw\n", named,
         "t.yml:1: pool 'gamma': sentinel_username/password without sentinels"},
        {"  redis: true\n  min_replicas_ack: 1\n  min_replicas_ack_timeout: 1000\n", named,
         "t.yml:1: pool 'gamma': min_replicas_ack_timeout (1000 ms) must be shorter than "
         "timeout (1000 ms)"},
        {"  redis: true\n  warmup: 1000\n  sentinels:\n   - 127.0.0.1:26379\n", named,
         "t.yml:1: pool 'gamma': warmup and sentinels do not go together"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024], err[CONF_ERR_MAX];
        snprintf(text, sizeof text, base, cases[i].keys, cases[i].servers);
        conf *cf = load(text, err);
        if (!cases[i].err) {
            if (!cf) TEST_FAIL_AT("%s: %s", cases[i].keys, err);
            ASSERT_TRUE(conf_pool_has_topology(&cf->pools[0]));
            conf_free(cf);
            continue;
        }
        ASSERT_TRUE(cf == NULL);
        if (strcmp(err, cases[i].err) != 0) TEST_FAIL_AT("got '%s', want '%s'", err, cases[i].err);
    }
    char err[CONF_ERR_MAX];
    char text[1024];
    snprintf(text, sizeof text, base, cases[0].keys, named);
    conf *cf = load(text, err);
    ASSERT_TRUE(cf != NULL);
    const conf_pool *p = &cf->pools[0];
    ASSERT_EQ(p->sentinel_count, 2);
    ASSERT_EQ(p->sentinels[1].port, 26380);
    ASSERT_TRUE(strcmp(p->sentinel_password, "pw") == 0);
    ASSERT_EQ(p->read_from, CONF_READ_PREFER_REPLICA);
    ASSERT_EQ(p->min_replicas_ack, 1);
    ASSERT_EQ(p->min_replicas_ack_timeout_ms, 500);
    ASSERT_EQ(p->failover_wait_ms, 5000);
    ASSERT_EQ(p->topology_check_interval_ms, 1000);
    ASSERT_UEQ(p->replica_max_lag, 1u << 20);
    conf_free(cf);
}

/* distribution: redis-cluster - the seeds kept apart, cluster_max_shards
 * entries named shard-K, and the keys that place or copy keys otherwise
 * refused. */
static void test_cluster_keys(void) {
    static const char base[] = "kappa:\n  listen: 127.0.0.1:22123\n  distribution: redis-cluster\n"
                               "%s  servers:\n   - 127.0.0.1:7001:1\n   - 127.0.0.1:7002:1\n";
    static const struct {
        const char *keys, *err;
    } cases[] = {
        {"  redis: true\n  read_from: prefer_replica\n  failover_wait: 5000\n"
         "  cluster_max_shards: 4\n",
         NULL},
        {"", "t.yml:1: pool 'kappa': distribution: redis-cluster needs redis: true"},
        {"  redis: true\n  sentinels:\n   - 127.0.0.1:26379\n",
         "t.yml:1: pool 'kappa': distribution: redis-cluster takes no sentinels (the cluster "
         "fails over)"},
        {"  redis: true\n  hash_tag: \"{}\"\n",
         "t.yml:1: pool 'kappa': distribution: redis-cluster takes no hash_tag (the cluster's {} "
         "rule applies)"},
        {"  redis: true\n  warmup: 100\n",
         "t.yml:1: pool 'kappa': distribution: redis-cluster takes no warmup (the cluster moves "
         "keys)"},
        {"  redis: true\n  on_failure: reroute\n",
         "t.yml:1: pool 'kappa': distribution: redis-cluster takes no on_failure: reroute (a "
         "slot has one owner)"},
        {"  redis: true\n  redis_db: 2\n",
         "t.yml:1: pool 'kappa': distribution: redis-cluster takes no redis_db (a cluster has "
         "database 0)"},
        {"  redis: true\n  cluster_max_shards: 0\n",
         "t.yml:5: cluster_max_shards: expected an integer in 1..1024"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024], err[CONF_ERR_MAX];
        snprintf(text, sizeof text, base, cases[i].keys);
        conf *cf = load(text, err);
        if (!cases[i].err) {
            if (!cf) TEST_FAIL_AT("%s: %s", cases[i].keys, err);
            const conf_pool *p = &cf->pools[0];
            ASSERT_TRUE(conf_pool_is_cluster(p) && conf_pool_has_topology(p));
            ASSERT_UEQ(p->seed_count, 2);
            ASSERT_EQ(p->seeds[1].port, 7002);
            ASSERT_UEQ(p->server_count, 4);
            ASSERT_TRUE(strcmp(p->servers[3].name, "shard-3") == 0);
            ASSERT_TRUE(strcmp(conf_dist_name(p), "redis-cluster") == 0);
            conf_free(cf);
            continue;
        }
        ASSERT_TRUE(cf == NULL);
        if (strcmp(err, cases[i].err) != 0) TEST_FAIL_AT("got '%s', want '%s'", err, cases[i].err);
    }
}

#define RING_SERVERS 6

static void test_ring_live(void) {
    static const char text[] = "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n"
                               "   - 127.0.0.1:6379:1 zeta\n   - 127.0.0.1:6380:2 alpha\n"
                               "   - 127.0.0.1:6381:1 mid\n   - 127.0.0.1:6382:3 b\n"
                               "   - 127.0.0.1:6383:1 longer_name\n   - 127.0.0.1:6384:1 c\n";
    char err[CONF_ERR_MAX];
    conf *cf = load(text, err);
    if (!cf) TEST_FAIL_AT("%s", err);
    const conf_pool *p = &cf->pools[0];
    ASSERT_EQ(p->server_count, RING_SERVERS);
    uint64_t seed = 7;
    for (unsigned mask = 0; mask < (1u << RING_SERVERS); mask++) {
        bool is_live[RING_SERVERS];
        size_t live = 0;
        for (int i = 0; i < RING_SERVERS; i++) live += is_live[i] = (mask >> i) & 1;
        uint32_t node_server[RING_SERVERS];
        memset(node_server, 0xff, sizeof node_server);
        chash *ring = NULL;
        ASSERT_OK(conf_pool_ring_live(p, is_live, &ring, node_server));
        ASSERT_EQ(chash_node_count(ring), live);
        /* The same servers added by hand in nutcracker's order (shorter
         * names first) place every key the same. */
        chash_config cc;
        conf_pool_chash_config(p, &cc);
        chash *want = NULL;
        ASSERT_OK(chash_create(&cc, &want));
        const conf_server *order[RING_SERVERS];
        size_t n = 0;
        for (int i = 0; i < RING_SERVERS; i++)
            if (is_live[i]) order[n++] = &p->servers[i];
        qsort(order, n, sizeof *order, conf_server_order);
        for (size_t i = 0; i < n; i++) {
            ASSERT_OK(chash_add(want, order[i]->name, strlen(order[i]->name), order[i]->weight));
            ASSERT_TRUE(&p->servers[node_server[i]] == order[i]);
        }
        for (int k = 0; k < 200; k++) {
            char key[32];
            int len = snprintf(key, sizeof key, "key:%llu", (unsigned long long)test_rand(&seed));
            size_t got = SIZE_MAX, expected = SIZE_MAX;
            int rc = chash_lookup(ring, key, (size_t)len, &got);
            ASSERT_EQ(rc, chash_lookup(want, key, (size_t)len, &expected));
            if (rc == CHASH_OK) ASSERT_EQ(got, expected);
            if (live == 0) ASSERT_EQ(rc, CHASH_EEMPTY);
        }
        chash_free(ring);
        chash_free(want);
    }
    chash *all = NULL;
    ASSERT_OK(conf_pool_ring(p, &all));
    ASSERT_EQ(chash_node_count(all), RING_SERVERS);
    chash_free(all);
    conf_free(cf);
}

/* ---- distribution: buckets -------------------------------------------- */

#define UNITS                                                                              \
    "ldc:\n  listen: 127.0.0.1:22125\n  redis: true\n  hash_tag: \"{}\"\n"                   \
    "  servers:\n   - 127.0.0.1:7001:1 u1\n   - 127.0.0.1:7002:1 u2\n"                        \
    "   - 127.0.0.1:7003:1 u3\n   - 127.0.0.1:7004:1 u4\n"

static void test_bucket_keys(void) {
    char err[CONF_ERR_MAX], text[2048], want[200];
    /* Ranges of the integer keys, with distribution: buckets. */
    for (size_t i = 0; i < sizeof bucket_int_keys / sizeof bucket_int_keys[0]; i++) {
        const int_key *k = &bucket_int_keys[i];
        int64_t good[] = {k->min, k->max}, bad[] = {k->min - 1, k->max + 1};
        for (int j = 0; j < 2; j++) {
            snprintf(text, sizeof text, UNITS "  distribution: buckets\n  %s: %lld\n", k->name,
                     (long long)good[j]);
            conf *cf = load(text, err);
            if (!cf) TEST_FAIL_AT("%s", err);
            ASSERT_UEQ(cf->pools[0].bucket_count, (uint64_t)good[j]);
            conf_free(cf);
            snprintf(text, sizeof text, UNITS "  distribution: buckets\n  %s: %lld\n", k->name,
                     (long long)bad[j]);
            ASSERT_TRUE(load(text, err) == NULL);
            snprintf(want, sizeof want, "t.yml:11: %s: expected an integer in %lld..%lld",
                     k->name, (long long)k->min, (long long)k->max);
            if (strcmp(err, want) != 0) TEST_FAIL_AT("got '%s', want '%s'", err, want);
        }
    }

    /* An LDC table: 100 buckets by the last two digits, 0-49 on u1, 50-99
     * split 1:3 between u2 and u3, bucket 7 on u4, one user elsewhere. */
    snprintf(text, sizeof text,
             UNITS "  distribution: buckets\n  buckets: 100\n  bucket_by: digits\n"
                   "  bucket_table:\n   - 0-6 u1\n   - 7 u4\n   - 8-49 u1\n"
                   "   - 50-99 u2 u3:3\n"
                   "  bucket_overrides:\n   - user1234 u4\n   - \"{vip}:x u2\"\n");
    conf *cf = load(text, err);
    if (!cf) TEST_FAIL_AT("%s", err);
    const conf_pool *p = &cf->pools[0];
    ASSERT_EQ(p->bucket_count, 100);
    ASSERT_EQ(p->bucket_by, CHASH_BUCKET_BY_DIGITS);
    ASSERT_EQ(p->bucket_range_count, 5);
    /* 50 buckets split 1:3: floor(50 * 1/4) = 12 to u2, the rest to u3. */
    ASSERT_EQ(p->bucket_ranges[3].first, 50);
    ASSERT_EQ(p->bucket_ranges[3].last, 61);
    ASSERT_TRUE(strcmp(p->servers[p->bucket_ranges[3].server].name, "u2") == 0);
    ASSERT_EQ(p->bucket_ranges[4].first, 62);
    ASSERT_EQ(p->bucket_ranges[4].last, 99);
    ASSERT_EQ(p->bucket_ranges[4].line, 17);
    ASSERT_EQ(p->bucket_override_count, 2);
    ASSERT_TRUE(strcmp(p->bucket_overrides[1].key, "{vip}:x") == 0);
    chash *ring = NULL;
    ASSERT_OK(conf_pool_ring(p, &ring));
    static const struct {
        const char *key, *server;
    } placed[] = {
        {"user100", "u1"},   {"user149", "u1"},  {"user07", "u4"},   {"{user7}:cart", "u4"},
        {"user250", "u2"},   {"user61", "u2"},   {"user62", "u3"},   {"x99", "u3"},
        {"user1234", "u4"},  {"user1334", "u1"}, {"{vip}:y", "u2"},
    };
    for (size_t i = 0; i < sizeof placed / sizeof placed[0]; i++) {
        size_t node;
        const void *name;
        size_t len;
        ASSERT_OK(chash_lookup(ring, placed[i].key, strlen(placed[i].key), &node));
        ASSERT_OK(chash_node(ring, node, &name, &len, NULL));
        if (len != strlen(placed[i].server) || memcmp(name, placed[i].server, len) != 0)
            TEST_FAIL_AT("%s on %.*s, not %s", placed[i].key, (int)len, (const char *)name,
                         placed[i].server);
    }
    chash_free(ring);
    /* A server off the ring takes its pins along: its buckets go to the
     * others, the rest stay. */
    bool is_live[4] = {true, true, false, true};
    uint32_t node_server[4];
    ASSERT_OK(conf_pool_ring_live(p, is_live, &ring, node_server));
    for (uint32_t b = 0; b < 100; b++) {
        size_t node;
        ASSERT_OK(chash_bucket_owner(ring, b, &node));
        const char *name = p->servers[node_server[node]].name;
        ASSERT_TRUE(strcmp(name, "u3") != 0);
        if (b < 50) ASSERT_TRUE(strcmp(name, b == 7 ? "u4" : "u1") == 0);
        if (b >= 50 && b <= 61) ASSERT_TRUE(strcmp(name, "u2") == 0);
    }
    chash_free(ring);
    conf_free(cf);

    /* A name with a colon is a name; NAME:WEIGHT only when it is none. */
    snprintf(text, sizeof text,
             "z:\n  listen: 127.0.0.1:22126\n  distribution: buckets\n  buckets: 10\n"
             "  servers:\n   - 127.0.0.1:7001:1\n   - 127.0.0.1:7002:1\n"
             "  bucket_table:\n   - 0-9 127.0.0.1:7001 127.0.0.1:7002:4\n");
    cf = load(text, err);
    if (!cf) TEST_FAIL_AT("%s", err);
    ASSERT_EQ(cf->pools[0].bucket_ranges[0].last, 1); /* 10 * 1/5 */
    ASSERT_EQ(cf->pools[0].bucket_ranges[1].first, 2);
    conf_free(cf);
}

static void test_bucket_errors(void) {
    static const struct {
        const char *keys, *err;
    } cases[] = {
        {"  buckets: 10\n", "t.yml:10: pool 'ldc': buckets needs distribution: buckets"},
        {"  distribution: ring\n  bucket_table:\n   - 0 u1\n",
         "t.yml:12: pool 'ldc': bucket_table needs distribution: buckets"},
        {"  bucket_overrides:\n   - k u1\n",
         "t.yml:11: pool 'ldc': bucket_overrides needs distribution: buckets"},
        {"  bucket_by: digits\n", "t.yml:10: pool 'ldc': bucket_by needs distribution: buckets"},
        {"  distribution: buckets\n  bucket_by: tens\n",
         "t.yml:11: bucket_by: expected hash or digits"},
        {"  distribution: buckets\n  bucket_table: 0-9 u1\n",
         "t.yml:11: bucket_table: expected a list"},
        {"  distribution: buckets\n  bucket_table:\n   - [0, u1]\n",
         "t.yml:12: bucket_table: expected strings"},
        {"  distribution: buckets\n  bucket_table:\n   - 0-100 u1\n",
         "t.yml:12: bucket_table: '0-100 u1': bucket 100 is past the last, 99 (buckets: 100)"},
        {"  distribution: buckets\n  buckets: 1000\n  bucket_table:\n   - 0-100 u1\n"
         "   - 100-200 u2\n   - 50 u3\n",
         "t.yml:15: bucket_table: buckets 50-50 overlap 0-100 of line 13"},
        {"  distribution: buckets\n  bucket_table:\n   - 9-3 u1\n",
         "t.yml:12: bucket_table: '9-3 u1': 9 comes after 3"},
        {"  distribution: buckets\n  bucket_table:\n   - a-b u1\n",
         "t.yml:12: bucket_table: 'a-b u1': expected FIRST-LAST or BUCKET, then server names"},
        {"  distribution: buckets\n  bucket_table:\n   - 0-9\n",
         "t.yml:12: bucket_table: '0-9': no server named after the buckets"},
        {"  distribution: buckets\n  bucket_table:\n   - 0-9 u9\n",
         "t.yml:12: bucket_table: '0-9 u9': no server is named 'u9'"},
        {"  distribution: buckets\n  bucket_table:\n   - 0-9 u1:0\n",
         "t.yml:12: bucket_table: '0-9 u1:0': the weight of 'u1' must be 1..65535"},
        {"  distribution: buckets\n  bucket_table:\n   - 0-9 u1:x\n",
         "t.yml:12: bucket_table: '0-9 u1:x': the weight of 'u1' must be 1..65535"},
        {"  distribution: buckets\n  bucket_table:\n   - 0-9 u1 u2 u1\n",
         "t.yml:12: bucket_table: '0-9 u1 u2 u1': 'u1' is named twice"},
        {"  distribution: buckets\n  bucket_table:\n   - 0-2 u1 u2:9\n",
         "t.yml:12: bucket_table: '0-2 u1 u2:9': 3 buckets split this way leave 'u1' none"},
        {"  distribution: buckets\n  bucket_overrides:\n   - lonely\n",
         "t.yml:12: bucket_overrides: 'lonely': expected KEY NAME"},
        {"  distribution: buckets\n  bucket_overrides:\n   - k u7\n",
         "t.yml:12: bucket_overrides: 'k u7': no server is named 'u7'"},
        {"  distribution: buckets\n  bucket_overrides:\n   - k u1\n   - k u2\n",
         "t.yml:13: bucket_overrides: 'k u2': the key 'k' of line 12 is the same key"},
        {"  distribution: buckets\n  bucket_overrides:\n   - a u1\n   - \"{k}:1 u1\"\n"
         "   - \"{k}:2 u2\"\n",
         "t.yml:14: bucket_overrides: '{k}:2 u2': the key '{k}:1' of line 13 is the same key "
         "under the hash tag"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[2048], err[CONF_ERR_MAX];
        snprintf(text, sizeof text, UNITS "%s", cases[i].keys);
        ASSERT_TRUE(load(text, err) == NULL);
        if (strcmp(err, cases[i].err) != 0) TEST_FAIL_AT("got '%s', want '%s'", err, cases[i].err);
    }
}

typedef struct moves {
    char text[16][80];
    size_t count;
} moves;

static int add_move(void *user, const conf_bucket_move *m) {
    moves *mv = user;
    ASSERT_TRUE(mv->count < 16);
    conf_bucket_move_text(m, mv->text[mv->count++], sizeof mv->text[0]);
    return 0;
}

static void test_bucket_plan(void) {
    static const char before[] = UNITS "  distribution: buckets\n  bucket_by: digits\n"
                                       "  bucket_table:\n   - 0-49 u1\n   - 50-99 u2\n"
                                       "  bucket_overrides:\n   - vip1 u3\n   - vip2 u3\n";
    /* Cut flow: 50-74 off u2 to u4, bucket 7 to u3; vip1 back to its
     * bucket, vip3 pinned. */
    static const char after[] = UNITS "  distribution: buckets\n  bucket_by: digits\n"
                                      "  bucket_table:\n   - 0-6 u1\n   - 7 u3\n   - 8-49 u1\n"
                                      "   - 50-74 u4\n   - 75-99 u2\n"
                                      "  bucket_overrides:\n   - vip2 u3\n   - vip3 u4\n";
    char err[CONF_ERR_MAX];
    conf *a = load(before, err), *b = load(after, err);
    if (!a || !b) TEST_FAIL_AT("%s", err);
    moves mv = {.count = 0};
    ASSERT_OK(conf_pool_bucket_plan(&a->pools[0], &b->pools[0], add_move, &mv));
    static const char *const want[] = {"bucket 7: u1 -> u3", "buckets 50-74: u2 -> u4",
                                       "key vip1: u3 -> u1", "key vip3: u1 -> u4"};
    ASSERT_EQ(mv.count, 4);
    for (size_t i = 0; i < 4; i++)
        if (strcmp(mv.text[i], want[i]) != 0)
            TEST_FAIL_AT("move %zu: '%s', want '%s'", i, mv.text[i], want[i]);
    mv.count = 0;
    ASSERT_OK(conf_pool_bucket_plan(&a->pools[0], &a->pools[0], add_move, &mv));
    ASSERT_EQ(mv.count, 0);
    conf_free(b);
    b = load(UNITS "  distribution: buckets\n", err);
    ASSERT_EQ(conf_pool_bucket_plan(&a->pools[0], &b->pools[0], add_move, &mv), CHASH_ENOTSUP);
    conf_free(b);
    b = load(UNITS "  distribution: ring\n", err);
    ASSERT_EQ(conf_pool_bucket_plan(&a->pools[0], &b->pools[0], add_move, &mv), CHASH_ENOTSUP);
    conf_free(b);
    conf_free(a);
}

int main(void) {
    test_defaults();
    test_int_ranges();
    test_messages();
    test_markdown();
    test_replication();
    test_topology_keys();
    test_cluster_keys();
    test_ring_live();
    test_bucket_keys();
    test_bucket_errors();
    test_bucket_plan();
    TEST_DONE();
}
