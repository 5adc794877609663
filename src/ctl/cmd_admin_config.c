/*
 * `anchorctl config set|get|history`: managed configuration on a running
 * server, through its admin API. `config validate` and the group's other
 * offline commands stay in cmd_config.c; ctl_admin_config_main takes the
 * `config` group first and hands every other command to ctl_config_main.
 *
 * The server validates what is set (with the loader `config validate`
 * runs) and its messages are printed as they are, with exit status 1.
 */
#include "cmd_admin.h"
#include "ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest document read from FILE: the server's limit (1 MiB). */
#define DOC_MAX_BYTES (1024 * 1024)

static const char admin_config_usage[] =
    "usage: anchorctl config set cluster --id CLUSTER-ID FILE\n"
    "       anchorctl config get cluster --id CLUSTER-ID [--section SECTION] [--version N]\n"
    "       anchorctl config history [cluster] --id CLUSTER-ID [--section SECTION] [--limit N]\n"
    "       (each also takes --admin-socket PATH)\n";

void ctl_admin_config_help(FILE *stream)
{
    ctl_config_help(stream);
    (void)fputs("\nOn a running server (its admin API):\n\n", stream);
    (void)fputs(admin_config_usage, stream);
    (void)fputs("\n"
                "config set     validates FILE (- for stdin) on the server and stores it as the\n"
                "               next version of its section; every server of the cluster\n"
                "               applies it without a restart. Prints the version stored.\n"
                "config get     prints the latest document of each section (or of SECTION, or\n"
                "               version N), each after a '# ...' comment line naming it.\n"
                "config history lists the stored versions, newest first.\n"
                "\n"
                "The admin socket is --admin-socket PATH, else $" CTL_ADMIN_SOCKET_ENV ",\n"
                "else " CTL_ADMIN_DEFAULT_SOCKET ".\n"
                "Errors are the server's messages, on stderr, with exit status 1.\n",
                stream);
}

static int usage_error(const char *msg)
{
    ctl_error("%s", msg);
    (void)fputs(admin_config_usage, stderr);
    return CTL_EXIT_USAGE;
}

