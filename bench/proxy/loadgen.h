/*
 * loadgen.h - what bench/proxy's load generators share: a monotonic clock,
 * a quick random number generator, dying with errno's words, connecting,
 * and writing a connection's output.
 */
#ifndef BENCH_PROXY_LOADGEN_H
#define BENCH_PROXY_LOADGEN_H

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

/* The program's name, for messages; each load generator defines it. */
extern const char *const loadgen_name;

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
/* xorshift64*: quick and good enough to spread keys over the ring. */
static inline uint32_t rng_next(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 32);
}

static inline void die(const char *what) {
    fprintf(stderr, "%s: %s: %s\n", loadgen_name, what, strerror(errno));
    exit(1);
}

/* A TCP connection to host:port, with TCP_NODELAY; exits on failure. */
static inline int loadgen_connect(const char *host, const char *port) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "%s: %s:%s: %s\n", loadgen_name, host, port, gai_strerror(rc));
        exit(1);
    }
    int fd = socket(res->ai_family, res->ai_socktype, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) die("connect");
    freeaddrinfo(res);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Writes buf[*off..len) to fd; watches fd (epoll ep, data ptr) for
 * EPOLLOUT only while a write is short, so a writable socket does not spin
 * the loop. *wants_out is what fd is watched for now. */
static inline void loadgen_flush(int ep, int fd, void *ptr, const char *buf, size_t len,
                                 size_t *off, int *wants_out) {
    while (*off < len) {
        ssize_t w = write(fd, buf + *off, len - *off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN) die("write");
        if (w < 0) break;
        *off += (size_t)w;
    }
    int want = *off < len;
    if (want == *wants_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = ptr};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) != 0) die("epoll_ctl");
    *wants_out = want;
}

#endif
