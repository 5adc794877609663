/*
 * Challenge and proof: the wire form (parse/encode), the server's checks of
 * the agent nonce, and the signature scheme (RSA-PSS SHA-256 salt 32, ECDSA
 * DER) with its hostile twins: other salts, PKCS#1 v1.5, raw r||s, the
 * wrong nonce, the wrong channel binding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/x509pop.h"
#include "helper_pki.h"
#include "x509pop/internal.h"

static struct hp_pki P;

static const uint8_t SERVER_NONCE[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const uint8_t AGENT_NONCE[32] = {0xaa, 0xbb, 0xcc};
static const uint8_t EXPORTER[32] = {0xe0, 0xe1, 0xe2};

static void assert_msg(const struct anchor_err *err, const char *want)
{
    size_t wl = strlen(want);
    int prefix = want[wl - 1] == '*';
    if (prefix ? strncmp(anchor_err_msg(err), want, wl - 1) != 0
               : strcmp(anchor_err_msg(err), want) != 0)
        fail_msg("want \"%s\", got \"%s\"", want, anchor_err_msg(err));
}

/* Verified leaf for a key of the type, issued by P's intermediate. */
static struct anchor_x509pop_verified *verified_for(EVP_PKEY *key)
{
    struct hp_cert_opts o = {.cn = "node"};
    X509 *leaf = hp_cert(&o, key, P.inter, P.inter_key);
    X509 *anchor[] = {P.inter};
    char *pem = hp_pem_certs(anchor, 1);
    size_t len;
    uint8_t *der = hp_der(leaf, &len);
    struct anchor_x509pop_config *cfg = NULL;
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    struct anchor_err err;

    if (anchor_x509pop_config_new(&cfg, pem, strlen(pem), 4, 8192, &err) != 0 ||
        anchor_x509pop_evidence_parse(&ev, der, len, &err) != 0 ||
        anchor_x509pop_verify(&v, cfg, ev, NULL, time(NULL), &err) != 0)
        fail_msg("setup: %s", anchor_err_msg(&err));
    anchor_x509pop_evidence_free(ev);
    anchor_x509pop_config_free(cfg);
    free(pem);
    free(der);
    X509_free(leaf);
    return v;
}

/* Signs the x509pop message with explicit scheme parameters. pss_salt < 0:
 * PKCS#1 v1.5 for RSA. */
static uint8_t *sign_raw(EVP_PKEY *key, const uint8_t *server, const uint8_t *agent,
                         const uint8_t *exporter, int pss_salt, size_t *len)
{
    uint8_t msg[ANCHOR__X509POP_SIGNED_LEN];
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *sig;

    anchor__x509pop_signed_message(msg, server, agent, exporter);
    assert_int_equal(EVP_DigestSignInit(m, &pctx, EVP_sha256(), NULL, key), 1);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA && pss_salt >= 0) {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt) > 0);
    }
    assert_int_equal(EVP_DigestSign(m, NULL, len, msg, sizeof(msg)), 1);
    sig = malloc(*len);
    assert_int_equal(EVP_DigestSign(m, sig, len, msg, sizeof(msg)), 1);
    EVP_MD_CTX_free(m);
    return sig;
}

/* ECDSA DER -> raw r||s of the key's field size. */
static uint8_t *der_to_raw(const uint8_t *der, size_t len, size_t half, size_t *out_len)
{
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
    uint8_t *raw = calloc(1, 2 * half);
    assert_non_null(s);
    assert_true(BN_bn2binpad(ECDSA_SIG_get0_r(s), raw, (int)half) > 0);
    assert_true(BN_bn2binpad(ECDSA_SIG_get0_s(s), raw + half, (int)half) > 0);
    ECDSA_SIG_free(s);
    *out_len = 2 * half;
    return raw;
}

