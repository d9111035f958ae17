/*
 * hash_crc32.c - CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) with
 * zlib crc32() semantics, the hash behind the ring's points and keys.
 *
 * Three kinds of path fill one function: slicing-by-8 tables (every CPU, and
 * on x86-64 every input shorter than 32 bytes and the last 0..15 bytes of
 * longer ones), carry-less multiply folding on x86-64 (VPCLMULQDQ from 128
 * bytes, else PCLMULQDQ), and the CRC32 instructions on ARMv8. Each works on
 * the inverted register ("state" = ~crc), so they can hand a half-done CRC to
 * each other mid-buffer.
 *
 * Invariant: every path computes the same function, and the file holds no
 * mutable state: the tables are compile-time constants from crc32_tables.h,
 * and CPU features are read at each call from flags the C runtime caches.
 */
#include <string.h>

#include "chash.h"
#include "crc32_internal.h"
#include "crc32_tables.h"

/* Older compilers lack VPCLMULQDQ or its __builtin_cpu_supports name; they
 * take the tables, as do other compilers and other x86 modes. */
#if defined(__x86_64__) &&                                                            \
    ((defined(__clang__) && __clang_major__ >= 12) ||                                 \
     (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 9))
#define CRC32_HAVE_CLMUL 1
#include <immintrin.h>
#endif

/* Both ARM paths feed 8 bytes at a time to CRC32X, which reads them in
 * little-endian order, so a big-endian build takes the tables. */
#if !defined(CRC32_HAVE_CLMUL) && defined(__ARM_FEATURE_CRC32) &&                  \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Built for a CPU that always has the instructions (-march=armv8.1-a, Apple). */
#define CRC32_HAVE_ARM 1
#define CRC32_ARM_TARGET
#include <arm_acle.h>
#define CRC32_ARM_D(state, v) __crc32d((state), (v))
#define CRC32_ARM_B(state, b) __crc32b((state), (b))
#elif !defined(CRC32_HAVE_CLMUL) && defined(__aarch64__) && defined(__linux__) &&   \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ &&         \
    (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8))
/* A baseline armv8-a build, as distributions ship: check AT_HWCAP per call. */
#define CRC32_HAVE_ARM 1
#define CRC32_HAVE_ARM_HWCAP 1
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1ul << 7)
#endif
#if defined(__clang__)
/* clang before 16 declares __crc32d only when the whole build has CRC. */
#define CRC32_ARM_TARGET __attribute__((target("crc")))
#define CRC32_ARM_D(state, v) __builtin_arm_crc32d((state), (v))
#define CRC32_ARM_B(state, b) __builtin_arm_crc32b((state), (b))
#else
/* GCC's arm_acle.h declares the intrinsics under its own target pragma. */
#include <arm_acle.h>
#define CRC32_ARM_TARGET __attribute__((target("+crc")))
#define CRC32_ARM_D(state, v) __crc32d((state), (v))
#define CRC32_ARM_B(state, b) __crc32b((state), (b))
#endif
#endif

/* Below this the final reduction, four multiplies in a row, costs more than
 * the tables; from here it takes less time per call and no more latency
 * (measured on AMD Zen 4). */
#define CRC32_CLMUL_MIN_BYTES 32
/* The least the 256-bit fold needs to start; it is faster than the 128-bit
 * one from there on (measured on AMD Zen 4). */
#define CRC32_VCLMUL_MIN_BYTES 128

/* Byte-wise, so it is right on any byte order; gcc and clang turn it into a
 * single (unaligned) load on little-endian targets. */
static inline uint32_t crc32_load_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Slicing-by-8: the 8 table look-ups of a step do not depend on each other,
 * so the CPU overlaps them and the chain between steps is one load plus a
 * few xors, not eight dependent loads as in byte-at-a-time.
 */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline uint32_t crc32_slice8(uint32_t state, const unsigned char *p, size_t len) {
    const uint32_t(*t)[256] = crc32_table;
    while (len >= 8) {
        uint32_t lo = crc32_load_le32(p) ^ state;
        uint32_t hi = crc32_load_le32(p + 4);
        state = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^
                t[4][lo >> 24] ^ t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^
                t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    if (len == 0) return state;
    /* The last 1..7 bytes in one step too: byte i is followed by len-1-i
     * more, so it takes table len-1-i; any state bytes beyond the input are
     * carried over shifted down. Keys are rarely a multiple of 8 long, so
     * this runs on most calls. */
    uint32_t next = len < 4 ? state >> (8 * len) : 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t byte = p[i];
        if (i < 4) byte ^= (state >> (8 * i)) & 0xFF;
        next ^= t[len - 1 - i][byte];
    }
    return next;
}

