/*
 * stats.c - statistics on a TCP port, two ways:
 * - nutcracker's: a client that connects and says nothing gets one JSON
 *   object and the connection is closed (`nc host 22222`);
 * - HTTP: `GET /metrics` gets Prometheus text, `GET /stats` the JSON, `GET
 *   /` the status page (proxy/status.html) when the client takes HTML (a
 *   browser) and the JSON otherwise, `GET /status.json` what the page draws
 *   beside the JSON (servers' states and addresses, ownership shares,
 *   warm-up, the last reload); anything else 404.
 * A client that sends nothing within STATS_WAIT_MS is a nutcracker client.
 * With --stats-token-file, only HTTP requests that carry the token
 * (`Authorization: Bearer TOKEN`) are answered: anything else gets 401 (a
 * bare connection, nutcracker's, gets nothing), and the token is compared
 * in constant time.
 *
 * The numbers are summed over the workers at the moment of the request (no
 * 30 s aggregation interval as in nutcracker). A thread of its own serves the
 * port, so a slow stats reader never touches a request path, and serves all
 * its connections at once, so a slow one never holds up another.
 */
#define _GNU_SOURCE
#include "proxy.h"

#include "secret.h"

#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Stats are read under px->lock, summed over the workers that run the
 * configuration in force: during the moment of a reload a worker still on
 * the old one is left out, rather than matched by position. */
static bool is_current(const proxy *px, uint32_t w) { return px->workers[w].cf == px->cf; }

static void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void prom_family(buf *b, const char *name, const char *type, const char *help);

static void json_string(buf *b, const char *s) {
    buf_append(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf_append(b, "\\", 1);
            buf_append(b, s, 1);
        } else if (ch < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            buf_append_str(b, esc);
        } else {
            buf_append(b, s, 1);
        }
    }
    buf_append(b, "\"", 1);
}

static void json_num(buf *b, const char *key, uint64_t v, bool *first) {
    if (!*first) buf_append(b, ",", 1);
    *first = false;
    json_string(b, key);
    buf_append(b, ":", 1);
    buf_append_u64(b, v);
}

#define STAT_SUM 0
#define STAT_MAX 1

/* A statistic at `offset` in each current worker's pool_stats (server < 0)
 * or server_stats, summed or its largest value taken. */
static uint64_t over_workers(const proxy *px, size_t pool, long server, size_t offset, int how) {
    uint64_t acc = 0;
    for (uint32_t w = 0; w < px->worker_count; w++) {
        if (!is_current(px, w)) continue;
        const wpool *p = &px->workers[w].pools[pool];
        const void *base = server < 0 ? (const void *)&p->st : (const void *)&p->backends[server].st;
        uint64_t v = stat_get((const stat_t *)((const char *)base + offset));
        acc = how == STAT_MAX ? (v > acc ? v : acc) : acc + v;
    }
    return acc;
}

typedef struct stat_field {
    const char *name;
    size_t offset;
    int how;
    bool is_carried, is_json;
    const char *metric, *type, *text;
} stat_field;

