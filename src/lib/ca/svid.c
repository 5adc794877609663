/*
 * X.509 SVIDs: the leaf certificates the CA signs, per the SPIFFE X509-SVID
 * standard, and the requests they are made from (a PKCS#10 CSR, whose only
 * use is its public key and the proof that the requester holds the private
 * key, or a bare SubjectPublicKeyInfo).
 *
 * Per issuance the work is one signature plus building a few OpenSSL
 * structures; nothing is parsed from text.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "ca/internal.h"
#include "crypto/crypto.h"
#include "util/check.h"

#define DEFAULT_SUBJECT_O "anchor"

int anchor_svid_key_check(const EVP_PKEY *key, struct anchor_err *err)
{
    int rc = -1, bits;

    TRY(anchor__key_check_supported(key, err));
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
        bits = EVP_PKEY_get_bits(key);
        ENSURE(bits >= 2048 && bits <= 8192, err, "RSA key of %d bits is outside 2048..8192", bits);
    }
    rc = 0;
out:
    return rc;
}

struct anchor_svid_request {
    X509_REQ *csr;     /* when read from a CSR: owns spki */
    X509_PUBKEY *spki; /* the key as received (borrowed from csr, or owned) */
    EVP_PKEY *key;     /* decoded, borrowed from spki */
};

/* RFC 5480 2.1.1: an EC key names its curve; explicit curve parameters
 * (which have been used to forge keys that look like a named curve's) are
 * refused, so the key is certified exactly as received. */
static int check_named_curve(const X509_PUBKEY *spki, struct anchor_err *err)
{
    int rc = -1, ptype;
    X509_ALGOR *alg;
    const ASN1_OBJECT *oid;
    const void *pval;

    ENSURE(X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, spki) == 1, err,
           "cannot read the requested key");
    X509_ALGOR_get0(&oid, &ptype, &pval, alg);
    ENSURE(OBJ_obj2nid(oid) != NID_X9_62_id_ecPublicKey || ptype == V_ASN1_OBJECT, err,
           "EC key with explicit curve parameters is not supported (use a named curve)");
    rc = 0;
out:
    return rc;
}

int anchor_svid_request_parse_csr(struct anchor_svid_request **out, const uint8_t *der, size_t len,
                                  struct anchor_err *err)
{
    int rc = -1;
    struct anchor_svid_request *req = NULL;
    const unsigned char *p = der;

    ENSURE(len > 0 && len <= ANCHOR_SVID_MAX_REQUEST_BYTES, err,
           "CSR size %zu is outside 1..%zu bytes", len, ANCHOR_SVID_MAX_REQUEST_BYTES);
    req = calloc(1, sizeof(*req));
    ENSURE(req != NULL, err, "out of memory");
    req->csr = d2i_X509_REQ(NULL, &p, (long)len);
    ENSURE(req->csr != NULL && p == der + len, err, "CSR is not valid DER");
    req->spki = X509_REQ_get_X509_PUBKEY(req->csr);
    req->key = X509_REQ_get0_pubkey(req->csr);
    ENSURE(req->spki != NULL && req->key != NULL, err, "CSR is not valid DER");
    TRY(anchor_svid_key_check(req->key, err));
    TRY(check_named_curve(req->spki, err));
    /* The self-signature proves possession of the private key (RFC 2986 3). */
    ENSURE(X509_REQ_verify(req->csr, req->key) == 1, err, "CSR signature does not verify");
    *out = req;
    req = NULL;
    rc = 0;
out:
    ERR_clear_error();
    anchor_svid_request_free(req);
    return rc;
}

int anchor_svid_request_parse_spki(struct anchor_svid_request **out, const uint8_t *der, size_t len,
                                   struct anchor_err *err)
{
    int rc = -1;
    struct anchor_svid_request *req = NULL;
    const unsigned char *p = der;

