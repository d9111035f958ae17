/*
 * proxy.h - the proxy's runtime objects, how a request flows through them,
 * and which file does what.
 *
 *   client.c    accept, read -> parser (resp.c / memcache.c)
 *      |                              | one command
 *      |                              v
 *      |        route.c   command.c: the table of Redis commands and their keys;
 *      |                  session.c (who the client is: AUTH, HELLO, the
 *      |                  users' rules of acl.c checked for every command;
 *      |                  PING...), clientcmd.c (CLIENT), admin.c (PROXY)
 *      |                  answer locally; fanout.c: every server or any one;
 *      |                  held.c: transactions and blocking commands on a
 *      |                  connection of the client's own; pubsub.c;
 *      |                  mcroute.c: memcached (mcrepl.c: replicated
 *      |                  pools, `replication: N`); forward.c puts the commands
 *      |                  on server connections, pool.c picks each key's
 *      |                  server; warmup.c may hold a command while its keys
 *      |                  move; cluster.c: a pool in front of a Redis
 *      |                  Cluster (slot map, -MOVED/-ASK followed);
 *      |                  shard.c: a shard's primary or replica
 *      |                  (read_from), requests waiting out a failover
 *      |                              | a req, one frag per server
 *      |                              v
 *      |        server.c  server connections: a FIFO of frags per connection,
 *      |                  write, read, match replies, time out late ones;
 *      |                  failures go to health.c (eject, down, probes)
 *      |                              | frag_deliver
 *      |                              v
 *      +-- write <- req.c   requests and replies in request order (merge.c
 *                           joins split replies, infomerge.c INFO's;
 *                           mcmerge.c memcached's replies from every
 *                           server, and quiet ones)
 *
 *   worker.c   one event loop per thread (loop.c, the only file that knows
 *              epoll): the loop turn, the timers, taking a reloaded config
 *   reload.c   re-reading the configuration (config.c); stats.c the
 *              statistics (one list, stats.h) and their port, with the
 *              status page (status.html); log.c
 *   tls.c      TLS on clients' and servers' sockets (OpenSSL): contexts
 *              built with the configuration, handshakes and I/O for
 *              client.c, server.c, health.c and topology.c
 *   topology.c a thread that follows Redis Sentinel or a Redis Cluster
 *              (clustermap.c reads its slot map) and measures the
 *              replicas; workers copy its views (shard.c, cluster.c); main.c
 *   fleet.c    --etcd: a thread that takes the pools from etcd and changes
 *              them with the rest of the fleet (fleetproto.h); workers read
 *              its holds and permit (client.c's gate)
 *
 * Calls go one way, down this list, never back up: main -> {fleet ->
 * reload}, main -> worker ->
 * client -> {route -> {admin -> reload}, session, clientcmd, fanout, pubsub,
 * held}, mcroute -> mcrepl -> warmup -> forward -> cluster -> shard -> server -> health -> pool ->
 * req -> merge -> {infomerge, mcmerge}, and everything -> stats -> topology,
 * log, buf, config -> {acl -> command, tls}, loop. Where a lower file must
 * reach a higher one it is handed a callback (warm-up resumes a held
 * command that way).
 *
 * Each worker thread owns one event loop and everything reachable from it:
 * its clients, its server connections, its copy of every pool's ring. Only
 * the read-only configuration, the per-pool client counts (on accept and
 * close) and relaxed-atomic statistics are shared.
 *
 * Invariants:
 * - a client's queue holds its requests in arrival order; only the head's
 *   reply may be written, so replies leave in request order;
 * - a bconn's queue holds the fragments it sent, in send order; each reply
 *   answers its head (servers answer in order);
 * - a req lives until its client has written its reply or is gone, and until
 *   every fragment is answered (frag_pending == 0), whichever is later.
 */
#ifndef PROXY_PROXY_H
#define PROXY_PROXY_H

#include "buf.h"
#include "command.h"
#include "config.h"
#include "loop.h"
#include "memcache.h"
#include "reply.h"
#include "resp.h"
#include "stats.h"

#include <chash.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PROXY_NAME "chash-proxy"
/* An address as text, "ip:port" or "[v6]:port". */
#define TOPO_ADDR_MAX 64
/* Stop reading from a client whose unsent replies pass this many bytes. */
#define CLIENT_OUT_PAUSE (16u * 1024u * 1024u)
#define READ_CHUNK (64u * 1024u)

typedef struct worker worker;
typedef struct wpool wpool;
typedef struct backend backend;
typedef struct bconn bconn;
typedef struct client client;
typedef struct req req;
typedef struct frag frag;
typedef struct warm_job warm_job;
typedef struct mc_failover mc_failover;

struct frag {
    frag *next;       /* in its bconn's queue */
    req *r;           /* NULL: nobody waits (upstream AUTH/SELECT, warm-up) */
    /* The proxy's own command (warm-up): gets the reply or the error
     * instead of a request, and frees f. */
    void (*on_reply)(frag *f, const char *data, size_t len);
    uint64_t sent_ms;
    uint64_t sent_us;
    buf reply;        /* merged requests keep each fragment's reply */
    size_t cursor;    /* merge position in reply */
    uint32_t count;   /* keys of this fragment (merges) */
    mc_reply_kind mc_reply; /* memcached: what the reply looks like */
    bool failed;
    bool is_swallowed; /* standalone: free once answered */
    bool is_late;      /* holds the place of a request that timed out */
    bool is_blocking;  /* may wait as long as the command says: no timeout */
    bool on_shared;    /* counted in its client's shared_inflight */
    bool is_sub_cmd;   /* (UN)SUBSCRIBE: messages may come before its replies */
    /* min_replicas_ack: a WAIT follows the command (2 replies); the
     * command's reply is kept in ack_first until WAIT's count arrives. */
    uint8_t ack_want;
    bool ack_seen;
    buf *ack_first;
    /* A read on a replica (prefer_replica): its bytes, to send to the
     * primary if the replica fails it (server.c calls retry->again). */
    struct parked *retry;
    /* distribution: redis-cluster: its bytes, to follow a -MOVED or -ASK
     * (server.c hands an error reply to kept->on_error first). */
    struct parked *kept;
    /* Replies it takes (SUBSCRIBE a b: one confirmation a channel); an
     * error ends it early. 0 counts as 1. */
    uint32_t replies;
};

