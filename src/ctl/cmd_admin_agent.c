/*
 * `anchorctl agent list|show|ban|unban` and `anchorctl bundle show`: the
 * attested agents and the trust bundle of a running server, through its
 * admin API. An agent is named by its SPIFFE ID, or by its path alone
 * ("/agents/x509pop/..."), which the server reads in its trust domain.
 * Everything printed that came from the server (IDs, attribute values taken
 * from certificates) goes through ctl_put_line, so that it cannot forge
 * lines or drive the terminal.
 */
#include "cmd_admin.h"
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Agents asked for per ListAgents call; `agent list` pages through all. */
#define LIST_PAGE 500

static const char agent_usage[] = "usage: anchorctl agent list\n"
                                  "       anchorctl agent show SPIFFE-ID\n"
                                  "       anchorctl agent ban SPIFFE-ID\n"
                                  "       anchorctl agent unban SPIFFE-ID\n"
                                  "       (each also takes --admin-socket PATH)\n";

static const char bundle_usage[] =
    "usage: anchorctl bundle show [--format pem|jwks] [--admin-socket PATH]\n";

void ctl_agent_help(FILE *stream)
{
    (void)fputs("anchorctl agent: the agents a running server attested\n\n", stream);
    (void)fputs(agent_usage, stream);
    (void)fputs("\n"
                "agent list     one line per agent: SPIFFE ID, attestors, last seen, SVID expiry,\n"
                "               banned\n"
                "agent show     everything recorded of one agent, attributes included\n"
                "agent ban      refuse the agent at its next login and renewal\n"
                "agent unban    lift the ban\n"
                "\n"
                "SPIFFE-ID may be the path alone (/agents/x509pop/...), read in the server's\n"
                "trust domain. The admin socket is --admin-socket PATH, else $" CTL_ADMIN_SOCKET_ENV
                ",\nelse " CTL_ADMIN_DEFAULT_SOCKET
                ". Errors are the server's messages, exit status 1.\n",
                stream);
}

void ctl_bundle_help(FILE *stream)
{
    (void)fputs("anchorctl bundle: the trust bundle of a running server\n\n", stream);
    (void)fputs(bundle_usage, stream);
    (void)fputs("\n"
                "Prints the trust domain's root certificates as PEM (the default), or the\n"
                "SPIFFE bundle (a JWK Set) with --format jwks.\n",
                stream);
}

static int usage_error(const char *usage, const char *msg)
{
    ctl_error("%s", msg);
    (void)fputs(usage, stderr);
    return CTL_EXIT_USAGE;
}

/* An attribute as the server logs it: x509pop:<name>="<value>", with " and \
 * escaped. Names of other attestors are printed as they are. */
static void put_attr(const char *name, const char *value)
{
    size_t n = strlen(name) + 2 * strlen(value) + 32;
    char *line = malloc(n);
    size_t k = 0;

    if (line == NULL)
        return;
    k += (size_t)snprintf(line, n, "  %s%s=\"",
                          strncmp(name, "x509_pop.", 9) == 0 ? "x509pop:" : "", name);
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            line[k++] = '\\';
        line[k++] = *p;
    }
    line[k++] = '"';
    line[k] = '\0';
    ctl_put_line(stdout, line);
    free(line);
}

static void join_types(char *buf, size_t size, const Anchor__Admin__V1__Agent *a)
{
    size_t k = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < a->n_attestor_types && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%s", i > 0 ? "," : "", a->attestor_types[i]);
    if (a->n_attestor_types == 0)
        (void)snprintf(buf, size, "-");
}

static void show_agent(const Anchor__Admin__V1__Agent *a)
{
    char line[4096], t[32], types[256];

    join_types(types, sizeof(types), a);
    (void)snprintf(line, sizeof(line), "SPIFFE ID:     %s", a->spiffe_id);
    ctl_put_line(stdout, line);
    (void)snprintf(line, sizeof(line), "Attestors:     %s", types);
    ctl_put_line(stdout, line);
    (void)printf("Banned:        %s\n", a->banned ? "yes" : "no");
    ctl_admin_time(t, sizeof(t), a->first_seen);
    (void)printf("First seen:    %s\n", t);
    ctl_admin_time(t, sizeof(t), a->last_seen);
    (void)printf("Last seen:     %s\n", t);
    (void)snprintf(line, sizeof(line), "SVID serial:   %s",
                   a->svid_serial[0] != '\0' ? a->svid_serial : "-");
    ctl_put_line(stdout, line);
    ctl_admin_time(t, sizeof(t), a->svid_expires_at);
    (void)printf("SVID expires:  %s\n", t);
    (void)printf("Attributes:%s\n", a->n_attributes == 0 ? "    -" : "");
    for (size_t i = 0; i < a->n_attributes; i++)
        put_attr(a->attributes[i]->name, a->attributes[i]->value);
}

