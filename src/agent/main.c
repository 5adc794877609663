/*
 * anchor-agent: reads its bootstrap configuration (a file, then flags that
 * override single settings), checks its credentials, and runs the state
 * machine of agent.c on a libevent loop until SIGINT/SIGTERM, or, with
 * --once, until the first login has succeeded (SPIFFE ID on stdout, exit 0)
 * or failed (the server's message on stderr, exit 1).
 *
 * Exit statuses: 0 success or a clean stop, 1 the agent could not start or
 * (--once) the login failed, 2 the command line is wrong.
 */
#include "agent.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

static const char usage[] =
    "usage: anchor-agent --config agent.yaml [--once] [--SETTING VALUE ...]\n"
    "\n"
    "  --config FILE      the agent configuration (docs/agent.md); Linux or Helm form\n"
    "  --once             log in once, write the SVID to data-dir, print its SPIFFE ID\n"
    "                     and exit (0 on success, 1 with the server's message)\n"
    "  --SETTING VALUE    overrides one setting of the file: --trust-domain,\n"
    "                     --server-address, --trust-bundle-path, --data-dir,\n"
    "                     --log-level, --log-format, --metrics-address, --cluster-id,\n"
    "                     --disable-kubernetes-attestation (also --SETTING=VALUE)\n"
    "  -h, --help         this help\n";

struct setting_flag {
    const char *key;
    const char *value;
};

/* Bounded by argc: at most one entry per word. */
struct args {
    const char *config;
    int once;
    struct setting_flag *flags;
    size_t nflags;
};

/* The settings a flag may override (agent_config.h). */
static int is_setting(const char *name)
{
    static const char *const names[] = {
        "trust-domain",    "server-address", "trust-bundle-path",
        "data-dir",        "log-level",      "log-format",
        "metrics-address", "cluster-id",     "disable-kubernetes-attestation",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(names[i], name) == 0)
            return 1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct args *out, int *help)
{
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i];
        const char *eq;
        char name[64];
        const char *value;
        size_t nlen;

        if (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0) {
            *help = 1;
            return 0;
        }
        if (strcmp(w, "--once") == 0) {
            out->once = 1;
            continue;
        }
        if (strncmp(w, "--", 2) != 0 || w[2] == '\0') {
            (void)fprintf(stderr, "anchor-agent: unexpected argument \"%.64s\"\n", w);
            return -1;
        }
        eq = strchr(w, '=');
        nlen = eq != NULL ? (size_t)(eq - w - 2) : strlen(w + 2);
        if (nlen == 0 || nlen >= sizeof(name)) {
            (void)fprintf(stderr, "anchor-agent: unknown flag \"%.64s\"\n", w);
            return -1;
        }
        memcpy(name, w + 2, nlen);
        name[nlen] = '\0';
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            (void)fprintf(stderr, "anchor-agent: --%s needs a value\n", name);
            return -1;
        }
        if (strcmp(name, "config") == 0) {
            if (out->config != NULL) {
                (void)fprintf(stderr, "anchor-agent: --config given twice\n");
                return -1;
            }
            out->config = value;
            continue;
        }
        if (!is_setting(name)) {
            (void)fprintf(stderr, "anchor-agent: unknown flag \"--%s\"\n", name);
            return -1;
        }
        out->flags[out->nflags].value = value;
        out->flags[out->nflags].key = strdup(name);
        if (out->flags[out->nflags].key == NULL) {
            (void)fprintf(stderr, "anchor-agent: out of memory\n");
            return -1;
        }
        out->nflags++;
    }
    return 0;
}

static int load_config(const struct args *args, struct anchor_agent_config **out)
{
    struct anchor_agent_config *cfg = NULL;
    struct anchor_err err;

    anchor_err_clear(&err);
    if (anchor_agent_config_new(&cfg, &err) != 0)
        goto fail;
    if (args->config != NULL && anchor_agent_config_load_file(cfg, args->config, &err) != 0)
        goto fail;
    for (size_t i = 0; i < args->nflags; i++) {
        if (anchor_agent_config_set(cfg, args->flags[i].key, args->flags[i].value, &err) != 0) {
            anchor_err_prefix(&err, "command line");
            goto fail;
        }
    }
    if (anchor_agent_config_finish(cfg, &err) != 0) {
        if (args->config != NULL)
            anchor_err_prefix(&err, args->config);
        goto fail;
    }
    *out = cfg;
    return 0;
fail:
    (void)fprintf(stderr, "anchor-agent: %s\n", anchor_err_msg(&err));
    anchor_agent_config_free(cfg);
    return -1;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct agent *a = arg;

    (void)what;
    ANCHOR_LOGF(a->log, ANCHOR_LOG_INFO, "Stopping", ANCHOR_LOG_STR("signal", strsignal(sig)));
    agent_stop(a);
}