#define POOL_FIELD(field, how, carry, json, metric, type, text)                                \
    {#field, offsetof(pool_stats, field), STAT_##how, carry, json, metric, #type, text},
#define SERVER_FIELD(field, how, carry, json, metric, type, text)                              \
    {#field, offsetof(server_stats, field), STAT_##how, carry, json, metric, #type, text},
static const stat_field pool_fields[] = {POOL_STATS(POOL_FIELD)};
static const stat_field server_fields[] = {SERVER_STATS(SERVER_FIELD)};
#define POOL_FIELD_COUNT (sizeof pool_fields / sizeof pool_fields[0])
#define SERVER_FIELD_COUNT (sizeof server_fields / sizeof server_fields[0])

static void json_fields(const proxy *px, buf *b, size_t pool, long server) {
    const stat_field *fields = server < 0 ? pool_fields : server_fields;
    size_t count = server < 0 ? POOL_FIELD_COUNT : SERVER_FIELD_COUNT;
    bool first = true;
    for (size_t i = 0; i < count; i++) {
        if (!fields[i].is_json) continue;
        json_num(b, fields[i].name, over_workers(px, pool, server, fields[i].offset, fields[i].how),
                 &first);
    }
}

/* Whether server s of cp is listed: in a redis-cluster pool, only the
 * shard entries the cluster has given a shard (the others are spares). */
static bool server_shown(const proxy *px, const conf_pool *cp, size_t s) {
    topo_shard v;
    return !conf_pool_is_cluster(cp) ||
           (topology_shard(px, cp->name, cp->servers[s].name, &v) && v.primary.addr[0]);
}

/* A shard's primary and replicas as the topology has them (pools with
 * replicas): "primary", "failovers", "replicas": [{addr, lag, usable}]. */
static void json_topology(const proxy *px, buf *b, const conf_pool *cp, size_t s) {
    topo_shard v;
    if (!conf_pool_has_topology(cp) || !topology_shard(px, cp->name, cp->servers[s].name, &v))
        return;
    buf_append_str(b, ",\"primary\":");
    json_string(b, v.primary.addr);
    buf_printf(b, ",\"primary_answers\":%d,\"primary_is_replica\":%d,\"failovers\":%llu,"
               "\"replicas\":[", v.primary_answers, v.primary_is_replica,
               (unsigned long long)v.failovers);
    for (uint32_t i = 0; i < v.replica_count; i++) {
        buf_append_str(b, i ? ",{\"addr\":" : "{\"addr\":");
        json_string(b, v.replicas[i].addr);
        buf_printf(b, ",\"lag\":%lld,\"usable\":%d}", (long long)v.replicas[i].lag,
                   v.replicas[i].is_usable);
    }
    buf_append_str(b, "]");
}

/* The fleet's state (--etcd), listed once: the JSON member, the metric
 * (its value in metric_unit ths of the JSON's: ms -> s), and its help. */
#define FLEET_FIELDS(X)                                                                        \
    X(epoch, "chash_proxy_fleet_epoch", 1, "The committed fleet epoch this proxy serves.")      \
    X(view_age_ms, "chash_proxy_fleet_view_age_seconds", 1000,                                 \
      "Seconds since etcd last answered this proxy (how old its view may be).")               \
    X(etcd_reachable, "chash_proxy_fleet_etcd_up", 1, "1 while etcd answers, 0 while not.")     \
    X(isolated, "chash_proxy_fleet_isolated", 1,                                               \
      "1 while the proxy serves its epoch without etcd (it cannot learn of a change).")       \
    X(holding, "chash_proxy_fleet_holding", 1,                                                 \
      "1 while a change's switch holds the pools that change.")                               \
    X(changes, "chash_proxy_fleet_changes_total", 1, "Fleet epochs taken since start.")         \
    X(holds, "chash_proxy_fleet_holds_total", 1, "Switches that held pools.")                   \
    X(aborts, "chash_proxy_fleet_aborts_total", 1,                                             \
      "Changes rolled back after this proxy had prepared them.")

typedef struct fleet_values {
#define FLEET_MEMBER(name, metric, unit, text) uint64_t name;
    FLEET_FIELDS(FLEET_MEMBER)
#undef FLEET_MEMBER
} fleet_values;

static void fleet_read(const proxy *px, fleet_values *v) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t seen = atomic_load(&px->fleet_confirmed_ms);
    int state = atomic_load(&px->fleet_state);
    *v = (fleet_values){.epoch = atomic_load(&px->fleet_epoch),
                        .view_age_ms = now > seen ? now - seen : 0,
                        .etcd_reachable = atomic_load(&px->fleet_etcd_up) != 0,
                        .isolated = state == FLEET_ISOLATED,
                        .holding = state == FLEET_HOLDING,
                        .changes = atomic_load(&px->fleet_changes),
                        .holds = atomic_load(&px->fleet_holds),
                        .aborts = atomic_load(&px->fleet_aborts)};
}

/* ,"fleet":{"id":...,"state":...,<FLEET_FIELDS>} */
static void json_fleet(const proxy *px, buf *b) {
    if (!px->fleet) return;
    static const char *const states[] = {"serving", "holding", "isolated"};
    int state = atomic_load(&px->fleet_state);
    fleet_values v;
    fleet_read(px, &v);
    buf_append_str(b, ",\"fleet\":{\"id\":");
    json_string(b, px->fleet_id);
    buf_append_str(b, ",\"state\":");
    json_string(b, states[state >= 0 && state <= 2 ? state : 0]);
    bool first = false;
#define FLEET_JSON(name, metric, unit, text) json_num(b, #name, v.name, &first);
    FLEET_FIELDS(FLEET_JSON)
#undef FLEET_JSON
    buf_append(b, "}", 1);
}

static void prom_fleet(const proxy *px, buf *b) {
    if (!px->fleet) return;
    fleet_values v;
    fleet_read(px, &v);
#define FLEET_PROM(name, metric, unit, text)                                                   \
    prom_family(b, metric, strstr(metric, "_total") ? "counter" : "gauge", text);             \
    buf_printf(b, "%s %llu.%03llu\n", metric, (unsigned long long)(v.name / (unit)),          \
               (unsigned long long)((v.name % (unit)) * 1000u / (unit)));
    FLEET_FIELDS(FLEET_PROM)
#undef FLEET_PROM
}

void stats_json(const proxy *px, buf *b) {
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    uint64_t curr = 0;
    for (size_t p = 0; p < px->cf->pool_count; p++) curr += atomic_load(&px->pool_clients[p]);
    bool first = true;
    buf_append_str(b, "{\"service\":\"" PROXY_NAME "\",\"source\":");
    json_string(b, host);
    buf_append_str(b, ",\"version\":\"" CHASH_VERSION_STRING "\"");
    first = false;
    json_num(b, "uptime", (uint64_t)now - px->start_time, &first);
    json_num(b, "timestamp", (uint64_t)now, &first);
    json_num(b, "total_connections", atomic_load(&px->total_connections), &first);
    json_num(b, "curr_connections", curr, &first);
    json_num(b, "buffer_bytes", buf_held_bytes(), &first); /* what --max-memory counts */
    json_fleet(px, b);
    for (size_t p = 0; p < px->cf->pool_count; p++) {
        const conf_pool *cp = &px->cf->pools[p];
        buf_append(b, ",", 1);
        json_string(b, cp->name);
        buf_append(b, ":{", 2);
        json_fields(px, b, p, -1);
        for (size_t s = 0; s < cp->server_count; s++) {
            if (!server_shown(px, cp, s)) continue;
            buf_append(b, ",", 1);
            json_string(b, cp->servers[s].name);
            buf_append(b, ":{", 2);
            json_fields(px, b, p, (long)s);
            json_topology(px, b, cp, s);
            buf_append(b, "}", 1);
        }
        buf_append(b, "}", 1);
    }
    buf_append_str(b, "}\n");
}

/* The status page, proxy/status.html embedded at build time (CMake writes
 * status_html.c). */
extern const char status_html[];
extern const size_t status_html_len;

/* Each server's share of the hash space on the ring as configured (every
 * server on it), into share[] (-1: no exact answer: a redis-cluster pool, or
 * an algorithm without chash_ownership). Runs in the stats thread: a ring
 * build, about a millisecond, never on a request's path. */
static void pool_shares(const conf_pool *cp, double *share) {
    for (size_t s = 0; s < cp->server_count; s++) share[s] = -1;
    if (conf_pool_is_cluster(cp)) return;
    chash *ring = NULL;
    uint32_t *node_server = calloc(cp->server_count + 1, sizeof *node_server);
    uint64_t *shares = calloc(cp->server_count + 1, sizeof *shares);
    uint64_t space = 0;
    if (node_server && shares && conf_pool_ring_live(cp, NULL, &ring, node_server) == CHASH_OK &&
        chash_ownership(ring, shares, cp->server_count, &space) == CHASH_OK && space) {
        for (size_t s = 0; s < cp->server_count; s++) share[s] = 0;
        for (size_t n = 0; n < chash_node_count(ring); n++)
            share[node_server[n]] += (double)shares[n] / (double)space;
    }
    chash_free(ring);
    free(node_server);
    free(shares);
}

static void status_json(const proxy *px, buf *b) {
    static const char *const states[] = {"up", "down", "ejected"};
    buf_append_str(b, "{\"last_reload\":");
    json_string(b, px->last_reload);
    buf_append_str(b, ",\"pools\":[");
    for (size_t p = 0; p < px->cf->pool_count; p++) {
        const conf_pool *cp = &px->cf->pools[p];
        uint64_t warm_left = 0;
        uint32_t workers = 0;
        for (uint32_t w = 0; w < px->worker_count; w++) {
            if (!is_current(px, w)) continue;
            workers++;
            uint64_t left = atomic_load_explicit(&px->workers[w].pools[p].shown_warm_left_ms,
                                                 memory_order_relaxed);
            if (left > warm_left) warm_left = left;
        }
        buf_append_str(b, p ? ",{\"name\":" : "{\"name\":");
        json_string(b, cp->name);
        buf_append_str(b, ",\"listen\":");
        json_string(b, cp->listen ? cp->listen : "");
        buf_printf(b, ",\"protocol\":\"%s\",\"distribution\":", cp->redis ? "redis" : "memcached");
        json_string(b, conf_dist_name(cp));
        buf_printf(b, ",\"tls\":%s,\"server_tls\":%s,\"warmup_left_ms\":%llu,\"servers\":[",
                   cp->tls_cert_file ? "true" : "false", cp->server_tls ? "true" : "false",
                   (unsigned long long)warm_left);
        double *share = calloc(cp->server_count + 1, sizeof *share);
        if (share) pool_shares(cp, share);
        bool first = true;
        for (size_t s = 0; s < cp->server_count; s++) {
            if (!server_shown(px, cp, s)) continue;
            const conf_server *cs = &cp->servers[s];
            /* Each worker's view; the worst one shown, with how many. */
            uint8_t worst = BACKEND_SHOWN_UP;
            uint32_t out = 0;
            for (uint32_t w = 0; w < px->worker_count; w++) {
                if (!is_current(px, w)) continue;
                uint8_t v = atomic_load_explicit(&px->workers[w].pools[p].backends[s].shown,
                                                 memory_order_relaxed);
                out += v != BACKEND_SHOWN_UP;
                if (v > worst) worst = v;
            }
            topo_shard v;
            char addr[TOPO_ADDR_MAX + 8];
            if ((conf_pool_has_topology(cp) || conf_pool_is_cluster(cp)) &&
                topology_shard(px, cp->name, cs->name, &v) && v.primary.addr[0])
                snprintf(addr, sizeof addr, "%s", v.primary.addr);
            else
                snprintf(addr, sizeof addr, cs->port ? "%s:%d" : "%s", cs->host ? cs->host : "",
                         cs->port);
            buf_append_str(b, first ? "{\"name\":" : ",{\"name\":");
            first = false;
            json_string(b, cs->name);
            buf_append_str(b, ",\"addr\":");
            json_string(b, addr);
            buf_printf(b, ",\"state\":\"%s\",\"workers\":%u,\"workers_out\":%u,\"share\":",
                       states[worst < 3 ? worst : 0], workers, out);
            if (share && share[s] >= 0)
                buf_printf(b, "%.6f}", share[s]);
            else
                buf_append_str(b, "null}");
        }
        free(share);
        buf_append_str(b, "]}");
    }
    buf_append_str(b, "]}\n");
}

/* Whether the request head says the client takes HTML: a browser's
 * Accept names text/html, curl's takes anything and gets the JSON. */
static bool takes_html(const char *head) {
    static const char name[] = "accept:";
    for (const char *line = strchr(head, '\n'); line; line = strchr(line, '\n')) {
        line++;
        if (strncasecmp(line, name, sizeof name - 1) != 0) continue;
        size_t len = strcspn(line, "\r\n");
        return memmem(line, len, "text/html", 9) != NULL;
    }
    return false;
}

void stats_pool_each(proxy *px, size_t pool, void (*fn)(void *arg, const char *name, uint64_t v),
                     void *arg) {
    pthread_mutex_lock(&px->lock);
    for (size_t i = 0; pool < px->cf->pool_count && i < POOL_FIELD_COUNT; i++)
        fn(arg, pool_fields[i].name,
           over_workers(px, pool, -1, pool_fields[i].offset, pool_fields[i].how));
    pthread_mutex_unlock(&px->lock);
}

static void carry(void *to, const void *from, const stat_field *fields, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (!fields[i].is_carried) continue;
        stat_t *t = (stat_t *)((char *)to + fields[i].offset);
        stat_add(t, stat_get((const stat_t *)((const char *)from + fields[i].offset)));
    }
}

