/*
 * test_compat.c - the peer presets (ketama, twemproxy, nginx) against
 * placements recorded from the real programs (tests/vectors/{ketama,
 * twemproxy,nginx}.txt, format in tests/vectors/README.md).
 * Usage: test_compat [VECTOR_FILE...]; no argument: the three committed files.
 *
 * Each case is built five ways - one add_many; one add at a time; a clone;
 * with an extra node added and removed again; with every weight first 1 and
 * then set - so the incremental paths of the ring (or its rebuild, for the
 * schemes whose point counts depend on every weight) must agree with the
 * peer as well. A twemproxy ring is also built from the nodes in reverse
 * order: nutcracker sorts its servers by name, so insertion order must not
 * matter. Every recorded key must land on the recorded node.
 */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"

#include <chash.h>

#define MAX_NODES 2048
#define WAYS 6

typedef struct vcase {
    chash_config cfg;
    size_t node_count, want_nodes;
    uint8_t *names[MAX_NODES];
    size_t name_lens[MAX_NODES];
    uint32_t weights[MAX_NODES];
    chash *ways[WAYS];
    int way_count; /* 5, or 3 when ways 3 and 4 would be too slow */
} vcase;

static void build_case(vcase *v) {
    static chash_node_spec specs[MAX_NODES];
    ASSERT_EQ(v->node_count, v->want_nodes);
    for (size_t i = 0; i < v->node_count; i++)
        specs[i] = (chash_node_spec){v->names[i], v->name_lens[i], v->weights[i]};
    /* ketama and twemproxy rebuild the whole ring on every single change, so
     * one-at-a-time ways cost O(nodes * points) there: small pools only. */
    bool rebuilds =
        v->cfg.scheme == CHASH_SCHEME_KETAMA || v->cfg.scheme == CHASH_SCHEME_TWEMPROXY;
    v->way_count = v->node_count <= (rebuilds ? 32 : 200) ? 5 : 3;
    for (int w = 0; w < v->way_count; w++)
        if (w != 1 || v->way_count == 5 || !rebuilds)
            ASSERT_OK(chash_create(&v->cfg, &v->ways[w]));
    if (v->cfg.scheme == CHASH_SCHEME_TWEMPROXY && v->cfg.algo == CHASH_ALGO_RING &&
        v->way_count == 5) {
        ASSERT_OK(chash_create(&v->cfg, &v->ways[5]));
        for (size_t i = v->node_count; i-- > 0;)
            ASSERT_OK(chash_add(v->ways[5], v->names[i], v->name_lens[i], v->weights[i]));
    }
    ASSERT_OK(chash_add_many(v->ways[0], specs, v->node_count));
    for (size_t i = 0; v->ways[1] && i < v->node_count; i++)
        ASSERT_OK(chash_add(v->ways[1], v->names[i], v->name_lens[i], v->weights[i]));
    chash_free(v->ways[2]);
    ASSERT_OK(chash_clone(v->ways[0], &v->ways[2]));
    if (v->way_count < 5) return;
    /* An extra node in the middle of the sequence, then removed: later
     * indexes shift down and back. */
    size_t half = v->node_count / 2;
    for (size_t i = 0; i < v->node_count; i++) {
        if (i == half) ASSERT_OK(chash_add(v->ways[3], "extra node \xff", 12, 3));
        ASSERT_OK(chash_add(v->ways[3], v->names[i], v->name_lens[i], v->weights[i]));
    }
    ASSERT_OK(chash_remove(v->ways[3], "extra node \xff", 12));
    for (size_t i = 0; i < v->node_count; i++)
        ASSERT_OK(chash_add(v->ways[4], v->names[i], v->name_lens[i], 1));
    for (size_t i = 0; i < v->node_count; i++)
        ASSERT_OK(chash_set_weight(v->ways[4], v->names[i], v->name_lens[i], v->weights[i]));
    for (int w = 0; w < 5; w++) ASSERT_EQ(chash_node_count(v->ways[w]), v->node_count);
}

static void free_case(vcase *v) {
    for (int w = 0; w < WAYS; w++) {
        chash_free(v->ways[w]);
        v->ways[w] = NULL;
    }
    for (size_t i = 0; i < v->node_count; i++) free(v->names[i]);
    v->node_count = 0;
}

