/*
 * Templates: the compiler's syntax rules, plain rendering, and path
 * rendering with its per-value rules. Each accepted template or value sits
 * beside hostile twins that must fail with their exact message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "anchor/template.h"

#define CN     "x509_pop.subject.common_name"
#define SERIAL "x509_pop.serial_number"

struct compile_case {
    const char *text;
    const char *msg; /* NULL: compiles */
    size_t nnames;
    const char *first; /* first placeholder's name */
};

static const struct compile_case compile_cases[] = {
    {"", NULL, 0, NULL},
    {"/agents/static", NULL, 0, NULL},
    {"/agents/{{" CN "}}/{{" SERIAL "}}", NULL, 2, CN},
    {"{{a}}", NULL, 1, "a"},
    {"{{ a }}", NULL, 1, "a"},
    {"{{\ta\t}}x", NULL, 1, "a"},
    {"{{a}}{{b}}{{a}}", NULL, 3, "a"},
    {"x{y}z", NULL, 0, NULL},
    {"{{a}}}", NULL, 1, "a"},
    {"{{A-Z_0.9}}", NULL, 1, "A-Z_0.9"},
    /* hostile */
    {"/agents/{{" CN, "invalid template: unclosed \"{{\" at offset 8", 0, NULL},
    {"/a/{{b}", "invalid template: unclosed \"{{\" at offset 3", 0, NULL},
    {"{{", "invalid template: unclosed \"{{\" at offset 0", 0, NULL},
    {"/a/{{}}", "invalid template: empty attribute name at offset 3", 0, NULL},
    {"{{   }}", "invalid template: empty attribute name at offset 0", 0, NULL},
    {"/{{a{{b}}}}", "invalid template: nested \"{{\" at offset 4", 0, NULL},
    {"/{{ a {{b}} }}", "invalid template: nested \"{{\" at offset 6", 0, NULL},
    {"/a}}", "invalid template: \"}}\" without \"{{\" at offset 2", 0, NULL},
    {"{{a}}}}", "invalid template: \"}}\" without \"{{\" at offset 5", 0, NULL},
    {"/{{a b}}", "invalid template: invalid character ' ' in attribute name at offset 4", 0, NULL},
    {"/{{a/b}}", "invalid template: invalid character '/' in attribute name at offset 4", 0, NULL},
    {"/{{a\nb}}", "invalid template: invalid character '\\x0a' in attribute name at offset 4", 0,
     NULL},
    {"/{{{a}}}", "invalid template: invalid character '{' in attribute name at offset 3", 0, NULL},
    {"{{a}b}}", "invalid template: invalid character '}' in attribute name at offset 3", 0, NULL},
};

static void test_compile_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(compile_cases) / sizeof(compile_cases[0]); i++) {
        const struct compile_case *c = &compile_cases[i];
        struct anchor_template *t = NULL;
        struct anchor_err err;
        int rc;

        anchor_err_clear(&err);
        rc = anchor_template_compile(&t, c->text, strlen(c->text), &err);
        if (c->msg == NULL) {
            if (rc != 0)
                fail_msg("case %zu (%s): %s", i, c->text, anchor_err_msg(&err));
            assert_string_equal(anchor_template_text(t), c->text);
            assert_int_equal(anchor_template_placeholder_count(t), c->nnames);
            if (c->first != NULL)
                assert_string_equal(anchor_template_placeholder_name(t, 0), c->first);
            assert_null(anchor_template_placeholder_name(t, c->nnames));
            anchor_template_free(t);
        } else {
            if (rc == 0)
                fail_msg("case %zu (%s) was accepted", i, c->text);
            assert_null(t);
            if (strcmp(anchor_err_msg(&err), c->msg) != 0)
                fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i, c->text, anchor_err_msg(&err),
                         c->msg);
        }
    }
}

