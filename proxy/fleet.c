/*
 * fleet.c - `--etcd`: the pools come from etcd, and change with every other
 * proxy of the fleet (the protocol is fleetproto.h's).
 *
 * One thread. At start (fleet_open, before the listeners): a lease, this
 * proxy's registration on it, then one linearizable read of the whole
 * prefix - the committed epoch, its pools, a change in progress - and a
 * watch from the revision after it. Registering before reading means a
 * coordinator that did not see this proxy among the live ones cannot have
 * committed before this proxy's read, which then sees the commit.
 *
 * A change: at "prepare" the new pools are parsed and built into a
 * configuration kept aside (the answer is ok or why not); at "switch" the
 * pools that change are held (fleet_hold, which client.c's gate reads: no
 * new command is taken from their clients) and once every worker says
 * nothing of them is in flight the answer is ok; at the commit (P/epoch
 * moves) the configuration is published like a reload's - warm-up from
 * the old pools where the pool has `warmup` - and the holds let go. A
 * change deleted without a commit is an abort: the holds let go on the old
 * epoch. A hold that lasts longer than hold_limit_ms without either aborts
 * the change (a CAS, so an abort and a commit never both win).
 *
 * The permit (px->fleet_permit_ms): workers take commands only before it.
 * It is the send time of the last lease keep-alive that etcd answered plus
 * the lease's TTL less a margin, so it ends before etcd can expire the
 * lease - and only an expired lease lets a change commit without this
 * proxy. A proxy that was frozen (SIGSTOP, a stalled VM) resumes with its
 * permit ended: its clients wait while this thread asks etcd; a lost lease
 * means registering again and reading the committed state before serving.
 *
 * etcd unreachable: the proxy is isolated and serves its epoch as
 * committed, without a permit (availability, item 4 of the issue): no
 * command fails because etcd is away. The price, documented: a proxy cut
 * off from etcd while the other proxies (still reaching it) commit a change
 * without it - its lease expired - serves the old epoch until it reaches
 * etcd again. While a switch holds pools and etcd is away the hold stays
 * (consistency): the commit may have happened.
 */
#define _GNU_SOURCE
#include "proxy.h"

#include "clustercmd.h"
#include "etcd.h"
#include "fleetproto.h"
#include "secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FLEET_ETCD_TIMEOUT_MS 1000
#define FLEET_WATCH_PROBE_MS 2000
#define FLEET_KEY_MAX 512

typedef struct str_list {
    char **items;
    size_t count;
} str_list;

static bool list_has(const str_list *l, const char *s) {
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i], s) == 0) return true;
    return false;
}

static void list_add(str_list *l, const char *s) {
    if (list_has(l, s)) return;
    char **grown = realloc(l->items, (l->count + 1) * sizeof *grown);
    char *copy = strdup(s);
    if (!grown || !copy) {
        free(copy);
        if (grown) l->items = grown;
        proxy_log(LOG_ERROR, "fleet: out of memory");
        return;
    }
    l->items = grown;
    l->items[l->count++] = copy;
}

static void list_remove(str_list *l, const char *s) {
    for (size_t i = 0; i < l->count; i++) {
        if (strcmp(l->items[i], s) != 0) continue;
        free(l->items[i]);
        l->items[i] = l->items[--l->count];
        return;
    }
}

static void list_free(str_list *l) {
    for (size_t i = 0; i < l->count; i++) free(l->items[i]);
    free(l->items);
    *l = (str_list){0};
}

struct fleet {
    proxy *px; /* NULL until fleet_attach */
    etcd *e;
    etcd_watch *watch;
    char *prefix;
    char *password;
    char id[FLEET_NAME_MAX];
    char host[FLEET_NAME_MAX];
    int64_t started_unix;
    int64_t ttl_s;
    int64_t lease;
    uint64_t margin_ms;
    uint64_t hold_limit_ms;
    /* The committed epoch this proxy serves, its pools, and the pools as
     * etcd holds them (events applied; equal outside a commit). */
    uint64_t epoch;
    fleet_pools pools;
    fleet_pools seen;
    int64_t revision; /* of the last full read */
    /* The change in progress, as last read. */
    bool has_change;
    fleet_change change;
    int64_t change_rev;
    conf *prepared; /* built for prepared_epoch, not in use */
    /* At start during a warm-up window: the epoch's configuration, published
     * once the workers were built from the previous epoch's (fleet_start),
     * so they warm up from it like the proxies that took the change. */
    conf *start_conf;
    fleet_previous previous; /* P/previous as last read */
    bool has_previous;
    uint64_t prepared_epoch;
    fleet_pools prepared_pools; /* what `prepared` was built from */
    char prepare_err[CONF_ERR_MAX + FLEET_NAME_MAX + 8];
    /* A switch in progress. */
    bool is_holding;
    bool is_hold_told;
    uint64_t hold_seq;
    uint64_t hold_since_ms;
    uint64_t next_keepalive_ms;
    bool is_isolated;
    /* The lease was lost: no permit until the committed state was read. */
    bool needs_resync;
    bool read_has_epoch; /* the last read_state found a good P/epoch */
    /* Of that read: P/epoch's revision, and the newest of P/pools/ (a commit
     * writes both in one txn: a newer pool was edited by hand). */
    int64_t read_epoch_rev, read_pools_rev;
    /* An answer etcd did not take (its put failed: a leader election, an
     * outage), put again each turn while the change is in that phase. */
    bool is_answer_due;
    fleet_phase answer_phase;
    char answer_err[CONF_ERR_MAX + FLEET_NAME_MAX + 8];
    bool is_answer_ok;
    char listen[FLEET_TEXT_MAX];
    /* Health decided once: every key under P/health/ (its suffix,
     * "POOL/SERVER/ID"), and the "POOL/SERVER" this proxy has put there. */
    str_list health;
    str_list reported;
    /* --listen NAME=ADDR, as given. */
    char *listens[16];
    size_t listen_count;
    /* P/proxies/ as last read, published for CLUSTER SLOTS (clustercmd.c). */
    cluster_members *members;
    pthread_t thread;
    bool has_thread;
};

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void etcd_said(void *user, const char *line) {
    (void)user;
    proxy_log(LOG_INFO, "fleet: etcd: %s", line);
}

/* P + suffix (+ name) into out; its length. */
static size_t fleet_key(const struct fleet *f, const char *suffix, const char *name, char *out) {
    int n = snprintf(out, FLEET_KEY_MAX, "%s%s%s", f->prefix, suffix, name ? name : "");
    return n < 0 ? 0 : (size_t)n >= FLEET_KEY_MAX ? FLEET_KEY_MAX - 1 : (size_t)n;
}

