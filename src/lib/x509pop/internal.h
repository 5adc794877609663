/*
 * Internals of the x509pop engine shared between its files (config.c,
 * evidence.c, verify.c, attributes.c, uri_san.c, sig.c, proof.c,
 * credential.c) and with white-box tests (the Wycheproof harness calls
 * anchor__x509pop_sig_verify and anchor__pubkey_from_spki_der directly).
 * Not installed; names start `anchor__`.
 */
#ifndef ANCHOR_X509POP_INTERNAL_H
#define ANCHOR_X509POP_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "anchor/x509pop.h"
#include "crypto/crypto.h"

/* The phrase every chain failure begins with (docs/x509pop.md). */
#define ANCHOR__X509POP_CHAIN_FAILED "certificate chain verification failed"
#define ANCHOR__X509POP_SIG_FAILED   "failed to verify signature"
#define ANCHOR__X509POP_NO_DIGSIG    "certificate does not include digitalSignature key usage"
/* Length of the signed message: label, server nonce, agent nonce, exporter. */
#define ANCHOR__X509POP_SIGNED_LEN                                                                 \
    (sizeof(ANCHOR_X509POP_SIGNED_LABEL) - 1 + 2 * ANCHOR_X509POP_NONCE_LEN +                      \
     ANCHOR_X509POP_EXPORTER_LEN)
/* Longest URI SAN the parser looks at; longer ones are ignored. */
#define ANCHOR__X509POP_MAX_URI_LEN 2048

/* Decoded intermediates remembered per configuration (cache.c). */
#define ANCHOR__X509POP_CACHE_SIZE 64
#define ANCHOR__X509POP_HASH_LEN   32
struct anchor__x509pop_cache;

struct anchor_x509pop_config {
    atomic_long refs;
    X509_STORE *store;                   /* every caCerts certificate, each a trust anchor */
    struct anchor__x509pop_cache *cache; /* mutable behind the const config */
    long max_intermediates;
    long max_rsa_key_size;
    size_t ca_count;
};

/* One certificate of the evidence: a view into the evidence's own copy. */
struct anchor__x509pop_der {
    const uint8_t *p;
    size_t len;
};

struct anchor_x509pop_evidence {
    uint8_t *buf; /* copy of the wire form */
    size_t len;
    struct anchor__x509pop_der *certs;
    size_t count;
};

struct anchor_x509pop_verified {
    struct anchor_attrs attrs;
    char fingerprint[41];
    X509 *leaf;    /* reference to the verified leaf */
    EVP_PKEY *key; /* the leaf's public key (a reference, not a copy) */
    size_t chain_len;
};

/* The cache of decoded intermediates: new/free with the configuration;
 * _get returns a new reference or NULL; _put stores a reference to x under
 * the SHA-256 of its DER (replacing the oldest entry once full). */
int anchor__x509pop_cache_new(struct anchor__x509pop_cache **out, struct anchor_err *err);
void anchor__x509pop_cache_free(struct anchor__x509pop_cache *c);
int anchor__x509pop_der_hash(uint8_t hash[ANCHOR__X509POP_HASH_LEN], const uint8_t *der,
                             size_t len);
X509 *anchor__x509pop_cache_get(struct anchor__x509pop_cache *c,
                                const uint8_t hash[ANCHOR__X509POP_HASH_LEN]);
void anchor__x509pop_cache_put(struct anchor__x509pop_cache *c,
                               const uint8_t hash[ANCHOR__X509POP_HASH_LEN], X509 *x);
size_t anchor__x509pop_cache_count(struct anchor__x509pop_cache *c);

/* Verifies sig over msg with key, hashing msg with SHA-256: RSA keys with
 * RSASSA-PSS (MGF1-SHA-256, salt exactly 32 bytes), EC keys on P-256/384/521
 * with a DER ECDSA signature. Any other key is refused. Returns 0 when the
 * signature is valid; otherwise -1 with "failed to verify signature[: ...]". */
int anchor__x509pop_sig_verify(EVP_PKEY *key, const uint8_t *msg, size_t msg_len,
                               const uint8_t *sig, size_t sig_len, struct anchor_err *err);

/* Signs msg with the private key in the same scheme; *out is a new buffer
 * the caller frees with free(). */
int anchor__x509pop_sign(EVP_PKEY *key, const uint8_t *msg, size_t msg_len, uint8_t **out,
                         size_t *out_len, struct anchor_err *err);

/* Writes label || server_nonce || agent_nonce || exporter into out. */
void anchor__x509pop_signed_message(uint8_t out[ANCHOR__X509POP_SIGNED_LEN],
                                    const uint8_t server_nonce[ANCHOR_X509POP_NONCE_LEN],
                                    const uint8_t agent_nonce[ANCHOR_X509POP_NONCE_LEN],
                                    const uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN]);

/* The key policy of one chain certificate (`who` names it in messages):
 * RSA keys of at least 2048 bits and, when max > 0, at most max bits; CA
 * keys (ca != 0) RSA, ECDSA P-256/384/521 or Ed25519. */
int anchor__x509pop_check_key(X509 *x, const char *who, long max, int ca, struct anchor_err *err);

/* The leaf rules shared by server and agent: Key Usage present with
 * digitalSignature, not a CA, key RSA or EC P-256/384/521. */
int anchor__x509pop_check_leaf(X509 *leaf, struct anchor_err *err);

/* Serial number in the attribute form: lowercase hex of the DER content
 * octets, so an even digit count with a leading 0 where needed ("00" for
 * zero, a '-' in front of a negative serial). New string, free(). */
int anchor__x509pop_serial_hex(char **out, const ASN1_INTEGER *serial, struct anchor_err *err);

/* Adds the attributes of a verified chain (chain[0] the leaf, the last the
 * trust anchor) to attrs, in the documented order. */
int anchor__x509pop_chain_attrs(struct anchor_attrs *attrs, STACK_OF(X509) * chain,
                                const char *trust_domain, struct anchor_err *err);

/* Matches one URI SAN against x509pop://<trust_domain>/<type>/<value>.
 * Returns 1 and sets the views on a match, 0 when the SAN is to be ignored
 * (docs/x509pop.md "URI SANs" lists the rules). */
int anchor__x509pop_uri_san_match(const char *uri, size_t uri_len, const char *trust_domain,
                                  const char **type, size_t *type_len, const char **value,
                                  size_t *value_len);

/* Loads a certificate file (leaf first, intermediates may follow) and an
 * optional intermediates file into a new stack (leaf first) and the evidence
 * wire form (new buffer, free()). */
int anchor__x509pop_chain_load(STACK_OF(X509) * *out, uint8_t **out_der, size_t *out_der_len,
                               const char *cert_path, const char *intermediates_path,
                               struct anchor_err *err);

#endif
