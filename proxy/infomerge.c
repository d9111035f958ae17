/*
 * infomerge.c - INFO's sections from every server merged into one: the
 * fields by the rules of one table (info_rules), the k=v lists element by
 * element, the Keyspace by database. merge.c hands it the servers' texts.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * How INFO's fields merge over the servers: the first row whose name
 * matches a field's wins ("x*": names starting with x, "*x": ending with
 * x). A field no row names is added up when every server's value is a
 * number (a 0/1 state then counts the servers in it), merged element by
 * element when it is a k=v,... list (cmdstat_*, errorstat_*, dbN, each k by
 * these same rules), and else the first server's. The rows name k's too.
 */
typedef enum info_rule {
    INFO_AUTO,     /* no row: as above */
    INFO_DROP,     /* left out */
    INFO_FIRST,    /* the first server's */
    INFO_MIN,      /* the least */
    INFO_MAX,      /* the largest */
    INFO_HUMAN,    /* NAME_human: the merged NAME, written as redis-server writes sizes */
    INFO_ALL_OK,   /* "ok" when every server says ok, else the first server's other word */
    INFO_PER_CALL, /* usec / calls of the merged k=v list */
    INFO_TTL_MEAN, /* the servers' avg_ttl weighted by their expires */
    INFO_PROXY_YES, /* 1, whatever the servers say: the proxy's own answer */
} info_rule;

static const struct {
    const char *name;
    info_rule rule;
} info_rules[] = {
    /* One server's identity, or a ratio of one server's figures: nothing
     * the pool as a whole has. */
    {"process_id", INFO_DROP}, {"run_id", INFO_DROP}, {"tcp_port", INFO_DROP},
    {"executable", INFO_DROP}, {"config_file", INFO_DROP}, {"lru_clock", INFO_DROP},
    {"master_*", INFO_DROP}, {"slave*", INFO_DROP}, {"repl_*", INFO_DROP},
    {"second_repl_offset", INFO_DROP}, {"*_ratio", INFO_DROP}, {"*_perc", INFO_DROP},
    {"latency_percentiles_usec_*", INFO_DROP},
    /* The same on every server of a pool (build, configuration), even
     * where it reads as a number. */
    {"redis_git_sha1", INFO_FIRST}, {"redis_git_dirty", INFO_FIRST},
    {"redis_build_id", INFO_FIRST}, {"arch_bits", INFO_FIRST}, {"hz", INFO_FIRST},
    {"configured_hz", INFO_FIRST}, {"maxclients", INFO_FIRST}, {"io_threads_active", INFO_FIRST},
    {"total_system_memory", INFO_FIRST}, {"module", INFO_FIRST},
    /* Ages and high-water marks: the pool's are its youngest server's and
     * its largest. */
    {"uptime_in_*", INFO_MIN}, {"rdb_last_save_time", INFO_MIN},
    {"server_time_usec", INFO_MAX}, {"client_recent_max_*", INFO_MAX},
    {"latest_fork_usec", INFO_MAX}, {"*_time_sec", INFO_MAX},
    {"*_status", INFO_ALL_OK}, {"*_human", INFO_HUMAN},
    {"usec_per_call", INFO_PER_CALL}, {"avg_ttl", INFO_TTL_MEAN},
    /* The proxy answers CLUSTER SLOTS... for every pool (clustercmd.c):
     * cluster clients check this first. */
    {"cluster_enabled", INFO_PROXY_YES},
};

static info_rule info_rule_of(const char *key, size_t len) {
    for (size_t i = 0; i < sizeof info_rules / sizeof info_rules[0]; i++) {
        const char *name = info_rules[i].name;
        size_t n = strlen(name);
        bool is_match;
        if (name[0] == '*') /* "*x": ends with x */
            is_match = len >= n - 1 && memcmp(key + len - (n - 1), name + 1, n - 1) == 0;
        else if (name[n - 1] == '*') /* "x*": starts with x */
            is_match = len >= n - 1 && memcmp(key, name, n - 1) == 0;
        else
            is_match = len == n && memcmp(key, name, n) == 0;
        if (is_match) return info_rules[i].rule;
    }
    return INFO_AUTO;
}

