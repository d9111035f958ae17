/*
 * report.c - `chash simulate --report`: one self-contained XHTML page (inline
 * SVG and CSS, no scripts, readable offline) that shows a membership change:
 * the ring with the arcs that change owner, load per node before and after,
 * keys moved per algorithm against the ideal, and balance and movement over
 * vnodes 1..1000. Every figure comes from the same `sim` as `--json`, whose
 * document is embedded verbatim; figures in the text carry data-key and
 * data-value attributes so a test can compare them with the JSON.
 *
 * The page is well-formed XML (names are escaped byte by byte), so an XML
 * parser can check it. Big rings are drawn aggregated into angular bins to
 * keep the file small.
 */
#define _POSIX_C_SOURCE 200809L
#include "simulate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TAU 6.283185307179586
#define RING_SEGMENTS_MAX 2400 /* beyond this many arcs, draw bins */
#define RING_BINS 1440

/* 20 colours in dark/light pairs: neighbours differ in lightness, so the
 * chart still reads in greyscale. */
static const char *const palette[20] = {
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
    "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
    "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5"};

static const char *node_colour(const sim *s, size_t g) {
    if (s->all.count <= 20) return palette[g % 20];
    /* Many nodes: the changed ones stand out, the rest share muted tones. */
    if (g >= s->before_count) return "#000000";
    if (!s->in_after[g]) return "#d62728";
    return palette[(g % 10) * 2 + 1];
}

/* Node names are arbitrary bytes: keep printable ASCII, escape the rest. */
static void put_text(FILE *f, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if (c < 0x20 || c >= 0x7f)
                fprintf(f, "\\x%02x", c);
            else
                fputc(c, f);
        }
    }
}

static void put_name(FILE *f, const sim *s, size_t g) { put_text(f, s->all.names[g], s->all.name_lens[g]); }

static const algo_run *ring_run(const sim *s) {
    for (size_t i = 0; i < s->run_count; i++)
        if (s->runs[i].algo == CHASH_ALGO_RING) return &s->runs[i];
    return NULL;
}

/* ---- the exact changes of the ring run (chash_diff) --------------------- */

typedef struct moved_ranges {
    chash_range *ranges;
    size_t count, capacity;
    uint64_t hashes;
} moved_ranges;

static int collect_range(void *user, const chash_range *r) {
    moved_ranges *m = user;
    if (m->count == m->capacity) {
        size_t cap = m->capacity ? 2 * m->capacity : 256;
        chash_range *n = realloc(m->ranges, cap * sizeof *n);
        if (!n) return 1;
        m->ranges = n;
        m->capacity = cap;
    }
    m->ranges[m->count++] = *r;
    m->hashes += (uint64_t)r->last - r->first + 1;
    return 0;
}

/* ---- SVG pieces --------------------------------------------------------- */

static void polar(double cx, double cy, double r, double frac, double *x, double *y) {
    double a = TAU * frac;
    *x = cx + r * sin(a);
    *y = cy - r * cos(a);
}

/* An annulus sector from frac0 to frac1 of the circle (clockwise from top). */
static void arc(FILE *f, double cx, double cy, double r0, double r1, double frac0, double frac1,
                const char *fill) {
    if (frac1 - frac0 >= 0.5) { /* SVG arcs cannot draw a half or more at once */
        double mid = (frac0 + frac1) / 2;
        arc(f, cx, cy, r0, r1, frac0, mid, fill);
        arc(f, cx, cy, r0, r1, mid, frac1, fill);
        return;
    }
    double ax, ay, bx, by, cx2, cy2, dx, dy;
    polar(cx, cy, r1, frac0, &ax, &ay);
    polar(cx, cy, r1, frac1, &bx, &by);
    polar(cx, cy, r0, frac1, &cx2, &cy2);
    polar(cx, cy, r0, frac0, &dx, &dy);
    fprintf(f,
            "<path d=\"M%.2f %.2fA%.1f %.1f 0 0 1 %.2f %.2fL%.2f %.2fA%.1f %.1f 0 0 0 %.2f "
            "%.2fZ\" fill=\"%s\"",
            ax, ay, r1, r1, bx, by, cx2, cy2, r0, r0, dx, dy, fill);
}

