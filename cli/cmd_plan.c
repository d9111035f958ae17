/*
 * cmd_plan.c - `chash plan`: the exact migration between two memberships,
 * as the ranges of the key-hash space that change owner (chash_diff), the
 * share each (from -> to) pair carries, and with --keys the actual keys that
 * move. Algorithms without ranges get an estimate from sampled keys, and say
 * so.
 *
 * `chash ownership`: each node's exact share of the key space from the ring's
 * arcs, beside its weighted ideal.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char plan_help[] =
    "usage: chash plan --from FILE --to FILE [--algo A] [--scheme S] [--vnodes V]\n"
    "                  [--keys FILE] [--json]\n"
    "\n"
    "Lists every range of the 32-bit key-hash space whose owner changes between the\n"
    "memberships in the two nodes files, as 'first last from to' lines (inclusive,\n"
    "decimal), after '#' summary lines: the moved fraction of the key space and the\n"
    "share of each (from -> to) pair. Exact for the ring (no sampling). With --keys\n"
    "FILE (one key a line), also the keys that move: 'key<TAB>from<TAB>to'. For\n"
    "other algorithms the fractions are estimated from 1,000,000 sampled keys.\n";

static const char ownership_help[] =
    "usage: chash ownership [--algo A] [--scheme S] [--vnodes V]\n"
    "                       (--nodes N | --names a,b | --nodes-file F) [--json]\n"
    "\n"
    "Each node's exact share of the key-hash space (from the ring's arcs), its\n"
    "weighted ideal share, and the deviation, largest first in the summary.\n";

typedef struct pair_share {
    size_t from, to; /* node indexes in the old / new placement */
    uint64_t hashes;
} pair_share;

typedef struct plan {
    const chash *from, *to;
    pair_share *pairs;
    size_t pair_count, pair_capacity;
    uint64_t moved_hashes;
    size_t range_count;
    FILE *ranges; /* range lines are spooled here, printed after the summary */
    bool json;
} plan;

static const char *node_name(const chash *c, size_t i, size_t *len) {
    const void *name;
    chash_node(c, i, &name, len, NULL);
    return name;
}

static void print_name(FILE *f, const chash *c, size_t i, bool json) {
    size_t len;
    const char *name = node_name(c, i, &len);
    if (json)
        cli_json_string(f, name, len);
    else
        fwrite(name, 1, len, f);
}

static int add_pair(plan *p, size_t from, size_t to, uint64_t hashes) {
    for (size_t i = 0; i < p->pair_count; i++)
        if (p->pairs[i].from == from && p->pairs[i].to == to) {
            p->pairs[i].hashes += hashes;
            return 0;
        }
    if (p->pair_count == p->pair_capacity) {
        size_t cap = p->pair_capacity ? 2 * p->pair_capacity : 16;
        pair_share *n = realloc(p->pairs, cap * sizeof *n);
        if (!n) return 1;
        p->pairs = n;
        p->pair_capacity = cap;
    }
    p->pairs[p->pair_count++] = (pair_share){from, to, hashes};
    return 0;
}

static int on_range(void *user, const chash_range *r) {
    plan *p = user;
    uint64_t size = (uint64_t)r->last - r->first + 1;
    p->moved_hashes += size;
    if (p->json)
        fprintf(p->ranges, "%s{\"first\":%u,\"last\":%u,\"from\":", p->range_count ? "," : "",
                r->first, r->last);
    else
        fprintf(p->ranges, "%u %u ", r->first, r->last);
    print_name(p->ranges, p->from, r->from, p->json);
    fputs(p->json ? ",\"to\":" : " ", p->ranges);
    print_name(p->ranges, p->to, r->to, p->json);
    fputs(p->json ? "}" : "\n", p->ranges);
    p->range_count++;
    return add_pair(p, r->from, r->to, size);
}

static int cmp_pair(const void *a, const void *b) {
    const pair_share *x = a, *y = b;
    return (x->hashes < y->hashes) - (x->hashes > y->hashes);
}

/* Sampled estimate for algorithms without ranges. */
static int sample_pairs(plan *p, uint64_t samples, uint64_t *moved) {
    *moved = 0;
    for (uint64_t i = 0; i < samples; i++) {
        char key[64];
        size_t len = cli_key(1, i, key, sizeof key), a, b, la, lb;
        chash_lookup(p->from, key, len, &a);
        chash_lookup(p->to, key, len, &b);
        const char *na = node_name(p->from, a, &la), *nb = node_name(p->to, b, &lb);
        if (la == lb && memcmp(na, nb, la) == 0) continue;
        (*moved)++;
        if (add_pair(p, a, b, 1)) return 1;
    }
    return 0;
}

