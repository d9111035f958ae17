/*
 * etcd.c - the etcd handle: endpoints and options, one blocking request at a
 * time over libcurl with failover between endpoints and token renewal, and
 * the key-value, transaction and lease calls built on it.
 *
 * Invariant: e->current is the endpoint that answered last, so a healthy
 * cluster costs one attempt a call; e->err describes the last failed call
 * and is "" after a success.
 */
#define _POSIX_C_SOURCE 200809L
#include "etcdint.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest message kept from one endpoint's error body. */
#define ETCD_MESSAGE_MAX 512

const char *etcd_strerror(int code) {
    switch ((etcd_error)code) {
    case ETCD_OK: return "success";
    case ETCD_EINVAL: return "invalid argument";
    case ETCD_ENOMEM: return "out of memory";
    case ETCD_EUNAVAILABLE: return "no etcd endpoint answered";
    case ETCD_EAUTH: return "etcd authentication failed";
    case ETCD_EPERM: return "etcd permission denied";
    case ETCD_ENOTFOUND: return "no such lease";
    case ETCD_ECOMPACTED: return "revision compacted";
    case ETCD_ECANCELED: return "watch canceled by etcd";
    case ETCD_EREFUSED: return "etcd refused the request";
    case ETCD_EPROTO: return "malformed response from etcd";
    case ETCD_ETOOBIG: return "response from etcd too large";
    }
    return "unknown error";
}

int64_t etcd_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void etcd_appendf(char *dst, size_t cap, const char *fmt, ...) {
    size_t used = strnlen(dst, cap);
    if (used + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst + used, cap - used, fmt, ap);
    va_end(ap);
}

