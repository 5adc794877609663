/*
 * Unit tests of the agent's bootstrap configuration (agent_config.h): a table
 * of agent.yaml documents in the Linux form, the Helm values form and both,
 * each valid one beside its hostile twins asserting the exact message; then
 * the command-line overrides, the required keys and defaults, the address
 * splitter and the file loader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "anchor/agent_config.h"

#define COMMON                                                                                     \
    "trust-domain: example.org\n"                                                                  \
    "server-address: 127.0.0.1:8081\n"                                                             \
    "trust-bundle-path: /etc/anchor/bundle.pem\n"

#define LINUX_ATT                                                                                  \
    "agent-attestors:\n"                                                                           \
    "  - type: x509pop\n"                                                                          \
    "    config:\n"                                                                                \
    "      certificatePath: \"/etc/anchor/agent.crt\"\n"                                           \
    "      privateKeyPath: \"/etc/anchor/agent.key\"\n"

#define LINUX                                                                                      \
    "cluster-id: c-8f2k1q\n"                                                                       \
    "disable-kubernetes-attestation: true\n" LINUX_ATT

#define HELM_HEAD                                                                                  \
    "agent:\n"                                                                                     \
    "  auth:\n"                                                                                    \
    "    clusterId: c-8f2k1q\n"
#define HELM_ATT                                                                                   \
    "    attestors:\n"                                                                             \
    "      - type: x509pop\n"                                                                      \
    "        config:\n"                                                                            \
    "          certificatePath: \"/etc/anchor/agent.crt\"\n"                                       \
    "          privateKeyPath: \"/etc/anchor/agent.key\"\n"
#define HELM HELM_HEAD HELM_ATT

struct row {
    const char *name;
    const char *doc;
    const char *want_err; /* NULL: the document is valid and complete */
};