    ENSURE(len > 0 && len <= ANCHOR_SVID_MAX_REQUEST_BYTES, err,
           "public key size %zu is outside 1..%zu bytes", len, ANCHOR_SVID_MAX_REQUEST_BYTES);
    req = calloc(1, sizeof(*req));
    ENSURE(req != NULL, err, "out of memory");
    req->spki = d2i_X509_PUBKEY(NULL, &p, (long)len);
    ENSURE(req->spki != NULL && p == der + len, err, "public key is not valid DER");
    req->key = X509_PUBKEY_get0(req->spki);
    ENSURE(req->key != NULL, err, "public key is not valid DER");
    TRY(anchor_svid_key_check(req->key, err));
    TRY(check_named_curve(req->spki, err));
    *out = req;
    req = NULL;
    rc = 0;
out:
    ERR_clear_error();
    anchor_svid_request_free(req);
    return rc;
}

EVP_PKEY *anchor_svid_request_get0_key(const struct anchor_svid_request *req)
{
    return req->key;
}

void anchor_svid_request_free(struct anchor_svid_request *req)
{
    if (req == NULL)
        return;
    if (req->csr != NULL)
        X509_REQ_free(req->csr);
    else
        X509_PUBKEY_free(req->spki);
    free(req);
}

static int is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* A hostname (RFC 1123 labels of letters, digits and "-", not at either end
 * of a label), at most 253 bytes, optionally led by a "*." wildcard label. */
static int dns_check(const char *name, struct anchor_err *err)
{
    size_t len = strlen(name), i = 0, label = 0;

    if (len >= 2 && name[0] == '*' && name[1] == '.')
        i = 2;
    if (len == 0 || len > 253 || i == len)
        goto bad;
    for (size_t start = i; i <= len; i++) {
        if (i < len && name[i] != '.') {
            if (!is_ldh((unsigned char)name[i]))
                goto bad;
            continue;
        }
        label = i - start;
        if (label == 0 || label > 63 || name[start] == '-' || name[i - 1] == '-')
            goto bad;
        start = i + 1;
    }
    return 0;
bad:
    anchor_err_set(err, "invalid DNS name \"%.64s\"", name);
    return -1;
}

static int add_eku(X509 *x, struct anchor_err *err)
{
    int rc = -1;
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();

    ENSURE_OSSL(eku != NULL, err, "out of memory");
    ENSURE_OSSL(sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) > 0 &&
                    sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) > 0,
                err, "out of memory");
    ENSURE_OSSL(X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_REPLACE) == 1, err,
                "cannot add extendedKeyUsage");
    rc = 0;
out:
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free); /* static objects are not freed */
    return rc;
}

static int set_subject(X509 *x, const X509_NAME *subject, struct anchor_err *err)
{
    int rc = -1;
    X509_NAME *name = NULL;

    if (subject != NULL) {
        ENSURE_OSSL(X509_set_subject_name(x, subject) == 1, err, "cannot set the subject");
        return 0;
    }
    name = X509_NAME_new();
    ENSURE_OSSL(name != NULL &&
                    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                               (const unsigned char *)DEFAULT_SUBJECT_O, -1, -1,
                                               0) == 1 &&
                    X509_set_subject_name(x, name) == 1,
                err, "cannot set the subject");
    rc = 0;
out:
    X509_NAME_free(name);
    return rc;
}

/* The validity of a certificate issued at `now`: backdated a little but not
 * before the CA's own notBefore, and never past anything on the CA's path. */
static int validity(time_t *nb, time_t *na, const struct anchor_ca *ca, time_t now, long ttl,
                    struct anchor_err *err)
{
    int rc = -1;
    char when[64];

    anchor__time_string(when, sizeof(when), ca->not_after);
    ENSURE(now < ca->not_after, err, "CA certificate expired at %s; it can no longer issue", when);
    *nb = now - ANCHOR_CA_BACKDATE;
    if (*nb < ca->not_before)
        *nb = ca->not_before;
    *na = ttl > ca->not_after - now ? ca->not_after : now + ttl;
    rc = 0;
out:
    return rc;
}

/* Puts the received key into x as it is: algorithm and key bits copied,
 * nothing decoded or encoded (X509_set_pubkey would encode the EVP_PKEY and
 * decode the result again, several times the cost of the signature). */
