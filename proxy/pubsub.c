/*
 * pubsub.c - SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs.
 *
 * A channel lives on the server the ring gives its name, as a key would:
 * PUBLISH goes there (an ordinary keyed command), and a subscriber listens
 * there, on a server connection of its own (held.c's). A pattern may match
 * a channel of any server, so PSUBSCRIBE listens on every server. Each
 * message reaches a subscriber once, from the one server it was published
 * on, in that server's order; PUBLISH's count is that server's, which
 * counts every subscriber of the proxy that can receive it.
 *
 * The proxy keeps each client's subscriptions, so it writes the
 * confirmations itself ("subscribe", channel, count of the client's
 * subscriptions) in the order the client asked, with the counts a single
 * server would give; it writes them once every server involved has
 * confirmed, so a message published after a client saw its confirmation
 * reaches it. Messages are queued behind the client's pending replies.
 */
#include "proxy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A set of names (open addressing, linear probing, deletion by backward
 * shift), each with the backend it lives on. */
typedef struct name_slot {
    char *name; /* NULL: empty */
    uint32_t len;
    uint32_t backend;
    uint64_t hash;
} name_slot;

typedef struct name_set {
    name_slot *slots;
    size_t cap, count; /* cap: 0 or a power of two */
} name_set;

static uint64_t name_hash(const char *p, size_t n) {
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211u;
    return h;
}

static name_slot *set_find(const name_set *s, const char *p, size_t n, uint64_t h) {
    if (!s->cap) return NULL;
    for (size_t at = h & (s->cap - 1);; at = (at + 1) & (s->cap - 1)) {
        name_slot *e = &s->slots[at];
        if (!e->name) return NULL;
        if (e->hash == h && e->len == n && memcmp(e->name, p, n) == 0) return e;
    }
}

static bool set_grow(name_set *s) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    name_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < s->cap; i++) {
        name_slot *e = &s->slots[i];
        if (!e->name) continue;
        size_t at = e->hash & (cap - 1);
        while (slots[at].name) at = (at + 1) & (cap - 1);
        slots[at] = *e;
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return true;
}

/* 1: added, 0: already there, -1: out of memory. */
static int set_add(name_set *s, const char *p, size_t n, uint32_t where) {
    uint64_t h = name_hash(p, n);
    if (set_find(s, p, n, h)) return 0;
    if ((s->count + 1) * 4 > s->cap * 3 && !set_grow(s)) return -1;
    char *copy = malloc(n ? n : 1);
    if (!copy) return -1;
    memcpy(copy, p, n);
    size_t at = h & (s->cap - 1);
    while (s->slots[at].name) at = (at + 1) & (s->cap - 1);
    s->slots[at] = (name_slot){copy, (uint32_t)n, where, h};
    s->count++;
    return 1;
}

static void set_remove(name_set *s, name_slot *e) {
    free(e->name);
    size_t hole = (size_t)(e - s->slots), mask = s->cap - 1;
    s->slots[hole].name = NULL;
    for (size_t at = (hole + 1) & mask; s->slots[at].name; at = (at + 1) & mask) {
        size_t home = s->slots[at].hash & mask;
        /* Move back an entry whose probe run passes the hole. */
        if (((at - home) & mask) >= ((at - hole) & mask)) {
            s->slots[hole] = s->slots[at];
            s->slots[at].name = NULL;
            hole = at;
        }
    }
    s->count--;
}

static void set_free(name_set *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->slots[i].name);
    free(s->slots);
    *s = (name_set){0};
}

struct subs {
    name_set channels, patterns, shards;
};

/* The three families: what a command adds to and how it is confirmed. */
typedef enum family { FAM_CHANNEL, FAM_PATTERN, FAM_SHARD } family;

static const char *const sub_word[] = {"subscribe", "psubscribe", "ssubscribe"};
static const char *const unsub_word[] = {"unsubscribe", "punsubscribe", "sunsubscribe"};
static const char *const cmd_word[] = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"};
static const char *const uncmd_word[] = {"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"};