/* A number as INFO writes them: -?digits(.digits)?. */
typedef struct info_num {
    bool is_int;
    long long i;
    double d;
    int frac; /* digits after the point */
} info_num;

static bool info_number(info_val v, info_num *out) {
    size_t at = v.len && v.p[0] == '-' ? 1 : 0, digits = 0, point = 0; /* 0: none */
    *out = (info_num){.is_int = true};
    for (size_t k = at; k < v.len; k++) {
        if (v.p[k] == '.' && !point && digits) {
            point = k;
        } else if (v.p[k] >= '0' && v.p[k] <= '9') {
            digits++;
        } else {
            return false;
        }
    }
    if (!digits || (point && point + 1 == v.len) || digits > 18) return false;
    char text[24];
    memcpy(text, v.p, v.len);
    text[v.len] = '\0';
    out->d = strtod(text, NULL);
    out->is_int = point == 0;
    out->i = out->is_int ? strtoll(text, NULL, 10) : 0;
    out->frac = point ? (int)(v.len - point - 1) : 0;
    return true;
}

/* vals[0 .. count) merged as numbers by rule (INFO_AUTO: added), into
 * *out; false when a server's value is not a number, or none has one. */
static bool info_numbers(const info_val *vals, size_t count, info_rule rule, info_num *out) {
    bool any = false;
    *out = (info_num){.is_int = true};
    for (size_t k = 0; k < count; k++) {
        info_num n;
        if (!vals[k].p) continue;
        if (!info_number(vals[k], &n)) return false;
        if (!any) {
            *out = n;
            any = true;
            continue;
        }
        out->is_int &= n.is_int;
        if (n.frac > out->frac) out->frac = n.frac;
        if (rule == INFO_MIN || rule == INFO_MAX) {
            bool is_less = n.is_int && out->is_int ? n.i < out->i : n.d < out->d;
            if ((rule == INFO_MIN) == is_less) {
                out->i = n.i;
                out->d = n.d;
            }
        } else {
            out->i += n.i;
            out->d += n.d;
        }
    }
    return any;
}

static void append_number(buf *b, const info_num *n) {
    char text[64];
    if (n->is_int)
        snprintf(text, sizeof text, "%lld", n->i);
    else
        snprintf(text, sizeof text, "%.*f", n->frac, n->d);
    buf_append_str(b, text);
}

/* Bytes as redis-server's bytesToHuman writes them (used_memory_human). */
static void append_human(buf *b, double v) {
    static const char units[] = "KMGTP";
    char text[48];
    if (v < 1024) {
        snprintf(text, sizeof text, "%.0fB", v);
    } else {
        int u = 0;
        double scaled = v / 1024;
        while (u < 4 && scaled >= 1024) {
            scaled /= 1024;
            u++;
        }
        snprintf(text, sizeof text, "%.2f%c", scaled, units[u]);
    }
    buf_append_str(b, text);
}

static info_val first_val(const info_val *vals, size_t count) {
    for (size_t k = 0; k < count; k++)
        if (vals[k].p) return vals[k];
    return (info_val){0};
}

/* In a k=v,... list, the value of k (p NULL when absent). */
static info_val list_get(info_val list, const char *key, size_t key_len) {
    for (size_t at = 0; list.p && at < list.len;) {
        const char *comma = memchr(list.p + at, ',', list.len - at);
        size_t end = comma ? (size_t)(comma - list.p) : list.len;
        const char *eq = memchr(list.p + at, '=', end - at);
        if (eq && (size_t)(eq - list.p) - at == key_len && memcmp(list.p + at, key, key_len) == 0)
            return (info_val){eq + 1, (size_t)(list.p + end - eq - 1)};
        at = end + 1;
    }
    return (info_val){0};
}

/* Sub-value k of each server's list into subs; the servers that have it. */
static size_t list_gather(const info_val *vals, size_t count, const char *key, size_t key_len,
                          info_val *subs) {
    size_t found = 0;
    for (size_t k = 0; k < count; k++) {
        subs[k] = vals[k].p ? list_get(vals[k], key, key_len) : (info_val){0};
        found += subs[k].p != NULL;
    }
    return found;
}