void stats_carry_pool(pool_stats *to, const pool_stats *from) {
    carry(to, from, pool_fields, POOL_FIELD_COUNT);
}

void stats_carry_server(server_stats *to, const server_stats *from) {
    carry(to, from, server_fields, SERVER_FIELD_COUNT);
    for (size_t i = 0; i < LATENCY_BUCKETS; i++)
        stat_add(&to->latency_count[i], stat_get(&from->latency_count[i]));
    stat_add(&to->latency_sum_us, stat_get(&from->latency_sum_us));
}

void stats_describe(FILE *out) {
    fprintf(out, "pool stats:\n");
    for (size_t i = 0; i < POOL_FIELD_COUNT; i++)
        if (pool_fields[i].is_json)
            fprintf(out, "  %-19s # %s\n", pool_fields[i].name, pool_fields[i].text);
    fprintf(out, "\nserver stats:\n");
    for (size_t i = 0; i < SERVER_FIELD_COUNT; i++)
        if (server_fields[i].is_json)
            fprintf(out, "  %-19s # %s\n", server_fields[i].name, server_fields[i].text);
}

/* ---- Prometheus text format ---------------------------------------------- */

const uint64_t latency_bucket_us[LATENCY_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
};

void stats_latency(server_stats *st, uint64_t us) {
    size_t i = 0;
    while (i < LATENCY_BUCKETS - 1 && us > latency_bucket_us[i]) i++;
    stat_add(&st->latency_count[i], 1);
    stat_add(&st->latency_sum_us, us);
}