static int list_keys(plan *p, const char *path, uint64_t *total, uint64_t *moved) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) return cli_usage_error("plan", "--keys %s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    bool first = true;
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)got, a, b, la, lb;
        if (len && line[len - 1] == '\n') len--;
        (*total)++;
        chash_lookup(p->from, line, len, &a);
        chash_lookup(p->to, line, len, &b);
        const char *na = node_name(p->from, a, &la), *nb = node_name(p->to, b, &lb);
        if (la == lb && memcmp(na, nb, la) == 0) continue;
        (*moved)++;
        if (p->json) {
            printf("%s{\"key\":", first ? "" : ",");
            cli_json_string(stdout, line, len);
            printf(",\"from\":");
            cli_json_string(stdout, na, la);
            printf(",\"to\":");
            cli_json_string(stdout, nb, lb);
            putchar('}');
        } else {
            fwrite(line, 1, len, stdout);
            putchar('\t');
            fwrite(na, 1, la, stdout);
            putchar('\t');
            fwrite(nb, 1, lb, stdout);
            putchar('\n');
        }
        first = false;
    }
    free(line);
    if (f != stdin) fclose(f);
    return 0;
}

static bool load_side(const char *flag, const char *path, const chash_config *cfg, chash **out) {
    cli_nodes nodes;
    if (!cli_nodes_read_file("plan", path, &nodes)) return false;
    bool ok = cli_build("plan", cfg, &nodes, out);
    cli_nodes_free(&nodes);
    (void)flag;
    return ok;
}

int cmd_plan(int argc, char **argv) {
    enum { OPT_FROM = CLI_OPT_FIRST_FREE, OPT_TO, OPT_KEYS, OPT_JSON, OPT_HELP };
    static const struct option longopts[] = {
        CLI_PLACEMENT_LONG_OPTIONS,
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "plan", *from_path = NULL, *to_path = NULL, *keys_path = NULL;
    cli_placement pl = {.config = CHASH_CONFIG_INIT};
    bool json = false;
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_HELP: fputs(plan_help, stdout); return 0;
        case OPT_FROM: from_path = optarg; break;
        case OPT_TO: to_path = optarg; break;
        case OPT_KEYS: keys_path = optarg; break;
        case OPT_JSON: json = true; break;
        case '?': return cli_bad_option(cmd, argc, argv);
        default:
            if (!cli_placement_option(cmd, &pl, opt, optarg)) return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!from_path || !to_path) return cli_usage_error(cmd, "--from FILE and --to FILE are required");
    if (pl.membership_flags)
        return cli_usage_error(cmd, "memberships come from --from and --to files only");

    plan p = {.json = json};
    chash *from = NULL, *to = NULL;
    int rc = 0;
    if (!load_side("--from", from_path, &pl.config, &from) ||
        !load_side("--to", to_path, &pl.config, &to)) {
        chash_free(from);
        return CLI_EXIT_USAGE;
    }
    p.from = from;
    p.to = to;
    char *spool = NULL;
    size_t spool_len = 0;
    p.ranges = open_memstream(&spool, &spool_len);
    if (!p.ranges) {
        rc = cli_fail(cmd, "out of memory");
        goto out;
    }
    bool exact = true;
    double moved_fraction;
    uint64_t samples = 1000000, sampled_moved = 0;
    int drc = chash_diff(from, to, on_range, &p);
    fflush(p.ranges);
    if (drc == CHASH_ENOTSUP) {
        exact = false;
        if (sample_pairs(&p, samples, &sampled_moved)) {
            rc = cli_fail(cmd, "out of memory");
            goto out;
        }
        moved_fraction = (double)sampled_moved / (double)samples;
    } else if (drc != CHASH_OK) {
        rc = cli_fail(cmd, "%s", drc > 0 ? "out of memory" : chash_strerror(drc));
        goto out;
    } else {
        moved_fraction = (double)p.moved_hashes / 4294967296.0;
    }
    qsort(p.pairs, p.pair_count, sizeof *p.pairs, cmp_pair);
    double denom = exact ? 4294967296.0 : (double)samples;
    chash_config cfg = CHASH_CONFIG_INIT;
    chash_get_config(from, &cfg);
    if (json) {
        printf("{\"command\":\"plan\",\"algo\":\"%s\",\"scheme\":\"%s\",\"vnodes\":%u,"
               "\"nodes_from\":%zu,\"nodes_to\":%zu,\"exact\":%s,\"moved_fraction\":%.9f,",
               chash_algo_name(cfg.algo), chash_scheme_name(cfg.scheme), cfg.vnodes,
               chash_node_count(from), chash_node_count(to), exact ? "true" : "false",
               moved_fraction);
        if (!exact) printf("\"sampled_keys\":%llu,", (unsigned long long)samples);
        printf("\"pairs\":[");
        for (size_t i = 0; i < p.pair_count; i++) {
            printf("%s{\"from\":", i ? "," : "");
            print_name(stdout, from, p.pairs[i].from, true);
            printf(",\"to\":");
            print_name(stdout, to, p.pairs[i].to, true);
            printf(",\"fraction\":%.9f}", (double)p.pairs[i].hashes / denom);
        }
        printf("],\"range_count\":%zu,\"ranges\":[", p.range_count);
        fwrite(spool, 1, spool_len, stdout);
        printf("]");
    } else {
        printf("# plan: %zu nodes -> %zu nodes, algo %s, scheme %s, %u vnodes\n",
               chash_node_count(from), chash_node_count(to), chash_algo_name(cfg.algo),
               chash_scheme_name(cfg.scheme), cfg.vnodes);
        if (exact)
            printf("# moved: %.4f%% of the key space, exactly, in %zu ranges\n",
                   100 * moved_fraction, p.range_count);
        else
            printf("# moved: about %.4f%% of keys (%llu sampled keys; %s has no ranges)\n",
                   100 * moved_fraction, (unsigned long long)samples, chash_algo_name(cfg.algo));
        printf("# %-22s %-22s %10s\n", "from", "to", "share");
        for (size_t i = 0; i < p.pair_count; i++) {
            size_t la, lb;
            const char *na = node_name(from, p.pairs[i].from, &la);
            const char *nb = node_name(to, p.pairs[i].to, &lb);
            printf("# %-22.*s %-22.*s %9.4f%%\n", (int)la, na, (int)lb, nb,
                   100.0 * (double)p.pairs[i].hashes / denom);
        }
        fwrite(spool, 1, spool_len, stdout);
    }
    if (keys_path) {
        uint64_t total = 0, moved = 0;
        if (json) printf(",\"keys\":[");
        rc = list_keys(&p, keys_path, &total, &moved);
        if (json)
            printf("],\"keys_total\":%llu,\"keys_moved\":%llu", (unsigned long long)total,
                   (unsigned long long)moved);
        else if (rc == 0)
            printf("# keys: %llu of %llu move\n", (unsigned long long)moved,
                   (unsigned long long)total);
    }
    if (json) printf("}\n");
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cli_fail(cmd, "write error on stdout");
out:
    if (p.ranges) fclose(p.ranges);
    free(spool);
    free(p.pairs);
    chash_free(from);
    chash_free(to);
    return rc;
}

