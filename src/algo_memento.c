/*
 * algo_memento.c - MementoHash (Coluzzi, Brocco, Antonucci, Leidi,
 * "MementoHash: A Stateful, Minimal Memory, Best Performing Consistent Hash
 * Algorithm", IEEE/ACM ToN 2024, arXiv 2306.09783): jump consistent hash
 * over n buckets, plus a memory of removed buckets so that any bucket, not
 * only the last, can leave.
 *
 * Removing bucket b while w buckets work records <b, replacer w - 1, the
 * previously removed bucket>: as if the working buckets were an array and b's
 * place went to the last of them (AnchorHash's trick), without storing the
 * array. A key whose jump bucket was removed rehashes into the w - 1 places
 * of that moment, and a place whose bucket had been removed earlier (its
 * replacer is at least w - 1) resolves through the chain of replacements.
 * Adding restores the most recently removed bucket (LIFO), which undoes its
 * removal exactly; with nothing removed it appends bucket n, as jump does.
 *
 * Guarantee: balance as jump's (uniform over the working buckets) and
 * minimal disruption for every change: a removal moves only the removed
 * node's keys, an addition only keys to the added node. A lookup is one jump
 * plus one rehash per removal the key meets; with no removals it is jump.
 * The placement depends on the order of changes, not only on the membership
 * (has_history): clone and change one object rather than rebuilding.
 *
 * Weights: a node of weight w owns w buckets; removing it removes them from
 * the highest down, adding takes w restored or appended buckets, and a new
 * weight removes or adds buckets of that node only.
 *
 * Invariant: slots[b] for b < bucket_count holds the owning node (MEMENTO_NONE
 * when removed) and the replacer (MEMENTO_NONE when working); replacers of
 * removed buckets are distinct and fall with each removal; prev[b] is the
 * bucket removed before b; last_removed heads that list; working counts the
 * buckets whose replacer is MEMENTO_NONE. is_identity: nothing removed and
 * bucket b is node b.
 */
#include "internal.h"

#define MEMENTO_NONE UINT32_MAX

typedef struct memento_slot {
    uint32_t node;
    uint32_t replacer;
} memento_slot;

typedef struct memento_state {
    memento_slot *slots;
    uint32_t *prev;
    uint32_t bucket_count; /* n: buckets ever in use, working or removed */
    uint32_t capacity;     /* slots allocated */
    uint32_t working;      /* w */
    uint32_t last_removed;
    size_t node_count;
    bool is_identity;
} memento_state;

static void memento_free(const algo_ctx *ctx, void *state) {
    memento_state *s = state;
    if (!s) return;
    chash_mem_free(ctx->alloc, s->slots);
    chash_mem_free(ctx->alloc, s->prev);
    chash_mem_free(ctx->alloc, s);
}

/* An empty state with room for `capacity` buckets. */
static memento_state *state_new(const algo_ctx *ctx, uint64_t capacity) {
    if (capacity > CHASH_POINTS_MAX) return NULL;
    memento_state *s = chash_mem_alloc(ctx->alloc, sizeof *s);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->last_removed = MEMENTO_NONE;
    s->capacity = (uint32_t)capacity;
    if (capacity) {
        s->slots = chash_mem_alloc(ctx->alloc, (size_t)capacity * sizeof *s->slots);
        s->prev = chash_mem_alloc(ctx->alloc, (size_t)capacity * sizeof *s->prev);
        if (!s->slots || !s->prev) {
            memento_free(ctx, s);
            return NULL;
        }
    }
    return s;
}

/* A copy of old with room for `extra` more buckets. */
static memento_state *state_copy(const algo_ctx *ctx, const memento_state *old, uint64_t extra) {
    memento_state *s = state_new(ctx, (uint64_t)old->bucket_count + extra);
    if (!s) return NULL;
    memento_slot *slots = s->slots;
    uint32_t *prev = s->prev, capacity = s->capacity;
    *s = *old;
    s->slots = slots;
    s->prev = prev;
    s->capacity = capacity;
    if (old->bucket_count) {
        memcpy(s->slots, old->slots, old->bucket_count * sizeof *s->slots);
        memcpy(s->prev, old->prev, old->bucket_count * sizeof *s->prev);
    }
    return s;
}

static void update_identity(memento_state *s) {
    s->is_identity = s->last_removed == MEMENTO_NONE;
    for (uint32_t b = 0; b < s->bucket_count && s->is_identity; b++)
        s->is_identity = s->slots[b].node == b;
}

/* A bucket for `node`: the last removed one back, else a new one at the end
 * (capacity permitting, which the caller arranged). */
static void bucket_take(memento_state *s, uint32_t node) {
    uint32_t b = s->last_removed;
    if (b != MEMENTO_NONE) {
        s->last_removed = s->prev[b];
    } else {
        b = s->bucket_count++;
    }
    s->slots[b] = (memento_slot){node, MEMENTO_NONE};
    s->prev[b] = MEMENTO_NONE;
    s->working++;
}

static void bucket_drop(memento_state *s, uint32_t b) {
    s->working--;
    if (s->last_removed == MEMENTO_NONE && b + 1 == s->bucket_count) {
        /* The tail with nothing else removed: plain jump shrinking. */
        s->bucket_count--;
        return;
    }
    /* The place of b goes to the last working place, numbered w - 1 after
     * the removal's decrement: its replacer. */
    s->slots[b] = (memento_slot){MEMENTO_NONE, s->working};
    s->prev[b] = s->last_removed;
    s->last_removed = b;
}

