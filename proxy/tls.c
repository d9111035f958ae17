/*
 * tls.c - OpenSSL under the proxy's event loop: contexts from the pool's
 * keys, and handshakes, reads and writes that never block.
 *
 * Choices that hold for every context: TLS 1.2 at the oldest; no
 * renegotiation (a client could make the proxy do handshakes on demand);
 * no compression (CRIME); buffers released while a connection is idle (an
 * idle TLS client then costs a few KB, not 34); partial writes and moving
 * write buffers, since replies are appended to a buffer that may be
 * reallocated between a write that would block and its retry; read-ahead,
 * so one read(2) takes several records (and tls_pending tells the caller
 * what the socket's readiness no longer will).
 */
#define _POSIX_C_SOURCE 200809L
#include "tls.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls_ctx {
    SSL_CTX *ssl;
    _Atomic int refs;
};

struct tls_conn {
    SSL *ssl;
    bool wants_read;
    bool is_broken; /* a fatal error: OpenSSL forbids a shutdown after one */
    char why[160];
};

/* TLS 1.2's suites when tls_ciphers is not set: forward secrecy and AEAD
 * only (Mozilla's "intermediate" list without DHE). TLS 1.3's are all of
 * that kind already. */
#define DEFAULT_CIPHERS                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                         \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                         \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* OpenSSL's reason for the oldest error queued, or `fallback`. */
static const char *ssl_reason(const char *fallback) {
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : fallback;
}

/* A file OpenSSL may read: regular (a FIFO or /dev/zero would make it
 * read for ever) and readable. */
static int check_file(const char *what, const char *path, char *err, size_t err_len) {
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, err_len, "%s %s: %s", what, path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s %s: not a regular file", what, path);
        return -1;
    }
    return 0;
}

/* An encrypted key: OpenSSL's default would ask for its passphrase on the
 * terminal, and a daemon would wait for ever. No passphrase, a clear error. */
static int no_passphrase(char *buf, int size, int rwflag, void *user) {
    (void)buf, (void)size, (void)rwflag;
    *(bool *)user = true;
    return -1;
}

static int ctx_fail(SSL_CTX *ssl, char *err, size_t err_len, const char *what,
                    const char *path) {
    snprintf(err, err_len, "%s%s%s: %s", what, path ? " " : "", path ? path : "",
             ssl_reason("failed"));
    SSL_CTX_free(ssl);
    return -1;
}

