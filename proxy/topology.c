/*
 * topology.c - each shard's primary and replicas, as Redis Sentinel and the
 * servers themselves say, for pools with `sentinels:` or `replicas:`.
 *
 * One thread per proxy (not per worker: every worker must agree, and the
 * sentinels need one client, not one per worker) keeps a view per shard:
 * its primary's address, its replicas and how far behind each is. Workers
 * copy a shard's view (topology_shard) when the generation moves
 * (topology_gen) and act on it (worker.c: a new primary's address, replica
 * connections); they never wait for this thread.
 *
 * Sources, strongest first:
 * - the sentinels' events: `+switch-master NAME OLDIP OLDPORT NEWIP NEWPORT`
 *   is applied the moment it arrives, on a subscription to every sentinel
 *   (any one of them may be down); any other event naming a master of ours
 *   asks for a check now;
 * - a check, every topology_check_interval ms and at once when asked: the
 *   first sentinel that answers gives each master's address
 *   (`SENTINEL get-master-addr-by-name`) and replicas (`SENTINEL replicas`),
 *   so a missed event is caught within one interval;
 * - `INFO replication` of each primary and replica: the replicas' lag in
 *   bytes (the primary's master_repl_offset against the replica's
 *   slave_repl_offset) and whether each is linked to its primary. Without
 *   sentinels the primary is the configured server and the replicas are
 *   the listed ones.
 *
 * The thread talks to sentinels and servers with blocking sockets under
 * short timeouts: a silent server costs this thread IO_TIMEOUT_MS, never a
 * worker anything. It copies what it needs from the configuration when
 * the configuration changes, so it never holds a configuration a reload
 * may free.
 */
#define _GNU_SOURCE
#include "proxy.h"

#include "clustermap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 300
/* How often a cluster pool is checked while a primary does not answer. */
#define DEGRADED_CHECK_MS 100
#define IO_TIMEOUT_MS 500
/* Largest reply the thread reads from a sentinel or a server. */
#define REPLY_MAX (4u * 1024u * 1024u)
/* The channels a sentinel publishes its events on that matter here. */
static const char *const events[] = {
    "+switch-master", "+sdown", "-sdown", "+odown", "-odown", "+failover-end",
    "+convert-to-slave", "+slave", "+reboot", "-failover-abort-not-elected",
};
#define EVENT_COUNT (sizeof events / sizeof events[0])

typedef struct topology topology;

/* A connection of this thread: blocking, with timeouts. One that asks a
 * question (t set) applies the sentinels' events while it waits for the
 * answer: a frozen server must not hold back a +switch-master. */
typedef struct mconn {
    int fd;
    struct tls_conn *tls; /* server_tls: over fd */
    buf in;
    resp_reply_parser rr;
    topology *t;
} mconn;

static int poll_events_and(topology *t, int fd, int timeout_ms);

typedef struct mshard {
    char *name;
    topo_shard view;     /* what workers copy (under t->lock) */
    /* A sentinel has named its primary: a change from now on is a
     * failover (the first answer only corrects the configured guess). */
    bool is_known, is_named;
    int64_t epoch; /* the config epoch its primary was last taken at, -1: none */
    uint64_t switches; /* +switch-master events applied */
    conf_addr first;     /* the configured address */
    char first_text[TOPO_ADDR_MAX];
    /* distribution: redis-cluster - the node ids the entry was last given
     * (a shard is known by them: a failover keeps some), and whether a
     * shard ever had it. */
    char ids[CLUSTER_SHARD_NODES_MAX][CLUSTER_ID_MAX + 1];
    bool is_used;
} mshard;

typedef struct mpool {
    char *name;
    bool is_sentinel;
    conf_server *sentinels; /* copies: sa and text */
    size_t sentinel_count;
    size_t good;            /* the sentinel that answered last */
    mconn *subs;            /* a subscription to each sentinel */
    char *user, *pass;      /* the sentinels' credentials, or NULL */
    char *auth;             /* the servers' password (redis_auth), or NULL */
    tls_ctx *tls;           /* server_tls (a reference of the pool's), or NULL */
    char *tls_name;         /* server_tls_name, or NULL: each node's IP address */
    uint64_t max_lag;
    uint64_t interval_ms, next_ms;
    mshard *shards;
    size_t shard_count;
    /* Listed replicas: replica i of shard listed_shard[i]. */
    conf_server *listed;
    size_t *listed_shard;
    size_t listed_count;
    size_t index;           /* in the configuration */
    /* distribution: redis-cluster: the seeds (copies: sa and text), the
     * node that answered last, each slot's shard entry as workers copy it
     * (under t->lock) and its generation. */
    bool is_cluster;
    bool is_slots_cmd; /* the nodes know no CLUSTER SHARDS: CLUSTER SLOTS */
    conf_server *seeds;
    size_t seed_count;
    conf_addr good_node;
    char good_text[TOPO_ADDR_MAX];
    uint16_t *slots;
    uint64_t slots_gen;
    bool is_degraded; /* a shard's primary did not answer the last check */
} mpool;

struct topology {
    proxy *px;
    pthread_t thread;
    bool has_thread;
    pthread_mutex_t lock;   /* views; the pools array while it is replaced */
    mpool *pools;
    size_t pool_count;
    uint64_t conf_gen;
    _Atomic bool recheck;   /* a worker asked for a check now */
};

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- blocking connections ---------------------------------------------- */

static void mconn_close(mconn *c) {
    tls_free(c->tls);
    c->tls = NULL;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    buf_free(&c->in);
    resp_reply_init(&c->rr);
}

/* server_tls: the handshake on c's connected blocking socket (its reads
 * and writes time out). 0, or -EPROTO (logged, with why). */
static int mconn_tls(mconn *c, const conf_addr *a, const mpool *p) {
    char addr[TOPO_ADDR_MAX] = "", name[256];
    char host[INET6_ADDRSTRLEN] = "";
    const void *in = a->sa.ss_family == AF_INET6
                         ? (const void *)&((const struct sockaddr_in6 *)&a->sa)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)&a->sa)->sin_addr;
    inet_ntop(a->sa.ss_family, in, host, sizeof host);
    snprintf(addr, sizeof addr, "%s", host);
    tls_peer_name(p->tls_name, addr, name, sizeof name);
    c->tls = tls_connect(p->tls, c->fd, name);
    int rc = c->tls ? tls_handshake(c->tls) : TLS_FAILED;
    if (rc == 1) return 0;
    static log_limit limit;
    proxy_log_limited(&limit, LOG_WARN, "pool %s: TLS to %s: %s", p->name, addr,
                      !c->tls ? "out of memory" : rc == TLS_AGAIN ? "timed out" : tls_why(c->tls));
    mconn_close(c);
    return -EPROTO;
}

