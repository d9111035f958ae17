/*
 * config.c - reads nutcracker's YAML configuration with libyaml.
 *
 * Keys and values follow nutcracker 0.5 (nc_conf.c): the same names, the same
 * defaults, the same server syntax `host:port:weight [name]` or
 * `/unix/path:weight [name]`. Unlike nutcracker, every error names its line,
 * and a few keys of ours (failure policy, warm-up, limits) sit beside the old
 * ones. Every pool key is one row of the table `keys[]` below.
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
    const char *instead = c->opt->listen_for && p->name ? c->opt->listen_for(c->opt->user, p->name)
                                                        : NULL;
    if (instead) s = instead;
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

/* s[0 .. addr_len) as "host:port" into out's host, port and address; a
 * complaint names the `what` '%s' that is not `form`. */
static int parse_host_port(ctx *c, const yaml_node_t *at, const char *s, size_t addr_len,
                           const char *what, const char *form, conf_server *out) {
    const char *port_colon = NULL;
    for (size_t i = 0; i < addr_len; i++)
        if (s[i] == ':') port_colon = s + i;
    if (!port_colon || port_colon == s)
        return fail(c, at, "%s '%s' is not %s", what, s, form);
    char ptext[16];
    size_t plen = (size_t)(s + addr_len - port_colon - 1);
    int64_t port;
    if (plen == 0 || plen >= sizeof ptext) return fail(c, at, "%s '%s': bad port", what, s);
    memcpy(ptext, port_colon + 1, plen);
    ptext[plen] = '\0';
    if (!parse_int(ptext, 1, 65535, &port)) return fail(c, at, "%s '%s': bad port", what, s);
    out->port = (int)port;
    out->host = dup_n(s, (size_t)(port_colon - s));
    if (!out->host) return fail(c, at, "out of memory");
    return resolve(c, at, out->host, out->port, false, false, &out->addr);
}

/* A list line begins out (its text and line): *len is the length of its
 * address part, *name what follows the blanks after it. */
static int line_begin(ctx *c, const yaml_node_t *at, const char *s, conf_server *out,
                      size_t *len, const char **name) {
    memset(out, 0, sizeof *out);
    out->line = (unsigned)at->start_mark.line + 1;
    out->text = strdup(s);
    if (!out->text) return fail(c, at, "out of memory");
    *len = strcspn(s, " \t");
    *name = s + *len;
    while (**name == ' ' || **name == '\t') (*name)++;
    return 0;
}

/* "host:port:weight [name]" or "/path:weight [name]". */
static int parse_server(ctx *c, const yaml_node_t *at, const char *s, conf_server *out) {
    size_t len = 0;
    const char *name = s; /* set by line_begin; initialized for the optimizer */
    if (line_begin(c, at, s, out, &len, &name) != 0) return -1;
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
    if (parse_host_port(c, at, s, addr_len, "server", "host:port:weight [name]", out) != 0)
        return -1;
    if (!out->name) {
        /* nutcracker's server name: "host" for 11211 (libmemcached's rule),
         * else "host:port" as written. */
        out->name = out->port == 11211 ? strdup(out->host) : dup_n(s, addr_len);
        if (!out->name) return fail(c, at, "out of memory");
    }
    return 0;
}

/* A sentinel's "host:port", or a replica's "host:port SHARD" (`shard`:
 * the name is required, and goes to out->name). */
static int parse_node(ctx *c, const yaml_node_t *at, const char *s, bool shard,
                      conf_server *out) {
    size_t len = 0;
    const char *name = s; /* set by line_begin; initialized for the optimizer */
    if (line_begin(c, at, s, out, &len, &name) != 0) return -1;
    const char *what = shard ? "replica" : "sentinel";
    const char *form = shard ? "host:port SHARD (a server's name)" : "host:port";
    if (shard ? !*name || strpbrk(name, " \t") : *name != '\0')
        return fail(c, at, "%s '%s' is not %s", what, s, form);
    out->name = strdup(shard ? name : s);
    if (!out->name) return fail(c, at, "out of memory");
    return parse_host_port(c, at, s, len, what, form, out);
}

/*
 * The pool keys: one table says each key's name, syntax, limits, default,
 * field, protocols, origin and one line of doc. Parsing, defaults, the
 * required-key check and the docs table (`chash-proxy --config-keys`, pasted
 * into docs/proxy.md and checked there by a test) all read it, so a key
 * cannot exist without its docs, and docs cannot show a limit the parser
 * does not apply.
 */

/* The syntax of a value; each has one parser below. */
typedef enum key_kind {
    KEY_BOOL,         /* true or false */
    KEY_INT,          /* a decimal integer in [min, max] */
    KEY_ENUM,         /* one of names[] */
    KEY_STRING,       /* min..max bytes, copied */
    KEY_LISTEN,       /* host:port, [v6]:port or /path [mode] */
    KEY_HASH,         /* a key hash name of the library */
    KEY_HASH_TAG,     /* two characters */
    KEY_DISTRIBUTION, /* nutcracker's three, or an algorithm of the library */
    KEY_SERVERS,      /* a list of server lines */
    KEY_SENTINELS,    /* a list of host:port */
    KEY_REPLICAS,     /* a list of host:port SHARD */
    KEY_BUCKET_TABLE, /* a list of "FIRST-LAST NAME[:WEIGHT]..." (after all keys) */
    KEY_BUCKET_OVERRIDES, /* a list of "KEY NAME" (after all keys) */
    KEY_USERS,        /* a list of "NAME rule..." (acl.h) */
    KEY_TLS_PROTOCOLS, /* "TLSv1.2 TLSv1.3" (tls.h) */
} key_kind;

/* The C type of the conf_pool field a key sets, so one parser serves fields
 * of every width. */
typedef enum key_field {
    FIELD_NONE, /* the key's own parser sets its fields (listen, hash_tag...) */
    FIELD_BOOL,
    FIELD_INT,
    FIELD_U32,
    FIELD_I64,
    FIELD_U64,
    FIELD_FAILURE, /* conf_failure */
    FIELD_READ,    /* conf_read */
    FIELD_HASH,    /* chash_hash */
    FIELD_BUCKET_BY, /* chash_bucket_by */
    FIELD_TLS_AUTH,  /* tls_auth */
    FIELD_STRING,  /* char *, malloc'd */
} key_field;

enum { PROTO_REDIS = 1, PROTO_MEMCACHED = 2, PROTO_BOTH = 3 };

typedef struct key_name {
    const char *name;
    int value;
} key_name;

typedef struct conf_key {
    const char *name;
    key_kind kind;
    size_t offset;     /* of the field in conf_pool */
    key_field field;
    int64_t min, max;  /* KEY_INT: the value; KEY_STRING: its length */
    int64_t def;       /* the default, stored before parsing (not FIELD_NONE) */
    const char *unit;  /* KEY_INT: "ms", "bytes" or "" */
    const key_name *names;  /* KEY_ENUM, ended by a NULL name */
    const char *missing;    /* non-NULL: required; the message when absent */
    const char *values_doc; /* the value column where the kind cannot say it */
    const char *default_doc; /* the default column where def cannot say it */
    const char *doc;
    unsigned protocols; /* PROTO_* */
    bool is_ours;       /* a key of chash-proxy, not of nutcracker */
    bool is_buckets;    /* only with distribution: buckets */
} conf_key;

/* The conf_pool field `member`, which must have the C type `type`: any
 * other type is a compile error (an array of negative size). */
#define FIELD(member, type, tag)                                                            \
    .offset = offsetof(conf_pool, member) +                                                 \
              0 * sizeof(char[_Generic(((conf_pool *)0)->member, type: 1, default: -1)]),  \
    .field = tag

#define INT_KEY(member, type, tag, lo, hi, def_value, unit_text)                            \
    .kind = KEY_INT, FIELD(member, type, tag), .min = (lo), .max = (hi), .def = (def_value), \
    .unit = (unit_text)

#define BOOL_KEY(member) .kind = KEY_BOOL, FIELD(member, bool, FIELD_BOOL)

static const key_name failure_names[] = {
    {"error", CONF_FAIL_ERROR}, {"reroute", CONF_FAIL_REROUTE}, {"eject", CONF_FAIL_EJECT},
    {NULL, 0},
};

static const key_name bucket_by_names[] = {
    {"hash", CHASH_BUCKET_BY_HASH},
    {"digits", CHASH_BUCKET_BY_DIGITS},
    {NULL, 0},
};

static const key_name tls_auth_names[] = {
    {"no", TLS_AUTH_NO}, {"yes", TLS_AUTH_YES}, {"optional", TLS_AUTH_OPTIONAL}, {NULL, 0},
};

static const key_name read_names[] = {
    {"primary", CONF_READ_PRIMARY},
    {"prefer_replica", CONF_READ_PREFER_REPLICA},
    {"replica", CONF_READ_REPLICA},
    {NULL, 0},
};

#define MIB (INT64_C(1) << 20)

