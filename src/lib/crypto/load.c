/*
 * Loading certificates and private keys from PEM text and files, strictly:
 * every PEM block must be of the kind expected where it stands, every DER
 * decoding must consume exactly the bytes it was given, files are bounded in
 * size, and encrypted keys are refused with a message that says so. Key
 * material (PEM text, DER) is wiped before it is freed.
 */
#include "crypto/crypto.h"
#include "util/check.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int anchor__cert_from_der(X509 **out, const uint8_t *der, size_t len, const char *source,
                          size_t index, struct anchor_err *err)
{
    int rc = -1;
    X509 *x = NULL;
    const unsigned char *p = der;
    char where[64] = "";

    if (index > 0)
        (void)snprintf(where, sizeof(where), " PEM block %zu", index);
    ENSURE(len <= (size_t)LONG_MAX, err, "%s:%s: certificate too large", source, where);
    x = d2i_X509(NULL, &p, (long)len);
    ENSURE_OSSL(x != NULL, err, "%s:%s: not a valid DER certificate", source, where);
    ENSURE(p == der + len, err, "%s:%s: certificate DER has %zu trailing bytes", source, where,
           (size_t)(der + len - p));
    *out = x;
    x = NULL;
    rc = 0;
out:
    X509_free(x);
    return rc;
}

int anchor__certs_from_pem(STACK_OF(X509) * *out, uint8_t **out_der, size_t *out_der_len,
                           const char *text, size_t len, const char *source, struct anchor_err *err)
{
    int rc = -1;
    struct anchor__pem_blocks blocks = {NULL, 0};
    STACK_OF(X509) *certs = NULL;
    X509 *x = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;

    TRY(anchor__pem_parse(&blocks, text, len, source, err));
    ENSURE(blocks.n > 0, err, "%s: no PEM certificate found", source);
    certs = sk_X509_new_null();
    ENSURE(certs != NULL, err, "out of memory");
    for (size_t i = 0; i < blocks.n; i++) {
        const struct anchor__pem_block *b = &blocks.v[i];
        ENSURE(strcmp(b->label, "CERTIFICATE") == 0, err,
               "%s: PEM block %zu is \"%s\", expected CERTIFICATE", source, i + 1, b->label);
        TRY(anchor__cert_from_der(&x, b->der, b->der_len, source, i + 1, err));
        ENSURE(sk_X509_push(certs, x) > 0, err, "out of memory");
        x = NULL;
        der_len += b->der_len;
    }
    if (out_der != NULL) {
        size_t off = 0;
        der = malloc(der_len);
        ENSURE(der != NULL, err, "out of memory");
        for (size_t i = 0; i < blocks.n; i++) {
            memcpy(der + off, blocks.v[i].der, blocks.v[i].der_len);
            off += blocks.v[i].der_len;
        }
        *out_der = der;
        *out_der_len = der_len;
        der = NULL;
    }
    *out = certs;
    certs = NULL;
    rc = 0;
out:
    X509_free(x);
    sk_X509_pop_free(certs, X509_free);
    anchor__pem_blocks_cleanup(&blocks);
    free(der);
    return rc;
}

/* Reads one DER tag and definite length at der[*pos..len); sets *pos to the
 * start of the contents. Returns the tag, or -1. */
static int der_header(const uint8_t *der, size_t len, size_t *pos, size_t *clen)
{
    size_t p = *pos;
    size_t n = 0;
    int tag;

    if (len - p < 2)
        return -1;
    tag = der[p++];
    if (der[p] < 0x80) {
        n = der[p++];
    } else {
        size_t nb = der[p++] & 0x7f;
        if (nb == 0 || nb > 3 || len - p < nb)
            return -1;
        for (size_t i = 0; i < nb; i++)
            n = n << 8 | der[p++];
    }
    if (n > len - p)
        return -1;
    *pos = p;
    *clen = n;
    return tag;
}

/* The tag of the element after the version INTEGER inside the outer
 * SEQUENCE: a SEQUENCE (AlgorithmIdentifier) in PKCS#8 PrivateKeyInfo (RFC
 * 5208), an INTEGER (modulus) in PKCS#1 RSAPrivateKey (RFC 8017 A.1.2), an
 * OCTET STRING (privateKey) in SEC1 ECPrivateKey (RFC 5915). The label must
 * say what the DER is, and OpenSSL's decoders would accept any of the
 * three under any label. */
static int second_tag(const uint8_t *der, size_t len)
{
    size_t pos = 0, clen = 0;

    if (der_header(der, len, &pos, &clen) != 0x30 || der_header(der, len, &pos, &clen) != 0x02)
        return -1;
    pos += clen;
    if (pos >= len)
        return -1;
    return der[pos];
}

/* Decodes one private key of the given DER structure ("PrivateKeyInfo" for
 * PKCS#8, "type-specific" for PKCS#1 and SEC1) and key type (NULL: any). */
