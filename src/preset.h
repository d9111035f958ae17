/*
 * preset.h - the peer presets' point rules (preset_*.c), called by scheme.c.
 * Not installed.
 *
 * Invariant: for a node, *_points() writes exactly the count the scheme's
 * point count gives, in the peer's own point order.
 */
#ifndef CHASH_PRESET_H
#define CHASH_PRESET_H

#include "internal.h"

/* The ketama count both ketama presets share: floor(float32 of
 * w / W * vnodes / 4 * N) * 4, every step rounded to float as the peers do. */
uint64_t chash_ketama_point_count(uint32_t vnodes, const scheme_totals *totals, uint32_t weight);
/* count points from MD5(prefix "-" k) for k = 0 .. count/4 - 1, four
 * little-endian words of each digest. */
void chash_ketama_points_from(const uint8_t *prefix, size_t prefix_len, uint64_t count,
                              uint32_t *out);

/* libmemcached: the prefix is "host" (port 11211 or none) or "host:port". */
void chash_preset_ketama_points(const chash_node_rec *rec, uint64_t count, uint32_t *out);
/* twemproxy: the prefix is the node name as given. */
void chash_preset_twemproxy_points(const chash_node_rec *rec, uint64_t count, uint32_t *out);
/* nginx: points chained by CRC-32 from "host\0port" of the server string. */
void chash_preset_nginx_points(const chash_node_rec *rec, uint64_t count, uint32_t *out);

#endif