/* Connects within CONNECT_TIMEOUT_MS, with TLS when p has it; reads and
 * writes then time out after IO_TIMEOUT_MS. 0, or -errno. */
static int mconn_open(mconn *c, const conf_addr *a, const mpool *p) {
    *c = (mconn){.fd = -1};
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&a->sa, a->sa_len) != 0) {
        int err = errno;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (err != EINPROGRESS) goto fail_err;
        int n = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
        socklen_t len = sizeof err;
        if (n <= 0) {
            err = n == 0 ? ETIMEDOUT : errno;
            goto fail_err;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err) goto fail_err;
        goto connected;
    fail_err:
        close(fd);
        return -err;
    }
connected:
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {0, IO_TIMEOUT_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    c->fd = fd;
    return p && p->tls ? mconn_tls(c, a, p) : 0;
}

static int mconn_send(mconn *c, const buf *out) {
    size_t at = 0;
    while (at < buf_used(out)) {
        ssize_t n;
        if (c->tls) {
            n = tls_write(c->tls, buf_start(out) + at, buf_used(out) - at);
            if (n == TLS_AGAIN) return -ETIMEDOUT;
            if (n < 0) return -EPROTO;
        } else {
            n = send(c->fd, buf_start(out) + at, buf_used(out) - at, MSG_NOSIGNAL);
        }
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? -errno : -EPIPE;
        at += (size_t)n;
    }
    return 0;
}

static void put_command(buf *out, const char *const *argv, size_t argc) {
    buf_append_header(out, '*', argc);
    for (size_t i = 0; i < argc; i++) buf_append_bulk(out, argv[i], strlen(argv[i]));
}

/* A reply already in c->in: its length, 0 when incomplete, -1 when the
 * bytes are not RESP. */
static int mconn_buffered(mconn *c, size_t *len) {
    if (!buf_used(&c->in)) return 0;
    return resp_reply_next(&c->rr, buf_start(&c->in), buf_used(&c->in), len);
}

/* Reads once what is there (at most a blocking read's worth). 0, or -errno
 * (-EPIPE: closed). */
static int mconn_fill(mconn *c) {
    if (buf_used(&c->in) >= REPLY_MAX) return -EMSGSIZE;
    if (buf_reserve(&c->in, 16384) != 0) return -ENOMEM;
    if (c->tls && tls_pending(c->tls)) {
        /* read already: the socket will not say so */
    } else if (c->t) {
        uint64_t until = mono_ms() + IO_TIMEOUT_MS, now;
        while ((now = mono_ms()) < until)
            if (poll_events_and(c->t, c->fd, (int)(until - now)) > 0) break;
        if (now >= until) return -ETIMEDOUT;
    }
    if (c->tls) {
        ssize_t n = tls_read(c->tls, c->in.data + c->in.len, c->in.cap - c->in.len);
        if (n == 0) return -EPIPE;
        if (n < 0) return n == TLS_AGAIN ? -ETIMEDOUT : -EPROTO;
        c->in.len += (size_t)n;
        return 0;
    }
    ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    if (n == 0) return -EPIPE;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
    c->in.len += (size_t)n;
    return 0;
}

/* The next whole reply, as a cursor over c->in (valid until the next
 * call); 0 or -errno (-EPROTO: not RESP). */
static int mconn_reply(mconn *c, resp_cursor *cur, size_t *consumed) {
    if (*consumed) buf_consume(&c->in, *consumed);
    *consumed = 0;
    for (;;) {
        size_t len = 0;
        int rc = mconn_buffered(c, &len);
        if (rc < 0) return -EPROTO;
        if (rc == 1) {
            *cur = (resp_cursor){buf_start(&c->in), len, 0};
            *consumed = len;
            return 0;
        }
        int e = mconn_fill(c);
        if (e < 0) return e;
    }
}

/* ---- reading replies ---------------------------------------------------- */

static bool item_is(const resp_item *it, const char *s) {
    return it->len == strlen(s) && memcmp(it->s, s, it->len) == 0;
}

static void item_text(const resp_item *it, char *out, size_t cap) {
    size_t n = it->len < cap - 1 ? it->len : cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = it->s[i] >= ' ' && it->s[i] <= '~' ? it->s[i] : '?';
    out[n] = '\0';
}

/* "ip:port" into a node's address (numeric only: Sentinel gives ips).
 * false when it is not one. */
static bool node_set(topo_node *n, const char *ip, const char *port) {
    char *end = NULL;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 1 || p > 65535) return false;
    conf_addr a = {0};
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a.sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a.sa;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        a.sa_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        a.sa_len = sizeof *v6;
    } else {
        return false;
    }
    n->sa = a;
    snprintf(n->addr, sizeof n->addr, strchr(ip, ':') ? "[%s]:%ld" : "%s:%ld", ip, p);
    return true;
}

/* A flat field/value array (SENTINEL replicas' entries): calls fn for
 * each pair of strings, skips any other value. False when the bytes end. */
static bool each_field(resp_cursor *cur, void (*fn)(void *arg, const resp_item *k,
                                                    const resp_item *v),
                       void *arg) {
    resp_item head, k, v;
    size_t at = cur->at;
    if (!resp_cursor_next(cur, &head)) return false;
    if (head.type != '*' && head.type != '%') {
        cur->at = at;
        return resp_cursor_skip(cur);
    }
    for (int64_t i = 0; i < head.count; i += 2) {
        at = cur->at;
        if (!resp_cursor_next(cur, &k)) return false;
        size_t vat = cur->at;
        if (k.count || i + 1 == head.count) { /* not a field name: skip the pair */
            cur->at = at;
            if (!resp_cursor_skip(cur)) return false;
            if (i + 1 < head.count && !resp_cursor_skip(cur)) return false;
            continue;
        }
        if (!resp_cursor_next(cur, &v)) return false;
        if (v.count) {
            cur->at = vat;
            if (!resp_cursor_skip(cur)) return false;
            continue;
        }
        fn(arg, &k, &v);
    }
    return true;
}

/* One of SENTINEL replicas' entries, as it is read. */
typedef struct replica_fields {
    char ip[64], port[8], flags[128], link[16];
} replica_fields;

