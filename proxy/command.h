/*
 * command.h - the Redis commands the proxy knows: for each, what kind of
 * routing it needs and where its keys are.
 *
 * One table (command.c) is the only list of commands: every command and
 * subcommand redis-server 7.0 lists in COMMAND is in it (a test checks),
 * routed or refused with its reason. Routing, warm-up, the per-command
 * statistics, the users' rules (acl.c: each command's ACL categories, from
 * command_acl.h) and the command list in docs/proxy.md (chash-proxy
 * --commands) all read it. It depends on nothing but the parsed command
 * (resp.h).
 */
#ifndef PROXY_COMMAND_H
#define PROXY_COMMAND_H

#include "resp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* How a command is routed: the kind, and what docs/proxy.md says of it. */
#define CMD_KINDS(X)                                                                          \
    X(CK_KEY, "one key: its server")                                                          \
    X(CK_KEYS, "several keys: their server; refused when they live on different servers")    \
    X(CK_NUMKEYS, "keys counted by numkeys: their server; refused when on different servers") \
    X(CK_XREAD, "the keys after STREAMS: their server; refused when on different servers; "  \
                "with BLOCK, on the client's own server connection")                         \
    X(CK_MGET, "split by server, the values put back in key order")                           \
    X(CK_SUM, "split by server, the integers added")                                          \
    X(CK_MSET, "split by server, OK once every server said OK")                               \
    X(CK_ALL_SUM, "every server, the integers added")                                         \
    X(CK_ALL_OK, "every server, OK only when every server said OK")                           \
    X(CK_ALL_SAME, "every server, the one reply they agreed on (else an error naming the "    \
                   "server that did not)")                                                    \
    X(CK_ALL_AND, "every server, 1 for an element only where every server said 1")            \
    X(CK_ALL_ANY, "every server, OK when one of them did it")                                 \
    X(CK_ALL_CONCAT, "every server, the arrays joined")                                       \
    X(CK_ALL_NEWEST, "every server, their entries merged newest first, as many as asked")     \
    X(CK_ALL_PAIRS, "every server, the counts of each name added")                            \
    X(CK_ALL_INFO, "every server: the proxy's sections, then the servers' with counters "     \
                   "summed")                                                                  \
    X(CK_RANDOM, "every server, one of the keys they returned")                               \
    X(CK_ONE, "the first live server (the same answer from any)")                             \
    X(CK_SCAN, "one server at a time; the cursor names the server")                           \
    X(CK_WAIT, "every server the client wrote to, the least count")                           \
    X(CK_MULTI, "the proxy: the transaction runs on its keys' server on a held connection")  \
    X(CK_EXEC, "the transaction's held connection")                                           \
    X(CK_DISCARD, "the transaction's held connection")                                        \
    X(CK_WATCH, "its keys' server, on the connection the transaction will use")               \
    X(CK_UNWATCH, "the transaction's held connection")                                        \
    X(CK_SUBSCRIBE, "each channel's server, on the subscriber's own connection")              \
    X(CK_PSUBSCRIBE, "every server, on the subscriber's own connections")                     \
    X(CK_UNSUBSCRIBE, "the servers of the channels, on the subscriber's own connections")     \
    X(CK_PUNSUBSCRIBE, "every server, on the subscriber's own connections")                   \
    X(CK_PING, "the proxy")                                                                   \
    X(CK_ECHO, "the proxy")                                                                   \
    X(CK_QUIT, "the proxy")                                                                   \
    X(CK_SELECT, "the proxy: the client's database, used on every server")                    \
    X(CK_HELLO, "the proxy (RESP2; HELLO 3 answers NOPROTO)")                                 \
    X(CK_AUTH, "the proxy (the pool's `users:`, or its redis_auth)")                          \
    X(CK_ACL, "the proxy: the client's user (WHOAMI), the ACL categories (CAT)")              \
    X(CK_RESET, "the proxy: the connection's state back to a new one")                        \
    X(CK_CLIENT, "the proxy, about the client's connection to it")                            \
    X(CK_CLUSTER, "the proxy, as a Redis Cluster of itself (or of its fleet's proxies)")      \
    X(CK_PROXY, "the proxy's own command")                                                    \
    X(CK_SUBCMD, "by subcommand")                                                             \
    X(CK_REFUSED, "refused")

typedef enum cmd_kind {
#define CMD_KIND_ENUM(k, doc) k,
    CMD_KINDS(CMD_KIND_ENUM)
#undef CMD_KIND_ENUM
} cmd_kind;

/* cmd_spec.flags */
#define CMD_STORE_OPTION 1u /* SORT: "STORE dst" among the options is a key */
#define CMD_SCRIPT 2u       /* EVAL: argv[1] is a Lua script */
#define CMD_BLOCKING 4u     /* may block: runs on the client's own server connection */
#define CMD_ADMIN 8u        /* refused in a pool with refuse_admin_commands */
#define CMD_GEO_STORE 16u   /* GEORADIUS: "STORE dst" / "STOREDIST dst" options */
#define CMD_READONLY 32u    /* reads only (redis-server's readonly flag): a replica may answer */

