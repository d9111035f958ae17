/*
 * log.c - one line per event, with a timestamp and level, to stderr or a file
 * (-o). Lines are written with one write(2), so threads do not interleave.
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

void proxy_log(int level, const char *fmt, ...) {
    if (level > proxy_log_level) return;
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
    va_list ap;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (k > 0) n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
    line[n++] = '\n';
    ssize_t w = write(log_fd, line, n);
    (void)w;
}
