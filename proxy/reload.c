/*
 * reload.c - live reconfiguration: SIGHUP or `PROXY RELOAD`.
 *
 * The file is read and checked whole, off the workers (SIGHUP: the reload
 * thread; PROXY RELOAD: the worker that was asked, which waits for the
 * file). A configuration that fails to load, or that changes a pool's name,
 * listen address or protocol, or the set of pools (listeners stay up, so
 * those need a restart), is refused and the old one keeps running. A good
 * one is published with a generation number; every worker picks it up at
 * its next loop turn (worker_sync): new servers and rings, the same
 * listeners and client connections, requests in flight finished on the old
 * servers, whose connections then close.
 *
 * The plan of a reload is exact: the old and new rings (all servers, as
 * configured) are compared with chash_diff, range by range.
 *
 * A reload is tried at most every RELOAD_MIN_INTERVAL_MS, and the same file
 * (byte for byte) changes nothing. A replaced configuration is freed once
 * every worker has moved past it: its pools drained and its warm-up
 * windows closed (each worker publishes the oldest generation it uses).
 */
#define _GNU_SOURCE
#include "proxy.h"

#include "fleetproto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

atomic_int proxy_reload_requested;

static void appendf(char *msg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void appendf(char *msg, size_t len, const char *fmt, ...) {
    size_t used = strlen(msg);
    if (used + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + used, len - used, fmt, ap);
    va_end(ap);
}

/* distribution: buckets - the first BUCKET_LINES_MAX moves of
 * conf_pool_bucket_plan as lines. */
#define BUCKET_LINES_MAX 16u
typedef struct bucket_lines {
    uint64_t count;
    char text[BUCKET_LINES_MAX * 96];
} bucket_lines;

static int add_bucket_line(void *user, const conf_bucket_move *m) {
    bucket_lines *s = user;
    char text[96];
    if (++s->count <= BUCKET_LINES_MAX) {
        conf_bucket_move_text(m, text, sizeof text);
        appendf(s->text, sizeof s->text, "  %s\n", text);
    }
    return 0;
}

/* One line a pool: servers before and after, and the plan (fleetproto.c's,
 * which `chash fleet plan` prints too): exact by hash range or by bucket,
 * else from sampled keys. */
static void describe_pool(const conf_pool *old, const conf_pool *now, char *msg, size_t len) {
    appendf(msg, len, "pool %s: %zu -> %zu servers", now->name, old->server_count,
            now->server_count);
    fleet_pool_plan plan;
    int rc = fleet_pool_plan_of(old, now, &plan);
    if (rc != CHASH_OK) {
        appendf(msg, len, ", no plan: %s\n", chash_strerror(rc));
    } else if (plan.is_buckets) {
        bucket_lines bl;
        memset(&bl, 0, sizeof bl);
        conf_pool_bucket_plan(old, now, add_bucket_line, &bl);
        appendf(msg, len, ", %llu buckets moved in %llu runs, %llu overridden keys moved\n%s%s",
                (unsigned long long)plan.buckets_moved, (unsigned long long)plan.range_count,
                (unsigned long long)plan.keys_moved, bl.text,
                bl.count > BUCKET_LINES_MAX ? "  ...\n" : "");
    } else if (plan.is_exact) {
        appendf(msg, len, ", %llu hash ranges moved, %.4f%% of the key space\n",
                (unsigned long long)plan.range_count, 100.0 * plan.moved_fraction);
    } else if (plan.samples) {
        appendf(msg, len, ", no exact plan (distribution %s, or the hash changed): about "
                "%.2f%% of %llu sampled keys move\n", conf_dist_name(now),
                100.0 * plan.moved_fraction, (unsigned long long)plan.samples);
    } else {
        appendf(msg, len, ", no plan (distribution %s places keys at random)\n",
                conf_dist_name(now));
    }
}

/* "  users: alice changed, bob removed, dave added": the users whose rules
 * a reload changes (names only, never a password or a digest). Clients of a
 * changed user follow its new rules; of a removed or disabled one, must
 * AUTH again (session_rebind). */
static void describe_users(const conf_pool *old, const conf_pool *now, char *msg, size_t len) {
    const char *sep = "  users: ";
    for (size_t i = 0; i < now->user_count; i++) {
        const acl_user *u = &now->users[i];
        const acl_user *was = acl_user_find(old->users, old->user_count, u->name, strlen(u->name));
        if (was && acl_user_same(was, u)) continue;
        appendf(msg, len, "%s%s %s", sep, u->name,
                !was ? "added" : was->is_on && !u->is_on ? "switched off" : "changed");
        sep = ", ";
    }
    for (size_t i = 0; i < old->user_count; i++) {
        const acl_user *u = &old->users[i];
        if (acl_user_find(now->users, now->user_count, u->name, strlen(u->name))) continue;
        appendf(msg, len, "%s%s removed", sep, u->name);
        sep = ", ";
    }
    if (*sep == ',') appendf(msg, len, "\n");
}

/* What a reload may not change while listeners and clients stay up. */
static int compatible(const conf *old, const conf *now, char *msg, size_t len) {
    if (old->pool_count != now->pool_count) {
        snprintf(msg, len, "pools added or removed (%zu -> %zu): restart to do that",
                 old->pool_count, now->pool_count);
        return -1;
    }
    for (size_t i = 0; i < now->pool_count; i++) {
        const conf_pool *a = &old->pools[i], *b = &now->pools[i];
        if (strcmp(a->name, b->name) != 0 || strcmp(a->listen, b->listen) != 0 ||
            a->redis != b->redis) {
            snprintf(msg, len,
                     "pool %s: name, listen or redis changed (or pools reordered): restart to "
                     "do that",
                     b->name);
            return -1;
        }
    }
    return 0;
}

int reload_check(proxy *px, const conf *now, char *msg, size_t msg_len) {
    pthread_mutex_lock(&px->lock);
    const conf *old = px->cf;
    pthread_mutex_unlock(&px->lock);
    return compatible(old, now, msg, msg_len);
}

int reload_publish(proxy *px, conf *now, const char *what, char *msg, size_t msg_len) {
    char err[CONF_ERR_MAX];
    conf_list *node = NULL;
    if (reload_check(px, now, err, sizeof err) != 0) {
        snprintf(msg, msg_len, "reload refused, the old configuration stays: %s", err);
        conf_free(now);
        return -1;
    }
    node = malloc(sizeof *node);
    if (!node) {
        snprintf(msg, msg_len, "reload refused: out of memory");
        conf_free(now);
        return -1;
    }
    /* Only this thread replaces px->cf (one_at_a_time, or the fleet's
     * thread, which runs without a file), so old stays valid unlocked. */
    pthread_mutex_lock(&px->lock);
    const conf *old = px->cf;
    pthread_mutex_unlock(&px->lock);
    snprintf(msg, msg_len, "%s\n", what);
    for (size_t i = 0; i < now->pool_count; i++) {
        describe_pool(&old->pools[i], &now->pools[i], msg, msg_len);
        describe_users(&old->pools[i], &now->pools[i], msg, msg_len);
    }
    pthread_mutex_lock(&px->lock);
    node->cf = px->cf;
    node->gen = atomic_load(&px->conf_gen);
    node->next = px->old_confs;
    px->old_confs = node;
    px->cf = now;
    atomic_fetch_add(&px->conf_gen, 1);
    pthread_mutex_unlock(&px->lock);
    return 0;
}

/* A reload is tried at most this often: each builds every pool anew on
 * every worker, so a client looping on PROXY RELOAD (5,700 a second at
 * b733ada) would cost everyone. */
#define RELOAD_MIN_INTERVAL_MS 200u

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* FNV-1a of the file's bytes, or 0 when it cannot be read. */
static uint64_t file_digest(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint64_t h = 0xcbf29ce484222325u;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)chunk[i]) * 0x100000001b3u;
    bool is_ok = !ferror(f);
    fclose(f);
    return is_ok ? h | 1 : 0;
}

