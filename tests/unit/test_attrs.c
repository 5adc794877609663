/*
 * Attribute lists: insertion order, unique names with replace-in-place, and
 * the log/CLI form x509pop:<name>="<value>" with '"' and '\' escaped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/attrs.h"

static void test_set_get_replace(void **state)
{
    struct anchor_attrs a;
    struct anchor_err err;
    char name[32];

    (void)state;
    anchor_attrs_init(&a);
    assert_null(anchor_attrs_get(&a, "x"));
    assert_int_equal(anchor_attrs_set(&a, "x509_pop.san.env", "staging", &err), 0);
    assert_int_equal(anchor_attrs_set(&a, "x509_pop.serial_number", "3a7f2c1b", &err), 0);
    assert_int_equal(anchor_attrs_set(&a, "x509_pop.san.env", "production", &err), 0);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.v[0].name, "x509_pop.san.env");
    assert_string_equal(a.v[0].value, "production");
    assert_string_equal(anchor_attrs_get(&a, "x509_pop.serial_number"), "3a7f2c1b");
    assert_null(anchor_attrs_get(&a, "x509_pop.san"));
    assert_int_equal(anchor_attrs_set(&a, "empty", "", &err), 0);
    assert_string_equal(anchor_attrs_get(&a, "empty"), "");
    /* Growth keeps order. */
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        assert_int_equal(anchor_attrs_set(&a, name, name, &err), 0);
    }
    assert_int_equal(a.n, 103);
    assert_string_equal(a.v[102].name, "n99");
    assert_string_equal(anchor_attrs_get(&a, "n50"), "n50");
    anchor_attrs_cleanup(&a);
    assert_int_equal(a.n, 0);
    assert_null(a.v);
    anchor_attrs_cleanup(&a);
    anchor_attrs_cleanup(NULL);
}

struct frow {
    const char *type, *name, *value, *want;
};

static void test_format(void **state)
{
    static const struct frow rows[] = {
        {"x509pop", "x509_pop.serial_number", "3a7f2c1b",
         "x509pop:x509_pop.serial_number=\"3a7f2c1b\""},
        {"x509pop", "x509_pop.subject.common_name", "my-host.example.com",
         "x509pop:x509_pop.subject.common_name=\"my-host.example.com\""},
        {"x509pop", "n", "", "x509pop:n=\"\""},
        {"x509pop", "n", "a\"b", "x509pop:n=\"a\\\"b\""},
        {"x509pop", "n", "a\\b", "x509pop:n=\"a\\\\b\""},
        {"x509pop", "n", "\"\\\"", "x509pop:n=\"\\\"\\\\\\\"\""},
        {"unix", "unix.uid", "0", "unix:unix.uid=\"0\""},
    };
    struct anchor_err err;

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct anchor_attr attr = {(char *)rows[i].name, (char *)rows[i].value};
        char *s = NULL;
        assert_int_equal(anchor_attr_format(&s, rows[i].type, &attr, &err), 0);
        assert_string_equal(s, rows[i].want);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_replace),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
