/*
 * The agent's credential and the strict loaders under it: certificate and
 * key files (PKCS#1, PKCS#8, SEC1), intermediates, the key-match and leaf
 * checks, anchor_x509pop_evidence_from_files, the PEM framer itself, and a
 * full agent-to-server proof round. Each row writes its files into a
 * private temporary directory and names the exact message expected, with
 * {cert}, {inter} and {key} standing for the paths written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anchor/x509pop.h"
#include "crypto/crypto.h"
#include "helper_pki.h"

static struct hp_pki P; /* EC P-256 leaf */
static struct hp_pki R; /* RSA 2048 leaf */
static char *DIR_;

static char *cat(char *s, const char *t)
{
    size_t a = s ? strlen(s) : 0, b = strlen(t);
    char *r = realloc(s, a + b + 1);
    memcpy(r + a, t, b + 1);
    return r;
}

static char *certs2(X509 *a, X509 *b)
{
    X509 *v[] = {a, b};
    return hp_pem_certs(v, b != NULL ? 2 : 1);
}

/* What a row writes: NULL file content means "no such file" (or, for
 * inter, no intermediates argument at all). */
struct files {
    char *cert, *inter, *key;
    int cert_is_dir, inter_missing;
    size_t cert_size; /* non-zero: write this many bytes of 'A' */
};

enum mk {
    F_OK_SEC1,
    F_OK_PKCS8_EC,
    F_OK_PKCS1_RSA,
    F_OK_PKCS8_RSA,
    F_OK_CHAIN_IN_CERT_FILE,
    F_OK_EC_PARAMETERS,
    F_OK_CRLF_KEY,
    F_MISMATCH,
    F_MISMATCH_TYPE,
    F_ENCRYPTED_PKCS8,
    F_ENCRYPTED_PKCS1,
    F_KEY_IS_CERT,
    F_TWO_KEYS,
    F_KEY_WRONG_LABEL,
    F_KEY_TRAILING,
    F_KEY_EMPTY,
    F_KEY_NONE,
    F_CERT_EMPTY,
    F_CERT_KEY_BLOCK,
    F_CERT_TRAILING,
    F_CERT_NO_PEM,
    F_CERT_MISSING,
    F_CERT_DIR,
    F_CERT_TOO_LARGE,
    F_INTER_HAS_KEY,
    F_INTER_MISSING,
    F_NO_DIGSIG,
    F_ED25519,
    F_CA_LEAF,
    F_RSA1024,
};

