/*
 * preset_twemproxy.c - CHASH_SCHEME_TWEMPROXY: nutcracker 0.5.0's ketama
 * distribution (ketama_update() and ketama_dispatch() in
 * src/hashkit/nc_ketama.c, server_pool_idx() in src/nc_server.c).
 *
 * The rule, for nodes 0..N-1 with weights w (sum W), none ejected:
 *   - node name = nutcracker's server name: the explicit `name` of a
 *     "host:port:weight name" line, else "host" when the port is 11211, else
 *     "host:port" (for a unix socket "/path:weight", "/path:" with the colon
 *     - copied on purpose). The library takes the name as given; the CLI
 *     derives it from nutcracker's own server syntax;
 *   - points per node as libmemcached's weighted ketama (preset_ketama.c):
 *     floor(float32(w / W * 160 / 4 * N)) * 4 - nutcracker adds its 1e-10 in
 *     double, which changes nothing; the weight counts even for named servers;
 *   - for k = 0 .. points/4 - 1: MD5(name "-" decimal(k)), four little-endian
 *     words each;
 *   - a key: with a hash_tag "XY", the bytes between the first X and the
 *     first Y after it, when there is at least one; then the pool's `hash:`
 *     (default fnv1a_64, see hash_hashkit.c for the hashes' own quirks); an
 *     empty key is not hashed but lands at 0, so the owner of the lowest
 *     point gets it; a one-server pool sends everything to it;
 *   - owner: the first point at or after the key's hash, wrapping
 *     (lower_bound);
 *   - server order: nutcracker sorts each pool's servers by name - shorter
 *     names first, then bytewise - when it checks the config for duplicate
 *     names, and never restores the config order. That order is the server
 *     index: it decides ties and, for `distribution: modula`, which slots
 *     each server holds (add the nodes in it; the CLI does);
 *   - equal points: nutcracker's qsort compares values only; glibc's qsort is
 *     a stable merge sort, so points stay in server order and the server
 *     first in that name order owns them (our tie order for this scheme,
 *     whatever the insertion order). Other C libraries may differ.
 * Not copied: nutcracker formats "name-k" into an 86-byte buffer but hashes
 * the untruncated length, reading past the buffer for names over ~80 bytes
 * (undefined behaviour); we hash the whole string. `distribution: modula` is
 * the modulo algorithm with this scheme's key hash; `random` is not
 * deterministic and has no equivalent.
 */
#include "preset.h"

void chash_preset_twemproxy_points(const chash_node_rec *rec, uint64_t count, uint32_t *out) {
    chash_ketama_points_from(rec->name, rec->name_len, count, out);
}