int tls_ctx_new(const tls_options *opt, bool is_server, tls_ctx **out, char *err,
                size_t err_len) {
    ERR_clear_error();
    if (is_server && !opt->cert_file) {
        snprintf(err, err_len, "a TLS listener needs a certificate (tls_cert_file)");
        return -1;
    }
    if (opt->auth != TLS_AUTH_NO && !opt->ca_file) {
        snprintf(err, err_len, "verifying clients' certificates needs tls_ca_cert_file");
        return -1;
    }
    const char *key = opt->key_file ? opt->key_file : opt->cert_file;
    if ((opt->cert_file && check_file("certificate", opt->cert_file, err, err_len) != 0) ||
        (key && check_file("key", key, err, err_len) != 0) ||
        (opt->ca_file && check_file("CA file", opt->ca_file, err, err_len) != 0))
        return -1;
    SSL_CTX *ssl = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
    if (!ssl) return ctx_fail(NULL, err, err_len, "TLS context", NULL);
    unsigned p = opt->protocols ? opt->protocols : TLS_PROTO_12 | TLS_PROTO_13;
    SSL_CTX_set_min_proto_version(ssl, p & TLS_PROTO_12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ssl, p & TLS_PROTO_13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ssl, 1);
    if (SSL_CTX_set_cipher_list(ssl, opt->ciphers ? opt->ciphers : DEFAULT_CIPHERS) != 1)
        return ctx_fail(ssl, err, err_len, "tls_ciphers", NULL);
    if (opt->ciphersuites && SSL_CTX_set_ciphersuites(ssl, opt->ciphersuites) != 1)
        return ctx_fail(ssl, err, err_len, "tls_ciphersuites", NULL);
    bool is_encrypted = false;
    SSL_CTX_set_default_passwd_cb(ssl, no_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(ssl, &is_encrypted);
    if (opt->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ssl, opt->cert_file) != 1)
            return ctx_fail(ssl, err, err_len, "certificate", opt->cert_file);
        if (SSL_CTX_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) != 1) {
            if (!is_encrypted) return ctx_fail(ssl, err, err_len, "key", key);
            snprintf(err, err_len, "key %s is encrypted: a passphrase is not supported "
                     "(`openssl pkey -in KEY -out PLAIN` decrypts it)", key);
            SSL_CTX_free(ssl);
            ERR_clear_error();
            return -1;
        }
        if (SSL_CTX_check_private_key(ssl) != 1)
            return ctx_fail(ssl, err, err_len, "key", key);
    }
    if (opt->ca_file && SSL_CTX_load_verify_locations(ssl, opt->ca_file, NULL) != 1)
        return ctx_fail(ssl, err, err_len, "CA file", opt->ca_file);
    if (is_server) {
        /* Resumed sessions must come back to a context that verifies the
         * same way; OpenSSL refuses to resume without an id context. */
        static const unsigned char sid[] = "chash-proxy";
        SSL_CTX_set_session_id_context(ssl, sid, sizeof sid - 1);
        if (opt->auth != TLS_AUTH_NO) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(opt->ca_file);
            if (!names) return ctx_fail(ssl, err, err_len, "CA file", opt->ca_file);
            SSL_CTX_set_client_CA_list(ssl, names);
            SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER | (opt->auth == TLS_AUTH_YES
                                                           ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                           : 0),
                               NULL);
        }
    } else {
        if (!opt->ca_file && SSL_CTX_set_default_verify_paths(ssl) != 1)
            return ctx_fail(ssl, err, err_len, "the system's CA certificates", NULL);
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    }
    SSL_CTX_set_default_passwd_cb_userdata(ssl, NULL); /* is_encrypted goes out of scope */
    SSL_CTX_set_default_passwd_cb(ssl, NULL);
    tls_ctx *c = malloc(sizeof *c);
    if (!c) {
        SSL_CTX_free(ssl);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    c->ssl = ssl;
    atomic_init(&c->refs, 1);
    *out = c;
    return 0;
}

tls_ctx *tls_ctx_ref(tls_ctx *ctx) {
    if (ctx) atomic_fetch_add(&ctx->refs, 1);
    return ctx;
}

void tls_ctx_free(tls_ctx *ctx) {
    if (!ctx || atomic_fetch_sub(&ctx->refs, 1) != 1) return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

void tls_peer_name(const char *name, const char *addr, char *out, size_t out_len) {
    if (name) {
        snprintf(out, out_len, "%s", name);
        return;
    }
    const char *host = addr;
    size_t n = strlen(addr);
    const char *colon = strrchr(addr, ':');
    if (addr[0] == '[') { /* [v6]:port */
        const char *close = strchr(addr, ']');
        host = addr + 1;
        n = close ? (size_t)(close - host) : n - 1;
    } else if (addr[0] != '/' && colon) {
        n = (size_t)(colon - addr);
    }
    snprintf(out, out_len, "%.*s", (int)n, host);
}

bool tls_parse_protocols(const char *text, unsigned *out, const char **why) {
    unsigned set = 0;
    const char *s = text;
    while (*s) {
        while (*s == ' ') s++;
        if (!*s) break;
        size_t n = strcspn(s, " ");
        if (n == 7 && strncmp(s, "TLSv1.2", n) == 0) {
            set |= TLS_PROTO_12;
        } else if (n == 7 && strncmp(s, "TLSv1.3", n) == 0) {
            set |= TLS_PROTO_13;
        } else if ((n == 5 && strncmp(s, "TLSv1", n) == 0) ||
                   (n == 7 && strncmp(s, "TLSv1.1", n) == 0)) {
            *why = "TLSv1 and TLSv1.1 are not offered (TLS 1.2 at the oldest)";
            return false;
        } else {
            *why = "expected TLSv1.2 and/or TLSv1.3, space separated";
            return false;
        }
        s += n;
    }
    if (!set) {
        *why = "expected TLSv1.2 and/or TLSv1.3";
        return false;
    }
    *out = set;
    return true;
}

int tls_sniff(int fd) {
    unsigned char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK);
    if (n == 1) return b == 0x16 ? TLS_SNIFF_TLS : TLS_SNIFF_PLAIN; /* a handshake record */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return TLS_SNIFF_AGAIN;
    return TLS_SNIFF_EOF;
}

