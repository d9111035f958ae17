/*
 * cmd_lookup.c - `chash lookup`: print `key<TAB>node` for each key, from the
 * arguments or else from stdin (one key a line, the newline not part of it).
 * With buckets a third column gives the bucket; for a Redis Cluster it is
 * the slot, and a slot its slot table gives to no primary prints node "-".
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "slot_table.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* For each step of asking a cluster node: connecting, each reply. */
#define CLUSTER_TIMEOUT_MS 5000

static const char help[] =
    "usage: chash lookup [--algo A] [--scheme S] [--vnodes V] [--hash H]\n"
    "                    [--hash-tag XY] (--nodes N | --names a,b,c | --nodes-file F\n"
    "                    [--pool P]) [--replicas n] [KEY...]\n"
    "       chash lookup --scheme redis-cluster (--nodes FILE | --cluster HOST:PORT)\n"
    "                    [KEY...]\n"
    "\n"
    "Prints 'key<TAB>node' for each KEY, or for each line of stdin when no KEY is\n"
    "given. With --replicas n, prints n distinct nodes in preference order,\n"
    "comma-separated (the owner first; ring, rendezvous, multiprobe, bounded and\n"
    "buckets have one). --nodes N names nodes node-0 .. node-(N-1); a nodes file holds\n"
    "'name [weight]' lines. Defaults: ring, native, 160 vnodes.\n"
    "\n"
    "Algorithms (docs/algorithms.md): ring, modulo, jump, rendezvous, maglev\n"
    "[--maglev-size PRIME, default 65537], multiprobe [--probes K, default 21],\n"
    "bounded [--epsilon E, default 0.25; lookup alone gives the ring's owner, as no\n"
    "loads are known], memento, buckets [--buckets B, default 100; --bucket-by hash\n"
    "(the key hash mod B, the default) or digits (the key's trailing digits, as many\n"
    "as B - 1 has); a third column gives each key's bucket].\n"
    "\n"
    "Schemes: native, groupcache, and the drop-in presets, which place keys exactly\n"
    "as their peer does (docs/compat.md):\n"
    "  ketama     libmemcached weighted ketama; names are 'host:port'\n"
    "  twemproxy  nutcracker ketama; the nodes file may also hold its\n"
    "             'host:port:weight [name]' lines or be a nutcracker YAML config\n"
    "             (--pool P picks a pool; its hash, hash_tag and distribution apply\n"
    "             unless --hash, --hash-tag or --algo say otherwise)\n"
    "  nginx      'hash $key consistent'; the nodes file may hold 'server ADDR\n"
    "             weight=N;' lines; names are the server addresses\n"
    "  redis-cluster  Redis Cluster's hash slots (--algo buckets implied): prints\n"
    "             'key<TAB>node<TAB>slot', the node 'ip:port', or '-' for a slot no\n"
    "             primary serves. The slot table: --nodes FILE (or --nodes-file),\n"
    "             CLUSTER NODES output or a nodes.conf; or --cluster HOST:PORT, a\n"
    "             live node asked CLUSTER SHARDS (CLUSTER SLOTS before Redis 7).\n"
    "             With --names a,b and no table, slots go by rendezvous\n"
    "--hash picks the key hash (twemproxy's names: md5, fnv1a_64, crc32a, ...);\n"
    "--hash-tag XY hashes only what lies between X and Y, as twemproxy's hash_tag.\n";

/* pins: the buckets a slot table gave an owner (NULL: no table). */
static int print_one(const chash *c, const uint32_t *pins, const char *key, size_t key_len,
                     size_t replicas, size_t *buf) {
    uint32_t bucket;
    bool has_bucket = chash_bucket_of(c, key, key_len, &bucket) == CHASH_OK;
    if (has_bucket && pins && pins[bucket] == CLI_NO_OWNER) {
        fwrite(key, 1, key_len, stdout);
        printf("\t-\t%u\n", bucket);
        return 0;
    }
    size_t found = 1;
    int rc = replicas > 1 ? chash_lookup_n(c, key, key_len, replicas, buf, &found)
                          : chash_lookup(c, key, key_len, &buf[0]);
    if (rc != CHASH_OK) return cli_fail("lookup", "%s", chash_strerror(rc));
    fwrite(key, 1, key_len, stdout);
    for (size_t i = 0; i < found; i++) {
        const void *name;
        size_t name_len;
        chash_node(c, buf[i], &name, &name_len, NULL);
        fputc(i == 0 ? '\t' : ',', stdout);
        fwrite(name, 1, name_len, stdout);
    }
    if (has_bucket) printf("\t%u", bucket);
    fputc('\n', stdout);
    return 0;
}

