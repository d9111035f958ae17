/*
 * fuzz_tls.c - libFuzzer harness for what a TLS listener does with a
 * client's bytes before the client has authenticated (proxy/tls.c): the
 * one-byte sniff, OpenSSL's server-side handshake driven by tls_handshake,
 * and tls_read/tls_write, on a real non-blocking socket.
 *
 * The input's first byte chooses how it is delivered; the rest is what the
 * client sends:
 *   bit 0     the listener's context: 0 plain, 1 tls_auth_clients yes with a
 *             CA file (the client-certificate path);
 *   bit 1     established: an in-process client (tls_connect) first
 *             completes a real handshake (with a client certificate the CA
 *             trusts) and sends the input's next byte's worth of the input
 *             as application data; the rest of the input then follows raw,
 *             as a client that breaks the record layer mid-connection;
 *   bits 2-3  how the raw bytes are written (fuzz.h's modes: whole, one byte
 *             at a time, random chunks), the listener's side stepping
 *             between writes, so records arrive in pieces;
 *   bit 4     how the client leaves after its last byte: 0 it shuts its
 *             writing half (EOF), 1 it closes its end without reading what
 *             the listener sent (a reset: ECONNRESET, EPIPE);
 *   the rest  salt for the chunk sizes and the read buffer's size.
 *
 * Checked: tls_sniff says TLS exactly for a first byte 0x16 and takes
 * nothing; every call returns only what tls.h documents; tls_why is a
 * NUL-terminated line under 160 bytes, non-empty after TLS_FAILED; a
 * handshake or read ends (TLS_FAILED or 0) once the peer is gone and its
 * bytes are taken, never waits for ever; the established handshake
 * succeeds. Leaks are LSan's, hangs libFuzzer's -timeout.
 *
 * The certificate and key are made once, in memory (EC P-256, self-signed,
 * OpenSSL 3), written to a temporary directory for tls_ctx_new, then
 * removed. OpenSSL itself is not instrumented: coverage is tls.c's and
 * this file's.
 */
#define _POSIX_C_SOURCE 200809L
#include "fuzz.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

enum { WHY_CAP = 160 }; /* tls.c's why[] */

static tls_ctx *server_plain; /* tls_auth_clients no */
static tls_ctx *server_auth;  /* tls_auth_clients yes, the certificate as CA */
static tls_ctx *client_ctx;   /* the established mode's client: same certificate */

/* ---- The certificate, made once ---------------------------------------- */

static bool add_ext(X509 *x, int nid, const char *value) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!e) return false;
    bool ok = X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

/* A P-256 key and a self-signed certificate for it, usable as a server's,
 * a client's and as the CA that trusts both. */
static bool make_cert(EVP_PKEY **pkey_out, X509 **x509_out) {
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    bool ok = pkey && x && X509_set_version(x, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
              X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600) &&
              X509_set_pubkey(x, pkey) == 1;
    if (ok) {
        name = X509_get_subject_name(x);
        ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)"chash-proxy fuzz", -1, -1,
                                        0) == 1 &&
             X509_set_issuer_name(x, name) == 1 &&
             add_ext(x, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") &&
             add_ext(x, NID_subject_key_identifier, "hash") &&
             X509_sign(x, pkey, EVP_sha256()) > 0;
    }
    if (!ok) {
        EVP_PKEY_free(pkey);
        X509_free(x);
        return false;
    }
    *pkey_out = pkey;
    *x509_out = x;
    return true;
}

static bool write_pem(const char *path, EVP_PKEY *pkey, X509 *x) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    bool ok = pkey ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1
                   : PEM_write_X509(f, x) == 1;
    return fclose(f) == 0 && ok;
}

