/*
 * testlib.h - the few asserts our tests need. A failed assert prints both
 * sides and the place, then exits non-zero, so ctest names the module.
 */
#ifndef CHASH_TESTLIB_H
#define CHASH_TESTLIB_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int testlib_checks; /* atomic: threads assert too */

#define TEST_FAIL_AT(...)                                                    \
    do {                                                                     \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                      \
        fprintf(stderr, __VA_ARGS__);                                        \
        fputc('\n', stderr);                                                 \
        exit(1);                                                             \
    } while (0)

#define ASSERT_TRUE(cond)                                                    \
    do {                                                                     \
        testlib_checks++;                                                    \
        if (!(cond)) TEST_FAIL_AT("assertion failed: %s", #cond);           \
    } while (0)

#define ASSERT_EQ(a, b)                                                      \
    do {                                                                     \
        testlib_checks++;                                                    \
        intmax_t va_ = (intmax_t)(a), vb_ = (intmax_t)(b);                   \
        if (va_ != vb_)                                                      \
            TEST_FAIL_AT("%s == %s: %jd != %jd", #a, #b, va_, vb_);          \
    } while (0)

#define ASSERT_UEQ(a, b)                                                     \
    do {                                                                     \
        testlib_checks++;                                                    \
        uintmax_t va_ = (uintmax_t)(a), vb_ = (uintmax_t)(b);                \
        if (va_ != vb_)                                                      \
            TEST_FAIL_AT("%s == %s: %ju (0x%jx) != %ju (0x%jx)", #a, #b, va_, \
                         va_, vb_, vb_);                                     \
    } while (0)

#define ASSERT_OK(expr)                                                      \
    do {                                                                     \
        testlib_checks++;                                                    \
        int rc_ = (expr);                                                    \
        if (rc_ != 0) TEST_FAIL_AT("%s: error %d", #expr, rc_);              \
    } while (0)

#define ASSERT_NEAR(a, b, tol)                                               \
    do {                                                                     \
        testlib_checks++;                                                    \
        double va_ = (double)(a), vb_ = (double)(b), vt_ = (double)(tol);    \
        if (!(va_ - vb_ <= vt_ && vb_ - va_ <= vt_))                         \
            TEST_FAIL_AT("%s ~ %s: %.9g vs %.9g (tolerance %.9g)", #a, #b,   \
                         va_, vb_, vt_);                                     \
    } while (0)

/* Deterministic, seedable generator for test inputs (splitmix64). */
static inline uint64_t test_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Hex text to bytes; fails the test on odd length, a bad digit, or more
 * than cap bytes. */
static inline size_t test_unhex(const char *hex, size_t hex_len, uint8_t *out, size_t cap) {
    ASSERT_TRUE(hex_len % 2 == 0 && hex_len / 2 <= cap);
    for (size_t i = 0; i < hex_len / 2; i++) {
        unsigned v;
        ASSERT_TRUE(sscanf(hex + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
    return hex_len / 2;
}

#define TEST_DONE()                                                          \
    do {                                                                     \
        printf("%s: %d checks passed\n", __FILE__, (int)testlib_checks);          \
        return 0;                                                            \
    } while (0)

#endif
