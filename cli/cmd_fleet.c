/*
 * cmd_fleet.c - `chash fleet`: a fleet of chash-proxies that take their
 * pools from etcd (issue 15), seen and changed from the command line.
 *
 *   status   what etcd holds: the committed epoch and pools, a change in
 *            progress, the live proxies and whether each is on the epoch
 *   plan     a configuration file against the committed pools: per pool,
 *            what changes and how much of the key space moves
 *   apply    the coordinator of proxy/fleetproto.h's protocol: prepare,
 *            switch, commit (or abort), phase by phase, with timings
 *   abort    ends a change in progress
 *
 * The protocol is fleetproto.h's; this file only drives it. Every decision
 * is taken on one linearizable read of the whole prefix (one etcd
 * revision), so the live set, the answers and the change are seen together.
 *
 * An answer counts only when etcd wrote it after the phase it answers began
 * (its mod_revision is past the revision of the write that started the
 * phase): a P/ready/ID left from an earlier, aborted attempt at the same
 * epoch never counts for this one.
 *
 * Unlike the other commands this one is not a client of <chash.h> alone:
 * it reads configuration files with the proxy's own loader (config.h) and
 * talks to etcd with the proxy's client (etcd.h), so that what it checks
 * is what every proxy will check.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "config.h"
#include "etcd.h"
#include "fleetproto.h"
#include "secret.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char help[] =
    "usage: chash fleet status  --etcd URL[,URL...] [ETCD OPTIONS] [--json]\n"
    "       chash fleet plan    --etcd URL[,URL...] [ETCD OPTIONS] [--json] FILE\n"
    "       chash fleet apply   --etcd URL[,URL...] [ETCD OPTIONS] [--json] [--yes]\n"
    "                           [--timeout S] FILE\n"
    "       chash fleet abort   --etcd URL[,URL...] [ETCD OPTIONS] [--json]\n"
    "                           [--reason TEXT]\n"
    "\n"
    "A fleet of chash-proxies started with --etcd takes its pools from etcd, under\n"
    "a prefix P: P/pools/NAME (each pool's YAML), P/epoch (the committed epoch),\n"
    "P/change (a change in progress), P/proxies/ID and P/ready/ID (each live\n"
    "proxy and its answer to the change). proxy/fleetproto.h has the protocol;\n"
    "docs/proxy.md explains it.\n"
    "\n"
    "  status  the committed epoch and pools, the change in progress, and each\n"
    "          live proxy with the epoch it serves\n"
    "  plan    FILE (a proxy configuration: pools) against the committed pools:\n"
    "          per pool unchanged, added, removed or changed, with the servers\n"
    "          before and after and the share of the key space that moves\n"
    "  apply   checks FILE, shows the plan, asks (unless --yes), then moves every\n"
    "          live proxy to the new pools: prepare, switch, commit. A proxy that\n"
    "          refuses, or no answer within --timeout seconds (default 15) in a\n"
    "          phase, aborts the change: the fleet stays on its epoch. Exit 0:\n"
    "          committed or unchanged; 1: aborted or failed; 2: bad usage or FILE\n"
    "  abort   ends the change in progress (phase abort with --reason, then\n"
    "          P/change deleted)\n"
    "\n"
    "ETCD OPTIONS:\n"
    "  --etcd URL[,URL...]     the cluster's client URLs (required)\n"
    "  --etcd-prefix P         the fleet's prefix (default /chash)\n"
    "  --etcd-user U           authenticate as U; the password comes from\n"
    "                          $CHASH_ETCD_PASSWORD or --etcd-password-file F\n"
    "  --etcd-cacert F, --etcd-cert F, --etcd-key F   https: CA, client cert, key\n"
    "\n"
    "Host names in FILE are not resolved here: each proxy resolves them when it\n"
    "prepares the change, and refuses it when it cannot.\n";

#define FLEET_POLL_MS 20

/* ---- options ---------------------------------------------------------- */

typedef struct fleet_opts {
    const char *sub; /* "status", "plan", "apply", "abort": messages say "fleet SUB" */
    char cmd[32];
    const char *endpoints;
    const char *prefix;
    const char *user;
    char *password;
    const char *cacert, *cert, *key;
    bool is_json;
    bool is_yes;
    double timeout_s;
    const char *reason;
    const char *file;
} fleet_opts;

