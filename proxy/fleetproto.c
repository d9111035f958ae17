/*
 * fleetproto.c - fleetproto.h's values: pool sets (split from a
 * configuration file, composed back into one), the JSON of P/change,
 * P/ready/ID and P/proxies/ID, P/epoch, and the plan of one pool's change.
 *
 * Pure: no I/O, no globals. Everything decoded comes from etcd, where
 * anyone with write access to the prefix may have put anything: decoders
 * check every field and bound every text (fuzz_fleet.c feeds them anything).
 *
 * Invariant: a fleet_pools is sorted by name (strcmp), names unique and
 * valid, so two sets compare pool by pool and a composed text is the same
 * for the same set whatever order the pools arrived in.
 */
#define _POSIX_C_SOURCE 200809L
#include "fleetproto.h"

#include "config.h"

#include <chash.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

const char *fleet_phase_name(fleet_phase p) {
    switch (p) {
    case FLEET_PREPARE: return "prepare";
    case FLEET_SWITCH: return "switch";
    case FLEET_ABORT: return "abort";
    }
    return NULL;
}

static int phase_parse(const char *s, fleet_phase *out) {
    static const fleet_phase all[] = {FLEET_PREPARE, FLEET_SWITCH, FLEET_ABORT};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, fleet_phase_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}

bool fleet_name_is_valid(const char *name, size_t len) {
    if (!name || len == 0 || len >= FLEET_NAME_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool is_ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '-' || c == '.';
        if (!is_ok) return false;
    }
    return true;
}

/* ---- pool sets -------------------------------------------------------- */

void fleet_pools_free(fleet_pools *p) {
    if (!p) return;
    for (size_t i = 0; i < p->count; i++) {
        free(p->pools[i].name);
        free(p->pools[i].yaml);
    }
    free(p->pools);
    *p = (fleet_pools){0};
}

bool fleet_pools_equal(const fleet_pools *a, const fleet_pools *b) {
    if (a->count != b->count) return false;
    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->pools[i].name, b->pools[i].name) != 0 ||
            strcmp(a->pools[i].yaml, b->pools[i].yaml) != 0)
            return false;
    return true;
}

