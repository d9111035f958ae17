/*
 * test_acl.c - the users' rules (proxy/acl.c) without the proxy: each rule
 * of Redis's ACL language applied left to right as ACL SETUSER applies it
 * (what redis-server 7.0.15 answered to the same rules is noted where it is
 * not obvious), every refusal and that its message never shows a password
 * or a digest, passwords by SHA-256, the glob matcher on Redis's edge cases,
 * acl_check on commands, keys, channels, scripts and SORT's options, the
 * `users:` key of the config loader, and what a check costs (printed, not
 * asserted). test_acl.py holds the same rules against a real redis-server.
 */
#define _POSIX_C_SOURCE 200809L
#include "../testlib.h"
#include "acl.h"
#include "command.h"
#include "config.h"
#include "resp.h"

#include <time.h>

static acl_user parse_ok(const char *text) {
    acl_user u;
    char err[ACL_ERR_MAX];
    if (acl_user_parse(text, &u, err, sizeof err) != 0) TEST_FAIL_AT("%s: %s", text, err);
    return u;
}

/* The message of a refused rule string: it contains `want`, and not `secret`. */
static void parse_fails(const char *text, const char *want, const char *secret) {
    acl_user u;
    char err[ACL_ERR_MAX] = "";
    testlib_checks++;
    if (acl_user_parse(text, &u, err, sizeof err) == 0) {
        acl_user_free(&u);
        TEST_FAIL_AT("%s: accepted, want an error with '%s'", text, want);
    }
    if (!strstr(err, want)) TEST_FAIL_AT("%s: message '%s', want '%s' in it", text, err, want);
    if (secret && strstr(err, secret))
        TEST_FAIL_AT("%s: message '%s' shows '%s'", text, err, secret);
}

/* A command line as the parser hands it on. */
typedef struct msg {
    resp_arg argv[16];
    resp_msg m;
} msg;

static void make(msg *out, const char *line) {
    static char copies[16][16][64];
    static unsigned turn;
    char(*words)[64] = copies[turn++ % 16];
    memset(out, 0, sizeof *out);
    const char *at = line;
    size_t n = 0;
    while (*at && n < 16) {
        size_t len = strcspn(at, " ");
        memcpy(words[n], at, len);
        words[n][len] = '\0';
        if (strcmp(words[n], "''") == 0) words[n][len = 0] = '\0'; /* the empty argument */
        out->argv[n] = (resp_arg){words[n], len};
        n++;
        at += len;
        while (*at == ' ') at++;
    }
    out->m.argc = n;
    out->m.argv = out->argv;
}

static acl_verdict check(const acl_user *u, const char *line) {
    msg x;
    make(&x, line);
    const cmd_spec *spec = command_find(&x.argv[0]);
    if (!spec) TEST_FAIL_AT("%s: no such command", line);
    const cmd_spec *sub = command_sub(spec, &x.m);
    if (!sub) TEST_FAIL_AT("%s: no such subcommand", line);
    return acl_check(u, sub, &x.m);
}

#define ALLOWED(u, line) ASSERT_EQ(check(u, line), ACL_OK)
#define DENIED(u, line, verdict) ASSERT_EQ(check(u, line), verdict)

static bool has_password(const acl_user *u, const char *pass) {
    return acl_authenticate(u, 1, u->name, strlen(u->name), pass, strlen(pass)) == u;
}

static void test_new_user(void) {
    acl_user u = parse_ok("alice");
    ASSERT_TRUE(strcmp(u.name, "alice") == 0);
    ASSERT_TRUE(!u.is_on && !u.is_nopass && !u.is_all_keys && !u.is_all_channels);
    ASSERT_TRUE(!u.is_all_commands && u.hash_count == 0 && u.key_count == 0);
    DENIED(&u, "GET k", ACL_DENIED_COMMAND);
    DENIED(&u, "PING", ACL_DENIED_COMMAND);
    ALLOWED(&u, "AUTH x"); /* Redis's no-auth commands pass whatever the rules */
    ALLOWED(&u, "HELLO 2");
    ALLOWED(&u, "QUIT");
    ALLOWED(&u, "RESET");
    acl_user_free(&u);
    acl_user_free(&u); /* a freed (zeroed) user may be freed again */
    acl_user_free(NULL);
}

