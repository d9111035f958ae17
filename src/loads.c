/*
 * loads.c - live load counters for bounded loads (chash_loads): one atomic
 * counter per node of one snapshot, and their total. The placement never
 * holds them, so it stays const; any number of threads may acquire, release,
 * set and read at once. chash.c creates them (chash_loads_create), the
 * bounded algorithm reads them (algo_bounded.c); they know neither.
 *
 * Invariant: total is the sum of counts[0..count-1], up to the updates in
 * flight (each changes a count first, then the total).
 */
#include "internal.h"

#include <stdatomic.h>

struct chash_loads {
    chash_allocator allocator;
    size_t count;
    _Atomic(uint64_t) total;
    _Atomic(uint64_t) *counts;
};

size_t chash_loads_node_count(const chash_loads *loads) { return loads->count; }

int chash_loads_new(const chash_allocator *alloc, size_t count, chash_loads **out) {
    chash_loads *l = chash_mem_alloc(alloc, sizeof *l);
    if (!l) return CHASH_ENOMEM;
    l->counts = chash_mem_alloc(alloc, chash_mul_size(count ? count : 1, sizeof *l->counts));
    if (!l->counts) {
        chash_mem_free(alloc, l);
        return CHASH_ENOMEM;
    }
    l->allocator = *alloc;
    l->count = count;
    atomic_init(&l->total, 0);
    for (size_t i = 0; i < count; i++) atomic_init(&l->counts[i], 0);
    *out = l;
    return CHASH_OK;
}

void chash_loads_free(chash_loads *loads) {
    if (!loads) return;
    chash_allocator a = loads->allocator;
    chash_mem_free(&a, (void *)loads->counts);
    chash_mem_free(&a, loads);
}

int chash_loads_acquire(chash_loads *loads, size_t node) {
    if (!loads) return CHASH_EINVAL;
    if (node >= loads->count) return CHASH_ENOENT;
    atomic_fetch_add_explicit(&loads->counts[node], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&loads->total, 1, memory_order_relaxed);
    return CHASH_OK;
}

int chash_loads_release(chash_loads *loads, size_t node) {
    if (!loads) return CHASH_EINVAL;
    if (node >= loads->count) return CHASH_ENOENT;
    uint64_t load = atomic_load_explicit(&loads->counts[node], memory_order_relaxed);
    do {
        if (load == 0) return CHASH_EINVAL;
    } while (!atomic_compare_exchange_weak_explicit(&loads->counts[node], &load, load - 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    atomic_fetch_sub_explicit(&loads->total, 1, memory_order_relaxed);
    return CHASH_OK;
}

int chash_loads_set(chash_loads *loads, size_t node, uint64_t load) {
    if (!loads) return CHASH_EINVAL;
    if (node >= loads->count) return CHASH_ENOENT;
    uint64_t before = atomic_exchange_explicit(&loads->counts[node], load, memory_order_relaxed);
    /* Unsigned wrap-around makes this a signed adjustment. */
    atomic_fetch_add_explicit(&loads->total, load - before, memory_order_relaxed);
    return CHASH_OK;
}

uint64_t chash_loads_get(const chash_loads *loads, size_t node) {
    if (!loads || node >= loads->count) return 0;
    return atomic_load_explicit(&loads->counts[node], memory_order_relaxed);
}

uint64_t chash_loads_total(const chash_loads *loads) {
    return loads ? atomic_load_explicit(&loads->total, memory_order_relaxed) : 0;
}
