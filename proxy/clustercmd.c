/*
 * clustercmd.c - the proxy looks like a Redis Cluster: CLUSTER SLOTS,
 * SHARDS, NODES, INFO, MYID, KEYSLOT, LINKS and HELP in redis-server 7.0's
 * reply shapes (RESP2), and READONLY, READWRITE, ASKING answered +OK.
 *
 * Any proxy serves any key of its pool (it routes by its own ring), so a
 * cluster client needs no redirection from it: the map it is given only
 * spreads its connections. Alone, the proxy is one node owning 0-16383.
 * With --etcd the nodes are the fleet's live proxies (P/proxies/, those
 * still "starting" left out, this proxy always in), sorted by member id,
 * node k of n owning slots [k * 16384 / n, (k + 1) * 16384 / n): every
 * proxy that sees the same members gives the same map, and a client that
 * follows a stale one is sent to a proxy that serves its keys all the same.
 *
 * Addresses: this proxy is where the client reached it (getsockname of the
 * client's socket, so a pool on 0.0.0.0 reached at 127.0.0.1 says
 * 127.0.0.1); another member is its `listen` for the pool (its --listen),
 * or, when that is a wildcard (0.0.0.0, ::, empty), its host name with that
 * port. A member without the pool, or on a Unix socket, is left out of the
 * pool's map. The cluster bus port is 0: there is none.
 *
 * Node ids: 40 hex digits, MD5(text) then the first 4 bytes of
 * MD5(MD5(text)). Alone, text is the host name, pid and start time of the
 * process with the pool's name and listen address (stable for the
 * process's life, the same from every worker, different for two proxies on
 * one host); in a fleet, the etcd prefix, the member id and the pool name,
 * so every member computes every other's id, and a member restarted with
 * the same --etcd-id keeps its id.
 *
 * Invariant: a published cluster_view never changes. view_current holds one
 * reference; a reader takes one under view_lock (held for a load and an
 * increment, never across I/O), and whoever drops the last frees it.
 */
#define _GNU_SOURCE
#include "clustercmd.h"

#include "fleetproto.h"
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLUSTER_SLOT_COUNT 16384u
#define NODE_ID_LEN 40
#define NODE_HOST_MAX 256

/* ---- the fleet's members, as published ---------------------------------- */

typedef struct view_member {
    char *id;     /* the fleet member id (P/proxies/ID) */
    char *host;   /* its host name, as it registered */
    char *listen; /* "pool=addr,..." */
    bool is_self;
} view_member;

typedef struct cluster_view {
    atomic_uint refs;
    char *prefix;
    size_t member_count;
    view_member members[]; /* sorted by id */
} cluster_view;

static pthread_mutex_t view_lock = PTHREAD_MUTEX_INITIALIZER;
static cluster_view *view_current; /* under view_lock; NULL: no fleet */

static void view_release(cluster_view *v) {
    if (!v || atomic_fetch_sub(&v->refs, 1) != 1) return;
    for (size_t i = 0; i < v->member_count; i++) {
        free(v->members[i].id);
        free(v->members[i].host);
        free(v->members[i].listen);
    }
    free(v->prefix);
    free(v);
}

/* The view in force with a reference of the caller's, or NULL. */
static cluster_view *view_take(void) {
    pthread_mutex_lock(&view_lock);
    cluster_view *v = view_current;
    if (v) atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&view_lock);
    return v;
}

/* v (its reference handed over; NULL: none) replaces the view in force. */
static void view_swap(cluster_view *v) {
    pthread_mutex_lock(&view_lock);
    cluster_view *old = view_current;
    view_current = v;
    pthread_mutex_unlock(&view_lock);
    view_release(old);
}

/* ---- the fleet thread's side -------------------------------------------- */

typedef struct member_rec {
    char *id;
    fleet_member m;
} member_rec;

struct cluster_members {
    char *prefix;
    char *self_id;
    member_rec *recs; /* in no order */
    size_t count, cap;
    bool is_dirty;     /* changed since the last publication */
    bool has_published;
};

cluster_members *cluster_members_new(const char *prefix, const char *self_id) {
    cluster_members *cm = calloc(1, sizeof *cm);
    if (!cm) return NULL;
    cm->prefix = strdup(prefix);
    cm->self_id = strdup(self_id);
    if (!cm->prefix || !cm->self_id) {
        cluster_members_free(cm);
        return NULL;
    }
    cm->is_dirty = true;
    return cm;
}