static size_t union_index(const algo_run *r, bool after, size_t local) {
    return after ? r->global_after[local] : r->global_before[local];
}

/* ---- the ring ----------------------------------------------------------- */

#define HASH_SPACE 4294967296.0
#define RING_CX 260.0
#define RING_CY 260.0

/* Owner runs of the ring after the change: the arcs an exact drawing needs. */
static size_t owner_segments(const algo_run *r) {
    size_t points = chash_point_count(r->after), segments = 0, prev_owner = SIZE_MAX;
    for (size_t i = 0; i < points; i++) {
        size_t n;
        chash_point(r->after, i, NULL, &n);
        if (n != prev_owner) segments++;
        prev_owner = n;
    }
    return segments;
}

/* An arc of the outer band in node g's colour, named on hover. */
static void owner_arc(FILE *f, const sim *s, size_t g, double f0, double f1) {
    arc(f, RING_CX, RING_CY, 200, 245, f0, f1, node_colour(s, g));
    fputs("><title>", f);
    put_name(f, s, g);
    fputs("</title></path>\n", f);
}

/* One arc per run of points with one owner. Point i owns (hash[i-1],
 * hash[i]]; point 0 also owns the wrap above the last point. */
static void owner_arcs(FILE *f, const sim *s, const algo_run *r) {
    size_t points = chash_point_count(r->after);
    uint32_t last_hash;
    chash_point(r->after, points - 1, &last_hash, NULL);
    size_t i = 0;
    while (i < points) {
        size_t owner, j = i;
        uint32_t h;
        chash_point(r->after, i, NULL, &owner);
        size_t n = owner;
        while (j + 1 < points && (chash_point(r->after, j + 1, &h, &n), n == owner)) j++;
        uint32_t start_hash = 0, end_hash;
        if (i > 0) chash_point(r->after, i - 1, &start_hash, NULL);
        chash_point(r->after, j, &end_hash, NULL);
        double f0 = i == 0 ? 0.0 : ((double)start_hash + 1) / HASH_SPACE;
        double f1 = ((double)end_hash + 1) / HASH_SPACE;
        if (f1 > f0) owner_arc(f, s, union_index(r, true, owner), f0, f1);
        i = j + 1;
    }
    if (points) {
        size_t owner;
        chash_point(r->after, 0, NULL, &owner);
        double f0 = ((double)last_hash + 1) / HASH_SPACE;
        if (f0 < 1.0) owner_arc(f, s, union_index(r, true, owner), f0, 1.0);
    }
}

/* Too many arcs to draw: the owner of each bin's middle hash. */
static void owner_bins(FILE *f, const sim *s, const algo_run *r) {
    for (size_t b = 0; b < RING_BINS; b++) {
        uint64_t mid = (uint64_t)((b + 0.5) * HASH_SPACE / RING_BINS);
        size_t n;
        chash_lookup_hash(r->after, mid, &n);
        size_t g = union_index(r, true, n);
        arc(f, RING_CX, RING_CY, 200, 245, (double)b / RING_BINS, (double)(b + 1) / RING_BINS,
            node_colour(s, g));
        fputs("/>\n", f);
    }
}

/* Changed arcs of the inner band, coloured by their new owner, both named. */
static void moved_arcs(FILE *f, const sim *s, const algo_run *r, const moved_ranges *moved) {
    for (size_t i = 0; i < moved->count; i++) {
        const chash_range *m = &moved->ranges[i];
        size_t to = union_index(r, true, m->to), from = union_index(r, false, m->from);
        double f0 = m->first / HASH_SPACE, f1 = ((double)m->last + 1) / HASH_SPACE;
        if (f1 - f0 < 0.0005) f1 = f0 + 0.0005; /* keep tiny arcs visible */
        arc(f, RING_CX, RING_CY, 160, 192, f0, f1, node_colour(s, to));
        fprintf(f, " stroke=\"#000\" stroke-width=\"0.4\"><title>hashes %u-%u: ", m->first,
                m->last);
        put_name(f, s, from);
        fputs(" -&gt; ", f);
        put_name(f, s, to);
        fputs("</title></path>\n", f);
    }
}

