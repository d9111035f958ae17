/*
 * acl.c - users from rules in Redis's ACL language, and the checks a
 * client's commands pass (acl.h).
 *
 * A user's commands are a bitmap over the command table (command_index),
 * as Redis keeps one over its command ids: +command sets a command's bit
 * and its subcommands', +@category every command of the category (and the
 * subcommands of a container that is in it), -... clears them; any cleared
 * bit ends allcommands. Categories are the table's (command_acl.h, from
 * redis-server's COMMAND).
 *
 * Invariant: a user's hashes hold no two equal digests, and its keys (or
 * channels) are empty while is_all_keys (is_all_channels) is set.
 */
#include "acl.h"

#include "command.h"
#include "resp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the command table, as the rules need it ---------------------------- */

/* parent[i]: the container of subcommand i ("config" for "config|get"), or
 * SIZE_MAX. Built once. */
static size_t *parent;
static size_t command_total, word_count;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void) {
    command_init();
    command_total = command_count();
    word_count = (command_total + 63) / 64;
    parent = malloc(command_total * sizeof *parent);
    if (!parent) return; /* acl_user_parse then says out of memory */
    for (size_t i = 0; i < command_total; i++) {
        const char *name = command_name(i), *bar = strchr(name, '|');
        const cmd_spec *up = bar ? command_find_name(name, (size_t)(bar - name)) : NULL;
        parent[i] = up ? command_index(up) : SIZE_MAX;
    }
}

static inline void bit_set(acl_user *u, size_t i, bool allow) {
    if (allow) {
        u->allowed[i / 64] |= UINT64_C(1) << (i % 64);
    } else {
        u->allowed[i / 64] &= ~(UINT64_C(1) << (i % 64));
        u->is_all_commands = false;
    }
}

static inline bool bit_get(const acl_user *u, size_t i) {
    return (u->allowed[i / 64] >> (i % 64)) & 1u;
}

/* Redis's ACLChangeSelectorPerm: the command and, for a container, each of
 * its subcommands. */
static void change_command(acl_user *u, size_t i, bool allow) {
    bit_set(u, i, allow);
    for (size_t j = 0; j < command_total; j++)
        if (parent[j] == i) bit_set(u, j, allow);
}

/* Redis's ACLSetSelectorCommandBitsForCategory: each command in the
 * category with its subcommands, and each subcommand in it. */
static void change_category(acl_user *u, uint32_t category, bool allow) {
    for (size_t i = 0; i < command_total; i++) {
        bool in = command_at(i)->acl & category;
        if (!in && parent[i] != SIZE_MAX) in = command_at(parent[i])->acl & category;
        if (in) bit_set(u, i, allow);
    }
}

static void change_all(acl_user *u, bool allow) {
    memset(u->allowed, allow ? 0xff : 0, word_count * sizeof *u->allowed);
    u->is_all_commands = allow;
}

/* ---- passwords ------------------------------------------------------------ */

void acl_hash(const void *pass, size_t len, unsigned char out[ACL_HASH_LEN]) {
    unsigned int n = 0;
    /* EVP_Digest fails only without memory; a digest of zeros then opens
     * nothing (no configured password hashes to it in practice). */
    if (!EVP_Digest(pass, len, out, &n, EVP_sha256(), NULL) || n != ACL_HASH_LEN)
        memset(out, 0, ACL_HASH_LEN);
}

/* 64 lowercase hex digits, as Redis takes a #digest. */
static bool hex_digest(const char *s, size_t len, unsigned char out[ACL_HASH_LEN]) {
    if (len != 2 * ACL_HASH_LEN) return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0) return false;
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)(v << 4);
        else
            out[i / 2] |= (unsigned char)v;
    }
    return true;
}

static size_t hash_index(const acl_user *u, const unsigned char h[ACL_HASH_LEN]) {
    for (size_t i = 0; i < u->hash_count; i++)
        if (memcmp(u->hashes[i], h, ACL_HASH_LEN) == 0) return i;
    return SIZE_MAX;
}

