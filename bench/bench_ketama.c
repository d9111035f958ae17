/*
 * bench_ketama.c - chash_lookup() with CHASH_SCHEME_KETAMA (what `chash
 * lookup --scheme ketama` calls per key) against libmemcached's own
 * memcached_generate_hash() on the same pool and keys, in the same run:
 * ns per lookup (median of rounds), and the two MD5s alone.
 *
 * Pools of 10 and 100 servers (libmemcached's limit), plain and weighted,
 * MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED. Keys: 1M distinct "key:%d". The two
 * run side by side in each round, in alternating order, so clock changes hit
 * both; every answer is compared first. Prints a table, then one JSON line
 * per row; never asserts a time.
 */
#define _POSIX_C_SOURCE 200809L

#include <libhashkit-1.0/hashkit.h>
#include <libmemcached/memcached.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chash.h"

#define KEY_COUNT (1u << 20)
#define ROUNDS 9

typedef struct keyset {
    char *bytes;
    uint32_t offsets[KEY_COUNT + 1];
} keyset;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static volatile uint32_t sink; /* keeps the loops from being optimised away */

static double time_chash(const chash *c, const keyset *k) {
    uint32_t acc = 0;
    double t0 = now_ns();
    for (uint32_t i = 0; i < KEY_COUNT; i++) {
        size_t node;
        chash_lookup(c, k->bytes + k->offsets[i], k->offsets[i + 1] - k->offsets[i], &node);
        acc += (uint32_t)node;
    }
    double t = (now_ns() - t0) / KEY_COUNT;
    sink ^= acc;
    return t;
}

static double time_libmemcached(const memcached_st *m, const keyset *k) {
    uint32_t acc = 0;
    double t0 = now_ns();
    for (uint32_t i = 0; i < KEY_COUNT; i++)
        acc += memcached_generate_hash(m, k->bytes + k->offsets[i],
                                       k->offsets[i + 1] - k->offsets[i]);
    double t = (now_ns() - t0) / KEY_COUNT;
    sink ^= acc;
    return t;
}

static double time_md5(int ours, const keyset *k) {
    uint32_t acc = 0;
    double t0 = now_ns();
    for (uint32_t i = 0; i < KEY_COUNT; i++) {
        const char *key = k->bytes + k->offsets[i];
        size_t len = k->offsets[i + 1] - k->offsets[i];
        acc += ours ? chash_hash32(CHASH_HASH_MD5, key, len) : libhashkit_md5(key, len);
    }
    double t = (now_ns() - t0) / KEY_COUNT;
    sink ^= acc;
    return t;
}

static int bench_pool(const keyset *k, size_t n, int weighted, FILE *json) {
    memcached_st *m = memcached_create(NULL);
    chash_config cfg = {.struct_size = sizeof cfg, .scheme = CHASH_SCHEME_KETAMA};
    chash *c = NULL;
    if (!m || chash_create(&cfg, &c) != CHASH_OK) return 1;
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
    uint64_t rng = 12345;
    for (size_t i = 0; i < n; i++) {
        char host[32], name[48];
        snprintf(host, sizeof host, "10.0.%zu.%zu", i / 200, i % 200 + 1);
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t w = weighted ? (uint32_t)(rng >> 33) % 10 + 1 : 1;
        in_port_t port = (in_port_t)(i % 2 ? 11211 : 11311);
        snprintf(name, sizeof name, "%s:%u", host, (unsigned)port);
        if (memcached_server_add_with_weight(m, host, port, w) != MEMCACHED_SUCCESS ||
            chash_add(c, name, strlen(name), w) != CHASH_OK)
            return 1;
    }
    for (uint32_t i = 0; i < KEY_COUNT; i++) {
        const char *key = k->bytes + k->offsets[i];
        size_t len = k->offsets[i + 1] - k->offsets[i], node;
        chash_lookup(c, key, len, &node);
        if (node != memcached_generate_hash(m, key, len)) {
            fprintf(stderr, "bench_ketama: disagreement on key %u\n", i);
            return 1;
        }
    }
    double t_ours[ROUNDS], t_theirs[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        if (r % 2) {
            t_ours[r] = time_chash(c, k);
            t_theirs[r] = time_libmemcached(m, k);
        } else {
            t_theirs[r] = time_libmemcached(m, k);
            t_ours[r] = time_chash(c, k);
        }
    }
    double ours = median(t_ours, ROUNDS), theirs = median(t_theirs, ROUNDS);
    printf("%6zu %-9s %14.1f %12.1f %8.2fx\n", n, weighted ? "weighted" : "plain", theirs, ours,
           theirs / ours);
    fprintf(json,
            "{\"bench\":\"ketama\",\"nodes\":%zu,\"weights\":\"%s\",\"libmemcached_ns\":%.2f,"
            "\"chash_ns\":%.2f,\"speedup\":%.3f,\"keys\":%u,\"rounds\":%d}\n",
            n, weighted ? "weighted" : "plain", theirs, ours, theirs / ours, KEY_COUNT, ROUNDS);
    chash_free(c);
    memcached_free(m);
    return 0;
}

int main(void) {
    static keyset k;
    k.bytes = malloc((size_t)KEY_COUNT * 16);
    if (!k.bytes) return 1;
    uint32_t at = 0;
    for (uint32_t i = 0; i < KEY_COUNT; i++) {
        k.offsets[i] = at;
        at += (uint32_t)sprintf(k.bytes + at, "key:%u", i);
    }
    k.offsets[KEY_COUNT] = at;
    FILE *json = tmpfile();
    if (!json) return 1;
    printf("ketama lookups, %u keys, median of %d rounds, libmemcached %s\n", KEY_COUNT, ROUNDS,
           memcached_lib_version());
    printf("%6s %-9s %14s %12s %9s\n", "nodes", "weights", "libmemcached", "chash", "speedup");
    static const size_t sizes[] = {10, 100};
    for (size_t s = 0; s < 2; s++)
        for (int w = 0; w < 2; w++)
            if (bench_pool(&k, sizes[s], w, json)) return 1;
    double md5_ours[ROUNDS], md5_theirs[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        md5_theirs[r] = time_md5(0, &k);
        md5_ours[r] = time_md5(1, &k);
    }
    double mo = median(md5_ours, ROUNDS), mt = median(md5_theirs, ROUNDS);
    printf("MD5 of the key alone: libhashkit %.1f ns, chash %.1f ns\n", mt, mo);
    fprintf(json, "{\"bench\":\"md5\",\"libhashkit_ns\":%.2f,\"chash_ns\":%.2f}\n", mt, mo);
    rewind(json);
    int ch;
    while ((ch = fgetc(json)) != EOF) putchar(ch);
    fclose(json);
    free(k.bytes);
    return 0;
}
