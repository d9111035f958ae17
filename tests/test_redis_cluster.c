/*
 * test_redis_slot_table.c - Redis Cluster: chash_redis_slot, the
 * CHASH_SCHEME_REDIS_CLUSTER placement, and the CLI's slot-table readers
 * (cli/slot_table.c, cli/slot_table_reply.c):
 *
 *   crc16        the CRC-16/XMODEM check value, and slots against a
 *                bit-by-bit reference written from Redis's keyHashSlot()
 *   tags         the hash tag rules, empty and binary keys, slots Redis gave
 *   create       what chash_create takes and refuses with the scheme; a
 *                config read back creates the same placement
 *   placement    chash_key_hash, chash_bucket_of and lookups agree with
 *                chash_redis_slot; pinned slots own their keys
 *   nodes        CLUSTER NODES text: Redis's own outputs, and bad lines
 *                refused with their line number
 *   replies      CLUSTER SHARDS and SLOTS replies as redis-server 7.0 sent
 *                them, a node that does not know its ip, error replies
 *
 * With a file argument (redis_cluster_fresh.sh): checks every "key HEX SLOT"
 * line, slots redis-server's CLUSTER KEYSLOT gave.
 */
#include "slot_table.h"
#include "testlib.h"

#include <chash.h>

#define SLOTS CHASH_REDIS_SLOTS

/* ---- a reference, written from the definitions ----------------------------- */

static uint16_t ref_crc16(const uint8_t *p, size_t len) {
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int k = 0; k < 8; k++) crc = (crc & 0x8000) ? (uint16_t)(crc << 1) ^ 0x1021 : crc << 1;
    }
    return crc;
}

/* Redis slot_table.c keyHashSlot(), loop for loop. */
static uint32_t ref_slot(const uint8_t *key, size_t len) {
    size_t s, e;
    for (s = 0; s < len; s++)
        if (key[s] == '{') break;
    if (s == len) return ref_crc16(key, len) & (SLOTS - 1);
    for (e = s + 1; e < len; e++)
        if (key[e] == '}') break;
    if (e == len || e == s + 1) return ref_crc16(key, len) & (SLOTS - 1);
    return ref_crc16(key + s + 1, e - s - 1) & (SLOTS - 1);
}

static uint32_t slot_of(const char *key) { return chash_redis_slot(key, strlen(key)); }

/* Keys rich in the bytes that matter: braces, NUL, bytes >= 0x80. */
static size_t random_key(uint64_t *seed, uint8_t *key, size_t cap) {
    static const uint8_t alphabet[] = {'{', '}', 0, 0xff, 0x80, 'a', 'b', '{', '}', 'x'};
    size_t len = (size_t)(test_rand(seed) % 24);
    if (len > cap) len = cap;
    for (size_t i = 0; i < len; i++) {
        uint64_t r = test_rand(seed);
        key[i] = (r & 1) ? alphabet[(r >> 1) % sizeof alphabet] : (uint8_t)(r >> 8);
    }
    return len;
}

static void test_crc16(void) {
    ASSERT_UEQ(chash_hash32(CHASH_HASH_CRC16, "123456789", 9) & 0xffff, 0x31C3);
    ASSERT_UEQ(slot_of("123456789"), 0x31C3 % SLOTS);
    uint64_t seed = 16;
    uint8_t key[32];
    for (int i = 0; i < 200000; i++) {
        size_t len = random_key(&seed, key, sizeof key);
        ASSERT_UEQ(chash_redis_slot(key, len), ref_slot(key, len));
        /* twemproxy's crc16 keeps bits past 16; the low 16 are the CRC. */
        ASSERT_UEQ(chash_hash32(CHASH_HASH_CRC16, key, len) & 0xffff, ref_crc16(key, len));
    }
}