/* Long enough for an HTTP client on a loaded host to send its request line
 * (at 50 ms a scrape was sometimes answered with the JSON); short for a
 * person waiting on `nc`. */
#define STATS_WAIT_MS 250

/* Short formatted text (metric lines): longer output is cut, never
 * overflowed. */
static void buf_printf(buf *b, const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    buf_append(b, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

/* A label value: backslash, double quote and newline escaped. */
static void prom_label(buf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            buf_append(b, "\\", 1);
        if (*s == '\n')
            buf_append_str(b, "\\n");
        else
            buf_append(b, s, 1);
    }
}

static void prom_family(buf *b, const char *name, const char *type, const char *help) {
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A sample's name and labels, up to the space before its value. */
static void prom_sample(buf *b, const char *name, const char *pool, const char *server) {
    buf_printf(b, "%s{pool=\"", name);
    prom_label(b, pool);
    if (server) {
        buf_append_str(b, "\",server=\"");
        prom_label(b, server);
    }
    buf_append_str(b, "\"} ");
}

static void prom_latency(const proxy *px, buf *b);
static void prom_commands(const proxy *px, buf *b);
static void prom_topology(const proxy *px, buf *b);

static void stats_prometheus(const proxy *px, buf *b) {
    buf_append_str(b, "# HELP chash_proxy_uptime_seconds Seconds since start.\n"
                      "# TYPE chash_proxy_uptime_seconds gauge\nchash_proxy_uptime_seconds ");
    buf_append_u64(b, (uint64_t)time(NULL) - px->start_time);
    buf_append_str(b, "\n# HELP chash_proxy_connections_total Client connections accepted.\n"
                      "# TYPE chash_proxy_connections_total counter\n"
                      "chash_proxy_connections_total ");
    buf_append_u64(b, atomic_load(&px->total_connections));
    /* Held under px->lock, as the whole page is. */
    uint64_t retained = 0;
    for (const conf_list *c = px->old_confs; c; c = c->next) retained++;
    buf_append_str(b, "\n# HELP chash_proxy_configs_retained Replaced configurations still in "
                      "use by requests in flight or a warm-up window.\n"
                      "# TYPE chash_proxy_configs_retained gauge\nchash_proxy_configs_retained ");
    buf_append_u64(b, retained);
    buf_append_str(b, "\n");
    for (size_t m = 0; m < POOL_FIELD_COUNT; m++) {
        const stat_field *f = &pool_fields[m];
        if (!f->metric) continue;
        prom_family(b, f->metric, f->type, f->text);
        for (size_t p = 0; p < px->cf->pool_count; p++) {
            prom_sample(b, f->metric, px->cf->pools[p].name, NULL);
            buf_append_u64(b, over_workers(px, p, -1, f->offset, f->how));
            buf_append_str(b, "\n");
        }
    }
    for (size_t m = 0; m < SERVER_FIELD_COUNT; m++) {
        const stat_field *f = &server_fields[m];
        if (!f->metric) continue;
        prom_family(b, f->metric, f->type, f->text);
        for (size_t p = 0; p < px->cf->pool_count; p++) {
            const conf_pool *cp = &px->cf->pools[p];
            for (size_t s = 0; s < cp->server_count; s++) {
                if (!server_shown(px, cp, s)) continue;
                prom_sample(b, f->metric, cp->name, cp->servers[s].name);
                buf_append_u64(b, over_workers(px, p, (long)s, f->offset, f->how));
                buf_append_str(b, "\n");
            }
        }
    }
    prom_latency(px, b);
    prom_commands(px, b);
    prom_topology(px, b);
    prom_fleet(px, b);
}

/* Pools with replicas: each shard's primary (an info metric), failovers,
 * and each replica's lag and whether it takes reads. */
static void prom_topology(const proxy *px, buf *b) {
    static const char *const names[4][3] = {
        {"chash_proxy_shard_primary_info", "gauge",
         "The shard's primary now (1, its address in the label)."},
        {"chash_proxy_shard_failovers_total", "counter",
         "Times the shard's primary moved (Sentinel) since the proxy started."},
        {"chash_proxy_replica_lag_bytes", "gauge",
         "Bytes of replication stream a replica is behind its primary (-1: unknown)."},
        {"chash_proxy_replica_usable", "gauge",
         "1 when a replica takes reads (answers, linked, within replica_max_lag)."},
    };
    bool any = false;
    for (size_t p = 0; p < px->cf->pool_count; p++) any |= conf_pool_has_topology(&px->cf->pools[p]);
    if (!any) return;
    for (int m = 0; m < 4; m++) {
        prom_family(b, names[m][0], names[m][1], names[m][2]);
        for (size_t p = 0; p < px->cf->pool_count; p++) {
            const conf_pool *cp = &px->cf->pools[p];
            for (size_t s = 0; conf_pool_has_topology(cp) && s < cp->server_count; s++) {
                topo_shard v;
                if (!topology_shard(px, cp->name, cp->servers[s].name, &v) ||
                    !server_shown(px, cp, s))
                    continue;
                uint32_t rows = m < 2 ? 1 : v.replica_count;
                for (uint32_t i = 0; i < rows; i++) {
                    buf_printf(b, "%s{pool=\"", names[m][0]);
                    prom_label(b, cp->name);
                    buf_append_str(b, "\",server=\"");
                    prom_label(b, cp->servers[s].name);
                    if (m == 0 || m >= 2) {
                        buf_append_str(b, m == 0 ? "\",addr=\"" : "\",replica=\"");
                        prom_label(b, m == 0 ? v.primary.addr : v.replicas[i].addr);
                    }
                    if (m == 0) buf_append_str(b, "\"} 1\n");
                    if (m == 1) buf_printf(b, "\"} %llu\n", (unsigned long long)v.failovers);
                    if (m == 2) buf_printf(b, "\"} %lld\n", (long long)v.replicas[i].lag);
                    if (m == 3) buf_printf(b, "\"} %d\n", v.replicas[i].is_usable);
                }
            }
        }
    }
}

/* Reply latency per server: a Prometheus histogram (cumulative buckets, in
 * seconds), summed over the workers. */
static void prom_latency(const proxy *px, buf *b) {
    static const char name[] = "chash_proxy_server_latency_seconds";
    buf_printf(b, "# HELP %s Time from sending a request to a server to reading its reply.\n"
                  "# TYPE %s histogram\n", name, name);
    for (size_t p = 0; p < px->cf->pool_count; p++) {
        const conf_pool *cp = &px->cf->pools[p];
        for (size_t s = 0; s < cp->server_count; s++) {
            if (!server_shown(px, cp, s)) continue;
            uint64_t cumulative = 0, sum_us = 0;
            for (uint32_t w = 0; w < px->worker_count; w++)
                if (is_current(px, w))
                    sum_us += stat_get(&px->workers[w].pools[p].backends[s].st.latency_sum_us);
            for (size_t k = 0; k < LATENCY_BUCKETS; k++) {
                for (uint32_t w = 0; w < px->worker_count; w++)
                    if (is_current(px, w))
                        cumulative +=
                            stat_get(&px->workers[w].pools[p].backends[s].st.latency_count[k]);
                buf_printf(b, "%s_bucket{pool=\"", name);
                prom_label(b, cp->name);
                buf_append_str(b, "\",server=\"");
                prom_label(b, cp->servers[s].name);
                if (k < LATENCY_BUCKETS - 1)
                    buf_printf(b, "\",le=\"%g\"} ", (double)latency_bucket_us[k] / 1e6);
                else
                    buf_append_str(b, "\",le=\"+Inf\"} ");
                buf_append_u64(b, cumulative);
                buf_append_str(b, "\n");
            }
            const char *suffix[2] = {"_sum", "_count"};
            for (int k = 0; k < 2; k++) {
                buf_printf(b, "%s%s{pool=\"", name, suffix[k]);
                prom_label(b, cp->name);
                buf_append_str(b, "\",server=\"");
                prom_label(b, cp->servers[s].name);
                if (k == 0)
                    buf_printf(b, "\"} %.6f\n", (double)sum_us / 1e6);
                else
                    buf_printf(b, "\"} %llu\n", (unsigned long long)cumulative);
            }
        }
    }
}

/* Requests per Redis command and pool; commands never seen are left out. */
static void prom_commands(const proxy *px, buf *b) {
    static const char name[] = "chash_proxy_command_requests_total";
    buf_printf(b, "# HELP %s Redis requests received, by command.\n# TYPE %s counter\n", name,
               name);
    for (size_t p = 0; p < px->cf->pool_count; p++) {
        if (!px->cf->pools[p].redis) continue;
        for (size_t k = 0; k < command_count(); k++) {
            uint64_t sum = 0;
            for (uint32_t w = 0; w < px->worker_count; w++)
                if (is_current(px, w) && px->workers[w].pools[p].cmd_requests)
                    sum += stat_get(&px->workers[w].pools[p].cmd_requests[k]);
            if (!sum) continue;
            buf_printf(b, "%s{pool=\"", name);
            prom_label(b, px->cf->pools[p].name);
            buf_printf(b, "\",command=\"%s\"} ", command_name(k));
            buf_append_u64(b, sum);
            buf_append_str(b, "\n");
        }
    }
}

/* ---- the port ------------------------------------------------------------ */

/*
 * One thread serves every stats connection at once: a poll() loop over the
 * listener and up to STATS_CONN_MAX non-blocking connections, each of which
 * goes
 *
 *   accept -> reading the request head -> answered (rendered once, under
 *   px->lock) -> writing the answer as fast as the client takes it -> closed
 *
 * and no step waits on one client: every wait is a deadline the loop keeps,
 * so a client that trickles its request or never reads its answer costs a
 * slot, never the port.
 *
 * A head ends at a blank line, a full buffer or the client's EOF. A client
 * that sends nothing for STATS_WAIT_MS is a nutcracker client and gets the
 * JSON; one that pauses STATS_IDLE_MS, or is still sending STATS_HEAD_MS
 * after its accept, is answered on what it sent (a trickle gets one answer,
 * not the port). An answer not written within STATS_SEND_MS is dropped.
 */
#define STATS_CONN_MAX 64
#define STATS_HEAD_MAX 2048 /* request head bytes kept, with the NUL */
#define STATS_IDLE_MS 1000
#define STATS_HEAD_MS 2000
/* Prometheus's default scrape timeout: an answer later than that is of no
 * use to it, and a slow reader meanwhile holds only its slot. */
#define STATS_SEND_MS 10000
#define STATS_TICK_MS 200 /* proxy_stop is seen within this */
#define STATS_ACCEPT_PAUSE_MS 100

typedef struct stats_conn {
    int fd; /* -1: a free slot */
    bool is_writing;
    uint64_t accepted_ms;
    uint64_t heard_ms;   /* when the last request bytes came */
    uint64_t send_by_ms; /* is_writing: the answer's deadline */
    size_t head_len;
    char head[STATS_HEAD_MAX];
    buf out; /* is_writing: what is left to send */
} stats_conn;

/* The stats thread's own state: made by stats_start, freed by the thread. */
typedef struct stats_port {
    proxy *px;
    char *token; /* NULL: none needed */
    uint64_t accept_after_ms; /* accepting paused until then (out of fds) */
    stats_conn conns[STATS_CONN_MAX];
} stats_port;

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void conn_close(stats_conn *c) {
    close(c->fd);
    c->fd = -1;
    buf_free(&c->out);
}

/* When the connection must move on: be answered, or be closed. */
static uint64_t conn_due_ms(const stats_conn *c) {
    if (c->is_writing) return c->send_by_ms;
    if (c->head_len == 0) return c->accepted_ms + STATS_WAIT_MS;
    uint64_t idle_ms = c->heard_ms + STATS_IDLE_MS, cap_ms = c->accepted_ms + STATS_HEAD_MS;
    return idle_ms < cap_ms ? idle_ms : cap_ms;
}

/* Sends what the client takes now; closes the connection once all is sent
 * or the client is gone. */
static void conn_write(stats_conn *c) {
    while (buf_used(&c->out) > 0) {
        ssize_t n = send(c->fd, buf_start(&c->out), buf_used(&c->out), MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return; /* the rest when poll says POLLOUT */
        } else {
            break;
        }
    }
    conn_close(c);
}

/* Takes the bytes that arrived. Returns true when the head is complete;
 * closes the connection on an error. */
static bool conn_read(stats_conn *c, uint64_t now) {
    while (c->head_len + 1 < sizeof c->head) {
        ssize_t n = recv(c->fd, c->head + c->head_len, sizeof c->head - 1 - c->head_len, 0);
        if (n == 0) return true; /* `nc -N`: the request, then EOF, then the answer */
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) conn_close(c);
            return false;
        }
        c->head_len += (size_t)n;
        c->head[c->head_len] = '\0';
        c->heard_ms = now;
        if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n")) return true;
    }
    return true; /* a full buffer is as much of a head as is kept */
}

