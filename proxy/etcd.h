/*
 * etcd.h - a small blocking client of etcd v3 (3.4) through its JSON gateway
 * (POST /v3/...), on libcurl and jansson: the authority a fleet of proxies
 * agrees through (issue 15).
 *
 * It knows nothing of the proxy: one thread of the proxy owns a handle and
 * calls it. A handle is not shared between threads without a lock; separate
 * handles are independent. A watch borrows its handle: the same thread uses
 * both, and closes the watch before freeing the handle.
 *
 * Failover: an endpoint that cannot answer (connect error, timeout, HTTP 5xx,
 * etcd "no leader" or "unavailable") is left for the next one, starting from
 * the last endpoint that answered. Each attempt is bounded by timeout_ms and
 * a call makes at most one attempt per endpoint, so without a username it
 * returns within endpoints x timeout_ms; with one, authenticating adds at
 * most three attempts (two authentications, and the repeat of a request
 * whose token was refused). Every request carries
 * etcd's require-leader metadata, so a member cut off from its leader says so
 * at once instead of waiting out etcd's own 7 s. When all fail, the message
 * (etcd_errmsg) names each endpoint and what it said.
 *
 * A put, delete or txn whose attempt timed out may still have been applied
 * when the next endpoint is tried: puts and deletes are idempotent; a CAS
 * then finds the key moved (is_swapped false) with its current value, by
 * which the caller recognises its own write.
 *
 * Every byte from etcd is untrusted: the JSON is read by the pure etcd_parse_*
 * functions at the end of this file (no I/O; fuzzed by fuzz_etcd.c), and a
 * response longer than max_response_bytes is an error, never an allocation.
 */
#ifndef PROXY_ETCD_H
#define PROXY_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest response (or watch message) read unless the options say. */
#define ETCD_MAX_RESPONSE_DEFAULT ((size_t)64 * 1024 * 1024)
#define ETCD_TIMEOUT_MS_DEFAULT 5000
#define ETCD_WATCH_PROBE_MS_DEFAULT 5000
/* etcd_errmsg's longest text, with its NUL. */
#define ETCD_ERR_MAX 2048

typedef enum etcd_error {
    ETCD_OK = 0,
    ETCD_EINVAL = -1,       /* a bad argument, option or endpoint list */
    ETCD_ENOMEM = -2,       /* out of memory (here or in libcurl) */
    ETCD_EUNAVAILABLE = -3, /* no endpoint answered: each one's reason in etcd_errmsg */
    ETCD_EAUTH = -4,        /* authentication failed: wrong password, or none given */
    ETCD_EPERM = -5,        /* authenticated, but etcd's roles refuse the request */
    ETCD_ENOTFOUND = -6,    /* no such lease */
    ETCD_ECOMPACTED = -7,   /* the revision asked for was compacted away */
    ETCD_ECANCELED = -8,    /* etcd canceled the watch (its reason in the message) */
    ETCD_EREFUSED = -9,     /* etcd refused the request for another reason (its message) */
    ETCD_EPROTO = -10,      /* a response that is not what etcd sends */
    ETCD_ETOOBIG = -11,     /* a response over max_response_bytes */
} etcd_error;

/* A fixed English name of an error code; "unknown error" for others. */
const char *etcd_strerror(int code);

typedef struct etcd etcd;

typedef struct etcd_options {
    /* One attempt at one endpoint (connect and answer); 0: the default. */
    int timeout_ms;
    /* Set both to authenticate (POST /v3/auth/authenticate); the token is
     * sent with every request and renewed when etcd refuses it. */
    const char *username;
    const char *password;
    /* https endpoints: the CA that signed etcd's certificate (NULL: the
     * system's), and a client certificate and key for etcd's
     * --client-cert-auth (PEM files). */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    /* The longest response or watch message accepted; 0: the default. */
    size_t max_response_bytes;
    /* A watch that has heard nothing for this long asks its endpoint's
     * status, so a frozen member is left like a dead one; 0: the default,
     * -1: never. */
    int watch_probe_ms;
    /* Called (on the calling thread) with one line for each event an
     * operator would want in the log: an endpoint left, a token renewed, a
     * watch reopened. NULL: silent. */
    void (*log)(void *log_user, const char *line);
    void *log_user;
} etcd_options;