enum mutation {
    M_NONE,
    M_WRONG_SERVER_NONCE,
    M_WRONG_EXPORTER,
    M_FLIP_SIG,
    M_NONCE_MISSING,
    M_NONCE_SHORT,
    M_NONCE_LONG,
    M_NONCE_ECHO,
    M_EMPTY_SIG,
    M_PSS_SALT_0,
    M_PSS_SALT_20,
    M_PSS_SALT_64,
    M_PKCS1V15,
    M_RAW_RS,
};

struct prow {
    const char *name;
    enum hp_key_type type;
    int bits;
    enum mutation m;
    const char *want; /* NULL: success */
};

#define SIGFAIL "failed to verify signature"

static const struct prow ROWS[] = {
    {"ok P-256", HP_EC_P256, 0, M_NONE, NULL},
    {"ok P-384", HP_EC_P384, 0, M_NONE, NULL},
    {"ok P-521", HP_EC_P521, 0, M_NONE, NULL},
    {"ok RSA 2048", HP_RSA, 2048, M_NONE, NULL},
    {"ok RSA 3072", HP_RSA, 3072, M_NONE, NULL},
    {"P-256 other server nonce", HP_EC_P256, 0, M_WRONG_SERVER_NONCE, SIGFAIL},
    {"P-256 other exporter", HP_EC_P256, 0, M_WRONG_EXPORTER, SIGFAIL},
    {"P-256 flipped signature", HP_EC_P256, 0, M_FLIP_SIG, SIGFAIL},
    {"P-256 raw r||s", HP_EC_P256, 0, M_RAW_RS, SIGFAIL},
    {"P-384 raw r||s", HP_EC_P384, 0, M_RAW_RS, SIGFAIL},
    {"RSA other exporter", HP_RSA, 2048, M_WRONG_EXPORTER, SIGFAIL},
    {"RSA flipped signature", HP_RSA, 2048, M_FLIP_SIG, SIGFAIL},
    {"RSA salt 0", HP_RSA, 2048, M_PSS_SALT_0, SIGFAIL},
    {"RSA salt 20", HP_RSA, 2048, M_PSS_SALT_20, SIGFAIL},
    {"RSA salt 64", HP_RSA, 2048, M_PSS_SALT_64, SIGFAIL},
    {"RSA PKCS#1 v1.5", HP_RSA, 2048, M_PKCS1V15, SIGFAIL},
    {"agent nonce missing", HP_EC_P256, 0, M_NONCE_MISSING, SIGFAIL ": agent nonce is missing"},
    {"agent nonce 16 bytes", HP_EC_P256, 0, M_NONCE_SHORT,
     SIGFAIL ": agent nonce is 16 bytes, expected 32"},
    {"agent nonce 33 bytes", HP_EC_P256, 0, M_NONCE_LONG,
     SIGFAIL ": agent nonce is 33 bytes, expected 32"},
    {"agent nonce echoes the challenge", HP_EC_P256, 0, M_NONCE_ECHO,
     SIGFAIL ": agent nonce equals the server nonce"},
    {"empty signature", HP_EC_P256, 0, M_EMPTY_SIG, SIGFAIL ": empty signature"},
};

