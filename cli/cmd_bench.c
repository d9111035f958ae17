/*
 * cmd_bench.c - `chash bench`: lookup cost of our ring beside, in the same
 * run and on the same keys, the bare CRC32 of each key (the floor: hashing
 * alone) and a plain binary-search ring over the same points (the textbook
 * structure). Also build time, bytes per point and the load spread.
 *
 * Every pass runs all contenders back to back, and each figure is the median
 * over passes, so noise from the other core hits them alike. Never asserts.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: chash bench [--keys K] [--passes P] [--json]\n"
    "\n"
    "For N in 10, 100, 1000 and V in 50, 160, with schemes native and groupcache:\n"
    "ns per lookup over K pre-generated keys key:0 .. key:K-1 (default 1000000),\n"
    "beside the bare CRC32 of the same keys and a plain binary-search ring over the\n"
    "same points; build time; bytes per point; max/mean load. Figures are medians of\n"
    "P passes (default 5). --json prints one JSON object a row.\n";

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
    chash_config cfg = {.scheme = scheme, .vnodes = vnodes};
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

int cmd_bench(int argc, char **argv) {
    enum { OPT_KEYS = CLI_OPT_FIRST_FREE, OPT_PASSES, OPT_JSON, OPT_HELP };
    static const struct option longopts[] = {
        {"keys", required_argument, NULL, OPT_KEYS},
        {"passes", required_argument, NULL, OPT_PASSES},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "bench";
    uint64_t key_count = 1000000, passes = 5;
    bool json = false;
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_HELP: fputs(help, stdout); return 0;
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