static void replica_field(void *arg, const resp_item *k, const resp_item *v) {
    replica_fields *r = arg;
    if (item_is(k, "ip")) item_text(v, r->ip, sizeof r->ip);
    else if (item_is(k, "port")) item_text(v, r->port, sizeof r->port);
    else if (item_is(k, "flags")) item_text(v, r->flags, sizeof r->flags);
    else if (item_is(k, "master-link-status")) item_text(v, r->link, sizeof r->link);
}

/* ---- asking the sentinels ----------------------------------------------- */

/* AUTH ahead of the commands in out, when there is a password. */
static void put_auth(buf *out, const char *user, const char *pass) {
    if (!pass) return;
    if (user)
        put_command(out, (const char *[]){"AUTH", user, pass}, 3);
    else
        put_command(out, (const char *[]){"AUTH", pass}, 2);
}

/* The next reply's first value; -1 when the connection failed. */
static int next_reply(mconn *c, size_t *used, resp_cursor *cur, resp_item *head) {
    if (mconn_reply(c, cur, used) != 0) return -1;
    return resp_cursor_next(cur, head) ? 0 : -1;
}

/* A sentinel's answer to get-master-addr-by-name into v->primary: 1, 0
 * when it gave none (a master it does not know, an error), -1 when the
 * connection failed. */
static int read_master(mpool *p, mconn *c, size_t *used, topo_shard *v, const char *from) {
    resp_cursor cur;
    resp_item head, ip, port;
    if (next_reply(c, used, &cur, &head) != 0) return -1;
    if (head.type == '-') {
        char why[200];
        item_text(&head, why, sizeof why);
        static log_limit limit;
        proxy_log_limited(&limit, LOG_WARN, "pool %s: sentinel %s: %s", p->name, from, why);
        return 0;
    }
    if (head.is_null || head.count != 2) return 0;
    char ip_text[64], port_text[8];
    if (!resp_cursor_next(&cur, &ip) || !resp_cursor_next(&cur, &port)) return 0;
    item_text(&ip, ip_text, sizeof ip_text);
    item_text(&port, port_text, sizeof port_text);
    return node_set(&v->primary, ip_text, port_text) ? 1 : 0;
}

/* SENTINEL replicas' answer into v's replicas: as read_master. */
static int read_replicas(mconn *c, size_t *used, topo_shard *v) {
    resp_cursor cur;
    resp_item head;
    if (next_reply(c, used, &cur, &head) != 0) return -1;
    if (head.type != '*') return 0;
    v->replica_count = 0;
    for (int64_t i = 0; i < head.count; i++) {
        replica_fields r = {0};
        if (!each_field(&cur, replica_field, &r)) return 0;
        if (v->replica_count == CONF_REPLICAS_MAX) continue;
        topo_node *n = &v->replicas[v->replica_count];
        *n = (topo_node){.lag = -1};
        if (!node_set(n, r.ip, r.port)) continue;
        /* Down or disconnected for Sentinel, or not linked to its primary:
         * not a copy to read. INFO may still say more below. */
        n->is_usable = !strstr(r.flags, "s_down") && !strstr(r.flags, "o_down") &&
                       !strstr(r.flags, "disconnected") && strcmp(r.link, "ok") == 0;
        v->replica_count++;
    }
    return 1;
}

/* SENTINEL master's answer: the master's config epoch, which each failover
 * raises (-1 when the answer has none). */
static void epoch_field(void *arg, const resp_item *k, const resp_item *v) {
    if (!item_is(k, "config-epoch")) return;
    char text[24];
    item_text(v, text, sizeof text);
    *(int64_t *)arg = strtoll(text, NULL, 10);
}

static int read_epoch(mconn *c, size_t *used, int64_t *epoch) {
    resp_cursor cur;
    if (mconn_reply(c, &cur, used) != 0) return -1;
    *epoch = -1;
    return each_field(&cur, epoch_field, epoch) ? 1 : 0;
}

/* Asks every sentinel, from the one that answered last, for each shard's
 * master (get-master-addr-by-name), its config epoch (SENTINEL master) and
 * replicas. A shard takes the answer with the highest epoch, and never one
 * older than it already took (or than a +switch-master it applied): a
 * sentinel that has not yet heard of a failover must not move the primary
 * back to the demoted server. False when no sentinel answered. */
static bool ask_sentinels(topology *t, mpool *p, topo_shard *views) {
    buf out = {0};
    put_auth(&out, p->user, p->pass);
    for (size_t s = 0; s < p->shard_count; s++) {
        const char *name = p->shards[s].name;
        put_command(&out, (const char *[]){"SENTINEL", "get-master-addr-by-name", name}, 3);
        put_command(&out, (const char *[]){"SENTINEL", "master", name}, 3);
        put_command(&out, (const char *[]){"SENTINEL", "replicas", name}, 3);
    }
    topo_shard *best = calloc(p->shard_count + 1, sizeof *best);
    int64_t *best_epoch = calloc(p->shard_count + 1, sizeof *best_epoch);
    size_t answered = 0;
    char failures[512] = "";
    size_t flen = 0;
    for (size_t s = 0; best_epoch && s < p->shard_count; s++) best_epoch[s] = -2;
    for (size_t k = 0; best && best_epoch && k < p->sentinel_count && !out.is_oom; k++) {
        size_t at = (p->good + k) % p->sentinel_count;
        const conf_server *sn = &p->sentinels[at];
        mconn c;
        int rc = mconn_open(&c, &sn->addr, p);
        c.t = t;
        if (rc == 0) rc = mconn_send(&c, &out);
        size_t used = 0;
        char why_text[200];
        const char *why = NULL;
        if (rc == 0 && p->pass) {
            resp_cursor cur;
            resp_item it;
            rc = next_reply(&c, &used, &cur, &it);
            if (rc == 0 && it.type == '-') {
                item_text(&it, why_text, sizeof why_text);
                why = why_text; /* its words, never the password */
            }
        }
        bool is_whole = rc == 0 && !why;
        for (size_t s = 0; is_whole && s < p->shard_count; s++) {
            topo_shard v = views[s];
            int64_t epoch = -1;
            int got = read_master(p, &c, &used, &v, sn->text);
            int got_epoch = got < 0 ? -1 : read_epoch(&c, &used, &epoch);
            if (got_epoch < 0 || read_replicas(&c, &used, &v) < 0)
                is_whole = false;
            else if (got > 0 && epoch > best_epoch[s]) {
                best[s] = v;
                best_epoch[s] = epoch;
            }
        }
        if (is_whole) {
            if (!answered++) p->good = at;
        } else if (flen < sizeof failures) {
            int n = snprintf(failures + flen, sizeof failures - flen, "%s%s: %s",
                             flen ? "; " : "", sn->text,
                             why ? why : strerror(rc < 0 ? -rc : EPROTO));
            flen += n > 0 ? (size_t)n : 0;
        }
        mconn_close(&c);
    }
    for (size_t s = 0; best && best_epoch && s < p->shard_count; s++) {
        mshard *sh = &p->shards[s];
        if (best_epoch[s] < -1 || best_epoch[s] < sh->epoch) continue; /* none, or stale */
        views[s] = best[s];
        sh->epoch = best_epoch[s];
        sh->is_named = true;
    }
    free(best);
    free(best_epoch);
    buf_free(&out);
    if (!answered) {
        static log_limit limit;
        proxy_log_limited(&limit, LOG_WARN,
                          "pool %s: no sentinel answered (%s); keeping the last known primaries",
                          p->name, failures);
    }
    return answered > 0;
}