static int decode_key(EVP_PKEY **out, const struct anchor__pem_block *b, const char *structure,
                      const char *type, int expect_tag, const char *source, size_t no,
                      struct anchor_err *err)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    OSSL_DECODER_CTX *dctx = NULL;
    const unsigned char *p = b->der;
    size_t left = b->der_len;

    ENSURE(second_tag(b->der, b->der_len) == expect_tag, err,
           "%s: PEM block %zu (%s): not a valid private key: the DER is not of the labelled form",
           source, no, b->label);
    dctx = OSSL_DECODER_CTX_new_for_pkey(&key, "DER", structure, type, OSSL_KEYMGMT_SELECT_KEYPAIR,
                                         NULL, NULL);
    ENSURE_OSSL(dctx != NULL, err, "%s: PEM block %zu: no decoder for %s", source, no, b->label);
    ENSURE_OSSL(OSSL_DECODER_from_data(dctx, &p, &left) == 1 && key != NULL, err,
                "%s: PEM block %zu (%s): not a valid private key", source, no, b->label);
    ENSURE(left == 0, err, "%s: PEM block %zu (%s): key DER has %zu trailing bytes", source, no,
           b->label, left);
    ENSURE(type == NULL || EVP_PKEY_is_a(key, type), err,
           "%s: PEM block %zu (%s): not a valid private key", source, no, b->label);
    *out = key;
    key = NULL;
    rc = 0;
out:
    OSSL_DECODER_CTX_free(dctx);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}

int anchor__key_from_pem(EVP_PKEY **out, const char *text, size_t len, const char *source,
                         struct anchor_err *err)
{
    int rc = -1;
    struct anchor__pem_blocks blocks = {NULL, 0};
    EVP_PKEY *key = NULL;

    TRY(anchor__pem_parse(&blocks, text, len, source, err));
    ENSURE(blocks.n > 0, err, "%s: no PEM private key found", source);
    for (size_t i = 0; i < blocks.n; i++) {
        const struct anchor__pem_block *b = &blocks.v[i];
        const char *structure = NULL;
        const char *type = NULL;
        int tag;

        /* `openssl ecparam -genkey` writes the curve before the key; the
         * SEC1 key names its curve itself, so the block adds nothing. */
        if (strcmp(b->label, "EC PARAMETERS") == 0)
            continue;
        ENSURE(!b->encrypted && strcmp(b->label, "ENCRYPTED PRIVATE KEY") != 0, err,
               "%s: PEM block %zu: the private key is encrypted; anchor needs an unencrypted key",
               source, i + 1);
        if (strcmp(b->label, "PRIVATE KEY") == 0) {
            structure = "PrivateKeyInfo";
            tag = 0x30;
        } else if (strcmp(b->label, "RSA PRIVATE KEY") == 0) {
            structure = "type-specific";
            type = "RSA";
            tag = 0x02;
        } else if (strcmp(b->label, "EC PRIVATE KEY") == 0) {
            structure = "type-specific";
            type = "EC";
            tag = 0x04;
        } else {
            FAIL(err,
                 "%s: PEM block %zu is \"%s\", expected PRIVATE KEY, RSA PRIVATE KEY or EC "
                 "PRIVATE KEY",
                 source, i + 1, b->label);
        }
        ENSURE(key == NULL, err, "%s: PEM block %zu: more than one private key", source, i + 1);
        TRY(decode_key(&key, b, structure, type, tag, source, i + 1, err));
    }
    ENSURE(key != NULL, err, "%s: no PEM private key found", source);
    *out = key;
    key = NULL;
    rc = 0;
out:
    EVP_PKEY_free(key);
    anchor__pem_blocks_cleanup(&blocks);
    return rc;
}

int anchor__file_read(char **out, size_t *out_len, const char *path, size_t max,
                      struct anchor_err *err)
{
    int rc = -1;
    int fd = -1;
    struct stat st;
    char *buf = NULL;
    size_t len = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    ENSURE(fd >= 0, err, "%s: cannot open: %s", path, strerror(errno));
    ENSURE(fstat(fd, &st) == 0, err, "%s: cannot stat: %s", path, strerror(errno));
    ENSURE(S_ISREG(st.st_mode), err, "%s: not a regular file", path);
    ENSURE(st.st_size >= 0 && (size_t)st.st_size <= max, err, "%s: file is larger than %zu bytes",
           path, max);
    /* One byte more than allowed, to notice a file that grew meanwhile. */
    buf = malloc(max + 2);
    ENSURE(buf != NULL, err, "out of memory");
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        ENSURE(n >= 0, err, "%s: cannot read: %s", path, strerror(errno));
        if (n == 0)
            break;
        len += (size_t)n;
        ENSURE(len <= max, err, "%s: file is larger than %zu bytes", path, max);
    }
    ENSURE(len > 0, err, "%s: file is empty", path);
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
    rc = 0;
out:
    anchor__file_free(buf, max + 2);
    if (fd >= 0)
        (void)close(fd);
    return rc;
}

void anchor__file_free(char *buf, size_t len)
{
    if (buf == NULL)
        return;
    OPENSSL_cleanse(buf, len);
    free(buf);
}
