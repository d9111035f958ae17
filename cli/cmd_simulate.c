/*
 * cmd_simulate.c - `chash simulate`: apply a membership change and count, for
 * each algorithm, how many keys change owner and how evenly keys spread.
 *
 * Every algorithm sees the same keys and the same change. Nodes are matched
 * across the change by name, never by index (indexes shift on removal).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "simulate.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
    "usage: chash simulate [--nodes N | --names a,b | --nodes-file F] [--add A] [--remove R]\n"
    "                      [--keys K] [--algo LIST] [--scheme S] [--vnodes V] [--seed S]\n"
    "                      [--json] [--report FILE.html] [--svg FILE.svg] [--quiet]\n"
    "\n"
    "Changes the membership (adds A nodes named node-<n>, removes the last R) and\n"
    "reports, per algorithm: the fraction of K keys that change owner beside the\n"
    "ideal (the least any placement must move), and the load after the change\n"
    "(max/mean, min/mean, stddev/mean, weighted by node weight), with a per-node\n"
    "table. Keys are key-<hex> strings derived from the seed.\n"
    "\n"
    "Defaults: 10 nodes, --add 1, 1000000 keys, --algo modulo,ring, scheme native,\n"
    "160 vnodes, seed 1. --algo takes a comma-separated list, or 'all': ring, modulo,\n"
    "jump, rendezvous, maglev, multiprobe, bounded, memento (docs/algorithms.md).\n"
    "\n"
    "--report writes one self-contained HTML page (inline SVG, readable offline):\n"
    "the ring with the arcs that change owner, load per node before and after,\n"
    "keys moved per algorithm against the ideal, and balance and movement over\n"
    "vnodes 1..1000. --svg writes the ring chart alone. Progress goes to stderr\n"
    "when it is a terminal and the run takes over a second; --quiet silences it.\n";

/* Maps each local node of c to its index in the union list. */
static size_t *map_to_union(const chash *c, const cli_nodes *all) {
    size_t n = chash_node_count(c);
    size_t *map = calloc(n ? n : 1, sizeof *map);
    if (!map) return NULL;
    for (size_t g = 0; g < all->count; g++) {
        size_t local;
        if (chash_find(c, all->names[g], all->name_lens[g], &local) == CHASH_OK) map[local] = g;
    }
    return map;
}

static void load_figures(algo_run *r, const sim *s, uint64_t keys) {
    double total_weight = 0;
    for (size_t g = 0; g < s->all.count; g++)
        if (s->in_after[g]) total_weight += s->all.weights[g];
    double max = 0, min = INFINITY, sum = 0, sum_sq = 0;
    size_t n = 0;
    for (size_t g = 0; g < s->all.count; g++) {
        if (!s->in_after[g]) continue;
        double expected = (double)keys * s->all.weights[g] / total_weight;
        double ratio = (double)r->load_after[g] / expected;
        if (ratio > max) max = ratio;
        if (ratio < min) min = ratio;
        sum += ratio;
        sum_sq += ratio * ratio;
        n++;
    }
    double mean = sum / (double)n;
    r->max_over_mean = max;
    r->min_over_mean = min;
    r->stddev_over_mean = sqrt(fmax(0.0, sum_sq / (double)n - mean * mean));
}

static void free_sim(sim *s) {
    for (size_t i = 0; i < s->run_count; i++) {
        algo_run *r = &s->runs[i];
        chash_free(r->before);
        chash_free(r->after);
        free(r->global_before);
        free(r->global_after);
        free(r->load_before);
        free(r->load_after);
        chash_loads_free(r->loads_before);
        chash_loads_free(r->loads_after);
    }
    free(s->in_after);
    cli_nodes_free(&s->all);
}

/* "10 nodes -> 11 nodes (add node-10), 1000000 keys, ..." */
static void print_change(const sim *s) {
    printf("%zu nodes -> %zu nodes (", s->before_count, sim_after_count(s));
    const char *sep = "";
    for (size_t g = s->before_count; g < s->all.count; g++) {
        printf("%sadd %s", sep, s->all.names[g]);
        sep = ", ";
    }
    for (size_t g = s->before_count - s->removed; g < s->before_count; g++) {
        printf("%sremove %s", sep, s->all.names[g]);
        sep = ", ";
    }
    printf("), %llu keys, scheme %s, %u vnodes, seed %llu\n\n", (unsigned long long)s->keys,
           chash_scheme_name(s->config.scheme), s->config.vnodes, (unsigned long long)s->seed);
}

