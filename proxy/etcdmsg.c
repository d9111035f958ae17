/*
 * etcdmsg.c - etcd 3.4's JSON gateway messages into structs: the pure half
 * of the etcd client (etcd.h's etcd_parse_*, the watch stream's framer,
 * base64 and prefix ends). No I/O, no globals: what etcd.c and etcdwatch.c
 * receive goes through here, and fuzz_etcd.c feeds it anything.
 *
 * Invariant: a parse either fills *out completely or leaves it zeroed with
 * nothing allocated. The gateway writes int64 fields as decimal strings and
 * leaves out zero values ("value" of an empty value, "type" of a PUT,
 * "succeeded" when false): a missing field reads as zero, never as an error.
 */
#include "etcd.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- base64 ----------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t etcd_base64_encode(const void *data, size_t n, char *out) {
    const unsigned char *p = data;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long long etcd_base64_decode(const char *text, size_t n, void *out) {
    unsigned char *o = out;
    size_t w = 0;
    if (n % 4 != 0) return -1;
    for (size_t i = 0; i < n; i += 4) {
        bool is_last = i + 4 == n;
        int v[4];
        size_t pad = 0;
        for (size_t j = 0; j < 4; j++) {
            char c = text[i + j];
            /* '=' only as the last one or two characters of the text. */
            if (c == '=' && is_last && j >= 2 && (j == 3 || text[i + 3] == '=')) {
                v[j] = 0;
                pad++;
                continue;
            }
            v[j] = b64_value(c);
            if (v[j] < 0) return -1;
        }
        uint32_t bits = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                        (uint32_t)v[3];
        /* Bits under the padding must be zero, so each byte string has one
         * spelling and a re-encoding gives back the same text. */
        if ((pad == 1 && (bits & 0xff)) || (pad == 2 && (bits & 0xffff))) return -1;
        o[w++] = (unsigned char)(bits >> 16);
        if (pad < 2) o[w++] = (unsigned char)(bits >> 8);
        if (pad < 1) o[w++] = (unsigned char)bits;
    }
    return (long long)w;
}

size_t etcd_prefix_end(const void *prefix, size_t prefix_len, char *out) {
    const unsigned char *p = prefix;
    size_t i = prefix_len;
    while (i > 0 && p[i - 1] == 0xff) i--;
    if (i == 0) {
        out[0] = '\0';
        return 1;
    }
    memcpy(out, p, i);
    out[i - 1] = (char)(p[i - 1] + 1);
    return i;
}

/* ---- framing ---------------------------------------------------------- */

int etcd_framer_next(etcd_framer *f, const char *data, size_t n, size_t *start, size_t *len) {
    for (; f->pos < n; f->pos++) {
        char c = data[f->pos];
        if (f->depth == 0) {
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
            if (c != '{') return -1;
            f->start = f->pos;
            f->depth = 1;
            continue;
        }
        if (f->is_in_string) {
            if (f->is_escaped)
                f->is_escaped = false;
            else if (c == '\\')
                f->is_escaped = true;
            else if (c == '"')
                f->is_in_string = false;
            continue;
        }
        if (c == '"') {
            f->is_in_string = true;
        } else if (c == '{' || c == '[') {
            f->depth++;
        } else if (c == '}' || c == ']') {
            if (--f->depth == 0) {
                *start = f->start;
                *len = f->pos + 1 - f->start;
                *f = (etcd_framer){0};
                return 1;
            }
        }
    }
    return 0;
}

/* ---- fields ----------------------------------------------------------- */

/* The gateway's int64: a decimal string ("-" allowed) or a JSON integer. */
static bool read_int64(const json_t *v, int64_t *out) {
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (!json_is_string(v)) return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    bool is_negative = n > 0 && s[0] == '-';
    size_t i = is_negative ? 1 : 0;
    if (i == n || n - i > 19) return false;
    uint64_t x = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (x > (uint64_t)INT64_MAX + is_negative) return false;
    *out = is_negative ? (int64_t)(0 - x) : (int64_t)x;
    return true;
}

/* A field that etcd never makes negative (revisions, versions, counts). */
static bool get_count(const json_t *obj, const char *name, int64_t *out) {
    const json_t *v = json_object_get(obj, name);
    *out = 0;
    if (!v) return true;
    return read_int64(v, out) && *out >= 0;
}

