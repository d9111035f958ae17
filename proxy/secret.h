/*
 * secret.h - a secret (a password, a token) read from a file rather than
 * the command line, where `ps` would show it to every user of the host.
 */
#ifndef PROXY_SECRET_H
#define PROXY_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/*
 * secret_read_file - the first line of the file at `path`, without its
 * line break, in a string the caller frees (secret_free wipes it first).
 * Returns NULL with the reason in err ("OPTION PATH: why", the secret
 * never in it): the file cannot be read, or the line is longer than 1023
 * bytes. `option` names the flag in the message. Cost: one read.
 */
char *secret_read_file(const char *option, const char *path, char *err, size_t err_len);

/* Overwrites and frees a secret; NULL-safe. */
void secret_free(char *secret);

/* Whether two secrets are equal, in a time that depends on their lengths
 * only (not on where they first differ). */
bool secret_equal(const char *a, size_t a_len, const char *b, size_t b_len);

#endif