/* Keys in the order the docs list them: nutcracker's, then ours. */
static const conf_key keys[] = {
    {.name = "listen", .kind = KEY_LISTEN, .field = FIELD_NONE,
     .missing = "no listen address",
     .values_doc = "`host:port`, `[v6]:port`, or `/unix/path [mode]` (mode in octal)",
     .doc = "the address clients connect to", .protocols = PROTO_BOTH},
    {.name = "hash", .kind = KEY_HASH, FIELD(hash, chash_hash, FIELD_HASH),
     .def = CHASH_HASH_FNV1A_64,
     .doc = "the key hash, as nutcracker computes it", .protocols = PROTO_BOTH},
    {.name = "hash_tag", .kind = KEY_HASH_TAG, .field = FIELD_NONE,
     .values_doc = "two characters, e.g. `\"{}\"`", .default_doc = "none",
     .doc = "only the bytes between the two characters, when present, are hashed",
     .protocols = PROTO_BOTH},
    {.name = "distribution", .kind = KEY_DISTRIBUTION, .field = FIELD_NONE,
     .default_doc = "`ketama`",
     .doc = "how keys are placed: nutcracker's, an algorithm of the library in its native "
            "scheme, or `redis-cluster` (in front of a Redis Cluster: the servers are seed "
            "nodes, keys go by the cluster's slots)",
     .protocols = PROTO_BOTH},
    {.name = "timeout", INT_KEY(timeout_ms, int64_t, FIELD_I64, 1, INT32_MAX, -1, "ms"),
     .default_doc = "wait forever",
     .doc = "how long a request waits for its reply (below)", .protocols = PROTO_BOTH},
    {.name = "backlog", INT_KEY(backlog, int, FIELD_INT, 1, INT32_MAX, 512, ""),
     .doc = "listen backlog", .protocols = PROTO_BOTH},
    {.name = "preconnect", BOOL_KEY(preconnect),
     .doc = "connect to every server at start", .protocols = PROTO_BOTH},
    {.name = "redis", BOOL_KEY(redis),
     .doc = "Redis protocol (else memcached ASCII)", .protocols = PROTO_BOTH},
    {.name = "redis_auth", .kind = KEY_STRING, FIELD(redis_auth, char *, FIELD_STRING),
     .min = 1, .max = REDIS_AUTH_MAX, .default_doc = "none",
     .doc = "the servers' password, sent to each on connect; without `users:`, also the "
            "password clients must `AUTH` with (compared in constant time)",
     .protocols = PROTO_REDIS},
    {.name = "redis_db", INT_KEY(redis_db, int, FIELD_INT, 0, INT32_MAX, 0, ""),
     .doc = "each client's database until it `SELECT`s another",
     .protocols = PROTO_REDIS},
    {.name = "server_connections",
     INT_KEY(server_connections, uint32_t, FIELD_U32, 1, 1024, 1, ""),
     .doc = "connections per server per worker", .protocols = PROTO_BOTH},
    {.name = "client_connections",
     INT_KEY(client_connections, uint32_t, FIELD_U32, 0, INT32_MAX, 0, ""),
     .default_doc = "0 (unlimited)",
     .doc = "clients per pool, 0 = unlimited; over it: an error reply, then close",
     .protocols = PROTO_BOTH},
    {.name = "auto_eject_hosts", BOOL_KEY(auto_eject_hosts),
     .doc = "take a failing server off the ring (with `on_failure: eject`)",
     .protocols = PROTO_BOTH},
    {.name = "server_failure_limit",
     INT_KEY(server_failure_limit, uint32_t, FIELD_U32, 1, INT32_MAX, 2, ""),
     .doc = "failures in a row before the pool's `on_failure` applies to a server",
     .protocols = PROTO_BOTH},
    {.name = "server_retry_timeout",
     INT_KEY(server_retry_timeout_ms, int64_t, FIELD_I64, 1, INT32_MAX, 30000, "ms"),
     .doc = "how often a server that is ejected or down is probed",
     .protocols = PROTO_BOTH},
    {.name = "tcpkeepalive", BOOL_KEY(tcpkeepalive),
     .doc = "TCP keepalive on server connections", .protocols = PROTO_BOTH},
    {.name = "reuseport", BOOL_KEY(reuseport),
     .doc = "`SO_REUSEPORT` on the listener (always on with more than one worker)",
     .protocols = PROTO_BOTH},
    {.name = "servers", .kind = KEY_SERVERS, .field = FIELD_NONE, .missing = "no servers",
     .values_doc = "a list of `host:port:weight [name]` or `/unix/path:weight [name]`; "
                   "weight 1..65535",
     .doc = "the servers; the name (else `host` for port 11211, else `host:port`) is the "
            "server's identity on the ring",
     .protocols = PROTO_BOTH},
    {.name = "on_failure", .kind = KEY_ENUM, FIELD(on_failure, conf_failure, FIELD_FAILURE),
     .names = failure_names, .def = CONF_FAIL_EJECT,
     .doc = "what happens to a failing server's keys (below)", .protocols = PROTO_BOTH,
     .is_ours = true},
    {.name = "warmup", INT_KEY(warmup_ms, int64_t, FIELD_I64, 0, INT32_MAX, 0, "ms"),
     .default_doc = "0 (off)",
     .doc = "after a reload, how long a key whose owner changed is first moved from its "
            "previous owner (below)",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "replication",
     INT_KEY(replication, uint32_t, FIELD_U32, 1, CONF_REPLICATION_MAX, 1, ""),
     .doc = "copies of each key, on the first servers of its ring order: writes go to every "
            "live copy, reads to the first and on to the next on a miss or failure (below); "
            "at most the number of servers",
     .protocols = PROTO_MEMCACHED, .is_ours = true},
    {.name = "users", .kind = KEY_USERS, .field = FIELD_NONE,
     .values_doc = "a list of `NAME rule...` strings in Redis's ACL language, e.g. "
                   "`\"alice on >secret ~app:* +@read\"`",
     .default_doc = "none (`redis_auth`)",
     .doc = "the clients' users: who may `AUTH` with which password (kept as SHA-256), and "
            "run which commands on which keys and channels; `default` is a client that has "
            "not authenticated; `redis_auth` is then the servers' password only (below)",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "refuse_admin_commands", BOOL_KEY(refuse_admin_commands),
     .doc = "refuse `FLUSHALL`, `FLUSHDB`, `SWAPDB`, `KEYS`, `CONFIG SET` and `CONFIG "
            "REWRITE` (the default serves them, as redis-server does)",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "buckets",
     INT_KEY(bucket_count, uint32_t, FIELD_U32, 1, CHASH_BUCKETS_MAX, CHASH_BUCKETS_DEFAULT, ""),
     .doc = "`distribution: buckets`: how many fixed buckets the keys fall in (below)",
     .protocols = PROTO_BOTH, .is_ours = true, .is_buckets = true},
    {.name = "bucket_by", .kind = KEY_ENUM, FIELD(bucket_by, chash_bucket_by, FIELD_BUCKET_BY),
     .names = bucket_by_names, .def = CHASH_BUCKET_BY_HASH,
     .doc = "a key's bucket: its hash (after `hash_tag`) mod `buckets`, or the number its "
            "trailing digits spell (as many as `buckets` - 1 has; a key without one goes by "
            "hash)",
     .protocols = PROTO_BOTH, .is_ours = true, .is_buckets = true},
    {.name = "bucket_table", .kind = KEY_BUCKET_TABLE, .field = FIELD_NONE,
     .values_doc = "a list of `FIRST-LAST NAME[:WEIGHT] [NAME[:WEIGHT]...]` or `BUCKET NAME`, "
                   "NAME a server's name",
     .default_doc = "none (rendezvous)",
     .doc = "buckets pinned to servers; several names split the range by weight into "
            "consecutive parts; a bucket not listed goes to its rendezvous winner (below)",
     .protocols = PROTO_BOTH, .is_ours = true, .is_buckets = true},
    {.name = "bucket_overrides", .kind = KEY_BUCKET_OVERRIDES, .field = FIELD_NONE,
     .values_doc = "a list of `KEY NAME`", .default_doc = "none",
     .doc = "single keys sent to a server whatever their bucket (with `hash_tag`, every key "
            "of that tag)",
     .protocols = PROTO_BOTH, .is_ours = true, .is_buckets = true},
    {.name = "sentinels", .kind = KEY_SENTINELS, .field = FIELD_NONE,
     .values_doc = "a list of `host:port`", .default_doc = "none",
     .doc = "the shards are Sentinel groups: each server's name is its Sentinel master name "
            "(its address only the first guess); the proxy follows each master and its "
            "replicas (below)",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "sentinel_username", .kind = KEY_STRING,
     FIELD(sentinel_username, char *, FIELD_STRING), .min = 1, .max = 256,
     .default_doc = "none", .doc = "the user the proxy authenticates as to the sentinels",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "sentinel_password", .kind = KEY_STRING,
     FIELD(sentinel_password, char *, FIELD_STRING), .min = 1, .max = 4096,
     .default_doc = "none", .doc = "the sentinels' password (their `requirepass`)",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "replicas", .kind = KEY_REPLICAS, .field = FIELD_NONE,
     .values_doc = "a list of `host:port SHARD`, SHARD a server's name", .default_doc = "none",
     .doc = "replicas of the shards, listed by hand (without Sentinel)",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "read_from", .kind = KEY_ENUM, FIELD(read_from, conf_read, FIELD_READ),
     .names = read_names, .def = CONF_READ_PRIMARY,
     .doc = "where commands that only read go: a usable replica of the key's shard, or its "
            "primary (below)",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "replica_max_lag",
     INT_KEY(replica_max_lag, uint64_t, FIELD_U64, 0, INT64_C(1) << 40, MIB, "bytes"),
     .doc = "how far behind its primary's replication offset a replica may be and still "
            "take reads",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "min_replicas_ack",
     INT_KEY(min_replicas_ack, uint32_t, FIELD_U32, 0, CONF_REPLICAS_MAX, 0, ""),
     .default_doc = "0 (Redis's asynchronous replication)",
     .doc = "a write is acknowledged once this many replicas have it (`WAIT`), else the "
            "client gets `-NOREPLICAS` (below)",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "min_replicas_ack_timeout",
     INT_KEY(min_replicas_ack_timeout_ms, int64_t, FIELD_I64, 1, INT32_MAX, 500, "ms"),
     .doc = "how long a write waits for its replicas", .protocols = PROTO_REDIS,
     .is_ours = true},
    {.name = "failover_wait",
     INT_KEY(failover_wait_ms, int64_t, FIELD_I64, 0, INT32_MAX, 0, "ms"),
     .default_doc = "0 (an error at once)",
     .doc = "how long a request for a shard whose primary is down waits for the new one "
            "(Sentinel's, or the cluster's)",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "cluster_max_shards",
     INT_KEY(cluster_max_shards, uint32_t, FIELD_U32, 1, 1024, 16, ""),
     .doc = "distribution: redis-cluster: the most shards (primaries with their replicas) the "
            "cluster may have; the pool's servers are named shard-0... in the order the proxy "
            "meets them",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "topology_check_interval",
     INT_KEY(topology_check_interval_ms, int64_t, FIELD_I64, 100, 3600000, 1000, "ms"),
     .doc = "how often the sentinels and the shards' servers are asked again (an event may "
            "be missed; replicas' lag is measured)",
     .protocols = PROTO_REDIS, .is_ours = true},
    {.name = "max_bulk_length",
     INT_KEY(max_bulk_length, uint64_t, FIELD_U64, 1, INT64_C(1) << 40, 512 * MIB, "bytes"),
     .doc = "largest bulk string / memcached value", .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "max_arguments",
     INT_KEY(max_arguments, uint32_t, FIELD_U32, 2, INT32_MAX, 1024 * 1024, ""),
     .doc = "arguments per command (or keys per memcached get)", .protocols = PROTO_BOTH,
     .is_ours = true},
    {.name = "max_key_length",
     INT_KEY(max_key_length, uint32_t, FIELD_U32, 1, INT32_MAX, 64 * 1024, "bytes"),
     .doc = "key length", .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "max_pipeline",
     INT_KEY(max_pipeline, uint32_t, FIELD_U32, 1, INT32_MAX, 10000, ""),
     .doc = "requests in flight per client; reading pauses past it", .protocols = PROTO_BOTH,
     .is_ours = true},
    {.name = "max_client_buffer",
     INT_KEY(max_client_buffer, uint64_t, FIELD_U64, 1024, INT64_C(1) << 40, 1024 * MIB,
             "bytes"),
     .doc = "bytes buffered per client, requests and unread replies: reading pauses at half "
            "of it (16 MiB at most), and a client past it is closed",
     .protocols = PROTO_BOTH, .is_ours = true},
#define FILE_KEY(member) .kind = KEY_STRING, FIELD(member, char *, FIELD_STRING), .min = 1, \
                         .max = 4096, .values_doc = "a file path"
    {.name = "tls_cert_file", FILE_KEY(tls_cert_file), .default_doc = "none (plaintext)",
     .doc = "the listener speaks TLS only, with this certificate (PEM, chain after it); "
            "re-read by a reload",
     .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "tls_key_file", FILE_KEY(tls_key_file), .default_doc = "in `tls_cert_file`",
     .doc = "the listener's private key (PEM)", .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "tls_ca_cert_file", FILE_KEY(tls_ca_cert_file), .default_doc = "none",
     .doc = "the CAs whose certificates clients may present (`tls_auth_clients`)",
     .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "tls_auth_clients", .kind = KEY_ENUM,
     FIELD(tls_auth_clients, tls_auth, FIELD_TLS_AUTH), .names = tls_auth_names,
     .def = TLS_AUTH_NO,
     .doc = "clients must present a certificate of `tls_ca_cert_file` (`yes`), may (`optional`: "
            "a wrong one is refused), or are not asked (`no`; redis-server's default is `yes`)",
     .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "tls_protocols", .kind = KEY_TLS_PROTOCOLS, .field = FIELD_NONE,
     .values_doc = "`TLSv1.2` and/or `TLSv1.3`, space separated",
     .default_doc = "`TLSv1.2 TLSv1.3`",
     .doc = "the TLS versions offered to clients (and to servers); older ones never",
     .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "tls_ciphers", .kind = KEY_STRING, FIELD(tls_ciphers, char *, FIELD_STRING),
     .min = 1, .max = 4096, .values_doc = "an OpenSSL cipher list",
     .default_doc = "ECDHE with AES-GCM or ChaCha20-Poly1305",
     .doc = "TLS 1.2 cipher suites, both sides", .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "tls_ciphersuites", .kind = KEY_STRING,
     FIELD(tls_ciphersuites, char *, FIELD_STRING), .min = 1, .max = 4096,
     .values_doc = "an OpenSSL ciphersuites list", .default_doc = "OpenSSL's",
     .doc = "TLS 1.3 cipher suites, both sides", .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "tls_handshake_timeout",
     INT_KEY(tls_handshake_timeout_ms, int64_t, FIELD_I64, 1, INT32_MAX, 10000, "ms"),
     .doc = "a client that has not finished its TLS handshake by then is closed",
     .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "tls_max_handshakes",
     INT_KEY(tls_max_handshakes, uint32_t, FIELD_U32, 1, INT32_MAX, 1000, ""),
     .doc = "TLS handshakes in progress per worker; a client past it is closed at once",
     .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "server_tls", BOOL_KEY(server_tls),
     .doc = "TLS to the servers, verifying each one's certificate (below)",
     .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "server_tls_ca_cert_file", FILE_KEY(server_tls_ca_cert_file),
     .default_doc = "the system's CAs",
     .doc = "the CAs the servers' certificates must come from", .protocols = PROTO_BOTH,
     .is_ours = true},
    {.name = "server_tls_cert_file", FILE_KEY(server_tls_cert_file), .default_doc = "none",
     .doc = "the proxy's certificate for servers that ask for one (PEM)",
     .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "server_tls_key_file", FILE_KEY(server_tls_key_file),
     .default_doc = "in `server_tls_cert_file`",
     .doc = "its private key (PEM)", .protocols = PROTO_BOTH, .is_ours = true},
    {.name = "server_tls_name", .kind = KEY_STRING,
     FIELD(server_tls_name, char *, FIELD_STRING), .min = 1, .max = 253,
     .values_doc = "a host name or IP address", .default_doc = "each server's host as written",
     .doc = "the name every server's certificate must carry (and the SNI sent)",
     .protocols = PROTO_BOTH, .is_ours = true},
#undef FILE_KEY
};

