/*
 * The agent's X.509 SVID: the certificate chain the server returned, checked
 * before it is trusted (the one URI SAN is the SPIFFE ID the server said, in
 * our trust domain; the certificate certifies the key we generated; the chain
 * verifies to the bundle), together with that key. Also the SVID key
 * generation and the parsing of the bundle's DER roots.
 */
#include "agent.h"

#include "anchor/ca.h"
#include "anchor/spiffeid.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static int asn1_time_to_time_t(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = timegm(&tm);
    return 0;
}

static int cert_from_der(X509 **out, const uint8_t *der, size_t len, const char *what, size_t i,
                         struct anchor_err *err)
{
    const unsigned char *p = der;
    X509 *x;

    if (len == 0 || len > (size_t)64 * 1024) {
        anchor_err_set(err, "%s %zu: size %zu is outside 1..65536 bytes", what, i + 1, len);
        return -1;
    }
    x = d2i_X509(NULL, &p, (long)len);
    /* d2i must consume exactly the bytes given (STYLE.md "Memory"). */
    if (x == NULL || p != der + len) {
        X509_free(x);
        ERR_clear_error();
        anchor_err_set(err, "%s %zu is not a DER certificate", what, i + 1);
        return -1;
    }
    *out = x;
    return 0;
}

int agent_roots_from_der(STACK_OF(X509) * *out, const uint8_t *const *der, const size_t *der_len,
                         size_t n, struct anchor_err *err)
{
    int rc = -1;
    STACK_OF(X509) *roots = sk_X509_new_null();

    if (roots == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    if (n == 0 || n > ANCHOR_BUNDLE_MAX_ROOTS) {
        anchor_err_set(err, "bundle: %zu roots (1 to %d expected)", n, ANCHOR_BUNDLE_MAX_ROOTS);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        X509 *x = NULL;

        if (cert_from_der(&x, der[i], der_len[i], "bundle root", i, err) != 0)
            goto out;
        if (X509_check_ca(x) == 0) {
            X509_free(x);
            anchor_err_set(err, "bundle root %zu is not a CA certificate", i + 1);
            goto out;
        }
        if (sk_X509_push(roots, x) <= 0) {
            X509_free(x);
            anchor_err_set(err, "out of memory");
            goto out;
        }
    }
    *out = roots;
    roots = NULL;
    rc = 0;
out:
    sk_X509_pop_free(roots, X509_free);
    return rc;
}

/* Verifies chain[0] with chain[1..] as intermediates to one of roots now. */
static int verify_chain(STACK_OF(X509) * chain, STACK_OF(X509) * roots, struct anchor_err *err)
{
    int rc = -1;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = NULL;

    if (store == NULL || ctx == NULL) {
        anchor_err_set(err, "out of memory");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(roots); i++) {
        if (X509_STORE_add_cert(store, sk_X509_value(roots, i)) != 1) {
            anchor_err_set(err, "out of memory");
            goto out;
        }
    }
    untrusted = sk_X509_dup(chain);
    if (untrusted == NULL) {
        anchor_err_set(err, "out of memory");
        goto out;
    }
    (void)sk_X509_shift(untrusted);
    if (X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), untrusted) != 1) {
        anchor_err_set(err, "out of memory");
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        anchor_err_set(err, "SVID does not verify to the trust bundle: %s",
                       X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

int agent_svid_from_der(struct agent_svid **out, const uint8_t *const *der, const size_t *der_len,
                        size_t n, EVP_PKEY *key, const char *spiffe_id, const char *trust_domain,
                        STACK_OF(X509) * roots, struct anchor_err *err)
{
    int rc = -1;
    struct agent_svid *svid = calloc(1, sizeof(*svid));
    struct anchor_spiffeid *id = NULL;
    X509 *leaf;

    if (svid == NULL || (svid->chain = sk_X509_new_null()) == NULL) {
        anchor_err_set(err, "out of memory");
        goto out;
    }
    if (n == 0 || n > 8) {
        anchor_err_set(err, "SVID chain holds %zu certificates (1 to 8 expected)", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        X509 *x = NULL;

        if (cert_from_der(&x, der[i], der_len[i], "SVID certificate", i, err) != 0)
            goto out;
        if (sk_X509_push(svid->chain, x) <= 0) {
            X509_free(x);
            anchor_err_set(err, "out of memory");
            goto out;
        }
    }
    leaf = sk_X509_value(svid->chain, 0);
    if (anchor_svid_get_spiffeid(&id, leaf, err) != 0) {
        anchor_err_prefix(err, "SVID");
        goto out;
    }
    if (!anchor_spiffeid_member_of(id, trust_domain)) {
        anchor_err_set(err, "SVID %s is not in trust domain %s", anchor_spiffeid_str(id),
                       trust_domain);
        goto out;
    }
    if (spiffe_id != NULL && spiffe_id[0] != '\0' &&
        strcmp(spiffe_id, anchor_spiffeid_str(id)) != 0) {
        anchor_err_set(err, "SVID certificate is for %s, the server said %s",
                       anchor_spiffeid_str(id), spiffe_id);
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1) {
        ERR_clear_error();
        anchor_err_set(err, "the SVID does not certify the agent's key");
        goto out;
    }
    if (asn1_time_to_time_t(X509_get0_notBefore(leaf), &svid->not_before) != 0 ||
        asn1_time_to_time_t(X509_get0_notAfter(leaf), &svid->not_after) != 0) {
        anchor_err_set(err, "SVID validity cannot be read");
        goto out;
    }
    if (roots != NULL && verify_chain(svid->chain, roots, err) != 0)
        goto out;
    svid->received = time(NULL);
    svid->spiffe_id = strdup(anchor_spiffeid_str(id));
    if (svid->spiffe_id == NULL || EVP_PKEY_up_ref(key) != 1) {
        anchor_err_set(err, "out of memory");
        goto out;
    }
    svid->key = key;
    *out = svid;
    svid = NULL;
    rc = 0;
out:
    anchor_spiffeid_free(id);
    agent_svid_free(svid);
    return rc;
}

void agent_svid_free(struct agent_svid *svid)
{
    if (svid == NULL)
        return;
    sk_X509_pop_free(svid->chain, X509_free);
    EVP_PKEY_free(svid->key);
    free(svid->spiffe_id);
    free(svid);
}

int agent_svid_key_new(EVP_PKEY **key, uint8_t **spki, size_t *spki_len, struct anchor_err *err)
{
    EVP_PKEY *k = NULL;
    unsigned char *der = NULL;
    int len;

    if (anchor_key_generate(&k, ANCHOR_KEY_EC_P256, err) != 0)
        return -1;
    len = i2d_PUBKEY(k, &der);
    if (len <= 0) {
        ERR_clear_error();
        EVP_PKEY_free(k);
        anchor_err_set(err, "cannot encode the SVID public key");
        return -1;
    }
    *key = k;
    *spki = der;
    *spki_len = (size_t)len;
    return 0;
}
