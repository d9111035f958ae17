/*
 * main.c - `chash-proxy`: options, configuration, listeners, workers.
 *
 * The options are nutcracker's (so a nutcracker command line works as is),
 * plus --workers. Exit status: 0 on success (and for -t with a good
 * configuration), 2 for a bad command line or configuration, 1 when the proxy
 * cannot start (a port in use...).
 */
#define _GNU_SOURCE
#include "proxy.h"

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

static const char usage[] =
    "usage: chash-proxy [-c FILE] [-t] [--workers N] [-s PORT] [-a ADDR]\n"
    "                   [-v LEVEL] [-o LOGFILE] [-p PIDFILE] [-d] [-hVD]\n"
    "\n"
    "A Redis and memcached sharding proxy that reads twemproxy (nutcracker)\n"
    "configuration files as they are.\n"
    "\n"
    "options:\n"
    "  -c, --conf-file FILE     configuration (default conf/nutcracker.yml)\n"
    "  -t, --test-conf          check the configuration and exit (0 good, 2 bad)\n"
    "  -n, --workers N          event-loop threads (default: number of CPUs)\n"
    "  -s, --stats-port PORT    stats port, 0 for none (default 22222)\n"
    "  -a, --stats-addr ADDR    stats address (default 127.0.0.1)\n"
    "  -v, --verbose LEVEL      nutcracker log level 0..11 (default 5: warnings)\n"
    "  -o, --output FILE        log file (default stderr)\n"
    "  -p, --pid-file FILE      write the process id to FILE\n"
    "  -d, --daemonize          run in the background\n"
    "  -D, --describe-stats     print what the stats mean and exit\n"
    "  -i, --stats-interval MS  accepted for nutcracker; stats are always current\n"
    "  -m, --mbuf-size N        accepted for nutcracker; buffers grow as needed\n"
    "  -V, --version            print the version and exit\n"
    "  -h, --help               this text\n"
    "\n"
    "Configuration keys and what differs from nutcracker: docs/proxy.md.\n";

/* SIGHUP: re-read the configuration (reload.c). */
static void on_hangup(int sig) {
    (void)sig;
    proxy_reload_requested = 1;
}

/* The first SIGTERM or SIGINT drains, the second stops at once. */
static void on_signal(int sig) {
    (void)sig;
    if (proxy_drain)
        proxy_stop = 1;
    else
        proxy_drain = 1;
}