/* Progress goes to stdout, or to stderr when stdout carries JSON. */
static FILE *progress(const fleet_opts *o) { return o->is_json ? stderr : stdout; }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void say(const fleet_opts *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(progress(o), fmt, ap);
    va_end(ap);
    fflush(progress(o));
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void appendf(char *dst, size_t cap, const char *fmt, ...) {
    size_t used = strlen(dst);
    if (used + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst + used, cap - used, fmt, ap);
    va_end(ap);
}

static double now_s(void) { return (double)cli_now_ns() / 1e9; }

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static volatile sig_atomic_t is_interrupted;

static void on_interrupt(int sig) {
    (void)sig;
    is_interrupted = 1;
}

/* Reads a whole file into a NUL-terminated buffer; NULL with errno. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *more = realloc(buf, cap * 2);
        if (!more) free(buf);
        buf = more;
        cap *= 2;
    }
    bool is_err = ferror(f);
    fclose(f);
    if (!buf || is_err) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- etcd ------------------------------------------------------------- */

static etcd *open_etcd(const fleet_opts *o) {
    etcd_options opt = {.timeout_ms = 3000,
                        .username = o->user,
                        .password = o->password,
                        .ca_file = o->cacert,
                        .cert_file = o->cert,
                        .key_file = o->key};
    etcd *e = NULL;
    int rc = etcd_create(o->endpoints, &opt, &e);
    if (rc != ETCD_OK) {
        cli_usage_error(o->cmd, "--etcd %s: %s", o->endpoints,
                        rc == ETCD_EINVAL ? "expected http:// or https:// URLs, comma-separated"
                                          : etcd_strerror(rc));
        return NULL;
    }
    return e;
}

/* A key under the prefix: P + suffix (+ name). The caller frees. */
static char *key_of(const fleet_opts *o, const char *suffix, const char *name) {
    size_t n = strlen(o->prefix) + strlen(suffix) + (name ? strlen(name) : 0) + 1;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s%s%s", o->prefix, suffix, name ? name : "");
    return k;
}

/* ---- what etcd holds -------------------------------------------------- */

typedef struct live_proxy {
    char *id;
    fleet_member m; /* zeroed when is_bad */
    bool is_bad;
    int64_t lease;
} live_proxy;

typedef struct proxy_answer {
    char *id;
    fleet_ready r;
    bool is_bad;
    int64_t mod_revision;
} proxy_answer;

typedef struct fleet_state {
    int64_t revision; /* of the read */
    uint64_t epoch;
    int64_t epoch_mod_revision; /* 0: no P/epoch */
    bool has_change;
    int64_t change_mod_revision;
    fleet_change change; /* has_change and !is_change_bad */
    bool is_change_bad;
    const char *change_why;
    bool is_epoch_bad;
    fleet_pools pools;
    size_t bad_pool_keys;
    live_proxy *proxies;
    size_t proxy_count;
    proxy_answer *answers;
    size_t answer_count;
} fleet_state;

static void state_free(fleet_state *s) {
    fleet_change_free(&s->change);
    fleet_pools_free(&s->pools);
    for (size_t i = 0; i < s->proxy_count; i++) {
        free(s->proxies[i].id);
        fleet_member_free(&s->proxies[i].m);
    }
    free(s->proxies);
    for (size_t i = 0; i < s->answer_count; i++) {
        free(s->answers[i].id);
        fleet_ready_free(&s->answers[i].r);
    }
    free(s->answers);
    *s = (fleet_state){0};
}

static bool has_prefix(const char *s, size_t n, const char *p) {
    size_t m = strlen(p);
    return n >= m && memcmp(s, p, m) == 0;
}

/* Sorts the key's value into s. Keys that are not the protocol's (another
 * prefix below ours, a bad name) are left alone. */
static int state_take(fleet_state *s, const fleet_opts *o, const etcd_kv *kv) {
    size_t plen = strlen(o->prefix);
    if (kv->key_len < plen || memcmp(kv->key, o->prefix, plen) != 0) return 0;
    const char *k = kv->key + plen;
    size_t n = kv->key_len - plen;
    if (n == strlen(FLEET_KEY_EPOCH) && has_prefix(k, n, FLEET_KEY_EPOCH)) {
        s->epoch_mod_revision = kv->mod_revision;
        s->is_epoch_bad = fleet_epoch_parse(kv->value, kv->value_len, &s->epoch) != 0;
        return 0;
    }
    if (n == strlen(FLEET_KEY_CHANGE) && has_prefix(k, n, FLEET_KEY_CHANGE)) {
        s->has_change = true;
        s->change_mod_revision = kv->mod_revision;
        s->is_change_bad =
            fleet_change_decode(kv->value, kv->value_len, &s->change, &s->change_why) != 0;
        return 0;
    }
    const char *kinds[] = {FLEET_KEY_POOLS, FLEET_KEY_PROXIES, FLEET_KEY_READY};
    for (int kind = 0; kind < 3; kind++) {
        if (!has_prefix(k, n, kinds[kind])) continue;
        const char *name = k + strlen(kinds[kind]);
        size_t name_len = n - strlen(kinds[kind]);
        if (!fleet_name_is_valid(name, name_len)) {
            s->bad_pool_keys += kind == 0;
            return 0;
        }
        char *id = strndup(name, name_len);
        if (!id) return -1;
        if (kind == 0) {
            int rc = fleet_pools_add(&s->pools, name, name_len, kv->value, kv->value_len);
            free(id);
            if (rc != 0) return -1;
        } else if (kind == 1) {
            live_proxy *more = realloc(s->proxies, (s->proxy_count + 1) * sizeof *more);
            if (!more) {
                free(id);
                return -1;
            }
            s->proxies = more;
            live_proxy *p = &s->proxies[s->proxy_count++];
            *p = (live_proxy){.id = id, .lease = kv->lease};
            p->is_bad = fleet_member_decode(kv->value, kv->value_len, &p->m, NULL) != 0;
        } else {
            proxy_answer *more = realloc(s->answers, (s->answer_count + 1) * sizeof *more);
            if (!more) {
                free(id);
                return -1;
            }
            s->answers = more;
            proxy_answer *a = &s->answers[s->answer_count++];
            *a = (proxy_answer){.id = id, .mod_revision = kv->mod_revision};
            a->is_bad = fleet_ready_decode(kv->value, kv->value_len, &a->r, NULL) != 0;
        }
        return 0;
    }
    return 0;
}

/* One linearizable read of P/: everything the protocol keeps, at one
 * revision. Returns ETCD_OK or the call's error (etcd_errmsg says why). */
static int state_read(etcd *e, const fleet_opts *o, fleet_state *s) {
    *s = (fleet_state){0};
    char *prefix = key_of(o, "/", NULL);
    if (!prefix) return ETCD_ENOMEM;
    etcd_kvs got;
    int rc = etcd_get(e, prefix, strlen(prefix), true, &got);
    free(prefix);
    if (rc != ETCD_OK) return rc;
    s->revision = got.revision;
    for (size_t i = 0; i < got.kv_count && rc == ETCD_OK; i++)
        if (state_take(s, o, &got.kvs[i]) != 0) rc = ETCD_ENOMEM;
    etcd_kvs_free(&got);
    if (rc != ETCD_OK) state_free(s);
    return rc;
}

static const proxy_answer *answer_of(const fleet_state *s, const char *id) {
    for (size_t i = 0; i < s->answer_count; i++)
        if (strcmp(s->answers[i].id, id) == 0) return &s->answers[i];
    return NULL;
}

/* ---- configurations --------------------------------------------------- */

/* Host names stay unresolved here (each proxy resolves its own): numeric
 * addresses as getaddrinfo reads them, any other name a fixed address of
 * its own in 10/8, so two pools on one name still collide and two names
 * do not. */
static int resolve_offline(void *user, const char *host, int port, bool is_passive,
                           conf_addr *out, const char **why) {
    (void)user;
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (is_passive ? AI_PASSIVE : 0);
    if (getaddrinfo(host, port_text, &hints, &res) == 0 && res) {
        memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
        out->sa_len = (socklen_t)res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
    }
    size_t len = strlen(host);
    if (len == 0 || len > 253) {
        *why = "not a host name";
        return -1;
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)host[i]) * 16777619u;
    struct sockaddr_in *in = (struct sockaddr_in *)&out->sa;
    memset(out, 0, sizeof *out);
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    in->sin_addr.s_addr = htonl(0x0a000000u | (h & 0xffffffu));
    out->sa_len = (socklen_t)sizeof *in;
    return 0;
}

static int parse_conf(const char *text, size_t len, const char *path, conf **out, char *err,
                      size_t err_len) {
    /* The pools run on the proxies' hosts: their names and files are
     * theirs, not this one's. */
    const conf_options opt = {.resolve = resolve_offline, .skip_files = true};
    return conf_parse_with(&opt, text, len, path, out, err, err_len);
}

/* The committed pools as the loader reads them; NULL (and why in err)
 * when there are none or they do not parse. */
static conf *pools_conf(const fleet_pools *p, char *err, size_t err_len) {
    char *text;
    size_t len;
    conf *cf = NULL;
    if (p->count == 0) {
        snprintf(err, err_len, "no pools");
        return NULL;
    }
    if (fleet_pools_compose(p, &text, &len) != 0) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (parse_conf(text, len, "etcd pools", &cf, err, err_len) != 0) cf = NULL;
    free(text);
    return cf;
}

static const conf_pool *conf_find(const conf *cf, const char *name) {
    for (size_t i = 0; cf && i < cf->pool_count; i++)
        if (strcmp(cf->pools[i].name, name) == 0) return &cf->pools[i];
    return NULL;
}

/* A file read, checked by the proxy's loader, and split into pools. */
typedef struct new_pools {
    fleet_pools pools;
    conf *cf;
} new_pools;

static int load_new(const fleet_opts *o, new_pools *out) {
    *out = (new_pools){0};
    size_t len = 0;
    char *text = read_file(o->file, &len);
    if (!text) return cli_usage_error(o->cmd, "%s: %s", o->file, strerror(errno));
    char err[CONF_ERR_MAX];
    if (parse_conf(text, len, o->file, &out->cf, err, sizeof err) != 0) {
        free(text);
        return cli_usage_error(o->cmd, "%s", err);
    }
    if (fleet_pools_split(text, len, &out->pools, err, sizeof err) != 0) {
        free(text);
        conf_free(out->cf);
        return cli_usage_error(o->cmd, "%s:%s", o->file, err);
    }
    free(text);
    /* What the proxies will read is the composed text: it must be the
     * file's pools, or the split lost something. */
    conf *again = pools_conf(&out->pools, err, sizeof err);
    bool is_same = again && again->pool_count == out->cf->pool_count;
    for (size_t i = 0; is_same && i < again->pool_count; i++) {
        const conf_pool *a = &again->pools[i], *b = conf_find(out->cf, a->name);
        is_same = b && a->server_count == b->server_count && strcmp(a->listen, b->listen) == 0;
    }
    conf_free(again);
    if (!is_same) {
        fleet_pools_free(&out->pools);
        conf_free(out->cf);
        return cli_usage_error(o->cmd, "%s: its pools, stored one by one, read differently "
                               "(%s): write each pool without anchors shared between pools",
                               o->file, again ? "different pools" : err);
    }
    return 0;
}

static void new_free(new_pools *n) {
    fleet_pools_free(&n->pools);
    conf_free(n->cf);
}

/* ---- plans ------------------------------------------------------------ */

typedef enum pool_status { POOL_UNCHANGED, POOL_ADDED, POOL_REMOVED, POOL_CHANGED } pool_status;

