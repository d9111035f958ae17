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

double sim_ideal_moved(const sim *s) {
    /* Each surviving node can keep at most the smaller of its two shares. */
    double wb = 0, wa = 0, kept = 0;
    for (size_t g = 0; g < s->all.count; g++) {
        if (g < s->before_count) wb += s->all.weights[g];
        if (s->in_after[g]) wa += s->all.weights[g];
    }
    for (size_t g = 0; g < s->before_count; g++)
        if (s->in_after[g]) kept += fmin(s->all.weights[g] / wb, s->all.weights[g] / wa);
    return 1.0 - kept;
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

static void print_text(const sim *s, const chash_config *cfg, uint64_t keys, uint64_t seed) {
    size_t after_count = 0;
    for (size_t g = 0; g < s->all.count; g++) after_count += s->in_after[g];
    printf("%zu nodes -> %zu nodes (", s->before_count, after_count);
    const char *sep = "";
    for (size_t g = s->before_count; g < s->all.count; g++) {
        printf("%sadd %s", sep, s->all.names[g]);
        sep = ", ";
    }
    for (size_t g = s->before_count - s->removed; g < s->before_count; g++) {
        printf("%sremove %s", sep, s->all.names[g]);
        sep = ", ";
    }
    printf("), %llu keys, scheme %s, %u vnodes, seed %llu\n\n", (unsigned long long)keys,
           chash_scheme_name(cfg->scheme), cfg->vnodes ? cfg->vnodes : CHASH_VNODES_DEFAULT,
           (unsigned long long)seed);
    double ideal = sim_ideal_moved(s);
    printf("%-10s %9s %9s %9s %9s %9s %12s\n", "algo", "moved", "ideal", "moved/id", "max/mean",
           "min/mean", "stddev/mean");
    for (size_t i = 0; i < s->run_count; i++) {
        const algo_run *r = &s->runs[i];
        double moved = (double)r->moved / (double)keys;
        printf("%-10s %8.2f%% %8.2f%% %9.2f %9.3f %9.3f %12.4f\n", chash_algo_name(r->algo),
               100 * moved, 100 * ideal, ideal > 0 ? moved / ideal : 0.0, r->max_over_mean,
               r->min_over_mean, r->stddev_over_mean);
    }
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
    for (size_t i = 0; i < s->run_count; i++) {
        const algo_run *r = &s->runs[i];
        if (r->algo != CHASH_ALGO_MODULO && ideal > 0)
            printf("\n%s: %.2f%% of keys moved, %.2fx the ideal %.2f%%; modulo-style rehashing "
                   "moves about %.0f%%.\n",
                   chash_algo_name(r->algo), 100.0 * (double)r->moved / (double)keys,
                   (double)r->moved / (double)keys / ideal, 100 * ideal,
                   100.0 * (1.0 - 1.0 / (double)(s->before_count > after_count ? s->before_count
                                                                               : after_count)));
    }
}

void sim_write_json(FILE *f, const sim *s) {
    const chash_config *cfg = &s->config;
    uint64_t keys = s->keys, seed = s->seed;
    size_t after_count = 0;
    for (size_t g = 0; g < s->all.count; g++) after_count += s->in_after[g];
    double ideal = sim_ideal_moved(s);
    fprintf(f, "{\"command\":\"simulate\",\"nodes_before\":%zu,\"nodes_after\":%zu,\"keys\":%llu,"
           "\"scheme\":\"%s\",\"vnodes\":%u,\"seed\":%llu,\"ideal_moved_fraction\":%.6f,"
           "\"added\":[",
           s->before_count, after_count, (unsigned long long)keys,
           chash_scheme_name(cfg->scheme), cfg->vnodes ? cfg->vnodes : CHASH_VNODES_DEFAULT,
           (unsigned long long)seed, ideal);
    for (size_t g = s->before_count; g < s->all.count; g++) {
        if (g > s->before_count) fputc(',', f);
        cli_json_string(f, s->all.names[g], s->all.name_lens[g]);
    }
    fprintf(f, "],\"removed\":[");
    for (size_t g = s->before_count - s->removed; g < s->before_count; g++) {
        if (g > s->before_count - s->removed) fputc(',', f);
        cli_json_string(f, s->all.names[g], s->all.name_lens[g]);
    }
    fprintf(f, "],\"results\":[");
    for (size_t i = 0; i < s->run_count; i++) {
        const algo_run *r = &s->runs[i];
        fprintf(f, "%s{\"algo\":\"%s\",\"moved_fraction\":%.6f,\"ideal_moved_fraction\":%.6f,"
               "\"max_over_mean\":%.6f,\"min_over_mean\":%.6f,\"stddev_over_mean\":%.6f,"
               "\"nodes\":[",
               i ? "," : "", chash_algo_name(r->algo), (double)r->moved / (double)keys, ideal,
               r->max_over_mean, r->min_over_mean, r->stddev_over_mean);
        for (size_t g = 0; g < s->all.count; g++) {
            fprintf(f, "%s{\"name\":", g ? "," : "");
            cli_json_string(f, s->all.names[g], s->all.name_lens[g]);
            fprintf(f, ",\"weight\":%u", s->all.weights[g]);
            if (g < s->before_count)
                fprintf(f, ",\"keys_before\":%llu", (unsigned long long)r->load_before[g]);
            if (s->in_after[g])
                fprintf(f, ",\"keys_after\":%llu", (unsigned long long)r->load_after[g]);
            fputc('}', f);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "]}\n");
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

int cmd_simulate(int argc, char **argv) {
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
    const char *cmd = "simulate";
    cli_placement p = {.config = CHASH_CONFIG_INIT};
    uint64_t keys = 1000000, add = 0, remove = 0, seed = 1;
    bool add_given = false, remove_given = false, json = false, quiet = false;
    const char *report_path = NULL, *svg_path = NULL;
    chash_algo algos[CLI_ALGO_MAX] = {CHASH_ALGO_MODULO, CHASH_ALGO_RING};
    size_t algo_count = 2;
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_HELP: fputs(help, stdout); return 0;
        case OPT_KEYS:
            if (!cli_parse_u64(cmd, "--keys", optarg, 1, 1000000000000ull, &keys))
                return CLI_EXIT_USAGE;
            break;
        case OPT_ADD:
            if (!cli_parse_u64(cmd, "--add", optarg, 0, 1000000, &add)) return CLI_EXIT_USAGE;
            add_given = true;
            break;
        case OPT_REMOVE:
            if (!cli_parse_u64(cmd, "--remove", optarg, 0, 1000000, &remove))
                return CLI_EXIT_USAGE;
            remove_given = true;
            break;
        case OPT_SEED:
            if (!cli_parse_u64(cmd, "--seed", optarg, 0, UINT64_MAX, &seed))
                return CLI_EXIT_USAGE;
            break;
        case OPT_JSON: json = true; break;
        case OPT_REPORT: report_path = optarg; break;
        case OPT_SVG: svg_path = optarg; break;
        case OPT_QUIET: quiet = true; break;
        case CLI_OPT_ALGO:
            if (!cli_parse_algo_list(optarg, algos, &algo_count))
                return cli_usage_error(cmd, "--algo: expected 'all' or a list of distinct "
                                            "names from %s; got '%s'", cli_algo_list(), optarg);
            break;
        case '?': return cli_bad_option(cmd, argc, argv);
        default:
            if (!cli_placement_option(cmd, &p, opt, optarg)) return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!add_given && !remove_given) add = 1;
    if (svg_path) {
        bool has_ring = false;
        for (size_t i = 0; i < algo_count; i++) has_ring |= algos[i] == CHASH_ALGO_RING;
        if (!has_ring) return cli_usage_error(cmd, "--svg draws the ring: include 'ring' in --algo");
    }

    sim s = {0};
    if (!cli_placement_nodes(cmd, &p, 10, &s.all)) return CLI_EXIT_USAGE;
    s.before_count = s.all.count;
    s.config = p.config;
    if (s.config.vnodes == 0) s.config.vnodes = CHASH_VNODES_DEFAULT;
    s.keys = keys;
    s.seed = seed;
    if (remove >= s.before_count) {
        cli_nodes_free(&s.all);
        return cli_usage_error(cmd, "--remove %llu would leave no nodes of %zu",
                               (unsigned long long)remove, s.before_count);
    }
    s.removed = (size_t)remove;
    int rc = 0;
    /* New nodes are node-<n> for the smallest n not already taken. */
    for (uint64_t n = 0, made = 0; made < add; n++) {
        char name[32];
        int len = snprintf(name, sizeof name, "node-%llu", (unsigned long long)n);
        bool taken = false;
        for (size_t g = 0; g < s.all.count && !taken; g++)
            taken = s.all.name_lens[g] == (size_t)len && memcmp(s.all.names[g], name, len) == 0;
        if (taken) continue;
        if (!cli_nodes_push(&s.all, name, (size_t)len, 1)) {
            rc = cli_fail(cmd, "out of memory");
            goto out;
        }
        made++;
    }
    s.in_after = calloc(s.all.count, sizeof *s.in_after);
    if (!s.in_after) {
        rc = cli_fail(cmd, "out of memory");
        goto out;
    }
    for (size_t g = 0; g < s.all.count; g++)
        s.in_after[g] = g < s.before_count - s.removed || g >= s.before_count;

    cli_nodes before_nodes = s.all, after_nodes = {0};
    before_nodes.count = s.before_count;
    for (size_t g = 0; g < s.all.count; g++)
        if (s.in_after[g] &&
            !cli_nodes_push(&after_nodes, s.all.names[g], s.all.name_lens[g], s.all.weights[g])) {
            cli_nodes_free(&after_nodes);
            rc = cli_fail(cmd, "out of memory");
            goto out;
        }
    for (size_t i = 0; i < algo_count; i++) {
        algo_run *r = &s.runs[s.run_count++];
        chash_config cfg = p.config;
        cfg.algo = r->algo = algos[i];
        if (!cli_build(cmd, &cfg, &before_nodes, &r->before) ||
            !cli_build(cmd, &cfg, &after_nodes, &r->after)) {
            rc = CLI_EXIT_USAGE;
            break;
        }
        r->global_before = map_to_union(r->before, &s.all);
        r->global_after = map_to_union(r->after, &s.all);
        r->load_before = calloc(s.all.count, sizeof *r->load_before);
        r->load_after = calloc(s.all.count, sizeof *r->load_after);
        if (r->algo == CHASH_ALGO_BOUNDED &&
            (chash_loads_create(r->before, &r->loads_before) != CHASH_OK ||
             chash_loads_create(r->after, &r->loads_after) != CHASH_OK)) {
            rc = cli_fail(cmd, "out of memory");
            break;
        }
        if (!r->global_before || !r->global_after || !r->load_before || !r->load_after) {
            rc = cli_fail(cmd, "out of memory");
            break;
        }
    }
    cli_nodes_free(&after_nodes);
    if (rc != 0) goto out;

    progress prog;
    progress_start(&prog, keys, quiet);
    for (uint64_t k = 0; k < keys; k++) {
        if ((k & 0xffff) == 0) progress_update(&prog, k);
        char key[64];
        size_t len = cli_key(seed, k, key, sizeof key);
        /* One scheme for all runs, so one key hash serves them all. */
        uint64_t h = chash_key_hash(s.runs[0].before, key, len);
        for (size_t i = 0; i < s.run_count; i++) {
            algo_run *r = &s.runs[i];
            size_t nb, na;
            if (r->loads_before) {
                /* Bounded loads: every key is a unit of live load, placed
                 * in key order against the loads so far. */
                chash_lookup_bounded(r->before, r->loads_before, key, len, &nb);
                chash_lookup_bounded(r->after, r->loads_after, key, len, &na);
                chash_loads_acquire(r->loads_before, nb);
                chash_loads_acquire(r->loads_after, na);
            } else {
                chash_lookup_hash(r->before, h, &nb);
                chash_lookup_hash(r->after, h, &na);
            }
            size_t gb = r->global_before[nb], ga = r->global_after[na];
            r->load_before[gb]++;
            r->load_after[ga]++;
            r->moved += gb != ga;
        }
    }
    progress_done(&prog);
    for (size_t i = 0; i < s.run_count; i++) load_figures(&s.runs[i], &s, keys);
    if (report_path && !report_write_html(report_path, &s)) {
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    if (svg_path && !report_write_svg(svg_path, &s)) {
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    if (json)
        sim_write_json(stdout, &s);
    else
        print_text(&s, &p.config, keys, seed);
    if (fflush(stdout) != 0 || ferror(stdout)) rc = cli_fail(cmd, "write error on stdout");
out:
    free_sim(&s);
    return rc;
}
