/*
 * The CA, X.509 SVIDs and trust bundles.
 *
 * The CA directory: made on first start (key mode 0600), the same root on
 * the second, and refused with its exact message when the key is readable by
 * others, tampered with, swapped for another key, missing, or the root has
 * expired or belongs to another trust domain. Upstream CAs: a chain to a root
 * in the file or in a bundle file, and the ways such a chain can be wrong.
 * SVIDs: verified back with OpenSSL against the root, then every extension
 * checked one by one against SPIFFE X509-SVID; the requests they come from
 * (CSR, public key) beside their hostile twins. Bundles: PEM and JWKS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "anchor/ca.h"
#include "ca/internal.h"

#define TD  "example.org"
#define NOW ((time_t)1800000000) /* 2027-01-15 */

/* --- helpers ----------------------------------------------------------------- */

struct fixture {
    char dir[256];
};

static void rm_rf(const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/anchor-test-ca-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    rm_rf(f->dir);
    free(f);
    return 0;
}

static void path_in(char *buf, size_t size, const struct fixture *f, const char *sub,
                    const char *name)
{
    snprintf(buf, size, "%s/%s/%s", f->dir, sub, name);
}

static struct anchor_ca_options dir_options(const struct fixture *f, char *dir, size_t size)
{
    struct anchor_ca_options o;

    memset(&o, 0, sizeof(o));
    snprintf(dir, size, "%s/ca", f->dir);
    o.trust_domain = TD;
    o.dir = dir;
    o.now = NOW;
    return o;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void write_pem_certs(const char *path, X509 *const *certs, size_t n)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(PEM_write_X509(fp, certs[i]), 1);
    assert_int_equal(fclose(fp), 0);
}

static void write_pem_key(const char *path, EVP_PKEY *key, mode_t mode)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");

    assert_non_null(k);
    return k;
}

/* A test certificate: subject CN=cn, signed by issuer/issuer_key (self-signed
 * when issuer is NULL), CA or not, valid NOW-1d .. NOW+days, with an optional
 * URI SAN. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int ca,
                       long days, const char *uri)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    struct anchor_err err;

    assert_non_null(x);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_int_equal(anchor__cert_set_serial(x, &err), 0);
    assert_int_equal(anchor__cert_set_validity(x, NOW - 86400, NOW + days * 86400, &err), 0);
    assert_int_equal(anchor__cert_add_basic_constraints(x, ca, &err), 0);
    assert_int_equal(anchor__cert_add_key_usage(
                         x, ca ? KU_KEY_CERT_SIGN | KU_CRL_SIGN : KU_DIGITAL_SIGNATURE, &err),
                     0);
    assert_int_equal(anchor__cert_add_key_ids(x, issuer ? issuer : x, &err), 0);
    if (uri != NULL)
        assert_int_equal(anchor__cert_add_san(x, uri, NULL, 0, 0, &err), 0);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

/* Verifies leaf against roots with the untrusted chain at NOW. Returns the
 * X509_V_ code. */
static int verify(X509 *leaf, STACK_OF(X509) * roots, STACK_OF(X509) * chain)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int code;

    for (int i = 0; i < sk_X509_num(roots); i++)
        assert_int_equal(X509_STORE_add_cert(store, sk_X509_value(roots, i)), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, chain), 1);
    X509_STORE_CTX_set_time(ctx, 0, NOW);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    code = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return code;
}

static time_t asn1_time(const ASN1_TIME *t)
{
    time_t out = 0;
    struct anchor_err err;

    assert_int_equal(anchor__asn1_time_to_time_t(&out, t, &err), 0);
    return out;
}

static int ext_critical(X509 *x, int nid)
{
    int idx = X509_get_ext_by_NID(x, nid, -1);

    assert_true(idx >= 0);
    /* exactly one extension of this kind */
    assert_int_equal(X509_get_ext_by_NID(x, nid, idx), -1);
    return X509_EXTENSION_get_critical(X509_get_ext(x, idx));
}

static struct anchor_ca *open_dir_ca(const struct fixture *f, enum anchor_key_type type)
{
    char dir[300];
    struct anchor_ca_options o = dir_options(f, dir, sizeof(dir));
    struct anchor_ca *ca = NULL;
    struct anchor_err err;

    o.key_type = type;
    if (anchor_ca_open(&ca, &o, &err) != 0)
        fail_msg("anchor_ca_open: %s", anchor_err_msg(&err));
    return ca;
}

/* --- keys -------------------------------------------------------------------- */

static void test_key_type(void **state)
{
    enum anchor_key_type t = ANCHOR_KEY_RSA_2048;
    struct anchor_err err;
    static const char *const bad[] = {"ec-p384", "EC-P256", "rsa", "", "rsa-2048 "};

    (void)state;
    assert_int_equal(anchor_key_type_parse(&t, "ec-p256", &err), 0);
    assert_int_equal(t, ANCHOR_KEY_EC_P256);
    assert_int_equal(anchor_key_type_parse(&t, "rsa-2048", &err), 0);
    assert_int_equal(t, ANCHOR_KEY_RSA_2048);
    assert_string_equal(anchor_key_type_name(ANCHOR_KEY_EC_P256), "ec-p256");
    assert_string_equal(anchor_key_type_name(ANCHOR_KEY_RSA_2048), "rsa-2048");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[128];

        assert_int_equal(anchor_key_type_parse(&t, bad[i], &err), -1);
        snprintf(want, sizeof(want), "unknown key type \"%s\" (expected ec-p256 or rsa-2048)",
                 bad[i]);
        assert_string_equal(anchor_err_msg(&err), want);
    }
}

/* --- the CA directory -------------------------------------------------------- */

static void test_dir_create_and_reload(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_EC_P256), *again;
    char key_path[512], cert_path[512], dir[300];
    struct stat st;
    X509 *root;
    ASN1_OCTET_STRING *uri_check;
    struct anchor_spiffeid *id = NULL;
    struct anchor_err err;

    path_in(key_path, sizeof(key_path), f, "ca", ANCHOR_CA_KEY_FILE);
    path_in(cert_path, sizeof(cert_path), f, "ca", ANCHOR_CA_CERT_FILE);
    snprintf(dir, sizeof(dir), "%s/ca", f->dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(key_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(cert_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_false(anchor_ca_is_upstream(ca));
    assert_string_equal(anchor_ca_trust_domain(ca), TD);
    assert_int_equal(sk_X509_num(anchor_ca_get0_chain(ca)), 0);
    assert_int_equal(sk_X509_num(anchor_ca_get0_roots(ca)), 1);

    /* the root's profile */
    root = anchor_ca_get0_cert(ca);
    assert_ptr_equal(root, sk_X509_value(anchor_ca_get0_roots(ca), 0));
    assert_int_equal(X509_get_version(root), X509_VERSION_3);
    assert_int_equal(X509_check_ca(root), 1);
    assert_true(ext_critical(root, NID_basic_constraints));
    assert_true(ext_critical(root, NID_key_usage));
    assert_int_equal(X509_get_key_usage(root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_check_issued(root, root), X509_V_OK);
    assert_int_equal(X509_verify(root, X509_get0_pubkey(root)), 1);
    assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(root)), EVP_PKEY_EC);
    uri_check = (ASN1_OCTET_STRING *)X509_get0_subject_key_id(root);
    assert_non_null(uri_check);
    assert_int_equal(ASN1_OCTET_STRING_cmp(uri_check, X509_get0_authority_key_id(root)), 0);
    assert_int_equal(anchor_svid_get_spiffeid(&id, root, &err), 0);
    assert_string_equal(anchor_spiffeid_str(id), "spiffe://" TD);
    anchor_spiffeid_free(id);
    assert_int_equal(asn1_time(X509_get0_notBefore(root)), NOW - ANCHOR_CA_BACKDATE);
    assert_int_equal(asn1_time(X509_get0_notAfter(root)), NOW + ANCHOR_CA_DEFAULT_ROOT_TTL);
    assert_int_equal(anchor_ca_not_after(ca), NOW + ANCHOR_CA_DEFAULT_ROOT_TTL);

    /* second start: the same root and key */
    again = open_dir_ca(f, ANCHOR_KEY_RSA_2048); /* the type only matters for a new root */
    assert_int_equal(X509_cmp(anchor_ca_get0_cert(again), root), 0);
    assert_int_equal(EVP_PKEY_eq(again->key, ca->key), 1);
    anchor_ca_free(again);
    anchor_ca_free(ca);
}

static void test_dir_rsa_root(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_RSA_2048);
    EVP_PKEY *pub = X509_get0_pubkey(anchor_ca_get0_cert(ca));

    assert_int_equal(EVP_PKEY_get_base_id(pub), EVP_PKEY_RSA);
    assert_int_equal(EVP_PKEY_get_bits(pub), 2048);
    assert_int_equal(X509_get_signature_nid(anchor_ca_get0_cert(ca)), NID_sha256WithRSAEncryption);
    anchor_ca_free(ca);
}

