/*
 * Unit tests of the AgentAttestation v1 policy loader (policy.h): a table of
 * documents, the valid ones beside their hostile twins, each hostile one
 * asserting the exact message an operator would read; then the accessors,
 * reference counting and the file loader.
 *
 * The CA certificates below were made for this test with the openssl CLI
 * (EC P-256, valid for 100 years); NOT_CA_PEM is a self-signed CA:FALSE
 * certificate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "anchor/policy.h"

static const char CA_PEM[] = "-----BEGIN CERTIFICATE-----\n"
                             "MIIBojCCAUmgAwIBAgIUdrpV2EDtBNT1ndiTxWDVxTc1W54wCgYIKoZIzj0EAwIw\n"
                             "HjEcMBoGA1UEAwwTYW5jaG9yIHVuaXQgdGVzdCBDQTAgFw0yNjEyMDMxNjM2MTBa\n"
                             "GA8yMTI2MTEwOTE2MzYxMFowHjEcMBoGA1UEAwwTYW5jaG9yIHVuaXQgdGVzdCBD\n"
                             "QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABB96pyCnyFEQGYz8yBZOe9KPBDsd\n"
                             "Flxf31Mx/eKYq6nPuDV/Qs4HO0oKAR6Xni9EwBozOgSOUOFGCoAaawMkWPujYzBh\n"
                             "MB0GA1UdDgQWBBSwXrXu5Ass5c/v+d2HUUM/ocVTnzAfBgNVHSMEGDAWgBSwXrXu\n"
                             "5Ass5c/v+d2HUUM/ocVTnzAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIB\n"
                             "BjAKBggqhkjOPQQDAgNHADBEAiBZcNQI2zYy6PwII+GdlA8n1+nDM7OqkG+mh6Zf\n"
                             "n/t/nQIgHE2m0XLXAlpibgDYvJTeOqZOFThiLX3XG304aWalcH4=\n"
                             "-----END CERTIFICATE-----\n";
static const char CA2_PEM[] = "-----BEGIN CERTIFICATE-----\n"
                              "MIIBqDCCAU2gAwIBAgIUP9tnfIzhknr3SPWAtTuTbLBz4KcwCgYIKoZIzj0EAwIw\n"
                              "IDEeMBwGA1UEAwwVYW5jaG9yIHVuaXQgdGVzdCBDQSAyMCAXDTI2MTIwMzE2MzYx\n"
                              "MFoYDzIxMjYxMTA5MTYzNjEwWjAgMR4wHAYDVQQDDBVhbmNob3IgdW5pdCB0ZXN0\n"
                              "IENBIDIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATtXbaEHHHNfWbY7mBI2PUl\n"
                              "L1EPQrOEYMVqo+dLwBxvuA/c/ogxmChPSB0hNruFGL6v3OclgC5mp6rnqaVPRjo4\n"
                              "o2MwYTAdBgNVHQ4EFgQULri3NrwdoeaEatp/tmTCV4AEcggwHwYDVR0jBBgwFoAU\n"
                              "Lri3NrwdoeaEatp/tmTCV4AEcggwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8E\n"
                              "BAMCAQYwCgYIKoZIzj0EAwIDSQAwRgIhAJnycnsLkFsB3Tr2cZSaPGBBM6m4cvIt\n"
                              "opTufMGtSidSAiEA8CyL/+SuZig87iDdSib9LFY+s5bvrSKSESrMrOXIf/Q=\n"
                              "-----END CERTIFICATE-----\n";
static const char NOT_CA_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBiTCCATCgAwIBAgIUGCU21LNaTxSVerm4UcLfTo79ChQwCgYIKoZIzj0EAwIw\n"
    "EzERMA8GA1UEAwwIbm90IGEgY2EwIBcNMjYxMjAzMTYzNjEwWhgPMjEyNjExMDkx\n"
    "NjM2MTBaMBMxETAPBgNVBAMMCG5vdCBhIGNhMFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
    "AQcDQgAESNsXxHSoWi7Qw9E8+2N6CVUbm8SVLp8nVQnknHuh8714udI/fmo5fNE6\n"
    "iGrAcccbB/rqZBr5EK1GuTosXofGh6NgMF4wHQYDVR0OBBYEFNYHHAIDxU+b43rp\n"
    "jNkVUUlGjx5hMB8GA1UdIwQYMBaAFNYHHAIDxU+b43rpjNkVUUlGjx5hMAwGA1Ud\n"
    "EwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMAoGCCqGSM49BAMCA0cAMEQCIBN3/Ph3\n"
    "171I6nhUF1qnfBVkmId9IYvgXjiUm4O0l34dAiAZ8+gU6R7EQ8QmXh+Pz1ZgKOwV\n"
    "3l2lvwd1RVvHMIkEoQ==\n"
    "-----END CERTIFICATE-----\n";

/* --- building documents --------------------------------------------------- */

