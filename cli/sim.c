/*
 * sim.c - the figures of one simulated change that `chash simulate` prints
 * and the report (report.c) draws, so both read them from one place: the
 * ideal movement, the membership after, and the --json document.
 */
#include "simulate.h"

#include <math.h>

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

size_t sim_after_count(const sim *s) {
    size_t count = 0;
    for (size_t g = 0; g < s->all.count; g++) count += s->in_after[g];
    return count;
}

void sim_write_json(FILE *f, const sim *s) {
    const chash_config *cfg = &s->config;
    uint64_t keys = s->keys, seed = s->seed;
    double ideal = sim_ideal_moved(s);
    fprintf(f, "{\"command\":\"simulate\",\"nodes_before\":%zu,\"nodes_after\":%zu,\"keys\":%llu,"
           "\"scheme\":\"%s\",\"vnodes\":%u,\"seed\":%llu,\"ideal_moved_fraction\":%.6f,"
           "\"added\":[",
           s->before_count, sim_after_count(s), (unsigned long long)keys,
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