typedef enum req_kind {
    REQ_LOCAL,   /* answered by the proxy */
    REQ_FORWARD, /* one fragment, reply passed through */
    REQ_MGET,    /* MGET split: elements re-assembled in key order */
    REQ_SUM,     /* DEL, UNLINK, EXISTS, TOUCH split: integers added */
    REQ_MSET,    /* MSET split: +OK when every part is */
    REQ_MC_GET,  /* memcached get/gets/gat/gats split: VALUE blocks in key order */
    REQ_SAME,    /* to every server: their one common reply (SCRIPT LOAD's sha) */
    REQ_CONCAT,  /* to every server: their arrays joined (KEYS) */
    REQ_SCAN,    /* SCAN on one server: its cursor rewritten to name the server */
    REQ_PREBUILT, /* SUBSCRIBE...: the reply written at routing, unless a server errs */
    REQ_SELECT,  /* SELECT n checked by a server: the client's database if OK */
    REQ_MIN,     /* WAIT on every server: the least count */
    REQ_MC_SAME,  /* memcached, to every server: their one common reply (flush_all...) */
    REQ_MC_STATS, /* memcached stats: every server's summed, with the proxy's own */
    REQ_MC_QUIET, /* a meta command with q: the reply q leaves out is dropped */
    REQ_MC_ALLSYNC,  /* replicated write: to every live copy, one reply (mcmerge.c) */
    REQ_MC_FAILOVER, /* replicated read: copy after copy until a hit (mcrepl.c) */
    REQ_AND,     /* to every server: arrays of 0/1, 1 where every server said 1 */
    REQ_ANY,     /* to every server: +OK when one did it (SCRIPT KILL) */
    REQ_PAIRS,   /* to every server: [name, count...] with the counts added */
    REQ_INFO,    /* INFO: the proxy's sections (in reply), then the servers' merged */
    REQ_RANDOM,  /* RANDOMKEY: one of the servers' keys */
    REQ_SLOWLOG, /* SLOWLOG GET: every server's entries, newest first */
} req_kind;

struct req {
    req *next;    /* in the client's queue (or the worker's spares) */
    client *c;    /* NULL once the client is gone */
    worker *w;
    req_kind kind;
    bool is_done;
    bool is_noreply; /* memcached noreply, CLIENT REPLY OFF/SKIP: the reply is dropped */
    bool then_close; /* close the client after this reply */
    uint32_t frag_count;
    uint32_t frag_pending; /* unanswered fragments, plus one while dispatching */
    frag *frags;
    frag one; /* frags == &one when frag_count == 1 */
    uint32_t key_count;
    uint32_t scan_server, scan_servers; /* REQ_SCAN: which of how many */
    int select_db;                      /* REQ_SELECT: the database asked for */
    mc_cmd mc_quiet; /* REQ_MC_QUIET, ALLSYNC, FAILOVER: the command */
    bool mc_is_quiet; /* REQ_MC_ALLSYNC, FAILOVER: q was taken out (mc_quiet's) */
    mc_failover *fo;  /* REQ_MC_FAILOVER: the keys' copies and what they said */
    /* To every server (fanout.c, mcroute.c): the pool asked, frag k went to
     * its server k (merges name a server that failed); NULL otherwise. */
    const wpool *all_pool;
    long long limit; /* REQ_SLOWLOG: the entries asked for, -1 for all */
    uint32_t *key_frag; /* merges: key i's fragment */
    buf keys;           /* REQ_MC_GET: the keys, for matching VALUE blocks */
    uint32_t *key_off;  /* REQ_MC_GET: key i at keys[key_off[i] .. key_off[i+1]) */
    buf reply;
    size_t held_bytes; /* server reply bytes kept here (and in frags) for the client */
};

/* A replicated read (mcrepl.c): each key asks its copies in ring order
 * until one has it; its hit is kept here until every key is done. */
typedef struct mc_fo_key {
    uint32_t copies[CONF_REPLICATION_MAX]; /* backend indexes, ring order */
    uint8_t copy_count;
    uint8_t tried;        /* copies asked or passed over (out) so far */
    bool is_hit;
    bool has_reply;       /* value_* holds a server's answer (mg: a miss too) */
    uint32_t value_off, value_len; /* in fo->values */
} mc_fo_key;

struct mc_failover {
    wpool *pool;
    buf line;   /* get family: "gat 100" (the line up to its keys); mg: the line */
    buf values; /* the VALUE blocks (mg: replies) of keys that have one */
    buf error;  /* the first failure, the reply when no server answered */
    bool has_answer; /* some server answered (a miss is an answer) */
    uint32_t key_count;
    mc_fo_key keys[];
};

/* client.tls_io_flip, bconn.tls_flip: TLS may need to write to finish a
 * read (a key update's reply) or to read to finish a write. */
enum { FLIP_NONE, FLIP_READ_WANTS_WRITE, FLIP_WRITE_WANTS_READ };

/* BC_HANDSHAKE: connected, TLS handshake in progress (server_tls). */
typedef enum bconn_state { BC_IDLE, BC_CONNECTING, BC_HANDSHAKE, BC_READY } bconn_state;

struct bconn {
    loop_io io;
    backend *b;
    bconn_state state;
    buf out;
    frag *head, *tail;
    uint32_t inflight;
    resp_reply_parser rr; /* redis pools: where the next reply ends */
    buf in;
    mc_reply_parser mcr;
    uint64_t since_ms;
    uint32_t late; /* placeholders of timed-out requests in the queue */
    uint64_t replied_ms; /* when the server last completed a reply */
    uint64_t heard_ms;   /* when the server last sent bytes */
    bool in_flush;
    bconn *next_flush;
    int db; /* the database selected on it, or -1 when unknown */
    uint32_t gen; /* bumped by each new socket */
    /* A client's own connection (held.c), or NULL for a shared one. */
    client *owner;
    bconn *owner_next;          /* in owner->held */
    bconn *held_prev, *held_next; /* in b->held */
    bool is_corked;   /* not written until the owner's shared requests are answered */
    bool is_retiring; /* not used again; freed once nothing is in flight */
    bool is_sub;      /* in subscriber mode: messages come unasked */
    uint32_t sub_count; /* subscriptions on it (pubsub.c) */
    /* A message (a push) that arrived on a subscriber connection. */
    void (*on_push)(bconn *bc, const char *data, size_t len);
    bconn *next_dead; /* in its worker's dead_bconns */
    /* server_tls: the TLS session over io.fd, or NULL; tls_flip as
     * client.tls_io_flip (a read that waits to write, or the reverse). */
    struct tls_conn *tls;
    uint8_t tls_flip;
};

/* A request for a shard with no primary, waiting for one (failover_wait). */
typedef struct parked {
    struct parked *next;
    frag *f;
    uint64_t until_ms;
    /* A kept read: the server it went to, and who sends it again (shard.c). */
    backend *from;
    void (*again)(frag *f, struct parked *pk, const char *reason);
    /* A kept request's error reply: true when it took f (cluster.c). */
    bool (*on_error)(frag *f, backend *from, struct parked *pk, const char *data, size_t len);
    uint64_t retry_ms; /* cluster.c: when to send again (-TRYAGAIN), or 0 */
    uint64_t map_gen;  /* cluster.c: the pool's map generation it waited at */
    uint32_t slot;     /* cluster.c: the slot its redirect named */
    uint8_t hops;      /* cluster.c: redirects followed */
    size_t len;
    char data[];
} parked;