static const char *status_name(pool_status s) {
    switch (s) {
    case POOL_UNCHANGED: return "unchanged";
    case POOL_ADDED: return "added";
    case POOL_REMOVED: return "removed";
    case POOL_CHANGED: return "changed";
    }
    return "?";
}

typedef struct pool_line {
    const char *name;
    pool_status status;
    fleet_pool_plan plan;
    int plan_rc; /* CHASH_OK, or why there is no plan */
    const conf_pool *before, *after; /* changed pools: for the bucket moves */
} pool_line;

typedef struct plan_all {
    pool_line *lines;
    size_t count;
    size_t changed; /* lines not unchanged */
    bool is_pool_set_changed;
} plan_all;

/* Every pool of old and now, by name, with what happens to it. old_cf may
 * be NULL (nothing committed, or it does not parse). */
static int plan_make(const fleet_pools *old, const conf *old_cf, const new_pools *now,
                     plan_all *out) {
    *out = (plan_all){0};
    out->lines = calloc(old->count + now->pools.count + 1, sizeof *out->lines);
    if (!out->lines) return -1;
    size_t i = 0, j = 0;
    while (i < old->count || j < now->pools.count) {
        int c = i == old->count          ? 1
                : j == now->pools.count ? -1
                                         : strcmp(old->pools[i].name, now->pools.pools[j].name);
        pool_line *l = &out->lines[out->count++];
        if (c < 0) {
            *l = (pool_line){.name = old->pools[i].name, .status = POOL_REMOVED};
            const conf_pool *a = conf_find(old_cf, l->name);
            l->plan.servers_before = a ? a->server_count : 0;
            i++;
        } else if (c > 0) {
            *l = (pool_line){.name = now->pools.pools[j].name, .status = POOL_ADDED};
            const conf_pool *b = conf_find(now->cf, l->name);
            l->plan.servers_after = b ? b->server_count : 0;
            j++;
        } else {
            bool is_same = strcmp(old->pools[i].yaml, now->pools.pools[j].yaml) == 0;
            *l = (pool_line){.name = now->pools.pools[j].name,
                             .status = is_same ? POOL_UNCHANGED : POOL_CHANGED};
            const conf_pool *a = conf_find(old_cf, l->name), *b = conf_find(now->cf, l->name);
            l->before = a;
            l->after = b;
            if (a && b)
                l->plan_rc = fleet_pool_plan_of(a, b, &l->plan);
            else
                l->plan_rc = CHASH_EINVAL;
            if (b) l->plan.servers_after = b->server_count;
            i++;
            j++;
        }
        if (l->status != POOL_UNCHANGED) out->changed++;
        /* Nothing committed yet: the proxies start on these pools. */
        if ((l->status == POOL_ADDED || l->status == POOL_REMOVED) && old->count > 0)
            out->is_pool_set_changed = true;
    }
    return 0;
}

static int print_move(void *user, const conf_bucket_move *m) {
    char text[512];
    conf_bucket_move_text(m, text, sizeof text);
    fprintf(user, "      %s\n", text);
    return 0;
}

/* ", N of B buckets move (R runs), K overridden keys", then each move. */
static void print_bucket_moves(const pool_line *l, FILE *f) {
    fprintf(f, ", %llu of %llu buckets move (%llu runs), %llu overridden keys move\n",
            (unsigned long long)l->plan.buckets_moved, (unsigned long long)l->plan.bucket_count,
            (unsigned long long)l->plan.range_count, (unsigned long long)l->plan.keys_moved);
    if (l->before && l->after) conf_pool_bucket_plan(l->before, l->after, print_move, f);
}

static int json_move(void *user, const conf_bucket_move *m) {
    char text[512];
    conf_bucket_move_text(m, text, sizeof text);
    json_array_append_new(user, json_string(text));
    return 0;
}

static void plan_print(const fleet_opts *o, const plan_all *p, FILE *f) {
    (void)o;
    for (size_t i = 0; i < p->count; i++) {
        const pool_line *l = &p->lines[i];
        fprintf(f, "  %-16s %-9s ", l->name, status_name(l->status));
        switch (l->status) {
        case POOL_ADDED: fprintf(f, "%zu servers\n", l->plan.servers_after); break;
        case POOL_REMOVED: fprintf(f, "%zu servers\n", l->plan.servers_before); break;
        case POOL_UNCHANGED:
        case POOL_CHANGED:
            fprintf(f, "%zu -> %zu servers", l->plan.servers_before, l->plan.servers_after);
            if (l->plan_rc != CHASH_OK)
                fprintf(f, ", no plan: %s\n",
                        l->plan_rc == CHASH_EINVAL ? "the committed pool does not parse"
                                                   : chash_strerror(l->plan_rc));
            else if (l->plan.is_buckets)
                print_bucket_moves(l, f);
            else if (l->plan.is_exact)
                fprintf(f, ", %.4f%% of the key space moves (%llu hash ranges)\n",
                        100.0 * l->plan.moved_fraction,
                        (unsigned long long)l->plan.range_count);
            else if (l->plan.samples)
                fprintf(f, ", about %.2f%% of the keys move (of %llu sampled)\n",
                        100.0 * l->plan.moved_fraction, (unsigned long long)l->plan.samples);
            else
                fprintf(f, ", random distribution: no placement to compare\n");
            break;
        }
    }
    if (p->is_pool_set_changed)
        fprintf(f, "note: pools added or removed: running proxies refuse that (they keep "
                   "their listeners); restart them with the new pools\n");
}

static json_t *plan_json(const plan_all *p) {
    json_t *arr = json_array();
    for (size_t i = 0; i < p->count; i++) {
        const pool_line *l = &p->lines[i];
        json_t *j = json_pack("{s:s,s:s,s:I,s:I}", "name", l->name, "status",
                              status_name(l->status), "servers_before",
                              (json_int_t)l->plan.servers_before, "servers_after",
                              (json_int_t)l->plan.servers_after);
        if ((l->status == POOL_CHANGED || l->status == POOL_UNCHANGED) && l->plan_rc == CHASH_OK &&
            (l->plan.is_exact || l->plan.samples)) {
            json_object_set_new(j, "moved_fraction", json_real(l->plan.moved_fraction));
            json_object_set_new(j, "exact", json_boolean(l->plan.is_exact));
            if (l->plan.is_buckets) {
                json_t *moves = json_array();
                if (l->before && l->after)
                    conf_pool_bucket_plan(l->before, l->after, json_move, moves);
                json_object_set_new(j, "buckets", json_integer((json_int_t)l->plan.bucket_count));
                json_object_set_new(j, "buckets_moved",
                                    json_integer((json_int_t)l->plan.buckets_moved));
                json_object_set_new(j, "keys_moved", json_integer((json_int_t)l->plan.keys_moved));
                json_object_set_new(j, "bucket_moves", moves);
            } else if (l->plan.is_exact) {
                json_object_set_new(j, "hash_ranges", json_integer((json_int_t)l->plan.range_count));
                json_object_set_new(j, "moved_hashes",
                                    json_integer((json_int_t)l->plan.moved_hashes));
            } else {
                json_object_set_new(j, "samples", json_integer((json_int_t)l->plan.samples));
            }
        } else if (l->status == POOL_CHANGED || l->status == POOL_UNCHANGED) {
            json_object_set_new(j, "moved_fraction", json_null());
        }
        json_array_append_new(arr, j);
    }
    return arr;
}

static void print_json(json_t *j) {
    char *text = json_dumps(j, JSON_INDENT(2));
    if (text) {
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
    }
    json_decref(j);
}

/* ---- status ----------------------------------------------------------- */

static json_t *json_text(const char *s) { return s ? json_string(s) : json_null(); }