static void make(enum mk m, struct files *f)
{
    memset(f, 0, sizeof(*f));
    f->cert = certs2(P.leaf, NULL);
    f->inter = certs2(P.inter, NULL);
    f->key = hp_pem_key(P.leaf_key, HP_SEC1);
    switch (m) {
    case F_OK_SEC1:
        break;
    case F_OK_PKCS8_EC:
        free(f->key);
        f->key = hp_pem_key(P.leaf_key, HP_PKCS8);
        break;
    case F_OK_PKCS1_RSA:
    case F_OK_PKCS8_RSA:
        free(f->cert);
        free(f->inter);
        free(f->key);
        f->cert = certs2(R.leaf, NULL);
        f->inter = certs2(R.inter, NULL);
        f->key = hp_pem_key(R.leaf_key, m == F_OK_PKCS1_RSA ? HP_PKCS1 : HP_PKCS8);
        break;
    case F_OK_CHAIN_IN_CERT_FILE:
        free(f->cert);
        free(f->inter);
        f->cert = certs2(P.leaf, P.inter);
        f->inter = NULL;
        break;
    case F_OK_EC_PARAMETERS: {
        char *k = f->key;
        f->key = cat(strdup("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"
                            "-----END EC PARAMETERS-----\n"),
                     k);
        free(k);
        break;
    }
    case F_OK_CRLF_KEY: {
        char *k = f->key, *s = NULL;
        for (char *p = k; *p; p++)
            s = cat(s, *p == '\n' ? "\r\n" : (char[2]){*p, 0});
        free(k);
        f->key = s;
        break;
    }
    case F_MISMATCH: {
        EVP_PKEY *other = hp_key_fresh(HP_EC_P256, 0);
        free(f->key);
        f->key = hp_pem_key(other, HP_SEC1);
        EVP_PKEY_free(other);
        break;
    }
    case F_MISMATCH_TYPE:
        free(f->key);
        f->key = hp_pem_key(R.leaf_key, HP_PKCS1);
        break;
    case F_ENCRYPTED_PKCS8:
        free(f->key);
        f->key = hp_pem_key(P.leaf_key, HP_PKCS8_ENCRYPTED);
        break;
    case F_ENCRYPTED_PKCS1:
        free(f->key);
        f->key = hp_pem_key(R.leaf_key, HP_PKCS1_ENCRYPTED);
        break;
    case F_KEY_IS_CERT:
        free(f->key);
        f->key = certs2(P.leaf, NULL);
        break;
    case F_TWO_KEYS: {
        char *k2 = hp_pem_key(P.leaf_key, HP_PKCS8);
        f->key = cat(f->key, k2);
        free(k2);
        break;
    }
    case F_KEY_WRONG_LABEL: {
        /* PKCS#8 DER under the PKCS#1 label. */
        char *k = hp_pem_key(R.leaf_key, HP_PKCS8);
        struct anchor__pem_blocks b;
        struct anchor_err err;
        assert_int_equal(anchor__pem_parse(&b, k, strlen(k), "k", &err), 0);
        free(f->key);
        f->key = hp_pem_block("RSA PRIVATE KEY", b.v[0].der, b.v[0].der_len);
        anchor__pem_blocks_cleanup(&b);
        free(k);
        free(f->cert);
        f->cert = certs2(R.leaf, NULL);
        free(f->inter);
        f->inter = certs2(R.inter, NULL);
        break;
    }
    case F_KEY_TRAILING: {
        char *k = hp_pem_key(P.leaf_key, HP_PKCS8);
        struct anchor__pem_blocks b;
        struct anchor_err err;
        uint8_t *d;
        assert_int_equal(anchor__pem_parse(&b, k, strlen(k), "k", &err), 0);
        d = malloc(b.v[0].der_len + 2);
        memcpy(d, b.v[0].der, b.v[0].der_len);
        d[b.v[0].der_len] = 0x05;
        d[b.v[0].der_len + 1] = 0x00;
        free(f->key);
        f->key = hp_pem_block("PRIVATE KEY", d, b.v[0].der_len + 2);
        anchor__pem_blocks_cleanup(&b);
        free(d);
        free(k);
        break;
    }
    case F_KEY_EMPTY:
        free(f->key);
        f->key = strdup("");
        break;
    case F_KEY_NONE:
        free(f->key);
        f->key = strdup("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"
                        "-----END EC PARAMETERS-----\n");
        break;
    case F_CERT_EMPTY:
        free(f->cert);
        f->cert = strdup("");
        break;
    case F_CERT_KEY_BLOCK:
        f->cert = cat(f->cert, f->key);
        break;
    case F_CERT_TRAILING: {
        size_t len;
        uint8_t *d = hp_der(P.leaf, &len);
        d = realloc(d, len + 2);
        d[len] = 0x05;
        d[len + 1] = 0x00;
        free(f->cert);
        f->cert = hp_pem_block("CERTIFICATE", d, len + 2);
        free(d);
        break;
    }
    case F_CERT_NO_PEM:
        free(f->cert);
        f->cert = strdup("this is not PEM\n");
        break;
    case F_CERT_MISSING:
        free(f->cert);
        f->cert = NULL;
        break;
    case F_CERT_DIR:
        f->cert_is_dir = 1;
        break;
    case F_CERT_TOO_LARGE:
        f->cert_size = 1024 * 1024 + 1;
        break;
    case F_INTER_HAS_KEY:
        f->inter = cat(f->inter, f->key);
        break;
    case F_INTER_MISSING:
        f->inter_missing = 1;
        break;
    case F_NO_DIGSIG:
    case F_ED25519:
    case F_RSA1024:
    case F_CA_LEAF: {
        struct hp_cert_opts o = {.cn = "n",
                                 .ku = m == F_NO_DIGSIG ? HP_KU_NO_DIGSIG : HP_KU_DEFAULT,
                                 .ca = m == F_CA_LEAF};
        EVP_PKEY *k = m == F_ED25519   ? hp_key(HP_ED25519, 0)
                      : m == F_RSA1024 ? hp_key(HP_RSA, 1024)
                                       : hp_key(HP_EC_P256, 0);
        X509 *leaf = hp_cert(&o, k, P.inter, P.inter_key);
        free(f->cert);
        free(f->key);
        f->cert = certs2(leaf, NULL);
        f->key = hp_pem_key(k, HP_PKCS8);
        X509_free(leaf);
        EVP_PKEY_free(k);
        break;
    }
    }
}

