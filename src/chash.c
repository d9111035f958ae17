/*
 * chash.c - the entry points: argument checks, the membership (node records
 * and a name index) and dispatch to the chosen algorithm.
 *
 * Invariants: nodes[0..node_count-1] are the members in insertion order;
 * name_slots is an open-addressing table (power-of-two size, at most half
 * full) of node index + 1, 0 meaning empty; `state` is the algorithm's
 * structure for exactly this membership. Every change builds the new state
 * first and commits only when nothing can fail any more. config is complete
 * (struct_size is this library's); a caller's config, of whatever size, is
 * read and written only through config_read and chash_get_config.
 */
#include "internal.h"

#include <stddef.h>

struct chash {
    chash_config config; /* normalised: no zero defaults left */
    const algo_ops *ops;
    chash_node_rec *nodes;
    size_t node_count;
    size_t node_capacity;
    uint32_t *name_slots;
    size_t name_slot_count;
    size_t name_bytes;
    void *state;
};

/* ---- the name index ---------------------------------------------------- */

static uint32_t name_hash(const void *name, size_t len) {
    return chash_mix32(chash_crc32(0, name, len));
}

/* Slot holding `name`, or the empty slot where it would go. */
static size_t name_slot(const uint32_t *slots, size_t slot_count, const chash_node_rec *nodes,
                        const void *name, size_t len) {
    size_t mask = slot_count - 1;
    size_t i = name_hash(name, len) & mask;
    for (;;) {
        uint32_t v = slots[i];
        if (v == 0) return i;
        const chash_node_rec *r = &nodes[v - 1];
        if (r->name_len == len && memcmp(r->name, name, len) == 0) return i;
        i = (i + 1) & mask;
    }
}

static void name_index_fill(uint32_t *slots, size_t slot_count, const chash_node_rec *nodes,
                            size_t count) {
    memset(slots, 0, slot_count * sizeof *slots);
    for (size_t n = 0; n < count; n++) {
        size_t i = name_slot(slots, slot_count, nodes, nodes[n].name, nodes[n].name_len);
        slots[i] = (uint32_t)(n + 1);
    }
}

/* Smallest power of two that keeps `count` names at most half full. */
static size_t name_slots_for(size_t count) {
    size_t n = 8;
    while (n / 2 < count) n *= 2;
    return n;
}

static bool find_index(const chash *c, const void *name, size_t len, size_t *index) {
    if (c->node_count == 0) return false;
    uint32_t v = c->name_slots[name_slot(c->name_slots, c->name_slot_count, c->nodes, name, len)];
    if (v == 0) return false;
    *index = v - 1;
    return true;
}

/* ---- helpers ----------------------------------------------------------- */

static algo_ctx ctx_of(const chash *c) {
    algo_ctx ctx = {c->config.scheme,           c->config.vnodes,
                    &c->config.allocator,        c->config.maglev_table_size,
                    c->config.probe_count,       c->config.load_epsilon,
                    c->config.bucket_count};
    return ctx;
}

static int check_name(const void *name, size_t len) {
    if (!name) return CHASH_EINVAL;
    if (len == 0 || len > CHASH_NAME_MAX) return CHASH_ENAME;
    return CHASH_OK;
}

static int check_weight(uint32_t weight) {
    return (weight == 0 || weight > CHASH_WEIGHT_MAX) ? CHASH_EWEIGHT : CHASH_OK;
}

static int reserve_nodes(chash *c, size_t count) {
    if (count <= c->node_capacity) return CHASH_OK;
    if (count > UINT32_MAX - 1) return CHASH_ETOOBIG;
    size_t cap = c->node_capacity ? c->node_capacity : 8;
    while (cap < count) cap *= 2;
    chash_node_rec *n = chash_mem_realloc(&c->config.allocator, c->nodes,
                                          chash_mul_size(cap, sizeof *n));
    if (!n) return CHASH_ENOMEM;
    c->nodes = n;
    c->node_capacity = cap;
    return CHASH_OK;
}

static uint8_t *copy_name(const chash_allocator *a, const void *name, size_t len) {
    uint8_t *p = chash_mem_alloc(a, len);
    if (p) memcpy(p, name, len);
    return p;
}

