/*
 * fleetproto.h - what a fleet of chash-proxies and `chash fleet` keep in
 * etcd, and how a change moves every proxy from one epoch to the next
 * (issue 15). The one description of the protocol; fleet.c (the proxy's
 * side) and cli/cmd_fleet.c (the coordinator) both follow it. Pure: no I/O.
 *
 * Keys, under a prefix P (`--etcd-prefix`, e.g. "/chash"; no trailing '/'):
 *
 *   P/pools/NAME    the YAML text of one pool map, the same keys as a pool
 *                   of the configuration file: the committed pools
 *   P/epoch         the committed epoch, decimal ("7"); absent: 0
 *   P/change        a change in progress (JSON, fleet_change), absent when
 *                   none: at most one at a time
 *   P/proxies/ID    one per live proxy, on the proxy's lease (JSON,
 *                   fleet_member): a proxy that dies disappears with its
 *                   lease
 *   P/ready/ID      the proxy's answer to the change in progress, on its
 *                   lease (JSON, fleet_ready)
 *   P/previous      the pools of the epoch before, and when the commit
 *                   happened (JSON, fleet_previous): warm-up for a proxy that
 *                   starts during the window
 *   P/health/POOL/SERVER/ID  proxy ID has SERVER of POOL down, on its
 *                   lease: the server is down for the whole fleet while any
 *                   such key exists (fleet.c)
 *
 * A change from epoch N to N+1 (the coordinator is `chash fleet apply`):
 *
 *   1. prepare  The coordinator creates P/change {epoch N+1, from N, phase
 *               "prepare", pools: the whole new set} if P/change is absent
 *               and P/epoch is still N. Each proxy parses the pools and
 *               builds them (not in use yet), then writes P/ready/ID
 *               {N+1, "prepare", ok} - or ok false and why (a bad pool, pools
 *               added or removed, which need a restart).
 *   2. switch   Once every proxy listed under P/proxies/ has answered ok
 *               (one that disappears meanwhile - its lease expired - is no
 *               longer waited for), the coordinator sets phase "switch". Each
 *               proxy stops taking new commands on the pools that change,
 *               waits for the commands in flight to them, then writes
 *               P/ready/ID {N+1, "switch", ok}: from then on it sends
 *               nothing by epoch N to those pools.
 *   3. commit   Once every live proxy has answered "switch", one txn: if
 *               P/change's mod_revision is the one the coordinator wrote,
 *               put every P/pools/NAME, delete those no longer there, put
 *               P/epoch N+1 and P/previous (epoch N's pools), delete
 *               P/change. Each proxy takes the new pools
 *               (warm-up from the old ones where the pool has `warmup`) and
 *               takes commands again.
 *   abort       Anyone may end a change that has not committed by setting
 *               phase "abort" with a reason (a CAS on P/change's
 *               mod_revision, so exactly one of abort and commit wins) and
 *               then deleting P/change: the coordinator when a proxy said no
 *               or did not answer in time (a rollback: the fleet stays on N),
 *               a proxy that held its pools for longer than its hold limit
 *               without a commit. Proxies drop what they prepared and take
 *               commands again on epoch N. A P/change deleted without P/epoch
 *               moving is an abort too.
 *
 * Why no proxy serves a moved key by epoch N while another serves it by N+1:
 * no proxy takes N+1 before the commit, the commit waits for every live
 * proxy to have stopped serving by N, and a proxy that is not live (its
 * lease expired: frozen, cut off) checks with etcd before it serves again
 * (fleet.c: the permit).
 */
#ifndef PROXY_FLEETPROTO_H
#define PROXY_FLEETPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Key suffixes after the prefix. */
#define FLEET_KEY_POOLS "/pools/"
#define FLEET_KEY_EPOCH "/epoch"
#define FLEET_KEY_CHANGE "/change"
#define FLEET_KEY_PROXIES "/proxies/"
#define FLEET_KEY_READY "/ready/"
#define FLEET_KEY_PREVIOUS "/previous"
#define FLEET_KEY_HEALTH "/health/"

/* The longest pool name, member id, and text field accepted. */
#define FLEET_NAME_MAX 128
#define FLEET_TEXT_MAX 1024

typedef enum fleet_phase { FLEET_PREPARE = 0, FLEET_SWITCH = 1, FLEET_ABORT = 2 } fleet_phase;

/* "prepare", "switch", "abort"; NULL for anything else. */
const char *fleet_phase_name(fleet_phase p);

/* One pool: its name (letters, digits, '_', '-', '.'; 1..FLEET_NAME_MAX-1
 * bytes) and the YAML text of its map. */
typedef struct fleet_pool {
    char *name;
    char *yaml;
} fleet_pool;

/* A set of pools, sorted by name, names unique. */
typedef struct fleet_pools {
    fleet_pool *pools;
    size_t count;
} fleet_pools;

void fleet_pools_free(fleet_pools *p);

/* Whether a and b hold the same names with the same YAML texts. */
bool fleet_pools_equal(const fleet_pools *a, const fleet_pools *b);

/* The pool called name in p, or NULL. */
const fleet_pool *fleet_pools_find(const fleet_pools *p, const char *name);

/*
 * fleet_pools_compose - one configuration text holding every pool of p
 * (each pool's YAML under its name), for conf_parse_with. *text is the
 * caller's (free), NUL-terminated, *len its length. Returns 0, or -1 (out of
 * memory, no pools). Cost: O(total YAML).
 */
int fleet_pools_compose(const fleet_pools *p, char **text, size_t *len);

