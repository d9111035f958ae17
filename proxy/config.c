/*
 * config.c - reads nutcracker's YAML configuration with libyaml.
 *
 * Keys and values follow nutcracker 0.5 (nc_conf.c): the same names, the same
 * defaults, the same server syntax `host:port:weight [name]` or
 * `/unix/path:weight [name]`. Unlike nutcracker, every error names its line,
 * and a few keys of ours (limits) sit beside the old ones.
 *
 * Invariant: a conf is either fully valid or not returned at all.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <yaml.h>

#define REDIS_AUTH_MAX 255u

typedef struct ctx {
    const char *path;
    char *err;
    size_t err_len;
    yaml_document_t *doc;
    const conf_options *opt; /* never NULL */
    unsigned long line_count; /* lines of the text, as libyaml counts them */
} ctx;

/* Lines of UTF-8 text, breaking where libyaml does: CR LF, CR, LF, NEL, LS
 * and PS. */
static unsigned long count_lines(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    unsigned long breaks = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n') i++;
        if (s[i] == '\r' || s[i] == '\n') {
            breaks++;
        } else if (s[i] == 0xc2 && i + 1 < len && s[i + 1] == 0x85) {
            breaks++;
            i++;
        } else if (s[i] == 0xe2 && i + 2 < len && s[i + 1] == 0x80 &&
                   (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
            breaks++;
            i += 2;
        }
    }
    return breaks + 1;
}

/* The 1-based line of a mark. At the end of a file whose last line has no
 * line break, libyaml has already stepped onto a line that is not there. */
static unsigned long mark_line(const ctx *c, yaml_mark_t m) {
    unsigned long line = (unsigned long)m.line + 1;
    return line < c->line_count ? line : c->line_count;
}