/* One row per algorithm: moved against the ideal, and the load after. */
static void print_figures(const sim *s, double ideal) {
    printf("%-10s %9s %9s %9s %9s %9s %12s\n", "algo", "moved", "ideal", "moved/id", "max/mean",
           "min/mean", "stddev/mean");
    for (size_t i = 0; i < s->run_count; i++) {
        const algo_run *r = &s->runs[i];
        double moved = (double)r->moved / (double)s->keys;
        printf("%-10s %8.2f%% %8.2f%% %9.2f %9.3f %9.3f %12.4f\n", chash_algo_name(r->algo),
               100 * moved, 100 * ideal, ideal > 0 ? moved / ideal : 0.0, r->max_over_mean,
               r->min_over_mean, r->stddev_over_mean);
    }
}

/* Keys per node and algorithm, before -> after; '-' where not a member. */
static void print_node_table(const sim *s) {
    printf("\nkeys per node, before -> after the change\n%-16s", "node");
    for (size_t i = 0; i < s->run_count; i++)
        printf(" %23s", chash_algo_name(s->runs[i].algo));
    putchar('\n');
    for (size_t g = 0; g < s->all.count; g++) {
        printf("%-16.*s", (int)s->all.name_lens[g], s->all.names[g]);
        for (size_t i = 0; i < s->run_count; i++) {
            const algo_run *r = &s->runs[i];
            char before[24] = "-", after[24] = "-";
            if (g < s->before_count)
                snprintf(before, sizeof before, "%llu", (unsigned long long)r->load_before[g]);
            if (s->in_after[g])
                snprintf(after, sizeof after, "%llu", (unsigned long long)r->load_after[g]);
            printf(" %10s -> %10s", before, after);
        }
        putchar('\n');
    }
}

/* For each consistent algorithm, its movement beside modulo's ~1 - 1/N. */
static void print_verdicts(const sim *s, double ideal) {
    size_t after = sim_after_count(s), most = s->before_count > after ? s->before_count : after;
    for (size_t i = 0; i < s->run_count; i++) {
        const algo_run *r = &s->runs[i];
        if (r->algo != CHASH_ALGO_MODULO && ideal > 0)
            printf("\n%s: %.2f%% of keys moved, %.2fx the ideal %.2f%%; modulo-style rehashing "
                   "moves about %.0f%%.\n",
                   chash_algo_name(r->algo), 100.0 * (double)r->moved / (double)s->keys,
                   (double)r->moved / (double)s->keys / ideal, 100 * ideal,
                   100.0 * (1.0 - 1.0 / (double)most));
    }
}

static void print_text(const sim *s) {
    double ideal = sim_ideal_moved(s);
    print_change(s);
    print_figures(s, ideal);
    print_node_table(s);
    print_verdicts(s, ideal);
}

/*
 * Progress on stderr for runs longer than about a second, only when stderr
 * is a terminal (so logs and pipes stay clean) and not --quiet.
 */
typedef struct progress {
    uint64_t total, start_ns, last_ns;
    bool enabled, shown;
} progress;

static void progress_start(progress *p, uint64_t total, bool quiet) {
    p->total = total;
    p->start_ns = p->last_ns = cli_now_ns();
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->shown = false;
}

static void progress_update(progress *p, uint64_t done) {
    if (!p->enabled || done == 0) return;
    uint64_t now = cli_now_ns();
    double elapsed = (double)(now - p->start_ns) / 1e9;
    if (elapsed < 1.0 || now - p->last_ns < 100000000) return; /* 10 updates a second */
    p->last_ns = now;
    double rate = (double)done / elapsed;
    fprintf(stderr, "\rhashed %llu / %llu keys, %.2fM keys/s, %.0fs left   ",
            (unsigned long long)done, (unsigned long long)p->total, rate / 1e6,
            (double)(p->total - done) / rate);
    p->shown = true;
}

static void progress_done(progress *p) {
    if (p->shown) fputs("\r\033[K", stderr);
}

/* ---- the command: options, membership, runs, keys, output --------------- */

enum {
    OPT_KEYS = CLI_OPT_FIRST_FREE,
    OPT_ADD,
    OPT_REMOVE,
    OPT_SEED,
    OPT_JSON,
    OPT_REPORT,
    OPT_SVG,
    OPT_QUIET,
    OPT_HELP
};

/* What the command line asks for. */
typedef struct sim_options {
    cli_placement placement;
    uint64_t keys, add, remove, seed;
    bool is_add_given, is_remove_given, json, quiet;
    const char *report_path, *svg_path;
    chash_algo algos[CLI_ALGO_MAX];
    size_t algo_count;
} sim_options;

/* parse_options' "go on": not an exit code. */
#define SIM_PARSED (-1)

