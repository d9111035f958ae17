/*
 * fuzz_config.c - libFuzzer harness for the twemproxy YAML config loader
 * (config.c).
 *
 * The input is a config file. It goes through conf_load_with, as
 * `chash-proxy -t` reads its -c file (here from a memfd, so each run costs no
 * disk), with one difference: host names resolve through a stand-in that
 * never touches the network (numeric addresses as getaddrinfo reads them,
 * other plausible names to fixed fake addresses, the rest fail).
 *
 * A rejected file must leave *out alone and say "PATH:LINE: message" with a
 * line inside the file. An accepted one must hold every promise config.h
 * makes (each pool listens and has servers, names are unique and fit the
 * ring, weights and ports are in range, users' names are unique and their
 * rules consistent), and the ring the proxy would build
 * from each pool (health.c's pool_build_ring) must build. Leaks are found by
 * the sanitizer's leak checker.
 */
#define _GNU_SOURCE
#include "config.h"
#include "fuzz.h"

#include <chash.h>
#include <netdb.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int fake_resolve(void *user, const char *host, int port, bool is_passive, conf_addr *out,
                        const char **why) {
    (void)user;
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (is_passive ? AI_PASSIVE : 0);
    if (getaddrinfo(host, port_text, &hints, &res) == 0 && res) {
        FUZZ_CHECK(res->ai_addrlen <= sizeof out->sa);
        memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
        out->sa_len = (socklen_t)res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
    }
    /* A name that DNS could hold gets an address of its own in 10/8. */
    size_t len = strlen(host);
    bool is_name = len > 0 && len <= 253;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        char c = host[i];
        is_name &= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '-' || c == '_';
        h = (h ^ (uint8_t)c) * 16777619u;
    }
    if (!is_name) {
        *why = "Name or service not known";
        return -1;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)&out->sa;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    in->sin_addr.s_addr = htonl((10u << 24) | (h & 0xffffffu));
    out->sa_len = (socklen_t)sizeof *in;
    return 0;
}

/* The proxy's ring for a pool, built as health.c's pool_build_ring does. */
static void check_ring(const conf_pool *p) {
    chash_config cc;
    conf_pool_chash_config(p, &cc);
    /* Heavy pools are legal but slow to build: leave them to the tests. */
    uint64_t total_weight = 0;
    for (size_t i = 0; i < p->server_count; i++) total_weight += p->servers[i].weight;
    if (total_weight > 512) return;
    chash_node_spec *specs = malloc(p->server_count * sizeof *specs);
    FUZZ_CHECK(specs != NULL);
    for (size_t i = 0; i < p->server_count; i++)
        specs[i] = (chash_node_spec){p->servers[i].name, strlen(p->servers[i].name),
                                     p->servers[i].weight};
    chash *ring = NULL;
    int rc = chash_create(&cc, &ring);
    if (rc != CHASH_OK) fprintf(stderr, "chash_create: %s\n", chash_strerror(rc));
    FUZZ_CHECK(rc == CHASH_OK);
    rc = chash_add_many(ring, specs, p->server_count);
    if (rc != CHASH_OK) fprintf(stderr, "chash_add_many: %s\n", chash_strerror(rc));
    FUZZ_CHECK(rc == CHASH_OK);
    static const char *const keys[] = {"", "a", "user:{42}:cart", "{}", "foo{bar}baz"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t node = SIZE_MAX;
        FUZZ_CHECK(chash_lookup(ring, keys[i], strlen(keys[i]), &node) == CHASH_OK);
        FUZZ_CHECK(node < p->server_count);
    }
    chash_free(ring);
    free(specs);
}

static void check_addr(const conf_addr *a) {
    FUZZ_CHECK(a->sa_len > 0 && a->sa_len <= sizeof a->sa);
    FUZZ_CHECK(a->is_unix == (a->sa.ss_family == AF_UNIX));
}