struct backend {
    wpool *pool;
    const conf_server *cf; /* a replica: its shard's */
    uint32_t index;        /* in pool->backends; a replica: its slot */
    conf_addr addr;        /* where it is now: cf's, or the topology's */
    char addr_text[TOPO_ADDR_MAX];
    /* Pools with replicas (topology.c): a shard's CONF_REPLICAS_MAX replica
     * slots, or NULL; in a slot, its shard. */
    backend *replicas;
    backend *shard;
    bool is_present;  /* a slot that holds a replica now */
    bool is_usable;   /* ...which the topology says may take reads */
    bool answers;     /* ...which answers, linked to its primary or not */
    uint32_t next_read; /* round robin over the usable replicas */
    parked *parked, *parked_tail; /* failover_wait: requests waiting for a primary */
    bconn *conns;
    uint32_t conn_count;
    bconn *held; /* clients' own connections to this server */
    uint32_t failures;
    bool is_ejected;      /* CONF_FAIL_EJECT: off the ring */
    bool is_down;         /* CONF_FAIL_ERROR / REROUTE: on the ring, not used */
    bool is_fleet_down;   /* the fleet's verdict as this worker last saw it */
    uint64_t retry_at_ms; /* when to probe an ejected or down server next */
    struct health_probe *probe; /* in flight, or NULL */
    bool is_warm_off; /* failed during the warm-up window: not asked again */
    /* What the status page shows of it (stats thread): BACKEND_SHOWN_*,
     * copied from is_down / is_ejected at each tick of its worker. */
    _Atomic uint8_t shown;
    bool is_former;   /* removed by the last reload; asked only by warm-up */
    server_stats st;
};

enum { BACKEND_SHOWN_UP, BACKEND_SHOWN_DOWN, BACKEND_SHOWN_EJECTED };

struct wpool {
    const conf_pool *cf;
    worker *w;
    uint32_t index;
    loop_io listen_io;
    uint32_t listen_mask;      /* what listen_io is watched for */
    uint64_t accept_resume_ms; /* accept paused (no descriptors) until then, or 0 */
    backend *backends;
    size_t backend_count;   /* the configured servers, then former ones (warm-up) */
    size_t server_count;    /* the configured servers: backends[0 .. server_count) */
    chash *ring;            /* live (not ejected) backends */
    uint32_t *node_backend; /* ring node index -> backend index */
    size_t live_count;
    pool_stats st;
    stat_t *cmd_requests; /* redis pools: per command of the table, or NULL */
    uint64_t topo_gen;    /* the topology generation its backends follow */
    /* Warm-up window after a reload (warmup.c), or all NULL. */
    chash *prev_ring;
    uint32_t *prev_backend; /* prev_ring node -> backend index, or UINT32_MAX */
    uint64_t *warm_seen;    /* fingerprints of keys already moved */
    uint64_t warm_until_ms;
    uint64_t warm_gen; /* generation of the configuration warm-up reads */
    bool is_fleet_held; /* a fleet change's switch: no new commands */
    _Atomic uint64_t shown_warm_left_ms; /* warm-up left, as of the last tick (status page) */
    /* distribution: redis-cluster (cluster.c): each slot's backend index
     * (UINT16_MAX: none), the topology's generation of it, a generation
     * bumped by every change (the topology's or a -MOVED's), and the
     * redirected requests waiting for the map or for a retry. */
    uint16_t *slots;
    uint64_t slots_gen;
    uint64_t map_gen;
    parked *cl_wait, *cl_wait_tail;
};

struct client {
    loop_io io;
    worker *w;
    wpool *pool;
    uint64_t id;
    resp_parser rp;
    mc_parser mp;
    uint32_t read_want; /* bytes to make room for at the next read */
    req *head, *tail;
    uint32_t depth;
    buf out;
    /* Reply bytes waiting in queued requests; with out, bounded by the pool's
     * max_client_buffer: a client that asks faster than it reads is closed
     * rather than let it hold the proxy's memory. */
    size_t held_bytes;
    bool is_over_limit;
    bool is_authed;
    /* A pool with users: (acl.h) - the user its commands are checked as
     * (an entry of c->pool->cf->users), NULL before AUTH; without users:,
     * always NULL (nothing is checked). Re-resolved by name at a reload. */
    const acl_user *user;
    buf user_name;     /* the name it AUTHenticated as; empty: it did not */
    bool is_user_lost; /* a reload removed or disabled its user: told at the next command */
    bool is_draining; /* no more input: close once everything is answered */
    bool is_closed;
    bool is_paused;   /* reads stopped for backpressure */
    /* A reload moved c to new pools while requests of its were still in
     * flight on the old pools' connections: nothing more is read until
     * they are answered, so its commands reach each server in its order. */
    bool is_fenced;
    /* A command waiting for its keys to be moved (warm-up): nothing after it
     * is read until it is sent on. */
    warm_job *warm;
    resp_msg warm_msg;
    int db;                   /* SELECT: the database its commands run in */
    bconn *held;              /* its own server connections (held.c) */
    uint32_t held_count;
    uint32_t shared_inflight; /* its fragments on shared connections */
    bool has_corked;          /* some held connection waits for shared_inflight 0 */
    bool is_held_lost;        /* a held connection failed: see held_check */
    struct txn *txn;          /* MULTI / WATCH state (held.c), or NULL */
    struct subs *subs;        /* subscriptions (pubsub.c), or NULL */
    /* CLIENT (clientcmd.c): what CLIENT INFO and LIST show of it. */
    buf name;                 /* CLIENT SETNAME, HELLO SETNAME; empty: none */
    uint64_t created_ms;      /* the worker's clock at accept */
    uint64_t command_ms;      /* at its last command */
    const cmd_spec *last_cmd; /* NULL: none yet, or not a command the table has */
    /* While route.c sends a write of a pool with min_replicas_ack: the
     * replicas each fragment waits for (frag_send, route_split). */
    uint8_t write_ack;
    uint8_t reply_mode;       /* CLIENT REPLY: a reply_mode */
    bool is_no_evict;         /* CLIENT NO-EVICT on: shown, nothing else to do */
    /* redis-cluster: the pool's map_gen its commands in flight were routed
     * by; a newer map fences it until they are answered (client.c). */
    uint64_t cluster_gen;
    /* A TLS listener's client (tls.h): tls is NULL until its first byte
     * says it speaks TLS; until its handshake completes (tls_phase
     * CLIENT_TLS_OPEN) it is on the worker's tls_wait list with a deadline.
     * tls_io_flip: the last TLS read wanted to write, or the last write to
     * read (the mask follows; the event runs the other half). */
    struct tls_conn *tls;
    uint8_t tls_phase;
    uint8_t tls_io_flip;
    uint64_t tls_deadline_ms;
    client *tls_prev, *tls_next;
    bool in_flush;
    client *next_flush;
    client *prev, *next; /* the worker's live clients */
    client *next_dead;
};