static void test_compile_limits(void **state)
{
    char big[ANCHOR_TEMPLATE_MAX_LEN + 1], name[ANCHOR_TEMPLATE_MAX_NAME + 6];
    struct anchor_template *t = NULL;
    struct anchor_err err;

    (void)state;
    memset(big, 'a', sizeof(big));
    assert_int_equal(anchor_template_compile(&t, big, ANCHOR_TEMPLATE_MAX_LEN, &err), 0);
    anchor_template_free(t);
    t = NULL;
    assert_int_equal(anchor_template_compile(&t, big, ANCHOR_TEMPLATE_MAX_LEN + 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid template: too long (4097 bytes, at most 4096)");
    /* a NUL inside the given bytes */
    assert_int_equal(anchor_template_compile(&t, "/a\0{{b}}", 8, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "invalid template: NUL byte at offset 2");
    /* attribute name of exactly the longest length, then one more */
    memcpy(name, "{{", 2);
    memset(name + 2, 'n', ANCHOR_TEMPLATE_MAX_NAME);
    memcpy(name + 2 + ANCHOR_TEMPLATE_MAX_NAME, "}}", 2);
    assert_int_equal(anchor_template_compile(&t, name, ANCHOR_TEMPLATE_MAX_NAME + 4, &err), 0);
    anchor_template_free(t);
    t = NULL;
    memset(name + 2, 'n', ANCHOR_TEMPLATE_MAX_NAME + 1);
    memcpy(name + 3 + ANCHOR_TEMPLATE_MAX_NAME, "}}", 2);
    assert_int_equal(anchor_template_compile(&t, name, ANCHOR_TEMPLATE_MAX_NAME + 5, &err), -1);
    assert_string_equal(
        anchor_err_msg(&err),
        "invalid template: attribute name too long at offset 2 (at most 128 bytes)");
    assert_null(t);
}

static void test_compile_path(void **state)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"/agents/{{" CN "}}/{{" SERIAL "}}", NULL},
        {"/{{a}}", NULL},
        {"/node-{{a}}.x", NULL},
        {"", "invalid template: not a SPIFFE ID path: path cannot be empty"},
        {"agents/{{a}}", "invalid template: not a SPIFFE ID path: path must start with \"/\""},
        {"/agents/{{a}}/",
         "invalid template: not a SPIFFE ID path: path cannot have a trailing slash"},
        {"/agents//{{a}}",
         "invalid template: not a SPIFFE ID path: path cannot contain empty segments"},
        {"/../{{a}}", "invalid template: not a SPIFFE ID path: path cannot contain dot segments"},
        {"/agents/{{a}} x",
         "invalid template: not a SPIFFE ID path: path segment characters are limited to "
         "letters, numbers, dots, dashes, and underscores"},
        {"/a/{{b", "invalid template: unclosed \"{{\" at offset 3"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct anchor_template *t = NULL;
        struct anchor_err err;
        int rc = anchor_template_compile_path(&t, cases[i].text, strlen(cases[i].text), &err);

        if (cases[i].msg == NULL) {
            if (rc != 0)
                fail_msg("case %zu: %s", i, anchor_err_msg(&err));
            anchor_template_free(t);
        } else {
            assert_int_equal(rc, -1);
            assert_null(t);
            if (strcmp(anchor_err_msg(&err), cases[i].msg) != 0)
                fail_msg("case %zu: got \"%s\", want \"%s\"", i, anchor_err_msg(&err),
                         cases[i].msg);
        }
    }
}

/* Attributes for rendering: pairs, NULL-terminated. */
static void attrs_fill(struct anchor_attrs *a, const char *const *kv)
{
    struct anchor_err err;

    anchor_attrs_init(a);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        assert_int_equal(anchor_attrs_set(a, kv[i], kv[i + 1], &err), 0);
}

static void test_render(void **state)
{
    static const char *const kv[] = {CN,   "my-host.example.com", SERIAL, "3a7f2c1b",
                                     "sp", "a b/\"c\"",           NULL};
    struct anchor_attrs attrs;
    struct anchor_template *t = NULL;
    struct anchor_err err;
    char *out = NULL;
    const char *text = "CN={{ " CN " }},serial={{" SERIAL "}},x={{sp}}";

    (void)state;
    attrs_fill(&attrs, kv);
    assert_int_equal(anchor_template_compile(&t, text, strlen(text), &err), 0);
    assert_int_equal(anchor_template_render(&out, t, &attrs, &err), 0);
    /* plain rendering copies values as they are */
    assert_string_equal(out, "CN=my-host.example.com,serial=3a7f2c1b,x=a b/\"c\"");
    free(out);
    out = NULL;
    anchor_template_free(t);
    t = NULL;

    /* hostile twin: a missing attribute is an error naming it */
    text = "CN={{" CN "}},{{x509_pop.san.host}}";
    assert_int_equal(anchor_template_compile(&t, text, strlen(text), &err), 0);
    assert_int_equal(anchor_template_render(&out, t, &attrs, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "attribute \"x509_pop.san.host\" is missing");
    assert_null(out);
    anchor_template_free(t);
    anchor_attrs_cleanup(&attrs);
}

struct path_case {
    const char *text;
    const char *value; /* of attribute "v" */
    const char *want;  /* rendered path, or NULL */
    const char *msg;   /* error, or NULL */
};

static const struct path_case path_cases[] = {
    {"/agents/{{v}}", "host-1.example.com", "/agents/host-1.example.com", NULL},
    {"/agents/{{v}}", "A_b-C.9", "/agents/A_b-C.9", NULL},
    {"/agents/{{v}}", "eu/west/host1", "/agents/eu/west/host1", NULL},
    {"/agents/node-{{v}}", ".", "/agents/node-.", NULL},
    {"/agents/v{{v}}", "..", "/agents/v..", NULL},
    {"{{v}}", "/a/b", "/a/b", NULL},
    {"/agents/{{v}}/x", "...", "/agents/.../x", NULL},
    /* hostile */
    {"/agents/{{v}}", "", NULL, "attribute \"v\" is empty and cannot be used in a SPIFFE ID path"},
    {"/agents/{{v}}", "my host", NULL,
     "attribute \"v\" value \"my host\" cannot be used in a SPIFFE ID path: character ' ' is "
     "not allowed"},
    {"/agents/{{v}}", "caf\xc3\xa9", NULL,
     "attribute \"v\" value \"caf\\xc3\\xa9\" cannot be used in a SPIFFE ID path: character "
     "'\\xc3' is not allowed"},
    {"/agents/{{v}}", "a\"b\\", NULL,
     "attribute \"v\" value \"a\\x22b\\x5c\" cannot be used in a SPIFFE ID path: character "
     "'\"' is not allowed"},
    {"/agents/{{v}}", "a%2Fb", NULL,
     "attribute \"v\" value \"a%2Fb\" cannot be used in a SPIFFE ID path: character '%' is not "
     "allowed"},
    {"/agents/{{v}}", "a?b", NULL,
     "attribute \"v\" value \"a?b\" cannot be used in a SPIFFE ID path: character '?' is not "
     "allowed"},
    {"/agents/{{v}}", ".", NULL,
     "attribute \"v\" value \".\" makes a \".\" or \"..\" SPIFFE ID path segment"},
    {"/agents/{{v}}", "..", NULL,
     "attribute \"v\" value \"..\" makes a \".\" or \"..\" SPIFFE ID path segment"},
    {"/agents/{{v}}", "a/../../b", NULL,
     "attribute \"v\" value \"a/../../b\" makes a \".\" or \"..\" SPIFFE ID path segment"},
    {"/agents/{{v}}", "a//b", NULL,
     "attribute \"v\" value \"a//b\" makes an empty SPIFFE ID path segment"},
    {"/agents/{{v}}", "a/", NULL,
     "attribute \"v\" value \"a/\" makes an empty SPIFFE ID path segment"},
    {"/agents/{{v}}", "/a", NULL,
     "attribute \"v\" value \"/a\" makes an empty SPIFFE ID path segment"},
    {"/agents/{{v}}/x", "/", NULL,
     "attribute \"v\" value \"/\" makes an empty SPIFFE ID path segment"},
    {"{{v}}", "a/b", NULL, "invalid SPIFFE ID path: path must start with \"/\""},
    {"{{v}}", "/", NULL, "attribute \"v\" value \"/\" makes an empty SPIFFE ID path segment"},
    /* a literal fault (template compiled without the path check) */
    {"/a b/{{v}}", "x", NULL,
     "invalid SPIFFE ID path: path segment characters are limited to letters, numbers, dots, "
     "dashes, and underscores"},
};

static void test_render_path_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
        const struct path_case *c = &path_cases[i];
        const char *const kv[] = {"v", c->value, NULL};
        struct anchor_attrs attrs;
        struct anchor_template *t = NULL;
        struct anchor_err err;
        char *out = NULL;
        int rc;

        attrs_fill(&attrs, kv);
        assert_int_equal(anchor_template_compile(&t, c->text, strlen(c->text), &err), 0);
        rc = anchor_template_render_path(&out, t, &attrs, &err);
        if (c->msg == NULL) {
            if (rc != 0)
                fail_msg("case %zu: %s", i, anchor_err_msg(&err));
            assert_string_equal(out, c->want);
        } else {
            if (rc == 0)
                fail_msg("case %zu was accepted: %s", i, out);
            assert_null(out);
            if (strcmp(anchor_err_msg(&err), c->msg) != 0)
                fail_msg("case %zu: got \"%s\", want \"%s\"", i, anchor_err_msg(&err), c->msg);
        }
        free(out);
        anchor_template_free(t);
        anchor_attrs_cleanup(&attrs);
    }
}

