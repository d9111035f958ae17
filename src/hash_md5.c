/*
 * hash_md5.c - MD5 (RFC 1321), the digest behind libmemcached's and
 * twemproxy's ketama points and their `md5` key hash.
 *
 * Only one-shot hashing is needed: a key or a point string is hashed whole.
 * Words are read and written little-endian byte by byte, so the result does
 * not depend on the host's byte order or on the buffer's alignment.
 *
 * Invariant: chash_md5() returns the RFC 1321 digest for every input
 * (checked against OpenSSL in tests/test_hashes.c).
 */
#include "internal.h"

static inline uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t rotl32(uint32_t x, unsigned s) { return (x << s) | (x >> (32 - s)); }

/*
 * One step per round of RFC 1321 section 3.4, arranged for latency: a
 * digest of a short key is 64 dependent steps, so what counts is the chain
 * through b, the value the previous step produced. a + X[k] + T[i] and every
 * part of the round function that does not involve b are computed off that
 * chain; G uses (b & d) + (c & ~d), equal to the RFC's (b & d) | (c & ~d)
 * because the two terms share no bit.
 */
#define MD5_F(a, b, c, d, w, t, s)                                           \
    do {                                                                     \
        (a) += (w) + (uint32_t)(t);                                          \
        (a) += (d) ^ ((b) & ((c) ^ (d)));                                    \
        (a) = rotl32((a), (s)) + (b);                                        \
    } while (0)
#define MD5_G(a, b, c, d, w, t, s)                                           \
    do {                                                                     \
        (a) += (w) + (uint32_t)(t) + ((c) & ~(d));                           \
        (a) += (b) & (d);                                                    \
        (a) = rotl32((a), (s)) + (b);                                        \
    } while (0)
#define MD5_H(a, b, c, d, w, t, s)                                           \
    do {                                                                     \
        (a) += (w) + (uint32_t)(t);                                          \
        (a) += (b) ^ ((c) ^ (d));                                            \
        (a) = rotl32((a), (s)) + (b);                                        \
    } while (0)
#define MD5_I(a, b, c, d, w, t, s)                                           \
    do {                                                                     \
        (a) += (w) + (uint32_t)(t);                                          \
        (a) += (c) ^ ((b) | ~(d));                                           \
        (a) = rotl32((a), (s)) + (b);                                        \
    } while (0)

/* The state as four scalars, not an array: an array tempts the compiler to
 * add and store it with vector instructions, which then stall the scalar
 * loads of the next block or of the digest. */
typedef struct md5_state {
    uint32_t a, b, c, d;
} md5_state;

