/*
 * Internal parts of the CA module shared by ca.c (the CA itself), svid.c
 * (issuing) and bundle.c: the CA's state and the certificate-building
 * helpers of cert.c. Not a public header.
 */
#ifndef ANCHOR_CA_INTERNAL_H
#define ANCHOR_CA_INTERNAL_H

#include <sys/types.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "anchor/ca.h"

struct anchor_ca {
    char *trust_domain;
    EVP_PKEY *key;          /* signs everything the CA issues */
    X509 *cert;             /* the certificate of key */
    STACK_OF(X509) * chain; /* sent after a leaf: cert and intermediates, no root */
    STACK_OF(X509) * roots; /* the bundle */
    time_t not_before;      /* of cert */
    time_t not_after;       /* earliest on the path to the root */
    enum anchor_key_type key_type;
    int upstream;
};

struct anchor_bundle {
    char *trust_domain;
    STACK_OF(X509) * roots;
    uint64_t sequence;
    long refresh_hint;
};

/* --- files.c ---------------------------------------------------------------- */

#define ANCHOR__CA_MAX_PATH 4096

/* Writes dir/name into buf (ANCHOR__CA_MAX_PATH bytes). */
int anchor__ca_path_join(char *buf, const char *dir, const char *name, struct anchor_err *err);

/* Sets *exists to whether path exists (lstat). */
int anchor__ca_file_exists(const char *path, int *exists, struct anchor_err *err);

/* Writes cert, or when cert is NULL the private key (PKCS#8), as PEM to
 * path in dir, atomically, with mode `mode`. */
int anchor__ca_write_pem(const char *dir, const char *path, X509 *cert, EVP_PKEY *key, mode_t mode,
                         struct anchor_err *err);

/* Loads every certificate of a PEM file. */
int anchor__ca_load_certs(STACK_OF(X509) * *out, const char *path, struct anchor_err *err);

/* Loads an unencrypted PEM private key, refusing a file that others may
 * access, and, unless group_ok, one the group may access. */
int anchor__ca_load_key(EVP_PKEY **out, const char *path, int group_ok, struct anchor_err *err);

/* --- cert.c ----------------------------------------------------------------- */

/* Gives x a random positive 128-bit serial number (RFC 5280 4.1.2.2: at most
 * 20 octets; the 16 random bytes are read as an unsigned number, so a set top
 * bit costs a leading zero octet rather than making it negative). */
int anchor__cert_set_serial(X509 *x, struct anchor_err *err);

/* Sets notBefore and notAfter. */
int anchor__cert_set_validity(X509 *x, time_t not_before, time_t not_after, struct anchor_err *err);

/* Adds subjectKeyIdentifier (SHA-1 of the subject public key, RFC 5280
 * 4.2.1.2 method 1) and, when issuer is non-NULL, authorityKeyIdentifier with
 * the issuer's subject key identifier (for a self-signed certificate pass
 * x itself after its SKI is set). */
int anchor__cert_add_key_ids(X509 *x, const X509 *issuer, struct anchor_err *err);

/* Adds basicConstraints (critical): CA:TRUE when ca, else CA:FALSE. */
int anchor__cert_add_basic_constraints(X509 *x, int ca, struct anchor_err *err);

/* Adds keyUsage (critical) with the KU_* bits of usage. */
int anchor__cert_add_key_usage(X509 *x, unsigned usage, struct anchor_err *err);

/* Adds subjectAltName: the URI uri (when non-NULL) and the DNS names;
 * critical when critical. */
int anchor__cert_add_san(X509 *x, const char *uri, const char *const *dns, size_t n_dns,
                         int critical, struct anchor_err *err);

/* Converts an ASN1_TIME to seconds since the epoch. */
int anchor__asn1_time_to_time_t(time_t *out, const ASN1_TIME *t, struct anchor_err *err);

/* Writes t as "2026-12-03T16:31:23Z" into buf. */
void anchor__time_string(char *buf, size_t size, time_t t);

#endif