static int do_status(const fleet_opts *o, etcd *e) {
    fleet_state s;
    int rc = state_read(e, o, &s);
    if (rc != ETCD_OK) return cli_fail(o->cmd, "%s", etcd_errmsg(e));
    char err[CONF_ERR_MAX] = "";
    conf *cf = s.pools.count ? pools_conf(&s.pools, err, sizeof err) : NULL;
    if (o->is_json) {
        json_t *change = json_null();
        if (s.has_change && !s.is_change_bad) {
            json_t *names = json_array();
            for (size_t i = 0; i < s.change.pools.count; i++)
                json_array_append_new(names, json_string(s.change.pools.pools[i].name));
            change = json_pack("{s:I,s:I,s:s,s:o,s:o,s:o,s:I}", "epoch",
                               (json_int_t)s.change.epoch, "from", (json_int_t)s.change.from,
                               "phase", fleet_phase_name(s.change.phase), "by",
                               json_text(s.change.by), "reason", json_text(s.change.reason),
                               "pools", names, "mod_revision", (json_int_t)s.change_mod_revision);
        } else if (s.has_change) {
            change = json_pack("{s:s}", "error", s.change_why);
        }
        json_t *pools = json_array();
        for (size_t i = 0; i < s.pools.count; i++) {
            const conf_pool *p = conf_find(cf, s.pools.pools[i].name);
            json_array_append_new(
                pools, p ? json_pack("{s:s,s:I,s:s,s:s}", "name", p->name, "servers",
                                     (json_int_t)p->server_count, "distribution",
                                     conf_dist_name(p), "listen", p->listen)
                         : json_pack("{s:s,s:s}", "name", s.pools.pools[i].name, "error", err));
        }
        json_t *proxies = json_array();
        for (size_t i = 0; i < s.proxy_count; i++) {
            const live_proxy *p = &s.proxies[i];
            json_array_append_new(
                proxies, p->is_bad
                             ? json_pack("{s:s,s:s,s:b}", "id", p->id, "error",
                                         "a value that is not a member record", "on_epoch", 0)
                             : json_pack("{s:s,s:s,s:I,s:s,s:I,s:s,s:I,s:b}", "id", p->id, "host",
                                         p->m.host, "pid", (json_int_t)p->m.pid, "listen",
                                         p->m.listen, "epoch", (json_int_t)p->m.epoch, "state",
                                         p->m.state, "started_unix",
                                         (json_int_t)p->m.started_unix, "on_epoch",
                                         p->m.epoch == s.epoch));
        }
        print_json(json_pack("{s:s,s:I,s:I,s:o,s:o,s:o}", "prefix", o->prefix, "epoch",
                             (json_int_t)s.epoch, "revision", (json_int_t)s.revision, "change",
                             change, "pools", pools, "proxies", proxies));
    } else {
        printf("prefix %s: epoch %llu%s (etcd revision %lld)\n", o->prefix,
               (unsigned long long)s.epoch, s.is_epoch_bad ? " (P/epoch is not a number!)" : "",
               (long long)s.revision);
        if (!s.has_change)
            printf("change: none\n");
        else if (s.is_change_bad)
            printf("change: P/change holds something unreadable (%s): `chash fleet abort` "
                   "removes it\n",
                   s.change_why);
        else
            printf("change: to epoch %llu (from %llu), phase %s, by %s%s%s\n",
                   (unsigned long long)s.change.epoch, (unsigned long long)s.change.from,
                   fleet_phase_name(s.change.phase), s.change.by[0] ? s.change.by : "?",
                   s.change.reason ? ", reason: " : "", s.change.reason ? s.change.reason : "");
        printf("pools (%zu):\n", s.pools.count);
        if (s.pools.count && !cf) printf("  (they do not parse: %s)\n", err);
        for (size_t i = 0; i < s.pools.count; i++) {
            const conf_pool *p = conf_find(cf, s.pools.pools[i].name);
            if (p)
                printf("  %-16s %3zu servers  %-10s listen %s\n", p->name, p->server_count,
                       conf_dist_name(p), p->listen);
        }
        printf("proxies (%zu live):\n", s.proxy_count);
        size_t behind = 0;
        for (size_t i = 0; i < s.proxy_count; i++) {
            const live_proxy *p = &s.proxies[i];
            if (p->is_bad) {
                printf("  %-20s (an unreadable record)\n", p->id);
                behind++;
                continue;
            }
            bool is_on = p->m.epoch == s.epoch;
            behind += !is_on;
            printf("  %-20s host %s pid %lld epoch %llu %s%s listen %s\n", p->id,
                   p->m.host[0] ? p->m.host : "?", (long long)p->m.pid,
                   (unsigned long long)p->m.epoch, p->m.state[0] ? p->m.state : "?",
                   is_on ? "" : " (NOT on the committed epoch)", p->m.listen);
        }
        if (s.proxy_count)
            printf("%zu of %zu proxies on epoch %llu\n", s.proxy_count - behind, s.proxy_count,
                   (unsigned long long)s.epoch);
    }
    conf_free(cf);
    state_free(&s);
    return 0;
}

/* ---- plan ------------------------------------------------------------- */

static int do_plan(const fleet_opts *o, etcd *e) {
    new_pools now;
    int rc = load_new(o, &now);
    if (rc != 0) return rc;
    fleet_state s;
    if (state_read(e, o, &s) != ETCD_OK) {
        new_free(&now);
        return cli_fail(o->cmd, "%s", etcd_errmsg(e));
    }
    char err[CONF_ERR_MAX] = "";
    conf *old_cf = s.pools.count ? pools_conf(&s.pools, err, sizeof err) : NULL;
    plan_all p;
    if (plan_make(&s.pools, old_cf, &now, &p) != 0) {
        rc = cli_fail(o->cmd, "out of memory");
    } else if (o->is_json) {
        print_json(json_pack("{s:s,s:I,s:I,s:o}", "prefix", o->prefix, "epoch",
                             (json_int_t)s.epoch, "changed", (json_int_t)p.changed, "pools",
                             plan_json(&p)));
    } else {
        printf("%s against epoch %llu under %s: %zu of %zu pools change\n", o->file,
               (unsigned long long)s.epoch, o->prefix, p.changed, p.count);
        if (s.pools.count && !old_cf) printf("(the committed pools do not parse: %s)\n", err);
        plan_print(o, &p, stdout);
    }
    free(p.lines);
    conf_free(old_cf);
    state_free(&s);
    new_free(&now);
    return rc;
}

/* ---- apply ------------------------------------------------------------ */

typedef struct outcome {
    const char *result; /* "committed", "aborted", "unchanged" */
    uint64_t epoch;
    char reason[2048];
    size_t proxies;
    double prepare_s, switch_s, all_on_epoch_s; /* < 0: not reached */
    size_t on_epoch;
} outcome;

/* The change as the coordinator writes it, in phase p. */
static int put_change_cas(etcd *e, const fleet_opts *o, fleet_change *c, fleet_phase p,
                          int64_t mod_revision, bool *is_done, int64_t *revision) {
    c->phase = p;
    char *json, *key = key_of(o, FLEET_KEY_CHANGE, NULL);
    size_t len;
    if (!key || fleet_change_encode(c, &json, &len) != 0) {
        free(key);
        return ETCD_ENOMEM;
    }
    etcd_compare cmp = {.kind = mod_revision ? ETCD_CMP_MOD_REVISION : ETCD_CMP_ABSENT,
                        .key = key, .key_len = strlen(key), .mod_revision = mod_revision};
    etcd_op op = {.kind = ETCD_OP_PUT, .key = key, .key_len = strlen(key), .value = json,
                  .value_len = len};
    int rc = etcd_txn(e, &cmp, 1, &op, 1, is_done, revision);
    free(json);
    free(key);
    return rc;
}

/*
 * abort_change - ends the change at mod_revision: phase abort with reason
 * (a CAS, so it loses to a commit), then P/change deleted if it is still
 * that abort. Returns 0 (aborted), 1 (P/change had moved: someone else
 * committed or aborted it), or an etcd error.
 */