uint32_t chash_crc32_portable(uint32_t crc, const void *buf, size_t len) {
    return ~crc32_slice8(~crc, buf, len);
}

#if defined(CRC32_HAVE_CLMUL)
#define CRC32_TARGET_CLMUL __attribute__((target("pclmul,sse4.1")))
#define CRC32_TARGET_VCLMUL                                                            \
    __attribute__((target("vpclmulqdq,avx2,pclmul,sse4.1")))

/*
 * Folding with carry-less multiply (Intel, "Fast CRC Computation for Generic
 * Polynomials Using PCLMULQDQ", 2009). A 128-bit block is carried n bits
 * forward by multiplying its halves by x^(n+32) and x^(n-32) mod P; xored onto
 * the block it lands on, it leaves the CRC unchanged. A buffer thus shrinks
 * to one block, which Barrett reduction turns into the 32-bit CRC.
 */
CRC32_TARGET_CLMUL static inline __m128i crc32_fold_16(__m128i acc, __m128i k, __m128i onto) {
    __m128i lo = _mm_clmulepi64_si128(acc, k, 0x00);
    __m128i hi = _mm_clmulepi64_si128(acc, k, 0x11);
    return _mm_xor_si128(_mm_xor_si128(lo, hi), onto);
}

static inline __m128i crc32_loadu_16(const unsigned char *p) {
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* Folds the last len bytes (a multiple of 16) onto acc one block at a time,
 * then reduces acc to the 32-bit state. */
CRC32_TARGET_CLMUL static inline uint32_t crc32_reduce_16(__m128i acc, const unsigned char *p,
                                                          size_t len) {
    /* The low 64 bits of each constant multiply the low (earlier) half. */
    const __m128i fold_128 =
        _mm_set_epi64x((long long)CRC32_FOLD_128_HI, (long long)CRC32_FOLD_128_LO);
    const __m128i fold_64 = _mm_set_epi64x(0, (long long)CRC32_FOLD_64);
    const __m128i barrett =
        _mm_set_epi64x((long long)CRC32_BARRETT_MU, (long long)CRC32_BARRETT_POLY);
    const __m128i low32_mask = _mm_setr_epi32(-1, 0, -1, 0);

    for (; len >= 16; p += 16, len -= 16) acc = crc32_fold_16(acc, fold_128, crc32_loadu_16(p));

    /* 128 -> 96 bits: the low half times x^96 lands on the high half. */
    __m128i t = _mm_clmulepi64_si128(acc, fold_128, 0x10);
    acc = _mm_xor_si128(_mm_srli_si128(acc, 8), t);
    /* 96 -> 64 bits: the low 32 times x^64 lands on the upper 64. */
    t = _mm_srli_si128(acc, 4);
    acc = _mm_clmulepi64_si128(_mm_and_si128(acc, low32_mask), fold_64, 0x00);
    acc = _mm_xor_si128(acc, t);
    /* Barrett: q = floor(R / P) from mu, then R - q * P leaves the CRC in
     * bits 32..63. */
    t = _mm_clmulepi64_si128(_mm_and_si128(acc, low32_mask), barrett, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, low32_mask), barrett, 0x00);
    acc = _mm_xor_si128(acc, t);
    return (uint32_t)_mm_extract_epi32(acc, 1);
}

/*
 * Four 128-bit lanes, each carried 512 bits forward onto the next 64 bytes,
 * so four multiplies are in flight at once. Reads exactly len bytes.
 * Needs len >= 16 and a multiple of 16.
 */
