/*
 * The CA: opens the certificate and key that sign the trust domain's SVIDs.
 *
 * Self-signed mode keeps a root in a directory. The first start makes it: the
 * key is written before the certificate, each to a temporary file that is
 * flushed and then renamed into place, so a crash leaves either nothing, or
 * a key without certificate (the certificate is then made again from the
 * key), never a half-written file. Later starts load and check it. A lock
 * file serialises servers that start at the same time on one directory.
 *
 * Upstream mode loads a CA certificate, its chain and its key that another
 * PKI issued, and checks that they fit together and verify to a root.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/internal.h"
#include "crypto/crypto.h"
#include "util/check.h"

/* --- keys ------------------------------------------------------------------ */

int anchor_key_type_parse(enum anchor_key_type *out, const char *name, struct anchor_err *err)
{
    if (strcmp(name, "ec-p256") == 0) {
        *out = ANCHOR_KEY_EC_P256;
        return 0;
    }
    if (strcmp(name, "rsa-2048") == 0) {
        *out = ANCHOR_KEY_RSA_2048;
        return 0;
    }
    anchor_err_set(err, "unknown key type \"%s\" (expected ec-p256 or rsa-2048)", name);
    return -1;
}

const char *anchor_key_type_name(enum anchor_key_type type)
{
    return type == ANCHOR_KEY_RSA_2048 ? "rsa-2048" : "ec-p256";
}

int anchor_key_generate(EVP_PKEY **out, enum anchor_key_type type, struct anchor_err *err)
{
    int rc = -1;
    EVP_PKEY *key = NULL;

    if (type == ANCHOR_KEY_RSA_2048)
        key = EVP_RSA_gen(2048);
    else
        key = EVP_EC_gen("P-256");
    ENSURE_OSSL(key != NULL, err, "cannot generate a %s key", anchor_key_type_name(type));
    *out = key;
    rc = 0;
out:
    return rc;
}

static enum anchor_key_type key_type_of(const EVP_PKEY *key)
{
    return EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? ANCHOR_KEY_RSA_2048 : ANCHOR_KEY_EC_P256;
}

/* --- checks ---------------------------------------------------------------- */

/* cert may sign certificates: CA:TRUE and, when keyUsage is present,
 * keyCertSign (RFC 5280 4.2.1.3, 4.2.1.9). */
static int check_is_ca(X509 *cert, const char *what, const char *path, struct anchor_err *err)
{
    int rc = -1;

    ENSURE(X509_check_ca(cert) == 1, err, "%s %s is not a CA certificate", what, path);
    ENSURE((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) == 0 ||
               (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) != 0,
           err, "%s %s may not sign certificates (no keyCertSign key usage)", what, path);
    rc = 0;
out:
    return rc;
}

/* A CA certificate's SPIFFE ID (a URI SAN with the spiffe scheme; SPIFFE
 * X509-SVID 3), when it has one, is the ID of its trust domain. Other URI
 * SANs an upstream CA may carry are not ours to judge. */
static int check_trust_domain(X509 *cert, const char *td, const char *what, const char *path,
                              struct anchor_err *err)
{
    int rc = -1;
    struct anchor_spiffeid *id = NULL;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);

    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        const char *uri;
        size_t len;

        if (gn->type != GEN_URI)
            continue;
        uri = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
        len = (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier);
        if (len < ANCHOR_SPIFFEID_PREFIX_LEN ||
            memcmp(uri, ANCHOR_SPIFFEID_PREFIX, ANCHOR_SPIFFEID_PREFIX_LEN) != 0)
            continue;
        if (anchor_spiffeid_parse(&id, uri, len, err) != 0) {
            char prefix[ANCHOR__CA_MAX_PATH + 64];

            (void)snprintf(prefix, sizeof(prefix), "%s %s has a bad SPIFFE ID", what, path);
            anchor_err_prefix(err, prefix);
            goto out;
        }
        ENSURE(anchor_spiffeid_member_of(id, td), err,
               "%s %s is for trust domain \"%s\", not \"%s\"", what, path,
               anchor_spiffeid_trust_domain(id), td);
        anchor_spiffeid_free(id);
        id = NULL;
    }
    rc = 0;
out:
    GENERAL_NAMES_free(names);
    anchor_spiffeid_free(id);
    return rc;
}

static int check_time(X509 *cert, time_t now, const char *what, const char *path,
                      struct anchor_err *err)
{
    int rc = -1;
    time_t nb, na;
    char when[64];

