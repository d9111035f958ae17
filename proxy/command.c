/*
 * command.c - the table of Redis commands and where each keeps its keys.
 *
 * Invariant: after command_init, commands[] is sorted by name and never
 * changes again, so an index into it names a command for the process's life.
 * Each command's ACL categories come from command_acl.h, which
 * tools/acl_categories.py writes from a live redis-server's COMMAND.
 */
#include "command.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY(n) {n, CK_KEY, 1, 1, 1, false, 0, NULL, 0}
#define KEY_AT(n, i) {n, CK_KEY, i, i, 1, false, 0, NULL, 0}
#define KEYS(n, f, l, s) {n, CK_KEYS, f, l, s, false, 0, NULL, 0}
#define NUMKEYS(n, i, d) {n, CK_NUMKEYS, i, 0, 1, d, 0, NULL, 0}
#define RO_KEY(n) {n, CK_KEY, 1, 1, 1, false, CMD_READONLY, NULL, 0}
#define RO_KEY_AT(n, i) {n, CK_KEY, i, i, 1, false, CMD_READONLY, NULL, 0}
#define RO_KEYS(n, f, l, s) {n, CK_KEYS, f, l, s, false, CMD_READONLY, NULL, 0}
#define RO_NUMKEYS(n, i, d) {n, CK_NUMKEYS, i, 0, 1, d, CMD_READONLY, NULL, 0}
#define RO_LOCAL(n, k) {n, k, 0, 0, 0, false, CMD_READONLY, NULL, 0}
#define BLOCKING(n, kind, f, l) {n, kind, f, l, 1, false, CMD_BLOCKING, NULL, 0}
#define LOCAL(n, k) {n, k, 0, 0, 0, false, 0, NULL, 0}
#define ADMIN(n, k) {n, k, 0, 0, 0, false, CMD_ADMIN, NULL, 0}
#define REFUSE(n, why) {n, CK_REFUSED, 0, 0, 0, false, 0, why, 0}

/* Reasons, each said by several commands. */
#define ONE_SERVER "it is about one server's state: ask the servers directly"
#define NOT_CLUSTER "the proxy's pool is not a Redis Cluster"
#define REPLICATION "replication and persistence are managed on each server"
#define TRACKING "client-side caching would track the proxy's connections, not the client"
/* CLUSTER's: the proxy looks like a cluster of itself (or of its fleet). */
#define SLOT_KEYS "the pool's servers are not a Redis Cluster and keep no keys by slot"
#define SLOTS_OWN "the proxy only looks like a Redis Cluster: its slots are its own, or split " \
                  "among its fleet, not set by CLUSTER commands"
#define NO_REPLICAS "the proxy describes its fleet's proxies, which have no replicas nor " \
                    "failure reports"
#define USERS "the proxy's users are its configuration (the pool's users:, changed by a " \
              "reload); the servers' ACLs are theirs"