static void test_issue_example(void) {
    acl_user u = parse_ok("alice on >secret ~app:* +@read");
    ASSERT_TRUE(u.is_on && u.hash_count == 1 && u.key_count == 1);
    ASSERT_TRUE(strcmp(u.keys[0], "app:*") == 0);
    unsigned char h[ACL_HASH_LEN];
    acl_hash("secret", 6, h);
    ASSERT_TRUE(memcmp(u.hashes[0], h, ACL_HASH_LEN) == 0);
    ASSERT_TRUE(has_password(&u, "secret") && !has_password(&u, "Secret"));
    ALLOWED(&u, "GET app:1");
    DENIED(&u, "GET other", ACL_DENIED_KEY);
    DENIED(&u, "SET app:1 v", ACL_DENIED_COMMAND);
    ALLOWED(&u, "MGET app:1 app:2");
    DENIED(&u, "MGET app:1 x app:2", ACL_DENIED_KEY);
    DENIED(&u, "CONFIG GET maxmemory", ACL_DENIED_COMMAND);
    DENIED(&u, "PROXY RING", ACL_DENIED_COMMAND);
    DENIED(&u, "ACL WHOAMI", ACL_DENIED_COMMAND); /* @slow, as in Redis */
    ALLOWED(&u, "EXISTS app:1");
    acl_user_free(&u);
}

static void test_commands(void) {
    acl_user u = parse_ok("u on +@all");
    ASSERT_TRUE(u.is_all_commands);
    ALLOWED(&u, "FLUSHALL");
    ALLOWED(&u, "PROXY RELOAD");
    acl_user_free(&u);

    /* Any command taken away ends allcommands (Redis's flag). */
    u = parse_ok("u on allcommands -get");
    ASSERT_TRUE(!u.is_all_commands);
    DENIED(&u, "GET k", ACL_DENIED_COMMAND);
    acl_user_free(&u);

    /* +container: it and each subcommand; -container|sub: that one only. */
    u = parse_ok("u on allkeys +config -config|set");
    ALLOWED(&u, "CONFIG GET x");
    ALLOWED(&u, "CONFIG RESETSTAT");
    DENIED(&u, "CONFIG SET x y", ACL_DENIED_COMMAND);
    acl_user_free(&u);
    u = parse_ok("u on allkeys +config|get");
    ALLOWED(&u, "CONFIG GET x");
    DENIED(&u, "CONFIG SET x y", ACL_DENIED_COMMAND);
    acl_user_free(&u);

    /* Categories: the proxy's own PROXY is @admin, RELOAD also @dangerous. */
    u = parse_ok("ops on +@admin -@dangerous");
    ALLOWED(&u, "PROXY RING");
    ALLOWED(&u, "PROXY LOCATE k");
    ALLOWED(&u, "PROXY HELP");
    DENIED(&u, "PROXY RELOAD", ACL_DENIED_COMMAND);
    DENIED(&u, "GET k", ACL_DENIED_COMMAND);
    acl_user_free(&u);
    u = parse_ok("ops on +proxy");
    ALLOWED(&u, "PROXY RELOAD");
    acl_user_free(&u);
    u = parse_ok("ops on +proxy|locate");
    ALLOWED(&u, "PROXY LOCATE k");
    DENIED(&u, "PROXY RING", ACL_DENIED_COMMAND);
    acl_user_free(&u);

    /* nocommands / -@all after +@all; case does not matter in rules. */
    u = parse_ok("U ON +@ALL -@ALL +GET ALLKEYS");
    ASSERT_TRUE(u.is_on && u.is_all_keys);
    ALLOWED(&u, "GET k");
    DENIED(&u, "SET k v", ACL_DENIED_COMMAND);
    acl_user_free(&u);
    u = parse_ok("u +@all nocommands");
    DENIED(&u, "GET k", ACL_DENIED_COMMAND);
    acl_user_free(&u);
    /* A category's container brings its subcommands (Redis's recursion):
     * CLIENT is @slow, so +@slow allows CLIENT ID, which is @slow too. */
    u = parse_ok("u +@connection");
    ALLOWED(&u, "CLIENT ID");
    ALLOWED(&u, "PING");
    DENIED(&u, "GET k", ACL_DENIED_COMMAND);
    acl_user_free(&u);
}