static void test_tags(void) {
    /* Slots redis-server 7.0.15 gave (CLUSTER KEYSLOT). */
    ASSERT_UEQ(slot_of("foo"), 12182);
    ASSERT_UEQ(slot_of("bar"), 5061);
    ASSERT_UEQ(slot_of("{user1000}.following"), 3443);
    ASSERT_UEQ(slot_of("{user1000}.followers"), 3443);
    ASSERT_UEQ(slot_of("foo{}{bar}"), 8363);
    ASSERT_UEQ(slot_of("foo{{bar}}zap"), 4015);
    ASSERT_UEQ(slot_of("foo{bar}{zap}"), 5061);
    ASSERT_UEQ(slot_of("foo{bar"), 15278);
    /* The rules: the tag alone, the first '{' and the first '}' after it. */
    ASSERT_UEQ(slot_of("{user1000}.following"), slot_of("user1000"));
    ASSERT_UEQ(slot_of("foo{}{bar}"), ref_slot((const uint8_t *)"foo{}{bar}", 10));
    ASSERT_TRUE(slot_of("foo{}{bar}") != slot_of("bar"));
    ASSERT_UEQ(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    ASSERT_UEQ(slot_of("foo{bar}{zap}"), slot_of("bar"));
    ASSERT_UEQ(slot_of("}foo{bar}"), slot_of("bar"));
    ASSERT_UEQ(slot_of("foo{bar"), ref_slot((const uint8_t *)"foo{bar", 7));
    ASSERT_TRUE(slot_of("foo{bar") != slot_of("bar"));
    ASSERT_UEQ(slot_of("{"), ref_slot((const uint8_t *)"{", 1));
    ASSERT_UEQ(slot_of("{}"), ref_slot((const uint8_t *)"{}", 2));
    ASSERT_UEQ(slot_of(""), 0);
    ASSERT_UEQ(chash_redis_slot(NULL, 0), 0);
    ASSERT_UEQ(chash_redis_slot(NULL, 5), 0);
    /* Binary keys: NUL is a byte like any other, inside and outside a tag. */
    static const uint8_t a[] = {'a', 0, '{', 'b', 0, 'c', '}', 'd'};
    static const uint8_t b[] = {'b', 0, 'c'};
    static const uint8_t z[] = {0, 0, 0};
    ASSERT_UEQ(chash_redis_slot(a, sizeof a), chash_redis_slot(b, sizeof b));
    ASSERT_UEQ(chash_redis_slot(b, sizeof b), ref_slot(b, sizeof b));
    ASSERT_UEQ(chash_redis_slot(z, 3), 0); /* CRC-16 of zeros from 0 */
    ASSERT_TRUE(chash_redis_slot(b, 1) != chash_redis_slot(b, 3));
    static const uint8_t high[] = {0xff, '{', 0x80, '}'};
    ASSERT_UEQ(chash_redis_slot(high, 4), ref_slot(high + 2, 1));
}

static int create(chash_config cfg, chash **out) {
    cfg.struct_size = sizeof cfg;
    cfg.scheme = CHASH_SCHEME_REDIS_CLUSTER;
    chash *c = NULL;
    int rc = chash_create(&cfg, &c);
    if (out)
        *out = c;
    else
        chash_free(c);
    return rc;
}

static void test_create(void) {
    chash_scheme s;
    ASSERT_OK(chash_scheme_from_name("redis-cluster", &s));
    ASSERT_EQ(s, CHASH_SCHEME_REDIS_CLUSTER);
    ASSERT_TRUE(strcmp(chash_scheme_name(CHASH_SCHEME_REDIS_CLUSTER), "redis-cluster") == 0);
    ASSERT_TRUE(chash_scheme_name((chash_scheme)(CHASH_SCHEME_REDIS_CLUSTER + 1)) == NULL);
    /* Buckets only. */
    for (int a = 0; chash_algo_name((chash_algo)a); a++)
        ASSERT_EQ(create((chash_config){.algo = (chash_algo)a}, NULL),
                  a == CHASH_ALGO_BUCKETS ? CHASH_OK : CHASH_EINVAL);
    const chash_algo B = CHASH_ALGO_BUCKETS;
    ASSERT_EQ(create((chash_config){.algo = B, .bucket_count = SLOTS}, NULL), CHASH_OK);
    ASSERT_EQ(create((chash_config){.algo = B, .bucket_count = 100}, NULL), CHASH_EINVAL);
    ASSERT_EQ(create((chash_config){.algo = B, .bucket_count = SLOTS + 1}, NULL), CHASH_EINVAL);
    ASSERT_EQ(create((chash_config){.algo = B, .bucket_count = 1}, NULL), CHASH_EINVAL);
    ASSERT_EQ(create((chash_config){.algo = B, .bucket_by = CHASH_BUCKET_BY_DIGITS}, NULL),
              CHASH_EINVAL);
    ASSERT_EQ(create((chash_config){.algo = B, .key_hash = CHASH_HASH_MURMUR}, NULL),
              CHASH_EINVAL);
    ASSERT_EQ(create((chash_config){.algo = B, .key_hash = CHASH_HASH_CRC32A}, NULL),
              CHASH_EINVAL);
    ASSERT_EQ(create((chash_config){.algo = B, .hash_tag = "[]"}, NULL), CHASH_EINVAL);
    ASSERT_EQ(create((chash_config){.algo = B, .hash_tag = "{"}, NULL), CHASH_EINVAL);
    /* What chash_get_config reports is taken back. */
    ASSERT_EQ(create((chash_config){.algo = B, .key_hash = CHASH_HASH_CRC16, .hash_tag = "{}"},
                     NULL),
              CHASH_OK);
    chash *c = NULL;
    ASSERT_OK(create((chash_config){.algo = B}, &c));
    chash_config got = CHASH_CONFIG_INIT;
    ASSERT_OK(chash_get_config(c, &got));
    ASSERT_EQ(got.scheme, CHASH_SCHEME_REDIS_CLUSTER);
    ASSERT_EQ(got.algo, B);
    ASSERT_UEQ(got.bucket_count, SLOTS);
    ASSERT_EQ(got.bucket_by, CHASH_BUCKET_BY_HASH);
    ASSERT_EQ(got.key_hash, CHASH_HASH_CRC16);
    ASSERT_TRUE(strcmp(got.hash_tag, "{}") == 0);
    chash *again = NULL;
    ASSERT_OK(chash_create(&got, &again));
    uint32_t b1, b2;
    ASSERT_OK(chash_bucket_of(c, "{x}y", 4, &b1));
    ASSERT_OK(chash_bucket_of(again, "{x}y", 4, &b2));
    ASSERT_UEQ(b1, b2);
    chash_free(again);
    chash_free(c);
}

static void test_placement(void) {
    chash *c = NULL;
    ASSERT_OK(create((chash_config){.algo = CHASH_ALGO_BUCKETS}, &c));
    uint32_t bucket;
    size_t node;
    /* Slots need no nodes; lookups do. */
    ASSERT_OK(chash_bucket_of(c, "foo", 3, &bucket));
    ASSERT_UEQ(bucket, 12182);
    ASSERT_EQ(chash_lookup(c, "foo", 3, &node), CHASH_EEMPTY);
    static const chash_node_spec nodes[] = {
        {"10.0.0.1:6379", 13, 1}, {"10.0.0.2:6379", 13, 1}, {"10.0.0.3:6379", 13, 1}};
    ASSERT_OK(chash_add_many(c, nodes, 3));
    /* redis-cli --cluster create's split of three primaries. */
    ASSERT_OK(chash_bucket_assign(c, 0, 5460, 0));
    ASSERT_OK(chash_bucket_assign(c, 5461, 10922, 1));
    ASSERT_OK(chash_bucket_assign(c, 10923, SLOTS - 1, 2));
    ASSERT_EQ(chash_bucket_assign(c, 0, SLOTS, 0), CHASH_EINVAL);
    uint64_t seed = 7;
    uint8_t key[32];
    for (int i = 0; i < 100000; i++) {
        size_t len = random_key(&seed, key, sizeof key);
        uint32_t slot = chash_redis_slot(key, len);
        ASSERT_UEQ(chash_key_hash(c, key, len), slot);
        ASSERT_OK(chash_bucket_of(c, key, len, &bucket));
        ASSERT_UEQ(bucket, slot);
        ASSERT_OK(chash_lookup(c, key, len, &node));
        ASSERT_UEQ(node, slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2);
        size_t owner;
        ASSERT_OK(chash_bucket_owner(c, slot, &owner));
        ASSERT_UEQ(owner, node);
        ASSERT_OK(chash_lookup_hash(c, slot, &owner));
        ASSERT_UEQ(owner, node);
    }
    /* An override follows the tag, as the slot does. */
    ASSERT_OK(chash_bucket_override(c, "{user7}:cart", 12, 2));
    ASSERT_OK(chash_lookup(c, "{user7}:profile", 15, &node));
    ASSERT_UEQ(node, 2);
    uint64_t shares[3], space;
    ASSERT_OK(chash_ownership(c, shares, 3, &space));
    ASSERT_UEQ(shares[0] + shares[1] + shares[2], space);
    chash_free(c);
}

/* ---- CLUSTER NODES ----------------------------------------------------- */

#define ID_A "07c37dfeb235213a872192d90877d0cd55635b91"
#define ID_B "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"
#define ID_C "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f"
#define ID_D "6ec23923021cf3ffec47632106199cb7f496ce01"
#define ID_E "824fe116063bc5fcf9f4ffd895bc17aee7731ac3"
#define ID_F "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"

/* Redis's documentation example, migrating entries and a hostname added. */
static const char six_nodes[] =
    ID_A " 127.0.0.1:30004@31004,host4 slave " ID_E " 0 1426238317239 4 connected\n"
    ID_B " 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922\n"
    ID_C " 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 "
    "[10923->-" ID_B "]\n"
    ID_D " 127.0.0.1:30005@31005 slave " ID_B " 0 1426238316232 5 connected\n"
    ID_F " 127.0.0.1:30006@31006 slave " ID_C " 0 1426238317741 6 connected\n"
    ID_E " 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 [5461-<-" ID_B "]\n";

static slot_table parse_ok(const char *text) {
    slot_table m;
    slot_table_error err = {0};
    ASSERT_TRUE(slot_table_init(&m));
    if (!slot_table_parse_nodes(&m, text, strlen(text), &err))
        TEST_FAIL_AT("refused (line %lu: %s): %s", err.line, err.why, text);
    return m;
}

static const char *owner_name(const slot_table *m, uint32_t slot) {
    return m->owner[slot] == SLOT_TABLE_NO_OWNER ? "-" : m->names[m->owner[slot]];
}

/* Refused, at `line`, with `why` in the reason. */
static void parse_bad(const char *text, size_t len, unsigned long line, const char *why) {
    slot_table m;
    slot_table_error err = {0};
    ASSERT_TRUE(slot_table_init(&m));
    if (slot_table_parse_nodes(&m, text, len, &err)) TEST_FAIL_AT("taken: %s", text);
    if (err.line != line || !strstr(err.why, why))
        TEST_FAIL_AT("for %s: want line %lu '%s', got line %lu '%s'", text, line, why, err.line,
                     err.why);
    slot_table_free(&m);
}

static void test_nodes(void) {
    slot_table m = parse_ok(six_nodes);
    ASSERT_EQ(m.node_count, 3);
    ASSERT_TRUE(strcmp(owner_name(&m, 0), "127.0.0.1:30001") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 5460), "127.0.0.1:30001") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 5461), "127.0.0.1:30002") == 0); /* importing: not yet */
    ASSERT_TRUE(strcmp(owner_name(&m, 10923), "127.0.0.1:30003") == 0); /* migrating: still */
    ASSERT_TRUE(strcmp(owner_name(&m, 16383), "127.0.0.1:30003") == 0);
    slot_table_free(&m);

    /* A lone node as redis-server 7.0.15 wrote its nodes.conf: no ip known,
     * three single slots and a range, the vars line, no final newline. */
    m = parse_ok(ID_A " :34489@44489 myself,master - 0 0 0 connected 0 2 4 100-200\n"
                      "vars currentEpoch 0 lastVoteEpoch 0");
    ASSERT_EQ(m.node_count, 1);
    ASSERT_TRUE(strcmp(m.names[0], ":34489") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 2), ":34489") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 3), "-") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 150), ":34489") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 201), "-") == 0);
    slot_table_free(&m);

    /* Failed, address-less and handshaking primaries are no owners; a
     * suspected one (fail?) still is; blank lines and CRLF are fine;
     * Redis 3's address had no bus port; IPv6 keeps its colons. */
    m = parse_ok("\r\n" ID_A " 10.0.0.1:7000@17000 master,fail - 0 0 1 connected 0-99\r\n"
                 ID_B " :0@0 master,noaddr - 0 0 2 disconnected 100-199\n"
                 ID_C " 10.0.0.3:7000@17000 master,fail? - 0 0 3 connected 200-299\n"
                 ID_D " 10.0.0.4:7000 master - 0 0 4 connected 300\n"
                 ID_E " ::1:7000@17000 handshake - 0 0 0 connected\n"
                 ID_F " fe80::1:7001@17001 master - 0 0 6 connected 301-302\n\n");
    ASSERT_EQ(m.node_count, 3);
    ASSERT_TRUE(strcmp(owner_name(&m, 0), "-") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 100), "-") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 200), "10.0.0.3:7000") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 300), "10.0.0.4:7000") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 302), "fe80::1:7001") == 0);
    slot_table_free(&m);

    const char *ok_prefix = ID_A " 10.0.0.1:7000@17000 master - 0 0 1 connected";
    char text[512];
