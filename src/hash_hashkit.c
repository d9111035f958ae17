/*
 * hash_hashkit.c - the 32-bit key hashes of twemproxy's hashkit (and of
 * libmemcached's libhashkit, where it has them), computed exactly as
 * nutcracker 0.5.0 computes them on x86-64, quirks included:
 *
 *   fnv1a_64  is a 32-bit FNV-1a that starts from the low 32 bits of the
 *             64-bit offset basis (0x84222325) and multiplies by the low 32
 *             bits of the 64-bit prime (0x1b3).
 *   fnv1_64   keeps a 64-bit state but returns its low 32 bits, which depend
 *             only on the low 32 bits of basis and prime: computed in 32 bits.
 *   crc32     libmemcached's: bits 16..30 of the CRC-32, a 15-bit value.
 *   crc16     twemproxy's XMODEM-table loop that never masks its register to
 *             16 bits, so the value has up to 32 bits.
 *   murmur    MurmurHash2 with seed 0xdeadbeef * length.
 *   jenkins   lookup3 hashlittle() with initval 13.
 *   hsieh     Paul Hsieh's SuperFastHash started from 0 (not from the length).
 *
 * Bytes >= 0x80: the peers read keys through plain `char`, which is signed on
 * x86 and unsigned on arm64. one_at_a_time, the four FNVs and hsieh's 3-byte
 * tail widen such a byte with sign extension on x86; we always do, so we match
 * x86 builds of the peers (arm64 builds place such keys differently from
 * their own x86 builds). crc16, crc32, murmur and jenkins mask or read
 * unsigned bytes, so they are the same everywhere.
 *
 * Invariant: each function is a pure function of the bytes; none allocates.
 */
#include "internal.h"

/* A byte as x86's signed char widens to 32 bits. */
static inline uint32_t widen_signed(uint8_t b) { return b >= 0x80 ? b | 0xffffff00u : b; }

static inline uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t load_le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

static inline uint32_t rotl32(uint32_t x, unsigned s) { return (x << s) | (x >> (32 - s)); }

uint32_t chash_hash_one_at_a_time(const uint8_t *key, size_t len) {
    uint32_t h = 0;
    for (size_t i = 0; i < len; i++) {
        h += widen_signed(key[i]);
        h += h << 10;
        h ^= h >> 6;
    }
    h += h << 3;
    h ^= h >> 11;
    h += h << 15;
    return h;
}

#define FNV32_BASIS 0x811c9dc5u
#define FNV32_PRIME 0x01000193u
/* The low halves of the 64-bit FNV offset basis and prime. */
#define FNV64_BASIS_LOW 0x84222325u
#define FNV64_PRIME_LOW 0x000001b3u

uint32_t chash_hash_fnv1_64(const uint8_t *key, size_t len) {
    uint32_t h = FNV64_BASIS_LOW;
    for (size_t i = 0; i < len; i++) {
        h *= FNV64_PRIME_LOW;
        h ^= widen_signed(key[i]);
    }
    return h;
}

uint32_t chash_hash_fnv1a_64(const uint8_t *key, size_t len) {
    uint32_t h = FNV64_BASIS_LOW;
    for (size_t i = 0; i < len; i++) {
        h ^= widen_signed(key[i]);
        h *= FNV64_PRIME_LOW;
    }
    return h;
}

uint32_t chash_hash_fnv1_32(const uint8_t *key, size_t len) {
    uint32_t h = FNV32_BASIS;
    for (size_t i = 0; i < len; i++) {
        h *= FNV32_PRIME;
        h ^= widen_signed(key[i]);
    }
    return h;
}

uint32_t chash_hash_fnv1a_32(const uint8_t *key, size_t len) {
    uint32_t h = FNV32_BASIS;
    for (size_t i = 0; i < len; i++) {
        h ^= widen_signed(key[i]);
        h *= FNV32_PRIME;
    }
    return h;
}

uint32_t chash_hash_crc32_15(const uint8_t *key, size_t len) {
    return (chash_crc32(0, key, len) >> 16) & 0x7fffu;
}

