/*
 * mixload.c - a mixed Redis load for bench/proxy.sh: plain GET and SET,
 * transactions on hash-tagged keys and pub/sub fan-out, from one process,
 * so a proxy is measured on what a real application sends and not on GET
 * alone. redis-benchmark cannot subscribe, nor count what subscribers get.
 *
 * One thread, one epoll loop. `conn_count` clients each send one operation,
 * wait for its replies, then send the next (pipeline 1, as redis-benchmark
 * -P 1). An operation is drawn by weight (-m, default get=60,set=25,
 * txn=10,pub=5):
 *   get   GET key:%012u
 *   set   SET key:%012u <value>
 *   txn   MULTI, SET {acct:%06u}:bal <value>, INCR {acct:%06u}:n, EXEC in
 *         one write, as a client library's transaction pipeline sends it;
 *         the keys share a hash tag, so a proxy with hash_tag "{}" keeps
 *         them on one server. EXEC must answer a 2-element array.
 *   pub   PUBLISH news:%u <send time>, to one of `channel_count` channels
 * Before the clock starts, `sub_count` subscriber connections subscribe:
 * all but the last SUBSCRIBE to every channel, the last PSUBSCRIBEs
 * "news:*" (a pattern listens on every server behind a proxy). Every
 * PUBLISH reply (the receivers the server counted) adds to the messages
 * expected; once every operation is answered the subscribers must have
 * received exactly that many (published x receivers), or it exits 1.
 *
 * Counting: a "command" is one command sent (a transaction is 4), and the
 * row "ALL" is per command: bench/proxy.sh divides CPU by it. A command's
 * latency runs from its operation's write to its own reply (mcload's rule
 * for a pipelined batch); the row "TXN" is a whole transaction (MULTI's
 * write to EXEC's reply); "MSG" is publish-to-delivery (the payload carries
 * the publisher's send time, same clock). The load generator's own CPU
 * (getrusage) is in the ALL row, so it is never mistaken for the proxy's.
 *
 * Usage: mixload -h HOST -p PORT [-c CONNS] [-n OPERATIONS] [-r KEYSPACE]
 *                [-d VALUE_BYTES] [-m get=G,set=S,txn=T,pub=P]
 *                [-s SUBSCRIBERS] [-C CHANNELS]
 * Prints one JSON object per row; exits 1 on a connection error, an error
 * reply, an unexpected reply, or a lost or extra message (so a broken
 * target never looks fast), 2 on a usage error.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

const char *const loadgen_name = "mixload";

enum { RBUF_CAP = 1 << 20, WBUF_CAP = 4096 };
enum { OP_GET, OP_SET, OP_TXN, OP_PUB, OP_KINDS };
static const char *const op_name[OP_KINDS] = {"GET", "SET", "TXN", "PUBLISH"};
static const char *const op_flag[OP_KINDS] = {"get", "set", "txn", "pub"};

typedef struct {
    int fd;
    int is_sub;
    int wants_out;       /* EPOLLOUT is registered: a write was short */
    int op;              /* the operation in flight */
    uint32_t in_flight;  /* replies still expected for it */
    uint64_t start_ns;   /* its write */
    char wbuf[WBUF_CAP];
    size_t wbuf_len, wbuf_off;
    char rbuf[RBUF_CAP];
    size_t rbuf_len;
} conn;

typedef struct { /* latencies in µs, one per reply, grown as needed */
    uint32_t *v;
    size_t n, cap;
} lat_vec;

static void fail(const char *what, const char *data, size_t len) {
    fprintf(stderr, "mixload: %s: ", what);
    for (size_t i = 0; i < len && i < 120; i++)
        fputc(data[i] >= 32 && data[i] < 127 ? data[i] : '.', stderr);
    fputc('\n', stderr);
    exit(1);
}

static void lat_push(lat_vec *l, uint64_t ns) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) die("realloc");
    }
    uint64_t us = ns / 1000;
    l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/*
 * One RESP reply at the start of p: its length, 0 when not all there yet,
 * -1 when malformed. `last` gets the last bulk string of a top-level array
 * (a message's payload); `elems` the top-level array's length (or -1).
 */