typedef struct proxy proxy;

/* ---- topology.c: shards' primaries and replicas (Sentinel, INFO) -------- */
typedef struct topo_node {
    char addr[TOPO_ADDR_MAX]; /* "ip:port"; empty: unknown */
    conf_addr sa;
    int64_t lag;    /* replicas: bytes behind the primary, -1 unknown */
    bool is_usable; /* replicas: answers, linked to its primary, within replica_max_lag */
    bool answers;   /* replicas: answered INFO at the last check (any role) */
} topo_node;

/* What the proxy knows of one shard, as workers copy it. */
typedef struct topo_shard {
    topo_node primary;
    bool primary_answers;    /* its INFO answered at the last check */
    bool primary_is_replica; /* ...saying role:slave (demoted, or not yet told) */
    uint32_t replica_count;
    topo_node replicas[CONF_REPLICAS_MAX];
    uint64_t failovers; /* primary changes seen since the proxy started */
} topo_shard;

/* Asks the sentinels and the servers once, before the workers build their
 * pools (so the first clients find the primaries Sentinel knows now, not
 * the configured guesses). Returns 0 or -1 with err. */
int topology_init(proxy *px, char *err, size_t err_len);
/* Starts the thread that follows the sentinels and measures replicas
 * (after a daemon's fork). Returns 0 or -1 with err. */
int topology_start(proxy *px, char *err, size_t err_len);
void topology_stop(proxy *px);
/* Copies pool `pool`'s shard `shard` into *out; false when it is not
 * watched. Thread-safe; takes a lock briefly. */
bool topology_shard(const proxy *px, const char *pool, const char *shard, topo_shard *out);
/* A worker saw a shard's primary fail or answer READONLY: check now
 * rather than at the next interval. Thread-safe, never blocks. */
void topology_recheck(proxy *px);
/* distribution: redis-cluster - copies pool `pool`'s slot map (each slot's
 * shard entry, CLUSTER_NO_SHARD: none; 16384 entries) into out when its
 * generation is not *gen, and sets *gen; true when it copied. Thread-safe;
 * takes a lock briefly. */
bool topology_cluster_slots(const proxy *px, const char *pool, uint16_t *out, uint64_t *gen);

struct worker {
    uint32_t id;
    proxy *px;
    loop *loop;
    wpool *pools;
    size_t pool_count;
    client *clients;
    client *flush_clients;
    bconn *flush_bconns;
    client *dead;
    bconn *dead_bconns; /* held connections freed during the turn (server.c) */
    uint64_t now_ms;
    uint64_t now_us; /* the same moment; both run at most a tick a loop turn */
    uint64_t real_us; /* the monotonic clock when now_us last advanced */
    uint64_t next_tick_ms;
    uint32_t tick_ms;
    uint64_t rng;
    uint64_t next_client_id;
    bool is_draining;
    uint64_t drain_deadline_ms;
    int reserve_fd; /* held so a refusal can still be accepted when out of fds */
    const conf *cf;   /* what pools were built from */
    uint64_t conf_gen; /* the last generation seen */
    uint64_t cf_gen;   /* cf's generation */
    /* The oldest generation this worker still uses (cf, pools a reload
     * retired, warm-up windows): older configurations may be freed. */
    _Atomic uint64_t oldest_gen;
    struct retired *retired; /* pools replaced by a reload, still in flight */
    req *spare;              /* freed requests kept for reuse (req.c) */
    uint32_t spare_count;
    pthread_t thread;
    /* Fleet (--etcd): the fleet_seq last applied, and the one whose holds
     * this worker has drained (nothing of the held pools in flight). */
    uint64_t fleet_seq;
    _Atomic uint64_t fleet_drained;
    loop_io wake_io; /* an eventfd fleet_wake writes; fd -1 without a fleet */
    /* TLS clients before their handshake completes, oldest first
     * (client.c), and how many of them have begun one (an SSL object each). */
    client *tls_wait, *tls_wait_tail;
    uint32_t tls_handshaking;
};

typedef struct conf_list {
    conf *cf;
    uint64_t gen; /* the generation it was current in */
    struct conf_list *next;
} conf_list;

struct proxy {
    conf *cf;            /* the configuration in force; under lock */
    const char *conf_path;
    pthread_mutex_t lock; /* cf, every worker's pools and retired lists */
    pthread_mutex_t accept_lock; /* accept, and a worker's reserve let go (client.c) */
    _Atomic uint64_t conf_gen; /* bumped by each reload that takes */
    /* Replaced configurations, freed once no worker uses them (reload.c). */
    conf_list *old_confs;
    uint64_t conf_digest; /* of the configuration file's bytes in force */
    uint64_t last_reload_ms; /* when the last reload was tried (one_at_a_time) */
    pthread_t reload_thread;
    bool has_reload_thread;
    char last_reload[2048]; /* the last reload's outcome; under lock */
    worker *workers;
    uint32_t worker_count;
    _Atomic uint32_t *pool_clients; /* per pool, across workers */
    _Atomic uint32_t client_count;  /* every pool's */
    _Atomic uint32_t held_count;    /* clients' own server connections, every pool's */
    uint32_t max_clients; /* what the descriptor limit leaves for clients, or 0 */
    uint64_t max_memory;  /* --max-memory in bytes (buf_held_bytes), or 0: none */
    int loop_kind;        /* --event-loop: a loop_kind (loop.h) */
    _Atomic uint64_t total_connections;
    uint64_t start_time; /* unix seconds */
    struct topology *topo;       /* topology.c, or NULL */
    /* fleet.c (--etcd), or NULL. The workers only read these atomics (and
     * are woken by fleet_wake): */
    struct fleet *fleet;
    _Atomic uint64_t fleet_seq;       /* bumped when a hold or the permit changes */
    _Atomic uint64_t fleet_permit_ms; /* serve only before (CLOCK_MONOTONIC_COARSE ms) */
    _Atomic uint8_t *fleet_hold;      /* per pool: 1 while a change's switch holds it */
    /* What the stats show of the fleet (written by its thread only). */
    char fleet_id[128];
    _Atomic uint64_t fleet_epoch;
    _Atomic uint64_t fleet_confirmed_ms; /* CLOCK_MONOTONIC_COARSE ms etcd last answered */
    _Atomic uint64_t fleet_changes;      /* epochs taken since start */
    _Atomic uint64_t fleet_holds;        /* switches held */
    _Atomic uint64_t fleet_aborts;       /* changes rolled back while prepared */
    _Atomic int fleet_etcd_up;
    _Atomic int fleet_state; /* FLEET_SERVING, FLEET_HOLDING, FLEET_ISOLATED */
    _Atomic uint64_t topo_gen;   /* bumped by each change of a shard's view */
    int stats_fd;
    pthread_t stats_thread;
    bool has_stats_thread;
};