#define BAD_LINE2(rest, why)                                                   \
    do {                                                                      \
        int n_ = snprintf(text, sizeof text, "%s 0\n%s", ok_prefix, rest);    \
        parse_bad(text, (size_t)n_, 2, why);                                  \
    } while (0)
    BAD_LINE2(ID_B " 10.0.0.2:7000@17000 master - 0 0 connected", "got 7 fields");
    BAD_LINE2("xyz 10.0.0.2:7000@17000 master - 0 0 2 connected", "40 hex digits");
    BAD_LINE2(ID_B "0 10.0.0.2:7000@17000 master - 0 0 2 connected", "40 hex digits");
    BAD_LINE2(ID_B " 10.0.0.2@17000 master - 0 0 2 connected", "expected an address");
    BAD_LINE2(ID_B " 10.0.0.2:70000@17000 master - 0 0 2 connected", "expected an address");
    BAD_LINE2(ID_B " 10.0.0.2:7000@x master - 0 0 2 connected", "bus port");
    BAD_LINE2(ID_B " 10.0.0.2:0@17000 master - 0 0 2 connected", "without a port");
    BAD_LINE2(ID_B " 10.0.0.2:7000@17000 master nope 0 0 2 connected", "id of its primary");
    BAD_LINE2(ID_B " 10.0.0.2:7000@17000 master - x 0 2 connected", "field 5");
    BAD_LINE2(ID_B " 10.0.0.2:7000@17000 master - 0 0 2 connected 16384", "a slot or a range");
    BAD_LINE2(ID_B " 10.0.0.2:7000@17000 master - 0 0 2 connected 5-3", "a slot or a range");
    BAD_LINE2(ID_B " 10.0.0.2:7000@17000 master - 0 0 2 connected 1-", "a slot or a range");
    BAD_LINE2(ID_B " 10.0.0.2:7000@17000 master - 0 0 2 connected -1", "a slot or a range");
    BAD_LINE2(ID_B " 10.0.0.2:7000@17000 master - 0 0 2 connected [5->-xyz]", "[slot->-id]");
    BAD_LINE2(ID_B " 10.0.0.2:7000@17000 master - 0 0 2 connected [5", "[slot->-id]");
    BAD_LINE2(ID_B " 10.0.0.2:7000@17000 master - 0 0 2 connected 0", "slot 0 is served by both");
    BAD_LINE2(ID_B " 10.0.0.1:7000@17000 master - 0 0 2 connected 1", "listed twice");
    BAD_LINE2(ID_B " 10.0.0.\x01:7000@17000 master - 0 0 2 connected 1", "control");
    /* A replica's line is checked too, though its slots do not count. */
    BAD_LINE2(ID_B " 10.0.0.2:7000@17000 slave " ID_A " 0 0 2 connected x", "a slot or a range");
    static const char nul[] = ID_A " 10.0.0.1:7000@17000 master - 0 0 1 connected 0\n\0\n";
    parse_bad(nul, sizeof nul - 1, 2, "NUL");
    parse_bad("", 0, 0, "no primary");
    parse_bad("vars currentEpoch 0 lastVoteEpoch 0\n", 36, 0, "no primary");
    const char *replica_only = ID_A " 10.0.0.1:7000@17000 slave " ID_B " 0 0 1 connected\n";
    parse_bad(replica_only, strlen(replica_only), 0, "no primary");
    const char *twemproxy = "127.0.0.1:6379:1 alpha\n";
    parse_bad(twemproxy, strlen(twemproxy), 1, "got 2 fields");
}

