/*
 * algo_ring.c - the virtual-node ring (Karger et al., STOC 1997): each node
 * owns weight * vnodes points on a 32-bit circle; a key belongs to the first
 * point at or after its hash, wrapping past the top to the first point.
 * Adding a node moves only the keys its new points capture (~1/(N+1)), all to
 * it; removing one moves only its own keys.
 *
 * Invariant: points[] is sorted by hash, equal hashes in the scheme's tie
 * order (native: node name; groupcache: the node added last first; ketama,
 * nginx: the lower node index first; twemproxy: the shorter name, then the
 * bytewise lower one, nutcracker's server order), so the first of equal
 * points is the one that owns them. index[k] is the first
 * point whose hash is >= k << shift, for k = 0 .. bucket_count, which makes a
 * lookup one index read and a count over a short window (about 4 points) instead of a
 * binary search over every point.
 */
#include "internal.h"

#include <stdlib.h>

typedef struct ring_point {
    uint32_t hash;
    uint32_t node;
} ring_point;

/* Sentinel points after the last; see find_point(). */
#define RING_WINDOW 8

typedef struct ring_state {
    ring_point *points;
    size_t count;
    uint32_t *index;
    size_t bucket_count;
    unsigned shift;
} ring_state;

/* Schemes whose peers let the earlier server win a tie. */
static bool ties_by_index(chash_scheme scheme) {
    return scheme == CHASH_SCHEME_KETAMA || scheme == CHASH_SCHEME_NGINX;
}

/* nutcracker sorts its servers by name, shorter names first, before it
 * builds the ring, so its earlier server is the one lower in this order. */
static int length_first_cmp(const chash_node_rec *a, const chash_node_rec *b) {
    if (a->name_len != b->name_len) return a->name_len < b->name_len ? -1 : 1;
    return memcmp(a->name, b->name, a->name_len);
}

static int tie_cmp(chash_scheme scheme, const chash_node_rec *a, const chash_node_rec *b) {
    return scheme == CHASH_SCHEME_TWEMPROXY ? length_first_cmp(a, b) : chash_name_cmp(a, b);
}

/* True when, at equal hashes, node a's point must come before node b's. */
static bool tie_first(const algo_ctx *ctx, const algo_nodes *nodes, uint32_t a, uint32_t b) {
    if (ctx->scheme == CHASH_SCHEME_GROUPCACHE) return a > b; /* later Add wins */
    if (ties_by_index(ctx->scheme)) return a < b;
    return tie_cmp(ctx->scheme, &nodes->nodes[a], &nodes->nodes[b]) < 0;
}

/* ---- sorting ----------------------------------------------------------- */