/* Whether the request head carries `Authorization: Bearer TOKEN` (the
 * header's name in any case). */
static bool has_token(const char *head, const char *token) {
    static const char name[] = "authorization:";
    for (const char *line = strchr(head, '\n'); line; line = strchr(line, '\n')) {
        line++;
        if (strncasecmp(line, name, sizeof name - 1) != 0) continue;
        const char *v = line + sizeof name - 1;
        while (*v == ' ' || *v == '\t') v++;
        if (strncasecmp(v, "bearer ", 7) != 0) return false;
        v += 7;
        size_t len = strcspn(v, "\r\n");
        while (len && (v[len - 1] == ' ' || v[len - 1] == '\t')) len--;
        return secret_equal(v, len, token, strlen(token));
    }
    return false;
}

/* Renders the answer to the request head once, then writes what it can. */
static void serve(stats_port *sp, stats_conn *c, uint64_t now) {
    proxy *px = sp->px;
    const char *head = c->head;
    size_t n = c->head_len;
    buf body = {0};
    const char *status = "200 OK", *type = "application/json";
    bool is_http = n >= 4 && memcmp(head, "GET ", 4) == 0;
    if (sp->token && !is_http) { /* no way to carry the token */
        conn_close(c);
        return;
    }
    bool is_allowed = !sp->token || has_token(head, sp->token);
    pthread_mutex_lock(&px->lock);
    if (!is_allowed) {
        status = "401 Unauthorized";
        type = "text/plain";
        buf_append_str(&body, "the stats need Authorization: Bearer TOKEN "
                              "(--stats-token-file)\n");
    } else if (!is_http) {
        stats_json(px, &body);
    } else {
        const char *path = head + 4, *end = path;
        while (*end && *end != ' ' && *end != '\r' && *end != '\n' && *end != '?') end++;
        size_t len = (size_t)(end - path);
        bool is_root = len == 1 && path[0] == '/';
        if (len == 8 && memcmp(path, "/metrics", 8) == 0) {
            type = "text/plain; version=0.0.4";
            stats_prometheus(px, &body);
        } else if ((is_root && takes_html(head)) || (len == 7 && memcmp(path, "/status", 7) == 0)) {
            type = "text/html; charset=utf-8";
            buf_append(&body, status_html, status_html_len);
        } else if (len == 12 && memcmp(path, "/status.json", 12) == 0) {
            status_json(px, &body);
        } else if (is_root || (len == 6 && memcmp(path, "/stats", 6) == 0)) {
            stats_json(px, &body);
        } else {
            status = "404 Not Found";
            type = "text/plain";
            buf_append_str(&body, "not found: try /metrics, /stats or /status\n");
        }
    }
    pthread_mutex_unlock(&px->lock);
    if (is_http) {
        char status_line[256];
        int hn = snprintf(status_line, sizeof status_line,
                          "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                          "%sConnection: close\r\n\r\n",
                          status, type, buf_used(&body),
                          is_allowed ? "" : "WWW-Authenticate: Bearer\r\n");
        buf_append(&c->out, status_line, (size_t)hn);
    }
    buf_append(&c->out, buf_start(&body), buf_used(&body));
    bool is_oom = body.is_oom || c->out.is_oom;
    buf_free(&body);
    if (is_oom) {
        conn_close(c);
        return;
    }
    c->is_writing = true;
    c->send_by_ms = now + STATS_SEND_MS;
    conn_write(c);
}

