/*
 * options.c - integer flags and the placement options that every command
 * shares.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool cli_parse_u64(const char *cmd, const char *flag, const char *text, uint64_t min,
                   uint64_t max, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = (text[0] >= '0' && text[0] <= '9') ? strtoull(text, &end, 10) : 0;
    if (!end || *end != '\0' || errno != 0 || v < min || v > max) {
        cli_usage_error(cmd, "%s: expected an integer from %llu to %llu, got '%s'", flag,
                        (unsigned long long)min, (unsigned long long)max, text);
        return false;
    }
    *out = v;
    return true;
}

int cli_bad_option(const char *cmd, int argc, char **argv) {
    const char *arg = (optind > 0 && optind <= argc) ? argv[optind - 1] : "?";
    if (optopt && optopt < 256)
        return cli_usage_error(cmd, "bad option '-%c' or missing value (see 'chash %s --help')",
                               optopt, cmd);
    return cli_usage_error(cmd, "bad option '%s' or missing value (see 'chash %s --help')", arg,
                           cmd);
}

const char *cli_algo_list(void) {
    static char list[256];
    if (list[0]) return list;
    size_t at = 0;
    for (int a = 0; chash_algo_name((chash_algo)a) && at < sizeof list; a++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", a ? ", " : "",
                               chash_algo_name((chash_algo)a));
    return list;
}

bool cli_parse_algo_list(const char *arg, chash_algo *algos, size_t *count) {
    *count = 0;
    if (strcmp(arg, "all") == 0) {
        for (int a = 0; chash_algo_name((chash_algo)a); a++) {
            if (*count == CLI_ALGO_MAX) return false;
            algos[(*count)++] = (chash_algo)a;
        }
        return true;
    }
    char buf[256];
    if (strlen(arg) >= sizeof buf) return false;
    strcpy(buf, arg);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        chash_algo a;
        if (chash_algo_from_name(tok, &a) != CHASH_OK) return false;
        for (size_t i = 0; i < *count; i++)
            if (algos[i] == a) return false;
        if (*count == CLI_ALGO_MAX) return false;
        algos[(*count)++] = a;
    }
    return *count > 0;
}

bool cli_placement_option(const char *cmd, cli_placement *p, int opt, const char *arg) {
    uint64_t v;
    switch (opt) {
    case CLI_OPT_ALGO:
        if (chash_algo_from_name(arg, &p->config.algo) != CHASH_OK) {
            cli_usage_error(cmd, "--algo: unknown algorithm '%s' (%s)", arg, cli_algo_list());
            return false;
        }
        p->has_algo = true;
        return true;
    case CLI_OPT_SCHEME:
        if (chash_scheme_from_name(arg, &p->config.scheme) != CHASH_OK) {
            cli_usage_error(cmd,
                            "--scheme: unknown scheme '%s' (native, groupcache, ketama, "
                            "twemproxy, nginx, redis-cluster)",
                            arg);
            return false;
        }
        p->has_scheme = true;
        return true;
    case CLI_OPT_HASH:
        if (chash_hash_from_name(arg, &p->config.key_hash) != CHASH_OK) {
            cli_usage_error(cmd,
                            "--hash: unknown key hash '%s' (md5, crc16, crc32, crc32a, "
                            "fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins, "
                            "one_at_a_time, default)",
                            arg);
            return false;
        }
        p->has_hash = true;
        return true;
    case CLI_OPT_HASH_TAG:
        if (strlen(arg) != 2) {
            cli_usage_error(cmd, "--hash-tag: expected two characters such as '{}', got '%s'",
                            arg);
            return false;
        }
        memcpy(p->config.hash_tag, arg, 3);
        p->has_hash_tag = true;
        return true;
    case CLI_OPT_POOL:
        p->pool = arg;
        return true;
    case CLI_OPT_MAGLEV_SIZE:
        if (!cli_parse_u64(cmd, "--maglev-size", arg, 2, CHASH_MAGLEV_TABLE_MAX, &v))
            return false;
        for (uint64_t d = 2; d * d <= v; d++)
            if (v % d == 0) {
                cli_usage_error(cmd, "--maglev-size: expected a prime such as 65537, got %s", arg);
                return false;
            }
        p->config.maglev_table_size = (uint32_t)v;
        return true;
    case CLI_OPT_PROBES:
        if (!cli_parse_u64(cmd, "--probes", arg, 1, CHASH_PROBES_MAX, &v)) return false;
        p->config.probe_count = (uint32_t)v;
        return true;
    case CLI_OPT_EPSILON: {
        char *end = NULL;
        errno = 0;
        double e = strtod(arg, &end);
        if (end == arg || *end != '\0' || errno != 0 || !(e > 0 && e <= CHASH_LOAD_EPSILON_MAX)) {
            cli_usage_error(cmd, "--epsilon: expected a number above 0, at most %g, got '%s'",
                            CHASH_LOAD_EPSILON_MAX, arg);
            return false;
        }
        p->config.load_epsilon = e;
        return true;
    }
    case CLI_OPT_BUCKETS:
        if (!cli_parse_u64(cmd, "--buckets", arg, 1, CHASH_BUCKETS_MAX, &v)) return false;
        p->config.bucket_count = (uint32_t)v;
        return true;
    case CLI_OPT_BUCKET_BY:
        if (chash_bucket_by_from_name(arg, &p->config.bucket_by) != CHASH_OK) {
            cli_usage_error(cmd, "--bucket-by: expected hash or digits, got '%s'", arg);
            return false;
        }
        return true;
    case CLI_OPT_VNODES:
        if (!cli_parse_u64(cmd, "--vnodes", arg, 1, CHASH_VNODES_MAX, &v)) return false;
        p->config.vnodes = (uint32_t)v;
        return true;
    case CLI_OPT_NODES:
        /* Read once the scheme is known: redis-cluster takes a file. */
        p->nodes_arg = arg;
        p->membership_flags++;
        return true;
    case CLI_OPT_NAMES:
        p->names_csv = arg;
        p->membership_flags++;
        return true;
    case CLI_OPT_NODES_FILE:
        p->nodes_file = arg;
        p->membership_flags++;
        return true;
    default:
        return false;
    }
}