/* A k=v,... list merged k by k, in the first server's order; subs is
 * scratch room for `count` values. */
static void append_list(buf *b, const info_val *vals, size_t count, info_val *subs) {
    info_val first = first_val(vals, count);
    for (size_t at = 0; at < first.len;) {
        const char *comma = memchr(first.p + at, ',', first.len - at);
        size_t end = comma ? (size_t)(comma - first.p) : first.len;
        const char *eq = memchr(first.p + at, '=', end - at);
        size_t key_len = eq ? (size_t)(eq - first.p) - at : end - at;
        const char *key = first.p + at;
        if (at) buf_append(b, ",", 1);
        buf_append(b, key, key_len);
        at = end + 1;
        if (!eq) continue;
        buf_append(b, "=", 1);
        info_rule rule = info_rule_of(key, key_len);
        info_num n, m;
        if (rule == INFO_PER_CALL) {
            list_gather(vals, count, "usec", 4, subs);
            bool has_usec = info_numbers(subs, count, INFO_AUTO, &n);
            list_gather(vals, count, "calls", 5, subs);
            if (has_usec && info_numbers(subs, count, INFO_AUTO, &m)) {
                char text[48];
                snprintf(text, sizeof text, "%.2f", m.d > 0 ? n.d / m.d : 0.0);
                buf_append_str(b, text);
                continue;
            }
            rule = INFO_FIRST;
        } else if (rule == INFO_TTL_MEAN) {
            /* Each server's mean stands for its keys with a TTL. */
            double weighted = 0, expires = 0;
            bool is_ok = true;
            for (size_t k = 0; k < count && is_ok; k++) {
                info_val ttl = vals[k].p ? list_get(vals[k], key, key_len) : (info_val){0};
                info_val exp = vals[k].p ? list_get(vals[k], "expires", 7) : (info_val){0};
                if (!ttl.p) continue;
                is_ok = exp.p && info_number(ttl, &n) && info_number(exp, &m);
                weighted += is_ok ? n.d * m.d : 0;
                expires += is_ok ? m.d : 0;
            }
            if (is_ok) {
                char text[48];
                long long mean = (long long)(expires > 0 ? weighted / expires : 0);
                snprintf(text, sizeof text, "%lld", mean);
                buf_append_str(b, text);
                continue;
            }
            rule = INFO_FIRST;
        }
        list_gather(vals, count, key, key_len, subs);
        if (rule != INFO_FIRST && info_numbers(subs, count, rule, &n)) {
            append_number(b, &n);
        } else {
            info_val v = first_val(subs, count);
            buf_append(b, v.p, v.len);
        }
    }
}

/*
 * The servers' INFO texts, gathered as sections of fields: each field is a
 * (section, name) pair in the order it first appears, with each server's
 * value of it.
 */
typedef struct info_field {
    uint32_t section;
    const char *key;
    size_t key_len;
} info_field;

typedef struct info_set {
    size_t servers;
    info_val *sections; /* their names ("Server"; empty: lines before any header) */
    size_t section_count, section_cap;
    info_field *fields;
    size_t field_count, field_cap;
    uint32_t *slots; /* open addressing: field index + 1, or 0 */
    size_t slot_mask;
    info_val *vals; /* field i, server k: vals[i * servers + k] */
    bool is_oom;
} info_set;

static bool grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return true;
    size_t cap2 = *cap ? *cap * 2 : 16;
    while (cap2 < need) cap2 *= 2;
    void *q = realloc(*p, cap2 * size);
    if (!q) return false;
    *p = q;
    *cap = cap2;
    return true;
}

static size_t info_section(info_set *s, const char *name, size_t len) {
    for (size_t i = 0; i < s->section_count; i++)
        if (s->sections[i].len == len && memcmp(s->sections[i].p, name, len) == 0) return i;
    if (!grow((void **)&s->sections, &s->section_cap, s->section_count + 1, sizeof *s->sections)) {
        s->is_oom = true;
        return 0;
    }
    s->sections[s->section_count] = (info_val){name, len};
    return s->section_count++;
}

