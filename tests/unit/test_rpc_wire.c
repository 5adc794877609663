/*
 * The gRPC wire pieces of the rpc module, table-driven: message framing
 * (fed whole and byte by byte, hostile prefixes beside good ones),
 * grpc-timeout parsing and encoding, grpc-message percent-encoding, the
 * status mappings, and "-bin" metadata.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "anchor/rpc.h"
#include "rpc/internal.h"

/* Feeds in[0..n) in chunks of `step` bytes; returns the messages seen (their
 * bytes concatenated into out) or the first error. */
static int feed(size_t max, const uint8_t *in, size_t n, size_t step, char *out, int *msgs)
{
    struct anchor__rpc_reader r;
    size_t pos = 0;
    int rc = 0;

    anchor__rpc_reader_init(&r, max);
    *msgs = 0;
    out[0] = '\0';
    while (pos < n) {
        size_t chunk = n - pos < step ? n - pos : step;
        const uint8_t *p = in + pos;
        pos += chunk;
        while (chunk > 0) {
            const uint8_t *m;
            size_t mlen, used;
            int e = anchor__rpc_reader_feed(&r, p, chunk, &used, &m, &mlen);
            p += used;
            chunk -= used;
            if (e < 0) {
                rc = e;
                goto done;
            }
            if (e == ANCHOR__RPC_READ_MSG) {
                strncat(out, (const char *)m, mlen);
                strcat(out, "|");
                (*msgs)++;
            }
        }
    }
    if (!anchor__rpc_reader_idle(&r))
        rc = 99; /* ended inside a message */
done:
    anchor__rpc_reader_cleanup(&r);
    return rc;
}

static void test_reader(void **state)
{
    static const struct {
        const char *name;
        const uint8_t in[32];
        size_t n;
        size_t max;
        int rc;
        int msgs;
        const char *out;
    } rows[] = {
        {"one", {0, 0, 0, 0, 2, 'h', 'i'}, 7, 100, 0, 1, "hi|"},
        {"two", {0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 2, 'b', 'c'}, 13, 100, 0, 2, "a|bc|"},
        {"empty", {0, 0, 0, 0, 0}, 5, 100, 0, 1, "|"},
        {"at max", {0, 0, 0, 0, 3, 'a', 'b', 'c'}, 8, 3, 0, 1, "abc|"},
        {"over max", {0, 0, 0, 0, 4, 'a', 'b', 'c', 'd'}, 9, 3, ANCHOR__RPC_READ_TOO_LARGE, 0, ""},
        {"4 GiB", {0, 0xff, 0xff, 0xff, 0xff}, 5, 4u << 20, ANCHOR__RPC_READ_TOO_LARGE, 0, ""},
        {"compressed", {1, 0, 0, 0, 1, 'a'}, 6, 100, ANCHOR__RPC_READ_COMPRESSED, 0, ""},
        {"flag 0x80", {0x80, 0, 0, 0, 1, 'a'}, 6, 100, ANCHOR__RPC_READ_BAD_FLAG, 0, ""},
        {"short body", {0, 0, 0, 0, 5, 'a'}, 6, 100, 99, 0, ""},
        {"short prefix", {0, 0, 0}, 3, 100, 99, 0, ""},
        {"nothing", {0}, 0, 100, 0, 0, ""},
    };
    char out[128];
    int msgs;

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        for (size_t step = 1; step <= 32; step *= 2) {
            int rc = feed(rows[i].max, rows[i].in, rows[i].n, step, out, &msgs);
            if (rc != rows[i].rc || msgs != rows[i].msgs || strcmp(out, rows[i].out) != 0)
                fail_msg("%s (step %zu): rc %d msgs %d out \"%s\"", rows[i].name, step, rc, msgs,
                         out);
        }
    }
}

static void test_prefix(void **state)
{
    uint8_t p[5];

    (void)state;
    anchor__rpc_prefix(p, 0x01020304);
    assert_memory_equal(p, ((uint8_t[]){0, 1, 2, 3, 4}), 5);
}

static void test_timeout(void **state)
{
    static const struct {
        const char *in;
        int rc;
        uint64_t ms;
    } rows[] = {
        {"1H", 0, 3600000},
        {"2M", 0, 120000},
        {"30S", 0, 30000},
        {"250m", 0, 250},
        {"1500u", 0, 2},
        {"1u", 0, 1},
        {"1n", 0, 1},
        {"0n", 0, 0},
        {"99999999H", 0, 99999999ull * 3600000},
        {"12345678m", 0, 12345678},
        {"123456789m", -1, 0},
        {"", -1, 0},
        {"S", -1, 0},
        {"10", -1, 0},
        {"10s", -1, 0},
        {"1.5S", -1, 0},
        {"-1S", -1, 0},
        {" 1S", -1, 0},
        {"1S ", -1, 0},
    };
    uint64_t ms;

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        ms = 777;
        int rc = anchor__rpc_timeout_parse(rows[i].in, strlen(rows[i].in), &ms);
        if (rc != rows[i].rc || (rc == 0 && ms != rows[i].ms))
            fail_msg("\"%s\": rc %d ms %llu", rows[i].in, rc, (unsigned long long)ms);
    }
}