static int abort_change(etcd *e, const fleet_opts *o, fleet_change *c, int64_t mod_revision,
                        const char *reason) {
    free(c->reason);
    c->reason = strdup(reason);
    bool is_done = false;
    int64_t rev = 0;
    int rc = put_change_cas(e, o, c, FLEET_ABORT, mod_revision, &is_done, &rev);
    if (rc != ETCD_OK) return rc;
    if (!is_done) return 1;
    char *key = key_of(o, FLEET_KEY_CHANGE, NULL);
    if (!key) return ETCD_ENOMEM;
    etcd_compare cmp = {.kind = ETCD_CMP_MOD_REVISION, .key = key, .key_len = strlen(key),
                        .mod_revision = rev};
    etcd_op op = {.kind = ETCD_OP_DELETE, .key = key, .key_len = strlen(key)};
    rc = etcd_txn(e, &cmp, 1, &op, 1, &is_done, NULL);
    free(key);
    return rc;
}

/* The commit: every pool put, the removed ones deleted, P/epoch, and
 * P/change deleted, if P/change is still at change_mod (0: P/change absent
 * and P/epoch at epoch_mod: the bootstrap without proxies). */
static int commit(etcd *e, const fleet_opts *o, const fleet_pools *old, const fleet_pools *now,
                  uint64_t epoch, int64_t change_mod, int64_t epoch_mod, bool *is_done,
                  int64_t *revision) {
    size_t op_cap = now->count + old->count + 3, op_count = 0;
    etcd_op *ops = calloc(op_cap, sizeof *ops);
    char **keys = calloc(op_cap, sizeof *keys);
    char epoch_text[24];
    snprintf(epoch_text, sizeof epoch_text, "%llu", (unsigned long long)epoch);
    char *change_key = key_of(o, FLEET_KEY_CHANGE, NULL), *epoch_key = key_of(o, FLEET_KEY_EPOCH, NULL);
    char *previous_key = key_of(o, FLEET_KEY_PREVIOUS, NULL), *previous = NULL;
    size_t previous_len = 0;
    /* The pools replaced, for a proxy that starts during the warm-up window
     * (it moves keys from their previous owners like the others). */
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    fleet_previous prev = {.epoch = epoch - 1, .pools = *old,
                           .committed_unix_ms = (int64_t)wall.tv_sec * 1000 +
                                                wall.tv_nsec / 1000000};
    int rc = ETCD_ENOMEM;
    if (!ops || !keys || !change_key || !epoch_key || !previous_key) goto done;
    if (old->count && fleet_previous_encode(&prev, &previous, &previous_len) != 0) goto done;
    for (size_t i = 0; i < now->count; i++) {
        keys[op_count] = key_of(o, FLEET_KEY_POOLS, now->pools[i].name);
        if (!keys[op_count]) goto done;
        ops[op_count] = (etcd_op){.kind = ETCD_OP_PUT, .key = keys[op_count],
                                  .key_len = strlen(keys[op_count]), .value = now->pools[i].yaml,
                                  .value_len = strlen(now->pools[i].yaml)};
        op_count++;
    }
    for (size_t i = 0; i < old->count; i++) {
        if (fleet_pools_find(now, old->pools[i].name)) continue;
        keys[op_count] = key_of(o, FLEET_KEY_POOLS, old->pools[i].name);
        if (!keys[op_count]) goto done;
        ops[op_count] = (etcd_op){.kind = ETCD_OP_DELETE, .key = keys[op_count],
                                  .key_len = strlen(keys[op_count])};
        op_count++;
    }
    ops[op_count++] = (etcd_op){.kind = ETCD_OP_PUT, .key = epoch_key,
                                .key_len = strlen(epoch_key), .value = epoch_text,
                                .value_len = strlen(epoch_text)};
    if (previous)
        ops[op_count++] = (etcd_op){.kind = ETCD_OP_PUT, .key = previous_key,
                                    .key_len = strlen(previous_key), .value = previous,
                                    .value_len = previous_len};
    etcd_compare cmp[2];
    size_t cmp_count = 0;
    if (change_mod) {
        ops[op_count++] = (etcd_op){.kind = ETCD_OP_DELETE, .key = change_key,
                                    .key_len = strlen(change_key)};
        cmp[cmp_count++] = (etcd_compare){.kind = ETCD_CMP_MOD_REVISION, .key = change_key,
                                          .key_len = strlen(change_key),
                                          .mod_revision = change_mod};
    } else {
        cmp[cmp_count++] = (etcd_compare){.kind = ETCD_CMP_ABSENT, .key = change_key,
                                          .key_len = strlen(change_key)};
        cmp[cmp_count++] = (etcd_compare){.kind = ETCD_CMP_MOD_REVISION, .key = epoch_key,
                                          .key_len = strlen(epoch_key),
                                          .mod_revision = epoch_mod};
    }
    rc = etcd_txn(e, cmp, cmp_count, ops, op_count, is_done, revision);
done:
    for (size_t i = 0; keys && i < op_cap; i++) free(keys[i]);
    free(keys);
    free(ops);
    free(change_key);
    free(epoch_key);
    free(previous_key);
    free(previous);
    return rc;
}

typedef enum wait_end {
    WAIT_DONE,      /* every live proxy answered ok */
    WAIT_REFUSED,   /* one said no: out->reason */
    WAIT_TIMEOUT,   /* out->reason names who did not answer */
    WAIT_LOST,      /* P/change is no longer ours: out->reason */
    WAIT_INTERRUPTED,
} wait_end;

/*
 * wait_answers - polls until every live proxy has answered phase `phase` of
 * epoch ok, in a write after `since` (the revision that began the phase).
 * The live set is read anew each time: a proxy whose lease expired is no
 * longer waited for, one that registers meanwhile is.
 */
static wait_end wait_answers(etcd *e, const fleet_opts *o, uint64_t epoch, fleet_phase phase,
                             int64_t since, int64_t change_mod, outcome *out, size_t *live) {
    double deadline = now_s() + o->timeout_s;
    char last_err[512] = "";
    for (;;) {
        if (is_interrupted) {
            snprintf(out->reason, sizeof out->reason, "interrupted (SIGINT or SIGTERM)");
            return WAIT_INTERRUPTED;
        }
        fleet_state s;
        bool is_late = now_s() > deadline;
        if (state_read(e, o, &s) != ETCD_OK) {
            snprintf(last_err, sizeof last_err, "%s", etcd_errmsg(e));
            if (is_late) {
                snprintf(out->reason, sizeof out->reason,
                         "no answer to %s within %.1f s: etcd did not answer: %s",
                         fleet_phase_name(phase), o->timeout_s, last_err);
                return WAIT_TIMEOUT;
            }
            sleep_ms(FLEET_POLL_MS);
            continue;
        }
        if (!s.has_change || s.change_mod_revision != change_mod) {
            if (s.has_change && !s.is_change_bad && s.change.phase == FLEET_ABORT)
                snprintf(out->reason, sizeof out->reason,
                         "the change was aborted by someone else: %s",
                         s.change.reason ? s.change.reason : "no reason given");
            else if (!s.has_change && s.epoch == epoch)
                snprintf(out->reason, sizeof out->reason, "someone else committed the change");
            else
                snprintf(out->reason, sizeof out->reason,
                         "the change was aborted by someone else (P/change %s)",
                         s.has_change ? "rewritten" : "deleted");
            state_free(&s);
            return WAIT_LOST;
        }
        char waiting[1024] = "";
        size_t missing = 0;
        wait_end end = WAIT_DONE;
        for (size_t i = 0; i < s.proxy_count; i++) {
            const proxy_answer *a = answer_of(&s, s.proxies[i].id);
            bool is_this = a && !a->is_bad && a->mod_revision > since && a->r.epoch == epoch &&
                           a->r.phase == phase;
            if (is_this && !a->r.is_ok) {
                snprintf(out->reason, sizeof out->reason, "proxy %s refused %s: %s",
                         s.proxies[i].id, fleet_phase_name(phase), a->r.error);
                end = WAIT_REFUSED;
                break;
            }
            if (!is_this) {
                missing++;
                size_t used = strlen(waiting);
                if (used + 2 < sizeof waiting)
                    snprintf(waiting + used, sizeof waiting - used, "%s%s", used ? ", " : "",
                             s.proxies[i].id);
            }
        }
        *live = s.proxy_count;
        state_free(&s);
        if (end != WAIT_DONE) return end;
        if (missing == 0) return WAIT_DONE;
        if (is_late) {
            snprintf(out->reason, sizeof out->reason,
                     "no answer to %s within %.1f s from %zu proxies: %s",
                     fleet_phase_name(phase), o->timeout_s, missing, waiting);
            return WAIT_TIMEOUT;
        }
        sleep_ms(FLEET_POLL_MS);
    }
}

