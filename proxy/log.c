/*
 * log.c - one line per event, with a timestamp and level, to stderr or a file
 * (-o). Lines are written with one write(2), so threads do not interleave.
 * An event that can repeat without end (accept failing, a server refusing)
 * logs through a limit: one line a second, with the count of the others.
 */
#define _POSIX_C_SOURCE 200809L
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int proxy_log_level = LOG_WARN;
static int log_fd = 2;

int proxy_log_open(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    log_fd = fd;
    return 0;
}

static void log_line(int level, const char *fmt, va_list ap, uint64_t suppressed) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "[%Y-%m-%d %H:%M:%S", &tm);
    int k = snprintf(line + n, sizeof line - n, ".%03ld] %s: ", ts.tv_nsec / 1000000L,
                     names[level < 0 ? 0 : level > 3 ? 3 : level]);
    if (k > 0) n += (size_t)k;
    k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    if (k > 0) n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
    if (suppressed) {
        k = snprintf(line + n, sizeof line - n - 1, " (and %llu more like it)",
                     (unsigned long long)suppressed);
        if (k > 0) n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
    }
    line[n++] = '\n';
    ssize_t w = write(log_fd, line, n);
    (void)w;
}

void proxy_log(int level, const char *fmt, ...) {
    if (level > proxy_log_level) return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, fmt, ap, 0);
    va_end(ap);
}

void proxy_log_limited(log_limit *lim, int level, const char *fmt, ...) {
    if (level > proxy_log_level) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t next = atomic_load(&lim->next_ms);
    /* One thread wins the slot; the others count themselves out. */
    if (now_ms < next || !atomic_compare_exchange_strong(&lim->next_ms, &next, now_ms + 1000)) {
        atomic_fetch_add(&lim->suppressed, 1);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    log_line(level, fmt, ap, atomic_exchange(&lim->suppressed, 0));
    va_end(ap);
}