static void swap_state(chash *c, void *state) {
    algo_ctx ctx = ctx_of(c);
    if (c->state) c->ops->free(&ctx, c->state);
    c->state = state;
}

static const algo_ops *ops_for(chash_algo algo) {
    switch (algo) {
    case CHASH_ALGO_RING: return &chash_algo_ring;
    case CHASH_ALGO_MODULO: return &chash_algo_modulo;
    case CHASH_ALGO_JUMP: return &chash_algo_jump;
    case CHASH_ALGO_RENDEZVOUS: return &chash_algo_rendezvous;
    case CHASH_ALGO_MAGLEV: return &chash_algo_maglev;
    case CHASH_ALGO_MULTIPROBE: return &chash_algo_multiprobe;
    case CHASH_ALGO_BOUNDED: return &chash_algo_bounded;
    case CHASH_ALGO_MEMENTO: return &chash_algo_memento;
    case CHASH_ALGO_BUCKETS: return &chash_algo_buckets;
    }
    return NULL;
}

static bool is_prime(uint32_t n) {
    if (n < 2) return false;
    for (uint32_t d = 2; d <= n / d; d++)
        if (n % d == 0) return false;
    return true;
}

/* Fills the defaults of the algorithms' options; false for one out of range.
 * Checked whatever the algorithm, so a config is valid or not on its own. */
static bool algo_options_normalise(chash_config *config) {
    if (config->maglev_table_size == 0) config->maglev_table_size = CHASH_MAGLEV_TABLE_DEFAULT;
    if (config->probe_count == 0) config->probe_count = CHASH_PROBES_DEFAULT;
    if (config->load_epsilon == 0) config->load_epsilon = CHASH_LOAD_EPSILON_DEFAULT;
    if (config->bucket_count == 0) config->bucket_count = CHASH_BUCKETS_DEFAULT;
    return config->maglev_table_size <= CHASH_MAGLEV_TABLE_MAX &&
           is_prime(config->maglev_table_size) && config->probe_count <= CHASH_PROBES_MAX &&
           config->load_epsilon > 0 && config->load_epsilon <= CHASH_LOAD_EPSILON_MAX &&
           config->bucket_count <= CHASH_BUCKETS_MAX &&
           (unsigned)config->bucket_by < CHASH_BUCKET_BY_END;
}

/* ---- a caller's config, of any size ------------------------------------ */

#define FIELD_END(field) (offsetof(chash_config, field) + sizeof(((chash_config *)0)->field))

/* Where each field of chash_config ends, in order. A caller's config shares
 * with ours every field that ends within its struct_size. */
static const size_t config_field_ends[] = {
    FIELD_END(struct_size), FIELD_END(algo),        FIELD_END(scheme),
    FIELD_END(vnodes),      FIELD_END(allocator),   FIELD_END(key_hash),
    FIELD_END(hash_tag),    FIELD_END(maglev_table_size), FIELD_END(probe_count),
    FIELD_END(load_epsilon), FIELD_END(bucket_count), FIELD_END(bucket_by),
};
#define CONFIG_FIELD_COUNT (sizeof config_field_ends / sizeof config_field_ends[0])
/* No tail padding, so an older struct_size never covers a newer field; a
 * field added to chash_config must also be added to the table above. */
_Static_assert(FIELD_END(bucket_by) == sizeof(chash_config),
               "chash_config: list the new field in config_field_ends, pad explicitly");

/* A struct_size no caller can have: a missing or garbage size. */
#define CONFIG_SIZE_MAX 4096u

static int config_size_check(size_t struct_size) {
    return (struct_size < FIELD_END(struct_size) || struct_size > CONFIG_SIZE_MAX) ? CHASH_ESIZE
                                                                                  : CHASH_OK;
}

/* Bytes from the start that a caller's config of struct_size shares with
 * ours: up to the end of the last field that fits in both. */
static size_t config_shared_bytes(size_t struct_size) {
    size_t shared = 0;
    for (size_t i = 0; i < CONFIG_FIELD_COUNT && config_field_ends[i] <= struct_size; i++)
        shared = config_field_ends[i];
    return shared;
}