/* ---- asking the servers ------------------------------------------------- */

/* INFO replication of a server: its role, and its replication offset (a
 * primary's master_repl_offset, a replica's slave_repl_offset); for a
 * replica whether its link to the primary is up. False when it did not
 * answer. */
typedef struct repl_info {
    bool is_primary;
    bool is_linked;
    long long offset;
} repl_info;

static bool info_line(const char *text, size_t len, const char *field, char *out, size_t cap) {
    size_t flen = strlen(field);
    for (size_t at = 0; at < len;) {
        const char *eol = memchr(text + at, '\n', len - at);
        size_t end = eol ? (size_t)(eol - text) : len;
        if (end - at > flen && text[at + flen] == ':' && memcmp(text + at, field, flen) == 0) {
            size_t n = end - at - flen - 1;
            if (n && text[at + flen + n] == '\r') n--;
            n = n < cap - 1 ? n : cap - 1;
            memcpy(out, text + at + flen + 1, n);
            out[n] = '\0';
            return true;
        }
        at = end + 1;
    }
    return false;
}

static bool ask_info(topology *t, const mpool *p, const conf_addr *a, repl_info *ri) {
    mconn c;
    if (mconn_open(&c, a, p) != 0) return false;
    c.t = t;
    buf out = {0};
    put_auth(&out, NULL, p->auth);
    put_command(&out, (const char *[]){"INFO", "replication"}, 2);
    bool ok = !out.is_oom && mconn_send(&c, &out) == 0;
    size_t used = 0;
    resp_cursor cur;
    resp_item it;
    if (ok && p->auth) ok = mconn_reply(&c, &cur, &used) == 0;
    ok = ok && mconn_reply(&c, &cur, &used) == 0 && resp_cursor_next(&cur, &it) &&
         it.type == '$' && !it.is_null;
    char role[16], value[32];
    if (ok && info_line(it.s, it.len, "role", role, sizeof role)) {
        ri->is_primary = strcmp(role, "master") == 0;
        ri->is_linked = info_line(it.s, it.len, "master_link_status", value, sizeof value) &&
                        strcmp(value, "up") == 0;
        ri->offset = -1;
        if (info_line(it.s, it.len, ri->is_primary ? "master_repl_offset" : "slave_repl_offset",
                      value, sizeof value))
            ri->offset = strtoll(value, NULL, 10);
    } else {
        ok = false;
    }
    buf_free(&out);
    mconn_close(&c);
    return ok;
}

/* Each replica's lag against its primary; one that is unreachable, not
 * linked, or further behind than max_lag is not usable. Events that
 * arrive meanwhile are applied while each answer is awaited (mconn.t). */
static void measure(topology *t, const mpool *p, topo_shard *v) {
    repl_info pri = {0};
    bool has_primary = v->primary.addr[0] && ask_info(t, p, &v->primary.sa, &pri);
    v->primary_answers = has_primary;
    v->primary_is_replica = has_primary && !pri.is_primary;
    for (uint32_t i = 0; i < v->replica_count; i++) {
        topo_node *n = &v->replicas[i];
        repl_info ri = {0};
        /* One that answers as a primary is being promoted: still a copy
         * to read while the old primary is down. */
        n->answers = ask_info(t, p, &n->sa, &ri);
        if (!n->answers || ri.is_primary || !ri.is_linked) {
            n->is_usable = false;
            n->lag = -1;
            continue;
        }
        n->lag = has_primary && pri.offset >= 0 && ri.offset >= 0
                     ? (pri.offset > ri.offset ? pri.offset - ri.offset : 0)
                     : -1;
        if (n->lag < 0 || (uint64_t)n->lag > p->max_lag) n->is_usable = false;
    }
}

/* ---- asking a cluster ---------------------------------------------------- */

/* The map as `a` says it: 0, or -1 with why. */
static int cluster_read(topology *t, mpool *p, const conf_addr *a, cluster_map *m, char *why,
                        size_t why_len) {
    for (int attempt = 0; attempt < 2; attempt++) {
        mconn c;
        int rc = mconn_open(&c, a, p);
        if (rc != 0) {
            snprintf(why, why_len, "%s", strerror(-rc));
            return -1;
        }
        c.t = t;
        buf out = {0};
        put_auth(&out, NULL, p->auth);
        put_command(&out, (const char *[]){"CLUSTER", p->is_slots_cmd ? "SLOTS" : "SHARDS"}, 2);
        rc = out.is_oom ? -ENOMEM : mconn_send(&c, &out);
        buf_free(&out);
        size_t used = 0;
        resp_cursor cur;
        resp_item it;
        if (rc == 0 && p->auth && (rc = next_reply(&c, &used, &cur, &it)) == 0 && it.type == '-') {
            item_text(&it, why, why_len);
            mconn_close(&c);
            return -1;
        }
        if (rc == 0) rc = mconn_reply(&c, &cur, &used);
        if (rc != 0) {
            snprintf(why, why_len, "%s", strerror(rc < 0 ? -rc : EPROTO));
            mconn_close(&c);
            return -1;
        }
        rc = cluster_map_parse(cur.p, cur.n, !p->is_slots_cmd, m, why, why_len);
        mconn_close(&c);
        /* Before Redis 7: no CLUSTER SHARDS; ask the same node again. */
        if (rc != 0 && !p->is_slots_cmd && strstr(why, "nknown subcommand")) {
            cluster_map_free(m);
            p->is_slots_cmd = true;
            continue;
        }
        return rc;
    }
    return -1;
}

