/*
 * mcmerge.c - memcached replies made from what the servers said.
 *
 * flush_all, verbosity, stats reset went to every server: the reply is the
 * one they all gave (OK, RESET, or the same error), so it says OK only when
 * every server did. A server that failed its part (ejected, down, timed
 * out) makes the reply its SERVER_ERROR, which names it.
 *
 * stats went to every server too. Each statistic is added up over the
 * servers, but for the few that describe one process, which are the
 * proxy's own (pid, uptime, time, version, pointer_size, rusage_*, threads,
 * and curr_connections / total_connections: the clients of this pool and
 * every connection the proxy took), the few that are states rather than
 * counts (accepting_conns: the least; hash_power_level, hash_is_expanding,
 * slab_reassign_running, lru_crawler_running: the largest), and those that
 * are not numbers (libevent), which are left out. The proxy's own counters
 * for the pool follow, named proxy_*. A statistic keeps the place the first
 * server gave it.
 *
 * A meta command with q went without it: the reply q would have left out
 * is dropped here, or, when it went with an mn after it, the MN is.
 *
 * Replicated pools (mcrepl.c): a write went to every live copy, and the
 * reply is the first copy's that succeeded (a delete's DELETED from any);
 * a read's hits came from whichever copy had them, and go back in key
 * order.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static bool is_error_line(const char *s, size_t n) {
    return (n >= 5 && memcmp(s, "ERROR", 5) == 0) ||
           (n >= 12 && (memcmp(s, "CLIENT_ERROR", 12) == 0 || memcmp(s, "SERVER_ERROR", 12) == 0));
}

/* Fragment f failed: its error, naming its server if the reason does not
 * ("Connection refused" does not say whose). */
static void failed_reply(req *r, uint32_t f) {
    const buf *b = &r->frags[f].reply;
    const char *s = buf_start(b);
    size_t n = buf_used(b), prefix = strlen("SERVER_ERROR ");
    const char *name = r->all_pool->backends[f].cf->name;
    if (n < prefix || memcmp(s, "SERVER_ERROR ", prefix) != 0 ||
        (n >= prefix + 7 + strlen(name) && memcmp(s + prefix, "server ", 7) == 0 &&
         memcmp(s + prefix + 7, name, strlen(name)) == 0)) {
        buf_append(&r->reply, s, n);
        return;
    }
    buf_append_str(&r->reply, "SERVER_ERROR server ");
    buf_append_str(&r->reply, name);
    buf_append(&r->reply, ": ", 2);
    buf_append(&r->reply, s + prefix, n - prefix);
}

static void merge_same(req *r) {
    const buf *first = &r->frags[0].reply;
    const buf *error = NULL;
    bool is_same = true;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (r->frags[f].failed) {
            failed_reply(r, f);
            return;
        }
        if (!error && is_error_line(buf_start(b), buf_used(b))) error = b;
        if (buf_used(b) != buf_used(first) ||
            memcmp(buf_start(b), buf_start(first), buf_used(b)) != 0)
            is_same = false;
    }
    if (is_same)
        buf_append(&r->reply, buf_start(first), buf_used(first));
    else if (error)
        buf_append(&r->reply, buf_start(error), buf_used(error));
    else
        buf_append_str(&r->reply, "SERVER_ERROR the servers of the pool answered differently\r\n");
}

/* ---- stats ---------------------------------------------------------------- */

typedef enum stat_rule { RULE_SUM, RULE_MIN, RULE_MAX, RULE_PROXY } stat_rule;

static const struct {
    const char *name;
    stat_rule rule;
} stat_rules[] = {
    {"pid", RULE_PROXY},
    {"uptime", RULE_PROXY},
    {"time", RULE_PROXY},
    {"version", RULE_PROXY},
    {"libevent", RULE_PROXY},
    {"pointer_size", RULE_PROXY},
    {"rusage_user", RULE_PROXY},
    {"rusage_system", RULE_PROXY},
    {"curr_connections", RULE_PROXY},
    {"total_connections", RULE_PROXY},
    {"threads", RULE_PROXY},
    {"accepting_conns", RULE_MIN},
    {"hash_power_level", RULE_MAX},
    {"hash_is_expanding", RULE_MAX},
    {"slab_reassign_running", RULE_MAX},
    {"lru_crawler_running", RULE_MAX},
};

typedef struct stat_entry {
    const char *name;
    size_t name_len;
    stat_rule rule;
    bool is_number; /* every server's value was one */
    uint64_t value;
} stat_entry;

typedef struct stat_table {
    stat_entry *e;
    size_t count, cap;
    bool is_oom;
} stat_table;

static stat_rule rule_of(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof stat_rules / sizeof stat_rules[0]; i++)
        if (strlen(stat_rules[i].name) == len && memcmp(stat_rules[i].name, name, len) == 0)
            return stat_rules[i].rule;
    return RULE_SUM;
}