static void set_state(struct fleet *f, int state) {
    if (f->px) atomic_store(&f->px->fleet_state, state);
}

static void confirmed(struct fleet *f) {
    if (!f->px) return;
    atomic_store(&f->px->fleet_confirmed_ms, mono_ms());
    atomic_store(&f->px->fleet_etcd_up, 1);
}

/* Every worker looks at the holds and the permit now, not at its tick. */
static void wake_workers(struct fleet *f) {
    proxy *px = f->px;
    atomic_fetch_add(&px->fleet_seq, 1);
    uint64_t one = 1;
    for (uint32_t i = 0; i < px->worker_count; i++) {
        int fd = px->workers[i].wake_io.fd;
        if (fd >= 0 && write(fd, &one, sizeof one) < 0 && errno != EAGAIN)
            proxy_log(LOG_ERROR, "fleet: cannot wake worker %u: %s", i, strerror(errno));
    }
}

static const char *state_name(const struct fleet *f) {
    if (f->is_isolated) return "isolated";
    return f->is_holding ? "holding" : "serving";
}

/* P + suffix + this proxy's id := json (taken and freed), on the lease. */
static int put_own(struct fleet *f, const char *suffix, char *json, size_t len) {
    char key[FLEET_KEY_MAX];
    size_t klen = fleet_key(f, suffix, f->id, key);
    int rc = etcd_put(f->e, key, klen, json, len, f->lease, NULL);
    free(json);
    return rc;
}

/* P/proxies/ID: who this proxy is and the epoch it serves. */
static int tell_member(struct fleet *f, const char *state) {
    fleet_member m = {.id = f->id, .host = f->host, .pid = (int64_t)getpid(),
                      .listen = f->listen, .epoch = f->epoch, .state = (char *)state,
                      .started_unix = f->started_unix};
    char *json = NULL;
    size_t len = 0;
    if (fleet_member_encode(&m, &json, &len) != 0) return ETCD_ENOMEM;
    int rc = put_own(f, FLEET_KEY_PROXIES, json, len);
    if (rc != ETCD_OK)
        proxy_log(LOG_WARN, "fleet: cannot update %s%s%s: %s", f->prefix, FLEET_KEY_PROXIES,
                  f->id, etcd_errmsg(f->e));
    return rc;
}

/* P/ready/ID: this proxy's answer to the change's phase. */
static int tell_ready(struct fleet *f, fleet_phase phase, const char *error) {
    fleet_ready r = {.epoch = f->change.epoch, .phase = phase, .is_ok = error == NULL,
                     .error = (char *)error};
    char *json = NULL;
    size_t len = 0;
    if (fleet_ready_encode(&r, &json, &len) != 0) return ETCD_ENOMEM;
    int rc = put_own(f, FLEET_KEY_READY, json, len);
    f->is_answer_due = rc != ETCD_OK;
    if (f->is_answer_due) {
        f->answer_phase = phase;
        f->is_answer_ok = error == NULL;
        if (error != f->answer_err) /* not a retry of itself */
            snprintf(f->answer_err, sizeof f->answer_err, "%s", error ? error : "");
    }
    if (rc != ETCD_OK)
        proxy_log(LOG_WARN, "fleet: cannot answer the change to epoch %llu (trying again): %s",
                  (unsigned long long)f->change.epoch, etcd_errmsg(f->e));
    else
        proxy_log(LOG_INFO, "fleet: epoch %llu %s: %s", (unsigned long long)f->change.epoch,
                  fleet_phase_name(phase), error ? error : "ready");
    return rc;
}

static const char *listen_for(void *user, const char *pool) {
    const struct fleet *f = user;
    size_t n = strlen(pool);
    for (size_t i = 0; i < f->listen_count; i++)
        if (strncmp(f->listens[i], pool, n) == 0 && f->listens[i][n] == '=')
            return f->listens[i] + n + 1;
    return NULL;
}

/* The configuration of a set of pools, with this proxy's --listen. */
static int build_conf(const struct fleet *f, const fleet_pools *pools, uint64_t epoch,
                      conf **out, char *err, size_t err_len) {
    char *text = NULL;
    size_t len = 0;
    if (fleet_pools_compose(pools, &text, &len) != 0) {
        snprintf(err, err_len, "epoch %llu has no pools", (unsigned long long)epoch);
        return -1;
    }
    char where[64];
    snprintf(where, sizeof where, "etcd epoch %llu", (unsigned long long)epoch);
    conf_options opt = {.listen_for = listen_for, .user = (void *)f};
    int rc = conf_parse_with(&opt, text, len, where, out, err, err_len);
    free(text);
    return rc;
}

/* Reads every key of the prefix: the committed epoch and pools, and the
 * change in progress. 0, or an etcd error (logged). */