static name_set *family_set(struct subs *s, family f) {
    return f == FAM_CHANNEL ? &s->channels : f == FAM_PATTERN ? &s->patterns : &s->shards;
}

/* The count Redis puts in a confirmation: channels and patterns, or shard
 * channels. */
static size_t family_count(const struct subs *s, family f) {
    return f == FAM_SHARD ? s->shards.count : s->channels.count + s->patterns.count;
}

size_t pubsub_count(const client *c) {
    const struct subs *s = c->subs;
    return s ? s->channels.count + s->patterns.count + s->shards.count : 0;
}

void pubsub_counts(const client *c, size_t *channels, size_t *patterns, size_t *shards) {
    const struct subs *s = c->subs;
    *channels = s ? s->channels.count : 0;
    *patterns = s ? s->patterns.count : 0;
    *shards = s ? s->shards.count : 0;
}

static void confirm(buf *out, const char *word, const char *name, size_t len, size_t count) {
    buf_append_header(out, '*', 3);
    buf_append_bulk(out, word, strlen(word));
    if (name)
        buf_append_bulk(out, name, len);
    else
        buf_append_str(out, "$-1\r\n");
    buf_append_header(out, ':', count);
}

/* A message from a server: queued for the client behind its pending
 * replies; a subscriber that does not read is closed past its buffer. */
static void on_push(bconn *bc, const char *data, size_t len) {
    client *c = bc->owner;
    if (c->is_closed || c->is_over_limit) return;
    if (buf_used(&c->out) + c->held_bytes + len > c->pool->cf->max_client_buffer) {
        c->is_over_limit = true;
        client_schedule(c);
        return;
    }
    client_push(c, data, len);
}

/* Per server, the command that goes there: its names and how many. */
typedef struct per_server {
    buf names;
    uint32_t count;
} per_server;

/*
 * Sends each server its part (`verb` and the names gathered for it) on the
 * client's held connection, as one fragment of a request whose reply, the
 * confirmations, is already written; an error from a server replaces it.
 */
static void send_parts(client *c, per_server *ps, const char *verb, buf *confirmations,
                       int delta) {
    wpool *p = c->pool;
    uint32_t parts = 0;
    for (size_t k = 0; k < p->server_count; k++) parts += ps[k].count > 0;
    if (parts == 0) {
        if (confirmations->is_oom)
            reply_oom(c);
        else
            client_push(c, buf_start(confirmations), buf_used(confirmations));
        buf_free(confirmations);
        return;
    }
    req *r = req_new(c, REQ_PREBUILT, parts);
    if (!r) {
        buf_free(confirmations);
        reply_oom(c);
        return;
    }
    r->is_noreply = false; /* confirmations come under CLIENT REPLY OFF too */
    r->reply = *confirmations;
    *confirmations = (buf){0};
    uint32_t i = 0;
    for (size_t k = 0; k < p->server_count; k++) {
        if (!ps[k].count) continue;
        frag *f = &r->frags[i++];
        f->replies = ps[k].count;
        f->is_sub_cmd = true;
        backend *b = &p->backends[k];
        bconn *bc = held_conn_find(c, b);
        if (!bc) bc = bconn_held_new(b, c);
        if (!bc) {
            frag_fail(f, true, "the proxy cannot open a server connection for this client");
            continue;
        }
        /* Subscriber mode starts with the command, so its replies are read
         * as such: messages can follow the first confirmation. */
        if (delta > 0) {
            bc->is_sub = true;
            bc->on_push = on_push;
        }
        if (delta > 0)
            bc->sub_count += ps[k].count;
        else
            bc->sub_count -= bc->sub_count < ps[k].count ? bc->sub_count : ps[k].count;
        bc = frag_conn(f, b, c);
        if (!bc) continue;
        size_t before = buf_used(&bc->out);
        buf_append_header(&bc->out, '*', 1 + (uint64_t)ps[k].count);
        buf_append_bulk(&bc->out, verb, strlen(verb));
        buf_append(&bc->out, buf_start(&ps[k].names), buf_used(&ps[k].names));
        bconn_push(bc, f, buf_used(&bc->out) - before);
    }
    req_release(r);
}