static bool ids_share(const mshard *sh, const cluster_shard *cs) {
    for (uint32_t i = 0; i < cs->node_count; i++)
        for (uint32_t j = 0; j < CLUSTER_SHARD_NODES_MAX && sh->ids[j][0]; j++)
            if (strcmp(sh->ids[j], cs->nodes[i].id) == 0) return true;
    return false;
}

/* Shard cs of the map into entry e's view. */
static void cluster_view(mshard *sh, topo_shard *v, const cluster_shard *cs) {
    char port[8];
    if (cs->primary >= 0) {
        const cluster_node *n = &cs->nodes[cs->primary];
        snprintf(port, sizeof port, "%d", n->port);
        topo_node pri = v->primary;
        if (node_set(&pri, n->ip, port)) v->primary = pri;
    }
    v->replica_count = 0;
    memset(sh->ids, 0, sizeof sh->ids);
    for (uint32_t i = 0; i < cs->node_count; i++) {
        const cluster_node *n = &cs->nodes[i];
        snprintf(sh->ids[i], sizeof sh->ids[i], "%s", n->id);
        if ((int)i == cs->primary || n->is_failed || v->replica_count == CONF_REPLICAS_MAX)
            continue;
        topo_node *r = &v->replicas[v->replica_count];
        *r = (topo_node){.lag = -1, .is_usable = true, .answers = true};
        snprintf(port, sizeof port, "%d", n->port);
        if (node_set(r, n->ip, port)) v->replica_count++;
    }
    sh->is_used = sh->is_named = true;
}

/*
 * The slot map from the first node that answers: the one that answered
 * last, the shards' primaries, then the seeds. Each shard of the map
 * takes the entry that knew one of its nodes (a failover keeps the
 * replica it promotes), else an entry never used; a shard without slots
 * that shares its nodes with one that has them (a failed primary whose
 * replica took over) is left out. Slots' entries into `slots`.
 */
static bool ask_cluster(topology *t, mpool *p, topo_shard *views) {
    size_t cap = 1 + p->shard_count + p->seed_count, n = 0;
    conf_server *cand = calloc(cap, sizeof *cand);
    uint16_t *slots = malloc(CLUSTER_SLOT_COUNT * sizeof *slots);
    cluster_map m = {0};
    bool is_read = false;
    char failures[512] = "";
    size_t flen = 0;
    if (!cand || !slots) goto done;
    if (p->good_text[0]) cand[n++] = (conf_server){.addr = p->good_node, .text = p->good_text};
    for (size_t s = 0; s < p->shard_count; s++)
        if (views[s].primary.addr[0])
            cand[n++] = (conf_server){.addr = views[s].primary.sa, .text = views[s].primary.addr};
    for (size_t i = 0; i < p->seed_count; i++) cand[n++] = p->seeds[i];
    for (size_t i = 0; i < n && !is_read; i++) {
        char why[200];
        if (i && strcmp(cand[i].text, cand[0].text) == 0 && p->good_text[0]) continue;
        if (cluster_read(t, p, &cand[i].addr, &m, why, sizeof why) == 0) {
            is_read = true;
            p->good_node = cand[i].addr;
            snprintf(p->good_text, sizeof p->good_text, "%s", cand[i].text);
            break;
        }
        cluster_map_free(&m);
        if (flen < sizeof failures) {
            int w = snprintf(failures + flen, sizeof failures - flen, "%s%s: %s",
                             flen ? "; " : "", cand[i].text, why);
            flen += w > 0 ? (size_t)w : 0;
        }
    }
    if (!is_read) {
        static log_limit limit;
        proxy_log_limited(&limit, LOG_WARN, "pool %s: no cluster node answered (%s); keeping "
                          "the last slot map", p->name, failures);
        goto done;
    }
    bool *is_taken = calloc(p->shard_count + 1, sizeof *is_taken);
    uint16_t *entry_of = calloc(m.shard_count + 1, sizeof *entry_of);
    if (!is_taken || !entry_of) {
        free(is_taken);
        free(entry_of);
        is_read = false;
        goto done;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < m.shard_count; k++) {
            const cluster_shard *cs = &m.shards[k];
            if ((pass == 0) != (cs->slot_count > 0)) continue;
            entry_of[k] = CLUSTER_NO_SHARD;
            /* A primary that failed and lost its slots to its replica
             * stays listed on its own until it comes back (as a replica):
             * not a shard. */
            bool is_alive = false;
            for (uint32_t i = 0; i < cs->node_count; i++) is_alive |= !cs->nodes[i].is_failed;
            if (!cs->slot_count && !is_alive) continue;
            size_t e = 0;
            bool is_known = false;
            for (; e < p->shard_count; e++)
                if (ids_share(&p->shards[e], cs)) {
                    is_known = true;
                    break;
                }
            if (is_known && is_taken[e]) continue; /* a failed primary's leftover */
            if (!is_known)
                for (e = 0; e < p->shard_count && p->shards[e].is_used; e++) {
                }
            if (e == p->shard_count) {
                static log_limit limit;
                proxy_log_limited(&limit, LOG_WARN, "pool %s: the cluster has more shards than "
                                  "cluster_max_shards (%zu): some slots are not served",
                                  p->name, p->shard_count);
                continue;
            }
            is_taken[e] = true;
            entry_of[k] = (uint16_t)e;
            cluster_view(&p->shards[e], &views[e], cs);
        }
    }
    for (size_t k = 0; k < CLUSTER_SLOT_COUNT; k++)
        slots[k] = m.slot_shard[k] == CLUSTER_NO_SHARD ? CLUSTER_NO_SHARD
                                                       : entry_of[m.slot_shard[k]];
    free(is_taken);
    free(entry_of);
    if (memcmp(slots, p->slots, CLUSTER_SLOT_COUNT * sizeof *slots) != 0) {
        pthread_mutex_lock(&t->lock);
        memcpy(p->slots, slots, CLUSTER_SLOT_COUNT * sizeof *slots);
        p->slots_gen++;
        pthread_mutex_unlock(&t->lock);
        atomic_fetch_add(&t->px->topo_gen, 1);
    }
done:
    cluster_map_free(&m);
    free(cand);
    free(slots);
    return is_read;
}

/* ---- publishing -------------------------------------------------------- */

static bool node_same(const topo_node *a, const topo_node *b) {
    return strcmp(a->addr, b->addr) == 0 && a->lag == b->lag && a->is_usable == b->is_usable &&
           a->answers == b->answers;
}

