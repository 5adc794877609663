/*
 * The attributes of a verified chain (DESIGN.md attribute table), all with
 * origin x509_pop, in this order: the leaf's subject common name (when
 * non-empty), the leaf's serial number, one x509_pop.ca.<serial> per CA of
 * the verified path (first intermediate to the anchor) holding the SHA-1
 * fingerprint of its DER, and one x509_pop.san.<type> per matching URI SAN of
 * the leaf (a later SAN of a type replaces an earlier one).
 */
#include "x509pop/internal.h"
#include "util/check.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int anchor__x509pop_serial_hex(char **out, const ASN1_INTEGER *serial, struct anchor_err *err)
{
    static const uint8_t zero = 0;
    int rc = -1;
    const uint8_t *data = ASN1_STRING_get0_data(serial);
    int len = ASN1_STRING_length(serial);
    int neg = ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER;
    char *hex = NULL;
    char *s = NULL;

    /* OpenSSL keeps the magnitude without DER's sign octet; zero has no
     * octets and prints "00", as `openssl x509 -serial` does. */
    if (len <= 0) {
        data = &zero;
        len = 1;
    }
    TRY(anchor__hex(&hex, data, (size_t)len, err));
    if (neg) {
        size_t n = strlen(hex);
        s = malloc(n + 2);
        ENSURE(s != NULL, err, "out of memory");
        s[0] = '-';
        memcpy(s + 1, hex, n + 1);
        free(hex);
        hex = s;
    }
    *out = hex;
    hex = NULL;
    rc = 0;
out:
    free(hex);
    return rc;
}

/* The last CN of the subject (as Go's pkix.Name, which SPIRE uses), in
 * UTF-8; none when empty or when it holds a NUL. */
static int add_common_name(struct anchor_attrs *attrs, X509 *leaf, struct anchor_err *err)
{
    int rc = -1;
    const X509_NAME *name = X509_get_subject_name(leaf);
    int idx = -1;
    int last = -1;
    unsigned char *utf8 = NULL;
    int len;

    while ((idx = X509_NAME_get_index_by_NID(name, NID_commonName, idx)) >= 0)
        last = idx;
    if (last < 0)
        return 0;
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last)));
    if (len < 0) {
        /* An undecodable string (bad BMPString, ...) yields no attribute. */
        ERR_clear_error();
        return 0;
    }
    if (len > 0 && memchr(utf8, '\0', (size_t)len) == NULL)
        TRY(anchor_attrs_set(attrs, "x509_pop.subject.common_name", (const char *)utf8, err));
    rc = 0;
out:
    OPENSSL_free(utf8);
    return rc;
}

static int add_ca(struct anchor_attrs *attrs, X509 *ca, struct anchor_err *err)
{
    int rc = -1;
    char *serial = NULL;
    char *fp = NULL;
    char *name = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    TRY(anchor__x509pop_serial_hex(&serial, X509_get0_serialNumber(ca), err));
    ENSURE_OSSL(X509_digest(ca, EVP_sha1(), md, &md_len) == 1, err, "cannot hash a CA certificate");
    TRY(anchor__hex(&fp, md, md_len, err));
    name = malloc(strlen("x509_pop.ca.") + strlen(serial) + 1);
    ENSURE(name != NULL, err, "out of memory");
    strcpy(name, "x509_pop.ca.");
    strcat(name, serial);
    TRY(anchor_attrs_set(attrs, name, fp, err));
    rc = 0;
out:
    free(serial);
    free(fp);
    free(name);
    return rc;
}

static int add_sans(struct anchor_attrs *attrs, X509 *leaf, const char *trust_domain,
                    struct anchor_err *err)
{
    int rc = -1;
    GENERAL_NAMES *gens = NULL;
    char name[sizeof("x509_pop.san.") + ANCHOR__X509POP_MAX_URI_LEN];
    char *value = NULL;

    if (trust_domain == NULL)
        return 0;
    gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    ERR_clear_error();
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const char *t, *v;
        size_t tl, vl;
        int len;

        if (g->type != GEN_URI)
            continue;
        len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
        if (len <= 0 || !anchor__x509pop_uri_san_match(
                            (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
                            (size_t)len, trust_domain, &t, &tl, &v, &vl))
            continue;
        (void)snprintf(name, sizeof(name), "x509_pop.san.%.*s", (int)tl, t);
        value = strndup(v, vl);
        ENSURE(value != NULL, err, "out of memory");
        TRY(anchor_attrs_set(attrs, name, value, err));
        free(value);
        value = NULL;
    }
    rc = 0;
out:
    free(value);
    GENERAL_NAMES_free(gens);
    return rc;
}

int anchor__x509pop_chain_attrs(struct anchor_attrs *attrs, STACK_OF(X509) * chain,
                                const char *trust_domain, struct anchor_err *err)
{
    int rc = -1;
    X509 *leaf = sk_X509_value(chain, 0);
    char *serial = NULL;

    TRY(add_common_name(attrs, leaf, err));
    TRY(anchor__x509pop_serial_hex(&serial, X509_get0_serialNumber(leaf), err));
    TRY(anchor_attrs_set(attrs, "x509_pop.serial_number", serial, err));
    for (int i = 1; i < sk_X509_num(chain); i++)
        TRY(add_ca(attrs, sk_X509_value(chain, i), err));
    TRY(add_sans(attrs, leaf, trust_domain, err));
    rc = 0;
out:
    free(serial);
    return rc;
}