static tls_conn *conn_new(tls_ctx *ctx, int fd) {
    tls_conn *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    return t;
}

tls_conn *tls_accept(tls_ctx *ctx, int fd) {
    tls_conn *t = conn_new(ctx, fd);
    if (t) SSL_set_accept_state(t->ssl);
    return t;
}

tls_conn *tls_connect(tls_ctx *ctx, int fd, const char *name) {
    tls_conn *t = conn_new(ctx, fd);
    if (!t) return NULL;
    SSL_set_connect_state(t->ssl);
    if (name && *name) {
        unsigned char addr[16];
        bool is_ip = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name)
                       : SSL_set1_host(t->ssl, name) &&
                             SSL_set_tlsext_host_name(t->ssl, (char *)(uintptr_t)name);
        if (ok != 1) {
            tls_free(t);
            return NULL;
        }
    }
    return t;
}

void tls_free(tls_conn *t) {
    if (!t) return;
    if (SSL_is_init_finished(t->ssl) && !t->is_broken) {
        ERR_clear_error();
        SSL_shutdown(t->ssl); /* close_notify, best effort: never waits */
    }
    ERR_clear_error();
    SSL_free(t->ssl);
    free(t);
}

/* A fatal error's reason into t->why: a verification's when there was
 * one, else OpenSSL's. After one, no shutdown (OpenSSL forbids it). */
static int failed(tls_conn *t, const char *why) {
    t->is_broken = true;
    long v = SSL_get_verify_result(t->ssl);
    if (why)
        snprintf(t->why, sizeof t->why, "%s", why);
    else if (v != X509_V_OK)
        snprintf(t->why, sizeof t->why, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    else
        snprintf(t->why, sizeof t->why, "TLS: %s", ssl_reason("protocol error"));
    ERR_clear_error();
    return TLS_FAILED;
}

/* The outcome of an SSL call that returned rc <= 0. */
static int io_result(tls_conn *t, int rc, bool is_handshake) {
    int saved = errno;
    switch (SSL_get_error(t->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        t->wants_read = SSL_want_read(t->ssl);
        return TLS_AGAIN;
    case SSL_ERROR_ZERO_RETURN: /* close_notify */
        return is_handshake ? failed(t, "closed during the TLS handshake") : 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() != 0) return failed(t, NULL);
        /* EOF without close_notify, or a socket error */
        if (saved == 0 && !is_handshake) return 0;
        return failed(t, saved ? strerror(saved) : "closed during the TLS handshake");
    default:
        return failed(t, NULL);
    }
}

int tls_handshake(tls_conn *t) {
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(t->ssl);
    return rc == 1 ? 1 : io_result(t, rc, true);
}

ssize_t tls_read(tls_conn *t, void *buf, size_t len) {
    ERR_clear_error();
    errno = 0;
    size_t got = 0;
    int rc = SSL_read_ex(t->ssl, buf, len, &got);
    return rc == 1 ? (ssize_t)got : io_result(t, rc, !SSL_is_init_finished(t->ssl));
}

ssize_t tls_write(tls_conn *t, const void *buf, size_t len) {
    ERR_clear_error();
    errno = 0;
    size_t put = 0;
    int rc = SSL_write_ex(t->ssl, buf, len, &put);
    if (rc == 1) return (ssize_t)put;
    rc = io_result(t, rc, !SSL_is_init_finished(t->ssl));
    if (rc == 0) { /* the peer said goodbye while we still had things to say */
        snprintf(t->why, sizeof t->why, "closed by the peer");
        return TLS_FAILED;
    }
    return rc;
}

bool tls_wants_read(const tls_conn *t) { return t->wants_read; }

bool tls_pending(const tls_conn *t) { return SSL_has_pending(t->ssl) == 1; }

const char *tls_why(const tls_conn *t) { return t->why; }

const char *tls_version(const tls_conn *t) { return SSL_get_version(t->ssl); }