/* Copies msg into buf with {key} and {cert} replaced by the paths. */
static void subst(char *buf, size_t size, const char *msg, const char *key, const char *cert)
{
    size_t o = 0;

    while (*msg != '\0' && o + 1 < size) {
        const char *rep = NULL;

        if (strncmp(msg, "{key}", 5) == 0)
            rep = key, msg += 5;
        else if (strncmp(msg, "{cert}", 6) == 0)
            rep = cert, msg += 6;
        if (rep == NULL) {
            buf[o++] = *msg++;
            continue;
        }
        for (; *rep != '\0' && o + 1 < size; rep++)
            buf[o++] = *rep;
    }
    buf[o] = '\0';
}

/* Each row damages the directory made by a first start, then expects the
 * second start to fail with msg ({key}: key path, {cert}: cert path). */
struct dir_fault {
    const char *name;
    void (*damage)(const struct fixture *f, const char *key, const char *cert);
    const char *msg;
    time_t now;
    const char *trust_domain;
};

static void chmod_644(const struct fixture *f, const char *key, const char *cert)
{
    (void)f;
    (void)cert;
    assert_int_equal(chmod(key, 0644), 0);
}

static void chmod_640(const struct fixture *f, const char *key, const char *cert)
{
    (void)f;
    (void)cert;
    assert_int_equal(chmod(key, 0640), 0);
}

static void tamper_key(const struct fixture *f, const char *key, const char *cert)
{
    static const char junk[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

    (void)f;
    (void)cert;
    write_file(key, junk, sizeof(junk) - 1, 0600);
}

static void flip_key_byte(const struct fixture *f, const char *key, const char *cert)
{
    FILE *fp = fopen(key, "r+b");
    int c;

    (void)f;
    (void)cert;
    assert_non_null(fp);
    /* a base64 character in the middle of the body */
    assert_int_equal(fseek(fp, 60, SEEK_SET), 0);
    c = fgetc(fp);
    assert_int_equal(fseek(fp, 60, SEEK_SET), 0);
    fputc(c == 'A' ? 'B' : 'A', fp);
    assert_int_equal(fclose(fp), 0);
}

static void swap_key(const struct fixture *f, const char *key, const char *cert)
{
    EVP_PKEY *other = ec_key();

    (void)f;
    (void)cert;
    write_pem_key(key, other, 0600);
    EVP_PKEY_free(other);
}

static void remove_key(const struct fixture *f, const char *key, const char *cert)
{
    (void)f;
    (void)cert;
    assert_int_equal(unlink(key), 0);
}

static void non_ca_cert(const struct fixture *f, const char *key, const char *cert)
{
    EVP_PKEY *k = NULL;
    FILE *fp = fopen(key, "rb");
    X509 *x;

    (void)f;
    assert_non_null(fp);
    k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(k);
    x = make_cert("leaf", k, NULL, NULL, 0, 10, "spiffe://" TD);
    write_pem_certs(cert, &x, 1);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void two_certs(const struct fixture *f, const char *key, const char *cert)
{
    FILE *fp = fopen(cert, "rb");
    X509 *x[2];

    (void)f;
    (void)key;
    assert_non_null(fp);
    x[0] = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    x[1] = x[0];
    write_pem_certs(cert, x, 2);
    X509_free(x[0]);
}

static void nothing(const struct fixture *f, const char *key, const char *cert)
{
    (void)f;
    (void)key;
    (void)cert;
}

static const struct dir_fault dir_faults[] = {
    {"key 0644", chmod_644,
     "CA key {key} is accessible by group or others (mode 0644); it must be 0600", 0, NULL},
    {"key 0640", chmod_640,
     "CA key {key} is accessible by group or others (mode 0640); it must be 0600", 0, NULL},
    {"tampered key", tamper_key,
     "{key}: PEM block 1 (PRIVATE KEY): not a valid private key: the DER is not of the labelled "
     "form",
     0, NULL},
    {"flipped key byte", flip_key_byte, NULL, 0, NULL},
    {"other key", swap_key, "CA key {key} does not match certificate {cert}", 0, NULL},
    {"key missing", remove_key, "CA key {key} is missing (certificate {cert} is there)", 0, NULL},
    {"not a CA", non_ca_cert, "CA certificate {cert} is not a CA certificate", 0, NULL},
    {"two certificates", two_certs, "CA certificate {cert} holds 2 certificates, not one", 0, NULL},
    {"expired", nothing, "CA certificate {cert} expired at 2032-01-14T08:00:00Z",
     NOW + ANCHOR_CA_DEFAULT_ROOT_TTL, NULL},
    {"not yet valid", nothing, "CA certificate {cert} is not valid before 2027-01-15T07:59:00Z",
     NOW - 3600, NULL},
    {"other trust domain", nothing,
     "CA certificate {cert} is for trust domain \"example.org\", not \"other.org\"", 0,
     "other.org"},
};

static void test_dir_faults(void **state)
{
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(dir_faults) / sizeof(dir_faults[0]); i++) {
        const struct dir_fault *c = &dir_faults[i];
        char key_path[512], cert_path[512], dir[300], want[2048];
        struct anchor_ca_options o = dir_options(f, dir, sizeof(dir));
        struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_EC_P256);
        struct anchor_err err;

        anchor_ca_free(ca);
        ca = NULL;
        path_in(key_path, sizeof(key_path), f, "ca", ANCHOR_CA_KEY_FILE);
        path_in(cert_path, sizeof(cert_path), f, "ca", ANCHOR_CA_CERT_FILE);
        c->damage(f, key_path, cert_path);
        if (c->now != 0)
            o.now = c->now;
        if (c->trust_domain != NULL)
            o.trust_domain = c->trust_domain;
        if (anchor_ca_open(&ca, &o, &err) == 0)
            fail_msg("%s: accepted", c->name);
        assert_null(ca);
        if (c->msg != NULL) {
            subst(want, sizeof(want), c->msg, key_path, cert_path);
            if (strcmp(anchor_err_msg(&err), want) != 0)
                fail_msg("%s: got \"%s\", want \"%s\"", c->name, anchor_err_msg(&err), want);
        } else {
            /* a damaged key never loads; the exact words are the PEM/DER reader's */
            if (strstr(anchor_err_msg(&err), key_path) == NULL)
                fail_msg("%s: \"%s\" does not name the key", c->name, anchor_err_msg(&err));
        }
        rm_rf(dir);
    }
}

static void test_dir_cert_missing_remade(void **state)
{
    /* An interrupted first start left only the key: the root is made again
     * from that key. */
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_EC_P256), *again;
    char cert_path[512];
    EVP_PKEY *first_pub = X509_get0_pubkey(anchor_ca_get0_cert(ca));

    path_in(cert_path, sizeof(cert_path), f, "ca", ANCHOR_CA_CERT_FILE);
    assert_int_equal(unlink(cert_path), 0);
    again = open_dir_ca(f, ANCHOR_KEY_EC_P256);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(anchor_ca_get0_cert(again)), first_pub), 1);
    assert_int_not_equal(X509_cmp(anchor_ca_get0_cert(again), anchor_ca_get0_cert(ca)), 0);
    anchor_ca_free(again);
    anchor_ca_free(ca);
}