static int fail(ctx *c, const yaml_node_t *at, const char *fmt, ...) {
    int n = snprintf(c->err, c->err_len, "%s:%lu: ", c->path,
                     at ? mark_line(c, at->start_mark) : 0ul);
    if (n < 0 || (size_t)n >= c->err_len) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *scalar(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* A decimal integer within [min, max]. */
static bool parse_int(const char *s, int64_t min, int64_t max, int64_t *out) {
    if (!s || !*s) return false;
    bool is_neg = s[0] == '-';
    const char *p = s + (is_neg ? 1 : 0);
    if (!*p) return false;
    int64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        if (v > (INT64_MAX - (*p - '0')) / 10) return false;
        v = v * 10 + (*p - '0');
    }
    if (is_neg) v = -v;
    if (v < min || v > max) return false;
    *out = v;
    return true;
}

static int resolve(ctx *c, const yaml_node_t *at, const char *host, int port, bool is_unix,
                   bool is_passive, conf_addr *out) {
    memset(out, 0, sizeof *out);
    if (is_unix) {
        struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;
        if (strlen(host) >= sizeof un->sun_path)
            return fail(c, at, "unix socket path '%s' is too long", host);
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, host, strlen(host) + 1);
        out->sa_len = (socklen_t)sizeof *un;
        out->is_unix = true;
        return 0;
    }
    if (c->opt->resolve) {
        const char *why = "unknown host";
        if (c->opt->resolve(c->opt->user, host, port, is_passive, out, &why) != 0)
            return fail(c, at, "cannot resolve '%s': %s", host, why);
        return 0;
    }
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (is_passive) hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(host, port_text, &hints, &res);
    if (rc != 0 || !res) return fail(c, at, "cannot resolve '%s': %s", host, gai_strerror(rc));
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->sa_len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* "host:port", "[v6]:port", or "/path [mode]". */
static int parse_listen(ctx *c, const yaml_node_t *at, const char *s, conf_pool *p) {
    p->listen = strdup(s);
    if (!p->listen) return fail(c, at, "out of memory");
    if (s[0] == '/') {
        const char *sp = strchr(s, ' ');
        size_t path_len = sp ? (size_t)(sp - s) : strlen(s);
        char *path = dup_n(s, path_len);
        if (!path) return fail(c, at, "out of memory");
        p->listen_mode = -1;
        if (sp) {
            char *end;
            errno = 0;
            long mode = strtol(sp + 1, &end, 8);
            if (errno || *end || end == sp + 1 || mode < 0 || mode > 07777) {
                free(path);
                return fail(c, at, "listen: bad unix socket mode in '%s'", s);
            }
            p->listen_mode = (int)mode;
        }
        int rc = resolve(c, at, path, 0, true, true, &p->listen_addr);
        free(path);
        return rc;
    }
    const char *colon = strrchr(s, ':');
    int64_t port;
    if (!colon || colon == s || !parse_int(colon + 1, 1, 65535, &port))
        return fail(c, at, "listen: '%s' is not host:port or /unix/path", s);
    const char *h = s;
    size_t hlen = (size_t)(colon - s);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    char *host = dup_n(h, hlen);
    if (!host) return fail(c, at, "out of memory");
    int rc = resolve(c, at, host, (int)port, false, true, &p->listen_addr);
    free(host);
    return rc;
}

/* "host:port:weight [name]" or "/path:weight [name]". */
static int parse_server(ctx *c, const yaml_node_t *at, const char *s, conf_server *out) {
    memset(out, 0, sizeof *out);
    out->line = (unsigned)at->start_mark.line + 1;
    out->text = strdup(s);
    if (!out->text) return fail(c, at, "out of memory");
    size_t len = strcspn(s, " \t");
    const char *name = s + len;
    while (*name == ' ' || *name == '\t') name++;
    if (*name) {
        if (strpbrk(name, " \t")) return fail(c, at, "server '%s': a name has no spaces", s);
        out->name = strdup(name);
        out->has_name = true;
        if (!out->name) return fail(c, at, "out of memory");
    }
    /* Work on the address part; the last colon starts the weight. */
    const char *weight_colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':') weight_colon = s + i;
    if (!weight_colon) return fail(c, at, "server '%s' is not host:port:weight [name]", s);
    char wtext[16];
    size_t wlen = len - (size_t)(weight_colon + 1 - s);
    int64_t weight;
    if (wlen == 0 || wlen >= sizeof wtext) return fail(c, at, "server '%s': bad weight", s);
    memcpy(wtext, weight_colon + 1, wlen);
    wtext[wlen] = '\0';
    if (!parse_int(wtext, 1, CHASH_WEIGHT_MAX, &weight))
        return fail(c, at, "server '%s': weight must be 1..%u", s, CHASH_WEIGHT_MAX);
    out->weight = (uint32_t)weight;
    size_t addr_len = (size_t)(weight_colon - s);
    if (s[0] == '/') {
        out->host = dup_n(s, addr_len);
        if (!out->host) return fail(c, at, "out of memory");
        out->port = 0;
        /* nutcracker names an unnamed unix server "/path:" */
        if (!out->name) out->name = dup_n(s, addr_len + 1);
        if (!out->name) return fail(c, at, "out of memory");
        return resolve(c, at, out->host, 0, true, false, &out->addr);
    }
    const char *port_colon = NULL;
    for (size_t i = 0; i < addr_len; i++)
        if (s[i] == ':') port_colon = s + i;
    if (!port_colon || port_colon == s)
        return fail(c, at, "server '%s' is not host:port:weight [name]", s);
    char ptext[16];
    size_t plen = (size_t)(weight_colon - port_colon - 1);
    int64_t port;
    if (plen == 0 || plen >= sizeof ptext) return fail(c, at, "server '%s': bad port", s);
    memcpy(ptext, port_colon + 1, plen);
    ptext[plen] = '\0';
    if (!parse_int(ptext, 1, 65535, &port)) return fail(c, at, "server '%s': bad port", s);
    out->port = (int)port;
    out->host = dup_n(s, (size_t)(port_colon - s));
    if (!out->host) return fail(c, at, "out of memory");
    if (!out->name) {
        /* nutcracker's server name: "host" for 11211 (libmemcached's rule),
         * else "host:port" as written. */
        out->name = port == 11211 ? strdup(out->host) : dup_n(s, addr_len);
        if (!out->name) return fail(c, at, "out of memory");
    }
    return resolve(c, at, out->host, out->port, false, false, &out->addr);
}