static int read_state(struct fleet *f, uint64_t *epoch, fleet_pools *pools, char *err,
                      size_t err_len) {
    char key[FLEET_KEY_MAX];
    size_t klen = fleet_key(f, "/", NULL, key);
    etcd_kvs kvs = {0};
    int rc = etcd_get(f->e, key, klen, true, &kvs);
    if (rc != ETCD_OK) {
        snprintf(err, err_len, "cannot read %s from etcd: %s", key, etcd_errmsg(f->e));
        return rc;
    }
    size_t plen = strlen(f->prefix);
    bool health_seen = false;
    f->read_has_epoch = false;
    f->read_epoch_rev = f->read_pools_rev = 0;
    *epoch = 0;
    *pools = (fleet_pools){0};
    fleet_change_free(&f->change);
    f->has_change = false;
    cluster_members_clear(f->members);
    for (size_t i = 0; i < kvs.kv_count; i++) {
        const etcd_kv *kv = &kvs.kvs[i];
        const char *suffix = kv->key + plen;
        size_t slen = kv->key_len - plen;
        const char *why = NULL;
        if (strcmp(suffix, FLEET_KEY_EPOCH) == 0) {
            if (fleet_epoch_parse(kv->value, kv->value_len, epoch) != 0)
                proxy_log(LOG_ERROR, "fleet: %s is not a number: ignored", kv->key);
            else
                f->read_has_epoch = true;
            f->read_epoch_rev = kv->mod_revision;
        } else if (slen > strlen(FLEET_KEY_POOLS) &&
                   memcmp(suffix, FLEET_KEY_POOLS, strlen(FLEET_KEY_POOLS)) == 0) {
            const char *name = suffix + strlen(FLEET_KEY_POOLS);
            if (kv->mod_revision > f->read_pools_rev) f->read_pools_rev = kv->mod_revision;
            if (fleet_pools_add(pools, name, strlen(name), kv->value, kv->value_len) != 0)
                proxy_log(LOG_ERROR, "fleet: %s: not a pool name: ignored", kv->key);
        } else if (strcmp(suffix, FLEET_KEY_CHANGE) == 0) {
            if (fleet_change_decode(kv->value, kv->value_len, &f->change, &why) == 0) {
                f->has_change = true;
                f->change_rev = kv->mod_revision;
            } else {
                proxy_log(LOG_ERROR, "fleet: %s: %s: ignored", kv->key, why);
            }
        } else if (strcmp(suffix, FLEET_KEY_PREVIOUS) == 0) {
            fleet_previous_free(&f->previous);
            f->has_previous =
                fleet_previous_decode(kv->value, kv->value_len, &f->previous, &why) == 0;
            if (!f->has_previous)
                proxy_log(LOG_ERROR, "fleet: %s: %s: ignored", kv->key, why);
        } else if (slen > strlen(FLEET_KEY_HEALTH) &&
                   memcmp(suffix, FLEET_KEY_HEALTH, strlen(FLEET_KEY_HEALTH)) == 0 &&
                   strlen(suffix) == slen) {
            if (!health_seen) {
                list_free(&f->health);
                health_seen = true;
            }
            list_add(&f->health, suffix + strlen(FLEET_KEY_HEALTH));
        } else if (strncmp(suffix, FLEET_KEY_PROXIES, strlen(FLEET_KEY_PROXIES)) == 0) {
            cluster_members_put(f->members, suffix + strlen(FLEET_KEY_PROXIES),
                                slen - strlen(FLEET_KEY_PROXIES), kv->value, kv->value_len);
        }
    }
    cluster_members_publish(f->members);
    if (!health_seen) list_free(&f->health);
    f->revision = kvs.revision;
    etcd_kvs_free(&kvs);
    return ETCD_OK;
}

static void drop_prepared(struct fleet *f) {
    conf_free(f->prepared);
    f->prepared = NULL;
    f->prepared_epoch = 0;
    fleet_pools_free(&f->prepared_pools);
}

static int pools_copy(const fleet_pools *from, fleet_pools *to) {
    for (size_t i = 0; i < from->count; i++)
        if (fleet_pools_add(to, from->pools[i].name, strlen(from->pools[i].name),
                            from->pools[i].yaml, strlen(from->pools[i].yaml)) != 0)
            return -1;
    return 0;
}

/* Whether what is prepared (or held) is for this very change: the same
 * epoch and pools. A change aborted and proposed again at the same epoch
 * with other pools is another change. */
static bool prepared_for(const struct fleet *f, uint64_t epoch, const fleet_pools *pools) {
    return f->prepared && f->prepared_epoch == epoch &&
           fleet_pools_equal(&f->prepared_pools, pools);
}

/* Lets go of a switch's holds. */
static void unhold(struct fleet *f) {
    if (!f->is_holding) return;
    for (size_t i = 0; i < f->px->cf->pool_count; i++) atomic_store(&f->px->fleet_hold[i], 0);
    f->is_holding = false;
    set_state(f, f->is_isolated ? FLEET_ISOLATED : FLEET_SERVING);
    wake_workers(f);
    if (!f->is_isolated) tell_member(f, state_name(f));
}

/* The change's pools, built, or why not (in prepare_err). */
static bool ensure_prepared(struct fleet *f) {
    if (prepared_for(f, f->change.epoch, &f->change.pools)) return true;
    drop_prepared(f);
    conf *now = NULL;
    char err[CONF_ERR_MAX];
    if (build_conf(f, &f->change.pools, f->change.epoch, &now, err, sizeof err) != 0 ||
        reload_check(f->px, now, err, sizeof err) != 0) {
        conf_free(now);
        snprintf(f->prepare_err, sizeof f->prepare_err, "%s: %s", f->id, err);
        return false;
    }
    if (pools_copy(&f->change.pools, &f->prepared_pools) != 0) {
        conf_free(now);
        fleet_pools_free(&f->prepared_pools);
        snprintf(f->prepare_err, sizeof f->prepare_err, "%s: out of memory", f->id);
        return false;
    }
    f->prepared = now;
    f->prepared_epoch = f->change.epoch;
    return true;
}

/* Whether pool `name` differs between the epoch served and the change. */
static bool pool_changes(const struct fleet *f, const char *name) {
    const fleet_pool *a = fleet_pools_find(&f->pools, name);
    const fleet_pool *b = fleet_pools_find(&f->change.pools, name);
    return !a || !b || strcmp(a->yaml, b->yaml) != 0;
}

static void start_hold(struct fleet *f) {
    if (f->is_holding) return;
    const conf *cf = f->px->cf;
    for (size_t i = 0; i < cf->pool_count; i++)
        atomic_store(&f->px->fleet_hold[i], pool_changes(f, cf->pools[i].name) ? 1 : 0);
    f->is_holding = true;
    f->is_hold_told = false;
    f->hold_since_ms = mono_ms();
    set_state(f, FLEET_HOLDING);
    atomic_fetch_add(&f->px->fleet_holds, 1);
    wake_workers(f);
    f->hold_seq = atomic_load(&f->px->fleet_seq);
}

/* The change is over without a commit: back to the epoch served. */
static void change_ended(struct fleet *f, const char *why) {
    if (f->prepared || f->is_holding) {
        atomic_fetch_add(&f->px->fleet_aborts, 1);
        proxy_log(LOG_WARN, "fleet: the change to epoch %llu ended without a commit (%s): "
                  "serving epoch %llu", (unsigned long long)f->change.epoch, why,
                  (unsigned long long)f->epoch);
    }
    drop_prepared(f);
    unhold(f);
}

static bool resync(struct fleet *f);

/* What P/change now says (has_change false: it was deleted). */
static void on_change(struct fleet *f, bool may_resync) {
    if (!f->has_change) {
        change_ended(f, "its record was deleted");
        return;
    }
    fleet_change *c = &f->change;
    if (c->phase == FLEET_ABORT) {
        change_ended(f, c->reason ? c->reason : "aborted");
        return;
    }
    if (c->from != f->epoch) {
        /* This proxy missed a commit (or etcd's state went back): read it
         * all again rather than answer for an epoch it does not serve. */
        proxy_log(LOG_WARN, "fleet: a change from epoch %llu, but this proxy serves %llu%s",
                  (unsigned long long)c->from, (unsigned long long)f->epoch,
                  may_resync ? ": reading etcd again" : ": not answering it");
        if (may_resync) resync(f);
        return;
    }
    if ((f->prepared || f->is_holding) && !prepared_for(f, c->epoch, &c->pools))
        change_ended(f, "another change replaced it");
    bool is_ready = ensure_prepared(f);
    if (c->phase == FLEET_PREPARE) {
        tell_ready(f, FLEET_PREPARE, is_ready ? NULL : f->prepare_err);
        return;
    }
    if (!is_ready) {
        tell_ready(f, FLEET_SWITCH, f->prepare_err);
        return;
    }
    start_hold(f); /* answered once the workers have drained: hold_progress */
}

