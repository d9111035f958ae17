/*
 * fuzz_fleet.c - libFuzzer harness for the fleet's protocol values
 * (proxy/fleetproto.c): what a proxy or `chash fleet` reads from etcd,
 * where anyone who may write the prefix can put anything.
 *
 * The first byte names the reader the rest goes to (c P/change, r
 * P/ready/ID, m P/proxies/ID, e P/epoch, s a configuration file split into
 * pools; any other byte picks one by its value), as in the seed corpus
 * (corpus/fleet).
 *
 * Whatever the bytes, nothing crashes, leaks or reads outside them; a
 * refused input leaves its output zeroed and gives a reason; an accepted
 * one holds what fleetproto.h promises (valid unique sorted names, bounded
 * NUL-free texts, epoch == from + 1) and survives a round trip: encoded and
 * decoded again it is the same, and a split file composed and split again
 * gives the same pools (composing is a fixed point).
 */
#include "fleetproto.h"
#include "fuzz.h"

#include <string.h>

static bool is_zero(const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i]) return false;
    return true;
}

static bool same_text(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static void check_text(const char *s, size_t max) {
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(strlen(s) < max);
}

static void check_pools(const fleet_pools *p) {
    FUZZ_CHECK((p->count == 0) == (p->pools == NULL));
    for (size_t i = 0; i < p->count; i++) {
        FUZZ_CHECK(fleet_name_is_valid(p->pools[i].name, strlen(p->pools[i].name)));
        FUZZ_CHECK(p->pools[i].yaml != NULL);
        if (i > 0) FUZZ_CHECK(strcmp(p->pools[i - 1].name, p->pools[i].name) < 0);
        FUZZ_CHECK(fleet_pools_find(p, p->pools[i].name) == &p->pools[i]);
    }
}

static void fuzz_change(const char *body, size_t len) {
    fleet_change c, again;
    const char *why = NULL;
    if (fleet_change_decode(body, len, &c, &why) != 0) {
        FUZZ_CHECK(why != NULL);
        FUZZ_CHECK(is_zero(&c, sizeof c));
        return;
    }
    FUZZ_CHECK(c.epoch == c.from + 1);
    FUZZ_CHECK(fleet_phase_name(c.phase) != NULL);
    check_text(c.by, FLEET_TEXT_MAX);
    if (c.reason) check_text(c.reason, FLEET_TEXT_MAX);
    check_pools(&c.pools);
    char *json;
    size_t n;
    /* An epoch past INT64_MAX cannot be written back in JSON's integers. */
    if (fleet_change_encode(&c, &json, &n) == 0) {
        FUZZ_CHECK_EQ(fleet_change_decode(json, n, &again, NULL), 0);
        FUZZ_CHECK_EQ(c.epoch, again.epoch);
        FUZZ_CHECK_EQ(c.from, again.from);
        FUZZ_CHECK_EQ(c.phase, again.phase);
        FUZZ_CHECK(same_text(c.by, again.by));
        FUZZ_CHECK(same_text(c.reason, again.reason));
        FUZZ_CHECK(fleet_pools_equal(&c.pools, &again.pools));
        fleet_change_free(&again);
        free(json);
    } else {
        FUZZ_CHECK(c.epoch > (uint64_t)INT64_MAX);
    }
    fleet_change_free(&c);
    FUZZ_CHECK(is_zero(&c, sizeof c));
}

static void fuzz_ready(const char *body, size_t len) {
    fleet_ready r, again;
    const char *why = NULL;
    if (fleet_ready_decode(body, len, &r, &why) != 0) {
        FUZZ_CHECK(why != NULL);
        FUZZ_CHECK(is_zero(&r, sizeof r));
        return;
    }
    FUZZ_CHECK(fleet_phase_name(r.phase) != NULL);
    /* A refusal always says why; an answer never carries an error. */
    FUZZ_CHECK(r.is_ok == (r.error == NULL));
    if (r.error) check_text(r.error, FLEET_TEXT_MAX);
    char *json;
    size_t n;
    if (fleet_ready_encode(&r, &json, &n) == 0) {
        FUZZ_CHECK_EQ(fleet_ready_decode(json, n, &again, NULL), 0);
        FUZZ_CHECK_EQ(r.epoch, again.epoch);
        FUZZ_CHECK_EQ(r.phase, again.phase);
        FUZZ_CHECK_EQ(r.is_ok, again.is_ok);
        FUZZ_CHECK(same_text(r.error, again.error));
        fleet_ready_free(&again);
        free(json);
    } else {
        FUZZ_CHECK(r.epoch > (uint64_t)INT64_MAX);
    }
    fleet_ready_free(&r);
}

static void fuzz_member(const char *body, size_t len) {
    fleet_member m, again;
    const char *why = NULL;
    if (fleet_member_decode(body, len, &m, &why) != 0) {
        FUZZ_CHECK(why != NULL);
        FUZZ_CHECK(is_zero(&m, sizeof m));
        return;
    }
    FUZZ_CHECK(fleet_name_is_valid(m.id, strlen(m.id)));
    check_text(m.host, FLEET_TEXT_MAX);
    check_text(m.listen, FLEET_TEXT_MAX);
    check_text(m.state, FLEET_TEXT_MAX);
    char *json;
    size_t n;
    if (fleet_member_encode(&m, &json, &n) == 0) {
        FUZZ_CHECK_EQ(fleet_member_decode(json, n, &again, NULL), 0);
        FUZZ_CHECK(strcmp(m.id, again.id) == 0 && strcmp(m.host, again.host) == 0 &&
                   strcmp(m.listen, again.listen) == 0 && strcmp(m.state, again.state) == 0);
        FUZZ_CHECK_EQ(m.pid, again.pid);
        FUZZ_CHECK_EQ(m.epoch, again.epoch);
        FUZZ_CHECK_EQ(m.started_unix, again.started_unix);
        fleet_member_free(&again);
        free(json);
    } else {
        FUZZ_CHECK(m.epoch > (uint64_t)INT64_MAX);
    }
    fleet_member_free(&m);
}

static void fuzz_epoch(const char *body, size_t len) {
    uint64_t e = 12345;
    if (fleet_epoch_parse(body, len, &e) != 0) {
        FUZZ_CHECK_EQ(e, 12345); /* untouched */
        return;
    }
    /* One spelling per number: printing it gives the input back. */
    char text[24];
    int n = snprintf(text, sizeof text, "%llu", (unsigned long long)e);
    FUZZ_CHECK_EQ((size_t)n, len);
    FUZZ_CHECK(memcmp(text, body, len) == 0);
}

static void fuzz_split(const char *body, size_t len) {
    fleet_pools p, again;
    char err[256];
    memset(err, 'x', sizeof err);
    if (fleet_pools_split(body, len, &p, err, sizeof err) != 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL && err[0] != '\0');
        FUZZ_CHECK(is_zero(&p, sizeof p));
        return;
    }
    FUZZ_CHECK(p.count > 0);
    check_pools(&p);
    char *text;
    size_t n;
    FUZZ_CHECK_EQ(fleet_pools_compose(&p, &text, &n), 0);
    FUZZ_CHECK_EQ(strlen(text), n);
    if (fleet_pools_split(text, n, &again, err, sizeof err) != 0) {
        fprintf(stderr, "composed text refused: %s\n---\n%s---\n", err, text);
        FUZZ_CHECK(!"a composed text splits");
    }
    if (!fleet_pools_equal(&p, &again)) {
        for (size_t i = 0; i < p.count && i < again.count; i++)
            fprintf(stderr, "[%s] <<%s>>\n[%s] <<%s>>\n", p.pools[i].name, p.pools[i].yaml,
                    again.pools[i].name, again.pools[i].yaml);
        FUZZ_CHECK(!"split(compose(p)) == p");
    }
    fleet_pools_free(&again);
    free(text);
    fleet_pools_free(&p);
}

