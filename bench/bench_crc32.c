/*
 * bench_crc32.c - chash_crc32 against zlib crc32(), our table path and, where
 * the CPU has it, the 128-bit PCLMULQDQ path alone, per input size: ns per
 * call (median of rounds) and GB/s.
 *
 * They run side by side in each round, in rotating order, over the same
 * inputs, so clock changes and noise hit them alike. Short sizes hash a pool
 * of 1M distinct "key:%d" keys, as a ring lookup would, not one cached
 * buffer. Invariant: prints a table, then one JSON line per size; it checks
 * that all agree, but never asserts a time.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "../src/crc32_internal.h"
#include "chash.h"

#define KEY_COUNT (1u << 20)
/* Long inputs walk a buffer that stays in L2, so the loop measures the CRC,
 * not DRAM. */
#define LONG_BUF_BYTES (256u * 1024u)
#define LONG_MIN_BYTES 256u
/* Enough work per round that the timer's resolution does not matter. */
#define ROUND_BYTES_MIN (32u * 1024u * 1024u)
#define ROUND_COUNT 11

enum { IMPL_CHASH, IMPL_ZLIB, IMPL_PORTABLE, IMPL_PCLMUL, IMPL_COUNT };
static const char *const impl_names[IMPL_COUNT] = {"chash_crc32", "zlib", "portable", "pclmul"};

struct workload {
    const unsigned char *base;
    size_t input_bytes;
    size_t stride_bytes; /* distance between consecutive inputs */
    size_t input_count;  /* distinct inputs; a round makes whole passes */
    size_t call_count;   /* calls per round, a multiple of input_count */
};

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One loop per implementation, each calling its function directly, so none
 * pays for an indirect call or a wrapper the others do not. The loop walks
 * pointers, keeping its own cost small beside an 8-byte CRC. */
#define DEFINE_RUN(name, CALL)                                                      \
    static uint32_t name(const struct workload *w) {                                \
        uint32_t sink = 0;                                                          \
        const unsigned char *end = w->base + w->input_count * w->stride_bytes;      \
        size_t call_count = 0;                                                      \
        while (call_count < w->call_count) {                                        \
            for (const unsigned char *p = w->base; p != end; p += w->stride_bytes)  \
                sink ^= CALL;                                                       \
            call_count += w->input_count;                                           \
        }                                                                           \
        return sink;                                                                \
    }
DEFINE_RUN(run_chash, chash_crc32(0, p, w->input_bytes))
DEFINE_RUN(run_zlib, (uint32_t)crc32(0, p, (uInt)w->input_bytes))
DEFINE_RUN(run_portable, chash_crc32_portable(0, p, w->input_bytes))
DEFINE_RUN(run_pclmul, chash_crc32_pclmul(0, p, w->input_bytes))