/* The configuration's digest: its file's, mixed with those of the files
 * its pools read (a renewed certificate is a change to reload), or 0 when
 * the file cannot be read. */
static uint64_t conf_digest(const char *path, const conf *cf) {
    uint64_t h = file_digest(path);
    for (size_t i = 0; h && cf && i < cf->pool_count; i++) {
        const char *files[CONF_POOL_FILES_MAX];
        size_t n = conf_pool_files(&cf->pools[i], files);
        for (size_t k = 0; k < n; k++) h = (h ^ file_digest(files[k])) * 0x100000001b3u;
    }
    return h ? h | 1 : 0;
}

/* The configuration in force, as the reload thread reads it. */
static uint64_t digest_in_force(proxy *px) {
    pthread_mutex_lock(&px->lock);
    uint64_t d = conf_digest(px->conf_path, px->cf);
    pthread_mutex_unlock(&px->lock);
    return d;
}

void reload_init(proxy *px) {
    px->conf_digest = px->conf_path ? digest_in_force(px) : 0;
}

void reload_collect(proxy *px) {
    uint64_t oldest = UINT64_MAX;
    for (uint32_t i = 0; i < px->worker_count; i++) {
        uint64_t g = atomic_load(&px->workers[i].oldest_gen);
        if (g < oldest) oldest = g;
    }
    conf_list *dead = NULL;
    pthread_mutex_lock(&px->lock);
    for (conf_list **at = &px->old_confs; *at;) {
        conf_list *node = *at;
        if (node->gen >= oldest) {
            at = &node->next;
            continue;
        }
        *at = node->next;
        node->next = dead;
        dead = node;
    }
    pthread_mutex_unlock(&px->lock);
    while (dead) {
        conf_list *next = dead->next;
        conf_free(dead->cf);
        free(dead);
        dead = next;
    }
}

