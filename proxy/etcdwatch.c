/*
 * etcdwatch.c - a watch: POST /v3/watch is one long response, a JSON object
 * per message, read through libcurl's multi interface so the caller can
 * wait with a timeout. When the stream's endpoint fails (the stream ends or
 * breaks, etcd reports no leader, or the endpoint stops answering a status
 * probe after a silence) the watch opens again on the next endpoint.
 *
 * Invariant: next_rev is one past the newest event delivered (or the start
 * asked for), every reopening asks for next_rev, and every event below it is
 * dropped: across any number of reopenings each change is delivered once,
 * in order. next_rev moves only on events: a message's header revision is
 * not a promise that everything below it was sent (etcd 3.4 catching a
 * watcher up sends its current revision with the first 1000 revisions).
 */
#define _POSIX_C_SOURCE 200809L
#include "etcdint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct etcd_watch {
    etcd *e;
    json_t *create; /* the create_request without its start_revision */
    int64_t next_rev; /* 0: from now, until the first creation says when */
    bool is_created_delivered;
    bool is_reauthed; /* since the stream last delivered something */
    int final_rc;     /* not ETCD_OK: the watch is over */
    int64_t compact_revision; /* final_rc ETCD_ECOMPACTED: the oldest left */
    CURLM *multi;
    /* The stream: open when `stream` is in multi; done when it ended (its
     * remaining messages are still read before it is left). */
    CURL *stream;
    bool is_open;
    bool is_done;
    CURLcode done_code;
    struct curl_slist *headers;
    char *request; /* the stream's body, which curl reads from here */
    size_t endpoint;
    etcd_body buf;
    etcd_framer framer;
    int64_t heard_ms; /* when the stream last delivered a byte */
    char curl_err[CURL_ERROR_SIZE];
    /* The status probe of a silent stream's endpoint. */
    CURL *probe;
    bool is_probing;
    struct curl_slist *probe_headers;
    etcd_body probe_buf;
    char probe_err[CURL_ERROR_SIZE];
    /* Endpoints failed in a row, and why; after a whole round the caller is
     * told (ETCD_EUNAVAILABLE) and the next round waits until retry_ms. */
    size_t failures;
    int64_t retry_ms;
    char tried[ETCD_ERR_MAX - 128];
    char err[ETCD_ERR_MAX];
};

/* Waiting between rounds over every endpoint, so a cluster that is down
 * costs a few requests a second, not a busy loop. */
#define WATCH_RETRY_MS 250

int etcd_watch_open(etcd *e, const void *key, size_t key_len, bool is_prefix,
                    int64_t start_revision, etcd_watch **out) {
    if (!e || !out || (!key && key_len) || (key_len == 0 && !is_prefix) || start_revision < 0 ||
        start_revision == INT64_MAX)
        return ETCD_EINVAL;
    etcd_watch *w = calloc(1, sizeof *w);
    if (!w) return ETCD_ENOMEM;
    w->e = e;
    w->next_rev = start_revision;
    w->endpoint = e->current;
    w->buf.max = w->probe_buf.max = e->max_response_bytes;
    w->create = json_object();
    w->multi = curl_multi_init();
    w->stream = curl_easy_init();
    w->probe = curl_easy_init();
    bool is_ok = w->create && w->multi && w->stream && w->probe;
    if (is_ok && is_prefix && key_len == 0) {
        is_ok = !json_object_set_new(w->create, "key", etcd_json_bytes("", 1)) &&
                !json_object_set_new(w->create, "range_end", etcd_json_bytes("", 1));
    } else if (is_ok) {
        is_ok = !json_object_set_new(w->create, "key", etcd_json_bytes(key, key_len));
        char *end = is_ok && is_prefix ? malloc(key_len) : NULL;
        if (end) {
            size_t end_len = etcd_prefix_end(key, key_len, end);
            is_ok = !json_object_set_new(w->create, "range_end", etcd_json_bytes(end, end_len));
            free(end);
        } else if (is_prefix) {
            is_ok = false;
        }
    }
    if (!is_ok) {
        etcd_watch_close(w);
        return ETCD_ENOMEM;
    }
    *out = w;
    return ETCD_OK;
}

