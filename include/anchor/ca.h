/*
 * The trust domain's certificate authority, the X.509 SVIDs it signs, and the
 * trust bundle it publishes (docs/identities.md).
 *
 *   anchor_ca_open()              a self-signed root kept in a directory
 *                                 (created on first use), or an upstream CA
 *                                 given by certificate and key files
 *   anchor_svid_request_parse_*() the public key an agent asks to have
 *                                 certified (a CSR or a bare public key)
 *   anchor_ca_issue_svid()        an X.509 SVID for a SPIFFE ID and that key,
 *                                 per the SPIFFE X509-SVID standard
 *   anchor_ca_issue_server_cert() the server's own TLS certificate,
 *                                 spiffe://<trust domain>/server, with a new key
 *   anchor_bundle_*()             the roots as PEM and as a SPIFFE bundle
 *                                 (JWKS), with a sequence number
 *
 * A `struct anchor_ca` is immutable once open: any number of threads may
 * issue from it at once. Its private key never leaves it and is wiped when
 * it is freed.
 */
#ifndef ANCHOR_CA_H
#define ANCHOR_CA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "anchor/common.h"
#include "anchor/spiffeid.h"

/* --- keys ------------------------------------------------------------------ */

enum anchor_key_type {
    ANCHOR_KEY_EC_P256 = 0, /* the default */
    ANCHOR_KEY_RSA_2048 = 1,
};

/* Reads a key type name, "ec-p256" or "rsa-2048". Error:
 * `unknown key type "<name>" (expected ec-p256 or rsa-2048)`. */
ANCHOR_API ANCHOR_WUR int anchor_key_type_parse(enum anchor_key_type *out, const char *name,
                                                struct anchor_err *err);
/* "ec-p256" or "rsa-2048". */
ANCHOR_API const char *anchor_key_type_name(enum anchor_key_type type);

/* Generates a new private key of the type; the caller frees it with
 * EVP_PKEY_free. */
ANCHOR_API ANCHOR_WUR int anchor_key_generate(EVP_PKEY **out, enum anchor_key_type type,
                                              struct anchor_err *err);

/* --- the CA ---------------------------------------------------------------- */

/* Lifetime of a self-signed root made by anchor_ca_open: five years. */
#define ANCHOR_CA_DEFAULT_ROOT_TTL (5L * 365 * 24 * 3600)
/* How far notBefore of an issued certificate lies before the issuing time,
 * for peers whose clocks run a little behind. */
#define ANCHOR_CA_BACKDATE 60
/* File names inside the CA directory. */
#define ANCHOR_CA_CERT_FILE "ca-cert.pem"
#define ANCHOR_CA_KEY_FILE  "ca-key.pem"
#define ANCHOR_CA_LOCK_FILE "ca.lock"

struct anchor_ca_options {
    /* Required: the trust domain name the CA issues for. */
    const char *trust_domain;
    /* Self-signed mode: the directory holding ca-cert.pem and ca-key.pem
     * (created with mode 0700 when missing). */
    const char *dir;
    /* Self-signed mode, used only when a new root is made: its key type and
     * lifetime in seconds (0: ANCHOR_CA_DEFAULT_ROOT_TTL). */
    enum anchor_key_type key_type;
    long root_ttl;
    /* Upstream mode (instead of dir): PEM certificates, the CA's own
     * certificate first, then the intermediates up to the root; the PEM key
     * of the first; and optionally a PEM file of roots. Without a bundle file
     * the last certificate of the chain must be a self-signed root. */
    const char *upstream_cert_path;
    const char *upstream_key_path;
    const char *upstream_bundle_path;
    /* The current time; 0: time(NULL). For tests. */
    time_t now;
};

struct anchor_ca;

