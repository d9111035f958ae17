/*
 * test_libmemcached.c - CHASH_SCHEME_KETAMA against libmemcached itself
 * (Debian libmemcached-dev 1.1.4, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED): for
 * random pools of 1..100 servers, plain (no weight given) and weighted, every
 * random key must land where memcached_generate_hash() (and, for keys it
 * accepts, memcached_server_by_key()) sends it.
 *
 * libmemcached aborts above 100 servers, so bigger pools (101..1000) are
 * checked against `ref_*` below: the documented rule written out naively
 * (OpenSSL MD5, sprintf, qsort, linear scan), itself first checked against
 * libmemcached on every pool of up to 100 servers.
 *
 * A tie case: two hosts whose points collide (found at run time), in both
 * orders, with keys that land on the tied point; the lower index must win.
 *
 * Usage: test_libmemcached [--seed N] [--cases C] [--keys K] [--emit FILE]
 * --emit writes the pools and libmemcached's answers as compat vectors
 * (tests/vectors/README.md) - how tests/vectors/ketama.txt was made.
 */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"

#include <chash.h>
#include <libmemcached/memcached.h>
#include <openssl/evp.h>

#define MAX_SERVERS 1000
#define HOST_MAX 64

typedef struct pool {
    size_t count;
    char hosts[MAX_SERVERS][HOST_MAX]; /* as given to libmemcached */
    unsigned ports[MAX_SERVERS];       /* 0: added without a port */
    uint32_t weights[MAX_SERVERS];     /* 0: added without a weight */
    char names[MAX_SERVERS][HOST_MAX + 8]; /* our node names */
} pool;

/* ---- the documented rule, written out naively ------------------------ */

typedef struct ref_point {
    uint32_t value;
    uint32_t index;
} ref_point;

static void ref_md5(const void *buf, size_t len, unsigned char out[16]) {
    unsigned int out_len = 0;
    ASSERT_TRUE(EVP_Digest(buf, len, out, &out_len, EVP_md5(), NULL) == 1 && out_len == 16);
}

static uint32_t ref_word(const unsigned char *d, int x) {
    return (uint32_t)d[4 * x] | (uint32_t)d[4 * x + 1] << 8 | (uint32_t)d[4 * x + 2] << 16 |
           (uint32_t)d[4 * x + 3] << 24;
}

static int ref_cmp(const void *a, const void *b) {
    const ref_point *p = a, *q = b;
    if (p->value != q->value) return p->value < q->value ? -1 : 1;
    return (p->index > q->index) - (p->index < q->index);
}

/* The continuum of a pool: returns the point count; *out is malloc'd. */
static size_t ref_continuum(const pool *p, ref_point **out) {
    uint64_t total_weight = 0;
    for (size_t i = 0; i < p->count; i++) total_weight += p->weights[i] ? p->weights[i] : 1;
    ref_point *pts = malloc(sizeof *pts * 160 * (p->count + 10) * 2);
    ASSERT_TRUE(pts != NULL);
    size_t n = 0;
    for (size_t i = 0; i < p->count; i++) {
        float pct = (float)(p->weights[i] ? p->weights[i] : 1) / (float)total_weight;
        unsigned per_server =
            (unsigned)((float)(pct * 160 / 4 * (float)p->count + 0.0000000001F)) * 4;
        unsigned port = p->ports[i] ? p->ports[i] : 11211;
        for (unsigned k = 0; k < per_server / 4; k++) {
            char s[HOST_MAX + 32];
            int len = port == 11211 ? snprintf(s, sizeof s, "%s-%u", p->hosts[i], k)
                                    : snprintf(s, sizeof s, "%s:%u-%u", p->hosts[i], port, k);
            unsigned char d[16];
            ref_md5(s, (size_t)len, d);
            for (int x = 0; x < 4; x++) pts[n++] = (ref_point){ref_word(d, x), (uint32_t)i};
        }
    }
    qsort(pts, n, sizeof *pts, ref_cmp);
    *out = pts;
    return n;
}

static uint32_t ref_key_hash(const void *key, size_t len) {
    unsigned char d[16];
    ref_md5(key, len, d);
    return ref_word(d, 0);
}

static size_t ref_lookup(const ref_point *pts, size_t n, size_t servers, uint32_t h) {
    if (servers == 1) return 0;
    for (size_t i = 0; i < n; i++)
        if (pts[i].value >= h) return pts[i].index;
    return pts[0].index;
}

/* ---- pools ------------------------------------------------------------ */