/* A slot for a new connection. With every slot taken the oldest connection
 * is closed rather than the new one: an answer takes milliseconds, so the
 * oldest is the one most likely stalling, and a client that held every slot
 * (renewing each before its deadline) would otherwise keep the port from
 * everyone; to starve a scrape now it must open STATS_CONN_MAX connections
 * in the milliseconds that scrape takes. */
static stats_conn *slot_take(stats_port *sp) {
    stats_conn *oldest = &sp->conns[0];
    for (size_t i = 0; i < STATS_CONN_MAX; i++) {
        stats_conn *c = &sp->conns[i];
        if (c->fd < 0) return c;
        if (c->accepted_ms < oldest->accepted_ms) oldest = c;
    }
    conn_close(oldest);
    return oldest;
}

static void port_accept(stats_port *sp, uint64_t now) {
    /* A bounded batch, so a flood of connections cannot keep the loop from
     * serving and expiring the ones it has. */
    for (size_t i = 0; i < STATS_CONN_MAX; i++) {
        int fd = accept4(sp->px->stats_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            /* Out of descriptors, say: the listener stays readable, and
             * polling it again at once would spin. */
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                sp->accept_after_ms = now + STATS_ACCEPT_PAUSE_MS;
            return;
        }
        stats_conn *c = slot_take(sp);
        c->fd = fd;
        c->is_writing = false;
        c->accepted_ms = c->heard_ms = now;
        c->head_len = 0;
        c->head[0] = '\0';
    }
}