struct row {
    const char *name;
    enum mk m;
    const char *want; /* NULL: success; {cert} {inter} {key}: paths; '*' suffix: prefix */
};

static const struct row ROWS[] = {
    {"SEC1 EC key", F_OK_SEC1, NULL},
    {"PKCS#8 EC key", F_OK_PKCS8_EC, NULL},
    {"PKCS#1 RSA key", F_OK_PKCS1_RSA, NULL},
    {"PKCS#8 RSA key", F_OK_PKCS8_RSA, NULL},
    {"intermediates after the leaf", F_OK_CHAIN_IN_CERT_FILE, NULL},
    {"EC PARAMETERS before the key", F_OK_EC_PARAMETERS, NULL},
    {"CRLF key file", F_OK_CRLF_KEY, NULL},
    {"other EC key", F_MISMATCH, "private key does not match the certificate"},
    {"RSA key for an EC leaf", F_MISMATCH_TYPE, "private key does not match the certificate"},
    {"encrypted PKCS#8", F_ENCRYPTED_PKCS8,
     "{key}: PEM block 1: the private key is encrypted; anchor needs an unencrypted key"},
    {"encrypted PKCS#1", F_ENCRYPTED_PKCS1,
     "{key}: PEM block 1: the private key is encrypted; anchor needs an unencrypted key"},
    {"certificate in the key file", F_KEY_IS_CERT,
     "{key}: PEM block 1 is \"CERTIFICATE\", expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE "
     "KEY"},
    {"two keys", F_TWO_KEYS, "{key}: PEM block 2: more than one private key"},
    {"PKCS#8 under the PKCS#1 label", F_KEY_WRONG_LABEL,
     "{key}: PEM block 1 (RSA PRIVATE KEY): not a valid private key*"},
    {"key DER with trailing bytes", F_KEY_TRAILING,
     "{key}: PEM block 1 (PRIVATE KEY): key DER has 2 trailing bytes"},
    {"empty key file", F_KEY_EMPTY, "{key}: file is empty"},
    {"no key in the key file", F_KEY_NONE, "{key}: no PEM private key found"},
    {"empty certificate file", F_CERT_EMPTY, "{cert}: file is empty"},
    {"key block in the certificate file", F_CERT_KEY_BLOCK,
     "{cert}: PEM block 2 is \"EC PRIVATE KEY\", expected CERTIFICATE"},
    {"certificate DER with trailing bytes", F_CERT_TRAILING,
     "{cert}: PEM block 1: certificate DER has 2 trailing bytes"},
    {"no PEM in the certificate file", F_CERT_NO_PEM, "{cert}: no PEM certificate found"},
    {"no certificate file", F_CERT_MISSING, "{cert}: cannot open: No such file or directory"},
    {"certificate path is a directory", F_CERT_DIR, "{cert}: not a regular file"},
    {"certificate file over 1 MiB", F_CERT_TOO_LARGE, "{cert}: file is larger than 1048576 bytes"},
    {"key in the intermediates file", F_INTER_HAS_KEY,
     "{inter}: PEM block 2 is \"EC PRIVATE KEY\", expected CERTIFICATE"},
    {"no intermediates file", F_INTER_MISSING, "{inter}: cannot open: No such file or directory"},
    {"leaf without digitalSignature", F_NO_DIGSIG,
     "certificate does not include digitalSignature key usage"},
    {"Ed25519 leaf", F_ED25519, "unsupported key type ED25519"},
    {"RSA 1024 leaf", F_RSA1024,
     "certificate chain verification failed: certificate 1 has an RSA key of 1024 bits, below "
     "the minimum 2048"},
    {"CA leaf", F_CA_LEAF,
     "certificate chain verification failed: leaf certificate is a CA certificate"},
};

