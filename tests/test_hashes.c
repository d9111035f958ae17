/*
 * test_hashes.c - the key hashes and the presets' building blocks by known
 * answers: MD5 (RFC 1321's test suite), every chash_hash on fixed inputs
 * (values from libhashkit 1.1.4 where it has the hash, and for hsieh, crc16
 * and crc32a from nutcracker placements, tests/vectors/twemproxy.txt), names,
 * hash tags, twemproxy's empty key, and the ketama float rule. The live
 * oracles are test_hash_oracle (OpenSSL, libhashkit) and the *_fresh tests.
 */
#include "testlib.h"

#include <chash.h>

static void hex_digest(const char *in, size_t len, char out[33]) {
    uint8_t d[16];
    chash_md5(in, len, d);
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_md5(void) {
    static const struct {
        const char *in, *hex;
    } rfc[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"1234567890123456789012345678901234567890123456789012345678901234567890123456789"
         "0",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
        char hex[33];
        hex_digest(rfc[i].in, strlen(rfc[i].in), hex);
        if (strcmp(hex, rfc[i].hex) != 0)
            TEST_FAIL_AT("MD5(\"%s\") = %s, want %s", rfc[i].in, hex, rfc[i].hex);
        testlib_checks++;
    }
    /* Every tail length across the one- and two-block padding boundary. */
    char buf[200];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)('a' + i % 26);
    uint8_t whole[16], again[16];
    for (size_t len = 50; len < 140; len++) {
        chash_md5(buf, len, whole);
        chash_md5(buf, len, again);
        ASSERT_TRUE(memcmp(whole, again, 16) == 0);
    }
    chash_md5(NULL, 0, whole);
    ASSERT_UEQ(whole[0], 0xd4);
}

static void test_known_hashes(void) {
    static const char *const in[] = {"",       "a",
                                     "hello",  "\xff\x80key\xc3\xa9",
                                     "The quick brown fox jumps over the lazy dog",
                                     "0123456789ab", "0123456789abc"};
    static const size_t in_len[] = {0, 1, 5, 7, 43, 12, 13};
    static const struct {
        chash_hash hash;
        uint32_t want[7];
    } kat[] = {
        {CHASH_HASH_ONE_AT_A_TIME,
         {0x00000000u, 0xca2e9442u, 0xc8fd181bu, 0x1fbc3785u,
          0x519e91f5u, 0xf6361f26u, 0xcae77770u}},
        {CHASH_HASH_MD5,
         {0xd98c1dd4u, 0xb975c10cu, 0x2a40415du, 0x2947afa5u,
          0x9d7d109eu, 0xbf520cb6u, 0x71d9312du}},
        {CHASH_HASH_CRC32_15,
         {0x00000000u, 0x000068b7u, 0x00003610u, 0x0000670du,
          0x0000414fu, 0x00000623u, 0x00004e68u}},
        {CHASH_HASH_FNV1_64,
         {0x84222325u, 0x8601b7beu, 0xbdbdd4c7u, 0xa9baf5ddu,
          0x7de37aceu, 0xa4cfc71du, 0x0d0f5624u}},
        {CHASH_HASH_FNV1A_64,
         {0x84222325u, 0x8601ec8cu, 0x80aabd0bu, 0x06a32a5du,
          0xe7e47110u, 0x43b49151u, 0x0bd2b7f6u}},
        {CHASH_HASH_FNV1_32,
         {0x811c9dc5u, 0x050c5d7eu, 0xb6fa7167u, 0x7452999du,
          0xe9c86c6eu, 0x1963825du, 0x54a63804u}},
        {CHASH_HASH_FNV1A_32,
         {0x811c9dc5u, 0xe40c292cu, 0x4f9f2cabu, 0x67fe319du,
          0x048fff90u, 0x2d4c5d51u, 0x8136b5b6u}},
        {CHASH_HASH_MURMUR,
         {0x00000000u, 0x4b41757cu, 0x521b0bffu, 0x376dcc04u,
          0x30c79125u, 0x0d4e2821u, 0xc23faf3eu}},
        {CHASH_HASH_JENKINS,
         {0xdeadbefcu, 0xe0a38690u, 0x2e0cc8f3u, 0x65bfd0edu,
          0x12b8163cu, 0x6d223753u, 0x37f93eadu}},
        {CHASH_HASH_HSIEH,
         {0x00000000u, 0x93642e87u, 0x13842ac5u, 0xe0d5bd92u,
          0x1c19ee97u, 0xabe296d7u, 0x9aefedfau}},
        {CHASH_HASH_CRC16,
         {0x00000000u, 0x00007c87u, 0x6b4fc362u, 0xf71a40b8u,
          0x22a3f0c8u, 0x9c66f284u, 0x66f21798u}},
        {CHASH_HASH_CRC32A,
         {0x00000000u, 0xe8b7be43u, 0x3610a686u, 0xe70d0ce5u,
          0x414fa339u, 0x0623c932u, 0xce68ad26u}},
    };
    for (size_t h = 0; h < sizeof kat / sizeof kat[0]; h++)
        for (size_t i = 0; i < 7; i++) {
            uint32_t got = chash_hash32(kat[h].hash, in[i], in_len[i]);
            if (got != kat[h].want[i])
                TEST_FAIL_AT("%s of input %zu: 0x%08x, want 0x%08x",
                             chash_hash_name(kat[h].hash), i, got, kat[h].want[i]);
            testlib_checks++;
        }
    /* Sign extension: 0xff widens to 0xffffffff in the FNVs, unlike 0x7f. */
    uint32_t h = 0x811c9dc5u ^ 0xffffffffu;
    ASSERT_UEQ(chash_hash32(CHASH_HASH_FNV1A_32, "\xff", 1), h * 0x01000193u);
    ASSERT_UEQ(chash_hash32(CHASH_HASH_DEFAULT, "hello", 5), chash_crc32(0, "hello", 5));
    ASSERT_UEQ(chash_hash32((chash_hash)(CHASH_HASH_CRC16 + 1), "hello", 5), 0);
}

