/*
 * mcload.c - a memcached ASCII load generator for bench/proxy.sh: the
 * memcached counterpart of `redis-benchmark -t set,get -P N`, with p50/p99.
 *
 * One thread, one epoll loop, `conn_count` connections. Each connection sends
 * a batch of `pipeline` requests in one write, then reads until every reply
 * of the batch is in; a request's latency runs from its batch's write to its
 * own reply, as redis-benchmark measures. Keys are "key:%012u" drawn
 * uniformly from [0, keyspace), so a SET phase before a GET phase makes hits.
 *
 * Invariant: a connection's `in_flight` equals the replies it still expects,
 * and the parser consumes only whole replies from `rbuf`.
 *
 * Usage: mcload -h HOST -p PORT [-c CONNS] [-n REQUESTS] [-P DEPTH]
 *               [-r KEYSPACE] [-d VALUE_BYTES] [-t set,get]
 * Prints one JSON object per phase; exits 1 on a connection error or when a
 * reply is an error (so a broken target never looks fast).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

const char *const loadgen_name = "mcload";

enum { RBUF_CAP = 1 << 20 };

typedef struct {
    int fd;
    uint32_t in_flight;     /* replies still expected for the current batch */
    int wants_out;          /* EPOLLOUT is registered: a write was short */
    uint64_t batch_start_ns;
    char *wbuf;
    size_t wbuf_len, wbuf_off;
    char rbuf[RBUF_CAP];
    size_t rbuf_len;
} client;

/* Returns the length of one complete reply at the start of buf, 0 if it is
 * not all there yet, or -1 for an error reply (ERROR, CLIENT_ERROR, ...). */
static long reply_length(const char *buf, size_t len) {
    const char *eol = memmem(buf, len, "\r\n", 2);
    if (!eol) return 0;
    size_t line = (size_t)(eol - buf) + 2;
    if (line >= 7 && memcmp(buf, "VALUE ", 6) == 0) {
        /* VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n ... END\r\n */
        const char *p = buf + 6;
        int field = 0;
        while (p < eol && field < 2) {
            if (*p++ == ' ') field++;
        }
        unsigned long bytes = strtoul(p, NULL, 10);
        size_t need = line + bytes + 2;
        if (len < need + 5) return 0;
        /* One key per get here, so exactly one VALUE precedes END. */
        if (memcmp(buf + need, "END\r\n", 5) != 0) return -1;
        return (long)(need + 5);
    }
    if (line == 5 && memcmp(buf, "END", 3) == 0) return (long)line;
    if (line == 8 && memcmp(buf, "STORED", 6) == 0) return (long)line;
    return -1;
}

static int connect_to(const char *host, const char *port) {
    int fd = loadgen_connect(host, port);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl");
    return fd;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    const char *host, *port;
    uint32_t conn_count, pipeline, keyspace, value_bytes;
    uint64_t request_count;
} options;

typedef struct {
    const options *o;
    int is_set, ep;
    const char *value;
    size_t req_cap;        /* bytes one request may take in wbuf */
    uint64_t sent, done;
    uint32_t *lat_us;      /* one latency per reply, in reply order */
} phase;

/* Writes what is left of the batch. */
static void flush_batch(phase *ph, client *c) {
    loadgen_flush(ph->ep, c->fd, c, c->wbuf, c->wbuf_len, &c->wbuf_off, &c->wants_out);
}

/* Builds and starts the connection's next batch of up to `pipeline` requests. */
static void send_batch(phase *ph, client *c) {
    const options *o = ph->o;
    uint32_t batch = o->pipeline;
    if (o->request_count - ph->sent < batch) batch = (uint32_t)(o->request_count - ph->sent);
    c->wbuf_len = c->wbuf_off = 0;
    for (uint32_t i = 0; i < batch; i++) {
        uint32_t k = rng_next() % o->keyspace;
        char *w = c->wbuf + c->wbuf_len;
        int n = ph->is_set ? snprintf(w, ph->req_cap, "set key:%012u 0 0 %u\r\n%s\r\n", k,
                                      o->value_bytes, ph->value)
                           : snprintf(w, ph->req_cap, "get key:%012u\r\n", k);
        c->wbuf_len += (size_t)n;
    }
    ph->sent += batch;
    c->in_flight = batch;
    c->batch_start_ns = now_ns();
    flush_batch(ph, c);
}

/* Reads what the server sent and takes every complete reply off rbuf. */
static void read_replies(phase *ph, client *c) {
    ssize_t r = read(c->fd, c->rbuf + c->rbuf_len, RBUF_CAP - c->rbuf_len);
    if (r == 0) {
        fprintf(stderr, "mcload: server closed the connection\n");
        exit(1);
    }
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        die("read");
    }
    c->rbuf_len += (size_t)r;
    size_t off = 0;
    uint64_t t = now_ns();
    while (c->in_flight > 0) {
        long len = reply_length(c->rbuf + off, c->rbuf_len - off);
        if (len < 0) {
            fprintf(stderr, "mcload: error reply: %.80s\n", c->rbuf + off);
            exit(1);
        }
        if (len == 0) break;
        off += (size_t)len;
        ph->lat_us[ph->done++] = (uint32_t)((t - c->batch_start_ns) / 1000);
        c->in_flight--;
    }
    memmove(c->rbuf, c->rbuf + off, c->rbuf_len - off);
    c->rbuf_len -= off;
    if (c->in_flight == 0 && ph->sent < ph->o->request_count) send_batch(ph, c);
}