/* Too many changed arcs: each bin that holds one, in its first one's colour. */
static void moved_bins(FILE *f, const sim *s, const algo_run *r, const moved_ranges *moved) {
    size_t at = 0;
    for (size_t b = 0; b < RING_BINS && at < moved->count; b++) {
        uint64_t lo = (uint64_t)(b * HASH_SPACE / RING_BINS);
        uint64_t hi = (uint64_t)((b + 1) * HASH_SPACE / RING_BINS);
        while (at < moved->count && moved->ranges[at].last < lo) at++;
        if (at < moved->count && moved->ranges[at].first < hi) {
            size_t to = union_index(r, true, moved->ranges[at].to);
            arc(f, RING_CX, RING_CY, 160, 192, (double)b / RING_BINS,
                (double)(b + 1) / RING_BINS, node_colour(s, to));
            fputs("/>\n", f);
        }
    }
}

/* The ring after the change as owner arcs, and the changed arcs inside it. */
static void svg_ring(FILE *f, const sim *s, const algo_run *r, const moved_ranges *moved) {
    fputs("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"520\" height=\"520\" "
          "viewBox=\"0 0 520 520\" role=\"img\" aria-label=\"the ring\">\n",
          f);
    fputs("<title>The ring after the change: each node's arcs in its colour; inner band: "
          "the arcs that changed owner</title>\n",
          f);
    bool is_binned = owner_segments(r) > RING_SEGMENTS_MAX;
    bool is_moved_binned = moved->count > RING_SEGMENTS_MAX;
    if (is_binned)
        owner_bins(f, s, r);
    else
        owner_arcs(f, s, r);
    if (is_moved_binned)
        moved_bins(f, s, r, moved);
    else
        moved_arcs(f, s, r, moved);
    fprintf(f,
            "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"150\" fill=\"none\" stroke=\"#ccc\"/>\n"
            "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" class=\"big\">%.2f%%</text>\n"
            "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">of the key space changes owner</text>\n"
            "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">in %zu arcs%s</text>\n",
            RING_CX, RING_CY, RING_CX, RING_CY - 8, 100.0 * (double)moved->hashes / HASH_SPACE,
            RING_CX, RING_CY + 14, RING_CX, RING_CY + 32, moved->count,
            is_binned || is_moved_binned ? " (drawn in 1440 bins)" : "");
    fputs("</svg>\n", f);
}

/* ---- load per node ------------------------------------------------------ */

/* The load chart's frame: plot area and the y scale (load over fair share). */
typedef struct load_chart {
    double w, h, left, bottom, top, plot_w, plot_h, ymax;
} load_chart;

static double load_y(const load_chart *c, double v) { return c->top + c->plot_h * (1 - v / c->ymax); }

/* Each node's keys over its weighted fair share, before and after (-1 where
 * it is not a member); returns the y scale's top: the largest, at least 1.5,
 * rounded up to a quarter. */
static double relative_loads(const sim *s, const algo_run *r, double *before, double *after) {
    double total_before = 0, total_after = 0, ymax = 1.5;
    for (size_t g = 0; g < s->all.count; g++) {
        if (g < s->before_count) total_before += s->all.weights[g];
        if (s->in_after[g]) total_after += s->all.weights[g];
    }
    for (size_t g = 0; g < s->all.count; g++) {
        before[g] = g < s->before_count ? (double)r->load_before[g] /
                                              ((double)s->keys * s->all.weights[g] / total_before)
                                        : -1;
        after[g] = s->in_after[g] ? (double)r->load_after[g] /
                                        ((double)s->keys * s->all.weights[g] / total_after)
                                  : -1;
        if (before[g] > ymax) ymax = before[g];
        if (after[g] > ymax) ymax = after[g];
    }
    return ceil(ymax * 4) / 4;
}