int64_t etcd_watch_revision(const etcd_watch *w) { return w->next_rev; }

const char *etcd_watch_errmsg(const etcd_watch *w) { return w ? w->err : "no watch"; }

static void stop_probe(etcd_watch *w) {
    if (!w->is_probing) return;
    curl_multi_remove_handle(w->multi, w->probe);
    curl_slist_free_all(w->probe_headers);
    w->probe_headers = NULL;
    w->is_probing = false;
}

/* Leaves the stream: what it held unread is dropped with it (every event
 * there is asked for again from next_rev). */
static void close_stream(etcd_watch *w) {
    stop_probe(w);
    if (w->is_open) curl_multi_remove_handle(w->multi, w->stream);
    curl_slist_free_all(w->headers);
    w->headers = NULL;
    free(w->request);
    w->request = NULL;
    w->is_open = w->is_done = false;
    w->buf.len = w->buf.start = 0;
    w->framer = (etcd_framer){0};
}

void etcd_watch_close(etcd_watch *w) {
    if (!w) return;
    close_stream(w);
    if (w->stream) curl_easy_cleanup(w->stream);
    if (w->probe) curl_easy_cleanup(w->probe);
    if (w->multi) curl_multi_cleanup(w->multi);
    etcd_body_free(&w->buf);
    etcd_body_free(&w->probe_buf);
    json_decref(w->create);
    free(w);
}

/* The endpoint failed for `why`: the stream is left and the next endpoint
 * is tried. */
static void endpoint_failed(etcd_watch *w, const char *why) {
    const char *url = w->e->endpoints[w->endpoint];
    etcd_appendf(w->tried, sizeof w->tried, "%s%s: %s", w->tried[0] ? "; " : "", url, why);
    etcd_logf(w->e, "etcd: watch left %s (%s); reopening from revision %lld", url, why,
              (long long)w->next_rev);
    close_stream(w);
    w->endpoint = (w->endpoint + 1) % w->e->endpoint_count;
    w->failures++;
    w->is_reauthed = false;
}

static int finish(etcd_watch *w, int rc, const char *fmt, const char *detail) {
    close_stream(w);
    w->final_rc = rc;
    /* Composed at full length, then cut to fit: a long detail is meant to
     * be truncated, not to draw a truncation warning. */
    char text[sizeof w->err + 64];
    snprintf(text, sizeof text, fmt, detail);
    snprintf(w->err, sizeof w->err, "%.*s", (int)(sizeof w->err - 1), text);
    return rc;
}

/* Opens the stream at w->endpoint from next_rev. Returns ETCD_OK (also
 * when the endpoint failed: endpoint_failed moved on) or a final error. */
static int open_stream(etcd_watch *w) {
    etcd *e = w->e;
    char why[ETCD_ERR_MAX];
    int rc = etcd_token_ensure(e, w->endpoint, why, sizeof why);
    if (rc == ETCD_EUNAVAILABLE) {
        endpoint_failed(w, why);
        return ETCD_OK;
    }
    if (rc != ETCD_OK) return finish(w, rc, "watch: %s", why);
    json_t *start = w->next_rev ? json_sprintf("%lld", (long long)w->next_rev) : NULL;
    if (w->next_rev && (!start || json_object_set_new(w->create, "start_revision", start)))
        return finish(w, ETCD_ENOMEM, "watch: %s", "out of memory");
    if (!w->next_rev) json_object_del(w->create, "start_revision");
    json_t *req = json_pack("{s:O}", "create_request", w->create);
    w->request = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!w->request ||
        etcd_request_setup(e, w->stream, w->endpoint, "/v3/watch", w->request, true,
                           &w->headers, &w->buf, w->curl_err) != ETCD_OK ||
        curl_multi_add_handle(w->multi, w->stream) != CURLM_OK)
        return finish(w, ETCD_ENOMEM, "watch: %s", "out of memory");
    w->is_open = true;
    w->heard_ms = etcd_now_ms();
    etcd_logf(e, "etcd: watch at %s from revision %lld", e->endpoints[w->endpoint],
              (long long)w->next_rev);
    return ETCD_OK;
}