static int copy_spki(X509 *x, const X509_PUBKEY *spki, struct anchor_err *err)
{
    int rc = -1, ptype, len;
    ASN1_OBJECT *alg_oid = NULL;
    const ASN1_OBJECT *oid;
    const void *pval;
    void *param = NULL;
    const unsigned char *bits;
    unsigned char *copy = NULL;
    X509_ALGOR *alg;

    ENSURE_OSSL(X509_PUBKEY_get0_param(NULL, &bits, &len, &alg, spki) == 1 && len > 0, err,
                "cannot read the requested key");
    X509_ALGOR_get0(&oid, &ptype, &pval, alg);
    /* EC keys name their curve by OID; RSA keys have a NULL parameter. */
    if (ptype == V_ASN1_OBJECT) {
        param = OBJ_dup(pval);
        ENSURE_OSSL(param != NULL, err, "out of memory");
    } else {
        ENSURE(ptype == V_ASN1_NULL || ptype == V_ASN1_UNDEF, err,
               "unsupported key parameters in the request");
    }
    alg_oid = OBJ_dup(oid);
    copy = OPENSSL_memdup(bits, (size_t)len);
    ENSURE_OSSL(alg_oid != NULL && copy != NULL, err, "out of memory");
    ENSURE_OSSL(X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), alg_oid, ptype, param, copy, len) ==
                    1,
                err, "cannot set the SVID's key");
    alg_oid = NULL; /* owned by x from here */
    param = NULL;
    copy = NULL;
    rc = 0;
out:
    ASN1_OBJECT_free(alg_oid);
    ASN1_OBJECT_free(param);
    OPENSSL_free(copy);
    return rc;
}

/* Builds and signs an SVID for key; spki (when non-NULL) is key as received
 * and is copied in, else key is encoded. */
static int build(X509 **out, struct anchor_svid_meta *meta, const struct anchor_ca *ca,
                 const struct anchor_spiffeid *id, const X509_PUBKEY *spki, EVP_PKEY *key,
                 const struct anchor_svid_options *opt, struct anchor_err *err)
{
    int rc = -1, san_critical;
    X509 *x = NULL;
    time_t now = opt->now != 0 ? opt->now : time(NULL), nb, na;
    unsigned usage = KU_DIGITAL_SIGNATURE;

    ENSURE(opt->ttl > 0, err, "SVID TTL must be positive (got %ld)", opt->ttl);
    ENSURE(anchor_spiffeid_member_of(id, ca->trust_domain), err,
           "SPIFFE ID %s is not in trust domain \"%s\"", anchor_spiffeid_str(id), ca->trust_domain);
    /* SPIFFE X509-SVID 3: a leaf's SPIFFE ID has a path. */
    ENSURE(anchor_spiffeid_path(id)[0] != '\0', err,
           "SPIFFE ID %s has no path; a leaf SVID needs one", anchor_spiffeid_str(id));
    TRY(anchor_svid_key_check(key, err));
    ENSURE(opt->n_dns_names <= ANCHOR_SVID_MAX_DNS_NAMES, err,
           "too many DNS names (%zu, at most %d)", opt->n_dns_names, ANCHOR_SVID_MAX_DNS_NAMES);
    for (size_t i = 0; i < opt->n_dns_names; i++)
        TRY(dns_check(opt->dns_names[i], err));
    TRY(validity(&nb, &na, ca, now, opt->ttl, err));

    x = X509_new();
    ENSURE_OSSL(x != NULL, err, "out of memory");
    ENSURE_OSSL(X509_set_version(x, X509_VERSION_3) == 1 &&
                    X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) == 1,
                err, "cannot make the SVID");
    if (spki != NULL)
        TRY(copy_spki(x, spki, err));
    else
        ENSURE_OSSL(X509_set_pubkey(x, key) == 1, err, "cannot set the SVID's key");
    TRY(set_subject(x, opt->subject, err));
    TRY(anchor__cert_set_serial(x, err));
    TRY(anchor__cert_set_validity(x, nb, na, err));
    /* SPIFFE X509-SVID 4.1, 4.3, 4.4: a leaf is CA:FALSE, has digitalSignature
     * and neither keyCertSign nor cRLSign. keyEncipherment for RSA keys lets
     * TLS 1.2 RSA key exchange work; X509-SVID allows it. */
    TRY(anchor__cert_add_basic_constraints(x, 0, err));
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
        usage |= KU_KEY_ENCIPHERMENT;
    TRY(anchor__cert_add_key_usage(x, usage, err));
    TRY(add_eku(x, err));
    TRY(anchor__cert_add_key_ids(x, ca->cert, err));
    /* SPIFFE X509-SVID 2: exactly one URI SAN. RFC 5280 4.2.1.6: critical when
     * the subject is empty. */
    san_critical = X509_NAME_entry_count(X509_get_subject_name(x)) == 0;
    TRY(anchor__cert_add_san(x, anchor_spiffeid_str(id), opt->dns_names, opt->n_dns_names,
                             san_critical, err));
    ENSURE_OSSL(X509_sign(x, ca->key, EVP_sha256()) > 0, err, "cannot sign the SVID");
    if (meta != NULL) {
        const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
        const unsigned char *b = ASN1_STRING_get0_data(serial);
        size_t n = (size_t)ASN1_STRING_length(serial);

        ENSURE(n > 0 && n * 2 < sizeof(meta->serial), err, "cannot read the serial");
        for (size_t i = 0; i < n; i++) {
            static const char hex[] = "0123456789abcdef";

            meta->serial[2 * i] = hex[b[i] >> 4];
            meta->serial[2 * i + 1] = hex[b[i] & 0xf];
        }
        meta->serial[2 * n] = '\0';
        meta->not_before = nb;
        meta->not_after = na;
    }
    *out = x;
    x = NULL;
    rc = 0;
