/* examples/basic.c - the README's example: a ring of three caches, a lookup,
 * a replica list, and a node added without disturbing the others' keys. */
#include <chash.h>
#include <stdio.h>

int main(void) {
    chash *ring;
    if (chash_create(NULL, &ring) != CHASH_OK) return 1; /* CRC32, 160 vnodes */
    chash_add(ring, "cache-a", 7, 1);
    chash_add(ring, "cache-b", 7, 1);
    chash_add(ring, "cache-c", 7, 2); /* twice the points, twice the keys */

    size_t node, replicas[2], found;
    const void *name;
    size_t name_len;
    chash_lookup(ring, "user:42", 7, &node);
    chash_node(ring, node, &name, &name_len, NULL);
    printf("user:42 -> %.*s\n", (int)name_len, (const char *)name);
    chash_lookup_n(ring, "user:42", 7, 2, replicas, &found);
    printf("replicas: %zu found\n", found);

    int rc = chash_add(ring, "cache-d", 7, 1); /* moves only keys cache-d now owns */
    printf("add cache-d: %s\n", chash_strerror(rc));
    chash_free(ring);
    return 0;
}