/*
 * etcd_create - a handle on the cluster at `endpoints`, a comma-separated
 * list of http:// or https:// URLs ("http://127.0.0.1:2379,...").
 *
 * Connects to nothing yet. Copies what it keeps of endpoints and opt (NULL
 * opt: every default). Initialises libcurl (curl_global_init, thread-safe in
 * Debian 12's libcurl). Returns ETCD_OK with *out set, ETCD_EINVAL (empty or
 * non-http URL, a password without a username, a negative option) or
 * ETCD_ENOMEM; *out is untouched on failure. Cost: O(length of endpoints).
 */
int etcd_create(const char *endpoints, const etcd_options *opt, etcd **out);

/* Frees the handle and its connections; NULL is a no-op. Close its watches
 * first. Cost: O(endpoints) plus libcurl's clean-up. */
void etcd_free(etcd *e);

/*
 * etcd_errmsg - what went wrong in the handle's last failed call: the
 * operation, and each endpoint tried with what it said ("put: no endpoint
 * answered: http://127.0.0.1:2379: Couldn't connect to server; ...").
 * Owned by the handle, valid until its next call; "" after a success.
 */
const char *etcd_errmsg(const etcd *e);

/* One key as etcd holds it. key and value are NUL-terminated for
 * convenience; their lengths do not count the NUL, and either may hold any
 * byte (NUL too). */
typedef struct etcd_kv {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision; /* for a DELETE event: the revision of the delete */
    int64_t version;      /* puts since the key was created; 0: deleted */
    int64_t lease;        /* 0: none */
} etcd_kv;

/* The answer of a read: the keys in key order. */
typedef struct etcd_kvs {
    int64_t revision; /* the store's revision the read saw */
    etcd_kv *kvs;
    size_t kv_count;
    int64_t count; /* keys in the range (kv_count unless etcd paged) */
    bool has_more;
} etcd_kvs;

/* Frees what *r holds and zeroes it; NULL is a no-op. */
void etcd_kvs_free(etcd_kvs *r);

/*
 * etcd_get - the key, or with is_prefix every key that starts with it (an
 * empty prefix: every key), at the latest revision (a linearizable read).
 *
 * *out is owned by the caller (etcd_kvs_free), and set only on success.
 * Returns ETCD_OK, ETCD_EINVAL (NULL arguments, an empty key without
 * is_prefix), or a failure of the call (see the top of this file).
 * Cost: one request; O(size of the answer).
 */
int etcd_get(etcd *e, const void *key, size_t key_len, bool is_prefix, etcd_kvs *out);

/*
 * etcd_put - sets key to value (either may hold any byte; value may be
 * empty), attached to `lease` (0: none). *revision (may be NULL) receives
 * the revision of the put. Returns ETCD_OK, ETCD_EINVAL (empty key),
 * ETCD_ENOTFOUND (no such lease) or a failure of the call. Cost: one request.
 */
int etcd_put(etcd *e, const void *key, size_t key_len, const void *value, size_t value_len,
             int64_t lease, int64_t *revision);

/*
 * etcd_delete - deletes the key, or with is_prefix every key under it.
 * *deleted (may be NULL) receives how many keys went, *revision (may be
 * NULL) the store's revision after. Returns ETCD_OK (also when nothing was
 * there), ETCD_EINVAL, or a failure of the call. Cost: one request.
 */
int etcd_delete(etcd *e, const void *key, size_t key_len, bool is_prefix, int64_t *deleted,
                int64_t *revision);

/* A compare-and-swap: when the compare holds, put value at put_key. */
typedef struct etcd_cas {
    const void *key; /* the key compared */
    size_t key_len;
    /* false: the key's mod_revision must equal mod_revision (0: the key
     * must not exist); true: its value must equal expected (a missing key
     * never does). */
    bool is_value_compare;
    int64_t mod_revision;
    const void *expected;
    size_t expected_len;
    const void *put_key; /* NULL: the key compared */
    size_t put_key_len;
    const void *value;
    size_t value_len;
    int64_t lease; /* the put's lease; 0: none */
} etcd_cas;

typedef struct etcd_cas_result {
    bool is_swapped;  /* the compare held and the put is done */
    int64_t revision; /* swapped: the revision of the put; else the store's */
    /* Not swapped: the compared key as etcd holds it (kv_count 0: absent). */
    etcd_kvs current;
} etcd_cas_result;