out:
    X509_free(x);
    return rc;
}

int anchor_ca_issue_svid(uint8_t **der, size_t *der_len, struct anchor_svid_meta *meta,
                         const struct anchor_ca *ca, const struct anchor_spiffeid *id,
                         const struct anchor_svid_request *req,
                         const struct anchor_svid_options *opt, struct anchor_err *err)
{
    int rc = -1, len;
    X509 *x = NULL;
    unsigned char *buf = NULL;
    struct anchor_svid_meta m;

    TRY(build(&x, &m, ca, id, req->spki, req->key, opt, err));
    len = i2d_X509(x, &buf);
    ENSURE_OSSL(len > 0, err, "cannot encode the SVID");
    *der = buf;
    *der_len = (size_t)len;
    if (meta != NULL)
        *meta = m;
    rc = 0;
out:
    X509_free(x);
    return rc;
}

int anchor_ca_issue_svid_x509(X509 **out, const struct anchor_ca *ca,
                              const struct anchor_spiffeid *id, EVP_PKEY *pubkey,
                              const struct anchor_svid_options *opt, struct anchor_err *err)
{
    return build(out, NULL, ca, id, NULL, pubkey, opt, err);
}

int anchor_ca_issue_server_cert(X509 **cert, EVP_PKEY **key, const struct anchor_ca *ca,
                                enum anchor_key_type key_type,
                                const struct anchor_svid_options *opt, struct anchor_err *err)
{
    int rc = -1;
    EVP_PKEY *k = NULL;
    X509 *x = NULL;
    struct anchor_spiffeid *id = NULL;

    TRY(anchor_spiffeid_from_path(&id, ca->trust_domain, "/server", err));
    TRY(anchor_key_generate(&k, key_type, err));
    TRY(anchor_ca_issue_svid_x509(&x, ca, id, k, opt, err));
    *cert = x;
    *key = k;
    x = NULL;
    k = NULL;
    rc = 0;
out:
    anchor_spiffeid_free(id);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

int anchor_svid_get_spiffeid(struct anchor_spiffeid **out, const X509 *cert, struct anchor_err *err)
{
    int rc = -1, crit = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    const ASN1_IA5STRING *uri = NULL;

    /* crit == -2: more than one subjectAltName extension. */
    ENSURE(crit != -2, err, "certificate has more than one subjectAltName extension");
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

        if (gn->type != GEN_URI)
            continue;
        ENSURE(uri == NULL, err, "certificate has more than one URI SAN");
        uri = gn->d.uniformResourceIdentifier;
    }
    ENSURE(uri != NULL, err, "certificate has no URI SAN");
    TRY(anchor_spiffeid_parse(out, (const char *)ASN1_STRING_get0_data(uri),
                              (size_t)ASN1_STRING_length(uri), err));
    rc = 0;
out:
    GENERAL_NAMES_free(names);
    return rc;
}