static void test_timeout_encode(void **state)
{
    static const uint64_t in[] = {
        1,         999,           1000,           99999999,       100000000,
        100000001, 5999999999ull, 99999999000ull, 99999999001ull, UINT64_MAX / 2};
    char buf[16];
    uint64_t back;

    (void)state;
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        anchor__rpc_timeout_encode(in[i], buf);
        assert_true(strlen(buf) <= 9);
        assert_int_equal(anchor__rpc_timeout_parse(buf, strlen(buf), &back), 0);
        /* Never earlier than asked, except at the 99999999H ceiling. */
        assert_true(back >= in[i] || back == 99999999ull * 3600000);
    }
    anchor__rpc_timeout_encode(1500, buf);
    assert_string_equal(buf, "1500m");
}

static void test_percent(void **state)
{
    static const struct {
        const char *raw;
        const char *wire;
    } rows[] = {
        {"plain text", "plain text"}, {"100%", "100%25"}, {"caf\xc3\xa9", "caf%C3%A9"},
        {"a\nb\tc", "a%0Ab%09c"},     {"\x7f~", "%7F~"},  {"", ""},
    };
    char *enc, *dec;

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enc = anchor__rpc_pct_encode(rows[i].raw);
        assert_string_equal(enc, rows[i].wire);
        dec = anchor__rpc_pct_decode(enc, strlen(enc));
        assert_string_equal(dec, rows[i].raw);
        free(enc);
        free(dec);
    }
    /* Malformed escapes are kept as they are (PROTOCOL-HTTP2). */
    dec = anchor__rpc_pct_decode("50%z %4 %%41%c3%a9%", 19);
    assert_string_equal(dec, "50%z %4 %A\xc3\xa9%");
    free(dec);
}