static void *stats_main(void *arg) {
    stats_port *sp = arg;
    struct pollfd pfds[1 + STATS_CONN_MAX];
    stats_conn *conn_of[1 + STATS_CONN_MAX]; /* NULL: the listener */
    while (!proxy_stop) {
        uint64_t now = mono_ms(), wake_ms = now + STATS_TICK_MS;
        nfds_t count = 0;
        if (now >= sp->accept_after_ms) {
            pfds[count] = (struct pollfd){.fd = sp->px->stats_fd, .events = POLLIN};
            conn_of[count++] = NULL;
        } else if (sp->accept_after_ms < wake_ms) {
            wake_ms = sp->accept_after_ms;
        }
        for (size_t i = 0; i < STATS_CONN_MAX; i++) {
            stats_conn *c = &sp->conns[i];
            if (c->fd < 0) continue;
            pfds[count] = (struct pollfd){.fd = c->fd, .events = c->is_writing ? POLLOUT : POLLIN};
            conn_of[count++] = c;
            uint64_t due_ms = conn_due_ms(c);
            if (due_ms < wake_ms) wake_ms = due_ms;
        }
        int ready = poll(pfds, count, wake_ms > now ? (int)(wake_ms - now) : 0);
        now = mono_ms();
        bool is_acceptable = false;
        for (nfds_t k = 0; ready > 0 && k < count; k++) {
            if (!pfds[k].revents) continue;
            stats_conn *c = conn_of[k];
            if (!c)
                is_acceptable = true;
            else if (c->is_writing)
                conn_write(c);
            else if (conn_read(c, now) && c->fd >= 0)
                serve(sp, c, now);
        }
        /* After the connections: accepting may reuse a slot polled above. */
        if (is_acceptable) port_accept(sp, now);
        for (size_t i = 0; i < STATS_CONN_MAX; i++) {
            stats_conn *c = &sp->conns[i];
            if (c->fd < 0 || now < conn_due_ms(c)) continue;
            if (c->is_writing)
                conn_close(c);
            else
                serve(sp, c, now);
        }
    }
    for (size_t i = 0; i < STATS_CONN_MAX; i++)
        if (sp->conns[i].fd >= 0) conn_close(&sp->conns[i]);
    secret_free(sp->token);
    free(sp);
    return NULL;
}