static bool parse_value(const char *s, size_t n, uint64_t *out) {
    if (n == 0 || n > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* One server's "STAT name value" line into t. */
static void stat_add_line(stat_table *t, const char *s, size_t n) {
    const char *name = s + 5, *end = s + n;
    const char *sp = memchr(name, ' ', (size_t)(end - name));
    if (!sp || sp == name) return;
    size_t name_len = (size_t)(sp - name);
    uint64_t v = 0;
    bool is_number = parse_value(sp + 1, (size_t)(end - sp - 1), &v);
    stat_entry *e = NULL;
    for (size_t i = 0; i < t->count && !e; i++)
        if (t->e[i].name_len == name_len && memcmp(t->e[i].name, name, name_len) == 0)
            e = &t->e[i];
    if (!e) {
        if (t->count == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 128;
            stat_entry *grown = realloc(t->e, cap * sizeof *grown);
            if (!grown) {
                t->is_oom = true;
                return;
            }
            t->e = grown;
            t->cap = cap;
        }
        e = &t->e[t->count++];
        *e = (stat_entry){.name = name, .name_len = name_len, .rule = rule_of(name, name_len),
                          .is_number = is_number, .value = v};
        return;
    }
    e->is_number = e->is_number && is_number;
    switch (e->rule) {
    case RULE_SUM: e->value += v; break;
    case RULE_MIN: e->value = v < e->value ? v : e->value; break;
    case RULE_MAX: e->value = v > e->value ? v : e->value; break;
    case RULE_PROXY: break;
    }
}

static void stat_line(buf *b, const char *name, size_t name_len, const char *value) {
    buf_append_str(b, "STAT ");
    buf_append(b, name, name_len);
    buf_append(b, " ", 1);
    buf_append_str(b, value);
    buf_append(b, "\r\n", 2);
}

/* The proxy's value for a RULE_PROXY statistic; false: it has none. */
static bool proxy_value(const req *r, const char *name, size_t len, char *out, size_t out_len) {
    const proxy *px = r->w->px;
    uint64_t now = (uint64_t)time(NULL);
    struct rusage ru;
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
    if (IS("pid"))
        snprintf(out, out_len, "%ld", (long)getpid());
    else if (IS("uptime"))
        snprintf(out, out_len, "%llu", (unsigned long long)(now - px->start_time));
    else if (IS("time"))
        snprintf(out, out_len, "%llu", (unsigned long long)now);
    else if (IS("version"))
        snprintf(out, out_len, "%s", PROXY_NAME "-" CHASH_VERSION_STRING);
    else if (IS("pointer_size"))
        snprintf(out, out_len, "%u", (unsigned)(8 * sizeof(void *)));
    else if ((IS("rusage_user") || IS("rusage_system")) && getrusage(RUSAGE_SELF, &ru) == 0) {
        const struct timeval *tv = IS("rusage_user") ? &ru.ru_utime : &ru.ru_stime;
        snprintf(out, out_len, "%ld.%06ld", (long)tv->tv_sec, (long)tv->tv_usec);
    } else if (IS("curr_connections"))
        snprintf(out, out_len, "%u", (unsigned)atomic_load(&px->pool_clients[r->c->pool->index]));
    else if (IS("total_connections"))
        snprintf(out, out_len, "%llu", (unsigned long long)atomic_load(&px->total_connections));
    else if (IS("threads"))
        snprintf(out, out_len, "%u", (unsigned)px->worker_count);
    else
        return false;
#undef IS
    return true;
}

static void proxy_counter(void *arg, const char *name, uint64_t v) {
    char line[128];
    snprintf(line, sizeof line, "STAT proxy_%s %llu\r\n", name, (unsigned long long)v);
    buf_append_str(arg, line);
}

static void merge_stats(req *r) {
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const buf *b = &r->frags[f].reply;
        if (r->frags[f].failed) {
            failed_reply(r, f);
            return;
        }
        if (!(buf_used(b) >= 5 && (memcmp(buf_start(b), "STAT ", 5) == 0 ||
                                   memcmp(buf_start(b), "END", 3) == 0))) {
            buf_append(&r->reply, buf_start(b), buf_used(b)); /* the server's error */
            return;
        }
    }
    stat_table t = {0};
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const char *s = buf_start(&r->frags[f].reply);
        const char *end = s + buf_used(&r->frags[f].reply);
        while (s < end) {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            if (!nl) break;
            size_t n = (size_t)(nl - s);
            if (n > 0 && s[n - 1] == '\r') n--;
            if (n > 5 && memcmp(s, "STAT ", 5) == 0) stat_add_line(&t, s, n);
            s = nl + 1;
        }
    }
    if (t.is_oom) {
        free(t.e);
        buf_append_str(&r->reply, "SERVER_ERROR out of memory\r\n");
        return;
    }
    for (size_t i = 0; i < t.count; i++) {
        const stat_entry *e = &t.e[i];
        char value[64];
        if (e->rule == RULE_PROXY) {
            if (proxy_value(r, e->name, e->name_len, value, sizeof value))
                stat_line(&r->reply, e->name, e->name_len, value);
        } else if (e->is_number) {
            snprintf(value, sizeof value, "%llu", (unsigned long long)e->value);
            stat_line(&r->reply, e->name, e->name_len, value);
        }
    }
    free(t.e);
    char servers[32];
    snprintf(servers, sizeof servers, "%u", (unsigned)r->frag_count);
    stat_line(&r->reply, "proxy_servers", 13, servers);
    stats_pool_each(r->w->px, r->c->pool->index, proxy_counter, &r->reply);
    buf_append_str(&r->reply, "END\r\n");
}