static void test_names(void) {
    int count = 0;
    for (int i = 0; chash_hash_name((chash_hash)i); i++, count++) {
        chash_hash back;
        const char *name = chash_hash_name((chash_hash)i);
        ASSERT_OK(chash_hash_from_name(name, &back));
        ASSERT_EQ(back, i);
    }
    chash_hash h;
    ASSERT_EQ(chash_hash_from_name("sha1", &h), CHASH_EUNKNOWN);
    ASSERT_EQ(chash_hash_from_name(NULL, &h), CHASH_EINVAL);
    ASSERT_EQ(count, CHASH_HASH_CRC16 + 1); /* no gap before the last */
    static const char *const schemes[] = {"ketama", "twemproxy", "nginx"};
    for (size_t i = 0; i < 3; i++) {
        chash_scheme s;
        ASSERT_OK(chash_scheme_from_name(schemes[i], &s));
        ASSERT_TRUE(strcmp(chash_scheme_name(s), schemes[i]) == 0);
    }
}

static uint64_t key_hash(const chash_config *cfg, const char *key) {
    chash *c;
    ASSERT_OK(chash_create(cfg, &c));
    uint64_t h = chash_key_hash(c, key, strlen(key));
    chash_free(c);
    return h;
}

static void test_config_and_tags(void) {
    chash *c;
    chash_config bad = {.struct_size = sizeof bad, .key_hash = (chash_hash)(CHASH_HASH_CRC16 + 1)};
    ASSERT_EQ(chash_create(&bad, &c), CHASH_EINVAL);
    chash_config one = {.struct_size = sizeof one, .hash_tag = "{"};
    ASSERT_EQ(chash_create(&one, &c), CHASH_EINVAL);
    chash_config three = {.struct_size = sizeof three, .hash_tag = "{}}"};
    ASSERT_EQ(chash_create(&three, &c), CHASH_EINVAL);

    /* Defaults are filled in: each scheme's own key hash. */
    static const struct {
        chash_scheme scheme;
        chash_hash hash;
    } defaults[] = {{CHASH_SCHEME_NATIVE, CHASH_HASH_CRC32A},
                    {CHASH_SCHEME_KETAMA, CHASH_HASH_MD5},
                    {CHASH_SCHEME_TWEMPROXY, CHASH_HASH_FNV1A_64},
                    {CHASH_SCHEME_NGINX, CHASH_HASH_CRC32A}};
    for (size_t i = 0; i < 4; i++) {
        chash_config cfg = {.struct_size = sizeof cfg, .scheme = defaults[i].scheme},
                     got = CHASH_CONFIG_INIT;
        ASSERT_OK(chash_create(&cfg, &c));
        ASSERT_OK(chash_get_config(c, &got));
        ASSERT_EQ(got.key_hash, defaults[i].hash);
        ASSERT_UEQ(chash_key_hash(c, "k", 1), chash_hash32(defaults[i].hash, "k", 1));
        chash_free(c);
    }

    chash_config tw = {.struct_size = sizeof tw,
                       .scheme = CHASH_SCHEME_TWEMPROXY, .hash_tag = "{}"};
    uint32_t b = chash_hash32(CHASH_HASH_FNV1A_64, "b", 1);
    ASSERT_UEQ(key_hash(&tw, "a{b}c"), b);
    ASSERT_UEQ(key_hash(&tw, "{b}"), b);
    ASSERT_UEQ(key_hash(&tw, "x{b}{c}"), b);     /* the first tag */
    ASSERT_UEQ(key_hash(&tw, "a{b{c}d"), chash_hash32(CHASH_HASH_FNV1A_64, "b{c", 3));
    ASSERT_UEQ(key_hash(&tw, "a{}c"), chash_hash32(CHASH_HASH_FNV1A_64, "a{}c", 4));
    ASSERT_UEQ(key_hash(&tw, "a}b{c"), chash_hash32(CHASH_HASH_FNV1A_64, "a}b{c", 5));
    ASSERT_UEQ(key_hash(&tw, "a{bc"), chash_hash32(CHASH_HASH_FNV1A_64, "a{bc", 4));
    ASSERT_UEQ(key_hash(&tw, ""), 0); /* twemproxy: an empty key is not hashed */
    chash_config same = {.struct_size = sizeof same,
                         .scheme = CHASH_SCHEME_TWEMPROXY, .hash_tag = "$$"};
    ASSERT_UEQ(key_hash(&same, "x$user1$y"), chash_hash32(CHASH_HASH_FNV1A_64, "user1", 5));
    chash_config nat = {.struct_size = sizeof nat, .hash_tag = "{}"};
    ASSERT_UEQ(key_hash(&nat, "a{b}c"), chash_crc32(0, "b", 1));
    chash_config plain = {.struct_size = sizeof plain,
                          .scheme = CHASH_SCHEME_TWEMPROXY, .key_hash = CHASH_HASH_MURMUR};
    ASSERT_UEQ(key_hash(&plain, "a{b}c"), chash_hash32(CHASH_HASH_MURMUR, "a{b}c", 5));
}