static bool get_int64(const json_t *obj, const char *name, int64_t *out) {
    const json_t *v = json_object_get(obj, name);
    *out = 0;
    return !v || read_int64(v, out);
}

/* Member ids are uint64: up to 20 digits. */
static bool get_uint64(const json_t *obj, const char *name, uint64_t *out) {
    const json_t *v = json_object_get(obj, name);
    *out = 0;
    if (!v) return true;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0) return false;
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    if (!json_is_string(v)) return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > 20) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return false;
        x = x * 10 + d;
    }
    *out = x;
    return true;
}

static bool get_bool(const json_t *obj, const char *name, bool *out) {
    const json_t *v = json_object_get(obj, name);
    *out = false;
    if (!v) return true;
    if (!json_is_boolean(v)) return false;
    *out = json_is_true(v);
    return true;
}

/* An object member that must be an object when present; NULL when absent,
 * and *is_bad when it is there but something else. */
static const json_t *get_object(const json_t *obj, const char *name, bool *is_bad) {
    const json_t *v = json_object_get(obj, name);
    if (v && !json_is_object(v)) *is_bad = true;
    return json_is_object(v) ? v : NULL;
}

/* Base64 bytes into a fresh NUL-terminated buffer; absent means empty. */
static int get_bytes(const json_t *obj, const char *name, char **out, size_t *out_len,
                     const char **why) {
    const json_t *v = json_object_get(obj, name);
    const char *text = "";
    size_t text_len = 0;
    *out = NULL;
    *out_len = 0;
    if (v) {
        if (!json_is_string(v)) {
            *why = "a key or value that is not a string";
            return ETCD_EPROTO;
        }
        text = json_string_value(v);
        text_len = json_string_length(v);
    }
    char *buf = malloc(text_len / 4 * 3 + 1);
    if (!buf) return ETCD_ENOMEM;
    long long n = etcd_base64_decode(text, text_len, buf);
    if (n < 0) {
        free(buf);
        *why = "a key or value that is not base64";
        return ETCD_EPROTO;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = (size_t)n;
    return ETCD_OK;
}

static void kv_free(etcd_kv *kv) {
    free(kv->key);
    free(kv->value);
    *kv = (etcd_kv){0};
}

static int parse_kv(const json_t *v, etcd_kv *kv, const char **why) {
    *kv = (etcd_kv){0};
    if (!json_is_object(v)) {
        *why = "a kv that is not an object";
        return ETCD_EPROTO;
    }
    if (!get_count(v, "create_revision", &kv->create_revision) ||
        !get_count(v, "mod_revision", &kv->mod_revision) ||
        !get_count(v, "version", &kv->version) || !get_count(v, "lease", &kv->lease)) {
        *why = "a kv revision, version or lease that is not a non-negative int64";
        return ETCD_EPROTO;
    }
    int rc = get_bytes(v, "key", &kv->key, &kv->key_len, why);
    if (rc == ETCD_OK) rc = get_bytes(v, "value", &kv->value, &kv->value_len, why);
    if (rc != ETCD_OK) kv_free(kv);
    return rc;
}

void etcd_kvs_free(etcd_kvs *r) {
    if (!r) return;
    for (size_t i = 0; i < r->kv_count; i++) kv_free(&r->kvs[i]);
    free(r->kvs);
    *r = (etcd_kvs){0};
}

void etcd_cas_result_free(etcd_cas_result *r) {
    if (!r) return;
    etcd_kvs_free(&r->current);
    *r = (etcd_cas_result){0};
}

void etcd_watch_batch_free(etcd_watch_batch *b) {
    if (!b) return;
    for (size_t i = 0; i < b->event_count; i++) kv_free(&b->events[i].kv);
    free(b->events);
    free(b->cancel_reason);
    *b = (etcd_watch_batch){0};
}

/* header.revision of obj; a missing header or revision reads as 0 (etcd's
 * compaction notice has a header without one). */
static bool get_header_revision(const json_t *obj, int64_t *revision) {
    bool is_bad = false;
    const json_t *h = get_object(obj, "header", &is_bad);
    *revision = 0;
    if (is_bad) return false;
    return !h || get_count(h, "revision", revision);
}

/* The top-level object of a body, or NULL with *why. */
static json_t *load(const char *body, size_t len, const char **why) {
    json_error_t err;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        *why = "not JSON";
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *why = "not a JSON object";
        return NULL;
    }
    return root;
}