#define KEY_COUNT (sizeof keys / sizeof keys[0])

static const conf_key *key_find(const char *name) {
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

static void field_store(conf_pool *p, const conf_key *k, int64_t v) {
    void *field = (char *)p + k->offset;
    switch (k->field) {
    case FIELD_BOOL: *(bool *)field = v != 0; break;
    case FIELD_INT: *(int *)field = (int)v; break;
    case FIELD_U32: *(uint32_t *)field = (uint32_t)v; break;
    case FIELD_I64: *(int64_t *)field = v; break;
    case FIELD_U64: *(uint64_t *)field = (uint64_t)v; break;
    case FIELD_FAILURE: *(conf_failure *)field = (conf_failure)v; break;
    case FIELD_READ: *(conf_read *)field = (conf_read)v; break;
    case FIELD_HASH: *(chash_hash *)field = (chash_hash)v; break;
    case FIELD_BUCKET_BY: *(chash_bucket_by *)field = (chash_bucket_by)v; break;
    case FIELD_TLS_AUTH: *(tls_auth *)field = (tls_auth)v; break;
    case FIELD_NONE:
    case FIELD_STRING: break;
    }
}

static void pool_defaults(conf_pool *p) {
    for (size_t i = 0; i < KEY_COUNT; i++) field_store(p, &keys[i], keys[i].def);
    p->listen_mode = -1; /* not a key: part of listen */
}

static int key_bool(ctx *c, const conf_key *k, const yaml_node_t *v, conf_pool *p) {
    const char *s = scalar(v);
    if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
        return fail(c, v, "%s: expected true or false", k->name);
    field_store(p, k, s[0] == 't');
    return 0;
}

static int key_int(ctx *c, const conf_key *k, const yaml_node_t *v, conf_pool *p) {
    int64_t n;
    if (!parse_int(scalar(v), k->min, k->max, &n))
        return fail(c, v, "%s: expected an integer in %lld..%lld", k->name, (long long)k->min,
                    (long long)k->max);
    field_store(p, k, n);
    return 0;
}

static int key_enum(ctx *c, const conf_key *k, const yaml_node_t *v, conf_pool *p) {
    const char *s = scalar(v);
    for (const key_name *n = k->names; n->name; n++) {
        if (strcmp(s, n->name) == 0) {
            field_store(p, k, n->value);
            return 0;
        }
    }
    /* "expected a, b or c" */
    char list[128] = "";
    size_t used = 0;
    for (const key_name *n = k->names; n->name && used < sizeof list; n++) {
        const char *sep = n == k->names ? "" : n[1].name ? ", " : " or ";
        int w = snprintf(list + used, sizeof list - used, "%s%s", sep, n->name);
        used += w > 0 ? (size_t)w : 0;
    }
    return fail(c, v, "%s: expected %s", k->name, list);
}

static int key_string(ctx *c, const conf_key *k, const yaml_node_t *v, conf_pool *p) {
    const char *s = scalar(v);
    size_t len = strlen(s);
    if ((int64_t)len < k->min || (int64_t)len > k->max)
        return fail(c, v, "%s: %lld..%lld bytes", k->name, (long long)k->min, (long long)k->max);
    char **field = (char **)((char *)p + k->offset);
    *field = strdup(s);
    if (!*field) return fail(c, v, "out of memory");
    return 0;
}

static int key_hash(ctx *c, const conf_key *k, const yaml_node_t *v, conf_pool *p) {
    const char *s = scalar(v);
    chash_hash h;
    if (chash_hash_from_name(s, &h) != CHASH_OK || h == CHASH_HASH_DEFAULT)
        return fail(c, v, "%s: unknown '%s'", k->name, s);
    field_store(p, k, h);
    return 0;
}

static int key_hash_tag(ctx *c, const conf_key *k, const yaml_node_t *v, conf_pool *p) {
    const char *s = scalar(v);
    if (strlen(s) != 2) return fail(c, v, "%s: expected two characters, like \"{}\"", k->name);
    memcpy(p->hash_tag, s, 3);
    return 0;
}

static int key_distribution(ctx *c, const conf_key *k, const yaml_node_t *v, conf_pool *p) {
    const char *s = scalar(v);
    if (strcmp(s, "ketama") == 0) {
        p->dist = CONF_DIST_KETAMA;
    } else if (strcmp(s, "modula") == 0) {
        p->dist = CONF_DIST_MODULA;
    } else if (strcmp(s, "random") == 0) {
        p->dist = CONF_DIST_RANDOM;
    } else if (strcmp(s, "redis-cluster") == 0) {
        p->dist = CONF_DIST_CLUSTER;
    } else if (chash_algo_from_name(s, &p->algo) == CHASH_OK) {
        p->dist = CONF_DIST_ALGO;
    } else {
        return fail(c, v, "%s: unknown '%s' (ketama, modula, random, redis-cluster, or an "
                          "algorithm of the library such as ring)", k->name, s);
    }
    return 0;
}

static int key_servers(ctx *c, const conf_key *k, const yaml_node_t *v, conf_pool *p) {
    if (v->type != YAML_SEQUENCE_NODE) return fail(c, v, "%s: expected a list", k->name);
    size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (count == 0) return fail(c, v, "%s: the list is empty", k->name);
    p->servers = calloc(count, sizeof *p->servers);
    p->verdicts = calloc(count, sizeof *p->verdicts);
    if (!p->servers || !p->verdicts) return fail(c, v, "out of memory");
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, *it);
        const char *text = scalar(item);
        if (!text) return fail(c, item ? item : v, "%s: expected host:port:weight", k->name);
        conf_server *s = &p->servers[p->server_count++];
        if (parse_server(c, item, text, s) != 0) return -1;
        for (size_t j = 0; j + 1 < p->server_count; j++)
            if (strcmp(p->servers[j].name, s->name) == 0)
                return fail(c, item, "%s: duplicate server name '%s'", k->name, s->name);
    }
    return 0;
}

