/*
 * algo_buckets.c - fixed buckets ("units", "cells"; Alipay's LDC): a key
 * falls in one of B buckets, by its key hash mod B or by the number its
 * trailing digits spell (chash_buckets_position), and each bucket has one
 * owner: the node pinned to it, else the weighted rendezvous winner for the
 * bucket's number over all nodes. Per-key overrides beat the bucket.
 *
 * Rendezvous per bucket makes the unpinned part minimal, as rendezvous is
 * for keys: adding a node moves exactly the buckets it now wins, removing
 * one moves exactly its buckets, reweighting moves buckets only to or from
 * the node. The state keeps the winner of each bucket (owners[]), so a
 * lookup is one array read, and each change updates it with one comparison
 * per bucket (add, reweight) or a new rendezvous choice per bucket that
 * lost its owner (remove, unassign).
 *
 * Invariant: owners[b] is the node pinned to b when b's bit is set in
 * pinned[], else the rendezvous winner for hash b in rv (a state of
 * chash_algo_rendezvous over the same nodes). overrides[0..override_count-1]
 * hold distinct keys (the bytes placement reads) and nodes < node_count;
 * override_slots is an open-addressing table (power-of-two size, at most
 * half full, 0 empty) of override index + 1.
 */
#include "internal.h"

typedef struct override_rec {
    uint8_t *key;
    uint32_t key_len;
    uint32_t node;
} override_rec;

typedef struct buckets_state {
    uint32_t bucket_count;
    size_t node_count;
    void *rv;         /* rendezvous over the nodes: chash_algo_rendezvous */
    uint32_t *owners; /* [bucket_count] */
    uint64_t *pinned; /* bitmap of bucket_count bits */
    override_rec *overrides;
    size_t override_count, override_capacity;
    uint32_t *override_slots;
    size_t override_slot_count;
} buckets_state;

/* ---- where a key falls ------------------------------------------------- */

uint64_t chash_buckets_position(const chash_config *cfg, const uint8_t *part, size_t len) {
    if (cfg->bucket_by == CHASH_BUCKET_BY_DIGITS && len > 0 && part[len - 1] >= '0' &&
        part[len - 1] <= '9') {
        /* As many digits as the highest bucket has: 100 buckets read two,
         * so ids ending 00..99 fill them all and no digit is wasted. */
        unsigned want = 1;
        for (uint32_t top = cfg->bucket_count - 1; top >= 10; top /= 10) want++;
        uint64_t value = 0, scale = 1;
        for (unsigned i = 0; i < want && i < len; i++) {
            uint8_t ch = part[len - 1 - i];
            if (ch < '0' || ch > '9') break;
            value += (uint64_t)(ch - '0') * scale;
            scale *= 10;
        }
        return value;
    }
    return chash_config_part_hash(cfg, part, len);
}

static inline uint32_t bucket_of(const buckets_state *s, uint64_t hash) {
    return (uint32_t)(hash % s->bucket_count);
}

static inline bool is_pinned(const buckets_state *s, uint32_t b) {
    return (s->pinned[b / 64] >> (b % 64)) & 1u;
}

static inline size_t pinned_words(uint32_t bucket_count) { return (bucket_count + 63u) / 64u; }

/* ---- state ------------------------------------------------------------- */

static void overrides_free(const algo_ctx *ctx, buckets_state *s) {
    for (size_t i = 0; i < s->override_count; i++) chash_mem_free(ctx->alloc, s->overrides[i].key);
    chash_mem_free(ctx->alloc, s->overrides);
    chash_mem_free(ctx->alloc, s->override_slots);
    s->overrides = NULL;
    s->override_slots = NULL;
    s->override_count = s->override_capacity = s->override_slot_count = 0;
}

static void buckets_free(const algo_ctx *ctx, void *state) {
    buckets_state *s = state;
    if (!s) return;
    if (s->rv) chash_algo_rendezvous.free(ctx, s->rv);
    chash_mem_free(ctx->alloc, s->owners);
    chash_mem_free(ctx->alloc, s->pinned);
    overrides_free(ctx, s);
    chash_mem_free(ctx->alloc, s);
}