/* Replaces {cert}, {inter}, {key} in want. */
static char *expand(const char *want, const char *cert, const char *inter, const char *key)
{
    char *s = NULL;
    while (*want) {
        const char *sub = NULL;
        size_t skip = 1;
        if (strncmp(want, "{cert}", 6) == 0)
            sub = cert, skip = 6;
        else if (strncmp(want, "{inter}", 7) == 0)
            sub = inter, skip = 7;
        else if (strncmp(want, "{key}", 5) == 0)
            sub = key, skip = 5;
        s = cat(s, sub != NULL ? sub : (char[2]){*want, 0});
        want += skip;
    }
    return s;
}

/* The server side of a round: verify the evidence against root and check
 * the credential's proof. */
static void server_round(struct anchor_x509pop_credential *cred, X509 *root)
{
    char *pem = certs2(root, NULL);
    struct anchor_x509pop_config *cfg = NULL;
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    struct anchor_x509pop_proof proof;
    uint8_t nonce[32], exporter[32] = {7}, *buf = NULL, *pr = NULL;
    size_t len = 0, pr_len = 0;
    struct anchor_err err;

    if (anchor_x509pop_config_new(&cfg, pem, strlen(pem), 4, 8192, &err) != 0 ||
        anchor_x509pop_credential_evidence(cred, &buf, &len, &err) != 0 ||
        anchor_x509pop_evidence_parse(&ev, buf, len, &err) != 0 ||
        anchor_x509pop_verify(&v, cfg, ev, NULL, time(NULL), &err) != 0 ||
        anchor_x509pop_nonce(nonce, &err) != 0 ||
        anchor_x509pop_credential_prove(cred, nonce, exporter, &pr, &pr_len, &err) != 0 ||
        anchor_x509pop_proof_parse(&proof, pr, pr_len, &err) != 0 ||
        anchor_x509pop_proof_verify(v, nonce, &proof, exporter, &err) != 0)
        fail_msg("round: %s", anchor_err_msg(&err));
    /* The same proof does not answer another challenge. */
    nonce[0] ^= 1;
    assert_int_equal(anchor_x509pop_proof_verify(v, nonce, &proof, exporter, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "failed to verify signature");
    anchor_x509pop_verified_free(v);
    anchor_x509pop_evidence_free(ev);
    anchor_x509pop_config_free(cfg);
    free(buf);
    free(pr);
    free(pem);
}

static void run_row(const struct row *r)
{
    struct files f;
    char *cert, *inter = NULL, *key, *want = NULL;
    struct anchor_x509pop_credential *cred = NULL;
    struct anchor_err err;
    int rc;

    make(r->m, &f);
    cert = hp_write_text(DIR_, "cert.pem", "");
    if (f.cert_is_dir) {
        unlink(cert);
        assert_int_equal(mkdir(cert, 0700), 0);
    } else if (f.cert_size > 0) {
        char *big = malloc(f.cert_size);
        memset(big, 'A', f.cert_size);
        free(cert);
        cert = hp_write_file(DIR_, "cert.pem", big, f.cert_size);
        free(big);
    } else if (f.cert == NULL) {
        unlink(cert);
    } else {
        free(cert);
        cert = hp_write_text(DIR_, "cert.pem", f.cert);
    }
    if (f.inter != NULL) {
        inter = hp_write_text(DIR_, "inter.pem", f.inter);
        if (f.inter_missing)
            unlink(inter);
    }
    key = hp_write_text(DIR_, "key.pem", f.key);
    anchor_err_clear(&err);
    rc = anchor_x509pop_credential_load(&cred, cert, inter, key, &err);
    if (r->want == NULL) {
        if (rc != 0)
            fail_msg("%s: want success, got \"%s\"", r->name, anchor_err_msg(&err));
        server_round(cred, r->m == F_OK_PKCS1_RSA || r->m == F_OK_PKCS8_RSA ? R.root : P.root);
    } else {
        size_t wl;
        int prefix;
        want = expand(r->want, cert, inter ? inter : "", key);
        wl = strlen(want);
        prefix = want[wl - 1] == '*';
        if (rc == 0)
            fail_msg("%s: want \"%s\", got success", r->name, want);
        assert_null(cred);
        if (prefix ? strncmp(anchor_err_msg(&err), want, wl - 1) != 0
                   : strcmp(anchor_err_msg(&err), want) != 0)
            fail_msg("%s: want \"%s\", got \"%s\"", r->name, want, anchor_err_msg(&err));
    }
    anchor_x509pop_credential_free(cred);
    if (f.cert_is_dir)
        rmdir(cert);
    else
        unlink(cert);
    if (inter != NULL)
        unlink(inter);
    unlink(key);
    free(cert);
    free(inter);
    free(key);
    free(want);
    free(f.cert);
    free(f.inter);
    free(f.key);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++)
        run_row(&ROWS[i]);
}