/* Frees what *r holds and zeroes it; NULL is a no-op. */
void etcd_cas_result_free(etcd_cas_result *r);

/*
 * etcd_txn_cas - one transaction: compare, then put (success) or read the
 * compared key (failure), atomically. Of two writers comparing the same
 * mod_revision, exactly one swaps.
 *
 * *out is owned by the caller (etcd_cas_result_free), set only on success.
 * Returns ETCD_OK whether or not it swapped, ETCD_EINVAL (NULL or empty
 * keys, a negative mod_revision), or a failure of the call. Cost: one
 * request.
 */
int etcd_txn_cas(etcd *e, const etcd_cas *cas, etcd_cas_result *out);

/* One compare of a transaction (etcd_txn). */
typedef enum etcd_compare_kind {
    ETCD_CMP_MOD_REVISION = 0, /* the key's mod_revision equals mod_revision */
    ETCD_CMP_VALUE = 1,        /* the key's value equals value (a missing key never does) */
    ETCD_CMP_ABSENT = 2,       /* the key does not exist (its create_revision is 0) */
} etcd_compare_kind;

typedef struct etcd_compare {
    etcd_compare_kind kind;
    const void *key;
    size_t key_len;
    int64_t mod_revision; /* ETCD_CMP_MOD_REVISION (0: the key is absent) */
    const void *value;    /* ETCD_CMP_VALUE */
    size_t value_len;
} etcd_compare;

/* One operation of a transaction's success branch. */
typedef enum etcd_op_kind {
    ETCD_OP_PUT = 0,           /* key = value, on lease (0: none) */
    ETCD_OP_DELETE = 1,        /* the key */
    ETCD_OP_DELETE_PREFIX = 2, /* every key starting with key (an empty key: every key) */
} etcd_op_kind;

typedef struct etcd_op {
    etcd_op_kind kind;
    const void *key;
    size_t key_len;
    const void *value; /* ETCD_OP_PUT */
    size_t value_len;
    int64_t lease;
} etcd_op;

/*
 * etcd_txn - one transaction: when every compare holds (none: always), do
 * every op, atomically; otherwise do nothing.
 *
 * etcd refuses (ETCD_EREFUSED, "duplicate key given in txn request") ops
 * that touch one key twice, a put inside a deleted prefix included, and
 * more ops than its --max-txn-ops (128 by default). *is_succeeded (may be
 * NULL) says whether the compares held; *revision (may be NULL) receives the
 * store's revision after (the revision of the ops when they were done).
 * Returns ETCD_OK whether or not the compares held, ETCD_EINVAL (NULL
 * arrays with counts, empty keys, a negative revision or lease, an unknown
 * kind), ETCD_ENOTFOUND (a put's lease does not exist), or a failure of the
 * call. An attempt that timed out may have been applied: a compare on a
 * revision then fails on the retry, and the caller reads what is there.
 * Cost: one request, O(total size of keys and values).
 */
int etcd_txn(etcd *e, const etcd_compare *compares, size_t compare_count, const etcd_op *ops,
             size_t op_count, bool *is_succeeded, int64_t *revision);

/*
 * etcd_lease_grant - a new lease of ttl_s seconds (1 or more); its id in
 * *lease_id and the TTL etcd granted in *granted_ttl_s (may be NULL; etcd
 * may raise a small TTL to its minimum). Returns ETCD_OK, ETCD_EINVAL or a
 * failure of the call. An attempt that timed out may have granted a lease
 * nobody keeps alive: it expires after its TTL. Cost: one request.
 */
int etcd_lease_grant(etcd *e, int64_t ttl_s, int64_t *lease_id, int64_t *granted_ttl_s);

/*
 * etcd_lease_keepalive - one keep-alive round (POST /v3/lease/keepalive):
 * the lease's TTL starts again. *ttl_s receives the new TTL, or 0 when the
 * lease is gone (expired or revoked: its keys are deleted, and the caller
 * must grant another). Returns ETCD_OK (also for a gone lease) or a failure
 * of the call. Cost: one request.
 */
int etcd_lease_keepalive(etcd *e, int64_t lease_id, int64_t *ttl_s);

/*
 * etcd_lease_revoke - ends the lease now; its keys are deleted. Returns
 * ETCD_OK, ETCD_ENOTFOUND (no such lease, e.g. already expired) or a
 * failure of the call. Cost: one request.
 */