static void test_options_faults(void **state)
{
    struct fixture *f = *state;
    char dir[300];
    struct anchor_ca_options o = dir_options(f, dir, sizeof(dir));
    struct anchor_ca *ca = NULL;
    struct anchor_err err;

    o.upstream_cert_path = "/nonexistent";
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "set either a CA directory or an upstream CA certificate, not both");
    o.upstream_cert_path = NULL;
    o.trust_domain = "Example.org";
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid trust domain: trust domain characters are limited to lowercase "
                        "letters, numbers, dots, dashes, and underscores");
    o.trust_domain = TD;
    snprintf(dir, sizeof(dir), "%s/missing/ca", f->dir);
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    char want[512];
    snprintf(want, sizeof(want), "cannot create CA directory %s: No such file or directory", dir);
    assert_string_equal(anchor_err_msg(&err), want);
    assert_null(ca);
}

/* --- SVIDs ------------------------------------------------------------------- */

static X509 *issue(const struct anchor_ca *ca, const char *id_str, EVP_PKEY *pub,
                   const struct anchor_svid_options *opt)
{
    struct anchor_spiffeid *id = NULL;
    struct anchor_err err;
    X509 *x = NULL;

    assert_int_equal(anchor_spiffeid_parse(&id, id_str, strlen(id_str), &err), 0);
    if (anchor_ca_issue_svid_x509(&x, ca, id, pub, opt, &err) != 0)
        fail_msg("issue: %s", anchor_err_msg(&err));
    anchor_spiffeid_free(id);
    return x;
}

/* Checks an SVID against SPIFFE X509-SVID, extension by extension. */
static void check_svid_profile(X509 *x, const struct anchor_ca *ca, const char *id, EVP_PKEY *pub,
                               int rsa)
{
    GENERAL_NAMES *names;
    int uris = 0;
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    const ASN1_OCTET_STRING *ski, *akid;
    char subject[256];

    assert_int_equal(verify(x, anchor_ca_get0_roots(ca), anchor_ca_get0_chain(ca)), X509_V_OK);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    /* serial: positive, at most 128 bits */
    assert_false(BN_is_negative(bn));
    assert_false(BN_is_zero(bn));
    assert_true(BN_num_bits(bn) <= 128);
    BN_free(bn);
    /* subject and issuer */
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    assert_string_equal(subject, "/O=anchor");
    assert_int_equal(
        X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(anchor_ca_get0_cert(ca))), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), pub), 1);
    /* X509-SVID 4.1: basicConstraints present, critical, CA false */
    assert_true(ext_critical(x, NID_basic_constraints));
    assert_int_equal(X509_check_ca(x), 0);
    /* X509-SVID 4.3: keyUsage critical, digitalSignature, no keyCertSign/cRLSign */
    assert_true(ext_critical(x, NID_key_usage));
    assert_int_equal(X509_get_key_usage(x),
                     rsa ? KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT : KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_key_usage(x) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN), 0);
    /* X509-SVID 4.4: serverAuth and clientAuth */
    assert_false(ext_critical(x, NID_ext_key_usage));
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    /* X509-SVID 2: exactly one URI SAN, the ID */
    assert_false(ext_critical(x, NID_subject_alt_name));
    names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(names);
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

        if (gn->type != GEN_URI)
            continue;
        uris++;
        assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
                            id);
    }
    assert_int_equal(uris, 1);
    GENERAL_NAMES_free(names);
    /* RFC 5280 4.2.1.1, 4.2.1.2 */
    assert_int_equal(X509_pubkey_digest(x, EVP_sha1(), md, &mdlen), 1);
    ski = X509_get0_subject_key_id(x);
    assert_non_null(ski);
    assert_int_equal(ASN1_STRING_length(ski), mdlen);
    assert_memory_equal(ASN1_STRING_get0_data(ski), md, mdlen);
    akid = X509_get0_authority_key_id(x);
    assert_non_null(akid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid, X509_get0_subject_key_id(anchor_ca_get0_cert(ca))),
                     0);
    assert_false(ext_critical(x, NID_subject_key_identifier));
    assert_false(ext_critical(x, NID_authority_key_identifier));
    assert_int_equal(X509_get_ext_count(x), 6);
}

static void test_svid_ec(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_EC_P256);
    EVP_PKEY *key = ec_key();
    struct anchor_svid_options o = {.ttl = 3600, .now = NOW};
    X509 *x = issue(ca, "spiffe://" TD "/agents/x509pop/ab", key, &o), *y;
    struct anchor_spiffeid *id = NULL;
    struct anchor_err err;

    check_svid_profile(x, ca, "spiffe://" TD "/agents/x509pop/ab", key, 0);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    assert_int_equal(asn1_time(X509_get0_notBefore(x)), NOW - ANCHOR_CA_BACKDATE);
    assert_int_equal(asn1_time(X509_get0_notAfter(x)), NOW + 3600);
    assert_int_equal(anchor_svid_get_spiffeid(&id, x, &err), 0);
    assert_string_equal(anchor_spiffeid_str(id), "spiffe://" TD "/agents/x509pop/ab");
    anchor_spiffeid_free(id);
    /* serials differ between SVIDs */
    y = issue(ca, "spiffe://" TD "/agents/x509pop/ab", key, &o);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(y)), 0);
    /* hostile twin: the SVID does not verify against another root */
    {
        EVP_PKEY *k2 = ec_key();
        X509 *other = make_cert("other root", k2, NULL, NULL, 1, 10, NULL);
        STACK_OF(X509) *roots = sk_X509_new_null();

        sk_X509_push(roots, other);
        assert_int_equal(verify(x, roots, NULL), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
        sk_X509_pop_free(roots, X509_free);
        EVP_PKEY_free(k2);
    }
    X509_free(y);
    X509_free(x);
    EVP_PKEY_free(key);
    anchor_ca_free(ca);
}

static void test_svid_rsa_by_rsa_ca(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_RSA_2048);
    EVP_PKEY *key = EVP_RSA_gen(2048);
    struct anchor_svid_options o = {.ttl = 600, .now = NOW};
    X509 *x = issue(ca, "spiffe://" TD "/w/rsa", key, &o);

    check_svid_profile(x, ca, "spiffe://" TD "/w/rsa", key, 1);
    assert_int_equal(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
    X509_free(x);
    EVP_PKEY_free(key);
    anchor_ca_free(ca);
}

static void test_svid_options(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_EC_P256);
    EVP_PKEY *key = ec_key();
    const char *dns[] = {"host1.example.com", "*.svc.example.com"};
    X509_NAME *subject = X509_NAME_new(), *empty = X509_NAME_new();
    struct anchor_svid_options o = {
        .ttl = 100L * 365 * 86400, .now = NOW, .dns_names = dns, .n_dns_names = 2};
    X509 *x;
    GENERAL_NAMES *names;
    char buf[256];

    /* the TTL is cut at the CA's notAfter */
    x = issue(ca, "spiffe://" TD "/a", key, &o);
    assert_int_equal(asn1_time(X509_get0_notAfter(x)), anchor_ca_not_after(ca));
    names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(names), 3);
    assert_int_equal(sk_GENERAL_NAME_value(names, 1)->type, GEN_DNS);
    assert_string_equal(ASN1_STRING_get0_data(sk_GENERAL_NAME_value(names, 1)->d.dNSName),
                        "host1.example.com");
    assert_string_equal(ASN1_STRING_get0_data(sk_GENERAL_NAME_value(names, 2)->d.dNSName),
                        "*.svc.example.com");
    GENERAL_NAMES_free(names);
    X509_free(x);

    /* a chosen subject */
    X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC, (const unsigned char *)"Acme", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)"web", -1, -1,
                               0);
    o.subject = subject;
    o.n_dns_names = 0;
    o.ttl = 60;
    x = issue(ca, "spiffe://" TD "/a", key, &o);
    X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof(buf));
    assert_string_equal(buf, "/O=Acme/CN=web");
    assert_false(ext_critical(x, NID_subject_alt_name));
    X509_free(x);

    /* an empty subject makes the SAN critical (RFC 5280 4.2.1.6) */
    o.subject = empty;
    x = issue(ca, "spiffe://" TD "/a", key, &o);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 0);
    assert_true(ext_critical(x, NID_subject_alt_name));
    assert_int_equal(verify(x, anchor_ca_get0_roots(ca), NULL), X509_V_OK);
    X509_free(x);

    X509_NAME_free(subject);
    X509_NAME_free(empty);
    EVP_PKEY_free(key);
    anchor_ca_free(ca);
}