static void test_evidence_from_files(void **state)
{
    char *one = certs2(P.leaf, NULL), *two = certs2(P.leaf, P.inter), *in = certs2(P.inter, NULL);
    char *p1 = hp_write_text(DIR_, "one.pem", one);
    char *p2 = hp_write_text(DIR_, "two.pem", two);
    char *pi = hp_write_text(DIR_, "in.pem", in);
    X509 *chain[] = {P.leaf, P.inter};
    size_t want_len, len;
    uint8_t *want = hp_der_chain(chain, 2, &want_len), *got = NULL;
    struct anchor_err err;

    (void)state;
    assert_int_equal(anchor_x509pop_evidence_from_files(&got, &len, p1, pi, &err), 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, len);
    free(got);
    assert_int_equal(anchor_x509pop_evidence_from_files(&got, &len, p2, NULL, &err), 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, len);
    free(got);
    /* The same strictness as the credential: a key where certificates go. */
    {
        char *k = hp_pem_key(P.leaf_key, HP_PKCS8);
        char *pk = hp_write_text(DIR_, "k.pem", k);
        char want_msg[4200];
        assert_int_equal(anchor_x509pop_evidence_from_files(&got, &len, p1, pk, &err), -1);
        snprintf(want_msg, sizeof(want_msg),
                 "%s: PEM block 1 is \"PRIVATE KEY\", expected CERTIFICATE", pk);
        assert_string_equal(anchor_err_msg(&err), want_msg);
        unlink(pk);
        free(pk);
        free(k);
    }
    unlink(p1);
    unlink(p2);
    unlink(pi);
    free(p1);
    free(p2);
    free(pi);
    free(one);
    free(two);
    free(in);
    free(want);
}

struct pem_row {
    const char *name;
    const char *text;
    size_t nblocks; /* on success */
    const char *want;
};

