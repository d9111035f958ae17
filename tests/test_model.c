/*
 * test_model.c - randomized model-based test: thousands of random sequences
 * of add / add_many / remove / set_weight / clone, after each of which the
 * library must agree with a naive reference written from the documented
 * rules alone (its own bitwise CRC32, a sorted point list, linear search):
 * nodes, points, lookups, replica lists, ownership and error codes.
 */
#include "testlib.h"

#include <chash.h>

#define MAX_NODES 12
#define POOL 16

typedef struct ref_node {
    uint8_t name[8];
    size_t len;
    uint32_t weight;
} ref_node;

typedef struct ref_point {
    uint32_t hash;
    size_t node;
} ref_point;

typedef struct model {
    chash_algo algo;
    chash_scheme scheme;
    uint32_t vnodes;
    ref_node nodes[MAX_NODES]; /* insertion order, like the library */
    size_t count;
    ref_point points[MAX_NODES * 4 * 5];
    size_t point_count;
} model;

static uint32_t ref_crc32(uint32_t crc, const uint8_t *p, size_t len) {
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint32_t ref_mix(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static int name_cmp(const ref_node *a, const ref_node *b) {
    size_t m = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->name, b->name, m);
    return r ? r : (a->len > b->len) - (a->len < b->len);
}

static const model *sort_model;
static int point_cmp(const void *x, const void *y) {
    const ref_point *a = x, *b = y;
    if (a->hash != b->hash) return a->hash < b->hash ? -1 : 1;
    if (sort_model->scheme == CHASH_SCHEME_GROUPCACHE) /* later-added first */
        return (a->node < b->node) - (a->node > b->node);
    return name_cmp(&sort_model->nodes[a->node], &sort_model->nodes[b->node]);
}

static void ref_rebuild(model *m) {
    m->point_count = 0;
    if (m->algo != CHASH_ALGO_RING) return;
    for (size_t n = 0; n < m->count; n++) {
        const ref_node *r = &m->nodes[n];
        for (uint32_t i = 0; i < r->weight * m->vnodes; i++) {
            uint8_t buf[32];
            size_t len;
            uint32_t h;
            if (m->scheme == CHASH_SCHEME_NATIVE) {
                memcpy(buf, r->name, r->len);
                buf[r->len] = (uint8_t)i;
                buf[r->len + 1] = (uint8_t)(i >> 8);
                buf[r->len + 2] = (uint8_t)(i >> 16);
                buf[r->len + 3] = (uint8_t)(i >> 24);
                h = ref_mix(ref_crc32(0, buf, r->len + 4));
            } else {
                len = (size_t)sprintf((char *)buf, "%u", i);
                memcpy(buf + len, r->name, r->len);
                h = ref_crc32(0, buf, len + r->len);
            }
            m->points[m->point_count++] = (ref_point){h, n};
        }
    }
    sort_model = m;
    qsort(m->points, m->point_count, sizeof *m->points, point_cmp);
}

static size_t ref_find(const model *m, const uint8_t *name, size_t len) {
    for (size_t i = 0; i < m->count; i++)
        if (m->nodes[i].len == len && memcmp(m->nodes[i].name, name, len) == 0) return i;
    return SIZE_MAX;
}

static size_t ref_first_point(const model *m, uint32_t h) {
    for (size_t i = 0; i < m->point_count; i++)
        if (m->points[i].hash >= h) return i;
    return 0;
}

static size_t ref_lookup(const model *m, uint32_t h) {
    if (m->algo == CHASH_ALGO_MODULO) {
        uint64_t total = 0;
        for (size_t i = 0; i < m->count; i++) total += m->nodes[i].weight;
        uint64_t slot = h % total;
        for (size_t i = 0;; i++) {
            if (slot < m->nodes[i].weight) return i;
            slot -= m->nodes[i].weight;
        }
    }
    return m->points[ref_first_point(m, h)].node;
}

static void check(const model *m, const chash *c, uint64_t *seed) {
    ASSERT_EQ(chash_node_count(c), m->count);
    for (size_t i = 0; i < m->count; i++) {
        const void *name;
        size_t len;
        uint32_t w;
        ASSERT_OK(chash_node(c, i, &name, &len, &w));
        ASSERT_EQ(len, m->nodes[i].len);
        ASSERT_TRUE(memcmp(name, m->nodes[i].name, len) == 0);
        ASSERT_EQ(w, m->nodes[i].weight);
        size_t found;
        ASSERT_OK(chash_find(c, m->nodes[i].name, m->nodes[i].len, &found));
        ASSERT_EQ(found, i);
    }
    ASSERT_EQ(chash_point_count(c), m->point_count);
    for (size_t i = 0; i < m->point_count; i++) {
        uint32_t h;
        size_t n;
        ASSERT_OK(chash_point(c, i, &h, &n));
        ASSERT_UEQ(h, m->points[i].hash);
        ASSERT_EQ(n, m->points[i].node);
    }
    if (m->count == 0) {
        size_t n;
        ASSERT_EQ(chash_lookup(c, "k", 1, &n), CHASH_EEMPTY);
        return;
    }
    for (int k = 0; k < 24; k++) {
        uint8_t key[12];
        size_t key_len = (size_t)(test_rand(seed) % sizeof key);
        for (size_t i = 0; i < key_len; i++) key[i] = (uint8_t)test_rand(seed);
        uint32_t h = ref_crc32(0, key, key_len);
        ASSERT_UEQ(chash_key_hash(c, key, key_len), h);
        size_t n;
        ASSERT_OK(chash_lookup(c, key, key_len, &n));
        ASSERT_EQ(n, ref_lookup(m, h));
        /* Edge positions: exactly on a point, and just past the last. */
        if (m->point_count) {
            uint32_t on = m->points[test_rand(seed) % m->point_count].hash;
            ASSERT_OK(chash_lookup_hash(c, on, &n));
            ASSERT_EQ(n, ref_lookup(m, on));
            ASSERT_OK(chash_lookup_hash(c, UINT32_MAX, &n));
            ASSERT_EQ(n, ref_lookup(m, UINT32_MAX));
        }
        if (m->algo == CHASH_ALGO_RING) {
            size_t want = 1 + (size_t)(test_rand(seed) % (m->count + 1)), got[MAX_NODES + 1],
                   found;
            ASSERT_OK(chash_lookup_n(c, key, key_len, want, got, &found));
            size_t expect[MAX_NODES], ne = 0, at = ref_first_point(m, h);
            for (size_t w = 0; w < m->point_count && ne < want; w++) {
                size_t node = m->points[(at + w) % m->point_count].node;
                bool seen = false;
                for (size_t j = 0; j < ne; j++) seen |= expect[j] == node;
                if (!seen) expect[ne++] = node;
            }
            ASSERT_EQ(found, ne);
            for (size_t j = 0; j < ne; j++) ASSERT_EQ(got[j], expect[j]);
        }
    }
    uint64_t shares[MAX_NODES], space, expect[MAX_NODES] = {0};
    ASSERT_OK(chash_ownership(c, shares, MAX_NODES, &space));
    ASSERT_UEQ(space, 1ull << 32);
    if (m->algo == CHASH_ALGO_RING) {
        for (size_t i = 0; i < m->point_count; i++) {
            uint64_t prev = i ? m->points[i - 1].hash
                              : (uint64_t)m->points[m->point_count - 1].hash - (1ull << 32);
            expect[m->points[i].node] += m->points[i].hash - prev;
        }
        for (size_t i = 0; i < m->count; i++) ASSERT_UEQ(shares[i], expect[i]);
    } else {
        uint64_t total = 0;
        for (size_t i = 0; i < m->count; i++) total += shares[i];
        ASSERT_UEQ(total, space);
    }
}

static void random_name(uint64_t *seed, uint8_t *name, size_t *len) {
    /* A small pool, so duplicates and re-adds happen; some binary names. */
    unsigned id = (unsigned)(test_rand(seed) % POOL);
    if (id < 4) {
        name[0] = (uint8_t)(0x80 + id);
        name[1] = 0;
        name[2] = (uint8_t)id;
        *len = 3;
    } else {
        *len = (size_t)sprintf((char *)name, "n%u", id);
    }
}

static void run_sequence(uint64_t seed, chash_algo algo, chash_scheme scheme, uint32_t vnodes) {
    model m = {.algo = algo, .scheme = scheme, .vnodes = vnodes};
    chash_config cfg = {.algo = algo, .scheme = scheme, .vnodes = vnodes};
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    for (int step = 0; step < 40; step++) {
        uint8_t name[8];
        size_t len;
        random_name(&seed, name, &len);
        uint32_t weight = 1 + (uint32_t)(test_rand(&seed) % 4);
        size_t at = ref_find(&m, name, len);
        switch (test_rand(&seed) % 6) {
        case 0:
        case 1: /* add */
            if (at != SIZE_MAX) {
                ASSERT_EQ(chash_add(c, name, len, weight), CHASH_EEXIST);
            } else if (m.count == MAX_NODES) {
                continue;
            } else {
                ASSERT_OK(chash_add(c, name, len, weight));
                m.nodes[m.count++] = (ref_node){{0}, len, weight};
                memcpy(m.nodes[m.count - 1].name, name, len);
            }
            break;
        case 2: { /* add_many: all or nothing */
            chash_node_spec specs[2];
            uint8_t second[8];
            size_t second_len;
            random_name(&seed, second, &second_len);
            specs[0] = (chash_node_spec){name, len, weight};
            specs[1] = (chash_node_spec){second, second_len, 1};
            bool ok = at == SIZE_MAX && ref_find(&m, second, second_len) == SIZE_MAX &&
                      !(len == second_len && memcmp(name, second, len) == 0);
            if (m.count + 2 > MAX_NODES) continue;
            int rc = chash_add_many(c, specs, 2);
            if (!ok) {
                ASSERT_EQ(rc, CHASH_EEXIST);
                break;
            }
            ASSERT_OK(rc);
            for (int i = 0; i < 2; i++) {
                m.nodes[m.count] = (ref_node){{0}, specs[i].name_len, specs[i].weight};
                memcpy(m.nodes[m.count++].name, specs[i].name, specs[i].name_len);
            }
            break;
        }
        case 3: /* remove */
            if (at == SIZE_MAX) {
                ASSERT_EQ(chash_remove(c, name, len), CHASH_ENOENT);
            } else {
                ASSERT_OK(chash_remove(c, name, len));
                memmove(&m.nodes[at], &m.nodes[at + 1], (m.count - at - 1) * sizeof *m.nodes);
                m.count--;
            }
            break;
        case 4: /* set_weight */
            if (at == SIZE_MAX) {
                ASSERT_EQ(chash_set_weight(c, name, len, weight), CHASH_ENOENT);
            } else {
                ASSERT_OK(chash_set_weight(c, name, len, weight));
                m.nodes[at].weight = weight;
            }
            break;
        case 5: { /* continue on a clone; the original must not matter */
            chash *k = NULL;
            ASSERT_OK(chash_clone(c, &k));
            chash_free(c);
            c = k;
            break;
        }
        }
        ref_rebuild(&m);
        check(&m, c, &seed);
    }
    chash_free(c);
}

int main(void) {
    int sequences = 0;
    for (uint64_t s = 1; s <= 900; s++) {
        uint32_t vnodes = 1 + (uint32_t)(s % 5);
        run_sequence(s, CHASH_ALGO_RING, CHASH_SCHEME_NATIVE, vnodes);
        run_sequence(s * 7919, CHASH_ALGO_RING, CHASH_SCHEME_GROUPCACHE, vnodes);
        run_sequence(s * 104729, CHASH_ALGO_MODULO, CHASH_SCHEME_NATIVE, vnodes);
        sequences += 3;
    }
    printf("model: %d random sequences of 40 operations agree with the reference\n", sequences);
    TEST_DONE();
}
