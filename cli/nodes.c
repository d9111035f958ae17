/*
 * nodes.c - memberships for the CLI: a growable list of (name, weight), and
 * the nodes file, which holds `name [weight]` lines ('#' to end of line is a
 * comment, blank lines are skipped) and, for a peer preset, the peer's own
 * syntax as well:
 *
 *   twemproxy  `host:port:weight [name]` lines (and `/socket:weight [name]`),
 *              or a nutcracker YAML config (any file with a `servers:` key):
 *              the servers of its one pool, or of --pool NAME, plus the
 *              pool's hash, hash_tag and distribution. The node name is
 *              nutcracker's: the explicit name, else "host" for port 11211,
 *              else "host:port" as written, else "/socket:" for a socket;
 *   nginx      `server ADDRESS [weight=N] [other parameters];` lines, bare or
 *              inside one `upstream NAME { ... }` block (with its `hash`,
 *              `zone` and `keepalive*` lines); the node name is ADDRESS.
 *   redis-cluster  CLUSTER NODES text or a nodes.conf, and only that
 *              (slot_table.c): the primaries, named "ip:port", and their slots
 *              as bucket pins.
 *
 * Errors name the file and line and leave *out empty.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "slot_table.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifdef CHASH_HAVE_YAML
#include <yaml.h>
#endif

bool cli_nodes_push(cli_nodes *n, const char *name, size_t len, uint32_t weight) {
    if (n->count == n->capacity) {
        size_t cap = n->capacity ? n->capacity * 2 : 16;
        char **names = realloc(n->names, cap * sizeof *names);
        if (!names) return false;
        n->names = names;
        size_t *lens = realloc(n->name_lens, cap * sizeof *lens);
        if (!lens) return false;
        n->name_lens = lens;
        uint32_t *weights = realloc(n->weights, cap * sizeof *weights);
        if (!weights) return false;
        n->weights = weights;
        n->capacity = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return false;
    memcpy(copy, name, len);
    copy[len] = '\0';
    n->names[n->count] = copy;
    n->name_lens[n->count] = len;
    n->weights[n->count] = weight;
    n->count++;
    return true;
}

void cli_nodes_free(cli_nodes *n) {
    for (size_t i = 0; i < n->count; i++) free(n->names[i]);
    free(n->names);
    free(n->name_lens);
    free(n->weights);
    free(n->bucket_owner);
    memset(n, 0, sizeof *n);
}

bool cli_nodes_from_cluster(const char *cmd, const slot_table *map, cli_nodes *out) {
    memset(out, 0, sizeof *out);
    out->bucket_owner = malloc(CHASH_REDIS_SLOTS * sizeof *out->bucket_owner);
    bool ok = out->bucket_owner != NULL;
    for (size_t i = 0; ok && i < map->node_count; i++)
        ok = cli_nodes_push(out, map->names[i], strlen(map->names[i]), 1);
    if (!ok) {
        cli_nodes_free(out);
        cli_fail(cmd, "out of memory");
        return false;
    }
    /* Both say "no owner" with UINT32_MAX; spelled out, not assumed. */
    for (uint32_t s = 0; s < CHASH_REDIS_SLOTS; s++)
        out->bucket_owner[s] = map->owner[s] == SLOT_TABLE_NO_OWNER ? CLI_NO_OWNER : map->owner[s];
    out->bucket_count = CHASH_REDIS_SLOTS;
    return true;
}

/* CLUSTER NODES text into nodes and pins; errors name the file's line. */
static bool read_cluster_nodes(const char *cmd, const char *path, const char *text, size_t len,
                               cli_nodes *out) {
    slot_table map;
    slot_table_error err = {0};
    if (!slot_table_init(&map)) {
        cli_fail(cmd, "out of memory");
        return false;
    }
    bool ok = slot_table_parse_nodes(&map, text, len, &err);
    if (!ok && err.line)
        cli_usage_error(cmd, "%s:%lu: %s", path, err.line, err.why);
    else if (!ok)
        cli_usage_error(cmd, "%s: %s", path, err.why);
    if (ok) ok = cli_nodes_from_cluster(cmd, &map, out);
    slot_table_free(&map);
    return ok;
}