/* Sorted at start-up (command_init), so the order here is free. */
static cmd_spec commands[] = {
    /* strings and generic */
    KEY("append"), RO_KEY("bitcount"), KEY("bitfield"), RO_KEY("bitfield_ro"), RO_KEY("bitpos"),
    KEY("decr"), KEY("decrby"), RO_KEY("dump"), KEY("expire"), KEY("expireat"),
    RO_KEY("expiretime"), RO_KEY("get"), RO_KEY("getbit"), KEY("getdel"), KEY("getex"),
    RO_KEY("getrange"), KEY("getset"), KEY("incr"), KEY("incrby"), KEY("incrbyfloat"),
    KEY("persist"), KEY("pexpire"), KEY("pexpireat"), RO_KEY("pexpiretime"), KEY("psetex"),
    RO_KEY("pttl"), KEY("restore"), KEY("set"), KEY("setbit"), KEY("setex"), KEY("setnx"),
    KEY("setrange"), {"sort", CK_KEY, 1, 1, 1, false, CMD_STORE_OPTION, NULL, 0}, RO_KEY("sort_ro"),
    RO_KEY("strlen"), RO_KEY("substr"), RO_KEY("ttl"), RO_KEY("type"), KEY("move"),
    KEY_AT("pfdebug", 2),
    /* hashes */
    KEY("hdel"), RO_KEY("hexists"), RO_KEY("hget"), RO_KEY("hgetall"), KEY("hincrby"),
    KEY("hincrbyfloat"), RO_KEY("hkeys"), RO_KEY("hlen"), RO_KEY("hmget"), KEY("hmset"),
    RO_KEY("hrandfield"), RO_KEY("hscan"), KEY("hset"), KEY("hsetnx"), RO_KEY("hstrlen"),
    RO_KEY("hvals"),
    /* lists */
    RO_KEY("lindex"), KEY("linsert"), RO_KEY("llen"), KEY("lpop"), RO_KEY("lpos"), KEY("lpush"),
    KEY("lpushx"), RO_KEY("lrange"), KEY("lrem"), KEY("lset"), KEY("ltrim"), KEY("rpop"),
    KEY("rpush"), KEY("rpushx"),
    /* sets */
    KEY("sadd"), RO_KEY("scard"), RO_KEY("sismember"), RO_KEY("smembers"), RO_KEY("smismember"),
    KEY("spop"), RO_KEY("srandmember"), KEY("srem"), RO_KEY("sscan"),
    /* sorted sets */
    KEY("zadd"), RO_KEY("zcard"), RO_KEY("zcount"), KEY("zincrby"), RO_KEY("zlexcount"),
    RO_KEY("zmscore"), KEY("zpopmax"), KEY("zpopmin"), RO_KEY("zrandmember"), RO_KEY("zrange"),
    RO_KEY("zrangebylex"), RO_KEY("zrangebyscore"), RO_KEY("zrank"), KEY("zrem"),
    KEY("zremrangebylex"), KEY("zremrangebyrank"), KEY("zremrangebyscore"), RO_KEY("zrevrange"),
    RO_KEY("zrevrangebylex"), RO_KEY("zrevrangebyscore"), RO_KEY("zrevrank"), RO_KEY("zscan"),
    RO_KEY("zscore"),
    /* hyperloglog, geo, streams */
    KEY("pfadd"), KEY("geoadd"), RO_KEY("geodist"), RO_KEY("geohash"), RO_KEY("geopos"),
    {"georadius", CK_KEY, 1, 6, 1, false, CMD_GEO_STORE, NULL, 0}, RO_KEY("georadius_ro"),
    {"georadiusbymember", CK_KEY, 1, 5, 1, false, CMD_GEO_STORE, NULL, 0},
    RO_KEY("georadiusbymember_ro"), RO_KEY("geosearch"), KEY("xack"), KEY("xadd"),
    KEY("xautoclaim"), KEY("xclaim"), KEY("xdel"), RO_KEY("xlen"), RO_KEY("xpending"),
    RO_KEY("xrange"), RO_KEY("xrevrange"), KEY("xsetid"), KEY("xtrim"),
    {"xread", CK_XREAD, 1, 0, 1, false, CMD_READONLY, NULL, 0},
    {"xreadgroup", CK_XREAD, 4, 0, 1, false, 0, NULL, 0}, LOCAL("xinfo", CK_SUBCMD),
    RO_KEY_AT("xinfo|consumers", 2), RO_KEY_AT("xinfo|groups", 2), RO_KEY_AT("xinfo|stream", 2),
    LOCAL("xinfo|help", CK_ONE), LOCAL("xgroup", CK_SUBCMD), KEY_AT("xgroup|create", 2),
    KEY_AT("xgroup|createconsumer", 2), KEY_AT("xgroup|delconsumer", 2),
    KEY_AT("xgroup|destroy", 2), KEY_AT("xgroup|setid", 2), LOCAL("xgroup|help", CK_ONE),
    /* several keys, one server */
    KEYS("rpoplpush", 1, 2, 1), KEYS("lmove", 1, 2, 1), KEYS("smove", 1, 2, 1),
    KEYS("rename", 1, 2, 1), KEYS("renamenx", 1, 2, 1), KEYS("copy", 1, 2, 1),
    KEYS("geosearchstore", 1, 2, 1), KEYS("zrangestore", 1, 2, 1), RO_KEYS("lcs", 1, 2, 1),
    RO_KEYS("sdiff", 1, -1, 1), KEYS("sdiffstore", 1, -1, 1), RO_KEYS("sinter", 1, -1, 1),
    KEYS("sinterstore", 1, -1, 1), RO_KEYS("sunion", 1, -1, 1), KEYS("sunionstore", 1, -1, 1),
    RO_KEYS("pfcount", 1, -1, 1), KEYS("pfmerge", 1, -1, 1), KEYS("bitop", 2, -1, 1),
    KEYS("msetnx", 1, -2, 2), {"eval", CK_NUMKEYS, 2, 0, 1, false, CMD_SCRIPT, NULL, 0},
    NUMKEYS("evalsha", 2, false),
    {"eval_ro", CK_NUMKEYS, 2, 0, 1, false, CMD_SCRIPT | CMD_READONLY, NULL, 0},
    RO_NUMKEYS("evalsha_ro", 2, false), NUMKEYS("fcall", 2, false),
    RO_NUMKEYS("fcall_ro", 2, false), RO_NUMKEYS("zunion", 1, false),
    RO_NUMKEYS("zinter", 1, false), RO_NUMKEYS("zdiff", 1, false),
    RO_NUMKEYS("zintercard", 1, false), RO_NUMKEYS("sintercard", 1, false),
    NUMKEYS("lmpop", 1, false), NUMKEYS("zmpop", 1, false), NUMKEYS("zunionstore", 2, true),
    NUMKEYS("zinterstore", 2, true), NUMKEYS("zdiffstore", 2, true),
    /* blocking: on the client's own server connection */
    BLOCKING("blpop", CK_KEYS, 1, -2), BLOCKING("brpop", CK_KEYS, 1, -2),
    BLOCKING("bzpopmin", CK_KEYS, 1, -2), BLOCKING("bzpopmax", CK_KEYS, 1, -2),
    BLOCKING("brpoplpush", CK_KEYS, 1, 2), BLOCKING("blmove", CK_KEYS, 1, 2),
    BLOCKING("blmpop", CK_NUMKEYS, 2, 0), BLOCKING("bzmpop", CK_NUMKEYS, 2, 0),
    /* split and merged */
    {"mget", CK_MGET, 1, -1, 1, false, CMD_READONLY, NULL, 0},
    {"del", CK_SUM, 1, -1, 1, false, 0, NULL, 0}, {"unlink", CK_SUM, 1, -1, 1, false, 0, NULL, 0},
    {"exists", CK_SUM, 1, -1, 1, false, CMD_READONLY, NULL, 0},
    {"touch", CK_SUM, 1, -1, 1, false, CMD_READONLY, NULL, 0},
    {"mset", CK_MSET, 1, -1, 2, false, 0, NULL, 0},
    /* every server, or any one */
    RO_LOCAL("dbsize", CK_ALL_SUM), ADMIN("flushall", CK_ALL_OK), ADMIN("flushdb", CK_ALL_OK),
    ADMIN("swapdb", CK_ALL_OK), LOCAL("time", CK_ONE), LOCAL("lastsave", CK_ONE),
    {"keys", CK_ALL_CONCAT, 0, 0, 0, false, CMD_ADMIN | CMD_READONLY, NULL, 0},
    RO_LOCAL("scan", CK_SCAN), RO_LOCAL("randomkey", CK_RANDOM), LOCAL("info", CK_ALL_INFO),
    LOCAL("wait", CK_WAIT), RO_LOCAL("lolwut", CK_ONE), LOCAL("role", CK_ONE),
    LOCAL("pfselftest", CK_ONE), LOCAL("command", CK_ONE), LOCAL("command|count", CK_ONE),
    LOCAL("command|docs", CK_ONE), LOCAL("command|getkeys", CK_ONE),
    LOCAL("command|getkeysandflags", CK_ONE), LOCAL("command|help", CK_ONE),
    LOCAL("command|info", CK_ONE), LOCAL("command|list", CK_ONE), LOCAL("config", CK_SUBCMD),
    LOCAL("config|get", CK_ONE), ADMIN("config|set", CK_ALL_OK),
    LOCAL("config|resetstat", CK_ALL_OK), ADMIN("config|rewrite", CK_ALL_OK),
    LOCAL("config|help", CK_ONE), LOCAL("script", CK_SUBCMD), LOCAL("script|load", CK_ALL_SAME),
    LOCAL("script|exists", CK_ALL_AND), LOCAL("script|flush", CK_ALL_OK),
    LOCAL("script|kill", CK_ALL_ANY), LOCAL("script|help", CK_ONE),
    REFUSE("script|debug", "the Lua debugger runs on one server's connection"),
    LOCAL("function", CK_SUBCMD), LOCAL("function|load", CK_ALL_SAME),
    LOCAL("function|delete", CK_ALL_OK), LOCAL("function|flush", CK_ALL_OK),
    LOCAL("function|restore", CK_ALL_OK), LOCAL("function|list", CK_ONE),
    LOCAL("function|dump", CK_ONE), LOCAL("function|stats", CK_ONE),
    LOCAL("function|kill", CK_ALL_ANY), LOCAL("function|help", CK_ONE), LOCAL("memory", CK_SUBCMD),
    RO_KEY_AT("memory|usage", 2), LOCAL("memory|purge", CK_ALL_OK), LOCAL("memory|help", CK_ONE),
    REFUSE("memory|doctor", ONE_SERVER), REFUSE("memory|malloc-stats", ONE_SERVER),
    REFUSE("memory|stats", ONE_SERVER), LOCAL("object", CK_SUBCMD), RO_KEY_AT("object|encoding", 2),
    RO_KEY_AT("object|freq", 2), RO_KEY_AT("object|idletime", 2), RO_KEY_AT("object|refcount", 2),
    LOCAL("object|help", CK_ONE),
    {"debug", CK_SUBCMD, 0, 0, 0, false, 0,
     "DEBUG acts on one server (DEBUG OBJECT key is served)", 0},
    KEY_AT("debug|object", 2), LOCAL("slowlog", CK_SUBCMD), LOCAL("slowlog|get", CK_ALL_NEWEST),
    LOCAL("slowlog|len", CK_ALL_SUM), LOCAL("slowlog|reset", CK_ALL_OK),
    LOCAL("slowlog|help", CK_ONE), LOCAL("latency", CK_SUBCMD), LOCAL("latency|reset", CK_ALL_SUM),
    LOCAL("latency|help", CK_ONE), REFUSE("latency|doctor", ONE_SERVER),
    REFUSE("latency|graph", ONE_SERVER), REFUSE("latency|histogram", ONE_SERVER),
    REFUSE("latency|history", ONE_SERVER), REFUSE("latency|latest", ONE_SERVER),
    /* transactions */
    LOCAL("multi", CK_MULTI), LOCAL("exec", CK_EXEC), LOCAL("discard", CK_DISCARD),
    {"watch", CK_WATCH, 1, -1, 1, false, 0, NULL, 0}, LOCAL("unwatch", CK_UNWATCH),
    /* pub/sub */
    KEY("publish"), KEY("spublish"), {"subscribe", CK_SUBSCRIBE, 1, -1, 1, false, 0, NULL, 0},
    {"ssubscribe", CK_SUBSCRIBE, 1, -1, 1, false, 0, NULL, 0}, LOCAL("psubscribe", CK_PSUBSCRIBE),
    LOCAL("unsubscribe", CK_UNSUBSCRIBE), LOCAL("sunsubscribe", CK_UNSUBSCRIBE),
    LOCAL("punsubscribe", CK_PUNSUBSCRIBE), LOCAL("pubsub", CK_SUBCMD),
    LOCAL("pubsub|channels", CK_ALL_CONCAT), LOCAL("pubsub|shardchannels", CK_ALL_CONCAT),
    LOCAL("pubsub|numsub", CK_ALL_PAIRS), LOCAL("pubsub|shardnumsub", CK_ALL_PAIRS),
    LOCAL("pubsub|numpat", CK_ONE), LOCAL("pubsub|help", CK_ONE),
    /* the connection */
    LOCAL("ping", CK_PING), LOCAL("echo", CK_ECHO), LOCAL("quit", CK_QUIT),
    LOCAL("select", CK_SELECT), LOCAL("hello", CK_HELLO), LOCAL("auth", CK_AUTH),
    LOCAL("reset", CK_RESET), LOCAL("client", CK_SUBCMD),
    LOCAL("client|getname", CK_CLIENT), LOCAL("client|setname", CK_CLIENT),
    LOCAL("client|id", CK_CLIENT), LOCAL("client|info", CK_CLIENT), LOCAL("client|list", CK_CLIENT),
    LOCAL("client|no-evict", CK_CLIENT), LOCAL("client|reply", CK_CLIENT),
    LOCAL("client|help", CK_CLIENT), REFUSE("client|caching", TRACKING),
    REFUSE("client|tracking", TRACKING), REFUSE("client|trackinginfo", TRACKING),
    REFUSE("client|getredir", TRACKING),
    REFUSE("client|kill",
           "it would kill the proxy's server connections, which every client shares"),
    REFUSE("client|pause", "it would pause every client of the servers, not one"),
    REFUSE("client|unpause", "CLIENT PAUSE is refused"),
    REFUSE("client|unblock", "client ids are the servers', not the proxy's"),
    /* redis 7.2's: a flag of one server connection, and the proxy's are
     * shared (7.0 servers do not know it either) */
    REFUSE("client|no-touch",
           "it is a flag of a server connection, which clients share through the proxy"),
    /* cluster clients: the proxy describes itself as a Redis Cluster
     * (clustercmd.c); what would change a cluster is refused */
    LOCAL("cluster", CK_SUBCMD), LOCAL("cluster|slots", CK_CLUSTER),
    LOCAL("cluster|shards", CK_CLUSTER), LOCAL("cluster|nodes", CK_CLUSTER),
    LOCAL("cluster|info", CK_CLUSTER), LOCAL("cluster|myid", CK_CLUSTER),
    LOCAL("cluster|keyslot", CK_CLUSTER), LOCAL("cluster|links", CK_CLUSTER),
    LOCAL("cluster|help", CK_CLUSTER), LOCAL("readonly", CK_CLUSTER),
    LOCAL("readwrite", CK_CLUSTER), LOCAL("asking", CK_CLUSTER),
    REFUSE("cluster|countkeysinslot", SLOT_KEYS), REFUSE("cluster|getkeysinslot", SLOT_KEYS),
    REFUSE("cluster|addslots", SLOTS_OWN), REFUSE("cluster|addslotsrange", SLOTS_OWN),
    REFUSE("cluster|delslots", SLOTS_OWN), REFUSE("cluster|delslotsrange", SLOTS_OWN),
    REFUSE("cluster|flushslots", SLOTS_OWN), REFUSE("cluster|setslot", SLOTS_OWN),
    REFUSE("cluster|meet", SLOTS_OWN), REFUSE("cluster|forget", SLOTS_OWN),
    REFUSE("cluster|replicate", SLOTS_OWN), REFUSE("cluster|failover", SLOTS_OWN),
    REFUSE("cluster|reset", SLOTS_OWN), REFUSE("cluster|saveconfig", SLOTS_OWN),
    REFUSE("cluster|bumpepoch", SLOTS_OWN), REFUSE("cluster|set-config-epoch", SLOTS_OWN),
    REFUSE("cluster|replicas", NO_REPLICAS), REFUSE("cluster|slaves", NO_REPLICAS),
    REFUSE("cluster|count-failure-reports", NO_REPLICAS),
    /* the servers themselves */
    REFUSE("monitor", "it would watch one server's commands from every client"),
    REFUSE("migrate", "where a key lives is the ring's to decide"),
    REFUSE("restore-asking", NOT_CLUSTER), REFUSE("bgrewriteaof", REPLICATION),
    REFUSE("bgsave", REPLICATION), REFUSE("save", REPLICATION), REFUSE("failover", REPLICATION),
    REFUSE("replicaof", REPLICATION), REFUSE("slaveof", REPLICATION), REFUSE("psync", REPLICATION),
    REFUSE("sync", REPLICATION), REFUSE("replconf", REPLICATION),
    REFUSE("shutdown", "it would stop one server of the pool"),
    REFUSE("module", "modules are loaded on each server"),
    /* the proxy's users (the pool's users:, session.c): who the client is,
     * and the categories; the rest would change or show the users, which
     * are the configuration's (changed by a reload) */
    LOCAL("acl", CK_SUBCMD), LOCAL("acl|whoami", CK_ACL), LOCAL("acl|cat", CK_ACL),
    REFUSE("acl|setuser", USERS), REFUSE("acl|deluser", USERS), REFUSE("acl|getuser", USERS),
    REFUSE("acl|list", USERS), REFUSE("acl|users", USERS), REFUSE("acl|load", USERS),
    REFUSE("acl|save", USERS), REFUSE("acl|log", USERS), REFUSE("acl|dryrun", USERS),
    REFUSE("acl|genpass", USERS), REFUSE("acl|help", USERS),
    /* the proxy's own (admin.c): @admin, each subcommand granted apart */
    LOCAL("proxy", CK_SUBCMD), LOCAL("proxy|locate", CK_PROXY), LOCAL("proxy|ring", CK_PROXY),
    LOCAL("proxy|reload", CK_PROXY), LOCAL("proxy|help", CK_PROXY),
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])
#define NAME_MAX_LEN 32

