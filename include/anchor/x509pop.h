/*
 * X.509 Proof of Possession (x509pop): the attestation engine.
 *
 * Server side, per configuration snapshot:
 *   anchor_x509pop_config_new()   parses caCerts once into a ready trust store
 * Server side, per login:
 *   anchor_x509pop_evidence_parse()  frames the agent's chain (DER, leaf first)
 *   anchor_x509pop_verify()          the checks of DESIGN.md "x509pop, precisely",
 *                                    in order, and the attributes of the chain
 *   anchor_x509pop_nonce()           the server's 32-byte challenge
 *   anchor_x509pop_proof_parse()     frames the agent's answer
 *   anchor_x509pop_proof_verify()    checks the signature with the leaf's key
 * Agent side:
 *   anchor_x509pop_credential_load() certificate, intermediates and key files
 *   anchor_x509pop_credential_evidence() / _prove()
 *
 * Wire forms (the payloads carried as opaque bytes by the Login messages):
 *   evidence: the DER certificates concatenated, leaf first, nothing else;
 *   proof:    u16be len || agent nonce || u16be len || signature, nothing else.
 *
 * The signed message is SHA-256 over
 *   "anchor x509pop v1" || server_nonce(32) || agent_nonce(32) || exporter(32)
 * where exporter is the RFC 9266 tls-exporter channel binding of the TLS
 * connection. RSA keys sign with RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32);
 * ECDSA keys (P-256, P-384, P-521) with an ASN.1 DER signature.
 *
 * Error messages begin with the documented phrases (docs/troubleshooting.md):
 *   certificate chain verification failed: <detail>
 *   certificate does not include digitalSignature key usage
 *   unsupported key type <NAME>
 *   failed to verify signature[: <detail>]
 *   private key does not match the certificate
 *   caCerts is required / could not parse any PEM certificates
 */
#ifndef ANCHOR_X509POP_H
#define ANCHOR_X509POP_H

#include <stdint.h>
#include <time.h>

#include "anchor/attrs.h"
#include "anchor/common.h"

#define ANCHOR_X509POP_TYPE                      "x509pop"
#define ANCHOR_X509POP_NONCE_LEN                 32
#define ANCHOR_X509POP_EXPORTER_LEN              32
#define ANCHOR_X509POP_SIGNED_LABEL              "anchor x509pop v1"
#define ANCHOR_X509POP_DEFAULT_MAX_INTERMEDIATES 4
#define ANCHOR_X509POP_DEFAULT_MAX_RSA_KEY_SIZE  8192
/* Bounds on untrusted input, checked before any parsing. */
#define ANCHOR_X509POP_MAX_CERT_BYTES      (64 * 1024)
#define ANCHOR_X509POP_MAX_EVIDENCE_BYTES  (1024 * 1024)
#define ANCHOR_X509POP_MAX_SIGNATURE_BYTES 2048

/* --- server: configuration ------------------------------------------------ */

struct anchor_x509pop_config;

/* Builds the immutable x509pop configuration of one policy: caCerts (PEM
 * text, one or more certificates, each must be a CA certificate) parsed once
 * into a trust store, plus the limits. max_intermediates >= 0,
 * max_rsa_key_size > 0. The result has one reference; see _up_ref/_free. */
ANCHOR_API ANCHOR_WUR int anchor_x509pop_config_new(struct anchor_x509pop_config **out,
                                                    const char *ca_pem, size_t ca_pem_len,
                                                    long max_intermediates, long max_rsa_key_size,
                                                    struct anchor_err *err);
/* Takes another reference and returns cfg. Thread-safe. */
ANCHOR_API struct anchor_x509pop_config *
anchor_x509pop_config_up_ref(struct anchor_x509pop_config *cfg);
/* Drops one reference; frees on the last. Accepts NULL. */
ANCHOR_API void anchor_x509pop_config_free(struct anchor_x509pop_config *cfg);
/* The limits and the number of caCerts certificates the configuration was
 * built with. */
ANCHOR_API long anchor_x509pop_config_max_intermediates(const struct anchor_x509pop_config *cfg);
ANCHOR_API long anchor_x509pop_config_max_rsa_key_size(const struct anchor_x509pop_config *cfg);
ANCHOR_API size_t anchor_x509pop_config_ca_count(const struct anchor_x509pop_config *cfg);

/* --- server: evidence and verification ------------------------------------ */

struct anchor_x509pop_evidence;

/* Frames the evidence wire form into its certificates (DER TLV headers only;
 * no X.509 parsing happens here). Refuses empty input, more than
 * ANCHOR_X509POP_MAX_EVIDENCE_BYTES, an element that is not a DER SEQUENCE,
 * a certificate over ANCHOR_X509POP_MAX_CERT_BYTES, and trailing bytes. */
ANCHOR_API ANCHOR_WUR int anchor_x509pop_evidence_parse(struct anchor_x509pop_evidence **out,
                                                        const uint8_t *buf, size_t len,
                                                        struct anchor_err *err);
/* Loads the chain an agent would present, strictly, without its key: the
 * certificate file (leaf first; intermediates may follow it) and an optional
 * intermediates file (NULL: none), each PEM holding only CERTIFICATE blocks.
 * Writes the evidence wire form into a new buffer the caller frees with
 * free(). Used by `anchorctl x509pop check`. */
ANCHOR_API ANCHOR_WUR int anchor_x509pop_evidence_from_files(uint8_t **out, size_t *out_len,
                                                             const char *cert_path,
                                                             const char *intermediates_path,
                                                             struct anchor_err *err);
