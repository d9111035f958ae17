/*
 * main.c - `chash-proxy`: options, configuration, listeners, workers.
 *
 * main is four steps: options (options_parse); setup (config_load,
 * log_setup, then setup: listeners, workers, daemon and pid file, signals,
 * the reload and stats threads); run (the workers until a signal); and
 * teardown, which undoes whatever part of setup was done.
 *
 * The options are nutcracker's (so a nutcracker command line works as is),
 * plus --workers, --config-keys and --commands. Exit status: 0 on success
 * (and for -t with a good configuration), 2 for a bad command line or
 * configuration, 1 when the proxy cannot start (a port in use...).
 */
#define _GNU_SOURCE
#include "proxy.h"
#include "secret.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define EXIT_USAGE 2
#define EXIT_START 1
/* From options_parse, config_load, log_setup: go on to the next step (not an
 * exit status). */
#define GO_ON (-1)
/* getopt_long's value for an option with no short form. */
#define OPT_CONFIG_KEYS 256
#define OPT_COMMANDS 257
#define OPT_STATS_TOKEN 258
#define OPT_MAX_MEMORY 259
#define OPT_EVENT_LOOP 260
/* --etcd and its companions: OPT_ETCD + the index in etcd_longs. */
#define OPT_ETCD 300

static const char usage[] =
    "usage: chash-proxy [-c FILE | --etcd URLS] [-t] [--workers N] [-s PORT] [-a ADDR]\n"
    "                   [-v LEVEL] [-o LOGFILE] [-p PIDFILE] [-d] [-hVD]\n"
    "\n"
    "A Redis and memcached sharding proxy that reads twemproxy (nutcracker)\n"
    "configuration files as they are.\n"
    "\n"
    "options:\n"
    "  -c, --conf-file FILE     configuration (default conf/nutcracker.yml)\n"
    "  -t, --test-conf          check the configuration and exit (0 good, 2 bad)\n"
    "  -n, --workers N          event-loop threads (default: half the CPUs, at least 1)\n"
    "  -s, --stats-port PORT    stats port, 0 for none (default 22222)\n"
    "  -a, --stats-addr ADDR    stats address (default 127.0.0.1)\n"
    "      --stats-token-file FILE  the stats port answers only HTTP requests with\n"
    "                           `Authorization: Bearer TOKEN`, TOKEN FILE's first line\n"
    "      --max-memory MB      past this many MB of buffers, the clients holding the\n"
    "                           most are closed, largest first (default 0: no cap)\n"
    "      --event-loop KIND    auto, io_uring or epoll (default: the environment's\n"
    "                           CHASH_PROXY_EVENT_LOOP, else auto: io_uring where the\n"
    "                           kernel allows it, else epoll)\n"
    "  -v, --verbose LEVEL      nutcracker log level 0..11 (default 5: warnings)\n"
    "  -o, --output FILE        log file (default stderr)\n"
    "  -p, --pid-file FILE      write the process id to FILE\n"
    "  -d, --daemonize          run in the background\n"
    "  -D, --describe-stats     print what the stats mean and exit\n"
    "  -i, --stats-interval MS  accepted for nutcracker; stats are always current\n"
    "  -m, --mbuf-size N        accepted for nutcracker; buffers grow as needed\n"
    "      --config-keys        print the configuration keys as a markdown table\n"
    "                           (docs/proxy.md) and exit\n"
    "      --commands[=tsv|acl] print the Redis commands and how each is routed as a\n"
    "                           markdown table (docs/proxy.md), or tab-separated, or each\n"
    "                           with its ACL categories, and exit\n"
    "  -V, --version            print the version and exit\n"
    "  -h, --help               this text\n"
    "\n"
    "A fleet of proxies on etcd (instead of -c; docs/proxy.md):\n"
    "      --etcd URL[,URL...]  take the pools from etcd's PREFIX/pools/NAME and change\n"
    "                           them with every other proxy (`chash fleet apply`)\n"
    "      --etcd-prefix PREFIX  the fleet's keys (default /chash)\n"
    "      --etcd-id ID         this proxy's name in the fleet (default HOST-PID)\n"
    "      --etcd-lease-ttl S   seconds etcd keeps this proxy listed when it stops\n"
    "                           answering (default 5)\n"
    "      --etcd-user USER     etcd authentication; the password from\n"
    "      --etcd-password-file FILE  or the environment's CHASH_ETCD_PASSWORD\n"
    "      --etcd-cacert FILE   https endpoints: the CA of etcd's certificate,\n"
    "      --etcd-cert FILE     and a client certificate\n"
    "      --etcd-key FILE      and its key\n"
    "      --listen NAME=ADDR   this proxy listens for pool NAME on ADDR, not on the\n"
    "                           pool's listen (several proxies on one host); repeatable\n"
    "\n"
    "Configuration keys and what differs from nutcracker: docs/proxy.md.\n";