static void rec_free(member_rec *r) {
    free(r->id);
    fleet_member_free(&r->m);
}

void cluster_members_clear(cluster_members *cm) {
    for (size_t i = 0; i < cm->count; i++) rec_free(&cm->recs[i]);
    cm->count = 0;
    cm->is_dirty = true;
}

void cluster_members_free(cluster_members *cm) {
    if (!cm) return;
    if (cm->has_published) view_swap(NULL);
    if (cm->recs) cluster_members_clear(cm);
    free(cm->recs);
    free(cm->prefix);
    free(cm->self_id);
    free(cm);
}

static member_rec *rec_find(cluster_members *cm, const char *id, size_t id_len) {
    for (size_t i = 0; i < cm->count; i++)
        if (strlen(cm->recs[i].id) == id_len && memcmp(cm->recs[i].id, id, id_len) == 0)
            return &cm->recs[i];
    return NULL;
}

void cluster_members_delete(cluster_members *cm, const char *id, size_t id_len) {
    member_rec *r = rec_find(cm, id, id_len);
    if (!r) return;
    rec_free(r);
    *r = cm->recs[--cm->count];
    cm->is_dirty = true;
}

void cluster_members_put(cluster_members *cm, const char *id, size_t id_len, const char *json,
                         size_t json_len) {
    if (!fleet_name_is_valid(id, id_len)) return;
    fleet_member m;
    const char *why = "?";
    if (fleet_member_decode(json, json_len, &m, &why) != 0) {
        proxy_log(LOG_WARN, "cluster: member %.*s's record: %s: left out of CLUSTER SLOTS",
                  (int)id_len, id, why);
        cluster_members_delete(cm, id, id_len);
        return;
    }
    member_rec *r = rec_find(cm, id, id_len);
    if (r) {
        fleet_member_free(&r->m);
        r->m = m;
        cm->is_dirty = true;
        return;
    }
    if (cm->count == cm->cap) {
        size_t cap = cm->cap ? 2 * cm->cap : 8;
        member_rec *grown = realloc(cm->recs, cap * sizeof *grown);
        if (!grown) {
            fleet_member_free(&m);
            proxy_log(LOG_ERROR, "cluster: out of memory");
            return;
        }
        cm->recs = grown;
        cm->cap = cap;
    }
    char *copy = strndup(id, id_len);
    if (!copy) {
        fleet_member_free(&m);
        proxy_log(LOG_ERROR, "cluster: out of memory");
        return;
    }
    cm->recs[cm->count++] = (member_rec){.id = copy, .m = m};
    cm->is_dirty = true;
}

static int member_order(const void *a, const void *b) {
    return strcmp(((const view_member *)a)->id, ((const view_member *)b)->id);
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

void cluster_members_publish(cluster_members *cm) {
    if (!cm->is_dirty) return;
    /* A proxy still starting does not listen yet; this one answers, so it
     * is in even if etcd lost (or never got) its record. */
    size_t n = 0;
    bool has_self = false;
    for (size_t i = 0; i < cm->count; i++) {
        bool is_self = strcmp(cm->recs[i].id, cm->self_id) == 0;
        has_self |= is_self;
        if (is_self || !cm->recs[i].m.state || strcmp(cm->recs[i].m.state, "starting") != 0) n++;
    }
    if (!has_self) n++;
    cluster_view *v = calloc(1, sizeof *v + n * sizeof v->members[0]);
    bool is_oom = !v || !(v->prefix = strdup(cm->prefix));
    size_t k = 0;
    for (size_t i = 0; !is_oom && i < cm->count; i++) {
        const member_rec *r = &cm->recs[i];
        bool is_self = strcmp(r->id, cm->self_id) == 0;
        if (!is_self && r->m.state && strcmp(r->m.state, "starting") == 0) continue;
        view_member *vm = &v->members[k++];
        vm->is_self = is_self;
        is_oom = !(vm->id = strdup(r->id)) || !(vm->host = dup_or_empty(r->m.host)) ||
                 !(vm->listen = dup_or_empty(r->m.listen));
    }
    if (!is_oom && !has_self) {
        view_member *vm = &v->members[k++];
        vm->is_self = true;
        is_oom = !(vm->id = strdup(cm->self_id)) || !(vm->host = strdup("")) ||
                 !(vm->listen = strdup(""));
    }
    if (v) {
        v->member_count = k;
        atomic_init(&v->refs, 1);
    }
    if (is_oom) {
        view_release(v);
        proxy_log(LOG_ERROR, "cluster: out of memory: CLUSTER SLOTS keeps the fleet's "
                             "previous members");
        return; /* still dirty: tried again at the next publication */
    }
    qsort(v->members, v->member_count, sizeof v->members[0], member_order);
    view_swap(v);
    cm->is_dirty = false;
    cm->has_published = true;
}

/* ---- node ids ------------------------------------------------------------ */

/* 40 lowercase hex digits of text's digest into out (41 bytes). */
static void node_id_of(const buf *text, char *out) {
    uint8_t d1[16], d2[16];
    chash_md5(buf_start(text), buf_used(text), d1);
    chash_md5(d1, sizeof d1, d2);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < NODE_ID_LEN / 2; i++) {
        uint8_t byte = i < 16 ? d1[i] : d2[i - 16];
        out[2 * i] = hex[byte >> 4];
        out[2 * i + 1] = hex[byte & 15];
    }
    out[NODE_ID_LEN] = '\0';
}