static struct subs *subs_get(client *c) {
    if (!c->subs) c->subs = calloc(1, sizeof *c->subs);
    return c->subs;
}

static per_server *parts_new(const wpool *p) {
    return calloc(p->server_count ? p->server_count : 1, sizeof(per_server));
}

static void parts_free(per_server *ps, const wpool *p) {
    for (size_t k = 0; k < p->server_count; k++) buf_free(&ps[k].names);
    free(ps);
}

static bool parts_add(per_server *ps, size_t k, const char *name, size_t len) {
    buf_append_bulk(&ps[k].names, name, len);
    ps[k].count++;
    return !ps[k].names.is_oom;
}

static void subscribe(client *c, const resp_msg *m, family fam) {
    wpool *p = c->pool;
    if (m->argc < 2) {
        session_arity_error(c, &m->argv[0]);
        return;
    }
    if (p->live_count == 0) {
        reply_no_server(c);
        return;
    }
    struct subs *s = subs_get(c);
    per_server *ps = parts_new(p);
    if (!s || !ps) {
        free(ps);
        reply_oom(c);
        return;
    }
    buf out = {0};
    bool is_ok = true;
    for (size_t i = 1; is_ok && i < m->argc; i++) {
        const resp_arg *a = &m->argv[i];
        backend *b = fam == FAM_PATTERN ? NULL : pool_pick(p, a->ptr, a->len);
        int added = set_add(family_set(s, fam), a->ptr, a->len, b ? b->index : UINT32_MAX);
        if (added < 0) is_ok = false;
        if (added > 0 && b) is_ok = parts_add(ps, b->index, a->ptr, a->len);
        for (size_t k = 0; added > 0 && !b && k < p->server_count; k++)
            if (!p->backends[k].is_ejected) is_ok &= parts_add(ps, k, a->ptr, a->len);
        confirm(&out, sub_word[fam], a->ptr, a->len, family_count(s, fam));
    }
    if (!is_ok) {
        buf_free(&out);
        parts_free(ps, p);
        reply_oom(c);
        return;
    }
    send_parts(c, ps, cmd_word[fam], &out, 1);
    parts_free(ps, p);
}

/* Drops e from the client's set and from its servers' part. */
static bool unsub_one(struct subs *s, family fam, per_server *ps, const wpool *p,
                      name_slot *e, buf *out) {
    bool is_ok = true;
    if (e->backend != UINT32_MAX && e->backend < p->server_count)
        is_ok = parts_add(ps, e->backend, e->name, e->len);
    for (size_t k = 0; e->backend == UINT32_MAX && k < p->server_count; k++)
        is_ok &= parts_add(ps, k, e->name, e->len);
    name_slot copy = *e;
    copy.name = malloc(e->len ? e->len : 1);
    if (!copy.name) return false;
    memcpy(copy.name, e->name, e->len);
    set_remove(family_set(s, fam), e);
    confirm(out, unsub_word[fam], copy.name, copy.len, family_count(s, fam));
    free(copy.name);
    return is_ok;
}