/* sentinels: and replicas: lists. */
static int key_nodes(ctx *c, const conf_key *k, const yaml_node_t *v, conf_pool *p) {
    bool shard = k->kind == KEY_REPLICAS;
    conf_server **list = shard ? &p->replicas : &p->sentinels;
    size_t *count = shard ? &p->replica_count : &p->sentinel_count;
    if (v->type != YAML_SEQUENCE_NODE) return fail(c, v, "%s: expected a list", k->name);
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0) return fail(c, v, "%s: the list is empty", k->name);
    *list = calloc(n, sizeof **list);
    if (!*list) return fail(c, v, "out of memory");
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, *it);
        const char *text = scalar(item);
        if (!text) return fail(c, item ? item : v, "%s: expected host:port", k->name);
        conf_server *s = &(*list)[(*count)++];
        if (parse_node(c, item, text, shard, s) != 0) return -1;
        for (size_t j = 0; j + 1 < *count; j++)
            if (strcmp((*list)[j].host, s->host) == 0 && (*list)[j].port == s->port)
                return fail(c, item, "%s: '%s' is listed twice", k->name, s->text);
    }
    return 0;
}

/* A list of strings; read once every key is (bucket_table names servers). */
static int key_string_list(ctx *c, const conf_key *k, const yaml_node_t *v) {
    if (v->type != YAML_SEQUENCE_NODE) return fail(c, v, "%s: expected a list", k->name);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, *it);
        if (!scalar(item)) return fail(c, item ? item : v, "%s: expected strings", k->name);
    }
    return 0;
}

/* users: one acl_user per rule string, names unique. */
static int key_users(ctx *c, const conf_key *k, const yaml_node_t *v, conf_pool *p) {
    if (v->type != YAML_SEQUENCE_NODE) return fail(c, v, "%s: expected a list", k->name);
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0)
        return fail(c, v, "pool '%s': %s: the list is empty (no client could AUTH)", p->name,
                    k->name);
    p->users = calloc(n, sizeof *p->users);
    if (!p->users) return fail(c, v, "out of memory");
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, *it);
        const char *text = scalar(item);
        if (!text)
            return fail(c, item ? item : v, "pool '%s': %s: expected strings \"NAME rule...\"",
                        p->name, k->name);
        char why[ACL_ERR_MAX];
        if (acl_user_parse(text, &p->users[p->user_count], why, sizeof why) != 0)
            return fail(c, item, "pool '%s': %s: %s", p->name, k->name, why);
        const acl_user *u = &p->users[p->user_count++];
        for (size_t j = 0; j + 1 < p->user_count; j++)
            if (strcmp(p->users[j].name, u->name) == 0)
                return fail(c, item, "pool '%s': %s: user '%s' is listed twice", p->name,
                            k->name, u->name);
    }
    return 0;
}

/* ---- distribution: buckets --------------------------------------------- */

static size_t server_named(const conf_pool *p, const char *name, size_t len) {
    for (size_t i = 0; i < p->server_count; i++)
        if (strlen(p->servers[i].name) == len && memcmp(p->servers[i].name, name, len) == 0)
            return i;
    return SIZE_MAX;
}

static int range_cmp(const void *a, const void *b) {
    const conf_bucket_range *x = a, *y = b;
    return (x->first > y->first) - (x->first < y->first);
}

