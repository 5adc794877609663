/*
 * SPIFFE IDs: every rule of the SPIFFE-ID standard, one row per case, each
 * accepted ID beside the hostile inputs that must be refused with their exact
 * message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "anchor/spiffeid.h"

struct id_case {
    const char *in;
    size_t len;      /* 0: strlen(in) */
    const char *msg; /* NULL: accepted */
    const char *td, *path;
};

#define ID_ERR(s) "invalid SPIFFE ID: " s
#define TD_CHARS                                                                                   \
    "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and "        \
    "underscores"
#define SEG_CHARS                                                                                  \
    "path segment characters are limited to letters, numbers, dots, dashes, and underscores"

static const struct id_case id_cases[] = {
    /* accepted */
    {"spiffe://example.org", 0, NULL, "example.org", ""},
    {"spiffe://example.org/agents/x509pop/ab12", 0, NULL, "example.org", "/agents/x509pop/ab12"},
    {"spiffe://a-b_c.9/A.b-C_d/...x/x..", 0, NULL, "a-b_c.9", "/A.b-C_d/...x/x.."},
    {"spiffe://td/.../a", 0, NULL, "td", "/.../a"},
    {"spiffe://td/.a/a.", 0, NULL, "td", "/.a/a."},
    {"spiffe://_.-/-", 0, NULL, "_.-", "/-"},
    /* scheme */
    {"", 0, ID_ERR("cannot be empty"), NULL, NULL},
    {"SPIFFE://example.org/a", 0, ID_ERR("scheme is missing or invalid"), NULL, NULL},
    {"Spiffe://example.org", 0, ID_ERR("scheme is missing or invalid"), NULL, NULL},
    {"https://example.org/a", 0, ID_ERR("scheme is missing or invalid"), NULL, NULL},
    {"spiffe:/example.org/a", 0, ID_ERR("scheme is missing or invalid"), NULL, NULL},
    {"spiffe:example.org", 0, ID_ERR("scheme is missing or invalid"), NULL, NULL},
    {"spiffe", 0, ID_ERR("scheme is missing or invalid"), NULL, NULL},
    {"example.org/a", 0, ID_ERR("scheme is missing or invalid"), NULL, NULL},
    {" spiffe://example.org", 0, ID_ERR("scheme is missing or invalid"), NULL, NULL},
    /* trust domain */
    {"spiffe://", 0, ID_ERR("trust domain is missing"), NULL, NULL},
    {"spiffe:///a", 0, ID_ERR("trust domain is missing"), NULL, NULL},
    {"spiffe://Example.org/a", 0, ID_ERR(TD_CHARS), NULL, NULL},
    {"spiffe://exa mple.org", 0, ID_ERR(TD_CHARS), NULL, NULL},
    {"spiffe://ex\xc3\xa9.org", 0, ID_ERR(TD_CHARS), NULL, NULL},
    {"spiffe://example.org:8080/a", 0, ID_ERR("trust domain cannot have a port"), NULL, NULL},
    {"spiffe://user@example.org/a", 0, ID_ERR("trust domain cannot have userinfo"), NULL, NULL},
    {"spiffe://user:pw@example.org", 0, ID_ERR("trust domain cannot have a port"), NULL, NULL},
    {"spiffe://example.org?x=1", 0, ID_ERR("query is not allowed"), NULL, NULL},
    {"spiffe://example.org#f", 0, ID_ERR("fragment is not allowed"), NULL, NULL},
    {"spiffe://ex%41mple.org", 0, ID_ERR("percent-encoding is not allowed"), NULL, NULL},
    {"spiffe://[::1]/a", 0, ID_ERR(TD_CHARS), NULL, NULL},
    /* path */
    {"spiffe://example.org/", 0, ID_ERR("path cannot have a trailing slash"), NULL, NULL},
    {"spiffe://example.org/a/", 0, ID_ERR("path cannot have a trailing slash"), NULL, NULL},
    {"spiffe://example.org//a", 0, ID_ERR("path cannot contain empty segments"), NULL, NULL},
    {"spiffe://example.org/a//b", 0, ID_ERR("path cannot contain empty segments"), NULL, NULL},
    {"spiffe://example.org/.", 0, ID_ERR("path cannot contain dot segments"), NULL, NULL},
    {"spiffe://example.org/..", 0, ID_ERR("path cannot contain dot segments"), NULL, NULL},
    {"spiffe://example.org/a/./b", 0, ID_ERR("path cannot contain dot segments"), NULL, NULL},
    {"spiffe://example.org/a/../b", 0, ID_ERR("path cannot contain dot segments"), NULL, NULL},
    {"spiffe://example.org/a/..", 0, ID_ERR("path cannot contain dot segments"), NULL, NULL},
    {"spiffe://example.org/a b", 0, ID_ERR(SEG_CHARS), NULL, NULL},
    {"spiffe://example.org/a:b", 0, ID_ERR(SEG_CHARS), NULL, NULL},
    {"spiffe://example.org/a~b", 0, ID_ERR(SEG_CHARS), NULL, NULL},
    {"spiffe://example.org/a\\b", 0, ID_ERR(SEG_CHARS), NULL, NULL},
    {"spiffe://example.org/caf\xc3\xa9", 0, ID_ERR(SEG_CHARS), NULL, NULL},
    {"spiffe://example.org/a?b", 0, ID_ERR("query is not allowed"), NULL, NULL},
    {"spiffe://example.org/a#b", 0, ID_ERR("fragment is not allowed"), NULL, NULL},
    {"spiffe://example.org/a%2Fb", 0, ID_ERR("percent-encoding is not allowed"), NULL, NULL},
    /* a NUL inside the bytes is refused, not taken as the end */
    {"spiffe://example.org/a\0b", 23, ID_ERR(SEG_CHARS), NULL, NULL},
    {"spiffe://exa\0mple.org", 21, ID_ERR(TD_CHARS), NULL, NULL},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(id_cases) / sizeof(id_cases[0]); i++) {
        const struct id_case *c = &id_cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        struct anchor_spiffeid *id = NULL;
        struct anchor_err err;
        int rc;

        anchor_err_clear(&err);
        rc = anchor_spiffeid_parse(&id, c->in, len, &err);
        if (c->msg == NULL) {
            if (rc != 0)
                fail_msg("case %zu (%s): %s", i, c->in, anchor_err_msg(&err));
            assert_string_equal(anchor_spiffeid_str(id), c->in);
            assert_int_equal(anchor_spiffeid_len(id), len);
            assert_string_equal(anchor_spiffeid_trust_domain(id), c->td);
            assert_string_equal(anchor_spiffeid_path(id), c->path);
            assert_true(anchor_spiffeid_member_of(id, c->td));
            assert_false(anchor_spiffeid_member_of(id, "other.org"));
            assert_int_equal(anchor_spiffeid_validate(c->in, len, &err), 0);
            anchor_spiffeid_free(id);
        } else {
            if (rc == 0)
                fail_msg("case %zu (%s) was accepted", i, c->in);
            assert_null(id);
            if (strcmp(anchor_err_msg(&err), c->msg) != 0)
                fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i, c->in, anchor_err_msg(&err),
                         c->msg);
            anchor_err_clear(&err);
            assert_int_equal(anchor_spiffeid_validate(c->in, len, &err), -1);
            assert_string_equal(anchor_err_msg(&err), c->msg);
        }
    }
}

