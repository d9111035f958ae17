/*
 * cmd_bench.c - `chash bench`: lookup cost of our ring beside, in the same
 * run and on the same keys, the bare CRC32 of each key (the floor: hashing
 * alone) and a plain binary-search ring over the same points (the textbook
 * structure). Also build time, bytes per point and the load spread.
 *
 * Every pass runs all contenders back to back, and each figure is the median
 * over passes, so noise from the other core hits them alike. Never asserts.
 *
 * With --algo, the algorithms side by side instead (bench_algo): for each
 * node count, lookup cost, state bytes, build time, balance and the keys
 * moved by one add and one remove against the minimum.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: chash bench [--keys K] [--passes P] [--json]\n"
    "       chash bench --algo all|A[,A...] [--keys K] [--passes P] [--json]\n"
    "                   [--maglev-size M] [--probes K] [--epsilon E]\n"
    "\n"
    "For N in 10, 100, 1000 and V in 50, 160, with schemes native and groupcache:\n"
    "ns per lookup over K pre-generated keys key:0 .. key:K-1 (default 1000000),\n"
    "beside the bare CRC32 of the same keys and a plain binary-search ring over the\n"
    "same points; build time; bytes per point; max/mean load. Figures are medians of\n"
    "P passes (default 5). --json prints one JSON object a row.\n"
    "\n"
    "With --algo, the algorithms side by side (native scheme, weight 1, defaults\n"
    "otherwise), for N in 10, 100, 1000, 10000: ns per lookup (key hash included;\n"
    "median of P passes), bytes of state, build time, max/mean load over K keys, and\n"
    "the keys moved by adding one node and by removing one (node-<N/2>; jump: the\n"
    "last) as a multiple of the minimum, K/(N+1) and K/N. bounded places every key\n"
    "with chash_lookup_bounded and acquires it, as live load would; its lookups are\n"
    "timed against those loads. memento-10% is memento after removing every tenth\n"
    "node. O(N)-per-lookup cells (rendezvous at N >= 1000) use fewer keys, and say\n"
    "how many.\n";

typedef struct keyset {
    char *bytes;
    uint32_t *offsets; /* key i is bytes[offsets[i] .. offsets[i+1]) */
    size_t count;
} keyset;

static bool keyset_make(keyset *k, size_t count) {
    k->count = count;
    k->offsets = malloc((count + 1) * sizeof *k->offsets);
    k->bytes = malloc(count * 24 + 1);
    if (!k->offsets || !k->bytes) return false;
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        k->offsets[i] = (uint32_t)at;
        at += (size_t)snprintf(k->bytes + at, 24, "key:%zu", i);
    }
    k->offsets[count] = (uint32_t)at;
    return true;
}

/* The textbook ring: sorted hashes, binary search, owner array. */
typedef struct bsearch_ring {
    uint32_t *hashes;
    size_t *owners;
    size_t count;
} bsearch_ring;

static bool bsearch_ring_from(const chash *c, bsearch_ring *r) {
    r->count = chash_point_count(c);
    r->hashes = malloc(r->count * sizeof *r->hashes);
    r->owners = malloc(r->count * sizeof *r->owners);
    if (!r->hashes || !r->owners) return false;
    for (size_t i = 0; i < r->count; i++) chash_point(c, i, &r->hashes[i], &r->owners[i]);
    return true;
}

