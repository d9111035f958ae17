/*
 * fuzz_acl.c - libFuzzer harness for the users' rules (proxy/acl.c): the
 * rule parser, the checks of commands against a user, AUTH's password path,
 * and the glob matcher against an oracle written from the rules.
 *
 * The input is lines. The first is a rule string, "NAME rule...", as a
 * `users:` entry (the config fuzzer reaches the same parser through YAML).
 * A refused one must say why without showing a rule that may hold a secret
 * (a password, a digest: '>', '<', '#', '!'). An accepted one must keep
 * acl.h's invariants; then each further line is
 *   - "G<pattern>\t<key>": acl_glob_match must answer as the oracle below
 *     for every well-formed pattern, and return for any other;
 *   - anything else: a command line, split on spaces, checked against the
 *     user (a verdict of the enum, its text a RESP error), and the line as
 *     a password for the user (what a client sends before it is
 *     authenticated: at most UNAUTH_MAX_BULK bytes there).
 */
#include "acl.h"
#include "command.h"
#include "fuzz.h"
#include "resp.h"

#include <stdbool.h>
#include <string.h>

/*
 * The oracle: glob matching written here from its rules, not from
 * anyone's code, by dynamic programming over (token, byte) so no pattern
 * makes it slow. The rules (as redis-server applies them; test_acl.py
 * checks patterns against a real one): `*` any run of bytes, `?` one byte,
 * `[...]` one byte of a set (`^` first negates; `\c` is c; `a-z` a range
 * either way round, when at least three bytes are left from its start),
 * `\c` outside a set is c, anything else itself. Only patterns whose sets
 * close and that do not end in a lone backslash are asked (well_formed):
 * Redis's readings of the others are quirks, left to the real server.
 */
typedef struct glob_token {
    enum { T_STAR, T_ANY, T_SET } kind;
    unsigned char set[32]; /* T_SET: the bytes it takes (a literal is a set of one) */
} glob_token;

static void set_add(unsigned char *set, unsigned c) { set[c >> 3] |= (unsigned char)(1u << (c & 7)); }

/* The pattern as tokens, or -1 when it is not well formed. */
static int tokenize(const char *p, size_t n, glob_token *out) {
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        glob_token *t = &out[count++];
        memset(t, 0, sizeof *t);
        if (p[i] == '*') {
            t->kind = T_STAR;
        } else if (p[i] == '?') {
            t->kind = T_ANY;
        } else if (p[i] == '\\') {
            if (i + 1 == n) return -1;
            t->kind = T_SET;
            set_add(t->set, (unsigned char)p[++i]);
        } else if (p[i] == '[') {
            t->kind = T_SET;
            size_t j = i + 1;
            bool is_not = j < n && p[j] == '^';
            if (is_not) j++;
            bool is_closed = false;
            while (j < n) {
                if (p[j] == '\\' && j + 1 < n) {
                    set_add(t->set, (unsigned char)p[j + 1]);
                    j += 2;
                } else if (p[j] == ']') {
                    is_closed = true;
                    break;
                } else if (n - j >= 3 && p[j + 1] == '-') {
                    /* Bytes compare as signed chars, as on x86 (docs/compat.md):
                     * a range up to a byte >= 0x80 runs below 0. */
                    int a = (signed char)p[j], b = (signed char)p[j + 2];
                    if (a > b) {
                        int x = a;
                        a = b;
                        b = x;
                    }
                    for (unsigned c = 0; c < 256; c++)
                        if ((signed char)c >= a && (signed char)c <= b) set_add(t->set, c);
                    j += 3;
                } else {
                    set_add(t->set, (unsigned char)p[j]);
                    j++;
                }
            }
            if (!is_closed) return -1;
            if (is_not)
                for (size_t k = 0; k < sizeof t->set; k++) t->set[k] = (unsigned char)~t->set[k];
            i = j;
        } else {
            t->kind = T_SET;
            set_add(t->set, (unsigned char)p[i]);
        }
    }
    return count;
}

/* Whether the tokens take the whole key: -1 when the pattern is not asked.
 * An empty key is matched by the empty pattern alone, `*` included, as
 * redis-server's matcher has it (its ACLs read `~*` as allkeys before any
 * matching, so GET "" passes there: acl.c does the same). */
static int oracle_match(const char *pattern, size_t plen, const char *key, size_t klen) {
    if (klen == 0) return plen == 0;
    glob_token *tok = malloc((plen + 1) * sizeof *tok);
    FUZZ_CHECK(tok != NULL);
    int count = tokenize(pattern, plen, tok);
    if (count < 0) {
        free(tok);
        return -1;
    }
    /* row[j]: tokens i.. take key[j..]; built from the last token back. */
    bool *next = calloc(klen + 1, sizeof *next), *row = calloc(klen + 1, sizeof *row);
    FUZZ_CHECK(next && row);
    next[klen] = true;
    for (int i = count - 1; i >= 0; i--) {
        for (size_t j = klen + 1; j-- > 0;) {
            const glob_token *t = &tok[i];
            if (t->kind == T_STAR)
                row[j] = next[j] || (j < klen && row[j + 1]);
            else if (j == klen)
                row[j] = false;
            else if (t->kind == T_ANY)
                row[j] = next[j + 1];
            else
                row[j] = (t->set[(unsigned char)key[j] >> 3] >> ((unsigned char)key[j] & 7) & 1) &&
                         next[j + 1];
        }
        bool *swap = next;
        next = row;
        row = swap;
    }
    int got = next[0];
    free(next);
    free(row);
    free(tok);
    return got;
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
    int want = oracle_match(pattern, plen, key, klen);
    bool got = acl_glob_match(pattern, plen, key, klen); /* any pattern: no crash, no hang */
    if (want >= 0 && want != got) {
        fprintf(stderr, "pattern '%s' key '%s': oracle %d, acl %d\n", pattern, key, want, got);
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