/* Lets a caller pass NULL for why: a sink on the caller's stack, so parses
 * on different threads share nothing. */
#define WHY_SINK              \
    const char *why_sink_ = NULL; \
    if (!why) why = &why_sink_

/* ---- range ------------------------------------------------------------ */

static int parse_range_object(const json_t *obj, etcd_kvs *out, const char **why) {
    *out = (etcd_kvs){0};
    if (!get_header_revision(obj, &out->revision) || !get_count(obj, "count", &out->count) ||
        !get_bool(obj, "more", &out->has_more)) {
        *out = (etcd_kvs){0};
        *why = "a bad header.revision, count or more";
        return ETCD_EPROTO;
    }
    const json_t *kvs = json_object_get(obj, "kvs");
    if (!kvs) return ETCD_OK;
    if (!json_is_array(kvs)) {
        *out = (etcd_kvs){0};
        *why = "kvs is not an array";
        return ETCD_EPROTO;
    }
    size_t n = json_array_size(kvs);
    if (n == 0) return ETCD_OK;
    out->kvs = calloc(n, sizeof *out->kvs);
    if (!out->kvs) {
        *out = (etcd_kvs){0};
        return ETCD_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = parse_kv(json_array_get(kvs, i), &out->kvs[i], why);
        if (rc != ETCD_OK) {
            etcd_kvs_free(out);
            return rc;
        }
        out->kv_count = i + 1;
    }
    return ETCD_OK;
}

int etcd_parse_range(const char *body, size_t len, etcd_kvs *out, const char **why) {
    WHY_SINK;
    *out = (etcd_kvs){0};
    json_t *root = load(body, len, why);
    if (!root) return ETCD_EPROTO;
    int rc = parse_range_object(root, out, why);
    json_decref(root);
    return rc;
}

int etcd_parse_header(const char *body, size_t len, int64_t *revision, int64_t *deleted,
                      const char **why) {
    WHY_SINK;
    int64_t rev = 0, del = 0;
    json_t *root = load(body, len, why);
    if (!root) return ETCD_EPROTO;
    bool is_ok = get_header_revision(root, &rev) && get_count(root, "deleted", &del);
    json_decref(root);
    if (!is_ok) {
        *why = "a bad header.revision or deleted";
        return ETCD_EPROTO;
    }
    if (revision) *revision = rev;
    if (deleted) *deleted = del;
    return ETCD_OK;
}

/* ---- txn -------------------------------------------------------------- */

int etcd_parse_txn_cas(const char *body, size_t len, etcd_cas_result *out, const char **why) {
    WHY_SINK;
    *out = (etcd_cas_result){0};
    json_t *root = load(body, len, why);
    if (!root) return ETCD_EPROTO;
    int rc = ETCD_EPROTO;
    if (!get_header_revision(root, &out->revision) ||
        !get_bool(root, "succeeded", &out->is_swapped)) {
        *why = "a bad header.revision or succeeded";
        goto done;
    }
    const json_t *responses = json_object_get(root, "responses");
    if (responses && !json_is_array(responses)) {
        *why = "responses is not an array";
        goto done;
    }
    if (out->is_swapped) {
        rc = ETCD_OK;
        goto done;
    }
    /* Our failure branch reads the compared key: its answer must be here. */
    const json_t *first = json_array_get(responses, 0);
    bool is_bad = !json_is_object(first);
    const json_t *range = is_bad ? NULL : get_object(first, "response_range", &is_bad);
    if (is_bad || !range) {
        *why = "a failed compare without the key's range";
        goto done;
    }
    rc = parse_range_object(range, &out->current, why);
done:
    json_decref(root);
    if (rc != ETCD_OK) *out = (etcd_cas_result){0};
    return rc;
}

int etcd_parse_txn(const char *body, size_t len, bool *is_succeeded, int64_t *revision,
                   const char **why) {
    WHY_SINK;
    int64_t rev = 0;
    bool is_ok_txn = false;
    json_t *root = load(body, len, why);
    if (!root) return ETCD_EPROTO;
    int rc = ETCD_EPROTO;
    const json_t *responses = json_object_get(root, "responses");
    if (!get_header_revision(root, &rev) || !get_bool(root, "succeeded", &is_ok_txn)) {
        *why = "a bad header.revision or succeeded";
    } else if (responses && !json_is_array(responses)) {
        *why = "responses is not an array";
    } else {
        rc = ETCD_OK;
        for (size_t i = 0; i < json_array_size(responses); i++)
            if (!json_is_object(json_array_get(responses, i))) {
                *why = "a response that is not an object";
                rc = ETCD_EPROTO;
            }
    }
    json_decref(root);
    if (rc != ETCD_OK) return rc;
    if (is_succeeded) *is_succeeded = is_ok_txn;
    if (revision) *revision = rev;
    return ETCD_OK;
}

