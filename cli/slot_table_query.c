/*
 * slot_table_query.c - ask a live Redis Cluster node for its slot table
 * (slot_table.h): one TCP connection, CLUSTER SHARDS, and CLUSTER SLOTS when
 * the node predates SHARDS (Redis 6 and older). The replies are framed by
 * the proxy's reply reader and decoded by slot_table_reply.c; this file only
 * moves bytes, each step under a deadline, and names the address in every
 * error.
 */
#define _POSIX_C_SOURCE 200809L
#include "slot_table.h"
#include "reply.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A slot table of a thousand-node cluster is a few hundred KB: anything
 * this big is not one. */
#define REPLY_MAX (64u << 20)

typedef struct conn {
    const char *address; /* as the user gave it, for messages */
    int fd;
    int timeout_ms;
    slot_table_error *err;
} conn;

static bool fail(conn *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(conn *k, const char *fmt, ...) {
    int n = snprintf(k->err->why, sizeof k->err->why, "%s: ", k->address);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof k->err->why)
        vsnprintf(k->err->why + n, sizeof k->err->why - (size_t)n, fmt, ap);
    va_end(ap);
    k->err->line = 0;
    return false;
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events` or the deadline passes. */
static bool wait_for(conn *k, short events, long long deadline, const char *doing) {
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) return fail(k, "no answer within %d ms while %s", k->timeout_ms, doing);
        struct pollfd p = {k->fd, events, 0};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0) return true;
        if (rc < 0 && errno != EINTR) return fail(k, "%s: %s", doing, strerror(errno));
    }
}

/* "host:port" or "[v6]:port" into host and port. */
static bool split_address(conn *k, char *host, size_t host_cap, char *port, size_t port_cap) {
    const char *a = k->address, *colon = strrchr(a, ':');
    const char *h = a;
    size_t h_len = colon ? (size_t)(colon - a) : 0;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (!close || close[1] != ':') return fail(k, "expected HOST:PORT or [IPv6]:PORT");
        h = a + 1;
        h_len = (size_t)(close - a) - 1;
        colon = close + 1;
    }
    size_t p_len = colon ? strlen(colon + 1) : 0;
    if (!colon || h_len == 0 || h_len >= host_cap || p_len == 0 || p_len >= port_cap ||
        strspn(colon + 1, "0123456789") != p_len || atol(colon + 1) < 1 || atol(colon + 1) > 65535)
        return fail(k, "expected HOST:PORT or [IPv6]:PORT");
    memcpy(host, h, h_len);
    host[h_len] = '\0';
    memcpy(port, colon + 1, p_len + 1);
    return true;
}

static bool connect_to(conn *k, const char *host, const char *port) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    int rc = getaddrinfo(host, port, &hints, &list);
    if (rc != 0) return fail(k, "cannot resolve '%s': %s", host, gai_strerror(rc));
    int why = 0;
    long long deadline = now_ms() + k->timeout_ms;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            why = errno;
            continue;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        k->fd = fd;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && wait_for(k, POLLOUT, deadline, "connecting"))) {
            socklen_t len = sizeof why;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &why, &len) == 0 && why == 0) {
                freeaddrinfo(list);
                return true;
            }
        } else if (errno != EINPROGRESS) {
            why = errno;
        } else {
            why = ETIMEDOUT;
        }
        close(fd);
        k->fd = -1;
    }
    freeaddrinfo(list);
    return fail(k, "cannot connect: %s", strerror(why ? why : ECONNREFUSED));
}

static bool send_all(conn *k, const char *buf, size_t len) {
    long long deadline = now_ms() + k->timeout_ms;
    while (len > 0) {
        ssize_t n = send(k->fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_for(k, POLLOUT, deadline, "sending")) return false;
        } else if (n < 0 && errno != EINTR) {
            return fail(k, "send: %s", strerror(errno));
        }
    }
    return true;
}

/* One whole reply into *out (malloc'd, *out_len bytes). */
static bool read_reply(conn *k, char **out, size_t *out_len) {
    resp_reply_parser p;
    resp_reply_init(&p);
    size_t cap = 16384, used = 0, len = 0;
    char *buf = malloc(cap);
    if (!buf) return fail(k, "out of memory");
    long long deadline = now_ms() + k->timeout_ms;
    for (;;) {
        int rc = used ? resp_reply_next(&p, buf, used, &len) : 0;
        if (rc == 1) break;
        if (rc < 0) {
            free(buf);
            return fail(k, "the answer is not RESP: is this a Redis server?");
        }
        if (used == cap) {
            char *more = cap < REPLY_MAX ? realloc(buf, cap * 2) : NULL;
            if (!more) {
                free(buf);
                return fail(k, "an answer longer than %u bytes", REPLY_MAX);
            }
            buf = more;
            cap *= 2;
        }
        ssize_t n = recv(k->fd, buf + used, cap - used, 0);
        if (n > 0) {
            used += (size_t)n;
        } else if (n == 0) {
            free(buf);
            return fail(k, "the connection closed before the answer was complete");
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_for(k, POLLIN, deadline, "waiting for the answer")) {
                free(buf);
                return false;
            }
        } else if (errno != EINTR) {
            int e = errno;
            free(buf);
            return fail(k, "recv: %s", strerror(e));
        }
    }
    *out = buf;
    *out_len = len;
    return true;
}

static bool ask(conn *k, const char *subcommand, char **reply, size_t *len) {
    char request[64];
    int n = snprintf(request, sizeof request, "*2\r\n$7\r\nCLUSTER\r\n$%zu\r\n%s\r\n",
                     strlen(subcommand), subcommand);
    return send_all(k, request, (size_t)n) && read_reply(k, reply, len);
}

/* Does the error text contain `what`, in any case? */
static bool says(const char *text, const char *what) {
    size_t n = strlen(what);
    for (const char *t = text; *t; t++) {
        size_t i = 0;
        while (i < n && t[i] && tolower((unsigned char)t[i]) == what[i]) i++;
        if (i == n) return true;
    }
    return false;
}

bool slot_table_query(const char *address, int timeout_ms, slot_table *m, slot_table_error *err) {
    conn k = {address, -1, timeout_ms, err};
    char host[256], port[8];
    if (!split_address(&k, host, sizeof host, port, sizeof port) || !connect_to(&k, host, port))
        return false;
    char *reply = NULL;
    size_t len = 0;
    bool is_error_reply = false, is_decoded = false;
    const char *asked = "SHARDS";
    bool is_sent = ask(&k, asked, &reply, &len);
    if (is_sent) is_decoded = slot_table_from_shards(m, reply, len, host, &is_error_reply, err);
    if (is_sent && !is_decoded && is_error_reply &&
        (says(err->why, "unknown subcommand") || says(err->why, "unknown command"))) {
        free(reply);
        reply = NULL;
        asked = "SLOTS";
        is_sent = ask(&k, asked, &reply, &len);
        if (is_sent) is_decoded = slot_table_from_slots(m, reply, len, host, &is_error_reply, err);
    }
    free(reply);
    close(k.fd);
    if (!is_sent || is_decoded) return is_decoded; /* a failed ask named the address */
    char said[sizeof err->why];
    memcpy(said, err->why, sizeof said);
    if (!is_error_reply) return fail(&k, "CLUSTER %s: %s", asked, said);
    if (says(said, "cluster support disabled"))
        return fail(&k, "not in cluster mode (it answers CLUSTER %s with: %s)", asked, said);
    return fail(&k, "CLUSTER %s failed: %s", asked, said);
}