/* ---- reading state ------------------------------------------------------ */

typedef struct reader {
    const char *cmd;
    const char *path;
    chash_scheme scheme;
    const char *pool; /* --pool, or NULL */
    cli_file_settings *settings;
    cli_nodes *out;
} reader;

static bool fail_at(const reader *r, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail_at(const reader *r, unsigned long line, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_usage_error(r->cmd, "%s:%lu: %s", r->path, line, msg);
    return false;
}

/* Adds a node, refusing an empty, overlong or repeated name. */
static bool add_node(const reader *r, unsigned long line, const char *name, size_t len,
                     uint64_t weight) {
    if (len == 0) return fail_at(r, line, "empty node name");
    if (len > CHASH_NAME_MAX)
        return fail_at(r, line, "node name longer than %u bytes", CHASH_NAME_MAX);
    if (weight < 1 || weight > CHASH_WEIGHT_MAX)
        return fail_at(r, line, "weight must be from 1 to %u", CHASH_WEIGHT_MAX);
    for (size_t i = 0; i < r->out->count; i++)
        if (r->out->name_lens[i] == len && memcmp(r->out->names[i], name, len) == 0)
            return fail_at(r, line, "node '%.*s' is listed twice", (int)len, name);
    if (!cli_nodes_push(r->out, name, len, (uint32_t)weight)) {
        cli_fail(r->cmd, "out of memory");
        return false;
    }
    return true;
}

/* text[0..len-1] as a number no greater than max: 1 to 19 decimal digits. */
static bool parse_number(const char *text, size_t len, uint64_t max, uint64_t *out) {
    if (len == 0 || len > 19) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return false;
        v = v * 10 + (uint64_t)(text[i] - '0');
    }
    if (v > max) return false;
    *out = v;
    return true;
}

/* ---- twemproxy servers ---------------------------------------------------- */

/* True when text reads as nutcracker's "host:port:weight" or "/path:weight"
 * (what decides between its syntax and `name [weight]` on a line). */
static bool looks_twemproxy(const char *text, size_t len) {
    const char *colon = NULL;
    for (size_t i = len; i > 0 && !colon; i--)
        if (text[i - 1] == ':') colon = text + i - 1;
    uint64_t v;
    if (!colon || !parse_number(colon + 1, len - (size_t)(colon + 1 - text), UINT64_MAX, &v))
        return false;
    if (text[0] == '/') return true;
    size_t rest = (size_t)(colon - text);
    for (size_t i = rest; i > 0; i--)
        if (text[i - 1] == ':')
            return parse_number(text + i, rest - i, UINT64_MAX, &v) && i > 1;
    return false;
}

/*
 * One nutcracker server string, "host:port:weight [name]" or
 * "/path:weight [name]", split from the end as conf_add_server() does: the
 * last space starts the name, the last colon before it the weight, the one
 * before that the port. Adds the node under nutcracker's name.
 */