static void test_svid_faults(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_EC_P256);
    EVP_PKEY *ec = ec_key(), *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
             *rsa1024 = EVP_RSA_gen(1024), *p224 = EVP_EC_gen("P-224");
    const char *bad_dns[] = {"-bad.example.com"};
    const char *bad_dns2[] = {"a..b"};
    const char *bad_dns3[] = {"a*.b"};
    const char *many_dns[ANCHOR_SVID_MAX_DNS_NAMES + 1];
    struct {
        const char *id;
        EVP_PKEY *key;
        struct anchor_svid_options o;
        const char *msg;
    } cases[] = {
        {"spiffe://other.org/a",
         ec,
         {.ttl = 60, .now = NOW},
         "SPIFFE ID spiffe://other.org/a is not in trust domain \"example.org\""},
        {"spiffe://" TD,
         ec,
         {.ttl = 60, .now = NOW},
         "SPIFFE ID spiffe://example.org has no path; a leaf SVID needs one"},
        {"spiffe://" TD "/a", ec, {.ttl = 0, .now = NOW}, "SVID TTL must be positive (got 0)"},
        {"spiffe://" TD "/a", ec, {.ttl = -5, .now = NOW}, "SVID TTL must be positive (got -5)"},
        {"spiffe://" TD "/a", ed, {.ttl = 60, .now = NOW}, "unsupported key type ED25519"},
        {"spiffe://" TD "/a", p224, {.ttl = 60, .now = NOW}, "unsupported key type EC secp224r1"},
        {"spiffe://" TD "/a",
         rsa1024,
         {.ttl = 60, .now = NOW},
         "RSA key of 1024 bits is outside 2048..8192"},
        {"spiffe://" TD "/a",
         ec,
         {.ttl = 60, .now = NOW, .dns_names = bad_dns, .n_dns_names = 1},
         "invalid DNS name \"-bad.example.com\""},
        {"spiffe://" TD "/a",
         ec,
         {.ttl = 60, .now = NOW, .dns_names = bad_dns2, .n_dns_names = 1},
         "invalid DNS name \"a..b\""},
        {"spiffe://" TD "/a",
         ec,
         {.ttl = 60, .now = NOW, .dns_names = bad_dns3, .n_dns_names = 1},
         "invalid DNS name \"a*.b\""},
        {"spiffe://" TD "/a",
         ec,
         {.ttl = 60,
          .now = NOW,
          .dns_names = many_dns,
          .n_dns_names = ANCHOR_SVID_MAX_DNS_NAMES + 1},
         "too many DNS names (33, at most 32)"},
        {"spiffe://" TD "/a",
         ec,
         {.ttl = 60, .now = NOW + ANCHOR_CA_DEFAULT_ROOT_TTL},
         "CA certificate expired at 2032-01-14T08:00:00Z; it can no longer issue"},
    };

    (void)state;
    assert_non_null(ed);
    for (size_t i = 0; i < ANCHOR_SVID_MAX_DNS_NAMES + 1; i++)
        many_dns[i] = "a.example.com";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct anchor_spiffeid *id = NULL;
        struct anchor_err err;
        X509 *x = NULL;

        assert_int_equal(anchor_spiffeid_parse(&id, cases[i].id, strlen(cases[i].id), &err), 0);
        if (anchor_ca_issue_svid_x509(&x, ca, id, cases[i].key, &cases[i].o, &err) == 0)
            fail_msg("case %zu accepted", i);
        assert_null(x);
        if (strcmp(anchor_err_msg(&err), cases[i].msg) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, anchor_err_msg(&err), cases[i].msg);
        anchor_spiffeid_free(id);
    }
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(p224);
    anchor_ca_free(ca);
}

static void test_server_cert(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_EC_P256);
    const char *dns[] = {"anchor-server.example.org"};
    struct anchor_svid_options o = {.ttl = 86400, .now = NOW, .dns_names = dns, .n_dns_names = 1};
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    struct anchor_err err;

    assert_int_equal(anchor_ca_issue_server_cert(&cert, &key, ca, ANCHOR_KEY_EC_P256, &o, &err), 0);
    check_svid_profile(cert, ca, "spiffe://" TD "/server", key, 0);
    assert_int_equal(X509_check_private_key(cert, key), 1);
    assert_int_equal(X509_check_host(cert, "anchor-server.example.org", 0, 0, NULL), 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    /* hostile twin: a TTL that cannot be */
    cert = NULL;
    key = NULL;
    o.ttl = 0;
    assert_int_equal(anchor_ca_issue_server_cert(&cert, &key, ca, ANCHOR_KEY_EC_P256, &o, &err),
                     -1);
    assert_string_equal(anchor_err_msg(&err), "SVID TTL must be positive (got 0)");
    assert_null(cert);
    assert_null(key);
    anchor_ca_free(ca);
}

