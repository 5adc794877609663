/*
 * `anchorctl x509pop check`: runs the Trust Domain Server's own x509pop
 * verification on files, so that an operator can see, before rolling out a
 * certificate or a policy, what the server will say about it: the attributes
 * it would take from the certificate, or the documented message explaining
 * why it would refuse it. With --key it also plays the agent's side of the
 * challenge (the agent's signing code answers a fresh server nonce) and the
 * server's side of the proof check, over a random stand-in for the TLS
 * channel binding that a real login would use.
 */
#include "ctl.h"

#include "anchor/attrs.h"
#include "anchor/policy.h"
#include "anchor/spiffeid.h"
#include "anchor/x509pop.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char check_usage[] =
    "usage: anchorctl x509pop check --policy POLICY.yaml --cert CERT.pem\n"
    "                               [--intermediates INT.pem] [--key KEY.pem]\n"
    "                               [--trust-domain TD] [--at RFC3339-TIME]\n";

void ctl_x509pop_help(FILE *stream)
{
    fputs("anchorctl x509pop: offline checks of X.509 Proof of Possession (x509pop)\n\n", stream);
    fputs(check_usage, stream);
    fputs("\n"
          "Runs the server's x509pop verification of an agent certificate against the\n"
          "first policy of POLICY.yaml (an AgentAttestation v1 document) that requires\n"
          "x509pop, and prints the attributes the server would take from it.\n"
          "\n"
          "  --policy POLICY.yaml     AgentAttestation v1 policy document (required)\n"
          "  --cert CERT.pem          agent's leaf certificate, PEM; intermediates may\n"
          "                           follow the leaf in the same file (required)\n"
          "  --intermediates INT.pem  intermediate certificates, PEM (agent's\n"
          "                           intermediatesPath)\n"
          "  --key KEY.pem            agent's private key (PKCS#1, PKCS#8 or SEC1 PEM):\n"
          "                           also run a full challenge and proof round\n"
          "  --trust-domain TD        trust domain whose x509pop://TD/<type>/<value> URI\n"
          "                           SANs become x509_pop.san.<type> attributes\n"
          "                           (default: none)\n"
          "  --at RFC3339-TIME        verify at this time, e.g. 2025-01-01T00:00:00Z or\n"
          "                           2025-01-01T02:00:00+02:00 (default: now)\n"
          "\n"
          "On success prints one attribute a line, as the server logs them, e.g.\n"
          "  x509pop:x509_pop.serial_number=\"3a7f2c1b\"\n"
          "then \"proof of possession: ok\" when --key was given, and exits 0.\n"
          "On failure prints the server's message on stderr, e.g.\n"
          "  anchorctl: certificate chain verification failed: certificate has expired\n"
          "and exits 1. A wrong command line exits 2.\n",
          stream);
}

static int usage_error(const char *msg)
{
    ctl_error("%s", msg);
    fputs(check_usage, stderr);
    return CTL_EXIT_USAGE;
}

/* The challenge and proof round: the server draws its nonce, the agent's
 * code signs it, the server's code frames and verifies the answer. */
static int prove_round(const struct anchor_x509pop_verified *v, const char *cert,
                       const char *intermediates, const char *key, struct anchor_err *err)
{
    int rc = -1;
    struct anchor_x509pop_credential *cred = NULL;
    uint8_t server_nonce[ANCHOR_X509POP_NONCE_LEN];
    uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN];
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    struct anchor_x509pop_proof proof;

    if (anchor_x509pop_credential_load(&cred, cert, intermediates, key, err) != 0)
        goto out;
    /* A real login binds the proof to its TLS connection (RFC 9266); here
     * any fresh 32 bytes stand in for that value. */
    if (anchor_x509pop_nonce(server_nonce, err) != 0 || anchor_x509pop_nonce(exporter, err) != 0)
        goto out;
    if (anchor_x509pop_credential_prove(cred, server_nonce, exporter, &wire, &wire_len, err) != 0)
        goto out;
    if (anchor_x509pop_proof_parse(&proof, wire, wire_len, err) != 0)
        goto out;
    if (anchor_x509pop_proof_verify(v, server_nonce, &proof, exporter, err) != 0)
        goto out;
    rc = 0;
out:
    free(wire);
    anchor_x509pop_credential_free(cred);
    return rc;
}

/* Prints every attribute in the log form; fails only when memory is short. */
static int print_attrs(const struct anchor_attrs *attrs, struct anchor_err *err)
{
    for (size_t i = 0; i < attrs->n; i++) {
        char *line = NULL;

        if (anchor_attr_format(&line, ANCHOR_X509POP_TYPE, &attrs->v[i], err) != 0)
            return -1;
        /* Values come from the agent's certificate: a common name holding
         * a newline must not forge a second attribute line. */
        ctl_put_line(stdout, line);
        free(line);
    }
    return 0;
}