static long resp_len(const char *p, size_t n, int depth, const char **last, size_t *last_len,
                     long *elems) {
    const char *eol = n ? memmem(p, n, "\r\n", 2) : NULL;
    if (!eol) return 0;
    size_t line = (size_t)(eol - p) + 2;
    char *end;
    long v = strtol(p + 1, &end, 10);
    switch (p[0]) {
    case '+':
    case '-':
    case ':':
        return (long)line;
    case '$':
        if (end != eol) return -1;
        if (v < 0) return (long)line;
        if (n < line + (size_t)v + 2) return 0;
        if (depth == 1 && last) {
            *last = p + line;
            *last_len = (size_t)v;
        }
        return (long)(line + (size_t)v + 2);
    case '*': {
        if (end != eol || depth > 8) return -1;
        if (depth == 0 && elems) *elems = v;
        size_t off = line;
        for (long i = 0; i < v; i++) {
            long e = resp_len(p + off, n - off, depth + 1, last, last_len, NULL);
            if (e <= 0) return e;
            off += (size_t)e;
        }
        return (long)off;
    }
    default:
        return -1;
    }
}

static void set_nonblock(int fd) {
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl");
}

/* Blocking write of a whole command (setup only). */
static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) die("write");
        p += w;
        n -= (size_t)w;
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    const char *host, *port;
    uint32_t conn_count, keyspace, value_bytes, sub_count, channel_count;
    uint32_t weight[OP_KINDS];
    uint64_t op_count;
} options;

typedef struct {
    const options *o;
    int ep;
    const char *value;
    uint32_t weight_sum;
    uint64_t sent, done, commands;
    uint64_t published, expected, received;
    lat_vec all, kind[OP_KINDS], msg;
} run;

static void flush_out(run *R, conn *c) {
    loadgen_flush(R->ep, c->fd, c, c->wbuf, c->wbuf_len, &c->wbuf_off, &c->wants_out);
}

static int pick_op(const run *R) {
    uint32_t x = rng_next() % R->weight_sum;
    for (int k = 0; k < OP_KINDS; k++) {
        if (x < R->o->weight[k]) return k;
        x -= R->o->weight[k];
    }
    return OP_GET;
}

