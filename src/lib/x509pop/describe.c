/*
 * A one-line, human-oriented description of a verified leaf, for anchorctl
 * and debug logs. Not on the login path: it formats names and dates that
 * verification itself never needs.
 */
#include "x509pop/internal.h"
#include "util/check.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void key_desc(const EVP_PKEY *key, char *buf, size_t size)
{
    char group[64];
    size_t len = 0;

    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
        EVP_PKEY_get_group_name(key, group, sizeof(group), &len) == 1) {
        const char *nist = strcmp(group, "prime256v1") == 0  ? "P-256"
                           : strcmp(group, "secp384r1") == 0 ? "P-384"
                           : strcmp(group, "secp521r1") == 0 ? "P-521"
                                                             : group;
        (void)snprintf(buf, size, "EC %s", nist);
    } else {
        (void)snprintf(buf, size, "%s %d", anchor__key_type_name(key), EVP_PKEY_get_bits(key));
    }
    ERR_clear_error();
}

int anchor_x509pop_verified_describe(const struct anchor_x509pop_verified *v, char **out,
                                     struct anchor_err *err)
{
    int rc = -1;
    char subject[256], issuer[256], key[80], after[32] = "?";
    struct tm tm;
    char *s = NULL;
    int n;

    anchor__name_string(X509_get_subject_name(v->leaf), subject, sizeof(subject));
    anchor__name_string(X509_get_issuer_name(v->leaf), issuer, sizeof(issuer));
    key_desc(v->key, key, sizeof(key));
    if (ASN1_TIME_to_tm(X509_get0_notAfter(v->leaf), &tm) == 1)
        (void)strftime(after, sizeof(after), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n = snprintf(NULL, 0, "subject=\"%s\" issuer=\"%s\" key=%s not_after=%s chain=%zu", subject,
                 issuer, key, after, v->chain_len);
    ENSURE(n > 0, err, "cannot describe the certificate");
    s = malloc((size_t)n + 1);
    ENSURE(s != NULL, err, "out of memory");
    (void)snprintf(s, (size_t)n + 1, "subject=\"%s\" issuer=\"%s\" key=%s not_after=%s chain=%zu",
                   subject, issuer, key, after, v->chain_len);
    *out = s;
    rc = 0;
out:
    ERR_clear_error();
    return rc;
}