int etcd_lease_revoke(etcd *e, int64_t lease_id);

/* ---- watch ------------------------------------------------------------ */

typedef enum etcd_event_type { ETCD_EVENT_PUT = 0, ETCD_EVENT_DELETE = 1 } etcd_event_type;

typedef struct etcd_event {
    etcd_event_type type;
    etcd_kv kv; /* DELETE: the key, and the delete's revision in mod_revision */
} etcd_event;

/* One message of a watch stream. */
typedef struct etcd_watch_batch {
    int64_t revision; /* the store's revision when etcd sent it */
    int64_t watch_id;
    etcd_event *events; /* in revision order */
    size_t event_count;
    bool is_created;          /* the watch's first message */
    bool is_canceled;         /* etcd ended the watch */
    int64_t compact_revision; /* canceled because the start was compacted: the
                                 oldest revision left */
    char *cancel_reason;      /* NULL: none given */
} etcd_watch_batch;

/* Frees what *b holds and zeroes it; NULL is a no-op. */
void etcd_watch_batch_free(etcd_watch_batch *b);

typedef struct etcd_watch etcd_watch;

/*
 * etcd_watch_open - watches the key (or with is_prefix every key under it;
 * an empty prefix: every key) from start_revision on (0: from the revision
 * the watch's creation reports).
 *
 * Sends nothing yet: etcd_watch_next opens the stream, on the handle's
 * current endpoint, and reads it. When that endpoint fails (the stream
 * breaks or ends, etcd reports no leader, the token is refused, or the
 * endpoint does not answer a status probe within timeout_ms after
 * watch_probe_ms of silence, as a frozen member does not) the watch reopens
 * on the next endpoint from the revision after the last event it delivered,
 * and drops anything it already delivered: every change is delivered once,
 * in revision order, or the watch says why it cannot (ETCD_ECOMPACTED).
 * Returns ETCD_OK with *out set, ETCD_EINVAL or ETCD_ENOMEM.
 * Cost: O(key_len).
 */
int etcd_watch_open(etcd *e, const void *key, size_t key_len, bool is_prefix,
                    int64_t start_revision, etcd_watch **out);

/*
 * etcd_watch_next - waits up to timeout_ms (0: only reads what has come)
 * for the next message of the watch.
 *
 * Returns 1 with a batch in *out, the caller's to free with
 * etcd_watch_batch_free: events (only ones not delivered before), the
 * watch's creation (once, no events; its revision is the store's then), or
 * etcd's progress notice (no events). Returns 0 when the time passed with
 * nothing, or an error:
 *   ETCD_EUNAVAILABLE - every endpoint failed in a row (etcd_watch_errmsg
 *                       names each and why); the watch goes on trying on
 *                       the next call, from where it was;
 *   ETCD_ECOMPACTED   - the next revision it needs was compacted away:
 *                       *out says so (is_canceled, compact_revision the
 *                       oldest revision left); the watch is over;
 *   ETCD_ECANCELED, ETCD_EPERM, ETCD_EAUTH - etcd ended the watch: over;
 *   ETCD_ENOMEM, ETCD_ETOOBIG - over.
 * A watch that is over returns the same again. A stream that is not etcd's
 * JSON counts as a failed endpoint. *out is set only when 1 or
 * ETCD_ECOMPACTED is returned. Cost: the time waited plus linear in the
 * bytes read.
 */
int etcd_watch_next(etcd_watch *w, int timeout_ms, etcd_watch_batch *out);

/*
 * etcd_watch_revision - the revision the watch will deliver next (the last
 * event's revision + 1, or the start; 0 before a watch "from now" was
 * created): where a new watch would resume. Cost: O(1).
 */
int64_t etcd_watch_revision(const etcd_watch *w);

/* Why the watch's last call failed; owned by the watch, "" after a success. */
const char *etcd_watch_errmsg(const etcd_watch *w);

/* Ends the watch (closing its connections) and frees it; NULL is a no-op.
 * Cost: O(1) plus libcurl's clean-up. */
void etcd_watch_close(etcd_watch *w);

/* ---- parsing: bytes in, structs out, no I/O --------------------------- */
/*
 * Each reads one JSON body of etcd 3.4's gateway (int64 fields as strings
 * or numbers, keys and values base64) into *out, which the caller frees.
 * Returns ETCD_OK, ETCD_EPROTO with a fixed reason in *why (may be NULL) and
 * *out zeroed, or ETCD_ENOMEM. Cost: linear in len.
 */