static void test_passwords(void) {
    static const char digest[] = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
    acl_user u = parse_ok("u on >a >a >b");
    ASSERT_EQ(u.hash_count, 2); /* none twice, as Redis keeps them */
    ASSERT_TRUE(has_password(&u, "a") && has_password(&u, "b") && !has_password(&u, "c"));
    acl_user_free(&u);
    u = parse_ok("u on >a >b <a");
    ASSERT_TRUE(!has_password(&u, "a") && has_password(&u, "b"));
    acl_user_free(&u);
    /* #digest: "secret"'s SHA-256 */
    char rule[128];
    snprintf(rule, sizeof rule, "u on #%s", digest);
    u = parse_ok(rule);
    ASSERT_TRUE(has_password(&u, "secret") && !has_password(&u, "secret "));
    acl_user_free(&u);
    snprintf(rule, sizeof rule, "u on >secret !%s", digest);
    u = parse_ok(rule);
    ASSERT_EQ(u.hash_count, 0);
    ASSERT_TRUE(!has_password(&u, "secret") && !has_password(&u, ""));
    acl_user_free(&u);
    /* nopass: any password; a password added after it ends that. */
    u = parse_ok("u on nopass");
    ASSERT_TRUE(has_password(&u, "anything") && has_password(&u, ""));
    acl_user_free(&u);
    u = parse_ok("u on nopass >x");
    ASSERT_TRUE(!u.is_nopass && has_password(&u, "x") && !has_password(&u, "y"));
    acl_user_free(&u);
    u = parse_ok("u on >x nopass");
    ASSERT_TRUE(u.is_nopass && u.hash_count == 0);
    acl_user_free(&u);
    u = parse_ok("u on >x resetpass");
    ASSERT_TRUE(!u.is_nopass && u.hash_count == 0 && !has_password(&u, "x"));
    acl_user_free(&u);
    /* off: no password opens it. */
    u = parse_ok("u on >x off");
    ASSERT_TRUE(!has_password(&u, "x"));
    acl_user_free(&u);
    u = parse_ok("u off on >x");
    ASSERT_TRUE(has_password(&u, "x"));
    acl_user_free(&u);
    /* An empty password is a password (">" alone). */
    u = parse_ok("u on >");
    ASSERT_TRUE(has_password(&u, "") && !has_password(&u, "x"));
    acl_user_free(&u);
}

static void test_authenticate(void) {
    acl_user users[3] = {parse_ok("default on nopass ~* +@all"),
                         parse_ok("alice on >pa >pb +@all"), parse_ok("bob off >pw +@all")};
    ASSERT_TRUE(acl_authenticate(users, 3, "alice", 5, "pa", 2) == &users[1]);
    ASSERT_TRUE(acl_authenticate(users, 3, "alice", 5, "pb", 2) == &users[1]);
    ASSERT_TRUE(acl_authenticate(users, 3, "alice", 5, "pc", 2) == NULL);
    ASSERT_TRUE(acl_authenticate(users, 3, "alice", 5, "p", 1) == NULL);
    ASSERT_TRUE(acl_authenticate(users, 3, "alic", 4, "pa", 2) == NULL);
    ASSERT_TRUE(acl_authenticate(users, 3, "bob", 3, "pw", 2) == NULL); /* off */
    ASSERT_TRUE(acl_authenticate(users, 3, "carol", 5, "pa", 2) == NULL);
    ASSERT_TRUE(acl_authenticate(users, 3, "default", 7, "x", 1) == &users[0]);
    ASSERT_TRUE(acl_user_find(users, 3, "bob", 3) == &users[2]);
    ASSERT_TRUE(acl_user_find(users, 3, "Bob", 3) == NULL); /* names are exact */
    for (int i = 0; i < 3; i++) acl_user_free(&users[i]);
}