/* After the commit: until every live proxy says it serves the epoch (or
 * the timeout). Returns how many were on it, of *live. */
static size_t wait_on_epoch(etcd *e, const fleet_opts *o, uint64_t epoch, double *took_s,
                            size_t *live, char *behind, size_t behind_len) {
    double start = now_s(), deadline = start + o->timeout_s;
    size_t on = 0;
    for (;;) {
        fleet_state s;
        if (state_read(e, o, &s) == ETCD_OK) {
            on = 0;
            behind[0] = '\0';
            for (size_t i = 0; i < s.proxy_count; i++) {
                const live_proxy *p = &s.proxies[i];
                if (!p->is_bad && p->m.epoch >= epoch) {
                    on++;
                } else {
                    size_t used = strlen(behind);
                    if (used + 2 < behind_len)
                        snprintf(behind + used, behind_len - used, "%s%s", used ? ", " : "",
                                 p->id);
                }
            }
            *live = s.proxy_count;
            state_free(&s);
            if (on == *live) {
                *took_s = now_s() - start;
                return on;
            }
        }
        if (now_s() > deadline || is_interrupted) {
            *took_s = -1;
            return on;
        }
        sleep_ms(FLEET_POLL_MS);
    }
}

static void outcome_print(const fleet_opts *o, const outcome *r, const plan_all *p) {
    if (!o->is_json) return;
    json_t *j = json_pack("{s:s,s:I,s:o,s:I}", "result", r->result, "epoch",
                          (json_int_t)r->epoch, "reason",
                          r->reason[0] ? json_string(r->reason) : json_null(), "proxies",
                          (json_int_t)r->proxies);
    json_object_set_new(j, "prepare_s", r->prepare_s >= 0 ? json_real(r->prepare_s) : json_null());
    json_object_set_new(j, "switch_s", r->switch_s >= 0 ? json_real(r->switch_s) : json_null());
    json_object_set_new(j, "all_on_epoch_s",
                        r->all_on_epoch_s >= 0 ? json_real(r->all_on_epoch_s) : json_null());
    if (p) json_object_set_new(j, "plan", plan_json(p));
    print_json(j);
}

/* Asks on the terminal; false unless the answer starts with y. */
static bool confirm(void) {
    fputs("apply? [y/N] ", stderr);
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return false;
    return line[0] == 'y' || line[0] == 'Y';
}

/* Ends our change after a refusal, a timeout or an interrupt; the
 * outcome's result and exit code. */
static int give_up(etcd *e, const fleet_opts *o, fleet_change *c, int64_t change_mod, outcome *r,
                   const plan_all *p) {
    int rc = abort_change(e, o, c, change_mod, r->reason);
    r->result = "aborted";
    if (rc == 1) {
        /* Lost the race: a commit can only be ours, so someone aborted. */
        appendf(r->reason, sizeof r->reason, " (and someone else ended the change first)");
    } else if (rc != ETCD_OK) {
        appendf(r->reason, sizeof r->reason,
                     "; the abort failed too (%s): P/change stays until `chash fleet abort`",
                     etcd_errmsg(e));
    }
    say(o, "aborted: %s\nthe fleet stays on epoch %llu\n", r->reason,
        (unsigned long long)c->from);
    r->epoch = c->from;
    outcome_print(o, r, p);
    return CLI_EXIT_FAILURE;
}

/* A write of the change failed: an etcd error gives the change up (abort,
 * then report); a record that moved (is_done false) was someone else's
 * abort, reported as `moved_why`. Returns the exit status. */
static int write_failed(etcd *e, const fleet_opts *o, fleet_change *c, int64_t change_mod,
                        outcome *r, const plan_all *p, int rc, const char *moved_why) {
    snprintf(r->reason, sizeof r->reason, "%s", rc != ETCD_OK ? etcd_errmsg(e) : moved_why);
    if (rc != ETCD_OK) return give_up(e, o, c, change_mod, r, p);
    say(o, "aborted: %s\n", r->reason);
    outcome_print(o, r, p);
    return CLI_EXIT_FAILURE;
}

/*
 * A write whose answer was lost (the member that took it died before
 * replying, and the retry on another found the key moved) may have been
 * ours: P/change now holds our change in `phase` (same proposer, epoch and
 * pools). Then *mod is its revision. A commit whose answer was lost shows
 * as P/epoch at the new epoch with no change left.
 */
static bool change_is_ours(etcd *e, const fleet_opts *o, const fleet_change *c, fleet_phase phase,
                           int64_t *mod) {
    fleet_state now;
    if (state_read(e, o, &now) != ETCD_OK) return false;
    bool is_ours = now.has_change && !now.is_change_bad && now.change.phase == phase &&
                   now.change.epoch == c->epoch && now.change.by && c->by &&
                   strcmp(now.change.by, c->by) == 0 &&
                   fleet_pools_equal(&now.change.pools, &c->pools);
    if (is_ours) *mod = now.change_mod_revision;
    state_free(&now);
    return is_ours;
}

static bool commit_landed(etcd *e, const fleet_opts *o, uint64_t epoch, int64_t *rev) {
    fleet_state now;
    if (state_read(e, o, &now) != ETCD_OK) return false;
    bool is_landed = !now.has_change && now.epoch == epoch;
    if (is_landed) *rev = now.epoch_mod_revision;
    state_free(&now);
    return is_landed;
}

