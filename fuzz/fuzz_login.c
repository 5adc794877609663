/*
 * Fuzz target: what anchor-server parses of a Login stream (src/server/
 * login.c, login_attest.c and issue.c, which fuzz targets cannot link).
 * Input is one serialized LoginRequest, as a DATA frame of the Login call
 * carries it, at most the server's 2 MiB receive limit. It is unpacked with
 * protobuf-c through a bounded allocator that counts its blocks (all must be
 * freed), and then:
 *
 *   LoginStart   the SVID key as the server reads it (exactly one of
 *                public_key and csr: anchor_svid_request_parse_spki or
 *                _parse_csr), then for each attestation payload (at most 16,
 *                like the server) the evidence is framed and, when it frames,
 *                verified against a fixed x509pop configuration (the fuzz
 *                root of fuzz/corpus/x509pop_evidence) for trust domain
 *                example.org at a fixed time; a verified chain's attributes
 *                are merged and formatted as for the log, and the agent's
 *                SPIFFE ID is made both ways login_agent_id does (the
 *                default /agents/x509pop/<fingerprint> and agent path
 *                templates);
 *   LoginProofs  each response payload is framed as a proof and verified for
 *                a fixed server nonce and channel binding against an EC P-256
 *                and an RSA 2048 leaf under that root (the keys that signed
 *                the fuzz/corpus/x509pop_proof seeds).
 *
 * The same bytes are also unpacked as a bare LoginStart and a bare
 * LoginProofs, so each variant's decoder sees every input. The target
 * parses every payload whatever its type and the cluster id say: the server
 * gates on those with plain comparisons before it parses anything.
 *
 * Seeds (fuzz/corpus/login): real LoginRequest messages made from the
 * x509pop_evidence, x509pop_proof and csr seeds, and hostile ones.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.pb-c.h"
#include "anchor/attrs.h"
#include "anchor/ca.h"
#include "anchor/spiffeid.h"
#include "anchor/template.h"
#include "anchor/x509pop.h"
#include "crypto/crypto.h"
#include "fixtures.h"

/* SERVER_MAX_RECV_MESSAGE (src/server/main.c) and the server's attestor
 * limit (MAX_ATTESTORS, src/server/login.h). */
#define FUZZ_MAX_MESSAGE   ((size_t)2 * 1024 * 1024)
#define FUZZ_MAX_ATTESTORS 16
/* What protobuf-c may hold at once for one input. */
#define FUZZ_ALLOC_BUDGET ((size_t)64 * 1024 * 1024)

#define FUZZ_TRUST_DOMAIN "example.org"

/* --- fixtures, built once ---------------------------------------------------- */

static struct anchor_x509pop_config *config(void)
{
    static struct anchor_x509pop_config *cfg;
    struct anchor_err err;

    if (cfg == NULL &&
        anchor_x509pop_config_new(&cfg, ROOT_PEM, sizeof(ROOT_PEM) - 1, 4, 8192, &err) != 0)
        abort();
    return cfg;
}

static struct anchor_x509pop_verified *verified_fixture(const char *pem, size_t len)
{
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    STACK_OF(X509) *certs = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    struct anchor_err err;

    if (anchor__certs_from_pem(&certs, &der, &der_len, pem, len, "fixture", &err) != 0 ||
        anchor_x509pop_evidence_parse(&ev, der, der_len, &err) != 0 ||
        anchor_x509pop_verify(&v, config(), ev, NULL, FUZZ_TIME, &err) != 0)
        abort();
    sk_X509_pop_free(certs, X509_free);
    free(der);
    anchor_x509pop_evidence_free(ev);
    return v;
}

/* Agent path templates over the attributes x509pop gives (docs/identities.md). */
static const char *const TEMPLATES[] = {
    "/agents/{{x509_pop.subject.common_name}}/{{x509_pop.serial_number}}",
    "/region/{{ x509_pop.san.region }}/{{x509_pop.san.environment}}",
};
#define N_TEMPLATES (sizeof(TEMPLATES) / sizeof(TEMPLATES[0]))

static const struct anchor_template *agent_path(size_t i)
{
    static struct anchor_template *t[N_TEMPLATES];
    struct anchor_err err;

    if (t[i] == NULL &&
        anchor_template_compile_path(&t[i], TEMPLATES[i], strlen(TEMPLATES[i]), &err) != 0)
        abort();
    return t[i];
}

/* --- a bounded protobuf-c allocator ------------------------------------------ */

struct budget {
    size_t bytes;  /* held now */
    size_t blocks; /* held now */
};

static void *budget_alloc(void *data, size_t size)
{
    struct budget *b = data;
    max_align_t *p;

    if (size > FUZZ_ALLOC_BUDGET - b->bytes)
        return NULL;
    p = malloc(sizeof(*p) + size);
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof(size));
    b->bytes += size;
    b->blocks++;
    return p + 1;
}

static void budget_free(void *data, void *ptr)
{
    struct budget *b = data;
    max_align_t *p;
    size_t size;

    if (ptr == NULL)
        return;
    p = (max_align_t *)ptr - 1;
    memcpy(&size, p, sizeof(size));
    b->bytes -= size;
    b->blocks--;
    free(p);
}

/* --- what the server does with each step -------------------------------------- */

