/*
 * anchorctl, the operator's command: dispatches on the command group (the
 * first word) to the group's file. Exit statuses: 0 success, 1 a check or
 * validation failed (message on stderr), 2 the command line is wrong.
 */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: anchorctl <command> [arguments]\n"
    "\n"
    "Commands:\n"
    "  x509pop check   run the server's x509pop verification on certificate files\n"
    "  config validate validate an AgentAttestation v1 policy document\n"
    "  config set|get|history  managed config on a running server (admin API)\n"
    "  agent list|show|ban|unban  the agents a running server attested\n"
    "  bundle show     the trust bundle of a running server\n"
    "  help [GROUP]    show this help, or a group's (x509pop, config, agent, bundle)\n"
    "\n"
    "Run 'anchorctl help x509pop' or 'anchorctl help config' for details.\n"
    "Exit status: 0 success, 1 check or validation failed, 2 usage error.\n";

struct group {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *stream);
};

static const struct group groups[] = {
    {"x509pop", ctl_x509pop_main, ctl_x509pop_help},
    {"config", ctl_admin_config_main, ctl_admin_config_help},
    {"agent", ctl_agent_main, ctl_agent_help},
    {"bundle", ctl_bundle_main, ctl_bundle_help},
};

static const struct group *find_group(const char *name)
{
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        if (strcmp(groups[i].name, name) == 0)
            return &groups[i];
    }
    return NULL;
}

static int help(int argc, char **argv)
{
    const struct group *g;

    if (argc == 0) {
        fputs(usage, stdout);
        return CTL_EXIT_OK;
    }
    /* "help x509pop check" shows the group's page, which covers its commands. */
    g = find_group(argv[0]);
    if (g == NULL || argc > 2) {
        ctl_error("help: unknown topic \"%.64s\"", argv[0]);
        fputs(usage, stderr);
        return CTL_EXIT_USAGE;
    }
    g->help(stdout);
    return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
    const struct group *g;

    if (argc < 2) {
        fputs(usage, stderr);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return help(0, NULL);
    if (strcmp(argv[1], "help") == 0)
        return help(argc - 2, argv + 2);
    g = find_group(argv[1]);
    if (g == NULL) {
        ctl_error("unknown command \"%.64s\"", argv[1]);
        fputs(usage, stderr);
        return CTL_EXIT_USAGE;
    }
    return g->run(argc - 2, argv + 2);
}