static size_t points_of(chash_scheme scheme, size_t nodes, const uint32_t *weights) {
    chash_config cfg = {.struct_size = sizeof cfg, .scheme = scheme};
    chash *c;
    ASSERT_OK(chash_create(&cfg, &c));
    for (size_t i = 0; i < nodes; i++) {
        char name[32];
        int n = snprintf(name, sizeof name, "10.0.0.%zu:11211", i);
        ASSERT_OK(chash_add(c, name, (size_t)n, weights ? weights[i] : 1));
    }
    size_t points = chash_point_count(c);
    chash_free(c);
    return points;
}

/* Points of one named node, as a sorted list, for comparing name forms. */
static bool same_points(chash_scheme s1, const char *n1, chash_scheme s2, const char *n2) {
    chash *a, *b;
    chash_config c1 = {.struct_size = sizeof c1, .scheme = s1},
                 c2 = {.struct_size = sizeof c2, .scheme = s2};
    ASSERT_OK(chash_create(&c1, &a));
    ASSERT_OK(chash_create(&c2, &b));
    ASSERT_OK(chash_add(a, n1, strlen(n1), 1));
    ASSERT_OK(chash_add(b, n2, strlen(n2), 1));
    bool same = chash_point_count(a) == chash_point_count(b);
    for (size_t i = 0; same && i < chash_point_count(a); i++) {
        uint32_t ha, hb;
        ASSERT_OK(chash_point(a, i, &ha, NULL));
        ASSERT_OK(chash_point(b, i, &hb, NULL));
        same = ha == hb;
    }
    chash_free(a);
    chash_free(b);
    return same;
}

