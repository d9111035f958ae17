/*
 * failing_alloc.h - a chash_allocator that fails its n-th call and counts
 * live blocks, for sweeping every allocation of an operation: each failure
 * must leave the object as it was and leak nothing.
 */
#ifndef CHASH_TESTS_FAILING_ALLOC_H
#define CHASH_TESTS_FAILING_ALLOC_H

#include <chash.h>
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

#endif