/* server_key_request_parse (src/server/issue.c). */
static void svid_key(const ProtobufCBinaryData *pk, const ProtobufCBinaryData *csr)
{
    struct anchor_svid_request *req = NULL;
    struct anchor_err err;
    int rc;

    if ((pk->len == 0) == (csr->len == 0))
        return;
    if (pk->len != 0)
        rc = anchor_svid_request_parse_spki(&req, pk->data, pk->len, &err);
    else
        rc = anchor_svid_request_parse_csr(&req, csr->data, csr->len, &err);
    if (rc == 0 && anchor_svid_request_get0_key(req) == NULL)
        abort();
    anchor_svid_request_free(req);
}

/* login_collect_attrs and login_agent_id (src/server/login_attest.c). */
static void attributes_and_id(const struct anchor_x509pop_verified *v)
{
    const struct anchor_attrs *va = anchor_x509pop_verified_attrs(v);
    struct anchor_attrs attrs;
    struct anchor_spiffeid *id = NULL;
    struct anchor_err err;
    char path[128];

    anchor_attrs_init(&attrs);
    for (size_t i = 0; i < va->n; i++) {
        char *line = NULL;
        if (anchor_attrs_set(&attrs, va->v[i].name, va->v[i].value, &err) != 0)
            abort();
        if (anchor_attr_format(&line, ANCHOR_X509POP_TYPE, &va->v[i], &err) == 0)
            free(line);
    }
    (void)snprintf(path, sizeof(path), "/agents/%s/%s", ANCHOR_X509POP_TYPE,
                   anchor_x509pop_verified_fingerprint(v));
    if (anchor_spiffeid_from_path(&id, FUZZ_TRUST_DOMAIN, path, &err) != 0)
        abort();
    anchor_spiffeid_free(id);
    for (size_t i = 0; i < N_TEMPLATES; i++) {
        id = NULL;
        if (anchor_template_render_spiffeid(&id, agent_path(i), FUZZ_TRUST_DOMAIN, &attrs, &err) ==
            0)
            anchor_spiffeid_free(id);
    }
    anchor_attrs_cleanup(&attrs);
}

/* on_start (src/server/login.c) and run_attestor (login_attest.c). */
static void login_start(const Anchor__Agent__V1__LoginStart *st)
{
    if (st->n_attestation_data > FUZZ_MAX_ATTESTORS)
        return;
    svid_key(&st->public_key, &st->csr);
    for (size_t i = 0; i < st->n_attestation_data; i++) {
        const ProtobufCBinaryData *p = &st->attestation_data[i]->payload;
        struct anchor_x509pop_evidence *ev = NULL;
        struct anchor_x509pop_verified *v = NULL;
        struct anchor_err err;

        if (anchor_x509pop_evidence_parse(&ev, p->data, p->len, &err) == 0 &&
            anchor_x509pop_verify(&v, config(), ev, FUZZ_TRUST_DOMAIN, FUZZ_TIME, &err) == 0)
            attributes_and_id(v);
        anchor_x509pop_verified_free(v);
        anchor_x509pop_evidence_free(ev);
    }
}

/* login_check_proofs (src/server/login_attest.c). */
static void login_proofs(const Anchor__Agent__V1__LoginProofs *pr)
{
    static struct anchor_x509pop_verified *ec, *rsa;
    static const uint8_t server_nonce[ANCHOR_X509POP_NONCE_LEN] = {
        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11};
    static const uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN] = {
        0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
        0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
        0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22};

    if (ec == NULL) {
        ec = verified_fixture(EC_CHAIN_PEM, sizeof(EC_CHAIN_PEM) - 1);
        rsa = verified_fixture(RSA_CHAIN_PEM, sizeof(RSA_CHAIN_PEM) - 1);
    }
    for (size_t i = 0; i < pr->n_responses; i++) {
        const ProtobufCBinaryData *p = &pr->responses[i]->payload;
        struct anchor_x509pop_proof proof;
        struct anchor_err err;
        int ok_ec, ok_rsa;

        if (anchor_x509pop_proof_parse(&proof, p->data, p->len, &err) != 0)
            continue;
        ok_ec = anchor_x509pop_proof_verify(ec, server_nonce, &proof, exporter, &err) == 0;
        ok_rsa = anchor_x509pop_proof_verify(rsa, server_nonce, &proof, exporter, &err) == 0;
        /* One signature cannot be valid under both keys. */
        if (ok_ec && ok_rsa)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct budget b = {0, 0};
    ProtobufCAllocator alloc = {budget_alloc, budget_free, &b};
    Anchor__Agent__V1__LoginRequest *req;
    Anchor__Agent__V1__LoginStart *st;
    Anchor__Agent__V1__LoginProofs *pr;

    if (size > FUZZ_MAX_MESSAGE)
        return 0;
    /* on_message (src/server/login.c). */
    req = anchor__agent__v1__login_request__unpack(&alloc, size, data);
    if (req != NULL) {
        if (req->step_case == ANCHOR__AGENT__V1__LOGIN_REQUEST__STEP_START)
            login_start(req->start);
        else if (req->step_case == ANCHOR__AGENT__V1__LOGIN_REQUEST__STEP_PROOFS)
            login_proofs(req->proofs);
        anchor__agent__v1__login_request__free_unpacked(req, &alloc);
    }
    st = anchor__agent__v1__login_start__unpack(&alloc, size, data);
    if (st != NULL) {
        login_start(st);
        anchor__agent__v1__login_start__free_unpacked(st, &alloc);
    }
    pr = anchor__agent__v1__login_proofs__unpack(&alloc, size, data);
    if (pr != NULL) {
        login_proofs(pr);
        anchor__agent__v1__login_proofs__free_unpacked(pr, &alloc);
    }
    /* Every block protobuf-c took, on success or failure, is back. */
    if (b.blocks != 0 || b.bytes != 0)
        abort();
    return 0;
}
