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
    char *spool;
    size_t spool_len;
    bool json;
    bool is_exact;    /* from ranges; else from `samples` sampled keys */
    uint64_t samples;
    double moved_fraction;
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

/* A key's owner before and after the change. */
typedef struct key_owners {
    size_t from, to;
    const char *from_name, *to_name;
    size_t from_len, to_len;
} key_owners;

/* Looks the key up on both sides; true when its owner (by name) changes. */
static bool key_moves(const plan *p, const char *key, size_t len, key_owners *o) {
    chash_lookup(p->from, key, len, &o->from);
    chash_lookup(p->to, key, len, &o->to);
    o->from_name = node_name(p->from, o->from, &o->from_len);
    o->to_name = node_name(p->to, o->to, &o->to_len);
    return !(o->from_len == o->to_len && memcmp(o->from_name, o->to_name, o->from_len) == 0);
}

/* Sampled estimate for algorithms without ranges. */
static int sample_pairs(plan *p, uint64_t samples, uint64_t *moved) {
    *moved = 0;
    for (uint64_t i = 0; i < samples; i++) {
        char key[64];
        size_t len = cli_key(1, i, key, sizeof key);
        key_owners o;
        if (!key_moves(p, key, len, &o)) continue;
        (*moved)++;
        if (add_pair(p, o.from, o.to, 1)) return 1;
    }
    return 0;
}

/* The moved share and its pairs: exact from the ranges where the algorithm
 * has them (spooled for the output), else estimated from sampled keys. */
static int find_moves(plan *p) {
    int drc = chash_diff(p->from, p->to, on_range, p);
    fflush(p->ranges);
    p->is_exact = drc != CHASH_ENOTSUP;
    if (drc == CHASH_ENOTSUP) {
        uint64_t sampled_moved = 0;
        if (sample_pairs(p, p->samples, &sampled_moved)) return cli_fail("plan", "out of memory");
        p->moved_fraction = (double)sampled_moved / (double)p->samples;
    } else if (drc != CHASH_OK) {
        return cli_fail("plan", "%s", drc > 0 ? "out of memory" : chash_strerror(drc));
    } else {
        p->moved_fraction = (double)p->moved_hashes / 4294967296.0;
    }
    /* No pairs, no array: qsort must not see NULL even for zero items. */
    if (p->pair_count) qsort(p->pairs, p->pair_count, sizeof *p->pairs, cmp_pair);
    return 0;
}

/* What a pair's count is a share of: the hash space, or the samples. */
static double pair_denominator(const plan *p) {
    return p->is_exact ? 4294967296.0 : (double)p->samples;
}

static void print_json_summary(const plan *p, const chash_config *cfg) {
    printf("{\"command\":\"plan\",\"algo\":\"%s\",\"scheme\":\"%s\",\"vnodes\":%u,"
           "\"nodes_from\":%zu,\"nodes_to\":%zu,\"exact\":%s,\"moved_fraction\":%.9f,",
           chash_algo_name(cfg->algo), chash_scheme_name(cfg->scheme), cfg->vnodes,
           chash_node_count(p->from), chash_node_count(p->to), p->is_exact ? "true" : "false",
           p->moved_fraction);
    if (!p->is_exact) printf("\"sampled_keys\":%llu,", (unsigned long long)p->samples);
    printf("\"pairs\":[");
    for (size_t i = 0; i < p->pair_count; i++) {
        printf("%s{\"from\":", i ? "," : "");
        print_name(stdout, p->from, p->pairs[i].from, true);
        printf(",\"to\":");
        print_name(stdout, p->to, p->pairs[i].to, true);
        printf(",\"fraction\":%.9f}", (double)p->pairs[i].hashes / pair_denominator(p));
    }
    printf("],\"range_count\":%zu,\"ranges\":[", p->range_count);
    fwrite(p->spool, 1, p->spool_len, stdout);
    printf("]");
}