/* The caller's config, its missing fields zero (default). A newer caller's
 * fields that we do not have must be zero: silently ignoring an option the
 * caller asked for would place keys differently than it expects. */
static int config_read(const chash_config *cfg, chash_config *config) {
    *config = (chash_config){.struct_size = sizeof(chash_config)};
    if (!cfg) return CHASH_OK;
    size_t struct_size;
    memcpy(&struct_size, cfg, sizeof struct_size);
    int rc = config_size_check(struct_size);
    if (rc != CHASH_OK) return rc;
    const unsigned char *bytes = (const unsigned char *)cfg;
    for (size_t i = sizeof(chash_config); i < struct_size; i++)
        if (bytes[i] != 0) return CHASH_ESIZE;
    size_t shared = config_shared_bytes(struct_size);
    memcpy((unsigned char *)config + sizeof struct_size, bytes + sizeof struct_size,
           shared - sizeof struct_size);
    return CHASH_OK;
}

/* ---- lifetime ---------------------------------------------------------- */

int chash_create(const chash_config *cfg, chash **out) {
    if (!out) return CHASH_EINVAL;
    chash_config config;
    int rc = config_read(cfg, &config);
    if (rc != CHASH_OK) return rc;
    if (config.vnodes == 0) config.vnodes = CHASH_VNODES_DEFAULT;
    if (config.vnodes > CHASH_VNODES_MAX) return CHASH_EINVAL;
    if ((unsigned)config.scheme >= CHASH_SCHEME_END) return CHASH_EINVAL;
    if ((unsigned)config.key_hash >= CHASH_HASH_END) return CHASH_EINVAL;
    if (!chash_hash_tag_valid(config.hash_tag)) return CHASH_EINVAL;
    if (config.scheme == CHASH_SCHEME_REDIS_CLUSTER && !chash_redis_cluster_normalise(&config))
        return CHASH_EINVAL;
    if (config.key_hash == CHASH_HASH_DEFAULT)
        config.key_hash = chash_scheme_default_hash(config.scheme);
    if (config.hash_tag[0] == '\0') memset(config.hash_tag, 0, sizeof config.hash_tag);
    config.hash_tag[3] = '\0';
    if (!algo_options_normalise(&config)) return CHASH_EINVAL;
    const algo_ops *ops = ops_for(config.algo);
    if (!ops) return CHASH_EINVAL;
    if (!chash_allocator_is_custom(&config.allocator)) {
        config.allocator = (chash_allocator){0};
    }

    chash *c = chash_mem_alloc(&config.allocator, sizeof *c);
    if (!c) return CHASH_ENOMEM;
    memset(c, 0, sizeof *c);
    c->config = config;
    c->ops = ops;
    algo_ctx ctx = ctx_of(c);
    algo_nodes none = {NULL, 0};
    rc = ops->build(&ctx, &none, &c->state);
    if (rc != CHASH_OK) {
        chash_mem_free(&config.allocator, c);
        return rc;
    }
    *out = c;
    return CHASH_OK;
}

void chash_free(chash *c) {
    if (!c) return;
    chash_allocator a = c->config.allocator;
    swap_state(c, NULL);
    for (size_t i = 0; i < c->node_count; i++) chash_mem_free(&a, c->nodes[i].name);
    chash_mem_free(&a, c->nodes);
    chash_mem_free(&a, c->name_slots);
    chash_mem_free(&a, c);
}