static tls_ctx *ctx_or_die(const tls_options *opt, bool is_server) {
    tls_ctx *ctx = NULL;
    char err[256] = "";
    if (tls_ctx_new(opt, is_server, &ctx, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_tls: tls_ctx_new: %s\n", err);
        abort();
    }
    return ctx;
}

static void init_once(void) {
    /* The established client's close_notify goes to a socket whose writing
     * half is shut; the proxy ignores SIGPIPE too (main.c). */
    signal(SIGPIPE, SIG_IGN);
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    if (!make_cert(&pkey, &x)) {
        fprintf(stderr, "fuzz_tls: cannot make a certificate\n");
        abort();
    }
    const char *tmp = getenv("TMPDIR");
    char dir[512], cert[600], key[600];
    snprintf(dir, sizeof dir, "%s/fuzz_tls.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fuzz_tls: mkdtemp");
        abort();
    }
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    if (!write_pem(cert, NULL, x) || !write_pem(key, pkey, NULL)) {
        fprintf(stderr, "fuzz_tls: cannot write %s\n", dir);
        abort();
    }
    tls_options plain = {.cert_file = cert, .key_file = key, .auth = TLS_AUTH_NO};
    tls_options auth = {.cert_file = cert, .key_file = key, .ca_file = cert,
                        .auth = TLS_AUTH_YES};
    tls_options client = {.cert_file = cert, .key_file = key, .ca_file = cert,
                          .auth = TLS_AUTH_NO};
    server_plain = ctx_or_die(&plain, true);
    server_auth = ctx_or_die(&auth, true);
    client_ctx = ctx_or_die(&client, false);
    /* The contexts hold what they read: the files can go. */
    unlink(cert);
    unlink(key);
    rmdir(dir);
    EVP_PKEY_free(pkey);
    X509_free(x);
}

/* ---- Invariants --------------------------------------------------------- */

static void check_why(const tls_conn *t, bool failed) {
    const char *why = tls_why(t);
    FUZZ_CHECK(why != NULL);
    size_t n = strnlen(why, WHY_CAP);
    FUZZ_CHECK(n < WHY_CAP);
    FUZZ_CHECK(strpbrk(why, "\r\n") == NULL); /* logged as one line */
    if (failed) FUZZ_CHECK(n > 0);
}

static void check_handshake_rc(const tls_conn *t, int rc) {
    FUZZ_CHECK(rc == 1 || rc == TLS_AGAIN || rc == TLS_FAILED);
    check_why(t, rc == TLS_FAILED);
}

static void check_io_rc(const tls_conn *t, ssize_t rc, size_t len, bool zero_ok) {
    FUZZ_CHECK((rc > 0 && (size_t)rc <= len) || (zero_ok && rc == 0) || rc == TLS_AGAIN ||
               rc == TLS_FAILED);
    check_why(t, rc == TLS_FAILED);
}

/* ---- The client's side: bytes in, a few at a time ----------------------- */

typedef struct feed {
    int fd;                  /* the client's end */
    const uint8_t *data;
    size_t size, off;        /* size: what fits, once a write would block */
    enum fuzz_mode mode;
    fuzz_rng rng;
    bool is_abort;           /* leave by closing, not by shutting down */
    bool is_shut;            /* gone: the listener sees EOF or a reset */
    tls_conn **client;       /* the established client, freed before a close */
} feed;

/* Writes the next chunk, or shuts the writing half after the last; false
 * when nothing is left to deliver. */