static const struct row rows[] = {
    /* The two forms, and both at once when they agree. */
    {"linux form", COMMON LINUX, NULL},
    {"helm form", COMMON HELM, NULL},
    {"both forms agreeing", COMMON LINUX HELM, NULL},
    {"linux with intermediates",
     COMMON LINUX "      intermediatesPath: /etc/anchor/intermediates.pem\n", NULL},
    {"all optional keys",
     COMMON LINUX "data-dir: /tmp/anchor-agent\nlog-level: debug\nlog-format: text\n"
                  "metrics-address: 127.0.0.1:9091\n",
     NULL},
    {"ipv6 server",
     "trust-domain: example.org\nserver-address: \"[::1]:8081\"\n"
     "trust-bundle-path: /b.pem\n" LINUX,
     NULL},
    /* Hostile twins: the file. */
    {"empty", "", "the document is empty"},
    {"comment only", "# nothing\n", "the document is empty"},
    {"a list", "- a\n- b\n", "the agent configuration must be a mapping of settings (got a list)"},
    {"a scalar", "hello\n",
     "the agent configuration must be a mapping of settings (got \"hello\")"},
    {"anchors", COMMON "cluster-id: &c c-1\n", "YAML anchors and aliases are not allowed"},
    {"tags", COMMON "cluster-id: !!str c-1\n", "YAML tags are not allowed"},
    {"two documents", COMMON LINUX "---\na: b\n", "more than one YAML document in the file"},
    /* Keys. */
    {"unknown top key", COMMON LINUX "server-adress: 1.2.3.4:1\n", "unknown key \"server-adress\""},
    {"duplicate top key", COMMON LINUX "trust-domain: example.org\n",
     "duplicate key \"trust-domain\""},
    {"unknown helm key", COMMON "agent:\n  image: x\n", "agent: unknown key \"image\""},
    {"unknown auth key", COMMON "agent:\n  auth:\n    clusterID: c-1\n",
     "agent.auth: unknown key \"clusterID\""},
    {"helm agent not a mapping", COMMON "agent: yes\n", "agent: expected a mapping (got \"yes\")"},
    {"helm without auth", COMMON "agent: {}\n", "agent: auth is required"},
    {"helm auth a list", COMMON "agent:\n  auth: [1]\n",
     "agent.auth: expected a mapping (got a list)"},
    {"unknown attestor key",
     COMMON "cluster-id: c-1\nagent-attestors:\n  - type: x509pop\n"
            "    kind: x\n",
     "agent-attestors[0]: unknown key \"kind\""},
    {"unknown x509pop key", COMMON LINUX "      certificatePth: /x\n",
     "agent-attestors[0].config: unknown key \"certificatePth\""},
    {"misspelt key in helm attestor", COMMON HELM "          privateKeyPth: /x\n",
     "agent.auth.attestors[0].config: unknown key \"privateKeyPth\""},
    /* Conflicts between the forms. */
    {"cluster ids disagree", COMMON LINUX "agent:\n  auth:\n    clusterId: c-other\n",
     "cluster-id \"c-8f2k1q\" and agent.auth.clusterId \"c-other\" disagree: give one"},
    {"attestors disagree",
     COMMON LINUX "agent:\n  auth:\n    attestors:\n      - type: x509pop\n        config:\n"
                  "          certificatePath: /other.crt\n          privateKeyPath: /k\n",
     "agent-attestors and agent.auth.attestors disagree: give one"},
    {"attestors disagree on intermediates",
     COMMON LINUX HELM "          intermediatesPath: /i.pem\n",
     "agent-attestors and agent.auth.attestors disagree: give one"},
    /* Values. */
    {"bad trust domain", "trust-domain: Example.ORG\n", "trust-domain: invalid trust domain: "},
    {"trust domain a list", "trust-domain: [a]\n", "trust-domain: expected a string (got a list)"},
    {"trust domain empty", "trust-domain:\n", "trust-domain: a value is required"},
    {"trust domain a bool", "trust-domain: yes\n", "trust-domain: expected a string (got \"yes\")"},
    {"server address without port", "server-address: localhost\n",
     "server-address: expected host:port (got \"localhost\")"},
    {"server address port 0", "server-address: localhost:0\n",
     "server-address: invalid port in \"localhost:0\" (1 to 65535)"},
    {"server address port too big", "server-address: localhost:65536\n",
     "server-address: invalid port in \"localhost:65536\" (1 to 65535)"},
    {"server address signed port", "server-address: \"localhost:+80\"\n",
     "server-address: invalid port in \"localhost:+80\" (1 to 65535)"},
    {"server address bare ipv6", "server-address: \"::1:8081\"\n",
     "server-address: expected host:port (got \"::1:8081\")"},
    {"server address empty host", "server-address: \":8081\"\n",
     "server-address: expected host:port (got \":8081\")"},
    {"control character", "data-dir: \"/tmp/a\\x1bb\"\n",
     "data-dir: control characters are not allowed"},
    {"nul character", "data-dir: \"/tmp/a\\0b\"\n", "NUL characters are not allowed"},
    {"bad log level", "log-level: loud\n", "log-level: unknown log level loud"},
    {"bad log format", "log-format: xml\n", "log-format: unknown log format xml"},
    {"bad cluster id", "cluster-id: \"c 1\"\n", "cluster-id: invalid cluster id \"c 1\""},
    {"bad helm cluster id", "agent:\n  auth:\n    clusterId: \"c/1\"\n",
     "agent.auth.clusterId: invalid cluster id \"c/1\""},
    {"helm cluster id a list", "agent:\n  auth:\n    clusterId: [a]\n",
     "agent.auth.clusterId: expected a string (got a list)"},
    {"k8s flag yes", "disable-kubernetes-attestation: yes\n",
     "disable-kubernetes-attestation: expected true or false (got \"yes\")"},
    {"k8s flag quoted", "disable-kubernetes-attestation: \"true\"\n",
     "disable-kubernetes-attestation: expected true or false (got the quoted string \"true\")"},
    {"k8s flag a list", "disable-kubernetes-attestation: []\n",
     "disable-kubernetes-attestation: expected true or false (got a list)"},
    /* Attestors. */
    {"attestors empty list", COMMON "cluster-id: c-1\nagent-attestors: []\n",
     "agent-attestors: at least one attestor is required"},
    {"attestors null", COMMON "cluster-id: c-1\nagent-attestors:\n",
     "agent-attestors: at least one attestor is required"},
    {"attestors a mapping", COMMON "cluster-id: c-1\nagent-attestors: {type: x509pop}\n",
     "agent-attestors: expected a list (got a mapping)"},
    {"attestor a string", COMMON "cluster-id: c-1\nagent-attestors: [x509pop]\n",
     "agent-attestors[0]: expected a mapping (got \"x509pop\")"},
    {"attestor without type", COMMON "cluster-id: c-1\nagent-attestors:\n  - config: {}\n",
     "agent-attestors[0]: type is required"},
    {"unknown attestor type", COMMON "cluster-id: c-1\nagent-attestors:\n  - type: tpm\n",
     "agent-attestors[0].type: unknown attestor type \"tpm\" (supported: x509pop)"},
    {"attestor type case", COMMON "cluster-id: c-1\nagent-attestors:\n  - type: X509POP\n",
     "agent-attestors[0].type: unknown attestor type \"X509POP\" (supported: x509pop)"},
    {"duplicate attestor", COMMON LINUX "  - type: x509pop\n",
     "agent-attestors[1].type: duplicate attestor type \"x509pop\""},
    {"x509pop without config", COMMON "cluster-id: c-1\nagent-attestors:\n  - type: x509pop\n",
     "agent-attestors[0].config: certificatePath is required"},
    {"x509pop config a list",
     COMMON "cluster-id: c-1\nagent-attestors:\n  - type: x509pop\n    config: [a]\n",
     "agent-attestors[0].config: expected a mapping (got a list)"},
    {"x509pop without key path",
     COMMON "cluster-id: c-1\nagent-attestors:\n  - type: x509pop\n    config:\n"
            "      certificatePath: /c\n",
     "agent-attestors[0].config: privateKeyPath is required"},
    {"x509pop empty cert path",
     COMMON "cluster-id: c-1\nagent-attestors:\n  - type: x509pop\n    config:\n"
            "      certificatePath: \"\"\n      privateKeyPath: /k\n",
     "agent-attestors[0].config.certificatePath: a value is required"},
    {"x509pop path a mapping",
     COMMON "cluster-id: c-1\nagent-attestors:\n  - type: x509pop\n    config:\n"
            "      certificatePath: {a: b}\n      privateKeyPath: /k\n",
     "agent-attestors[0].config.certificatePath: expected a string (got a mapping)"},
    {"helm attestors empty", COMMON HELM_HEAD "    attestors: []\n",
     "agent.auth.attestors: at least one attestor is required"},
    /* Complete documents missing a required key (reported by finish). */
    {"no trust domain", "server-address: a:1\ntrust-bundle-path: /b\n" LINUX,
     "trust-domain is required"},
    {"no server address", "trust-domain: td\ntrust-bundle-path: /b\n" LINUX,
     "server-address is required"},
    {"no bundle", "trust-domain: td\nserver-address: a:1\n" LINUX, "trust-bundle-path is required"},
    {"no cluster id", COMMON LINUX_ATT,
     "cluster-id is required (cluster-id or agent.auth.clusterId)"},
    {"no attestors", COMMON "cluster-id: c-1\n",
     "at least one attestor is required (agent-attestors or agent.auth.attestors)"},
    {"helm without attestors", COMMON HELM_HEAD,
     "at least one attestor is required (agent-attestors or agent.auth.attestors)"},
};