static int cmd_list(int argc, char **argv)
{
    struct ctl_flag flags[] = {{"--admin-socket", "PATH", NULL, 0}};
    size_t npos = 0;
    int help = 0, rc = CTL_EXIT_OK;
    char msg[512], seen[32], exp[32], types[256];
    char *after = NULL;

    if (ctl_parse_args(argc, argv, flags, 1, NULL, 0, &npos, &help, msg, sizeof(msg)) != 0)
        return usage_error(agent_usage, msg);
    if (help) {
        ctl_agent_help(stdout);
        return CTL_EXIT_OK;
    }
    (void)printf("%-60s %-10s %-21s %-21s %s\n", "SPIFFE ID", "ATTESTORS", "LAST SEEN",
                 "SVID EXPIRES", "BANNED");
    do {
        Anchor__Admin__V1__ListAgentsRequest req = ANCHOR__ADMIN__V1__LIST_AGENTS_REQUEST__INIT;
        Anchor__Admin__V1__ListAgentsResponse *resp;
        uint8_t *out = NULL;
        size_t out_len = 0;

        if (after != NULL)
            req.after = after;
        req.limit = LIST_PAGE;
        rc = ctl_admin_call(ctl_admin_socket(flags[0].value), "ListAgents", &req.base, &out,
                            &out_len);
        free(after);
        after = NULL;
        if (rc != CTL_EXIT_OK)
            break;
        resp = anchor__admin__v1__list_agents_response__unpack(NULL, out_len, out);
        free(out);
        if (resp == NULL) {
            ctl_error("ListAgents: malformed response");
            rc = CTL_EXIT_FAIL;
            break;
        }
        for (size_t i = 0; i < resp->n_agents; i++) {
            const Anchor__Admin__V1__Agent *a = resp->agents[i];

            join_types(types, sizeof(types), a);
            ctl_admin_time(seen, sizeof(seen), a->last_seen);
            ctl_admin_time(exp, sizeof(exp), a->svid_expires_at);
            (void)snprintf(msg, sizeof(msg), "%-60s %-10s %-21s %-21s %s", a->spiffe_id, types,
                           seen, exp, a->banned ? "yes" : "no");
            ctl_put_line(stdout, msg);
        }
        if (resp->next_after[0] != '\0' && resp->n_agents > 0)
            after = strdup(resp->next_after);
        anchor__admin__v1__list_agents_response__free_unpacked(resp, NULL);
    } while (after != NULL);
    if (fflush(stdout) != 0)
        rc = CTL_EXIT_FAIL;
    return rc;
}