static bool contains(const char *s, const char *what) { return s && strstr(s, what) != NULL; }

/* An error etcd reported on the stream: judged like a unary call's. */
static int stream_error(etcd_watch *w, long status, int code, const char *msg) {
    int rc = ETCD_EREFUSED;
    etcd_verdict v = etcd_judge(w->e, status, code, msg, &rc);
    if (v == ETCD_VERDICT_REAUTH && !w->is_reauthed) {
        etcd_logf(w->e, "etcd: watch at %s: token refused (%s): authenticating again",
                  w->e->endpoints[w->endpoint], msg);
        free(w->e->token);
        w->e->token = NULL;
        close_stream(w);
        w->is_reauthed = true;
        return ETCD_OK;
    }
    if (v == ETCD_VERDICT_NEXT) {
        endpoint_failed(w, msg);
        return ETCD_OK;
    }
    return finish(w, v == ETCD_VERDICT_REAUTH ? ETCD_EAUTH : rc, "watch: %s", msg);
}

/* Drops events already delivered; checks the rest are in order. Returns
 * ETCD_OK or ETCD_EPROTO. */
static int keep_new_events(etcd_watch *w, etcd_watch_batch *b) {
    size_t kept = 0;
    int64_t last = w->next_rev;
    for (size_t i = 0; i < b->event_count; i++) {
        etcd_event *ev = &b->events[i];
        int64_t rev = ev->kv.mod_revision;
        if (rev < w->next_rev) {
            free(ev->kv.key);
            free(ev->kv.value);
            continue;
        }
        /* One revision's events come together; a later message never goes
         * back, and INT64_MAX has no revision after it to resume from. */
        if (rev < last || rev == INT64_MAX || rev == 0) {
            for (size_t j = i; j < b->event_count; j++) {
                free(b->events[j].kv.key);
                free(b->events[j].kv.value);
            }
            b->event_count = kept;
            return ETCD_EPROTO;
        }
        last = rev;
        b->events[kept++] = *ev;
    }
    b->event_count = kept;
    if (kept) w->next_rev = last + 1;
    return ETCD_OK;
}

/* One message of the stream. Returns 1 with *out to deliver, 0 to read on
 * (nothing to deliver, or the stream was left), or a final error. */
static int take_message(etcd_watch *w, const char *msg, size_t len, etcd_watch_batch *out) {
    etcd_watch_batch b;
    const char *why = NULL;
    int rc = etcd_parse_watch(msg, len, &b, &why);
    if (rc == ETCD_EREFUSED) {
        int code = 0;
        char text[512];
        etcd_parse_error(msg, len, &code, text, sizeof text);
        return stream_error(w, 200, code, text);
    }
    if (rc == ETCD_ENOMEM) return finish(w, rc, "watch: %s", "out of memory");
    if (rc != ETCD_OK) {
        endpoint_failed(w, why);
        return 0;
    }
    if (b.is_canceled) {
        if (b.compact_revision > 0) {
            char text[128];
            snprintf(text, sizeof text, "revision %lld is compacted (oldest left: %lld)",
                     (long long)w->next_rev, (long long)b.compact_revision);
            w->compact_revision = b.compact_revision;
            etcd_watch_batch_free(&b);
            return finish(w, ETCD_ECOMPACTED, "watch: %s", text);
        }
        /* etcd's cancel_reason is "rpc error: code = X desc = message". */
        const char *reason = b.cancel_reason ? b.cancel_reason : "canceled";
        int code = contains(reason, "code = Unauthenticated") ? 16
                   : contains(reason, "code = PermissionDenied") ? 7
                   : contains(reason, "code = Unavailable")      ? 14
                                                                 : 0;
        rc = code ? stream_error(w, 200, code, reason)
                  : finish(w, ETCD_ECANCELED, "watch: canceled by etcd: %s", reason);
        etcd_watch_batch_free(&b);
        return rc < 0 ? rc : 0;
    }
    w->failures = 0;
    w->tried[0] = '\0';
    w->is_reauthed = false;
    if (b.is_created) {
        if (w->next_rev == 0) {
            if (b.revision == INT64_MAX) {
                etcd_watch_batch_free(&b);
                endpoint_failed(w, "a creation at the last revision there is");
                return 0;
            }
            w->next_rev = b.revision + 1;
        }
        if (w->is_created_delivered) {
            etcd_watch_batch_free(&b);
            return 0;
        }
        w->is_created_delivered = true;
        *out = b;
        return 1;
    }
    bool had_events = b.event_count > 0;
    if (keep_new_events(w, &b) != ETCD_OK) {
        etcd_watch_batch_free(&b);
        endpoint_failed(w, "events out of revision order");
        return 0;
    }
    if (had_events && b.event_count == 0) {
        etcd_watch_batch_free(&b);
        return 0;
    }
    *out = b;
    return 1;
}