static int spec_order(const void *a, const void *b) {
    return strcmp(((const cmd_spec *)a)->name, ((const cmd_spec *)b)->name);
}

/* Command names hashed (case folded) into an open-addressing table, built
 * once at start-up: one pass over the name finds its spec. */
#define COMMAND_SLOTS 1024u /* a power of two, well above COMMAND_COUNT */
static uint16_t command_slot[COMMAND_SLOTS]; /* index + 1; 0: empty */
static uint8_t name_len[COMMAND_COUNT];     /* strlen of each name */
static const cmd_spec *command_spec;         /* COMMAND: a command with subcommands */

static inline char fold(char ch) { return (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch); }

static uint32_t name_hash(const char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)fold(p[i])) * 16777619u;
    return h;
}

/* Each command's ACL categories, by name, sorted (tools/acl_categories.py). */
typedef struct acl_entry {
    const char *name;
    uint32_t acl;
} acl_entry;
static const acl_entry acl_table[] = {
#define CMD_ACL(n, cats) {n, cats},
#include "command_acl.h"
#undef CMD_ACL
};
#define ACL_TABLE_COUNT (sizeof acl_table / sizeof acl_table[0])

static int acl_order(const void *key, const void *entry) {
    return strcmp(key, *(const char *const *)entry);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init(void) {
    qsort(commands, COMMAND_COUNT, sizeof commands[0], spec_order);
    _Static_assert(COMMAND_COUNT < COMMAND_SLOTS / 2, "command table too full");
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        size_t len = strlen(commands[i].name);
        uint32_t at = name_hash(commands[i].name, len) & (COMMAND_SLOTS - 1);
        while (command_slot[at]) at = (at + 1) & (COMMAND_SLOTS - 1);
        command_slot[at] = (uint16_t)(i + 1);
        name_len[i] = (uint8_t)len;
        if (strcmp(commands[i].name, "command") == 0) command_spec = &commands[i];
        const acl_entry *acl = bsearch(commands[i].name, acl_table, ACL_TABLE_COUNT,
                                       sizeof acl_table[0], acl_order);
        /* A command missing there has no category (test_command_table). */
        commands[i].acl = acl ? acl->acl : 0;
    }
}