/* Redis's '>' and '#': a new digest (none twice), and no longer nopass. */
static bool hash_add(acl_user *u, const unsigned char h[ACL_HASH_LEN]) {
    u->is_nopass = false;
    if (hash_index(u, h) != SIZE_MAX) return true;
    void *grown = realloc(u->hashes, (u->hash_count + 1) * sizeof *u->hashes);
    if (!grown) return false;
    u->hashes = grown;
    memcpy(u->hashes[u->hash_count++], h, ACL_HASH_LEN);
    return true;
}

/* Redis's '<' and '!': false when the user has no such password. */
static bool hash_remove(acl_user *u, const unsigned char h[ACL_HASH_LEN]) {
    size_t i = hash_index(u, h);
    if (i == SIZE_MAX) return false;
    memmove(u->hashes[i], u->hashes[i + 1], (u->hash_count - i - 1) * sizeof *u->hashes);
    u->hash_count--;
    u->is_nopass = false;
    return true;
}

static void hashes_reset(acl_user *u) {
    free(u->hashes);
    u->hashes = NULL;
    u->hash_count = 0;
}

/* ---- patterns -------------------------------------------------------------- */

static void patterns_reset(char ***list, size_t *count) {
    for (size_t i = 0; i < *count; i++) free((*list)[i]);
    free(*list);
    *list = NULL;
    *count = 0;
}

static bool pattern_add(char ***list, size_t *count, const char *p, size_t len) {
    char **grown = realloc(*list, (*count + 1) * sizeof **list);
    if (!grown) return false;
    *list = grown;
    char *copy = malloc(len + 1);
    if (!copy) return false;
    memcpy(copy, p, len);
    copy[len] = '\0';
    grown[(*count)++] = copy;
    return true;
}

/* ---- the rules ------------------------------------------------------------- */

typedef struct rule_ctx {
    acl_user *u;
    const char *tok; /* the rule, tok_len bytes, not terminated */
    size_t tok_len;
    unsigned index;  /* its place after the name, from 1 */
    char *err;
    size_t err_len;
} rule_ctx;

