/*
 * etcdint.h - what etcd.c (the handle, its requests and failover) shares with
 * etcdwatch.c (the watch stream): the handle's fields, the response buffer,
 * the curl set-up of a request and the judgement of an error. Not for other
 * callers: they have etcd.h.
 */
#ifndef PROXY_ETCDINT_H
#define PROXY_ETCDINT_H

#include "etcd.h"

#include <curl/curl.h>
#include <jansson.h>

/* A response as it arrives; never longer than max (what came past it is
 * dropped and is_too_big set, which stops the transfer). */
typedef struct etcd_body {
    char *data;
    size_t start; /* bytes before it already consumed (watch streams) */
    size_t len;   /* bytes held, from data[0] (consumed ones included) */
    size_t cap;
    size_t max; /* unconsumed bytes allowed */
    bool is_too_big;
} etcd_body;

/* libcurl's CURLOPT_WRITEFUNCTION for an etcd_body (its CURLOPT_WRITEDATA). */
size_t etcd_body_write(char *ptr, size_t size, size_t count, void *user);
/* Drops the consumed bytes when they are most of the buffer: amortised
 * O(1) a byte. */
void etcd_body_compact(etcd_body *b);
void etcd_body_free(etcd_body *b);

struct etcd {
    char **endpoints; /* URLs without a trailing slash */
    size_t endpoint_count;
    size_t current; /* where the next call starts: the last that answered */
    int timeout_ms;
    int watch_probe_ms; /* -1: never */
    size_t max_response_bytes;
    char *username; /* NULL: no authentication */
    char *password;
    char *ca_file;
    char *cert_file;
    char *key_file;
    void (*log)(void *log_user, const char *line);
    void *log_user;
    char *token; /* NULL: not authenticated (yet, or refused since) */
    CURL *curl;  /* the handle's requests, one at a time; keeps connections */
    etcd_body body;
    char curl_err[CURL_ERROR_SIZE];
    char err[ETCD_ERR_MAX];
};

/*
 * etcd_request_setup - prepares c for one POST of body to path at endpoint:
 * URL, headers (JSON, require-leader, the token when there is one), TLS
 * files, timeouts (none for a stream: only connecting is bounded), no
 * proxy, the response into b and curl's message into curl_err. *headers
 * receives the list to free (curl_slist_free_all) after the transfer.
 * Returns ETCD_OK or ETCD_ENOMEM.
 */
int etcd_request_setup(etcd *e, CURL *c, size_t endpoint, const char *path, const char *body,
                       bool is_stream, struct curl_slist **headers, etcd_body *b,
                       char *curl_err);

/*
 * etcd_token_ensure - authenticates at endpoint when the handle has a
 * username and no token yet (blocking, one attempt). Returns ETCD_OK;
 * ETCD_EUNAVAILABLE when the endpoint could not answer (its reason in why);
 * ETCD_EAUTH, ETCD_EPROTO or ETCD_ENOMEM otherwise (why says etcd's word).
 */
int etcd_token_ensure(etcd *e, size_t endpoint, char *why, size_t why_cap);

/* What to do about an error etcd reported (HTTP status, gRPC code and
 * message from etcd_parse_error). */
typedef enum etcd_verdict {
    ETCD_VERDICT_NEXT,   /* this endpoint cannot answer: try the next */
    ETCD_VERDICT_REAUTH, /* the token was refused: authenticate again */
    ETCD_VERDICT_FINAL,  /* etcd's answer to the request: return *rc */
} etcd_verdict;

etcd_verdict etcd_judge(const etcd *e, long http_status, int grpc_code, const char *message,
                        int *rc);

/* One line to the handle's log callback, printf-style. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void etcd_logf(const etcd *e, const char *fmt, ...);

/* Appends printf-style text to the NUL-terminated dst of cap bytes,
 * cutting what does not fit. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void etcd_appendf(char *dst, size_t cap, const char *fmt, ...);

/* A JSON string of the bytes in base64 (NULL: out of memory or too long). */
json_t *etcd_json_bytes(const void *p, size_t n);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t etcd_now_ms(void);

#endif