CRC32_TARGET_CLMUL static uint32_t crc32_clmul_fold(uint32_t state, const unsigned char *p,
                                                    size_t len) {
    const __m128i fold_512 =
        _mm_set_epi64x((long long)CRC32_FOLD_512_HI, (long long)CRC32_FOLD_512_LO);
    const __m128i fold_128 =
        _mm_set_epi64x((long long)CRC32_FOLD_128_HI, (long long)CRC32_FOLD_128_LO);

    /* The state enters as the first 32 message bits, just as in the tables. */
    __m128i lane0 = _mm_xor_si128(crc32_loadu_16(p), _mm_cvtsi32_si128((int)state));
    if (len < 64) return crc32_reduce_16(lane0, p + 16, len - 16);
    __m128i lane1 = crc32_loadu_16(p + 16);
    __m128i lane2 = crc32_loadu_16(p + 32);
    __m128i lane3 = crc32_loadu_16(p + 48);
    for (p += 64, len -= 64; len >= 64; p += 64, len -= 64) {
        lane0 = crc32_fold_16(lane0, fold_512, crc32_loadu_16(p));
        lane1 = crc32_fold_16(lane1, fold_512, crc32_loadu_16(p + 16));
        lane2 = crc32_fold_16(lane2, fold_512, crc32_loadu_16(p + 32));
        lane3 = crc32_fold_16(lane3, fold_512, crc32_loadu_16(p + 48));
    }
    /* Each lane ends one block before the next begins. */
    lane1 = crc32_fold_16(lane0, fold_128, lane1);
    lane2 = crc32_fold_16(lane1, fold_128, lane2);
    lane3 = crc32_fold_16(lane2, fold_128, lane3);
    return crc32_reduce_16(lane3, p, len);
}

CRC32_TARGET_VCLMUL static inline __m256i crc32_fold_32(__m256i acc, __m256i k, __m256i onto) {
    __m256i lo = _mm256_clmulepi64_epi128(acc, k, 0x00);
    __m256i hi = _mm256_clmulepi64_epi128(acc, k, 0x11);
    return _mm256_xor_si256(_mm256_xor_si256(lo, hi), onto);
}