/* A state with its arrays allocated (owners, pinned zeroed) and rv taken
 * over; NULL (rv freed) when out of memory. */
static buckets_state *state_new(const algo_ctx *ctx, size_t node_count, void *rv) {
    buckets_state *s = chash_mem_alloc(ctx->alloc, sizeof *s);
    if (!s) {
        chash_algo_rendezvous.free(ctx, rv);
        return NULL;
    }
    memset(s, 0, sizeof *s);
    s->bucket_count = ctx->bucket_count;
    s->node_count = node_count;
    s->rv = rv;
    s->owners = chash_mem_alloc(ctx->alloc, chash_mul_size(s->bucket_count, sizeof *s->owners));
    s->pinned = chash_mem_alloc(ctx->alloc,
                                chash_mul_size(pinned_words(s->bucket_count), sizeof *s->pinned));
    if (!s->owners || !s->pinned) {
        buckets_free(ctx, s);
        return NULL;
    }
    memset(s->owners, 0, s->bucket_count * sizeof *s->owners);
    memset(s->pinned, 0, pinned_words(s->bucket_count) * sizeof *s->pinned);
    return s;
}

static uint32_t override_hash(const uint8_t *key, size_t len) {
    return chash_mix32(chash_crc32(0, key, len));
}

/* Slot holding the key, or the empty slot where it would go. */
static size_t override_slot(const uint32_t *slots, size_t slot_count,
                            const override_rec *overrides, const uint8_t *key, size_t len) {
    size_t mask = slot_count - 1;
    for (size_t i = override_hash(key, len) & mask;; i = (i + 1) & mask) {
        uint32_t v = slots[i];
        if (v == 0) return i;
        const override_rec *o = &overrides[v - 1];
        if (o->key_len == len && (len == 0 || memcmp(o->key, key, len) == 0)) return i;
    }
}

static void override_index_fill(buckets_state *s) {
    memset(s->override_slots, 0, s->override_slot_count * sizeof *s->override_slots);
    for (size_t n = 0; n < s->override_count; n++) {
        size_t i = override_slot(s->override_slots, s->override_slot_count, s->overrides,
                                 s->overrides[n].key, s->overrides[n].key_len);
        s->override_slots[i] = (uint32_t)(n + 1);
    }
}

static size_t override_slots_for(size_t count) {
    size_t n = 8;
    while (n / 2 < count) n *= 2;
    return n;
}

/* Copies old's overrides into s (empty): all of them, or with node `gone`
 * dropped and the nodes after it shifted down (SIZE_MAX: none gone). */
static int overrides_copy(const algo_ctx *ctx, buckets_state *s, const buckets_state *old,
                          size_t gone) {
    if (old->override_count == 0) return CHASH_OK;
    s->overrides = chash_mem_alloc(ctx->alloc, chash_mul_size(old->override_count,
                                                             sizeof *s->overrides));
    if (!s->overrides) return CHASH_ENOMEM;
    s->override_capacity = old->override_count;
    for (size_t i = 0; i < old->override_count; i++) {
        const override_rec *o = &old->overrides[i];
        if (o->node == gone) continue;
        override_rec *n = &s->overrides[s->override_count];
        n->key = chash_mem_alloc(ctx->alloc, o->key_len ? o->key_len : 1);
        if (!n->key) return CHASH_ENOMEM;
        if (o->key_len) memcpy(n->key, o->key, o->key_len);
        n->key_len = o->key_len;
        n->node = (gone != SIZE_MAX && o->node > gone) ? o->node - 1 : o->node;
        s->override_count++;
    }
    s->override_slot_count = override_slots_for(s->override_count);
    s->override_slots = chash_mem_alloc(ctx->alloc, chash_mul_size(s->override_slot_count,
                                                                  sizeof *s->override_slots));
    if (!s->override_slots) {
        s->override_slot_count = 0;
        return CHASH_ENOMEM;
    }
    override_index_fill(s);
    return CHASH_OK;
}

