/*
 * slot_table.c - a Redis Cluster's slot table (slot_table.h), and reading it from
 * CLUSTER NODES text. No I/O: the bytes come from a file the user names or
 * from a server, so every field is checked and any byte is safe.
 *
 * Invariant: owner[s] is SLOT_TABLE_NO_OWNER or < node_count; names[] are
 * distinct, non-empty and NUL-terminated.
 */
#include "slot_table.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redis's NET_IP_STR_LEN (46) less its NUL. */
#define IP_MAX 45

bool slot_table_init(slot_table *m) {
    memset(m, 0, sizeof *m);
    m->owner = malloc(CHASH_REDIS_SLOTS * sizeof *m->owner);
    if (!m->owner) return false;
    for (uint32_t s = 0; s < CHASH_REDIS_SLOTS; s++) m->owner[s] = SLOT_TABLE_NO_OWNER;
    return true;
}

void slot_table_free(slot_table *m) {
    free(m->names);
    free(m->owner);
    memset(m, 0, sizeof *m);
}

static bool fail(slot_table_error *err, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(slot_table_error *err, unsigned long line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->why, sizeof err->why, fmt, ap);
    va_end(ap);
    err->line = line;
    return false;
}

/* A field as it may be shown in a message: printable, at most 40 bytes. */
typedef struct shown {
    char text[48];
} shown;

static shown show(const char *s, size_t len) {
    shown out;
    size_t n = len < 40 ? len : 40;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        out.text[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    strcpy(out.text + n, len > n ? "..." : "");
    return out;
}

bool slot_table_node(slot_table *m, const char *name, size_t name_len, uint32_t *index,
                      slot_table_error *err) {
    if (name_len == 0 || name_len >= SLOT_TABLE_NAME_MAX)
        return fail(err, 0, "node address '%s' is empty or too long", show(name, name_len).text);
    for (size_t i = 0; i < m->node_count; i++)
        if (strlen(m->names[i]) == name_len && memcmp(m->names[i], name, name_len) == 0) {
            *index = (uint32_t)i;
            return true;
        }
    if (m->node_count == m->node_capacity) {
        size_t cap = m->node_capacity ? 2 * m->node_capacity : 16;
        if (cap >= SLOT_TABLE_NO_OWNER) return fail(err, 0, "too many nodes");
        char(*names)[SLOT_TABLE_NAME_MAX] = realloc(m->names, cap * sizeof *names);
        if (!names) return fail(err, 0, "out of memory");
        m->names = names;
        m->node_capacity = cap;
    }
    memcpy(m->names[m->node_count], name, name_len);
    m->names[m->node_count][name_len] = '\0';
    *index = (uint32_t)m->node_count++;
    return true;
}

bool slot_table_assign(slot_table *m, uint32_t first, uint32_t last, uint32_t index,
                        slot_table_error *err) {
    for (uint32_t s = first; s <= last; s++) {
        if (m->owner[s] != SLOT_TABLE_NO_OWNER)
            return fail(err, 0, "slot %u is served by both %s and %s", s, m->names[m->owner[s]],
                        m->names[index]);
        m->owner[s] = index;
    }
    return true;
}

/* ---- CLUSTER NODES ------------------------------------------------------- */

/* The next blank-separated field of line[0..len) from *at; false at the end. */
static bool next_field(const char *line, size_t len, size_t *at, const char **field,
                       size_t *field_len) {
    size_t i = *at;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    if (i == len) {
        *at = i;
        return false;
    }
    size_t start = i;
    while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') i++;
    *field = line + start;
    *field_len = i - start;
    *at = i;
    return true;
}

/* s[0..len) as a decimal number no greater than max: 1 to 9 digits. */
static bool parse_number(const char *s, size_t len, uint32_t max, uint32_t *out) {
    if (len == 0 || len > 9) return false;
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > max) return false;
    *out = v;
    return true;
}