/* ---- leases, auth, status --------------------------------------------- */

int etcd_parse_lease_grant(const char *body, size_t len, int64_t *lease_id, int64_t *ttl_s,
                           const char **why) {
    WHY_SINK;
    int64_t id = 0, ttl = 0;
    json_t *root = load(body, len, why);
    if (!root) return ETCD_EPROTO;
    bool is_ok = get_count(root, "ID", &id) && get_count(root, "TTL", &ttl);
    json_decref(root);
    if (!is_ok || id == 0) {
        *why = "no lease ID, or a bad ID or TTL";
        return ETCD_EPROTO;
    }
    *lease_id = id;
    if (ttl_s) *ttl_s = ttl;
    return ETCD_OK;
}

/* The object under "result" of a streamed answer; ETCD_EREFUSED when the
 * stream carries an error report instead. */
static int stream_result(const json_t *root, const json_t **result, const char **why) {
    if (json_object_get(root, "error")) {
        *why = "an error report";
        return ETCD_EREFUSED;
    }
    bool is_bad = false;
    *result = get_object(root, "result", &is_bad);
    if (!*result) {
        *why = "no result object";
        return ETCD_EPROTO;
    }
    return ETCD_OK;
}

int etcd_parse_lease_keepalive(const char *body, size_t len, int64_t *lease_id, int64_t *ttl_s,
                               const char **why) {
    WHY_SINK;
    int64_t id = 0, ttl = 0;
    const json_t *result = NULL;
    json_t *root = load(body, len, why);
    if (!root) return ETCD_EPROTO;
    int rc = stream_result(root, &result, why);
    if (rc == ETCD_OK && (!get_count(result, "ID", &id) || !get_count(result, "TTL", &ttl))) {
        *why = "a bad lease ID or TTL";
        rc = ETCD_EPROTO;
    }
    json_decref(root);
    if (rc != ETCD_OK) return rc;
    *lease_id = id;
    *ttl_s = ttl;
    return ETCD_OK;
}

/* A token goes into an HTTP header: printable ASCII only, bounded. */
#define ETCD_TOKEN_MAX 4096

int etcd_parse_auth(const char *body, size_t len, char **token, const char **why) {
    WHY_SINK;
    *token = NULL;
    json_t *root = load(body, len, why);
    if (!root) return ETCD_EPROTO;
    const json_t *t = json_object_get(root, "token");
    const char *s = json_is_string(t) ? json_string_value(t) : NULL;
    size_t n = s ? json_string_length(t) : 0;
    bool is_ok = n > 0 && n <= ETCD_TOKEN_MAX;
    for (size_t i = 0; is_ok && i < n; i++) is_ok = s[i] > 0x20 && s[i] < 0x7f;
    int rc = ETCD_EPROTO;
    if (!is_ok) {
        *why = "no token, or one that cannot go in a header";
    } else {
        *token = malloc(n + 1);
        rc = *token ? ETCD_OK : ETCD_ENOMEM;
        if (*token) memcpy(*token, s, n + 1);
    }
    json_decref(root);
    return rc;
}

int etcd_parse_status(const char *body, size_t len, uint64_t *member_id, uint64_t *leader_id,
                      const char **why) {
    WHY_SINK;
    uint64_t member = 0, leader = 0;
    bool is_bad = false;
    json_t *root = load(body, len, why);
    if (!root) return ETCD_EPROTO;
    const json_t *h = get_object(root, "header", &is_bad);
    bool is_ok = !is_bad && h && get_uint64(h, "member_id", &member) &&
                 get_uint64(root, "leader", &leader);
    json_decref(root);
    if (!is_ok) {
        *why = "no header.member_id, or a bad leader";
        return ETCD_EPROTO;
    }
    *member_id = member;
    *leader_id = leader;
    return ETCD_OK;
}

/* ---- watch ------------------------------------------------------------ */

