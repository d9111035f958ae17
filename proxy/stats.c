/*
 * stats.c - nutcracker-compatible statistics on a TCP port: a client that
 * connects gets one JSON object and the connection is closed (`nc host 22222`).
 *
 * The numbers are summed over the workers at the moment of the request (no
 * 30 s aggregation interval as in nutcracker). A thread of its own serves the
 * port, so a slow stats reader never touches a request path.
 */
#define _GNU_SOURCE
#include "proxy.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void json_string(buf *b, const char *s) {
    buf_append(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf_append(b, "\\", 1);
            buf_append(b, s, 1);
        } else if (ch < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            buf_append_str(b, esc);
        } else {
            buf_append(b, s, 1);
        }
    }
    buf_append(b, "\"", 1);
}

static void json_num(buf *b, const char *key, uint64_t v, bool *first) {
    if (!*first) buf_append(b, ",", 1);
    *first = false;
    json_string(b, key);
    buf_append(b, ":", 1);
    buf_append_u64(b, v);
}

#define SUM_POOL(field)                                                                       \
    do {                                                                                      \
        uint64_t sum_ = 0;                                                                    \
        for (uint32_t w_ = 0; w_ < px->worker_count; w_++)                                    \
            sum_ += stat_get(&px->workers[w_].pools[p].st.field);                             \
        json_num(b, #field, sum_, &first);                                                    \
    } while (0)

#define SUM_SERVER(field)                                                                     \
    do {                                                                                      \
        uint64_t sum_ = 0;                                                                    \
        for (uint32_t w_ = 0; w_ < px->worker_count; w_++)                                    \
            sum_ += stat_get(&px->workers[w_].pools[p].backends[s].st.field);                 \
        json_num(b, #field, sum_, &sfirst);                                                   \
    } while (0)

void stats_json(const proxy *px, buf *b) {
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    uint64_t curr = 0;
    for (size_t p = 0; p < px->cf->pool_count; p++) curr += atomic_load(&px->pool_clients[p]);
    bool first = true;
    buf_append_str(b, "{\"service\":\"" PROXY_NAME "\",\"source\":");
    json_string(b, host);
    buf_append_str(b, ",\"version\":\"" CHASH_VERSION_STRING "\"");
    first = false;
    json_num(b, "uptime", (uint64_t)now - px->start_time, &first);
    json_num(b, "timestamp", (uint64_t)now, &first);
    json_num(b, "total_connections", atomic_load(&px->total_connections), &first);
    json_num(b, "curr_connections", curr, &first);
    for (size_t p = 0; p < px->cf->pool_count; p++) {
        const conf_pool *cp = &px->cf->pools[p];
        buf_append(b, ",", 1);
        json_string(b, cp->name);
        buf_append(b, ":{", 2);
        first = true;
        SUM_POOL(client_eof);
        SUM_POOL(client_err);
        SUM_POOL(client_connections);
        SUM_POOL(server_ejects);
        SUM_POOL(forward_error);
        SUM_POOL(fragments);
        for (size_t s = 0; s < cp->server_count; s++) {
            buf_append(b, ",", 1);
            json_string(b, cp->servers[s].name);
            buf_append(b, ":{", 2);
            bool sfirst = true;
            SUM_SERVER(server_eof);
            SUM_SERVER(server_err);
            SUM_SERVER(server_timedout);
            SUM_SERVER(server_connections);
            /* the latest ejection of any worker */
            uint64_t ejected_at = 0;
            for (uint32_t w = 0; w < px->worker_count; w++) {
                uint64_t v = stat_get(&px->workers[w].pools[p].backends[s].st.server_ejected_at);
                if (v > ejected_at) ejected_at = v;
            }
            json_num(b, "server_ejected_at", ejected_at, &sfirst);
            SUM_SERVER(requests);
            SUM_SERVER(request_bytes);
            SUM_SERVER(responses);
            SUM_SERVER(response_bytes);
            SUM_SERVER(in_queue);
            SUM_SERVER(in_queue_bytes);
            SUM_SERVER(out_queue);
            SUM_SERVER(out_queue_bytes);
            buf_append(b, "}", 1);
        }
        buf_append(b, "}", 1);
    }
    buf_append_str(b, "}\n");
}

static void *stats_main(void *arg) {
    proxy *px = arg;
    while (!proxy_stop) {
        struct pollfd pfd = {.fd = px->stats_fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0) continue;
        int fd = accept4(px->stats_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        struct timeval tv = {.tv_sec = 1};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        buf b = {0};
        stats_json(px, &b);
        const char *s = buf_start(&b);
        size_t left = buf_used(&b);
        while (left > 0 && !b.is_oom) {
            ssize_t n = send(fd, s, left, MSG_NOSIGNAL);
            if (n <= 0) break;
            s += n;
            left -= (size_t)n;
        }
        buf_free(&b);
        close(fd);
    }
    return NULL;
}

int stats_start(proxy *px, const char *addr, int port, char *err, size_t err_len) {
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(addr, port_text, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_len, "stats address %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        snprintf(err, err_len, "stats port %s:%d: %s", addr, port, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    px->stats_fd = fd;
    if (pthread_create(&px->stats_thread, NULL, stats_main, px) != 0) {
        snprintf(err, err_len, "cannot start the stats thread");
        close(fd);
        px->stats_fd = -1;
        return -1;
    }
    px->has_stats_thread = true;
    return 0;
}

void stats_stop(proxy *px) {
    if (px->has_stats_thread) pthread_join(px->stats_thread, NULL);
    px->has_stats_thread = false;
    if (px->stats_fd >= 0) close(px->stats_fd);
    px->stats_fd = -1;
}