static bool add_twemproxy_server(const reader *r, unsigned long line, const char *s, size_t len) {
    size_t end = len;
    const char *name = NULL;
    size_t name_len = 0;
    for (size_t i = len; i > 0; i--)
        if (s[i - 1] == ' ') {
            name = s + i;
            name_len = len - i;
            end = i - 1;
            break;
        }
    while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\t')) end--;
    size_t weight_colon = end;
    for (size_t i = end; i > 0; i--)
        if (s[i - 1] == ':') {
            weight_colon = i - 1;
            break;
        }
    uint64_t weight, port = 0;
    if (weight_colon == end ||
        !parse_number(s + weight_colon + 1, end - weight_colon - 1, UINT32_MAX, &weight))
        return fail_at(r, line, "expected nutcracker's 'host:port:weight [name]', got '%.*s'",
                       (int)len, s);
    if (weight == 0) return fail_at(r, line, "zero weight in '%.*s'", (int)len, s);
    if (weight > CHASH_WEIGHT_MAX)
        return fail_at(r, line, "weight above %u in '%.*s'", CHASH_WEIGHT_MAX, (int)len, s);
    if (s[0] == '/') {
        /* nutcracker names a socket by its path and the colon after it. */
        if (!name) {
            name = s;
            name_len = weight_colon + 1;
        }
        return add_node(r, line, name, name_len, weight);
    }
    size_t port_colon = weight_colon;
    for (size_t i = weight_colon; i > 0; i--)
        if (s[i - 1] == ':') {
            port_colon = i - 1;
            break;
        }
    if (port_colon == weight_colon || port_colon == 0 ||
        !parse_number(s + port_colon + 1, weight_colon - port_colon - 1, 65535, &port) ||
        port == 0)
        return fail_at(r, line, "bad port in '%.*s' (expected 'host:port:weight [name]')",
                       (int)len, s);
    if (!name) {
        /* "host" for 11211 (libmemcached's rule), else "host:port" as written. */
        name = s;
        name_len = port == 11211 ? port_colon : weight_colon;
    }
    return add_node(r, line, name, name_len, weight);
}

#ifdef CHASH_HAVE_YAML
static const char *scalar_of(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Sets the pool's hash, hash_tag and distribution in r->settings. */
static bool yaml_settings(const reader *r, yaml_document_t *doc, yaml_node_t *pool) {
    for (yaml_node_pair_t *kv = pool->data.mapping.pairs.start; kv < pool->data.mapping.pairs.top;
         kv++) {
        yaml_node_t *k = yaml_document_get_node(doc, kv->key);
        yaml_node_t *v = yaml_document_get_node(doc, kv->value);
        const char *key = scalar_of(k), *value = scalar_of(v);
        unsigned long line = (unsigned long)v->start_mark.line + 1;
        if (!key || !r->settings) continue;
        if (strcmp(key, "hash") == 0) {
            if (!value || chash_hash_from_name(value, &r->settings->hash) != CHASH_OK)
                return fail_at(r, line, "unknown hash '%s'", value ? value : "?");
            r->settings->has_hash = true;
        } else if (strcmp(key, "hash_tag") == 0) {
            if (!value || strlen(value) != 2)
                return fail_at(r, line, "hash_tag must be two characters");
            memcpy(r->settings->hash_tag, value, 3);
            r->settings->has_hash_tag = true;
        } else if (strcmp(key, "distribution") == 0) {
            if (value && strcmp(value, "ketama") == 0) {
                r->settings->algo = CHASH_ALGO_RING;
            } else if (value && strcmp(value, "modula") == 0) {
                r->settings->algo = CHASH_ALGO_MODULO;
            } else {
                return fail_at(r, line, "distribution '%s' has no fixed placement (ketama, "
                                        "modula)", value ? value : "?");
            }
            r->settings->has_algo = true;
        }
    }
    return true;
}

/* A nutcracker config: the servers of its one pool, or of --pool. */
static bool read_yaml(const reader *r, const char *text, size_t len) {
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        cli_fail(r->cmd, "out of memory");
        return false;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        bool ok = fail_at(r, (unsigned long)parser.problem_mark.line + 1, "YAML: %s",
                          parser.problem ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        return ok;
    }
    yaml_parser_delete(&parser);
    bool ok = false;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *pool = NULL;
    size_t pools = 0;
    char names[256] = "";
    if (!root || root->type != YAML_MAPPING_NODE) {
        fail_at(r, 1, "expected a nutcracker config: a map of pools");
        goto done;
    }
    for (yaml_node_pair_t *kv = root->data.mapping.pairs.start; kv < root->data.mapping.pairs.top;
         kv++) {
        const char *key = scalar_of(yaml_document_get_node(&doc, kv->key));
        yaml_node_t *v = yaml_document_get_node(&doc, kv->value);
        if (!key || v->type != YAML_MAPPING_NODE) continue;
        pools++;
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", key);
        if (r->pool ? strcmp(key, r->pool) == 0 : pools == 1) pool = v;
    }
    if (!pool || (!r->pool && pools > 1)) {
        if (r->pool)
            fail_at(r, 1, "no pool '%s' (pools: %s)", r->pool, pools ? names : "none");
        else if (pools)
            fail_at(r, 1, "several pools (%s): choose one with --pool", names);
        else
            fail_at(r, 1, "no pool in the config");
        goto done;
    }
    if (!yaml_settings(r, &doc, pool)) goto done;
    yaml_node_t *servers = NULL;
    for (yaml_node_pair_t *kv = pool->data.mapping.pairs.start; kv < pool->data.mapping.pairs.top;
         kv++) {
        const char *key = scalar_of(yaml_document_get_node(&doc, kv->key));
        if (key && strcmp(key, "servers") == 0) servers = yaml_document_get_node(&doc, kv->value);
    }
    if (!servers || servers->type != YAML_SEQUENCE_NODE) {
        fail_at(r, (unsigned long)pool->start_mark.line + 1, "the pool has no 'servers:' list");
        goto done;
    }
    for (yaml_node_item_t *it = servers->data.sequence.items.start;
         it < servers->data.sequence.items.top; it++) {
        yaml_node_t *s = yaml_document_get_node(&doc, *it);
        unsigned long line = (unsigned long)s->start_mark.line + 1;
        const char *server = scalar_of(s);
        if (!server) {
            fail_at(r, line, "a server must be a string 'host:port:weight [name]'");
            goto done;
        }
        if (!add_twemproxy_server(r, line, server, strlen(server))) goto done;
    }
    ok = true;
done:
    yaml_document_delete(&doc);
    return ok;
}
#endif

/* ---- lines ---------------------------------------------------------------- */

/* Splits line in place at blanks into at most max tokens; returns the
 * token count (which may exceed max: only the first max are stored). */
static size_t tokenize(char *line, char **tok, size_t max) {
    size_t n = 0;
    for (char *p = line;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) return n;
        if (n < max) tok[n] = p;
        n++;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') p++;
        if (!*p) return n;
        *p++ = '\0';
    }
}