void etcd_logf(const etcd *e, const char *fmt, ...) {
    if (!e->log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    e->log(e->log_user, line);
}

/* ---- response buffer -------------------------------------------------- */

size_t etcd_body_write(char *ptr, size_t size, size_t count, void *user) {
    etcd_body *b = user;
    size_t n = size * count;
    if (n > b->max || b->len - b->start > b->max - n) {
        b->is_too_big = true;
        return 0; /* anything but n: curl stops with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *more = realloc(b->data, cap);
        if (!more) return 0;
        b->data = more;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

void etcd_body_compact(etcd_body *b) {
    if (b->start == 0 || b->start < b->len - b->start) return;
    memmove(b->data, b->data + b->start, b->len - b->start);
    b->len -= b->start;
    b->start = 0;
}

void etcd_body_free(etcd_body *b) {
    free(b->data);
    *b = (etcd_body){.max = b->max};
}

/* ---- handle ----------------------------------------------------------- */

static char *copy(const char *s, bool *is_oom) {
    if (!s) return NULL;
    char *c = strdup(s);
    if (!c) *is_oom = true;
    return c;
}

static void free_fields(etcd *e) {
    for (size_t i = 0; i < e->endpoint_count; i++) free(e->endpoints[i]);
    free(e->endpoints);
    free(e->username);
    free(e->password);
    free(e->ca_file);
    free(e->cert_file);
    free(e->key_file);
    free(e->token);
    etcd_body_free(&e->body);
    if (e->curl) curl_easy_cleanup(e->curl);
}

/* Splits the comma-separated list into e->endpoints: each http:// or
 * https://, spaces around it dropped, one trailing slash dropped. */
static int parse_endpoints(etcd *e, const char *list) {
    size_t count = 1;
    for (const char *p = list; *p; p++) count += *p == ',';
    e->endpoints = calloc(count, sizeof *e->endpoints);
    if (!e->endpoints) return ETCD_ENOMEM;
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        while (p < end && *p == ' ') p++;
        const char *last = end;
        while (last > p && last[-1] == ' ') last--;
        if (last > p && last[-1] == '/') last--;
        size_t n = (size_t)(last - p);
        if (n > 1024) return ETCD_EINVAL;
        bool is_http = (n > 7 && strncmp(p, "http://", 7) == 0) ||
                       (n > 8 && strncmp(p, "https://", 8) == 0);
        if (!is_http) return ETCD_EINVAL;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f) return ETCD_EINVAL;
        char *url = malloc(n + 1);
        if (!url) return ETCD_ENOMEM;
        memcpy(url, p, n);
        url[n] = '\0';
        e->endpoints[e->endpoint_count++] = url;
        if (*end == '\0') return ETCD_OK;
        p = end + 1;
    }
}

int etcd_create(const char *endpoints, const etcd_options *opt, etcd **out) {
    static const etcd_options defaults = {0};
    if (!opt) opt = &defaults;
    if (!endpoints || !out || opt->timeout_ms < 0 || opt->watch_probe_ms < -1 ||
        (opt->password && !opt->username) || (opt->username && !opt->password) ||
        (opt->key_file && !opt->cert_file))
        return ETCD_EINVAL;
    /* Debian 12's libcurl counts its users and initialises thread-safely. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return ETCD_ENOMEM;
    etcd *e = calloc(1, sizeof *e);
    if (!e) {
        curl_global_cleanup();
        return ETCD_ENOMEM;
    }
    e->timeout_ms = opt->timeout_ms ? opt->timeout_ms : ETCD_TIMEOUT_MS_DEFAULT;
    e->watch_probe_ms = opt->watch_probe_ms ? opt->watch_probe_ms : ETCD_WATCH_PROBE_MS_DEFAULT;
    e->max_response_bytes =
        opt->max_response_bytes ? opt->max_response_bytes : ETCD_MAX_RESPONSE_DEFAULT;
    e->body.max = e->max_response_bytes;
    e->log = opt->log;
    e->log_user = opt->log_user;
    bool is_oom = false;
    e->username = copy(opt->username, &is_oom);
    e->password = copy(opt->password, &is_oom);
    e->ca_file = copy(opt->ca_file, &is_oom);
    e->cert_file = copy(opt->cert_file, &is_oom);
    e->key_file = copy(opt->key_file, &is_oom);
    e->curl = curl_easy_init();
    int rc = is_oom || !e->curl ? ETCD_ENOMEM : parse_endpoints(e, endpoints);
    if (rc != ETCD_OK) {
        free_fields(e);
        free(e);
        curl_global_cleanup();
        return rc;
    }
    *out = e;
    return ETCD_OK;
}

void etcd_free(etcd *e) {
    if (!e) return;
    free_fields(e);
    free(e);
    curl_global_cleanup();
}

const char *etcd_errmsg(const etcd *e) { return e ? e->err : "no handle"; }

/* ---- one request ------------------------------------------------------ */

int etcd_request_setup(etcd *e, CURL *c, size_t endpoint, const char *path, const char *body,
                       bool is_stream, struct curl_slist **headers, etcd_body *b,
                       char *curl_err) {
    char url[2048], auth[ETCD_MESSAGE_MAX + 4200];
    snprintf(url, sizeof url, "%s%s", e->endpoints[endpoint], path);
    struct curl_slist *h = NULL, *more;
    /* Require-leader: a member without one answers "no leader" at once
     * (etcd's clientv3 WithRequireLeader; the gateway forwards
     * Grpc-Metadata-* headers as gRPC metadata). No Expect: the 100-continue
     * round trip buys nothing for bodies this small. */
    static const char *const fixed[] = {"Content-Type: application/json",
                                        "Grpc-Metadata-hasleader: true", "Expect:"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        more = curl_slist_append(h, fixed[i]);
        if (!more) goto oom;
        h = more;
    }
    if (e->token) {
        snprintf(auth, sizeof auth, "Authorization: %s", e->token);
        more = curl_slist_append(h, auth);
        if (!more) goto oom;
        h = more;
    }
    curl_err[0] = '\0';
    b->is_too_big = false;
    b->len = b->start = 0;
    bool is_ok = curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
                 curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
                 curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
                 curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                                  (curl_off_t)strlen(body)) == CURLE_OK &&
                 curl_easy_setopt(c, CURLOPT_HTTPHEADER, h) == CURLE_OK &&
                 curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, etcd_body_write) == CURLE_OK &&
                 curl_easy_setopt(c, CURLOPT_WRITEDATA, b) == CURLE_OK &&
                 curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err) == CURLE_OK &&
                 curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
                 /* An http_proxy in the environment must not carry our
                  * traffic to the cluster somewhere else. */
                 curl_easy_setopt(c, CURLOPT_PROXY, "") == CURLE_OK &&
                 curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms) ==
                     CURLE_OK &&
                 curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, is_stream ? 0L : (long)e->timeout_ms) ==
                     CURLE_OK &&
                 curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
                                  is_stream ? (curl_off_t)0
                                            : (curl_off_t)e->max_response_bytes) == CURLE_OK;
    if (is_ok && e->ca_file) is_ok = curl_easy_setopt(c, CURLOPT_CAINFO, e->ca_file) == CURLE_OK;
    if (is_ok && e->cert_file)
        is_ok = curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert_file) == CURLE_OK;
    if (is_ok && e->key_file) is_ok = curl_easy_setopt(c, CURLOPT_SSLKEY, e->key_file) == CURLE_OK;
    if (!is_ok) goto oom;
    *headers = h;
    return ETCD_OK;
