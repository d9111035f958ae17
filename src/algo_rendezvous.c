/*
 * algo_rendezvous.c - weighted rendezvous hashing, or highest random weight
 * (Thaler & Ravishankar, "Using Name-Based Mappings to Increase Hit Rates",
 * IEEE/ACM ToN 1998), with the logarithmic method for weights (Schindelhauer
 * & Schomaker 2005; draft-ietf-bess-weighted-hrw): node i scores
 * -w_i / ln(U_i) for U_i uniform in (0, 1) drawn from (key, node), and the
 * highest score owns the key.
 *
 * Guarantee: a node's score depends only on the key and that node, so any
 * change of membership or weight moves only keys to an added (or heavier)
 * node and only keys from a removed (or lighter) one: the minimum. Each node
 * gets exactly w_i / W of the keys in expectation, and the falling scores are
 * a natural replica order (lookup_n). Cost: O(N) per lookup, with one
 * logarithm per node only when weights differ: with equal weights the
 * highest score is the highest U, a plain integer maximum.
 *
 * Invariant: seeds[i] is the 64-bit hash of node i's name; weights[i] its
 * weight; is_unit_weight says every weight is equal.
 */
#include "internal.h"

typedef struct rendezvous_state {
    uint64_t *seeds;
    uint32_t *weights;
    size_t count;
    bool is_unit_weight;
} rendezvous_state;

uint64_t chash_name_hash64(const chash_node_rec *rec) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < rec->name_len; i++) h = (h ^ rec->name[i]) * 0x100000001b3ull;
    return chash_mix64(h ^ rec->name_len);
}

/* The node's draw for a key: a 64-bit value uniform over all of them. */
static inline uint64_t draw(uint64_t key, uint64_t seed) { return chash_mix64(key ^ seed); }

/*
 * Natural logarithm of x in (0, 1], without libm (the library needs only
 * libc): x = m * 2^e with m in [sqrt(2)/2, sqrt(2)), then
 * ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, whose odd series
 * is within 1e-17 after 12 terms. Deterministic: plain IEEE double.
 */
static double log_unit(double x) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m in [1, 2) */
    double m;
    memcpy(&m, &bits, sizeof m);
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e++;
    }
    double s = (m - 1) / (m + 1), s2 = s * s;
    double series = 1.0 / 25;
    for (int k = 11; k >= 0; k--) series = series * s2 + 1.0 / (2 * k + 1);
    return e * 0.6931471805599453 + 2 * s * series;
}