static bool is_node_id(const char *s, size_t len) {
    if (len != 40) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* Epochs and the ping and pong times: 1 to 20 digits. */
static bool is_counter(const char *s, size_t len) {
    if (len == 0 || len > 20) return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

/* Is `flag` one of the comma-separated flags? */
static bool has_flag(const char *flags, size_t len, const char *flag) {
    size_t flag_len = strlen(flag);
    for (size_t i = 0; i <= len;) {
        size_t end = i;
        while (end < len && flags[end] != ',') end++;
        if (end - i == flag_len && memcmp(flags + i, flag, flag_len) == 0) return true;
        i = end + 1;
    }
    return false;
}

/* "ip:port@cport[,hostname]" (or Redis 3's "ip:port") into "ip:port" and
 * the port. The ip may hold colons (IPv6): the port follows the last one. */
static bool parse_address(const char *s, size_t len, char name[SLOT_TABLE_NAME_MAX],
                          size_t *name_len, uint32_t *port, unsigned long line,
                          slot_table_error *err) {
    const char *comma = memchr(s, ',', len);
    size_t addr_len = comma ? (size_t)(comma - s) : len;
    const char *at = memchr(s, '@', addr_len);
    size_t host_port_len = at ? (size_t)(at - s) : addr_len;
    uint32_t cport;
    if (at && !parse_number(at + 1, addr_len - host_port_len - 1, 65535, &cport))
        return fail(err, line, "bad cluster bus port in address '%s'", show(s, len).text);
    size_t colon = host_port_len;
    while (colon > 0 && s[colon - 1] != ':') colon--;
    if (colon == 0 || !parse_number(s + colon, host_port_len - colon, 65535, port))
        return fail(err, line, "expected an address 'ip:port@cport', got '%s'",
                    show(s, len).text);
    size_t ip_len = colon - 1;
    if (ip_len > IP_MAX) return fail(err, line, "ip longer than %d bytes", IP_MAX);
    for (size_t i = 0; i < ip_len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return fail(err, line, "a control or non-ASCII byte in address '%s'",
                        show(s, len).text);
    /* The port as a number (no leading zeros), so a name is canonical. */
    int n = snprintf(name, SLOT_TABLE_NAME_MAX, "%.*s:%u", (int)ip_len, s, *port);
    *name_len = (size_t)n;
    return true;
}

/* A migrating "[slot->-id]" or importing "[slot-<-id]" entry. */
static bool is_migration(const char *s, size_t len) {
    if (len < 2 || s[0] != '[' || s[len - 1] != ']') return false;
    const char *dash = memchr(s + 1, '-', len - 2);
    if (!dash) return false;
    size_t slot_len = (size_t)(dash - s - 1), rest = len - 2 - slot_len;
    uint32_t slot;
    if (!parse_number(s + 1, slot_len, CHASH_REDIS_SLOTS - 1, &slot)) return false;
    /* "->-" or "-<-", then the other node's id. */
    if (rest != 3 + 40 || dash[2] != '-' || (dash[1] != '>' && dash[1] != '<')) return false;
    return is_node_id(dash + 3, 40);
}

/* One slot field: "slot" or "first-last" into *first, *last. */
static bool parse_slots(const char *s, size_t len, uint32_t *first, uint32_t *last) {
    const char *dash = memchr(s, '-', len);
    if (!dash) {
        if (!parse_number(s, len, CHASH_REDIS_SLOTS - 1, first)) return false;
        *last = *first;
        return true;
    }
    size_t a = (size_t)(dash - s);
    return parse_number(s, a, CHASH_REDIS_SLOTS - 1, first) &&
           parse_number(dash + 1, len - a - 1, CHASH_REDIS_SLOTS - 1, last) && *first <= *last;
}

static bool parse_line(slot_table *m, const char *line, size_t len, unsigned long no,
                       slot_table_error *err) {
    const char *f[8];
    size_t fl[8], at = 0, count = 0;
    while (count < 8 && next_field(line, len, &at, &f[count], &fl[count])) count++;
    if (count == 0) return true;
    if (fl[0] == 4 && memcmp(f[0], "vars", 4) == 0) return true; /* nodes.conf's epochs */
    if (count < 8)
        return fail(err, no,
                    "expected '<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> "
                    "<link> <slot>...', got %zu field%s",
                    count, count == 1 ? "" : "s");
    if (!is_node_id(f[0], fl[0]))
        return fail(err, no, "expected a node id of 40 hex digits, got '%s'",
                    show(f[0], fl[0]).text);
    char name[SLOT_TABLE_NAME_MAX];
    size_t name_len = 0;
    uint32_t port = 0;
    if (!parse_address(f[1], fl[1], name, &name_len, &port, no, err)) return false;
    if (!(fl[3] == 1 && f[3][0] == '-') && !is_node_id(f[3], fl[3]))
        return fail(err, no, "expected '-' or the id of its primary, got '%s'",
                    show(f[3], fl[3]).text);
    for (int i = 4; i <= 6; i++)
        if (!is_counter(f[i], fl[i]))
            return fail(err, no, "field %d: expected a number, got '%s'", i + 1,
                        show(f[i], fl[i]).text);
    bool is_primary = has_flag(f[2], fl[2], "master") && !has_flag(f[2], fl[2], "fail") &&
                      !has_flag(f[2], fl[2], "noaddr") && !has_flag(f[2], fl[2], "handshake");
    uint32_t index = SLOT_TABLE_NO_OWNER;
    if (is_primary) {
        if (port == 0)
            return fail(err, no, "a primary without a port: '%s'", show(f[1], fl[1]).text);
        for (size_t i = 0; i < m->node_count; i++)
            if (strcmp(m->names[i], name) == 0)
                return fail(err, no, "primary %s is listed twice", name);
        if (!slot_table_node(m, name, name_len, &index, err)) {
            err->line = no;
            return false;
        }
    }
    const char *s;
    size_t sl;
    while (next_field(line, len, &at, &s, &sl)) {
        uint32_t first, last;
        if (s[0] == '[') {
            if (!is_migration(s, sl))
                return fail(err, no, "expected '[slot->-id]' or '[slot-<-id]', got '%s'",
                            show(s, sl).text);
            continue; /* the slot's owner is still the node that lists it */
        }
        if (!parse_slots(s, sl, &first, &last))
            return fail(err, no, "expected a slot or a range 'first-last' of 0..16383, got '%s'",
                        show(s, sl).text);
        if (is_primary && !slot_table_assign(m, first, last, index, err)) {
            err->line = no;
            return false;
        }
    }
    return true;
}

bool slot_table_parse_nodes(slot_table *m, const char *text, size_t len, slot_table_error *err) {
    unsigned long no = 0;
    for (size_t start = 0; start < len;) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        no++;
        if (memchr(text + start, '\0', end - start)) return fail(err, no, "NUL byte in line");
        if (!parse_line(m, text + start, end - start, no, err)) return false;
        start = end + 1;
    }
    if (m->node_count == 0)
        return fail(err, 0, "no primary: no line flagged master (and not fail, noaddr or "
                            "handshake)");
    return true;
}