/* The stream ended (its unread messages are read first). */
static void stream_ended(etcd_watch *w) {
    long status = 0;
    curl_easy_getinfo(w->stream, CURLINFO_RESPONSE_CODE, &status);
    const char *url = w->e->endpoints[w->endpoint];
    char why[ETCD_ERR_MAX];
    if (w->buf.is_too_big) {
        snprintf(why, sizeof why, "%s: a message over %zu bytes", url,
                 w->e->max_response_bytes);
        finish(w, ETCD_ETOOBIG, "watch: %s", why);
        return;
    }
    if (w->done_code != CURLE_OK) {
        snprintf(why, sizeof why, "%s",
                 w->curl_err[0] ? w->curl_err : curl_easy_strerror(w->done_code));
        endpoint_failed(w, why);
        return;
    }
    if (status != 200) {
        int code = 0;
        char text[512];
        if (etcd_parse_error(w->buf.data ? w->buf.data + w->buf.start : "",
                             w->buf.len - w->buf.start, &code, text, sizeof text) != ETCD_OK)
            snprintf(text, sizeof text, "HTTP %ld", status);
        stream_error(w, status, code, text);
        return;
    }
    endpoint_failed(w, "the stream ended");
}

/* The probe's answer: the endpoint is alive and has a leader, or it failed. */
static void probe_done(etcd_watch *w, CURLcode cc) {
    long status = 0;
    curl_easy_getinfo(w->probe, CURLINFO_RESPONSE_CODE, &status);
    stop_probe(w);
    uint64_t member = 0, leader = 0;
    if (cc == CURLE_OK && status == 200 &&
        etcd_parse_status(w->probe_buf.data, w->probe_buf.len, &member, &leader, NULL) ==
            ETCD_OK &&
        leader != 0) {
        w->heard_ms = etcd_now_ms();
        return;
    }
    char why[ETCD_ERR_MAX];
    if (cc != CURLE_OK)
        snprintf(why, sizeof why, "status probe: %s",
                 w->probe_err[0] ? w->probe_err : curl_easy_strerror(cc));
    else
        snprintf(why, sizeof why, "status probe: HTTP %ld%s", status,
                 status == 200 ? ", no leader" : "");
    endpoint_failed(w, why);
}

static void start_probe(etcd_watch *w) {
    if (etcd_request_setup(w->e, w->probe, w->endpoint, "/v3/maintenance/status", "{}", false,
                           &w->probe_headers, &w->probe_buf, w->probe_err) != ETCD_OK)
        return;
    if (curl_multi_add_handle(w->multi, w->probe) != CURLM_OK) {
        curl_slist_free_all(w->probe_headers);
        w->probe_headers = NULL;
        return;
    }
    w->is_probing = true;
}