/* Node i's score for the key: higher wins. U from the top 53 bits, never 0. */
static inline double weighted_score(uint64_t d, uint32_t weight) {
    double u = ((double)(d >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    return -(double)weight / log_unit(u);
}

/* True when node a outranks node b for the key. Equal draws mean equal
 * seeds (a 2^-64 accident): the lower index wins. */
static inline bool outranks(const rendezvous_state *s, uint64_t key, size_t a, size_t b) {
    uint64_t da = draw(key, s->seeds[a]), db = draw(key, s->seeds[b]);
    if (!s->is_unit_weight) {
        double sa = weighted_score(da, s->weights[a]), sb = weighted_score(db, s->weights[b]);
        if (sa != sb) return sa > sb;
    }
    return da != db ? da > db : a < b;
}

bool chash_rendezvous_outranks(const void *state, uint64_t hash, size_t a, size_t b) {
    return outranks(state, chash_mix64(hash), a, b);
}

static void rendezvous_free(const algo_ctx *ctx, void *state) {
    rendezvous_state *s = state;
    if (!s) return;
    chash_mem_free(ctx->alloc, s->seeds);
    chash_mem_free(ctx->alloc, s->weights);
    chash_mem_free(ctx->alloc, s);
}

static rendezvous_state *state_new(const algo_ctx *ctx, size_t count) {
    rendezvous_state *s = chash_mem_alloc(ctx->alloc, sizeof *s);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->count = count;
    if (count) {
        s->seeds = chash_mem_alloc(ctx->alloc, chash_mul_size(count, sizeof *s->seeds));
        s->weights = chash_mem_alloc(ctx->alloc, chash_mul_size(count, sizeof *s->weights));
        if (!s->seeds || !s->weights) {
            rendezvous_free(ctx, s);
            return NULL;
        }
    }
    return s;
}

static int build(const algo_ctx *ctx, const algo_nodes *nodes, void **out) {
    rendezvous_state *s = state_new(ctx, nodes->count);
    if (!s) return CHASH_ENOMEM;
    s->is_unit_weight = true;
    for (size_t i = 0; i < nodes->count; i++) {
        s->seeds[i] = chash_name_hash64(&nodes->nodes[i]);
        s->weights[i] = nodes->nodes[i].weight;
        s->is_unit_weight &= s->weights[i] == s->weights[0];
    }
    *out = s;
    return CHASH_OK;
}

static int rendezvous_clone(const algo_ctx *ctx, const void *state, void **out) {
    const rendezvous_state *s = state;
    rendezvous_state *k = state_new(ctx, s->count);
    if (!k) return CHASH_ENOMEM;
    if (s->count) {
        memcpy(k->seeds, s->seeds, s->count * sizeof *k->seeds);
        memcpy(k->weights, s->weights, s->count * sizeof *k->weights);
    }
    k->is_unit_weight = s->is_unit_weight;
    *out = k;
    return CHASH_OK;
}

static size_t lookup(const void *state, uint64_t hash) {
    const rendezvous_state *s = state;
    uint64_t key = chash_mix64(hash);
    size_t best = 0;
    if (s->is_unit_weight) {
        /* The common case stays a tight integer loop. */
        uint64_t top = draw(key, s->seeds[0]);
        for (size_t i = 1; i < s->count; i++) {
            uint64_t d = draw(key, s->seeds[i]);
            if (d > top) {
                top = d;
                best = i;
            }
        }
        return best;
    }
    for (size_t i = 1; i < s->count; i++)
        if (outranks(s, key, i, best)) best = i;
    return best;
}

/* A min-heap of the `want` best nodes so far in nodes[0..size-1], weakest at
 * the root; scores are recomputed rather than stored, as lookup_n must not
 * allocate. */
static void sift_down(const rendezvous_state *s, uint64_t key, size_t *heap, size_t size,
                      size_t at) {
    for (;;) {
        size_t weakest = at, l = 2 * at + 1, r = l + 1;
        if (l < size && outranks(s, key, heap[weakest], heap[l])) weakest = l;
        if (r < size && outranks(s, key, heap[weakest], heap[r])) weakest = r;
        if (weakest == at) return;
        size_t t = heap[at];
        heap[at] = heap[weakest];
        heap[weakest] = t;
        at = weakest;
    }
}

static size_t lookup_n(const void *state, uint64_t hash, size_t want, size_t *nodes) {
    const rendezvous_state *s = state;
    uint64_t key = chash_mix64(hash);
    for (size_t i = 0; i < want; i++) nodes[i] = i;
    for (size_t i = want / 2; i-- > 0;) sift_down(s, key, nodes, want, i);
    for (size_t i = want; i < s->count; i++)
        if (outranks(s, key, i, nodes[0])) {
            nodes[0] = i;
            sift_down(s, key, nodes, want, 0);
        }
    /* Heap sort: the weakest goes to the end each time, so the list ends
     * strongest first. */
    for (size_t size = want; size > 1; size--) {
        size_t t = nodes[0];
        nodes[0] = nodes[size - 1];
        nodes[size - 1] = t;
        sift_down(s, key, nodes, size - 1, 0);
    }
    return want;
}

static size_t memory(const void *state) {
    const rendezvous_state *s = state;
    return sizeof *s + s->count * (sizeof *s->seeds + sizeof *s->weights);
}

const algo_ops chash_algo_rendezvous = {
    .build = build,
    .clone = rendezvous_clone,
    .free = rendezvous_free,
    .lookup = lookup,
    .lookup_n = lookup_n,
    .memory = memory,
};
