/*
 * The evidence wire form: DER certificates concatenated, framed by their
 * SEQUENCE headers only. Rows are raw byte strings with the exact result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "anchor/x509pop.h"
#include "helper_pki.h"

struct row {
    const char *name;
    const uint8_t *buf;
    size_t len;
    size_t count;     /* on success */
    const char *want; /* NULL: success */
};

#define R(name, bytes, count, want)                                                                \
    {                                                                                              \
        name, bytes, sizeof(bytes), count, want                                                    \
    }

static const uint8_t one_short[] = {0x30, 0x00};
static const uint8_t two_short[] = {0x30, 0x01, 0x00, 0x30, 0x00};
static const uint8_t long_form_1[131] = {0x30, 0x81, 0x80};
static const uint8_t not_seq[] = {0x31, 0x00};
static const uint8_t truncated_hdr[] = {0x30};
static const uint8_t truncated_body[] = {0x30, 0x05, 0x00};
static const uint8_t trailing_junk[] = {0x30, 0x00, 0x00};
static const uint8_t indefinite[] = {0x30, 0x80, 0x00, 0x00};
static const uint8_t nonminimal_81[] = {0x30, 0x81, 0x05, 0, 0, 0, 0, 0};
static const uint8_t nonminimal_82[132] = {0x30, 0x82, 0x00, 0x80};
static const uint8_t four_len_bytes[] = {0x30, 0x84, 0x00, 0x00, 0x00, 0x01, 0x00};
static const uint8_t len_truncated[] = {0x30, 0x82, 0x01};
static const uint8_t too_big[] = {0x30, 0x83, 0x01, 0x00, 0x00};

static const struct row ROWS[] = {
    R("one empty sequence", one_short, 1, NULL),
    R("two sequences", two_short, 2, NULL),
    R("long form length", long_form_1, 1, NULL),
    {"empty", one_short, 0, 0, "invalid x509pop evidence: empty"},
    R("not a sequence", not_seq, 0,
      "invalid x509pop evidence: certificate 1 is not a DER SEQUENCE"),
    R("truncated header", truncated_hdr, 0, "invalid x509pop evidence: certificate 1 is truncated"),
    R("truncated body", truncated_body, 0, "invalid x509pop evidence: certificate 1 is truncated"),
    R("trailing byte", trailing_junk, 0, "invalid x509pop evidence: certificate 2 is truncated"),
    R("indefinite length", indefinite, 0,
      "invalid x509pop evidence: certificate 1 has an invalid DER length"),
    R("non-minimal 0x81", nonminimal_81, 0,
      "invalid x509pop evidence: certificate 1 has an invalid DER length"),
    R("non-minimal 0x82", nonminimal_82, 0,
      "invalid x509pop evidence: certificate 1 has an invalid DER length"),
    R("four length octets", four_len_bytes, 0,
      "invalid x509pop evidence: certificate 1 has an invalid DER length"),
    R("length octets cut", len_truncated, 0,
      "invalid x509pop evidence: certificate 1 is truncated"),
    R("over 64 KiB", too_big, 0,
      "invalid x509pop evidence: certificate 1 is larger than 65536 bytes"),
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++) {
        const struct row *r = &ROWS[i];
        struct anchor_x509pop_evidence *ev = NULL;
        struct anchor_err err;
        int rc = anchor_x509pop_evidence_parse(&ev, r->buf, r->len, &err);
        if (r->want == NULL) {
            if (rc != 0)
                fail_msg("%s: %s", r->name, anchor_err_msg(&err));
            assert_int_equal(anchor_x509pop_evidence_count(ev), r->count);
        } else {
            if (rc == 0)
                fail_msg("%s: want failure", r->name);
            assert_null(ev);
            if (strcmp(anchor_err_msg(&err), r->want) != 0)
                fail_msg("%s: want \"%s\", got \"%s\"", r->name, r->want, anchor_err_msg(&err));
        }
        anchor_x509pop_evidence_free(ev);
    }
}

static void test_real_chain_and_limits(void **state)
{
    struct hp_pki p;
    X509 *chain[3];
    uint8_t *der, *big;
    size_t len;
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_err err;

    (void)state;
    hp_pki_init(&p, HP_EC_P256, 0);
    chain[0] = p.leaf;
    chain[1] = p.inter;
    chain[2] = p.root;
    der = hp_der_chain(chain, 3, &len);
    assert_int_equal(anchor_x509pop_evidence_parse(&ev, der, len, &err), 0);
    assert_int_equal(anchor_x509pop_evidence_count(ev), 3);
    anchor_x509pop_evidence_free(ev);
    /* A certificate of exactly 64 KiB frames; the whole is limited to 1 MiB. */
    big = calloc(1, ANCHOR_X509POP_MAX_EVIDENCE_BYTES + 1);
    big[0] = 0x30;
    big[1] = 0x83;
    big[2] = 0x00;
    assert_int_equal(anchor_x509pop_evidence_parse(&ev, big, 65536, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid x509pop evidence: certificate 1 has an invalid DER length");
    big[1] = 0x82;
    big[2] = 0xff;
    big[3] = 0xfb; /* 4 + 65531 = 65535 */
    assert_int_equal(anchor_x509pop_evidence_parse(&ev, big, 65535, &err), 0);
    anchor_x509pop_evidence_free(ev);
    assert_int_equal(
        anchor_x509pop_evidence_parse(&ev, big, ANCHOR_X509POP_MAX_EVIDENCE_BYTES + 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid x509pop evidence: too large (1048577 > 1048576 bytes)");
    free(big);
    free(der);
    hp_pki_cleanup(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_real_chain_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
