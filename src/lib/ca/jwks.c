/*
 * The SPIFFE bundle format (SPIFFE Trust Domain and Bundle 4): a JWK Set
 * whose X.509 authorities are keys with "use": "x509-svid", each holding its
 * CA certificate in "x5c" and that certificate's public key in the JWK
 * parameters, plus "spiffe_sequence" and "spiffe_refresh_hint".
 *
 * The reader is strict where a lax one would let two parties see different
 * bundles: the base64 must be canonical, the DER exact, and the JWK
 * parameters must describe the certificate's own key. Keys of other uses
 * (such as "jwt-svid") are skipped, as the standard says.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>

#include "ca/internal.h"
#include "crypto/crypto.h"
#include "util/check.h"

#define WHAT "invalid bundle"

/* --- writing ----------------------------------------------------------------- */

/* Base64 of bytes, standard alphabet with padding (RFC 7517 4.7 "x5c"), or
 * when url is set the URL-safe alphabet without padding (RFC 7518 6). */
static json_t *b64(const unsigned char *bytes, size_t len, int url)
{
    size_t cap = 4 * ((len + 2) / 3) + 1;
    unsigned char *s = malloc(cap);
    int n;
    json_t *j = NULL;

    if (s == NULL || len > INT32_MAX / 2)
        goto out;
    n = EVP_EncodeBlock(s, bytes, (int)len);
    if (n < 0)
        goto out;
    if (url) {
        while (n > 0 && s[n - 1] == '=')
            n--;
        for (int i = 0; i < n; i++)
            s[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
    }
    j = json_stringn((const char *)s, (size_t)n);
out:
    free(s);
    return j;
}

/* Puts a big-endian parameter of key into jwk under name, padded to pad
 * bytes (0: minimal length). */
static int put_bn(json_t *jwk, const char *name, const EVP_PKEY *key, const char *param, int pad,
                  struct anchor_err *err)
{
    int rc = -1, n;
    BIGNUM *bn = NULL;
    unsigned char buf[1024];

    ENSURE_OSSL(EVP_PKEY_get_bn_param(key, param, &bn) == 1, err, "cannot read a root's key");
    n = pad > 0 ? pad : BN_num_bytes(bn);
    ENSURE(n > 0 && (size_t)n <= sizeof(buf), err, "a root's key is too large");
    ENSURE_OSSL(BN_bn2binpad(bn, buf, n) == n, err, "cannot read a root's key");
    ENSURE(json_object_set_new(jwk, name, b64(buf, (size_t)n, 1)) == 0, err, "out of memory");
    rc = 0;
out:
    BN_free(bn);
    return rc;
}

/* The public key parameters of a JWK (RFC 7518 6.2, 6.3). */
static int put_key(json_t *jwk, const EVP_PKEY *key, struct anchor_err *err)
{
    int rc = -1, size;
    char group[64];
    const char *crv;

    /* X509_get0_pubkey gives NULL for a key it cannot decode */
    ENSURE(key != NULL, err, "cannot read the certificate's public key");
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
        ENSURE(json_object_set_new(jwk, "kty", json_string("RSA")) == 0, err, "out of memory");
        TRY(put_bn(jwk, "n", key, OSSL_PKEY_PARAM_RSA_N, 0, err));
        TRY(put_bn(jwk, "e", key, OSSL_PKEY_PARAM_RSA_E, 0, err));
        return 0;
    }
    ENSURE(EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
               EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                              NULL) == 1,
           err, "unsupported root key type %s", anchor__key_type_name(key));
    if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
        crv = "P-256", size = 32;
    else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
        crv = "P-384", size = 48;
    else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
        crv = "P-521", size = 66;
    else
        FAIL(err, "unsupported root key type EC %s", group);
    ENSURE(json_object_set_new(jwk, "kty", json_string("EC")) == 0 &&
               json_object_set_new(jwk, "crv", json_string(crv)) == 0,
           err, "out of memory");
    TRY(put_bn(jwk, "x", key, OSSL_PKEY_PARAM_EC_PUB_X, size, err));
    TRY(put_bn(jwk, "y", key, OSSL_PKEY_PARAM_EC_PUB_Y, size, err));
    rc = 0;
out:
    ERR_clear_error();
    return rc;
}