/* The process's host name and pid, read once (after a daemon's fork). */
static pthread_once_t self_once = PTHREAD_ONCE_INIT;
static char self_host[NODE_HOST_MAX];
static long self_pid;

static void self_init(void) {
    if (gethostname(self_host, sizeof self_host) != 0) snprintf(self_host, sizeof self_host, "?");
    self_host[sizeof self_host - 1] = '\0';
    self_pid = (long)getpid();
}

/* A proxy without a fleet: its own id for pool cp. */
static void alone_id(const proxy *px, const conf_pool *cp, char *out) {
    pthread_once(&self_once, self_init);
    char num[64];
    buf text = {0};
    buf_append_str(&text, "chash-proxy node\n");
    buf_append_str(&text, self_host);
    snprintf(num, sizeof num, "\n%ld\n%llu\n", self_pid, (unsigned long long)px->start_time);
    buf_append_str(&text, num);
    buf_append_str(&text, cp->name);
    buf_append(&text, "\n", 1);
    buf_append_str(&text, cp->listen);
    node_id_of(&text, out);
    buf_free(&text);
}

/* Member `id` of the fleet under `prefix`: its id for pool `pool`. */
static void member_id(const char *prefix, const char *id, const char *pool, char *out) {
    buf text = {0};
    buf_append_str(&text, "chash-proxy fleet node\n");
    buf_append_str(&text, prefix);
    buf_append(&text, "\n", 1);
    buf_append_str(&text, id);
    buf_append(&text, "\n", 1);
    buf_append_str(&text, pool);
    node_id_of(&text, out);
    buf_free(&text);
}

/* ---- the nodes a client is told of --------------------------------------- */

typedef struct node {
    char id[NODE_ID_LEN + 1];
    char ip[INET6_ADDRSTRLEN];    /* empty: not known */
    char hostname[NODE_HOST_MAX]; /* empty: none (known by its ip) */
    int port;
    bool is_self;
    bool is_unix; /* this proxy, reached on a Unix socket: no address to give */
    uint32_t first_slot, last_slot;
} node;

/* The address c reached the proxy at. An IPv4 client of a dual-stack
 * socket shows as ::ffff:a.b.c.d, given as a.b.c.d. */
static void self_addr(const client *c, node *n) {
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockname(c->io.fd, (struct sockaddr *)&sa, &len) != 0) sa.ss_family = AF_UNSPEC;
    if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
        inet_ntop(AF_INET, &in->sin_addr, n->ip, sizeof n->ip);
        n->port = ntohs(in->sin_port);
    } else if (sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], n->ip, sizeof n->ip);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, n->ip, sizeof n->ip);
        n->port = ntohs(in6->sin6_port);
    } else {
        n->is_unix = true;
    }
}

/* Member vm's address for pool `pool` from its listen ("name=addr,...");
 * false when it has none a cluster client could reach. */