static int rule_fail(rule_ctx *r, bool show, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* "user 'alice': rule 3 ('+nosuch'): why", the rule's text left out when
 * it could be a secret. */
static int rule_fail(rule_ctx *r, bool show, const char *fmt, ...) {
    int n = show ? snprintf(r->err, r->err_len, "user '%s': rule %u ('%.*s'): ", r->u->name,
                            r->index, (int)(r->tok_len > 80 ? 80 : r->tok_len), r->tok)
                 : snprintf(r->err, r->err_len, "user '%s': rule %u: ", r->u->name, r->index);
    if (n < 0 || (size_t)n >= r->err_len) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static bool word_is(const rule_ctx *r, const char *word) {
    size_t n = strlen(word);
    if (r->tok_len != n) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = r->tok[i];
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
        if (ch != word[i]) return false;
    }
    return true;
}

static int out_of_memory(rule_ctx *r) { return rule_fail(r, false, "out of memory"); }

/* ~pattern or &pattern: Redis refuses one after the all-pattern. */
static int rule_pattern(rule_ctx *r, bool is_key) {
    acl_user *u = r->u;
    const char *p = r->tok + 1;
    size_t len = r->tok_len - 1;
    bool *is_all = is_key ? &u->is_all_keys : &u->is_all_channels;
    char ***list = is_key ? &u->keys : &u->channels;
    size_t *count = is_key ? &u->key_count : &u->channel_count;
    if (*is_all)
        return rule_fail(r, true, "a pattern after %s has no effect (Redis refuses it too): "
                         "use %s first", is_key ? "allkeys or ~*" : "allchannels or &*",
                         is_key ? "resetkeys" : "resetchannels");
    if (len == 1 && p[0] == '*') {
        patterns_reset(list, count);
        *is_all = true;
        return 0;
    }
    return pattern_add(list, count, p, len) ? 0 : out_of_memory(r);
}

/* +command, -command, +command|sub, -command|sub, +@category, -@category. */
static int rule_commands(rule_ctx *r) {
    acl_user *u = r->u;
    bool allow = r->tok[0] == '+';
    const char *name = r->tok + 1;
    size_t len = r->tok_len - 1;
    if (len >= 1 && name[0] == '@') {
        if (word_is(r, allow ? "+@all" : "-@all")) {
            change_all(u, allow);
            return 0;
        }
        uint32_t category = command_acl_find(name + 1, len - 1);
        if (!category)
            return rule_fail(r, true, "no such category (ACL CAT lists them)");
        change_category(u, category, allow);
        return 0;
    }
    const cmd_spec *spec = command_find_name(name, len);
    const char *bar = memchr(name, '|', len);
    if (!spec && bar) {
        const cmd_spec *up = command_find_name(name, (size_t)(bar - name));
        bool is_container = false;
        for (size_t j = 0; up && j < command_total; j++)
            is_container |= parent[j] == command_index(up);
        if (up && !is_container)
            return rule_fail(r, true, "rules on a command's first argument are not "
                             "supported; '%ccommand|subcommand' takes a subcommand",
                             r->tok[0]);
        if (up)
            return rule_fail(r, true, "'%.*s' has no such subcommand", (int)(bar - name), name);
    }
    if (!spec) return rule_fail(r, true, "no such command in the proxy's table");
    change_command(u, command_index(spec), allow);
    return 0;
}

static int rule_password(rule_ctx *r) {
    acl_user *u = r->u;
    unsigned char h[ACL_HASH_LEN];
    char kind = r->tok[0];
    if (kind == '>' || kind == '<') {
        acl_hash(r->tok + 1, r->tok_len - 1, h);
    } else if (!hex_digest(r->tok + 1, r->tok_len - 1, h)) {
        return rule_fail(r, false, "'%c' takes a password's SHA-256: exactly 64 lowercase hex "
                         "digits", kind);
    }
    if (kind == '>' || kind == '#') return hash_add(u, h) ? 0 : out_of_memory(r);
    if (!hash_remove(u, h))
        return rule_fail(r, false, "'%c': the user has no such password to remove", kind);
    return 0;
}

/* Redis's `reset`: resetpass, resetkeys, resetchannels, off, -@all. */
static void user_reset(acl_user *u) {
    hashes_reset(u);
    u->is_nopass = false;
    patterns_reset(&u->keys, &u->key_count);
    u->is_all_keys = false;
    patterns_reset(&u->channels, &u->channel_count);
    u->is_all_channels = false;
    u->is_on = false;
    change_all(u, false);
}

static int rule_apply(rule_ctx *r) {
    acl_user *u = r->u;
    char first = r->tok[0];
    if (first == '>' || first == '<' || first == '#' || first == '!') return rule_password(r);
    if (first == '~') return rule_pattern(r, true);
    if (first == '&') return rule_pattern(r, false);
    if (first == '%')
        return rule_fail(r, true, "read/write key permissions (%%R~, %%W~, %%RW~) are not "
                         "supported: use ~pattern");
    if (first == '(' || first == ')')
        return rule_fail(r, true, "selectors are not supported");
    if (first == '+' || first == '-') return rule_commands(r);
    if (word_is(r, "on")) {
        u->is_on = true;
    } else if (word_is(r, "off")) {
        u->is_on = false;
    } else if (word_is(r, "nopass")) {
        hashes_reset(u);
        u->is_nopass = true;
    } else if (word_is(r, "resetpass")) {
        hashes_reset(u);
        u->is_nopass = false;
    } else if (word_is(r, "allkeys")) {
        patterns_reset(&u->keys, &u->key_count);
        u->is_all_keys = true;
    } else if (word_is(r, "resetkeys")) {
        patterns_reset(&u->keys, &u->key_count);
        u->is_all_keys = false;
    } else if (word_is(r, "allchannels")) {
        patterns_reset(&u->channels, &u->channel_count);
        u->is_all_channels = true;
    } else if (word_is(r, "resetchannels")) {
        patterns_reset(&u->channels, &u->channel_count);
        u->is_all_channels = false;
    } else if (word_is(r, "allcommands")) {
        change_all(u, true);
    } else if (word_is(r, "nocommands")) {
        change_all(u, false);
    } else if (word_is(r, "reset")) {
        user_reset(u);
    } else if (word_is(r, "clearselectors")) {
        return rule_fail(r, true, "selectors are not supported");
    } else if (word_is(r, "sanitize-payload") || word_is(r, "skip-sanitize-payload")) {
        return rule_fail(r, true, "RESTORE's payload checks are the servers' (their "
                         "sanitize-dump-payload), not the proxy's");
    } else {
        /* Not shown: a password written without its '>' would be. */
        return rule_fail(r, false, "not a rule of Redis's ACL language (not shown: it may be "
                         "a password missing its '>')");
    }
    return 0;
}

static bool is_blank(char ch) { return ch == ' ' || ch == '\t'; }

int acl_user_parse(const char *text, acl_user *out, char *err, size_t err_len) {
    pthread_once(&table_once, table_init);
    acl_user u = {0};
    const char *at = text;
    while (is_blank(*at)) at++;
    size_t name_len = strcspn(at, " \t");
    if (name_len == 0) {
        snprintf(err, err_len, "expected \"NAME rules...\", got an empty string");
        return -1;
    }
    if (name_len > ACL_NAME_MAX) {
        snprintf(err, err_len, "a user name has at most %u bytes", ACL_NAME_MAX);
        return -1;
    }
    u.name = malloc(name_len + 1);
    u.allowed = parent ? calloc(word_count ? word_count : 1, sizeof *u.allowed) : NULL;
    if (!u.name || !u.allowed) {
        snprintf(err, err_len, "out of memory");
        acl_user_free(&u);
        return -1;
    }
    memcpy(u.name, at, name_len);
    u.name[name_len] = '\0';
    for (size_t i = 0; i < name_len; i++)
        if ((unsigned char)u.name[i] < 0x20 || u.name[i] == 0x7f) {
            snprintf(err, err_len, "a user name has no control characters");
            acl_user_free(&u);
            return -1;
        }
    at += name_len;
    rule_ctx r = {.u = &u, .err = err, .err_len = err_len};
    for (;;) {
        while (is_blank(*at)) at++;
        if (!*at) break;
        r.tok = at;
        r.tok_len = strcspn(at, " \t");
        r.index++;
        if (rule_apply(&r) != 0) {
            acl_user_free(&u);
            return -1;
        }
        at += r.tok_len;
    }
    *out = u;
    return 0;
}

void acl_user_free(acl_user *u) {
    if (!u) return;
    free(u->name);
    hashes_reset(u);
    patterns_reset(&u->keys, &u->key_count);
    patterns_reset(&u->channels, &u->channel_count);
    free(u->allowed);
    memset(u, 0, sizeof *u);
}

static bool patterns_same(char *const *a, size_t na, char *const *b, size_t nb) {
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0) return false;
    return true;
}