/* Parses then finishes; returns the message ("" on success). */
static int run(const char *doc, struct anchor_agent_config **out, struct anchor_err *err)
{
    struct anchor_agent_config *cfg = NULL;

    anchor_err_clear(err);
    assert_int_equal(anchor_agent_config_new(&cfg, err), 0);
    if (anchor_agent_config_parse(cfg, doc, strlen(doc), err) != 0 ||
        anchor_agent_config_finish(cfg, err) != 0) {
        anchor_agent_config_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct anchor_agent_config *cfg = NULL;
        struct anchor_err err;
        int rc = run(rows[i].doc, &cfg, &err);

        if (rows[i].want_err == NULL) {
            if (rc != 0)
                fail_msg("row \"%s\": unexpected error: %s", rows[i].name, anchor_err_msg(&err));
            anchor_agent_config_free(cfg);
            continue;
        }
        if (rc == 0) {
            anchor_agent_config_free(cfg);
            fail_msg("row \"%s\": accepted, wanted \"%s\"", rows[i].name, rows[i].want_err);
        }
        if (strstr(anchor_err_msg(&err), rows[i].want_err) == NULL)
            fail_msg("row \"%s\": got \"%s\", wanted \"%s\"", rows[i].name, anchor_err_msg(&err),
                     rows[i].want_err);
    }
}