static bool member_addr(const view_member *vm, const char *pool, node *n) {
    size_t pool_len = strlen(pool);
    for (const char *at = vm->listen; *at;) {
        const char *end = strchr(at, ',');
        size_t len = end ? (size_t)(end - at) : strlen(at);
        if (len > pool_len && memcmp(at, pool, pool_len) == 0 && at[pool_len] == '=') {
            const char *addr = at + pool_len + 1;
            size_t addr_len = len - pool_len - 1;
            const char *colon = NULL;
            for (size_t k = 0; k < addr_len; k++)
                if (addr[k] == ':') colon = addr + k;
            if (addr_len == 0 || addr[0] == '/' || !colon) return false;
            char port_text[8], host[NODE_HOST_MAX];
            size_t port_len = addr_len - (size_t)(colon - addr) - 1;
            size_t host_len = (size_t)(colon - addr);
            if (port_len == 0 || port_len >= sizeof port_text || host_len >= sizeof host)
                return false;
            memcpy(port_text, colon + 1, port_len);
            port_text[port_len] = '\0';
            char *stop;
            long port = strtol(port_text, &stop, 10);
            if (*stop || port < 1 || port > 65535) return false;
            if (host_len >= 2 && addr[0] == '[' && addr[host_len - 1] == ']') {
                memcpy(host, addr + 1, host_len - 2);
                host[host_len - 2] = '\0';
            } else {
                memcpy(host, addr, host_len);
                host[host_len] = '\0';
            }
            n->port = (int)port;
            struct in6_addr a6;
            struct in_addr a4;
            bool is_wild = host[0] == '\0' || strcmp(host, "*") == 0;
            if (inet_pton(AF_INET, host, &a4) == 1) {
                is_wild = a4.s_addr == htonl(INADDR_ANY);
                inet_ntop(AF_INET, &a4, n->ip, sizeof n->ip);
            } else if (inet_pton(AF_INET6, host, &a6) == 1) {
                is_wild = IN6_IS_ADDR_UNSPECIFIED(&a6);
                inet_ntop(AF_INET6, &a6, n->ip, sizeof n->ip);
            } else if (!is_wild) {
                snprintf(n->hostname, sizeof n->hostname, "%s", host); /* a name */
            }
            if (is_wild) {
                /* Listening everywhere: its host name is the best guess. */
                n->ip[0] = '\0';
                snprintf(n->hostname, sizeof n->hostname, "%s", vm->host);
            }
            return n->ip[0] || n->hostname[0];
        }
        at += len + (end ? 1 : 0);
    }
    return false;
}

/* The nodes of c's pool, in slot order, into *out (the caller frees), and
 * which is this proxy. False when out of memory. */
static bool nodes_build(client *c, node **out, size_t *count, size_t *self) {
    const conf_pool *cp = c->pool->cf;
    cluster_view *v = view_take();
    size_t cap = v ? v->member_count : 1;
    node *nodes = calloc(cap ? cap : 1, sizeof *nodes);
    if (!nodes) {
        view_release(v);
        return false;
    }
    size_t n = 0;
    *self = 0;
    if (!v) {
        self_addr(c, &nodes[0]);
        nodes[0].is_self = true;
        alone_id(c->w->px, cp, nodes[0].id);
        n = 1;
    }
    for (size_t i = 0; v && i < v->member_count; i++) {
        const view_member *vm = &v->members[i];
        node *nd = &nodes[n];
        if (vm->is_self) {
            self_addr(c, nd);
            nd->is_self = true;
            *self = n;
        } else if (!member_addr(vm, cp->name, nd)) {
            memset(nd, 0, sizeof *nd);
            continue;
        }
        member_id(v->prefix, vm->id, cp->name, nd->id);
        n++;
    }
    view_release(v);
    for (size_t k = 0; k < n; k++) {
        nodes[k].first_slot = (uint32_t)(k * CLUSTER_SLOT_COUNT / n);
        nodes[k].last_slot = (uint32_t)((k + 1) * CLUSTER_SLOT_COUNT / n - 1);
    }
    *out = nodes;
    *count = n;
    return true;
}

/* ---- the replies ---------------------------------------------------------- */

static const char unix_error[] =
    "-ERR the pool listens on a Unix socket: a cluster client cannot be sent to it\r\n";

/* Where a client connects: the ip, or the host name when that is all. */
static const char *endpoint(const node *n) { return n->ip[0] ? n->ip : n->hostname; }

static void append_str_bulk(buf *b, const char *s) { buf_append_bulk(b, s, strlen(s)); }