bool acl_user_same(const acl_user *a, const acl_user *b) {
    if (strcmp(a->name, b->name) != 0 || a->is_on != b->is_on || a->is_nopass != b->is_nopass ||
        a->is_all_keys != b->is_all_keys || a->is_all_channels != b->is_all_channels ||
        a->is_all_commands != b->is_all_commands || a->hash_count != b->hash_count ||
        !patterns_same(a->keys, a->key_count, b->keys, b->key_count) ||
        !patterns_same(a->channels, a->channel_count, b->channels, b->channel_count) ||
        memcmp(a->allowed, b->allowed, word_count * sizeof *a->allowed) != 0)
        return false;
    for (size_t i = 0; i < a->hash_count; i++)
        if (hash_index(b, a->hashes[i]) == SIZE_MAX) return false;
    return true;
}

const acl_user *acl_user_find(const acl_user *users, size_t count, const char *name,
                              size_t len) {
    for (size_t i = 0; i < count; i++)
        if (strlen(users[i].name) == len && memcmp(users[i].name, name, len) == 0)
            return &users[i];
    return NULL;
}

const acl_user *acl_authenticate(const acl_user *users, size_t count, const char *name,
                                 size_t name_len, const char *pass, size_t pass_len) {
    unsigned char h[ACL_HASH_LEN];
    acl_hash(pass, pass_len, h);
    const acl_user *u = acl_user_find(users, count, name, name_len);
    if (!u || !u->is_on) return NULL;
    if (u->is_nopass) return u;
    int diff = 1;
    /* Every digest compared, whichever matches. */
    for (size_t i = 0; i < u->hash_count; i++)
        diff &= CRYPTO_memcmp(u->hashes[i], h, ACL_HASH_LEN) != 0;
    return diff ? NULL : u;
}

/* ---- globs ---------------------------------------------------------------- */