static int do_apply(const fleet_opts *o, etcd *e) {
    new_pools now;
    int rc = load_new(o, &now);
    if (rc != 0) return rc;
    fleet_state s;
    if (state_read(e, o, &s) != ETCD_OK) {
        new_free(&now);
        return cli_fail(o->cmd, "%s", etcd_errmsg(e));
    }
    outcome r = {.result = "aborted", .epoch = s.epoch, .proxies = s.proxy_count,
                 .prepare_s = -1, .switch_s = -1, .all_on_epoch_s = -1};
    plan_all p = {0};
    fleet_change c = {0};
    char err[CONF_ERR_MAX] = "";
    conf *old_cf = NULL;
    if (s.has_change) {
        if (s.is_change_bad)
            rc = cli_fail(o->cmd, "P/change holds something unreadable (%s): `chash fleet "
                          "abort` removes it", s.change_why);
        else
            rc = cli_fail(o->cmd, "a change is already in progress: epoch %llu (from %llu), "
                          "phase %s, by %s; wait for it, or end it with `chash fleet abort`",
                          (unsigned long long)s.change.epoch, (unsigned long long)s.change.from,
                          fleet_phase_name(s.change.phase), s.change.by);
        snprintf(r.reason, sizeof r.reason, "a change is already in progress");
        if (o->is_json) outcome_print(o, &r, NULL);
        goto done;
    }
    if (s.is_epoch_bad) {
        rc = cli_fail(o->cmd, "P/epoch is not a number: fix it by hand (etcdctl put %s%s N)",
                      o->prefix, FLEET_KEY_EPOCH);
        goto done;
    }
    old_cf = s.pools.count ? pools_conf(&s.pools, err, sizeof err) : NULL;
    if (plan_make(&s.pools, old_cf, &now, &p) != 0) {
        rc = cli_fail(o->cmd, "out of memory");
        goto done;
    }
    say(o, "%s against epoch %llu under %s: %zu of %zu pools change, %zu live proxies\n",
        o->file, (unsigned long long)s.epoch, o->prefix, p.changed, p.count, s.proxy_count);
    plan_print(o, &p, progress(o));
    if (p.changed == 0) {
        r.result = "unchanged";
        say(o, "nothing to apply: epoch %llu stays\n", (unsigned long long)s.epoch);
        outcome_print(o, &r, &p);
        rc = 0;
        goto done;
    }
    if (!o->is_yes) {
        if (!isatty(STDIN_FILENO)) {
            rc = cli_usage_error(o->cmd, "stdin is not a terminal to ask on: give --yes to "
                                 "apply without asking");
            goto done;
        }
        if (!confirm()) {
            snprintf(r.reason, sizeof r.reason, "not confirmed");
            say(o, "not applied\n");
            outcome_print(o, &r, &p);
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
    }
    uint64_t epoch = s.epoch + 1;
    bool is_done = false;
    int64_t rev = 0;
    double t0 = now_s();
    if (s.pools.count == 0 && s.proxy_count == 0) {
        /* Bootstrap: nobody to ask. The same commit, guarded by P/change
         * absent and P/epoch unmoved instead. */
        rc = commit(e, o, &s.pools, &now.pools, epoch, 0, s.epoch_mod_revision, &is_done, &rev);
        if (rc != ETCD_OK) {
            rc = cli_fail(o->cmd, "%s", etcd_errmsg(e));
            goto done;
        }
        if (!is_done) {
            snprintf(r.reason, sizeof r.reason, "etcd moved meanwhile (a change began, or "
                     "another apply committed): run plan again");
            say(o, "not applied: %s\n", r.reason);
            outcome_print(o, &r, &p);
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
        r.result = "committed";
        r.epoch = epoch;
        r.all_on_epoch_s = 0;
        say(o, "epoch %llu committed at etcd revision %lld (bootstrap: no proxies yet)\n",
            (unsigned long long)epoch, (long long)rev);
        outcome_print(o, &r, &p);
        rc = 0;
        goto done;
    }

    /* 1. prepare */
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    char by[512];
    snprintf(by, sizeof by, "chash fleet apply on %s, pid %ld", host, (long)getpid());
    c = (fleet_change){.epoch = epoch, .from = s.epoch, .by = strdup(by)};
    for (size_t i = 0; i < now.pools.count; i++)
        if (!c.by || fleet_pools_add(&c.pools, now.pools.pools[i].name,
                                     strlen(now.pools.pools[i].name), now.pools.pools[i].yaml,
                                     strlen(now.pools.pools[i].yaml)) != 0) {
            rc = cli_fail(o->cmd, "out of memory");
            goto done;
        }
    {
        char *json, *change_key = key_of(o, FLEET_KEY_CHANGE, NULL),
                    *epoch_key = key_of(o, FLEET_KEY_EPOCH, NULL);
        size_t len;
        c.phase = FLEET_PREPARE;
        if (!change_key || !epoch_key || fleet_change_encode(&c, &json, &len) != 0) {
            free(change_key);
            free(epoch_key);
            rc = cli_fail(o->cmd, "out of memory");
            goto done;
        }
        etcd_compare cmp[] = {{.kind = ETCD_CMP_ABSENT, .key = change_key,
                               .key_len = strlen(change_key)},
                              {.kind = ETCD_CMP_MOD_REVISION, .key = epoch_key,
                               .key_len = strlen(epoch_key),
                               .mod_revision = s.epoch_mod_revision}};
        etcd_op op = {.kind = ETCD_OP_PUT, .key = change_key, .key_len = strlen(change_key),
                      .value = json, .value_len = len};
        rc = etcd_txn(e, cmp, 2, &op, 1, &is_done, &rev);
        free(json);
        free(change_key);
        free(epoch_key);
    }
    if ((rc != ETCD_OK || !is_done) && change_is_ours(e, o, &c, FLEET_PREPARE, &rev)) {
        say(o, "prepare: etcd took P/change though its answer was lost\n");
        rc = ETCD_OK;
        is_done = true;
    }
    if (rc != ETCD_OK) {
        rc = cli_fail(o->cmd, "%s", etcd_errmsg(e));
        goto done;
    }
    if (!is_done) {
        fleet_state again;
        if (state_read(e, o, &again) == ETCD_OK && again.has_change)
            snprintf(r.reason, sizeof r.reason,
                     "a change is already in progress (it began meanwhile): `chash fleet abort` "
                     "ends it");
        else
            snprintf(r.reason, sizeof r.reason, "the fleet moved to epoch %llu meanwhile: run "
                     "plan again", (unsigned long long)again.epoch);
        state_free(&again);
        say(o, "not applied: %s\n", r.reason);
        outcome_print(o, &r, &p);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    int64_t change_mod = rev;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    say(o, "prepare: P/change written for epoch %llu (revision %lld); waiting for %zu proxies\n",
        (unsigned long long)epoch, (long long)rev, s.proxy_count);
    size_t live = s.proxy_count;
    wait_end w = wait_answers(e, o, epoch, FLEET_PREPARE, change_mod, change_mod, &r, &live);
    r.proxies = live;
    if (w != WAIT_DONE) {
        rc = w == WAIT_LOST ? (say(o, "aborted: %s\n", r.reason), outcome_print(o, &r, &p),
                               CLI_EXIT_FAILURE)
                            : give_up(e, o, &c, change_mod, &r, &p);
        goto restore;
    }
    r.prepare_s = now_s() - t0;
    say(o, "prepare: %zu proxies ready in %.3f s\n", live, r.prepare_s);

    /* 2. switch */
    double t1 = now_s();
    rc = put_change_cas(e, o, &c, FLEET_SWITCH, change_mod, &is_done, &rev);
    if ((rc != ETCD_OK || !is_done) && change_is_ours(e, o, &c, FLEET_SWITCH, &rev)) {
        rc = ETCD_OK;
        is_done = true;
    }
    if (rc != ETCD_OK || !is_done) {
        rc = write_failed(e, o, &c, change_mod, &r, &p, rc,
                          "P/change moved before the switch (an abort)");
        goto restore;
    }
    change_mod = rev;
    say(o, "switch: phase switch at revision %lld; waiting for %zu proxies\n", (long long)rev,
        live);
    w = wait_answers(e, o, epoch, FLEET_SWITCH, change_mod, change_mod, &r, &live);
    r.proxies = live;
    if (w != WAIT_DONE) {
        rc = w == WAIT_LOST ? (say(o, "aborted: %s\n", r.reason), outcome_print(o, &r, &p),
                               CLI_EXIT_FAILURE)
                            : give_up(e, o, &c, change_mod, &r, &p);
        goto restore;
    }
    r.switch_s = now_s() - t1;
    say(o, "switch: %zu proxies holding in %.3f s\n", live, r.switch_s);

    /* 3. commit */
    rc = commit(e, o, &s.pools, &now.pools, epoch, change_mod, 0, &is_done, &rev);
    if ((rc != ETCD_OK || !is_done) && commit_landed(e, o, epoch, &rev)) {
        rc = ETCD_OK;
        is_done = true;
    }
    if (rc != ETCD_OK || !is_done) {
        rc = write_failed(e, o, &c, change_mod, &r, &p, rc,
                          "P/change moved before the commit (an abort)");
        goto restore;
    }
    r.result = "committed";
    r.epoch = epoch;
    say(o, "commit: epoch %llu at revision %lld, %.3f s after the change began\n",
        (unsigned long long)epoch, (long long)rev, now_s() - t0);
    char behind[1024] = "";
    size_t on = wait_on_epoch(e, o, epoch, &r.all_on_epoch_s, &live, behind, sizeof behind);
    r.proxies = live;
    r.on_epoch = on;
    if (r.all_on_epoch_s >= 0)
        say(o, "epoch %llu committed; all %zu proxies on it %.3f s after the commit\n",
            (unsigned long long)epoch, live, r.all_on_epoch_s);
    else
        say(o, "epoch %llu committed; %zu of %zu proxies on it after %.1f s; not yet: %s\n",
            (unsigned long long)epoch, on, live, o->timeout_s, behind);
    outcome_print(o, &r, &p);
    rc = 0;
restore:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
done:
    fleet_change_free(&c);
    free(p.lines);
    conf_free(old_cf);
    state_free(&s);
    new_free(&now);
    return rc;
}

/* ---- abort ------------------------------------------------------------ */

static int do_abort(const fleet_opts *o, etcd *e) {
    fleet_state s;
    if (state_read(e, o, &s) != ETCD_OK) return cli_fail(o->cmd, "%s", etcd_errmsg(e));
    const char *reason = o->reason ? o->reason : "aborted by `chash fleet abort`";
    int rc = 0;
    const char *result = "none";
    uint64_t epoch = 0;
    if (!s.has_change) {
        say(o, "no change in progress: epoch %llu stays\n", (unsigned long long)s.epoch);
    } else if (s.is_change_bad) {
        /* Nothing to mark: delete the unreadable value if it is still it. */
        char *key = key_of(o, FLEET_KEY_CHANGE, NULL);
        bool is_done = false;
        etcd_compare cmp = {.kind = ETCD_CMP_MOD_REVISION, .key = key,
                            .key_len = key ? strlen(key) : 0,
                            .mod_revision = s.change_mod_revision};
        etcd_op op = {.kind = ETCD_OP_DELETE, .key = key, .key_len = cmp.key_len};
        rc = key ? etcd_txn(e, &cmp, 1, &op, 1, &is_done, NULL) : ETCD_ENOMEM;
        free(key);
        if (rc != ETCD_OK) {
            state_free(&s);
            return cli_fail(o->cmd, "%s", etcd_errmsg(e));
        }
        result = is_done ? "aborted" : "moved";
        say(o, is_done ? "removed an unreadable P/change\n" : "P/change moved meanwhile: "
                                                              "try again\n");
        rc = is_done ? 0 : CLI_EXIT_FAILURE;
    } else {
        epoch = s.change.epoch;
        rc = abort_change(e, o, &s.change, s.change_mod_revision, reason);
        if (rc < 0) {
            state_free(&s);
            return cli_fail(o->cmd, "%s", etcd_errmsg(e));
        }
        result = rc == 0 ? "aborted" : "moved";
        if (rc == 0)
            say(o, "aborted the change to epoch %llu (it was in phase %s): %s\n",
                (unsigned long long)epoch,
                fleet_phase_name(s.change.phase == FLEET_ABORT ? FLEET_ABORT : FLEET_PREPARE),
                reason);
        else
            say(o, "P/change moved meanwhile (committed or aborted): see `chash fleet status`\n");
        rc = rc == 0 ? 0 : CLI_EXIT_FAILURE;
    }
    if (o->is_json)
        print_json(json_pack("{s:s,s:I,s:I,s:s}", "result", result, "epoch",
                             (json_int_t)s.epoch, "change_epoch", (json_int_t)epoch, "reason",
                             reason));
    state_free(&s);
    return rc;
}

/* ---- entry ------------------------------------------------------------ */

int cmd_fleet(int argc, char **argv) {
    enum {
        OPT_ETCD = CLI_OPT_FIRST_FREE,
        OPT_PREFIX,
        OPT_USER,
        OPT_PASSWORD_FILE,
        OPT_CACERT,
        OPT_CERT,
        OPT_KEY,
        OPT_JSON,
        OPT_YES,
        OPT_TIMEOUT,
        OPT_REASON,
        OPT_HELP
    };
    static const struct option longopts[] = {
        {"etcd", required_argument, NULL, OPT_ETCD},
        {"etcd-prefix", required_argument, NULL, OPT_PREFIX},
        {"etcd-user", required_argument, NULL, OPT_USER},
        {"etcd-password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"etcd-cacert", required_argument, NULL, OPT_CACERT},
        {"etcd-cert", required_argument, NULL, OPT_CERT},
        {"etcd-key", required_argument, NULL, OPT_KEY},
        {"json", no_argument, NULL, OPT_JSON},
        {"yes", no_argument, NULL, OPT_YES},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"reason", required_argument, NULL, OPT_REASON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : 0;
    }
    fleet_opts o = {.sub = argv[1], .prefix = "/chash", .timeout_s = 15};
    static const char *const subs[] = {"status", "plan", "apply", "abort"};
    bool is_known = false;
    for (size_t i = 0; i < 4; i++) is_known |= strcmp(o.sub, subs[i]) == 0;
    if (!is_known)
        return cli_usage_error("fleet", "unknown subcommand '%s': status, plan, apply or abort",
                               o.sub);
    snprintf(o.cmd, sizeof o.cmd, "fleet %s", o.sub);
    const char *password_file = NULL;
    int opt;
    opterr = 0;
    optind = 1;
    argc--;
    argv++;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_HELP: fputs(help, stdout); return 0;
        case OPT_ETCD: o.endpoints = optarg; break;
        case OPT_PREFIX: o.prefix = optarg; break;
        case OPT_USER: o.user = optarg; break;
        case OPT_PASSWORD_FILE: password_file = optarg; break;
        case OPT_CACERT: o.cacert = optarg; break;
        case OPT_CERT: o.cert = optarg; break;
        case OPT_KEY: o.key = optarg; break;
        case OPT_JSON: o.is_json = true; break;
        case OPT_YES: o.is_yes = true; break;
        case OPT_REASON: o.reason = optarg; break;
        case OPT_TIMEOUT: {
            char *end;
            errno = 0;
            o.timeout_s = strtod(optarg, &end);
            if (errno || *end || !(o.timeout_s > 0 && o.timeout_s <= 86400))
                return cli_usage_error(o.cmd, "--timeout %s: expected seconds, 0 to 86400",
                                       optarg);
            break;
        }
        default: return cli_bad_option(o.cmd, argc, argv);
        }
    }
    bool wants_file = strcmp(o.sub, "plan") == 0 || strcmp(o.sub, "apply") == 0;
    if (wants_file && optind + 1 != argc)
        return cli_usage_error(o.cmd, "give one configuration FILE");
    if (!wants_file && optind != argc)
        return cli_usage_error(o.cmd, "unexpected argument '%s'", argv[optind]);
    if (wants_file) o.file = argv[optind];
    if (!o.endpoints) return cli_usage_error(o.cmd, "--etcd URL[,URL...] is required");
    size_t plen = strlen(o.prefix);
    if (plen < 2 || o.prefix[0] != '/' || o.prefix[plen - 1] == '/')
        return cli_usage_error(o.cmd, "--etcd-prefix '%s': starts with '/' (as the proxy's "
                               "must), no trailing '/'", o.prefix);
    if (o.key && !o.cert) return cli_usage_error(o.cmd, "--etcd-key needs --etcd-cert");
    if (o.user) {
        const char *env = getenv("CHASH_ETCD_PASSWORD");
        if (password_file) {
            char why[256];
            o.password = secret_read_file("--etcd-password-file", password_file, why, sizeof why);
            if (!o.password) return cli_usage_error(o.cmd, "%s", why);
        } else if (env) {
            o.password = strdup(env);
        } else {
            return cli_usage_error(o.cmd, "--etcd-user %s: give the password in "
                                   "$CHASH_ETCD_PASSWORD or --etcd-password-file", o.user);
        }
    } else if (password_file) {
        return cli_usage_error(o.cmd, "--etcd-password-file needs --etcd-user");
    }
    etcd *e = open_etcd(&o);
    int rc = CLI_EXIT_USAGE;
    if (e) {
        if (strcmp(o.sub, "status") == 0)
            rc = do_status(&o, e);
        else if (strcmp(o.sub, "plan") == 0)
            rc = do_plan(&o, e);
        else if (strcmp(o.sub, "apply") == 0)
            rc = do_apply(&o, e);
        else
            rc = do_abort(&o, e);
    }
    etcd_free(e);
    secret_free(o.password);
    return rc;
}