static uint32_t run_impl(int impl, const struct workload *w) {
    switch (impl) {
    case IMPL_CHASH: return run_chash(w);
    case IMPL_ZLIB: return run_zlib(w);
    case IMPL_PORTABLE: return run_portable(w);
    default: return run_pclmul(w);
    }
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Every key is the tail of "key:<i> key:<i> ...", so all 1M differ in their
 * last bytes whatever the length. */
static void fill_keys(unsigned char *keys, size_t key_bytes) {
    char text[256];
    for (size_t i = 0; i < KEY_COUNT; i++) {
        size_t text_len = 0;
        while (text_len < key_bytes)
            text_len += (size_t)snprintf(text + text_len, sizeof text - text_len, "key:%zu ", i);
        memcpy(keys + i * key_bytes, text + text_len - key_bytes, key_bytes);
    }
}

int main(void) {
    static const size_t sizes[] = {8, 16, 24, 32, 64, 256, 4096};
    enum { SIZE_COUNT = sizeof sizes / sizeof sizes[0] };
    double median_ns[SIZE_COUNT][IMPL_COUNT];

    unsigned char *long_buf = malloc(LONG_BUF_BYTES);
    unsigned char *keys = malloc((size_t)KEY_COUNT * 64);
    if (!long_buf || !keys) {
        fprintf(stderr, "bench_crc32: out of memory\n");
        return 1;
    }
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < LONG_BUF_BYTES; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        long_buf[i] = (unsigned char)x;
    }

    const char *accel = chash_crc32_accel_name();
    /* The PCLMULQDQ-only path is timed where the CPU has it, last in order. */
    int impl_count = chash_crc32_pclmul_supported() ? IMPL_COUNT : IMPL_PCLMUL;
    printf("crc32: chash hardware path: %s; zlib %s; median of %d rounds\n",
           accel ? accel : "none", zlibVersion(), ROUND_COUNT);

    for (size_t s = 0; s < SIZE_COUNT; s++) {
        struct workload w = {.input_bytes = sizes[s]};
        if (w.input_bytes < LONG_MIN_BYTES) {
            fill_keys(keys, w.input_bytes);
            w.base = keys;
            w.stride_bytes = w.input_bytes;
            w.input_count = KEY_COUNT;
        } else {
            /* Consecutive inputs overlap at odd offsets, so alignment varies. */
            w.base = long_buf;
            w.stride_bytes = 61;
            w.input_count = (LONG_BUF_BYTES - w.input_bytes) / w.stride_bytes;
        }
        size_t pass_count = ROUND_BYTES_MIN / (w.input_bytes * w.input_count);
        w.call_count = (pass_count ? pass_count : 1) * w.input_count;

        double round_ns[IMPL_COUNT][ROUND_COUNT];
        uint32_t sinks[IMPL_COUNT];
        for (int impl = 0; impl < impl_count; impl++) sinks[impl] = run_impl(impl, &w); /* warm */
        for (int impl = 0; impl < impl_count; impl++) {
            if (sinks[impl] != sinks[IMPL_ZLIB]) {
                fprintf(stderr, "bench_crc32: %s differs from zlib at %zu bytes\n",
                        impl_names[impl], w.input_bytes);
                return 1;
            }
        }
        for (int round = 0; round < ROUND_COUNT; round++) {
            for (int k = 0; k < impl_count; k++) {
                int impl = (round + k) % impl_count;
                double start_ns = now_ns();
                sinks[impl] ^= run_impl(impl, &w);
                round_ns[impl][round] = (now_ns() - start_ns) / (double)w.call_count;
            }
        }
        for (int impl = 0; impl < impl_count; impl++) {
            qsort(round_ns[impl], ROUND_COUNT, sizeof(double), compare_double);
            median_ns[s][impl] = round_ns[impl][ROUND_COUNT / 2];
        }
    }

    printf("\n%6s  %9s %9s %9s %9s  %8s %8s %8s  %7s\n", "bytes", "chash ns", "zlib ns",
           "table ns", "pclmul ns", "chash", "zlib", "table", "speedup");
    printf("%6s  %9s %9s %9s %9s  %8s %8s %8s  %7s\n", "", "", "", "", "", "GB/s", "GB/s", "GB/s",
           "vs zlib");
    for (size_t s = 0; s < SIZE_COUNT; s++) {
        const double *ns = median_ns[s];
        char pclmul_text[32] = "-";
        if (impl_count > IMPL_PCLMUL)
            snprintf(pclmul_text, sizeof pclmul_text, "%.2f", ns[IMPL_PCLMUL]);
        printf("%6zu  %9.2f %9.2f %9.2f %9s  %8.2f %8.2f %8.2f  %6.2fx\n", sizes[s], ns[IMPL_CHASH],
               ns[IMPL_ZLIB], ns[IMPL_PORTABLE], pclmul_text, (double)sizes[s] / ns[IMPL_CHASH],
               (double)sizes[s] / ns[IMPL_ZLIB], (double)sizes[s] / ns[IMPL_PORTABLE],
               ns[IMPL_ZLIB] / ns[IMPL_CHASH]);
    }
    printf("\n");
    for (size_t s = 0; s < SIZE_COUNT; s++) {
        const double *ns = median_ns[s];
        char pclmul_text[32] = "null";
        if (impl_count > IMPL_PCLMUL)
            snprintf(pclmul_text, sizeof pclmul_text, "%.3f", ns[IMPL_PCLMUL]);
        printf("{\"bench\":\"crc32\",\"bytes\":%zu,\"chash_ns\":%.3f,\"zlib_ns\":%.3f,"
               "\"portable_ns\":%.3f,\"speedup_vs_zlib\":%.3f,\"pclmul_ns\":%s,"
               "\"chash_gbps\":%.3f,\"accel\":\"%s\"}\n",
               sizes[s], ns[IMPL_CHASH], ns[IMPL_ZLIB], ns[IMPL_PORTABLE],
               ns[IMPL_ZLIB] / ns[IMPL_CHASH], pclmul_text, (double)sizes[s] / ns[IMPL_CHASH],
               accel ? accel : "none");
    }
    free(keys);
    free(long_buf);
    return 0;
}