/* Up to 40 nodes: a pale bar before and a solid one after, names below up to 20. */
static void load_bars(FILE *f, const load_chart *c, const sim *s, const algo_run *r,
                      const double *before, const double *after) {
    size_t n = s->all.count;
    double slot = c->plot_w / (double)n, bw = slot * 0.38;
    for (size_t g = 0; g < n; g++) {
        double x = c->left + slot * (double)g + slot * 0.1;
        if (before[g] >= 0) {
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
                    "opacity=\"0.45\"><title>",
                    x, load_y(c, before[g]), bw, c->plot_h - (load_y(c, before[g]) - c->top),
                    node_colour(s, g));
            put_name(f, s, g);
            fprintf(f, " before: %llu keys, %.3f of mean</title></rect>\n",
                    (unsigned long long)r->load_before[g], before[g]);
        }
        if (after[g] >= 0) {
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                    "<title>",
                    x + bw, load_y(c, after[g]), bw, c->plot_h - (load_y(c, after[g]) - c->top),
                    node_colour(s, g));
            put_name(f, s, g);
            fprintf(f, " after: %llu keys, %.3f of mean</title></rect>\n",
                    (unsigned long long)r->load_after[g], after[g]);
        }
        if (n <= 20) {
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"end\" class=\"small\" "
                    "transform=\"rotate(-40 %.1f %.0f)\">",
                    x + bw, c->h - c->bottom + 14, x + bw, c->h - c->bottom + 14);
            put_name(f, s, g);
            fputs("</text>\n", f);
        }
    }
}

/* Too many bars to read: each distribution sorted, as a line. Sorts the
 * members' values to the front of before[] and after[]. */
static void load_lines(FILE *f, const load_chart *c, size_t n, double *before, double *after) {
    for (int pass = 0; pass < 2; pass++) {
        double *v = pass ? after : before;
        size_t m = 0;
        for (size_t g = 0; g < n; g++)
            if (v[g] >= 0) v[m++] = v[g];
        for (size_t i = 1; i < m; i++) { /* insertion sort, descending */
            double t = v[i];
            size_t j = i;
            for (; j > 0 && v[j - 1] < t; j--) v[j] = v[j - 1];
            v[j] = t;
        }
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                pass ? "#1f77b4" : "#ff7f0e", pass ? "" : " stroke-dasharray=\"5 3\"");
        for (size_t i = 0; i < m; i++)
            fprintf(f, "%.1f,%.1f ", c->left + c->plot_w * (double)i / (double)(m > 1 ? m - 1 : 1),
                    load_y(c, v[i]));
        fputs("\"/>\n", f);
    }
    fprintf(f,
            "<text x=\"%.0f\" y=\"%.0f\" class=\"small\">nodes sorted by load: dashed "
            "before, solid after</text>\n",
            c->left + 10, c->h - c->bottom + 16);
}

/* Load per node against the weighted mean, before and after. */
static void svg_load(FILE *f, const sim *s, const algo_run *r) {
    load_chart c = {.w = 900, .h = 260, .left = 50, .bottom = 40, .top = 20};
    size_t n = s->all.count;
    double *before = calloc(n, sizeof *before), *after = calloc(n, sizeof *after);
    if (!before || !after) {
        free(before);
        free(after);
        return;
    }
    c.ymax = relative_loads(s, r, before, after);
    c.plot_h = c.h - c.bottom - c.top;
    c.plot_w = c.w - c.left - 10;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"load per node\">\n",
            c.w, c.h, c.w, c.h);
    for (double t = 0; t <= c.ymax + 1e-9; t += 0.25)
        fprintf(f,
                "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" class=\"small\">%.2f</text>\n",
                c.left, c.w - 10, load_y(&c, t), load_y(&c, t), c.left - 4, load_y(&c, t) + 4, t);
    if (n <= 40)
        load_bars(f, &c, s, r, before, after);
    else
        load_lines(f, &c, n, before, after);
    fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" "
               "stroke-dasharray=\"4 3\"/>\n",
            c.left, c.w - 10, load_y(&c, 1.0), load_y(&c, 1.0));
    fputs("</svg>\n", f);
    free(before);
    free(after);
}