static void test_patterns(void) {
    acl_user u = parse_ok("u on +@all ~a* ~b*");
    ASSERT_EQ(u.key_count, 2);
    ALLOWED(&u, "GET a1");
    ALLOWED(&u, "GET b1");
    DENIED(&u, "GET c1", ACL_DENIED_KEY);
    acl_user_free(&u);
    /* ~* is allkeys, and drops the patterns before it (ACL GETUSER: "~*"). */
    u = parse_ok("u on +@all ~a* ~*");
    ASSERT_TRUE(u.is_all_keys && u.key_count == 0);
    acl_user_free(&u);
    u = parse_ok("u on +@all allkeys resetkeys ~x");
    ASSERT_TRUE(!u.is_all_keys && u.key_count == 1);
    DENIED(&u, "GET y", ACL_DENIED_KEY);
    acl_user_free(&u);
    /* "~" alone: the empty key. */
    u = parse_ok("u on +@all ~");
    ALLOWED(&u, "GET ''");
    DENIED(&u, "GET x", ACL_DENIED_KEY);
    acl_user_free(&u);
    u = parse_ok("u on +@all ~**");
    DENIED(&u, "GET ''", ACL_DENIED_KEY); /* as redis-server: ** is no allkeys */
    ALLOWED(&u, "GET x");
    acl_user_free(&u);
    u = parse_ok("u on +@all ~*");
    ALLOWED(&u, "GET ''");
    acl_user_free(&u);
    /* Channels: none until given (Redis 7's acl-pubsub-default). */
    u = parse_ok("u on +@all allkeys");
    DENIED(&u, "PUBLISH ch m", ACL_DENIED_CHANNEL);
    DENIED(&u, "SUBSCRIBE ch", ACL_DENIED_CHANNEL);
    ALLOWED(&u, "UNSUBSCRIBE ch"); /* not checked, as Redis */
    acl_user_free(&u);
    u = parse_ok("u on +@all &news.* &x");
    ALLOWED(&u, "PUBLISH news.1 m");
    ALLOWED(&u, "SPUBLISH news.1 m");
    DENIED(&u, "PUBLISH sport m", ACL_DENIED_CHANNEL);
    ALLOWED(&u, "SUBSCRIBE news.a news.b x");
    DENIED(&u, "SUBSCRIBE news.a y", ACL_DENIED_CHANNEL);
    ALLOWED(&u, "SSUBSCRIBE news.a");
    /* PSUBSCRIBE: the pattern itself must be one of the user's. */
    ALLOWED(&u, "PSUBSCRIBE news.*");
    DENIED(&u, "PSUBSCRIBE news.1*", ACL_DENIED_CHANNEL);
    DENIED(&u, "PSUBSCRIBE *", ACL_DENIED_CHANNEL);
    /* A channel is not a key: PUBLISH is checked as a channel only. */
    DENIED(&u, "GET news.1", ACL_DENIED_KEY);
    acl_user_free(&u);
    u = parse_ok("u on +@all allchannels");
    ALLOWED(&u, "PSUBSCRIBE *");
    acl_user_free(&u);
    u = parse_ok("u on +@all &a &*");
    ASSERT_TRUE(u.is_all_channels && u.channel_count == 0);
    acl_user_free(&u);
    u = parse_ok("u on +@all allchannels resetchannels");
    DENIED(&u, "PUBLISH a m", ACL_DENIED_CHANNEL);
    acl_user_free(&u);
}