oom:
    curl_slist_free_all(h);
    return ETCD_ENOMEM;
}

/* One attempt of POST body to path at endpoint, into e->body. Returns
 * curl's code; *status the HTTP status when it answered. */
static CURLcode perform(etcd *e, size_t endpoint, const char *path, const char *body,
                        long *status) {
    struct curl_slist *headers = NULL;
    *status = 0;
    if (etcd_request_setup(e, e->curl, endpoint, path, body, false, &headers, &e->body,
                           e->curl_err) != ETCD_OK)
        return CURLE_OUT_OF_MEMORY;
    CURLcode cc = curl_easy_perform(e->curl);
    if (cc == CURLE_OK) curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, status);
    curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    return cc;
}

/* curl's reason for a failed transfer, the most specific it has. */
static const char *curl_reason(const char *curl_err, CURLcode cc) {
    return curl_err[0] ? curl_err : curl_easy_strerror(cc);
}

static bool contains(const char *s, const char *what) { return strstr(s, what) != NULL; }

etcd_verdict etcd_judge(const etcd *e, long http_status, int grpc_code, const char *message,
                        int *rc) {
    /* etcd 3.4's words for a token it no longer knows (expired, or a member
     * restarted and lost it), and for one issued before the auth store
     * changed: a fresh token fixes both. */
    bool is_token_refused = grpc_code == 16 || contains(message, "invalid auth token") ||
                            contains(message, "auth store is old");
    if (e->username && (is_token_refused || contains(message, "user name is empty")))
        return ETCD_VERDICT_REAUTH;
    /* 14 Unavailable: no leader, request timed out, leader changed, stopped;
     * 4 DeadlineExceeded; 5xx: the gateway could not get an answer. */
    if (http_status >= 500 || grpc_code == 14 || grpc_code == 4) return ETCD_VERDICT_NEXT;
    if (is_token_refused || contains(message, "user name is empty") || grpc_code == 16)
        *rc = ETCD_EAUTH;
    else if (grpc_code == 7)
        *rc = ETCD_EPERM;
    else if (grpc_code == 5)
        *rc = ETCD_ENOTFOUND;
    else if (contains(message, "compacted"))
        *rc = ETCD_ECOMPACTED;
    else
        *rc = ETCD_EREFUSED;
    return ETCD_VERDICT_FINAL;
}

/* The error report in a body, or "HTTP n" and its first bytes when it is
 * not one. */
