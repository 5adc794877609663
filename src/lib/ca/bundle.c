/*
 * Trust bundles: the roots of a trust domain, with the sequence number that
 * tells a holder whether its copy is current, read and written as PEM (for
 * files such as the agent's bootstrap bundle). The SPIFFE bundle format (a
 * JWK Set) is in jwks.c.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/internal.h"
#include "crypto/crypto.h"
#include "util/check.h"

int anchor_bundle_new(struct anchor_bundle **out, const char *trust_domain, STACK_OF(X509) * roots,
                      uint64_t sequence, long refresh_hint, struct anchor_err *err)
{
    int rc = -1;
    struct anchor_bundle *b = NULL;

    TRY(anchor_trust_domain_validate(trust_domain, strlen(trust_domain), err));
    ENSURE(roots != NULL && sk_X509_num(roots) > 0, err, "a bundle needs at least one root");
    ENSURE(sk_X509_num(roots) <= ANCHOR_BUNDLE_MAX_ROOTS, err,
           "a bundle holds at most %d roots (got %d)", ANCHOR_BUNDLE_MAX_ROOTS, sk_X509_num(roots));
    ENSURE(refresh_hint >= 0, err, "bundle refresh hint must not be negative");
    ENSURE(sequence <= (uint64_t)INT64_MAX, err, "bundle sequence number is too large");
    b = calloc(1, sizeof(*b));
    ENSURE(b != NULL, err, "out of memory");
    b->trust_domain = strdup(trust_domain);
    b->roots = X509_chain_up_ref(roots);
    ENSURE_OSSL(b->trust_domain != NULL && b->roots != NULL, err, "out of memory");
    b->sequence = sequence;
    b->refresh_hint = refresh_hint;
    *out = b;
    b = NULL;
    rc = 0;
out:
    anchor_bundle_free(b);
    return rc;
}

int anchor_bundle_from_ca(struct anchor_bundle **out, const struct anchor_ca *ca, uint64_t sequence,
                          long refresh_hint, struct anchor_err *err)
{
    return anchor_bundle_new(out, ca->trust_domain, ca->roots, sequence, refresh_hint, err);
}

int anchor_bundle_parse_pem(struct anchor_bundle **out, const char *trust_domain, const char *text,
                            size_t len, const char *source, struct anchor_err *err)
{
    int rc = -1;
    STACK_OF(X509) *certs = NULL;

    ENSURE(len <= ANCHOR_BUNDLE_MAX_BYTES, err, "%s: bundle is larger than %zu bytes", source,
           ANCHOR_BUNDLE_MAX_BYTES);
    TRY(anchor__certs_from_pem(&certs, NULL, NULL, text, len, source, err));
    for (int i = 0; i < sk_X509_num(certs); i++)
        ENSURE(X509_check_ca(sk_X509_value(certs, i)) == 1, err,
               "%s: certificate %d is not a CA certificate", source, i + 1);
    TRY(anchor_bundle_new(out, trust_domain, certs, 0, 0, err));
    rc = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

void anchor_bundle_free(struct anchor_bundle *b)
{
    if (b == NULL)
        return;
    free(b->trust_domain);
    sk_X509_pop_free(b->roots, X509_free);
    free(b);
}

const char *anchor_bundle_trust_domain(const struct anchor_bundle *b)
{
    return b->trust_domain;
}

STACK_OF(X509) * anchor_bundle_get0_roots(const struct anchor_bundle *b)
{
    return b->roots;
}

uint64_t anchor_bundle_sequence(const struct anchor_bundle *b)
{
    return b->sequence;
}

long anchor_bundle_refresh_hint(const struct anchor_bundle *b)
{
    return b->refresh_hint;
}

int anchor_bundle_to_pem(char **out, size_t *len, const struct anchor_bundle *b,
                         struct anchor_err *err)
{
    int rc = -1;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *s;
    long n;

    ENSURE_OSSL(bio != NULL, err, "out of memory");
    for (int i = 0; i < sk_X509_num(b->roots); i++)
        ENSURE_OSSL(PEM_write_bio_X509(bio, sk_X509_value(b->roots, i)) == 1, err,
                    "cannot encode the bundle");
    n = BIO_get_mem_data(bio, &data);
    ENSURE(n > 0, err, "cannot encode the bundle");
    s = malloc((size_t)n + 1);
    ENSURE(s != NULL, err, "out of memory");
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    *out = s;
    if (len != NULL)
        *len = (size_t)n;
    rc = 0;
out:
    BIO_free(bio);
    return rc;
}

int anchor_bundle_store_new(X509_STORE **out, const struct anchor_bundle *b, struct anchor_err *err)
{
    int rc = -1;
    X509_STORE *store = X509_STORE_new();

    ENSURE_OSSL(store != NULL, err, "out of memory");
    for (int i = 0; i < sk_X509_num(b->roots); i++)
        ENSURE_OSSL(X509_STORE_add_cert(store, sk_X509_value(b->roots, i)) == 1, err,
                    "cannot add a root to the store");
    *out = store;
    store = NULL;
    rc = 0;
out:
    X509_STORE_free(store);
    return rc;
}