/* CLUSTER SLOTS: per range, start, end, then [endpoint, port, id, {}]. */
static void reply_slots(buf *b, const node *nodes, size_t count) {
    buf_append_header(b, '*', count);
    for (size_t k = 0; k < count; k++) {
        buf_append_header(b, '*', 3);
        buf_append_header(b, ':', nodes[k].first_slot);
        buf_append_header(b, ':', nodes[k].last_slot);
        buf_append_header(b, '*', 4);
        append_str_bulk(b, endpoint(&nodes[k]));
        buf_append_header(b, ':', (uint64_t)nodes[k].port);
        append_str_bulk(b, nodes[k].id);
        buf_append_header(b, '*', 0);
    }
}

/* CLUSTER SHARDS: per shard, slots (start, end pairs) and nodes (a map
 * each, redis-server 7.0's fields in its order; hostname only when known). */
static void reply_shards(buf *b, const node *nodes, size_t count) {
    buf_append_header(b, '*', count);
    for (size_t k = 0; k < count; k++) {
        const node *n = &nodes[k];
        buf_append_header(b, '*', 4);
        append_str_bulk(b, "slots");
        buf_append_header(b, '*', 2);
        buf_append_header(b, ':', n->first_slot);
        buf_append_header(b, ':', n->last_slot);
        append_str_bulk(b, "nodes");
        buf_append_header(b, '*', 1);
        buf_append_header(b, '*', n->hostname[0] ? 16 : 14);
        append_str_bulk(b, "id");
        append_str_bulk(b, n->id);
        append_str_bulk(b, "port");
        buf_append_header(b, ':', (uint64_t)n->port);
        append_str_bulk(b, "ip");
        append_str_bulk(b, n->ip);
        append_str_bulk(b, "endpoint");
        append_str_bulk(b, endpoint(n));
        if (n->hostname[0]) {
            append_str_bulk(b, "hostname");
            append_str_bulk(b, n->hostname);
        }
        append_str_bulk(b, "role");
        append_str_bulk(b, "master");
        append_str_bulk(b, "replication-offset");
        buf_append_header(b, ':', 0);
        append_str_bulk(b, "health");
        append_str_bulk(b, "online");
    }
}

/* CLUSTER NODES: "<id> <ip>:<port>@<cport>[,<hostname>] <flags> <master>
 * <ping-sent> <pong-received> <config-epoch> <link-state> <slots>", a line
 * a node. No cluster bus: cport 0, no pings, epoch 0. */
static void reply_nodes(client *c, const node *nodes, size_t count) {
    buf text = {0};
    char line[160];
    for (size_t k = 0; k < count; k++) {
        const node *n = &nodes[k];
        buf_append_str(&text, n->id);
        buf_append(&text, " ", 1);
        buf_append_str(&text, n->ip);
        snprintf(line, sizeof line, ":%d@0", n->port);
        buf_append_str(&text, line);
        if (n->hostname[0]) {
            buf_append(&text, ",", 1);
            buf_append_str(&text, n->hostname);
        }
        snprintf(line, sizeof line, " %s - 0 0 0 connected %u-%u\n",
                 n->is_self ? "myself,master" : "master", n->first_slot, n->last_slot);
        buf_append_str(&text, line);
    }
    client_reply_text(c, &text);
}

/* CLUSTER INFO: redis-server 7.0's fields for a healthy cluster of `count`
 * masters with no bus traffic. */
static void reply_info(client *c, size_t count) {
    char text[600];
    snprintf(text, sizeof text,
             "cluster_state:ok\r\ncluster_slots_assigned:%u\r\ncluster_slots_ok:%u\r\n"
             "cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:%zu\r\n"
             "cluster_size:%zu\r\ncluster_current_epoch:0\r\ncluster_my_epoch:0\r\n"
             "cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n"
             "total_cluster_links_buffer_limit_exceeded:0\r\n",
             CLUSTER_SLOT_COUNT, CLUSTER_SLOT_COUNT, count, count);
    buf b = {0};
    buf_append_bulk(&b, text, strlen(text));
    client_reply_buf(c, &b);
}