static void test_status(void **state)
{
    (void)state;
    assert_string_equal(anchor_rpc_status_name(ANCHOR_RPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
    assert_string_equal(anchor_rpc_status_name(16), "UNAUTHENTICATED");
    assert_string_equal(anchor_rpc_status_name(17), "UNKNOWN");
    assert_string_equal(anchor_rpc_status_name(-1), "UNKNOWN");
    assert_int_equal(anchor__rpc_status_from_http(404), ANCHOR_RPC_UNIMPLEMENTED);
    assert_int_equal(anchor__rpc_status_from_http(503), ANCHOR_RPC_UNAVAILABLE);
    assert_int_equal(anchor__rpc_status_from_http(401), ANCHOR_RPC_UNAUTHENTICATED);
    assert_int_equal(anchor__rpc_status_from_http(403), ANCHOR_RPC_PERMISSION_DENIED);
    assert_int_equal(anchor__rpc_status_from_http(400), ANCHOR_RPC_INTERNAL);
    assert_int_equal(anchor__rpc_status_from_http(418), ANCHOR_RPC_UNKNOWN);
    assert_int_equal(anchor__rpc_status_from_h2(NGHTTP2_REFUSED_STREAM), ANCHOR_RPC_UNAVAILABLE);
    assert_int_equal(anchor__rpc_status_from_h2(NGHTTP2_CANCEL), ANCHOR_RPC_CANCELLED);
    assert_int_equal(anchor__rpc_status_from_h2(NGHTTP2_ENHANCE_YOUR_CALM),
                     ANCHOR_RPC_RESOURCE_EXHAUSTED);
    assert_int_equal(anchor__rpc_status_from_h2(NGHTTP2_PROTOCOL_ERROR), ANCHOR_RPC_INTERNAL);
    assert_int_equal(anchor__rpc_status_parse("0", 1), 0);
    assert_int_equal(anchor__rpc_status_parse("16", 2), 16);
    assert_int_equal(anchor__rpc_status_parse("17", 2), ANCHOR_RPC_UNKNOWN);
    assert_int_equal(anchor__rpc_status_parse("999", 3), ANCHOR_RPC_UNKNOWN);
    assert_int_equal(anchor__rpc_status_parse("1000", 4), -1);
    assert_int_equal(anchor__rpc_status_parse("", 0), -1);
    assert_int_equal(anchor__rpc_status_parse("x", 1), -1);
}

static void test_metadata(void **state)
{
    struct anchor__rpc_mdlist l = {0};
    static const uint8_t raw[] = {0, 1, 2, 0xfe, 0xff};
    size_t wl;
    char *w;

    (void)state;
    /* "-bin" values round-trip through unpadded base64. */
    w = anchor__rpc_md_wire_value("x-raw-bin", (const char *)raw, sizeof(raw), &wl);
    assert_string_equal(w, "AAEC/v8");
    assert_int_equal(anchor__rpc_mdlist_add(&l, "x-raw-bin", 9, w, wl, 1), 0);
    assert_int_equal(l.items[0].value_len, sizeof(raw));
    assert_memory_equal(l.items[0].value, raw, sizeof(raw));
    free(w);
    assert_int_equal(anchor__rpc_mdlist_add(&l, "x-raw-bin", 9, "AAEC/v8=", 8, 1), 0);
    assert_memory_equal(l.items[1].value, raw, sizeof(raw));
    assert_int_equal(anchor__rpc_mdlist_add(&l, "x-raw-bin", 9, "A", 1, 1), -1);
    assert_int_equal(anchor__rpc_mdlist_add(&l, "x-raw-bin", 9, "AB*C", 4, 1), -1);
    /* Text values are kept as they are, "-bin" or not, when not from the
     * wire. */
    assert_int_equal(anchor__rpc_mdlist_add(&l, "workload.spiffe.io", 18, "true", 4, 1), 0);
    assert_string_equal(anchor_rpc_md_find(l.items, l.n, "workload.spiffe.io")->value, "true");
    assert_null(anchor_rpc_md_find(l.items, l.n, "nope"));
    anchor__rpc_mdlist_cleanup(&l);
    /* Names a caller may send. */
    assert_true(anchor__rpc_md_name_ok("workload.spiffe.io"));
    assert_true(anchor__rpc_md_name_ok("x-a_b-bin"));
    assert_false(anchor__rpc_md_name_ok("X-Upper"));
    assert_false(anchor__rpc_md_name_ok(":path"));
    assert_false(anchor__rpc_md_name_ok("grpc-status"));
    assert_false(anchor__rpc_md_name_ok("te"));
    assert_false(anchor__rpc_md_name_ok("connection"));
    assert_false(anchor__rpc_md_name_ok(""));
    assert_false(anchor__rpc_md_name_ok("a b"));
    /* Text values must be visible ASCII or space. */
    assert_null(anchor__rpc_md_wire_value("x-t", "a\nb", 3, &wl));
    w = anchor__rpc_md_wire_value("x-t", "a b~", 4, &wl);
    assert_string_equal(w, "a b~");
    free(w);
}

/* A large message arrives in pieces of every size: the buffer grows with
 * the bytes (never with the declared length alone) and the message comes
 * out whole. */
static void test_reader_growth(void **state)
{
    static const size_t sizes[] = {1, 7, 1000, 16384, 16385, 65536, 300000};
    size_t len = 300000;
    uint8_t *in = malloc(len + 5);

    (void)state;
    anchor__rpc_prefix(in, len);
    for (size_t i = 0; i < len; i++)
        in[5 + i] = (uint8_t)(i * 31 + 7);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        struct anchor__rpc_reader r;
        size_t pos = 0;
        int got = 0;

        anchor__rpc_reader_init(&r, len);
        while (pos < len + 5) {
            size_t n = len + 5 - pos < sizes[k] ? len + 5 - pos : sizes[k];
            const uint8_t *p = in + pos;
            pos += n;
            while (n > 0) {
                const uint8_t *m;
                size_t mlen, used;
                int e = anchor__rpc_reader_feed(&r, p, n, &used, &m, &mlen);
                assert_true(e >= 0);
                /* Never more than twice what arrived, plus the first chunk. */
                assert_true(anchor__rpc_reader_held(&r) <= 2 * (pos - 5) + 16384);
                p += used;
                n -= used;
                if (e == ANCHOR__RPC_READ_MSG) {
                    assert_int_equal(mlen, len);
                    assert_memory_equal(m, in + 5, len);
                    got++;
                }
            }
        }
        assert_int_equal(got, 1);
        assert_int_equal(anchor__rpc_reader_held(&r), 0);
        anchor__rpc_reader_cleanup(&r);
    }
    /* Declaring the maximum costs the first chunk, not the maximum. */
    {
        struct anchor__rpc_reader r;
        const uint8_t *m;
        size_t mlen, used;
        uint8_t big[5];

        anchor__rpc_prefix(big, 4u << 20);
        anchor__rpc_reader_init(&r, 4u << 20);
        assert_int_equal(anchor__rpc_reader_feed(&r, big, 5, &used, &m, &mlen),
                         ANCHOR__RPC_READ_MORE);
        assert_true(anchor__rpc_reader_held(&r) <= 16384);
        anchor__rpc_reader_cleanup(&r);
    }
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader),         cmocka_unit_test(test_reader_growth),
        cmocka_unit_test(test_prefix),         cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_timeout_encode), cmocka_unit_test(test_percent),
        cmocka_unit_test(test_status),         cmocka_unit_test(test_metadata),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