static void test_length_limit(void **state)
{
    char buf[ANCHOR_SPIFFEID_MAX_LEN + 2];
    struct anchor_spiffeid *id = NULL;
    struct anchor_err err;

    (void)state;
    /* exactly 2048 bytes: spiffe://td/ then 'a's */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "spiffe://td/", 12);
    assert_int_equal(anchor_spiffeid_parse(&id, buf, ANCHOR_SPIFFEID_MAX_LEN, &err), 0);
    assert_int_equal(anchor_spiffeid_len(id), ANCHOR_SPIFFEID_MAX_LEN);
    anchor_spiffeid_free(id);
    id = NULL;
    /* hostile twin: one byte more */
    assert_int_equal(anchor_spiffeid_parse(&id, buf, ANCHOR_SPIFFEID_MAX_LEN + 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid SPIFFE ID: too long (2049 bytes, at most 2048)");
    assert_null(id);
}

static void test_trust_domain(void **state)
{
    char big[ANCHOR_TRUST_DOMAIN_MAX_LEN + 2];
    struct anchor_err err;
    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"example.org", NULL},
        {"a", NULL},
        {"x-y_z.0", NULL},
        {"", "invalid trust domain: cannot be empty"},
        {"Example.org", "invalid trust domain: " TD_CHARS},
        {"example.org/", "invalid trust domain: " TD_CHARS},
        {"example.org:443", "invalid trust domain: trust domain cannot have a port"},
        {"u@example.org", "invalid trust domain: trust domain cannot have userinfo"},
        {"spiffe://example.org", "invalid trust domain: expected a trust domain name, not a URI"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = anchor_trust_domain_validate(cases[i].in, strlen(cases[i].in), &err);

        if (cases[i].msg == NULL) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(anchor_err_msg(&err), cases[i].msg);
        }
    }
    memset(big, 'a', sizeof(big));
    assert_int_equal(anchor_trust_domain_validate(big, ANCHOR_TRUST_DOMAIN_MAX_LEN, &err), 0);
    assert_int_equal(anchor_trust_domain_validate(big, ANCHOR_TRUST_DOMAIN_MAX_LEN + 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid trust domain: trust domain is too long (256 bytes, at most 255)");
}

static void test_path_validate(void **state)
{
    struct anchor_err err;
    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"", NULL},
        {"/a", NULL},
        {"/a/b.c/D-E_F", NULL},
        {"a", "invalid SPIFFE ID path: path must start with \"/\""},
        {"/", "invalid SPIFFE ID path: path cannot have a trailing slash"},
        {"/a/", "invalid SPIFFE ID path: path cannot have a trailing slash"},
        {"//a", "invalid SPIFFE ID path: path cannot contain empty segments"},
        {"/./a", "invalid SPIFFE ID path: path cannot contain dot segments"},
        {"/a/..", "invalid SPIFFE ID path: path cannot contain dot segments"},
        {"/a b", "invalid SPIFFE ID path: " SEG_CHARS},
        {"/a?b", "invalid SPIFFE ID path: query is not allowed"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = anchor_spiffeid_path_validate(cases[i].in, strlen(cases[i].in), &err);

        if (cases[i].msg == NULL) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(anchor_err_msg(&err), cases[i].msg);
        }
    }
}