static void parse_case_line(vcase *v, const char *line) {
    char scheme[32], algo[32], hash[32], tag[16];
    size_t nodes;
    ASSERT_TRUE(sscanf(line, "case %31s %31s %31s %15s %zu", scheme, algo, hash, tag, &nodes) ==
                5);
    v->cfg = (chash_config)CHASH_CONFIG_INIT;
    ASSERT_OK(chash_scheme_from_name(scheme, &v->cfg.scheme));
    ASSERT_OK(chash_algo_from_name(algo, &v->cfg.algo));
    ASSERT_OK(chash_hash_from_name(hash, &v->cfg.key_hash));
    if (strcmp(tag, "-") != 0) {
        uint8_t t[2];
        ASSERT_EQ(test_unhex(tag, strlen(tag), t, 2), 2);
        v->cfg.hash_tag[0] = (char)t[0];
        v->cfg.hash_tag[1] = (char)t[1];
    }
    ASSERT_TRUE(nodes >= 1 && nodes <= MAX_NODES);
    v->want_nodes = nodes;
}

static void check_file(const char *path, size_t *cases_out, size_t *keys_out) {
    FILE *f = fopen(path, "r");
    if (!f) TEST_FAIL_AT("cannot open %s", path);
    char *line = NULL;
    size_t cap = 0, cases = 0, keys = 0;
    ssize_t got;
    static vcase v;
    bool in_case = false;
    while ((got = getline(&line, &cap, f)) >= 0) {
        if (got > 0 && line[got - 1] == '\n') line[--got] = '\0';
        if (got == 0 || line[0] == '#') continue;
        if (strncmp(line, "case ", 5) == 0) {
            ASSERT_TRUE(!in_case);
            parse_case_line(&v, line);
            in_case = true;
        } else if (strncmp(line, "node ", 5) == 0) {
            ASSERT_TRUE(in_case && v.node_count < v.want_nodes && !v.ways[0]);
            char *sp = strchr(line + 5, ' ');
            ASSERT_TRUE(sp != NULL);
            size_t hex_len = (size_t)(sp - (line + 5));
            uint8_t *name = malloc(hex_len / 2 + 1);
            ASSERT_TRUE(name != NULL);
            v.name_lens[v.node_count] = test_unhex(line + 5, hex_len, name, hex_len / 2 + 1);
            v.names[v.node_count] = name;
            unsigned long w = strtoul(sp + 1, NULL, 10);
            ASSERT_TRUE(w >= 1 && w <= CHASH_WEIGHT_MAX);
            v.weights[v.node_count++] = (uint32_t)w;
        } else if (strncmp(line, "key ", 4) == 0) {
            ASSERT_TRUE(in_case);
            if (!v.ways[0]) build_case(&v);
            const char *hex_key = line + 4, *sp = strchr(hex_key, ' ');
            ASSERT_TRUE(sp != NULL);
            static uint8_t key[65536], owner[CHASH_NAME_MAX];
            size_t key_len = test_unhex(hex_key, (size_t)(sp - hex_key), key, sizeof key);
            size_t owner_len = test_unhex(sp + 1, strlen(sp + 1), owner, sizeof owner);
            for (int w = 0; w < WAYS; w++) {
                if (!v.ways[w]) continue;
                size_t node, name_len;
                const void *name;
                ASSERT_OK(chash_lookup(v.ways[w], key, key_len, &node));
                ASSERT_OK(chash_node(v.ways[w], node, &name, &name_len, NULL));
                if (name_len != owner_len || memcmp(name, owner, owner_len) != 0)
                    TEST_FAIL_AT("%s: case %zu (%s, %s, %zu nodes), way %d, key %s: got "
                                 "'%.*s', the peer says '%.*s'",
                                 path, cases, chash_scheme_name(v.cfg.scheme),
                                 chash_hash_name(v.cfg.key_hash), v.node_count, w, hex_key,
                                 (int)name_len, (const char *)name, (int)owner_len,
                                 (const char *)owner);
            }
            keys++;
        } else if (strcmp(line, "end") == 0) {
            ASSERT_TRUE(in_case);
            if (!v.ways[0]) build_case(&v);
            free_case(&v);
            in_case = false;
            cases++;
        } else {
            TEST_FAIL_AT("%s: bad vector line: %s", path, line);
        }
    }
    free(line);
    fclose(f);
    ASSERT_TRUE(!in_case);
    printf("%s: %zu cases, %zu keys agree with the peer\n", path, cases, keys);
    *cases_out += cases;
    *keys_out += keys;
}

int main(int argc, char **argv) {
    size_t cases = 0, keys = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) check_file(argv[i], &cases, &keys);
    } else {
        const char *src = getenv("CHASH_SOURCE_DIR") ? getenv("CHASH_SOURCE_DIR") : ".";
        static const char *const files[] = {"ketama", "twemproxy", "nginx"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/tests/vectors/%s.txt", src, files[i]);
            size_t c = 0, k = 0;
            check_file(path, &c, &k);
            ASSERT_TRUE(c >= 10 && k >= 1000);
            cases += c;
            keys += k;
        }
    }
    ASSERT_TRUE(cases >= 1 && keys >= 1);
    TEST_DONE();
}
