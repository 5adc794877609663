/*
 * helper_pki: an in-memory test PKI built with OpenSSL, for every unit test
 * program (tests/unit/helper_*.c are linked into each of them).
 *
 * Contract, for all functions below:
 *   - They never fail softly: any OpenSSL or I/O failure ends the test with
 *     cmocka's fail_msg(), so callers do not check results.
 *   - Objects returned (EVP_PKEY *, X509 *) carry a reference the caller owns
 *     and drops with EVP_PKEY_free / X509_free. Strings and buffers returned
 *     are malloc'd and the caller free()s them.
 *   - Keys from hp_key() are cached per process and per (type, bits), so a
 *     test program pays for each key size once; hp_key_fresh() always makes
 *     a new key (for "key does not match" cases). RSA 9216 comes from a key
 *     embedded in helper_pki.c (generating one takes ~15 s).
 *   - Certificates are X.509 v3, SHA-256 signed (Ed25519: pure), with
 *     Subject/Authority Key Identifiers so that OpenSSL's strict mode accepts
 *     them, subject "O=anchor-tests[,CN=<cn>]", and critical Basic
 *     Constraints and Key Usage unless the options say otherwise.
 */
#ifndef ANCHOR_TESTS_HELPER_PKI_H
#define ANCHOR_TESTS_HELPER_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

enum hp_key_type {
    HP_EC_P256,
    HP_EC_P384,
    HP_EC_P521,
    HP_EC_SECP256K1, /* an EC curve anchor refuses */
    HP_RSA,          /* bits chosen by the caller: 1024..9216 */
    HP_ED25519,
};

/* A cached key of the type (rsa_bits is used for HP_RSA only). */
EVP_PKEY *hp_key(enum hp_key_type type, int rsa_bits);
/* A new key every call. */
EVP_PKEY *hp_key_fresh(enum hp_key_type type, int rsa_bits);

enum hp_ku {
    HP_KU_DEFAULT,     /* leaf: digitalSignature; CA: digitalSignature, keyCertSign, cRLSign */
    HP_KU_NONE,        /* no Key Usage extension */
    HP_KU_NO_DIGSIG,   /* keyEncipherment only (CA: keyCertSign, cRLSign) */
    HP_KU_NO_CERTSIGN, /* digitalSignature only, also for a CA */
};

enum hp_bc {
    HP_BC_DEFAULT, /* CA: critical CA:TRUE; leaf: critical CA:FALSE */
    HP_BC_NONE,    /* no Basic Constraints extension */
};

/* Certificate options; a zeroed struct gives a plain leaf valid from an hour
 * ago to 30 days from now with a fresh serial and no CN. */
struct hp_cert_opts {
    const char *cn;         /* subject CN; NULL: none; "" gives an empty CN */
    const char *serial_hex; /* e.g. "0abc", "-01", "00"; NULL: a fresh serial */
    int ca;                 /* basicConstraints cA */
    int pathlen;            /* with has_pathlen: pathLenConstraint */
    int has_pathlen;
    enum hp_ku ku;
    enum hp_bc bc;
    time_t not_before;       /* 0: now - 1 h */
    time_t not_after;        /* 0: now + 30 days */
    const char *uris[8];     /* URI SANs in order, NULL-terminated */
    const char *dns;         /* one DNS SAN; NULL: none */
    int unknown_critical;    /* add a critical extension of a private OID */
    const char *issuer_name; /* override the issuer name (breaks the chain) */
    const char *eku;         /* extendedKeyUsage in openssl.cnf form, e.g. "clientAuth" */
    int eku_empty;           /* an extendedKeyUsage extension holding no purpose */
};

/* Issues a certificate for key, signed by issuer_key; issuer NULL makes it
 * self-signed (issuer_key then ignored: key signs). */
X509 *hp_cert(const struct hp_cert_opts *o, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key);

/* A ready three-level PKI: root (CA) -> intermediate (CA) -> leaf, all EC
 * P-256 except the leaf, of leaf_type (rsa_bits for HP_RSA), leaf CN
 * "node-1.example.org", leaf serial "3a7f2c1b". */
struct hp_pki {
    EVP_PKEY *root_key, *inter_key, *leaf_key;
    X509 *root, *inter, *leaf;
};
void hp_pki_init(struct hp_pki *p, enum hp_key_type leaf_type, int rsa_bits);
void hp_pki_cleanup(struct hp_pki *p);

/* PEM text (NUL-terminated) of the certificates in order. */
char *hp_pem_certs(X509 *const *certs, size_t n);
/* One PEM block of arbitrary bytes under a label (for hostile inputs). */
char *hp_pem_block(const char *label, const uint8_t *der, size_t len);
/* DER of one certificate; *len receives its length. */
uint8_t *hp_der(X509 *cert, size_t *len);
/* The evidence wire form: DER of the certificates concatenated. */
uint8_t *hp_der_chain(X509 *const *certs, size_t n, size_t *len);

enum hp_key_format {
    HP_PKCS8,           /* BEGIN PRIVATE KEY */
    HP_PKCS1,           /* BEGIN RSA PRIVATE KEY (RSA keys) */
    HP_SEC1,            /* BEGIN EC PRIVATE KEY (EC keys) */
    HP_PKCS8_ENCRYPTED, /* BEGIN ENCRYPTED PRIVATE KEY, passphrase "test" */
    HP_PKCS1_ENCRYPTED, /* RSA PRIVATE KEY with Proc-Type: 4,ENCRYPTED */
};
/* PEM text of a private key in the format. */
char *hp_pem_key(EVP_PKEY *key, enum hp_key_format f);

/* A new private temporary directory; hp_tmpdir_remove() deletes it with the
 * files hp_write_file put there. */
char *hp_tmpdir(void);
void hp_tmpdir_remove(char *dir);
/* Writes data to dir/name and returns the path. */
char *hp_write_file(const char *dir, const char *name, const void *data, size_t len);
/* Same for a NUL-terminated string. */
char *hp_write_text(const char *dir, const char *name, const char *text);

#endif
