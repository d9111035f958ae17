/*
 * command.h - the Redis commands the proxy knows: for each, what kind of
 * routing it needs and where its keys are.
 *
 * One table (command.c) is the only list of commands; routing, warm-up and
 * the per-command statistics all read it. It depends on nothing but the
 * parsed command (resp.h).
 */
#ifndef PROXY_COMMAND_H
#define PROXY_COMMAND_H

#include "resp.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum cmd_kind {
    CK_KEY,     /* one key, at argv[first] */
    CK_KEYS,    /* keys argv[first..last] every step; one server needed */
    CK_NUMKEYS, /* argv[first] keys follow it (and argv[1] if has_dest); one server */
    CK_MGET,    /* split by server, elements merged back in key order */
    CK_SUM,     /* split by server, integers added */
    CK_MSET,    /* split by server, key-value pairs */
    CK_ALL_SUM, /* to every server, integers added (DBSIZE) */
    CK_ALL_OK,  /* to every server, +OK when all are (FLUSHALL, FLUSHDB) */
    CK_ONE,     /* no key: to one live server (TIME, LASTSAVE) */
    CK_SCRIPT,  /* SCRIPT LOAD (every server, one sha) and FLUSH (every server) */
    CK_ALL_CONCAT, /* to every server, arrays joined (KEYS) */
    CK_SCAN,    /* one server at a time, the cursor says which */
    CK_PING,    /* the rest are answered by the proxy */
    CK_ECHO,
    CK_QUIT,
    CK_SELECT,
    CK_HELLO,
    CK_AUTH,
    CK_PROXY,
} cmd_kind;

/* cmd_spec.flags */
#define CMD_STORE_OPTION 1u /* SORT: "STORE dst" among the options is a key */
#define CMD_SCRIPT 2u       /* EVAL: argv[1] is a Lua script */

typedef struct cmd_spec {
    const char *name; /* lowercase */
    cmd_kind kind;
    int first;
    int last; /* negative: from the end, -1 is the last argument */
    int step;
    bool has_dest;
    unsigned flags;
} cmd_spec;

/* Where a command's keys are: argv[first + i * step] for i < count, and
 * `dest` (NULL when none) which must live with them. */
typedef struct cmd_keys {
    size_t first, count, step;
    const resp_arg *dest;
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

/* Builds the lookup table; call once before any other function here. */
void command_init(void);
/* The spec of a command name (any case), or NULL. O(name length). */
const cmd_spec *command_find(const resp_arg *name);
/* The table's size, and the i-th spec's index and name (stable for the
 * process's life: per-command statistics are arrays indexed by it). */
size_t command_count(void);
size_t command_index(const cmd_spec *spec);
const char *command_name(size_t i);
/* Where m's keys are. Local commands (PING, AUTH...) have none (count 0).
 * Returns CMD_KEYS_OK or why m does not fit spec. */
cmd_keys_err command_keys(const cmd_spec *spec, const resp_msg *m, cmd_keys *out);

#endif
