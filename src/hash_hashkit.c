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

/* CRC-16/XMODEM (polynomial 0x1021, MSB first, initial 0), one table entry
 * per byte value: entry i is i << 8 divided through the polynomial. A table,
 * not eight shifts a byte, because Redis Cluster hashes every key with it
 * (chash_redis_slot). */
static const uint16_t crc16_xmodem[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
    0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
    0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
    0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
    0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
    0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
    0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
    0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
    0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
    0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
    0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
    0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
    0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
    0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
    0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
    0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
    0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
    0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
    0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
    0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
    0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

/* The low 16 bits depend only on the low 16 bits before each step, so they
 * are the real CRC-16 (Redis's slot hash); twemproxy keeps the bits above. */
uint32_t chash_hash_crc16(const uint8_t *key, size_t len) {
    uint32_t crc = 0;
    for (size_t i = 0; i < len; i++)
        crc = (crc << 8) ^ crc16_xmodem[((crc >> 8) ^ key[i]) & 0xffu];
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