static void test_keys_of_commands(void) {
    acl_user u = parse_ok("u on +@all ~k:* &*");
    ALLOWED(&u, "MSET k:1 v k:2 v");
    DENIED(&u, "MSET k:1 v x v", ACL_DENIED_KEY);
    DENIED(&u, "MSET k:1 k:2 x v", ACL_DENIED_KEY); /* the value k:2 is no key */
    ALLOWED(&u, "RENAME k:1 k:2");
    DENIED(&u, "RENAME k:1 x", ACL_DENIED_KEY);
    ALLOWED(&u, "ZUNIONSTORE k:d 2 k:a k:b");
    DENIED(&u, "ZUNIONSTORE x 2 k:a k:b", ACL_DENIED_KEY); /* the destination */
    DENIED(&u, "SORT k:1 STORE x", ACL_DENIED_KEY);
    DENIED(&u, "GEORADIUS k:g 0 0 1 km STORE x", ACL_DENIED_KEY);
    ALLOWED(&u, "XREAD COUNT 1 STREAMS k:s k:t 0 0");
    ALLOWED(&u, "XREAD COUNT 1 STREAMS k:s x 0"); /* odd: routing refuses it */
    DENIED(&u, "XREAD STREAMS k:s x 0 0", ACL_DENIED_KEY);
    ALLOWED(&u, "WATCH k:1 k:2");
    DENIED(&u, "WATCH k:1 x", ACL_DENIED_KEY);
    DENIED(&u, "BLPOP k:1 x 0", ACL_DENIED_KEY);
    DENIED(&u, "OBJECT ENCODING x", ACL_DENIED_KEY);
    DENIED(&u, "MEMORY USAGE x", ACL_DENIED_KEY);
    ALLOWED(&u, "BITOP AND k:d k:a k:b");
    DENIED(&u, "BITOP AND x k:a", ACL_DENIED_KEY);
    /* Commands without keys are not about keys. */
    ALLOWED(&u, "KEYS *");
    ALLOWED(&u, "DBSIZE");
    /* SORT's BY with a pattern and GET read other keys: Redis allows them to
     * a user with every key only, and so does the proxy. */
    ALLOWED(&u, "SORT k:1");
    ALLOWED(&u, "SORT k:1 BY nosort LIMIT 0 10 ALPHA DESC");
    DENIED(&u, "SORT k:1 BY w_*", ACL_DENIED_SORT_BY);
    DENIED(&u, "SORT k:1 GET #", ACL_DENIED_SORT_GET);
    DENIED(&u, "SORT_RO k:1 GET #", ACL_DENIED_SORT_GET);
    DENIED(&u, "SORT k:1 BY w_* GET #", ACL_DENIED_SORT_BY); /* the first one, as Redis */
    ALLOWED(&u, "SORT k:1 NOSUCH GET #"); /* a syntax error first: the server's */
    ALLOWED(&u, "SORT k:1 LIMIT x 1 GET #"); /* not an integer: the server's error */
    ALLOWED(&u, "SORT_RO k:1 STORE k:2 GET #"); /* SORT_RO has no STORE: syntax error */
    /* A script runs unchecked on a server: restricted users may not. */
    DENIED(&u, "EVAL return 1 1 k:1", ACL_DENIED_SCRIPT);
    DENIED(&u, "EVALSHA abc 1 k:1", ACL_DENIED_SCRIPT);
    DENIED(&u, "FCALL f 1 k:1", ACL_DENIED_SCRIPT);
    DENIED(&u, "FCALL_RO f 1 k:1", ACL_DENIED_SCRIPT);
    ALLOWED(&u, "SCRIPT LOAD x"); /* loading runs nothing */
    ALLOWED(&u, "FUNCTION LIST");
    acl_user_free(&u);
    u = parse_ok("u on +@all allkeys allchannels");
    ALLOWED(&u, "EVAL return 1 1 x");
    ALLOWED(&u, "SORT x BY w_* GET #");
    acl_user_free(&u);
    u = parse_ok("u on +@all -flushall allkeys allchannels");
    DENIED(&u, "EVAL return 1 1 x", ACL_DENIED_SCRIPT); /* no longer every command */
    acl_user_free(&u);
    u = parse_ok("u on +@read allkeys allchannels");
    DENIED(&u, "EVAL return 1 1 x", ACL_DENIED_COMMAND); /* the command comes first */
    acl_user_free(&u);
}