static void check_conf(const conf *cf) {
    FUZZ_CHECK(cf->pool_count >= 1 && cf->pools != NULL);
    for (size_t i = 0; i < cf->pool_count; i++) {
        const conf_pool *p = &cf->pools[i];
        FUZZ_CHECK(p->name != NULL && p->listen != NULL);
        check_addr(&p->listen_addr);
        FUZZ_CHECK(p->listen_mode >= -1 && p->listen_mode <= 07777);
        FUZZ_CHECK(strlen(p->hash_tag) == 0 || strlen(p->hash_tag) == 2);
        FUZZ_CHECK(p->timeout_ms == -1 || (p->timeout_ms >= 1 && p->timeout_ms <= INT32_MAX));
        FUZZ_CHECK(p->backlog >= 1);
        FUZZ_CHECK(p->server_connections >= 1);
        FUZZ_CHECK(p->server_failure_limit >= 1);
        FUZZ_CHECK(p->server_retry_timeout_ms >= 1);
        FUZZ_CHECK(p->max_arguments >= 2 && p->max_bulk_length >= 1);
        FUZZ_CHECK(p->max_client_buffer >= 1024);
        FUZZ_CHECK(p->redis || !p->redis_auth);
        FUZZ_CHECK(!p->redis_auth || p->redis_auth_len == strlen(p->redis_auth));
        /* users: (acl.h): a Redis pool's, names unique, invariants kept. */
        FUZZ_CHECK(p->redis || p->user_count == 0);
        for (size_t j = 0; j < p->user_count; j++) {
            const acl_user *u = &p->users[j];
            FUZZ_CHECK(u->name && u->name[0] && strlen(u->name) <= ACL_NAME_MAX);
            FUZZ_CHECK(!u->is_all_keys || u->key_count == 0);
            FUZZ_CHECK(!u->is_nopass || u->hash_count == 0);
            FUZZ_CHECK(acl_user_find(p->users, p->user_count, u->name, strlen(u->name)) == u);
        }
        FUZZ_CHECK(strcmp(conf_dist_name(p), "?") != 0 && conf_dist_name(p) != NULL);
        FUZZ_CHECK(p->server_count >= 1 && p->servers != NULL);
        for (size_t j = 0; j < p->server_count; j++) {
            const conf_server *s = &p->servers[j];
            FUZZ_CHECK(s->text != NULL && s->name != NULL && s->host != NULL);
            size_t name_len = strlen(s->name);
            FUZZ_CHECK(name_len >= 1 && name_len <= CHASH_NAME_MAX);
            FUZZ_CHECK(s->weight >= 1 && s->weight <= CHASH_WEIGHT_MAX);
            FUZZ_CHECK((s->host[0] == '/') == (s->port == 0));
            FUZZ_CHECK(s->port >= 0 && s->port <= 65535);
            FUZZ_CHECK(s->line >= 1);
            check_addr(&s->addr);
            for (size_t k = 0; k < j; k++) FUZZ_CHECK(strcmp(p->servers[k].name, s->name) != 0);
        }
        for (size_t k = 0; k < i; k++) FUZZ_CHECK(strcmp(cf->pools[k].name, p->name) != 0);
        check_ring(p);
    }
}

/* "PATH:LINE: message", with LINE no further than the file's last line. */
static void check_message(const char *err, size_t err_len, const char *path,
                          const uint8_t *data, size_t size) {
    FUZZ_CHECK(memchr(err, '\0', err_len) != NULL);
    size_t path_len = strlen(path);
    FUZZ_CHECK(strncmp(err, path, path_len) == 0 && err[path_len] == ':');
    const char *p = err + path_len + 1;
    unsigned long line = 0;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 12; p++, digits++)
        line = line * 10 + (unsigned long)(*p - '0');
    FUZZ_CHECK(digits >= 1 && p[0] == ':' && p[1] == ' ' && p[2] != '\0');
    /* libyaml also breaks lines at CR, NEL, LS and PS. */
    unsigned long breaks = 0;
    for (size_t i = 0; i < size; i++)
        breaks += data[i] == '\n' || data[i] == '\r' || data[i] == 0x85 || data[i] == 0xa8 ||
                  data[i] == 0xa9;
    FUZZ_CHECK(line <= breaks + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_config.yml", 0);
        FUZZ_CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    for (size_t done = 0; done < size;) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
        FUZZ_CHECK(n > 0);
        done += (size_t)n;
    }
    /* The TLS keys' rules are checked; their files are not read. */
    const conf_options opt = {.resolve = fake_resolve, .skip_files = true};
    conf *const untouched = (conf *)&fd; /* any pointer the loader must not change */
    conf *cf = untouched;
    char err[CONF_ERR_MAX];
    memset(err, 'x', sizeof err);
    if (conf_load_with(&opt, path, &cf, err, sizeof err) == 0) {
        FUZZ_CHECK(cf != untouched && cf != NULL);
        check_conf(cf);
        conf_free(cf);
    } else {
        FUZZ_CHECK(cf == untouched);
        check_message(err, sizeof err, path, data, size);
    }
    conf_free(NULL);
    return 0;
}