static bool shard_same(const topo_shard *a, const topo_shard *b) {
    if (!node_same(&a->primary, &b->primary) || a->replica_count != b->replica_count ||
        a->failovers != b->failovers || a->primary_answers != b->primary_answers ||
        a->primary_is_replica != b->primary_is_replica)
        return false;
    for (uint32_t i = 0; i < a->replica_count; i++)
        if (!node_same(&a->replicas[i], &b->replicas[i])) return false;
    return true;
}

static void publish(topology *t, mpool *p, size_t s, const topo_shard *v) {
    mshard *sh = &p->shards[s];
    topo_shard next = *v;
    bool is_moved = sh->view.primary.addr[0] && strcmp(sh->view.primary.addr, v->primary.addr);
    if (is_moved) {
        next.failovers = sh->view.failovers + sh->is_known;
        proxy_log(LOG_WARN, "pool %s: shard %s: the primary is %s (%s %s)", p->name, sh->name,
                  v->primary.addr, sh->is_known ? "was" : "configured", sh->view.primary.addr);
    }
    sh->is_known |= sh->is_named;
    if (shard_same(&next, &sh->view)) return;
    pthread_mutex_lock(&t->lock);
    sh->view = next;
    pthread_mutex_unlock(&t->lock);
    atomic_fetch_add(&t->px->topo_gen, 1);
}

static void check_pool(topology *t, mpool *p) {
    topo_shard *views = calloc(p->shard_count ? p->shard_count : 1, sizeof *views);
    uint64_t *switches = calloc(p->shard_count ? p->shard_count : 1, sizeof *switches);
    if (!views || !switches) {
        free(views);
        free(switches);
        return;
    }
    /* Events are applied while answers are awaited, from the sentinels'
     * on: the count is taken with the views it guards. */
    for (size_t s = 0; s < p->shard_count; s++) {
        views[s] = p->shards[s].view;
        switches[s] = p->shards[s].switches;
    }
    if (p->is_cluster) {
        ask_cluster(t, p, views);
    } else if (p->is_sentinel) {
        ask_sentinels(t, p, views);
    } else {
        for (size_t s = 0; s < p->shard_count; s++) {
            views[s].replica_count = 0;
            for (size_t i = 0; i < p->listed_count; i++) {
                if (p->listed_shard[i] != s) continue;
                topo_node *n = &views[s].replicas[views[s].replica_count++];
                *n = (topo_node){.sa = p->listed[i].addr, .is_usable = true, .lag = -1};
                snprintf(n->addr, sizeof n->addr, "%s", p->listed[i].text);
            }
        }
    }
    p->is_degraded = false;
    for (size_t s = 0; s < p->shard_count; s++) {
        measure(t, p, &views[s]);
        p->is_degraded |= views[s].primary.addr[0] && !views[s].primary_answers;
        /* A +switch-master applied while this check ran is newer than
         * anything the check read: the next check starts from it. */
        if (p->shards[s].switches == switches[s]) publish(t, p, s, &views[s]);
    }
    free(views);
    free(switches);
}

/* ---- events -------------------------------------------------------------- */

static void subscribe(mpool *p, size_t k) {
    mconn *c = &p->subs[k];
    if (mconn_open(c, &p->sentinels[k].addr, p) != 0) return;
    buf out = {0};
    put_auth(&out, p->user, p->pass);
    buf_append_header(&out, '*', 1 + EVENT_COUNT);
    buf_append_bulk(&out, "SUBSCRIBE", 9);
    for (size_t i = 0; i < EVENT_COUNT; i++) buf_append_bulk(&out, events[i], strlen(events[i]));
    if (out.is_oom || mconn_send(c, &out) != 0) mconn_close(c);
    buf_free(&out);
}

static mshard *shard_named(mpool *p, const char *name, size_t len) {
    for (size_t s = 0; s < p->shard_count; s++)
        if (strlen(p->shards[s].name) == len && memcmp(p->shards[s].name, name, len) == 0)
            return &p->shards[s];
    return NULL;
}

/* One message a sentinel published: +switch-master moves a primary now;
 * any event about one of our masters brings the next check forward. */
static void on_event(topology *t, mpool *p, const char *channel, size_t clen, const char *text,
                     size_t len) {
    char msg[512];
    size_t n = len < sizeof msg - 1 ? len : sizeof msg - 1;
    memcpy(msg, text, n);
    msg[n] = '\0';
    char *words[8] = {0};
    size_t count = 0;
    for (char *save = NULL, *w = strtok_r(msg, " ", &save); w && count < 8;
         w = strtok_r(NULL, " ", &save))
        words[count++] = w;
    bool is_switch = clen == 14 && memcmp(channel, "+switch-master", 14) == 0;
    /* "+switch-master NAME OLDIP OLDPORT NEWIP NEWPORT"; the others say
     * "master NAME ip port" or "slave ip:port ip port @ NAME ip port". */
    const char *master = is_switch ? words[0]
                         : count >= 2 && strcmp(words[0], "master") == 0 ? words[1]
                         : count >= 6 && strcmp(words[4], "@") == 0      ? words[5]
                                                                          : NULL;
    mshard *sh = master ? shard_named(p, master, strlen(master)) : NULL;
    if (!sh) return;
    proxy_log(LOG_INFO, "pool %s: sentinel event %.*s %.*s", p->name, (int)clen, channel,
              (int)len, text);
    topo_shard v = sh->view;
    if (is_switch && count == 5 && node_set(&v.primary, words[3], words[4]) &&
        strcmp(v.primary.addr, sh->view.primary.addr) != 0) {
        sh->is_known = sh->is_named = true;
        /* The failover raised the master's epoch: an answer from before
         * it is refused from now on. Only a move raises it: every
         * sentinel publishes the same switch, and counting each would
         * refuse the answers of the epoch the failover really took. */
        sh->epoch = sh->epoch < 0 ? 0 : sh->epoch + 1;
        v.replica_count = 0; /* the next check says which replicas follow it */
        publish(t, p, (size_t)(sh - p->shards), &v);
        sh->switches++;
    }
    p->next_ms = 0;
}