/* One option into *o; SIM_PARSED, or the exit code after --help or an error. */
static int take_option(sim_options *o, int opt, int argc, char **argv) {
    const char *cmd = "simulate";
    switch (opt) {
    case OPT_HELP: fputs(help, stdout); return 0;
    case OPT_KEYS:
        if (!cli_parse_u64(cmd, "--keys", optarg, 1, 1000000000000ull, &o->keys))
            return CLI_EXIT_USAGE;
        break;
    case OPT_ADD:
        if (!cli_parse_u64(cmd, "--add", optarg, 0, 1000000, &o->add)) return CLI_EXIT_USAGE;
        o->is_add_given = true;
        break;
    case OPT_REMOVE:
        if (!cli_parse_u64(cmd, "--remove", optarg, 0, 1000000, &o->remove)) return CLI_EXIT_USAGE;
        o->is_remove_given = true;
        break;
    case OPT_SEED:
        if (!cli_parse_u64(cmd, "--seed", optarg, 0, UINT64_MAX, &o->seed)) return CLI_EXIT_USAGE;
        break;
    case OPT_JSON: o->json = true; break;
    case OPT_REPORT: o->report_path = optarg; break;
    case OPT_SVG: o->svg_path = optarg; break;
    case OPT_QUIET: o->quiet = true; break;
    case CLI_OPT_ALGO:
        if (!cli_parse_algo_list(optarg, o->algos, &o->algo_count))
            return cli_usage_error(cmd, "--algo: expected 'all' or a list of distinct "
                                        "names from %s; got '%s'", cli_algo_list(), optarg);
        break;
    case '?': return cli_bad_option(cmd, argc, argv);
    default:
        if (!cli_placement_option(cmd, &o->placement, opt, optarg)) return CLI_EXIT_USAGE;
    }
    return SIM_PARSED;
}