/* Signal handlers may only touch lock-free atomics. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic_int is lock-free");

/* SIGHUP: re-read the configuration (reload.c). */
static void on_hangup(int sig) {
    (void)sig;
    int saved = errno;
    atomic_store(&proxy_reload_requested, 1);
    errno = saved;
}

/* The first SIGTERM or SIGINT drains, the second stops at once. The flags
 * are lock-free atomics: threads read them while a handler writes. */
static void on_signal(int sig) {
    (void)sig;
    int saved = errno;
    if (atomic_load(&proxy_drain))
        atomic_store(&proxy_stop, 1);
    else
        atomic_store(&proxy_drain, 1);
    errno = saved;
}

/* The command line, with nutcracker's defaults. */
typedef struct options {
    const char *conf_path;
    const char *stats_addr;
    const char *stats_token_file; /* --stats-token-file, or NULL */
    const char *log_path; /* NULL: stderr */
    const char *pid_path; /* NULL: none */
    bool is_test_only;
    bool is_daemon;
    long worker_count;
    long stats_port; /* 0: no stats */
    long verbosity;
    long max_memory_mb; /* --max-memory, 0: none */
    int loop_kind;      /* --event-loop: a loop_kind */
    fleet_options fleet; /* fleet.endpoints NULL: no --etcd */
    bool has_conf_file;
} options;

/* What setup made, for run and teardown. */
typedef struct runtime {
    proxy px;
    int *fds;        /* pool p's listener for worker w at [w * pool_count + p] */
    uint32_t inited; /* workers initialised: teardown destroys these */
} runtime;

static int parse_count(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* A numeric option's value in min..max: GO_ON, or its message and
 * EXIT_USAGE. */
static int option_count(const char *name, long min, long max, long *out) {
    if (parse_count(optarg, min, max, out) == 0) return GO_ON;
    fprintf(stderr, "chash-proxy: %s: expected %ld..%ld\n", name, min, max);
    return EXIT_USAGE;
}

/* --commands[=tsv|acl]: the command table, sorted as it is for routing. */
static int option_commands(void) {
    bool is_tsv = optarg && strcmp(optarg, "tsv") == 0;
    bool is_acl = optarg && strcmp(optarg, "acl") == 0;
    if (optarg && !is_tsv && !is_acl) {
        fprintf(stderr, "chash-proxy: --commands: expected no value, 'tsv' or 'acl'\n");
        return EXIT_USAGE;
    }
    command_init();
    command_table_print(stdout, is_tsv   ? CMD_TABLE_TSV
                                : is_acl ? CMD_TABLE_ACL
                                         : CMD_TABLE_MARKDOWN);
    return 0;
}

/* The --etcd options, in the order of their OPT_ETCD + i values. */
static const char *const etcd_longs[] = {"etcd", "etcd-prefix", "etcd-id", "etcd-lease-ttl",
                                         "etcd-user", "etcd-password-file", "etcd-cacert",
                                         "etcd-cert", "etcd-key", "listen"};
#define ETCD_LONGS (sizeof etcd_longs / sizeof etcd_longs[0])

static int option_etcd(int i, options *o) {
    fleet_options *f = &o->fleet;
    const char **at[] = {&f->endpoints, &f->prefix, &f->id, NULL, &f->user,
                         &f->password_file, &f->cacert, &f->cert, &f->key, NULL};
    if (i == 9) {
        if (f->listen_count == sizeof f->listens / sizeof f->listens[0]) {
            fprintf(stderr, "chash-proxy: --listen: at most %zu\n", f->listen_count);
            return EXIT_USAGE;
        }
        f->listens[f->listen_count++] = optarg;
        return GO_ON;
    }
    if (at[i]) {
        *at[i] = optarg;
        return GO_ON;
    }
    return option_count("--etcd-lease-ttl", 2, 3600, &f->lease_ttl_s);
}

/* One option: GO_ON, or the exit status of an option that ends the run. */
static int option_one(int opt, options *o) {
    long ignored;
    if (opt >= OPT_ETCD && opt < OPT_ETCD + (int)ETCD_LONGS) return option_etcd(opt - OPT_ETCD, o);
    switch (opt) {
    case 'c':
        o->conf_path = optarg;
        o->has_conf_file = true;
        return GO_ON;
    case 't': o->is_test_only = true; return GO_ON;
    case 'n': return option_count("--workers", 1, 1024, &o->worker_count);
    case 's': return option_count("--stats-port", 0, 65535, &o->stats_port);
    case 'a': o->stats_addr = optarg; return GO_ON;
    case 'v': return option_count("--verbose", 0, 11, &o->verbosity);
    case 'o': o->log_path = optarg; return GO_ON;
    case 'p': o->pid_path = optarg; return GO_ON;
    case 'd': o->is_daemon = true; return GO_ON;
    case 'D': stats_describe(stdout); return 0;
    case 'i':
    case 'm':
        if (parse_count(optarg, 0, 1L << 30, &ignored) == 0) return GO_ON;
        fprintf(stderr, "chash-proxy: -%c: expected a number\n", opt);
        return EXIT_USAGE;
    case OPT_STATS_TOKEN: o->stats_token_file = optarg; return GO_ON;
    case OPT_MAX_MEMORY: return option_count("--max-memory", 0, 1L << 30, &o->max_memory_mb);
    case OPT_EVENT_LOOP:
        o->loop_kind = loop_kind_parse(optarg);
        if (o->loop_kind >= 0) return GO_ON;
        fprintf(stderr, "chash-proxy: --event-loop: expected auto, io_uring or epoll\n");
        return EXIT_USAGE;
    case OPT_CONFIG_KEYS: conf_keys_markdown(stdout); return 0;
    case OPT_COMMANDS: return option_commands();
    case 'V':
        printf("chash-proxy %s (event loops: %s)\n", chash_version_string(), loop_kinds_built());
        return 0;
    case 'h': fputs(usage, stdout); return 0;
    default: fputs(usage, stderr); return EXIT_USAGE;
    }
}

/* Half the CPUs: the kernel's TCP work (a send runs the receiver's stack,
 * and the wake-ups) is most of a request's cost and needs the other half;
 * on 2 cores one worker spends 20-25 % less CPU a request than two and
 * answers more (docs/proxy.md, the event loop). */
static long default_workers(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN) / 2;
    return n < 1 ? 1 : n;
}