static void reply_help(client *c) {
    static const char *const lines[] = {
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "INFO",
        "    Return information about the cluster (the proxy, or its fleet).",
        "KEYSLOT <key>",
        "    Return the hash slot for <key>.",
        "LINKS",
        "    Return information about all network links (a proxy has none).",
        "MYID",
        "    Return the node id.",
        "NODES",
        "    Return cluster configuration seen by node. Output format:",
        "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
        "SHARDS",
        "    Return information about slot range mappings and the nodes associated with them.",
        "SLOTS",
        "    Return information about slots range mappings. Each range is made of:",
        "    start, end, master and replicas IP addresses, ports and ids",
        "HELP",
        "    Prints this help.",
    };
    buf b = {0};
    buf_append_header(&b, '*', sizeof lines / sizeof lines[0]);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        buf_append(&b, "+", 1);
        buf_append_str(&b, lines[i]);
        buf_append(&b, "\r\n", 2);
    }
    client_reply_buf(c, &b);
}

/* The subcommands that describe the nodes. */
enum about { ABOUT_SLOTS, ABOUT_SHARDS, ABOUT_NODES, ABOUT_INFO, ABOUT_MYID };

static void reply_about(client *c, enum about what) {
    node *nodes;
    size_t count, self;
    if (!nodes_build(c, &nodes, &count, &self)) {
        reply_oom(c);
        return;
    }
    bool needs_addr = what == ABOUT_SLOTS || what == ABOUT_SHARDS || what == ABOUT_NODES;
    if (needs_addr && nodes[self].is_unix) {
        client_reply_str(c, unix_error);
    } else if (what == ABOUT_INFO) {
        reply_info(c, count);
    } else if (what == ABOUT_MYID) {
        buf b = {0};
        buf_append_bulk(&b, nodes[self].id, NODE_ID_LEN);
        client_reply_buf(c, &b);
    } else if (what == ABOUT_NODES) {
        reply_nodes(c, nodes, count);
    } else {
        buf b = {0};
        if (what == ABOUT_SLOTS)
            reply_slots(&b, nodes, count);
        else
            reply_shards(&b, nodes, count);
        client_reply_buf(c, &b);
    }
    free(nodes);
}

/* The commands, with redis-server 7.0's arity (counting CLUSTER and the
 * subcommand's name). */
static const struct {
    const char *name;
    size_t arity;
} commands[] = {
    {"cluster|slots", 2}, {"cluster|shards", 2}, {"cluster|nodes", 2}, {"cluster|info", 2},
    {"cluster|myid", 2},  {"cluster|keyslot", 3}, {"cluster|links", 2}, {"cluster|help", 2},
    {"readonly", 1},      {"readwrite", 1},       {"asking", 1},
};

void clustercmd_command(client *c, const cmd_spec *spec, const resp_msg *m) {
    size_t i = 0;
    while (i < sizeof commands / sizeof commands[0] && strcmp(commands[i].name, spec->name))
        i++;
    if (i == sizeof commands / sizeof commands[0]) {
        client_reply_str(c, "-ERR the proxy has no such CLUSTER subcommand\r\n");
        return;
    }
    if (m->argc != commands[i].arity) {
        char text[96];
        snprintf(text, sizeof text, "-ERR wrong number of arguments for '%s' command\r\n",
                 spec->name);
        client_reply_str(c, text);
        return;
    }
    const char *name = spec->name;
    if (strcmp(name, "cluster|keyslot") == 0) {
        buf b = {0};
        buf_append_header(&b, ':', chash_redis_slot(m->argv[2].ptr, m->argv[2].len));
        client_reply_buf(c, &b);
    } else if (strcmp(name, "cluster|links") == 0) {
        client_reply_str(c, "*0\r\n"); /* no cluster bus, no links */
    } else if (strcmp(name, "cluster|help") == 0) {
        reply_help(c);
    } else if (strncmp(name, "cluster|", 8) != 0) {
        /* READONLY, READWRITE: any proxy's answers are its servers'
         * (read_from decides replicas); ASKING: the proxy sends no -ASK. */
        client_reply_str(c, "+OK\r\n");
    } else {
        static const struct {
            const char *sub;
            enum about what;
        } abouts[] = {{"slots", ABOUT_SLOTS}, {"shards", ABOUT_SHARDS}, {"nodes", ABOUT_NODES},
                      {"info", ABOUT_INFO},   {"myid", ABOUT_MYID}};
        for (size_t k = 0; k < sizeof abouts / sizeof abouts[0]; k++)
            if (strcmp(name + 8, abouts[k].sub) == 0) reply_about(c, abouts[k].what);
    }
}