/* One 64-byte block into the state. */
static void md5_block(md5_state *st, const uint8_t *block) {
    /* Words are loaded where used: a 16-word copy first invites the
     * vectoriser, whose shuffles cost more than they save here. */
#define w(i) load_le32(block + 4 * (i))
    uint32_t a = st->a, b = st->b, c = st->c, d = st->d;

    MD5_F(a, b, c, d, w(0), 0xd76aa478, 7);
    MD5_F(d, a, b, c, w(1), 0xe8c7b756, 12);
    MD5_F(c, d, a, b, w(2), 0x242070db, 17);
    MD5_F(b, c, d, a, w(3), 0xc1bdceee, 22);
    MD5_F(a, b, c, d, w(4), 0xf57c0faf, 7);
    MD5_F(d, a, b, c, w(5), 0x4787c62a, 12);
    MD5_F(c, d, a, b, w(6), 0xa8304613, 17);
    MD5_F(b, c, d, a, w(7), 0xfd469501, 22);
    MD5_F(a, b, c, d, w(8), 0x698098d8, 7);
    MD5_F(d, a, b, c, w(9), 0x8b44f7af, 12);
    MD5_F(c, d, a, b, w(10), 0xffff5bb1, 17);
    MD5_F(b, c, d, a, w(11), 0x895cd7be, 22);
    MD5_F(a, b, c, d, w(12), 0x6b901122, 7);
    MD5_F(d, a, b, c, w(13), 0xfd987193, 12);
    MD5_F(c, d, a, b, w(14), 0xa679438e, 17);
    MD5_F(b, c, d, a, w(15), 0x49b40821, 22);

    MD5_G(a, b, c, d, w(1), 0xf61e2562, 5);
    MD5_G(d, a, b, c, w(6), 0xc040b340, 9);
    MD5_G(c, d, a, b, w(11), 0x265e5a51, 14);
    MD5_G(b, c, d, a, w(0), 0xe9b6c7aa, 20);
    MD5_G(a, b, c, d, w(5), 0xd62f105d, 5);
    MD5_G(d, a, b, c, w(10), 0x02441453, 9);
    MD5_G(c, d, a, b, w(15), 0xd8a1e681, 14);
    MD5_G(b, c, d, a, w(4), 0xe7d3fbc8, 20);
    MD5_G(a, b, c, d, w(9), 0x21e1cde6, 5);
    MD5_G(d, a, b, c, w(14), 0xc33707d6, 9);
    MD5_G(c, d, a, b, w(3), 0xf4d50d87, 14);
    MD5_G(b, c, d, a, w(8), 0x455a14ed, 20);
    MD5_G(a, b, c, d, w(13), 0xa9e3e905, 5);
    MD5_G(d, a, b, c, w(2), 0xfcefa3f8, 9);
    MD5_G(c, d, a, b, w(7), 0x676f02d9, 14);
    MD5_G(b, c, d, a, w(12), 0x8d2a4c8a, 20);

    MD5_H(a, b, c, d, w(5), 0xfffa3942, 4);
    MD5_H(d, a, b, c, w(8), 0x8771f681, 11);
    MD5_H(c, d, a, b, w(11), 0x6d9d6122, 16);
    MD5_H(b, c, d, a, w(14), 0xfde5380c, 23);
    MD5_H(a, b, c, d, w(1), 0xa4beea44, 4);
    MD5_H(d, a, b, c, w(4), 0x4bdecfa9, 11);
    MD5_H(c, d, a, b, w(7), 0xf6bb4b60, 16);
    MD5_H(b, c, d, a, w(10), 0xbebfbc70, 23);
    MD5_H(a, b, c, d, w(13), 0x289b7ec6, 4);
    MD5_H(d, a, b, c, w(0), 0xeaa127fa, 11);
    MD5_H(c, d, a, b, w(3), 0xd4ef3085, 16);
    MD5_H(b, c, d, a, w(6), 0x04881d05, 23);
    MD5_H(a, b, c, d, w(9), 0xd9d4d039, 4);
    MD5_H(d, a, b, c, w(12), 0xe6db99e5, 11);
    MD5_H(c, d, a, b, w(15), 0x1fa27cf8, 16);
    MD5_H(b, c, d, a, w(2), 0xc4ac5665, 23);

    MD5_I(a, b, c, d, w(0), 0xf4292244, 6);
    MD5_I(d, a, b, c, w(7), 0x432aff97, 10);
    MD5_I(c, d, a, b, w(14), 0xab9423a7, 15);
    MD5_I(b, c, d, a, w(5), 0xfc93a039, 21);
    MD5_I(a, b, c, d, w(12), 0x655b59c3, 6);
    MD5_I(d, a, b, c, w(3), 0x8f0ccc92, 10);
    MD5_I(c, d, a, b, w(10), 0xffeff47d, 15);
    MD5_I(b, c, d, a, w(1), 0x85845dd1, 21);
    MD5_I(a, b, c, d, w(8), 0x6fa87e4f, 6);
    MD5_I(d, a, b, c, w(15), 0xfe2ce6e0, 10);
    MD5_I(c, d, a, b, w(6), 0xa3014314, 15);
    MD5_I(b, c, d, a, w(13), 0x4e0811a1, 21);
    MD5_I(a, b, c, d, w(4), 0xf7537e82, 6);
    MD5_I(d, a, b, c, w(11), 0xbd3af235, 10);
    MD5_I(c, d, a, b, w(2), 0x2ad7d2bb, 15);
    MD5_I(b, c, d, a, w(9), 0xeb86d391, 21);

#undef w
    st->a += a;
    st->b += b;
    st->c += c;
    st->d += d;
}

void chash_md5(const void *buf, size_t len, uint8_t digest[16]) {
    md5_state st = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
    const uint8_t *p = buf;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64) md5_block(&st, p);

    /* The tail, the 0x80 marker and the bit length fill one or two blocks. */
    uint8_t tail[128];
    size_t tail_len = left < 56 ? 64 : 128;
    memset(tail, 0, tail_len);
    if (left) memcpy(tail, p, left);
    tail[left] = 0x80;
    uint64_t bits = (uint64_t)len << 3;
    store_le32(tail + tail_len - 8, (uint32_t)bits);
    store_le32(tail + tail_len - 4, (uint32_t)(bits >> 32));
    md5_block(&st, tail);
    if (tail_len == 128) md5_block(&st, tail + 64);

    store_le32(digest, st.a);
    store_le32(digest + 4, st.b);
    store_le32(digest + 8, st.c);
    store_le32(digest + 12, st.d);
}
