/*
 * test_fleetproto.c - the fleet's protocol values (proxy/fleetproto.h) on
 * exact cases: a real multi-pool nutcracker-style file split into pools
 * (comments, block and flow styles, indentation) and composed back, which
 * the config loader must read as it reads the file; JSON round trips of
 * P/change, P/ready/ID and P/proxies/ID; the inputs each must refuse, with
 * a reason; P/epoch; the plan of a pool's change.
 */
#include "../testlib.h"
#include "config.h"
#include "fleetproto.h"

#define LIT(s) s, sizeof(s) - 1

/* A file as an operator writes one: nutcracker's example pools, comments
 * between and inside them, a flow-style pool (one line and several), an
 * indentless sequence, four-space indentation, a quoted name, an anchor. */
static const char nutcracker_file[] =
    "# The cache tier.\n"
    "alpha:\n"
    "  listen: 127.0.0.1:22121   # clients connect here\n"
    "  hash: fnv1a_64\n"
    "  distribution: ketama\n"
    "  auto_eject_hosts: true\n"
    "  redis: true\n"
    "  server_retry_timeout: 2000\n"
    "  server_failure_limit: 1\n"
    "  # the servers, by name:\n"
    "  servers:\n"
    "   - 127.0.0.1:6379:1 s1\n"
    "   - 127.0.0.1:6380:1 s2   # newer box\n"
    "# comment at column 0 inside alpha\n"
    "   - 127.0.0.1:6381:2 s3\n"
    "\n"
    "# beta: the sessions.\n"
    "beta: {listen: \"127.0.0.1:22122\", hash: fnv1a_64, hash_tag: \"{}\", distribution: ketama,\n"
    "       redis: true, servers: [\"127.0.0.1:6382:1 server1\",\n"
    "                              \"127.0.0.1:6383:1 server2\"]}\n"
    "\"gamma\":\n"
    "    listen: 127.0.0.1:22123\n"
    "    hash: &h fnv1a_64\n"
    "    distribution: modula\n"
    "    timeout: 400\n"
    "    servers:\n"
    "    - 127.0.0.1:11212:1\n"
    "    - 127.0.0.1:11213:1\n"
    "delta: {listen: 127.0.0.1:22124, servers: [127.0.0.1:11214:1, 127.0.0.1:11215:1]}\n"
    "epsilon:\n"
    "  listen: 127.0.0.1:22125\n"
    "  distribution: ring\n"
    "  servers:\n"
    "    - 127.0.0.1:11216:1 a\n"
    "    - 127.0.0.1:11217:1 b\n"
    "# trailing words about nothing\n";

static conf *parse(const char *text, size_t len) {
    conf *cf = NULL;
    char err[CONF_ERR_MAX];
    if (conf_parse_with(NULL, text, len, "test.yml", &cf, err, sizeof err) != 0)
        TEST_FAIL_AT("conf_parse_with: %s\n---\n%s---", err, text);
    return cf;
}

static const conf_pool *pool_named(const conf *cf, const char *name) {
    for (size_t i = 0; i < cf->pool_count; i++)
        if (strcmp(cf->pools[i].name, name) == 0) return &cf->pools[i];
    TEST_FAIL_AT("no pool %s", name);
}