static void random_host(uint64_t *rng, char *out) {
    switch (test_rand(rng) % 4) {
    case 0:
        snprintf(out, HOST_MAX, "10.%u.%u.%u", (unsigned)(test_rand(rng) % 256),
                 (unsigned)(test_rand(rng) % 256), (unsigned)(test_rand(rng) % 254 + 1));
        break;
    case 1: snprintf(out, HOST_MAX, "cache-%u.example", (unsigned)(test_rand(rng) % 100000)); break;
    case 2: snprintf(out, HOST_MAX, "mc%u", (unsigned)(test_rand(rng) % 1000)); break;
    default:
        snprintf(out, HOST_MAX, "192.168.%u.%u", (unsigned)(test_rand(rng) % 256),
                 (unsigned)(test_rand(rng) % 254 + 1));
    }
}

static void make_pool(uint64_t *rng, pool *p, size_t count) {
    memset(p, 0, sizeof *p);
    p->count = count;
    int weight_mode = (int)(test_rand(rng) % 4); /* none, same, small, wide */
    uint32_t same = (uint32_t)(test_rand(rng) % 20 + 1);
    int port_mode = (int)(test_rand(rng) % 3); /* 11211, mixed, other */
    for (size_t i = 0; i < count; i++) {
        bool unique;
        do {
            random_host(rng, p->hosts[i]);
            uint64_t r = test_rand(rng) % 4;
            p->ports[i] = port_mode == 0                ? (r == 0 ? 0 : 11211)
                          : port_mode == 1 && r < 2     ? 11211
                                                        : (unsigned)(test_rand(rng) % 60000 + 1024);
            unique = true;
            for (size_t j = 0; j < i && unique; j++)
                unique = strcmp(p->hosts[i], p->hosts[j]) != 0 || p->ports[i] != p->ports[j];
        } while (!unique);
        p->weights[i] = weight_mode == 0   ? 0
                        : weight_mode == 1 ? same
                        : weight_mode == 2 ? (uint32_t)(test_rand(rng) % 4 + 1)
                                           : (uint32_t)(test_rand(rng) % 300 + 1);
        /* Our node name: "host:port", or the bare host for a server added
         * without a port (libmemcached's default 11211). */
        if (p->ports[i] == 0)
            snprintf(p->names[i], sizeof p->names[i], "%s", p->hosts[i]);
        else
            snprintf(p->names[i], sizeof p->names[i], "%s:%u", p->hosts[i], p->ports[i]);
    }
}

static memcached_st *libmemcached_pool(const pool *p) {
    memcached_st *m = memcached_create(NULL);
    ASSERT_TRUE(m != NULL);
    ASSERT_EQ(memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1), MEMCACHED_SUCCESS);
    for (size_t i = 0; i < p->count; i++) {
        memcached_return_t rc =
            p->weights[i] ? memcached_server_add_with_weight(m, p->hosts[i], (in_port_t)p->ports[i],
                                                             p->weights[i])
                          : memcached_server_add(m, p->hosts[i], (in_port_t)p->ports[i]);
        ASSERT_EQ(rc, MEMCACHED_SUCCESS);
    }
    ASSERT_EQ(memcached_server_count(m), p->count);
    return m;
}

static chash *our_pool(const pool *p) {
    chash_config cfg = {.struct_size = sizeof cfg, .scheme = CHASH_SCHEME_KETAMA};
    chash *c;
    ASSERT_OK(chash_create(&cfg, &c));
    /* One add_many: each single add would rebuild the whole ring. */
    static chash_node_spec specs[MAX_SERVERS];
    for (size_t i = 0; i < p->count; i++)
        specs[i] = (chash_node_spec){p->names[i], strlen(p->names[i]),
                                     p->weights[i] ? p->weights[i] : 1};
    ASSERT_OK(chash_add_many(c, specs, p->count));
    return c;
}

static size_t random_key(uint64_t *rng, char *key) {
    size_t len = (size_t)(test_rand(rng) % 41);
    int mode = (int)(test_rand(rng) % 3);
    for (size_t i = 0; i < len; i++)
        key[i] = mode == 0   ? (char)('a' + test_rand(rng) % 26)
                 : mode == 1 ? (char)(test_rand(rng) % 256)
                             : (char)(0x21 + test_rand(rng) % 94);
    if (test_rand(rng) % 50 == 0) len = 250; /* memcached's longest key */
    for (size_t i = 0; len == 250 && i < len; i++) key[i] = (char)('A' + i % 26);
    return len;
}

static bool key_is_ascii(const char *key, size_t len) {
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f) return false;
    return true;
}

static void emit_hex(FILE *f, const void *buf, size_t len) {
    for (size_t i = 0; i < len; i++) fprintf(f, "%02x", ((const unsigned char *)buf)[i]);
}

/* Checks `keys` random keys on pool p; with libmemcached unless p is too big
 * for it. Returns the number of keys checked. */