/* RESP for argv, appended to c's write buffer. */
static void append_cmd(conn *c, int argc, const char *const *argv) {
    char *w = c->wbuf + c->wbuf_len;
    size_t room = WBUF_CAP - c->wbuf_len;
    int n = snprintf(w, room, "*%d\r\n", argc);
    for (int i = 0; i < argc && n > 0 && (size_t)n < room; i++)
        n += snprintf(w + n, room - (size_t)n, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    if (n < 0 || (size_t)n >= room) {
        fprintf(stderr, "mixload: a command does not fit the write buffer (-d too large)\n");
        exit(2);
    }
    c->wbuf_len += (size_t)n;
}

static void send_op(run *R, conn *c) {
    const options *o = R->o;
    char key[64], key2[64], stamp[32];
    uint32_t k = rng_next() % o->keyspace;
    c->wbuf_len = c->wbuf_off = 0;
    c->op = pick_op(R);
    c->start_ns = now_ns();
    switch (c->op) {
    case OP_GET:
        snprintf(key, sizeof key, "key:%012u", k);
        append_cmd(c, 2, (const char *[]){"GET", key});
        c->in_flight = 1;
        break;
    case OP_SET:
        snprintf(key, sizeof key, "key:%012u", k);
        append_cmd(c, 3, (const char *[]){"SET", key, R->value});
        c->in_flight = 1;
        break;
    case OP_TXN:
        snprintf(key, sizeof key, "{acct:%06u}:bal", k);
        snprintf(key2, sizeof key2, "{acct:%06u}:n", k);
        append_cmd(c, 1, (const char *[]){"MULTI"});
        append_cmd(c, 3, (const char *[]){"SET", key, R->value});
        append_cmd(c, 2, (const char *[]){"INCR", key2});
        append_cmd(c, 1, (const char *[]){"EXEC"});
        c->in_flight = 4;
        break;
    default:
        snprintf(key, sizeof key, "news:%u", k % o->channel_count);
        snprintf(stamp, sizeof stamp, "%llu", (unsigned long long)c->start_ns);
        append_cmd(c, 3, (const char *[]){"PUBLISH", key, stamp});
        c->in_flight = 1;
        break;
    }
    R->sent++;
    R->commands += c->in_flight;
    flush_out(R, c);
}

/* Checks one reply of c's operation against what it must be. */
static void check_reply(run *R, conn *c, const char *p, size_t len, long elems) {
    if (p[0] == '-') fail("error reply", p, len);
    switch (c->op) {
    case OP_GET:
        if (p[0] != '$') fail("GET: not a bulk string", p, len);
        break;
    case OP_SET:
        if (len != 5 || memcmp(p, "+OK\r\n", 5) != 0) fail("SET: not +OK", p, len);
        break;
    case OP_TXN:
        if (c->in_flight == 4 && (len != 5 || memcmp(p, "+OK\r\n", 5) != 0))
            fail("MULTI: not +OK", p, len);
        if (c->in_flight == 3 || c->in_flight == 2) {
            if (len != 9 || memcmp(p, "+QUEUED\r\n", 9) != 0) fail("not +QUEUED", p, len);
        }
        if (c->in_flight == 1 && (p[0] != '*' || elems != 2)) fail("EXEC: not 2 replies", p, len);
        break;
    default: {
        char *end;
        long long n = strtoll(p + 1, &end, 10);
        if (p[0] != ':' || n < 0) fail("PUBLISH: not an integer", p, len);
        R->published++;
        R->expected += (uint64_t)n;
        break;
    }
    }
}

static void on_replies(run *R, conn *c) {
    size_t off = 0;
    uint64_t t = now_ns();
    while (c->in_flight > 0) {
        long elems = -1;
        long len = resp_len(c->rbuf + off, c->rbuf_len - off, 0, NULL, NULL, &elems);
        if (len < 0) fail("malformed reply", c->rbuf + off, c->rbuf_len - off);
        if (len == 0) break;
        check_reply(R, c, c->rbuf + off, (size_t)len, elems);
        off += (size_t)len;
        lat_push(&R->all, t - c->start_ns);
        if (--c->in_flight == 0) {
            lat_push(&R->kind[c->op], t - c->start_ns);
            R->done++;
        }
    }
    if (off < c->rbuf_len && c->in_flight == 0)
        fail("a reply nobody asked for", c->rbuf + off, c->rbuf_len - off);
    memmove(c->rbuf, c->rbuf + off, c->rbuf_len - off);
    c->rbuf_len -= off;
    if (c->in_flight == 0 && R->sent < R->o->op_count) send_op(R, c);
}

/* A subscriber's messages: ["message", channel, payload] or ["pmessage",
 * pattern, channel, payload]; the payload is the publisher's send time. */
static void on_messages(run *R, conn *c) {
    size_t off = 0;
    uint64_t t = now_ns();
    for (;;) {
        const char *last = NULL;
        size_t last_len = 0;
        long elems = -1;
        long len = resp_len(c->rbuf + off, c->rbuf_len - off, 0, &last, &last_len, &elems);
        if (len < 0) fail("malformed message", c->rbuf + off, c->rbuf_len - off);
        if (len == 0) break;
        const char *p = c->rbuf + off;
        int is_msg = elems == 3 && len > 16 && memcmp(p, "*3\r\n$7\r\nmessage\r\n", 17) == 0;
        int is_pmsg = elems == 4 && len > 18 && memcmp(p, "*4\r\n$8\r\npmessage\r\n", 18) == 0;
        if (!is_msg && !is_pmsg) fail("subscriber: not a message", p, (size_t)len);
        char stamp[32];
        if (!last || last_len == 0 || last_len >= sizeof stamp) fail("bad payload", p, (size_t)len);
        memcpy(stamp, last, last_len);
        stamp[last_len] = 0;
        uint64_t sent = strtoull(stamp, NULL, 10);
        lat_push(&R->msg, t > sent ? t - sent : 0);
        R->received++;
        off += (size_t)len;
    }
    memmove(c->rbuf, c->rbuf + off, c->rbuf_len - off);
    c->rbuf_len -= off;
}

static void on_readable(run *R, conn *c) {
    if (c->rbuf_len == RBUF_CAP) fail("a reply larger than the read buffer", c->rbuf, 64);
    ssize_t r = read(c->fd, c->rbuf + c->rbuf_len, RBUF_CAP - c->rbuf_len);
    if (r == 0) {
        fprintf(stderr, "mixload: the server closed a %s connection\n",
                c->is_sub ? "subscriber" : "client");
        exit(1);
    }
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        die("read");
    }
    c->rbuf_len += (size_t)r;
    if (c->is_sub)
        on_messages(R, c);
    else
        on_replies(R, c);
}

