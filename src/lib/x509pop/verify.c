/*
 * The server's verification of one agent's evidence, in the order of
 * DESIGN.md "x509pop, precisely": (1) intermediate count, before any X.509
 * parsing; (2) RSA key sizes of the leaf and intermediates, before any
 * signature is checked; (3) OpenSSL chain verification against the
 * configuration's ready trust store; (4) the leaf's Key Usage, (5) its key
 * type. The attributes then come from the chain OpenSSL verified, never from
 * certificates the agent sent that the chain did not use.
 */
#include "x509pop/internal.h"
#include "util/check.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAIN_FAILED ANCHOR__X509POP_CHAIN_FAILED

int anchor__x509pop_check_leaf(X509 *leaf, struct anchor_err *err)
{
    int rc = -1;
    /* X509_get_key_usage is all ones when the extension is absent, so the
     * flag says whether there is one (RFC 5280 4.2.1.3). */
    uint32_t flags = X509_get_extension_flags(leaf);
    EVP_PKEY *key = X509_get0_pubkey(leaf);

    ENSURE((flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) != 0,
           err, ANCHOR__X509POP_NO_DIGSIG);
    ENSURE((flags & EXFLAG_CA) == 0, err, CHAIN_FAILED ": leaf certificate is a CA certificate");
    ENSURE_OSSL(key != NULL, err, CHAIN_FAILED ": leaf certificate has an unusable public key");
    TRY(anchor__key_check_supported(key, err));
    rc = 0;
out:
    return rc;
}

/* What decoding an evidence certificate left behind: the SHA-256 of its
 * DER, and whether it came from the configuration's cache. */
struct decoded {
    uint8_t hash[ANCHOR__X509POP_HASH_LEN];
    int hashed;
    int cached;
};

/* Decodes the evidence's certificates: the leaf, and the intermediates into
 * a new stack (the chain builder's untrusted set), reusing intermediates
 * decoded by an earlier login (cache.c). */
static int decode_chain(X509 **leaf, STACK_OF(X509) * *inter, struct decoded *dec,
                        const struct anchor_x509pop_config *cfg,
                        const struct anchor_x509pop_evidence *ev, struct anchor_err *err)
{
    int rc = -1;
    X509 *l = NULL;
    X509 *x = NULL;
    STACK_OF(X509) *s = sk_X509_new_reserve(NULL, (int)ev->count);

    ENSURE(s != NULL, err, "out of memory");
    for (size_t i = 0; i < ev->count; i++) {
        const unsigned char *p = ev->certs[i].p;
        if (i > 0 && anchor__x509pop_der_hash(dec[i].hash, p, ev->certs[i].len) == 0) {
            dec[i].hashed = 1;
            x = anchor__x509pop_cache_get(cfg->cache, dec[i].hash);
            dec[i].cached = x != NULL;
        }
        if (x == NULL) {
            x = d2i_X509(NULL, &p, (long)ev->certs[i].len);
            ENSURE_OSSL(x != NULL && p == ev->certs[i].p + ev->certs[i].len, err,
                        CHAIN_FAILED ": certificate %zu is not a valid DER certificate", i + 1);
        }
        if (i == 0) {
            l = x;
        } else {
            ENSURE(sk_X509_push(s, x) > 0, err, "out of memory");
        }
        x = NULL;
    }
    *leaf = l;
    *inter = s;
    l = NULL;
    s = NULL;
    rc = 0;
out:
    X509_free(x);
    X509_free(l);
    sk_X509_pop_free(s, X509_free);
    return rc;
}

/* Remembers the newly decoded intermediates that the verified chain used. */
static void remember(const struct anchor_x509pop_config *cfg, STACK_OF(X509) * inter,
                     const struct decoded *dec, STACK_OF(X509) * chain)
{
    for (int i = 0; i < sk_X509_num(inter); i++) {
        X509 *x = sk_X509_value(inter, i);
        const struct decoded *d = &dec[i + 1];
        if (!d->hashed || d->cached)
            continue;
        for (int j = 1; j < sk_X509_num(chain); j++)
            if (sk_X509_value(chain, j) == x)
                anchor__x509pop_cache_put(cfg->cache, d->hash, x);
    }
}