/* The same pool, as far as a proxy could tell. */
static void same_pool(const conf_pool *a, const conf_pool *b) {
    ASSERT_TRUE(strcmp(a->name, b->name) == 0);
    ASSERT_TRUE(strcmp(a->listen, b->listen) == 0);
    ASSERT_EQ(a->hash, b->hash);
    ASSERT_TRUE(strcmp(a->hash_tag, b->hash_tag) == 0);
    ASSERT_EQ(a->dist, b->dist);
    ASSERT_EQ(a->algo, b->algo);
    ASSERT_EQ(a->timeout_ms, b->timeout_ms);
    ASSERT_EQ(a->redis, b->redis);
    ASSERT_EQ(a->auto_eject_hosts, b->auto_eject_hosts);
    ASSERT_EQ(a->server_retry_timeout_ms, b->server_retry_timeout_ms);
    ASSERT_EQ(a->server_failure_limit, b->server_failure_limit);
    ASSERT_UEQ(a->server_count, b->server_count);
    for (size_t i = 0; i < a->server_count; i++) {
        ASSERT_TRUE(strcmp(a->servers[i].text, b->servers[i].text) == 0);
        ASSERT_TRUE(strcmp(a->servers[i].name, b->servers[i].name) == 0);
        ASSERT_EQ(a->servers[i].port, b->servers[i].port);
        ASSERT_EQ(a->servers[i].weight, b->servers[i].weight);
        ASSERT_TRUE(conf_server_same(&a->servers[i], &b->servers[i]));
    }
    fleet_pool_plan plan;
    ASSERT_EQ(fleet_pool_plan_of(a, b, &plan), 0);
    ASSERT_TRUE(plan.moved_fraction == 0.0);
}

static void test_split_compose(void) {
    fleet_pools pools;
    char err[256];
    if (fleet_pools_split(LIT(nutcracker_file), &pools, err, sizeof err) != 0)
        TEST_FAIL_AT("split: %s", err);
    ASSERT_UEQ(pools.count, 5);
    static const char *const names[] = {"alpha", "beta", "delta", "epsilon", "gamma"};
    for (size_t i = 0; i < 5; i++) ASSERT_TRUE(strcmp(pools.pools[i].name, names[i]) == 0);

    /* Comments inside kept, re-indented to column 0; what follows the last
     * server (the next pool's comment) left out. */
    ASSERT_TRUE(strcmp(fleet_pools_find(&pools, "alpha")->yaml,
                       "listen: 127.0.0.1:22121   # clients connect here\n"
                       "hash: fnv1a_64\n"
                       "distribution: ketama\n"
                       "auto_eject_hosts: true\n"
                       "redis: true\n"
                       "server_retry_timeout: 2000\n"
                       "server_failure_limit: 1\n"
                       "# the servers, by name:\n"
                       "servers:\n"
                       " - 127.0.0.1:6379:1 s1\n"
                       " - 127.0.0.1:6380:1 s2   # newer box\n"
                       "# comment at column 0 inside alpha\n"
                       " - 127.0.0.1:6381:2 s3\n") == 0);
    ASSERT_TRUE(strcmp(fleet_pools_find(&pools, "gamma")->yaml,
                       "listen: 127.0.0.1:22123\n"
                       "hash: &h fnv1a_64\n"
                       "distribution: modula\n"
                       "timeout: 400\n"
                       "servers:\n"
                       "- 127.0.0.1:11212:1\n"
                       "- 127.0.0.1:11213:1\n") == 0);
    ASSERT_TRUE(strcmp(fleet_pools_find(&pools, "delta")->yaml,
                       "{listen: 127.0.0.1:22124, servers: [127.0.0.1:11214:1, "
                       "127.0.0.1:11215:1]}\n") == 0);
    /* A flow map over three lines: from '{' to '}'. */
    ASSERT_TRUE(strncmp(fleet_pools_find(&pools, "beta")->yaml, "{listen:", 8) == 0);
    ASSERT_TRUE(strstr(fleet_pools_find(&pools, "beta")->yaml, "server2\"]}\n") != NULL);
    ASSERT_TRUE(fleet_pools_find(&pools, "zeta") == NULL);

    /* Composed, the loader reads the same pools as from the file. */
    char *text;
    size_t len;
    ASSERT_EQ(fleet_pools_compose(&pools, &text, &len), 0);
    ASSERT_UEQ(strlen(text), len);
    conf *direct = parse(LIT(nutcracker_file)), *composed = parse(text, len);
    ASSERT_UEQ(direct->pool_count, composed->pool_count);
    for (size_t i = 0; i < direct->pool_count; i++)
        same_pool(&direct->pools[i], pool_named(composed, direct->pools[i].name));

    /* Split again, the composed text gives the same set: a fixed point. */
    fleet_pools again;
    ASSERT_EQ(fleet_pools_split(text, len, &again, err, sizeof err), 0);
    ASSERT_TRUE(fleet_pools_equal(&pools, &again));
    char *text2;
    size_t len2;
    ASSERT_EQ(fleet_pools_compose(&again, &text2, &len2), 0);
    ASSERT_TRUE(len2 == len && memcmp(text, text2, len) == 0);
    free(text2);
    fleet_pools_free(&again);

    /* One pool changed: no longer equal. */
    ASSERT_EQ(fleet_pools_split(LIT("alpha: {listen: 127.0.0.1:1, servers: [127.0.0.1:2:1]}\n"),
                                &again, err, sizeof err),
              0);
    ASSERT_TRUE(!fleet_pools_equal(&pools, &again));
    fleet_pools_free(&again);

    conf_free(direct);
    conf_free(composed);
    free(text);
    fleet_pools_free(&pools);
    fleet_pools_free(&pools); /* a freed set frees again as an empty one */
}