static void test_point_rules(void) {
    /* The float32 rule: 156 points each for 25 equal servers, 160 for 24. */
    ASSERT_EQ(points_of(CHASH_SCHEME_KETAMA, 24, NULL), 24 * 160);
    ASSERT_EQ(points_of(CHASH_SCHEME_KETAMA, 25, NULL), 25 * 156);
    ASSERT_EQ(points_of(CHASH_SCHEME_TWEMPROXY, 25, NULL), 25 * 156);
    ASSERT_EQ(points_of(CHASH_SCHEME_KETAMA, 1, NULL), 160);
    ASSERT_EQ(points_of(CHASH_SCHEME_NGINX, 25, NULL), 25 * 160);
    uint32_t w[3] = {1, 2, 100};
    /* 1/103 * 160/4 * 3 = 1.165 -> 4; 2/103 -> 8; 100/103 -> 464. */
    ASSERT_EQ(points_of(CHASH_SCHEME_KETAMA, 3, w), 4 + 8 + 464);
    ASSERT_EQ(points_of(CHASH_SCHEME_NGINX, 3, w), 103 * 160);
    uint32_t light[2] = {1, 1000}; /* 1/1001 * 40 * 2 < 1: no point at all */
    ASSERT_EQ(points_of(CHASH_SCHEME_KETAMA, 2, light), 0 + 316);

    /* ketama's port rule. */
    ASSERT_TRUE(same_points(CHASH_SCHEME_KETAMA, "h:11211", CHASH_SCHEME_KETAMA, "h"));
    ASSERT_TRUE(same_points(CHASH_SCHEME_KETAMA, "h:0", CHASH_SCHEME_KETAMA, "h"));
    ASSERT_TRUE(same_points(CHASH_SCHEME_KETAMA, "h:01122", CHASH_SCHEME_KETAMA, "h:1122"));
    ASSERT_TRUE(!same_points(CHASH_SCHEME_KETAMA, "h:11212", CHASH_SCHEME_KETAMA, "h"));
    /* twemproxy hashes the name as given: "h" is ketama's "h:11211". */
    ASSERT_TRUE(same_points(CHASH_SCHEME_TWEMPROXY, "h", CHASH_SCHEME_KETAMA, "h:11211"));
    ASSERT_TRUE(same_points(CHASH_SCHEME_TWEMPROXY, "h:1", CHASH_SCHEME_KETAMA, "h:1"));
    /* nginx: "unix:" in any case; the port as text. */
    ASSERT_TRUE(same_points(CHASH_SCHEME_NGINX, "unix:/s", CHASH_SCHEME_NGINX, "UNIX:/s"));
    ASSERT_TRUE(!same_points(CHASH_SCHEME_NGINX, "h:080", CHASH_SCHEME_NGINX, "h:80"));
    ASSERT_TRUE(!same_points(CHASH_SCHEME_NGINX, "h:80", CHASH_SCHEME_NGINX, "h"));

    /* nginx point 0 by hand: CRC-32 of "h\0" "80" then four zero bytes. */
    chash *c;
    chash_config cfg = {.struct_size = sizeof cfg, .scheme = CHASH_SCHEME_NGINX};
    ASSERT_OK(chash_create(&cfg, &c));
    ASSERT_OK(chash_add(c, "h:80", 4, 1));
    uint32_t first = chash_crc32(0, "h\0" "80\0\0\0\0", 8);
    bool found = false;
    for (size_t i = 0; i < chash_point_count(c); i++) {
        uint32_t v;
        ASSERT_OK(chash_point(c, i, &v, NULL));
        found |= v == first;
    }
    ASSERT_TRUE(found);
    chash_free(c);
}

int main(void) {
    test_md5();
    test_known_hashes();
    test_names();
    test_config_and_tags();
    test_point_rules();
    TEST_DONE();
}