/* The slot table of the cluster `address` belongs to, as nodes and pins. */
static bool cluster_nodes(const char *address, cli_nodes *out) {
#ifdef CHASH_HAVE_CLUSTER_REPLY
    slot_table map;
    slot_table_error err = {0};
    if (!slot_table_init(&map)) {
        cli_fail("lookup", "out of memory");
        return false;
    }
    bool ok = slot_table_query(address, CLUSTER_TIMEOUT_MS, &map, &err);
    if (!ok) cli_fail("lookup", "%s", err.why);
    if (ok) ok = cli_nodes_from_cluster("lookup", &map, out);
    slot_table_free(&map);
    return ok;
#else
    (void)out;
    cli_fail("lookup", "--cluster %s: this chash was built without the RESP reader "
                       "(libyaml-dev missing); use --nodes with CLUSTER NODES output", address);
    return false;
#endif
}

int cmd_lookup(int argc, char **argv) {
    enum { OPT_REPLICAS = CLI_OPT_FIRST_FREE, OPT_CLUSTER, OPT_HELP };
    static const struct option longopts[] = {
        CLI_PLACEMENT_LONG_OPTIONS,
        {"replicas", required_argument, NULL, OPT_REPLICAS},
        {"cluster", required_argument, NULL, OPT_CLUSTER},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    cli_placement p = {.config = CHASH_CONFIG_INIT};
    const char *cluster = NULL;
    uint64_t replicas = 1;
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == OPT_HELP) {
            fputs(help, stdout);
            return 0;
        }
        if (opt == OPT_REPLICAS) {
            if (!cli_parse_u64("lookup", "--replicas", optarg, 1, 1000000, &replicas))
                return CLI_EXIT_USAGE;
            continue;
        }
        if (opt == OPT_CLUSTER) {
            cluster = optarg;
            continue;
        }
        if (opt == '?') return cli_bad_option("lookup", argc, argv);
        if (!cli_placement_option("lookup", &p, opt, optarg)) return CLI_EXIT_USAGE;
    }
    if (cluster) {
        if (p.membership_flags)
            return cli_usage_error("lookup", "give only one of --cluster, --nodes, --names and "
                                             "--nodes-file");
        if (p.has_scheme && p.config.scheme != CHASH_SCHEME_REDIS_CLUSTER)
            return cli_usage_error("lookup", "--cluster asks a Redis Cluster: it goes with "
                                             "--scheme redis-cluster");
        p.config.scheme = CHASH_SCHEME_REDIS_CLUSTER;
        if (!p.has_algo) p.config.algo = CHASH_ALGO_BUCKETS;
    } else if (p.membership_flags == 0) {
        return cli_usage_error("lookup", "say which nodes: --nodes N, --names or --nodes-file");
    }
    bool is_redis = p.config.scheme == CHASH_SCHEME_REDIS_CLUSTER;
    if (is_redis && replicas > 1)
        return cli_usage_error("lookup", "--replicas: a Redis Cluster's replicas are its own "
                                         "(CLUSTER SHARDS), not a placement's order");

    cli_nodes nodes;
    if (cluster ? !cluster_nodes(cluster, &nodes) : !cli_placement_nodes("lookup", &p, 0, &nodes))
        return cluster ? CLI_EXIT_FAILURE : CLI_EXIT_USAGE;
    chash *c = NULL;
    bool built = cli_build("lookup", &p.config, &nodes, &c);
    /* Kept for printing "-": the library gives an unpinned slot an owner. */
    uint32_t *pins = nodes.bucket_owner;
    nodes.bucket_owner = NULL;
    cli_nodes_free(&nodes);
    if (!built) {
        free(pins);
        return CLI_EXIT_USAGE;
    }
    if (replicas > 1 && chash_node_count(c) > 0) {
        size_t probe[1], found;
        if (chash_lookup_n(c, "", 0, 1, probe, &found) == CHASH_ENOTSUP) {
            chash_free(c);
            return cli_usage_error("lookup", "--replicas: the %s algorithm has no replica order",
                                   chash_algo_name(p.config.algo));
        }
    }
    if (replicas > chash_node_count(c)) replicas = chash_node_count(c);

    size_t *buf = malloc((size_t)(replicas ? replicas : 1) * sizeof *buf);
    int rc = buf ? 0 : cli_fail("lookup", "out of memory");
    if (rc == 0 && optind < argc) {
        for (int i = optind; i < argc && rc == 0; i++)
            rc = print_one(c, pins, argv[i], strlen(argv[i]), (size_t)replicas, buf);
    } else if (rc == 0) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while (rc == 0 && (got = getline(&line, &cap, stdin)) >= 0) {
            size_t len = (size_t)got;
            if (len && line[len - 1] == '\n') len--;
            rc = print_one(c, pins, line, len, (size_t)replicas, buf);
        }
        free(line);
    }
    free(buf);
    free(pins);
    chash_free(c);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cli_fail("lookup", "write error on stdout");
    return rc;
}