/* The field's index, added when `add` (SIZE_MAX: absent, or no room). */
static size_t info_find(info_set *s, size_t section, const char *key, size_t len, bool add) {
    uint32_t h = 2166136261u ^ (uint32_t)section;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 16777619u;
    for (size_t at = h & s->slot_mask;; at = (at + 1) & s->slot_mask) {
        uint32_t slot = s->slots[at];
        if (!slot) {
            if (!add || !grow((void **)&s->fields, &s->field_cap, s->field_count + 1,
                              sizeof *s->fields)) {
                s->is_oom |= add;
                return SIZE_MAX;
            }
            s->fields[s->field_count] = (info_field){(uint32_t)section, key, len};
            s->slots[at] = (uint32_t)++s->field_count;
            return s->field_count - 1;
        }
        const info_field *f = &s->fields[slot - 1];
        if (f->section == section && f->key_len == len && memcmp(f->key, key, len) == 0)
            return slot - 1;
    }
}

/*
 * One server's INFO text, line by line: "# Section" starts a section,
 * "name:value" is a field; anything else is passed over. Without vals the
 * fields are gathered; with vals, server k's values are filed.
 */
static void info_read(info_set *s, info_val text, size_t k, bool has_vals) {
    size_t section = info_section(s, "", 0);
    for (size_t at = 0; at < text.len && !s->is_oom;) {
        const char *nl = memchr(text.p + at, '\n', text.len - at);
        size_t end = nl ? (size_t)(nl - text.p) : text.len;
        const char *line = text.p + at;
        size_t len = end - at - (end > at && text.p[end - 1] == '\r');
        at = end + 1;
        const char *colon = memchr(line, ':', len);
        if (len >= 2 && line[0] == '#' && line[1] == ' ') {
            section = info_section(s, line + 2, len - 2);
        } else if (colon) {
            size_t key_len = (size_t)(colon - line);
            size_t i = info_find(s, section, line, key_len, !has_vals);
            if (has_vals && i != SIZE_MAX)
                s->vals[i * s->servers + k] = (info_val){colon + 1, len - key_len - 1};
        }
    }
}

bool info_bulk_text(const buf *b, info_val *text) {
    const char *s = buf_start(b);
    size_t n = buf_used(b);
    if (n < 5 || s[0] != '$' || resp_value_len(s, n) != n || s[1] == '-') return false;
    const char *nl = memchr(s, '\n', n);
    *text = (info_val){nl + 1, n - (size_t)(nl + 1 - s) - 2};
    return true;
}

/* dbN by N, as redis-server lists its Keyspace. */
static long long db_number(const info_field *f) {
    long long n = 0;
    for (size_t i = 2; i < f->key_len && i < 12; i++) n = n * 10 + (f->key[i] - '0');
    return n;
}

/* Field i's merged value when it is a number, by its rule. */
static bool info_merged_number(const info_set *s, size_t i, info_num *n) {
    const info_val *vals = &s->vals[i * s->servers];
    info_rule rule = info_rule_of(s->fields[i].key, s->fields[i].key_len);
    if (rule == INFO_FIRST) return info_number(first_val(vals, s->servers), n);
    return (rule == INFO_AUTO || rule == INFO_MIN || rule == INFO_MAX) &&
           info_numbers(vals, s->servers, rule, n);
}