#ifdef CHASH_HAVE_CLUSTER_REPLY
/* Bytes of CLUSTER SHARDS and SLOTS as redis-server 7.0.15 answered for a
 * lone node that owns 0-16383, before and after it learned its ip. */
#define SHARDS_REPLY(ip_bulk)                                                             \
    "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n" \
    "$40\r\n279dee82e41e35a308a0060869dff094aa0076cc\r\n$4\r\nport\r\n:34489\r\n$2\r\nip\r\n" \
    ip_bulk "$8\r\nendpoint\r\n" ip_bulk "$4\r\nrole\r\n$6\r\nmaster\r\n"                  \
    "$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
#define SLOTS_REPLY(ip_bulk)                                                                \
    "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n" ip_bulk ":34489\r\n$40\r\n"                        \
    "279dee82e41e35a308a0060869dff094aa0076cc\r\n*0\r\n"

typedef bool (*decoder)(slot_table *, const char *, size_t, const char *, bool *,
                        slot_table_error *);

static slot_table decode_ok(decoder d, const char *reply, size_t len) {
    slot_table m;
    slot_table_error err = {0};
    bool is_error_reply = true;
    ASSERT_TRUE(slot_table_init(&m));
    if (!d(&m, reply, len, "127.0.0.9", &is_error_reply, &err))
        TEST_FAIL_AT("refused: %s", err.why);
    ASSERT_TRUE(!is_error_reply);
    return m;
}