#define HEAD "section: AgentAttestation\nschema: v1\nspec:\n  policies:\n"
/* One x509pop policy named N; EXTRA goes into its config mapping. */
#define POLICY_X(N, EXTRA)                                                                         \
    "    - name: " N "\n"                                                                          \
    "      requiredAttestors:\n"                                                                   \
    "        - type: x509pop\n"                                                                    \
    "          config:\n"                                                                          \
    "            caCerts: |\n"                                                                     \
    "              @CA@\n" EXTRA
#define POLICY(N)   POLICY_X(N, "")
#define LIMIT(K, V) "            " K ": " V "\n"

/* Replaces each @CA@, @CA2@ and @NOTCA@ by that PEM text, every line of it
 * indented to the placeholder's column, so that it sits in a block scalar. */
static char *expand(const char *tmpl, size_t *out_len)
{
    static const struct {
        const char *tag;
        const char *pem;
        int escape; /* newlines written as \n, for a double-quoted scalar */
    } subs[] = {{"@CA@", CA_PEM, 0},
                {"@CA2@", CA2_PEM, 0},
                {"@NOTCA@", NOT_CA_PEM, 0},
                {"@CAESC@", CA_PEM, 1}};
    int escape = 0;
    size_t cap = strlen(tmpl) * 2 + 16384, n = 0;
    char *out = malloc(cap);
    size_t col = 0;

    assert_non_null(out);
    for (const char *p = tmpl; *p != '\0';) {
        const char *pem = NULL;
        size_t tag_len = 0;

        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
            if (strncmp(p, subs[i].tag, strlen(subs[i].tag)) == 0) {
                pem = subs[i].pem;
                tag_len = strlen(subs[i].tag);
                escape = subs[i].escape;
            }
        }
        if (pem == NULL) {
            col = *p == '\n' ? 0 : col + 1;
            out[n++] = *p++;
            assert_true(n < cap);
            continue;
        }
        for (const char *q = pem; *q != '\0' && escape; q++) {
            if (*q == '\n') {
                out[n++] = '\\';
                out[n++] = 'n';
            } else {
                out[n++] = *q;
            }
            assert_true(n + 2 < cap);
        }
        if (escape) {
            p += tag_len;
            continue;
        }
        for (const char *q = pem; *q != '\0'; q++) {
            out[n++] = *q;
            if (*q == '\n' && q[1] != '\0') {
                for (size_t k = 0; k < col; k++)
                    out[n++] = ' ';
            }
            assert_true(n + col + 1 < cap);
        }
        /* The PEM ends with a newline that the template's own replaces. */
        n--;
        p += tag_len;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* --- the table -------------------------------------------------------------- */

struct row {
    const char *name;
    const char *yaml;
    /* NULL: the document is valid. Otherwise the exact message, or, when
     * `contains` is set, a text the message must contain (messages that
     * come from libyaml or from the x509pop engine). */
    const char *msg;
    int contains;
};

static const struct row rows[] = {
    /* the happy shapes */
    {"minimal", HEAD POLICY("x509pop_policy"), NULL, 0},
    {"document markers", "---\n" HEAD POLICY("p") "...\n", NULL, 0},
    {"quoted strings",
     "section: \"AgentAttestation\"\nschema: 'v1'\nspec:\n  policies:\n" POLICY("'p'"), NULL, 0},
    {"two CAs",
     HEAD "    - name: p\n      requiredAttestors:\n        - type: x509pop\n          config:\n"
          "            caCerts: |\n              @CA@\n              @CA2@\n",
     NULL, 0},
    {"limits", HEAD POLICY_X("p", LIMIT("maxIntermediates", "0") LIMIT("maxRSAKeySize", "4096")),
     NULL, 0},
    {"limits at their bounds",
     HEAD POLICY_X("p", LIMIT("maxIntermediates", "100") LIMIT("maxRSAKeySize", "65536")), NULL, 0},
    {"flow style",
     HEAD "    - {name: p, requiredAttestors: [{type: x509pop, config: {caCerts: \"@CAESC@\"}}]}\n",
     NULL, 0},
    {"path template",
     HEAD "    - name: p\n      agentPathTemplate: \"/agents/{{x509_pop.serial_number}}\"\n"
          "      requiredAttestors:\n        - type: x509pop\n          config:\n"
          "            caCerts: |\n              @CA@\n",
     NULL, 0},
    {"two policies", HEAD POLICY("a") POLICY("b"), NULL, 0},

    /* bytes and YAML */
    {"empty", "", "the document is empty", 0},
    {"only a comment", "# nothing here\n", "the document is empty", 0},
    {"null document", "---\n...\n", "the document is empty", 0},
    {"not a mapping", "- a\n- b\n",
     "the document must be a mapping of section, schema and spec (got a list)", 0},
    {"a scalar", "AgentAttestation\n",
     "the document must be a mapping of section, schema and spec (got \"AgentAttestation\")", 0},
    {"syntax error", "section: [AgentAttestation\n", "invalid YAML at line ", 1},
    {"anchor", "section: &s AgentAttestation\nschema: v1\n",
     "line 1, column 10: YAML anchors and aliases are not allowed", 0},
    {"alias", "x: &a b\n", "line 1, column 4: YAML anchors and aliases are not allowed", 0},
    {"alias use", HEAD POLICY("p") "other: *a\n",
     "line 21, column 8: YAML anchors and aliases are not allowed", 0},
    {"tag on a scalar", "section: AgentAttestation\nschema: !!str v1\n",
     "line 2, column 9: YAML tags are not allowed", 0},
    {"tag on an integer", HEAD POLICY_X("p", LIMIT("maxIntermediates", "!!int 4")),
     "line 21, column 31: YAML tags are not allowed", 0},
    {"local tag", "section: !x AgentAttestation\n", "line 1, column 10: YAML tags are not allowed",
     0},
    {"two documents", HEAD POLICY("p") "---\n" HEAD POLICY("q"),
     "line 21, column 1: more than one YAML document in the file", 0},
    {"two empty documents", "---\n---\n",
     "line 2, column 1: more than one YAML document in the file", 0},
    {"NUL escape", HEAD POLICY("\"a\\0b\""), "line 5, column 13: NUL characters are not allowed",
     0},
    {"x00 escape", "section: \"Agent\\x00Attestation\"\n",
     "line 1, column 10: NUL characters are not allowed", 0},
    {"invalid UTF-8", "section: Agent\xff\n", "document is not valid UTF-8 (at byte 14)", 0},
    {"overlong UTF-8", "section: \xc0\xafx\n", "document is not valid UTF-8 (at byte 9)", 0},
    {"UTF-16 surrogate", "section: \xed\xa0\x80\n", "document is not valid UTF-8 (at byte 9)", 0},
    {"truncated UTF-8", "section: \xe2\x82", "document is not valid UTF-8 (at byte 9)", 0},
    {"above U+10FFFF", "section: \xf4\x90\x80\x80\n", "document is not valid UTF-8 (at byte 9)", 0},
    {"non-string key", "? [a]\n: b\n", "keys must be strings (line 1)", 0},
    {"null key", "? \n: b\n", "keys must be strings (line 1)", 0},
    {"too deep",
     "section: AgentAttestation\nschema: v1\nspec: "
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     "line 3, column 38: YAML nested too deeply (more than 32 levels)", 0},

    /* section, schema, spec */
    {"section missing", "schema: v1\nspec: {}\n", "section is required", 0},
    {"section empty", "section:\nschema: v1\n", "section is required", 0},
    {"section wrong", "section: SVIDIssuancePolicy\nschema: v1\n",
     "section: expected \"AgentAttestation\" (got \"SVIDIssuancePolicy\")", 0},
    {"section case", "section: agentattestation\nschema: v1\n",
     "section: expected \"AgentAttestation\" (got \"agentattestation\")", 0},
    {"section a list", "section: [AgentAttestation]\n", "section: expected a string (got a list)",
     0},
    {"schema missing", "section: AgentAttestation\nspec: {}\n", "schema is required", 0},
    {"schema wrong", "section: AgentAttestation\nschema: v2\n",
     "schema: expected \"v1\" (got \"v2\")", 0},
    {"schema number", "section: AgentAttestation\nschema: 1\n",
     "schema: expected \"v1\" (got \"1\")", 0},
    {"unknown top key", "section: AgentAttestation\nschema: v1\nmetadata: {}\n",
     "unknown key \"metadata\"", 0},
    {"duplicate top key", "section: AgentAttestation\nsection: AgentAttestation\n",
     "duplicate key \"section\"", 0},
    {"spec missing", "section: AgentAttestation\nschema: v1\n", "spec is required", 0},
    {"spec null", "section: AgentAttestation\nschema: v1\nspec:\n", "spec is required", 0},
    {"spec a list", "section: AgentAttestation\nschema: v1\nspec: []\n",
     "spec: expected a mapping (got a list)", 0},
    {"spec unknown key", "section: AgentAttestation\nschema: v1\nspec:\n  policy: []\n",
     "spec: unknown key \"policy\"", 0},
    {"policies missing", "section: AgentAttestation\nschema: v1\nspec: {}\n",
     "spec: policies is required", 0},
    {"policies empty", HEAD "    []\n", "spec.policies: at least one policy is required", 0},
    {"policies a mapping", HEAD "    a: b\n", "spec.policies: expected a list (got a mapping)", 0},
    {"duplicate policies key", HEAD POLICY("p") "  policies: []\n",
     "spec: duplicate key \"policies\"", 0},

    /* a policy */
    {"policy a scalar", HEAD "    - p\n", "spec.policies[0]: expected a mapping (got \"p\")", 0},
    {"name missing", HEAD "    - requiredAttestors: []\n", "spec.policies[0]: name is required", 0},
    {"name null", HEAD "    - name: ~\n", "spec.policies[0]: name is required", 0},
    {"name a list", HEAD "    - name: [p]\n",
     "spec.policies[0].name: expected a string (got a list)", 0},
    {"name a boolean", HEAD "    - name: yes\n",
     "spec.policies[0].name: expected a string (got \"yes\")", 0},
    {"name with a tab", HEAD POLICY("\"a\\tb\""),
     "spec.policies[0].name: control characters are not allowed", 0},
    {"name too long",
     HEAD POLICY("pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
                 "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"),
     "spec.policies[0].name: longer than 128 bytes", 0},
    {"duplicate policy name", HEAD POLICY("p") POLICY("q") POLICY("p"),
     "spec.policies[2].name: duplicate policy name \"p\"", 0},
    {"unknown policy key", HEAD "    - name: p\n      requiredAttestor: []\n",
     "spec.policies[0]: unknown key \"requiredAttestor\"", 0},
    {"duplicate policy key", HEAD "    - name: p\n      name: q\n",
     "spec.policies[0]: duplicate key \"name\"", 0},
    {"no requiredAttestors", HEAD "    - name: p\n",
     "spec.policies[0]: requiredAttestors is required", 0},
    {"empty requiredAttestors", HEAD "    - name: p\n      requiredAttestors: []\n",
     "spec.policies[0].requiredAttestors: at least one attestor is required", 0},
    {"requiredAttestors a mapping",
     HEAD "    - name: p\n      requiredAttestors: {type: x509pop}\n",
     "spec.policies[0].requiredAttestors: expected a list (got a mapping)", 0},
    {"template relative",
     HEAD "    - name: p\n      agentPathTemplate: agents/x\n      requiredAttestors: []\n",
     "spec.policies[0].agentPathTemplate: must start with \"/\" (got \"agents/x\")", 0},
    {"template empty", HEAD "    - name: p\n      agentPathTemplate:\n",
     "spec.policies[0].agentPathTemplate: expected a string (got \"\")", 0},
    {"template unclosed",
     HEAD "    - name: p\n      agentPathTemplate: /agents/{{x509_pop.serial_number\n",
     "spec.policies[0].agentPathTemplate: invalid template: unclosed \"{{\" at offset 8", 0},
    {"template bad path", HEAD "    - name: p\n      agentPathTemplate: /agents//{{a}}\n",
     "spec.policies[0].agentPathTemplate: invalid template: not a SPIFFE ID path: ", 1},
    {"template a list", HEAD "    - name: p\n      agentPathTemplate: [/a]\n",
     "spec.policies[0].agentPathTemplate: expected a string (got a list)", 0},

    /* an attestor */
    {"attestor a scalar", HEAD "    - name: p\n      requiredAttestors: [x509pop]\n",
     "spec.policies[0].requiredAttestors[0]: expected a mapping (got \"x509pop\")", 0},
    {"type missing", HEAD "    - name: p\n      requiredAttestors: [{config: {}}]\n",
     "spec.policies[0].requiredAttestors[0]: type is required", 0},
    {"unknown type", HEAD "    - name: p\n      requiredAttestors: [{type: tpm}]\n",
     "spec.policies[0].requiredAttestors[0].type: unknown attestor type \"tpm\" (supported: "
     "x509pop)",
     0},
    {"type case", HEAD "    - name: p\n      requiredAttestors: [{type: X509POP}]\n",
     "spec.policies[0].requiredAttestors[0].type: unknown attestor type \"X509POP\" (supported: "
     "x509pop)",
     0},
    {"unknown attestor key",
     HEAD "    - name: p\n      requiredAttestors: [{type: x509pop, configs: {}}]\n",
     "spec.policies[0].requiredAttestors[0]: unknown key \"configs\"", 0},
    {"duplicate attestor type", HEAD POLICY("p") "        - type: x509pop\n",
     "spec.policies[0].requiredAttestors[1].type: duplicate attestor type \"x509pop\"", 0},

    /* the x509pop config */
    {"unknown config key", HEAD POLICY("a") POLICY_X("b", LIMIT("maxIntermediate", "4")),
     "spec.policies[1].requiredAttestors[0].config: unknown key \"maxIntermediate\"", 0},
    {"duplicate config key", HEAD POLICY_X("p", LIMIT("caCerts", "x")),
     "spec.policies[0].requiredAttestors[0].config: duplicate key \"caCerts\"", 0},
    {"config a list",
     HEAD "    - name: p\n      requiredAttestors: [{type: x509pop, config: []}]\n",
     "spec.policies[0].requiredAttestors[0].config: expected a mapping (got a list)", 0},
    {"config missing", HEAD "    - name: p\n      requiredAttestors: [{type: x509pop}]\n",
     "policy \"p\": caCerts is required (the x509pop config has none)", 0},
    {"config empty", HEAD "    - name: p\n      requiredAttestors: [{type: x509pop, config: {}}]\n",
     "policy \"p\": caCerts is required (the x509pop config has none)", 0},
    {"caCerts null",
     HEAD "    - name: p\n      requiredAttestors: [{type: x509pop, config: {caCerts: }}]\n",
     "policy \"p\": caCerts is required", 0},
    {"caCerts empty string",
     HEAD "    - name: p\n      requiredAttestors: [{type: x509pop, config: {caCerts: \"\"}}]\n",
     "policy \"p\": caCerts is required", 0},
    {"caCerts blank",
     HEAD
     "    - name: p\n      requiredAttestors: [{type: x509pop, config: {caCerts: \" \\n \"}}]\n",
     "policy \"p\": caCerts is required", 0},
    {"caCerts empty block",
     HEAD "    - name: p\n      requiredAttestors:\n        - type: x509pop\n          config:\n"
          "            caCerts: |\n",
     "policy \"p\": caCerts is required", 0},
    {"caCerts a list",
     HEAD "    - name: p\n      requiredAttestors: [{type: x509pop, config: {caCerts: [a]}}]\n",
     "policy \"p\": caCerts must be PEM text (got a list)", 0},
    {"caCerts not PEM",
     HEAD "    - name: p\n      requiredAttestors: [{type: x509pop, config: {caCerts: hello}}]\n",
     "policy \"p\": could not parse any PEM certificates", 1},
    {"caCerts a key",
     HEAD "    - name: p\n      requiredAttestors:\n        - type: x509pop\n          config:\n"
          "            caCerts: |\n              -----BEGIN PRIVATE KEY-----\n"
          "              MC4CAQAwBQYDK2VwBCIEIHfD0lZbqHEVkPvpz9gf+ZTm2fYtMhNqfrRr6QtS0xKz\n"
          "              -----END PRIVATE KEY-----\n",
     "policy \"p\": could not parse any PEM certificates", 1},
    {"caCerts not a CA",
     HEAD "    - name: p\n      requiredAttestors:\n        - type: x509pop\n          config:\n"
          "            caCerts: |\n              @NOTCA@\n",
     "policy \"p\": caCerts certificate 1 (CN=not a ca) is not a CA certificate", 1},
    {"caCerts CA then not a CA",
     HEAD "    - name: p\n      requiredAttestors:\n        - type: x509pop\n          config:\n"
          "            caCerts: |\n              @CA@\n              @NOTCA@\n",
     "policy \"p\": caCerts certificate 2 (CN=not a ca) is not a CA certificate", 1},
    {"maxIntermediates 4.0", HEAD POLICY_X("p", LIMIT("maxIntermediates", "4.0")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \"4.0\")", 0},
    {"maxIntermediates 0x4", HEAD POLICY_X("p", LIMIT("maxIntermediates", "0x4")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \"0x4\")", 0},
    {"maxIntermediates 0o4", HEAD POLICY_X("p", LIMIT("maxIntermediates", "0o4")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \"0o4\")", 0},
    {"maxIntermediates +4", HEAD POLICY_X("p", LIMIT("maxIntermediates", "+4")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \"+4\")", 0},
    {"maxIntermediates -1", HEAD POLICY_X("p", LIMIT("maxIntermediates", "-1")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \"-1\")", 0},
    {"maxIntermediates -0", HEAD POLICY_X("p", LIMIT("maxIntermediates", "-0")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \"-0\")", 0},
    {"maxIntermediates 04", HEAD POLICY_X("p", LIMIT("maxIntermediates", "04")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \"04\")", 0},
    {"maxIntermediates 1e1", HEAD POLICY_X("p", LIMIT("maxIntermediates", "1e1")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \"1e1\")", 0},
    {"maxIntermediates 4_0", HEAD POLICY_X("p", LIMIT("maxIntermediates", "4_0")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \"4_0\")", 0},
    {"maxIntermediates true", HEAD POLICY_X("p", LIMIT("maxIntermediates", "true")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \"true\")", 0},
    {"maxIntermediates quoted", HEAD POLICY_X("p", LIMIT("maxIntermediates", "\"4\"")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got the quoted string "
     "\"4\")",
     0},
    {"maxIntermediates null", HEAD POLICY_X("p", LIMIT("maxIntermediates", "")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \"\")", 0},
    {"maxIntermediates a list", HEAD POLICY_X("p", LIMIT("maxIntermediates", "[4]")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got a list)", 0},
    {"maxIntermediates .inf", HEAD POLICY_X("p", LIMIT("maxIntermediates", ".inf")),
     "policy \"p\": maxIntermediates must be a non-negative integer (got \".inf\")", 0},
    {"maxIntermediates 101", HEAD POLICY_X("p", LIMIT("maxIntermediates", "101")),
     "policy \"p\": maxIntermediates must be at most 100 (got \"101\")", 0},
    {"maxIntermediates overflow",
     HEAD POLICY_X("p", LIMIT("maxIntermediates", "99999999999999999999999999")),
     "policy \"p\": maxIntermediates must be at most 100 (got \"99999999999999999999999999\")", 0},
    {"maxRSAKeySize 0", HEAD POLICY_X("p", LIMIT("maxRSAKeySize", "0")),
     "policy \"p\": maxRSAKeySize must be a positive integer (got \"0\")", 0},
    {"maxRSAKeySize -8192", HEAD POLICY_X("p", LIMIT("maxRSAKeySize", "-8192")),
     "policy \"p\": maxRSAKeySize must be a positive integer (got \"-8192\")", 0},
    {"maxRSAKeySize 8192.0", HEAD POLICY_X("p", LIMIT("maxRSAKeySize", "8192.0")),
     "policy \"p\": maxRSAKeySize must be a positive integer (got \"8192.0\")", 0},
    {"maxRSAKeySize 0x2000", HEAD POLICY_X("p", LIMIT("maxRSAKeySize", "0x2000")),
     "policy \"p\": maxRSAKeySize must be a positive integer (got \"0x2000\")", 0},
    {"maxRSAKeySize false", HEAD POLICY_X("p", LIMIT("maxRSAKeySize", "false")),
     "policy \"p\": maxRSAKeySize must be a positive integer (got \"false\")", 0},
    {"maxRSAKeySize 65537", HEAD POLICY_X("p", LIMIT("maxRSAKeySize", "65537")),
     "policy \"p\": maxRSAKeySize must be at most 65536 (got \"65537\")", 0},
    {"name quoted in messages", HEAD POLICY_X("\"q\\\"t\"", LIMIT("maxRSAKeySize", "0")),
     "policy \"q\\\"t\": maxRSAKeySize must be a positive integer (got \"0\")", 0},
};

/* Checks one row; prints what differs and returns 1 on a mismatch, so that
 * one run lists every failing row. */
static int check_row(const struct row *r, const char *text, size_t len)
{
    struct anchor_policy_doc *doc = NULL;
    struct anchor_err err;
    int rc;

    anchor_err_clear(&err);
    rc = anchor_policy_doc_parse(&doc, text, len, &err);
    if (r->msg == NULL) {
        anchor_policy_doc_free(doc);
        if (rc == 0 && doc != NULL)
            return 0;
        print_error("row \"%s\": expected valid, got: %s\n", r->name, anchor_err_msg(&err));
        return 1;
    }
    if (rc == 0 || doc != NULL) {
        anchor_policy_doc_free(doc);
        print_error("row \"%s\": expected \"%s\", got a valid document\n", r->name, r->msg);
        return 1;
    }
    if (r->contains ? strstr(anchor_err_msg(&err), r->msg) == NULL
                    : strcmp(anchor_err_msg(&err), r->msg) != 0) {
        print_error("row \"%s\":\n  expected %s\"%s\"\n  got      \"%s\"\n", r->name,
                    r->contains ? "a message containing " : "", r->msg, anchor_err_msg(&err));
        return 1;
    }
    return 0;
}

static void test_table(void **state)
{
    size_t failed = 0, n = sizeof(rows) / sizeof(rows[0]);

    (void)state;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *text = expand(rows[i].yaml, &len);

        failed += (size_t)check_row(&rows[i], text, len);
        free(text);
    }
    print_message("[ INFO     ] %zu policy documents checked, %zu failed\n", n, failed);
    assert_int_equal(failed, 0);
}

/* --- accessors, references, files -------------------------------------------- */

static struct anchor_policy_doc *parse_ok(const char *tmpl)
{
    struct anchor_policy_doc *doc = NULL;
    struct anchor_err err;
    size_t len;
    char *text = expand(tmpl, &len);

    anchor_err_clear(&err);
    if (anchor_policy_doc_parse(&doc, text, len, &err) != 0)
        fail_msg("expected a valid document, got: %s", anchor_err_msg(&err));
    free(text);
    return doc;
}

static void test_accessors(void **state)
{
    struct anchor_policy_doc *doc;
    const struct anchor_policy *a, *b;
    const struct anchor_policy_attestor *at;
    struct anchor_x509pop_config *cfg;
    const char *provided[] = {"tpm", "x509pop"};

    (void)state;
    doc = parse_ok(
        HEAD "    - name: first\n      agentPathTemplate: /agents/{{x509_pop.serial_number}}\n"
             "      requiredAttestors:\n        - type: x509pop\n          config:\n"
             "            caCerts: |\n              @CA@\n              @CA2@\n" POLICY_X(
                 "second", LIMIT("maxIntermediates", "0") LIMIT("maxRSAKeySize", "2048")));
    assert_int_equal(anchor_policy_doc_count(doc), 2);
    a = anchor_policy_doc_get0(doc, 0);
    b = anchor_policy_doc_get0(doc, 1);
    assert_null(anchor_policy_doc_get0(doc, 2));
    assert_string_equal(anchor_policy_name(a), "first");
    assert_string_equal(anchor_policy_name(b), "second");
    assert_string_equal(anchor_policy_agent_path_template(a), "/agents/{{x509_pop.serial_number}}");
    assert_null(anchor_policy_agent_path_template(b));
    assert_non_null(anchor_policy_agent_path(a));
    assert_string_equal(anchor_template_text(anchor_policy_agent_path(a)),
                        "/agents/{{x509_pop.serial_number}}");
    assert_null(anchor_policy_agent_path(b));
    assert_ptr_equal(anchor_policy_doc_find(doc, "second"), b);
    assert_null(anchor_policy_doc_find(doc, "third"));
    assert_ptr_equal(anchor_policy_doc_first_requiring(doc, "x509pop"), a);
    assert_null(anchor_policy_doc_first_requiring(doc, "tpm"));
    assert_ptr_equal(anchor_policy_doc_first_satisfied(doc, provided, 2), a);
    assert_ptr_equal(anchor_policy_doc_first_satisfied(doc, provided + 1, 1), a);
    assert_null(anchor_policy_doc_first_satisfied(doc, provided, 1));
    assert_null(anchor_policy_doc_first_satisfied(doc, NULL, 0));

    assert_int_equal(anchor_policy_attestor_count(a), 1);
    assert_null(anchor_policy_attestor_get0(a, 1));
    at = anchor_policy_attestor_get0(a, 0);
    assert_ptr_equal(anchor_policy_find_attestor(a, "x509pop"), at);
    assert_null(anchor_policy_find_attestor(a, "tpm"));
    assert_string_equal(anchor_policy_attestor_type(at), "x509pop");
    cfg = anchor_policy_attestor_x509pop(at);
    assert_non_null(cfg);
    assert_int_equal(anchor_x509pop_config_ca_count(cfg), 2);
    assert_int_equal(anchor_x509pop_config_max_intermediates(cfg), 4);
    assert_int_equal(anchor_x509pop_config_max_rsa_key_size(cfg), 8192);

    cfg = anchor_policy_attestor_x509pop(anchor_policy_find_attestor(b, "x509pop"));
    assert_int_equal(anchor_x509pop_config_ca_count(cfg), 1);
    assert_int_equal(anchor_x509pop_config_max_intermediates(cfg), 0);
    assert_int_equal(anchor_x509pop_config_max_rsa_key_size(cfg), 2048);
    anchor_policy_doc_free(doc);
}

/* A reference taken on the document, or on one of its configs, outlives the
 * creator's (the server's snapshot swap). ASan checks the frees. */
static void test_references(void **state)
{
    struct anchor_policy_doc *doc = parse_ok(HEAD POLICY("p"));
    struct anchor_policy_doc *snapshot;
    struct anchor_x509pop_config *cfg;

    (void)state;
    snapshot = anchor_policy_doc_up_ref(doc);
    assert_ptr_equal(snapshot, doc);
    cfg = anchor_x509pop_config_up_ref(anchor_policy_attestor_x509pop(
        anchor_policy_attestor_get0(anchor_policy_doc_get0(doc, 0), 0)));
    anchor_policy_doc_free(doc);
    assert_string_equal(anchor_policy_name(anchor_policy_doc_get0(snapshot, 0)), "p");
    anchor_policy_doc_free(snapshot);
    assert_int_equal(anchor_x509pop_config_ca_count(cfg), 1);
    anchor_x509pop_config_free(cfg);
    anchor_policy_doc_free(NULL);
}

/* The text need not be NUL-terminated: a document cut from a larger buffer
 * parses on its own bytes only. */
static void test_not_terminated(void **state)
{
    struct anchor_policy_doc *doc = NULL;
    struct anchor_err err;
    size_t len;
    char *text = expand(HEAD POLICY("p") "garbage: [", &len);
    size_t cut = len - strlen("garbage: [");

    (void)state;
    anchor_err_clear(&err);
    assert_int_equal(anchor_policy_doc_parse(&doc, text, cut, &err), 0);
    anchor_policy_doc_free(doc);
    free(text);
}

static void test_size_limit(void **state)
{
    struct anchor_policy_doc *doc = NULL;
    struct anchor_err err;
    size_t max = ANCHOR_POLICY_MAX_DOC_BYTES;
    char *text = malloc(max + 1);

    (void)state;
    assert_non_null(text);
    /* Exactly the limit is read (and is an empty document: all comment). */
    memset(text, ' ', max + 1);
    text[0] = '#';
    anchor_err_clear(&err);
    assert_int_equal(anchor_policy_doc_parse(&doc, text, max, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "the document is empty");
    assert_int_equal(anchor_policy_doc_parse(&doc, text, max + 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "document too large (1048577 bytes, at most 1048576)");
    assert_null(doc);
    free(text);
}

static void test_nul_byte(void **state)
{
    static const char text[] = "section: Agent\0Attestation\n";
    struct anchor_policy_doc *doc = NULL;
    struct anchor_err err;

    (void)state;
    anchor_err_clear(&err);
    assert_int_equal(anchor_policy_doc_parse(&doc, text, sizeof(text) - 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "document contains a NUL byte (at byte 14)");
}

/* Many nodes: refused past the node limit, before memory grows with them. */
static void test_node_limit(void **state)
{
    struct anchor_policy_doc *doc = NULL;
    struct anchor_err err;
    size_t n = 100001, len = 0;
    char *text = malloc(n * 2 + 16);

    (void)state;
    assert_non_null(text);
    text[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        text[len++] = '1';
        text[len++] = ',';
    }
    text[len - 1] = ']';
    anchor_err_clear(&err);
    assert_int_equal(anchor_policy_doc_parse(&doc, text, len, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "line 1, column 200000: too many YAML nodes (more than 100000)");
    free(text);
}

static char *write_temp(const char *text, size_t len)
{
    char *path = strdup("/tmp/anchor-test-policy-XXXXXX");
    int fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_file(void **state)
{
    struct anchor_policy_doc *doc = NULL;
    struct anchor_err err;
    size_t len;
    char *text = expand(HEAD POLICY("p"), &len);
    char *path = write_temp(text, len);
    char expected[256];

    (void)state;
    anchor_err_clear(&err);
    assert_int_equal(anchor_policy_doc_parse_file(&doc, path, &err), 0);
    assert_int_equal(anchor_policy_doc_count(doc), 1);
    anchor_policy_doc_free(doc);
    doc = NULL;
    unlink(path);
    free(path);
    free(text);

    path = write_temp("section: x\n", 11);
    assert_int_equal(anchor_policy_doc_parse_file(&doc, path, &err), -1);
    (void)snprintf(expected, sizeof(expected),
                   "%s: section: expected \"AgentAttestation\" (got \"x\")", path);
    assert_string_equal(anchor_err_msg(&err), expected);
    unlink(path);
    free(path);

    assert_int_equal(anchor_policy_doc_parse_file(&doc, "/nonexistent/policy.yaml", &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "cannot read /nonexistent/policy.yaml: No such file or directory");
    assert_int_equal(anchor_policy_doc_parse_file(&doc, "/", &err), -1);
    assert_string_equal(anchor_err_msg(&err), "cannot read /: Is a directory");
    assert_null(doc);
}

static void test_file_too_large(void **state)
{
    struct anchor_policy_doc *doc = NULL;
    struct anchor_err err;
    size_t len = ANCHOR_POLICY_MAX_DOC_BYTES + 10;
    char *text = malloc(len);
    char *path;
    char expected[256];

    (void)state;
    assert_non_null(text);
    memset(text, '#', len);
    path = write_temp(text, len);
    anchor_err_clear(&err);
    assert_int_equal(anchor_policy_doc_parse_file(&doc, path, &err), -1);
    (void)snprintf(expected, sizeof(expected),
                   "%s: document too large (1048586 bytes, at most 1048576)", path);
    assert_string_equal(anchor_err_msg(&err), expected);
    unlink(path);
    free(path);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_references),     cmocka_unit_test(test_not_terminated),
        cmocka_unit_test(test_size_limit),     cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_node_limit),     cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_too_large),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