/* Smallest RSA modulus accepted anywhere in a chain (NIST SP 800-57: 112
 * bits of security), as browsers and webpki require. */
#define MIN_RSA_BITS 2048

/* The key policy of a certificate in the chain, `who` naming it in
 * messages. Every RSA key is at least MIN_RSA_BITS; presented certificates
 * (max > 0) at most maxRSAKeySize, so that the cost of the signature checks
 * to come is bounded (DESIGN.md rule 2). A CA key (ca) must be RSA, ECDSA on
 * P-256/384/521 or Ed25519: DSA, small or unnamed curves and the like are
 * refused by an explicit allowlist rather than by OpenSSL's security level.
 * The leaf's key type is checked later, with its own message (rule 5). */
int anchor__x509pop_check_key(X509 *x, const char *who, long max, int ca, struct anchor_err *err)
{
    int rc = -1;
    EVP_PKEY *key = X509_get0_pubkey(x);
    int id;

    ENSURE_OSSL(key != NULL, err, CHAIN_FAILED ": %s has an unusable public key", who);
    id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) {
        int bits = EVP_PKEY_get_bits(key);
        ENSURE(max <= 0 || bits <= max, err,
               CHAIN_FAILED ": RSA key size %d exceeds maxRSAKeySize %ld", bits, max);
        ENSURE(bits >= MIN_RSA_BITS, err,
               CHAIN_FAILED ": %s has an RSA key of %d bits, below the minimum %d", who, bits,
               MIN_RSA_BITS);
    }
    if (ca && id != EVP_PKEY_ED25519 && anchor__key_check_supported(key, err) != 0) {
        /* "unsupported key type <NAME>", said of the CA certificate. */
        char detail[128];
        (void)snprintf(detail, sizeof(detail), "%s", anchor_err_msg(err));
        FAIL(err, CHAIN_FAILED ": %s has an %s", who, detail);
    }
    rc = 0;
out:
    return rc;
}

/* RFC 5280 4.2.1.12: ExtKeyUsageSyntax is SEQUENCE SIZE (1..MAX); OpenSSL
 * accepts an empty one, and purpose-free verification never looks at it. */
static int check_eku(X509 *leaf, struct anchor_err *err)
{
    int rc = -1;
    EXTENDED_KEY_USAGE *eku = NULL;

    if ((X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) == 0)
        return 0;
    eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, NULL, NULL);
    ENSURE(eku != NULL && sk_ASN1_OBJECT_num(eku) > 0, err,
           CHAIN_FAILED ": leaf certificate has an empty or invalid extended key usage extension");
    rc = 0;
out:
    EXTENDED_KEY_USAGE_free(eku);
    ERR_clear_error();
    return rc;
}

/* Builds and verifies the chain; on success *chain holds a new reference to
 * every certificate of the verified path, leaf first, anchor last. */
static int verify_chain(STACK_OF(X509) * *chain, const struct anchor_x509pop_config *cfg,
                        X509 *leaf, STACK_OF(X509) * inter, time_t at, struct anchor_err *err)
{
    int rc = -1;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *c = NULL;

    ENSURE_OSSL(ctx != NULL, err, "out of memory");
    /* The store's parameters (strict, partial chain for anchors, depth) are
     * inherited; only the time is per call. */
    ENSURE_OSSL(X509_STORE_CTX_init(ctx, cfg->store, leaf, inter) == 1, err,
                CHAIN_FAILED ": cannot initialise verification");
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), at);
    if (X509_verify_cert(ctx) <= 0) {
        int e = X509_STORE_CTX_get_error(ctx);
        if (e == X509_V_OK)
            anchor__err_set_ossl(err, CHAIN_FAILED);
        else
            anchor_err_set(err, CHAIN_FAILED ": %s", X509_verify_cert_error_string(e));
        goto out;
    }
    c = X509_STORE_CTX_get1_chain(ctx);
    ENSURE(c != NULL, err, "out of memory");
    /* Every caCerts entry is a CA and the leaf may not be one, so a one
     * element chain cannot pass later; refuse it here all the same. */
    ENSURE(sk_X509_num(c) >= 2, err, CHAIN_FAILED ": leaf certificate is itself a trust anchor");
    *chain = c;
    c = NULL;
    rc = 0;
