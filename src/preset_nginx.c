/*
 * preset_nginx.c - CHASH_SCHEME_NGINX: nginx's `hash $key consistent`
 * (ngx_http_upstream_init_chash() and the chash peer functions in
 * src/http/modules/ngx_http_upstream_hash_module.c; the stream module is the
 * same), as of nginx 1.22.
 *
 * The rule, for servers 0..N-1 in the upstream's order:
 *   - node name = the `server` directive's address text, e.g.
 *     "10.0.0.1:8080". Split: a "unix:" prefix (any case) leaves host = the
 *     rest and no port; else the digits after the last ':' are the port (kept
 *     as text, leading zeros included) and host = what precedes the ':'; else
 *     host = the whole string, no port;
 *   - base = CRC-32 over host, one NUL byte, port; prev = 0;
 *   - weight * 160 points: point = CRC-32 of base continued with prev as 4
 *     little-endian bytes; prev = point (each point chains from the last);
 *   - a key lands at CRC-32(key); owner: the first point at or after it,
 *     wrapping;
 *   - equal points: nginx sorts with the C library's qsort and keeps only the
 *     first of equal values. glibc's qsort is stable, so the first is the
 *     lower server index (and within a server, the earlier point); we keep
 *     the duplicates but order them the same way, and the first owns them,
 *     so every key lands where nginx sends it.
 * Not copied: nginx's choices at request time - an empty key, or a single
 * server, goes round-robin; down / failed / max_conns servers are skipped by
 * moving to the next point (up to 20 tries); servers resolved from one name
 * share points. Bytes >= 0x80 need no care: CRC-32 reads unsigned bytes.
 */
#include "preset.h"

void chash_preset_nginx_points(const chash_node_rec *rec, uint64_t count, uint32_t *out) {
    const uint8_t *s = rec->name;
    size_t len = rec->name_len, host_len = len, port_at = len;
    static const char unix_prefix[] = "unix:";
    bool is_unix = len >= 5;
    for (size_t i = 0; is_unix && i < 5; i++) {
        uint8_t c = s[i] >= 'A' && s[i] <= 'Z' ? (uint8_t)(s[i] | 0x20) : s[i];
        is_unix = c == (uint8_t)unix_prefix[i];
    }
    if (is_unix) {
        s += 5;
        host_len = port_at = len - 5;
        len -= 5;
    } else {
        for (size_t j = 0; j < len; j++) {
            uint8_t c = s[len - 1 - j];
            if (c == ':') {
                host_len = len - 1 - j;
                port_at = len - j;
                break;
            }
            if (c < '0' || c > '9') break;
        }
    }
    uint32_t base = chash_crc32(0, s, host_len);
    base = chash_crc32(base, "", 1);
    base = chash_crc32(base, s + port_at, len - port_at);
    uint32_t prev = 0;
    for (uint64_t j = 0; j < count; j++) {
        uint8_t le[4] = {(uint8_t)prev, (uint8_t)(prev >> 8), (uint8_t)(prev >> 16),
                         (uint8_t)(prev >> 24)};
        prev = chash_crc32(base, le, sizeof le);
        out[j] = prev;
    }
}