extern atomic_int proxy_stop;
/* Set by the first SIGTERM / SIGINT: stop accepting, answer what clients
 * already asked, close them, exit (proxy_stop, by a second signal or after
 * DRAIN_TIMEOUT_MS, cuts it short). */
extern atomic_int proxy_drain;
/* Set by SIGHUP: the reload thread re-reads the configuration. */
extern atomic_int proxy_reload_requested;
#define DRAIN_TIMEOUT_MS 10000u

/* ---- fleet.c: the pools from etcd, changed with the whole fleet ------- */
enum { FLEET_SERVING = 0, FLEET_HOLDING = 1, FLEET_ISOLATED = 2 };
typedef struct fleet_options {
    const char *endpoints; /* --etcd */
    const char *prefix;    /* --etcd-prefix */
    const char *id;        /* --etcd-id, NULL: HOST-PID */
    long lease_ttl_s;      /* --etcd-lease-ttl */
    const char *user, *password_file, *cacert, *cert, *key;
    /* --listen NAME=ADDR: this proxy's address for pool NAME instead of the
     * pool's listen (several proxies on one host); up to 16. */
    const char *listens[16];
    size_t listen_count;
} fleet_options;
/* Registers with etcd and reads the committed pools: 0 with the
 * configuration in *cf and the fleet in *out, or -1 and why in err. */
int fleet_open(const fleet_options *opt, struct fleet **out, conf **cf, char *err,
               size_t err_len);
/* Leaves the fleet and frees a fleet not attached to a proxy (-t, or a
 * failed start); NULL-safe. */
void fleet_close(struct fleet *f);
/* Ties the fleet to the proxy (px->cf is the configuration fleet_open
 * made): its holds and permit. 0, or -1 out of memory. */
int fleet_attach(struct fleet *f, proxy *px);
int fleet_start(proxy *px, char *err, size_t err_len);
/* Stops the thread, revokes the lease (the proxy leaves the fleet at once)
 * and frees everything; NULL-safe. */
void fleet_stop(proxy *px);

/* ---- worker.c: one loop per thread ------------------------------------- */
/* A listening socket for the pool (SO_REUSEPORT when asked). Returns the fd,
 * or -1 with a message in err. */
int proxy_listen(const conf_pool *cp, bool reuseport, char *err, size_t err_len);
int worker_init(worker *w, proxy *px, uint32_t id, char *err, size_t err_len);
/* Watches fds[i] as pool i's listener (the fds belong to the caller). */
int worker_listen(worker *w, const int *fds, char *err, size_t err_len);
/* Runs the loop until proxy_stop is set, or a drain ends. */
void worker_run(worker *w);
void worker_destroy(worker *w);

/* ---- client.c: client connections --------------------------------------- */
/* Sets px->max_clients from RLIMIT_NOFILE: what is left once every worker
 * has its server connections, probes and listeners (a client never takes
 * a server's descriptor). Logs the figures; warns when nothing is left. */
void proxy_limit_clients(proxy *px);
/* Watches p's listener again once an accept pause is over. */
void listener_tick(wpool *p, uint64_t now_ms);
/* Accepts what is waiting on a pool's listener (io->owner is the wpool). */
void listener_on_event(loop_io *io, uint32_t events);
/* Closes TLS clients whose handshake is past its deadline. */
void client_tls_expire(worker *w, uint64_t now_ms);
/* Over --max-memory: closes this worker's clients that hold the most, one
 * at a time, largest first, until the process is under it (never a client
 * holding less than CLIENT_SHED_FLOOR). O(clients) a client closed. */
void client_shed(worker *w);
#define CLIENT_SHED_FLOOR (256u * 1024u)
/* Writes c's output; closes c when it is over its limits or done. */
void client_flush(client *c);
/* Stops reading c: it is closed once everything it asked is answered. */
void client_drain(client *c);
void client_close(client *c, bool is_error);

/* Before AUTH, a client of a pool with a password may send what Redis
 * takes from an unauthenticated client: commands of 10 arguments and 16 KB
 * strings at most, so it cannot make the proxy hold a 100 MB argument. */
#define UNAUTH_MAX_ARGS 10u
#define UNAUTH_MAX_BULK 16384u
static inline void client_set_authed(client *c, bool is_authed) {
    c->is_authed = is_authed;
    c->rp.max_args = is_authed ? c->pool->cf->max_arguments : UNAUTH_MAX_ARGS;
    c->rp.max_bulk_len = is_authed ? c->pool->cf->max_bulk_length : UNAUTH_MAX_BULK;
}

/* CLIENT SETNAME and HELLO SETNAME: c's name (empty: none). A name with a
 * space, a newline or another byte outside '!'..'~' is refused (false), as
 * Redis refuses it, CLIENT LIST's fields being split on spaces; the reply
 * is then CLIENT_NAME_ERROR. */
#define CLIENT_NAME_ERROR                                                                      \
    "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
static inline bool client_set_name(client *c, const resp_arg *name) {
    for (size_t i = 0; i < name->len; i++)
        if (name->ptr[i] < '!' || name->ptr[i] > '~') return false;
    buf_clear(&c->name);
    buf_append(&c->name, name->ptr, name->len);
    return true;
}

/* ---- route.c: Redis commands to servers --------------------------------- */
void route_redis(client *c, const resp_msg *m);

/* ---- held.c: transactions and blocking commands on the client's own
 * server connections; SELECT, RESET ------------------------------------- */
/* Whether m is to be queued in c's open transaction (held_queue). */
bool held_in_multi(const client *c, const cmd_spec *spec);
/* A command inside MULTI, its keys on b (NULL: no keys): queued on the
 * transaction's server, or refused (EXEC then answers EXECABORT). */