/* CRC-16/XMODEM (polynomial 0x1021, MSB first) one byte at a time. */
static uint16_t crc16_xmodem_byte(uint16_t index) {
    uint32_t r = (uint32_t)index << 8;
    for (int k = 0; k < 8; k++) r = (r & 0x8000u) ? (r << 1) ^ 0x1021u : r << 1;
    return (uint16_t)r;
}

/* Each step computes the one table entry it needs bit by bit: crc16 is a
 * rare choice, not worth 512 bytes of table. */
uint32_t chash_hash_crc16(const uint8_t *key, size_t len) {
    uint32_t crc = 0;
    for (size_t i = 0; i < len; i++)
        crc = (crc << 8) ^ crc16_xmodem_byte((uint16_t)(((crc >> 8) ^ key[i]) & 0xffu));
    return crc;
}

uint32_t chash_hash_murmur(const uint8_t *key, size_t len) {
    const uint32_t m = 0x5bd1e995u;
    uint32_t seed = 0xdeadbeefu * (uint32_t)len;
    uint32_t h = seed ^ (uint32_t)len;
    size_t left = len;
    const uint8_t *p = key;
    for (; left >= 4; left -= 4, p += 4) {
        uint32_t k = load_le32(p);
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (left) {
    case 3: h ^= (uint32_t)p[2] << 16; /* fall through */
    case 2: h ^= (uint32_t)p[1] << 8;  /* fall through */
    case 1:
        h ^= p[0];
        h *= m;
        break;
    default: break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

#define LOOKUP3_MIX(a, b, c)                                                 \
    do {                                                                     \
        a -= c; a ^= rotl32(c, 4);  c += b;                                  \
        b -= a; b ^= rotl32(a, 6);  a += c;                                  \
        c -= b; c ^= rotl32(b, 8);  b += a;                                  \
        a -= c; a ^= rotl32(c, 16); c += b;                                  \
        b -= a; b ^= rotl32(a, 19); a += c;                                  \
        c -= b; c ^= rotl32(b, 4);  b += a;                                  \
    } while (0)

#define LOOKUP3_FINAL(a, b, c)                                               \
    do {                                                                     \
        c ^= b; c -= rotl32(b, 14);                                          \
        a ^= c; a -= rotl32(c, 11);                                          \
        b ^= a; b -= rotl32(a, 25);                                          \
        c ^= b; c -= rotl32(b, 16);                                          \
        a ^= c; a -= rotl32(c, 4);                                           \
        b ^= a; b -= rotl32(a, 14);                                          \
        c ^= b; c -= rotl32(b, 24);                                          \
    } while (0)

uint32_t chash_hash_jenkins(const uint8_t *key, size_t len) {
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)len + 13u;
    const uint8_t *k = key;
    size_t left = len;
    for (; left > 12; left -= 12, k += 12) {
        a += load_le32(k);
        b += load_le32(k + 4);
        c += load_le32(k + 8);
        LOOKUP3_MIX(a, b, c);
    }
    if (left == 0) return c; /* only for the empty key: the loop leaves 1..12 */
    /* The last 1..12 bytes, zero-padded, as little-endian words. */
    uint8_t last[12] = {0};
    memcpy(last, k, left);
    a += load_le32(last);
    b += load_le32(last + 4);
    c += load_le32(last + 8);
    LOOKUP3_FINAL(a, b, c);
    return c;
}

uint32_t chash_hash_hsieh(const uint8_t *key, size_t len) {
    if (len == 0) return 0;
    uint32_t h = 0;
    size_t rem = len & 3;
    const uint8_t *p = key;
    for (size_t blocks = len >> 2; blocks > 0; blocks--, p += 4) {
        h += load_le16(p);
        uint32_t tmp = (load_le16(p + 2) << 11) ^ h;
        h = (h << 16) ^ tmp;
        h += h >> 11;
    }
    switch (rem) {
    case 3:
        h += load_le16(p);
        h ^= h << 16;
        h ^= widen_signed(p[2]) << 18;
        h += h >> 11;
        break;
    case 2:
        h += load_le16(p);
        h ^= h << 11;
        h += h >> 17;
        break;
    case 1:
        h += p[0];
        h ^= h << 10;
        h += h >> 1;
        break;
    default: break;
    }
    h ^= h << 3;
    h += h >> 5;
    h ^= h << 4;
    h += h >> 17;
    h ^= h << 25;
    h += h >> 6;
    return h;
}
