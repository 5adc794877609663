/*
 * The x509pop configuration of one policy: the caCerts trust anchors parsed
 * once into an X509_STORE, and the limits. Built when a configuration
 * snapshot is loaded and shared, read-only and reference-counted, by every
 * login that runs on that snapshot; the last reference frees it.
 */
#include "x509pop/internal.h"
#include "util/check.h"

#include <ctype.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static int all_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

/* RFC 5280 4.2.1.9: a CA certificate asserts cA in Basic Constraints; when
 * it has a Key Usage extension, keyCertSign must be set (4.2.1.3). */
static int check_ca(X509 *x, size_t no, struct anchor_err *err)
{
    int rc = -1;
    uint32_t flags = X509_get_extension_flags(x);
    char name[256];

    anchor__name_string(X509_get_subject_name(x), name, sizeof(name));
    ENSURE((flags & EXFLAG_INVALID) == 0, err,
           "caCerts certificate %zu (%s) has invalid or duplicate extensions", no, name);
    ENSURE((flags & EXFLAG_CA) != 0, err, "caCerts certificate %zu (%s) is not a CA certificate",
           no, name);
    ENSURE((flags & EXFLAG_KUSAGE) == 0 || (X509_get_key_usage(x) & KU_KEY_CERT_SIGN) != 0, err,
           "caCerts certificate %zu (%s) is not a CA certificate: key usage lacks keyCertSign", no,
           name);
    rc = 0;
out:
    return rc;
}

static int store_new(X509_STORE **out, long max_intermediates, struct anchor_err *err)
{
    int rc = -1;
    X509_STORE *store = X509_STORE_new();
    X509_VERIFY_PARAM *param = NULL;

    ENSURE_OSSL(store != NULL, err, "out of memory");
    param = X509_VERIFY_PARAM_new();
    ENSURE_OSSL(param != NULL, err, "out of memory");
    /* Strict RFC 5280 checks; PARTIAL_CHAIN only so that every caCerts
     * entry, root or not, is a trust anchor (as Go's crypto/x509). No
     * purpose: x509pop certificates come from arbitrary PKIs. OpenSSL's depth
     * counts the intermediates between leaf and anchor. */
    ENSURE_OSSL(X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT |
                                                       X509_V_FLAG_PARTIAL_CHAIN) == 1,
                err, "cannot set verification flags");
    X509_VERIFY_PARAM_set_depth(param, (int)max_intermediates);
    ENSURE_OSSL(X509_STORE_set1_param(store, param) == 1, err, "cannot set verification flags");
    *out = store;
    store = NULL;
    rc = 0;
out:
    X509_VERIFY_PARAM_free(param);
    X509_STORE_free(store);
    return rc;
}

int anchor_x509pop_config_new(struct anchor_x509pop_config **out, const char *ca_pem,
                              size_t ca_pem_len, long max_intermediates, long max_rsa_key_size,
                              struct anchor_err *err)
{
    int rc = -1;
    struct anchor__pem_blocks blocks = {NULL, 0};
    struct anchor_x509pop_config *cfg = NULL;
    X509 *x = NULL;
    size_t ncert = 0;

    ENSURE(ca_pem != NULL && !all_blank(ca_pem, ca_pem_len), err, "caCerts is required");
    ENSURE(max_intermediates >= 0 && max_intermediates <= INT_MAX - 2, err,
           "maxIntermediates must be a non-negative integer");
    ENSURE(max_rsa_key_size > 0 && max_rsa_key_size <= INT_MAX, err,
           "maxRSAKeySize must be a positive integer");
    ENSURE(ca_pem_len <= ANCHOR__MAX_PEM_FILE_BYTES, err, "caCerts is larger than %d bytes",
           ANCHOR__MAX_PEM_FILE_BYTES);
    TRY(anchor__pem_parse(&blocks, ca_pem, ca_pem_len, "caCerts", err));
    for (size_t i = 0; i < blocks.n; i++)
        ncert += strcmp(blocks.v[i].label, "CERTIFICATE") == 0;
    ENSURE(ncert > 0, err, "could not parse any PEM certificates");

    cfg = calloc(1, sizeof(*cfg));
    ENSURE(cfg != NULL, err, "out of memory");
    atomic_init(&cfg->refs, 1);
    cfg->max_intermediates = max_intermediates;
    cfg->max_rsa_key_size = max_rsa_key_size;
    TRY(store_new(&cfg->store, max_intermediates, err));
    TRY(anchor__x509pop_cache_new(&cfg->cache, err));
    for (size_t i = 0; i < blocks.n; i++) {
        const struct anchor__pem_block *b = &blocks.v[i];
        ENSURE(strcmp(b->label, "CERTIFICATE") == 0, err,
               "caCerts: PEM block %zu is \"%s\", expected CERTIFICATE", i + 1, b->label);
        TRY(anchor__cert_from_der(&x, b->der, b->der_len, "caCerts", i + 1, err));
        TRY(check_ca(x, i + 1, err));
        ENSURE_OSSL(X509_STORE_add_cert(cfg->store, x) == 1, err,
                    "caCerts: cannot add certificate %zu", i + 1);
        X509_free(x);
        x = NULL;
        cfg->ca_count++;
    }
    *out = cfg;
    cfg = NULL;
    rc = 0;
out:
    X509_free(x);
    anchor_x509pop_config_free(cfg);
    anchor__pem_blocks_cleanup(&blocks);
    return rc;
}

struct anchor_x509pop_config *anchor_x509pop_config_up_ref(struct anchor_x509pop_config *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void anchor_x509pop_config_free(struct anchor_x509pop_config *cfg)
{
    if (cfg == NULL)
        return;
    /* acq_rel: the last owner must see every other owner's last use. */
    if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1)
        return;
    X509_STORE_free(cfg->store);
    anchor__x509pop_cache_free(cfg->cache);
    free(cfg);
}

long anchor_x509pop_config_max_intermediates(const struct anchor_x509pop_config *cfg)
{
    return cfg->max_intermediates;
}

long anchor_x509pop_config_max_rsa_key_size(const struct anchor_x509pop_config *cfg)
{
    return cfg->max_rsa_key_size;
}

size_t anchor_x509pop_config_ca_count(const struct anchor_x509pop_config *cfg)
{
    return cfg->ca_count;
}
