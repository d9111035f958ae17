/*
 * command.c - the table of Redis commands and where each keeps its keys.
 *
 * Invariant: after command_init, commands[] is sorted by name and never
 * changes again, so an index into it names a command for the process's life.
 */
#include "command.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY(n) {n, CK_KEY, 1, 1, 1, false, 0}
#define KEY_AT(n, i) {n, CK_KEY, i, i, 1, false, 0}
#define KEYS(n, f, l, s) {n, CK_KEYS, f, l, s, false, 0}
#define NUMKEYS(n, i, d) {n, CK_NUMKEYS, i, 0, 1, d, 0}
#define LOCAL(n, k) {n, k, 0, 0, 0, false, 0}

/* Sorted at start-up (command_init), so the order here is free. Blocking
 * commands (BLPOP...) are left out on purpose: they would stall every other
 * client sharing the server connection. */
static cmd_spec commands[] = {
    /* strings and generic */
    KEY("append"), KEY("bitcount"), KEY("bitfield"), KEY("bitfield_ro"), KEY("bitpos"),
    KEY("decr"), KEY("decrby"), KEY("dump"), KEY("expire"), KEY("expireat"), KEY("expiretime"),
    KEY("get"), KEY("getbit"), KEY("getdel"), KEY("getex"), KEY("getrange"), KEY("getset"),
    KEY("incr"), KEY("incrby"), KEY("incrbyfloat"), KEY("persist"), KEY("pexpire"),
    KEY("pexpireat"), KEY("pexpiretime"), KEY("psetex"), KEY("pttl"), KEY("restore"),
    KEY("set"), KEY("setbit"), KEY("setex"), KEY("setnx"), KEY("setrange"),
    {"sort", CK_KEY, 1, 1, 1, false, CMD_STORE_OPTION}, KEY("sort_ro"), KEY("strlen"),
    KEY("substr"), KEY("ttl"), KEY("type"),
    /* hashes */
    KEY("hdel"), KEY("hexists"), KEY("hget"), KEY("hgetall"), KEY("hincrby"),
    KEY("hincrbyfloat"), KEY("hkeys"), KEY("hlen"), KEY("hmget"), KEY("hmset"),
    KEY("hrandfield"), KEY("hscan"), KEY("hset"), KEY("hsetnx"), KEY("hstrlen"), KEY("hvals"),
    /* lists */
    KEY("lindex"), KEY("linsert"), KEY("llen"), KEY("lpop"), KEY("lpos"), KEY("lpush"),
    KEY("lpushx"), KEY("lrange"), KEY("lrem"), KEY("lset"), KEY("ltrim"), KEY("rpop"),
    KEY("rpush"), KEY("rpushx"),
    /* sets */
    KEY("sadd"), KEY("scard"), KEY("sismember"), KEY("smembers"), KEY("smismember"),
    KEY("spop"), KEY("srandmember"), KEY("srem"), KEY("sscan"),
    /* sorted sets */
    KEY("zadd"), KEY("zcard"), KEY("zcount"), KEY("zincrby"), KEY("zlexcount"), KEY("zmscore"),
    KEY("zpopmax"), KEY("zpopmin"), KEY("zrandmember"), KEY("zrange"), KEY("zrangebylex"),
    KEY("zrangebyscore"), KEY("zrank"), KEY("zrem"), KEY("zremrangebylex"),
    KEY("zremrangebyrank"), KEY("zremrangebyscore"), KEY("zrevrange"), KEY("zrevrangebylex"),
    KEY("zrevrangebyscore"), KEY("zrevrank"), KEY("zscan"), KEY("zscore"),
    /* hyperloglog, geo, streams */
    KEY("pfadd"), KEY("geoadd"), KEY("geodist"), KEY("geohash"), KEY("geopos"),
    KEY("georadius"), KEY("georadius_ro"), KEY("georadiusbymember"),
    KEY("georadiusbymember_ro"), KEY("geosearch"), KEY("xack"), KEY("xadd"), KEY("xautoclaim"),
    KEY("xclaim"), KEY("xdel"), KEY("xlen"), KEY("xpending"), KEY("xrange"), KEY("xrevrange"),
    KEY("xsetid"), KEY("xtrim"), KEY_AT("xinfo", 2), KEY_AT("xgroup", 2),
    /* several keys, one server */
    KEYS("rpoplpush", 1, 2, 1), KEYS("lmove", 1, 2, 1), KEYS("smove", 1, 2, 1),
    KEYS("rename", 1, 2, 1), KEYS("renamenx", 1, 2, 1), KEYS("copy", 1, 2, 1),
    KEYS("geosearchstore", 1, 2, 1), KEYS("zrangestore", 1, 2, 1), KEYS("lcs", 1, 2, 1),
    KEYS("sdiff", 1, -1, 1), KEYS("sdiffstore", 1, -1, 1), KEYS("sinter", 1, -1, 1),
    KEYS("sinterstore", 1, -1, 1), KEYS("sunion", 1, -1, 1), KEYS("sunionstore", 1, -1, 1),
    KEYS("pfcount", 1, -1, 1), KEYS("pfmerge", 1, -1, 1), KEYS("bitop", 2, -1, 1),
    KEYS("msetnx", 1, -2, 2),
    {"eval", CK_NUMKEYS, 2, 0, 1, false, CMD_SCRIPT}, NUMKEYS("evalsha", 2, false),
    {"eval_ro", CK_NUMKEYS, 2, 0, 1, false, CMD_SCRIPT},
    NUMKEYS("evalsha_ro", 2, false), NUMKEYS("fcall", 2, false), NUMKEYS("fcall_ro", 2, false),
    NUMKEYS("zunion", 1, false), NUMKEYS("zinter", 1, false), NUMKEYS("zdiff", 1, false),
    NUMKEYS("zintercard", 1, false), NUMKEYS("sintercard", 1, false),
    NUMKEYS("lmpop", 1, false), NUMKEYS("zmpop", 1, false), NUMKEYS("zunionstore", 2, true),
    NUMKEYS("zinterstore", 2, true), NUMKEYS("zdiffstore", 2, true),
    /* split and merged */
    {"mget", CK_MGET, 1, -1, 1, false, 0}, {"del", CK_SUM, 1, -1, 1, false, 0},
    {"unlink", CK_SUM, 1, -1, 1, false, 0}, {"exists", CK_SUM, 1, -1, 1, false, 0},
    {"touch", CK_SUM, 1, -1, 1, false, 0}, {"mset", CK_MSET, 1, -1, 2, false, 0},
    /* every server, or any one */
    LOCAL("dbsize", CK_ALL_SUM), LOCAL("flushall", CK_ALL_OK), LOCAL("flushdb", CK_ALL_OK),
    LOCAL("time", CK_ONE), LOCAL("lastsave", CK_ONE), LOCAL("script", CK_SCRIPT),
    LOCAL("keys", CK_ALL_CONCAT), LOCAL("scan", CK_SCAN),
    /* the connection */
    LOCAL("ping", CK_PING), LOCAL("echo", CK_ECHO), LOCAL("quit", CK_QUIT),
    LOCAL("select", CK_SELECT), LOCAL("hello", CK_HELLO), LOCAL("auth", CK_AUTH),
    LOCAL("proxy", CK_PROXY),
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])
#define NAME_MAX_LEN 24

