/*
 * fuzz.h - what the fuzz harnesses share: the libFuzzer entry point, a check
 * that aborts with its place and values, and a small generator that splits an
 * input into the reads a socket could have delivered.
 *
 * Each harness builds two ways: with libFuzzer (CHASH_FUZZ, clang) and with
 * replay.c's main(), which runs the committed corpus in every build.
 */
#ifndef CHASH_FUZZ_H
#define CHASH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: say which and where, then crash so the fuzzer keeps the
 * input. */
#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* Two sizes that must agree, printed both when they do not. */
#define FUZZ_CHECK_EQ(a, b)                                                                 \
    do {                                                                                    \
        unsigned long long fz_a_ = (unsigned long long)(a), fz_b_ = (unsigned long long)(b); \
        if (fz_a_ != fz_b_) {                                                               \
            fprintf(stderr, "%s:%d: invariant broken: %s == %s (%llu vs %llu)\n", __FILE__,  \
                    __LINE__, #a, #b, fz_a_, fz_b_);                                        \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* splitmix64: the chunk sizes come from the input's own bytes, so a run is
 * reproducible from the input alone. */
typedef struct fuzz_rng {
    uint64_t state;
} fuzz_rng;

static inline fuzz_rng fuzz_rng_from(const uint8_t *data, size_t size, uint64_t salt) {
    uint64_t h = 0xcbf29ce484222325u ^ salt; /* FNV-1a over the input */
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3u;
    return (fuzz_rng){h};
}

static inline uint64_t fuzz_rng_next(fuzz_rng *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The ways a harness delivers one input; each must parse it the same. */
enum fuzz_mode {
    FUZZ_WHOLE,   /* one read */
    FUZZ_BYTES,   /* one byte per read */
    FUZZ_RANDOM,  /* reads of 1..64 bytes, drained lazily (as a paused client) */
    FUZZ_MODE_COUNT
};

/* Bytes the next read delivers, at most `left`. */
static inline size_t fuzz_chunk(enum fuzz_mode mode, fuzz_rng *r, size_t left) {
    size_t n = left;
    if (mode == FUZZ_BYTES) n = 1;
    if (mode == FUZZ_RANDOM) n = 1 + (size_t)(fuzz_rng_next(r) % 64);
    return n < left ? n : left;
}

#endif