/* Odd but valid YAML: a BOM, CRLF line ends, non-ASCII comments (libyaml's
 * marks count characters, not bytes), a document marker, a block scalar
 * last, an alias inside its own pool. */
static void test_split_odd(void) {
    static const char text[] =
        "\xef\xbb\xbf---\r\n"
        "# caf\xc3\xa9 \xe2\x82\xac\r\n"
        "one:\r\n"
        "  listen: 127.0.0.1:1 # \xc3\xa9\xc3\xa9\r\n"
        "  servers: &s [127.0.0.1:2:1]\r\n"
        "  note: *s\r\n"
        "two:\n"
        "  text: |\n"
        "    line one\n"
        "      line two\n"
        "\n"
        "# about three\n"
        "three: {a: b}\n";
    fleet_pools p;
    char err[256];
    if (fleet_pools_split(LIT(text), &p, err, sizeof err) != 0) TEST_FAIL_AT("split: %s", err);
    ASSERT_UEQ(p.count, 3);
    ASSERT_TRUE(strcmp(fleet_pools_find(&p, "one")->yaml,
                       "listen: 127.0.0.1:1 # \xc3\xa9\xc3\xa9\n"
                       "servers: &s [127.0.0.1:2:1]\n"
                       "note: *s\n") == 0);
    ASSERT_TRUE(strcmp(fleet_pools_find(&p, "two")->yaml,
                       "text: |\n  line one\n    line two\n") == 0);
    ASSERT_TRUE(strcmp(fleet_pools_find(&p, "three")->yaml, "{a: b}\n") == 0);
    fleet_pools_free(&p);
}

static void refused(const char *text, const char *reason) {
    fleet_pools p = {0};
    char err[256] = "";
    testlib_checks++;
    if (fleet_pools_split(text, strlen(text), &p, err, sizeof err) == 0)
        TEST_FAIL_AT("split accepted:\n%s", text);
    if (!strstr(err, reason)) TEST_FAIL_AT("split's reason '%s' lacks '%s'", err, reason);
    ASSERT_TRUE(p.count == 0 && p.pools == NULL);
}

static void test_split_refused(void) {
    refused("", "no pools");
    refused("# only a comment\n", "no pools");
    refused("{}\n", "no pools");
    refused("alpha: [1, 2\n", "line");
    refused("- a\n- b\n", "expected a map of pools");
    refused("plain text\n", "expected a map of pools");
    refused("alpha: 3\n", "pool 'alpha': expected a map of settings");
    refused("alpha:\n  - 127.0.0.1:1:1\n", "pool 'alpha': expected a map of settings");
    refused("alpha: &a {listen: x}\nbeta: *a\n", "pool 'beta': expected a map");
    refused("alpha: {servers: &s [a]}\nbeta: {servers: *s}\n",
            "alias *s refers to an anchor outside");
    refused("al pha: {listen: x}\n", "pool name 'al pha'");
    refused("\"a/b\": {listen: x}\n", "pool name 'a/b'");
    refused("[a]: {listen: x}\n", "expected pool-name: settings");
    refused("a: {listen: x}\na: {listen: y}\n", "duplicate pool 'a'");
    refused("a: {listen: x}\n---\nb: {listen: y}\n", "more than one YAML document");
    refused("a: {listen: x}\n\xff\n", "line");
    char long_name[200];
    memset(long_name, 'n', 150);
    strcpy(long_name + 150, ": {a: b}\n");
    refused(long_name, "1 to 127 bytes");
}