static bool feed_step(feed *f) {
    if (f->off < f->size) {
        size_t k = fuzz_chunk(f->mode, &f->rng, f->size - f->off);
        ssize_t w = write(f->fd, f->data + f->off, k);
        if (w > 0) {
            f->off += (size_t)w;
            return true;
        }
        FUZZ_CHECK(w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        f->size = f->off; /* full: the rest does not fit */
    }
    if (!f->is_shut) {
        if (f->is_abort) {
            /* Its close_notify (after the raw bytes), then the close. */
            tls_free(*f->client);
            *f->client = NULL;
            FUZZ_CHECK(close(f->fd) == 0);
            f->fd = -1;
        } else {
            FUZZ_CHECK(shutdown(f->fd, SHUT_WR) == 0);
        }
        f->is_shut = true;
        return true;
    }
    return false;
}

/* Drops what the listener sent the client (its flight, alerts), so its
 * writes never fill the socket. */
static void drain(int fd) {
    char sink[4096];
    while (recv(fd, sink, sizeof sink, 0) > 0) {
    }
}

static void set_nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    FUZZ_CHECK(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

/* ---- The listener's side ------------------------------------------------ */

enum phase { SNIFF, HANDSHAKE, OPEN, DONE };

static const char reply[] = "+OK\r\n";

/* The reply once the handshake is done, as the proxy answers a command. */
static void say_ok(tls_conn *t) {
    ssize_t rc = tls_write(t, reply, sizeof reply - 1);
    check_io_rc(t, rc, sizeof reply - 1, false);
}

/* One step of the listener on fd; returns the phase it reached, *got
 * whether it read application bytes. */
static enum phase listener_step(enum phase ph, tls_ctx *ctx, int fd, tls_conn **t,
                                const feed *f, uint8_t *rbuf, size_t rlen, bool *got) {
    *got = false;
    if (ph == SNIFF) {
        int s = tls_sniff(fd);
        FUZZ_CHECK(s == TLS_SNIFF_TLS || s == TLS_SNIFF_PLAIN || s == TLS_SNIFF_AGAIN ||
                   s == TLS_SNIFF_EOF);
        /* The client writes its first chunk before the listener looks. */
        if (f->off > 0) {
            FUZZ_CHECK(s == (f->data[0] == 0x16 ? TLS_SNIFF_TLS : TLS_SNIFF_PLAIN));
        } else {
            FUZZ_CHECK(s == (f->is_shut ? TLS_SNIFF_EOF : TLS_SNIFF_AGAIN));
        }
        if (s == TLS_SNIFF_AGAIN) return SNIFF;
        if (s != TLS_SNIFF_TLS) {
            /* Plaintext: the proxy refuses it; the sniff took nothing. */
            if (s == TLS_SNIFF_PLAIN) {
                uint8_t first;
                FUZZ_CHECK(recv(fd, &first, 1, 0) == 1 && first == f->data[0]);
            }
            return DONE;
        }
        *t = tls_accept(ctx, fd);
        FUZZ_CHECK(*t != NULL);
        check_why(*t, false);
        FUZZ_CHECK(strcmp(tls_why(*t), "") == 0); /* "" before any */
        return HANDSHAKE;
    }
    if (ph == HANDSHAKE) {
        int rc = tls_handshake(*t);
        check_handshake_rc(*t, rc);
        if (rc == TLS_FAILED) return DONE;
        if (rc == TLS_AGAIN) return HANDSHAKE;
        FUZZ_CHECK(tls_version(*t) != NULL);
        say_ok(*t);
        return OPEN;
    }
    /* OPEN: read what came, as client_read does (again while pending). */
    ssize_t rc;
    int rounds = 0;
    do {
        rc = tls_read(*t, rbuf, rlen);
        check_io_rc(*t, rc, rlen, true);
        if (rc > 0) *got = true;
    } while (rc > 0 && tls_pending(*t) && ++rounds < 64);
    if (rc == 0 || rc == TLS_FAILED) return DONE;
    return OPEN;
}

/* ---- Established mode: a real handshake first --------------------------- */

static tls_conn *establish(tls_ctx *sctx, int cfd, int sfd, tls_conn **server) {
    tls_conn *c = tls_connect(client_ctx, cfd, NULL);
    FUZZ_CHECK(c != NULL);
    tls_conn *s = NULL;
    bool c_done = false, s_done = false;
    for (int i = 0; i < 64 && !(c_done && s_done); i++) {
        if (!c_done) {
            int rc = tls_handshake(c);
            check_handshake_rc(c, rc);
            if (rc == TLS_FAILED) fprintf(stderr, "client: %s\n", tls_why(c));
            FUZZ_CHECK(rc != TLS_FAILED);
            c_done = rc == 1;
        }
        if (!s) {
            int sn = tls_sniff(sfd);
            if (sn == TLS_SNIFF_AGAIN) continue;
            FUZZ_CHECK(sn == TLS_SNIFF_TLS);
            s = tls_accept(sctx, sfd);
            FUZZ_CHECK(s != NULL);
        }
        if (!s_done) {
            int rc = tls_handshake(s);
            check_handshake_rc(s, rc);
            if (rc == TLS_FAILED) fprintf(stderr, "server: %s\n", tls_why(s));
            FUZZ_CHECK(rc != TLS_FAILED);
            s_done = rc == 1;
        }
    }
    FUZZ_CHECK(c_done && s_done);
    FUZZ_CHECK(tls_version(s) != NULL && strncmp(tls_version(s), "TLSv1.", 6) == 0);
    *server = s;
    return c;
}

/* ---- One input ---------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool is_ready;
    if (!is_ready) {
        init_once();
        is_ready = true;
    }
    if (size == 0) return 0;
    uint8_t ctl = data[0];
    data++;
    size--;
    tls_ctx *sctx = ctl & 1 ? server_auth : server_plain;
    bool is_established = ctl & 2;
    enum fuzz_mode mode = (enum fuzz_mode)((ctl >> 2) & 3);
    if (mode >= FUZZ_MODE_COUNT) mode = FUZZ_RANDOM;

    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    set_nonblocking(sv[0]);
    set_nonblocking(sv[1]);
    int cfd = sv[0], sfd = sv[1];

    tls_conn *client = NULL, *server = NULL;
    feed f = {.fd = cfd, .mode = mode, .rng = fuzz_rng_from(data, size, ctl),
              .is_abort = ctl & 16, .client = &client};
    /* Sometimes a small read buffer, so records are taken in pieces. */
    static const size_t rlens[4] = {16384, 1, 7, 300};
    size_t rlen = rlens[fuzz_rng_next(&f.rng) % 4];
    static uint8_t rbuf[16384];

    enum phase ph = SNIFF;
    if (is_established) {
        client = establish(sctx, cfd, sfd, &server);
        say_ok(server);
        /* Application data through the client's TLS, then the rest raw. */
        size_t app = size ? data[0] : 0;
        if (size) {
            data++;
            size--;
        }
        if (app > size) app = size;
        size_t sent = 0;
        for (int i = 0; sent < app && i < 16; i++) {
            ssize_t rc = tls_write(client, data + sent, app - sent);
            check_io_rc(client, rc, app - sent, false);
            FUZZ_CHECK(rc != TLS_FAILED);
            if (rc > 0) sent += (size_t)rc;
        }
        data += app;
        size -= app;
        ph = OPEN;
    }
    f.data = data;
    f.size = size;

    /* Deliver and step until the listener is done or nothing moves: once
     * the client is gone and the listener reads nothing more, it must end
     * within a few steps (EOF fails a handshake and ends a read). */
    int idle = 0;
    for (long i = 0; ph != DONE; i++) {
        FUZZ_CHECK(i < 4 * 8192 + 64);
        bool moved = feed_step(&f), got;
        ph = listener_step(ph, sctx, sfd, &server, &f, rbuf, rlen, &got);
        if (!is_established && !f.is_abort) drain(cfd);
        if (moved || got) {
            idle = 0;
        } else {
            FUZZ_CHECK(++idle < 8);
        }
    }

    if (client) {
        /* The client reads the listener's reply (and its tickets, alerts). */
        for (int i = 0; i < 16; i++) {
            ssize_t rc = tls_read(client, rbuf, sizeof rbuf);
            check_io_rc(client, rc, sizeof rbuf, true);
            if (rc <= 0 && !(rc == TLS_AGAIN && tls_pending(client))) break;
        }
    }
    tls_free(server);
    tls_free(client);
    if (f.fd >= 0) close(f.fd);
    close(sfd);
    return 0;
}