static int parse_count(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static void *worker_thread(void *arg) {
    worker_run(arg);
    return NULL;
}

int main(int argc, char **argv) {
    static const struct option longs[] = {
        {"conf-file", required_argument, NULL, 'c'}, {"test-conf", no_argument, NULL, 't'},
        {"workers", required_argument, NULL, 'n'},   {"stats-port", required_argument, NULL, 's'},
        {"stats-addr", required_argument, NULL, 'a'}, {"verbose", required_argument, NULL, 'v'},
        {"output", required_argument, NULL, 'o'},    {"pid-file", required_argument, NULL, 'p'},
        {"daemonize", no_argument, NULL, 'd'},       {"describe-stats", no_argument, NULL, 'D'},
        {"stats-interval", required_argument, NULL, 'i'},
        {"mbuf-size", required_argument, NULL, 'm'}, {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    const char *conf_path = "conf/nutcracker.yml";
    const char *stats_addr = "127.0.0.1";
    const char *log_path = NULL, *pid_path = NULL;
    bool test_only = false, daemonize = false;
    long workers = sysconf(_SC_NPROCESSORS_ONLN), stats_port = 22222, verbosity = 5, ignored;
    if (workers < 1) workers = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:tn:s:a:v:o:p:dDi:m:Vh", longs, NULL)) != -1) {
        switch (opt) {
        case 'c': conf_path = optarg; break;
        case 't': test_only = true; break;
        case 'n':
            if (parse_count(optarg, 1, 1024, &workers)) {
                fprintf(stderr, "chash-proxy: --workers: expected 1..1024\n");
                return EXIT_USAGE;
            }
            break;
        case 's':
            if (parse_count(optarg, 0, 65535, &stats_port)) {
                fprintf(stderr, "chash-proxy: --stats-port: expected 0..65535\n");
                return EXIT_USAGE;
            }
            break;
        case 'a': stats_addr = optarg; break;
        case 'v':
            if (parse_count(optarg, 0, 11, &verbosity)) {
                fprintf(stderr, "chash-proxy: --verbose: expected 0..11\n");
                return EXIT_USAGE;
            }
            break;
        case 'o': log_path = optarg; break;
        case 'p': pid_path = optarg; break;
        case 'd': daemonize = true; break;
        case 'D': stats_describe(stdout); return 0;
        case 'i':
        case 'm':
            if (parse_count(optarg, 0, 1L << 30, &ignored)) {
                fprintf(stderr, "chash-proxy: -%c: expected a number\n", opt);
                return EXIT_USAGE;
            }
            break;
        case 'V': printf("chash-proxy %s\n", chash_version_string()); return 0;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "chash-proxy: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    proxy_log_level = verbosity <= 3 ? LOG_ERROR : verbosity <= 5 ? LOG_WARN
                      : verbosity == 6 ? LOG_INFO : LOG_DEBUG;

    char err[CONF_ERR_MAX];
    conf *cf = NULL;
    if (conf_load(conf_path, &cf, err, sizeof err) != 0) {
        fprintf(stderr, "chash-proxy: %s\n", err);
        return EXIT_USAGE;
    }
    if (test_only) {
        printf("chash-proxy: configuration file '%s' syntax is ok\n", conf_path);
        conf_free(cf);
        return 0;
    }
    if (log_path && proxy_log_open(log_path) != 0) {
        fprintf(stderr, "chash-proxy: cannot open log file %s: %s\n", log_path, strerror(errno));
        conf_free(cf);
        return EXIT_START;
    }
#if defined(__GLIBC__)
    /* Large buffers from mmap go back to the system when freed; without a
     * fixed threshold glibc raises it after the first free and keeps them. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
    command_init();

    proxy px = {0};
    px.cf = cf;
    px.conf_path = conf_path;
    pthread_mutex_init(&px.lock, NULL);
    px.stats_fd = -1;
    px.start_time = (uint64_t)time(NULL);
    px.worker_count = (uint32_t)workers;
    px.workers = calloc(px.worker_count, sizeof *px.workers);
    px.pool_clients = calloc(cf->pool_count, sizeof *px.pool_clients);
    int *fds = malloc(px.worker_count * cf->pool_count * sizeof *fds);
    int rc = EXIT_START;
    uint32_t started = 0, inited = 0;
    if (!px.workers || !px.pool_clients || !fds) {
        fprintf(stderr, "chash-proxy: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < px.worker_count * cf->pool_count; i++) fds[i] = -1;
    /* Every listener is bound before anything runs, so a busy port is an
     * error at start, not in a worker. */
    for (size_t p = 0; p < cf->pool_count; p++) {
        const conf_pool *cp = &cf->pools[p];
        bool reuseport = px.worker_count > 1 || cp->reuseport;
        for (uint32_t w = 0; w < px.worker_count; w++) {
            if (cp->listen_addr.is_unix && w > 0) {
                fds[w * cf->pool_count + p] = fds[p];
                continue;
            }
            int fd = proxy_listen(cp, reuseport, err, sizeof err);
            if (fd < 0) {
                fprintf(stderr, "chash-proxy: %s\n", err);
                goto out;
            }
            fds[w * cf->pool_count + p] = fd;
        }
    }
    for (; inited < px.worker_count; inited++) {
        if (worker_init(&px.workers[inited], &px, inited, err, sizeof err) != 0 ||
            worker_listen(&px.workers[inited], fds + inited * cf->pool_count, err,
                          sizeof err) != 0) {
            fprintf(stderr, "chash-proxy: %s\n", err);
            inited++;
            goto out;
        }
    }
    if (daemonize && daemon(1, log_path ? 0 : 1) != 0) {
        fprintf(stderr, "chash-proxy: daemonize: %s\n", strerror(errno));
        goto out;
    }
    if (pid_path) {
        FILE *f = fopen(pid_path, "w");
        if (!f) {
            fprintf(stderr, "chash-proxy: pid file %s: %s\n", pid_path, strerror(errno));
            goto out;
        }
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction hup = {0};
    hup.sa_handler = on_hangup;
    sigemptyset(&hup.sa_mask);
    sigaction(SIGHUP, &hup, NULL);
    if (reload_start(&px, err, sizeof err) != 0) {
        fprintf(stderr, "chash-proxy: %s\n", err);
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    if (stats_port > 0 && stats_start(&px, stats_addr, (int)stats_port, err, sizeof err) != 0) {
        fprintf(stderr, "chash-proxy: %s\n", err);
        goto out;
    }
    for (size_t p = 0; p < cf->pool_count; p++)
        proxy_log(LOG_INFO, "pool %s: %s on %s, %zu servers, %s, %u workers", cf->pools[p].name,
                  cf->pools[p].redis ? "redis" : "memcached", cf->pools[p].listen,
                  cf->pools[p].server_count, conf_dist_name(&cf->pools[p]), px.worker_count);
    /* Signals go to the main thread only: the others block them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (started = 1; started < px.worker_count; started++)
        if (pthread_create(&px.workers[started].thread, NULL, worker_thread,
                           &px.workers[started]) != 0) {
            fprintf(stderr, "chash-proxy: cannot start worker %u\n", started);
            proxy_stop = 1;
            break;
        }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!proxy_stop) worker_run(&px.workers[0]);
    /* Draining: the other workers finish their own clients (or their
     * deadline) and return by themselves. */
    if (!proxy_drain) proxy_stop = 1;
    for (uint32_t w = 1; w < started; w++) pthread_join(px.workers[w].thread, NULL);
    rc = 0;
out:
    proxy_stop = 1;
    stats_stop(&px);
    reload_stop(&px);
    for (uint32_t w = 0; w < inited; w++) worker_destroy(&px.workers[w]);
    if (fds) {
        for (size_t p = 0; p < cf->pool_count; p++) {
            for (uint32_t w = 0; w < px.worker_count; w++) {
                int fd = fds[w * cf->pool_count + p];
                if (fd >= 0 && !(cf->pools[p].listen_addr.is_unix && w > 0)) close(fd);
            }
            if (cf->pools[p].listen_addr.is_unix && fds[p] >= 0)
                unlink(((const struct sockaddr_un *)&cf->pools[p].listen_addr.sa)->sun_path);
        }
    }
    if (pid_path && rc == 0) unlink(pid_path);
    free(fds);
    free(px.workers);
    free((void *)px.pool_clients);
    conf_free(px.cf);
    while (px.old_confs) {
        conf_list *next = px.old_confs->next;
        conf_free(px.old_confs->cf);
        free(px.old_confs);
        px.old_confs = next;
    }
    pthread_mutex_destroy(&px.lock);
    return rc;
}