static void test_pools_add(void) {
    fleet_pools p = {0};
    ASSERT_EQ(fleet_pools_add(&p, LIT("b"), LIT("x: 1\n")), 0);
    ASSERT_EQ(fleet_pools_add(&p, LIT("a"), LIT("x: 2\n")), 0);
    ASSERT_EQ(fleet_pools_add(&p, LIT("c"), "", 0), 0);
    ASSERT_EQ(fleet_pools_add(&p, LIT("b"), LIT("x: 3\n")), -1); /* repeated */
    ASSERT_EQ(fleet_pools_add(&p, LIT("b c"), LIT("x")), -1);   /* bad name */
    ASSERT_EQ(fleet_pools_add(&p, "", 0, LIT("x")), -1);
    ASSERT_UEQ(p.count, 3);
    ASSERT_TRUE(strcmp(p.pools[0].name, "a") == 0 && strcmp(p.pools[1].name, "b") == 0 &&
                strcmp(p.pools[2].name, "c") == 0);
    ASSERT_TRUE(strcmp(fleet_pools_find(&p, "b")->yaml, "x: 1\n") == 0);
    fleet_pools empty = {0};
    char *text = NULL;
    size_t len;
    ASSERT_EQ(fleet_pools_compose(&empty, &text, &len), -1);
    ASSERT_TRUE(fleet_name_is_valid(LIT("Az09_-.")));
    ASSERT_TRUE(!fleet_name_is_valid(LIT("a:b")));
    ASSERT_TRUE(!fleet_name_is_valid(LIT("\xc3\xa9")));
    fleet_pools_free(&p);
}

/* ---- JSON ------------------------------------------------------------- */