/* Subscribes connection c (blocking) and reads every confirmation. */
static void subscribe(const options *o, conn *c, int is_pattern) {
    char buf[64];
    c->wbuf_len = 0;
    if (is_pattern) {
        append_cmd(c, 2, (const char *[]){"PSUBSCRIBE", "news:*"});
    } else {
        const char *argv[1 + 256];
        static char names[256][16];
        argv[0] = "SUBSCRIBE";
        for (uint32_t i = 0; i < o->channel_count; i++) {
            snprintf(names[i], sizeof names[i], "news:%u", i);
            argv[1 + i] = names[i];
        }
        append_cmd(c, 1 + (int)o->channel_count, argv);
    }
    write_all(c->fd, c->wbuf, c->wbuf_len);
    c->wbuf_len = 0;
    uint32_t want = is_pattern ? 1 : o->channel_count, got = 0;
    const char *word = is_pattern ? "psubscribe" : "subscribe";
    snprintf(buf, sizeof buf, "*3\r\n$%zu\r\n%s\r\n", strlen(word), word);
    while (got < want) {
        ssize_t r = read(c->fd, c->rbuf + c->rbuf_len, RBUF_CAP - c->rbuf_len);
        if (r <= 0) die("subscribe: read");
        c->rbuf_len += (size_t)r;
        size_t off = 0;
        long len;
        while (got < want &&
               (len = resp_len(c->rbuf + off, c->rbuf_len - off, 0, NULL, NULL, NULL)) != 0) {
            if (len < 0 || strncmp(c->rbuf + off, buf, strlen(buf)) != 0)
                fail("not a subscribe confirmation", c->rbuf + off, c->rbuf_len - off);
            off += (size_t)len;
            got++;
        }
        memmove(c->rbuf, c->rbuf + off, c->rbuf_len - off);
        c->rbuf_len -= off;
    }
}

static void print_row(const char *test, lat_vec *l, double elapsed_s, const char *extra) {
    if (l->n == 0) return;
    uint64_t sum = 0;
    for (size_t i = 0; i < l->n; i++) sum += l->v[i];
    qsort(l->v, l->n, sizeof *l->v, cmp_u32);
    printf("{\"test\":\"%s\",\"ops_per_sec\":%.0f,\"avg_ms\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"max_ms\":%.3f,\"requests\":%zu%s}\n",
           test, (double)l->n / elapsed_s, (double)sum / (double)l->n / 1000.0,
           l->v[l->n / 2] / 1000.0, l->v[(size_t)((double)l->n * 0.99)] / 1000.0,
           l->v[l->n - 1] / 1000.0, l->n, extra);
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static void run_mix(const options *o) {
    run R = {.o = o};
    for (int k = 0; k < OP_KINDS; k++) R.weight_sum += o->weight[k];
    uint32_t total = o->conn_count + o->sub_count;
    conn *conns = calloc(total, sizeof *conns);
    char *value = malloc(o->value_bytes + 1);
    if (!conns || !value) die("malloc");
    memset(value, 'x', o->value_bytes);
    value[o->value_bytes] = 0;
    R.value = value;
    R.ep = epoll_create1(0);
    if (R.ep < 0) die("epoll_create1");
    double cpu0 = cpu_s();

    for (uint32_t i = 0; i < total; i++) {
        conn *c = &conns[i];
        c->fd = loadgen_connect(o->host, o->port);
        c->is_sub = i >= o->conn_count;
        if (c->is_sub) subscribe(o, c, i == total - 1);
        set_nonblock(c->fd);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(R.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl");
    }
    /* Every connection is up and subscribed before the clock starts. */
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < o->conn_count && R.sent < o->op_count; i++) send_op(&R, &conns[i]);
    struct epoll_event events[256];
    uint64_t last_progress = now_ns(), seen = 0;
    while (R.done < o->op_count || R.received < R.expected) {
        int n = epoll_wait(R.ep, events, 256, 1000);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int e = 0; e < n; e++) {
            conn *c = events[e].data.ptr;
            if (events[e].events & EPOLLOUT) flush_out(&R, c);
            if (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(&R, c);
        }
        uint64_t t = now_ns();
        if (R.done + R.received != seen) {
            seen = R.done + R.received;
            last_progress = t;
        } else if (t - last_progress > 10000000000u) {
            fprintf(stderr, "mixload: no progress for 10 s (%llu of %llu operations, %llu of "
                            "%llu messages)\n",
                    (unsigned long long)R.done, (unsigned long long)o->op_count,
                    (unsigned long long)R.received, (unsigned long long)R.expected);
            exit(1);
        }
    }
    double elapsed_s = (double)(now_ns() - t0) / 1e9;
    /* A message beyond what PUBLISH counted would show up late: a short
     * drain, then the counts must match. */
    int drained = 0;
    while (!drained) {
        int n = epoll_wait(R.ep, events, 256, 50);
        drained = n <= 0;
        for (int e = 0; e < n; e++) on_readable(&R, events[e].data.ptr);
    }
    if (R.received != R.expected) {
        fprintf(stderr, "mixload: subscribers received %llu messages, PUBLISH counted %llu\n",
                (unsigned long long)R.received, (unsigned long long)R.expected);
        exit(1);
    }
    double cpu = cpu_s() - cpu0;
    char extra[512];
    snprintf(extra, sizeof extra,
             ",\"commands\":%llu,\"operations\":%llu,\"conns\":%u,\"subscribers\":%u,"
             "\"channels\":%u,\"published\":%llu,\"messages_expected\":%llu,"
             "\"messages_received\":%llu,\"mix\":\"get=%u,set=%u,txn=%u,pub=%u\","
             "\"loadgen_cpu_us_per_req\":%.3f,\"elapsed_s\":%.3f",
             (unsigned long long)R.commands, (unsigned long long)R.done, o->conn_count,
             o->sub_count, o->channel_count, (unsigned long long)R.published,
             (unsigned long long)R.expected, (unsigned long long)R.received, o->weight[OP_GET],
             o->weight[OP_SET], o->weight[OP_TXN], o->weight[OP_PUB],
             cpu * 1e6 / (double)R.commands, elapsed_s);
    print_row("ALL", &R.all, elapsed_s, extra);
    for (int k = 0; k < OP_KINDS; k++) print_row(op_name[k], &R.kind[k], elapsed_s, "");
    print_row("MSG", &R.msg, elapsed_s, "");
    fflush(stdout);
    for (uint32_t i = 0; i < total; i++) close(conns[i].fd);
    close(R.ep);
    free(R.all.v);
    free(R.msg.v);
    for (int k = 0; k < OP_KINDS; k++) free(R.kind[k].v);
    free(conns);
    free(value);
}

static uint32_t arg_u32(const char *s, const char *name, int zero_ok) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || end == s || (v == 0 && !zero_ok) || v > UINT32_MAX) {
        fprintf(stderr, "mixload: %s: expected a %s number\n", name,
                zero_ok ? "non-negative" : "positive");
        exit(2);
    }
    return (uint32_t)v;
}

