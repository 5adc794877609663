/*
 * Project Wycheproof against the x509pop proof verifier.
 *
 * An agent proves possession of its key by signing the challenge; the server
 * checks that signature with anchor__x509pop_sig_verify(): RSASSA-PSS with
 * SHA-256, MGF1-SHA-256 and a salt of exactly 32 bytes, or ECDSA with SHA-256
 * and an ASN.1 DER signature. Wycheproof (C2SP/wycheproof) collects the edge
 * cases that broke real verifiers: modified DER encodings, out-of-range r and
 * s, truncated or padded PSS encodings, and so on. The files are read where
 * they live, $ANCHOR_SHARED_DIR/testdata/external/wycheproof/testvectors_v1/
 * (never copied into the repository); each test group gives a public key as
 * SubjectPublicKeyInfo DER, decoded with the engine's own
 * anchor__pubkey_from_spki_der(), and tests {tcId, msg, sig, result}.
 *
 * What is asserted (docs/conformance.md keeps the counts):
 *   - ecdsa_secp256r1_sha256 and rsa_pss_{2048,3072,4096}_sha256_mgf1_32:
 *     every "valid" test verifies (0), every "invalid" one is refused (-1);
 *   - rsa_pss_2048_sha256_mgf1_0: every "valid" (salt length 0) signature is
 *     refused although bare OpenSSL with salt length 0 accepts each one, so
 *     the salt length is what refuses them. One "invalid" vector of that file,
 *     tcId 69 "s_len changed to 32", is by construction a correct salt-32
 *     signature: the engine must accept it, and accept nothing else there
 *     (the wanted answer for each vector is bare OpenSSL's with salt 32);
 *   - rsa_pss_misc: one valid signature per (hash, MGF1 hash, salt length);
 *     only SHA-256 / MGF1-SHA-256 / salt 32 is accepted ("exactly 32", not
 *     "at least 32" nor "recovered from the signature");
 *   - ecdsa_secp256r1_sha256_p1363: r||s signatures are refused (we require
 *     DER), valid ones included.
 * Each file's test count is checked against its numberOfTests, so a vector
 * cannot be skipped silently, and every refusal must carry the documented
 * message, "failed to verify signature" (a detail may follow).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/common.h"
#include "x509pop/internal.h"

/* The documented failure phrase of a refused proof. */
#define SIG_FAILED "failed to verify signature"

/* How a file's tests must come out. */
enum mode {
    MODE_EXPECTED, /* valid -> accepted, invalid -> refused */
    MODE_SALT0,    /* salt-0 signatures refused; accepted only what is a salt-32 one
                    */
    MODE_MISC,     /* accepted exactly when SHA-256 / MGF1-SHA-256 / salt 32 */
    MODE_P1363,    /* everything refused: not DER */
};

struct tally {
    size_t run;
    size_t accepted;
    size_t refused;
    size_t wrong;          /* the verifier's answer differs from the wanted one */
    size_t valid;          /* tests whose Wycheproof result is "valid" */
    size_t baseline_ok;    /* MODE_SALT0: valid tests bare OpenSSL accepts with salt
                              0 */
    long long accepted_id; /* the tcId of the last accepted test */
};

/* Decodes a hex string into a new buffer (never NULL, even for ""). */
static uint8_t *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    uint8_t *buf;

    assert_true(n % 2 == 0);
    buf = malloc(n / 2 + 1);
    assert_non_null(buf);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned int v;

        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        buf[i] = (uint8_t)v;
    }
    *len = n / 2;
    return buf;
}

static const char *str_field(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    if (s == NULL)
        fail_msg("wycheproof: missing string field \"%s\"", key);
    return s;
}

static json_t *load_vectors(const char *file)
{
    const char *shared = getenv("ANCHOR_SHARED_DIR");
    char path[4096];
    json_error_t jerr;
    json_t *root;

    if (shared == NULL)
        fail_msg("ANCHOR_SHARED_DIR is not set (ctest sets it)");
    (void)snprintf(path, sizeof(path), "%s/testdata/external/wycheproof/testvectors_v1/%s", shared,
                   file);
    root = json_load_file(path, 0, &jerr);
    if (root == NULL)
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    return root;
}

/* Bare OpenSSL: RSASSA-PSS SHA-256 / MGF1-SHA-256 with the given salt length.
 * Used only to show that a vector the engine refuses is a genuine signature. */