/* nginx syntax: a copy of line with blanks around ';', '{' and '}', so they
 * become tokens of their own. */
static char *space_punctuation(const char *line) {
    size_t len = strlen(line);
    char *out = malloc(3 * len + 1), *q = out;
    if (!out) return NULL;
    for (const char *p = line; *p; p++) {
        bool punct = *p == ';' || *p == '{' || *p == '}';
        if (punct) *q++ = ' ';
        *q++ = *p;
        if (punct) *q++ = ' ';
    }
    *q = '\0';
    return out;
}

static bool read_core_line(const reader *r, unsigned long line, char **tok, size_t n) {
    if (n > 2)
        return fail_at(r, line, "expected 'name [weight]', got %zu fields", n);
    uint64_t weight = 1;
    if (n == 2 && !parse_number(tok[1], strlen(tok[1]), CHASH_WEIGHT_MAX, &weight))
        return fail_at(r, line, "weight: expected an integer from 1 to %u, got '%s'",
                       CHASH_WEIGHT_MAX, tok[1]);
    return add_node(r, line, tok[0], strlen(tok[0]), weight);
}

/* nginx: one `server ADDRESS [parameters];` line. */
static bool read_nginx_server(const reader *r, unsigned long line, char **tok, size_t n) {
    if (n < 3 || strcmp(tok[n - 1], ";") != 0)
        return fail_at(r, line, "expected 'server ADDRESS [weight=N];'");
    uint64_t weight = 1;
    for (size_t i = 2; i + 1 < n; i++) {
        const char *p = tok[i];
        if (strncmp(p, "weight=", 7) == 0) {
            if (!parse_number(p + 7, strlen(p + 7), CHASH_WEIGHT_MAX, &weight) || weight == 0)
                return fail_at(r, line, "weight: expected an integer from 1 to %u, got '%s'",
                               CHASH_WEIGHT_MAX, p + 7);
        } else if (strcmp(p, "down") == 0 || strcmp(p, "backup") == 0) {
            return fail_at(r, line, "'%s' servers are not supported: nginx skips them at "
                                    "request time; leave the line out", p);
        } else if (strncmp(p, "max_fails=", 10) != 0 && strncmp(p, "fail_timeout=", 13) != 0 &&
                   strncmp(p, "max_conns=", 10) != 0 && strncmp(p, "slow_start=", 11) != 0 &&
                   strcmp(p, "resolve") != 0 && strncmp(p, "route=", 6) != 0 &&
                   strncmp(p, "service=", 8) != 0) {
            return fail_at(r, line, "unknown server parameter '%s'", p);
        }
    }
    return add_node(r, line, tok[1], strlen(tok[1]), weight);
}