static void test_get_spiffeid_faults(void **state)
{
    EVP_PKEY *k = ec_key();
    X509 *none = make_cert("none", k, NULL, NULL, 0, 1, NULL);
    X509 *bad = make_cert("bad", k, NULL, NULL, 0, 1, "spiffe://Example.org/a");
    X509 *two = make_cert("two", k, NULL, NULL, 0, 1, NULL);
    struct anchor_spiffeid *id = NULL;
    struct anchor_err err;
    const char *uris[] = {"spiffe://" TD "/a", "spiffe://" TD "/b"};
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();

    (void)state;
    assert_int_equal(anchor_svid_get_spiffeid(&id, none, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "certificate has no URI SAN");
    assert_int_equal(anchor_svid_get_spiffeid(&id, bad, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid SPIFFE ID: trust domain characters are limited to lowercase "
                        "letters, numbers, dots, dashes, and underscores");
    for (int i = 0; i < 2; i++) {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();

        ASN1_STRING_set(s, uris[i], -1);
        GENERAL_NAME_set0_value(gn, GEN_URI, s);
        sk_GENERAL_NAME_push(names, gn);
    }
    assert_int_equal(X509_add1_ext_i2d(two, NID_subject_alt_name, names, 0, X509V3_ADD_REPLACE), 1);
    assert_int_equal(anchor_svid_get_spiffeid(&id, two, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "certificate has more than one URI SAN");
    assert_null(id);
    GENERAL_NAMES_free(names);
    X509_free(none);
    X509_free(bad);
    X509_free(two);
    EVP_PKEY_free(k);
}

/* --- requests ---------------------------------------------------------------- */

static size_t make_csr(unsigned char **der, EVP_PKEY *key, const EVP_MD *md)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    int len;

    /* names in a CSR are ignored: the SVID gets the server's */
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"ignored", -1, -1,
                               0);
    assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_true(X509_REQ_sign(req, key, md) > 0);
    *der = NULL;
    len = i2d_X509_REQ(req, der);
    assert_true(len > 0);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return (size_t)len;
}

/* The login path: a request read from DER, an SVID given back as DER. */
static void issue_der_and_check(const struct anchor_ca *ca, struct anchor_svid_request *req,
                                EVP_PKEY *key, int rsa)
{
    struct anchor_spiffeid *id = NULL;
    struct anchor_svid_options o = {.ttl = 3600, .now = NOW};
    struct anchor_svid_meta meta;
    struct anchor_err err;
    uint8_t *der = NULL;
    size_t len = 0;
    const unsigned char *p;
    X509 *x;
    BIGNUM *bn;
    char *hex;

    assert_int_equal(anchor_spiffeid_from_path(&id, TD, "/agents/x509pop/1f", &err), 0);
    if (anchor_ca_issue_svid(&der, &len, &meta, ca, id, req, &o, &err) != 0)
        fail_msg("%s", anchor_err_msg(&err));
    p = der;
    x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    assert_ptr_equal(p, der + len);
    check_svid_profile(x, ca, "spiffe://" TD "/agents/x509pop/1f", key, rsa);
    /* meta: the serial as lowercase hex with an even number of digits */
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    hex = BN_bn2hex(bn);
    for (char *c = hex; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
    assert_string_equal(meta.serial, hex);
    assert_int_equal(strlen(meta.serial) % 2, 0);
    assert_int_equal(meta.not_before, NOW - ANCHOR_CA_BACKDATE);
    assert_int_equal(meta.not_after, NOW + 3600);
    assert_int_equal(asn1_time(X509_get0_notAfter(x)), meta.not_after);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(x);
    OPENSSL_free(der);
    anchor_spiffeid_free(id);
}

static void test_csr(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_EC_P256);
    EVP_PKEY *key = ec_key(), *rsa = EVP_RSA_gen(3072);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    unsigned char *der = NULL, *copy;
    size_t len = make_csr(&der, key, EVP_sha256());
    struct anchor_svid_request *req = NULL;
    struct anchor_err err;

    assert_int_equal(anchor_svid_request_parse_csr(&req, der, len, &err), 0);
    assert_int_equal(EVP_PKEY_eq(anchor_svid_request_get0_key(req), key), 1);
    issue_der_and_check(ca, req, key, 0);
    anchor_svid_request_free(req);
    req = NULL;

    /* hostile twins */
    copy = malloc(len + 1);
    memcpy(copy, der, len);
    copy[len] = 0;
    assert_int_equal(anchor_svid_request_parse_csr(&req, copy, len + 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "CSR is not valid DER");
    assert_int_equal(anchor_svid_request_parse_csr(&req, copy, len - 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "CSR is not valid DER");
    copy[len - 3] ^= 0x01; /* inside the signature */
    assert_int_equal(anchor_svid_request_parse_csr(&req, copy, len, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "CSR signature does not verify");
    assert_int_equal(anchor_svid_request_parse_csr(&req, copy, 0, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "CSR size 0 is outside 1..65536 bytes");
    assert_int_equal(
        anchor_svid_request_parse_csr(&req, copy, ANCHOR_SVID_MAX_REQUEST_BYTES + 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "CSR size 65537 is outside 1..65536 bytes");
    assert_int_equal(anchor_svid_request_parse_csr(&req, (const uint8_t *)"garbage", 7, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "CSR is not valid DER");
    assert_null(req);
    free(copy);
    OPENSSL_free(der);

    /* an RSA key: copied as received, keyEncipherment added */
    len = make_csr(&der, rsa, EVP_sha256());
    assert_int_equal(anchor_svid_request_parse_csr(&req, der, len, &err), 0);
    issue_der_and_check(ca, req, rsa, 1);
    anchor_svid_request_free(req);
    req = NULL;
    OPENSSL_free(der);

    /* a CSR for a key that may not be certified */
    len = make_csr(&der, ed, NULL);
    assert_int_equal(anchor_svid_request_parse_csr(&req, der, len, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "unsupported key type ED25519");
    assert_null(req);
    OPENSSL_free(der);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(key);
    anchor_ca_free(ca);
}

static void test_spki(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_EC_P256);
    EVP_PKEY *key = EVP_EC_gen("P-384"), *rsa1024 = EVP_RSA_gen(1024);
    struct anchor_svid_request *req = NULL;
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    struct anchor_err err;

    assert_true(len > 0);
    assert_int_equal(anchor_svid_request_parse_spki(&req, der, (size_t)len, &err), 0);
    assert_int_equal(EVP_PKEY_eq(anchor_svid_request_get0_key(req), key), 1);
    issue_der_and_check(ca, req, key, 0);
    anchor_svid_request_free(req);
    req = NULL;
    /* hostile twins */
    assert_int_equal(anchor_svid_request_parse_spki(&req, der, (size_t)len - 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "public key is not valid DER");
    assert_int_equal(anchor_svid_request_parse_spki(&req, der, 0, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "public key size 0 is outside 1..65536 bytes");
    OPENSSL_free(der);
    der = NULL;
    len = i2d_PUBKEY(rsa1024, &der);
    assert_int_equal(anchor_svid_request_parse_spki(&req, der, (size_t)len, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "RSA key of 1024 bits is outside 2048..8192");
    assert_null(req);
    OPENSSL_free(der);
    der = NULL;
    /* a P-256 key written with explicit curve parameters (RFC 5480 2.1.1) */
    assert_int_equal(EVP_PKEY_set_utf8_string_param(key, "encoding", "explicit"), 1);
    len = i2d_PUBKEY(key, &der);
    assert_true(len > 0);
    assert_int_equal(anchor_svid_request_parse_spki(&req, der, (size_t)len, &err), -1);
    assert_string_equal(
        anchor_err_msg(&err),
        "EC key with explicit curve parameters is not supported (use a named curve)");
    assert_null(req);
    OPENSSL_free(der);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(key);
    anchor_ca_free(ca);
}

/* --- upstream CAs ------------------------------------------------------------ */

struct pki {
    EVP_PKEY *root_key, *int_key;
    X509 *root, *inter;
    char chain[512], key[512], bundle[512];
};

static void pki_make(struct pki *p, const struct fixture *f)
{
    p->root_key = ec_key();
    p->int_key = ec_key();
    p->root = make_cert("upstream root", p->root_key, NULL, NULL, 1, 3650, NULL);
    p->inter = make_cert("upstream intermediate", p->int_key, p->root, p->root_key, 1, 365,
                         "spiffe://" TD);
    snprintf(p->chain, sizeof(p->chain), "%s/chain.pem", f->dir);
    snprintf(p->key, sizeof(p->key), "%s/int.key", f->dir);
    snprintf(p->bundle, sizeof(p->bundle), "%s/bundle.pem", f->dir);
    write_pem_certs(p->chain, (X509 *[]){p->inter, p->root}, 2);
    write_pem_key(p->key, p->int_key, 0640);
    write_pem_certs(p->bundle, &p->root, 1);
}

static void pki_free(struct pki *p)
{
    X509_free(p->root);
    X509_free(p->inter);
    EVP_PKEY_free(p->root_key);
    EVP_PKEY_free(p->int_key);
}

static struct anchor_ca_options upstream_options(const struct pki *p)
{
    struct anchor_ca_options o;

    memset(&o, 0, sizeof(o));
    o.trust_domain = TD;
    o.upstream_cert_path = p->chain;
    o.upstream_key_path = p->key;
    o.now = NOW;
    return o;
}

static void test_upstream(void **state)
{
    struct fixture *f = *state;
    struct pki p;
    struct anchor_ca_options o;
    struct anchor_ca *ca = NULL;
    struct anchor_err err;
    EVP_PKEY *key = ec_key();
    struct anchor_svid_options so = {.ttl = 3600, .now = NOW};
    X509 *x;

    pki_make(&p, f);
    o = upstream_options(&p);
    if (anchor_ca_open(&ca, &o, &err) != 0)
        fail_msg("%s", anchor_err_msg(&err));
    assert_true(anchor_ca_is_upstream(ca));
    assert_int_equal(X509_cmp(anchor_ca_get0_cert(ca), p.inter), 0);
    assert_int_equal(sk_X509_num(anchor_ca_get0_chain(ca)), 1);
    assert_int_equal(X509_cmp(sk_X509_value(anchor_ca_get0_chain(ca), 0), p.inter), 0);
    assert_int_equal(sk_X509_num(anchor_ca_get0_roots(ca)), 1);
    assert_int_equal(X509_cmp(sk_X509_value(anchor_ca_get0_roots(ca), 0), p.root), 0);
    /* the intermediate expires first */
    assert_int_equal(anchor_ca_not_after(ca), NOW + 365L * 86400);
    x = issue(ca, "spiffe://" TD "/a", key, &so);
    check_svid_profile(x, ca, "spiffe://" TD "/a", key, 0);
    /* without the intermediate the SVID does not verify */
    assert_int_equal(verify(x, anchor_ca_get0_roots(ca), NULL),
                     X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    X509_free(x);
    anchor_ca_free(ca);
    ca = NULL;

    /* the root in a bundle file instead of the chain */
    write_pem_certs(p.chain, &p.inter, 1);
    o.upstream_bundle_path = p.bundle;
    if (anchor_ca_open(&ca, &o, &err) != 0)
        fail_msg("%s", anchor_err_msg(&err));
    assert_int_equal(sk_X509_num(anchor_ca_get0_chain(ca)), 1);
    assert_int_equal(X509_cmp(sk_X509_value(anchor_ca_get0_roots(ca), 0), p.root), 0);
    anchor_ca_free(ca);
    ca = NULL;

    /* an upstream CA may carry URI SANs of other schemes */
    {
        X509 *other_uri =
            make_cert("uri", p.int_key, p.root, p.root_key, 1, 365, "https://pki.example.com/ca");

        write_pem_certs(p.chain, &other_uri, 1);
        if (anchor_ca_open(&ca, &o, &err) != 0)
            fail_msg("%s", anchor_err_msg(&err));
        anchor_ca_free(ca);
        X509_free(other_uri);
    }
    EVP_PKEY_free(key);
    pki_free(&p);
}

static void test_upstream_faults(void **state)
{
    struct fixture *f = *state;
    struct pki p;
    struct anchor_ca_options o;
    struct anchor_ca *ca = NULL;
    struct anchor_err err;
    char want[2048];
    EVP_PKEY *other_key = ec_key();
    X509 *other_root = make_cert("other root", other_key, NULL, NULL, 1, 3650, NULL);
    X509 *leaf, *foreign;

    pki_make(&p, f);
    o = upstream_options(&p);

    /* the root is neither at the end of the chain nor in a bundle */
    write_pem_certs(p.chain, &p.inter, 1);
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    snprintf(want, sizeof(want),
             "upstream CA certificate %s does not end with a self-signed root and no upstream "
             "bundle is set",
             p.chain);
    assert_string_equal(anchor_err_msg(&err), want);

    /* a bundle of another root */
    write_pem_certs(p.bundle, &other_root, 1);
    o.upstream_bundle_path = p.bundle;
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    snprintf(want, sizeof(want),
             "upstream CA certificate %s does not chain to a root: unable to get local issuer "
             "certificate",
             p.chain);
    assert_string_equal(anchor_err_msg(&err), want);
    o.upstream_bundle_path = NULL;

    /* chain ends in the wrong self-signed root */
    write_pem_certs(p.chain, (X509 *[]){p.inter, other_root}, 2);
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    assert_string_equal(anchor_err_msg(&err), want);

    /* the key is not the certificate's */
    write_pem_certs(p.chain, (X509 *[]){p.inter, p.root}, 2);
    write_pem_key(p.key, other_key, 0600);
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    snprintf(want, sizeof(want), "CA key %s does not match certificate %s", p.key, p.chain);
    assert_string_equal(anchor_err_msg(&err), want);

    /* a key readable by others */
    write_pem_key(p.key, p.int_key, 0604);
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    snprintf(want, sizeof(want), "CA key %s is accessible by others (mode 0604)", p.key);
    assert_string_equal(anchor_err_msg(&err), want);
    write_pem_key(p.key, p.int_key, 0600);

    /* the upstream certificate is not a CA */
    leaf = make_cert("leaf", p.int_key, p.root, p.root_key, 0, 365, NULL);
    write_pem_certs(p.chain, (X509 *[]){leaf, p.root}, 2);
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    snprintf(want, sizeof(want), "upstream CA certificate %s is not a CA certificate", p.chain);
    assert_string_equal(anchor_err_msg(&err), want);

    /* the upstream certificate names another trust domain */
    foreign = make_cert("foreign", p.int_key, p.root, p.root_key, 1, 365, "spiffe://other.org");
    write_pem_certs(p.chain, (X509 *[]){foreign, p.root}, 2);
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    snprintf(want, sizeof(want),
             "upstream CA certificate %s is for trust domain \"other.org\", not \"example.org\"",
             p.chain);
    assert_string_equal(anchor_err_msg(&err), want);

    /* a SPIFFE ID that is not one */
    X509_free(foreign);
    foreign = make_cert("bad id", p.int_key, p.root, p.root_key, 1, 365, "spiffe://Example.org");
    write_pem_certs(p.chain, (X509 *[]){foreign, p.root}, 2);
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    snprintf(want, sizeof(want),
             "upstream CA certificate %s has a bad SPIFFE ID: invalid SPIFFE ID: trust domain "
             "characters are limited to lowercase letters, numbers, dots, dashes, and underscores",
             p.chain);
    assert_string_equal(anchor_err_msg(&err), want);

    /* expired */
    write_pem_certs(p.chain, (X509 *[]){p.inter, p.root}, 2);
    o.now = NOW + 400L * 86400;
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    snprintf(want, sizeof(want), "upstream CA certificate %s expired at 2028-01-15T08:00:00Z",
             p.chain);
    assert_string_equal(anchor_err_msg(&err), want);
    o.now = NOW;

    /* no key file set */
    o.upstream_key_path = NULL;
    assert_int_equal(anchor_ca_open(&ca, &o, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "upstream CA key file is not set");
    assert_null(ca);

    X509_free(leaf);
    X509_free(foreign);
    X509_free(other_root);
    EVP_PKEY_free(other_key);
    pki_free(&p);
}

/* --- bundles ----------------------------------------------------------------- */

static unsigned char *b64_decode(const char *s, size_t *len, int url)
{
    size_t n = strlen(s), cap = n + 4;
    char *std = calloc(1, cap);
    unsigned char *out = calloc(1, cap);
    int r;

    memcpy(std, s, n);
    if (url) {
        for (size_t i = 0; i < n; i++)
            std[i] = std[i] == '-' ? '+' : std[i] == '_' ? '/' : std[i];
        while (n % 4 != 0)
            std[n++] = '=';
    }
    r = EVP_DecodeBlock(out, (unsigned char *)std, (int)n);
    assert_true(r >= 0);
    *len = (size_t)r;
    /* EVP_DecodeBlock keeps the padding bytes as zeros */
    while (n > 0 && std[n - 1] == '=') {
        (*len)--;
        n--;
    }
    free(std);
    return out;
}

static void test_bundle(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_EC_P256);
    struct anchor_bundle *b = NULL, *back = NULL;
    struct anchor_err err;
    char *pem = NULL, *jwks = NULL;
    size_t pem_len = 0, der_len, x_len;
    json_t *doc, *key;
    json_error_t jerr;
    unsigned char *der, *x, *root_der = NULL;
    int root_len;
    X509_STORE *store = NULL;

    assert_int_equal(anchor_bundle_from_ca(&b, ca, 7, 300, &err), 0);
    assert_string_equal(anchor_bundle_trust_domain(b), TD);
    assert_int_equal(anchor_bundle_sequence(b), 7);
    assert_int_equal(anchor_bundle_refresh_hint(b), 300);

    /* PEM round trip */
    assert_int_equal(anchor_bundle_to_pem(&pem, &pem_len, b, &err), 0);
    assert_int_equal(strlen(pem), pem_len);
    assert_int_equal(anchor_bundle_parse_pem(&back, TD, pem, pem_len, "bundle.pem", &err), 0);
    assert_int_equal(sk_X509_num(anchor_bundle_get0_roots(back)), 1);
    assert_int_equal(
        X509_cmp(sk_X509_value(anchor_bundle_get0_roots(back), 0), anchor_ca_get0_cert(ca)), 0);
    anchor_bundle_free(back);
    free(pem);

    /* JWKS */
    assert_int_equal(anchor_bundle_to_jwks(&jwks, b, &err), 0);
    doc = json_loads(jwks, 0, &jerr);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "spiffe_sequence")), 7);
    assert_int_equal(json_integer_value(json_object_get(doc, "spiffe_refresh_hint")), 300);
    assert_int_equal(json_array_size(json_object_get(doc, "keys")), 1);
    key = json_array_get(json_object_get(doc, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(key, "use")), "x509-svid");
    assert_string_equal(json_string_value(json_object_get(key, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(key, "crv")), "P-256");
    assert_int_equal(json_array_size(json_object_get(key, "x5c")), 1);
    der =
        b64_decode(json_string_value(json_array_get(json_object_get(key, "x5c"), 0)), &der_len, 0);
    root_len = i2d_X509(anchor_ca_get0_cert(ca), &root_der);
    assert_int_equal(der_len, (size_t)root_len);
    assert_memory_equal(der, root_der, der_len);
    /* x and y are 32-byte base64url without padding */
    assert_int_equal(strlen(json_string_value(json_object_get(key, "x"))), 43);
    assert_int_equal(strlen(json_string_value(json_object_get(key, "y"))), 43);
    x = b64_decode(json_string_value(json_object_get(key, "x")), &x_len, 1);
    assert_int_equal(x_len, 32);
    {
        BIGNUM *bx = NULL;
        unsigned char want[32];

        assert_int_equal(
            EVP_PKEY_get_bn_param(X509_get0_pubkey(anchor_ca_get0_cert(ca)), "qx", &bx), 1);
        BN_bn2binpad(bx, want, 32);
        assert_memory_equal(x, want, 32);
        BN_free(bx);
    }
    free(x);
    free(der);
    OPENSSL_free(root_der);
    json_decref(doc);
    free(jwks);

    /* the store verifies an SVID */
    {
        EVP_PKEY *k = ec_key();
        struct anchor_svid_options o = {.ttl = 60, .now = NOW};
        X509 *svid = issue(ca, "spiffe://" TD "/a", k, &o);
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();

        assert_int_equal(anchor_bundle_store_new(&store, b, &err), 0);
        X509_STORE_CTX_init(ctx, store, svid, NULL);
        X509_STORE_CTX_set_time(ctx, 0, NOW);
        assert_int_equal(X509_verify_cert(ctx), 1);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        X509_free(svid);
        EVP_PKEY_free(k);
    }
    anchor_bundle_free(b);
    anchor_ca_free(ca);
}

static void test_bundle_rsa_jwks(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_RSA_2048);
    struct anchor_bundle *b = NULL;
    struct anchor_err err;
    char *jwks = NULL;
    json_t *doc, *key;
    size_t n_len;
    unsigned char *n;

    assert_int_equal(anchor_bundle_from_ca(&b, ca, 1, 0, &err), 0);
    assert_int_equal(anchor_bundle_to_jwks(&jwks, b, &err), 0);
    doc = json_loads(jwks, 0, NULL);
    assert_null(json_object_get(doc, "spiffe_refresh_hint"));
    key = json_array_get(json_object_get(doc, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(key, "kty")), "RSA");
    assert_string_equal(json_string_value(json_object_get(key, "e")), "AQAB");
    n = b64_decode(json_string_value(json_object_get(key, "n")), &n_len, 1);
    assert_int_equal(n_len, 256);
    free(n);
    json_decref(doc);
    free(jwks);
    anchor_bundle_free(b);
    anchor_ca_free(ca);
}

static void test_bundle_faults(void **state)
{
    EVP_PKEY *k = ec_key();
    X509 *leaf = make_cert("leaf", k, NULL, NULL, 0, 1, NULL);
    X509 *root = make_cert("root", k, NULL, NULL, 1, 1, NULL);
    STACK_OF(X509) *empty = sk_X509_new_null();
    struct anchor_bundle *b = NULL;
    struct anchor_err err;
    BIO *bio = BIO_new(BIO_s_mem());
    char *text;
    long len;

    (void)state;
    assert_int_equal(anchor_bundle_new(&b, TD, empty, 0, 0, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "a bundle needs at least one root");
    sk_X509_push(empty, root);
    assert_int_equal(anchor_bundle_new(&b, "Bad", empty, 0, 0, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid trust domain: trust domain characters are limited to lowercase "
                        "letters, numbers, dots, dashes, and underscores");
    assert_int_equal(anchor_bundle_new(&b, TD, empty, 0, -1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "bundle refresh hint must not be negative");
    assert_int_equal(anchor_bundle_new(&b, TD, empty, 0, 0, &err), 0);
    anchor_bundle_free(b);
    b = NULL;
    /* a bootstrap bundle holding a leaf */
    PEM_write_bio_X509(bio, root);
    PEM_write_bio_X509(bio, leaf);
    len = BIO_get_mem_data(bio, &text);
    assert_int_equal(anchor_bundle_parse_pem(&b, TD, text, (size_t)len, "bundle.pem", &err), -1);
    assert_string_equal(anchor_err_msg(&err), "bundle.pem: certificate 2 is not a CA certificate");
    assert_null(b);
    BIO_free(bio);
    sk_X509_pop_free(empty, X509_free);
    X509_free(leaf);
    EVP_PKEY_free(k);
}

/* Mutations of a good JWKS document, each with the message it must give. */
static void mut_none(json_t *doc, json_t *key, json_t *other)
{
    (void)doc, (void)key, (void)other;
}

static void mut_two_x5c(json_t *doc, json_t *key, json_t *other)
{
    json_t *x5c = json_object_get(key, "x5c");

    (void)doc, (void)other;
    json_array_append(x5c, json_array_get(x5c, 0));
}

static void mut_x5c_newline(json_t *doc, json_t *key, json_t *other)
{
    json_t *x5c = json_object_get(key, "x5c");
    char *s = strdup(json_string_value(json_array_get(x5c, 0)));
    char buf[4096];

    (void)doc, (void)other;
    snprintf(buf, sizeof(buf), "%.64s\n%s", s, s + 64);
    json_array_set_new(x5c, 0, json_string(buf));
    free(s);
}

static void mut_x5c_trailing(json_t *doc, json_t *key, json_t *other)
{
    json_t *x5c = json_object_get(key, "x5c");
    char buf[4096];

    (void)doc, (void)other;
    /* four more base64 characters: three more DER bytes after the certificate */
    snprintf(buf, sizeof(buf), "%sAAAA", json_string_value(json_array_get(x5c, 0)));
    json_array_set_new(x5c, 0, json_string(buf));
}

static void mut_x5c_number(json_t *doc, json_t *key, json_t *other)
{
    (void)doc, (void)other;
    json_array_set_new(json_object_get(key, "x5c"), 0, json_integer(5));
}

static void mut_other_x(json_t *doc, json_t *key, json_t *other)
{
    (void)doc;
    json_object_set(key, "x", json_object_get(other, "x"));
}

static void mut_no_kty(json_t *doc, json_t *key, json_t *other)
{
    (void)doc, (void)other;
    json_object_del(key, "kty");
}

static void mut_other_x5c(json_t *doc, json_t *key, json_t *other)
{
    (void)doc;
    json_object_set(key, "x5c", json_object_get(other, "x5c"));
}

static void mut_jwt_use(json_t *doc, json_t *key, json_t *other)
{
    (void)doc, (void)other;
    json_object_set_new(key, "use", json_string("jwt-svid"));
}

static void mut_extra_jwt_key(json_t *doc, json_t *key, json_t *other)
{
    json_t *jwt = json_deep_copy(other);

    (void)key;
    json_object_set_new(jwt, "use", json_string("jwt-svid"));
    json_object_set_new(jwt, "x5c", json_string("ignored"));
    json_array_insert_new(json_object_get(doc, "keys"), 0, jwt);
}

static void mut_key_not_object(json_t *doc, json_t *key, json_t *other)
{
    (void)key, (void)other;
    json_array_append_new(json_object_get(doc, "keys"), json_integer(1));
}

static void mut_neg_seq(json_t *doc, json_t *key, json_t *other)
{
    (void)key, (void)other;
    json_object_set_new(doc, "spiffe_sequence", json_integer(-1));
}

static void mut_str_hint(json_t *doc, json_t *key, json_t *other)
{
    (void)key, (void)other;
    json_object_set_new(doc, "spiffe_refresh_hint", json_string("300"));
}

static void mut_keys_object(json_t *doc, json_t *key, json_t *other)
{
    (void)key, (void)other;
    json_object_set_new(doc, "keys", json_object());
}

static void test_bundle_jwks_parse(void **state)
{
    struct fixture *f = *state;
    struct anchor_ca *ca = open_dir_ca(f, ANCHOR_KEY_EC_P256);
    EVP_PKEY *k2 = ec_key();
    X509 *other_root = make_cert("other", k2, NULL, NULL, 1, 10, NULL);
    X509 *leaf = make_cert("leaf", k2, NULL, NULL, 0, 10, NULL);
    STACK_OF(X509) *others = sk_X509_new_null();
    struct anchor_bundle *b = NULL, *ob = NULL, *back = NULL;
    struct anchor_err err;
    char *good = NULL, *other = NULL;
    static const struct {
        const char *name;
        void (*mutate)(json_t *doc, json_t *key, json_t *other);
        const char *msg;
    } cases[] = {
        {"as written", mut_none, NULL},
        {"a jwt-svid key beside", mut_extra_jwt_key, NULL},
        {"two certificates", mut_two_x5c,
         "invalid bundle: key 1: \"x5c\" must hold exactly one certificate"},
        {"newline in base64", mut_x5c_newline, "invalid bundle: key 1: \"x5c\" is not base64 DER"},
        {"bytes after the DER", mut_x5c_trailing,
         "invalid bundle: key 1: \"x5c\" is not base64 DER"},
        {"x5c not a string", mut_x5c_number, "invalid bundle: key 1: \"x5c\" is not base64 DER"},
        {"x of another key", mut_other_x,
         "invalid bundle: key 1: the \"x5c\" certificate does not match the key's \"x\""},
        {"no kty", mut_no_kty,
         "invalid bundle: key 1: the \"x5c\" certificate does not match the key's \"kty\""},
        {"certificate of another key", mut_other_x5c,
         "invalid bundle: key 1: the \"x5c\" certificate does not match the key's \"x\""},
        {"only a jwt-svid key", mut_jwt_use, "invalid bundle: no x509-svid key"},
        {"a key that is not an object", mut_key_not_object,
         "invalid bundle: key 2 is not an object"},
        {"negative sequence", mut_neg_seq,
         "invalid bundle: \"spiffe_sequence\" must be a non-negative integer"},
        {"string refresh hint", mut_str_hint,
         "invalid bundle: \"spiffe_refresh_hint\" must be a non-negative integer"},
        {"keys not an array", mut_keys_object,
         "invalid bundle: \"keys\" is missing or not an array"},
    };
    static const struct {
        const char *text, *msg;
    } raw[] = {
        {"not json", "invalid bundle: not JSON: '[' or '{' expected near 'not'"},
        {"[]", "invalid bundle: not a JSON object"},
        {"{}", "invalid bundle: \"keys\" is missing or not an array"},
        {"{\"keys\":[]}", "invalid bundle: no x509-svid key"},
        {"{\"keys\":[],\"keys\":[]}",
         "invalid bundle: not JSON: duplicate object key near '\"keys\"'"},
        {"{\"keys\":[{\"use\":\"x509-svid\"}]}",
         "invalid bundle: key 1: \"x5c\" must hold exactly one certificate"},
    };

    sk_X509_push(others, other_root);
    assert_int_equal(anchor_bundle_from_ca(&b, ca, 42, 300, &err), 0);
    assert_int_equal(anchor_bundle_new(&ob, TD, others, 1, 0, &err), 0);
    assert_int_equal(anchor_bundle_to_jwks(&good, b, &err), 0);
    assert_int_equal(anchor_bundle_to_jwks(&other, ob, &err), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *doc = json_loads(good, 0, NULL), *odoc = json_loads(other, 0, NULL);
        json_t *key = json_array_get(json_object_get(doc, "keys"), 0);
        json_t *okey = json_array_get(json_object_get(odoc, "keys"), 0);
        char *text;
        int rc;

        cases[i].mutate(doc, key, okey);
        text = json_dumps(doc, JSON_COMPACT);
        rc = anchor_bundle_parse_jwks(&back, TD, text, strlen(text), &err);
        if (cases[i].msg == NULL) {
            if (rc != 0)
                fail_msg("%s: %s", cases[i].name, anchor_err_msg(&err));
            assert_int_equal(anchor_bundle_sequence(back), 42);
            assert_int_equal(anchor_bundle_refresh_hint(back), 300);
            assert_int_equal(sk_X509_num(anchor_bundle_get0_roots(back)), 1);
            assert_int_equal(
                X509_cmp(sk_X509_value(anchor_bundle_get0_roots(back), 0), anchor_ca_get0_cert(ca)),
                0);
            anchor_bundle_free(back);
            back = NULL;
        } else {
            if (rc == 0)
                fail_msg("%s: accepted", cases[i].name);
            if (strcmp(anchor_err_msg(&err), cases[i].msg) != 0)
                fail_msg("%s: got \"%s\", want \"%s\"", cases[i].name, anchor_err_msg(&err),
                         cases[i].msg);
        }
        free(text);
        json_decref(doc);
        json_decref(odoc);
    }
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        assert_int_equal(
            anchor_bundle_parse_jwks(&back, TD, raw[i].text, strlen(raw[i].text), &err), -1);
        if (strcmp(anchor_err_msg(&err), raw[i].msg) != 0)
            fail_msg("raw %zu: got \"%s\", want \"%s\"", i, anchor_err_msg(&err), raw[i].msg);
    }
    /* a leaf in x5c */
    {
        STACK_OF(X509) *leaves = sk_X509_new_null();
        struct anchor_bundle *lb = NULL;
        char *text = NULL;

        sk_X509_push(leaves, leaf);
        /* anchor_bundle_new does not judge what it is given; the reader does */
        assert_int_equal(anchor_bundle_new(&lb, TD, leaves, 0, 0, &err), 0);
        assert_int_equal(anchor_bundle_to_jwks(&text, lb, &err), 0);
        assert_int_equal(anchor_bundle_parse_jwks(&back, TD, text, strlen(text), &err), -1);
        assert_string_equal(anchor_err_msg(&err),
                            "invalid bundle: key 1: the \"x5c\" certificate is not a CA");
        free(text);
        anchor_bundle_free(lb);
        sk_X509_free(leaves);
    }
    assert_null(back);
    free(good);
    free(other);
    anchor_bundle_free(b);
    anchor_bundle_free(ob);
    sk_X509_pop_free(others, X509_free);
    X509_free(leaf);
    EVP_PKEY_free(k2);
    anchor_ca_free(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_type),
        cmocka_unit_test_setup_teardown(test_dir_create_and_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_rsa_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_cert_missing_remade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svid_ec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svid_rsa_by_rsa_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svid_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svid_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_cert, setup, teardown),
        cmocka_unit_test(test_get_spiffeid_faults),
        cmocka_unit_test_setup_teardown(test_csr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spki, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bundle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bundle_rsa_jwks, setup, teardown),
        cmocka_unit_test(test_bundle_faults),
        cmocka_unit_test_setup_teardown(test_bundle_jwks_parse, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
