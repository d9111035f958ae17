/*
 * config.h - twemproxy (nutcracker) YAML configuration, as is, plus our keys.
 *
 * The file is a map of pools; each pool has one listen address and its
 * servers. conf_parse_with checks every key and value and reports the first
 * problem as "FILE:LINE: message"; the result is read-only afterwards and
 * shared by all workers. The keys are one table in config.c, which also
 * prints their docs (conf_keys_markdown).
 */
#ifndef PROXY_CONFIG_H
#define PROXY_CONFIG_H

#include "acl.h"
#include "tls.h"

#include <chash.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define CONF_ERR_MAX 512
/* The most copies `replication` may ask for. */
#define CONF_REPLICATION_MAX 16u
/* The most replicas a shard may have that the proxy sends reads to. */
#define CONF_REPLICAS_MAX 8u

typedef enum conf_dist {
    CONF_DIST_KETAMA,  /* nutcracker's ring: the library's twemproxy preset */
    CONF_DIST_MODULA,  /* nutcracker's modula: CHASH_ALGO_MODULO */
    CONF_DIST_RANDOM,  /* any live server, per request */
    CONF_DIST_ALGO,    /* one of the library's algorithms, native scheme */
    /* In front of a Redis Cluster: the servers: are seed nodes, and the
     * pool's servers are the cluster's shards as the topology finds them
     * (topology.c), keys by slot (the cluster's own placement). */
    CONF_DIST_CLUSTER,
} conf_dist;

/* What a pool does with the keys of a server that keeps failing: the
 * CAP/PACELC choice, made per pool (docs/proxy.md). */
typedef enum conf_failure {
    CONF_FAIL_EJECT,   /* nutcracker: with auto_eject_hosts, the ring is rebuilt
                        * without it (its keys and some others move) */
    CONF_FAIL_ERROR,   /* consistency: its keys get an error until it is back */
    CONF_FAIL_REROUTE, /* availability: its keys go to their ring successors */
} conf_failure;

/* Where a Redis pool's reads go (`read_from`): the PACELC "else", latency
 * against consistency (docs/proxy.md). */
typedef enum conf_read {
    CONF_READ_PRIMARY,        /* every command to the shard's primary */
    CONF_READ_PREFER_REPLICA, /* reads to a usable replica, else the primary */
    CONF_READ_REPLICA,        /* reads to a usable replica, else an error */
} conf_read;

typedef struct conf_addr {
    struct sockaddr_storage sa;
    socklen_t sa_len;
    bool is_unix;
} conf_addr;

typedef struct conf_server {
    char *text;      /* the line as written */
    char *name;      /* node name on the ring (nutcracker's server name) */
    char *host;      /* host, or the unix socket path */
    int port;        /* 0 for a unix socket */
    uint32_t weight;
    bool has_name;   /* an explicit name was given */
    conf_addr addr;
    unsigned line;
} conf_server;

/* distribution: buckets - one sub-range of bucket_table after its weighted
 * splits, pinned to a server. */
typedef struct conf_bucket_range {
    uint32_t first, last; /* inclusive */
    size_t server;        /* index in conf_pool.servers */
    unsigned line;        /* of its bucket_table entry */
} conf_bucket_range;

/* distribution: buckets - one entry of bucket_overrides. */
typedef struct conf_bucket_override {
    char *key;     /* NUL-terminated, as written */
    size_t server; /* index in conf_pool.servers */
    unsigned line;
} conf_bucket_override;

