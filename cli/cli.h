/*
 * cli.h - what the `chash` commands share: option parsing with one-line
 * errors, the membership options every command takes, and key generation.
 * The CLI is a client of the public API only (<chash.h>).
 *
 * Exit codes: 0 success, 1 a failure while running, 2 bad usage or input.
 */
#ifndef CHASH_CLI_H
#define CHASH_CLI_H

#include <chash.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2

/* Prints "chash CMD: message" to stderr and returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "chash CMD: message" to stderr and returns CLI_EXIT_FAILURE. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a decimal integer in [min, max] for `--flag`; prints why not. */
bool cli_parse_u64(const char *cmd, const char *flag, const char *text, uint64_t min,
                   uint64_t max, uint64_t *out);

/* A membership as read from the command line or a nodes file. */
typedef struct cli_nodes {
    char **names;
    size_t *name_lens;
    uint32_t *weights;
    size_t count;
    size_t capacity;
    /* Buckets pinned by what the nodes came from (a Redis Cluster's slot
     * table), or NULL: bucket_owner[b] is a node index or CLI_NO_OWNER. */
    uint32_t *bucket_owner;
    uint32_t bucket_count;
} cli_nodes;

#define CLI_NO_OWNER UINT32_MAX

bool cli_nodes_push(cli_nodes *n, const char *name, size_t len, uint32_t weight);
void cli_nodes_free(cli_nodes *n);
/* Reads `name [weight]` lines into *out (initialised here; free it with
 * cli_nodes_free); '#' starts a comment. Prints errors with the line number. */
bool cli_nodes_read_file(const char *cmd, const char *path, cli_nodes *out);

/* What a nodes file may say besides its nodes: a nutcracker pool's hash,
 * hash_tag and distribution. */
typedef struct cli_file_settings {
    bool has_hash, has_hash_tag, has_algo;
    chash_hash hash;
    char hash_tag[4];
    chash_algo algo;
} cli_file_settings;

/* As cli_nodes_read_file, and also the syntax of the scheme's peer (see
 * nodes.c): twemproxy server lines or a nutcracker YAML config (its pool
 * `pool`, which may be NULL when it has one; settings may be NULL), nginx
 * `server` lines, Redis CLUSTER NODES text (with its slots as pins). */
bool cli_nodes_read_file_as(const char *cmd, const char *path, chash_scheme scheme,
                            const char *pool, cli_file_settings *settings, cli_nodes *out);

/* A Redis Cluster's primaries as nodes (weight 1) and its slot table as
 * bucket pins (slot_table.h); false (after printing why) when out of memory. */
struct slot_table;
bool cli_nodes_from_cluster(const char *cmd, const struct slot_table *map, cli_nodes *out);

/* The options that choose a placement, shared by every command. */
typedef struct cli_placement {
    chash_config config;
    uint64_t node_count; /* --nodes N: node-0 .. node-(N-1) */
    const char *nodes_arg; /* --nodes as given: N, or with redis-cluster a file */
    const char *names_csv;
    const char *nodes_file;
    int membership_flags; /* how many of the three above were given */
    const char *pool;     /* --pool: the pool of a nutcracker YAML nodes file */
    bool has_algo, has_scheme, has_hash, has_hash_tag; /* given on the command line */
} cli_placement;

enum {
    CLI_OPT_ALGO = 1000,
    CLI_OPT_SCHEME,
    CLI_OPT_VNODES,
    CLI_OPT_NODES,
    CLI_OPT_NAMES,
    CLI_OPT_NODES_FILE,
    CLI_OPT_HASH,
    CLI_OPT_HASH_TAG,
    CLI_OPT_POOL,
    CLI_OPT_MAGLEV_SIZE,
    CLI_OPT_PROBES,
    CLI_OPT_EPSILON,
    CLI_OPT_BUCKETS,
    CLI_OPT_BUCKET_BY,
    CLI_OPT_FIRST_FREE
};

#define CLI_PLACEMENT_LONG_OPTIONS                                   \
    {"algo", required_argument, NULL, CLI_OPT_ALGO},                 \
        {"scheme", required_argument, NULL, CLI_OPT_SCHEME},         \
        {"vnodes", required_argument, NULL, CLI_OPT_VNODES},         \
        {"nodes", required_argument, NULL, CLI_OPT_NODES},           \
        {"names", required_argument, NULL, CLI_OPT_NAMES},           \
        {"hash", required_argument, NULL, CLI_OPT_HASH},             \
        {"hash-tag", required_argument, NULL, CLI_OPT_HASH_TAG},     \
        {"pool", required_argument, NULL, CLI_OPT_POOL},             \
        {"maglev-size", required_argument, NULL, CLI_OPT_MAGLEV_SIZE}, \
        {"probes", required_argument, NULL, CLI_OPT_PROBES},         \
        {"epsilon", required_argument, NULL, CLI_OPT_EPSILON},       \
        {"buckets", required_argument, NULL, CLI_OPT_BUCKETS},       \
        {"bucket-by", required_argument, NULL, CLI_OPT_BUCKET_BY},   \
    {                                                                \
        "nodes-file", required_argument, NULL, CLI_OPT_NODES_FILE    \
    }

/* "ring, modulo, jump, ...": every algorithm name, for messages. */
const char *cli_algo_list(void);
/* Room for every algorithm the library names (chash.h has no count). */
#define CLI_ALGO_MAX 16
/* "all" or a comma-separated list of distinct algorithm names into
 * algos[CLI_ALGO_MAX]; false on an unknown or repeated name. */
bool cli_parse_algo_list(const char *arg, chash_algo *algos, size_t *count);

/* Handles a placement option; false (after printing why) on a bad value. */
bool cli_placement_option(const char *cmd, cli_placement *p, int opt, const char *arg);
/* The membership the options name (default_count nodes when none given).
 * Settings of a nutcracker YAML nodes file go to p->config unless the
 * command line gave them; for twemproxy the nodes come in nutcracker's
 * server order (by name, shorter names first). The redis-cluster scheme
 * implies the buckets algorithm, and its --nodes names a CLUSTER NODES
 * file (as --nodes-file does). */
bool cli_placement_nodes(const char *cmd, cli_placement *p, uint64_t default_count,
                         cli_nodes *out);
/* A placement with the options' config and these nodes, their bucket pins
 * applied; prints why not. */
bool cli_build(const char *cmd, const chash_config *config, const cli_nodes *nodes,
               chash **out);

/* Reports getopt's complaint about argv[optind - 1] and returns 2. */
int cli_bad_option(const char *cmd, int argc, char **argv);

/* Writes the i-th generated key for `seed` to buf; returns its length. */
size_t cli_key(uint64_t seed, uint64_t i, char *buf, size_t buf_len);

/* Monotonic clock in nanoseconds. */
uint64_t cli_now_ns(void);

/* Writes s as a JSON string literal (quotes included). */
void cli_json_string(FILE *f, const char *s, size_t len);

int cmd_lookup(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_ownership(int argc, char **argv);
/* `chash fleet` (cmd_fleet.c): built only with the etcd client
 * (CHASH_HAVE_FLEET). */
int cmd_fleet(int argc, char **argv);

#endif