static int openssl_pss_verify(EVP_PKEY *key, int salt, const uint8_t *msg, size_t msg_len,
                              const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    assert_non_null(md);
    if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) == 1)
        ok = EVP_DigestVerify(md, sig, sig_len, msg, msg_len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* Checks that a group holds the parameters the file name promises, so that a
 * vector is never run against the wrong expectation. */
static void check_group_params(const json_t *group, enum mode mode, long want_slen)
{
    const char *type = str_field(group, "type");

    if (mode == MODE_MISC)
        return; /* the grid: every combination is expected, see want_accept() */
    assert_string_equal(str_field(group, "sha"), "SHA-256");
    if (strcmp(type, "EcdsaVerify") == 0 || strcmp(type, "EcdsaP1363Verify") == 0) {
        assert_string_equal(str_field(json_object_get(group, "publicKey"), "curve"), "secp256r1");
        return;
    }
    assert_string_equal(type, "RsassaPssVerify");
    assert_string_equal(str_field(group, "mgf"), "MGF1");
    assert_string_equal(str_field(group, "mgfSha"), "SHA-256");
    assert_int_equal(json_integer_value(json_object_get(group, "sLen")), want_slen);
}

/* Whether the engine must accept this test. */
static int want_accept(enum mode mode, const json_t *group, const char *result)
{
    switch (mode) {
    case MODE_EXPECTED:
        if (strcmp(result, "acceptable") == 0)
            fail_msg("an \"acceptable\" vector: these files are not expected to have any");
        return strcmp(result, "valid") == 0;
    case MODE_MISC:
        return strcmp(result, "valid") == 0 && strcmp(str_field(group, "sha"), "SHA-256") == 0 &&
               strcmp(str_field(group, "mgfSha"), "SHA-256") == 0 &&
               json_integer_value(json_object_get(group, "sLen")) == 32;
    case MODE_SALT0: /* decided per vector by bare OpenSSL, see run_group() */
    case MODE_P1363:
        return 0;
    }
    return 0;
}

static void run_group(const json_t *group, enum mode mode, long want_slen, const char *file,
                      struct tally *t)
{
    size_t der_len;
    uint8_t *der = unhex(str_field(group, "publicKeyDer"), &der_len);
    EVP_PKEY *key = NULL;
    struct anchor_err err;
    size_t i;
    json_t *test;

    check_group_params(group, mode, want_slen);
    anchor_err_clear(&err);
    if (anchor__pubkey_from_spki_der(&key, der, der_len, &err) != 0)
        fail_msg("%s: public key refused: %s", file, anchor_err_msg(&err));
    json_array_foreach(json_object_get(group, "tests"), i, test)
    {
        size_t msg_len, sig_len;
        uint8_t *msg = unhex(str_field(test, "msg"), &msg_len);
        uint8_t *sig = unhex(str_field(test, "sig"), &sig_len);
        const char *result = str_field(test, "result");
        int want = want_accept(mode, group, result);
        int rc;

        if (mode == MODE_SALT0)
            want = openssl_pss_verify(key, 32, msg, msg_len, sig, sig_len);
        anchor_err_clear(&err);
        rc = anchor__x509pop_sig_verify(key, msg, msg_len, sig, sig_len, &err);
        assert_true(rc == 0 || rc == -1);
        t->run++;
        t->valid += strcmp(result, "valid") == 0;
        if (rc == 0) {
            t->accepted++;
            t->accepted_id = json_integer_value(json_object_get(test, "tcId"));
        } else {
            t->refused++;
            /* Every refusal carries the documented phrase (a detail may follow). */
            if (strncmp(anchor_err_msg(&err), SIG_FAILED, sizeof(SIG_FAILED) - 1) != 0) {
                t->wrong++;
                print_message("MESSAGE %s tcId %" JSON_INTEGER_FORMAT ": \"%s\"\n", file,
                              json_integer_value(json_object_get(test, "tcId")),
                              anchor_err_msg(&err));
            }
        }
        if ((rc == 0) != want) {
            t->wrong++;
            print_message(
                "MISMATCH %s tcId %" JSON_INTEGER_FORMAT " (%s, %s): want %s, got %s%s%s\n", file,
                json_integer_value(json_object_get(test, "tcId")), str_field(test, "comment"),
                result, want ? "accept" : "refuse", rc == 0 ? "accept" : "refuse",
                rc == 0 ? "" : ": ", rc == 0 ? "" : anchor_err_msg(&err));
        }
        if (mode == MODE_SALT0 && strcmp(result, "valid") == 0)
            t->baseline_ok += openssl_pss_verify(key, 0, msg, msg_len, sig, sig_len);
        free(msg);
        free(sig);
    }
    EVP_PKEY_free(key);
    free(der);
}

/* Runs every test of every group of `file`, checks none was skipped, and
 * prints the counts. */
static void run_file(const char *file, enum mode mode, long want_slen, struct tally *t)
{
    json_t *root = load_vectors(file);
    json_t *group;
    size_t i;

    memset(t, 0, sizeof(*t));
    json_array_foreach(json_object_get(root, "testGroups"), i, group)
    {
        run_group(group, mode, want_slen, file, t);
    }
    assert_int_equal(t->run, json_integer_value(json_object_get(root, "numberOfTests")));
    print_message("wycheproof %s: %zu run (%zu valid), %zu accepted, %zu refused, %zu wrong\n",
                  file, t->run, t->valid, t->accepted, t->refused, t->wrong);
    json_decref(root);
}

static void expect_file(const char *file, long want_slen)
{
    struct tally t;

    run_file(file, MODE_EXPECTED, want_slen, &t);
    assert_int_equal(t.wrong, 0);
    assert_int_equal(t.accepted, t.valid);
    assert_true(t.valid > 0 && t.refused > 0);
}

static void test_ecdsa_p256_der(void **state)
{
    (void)state;
    expect_file("ecdsa_secp256r1_sha256_test.json", 0);
}

static void test_rsa_pss_2048_salt32(void **state)
{
    (void)state;
    expect_file("rsa_pss_2048_sha256_mgf1_32_test.json", 32);
}

static void test_rsa_pss_3072_salt32(void **state)
{
    (void)state;
    expect_file("rsa_pss_3072_sha256_mgf1_32_test.json", 32);
}

static void test_rsa_pss_4096_salt32(void **state)
{
    (void)state;
    expect_file("rsa_pss_4096_sha256_mgf1_32_test.json", 32);
}

/* Salt length 0 is refused, and for the right reason: each of the file's
 * valid vectors is a good salt-0 signature that bare OpenSSL accepts, and
 * the one vector that is a good salt-32 signature (tcId 69) is accepted. */
static void test_rsa_pss_salt0_refused(void **state)
{
    struct tally t;

    (void)state;
    run_file("rsa_pss_2048_sha256_mgf1_0_test.json", MODE_SALT0, 0, &t);
    print_message("wycheproof salt 0: %zu of %zu valid (salt 0) vectors verify with bare "
                  "OpenSSL at salt length 0, the engine refuses all of them; it accepts "
                  "%zu vector(s), tcId %lld, a salt-32 signature\n",
                  t.baseline_ok, t.valid, t.accepted, t.accepted_id);
    assert_int_equal(t.wrong, 0);
    assert_true(t.valid > 0);
    assert_int_equal(t.baseline_ok, t.valid);
    /* Pinned: if the vectors change, look again at what is accepted. */
    assert_int_equal(t.accepted, 1);
    assert_int_equal(t.accepted_id, 69);
}

/* One valid signature per (hash, MGF1 hash, salt length): only the exact
 * parameters of the protocol pass. */
static void test_rsa_pss_misc_exact_params(void **state)
{
    struct tally t;

    (void)state;
    run_file("rsa_pss_misc_test.json", MODE_MISC, 0, &t);
    assert_int_equal(t.wrong, 0);
    assert_int_equal(t.accepted, 1);
}

/* IEEE P1363 (r||s) signatures are not DER: all refused, valid ones too. */
static void test_ecdsa_p1363_refused(void **state)
{
    struct tally t;

    (void)state;
    run_file("ecdsa_secp256r1_sha256_p1363_test.json", MODE_P1363, 0, &t);
    assert_int_equal(t.wrong, 0);
    assert_int_equal(t.accepted, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecdsa_p256_der),
        cmocka_unit_test(test_rsa_pss_2048_salt32),
        cmocka_unit_test(test_rsa_pss_3072_salt32),
        cmocka_unit_test(test_rsa_pss_4096_salt32),
        cmocka_unit_test(test_rsa_pss_salt0_refused),
        cmocka_unit_test(test_rsa_pss_misc_exact_params),
        cmocka_unit_test(test_ecdsa_p1363_refused),
    };

    return cmocka_run_group_tests_name("wycheproof", tests, NULL, NULL);
}