static int run_check(const char *policy_path, const char *cert, const char *intermediates,
                     const char *key, const char *trust_domain, time_t at)
{
    int status = CTL_EXIT_FAIL;
    struct anchor_err err;
    struct anchor_policy_doc *doc = NULL;
    const struct anchor_policy *policy;
    const struct anchor_x509pop_config *cfg;
    uint8_t *evidence = NULL;
    size_t evidence_len = 0;
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;

    anchor_err_clear(&err);
    if (anchor_policy_doc_parse_file(&doc, policy_path, &err) != 0)
        goto fail;
    policy = anchor_policy_doc_first_requiring(doc, ANCHOR_X509POP_TYPE);
    if (policy == NULL) {
        anchor_err_set(&err,
                       "attestation policy not found or no matching policy: "
                       "no policy in %s requires x509pop",
                       policy_path);
        goto fail;
    }
    cfg = anchor_policy_attestor_x509pop(anchor_policy_find_attestor(policy, ANCHOR_X509POP_TYPE));
    /* The server's view: the chain as the agent would send it. */
    if (anchor_x509pop_evidence_from_files(&evidence, &evidence_len, cert, intermediates, &err) !=
            0 ||
        anchor_x509pop_evidence_parse(&ev, evidence, evidence_len, &err) != 0 ||
        anchor_x509pop_verify(&v, cfg, ev, trust_domain, at, &err) != 0)
        goto fail;
    if (key != NULL && prove_round(v, cert, intermediates, key, &err) != 0)
        goto fail;
    /* Nothing is printed before every check passed. */
    if (print_attrs(anchor_x509pop_verified_attrs(v), &err) != 0)
        goto fail;
    if (key != NULL)
        puts("proof of possession: ok");
    if (fflush(stdout) != 0) {
        anchor_err_set(&err, "cannot write the output");
        goto fail;
    }
    status = CTL_EXIT_OK;
    goto out;
fail:
    ctl_error("%s", anchor_err_msg(&err));
out:
    anchor_x509pop_verified_free(v);
    anchor_x509pop_evidence_free(ev);
    free(evidence);
    anchor_policy_doc_free(doc);
    return status;
}

static int cmd_check(int argc, char **argv)
{
    enum { POLICY, CERT, INTERMEDIATES, KEY, TRUST_DOMAIN, AT, NFLAGS };
    struct ctl_flag flags[NFLAGS] = {
        [POLICY] = {"--policy", "POLICY.yaml", NULL, 0},
        [CERT] = {"--cert", "CERT.pem", NULL, 0},
        [INTERMEDIATES] = {"--intermediates", "INT.pem", NULL, 0},
        [KEY] = {"--key", "KEY.pem", NULL, 0},
        [TRUST_DOMAIN] = {"--trust-domain", "TD", NULL, 0},
        [AT] = {"--at", "RFC3339-TIME", NULL, 0},
    };
    const char *pos[1];
    size_t npos = 0;
    int help = 0;
    char msg[512];
    time_t at = time(NULL);
    struct anchor_err err;

    if (ctl_parse_args(argc, argv, flags, NFLAGS, pos, 0, &npos, &help, msg, sizeof(msg)) != 0)
        return usage_error(msg);
    if (help) {
        ctl_x509pop_help(stdout);
        return CTL_EXIT_OK;
    }
    if (!flags[POLICY].seen)
        return usage_error("--policy is required");
    if (!flags[CERT].seen)
        return usage_error("--cert is required");
    if (flags[TRUST_DOMAIN].seen) {
        const char *td = flags[TRUST_DOMAIN].value;

        anchor_err_clear(&err);
        if (anchor_trust_domain_validate(td, strlen(td), &err) != 0) {
            (void)snprintf(msg, sizeof(msg), "--trust-domain: %s", anchor_err_msg(&err));
            return usage_error(msg);
        }
    }
    if (flags[AT].seen && ctl_parse_rfc3339(flags[AT].value, &at) != 0) {
        (void)snprintf(msg, sizeof(msg),
                       "--at: not an RFC 3339 time (got \"%.64s\"), e.g. 2025-01-01T00:00:00Z",
                       flags[AT].value);
        return usage_error(msg);
    }
    return run_check(flags[POLICY].value, flags[CERT].value, flags[INTERMEDIATES].value,
                     flags[KEY].value, flags[TRUST_DOMAIN].value, at);
}

int ctl_x509pop_main(int argc, char **argv)
{
    char msg[256];

    if (argc == 0)
        return usage_error("x509pop: missing command (check)");
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0 ||
        strcmp(argv[0], "help") == 0) {
        ctl_x509pop_help(stdout);
        return CTL_EXIT_OK;
    }
    if (strcmp(argv[0], "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    (void)snprintf(msg, sizeof(msg), "x509pop: unknown command \"%.64s\"", argv[0]);
    return usage_error(msg);
}
