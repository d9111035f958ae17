/*
 * cmd_lookup.c - `chash lookup`: print `key<TAB>node` for each key, from the
 * arguments or else from stdin (one key a line, the newline not part of it).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: chash lookup [--algo A] [--scheme S] [--vnodes V] [--hash H]\n"
    "                    [--hash-tag XY] (--nodes N | --names a,b,c | --nodes-file F\n"
    "                    [--pool P]) [--replicas n] [KEY...]\n"
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
    "--hash picks the key hash (twemproxy's names: md5, fnv1a_64, crc32a, ...);\n"
    "--hash-tag XY hashes only what lies between X and Y, as twemproxy's hash_tag.\n";

static int print_one(const chash *c, const char *key, size_t key_len, size_t replicas,
                     size_t *buf) {
    uint32_t bucket;
    bool has_bucket = chash_bucket_of(c, key, key_len, &bucket) == CHASH_OK;
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

int cmd_lookup(int argc, char **argv) {
    enum { OPT_REPLICAS = CLI_OPT_FIRST_FREE, OPT_HELP };
    static const struct option longopts[] = {
        CLI_PLACEMENT_LONG_OPTIONS,
        {"replicas", required_argument, NULL, OPT_REPLICAS},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    cli_placement p = {.config = CHASH_CONFIG_INIT};
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
        if (opt == '?') return cli_bad_option("lookup", argc, argv);
        if (!cli_placement_option("lookup", &p, opt, optarg)) return CLI_EXIT_USAGE;
    }
    if (p.membership_flags == 0)
        return cli_usage_error("lookup", "say which nodes: --nodes N, --names or --nodes-file");

    cli_nodes nodes;
    if (!cli_placement_nodes("lookup", &p, 0, &nodes)) return CLI_EXIT_USAGE;
    chash *c = NULL;
    bool built = cli_build("lookup", &p.config, &nodes, &c);
    cli_nodes_free(&nodes);
    if (!built) return CLI_EXIT_USAGE;
    if (replicas > 1 && chash_node_count(c) > 0) {
        size_t probe[1], found;
        if (chash_lookup_n(c, "", 0, 1, probe, &found) == CHASH_ENOTSUP) {
            chash_free(c);
            return cli_usage_error("lookup", "--replicas: the %s algorithm has no replica order",
                                   chash_algo_name(p.config.algo));
        }
    }
    if (replicas > chash_node_count(c)) replicas = chash_node_count(c);

    size_t *buf = malloc((size_t)replicas * sizeof *buf);
    int rc = buf ? 0 : cli_fail("lookup", "out of memory");
    if (rc == 0 && optind < argc) {
        for (int i = optind; i < argc && rc == 0; i++)
            rc = print_one(c, argv[i], strlen(argv[i]), (size_t)replicas, buf);
    } else if (rc == 0) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while (rc == 0 && (got = getline(&line, &cap, stdin)) >= 0) {
            size_t len = (size_t)got;
            if (len && line[len - 1] == '\n') len--;
            rc = print_one(c, line, len, (size_t)replicas, buf);
        }
        free(line);
    }
    free(buf);
    chash_free(c);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cli_fail("lookup", "write error on stdout");
    return rc;
}