/* "POOL/SERVER" with '/' and '%' of the server's name escaped (a unix
 * socket's path is a server name). */
static void health_name(const char *pool, const char *server, char *out, size_t len) {
    size_t n = (size_t)snprintf(out, len, "%s/", pool);
    for (const char *c = server; *c && n + 4 < len; c++) {
        if (*c == '/' || *c == '%')
            n += (size_t)snprintf(out + n, len - n, "%%%02X", (unsigned char)*c);
        else
            out[n++] = *c;
    }
    out[n < len ? n : len - 1] = '\0';
}

static bool pool_is_judged(const conf_pool *cp) {
    return cp->on_failure != CONF_FAIL_EJECT && !cp->sentinel_count;
}

/* The fleet's verdicts (P/health/) onto configuration cf; the workers take
 * them when woken (is_wake: now). */
static void verdicts_apply(struct fleet *f, const conf *cf, bool is_wake) {
    bool changed = false;
    char name[FLEET_KEY_MAX];
    for (size_t i = 0; i < cf->pool_count; i++) {
        const conf_pool *cp = &cf->pools[i];
        for (size_t k = 0; pool_is_judged(cp) && k < cp->server_count; k++) {
            health_name(cp->name, cp->servers[k].name, name, sizeof name);
            size_t n = strlen(name);
            bool is_down = false;
            for (size_t h = 0; h < f->health.count && !is_down; h++)
                is_down = strncmp(f->health.items[h], name, n) == 0 &&
                          f->health.items[h][n] == '/';
            unsigned char was = atomic_load(&cp->verdicts[k]);
            if (is_down == ((was & CONF_VERDICT_FLEET) != 0)) continue;
            if (is_down)
                atomic_fetch_or(&cp->verdicts[k], CONF_VERDICT_FLEET);
            else
                atomic_fetch_and(&cp->verdicts[k], (unsigned char)~CONF_VERDICT_FLEET);
            changed = true;
        }
    }
    if (changed && is_wake) wake_workers(f);
}

/* What this proxy's workers say (CONF_VERDICT_LOCAL) into etcd, on the
 * lease: a proxy that dies takes its verdicts with it. */
static void verdicts_report(struct fleet *f) {
    if (f->is_isolated) return;
    const conf *cf = f->px->cf;
    char name[FLEET_KEY_MAX], key[FLEET_KEY_MAX * 2];
    str_list now = {0};
    for (size_t i = 0; i < cf->pool_count; i++) {
        const conf_pool *cp = &cf->pools[i];
        for (size_t k = 0; pool_is_judged(cp) && k < cp->server_count; k++) {
            if (!(atomic_load(&cp->verdicts[k]) & CONF_VERDICT_LOCAL)) continue;
            health_name(cp->name, cp->servers[k].name, name, sizeof name);
            list_add(&now, name);
        }
    }
    for (size_t i = 0; i < now.count; i++) {
        if (list_has(&f->reported, now.items[i])) continue;
        int n = snprintf(key, sizeof key, "%s%s%s/%s", f->prefix, FLEET_KEY_HEALTH, now.items[i],
                         f->id);
        static const char down[] = "down";
        if (etcd_put(f->e, key, (size_t)n, down, sizeof down - 1, f->lease, NULL) != ETCD_OK)
            break; /* tried again next turn */
        proxy_log(LOG_WARN, "fleet: told etcd that %s is down", now.items[i]);
        list_add(&f->reported, now.items[i]);
    }
    for (size_t i = 0; i < f->reported.count;) {
        if (list_has(&now, f->reported.items[i])) {
            i++;
            continue;
        }
        int n = snprintf(key, sizeof key, "%s%s%s/%s", f->prefix, FLEET_KEY_HEALTH,
                         f->reported.items[i], f->id);
        if (etcd_delete(f->e, key, (size_t)n, false, NULL, NULL) != ETCD_OK) break;
        proxy_log(LOG_WARN, "fleet: told etcd that %s answers again", f->reported.items[i]);
        list_remove(&f->reported, f->reported.items[i]);
    }
    list_free(&now);
}

/* A new configuration's verdicts start from the old one's, server by
 * server (same pool and server name): a reload does not make a down server
 * up. */
static void verdicts_carry(const conf *from, conf *to) {
    for (size_t i = 0; i < to->pool_count; i++)
        for (size_t j = 0; j < from->pool_count; j++) {
            if (strcmp(to->pools[i].name, from->pools[j].name) != 0) continue;
            const conf_pool *a = &from->pools[j];
            conf_pool *b = &to->pools[i];
            for (size_t k = 0; k < b->server_count; k++)
                for (size_t m = 0; m < a->server_count; m++)
                    if (strcmp(b->servers[k].name, a->servers[m].name) == 0)
                        atomic_store(&b->verdicts[k], atomic_load(&a->verdicts[m]) &
                                                          CONF_VERDICT_LOCAL);
        }
}