/* nginx lines around the servers that change nothing here. */
static bool nginx_ignored(const char *word) {
    static const char *const words[] = {"hash",      "zone",           "keepalive",
                                        "keepalive_time", "keepalive_timeout",
                                        "keepalive_requests"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(word, words[i]) == 0) return true;
    return false;
}

/* One line's tokens: a peer's syntax where the scheme has one, else
 * `name [weight]`. depth and upstreams track an nginx upstream block. */
static bool read_tokens(const reader *r, unsigned long line, char **tok, size_t n, int *depth,
                        int *upstreams) {
    bool is_nginx = r->scheme == CHASH_SCHEME_NGINX;
    if (n == 0) return true;
    if (n > 16) return fail_at(r, line, "too many fields");
    bool ok;
    if (is_nginx && strcmp(tok[0], "server") == 0) {
        ok = read_nginx_server(r, line, tok, n);
    } else if (is_nginx && strcmp(tok[0], "upstream") == 0) {
        if (n != 3 || strcmp(tok[2], "{") != 0 || *depth != 0)
            return fail_at(r, line, "expected 'upstream NAME {' at the top level");
        if (++*upstreams > 1) return fail_at(r, line, "more than one upstream block");
        *depth = 1;
        ok = true;
    } else if (is_nginx && strcmp(tok[0], "}") == 0) {
        if (n != 1 || *depth != 1) return fail_at(r, line, "unexpected '}'");
        *depth = 0;
        ok = true;
    } else if (is_nginx && nginx_ignored(tok[0])) {
        if (strcmp(tok[n - 1], ";") != 0) return fail_at(r, line, "expected ';'");
        ok = true;
    } else if (is_nginx && *depth > 0) {
        return fail_at(r, line, "unsupported directive '%s' in the upstream block", tok[0]);
    } else if (r->scheme == CHASH_SCHEME_TWEMPROXY && n <= 2 &&
               looks_twemproxy(tok[0], strlen(tok[0]))) {
        /* Rejoin "server name" as nutcracker reads it: one string. */
        char joined[2 * CHASH_NAME_MAX + 2];
        int len = snprintf(joined, sizeof joined, "%s%s%s", tok[0], n == 2 ? " " : "",
                           n == 2 ? tok[1] : "");
        if (len < 0 || (size_t)len >= sizeof joined)
            return fail_at(r, line, "server string too long");
        ok = add_twemproxy_server(r, line, joined, (size_t)len);
    } else {
        ok = read_core_line(r, line, tok, n);
    }
    return ok;
}