/* Redis's ACL categories, in its own order (ACL CAT): cmd_spec.acl holds
 * each command's as bits, from redis-server's COMMAND (command_acl.h,
 * generated by tools/acl_categories.py). */
#define CMD_ACL_CATEGORIES(X)                                                                 \
    X(KEYSPACE, "keyspace") X(READ, "read") X(WRITE, "write") X(SET, "set")                  \
    X(SORTEDSET, "sortedset") X(LIST, "list") X(HASH, "hash") X(STRING, "string")            \
    X(BITMAP, "bitmap") X(HYPERLOGLOG, "hyperloglog") X(GEO, "geo") X(STREAM, "stream")      \
    X(PUBSUB, "pubsub") X(ADMIN, "admin") X(FAST, "fast") X(SLOW, "slow")                    \
    X(BLOCKING, "blocking") X(DANGEROUS, "dangerous") X(CONNECTION, "connection")            \
    X(TRANSACTION, "transaction") X(SCRIPTING, "scripting")

enum {
#define CMD_ACL_BIT(name, text) CMD_ACL_BIT_##name,
    CMD_ACL_CATEGORIES(CMD_ACL_BIT)
#undef CMD_ACL_BIT
    CMD_ACL_CATEGORY_COUNT
};
enum {
#define CMD_ACL_MASK(name, text) CMD_ACL_##name = 1u << CMD_ACL_BIT_##name,
    CMD_ACL_CATEGORIES(CMD_ACL_MASK)
#undef CMD_ACL_MASK
};

typedef struct cmd_spec {
    const char *name; /* lowercase; a subcommand is "container|sub" */
    cmd_kind kind;
    int first;
    int last; /* negative: from the end, -1 is the last argument */
    int step;
    bool has_dest;
    unsigned flags;
    const char *why; /* CK_REFUSED: the reason, said to the client */
    uint32_t acl;    /* CMD_ACL_* categories, set by command_init */
} cmd_spec;

/* Where a command's keys are: argv[first + i * step] for i < count, and
 * `dest` (NULL when none) which must live with them. */
typedef struct cmd_keys {
    size_t first, count, step;
    const resp_arg *dest;
    bool is_blocking; /* XREAD: only with BLOCK */
} cmd_keys;

/* Why a command's arguments do not fit its spec (command_keys). */
typedef enum cmd_keys_err {
    CMD_KEYS_OK = 0,
    CMD_KEYS_ARITY,        /* wrong number of arguments */
    CMD_KEYS_NUMKEYS,      /* numkeys is not a non-negative integer */
    CMD_KEYS_NUMKEYS_BIG,  /* numkeys exceeds the arguments */
    CMD_KEYS_NONE,         /* numkeys 0: nothing to route by */
    CMD_KEYS_SYNTAX,       /* an option without its value (SORT ... STORE) */
} cmd_keys_err;

/* Key i of m (i < k->count). */
static inline const resp_arg *command_key(const resp_msg *m, const cmd_keys *k, size_t i) {
    return &m->argv[k->first + i * k->step];
}

/* Builds the lookup table; call before any other function here (once is
 * enough; again, from any thread, it does nothing). */
void command_init(void);
/* The spec of a command name (any case), or NULL. O(name length). */
const cmd_spec *command_find(const resp_arg *name);
/* For a CK_SUBCMD container, the spec of m's subcommand (argv[1]), or NULL
 * when it has none of that name; for any other spec, spec itself. */
const cmd_spec *command_sub(const cmd_spec *spec, const resp_msg *m);
/* The table's size, and the i-th spec's index and name (stable for the
 * process's life: per-command statistics are arrays indexed by it). */
size_t command_count(void);
size_t command_index(const cmd_spec *spec);
const char *command_name(size_t i);
const cmd_spec *command_at(size_t i);
/* The name of ACL category bit i (i < CMD_ACL_CATEGORY_COUNT), "read"...;
 * the bit of a name (any case), or 0 when none is called so. */
const char *command_acl_name(unsigned i);
uint32_t command_acl_find(const char *name, size_t len);
/* The spec of a name as the table spells it ("config|get"), or NULL. */
const cmd_spec *command_find_name(const char *name, size_t len);
/* What docs/proxy.md says of a kind of routing. */
const char *command_kind_doc(cmd_kind kind);
/* Where m's keys are. Commands without keys have none (count 0).
 * Returns CMD_KEYS_OK or why m does not fit spec. */
cmd_keys_err command_keys(const cmd_spec *spec, const resp_msg *m, cmd_keys *out);

/* What command_table_print writes (chash-proxy --commands[=tsv]). */
typedef enum cmd_table_format {
    CMD_TABLE_MARKDOWN, /* docs/proxy.md's command list */
    /* One line a spec: name, kind, first, last, step, flags (comma-separated,
     * or "-"), why (or "-"), tab-separated: what the tests read. */
    CMD_TABLE_TSV,
    /* One line a spec: name, then its ACL categories ("@read @fast"), or
     * "-" when it has none; tab-separated (test_command_table). */
    CMD_TABLE_ACL,
} cmd_table_format;
/* Prints the table: each command (in name order once command_init has run)
 * followed by its subcommands. */
void command_table_print(FILE *out, cmd_table_format format);

#endif