out:
    sk_X509_pop_free(c, X509_free);
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int anchor_x509pop_verify(struct anchor_x509pop_verified **out,
                          const struct anchor_x509pop_config *cfg,
                          const struct anchor_x509pop_evidence *ev, const char *trust_domain,
                          time_t at, struct anchor_err *err)
{
    int rc = -1;
    X509 *leaf = NULL;
    STACK_OF(X509) *inter = NULL;
    STACK_OF(X509) *chain = NULL;
    struct anchor_x509pop_verified *v = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char *hex = NULL;
    EVP_PKEY *key;
    struct decoded *dec = NULL;

    ENSURE(ev != NULL && ev->count > 0, err, CHAIN_FAILED ": no certificate");
    ENSURE(ev->count - 1 <= (size_t)cfg->max_intermediates, err,
           CHAIN_FAILED ": too many intermediates (%zu > %ld)", ev->count - 1,
           cfg->max_intermediates);
    dec = calloc(ev->count, sizeof(*dec));
    ENSURE(dec != NULL, err, "out of memory");
    TRY(decode_chain(&leaf, &inter, dec, cfg, ev, err));
    TRY(anchor__x509pop_check_key(leaf, "certificate 1", cfg->max_rsa_key_size, 0, err));
    for (int i = 0; i < sk_X509_num(inter); i++) {
        char who[32];
        (void)snprintf(who, sizeof(who), "certificate %d", i + 2);
        TRY(anchor__x509pop_check_key(sk_X509_value(inter, i), who, cfg->max_rsa_key_size, 1, err));
    }
    TRY(verify_chain(&chain, cfg, leaf, inter, at, err));
    remember(cfg, inter, dec, chain);
    /* The anchor is trusted, but a weak anchor key makes the chain weak. */
    TRY(anchor__x509pop_check_key(sk_X509_value(chain, sk_X509_num(chain) - 1), "the trust anchor",
                                  0, 1, err));
    TRY(check_eku(leaf, err));
    TRY(anchor__x509pop_check_leaf(leaf, err));

    v = calloc(1, sizeof(*v));
    ENSURE(v != NULL, err, "out of memory");
    anchor_attrs_init(&v->attrs);
    TRY(anchor__x509pop_chain_attrs(&v->attrs, chain, trust_domain, err));
    /* OpenSSL keeps the SHA-1 of every decoded certificate; this reads it. */
    ENSURE_OSSL(X509_digest(leaf, EVP_sha1(), md, &md_len) == 1 && md_len == 20, err,
                "cannot hash the leaf certificate");
    TRY(anchor__hex(&hex, md, md_len, err));
    memcpy(v->fingerprint, hex, 41);
    /* A reference to the decoded key, not a re-encoded copy. */
    key = X509_get0_pubkey(leaf);
    ENSURE(key != NULL && EVP_PKEY_up_ref(key) == 1, err, "out of memory");
    v->key = key;
    v->leaf = leaf;
    leaf = NULL;
    v->chain_len = (size_t)sk_X509_num(chain);
    *out = v;
    v = NULL;
    rc = 0;
out:
    free(dec);
    free(hex);
    anchor_x509pop_verified_free(v);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(inter, X509_free);
    X509_free(leaf);
    return rc;
}

const struct anchor_attrs *anchor_x509pop_verified_attrs(const struct anchor_x509pop_verified *v)
{
    return &v->attrs;
}

const char *anchor_x509pop_verified_fingerprint(const struct anchor_x509pop_verified *v)
{
    return v->fingerprint;
}

void anchor_x509pop_verified_free(struct anchor_x509pop_verified *v)
{
    if (v == NULL)
        return;
    anchor_attrs_cleanup(&v->attrs);
    EVP_PKEY_free(v->key);
    X509_free(v->leaf);
    free(v);
}