static void test_refusals(void) {
    static const char digest[] = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
    char rule[200];
    parse_fails("", "empty", NULL);
    parse_fails("   ", "empty", NULL);
    parse_fails("u on %R~x", "rule 2 ('%R~x'): read/write key permissions", NULL);
    parse_fails("u on %RW~x", "not supported", NULL);
    parse_fails("u (+get ~x)", "rule 1 ('(+get'): selectors", NULL);
    parse_fails("u clearselectors", "selectors", NULL);
    parse_fails("u sanitize-payload", "sanitize", NULL);
    parse_fails("u skip-sanitize-payload", "sanitize", NULL);
    parse_fails("u +get|x", "first argument", NULL);
    parse_fails("u +select|0", "first argument", NULL);
    parse_fails("u +config|nosuch", "no such subcommand", NULL);
    parse_fails("u -config|nosuch", "no such subcommand", NULL);
    parse_fails("u +nosuch", "rule 1 ('+nosuch'): no such command", NULL);
    parse_fails("u -nosuch", "no such command", NULL);
    parse_fails("u +", "no such command", NULL);
    parse_fails("u +@nosuch", "rule 1 ('+@nosuch'): no such category", NULL);
    parse_fails("u +@", "no such category", NULL);
    parse_fails("u allkeys ~x", "rule 2 ('~x'): a pattern after allkeys", NULL);
    parse_fails("u ~* ~x", "resetkeys", NULL);
    parse_fails("u allchannels &x", "resetchannels", NULL);
    /* Rules that may hold a secret are named by their place only. */
    parse_fails("u on >hunter2 <other2", "rule 3: '<': the user has no such password", "other2");
    parse_fails("u on hunter2", "rule 2: not a rule", "hunter2");
    parse_fails("u #abc", "64 lowercase hex", "abc");
    snprintf(rule, sizeof rule, "u #%.63s", digest);
    parse_fails(rule, "64 lowercase hex", "2bb80d");
    snprintf(rule, sizeof rule, "u #%sA", digest);
    parse_fails(rule, "64 lowercase hex", "2bb80d");
    parse_fails("u #2BB80D537B1DA3E38BD30361AA855686BDE0EACD7162FEF6A25FE97BF527A25B",
                "64 lowercase hex", "2BB80D");
    snprintf(rule, sizeof rule, "u >secret !%s !%s", digest, digest);
    parse_fails(rule, "rule 3: '!': the user has no such password", "2bb80d");
    parse_fails("u !zz", "64 lowercase hex", "zz");
    /* Names: at most ACL_NAME_MAX bytes, no control characters. */
    char name[ACL_NAME_MAX + 8];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    parse_fails(name, "at most", NULL);
    parse_fails("a\x01z on", "control", NULL);
    name[ACL_NAME_MAX] = '\0';
    acl_user u = parse_ok(name);
    acl_user_free(&u);
}

static void test_same(void) {
    acl_user a = parse_ok("u on >x ~k* +@read"), b = parse_ok("u  on  ~k*  +@read >x");
    acl_user c = parse_ok("u on >y ~k* +@read"), d = parse_ok("u on >x ~k* +@read -get");
    ASSERT_TRUE(acl_user_same(&a, &b));
    ASSERT_TRUE(!acl_user_same(&a, &c));
    ASSERT_TRUE(!acl_user_same(&a, &d));
    acl_user_free(&a);
    acl_user_free(&b);
    acl_user_free(&c);
    acl_user_free(&d);
}

static bool match(const char *p, const char *s) {
    return acl_glob_match(p, strlen(p), s, strlen(s));
}