/* What the subscription to sentinel k has sent. */
static void read_events(topology *t, mpool *p, size_t k) {
    mconn *c = &p->subs[k];
    if (mconn_fill(c) != 0) {
        mconn_close(c);
        return;
    }
    /* TLS may hold more records than one read took: poll will not say. */
    while (c->tls && tls_pending(c->tls)) {
        if (mconn_fill(c) != 0) {
            mconn_close(c);
            return;
        }
    }
    size_t len;
    int rc;
    while ((rc = mconn_buffered(c, &len)) == 1) {
        resp_cursor cur = {buf_start(&c->in), len, 0};
        resp_item head, kind, channel, text;
        if (resp_cursor_next(&cur, &head) && (head.type == '*' || head.type == '>') &&
            head.count == 3 && resp_cursor_next(&cur, &kind) && item_is(&kind, "message") &&
            resp_cursor_next(&cur, &channel) && resp_cursor_next(&cur, &text) &&
            !channel.count && !text.count)
            on_event(t, p, channel.s, channel.len, text.s, text.len);
        else if (head.type == '-') {
            char why[200];
            item_text(&head, why, sizeof why);
            static log_limit limit;
            proxy_log_limited(&limit, LOG_WARN, "pool %s: sentinel %s refused to subscribe: %s",
                              p->name, p->sentinels[k].text, why);
        }
        buf_consume(&c->in, len);
    }
    if (rc < 0) mconn_close(c);
}

/* Waits up to timeout_ms for what the sentinels publish and applies it;
 * with fd >= 0, returns 1 as soon as fd is readable (0: the time is up). */