static int get_bool(ctx *c, const yaml_node_t *v, const char *key, bool *out) {
    const char *s = scalar(v);
    if (s && strcmp(s, "true") == 0) {
        *out = true;
        return 0;
    }
    if (s && strcmp(s, "false") == 0) {
        *out = false;
        return 0;
    }
    return fail(c, v, "%s: expected true or false", key);
}

static int get_int(ctx *c, const yaml_node_t *v, const char *key, int64_t min, int64_t max,
                   int64_t *out) {
    if (!parse_int(scalar(v), min, max, out))
        return fail(c, v, "%s: expected an integer in %lld..%lld", key, (long long)min,
                    (long long)max);
    return 0;
}

static void pool_defaults(conf_pool *p) {
    p->listen_mode = -1;
    p->hash = CHASH_HASH_FNV1A_64;
    p->dist = CONF_DIST_KETAMA;
    p->timeout_ms = -1;
    p->backlog = 512;
    p->server_connections = 1;
    p->server_retry_timeout_ms = 30000;
    p->server_failure_limit = 2;
    p->max_bulk_length = 512ull * 1024 * 1024;
    p->max_arguments = 1024 * 1024;
    p->max_key_length = 64 * 1024;
    p->max_pipeline = 10000;
    p->max_client_buffer = 1024ull * 1024 * 1024;
}

static int set_distribution(ctx *c, const yaml_node_t *v, conf_pool *p) {
    const char *s = scalar(v);
    if (!s) return fail(c, v, "distribution: expected a name");
    if (strcmp(s, "ketama") == 0) {
        p->dist = CONF_DIST_KETAMA;
    } else if (strcmp(s, "modula") == 0) {
        p->dist = CONF_DIST_MODULA;
    } else if (strcmp(s, "random") == 0) {
        p->dist = CONF_DIST_RANDOM;
    } else if (chash_algo_from_name(s, &p->algo) == CHASH_OK) {
        p->dist = CONF_DIST_ALGO;
    } else {
        return fail(c, v, "distribution: unknown '%s' (ketama, modula, random, or an "
                          "algorithm of the library such as ring)", s);
    }
    return 0;
}