static void describe(const etcd_body *b, long status, int *grpc_code, char *msg, size_t cap) {
    if (etcd_parse_error(b->data ? b->data : "", b->len, grpc_code, msg, cap) == ETCD_OK) return;
    *grpc_code = 0;
    snprintf(msg, cap, "HTTP %ld: %.*s", status, (int)(b->len < 120 ? b->len : 120),
             b->data ? b->data : "");
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < ' ') *p = ' ';
}

int etcd_token_ensure(etcd *e, size_t endpoint, char *why, size_t why_cap) {
    if (!e->username || e->token) return ETCD_OK;
    json_t *req = json_pack("{s:s,s:s}", "name", e->username, "password", e->password);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) return ETCD_ENOMEM;
    long status;
    CURLcode cc = perform(e, endpoint, "/v3/auth/authenticate", body, &status);
    free(body);
    if (cc != CURLE_OK) {
        snprintf(why, why_cap, "%s", curl_reason(e->curl_err, cc));
        return cc == CURLE_OUT_OF_MEMORY ? ETCD_ENOMEM : ETCD_EUNAVAILABLE;
    }
    if (status == 200) {
        const char *bad = NULL;
        int rc = etcd_parse_auth(e->body.data, e->body.len, &e->token, &bad);
        if (rc == ETCD_EPROTO) snprintf(why, why_cap, "authenticate: %s", bad);
        if (rc == ETCD_OK) etcd_logf(e, "etcd: authenticated as %s at %s", e->username,
                                     e->endpoints[endpoint]);
        return rc;
    }
    int code;
    char msg[ETCD_MESSAGE_MAX];
    describe(&e->body, status, &code, msg, sizeof msg);
    snprintf(why, why_cap, "authenticate as %s: %s", e->username, msg);
    return status >= 500 || code == 14 || code == 4 ? ETCD_EUNAVAILABLE : ETCD_EAUTH;
}

/*
 * call - POST body to path, failing over between endpoints, into e->body.
 * is_stream: a streamed answer (lease keep-alive) reports a failure inside
 * an HTTP 200. Returns ETCD_OK or the call's error with e->err set.
 */
static int call(etcd *e, const char *op, const char *path, const char *body, bool is_stream) {
    char tried[ETCD_ERR_MAX - 128] = ""; /* room for the operation before it */
    size_t n = e->endpoint_count;
    e->err[0] = '\0';
    for (size_t k = 0; k < n; k++) {
        size_t ep = (e->current + k) % n;
        const char *url = e->endpoints[ep];
        char why[ETCD_MESSAGE_MAX + 64];
        for (bool is_reauthed = false;;) {
            int rc = etcd_token_ensure(e, ep, why, sizeof why);
            if (rc == ETCD_EUNAVAILABLE) {
                etcd_appendf(tried, sizeof tried, "%s%s: %s", tried[0] ? "; " : "", url, why);
                break;
            }
            if (rc != ETCD_OK) {
                snprintf(e->err, sizeof e->err, "%s: %s: %s", op, url, why);
                return rc;
            }
            long status;
            CURLcode cc = perform(e, ep, path, body, &status);
            if (cc == CURLE_OUT_OF_MEMORY) return ETCD_ENOMEM;
            if (e->body.is_too_big || cc == CURLE_FILESIZE_EXCEEDED) {
                snprintf(e->err, sizeof e->err, "%s: %s: response over %zu bytes", op, url,
                         e->max_response_bytes);
                return ETCD_ETOOBIG;
            }
            if (cc != CURLE_OK) {
                etcd_appendf(tried, sizeof tried, "%s%s: %s", tried[0] ? "; " : "", url,
                             curl_reason(e->curl_err, cc));
                break;
            }
            int code = 0;
            char msg[ETCD_MESSAGE_MAX];
            bool is_error = status != 200 ||
                            (is_stream && etcd_parse_error(e->body.data, e->body.len, &code, msg,
                                                           sizeof msg) == ETCD_OK);
            if (!is_error) {
                if (e->current != ep)
                    etcd_logf(e, "etcd: %s answers (after %s)", url, tried);
                e->current = ep;
                return ETCD_OK;
            }
            describe(&e->body, status, &code, msg, sizeof msg);
            int final_rc = ETCD_EREFUSED;
            etcd_verdict v = etcd_judge(e, status, code, msg, &final_rc);
            if (v == ETCD_VERDICT_REAUTH && !is_reauthed) {
                etcd_logf(e, "etcd: %s refused the token (%s): authenticating again", url, msg);
                free(e->token);
                e->token = NULL;
                is_reauthed = true;
                continue;
            }
            if (v == ETCD_VERDICT_NEXT) {
                etcd_appendf(tried, sizeof tried, "%s%s: %s", tried[0] ? "; " : "", url, msg);
                break;
            }
            if (v == ETCD_VERDICT_REAUTH) final_rc = ETCD_EAUTH;
            snprintf(e->err, sizeof e->err, "%s: %s: %s%s", op, url, msg,
                     final_rc == ETCD_EAUTH && !e->username
                         ? " (etcd has authentication enabled: give a username and password)"
                         : "");
            return final_rc;
        }
    }
    snprintf(e->err, sizeof e->err, "%s: no endpoint answered: %s", op, tried);
    etcd_logf(e, "etcd: %s", e->err);
    return ETCD_EUNAVAILABLE;
}