/* Opens the CA described by opt; the caller frees it with anchor_ca_free.
 *
 * Self-signed mode holds an exclusive lock on <dir>/ca.lock while it reads
 * or creates the files. With neither file present it makes a root (key
 * written first, each file to a temporary name, flushed, then renamed; the
 * key with mode 0600); with only the key present (an interrupted first
 * start) it makes the certificate again from that key. An existing root is
 * checked: the key file is not accessible by group or others, the key
 * matches the certificate, the certificate is a self-signed CA of this trust
 * domain and is valid now. Upstream mode checks that the key matches the
 * first certificate, that it is a CA allowed to sign certificates, and that
 * the chain verifies to a root now. Messages (docs/identities.md "CA files"):
 *   CA key <path> is accessible by group or others (mode 0644); it must be 0600
 *   CA key <path> does not match certificate <path>
 *   CA certificate <path> is for trust domain "<a>", not "<b>"
 *   CA certificate <path> expired at <time>
 *   upstream CA certificate <path> does not chain to a root: <reason>
 */
ANCHOR_API ANCHOR_WUR int
anchor_ca_open(struct anchor_ca **out, const struct anchor_ca_options *opt, struct anchor_err *err);

/* Frees the CA and wipes its key. Accepts NULL. */
ANCHOR_API void anchor_ca_free(struct anchor_ca *ca);

/* The trust domain name. Borrowed. */
ANCHOR_API const char *anchor_ca_trust_domain(const struct anchor_ca *ca);
/* The certificate that signs SVIDs (the root itself in self-signed mode).
 * Borrowed. */
ANCHOR_API X509 *anchor_ca_get0_cert(const struct anchor_ca *ca);
/* The certificates a holder of an SVID sends after its own: the CA's
 * certificate and intermediates, without the root; empty in self-signed
 * mode. Borrowed. */
ANCHOR_API STACK_OF(X509) * anchor_ca_get0_chain(const struct anchor_ca *ca);
/* The roots of the trust domain (the bundle's content). Borrowed. */
ANCHOR_API STACK_OF(X509) * anchor_ca_get0_roots(const struct anchor_ca *ca);
/* The earliest notAfter of the CA's chain: no SVID outlives it. */
ANCHOR_API time_t anchor_ca_not_after(const struct anchor_ca *ca);
/* 1 for a CA opened in upstream mode, 0 for a self-signed root. */
ANCHOR_API int anchor_ca_is_upstream(const struct anchor_ca *ca);

/* --- X.509 SVIDs ----------------------------------------------------------- */

/* Largest CSR or public key accepted, in bytes. */
#define ANCHOR_SVID_MAX_REQUEST_BYTES ((size_t)64 * 1024)
/* At most this many DNS SANs. */
#define ANCHOR_SVID_MAX_DNS_NAMES 32

struct anchor_svid_options {
    /* Lifetime in seconds, > 0; cut to the CA's notAfter. */
    long ttl;
    /* Subject; NULL: "O=anchor". An empty name makes the SAN extension
     * critical (RFC 5280 4.2.1.6). */
    const X509_NAME *subject;
    /* Optional DNS SANs, each a hostname (a leading "*." allowed). */
    const char *const *dns_names;
    size_t n_dns_names;
    /* The current time; 0: time(NULL). */
    time_t now;
};

/* An SVID request: the public key to certify, read once from what the agent
 * sent, kept both decoded (to check it) and as received (to copy it into the
 * certificate without encoding it again). */
struct anchor_svid_request;

/* Reads a PKCS#10 CSR in DER, which must be exactly len bytes and carry a
 * valid self-signature (RFC 2986: proof that the requester holds the key).
 * Only its public key is used; names and extensions in it are ignored (the
 * server decides them). The caller frees *out with
 * anchor_svid_request_free. Errors: "CSR size <n> is outside 1..65536
 * bytes", "CSR is not valid DER", "CSR signature does not verify", "EC key
 * with explicit curve parameters is not supported (use a named curve)", and
 * those of anchor_svid_key_check. */
ANCHOR_API ANCHOR_WUR int anchor_svid_request_parse_csr(struct anchor_svid_request **out,
                                                        const uint8_t *der, size_t len,
                                                        struct anchor_err *err);

/* Reads a bare SubjectPublicKeyInfo in DER (exactly len bytes). Errors:
 * "public key size <n> is outside 1..65536 bytes", "public key is not valid
 * DER", the explicit curve parameters message above, and those of
 * anchor_svid_key_check. */