static int pool_key(ctx *c, conf_pool *p, const char *key, yaml_node_t *k, yaml_node_t *v) {
    int64_t n;
    const char *s = scalar(v);
    if (strcmp(key, "servers") == 0) {
        if (v->type != YAML_SEQUENCE_NODE) return fail(c, v, "servers: expected a list");
        size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (count == 0) return fail(c, v, "servers: the list is empty");
        p->servers = calloc(count, sizeof *p->servers);
        if (!p->servers) return fail(c, v, "out of memory");
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *item = yaml_document_get_node(c->doc, *it);
            const char *text = scalar(item);
            if (!text) return fail(c, item ? item : v, "servers: expected host:port:weight");
            p->server_count++;
            if (parse_server(c, item, text, &p->servers[p->server_count - 1]) != 0) return -1;
            for (size_t j = 0; j + 1 < p->server_count; j++)
                if (strcmp(p->servers[j].name, p->servers[p->server_count - 1].name) == 0)
                    return fail(c, item, "servers: duplicate server name '%s'",
                                p->servers[j].name);
        }
        return 0;
    }
    if (!s) return fail(c, v, "%s: expected a single value", key);
    if (strcmp(key, "listen") == 0) return parse_listen(c, v, s, p);
    if (strcmp(key, "hash") == 0) {
        if (chash_hash_from_name(s, &p->hash) != CHASH_OK || p->hash == CHASH_HASH_DEFAULT)
            return fail(c, v, "hash: unknown '%s'", s);
        return 0;
    }
    if (strcmp(key, "hash_tag") == 0) {
        if (strlen(s) != 2) return fail(c, v, "hash_tag: expected two characters, like \"{}\"");
        memcpy(p->hash_tag, s, 3);
        return 0;
    }
    if (strcmp(key, "distribution") == 0) return set_distribution(c, v, p);
    if (strcmp(key, "timeout") == 0) {
        if (get_int(c, v, key, 1, INT32_MAX, &n)) return -1;
        p->timeout_ms = n;
        return 0;
    }
    if (strcmp(key, "backlog") == 0) {
        if (get_int(c, v, key, 1, INT32_MAX, &n)) return -1;
        p->backlog = (int)n;
        return 0;
    }
    if (strcmp(key, "preconnect") == 0) return get_bool(c, v, key, &p->preconnect);
    if (strcmp(key, "redis") == 0) return get_bool(c, v, key, &p->redis);
    if (strcmp(key, "auto_eject_hosts") == 0) return get_bool(c, v, key, &p->auto_eject_hosts);
    if (strcmp(key, "tcpkeepalive") == 0) return get_bool(c, v, key, &p->tcpkeepalive);
    if (strcmp(key, "reuseport") == 0) return get_bool(c, v, key, &p->reuseport);
    if (strcmp(key, "redis_auth") == 0) {
        size_t len = strlen(s);
        if (len == 0 || len > REDIS_AUTH_MAX)
            return fail(c, v, "redis_auth: 1..%u bytes", REDIS_AUTH_MAX);
        p->redis_auth = strdup(s);
        if (!p->redis_auth) return fail(c, v, "out of memory");
        p->redis_auth_len = len;
        return 0;
    }
    if (strcmp(key, "redis_db") == 0) {
        if (get_int(c, v, key, 0, INT32_MAX, &n)) return -1;
        p->redis_db = (int)n;
        return 0;
    }
    if (strcmp(key, "server_connections") == 0) {
        if (get_int(c, v, key, 1, 1024, &n)) return -1;
        p->server_connections = (uint32_t)n;
        return 0;
    }
    if (strcmp(key, "client_connections") == 0) {
        if (get_int(c, v, key, 0, INT32_MAX, &n)) return -1;
        p->client_connections = (uint32_t)n;
        return 0;
    }
    if (strcmp(key, "server_retry_timeout") == 0) {
        if (get_int(c, v, key, 1, INT32_MAX, &n)) return -1;
        p->server_retry_timeout_ms = n;
        return 0;
    }
    if (strcmp(key, "server_failure_limit") == 0) {
        if (get_int(c, v, key, 1, INT32_MAX, &n)) return -1;
        p->server_failure_limit = (uint32_t)n;
        return 0;
    }
    if (strcmp(key, "on_failure") == 0) {
        if (s && strcmp(s, "error") == 0)
            p->on_failure = CONF_FAIL_ERROR;
        else if (s && strcmp(s, "reroute") == 0)
            p->on_failure = CONF_FAIL_REROUTE;
        else if (s && strcmp(s, "eject") == 0)
            p->on_failure = CONF_FAIL_EJECT;
        else
            return fail(c, v, "on_failure: expected error, reroute or eject");
        return 0;
    }
    if (strcmp(key, "warmup") == 0) {
        if (get_int(c, v, key, 0, INT32_MAX, &n)) return -1;
        p->warmup_ms = n;
        return 0;
    }
    if (strcmp(key, "max_bulk_length") == 0) {
        if (get_int(c, v, key, 1, INT64_C(1) << 40, &n)) return -1;
        p->max_bulk_length = (uint64_t)n;
        return 0;
    }
    if (strcmp(key, "max_arguments") == 0) {
        if (get_int(c, v, key, 2, INT32_MAX, &n)) return -1;
        p->max_arguments = (uint32_t)n;
        return 0;
    }
    if (strcmp(key, "max_key_length") == 0) {
        if (get_int(c, v, key, 1, INT32_MAX, &n)) return -1;
        p->max_key_length = (uint32_t)n;
        return 0;
    }
    if (strcmp(key, "max_pipeline") == 0) {
        if (get_int(c, v, key, 1, INT32_MAX, &n)) return -1;
        p->max_pipeline = (uint32_t)n;
        return 0;
    }
    if (strcmp(key, "max_client_buffer") == 0) {
        if (get_int(c, v, key, 1024, INT64_C(1) << 40, &n)) return -1;
        p->max_client_buffer = (uint64_t)n;
        return 0;
    }
    return fail(c, k, "pool '%s': unknown key '%s'", p->name, key);
}