static void test_linux_fields(void **state)
{
    struct anchor_agent_config *cfg = NULL;
    struct anchor_err err;

    (void)state;
    assert_int_equal(run(COMMON LINUX "      intermediatesPath: /i.pem\n", &cfg, &err), 0);
    assert_string_equal(cfg->trust_domain, "example.org");
    assert_string_equal(cfg->cluster_id, "c-8f2k1q");
    assert_string_equal(cfg->server_address, "127.0.0.1:8081");
    assert_string_equal(cfg->server_host, "127.0.0.1");
    assert_int_equal(cfg->server_port, 8081);
    assert_string_equal(cfg->trust_bundle_path, "/etc/anchor/bundle.pem");
    assert_string_equal(cfg->data_dir, ANCHOR_AGENT_DEFAULT_DATA_DIR);
    assert_null(cfg->metrics_address);
    assert_int_equal(cfg->log_level, ANCHOR_LOG_INFO);
    assert_int_equal(cfg->log_format, ANCHOR_LOG_FORMAT_JSON);
    assert_int_equal(cfg->disable_kubernetes_attestation, 1);
    assert_int_equal(cfg->nattestors, 1);
    assert_string_equal(cfg->attestors[0].type, "x509pop");
    assert_string_equal(cfg->attestors[0].certificate_path, "/etc/anchor/agent.crt");
    assert_string_equal(cfg->attestors[0].private_key_path, "/etc/anchor/agent.key");
    assert_string_equal(cfg->attestors[0].intermediates_path, "/i.pem");
    anchor_agent_config_free(cfg);
}

static void test_helm_fields(void **state)
{
    struct anchor_agent_config *cfg = NULL;
    struct anchor_err err;

    (void)state;
    assert_int_equal(run(COMMON HELM "log-level: DEBUG\nlog-format: text\n"
                                     "metrics-address: \"[::1]:9091\"\n",
                         &cfg, &err),
                     0);
    assert_string_equal(cfg->cluster_id, "c-8f2k1q");
    assert_int_equal(cfg->disable_kubernetes_attestation, -1);
    assert_int_equal(cfg->nattestors, 1);
    assert_null(cfg->attestors[0].intermediates_path);
    assert_int_equal(cfg->log_level, ANCHOR_LOG_DEBUG);
    assert_int_equal(cfg->log_format, ANCHOR_LOG_FORMAT_TEXT);
    assert_string_equal(cfg->metrics_host, "::1");
    assert_int_equal(cfg->metrics_port, 9091);
    anchor_agent_config_free(cfg);
}

/* A failed parse leaves the earlier settings as they were. */
static void test_failed_parse_keeps_config(void **state)
{
    struct anchor_agent_config *cfg = NULL;
    struct anchor_err err;
    static const char bad[] = "trust-domain: other.org\nlog-level: debug\nbogus: 1\n";

    (void)state;
    assert_int_equal(run(COMMON LINUX, &cfg, &err), 0);
    assert_int_not_equal(anchor_agent_config_parse(cfg, bad, strlen(bad), &err), 0);
    assert_string_equal(anchor_err_msg(&err), "unknown key \"bogus\"");
    assert_string_equal(cfg->trust_domain, "example.org");
    assert_int_equal(cfg->log_level, ANCHOR_LOG_INFO);
    anchor_agent_config_free(cfg);
}

static void test_flags_override(void **state)
{
    struct anchor_agent_config *cfg = NULL;
    struct anchor_err err;

    (void)state;
    assert_int_equal(anchor_agent_config_new(&cfg, &err), 0);
    assert_int_equal(anchor_agent_config_parse(cfg, COMMON LINUX, strlen(COMMON LINUX), &err), 0);
    assert_int_equal(anchor_agent_config_set(cfg, "server-address", "localhost:9999", &err), 0);
    assert_int_equal(anchor_agent_config_set(cfg, "log-level", "warn", &err), 0);
    assert_int_equal(anchor_agent_config_set(cfg, "data-dir", "/d", &err), 0);
    assert_int_equal(anchor_agent_config_set(cfg, "cluster-id", "c-2", &err), 0);
    assert_int_equal(anchor_agent_config_finish(cfg, &err), 0);
    assert_string_equal(cfg->server_host, "localhost");
    assert_int_equal(cfg->server_port, 9999);
    assert_int_equal(cfg->log_level, ANCHOR_LOG_WARN);
    assert_string_equal(cfg->data_dir, "/d");
    assert_string_equal(cfg->cluster_id, "c-2");

    /* Hostile twins: the same checks as in the file. */
    assert_int_not_equal(anchor_agent_config_set(cfg, "server-address", "nope", &err), 0);
    assert_string_equal(anchor_err_msg(&err), "server-address: expected host:port (got \"nope\")");
    assert_int_equal(cfg->server_port, 9999);
    assert_int_not_equal(anchor_agent_config_set(cfg, "agent-attestors", "x", &err), 0);
    assert_string_equal(anchor_err_msg(&err), "unknown setting \"agent-attestors\"");
    assert_int_not_equal(anchor_agent_config_set(cfg, "data-dir", "", &err), 0);
    assert_string_equal(anchor_err_msg(&err), "data-dir: a value is required");
    assert_int_not_equal(anchor_agent_config_set(cfg, "data-dir", "a\nb", &err), 0);
    assert_string_equal(anchor_err_msg(&err), "data-dir: control characters are not allowed");
    assert_int_not_equal(
        anchor_agent_config_set(cfg, "disable-kubernetes-attestation", "maybe", &err), 0);
    assert_string_equal(anchor_err_msg(&err),
                        "disable-kubernetes-attestation: expected true or false (got \"maybe\")");
    anchor_agent_config_free(cfg);
}