static int spec_order(const void *a, const void *b) {
    return strcmp(((const cmd_spec *)a)->name, ((const cmd_spec *)b)->name);
}

/* Command names hashed (case folded) into an open-addressing table, built
 * once at start-up: one pass over the name finds its spec. */
#define COMMAND_SLOTS 1024u /* a power of two, well above COMMAND_COUNT */
static uint16_t command_slot[COMMAND_SLOTS]; /* index + 1; 0: empty */

static inline char fold(char ch) { return (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch); }

static uint32_t name_hash(const char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)fold(p[i])) * 16777619u;
    return h;
}

void command_init(void) {
    qsort(commands, COMMAND_COUNT, sizeof commands[0], spec_order);
    _Static_assert(COMMAND_COUNT < COMMAND_SLOTS / 2, "command table too full");
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        uint32_t at = name_hash(commands[i].name, strlen(commands[i].name)) & (COMMAND_SLOTS - 1);
        while (command_slot[at]) at = (at + 1) & (COMMAND_SLOTS - 1);
        command_slot[at] = (uint16_t)(i + 1);
    }
}

size_t command_count(void) { return COMMAND_COUNT; }

size_t command_index(const cmd_spec *spec) { return (size_t)(spec - commands); }

const char *command_name(size_t i) { return i < COMMAND_COUNT ? commands[i].name : NULL; }

