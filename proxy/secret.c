/*
 * secret.c - secrets read from files, wiped when freed, compared in
 * constant time.
 */
#include "secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *secret_read_file(const char *option, const char *path, char *err, size_t err_len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, err_len, "%s %s: %s", option, path, strerror(errno));
        return NULL;
    }
    char line[1024];
    size_t n = fread(line, 1, sizeof line - 1, fp);
    bool is_error = ferror(fp) != 0;
    fclose(fp);
    line[n] = '\0';
    size_t len = strcspn(line, "\r\n");
    char *s = NULL;
    if (is_error)
        snprintf(err, err_len, "%s %s: cannot read", option, path);
    else if (len == n && n == sizeof line - 1)
        snprintf(err, err_len, "%s %s: the first line is longer than %zu bytes", option, path,
                 sizeof line - 2);
    else if (!(s = malloc(len + 1)))
        snprintf(err, err_len, "%s %s: out of memory", option, path);
    if (s) {
        memcpy(s, line, len);
        s[len] = '\0';
    }
    volatile char *wipe = line;
    for (size_t i = 0; i < sizeof line; i++) wipe[i] = 0;
    return s;
}

void secret_free(char *secret) {
    if (!secret) return;
    volatile char *wipe = secret;
    for (size_t i = 0; secret[i]; i++) wipe[i] = 0;
    free(secret);
}

bool secret_equal(const char *a, size_t a_len, const char *b, size_t b_len) {
    /* Every byte of the longer one is visited whatever the contents. */
    size_t n = a_len > b_len ? a_len : b_len;
    unsigned char diff = a_len != b_len;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < a_len ? (unsigned char)a[i] : 0;
        unsigned char y = i < b_len ? (unsigned char)b[i] : 0;
        diff |= (unsigned char)(x ^ y);
    }
    return diff == 0;
}
