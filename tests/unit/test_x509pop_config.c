/*
 * anchor_x509pop_config_new: caCerts parsed once into a trust store, and the
 * limits. Every row is one caCerts text (built from the test PKI) with the
 * exact result expected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/x509pop.h"
#include "helper_pki.h"

static struct hp_pki P;

/* Appends text to a growing string. */
static char *cat(char *s, const char *t)
{
    size_t a = s ? strlen(s) : 0, b = strlen(t);
    char *r = realloc(s, a + b + 1);
    memcpy(r + a, t, b + 1);
    return r;
}

static char *pem_of(X509 *x)
{
    return hp_pem_certs(&x, 1);
}

static char *c_root(void)
{
    return pem_of(P.root);
}

static char *c_root_inter(void)
{
    X509 *v[] = {P.root, P.inter};
    return hp_pem_certs(v, 2);
}

static char *c_with_text(void)
{
    char *s = cat(NULL, "# trusted roots\nsubject: Test Root CA\n");
    char *r = pem_of(P.root);
    s = cat(s, r);
    s = cat(s, "trailing words\n");
    free(r);
    return s;
}

static char *c_crlf(void)
{
    char *r = pem_of(P.root);
    char *s = NULL;
    for (char *p = r; *p; p++) {
        char one[3] = {*p, 0, 0};
        if (*p == '\n') {
            one[0] = '\r';
            one[1] = '\n';
        }
        s = cat(s, one);
    }
    free(r);
    return s;
}

static char *c_empty(void)
{
    return strdup("");
}

static char *c_blank(void)
{
    return strdup("  \n\t\r\n ");
}

static char *c_garbage(void)
{
    return strdup("not PEM at all\n");
}

static char *c_key_only(void)
{
    return hp_pem_key(P.root_key, HP_PKCS8);
}

static char *c_root_leaf(void)
{
    X509 *v[] = {P.root, P.leaf};
    return hp_pem_certs(v, 2);
}

static char *c_ca_no_certsign(void)
{
    struct hp_cert_opts o = {.cn = "Signless CA", .ca = 1, .ku = HP_KU_NO_CERTSIGN};
    X509 *x = hp_cert(&o, P.root_key, NULL, NULL);
    char *s = pem_of(x);
    X509_free(x);
    return s;
}

static char *c_ca_no_bc(void)
{
    struct hp_cert_opts o = {.cn = "No BC", .ca = 1, .bc = HP_BC_NONE};
    X509 *x = hp_cert(&o, P.root_key, NULL, NULL);
    char *s = pem_of(x);
    X509_free(x);
    return s;
}

static char *c_root_then_key(void)
{
    char *s = pem_of(P.root);
    char *k = hp_pem_key(P.root_key, HP_PKCS8);
    s = cat(s, k);
    free(k);
    return s;
}

static char *c_trailing_der(void)
{
    size_t len;
    uint8_t *der = hp_der(P.root, &len);
    uint8_t *more = malloc(len + 2);
    char *s;
    memcpy(more, der, len);
    more[len] = 0x05;
    more[len + 1] = 0x00;
    s = hp_pem_block("CERTIFICATE", more, len + 2);
    free(der);
    free(more);
    return s;
}

static char *c_junk_der(void)
{
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    return hp_pem_block("CERTIFICATE", junk, sizeof(junk));
}

static char *c_no_end(void)
{
    char *s = pem_of(P.root);
    *strstr(s, "-----END") = '\0';
    return s;
}

static char *c_bad_base64(void)
{
    char *s = pem_of(P.root);
    char *p = strchr(s, '\n') + 5;
    *p = '*';
    return s;
}

static char *c_mismatched_end(void)
{
    char *s = pem_of(P.root);
    char *e = strstr(s, "-----END CERTIFICATE-----");
    char *r;
    *e = '\0';
    r = cat(s, "-----END X509 CRL-----\n");
    return r;
}

static char *c_trusted_cert(void)
{
    char *s = pem_of(P.root);
    char *out = NULL;
    /* Relabel as TRUSTED CERTIFICATE (OpenSSL's aux form). */
    char *b = strstr(s, "BEGIN ");
    char *e = strstr(s, "END ");
    *b = '\0';
    out = cat(out, s);
    out = cat(out, "BEGIN TRUSTED ");
    *e = '\0';
    out = cat(out, b + 6);
    out = cat(out, "END TRUSTED ");
    out = cat(out, e + 4);
    free(s);
    return out;
}