/* A parse of e->body that failed: the message says which call and why. */
static int bad_answer(etcd *e, const char *op, int rc, const char *why) {
    if (rc == ETCD_EPROTO)
        snprintf(e->err, sizeof e->err, "%s: %s: bad answer: %s", op, e->endpoints[e->current],
                 why ? why : "?");
    return rc;
}

/* ---- requests --------------------------------------------------------- */

/* Keys and values this long cannot be a request etcd takes (its
 * --max-request-bytes is 1.5 MiB by default); the bound keeps the base64
 * sizes far from overflow. */
#define ETCD_BYTES_MAX ((size_t)1 << 30)

json_t *etcd_json_bytes(const void *p, size_t n) {
    if (n > ETCD_BYTES_MAX) return NULL;
    char *text = malloc((n + 2) / 3 * 4 + 1);
    if (!text) return NULL;
    size_t len = etcd_base64_encode(n ? p : "", n, text);
    json_t *s = json_stringn_nocheck(text, len);
    free(text);
    return s;
}

static json_t *json_int64(int64_t v) {
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)v);
    return json_string(text);
}

/* Sets obj[name] to value, taking it (also on failure, as jansson's
 * json_object_set_new does); false when either is NULL (out of memory). */
static bool set(json_t *obj, const char *name, json_t *value) {
    return value && json_object_set_new(obj, name, value) == 0;
}

/* {"key": .., "range_end": ..} of a key or prefix; an empty prefix is every
 * key ("\0" to "\0", etcd's spelling). */
static bool set_range(json_t *obj, const void *key, size_t key_len, bool is_prefix) {
    if (!is_prefix) return set(obj, "key", etcd_json_bytes(key, key_len));
    if (key_len == 0) return set(obj, "key", etcd_json_bytes("", 1)) &&
                             set(obj, "range_end", etcd_json_bytes("", 1));
    char *end = malloc(key_len);
    if (!end) return false;
    size_t end_len = etcd_prefix_end(key, key_len, end);
    bool is_ok = set(obj, "key", etcd_json_bytes(key, key_len)) &&
                 set(obj, "range_end", etcd_json_bytes(end, end_len));
    free(end);
    return is_ok;
}

/* Sends req (taking it) as op's call. */
static int send_json(etcd *e, const char *op, const char *path, json_t *req, bool is_ok,
                     bool is_stream) {
    char *body = is_ok && req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) return ETCD_ENOMEM;
    int rc = call(e, op, path, body, is_stream);
    free(body);
    return rc;
}

