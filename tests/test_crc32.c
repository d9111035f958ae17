/*
 * test_crc32.c - chash_crc32 against zlib crc32(), the definition we promise.
 *
 * Every path is checked on its own: chash_crc32 (VPCLMULQDQ, PCLMULQDQ or
 * ARMv8 CRC on long inputs when the CPU has them), chash_crc32_pclmul (the
 * 128-bit fold, which chash_crc32 skips when it has VPCLMULQDQ) and
 * chash_crc32_portable (the tables), at every buffer alignment, with
 * chaining; the constants in crc32_tables.h are derived again here from the
 * polynomial alone.
 * Invariant: deterministic (fixed seeds), and well under 5 s with ASan.
 */
#include <zlib.h>

#include "../src/crc32_internal.h"
#include "../src/crc32_tables.h"
#include "chash.h"
#include "testlib.h"

#define POOL_BYTES (64 * 1024)
#define MAX_INPUT_BYTES 4096
#define RANDOM_INPUT_COUNT 100000

static _Alignas(64) unsigned char pool[POOL_BYTES];
static int has_pclmul;

static uint32_t zlib_crc32(uint32_t crc, const unsigned char *buf, size_t len) {
    return (uint32_t)crc32(crc, buf, (uInt)len);
}

/* The definition, one bit at a time: nothing shared with the code under test. */
static uint32_t bitwise_crc32_raw(uint32_t state, const unsigned char *buf, size_t len) {
    for (size_t i = 0; i < len; i++) {
        state ^= buf[i];
        for (int k = 0; k < 8; k++) state = (state >> 1) ^ (0xEDB88320u & (0u - (state & 1u)));
    }
    return state;
}

/* Carry-less product of two polynomials of degree <= 32 (normal bit order). */
static void clmul_33(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo) {
    *hi = *lo = 0;
    for (int i = 0; i < 33; i++) {
        if (!((b >> i) & 1u)) continue;
        *lo ^= a << i;
        if (i) *hi ^= a >> (64 - i);
    }
}

static uint64_t reflect_bits(uint64_t v, int bit_count) {
    uint64_t r = 0;
    for (int i = 0; i < bit_count; i++) r |= ((v >> i) & 1u) << (bit_count - 1 - i);
    return r;
}

/* reflect(x^n mod P) << 1, the form the folding code multiplies by. */
static uint64_t fold_constant(unsigned n) {
    /* Multiply by x n times; in reflected order that is a right shift, with
     * P subtracted whenever x^32 would appear. */
    uint32_t r = 0x80000000u;
    for (unsigned i = 0; i < n; i++) r = (r >> 1) ^ (0xEDB88320u & (0u - (r & 1u)));
    return (uint64_t)r << 1;
}

static void test_tables(void) {
    for (int k = 0; k < 8; k++) {
        for (int b = 0; b < 256; b++) {
            /* Byte b then k zero bytes, from a zero register. */
            unsigned char msg[8] = {(unsigned char)b};
            ASSERT_UEQ(crc32_table[k][b], bitwise_crc32_raw(0, msg, (size_t)k + 1));
        }
    }
    ASSERT_UEQ(CRC32_FOLD_1024_LO, fold_constant(1056));
    ASSERT_UEQ(CRC32_FOLD_1024_HI, fold_constant(992));
    ASSERT_UEQ(CRC32_FOLD_256_LO, fold_constant(288));
    ASSERT_UEQ(CRC32_FOLD_256_HI, fold_constant(224));
    ASSERT_UEQ(CRC32_FOLD_512_LO, fold_constant(544));
    ASSERT_UEQ(CRC32_FOLD_512_HI, fold_constant(480));
    ASSERT_UEQ(CRC32_FOLD_128_LO, fold_constant(160));
    ASSERT_UEQ(CRC32_FOLD_128_HI, fold_constant(96));
    ASSERT_UEQ(CRC32_FOLD_64, fold_constant(64));
    ASSERT_UEQ(CRC32_BARRETT_POLY, reflect_bits(0x104C11DB7u, 33));
    /* mu = floor(x^64 / P) exactly when mu * P = x^64 + (a remainder of
     * degree < 32). */
    uint64_t mu = reflect_bits(CRC32_BARRETT_MU, 33), hi, lo;
    clmul_33(mu, 0x104C11DB7u, &hi, &lo);
    ASSERT_UEQ(hi, 1);
    ASSERT_UEQ(lo >> 32, 0);
}

static void check_known(const char *text, uint32_t want) {
    size_t len = strlen(text);
    ASSERT_UEQ(chash_crc32(0, text, len), want);
    ASSERT_UEQ(chash_crc32_portable(0, text, len), want);
    if (has_pclmul) ASSERT_UEQ(chash_crc32_pclmul(0, text, len), want);
    ASSERT_UEQ(zlib_crc32(0, (const unsigned char *)text, len), want);
}