/* A reload that did nothing (too soon, the same file): said to whoever
 * asked, logged at most once a second. */
static void reload_skipped(const char *msg) {
    static log_limit limit;
    proxy_log_limited(&limit, LOG_INFO, "%s", msg);
}

int proxy_reload(proxy *px, char *msg, size_t msg_len) {
    static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&one_at_a_time);
    msg[0] = '\0';
    conf *now = NULL;
    char err[CONF_ERR_MAX];
    int rc = -1;
    if (!px->conf_path) {
        /* Every proxy of the fleet must change together: not one alone. */
        snprintf(msg, msg_len, "reload refused: the pools come from etcd (--etcd); change "
                 "them with `chash fleet apply`");
        pthread_mutex_unlock(&one_at_a_time);
        return -1;
    }
    uint64_t t = now_ms();
    if (px->last_reload_ms && t - px->last_reload_ms < RELOAD_MIN_INTERVAL_MS) {
        snprintf(msg, msg_len, "reload refused: the last one was %llu ms ago (one every %u ms "
                 "at most)", (unsigned long long)(t - px->last_reload_ms),
                 RELOAD_MIN_INTERVAL_MS);
        reload_skipped(msg);
        pthread_mutex_unlock(&one_at_a_time);
        return -2;
    }
    px->last_reload_ms = t;
    uint64_t digest = digest_in_force(px);
    if (digest && digest == px->conf_digest) {
        snprintf(msg, msg_len, "%s is unchanged: nothing to reload", px->conf_path);
        reload_skipped(msg);
        pthread_mutex_unlock(&one_at_a_time);
        return 0;
    }
    if (conf_load(px->conf_path, &now, err, sizeof err) != 0) {
        snprintf(msg, msg_len, "reload refused, the old configuration stays: %s", err);
        goto done;
    }
    char what[256];
    snprintf(what, sizeof what, "reloaded %s", px->conf_path);
    rc = reload_publish(px, now, what, msg, msg_len);
    now = NULL;
    if (rc == 0) px->conf_digest = digest_in_force(px);
done:
    conf_free(now);
    /* The log and PROXY RING tell what the last reload did. */
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    proxy_log(rc == 0 ? LOG_WARN : LOG_ERROR, "%s", msg);
    pthread_mutex_lock(&px->lock);
    snprintf(px->last_reload, sizeof px->last_reload, "%s", msg);
    pthread_mutex_unlock(&px->lock);
    pthread_mutex_unlock(&one_at_a_time);
    return rc;
}

/* SIGHUP only sets a flag; the file is read here, not in a worker. */
static void *reload_main(void *arg) {
    proxy *px = arg;
    while (!proxy_stop && !proxy_drain) {
        if (atomic_exchange(&proxy_reload_requested, 0)) {
            char msg[2048];
            /* Too soon: signals in a burst become one reload, once allowed. */
            if (proxy_reload(px, msg, sizeof msg) < -1) proxy_reload_requested = 1;
        }
        reload_collect(px);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int reload_start(proxy *px, char *err, size_t err_len) {
    if (pthread_create(&px->reload_thread, NULL, reload_main, px) != 0) {
        snprintf(err, err_len, "cannot start the reload thread");
        return -1;
    }
    px->has_reload_thread = true;
    return 0;
}

void reload_stop(proxy *px) {
    if (px->has_reload_thread) pthread_join(px->reload_thread, NULL);
    px->has_reload_thread = false;
}