/* Redis 7.0's glob rules for keys and channels (its stringmatchlen, case
 * sensitive), quirks included: an empty string matches only the empty
 * pattern, ranges compare signed chars, an unclosed '[' steps back onto
 * its last byte. Where Redis reads the pattern's terminating NUL, every
 * read here is bounded. fuzz_acl checks it against an oracle of its own. */
static bool glob(const char *pattern, size_t plen, const char *s, size_t slen, bool *skip) {
    while (plen && slen) {
        switch (pattern[0]) {
        case '*':
            while (plen > 1 && pattern[1] == '*') {
                pattern++;
                plen--;
            }
            if (plen == 1) return true;
            while (slen) {
                if (glob(pattern + 1, plen - 1, s, slen, skip)) return true;
                if (*skip) return false;
                s++;
                slen--;
            }
            /* Nothing after the '*' matches from anywhere on: no earlier
             * '*' can do better by taking more. */
            *skip = true;
            return false;
        case '?':
            s++;
            slen--;
            break;
        case '[': {
            pattern++;
            plen--;
            bool is_not = plen && pattern[0] == '^';
            if (is_not) {
                pattern++;
                plen--;
            }
            bool is_match = false;
            for (;;) {
                if (plen >= 2 && pattern[0] == '\\') {
                    pattern++;
                    plen--;
                    if (pattern[0] == s[0]) is_match = true;
                } else if (plen == 0) {
                    /* An unclosed '[': Redis steps back onto the last byte. */
                    pattern--;
                    plen++;
                    break;
                } else if (pattern[0] == ']') {
                    break;
                } else if (plen >= 3 && pattern[1] == '-') {
                    /* signed char, as Redis's int start = pattern[0] */
                    int start = (signed char)pattern[0], end = (signed char)pattern[2];
                    int ch = (signed char)s[0];
                    if (start > end) {
                        int t = start;
                        start = end;
                        end = t;
                    }
                    pattern += 2;
                    plen -= 2;
                    if (ch >= start && ch <= end) is_match = true;
                } else if (pattern[0] == s[0]) {
                    is_match = true;
                }
                pattern++;
                plen--;
            }
            if (is_not) is_match = !is_match;
            if (!is_match) return false;
            s++;
            slen--;
            break;
        }
        case '\\':
            if (plen >= 2) {
                pattern++;
                plen--;
            }
            /* fall through */
        default:
            if (pattern[0] != s[0]) return false;
            s++;
            slen--;
            break;
        }
        pattern++;
        plen--;
        if (slen == 0) {
            while (plen && pattern[0] == '*') {
                pattern++;
                plen--;
            }
            break;
        }
    }
    return plen == 0 && slen == 0;
}

bool acl_glob_match(const char *pattern, size_t pattern_len, const char *s, size_t len) {
    bool skip = false;
    return glob(pattern, pattern_len, s, len, &skip);
}

/* ---- checks --------------------------------------------------------------- */

static bool key_ok(const acl_user *u, const resp_arg *key) {
    for (size_t i = 0; i < u->key_count; i++)
        if (acl_glob_match(u->keys[i], strlen(u->keys[i]), key->ptr, key->len)) return true;
    return false;
}

/* Redis's ACLCheckChannelAgainstList: a channel is matched by the patterns,
 * a PSUBSCRIBE pattern must be one of them, literally. */
static bool channel_ok(const acl_user *u, const resp_arg *ch, bool is_pattern) {
    for (size_t i = 0; i < u->channel_count; i++) {
        const char *p = u->channels[i];
        size_t n = strlen(p);
        if (is_pattern ? n == ch->len && memcmp(p, ch->ptr, n) == 0
                       : acl_glob_match(p, n, ch->ptr, ch->len))
            return true;
    }
    return false;
}

/* SORT and SORT_RO read other keys by their BY and GET patterns: Redis
 * allows those options only to a user with every key. Its option loop, to
 * the first error (which the server then gives). */