struct crow {
    const char *name;
    char *(*make)(void);
    int null_input;
    long max_inter, max_rsa;
    const char *want; /* NULL: success; trailing '*': prefix */
    size_t want_count;
};

static const struct crow ROWS[] = {
    {"one root", c_root, 0, 4, 8192, NULL, 1},
    {"root and intermediate", c_root_inter, 0, 4, 8192, NULL, 2},
    {"explanatory text around blocks", c_with_text, 0, 4, 8192, NULL, 1},
    {"CRLF line ends", c_crlf, 0, 4, 8192, NULL, 1},
    {"maxIntermediates 0", c_root, 0, 0, 8192, NULL, 1},
    {"NULL caCerts", c_empty, 1, 4, 8192, "caCerts is required", 0},
    {"empty caCerts", c_empty, 0, 4, 8192, "caCerts is required", 0},
    {"blank caCerts", c_blank, 0, 4, 8192, "caCerts is required", 0},
    {"no PEM", c_garbage, 0, 4, 8192, "could not parse any PEM certificates", 0},
    {"only a key", c_key_only, 0, 4, 8192, "could not parse any PEM certificates", 0},
    {"a leaf among the CAs", c_root_leaf, 0, 4, 8192,
     "caCerts certificate 2 (CN=node-1.example.org,O=anchor-tests) is not a CA certificate", 0},
    {"CA without keyCertSign", c_ca_no_certsign, 0, 4, 8192,
     "caCerts certificate 1 (CN=Signless CA,O=anchor-tests) is not a CA certificate: key usage "
     "lacks keyCertSign",
     0},
    {"no basic constraints", c_ca_no_bc, 0, 4, 8192,
     "caCerts certificate 1 (CN=No BC,O=anchor-tests) is not a CA certificate", 0},
    {"a key after the root", c_root_then_key, 0, 4, 8192,
     "caCerts: PEM block 2 is \"PRIVATE KEY\", expected CERTIFICATE", 0},
    {"TRUSTED CERTIFICATE", c_trusted_cert, 0, 4, 8192, "could not parse any PEM certificates", 0},
    {"trailing DER bytes", c_trailing_der, 0, 4, 8192,
     "caCerts: PEM block 1: certificate DER has 2 trailing bytes", 0},
    {"not a certificate", c_junk_der, 0, 4, 8192,
     "caCerts: PEM block 1: not a valid DER certificate: *", 0},
    {"no END line", c_no_end, 0, 4, 8192, "caCerts: PEM block 1 (CERTIFICATE) has no END line", 0},
    {"bad base64", c_bad_base64, 0, 4, 8192,
     "caCerts: PEM block 1 (CERTIFICATE) has invalid base64", 0},
    {"mismatched END", c_mismatched_end, 0, 4, 8192,
     "caCerts: PEM block 1 (CERTIFICATE) has a mismatched END line", 0},
    {"negative maxIntermediates", c_root, 0, -1, 8192,
     "maxIntermediates must be a non-negative integer", 0},
    {"zero maxRSAKeySize", c_root, 0, 4, 0, "maxRSAKeySize must be a positive integer", 0},
    {"negative maxRSAKeySize", c_root, 0, 4, -2048, "maxRSAKeySize must be a positive integer", 0},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++) {
        const struct crow *r = &ROWS[i];
        char *pem = r->make();
        struct anchor_x509pop_config *cfg = NULL;
        struct anchor_err err;
        int rc;

        anchor_err_clear(&err);
        rc = anchor_x509pop_config_new(&cfg, r->null_input ? NULL : pem,
                                       r->null_input ? 0 : strlen(pem), r->max_inter, r->max_rsa,
                                       &err);
        if (r->want == NULL) {
            if (rc != 0)
                fail_msg("%s: want success, got \"%s\"", r->name, anchor_err_msg(&err));
            assert_int_equal(anchor_x509pop_config_ca_count(cfg), r->want_count);
        } else {
            size_t wl = strlen(r->want);
            int prefix = r->want[wl - 1] == '*';
            if (rc == 0)
                fail_msg("%s: want \"%s\", got success", r->name, r->want);
            assert_null(cfg);
            if (prefix ? strncmp(anchor_err_msg(&err), r->want, wl - 1) != 0
                       : strcmp(anchor_err_msg(&err), r->want) != 0)
                fail_msg("%s: want \"%s\", got \"%s\"", r->name, r->want, anchor_err_msg(&err));
        }
        anchor_x509pop_config_free(cfg);
        free(pem);
    }
}

static int setup(void **state)
{
    (void)state;
    hp_pki_init(&P, HP_EC_P256, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hp_pki_cleanup(&P);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
