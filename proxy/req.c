/*
 * req.c - requests, their fragments, and replies in request order.
 *
 * A command becomes a req on its client's queue; each server it needs gets
 * one frag of it (route.c), queued on a server connection (server.c). A
 * server's reply comes back through frag_deliver; when no fragment is
 * pending the request is done (merge.c joins split replies), and done
 * requests at the head of the queue move their replies to the client's
 * output. Nothing here does I/O: output is written by client.c when the
 * worker flushes the clients that client_schedule listed.
 *
 * Invariant: only the head of a client's queue may put bytes into its
 * output, so replies leave in request order whatever order servers answer.
 */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A few freed requests are kept per worker for the next ones: one request
 * a command makes malloc and free the busiest calls of a pipelined load.
 * Not under AddressSanitizer, which must see every request freed. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHASH_PROXY_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(CHASH_PROXY_ASAN)
#define REQ_SPARES 0
#else
#define REQ_SPARES 1
#endif
#define REQ_SPARE_MAX 256u

static void req_free(req *r) {
    for (uint32_t i = 0; i < r->frag_count; i++) buf_free(&r->frags[i].reply);
    if (r->frags != &r->one) free(r->frags);
    free(r->key_frag);
    free(r->key_off);
    buf_free(&r->keys);
    buf_free(&r->reply);
    if (r->fo) {
        buf_free(&r->fo->line);
        buf_free(&r->fo->values);
        buf_free(&r->fo->error);
        free(r->fo);
    }
    worker *w = r->w;
    if (REQ_SPARES && w->spare_count < REQ_SPARE_MAX) {
        r->next = w->spare;
        w->spare = r;
        w->spare_count++;
        return;
    }
    free(r);
}

void req_free_spares(worker *w) {
    while (w->spare) {
        req *r = w->spare;
        w->spare = r->next;
        free(r);
    }
    w->spare_count = 0;
}

req *req_new(client *c, req_kind kind, uint32_t frag_count) {
    worker *w = c->w;
    req *r = w->spare;
    if (r) {
        w->spare = r->next;
        w->spare_count--;
        memset(r, 0, sizeof *r);
    } else {
        r = calloc(1, sizeof *r);
        if (!r) return NULL;
    }
    r->w = w;
    if (frag_count > 1) {
        r->frags = calloc(frag_count, sizeof *r->frags);
        if (!r->frags) {
            r->frags = &r->one;
            req_free(r);
            return NULL;
        }
    } else {
        r->frags = &r->one;
    }
    r->frag_count = frag_count;
    r->frag_pending = frag_count + 1; /* the dispatch guard */
    for (uint32_t i = 0; i < frag_count; i++) r->frags[i].r = r;
    r->kind = kind;
    r->c = c;
    r->is_noreply = client_is_muted(c); /* CLIENT REPLY OFF or SKIP */
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->depth++;
    return r;
}

void client_schedule(client *c) {
    if (c->in_flush || c->is_closed) return;
    c->in_flush = true;
    c->next_flush = c->w->flush_clients;
    c->w->flush_clients = c;
}

/* Moves the replies of finished requests at the head of the queue to out. */
static void client_advance(client *c) {
    while (c->head && c->head->is_done) {
        req *r = c->head;
        if (!r->is_noreply) buf_append(&c->out, buf_start(&r->reply), buf_used(&r->reply));
        c->head = r->next;
        if (!c->head) c->tail = NULL;
        c->depth--;
        c->held_bytes -= r->held_bytes;
        req_free(r);
    }
    client_schedule(c);
}

void req_release(req *r) {
    if (--r->frag_pending) return;
    client *c = r->c;
    if (!c) {
        req_free(r);
        return;
    }
    if (r->kind != REQ_FORWARD && r->kind != REQ_LOCAL) merge_reply(r);
    r->is_done = true;
    if (r == c->head) client_advance(c);
}

/* A reply the proxy made that is an error: a Redis error line, or
 * memcached's ERROR, CLIENT_ERROR or SERVER_ERROR. */
static bool is_error_reply(const client *c, const char *data, size_t len) {
    if (c->pool->cf->redis) return len > 0 && data[0] == '-';
    return (len >= 5 && memcmp(data, "ERROR", 5) == 0) ||
           (len >= 12 && (memcmp(data, "CLIENT_ERROR", 12) == 0 ||
                          memcmp(data, "SERVER_ERROR", 12) == 0));
}