static void test_render_path_blame(void **state)
{
    /* The message names the attribute whose value broke the path, not the
     * first one of the template. */
    static const char *const kv[] = {"a", "ok", "b", "x/", "c", "y", NULL};
    const char *text = "/{{a}}/{{b}}/{{c}}";
    struct anchor_attrs attrs;
    struct anchor_template *t = NULL;
    struct anchor_err err;
    char *out = NULL;

    (void)state;
    attrs_fill(&attrs, kv);
    assert_int_equal(anchor_template_compile_path(&t, text, strlen(text), &err), 0);
    assert_int_equal(anchor_template_render_path(&out, t, &attrs, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "attribute \"b\" value \"x/\" makes an empty SPIFFE ID path segment");
    assert_int_equal(anchor_attrs_set(&attrs, "b", "x", &err), 0);
    assert_int_equal(anchor_template_render_path(&out, t, &attrs, &err), 0);
    assert_string_equal(out, "/ok/x/y");
    free(out);
    /* the missing attribute is named in path mode too */
    assert_int_equal(anchor_attrs_set(&attrs, "c", "..", &err), 0);
    assert_int_equal(anchor_template_render_path(&out, t, &attrs, &err), -1);
    assert_string_equal(
        anchor_err_msg(&err),
        "attribute \"c\" value \"..\" makes a \".\" or \"..\" SPIFFE ID path segment");
    anchor_template_free(t);
    anchor_attrs_cleanup(&attrs);

    attrs_fill(&attrs, (const char *const[]){"a", "ok", NULL});
    assert_int_equal(anchor_template_compile_path(&t, text, strlen(text), &err), 0);
    assert_int_equal(anchor_template_render_path(&out, t, &attrs, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "attribute \"b\" is missing");
    anchor_template_free(t);
    anchor_attrs_cleanup(&attrs);
}

static void test_value_repr_cut(void **state)
{
    /* a long hostile value is cut to 64 bytes in the message */
    char value[200];
    const char *text = "/{{v}}";
    struct anchor_attrs attrs;
    struct anchor_template *t = NULL;
    struct anchor_err err;
    char *out = NULL;
    char want[300];

    (void)state;
    memset(value, 'a', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    value[100] = '!';
    attrs_fill(&attrs, (const char *const[]){"v", value, NULL});
    assert_int_equal(anchor_template_compile(&t, text, strlen(text), &err), 0);
    assert_int_equal(anchor_template_render_path(&out, t, &attrs, &err), -1);
    snprintf(want, sizeof(want),
             "attribute \"v\" value \"%.64s...\" cannot be used in a SPIFFE ID path: character "
             "'!' is not allowed",
             value);
    assert_string_equal(anchor_err_msg(&err), want);
    anchor_template_free(t);
    anchor_attrs_cleanup(&attrs);
}

static void test_render_spiffeid(void **state)
{
    static const char *const kv[] = {CN, "my-host.example.com", SERIAL, "3a7f2c1b", NULL};
    const char *text = "/agents/{{" CN "}}/{{" SERIAL "}}";
    struct anchor_attrs attrs;
    struct anchor_template *t = NULL;
    struct anchor_spiffeid *id = NULL;
    struct anchor_err err;
    char long_value[ANCHOR_SPIFFEID_MAX_LEN];

    (void)state;
    attrs_fill(&attrs, kv);
    assert_int_equal(anchor_template_compile_path(&t, text, strlen(text), &err), 0);
    assert_int_equal(anchor_template_render_spiffeid(&id, t, "example.org", &attrs, &err), 0);
    assert_string_equal(anchor_spiffeid_str(id),
                        "spiffe://example.org/agents/my-host.example.com/3a7f2c1b");
    anchor_spiffeid_free(id);
    id = NULL;
    /* hostile twins: a bad trust domain, and a value that makes the ID too long */
    assert_int_equal(anchor_template_render_spiffeid(&id, t, "Example.org", &attrs, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid trust domain: trust domain characters are limited to lowercase "
                        "letters, numbers, dots, dashes, and underscores");
    memset(long_value, 'a', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    assert_int_equal(anchor_attrs_set(&attrs, SERIAL, long_value, &err), 0);
    assert_int_equal(anchor_template_render_spiffeid(&id, t, "example.org", &attrs, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "invalid SPIFFE ID: too long (2095 bytes, at most 2048)");
    assert_null(id);
    anchor_template_free(t);
    anchor_attrs_cleanup(&attrs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_table),     cmocka_unit_test(test_compile_limits),
        cmocka_unit_test(test_compile_path),      cmocka_unit_test(test_render),
        cmocka_unit_test(test_render_path_table), cmocka_unit_test(test_render_path_blame),
        cmocka_unit_test(test_value_repr_cut),    cmocka_unit_test(test_render_spiffeid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
