/*
 * Certificate-building helpers shared by the root the CA makes for itself and
 * the SVIDs it issues. Extensions are built as OpenSSL structures and added
 * with X509_add1_ext_i2d, not through the text configuration language, so
 * nothing is parsed per issuance.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "ca/internal.h"
#include "util/check.h"

int anchor__cert_set_serial(X509 *x, struct anchor_err *err)
{
    int rc = -1;
    unsigned char raw[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;

    do {
        ENSURE_OSSL(RAND_bytes(raw, sizeof(raw)) == 1, err, "cannot draw a serial number");
        bn = BN_bin2bn(raw, sizeof(raw), bn);
        ENSURE_OSSL(bn != NULL, err, "cannot make a serial number");
    } while (BN_is_zero(bn)); /* RFC 5280: positive */
    serial = BN_to_ASN1_INTEGER(bn, NULL);
    ENSURE_OSSL(serial != NULL, err, "cannot make a serial number");
    ENSURE_OSSL(X509_set_serialNumber(x, serial) == 1, err, "cannot set the serial number");
    rc = 0;
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return rc;
}

int anchor__cert_set_validity(X509 *x, time_t not_before, time_t not_after, struct anchor_err *err)
{
    int rc = -1;

    ENSURE_OSSL(ASN1_TIME_set(X509_getm_notBefore(x), not_before) != NULL, err,
                "cannot set notBefore");
    ENSURE_OSSL(ASN1_TIME_set(X509_getm_notAfter(x), not_after) != NULL, err,
                "cannot set notAfter");
    rc = 0;
out:
    return rc;
}

int anchor__cert_add_key_ids(X509 *x, const X509 *issuer, struct anchor_err *err)
{
    int rc = -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ASN1_OCTET_STRING *ski = NULL;
    AUTHORITY_KEYID *akid = NULL;
    const ASN1_OCTET_STRING *issuer_ski;

    ENSURE_OSSL(X509_pubkey_digest(x, EVP_sha1(), md, &mdlen) == 1, err,
                "cannot hash the public key");
    ski = ASN1_OCTET_STRING_new();
    ENSURE_OSSL(ski != NULL && ASN1_OCTET_STRING_set(ski, md, (int)mdlen) == 1, err,
                "out of memory");
    ENSURE_OSSL(X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_REPLACE) == 1,
                err, "cannot add subjectKeyIdentifier");
    if (issuer != NULL) {
        issuer_ski = issuer == x ? ski : X509_get0_subject_key_id((X509 *)issuer);
        ENSURE(issuer_ski != NULL, err, "CA certificate has no subjectKeyIdentifier");
        akid = AUTHORITY_KEYID_new();
        ENSURE_OSSL(akid != NULL, err, "out of memory");
        akid->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
        ENSURE_OSSL(akid->keyid != NULL, err, "out of memory");
        ENSURE_OSSL(
            X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_REPLACE) == 1,
            err, "cannot add authorityKeyIdentifier");
    }
    rc = 0;
out:
    AUTHORITY_KEYID_free(akid);
    ASN1_OCTET_STRING_free(ski);
    return rc;
}

int anchor__cert_add_basic_constraints(X509 *x, int ca, struct anchor_err *err)
{
    int rc = -1;
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();

    ENSURE_OSSL(bc != NULL, err, "out of memory");
    bc->ca = ca ? 0xFF : 0;
    ENSURE_OSSL(X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_REPLACE) == 1, err,
                "cannot add basicConstraints");
    rc = 0;
out:
    BASIC_CONSTRAINTS_free(bc);
    return rc;
}

int anchor__cert_add_key_usage(X509 *x, unsigned usage, struct anchor_err *err)
{
    int rc = -1;
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    /* KU_* values are the DER bit string's bytes read little-endian:
     * digitalSignature 0x80 is bit 0, ..., decipherOnly 0x8000 is bit 8. */
    static const struct {
        unsigned flag;
        int bit;
    } bits[] = {
        {KU_DIGITAL_SIGNATURE, 0}, {KU_NON_REPUDIATION, 1}, {KU_KEY_ENCIPHERMENT, 2},
        {KU_DATA_ENCIPHERMENT, 3}, {KU_KEY_AGREEMENT, 4},   {KU_KEY_CERT_SIGN, 5},
        {KU_CRL_SIGN, 6},          {KU_ENCIPHER_ONLY, 7},   {KU_DECIPHER_ONLY, 8},
    };

    ENSURE_OSSL(ku != NULL, err, "out of memory");
    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
        if (usage & bits[i].flag)
            ENSURE_OSSL(ASN1_BIT_STRING_set_bit(ku, bits[i].bit, 1) == 1, err, "out of memory");
    }
    ENSURE_OSSL(X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_REPLACE) == 1, err,
                "cannot add keyUsage");
    rc = 0;
out:
    ASN1_BIT_STRING_free(ku);
    return rc;
}

static int push_name(GENERAL_NAMES *names, int type, const char *value, struct anchor_err *err)
{
    int rc = -1;
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();

    ENSURE_OSSL(gn != NULL && s != NULL, err, "out of memory");
    ENSURE_OSSL(ASN1_STRING_set(s, value, (int)strlen(value)) == 1, err, "out of memory");
    GENERAL_NAME_set0_value(gn, type, s);
    s = NULL;
    ENSURE_OSSL(sk_GENERAL_NAME_push(names, gn) > 0, err, "out of memory");
    gn = NULL;
    rc = 0;
out:
    ASN1_IA5STRING_free(s);
    GENERAL_NAME_free(gn);
    return rc;
}

int anchor__cert_add_san(X509 *x, const char *uri, const char *const *dns, size_t n_dns,
                         int critical, struct anchor_err *err)
{
    int rc = -1;
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();

    ENSURE_OSSL(names != NULL, err, "out of memory");
    if (uri != NULL)
        TRY(push_name(names, GEN_URI, uri, err));
    for (size_t i = 0; i < n_dns; i++)
        TRY(push_name(names, GEN_DNS, dns[i], err));
    ENSURE_OSSL(X509_add1_ext_i2d(x, NID_subject_alt_name, names, critical, X509V3_ADD_REPLACE) ==
                    1,
                err, "cannot add subjectAltName");
    rc = 0;
out:
    GENERAL_NAMES_free(names);
    return rc;
}

int anchor__asn1_time_to_time_t(time_t *out, const ASN1_TIME *t, struct anchor_err *err)
{
    int rc = -1;
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    ENSURE_OSSL(ASN1_TIME_to_tm(t, &tm) == 1, err, "invalid certificate time");
    *out = timegm(&tm);
    rc = 0;
out:
    return rc;
}

void anchor__time_string(char *buf, size_t size, time_t t)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        (void)snprintf(buf, size, "%lld", (long long)t);
}