int chash_clone(const chash *c, chash **out) {
    if (!c || !out) return CHASH_EINVAL;
    const chash_allocator *a = &c->config.allocator;
    chash *k = chash_mem_alloc(a, sizeof *k);
    if (!k) return CHASH_ENOMEM;
    memset(k, 0, sizeof *k);
    k->config = c->config;
    k->ops = c->ops;
    int rc = CHASH_ENOMEM;
    algo_ctx ctx = ctx_of(c);
    if (reserve_nodes(k, c->node_count) != CHASH_OK) goto fail;
    for (; k->node_count < c->node_count; k->node_count++) {
        const chash_node_rec *src = &c->nodes[k->node_count];
        chash_node_rec *dst = &k->nodes[k->node_count];
        *dst = *src;
        dst->name = copy_name(a, src->name, src->name_len);
        if (!dst->name) goto fail;
    }
    k->name_bytes = c->name_bytes;
    if (c->name_slot_count) {
        k->name_slots = chash_mem_alloc(a, chash_mul_size(c->name_slot_count, sizeof(uint32_t)));
        if (!k->name_slots) goto fail;
        memcpy(k->name_slots, c->name_slots, c->name_slot_count * sizeof(uint32_t));
        k->name_slot_count = c->name_slot_count;
    }
    rc = c->ops->clone(&ctx, c->state, &k->state);
    if (rc != CHASH_OK) goto fail;
    *out = k;
    return CHASH_OK;
fail:
    chash_free(k);
    return rc;
}

/* ---- membership -------------------------------------------------------- */

int chash_add(chash *c, const void *name, size_t name_len, uint32_t weight) {
    chash_node_spec spec = {name, name_len, weight};
    if (!c) return CHASH_EINVAL;
    return chash_add_many(c, &spec, 1);
}

int chash_add_many(chash *c, const chash_node_spec *specs, size_t count) {
    if (!c || (!specs && count > 0)) return CHASH_EINVAL;
    if (count == 0) return CHASH_OK;
    for (size_t i = 0; i < count; i++) {
        int rc = check_name(specs[i].name, specs[i].name_len);
        if (rc == CHASH_OK) rc = check_weight(specs[i].weight);
        if (rc != CHASH_OK) return rc;
        size_t dummy;
        if (find_index(c, specs[i].name, specs[i].name_len, &dummy)) return CHASH_EEXIST;
    }
    if (count > UINT32_MAX - 1 - c->node_count) return CHASH_ETOOBIG;
    size_t old_count = c->node_count, total = old_count + count;
    int rc = reserve_nodes(c, total);
    if (rc != CHASH_OK) return rc;

    /* Fill the new records beyond node_count: invisible until committed. */
    const chash_allocator *a = &c->config.allocator;
    size_t copied = 0;
    size_t added_bytes = 0;
    uint32_t *slots = NULL;
    void *state = NULL;
    rc = CHASH_ENOMEM;
    for (; copied < count; copied++) {
        chash_node_rec *r = &c->nodes[old_count + copied];
        r->name = copy_name(a, specs[copied].name, specs[copied].name_len);
        if (!r->name) goto fail;
        r->name_len = (uint32_t)specs[copied].name_len;
        r->weight = specs[copied].weight;
        added_bytes += r->name_len;
    }
    /* A fresh index over all names also catches a name repeated in specs. */
    size_t slot_count = name_slots_for(total);
    slots = chash_mem_alloc(a, chash_mul_size(slot_count, sizeof *slots));
    if (!slots) goto fail;
    memset(slots, 0, slot_count * sizeof *slots);
    for (size_t n = 0; n < total; n++) {
        size_t i = name_slot(slots, slot_count, c->nodes, c->nodes[n].name, c->nodes[n].name_len);
        if (slots[i] != 0) {
            rc = CHASH_EEXIST;
            goto fail;
        }
        slots[i] = (uint32_t)(n + 1);
    }

    algo_ctx ctx = ctx_of(c);
    algo_nodes view = {c->nodes, total};
    if (count == 1 && old_count > 0 && c->ops->added) {
        rc = c->ops->added(&ctx, c->state, &view, old_count, &state);
    } else if (old_count > 0 && c->ops->has_history) {
        /* One node at a time, as chash_add would: the placement remembers. */
        rc = CHASH_OK;
        for (size_t i = old_count; i < total && rc == CHASH_OK; i++) {
            algo_nodes part = {c->nodes, i + 1};
            void *next = NULL;
            rc = c->ops->added(&ctx, state ? state : c->state, &part, i, &next);
            if (state) c->ops->free(&ctx, state);
            state = next;
        }
    } else {
        rc = c->ops->build(&ctx, &view, &state);
    }
    if (rc != CHASH_OK) goto fail;

    chash_mem_free(a, c->name_slots);
    c->name_slots = slots;
    c->name_slot_count = slot_count;
    c->node_count = total;
    c->name_bytes += added_bytes;
    swap_state(c, state);
    return CHASH_OK;
fail:
    for (size_t i = 0; i < copied; i++) chash_mem_free(a, c->nodes[old_count + i].name);
    chash_mem_free(a, slots);
    return rc;
}

