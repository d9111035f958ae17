/*
 * plan.c - the exact migration plan between two rings (chash_diff), and
 * between two bucket tables (chash_bucket_diff).
 *
 * On a ring the owner of hash h is the first point at or after h, so the
 * owner can only change at a point of either ring. Between consecutive
 * boundaries of the union of both point sets, both owners are constant and
 * equal to the owners at the interval's upper end; the wrap-around interval
 * (above the last boundary, and up to the first) belongs to both rings'
 * first points. One merge over the two sorted point lists visits every
 * interval once.
 */
#include "internal.h"

static bool same_node(const chash *a, size_t ia, const chash *b, size_t ib) {
    const void *na, *nb;
    size_t la, lb;
    chash_node(a, ia, &na, &la, NULL);
    chash_node(b, ib, &nb, &lb, NULL);
    return la == lb && memcmp(na, nb, la) == 0;
}

typedef struct pending {
    chash_range range;
    bool open;
} pending;

/* Extends the open range when contiguous with the same pair, else flushes. */
static int emit(pending *p, uint32_t first, uint32_t last, size_t from, size_t to,
                chash_range_fn fn, void *user) {
    if (p->open && p->range.from == from && p->range.to == to &&
        (uint64_t)p->range.last + 1 == first) {
        p->range.last = last;
        return 0;
    }
    if (p->open) {
        int rc = fn(user, &p->range);
        if (rc) return rc;
    }
    p->range = (chash_range){first, last, from, to};
    p->open = true;
    return 0;
}

int chash_diff(const chash *from, const chash *to, chash_range_fn fn, void *user) {
    if (!from || !to || !fn) return CHASH_EINVAL;
    chash_config ca = CHASH_CONFIG_INIT, cb = CHASH_CONFIG_INIT;
    chash_get_config(from, &ca);
    chash_get_config(to, &cb);
    /* Keys must land at the same positions in both. */
    if (ca.algo != CHASH_ALGO_RING || cb.algo != CHASH_ALGO_RING || ca.scheme != cb.scheme ||
        ca.key_hash != cb.key_hash || memcmp(ca.hash_tag, cb.hash_tag, sizeof ca.hash_tag) != 0)
        return CHASH_ENOTSUP;
    size_t na = chash_point_count(from), nb = chash_point_count(to);
    if (na == 0 && nb == 0) return CHASH_OK;
    if (na == 0 || nb == 0) return CHASH_EEMPTY;

    pending p = {.open = false};
    size_t i = 0, j = 0;
    uint64_t prev_end = 0; /* next hash not yet covered */
    int rc = 0;
    while (i < na || j < nb) {
        uint32_t ha = UINT32_MAX, hb = UINT32_MAX, boundary;
        size_t oa = 0, ob = 0;
        if (i < na) chash_point(from, i, &ha, &oa);
        if (j < nb) chash_point(to, j, &hb, &ob);
        boundary = (i < na && (j >= nb || ha <= hb)) ? ha : hb;
        /* Owners of (prev, boundary]: the first point >= boundary in each. */
        size_t own_a, own_b;
        chash_lookup_hash(from, boundary, &own_a);
        chash_lookup_hash(to, boundary, &own_b);
        if (prev_end <= boundary && !same_node(from, own_a, to, own_b))
            rc = emit(&p, (uint32_t)prev_end, boundary, own_a, own_b, fn, user);
        if (rc) return rc;
        prev_end = (uint64_t)boundary + 1;
        while (i < na && (chash_point(from, i, &ha, NULL), ha == boundary)) i++;
        while (j < nb && (chash_point(to, j, &hb, NULL), hb == boundary)) j++;
    }
    if (prev_end <= UINT32_MAX) { /* the wrap: owned by both rings' first points */
        size_t own_a, own_b;
        chash_lookup_hash(from, 0, &own_a);
        chash_lookup_hash(to, 0, &own_b);
        if (!same_node(from, own_a, to, own_b))
            rc = emit(&p, (uint32_t)prev_end, UINT32_MAX, own_a, own_b, fn, user);
        if (rc) return rc;
    }
    return p.open ? fn(user, &p.range) : 0;
}

/*
 * Buckets: a key's bucket is the same in both placements (the same count,
 * rule and key hash), so the plan is the buckets whose owner changes,
 * visited in order and merged into runs that share both owners.
 */
int chash_bucket_diff(const chash *from, const chash *to, chash_bucket_range_fn fn,
                      void *user) {
    if (!from || !to || !fn) return CHASH_EINVAL;
    chash_config ca = CHASH_CONFIG_INIT, cb = CHASH_CONFIG_INIT;
    chash_get_config(from, &ca);
    chash_get_config(to, &cb);
    if (ca.algo != CHASH_ALGO_BUCKETS || cb.algo != CHASH_ALGO_BUCKETS ||
        ca.bucket_count != cb.bucket_count || ca.bucket_by != cb.bucket_by ||
        ca.scheme != cb.scheme || ca.key_hash != cb.key_hash ||
        memcmp(ca.hash_tag, cb.hash_tag, sizeof ca.hash_tag) != 0)
        return CHASH_ENOTSUP;
    size_t na = chash_node_count(from), nb = chash_node_count(to);
    if (na == 0 && nb == 0) return CHASH_OK;
    if (na == 0 || nb == 0) return CHASH_EEMPTY;

    chash_bucket_range run;
    bool is_open = false;
    for (uint32_t b = 0; b < ca.bucket_count; b++) {
        size_t oa, ob;
        chash_bucket_owner(from, b, &oa);
        chash_bucket_owner(to, b, &ob);
        if (is_open && run.from == oa && run.to == ob && run.last + 1 == b) {
            run.last = b;
            continue;
        }
        if (same_node(from, oa, to, ob)) continue;
        if (is_open) {
            int rc = fn(user, &run);
            if (rc) return rc;
        }
        run = (chash_bucket_range){.first = b, .last = b, .from = oa, .to = ob};
        chash_node(from, oa, &run.from_name, &run.from_name_len, NULL);
        chash_node(to, ob, &run.to_name, &run.to_name_len, NULL);
        is_open = true;
    }
    return is_open ? fn(user, &run) : 0;
}