const cmd_spec *command_find(const resp_arg *name) {
    if (name->len == 0 || name->len > NAME_MAX_LEN) return NULL;
    uint32_t at = name_hash(name->ptr, name->len) & (COMMAND_SLOTS - 1);
    for (; command_slot[at]; at = (at + 1) & (COMMAND_SLOTS - 1)) {
        const cmd_spec *spec = &commands[command_slot[at] - 1];
        size_t i = 0;
        while (i < name->len && spec->name[i] && fold(name->ptr[i]) == spec->name[i]) i++;
        if (i == name->len && spec->name[i] == '\0') return spec;
    }
    return NULL;
}

/* CK_KEYS: how many keys m has at spec's positions, or 0 when its arguments
 * do not fit them. */
static size_t keys_span(const cmd_spec *spec, const resp_msg *m) {
    size_t first = (size_t)spec->first, step = (size_t)spec->step;
    size_t last = spec->last < 0 ? m->argc - (size_t)(-spec->last) : (size_t)spec->last;
    if (m->argc <= first || m->argc <= last || last < first || (last - first) % step != 0)
        return 0;
    return (last - first) / step + 1;
}

/* SORT key [BY p] [LIMIT o c] [GET p]... [ASC|DESC] [ALPHA] [STORE dst]:
 * the options read as Redis reads them, so a pattern spelled "store" is
 * not taken for the keyword. */
static cmd_keys_err sort_store(const resp_msg *m, cmd_keys *out) {
    for (size_t i = 2; i < m->argc; i++) {
        const resp_arg *a = &m->argv[i];
        size_t takes = resp_arg_is(a, "limit") ? 2
                       : resp_arg_is(a, "by") || resp_arg_is(a, "get") ||
                               resp_arg_is(a, "store")
                           ? 1
                           : 0;
        if (i + takes >= m->argc && takes) return CMD_KEYS_SYNTAX;
        if (resp_arg_is(a, "store")) out->dest = &m->argv[i + 1];
        i += takes;
    }
    return CMD_KEYS_OK;
}

cmd_keys_err command_keys(const cmd_spec *spec, const resp_msg *m, cmd_keys *out) {
    *out = (cmd_keys){.step = 1};
    long long numkeys;
    switch (spec->kind) {
    case CK_KEY:
        if (m->argc <= (size_t)spec->first) return CMD_KEYS_ARITY;
        out->first = (size_t)spec->first;
        out->count = 1;
        return spec->flags & CMD_STORE_OPTION ? sort_store(m, out) : CMD_KEYS_OK;
    case CK_KEYS:
        out->count = keys_span(spec, m);
        if (out->count == 0) return CMD_KEYS_ARITY;
        out->first = (size_t)spec->first;
        out->step = (size_t)spec->step;
        return CMD_KEYS_OK;
    case CK_NUMKEYS:
        if (m->argc <= (size_t)spec->first) return CMD_KEYS_ARITY;
        if (!resp_arg_int(&m->argv[spec->first], &numkeys) || numkeys < 0)
            return CMD_KEYS_NUMKEYS;
        if ((unsigned long long)numkeys > m->argc - (size_t)spec->first - 1)
            return CMD_KEYS_NUMKEYS_BIG;
        if (numkeys == 0 && !spec->has_dest) return CMD_KEYS_NONE;
        out->first = (size_t)spec->first + 1;
        out->count = (size_t)numkeys;
        if (spec->has_dest) out->dest = &m->argv[1];
        return CMD_KEYS_OK;
    case CK_MGET:
    case CK_SUM:
        if (m->argc < 2) return CMD_KEYS_ARITY;
        out->first = 1;
        out->count = m->argc - 1;
        return CMD_KEYS_OK;
    case CK_MSET:
        if (m->argc < 3 || m->argc % 2 == 0) return CMD_KEYS_ARITY;
        out->first = 1;
        out->step = 2;
        out->count = (m->argc - 1) / 2;
        return CMD_KEYS_OK;
    case CK_ALL_SUM:
    case CK_ALL_OK:
    case CK_ONE:
    case CK_SCRIPT:
    case CK_ALL_CONCAT:
    case CK_SCAN:
    case CK_PING:
    case CK_ECHO:
    case CK_QUIT:
    case CK_SELECT:
    case CK_HELLO:
    case CK_AUTH:
    case CK_PROXY:
        return CMD_KEYS_OK;
    }
    return CMD_KEYS_OK;
}