static bool membership(const char *cmd, cli_placement *p, uint64_t default_count,
                       cli_nodes *out) {
    memset(out, 0, sizeof *out);
    if (p->membership_flags > 1) {
        cli_usage_error(cmd, "give only one of --nodes, --names and --nodes-file");
        return false;
    }
    bool is_redis = p->config.scheme == CHASH_SCHEME_REDIS_CLUSTER;
    if (is_redis && !p->has_algo) p->config.algo = CHASH_ALGO_BUCKETS; /* its only one */
    const char *file = p->nodes_file;
    if (p->nodes_arg && is_redis) {
        file = p->nodes_arg;
    } else if (p->nodes_arg &&
               !cli_parse_u64(cmd, "--nodes", p->nodes_arg, 1, 1000000, &p->node_count)) {
        return false;
    }
    if (p->pool && !file) {
        cli_usage_error(cmd, "--pool names a pool of a nutcracker config: give --nodes-file");
        return false;
    }
    if (file) {
        cli_file_settings set;
        if (!cli_nodes_read_file_as(cmd, file, p->config.scheme, p->pool, &set, out))
            return false;
        /* The command line wins over the file. */
        if (set.has_hash && !p->has_hash) p->config.key_hash = set.hash;
        if (set.has_hash_tag && !p->has_hash_tag) memcpy(p->config.hash_tag, set.hash_tag, 4);
        if (set.has_algo && !p->has_algo) p->config.algo = set.algo;
        return true;
    }
    if (p->names_csv) {
        const char *s = p->names_csv;
        for (;;) {
            const char *comma = strchr(s, ',');
            size_t len = comma ? (size_t)(comma - s) : strlen(s);
            if (len == 0) {
                cli_usage_error(cmd, "--names: empty node name in '%s'", p->names_csv);
                cli_nodes_free(out);
                return false;
            }
            if (!cli_nodes_push(out, s, len, 1)) {
                cli_fail(cmd, "out of memory");
                cli_nodes_free(out);
                return false;
            }
            if (!comma) return true;
            s = comma + 1;
        }
    }
    uint64_t count = p->node_count ? p->node_count : default_count;
    for (uint64_t i = 0; i < count; i++) {
        char name[32];
        int len = snprintf(name, sizeof name, "node-%llu", (unsigned long long)i);
        if (!cli_nodes_push(out, name, (size_t)len, 1)) {
            cli_fail(cmd, "out of memory");
            cli_nodes_free(out);
            return false;
        }
    }
    return true;
}

/* One node while sorting a membership. */
typedef struct node_ref {
    char *name;
    size_t len;
    uint32_t weight;
} node_ref;

/* nutcracker's server order: shorter names first, then bytewise. */
static int nutcracker_order(const void *a, const void *b) {
    const node_ref *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return memcmp(x->name, y->name, x->len);
}

