#define _POSIX_C_SOURCE 200809L
/*
 * test_threads.c - the publish-and-swap pattern of chash.h under threads:
 * readers look up in the live snapshot while a writer clones it, changes the
 * clone, publishes it with one atomic exchange, waits until every reader has
 * passed a quiescent point, and only then frees the old snapshot. Run under
 * ThreadSanitizer in CI: any write to a shared snapshot is a reported race.
 */
#include "testlib.h"

#include <chash.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define READERS 3
#define VERSIONS 60

static _Atomic(chash *) live;
static atomic_ulong quiescent[READERS]; /* reader r's count of loops done */
static atomic_bool stop;
static atomic_ulong lookups;

static void *reader(void *arg) {
    size_t id = (size_t)arg;
    uint64_t seed = id + 1;
    unsigned long done = 0;
    while (!atomic_load_explicit(&stop, memory_order_acquire)) {
        const chash *c = atomic_load_explicit(&live, memory_order_acquire);
        size_t count = chash_node_count(c);
        for (int i = 0; i < 200; i++) {
            char key[24];
            int len = sprintf(key, "key%llu", (unsigned long long)(test_rand(&seed) % 100000));
            size_t node, replicas[3], found;
            ASSERT_OK(chash_lookup(c, key, (size_t)len, &node));
            ASSERT_TRUE(node < count);
            ASSERT_OK(chash_lookup_n(c, key, (size_t)len, 3, replicas, &found));
            ASSERT_EQ(replicas[0], node);
        }
        done += 200;
        /* Past this point the reader holds no snapshot. */
        atomic_fetch_add_explicit(&quiescent[id], 1, memory_order_release);
    }
    atomic_fetch_add(&lookups, done);
    return NULL;
}

static void wait_for_readers(void) {
    unsigned long seen[READERS];
    for (int r = 0; r < READERS; r++) seen[r] = atomic_load_explicit(&quiescent[r], memory_order_acquire);
    for (int r = 0; r < READERS; r++)
        while (atomic_load_explicit(&quiescent[r], memory_order_acquire) <= seen[r]) sched_yield();
}

int main(void) {
    chash *first = NULL;
    ASSERT_OK(chash_create(NULL, &first));
    for (int i = 0; i < 20; i++) {
        char name[16];
        int len = sprintf(name, "node-%d", i);
        ASSERT_OK(chash_add(first, name, (size_t)len, 1));
    }
    atomic_store(&live, first);
    pthread_t threads[READERS];
    for (size_t r = 0; r < READERS; r++)
        ASSERT_EQ(pthread_create(&threads[r], NULL, reader, (void *)r), 0);

    for (int v = 0; v < VERSIONS; v++) {
        /* The writer reads the live snapshot concurrently with the readers. */
        chash *next = NULL;
        ASSERT_OK(chash_clone(atomic_load(&live), &next));
        char name[16];
        int len = sprintf(name, "extra-%d", v);
        ASSERT_OK(chash_add(next, name, (size_t)len, 1 + (uint32_t)(v % 3)));
        if (v >= 5) {
            len = sprintf(name, "extra-%d", v - 5);
            ASSERT_OK(chash_remove(next, name, (size_t)len));
        }
        chash *old = atomic_exchange_explicit(&live, next, memory_order_acq_rel);
        wait_for_readers();
        chash_free(old);
    }
    atomic_store_explicit(&stop, true, memory_order_release);
    for (int r = 0; r < READERS; r++) ASSERT_EQ(pthread_join(threads[r], NULL), 0);
    chash *last = atomic_load(&live);
    ASSERT_EQ(chash_node_count(last), 25);
    chash_free(last);
    printf("threads: %d versions published under %lu concurrent lookups\n", VERSIONS,
           (unsigned long)atomic_load(&lookups));
    TEST_DONE();
}