static void run_row(const struct prow *r)
{
    EVP_PKEY *key = hp_key(r->type, r->bits);
    struct anchor_x509pop_verified *v = verified_for(key);
    uint8_t agent[33];
    uint8_t server[32], exporter[32];
    size_t agent_len = 32;
    uint8_t *sig = NULL, *wire = NULL, *raw = NULL;
    size_t sig_len = 0, wire_len = 0;
    int salt = 32;
    struct anchor_x509pop_proof proof, parsed;
    struct anchor_err err;
    int rc;

    memcpy(agent, AGENT_NONCE, 32);
    agent[32] = 0;
    memcpy(server, SERVER_NONCE, 32);
    memcpy(exporter, EXPORTER, 32);
    if (r->m == M_NONCE_ECHO)
        memcpy(agent, SERVER_NONCE, 32);
    salt = r->m == M_PSS_SALT_0 ? 0 : r->m == M_PSS_SALT_20 ? 20 : r->m == M_PSS_SALT_64 ? 64 : 32;
    if (r->m == M_PKCS1V15)
        salt = -1;
    sig = sign_raw(key, server, agent, exporter, salt, &sig_len);
    if (r->m == M_RAW_RS) {
        size_t half = (size_t)(EVP_PKEY_get_bits(key) + 7) / 8;
        raw = der_to_raw(sig, sig_len, half, &sig_len);
        free(sig);
        sig = raw;
    }
    if (r->m == M_FLIP_SIG)
        sig[sig_len / 2] ^= 0x01;
    if (r->m == M_EMPTY_SIG)
        sig_len = 0;
    if (r->m == M_WRONG_SERVER_NONCE)
        server[0] ^= 0xff;
    if (r->m == M_WRONG_EXPORTER)
        exporter[31] ^= 0x80;
    if (r->m == M_NONCE_MISSING)
        agent_len = 0;
    if (r->m == M_NONCE_SHORT)
        agent_len = 16;
    if (r->m == M_NONCE_LONG)
        agent_len = 33;

    /* Through the wire form, as the server receives it. */
    proof.agent_nonce = agent;
    proof.agent_nonce_len = agent_len;
    proof.signature = sig;
    proof.signature_len = sig_len;
    assert_int_equal(anchor_x509pop_proof_encode(&wire, &wire_len, &proof, &err), 0);
    assert_int_equal(anchor_x509pop_proof_parse(&parsed, wire, wire_len, &err), 0);
    assert_int_equal(parsed.agent_nonce_len, agent_len);
    assert_int_equal(parsed.signature_len, sig_len);
    anchor_err_clear(&err);
    rc = anchor_x509pop_proof_verify(v, server, &parsed, exporter, &err);
    if (r->want == NULL) {
        if (rc != 0)
            fail_msg("%s: want success, got \"%s\"", r->name, anchor_err_msg(&err));
    } else {
        if (rc == 0)
            fail_msg("%s: want \"%s\", got success", r->name, r->want);
        if (strcmp(anchor_err_msg(&err), r->want) != 0)
            fail_msg("%s: want \"%s\", got \"%s\"", r->name, r->want, anchor_err_msg(&err));
    }
    free(wire);
    free(sig);
    anchor_x509pop_verified_free(v);
    EVP_PKEY_free(key);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++)
        run_row(&ROWS[i]);
}

struct wrow {
    const char *name;
    const uint8_t *buf;
    size_t len;
    const char *want;
};

static void test_wire(void **state)
{
    static const uint8_t empty_fields[] = {0, 0, 0, 0};
    static const uint8_t trunc1[] = {0};
    static const uint8_t trunc2[] = {0, 2, 1};
    static const uint8_t trunc3[] = {0, 1, 9, 0};
    static const uint8_t trunc4[] = {0, 1, 9, 0, 3, 1, 2};
    static const uint8_t trailing[] = {0, 1, 9, 0, 1, 7, 0};
    static uint8_t big[4 + 2049];
    const struct wrow rows[] = {
        {"empty fields frame", empty_fields, sizeof(empty_fields), NULL},
        {"empty input", NULL, 0, "invalid x509pop proof: truncated"},
        {"one byte", trunc1, sizeof(trunc1), "invalid x509pop proof: truncated"},
        {"short nonce field", trunc2, sizeof(trunc2), "invalid x509pop proof: truncated"},
        {"no signature length", trunc3, sizeof(trunc3), "invalid x509pop proof: truncated"},
        {"short signature", trunc4, sizeof(trunc4), "invalid x509pop proof: truncated"},
        {"trailing byte", trailing, sizeof(trailing), "invalid x509pop proof: 1 trailing bytes"},
        {"signature of 2049 bytes", big, sizeof(big),
         "invalid x509pop proof: signature longer than 2048 bytes"},
    };
    struct anchor_x509pop_proof p, q;
    struct anchor_err err;
    uint8_t *wire = NULL;
    size_t wire_len = 0;

    (void)state;
    big[2] = 2049 >> 8;
    big[3] = 2049 & 0xff;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int rc = anchor_x509pop_proof_parse(&p, rows[i].buf, rows[i].len, &err);
        if (rows[i].want == NULL) {
            if (rc != 0)
                fail_msg("%s: %s", rows[i].name, anchor_err_msg(&err));
        } else {
            if (rc == 0)
                fail_msg("%s: want failure", rows[i].name);
            assert_msg(&err, rows[i].want);
        }
    }
    /* Encoding refuses what parsing would. */
    p.agent_nonce = AGENT_NONCE;
    p.agent_nonce_len = 32;
    p.signature = big;
    p.signature_len = 2049;
    assert_int_equal(anchor_x509pop_proof_encode(&wire, &wire_len, &p, &err), -1);
    assert_msg(&err, "invalid x509pop proof: signature longer than 2048 bytes");
    p.signature_len = 2048;
    assert_int_equal(anchor_x509pop_proof_encode(&wire, &wire_len, &p, &err), 0);
    assert_int_equal(wire_len, 4 + 32 + 2048);
    assert_int_equal(anchor_x509pop_proof_parse(&q, wire, wire_len, &err), 0);
    assert_memory_equal(q.agent_nonce, AGENT_NONCE, 32);
    assert_int_equal(q.signature_len, 2048);
    free(wire);
}