static void test_known_answers(void) {
    check_known("", 0);
    check_known("a", 0xe8b7be43u);
    check_known("123456789", 0xcbf43926u);
    check_known("The quick brown fox jumps over the lazy dog", 0x414fa339u);
    /* NULL is allowed with len 0, and then the CRC passes through. */
    ASSERT_UEQ(chash_crc32(0, NULL, 0), 0);
    ASSERT_UEQ(chash_crc32(0xdeadbeefu, NULL, 0), 0xdeadbeefu);
    ASSERT_UEQ(chash_crc32_portable(0xdeadbeefu, NULL, 0), 0xdeadbeefu);
    /* 1 MiB of zeros reaches the folding loop's steady state. */
    static unsigned char zeros[1 << 20];
    ASSERT_UEQ(chash_crc32(0, zeros, sizeof zeros), zlib_crc32(0, zeros, sizeof zeros));
    if (has_pclmul)
        ASSERT_UEQ(chash_crc32_pclmul(0, zeros, sizeof zeros), zlib_crc32(0, zeros, sizeof zeros));
}

static void check_against_zlib(uint32_t seed, const unsigned char *buf, size_t len) {
    uint32_t want = zlib_crc32(seed, buf, len);
    uint32_t got = chash_crc32(seed, buf, len);
    if (got != want)
        TEST_FAIL_AT("chash_crc32(0x%08x, pool+%zu, %zu) = 0x%08x, zlib 0x%08x", (unsigned)seed,
                     (size_t)(buf - pool), len, (unsigned)got, (unsigned)want);
    got = chash_crc32_portable(seed, buf, len);
    if (got != want)
        TEST_FAIL_AT("chash_crc32_portable(0x%08x, pool+%zu, %zu) = 0x%08x, zlib 0x%08x",
                     (unsigned)seed, (size_t)(buf - pool), len, (unsigned)got, (unsigned)want);
    testlib_checks += 2;
    if (!has_pclmul) return;
    got = chash_crc32_pclmul(seed, buf, len);
    if (got != want)
        TEST_FAIL_AT("chash_crc32_pclmul(0x%08x, pool+%zu, %zu) = 0x%08x, zlib 0x%08x",
                     (unsigned)seed, (size_t)(buf - pool), len, (unsigned)got, (unsigned)want);
    testlib_checks++;
}

/* Every length up to a few folds at every alignment: 8, 16, 32, 64, 128 and
 * 256 bytes are where the paths hand over or add a step. */
static void test_all_short_lengths(void) {
    for (size_t align = 0; align < 16; align++)
        for (size_t len = 0; len <= 600; len++) check_against_zlib(0, pool + align, len);
}

static void test_random_inputs(uint64_t *rng) {
    for (int i = 0; i < RANDOM_INPUT_COUNT; i++) {
        size_t align = (size_t)i % 16;
        uint64_t r = test_rand(rng);
        /* Half the inputs are key-sized, where nearly all calls happen. */
        size_t len = (r & 1) ? (size_t)(r >> 8) % 129 : (size_t)(r >> 8) % (MAX_INPUT_BYTES + 1);
        size_t start = (size_t)(test_rand(rng) % (POOL_BYTES - MAX_INPUT_BYTES - 16)) & ~(size_t)15;
        /* A quarter continue from an arbitrary earlier CRC. */
        uint32_t seed = (r & 6) == 0 ? (uint32_t)(r >> 32) : 0;
        /* Change a few bytes so no two inputs share all their content. */
        pool[test_rand(rng) % POOL_BYTES] = (unsigned char)r;
        check_against_zlib(seed, pool + start + align, len);
    }
}

static void test_chaining(uint64_t *rng) {
    for (int i = 0; i < 2000; i++) {
        size_t len = (size_t)(test_rand(rng) % (MAX_INPUT_BYTES + 1));
        const unsigned char *buf = pool + (size_t)(test_rand(rng) % 16);
        uint32_t whole = chash_crc32(0, buf, len);
        ASSERT_UEQ(whole, zlib_crc32(0, buf, len));
        /* Cut into up to 8 pieces, alternating paths, so a state handed over
         * mid-buffer must be the same whichever path produced it. */
        uint32_t crc = 0;
        size_t done = 0;
        for (int piece = 0; done < len; piece++) {
            size_t piece_len =
                piece == 7 ? len - done : (size_t)(test_rand(rng) % (len - done + 1));
            if (piece % 3 == 1)
                crc = chash_crc32_portable(crc, buf + done, piece_len);
            else if (piece % 3 == 2 && has_pclmul)
                crc = chash_crc32_pclmul(crc, buf + done, piece_len);
            else
                crc = chash_crc32(crc, buf + done, piece_len);
            done += piece_len;
        }
        ASSERT_UEQ(crc, whole);
    }
}

int main(void) {
    uint64_t rng = 0x5eed0c4c32ull;
    for (size_t i = 0; i < POOL_BYTES; i++) pool[i] = (unsigned char)test_rand(&rng);

    has_pclmul = chash_crc32_pclmul_supported();
    const char *accel = chash_crc32_accel_name();
    printf("test_crc32: hardware path: %s\n", accel ? accel : "none (tables only)");

    test_tables();
    test_known_answers();
    test_all_short_lengths();
    test_random_inputs(&rng);
    test_chaining(&rng);
    TEST_DONE();
}
