/*
 * fuzz_acl.c - libFuzzer harness for the users' rules (proxy/acl.c): the
 * rule parser, the checks of commands against a user, AUTH's password path,
 * and the glob matcher against Redis's own stringmatchlen.
 *
 * The input is lines. The first is a rule string, "NAME rule...", as a
 * `users:` entry (the config fuzzer reaches the same parser through YAML).
 * A refused one must say why without showing a rule that may hold a secret
 * (a password, a digest: '>', '<', '#', '!'). An accepted one must keep
 * acl.h's invariants; then each further line is
 *   - "G<pattern>\t<key>": acl_glob_match must answer as redis-server 7.0's
 *     stringmatchlen_impl (copied below as the oracle, reading its pattern's
 *     NUL as Redis does);
 *   - anything else: a command line, split on spaces, checked against the
 *     user (a verdict of the enum, its text a RESP error), and the line as
 *     a password for the user (what a client sends before it is
 *     authenticated: at most UNAUTH_MAX_BULK bytes there).
 */
#include "acl.h"
#include "command.h"
#include "fuzz.h"
#include "resp.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

/* redis-server 7.0.15's util.c, nocase kept, unchanged but for names. */
static int redis_match(const char *pattern, int patternLen, const char *string, int stringLen,
                       int nocase, int *skipLongerMatches) {
    while (patternLen && stringLen) {
        switch (pattern[0]) {
        case '*':
            while (patternLen && pattern[1] == '*') {
                pattern++;
                patternLen--;
            }
            if (patternLen == 1) return 1; /* match */
            while (stringLen) {
                if (redis_match(pattern + 1, patternLen - 1, string, stringLen, nocase,
                                skipLongerMatches))
                    return 1; /* match */
                if (*skipLongerMatches) return 0; /* no match */
                string++;
                stringLen--;
            }
            *skipLongerMatches = 1;
            return 0; /* no match */
            break;
        case '?':
            string++;
            stringLen--;
            break;
        case '[': {
            int not, match;
            pattern++;
            patternLen--;
            not = pattern[0] == '^';
            if (not) {
                pattern++;
                patternLen--;
            }
            match = 0;
            while (1) {
                if (pattern[0] == '\\' && patternLen >= 2) {
                    pattern++;
                    patternLen--;
                    if (pattern[0] == string[0]) match = 1;
                } else if (pattern[0] == ']') {
                    break;
                } else if (patternLen == 0) {
                    pattern--;
                    patternLen++;
                    break;
                } else if (patternLen >= 3 && pattern[1] == '-') {
                    int start = pattern[0];
                    int end = pattern[2];
                    int c = string[0];
                    if (start > end) {
                        int t = start;
                        start = end;
                        end = t;
                    }
                    if (nocase) {
                        start = tolower(start);
                        end = tolower(end);
                        c = tolower(c);
                    }
                    pattern += 2;
                    patternLen -= 2;
                    if (c >= start && c <= end) match = 1;
                } else {
                    if (!nocase) {
                        if (pattern[0] == string[0]) match = 1;
                    } else {
                        if (tolower((int)pattern[0]) == tolower((int)string[0])) match = 1;
                    }
                }
                pattern++;
                patternLen--;
            }
            if (not) match = !match;
            if (!match) return 0; /* no match */
            string++;
            stringLen--;
            break;
        }
        case '\\':
            if (patternLen >= 2) {
                pattern++;
                patternLen--;
            }
            /* fall through */
        default:
            if (!nocase) {
                if (pattern[0] != string[0]) return 0; /* no match */
            } else {
                if (tolower((int)pattern[0]) != tolower((int)string[0])) return 0; /* no match */
            }
            string++;
            stringLen--;
            break;
        }
        pattern++;
        patternLen--;
        if (stringLen == 0) {
            while (*pattern == '*') {
                pattern++;
                patternLen--;
            }
            break;
        }
    }
    if (patternLen == 0 && stringLen == 0) return 1;
    return 0;
}

/* An embedded NUL in the pattern: Redis's stepping over '*'s at the end of
 * the key reads up to a NUL, not to the pattern's length, so the two may
 * part there; such patterns are left out (a pattern from the YAML
 * configuration is a C string). */
static void check_glob(const char *line, size_t len) {
    const char *tab = memchr(line, '\t', len);
    if (!tab) return;
    size_t plen = (size_t)(tab - line), klen = len - plen - 1;
    if (plen > 256 || klen > 1024 || memchr(line, '\0', plen)) return;
    char *pattern = malloc(plen + 1), *key = malloc(klen + 1);
    FUZZ_CHECK(pattern && key);
    memcpy(pattern, line, plen);
    pattern[plen] = '\0';
    memcpy(key, tab + 1, klen);
    key[klen] = '\0';
    int skip = 0;
    bool want = redis_match(pattern, (int)plen, key, (int)klen, 0, &skip);
    bool got = acl_glob_match(pattern, plen, key, klen);
    if (want != got) {
        fprintf(stderr, "pattern '%s' key '%s': redis %d, acl %d\n", pattern, key, want, got);
        FUZZ_CHECK(want == got);
    }
    free(pattern);
    free(key);
}