int chash_remove(chash *c, const void *name, size_t name_len) {
    if (!c || (!name && name_len > 0)) return CHASH_EINVAL;
    size_t idx;
    if (!name || !find_index(c, name, name_len, &idx)) return CHASH_ENOENT;
    const chash_allocator *a = &c->config.allocator;
    size_t remaining = c->node_count - 1;
    chash_node_rec *nodes = chash_mem_alloc(a, chash_mul_size(remaining ? remaining : 1,
                                                              sizeof *nodes));
    if (!nodes) return CHASH_ENOMEM;
    memcpy(nodes, c->nodes, idx * sizeof *nodes);
    memcpy(nodes + idx, c->nodes + idx + 1, (remaining - idx) * sizeof *nodes);

    algo_ctx ctx = ctx_of(c);
    algo_nodes view = {nodes, remaining};
    void *state = NULL;
    int rc = c->ops->removed ? c->ops->removed(&ctx, c->state, &view, idx, &state)
                             : c->ops->build(&ctx, &view, &state);
    if (rc != CHASH_OK) {
        chash_mem_free(a, nodes);
        return rc;
    }
    c->name_bytes -= c->nodes[idx].name_len;
    chash_mem_free(a, c->nodes[idx].name);
    chash_mem_free(a, c->nodes);
    c->nodes = nodes;
    c->node_count = remaining;
    c->node_capacity = remaining ? remaining : 1;
    /* Same slot count, so refilling in place cannot fail. */
    name_index_fill(c->name_slots, c->name_slot_count, c->nodes, c->node_count);
    swap_state(c, state);
    return CHASH_OK;
}

int chash_set_weight(chash *c, const void *name, size_t name_len, uint32_t weight) {
    if (!c || (!name && name_len > 0)) return CHASH_EINVAL;
    size_t idx;
    if (!name || !find_index(c, name, name_len, &idx)) return CHASH_ENOENT;
    int rc = check_weight(weight);
    if (rc != CHASH_OK) return rc;
    uint32_t old_weight = c->nodes[idx].weight;
    if (old_weight == weight) return CHASH_OK;
    c->nodes[idx].weight = weight; /* private object: undone below on failure */
    algo_ctx ctx = ctx_of(c);
    algo_nodes view = {c->nodes, c->node_count};
    void *state = NULL;
    rc = c->ops->reweighted ? c->ops->reweighted(&ctx, c->state, &view, idx, &state)
                            : c->ops->build(&ctx, &view, &state);
    if (rc != CHASH_OK) {
        c->nodes[idx].weight = old_weight;
        return rc;
    }
    swap_state(c, state);
    return CHASH_OK;
}

/* ---- reading ----------------------------------------------------------- */

size_t chash_node_count(const chash *c) { return c ? c->node_count : 0; }

int chash_node(const chash *c, size_t index, const void **name, size_t *name_len,
               uint32_t *weight) {
    if (!c) return CHASH_EINVAL;
    if (index >= c->node_count) return CHASH_ENOENT;
    const chash_node_rec *r = &c->nodes[index];
    if (name) *name = r->name;
    if (name_len) *name_len = r->name_len;
    if (weight) *weight = r->weight;
    return CHASH_OK;
}

int chash_find(const chash *c, const void *name, size_t name_len, size_t *index) {
    if (!c || !index || (!name && name_len > 0)) return CHASH_EINVAL;
    if (!name || !find_index(c, name, name_len, index)) return CHASH_ENOENT;
    return CHASH_OK;
}

/* Where a key lands: its key hash, or for buckets chash_buckets_position
 * (which may read the key's digits instead). */
static uint64_t key_position(const chash *c, const void *key, size_t key_len) {
    if (!c->ops->buckets) return chash_config_key_hash(&c->config, key, key_len);
    const uint8_t *part = key;
    chash_config_key_part(&c->config, &part, &key_len);
    return chash_buckets_position(&c->config, part, key_len);
}