static int parse_pool(ctx *c, yaml_node_t *name_node, yaml_node_t *body, conf_pool *p) {
    pool_defaults(p);
    p->line = (unsigned)name_node->start_mark.line + 1;
    p->name = strdup(scalar(name_node));
    if (!p->name) return fail(c, name_node, "out of memory");
    if (body->type != YAML_MAPPING_NODE)
        return fail(c, body, "pool '%s': expected a map of settings", p->name);
    bool has_listen = false;
    for (yaml_node_pair_t *kv = body->data.mapping.pairs.start; kv < body->data.mapping.pairs.top;
         kv++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, kv->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, kv->value);
        const char *key = scalar(k);
        if (!key || !v) return fail(c, k, "pool '%s': expected key: value", p->name);
        for (yaml_node_pair_t *prev = body->data.mapping.pairs.start; prev < kv; prev++)
            if (strcmp(scalar(yaml_document_get_node(c->doc, prev->key)), key) == 0)
                return fail(c, k, "pool '%s': duplicate key '%s'", p->name, key);
        if (pool_key(c, p, key, k, v) != 0) return -1;
        if (strcmp(key, "listen") == 0) has_listen = true;
    }
    if (!has_listen) return fail(c, name_node, "pool '%s': no listen address", p->name);
    if (p->server_count == 0) return fail(c, name_node, "pool '%s': no servers", p->name);
    if (p->redis_auth && !p->redis)
        return fail(c, name_node, "pool '%s': redis_auth needs redis: true", p->name);
    /* Warm-up moves a key with Redis's MIGRATE, atomic on the previous
     * owner; memcached has no such move, and a copy made from outside could
     * bring back a value deleted meanwhile. */
    if (p->warmup_ms > 0 && !p->redis)
        return fail(c, name_node,
                    "pool '%s': warmup needs redis: true (memcached has no atomic move)",
                    p->name);
    if (p->warmup_ms > 0 && p->dist == CONF_DIST_RANDOM)
        return fail(c, name_node, "pool '%s': warmup needs keys with owners, not "
                    "distribution: random", p->name);
    /* The ring must accept this membership; find out now, not at start. */
    for (size_t i = 0; i < p->server_count; i++)
        if (strlen(p->servers[i].name) > CHASH_NAME_MAX)
            return fail(c, name_node, "pool '%s': server name too long", p->name);
    /* reroute walks the key's ring order (chash_lookup_n), which only some
     * distributions have. */
    bool has_order = p->dist == CONF_DIST_KETAMA ||
                     (p->dist == CONF_DIST_ALGO &&
                      (p->algo == CHASH_ALGO_RING || p->algo == CHASH_ALGO_RENDEZVOUS ||
                       p->algo == CHASH_ALGO_MULTIPROBE || p->algo == CHASH_ALGO_BOUNDED));
    if (p->on_failure == CONF_FAIL_REROUTE && !has_order)
        return fail(c, name_node,
                    "pool '%s': on_failure: reroute needs a distribution with a ring order "
                    "(ketama, ring, rendezvous, multiprobe, bounded), not %s",
                    p->name, conf_dist_name(p));
    /* Rings with points per unit of weight refuse more than CHASH_POINTS_MAX
     * points in all (health.c builds them without a vnodes setting, so 160
     * per unit); jump and memento keep one bucket per unit. */
    uint64_t per_weight = 0, total_weight = 0;
    if (p->dist == CONF_DIST_RANDOM ||
        (p->dist == CONF_DIST_ALGO && (p->algo == CHASH_ALGO_RING || p->algo == CHASH_ALGO_BOUNDED)))
        per_weight = CHASH_VNODES_DEFAULT;
    if (p->dist == CONF_DIST_ALGO && (p->algo == CHASH_ALGO_JUMP || p->algo == CHASH_ALGO_MEMENTO))
        per_weight = 1;
    for (size_t i = 0; i < p->server_count; i++) total_weight += p->servers[i].weight;
    if (per_weight && total_weight > CHASH_POINTS_MAX / per_weight)
        return fail(c, name_node,
                    "pool '%s': servers weigh %llu in all; distribution %s holds at most %llu",
                    p->name, (unsigned long long)total_weight, conf_dist_name(p),
                    (unsigned long long)(CHASH_POINTS_MAX / per_weight));
    return 0;
}