static void test_change(void) {
    fleet_change c = {.epoch = 8, .from = 7, .phase = FLEET_SWITCH, .by = "chash fleet apply"};
    ASSERT_EQ(fleet_pools_add(&c.pools, LIT("beta"), LIT("listen: 127.0.0.1:2\n")), 0);
    ASSERT_EQ(fleet_pools_add(&c.pools, LIT("alpha"), LIT("{a: \"b\\\"\"}\n")), 0);
    char *json;
    size_t len;
    ASSERT_EQ(fleet_change_encode(&c, &json, &len), 0);
    ASSERT_UEQ(strlen(json), len);
    fleet_change d;
    const char *why = NULL;
    ASSERT_EQ(fleet_change_decode(json, len, &d, &why), 0);
    ASSERT_UEQ(d.epoch, 8);
    ASSERT_UEQ(d.from, 7);
    ASSERT_EQ(d.phase, FLEET_SWITCH);
    ASSERT_TRUE(strcmp(d.by, "chash fleet apply") == 0);
    ASSERT_TRUE(d.reason == NULL);
    ASSERT_TRUE(fleet_pools_equal(&c.pools, &d.pools));
    fleet_change_free(&d);
    free(json);

    /* An abort with its reason; a reason past the limit is cut on a
     * character boundary. */
    char reason[FLEET_TEXT_MAX + 10];
    memset(reason, 'r', sizeof reason);
    memcpy(reason + FLEET_TEXT_MAX - 2, "\xc3\xa9", 2);
    reason[sizeof reason - 1] = '\0';
    c.phase = FLEET_ABORT;
    c.reason = reason;
    ASSERT_EQ(fleet_change_encode(&c, &json, &len), 0);
    ASSERT_EQ(fleet_change_decode(json, len, &d, &why), 0);
    ASSERT_EQ(d.phase, FLEET_ABORT);
    ASSERT_UEQ(strlen(d.reason), FLEET_TEXT_MAX - 2);
    fleet_change_free(&d);
    free(json);
    c.reason = "\xff not UTF-8";
    ASSERT_EQ(fleet_change_encode(&c, &json, &len), -1);
    fleet_pools_free(&c.pools);

    static const struct {
        const char *json, *why;
    } bad[] = {
        {"[]", "not a JSON object"},
        {"{", "not JSON"},
        {"{\"epoch\":2,\"from\":2,\"phase\":\"prepare\",\"pools\":{}}", "from + 1"},
        {"{\"epoch\":1,\"from\":-1,\"phase\":\"prepare\",\"pools\":{}}", "no epoch or from"},
        {"{\"epoch\":\"2\",\"from\":1,\"phase\":\"prepare\",\"pools\":{}}", "no epoch or from"},
        {"{\"epoch\":2,\"from\":1,\"phase\":\"commit\",\"pools\":{}}", "a phase"},
        {"{\"epoch\":2,\"from\":1,\"phase\":\"prepare\"}", "no pools"},
        {"{\"epoch\":2,\"from\":1,\"phase\":\"prepare\",\"pools\":{\"a b\":\"x\"}}", "bad name"},
        {"{\"epoch\":2,\"from\":1,\"phase\":\"prepare\",\"pools\":{\"a\":3}}", "not a text"},
        /* jansson refuses \u0000 outright (no JSON_ALLOW_NUL). */
        {"{\"epoch\":2,\"from\":1,\"phase\":\"prepare\",\"pools\":{\"a\":\"x\\u0000\"}}",
         "not JSON"},
        {"{\"epoch\":2,\"from\":1,\"phase\":\"prepare\",\"pools\":{\"a\":\"x\",\"a\":\"y\"}}",
         "not JSON"},
        {"{\"epoch\":2,\"from\":1,\"phase\":\"prepare\",\"pools\":{},\"by\":7}", "'by'"},
        {"{\"epoch\":2,\"from\":1,\"phase\":\"prepare\",\"pools\":{},\"reason\":[]}", "reason"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        ASSERT_EQ(fleet_change_decode(bad[i].json, strlen(bad[i].json), &d, &why), -1);
        if (!why || !strstr(why, bad[i].why))
            TEST_FAIL_AT("%s: reason '%s', wanted '%s'", bad[i].json, why ? why : "(none)",
                         bad[i].why);
        ASSERT_TRUE(d.pools.count == 0 && d.by == NULL);
    }
}

static void test_ready(void) {
    fleet_ready r = {.epoch = 3, .phase = FLEET_PREPARE, .is_ok = true}, d;
    char *json;
    size_t len;
    ASSERT_EQ(fleet_ready_encode(&r, &json, &len), 0);
    ASSERT_TRUE(strcmp(json, "{\"epoch\":3,\"ok\":true,\"phase\":\"prepare\"}") == 0);
    ASSERT_EQ(fleet_ready_decode(json, len, &d, NULL), 0);
    ASSERT_TRUE(d.is_ok && d.epoch == 3 && d.phase == FLEET_PREPARE && d.error == NULL);
    free(json);
    r = (fleet_ready){.epoch = 4, .phase = FLEET_SWITCH, .is_ok = false,
                      .error = "pool alpha: pools added or removed"};
    ASSERT_EQ(fleet_ready_encode(&r, &json, &len), 0);
    ASSERT_EQ(fleet_ready_decode(json, len, &d, NULL), 0);
    ASSERT_TRUE(!d.is_ok && d.phase == FLEET_SWITCH && strcmp(d.error, r.error) == 0);
    fleet_ready_free(&d);
    free(json);
    /* A refusal without a reason gets one; an answer's error is dropped. */
    ASSERT_EQ(fleet_ready_decode(LIT("{\"epoch\":1,\"phase\":\"prepare\",\"ok\":false}"), &d,
                                 NULL),
              0);
    ASSERT_TRUE(strcmp(d.error, "no reason given") == 0);
    fleet_ready_free(&d);
    ASSERT_EQ(fleet_ready_decode(LIT("{\"epoch\":1,\"phase\":\"prepare\",\"ok\":true,"
                                     "\"error\":\"x\"}"),
                                 &d, NULL),
              0);
    ASSERT_TRUE(d.error == NULL);
    const char *why = NULL;
    ASSERT_EQ(fleet_ready_decode(LIT("{\"epoch\":1,\"phase\":\"prepare\",\"ok\":1}"), &d, &why),
              -1);
    ASSERT_TRUE(strstr(why, "ok") != NULL);
    ASSERT_EQ(fleet_ready_decode(LIT("{\"epoch\":1.5,\"phase\":\"prepare\",\"ok\":true}"), &d,
                                 &why),
              -1);
    ASSERT_EQ(fleet_ready_decode(LIT("{\"epoch\":1,\"phase\":\"Prepare\",\"ok\":true}"), &d,
                                 &why),
              -1);
}

static void test_member(void) {
    fleet_member m = {.id = "px-1", .host = "h1", .pid = 4242, .listen = "alpha=127.0.0.1:1",
                      .epoch = 9, .state = "serving", .started_unix = 1700000000},
                 d;
    char *json;
    size_t len;
    ASSERT_EQ(fleet_member_encode(&m, &json, &len), 0);
    ASSERT_EQ(fleet_member_decode(json, len, &d, NULL), 0);
    ASSERT_TRUE(strcmp(d.id, "px-1") == 0 && strcmp(d.host, "h1") == 0 && d.pid == 4242 &&
                strcmp(d.listen, m.listen) == 0 && d.epoch == 9 &&
                strcmp(d.state, "serving") == 0 && d.started_unix == 1700000000);
    fleet_member_free(&d);
    free(json);
    /* Only id and epoch are needed; the rest reads as "" and 0. */
    ASSERT_EQ(fleet_member_decode(LIT("{\"id\":\"x\",\"epoch\":0}"), &d, NULL), 0);
    ASSERT_TRUE(strcmp(d.host, "") == 0 && strcmp(d.state, "") == 0 && d.pid == 0);
    fleet_member_free(&d);
    const char *why = NULL;
    ASSERT_EQ(fleet_member_decode(LIT("{\"id\":\"a/b\",\"epoch\":0}"), &d, &why), -1);
    ASSERT_TRUE(strstr(why, "id") != NULL);
    ASSERT_EQ(fleet_member_decode(LIT("{\"id\":\"a\"}"), &d, &why), -1);
    ASSERT_EQ(fleet_member_decode(LIT("{\"id\":\"a\",\"epoch\":1,\"pid\":\"1\"}"), &d, &why), -1);
    m.id = "bad id";
    ASSERT_EQ(fleet_member_encode(&m, &json, &len), -1);
}

static void test_previous(void) {
    fleet_previous p = {.epoch = 6, .committed_unix_ms = 1796441667123}, d;
    ASSERT_EQ(fleet_pools_add(&p.pools, "alpha", 5, "listen: x\n", 10), 0);
    char *json;
    size_t len;
    ASSERT_EQ(fleet_previous_encode(&p, &json, &len), 0);
    ASSERT_EQ(fleet_previous_decode(json, len, &d, NULL), 0);
    ASSERT_TRUE(d.epoch == 6 && d.committed_unix_ms == 1796441667123 &&
                fleet_pools_equal(&d.pools, &p.pools));
    fleet_previous_free(&d);
    free(json);
    const char *why = NULL;
    ASSERT_EQ(fleet_previous_decode(LIT("{\"epoch\":1,\"pools\":{}}"), &d, &why), -1);
    ASSERT_TRUE(strstr(why, "committed_unix_ms") != NULL);
    ASSERT_EQ(fleet_previous_decode(LIT("{\"epoch\":1,\"committed_unix_ms\":-5,\"pools\":{}}"),
                                    &d, &why), -1);
    ASSERT_EQ(fleet_previous_decode(
                  LIT("{\"epoch\":1,\"committed_unix_ms\":5,\"pools\":{\"a/b\":\"x\"}}"), &d,
                  &why),
              -1);
    ASSERT_EQ(fleet_previous_decode(LIT("{\"epoch\":1,\"committed_unix_ms\":5}"), &d, &why), -1);
    fleet_previous_free(&p);
}

static void test_epoch(void) {
    uint64_t e = 99;
    ASSERT_EQ(fleet_epoch_parse(LIT("0"), &e), 0);
    ASSERT_UEQ(e, 0);
    ASSERT_EQ(fleet_epoch_parse(LIT("18446744073709551615"), &e), 0);
    ASSERT_UEQ(e, UINT64_MAX);
    static const char *const bad[] = {"", "07", "-1", "+1", "1 ", "18446744073709551616",
                                      "1e3", "0x10", "123456789012345678901"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ(fleet_epoch_parse(bad[i], strlen(bad[i]), &e), -1);
}

/* ---- plans ------------------------------------------------------------ */

static void test_plan(void) {
    /* ketama 4 -> 5 equal servers: exact, about a fifth moves; modula
     * 4 -> 5: sampled, about four fifths. */
    conf *a = parse(LIT("k: {listen: 127.0.0.1:1, servers: [127.0.0.1:2:1 a, 127.0.0.1:3:1 b, "
                        "127.0.0.1:4:1 c, 127.0.0.1:5:1 d]}\n"
                        "m: {listen: 127.0.0.1:6, distribution: modula, servers: [127.0.0.1:2:1 a,"
                        " 127.0.0.1:3:1 b, 127.0.0.1:4:1 c, 127.0.0.1:5:1 d]}\n"));
    conf *b = parse(LIT("k: {listen: 127.0.0.1:1, servers: [127.0.0.1:2:1 a, 127.0.0.1:3:1 b, "
                        "127.0.0.1:4:1 c, 127.0.0.1:5:1 d, 127.0.0.1:7:1 e]}\n"
                        "m: {listen: 127.0.0.1:6, distribution: modula, servers: [127.0.0.1:2:1 a,"
                        " 127.0.0.1:3:1 b, 127.0.0.1:4:1 c, 127.0.0.1:5:1 d, 127.0.0.1:7:1 e]}\n"));
    fleet_pool_plan p;
    ASSERT_EQ(fleet_pool_plan_of(pool_named(a, "k"), pool_named(b, "k"), &p), 0);
    ASSERT_TRUE(p.is_exact);
    ASSERT_UEQ(p.servers_before, 4);
    ASSERT_UEQ(p.servers_after, 5);
    ASSERT_TRUE(p.range_count > 50);
    ASSERT_NEAR(p.moved_fraction, 0.2, 0.06);
    ASSERT_NEAR(p.moved_fraction, (double)p.moved_hashes / 4294967296.0, 1e-12);
    ASSERT_EQ(fleet_pool_plan_of(pool_named(a, "m"), pool_named(b, "m"), &p), 0);
    ASSERT_TRUE(!p.is_exact);
    ASSERT_UEQ(p.samples, 100000);
    ASSERT_NEAR(p.moved_fraction, 0.8, 0.02);
    conf_free(a);
    conf_free(b);
}

int main(void) {
    test_split_compose();
    test_split_odd();
    test_split_refused();
    test_pools_add();
    test_change();
    test_ready();
    test_member();
    test_previous();
    test_epoch();
    test_plan();
    TEST_DONE();
}
