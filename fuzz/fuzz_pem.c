/*
 * Fuzz target: the strict PEM framer and everything loaded through it:
 * certificate chains (as from a certificate or intermediates file), private
 * keys (PKCS#1, PKCS#8, SEC1), and caCerts into a trust store. Input is any
 * text; seeds (fuzz/corpus/pem) are real PEM files and their damaged twins.
 */
#include <stdint.h>
#include <stdlib.h>

#include "anchor/x509pop.h"
#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct anchor__pem_blocks blocks = {NULL, 0};
    STACK_OF(X509) *certs = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    EVP_PKEY *key = NULL;
    struct anchor_x509pop_config *cfg = NULL;
    struct anchor_err err;

    if (anchor__pem_parse(&blocks, text, size, "fuzz", &err) == 0)
        anchor__pem_blocks_cleanup(&blocks);
    if (anchor__certs_from_pem(&certs, &der, &der_len, text, size, "fuzz", &err) == 0) {
        sk_X509_pop_free(certs, X509_free);
        free(der);
    }
    if (anchor__key_from_pem(&key, text, size, "fuzz", &err) == 0) {
        (void)anchor__key_check_supported(key, &err);
        EVP_PKEY_free(key);
    }
    if (anchor_x509pop_config_new(&cfg, text, size, 4, 8192, &err) == 0)
        anchor_x509pop_config_free(cfg);
    return 0;
}