static void decode_bad(decoder d, const char *reply, bool want_error_reply, const char *why) {
    slot_table m;
    slot_table_error err = {0};
    bool is_error_reply = !want_error_reply;
    ASSERT_TRUE(slot_table_init(&m));
    ASSERT_TRUE(!d(&m, reply, strlen(reply), "h", &is_error_reply, &err));
    ASSERT_EQ(is_error_reply, want_error_reply);
    if (!strstr(err.why, why)) TEST_FAIL_AT("want '%s', got '%s'", why, err.why);
    slot_table_free(&m);
}

static void test_replies(void) {
    static const char lone_shards[] = SHARDS_REPLY("$0\r\n\r\n");
    static const char lone_slots[] = SLOTS_REPLY("$0\r\n\r\n");
    static const char known_shards[] = SHARDS_REPLY("$9\r\n127.0.0.1\r\n");
    static const char known_slots[] = SLOTS_REPLY("$9\r\n127.0.0.1\r\n");
    struct {
        decoder d;
        const char *reply;
        size_t len;
        const char *name;
    } cases[] = {
        {slot_table_from_shards, lone_shards, sizeof lone_shards - 1, "127.0.0.9:34489"},
        {slot_table_from_slots, lone_slots, sizeof lone_slots - 1, "127.0.0.9:34489"},
        {slot_table_from_shards, known_shards, sizeof known_shards - 1, "127.0.0.1:34489"},
        {slot_table_from_slots, known_slots, sizeof known_slots - 1, "127.0.0.1:34489"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        slot_table m = decode_ok(cases[i].d, cases[i].reply, cases[i].len);
        ASSERT_EQ(m.node_count, 1);
        ASSERT_TRUE(strcmp(m.names[0], cases[i].name) == 0);
        ASSERT_TRUE(strcmp(owner_name(&m, 0), cases[i].name) == 0);
        ASSERT_TRUE(strcmp(owner_name(&m, 16383), cases[i].name) == 0);
        slot_table_free(&m);
        /* Cut anywhere, it is refused, never read past. */
        for (size_t cut = 0; cut < cases[i].len; cut++) {
            char *part = malloc(cut ? cut : 1);
            memcpy(part, cases[i].reply, cut);
            slot_table p;
            slot_table_error err = {0};
            bool is_error_reply;
            ASSERT_TRUE(slot_table_init(&p));
            ASSERT_TRUE(!cases[i].d(&p, part, cut, "h", &is_error_reply, &err));
            slot_table_free(&p);
            free(part);
        }
    }
    /* Two shards, one with a failed primary and a replica (no owner), the
     * other split in two ranges; fields in another order, one unknown, a
     * RESP3 map, a null ip. */
    static const char two[] =
        "*2\r\n"
        "%2\r\n$5\r\nnodes\r\n*2\r\n"
        "*6\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$6\r\nhealth\r\n$6\r\nfailed\r\n"
        "$4\r\nport\r\n:7000\r\n"
        "*8\r\n$2\r\nip\r\n$8\r\n10.0.0.2\r\n$4\r\nport\r\n:7001\r\n$4\r\nrole\r\n"
        "$7\r\nreplica\r\n$3\r\nnew\r\n*1\r\n:1\r\n"
        "$5\r\nslots\r\n*2\r\n:0\r\n:99\r\n"
        "*4\r\n$5\r\nslots\r\n*4\r\n:100\r\n:199\r\n:300\r\n:300\r\n$5\r\nnodes\r\n*1\r\n"
        "*6\r\n$2\r\nip\r\n_\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$4\r\nport\r\n:7002\r\n";
    slot_table m = decode_ok(slot_table_from_shards, two, sizeof two - 1);
    ASSERT_EQ(m.node_count, 1);
    ASSERT_TRUE(strcmp(owner_name(&m, 50), "-") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 150), "127.0.0.9:7002") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 300), "127.0.0.9:7002") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 301), "-") == 0);
    slot_table_free(&m);
    /* SLOTS: several ranges of one primary, replicas after it. */
    static const char slots[] = "*2\r\n*4\r\n:0\r\n:9\r\n*2\r\n$1\r\na\r\n:1\r\n*2\r\n$1\r\nr\r\n"
                                ":2\r\n*3\r\n:20\r\n:29\r\n*2\r\n$1\r\na\r\n:1\r\n";
    m = decode_ok(slot_table_from_slots, slots, sizeof slots - 1);
    ASSERT_EQ(m.node_count, 1);
    ASSERT_TRUE(strcmp(owner_name(&m, 9), "a:1") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 15), "-") == 0);
    ASSERT_TRUE(strcmp(owner_name(&m, 29), "a:1") == 0);
    slot_table_free(&m);

    decode_bad(slot_table_from_shards, "-ERR This instance has cluster support disabled\r\n",
               true, "cluster support disabled");
    decode_bad(slot_table_from_slots, "-ERR unknown subcommand 'SLOTS'\r\n", true,
               "unknown subcommand");
    decode_bad(slot_table_from_shards, "+OK\r\n", false, "not a list");
    decode_bad(slot_table_from_shards, "*1\r\n:1\r\n", false, "not a field list");
    decode_bad(slot_table_from_shards, "*1\r\n*2\r\n$5\r\nslots\r\n*2\r\n:9\r\n:16384\r\n", false,
               "0..16383");
    decode_bad(slot_table_from_slots, "*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\na\r\n:1\r\n", false,
               "backwards");
    decode_bad(slot_table_from_slots,
               "*2\r\n*3\r\n:0\r\n:4\r\n*2\r\n$1\r\na\r\n:1\r\n*3\r\n:4\r\n:4\r\n*2\r\n$1\r\nb\r\n"
               ":1\r\n",
               false, "slot 4 is served twice");
    decode_bad(slot_table_from_slots, "*1\r\n*3\r\n:0\r\n:4\r\n*1\r\n$1\r\na\r\n", false,
               "not [ip, port");
}
#endif

