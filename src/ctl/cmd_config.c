/*
 * `anchorctl config`: managed configuration documents. `config validate FILE`
 * runs exactly the loader the Trust Domain Server runs when a document is
 * applied (anchor_policy_doc_parse, including parsing every caCerts into a
 * trust store), so a document that passes here is one the server accepts.
 */
#include "ctl.h"

#include "anchor/policy.h"

#include <stdio.h>
#include <string.h>

static const char validate_usage[] = "usage: anchorctl config validate FILE\n";

void ctl_config_help(FILE *stream)
{
    fputs("anchorctl config: managed configuration documents\n\n", stream);
    fputs(validate_usage, stream);
    fputs("\n"
          "Validates FILE, an AgentAttestation v1 policy document, exactly as the\n"
          "Trust Domain Server does before storing it (docs/configuration.md).\n"
          "Prints \"FILE: valid (AgentAttestation v1, N policies)\" and exits 0, or\n"
          "prints the first problem found on stderr and exits 1, e.g.\n"
          "  anchorctl: policy.yaml: policy \"x509pop_policy\": caCerts is required\n"
          "A wrong command line exits 2.\n",
          stream);
}

static int usage_error(const char *msg)
{
    ctl_error("%s", msg);
    fputs(validate_usage, stderr);
    return CTL_EXIT_USAGE;
}

static int cmd_validate(int argc, char **argv)
{
    const char *pos[1];
    size_t npos = 0, n;
    int help = 0;
    char msg[512];
    struct anchor_err err;
    struct anchor_policy_doc *doc = NULL;

    if (ctl_parse_args(argc, argv, NULL, 0, pos, 1, &npos, &help, msg, sizeof(msg)) != 0)
        return usage_error(msg);
    if (help) {
        ctl_config_help(stdout);
        return CTL_EXIT_OK;
    }
    if (npos != 1)
        return usage_error("config validate: missing FILE");
    anchor_err_clear(&err);
    if (anchor_policy_doc_parse_file(&doc, pos[0], &err) != 0) {
        ctl_error("%s", anchor_err_msg(&err));
        return CTL_EXIT_FAIL;
    }
    n = anchor_policy_doc_count(doc);
    anchor_policy_doc_free(doc);
    printf("%s: valid (%s %s, %zu %s)\n", pos[0], ANCHOR_POLICY_SECTION, ANCHOR_POLICY_SCHEMA, n,
           n == 1 ? "policy" : "policies");
    return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

int ctl_config_main(int argc, char **argv)
{
    char msg[256];

    if (argc == 0)
        return usage_error("config: missing command (set, get, history, validate)");
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0 ||
        strcmp(argv[0], "help") == 0) {
        ctl_config_help(stdout);
        return CTL_EXIT_OK;
    }
    if (strcmp(argv[0], "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    (void)snprintf(msg, sizeof(msg), "config: unknown command \"%.64s\"", argv[0]);
    return usage_error(msg);
}