    TRY(anchor__asn1_time_to_time_t(&nb, X509_get0_notBefore(cert), err));
    TRY(anchor__asn1_time_to_time_t(&na, X509_get0_notAfter(cert), err));
    anchor__time_string(when, sizeof(when), nb);
    ENSURE(now >= nb, err, "%s %s is not valid before %s", what, path, when);
    anchor__time_string(when, sizeof(when), na);
    ENSURE(now < na, err, "%s %s expired at %s", what, path, when);
    rc = 0;
out:
    return rc;
}

static int is_self_signed(X509 *cert)
{
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    int ok =
        X509_check_issued(cert, cert) == X509_V_OK && pub != NULL && X509_verify(cert, pub) == 1;

    ERR_clear_error();
    return ok;
}

/* --- self-signed mode ------------------------------------------------------ */

static int make_root(X509 **out, EVP_PKEY *key, const char *td, long ttl, time_t now,
                     struct anchor_err *err)
{
    int rc = -1;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    char uri[ANCHOR_SPIFFEID_PREFIX_LEN + ANCHOR_TRUST_DOMAIN_MAX_LEN + 1];

    ENSURE_OSSL(x != NULL && name != NULL, err, "out of memory");
    ENSURE_OSSL(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"anchor",
                                           -1, -1, 0) == 1 &&
                    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                               (const unsigned char *)"anchor root CA", -1, -1,
                                               0) == 1,
                err, "cannot make the root's name");
    ENSURE_OSSL(X509_set_version(x, X509_VERSION_3) == 1 && X509_set_subject_name(x, name) == 1 &&
                    X509_set_issuer_name(x, name) == 1 && X509_set_pubkey(x, key) == 1,
                err, "cannot make the root certificate");
    TRY(anchor__cert_set_serial(x, err));
    TRY(anchor__cert_set_validity(x, now - ANCHOR_CA_BACKDATE, now + ttl, err));
    TRY(anchor__cert_add_basic_constraints(x, 1, err));
    TRY(anchor__cert_add_key_usage(x, KU_KEY_CERT_SIGN | KU_CRL_SIGN, err));
    TRY(anchor__cert_add_key_ids(x, x, err));
    /* SPIFFE X509-SVID 3: a signing certificate may carry the trust
     * domain's own SPIFFE ID. */
    (void)snprintf(uri, sizeof(uri), "%s%s", ANCHOR_SPIFFEID_PREFIX, td);
    TRY(anchor__cert_add_san(x, uri, NULL, 0, 0, err));
    ENSURE_OSSL(X509_sign(x, key, EVP_sha256()) > 0, err, "cannot sign the root certificate");
    *out = x;
    x = NULL;
    rc = 0;
out:
    X509_NAME_free(name);
    X509_free(x);
    return rc;
}

static int open_dir_locked(struct anchor_ca *ca, const struct anchor_ca_options *opt, time_t now,
                           struct anchor_err *err)
{
    int rc = -1, have_cert, have_key;
    char cert_path[ANCHOR__CA_MAX_PATH], key_path[ANCHOR__CA_MAX_PATH];
    STACK_OF(X509) *certs = NULL;
    long ttl = opt->root_ttl > 0 ? opt->root_ttl : ANCHOR_CA_DEFAULT_ROOT_TTL;