ANCHOR_API ANCHOR_WUR int anchor_svid_request_parse_spki(struct anchor_svid_request **out,
                                                         const uint8_t *der, size_t len,
                                                         struct anchor_err *err);

/* The requested public key. Borrowed from req. */
ANCHOR_API EVP_PKEY *anchor_svid_request_get0_key(const struct anchor_svid_request *req);

/* Frees the request. Accepts NULL. */
ANCHOR_API void anchor_svid_request_free(struct anchor_svid_request *req);

/* Checks that key may be certified: RSA of 2048 to 8192 bits, or ECDSA on
 * P-256, P-384 or P-521. Errors: "unsupported key type <NAME>", "RSA key of
 * <n> bits is outside 2048..8192". */
ANCHOR_API ANCHOR_WUR int anchor_svid_key_check(const EVP_PKEY *key, struct anchor_err *err);

/* What the store records of an issued SVID. */
struct anchor_svid_meta {
    char serial[2 * 20 + 1]; /* lowercase hex, an even number of digits */
    time_t not_before;
    time_t not_after;
};

/* Signs a new X.509 SVID for id and the request's key (SPIFFE X509-SVID;
 * profile in docs/identities.md "SVID profile"): exactly one URI SAN (the
 * ID) plus the optional DNS SANs, basicConstraints CA:FALSE (critical),
 * keyUsage digitalSignature (+ keyEncipherment for RSA keys; critical),
 * extKeyUsage serverAuth and clientAuth, subject and authority key
 * identifiers, a random positive 128-bit serial, notBefore
 * ANCHOR_CA_BACKDATE seconds back (never before the CA's), notAfter now +
 * ttl cut to anchor_ca_not_after. The ID must be in the CA's trust domain
 * and have a path.
 *
 * This is the login path: the key is copied from the request as received,
 * and the result is the certificate's DER (*der, freed with OPENSSL_free),
 * ready to send; meta (when non-NULL) receives its serial and validity. */
ANCHOR_API ANCHOR_WUR int
anchor_ca_issue_svid(uint8_t **der, size_t *der_len, struct anchor_svid_meta *meta,
                     const struct anchor_ca *ca, const struct anchor_spiffeid *id,
                     const struct anchor_svid_request *req, const struct anchor_svid_options *opt,
                     struct anchor_err *err);

/* Like anchor_ca_issue_svid for a key given as an EVP_PKEY, giving a full
 * X509 object (the caller frees it with X509_free). Encoding the key costs
 * more than copying it; for the server's own certificate and for tools. */
ANCHOR_API ANCHOR_WUR int anchor_ca_issue_svid_x509(X509 **out, const struct anchor_ca *ca,
                                                    const struct anchor_spiffeid *id,
                                                    EVP_PKEY *pubkey,
                                                    const struct anchor_svid_options *opt,
                                                    struct anchor_err *err);

/* Makes the server's TLS certificate: a new key of key_type and an SVID for
 * spiffe://<trust domain>/server with opt's lifetime, subject and DNS names.
 * Called again before the certificate expires to rotate it. The caller
 * frees *cert (X509_free) and *key (EVP_PKEY_free). */
ANCHOR_API ANCHOR_WUR int anchor_ca_issue_server_cert(X509 **cert, EVP_PKEY **key,
                                                      const struct anchor_ca *ca,
                                                      enum anchor_key_type key_type,
                                                      const struct anchor_svid_options *opt,
                                                      struct anchor_err *err);

/* Reads the SPIFFE ID of an X.509 SVID: its one URI SAN. Errors:
 * "certificate has no URI SAN", "certificate has more than one URI SAN",
 * and those of anchor_spiffeid_parse. The caller frees *out. */
ANCHOR_API ANCHOR_WUR int anchor_svid_get_spiffeid(struct anchor_spiffeid **out, const X509 *cert,
                                                   struct anchor_err *err);

/* --- trust bundles --------------------------------------------------------- */

/* Largest bundle document parsed, in bytes; most roots in one bundle. */
#define ANCHOR_BUNDLE_MAX_BYTES ((size_t)1024 * 1024)
#define ANCHOR_BUNDLE_MAX_ROOTS 64