void client_reply(client *c, const char *data, size_t len, bool then_close) {
    if (is_error_reply(c, data, len)) stat_add(&c->pool->st.errors_local, 1);
    if (then_close) c->is_draining = true;
    if (!c->head) {
        if (!client_is_muted(c)) buf_append(&c->out, data, len);
        client_schedule(c);
        return;
    }
    req *r = req_new(c, REQ_LOCAL, 0);
    if (!r) {
        c->out.is_oom = true; /* the flush closes the client */
        client_schedule(c);
        return;
    }
    buf_append(&r->reply, data, len);
    r->frag_pending = 0;
    r->is_done = true;
}

void client_reply_str(client *c, const char *s) { client_reply(c, s, strlen(s), false); }

void client_push(client *c, const char *data, size_t len) {
    if (!c->head) {
        buf_append(&c->out, data, len);
        client_schedule(c);
        return;
    }
    req *r = req_new(c, REQ_LOCAL, 0);
    if (!r) {
        c->out.is_oom = true;
        client_schedule(c);
        return;
    }
    r->is_noreply = false;
    buf_append(&r->reply, data, len);
    r->frag_pending = 0;
    r->is_done = true;
}

void client_reply_buf(client *c, buf *b) {
    if (b->is_oom)
        client_reply_str(c, c->pool->cf->redis ? "-ERR out of memory\r\n"
                                               : "SERVER_ERROR out of memory\r\n");
    else
        client_reply(c, buf_start(b), buf_used(b), false);
    buf_free(b);
}

void client_reply_text(client *c, buf *text) {
    buf b = {0};
    buf_append_header(&b, '$', buf_used(text));
    buf_append(&b, buf_start(text), buf_used(text));
    buf_append(&b, "\r\n", 2);
    b.is_oom |= text->is_oom;
    buf_free(text);
    client_reply_buf(c, &b);
}

void client_drop_requests(client *c) {
    req *r = c->head;
    while (r) {
        req *next = r->next;
        if (r->frag_pending == 0)
            req_free(r);
        else
            r->c = NULL;
        r = next;
    }
    c->head = c->tail = NULL;
    c->depth = 0;
}

/* Counts reply bytes the proxy holds for c; past max_client_buffer the
 * client is closed at the next flush (its requests still drain from the
 * servers, and their replies are dropped). */
static void client_hold(client *c, req *r, size_t len) {
    r->held_bytes += len;
    c->held_bytes += len;
}

static void client_check_held(client *c) {
    if (c->is_over_limit || c->held_bytes + buf_used(&c->out) <= c->pool->cf->max_client_buffer)
        return;
    c->is_over_limit = true;
    client_schedule(c);
}

void frag_deliver(frag *f, const char *data, size_t len) {
    free(f->kept);
    f->kept = NULL;
    if (f->on_shared) {
        f->on_shared = false;
        client *owner = f->r ? f->r->c : NULL;
        /* The client's held connections may now be written (client_flush). */
        if (owner && --owner->shared_inflight == 0 && owner->has_corked)
            client_schedule(owner);
    }
    if (f->on_reply) {
        f->on_reply(f, data, len);
        return;
    }
    if (f->is_swallowed) {
        if (len > 0 && data[0] == '-' && !f->is_late)
            proxy_log(LOG_WARN, "server answered an injected AUTH/SELECT with %.*s",
                      (int)(len > 2 ? len - 2 : len), data);
        buf_free(&f->reply);
        free(f);
        return;
    }
    req *r = f->r;
    client *c = r->c;
    if (c && !c->is_over_limit) {
        if (r->kind == REQ_FORWARD) {
            if (!r->is_noreply) {
                /* The head's reply can go straight out: everything before
                 * it has been written to out already. */
                if (r == c->head) {
                    buf_append(&c->out, data, len);
                    client_schedule(c);
                } else {
                    buf_append(&r->reply, data, len);
                    client_hold(c, r, len);
                }
            }
        } else {
            buf_append(&f->reply, data, len);
            client_hold(c, r, len);
        }
        client_check_held(c);
    }
    req_release(r);
}

void frag_fail(frag *f, bool is_redis, const char *reason) {
    char text[256];
    /* Cut to fit, never the line's end. */
    int n = snprintf(text, sizeof text, is_redis ? "-ERR %.230s\r\n" : "SERVER_ERROR %.230s\r\n",
                     reason);
    f->failed = true;
    if (f->r && f->r->c) stat_add(&f->r->c->pool->st.forward_error, 1);
    frag_deliver(f, text, (size_t)n);
}