/* Takes committed epoch `epoch`, whose pools are f->seen. */
static void take_epoch(struct fleet *f, uint64_t epoch) {
    conf *now = NULL;
    char err[CONF_ERR_MAX];
    if (prepared_for(f, epoch, &f->seen)) {
        now = f->prepared;
        f->prepared = NULL;
    } else if (build_conf(f, &f->seen, epoch, &now, err, sizeof err) != 0) {
        proxy_log(LOG_ERROR, "fleet: epoch %llu was committed but this proxy cannot build "
                  "it, it stays on epoch %llu: %s", (unsigned long long)epoch,
                  (unsigned long long)f->epoch, err);
        change_ended(f, "cannot build the committed pools");
        return;
    }
    drop_prepared(f);
    verdicts_carry(f->px->cf, now);
    verdicts_apply(f, now, false);
    char what[96], msg[4096];
    snprintf(what, sizeof what, "fleet: took epoch %llu (was %llu)", (unsigned long long)epoch,
             (unsigned long long)f->epoch);
    if (reload_publish(f->px, now, what, msg, sizeof msg) != 0) {
        proxy_log(LOG_ERROR, "fleet: epoch %llu was committed but this proxy cannot take it, "
                  "it stays on epoch %llu: %s", (unsigned long long)epoch,
                  (unsigned long long)f->epoch, msg);
        change_ended(f, "cannot take the committed pools");
        return;
    }
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    proxy_log(LOG_WARN, "%s", msg);
    f->epoch = epoch;
    fleet_pools_free(&f->pools);
    for (size_t i = 0; i < f->seen.count; i++)
        fleet_pools_add(&f->pools, f->seen.pools[i].name, strlen(f->seen.pools[i].name),
                        f->seen.pools[i].yaml, strlen(f->seen.pools[i].yaml));
    atomic_store(&f->px->fleet_epoch, epoch);
    atomic_fetch_add(&f->px->fleet_changes, 1);
    /* After the publish: a worker that sees the holds gone but has not
     * taken the new pools waits for them (client.c's gate). */
    unhold(f);
    tell_member(f, state_name(f));
}

/* Reads everything again (after a lost lease, a compacted watch, a change
 * from an epoch this proxy does not know) and watches from there. False
 * when etcd could not be read. */
static bool resync(struct fleet *f) {
    uint64_t epoch;
    fleet_pools pools;
    char err[512];
    if (read_state(f, &epoch, &pools, err, sizeof err) != ETCD_OK) {
        proxy_log(LOG_WARN, "fleet: %s", err);
        return false;
    }
    confirmed(f);
    etcd_watch_close(f->watch);
    f->watch = NULL;
    char key[FLEET_KEY_MAX];
    size_t klen = fleet_key(f, "/", NULL, key);
    if (etcd_watch_open(f->e, key, klen, true, f->revision + 1, &f->watch) != ETCD_OK)
        proxy_log(LOG_ERROR, "fleet: cannot watch %s", key);
    fleet_pools_free(&f->seen);
    f->seen = pools;
    if (!f->read_has_epoch && f->epoch > 0) {
        /* Deleted or garbled by hand: not a commit to epoch 0. */
        proxy_log(LOG_ERROR, "fleet: %s%s is missing or not a number: staying on epoch %llu",
                  f->prefix, FLEET_KEY_EPOCH, (unsigned long long)f->epoch);
    } else if (epoch != f->epoch) {
        take_epoch(f, epoch);
    } else if (!fleet_pools_equal(&f->seen, &f->pools)) {
        proxy_log(LOG_WARN, "fleet: %s%s* changed without a new epoch: ignored until the "
                  "next one (use chash fleet apply)", f->prefix, FLEET_KEY_POOLS);
    }
    if (f->has_change) on_change(f, false);
    else change_ended(f, "no change in etcd");
    verdicts_apply(f, f->px->cf, true);
    return true;
}

/* One message of the watch: events of whole revisions, in order. */
static void on_batch(struct fleet *f, const etcd_watch_batch *b) {
    size_t plen = strlen(f->prefix), pools_len = strlen(FLEET_KEY_POOLS);
    bool is_epoch = false, is_change = false, is_health = false, is_pools = false;
    uint64_t epoch = f->epoch;
    for (size_t i = 0; i < b->event_count; i++) {
        const etcd_event *ev = &b->events[i];
        const etcd_kv *kv = &ev->kv;
        if (kv->key_len <= plen) continue;
        const char *suffix = kv->key + plen;
        bool is_put = ev->type == ETCD_EVENT_PUT;
        const char *why = NULL;
        if (strcmp(suffix, FLEET_KEY_EPOCH) == 0) {
            uint64_t v = 0;
            if (!is_put || fleet_epoch_parse(kv->value, kv->value_len, &v) != 0) {
                proxy_log(LOG_ERROR, "fleet: %s %s: ignored, staying on epoch %llu", kv->key,
                          is_put ? "is not a number" : "was deleted",
                          (unsigned long long)f->epoch);
                continue;
            }
            epoch = v;
            is_epoch = true;
        } else if (strncmp(suffix, FLEET_KEY_POOLS, pools_len) == 0 &&
                   kv->key_len > plen + pools_len) {
            const char *name = suffix + pools_len;
            is_pools = true;
            fleet_pools next = {0};
            for (size_t k = 0; k < f->seen.count; k++)
                if (strcmp(f->seen.pools[k].name, name) != 0)
                    fleet_pools_add(&next, f->seen.pools[k].name, strlen(f->seen.pools[k].name),
                                    f->seen.pools[k].yaml, strlen(f->seen.pools[k].yaml));
            if (is_put && fleet_pools_add(&next, name, strlen(name), kv->value, kv->value_len) != 0)
                proxy_log(LOG_ERROR, "fleet: %s: not a pool name: ignored", kv->key);
            fleet_pools_free(&f->seen);
            f->seen = next;
        } else if (strncmp(suffix, FLEET_KEY_HEALTH, strlen(FLEET_KEY_HEALTH)) == 0 &&
                   strlen(suffix) == kv->key_len - plen) {
            const char *what = suffix + strlen(FLEET_KEY_HEALTH);
            if (is_put)
                list_add(&f->health, what);
            else
                list_remove(&f->health, what);
            is_health = true;
        } else if (strncmp(suffix, FLEET_KEY_PROXIES, strlen(FLEET_KEY_PROXIES)) == 0) {
            const char *id = suffix + strlen(FLEET_KEY_PROXIES);
            size_t id_len = kv->key_len - plen - strlen(FLEET_KEY_PROXIES);
            if (is_put)
                cluster_members_put(f->members, id, id_len, kv->value, kv->value_len);
            else
                cluster_members_delete(f->members, id, id_len);
        } else if (strcmp(suffix, FLEET_KEY_CHANGE) == 0) {
            /* An end (delete, abort) with a later record in the same
             * message: the end must be seen, or holds would outlive it. */
            if (is_change && (!f->has_change || f->change.phase == FLEET_ABORT)) {
                if (is_epoch && epoch != f->epoch)
                    take_epoch(f, epoch); /* a commit, before the next change */
                else
                    change_ended(f, "ended, and another change began");
            }
            is_change = true;
            f->has_change = false;
            /* Deleted (a commit, an abort): its pools stay readable, so a
             * commit in the same batch finds what was prepared. */
            if (!is_put) continue;
            fleet_change_free(&f->change);
            if (fleet_change_decode(kv->value, kv->value_len, &f->change, &why) == 0) {
                f->has_change = true;
                f->change_rev = kv->mod_revision;
            } else {
                proxy_log(LOG_ERROR, "fleet: %s: %s: ignored", kv->key, why);
            }
        }
    }
    if (is_epoch && epoch != f->epoch)
        take_epoch(f, epoch);
    else if (is_change)
        on_change(f, true);
    if (is_health) verdicts_apply(f, f->px->cf, true);
    cluster_members_publish(f->members); /* when P/proxies/ changed */
    if (is_pools && !is_epoch)
        proxy_log(LOG_ERROR, "fleet: %s%s* changed without a new epoch (by hand?): this proxy "
                  "keeps serving epoch %llu as committed; use `chash fleet apply`", f->prefix,
                  FLEET_KEY_POOLS, (unsigned long long)f->epoch);
}