/* ---- quiet meta commands -------------------------------------------------- */

/* The reply's first line starts with the two-letter code. */
static bool has_code(const char *s, size_t n, const char *code) {
    return n >= 3 && s[0] == code[0] && s[1] == code[1] && (s[2] == ' ' || s[2] == '\r' ||
                                                            s[2] == '\n');
}

/* Fragment f's reply as the client's, for the command r->mc_quiet sent
 * without its q flag (or with an mn after it): without the reply q would
 * have left out, or the MN. */
static void quiet_reply(req *r, const frag *f) {
    const char *s = buf_start(&f->reply);
    size_t n = buf_used(&f->reply);
    if (f->failed) {
        buf_append(&r->reply, s, n);
        return;
    }
    if (f->mc_reply == MC_REPLY_META_MN) {
        /* the server's reply, if q left one, then the MN of our mn */
        if (n >= 4 && memcmp(s + n - 4, "MN\r\n", 4) == 0)
            n -= 4;
        else if (n >= 3 && memcmp(s + n - 3, "MN\n", 3) == 0)
            n -= 3;
        buf_append(&r->reply, s, n);
        return;
    }
    bool is_left_out = r->mc_quiet == MC_MG ? has_code(s, n, "EN")
                       : r->mc_quiet == MC_MA
                           ? has_code(s, n, "HD") || has_code(s, n, "VA")
                           : (r->mc_quiet == MC_MS || r->mc_quiet == MC_MD) && has_code(s, n, "HD");
    if (!is_left_out) buf_append(&r->reply, s, n);
}

static void merge_quiet(req *r) { quiet_reply(r, &r->one); }

/* ---- replicated pools (mcrepl.c) ------------------------------------------ */

/* A delete that found the key on this copy. */
static bool says_deleted(const req *r, const buf *b) {
    const char *s = buf_start(b);
    size_t n = buf_used(b);
    if (r->mc_quiet == MC_DELETE) return n == 9 && memcmp(s, "DELETED\r\n", 9) == 0;
    return r->mc_quiet == MC_MD && has_code(s, n, "HD");
}

/* A write to every live copy: the first copy's reply, in ring order, that
 * is not a failure or an error; a delete's DELETED (md: HD) from any copy;
 * when no copy succeeded, the first copy's error. */
static void merge_allsync(req *r) {
    uint32_t pick = UINT32_MAX;
    for (uint32_t f = 0; f < r->frag_count; f++) {
        const frag *fr = &r->frags[f];
        if (fr->failed || is_error_line(buf_start(&fr->reply), buf_used(&fr->reply))) continue;
        if (pick == UINT32_MAX) pick = f;
        if (says_deleted(r, &fr->reply)) {
            pick = f;
            break;
        }
    }
    const frag *fr = &r->frags[pick == UINT32_MAX ? 0 : pick];
    if (r->mc_is_quiet)
        quiet_reply(r, fr);
    else
        buf_append(&r->reply, buf_start(&fr->reply), buf_used(&fr->reply));
}

/* A read over the copies: each key's hit in key order, then END (mg: its
 * reply, a miss dropped under q); when no server answered, the first
 * failure. */
static void merge_failover(req *r) {
    const mc_failover *fo = r->fo;
    if (!fo) return; /* the reply was made when it was routed */
    if (!fo->has_answer || fo->values.is_oom) {
        if (fo->values.is_oom)
            buf_append_str(&r->reply, "SERVER_ERROR out of memory\r\n");
        else if (buf_used(&fo->error))
            buf_append(&r->reply, buf_start(&fo->error), buf_used(&fo->error));
        else
            buf_append_str(&r->reply, "SERVER_ERROR no server answered\r\n");
        return;
    }
    const char *values = buf_start(&fo->values);
    for (uint32_t i = 0; i < fo->key_count; i++) {
        const mc_fo_key *k = &fo->keys[i];
        if (!k->has_reply || (r->mc_quiet != MC_MG && !k->is_hit)) continue;
        if (r->mc_quiet == MC_MG && r->mc_is_quiet && !k->is_hit) continue;
        buf_append(&r->reply, values + k->value_off, k->value_len);
    }
    if (r->mc_quiet != MC_MG) buf_append_str(&r->reply, "END\r\n");
}

void mc_merge_reply(req *r) {
    switch (r->kind) {
    case REQ_MC_SAME: merge_same(r); break;
    case REQ_MC_STATS: merge_stats(r); break;
    case REQ_MC_QUIET: merge_quiet(r); break;
    case REQ_MC_ALLSYNC: merge_allsync(r); break;
    case REQ_MC_FAILOVER: merge_failover(r); break;
    default: break;
    }
}
