/*
 * test_groupcache.c - CHASH_SCHEME_GROUPCACHE against placements recorded
 * from the real Go package (tests/vectors/groupcache.txt, format in
 * tests/vectors/README.md). Usage: test_groupcache [VECTOR_FILE].
 *
 * Each case is built three ways (one add_many, one add at a time, and a
 * clone) and every recorded key must land on the recorded node.
 */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"

#include <chash.h>

typedef struct vcase {
    uint32_t replicas;
    size_t node_count;
    uint8_t names[128][32];
    size_t name_lens[128];
    chash *rings[3];
} vcase;

static void build_case(vcase *v) {
    chash_config cfg = {.struct_size = sizeof cfg,
                        .scheme = CHASH_SCHEME_GROUPCACHE, .vnodes = v->replicas};
    chash_node_spec specs[128];
    for (size_t i = 0; i < v->node_count; i++)
        specs[i] = (chash_node_spec){v->names[i], v->name_lens[i], 1};
    ASSERT_OK(chash_create(&cfg, &v->rings[0]));
    ASSERT_OK(chash_add_many(v->rings[0], specs, v->node_count));
    ASSERT_OK(chash_create(&cfg, &v->rings[1]));
    for (size_t i = 0; i < v->node_count; i++)
        ASSERT_OK(chash_add(v->rings[1], v->names[i], v->name_lens[i], 1));
    ASSERT_OK(chash_clone(v->rings[0], &v->rings[2]));
}

static void free_case(vcase *v) {
    for (int i = 0; i < 3; i++) {
        chash_free(v->rings[i]);
        v->rings[i] = NULL;
    }
}

int main(int argc, char **argv) {
    char path[4096];
    if (argc > 1)
        snprintf(path, sizeof path, "%s", argv[1]);
    else
        snprintf(path, sizeof path, "%s/tests/vectors/groupcache.txt",
                 getenv("CHASH_SOURCE_DIR") ? getenv("CHASH_SOURCE_DIR") : ".");
    FILE *f = fopen(path, "r");
    if (!f) TEST_FAIL_AT("cannot open %s", path);
    char *line = NULL;
    size_t cap = 0, cases = 0, keys = 0;
    ssize_t got;
    vcase v = {0};
    bool in_case = false;
    while ((got = getline(&line, &cap, f)) >= 0) {
        if (got > 0 && line[got - 1] == '\n') line[--got] = '\0';
        if (got == 0 || line[0] == '#') continue;
        if (strncmp(line, "case ", 5) == 0) {
            ASSERT_TRUE(!in_case);
            memset(&v, 0, sizeof v);
            unsigned replicas;
            size_t nodes;
            ASSERT_TRUE(sscanf(line + 5, "%u %zu", &replicas, &nodes) == 2);
            v.replicas = replicas;
            ASSERT_TRUE(nodes <= 128);
            in_case = true;
        } else if (strncmp(line, "node ", 5) == 0) {
            ASSERT_TRUE(in_case && v.node_count < 128 && strlen(line + 5) <= 64);
            v.name_lens[v.node_count] = test_unhex(line + 5, strlen(line + 5),
                                                   v.names[v.node_count], sizeof v.names[0]);
            v.node_count++;
        } else if (strncmp(line, "key ", 4) == 0) {
            ASSERT_TRUE(in_case);
            if (!v.rings[0]) build_case(&v);
            const char *hex_key = line + 4, *sp = strchr(hex_key, ' ');
            ASSERT_TRUE(sp != NULL);
            uint8_t key[256], owner[64];
            ASSERT_TRUE((size_t)(sp - hex_key) <= 2 * sizeof key && strlen(sp + 1) <= 128);
            size_t key_len = test_unhex(hex_key, (size_t)(sp - hex_key), key, sizeof key);
            size_t owner_len = test_unhex(sp + 1, strlen(sp + 1), owner, sizeof owner);
            for (int r = 0; r < 3; r++) {
                size_t node, name_len;
                const void *name;
                ASSERT_OK(chash_lookup(v.rings[r], key, key_len, &node));
                ASSERT_OK(chash_node(v.rings[r], node, &name, &name_len, NULL));
                if (name_len != owner_len || memcmp(name, owner, owner_len) != 0)
                    TEST_FAIL_AT("case %zu (replicas %u, %zu nodes), key %s: got node %zu, "
                                 "Go says %s",
                                 cases, v.replicas, v.node_count, hex_key, node, sp + 1);
            }
            keys++;
        } else if (strcmp(line, "end") == 0) {
            ASSERT_TRUE(in_case);
            free_case(&v);
            in_case = false;
            cases++;
        } else {
            TEST_FAIL_AT("bad vector line: %s", line);
        }
    }
    free(line);
    fclose(f);
    ASSERT_TRUE(!in_case);
    ASSERT_TRUE(cases >= 10 && keys >= 1000);
    printf("groupcache vectors: %zu cases, %zu keys match Go (%s)\n", cases, keys, path);
    TEST_DONE();
}