/* A bucket number of the entry: digits only, below 2^32. */
static bool parse_bucket(const char *s, size_t len, uint32_t *out) {
    if (len == 0 || len > 10) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

#define SPLIT_MAX 64u /* names in one bucket_table entry */

/*
 * One bucket_table entry, "FIRST-LAST NAME[:WEIGHT]..." or "BUCKET NAME...",
 * appended to p->bucket_ranges. Several names split the range into
 * consecutive parts in the order written: part i ends before bucket FIRST +
 * floor(n * (w_1 + ... + w_i) / W) for n buckets of total weight W, so each
 * part is within one bucket of its exact share and the parts fill the range.
 * A NAME that is a server's name is taken whole (names may hold ':'); else
 * the part after its last ':' is the weight.
 */
static int parse_table_entry(ctx *c, const yaml_node_t *item, conf_pool *p) {
    const char *text = scalar(item);
    const char *at = text + strspn(text, " \t");
    size_t len = strcspn(at, " \t");
    const char *dash = memchr(at, '-', len);
    uint32_t first, last;
    if (!parse_bucket(at, dash ? (size_t)(dash - at) : len, &first) ||
        !parse_bucket(dash ? dash + 1 : at, dash ? len - (size_t)(dash - at) - 1 : len, &last))
        return fail(c, item, "bucket_table: '%s': expected FIRST-LAST or BUCKET, then server "
                    "names", text);
    if (first > last)
        return fail(c, item, "bucket_table: '%s': %u comes after %u", text, first, last);
    if (last >= p->bucket_count)
        return fail(c, item, "bucket_table: '%s': bucket %u is past the last, %u (buckets: %u)",
                    text, last, p->bucket_count - 1, p->bucket_count);
    size_t servers[SPLIT_MAX];
    uint64_t weights[SPLIT_MAX], weight_sum = 0;
    size_t parts = 0;
    for (at += len;;) {
        at += strspn(at, " \t");
        len = strcspn(at, " \t");
        if (len == 0) break;
        if (parts == SPLIT_MAX)
            return fail(c, item, "bucket_table: '%s': more than %u names", text, SPLIT_MAX);
        size_t server = server_named(p, at, len), name_len = len;
        uint64_t w = 1;
        const char *colon = NULL;
        for (const char *q = at; q < at + len; q++)
            if (*q == ':') colon = q;
        if (server == SIZE_MAX && colon) {
            name_len = (size_t)(colon - at);
            server = server_named(p, at, name_len);
            uint32_t parsed = 0;
            if (server != SIZE_MAX &&
                (!parse_bucket(colon + 1, len - name_len - 1, &parsed) || parsed == 0 ||
                 parsed > CHASH_WEIGHT_MAX))
                return fail(c, item, "bucket_table: '%s': the weight of '%.*s' must be 1..%u",
                            text, (int)name_len, at, CHASH_WEIGHT_MAX);
            w = parsed;
        }
        if (server == SIZE_MAX)
            return fail(c, item, "bucket_table: '%s': no server is named '%.*s'", text,
                        (int)len, at);
        for (size_t i = 0; i < parts; i++)
            if (servers[i] == server)
                return fail(c, item, "bucket_table: '%s': '%s' is named twice", text,
                            p->servers[server].name);
        servers[parts] = server;
        weights[parts++] = w;
        weight_sum += w;
        at += len;
    }
    if (parts == 0)
        return fail(c, item, "bucket_table: '%s': no server named after the buckets", text);
    uint64_t n = (uint64_t)last - first + 1, so_far = 0;
    conf_bucket_range *grown =
        realloc(p->bucket_ranges, (p->bucket_range_count + parts) * sizeof *grown);
    if (!grown) return fail(c, item, "out of memory");
    p->bucket_ranges = grown;
    for (size_t i = 0; i < parts; i++) {
        uint64_t begin = n * so_far / weight_sum;
        so_far += weights[i];
        uint64_t end = n * so_far / weight_sum;
        if (end == begin)
            return fail(c, item, "bucket_table: '%s': %llu buckets split this way leave "
                        "'%s' none", text, (unsigned long long)n, p->servers[servers[i]].name);
        p->bucket_ranges[p->bucket_range_count++] = (conf_bucket_range){
            first + (uint32_t)begin, first + (uint32_t)end - 1, servers[i],
            (unsigned)mark_line(c, item->start_mark)};
    }
    return 0;
}

static int parse_bucket_table(ctx *c, const yaml_node_t *list, conf_pool *p) {
    for (yaml_node_item_t *it = list->data.sequence.items.start;
         it < list->data.sequence.items.top; it++)
        if (parse_table_entry(c, yaml_document_get_node(c->doc, *it), p) != 0) return -1;
    qsort(p->bucket_ranges, p->bucket_range_count, sizeof *p->bucket_ranges, range_cmp);
    for (size_t i = 1; i < p->bucket_range_count; i++) {
        const conf_bucket_range *a = &p->bucket_ranges[i - 1], *b = &p->bucket_ranges[i];
        if (b->first <= a->last) {
            const conf_bucket_range *later = a->line > b->line ? a : b;
            const conf_bucket_range *earlier = later == a ? b : a;
            snprintf(c->err, c->err_len, "%s:%u: bucket_table: buckets %u-%u overlap "
                     "%u-%u of line %u", c->path, later->line, later->first, later->last,
                     earlier->first, earlier->last, earlier->line);
            return -1;
        }
    }
    return 0;
}

/* A one-node placement with the pool's hash tag: overrides that match the
 * same key collapse in it, as they would on the ring. */
static chash *override_probe(const conf_pool *p) {
    chash_config cc;
    conf_pool_chash_config(p, &cc);
    cc.bucket_count = 1;
    chash *probe = NULL;
    if (chash_create(&cc, &probe) != CHASH_OK) return NULL;
    if (chash_add(probe, "x", 1, 1) != CHASH_OK) {
        chash_free(probe);
        return NULL;
    }
    return probe;
}

/* The earlier override that matches the same key as override i. */
static size_t override_twin(const conf_pool *p, size_t i) {
    const char *key = p->bucket_overrides[i].key;
    for (size_t j = 0; j < i; j++) {
        chash *probe = override_probe(p);
        const char *other = p->bucket_overrides[j].key;
        bool is_same = probe &&
                       chash_bucket_override(probe, other, strlen(other), 0) == CHASH_OK &&
                       chash_bucket_override_remove(probe, key, strlen(key)) == CHASH_OK;
        chash_free(probe);
        if (is_same) return j;
    }
    return 0;
}

/* bucket_overrides: "KEY NAME", NAME after the last blank (a key may hold
 * blanks). */
static int parse_bucket_overrides(ctx *c, const yaml_node_t *list, conf_pool *p) {
    size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    p->bucket_overrides = calloc(n ? n : 1, sizeof *p->bucket_overrides);
    chash *probe = override_probe(p);
    if (!p->bucket_overrides || !probe) {
        chash_free(probe);
        return fail(c, list, "out of memory");
    }
    int rc = 0;
    for (yaml_node_item_t *it = list->data.sequence.items.start;
         rc == 0 && it < list->data.sequence.items.top; it++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, *it);
        const char *text = scalar(item);
        size_t len = strlen(text);
        while (len && (text[len - 1] == ' ' || text[len - 1] == '\t')) len--;
        size_t name_at = len;
        while (name_at && text[name_at - 1] != ' ' && text[name_at - 1] != '\t') name_at--;
        size_t key_len = name_at;
        while (key_len && (text[key_len - 1] == ' ' || text[key_len - 1] == '\t')) key_len--;
        if (key_len == 0 || name_at == len) {
            rc = fail(c, item, "bucket_overrides: '%s': expected KEY NAME", text);
            break;
        }
        size_t server = server_named(p, text + name_at, len - name_at);
        if (server == SIZE_MAX) {
            rc = fail(c, item, "bucket_overrides: '%s': no server is named '%.*s'", text,
                      (int)(len - name_at), text + name_at);
            break;
        }
        conf_bucket_override *o = &p->bucket_overrides[p->bucket_override_count];
        o->key = dup_n(text, key_len);
        if (!o->key) {
            rc = fail(c, item, "out of memory");
            break;
        }
        o->server = server;
        o->line = (unsigned)mark_line(c, item->start_mark);
        p->bucket_override_count++;
        size_t before = chash_bucket_override_count(probe);
        if (chash_bucket_override(probe, o->key, key_len, 0) != CHASH_OK) {
            rc = fail(c, item, "out of memory");
        } else if (chash_bucket_override_count(probe) == before) {
            const conf_bucket_override *twin =
                &p->bucket_overrides[override_twin(p, p->bucket_override_count - 1)];
            rc = fail(c, item, "bucket_overrides: '%s': the key '%s' of line %u is %s", text,
                      twin->key, twin->line,
                      strcmp(twin->key, o->key) == 0 ? "the same key"
                                                     : "the same key under the hash tag");
        }
    }
    chash_free(probe);
    return rc;
}

/* One `key: value` of a pool; k is NULL for a name that is no key. */
static int pool_key(ctx *c, conf_pool *p, const yaml_node_t *kn, const yaml_node_t *v,
                    const conf_key *k) {
    /* A list or map where one value belongs is reported before an unknown
     * name, at the value's line, as it always was. */
    if ((!k || (k->kind != KEY_SERVERS && k->kind != KEY_SENTINELS && k->kind != KEY_REPLICAS &&
                k->kind != KEY_BUCKET_TABLE && k->kind != KEY_BUCKET_OVERRIDES &&
                k->kind != KEY_USERS)) &&
        !scalar(v))
        return fail(c, v, "%s: expected a single value", scalar(kn));
    if (!k) return fail(c, kn, "pool '%s': unknown key '%s'", p->name, scalar(kn));
    switch (k->kind) {
    case KEY_BOOL: return key_bool(c, k, v, p);
    case KEY_INT: return key_int(c, k, v, p);
    case KEY_ENUM: return key_enum(c, k, v, p);
    case KEY_STRING: return key_string(c, k, v, p);
    case KEY_LISTEN: return parse_listen(c, v, scalar(v), p);
    case KEY_HASH: return key_hash(c, k, v, p);
    case KEY_HASH_TAG: return key_hash_tag(c, k, v, p);
    case KEY_DISTRIBUTION: return key_distribution(c, k, v, p);
    case KEY_SERVERS: return key_servers(c, k, v, p);
    case KEY_SENTINELS:
    case KEY_REPLICAS: return key_nodes(c, k, v, p);
    case KEY_BUCKET_TABLE:
    case KEY_BUCKET_OVERRIDES: return key_string_list(c, k, v);
    case KEY_USERS: return key_users(c, k, v, p);
    case KEY_TLS_PROTOCOLS: {
        const char *why = NULL;
        if (!tls_parse_protocols(scalar(v), &p->tls_protocols, &why))
            return fail(c, v, "%s: %s", k->name, why);
        return 0;
    }
    }
    return fail(c, kn, "%s: no parser", k->name);
}

/* The rules between keys, once a pool's keys are read. */
/* distribution: redis-cluster - the cluster places keys and keeps its
 * copies: the keys that place or copy them otherwise are refused. */
static int cluster_check(ctx *c, const yaml_node_t *name_node, const conf_pool *p) {
    const char *why = !p->redis                     ? "needs redis: true"
                      : p->sentinel_count            ? "takes no sentinels (the cluster fails over)"
                      : p->replica_count             ? "takes no replicas: (the cluster names them)"
                      : p->min_replicas_ack          ? "takes no min_replicas_ack"
                      : p->warmup_ms                 ? "takes no warmup (the cluster moves keys)"
                      : p->hash_tag[0]               ? "takes no hash_tag (the cluster's {} rule applies)"
                      : p->on_failure == CONF_FAIL_REROUTE ? "takes no on_failure: reroute (a "
                                                             "slot has one owner)"
                      : p->redis_db                  ? "takes no redis_db (a cluster has database 0)"
                                                     : NULL;
    if (why) return fail(c, name_node, "pool '%s': distribution: redis-cluster %s", p->name, why);
    for (size_t i = 0; i < p->server_count; i++)
        if (p->servers[i].host[0] == '/')
            return fail(c, name_node, "pool '%s': redis-cluster seed '%s': a cluster node has a "
                        "TCP address", p->name, p->servers[i].text);
    return 0;
}

