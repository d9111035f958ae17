/*
 * test_model.c - randomized model-based test: thousands of random sequences
 * of add / add_many / remove / set_weight / clone, after each of which the
 * library must agree with a naive reference written from the documented
 * rules alone (its own bitwise CRC32, a sorted point list, linear search):
 * nodes, points, lookups, replica lists, ownership and error codes.
 *
 * The peer presets (ketama, twemproxy, nginx) run too, their name pools
 * seeded with two names whose points collide (searched at start), so the
 * tie orders - lower index first, or nutcracker's name order - and the
 * rebuilds of the weight-dependent schemes are exercised on every change.
 * MD5 comes from chash_md5 (checked against OpenSSL elsewhere); the rest of
 * each rule is written out here from the documented text.
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
    ref_point points[MAX_NODES * 4 * 48];
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

static int length_first_cmp(const ref_node *a, const ref_node *b) {
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return memcmp(a->name, b->name, a->len);
}

static const model *sort_model;
static int point_cmp(const void *x, const void *y) {
    const ref_point *a = x, *b = y;
    if (a->hash != b->hash) return a->hash < b->hash ? -1 : 1;
    switch (sort_model->scheme) {
    case CHASH_SCHEME_GROUPCACHE: /* later-added first */
        return (a->node < b->node) - (a->node > b->node);
    case CHASH_SCHEME_KETAMA: /* earlier server first */
    case CHASH_SCHEME_NGINX:
        return (a->node > b->node) - (a->node < b->node);
    case CHASH_SCHEME_TWEMPROXY: /* nutcracker's server order */
        return length_first_cmp(&sort_model->nodes[a->node], &sort_model->nodes[b->node]);
    default:
        return name_cmp(&sort_model->nodes[a->node], &sort_model->nodes[b->node]);
    }
}