static int run(struct anchor_agent_config *cfg, int once)
{
    struct agent a;
    struct anchor_err err;
    struct event *sigint = NULL;
    struct event *sigterm = NULL;
    int code = 1;

    memset(&a, 0, sizeof(a));
    a.cfg = cfg;
    a.once = once;
    anchor_err_clear(&err);
    if (anchor_log_new_fp(&a.log, stderr, cfg->log_format, cfg->log_level, &err) != 0) {
        (void)fprintf(stderr, "anchor-agent: %s\n", anchor_err_msg(&err));
        return 1;
    }
    a.base = event_base_new();
    if (a.base == NULL) {
        (void)fprintf(stderr, "anchor-agent: cannot create the event loop\n");
        goto out;
    }
    if (agent_init(&a, &err) != 0) {
        (void)fprintf(stderr, "anchor-agent: %s\n", anchor_err_msg(&err));
        goto out;
    }
    sigint = evsignal_new(a.base, SIGINT, on_signal, &a);
    sigterm = evsignal_new(a.base, SIGTERM, on_signal, &a);
    if (sigint == NULL || sigterm == NULL || evsignal_add(sigint, NULL) != 0 ||
        evsignal_add(sigterm, NULL) != 0) {
        (void)fprintf(stderr, "anchor-agent: cannot handle signals\n");
        goto out;
    }
    ANCHOR_LOGF(a.log, ANCHOR_LOG_INFO, "Starting anchor-agent",
                ANCHOR_LOG_STR("trustDomain", cfg->trust_domain),
                ANCHOR_LOG_STR("clusterId", cfg->cluster_id),
                ANCHOR_LOG_STR("serverAddress", cfg->server_address),
                ANCHOR_LOG_STR("dataDir", cfg->data_dir), ANCHOR_LOG_BOOL("once", once));
    agent_start(&a);
    if (event_base_dispatch(a.base) < 0) {
        (void)fprintf(stderr, "anchor-agent: the event loop failed\n");
        goto out;
    }
    code = a.exit_code;
out:
    if (sigint != NULL)
        event_free(sigint);
    if (sigterm != NULL)
        event_free(sigterm);
    agent_cleanup(&a);
    if (a.base != NULL) {
        /* libevent finishes TLS bufferevents lazily (rpc.h). */
        (void)event_base_loop(a.base, EVLOOP_NONBLOCK);
        event_base_free(a.base);
    }
    anchor_log_free(a.log);
    return code;
}

int main(int argc, char **argv)
{
    struct args args;
    struct anchor_agent_config *cfg = NULL;
    int help = 0;
    int code;

    memset(&args, 0, sizeof(args));
    args.flags = calloc((size_t)argc + 1, sizeof(*args.flags));
    if (args.flags == NULL) {
        (void)fprintf(stderr, "anchor-agent: out of memory\n");
        return 1;
    }
    if (parse_args(argc, argv, &args, &help) != 0) {
        (void)fputs(usage, stderr);
        code = EXIT_USAGE;
        goto out;
    }
    if (help) {
        (void)fputs(usage, stdout);
        code = 0;
        goto out;
    }
    if (args.config == NULL && args.nflags == 0) {
        (void)fputs(usage, stderr);
        code = EXIT_USAGE;
        goto out;
    }
    (void)signal(SIGPIPE, SIG_IGN);
    if (load_config(&args, &cfg) != 0) {
        code = 1;
        goto out;
    }
    code = run(cfg, args.once);
out:
    anchor_agent_config_free(cfg);
    for (size_t i = 0; i < args.nflags; i++)
        free((char *)args.flags[i].key);
    free(args.flags);
    return code;
}