/* The key's override's node (buckets); false when it has none. */
static bool override_of(const chash *c, const void *key, size_t key_len, size_t *node) {
    if (!c->ops->buckets) return false;
    const uint8_t *part = key;
    chash_config_key_part(&c->config, &part, &key_len);
    return c->ops->buckets->override_find(c->state, part, key_len, node);
}

uint64_t chash_key_hash(const chash *c, const void *key, size_t key_len) {
    if (!c || (!key && key_len > 0)) return 0;
    return key_position(c, key, key_len);
}

int chash_lookup_hash(const chash *c, uint64_t hash, size_t *node) {
    if (!c || !node) return CHASH_EINVAL;
    if (c->node_count == 0) return CHASH_EEMPTY;
    *node = c->ops->lookup(c->state, hash);
    return CHASH_OK;
}

int chash_lookup(const chash *c, const void *key, size_t key_len, size_t *node) {
    if (!c || !node || (!key && key_len > 0)) return CHASH_EINVAL;
    if (c->node_count == 0) return CHASH_EEMPTY;
    if (override_of(c, key, key_len, node)) return CHASH_OK;
    *node = c->ops->lookup(c->state, key_position(c, key, key_len));
    return CHASH_OK;
}

int chash_lookup_n(const chash *c, const void *key, size_t key_len, size_t want, size_t *nodes,
                   size_t *found) {
    if (!c || !found || (!nodes && want > 0) || (!key && key_len > 0)) return CHASH_EINVAL;
    if (c->node_count == 0) return CHASH_EEMPTY;
    if (!c->ops->lookup_n) return CHASH_ENOTSUP;
    if (want > c->node_count) want = c->node_count;
    uint64_t h = key_position(c, key, key_len);
    size_t first;
    if (want && override_of(c, key, key_len, &first))
        *found = c->ops->buckets->lookup_n_from(c->state, h, first, want, nodes);
    else
        *found = want ? c->ops->lookup_n(c->state, h, want, nodes) : 0;
    return CHASH_OK;
}

int chash_ownership(const chash *c, uint64_t *shares, size_t node_count, uint64_t *space) {
    if (!c || !shares || !space || node_count < c->node_count) return CHASH_EINVAL;
    if (c->node_count == 0) return CHASH_EEMPTY;
    if (!c->ops->ownership) return CHASH_ENOTSUP;
    memset(shares, 0, node_count * sizeof *shares);
    *space = c->ops->ownership(c->state, shares, c->node_count);
    return CHASH_OK;
}

int chash_lookup_bounded(const chash *c, const chash_loads *loads, const void *key,
                         size_t key_len, size_t *node) {
    if (!c || !loads || !node || (!key && key_len > 0)) return CHASH_EINVAL;
    if (!c->ops->lookup_bounded) return CHASH_ENOTSUP;
    if (c->node_count == 0) return CHASH_EEMPTY;
    if (chash_loads_node_count(loads) != c->node_count) return CHASH_EINVAL;
    uint64_t h = key_position(c, key, key_len);
    *node = c->ops->lookup_bounded(c->state, h, loads);
    return CHASH_OK;
}

int chash_loads_create(const chash *c, chash_loads **out) {
    if (!c || !out) return CHASH_EINVAL;
    return chash_loads_new(&c->config.allocator, c->node_count, out);
}

size_t chash_point_count(const chash *c) {
    return c && c->ops->point_count ? c->ops->point_count(c->state) : 0;
}

int chash_point(const chash *c, size_t index, uint32_t *hash, size_t *node) {
    if (!c) return CHASH_EINVAL;
    if (!c->ops->point) return CHASH_ENOTSUP;
    return c->ops->point(c->state, index, hash, node);
}

size_t chash_memory(const chash *c) {
    if (!c) return 0;
    return sizeof *c + c->node_capacity * sizeof *c->nodes + c->name_bytes +
           c->name_slot_count * sizeof *c->name_slots + c->ops->memory(c->state);
}

