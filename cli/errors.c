/*
 * errors.c - how a command says why it stops: one line, "chash CMD: why", on
 * stderr, and the exit code that goes with it. The bottom layer of the CLI:
 * it calls nothing of the CLI's own.
 */
#include "cli.h"

#include <stdarg.h>

static void vreport(const char *cmd, const char *fmt, va_list ap) {
    fprintf(stderr, "chash %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    return CLI_EXIT_FAILURE;
}
