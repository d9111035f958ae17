/*
 * main.c - `chash`: dispatch to a command.
 */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "usage: chash COMMAND [OPTIONS]\n"
    "\n"
    "Consistent hashing: see how keys spread and move, look keys up, measure.\n"
    "\n"
    "commands:\n"
    "  simulate   modulo vs ring: keys moved on a membership change, load balance\n"
    "  lookup     the node (or replica list) of each key\n"
    "  plan       the exact key ranges (and keys) that move between two memberships\n"
    "  ownership  each node's exact share of the key space\n"
    "  bench      lookup speed, build time and memory\n"
    "  fleet      a fleet of chash-proxies on etcd: status, plan, apply, abort\n"
    "\n"
    "'chash COMMAND --help' describes each. 'chash --version' prints the version.\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("chash %s\n", chash_version_string());
        return 0;
    }
    if (strcmp(cmd, "lookup") == 0) return cmd_lookup(argc - 1, argv + 1);
    if (strcmp(cmd, "simulate") == 0) return cmd_simulate(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "plan") == 0) return cmd_plan(argc - 1, argv + 1);
    if (strcmp(cmd, "ownership") == 0) return cmd_ownership(argc - 1, argv + 1);
#ifdef CHASH_HAVE_FLEET
    if (strcmp(cmd, "fleet") == 0) return cmd_fleet(argc - 1, argv + 1);
#else
    if (strcmp(cmd, "fleet") == 0) {
        fputs("chash fleet: built without etcd support (libcurl and jansson)\n", stderr);
        return CLI_EXIT_FAILURE;
    }
#endif
    fprintf(stderr, "chash: unknown command '%s' (see 'chash --help')\n", cmd);
    return CLI_EXIT_USAGE;
}