/* A new state for `nodes` carrying old's owners, pins and overrides (node
 * `gone` dropped from the overrides); the caller then fixes the owners. */
static int state_derive(const algo_ctx *ctx, const buckets_state *old, const algo_nodes *nodes,
                        size_t gone, buckets_state **out) {
    void *rv = NULL;
    int rc = chash_algo_rendezvous.build(ctx, nodes, &rv);
    if (rc != CHASH_OK) return rc;
    buckets_state *s = state_new(ctx, nodes->count, rv);
    if (!s) return CHASH_ENOMEM;
    memcpy(s->owners, old->owners, s->bucket_count * sizeof *s->owners);
    memcpy(s->pinned, old->pinned, pinned_words(s->bucket_count) * sizeof *s->pinned);
    rc = overrides_copy(ctx, s, old, gone);
    if (rc != CHASH_OK) {
        buckets_free(ctx, s);
        return rc;
    }
    *out = s;
    return CHASH_OK;
}

static size_t rendezvous_owner(const buckets_state *s, uint32_t b) {
    return chash_algo_rendezvous.lookup(s->rv, b);
}

static int build(const algo_ctx *ctx, const algo_nodes *nodes, void **out) {
    void *rv = NULL;
    int rc = chash_algo_rendezvous.build(ctx, nodes, &rv);
    if (rc != CHASH_OK) return rc;
    buckets_state *s = state_new(ctx, nodes->count, rv);
    if (!s) return CHASH_ENOMEM;
    if (nodes->count > 0)
        for (uint32_t b = 0; b < s->bucket_count; b++)
            s->owners[b] = (uint32_t)rendezvous_owner(s, b);
    *out = s;
    return CHASH_OK;
}

static int added(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                 void **out) {
    const buckets_state *o = old;
    if (o->node_count == 0) return build(ctx, nodes, out);
    buckets_state *s = NULL;
    int rc = state_derive(ctx, o, nodes, SIZE_MAX, &s);
    if (rc != CHASH_OK) return rc;
    /* Only the new node's score is new: a bucket moves iff it beats the
     * owner, the old winner among all the others. */
    for (uint32_t b = 0; b < s->bucket_count; b++)
        if (!is_pinned(s, b) && chash_rendezvous_outranks(s->rv, b, index, s->owners[b]))
            s->owners[b] = (uint32_t)index;
    *out = s;
    return CHASH_OK;
}

static int removed(const algo_ctx *ctx, const void *old, const algo_nodes *nodes, size_t index,
                   void **out) {
    const buckets_state *o = old;
    buckets_state *s = NULL;
    int rc = state_derive(ctx, o, nodes, index, &s);
    if (rc != CHASH_OK) return rc;
    for (uint32_t b = 0; b < s->bucket_count; b++) {
        if (s->owners[b] > index) {
            s->owners[b]--; /* pins follow their node to its new index */
        } else if (s->owners[b] == index) {
            s->pinned[b / 64] &= ~((uint64_t)1 << (b % 64));
            s->owners[b] = nodes->count ? (uint32_t)rendezvous_owner(s, b) : 0;
        }
    }
    *out = s;
    return CHASH_OK;
}

static int reweighted(const algo_ctx *ctx, const void *old, const algo_nodes *nodes,
                      size_t index, void **out) {
    const buckets_state *o = old;
    buckets_state *s = NULL;
    int rc = state_derive(ctx, o, nodes, SIZE_MAX, &s);
    if (rc != CHASH_OK) return rc;
    /* Only this node's score changed: heavier, it can only win buckets;
     * lighter, only its own buckets can go, to their next best. */
    for (uint32_t b = 0; b < s->bucket_count; b++) {
        if (is_pinned(s, b)) continue;
        if (s->owners[b] == index)
            s->owners[b] = (uint32_t)rendezvous_owner(s, b);
        else if (chash_rendezvous_outranks(s->rv, b, index, s->owners[b]))
            s->owners[b] = (uint32_t)index;
    }
    *out = s;
    return CHASH_OK;
}