struct anchor_bundle;

/* Makes a bundle of the trust domain from roots (each gets a new reference;
 * at least one), a sequence number and a refresh hint in seconds (0: none).
 * The caller frees *out with anchor_bundle_free. */
ANCHOR_API ANCHOR_WUR int anchor_bundle_new(struct anchor_bundle **out, const char *trust_domain,
                                            STACK_OF(X509) * roots, uint64_t sequence,
                                            long refresh_hint, struct anchor_err *err);

/* anchor_bundle_new with the CA's trust domain and roots. */
ANCHOR_API ANCHOR_WUR int anchor_bundle_from_ca(struct anchor_bundle **out,
                                                const struct anchor_ca *ca, uint64_t sequence,
                                                long refresh_hint, struct anchor_err *err);

/* Reads a bundle from PEM text (one or more CERTIFICATE blocks, each a CA
 * certificate), e.g. the agent's bootstrap trust-bundle-path. Sequence and
 * refresh hint are 0. */
ANCHOR_API ANCHOR_WUR int anchor_bundle_parse_pem(struct anchor_bundle **out,
                                                  const char *trust_domain, const char *text,
                                                  size_t len, const char *source,
                                                  struct anchor_err *err);

/* Reads a SPIFFE bundle (the JWK Set anchor_bundle_to_jwks writes) of at
 * most ANCHOR_BUNDLE_MAX_BYTES. Keys whose "use" is not "x509-svid" are
 * skipped (SPIFFE Trust Domain and Bundle 4.2); each "x509-svid" key must
 * hold in "x5c" exactly one CA certificate in canonical base64 DER, whose
 * public key is the one the key's own parameters describe. At least one
 * such key is required. Messages start "invalid bundle: ", e.g.
 *   invalid bundle: not JSON: <parser detail>
 *   invalid bundle: "keys" is missing or not an array
 *   invalid bundle: key 2: "x5c" must hold exactly one certificate
 *   invalid bundle: key 1: the "x5c" certificate does not match the key's "x"
 *   invalid bundle: no x509-svid key */
ANCHOR_API ANCHOR_WUR int anchor_bundle_parse_jwks(struct anchor_bundle **out,
                                                   const char *trust_domain, const char *text,
                                                   size_t len, struct anchor_err *err);

/* Frees the bundle. Accepts NULL. */
ANCHOR_API void anchor_bundle_free(struct anchor_bundle *b);

ANCHOR_API const char *anchor_bundle_trust_domain(const struct anchor_bundle *b);
ANCHOR_API STACK_OF(X509) * anchor_bundle_get0_roots(const struct anchor_bundle *b);
ANCHOR_API uint64_t anchor_bundle_sequence(const struct anchor_bundle *b);
ANCHOR_API long anchor_bundle_refresh_hint(const struct anchor_bundle *b);

/* Writes the roots as PEM CERTIFICATE blocks into a new NUL-terminated
 * string (free()); *len (when non-NULL) gets its length. */
ANCHOR_API ANCHOR_WUR int anchor_bundle_to_pem(char **out, size_t *len,
                                               const struct anchor_bundle *b,
                                               struct anchor_err *err);

/* Writes the SPIFFE bundle (SPIFFE Trust Domain and Bundle 4): a JWK Set
 * whose keys each have "use": "x509-svid", "kty" with the public key's
 * parameters, and "x5c" holding the root's DER in base64, plus
 * "spiffe_sequence" and (when set) "spiffe_refresh_hint". A new
 * NUL-terminated string (free()). */
ANCHOR_API ANCHOR_WUR int anchor_bundle_to_jwks(char **out, const struct anchor_bundle *b,
                                                struct anchor_err *err);

/* Builds a store that trusts the bundle's roots, for verifying SVIDs. The
 * caller frees *out with X509_STORE_free. */
ANCHOR_API ANCHOR_WUR int anchor_bundle_store_new(X509_STORE **out, const struct anchor_bundle *b,
                                                  struct anchor_err *err);

#endif