/* ---- vectors from redis-server ------------------------------------------- */

static int check_vectors(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) TEST_FAIL_AT("cannot open %s", path);
    char line[4096];
    long keys = 0;
    chash *c = NULL;
    ASSERT_OK(create((chash_config){.algo = CHASH_ALGO_BUCKETS}, &c));
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char hex[4096];
        unsigned slot;
        if (sscanf(line, "key %4095s %u", hex, &slot) != 2) TEST_FAIL_AT("bad line: %s", line);
        uint8_t key[2048];
        size_t len = strcmp(hex, "-") == 0 ? 0 : test_unhex(hex, strlen(hex), key, sizeof key);
        uint32_t got = chash_redis_slot(key, len), bucket;
        if (got != slot) TEST_FAIL_AT("key %s: slot %u, CLUSTER KEYSLOT says %u", hex, got, slot);
        ASSERT_OK(chash_bucket_of(c, key, len, &bucket));
        ASSERT_UEQ(bucket, slot);
        ASSERT_UEQ(chash_key_hash(c, key, len), slot);
        keys++;
    }
    fclose(f);
    chash_free(c);
    ASSERT_TRUE(keys > 0);
    printf("%s: %ld keys, each in the slot CLUSTER KEYSLOT gave\n", path, keys);
    TEST_DONE();
}

int main(int argc, char **argv) {
    if (argc > 1) return check_vectors(argv[1]);
    test_crc16();
    test_tags();
    test_create();
    test_placement();
    test_nodes();
#ifdef CHASH_HAVE_CLUSTER_REPLY
    test_replies();
#endif
    TEST_DONE();
}