/* The seeds become p->seeds; p->servers the shards' cluster_max_shards
 * entries, named shard-K, with no address until the topology gives one. */
static int cluster_shards(ctx *c, const yaml_node_t *name_node, conf_pool *p) {
    p->seeds = p->servers;
    p->seed_count = p->server_count;
    free((void *)p->verdicts);
    p->server_count = 0;
    p->servers = calloc(p->cluster_max_shards, sizeof *p->servers);
    p->verdicts = calloc(p->cluster_max_shards, sizeof *p->verdicts);
    if (!p->servers || !p->verdicts) return fail(c, name_node, "out of memory");
    for (uint32_t k = 0; k < p->cluster_max_shards; k++, p->server_count++) {
        conf_server *s = &p->servers[k];
        char name[32];
        snprintf(name, sizeof name, "shard-%u", (unsigned)k);
        s->name = strdup(name);
        s->text = strdup(name);
        s->host = strdup("");
        s->weight = 1;
        s->has_name = true;
        s->line = p->line;
        if (!s->name || !s->text || !s->host) return fail(c, name_node, "out of memory");
    }
    return 0;
}

static int pool_check(ctx *c, const yaml_node_t *name_node, const conf_pool *p) {
    if (conf_pool_is_cluster(p)) return cluster_check(c, name_node, p);
    if (p->redis_auth && !p->redis)
        return fail(c, name_node, "pool '%s': redis_auth needs redis: true", p->name);
    if (p->user_count && !p->redis)
        return fail(c, name_node, "pool '%s': users needs redis: true", p->name);
    bool has_keys_of_redis = conf_pool_has_topology(p) || p->read_from != CONF_READ_PRIMARY ||
                             p->min_replicas_ack > 0 || p->sentinel_username ||
                             p->sentinel_password;
    if (has_keys_of_redis && !p->redis)
        return fail(c, name_node, "pool '%s': sentinels, replicas, read_from, "
                    "min_replicas_ack and sentinel_* need redis: true", p->name);
    if ((p->sentinel_username || p->sentinel_password) && !p->sentinel_count)
        return fail(c, name_node, "pool '%s': sentinel_username/password without sentinels",
                    p->name);
    if (p->read_from != CONF_READ_PRIMARY && !conf_pool_has_topology(p))
        return fail(c, name_node, "pool '%s': read_from: %s needs replicas (sentinels: or "
                    "replicas:)", p->name, read_names[p->read_from].name);
    /* A Sentinel group is known by its master name: the ring's identity. */
    for (size_t i = 0; p->sentinel_count && i < p->server_count; i++)
        if (!p->servers[i].has_name || p->servers[i].host[0] == '/')
            return fail(c, name_node, "pool '%s': with sentinels, server '%s' needs "
                        "host:port:weight NAME, NAME its Sentinel master name", p->name,
                        p->servers[i].text);
    for (size_t i = 0; i < p->replica_count; i++) {
        size_t n = 0, j = 0;
        for (; j < p->server_count; j++)
            if (strcmp(p->servers[j].name, p->replicas[i].name) == 0) break;
        for (size_t k = 0; k < p->replica_count; k++)
            n += strcmp(p->replicas[k].name, p->replicas[i].name) == 0;
        if (j == p->server_count)
            return fail(c, name_node, "pool '%s': replica '%s': no server is named '%s'",
                        p->name, p->replicas[i].text, p->replicas[i].name);
        if (n > CONF_REPLICAS_MAX)
            return fail(c, name_node, "pool '%s': shard '%s' has more than %u replicas",
                        p->name, p->replicas[i].name, CONF_REPLICAS_MAX);
    }
    /* WAIT holds the write's reply: past the request timeout the proxy
     * would fail a write that is merely waiting for its copies. */
    if (p->min_replicas_ack && p->timeout_ms > 0 &&
        p->min_replicas_ack_timeout_ms >= p->timeout_ms)
        return fail(c, name_node, "pool '%s': min_replicas_ack_timeout (%lld ms) must be "
                    "shorter than timeout (%lld ms)", p->name,
                    (long long)p->min_replicas_ack_timeout_ms, (long long)p->timeout_ms);
    /* Warm-up reads the previous owners at their configured addresses,
     * which Sentinel may have moved. */
    if (p->warmup_ms > 0 && p->sentinel_count)
        return fail(c, name_node, "pool '%s': warmup and sentinels do not go together",
                    p->name);
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
                       p->algo == CHASH_ALGO_MULTIPROBE || p->algo == CHASH_ALGO_BOUNDED ||
                       p->algo == CHASH_ALGO_BUCKETS));
    /* Redis keeps its copies itself (replicas, Sentinel); memcached's are
     * the proxy's to write. */
    if (p->replication > 1 && p->redis)
        return fail(c, name_node, "pool '%s': replication is for memcached pools (a Redis "
                    "server keeps its own replicas)", p->name);
    if (p->replication > p->server_count)
        return fail(c, name_node, "pool '%s': replication: %u copies need at least %u servers, "
                    "the pool has %zu", p->name, (unsigned)p->replication,
                    (unsigned)p->replication, p->server_count);
    if (p->replication > 1 && !has_order)
        return fail(c, name_node,
                    "pool '%s': replication needs a distribution with a ring order "
                    "(ketama, ring, rendezvous, multiprobe, bounded, buckets), not %s",
                    p->name, conf_dist_name(p));
    if (p->on_failure == CONF_FAIL_REROUTE && !has_order)
        return fail(c, name_node,
                    "pool '%s': on_failure: reroute needs a distribution with a ring order "
                    "(ketama, ring, rendezvous, multiprobe, bounded, buckets), not %s",
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

/* The TLS keys' rules, then the contexts: built here so that `-t` and a
 * reload find a bad certificate before any client does. */
static int tls_check(ctx *c, const yaml_node_t *name_node, conf_pool *p) {
    if (!p->tls_cert_file &&
        (p->tls_key_file || p->tls_ca_cert_file || p->tls_auth_clients != TLS_AUTH_NO))
        return fail(c, name_node, "pool '%s': tls_key_file, tls_ca_cert_file and "
                    "tls_auth_clients need tls_cert_file", p->name);
    if (!p->server_tls && (p->server_tls_ca_cert_file || p->server_tls_cert_file ||
                           p->server_tls_key_file || p->server_tls_name))
        return fail(c, name_node, "pool '%s': server_tls_* keys need server_tls: true", p->name);
    if (p->server_tls && p->server_tls_key_file && !p->server_tls_cert_file)
        return fail(c, name_node, "pool '%s': server_tls_key_file needs server_tls_cert_file",
                    p->name);
    for (size_t i = 0; p->server_tls && !p->server_tls_name && i < p->server_count; i++)
        if (p->servers[i].host[0] == '/')
            return fail(c, name_node, "pool '%s': server_tls to a unix socket needs "
                        "server_tls_name (the name its certificate carries)", p->name);
    if (c->opt->skip_files) return 0;
    char why[256];
    if (p->tls_cert_file) {
        tls_options o = {.cert_file = p->tls_cert_file, .key_file = p->tls_key_file,
                         .ca_file = p->tls_ca_cert_file, .auth = p->tls_auth_clients,
                         .protocols = p->tls_protocols, .ciphers = p->tls_ciphers,
                         .ciphersuites = p->tls_ciphersuites};
        if (tls_ctx_new(&o, true, &p->tls, why, sizeof why) != 0)
            return fail(c, name_node, "pool '%s': tls: %s", p->name, why);
    }
    if (p->server_tls) {
        tls_options o = {.cert_file = p->server_tls_cert_file,
                         .key_file = p->server_tls_key_file,
                         .ca_file = p->server_tls_ca_cert_file, .protocols = p->tls_protocols,
                         .ciphers = p->tls_ciphers, .ciphersuites = p->tls_ciphersuites};
        if (tls_ctx_new(&o, false, &p->server_tls_ctx, why, sizeof why) != 0)
            return fail(c, name_node, "pool '%s': server_tls: %s", p->name, why);
    }
    return 0;
}

static int parse_pool(ctx *c, yaml_node_t *name_node, yaml_node_t *body, conf_pool *p) {
    pool_defaults(p);
    p->line = (unsigned)name_node->start_mark.line + 1;
    p->name = strdup(scalar(name_node));
    if (!p->name) return fail(c, name_node, "out of memory");
    if (body->type != YAML_MAPPING_NODE)
        return fail(c, body, "pool '%s': expected a map of settings", p->name);
    const yaml_node_t *set_at[KEY_COUNT] = {NULL}; /* the key's value, once set */
    for (yaml_node_pair_t *kv = body->data.mapping.pairs.start; kv < body->data.mapping.pairs.top;
         kv++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, kv->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, kv->value);
        const char *name = scalar(k);
        if (!name || !v) return fail(c, k, "pool '%s': expected key: value", p->name);
        for (yaml_node_pair_t *prev = body->data.mapping.pairs.start; prev < kv; prev++)
            if (strcmp(scalar(yaml_document_get_node(c->doc, prev->key)), name) == 0)
                return fail(c, k, "pool '%s': duplicate key '%s'", p->name, name);
        const conf_key *key = key_find(name);
        if (pool_key(c, p, k, v, key) != 0) return -1;
        set_at[key - keys] = v;
    }
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (keys[i].missing && !set_at[i])
            return fail(c, name_node, "pool '%s': %s", p->name, keys[i].missing);
    bool is_buckets = p->dist == CONF_DIST_ALGO && p->algo == CHASH_ALGO_BUCKETS;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (!set_at[i] || !keys[i].is_buckets) continue;
        if (!is_buckets)
            return fail(c, set_at[i], "pool '%s': %s needs distribution: buckets", p->name,
                        keys[i].name);
        if (keys[i].kind == KEY_BUCKET_TABLE && parse_bucket_table(c, set_at[i], p) != 0)
            return -1;
        if (keys[i].kind == KEY_BUCKET_OVERRIDES && parse_bucket_overrides(c, set_at[i], p) != 0)
            return -1;
    }
    if (p->redis_auth) p->redis_auth_len = strlen(p->redis_auth);
    if (pool_check(c, name_node, p) != 0 || tls_check(c, name_node, p) != 0) return -1;
    return conf_pool_is_cluster(p) ? cluster_shards(c, name_node, p) : 0;
}