static bool is_bad_bytes(const void *p, size_t n) { return (!p && n) || n > ETCD_BYTES_MAX; }

int etcd_get(etcd *e, const void *key, size_t key_len, bool is_prefix, etcd_kvs *out) {
    if (!e || !out || is_bad_bytes(key, key_len) || (key_len == 0 && !is_prefix))
        return ETCD_EINVAL;
    json_t *req = json_object();
    int rc = send_json(e, "get", "/v3/kv/range", req,
                       req && set_range(req, key, key_len, is_prefix), false);
    if (rc != ETCD_OK) return rc;
    const char *why = NULL;
    rc = etcd_parse_range(e->body.data, e->body.len, out, &why);
    return bad_answer(e, "get", rc, why);
}

int etcd_put(etcd *e, const void *key, size_t key_len, const void *value, size_t value_len,
             int64_t lease, int64_t *revision) {
    if (!e || key_len == 0 || is_bad_bytes(key, key_len) || is_bad_bytes(value, value_len) ||
        lease < 0)
        return ETCD_EINVAL;
    json_t *req = json_object();
    bool is_ok = req && set(req, "key", etcd_json_bytes(key, key_len)) &&
                 set(req, "value", etcd_json_bytes(value, value_len)) &&
                 (lease == 0 || set(req, "lease", json_int64(lease)));
    int rc = send_json(e, "put", "/v3/kv/put", req, is_ok, false);
    if (rc != ETCD_OK) return rc;
    const char *why = NULL;
    rc = etcd_parse_header(e->body.data, e->body.len, revision, NULL, &why);
    return bad_answer(e, "put", rc, why);
}

int etcd_delete(etcd *e, const void *key, size_t key_len, bool is_prefix, int64_t *deleted,
                int64_t *revision) {
    if (!e || is_bad_bytes(key, key_len) || (key_len == 0 && !is_prefix)) return ETCD_EINVAL;
    json_t *req = json_object();
    int rc = send_json(e, "delete", "/v3/kv/deleterange", req,
                       req && set_range(req, key, key_len, is_prefix), false);
    if (rc != ETCD_OK) return rc;
    const char *why = NULL;
    rc = etcd_parse_header(e->body.data, e->body.len, revision, deleted, &why);
    return bad_answer(e, "delete", rc, why);
}