static size_t bsearch_ring_lookup(const bsearch_ring *r, uint32_t h) {
    size_t lo = 0, hi = r->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->hashes[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return r->owners[lo == r->count ? 0 : lo];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct row {
    const char *algo;
    const char *scheme;
    size_t nodes;
    uint32_t vnodes;
    double ns_per_lookup;
    double build_ms;
    double bytes_per_point;
    double max_over_mean;
    double stddev_over_mean;
} row;

static void print_row(const row *r, bool json) {
    if (json) {
        printf("{\"bench\":\"lookup\",\"algo\":\"%s\",\"scheme\":\"%s\",\"nodes\":%zu,"
               "\"vnodes\":%u,\"ns_per_lookup\":%.2f,\"lookups_per_s\":%.0f",
               r->algo, r->scheme, r->nodes, r->vnodes, r->ns_per_lookup,
               1e9 / r->ns_per_lookup);
        if (r->build_ms >= 0) printf(",\"build_ms\":%.3f", r->build_ms);
        if (r->bytes_per_point >= 0) printf(",\"bytes_per_point\":%.2f", r->bytes_per_point);
        if (r->max_over_mean >= 0)
            printf(",\"max_over_mean\":%.4f,\"stddev_over_mean\":%.4f", r->max_over_mean,
                   r->stddev_over_mean);
        printf("}\n");
        return;
    }
    printf("%-8s %-11s %6zu %6u %10.1f %12.0f", r->algo, r->scheme, r->nodes, r->vnodes,
           r->ns_per_lookup, 1e9 / r->ns_per_lookup);
    if (r->build_ms >= 0)
        printf(" %9.3f", r->build_ms);
    else
        printf(" %9s", "-");
    if (r->bytes_per_point >= 0)
        printf(" %7.2f", r->bytes_per_point);
    else
        printf(" %7s", "-");
    if (r->max_over_mean >= 0)
        printf(" %8.3f %8.4f\n", r->max_over_mean, r->stddev_over_mean);
    else
        printf(" %8s %8s\n", "-", "-");
}

static volatile size_t sink; /* keeps the measured loops from being optimised away */

static bool bench_one(const keyset *keys, chash_scheme scheme, size_t nodes, uint32_t vnodes,
                      int passes, bool json) {
    cli_nodes members = {0};
    for (size_t i = 0; i < nodes; i++) {
        char name[32];
        int len = snprintf(name, sizeof name, "node-%zu", i);
        if (!cli_nodes_push(&members, name, (size_t)len, 1)) return false;
    }
    chash_config cfg = {.struct_size = sizeof cfg, .scheme = scheme, .vnodes = vnodes};
    double *t_build = calloc((size_t)passes, sizeof *t_build);
    double *t_crc = calloc((size_t)passes, sizeof *t_crc);
    double *t_ring = calloc((size_t)passes, sizeof *t_ring);
    double *t_bs = calloc((size_t)passes, sizeof *t_bs);
    uint64_t *load = calloc(nodes, sizeof *load);
    chash *c = NULL;
    bsearch_ring bs = {0};
    bool ok = t_build && t_crc && t_ring && t_bs && load;
    for (int p = 0; ok && p < passes; p++) {
        chash_free(c);
        c = NULL;
        uint64_t t0 = cli_now_ns();
        ok = cli_build("bench", &cfg, &members, &c);
        t_build[p] = (double)(cli_now_ns() - t0) / 1e6;
    }
    ok = ok && bsearch_ring_from(c, &bs);
    for (int p = 0; ok && p < passes; p++) {
        size_t acc = 0;
        uint64_t t0 = cli_now_ns();
        for (size_t i = 0; i < keys->count; i++)
            acc += chash_crc32(0, keys->bytes + keys->offsets[i],
                               keys->offsets[i + 1] - keys->offsets[i]);
        uint64_t t1 = cli_now_ns();
        for (size_t i = 0; i < keys->count; i++) {
            size_t n;
            chash_lookup(c, keys->bytes + keys->offsets[i], keys->offsets[i + 1] - keys->offsets[i],
                         &n);
            acc += n;
            if (p == 0) load[n]++;
        }
        uint64_t t2 = cli_now_ns();
        for (size_t i = 0; i < keys->count; i++) {
            const char *k = keys->bytes + keys->offsets[i];
            size_t len = keys->offsets[i + 1] - keys->offsets[i];
            acc += bsearch_ring_lookup(&bs, (uint32_t)chash_key_hash(c, k, len));
        }
        uint64_t t3 = cli_now_ns();
        sink = acc;
        t_crc[p] = (double)(t1 - t0) / (double)keys->count;
        t_ring[p] = (double)(t2 - t1) / (double)keys->count;
        t_bs[p] = (double)(t3 - t2) / (double)keys->count;
    }
    if (ok) {
        double mean = (double)keys->count / (double)nodes, max = 0, sq = 0;
        for (size_t i = 0; i < nodes; i++) {
            double r = (double)load[i] / mean;
            if (r > max) max = r;
            sq += (r - 1) * (r - 1);
        }
        size_t points = chash_point_count(c);
        const char *sname = chash_scheme_name(scheme);
        row ring = {"ring", sname, nodes, vnodes, median(t_ring, (size_t)passes),
                    median(t_build, (size_t)passes), (double)chash_memory(c) / (double)points,
                    max, sqrt(sq / (double)nodes)};
        row bsr = {"bsearch", sname, nodes, vnodes, median(t_bs, (size_t)passes), -1,
                   (double)(sizeof(uint32_t) + sizeof(size_t)), max, sqrt(sq / (double)nodes)};
        row crc = {"crc32", sname, nodes, vnodes, median(t_crc, (size_t)passes), -1, -1, -1, 0};
        print_row(&crc, json);
        print_row(&ring, json);
        print_row(&bsr, json);
    }
    free(bs.hashes);
    free(bs.owners);
    chash_free(c);
    free(t_build);
    free(t_crc);
    free(t_ring);
    free(t_bs);
    free(load);
    cli_nodes_free(&members);
    return ok;
}

/* ---- algorithms side by side ------------------------------------------ */

typedef struct algo_row {
    const char *label;
    chash_algo algo;
    size_t nodes;
    uint32_t vnodes;
    double ns_per_lookup, build_ms, max_over_mean, moved_add, moved_remove;
    size_t bytes, keys, lookup_keys;
    const char *removed; /* which node the remove figure dropped */
} algo_row;

static void print_algo_row(const algo_row *r, bool json) {
    if (json) {
        printf("{\"bench\":\"algo\",\"algo\":\"%s\",\"variant\":\"%s\",\"scheme\":\"native\","
               "\"nodes\":%zu,\"vnodes\":%u,\"ns_per_lookup\":%.2f,\"max_over_mean\":%.4f,",
               chash_algo_name(r->algo), r->label, r->nodes, r->vnodes, r->ns_per_lookup,
               r->max_over_mean);
        if (r->moved_add >= 0)
            printf("\"moved_over_ideal_add\":%.4f,\"moved_over_ideal_remove\":%.4f,"
                   "\"removed\":\"%s\",",
                   r->moved_add, r->moved_remove, r->removed);
        if (r->build_ms >= 0) printf("\"build_ms\":%.3f,", r->build_ms);
        printf("\"bytes\":%zu,\"keys\":%zu,\"lookup_keys\":%zu}\n", r->bytes, r->keys,
               r->lookup_keys);
        return;
    }
    printf("%-12s %6zu %6u %10.1f %12zu", r->label, r->nodes, r->vnodes, r->ns_per_lookup,
           r->bytes);
    if (r->build_ms >= 0)
        printf(" %9.3f", r->build_ms);
    else
        printf(" %9s", "-");
    printf(" %9.4f", r->max_over_mean);
    if (r->moved_add >= 0)
        printf(" %8.3f %8.3f", r->moved_add, r->moved_remove);
    else
        printf(" %8s %8s", "-", "-");
    if (r->keys != 1000000 || r->lookup_keys != 1000000) {
        printf("  (%zu keys", r->keys);
        if (r->lookup_keys != r->keys) printf(", %zu timed", r->lookup_keys);
        printf(")");
    }
    printf("\n");
}

static const char *key_at(const keyset *k, size_t i, size_t *len) {
    *len = k->offsets[i + 1] - k->offsets[i];
    return k->bytes + k->offsets[i];
}

/* Owners of keys[0..count-1]; for bounded, each key placed against the
 * loads so far and acquired (a fresh tracker when *loads is NULL). */
static bool owners_of(const chash *c, const keyset *keys, size_t count, bool bounded,
                      chash_loads **loads, uint32_t *out) {
    if (bounded && !*loads && chash_loads_create(c, loads) != CHASH_OK) return false;
    for (size_t i = 0; i < count; i++) {
        size_t len, n;
        const char *k = key_at(keys, i, &len);
        if (bounded) {
            chash_lookup_bounded(c, *loads, k, len, &n);
            chash_loads_acquire(*loads, n);
        } else {
            chash_lookup(c, k, len, &n);
        }
        out[i] = (uint32_t)n;
    }
    return true;
}

/* Keys whose owner, by name, differs between a and b. */
static size_t count_moved(const chash *a, const uint32_t *oa, const chash *b, const uint32_t *ob,
                          size_t count) {
    size_t moved = 0;
    for (size_t i = 0; i < count; i++) {
        const void *na, *nb;
        size_t la, lb;
        chash_node(a, oa[i], &na, &la, NULL);
        chash_node(b, ob[i], &nb, &lb, NULL);
        moved += la != lb || memcmp(na, nb, la) != 0;
    }
    return moved;
}

static double time_lookups(const chash *c, const chash_loads *loads, const keyset *keys,
                           size_t count) {
    size_t acc = 0;
    uint64_t t0 = cli_now_ns();
    for (size_t i = 0; i < count; i++) {
        size_t len, n;
        const char *k = key_at(keys, i, &len);
        if (loads)
            chash_lookup_bounded(c, loads, k, len, &n);
        else
            chash_lookup(c, k, len, &n);
        acc += n;
    }
    uint64_t t1 = cli_now_ns();
    sink = acc;
    return (double)(t1 - t0) / (double)count;
}

static double max_over_mean_of(const uint32_t *owner, size_t count, size_t nodes) {
    uint64_t *load = calloc(nodes, sizeof *load), max = 0;
    if (!load) return -1;
    for (size_t i = 0; i < count; i++) load[owner[i]]++;
    for (size_t i = 0; i < nodes; i++)
        if (load[i] > max) max = load[i];
    free(load);
    return (double)max / ((double)count / (double)nodes);
}

static bool bench_algo(const keyset *keys, const chash_config *base, chash_algo algo,
                       size_t nodes, int passes, bool json) {
    bool bounded = algo == CHASH_ALGO_BOUNDED, ok = false;
    cli_nodes members = {0};
    for (size_t i = 0; i < nodes; i++) {
        char name[32];
        int len = snprintf(name, sizeof name, "node-%zu", i);
        if (!cli_nodes_push(&members, name, (size_t)len, 1)) {
            cli_nodes_free(&members);
            return false;
        }
    }
    chash_config cfg = *base;
    cfg.algo = algo;
    /* O(N) lookups get a budget of node visits instead of all the keys. */
    size_t key_count = keys->count, timed = keys->count;
    if (algo == CHASH_ALGO_RENDEZVOUS) {
        size_t cap = (size_t)(1e9 / (double)nodes), timed_cap = (size_t)(1e8 / (double)nodes);
        if (key_count > cap) key_count = cap;
        if (timed > timed_cap) timed = timed_cap;
    }
    double *t_build = calloc((size_t)passes, sizeof *t_build);
    double *t_lookup = calloc((size_t)passes, sizeof *t_lookup);
    uint32_t *before = malloc(key_count * sizeof *before);
    uint32_t *after = malloc(key_count * sizeof *after);
    chash *c = NULL, *grown = NULL, *shrunk = NULL;
    chash_loads *loads = NULL, *loads_after = NULL;
    if (!t_build || !t_lookup || !before || !after) goto done;
    for (int p = 0; p < passes; p++) {
        chash_free(c);
        c = NULL;
        uint64_t t0 = cli_now_ns();
        if (!cli_build("bench", &cfg, &members, &c)) goto done;
        t_build[p] = (double)(cli_now_ns() - t0) / 1e6;
    }
    if (!owners_of(c, keys, key_count, bounded, &loads, before)) goto done;
    for (int p = 0; p < passes; p++) t_lookup[p] = time_lookups(c, loads, keys, timed);

    uint32_t vnodes = 0;
    if (algo == CHASH_ALGO_RING || bounded) vnodes = cfg.vnodes ? cfg.vnodes : CHASH_VNODES_DEFAULT;
    if (algo == CHASH_ALGO_MULTIPROBE) vnodes = 1;
    char added[32], dropped[32];
    snprintf(added, sizeof added, "node-%zu", nodes);
    snprintf(dropped, sizeof dropped, "node-%zu", algo == CHASH_ALGO_JUMP ? nodes - 1 : nodes / 2);
    algo_row result = {chash_algo_name(algo), algo, nodes, vnodes,
                    median(t_lookup, (size_t)passes), median(t_build, (size_t)passes),
                    max_over_mean_of(before, key_count, nodes), -1, -1, chash_memory(c),
                    key_count, timed, algo == CHASH_ALGO_JUMP ? "last" : "middle"};

    /* One more node, added to a copy as a live system would. */
    if (chash_clone(c, &grown) != CHASH_OK || chash_add(grown, added, strlen(added), 1) != CHASH_OK ||
        !owners_of(grown, keys, key_count, bounded, &loads_after, after))
        goto done;
    result.moved_add = (double)count_moved(c, before, grown, after, key_count) /
                    ((double)key_count / (double)(nodes + 1));
    chash_loads_free(loads_after);
    loads_after = NULL;
    if (chash_clone(c, &shrunk) != CHASH_OK ||
        chash_remove(shrunk, dropped, strlen(dropped)) != CHASH_OK ||
        !owners_of(shrunk, keys, key_count, bounded, &loads_after, after))
        goto done;
    result.moved_remove = (double)count_moved(c, before, shrunk, after, key_count) /
                       ((double)key_count / (double)nodes);
    print_algo_row(&result, json);

    if (algo == CHASH_ALGO_MEMENTO && nodes >= 10) {
        /* Every tenth node gone: the removals the lookup has to walk. */
        for (size_t i = 5; i < nodes; i += 10) {
            char name[32];
            int len = snprintf(name, sizeof name, "node-%zu", i);
            if (chash_remove(c, name, (size_t)len) != CHASH_OK) goto done;
        }
        for (int p = 0; p < passes; p++) t_lookup[p] = time_lookups(c, NULL, keys, timed);
        if (!owners_of(c, keys, key_count, false, NULL, before)) goto done;
        algo_row gone = {"memento-10%", algo, chash_node_count(c), 0,
                         median(t_lookup, (size_t)passes), -1,
                         max_over_mean_of(before, key_count, chash_node_count(c)), -1, -1,
                         chash_memory(c), key_count, timed, ""};
        print_algo_row(&gone, json);
    }
    ok = true;
done:
    chash_loads_free(loads);
    chash_loads_free(loads_after);
    chash_free(c);
    chash_free(grown);
    chash_free(shrunk);
    free(t_build);
    free(t_lookup);
    free(before);
    free(after);
    cli_nodes_free(&members);
    return ok;
}

static int run_algos(const keyset *keys, const cli_placement *p, const chash_algo *algos,
                     size_t algo_count, int passes, bool json) {
    if (!json) {
        printf("# scheme native, weights 1; moved = keys moved / the minimum (K/(N+1) on add, "
               "K/N on remove)\n");
        printf("%-12s %6s %6s %10s %12s %9s %9s %8s %8s\n", "algo", "nodes", "vnodes",
               "ns/lookup", "bytes", "build_ms", "max/mean", "add/min", "rm/min");
    }
    static const size_t node_counts[] = {10, 100, 1000, 10000};
    for (size_t n = 0; n < 4; n++)
        for (size_t a = 0; a < algo_count; a++) {
            if (!bench_algo(keys, &p->config, algos[a], node_counts[n], passes, json))
                return cli_fail("bench", "%s at %zu nodes failed (out of memory?)",
                                chash_algo_name(algos[a]), node_counts[n]);
            fflush(stdout);
        }
    return 0;
}

int cmd_bench(int argc, char **argv) {
    enum { OPT_KEYS = CLI_OPT_FIRST_FREE, OPT_PASSES, OPT_JSON, OPT_HELP };
    static const struct option longopts[] = {
        CLI_PLACEMENT_LONG_OPTIONS,
        {"keys", required_argument, NULL, OPT_KEYS},
        {"passes", required_argument, NULL, OPT_PASSES},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "bench";
    uint64_t key_count = 1000000, passes = 5;
    bool json = false;
    cli_placement p = {.config = CHASH_CONFIG_INIT};
    chash_algo algos[CLI_ALGO_MAX];
    size_t algo_count = 0;
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_HELP: fputs(help, stdout); return 0;
        case CLI_OPT_ALGO:
            if (!cli_parse_algo_list(optarg, algos, &algo_count))
                return cli_usage_error(cmd, "--algo: expected 'all' or a list of distinct "
                                            "names from %s; got '%s'", cli_algo_list(), optarg);
            break;
        case CLI_OPT_MAGLEV_SIZE:
        case CLI_OPT_PROBES:
        case CLI_OPT_EPSILON:
            if (!cli_placement_option(cmd, &p, opt, optarg)) return CLI_EXIT_USAGE;
            break;
        case OPT_KEYS:
            if (!cli_parse_u64(cmd, "--keys", optarg, 1, 100000000, &key_count))
                return CLI_EXIT_USAGE;
            break;
        case OPT_PASSES:
            if (!cli_parse_u64(cmd, "--passes", optarg, 1, 1000, &passes)) return CLI_EXIT_USAGE;
            break;
        case OPT_JSON: json = true; break;
        default: return cli_bad_option(cmd, argc, argv);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    keyset keys = {0};
    if (!keyset_make(&keys, (size_t)key_count)) {
        free(keys.bytes);
        free(keys.offsets);
        return cli_fail(cmd, "out of memory");
    }
    if (algo_count > 0) {
        int arc = run_algos(&keys, &p, algos, algo_count, (int)passes, json);
        free(keys.bytes);
        free(keys.offsets);
        return arc;
    }
    if (!json)
        printf("%-8s %-11s %6s %6s %10s %12s %9s %7s %8s %8s\n", "algo", "scheme", "nodes",
               "vnodes", "ns/lookup", "lookups/s", "build_ms", "B/point", "max/mean",
               "sd/mean");
    static const size_t node_counts[] = {10, 100, 1000};
    static const uint32_t vnode_counts[] = {50, 160};
    static const chash_scheme schemes[] = {CHASH_SCHEME_NATIVE, CHASH_SCHEME_GROUPCACHE};
    int rc = 0;
    for (size_t s = 0; s < 2 && rc == 0; s++)
        for (size_t n = 0; n < 3 && rc == 0; n++)
            for (size_t v = 0; v < 2 && rc == 0; v++)
                if (!bench_one(&keys, schemes[s], node_counts[n], vnode_counts[v], (int)passes,
                               json))
                    rc = cli_fail(cmd, "benchmark failed (out of memory?)");
    free(keys.bytes);
    free(keys.offsets);
    return rc;
}