typedef struct conf_pool {
    char *name;
    unsigned line;
    char *listen;   /* as written */
    conf_addr listen_addr;
    int listen_mode; /* unix socket permissions, or -1 */
    chash_hash hash;
    char hash_tag[4];
    conf_dist dist;
    chash_algo algo; /* CONF_DIST_ALGO */
    int64_t timeout_ms; /* -1: wait forever */
    int backlog;
    bool preconnect;
    bool redis;
    /* The servers' password (AUTH on connect), NULL: none; without users,
     * also the one clients must AUTH with. */
    char *redis_auth;
    size_t redis_auth_len;
    /* ours (Redis): the clients' users (acl.h), names unique; user_count 0:
     * none (redis_auth, or no password, as nutcracker) */
    acl_user *users;
    size_t user_count;
    int redis_db;
    uint32_t server_connections;
    uint32_t client_connections; /* 0: unlimited */
    bool auto_eject_hosts;
    int64_t server_retry_timeout_ms;
    uint32_t server_failure_limit;
    bool tcpkeepalive;
    bool reuseport;
    conf_failure on_failure;
    /* ours: after a reload, for this many ms, a key whose owner changed is
     * first moved from its previous owner (warmup.c); 0: off */
    int64_t warmup_ms;
    /* ours (memcached): copies of each key, on the first `replication`
     * servers of its ring order (mcrepl.c); 1: one copy, nutcracker's way */
    uint32_t replication;
    bool refuse_admin_commands; /* ours: see command.h CMD_ADMIN */
    /* ours (Redis): shards that are Sentinel groups, named by their servers'
     * names (topology.c); host:port of each sentinel, name unused */
    conf_server *sentinels;
    size_t sentinel_count;
    char *sentinel_username, *sentinel_password; /* NULL: none */
    /* ours (Redis): replicas listed by hand, each with its shard's name */
    conf_server *replicas;
    size_t replica_count;
    conf_read read_from;
    uint64_t replica_max_lag;        /* bytes behind the primary a replica may be */
    uint32_t min_replicas_ack;       /* a write counts once this many replicas have it */
    int64_t min_replicas_ack_timeout_ms;
    int64_t failover_wait_ms;        /* a request for a shard without a primary waits */
    int64_t topology_check_interval_ms;
    /* ours: limits (see docs/proxy.md) */
    uint64_t max_bulk_length;
    uint32_t max_arguments;
    uint32_t max_key_length;
    uint32_t max_pipeline;
    uint64_t max_client_buffer;
    /* ours: TLS towards the clients (tls.h); tls NULL: plaintext */
    char *tls_cert_file, *tls_key_file, *tls_ca_cert_file;
    tls_auth tls_auth_clients;
    unsigned tls_protocols; /* TLS_PROTO_* */
    char *tls_ciphers, *tls_ciphersuites;
    int64_t tls_handshake_timeout_ms;
    uint32_t tls_max_handshakes; /* per worker */
    tls_ctx *tls;
    /* ...and towards the servers: server_tls_ctx NULL: plaintext */
    bool server_tls;
    char *server_tls_ca_cert_file, *server_tls_cert_file, *server_tls_key_file;
    char *server_tls_name; /* NULL: each server's host as written */
    tls_ctx *server_tls_ctx;
    /* ours: distribution: buckets (conf_pool_ring applies them) */
    uint32_t bucket_count;
    chash_bucket_by bucket_by;
    conf_bucket_range *bucket_ranges; /* sorted by first, none overlapping */
    size_t bucket_range_count;
    conf_bucket_override *bucket_overrides; /* no two match the same key */
    size_t bucket_override_count;
    conf_server *servers;
    size_t server_count;
    /* distribution: redis-cluster - the nodes the proxy first asks for the
     * slot map (the servers: as written); servers then holds
     * cluster_max_shards entries "shard-0"... with no address, which the
     * topology gives the cluster's shards in the order it meets them. */
    conf_server *seeds;
    size_t seed_count;
    uint32_t cluster_max_shards;
    /* Per server, shared by every thread using this configuration, and the
     * one part of it that changes: what this proxy and its fleet say of the
     * server's health (CONF_VERDICT_* bits; health.c and fleet.c). */
    _Atomic unsigned char *verdicts;
} conf_pool;

/* conf_pool.verdicts: a worker of this proxy marked the server down (and
 * no probe has answered since); the fleet has it down (some live proxy
 * says so in etcd). */
#define CONF_VERDICT_LOCAL 1u
#define CONF_VERDICT_FLEET 2u

typedef struct conf {
    conf_pool *pools;
    size_t pool_count;
} conf;

/* How the loader turns host names into addresses; a zero field means the
 * default. */
typedef struct conf_options {
    /* Fills *out for host:port (is_passive: a listen address) and returns 0, or
     * returns -1 with a static reason in *why. NULL: getaddrinfo. Tests and
     * fuzzers use it to stay off the network. */
    int (*resolve)(void *user, const char *host, int port, bool is_passive, conf_addr *out,
                   const char **why);
    void *user;
    /* The listen address pool `pool` takes instead of its `listen:` (the
     * text of a listen value), or NULL to keep it. NULL: none replaced.
     * A fleet's proxies share the pools' text, but not always a host. */
    const char *(*listen_for)(void *user, const char *pool);
    /* The TLS files are not read and no context is built (tls and
     * server_tls_ctx stay NULL): for a coordinator checking pools it does
     * not run, whose files are on other hosts, and for fuzzers. */
    bool skip_files;
} conf_options;

/* Reads and parses a file, as `chash-proxy -t` does: conf_load_with with
 * all defaults. */
int conf_load(const char *path, conf **out, char *err, size_t err_len);
/* Parses YAML text; `path` only names the file in messages. On error returns
 * -1, leaves *out alone and writes "PATH:LINE: message" to err. Resolves host
 * names as opt says (NULL: all defaults). */
int conf_parse_with(const conf_options *opt, const char *text, size_t len, const char *path,
                    conf **out, char *err, size_t err_len);
