/*
 * The URI SAN rule: x509pop://<trust domain>/<type>/<value> and nothing
 * else. One row per URI with the trust domain, and the type and value
 * expected (NULL: the SAN is ignored).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "x509pop/internal.h"

struct row {
    const char *uri;
    const char *td;
    const char *type; /* NULL: ignored */
    const char *value;
};

static const struct row ROWS[] = {
    /* Matches. */
    {"x509pop://example.org/environment/production", "example.org", "environment", "production"},
    {"x509pop://example.org/path/a/b/c", "example.org", "path", "a/b/c"},
    {"x509pop://example.org/t/v", "example.org", "t", "v"},
    {"x509pop://example.org/Team_1.x-y/Blue", "example.org", "Team_1.x-y", "Blue"},
    {"x509pop://example.org/t/a:b@c!$&'()*+,;=~", "example.org", "t", "a:b@c!$&'()*+,;=~"},
    {"x509pop://td/t/...", "td", "t", "..."},
    {"x509pop://my-td_1.example/t/v", "my-td_1.example", "t", "v"},
    /* Other trust domains, prefixes and suffixes of the name. */
    {"x509pop://other.org/environment/production", "example.org", NULL, NULL},
    {"x509pop://example.community/environment/production", "example.com", NULL, NULL},
    {"x509pop://example.com.evil/t/v", "example.com", NULL, NULL},
    {"x509pop://sub.example.com/t/v", "example.com", NULL, NULL},
    {"x509pop://example.co/t/v", "example.com", NULL, NULL},
    {"x509pop://EXAMPLE.ORG/t/v", "example.org", NULL, NULL},
    {"x509pop://Example.org/t/v", "Example.org", NULL, NULL},
    /* Scheme. */
    {"X509POP://example.org/t/v", "example.org", NULL, NULL},
    {"spiffe://example.org/t/v", "example.org", NULL, NULL},
    {"x509pop:/example.org/t/v", "example.org", NULL, NULL},
    {"x509pop:example.org/t/v", "example.org", NULL, NULL},
    {"https://example.org/t/v", "example.org", NULL, NULL},
    /* Authority forms. */
    {"x509pop://user@example.org/t/v", "example.org", NULL, NULL},
    {"x509pop://example.org:443/t/v", "example.org", NULL, NULL},
    {"x509pop://example.org", "example.org", NULL, NULL},
    {"x509pop://example.org/", "example.org", NULL, NULL},
    {"x509pop:///t/v", "example.org", NULL, NULL},
    /* Shape of the path. */
    {"x509pop://example.org/t", "example.org", NULL, NULL},
    {"x509pop://example.org/t/", "example.org", NULL, NULL},
    {"x509pop://example.org//v", "example.org", NULL, NULL},
    {"x509pop://example.org/t//v", "example.org", NULL, NULL},
    {"x509pop://example.org/t/v/", "example.org", NULL, NULL},
    {"x509pop://example.org/t/a//b", "example.org", NULL, NULL},
    {"x509pop://example.org/./v", "example.org", NULL, NULL},
    {"x509pop://example.org/../v", "example.org", NULL, NULL},
    {"x509pop://example.org/t/.", "example.org", NULL, NULL},
    {"x509pop://example.org/t/a/../b", "example.org", NULL, NULL},
    /* Query, fragment, percent-encoding, odd characters. */
    {"x509pop://example.org/t/v?x=1", "example.org", NULL, NULL},
    {"x509pop://example.org/t/v#frag", "example.org", NULL, NULL},
    {"x509pop://example.org/t/v%2Fw", "example.org", NULL, NULL},
    {"x509pop://example.org/t%41/v", "example.org", NULL, NULL},
    {"x509pop://example.org/t/v w", "example.org", NULL, NULL},
    {"x509pop://example.org/t/v\"w", "example.org", NULL, NULL},
    {"x509pop://example.org/t/v\\w", "example.org", NULL, NULL},
    {"x509pop://example.org/t/\xc3\xa9", "example.org", NULL, NULL},
    {"x509pop://example.org/t:x/v", "example.org", NULL, NULL},
    {"x509pop://example.org/t~/v", "example.org", NULL, NULL},
    /* Trust domain argument itself. */
    {"x509pop://example.org/t/v", "", NULL, NULL},
    {"x509pop://example.org/t/v", NULL, NULL, NULL},
    {"x509pop://exa/mple.org/t/v", "exa/mple.org", NULL, NULL},
    {"", "example.org", NULL, NULL},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++) {
        const struct row *r = &ROWS[i];
        const char *t = NULL, *v = NULL;
        size_t tl = 0, vl = 0;
        int m = anchor__x509pop_uri_san_match(r->uri, strlen(r->uri), r->td, &t, &tl, &v, &vl);
        if (r->type == NULL) {
            if (m != 0)
                fail_msg("%s: want ignored, got type \"%.*s\"", r->uri, (int)tl, t);
            continue;
        }
        if (m != 1)
            fail_msg("%s: want a match", r->uri);
        if (tl != strlen(r->type) || memcmp(t, r->type, tl) != 0 || vl != strlen(r->value) ||
            memcmp(v, r->value, vl) != 0)
            fail_msg("%s: want %s=%s, got %.*s=%.*s", r->uri, r->type, r->value, (int)tl, t,
                     (int)vl, v);
    }
}

/* An embedded NUL ends nothing: the whole SAN is ignored. */
static void test_nul_and_length(void **state)
{
    static const char nul[] = "x509pop://example.org/t/v\0w";
    static char longer[ANCHOR__X509POP_MAX_URI_LEN + 2];
    const char *t, *v;
    size_t tl, vl;
    size_t n;

    (void)state;
    assert_int_equal(
        anchor__x509pop_uri_san_match(nul, sizeof(nul) - 1, "example.org", &t, &tl, &v, &vl), 0);
    n = (size_t)snprintf(longer, sizeof(longer), "x509pop://example.org/t/");
    memset(longer + n, 'a', sizeof(longer) - 1 - n);
    assert_int_equal(anchor__x509pop_uri_san_match(longer, ANCHOR__X509POP_MAX_URI_LEN,
                                                   "example.org", &t, &tl, &v, &vl),
                     1);
    assert_int_equal(anchor__x509pop_uri_san_match(longer, ANCHOR__X509POP_MAX_URI_LEN + 1,
                                                   "example.org", &t, &tl, &v, &vl),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_nul_and_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