/* Where name is, or would go, in the sorted set; *is_found when there. */
static size_t pools_search(const fleet_pools *p, const char *name, bool *is_found) {
    size_t lo = 0, hi = p->count;
    *is_found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(p->pools[mid].name, name);
        if (c == 0) {
            *is_found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const fleet_pool *fleet_pools_find(const fleet_pools *p, const char *name) {
    bool is_found;
    size_t at = pools_search(p, name, &is_found);
    return is_found ? &p->pools[at] : NULL;
}

static char *copy_bytes(const char *p, size_t n) {
    char *c = malloc(n + 1);
    if (!c) return NULL;
    if (n) memcpy(c, p, n);
    c[n] = '\0';
    return c;
}

int fleet_pools_add(fleet_pools *p, const char *name, size_t name_len, const char *yaml,
                    size_t yaml_len) {
    if (!fleet_name_is_valid(name, name_len) || (!yaml && yaml_len)) return -1;
    char *n = copy_bytes(name, name_len);
    if (!n) return -1;
    bool is_found;
    size_t at = pools_search(p, n, &is_found);
    char *y = is_found ? NULL : copy_bytes(yaml ? yaml : "", yaml_len);
    fleet_pool *more = y ? realloc(p->pools, (p->count + 1) * sizeof *more) : NULL;
    if (!more) {
        free(n);
        free(y);
        return -1;
    }
    p->pools = more;
    memmove(&p->pools[at + 1], &p->pools[at], (p->count - at) * sizeof *more);
    p->pools[at] = (fleet_pool){n, y};
    p->count++;
    return 0;
}

int fleet_pools_compose(const fleet_pools *p, char **text, size_t *len) {
    if (!p || p->count == 0) return -1;
    /* Each pool: "NAME": then its lines indented by two spaces. Quoted, so a
     * name YAML would read otherwise ("-", "null", "1") stays a string. */
    size_t cap = 1;
    for (size_t i = 0; i < p->count; i++) {
        const char *y = p->pools[i].yaml;
        size_t lines = 1;
        for (const char *c = y; *c; c++) lines += *c == '\n';
        cap += strlen(p->pools[i].name) + 4 + strlen(y) + 2 * lines + 1;
    }
    char *out = malloc(cap), *w = out;
    if (!out) return -1;
    for (size_t i = 0; i < p->count; i++) {
        w += sprintf(w, "\"%s\":\n", p->pools[i].name);
        for (const char *line = p->pools[i].yaml; *line;) {
            const char *eol = strchr(line, '\n');
            size_t n = eol ? (size_t)(eol - line) : strlen(line);
            /* A blank line stays blank: trailing spaces would be content
             * in a block scalar. */
            if (n) {
                *w++ = ' ';
                *w++ = ' ';
                memcpy(w, line, n);
                w += n;
            }
            *w++ = '\n';
            line += n + (eol ? 1 : 0);
        }
    }
    *w = '\0';
    *text = out;
    *len = (size_t)(w - out);
    return 0;
}

/* ---- splitting a configuration file ----------------------------------- */

/* libyaml's marks count characters (code points; a BOM not at all), not
 * bytes: this walks the text once, forwards, to turn them into offsets. */
typedef struct char_cursor {
    const char *text;
    size_t len;
    size_t byte; /* offset of character number `index` */
    size_t index;
} char_cursor;

static size_t byte_of(char_cursor *c, size_t index) {
    if (index < c->index) { /* never in practice: marks only grow */
        c->byte = c->len >= 3 && memcmp(c->text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
        c->index = 0;
    }
    while (c->index < index && c->byte < c->len) {
        c->byte++;
        while (c->byte < c->len && ((unsigned char)c->text[c->byte] & 0xc0) == 0x80) c->byte++;
        c->index++;
    }
    return c->byte;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int split_fail(char *err, size_t err_len, const char *fmt, ...) {
    if (err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The bytes of the line break at text[i] (YAML 1.1's: LF, CRLF, CR, NEL,
 * LS, PS), or 0. */
static size_t break_len(const char *text, size_t i, size_t end) {
    const unsigned char *t = (const unsigned char *)text;
    if (t[i] == '\n') return 1;
    if (t[i] == '\r') return i + 1 < end && t[i + 1] == '\n' ? 2 : 1;
    if (t[i] == 0xc2 && i + 1 < end && t[i + 1] == 0x85) return 2;
    if (t[i] == 0xe2 && i + 2 < end && t[i + 1] == 0x80 && (t[i + 2] == 0xa8 || t[i + 2] == 0xa9))
        return 3;
    return 0;
}

/* The text of [start, end) with every line after the first losing up to
 * `column` leading spaces (the first began at that column), each line
 * ending in "\n" whatever break it had. Blank lines become empty. */
static char *reindent(const char *text, size_t start, size_t end, size_t column,
                      size_t *out_len) {
    char *out = malloc(end - start + 2), *w = out;
    if (!out) return NULL;
    bool is_first = true;
    for (size_t i = start; i < end;) {
        size_t eol = i, brk = 0;
        while (eol < end && (brk = break_len(text, eol, end)) == 0) eol++;
        size_t from = i;
        if (!is_first)
            for (size_t k = 0; k < column && from < eol && text[from] == ' '; k++) from++;
        size_t to = eol;
        while (to > from && (text[to - 1] == ' ' || text[to - 1] == '\t')) to--;
        /* Trailing spaces go: nothing in a pool's settings means them (a
         * block scalar's would, and none of the keys takes one). */
        memcpy(w, text + from, to - from);
        w += to - from;
        *w++ = '\n';
        is_first = false;
        i = eol + (brk ? brk : 1);
    }
    /* Blank lines at the end are between this pool and the next. */
    while (w - out >= 2 && w[-1] == '\n' && w[-2] == '\n') w--;
    *w = '\0';
    *out_len = (size_t)(w - out);
    return out;
}

#define SPLIT_DEPTH_MAX 64

typedef struct split_state {
    yaml_parser_t parser;
    yaml_event_t ev;
    bool has_event;
    char *err;
    size_t err_len;
    char **anchors; /* defined inside the pool being read */
    size_t anchor_count, anchor_cap;
} split_state;

/* The next event into s->ev (the last one freed), or -1 with libyaml's
 * complaint. */
static int next_event(split_state *s) {
    if (s->has_event) yaml_event_delete(&s->ev);
    s->has_event = false;
    if (!yaml_parser_parse(&s->parser, &s->ev))
        return split_fail(s->err, s->err_len, "line %lu: %s",
                          (unsigned long)s->parser.problem_mark.line + 1,
                          s->parser.error == YAML_MEMORY_ERROR ? "out of memory"
                          : s->parser.problem                  ? s->parser.problem
                                                               : "YAML syntax error");
    s->has_event = true;
    return 0;
}

static void anchors_clear(split_state *s) {
    for (size_t i = 0; i < s->anchor_count; i++) free(s->anchors[i]);
    s->anchor_count = 0;
}

static int anchor_note(split_state *s, const yaml_char_t *anchor) {
    if (!anchor) return 0;
    if (s->anchor_count == s->anchor_cap) {
        size_t cap = s->anchor_cap ? 2 * s->anchor_cap : 8;
        char **more = realloc(s->anchors, cap * sizeof *more);
        if (!more) return -1;
        s->anchors = more;
        s->anchor_cap = cap;
    }
    s->anchors[s->anchor_count] = strdup((const char *)anchor);
    return s->anchors[s->anchor_count++] ? 0 : -1;
}

static bool anchor_known(const split_state *s, const yaml_char_t *anchor) {
    for (size_t i = 0; i < s->anchor_count; i++)
        if (strcmp(s->anchors[i], (const char *)anchor) == 0) return true;
    return false;
}

/*
 * One pool's value, its MAPPING_START in s->ev: reads to its end and adds
 * the text to out. A block map's text runs from its first key to the end of
 * the line of its last scalar (so comments after the pool, which belong to
 * what follows, stay out); a flow map's from '{' to '}'.
 */
static int split_pool(split_state *s, const char *text, size_t len, char_cursor *cur,
                      const char *name, unsigned long line, fleet_pools *out) {
    bool styles[SPLIT_DEPTH_MAX]; /* is_flow of each open collection */
    size_t depth = 1;
    styles[0] = s->ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
    bool is_flow = styles[0];
    /* A flow map starts at its '{' (after any anchor or tag: the event's
     * start mark is the anchor's); a block map's start event is the
     * zero-width token libyaml puts where its first key (or '?') begins,
     * whatever anchor or tag came before. */
    size_t start_index = is_flow ? s->ev.start_mark.index : s->ev.end_mark.index;
    size_t start_column = is_flow ? s->ev.start_mark.column : s->ev.end_mark.column;
    size_t end_index = s->ev.end_mark.index;
    anchors_clear(s);
    while (depth > 0) {
        if (next_event(s) != 0) return -1;
        yaml_event_t *e = &s->ev;
        const yaml_char_t *anchor = NULL;
        switch (e->type) {
        case YAML_SCALAR_EVENT:
            anchor = e->data.scalar.anchor;
            end_index = e->end_mark.index;
            break;
        case YAML_ALIAS_EVENT:
            if (!anchor_known(s, e->data.alias.anchor))
                return split_fail(s->err, s->err_len,
                                  "line %lu: pool '%s': alias *%s refers to an anchor outside "
                                  "the pool (each pool is stored on its own)",
                                  (unsigned long)e->start_mark.line + 1, name,
                                  (const char *)e->data.alias.anchor);
            end_index = e->end_mark.index;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            bool is_seq = e->type == YAML_SEQUENCE_START_EVENT;
            anchor = is_seq ? e->data.sequence_start.anchor : e->data.mapping_start.anchor;
            if (depth == SPLIT_DEPTH_MAX)
                return split_fail(s->err, s->err_len, "line %lu: pool '%s': nested too deeply",
                                  (unsigned long)e->start_mark.line + 1, name);
            styles[depth++] = is_seq ? e->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
                                     : e->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            /* A block collection ends where the next token begins, past
             * whatever comments follow: only a flow one's end is its own. */
            if (styles[--depth]) end_index = e->end_mark.index;
            break;
        default:
            return split_fail(s->err, s->err_len, "line %lu: pool '%s': unexpected YAML",
                              (unsigned long)e->start_mark.line + 1, name);
        }
        if (anchor_note(s, anchor) != 0) return split_fail(s->err, s->err_len, "out of memory");
    }
    size_t from = byte_of(cur, start_index), to = byte_of(cur, end_index);
    if (!is_flow) {
        /* To the end of the last scalar's line (a comment on it stays).
         * A block scalar ends at the start of a later line (after its
         * indentation): then that line is not the pool's. */
        size_t bol = to;
        while (bol > from && text[bol - 1] == ' ') bol--;
        bool is_line_start = bol > from && (text[bol - 1] == '\n' || text[bol - 1] == '\r' ||
                                            (bol - from >= 2 && break_len(text, bol - 2, bol)) ||
                                            (bol - from >= 3 && break_len(text, bol - 3, bol)));
        if (is_line_start)
            to = bol;
        else
            while (to < len && break_len(text, to, len) == 0) to++;
    }
    size_t yaml_len = 0;
    char *yaml = reindent(text, from, to, start_column, &yaml_len);
    if (!yaml) return split_fail(s->err, s->err_len, "out of memory");
    int rc = fleet_pools_add(out, name, strlen(name), yaml, yaml_len);
    free(yaml);
    if (rc != 0) return split_fail(s->err, s->err_len, "line %lu: out of memory", line);
    return 0;
}

int fleet_pools_split(const char *text, size_t len, fleet_pools *out, char *err,
                      size_t err_len) {
    fleet_pools got = {0};
    split_state s = {.err = err, .err_len = err_len};
    if (err_len) err[0] = '\0';
    *out = got;
    if (!text && len) return split_fail(err, err_len, "no text");
    if (len >= 2 && ((unsigned char)text[0] == 0xfe || (unsigned char)text[0] == 0xff))
        return split_fail(err, err_len, "not UTF-8 (a UTF-16 byte order mark)");
    /* libyaml skips U+FEFF at the start of any line: one that re-indenting
     * moved off column 0 would change the pool's meaning. */
    for (size_t i = 3; i + 3 <= len; i++)
        if (memcmp(text + i, "\xef\xbb\xbf", 3) == 0) {
            unsigned long line = 1;
            for (size_t k = 0; k < i; k++) line += text[k] == '\n';
            return split_fail(err, err_len, "line %lu: a byte order mark (U+FEFF) inside the text",
                              line);
        }
    if (!yaml_parser_initialize(&s.parser)) return split_fail(err, err_len, "out of memory");
    yaml_parser_set_input_string(&s.parser, (const unsigned char *)(text ? text : ""), len);
    char_cursor cur = {text, len, 0, 0};
    cur.byte = len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    int rc = -1;
    /* STREAM-START, DOCUMENT-START, the root map. */
    if (next_event(&s) != 0 || next_event(&s) != 0) goto done;
    if (s.ev.type == YAML_STREAM_END_EVENT) {
        split_fail(err, err_len, "no pools (an empty file)");
        goto done;
    }
    if (next_event(&s) != 0) goto done;
    if (s.ev.type != YAML_MAPPING_START_EVENT) {
        split_fail(err, err_len, "line %lu: expected a map of pools",
                   (unsigned long)s.ev.start_mark.line + 1);
        goto done;
    }
    for (;;) {
        if (next_event(&s) != 0) goto done;
        if (s.ev.type == YAML_MAPPING_END_EVENT) break;
        unsigned long line = (unsigned long)s.ev.start_mark.line + 1;
        if (s.ev.type != YAML_SCALAR_EVENT) {
            split_fail(err, err_len, "line %lu: expected pool-name: settings", line);
            goto done;
        }
        char name[FLEET_NAME_MAX];
        size_t name_len = s.ev.data.scalar.length;
        const char *raw = (const char *)s.ev.data.scalar.value;
        if (!fleet_name_is_valid(raw, name_len)) {
            split_fail(err, err_len,
                       "line %lu: pool name '%.*s': use letters, digits, '_', '-' and '.' "
                       "(1 to %d bytes)",
                       line, (int)(name_len > 64 ? 64 : name_len), raw, FLEET_NAME_MAX - 1);
            goto done;
        }
        memcpy(name, raw, name_len);
        name[name_len] = '\0';
        if (fleet_pools_find(&got, name)) {
            split_fail(err, err_len, "line %lu: duplicate pool '%s'", line, name);
            goto done;
        }
        if (next_event(&s) != 0) goto done;
        if (s.ev.type != YAML_MAPPING_START_EVENT) {
            split_fail(err, err_len, "line %lu: pool '%s': expected a map of settings",
                       (unsigned long)s.ev.start_mark.line + 1, name);
            goto done;
        }
        if (split_pool(&s, text, len, &cur, name, line, &got) != 0) goto done;
    }
    if (got.count == 0) {
        split_fail(err, err_len, "no pools");
        goto done;
    }
    if (next_event(&s) != 0) goto done; /* DOCUMENT-END */
    if (next_event(&s) != 0) goto done;
    if (s.ev.type != YAML_STREAM_END_EVENT) {
        split_fail(err, err_len, "line %lu: more than one YAML document",
                   (unsigned long)s.ev.start_mark.line + 1);
        goto done;
    }
    rc = 0;
done:
    if (s.has_event) yaml_event_delete(&s.ev);
    yaml_parser_delete(&s.parser);
    anchors_clear(&s);
    free(s.anchors);
    if (rc != 0) fleet_pools_free(&got); /* zeroes it */
    *out = got;
    return rc;
}

/* ---- JSON ------------------------------------------------------------- */

/* A text for a JSON string: cut to FLEET_TEXT_MAX - 1 bytes on a character
 * boundary; NULL when it is not UTF-8 (or out of memory). */
static json_t *text_json(const char *s) {
    size_t n = strlen(s ? s : "");
    if (n >= FLEET_TEXT_MAX) {
        n = FLEET_TEXT_MAX - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) n--;
    }
    return json_stringn(s ? s : "", n);
}

/* Sets obj[name] to value (taken); false when value is NULL or it fails. */
static bool set(json_t *obj, const char *name, json_t *value) {
    return value && json_object_set_new(obj, name, value) == 0;
}

static json_t *u64_json(uint64_t v) {
    return v > (uint64_t)INT64_MAX ? NULL : json_integer((json_int_t)v);
}

static int dump(json_t *obj, bool is_ok, char **json, size_t *len) {
    char *text = is_ok ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(obj);
    if (!text) return -1;
    *json = text;
    *len = strlen(text);
    return 0;
}

static json_t *load(const char *json, size_t len, const char **why) {
    json_error_t e;
    json_t *root = json ? json_loadb(json, len, JSON_REJECT_DUPLICATES, &e) : NULL;
    if (!root) {
        *why = "not JSON";
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *why = "not a JSON object";
        return NULL;
    }
    return root;
}

static bool get_u64(const json_t *obj, const char *name, uint64_t *out) {
    const json_t *v = json_object_get(obj, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* A string member: a copy (NUL-free, under max bytes) into *out; absent:
 * *out = NULL when is_optional, else false. */
static bool get_text(const json_t *obj, const char *name, size_t max, bool is_optional,
                     char **out, bool *is_oom) {
    const json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (!v) return is_optional;
    if (!json_is_string(v)) return false;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n >= max || strlen(s) != n) return false;
    *out = copy_bytes(s, n);
    if (!*out) *is_oom = true;
    return *out != NULL;
}

/* An optional text absent reads as "" (the caller's structs hold no NULL
 * where a text is always meaningful). */
static bool get_text_or_empty(const json_t *obj, const char *name, size_t max, char **out,
                              bool *is_oom) {
    if (!get_text(obj, name, max, true, out, is_oom)) return false;
    if (!*out) *out = copy_bytes("", 0);
    if (!*out) *is_oom = true;
    return *out != NULL;
}

void fleet_change_free(fleet_change *c) {
    if (!c) return;
    fleet_pools_free(&c->pools);
    free(c->by);
    free(c->reason);
    *c = (fleet_change){0};
}

/* {"NAME": "yaml", ...}, or NULL out of memory. */
static json_t *pools_json(const fleet_pools *p) {
    json_t *pools = json_object();
    bool is_ok = pools != NULL;
    for (size_t i = 0; is_ok && i < p->count; i++)
        is_ok = set(pools, p->pools[i].name, json_string(p->pools[i].yaml));
    if (!is_ok) json_decref(pools);
    return is_ok ? pools : NULL;
}

/* The pools object of a decoded record into *out: 0, or -1 and *why. */
static int pools_read(const json_t *pools, fleet_pools *out, const char **why) {
    if (!json_is_object(pools)) {
        *why = "no pools object";
        return -1;
    }
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)pools, name, v) {
        const char *y = json_string_value(v);
        size_t n = json_is_string(v) ? json_string_length(v) : 0;
        if (!y || strlen(y) != n || !fleet_name_is_valid(name, strlen(name))) {
            *why = "a pool with a bad name, or whose YAML is not a text";
            return -1;
        }
        if (fleet_pools_add(out, name, strlen(name), y, n) != 0) {
            *why = "out of memory";
            return -1;
        }
    }
    return 0;
}

int fleet_change_encode(const fleet_change *c, char **json, size_t *len) {
    const char *phase = fleet_phase_name(c->phase);
    json_t *obj = json_object(), *pools = pools_json(&c->pools);
    bool is_ok = obj && pools && phase;
    is_ok = is_ok && set(obj, "pools", json_incref(pools)) &&
            set(obj, "epoch", u64_json(c->epoch)) && set(obj, "from", u64_json(c->from)) &&
            set(obj, "phase", json_string(phase)) && set(obj, "by", text_json(c->by)) &&
            (!c->reason || set(obj, "reason", text_json(c->reason)));
    json_decref(pools);
    return dump(obj, is_ok, json, len);
}

int fleet_change_decode(const char *json, size_t len, fleet_change *out, const char **why) {
    const char *sink;
    if (!why) why = &sink;
    *out = (fleet_change){0};
    json_t *root = load(json, len, why);
    if (!root) return -1;
    fleet_change c = {0};
    bool is_oom = false;
    int rc = -1;
    const json_t *phase = json_object_get(root, "phase");
    const json_t *pools = json_object_get(root, "pools");
    if (!get_u64(root, "epoch", &c.epoch) || !get_u64(root, "from", &c.from)) {
        *why = "no epoch or from (non-negative integers)";
    } else if (c.from == UINT64_MAX || c.epoch != c.from + 1) {
        *why = "epoch is not from + 1";
    } else if (!json_is_string(phase) || phase_parse(json_string_value(phase), &c.phase) != 0) {
        *why = "a phase other than prepare, switch or abort";
    } else if (!get_text_or_empty(root, "by", FLEET_TEXT_MAX, &c.by, &is_oom)) {
        *why = is_oom ? "out of memory" : "a bad 'by' (a text under 1024 bytes)";
    } else if (!get_text(root, "reason", FLEET_TEXT_MAX, true, &c.reason, &is_oom)) {
        *why = is_oom ? "out of memory" : "a bad reason (a text under 1024 bytes)";
    } else {
        rc = pools_read(pools, &c.pools, why);
    }
    json_decref(root);
    if (rc != 0) {
        fleet_change_free(&c);
        return -1;
    }
    *out = c;
    return 0;
}

void fleet_previous_free(fleet_previous *p) {
    if (!p) return;
    fleet_pools_free(&p->pools);
    *p = (fleet_previous){0};
}

int fleet_previous_encode(const fleet_previous *p, char **json, size_t *len) {
    json_t *obj = json_object(), *pools = pools_json(&p->pools);
    bool is_ok = obj && pools && p->committed_unix_ms >= 0 &&
                 set(obj, "pools", json_incref(pools)) && set(obj, "epoch", u64_json(p->epoch)) &&
                 set(obj, "committed_unix_ms", json_integer((json_int_t)p->committed_unix_ms));
    json_decref(pools);
    return dump(obj, is_ok, json, len);
}

int fleet_previous_decode(const char *json, size_t len, fleet_previous *out, const char **why) {
    const char *sink;
    if (!why) why = &sink;
    *out = (fleet_previous){0};
    json_t *root = load(json, len, why);
    if (!root) return -1;
    fleet_previous p = {0};
    uint64_t at = 0;
    int rc = -1;
    if (!get_u64(root, "epoch", &p.epoch) || !get_u64(root, "committed_unix_ms", &at) ||
        at > INT64_MAX) {
        *why = "no epoch or committed_unix_ms (non-negative integers)";
    } else {
        p.committed_unix_ms = (int64_t)at;
        rc = pools_read(json_object_get(root, "pools"), &p.pools, why);
    }
    json_decref(root);
    if (rc != 0) {
        fleet_previous_free(&p);
        return -1;
    }
    *out = p;
    return 0;
}

void fleet_ready_free(fleet_ready *r) {
    if (!r) return;
    free(r->error);
    *r = (fleet_ready){0};
}

int fleet_ready_encode(const fleet_ready *r, char **json, size_t *len) {
    const char *phase = fleet_phase_name(r->phase);
    json_t *obj = json_object();
    bool is_ok = obj && phase && set(obj, "epoch", u64_json(r->epoch)) &&
                 set(obj, "phase", json_string(phase)) && set(obj, "ok", json_boolean(r->is_ok)) &&
                 (r->is_ok || set(obj, "error", text_json(r->error ? r->error : "")));
    return dump(obj, is_ok, json, len);
}

int fleet_ready_decode(const char *json, size_t len, fleet_ready *out, const char **why) {
    const char *sink;
    if (!why) why = &sink;
    *out = (fleet_ready){0};
    json_t *root = load(json, len, why);
    if (!root) return -1;
    fleet_ready r = {0};
    bool is_oom = false;
    int rc = -1;
    const json_t *phase = json_object_get(root, "phase"), *ok = json_object_get(root, "ok");
    if (!get_u64(root, "epoch", &r.epoch)) {
        *why = "no epoch (a non-negative integer)";
    } else if (!json_is_string(phase) || phase_parse(json_string_value(phase), &r.phase) != 0) {
        *why = "a phase other than prepare, switch or abort";
    } else if (!json_is_boolean(ok)) {
        *why = "no ok (true or false)";
    } else if (!get_text(root, "error", FLEET_TEXT_MAX, true, &r.error, &is_oom)) {
        *why = is_oom ? "out of memory" : "a bad error (a text under 1024 bytes)";
    } else {
        r.is_ok = json_is_true(ok);
        if (r.is_ok) {
            free(r.error);
            r.error = NULL;
        } else if (!r.error || !r.error[0]) {
            /* A refusal always says why, if only that it did not. */
            free(r.error);
            r.error = copy_bytes("no reason given", 15);
        }
        rc = r.is_ok || r.error ? 0 : -1;
        if (rc != 0) *why = "out of memory";
    }
    json_decref(root);
    if (rc != 0) {
        fleet_ready_free(&r);
        return -1;
    }
    *out = r;
    return 0;
}

void fleet_member_free(fleet_member *m) {
    if (!m) return;
    free(m->id);
    free(m->host);
    free(m->listen);
    free(m->state);
    *m = (fleet_member){0};
}

int fleet_member_encode(const fleet_member *m, char **json, size_t *len) {
    json_t *obj = json_object();
    bool is_ok = obj && m->id && fleet_name_is_valid(m->id, strlen(m->id)) &&
                 set(obj, "id", json_string(m->id)) && set(obj, "host", text_json(m->host)) &&
                 set(obj, "pid", json_integer((json_int_t)m->pid)) &&
                 set(obj, "listen", text_json(m->listen)) &&
                 set(obj, "epoch", u64_json(m->epoch)) &&
                 set(obj, "state", text_json(m->state)) &&
                 set(obj, "started_unix", json_integer((json_int_t)m->started_unix));
    return dump(obj, is_ok, json, len);
}

int fleet_member_decode(const char *json, size_t len, fleet_member *out, const char **why) {
    const char *sink;
    if (!why) why = &sink;
    *out = (fleet_member){0};
    json_t *root = load(json, len, why);
    if (!root) return -1;
    fleet_member m = {0};
    bool is_oom = false;
    int rc = -1;
    const json_t *pid = json_object_get(root, "pid"), *started = json_object_get(root, "started_unix");
    if (!get_text(root, "id", FLEET_NAME_MAX, false, &m.id, &is_oom) ||
        !fleet_name_is_valid(m.id, strlen(m.id))) {
        *why = is_oom ? "out of memory" : "no id, or a bad one";
    } else if (!get_u64(root, "epoch", &m.epoch)) {
        *why = "no epoch (a non-negative integer)";
    } else if ((pid && !json_is_integer(pid)) || (started && !json_is_integer(started))) {
        *why = "a pid or started_unix that is not an integer";
    } else if (!get_text_or_empty(root, "host", FLEET_TEXT_MAX, &m.host, &is_oom) ||
               !get_text_or_empty(root, "listen", FLEET_TEXT_MAX, &m.listen, &is_oom) ||
               !get_text_or_empty(root, "state", FLEET_TEXT_MAX, &m.state, &is_oom)) {
        *why = is_oom ? "out of memory" : "a bad host, listen or state (texts under 1024 bytes)";
    } else {
        m.pid = pid ? (int64_t)json_integer_value(pid) : 0;
        m.started_unix = started ? (int64_t)json_integer_value(started) : 0;
        rc = 0;
    }
    json_decref(root);
    if (rc != 0) {
        fleet_member_free(&m);
        return -1;
    }
    *out = m;
    return 0;
}

int fleet_epoch_parse(const char *text, size_t len, uint64_t *out) {
    if (!text || len == 0 || len > 20 || (len > 1 && text[0] == '0')) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return -1;
        uint64_t d = (uint64_t)(text[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* ---- the plan of a pool's change -------------------------------------- */

typedef struct plan_sum {
    uint64_t ranges, hashes;
} plan_sum;

static int add_range(void *user, const chash_range *r) {
    plan_sum *s = user;
    s->ranges++;
    s->hashes += (uint64_t)r->last - r->first + 1;
    return 0;
}

/* Keys looked up in both rings when they cannot be compared range by
 * range: the estimate's standard error is at most 0.16 percentage points. */
#define PLAN_SAMPLES 100000u

static int sample_moved(const chash *a, const chash *b, uint64_t *moved) {
    *moved = 0;
    for (uint64_t i = 0; i < PLAN_SAMPLES; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "key:%llu", (unsigned long long)i);
        size_t na, nb, la, lb;
        const void *sa, *sb;
        int rc = chash_lookup(a, key, (size_t)n, &na);
        if (rc == CHASH_OK) rc = chash_lookup(b, key, (size_t)n, &nb);
        if (rc == CHASH_OK) rc = chash_node(a, na, &sa, &la, NULL);
        if (rc == CHASH_OK) rc = chash_node(b, nb, &sb, &lb, NULL);
        if (rc != CHASH_OK) return rc;
        *moved += la != lb || memcmp(sa, sb, la) != 0;
    }
    return CHASH_OK;
}

static int count_bucket_move(void *user, const conf_bucket_move *m) {
    fleet_pool_plan *out = user;
    if (m->key) {
        out->keys_moved++;
    } else {
        out->range_count++;
        out->buckets_moved += (uint64_t)m->last - m->first + 1;
    }
    return 0;
}

int fleet_pool_plan_of(const struct conf_pool *before, const struct conf_pool *after,
                       fleet_pool_plan *out) {
    *out = (fleet_pool_plan){.servers_before = before->server_count,
                             .servers_after = after->server_count};
    if (before->dist == CONF_DIST_RANDOM || after->dist == CONF_DIST_RANDOM) return 0;
    /* Units: the plan is the buckets that change hands, exactly. */
    int brc = conf_pool_bucket_plan(before, after, count_bucket_move, out);
    if (brc == CHASH_OK) {
        out->is_exact = out->is_buckets = true;
        out->bucket_count = after->bucket_count;
        out->moved_fraction = after->bucket_count
                                  ? (double)out->buckets_moved / (double)after->bucket_count
                                  : 0.0;
        return 0;
    }
    out->range_count = out->buckets_moved = out->keys_moved = 0;
    if (brc != CHASH_ENOTSUP) return brc;
    chash *a = NULL, *b = NULL;
    plan_sum sum = {0, 0};
    int rc = conf_pool_ring(before, &a);
    if (rc == CHASH_OK) rc = conf_pool_ring(after, &b);
    if (rc == CHASH_OK) rc = chash_diff(a, b, add_range, &sum);
    if (rc == CHASH_OK) {
        out->is_exact = true;
        out->range_count = sum.ranges;
        out->moved_hashes = sum.hashes;
        out->moved_fraction = (double)sum.hashes / 4294967296.0;
    } else if (rc == CHASH_ENOTSUP) {
        uint64_t moved = 0;
        rc = sample_moved(a, b, &moved);
        if (rc == CHASH_OK) {
            out->samples = PLAN_SAMPLES;
            out->moved_fraction = (double)moved / PLAN_SAMPLES;
        }
    }
    chash_free(a);
    chash_free(b);
    return rc;
}