/* Number of certificates (leaf + intermediates). */
ANCHOR_API size_t anchor_x509pop_evidence_count(const struct anchor_x509pop_evidence *ev);
/* Frees the result of anchor_x509pop_evidence_parse. Accepts NULL. */
ANCHOR_API void anchor_x509pop_evidence_free(struct anchor_x509pop_evidence *ev);

struct anchor_x509pop_verified;

/* Runs the server's checks in order (DESIGN.md): intermediate count, RSA
 * sizes, chain verification against cfg's anchors at time `at`, leaf
 * digitalSignature, leaf key type; then takes the attributes from the
 * verified chain. trust_domain may be NULL: no x509_pop.san.* attributes. */
ANCHOR_API ANCHOR_WUR int anchor_x509pop_verify(struct anchor_x509pop_verified **out,
                                                const struct anchor_x509pop_config *cfg,
                                                const struct anchor_x509pop_evidence *ev,
                                                const char *trust_domain, time_t at,
                                                struct anchor_err *err);
/* The attributes, in the order: common_name, serial_number, ca.* (chain order
 * from the first intermediate to the anchor), san.* (SAN order). Borrowed. */
ANCHOR_API const struct anchor_attrs *
anchor_x509pop_verified_attrs(const struct anchor_x509pop_verified *v);
/* Lowercase hex SHA-1 of the leaf's DER (40 characters). Borrowed. */
ANCHOR_API const char *anchor_x509pop_verified_fingerprint(const struct anchor_x509pop_verified *v);
/* A one-line description of the verified leaf for operators, e.g.
 *   subject="CN=node-1" issuer="CN=Intermediate" key=EC P-256
 *   not_after=2027-01-01T00:00:00Z chain=3
 * (chain: certificates of the verified path, anchor included), in a new
 * string the caller frees with free(). Not needed per login. */
ANCHOR_API ANCHOR_WUR int anchor_x509pop_verified_describe(const struct anchor_x509pop_verified *v,
                                                           char **out, struct anchor_err *err);
/* Frees the result of anchor_x509pop_verify. Accepts NULL. */
ANCHOR_API void anchor_x509pop_verified_free(struct anchor_x509pop_verified *v);

/* --- challenge and proof --------------------------------------------------- */

/* Fills nonce with 32 bytes from the CSPRNG. */
ANCHOR_API ANCHOR_WUR int anchor_x509pop_nonce(uint8_t nonce[ANCHOR_X509POP_NONCE_LEN],
                                               struct anchor_err *err);

/* A framed proof: views into the buffer given to _parse. */
struct anchor_x509pop_proof {
    const uint8_t *agent_nonce;
    size_t agent_nonce_len;
    const uint8_t *signature;
    size_t signature_len;
};

/* Frames the proof wire form. Exact: lengths must match, no trailing bytes,
 * signature at most ANCHOR_X509POP_MAX_SIGNATURE_BYTES. */
ANCHOR_API ANCHOR_WUR int anchor_x509pop_proof_parse(struct anchor_x509pop_proof *out,
                                                     const uint8_t *buf, size_t len,
                                                     struct anchor_err *err);
/* Encodes a proof into a new buffer the caller frees with free(). */
ANCHOR_API ANCHOR_WUR int anchor_x509pop_proof_encode(uint8_t **out, size_t *out_len,
                                                      const struct anchor_x509pop_proof *proof,
                                                      struct anchor_err *err);

/* Verifies the agent's proof for the challenge server_nonce on the connection
 * whose channel binding is exporter. Refuses an agent nonce that is missing,
 * not 32 bytes, or equal to the server nonce. Failure: "failed to verify
 * signature" with a detail. */
ANCHOR_API ANCHOR_WUR int anchor_x509pop_proof_verify(
    const struct anchor_x509pop_verified *v, const uint8_t server_nonce[ANCHOR_X509POP_NONCE_LEN],
    const struct anchor_x509pop_proof *proof, const uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN],
    struct anchor_err *err);

/* --- agent: credential ------------------------------------------------------ */

struct anchor_x509pop_credential;

/* Loads the agent's leaf certificate (the file may carry intermediates after
 * the leaf), optional intermediates file (NULL: none) and private key (PEM:
 * PKCS#1, PKCS#8 or SEC1). Refuses a key that does not match the leaf, a leaf
 * without digitalSignature, and keys other than RSA / ECDSA P-256/384/521. */
ANCHOR_API ANCHOR_WUR int anchor_x509pop_credential_load(struct anchor_x509pop_credential **out,
                                                         const char *cert_path,
                                                         const char *intermediates_path,
                                                         const char *key_path,
                                                         struct anchor_err *err);
/* The evidence wire form of the credential's chain, in a new buffer the
 * caller frees with free(). */
ANCHOR_API ANCHOR_WUR int
anchor_x509pop_credential_evidence(const struct anchor_x509pop_credential *cred, uint8_t **out,
                                   size_t *out_len, struct anchor_err *err);
/* Answers a challenge: draws a fresh agent nonce, signs, and returns the
 * proof wire form in a new buffer the caller frees with free(). */
ANCHOR_API ANCHOR_WUR int
anchor_x509pop_credential_prove(const struct anchor_x509pop_credential *cred,
                                const uint8_t server_nonce[ANCHOR_X509POP_NONCE_LEN],
                                const uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN], uint8_t **out,
                                size_t *out_len, struct anchor_err *err);
/* Frees the credential (the private key with it). Accepts NULL. */
ANCHOR_API void anchor_x509pop_credential_free(struct anchor_x509pop_credential *cred);

#endif
