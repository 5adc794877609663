/*
 * The one signature scheme pair of x509pop proofs, as a raw primitive that
 * the proof code and the Wycheproof harness share: RSA keys use RSASSA-PSS
 * with SHA-256, MGF1-SHA-256 and a salt of exactly 32 bytes (RFC 8017 8.1;
 * OpenSSL checks the recovered salt length against the one set); EC keys on
 * P-256, P-384 and P-521 use ECDSA with SHA-256 and a DER signature, which
 * OpenSSL requires to be canonical DER. Every other key is refused.
 */
#include "x509pop/internal.h"
#include "util/check.h"

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <stdlib.h>

#define SIG_FAILED   ANCHOR__X509POP_SIG_FAILED
#define PSS_SALT_LEN 32

/* Sets the scheme parameters on a signing or verifying context. */
static int set_scheme(EVP_PKEY_CTX *pctx, const EVP_PKEY *key)
{
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        return 0;
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, PSS_SALT_LEN) <= 0)
        return -1;
    return 0;
}

int anchor__x509pop_sig_verify(EVP_PKEY *key, const uint8_t *msg, size_t msg_len,
                               const uint8_t *sig, size_t sig_len, struct anchor_err *err)
{
    int rc = -1;
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;

    ENSURE(key != NULL, err, SIG_FAILED ": no key");
    if (anchor__key_check_supported(key, err) != 0) {
        anchor_err_prefix(err, SIG_FAILED);
        goto out;
    }
    ENSURE(sig != NULL && sig_len > 0, err, SIG_FAILED ": empty signature");
    ENSURE(sig_len <= ANCHOR_X509POP_MAX_SIGNATURE_BYTES, err, SIG_FAILED ": signature too long");
    mctx = EVP_MD_CTX_new();
    ENSURE_OSSL(mctx != NULL, err, "out of memory");
    ENSURE_OSSL(EVP_DigestVerifyInit(mctx, &pctx, EVP_sha256(), NULL, key) == 1 &&
                    set_scheme(pctx, key) == 0,
                err, SIG_FAILED);
    ENSURE(EVP_DigestVerify(mctx, sig, sig_len, msg, msg_len) == 1, err, SIG_FAILED);
    rc = 0;
out:
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
    return rc;
}

int anchor__x509pop_sign(EVP_PKEY *key, const uint8_t *msg, size_t msg_len, uint8_t **out,
                         size_t *out_len, struct anchor_err *err)
{
    int rc = -1;
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *sig = NULL;
    size_t len = 0;

    TRY(anchor__key_check_supported(key, err));
    mctx = EVP_MD_CTX_new();
    ENSURE_OSSL(mctx != NULL, err, "out of memory");
    ENSURE_OSSL(EVP_DigestSignInit(mctx, &pctx, EVP_sha256(), NULL, key) == 1 &&
                    set_scheme(pctx, key) == 0,
                err, "cannot sign");
    ENSURE_OSSL(EVP_DigestSign(mctx, NULL, &len, msg, msg_len) == 1, err, "cannot sign");
    sig = malloc(len);
    ENSURE(sig != NULL, err, "out of memory");
    ENSURE_OSSL(EVP_DigestSign(mctx, sig, &len, msg, msg_len) == 1, err, "cannot sign");
    *out = sig;
    *out_len = len;
    sig = NULL;
    rc = 0;
out:
    free(sig);
    EVP_MD_CTX_free(mctx);
    return rc;
}
