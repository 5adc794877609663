/*
 * Small key and name utilities: public keys from SubjectPublicKeyInfo DER,
 * the algorithm names used in messages, the check that a key is of a kind
 * anchor signs and verifies with (RSA, ECDSA P-256/384/521), RFC 2253 names
 * and lowercase hex.
 */
#include "crypto/crypto.h"
#include "util/check.h"

#include <ctype.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

int anchor__pubkey_from_spki_der(EVP_PKEY **out, const uint8_t *der, size_t len,
                                 struct anchor_err *err)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    const unsigned char *p = der;

    ENSURE(der != NULL && len > 0 && len <= (size_t)LONG_MAX, err,
           "invalid SubjectPublicKeyInfo length");
    key = d2i_PUBKEY(NULL, &p, (long)len);
    ENSURE_OSSL(key != NULL, err, "not a valid SubjectPublicKeyInfo");
    ENSURE(p == der + len, err, "SubjectPublicKeyInfo has %zu trailing bytes",
           (size_t)(der + len - p));
    *out = key;
    key = NULL;
    rc = 0;
out:
    EVP_PKEY_free(key);
    return rc;
}

const char *anchor__key_type_name(const EVP_PKEY *key)
{
    const char *name = EVP_PKEY_get0_type_name(key);

    return name != NULL ? name : "UNKNOWN";
}

/* The NID of an EC key's named curve, NID_undef when it has none. */
static int ec_curve_nid(const EVP_PKEY *key, char *name, size_t size)
{
    size_t len = 0;
    int nid;

    name[0] = '\0';
    if (EVP_PKEY_get_group_name(key, name, size, &len) != 1) {
        ERR_clear_error();
        (void)snprintf(name, size, "explicit-parameters");
        return NID_undef;
    }
    nid = OBJ_sn2nid(name);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(name);
    return nid;
}

int anchor__key_check_supported(const EVP_PKEY *key, struct anchor_err *err)
{
    int rc = -1;
    char up[32];
    const char *name = anchor__key_type_name(key);
    size_t i;

    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        return 0;
    case EVP_PKEY_EC: {
        char curve[64];
        int nid = ec_curve_nid(key, curve, sizeof(curve));
        ENSURE(nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 || nid == NID_secp521r1, err,
               "unsupported key type EC %s", curve);
        return 0;
    }
    default:
        break;
    }
    for (i = 0; i < sizeof(up) - 1 && name[i] != '\0'; i++)
        up[i] = (char)toupper((unsigned char)name[i]);
    up[i] = '\0';
    FAIL(err, "unsupported key type %s", up);
out:
    return rc;
}

void anchor__name_string(const X509_NAME *name, char *buf, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int n;

    buf[0] = '\0';
    if (bio == NULL)
        return;
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        n = BIO_read(bio, buf, size > INT_MAX ? INT_MAX : (int)(size - 1));
        buf[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
    ERR_clear_error();
}

int anchor__hex(char **out, const uint8_t *bytes, size_t len, struct anchor_err *err)
{
    static const char digits[] = "0123456789abcdef";
    int rc = -1;
    char *s = malloc(2 * len + 1);

    ENSURE(s != NULL, err, "out of memory");
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[bytes[i] >> 4];
        s[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    s[2 * len] = '\0';
    *out = s;
    rc = 0;
out:
    return rc;
}