static size_t check_pool(uint64_t *rng, const pool *p, size_t keys, FILE *emit,
                         const char *what) {
    bool has_peer = p->count <= 100;
    memcached_st *m = has_peer ? libmemcached_pool(p) : NULL;
    chash *c = our_pool(p);
    ref_point *pts;
    size_t npts = ref_continuum(p, &pts);
    ASSERT_EQ(chash_point_count(c), npts);
    if (emit && has_peer) {
        fprintf(emit, "# %s: %zu servers\ncase ketama ring md5 - %zu\n", what, p->count, p->count);
        for (size_t i = 0; i < p->count; i++) {
            fputs("node ", emit);
            emit_hex(emit, p->names[i], strlen(p->names[i]));
            fprintf(emit, " %u\n", p->weights[i] ? p->weights[i] : 1);
        }
    }
    for (size_t k = 0; k < keys; k++) {
        char key[256];
        size_t len = random_key(rng, key);
        size_t ours;
        ASSERT_OK(chash_lookup(c, key, len, &ours));
        size_t ref = ref_lookup(pts, npts, p->count, ref_key_hash(key, len));
        if (has_peer) {
            uint32_t theirs = memcached_generate_hash(m, key, len);
            if (theirs != ours || ref != theirs)
                TEST_FAIL_AT("%s (%zu servers), key of %zu bytes: libmemcached %u (%s), "
                             "chash %zu (%s), reference %zu",
                             what, p->count, len, theirs, p->names[theirs], ours,
                             p->names[ours], ref);
            if (key_is_ascii(key, len)) {
                /* It sets rc only on failure. */
                memcached_return_t rc = MEMCACHED_SUCCESS;
                const memcached_instance_st *inst = memcached_server_by_key(m, key, len, &rc);
                if (!inst || rc != MEMCACHED_SUCCESS)
                    TEST_FAIL_AT("memcached_server_by_key: %s", memcached_strerror(m, rc));
                ASSERT_TRUE(strcmp(memcached_server_name(inst), p->hosts[ours]) == 0);
                ASSERT_EQ(memcached_server_port(inst), p->ports[ours] ? p->ports[ours] : 11211);
            }
            if (emit) {
                fputs("key ", emit);
                emit_hex(emit, key, len);
                fputc(' ', emit);
                emit_hex(emit, p->names[theirs], strlen(p->names[theirs]));
                fputc('\n', emit);
            }
        } else if (ref != ours) {
            TEST_FAIL_AT("%s (%zu servers), key of %zu bytes: chash %zu, reference %zu", what,
                         p->count, len, ours, ref);
        }
    }
    if (emit && has_peer) fputs("end\n", emit);
    free(pts);
    chash_free(c);
    if (m) memcached_free(m);
    return keys;
}

/* Two hosts (port 11211) with a point in common; searched, not assumed. */
static void find_tie(char a[HOST_MAX], char b[HOST_MAX]) {
    enum { HOSTS = 3000 };
    ref_point *pts = malloc(sizeof *pts * HOSTS * 160);
    ASSERT_TRUE(pts != NULL);
    size_t n = 0;
    for (unsigned h = 0; h < HOSTS; h++)
        for (unsigned k = 0; k < 40; k++) {
            char s[64];
            int len = snprintf(s, sizeof s, "tie%u-%u", h, k);
            unsigned char d[16];
            ref_md5(s, (size_t)len, d);
            for (int x = 0; x < 4; x++) pts[n++] = (ref_point){ref_word(d, x), h};
        }
    qsort(pts, n, sizeof *pts, ref_cmp);
    for (size_t i = 1; i < n; i++)
        if (pts[i].value == pts[i - 1].value && pts[i].index != pts[i - 1].index) {
            snprintf(a, HOST_MAX, "tie%u", pts[i - 1].index);
            snprintf(b, HOST_MAX, "tie%u", pts[i].index);
            free(pts);
            return;
        }
    TEST_FAIL_AT("no tie among %d hosts", HOSTS);
}

/* Pools holding a tied pair in both orders; keys searched to land on the
 * tied point, which the lower index must own. */
