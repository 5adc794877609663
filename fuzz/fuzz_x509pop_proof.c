/*
 * Fuzz target: the proof decoder and verifier. Input is the proof wire form
 * (u16be len || agent nonce || u16be len || signature); when it frames, it
 * is verified, for a fixed challenge and channel binding, against an EC
 * P-256 leaf and an RSA 2048 leaf verified at start-up from embedded test
 * chains. Seeds (fuzz/corpus/x509pop_proof) are real proofs by those keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/x509pop.h"
#include "crypto/crypto.h"
#include "fixtures.h"

static struct anchor_x509pop_verified *verified(const char *pem, size_t len)
{
    struct anchor_x509pop_config *cfg = NULL;
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    STACK_OF(X509) *certs = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    struct anchor_err err;

    if (anchor_x509pop_config_new(&cfg, ROOT_PEM, sizeof(ROOT_PEM) - 1, 4, 8192, &err) != 0 ||
        anchor__certs_from_pem(&certs, &der, &der_len, pem, len, "fixture", &err) != 0 ||
        anchor_x509pop_evidence_parse(&ev, der, der_len, &err) != 0 ||
        anchor_x509pop_verify(&v, cfg, ev, NULL, FUZZ_TIME, &err) != 0)
        abort();
    sk_X509_pop_free(certs, X509_free);
    free(der);
    anchor_x509pop_evidence_free(ev);
    anchor_x509pop_config_free(cfg);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
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
    struct anchor_x509pop_proof proof;
    struct anchor_err err;
    uint8_t *again = NULL;
    size_t again_len = 0;
    int ok_ec, ok_rsa;

    if (ec == NULL) {
        ec = verified(EC_CHAIN_PEM, sizeof(EC_CHAIN_PEM) - 1);
        rsa = verified(RSA_CHAIN_PEM, sizeof(RSA_CHAIN_PEM) - 1);
    }
    if (anchor_x509pop_proof_parse(&proof, data, size, &err) != 0)
        return 0;
    /* Encoding what was parsed gives back the input, byte for byte. */
    if (anchor_x509pop_proof_encode(&again, &again_len, &proof, &err) != 0 || again_len != size ||
        memcmp(again, data, size) != 0)
        abort();
    free(again);
    ok_ec = anchor_x509pop_proof_verify(ec, server_nonce, &proof, exporter, &err) == 0;
    ok_rsa = anchor_x509pop_proof_verify(rsa, server_nonce, &proof, exporter, &err) == 0;
    /* One signature cannot be valid under both keys. */
    if (ok_ec && ok_rsa)
        abort();
    return 0;
}
