/*
 * simulate.h - one simulated membership change, as `chash simulate` measures
 * it and the report (report.c) draws it. Nodes are matched across the change
 * by name: `all` is the union, before's nodes first, then the added ones.
 */
#ifndef CHASH_CLI_SIMULATE_H
#define CHASH_CLI_SIMULATE_H

#include "cli.h"

typedef struct algo_run {
    chash_algo algo;
    chash *before, *after;
    size_t *global_before, *global_after; /* local node index -> union index */
    uint64_t *load_before, *load_after;   /* per union index */
    /* bounded only: live loads, each key acquired where it was placed */
    chash_loads *loads_before, *loads_after;
    uint64_t moved;
    double max_over_mean, min_over_mean, stddev_over_mean;
} algo_run;

typedef struct sim {
    cli_nodes all;
    size_t before_count;
    size_t removed; /* the last `removed` of before are not in after */
    bool *in_after;
    algo_run runs[CLI_ALGO_MAX];
    size_t run_count;
    chash_config config;
    uint64_t keys, seed;
} sim;

/* The least fraction of keys any placement must move for this change. */
double sim_ideal_moved(const sim *s);
/* How many nodes are members after the change. */
size_t sim_after_count(const sim *s);

/* The --json document, as `chash simulate --json` prints it. */
void sim_write_json(FILE *f, const sim *s);

/* Writes the self-contained HTML report; prints why not and returns false. */
bool report_write_html(const char *path, const sim *s);
/* Writes one chart, the ring, as a standalone SVG file. */
bool report_write_svg(const char *path, const sim *s);

#endif