static void unsubscribe(client *c, const resp_msg *m, family fam) {
    wpool *p = c->pool;
    struct subs *s = subs_get(c);
    per_server *ps = parts_new(p);
    if (!s || !ps) {
        free(ps);
        reply_oom(c);
        return;
    }
    name_set *set = family_set(s, fam);
    buf out = {0};
    bool is_ok = true;
    if (m->argc == 1) {
        if (set->count == 0) confirm(&out, unsub_word[fam], NULL, 0, family_count(s, fam));
        /* Every slot before i is empty by then: a removal only moves
         * entries back into the slot just emptied, so i is looked at again. */
        for (size_t i = 0; is_ok && set->count && i < set->cap;) {
            if (set->slots[i].name)
                is_ok = unsub_one(s, fam, ps, p, &set->slots[i], &out);
            else
                i++;
        }
    }
    for (size_t i = 1; is_ok && i < m->argc; i++) {
        const resp_arg *a = &m->argv[i];
        name_slot *e = set_find(set, a->ptr, a->len, name_hash(a->ptr, a->len));
        if (e)
            is_ok = unsub_one(s, fam, ps, p, e, &out);
        else
            confirm(&out, unsub_word[fam], a->ptr, a->len, family_count(s, fam));
    }
    if (!is_ok) {
        buf_free(&out);
        parts_free(ps, p);
        reply_oom(c);
        return;
    }
    /* Only servers where this client subscribed have its names. */
    for (size_t k = 0; k < p->server_count; k++) {
        const bconn *bc = held_conn_find(c, &p->backends[k]);
        if (ps[k].count && (!bc || !bc->is_sub)) {
            buf_free(&ps[k].names);
            ps[k].count = 0;
        }
    }
    send_parts(c, ps, uncmd_word[fam], &out, -1);
    parts_free(ps, p);
}

void pubsub_command(client *c, const cmd_spec *spec, const resp_msg *m) {
    bool is_shard =
        strcmp(spec->name, "ssubscribe") == 0 || strcmp(spec->name, "sunsubscribe") == 0;
    switch (spec->kind) {
    case CK_SUBSCRIBE:
        subscribe(c, m, is_shard ? FAM_SHARD : FAM_CHANNEL);
        return;
    case CK_PSUBSCRIBE:
        subscribe(c, m, FAM_PATTERN);
        return;
    case CK_UNSUBSCRIBE:
        unsubscribe(c, m, is_shard ? FAM_SHARD : FAM_CHANNEL);
        return;
    case CK_PUNSUBSCRIBE:
        unsubscribe(c, m, FAM_PATTERN);
        return;
    default:
        return;
    }
}

bool pubsub_allows(const cmd_spec *spec) {
    switch (spec->kind) {
    case CK_SUBSCRIBE:
    case CK_PSUBSCRIBE:
    case CK_UNSUBSCRIBE:
    case CK_PUNSUBSCRIBE:
    case CK_PING:
    case CK_QUIT:
    case CK_RESET:
        return true;
    default:
        return false;
    }
}

void pubsub_refuse(client *c, const cmd_spec *spec) {
    buf b = {0};
    buf_append_str(&b, "-ERR Can't execute '");
    buf_append_str(&b, spec->name);
    buf_append_str(&b, "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                       "allowed in this context\r\n");
    client_reply_buf(c, &b);
}

/* PING in subscriber mode answers as Redis does there: ["pong", msg]. */
void pubsub_ping(client *c, const resp_msg *m) {
    if (m->argc > 2) {
        session_arity_error(c, &m->argv[0]);
        return;
    }
    buf b = {0};
    buf_append_header(&b, '*', 2);
    buf_append_bulk(&b, "pong", 4);
    if (m->argc == 2)
        buf_append_bulk(&b, m->argv[1].ptr, m->argv[1].len);
    else
        buf_append_bulk(&b, "", 0);
    client_reply_buf(c, &b);
}

void pubsub_check(client *c) {
    if (!pubsub_count(c)) return;
    for (const bconn *bc = c->held; bc; bc = bc->owner_next)
        if (bc->is_sub && bc->sub_count && bc->state == BC_IDLE) {
            /* Its subscriptions are gone with the connection: the client
             * is closed, and subscribes again when it reconnects. */
            client_reply(c, "", 0, true);
            return;
        }
}

void pubsub_release(client *c) {
    if (!c->subs) return;
    set_free(&c->subs->channels);
    set_free(&c->subs->patterns);
    set_free(&c->subs->shards);
    free(c->subs);
    c->subs = NULL;
}
