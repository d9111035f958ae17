/*
 * nodes.c - memberships for the CLI: a growable list of (name, weight), and
 * the nodes file format: one `name [weight]` a line, '#' to end of line is a
 * comment, blank lines are skipped. Errors name the file and line.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool cli_nodes_push(cli_nodes *n, const char *name, size_t len, uint32_t weight) {
    if (n->count == n->capacity) {
        size_t cap = n->capacity ? n->capacity * 2 : 16;
        char **names = realloc(n->names, cap * sizeof *names);
        if (!names) return false;
        n->names = names;
        size_t *lens = realloc(n->name_lens, cap * sizeof *lens);
        if (!lens) return false;
        n->name_lens = lens;
        uint32_t *weights = realloc(n->weights, cap * sizeof *weights);
        if (!weights) return false;
        n->weights = weights;
        n->capacity = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return false;
    memcpy(copy, name, len);
    copy[len] = '\0';
    n->names[n->count] = copy;
    n->name_lens[n->count] = len;
    n->weights[n->count] = weight;
    n->count++;
    return true;
}

void cli_nodes_free(cli_nodes *n) {
    for (size_t i = 0; i < n->count; i++) free(n->names[i]);
    free(n->names);
    free(n->name_lens);
    free(n->weights);
    memset(n, 0, sizeof *n);
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

bool cli_nodes_read_file(const char *cmd, const char *path, cli_nodes *out) {
    memset(out, 0, sizeof *out);
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        cli_usage_error(cmd, "%s: %s", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    unsigned long lineno = 0;
    bool ok = true;
    while (ok && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if ((size_t)got != strlen(line)) {
            cli_usage_error(cmd, "%s:%lu: NUL byte in line", path, lineno);
            ok = false;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *fields[3];
        int nfields = 0;
        for (char *p = line; *p && *p != '\n';) {
            while (is_space(*p)) p++;
            if (!*p || *p == '\n') break;
            char *start = p;
            while (*p && *p != '\n' && !is_space(*p)) p++;
            char end = *p;
            *p = '\0';
            if (nfields < 3) fields[nfields] = start;
            nfields++;
            if (end == '\0' || end == '\n') break;
            p++;
        }
        if (nfields == 0) continue;
        if (nfields > 2) {
            cli_usage_error(cmd, "%s:%lu: expected 'name [weight]', got %d fields", path,
                            lineno, nfields);
            ok = false;
            break;
        }
        uint64_t weight = 1;
        if (nfields == 2) {
            char flag[64];
            snprintf(flag, sizeof flag, "%s:%lu: weight", path, lineno);
            if (!cli_parse_u64(cmd, flag, fields[1], 1, CHASH_WEIGHT_MAX, &weight)) {
                ok = false;
                break;
            }
        }
        size_t len = strlen(fields[0]);
        if (len > CHASH_NAME_MAX) {
            cli_usage_error(cmd, "%s:%lu: node name longer than %u bytes", path, lineno,
                            CHASH_NAME_MAX);
            ok = false;
            break;
        }
        for (size_t i = 0; i < out->count; i++)
            if (out->name_lens[i] == len && memcmp(out->names[i], fields[0], len) == 0) {
                cli_usage_error(cmd, "%s:%lu: node '%s' is listed twice", path, lineno,
                                fields[0]);
                ok = false;
            }
        if (ok && !cli_nodes_push(out, fields[0], len, (uint32_t)weight)) {
            cli_fail(cmd, "out of memory");
            ok = false;
        }
    }
    if (ok && ferror(f)) {
        cli_usage_error(cmd, "%s: read error", path);
        ok = false;
    }
    if (ok && out->count == 0) {
        cli_usage_error(cmd, "%s: no nodes in file", path);
        ok = false;
    }
    free(line);
    if (f != stdin) fclose(f);
    if (!ok) cli_nodes_free(out);
    return ok;
}