/* conf_parse_with on the contents of a file. */
int conf_load_with(const conf_options *opt, const char *path, conf **out, char *err,
                   size_t err_len);
void conf_free(conf *c);

/* The files a pool reads besides the configuration (its TLS certificates
 * and keys): up to CONF_POOL_FILES_MAX paths into out, their count. */
#define CONF_POOL_FILES_MAX 6
size_t conf_pool_files(const conf_pool *p, const char *out[CONF_POOL_FILES_MAX]);

/* Prints the pool keys as the markdown table of docs/proxy.md (`chash-proxy
 * --config-keys`): name, values and limits, default, protocol, origin and
 * meaning, from the table the parser reads. */
void conf_keys_markdown(FILE *out);

/* The library settings that place keys as this pool does (nutcracker's
 * ketama and modula are the twemproxy scheme; ours the native one). */
void conf_pool_chash_config(const conf_pool *p, chash_config *out);
/* nutcracker keeps a pool's servers sorted by name, shorter names first;
 * modula's slots and ketama's tie-breaks follow that order. qsort
 * comparator over `const conf_server *` elements. */
int conf_server_order(const void *a, const void *b);

/* True when a and b (of two configurations) are the same server: the same
 * name at the same address, so the same keys are there. */
bool conf_server_same(const conf_server *a, const conf_server *b);

/*
 * conf_pool_ring_live - a new ring over the pool's live servers, placed as the
 * pool says (conf_pool_chash_config) and added in nutcracker's order
 * (conf_server_order), so every builder of a pool's ring agrees.
 *
 * is_live[i] says whether cp->servers[i] is on the ring; NULL: all are.
 * node_server, when not NULL, has room for cp->server_count entries and gets
 * for each ring node (0 .. chash_node_count(*out) - 1) the index of its
 * server in cp->servers. With no live server the ring is empty.
 * The caller frees *out with chash_free. Returns CHASH_OK, or the library's
 * error (CHASH_ENOMEM...) with *out NULL and node_server unchanged.
 * Cost: O(n log n) for n live servers, plus the algorithm's build.
 */
int conf_pool_ring_live(const conf_pool *cp, const bool *is_live, chash **out,
                        uint32_t *node_server);
/* The ring as configured, every server on it: conf_pool_ring_live(cp, NULL,
 * out, NULL). */
int conf_pool_ring(const conf_pool *cp, chash **out);

/* One step of a bucket plan: a run of buckets, or one overridden key, whose
 * server changes. Names and key point into the pools' rings and conf. */
typedef struct conf_bucket_move {
    uint32_t first, last; /* the buckets (inclusive); unused for a key */
    const char *key;      /* an overridden key that moves; NULL: buckets */
    const char *from, *to;
    size_t from_len, to_len;
} conf_bucket_move;

/* Called per move, buckets first (ascending), then keys; non-zero stops. */
typedef int (*conf_bucket_move_fn)(void *user, const conf_bucket_move *move);

/*
 * conf_pool_bucket_plan - the exact plan between two bucket pools (their
 * rings as conf_pool_ring builds them): every maximal run of buckets whose
 * server changes (chash_bucket_diff), then every key of either pool's
 * bucket_overrides whose server changes (an overridden key does not follow
 * its bucket, so it is listed on its own). Returns 0, CHASH_ENOTSUP when
 * the two cannot be compared bucket by bucket (not both buckets, or
 * another bucket count, bucket_by, hash or hash_tag), another chash error
 * (CHASH_ENOMEM), or the first non-zero value fn returned (make it
 * positive). Cost: two ring builds, O(buckets * name length + overrides).
 */
int conf_pool_bucket_plan(const conf_pool *old, const conf_pool *now, conf_bucket_move_fn fn,
                          void *user);

/* True when the two pools' bucket settings place keys alike (the same
 * bucket count and rule, table and overrides, by server name): with the same
 * servers and distribution, nothing moved. Cost: O(table + overrides). */
bool conf_pool_buckets_same(const conf_pool *a, const conf_pool *b);

/* "buckets 50-74: s2 -> s4", "bucket 7: s1 -> s3" or "key user42: s1 -> s3"
 * into buf (always terminated). Returns what snprintf returns. */
int conf_bucket_move_text(const conf_bucket_move *move, char *buf, size_t len);

/* True when the pool's shards have replicas the proxy knows of (listed or
 * from Sentinel): topology.c watches them. */
static inline bool conf_pool_has_topology(const conf_pool *p) {
    return p->sentinel_count > 0 || p->replica_count > 0 || p->dist == CONF_DIST_CLUSTER;
}

static inline bool conf_pool_is_cluster(const conf_pool *p) { return p->dist == CONF_DIST_CLUSTER; }

/* Text of a conf_dist / algorithm for messages and stats. */
const char *conf_dist_name(const conf_pool *p);

#endif