static int buckets_clone(const algo_ctx *ctx, const void *state, void **out) {
    const buckets_state *o = state;
    void *rv = NULL;
    int rc = chash_algo_rendezvous.clone(ctx, o->rv, &rv);
    if (rc != CHASH_OK) return rc;
    buckets_state *s = state_new(ctx, o->node_count, rv);
    if (!s) return CHASH_ENOMEM;
    memcpy(s->owners, o->owners, s->bucket_count * sizeof *s->owners);
    memcpy(s->pinned, o->pinned, pinned_words(s->bucket_count) * sizeof *s->pinned);
    rc = overrides_copy(ctx, s, o, SIZE_MAX);
    if (rc != CHASH_OK) {
        buckets_free(ctx, s);
        return rc;
    }
    *out = s;
    return CHASH_OK;
}

/* ---- lookups ----------------------------------------------------------- */

static size_t lookup(const void *state, uint64_t hash) {
    const buckets_state *s = state;
    return s->owners[bucket_of(s, hash)];
}

static size_t lookup_n_from(const void *state, uint64_t hash, size_t first, size_t want,
                            size_t *nodes) {
    const buckets_state *s = state;
    uint32_t b = bucket_of(s, hash);
    size_t found = chash_algo_rendezvous.lookup_n(s->rv, b, want, nodes);
    /* `first` leads; the others keep their rendezvous order. If it is not
     * among the best `want`, the best want - 1 others are the list's head. */
    size_t at = found - 1;
    for (size_t i = 0; i < found; i++)
        if (nodes[i] == first) {
            at = i;
            break;
        }
    memmove(nodes + 1, nodes, at * sizeof *nodes);
    nodes[0] = first;
    return found;
}

static size_t lookup_n(const void *state, uint64_t hash, size_t want, size_t *nodes) {
    return lookup_n_from(state, hash, lookup(state, hash), want, nodes);
}

/* Each bucket holds the 32-bit values v with v mod B == b: floor(2^32 / B)
 * of them, one more for the first 2^32 mod B buckets. */
static uint64_t ownership(const void *state, uint64_t *shares, size_t node_count) {
    const buckets_state *s = state;
    const uint64_t space = (uint64_t)1 << 32;
    uint64_t per = space / s->bucket_count, extra = space % s->bucket_count;
    (void)node_count;
    for (uint32_t b = 0; b < s->bucket_count; b++) shares[s->owners[b]] += per + (b < extra);
    return space;
}

static size_t memory(const void *state) {
    const buckets_state *s = state;
    size_t n = sizeof *s + chash_algo_rendezvous.memory(s->rv) +
               s->bucket_count * sizeof *s->owners +
               pinned_words(s->bucket_count) * sizeof *s->pinned +
               s->override_capacity * sizeof *s->overrides +
               s->override_slot_count * sizeof *s->override_slots;
    for (size_t i = 0; i < s->override_count; i++) n += s->overrides[i].key_len;
    return n;
}

/* ---- pins and overrides ------------------------------------------------ */

static bool override_find(const void *state, const uint8_t *part, size_t len, size_t *node) {
    const buckets_state *s = state;
    if (s->override_count == 0) return false;
    uint32_t v = s->override_slots[override_slot(s->override_slots, s->override_slot_count,
                                                 s->overrides, part, len)];
    if (v == 0) return false;
    *node = s->overrides[v - 1].node;
    return true;
}

static void assign(void *state, uint32_t first, uint32_t last, size_t node) {
    buckets_state *s = state;
    for (uint32_t b = first;; b++) {
        s->owners[b] = (uint32_t)node;
        s->pinned[b / 64] |= (uint64_t)1 << (b % 64);
        if (b == last) break;
    }
}

static void unassign(void *state, uint32_t first, uint32_t last) {
    buckets_state *s = state;
    for (uint32_t b = first;; b++) {
        if (is_pinned(s, b)) {
            s->pinned[b / 64] &= ~((uint64_t)1 << (b % 64));
            if (s->node_count) s->owners[b] = (uint32_t)rendezvous_owner(s, b);
        }
        if (b == last) break;
    }
}

