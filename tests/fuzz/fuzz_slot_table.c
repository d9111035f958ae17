/*
 * fuzz_slot_table.c - libFuzzer harness for the Redis Cluster slot-table
 * readers of `chash lookup --scheme redis-cluster` (cli/slot_table.c,
 * cli/slot_table_reply.c): CLUSTER NODES text from a file anyone may hand the
 * CLI, and CLUSTER SHARDS and SLOTS replies from whatever answers on the
 * address given.
 *
 * The first byte names the reader the rest goes to (n CLUSTER NODES, s
 * SHARDS, l SLOTS; any other byte picks one by its value), as in the seed
 * corpus (corpus/slot_table).
 *
 * Whatever the bytes, nothing crashes, leaks or reads outside them; a
 * refusal gives a reason; an accepted table holds what slot_table.h promises
 * (owners are primaries, names distinct, non-empty, terminated); reading is
 * deterministic; and a table read from CLUSTER NODES, written back as
 * CLUSTER NODES text, reads back the same (the text is a fixed point).
 */
#define _POSIX_C_SOURCE 200809L
#include "slot_table.h"
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

static void check_map(const slot_table *m) {
    FUZZ_CHECK(m->node_count <= m->node_capacity);
    for (size_t i = 0; i < m->node_count; i++) {
        size_t len = strnlen(m->names[i], SLOT_TABLE_NAME_MAX);
        FUZZ_CHECK(len > 0 && len < SLOT_TABLE_NAME_MAX);
        FUZZ_CHECK(strchr(m->names[i], ':') != NULL);
        for (size_t j = 0; j < i; j++) FUZZ_CHECK(strcmp(m->names[i], m->names[j]) != 0);
    }
    for (uint32_t s = 0; s < CHASH_REDIS_SLOTS; s++)
        FUZZ_CHECK(m->owner[s] == SLOT_TABLE_NO_OWNER || m->owner[s] < m->node_count);
}

static bool same_map(const slot_table *a, const slot_table *b) {
    if (a->node_count != b->node_count) return false;
    for (size_t i = 0; i < a->node_count; i++)
        if (strcmp(a->names[i], b->names[i]) != 0) return false;
    return memcmp(a->owner, b->owner, CHASH_REDIS_SLOTS * sizeof *a->owner) == 0;
}

static void check_refusal(const slot_table_error *err) {
    FUZZ_CHECK(strnlen(err->why, sizeof err->why) < sizeof err->why);
    FUZZ_CHECK(err->why[0] != '\0');
}

/* The table as CLUSTER NODES text: one primary a line, in index order, its
 * slots as ranges. */
static char *compose_nodes(const slot_table *m, size_t *len) {
    size_t cap = 128 * (m->node_count + 1) + 16 * CHASH_REDIS_SLOTS, at = 0;
    char *text = malloc(cap);
    FUZZ_CHECK(text != NULL);
    for (size_t i = 0; i < m->node_count; i++) {
        at += (size_t)snprintf(text + at, cap - at,
                               "%040zx %s@0 master - 0 0 0 connected", i + 1, m->names[i]);
        for (uint32_t s = 0; s < CHASH_REDIS_SLOTS; s++) {
            if (m->owner[s] != i || (s > 0 && m->owner[s - 1] == i)) continue;
            uint32_t last = s;
            while (last + 1 < CHASH_REDIS_SLOTS && m->owner[last + 1] == i) last++;
            at += (size_t)snprintf(text + at, cap - at, " %u-%u", s, last);
        }
        at += (size_t)snprintf(text + at, cap - at, "\n");
        FUZZ_CHECK(at < cap);
    }
    *len = at;
    return text;
}

typedef bool (*reply_reader)(slot_table *, const char *, size_t, const char *, bool *,
                             slot_table_error *);

static void fuzz_nodes(const char *text, size_t len) {
    slot_table m, again;
    slot_table_error err = {0};
    FUZZ_CHECK(slot_table_init(&m));
    bool ok = slot_table_parse_nodes(&m, text, len, &err);
    if (!ok) {
        check_refusal(&err);
        slot_table_free(&m);
        return;
    }
    check_map(&m);
    FUZZ_CHECK(m.node_count > 0);
    FUZZ_CHECK(slot_table_init(&again));
    FUZZ_CHECK(slot_table_parse_nodes(&again, text, len, &err));
    FUZZ_CHECK(same_map(&m, &again));
    slot_table_free(&again);
    size_t composed_len;
    char *composed = compose_nodes(&m, &composed_len);
    FUZZ_CHECK(slot_table_init(&again));
    if (!slot_table_parse_nodes(&again, composed, composed_len, &err)) {
        fprintf(stderr, "composed text refused: %s (line %lu)\n%s", err.why, err.line, composed);
        abort();
    }
    FUZZ_CHECK(same_map(&m, &again));
    slot_table_free(&again);
    free(composed);
    slot_table_free(&m);
}

static void fuzz_reply(reply_reader read, const char *reply, size_t len) {
    slot_table m, again;
    slot_table_error err = {0};
    bool is_error_reply = false;
    FUZZ_CHECK(slot_table_init(&m));
    bool ok = read(&m, reply, len, "h", &is_error_reply, &err);
    if (ok) {
        FUZZ_CHECK(!is_error_reply);
        check_map(&m);
        FUZZ_CHECK(slot_table_init(&again));
        FUZZ_CHECK(read(&again, reply, len, "h", &is_error_reply, &err));
        FUZZ_CHECK(same_map(&m, &again));
        slot_table_free(&again);
    } else if (!is_error_reply) {
        check_refusal(&err); /* an error reply's text may be empty: "-\r\n" */
    }
    slot_table_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] == 'n' ? 0 : data[0] == 's' ? 1 : data[0] == 'l' ? 2 : data[0] % 3) {
    case 0: fuzz_nodes(rest, len); break;
    case 1: fuzz_reply(slot_table_from_shards, rest, len); break;
    default: fuzz_reply(slot_table_from_slots, rest, len); break;
    }
    return 0;
}