static void fuzz_previous(const char *body, size_t len) {
    fleet_previous p, again;
    const char *why = NULL;
    if (fleet_previous_decode(body, len, &p, &why) != 0) {
        FUZZ_CHECK(why != NULL);
        FUZZ_CHECK(is_zero(&p, sizeof p));
        return;
    }
    FUZZ_CHECK(p.committed_unix_ms >= 0);
    for (size_t i = 0; i < p.pools.count; i++)
        FUZZ_CHECK(fleet_name_is_valid(p.pools.pools[i].name, strlen(p.pools.pools[i].name)));
    char *json;
    size_t n;
    if (fleet_previous_encode(&p, &json, &n) == 0) {
        FUZZ_CHECK_EQ(fleet_previous_decode(json, n, &again, NULL), 0);
        FUZZ_CHECK_EQ(p.epoch, again.epoch);
        FUZZ_CHECK_EQ(p.committed_unix_ms, again.committed_unix_ms);
        FUZZ_CHECK(fleet_pools_equal(&p.pools, &again.pools));
        fleet_previous_free(&again);
        free(json);
    } else {
        FUZZ_CHECK(p.epoch > (uint64_t)INT64_MAX);
    }
    fleet_previous_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    static const char kinds[] = "crmesp";
    const char *kind = memchr(kinds, data[0], sizeof kinds - 1);
    size_t which = kind ? (size_t)(kind - kinds) : data[0] % (sizeof kinds - 1);
    /* An exact-size copy of the body, so a read past its end is seen. */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    FUZZ_CHECK(body != NULL);
    memcpy(body, data + 1, len);
    switch (which) {
    case 0: fuzz_change(body, len); break;
    case 1: fuzz_ready(body, len); break;
    case 2: fuzz_member(body, len); break;
    case 3: fuzz_epoch(body, len); break;
    case 5: fuzz_previous(body, len); break;
    default: fuzz_split(body, len); break;
    }
    free(body);
    return 0;
}