/* etcd did not answer: serve on, as committed. */
static void unreachable(struct fleet *f, const char *why) {
    atomic_store(&f->px->fleet_etcd_up, 0);
    if (f->is_isolated) return;
    f->is_isolated = true;
    proxy_log(LOG_WARN, "fleet: etcd unreachable, serving epoch %llu as committed until it "
              "answers (changes wait): %s", (unsigned long long)f->epoch, why);
    /* Not after a lost lease: the fleet has moved on without this proxy
     * (consistency: its clients wait until it has read the commit). */
    if (!f->needs_resync) atomic_store(&f->px->fleet_permit_ms, UINT64_MAX);
    set_state(f, FLEET_ISOLATED);
    wake_workers(f);
}

/* The lease is gone (expired while this proxy was frozen or cut off, or
 * revoked): the fleet may have moved on without it. */
static bool lease_lost(struct fleet *f) {
    proxy_log(LOG_WARN, "fleet: lease %lld is gone: registering again and reading the "
              "committed state before serving", (long long)f->lease);
    int64_t ttl = 0;
    f->needs_resync = true;
    /* Its keys went with it: a switch in progress is answered again. */
    f->is_hold_told = false;
    if (etcd_lease_grant(f->e, f->ttl_s, &f->lease, &ttl) != ETCD_OK) {
        unreachable(f, etcd_errmsg(f->e));
        return false;
    }
    /* Registered first, then read: see the top of this file. */
    if (tell_member(f, state_name(f)) != ETCD_OK || !resync(f)) return false;
    f->needs_resync = false;
    return true;
}

static void keepalive(struct fleet *f) {
    uint64_t sent = mono_ms();
    int64_t ttl = 0;
    f->next_keepalive_ms = sent + (uint64_t)f->ttl_s * 1000u / 3u;
    int rc = etcd_lease_keepalive(f->e, f->lease, &ttl);
    if (rc != ETCD_OK) {
        f->next_keepalive_ms = mono_ms() + 300;
        unreachable(f, etcd_errmsg(f->e));
        return;
    }
    confirmed(f);
    if (f->needs_resync && ttl > 0) {
        /* A new lease, but the read after it failed: read before serving. */
        sent = mono_ms();
        if (tell_member(f, state_name(f)) != ETCD_OK || !resync(f)) {
            f->next_keepalive_ms = mono_ms() + 300;
            return;
        }
        f->needs_resync = false;
    }
    if (ttl <= 0) {
        sent = mono_ms();
        if (!lease_lost(f)) {
            f->next_keepalive_ms = mono_ms() + 300; /* clients wait meanwhile */
            return;
        }
        f->next_keepalive_ms = sent + (uint64_t)f->ttl_s * 1000u / 3u;
    }
    bool was_off = f->is_isolated || sent >= atomic_load(&f->px->fleet_permit_ms);
    if (f->is_isolated) {
        proxy_log(LOG_WARN, "fleet: etcd answers again: epoch %llu", (unsigned long long)f->epoch);
        f->is_isolated = false;
        set_state(f, f->is_holding ? FLEET_HOLDING : FLEET_SERVING);
        tell_member(f, state_name(f));
    }
    atomic_store(&f->px->fleet_permit_ms, sent + (uint64_t)f->ttl_s * 1000u - f->margin_ms);
    if (was_off) wake_workers(f);
}

/* A switch: answer once every worker has drained the held pools; abort the
 * change if no commit comes in time. */
static void hold_progress(struct fleet *f) {
    proxy *px = f->px;
    if (!f->is_hold_told) {
        for (uint32_t i = 0; i < px->worker_count; i++)
            if (atomic_load(&px->workers[i].fleet_drained) < f->hold_seq) return;
        if (tell_ready(f, FLEET_SWITCH, NULL) == ETCD_OK) {
            f->is_hold_told = true;
            tell_member(f, state_name(f));
        }
        return;
    }
    if (mono_ms() - f->hold_since_ms < f->hold_limit_ms) return;
    /* Abort by CAS on the change's revision: if the commit won, the CAS
     * fails and the watch brings the commit. */
    fleet_change c = f->change;
    c.phase = FLEET_ABORT;
    char reason[256];
    snprintf(reason, sizeof reason, "%s held its pools %llu ms without a commit", f->id,
             (unsigned long long)(mono_ms() - f->hold_since_ms));
    c.reason = reason;
    char *json = NULL;
    size_t len = 0;
    if (fleet_change_encode(&c, &json, &len) != 0) return;
    char key[FLEET_KEY_MAX];
    size_t klen = fleet_key(f, FLEET_KEY_CHANGE, NULL, key);
    etcd_cas cas = {.key = key, .key_len = klen, .mod_revision = f->change_rev, .value = json,
                    .value_len = len};
    etcd_cas_result res = {0};
    int rc = etcd_txn_cas(f->e, &cas, &res);
    free(json);
    if (rc != ETCD_OK) {
        static log_limit limit;
        proxy_log_limited(&limit, LOG_WARN, "fleet: holding for epoch %llu and etcd does not "
                          "answer: still holding (the change may have committed): %s",
                          (unsigned long long)f->change.epoch, etcd_errmsg(f->e));
        return;
    }
    if (res.is_swapped) {
        /* Ended for good: the record goes, if it is still this abort, so
         * the next `chash fleet apply` finds no change in progress. */
        etcd_compare cmp = {.kind = ETCD_CMP_MOD_REVISION, .key = key, .key_len = klen,
                            .mod_revision = res.revision};
        etcd_op op = {.kind = ETCD_OP_DELETE, .key = key, .key_len = klen};
        bool is_done = false;
        etcd_txn(f->e, &cmp, 1, &op, 1, &is_done, NULL);
        proxy_log(LOG_WARN, "fleet: %s: the change to epoch %llu is aborted", reason,
                  (unsigned long long)f->change.epoch);
    }
    etcd_cas_result_free(&res);
    f->hold_since_ms = mono_ms(); /* the watch brings the abort or the commit */
}