    TRY(anchor__ca_path_join(cert_path, opt->dir, ANCHOR_CA_CERT_FILE, err));
    TRY(anchor__ca_path_join(key_path, opt->dir, ANCHOR_CA_KEY_FILE, err));
    TRY(anchor__ca_file_exists(cert_path, &have_cert, err));
    TRY(anchor__ca_file_exists(key_path, &have_key, err));
    ENSURE(have_key || !have_cert, err, "CA key %s is missing (certificate %s is there)", key_path,
           cert_path);
    if (!have_key) {
        TRY(anchor_key_generate(&ca->key, opt->key_type, err));
        TRY(anchor__ca_write_pem(opt->dir, key_path, NULL, ca->key, 0600, err));
    } else {
        TRY(anchor__ca_load_key(&ca->key, key_path, 0, err));
    }
    if (!have_cert) {
        TRY(make_root(&ca->cert, ca->key, opt->trust_domain, ttl, now, err));
        TRY(anchor__ca_write_pem(opt->dir, cert_path, ca->cert, NULL, 0644, err));
    } else {
        TRY(anchor__ca_load_certs(&certs, cert_path, err));
        ENSURE(sk_X509_num(certs) == 1, err, "CA certificate %s holds %d certificates, not one",
               cert_path, sk_X509_num(certs));
        ca->cert = sk_X509_shift(certs);
    }
    ENSURE(X509_check_private_key(ca->cert, ca->key) == 1, err,
           "CA key %s does not match certificate %s", key_path, cert_path);
    ERR_clear_error();
    TRY(check_is_ca(ca->cert, "CA certificate", cert_path, err));
    ENSURE(is_self_signed(ca->cert), err, "CA certificate %s is not self-signed", cert_path);
    TRY(check_trust_domain(ca->cert, opt->trust_domain, "CA certificate", cert_path, err));
    TRY(check_time(ca->cert, now, "CA certificate", cert_path, err));
    rc = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

static int open_dir(struct anchor_ca *ca, const struct anchor_ca_options *opt, time_t now,
                    struct anchor_err *err)
{
    int rc = -1, lock = -1;
    char lock_path[ANCHOR__CA_MAX_PATH];