static uint32_t le32(const uint8_t *d) {
    return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

/* ketama and twemproxy: floor(float32(w / W * V / 4 * N)) * 4 points, four
 * from each MD5("name-k"). Model names hold no ':', so the name is ketama's
 * host too. */
static size_t ref_ketama(const model *m, size_t n, ref_point *out) {
    uint64_t total = 0;
    for (size_t i = 0; i < m->count; i++) total += m->nodes[i].weight;
    float pct = (float)m->nodes[n].weight / (float)total;
    float x = pct * (float)m->vnodes;
    x = x / 4;
    x = x * (float)m->count;
    size_t digests = (size_t)x, got = 0;
    for (size_t k = 0; k < digests; k++) {
        uint8_t buf[32], d[16];
        memcpy(buf, m->nodes[n].name, m->nodes[n].len);
        size_t len = m->nodes[n].len + (size_t)sprintf((char *)buf + m->nodes[n].len, "-%zu", k);
        chash_md5(buf, len, d);
        for (int w = 0; w < 4; w++) out[got++] = (ref_point){le32(d + 4 * w), n};
    }
    return got;
}

/* nginx: weight * V points, each CRC-32(name "\0" prev-as-LE32), chained.
 * Model names hold no ':', so the host is the whole name, no port. */
static size_t ref_nginx(const model *m, size_t n, ref_point *out) {
    uint32_t prev = 0;
    size_t count = (size_t)m->nodes[n].weight * m->vnodes;
    for (size_t j = 0; j < count; j++) {
        uint8_t buf[16];
        memcpy(buf, m->nodes[n].name, m->nodes[n].len);
        buf[m->nodes[n].len] = 0;
        for (int b = 0; b < 4; b++)
            buf[m->nodes[n].len + 1 + (size_t)b] = (uint8_t)(prev >> (8 * b));
        prev = ref_crc32(0, buf, m->nodes[n].len + 5);
        out[j] = (ref_point){prev, n};
    }
    return count;
}

static uint32_t ref_key_hash(const model *m, const uint8_t *key, size_t len) {
    if (m->scheme == CHASH_SCHEME_KETAMA) {
        uint8_t d[16];
        chash_md5(key, len, d);
        return le32(d);
    }
    if (m->scheme == CHASH_SCHEME_TWEMPROXY) {
        if (len == 0) return 0;
        uint32_t h = 0x84222325u; /* 32-bit FNV-1a from fnv1a_64's low bits */
        for (size_t i = 0; i < len; i++) {
            h ^= key[i] >= 0x80 ? 0xffffff00u | key[i] : key[i];
            h *= 0x1b3u;
        }
        return h;
    }
    return ref_crc32(0, key, len);
}

static void ref_rebuild(model *m) {
    m->point_count = 0;
    if (m->algo != CHASH_ALGO_RING) return;
    for (size_t n = 0; n < m->count; n++) {
        if (m->scheme == CHASH_SCHEME_KETAMA || m->scheme == CHASH_SCHEME_TWEMPROXY) {
            m->point_count += ref_ketama(m, n, m->points + m->point_count);
            continue;
        }
        if (m->scheme == CHASH_SCHEME_NGINX) {
            m->point_count += ref_nginx(m, n, m->points + m->point_count);
            continue;
        }
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
        uint32_t h = ref_key_hash(m, key, key_len);
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

/* Two names per preset whose points collide. */
#define SCHEME_END (CHASH_SCHEME_NGINX + 1)
static char tie_names[SCHEME_END][2][8];
static size_t ties_seen[SCHEME_END];

static void random_name(uint64_t *seed, chash_scheme scheme, uint8_t *name, size_t *len) {
    /* A small pool, so duplicates and re-adds happen; some binary names. */
    unsigned id = (unsigned)(test_rand(seed) % POOL);
    if (id >= POOL - 2 && tie_names[scheme][0][0]) {
        *len = strlen(tie_names[scheme][id - (POOL - 2)]);
        memcpy(name, tie_names[scheme][id - (POOL - 2)], *len);
    } else if (id < 4) {
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
    chash_config cfg = {.struct_size = sizeof cfg,
                        .algo = algo, .scheme = scheme, .vnodes = vnodes};
    chash *c = NULL;
    ASSERT_OK(chash_create(&cfg, &c));
    for (int step = 0; step < 40; step++) {
        uint8_t name[8];
        size_t len;
        random_name(&seed, scheme, name, &len);
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
            random_name(&seed, scheme, second, &second_len);
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
        for (size_t i = 1; i < m.point_count; i++)
            ties_seen[scheme] += m.points[i].hash == m.points[i - 1].hash &&
                                 m.points[i].node != m.points[i - 1].node;
        check(&m, c, &seed);
    }
    chash_free(c);
}

typedef struct seen_point {
    uint32_t hash;
    uint32_t id;
} seen_point;

static int seen_cmp(const void *x, const void *y) {
    const seen_point *a = x, *b = y;
    return (a->hash > b->hash) - (a->hash < b->hash);
}

/* Candidate id: 5 to 7 letters. (CRC-32 never maps two strings that differ
 * only within 4 bytes to one value, so decimal ids would rarely collide.) */
static int tie_candidate(uint32_t id, char *buf) {
    uint64_t r = id;
    uint64_t bits = test_rand(&r);
    int len = 5 + (int)(bits % 3);
    for (int i = 0; i < len; i++) buf[i] = (char)('a' + (bits >> (8 + 5 * i)) % 26);
    buf[len] = '\0';
    return len;
}

/* Names whose first points collide under the scheme (for ketama and
 * twemproxy the four points of digest 0; for nginx the first of the chain). */
static void find_tie(chash_scheme scheme) {
    enum { NAMES = 400000 };
    seen_point *pts = malloc(sizeof *pts * NAMES * 4);
    ASSERT_TRUE(pts != NULL);
    size_t n = 0, names = scheme == CHASH_SCHEME_NGINX ? NAMES : NAMES / 8;
    for (uint32_t id = 0; id < names; id++) {
        char buf[24];
        int len = tie_candidate(id, buf);
        if (scheme == CHASH_SCHEME_NGINX) {
            memset(buf + len, 0, 5);
            pts[n++] = (seen_point){ref_crc32(0, (uint8_t *)buf, (size_t)len + 5), id};
        } else {
            uint8_t d[16];
            len += sprintf(buf + len, "-0");
            chash_md5(buf, (size_t)len, d);
            for (int w = 0; w < 4; w++) pts[n++] = (seen_point){le32(d + 4 * w), id};
        }
    }
    qsort(pts, n, sizeof *pts, seen_cmp);
    for (size_t i = 1; i < n; i++)
        if (pts[i].hash == pts[i - 1].hash && pts[i].id != pts[i - 1].id) {
            tie_candidate(pts[i - 1].id, tie_names[scheme][0]);
            tie_candidate(pts[i].id, tie_names[scheme][1]);
            /* Two ids may give one name: that is no tie. */
            if (strcmp(tie_names[scheme][0], tie_names[scheme][1]) == 0) continue;
            free(pts);
            return;
        }
    TEST_FAIL_AT("no colliding names for %s", chash_scheme_name(scheme));
}

int main(void) {
    int sequences = 0;
    static const chash_scheme presets[] = {CHASH_SCHEME_KETAMA, CHASH_SCHEME_TWEMPROXY,
                                           CHASH_SCHEME_NGINX};
    for (size_t p = 0; p < 3; p++) find_tie(presets[p]);
    for (uint64_t s = 1; s <= 300; s++) {
        uint32_t vnodes = 4 * (1 + (uint32_t)(s % 10));
        for (size_t p = 0; p < 3; p++) {
            run_sequence(s * 31 + p, CHASH_ALGO_RING, presets[p], vnodes);
            sequences++;
        }
        run_sequence(s * 131, CHASH_ALGO_MODULO, CHASH_SCHEME_TWEMPROXY, vnodes);
        sequences++;
    }
    for (size_t p = 0; p < 3; p++) {
        printf("%s: %zu tied points seen\n", chash_scheme_name(presets[p]), ties_seen[presets[p]]);
        ASSERT_TRUE(ties_seen[presets[p]] > 0);
    }
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