static void *fleet_main(void *arg) {
    struct fleet *f = arg;
    if (f->has_change) on_change(f, true);
    while (!proxy_stop) {
        uint64_t now = mono_ms();
        if (now >= f->next_keepalive_ms) keepalive(f);
        if (f->is_holding) hold_progress(f);
        if (f->is_answer_due && f->has_change && f->change.phase == f->answer_phase)
            tell_ready(f, f->answer_phase, f->is_answer_ok ? NULL : f->answer_err);
        verdicts_report(f);
        if (!f->watch) {
            resync(f);
            if (!f->watch) {
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
                continue;
            }
        }
        now = mono_ms();
        int wait = f->is_holding ? 2 : 100;
        if (f->next_keepalive_ms <= now) wait = 0;
        else if (f->next_keepalive_ms - now < (uint64_t)wait) wait = (int)(f->next_keepalive_ms - now);
        etcd_watch_batch b = {0};
        int rc = etcd_watch_next(f->watch, wait, &b);
        if (rc == 1) {
            confirmed(f);
            on_batch(f, &b);
            etcd_watch_batch_free(&b);
        } else if (rc == ETCD_EUNAVAILABLE) {
            unreachable(f, etcd_watch_errmsg(f->watch));
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        } else if (rc != 0) {
            if (rc == ETCD_ECOMPACTED) etcd_watch_batch_free(&b);
            proxy_log(LOG_WARN, "fleet: the watch ended (%s): reading etcd again",
                      etcd_strerror(rc));
            etcd_watch_close(f->watch);
            f->watch = NULL;
        }
    }
    return NULL;
}

/* A start less than a warm-up window after the last commit: the workers
 * are built from the previous epoch's pools (*cf becomes those) and take
 * this epoch's (f->start_conf) at once, warming up from the previous ones,
 * as the proxies that took the change do. Otherwise nothing changes. */
static void start_in_window(struct fleet *f, conf **cf) {
    if (!f->has_previous || f->previous.epoch + 1 != f->epoch) return;
    int64_t warmup_ms = 0;
    for (size_t i = 0; i < (*cf)->pool_count; i++)
        if ((*cf)->pools[i].warmup_ms > warmup_ms) warmup_ms = (*cf)->pools[i].warmup_ms;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t age = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 -
                  f->previous.committed_unix_ms;
    if (warmup_ms == 0 || age < 0 || age >= warmup_ms) return;
    conf *before = NULL;
    char err[CONF_ERR_MAX];
    if (build_conf(f, &f->previous.pools, f->previous.epoch, &before, err, sizeof err) != 0) {
        proxy_log(LOG_WARN, "fleet: epoch %llu's pools do not build here, no warm-up from "
                  "them: %s", (unsigned long long)f->previous.epoch, err);
        return;
    }
    if (before->pool_count != (*cf)->pool_count) {
        conf_free(before);
        return;
    }
    for (size_t i = 0; i < before->pool_count; i++)
        if (strcmp(before->pools[i].name, (*cf)->pools[i].name) != 0 ||
            strcmp(before->pools[i].listen, (*cf)->pools[i].listen) != 0 ||
            before->pools[i].redis != (*cf)->pools[i].redis) {
            conf_free(before);
            return;
        }
    proxy_log(LOG_WARN, "fleet: epoch %llu was committed %lld ms ago: warming up from epoch "
              "%llu's servers like the rest of the fleet", (unsigned long long)f->epoch,
              (long long)age, (unsigned long long)f->previous.epoch);
    f->start_conf = *cf;
    *cf = before;
}

static void fleet_free(struct fleet *f) {
    if (!f) return;
    etcd_watch_close(f->watch);
    etcd_free(f->e);
    fleet_pools_free(&f->pools);
    fleet_pools_free(&f->seen);
    fleet_change_free(&f->change);
    conf_free(f->prepared);
    conf_free(f->start_conf);
    fleet_previous_free(&f->previous);
    list_free(&f->health);
    list_free(&f->reported);
    cluster_members_free(f->members);
    for (size_t i = 0; i < f->listen_count; i++) free(f->listens[i]);
    free(f->prefix);
    if (f->password) {
        secret_free(f->password);
    }
    free(f);
}