static void run_phase(const options *o, int is_set) {
    phase ph = {.o = o, .is_set = is_set, .req_cap = 64 + o->value_bytes};
    client *clients = calloc(o->conn_count, sizeof *clients);
    ph.lat_us = malloc((size_t)o->request_count * sizeof *ph.lat_us);
    char *value = malloc(o->value_bytes + 1);
    if (!clients || !ph.lat_us || !value) die("malloc");
    memset(value, 'x', o->value_bytes);
    value[o->value_bytes] = 0;
    ph.value = value;
    ph.ep = epoll_create1(0);
    if (ph.ep < 0) die("epoll_create1");

    for (uint32_t i = 0; i < o->conn_count; i++) {
        client *c = &clients[i];
        c->fd = connect_to(o->host, o->port);
        c->wbuf = malloc(ph.req_cap * o->pipeline);
        if (!c->wbuf) die("malloc");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ph.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl");
    }
    /* Connections are all up before the clock starts, as in redis-benchmark. */
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < o->conn_count && ph.sent < o->request_count; i++)
        send_batch(&ph, &clients[i]);
    struct epoll_event events[256];
    while (ph.done < o->request_count) {
        int n = epoll_wait(ph.ep, events, 256, 10000);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "mcload: no progress for 10 s (%llu of %llu replies)\n",
                    (unsigned long long)ph.done, (unsigned long long)o->request_count);
            exit(1);
        }
        for (int e = 0; e < n; e++) {
            client *c = events[e].data.ptr;
            if (events[e].events & EPOLLOUT) flush_batch(&ph, c);
            if (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_replies(&ph, c);
        }
    }
    uint64_t elapsed_ns = now_ns() - t0;
    uint64_t done = ph.done;
    uint64_t sum_us = 0;
    for (uint64_t i = 0; i < done; i++) sum_us += ph.lat_us[i];
    qsort(ph.lat_us, (size_t)done, sizeof *ph.lat_us, cmp_u32);
    printf("{\"test\":\"%s\",\"ops_per_sec\":%.0f,\"avg_ms\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"max_ms\":%.3f,\"requests\":%llu,\"conns\":%u,\"pipeline\":%u}\n",
           is_set ? "SET" : "GET", (double)done * 1e9 / (double)elapsed_ns,
           (double)sum_us / (double)done / 1000.0,
           ph.lat_us[done / 2] / 1000.0, ph.lat_us[(size_t)((double)done * 0.99)] / 1000.0,
           ph.lat_us[done - 1] / 1000.0, (unsigned long long)done, o->conn_count, o->pipeline);
    fflush(stdout);
    for (uint32_t i = 0; i < o->conn_count; i++) {
        close(clients[i].fd);
        free(clients[i].wbuf);
    }
    close(ph.ep);
    free(clients);
    free(ph.lat_us);
    free(value);
}

static uint32_t arg_u32(const char *s, const char *name) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || end == s || v == 0 || v > UINT32_MAX) {
        fprintf(stderr, "mcload: %s: expected a positive number\n", name);
        exit(2);
    }
    return (uint32_t)v;
}

int main(int argc, char **argv) {
    options o = {.host = "127.0.0.1", .port = "11211", .conn_count = 50, .pipeline = 1,
                 .keyspace = 100000, .value_bytes = 3, .request_count = 200000};
    const char *tests = "set,get";
    int opt;
    while ((opt = getopt(argc, argv, "h:p:c:n:P:r:d:t:")) != -1) {
        switch (opt) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = optarg; break;
        case 'c': o.conn_count = arg_u32(optarg, "-c"); break;
        case 'n': o.request_count = arg_u32(optarg, "-n"); break;
        case 'P': o.pipeline = arg_u32(optarg, "-P"); break;
        case 'r': o.keyspace = arg_u32(optarg, "-r"); break;
        case 'd': o.value_bytes = arg_u32(optarg, "-d"); break;
        case 't': tests = optarg; break;
        default:
            fprintf(stderr, "usage: mcload -h HOST -p PORT [-c CONNS] [-n REQUESTS] [-P DEPTH] "
                            "[-r KEYSPACE] [-d VALUE_BYTES] [-t set,get]\n");
            return 2;
        }
    }
    if (o.value_bytes > (1u << 20)) {
        fprintf(stderr, "mcload: -d: at most 1 MiB\n");
        return 2;
    }
    if (strstr(tests, "set")) run_phase(&o, 1);
    if (strstr(tests, "get")) run_phase(&o, 0);
    return 0;
}