void held_queue(client *c, const cmd_spec *spec, const resp_msg *m, backend *b);
/* A command inside MULTI was refused before held_queue saw it. */
void held_dirty(client *c);
/* MULTI, EXEC, DISCARD, UNWATCH; WATCH with its keys' server b. */
void held_command(client *c, const cmd_spec *spec, const resp_msg *m, backend *b);
/* A blocking command (BLPOP...) whose keys live on b. */
void held_blocking(client *c, const resp_msg *m, backend *b);
void held_wait(client *c, const resp_msg *m);
void held_select(client *c, const resp_msg *m);
/* RESET: no transaction, held connections closed, the pool's database. */
void held_reset(client *c);
/* The pool was reloaded: transactions fail at EXEC, held connections go. */
void held_reload(client *c);
/* A held connection was lost (c->is_held_lost): what depended on it ends. */
void held_check(client *c);
/* The client is closing: its held connections are closed. */
void held_release(client *c);

/* ---- pubsub.c: subscriptions -------------------------------------------- */
/* SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs. */
void pubsub_command(client *c, const cmd_spec *spec, const resp_msg *m);
/* c's subscriptions; while it has any, only what pubsub_allows runs. */
size_t pubsub_count(const client *c);
/* The same by kind: SUBSCRIBE's channels, PSUBSCRIBE's, SSUBSCRIBE's. */
void pubsub_counts(const client *c, size_t *channels, size_t *patterns, size_t *shards);
bool pubsub_allows(const cmd_spec *spec);
void pubsub_refuse(client *c, const cmd_spec *spec);
void pubsub_ping(client *c, const resp_msg *m);
/* A subscriber connection was lost: the client is closed. */
void pubsub_check(client *c);
void pubsub_release(client *c);

/* ---- mcroute.c: memcached commands to servers --------------------------- */
void route_memcache(client *c, const mc_msg *m);

/* ---- mcrepl.c: replicated memcached pools (`replication: N`) ------------ */
/* Routes m over its keys' copies; false: m is not a command copies change
 * (flush_all, stats, me...), route it as usual. */
bool mcrepl_route(client *c, const mc_msg *m);

/* ---- shard.c: a shard's primary and replicas at run time ---------------- */
/* Follows the topology (topology.c) when it changed: a shard's new primary
 * (its connections closed, what they carried failed), replica slots. */
void shard_sync(wpool *p);
/* Requests waiting for a primary: sent once the shard has one, failed past
 * failover_wait. */
void shard_tick(wpool *p, uint64_t now_ms);
/* Where a command of c for shard b goes: b, or for a read (spec
 * CMD_READONLY) in a pool with read_from other than primary, one of b's
 * usable replicas (round robin); with read_from: replica and none usable,
 * NULL and the reason in *why. Counts reads per role. */
backend *shard_reader(client *c, const cmd_spec *spec, backend *b, const char **why);
/* Whether a request for b waits for a new primary rather than failing
 * (b down, the pool's failover_wait > 0). */
bool shard_parks(const backend *b);
/* f waits (a copy of its bytes) until b has a primary, or failover_wait
 * passes; false when out of memory (f is then failed). */
void shard_park(frag *f, backend *b, const char *data, size_t len);
/* f, a read (is_read) sent to b, a shard's primary or replica, in a pool
 * with read_from: prefer_replica, keeps a copy of its bytes: if b fails it,
 * it goes once to the other side (the primary, or a replica that answers;
 * shard.c's read_target). */
void shard_keep_read(frag *f, backend *b, bool is_read, const char *data, size_t len);
/* Fails what waits on p's shards (the pool is going). */
void shard_release(wpool *p, const char *why);

/* ---- cluster.c: a pool in front of a Redis Cluster ---------------------- */
/* Takes the topology's slot map when it changed; waiting redirects go on. */
void cluster_sync(wpool *p);
/* f, about to be sent, keeps a copy of its bytes to follow -MOVED and
 * -ASK with (nothing when out of memory: the error then reaches the
 * client). */
void cluster_keep(frag *f, const char *data, size_t len);
/* Redirects whose wait is over: sent, or failed. */
void cluster_tick(wpool *p, uint64_t now_ms);
/* Fails what waits (the pool is going). */
void cluster_release(wpool *p, const char *why);

/* ---- fanout.c: commands for every server, or any one -------------------- */
/* Routes m by spec's kind (CK_ALL_*, CK_ONE, CK_RANDOM, CK_SCAN...). */
void fanout_command(client *c, const cmd_spec *spec, const resp_msg *m);

/* ---- clientcmd.c: CLIENT, about the client's connection to the proxy ---- */
/* CLIENT REPLY: while OFF, and for the one command after SKIP (whose
 * reply_mode becomes REPLY_SKIP when that command begins), every reply is
 * dropped (req.c). */
enum reply_mode { REPLY_ON, REPLY_OFF, REPLY_SKIP_NEXT, REPLY_SKIP };
static inline bool client_is_muted(const client *c) {
    return c->reply_mode == REPLY_OFF || c->reply_mode == REPLY_SKIP;
}
/* A command of c's begins (route_redis): SKIP's turn comes or goes, and
 * the time CLIENT INFO's idle counts from. */
static inline void clientcmd_begin(client *c) {
    if (c->reply_mode == REPLY_SKIP_NEXT || c->reply_mode == REPLY_SKIP)
        c->reply_mode = c->reply_mode == REPLY_SKIP_NEXT ? REPLY_SKIP : REPLY_ON;
    c->command_ms = c->w->now_ms;
    c->last_cmd = NULL;
}
/* CLIENT SETNAME, GETNAME, ID, INFO, LIST, NO-EVICT, REPLY, HELP. */
void clientcmd_command(client *c, const cmd_spec *spec, const resp_msg *m);

/* ---- admin.c: the PROXY command ---------------------------------------- */
void admin_command(client *c, const resp_msg *m);

/* ---- session.c: who the client is; PING, ECHO, QUIT, AUTH, HELLO, RESET,
 * ACL WHOAMI and CAT ------------------------------------------------------ */
void session_command(client *c, const cmd_spec *spec, const resp_msg *m);
/* A new client of c->pool (and RESET): `default` when that user is on and
 * nopass, else unauthenticated; without users:, authenticated unless the
 * pool has a redis_auth. */
void session_begin(client *c);
/* A reload moved c from pool `before` to c->pool: its user is looked up by
 * name in the new users (new rules from its next command on); one removed
 * or switched off is told at the next command and must AUTH again. Between
 * pools without users nothing changes. */
void session_rebind(client *c, const conf_pool *before);
/* Whether c may run m (spec after command_sub): authenticated, or AUTH,
 * HELLO, QUIT; and allowed by its user's rules (acl_check). Replies (NOAUTH,
 * NOPERM...) and returns false when not. */
bool session_check(client *c, const cmd_spec *spec, const resp_msg *m);
/* "-ERR wrong number of arguments for 'name' command". */
void session_arity_error(client *c, const resp_arg *name);