/* Stable sort by hash; returns whichever of a and tmp holds the result. */
static ring_point *sort_points(ring_point *a, ring_point *tmp, size_t n) {
    if (n < 64) {
        for (size_t i = 1; i < n; i++) {
            ring_point p = a[i];
            size_t j = i;
            for (; j > 0 && a[j - 1].hash > p.hash; j--) a[j] = a[j - 1];
            a[j] = p;
        }
        return a;
    }
    /* LSD radix, 11 + 11 + 10 bits: stable, so tie order survives. */
    static const unsigned shifts[3] = {0, 11, 22};
    uint32_t counts[2048];
    for (int pass = 0; pass < 3; pass++) {
        unsigned shift = shifts[pass];
        memset(counts, 0, sizeof counts);
        for (size_t i = 0; i < n; i++) counts[(a[i].hash >> shift) & 2047u]++;
        uint32_t sum = 0;
        for (size_t d = 0; d < 2048; d++) {
            uint32_t c = counts[d];
            counts[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) tmp[counts[(a[i].hash >> shift) & 2047u]++] = a[i];
        ring_point *t = a;
        a = tmp;
        tmp = t;
    }
    return a;
}

/* ---- the index --------------------------------------------------------- */

/* About four points a bucket (1 byte a point): measured fastest beside 1, 2
 * and 8 with the fixed window of find_point(). */
static unsigned index_bits(size_t count) {
    unsigned bits = 1;
    while (bits < 30 && ((size_t)4 << bits) <= count) bits++;
    return bits;
}

static uint32_t *index_alloc(const algo_ctx *ctx, unsigned bits) {
    return chash_mem_alloc(ctx->alloc, (((size_t)1 << bits) + 1) * sizeof(uint32_t));
}

/* The index of sorted points[0..count-1], by one merge-like pass. */
static void index_fill(uint32_t *index, unsigned bits, const ring_point *points, size_t count) {
    size_t buckets = (size_t)1 << bits, i = 0;
    for (size_t k = 0; k < buckets; k++) {
        uint64_t lo = (uint64_t)k << (32 - bits);
        while (i < count && points[i].hash < lo) i++;
        index[k] = (uint32_t)i;
    }
    index[buckets] = (uint32_t)count;
}

/* Room for count points and the sentinels state_finish() writes after them. */
static ring_point *points_alloc(const algo_ctx *ctx, size_t count) {
    return chash_mem_alloc(ctx->alloc, chash_mul_size(count + RING_WINDOW, sizeof(ring_point)));
}

static void ring_free(const algo_ctx *ctx, void *state) {
    ring_state *s = state;
    if (!s) return;
    chash_mem_free(ctx->alloc, s->points);
    chash_mem_free(ctx->alloc, s->index);
    chash_mem_free(ctx->alloc, s);
}

static ring_state *state_new(const algo_ctx *ctx) {
    ring_state *s = chash_mem_alloc(ctx->alloc, sizeof *s);
    if (s) memset(s, 0, sizeof *s);
    return s;
}

/*
 * Takes ownership of sorted points[0..count-1] (allocated by points_alloc)
 * and of index (NULL: computed here); frees both on failure.
 */
static int state_finish(const algo_ctx *ctx, ring_point *points, size_t count, uint32_t *index,
                        void **out) {
    unsigned bits = index_bits(count);
    ring_state *s = state_new(ctx);
    if (!index && s) {
        index = index_alloc(ctx, bits);
        if (index) index_fill(index, bits, points, count);
    }
    if (!s || !index) {
        chash_mem_free(ctx->alloc, s);
        chash_mem_free(ctx->alloc, points);
        chash_mem_free(ctx->alloc, index);
        return CHASH_ENOMEM;
    }
    for (size_t i = 0; points && i < RING_WINDOW; i++)
        points[count + i] = (ring_point){UINT32_MAX, 0};
    s->points = points;
    s->count = count;
    s->index = index;
    s->bucket_count = (size_t)1 << bits;
    s->shift = 32 - bits;
    *out = s;
    return CHASH_OK;
}

/* ---- building ---------------------------------------------------------- */

static int total_points(const algo_ctx *ctx, const algo_nodes *nodes,
                        const scheme_totals *totals, size_t *total) {
    uint64_t sum = 0;
    for (size_t i = 0; i < nodes->count; i++) {
        sum += chash_scheme_point_count(ctx, totals, &nodes->nodes[i]);
        if (sum > CHASH_POINTS_MAX) return CHASH_ETOOBIG;
    }
    /* Nodes but no point at all (ketama with fewer than 4 points a node:
     * its counts are floored to whole groups of 4): no key would have an
     * owner, so the membership is refused rather than a ring with nothing
     * on it. Some nodes without points is the peers' behaviour and stays. */
    if (sum == 0 && nodes->count > 0) return CHASH_EINVAL;
    *total = (size_t)sum;
    return CHASH_OK;
}

/* Appends node `n`'s points to out; scratch holds its point count of hashes. */
static size_t emit_points(const algo_ctx *ctx, const algo_nodes *nodes,
                          const scheme_totals *totals, size_t n, uint32_t *scratch,
                          ring_point *out) {
    const chash_node_rec *rec = &nodes->nodes[n];
    size_t m = (size_t)chash_scheme_point_count(ctx, totals, rec);
    chash_scheme_points(ctx, totals, rec, scratch);
    for (size_t j = 0; j < m; j++) out[j] = (ring_point){scratch[j], (uint32_t)n};
    return m;
}

static int name_order(const void *a, const void *b) {
    return chash_name_cmp(*(const chash_node_rec *const *)a, *(const chash_node_rec *const *)b);
}

static int length_first_order(const void *a, const void *b) {
    return length_first_cmp(*(const chash_node_rec *const *)a,
                            *(const chash_node_rec *const *)b);
}

/* Node numbers in tie order (names are unique, so any sort is stable). */
static void tie_order(const algo_ctx *ctx, const algo_nodes *nodes, uint32_t *order,
                      const chash_node_rec **by_name) {
    if (ctx->scheme == CHASH_SCHEME_GROUPCACHE) {
        for (size_t i = 0; i < nodes->count; i++) order[i] = (uint32_t)(nodes->count - 1 - i);
        return;
    }
    if (ties_by_index(ctx->scheme)) {
        for (size_t i = 0; i < nodes->count; i++) order[i] = (uint32_t)i;
        return;
    }
    for (size_t i = 0; i < nodes->count; i++) by_name[i] = &nodes->nodes[i];
    qsort(by_name, nodes->count, sizeof *by_name,
          ctx->scheme == CHASH_SCHEME_TWEMPROXY ? length_first_order : name_order);
    for (size_t i = 0; i < nodes->count; i++) order[i] = (uint32_t)(by_name[i] - nodes->nodes);
}

/*
 * Sorts a whole membership's points by a counting sort on the index's
 * buckets (the top bits of the hash), which fills the index on the way; each
 * bucket, about four points when hashes are spread, is then sorted alone.
 * Points are hashed twice, once to count and once to place: cheaper than
 * writing every point to a second array and reading it back (measured).
 * Nodes are visited in tie order and every step is stable, so equal hashes
 * end up in tie order.
 */
static int build(const algo_ctx *ctx, const algo_nodes *nodes, void **out) {
    size_t total;
    scheme_totals totals = chash_scheme_totals(nodes);
    int rc = total_points(ctx, nodes, &totals, &total);
    if (rc != CHASH_OK) return rc;
    if (total == 0) return state_finish(ctx, NULL, 0, NULL, out);

    size_t max_node_points = 0;
    for (size_t i = 0; i < nodes->count; i++) {
        size_t m = (size_t)chash_scheme_point_count(ctx, &totals, &nodes->nodes[i]);
        if (m > max_node_points) max_node_points = m;
    }
    unsigned bits = index_bits(total), shift = 32 - bits;
    size_t buckets = (size_t)1 << bits;
    ring_point *points = points_alloc(ctx, total), *tmp = NULL;
    uint32_t *index = index_alloc(ctx, bits);
    uint32_t *scratch = chash_mem_alloc(ctx->alloc, max_node_points * sizeof *scratch);
    uint32_t *order = chash_mem_alloc(ctx->alloc, nodes->count * sizeof *order);
    const chash_node_rec **by_name =
        chash_mem_alloc(ctx->alloc, nodes->count * sizeof *by_name);
    if (!points || !index || !scratch || !order || !by_name) {
        rc = CHASH_ENOMEM;
        goto done;
    }
    tie_order(ctx, nodes, order, by_name);
    memset(index, 0, (buckets + 1) * sizeof *index);
    for (size_t i = 0; i < nodes->count; i++) {
        const chash_node_rec *rec = &nodes->nodes[order[i]];
        size_t m = (size_t)chash_scheme_point_count(ctx, &totals, rec);
        chash_scheme_points(ctx, &totals, rec, scratch);
        for (size_t j = 0; j < m; j++) index[(scratch[j] >> shift) + 1]++;
    }
    for (size_t k = 0; k < buckets; k++) index[k + 1] += index[k];
    /* index[k] serves as bucket k's write cursor and ends as its end, so the
     * starts come back by shifting one place. */
    for (size_t i = 0; i < nodes->count; i++) {
        const chash_node_rec *rec = &nodes->nodes[order[i]];
        size_t m = (size_t)chash_scheme_point_count(ctx, &totals, rec);
        chash_scheme_points(ctx, &totals, rec, scratch);
        for (size_t j = 0; j < m; j++)
            points[index[scratch[j] >> shift]++] = (ring_point){scratch[j], order[i]};
    }
    memmove(index + 1, index, buckets * sizeof *index);
    index[0] = 0;
    size_t max_bucket = 0;
    for (size_t k = 0; k < buckets; k++)
        if (index[k + 1] - index[k] > max_bucket) max_bucket = index[k + 1] - index[k];
    /* Clumped schemes (raw CRC32 of similar names) can crowd a bucket. */
    if (max_bucket >= 64 && !(tmp = chash_mem_alloc(ctx->alloc, max_bucket * sizeof *tmp))) {
        rc = CHASH_ENOMEM;
        goto done;
    }
    for (size_t k = 0; k < buckets; k++) {
        size_t lo = index[k], len = index[k + 1] - lo;
        if (len < 2) continue;
        ring_point *sorted = sort_points(points + lo, tmp, len);
        if (sorted != points + lo) memcpy(points + lo, sorted, len * sizeof *sorted);
    }
    rc = state_finish(ctx, points, total, index, out);
    points = NULL;
    index = NULL;
done:
    chash_mem_free(ctx->alloc, points);
    chash_mem_free(ctx->alloc, index);
    chash_mem_free(ctx->alloc, tmp);
    chash_mem_free(ctx->alloc, scratch);
    chash_mem_free(ctx->alloc, order);
    chash_mem_free(ctx->alloc, (void *)by_name);
    return rc;
}

/*
 * The new state from the old one: old points of node `drop` are left out
 * (none when drop == SIZE_MAX), later node numbers shift down when
 * `renumber`, and node `add`'s fresh points (none when add == SIZE_MAX) are
 * merged in. O(points): nothing already in place is sorted again. Schemes
 * whose point counts depend on every node build afresh instead.
 */
static int rebuild(const algo_ctx *ctx, const ring_state *old, const algo_nodes *nodes,
                   size_t drop, bool renumber, size_t add, void **out) {
    if (chash_scheme_counts_are_global(ctx->scheme)) return build(ctx, nodes, out);
    size_t total;
    scheme_totals totals = chash_scheme_totals(nodes);
    int rc = total_points(ctx, nodes, &totals, &total);
    if (rc != CHASH_OK) return rc;
    size_t fresh_count =
        add == SIZE_MAX ? 0 : (size_t)chash_scheme_point_count(ctx, &totals, &nodes->nodes[add]);
    ring_point *fresh = NULL, *fresh_tmp = NULL, *points = NULL;
    uint32_t *scratch = NULL;
    rc = CHASH_ENOMEM;
    if (fresh_count) {
        fresh = chash_mem_alloc(ctx->alloc, fresh_count * sizeof *fresh);
        fresh_tmp = chash_mem_alloc(ctx->alloc, fresh_count * sizeof *fresh_tmp);
        scratch = chash_mem_alloc(ctx->alloc, fresh_count * sizeof *scratch);
        if (!fresh || !fresh_tmp || !scratch) goto done;
    }
    if (total) {
        points = points_alloc(ctx, total);
        if (!points) goto done;
    }
    const ring_point *sorted_fresh = fresh;
    if (fresh_count) {
        emit_points(ctx, nodes, &totals, add, scratch, fresh);
        sorted_fresh = sort_points(fresh, fresh_tmp, fresh_count);
    }
    size_t i = 0, j = 0, at = 0;
    while (i < old->count || j < fresh_count) {
        if (i < old->count) {
            ring_point p = old->points[i];
            if (p.node == drop) {
                i++;
                continue;
            }
            if (renumber && drop != SIZE_MAX && p.node > drop) p.node--;
            if (j == fresh_count || p.hash < sorted_fresh[j].hash ||
                (p.hash == sorted_fresh[j].hash &&
                 tie_first(ctx, nodes, p.node, sorted_fresh[j].node))) {
                points[at++] = p;
                i++;
                continue;
            }
        }
        points[at++] = sorted_fresh[j++];
    }
    rc = state_finish(ctx, points, at, NULL, out);
    points = NULL;
done:
    chash_mem_free(ctx->alloc, points);
    chash_mem_free(ctx->alloc, fresh);
    chash_mem_free(ctx->alloc, fresh_tmp);
    chash_mem_free(ctx->alloc, scratch);
    return rc;
}

static int added(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                 void **out) {
    return rebuild(ctx, old, nodes, SIZE_MAX, false, index, out);
}

static int removed(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                   void **out) {
    return rebuild(ctx, old, nodes, index, true, SIZE_MAX, out);
}

static int reweighted(const algo_ctx *ctx, const void *old, const algo_nodes *nodes,
                      size_t index, void **out) {
    return rebuild(ctx, old, nodes, index, false, index, out);
}

static int ring_clone(const algo_ctx *ctx, const void *state, void **out) {
    const ring_state *s = state;
    ring_point *points = NULL;
    if (s->count) {
        points = points_alloc(ctx, s->count);
        if (!points) return CHASH_ENOMEM;
        memcpy(points, s->points, s->count * sizeof *points);
    }
    return state_finish(ctx, points, s->count, NULL, out);
}

/* ---- reading ----------------------------------------------------------- */

/* Position of the first point at or after h, wrapping to 0. */
static inline size_t find_point(const ring_state *s, uint32_t h) {
    size_t i = s->index[h >> s->shift];
    /* Points past this bucket hash above h, and the array ends in
     * RING_WINDOW sentinels of UINT32_MAX, so counting the points below h in
     * a fixed window needs no bounds and no data-dependent branch: the
     * branch mispredictions of a scan cost more than the few extra
     * compares. A bucket crowded past the window falls back to scanning. */
    size_t below = 0;
    for (size_t j = 0; j < RING_WINDOW; j++) below += s->points[i + j].hash < h;
    i += below;
    if (below == RING_WINDOW)
        while (s->points[i].hash < h) i++;
    return i >= s->count ? 0 : i;
}

static size_t lookup(const void *state, uint64_t hash) {
    const ring_state *s = state;
    return s->points[find_point(s, (uint32_t)hash)].node;
}

static size_t lookup_n(const void *state, uint64_t hash, size_t want, size_t *nodes) {
    const ring_state *s = state;
    size_t i = find_point(s, (uint32_t)hash), found = 0;
    /* One lap finds `want` <= node count nodes unless some node has no point
     * (ketama gives none to a very light node): then it finds fewer. */
    for (size_t walked = 0; walked < s->count && found < want; walked++) {
        size_t n = s->points[i].node;
        bool seen = false;
        for (size_t f = 0; f < found && !seen; f++) seen = nodes[f] == n;
        if (!seen) nodes[found++] = n;
        if (++i == s->count) i = 0;
    }
    return found;
}

static uint64_t ownership(const void *state, uint64_t *shares, size_t node_count) {
    const ring_state *s = state;
    (void)node_count;
    /* Point i owns (hash[i-1], hash[i]]; point 0 also owns past the top. */
    uint64_t space = (uint64_t)1 << 32;
    shares[s->points[0].node] += space - (s->points[s->count - 1].hash - s->points[0].hash);
    for (size_t i = 1; i < s->count; i++)
        shares[s->points[i].node] += s->points[i].hash - s->points[i - 1].hash;
    return space;
}

static size_t point_index(const void *state, uint64_t hash) {
    return find_point(state, (uint32_t)hash);
}

static size_t point_count(const void *state) { return ((const ring_state *)state)->count; }

static int point(const void *state, size_t index, uint32_t *hash, size_t *node) {
    const ring_state *s = state;
    if (index >= s->count) return CHASH_ENOENT;
    if (hash) *hash = s->points[index].hash;
    if (node) *node = s->points[index].node;
    return CHASH_OK;
}

static size_t memory(const void *state) {
    const ring_state *s = state;
    return sizeof *s + (s->points ? (s->count + RING_WINDOW) * sizeof *s->points : 0) +
           (s->index ? (s->bucket_count + 1) * sizeof *s->index : 0);
}

const algo_ops chash_algo_ring = {
    .build = build,
    .added = added,
    .removed = removed,
    .reweighted = reweighted,
    .clone = ring_clone,
    .free = ring_free,
    .lookup = lookup,
    .lookup_n = lookup_n,
    .ownership = ownership,
    .point_index = point_index,
    .point_count = point_count,
    .point = point,
    .memory = memory,
};