static void test_split_address(void **state)
{
    static const struct {
        const char *in;
        const char *host; /* NULL: refused */
        uint16_t port;
    } cases[] = {
        {"127.0.0.1:1", "127.0.0.1", 1},
        {"[::1]:65535", "::1", 65535},
        {"server.example:8081", "server.example", 8081},
        {"a:08", NULL, 0},
        {"a:", NULL, 0},
        {"a:123456", NULL, 0},
        {"[::1]8081", NULL, 0},
        {"[::1", NULL, 0},
        {"a b:1", NULL, 0},
        {"a:1x", NULL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *host = NULL;
        uint16_t port = 0;
        struct anchor_err err;
        int rc = anchor_agent_config_split_address(cases[i].in, &host, &port, &err);

        if (cases[i].host == NULL) {
            if (rc == 0)
                fail_msg("%s: accepted", cases[i].in);
            continue;
        }
        if (rc != 0)
            fail_msg("%s: %s", cases[i].in, anchor_err_msg(&err));
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
        free(host);
    }
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/test_agent_config_XXXXXX";
    int fd = mkstemp(path);
    struct anchor_agent_config *cfg = NULL;
    struct anchor_err err;
    static const char doc[] = COMMON HELM;
    char *big;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    assert_int_equal(close(fd), 0);
    assert_int_equal(anchor_agent_config_new(&cfg, &err), 0);
    assert_int_equal(anchor_agent_config_load_file(cfg, path, &err), 0);
    assert_int_equal(anchor_agent_config_finish(cfg, &err), 0);
    assert_string_equal(cfg->cluster_id, "c-8f2k1q");

    /* Hostile twins: a file too large, a missing file, a directory. */
    big = malloc(ANCHOR_AGENT_CONFIG_MAX_BYTES + 10);
    assert_non_null(big);
    memset(big, '#', ANCHOR_AGENT_CONFIG_MAX_BYTES + 10);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, big, ANCHOR_AGENT_CONFIG_MAX_BYTES + 10),
                     ANCHOR_AGENT_CONFIG_MAX_BYTES + 10);
    assert_int_equal(close(fd), 0);
    free(big);
    assert_int_not_equal(anchor_agent_config_load_file(cfg, path, &err), 0);
    assert_non_null(strstr(anchor_err_msg(&err), "document too large"));
    assert_int_equal(unlink(path), 0);
    assert_int_not_equal(anchor_agent_config_load_file(cfg, path, &err), 0);
    assert_non_null(strstr(anchor_err_msg(&err), "cannot open"));
    assert_int_not_equal(anchor_agent_config_load_file(cfg, "/tmp", &err), 0);
    assert_string_equal(anchor_err_msg(&err), "/tmp: not a regular file");
    anchor_agent_config_free(cfg);
}

/* The examples shipped in deploy/ are valid, in both forms. */
static void test_deploy_examples(void **state)
{
    static const char *const files[] = {"deploy/agent.yaml", "deploy/agent-helm-values.yaml"};
    const char *src = getenv("ANCHOR_SOURCE_DIR");

    (void)state;
    if (src == NULL)
        skip();
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct anchor_agent_config *cfg = NULL;
        struct anchor_err err;
        char path[4096];

        (void)snprintf(path, sizeof(path), "%s/%s", src, files[i]);
        assert_int_equal(anchor_agent_config_new(&cfg, &err), 0);
        if (anchor_agent_config_load_file(cfg, path, &err) != 0 ||
            anchor_agent_config_finish(cfg, &err) != 0)
            fail_msg("%s: %s", path, anchor_err_msg(&err));
        assert_string_equal(cfg->cluster_id, "c-xxxxxx");
        assert_int_equal(cfg->nattestors, 1);
        assert_string_equal(cfg->attestors[0].certificate_path, "/etc/anchor/agent.crt");
        anchor_agent_config_free(cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_linux_fields),
        cmocka_unit_test(test_helm_fields),    cmocka_unit_test(test_failed_parse_keeps_config),
        cmocka_unit_test(test_flags_override), cmocka_unit_test(test_split_address),
        cmocka_unit_test(test_load_file),      cmocka_unit_test(test_deploy_examples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
