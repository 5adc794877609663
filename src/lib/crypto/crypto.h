/*
 * Internal crypto helpers of libanchor: strict PEM framing, certificate and
 * private-key loading, bounded file reading, and small key utilities. They
 * are shared by the x509pop engine and (later) the server's CA code. Nothing
 * here is exported; names start `anchor__`.
 *
 * Strictness (STYLE.md): every PEM block is decoded by a strict base64
 * reader, every d2i must consume exactly the bytes it was given, and each
 * failure names its source (a file path or a field such as "caCerts") and the
 * 1-based PEM block number.
 */
#ifndef ANCHOR_CRYPTO_CRYPTO_H
#define ANCHOR_CRYPTO_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "anchor/common.h"

/* Largest file the loaders read (certificates, chains, keys). */
#define ANCHOR__MAX_PEM_FILE_BYTES (1024 * 1024)
/* Most PEM blocks one input may hold. */
#define ANCHOR__MAX_PEM_BLOCKS 256
/* Longest PEM label kept ("CERTIFICATE", "EC PRIVATE KEY", ...). */
#define ANCHOR__PEM_LABEL_MAX 64

/* One decoded PEM block. der is owned by the block list and wiped on free. */
struct anchor__pem_block {
    char label[ANCHOR__PEM_LABEL_MAX + 1];
    uint8_t *der;
    size_t der_len;
    int encrypted; /* an RFC 1421 "Proc-Type: 4,ENCRYPTED" header was present */
};

struct anchor__pem_blocks {
    struct anchor__pem_block *v;
    size_t n;
};

/* Splits PEM text into its blocks. Text outside blocks is ignored (RFC 7468
 * explanatory text); inside a block only RFC 1421 headers (before the base64
 * body) and strict base64 are accepted, and the END label must match BEGIN.
 * `source` names the input in messages. On success *out holds zero or more
 * blocks and must be released with anchor__pem_blocks_cleanup. */
int anchor__pem_parse(struct anchor__pem_blocks *out, const char *text, size_t len,
                      const char *source, struct anchor_err *err);
/* Frees (and wipes) every block. Accepts an already-empty list. */
void anchor__pem_blocks_cleanup(struct anchor__pem_blocks *b);

/* Decodes exactly one DER certificate: refuses trailing bytes. `source` and
 * `index` (1-based PEM block number, 0: none) name it in messages. */
int anchor__cert_from_der(X509 **out, const uint8_t *der, size_t len, const char *source,
                          size_t index, struct anchor_err *err);

/* Loads every certificate of a PEM input into a new stack (leaf first as
 * written). Every block must be CERTIFICATE; an input without any block is an
 * error. On success *out_der (when non-NULL) receives the concatenated DER of
 * all certificates in a new buffer the caller frees with free(). */
int anchor__certs_from_pem(STACK_OF(X509) * *out, uint8_t **out_der, size_t *out_der_len,
                           const char *text, size_t len, const char *source,
                           struct anchor_err *err);

/* Loads one unencrypted private key from PEM text: PKCS#8 "PRIVATE KEY",
 * PKCS#1 "RSA PRIVATE KEY" or SEC1 "EC PRIVATE KEY" (an "EC PARAMETERS"
 * block beside it is ignored). Refuses encrypted keys, other blocks, and more
 * than one key. */
int anchor__key_from_pem(EVP_PKEY **out, const char *text, size_t len, const char *source,
                         struct anchor_err *err);

/* Reads a whole regular file of at most `max` bytes into a new
 * NUL-terminated buffer that the caller releases with anchor__file_free(buf,
 * len). An empty file is an error. */
int anchor__file_read(char **out, size_t *out_len, const char *path, size_t max,
                      struct anchor_err *err);
/* Wipes the first len bytes of buf (key files hold secrets) and frees it.
 * Accepts NULL. */
void anchor__file_free(char *buf, size_t len);

/* Builds a public key from SubjectPublicKeyInfo DER; refuses trailing
 * bytes. The caller frees *out with EVP_PKEY_free. */
int anchor__pubkey_from_spki_der(EVP_PKEY **out, const uint8_t *der, size_t len,
                                 struct anchor_err *err);

/* Names the key's algorithm for messages: "RSA", "EC", "ED25519", ... */
const char *anchor__key_type_name(const EVP_PKEY *key);

/* Checks that key is RSA or ECDSA on P-256, P-384 or P-521. Otherwise sets
 * "unsupported key type <NAME>" (for EC, "unsupported key type EC <curve>"). */
int anchor__key_check_supported(const EVP_PKEY *key, struct anchor_err *err);

/* Writes the RFC 2253 form of a name ("CN=a,O=b") into buf (cut to fit). */
void anchor__name_string(const X509_NAME *name, char *buf, size_t size);

/* Lowercase hex of bytes into a new NUL-terminated string (free()). */
int anchor__hex(char **out, const uint8_t *bytes, size_t len, struct anchor_err *err);

#endif