int stats_start(proxy *px, const char *addr, int port, char *token, char *err, size_t err_len) {
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(addr, port_text, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_len, "stats address %s: %s", addr, gai_strerror(rc));
        secret_free(token);
        return -1;
    }
    /* Non-blocking: a connection reset between poll and accept must not
     * stop the thread in accept. */
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        snprintf(err, err_len, "stats port %s:%d: %s", addr, port, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        secret_free(token);
        return -1;
    }
    freeaddrinfo(res);
    stats_port *sp = calloc(1, sizeof *sp);
    if (!sp) {
        snprintf(err, err_len, "stats port: out of memory");
        close(fd);
        secret_free(token);
        return -1;
    }
    sp->px = px;
    sp->token = token;
    for (size_t i = 0; i < STATS_CONN_MAX; i++) sp->conns[i].fd = -1;
    px->stats_fd = fd;
    if (pthread_create(&px->stats_thread, NULL, stats_main, sp) != 0) {
        snprintf(err, err_len, "cannot start the stats thread");
        secret_free(sp->token);
        free(sp);
        close(fd);
        px->stats_fd = -1;
        return -1;
    }
    px->has_stats_thread = true;
    return 0;
}

void stats_stop(proxy *px) {
    if (px->has_stats_thread) pthread_join(px->stats_thread, NULL);
    px->has_stats_thread = false;
    if (px->stats_fd >= 0) close(px->stats_fd);
    px->stats_fd = -1;
}
