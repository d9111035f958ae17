/*
 * failing_alloc.h - a chash_allocator that fails its n-th call and counts
 * live blocks, for sweeping every allocation of an operation: each failure
 * must leave the object as it was (same fingerprint) and leak nothing.
 */
#ifndef CHASH_TESTS_FAILING_ALLOC_H
#define CHASH_TESTS_FAILING_ALLOC_H

#include "testlib.h"

#include <chash.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct failing {
    long fail_at; /* allocation number that fails; -1: never */
    long calls;
    long live;
} failing;

static inline void *failing_malloc(void *u, size_t size) {
    failing *f = u;
    if (f->calls++ == f->fail_at) return NULL;
    void *p = malloc(size ? size : 1);
    if (p) f->live++;
    return p;
}

static inline void *failing_realloc(void *u, void *ptr, size_t size) {
    failing *f = u;
    if (f->calls++ == f->fail_at) return NULL;
    void *p = realloc(ptr, size ? size : 1);
    if (p && !ptr) f->live++;
    return p;
}

static inline void failing_free(void *u, void *ptr) {
    failing *f = u;
    if (ptr) f->live--;
    free(ptr);
}

static inline chash_allocator failing_allocator(failing *f) {
    return (chash_allocator){failing_malloc, failing_realloc, failing_free, f};
}

/* Everything observable of a placement: nodes, points, lookups, replica
 * lists (where the algorithm has them). */
static inline uint64_t chash_fingerprint(const chash *c) {
    uint64_t h = 1469598103934665603ull;
#define FP_MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    FP_MIX(chash_node_count(c));
    for (size_t i = 0; i < chash_node_count(c); i++) {
        const void *name;
        size_t len;
        uint32_t w;
        ASSERT_OK(chash_node(c, i, &name, &len, &w));
        FP_MIX(chash_crc32(0, name, len));
        FP_MIX(w);
    }
    FP_MIX(chash_point_count(c));
    for (size_t i = 0; i < chash_point_count(c); i++) {
        uint32_t ph;
        size_t pn;
        ASSERT_OK(chash_point(c, i, &ph, &pn));
        FP_MIX(ph);
        FP_MIX(pn);
    }
    for (int k = 0; k < 256; k++) {
        char key[24];
        size_t n = 0, list[3], found = 0;
        int len = sprintf(key, "key%d", k);
        if (chash_lookup(c, key, (size_t)len, &n) == CHASH_OK) FP_MIX(n);
        if (chash_lookup_n(c, key, (size_t)len, 3, list, &found) == CHASH_OK)
            for (size_t i = 0; i < found; i++) FP_MIX(list[i]);
    }
#undef FP_MIX
    return h;
}

#endif