/* ---- warmup.c: moving keys to their new owner after a reload ----------- */
/* Opens p's window if its servers or placement differ from `before`. */
void warmup_start(wpool *p, const conf_pool *before);
/* Closes the window once its time is up. */
void warmup_tick(wpool *p, uint64_t now_ms);
void warmup_stop(wpool *p);
static inline bool warmup_active(const wpool *p) { return p->prev_ring != NULL; }
/* For one command: warmup_begin, warmup_key for each key, warmup_end. NULL
 * when out of memory (the command then runs without moving anything).
 * `resume` runs the held command (c->warm_msg) once its keys have moved. */
warm_job *warmup_begin(client *c, void (*resume)(client *c));
void warmup_key(warm_job *job, wpool *p, const void *key, size_t len);
/* True when keys are being moved: m is kept and resumed once they are;
 * false: nothing moved, route m now. */
bool warmup_end(warm_job *job, const resp_msg *m);
/* The client is closing: its pending command is dropped. */
void warmup_detach(client *c);

/* ---- forward.c: one command to its server, or split by server ---------- */
/* "out of memory" / "no server available" in the pool's protocol. */
void reply_oom(client *c);
void reply_no_server(client *c);
/* One command, whole, to server b as a request of its own. `data` is the
 * command as the server must read it; is_oom says it could not be made. */
void forward(client *c, backend *b, const char *data, size_t len, bool is_oom,
             bool is_retrieval, bool is_noreply);
/* The command as a server must read it: as received, or, for an inline
 * command, re-encoded as RESP into tmp (check tmp->is_oom). */
void resp_wire(const resp_msg *m, buf *tmp, const char **data, size_t *len);
void forward_resp(client *c, const resp_msg *m, backend *b);

/* A multi-key command's keys grouped by server, each group in key order;
 * with a budget, a server's keys go in as many fragments as keep each
 * under it. */
typedef struct split {
    uint32_t frag_count;
    size_t budget;          /* bytes a fragment may cost, or 0: no limit */
    uint32_t *key_frag;     /* key -> its fragment (handed over to the req) */
    uint32_t *frag_backend; /* fragment -> backend index */
    uint32_t *frag_first;   /* fragment -> its first key */
    uint32_t *frag_last;    /* fragment -> its last key so far */
    size_t *frag_cost;      /* fragment -> bytes so far */
    uint32_t *next_key;     /* key -> the next key of its fragment, or UINT32_MAX */
    uint32_t *frag_of;      /* backend index -> its open fragment, or UINT32_MAX */
    /* redis-cluster: a node takes a multi-key command only within one
     * slot, so fragments go by slot: an open-addressing table of slot + 1
     * -> its fragment (group_cap a power of two). */
    uint32_t *group_slot, *group_frag;
    size_t group_cap;
} split;

/* Returns false when out of memory (s is then freed). */
bool split_init(split *s, const wpool *p, size_t key_count, size_t budget);
void split_free(split *s);
/* Key i (keys are added in order) belongs to server b; it costs `cost`
 * bytes of its fragment, which starts at `base` bytes. */
void split_add(split *s, uint32_t i, const backend *b, size_t base, size_t cost);
/* The same in a redis-cluster pool: key i of slot `slot` on b. */
void split_add_slot(split *s, uint32_t i, const backend *b, uint32_t slot);
/* The request that gathers a split's fragments, with the key -> fragment
 * map moved into it; NULL (after replying) when out of memory. */
req *split_req(client *c, split *s, req_kind kind, size_t key_count);

/* ---- server.c: server connections --------------------------------------- */
/* b as server cs of pool p (index: its place in p->backends, or its replica
 * slot), at cs's address, its connections not yet open. False when out of
 * memory. */
bool backend_init(backend *b, wpool *p, const conf_server *cs, uint32_t index);
/* The connection a client's fragments to b use (per-client, for ordering). */
bconn *backend_conn_for(backend *b, const client *c);
/* Opens bc if needed. Returns 0, or -errno (then the caller fails its frag). */
int bconn_ensure(bconn *bc);
/* Queues f on bc after its bytes were appended to bc->out. */
void bconn_push(bconn *bc, frag *f, size_t bytes);
/* Writes bc's output. Returns 0, or -1 when bc failed. */
int bconn_flush(bconn *bc);
/* The connection to write fragment f to backend b on, or NULL after failing
 * f (b down under on_failure: error, or no connection). */
bconn *frag_conn(frag *f, backend *b, client *c);
/* After a write on bc: WAIT for f->ack_want replicas (nothing when 0);
 * f then takes two replies (server.c answers f with the write's reply, or
 * -NOREPLICAS). Call between appending the command and bconn_push. */
void bconn_put_wait(bconn *bc, frag *f);
/* Sends `len` bytes as fragment f of its request to backend b, or fails f. */
void frag_send(frag *f, backend *b, client *c, const void *data, size_t len);
/* Fails the requests of p's connections that waited past the timeout. */
void server_expire(wpool *p, uint64_t now_ms);
/* Closes one server's connections (pending requests fail with `why`). */
void backend_close(backend *b, const char *why);
/* The same for every server of a pool. */
void pool_close(wpool *p, const char *why);
/* Connects every server now (preconnect: true). */
void pool_preconnect(wpool *p);
/* Puts SELECT db on bc ahead of what comes next, unless it is on db
 * already (frag_conn does it for each fragment). */
void bconn_use_db(bconn *bc, int db);
/* A command on bc whose reply nobody reads (MULTI ahead of a transaction):
 * `replies` is how many replies it gets (0: one). */
void bconn_swallow(bconn *bc, const char *data, size_t len, uint32_t replies);
/* A server connection of client c's own, to b (not connected yet), or
 * NULL when out of memory or past the descriptors the proxy may use.
 * While c has it, every command of c for b goes on it (frag_conn). */
bconn *bconn_held_new(backend *b, client *c);
/* Closes and frees a held connection (what it carried fails with why). */
void bconn_held_free(bconn *bc, const char *why);
/* No more commands go on bc; it is freed once nothing is in flight. */
void bconn_held_retire(bconn *bc);
/* c's earlier requests on shared connections are answered: its corked
 * held connections may be written. */
void server_uncork(client *c);
/* c's usable held connection to b, or NULL. */
static inline bconn *held_conn_find(const client *c, const backend *b) {
    for (bconn *bc = c->held; bc; bc = bc->owner_next)
        if (bc->b == b && !bc->is_retiring) return bc;
    return NULL;
}