    if (mkdir(opt->dir, 0700) != 0)
        ENSURE(errno == EEXIST, err, "cannot create CA directory %s: %s", opt->dir,
               strerror(errno));
    TRY(anchor__ca_path_join(lock_path, opt->dir, ANCHOR_CA_LOCK_FILE, err));
    lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ENSURE(lock >= 0, err, "cannot open %s: %s", lock_path, strerror(errno));
    while (flock(lock, LOCK_EX) != 0)
        ENSURE(errno == EINTR, err, "cannot lock %s: %s", lock_path, strerror(errno));
    TRY(open_dir_locked(ca, opt, now, err));
    ca->chain = sk_X509_new_null();
    ca->roots = sk_X509_new_null();
    ENSURE(ca->chain != NULL && ca->roots != NULL, err, "out of memory");
    ENSURE(X509_up_ref(ca->cert) == 1 && sk_X509_push(ca->roots, ca->cert) > 0, err,
           "out of memory");
    TRY(anchor__asn1_time_to_time_t(&ca->not_before, X509_get0_notBefore(ca->cert), err));
    TRY(anchor__asn1_time_to_time_t(&ca->not_after, X509_get0_notAfter(ca->cert), err));
    rc = 0;
out:
    if (lock >= 0)
        (void)close(lock); /* releases the lock */
    return rc;
}

/* --- upstream mode --------------------------------------------------------- */

/* Verifies ca->cert through the intermediates in `rest` to ca->roots at
 * `now`, and keeps the verified path (without the root) as ca->chain. */
static int verify_upstream(struct anchor_ca *ca, STACK_OF(X509) * rest, time_t now,
                           const char *path, struct anchor_err *err)
{
    int rc = -1;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *verified = NULL;
    X509 *x;

    ENSURE_OSSL(store != NULL && ctx != NULL, err, "out of memory");
    for (int i = 0; i < sk_X509_num(ca->roots); i++)
        ENSURE_OSSL(X509_STORE_add_cert(store, sk_X509_value(ca->roots, i)) == 1, err,
                    "cannot load the upstream roots");
    ENSURE_OSSL(X509_STORE_CTX_init(ctx, store, ca->cert, rest) == 1, err, "out of memory");
    X509_STORE_CTX_set_time(ctx, 0, now);
    if (X509_verify_cert(ctx) != 1) {
        int code = X509_STORE_CTX_get_error(ctx);

        ERR_clear_error();
        FAIL(err, "upstream CA certificate %s does not chain to a root: %s", path,
             X509_verify_cert_error_string(code));
    }
    verified = X509_STORE_CTX_get1_chain(ctx);
    ENSURE_OSSL(verified != NULL, err, "out of memory");
    ca->not_after = 0;
    for (int i = 0; i < sk_X509_num(verified); i++) {
        time_t na;

        TRY(anchor__asn1_time_to_time_t(&na, X509_get0_notAfter(sk_X509_value(verified, i)), err));
        if (ca->not_after == 0 || na < ca->not_after)
            ca->not_after = na;
    }
    x = sk_X509_pop(verified); /* the root: in the bundle, never sent */
    X509_free(x);
    ca->chain = verified;
    verified = NULL;
    rc = 0;
out:
    sk_X509_pop_free(verified, X509_free);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

static int open_upstream(struct anchor_ca *ca, const struct anchor_ca_options *opt, time_t now,
                         struct anchor_err *err)
{
    int rc = -1;
    STACK_OF(X509) *certs = NULL;
    const char *cert_path = opt->upstream_cert_path;
    X509 *last;

    ENSURE(opt->upstream_key_path != NULL, err, "upstream CA key file is not set");
    TRY(anchor__ca_load_certs(&certs, cert_path, err));
    TRY(anchor__ca_load_key(&ca->key, opt->upstream_key_path, 1, err));
    ca->cert = sk_X509_shift(certs);
    ENSURE(X509_check_private_key(ca->cert, ca->key) == 1, err,
           "CA key %s does not match certificate %s", opt->upstream_key_path, cert_path);
    ERR_clear_error();
    TRY(check_is_ca(ca->cert, "upstream CA certificate", cert_path, err));
    TRY(check_trust_domain(ca->cert, opt->trust_domain, "upstream CA certificate", cert_path, err));
    TRY(check_time(ca->cert, now, "upstream CA certificate", cert_path, err));
    if (opt->upstream_bundle_path != NULL) {
        TRY(anchor__ca_load_certs(&ca->roots, opt->upstream_bundle_path, err));
    } else {
        ca->roots = sk_X509_new_null();
        ENSURE(ca->roots != NULL, err, "out of memory");
        last = sk_X509_num(certs) > 0 ? sk_X509_value(certs, sk_X509_num(certs) - 1) : ca->cert;
        ENSURE(is_self_signed(last), err,
               "upstream CA certificate %s does not end with a self-signed root and no upstream "
               "bundle is set",
               cert_path);
        ENSURE(X509_up_ref(last) == 1 && sk_X509_push(ca->roots, last) > 0, err, "out of memory");
    }
    TRY(verify_upstream(ca, certs, now, cert_path, err));
    TRY(anchor__asn1_time_to_time_t(&ca->not_before, X509_get0_notBefore(ca->cert), err));
    ca->upstream = 1;
    rc = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

/* --- the CA ---------------------------------------------------------------- */

int anchor_ca_open(struct anchor_ca **out, const struct anchor_ca_options *opt,
                   struct anchor_err *err)
{
    int rc = -1;
    struct anchor_ca *ca = NULL;
    time_t now = opt->now != 0 ? opt->now : time(NULL);

    ENSURE(opt->trust_domain != NULL, err, "trust domain is not set");
    TRY(anchor_trust_domain_validate(opt->trust_domain, strlen(opt->trust_domain), err));
    ENSURE((opt->dir != NULL) != (opt->upstream_cert_path != NULL), err,
           "set either a CA directory or an upstream CA certificate, not both");
    ENSURE(opt->root_ttl >= 0, err, "CA root TTL must not be negative");
    ca = calloc(1, sizeof(*ca));
    ENSURE(ca != NULL, err, "out of memory");
    ca->trust_domain = strdup(opt->trust_domain);
    ENSURE(ca->trust_domain != NULL, err, "out of memory");
    if (opt->dir != NULL)
        TRY(open_dir(ca, opt, now, err));
    else
        TRY(open_upstream(ca, opt, now, err));
    ca->key_type = key_type_of(ca->key);
    *out = ca;
    ca = NULL;
    rc = 0;
out:
    anchor_ca_free(ca);
    return rc;
}

void anchor_ca_free(struct anchor_ca *ca)
{
    if (ca == NULL)
        return;
    free(ca->trust_domain);
    EVP_PKEY_free(ca->key); /* OpenSSL wipes key material on free */
    X509_free(ca->cert);
    sk_X509_pop_free(ca->chain, X509_free);
    sk_X509_pop_free(ca->roots, X509_free);
    free(ca);
}

const char *anchor_ca_trust_domain(const struct anchor_ca *ca)
{
    return ca->trust_domain;
}

X509 *anchor_ca_get0_cert(const struct anchor_ca *ca)
{
    return ca->cert;
}

STACK_OF(X509) * anchor_ca_get0_chain(const struct anchor_ca *ca)
{
    return ca->chain;
}

STACK_OF(X509) * anchor_ca_get0_roots(const struct anchor_ca *ca)
{
    return ca->roots;
}

time_t anchor_ca_not_after(const struct anchor_ca *ca)
{
    return ca->not_after;
}

int anchor_ca_is_upstream(const struct anchor_ca *ca)
{
    return ca->upstream;
}