static int build(const algo_ctx *ctx, const algo_nodes *nodes, void **out) {
    uint64_t total = 0;
    for (size_t i = 0; i < nodes->count; i++) total += nodes->nodes[i].weight;
    if (total > CHASH_POINTS_MAX) return CHASH_ETOOBIG;
    memento_state *s = state_new(ctx, total);
    if (!s) return CHASH_ENOMEM;
    for (size_t i = 0; i < nodes->count; i++)
        for (uint32_t w = 0; w < nodes->nodes[i].weight; w++) bucket_take(s, (uint32_t)i);
    s->node_count = nodes->count;
    update_identity(s);
    *out = s;
    return CHASH_OK;
}

/* Buckets a change may add, checked against the bucket limit. */
static int room_for(const memento_state *old, uint32_t more, uint64_t *extra) {
    if ((uint64_t)old->bucket_count + more > CHASH_POINTS_MAX) return CHASH_ETOOBIG;
    *extra = more;
    return CHASH_OK;
}

static int added(const algo_ctx *ctx, const void *state, const algo_nodes *nodes, size_t index,
                 void **out) {
    const memento_state *old = state;
    uint32_t weight = nodes->nodes[index].weight;
    uint64_t extra;
    int rc = room_for(old, weight, &extra);
    if (rc != CHASH_OK) return rc;
    memento_state *s = state_copy(ctx, old, extra);
    if (!s) return CHASH_ENOMEM;
    for (uint32_t w = 0; w < weight; w++) bucket_take(s, (uint32_t)index);
    s->node_count = nodes->count;
    update_identity(s);
    *out = s;
    return CHASH_OK;
}

/* Drops `count` of node's buckets, highest first. */
static void drop_buckets(memento_state *s, uint32_t node, uint32_t count) {
    for (uint32_t b = s->bucket_count; b-- > 0 && count > 0;)
        if (s->slots[b].node == node && s->slots[b].replacer == MEMENTO_NONE) {
            bucket_drop(s, b);
            count--;
        }
}

static int removed(const algo_ctx *ctx, const void *state, const algo_nodes *nodes,
                   size_t index, void **out) {
    const memento_state *old = state;
    if (nodes->count == 0) return build(ctx, nodes, out);
    memento_state *s = state_copy(ctx, old, 0);
    if (!s) return CHASH_ENOMEM;
    drop_buckets(s, (uint32_t)index, UINT32_MAX);
    /* Node indexes after the removed one shift down, as chash's do. */
    for (uint32_t b = 0; b < s->bucket_count; b++)
        if (s->slots[b].node != MEMENTO_NONE && s->slots[b].node > index) s->slots[b].node--;
    s->node_count = nodes->count;
    update_identity(s);
    *out = s;
    return CHASH_OK;
}

static int reweighted(const algo_ctx *ctx, const void *state, const algo_nodes *nodes,
                      size_t index, void **out) {
    const memento_state *old = state;
    uint32_t have = 0, want = nodes->nodes[index].weight;
    for (uint32_t b = 0; b < old->bucket_count; b++) have += old->slots[b].node == index;
    uint64_t extra = 0;
    if (want > have) {
        int rc = room_for(old, want - have, &extra);
        if (rc != CHASH_OK) return rc;
    }
    memento_state *s = state_copy(ctx, old, extra);
    if (!s) return CHASH_ENOMEM;
    if (want > have)
        for (uint32_t w = have; w < want; w++) bucket_take(s, (uint32_t)index);
    else
        drop_buckets(s, (uint32_t)index, have - want);
    update_identity(s);
    *out = s;
    return CHASH_OK;
}

static int memento_clone(const algo_ctx *ctx, const void *state, void **out) {
    memento_state *s = state_copy(ctx, state, 0);
    if (!s) return CHASH_ENOMEM;
    *out = s;
    return CHASH_OK;
}

static size_t lookup(const void *state, uint64_t hash) {
    const memento_state *s = state;
    uint64_t key = chash_mix64(hash);
    uint32_t b = (uint32_t)chash_jump_bucket(key, (int32_t)s->bucket_count);
    if (s->is_identity) return b;
    uint32_t r = s->slots[b].replacer;
    while (r != MEMENTO_NONE) {
        /* b was removed when r buckets were left working: rehash the key
         * into those r places, uniformly. */
        uint64_t h = chash_mix64(key ^ ((uint64_t)(b + 1) * 0x9e3779b97f4a7c15ull));
        uint32_t p = (uint32_t)(((h >> 32) * r) >> 32);
        /* Place p holds bucket p unless p had been removed by then (its
         * replacer, >= r, names the bucket that took its place). */
        uint32_t t = s->slots[p].replacer;
        while (t != MEMENTO_NONE && t >= r) {
            p = t;
            t = s->slots[p].replacer;
        }
        /* p worked at that moment; if it was removed later (t < r), its own
         * removal sends the key on. */
        b = p;
        r = t;
    }
    return s->slots[b].node;
}

static size_t memory(const void *state) {
    const memento_state *s = state;
    return sizeof *s + (size_t)s->capacity * (sizeof *s->slots + sizeof *s->prev);
}

const algo_ops chash_algo_memento = {
    .build = build,
    .added = added,
    .removed = removed,
    .reweighted = reweighted,
    .clone = memento_clone,
    .free = memento_free,
    .lookup = lookup,
    .memory = memory,
    .has_history = true,
};