static void test_nonce(void **state)
{
    uint8_t a[32], b[32];
    struct anchor_err err;

    (void)state;
    assert_int_equal(anchor_x509pop_nonce(a, &err), 0);
    assert_int_equal(anchor_x509pop_nonce(b, &err), 0);
    assert_memory_not_equal(a, b, 32);
}

/* The primitives the Wycheproof harness calls. */
static void test_primitives(void **state)
{
    EVP_PKEY *ed = hp_key(HP_ED25519, 0);
    EVP_PKEY *k1 = hp_key(HP_EC_SECP256K1, 0);
    EVP_PKEY *pk = NULL;
    unsigned char *spki = NULL;
    int n = i2d_PUBKEY(P.leaf_key, &spki);
    uint8_t *more = malloc((size_t)n + 1);
    static const uint8_t sig[8] = {0x30, 6, 2, 1, 1, 2, 1, 1};
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    struct anchor_err err;

    (void)state;
    assert_int_equal(anchor__pubkey_from_spki_der(&pk, spki, (size_t)n, &err), 0);
    assert_int_equal(EVP_PKEY_eq(pk, P.leaf_key), 1);
    EVP_PKEY_free(pk);
    pk = NULL;
    memcpy(more, spki, (size_t)n);
    more[n] = 0;
    assert_int_equal(anchor__pubkey_from_spki_der(&pk, more, (size_t)n + 1, &err), -1);
    assert_msg(&err, "SubjectPublicKeyInfo has 1 trailing bytes");
    assert_int_equal(anchor__pubkey_from_spki_der(&pk, junk, sizeof(junk), &err), -1);
    assert_msg(&err, "not a valid SubjectPublicKeyInfo*");
    assert_int_equal(anchor__x509pop_sig_verify(ed, junk, 1, sig, sizeof(sig), &err), -1);
    assert_msg(&err, "failed to verify signature: unsupported key type ED25519");
    assert_int_equal(anchor__x509pop_sig_verify(k1, junk, 1, sig, sizeof(sig), &err), -1);
    assert_msg(&err, "failed to verify signature: unsupported key type EC secp256k1");
    assert_int_equal(anchor__x509pop_sig_verify(P.leaf_key, junk, 1, sig, 2049, &err), -1);
    assert_msg(&err, "failed to verify signature: signature too long");
    OPENSSL_free(spki);
    free(more);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(k1);
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
        cmocka_unit_test(test_wire),
        cmocka_unit_test(test_nonce),
        cmocka_unit_test(test_primitives),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