/* Reads FILE ("-": stdin) into a new NUL-terminated string. */
static char *read_doc(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;

    if (f == NULL) {
        ctl_error("cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(DOC_MAX_BYTES + 2);
    if (buf == NULL) {
        ctl_error("out of memory");
        goto out;
    }
    n = fread(buf, 1, DOC_MAX_BYTES + 1, f);
    if (ferror(f)) {
        ctl_error("cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    if (n > (size_t)DOC_MAX_BYTES) {
        ctl_error("%s: document too large (more than %d bytes)", path, DOC_MAX_BYTES);
        goto fail;
    }
    /* The document travels as a protobuf string: a NUL byte would cut it. */
    if (memchr(buf, '\0', n) != NULL) {
        ctl_error("%s: the document contains a NUL byte", path);
        goto fail;
    }
    buf[n] = '\0';
    goto out;
fail:
    free(buf);
    buf = NULL;
out:
    if (f != stdin)
        (void)fclose(f);
    return buf;
}

/* Strict decimal in 1..max. */
static int parse_count(const char *s, long long max, long long *out)
{
    char *end;
    long long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Checks the optional scope word ("cluster"): pos[0..npos) may start with it. */
static int take_scope(const char **pos, size_t *npos, size_t *first, const char *cmd,
                      size_t want_after)
{
    char msg[256];

    *first = 0;
    if (*npos > want_after) {
        if (strcmp(pos[0], "cluster") != 0) {
            (void)snprintf(msg, sizeof(msg), "config %s: unknown scope \"%.64s\" (only cluster)",
                           cmd, pos[0]);
            return usage_error(msg);
        }
        *first = 1;
    }
    return 0;
}

static int cmd_set(int argc, char **argv)
{
    struct ctl_flag flags[] = {{"--id", "CLUSTER-ID", NULL, 0},
                               {"--admin-socket", "PATH", NULL, 0}};
    const char *pos[2];
    size_t npos = 0, first;
    int help = 0, rc;
    char msg[512];
    char *text;
    uint8_t *out = NULL;
    size_t out_len = 0;
    Anchor__Admin__V1__SetConfigRequest req = ANCHOR__ADMIN__V1__SET_CONFIG_REQUEST__INIT;
    Anchor__Admin__V1__SetConfigResponse *resp;

    if (ctl_parse_args(argc, argv, flags, 2, pos, 2, &npos, &help, msg, sizeof(msg)) != 0)
        return usage_error(msg);
    if (help) {
        ctl_admin_config_help(stdout);
        return CTL_EXIT_OK;
    }
    if ((rc = take_scope(pos, &npos, &first, "set", 1)) != 0)
        return rc;
    if (npos - first != 1 || (first == 0 && strcmp(pos[0], "cluster") == 0))
        return usage_error("config set: missing FILE");
    if (!flags[0].seen)
        return usage_error("config set: --id CLUSTER-ID is required");
    text = read_doc(pos[first]);
    if (text == NULL)
        return CTL_EXIT_FAIL;
    req.cluster_id = (char *)flags[0].value;
    req.document = text;
    rc = ctl_admin_call(ctl_admin_socket(flags[1].value), "SetConfig", &req.base, &out, &out_len);
    free(text);
    if (rc != CTL_EXIT_OK)
        return rc;
    resp = anchor__admin__v1__set_config_response__unpack(NULL, out_len, out);
    free(out);
    if (resp == NULL) {
        ctl_error("SetConfig: malformed response");
        return CTL_EXIT_FAIL;
    }
    (void)snprintf(msg, sizeof(msg), "cluster %s: %s version %lld stored (revision %lld)",
                   resp->cluster_id, resp->section, (long long)resp->version,
                   (long long)resp->revision);
    ctl_put_line(stdout, msg);
    anchor__admin__v1__set_config_response__free_unpacked(resp, NULL);
    return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

/* Writes a stored document: control characters other than newline and tab
 * (which a validated YAML document cannot hold anyway) as \xNN. */
static void put_text(const char *s)
{
    size_t n = strlen(s);

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            (void)printf("\\x%02x", c);
        else
            (void)putchar(c);
    }
    if (n == 0 || s[n - 1] != '\n')
        (void)putchar('\n');
}

/* What the comment line says of an AgentAttestation document: whether the
 * server runs this version. */
static const char *in_force(const Anchor__Admin__V1__GetConfigResponse *resp,
                            const Anchor__Admin__V1__ConfigDocument *d)
{
    static char buf[96];

    if (strcmp(d->section, "AgentAttestation") != 0)
        return "";
    if (resp->active_agent_attestation_version == d->version)
        return " (in force)";
    if (resp->active_agent_attestation_version == 0)
        return " (not in force: the server runs no AgentAttestation document)";
    (void)snprintf(buf, sizeof(buf), " (not in force: the server runs version %lld)",
                   (long long)resp->active_agent_attestation_version);
    return buf;
}

static int cmd_get(int argc, char **argv)
{
    struct ctl_flag flags[] = {{"--id", "CLUSTER-ID", NULL, 0},
                               {"--section", "SECTION", NULL, 0},
                               {"--version", "N", NULL, 0},
                               {"--admin-socket", "PATH", NULL, 0}};
    const char *pos[1];
    size_t npos = 0, first;
    int help = 0, rc;
    char msg[512], at[32];
    long long version = 0;
    uint8_t *out = NULL;
    size_t out_len = 0;
    Anchor__Admin__V1__GetConfigRequest req = ANCHOR__ADMIN__V1__GET_CONFIG_REQUEST__INIT;
    Anchor__Admin__V1__GetConfigResponse *resp;

    if (ctl_parse_args(argc, argv, flags, 4, pos, 1, &npos, &help, msg, sizeof(msg)) != 0)
        return usage_error(msg);
    if (help) {
        ctl_admin_config_help(stdout);
        return CTL_EXIT_OK;
    }
    if ((rc = take_scope(pos, &npos, &first, "get", 0)) != 0)
        return rc;
    if (!flags[0].seen)
        return usage_error("config get: --id CLUSTER-ID is required");
    if (flags[2].seen && parse_count(flags[2].value, INT64_MAX, &version) != 0) {
        (void)snprintf(msg, sizeof(msg), "--version must be a number of at least 1 (got \"%.64s\")",
                       flags[2].value);
        return usage_error(msg);
    }
    req.cluster_id = (char *)flags[0].value;
    if (flags[1].seen)
        req.section = (char *)flags[1].value;
    req.version = version;
    rc = ctl_admin_call(ctl_admin_socket(flags[3].value), "GetConfig", &req.base, &out, &out_len);
    if (rc != CTL_EXIT_OK)
        return rc;
    resp = anchor__admin__v1__get_config_response__unpack(NULL, out_len, out);
    free(out);
    if (resp == NULL) {
        ctl_error("GetConfig: malformed response");
        return CTL_EXIT_FAIL;
    }
    for (size_t i = 0; i < resp->n_documents; i++) {
        const Anchor__Admin__V1__ConfigDocument *d = resp->documents[i];

        if (i > 0)
            (void)fputs("---\n", stdout);
        ctl_admin_time(at, sizeof(at), d->set_at);
        (void)snprintf(msg, sizeof(msg),
                       "# cluster %s, section %s, version %lld, set by %s at %s%s", d->cluster_id,
                       d->section, (long long)d->version, d->set_by, at, in_force(resp, d));
        ctl_put_line(stdout, msg);
        put_text(d->text);
    }
    anchor__admin__v1__get_config_response__free_unpacked(resp, NULL);
    return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

static int cmd_history(int argc, char **argv)
{
    struct ctl_flag flags[] = {{"--id", "CLUSTER-ID", NULL, 0},
                               {"--section", "SECTION", NULL, 0},
                               {"--limit", "N", NULL, 0},
                               {"--admin-socket", "PATH", NULL, 0}};
    const char *pos[1];
    size_t npos = 0, first;
    int help = 0, rc;
    char msg[512], at[32];
    long long limit = 0;
    uint8_t *out = NULL;
    size_t out_len = 0;
    Anchor__Admin__V1__ConfigHistoryRequest req = ANCHOR__ADMIN__V1__CONFIG_HISTORY_REQUEST__INIT;
    Anchor__Admin__V1__ConfigHistoryResponse *resp;

    if (ctl_parse_args(argc, argv, flags, 4, pos, 1, &npos, &help, msg, sizeof(msg)) != 0)
        return usage_error(msg);
    if (help) {
        ctl_admin_config_help(stdout);
        return CTL_EXIT_OK;
    }
    if ((rc = take_scope(pos, &npos, &first, "history", 0)) != 0)
        return rc;
    if (!flags[0].seen)
        return usage_error("config history: --id CLUSTER-ID is required");
    if (flags[2].seen && parse_count(flags[2].value, 10000, &limit) != 0) {
        (void)snprintf(msg, sizeof(msg), "--limit must be a number from 1 to 10000 (got \"%.64s\")",
                       flags[2].value);
        return usage_error(msg);
    }
    req.cluster_id = (char *)flags[0].value;
    if (flags[1].seen)
        req.section = (char *)flags[1].value;
    req.limit = (uint32_t)limit;
    rc = ctl_admin_call(ctl_admin_socket(flags[3].value), "ConfigHistory", &req.base, &out,
                        &out_len);
    if (rc != CTL_EXIT_OK)
        return rc;
    resp = anchor__admin__v1__config_history_response__unpack(NULL, out_len, out);
    free(out);
    if (resp == NULL) {
        ctl_error("ConfigHistory: malformed response");
        return CTL_EXIT_FAIL;
    }
    (void)printf("%-8s %-20s %-21s %-12s %s\n", "VERSION", "SECTION", "SET AT", "SET BY", "BYTES");
    for (size_t i = 0; i < resp->n_documents; i++) {
        const Anchor__Admin__V1__ConfigDocument *d = resp->documents[i];

        ctl_admin_time(at, sizeof(at), d->set_at);
        (void)snprintf(msg, sizeof(msg), "%-8lld %-20s %-21s %-12s %llu", (long long)d->version,
                       d->section, at, d->set_by, (unsigned long long)d->text_size);
        ctl_put_line(stdout, msg);
    }
    anchor__admin__v1__config_history_response__free_unpacked(resp, NULL);
    return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

int ctl_admin_config_main(int argc, char **argv)
{
    if (argc > 0 && strcmp(argv[0], "set") == 0)
        return cmd_set(argc - 1, argv + 1);
    if (argc > 0 && strcmp(argv[0], "get") == 0)
        return cmd_get(argc - 1, argv + 1);
    if (argc > 0 && strcmp(argv[0], "history") == 0)
        return cmd_history(argc - 1, argv + 1);
    if (argc > 0 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0 ||
                     strcmp(argv[0], "help") == 0)) {
        ctl_admin_config_help(stdout);
        return CTL_EXIT_OK;
    }
    return ctl_config_main(argc, argv);
}