static void test_glob(void) {
    static const struct {
        const char *pattern, *s;
        bool want;
    } cases[] = {
        /* stringmatchlen's own answer; the rule ~* is allkeys, which takes
         * the empty key too, and "~**" does not (as redis-server) */
        {"*", "", false},         {"**", "", false},
        {"*", "abc", true},       {"", "", true},
        {"", "a", false},         {"a", "", false},           {"abc", "abc", true},
        {"abc", "abd", false},    {"a*", "a", true},          {"a*", "abc", true},
        {"a*", "ba", false},      {"*a", "ba", true},         {"*a", "ab", false},
        {"a*c", "abbbc", true},   {"a*c", "abbbd", false},    {"a?c", "abc", true},
        {"a?c", "ac", false},     {"?", "", false},           {"??", "ab", true},
        {"[abc]", "b", true},     {"[abc]", "d", false},      {"[^abc]", "d", true},
        {"[^abc]", "a", false},   {"[a-c]x", "bx", true},     {"[c-a]x", "bx", true},
        {"[a-c]", "d", false},    {"[\\]]", "]", true},       {"[\\]]", "\\", false},
        {"\\*", "*", true},       {"\\*", "a", false},        {"a\\", "a\\", true},
        {"\\", "\\", true},       {"[", "[", false},          {"[a", "a", true},
        {"[a", "[", false},       {"[^", "x", true},          {"[]", "]", false},
        {"[]]", "]", false},      {"[a-]", "-", false},       {"[-a]", "-", true},
        {"a**b", "ab", true},     {"a**b", "axxb", true},     {"*?", "", false},
        {"*?", "x", true},        {"a*b*c", "abxbxc", true},  {"a*b*c", "abxbx", false},
        {"app:*", "app:", true},  {"app:*", "ap", false},     {"*:*", "a:b", true},
        {"h[ae]llo", "hallo", true}, {"h[ae]llo", "hillo", false}, {"*\\*", "ab*", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        testlib_checks++;
        if (match(cases[i].pattern, cases[i].s) != cases[i].want)
            TEST_FAIL_AT("'%s' against '%s': want %s", cases[i].pattern, cases[i].s,
                         cases[i].want ? "a match" : "none");
    }
    /* Bytes past 0x7f compare as Redis's signed chars in a range: [a-\xff]
     * is -1..97 swapped, which takes '\xff' and 'A', not '\x80' nor 'b'
     * (redis-server 7.0.15 answered the same). */
    ASSERT_TRUE(match("[a-\xff]", "\xff"));
    ASSERT_TRUE(match("[a-\xff]", "A"));
    ASSERT_TRUE(!match("[a-\xff]", "\x80"));
    ASSERT_TRUE(!match("[a-\xff]", "b"));
    ASSERT_TRUE(match("[\x80-\xff]", "\x90"));
    ASSERT_TRUE(match("\xc3\xa9*", "\xc3\xa9t\xc3\xa9"));
    /* Binary-safe: a NUL inside the key. */
    ASSERT_TRUE(acl_glob_match("a?c", 3, "a\0c", 3));
    ASSERT_TRUE(!acl_glob_match("a*", 2, "b\0", 2));
    /* The worst case of a naive matcher ("a*a*a*...b" against "aaa...")
     * stays fast: a failed '*' stops the ones before it. */
    char pattern[64] = "", key[65536];
    for (int i = 0; i < 20; i++) strcat(pattern, "a*");
    strcat(pattern, "b");
    memset(key, 'a', sizeof key);
    clock_t t0 = clock();
    ASSERT_TRUE(!acl_glob_match(pattern, strlen(pattern), key, sizeof key));
    double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
    ASSERT_TRUE(s < 2.0);
}

/* users: in the configuration. */
#define POOL "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n"

static void config_fails(const char *text, const char *want, const char *secret) {
    conf *cf = NULL;
    char err[CONF_ERR_MAX] = "";
    testlib_checks++;
    if (conf_parse_with(NULL, text, strlen(text), "t.yml", &cf, err, sizeof err) == 0) {
        conf_free(cf);
        TEST_FAIL_AT("accepted, want '%s':\n%s", want, text);
    }
    if (!strstr(err, want)) TEST_FAIL_AT("message '%s', want '%s'", err, want);
    if (secret && strstr(err, secret)) TEST_FAIL_AT("message '%s' shows '%s'", err, secret);
}

static void test_config(void) {
    const char *text = POOL "  users:\n   - \"default on nopass ~* &* +@all\"\n"
                            "   - alice on >secret ~app:* +@read\n";
    conf *cf = NULL;
    char err[CONF_ERR_MAX];
    if (conf_parse_with(NULL, text, strlen(text), "t.yml", &cf, err, sizeof err) != 0)
        TEST_FAIL_AT("%s", err);
    ASSERT_EQ(cf->pools[0].user_count, 2);
    ASSERT_TRUE(strcmp(cf->pools[0].users[1].name, "alice") == 0);
    ASSERT_TRUE(cf->pools[0].users[0].is_nopass);
    conf_free(cf);
    /* Each message: the item's line, the pool, users:, and the rule. */
    config_fails(POOL "  users:\n   - alice on >pw\n   - \"bob on %R~x\"\n",
                 "t.yml:8: pool 'alpha': users: user 'bob': rule 2 ('%R~x'): read/write", NULL);
    config_fails(POOL "  users:\n   - alice on >pw\n   - alice on >pw2\n",
                 "t.yml:8: pool 'alpha': users: user 'alice' is listed twice", "pw2");
    config_fails(POOL "  users:\n   - alice on sesame\n",
                 "t.yml:7: pool 'alpha': users: user 'alice': rule 2: not a rule", "sesame");
    config_fails(POOL "  users: []\n", "t.yml:6: pool 'alpha': users: the list is empty",
                 NULL);
    config_fails(POOL "  users: alice\n", "users: expected a list", NULL);
    config_fails(POOL "  users:\n   - [a, b]\n", "users: expected strings", NULL);
    config_fails(POOL "  users:\n   - \"\"\n", "users: expected \"NAME rules...\"", NULL);
    config_fails("m:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n"
                 "  users:\n   - alice on\n",
                 "pool 'm': users needs redis: true", NULL);
}

/* What a check costs: printed for the report, never asserted. */
static double ns_per(const acl_user *u, const char *line, long rounds) {
    msg x;
    make(&x, line);
    const cmd_spec *spec = command_sub(command_find(&x.argv[0]), &x.m);
    struct timespec t0, t1;
    unsigned ok = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < rounds; i++) ok += acl_check(u, spec, &x.m) == ACL_OK;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ASSERT_TRUE(ok == 0 || ok == (unsigned)rounds);
    return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
           (double)rounds;
}

