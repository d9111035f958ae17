/*
 * tls.h - TLS on the proxy's non-blocking sockets (OpenSSL 3), both ways:
 * contexts built from a pool's tls_* keys (clients) and server_tls_* keys
 * (servers), and a connection's handshake, reads and writes with the
 * read(2)/write(2) shape the event loop's callers already have.
 *
 * A context is immutable once built and shared by every worker; each
 * connection holds a reference, so a reload may free the configuration
 * that built it while its connections live on. Knows nothing of the
 * proxy's objects; called by config.c (contexts), client.c, server.c and
 * health.c (connections).
 */
#ifndef PROXY_TLS_H
#define PROXY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct tls_ctx tls_ctx;
typedef struct tls_conn tls_conn;

/* tls_auth_clients */
typedef enum tls_auth { TLS_AUTH_NO, TLS_AUTH_YES, TLS_AUTH_OPTIONAL } tls_auth;

/* tls_protocols: a set of these bits (TLS 1.2 is the oldest offered). */
#define TLS_PROTO_12 1u
#define TLS_PROTO_13 2u

typedef struct tls_options {
    const char *cert_file; /* PEM chain; a listener's is required */
    const char *key_file;  /* PEM key; NULL: in cert_file */
    const char *ca_file;   /* PEM CAs to verify the peer; NULL: none (clients'
                              side: the system's trust store) */
    tls_auth auth;         /* listeners: the clients' certificates */
    unsigned protocols;    /* TLS_PROTO_*; 0: both */
    const char *ciphers;      /* TLS 1.2 list; NULL: ours (ECDHE with AEAD) */
    const char *ciphersuites; /* TLS 1.3 list; NULL: OpenSSL's */
} tls_options;

/*
 * Builds a listener's context (is_server) or a context to connect to
 * servers with. Reads the files now: a missing, unreadable or mismatched
 * certificate or key is an error here, never at the first connection.
 * Returns 0 with *out (the caller frees it with tls_ctx_free), or -1 with a
 * reason in err (no key material in it). Cost: the files' parsing.
 */
int tls_ctx_new(const tls_options *opt, bool is_server, tls_ctx **out, char *err,
                size_t err_len);
/* Another reference to ctx (for a thread that outlives the configuration
 * that built it), or NULL for NULL; each is dropped by tls_ctx_free. */
tls_ctx *tls_ctx_ref(tls_ctx *ctx);
/* Drops the caller's reference; connections keep theirs. NULL is fine. */
void tls_ctx_free(tls_ctx *ctx);
/* The name a server's certificate is checked against, for a server at
 * addr ("host:port", "[v6]:port" or "/path"): `name` when set, else addr's
 * host, into out. */
void tls_peer_name(const char *name, const char *addr, char *out, size_t out_len);

/*
 * Parses a tls_protocols value ("TLSv1.2 TLSv1.3", any order, space
 * separated) into TLS_PROTO_* bits; false with a reason for anything else
 * (older versions are refused by name).
 */
bool tls_parse_protocols(const char *text, unsigned *out, const char **why);

/*
 * What the first byte waiting on a listener's fd says, without taking it:
 * TLS_SNIFF_TLS (a handshake record), TLS_SNIFF_PLAIN (anything else: a
 * client speaking plaintext), TLS_SNIFF_AGAIN (nothing yet), TLS_SNIFF_EOF
 * (closed or failed). One recv(2) with MSG_PEEK.
 */
enum { TLS_SNIFF_TLS, TLS_SNIFF_PLAIN, TLS_SNIFF_AGAIN, TLS_SNIFF_EOF };
int tls_sniff(int fd);

/* A connection over fd (which stays the caller's to close): the server's
 * side of an accepted one, or the client's side towards a server,
 * verifying its certificate for `name` (a host name, or an IP address as
 * text; NULL: no name check) and offering it as SNI when it is a host
 * name. NULL when out of memory. */
tls_conn *tls_accept(tls_ctx *ctx, int fd);
tls_conn *tls_connect(tls_ctx *ctx, int fd, const char *name);
/* Sends close_notify if the handshake completed (once, never waits), and
 * frees. NULL is fine. */
void tls_free(tls_conn *t);

/* Results of tls_handshake, tls_read and tls_write besides a byte count. */
#define TLS_AGAIN (-1)  /* would block: wait for tls_wants(t) */
#define TLS_FAILED (-2) /* the connection is broken: tls_why(t) says why */

/* Drives the handshake: 1 done, TLS_AGAIN, or TLS_FAILED (a peer that
 * closes during it fails too). */
int tls_handshake(tls_conn *t);
/* Like read(2): bytes (> 0), 0 at the end (close_notify or EOF), TLS_AGAIN
 * or TLS_FAILED. */
ssize_t tls_read(tls_conn *t, void *buf, size_t len);
/* Like write(2): bytes (> 0, perhaps fewer than len), TLS_AGAIN or
 * TLS_FAILED. After TLS_AGAIN, call again with the same bytes at the front
 * (more may follow them; the buffer may have moved). */
ssize_t tls_write(tls_conn *t, const void *buf, size_t len);
/* After TLS_AGAIN: whether the connection waits to read (true) or to write. */
bool tls_wants_read(const tls_conn *t);
/* Whether decrypted or received bytes wait inside OpenSSL, which the
 * socket's readiness will not announce: read again before waiting. */
bool tls_pending(const tls_conn *t);
/* Why the last TLS_FAILED (a verification's reason when there was one:
 * "certificate has expired", "hostname mismatch"...); "" before any. */
const char *tls_why(const tls_conn *t);
/* The negotiated protocol ("TLSv1.3"), for logs and CLIENT INFO. */
const char *tls_version(const tls_conn *t);

#endif