/* -m get=60,set=25,txn=10,pub=5: weights; a kind left out weighs 0. */
static void parse_mix(options *o, const char *s) {
    char copy[256];
    snprintf(copy, sizeof copy, "%s", s);
    memset(o->weight, 0, sizeof o->weight);
    for (char *save, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        int k = 0;
        if (eq) *eq = 0;
        while (k < OP_KINDS && strcmp(tok, op_flag[k]) != 0) k++;
        if (!eq || k == OP_KINDS) {
            fprintf(stderr, "mixload: -m: expected get=N,set=N,txn=N,pub=N\n");
            exit(2);
        }
        o->weight[k] = arg_u32(eq + 1, "-m", 1);
    }
}

int main(int argc, char **argv) {
    options o = {.host = "127.0.0.1", .port = "6379", .conn_count = 50, .keyspace = 100000,
                 .value_bytes = 3, .op_count = 200000, .sub_count = 4, .channel_count = 8,
                 .weight = {60, 25, 10, 5}};
    int opt;
    while ((opt = getopt(argc, argv, "h:p:c:n:r:d:m:s:C:")) != -1) {
        switch (opt) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = optarg; break;
        case 'c': o.conn_count = arg_u32(optarg, "-c", 0); break;
        case 'n': o.op_count = arg_u32(optarg, "-n", 0); break;
        case 'r': o.keyspace = arg_u32(optarg, "-r", 0); break;
        case 'd': o.value_bytes = arg_u32(optarg, "-d", 0); break;
        case 'm': parse_mix(&o, optarg); break;
        case 's': o.sub_count = arg_u32(optarg, "-s", 1); break;
        case 'C': o.channel_count = arg_u32(optarg, "-C", 0); break;
        default:
            fprintf(stderr, "usage: mixload -h HOST -p PORT [-c CONNS] [-n OPERATIONS] "
                            "[-r KEYSPACE] [-d VALUE_BYTES] [-m get=G,set=S,txn=T,pub=P] "
                            "[-s SUBSCRIBERS] [-C CHANNELS]\n");
            return 2;
        }
    }
    uint32_t sum = 0;
    for (int k = 0; k < OP_KINDS; k++) sum += o.weight[k];
    if (sum == 0 || o.value_bytes > 1024 || o.channel_count > 256) {
        fprintf(stderr, "mixload: -m needs a weight above 0; -d at most 1024; -C at most 256\n");
        return 2;
    }
    if (o.weight[OP_PUB] && o.sub_count == 0)
        fprintf(stderr, "mixload: publishing with no subscriber: every message counts 0\n");
    run_mix(&o);
    return 0;
}