static size_t check_tie(uint64_t *rng, FILE *emit) {
    char a[HOST_MAX], b[HOST_MAX];
    find_tie(a, b);
    size_t checked = 0;
    for (int order = 0; order < 2; order++) {
        pool *p = calloc(1, sizeof *p);
        ASSERT_TRUE(p != NULL);
        p->count = 2;
        snprintf(p->hosts[0], HOST_MAX, "%s", order ? b : a);
        snprintf(p->hosts[1], HOST_MAX, "%s", order ? a : b);
        for (int i = 0; i < 2; i++) {
            p->ports[i] = 11211;
            p->weights[i] = 1;
            snprintf(p->names[i], sizeof p->names[i], "%s:11211", p->hosts[i]);
        }
        ref_point *pts;
        size_t n = ref_continuum(p, &pts);
        uint32_t lo = 0, hi = 0;
        for (size_t i = 1; i < n; i++)
            if (pts[i].value == pts[i - 1].value && pts[i].index != pts[i - 1].index) {
                hi = pts[i].value;
                lo = i >= 2 ? pts[i - 2].value : pts[n - 1].value;
            }
        ASSERT_TRUE(hi != 0);
        memcached_st *m = libmemcached_pool(p);
        chash *c = our_pool(p);
        if (emit) {
            fprintf(emit, "# tied point 0x%08x between %s and %s\ncase ketama ring md5 - 2\n",
                    hi, p->names[0], p->names[1]);
            for (int i = 0; i < 2; i++) {
                fputs("node ", emit);
                emit_hex(emit, p->names[i], strlen(p->names[i]));
                fputs(" 1\n", emit);
            }
        }
        size_t found = 0;
        for (uint64_t t = 0; found < 20 && t < 10000000; t++) {
            char key[32];
            int len = snprintf(key, sizeof key, "k%llx", (unsigned long long)test_rand(rng));
            uint32_t h = ref_key_hash(key, (size_t)len);
            if (!(lo < hi ? h > lo && h <= hi : h > lo || h <= hi)) continue;
            size_t ours;
            ASSERT_OK(chash_lookup(c, key, (size_t)len, &ours));
            ASSERT_EQ(memcached_generate_hash(m, key, (size_t)len), 0);
            ASSERT_EQ(ours, 0);
            if (emit) {
                fputs("key ", emit);
                emit_hex(emit, key, (size_t)len);
                fputc(' ', emit);
                emit_hex(emit, p->names[0], strlen(p->names[0]));
                fputc('\n', emit);
            }
            found++;
        }
        ASSERT_EQ(found, 20);
        if (emit) fputs("end\n", emit);
        checked += found;
        free(pts);
        chash_free(c);
        memcached_free(m);
        free(p);
    }
    return checked;
}

int main(int argc, char **argv) {
    uint64_t seed = 1;
    size_t cases = 60, keys = 300;
    const char *emit_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--cases") == 0 && i + 1 < argc)
            cases = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
            keys = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--emit") == 0 && i + 1 < argc)
            emit_path = argv[++i];
        else
            TEST_FAIL_AT("usage: %s [--seed N] [--cases C] [--keys K] [--emit FILE]", argv[0]);
    }
    FILE *emit = NULL;
    if (emit_path) {
        emit = fopen(emit_path, "w");
        if (!emit) TEST_FAIL_AT("cannot write %s", emit_path);
        fprintf(emit, "# libchash compat vectors; format: tests/vectors/README.md\n"
                      "# generator: tests/test_libmemcached.c --seed %llu (answers of "
                      "memcached_generate_hash, libmemcached %s, KETAMA_WEIGHTED)\n",
                (unsigned long long)seed, memcached_lib_version());
    }
    printf("seed %llu, libmemcached %s\n", (unsigned long long)seed, memcached_lib_version());
    uint64_t rng = seed;
    pool *p = malloc(sizeof *p);
    ASSERT_TRUE(p != NULL);
    /* Sizes the float rule is known to trip on come first, then random. */
    static const size_t fixed[] = {1, 2, 3, 25, 61, 99, 100};
    size_t checked = 0, peer_pools = 0, big_pools = 0;
    for (size_t i = 0; i < cases; i++) {
        size_t n = i < sizeof fixed / sizeof fixed[0] ? fixed[i]
                                                       : (size_t)(test_rand(&rng) % 100 + 1);
        make_pool(&rng, p, n);
        char what[64];
        snprintf(what, sizeof what, "pool %zu", i);
        checked += check_pool(&rng, p, keys, emit, what);
        peer_pools++;
    }
    /* Beyond libmemcached's limit: the documented rule only. */
    for (size_t i = 0; i < 6; i++) {
        size_t n = i == 0 ? 101 : (size_t)(test_rand(&rng) % 900 + 101);
        make_pool(&rng, p, n);
        char what[64];
        snprintf(what, sizeof what, "big pool %zu", i);
        checked += check_pool(&rng, p, keys, NULL, what);
        big_pools++;
    }
    size_t tie_keys = check_tie(&rng, emit);
    free(p);
    if (emit) fclose(emit);
    printf("libmemcached agrees on %zu pools of 1-100 servers; the documented rule on %zu pools "
           "of 101-1000; %zu keys, and %zu keys on a tied point\n",
           peer_pools, big_pools, checked, tie_keys);
    TEST_DONE();
}