int fleet_open(const fleet_options *opt, struct fleet **out, conf **cf, char *err,
               size_t err_len) {
    struct fleet *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    size_t plen = strlen(opt->prefix);
    while (plen > 1 && opt->prefix[plen - 1] == '/') plen--;
    f->prefix = strndup(opt->prefix, plen);
    f->ttl_s = opt->lease_ttl_s;
    f->margin_ms = (uint64_t)f->ttl_s * 1000u / 4u;
    if (f->margin_ms < 500) f->margin_ms = 500;
    f->hold_limit_ms = (uint64_t)f->ttl_s * 2000u + 2000u;
    f->started_unix = (int64_t)time(NULL);
    if (gethostname(f->host, sizeof f->host) != 0) snprintf(f->host, sizeof f->host, "unknown");
    f->host[sizeof f->host - 1] = '\0';
    if (opt->id)
        snprintf(f->id, sizeof f->id, "%s", opt->id);
    else
        snprintf(f->id, sizeof f->id, "%.100s-%ld", f->host, (long)getpid());
    for (size_t i = 0; i < opt->listen_count; i++) {
        const char *eq = strchr(opt->listens[i], '=');
        if (!eq || eq == opt->listens[i] || !eq[1]) {
            snprintf(err, err_len, "--listen %s: expected NAME=ADDRESS", opt->listens[i]);
            goto fail;
        }
        if (!(f->listens[f->listen_count++] = strdup(opt->listens[i]))) {
            snprintf(err, err_len, "out of memory");
            goto fail;
        }
    }
    if (!f->prefix || f->prefix[0] != '/') {
        snprintf(err, err_len, "--etcd-prefix must start with '/'");
        goto fail;
    }
    if (!(f->members = cluster_members_new(f->prefix, f->id))) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (opt->password_file &&
        !(f->password = secret_read_file("--etcd-password-file", opt->password_file, err,
                                         err_len)))
        goto fail;
    etcd_options eo = {.timeout_ms = FLEET_ETCD_TIMEOUT_MS, .username = opt->user,
                       .password = f->password, .ca_file = opt->cacert,
                       .cert_file = opt->cert, .key_file = opt->key,
                       .watch_probe_ms = FLEET_WATCH_PROBE_MS, .log = etcd_said};
    if (opt->user && !f->password) {
        const char *env = getenv("CHASH_ETCD_PASSWORD");
        if (env) f->password = strdup(env);
        eo.password = f->password;
    }
    int rc = etcd_create(opt->endpoints, &eo, &f->e);
    if (rc != ETCD_OK) {
        snprintf(err, err_len, "--etcd %s: %s", opt->endpoints, etcd_strerror(rc));
        goto fail;
    }
    uint64_t granted_at = mono_ms();
    int64_t ttl = 0;
    if (etcd_lease_grant(f->e, f->ttl_s, &f->lease, &ttl) != ETCD_OK) {
        snprintf(err, err_len, "etcd: cannot get a lease: %s", etcd_errmsg(f->e));
        goto fail;
    }
    if (tell_member(f, "starting") != ETCD_OK) {
        snprintf(err, err_len, "etcd: cannot register: %s", etcd_errmsg(f->e));
        goto fail;
    }
    fleet_pools pools;
    if (read_state(f, &f->epoch, &pools, err, err_len) != ETCD_OK) goto fail;
    f->seen = pools;
    if (f->read_has_epoch && f->read_pools_rev > f->read_epoch_rev) {
        /* Serving them would route differently from every proxy that took
         * the epoch as committed. */
        snprintf(err, err_len, "%s%s* changed after epoch %llu was committed (by hand, not by "
                 "`chash fleet apply`): the proxies that run do not serve that; apply the "
                 "pools you want with `chash fleet apply`", f->prefix, FLEET_KEY_POOLS,
                 (unsigned long long)f->epoch);
        fleet_pools_free(&pools);
        f->seen = (fleet_pools){0};
        goto fail;
    }
    if (pools.count == 0) {
        snprintf(err, err_len, "no pools under %s%s in etcd: store them with `chash fleet "
                 "apply FILE --etcd %s --etcd-prefix %s`", f->prefix, FLEET_KEY_POOLS,
                 opt->endpoints, f->prefix);
        goto fail;
    }
    for (size_t i = 0; i < pools.count; i++)
        fleet_pools_add(&f->pools, pools.pools[i].name, strlen(pools.pools[i].name),
                        pools.pools[i].yaml, strlen(pools.pools[i].yaml));
    if (build_conf(f, &f->pools, f->epoch, cf, err, err_len) != 0) goto fail;
    start_in_window(f, cf);
    size_t used = 0;
    for (size_t i = 0; i < (*cf)->pool_count && used < sizeof f->listen; i++) {
        int n = snprintf(f->listen + used, sizeof f->listen - used, "%s%s=%s", i ? "," : "",
                         (*cf)->pools[i].name, (*cf)->pools[i].listen);
        if (n < 0) break;
        used += (size_t)n;
    }
    char key[FLEET_KEY_MAX];
    size_t klen = fleet_key(f, "/", NULL, key);
    if (etcd_watch_open(f->e, key, klen, true, f->revision + 1, &f->watch) != ETCD_OK) {
        snprintf(err, err_len, "etcd: cannot watch %s", key);
        conf_free(*cf);
        *cf = NULL;
        goto fail;
    }
    f->next_keepalive_ms = granted_at + (uint64_t)f->ttl_s * 1000u / 3u;
    *out = f;
    return 0;
fail:
    if (f->e && f->lease) etcd_lease_revoke(f->e, f->lease);
    fleet_free(f);
    return -1;
}

void fleet_close(struct fleet *f) {
    if (!f) return;
    if (f->lease) etcd_lease_revoke(f->e, f->lease);
    fleet_free(f);
}

int fleet_attach(struct fleet *f, proxy *px) {
    px->fleet_hold = calloc(px->cf->pool_count, sizeof *px->fleet_hold);
    if (!px->fleet_hold) return -1;
    f->px = px;
    px->fleet = f;
    snprintf(px->fleet_id, sizeof px->fleet_id, "%s", f->id);
    verdicts_apply(f, px->cf, false); /* the workers are not running yet */
    atomic_store(&px->fleet_epoch, f->epoch);
    atomic_store(&px->fleet_seq, 1);
    atomic_store(&px->fleet_etcd_up, 1);
    atomic_store(&px->fleet_confirmed_ms, mono_ms());
    /* The lease was granted moments ago: its whole TTL less the margin. */
    atomic_store(&px->fleet_permit_ms, mono_ms() + (uint64_t)f->ttl_s * 1000u - f->margin_ms);
    /* A switch already under way: this proxy starts with those pools held
     * (nothing in flight yet), and answers once its thread runs. */
    if (f->has_change && f->change.from == f->epoch && f->change.phase == FLEET_SWITCH &&
        ensure_prepared(f)) {
        for (size_t i = 0; i < px->cf->pool_count; i++)
            atomic_store(&px->fleet_hold[i], pool_changes(f, px->cf->pools[i].name) ? 1 : 0);
        f->is_holding = true;
        f->hold_since_ms = mono_ms();
        f->hold_seq = 1;
        set_state(f, FLEET_HOLDING);
    }
    return 0;
}

int fleet_start(proxy *px, char *err, size_t err_len) {
    struct fleet *f = px->fleet;
    if (!f) return 0;
    if (f->start_conf) {
        /* The workers exist, built from the previous epoch; they take this
         * one at their first turn (the gate holds commands until then). */
        conf *now = f->start_conf;
        f->start_conf = NULL;
        verdicts_carry(px->cf, now);
        verdicts_apply(f, now, false);
        char what[96], msg[4096];
        snprintf(what, sizeof what, "fleet: epoch %llu, warm-up from epoch %llu",
                 (unsigned long long)f->epoch, (unsigned long long)f->previous.epoch);
        if (reload_publish(px, now, what, msg, sizeof msg) != 0) {
            snprintf(err, err_len, "%s", msg);
            return -1;
        }
    }
    tell_member(f, state_name(f));
    if (pthread_create(&f->thread, NULL, fleet_main, f) != 0) {
        snprintf(err, err_len, "cannot start the fleet thread");
        return -1;
    }
    f->has_thread = true;
    return 0;
}

void fleet_stop(proxy *px) {
    struct fleet *f = px->fleet;
    if (!f) return;
    if (f->has_thread) pthread_join(f->thread, NULL);
    /* Out of the fleet now, not when the lease runs out: a change need not
     * wait for this proxy. */
    if (f->lease) etcd_lease_revoke(f->e, f->lease);
    fleet_free(f);
    px->fleet = NULL;
    free((void *)px->fleet_hold);
    px->fleet_hold = NULL;
}