int cmd_ownership(int argc, char **argv) {
    enum { OPT_JSON = CLI_OPT_FIRST_FREE, OPT_HELP };
    static const struct option longopts[] = {
        CLI_PLACEMENT_LONG_OPTIONS,
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "ownership";
    cli_placement pl = {.config = CHASH_CONFIG_INIT};
    bool json = false;
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == OPT_HELP) {
            fputs(ownership_help, stdout);
            return 0;
        }
        if (opt == OPT_JSON) {
            json = true;
            continue;
        }
        if (opt == '?') return cli_bad_option(cmd, argc, argv);
        if (!cli_placement_option(cmd, &pl, opt, optarg)) return CLI_EXIT_USAGE;
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    cli_nodes nodes;
    if (!cli_placement_nodes(cmd, &pl, 10, &nodes)) return CLI_EXIT_USAGE;
    chash *c = NULL;
    bool built = cli_build(cmd, &pl.config, &nodes, &c);
    cli_nodes_free(&nodes);
    if (!built) return CLI_EXIT_USAGE;
    size_t n = chash_node_count(c);
    uint64_t *shares = calloc(n, sizeof *shares), space = 0;
    int rc = shares ? chash_ownership(c, shares, n, &space) : CHASH_ENOMEM;
    if (rc != CHASH_OK) {
        free(shares);
        chash_free(c);
        return cli_usage_error(cmd, "%s", chash_strerror(rc));
    }
    double total_weight = 0, worst = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        chash_node(c, i, NULL, NULL, &w);
        total_weight += w;
    }
    if (json) printf("{\"command\":\"ownership\",\"space\":%llu,\"nodes\":[", (unsigned long long)space);
    else printf("%-24s %6s %12s %12s %10s\n", "node", "weight", "share", "ideal", "deviation");
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        size_t len;
        const char *name = node_name(c, i, &len);
        chash_node(c, i, NULL, NULL, &w);
        double share = (double)shares[i] / (double)space, ideal = w / total_weight;
        double dev = share / ideal - 1;
        if (fabs(dev) > fabs(worst)) worst = dev;
        sq += dev * dev;
        if (json) {
            printf("%s{\"name\":", i ? "," : "");
            cli_json_string(stdout, name, len);
            printf(",\"weight\":%u,\"hashes\":%llu,\"share\":%.9f,\"ideal\":%.9f,"
                   "\"deviation\":%.6f}",
                   w, (unsigned long long)shares[i], share, ideal, dev);
        } else {
            printf("%-24.*s %6u %11.4f%% %11.4f%% %+9.2f%%\n", (int)len, name, w, 100 * share,
                   100 * ideal, 100 * dev);
        }
    }
    if (json)
        printf("],\"max_abs_deviation\":%.6f,\"stddev_deviation\":%.6f}\n", fabs(worst),
               sqrt(sq / (double)n));
    else
        printf("\nlargest deviation from the weighted ideal: %+.2f%%; stddev %.2f%%\n",
               100 * worst, 100 * sqrt(sq / (double)n));
    free(shares);
    chash_free(c);
    if (fflush(stdout) != 0 || ferror(stdout)) return cli_fail(cmd, "write error on stdout");
    return 0;
}