/* show, ban and unban: one SPIFFE ID, one call, the agent printed back. */
static int cmd_one(const char *cmd, const char *method, int argc, char **argv)
{
    struct ctl_flag flags[] = {{"--admin-socket", "PATH", NULL, 0}};
    const char *pos[1];
    size_t npos = 0;
    int help = 0, rc;
    char msg[512];
    uint8_t *out = NULL;
    size_t out_len = 0;
    /* The three requests have the same one field, so the same bytes. */
    Anchor__Admin__V1__GetAgentRequest req = ANCHOR__ADMIN__V1__GET_AGENT_REQUEST__INIT;
    Anchor__Admin__V1__Agent *a;

    if (ctl_parse_args(argc, argv, flags, 1, pos, 1, &npos, &help, msg, sizeof(msg)) != 0)
        return usage_error(agent_usage, msg);
    if (help) {
        ctl_agent_help(stdout);
        return CTL_EXIT_OK;
    }
    if (npos != 1) {
        (void)snprintf(msg, sizeof(msg), "agent %s: missing SPIFFE-ID", cmd);
        return usage_error(agent_usage, msg);
    }
    req.spiffe_id = (char *)pos[0];
    rc = ctl_admin_call(ctl_admin_socket(flags[0].value), method, &req.base, &out, &out_len);
    if (rc != CTL_EXIT_OK)
        return rc;
    a = anchor__admin__v1__agent__unpack(NULL, out_len, out);
    free(out);
    if (a == NULL) {
        ctl_error("%s: malformed response", method);
        return CTL_EXIT_FAIL;
    }
    if (strcmp(cmd, "show") == 0) {
        show_agent(a);
    } else {
        (void)snprintf(msg, sizeof(msg), "agent %s %s", a->spiffe_id,
                       a->banned ? "banned" : "unbanned");
        ctl_put_line(stdout, msg);
    }
    anchor__admin__v1__agent__free_unpacked(a, NULL);
    return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

int ctl_agent_main(int argc, char **argv)
{
    char msg[256];

    if (argc == 0)
        return usage_error(agent_usage, "agent: missing command (list, show, ban, unban)");
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0 ||
        strcmp(argv[0], "help") == 0) {
        ctl_agent_help(stdout);
        return CTL_EXIT_OK;
    }
    if (strcmp(argv[0], "list") == 0)
        return cmd_list(argc - 1, argv + 1);
    if (strcmp(argv[0], "show") == 0)
        return cmd_one("show", "GetAgent", argc - 1, argv + 1);
    if (strcmp(argv[0], "ban") == 0)
        return cmd_one("ban", "BanAgent", argc - 1, argv + 1);
    if (strcmp(argv[0], "unban") == 0)
        return cmd_one("unban", "UnbanAgent", argc - 1, argv + 1);
    (void)snprintf(msg, sizeof(msg), "agent: unknown command \"%.64s\"", argv[0]);
    return usage_error(agent_usage, msg);
}

static int cmd_bundle_show(int argc, char **argv)
{
    struct ctl_flag flags[] = {{"--format", "pem|jwks", NULL, 0},
                               {"--admin-socket", "PATH", NULL, 0}};
    size_t npos = 0;
    int help = 0, rc, jwks = 0;
    char msg[512];
    uint8_t *out = NULL;
    size_t out_len = 0;
    Anchor__Admin__V1__GetBundleRequest req = ANCHOR__ADMIN__V1__GET_BUNDLE_REQUEST__INIT;
    Anchor__Admin__V1__GetBundleResponse *resp;
    const char *text;

    if (ctl_parse_args(argc, argv, flags, 2, NULL, 0, &npos, &help, msg, sizeof(msg)) != 0)
        return usage_error(bundle_usage, msg);
    if (help) {
        ctl_bundle_help(stdout);
        return CTL_EXIT_OK;
    }
    if (flags[0].seen) {
        if (strcmp(flags[0].value, "jwks") == 0) {
            jwks = 1;
        } else if (strcmp(flags[0].value, "pem") != 0) {
            (void)snprintf(msg, sizeof(msg), "--format must be pem or jwks (got \"%.64s\")",
                           flags[0].value);
            return usage_error(bundle_usage, msg);
        }
    }
    rc = ctl_admin_call(ctl_admin_socket(flags[1].value), "GetBundle", &req.base, &out, &out_len);
    if (rc != CTL_EXIT_OK)
        return rc;
    resp = anchor__admin__v1__get_bundle_response__unpack(NULL, out_len, out);
    free(out);
    if (resp == NULL) {
        ctl_error("GetBundle: malformed response");
        return CTL_EXIT_FAIL;
    }
    /* PEM and JSON the server encoded: printable text and newlines only. */
    text = jwks ? resp->jwks : resp->pem;
    (void)fputs(text, stdout);
    if (text[0] == '\0' || text[strlen(text) - 1] != '\n')
        (void)putchar('\n');
    anchor__admin__v1__get_bundle_response__free_unpacked(resp, NULL);
    return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

int ctl_bundle_main(int argc, char **argv)
{
    char msg[256];

    if (argc == 0)
        return usage_error(bundle_usage, "bundle: missing command (show)");
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0 ||
        strcmp(argv[0], "help") == 0) {
        ctl_bundle_help(stdout);
        return CTL_EXIT_OK;
    }
    if (strcmp(argv[0], "show") == 0)
        return cmd_bundle_show(argc - 1, argv + 1);
    (void)snprintf(msg, sizeof(msg), "bundle: unknown command \"%.64s\"", argv[0]);
    return usage_error(bundle_usage, msg);
}
