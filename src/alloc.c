/*
 * alloc.c - allocation through an object's allocator (chash_allocator), libc
 * when it has none. The entry points, the algorithms and the load counters
 * all allocate here, so none of them needs another's internals.
 *
 * Invariant: a request for SIZE_MAX bytes (chash_mul_size's overflow) fails
 * without reaching the allocator.
 */
#include "internal.h"

#include <stdlib.h>

bool chash_allocator_is_custom(const chash_allocator *a) {
    return a->malloc_fn && a->realloc_fn && a->free_fn;
}

void *chash_mem_alloc(const chash_allocator *a, size_t size) {
    if (size == SIZE_MAX) return NULL;
    return chash_allocator_is_custom(a) ? a->malloc_fn(a->user, size) : malloc(size);
}

void *chash_mem_realloc(const chash_allocator *a, void *ptr, size_t size) {
    if (size == SIZE_MAX) return NULL;
    return chash_allocator_is_custom(a) ? a->realloc_fn(a->user, ptr, size) : realloc(ptr, size);
}

void chash_mem_free(const chash_allocator *a, void *ptr) {
    if (!ptr) return;
    if (chash_allocator_is_custom(a))
        a->free_fn(a->user, ptr);
    else
        free(ptr);
}