static int put_root(json_t *keys, X509 *root, struct anchor_err *err)
{
    int rc = -1, len;
    unsigned char *der = NULL;
    json_t *jwk = json_object(), *x5c = json_array();

    ENSURE(jwk != NULL && x5c != NULL, err, "out of memory");
    ENSURE(json_object_set_new(jwk, "use", json_string("x509-svid")) == 0, err, "out of memory");
    TRY(put_key(jwk, X509_get0_pubkey(root), err));
    len = i2d_X509(root, &der);
    ENSURE_OSSL(len > 0, err, "cannot encode a root");
    /* SPIFFE Trust Domain and Bundle 4.2.2: x5c holds exactly the one
     * certificate of this authority. */
    ENSURE(json_array_append_new(x5c, b64(der, (size_t)len, 0)) == 0 &&
               json_object_set(jwk, "x5c", x5c) == 0 && json_array_append(keys, jwk) == 0,
           err, "out of memory");
    rc = 0;
out:
    OPENSSL_free(der);
    json_decref(x5c);
    json_decref(jwk);
    return rc;
}

int anchor_bundle_to_jwks(char **out, const struct anchor_bundle *b, struct anchor_err *err)
{
    int rc = -1;
    json_t *doc = json_object(), *keys = json_array();
    char *s = NULL;

    ENSURE(doc != NULL && keys != NULL, err, "out of memory");
    for (int i = 0; i < sk_X509_num(b->roots); i++)
        TRY(put_root(keys, sk_X509_value(b->roots, i), err));
    ENSURE(json_object_set(doc, "keys", keys) == 0 &&
               json_object_set_new(doc, "spiffe_sequence", json_integer((json_int_t)b->sequence)) ==
                   0,
           err, "out of memory");
    if (b->refresh_hint > 0)
        ENSURE(json_object_set_new(doc, "spiffe_refresh_hint",
                                   json_integer((json_int_t)b->refresh_hint)) == 0,
               err, "out of memory");
    s = json_dumps(doc, JSON_COMPACT);
    ENSURE(s != NULL, err, "out of memory");
    *out = s;
    rc = 0;
out:
    json_decref(keys);
    json_decref(doc);
    return rc;
}

/* --- reading ----------------------------------------------------------------- */

/* Decodes canonical base64 (standard alphabet, padded, no whitespace) of one
 * DER certificate. Canonical: encoding the result again gives s back. */
static int read_x5c(X509 **out, const char *s, size_t idx, struct anchor_err *err)
{
    int rc = -1, n;
    size_t slen = strlen(s), pad = 0;
    unsigned char *der = NULL;
    const unsigned char *p;
    X509 *x = NULL;
    json_t *again = NULL;

    ENSURE(slen > 0 && slen % 4 == 0 && slen <= ANCHOR_BUNDLE_MAX_BYTES, err,
           "%s: key %zu: \"x5c\" is not base64 DER", WHAT, idx);
    der = malloc(slen / 4 * 3);
    ENSURE(der != NULL, err, "out of memory");
    n = EVP_DecodeBlock(der, (const unsigned char *)s, (int)slen);
    ENSURE(n > 0, err, "%s: key %zu: \"x5c\" is not base64 DER", WHAT, idx);
    /* EVP_DecodeBlock counts the padding as zero bytes */
    while (pad < 2 && s[slen - 1 - pad] == '=')
        pad++;
    n -= (int)pad;
    p = der;
    x = d2i_X509(NULL, &p, n);
    ENSURE(x != NULL && p == der + n, err, "%s: key %zu: \"x5c\" is not base64 DER", WHAT, idx);
    again = b64(der, (size_t)n, 0);
    ENSURE(again != NULL, err, "out of memory");
    ENSURE(strcmp(json_string_value(again), s) == 0, err,
           "%s: key %zu: \"x5c\" is not canonical base64", WHAT, idx);
    *out = x;
    x = NULL;
    rc = 0;
out:
    ERR_clear_error();
    json_decref(again);
    X509_free(x);
    free(der);
    return rc;
}