/* [item], taking item (NULL stays NULL: out of memory). */
static json_t *array_of(json_t *item) {
    json_t *arr = json_array();
    if (json_array_append_new(arr, item) != 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* {name: value}, taking value. */
static json_t *object_of(const char *name, json_t *value) {
    json_t *obj = json_object();
    if (!set(obj, name, value)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *cas_request(const etcd_cas *c) {
    const void *put_key = c->put_key ? c->put_key : c->key;
    size_t put_key_len = c->put_key ? c->put_key_len : c->key_len;
    json_t *cmp = json_object(), *put = json_object(), *range = json_object();
    bool is_ok = cmp && put && range &&
                 set(cmp, "key", etcd_json_bytes(c->key, c->key_len)) &&
                 set(cmp, "result", json_string("EQUAL")) &&
                 (c->is_value_compare
                      ? set(cmp, "target", json_string("VALUE")) &&
                            set(cmp, "value", etcd_json_bytes(c->expected, c->expected_len))
                      : set(cmp, "target", json_string("MOD")) &&
                            set(cmp, "mod_revision", json_int64(c->mod_revision))) &&
                 set(put, "key", etcd_json_bytes(put_key, put_key_len)) &&
                 set(put, "value", etcd_json_bytes(c->value, c->value_len)) &&
                 (c->lease == 0 || set(put, "lease", json_int64(c->lease))) &&
                 set(range, "key", etcd_json_bytes(c->key, c->key_len));
    if (!is_ok) {
        json_decref(cmp);
        json_decref(put);
        json_decref(range);
        return NULL;
    }
    /* set() takes its value even when it fails, so each is called. */
    json_t *req = json_object();
    is_ok = set(req, "compare", array_of(cmp));
    is_ok = set(req, "success", array_of(object_of("request_put", put))) && is_ok;
    is_ok = set(req, "failure", array_of(object_of("request_range", range))) && is_ok;
    if (!is_ok) {
        json_decref(req);
        return NULL;
    }
    return req;
}

int etcd_txn_cas(etcd *e, const etcd_cas *cas, etcd_cas_result *out) {
    if (!e || !cas || !out || cas->key_len == 0 || is_bad_bytes(cas->key, cas->key_len) ||
        (cas->put_key && cas->put_key_len == 0) || is_bad_bytes(cas->put_key, cas->put_key_len) ||
        is_bad_bytes(cas->expected, cas->expected_len) ||
        is_bad_bytes(cas->value, cas->value_len) || cas->mod_revision < 0 || cas->lease < 0)
        return ETCD_EINVAL;
    json_t *req = cas_request(cas);
    int rc = send_json(e, "txn", "/v3/kv/txn", req, req != NULL, false);
    if (rc != ETCD_OK) return rc;
    const char *why = NULL;
    rc = etcd_parse_txn_cas(e->body.data, e->body.len, out, &why);
    return bad_answer(e, "txn", rc, why);
}

static json_t *compare_json(const etcd_compare *c) {
    json_t *cmp = json_object();
    bool is_ok = cmp && set(cmp, "key", etcd_json_bytes(c->key, c->key_len)) &&
                 set(cmp, "result", json_string("EQUAL"));
    switch (c->kind) {
    case ETCD_CMP_MOD_REVISION:
        is_ok = is_ok && set(cmp, "target", json_string("MOD")) &&
                set(cmp, "mod_revision", json_int64(c->mod_revision));
        break;
    case ETCD_CMP_VALUE:
        is_ok = is_ok && set(cmp, "target", json_string("VALUE")) &&
                set(cmp, "value", etcd_json_bytes(c->value, c->value_len));
        break;
    case ETCD_CMP_ABSENT:
        /* A key that was never created, or was deleted since, has
         * create_revision 0 (etcd's clientv3.CreateRevision(k) == 0). */
        is_ok = is_ok && set(cmp, "target", json_string("CREATE")) &&
                set(cmp, "create_revision", json_int64(0));
        break;
    }
    if (!is_ok) {
        json_decref(cmp);
        return NULL;
    }
    return cmp;
}

static json_t *op_json(const etcd_op *o) {
    json_t *req = json_object();
    bool is_ok = req != NULL;
    const char *name = "request_put";
    switch (o->kind) {
    case ETCD_OP_PUT:
        is_ok = is_ok && set(req, "key", etcd_json_bytes(o->key, o->key_len)) &&
                set(req, "value", etcd_json_bytes(o->value, o->value_len)) &&
                (o->lease == 0 || set(req, "lease", json_int64(o->lease)));
        break;
    case ETCD_OP_DELETE:
    case ETCD_OP_DELETE_PREFIX:
        name = "request_delete_range";
        is_ok = is_ok && set_range(req, o->key, o->key_len, o->kind == ETCD_OP_DELETE_PREFIX);
        break;
    }
    if (!is_ok) {
        json_decref(req);
        return NULL;
    }
    return object_of(name, req);
}

static bool is_bad_compare(const etcd_compare *c) {
    return c->key_len == 0 || is_bad_bytes(c->key, c->key_len) ||
           (c->kind == ETCD_CMP_MOD_REVISION && c->mod_revision < 0) ||
           (c->kind == ETCD_CMP_VALUE && is_bad_bytes(c->value, c->value_len)) ||
           (c->kind != ETCD_CMP_MOD_REVISION && c->kind != ETCD_CMP_VALUE &&
            c->kind != ETCD_CMP_ABSENT);
}

static bool is_bad_op(const etcd_op *o) {
    return is_bad_bytes(o->key, o->key_len) ||
           (o->key_len == 0 && o->kind != ETCD_OP_DELETE_PREFIX) ||
           (o->kind == ETCD_OP_PUT && (is_bad_bytes(o->value, o->value_len) || o->lease < 0)) ||
           (o->kind != ETCD_OP_PUT && o->kind != ETCD_OP_DELETE &&
            o->kind != ETCD_OP_DELETE_PREFIX);
}

int etcd_txn(etcd *e, const etcd_compare *compares, size_t compare_count, const etcd_op *ops,
             size_t op_count, bool *is_succeeded, int64_t *revision) {
    if (!e || (!compares && compare_count) || (!ops && op_count)) return ETCD_EINVAL;
    for (size_t i = 0; i < compare_count; i++)
        if (is_bad_compare(&compares[i])) return ETCD_EINVAL;
    for (size_t i = 0; i < op_count; i++)
        if (is_bad_op(&ops[i])) return ETCD_EINVAL;
    json_t *req = json_object(), *cmp = json_array(), *success = json_array();
    bool is_ok = req && cmp && success;
    for (size_t i = 0; is_ok && i < compare_count; i++)
        is_ok = json_array_append_new(cmp, compare_json(&compares[i])) == 0;
    for (size_t i = 0; is_ok && i < op_count; i++)
        is_ok = json_array_append_new(success, op_json(&ops[i])) == 0;
    /* set() takes its value even when it fails, so each is called. */
    bool is_set = set(req, "compare", cmp);
    is_set = set(req, "success", success) && is_set;
    int rc = send_json(e, "txn", "/v3/kv/txn", req, is_ok && is_set, false);
    if (rc != ETCD_OK) return rc;
    const char *why = NULL;
    rc = etcd_parse_txn(e->body.data, e->body.len, is_succeeded, revision, &why);
    return bad_answer(e, "txn", rc, why);
}

int etcd_lease_grant(etcd *e, int64_t ttl_s, int64_t *lease_id, int64_t *granted_ttl_s) {
    if (!e || !lease_id || ttl_s < 1) return ETCD_EINVAL;
    json_t *req = json_object();
    int rc = send_json(e, "lease grant", "/v3/lease/grant", req,
                       req && set(req, "TTL", json_int64(ttl_s)), false);
    if (rc != ETCD_OK) return rc;
    const char *why = NULL;
    rc = etcd_parse_lease_grant(e->body.data, e->body.len, lease_id, granted_ttl_s, &why);
    return bad_answer(e, "lease grant", rc, why);
}

int etcd_lease_keepalive(etcd *e, int64_t lease_id, int64_t *ttl_s) {
    if (!e || !ttl_s || lease_id <= 0) return ETCD_EINVAL;
    json_t *req = json_object();
    int rc = send_json(e, "lease keepalive", "/v3/lease/keepalive", req,
                       req && set(req, "ID", json_int64(lease_id)), true);
    if (rc != ETCD_OK) return rc;
    const char *why = NULL;
    int64_t id = 0;
    rc = etcd_parse_lease_keepalive(e->body.data, e->body.len, &id, ttl_s, &why);
    if (rc == ETCD_OK && id != lease_id) {
        why = "the answer is about another lease";
        rc = ETCD_EPROTO;
    }
    return bad_answer(e, "lease keepalive", rc, why);
}

int etcd_lease_revoke(etcd *e, int64_t lease_id) {
    if (!e || lease_id <= 0) return ETCD_EINVAL;
    json_t *req = json_object();
    int rc = send_json(e, "lease revoke", "/v3/lease/revoke", req,
                       req && set(req, "ID", json_int64(lease_id)), false);
    if (rc != ETCD_OK) return rc;
    const char *why = NULL;
    rc = etcd_parse_header(e->body.data, e->body.len, NULL, NULL, &why);
    return bad_answer(e, "lease revoke", rc, why);
}