static int override_set(const algo_ctx *ctx, void *state, const uint8_t *part, size_t len,
                        size_t node) {
    buckets_state *s = state;
    size_t old_node;
    if (override_find(s, part, len, &old_node)) {
        size_t i = override_slot(s->override_slots, s->override_slot_count, s->overrides, part,
                                 len);
        s->overrides[s->override_slots[i] - 1].node = (uint32_t)node;
        return CHASH_OK;
    }
    /* Everything that can fail before anything changes. */
    uint8_t *key = chash_mem_alloc(ctx->alloc, len ? len : 1);
    if (!key) return CHASH_ENOMEM;
    if (len) memcpy(key, part, len);
    if (s->override_count == s->override_capacity) {
        size_t cap = s->override_capacity ? 2 * s->override_capacity : 4;
        override_rec *grown =
            chash_mem_realloc(ctx->alloc, s->overrides, chash_mul_size(cap, sizeof *grown));
        if (!grown) {
            chash_mem_free(ctx->alloc, key);
            return CHASH_ENOMEM;
        }
        s->overrides = grown; /* only more room: the object is unchanged */
        s->override_capacity = cap;
    }
    size_t slot_count = override_slots_for(s->override_count + 1);
    if (slot_count != s->override_slot_count) {
        uint32_t *slots =
            chash_mem_alloc(ctx->alloc, chash_mul_size(slot_count, sizeof *slots));
        if (!slots) {
            chash_mem_free(ctx->alloc, key);
            return CHASH_ENOMEM;
        }
        chash_mem_free(ctx->alloc, s->override_slots);
        s->override_slots = slots;
        s->override_slot_count = slot_count;
        override_index_fill(s);
    }
    s->overrides[s->override_count] = (override_rec){key, (uint32_t)len, (uint32_t)node};
    size_t i = override_slot(s->override_slots, s->override_slot_count, s->overrides, part, len);
    s->override_slots[i] = (uint32_t)(++s->override_count);
    return CHASH_OK;
}

static int override_remove(const algo_ctx *ctx, void *state, const uint8_t *part, size_t len) {
    buckets_state *s = state;
    if (s->override_count == 0) return CHASH_ENOENT;
    size_t i = override_slot(s->override_slots, s->override_slot_count, s->overrides, part, len);
    uint32_t v = s->override_slots[i];
    if (v == 0) return CHASH_ENOENT;
    /* The last record fills the hole, then the index is refilled in place:
     * O(overrides), no allocation. */
    chash_mem_free(ctx->alloc, s->overrides[v - 1].key);
    s->overrides[v - 1] = s->overrides[--s->override_count];
    override_index_fill(s);
    return CHASH_OK;
}

static size_t override_count(const void *state) {
    return ((const buckets_state *)state)->override_count;
}

static void override_at(const void *state, size_t index, const uint8_t **part, size_t *len,
                        size_t *node) {
    const buckets_state *s = state;
    *part = s->overrides[index].key;
    *len = s->overrides[index].key_len;
    *node = s->overrides[index].node;
}

static size_t owner(const void *state, uint32_t bucket) {
    return ((const buckets_state *)state)->owners[bucket];
}

static const algo_bucket_ops bucket_ops = {
    .override_find = override_find,
    .lookup_n_from = lookup_n_from,
    .assign = assign,
    .unassign = unassign,
    .override_set = override_set,
    .override_remove = override_remove,
    .override_count = override_count,
    .override_at = override_at,
    .owner = owner,
};

const algo_ops chash_algo_buckets = {
    .build = build,
    .added = added,
    .removed = removed,
    .reweighted = reweighted,
    .clone = buckets_clone,
    .free = buckets_free,
    .lookup = lookup,
    .lookup_n = lookup_n,
    .ownership = ownership,
    .memory = memory,
    .has_history = true,
    .buckets = &bucket_ops,
};