/* Reads one "x509-svid" key (1-based index idx for messages). */
static int read_key(X509 **out, json_t *key, size_t idx, struct anchor_err *err)
{
    int rc = -1;
    json_t *x5c = json_object_get(key, "x5c"), *want = NULL, *v;
    const char *s, *name;
    X509 *x = NULL;

    ENSURE(json_is_array(x5c) && json_array_size(x5c) == 1, err,
           "%s: key %zu: \"x5c\" must hold exactly one certificate", WHAT, idx);
    s = json_string_value(json_array_get(x5c, 0));
    ENSURE(s != NULL, err, "%s: key %zu: \"x5c\" is not base64 DER", WHAT, idx);
    TRY(read_x5c(&x, s, idx, err));
    ENSURE(X509_check_ca(x) == 1, err, "%s: key %zu: the \"x5c\" certificate is not a CA", WHAT,
           idx);
    want = json_object();
    ENSURE(want != NULL, err, "out of memory");
    if (put_key(want, X509_get0_pubkey(x), err) != 0) {
        char prefix[64];

        (void)snprintf(prefix, sizeof(prefix), "%s: key %zu", WHAT, idx);
        anchor_err_prefix(err, prefix);
        goto out;
    }
    /* The JWK's own parameters must be the certificate's key (RFC 7517
     * 4.7: the key in the first certificate MUST match the JWK). */
    json_object_foreach(want, name, v)
    {
        ENSURE(json_equal(json_object_get(key, name), v), err,
               "%s: key %zu: the \"x5c\" certificate does not match the key's \"%s\"", WHAT, idx,
               name);
    }
    *out = x;
    x = NULL;
    rc = 0;
out:
    json_decref(want);
    X509_free(x);
    return rc;
}

/* A non-negative integer member, or 0 when absent. */
static int read_count(json_int_t *out, json_t *doc, const char *name, struct anchor_err *err)
{
    json_t *v = json_object_get(doc, name);

    *out = 0;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        anchor_err_set(err, "%s: \"%s\" must be a non-negative integer", WHAT, name);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

int anchor_bundle_parse_jwks(struct anchor_bundle **out, const char *trust_domain, const char *text,
                             size_t len, struct anchor_err *err)
{
    int rc = -1;
    json_t *doc = NULL, *keys, *key, *use;
    json_error_t jerr;
    json_int_t seq, hint;
    STACK_OF(X509) *roots = NULL;
    X509 *x = NULL;
    size_t i;

    ENSURE(len <= ANCHOR_BUNDLE_MAX_BYTES, err, "%s: larger than %zu bytes", WHAT,
           ANCHOR_BUNDLE_MAX_BYTES);
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    ENSURE(doc != NULL, err, "%s: not JSON: %s", WHAT, jerr.text);
    ENSURE(json_is_object(doc), err, "%s: not a JSON object", WHAT);
    keys = json_object_get(doc, "keys");
    ENSURE(json_is_array(keys), err, "%s: \"keys\" is missing or not an array", WHAT);
    TRY(read_count(&seq, doc, "spiffe_sequence", err));
    TRY(read_count(&hint, doc, "spiffe_refresh_hint", err));
    ENSURE((unsigned long long)hint <= (unsigned long long)LONG_MAX, err,
           "%s: \"spiffe_refresh_hint\" is too large", WHAT);
    roots = sk_X509_new_null();
    ENSURE(roots != NULL, err, "out of memory");
    json_array_foreach(keys, i, key)
    {
        ENSURE(json_is_object(key), err, "%s: key %zu is not an object", WHAT, i + 1);
        use = json_object_get(key, "use");
        if (!json_is_string(use) || strcmp(json_string_value(use), "x509-svid") != 0)
            continue;
        ENSURE(sk_X509_num(roots) < ANCHOR_BUNDLE_MAX_ROOTS, err, "%s: more than %d x509-svid keys",
               WHAT, ANCHOR_BUNDLE_MAX_ROOTS);
        TRY(read_key(&x, key, i + 1, err));
        ENSURE(sk_X509_push(roots, x) > 0, err, "out of memory");
        x = NULL;
    }
    ENSURE(sk_X509_num(roots) > 0, err, "%s: no x509-svid key", WHAT);
    TRY(anchor_bundle_new(out, trust_domain, roots, (uint64_t)seq, (long)hint, err));
    rc = 0;
out:
    X509_free(x);
    sk_X509_pop_free(roots, X509_free);
    json_decref(doc);
    return rc;
}