static void print_text_summary(const plan *p, const chash_config *cfg) {
    printf("# plan: %zu nodes -> %zu nodes, algo %s, scheme %s, %u vnodes\n",
           chash_node_count(p->from), chash_node_count(p->to), chash_algo_name(cfg->algo),
           chash_scheme_name(cfg->scheme), cfg->vnodes);
    if (p->is_exact)
        printf("# moved: %.4f%% of the key space, exactly, in %zu ranges\n",
               100 * p->moved_fraction, p->range_count);
    else
        printf("# moved: about %.4f%% of keys (%llu sampled keys; %s has no ranges)\n",
               100 * p->moved_fraction, (unsigned long long)p->samples, chash_algo_name(cfg->algo));
    printf("# %-22s %-22s %10s\n", "from", "to", "share");
    for (size_t i = 0; i < p->pair_count; i++) {
        size_t la, lb;
        const char *na = node_name(p->from, p->pairs[i].from, &la);
        const char *nb = node_name(p->to, p->pairs[i].to, &lb);
        printf("# %-22.*s %-22.*s %9.4f%%\n", (int)la, na, (int)lb, nb,
               100.0 * (double)p->pairs[i].hashes / pair_denominator(p));
    }
    fwrite(p->spool, 1, p->spool_len, stdout);
}

static void print_key_move(const plan *p, const char *key, size_t len, const key_owners *o,
                           bool is_first) {
    if (p->json) {
        printf("%s{\"key\":", is_first ? "" : ",");
        cli_json_string(stdout, key, len);
        printf(",\"from\":");
        cli_json_string(stdout, o->from_name, o->from_len);
        printf(",\"to\":");
        cli_json_string(stdout, o->to_name, o->to_len);
        putchar('}');
    } else {
        fwrite(key, 1, len, stdout);
        putchar('\t');
        fwrite(o->from_name, 1, o->from_len, stdout);
        putchar('\t');
        fwrite(o->to_name, 1, o->to_len, stdout);
        putchar('\n');
    }
}

/* Prints each key of the file (one a line, "-" for stdin) that moves. */
static int list_keys(plan *p, const char *path, uint64_t *total, uint64_t *moved) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) return cli_usage_error("plan", "--keys %s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        (*total)++;
        key_owners o;
        if (!key_moves(p, line, len, &o)) continue;
        print_key_move(p, line, len, &o, *moved == 0);
        (*moved)++;
    }
    free(line);
    if (f != stdin) fclose(f);
    return 0;
}

static int print_keys(plan *p, const char *path) {
    uint64_t total = 0, moved = 0;
    if (p->json) printf(",\"keys\":[");
    int rc = list_keys(p, path, &total, &moved);
    if (p->json)
        printf("],\"keys_total\":%llu,\"keys_moved\":%llu", (unsigned long long)total,
               (unsigned long long)moved);
    else if (rc == 0)
        printf("# keys: %llu of %llu move\n", (unsigned long long)moved, (unsigned long long)total);
    return rc;
}

static int print_plan(plan *p, const char *keys_path) {
    chash_config cfg = CHASH_CONFIG_INIT;
    chash_get_config(p->from, &cfg);
    if (p->json)
        print_json_summary(p, &cfg);
    else
        print_text_summary(p, &cfg);
    int rc = keys_path ? print_keys(p, keys_path) : 0;
    if (p->json) printf("}\n");
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cli_fail("plan", "write error on stdout");
    return rc;
}

static bool load_side(const char *path, const chash_config *cfg, chash **out) {
    cli_nodes nodes;
    if (!cli_nodes_read_file("plan", path, &nodes)) return false;
    bool ok = cli_build("plan", cfg, &nodes, out);
    cli_nodes_free(&nodes);
    return ok;
}

typedef struct plan_options {
    cli_placement placement;
    const char *from_path, *to_path, *keys_path;
    bool json;
} plan_options;

/* The options parsers' "go on": not an exit code. */
#define OPTIONS_PARSED (-1)

/* Returns OPTIONS_PARSED, or the exit code after --help or a usage error. */
static int parse_plan_options(int argc, char **argv, plan_options *o) {
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
    const char *cmd = "plan";
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_HELP: fputs(plan_help, stdout); return 0;
        case OPT_FROM: o->from_path = optarg; break;
        case OPT_TO: o->to_path = optarg; break;
        case OPT_KEYS: o->keys_path = optarg; break;
        case OPT_JSON: o->json = true; break;
        case '?': return cli_bad_option(cmd, argc, argv);
        default:
            if (!cli_placement_option(cmd, &o->placement, opt, optarg)) return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->from_path || !o->to_path)
        return cli_usage_error(cmd, "--from FILE and --to FILE are required");
    if (o->placement.membership_flags)
        return cli_usage_error(cmd, "memberships come from --from and --to files only");
    return OPTIONS_PARSED;
}

