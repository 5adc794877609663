/*
 * The agent's side: its credential (leaf, intermediates, private key) loaded
 * strictly from files, the evidence it presents, and its answers to
 * challenges. The checks the server will make of the leaf (Key Usage, not a
 * CA, key type) and the key's match with the leaf are made at load time, so
 * a misconfigured node says why before it ever connects.
 */
#include "x509pop/internal.h"
#include "util/check.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

struct anchor_x509pop_credential {
    X509 *leaf;
    EVP_PKEY *key;
    uint8_t *evidence;
    size_t evidence_len;
};

int anchor_x509pop_credential_load(struct anchor_x509pop_credential **out, const char *cert_path,
                                   const char *intermediates_path, const char *key_path,
                                   struct anchor_err *err)
{
    int rc = -1;
    struct anchor_x509pop_credential *cred = NULL;
    STACK_OF(X509) *chain = NULL;
    struct anchor_x509pop_evidence *ev = NULL;
    char *text = NULL;
    size_t text_len = 0;

    cred = calloc(1, sizeof(*cred));
    ENSURE(cred != NULL, err, "out of memory");
    TRY(anchor__x509pop_chain_load(&chain, &cred->evidence, &cred->evidence_len, cert_path,
                                   intermediates_path, err));
    TRY(anchor_x509pop_evidence_parse(&ev, cred->evidence, cred->evidence_len, err));
    cred->leaf = sk_X509_shift(chain);
    /* The server's rules for the leaf, so a node learns of them here. */
    TRY(anchor__x509pop_check_key(cred->leaf, "certificate 1", 0, 0, err));
    TRY(anchor__x509pop_check_leaf(cred->leaf, err));
    TRY(anchor__file_read(&text, &text_len, key_path, ANCHOR__MAX_PEM_FILE_BYTES, err));
    TRY(anchor__key_from_pem(&cred->key, text, text_len, key_path, err));
    ENSURE(EVP_PKEY_eq(X509_get0_pubkey(cred->leaf), cred->key) == 1, err,
           "private key does not match the certificate");
    *out = cred;
    cred = NULL;
    rc = 0;
out:
    ERR_clear_error();
    anchor__file_free(text, text_len);
    anchor_x509pop_evidence_free(ev);
    sk_X509_pop_free(chain, X509_free);
    anchor_x509pop_credential_free(cred);
    return rc;
}

int anchor_x509pop_credential_evidence(const struct anchor_x509pop_credential *cred, uint8_t **out,
                                       size_t *out_len, struct anchor_err *err)
{
    int rc = -1;
    uint8_t *buf = malloc(cred->evidence_len);

    ENSURE(buf != NULL, err, "out of memory");
    memcpy(buf, cred->evidence, cred->evidence_len);
    *out = buf;
    *out_len = cred->evidence_len;
    rc = 0;
out:
    return rc;
}

int anchor_x509pop_credential_prove(const struct anchor_x509pop_credential *cred,
                                    const uint8_t server_nonce[ANCHOR_X509POP_NONCE_LEN],
                                    const uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN],
                                    uint8_t **out, size_t *out_len, struct anchor_err *err)
{
    int rc = -1;
    uint8_t agent_nonce[ANCHOR_X509POP_NONCE_LEN];
    uint8_t msg[ANCHOR__X509POP_SIGNED_LEN];
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    struct anchor_x509pop_proof proof;

    TRY(anchor_x509pop_nonce(agent_nonce, err));
    anchor__x509pop_signed_message(msg, server_nonce, agent_nonce, exporter);
    TRY(anchor__x509pop_sign(cred->key, msg, sizeof(msg), &sig, &sig_len, err));
    proof.agent_nonce = agent_nonce;
    proof.agent_nonce_len = sizeof(agent_nonce);
    proof.signature = sig;
    proof.signature_len = sig_len;
    TRY(anchor_x509pop_proof_encode(out, out_len, &proof, err));
    rc = 0;
out:
    free(sig);
    return rc;
}

void anchor_x509pop_credential_free(struct anchor_x509pop_credential *cred)
{
    if (cred == NULL)
        return;
    X509_free(cred->leaf);
    EVP_PKEY_free(cred->key);
    free(cred->evidence);
    free(cred);
}