static void servers_free(conf_server *list, size_t count) {
    for (size_t i = 0; i < count; i++) {
        free(list[i].text);
        free(list[i].name);
        free(list[i].host);
    }
    free(list);
}

static void pool_free(conf_pool *p) {
    servers_free(p->servers, p->server_count);
    servers_free(p->seeds, p->seed_count);
    free((void *)p->verdicts);
    servers_free(p->sentinels, p->sentinel_count);
    servers_free(p->replicas, p->replica_count);
    free(p->sentinel_username);
    free(p->sentinel_password);
    free(p->name);
    free(p->listen);
    free(p->redis_auth);
    for (size_t i = 0; i < p->user_count; i++) acl_user_free(&p->users[i]);
    free(p->users);
    free(p->bucket_ranges);
    for (size_t i = 0; i < p->bucket_override_count; i++) free(p->bucket_overrides[i].key);
    free(p->bucket_overrides);
    char **tls_texts[] = {&p->tls_cert_file,           &p->tls_key_file,
                          &p->tls_ca_cert_file,        &p->tls_ciphers,
                          &p->tls_ciphersuites,        &p->server_tls_ca_cert_file,
                          &p->server_tls_cert_file,    &p->server_tls_key_file,
                          &p->server_tls_name};
    for (size_t i = 0; i < sizeof tls_texts / sizeof tls_texts[0]; i++) free(*tls_texts[i]);
    tls_ctx_free(p->tls);
    tls_ctx_free(p->server_tls_ctx);
}

size_t conf_pool_files(const conf_pool *p, const char *out[CONF_POOL_FILES_MAX]) {
    const char *all[CONF_POOL_FILES_MAX] = {p->tls_cert_file,           p->tls_key_file,
                                            p->tls_ca_cert_file,        p->server_tls_ca_cert_file,
                                            p->server_tls_cert_file,    p->server_tls_key_file};
    size_t n = 0;
    for (size_t i = 0; i < CONF_POOL_FILES_MAX; i++)
        if (all[i]) out[n++] = all[i];
    return n;
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

/* libyaml's document of the text, or -1 with its complaint as
 * "PATH:LINE: problem" in c->err. */
static int load_document(ctx *c, const char *text, size_t len, yaml_document_t *doc) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return fail(c, NULL, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, doc)) {
        /* libyaml finds an unclosed quote or bracket only where the file
         * ends: say where it began too. */
        char context[160] = "";
        if (parser.error != YAML_MEMORY_ERROR && parser.context)
            snprintf(context, sizeof context, " (%s that begins on line %lu)", parser.context,
                     mark_line(c, parser.context_mark));
        snprintf(c->err, c->err_len, "%s:%lu: %s%s", c->path, mark_line(c, parser.problem_mark),
                 parser.error == YAML_MEMORY_ERROR ? "out of memory"
                 : parser.problem                  ? parser.problem
                                                   : "YAML syntax error",
                 context);
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_parser_delete(&parser);
    return 0;
}

/* The root map's pools into cf, each checked against those before it. */
static int parse_pools(ctx *c, yaml_node_t *root, conf *cf) {
    if (!root || root->type != YAML_MAPPING_NODE) return fail(c, root, "expected a map of pools");
    size_t count = (size_t)(root->data.mapping.pairs.top - root->data.mapping.pairs.start);
    if (count == 0) return fail(c, root, "no pools");
    cf->pools = calloc(count, sizeof *cf->pools);
    if (!cf->pools) return fail(c, root, "out of memory");
    for (yaml_node_pair_t *kv = root->data.mapping.pairs.start; kv < root->data.mapping.pairs.top;
         kv++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, kv->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, kv->value);
        if (!scalar(k) || !v) return fail(c, k, "expected pool-name: settings");
        conf_pool *p = &cf->pools[cf->pool_count++];
        if (parse_pool(c, k, v, p) != 0) return -1;
        for (size_t j = 0; j + 1 < cf->pool_count; j++) {
            if (strcmp(cf->pools[j].name, p->name) == 0)
                return fail(c, k, "duplicate pool '%s'", p->name);
            if (same_addr(&cf->pools[j].listen_addr, &p->listen_addr))
                return fail(c, k, "pool '%s' listens on the address of pool '%s'", p->name,
                            cf->pools[j].name);
        }
    }
    return 0;
}

int conf_parse_with(const conf_options *opt, const char *text, size_t len, const char *path,
                    conf **out, char *err, size_t err_len) {
    static const conf_options defaults = {0};
    ctx c = {path, err, err_len, NULL, opt ? opt : &defaults, count_lines(text, len)};
    yaml_document_t doc;
    if (load_document(&c, text, len, &doc) != 0) return -1;
    c.doc = &doc;
    conf *cf = calloc(1, sizeof *cf);
    int rc = cf ? parse_pools(&c, yaml_document_get_root_node(&doc), cf)
                : fail(&c, NULL, "out of memory");
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
    *out = (chash_config)CHASH_CONFIG_INIT;
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
    case CONF_DIST_CLUSTER:
        /* Never used to place a key (the slot map does: topology.c); a
         * ring over the shard entries keeps every ring builder working. */
        out->algo = CHASH_ALGO_MODULO;
        break;
    }
    out->key_hash = p->hash;
    memcpy(out->hash_tag, p->hash_tag, sizeof out->hash_tag);
    out->bucket_count = p->bucket_count;
    out->bucket_by = p->bucket_by;
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
    case CONF_DIST_CLUSTER: return "redis-cluster";
    }
    return "?";
}

bool conf_server_same(const conf_server *a, const conf_server *b) {
    return strcmp(a->name, b->name) == 0 && strcmp(a->host, b->host) == 0 && a->port == b->port;
}

/* v as the docs show it: bytes in the largest binary unit that divides
 * them, with that unit (returns true); anything else bare (false). */
static bool amount_text(char *buf, size_t len, int64_t v, const char *unit) {
    static const char *const binary[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; strcmp(unit, "bytes") == 0 && i < 4; i++) {
        int64_t size = INT64_C(1) << (10 * (4 - i));
        if (v >= size && v % size == 0) {
            snprintf(buf, len, "%lld %s", (long long)(v / size), binary[i]);
            return true;
        }
    }
    snprintf(buf, len, "%lld", (long long)v);
    return false;
}

/* "1 to 1024", "1 to 2147483647 ms", "1 KiB to 1 TiB", "1 byte to 1 TiB" */
static void put_range(FILE *out, const conf_key *k) {
    char lo[32], hi[32];
    bool is_lo_unit = amount_text(lo, sizeof lo, k->min, k->unit);
    bool is_hi_unit = amount_text(hi, sizeof hi, k->max, k->unit);
    const char *lo_unit = k->min == 1 && strcmp(k->unit, "bytes") == 0 ? "byte" : k->unit;
    if (is_lo_unit || is_hi_unit)
        fprintf(out, "%s%s%s to %s%s%s", lo, is_lo_unit ? "" : " ", is_lo_unit ? "" : lo_unit, hi,
                is_hi_unit ? "" : " ", is_hi_unit ? "" : k->unit);
    else
        fprintf(out, "%s to %s%s%s", lo, hi, *k->unit ? " " : "", k->unit);
}

static void put_amount(FILE *out, int64_t v, const char *unit) {
    char text[32];
    bool has_unit = amount_text(text, sizeof text, v, unit);
    fprintf(out, "%s%s%s", text, has_unit || !*unit ? "" : " ", has_unit ? "" : unit);
}