/* ---- health.c: failures, ejection, probes ------------------------------- */
void health_failure(backend *b);
void health_success(backend *b);
/* b, a shard's primary, answered -READONLY: marked down (its requests
 * wait or fail as failover_wait says) and the topology asked again. */
void health_demoted(backend *b);
void health_tick(wpool *p, uint64_t now_ms);
/* --etcd: takes the fleet's verdicts (conf_pool.verdicts) on p's servers:
 * down for every worker of every proxy, and up again, together. */
void health_fleet_sync(wpool *p);
/* Closes a backend's probe, if any (worker shutdown). */
void health_stop(backend *b);
/* True when b is not to be used now (ejected or down). */
static inline bool backend_is_out(const backend *b) { return b->is_ejected || b->is_down; }

/* ---- pool.c: placement --------------------------------------------------- */
/* Rebuilds p's ring from its backends that are not ejected. Returns a
 * chash error code; on error the old ring stays. */
int pool_build_ring(wpool *p);
/* The live backend that owns a key, or NULL when all are ejected; in a
 * redis-cluster pool the shard serving its slot, or NULL when none does. */
backend *pool_pick(wpool *p, const void *key, size_t len);
/* The key's copies: the first `want` (at most CONF_REPLICATION_MAX) distinct
 * servers of its order on p's ring (not ejected; down ones included), as
 * backend indexes into out. Returns how many, 0 when none. */
size_t pool_copies(const wpool *p, const void *key, size_t len, size_t want, uint32_t *out);

/* ---- req.c: requests and ordered replies -------------------------------- */
/* A request at the tail of c's queue with frag_count fragments, or NULL. */
req *req_new(client *c, req_kind kind, uint32_t frag_count);
/* Drops the dispatch guard (or one answered fragment); completes the request
 * when nothing is pending. */
void req_release(req *r);
/* Frees the requests kept for reuse (worker shutdown). */
void req_free_spares(worker *w);
/* A fragment's reply arrived (or its error): hand it to its request. */
void frag_deliver(frag *f, const char *data, size_t len);
/* Answers f with an error (the pool's protocol) and releases it. */
void frag_fail(frag *f, bool is_redis, const char *reason);
/* A reply made by the proxy, queued in order; then_close ends the client.
 * An error reply counts in errors_local. */
void client_reply(client *c, const char *data, size_t len, bool then_close);
void client_reply_str(client *c, const char *s);
/* A reply CLIENT REPLY OFF does not drop: pub/sub confirmations and
 * messages, as redis-server sends them regardless. */
void client_push(client *c, const char *data, size_t len);
/* Replies with b's bytes (or out of memory) and frees b. */
void client_reply_buf(client *c, buf *b);
/* Replies with text as one bulk string (empty too), and frees text. */
void client_reply_text(client *c, buf *text);
/* Adds c to the worker's list of clients to flush. */
void client_schedule(client *c);
/* The client is closing: its requests are freed, or left to finish
 * without it. */
void client_drop_requests(client *c);

/* ---- merge.c: split replies back into one ----------------------------- */
/* SCAN cursors the proxy gives out: the server's cursor shifted left by
 * this many bits, the server's index below (so up to 1024 servers). */
#define SCAN_SERVER_BITS 10
void merge_reply(req *r);

/* ---- mcmerge.c: memcached replies from every server, and quiet ones ---- */
/* REQ_MC_SAME, REQ_MC_STATS and REQ_MC_QUIET (merge_reply hands them on). */
void mc_merge_reply(req *r);

/* ---- infomerge.c: INFO over the servers -------------------------------- */
/* A piece of one server's reply; p NULL: the server has no such field. */
typedef struct info_val {
    const char *p;
    size_t len;
} info_val;
/* The text of a bulk string reply, or false. */
bool info_bulk_text(const buf *b, info_val *text);
/* The servers' INFO texts (one per server) merged into out. Returns false
 * when out of memory. */
bool info_merge(size_t servers, const info_val *texts, buf *out);

/* ---- reload.c: live reconfiguration ------------------------------------ */
/* Reads the configuration file again; if it is valid and keeps every pool's
 * name, listen address and protocol, publishes it for the workers and
 * writes the plan (per pool: servers before and after, hash ranges and
 * share of the key space that change owner) to msg. Returns 0 (also when
 * the file is unchanged: nothing happens), -1 with the reason in msg (the
 * old configuration stays), or -2 when the last reload was too recent.
 * Thread-safe. */
int proxy_reload(proxy *px, char *msg, size_t msg_len);
/* Whether `now` may replace the configuration in force (the same pools,
 * names, listen addresses and protocols): 0, or -1 and why in msg. */
int reload_check(proxy *px, const conf *now, char *msg, size_t msg_len);
/*
 * reload_publish - makes `now` (taken over, freed on failure) the
 * configuration in force; every worker takes it at its next loop turn.
 * msg gets `what` and each pool's exact plan. Returns 0, or -1 (refused by
 * reload_check, or out of memory) and why in msg. Called by one thread at a
 * time: the reload path, or the fleet's thread (which has no file).
 */
int reload_publish(proxy *px, conf *now, const char *what, char *msg, size_t msg_len);
/* Remembers the configuration file in force (at start), so a reload of
 * the same bytes changes nothing. */
void reload_init(proxy *px);
/* Replaced configurations that no worker uses any more are freed. */
void reload_collect(proxy *px);
int reload_start(proxy *px, char *err, size_t err_len);
void reload_stop(proxy *px);

/* ---- log.c -------------------------------------------------------------- */
enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
extern int proxy_log_level;
void proxy_log(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Sends the log to a file instead of stderr. Returns 0 or -errno. */
int proxy_log_open(const char *path);
/* One call site's limit: a zeroed (static) log_limit. */
typedef struct log_limit {
    _Atomic uint64_t next_ms, suppressed;
} log_limit;
/* proxy_log, at most once a second for `lim`; the next line that passes
 * says how many were left out. Thread-safe. */
void proxy_log_limited(log_limit *lim, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- stats.c: the statistics and their port ---------------------------- */
/* The stats port on addr:port, served by a thread of its own. `token`
 * (taken over, wiped when the thread ends; NULL: none) is the bearer token
 * every request must carry; with one, nutcracker's bare connection gets
 * nothing. Returns 0, or -1 with err. */
int stats_start(proxy *px, const char *addr, int port, char *token, char *err, size_t err_len);
void stats_stop(proxy *px);
/* The nutcracker-compatible JSON document, into b. */
void stats_json(const proxy *px, buf *b);
/* Calls fn with the name and value of each of pool `pool`'s statistics,
 * summed over the workers as stats_json has them. Takes px->lock. */
void stats_pool_each(proxy *px, size_t pool, void (*fn)(void *arg, const char *name, uint64_t v),
                     void *arg);

#endif