static int parse_options(int argc, char **argv, sim_options *o) {
    static const struct option longopts[] = {
        CLI_PLACEMENT_LONG_OPTIONS,
        {"keys", required_argument, NULL, OPT_KEYS},
        {"add", required_argument, NULL, OPT_ADD},
        {"remove", required_argument, NULL, OPT_REMOVE},
        {"seed", required_argument, NULL, OPT_SEED},
        {"json", no_argument, NULL, OPT_JSON},
        {"report", required_argument, NULL, OPT_REPORT},
        {"svg", required_argument, NULL, OPT_SVG},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int opt, rc = SIM_PARSED;
    opterr = 0;
    optind = 1;
    while (rc == SIM_PARSED && (opt = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        rc = take_option(o, opt, argc, argv);
    if (rc != SIM_PARSED) return rc;
    if (optind < argc) return cli_usage_error("simulate", "unexpected argument '%s'", argv[optind]);
    if (!o->is_add_given && !o->is_remove_given) o->add = 1;
    bool has_ring = false;
    for (size_t i = 0; i < o->algo_count; i++) has_ring |= o->algos[i] == CHASH_ALGO_RING;
    if (o->svg_path && !has_ring)
        return cli_usage_error("simulate", "--svg draws the ring: include 'ring' in --algo");
    return SIM_PARSED;
}

/* Appends `add` nodes named node-<n>, for the smallest n not already taken. */
static bool add_new_nodes(cli_nodes *all, uint64_t add) {
    for (uint64_t n = 0, made = 0; made < add; n++) {
        char name[32];
        int len = snprintf(name, sizeof name, "node-%llu", (unsigned long long)n);
        bool taken = false;
        for (size_t g = 0; g < all->count && !taken; g++)
            taken = all->name_lens[g] == (size_t)len && memcmp(all->names[g], name, len) == 0;
        if (taken) continue;
        if (!cli_nodes_push(all, name, (size_t)len, 1)) return false;
        made++;
    }
    return true;
}

/* The change: s->all holds before's nodes; adds the new ones, marks who stays. */
static int make_change(const sim_options *o, sim *s) {
    const char *cmd = "simulate";
    s->before_count = s->all.count;
    s->config = o->placement.config;
    if (s->config.vnodes == 0) s->config.vnodes = CHASH_VNODES_DEFAULT;
    s->keys = o->keys;
    s->seed = o->seed;
    if (o->remove >= s->before_count)
        return cli_usage_error(cmd, "--remove %llu would leave no nodes of %zu",
                               (unsigned long long)o->remove, s->before_count);
    s->removed = (size_t)o->remove;
    if (!add_new_nodes(&s->all, o->add)) return cli_fail(cmd, "out of memory");
    s->in_after = calloc(s->all.count, sizeof *s->in_after);
    if (!s->in_after) return cli_fail(cmd, "out of memory");
    for (size_t g = 0; g < s->all.count; g++)
        s->in_after[g] = g < s->before_count - s->removed || g >= s->before_count;
    return 0;
}

/* One algorithm's placements before and after, and its counters. */
static int build_run(algo_run *r, const chash_config *cfg, const cli_nodes *before,
                     const cli_nodes *after, const cli_nodes *all) {
    const char *cmd = "simulate";
    if (!cli_build(cmd, cfg, before, &r->before) || !cli_build(cmd, cfg, after, &r->after))
        return CLI_EXIT_USAGE;
    r->global_before = map_to_union(r->before, all);
    r->global_after = map_to_union(r->after, all);
    r->load_before = calloc(all->count, sizeof *r->load_before);
    r->load_after = calloc(all->count, sizeof *r->load_after);
    if (r->algo == CHASH_ALGO_BOUNDED &&
        (chash_loads_create(r->before, &r->loads_before) != CHASH_OK ||
         chash_loads_create(r->after, &r->loads_after) != CHASH_OK))
        return cli_fail(cmd, "out of memory");
    if (!r->global_before || !r->global_after || !r->load_before || !r->load_after)
        return cli_fail(cmd, "out of memory");
    return 0;
}

static int build_runs(const sim_options *o, sim *s) {
    cli_nodes before = s->all, after = {0};
    before.count = s->before_count;
    for (size_t g = 0; g < s->all.count; g++)
        if (s->in_after[g] &&
            !cli_nodes_push(&after, s->all.names[g], s->all.name_lens[g], s->all.weights[g])) {
            cli_nodes_free(&after);
            return cli_fail("simulate", "out of memory");
        }
    int rc = 0;
    for (size_t i = 0; i < o->algo_count && rc == 0; i++) {
        algo_run *r = &s->runs[s->run_count++];
        chash_config cfg = o->placement.config;
        cfg.algo = r->algo = o->algos[i];
        rc = build_run(r, &cfg, &before, &after, &s->all);
    }
    cli_nodes_free(&after);
    return rc;
}

/* One key through one run, before and after the change. */
static void place_key(algo_run *r, const char *key, size_t len, uint64_t hash) {
    size_t nb, na;
    if (r->loads_before) {
        /* Bounded loads: every key is a unit of live load, placed in key
         * order against the loads so far. */
        chash_lookup_bounded(r->before, r->loads_before, key, len, &nb);
        chash_lookup_bounded(r->after, r->loads_after, key, len, &na);
        chash_loads_acquire(r->loads_before, nb);
        chash_loads_acquire(r->loads_after, na);
    } else {
        chash_lookup_hash(r->before, hash, &nb);
        chash_lookup_hash(r->after, hash, &na);
    }
    size_t gb = r->global_before[nb], ga = r->global_after[na];
    r->load_before[gb]++;
    r->load_after[ga]++;
    r->moved += gb != ga;
}

static void place_keys(sim *s, bool quiet) {
    progress prog;
    progress_start(&prog, s->keys, quiet);
    for (uint64_t k = 0; k < s->keys; k++) {
        if ((k & 0xffff) == 0) progress_update(&prog, k);
        char key[64];
        size_t len = cli_key(s->seed, k, key, sizeof key);
        /* One scheme for all runs, so one key hash serves them all. */
        uint64_t h = chash_key_hash(s->runs[0].before, key, len);
        for (size_t i = 0; i < s->run_count; i++) place_key(&s->runs[i], key, len, h);
    }
    progress_done(&prog);
    for (size_t i = 0; i < s->run_count; i++) load_figures(&s->runs[i], s, s->keys);
}

static int write_outputs(const sim_options *o, const sim *s) {
    if (o->report_path && !report_write_html(o->report_path, s)) return CLI_EXIT_FAILURE;
    if (o->svg_path && !report_write_svg(o->svg_path, s)) return CLI_EXIT_FAILURE;
    if (o->json)
        sim_write_json(stdout, s);
    else
        print_text(s);
    if (fflush(stdout) != 0 || ferror(stdout)) return cli_fail("simulate", "write error on stdout");
    return 0;
}

int cmd_simulate(int argc, char **argv) {
    sim_options o = {
        .placement = {.config = CHASH_CONFIG_INIT},
        .keys = 1000000,
        .seed = 1,
        .algos = {CHASH_ALGO_MODULO, CHASH_ALGO_RING},
        .algo_count = 2,
    };
    int rc = parse_options(argc, argv, &o);
    if (rc != SIM_PARSED) return rc;
    sim s = {0};
    if (!cli_placement_nodes("simulate", &o.placement, 10, &s.all)) return CLI_EXIT_USAGE;
    rc = make_change(&o, &s);
    if (rc == 0) rc = build_runs(&o, &s);
    if (rc == 0) {
        place_keys(&s, o.quiet);
        rc = write_outputs(&o, &s);
    }
    free_sim(&s);
    return rc;
}