static int poll_events_and(topology *t, int fd, int timeout_ms) {
    struct pollfd pfd[65];
    size_t who[65][2], n = 0;
    if (fd >= 0) pfd[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
    for (size_t i = 0; i < t->pool_count; i++) {
        mpool *p = &t->pools[i];
        for (size_t k = 0; k < p->sentinel_count && n < 65; k++) {
            if (p->subs[k].fd < 0) continue;
            pfd[n] = (struct pollfd){.fd = p->subs[k].fd, .events = POLLIN};
            who[n][0] = i;
            who[n][1] = k;
            n++;
        }
    }
    int ready = poll(pfd, (nfds_t)n, timeout_ms);
    for (size_t j = fd >= 0; ready > 0 && j < n; j++)
        if (pfd[j].revents) read_events(t, &t->pools[who[j][0]], who[j][1]);
    return fd >= 0 && ready > 0 && pfd[0].revents ? 1 : 0;
}

static void poll_events(topology *t, int timeout_ms) { poll_events_and(t, -1, timeout_ms); }


/* ---- the configuration's pools ----------------------------------------- */

static void mpool_free(mpool *p) {
    for (size_t k = 0; p->subs && k < p->sentinel_count; k++) mconn_close(&p->subs[k]);
    free(p->subs);
    for (size_t k = 0; k < p->sentinel_count; k++) {
        free(p->sentinels[k].text);
    }
    free(p->sentinels);
    for (size_t i = 0; i < p->listed_count; i++) free(p->listed[i].text);
    free(p->listed);
    free(p->listed_shard);
    for (size_t s = 0; s < p->shard_count; s++) free(p->shards[s].name);
    for (size_t i = 0; i < p->seed_count; i++) free(p->seeds[i].text);
    free(p->seeds);
    free(p->slots);
    free(p->shards);
    free(p->name);
    free(p->user);
    free(p->pass);
    free(p->auth);
    tls_ctx_free(p->tls);
    free(p->tls_name);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* p from configuration pool cp; shards keep what `before` knew of them (a
 * reload). False when out of memory. */
static bool mpool_init(mpool *p, const conf_pool *cp, size_t index, const mpool *before) {
    *p = (mpool){.index = index, .is_sentinel = cp->sentinel_count > 0,
                 .is_cluster = conf_pool_is_cluster(cp),
                 .max_lag = cp->replica_max_lag,
                 .interval_ms = (uint64_t)cp->topology_check_interval_ms};
    p->name = strdup(cp->name);
    p->user = dup_or_null(cp->sentinel_username);
    p->pass = dup_or_null(cp->sentinel_password);
    p->auth = dup_or_null(cp->redis_auth);
    /* Sentinels, servers and cluster nodes alike (server_tls). */
    p->tls = tls_ctx_ref(cp->server_tls_ctx);
    p->tls_name = dup_or_null(cp->server_tls_name);
    if (cp->server_tls_name && !p->tls_name) return false;
    p->sentinels = calloc(cp->sentinel_count + 1, sizeof *p->sentinels);
    p->subs = calloc(cp->sentinel_count + 1, sizeof *p->subs);
    p->shards = calloc(cp->server_count + 1, sizeof *p->shards);
    p->listed = calloc(cp->replica_count + 1, sizeof *p->listed);
    p->listed_shard = calloc(cp->replica_count + 1, sizeof *p->listed_shard);
    if (!p->name || !p->sentinels || !p->subs || !p->shards || !p->listed || !p->listed_shard ||
        (cp->sentinel_username && !p->user) || (cp->sentinel_password && !p->pass) ||
        (cp->redis_auth && !p->auth))
        return false;
    if (p->is_cluster) {
        p->seeds = calloc(cp->seed_count + 1, sizeof *p->seeds);
        p->slots = malloc(CLUSTER_SLOT_COUNT * sizeof *p->slots);
        if (!p->seeds || !p->slots) return false;
        for (size_t k = 0; k < CLUSTER_SLOT_COUNT; k++)
            p->slots[k] = before && before->slots ? before->slots[k] : CLUSTER_NO_SHARD;
        if (before) {
            p->slots_gen = before->slots_gen;
            p->is_slots_cmd = before->is_slots_cmd;
            p->good_node = before->good_node;
            memcpy(p->good_text, before->good_text, sizeof p->good_text);
        }
        for (size_t k = 0; k < cp->seed_count; k++, p->seed_count++) {
            p->seeds[k].addr = cp->seeds[k].addr;
            p->seeds[k].text = strdup(cp->seeds[k].text);
            if (!p->seeds[k].text) return false;
        }
    }
    for (size_t k = 0; k < cp->sentinel_count; k++, p->sentinel_count++) {
        p->subs[k].fd = -1;
        p->sentinels[k].addr = cp->sentinels[k].addr;
        p->sentinels[k].text = strdup(cp->sentinels[k].text);
        if (!p->sentinels[k].text) return false;
    }
    for (size_t s = 0; s < cp->server_count; s++, p->shard_count++) {
        mshard *sh = &p->shards[s];
        const conf_server *cs = &cp->servers[s];
        sh->name = strdup(cs->name);
        if (!sh->name) return false;
        sh->first = cs->addr;
        snprintf(sh->first_text, sizeof sh->first_text, "%s:%d", cs->host, cs->port);
        const mshard *old = before ? shard_named((mpool *)before, cs->name, strlen(cs->name))
                                   : NULL;
        sh->epoch = -1;
        if (old && (p->is_sentinel || p->is_cluster)) {
            sh->view = old->view;
            sh->is_known = old->is_known;
            sh->is_named = old->is_named;
            sh->epoch = old->epoch;
            memcpy(sh->ids, old->ids, sizeof sh->ids);
            sh->is_used = old->is_used;
        } else if (p->is_cluster) {
            sh->view.primary = (topo_node){.lag = -1}; /* none until the map names one */
        } else {
            sh->view.primary = (topo_node){.sa = cs->addr, .lag = -1};
            snprintf(sh->view.primary.addr, sizeof sh->view.primary.addr, "%s", sh->first_text);
        }
    }
    for (size_t i = 0; i < cp->replica_count; i++, p->listed_count++) {
        p->listed[i].addr = cp->replicas[i].addr;
        p->listed[i].text = strdup(cp->replicas[i].text);
        if (!p->listed[i].text) return false;
        char *sp = strpbrk(p->listed[i].text, " \t");
        if (sp) *sp = '\0'; /* the address part */
        for (size_t s = 0; s < cp->server_count; s++)
            if (strcmp(cp->servers[s].name, cp->replicas[i].name) == 0) p->listed_shard[i] = s;
    }
    return true;
}

/* Takes the configuration in force if it changed. */
static void sync_conf(topology *t) {
    proxy *px = t->px;
    uint64_t gen = atomic_load(&px->conf_gen);
    if (t->pools && gen == t->conf_gen) return;
    pthread_mutex_lock(&px->lock);
    const conf *cf = px->cf;
    size_t count = 0;
    for (size_t i = 0; i < cf->pool_count; i++) count += conf_pool_has_topology(&cf->pools[i]);
    mpool *fresh = calloc(count + 1, sizeof *fresh);
    size_t built = 0;
    bool ok = fresh != NULL;
    for (size_t i = 0; ok && i < cf->pool_count; i++) {
        if (!conf_pool_has_topology(&cf->pools[i])) continue;
        const mpool *before = NULL;
        for (size_t j = 0; j < t->pool_count; j++)
            if (strcmp(t->pools[j].name, cf->pools[i].name) == 0) before = &t->pools[j];
        ok = mpool_init(&fresh[built], &cf->pools[i], i, before);
        built++;
    }
    pthread_mutex_unlock(&px->lock);
    if (!ok) {
        for (size_t i = 0; fresh && i < built; i++) mpool_free(&fresh[i]);
        free(fresh);
        proxy_log(LOG_ERROR, "topology: out of memory taking the new configuration");
        return;
    }
    pthread_mutex_lock(&t->lock);
    mpool *old = t->pools;
    size_t old_count = t->pool_count;
    t->pools = fresh;
    t->pool_count = built;
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < old_count; i++) mpool_free(&old[i]);
    free(old);
    t->conf_gen = gen;
    atomic_fetch_add(&px->topo_gen, 1);
}

/* ---- the thread ---------------------------------------------------------- */

static void *topology_main(void *arg) {
    topology *t = arg;
    while (!proxy_stop) {
        sync_conf(t);
        uint64_t now = mono_ms();
        bool is_asked = atomic_exchange(&t->recheck, false);
        for (size_t i = 0; i < t->pool_count; i++) {
            mpool *p = &t->pools[i];
            if (!is_asked && now < p->next_ms) continue;
            /* Before: an event during the check asks for the next at once. */
            p->next_ms = now + p->interval_ms;
            check_pool(t, p);
            /* A cluster promotes a dead primary's replica on its own, and
             * tells nobody: ask often until every primary answers. */
            if (p->is_cluster && p->is_degraded && p->interval_ms > DEGRADED_CHECK_MS)
                p->next_ms = now + DEGRADED_CHECK_MS;
        }
        for (size_t i = 0; i < t->pool_count; i++)
            for (size_t k = 0; k < t->pools[i].sentinel_count; k++)
                if (t->pools[i].subs[k].fd < 0) subscribe(&t->pools[i], k);
        poll_events(t, 100); /* a stop, or a worker's request, is seen that soon */
    }
    return NULL;
}

int topology_init(proxy *px, char *err, size_t err_len) {
    bool is_needed = false;
    /* A reload may add sentinels to a pool: the thread runs whenever a
     * redis pool exists, idle without such pools. */
    for (size_t i = 0; i < px->cf->pool_count; i++) is_needed |= px->cf->pools[i].redis;
    if (!is_needed) return 0;
    topology *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    t->px = px;
    pthread_mutex_init(&t->lock, NULL);
    px->topo = t;
    sync_conf(t);
    for (size_t i = 0; i < t->pool_count; i++) {
        check_pool(t, &t->pools[i]);
        t->pools[i].next_ms = mono_ms() + t->pools[i].interval_ms;
    }
    return 0;
}

int topology_start(proxy *px, char *err, size_t err_len) {
    topology *t = px->topo;
    if (!t) return 0;
    if (pthread_create(&t->thread, NULL, topology_main, t) != 0) {
        snprintf(err, err_len, "cannot start the topology thread");
        return -1;
    }
    t->has_thread = true;
    return 0;
}

void topology_stop(proxy *px) {
    topology *t = px->topo;
    if (!t) return;
    if (t->has_thread) pthread_join(t->thread, NULL);
    for (size_t i = 0; i < t->pool_count; i++) mpool_free(&t->pools[i]);
    free(t->pools);
    pthread_mutex_destroy(&t->lock);
    free(t);
    px->topo = NULL;
}

bool topology_shard(const proxy *px, const char *pool, const char *shard, topo_shard *out) {
    topology *t = px->topo;
    if (!t) return false;
    bool found = false;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; !found && i < t->pool_count; i++) {
        if (strcmp(t->pools[i].name, pool) != 0) continue;
        const mshard *sh = shard_named(&t->pools[i], shard, strlen(shard));
        if (sh) *out = sh->view;
        found = sh != NULL;
    }
    pthread_mutex_unlock(&t->lock);
    return found;
}

bool topology_cluster_slots(const proxy *px, const char *pool, uint16_t *out, uint64_t *gen) {
    topology *t = px->topo;
    if (!t) return false;
    bool is_new = false;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->pool_count; i++) {
        const mpool *p = &t->pools[i];
        if (!p->is_cluster || strcmp(p->name, pool) != 0) continue;
        is_new = p->slots_gen != *gen;
        if (is_new) {
            memcpy(out, p->slots, CLUSTER_SLOT_COUNT * sizeof *out);
            *gen = p->slots_gen;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return is_new;
}

void topology_recheck(proxy *px) {
    if (px->topo) atomic_store(&px->topo->recheck, true);
}
