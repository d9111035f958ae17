/*
 * test_hash_oracle.c - the key hashes against other people's code on random
 * inputs: chash_md5 against OpenSSL's MD5, and every hash libhashkit 1.1.4
 * (libmemcached's) has against libhashkit_digest(): one_at_a_time, md5,
 * crc32 (15-bit), fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, murmur, jenkins.
 * (Debian's libhashkit lacks hsieh; hsieh, crc16 and crc32a are proven by
 * the nutcracker oracle.) Inputs: every length 0..300 and random ones up to
 * 4 KiB, every byte value (so the sign extension of bytes >= 0x80 is
 * exercised), at every alignment.
 *
 * Usage: test_hash_oracle [SEED]   (default: from the clock; printed)
 */
#include "testlib.h"

#include <chash.h>
#include <libhashkit-1.0/hashkit.h>
#include <openssl/evp.h>
#include <time.h>

int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t)time(NULL);
    printf("seed %llu\n", (unsigned long long)seed);
    static const struct {
        hashkit_hash_algorithm_t theirs;
        chash_hash ours;
    } pairs[] = {
        {HASHKIT_HASH_DEFAULT, CHASH_HASH_ONE_AT_A_TIME},
        {HASHKIT_HASH_MD5, CHASH_HASH_MD5},
        {HASHKIT_HASH_CRC, CHASH_HASH_CRC32_15},
        {HASHKIT_HASH_FNV1_64, CHASH_HASH_FNV1_64},
        {HASHKIT_HASH_FNV1A_64, CHASH_HASH_FNV1A_64},
        {HASHKIT_HASH_FNV1_32, CHASH_HASH_FNV1_32},
        {HASHKIT_HASH_FNV1A_32, CHASH_HASH_FNV1A_32},
        {HASHKIT_HASH_MURMUR, CHASH_HASH_MURMUR},
        {HASHKIT_HASH_JENKINS, CHASH_HASH_JENKINS},
    };
    static char buf[4096 + 8];
    uint64_t rng = seed;
    size_t inputs = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = round <= 300 ? (size_t)round : (size_t)(test_rand(&rng) % 4097);
        if (round > 300 && round % 4 != 0) len %= 64; /* keys are mostly short */
        size_t off = (size_t)(test_rand(&rng) % 8);
        for (size_t i = 0; i < len; i++) buf[off + i] = (char)(test_rand(&rng) % 256);
        const char *in = buf + off;

        uint8_t ours[16], theirs[16];
        unsigned int theirs_len = 0;
        chash_md5(in, len, ours);
        ASSERT_TRUE(EVP_Digest(in, len, theirs, &theirs_len, EVP_md5(), NULL) == 1);
        ASSERT_EQ(theirs_len, 16);
        if (memcmp(ours, theirs, 16) != 0) TEST_FAIL_AT("MD5 of %zu bytes differs", len);

        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
            uint32_t a = chash_hash32(pairs[p].ours, in, len);
            uint32_t b = libhashkit_digest(in, len, pairs[p].theirs);
            if (a != b)
                TEST_FAIL_AT("%s of %zu bytes (seed %llu, round %d): 0x%08x, libhashkit 0x%08x",
                             chash_hash_name(pairs[p].ours), len, (unsigned long long)seed,
                             round, a, b);
            testlib_checks++;
        }
        inputs++;
    }
    printf("MD5 agrees with OpenSSL and 9 hashes with libhashkit on %zu inputs\n", inputs);
    TEST_DONE();
}