static void pool_free(conf_pool *p) {
    for (size_t i = 0; i < p->server_count; i++) {
        free(p->servers[i].text);
        free(p->servers[i].name);
        free(p->servers[i].host);
    }
    free(p->servers);
    free(p->name);
    free(p->listen);
    free(p->redis_auth);
}

void conf_free(conf *cf) {
    if (!cf) return;
    for (size_t i = 0; i < cf->pool_count; i++) pool_free(&cf->pools[i]);
    free(cf->pools);
    free(cf);
}

static bool same_addr(const conf_addr *a, const conf_addr *b) {
    return a->sa_len == b->sa_len && memcmp(&a->sa, &b->sa, a->sa_len) == 0;
}

int conf_parse(const char *text, size_t len, const char *path, conf **out, char *err,
               size_t err_len) {
    return conf_parse_with(NULL, text, len, path, out, err, err_len);
}

int conf_parse_with(const conf_options *opt, const char *text, size_t len, const char *path,
                    conf **out, char *err, size_t err_len) {
    static const conf_options defaults = {0};
    ctx c = {path, err, err_len, NULL, opt ? opt : &defaults, count_lines(text, len)};
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return fail(&c, NULL, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        /* libyaml finds an unclosed quote or bracket only where the file
         * ends: say where it began too. */
        char context[160] = "";
        if (parser.error != YAML_MEMORY_ERROR && parser.context)
            snprintf(context, sizeof context, " (%s that begins on line %lu)", parser.context,
                     mark_line(&c, parser.context_mark));
        snprintf(err, err_len, "%s:%lu: %s%s", path, mark_line(&c, parser.problem_mark),
                 parser.error == YAML_MEMORY_ERROR ? "out of memory"
                 : parser.problem                  ? parser.problem
                                                   : "YAML syntax error",
                 context);
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_parser_delete(&parser);
    c.doc = &doc;
    int rc = -1;
    conf *cf = calloc(1, sizeof *cf);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!cf) {
        fail(&c, NULL, "out of memory");
        goto done;
    }
    if (!root || root->type != YAML_MAPPING_NODE) {
        fail(&c, root, "expected a map of pools");
        goto done;
    }
    size_t count = (size_t)(root->data.mapping.pairs.top - root->data.mapping.pairs.start);
    if (count == 0) {
        fail(&c, root, "no pools");
        goto done;
    }
    cf->pools = calloc(count, sizeof *cf->pools);
    if (!cf->pools) {
        fail(&c, root, "out of memory");
        goto done;
    }
    for (yaml_node_pair_t *kv = root->data.mapping.pairs.start; kv < root->data.mapping.pairs.top;
         kv++) {
        yaml_node_t *k = yaml_document_get_node(&doc, kv->key);
        yaml_node_t *v = yaml_document_get_node(&doc, kv->value);
        if (!scalar(k) || !v) {
            fail(&c, k, "expected pool-name: settings");
            goto done;
        }
        conf_pool *p = &cf->pools[cf->pool_count++];
        if (parse_pool(&c, k, v, p) != 0) goto done;
        for (size_t j = 0; j + 1 < cf->pool_count; j++) {
            if (strcmp(cf->pools[j].name, p->name) == 0) {
                fail(&c, k, "duplicate pool '%s'", p->name);
                goto done;
            }
            if (same_addr(&cf->pools[j].listen_addr, &p->listen_addr)) {
                fail(&c, k, "pool '%s' listens on the address of pool '%s'", p->name,
                     cf->pools[j].name);
                goto done;
            }
        }
    }
    rc = 0;
done:
    yaml_document_delete(&doc);
    if (rc == 0) {
        *out = cf;
    } else {
        conf_free(cf);
    }
    return rc;
}