int chash_get_config(const chash *c, chash_config *out) {
    if (!c || !out) return CHASH_EINVAL;
    size_t struct_size;
    memcpy(&struct_size, out, sizeof struct_size);
    int rc = config_size_check(struct_size);
    if (rc != CHASH_OK) return rc;
    /* Never past the caller's struct: an older one is shorter than ours. */
    size_t shared = config_shared_bytes(struct_size);
    memcpy((unsigned char *)out + sizeof struct_size,
           (const unsigned char *)&c->config + sizeof struct_size, shared - sizeof struct_size);
    return CHASH_OK;
}

/* ---- buckets ----------------------------------------------------------- */

static int bucket_range_check(const chash *c, uint32_t first, uint32_t last) {
    if (!c) return CHASH_EINVAL;
    if (!c->ops->buckets) return CHASH_ENOTSUP;
    return (first > last || last >= c->config.bucket_count) ? CHASH_EINVAL : CHASH_OK;
}

int chash_bucket_assign(chash *c, uint32_t first, uint32_t last, size_t node_index) {
    int rc = bucket_range_check(c, first, last);
    if (rc != CHASH_OK) return rc;
    if (node_index >= c->node_count) return CHASH_ENOENT;
    c->ops->buckets->assign(c->state, first, last, node_index);
    return CHASH_OK;
}

int chash_bucket_unassign(chash *c, uint32_t first, uint32_t last) {
    int rc = bucket_range_check(c, first, last);
    if (rc != CHASH_OK) return rc;
    c->ops->buckets->unassign(c->state, first, last);
    return CHASH_OK;
}

int chash_bucket_override(chash *c, const void *key, size_t key_len, size_t node_index) {
    if (!c || (!key && key_len > 0) || key_len >= UINT32_MAX) return CHASH_EINVAL;
    if (!c->ops->buckets) return CHASH_ENOTSUP;
    if (node_index >= c->node_count) return CHASH_ENOENT;
    const uint8_t *part = key;
    chash_config_key_part(&c->config, &part, &key_len);
    algo_ctx ctx = ctx_of(c);
    return c->ops->buckets->override_set(&ctx, c->state, part, key_len, node_index);
}

int chash_bucket_override_remove(chash *c, const void *key, size_t key_len) {
    if (!c || (!key && key_len > 0)) return CHASH_EINVAL;
    if (!c->ops->buckets) return CHASH_ENOTSUP;
    const uint8_t *part = key;
    chash_config_key_part(&c->config, &part, &key_len);
    algo_ctx ctx = ctx_of(c);
    return c->ops->buckets->override_remove(&ctx, c->state, part, key_len);
}

size_t chash_bucket_override_count(const chash *c) {
    return c && c->ops->buckets ? c->ops->buckets->override_count(c->state) : 0;
}

int chash_bucket_override_at(const chash *c, size_t index, const void **key, size_t *key_len,
                             size_t *node) {
    if (!c) return CHASH_EINVAL;
    if (!c->ops->buckets) return CHASH_ENOTSUP;
    if (index >= c->ops->buckets->override_count(c->state)) return CHASH_ENOENT;
    const uint8_t *k;
    size_t len, n;
    c->ops->buckets->override_at(c->state, index, &k, &len, &n);
    if (key) *key = k;
    if (key_len) *key_len = len;
    if (node) *node = n;
    return CHASH_OK;
}

int chash_bucket_of(const chash *c, const void *key, size_t key_len, uint32_t *bucket) {
    if (!c || !bucket || (!key && key_len > 0)) return CHASH_EINVAL;
    if (!c->ops->buckets) return CHASH_ENOTSUP;
    *bucket = (uint32_t)(key_position(c, key, key_len) % c->config.bucket_count);
    return CHASH_OK;
}

int chash_bucket_owner(const chash *c, uint32_t bucket, size_t *node) {
    if (!c || !node) return CHASH_EINVAL;
    if (!c->ops->buckets) return CHASH_ENOTSUP;
    if (bucket >= c->config.bucket_count) return CHASH_EINVAL;
    if (c->node_count == 0) return CHASH_EEMPTY;
    *node = c->ops->buckets->owner(c->state, bucket);
    return CHASH_OK;
}
