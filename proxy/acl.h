/*
 * acl.h - the proxy's users (a pool's `users:`): rule strings in Redis's own
 * ACL language, applied left to right as ACL SETUSER applies them to a new
 * user, and the checks of a client's commands, keys and channels against
 * them, worded as redis-server 7.0 words its refusals.
 *
 * Pure: no I/O, no clock, nothing shared but the command table (command.h).
 * A user is built when the configuration is read and is read-only after
 * that, shared by every worker. Passwords are kept only as SHA-256 digests
 * (OpenSSL's libcrypto) and compared in constant time (CRYPTO_memcmp); no
 * message made here shows a password or a digest.
 *
 * What the rules may say (docs/proxy.md, "Users and ACLs"): on, off, nopass,
 * resetpass, >password, <password, #sha256, !sha256, ~pattern, allkeys,
 * resetkeys, &pattern, allchannels, resetchannels, +command, -command,
 * +command|subcommand, -command|subcommand, +@category, -@category,
 * allcommands, nocommands, reset. Anything else (%R~ key permissions,
 * selectors, first-argument rules, sanitize-payload) is refused by name.
 */
#ifndef PROXY_ACL_H
#define PROXY_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACL_HASH_LEN 32u       /* SHA-256 */
#define ACL_NAME_MAX 256u      /* bytes of a user name */
#define ACL_ERR_MAX 256u

/* command.h's and resp.h's, named only (the config loader includes this). */
struct cmd_spec;
struct resp_msg;

typedef struct acl_user {
    char *name;
    bool is_on;
    bool is_nopass;        /* any password opens it */
    bool is_all_keys;      /* allkeys, or ~* */
    bool is_all_channels;  /* allchannels, or &* */
    bool is_all_commands;  /* allcommands (+@all), and no command taken away since */
    unsigned char (*hashes)[ACL_HASH_LEN]; /* its passwords' SHA-256, no two alike */
    size_t hash_count;
    char **keys; /* ~patterns, in the order given (none with is_all_keys) */
    size_t key_count;
    char **channels; /* &patterns (none with is_all_channels) */
    size_t channel_count;
    uint64_t *allowed; /* one bit per command of the table (command_index) */
} acl_user;

/*
 * acl_user_parse - a user from one rule string, "NAME rule rule...": the
 * rules are applied left to right to a new user (off, no password, no key,
 * no channel, no command), as redis-server 7.0 applies them.
 *
 * On success returns 0 and out owns its memory (acl_user_free). On error
 * returns -1, leaves nothing allocated and writes why to err: the rule
 * named by its place and, unless it could hold a secret (a password, a
 * digest, or a word that is no rule: perhaps a password missing its '>'),
 * by its text. Cost: O(rules * commands of the table).
 */
int acl_user_parse(const char *text, acl_user *out, char *err, size_t err_len);
/* Frees what acl_user_parse gave out; NULL and a zeroed user are fine. */
void acl_user_free(acl_user *u);
/* Whether two users are alike in every rule (a reload's plan says which
 * changed). */
bool acl_user_same(const acl_user *a, const acl_user *b);
/* The user of that name among `count`, or NULL. O(count). */
const acl_user *acl_user_find(const acl_user *users, size_t count, const char *name,
                              size_t len);

/*
 * acl_authenticate - the user a name and password open, or NULL: no such
 * user, the user is off, or the password is not one of its own (one
 * answer for all three, as Redis's WRONGPASS). The password is hashed
 * whatever the name, and compared with each of the user's digests in
 * constant time. Cost: one SHA-256 of the password, O(count) for the name.
 */
const acl_user *acl_authenticate(const acl_user *users, size_t count, const char *name,
                                 size_t name_len, const char *pass, size_t pass_len);

/* What acl_check decides. */
typedef enum acl_verdict {
    ACL_OK = 0,
    ACL_DENIED_COMMAND, /* not among the user's commands */
    ACL_DENIED_KEY,     /* a key outside its ~patterns */
    ACL_DENIED_CHANNEL, /* a channel outside its &patterns */
    /* A script (EVAL, FCALL...): its commands, keys and channels run on a
     * server as the proxy's own user, out of the proxy's sight, so only a
     * user with every command, key and channel may run one. */
    ACL_DENIED_SCRIPT,
    ACL_DENIED_SORT_BY,  /* SORT ... BY pattern* without allkeys, as Redis */
    ACL_DENIED_SORT_GET, /* SORT ... GET pattern without allkeys, as Redis */
} acl_verdict;

/*
 * acl_check - whether user u may run m, whose spec (after command_sub) is
 * spec: the command, then every key command_keys finds (and a
 * destination), then the channels of PUBLISH, SPUBLISH, SUBSCRIBE,
 * SSUBSCRIBE and PSUBSCRIBE, in Redis's order. AUTH, HELLO, QUIT and RESET
 * are always allowed (Redis's no-auth commands). Arguments that do not fit
 * the command pass here: routing answers them. Never allocates.
 * Cost: O(1) for the command; each key against each ~pattern (Redis's glob).
 */
acl_verdict acl_check(const acl_user *u, const struct cmd_spec *spec,
                      const struct resp_msg *m);
/* The error reply (RESP, with its CRLF) for a verdict other than ACL_OK,
 * as redis-server 7.0.15 words it, into out (always terminated). */
void acl_verdict_text(acl_verdict v, const struct cmd_spec *spec, char *out, size_t len);

/*
 * acl_glob_match - Redis's stringmatchlen (util.c, 7.0) without nocase:
 * '*', '?', '[...]' with '^' and ranges, '\' escapes; bytes compare as
 * Redis's (signed) chars do. Recursion is as deep as the pattern has '*',
 * and a failed '*' stops the ones before it from trying longer matches
 * (Redis's skipLongerMatches), so the cost stays polynomial.
 */
bool acl_glob_match(const char *pattern, size_t pattern_len, const char *s, size_t len);

/* SHA-256 of a password (OpenSSL's EVP). */
void acl_hash(const void *pass, size_t len, unsigned char out[ACL_HASH_LEN]);

#endif