bool cli_placement_nodes(const char *cmd, cli_placement *p, uint64_t default_count,
                         cli_nodes *out) {
    if (!membership(cmd, p, default_count, out)) return false;
    if (p->config.scheme != CHASH_SCHEME_TWEMPROXY || out->count < 2) return true;
    /* The order decides the slots of `distribution: modula` (the ring does
     * not care): sort as nutcracker sorts its servers. */
    node_ref *refs = malloc(out->count * sizeof *refs);
    if (!refs) {
        cli_nodes_free(out);
        cli_fail(cmd, "out of memory");
        return false;
    }
    for (size_t i = 0; i < out->count; i++)
        refs[i] = (node_ref){out->names[i], out->name_lens[i], out->weights[i]};
    qsort(refs, out->count, sizeof *refs, nutcracker_order);
    for (size_t i = 0; i < out->count; i++) {
        out->names[i] = refs[i].name;
        out->name_lens[i] = refs[i].len;
        out->weights[i] = refs[i].weight;
    }
    free(refs);
    return true;
}

bool cli_build(const char *cmd, const chash_config *config, const cli_nodes *nodes,
               chash **out) {
    chash *c = NULL;
    int rc = chash_create(config, &c);
    if (rc == CHASH_EINVAL && config->scheme == CHASH_SCHEME_REDIS_CLUSTER) {
        cli_usage_error(cmd, "cannot create the placement: the redis-cluster scheme takes only "
                             "the buckets algorithm with 16384 buckets by hash, and its own "
                             "hash and hash tag");
        return false;
    }
    if (rc != CHASH_OK) {
        /* Name the pair when the algorithm is fine with the native scheme. */
        chash_config native = *config;
        native.scheme = CHASH_SCHEME_NATIVE;
        if (rc == CHASH_EINVAL && config->scheme != CHASH_SCHEME_NATIVE &&
            chash_create(&native, &c) == CHASH_OK) {
            chash_free(c);
            cli_usage_error(cmd, "cannot create the placement: the %s algorithm cannot use the %s "
                                 "scheme",
                            chash_algo_name(config->algo), chash_scheme_name(config->scheme));
            return false;
        }
        cli_usage_error(cmd, "cannot create the placement: %s", chash_strerror(rc));
        return false;
    }
    chash_node_spec *specs = calloc(nodes->count ? nodes->count : 1, sizeof *specs);
    if (!specs) {
        chash_free(c);
        cli_fail(cmd, "out of memory");
        return false;
    }
    for (size_t i = 0; i < nodes->count; i++)
        specs[i] = (chash_node_spec){nodes->names[i], nodes->name_lens[i], nodes->weights[i]};
    rc = chash_add_many(c, specs, nodes->count);
    free(specs);
    /* Each run of buckets with one owner in one call. */
    for (uint32_t b = 0; rc == CHASH_OK && nodes->bucket_owner && b < nodes->bucket_count;) {
        uint32_t owner = nodes->bucket_owner[b], last = b;
        while (last + 1 < nodes->bucket_count && nodes->bucket_owner[last + 1] == owner) last++;
        if (owner != CLI_NO_OWNER) rc = chash_bucket_assign(c, b, last, owner);
        b = last + 1;
    }
    if (rc != CHASH_OK) {
        /* Name the offending node where the error is about one. */
        if (rc == CHASH_EEXIST || rc == CHASH_ENAME || rc == CHASH_EWEIGHT) {
            for (size_t i = 0; i < nodes->count; i++) {
                int one = chash_add(c, nodes->names[i], nodes->name_lens[i], nodes->weights[i]);
                if (one != CHASH_OK) {
                    cli_usage_error(cmd, "node '%.*s': %s", (int)nodes->name_lens[i],
                                    nodes->names[i], chash_strerror(one));
                    chash_free(c);
                    return false;
                }
            }
        }
        cli_usage_error(cmd, "cannot build the placement: %s", chash_strerror(rc));
        chash_free(c);
        return false;
    }
    *out = c;
    return true;
}

size_t cli_key(uint64_t seed, uint64_t i, char *buf, size_t buf_len) {
    /* splitmix64 of (seed, i): keys differ in every character, as real ones do. */
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    int n = snprintf(buf, buf_len, "key-%016llx", (unsigned long long)z);
    return n < 0 ? 0 : (size_t)n;
}

uint64_t cli_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void cli_json_string(FILE *f, const char *s, size_t len) {
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f || ch == '<' || ch == '&') /* safe inside HTML too */
            fprintf(f, "\\u%04x", ch); /* bytes as code points: lossless for ASCII */
        else
            fputc(ch, f);
    }
    fputc('"', f);
}