static int parse_event(const json_t *v, etcd_event *ev, const char **why) {
    *ev = (etcd_event){0};
    if (!json_is_object(v)) {
        *why = "an event that is not an object";
        return ETCD_EPROTO;
    }
    const json_t *type = json_object_get(v, "type");
    if (!type || (json_is_string(type) && strcmp(json_string_value(type), "PUT") == 0) ||
        (json_is_integer(type) && json_integer_value(type) == 0)) {
        ev->type = ETCD_EVENT_PUT;
    } else if ((json_is_string(type) && strcmp(json_string_value(type), "DELETE") == 0) ||
               (json_is_integer(type) && json_integer_value(type) == 1)) {
        ev->type = ETCD_EVENT_DELETE;
    } else {
        *why = "an event type other than PUT or DELETE";
        return ETCD_EPROTO;
    }
    const json_t *kv = json_object_get(v, "kv");
    if (!kv) {
        *why = "an event without kv";
        return ETCD_EPROTO;
    }
    return parse_kv(kv, &ev->kv, why);
}

static int parse_watch_result(const json_t *r, etcd_watch_batch *out, const char **why) {
    if (!get_header_revision(r, &out->revision) || !get_int64(r, "watch_id", &out->watch_id) ||
        !get_bool(r, "created", &out->is_created) ||
        !get_bool(r, "canceled", &out->is_canceled) ||
        !get_count(r, "compact_revision", &out->compact_revision)) {
        *why = "a bad header.revision, watch_id, created, canceled or compact_revision";
        return ETCD_EPROTO;
    }
    const json_t *reason = json_object_get(r, "cancel_reason");
    if (reason && !json_is_string(reason)) {
        *why = "a cancel_reason that is not a string";
        return ETCD_EPROTO;
    }
    if (reason && json_string_length(reason) > 0) {
        size_t n = json_string_length(reason);
        out->cancel_reason = malloc(n + 1);
        if (!out->cancel_reason) return ETCD_ENOMEM;
        /* A message may hold a NUL (JSON's \u0000): it ends the text here. */
        memcpy(out->cancel_reason, json_string_value(reason), n + 1);
    }
    const json_t *events = json_object_get(r, "events");
    if (!events) return ETCD_OK;
    if (!json_is_array(events)) {
        *why = "events is not an array";
        return ETCD_EPROTO;
    }
    size_t n = json_array_size(events);
    if (n == 0) return ETCD_OK;
    out->events = calloc(n, sizeof *out->events);
    if (!out->events) return ETCD_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = parse_event(json_array_get(events, i), &out->events[i], why);
        if (rc != ETCD_OK) return rc;
        out->event_count = i + 1;
    }
    return ETCD_OK;
}

int etcd_parse_watch(const char *body, size_t len, etcd_watch_batch *out, const char **why) {
    WHY_SINK;
    *out = (etcd_watch_batch){0};
    const json_t *result = NULL;
    json_t *root = load(body, len, why);
    if (!root) return ETCD_EPROTO;
    int rc = stream_result(root, &result, why);
    if (rc == ETCD_OK) rc = parse_watch_result(result, out, why);
    json_decref(root);
    if (rc != ETCD_OK) etcd_watch_batch_free(out);
    return rc;
}

/* ---- errors ----------------------------------------------------------- */

int etcd_parse_error(const char *body, size_t len, int *grpc_code, char *message,
                     size_t message_cap) {
    const char *why = NULL;
    if (message_cap) message[0] = '\0';
    *grpc_code = 0;
    json_t *root = load(body, len, &why);
    if (!root) return ETCD_EPROTO;
    const json_t *err = json_object_get(root, "error");
    const json_t *holder = json_is_object(err) ? err : root;
    const json_t *code = json_object_get(holder, json_is_object(err) ? "grpc_code" : "code");
    const json_t *text = json_object_get(holder, "message");
    if (!json_is_string(text)) text = json_is_string(err) ? err : NULL;
    int64_t c = 0;
    int rc = ETCD_EPROTO;
    if (err && code && read_int64(code, &c) && c >= 0 && c <= 0xffff && text) {
        *grpc_code = (int)c;
        if (message_cap) {
            size_t n = json_string_length(text);
            if (n >= message_cap) n = message_cap - 1;
            memcpy(message, json_string_value(text), n);
            message[n] = '\0';
        }
        rc = ETCD_OK;
    }
    json_decref(root);
    return rc;
}