/* Field i's merged value into b; false when it is left out. */
static bool info_value(info_set *s, size_t i, buf *b, info_val *subs) {
    const info_field *f = &s->fields[i];
    const info_val *vals = &s->vals[i * s->servers];
    info_rule rule = info_rule_of(f->key, f->key_len);
    info_val first = first_val(vals, s->servers);
    info_num n;
    bool is_list = true;
    switch (rule) {
    case INFO_DROP:
        return false;
    case INFO_PROXY_YES:
        buf_append(b, "1", 1);
        return true;
    case INFO_HUMAN: {
        size_t base = info_find(s, f->section, f->key, f->key_len - strlen("_human"), false);
        if (base != SIZE_MAX && info_merged_number(s, base, &n)) {
            append_human(b, n.d);
            return true;
        }
        break;
    }
    case INFO_ALL_OK:
        for (size_t k = 0; k < s->servers; k++)
            if (vals[k].p && (vals[k].len != 2 || memcmp(vals[k].p, "ok", 2) != 0)) {
                buf_append(b, vals[k].p, vals[k].len);
                return true;
            }
        break;
    case INFO_AUTO:
    case INFO_MIN:
    case INFO_MAX:
    case INFO_PER_CALL:
    case INFO_TTL_MEAN:
        if (info_numbers(vals, s->servers, rule, &n)) {
            append_number(b, &n);
            return true;
        }
        for (size_t k = 0; k < s->servers; k++)
            is_list &= !vals[k].p || memchr(vals[k].p, '=', vals[k].len) != NULL;
        if (rule == INFO_AUTO && is_list) {
            append_list(b, vals, s->servers, subs);
            return true;
        }
        break;
    case INFO_FIRST:
        break;
    }
    buf_append(b, first.p, first.len);
    return true;
}

static void info_free(info_set *s) {
    free(s->sections);
    free(s->fields);
    free(s->slots);
    free(s->vals);
}

/* Every server's INFO text merged into out; false when out of memory. */
bool info_merge(size_t servers, const info_val *texts, buf *out) {
    info_set s = {.servers = servers};
    size_t lines = 0;
    for (size_t k = 0; k < s.servers; k++)
        for (size_t i = 0; i < texts[k].len; i++) lines += texts[k].p[i] == '\n';
    size_t slot_count = 64;
    while (slot_count < 2 * lines + 2) slot_count *= 2;
    s.slots = calloc(slot_count, sizeof *s.slots);
    s.slot_mask = slot_count - 1;
    s.is_oom = !s.slots;
    for (size_t k = 0; k < s.servers && !s.is_oom; k++) info_read(&s, texts[k], k, false);
    if (!s.is_oom && s.field_count) {
        s.vals = calloc(s.field_count * s.servers, sizeof *s.vals);
        s.is_oom = !s.vals;
    }
    for (size_t k = 0; k < s.servers && !s.is_oom && s.vals; k++) info_read(&s, texts[k], k, true);
    size_t *order = s.is_oom ? NULL : malloc((s.field_count + 1) * sizeof *order);
    info_val *subs = s.is_oom ? NULL : malloc(s.servers * sizeof *subs);
    if (!order || !subs) s.is_oom = true;
    for (size_t sec = 0; sec < s.section_count && !s.is_oom; sec++) {
        size_t count = 0;
        for (size_t i = 0; i < s.field_count; i++)
            if (s.fields[i].section == sec) order[count++] = i;
        if (s.sections[sec].len == 0 && count == 0) continue;
        if (s.sections[sec].len == 8 && memcmp(s.sections[sec].p, "Keyspace", 8) == 0)
            for (size_t i = 1; i < count; i++)
                for (size_t j = i; j > 0 && db_number(&s.fields[order[j - 1]]) >
                                            db_number(&s.fields[order[j]]); j--) {
                    size_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        if (buf_used(out)) buf_append(out, "\r\n", 2);
        if (s.sections[sec].len) {
            buf_append(out, "# ", 2);
            buf_append(out, s.sections[sec].p, s.sections[sec].len);
            buf_append(out, "\r\n", 2);
        }
        for (size_t j = 0; j < count; j++) {
            const info_field *f = &s.fields[order[j]];
            size_t before = buf_used(out);
            buf_append(out, f->key, f->key_len);
            buf_append(out, ":", 1);
            if (!info_value(&s, order[j], out, subs)) {
                out->len = out->off + before; /* left out */
                continue;
            }
            buf_append(out, "\r\n", 2);
        }
    }
    free(order);
    free(subs);
    bool is_ok = !s.is_oom && !out->is_oom;
    info_free(&s);
    return is_ok;
}