/* Keys moved per algorithm against the ideal. */
static void svg_moved(FILE *f, const sim *s) {
    const double w = 900, bar_h = 26, left = 110, right = 90;
    double h = 30 + bar_h * (double)s->run_count + 20, ideal = sim_ideal_moved(s);
    double plot_w = w - left - right;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"keys moved\">\n",
            w, h, w, h);
    for (size_t i = 0; i < s->run_count; i++) {
        const algo_run *r = &s->runs[i];
        double frac = (double)r->moved / (double)s->keys, y = 20 + bar_h * (double)i;
        fprintf(f,
                "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%s</text>"
                "<rect x=\"%.0f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>"
                "<text x=\"%.1f\" y=\"%.1f\">%.2f%%</text>\n",
                left - 6, y + bar_h * 0.65, chash_algo_name(r->algo), left, y + 3,
                plot_w * frac, bar_h - 6, r->algo == CHASH_ALGO_MODULO ? "#d62728" : "#1f77b4",
                left + plot_w * frac + 4, y + bar_h * 0.65, 100 * frac);
    }
    double x = left + plot_w * ideal;
    fprintf(f,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"12\" y2=\"%.0f\" stroke=\"#000\" "
            "stroke-dasharray=\"4 3\"/><text x=\"%.1f\" y=\"10\" class=\"small\">ideal "
            "%.2f%%</text>\n</svg>\n",
            x, x, h - 10, x + 3, 100 * ideal);
}

/* ---- balance and movement over vnodes (exact, from arcs and diffs) ----- */

typedef struct vpoint {
    uint32_t vnodes;
    double max_over_mean, stddev_over_mean, moved_over_ideal;
} vpoint;

static bool build_side(const sim *s, uint32_t vnodes, bool after, chash **out) {
    chash_config cfg = s->config;
    cfg.algo = CHASH_ALGO_RING;
    cfg.vnodes = vnodes;
    cli_nodes side = {0};
    bool ok = true;
    for (size_t g = 0; g < s->all.count && ok; g++)
        if (after ? s->in_after[g] : g < s->before_count)
            ok = cli_nodes_push(&side, s->all.names[g], s->all.name_lens[g], s->all.weights[g]);
    ok = ok && cli_build("simulate", &cfg, &side, out);
    cli_nodes_free(&side);
    return ok;
}

static int count_range(void *user, const chash_range *r) {
    *(uint64_t *)user += (uint64_t)r->last - r->first + 1;
    return 0;
}

static size_t vnode_curve(const sim *s, vpoint *out) {
    static const uint32_t vs[] = {1, 2, 3, 5, 8, 10, 16, 20, 32, 50, 64, 100, 160, 200, 320, 500, 640, 1000};
    size_t n = 0;
    double ideal = sim_ideal_moved(s);
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        chash *before = NULL, *after = NULL;
        if (!build_side(s, vs[i], false, &before) || !build_side(s, vs[i], true, &after)) {
            chash_free(before);
            return n;
        }
        size_t count = chash_node_count(after);
        uint64_t *shares = calloc(count, sizeof *shares), space, moved = 0;
        if (shares && chash_ownership(after, shares, count, &space) == CHASH_OK &&
            chash_diff(before, after, count_range, &moved) == CHASH_OK) {
            double total_w = 0, max = 0, sq = 0;
            for (size_t k = 0; k < count; k++) {
                uint32_t w;
                chash_node(after, k, NULL, NULL, &w);
                total_w += w;
            }
            for (size_t k = 0; k < count; k++) {
                uint32_t w;
                chash_node(after, k, NULL, NULL, &w);
                double ratio = ((double)shares[k] / (double)space) / (w / total_w);
                if (ratio > max) max = ratio;
                sq += (ratio - 1) * (ratio - 1);
            }
            out[n++] = (vpoint){vs[i], max, sqrt(sq / (double)count),
                                ideal > 0 ? (double)moved / HASH_SPACE / ideal : 0};
        }
        free(shares);
        chash_free(before);
        chash_free(after);
    }
    return n;
}