int etcd_parse_range(const char *body, size_t len, etcd_kvs *out, const char **why);
/* A put, delete-range or lease-revoke answer: header.revision, and for a
 * delete-range the count deleted (*deleted may be NULL). */
int etcd_parse_header(const char *body, size_t len, int64_t *revision, int64_t *deleted,
                      const char **why);
int etcd_parse_txn_cas(const char *body, size_t len, etcd_cas_result *out, const char **why);
/* Any txn answer (etcd_txn's): header.revision and succeeded; responses,
 * when present, must be an array of objects (their contents are not read). */
int etcd_parse_txn(const char *body, size_t len, bool *is_succeeded, int64_t *revision,
                   const char **why);
int etcd_parse_lease_grant(const char *body, size_t len, int64_t *lease_id, int64_t *ttl_s,
                           const char **why);
/* One keep-alive answer, {"result":{...}}: the lease id and TTL (0: gone). */
int etcd_parse_lease_keepalive(const char *body, size_t len, int64_t *lease_id, int64_t *ttl_s,
                               const char **why);
/* An authenticate answer: the token, NUL-terminated, the caller's to free. */
int etcd_parse_auth(const char *body, size_t len, char **token, const char **why);
/* A maintenance/status answer: the member's id and its leader's (0: none);
 * member ids are unsigned 64-bit. */
int etcd_parse_status(const char *body, size_t len, uint64_t *member_id, uint64_t *leader_id,
                      const char **why);
/* One watch message, {"result":{...}}. ETCD_EREFUSED when it is an error
 * report instead ({"error":{...}}: read it with etcd_parse_error). */
int etcd_parse_watch(const char *body, size_t len, etcd_watch_batch *out, const char **why);

/*
 * etcd_parse_error - an error body, unary ({"error":"..","code":N,
 * "message":".."}) or streamed ({"error":{"grpc_code":N,"message":".."}}):
 * the gRPC status code in *grpc_code and the message, NUL-terminated and
 * cut to message_cap bytes (with its NUL), in message. Returns ETCD_OK or
 * ETCD_EPROTO (message then ""). Cost: linear in len.
 */
int etcd_parse_error(const char *body, size_t len, int *grpc_code, char *message,
                     size_t message_cap);

/*
 * A watch stream is a sequence of JSON objects (with or without newlines
 * between them). etcd_framer finds where each ends, without parsing it.
 * Feed the whole unconsumed input each time (data beginning where the last
 * frame ended): the framer remembers how far it scanned, so a message
 * arriving in pieces is scanned once.
 */
typedef struct etcd_framer {
    size_t pos;   /* bytes of data already scanned */
    size_t start; /* where the object in progress began */
    size_t depth; /* open braces and brackets */
    bool is_in_string;
    bool is_escaped;
} etcd_framer;

/*
 * etcd_framer_next - 1 with the object at data[*start, *start + *len) (what
 * precedes it is whitespace; the caller consumes *start + *len bytes and
 * the framer is ready for the next), 0 when more bytes are needed, -1 when
 * the bytes are not a sequence of objects. Cost: linear in the new bytes.
 */
int etcd_framer_next(etcd_framer *f, const char *data, size_t n, size_t *start, size_t *len);

/* ---- encoding helpers (pure) ------------------------------------------ */

/* Standard base64 with padding, as etcd's gateway writes it: into out
 * (4 * ceil(n / 3) bytes and a NUL), returning the length. Cost: O(n). */
size_t etcd_base64_encode(const void *data, size_t n, char *out);
/* Strict decoding (padding required, no whitespace, no stray bits) into
 * out (at least 3 * (n / 4) bytes); the length, or -1 when text is not
 * base64 (out then holds junk). Cost: O(n). */
long long etcd_base64_decode(const char *text, size_t n, void *out);

/*
 * etcd_prefix_end - the range_end that makes [prefix, range_end) every key
 * starting with prefix: the prefix with its last byte below 0xff plus one,
 * what follows it dropped; "\0" (every key from prefix on) when there is no
 * such byte. Writes at most prefix_len bytes (1 for "\0") to out and
 * returns how many. Cost: O(prefix_len).
 */
size_t etcd_prefix_end(const void *prefix, size_t prefix_len, char *out);

#endif