static acl_verdict sort_check(const cmd_spec *spec, const resp_msg *m) {
    bool is_ro = strcmp(spec->name, "sort_ro") == 0;
    for (size_t j = 2; j < m->argc; j++) {
        const resp_arg *a = &m->argv[j];
        size_t left = m->argc - j - 1;
        long long n;
        if (resp_arg_is(a, "asc") || resp_arg_is(a, "desc") || resp_arg_is(a, "alpha")) {
            continue;
        } else if (resp_arg_is(a, "limit") && left >= 2) {
            if (!resp_arg_int(&m->argv[j + 1], &n) || !resp_arg_int(&m->argv[j + 2], &n))
                return ACL_OK;
            j += 2;
        } else if (!is_ro && resp_arg_is(a, "store") && left >= 1) {
            j++;
        } else if (resp_arg_is(a, "by") && left >= 1) {
            if (memchr(m->argv[j + 1].ptr, '*', m->argv[j + 1].len)) return ACL_DENIED_SORT_BY;
            j++;
        } else if (resp_arg_is(a, "get") && left >= 1) {
            return ACL_DENIED_SORT_GET;
        } else {
            return ACL_OK;
        }
    }
    return ACL_OK;
}

acl_verdict acl_check(const acl_user *u, const cmd_spec *spec, const resp_msg *m) {
    switch (spec->kind) {
    case CK_AUTH:
    case CK_HELLO:
    case CK_QUIT:
    case CK_RESET:
        return ACL_OK;
    default:
        break;
    }
    if (!bit_get(u, command_index(spec))) return ACL_DENIED_COMMAND;
    /* A script's code runs on a server as the proxy's user. */
    if (spec->kind == CK_NUMKEYS && (spec->acl & CMD_ACL_SCRIPTING) &&
        !(u->is_all_commands && u->is_all_keys && u->is_all_channels))
        return ACL_DENIED_SCRIPT;
    /* PUBLISH and SPUBLISH: routed by their channel as by a key; it is a
     * channel all the same. */
    bool is_publish = spec->kind == CK_KEY && (spec->acl & CMD_ACL_PUBSUB);
    if (!u->is_all_keys && !is_publish) {
        cmd_keys k;
        if (command_keys(spec, m, &k) == CMD_KEYS_OK) {
            if (k.dest && !key_ok(u, k.dest)) return ACL_DENIED_KEY;
            for (size_t i = 0; i < k.count; i++)
                if (!key_ok(u, command_key(m, &k, i))) return ACL_DENIED_KEY;
        }
        if (spec->kind == CK_KEY && strncmp(spec->name, "sort", 4) == 0) {
            acl_verdict v = sort_check(spec, m);
            if (v != ACL_OK) return v;
        }
    }
    if (u->is_all_channels) return ACL_OK;
    if (is_publish && m->argc >= 2 && !channel_ok(u, &m->argv[1], false))
        return ACL_DENIED_CHANNEL;
    if (spec->kind == CK_SUBSCRIBE || spec->kind == CK_PSUBSCRIBE)
        for (size_t i = 1; i < m->argc; i++)
            if (!channel_ok(u, &m->argv[i], spec->kind == CK_PSUBSCRIBE))
                return ACL_DENIED_CHANNEL;
    return ACL_OK;
}

void acl_verdict_text(acl_verdict v, const cmd_spec *spec, char *out, size_t len) {
    switch (v) {
    case ACL_OK:
        snprintf(out, len, "+OK\r\n");
        return;
    case ACL_DENIED_COMMAND:
        snprintf(out, len, "-NOPERM this user has no permissions to run the '%s' command\r\n",
                 spec->name);
        return;
    case ACL_DENIED_KEY:
        snprintf(out, len, "-NOPERM this user has no permissions to access one of the keys "
                 "used as arguments\r\n");
        return;
    case ACL_DENIED_CHANNEL:
        snprintf(out, len, "-NOPERM this user has no permissions to access one of the "
                 "channels used as arguments\r\n");
        return;
    case ACL_DENIED_SCRIPT:
        snprintf(out, len, "-NOPERM this user may not run '%s' through the proxy: a script's "
                 "commands, keys and channels run unchecked on a server, so scripts need "
                 "allcommands, allkeys and allchannels\r\n", spec->name);
        return;
    case ACL_DENIED_SORT_BY:
        snprintf(out, len, "-ERR BY option of SORT denied due to insufficient ACL "
                 "permissions.\r\n");
        return;
    case ACL_DENIED_SORT_GET:
        snprintf(out, len, "-ERR GET option of SORT denied due to insufficient ACL "
                 "permissions.\r\n");
        return;
    }
    snprintf(out, len, "-ERR ?\r\n");
}