static void svg_curve(FILE *f, const vpoint *v, size_t n, int which) {
    const double w = 440, h = 260, left = 50, bottom = 36, top = 16, right = 10;
    double ymax = 0;
    for (size_t i = 0; i < n; i++) {
        double y = which ? v[i].moved_over_ideal : v[i].max_over_mean;
        if (y > ymax) ymax = y;
    }
    ymax = ceil(ymax * 2) / 2;
    if (ymax < 1.5) ymax = 1.5;
    double plot_w = w - left - right, plot_h = h - top - bottom;
#define X(vn) (left + plot_w * log10((double)(vn)) / 3.0)
#define Y(val) (top + plot_h * (1 - (val) / ymax))
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"%s\">\n",
            w, h, w, h, which ? "moved over ideal by vnodes" : "balance by vnodes");
    for (int d = 0; d <= 3; d++) {
        double x = left + plot_w * d / 3.0;
        fprintf(f,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#eee\"/>"
                "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" class=\"small\">%d</text>\n",
                x, x, top, h - bottom, x, h - bottom + 14, (int)pow(10, d));
    }
    for (double t = 0; t <= ymax + 1e-9; t += 0.5)
        fprintf(f,
                "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" class=\"small\">%.1f</text>\n",
                left, w - right, Y(t), Y(t), left - 4, Y(t) + 4, t);
    fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" "
               "stroke-dasharray=\"4 3\"/>\n",
            left, w - right, Y(1.0), Y(1.0));
    fputs("<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.1f,%.1f ", X(v[i].vnodes), Y(which ? v[i].moved_over_ideal : v[i].max_over_mean));
    fputs("\"/>\n", f);
    if (!which) {
        fputs("<polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"2\" "
              "stroke-dasharray=\"5 3\" points=\"",
              f);
        for (size_t i = 0; i < n; i++) fprintf(f, "%.1f,%.1f ", X(v[i].vnodes), Y(1 + v[i].stddev_over_mean));
        fputs("\"/>\n", f);
    }
    for (size_t i = 0; i < n; i++)
        fprintf(f,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#1f77b4\"><title>V=%u: max/mean "
                "%.3f, stddev/mean %.3f, moved %.2fx ideal</title></circle>\n",
                X(v[i].vnodes), Y(which ? v[i].moved_over_ideal : v[i].max_over_mean), v[i].vnodes,
                v[i].max_over_mean, v[i].stddev_over_mean, v[i].moved_over_ideal);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" class=\"small\">vnodes per "
               "unit weight (log)</text>\n</svg>\n",
            left + plot_w / 2, h - 6);
#undef X
#undef Y
}

/* ---- the page ----------------------------------------------------------- */

static void figure(FILE *f, const char *key, double value, const char *fmt, double shown) {
    fprintf(f, "<span class=\"fig\" data-key=\"%s\" data-value=\"%.6f\">", key, value);
    fprintf(f, fmt, shown);
    fputs("</span>", f);
}

static void summary(FILE *f, const sim *s, const moved_ranges *moved, const algo_run *ring) {
    fputs("<p class=\"summary\">", f);
    size_t added = s->all.count - s->before_count;
    const char *sep = "";
    if (added) {
        fputs("Adding ", f);
        for (size_t g = s->before_count; g < s->all.count; g++) {
            fputs(sep, f);
            put_name(f, s, g);
            sep = ", ";
        }
    }
    if (s->removed) {
        fputs(added ? " and removing " : "Removing ", f);
        sep = "";
        for (size_t g = s->before_count - s->removed; g < s->before_count; g++) {
            fputs(sep, f);
            put_name(f, s, g);
            sep = ", ";
        }
    }
    if (!added && !s->removed) fputs("With no membership change, ", f);
    const algo_run *modulo = NULL;
    for (size_t i = 0; i < s->run_count; i++)
        if (s->runs[i].algo == CHASH_ALGO_MODULO) modulo = &s->runs[i];
    const algo_run *lead = ring ? ring : &s->runs[0];
    double frac = (double)lead->moved / (double)s->keys;
    fprintf(f, " moves ");
    figure(f, ring ? "ring.moved_fraction" : "first.moved_fraction", frac, "%.2f %%", 100 * frac);
    fprintf(f, " of keys with the %s", chash_algo_name(lead->algo));
    if (ring && added && !s->removed) {
        bool all_to_new = true;
        for (size_t i = 0; i < moved->count; i++)
            all_to_new &= ring->global_after[moved->ranges[i].to] >= s->before_count;
        fputs(all_to_new ? ", all of them to the new node" : ", not all to the new nodes", f);
        if (added > 1 && all_to_new) fputs("s", f);
    }
    fputs(" (the least possible is ", f);
    figure(f, "ideal_moved_fraction", sim_ideal_moved(s), "%.2f %%", 100 * sim_ideal_moved(s));
    fputs(")", f);
    if (modulo) {
        double mf = (double)modulo->moved / (double)s->keys;
        fputs("; modulo hashing would move ", f);
        figure(f, "modulo.moved_fraction", mf, "%.2f %%", 100 * mf);
    }
    fputs(".</p>\n", f);
}