int cmd_plan(int argc, char **argv) {
    plan_options o = {.placement = {.config = CHASH_CONFIG_INIT}};
    int rc = parse_plan_options(argc, argv, &o);
    if (rc != OPTIONS_PARSED) return rc;
    chash *from = NULL, *to = NULL;
    if (!load_side(o.from_path, &o.placement.config, &from) ||
        !load_side(o.to_path, &o.placement.config, &to)) {
        chash_free(from);
        return CLI_EXIT_USAGE;
    }
    plan p = {.from = from, .to = to, .json = o.json, .samples = 1000000};
    p.ranges = open_memstream(&p.spool, &p.spool_len);
    rc = p.ranges ? find_moves(&p) : cli_fail("plan", "out of memory");
    if (rc == 0) rc = print_plan(&p, o.keys_path);
    if (p.ranges) fclose(p.ranges);
    free(p.spool);
    free(p.pairs);
    chash_free(from);
    chash_free(to);
    return rc;
}

/* Returns OPTIONS_PARSED, or the exit code after --help or a usage error. */
static int parse_ownership_options(int argc, char **argv, cli_placement *pl, bool *json) {
    enum { OPT_JSON = CLI_OPT_FIRST_FREE, OPT_HELP };
    static const struct option longopts[] = {
        CLI_PLACEMENT_LONG_OPTIONS,
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "ownership";
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == OPT_HELP) {
            fputs(ownership_help, stdout);
            return 0;
        }
        if (opt == OPT_JSON) {
            *json = true;
            continue;
        }
        if (opt == '?') return cli_bad_option(cmd, argc, argv);
        if (!cli_placement_option(cmd, pl, opt, optarg)) return CLI_EXIT_USAGE;
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return OPTIONS_PARSED;
}

static void print_owner(const chash *c, size_t i, uint64_t hashes, double share, double ideal,
                        double dev, bool json) {
    uint32_t w;
    size_t len;
    const char *name = node_name(c, i, &len);
    chash_node(c, i, NULL, NULL, &w);
    if (json) {
        printf("%s{\"name\":", i ? "," : "");
        cli_json_string(stdout, name, len);
        printf(",\"weight\":%u,\"hashes\":%llu,\"share\":%.9f,\"ideal\":%.9f,"
               "\"deviation\":%.6f}",
               w, (unsigned long long)hashes, share, ideal, dev);
    } else {
        printf("%-24.*s %6u %11.4f%% %11.4f%% %+9.2f%%\n", (int)len, name, w, 100 * share,
               100 * ideal, 100 * dev);
    }
}

/* Each node's share of `space` hashes beside its weighted ideal, and the
 * largest and typical deviation. */
static void print_ownership(const chash *c, const uint64_t *shares, uint64_t space, bool json) {
    size_t n = chash_node_count(c);
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
        chash_node(c, i, NULL, NULL, &w);
        double share = (double)shares[i] / (double)space, ideal = w / total_weight;
        double dev = share / ideal - 1;
        if (fabs(dev) > fabs(worst)) worst = dev;
        sq += dev * dev;
        print_owner(c, i, shares[i], share, ideal, dev, json);
    }
    if (json)
        printf("],\"max_abs_deviation\":%.6f,\"stddev_deviation\":%.6f}\n", fabs(worst),
               sqrt(sq / (double)n));
    else
        printf("\nlargest deviation from the weighted ideal: %+.2f%%; stddev %.2f%%\n",
               100 * worst, 100 * sqrt(sq / (double)n));
}

int cmd_ownership(int argc, char **argv) {
    const char *cmd = "ownership";
    cli_placement pl = {.config = CHASH_CONFIG_INIT};
    bool json = false;
    int rc = parse_ownership_options(argc, argv, &pl, &json);
    if (rc != OPTIONS_PARSED) return rc;
    cli_nodes nodes;
    if (!cli_placement_nodes(cmd, &pl, 10, &nodes)) return CLI_EXIT_USAGE;
    chash *c = NULL;
    bool built = cli_build(cmd, &pl.config, &nodes, &c);
    cli_nodes_free(&nodes);
    if (!built) return CLI_EXIT_USAGE;
    size_t n = chash_node_count(c);
    uint64_t *shares = calloc(n, sizeof *shares), space = 0;
    rc = shares ? chash_ownership(c, shares, n, &space) : CHASH_ENOMEM;
    if (rc == CHASH_OK) print_ownership(c, shares, space, json);
    free(shares);
    chash_free(c);
    if (rc != CHASH_OK) return cli_usage_error(cmd, "%s", chash_strerror(rc));
    if (fflush(stdout) != 0 || ferror(stdout)) return cli_fail(cmd, "write error on stdout");
    return 0;
}