void command_init(void) { pthread_once(&init_once, init); }

const char *command_acl_name(unsigned i) {
    static const char *const names[] = {
#define CMD_ACL_NAME(name, text) text,
        CMD_ACL_CATEGORIES(CMD_ACL_NAME)
#undef CMD_ACL_NAME
    };
    return i < CMD_ACL_CATEGORY_COUNT ? names[i] : NULL;
}

uint32_t command_acl_find(const char *name, size_t len) {
    for (unsigned i = 0; i < CMD_ACL_CATEGORY_COUNT; i++) {
        const char *n = command_acl_name(i);
        if (strlen(n) != len) continue;
        size_t j = 0;
        while (j < len && fold(name[j]) == n[j]) j++;
        if (j == len) return 1u << i;
    }
    return 0;
}

size_t command_count(void) { return COMMAND_COUNT; }

size_t command_index(const cmd_spec *spec) { return (size_t)(spec - commands); }

const char *command_name(size_t i) { return i < COMMAND_COUNT ? commands[i].name : NULL; }

const cmd_spec *command_at(size_t i) { return i < COMMAND_COUNT ? &commands[i] : NULL; }

const char *command_kind_doc(cmd_kind kind) {
    static const char *const docs[] = {
#define CMD_KIND_DOC(k, doc) doc,
        CMD_KINDS(CMD_KIND_DOC)
#undef CMD_KIND_DOC
    };
    return (size_t)kind < sizeof docs / sizeof docs[0] ? docs[kind] : "";
}