static void page_head(FILE *f, const sim *s) {
    fputs("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
          "<meta charset=\"utf-8\"/>\n<title>chash simulate report</title>\n<style>\n"
          "body{font-family:sans-serif;max-width:960px;margin:1.5em auto;color:#222}\n"
          "h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}\n"
          ".summary{font-size:1.15em;background:#f4f6f8;padding:.8em 1em;border-left:4px solid #1f77b4}\n"
          "table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .7em;border-bottom:1px solid #ddd;text-align:right}\n"
          "th:first-child,td:first-child{text-align:left}.small{font-size:10px}.big{font-size:28px;font-weight:bold}\n"
          "svg text{font-family:sans-serif;font-size:12px}.legend span{display:inline-block;margin-right:.8em}\n"
          ".swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}\n"
          ".row{display:flex;flex-wrap:wrap;gap:1em}\n"
          "</style>\n</head>\n<body>\n<h1>Consistent hashing: what a membership change costs</h1>\n",
          f);
    fprintf(f,
            "<p>%zu nodes &#8594; %zu nodes, %llu keys, scheme %s, %u vnodes per unit weight, "
            "seed %llu.</p>\n",
            s->before_count, sim_after_count(s), (unsigned long long)s->keys,
            chash_scheme_name(s->config.scheme), s->config.vnodes, (unsigned long long)s->seed);
}