/* Step 1: the command line into *o, and the log level. */
static int options_parse(int argc, char **argv, options *o) {
    static const struct option longs[] = {
        {"conf-file", required_argument, NULL, 'c'}, {"test-conf", no_argument, NULL, 't'},
        {"workers", required_argument, NULL, 'n'},   {"stats-port", required_argument, NULL, 's'},
        {"stats-addr", required_argument, NULL, 'a'}, {"verbose", required_argument, NULL, 'v'},
        {"output", required_argument, NULL, 'o'},    {"pid-file", required_argument, NULL, 'p'},
        {"daemonize", no_argument, NULL, 'd'},       {"describe-stats", no_argument, NULL, 'D'},
        {"stats-interval", required_argument, NULL, 'i'},
        {"mbuf-size", required_argument, NULL, 'm'}, {"version", no_argument, NULL, 'V'},
        {"config-keys", no_argument, NULL, OPT_CONFIG_KEYS},
        {"commands", optional_argument, NULL, OPT_COMMANDS},
        {"help", no_argument, NULL, 'h'},
        {"etcd", required_argument, NULL, OPT_ETCD + 0},
        {"etcd-prefix", required_argument, NULL, OPT_ETCD + 1},
        {"etcd-id", required_argument, NULL, OPT_ETCD + 2},
        {"etcd-lease-ttl", required_argument, NULL, OPT_ETCD + 3},
        {"etcd-user", required_argument, NULL, OPT_ETCD + 4},
        {"etcd-password-file", required_argument, NULL, OPT_ETCD + 5},
        {"etcd-cacert", required_argument, NULL, OPT_ETCD + 6},
        {"etcd-cert", required_argument, NULL, OPT_ETCD + 7},
        {"etcd-key", required_argument, NULL, OPT_ETCD + 8},
        {"listen", required_argument, NULL, OPT_ETCD + 9},
        {"stats-token-file", required_argument, NULL, OPT_STATS_TOKEN},
        {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
        {"event-loop", required_argument, NULL, OPT_EVENT_LOOP},
        {NULL, 0, NULL, 0},
    };
    *o = (options){.conf_path = "conf/nutcracker.yml", .stats_addr = "127.0.0.1",
                   .worker_count = default_workers(), .stats_port = 22222,
                   .verbosity = 5,
                   .fleet = {.prefix = "/chash", .lease_ttl_s = 5}};
    if (o->worker_count < 1) o->worker_count = 1;
    const char *loop_env = getenv("CHASH_PROXY_EVENT_LOOP");
    if (loop_env && *loop_env) {
        o->loop_kind = loop_kind_parse(loop_env);
        if (o->loop_kind < 0) {
            fprintf(stderr, "chash-proxy: CHASH_PROXY_EVENT_LOOP: expected auto, io_uring or "
                    "epoll\n");
            return EXIT_USAGE;
        }
    }
    int opt;
    while ((opt = getopt_long(argc, argv, "c:tn:s:a:v:o:p:dDi:m:Vh", longs, NULL)) != -1) {
        int rc = option_one(opt, o);
        if (rc != GO_ON) return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "chash-proxy: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (o->fleet.endpoints && o->has_conf_file) {
        fprintf(stderr, "chash-proxy: -c and --etcd: the pools come from one or the other\n");
        return EXIT_USAGE;
    }
    if (!o->fleet.endpoints) {
        for (size_t i = 1; i < ETCD_LONGS; i++) {
            const char *set[] = {NULL, o->fleet.prefix, o->fleet.id, NULL, o->fleet.user,
                                 o->fleet.password_file, o->fleet.cacert, o->fleet.cert,
                                 o->fleet.key, o->fleet.listen_count ? "" : NULL};
            if (i == 1 || !set[i]) continue;
            fprintf(stderr, "chash-proxy: --%s needs --etcd\n", etcd_longs[i]);
            return EXIT_USAGE;
        }
    }
    proxy_log_level = o->verbosity <= 3 ? LOG_ERROR : o->verbosity <= 5 ? LOG_WARN
                      : o->verbosity == 6 ? LOG_INFO : LOG_DEBUG;
    return GO_ON;
}

/* Step 2a: the configuration (from the file, or from etcd, registered in
 * the fleet: *fleet); with -t, all there is to do. */
static int config_load(const options *o, conf **cf, struct fleet **fleet) {
    char err[CONF_ERR_MAX];
    if (o->fleet.endpoints) {
        if (fleet_open(&o->fleet, fleet, cf, err, sizeof err) != 0) {
            fprintf(stderr, "chash-proxy: %s\n", err);
            return EXIT_START;
        }
    } else if (conf_load(o->conf_path, cf, err, sizeof err) != 0) {
        fprintf(stderr, "chash-proxy: %s\n", err);
        return EXIT_USAGE;
    }
    if (o->is_test_only) {
        if (o->fleet.endpoints)
            printf("chash-proxy: the pools in etcd under %s are ok\n", o->fleet.prefix);
        else
            printf("chash-proxy: configuration file '%s' syntax is ok\n", o->conf_path);
        conf_free(*cf);
        return 0;
    }
    return GO_ON;
}

/* Step 2b: the log file, and process-wide settings made once. */
static int log_setup(const options *o) {
    if (o->log_path && proxy_log_open(o->log_path) != 0) {
        fprintf(stderr, "chash-proxy: cannot open log file %s: %s\n", o->log_path,
                strerror(errno));
        return EXIT_START;
    }
#if defined(__GLIBC__)
    /* Large buffers from mmap go back to the system when freed; without a
     * fixed threshold glibc raises it after the first free and keeps them. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
    command_init();
    return GO_ON;
}

/* The proxy object and its arrays; rt->px owns cf from here on. */
static int runtime_init(runtime *rt, conf *cf, struct fleet *fleet, const options *o) {
    proxy *px = &rt->px;
    px->cf = cf;
    px->conf_path = fleet ? NULL : o->conf_path;
    if (fleet && fleet_attach(fleet, px) != 0) {
        fprintf(stderr, "chash-proxy: out of memory\n");
        return EXIT_START;
    }
    pthread_mutex_init(&px->lock, NULL);
    pthread_mutex_init(&px->accept_lock, NULL);
    px->stats_fd = -1;
    px->start_time = (uint64_t)time(NULL);
    px->worker_count = (uint32_t)o->worker_count;
    px->workers = calloc(px->worker_count, sizeof *px->workers);
    px->pool_clients = calloc(cf->pool_count, sizeof *px->pool_clients);
    rt->fds = malloc(px->worker_count * cf->pool_count * sizeof *rt->fds);
    if (!px->workers || !px->pool_clients || !rt->fds) {
        fprintf(stderr, "chash-proxy: out of memory\n");
        return EXIT_START;
    }
    for (size_t i = 0; i < px->worker_count * cf->pool_count; i++) rt->fds[i] = -1;
    proxy_limit_clients(px);
    px->max_memory = (uint64_t)o->max_memory_mb << 20;
    px->loop_kind = o->loop_kind;
    reload_init(px);
    return 0;
}

/* Every listener is bound before anything runs, so a busy port is an error
 * at start, not in a worker. A unix socket is one listener for all workers. */
static int listeners_open(runtime *rt) {
    const conf *cf = rt->px.cf;
    char err[CONF_ERR_MAX];
    for (size_t p = 0; p < cf->pool_count; p++) {
        const conf_pool *cp = &cf->pools[p];
        bool reuseport = rt->px.worker_count > 1 || cp->reuseport;
        for (uint32_t w = 0; w < rt->px.worker_count; w++) {
            if (cp->listen_addr.is_unix && w > 0) {
                rt->fds[w * cf->pool_count + p] = rt->fds[p];
                continue;
            }
            int fd = proxy_listen(cp, reuseport, err, sizeof err);
            if (fd < 0) {
                fprintf(stderr, "chash-proxy: %s\n", err);
                return EXIT_START;
            }
            rt->fds[w * cf->pool_count + p] = fd;
        }
    }
    return 0;
}

static int workers_init(runtime *rt) {
    proxy *px = &rt->px;
    char err[CONF_ERR_MAX];
    if (topology_init(px, err, sizeof err) != 0) {
        fprintf(stderr, "chash-proxy: %s\n", err);
        return EXIT_START;
    }
    for (; rt->inited < px->worker_count; rt->inited++) {
        worker *w = &px->workers[rt->inited];
        if (worker_init(w, px, rt->inited, err, sizeof err) != 0 ||
            worker_listen(w, rt->fds + rt->inited * px->cf->pool_count, err, sizeof err) != 0) {
            fprintf(stderr, "chash-proxy: %s\n", err);
            rt->inited++; /* teardown destroys this one too, as it always did */
            return EXIT_START;
        }
    }
    return 0;
}

/* -d and -p. */
static int detach(const options *o) {
    if (o->is_daemon && daemon(1, o->log_path ? 0 : 1) != 0) {
        fprintf(stderr, "chash-proxy: daemonize: %s\n", strerror(errno));
        return EXIT_START;
    }
    if (o->pid_path) {
        FILE *f = fopen(o->pid_path, "w");
        if (!f) {
            fprintf(stderr, "chash-proxy: pid file %s: %s\n", o->pid_path, strerror(errno));
            return EXIT_START;
        }
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
    }
    return 0;
}

static void signals_install(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction hup = {0};
    hup.sa_handler = on_hangup;
    sigemptyset(&hup.sa_mask);
    sigaction(SIGHUP, &hup, NULL);
}

/* The topology thread (Sentinel, replicas), the reload thread, then the
 * stats thread (-s 0: none). */
static int threads_start(runtime *rt, const options *o) {
    char err[CONF_ERR_MAX];
    if (topology_start(&rt->px, err, sizeof err) != 0 ||
        fleet_start(&rt->px, err, sizeof err) != 0 ||
        reload_start(&rt->px, err, sizeof err) != 0) {
        fprintf(stderr, "chash-proxy: %s\n", err);
        return EXIT_START;
    }
    signal(SIGPIPE, SIG_IGN);
    char *token = NULL;
    if (o->stats_token_file &&
        !(token = secret_read_file("--stats-token-file", o->stats_token_file, err, sizeof err))) {
        fprintf(stderr, "chash-proxy: %s\n", err);
        return EXIT_START;
    }
    if (token && !token[0]) {
        fprintf(stderr, "chash-proxy: --stats-token-file %s: the token is empty\n",
                o->stats_token_file);
        secret_free(token);
        return EXIT_START;
    }
    /* stats_start takes the token over, also when it fails. */
    if (o->stats_port > 0 &&
        stats_start(&rt->px, o->stats_addr, (int)o->stats_port, token, err, sizeof err) != 0) {
        fprintf(stderr, "chash-proxy: %s\n", err);
        return EXIT_START;
    }
    if (o->stats_port <= 0) secret_free(token);
    return 0;
}

/* Step 2c: everything the proxy runs with, in an order where at the first
 * failure teardown finds all it needs. 0 or EXIT_START. */
static int setup(runtime *rt, conf *cf, struct fleet *fleet, const options *o) {
    int rc = runtime_init(rt, cf, fleet, o);
    if (rc == 0) rc = listeners_open(rt);
    if (rc == 0) rc = workers_init(rt);
    if (rc == 0) rc = detach(o);
    if (rc == 0) {
        signals_install();
        rc = threads_start(rt, o);
    }
    return rc;
}

static void *worker_thread(void *arg) {
    worker_run(arg);
    return NULL;
}

/* Step 3: worker 0 on this thread, the others on their own, until a signal
 * stops or drains them. */
static int run(runtime *rt) {
    proxy *px = &rt->px;
    const conf *cf = px->cf;
    for (size_t p = 0; p < cf->pool_count; p++)
        proxy_log(LOG_INFO, "pool %s: %s on %s, %zu servers, %s, %u workers (%s)",
                  cf->pools[p].name, cf->pools[p].redis ? "redis" : "memcached",
                  cf->pools[p].listen, cf->pools[p].server_count, conf_dist_name(&cf->pools[p]),
                  px->worker_count, loop_name(px->workers[0].loop));
    /* Signals go to the main thread only: the others block them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    uint32_t started;
    for (started = 1; started < px->worker_count; started++)
        if (pthread_create(&px->workers[started].thread, NULL, worker_thread,
                           &px->workers[started]) != 0) {
            fprintf(stderr, "chash-proxy: cannot start worker %u\n", started);
            proxy_stop = 1;
            break;
        }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!proxy_stop) worker_run(&px->workers[0]);
    /* Draining: the other workers finish their own clients (or their
     * deadline) and return by themselves. */
    if (!proxy_drain) proxy_stop = 1;
    for (uint32_t w = 1; w < started; w++) pthread_join(px->workers[w].thread, NULL);
    return 0;
}

/* Closes the listeners (a unix socket's once, and removes its file). */
static void listeners_close(runtime *rt) {
    const conf *cf = rt->px.cf;
    if (!rt->fds) return;
    for (size_t p = 0; p < cf->pool_count; p++) {
        bool is_unix = cf->pools[p].listen_addr.is_unix;
        for (uint32_t w = 0; w < rt->px.worker_count; w++) {
            int fd = rt->fds[w * cf->pool_count + p];
            if (fd >= 0 && !(is_unix && w > 0)) close(fd);
        }
        if (is_unix && rt->fds[p] >= 0)
            unlink(((const struct sockaddr_un *)&cf->pools[p].listen_addr.sa)->sun_path);
    }
}

/* Step 4: undoes what setup did, however far it got; rc is main's status
 * (the pid file goes only after a clean run). */
static void teardown(runtime *rt, const options *o, int rc) {
    proxy *px = &rt->px;
    proxy_stop = 1;
    stats_stop(px);
    reload_stop(px);
    topology_stop(px);
    fleet_stop(px); /* before the workers: it wakes them */
    for (uint32_t w = 0; w < rt->inited; w++) worker_destroy(&px->workers[w]);
    listeners_close(rt);
    if (o->pid_path && rc == 0) unlink(o->pid_path);
    free(rt->fds);
    free(px->workers);
    free((void *)px->pool_clients);
    conf_free(px->cf);
    while (px->old_confs) {
        conf_list *next = px->old_confs->next;
        conf_free(px->old_confs->cf);
        free(px->old_confs);
        px->old_confs = next;
    }
    pthread_mutex_destroy(&px->lock);
    pthread_mutex_destroy(&px->accept_lock);
}

int main(int argc, char **argv) {
    options o;
    int rc = options_parse(argc, argv, &o);
    if (rc != GO_ON) return rc;
    conf *cf = NULL;
    struct fleet *fleet = NULL;
    rc = config_load(&o, &cf, &fleet);
    if (rc != GO_ON) {
        if (fleet) fleet_close(fleet);
        return rc;
    }
    if (log_setup(&o) != GO_ON) {
        conf_free(cf);
        fleet_close(fleet);
        return EXIT_START;
    }
    runtime rt = {0};
    rc = setup(&rt, cf, fleet, &o);
    if (rc == 0) rc = run(&rt);
    teardown(&rt, &o, rc);
    return rc;
}