/* Runs curl until `until_ms` or something happened; reads what finished. */
static int pump(etcd_watch *w, int64_t until_ms) {
    int64_t now = etcd_now_ms();
    size_t before = w->buf.len;
    int wait_ms = until_ms > now ? (int)(until_ms - now) : 0;
    if (w->is_open && w->e->watch_probe_ms > 0 && !w->is_probing) {
        int64_t probe_at = w->heard_ms + w->e->watch_probe_ms;
        if (now >= probe_at)
            start_probe(w);
        else if (probe_at - now < wait_ms)
            wait_ms = (int)(probe_at - now);
    }
    int running = 0;
    if (curl_multi_poll(w->multi, NULL, 0, wait_ms, NULL) != CURLM_OK ||
        curl_multi_perform(w->multi, &running) != CURLM_OK)
        return finish(w, ETCD_ENOMEM, "watch: %s", "libcurl failed");
    if (w->buf.len != before) w->heard_ms = etcd_now_ms();
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) continue;
        if (m->easy_handle == w->probe) {
            probe_done(w, m->data.result);
        } else if (m->easy_handle == w->stream && w->is_open) {
            curl_multi_remove_handle(w->multi, w->stream);
            w->is_open = false;
            w->is_done = true;
            w->done_code = m->data.result;
        }
    }
    return ETCD_OK;
}

/* The stream's HTTP status: 0 until its headers came. */
static long stream_status(etcd_watch *w) {
    long status = 0;
    curl_easy_getinfo(w->stream, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* The watch is over: its error again, and the compaction it ended on. */
static int over(etcd_watch *w, etcd_watch_batch *out) {
    if (w->final_rc == ETCD_ECOMPACTED)
        *out = (etcd_watch_batch){.is_canceled = true, .compact_revision = w->compact_revision};
    return w->final_rc;
}

int etcd_watch_next(etcd_watch *w, int timeout_ms, etcd_watch_batch *out) {
    if (!w || !out || timeout_ms < 0) return ETCD_EINVAL;
    if (w->final_rc != ETCD_OK) return over(w, out);
    w->err[0] = '\0';
    int64_t deadline = etcd_now_ms() + timeout_ms;
    for (bool has_pumped = false;;) {
        /* Messages already here first, those of an ended stream too; an
         * answer other than 200 is judged whole, once it ended. */
        while ((w->is_open || w->is_done) && w->buf.len > w->buf.start &&
               stream_status(w) == 200) {
            size_t start, len;
            const char *data = w->buf.data + w->buf.start;
            int fr = etcd_framer_next(&w->framer, data, w->buf.len - w->buf.start, &start, &len);
            if (fr == 0) break;
            if (fr < 0) {
                endpoint_failed(w, "the stream is not JSON messages");
                break;
            }
            w->buf.start += start + len;
            int rc = take_message(w, data + start, len, out);
            etcd_body_compact(&w->buf);
            if (rc == 1) return 1;
            if (rc < 0) return over(w, out);
        }
        if (w->is_done) stream_ended(w);
        if (w->final_rc != ETCD_OK) return over(w, out);
        if (w->failures >= w->e->endpoint_count) {
            snprintf(w->err, sizeof w->err, "watch: no endpoint answered: %s", w->tried);
            w->failures = 0;
            w->tried[0] = '\0';
            w->retry_ms = etcd_now_ms() + WATCH_RETRY_MS;
            return ETCD_EUNAVAILABLE;
        }
        int64_t now = etcd_now_ms();
        if (!w->is_open && now >= w->retry_ms) {
            int rc = open_stream(w);
            if (rc != ETCD_OK) return over(w, out);
            continue;
        }
        /* Once past the deadline, curl still runs once, so a caller that
         * never waits (timeout 0) still reads. */
        if (has_pumped && now >= deadline) return 0;
        int64_t until = deadline;
        if (!w->is_open && w->retry_ms < until) until = w->retry_ms;
        int rc = pump(w, until);
        if (rc != ETCD_OK) return rc;
        has_pumped = true;
    }
}