static void test_cost(void) {
    acl_user all = parse_ok("u on +@all allkeys allchannels");
    acl_user one = parse_ok("u on +@all ~app:*");
    acl_user three = parse_ok("u on +@all ~user:*:cart ~session:* ~app:*");
    long n = 2000000;
    printf("cost of acl_check (ns per command, this machine):\n");
    printf("  GET, +@all allkeys:              %6.1f\n", ns_per(&all, "GET app:1", n));
    printf("  GET, ~app:*:                     %6.1f\n", ns_per(&one, "GET app:12345", n));
    printf("  GET, 3 patterns, 3rd matches:    %6.1f\n", ns_per(&three, "GET app:12345", n));
    printf("  MGET of 10 keys, 3 patterns:     %6.1f\n",
           ns_per(&three, "MGET app:1 app:2 app:3 app:4 app:5 app:6 app:7 app:8 app:9 app:0",
                  n / 4));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long auths = 200000;
    for (long i = 0; i < auths; i++) ASSERT_TRUE(!has_password(&one, "wrong password"));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("  AUTH (one SHA-256), 14 bytes:    %6.1f\n",
           ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
               (double)auths);
    static char big[16384]; /* UNAUTH_MAX_BULK: the most a client sends before AUTH */
    memset(big, 'x', sizeof big);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < auths / 20; i++)
        ASSERT_TRUE(!acl_authenticate(&one, 1, "u", 1, big, sizeof big));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("  AUTH with a 16 KiB password:     %6.1f\n",
           ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
               (double)(auths / 20));
    acl_user_free(&all);
    acl_user_free(&one);
    acl_user_free(&three);
}

int main(void) {
    command_init();
    test_new_user();
    test_issue_example();
    test_commands();
    test_passwords();
    test_authenticate();
    test_patterns();
    test_keys_of_commands();
    test_refusals();
    test_same();
    test_glob();
    test_config();
    test_cost();
    printf("test_acl: %d checks passed\n", testlib_checks);
    return 0;
}