CRC32_TARGET_VCLMUL static inline __m256i crc32_loadu_32(const unsigned char *p) {
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/*
 * The same, 256 bits per instruction: four 256-bit lanes carried 1024 bits
 * forward onto the next 128 bytes. Long buffers are bound by how many
 * multiplies issue per cycle, and VPCLMULQDQ does two in the time PCLMULQDQ
 * does one. Reads exactly len bytes. Needs len >= 128 and a multiple of 16.
 */
CRC32_TARGET_VCLMUL static uint32_t crc32_vclmul_fold(uint32_t state, const unsigned char *p,
                                                      size_t len) {
    const __m256i fold_1024 =
        _mm256_set_epi64x((long long)CRC32_FOLD_1024_HI, (long long)CRC32_FOLD_1024_LO,
                          (long long)CRC32_FOLD_1024_HI, (long long)CRC32_FOLD_1024_LO);
    const __m256i fold_256 =
        _mm256_set_epi64x((long long)CRC32_FOLD_256_HI, (long long)CRC32_FOLD_256_LO,
                          (long long)CRC32_FOLD_256_HI, (long long)CRC32_FOLD_256_LO);
    const __m128i fold_128 =
        _mm_set_epi64x((long long)CRC32_FOLD_128_HI, (long long)CRC32_FOLD_128_LO);

    __m256i lane0 =
        _mm256_xor_si256(crc32_loadu_32(p), _mm256_set_epi32(0, 0, 0, 0, 0, 0, 0, (int)state));
    __m256i lane1 = crc32_loadu_32(p + 32);
    __m256i lane2 = crc32_loadu_32(p + 64);
    __m256i lane3 = crc32_loadu_32(p + 96);
    for (p += 128, len -= 128; len >= 128; p += 128, len -= 128) {
        lane0 = crc32_fold_32(lane0, fold_1024, crc32_loadu_32(p));
        lane1 = crc32_fold_32(lane1, fold_1024, crc32_loadu_32(p + 32));
        lane2 = crc32_fold_32(lane2, fold_1024, crc32_loadu_32(p + 64));
        lane3 = crc32_fold_32(lane3, fold_1024, crc32_loadu_32(p + 96));
    }
    lane1 = crc32_fold_32(lane0, fold_256, lane1);
    lane2 = crc32_fold_32(lane1, fold_256, lane2);
    lane3 = crc32_fold_32(lane2, fold_256, lane3);
    /* lane3 holds two consecutive blocks, the earlier in its low half. */
    __m128i acc = crc32_fold_16(_mm256_castsi256_si128(lane3), fold_128,
                                _mm256_extracti128_si256(lane3, 1));
    return crc32_reduce_16(acc, p, len);
}

/* __builtin_cpu_supports reads flags that libgcc/compiler-rt fill in from a
 * constructor. Called before it has run (from another constructor) it sees
 * no features and the tables answer: slower, never wrong. */
static inline int crc32_cpu_has_clmul(void) {
    return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}

/* The runtime reports avx2 only when the OS saves the YMM registers. */
static inline int crc32_cpu_has_vclmul(void) {
    return __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("avx2") &&
           crc32_cpu_has_clmul();
}

/* Folds the longest multiple of 16 bytes it can and returns how many; the
 * caller finishes the rest with the tables. */
static inline size_t crc32_x86_fold(uint32_t *state, const unsigned char *p, size_t len,
                                    int may_use_vclmul) {
    size_t folded_len = len & ~(size_t)15;
    if (len < CRC32_CLMUL_MIN_BYTES) return 0;
    if (may_use_vclmul && len >= CRC32_VCLMUL_MIN_BYTES && crc32_cpu_has_vclmul())
        *state = crc32_vclmul_fold(*state, p, folded_len);
    else if (crc32_cpu_has_clmul())
        *state = crc32_clmul_fold(*state, p, folded_len);
    else
        return 0;
    return folded_len;
}
#endif

int chash_crc32_pclmul_supported(void) {
#if defined(CRC32_HAVE_CLMUL)
    return crc32_cpu_has_clmul();
#else
    return 0;
#endif
}

uint32_t chash_crc32_pclmul(uint32_t crc, const void *buf, size_t len) {
    const unsigned char *p = buf;
    uint32_t state = ~crc;
#if defined(CRC32_HAVE_CLMUL)
    size_t folded_len = crc32_x86_fold(&state, p, len, 0);
    p += folded_len;
    len -= folded_len;
#endif
    return ~crc32_slice8(state, p, len);
}

#if defined(CRC32_HAVE_ARM)
/* CRC32X/CRC32B update the same inverted register as the tables. */
CRC32_ARM_TARGET static uint32_t crc32_arm(uint32_t state, const unsigned char *p, size_t len) {
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        state = CRC32_ARM_D(state, v);
        p += 8;
        len -= 8;
    }
    while (len--) state = CRC32_ARM_B(state, *p++);
    return state;
}

static inline int crc32_cpu_has_arm(void) {
#if defined(CRC32_HAVE_ARM_HWCAP)
    /* glibc answers AT_HWCAP from a variable, without a system call. */
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#else
    return 1;
#endif
}
#endif

const char *chash_crc32_accel_name(void) {
#if defined(CRC32_HAVE_CLMUL)
    if (crc32_cpu_has_vclmul()) return "vpclmulqdq";
    if (crc32_cpu_has_clmul()) return "pclmul";
#elif defined(CRC32_HAVE_ARM)
    if (crc32_cpu_has_arm()) return "armv8-crc";
#endif
    return NULL;
}

uint32_t chash_crc32(uint32_t crc, const void *buf, size_t len) {
    const unsigned char *p = buf;
    uint32_t state = ~crc;
#if defined(CRC32_HAVE_CLMUL)
    /* Length first: short keys, the common case, never touch the CPU flags. */
    if (len >= CRC32_CLMUL_MIN_BYTES) {
        size_t folded_len = crc32_x86_fold(&state, p, len, 1);
        p += folded_len;
        len -= folded_len;
    }
#elif defined(CRC32_HAVE_ARM)
    if (crc32_cpu_has_arm()) return ~crc32_arm(state, p, len);
#endif
    return ~crc32_slice8(state, p, len);
}