/*
 * fleet_pools_split - the pools of a configuration file's text: each
 * top-level key a pool name, its map's YAML text as written (comments
 * inside kept, re-indented to column 0; a block map's text runs from its
 * first key to the end of its last value's line, so comments after a pool
 * are left out; a flow map's from '{' to '}'). Returns 0 with *out set (the
 * caller's: fleet_pools_free), or -1 with *out zeroed and a message in err
 * ("line N: ..."; not YAML, a top-level value that is not a map, a bad or
 * repeated name, an alias of an anchor outside its pool, more than one
 * document, no pools). Cost: O(len).
 */
int fleet_pools_split(const char *text, size_t len, fleet_pools *out, char *err, size_t err_len);

/*
 * fleet_pools_add - adds (name, yaml) (both copied) to *p, keeping it
 * sorted. Returns 0, -1 (bad name, a repeated name, out of memory).
 * Cost: O(count).
 */
int fleet_pools_add(fleet_pools *p, const char *name, size_t name_len, const char *yaml,
                    size_t yaml_len);

/* The pools of the epoch before P/epoch (P/previous), written by the
 * commit: a proxy that starts during a warm-up window takes its keys from
 * their previous owners too, like the proxies that took the change. */
typedef struct fleet_previous {
    uint64_t epoch;            /* the epoch these pools were (P/epoch - 1) */
    int64_t committed_unix_ms; /* when the next one was committed (wall clock) */
    fleet_pools pools;
} fleet_previous;

void fleet_previous_free(fleet_previous *p);
int fleet_previous_encode(const fleet_previous *p, char **json, size_t *len);
/* Reads untrusted JSON: 0 with *out set (the caller's), or -1 and *why. */
int fleet_previous_decode(const char *json, size_t len, fleet_previous *out, const char **why);

/* A proposed change (P/change). */
typedef struct fleet_change {
    uint64_t epoch; /* the epoch it makes: from + 1 */
    uint64_t from;
    fleet_phase phase;
    fleet_pools pools; /* every pool of epoch `epoch` */
    char *by;          /* who proposed it ("chash fleet apply on HOST, pid N") */
    char *reason;      /* abort: why (may be NULL otherwise) */
} fleet_change;

void fleet_change_free(fleet_change *c);

/* JSON text (the caller's, NUL-terminated): 0, or -1 (out of memory). */
int fleet_change_encode(const fleet_change *c, char **json, size_t *len);

/* Reads untrusted JSON: 0 with *out set (the caller's), or -1 and *why (a
 * static string). Checks: epoch == from + 1, a known phase, valid unique
 * pool names. */
int fleet_change_decode(const char *json, size_t len, fleet_change *out, const char **why);

/* A proxy's answer (P/ready/ID). */
typedef struct fleet_ready {
    uint64_t epoch;
    fleet_phase phase;
    bool is_ok;
    char *error; /* !is_ok: why, else NULL */
} fleet_ready;

void fleet_ready_free(fleet_ready *r);
int fleet_ready_encode(const fleet_ready *r, char **json, size_t *len);
int fleet_ready_decode(const char *json, size_t len, fleet_ready *out, const char **why);

/* A live proxy (P/proxies/ID). */
typedef struct fleet_member {
    char *id;       /* as in its key */
    char *host;     /* its host name */
    int64_t pid;
    char *listen;   /* its pools' listen addresses, "name=addr,..." */
    uint64_t epoch; /* the epoch it serves */
    char *state;    /* "serving", "holding" (during a switch), "isolated" */
    int64_t started_unix; /* when it started, seconds since the epoch */
} fleet_member;

void fleet_member_free(fleet_member *m);
int fleet_member_encode(const fleet_member *m, char **json, size_t *len);
int fleet_member_decode(const char *json, size_t len, fleet_member *out, const char **why);

/* P/epoch's value: 0 and *out, or -1 (not a decimal number: digits only,
 * no sign, no leading zero, at most UINT64_MAX). An absent key is epoch 0
 * (the caller's business). */
int fleet_epoch_parse(const char *text, size_t len, uint64_t *out);

/* Whether name (len bytes) is a valid pool name or member id: letters,
 * digits, '_', '-', '.'; 1..FLEET_NAME_MAX-1 bytes. Cost: O(len). */
bool fleet_name_is_valid(const char *name, size_t len);

/* ---- the plan of one pool's change (reads config.h's pools) ------------ */

struct conf_pool;

/* What changing a pool from `before` to `after` moves. */
typedef struct fleet_pool_plan {
    size_t servers_before, servers_after;
    /* Exact (chash_diff of the two rings): range_count ranges of the 32-bit
     * key-hash space, moved_hashes hashes in all. Else (modula, a changed
     * hash or distribution: rings chash_diff cannot compare) moved_fraction
     * comes from `samples` generated keys looked up in both; samples 0: no
     * estimate (a random distribution places no key anywhere for long). */
    bool is_exact;
    uint64_t range_count;
    uint64_t moved_hashes;
    uint64_t samples;
    double moved_fraction; /* of the key space, 0..1 */
    /* distribution: buckets on both sides (conf_pool_bucket_plan): exact by
     * bucket; moved_fraction is then buckets_moved / bucket_count, and
     * range_count the runs of consecutive moved buckets. */
    bool is_buckets;
    uint64_t bucket_count, buckets_moved, keys_moved;
} fleet_pool_plan;

/*
 * fleet_pool_plan_of - how many keys move when a pool goes from `before` to
 * `after` (of two parsed configurations; nodes matched by server name).
 * Builds both rings (conf_pool_ring); allocates nothing that outlives the
 * call. Returns 0 with *out set, or the library's error (CHASH_ENOMEM, a
 * ring that does not build). Cost: O(points of both rings), or 100,000
 * lookups in each when not exact.
 */
int fleet_pool_plan_of(const struct conf_pool *before, const struct conf_pool *after,
                       fleet_pool_plan *out);

#endif