/* Keys moved per algorithm, as a table with data-key figures and a chart. */
static void page_moved(FILE *f, const sim *s) {
    fputs("<h2>Keys moved, per algorithm</h2>\n<table>\n<tr><th>algo</th><th>moved</th>"
          "<th>moved / ideal</th><th>max/mean</th><th>min/mean</th><th>stddev/mean</th></tr>\n",
          f);
    double ideal = sim_ideal_moved(s);
    for (size_t i = 0; i < s->run_count; i++) {
        const algo_run *r = &s->runs[i];
        const char *name = chash_algo_name(r->algo);
        char key[64];
        double frac = (double)r->moved / (double)s->keys;
        fprintf(f, "<tr><td>%s</td><td>", name);
        snprintf(key, sizeof key, "%s.moved_fraction", name);
        figure(f, key, frac, "%.2f %%", 100 * frac);
        fprintf(f, "</td><td>%.2f</td><td>", ideal > 0 ? frac / ideal : 0);
        snprintf(key, sizeof key, "%s.max_over_mean", name);
        figure(f, key, r->max_over_mean, "%.3f", r->max_over_mean);
        fputs("</td><td>", f);
        snprintf(key, sizeof key, "%s.min_over_mean", name);
        figure(f, key, r->min_over_mean, "%.3f", r->min_over_mean);
        fputs("</td><td>", f);
        snprintf(key, sizeof key, "%s.stddev_over_mean", name);
        figure(f, key, r->stddev_over_mean, "%.4f", r->stddev_over_mean);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
    svg_moved(f, s);
}

/* Each node's colour; with over 20 nodes, what the muted tones mean. */
static void ring_legend(FILE *f, const sim *s) {
    fputs("<div class=\"legend\">\n", f);
    size_t shown = s->all.count <= 20 ? s->all.count : 0;
    for (size_t g = 0; g < shown; g++) {
        fprintf(f, "<span><span class=\"swatch\" style=\"background:%s\"></span>",
                node_colour(s, g));
        put_name(f, s, g);
        if (g >= s->before_count) fputs(" (added)", f);
        if (!s->in_after[g]) fputs(" (removed)", f);
        fputs("</span><br/>\n", f);
    }
    if (!shown)
        fprintf(f,
                "<span><span class=\"swatch\" style=\"background:#000\"></span>added "
                "nodes</span><br/><span><span class=\"swatch\" style=\"background:#d62728\">"
                "</span>removed nodes</span><br/><span>%zu other nodes in muted "
                "tones</span>\n",
                s->all.count);
    fputs("</div>\n", f);
}

static void page_ring(FILE *f, const sim *s, const algo_run *ring, const moved_ranges *moved) {
    fputs("<h2>The ring</h2>\n<p>Outer band: who owns each arc of the 32-bit hash circle "
          "after the change (exact, from the ring's points). Inner band: the arcs whose "
          "owner changed, in the new owner's colour; hover for both owners.</p>\n"
          "<div class=\"row\">\n",
          f);
    svg_ring(f, s, ring, moved);
    ring_legend(f, s);
    fputs("</div>\n", f);
}

static void page_loads(FILE *f, const sim *s) {
    for (size_t i = 0; i < s->run_count; i++) {
        const algo_run *r = &s->runs[i];
        fprintf(f,
                "<h2>Load per node: %s</h2>\n<p>Keys per node divided by its weighted fair "
                "share; pale bars before the change, solid after; dashed line = 1.0. "
                "max/mean %.3f, stddev/mean %.4f after.</p>\n",
                chash_algo_name(r->algo), r->max_over_mean, r->stddev_over_mean);
        svg_load(f, s, r);
    }
}

static void page_curves(FILE *f, const sim *s) {
    vpoint curve[32];
    size_t points = vnode_curve(s, curve);
    if (!points) return;
    fputs("<h2>Balance and movement over vnodes (ring, exact)</h2>\n<p>Left: the busiest "
          "node's share over its fair share (solid) and 1 + stddev/mean (dashed), from "
          "exact arc lengths. Right: keys moved by this change over the ideal, from the "
          "exact plan. Hover a point for its figures.</p>\n<div class=\"row\">\n",
          f);
    svg_curve(f, curve, points, 0);
    svg_curve(f, curve, points, 1);
    fputs("</div>\n", f);
}

static bool write_page(FILE *f, const sim *s) {
    const algo_run *ring = ring_run(s);
    moved_ranges moved = {0};
    if (ring && chash_diff(ring->before, ring->after, collect_range, &moved) > 0) {
        free(moved.ranges);
        return false;
    }
    page_head(f, s);
    summary(f, s, &moved, ring);
    page_moved(f, s);
    if (ring) page_ring(f, s, ring, &moved);
    page_loads(f, s);
    page_curves(f, s);
    fputs("<h2>Data</h2>\n<p>The figures above, as <code>chash simulate --json</code> prints "
          "them:</p>\n<script type=\"application/json\" id=\"chash-data\">\n",
          f);
    sim_write_json(f, s);
    fputs("</script>\n</body>\n</html>\n", f);
    free(moved.ranges);
    return true;
}

bool report_write_html(const char *path, const sim *s) {
    FILE *f = fopen(path, "w");
    if (!f) {
        cli_fail("simulate", "--report %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = write_page(f, s);
    if (fclose(f) != 0 || !ok) {
        cli_fail("simulate", "--report %s: write failed", path);
        return false;
    }
    return true;
}

bool report_write_svg(const char *path, const sim *s) {
    const algo_run *ring = ring_run(s);
    if (!ring) {
        cli_usage_error("simulate", "--svg draws the ring: include 'ring' in --algo");
        return false;
    }
    moved_ranges moved = {0};
    FILE *f = fopen(path, "w");
    if (!f) {
        cli_fail("simulate", "--svg %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = chash_diff(ring->before, ring->after, collect_range, &moved) == CHASH_OK;
    if (ok) {
        fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
        svg_ring(f, s, ring, &moved);
    }
    free(moved.ranges);
    if (fclose(f) != 0 || !ok) {
        cli_fail("simulate", "--svg %s: write failed", path);
        return false;
    }
    return true;
}