/* The slot of a name given as up to two parts ("config", "get" for
 * "config|get"), or NULL. */
static const cmd_spec *find_parts(const resp_arg *a, const resp_arg *b) {
    size_t len = a->len + (b ? 1 + b->len : 0);
    if (a->len == 0 || len > NAME_MAX_LEN) return NULL;
    char name[NAME_MAX_LEN];
    uint32_t h = 2166136261u; /* name_hash, in the pass that folds */
    for (size_t i = 0; i < len; i++) {
        char ch = i < a->len ? a->ptr[i] : i == a->len ? '|' : b->ptr[i - a->len - 1];
        name[i] = fold(ch);
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    }
    uint32_t at = h & (COMMAND_SLOTS - 1);
    for (; command_slot[at]; at = (at + 1) & (COMMAND_SLOTS - 1)) {
        size_t i = command_slot[at] - 1u;
        if (name_len[i] == len && memcmp(commands[i].name, name, len) == 0) return &commands[i];
    }
    return NULL;
}

const cmd_spec *command_find(const resp_arg *name) { return find_parts(name, NULL); }

const cmd_spec *command_find_name(const char *name, size_t len) {
    resp_arg whole = {name, len};
    return find_parts(&whole, NULL);
}

const cmd_spec *command_sub(const cmd_spec *spec, const resp_msg *m) {
    if (spec->kind == CK_SUBCMD)
        return m->argc >= 2 ? find_parts(&m->argv[0], &m->argv[1]) : NULL;
    /* COMMAND alone is a command; COMMAND INFO a subcommand. */
    if (m->argc >= 2 && spec == command_spec) {
        const cmd_spec *sub = find_parts(&m->argv[0], &m->argv[1]);
        if (sub) return sub;
    }
    return spec;
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

/* GEORADIUS ... [STORE dst] [STOREDIST dst]: the options start at `at`;
 * none of the others takes a value that could read as STORE. */
static cmd_keys_err geo_store(const resp_msg *m, size_t at, cmd_keys *out) {
    if (m->argc < at) return CMD_KEYS_ARITY;
    for (size_t i = at; i < m->argc; i++) {
        const resp_arg *a = &m->argv[i];
        if (!resp_arg_is(a, "store") && !resp_arg_is(a, "storedist")) continue;
        if (i + 1 >= m->argc) return CMD_KEYS_SYNTAX;
        out->dest = &m->argv[++i];
    }
    return CMD_KEYS_OK;
}

/* XREAD [COUNT n] [BLOCK ms] STREAMS key... id... (XREADGROUP: GROUP g c
 * first, then NOACK too): the keys are the first half of what follows
 * STREAMS. Blocking only with BLOCK. */
static cmd_keys_err xread_keys(const cmd_spec *spec, const resp_msg *m, cmd_keys *out) {
    for (size_t i = (size_t)spec->first; i < m->argc; i++) {
        const resp_arg *a = &m->argv[i];
        if (resp_arg_is(a, "block")) {
            out->is_blocking = true;
            i++;
        } else if (resp_arg_is(a, "count")) {
            i++;
        } else if (resp_arg_is(a, "streams")) {
            size_t rest = m->argc - i - 1;
            if (rest == 0 || rest % 2) return CMD_KEYS_SYNTAX;
            out->first = i + 1;
            out->count = rest / 2;
            return CMD_KEYS_OK;
        }
    }
    return CMD_KEYS_SYNTAX;
}

cmd_keys_err command_keys(const cmd_spec *spec, const resp_msg *m, cmd_keys *out) {
    *out = (cmd_keys){.step = 1};
    long long numkeys;
    switch (spec->kind) {
    case CK_KEY:
        if (m->argc <= (size_t)spec->first) return CMD_KEYS_ARITY;
        out->first = (size_t)spec->first;
        out->count = 1;
        if (spec->flags & CMD_GEO_STORE) return geo_store(m, (size_t)spec->last, out);
        return spec->flags & CMD_STORE_OPTION ? sort_store(m, out) : CMD_KEYS_OK;
    case CK_XREAD:
        return xread_keys(spec, m, out);
    case CK_KEYS:
    case CK_WATCH:
        out->count = keys_span(spec, m);
        if (out->count == 0) return CMD_KEYS_ARITY;
        out->first = (size_t)spec->first;
        out->step = (size_t)spec->step;
        out->is_blocking = spec->flags & CMD_BLOCKING;
        return CMD_KEYS_OK;
    case CK_NUMKEYS:
        if (m->argc <= (size_t)spec->first) return CMD_KEYS_ARITY;
        if (!resp_arg_int(&m->argv[spec->first], &numkeys) || numkeys < 0)
            return CMD_KEYS_NUMKEYS;
        if ((unsigned long long)numkeys > m->argc - (size_t)spec->first - 1)
            return CMD_KEYS_NUMKEYS_BIG;
        if (numkeys == 0 && !spec->has_dest) return CMD_KEYS_NONE;
        out->is_blocking = spec->flags & CMD_BLOCKING;
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
    default:
        return CMD_KEYS_OK;
    }
    return CMD_KEYS_OK;
}

/* ---- the table as docs/proxy.md shows it, and as the tests read it ---- */

static const char *kind_name(cmd_kind kind) {
    static const char *const names[] = {
#define CMD_KIND_NAME(k, doc) #k,
        CMD_KINDS(CMD_KIND_NAME)
#undef CMD_KIND_NAME
    };
    return (size_t)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

static const struct {
    unsigned flag;
    const char *name;
} flag_names[] = {
    {CMD_STORE_OPTION, "store_option"}, {CMD_SCRIPT, "script"}, {CMD_BLOCKING, "blocking"},
    {CMD_ADMIN, "admin"},               {CMD_GEO_STORE, "geo_store"},
    {CMD_READONLY, "readonly"},
};

/* Flags by name; a flag added to command.h but not here shows as a number,
 * which the test does not know, so it cannot go unnoticed. */
static void put_flags(FILE *out, const cmd_spec *spec) {
    unsigned left = spec->flags;
    const char *sep = "";
    for (size_t i = 0; i < sizeof flag_names / sizeof flag_names[0]; i++)
        if (left & flag_names[i].flag) {
            fprintf(out, "%s%s", sep, flag_names[i].name);
            left &= ~flag_names[i].flag;
            sep = ",";
        }
    if (spec->has_dest) {
        fprintf(out, "%sdest", sep);
        sep = ",";
    }
    if (left) {
        fprintf(out, "%s0x%x", sep, left);
        sep = ",";
    }
    if (!*sep) fputc('-', out);
}

/* A markdown cell's text: a '|' would end the cell. */
static void put_cell(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', out);
        fputc(*s, out);
    }
}

/* An argument position as the table keeps it: negative counts from the end. */
static void put_position(FILE *out, int at) {
    if (at >= 0)
        fprintf(out, "%d", at);
    else if (at == -1)
        fputs("last", out);
    else
        fprintf(out, "last-%d", -at - 1);
}

static void put_keys(FILE *out, const cmd_spec *spec) {
    switch (spec->kind) {
    case CK_KEY:
        /* `last` is where GEORADIUS's options start, not a second key. */
        fprintf(out, "%d", spec->first);
        if (spec->flags & CMD_STORE_OPTION) fputs(", and STORE's value", out);
        if (spec->flags & CMD_GEO_STORE)
            fprintf(out, ", and the values of STORE and STOREDIST (options from %d)",
                    spec->last);
        return;
    case CK_NUMKEYS:
        if (spec->has_dest) fputs("1 (the destination), then ", out);
        fprintf(out, "numkeys at %d, the keys after it", spec->first);
        return;
    case CK_XREAD:
        fputs("the first half of the arguments after STREAMS", out);
        return;
    case CK_SUBSCRIBE: fputs("channels ", out); break;
    default: break;
    }
    if (spec->step <= 0) return;
    put_position(out, spec->first);
    if (spec->last != spec->first) {
        fputs("..", out);
        put_position(out, spec->last);
    }
    if (spec->step > 1) fprintf(out, " step %d", spec->step);
}

static void put_routing(FILE *out, const cmd_spec *spec) {
    if (spec->kind == CK_REFUSED) {
        fputs("refused: ", out);
        put_cell(out, spec->why);
        return;
    }
    put_cell(out, command_kind_doc(spec->kind));
    if (spec->kind == CK_SUBCMD && spec->why) {
        fputs("; any other subcommand is refused: ", out);
        put_cell(out, spec->why);
    }
    if (spec->flags & CMD_BLOCKING) fputs("; on the client's own server connection", out);
    if (spec->flags & CMD_SCRIPT)
        fputs("; refused when the script would act on a whole server", out);
    if (spec->flags & CMD_ADMIN) fputs("; refused with `refuse_admin_commands`", out);
}

static void put_spec(FILE *out, const cmd_spec *spec, cmd_table_format format) {
    if (format == CMD_TABLE_ACL) {
        fputs(spec->name, out);
        const char *sep = "\t";
        for (unsigned i = 0; i < CMD_ACL_CATEGORY_COUNT; i++)
            if (spec->acl & (1u << i)) {
                fprintf(out, "%s@%s", sep, command_acl_name(i));
                sep = " ";
            }
        fputs(*sep == '\t' ? "\t-\n" : "\n", out);
        return;
    }
    if (format == CMD_TABLE_TSV) {
        fprintf(out, "%s\t%s\t%d\t%d\t%d\t", spec->name, kind_name(spec->kind), spec->first,
                spec->last, spec->step);
        put_flags(out, spec);
        fprintf(out, "\t%s\n", spec->why ? spec->why : "-");
        return;
    }
    fputs("| `", out);
    for (const char *p = spec->name; *p; p++)
        fputc(*p == '|' ? ' ' : *p >= 'a' && *p <= 'z' ? *p - 32 : *p, out);
    fputs("` | ", out);
    put_routing(out, spec);
    fputs(" | ", out);
    put_keys(out, spec);
    fputs(" |\n", out);
}

void command_table_print(FILE *out, cmd_table_format format) {
    if (format == CMD_TABLE_MARKDOWN)
        fputs("| command | routed to | keys (argument positions) |\n|---|---|---|\n", out);
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        const char *name = commands[i].name;
        size_t len = strlen(name);
        if (strchr(name, '|')) continue;
        put_spec(out, &commands[i], format);
        /* Its subcommands, wherever the sort put them. */
        for (size_t j = 0; j < COMMAND_COUNT; j++)
            if (strncmp(commands[j].name, name, len) == 0 && commands[j].name[len] == '|')
                put_spec(out, &commands[j], format);
    }
}
