/*
 * loadgen.h - what bench/proxy's load generators share: a monotonic clock,
 * a quick random number generator, and dying with errno's words.
 */
#ifndef BENCH_PROXY_LOADGEN_H
#define BENCH_PROXY_LOADGEN_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The program's name, for messages; each load generator defines it. */
extern const char *const loadgen_name;

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
/* xorshift64*: quick and good enough to spread keys over the ring. */
static inline uint32_t rng_next(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 32);
}

static inline void die(const char *what) {
    fprintf(stderr, "%s: %s: %s\n", loadgen_name, what, strerror(errno));
    exit(1);
}

#endif