static void test_pem(void **state)
{
    static const struct pem_row rows[] = {
        {"one byte", "-----BEGIN X-----\nQQ==\n-----END X-----\n", 1, NULL},
        {"two bytes", "-----BEGIN X-----\nQUI=\n-----END X-----\n", 1, NULL},
        {"no final newline", "-----BEGIN X-----\nQUJD\n-----END X-----", 1, NULL},
        {"text around", "hello\n-----BEGIN X-----\nQUJD\n-----END X-----\nbye\n", 1, NULL},
        {"two blocks",
         "-----BEGIN A-----\nQQ==\n-----END A-----\n-----BEGIN B B-----\nQQ==\n"
         "-----END B B-----\n",
         2, NULL},
        {"headers", "-----BEGIN X-----\nComment: hi\n\nQUJD\n-----END X-----\n", 1, NULL},
        {"nothing", "", 0, NULL},
        {"only text", "hello\nworld\n", 0, NULL},
        {"non-zero pad bits", "-----BEGIN X-----\nQR==\n-----END X-----\n", 0,
         "t: PEM block 1 (X) has invalid base64"},
        {"short quantum", "-----BEGIN X-----\nQQ=\n-----END X-----\n", 0,
         "t: PEM block 1 (X) has invalid base64"},
        {"three pads", "-----BEGIN X-----\nQ===\n-----END X-----\n", 0,
         "t: PEM block 1 (X) has invalid base64"},
        {"pad in the middle", "-----BEGIN X-----\nQQ==QUJD\n-----END X-----\n", 0,
         "t: PEM block 1 (X) has invalid base64"},
        {"space inside", "-----BEGIN X-----\nQU JD\n-----END X-----\n", 0,
         "t: PEM block 1 (X) has invalid base64"},
        {"empty body", "-----BEGIN X-----\n-----END X-----\n", 0, "t: PEM block 1 (X) is empty"},
        {"empty label", "-----BEGIN -----\nQQ==\n-----END -----\n", 0,
         "t: PEM block 1 has a malformed BEGIN line"},
        {"label with dash", "-----BEGIN A-B-----\nQQ==\n-----END A-B-----\n", 0,
         "t: PEM block 1 has a malformed BEGIN line"},
        {"END without BEGIN", "-----END X-----\n", 0, "t: PEM END line without BEGIN"},
        {"nested BEGIN", "-----BEGIN X-----\nQQ==\n-----BEGIN X-----\n", 0,
         "t: PEM block 1 (X) has no END line"},
        {"no END", "-----BEGIN X-----\nQQ==\n", 0, "t: PEM block 1 (X) has no END line"},
        {"other END", "-----BEGIN X-----\nQQ==\n-----END Y-----\n", 0,
         "t: PEM block 1 (X) has a mismatched END line"},
    };
    struct anchor_err err;

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct anchor__pem_blocks b = {NULL, 0};
        int rc = anchor__pem_parse(&b, rows[i].text, strlen(rows[i].text), "t", &err);
        if (rows[i].want == NULL) {
            if (rc != 0)
                fail_msg("%s: %s", rows[i].name, anchor_err_msg(&err));
            assert_int_equal(b.n, rows[i].nblocks);
        } else {
            if (rc == 0)
                fail_msg("%s: want failure", rows[i].name);
            if (strcmp(anchor_err_msg(&err), rows[i].want) != 0)
                fail_msg("%s: want \"%s\", got \"%s\"", rows[i].name, rows[i].want,
                         anchor_err_msg(&err));
        }
        anchor__pem_blocks_cleanup(&b);
    }
    /* Bounded block count. */
    {
        char *s = NULL;
        struct anchor__pem_blocks b = {NULL, 0};
        for (int i = 0; i < 257; i++)
            s = cat(s, "-----BEGIN X-----\nQQ==\n-----END X-----\n");
        assert_int_equal(anchor__pem_parse(&b, s, strlen(s), "t", &err), -1);
        assert_string_equal(anchor_err_msg(&err), "t: more than 256 PEM blocks");
        free(s);
    }
}

static int setup(void **state)
{
    (void)state;
    hp_pki_init(&P, HP_EC_P256, 0);
    hp_pki_init(&R, HP_RSA, 2048);
    DIR_ = hp_tmpdir();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hp_pki_cleanup(&P);
    hp_pki_cleanup(&R);
    hp_tmpdir_remove(DIR_);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_evidence_from_files),
        cmocka_unit_test(test_pem),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