static void put_values(FILE *out, const conf_key *k) {
    switch (k->kind) {
    case KEY_BOOL: fputs("`true` or `false`", out); return;
    case KEY_INT: put_range(out, k); return;
    case KEY_ENUM:
        for (const key_name *n = k->names; n->name; n++)
            fprintf(out, "%s`%s`", n == k->names ? "" : n[1].name ? ", " : " or ", n->name);
        return;
    case KEY_STRING:
        if (k->values_doc)
            fprintf(out, "%s, %lld to %lld bytes", k->values_doc, (long long)k->min,
                    (long long)k->max);
        else
            fprintf(out, "%lld to %lld bytes", (long long)k->min, (long long)k->max);
        return;
    case KEY_HASH:
        /* The library's names, past "default" (the scheme's own hash); the
         * first value past the last has none. */
        for (int h = CHASH_HASH_DEFAULT + 1; chash_hash_name((chash_hash)h); h++)
            fprintf(out, "%s`%s`", h == CHASH_HASH_DEFAULT + 1 ? "" : ", ",
                    chash_hash_name((chash_hash)h));
        return;
    case KEY_DISTRIBUTION:
        fputs("`ketama`, `modula`, `random`; ours, the library's:", out);
        for (int a = 0; chash_algo_name((chash_algo)a); a++)
            fprintf(out, "%s`%s`", a == 0 ? " " : ", ", chash_algo_name((chash_algo)a));
        return;
    case KEY_LISTEN:
    case KEY_HASH_TAG:
    case KEY_SERVERS:
    case KEY_SENTINELS:
    case KEY_REPLICAS:
    case KEY_BUCKET_TABLE:
    case KEY_BUCKET_OVERRIDES:
    case KEY_USERS:
    case KEY_TLS_PROTOCOLS: fputs(k->values_doc, out); return;
    }
}

static void put_default(FILE *out, const conf_key *k) {
    if (k->default_doc) {
        fputs(k->default_doc, out);
    } else if (k->missing) {
        fputs("required", out);
    } else if (k->kind == KEY_BOOL) {
        fputs(k->def ? "`true`" : "`false`", out);
    } else if (k->kind == KEY_HASH) {
        fprintf(out, "`%s`", chash_hash_name((chash_hash)k->def));
    } else if (k->kind == KEY_ENUM) {
        for (const key_name *n = k->names; n->name; n++)
            if (n->value == k->def) fprintf(out, "`%s`", n->name);
    } else {
        put_amount(out, k->def, k->unit ? k->unit : "");
    }
}

void conf_keys_markdown(FILE *out) {
    static const char *const protocols[] = {"-", "redis", "memcached", "both"};
    fputs("| key | value | default | protocol | from | meaning |\n"
          "|---|---|---|---|---|---|\n", out);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const conf_key *k = &keys[i];
        fprintf(out, "| `%s` | ", k->name);
        put_values(out, k);
        fputs(" | ", out);
        put_default(out, k);
        fprintf(out, " | %s | %s | %s |\n", protocols[k->protocols & 3],
                k->is_ours ? "ours" : "nutcracker", k->doc);
    }
}

/* bucket_table and bucket_overrides onto a ring of the live servers: what
 * names a server that is not on it is left out, as the library drops the
 * pins of a removed node (its buckets go to their rendezvous winners). */
static int apply_buckets(const conf_pool *cp, chash *ring) {
    for (size_t i = 0; i < cp->bucket_range_count; i++) {
        const conf_bucket_range *r = &cp->bucket_ranges[i];
        const char *name = cp->servers[r->server].name;
        size_t node;
        if (chash_find(ring, name, strlen(name), &node) != CHASH_OK) continue;
        int rc = chash_bucket_assign(ring, r->first, r->last, node);
        if (rc != CHASH_OK) return rc;
    }
    for (size_t i = 0; i < cp->bucket_override_count; i++) {
        const conf_bucket_override *o = &cp->bucket_overrides[i];
        const char *name = cp->servers[o->server].name;
        size_t node;
        if (chash_find(ring, name, strlen(name), &node) != CHASH_OK) continue;
        int rc = chash_bucket_override(ring, o->key, strlen(o->key), node);
        if (rc != CHASH_OK) return rc;
    }
    return CHASH_OK;
}

int conf_pool_ring_live(const conf_pool *cp, const bool *is_live, chash **out,
                        uint32_t *node_server) {
    chash_config cc;
    conf_pool_chash_config(cp, &cc);
    size_t n = cp->server_count;
    const conf_server **order = malloc((n ? n : 1) * sizeof *order);
    chash_node_spec *specs = malloc((n ? n : 1) * sizeof *specs);
    chash *ring = NULL;
    int rc = CHASH_ENOMEM;
    if (order && specs) {
        size_t live = 0;
        for (size_t i = 0; i < n; i++)
            if (!is_live || is_live[i]) order[live++] = &cp->servers[i];
        qsort(order, live, sizeof *order, conf_server_order);
        for (size_t i = 0; i < live; i++)
            specs[i] = (chash_node_spec){order[i]->name, strlen(order[i]->name), order[i]->weight};
        rc = chash_create(&cc, &ring);
        if (rc == CHASH_OK && live) rc = chash_add_many(ring, specs, live);
        if (rc == CHASH_OK && live && cc.algo == CHASH_ALGO_BUCKETS) rc = apply_buckets(cp, ring);
        if (rc == CHASH_OK && node_server)
            for (size_t i = 0; i < live; i++) node_server[i] = (uint32_t)(order[i] - cp->servers);
    }
    if (rc != CHASH_OK) {
        chash_free(ring);
        ring = NULL;
    }
    *out = ring;
    free(order);
    free(specs);
    return rc;
}

int conf_pool_ring(const conf_pool *cp, chash **out) {
    return conf_pool_ring_live(cp, NULL, out, NULL);
}

/* ---- bucket plans ------------------------------------------------------ */

typedef struct plan_walk {
    conf_bucket_move_fn fn;
    void *user;
} plan_walk;

static int plan_range(void *user, const chash_bucket_range *r) {
    const plan_walk *w = user;
    conf_bucket_move m = {r->first,        r->last,  NULL, r->from_name, r->to_name,
                          r->from_name_len, r->to_name_len};
    return w->fn(w->user, &m);
}

/* The key's server in both rings; a move is reported. */
static int plan_key(const chash *a, const chash *b, const char *key, const plan_walk *w) {
    size_t na, nb, la, lb;
    const void *sa, *sb;
    int rc = chash_lookup(a, key, strlen(key), &na);
    if (rc == CHASH_OK) rc = chash_lookup(b, key, strlen(key), &nb);
    if (rc == CHASH_OK) rc = chash_node(a, na, &sa, &la, NULL);
    if (rc == CHASH_OK) rc = chash_node(b, nb, &sb, &lb, NULL);
    if (rc != CHASH_OK) return rc;
    if (la == lb && memcmp(sa, sb, la) == 0) return 0;
    conf_bucket_move m = {0, 0, key, sa, sb, la, lb};
    return w->fn(w->user, &m);
}

int conf_pool_bucket_plan(const conf_pool *old, const conf_pool *now, conf_bucket_move_fn fn,
                          void *user) {
    chash *a = NULL, *b = NULL;
    plan_walk w = {fn, user};
    int rc = conf_pool_ring(old, &a);
    if (rc == CHASH_OK) rc = conf_pool_ring(now, &b);
    if (rc == CHASH_OK) rc = chash_bucket_diff(a, b, plan_range, &w);
    for (size_t i = 0; rc == CHASH_OK && i < old->bucket_override_count; i++)
        rc = plan_key(a, b, old->bucket_overrides[i].key, &w);
    for (size_t i = 0; rc == CHASH_OK && i < now->bucket_override_count; i++) {
        const char *key = now->bucket_overrides[i].key;
        bool is_old = false; /* listed already */
        for (size_t j = 0; j < old->bucket_override_count && !is_old; j++)
            is_old = strcmp(old->bucket_overrides[j].key, key) == 0;
        if (!is_old) rc = plan_key(a, b, key, &w);
    }
    chash_free(a);
    chash_free(b);
    return rc;
}

int conf_bucket_move_text(const conf_bucket_move *m, char *buf, size_t len) {
    if (m->key)
        return snprintf(buf, len, "key %s: %.*s -> %.*s", m->key, (int)m->from_len, m->from,
                        (int)m->to_len, m->to);
    if (m->first == m->last)
        return snprintf(buf, len, "bucket %u: %.*s -> %.*s", m->first, (int)m->from_len,
                        m->from, (int)m->to_len, m->to);
    return snprintf(buf, len, "buckets %u-%u: %.*s -> %.*s", m->first, m->last,
                    (int)m->from_len, m->from, (int)m->to_len, m->to);
}

bool conf_pool_buckets_same(const conf_pool *a, const conf_pool *b) {
    if (a->bucket_count != b->bucket_count || a->bucket_by != b->bucket_by ||
        a->bucket_range_count != b->bucket_range_count ||
        a->bucket_override_count != b->bucket_override_count)
        return false;
    for (size_t i = 0; i < a->bucket_range_count; i++) {
        const conf_bucket_range *x = &a->bucket_ranges[i], *y = &b->bucket_ranges[i];
        if (x->first != y->first || x->last != y->last ||
            strcmp(a->servers[x->server].name, b->servers[y->server].name) != 0)
            return false;
    }
    for (size_t i = 0; i < a->bucket_override_count; i++) {
        const conf_bucket_override *x = &a->bucket_overrides[i], *y = &b->bucket_overrides[i];
        if (strcmp(x->key, y->key) != 0 ||
            strcmp(a->servers[x->server].name, b->servers[y->server].name) != 0)
            return false;
    }
    return true;
}