/* A refusal's message: terminated, and no secret rule shown. A rule is
 * shown as "rule N ('text')": the N-th rule after the name must not be one
 * that holds a password or a digest ('>', '<', '#', '!'). */
static void check_refusal(const char *text, const char *err) {
    FUZZ_CHECK(memchr(err, '\0', ACL_ERR_MAX) != NULL && err[0] != '\0');
    const char *at = text + strspn(text, " \t");
    size_t name_len = strcspn(at, " \t");
    at += name_len;
    /* The name is shown, first: what follows it is read. */
    const char *rest = err;
    if (strncmp(err, "user '", 6) == 0 && strncmp(err + 6, at - name_len, name_len) == 0)
        rest = err + 6 + name_len;
    unsigned shown = 0;
    const char *r = strstr(rest, ": rule ");
    if (!r || sscanf(r, ": rule %u ('", &shown) != 1 || !strstr(r, " ('")) return;
    if (strncmp(r + 7 + strspn(r + 7, "0123456789"), " ('", 3) != 0) return;
    for (unsigned i = 1;; i++) {
        at += strspn(at, " \t");
        size_t len = strcspn(at, " \t");
        FUZZ_CHECK(len > 0); /* the rule shown is one of the string's */
        if (i == shown) {
            if (strchr("><#!", at[0])) {
                fprintf(stderr, "message shows a secret rule: %s\n", err);
                FUZZ_CHECK(!"a secret rule in a message");
            }
            return;
        }
        at += len;
    }
}

static void check_user(const acl_user *u) {
    FUZZ_CHECK(u->name && strlen(u->name) >= 1 && strlen(u->name) <= ACL_NAME_MAX);
    FUZZ_CHECK(!u->is_all_keys || u->key_count == 0);
    FUZZ_CHECK(!u->is_all_channels || u->channel_count == 0);
    FUZZ_CHECK(!u->is_nopass || u->hash_count == 0);
    for (size_t i = 0; i < u->hash_count; i++)
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(memcmp(u->hashes[i], u->hashes[j], ACL_HASH_LEN) != 0);
    /* allcommands: every command of the table. */
    for (size_t i = 0; u->is_all_commands && i < command_count(); i++) {
        resp_arg none[1] = {{"", 0}};
        resp_msg m = {.argc = 1, .argv = none};
        const cmd_spec *spec = command_at(i);
        FUZZ_CHECK(acl_check(u, spec, &m) != ACL_DENIED_COMMAND);
    }
    FUZZ_CHECK(acl_user_same(u, u));
}

#define ARGS_MAX 16

static void check_line(const acl_user *u, const char *line, size_t len) {
    resp_arg argv[ARGS_MAX];
    size_t argc = 0;
    for (size_t i = 0; i < len && argc < ARGS_MAX;) {
        size_t n = 0;
        while (i + n < len && line[i + n] != ' ') n++;
        argv[argc++] = (resp_arg){line + i, n};
        i += n + 1;
    }
    if (argc > 0) {
        resp_msg m = {.argc = argc, .argv = argv};
        const cmd_spec *spec = command_find(&argv[0]);
        if (spec) spec = command_sub(spec, &m);
        if (spec) {
            acl_verdict v = acl_check(u, spec, &m);
            FUZZ_CHECK(v >= ACL_OK && v <= ACL_DENIED_SORT_GET);
            char text[300];
            acl_verdict_text(v, spec, text, sizeof text);
            size_t tl = strlen(text);
            FUZZ_CHECK(tl >= 3 && text[tl - 2] == '\r' && text[tl - 1] == '\n');
            FUZZ_CHECK(v == ACL_OK ? text[0] == '+' : text[0] == '-');
        }
    }
    /* The line as AUTH's password (and user name). */
    const acl_user *got = acl_authenticate(u, 1, u->name, strlen(u->name), line, len);
    FUZZ_CHECK(got == NULL || got == u);
    FUZZ_CHECK(!got || u->is_on);
    FUZZ_CHECK(acl_authenticate(u, 1, line, len, line, len) == NULL ||
               (len == strlen(u->name) && memcmp(line, u->name, len) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    command_init();
    const char *text = (const char *)data;
    size_t first = 0;
    while (first < size && text[first] != '\n') first++;
    char *rules = malloc(first + 1);
    FUZZ_CHECK(rules != NULL);
    memcpy(rules, text, first);
    rules[first] = '\0';
    acl_user u;
    char err[ACL_ERR_MAX];
    memset(err, 'x', sizeof err);
    if (acl_user_parse(rules, &u, err, sizeof err) != 0) {
        check_refusal(rules, err);
        free(rules);
        return 0;
    }
    check_user(&u);
    for (size_t at = first + 1; at < size;) {
        size_t end = at;
        while (end < size && text[end] != '\n') end++;
        if (end > at && text[at] == 'G')
            check_glob(text + at + 1, end - at - 1);
        else
            check_line(&u, text + at, end - at);
        at = end + 1;
    }
    acl_user_free(&u);
    free(rules);
    return 0;
}