static void test_from_path(void **state)
{
    struct anchor_spiffeid *id = NULL, *copy;
    struct anchor_err err;
    char path[ANCHOR_SPIFFEID_MAX_LEN + 1];

    (void)state;
    assert_int_equal(anchor_spiffeid_from_path(&id, "example.org", "/server", &err), 0);
    assert_string_equal(anchor_spiffeid_str(id), "spiffe://example.org/server");
    assert_string_equal(anchor_spiffeid_trust_domain(id), "example.org");
    assert_string_equal(anchor_spiffeid_path(id), "/server");
    copy = anchor_spiffeid_dup(id);
    assert_non_null(copy);
    assert_true(anchor_spiffeid_equal(id, copy));
    anchor_spiffeid_free(copy);
    anchor_spiffeid_free(id);
    id = NULL;

    assert_int_equal(anchor_spiffeid_from_path(&id, "example.org", "", &err), 0);
    assert_string_equal(anchor_spiffeid_str(id), "spiffe://example.org");
    anchor_spiffeid_free(id);
    id = NULL;

    /* hostile twins */
    assert_int_equal(anchor_spiffeid_from_path(&id, "Example.org", "/a", &err), -1);
    assert_string_equal(anchor_err_msg(&err), "invalid trust domain: " TD_CHARS);
    assert_int_equal(anchor_spiffeid_from_path(&id, "example.org", "a", &err), -1);
    assert_string_equal(anchor_err_msg(&err), "invalid SPIFFE ID path: path must start with \"/\"");
    assert_int_equal(anchor_spiffeid_from_path(&id, "example.org", "/a/../b", &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid SPIFFE ID path: path cannot contain dot segments");
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(anchor_spiffeid_from_path(&id, "example.org", path, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid SPIFFE ID: too long (2068 bytes, at most 2048)");
    assert_null(id);
}

static void test_equal(void **state)
{
    struct anchor_spiffeid *a = NULL, *b = NULL, *c = NULL;
    struct anchor_err err;

    (void)state;
    assert_int_equal(anchor_spiffeid_parse(&a, "spiffe://td/a", 13, &err), 0);
    assert_int_equal(anchor_spiffeid_parse(&b, "spiffe://td/a", 13, &err), 0);
    assert_int_equal(anchor_spiffeid_parse(&c, "spiffe://td/A", 13, &err), 0);
    assert_true(anchor_spiffeid_equal(a, b));
    /* paths are case-sensitive */
    assert_false(anchor_spiffeid_equal(a, c));
    anchor_spiffeid_free(a);
    anchor_spiffeid_free(b);
    anchor_spiffeid_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),  cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_trust_domain), cmocka_unit_test(test_path_validate),
        cmocka_unit_test(test_from_path),    cmocka_unit_test(test_equal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