static bool read_lines(const reader *r, char *text) {
    int depth = 0, upstreams = 0;
    unsigned long line = 0;
    for (char *next = text; next;) {
        char *cur = next;
        char *nl = strchr(cur, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        if (!nl && !*cur) break; /* after the last newline */
        line++;
        char *hash = strchr(cur, '#');
        if (hash) *hash = '\0';
        char *tok[16];
        bool is_nginx = r->scheme == CHASH_SCHEME_NGINX;
        char *spaced = is_nginx ? space_punctuation(cur) : NULL;
        if (is_nginx && !spaced) {
            cli_fail(r->cmd, "out of memory");
            return false;
        }
        size_t n = tokenize(is_nginx ? spaced : cur, tok, 16);
        bool ok = n <= 16 || fail_at(r, line, "too many fields");
        /* nginx: each statement (up to ';', '{' or '}') on its own. */
        for (size_t from = 0, to = 0; ok && from < n && from < 16; from = to) {
            to = from + 1;
            if (is_nginx && strcmp(tok[from], "}") != 0)
                while (to < n && to < 16 && strcmp(tok[to - 1], ";") != 0 &&
                       strcmp(tok[to - 1], "{") != 0 && strcmp(tok[to], "}") != 0)
                    to++;
            if (!is_nginx) to = n;
            ok = read_tokens(r, line, tok + from, to - from, &depth, &upstreams);
        }
        free(spaced);
        if (!ok) return false;
    }
    if (depth != 0) return fail_at(r, line, "the upstream block is not closed");
    return true;
}

/* A nutcracker YAML config has a `servers:` key; nothing else we read does. */
static bool looks_yaml(const char *text) {
    for (const char *p = text; p; p = strchr(p, '\n')) {
        if (*p == '\n') p++;
        while (*p == ' ' || *p == '\t') p++;
        if (strncmp(p, "servers", 7) == 0) {
            const char *q = p + 7;
            while (*q == ' ' || *q == '\t') q++;
            if (*q == ':') return true;
        }
    }
    return false;
}

static char *slurp(const reader *r, FILE *f, size_t *len) {
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (used + 1 >= cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) break;
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + used, 1, cap - used - 1, f);
        used += got;
        if (got == 0) {
            if (ferror(f)) {
                free(buf);
                cli_usage_error(r->cmd, "%s: read error", r->path);
                return NULL;
            }
            buf[used] = '\0';
            *len = used;
            return buf;
        }
    }
    free(buf);
    cli_fail(r->cmd, "out of memory");
    return NULL;
}

bool cli_nodes_read_file_as(const char *cmd, const char *path, chash_scheme scheme,
                            const char *pool, cli_file_settings *settings, cli_nodes *out) {
    memset(out, 0, sizeof *out);
    if (settings) memset(settings, 0, sizeof *settings);
    reader r = {cmd, path, scheme, pool, settings, out};
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        cli_usage_error(cmd, "%s: %s", path, strerror(errno));
        return false;
    }
    size_t len = 0;
    char *text = slurp(&r, f, &len);
    if (f != stdin) fclose(f);
    if (!text) return false;
    bool ok = true;
    size_t nul = strlen(text);
    if (scheme == CHASH_SCHEME_REDIS_CLUSTER) {
        ok = pool ? fail_at(&r, 1, "--pool needs a nutcracker YAML config")
                  : read_cluster_nodes(cmd, path, text, len, out);
        free(text);
        if (!ok) cli_nodes_free(out);
        return ok;
    }
    if (nul != len) {
        unsigned long line = 1;
        for (size_t i = 0; i < nul; i++) line += text[i] == '\n';
        ok = fail_at(&r, line, "NUL byte in line");
    } else if (scheme == CHASH_SCHEME_TWEMPROXY && looks_yaml(text)) {
#ifdef CHASH_HAVE_YAML
        ok = read_yaml(&r, text, len);
#else
        ok = fail_at(&r, 1, "a nutcracker YAML config, but this chash was built without libyaml");
#endif
    } else {
        if (pool) ok = fail_at(&r, 1, "--pool needs a nutcracker YAML config");
        if (ok) ok = read_lines(&r, text);
    }
    free(text);
    if (ok && out->count == 0) {
        cli_usage_error(cmd, "%s: no nodes in file", path);
        ok = false;
    }
    if (!ok) cli_nodes_free(out);
    return ok;
}

bool cli_nodes_read_file(const char *cmd, const char *path, cli_nodes *out) {
    return cli_nodes_read_file_as(cmd, path, CHASH_SCHEME_NATIVE, NULL, NULL, out);
}