int conf_load(const char *path, conf **out, char *err, size_t err_len) {
    return conf_load_with(NULL, path, out, err, err_len);
}

int conf_load_with(const conf_options *opt, const char *path, conf **out, char *err,
                   size_t err_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    while (text) {
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (len < cap) break;
        if (cap > ((size_t)64 << 20)) {
            free(text);
            fclose(f);
            snprintf(err, err_len, "%s: file too large", path);
            return -1;
        }
        char *t = realloc(text, cap * 2);
        if (!t) {
            free(text);
            text = NULL;
            break;
        }
        text = t;
        cap *= 2;
    }
    bool is_err = ferror(f);
    fclose(f);
    if (!text || is_err) {
        free(text);
        snprintf(err, err_len, "%s: cannot read", path);
        return -1;
    }
    int rc = conf_parse_with(opt, text, len, path, out, err, err_len);
    free(text);
    return rc;
}

void conf_pool_chash_config(const conf_pool *p, chash_config *out) {
    memset(out, 0, sizeof *out);
    switch (p->dist) {
    case CONF_DIST_KETAMA:
        out->algo = CHASH_ALGO_RING;
        out->scheme = CHASH_SCHEME_TWEMPROXY;
        break;
    case CONF_DIST_MODULA:
        out->algo = CHASH_ALGO_MODULO;
        out->scheme = CHASH_SCHEME_TWEMPROXY;
        break;
    case CONF_DIST_RANDOM:
        out->algo = CHASH_ALGO_RING;
        break;
    case CONF_DIST_ALGO:
        out->algo = p->algo;
        out->scheme = CHASH_SCHEME_NATIVE;
        break;
    }
    out->key_hash = p->hash;
    memcpy(out->hash_tag, p->hash_tag, sizeof out->hash_tag);
}

int conf_server_order(const void *a, const void *b) {
    const conf_server *x = *(const conf_server *const *)a, *y = *(const conf_server *const *)b;
    size_t lx = strlen(x->name), ly = strlen(y->name);
    if (lx != ly) return lx < ly ? -1 : 1;
    return memcmp(x->name, y->name, lx);
}

const char *conf_dist_name(const conf_pool *p) {
    switch (p->dist) {
    case CONF_DIST_KETAMA: return "ketama";
    case CONF_DIST_MODULA: return "modula";
    case CONF_DIST_RANDOM: return "random";
    case CONF_DIST_ALGO: return chash_algo_name(p->algo);
    }
    return "?";
}

int conf_pool_ring(const conf_pool *cp, chash **out) {
    chash_config cc;
    conf_pool_chash_config(cp, &cc);
    size_t n = cp->server_count;
    const conf_server **order = malloc((n ? n : 1) * sizeof *order);
    chash_node_spec *specs = malloc((n ? n : 1) * sizeof *specs);
    int rc = CHASH_ENOMEM;
    *out = NULL;
    if (order && specs) {
        for (size_t i = 0; i < n; i++) order[i] = &cp->servers[i];
        qsort(order, n, sizeof *order, conf_server_order);
        for (size_t i = 0; i < n; i++)
            specs[i] = (chash_node_spec){order[i]->name, strlen(order[i]->name), order[i]->weight};
        rc = chash_create(&cc, out);
        if (rc == CHASH_OK && n) rc = chash_add_many(*out, specs, n);
        if (rc != CHASH_OK) {
            chash_free(*out);
            *out = NULL;
        }
    }
    free(order);
    free(specs);
    return rc;
}

bool conf_server_same(const conf_server *a, const conf_server *b) {
    return strcmp(a->name, b->name) == 0 && strcmp(a->host, b->host) == 0 && a->port == b->port;
}
