/*
 * Tests of the metrics registry (anchor/metrics.h): the exact text
 * exposition (format 0.0.4) of counters, gauges and histograms with and
 * without labels, escaping of HELP texts and label values, number forms,
 * and the hostile twins: invalid names and labels, colliding names, bad
 * buckets, wrong label values, too many series, updates of the wrong kind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/metrics.h"

static struct anchor_metrics *registry(void)
{
    struct anchor_metrics *m = NULL;
    struct anchor_err err = {{0}};

    if (anchor_metrics_new(&m, &err) != 0)
        fail_msg("new: %s", anchor_err_msg(&err));
    return m;
}

static void assert_render(struct anchor_metrics *m, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    struct anchor_err err = {{0}};

    assert_int_equal(anchor_metrics_render(m, &out, &len, &err), 0);
    assert_int_equal(strlen(out), len);
    assert_string_equal(out, want);
    free(out);
}

static struct anchor_series *series(struct anchor_metric *f, const char *const *values, size_t n)
{
    struct anchor_series *s = NULL;
    struct anchor_err err = {{0}};

    if (anchor_metric_series(f, values, n, &s, &err) != 0)
        fail_msg("series: %s", anchor_err_msg(&err));
    return s;
}

/* --- exact exposition ------------------------------------------------------- */

static void test_counter_with_labels(void **state)
{
    struct anchor_metrics *m = registry();
    struct anchor_metric *f = NULL;
    struct anchor_err err = {{0}};
    static const char *const labels[] = {"attestor_type", "outcome"};
    static const char *const ok[] = {"x509pop", "success"};
    static const char *const bad[] = {"x509pop", "failed"};
    struct anchor_series *s_ok, *s_bad;

    (void)state;
    assert_int_equal(anchor_metrics_counter(m, "anchor_attestation_agent_proof_total",
                                            "Proofs checked, by attestor type and outcome.", labels,
                                            2, &f, &err),
                     0);
    /* No series yet: the family is announced, with no samples. */
    assert_render(m, "# HELP anchor_attestation_agent_proof_total Proofs checked, by attestor "
                     "type and outcome.\n"
                     "# TYPE anchor_attestation_agent_proof_total counter\n");
    s_ok = series(f, ok, 2);
    s_bad = series(f, bad, 2);
    anchor_series_inc(s_ok);
    anchor_series_inc(s_ok);
    anchor_series_inc(s_bad);
    /* The same values find the same series. */
    assert_ptr_equal(series(f, ok, 2), s_ok);
    anchor_series_add(s_ok, 0.5);
    anchor_series_add(s_ok, -3);  /* a counter never goes down */
    anchor_series_add(s_ok, NAN); /* nor becomes NaN */
    anchor_series_set(s_ok, 100); /* set is for gauges */
    anchor_series_observe(s_ok, 1);
    assert_true(anchor_series_value(s_ok) == 2.5);
    assert_render(m, "# HELP anchor_attestation_agent_proof_total Proofs checked, by attestor "
                     "type and outcome.\n"
                     "# TYPE anchor_attestation_agent_proof_total counter\n"
                     "anchor_attestation_agent_proof_total{attestor_type=\"x509pop\","
                     "outcome=\"success\"} 2.5\n"
                     "anchor_attestation_agent_proof_total{attestor_type=\"x509pop\","
                     "outcome=\"failed\"} 1\n");
    anchor_metrics_free(m);
}

static void test_gauge_and_counter_without_labels(void **state)
{
    struct anchor_metrics *m = registry();
    struct anchor_metric *g = NULL, *c = NULL;
    struct anchor_err err = {{0}};
    struct anchor_series *s;

    (void)state;
    assert_int_equal(anchor_metrics_gauge(m, "anchor_agents_connected",
                                          "Agents with a live session.", NULL, 0, &g, &err),
                     0);
    assert_int_equal(
        anchor_metrics_counter(m, "anchor_svids_issued_total", "SVIDs signed.", NULL, 0, &c, &err),
        0);
    /* A family without labels shows its one series as 0 from the start. */
    assert_render(m, "# HELP anchor_agents_connected Agents with a live session.\n"
                     "# TYPE anchor_agents_connected gauge\n"
                     "anchor_agents_connected 0\n"
                     "# HELP anchor_svids_issued_total SVIDs signed.\n"
                     "# TYPE anchor_svids_issued_total counter\n"
                     "anchor_svids_issued_total 0\n");
    s = series(g, NULL, 0);
    anchor_series_set(s, 5);
    anchor_series_inc(s);
    anchor_series_add(s, -3);
    anchor_series_observe(s, 9); /* observe is for histograms */
    anchor_series_inc(series(c, NULL, 0));
    assert_render(m, "# HELP anchor_agents_connected Agents with a live session.\n"
                     "# TYPE anchor_agents_connected gauge\n"
                     "anchor_agents_connected 3\n"
                     "# HELP anchor_svids_issued_total SVIDs signed.\n"
                     "# TYPE anchor_svids_issued_total counter\n"
                     "anchor_svids_issued_total 1\n");
    anchor_metrics_free(m);
}

static void test_histogram_with_labels(void **state)
{
    struct anchor_metrics *m = registry();
    struct anchor_metric *h = NULL;
    struct anchor_err err = {{0}};
    static const char *const labels[] = {"result"};
    static const char *const ok[] = {"success"};
    static const double buckets[] = {0.25, 0.5, 1};
    struct anchor_series *s;

    (void)state;
    assert_int_equal(anchor_metrics_histogram(m, "anchor_login_duration_seconds",
                                              "Time from Login start to SVID.", labels, 1, buckets,
                                              3, &h, &err),
                     0);
    s = series(h, ok, 1);
    anchor_series_observe(s, 0.125);
    anchor_series_observe(s, 0.5); /* on a bound: counted in that bucket */
    anchor_series_observe(s, 0.75);
    anchor_series_observe(s, 4);
    anchor_series_observe(s, NAN); /* ignored */
    anchor_series_inc(s);          /* ignored: not a counter */
    assert_true(anchor_series_value(s) == 4);
    assert_render(m, "# HELP anchor_login_duration_seconds Time from Login start to SVID.\n"
                     "# TYPE anchor_login_duration_seconds histogram\n"
                     "anchor_login_duration_seconds_bucket{result=\"success\",le=\"0.25\"} 1\n"
                     "anchor_login_duration_seconds_bucket{result=\"success\",le=\"0.5\"} 2\n"
                     "anchor_login_duration_seconds_bucket{result=\"success\",le=\"1\"} 3\n"
                     "anchor_login_duration_seconds_bucket{result=\"success\",le=\"+Inf\"} 4\n"
                     "anchor_login_duration_seconds_sum{result=\"success\"} 5.375\n"
                     "anchor_login_duration_seconds_count{result=\"success\"} 4\n");
    anchor_metrics_free(m);
}

static void test_histogram_default_buckets(void **state)
{
    struct anchor_metrics *m = registry();
    struct anchor_metric *h = NULL;
    struct anchor_err err = {{0}};
    static const double buckets[] = ANCHOR_METRICS_DEFAULT_BUCKETS;

    (void)state;
    assert_int_equal(anchor_metrics_histogram(m, "h_seconds", "Latency.", NULL, 0, buckets,
                                              sizeof(buckets) / sizeof(buckets[0]), &h, &err),
                     0);
    anchor_series_observe(series(h, NULL, 0), 0.3);
    assert_render(m, "# HELP h_seconds Latency.\n"
                     "# TYPE h_seconds histogram\n"
                     "h_seconds_bucket{le=\"0.005\"} 0\n"
                     "h_seconds_bucket{le=\"0.01\"} 0\n"
                     "h_seconds_bucket{le=\"0.025\"} 0\n"
                     "h_seconds_bucket{le=\"0.05\"} 0\n"
                     "h_seconds_bucket{le=\"0.1\"} 0\n"
                     "h_seconds_bucket{le=\"0.25\"} 0\n"
                     "h_seconds_bucket{le=\"0.5\"} 1\n"
                     "h_seconds_bucket{le=\"1\"} 1\n"
                     "h_seconds_bucket{le=\"2.5\"} 1\n"
                     "h_seconds_bucket{le=\"5\"} 1\n"
                     "h_seconds_bucket{le=\"10\"} 1\n"
                     "h_seconds_bucket{le=\"+Inf\"} 1\n"
                     "h_seconds_sum 0.3\n"
                     "h_seconds_count 1\n");
    anchor_metrics_free(m);
}

static void test_escaping(void **state)
{
    struct anchor_metrics *m = registry();
    struct anchor_metric *f = NULL;
    struct anchor_err err = {{0}};
    static const char *const labels[] = {"path"};
    static const char *const hostile[] = {"C:\\dir \"q\"\nx} y{=,"};
    static const char *const utf8[] = {"caf\xc3\xa9"};

    (void)state;
    assert_int_equal(
        anchor_metrics_gauge(m, "g", "Back\\slash and\nnewline \"quoted\".", labels, 1, &f, &err),
        0);
    anchor_series_set(series(f, hostile, 1), 1);
    anchor_series_set(series(f, utf8, 1), 2);
    assert_render(m, "# HELP g Back\\\\slash and\\nnewline \"quoted\".\n"
                     "# TYPE g gauge\n"
                     "g{path=\"C:\\\\dir \\\"q\\\"\\nx} y{=,\"} 1\n"
                     "g{path=\"caf\xc3\xa9\"} 2\n");
    anchor_metrics_free(m);
}

static void test_number_forms(void **state)
{
    static const struct {
        double v;
        const char *text;
    } rows[] = {
        {0, "0"},
        {1, "1"},
        {-2, "-2"},
        {0.1, "0.1"},
        {1.0 / 3.0, "0.33333333333333331"},
        {9007199254740992.0, "9007199254740992"},
        {1e21, "1e+21"},
        {1.5e-7, "1.5e-07"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    char want[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct anchor_metrics *m = registry();
        struct anchor_metric *g = NULL;
        struct anchor_err err = {{0}};

        assert_int_equal(anchor_metrics_gauge(m, "g", "h", NULL, 0, &g, &err), 0);
        anchor_series_set(series(g, NULL, 0), rows[i].v);
        (void)snprintf(want, sizeof(want), "# HELP g h\n# TYPE g gauge\ng %s\n", rows[i].text);
        assert_render(m, want);
        anchor_metrics_free(m);
    }
}

static void test_empty_registry(void **state)
{
    struct anchor_metrics *m = registry();

    (void)state;
    assert_render(m, "");
    anchor_metrics_free(m);
    anchor_metrics_free(NULL);
}

/* --- refused registrations -------------------------------------------------- */

enum kind { COUNTER, GAUGE, HISTOGRAM };

static void test_invalid_registrations_refused(void **state)
{
    static const char *const one[] = {"a"};
    static const char *const dunder[] = {"__name"};
    static const char *const dash[] = {"a-b"};
    static const char *const digit[] = {"1a"};
    static const char *const le[] = {"le"};
    static const char *const twice[] = {"a", "b", "a"};
    static const char *const nine[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    static const char *const null_label[] = {NULL};
    static const double b_ok[] = {1, 2};
    static const double b_down[] = {2, 1};
    static const double b_same[] = {1, 1};
    static const double b_nan[] = {NAN};
    static const double b_inf[] = {1, INFINITY};
    static const double b_many[ANCHOR_METRICS_MAX_BUCKETS + 1] = {0};
    static const struct {
        enum kind kind;
        const char *name, *help;
        const char *const *labels;
        size_t n_labels;
        const double *buckets;
        size_t n_buckets;
        const char *msg;
    } rows[] = {
        {GAUGE, "", "h", NULL, 0, NULL, 0, "invalid metric name "},
        {GAUGE, NULL, "h", NULL, 0, NULL, 0, "invalid metric name (null)"},
        {GAUGE, "1abc", "h", NULL, 0, NULL, 0, "invalid metric name 1abc"},
        {GAUGE, "a-b", "h", NULL, 0, NULL, 0, "invalid metric name a-b"},
        {GAUGE, "a b", "h", NULL, 0, NULL, 0, "invalid metric name a b"},
        {GAUGE, "caf\xc3\xa9", "h", NULL, 0, NULL, 0, "invalid metric name caf\xc3\xa9"},
        {GAUGE, "a\n# TYPE", "h", NULL, 0, NULL, 0, "invalid metric name a\n# TYPE"},
        {COUNTER, "anchor_logins", "h", NULL, 0, NULL, 0,
         "counter name anchor_logins does not end in _total"},
        {GAUGE, "g", NULL, NULL, 0, NULL, 0,
         "HELP text of metric g is missing or longer than 1024 bytes"},
        {GAUGE, "g", "bad \xff utf-8", NULL, 0, NULL, 0,
         "HELP text of metric g is not valid UTF-8"},
        {GAUGE, "g", "h", dunder, 1, NULL, 0, "invalid label name __name for metric g"},
        {GAUGE, "g", "h", dash, 1, NULL, 0, "invalid label name a-b for metric g"},
        {GAUGE, "g", "h", digit, 1, NULL, 0, "invalid label name 1a for metric g"},
        {GAUGE, "g", "h", null_label, 1, NULL, 0, "invalid label name (null) for metric g"},
        {GAUGE, "g", "h", twice, 3, NULL, 0, "label name a is repeated in metric g"},
        {GAUGE, "g", "h", nine, 9, NULL, 0, "metric g has too many labels (9, at most 8)"},
        {GAUGE, "g", "h", NULL, 1, NULL, 0, "label names of metric g are missing"},
        {HISTOGRAM, "h", "h", le, 1, b_ok, 2, "label name le is reserved in histogram h"},
        {HISTOGRAM, "h", "h", NULL, 0, b_ok, 0, "histogram h needs 1 to 64 buckets"},
        {HISTOGRAM, "h", "h", NULL, 0, NULL, 2, "histogram h needs 1 to 64 buckets"},
        {HISTOGRAM, "h", "h", NULL, 0, b_many, ANCHOR_METRICS_MAX_BUCKETS + 1,
         "histogram h needs 1 to 64 buckets"},
        {HISTOGRAM, "h", "h", NULL, 0, b_down, 2,
         "histogram h buckets are not strictly increasing"},
        {HISTOGRAM, "h", "h", NULL, 0, b_same, 2,
         "histogram h buckets are not strictly increasing"},
        {HISTOGRAM, "h", "h", NULL, 0, b_nan, 1, "histogram h has a bucket that is not finite"},
        {HISTOGRAM, "h", "h", NULL, 0, b_inf, 2, "histogram h has a bucket that is not finite"},
        /* Collisions with what the setup registered below. */
        {GAUGE, "taken", "h", NULL, 0, NULL, 0, "metric taken is already registered"},
        {COUNTER, "taken", "h", NULL, 0, NULL, 0, "counter name taken does not end in _total"},
        {GAUGE, "lat_seconds_count", "h", NULL, 0, NULL, 0,
         "metric lat_seconds_count is already registered"},
        {GAUGE, "lat_seconds_bucket", "h", NULL, 0, NULL, 0,
         "metric lat_seconds_bucket is already registered"},
        {HISTOGRAM, "size", "h", NULL, 0, b_ok, 2, "metric size is already registered"},
    };
    struct anchor_metrics *m = registry();
    struct anchor_metric *f = NULL, *unused = NULL;
    struct anchor_err err = {{0}};
    size_t i;
    int rc;

    (void)state;
    assert_int_equal(anchor_metrics_gauge(m, "taken", "h", NULL, 0, &unused, &err), 0);
    assert_int_equal(
        anchor_metrics_histogram(m, "lat_seconds", "h", NULL, 0, b_ok, 2, &unused, &err), 0);
    assert_int_equal(anchor_metrics_gauge(m, "size_sum", "h", NULL, 0, &unused, &err), 0);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        anchor_err_clear(&err);
        f = NULL;
        if (rows[i].kind == COUNTER)
            rc = anchor_metrics_counter(m, rows[i].name, rows[i].help, rows[i].labels,
                                        rows[i].n_labels, &f, &err);
        else if (rows[i].kind == GAUGE)
            rc = anchor_metrics_gauge(m, rows[i].name, rows[i].help, rows[i].labels,
                                      rows[i].n_labels, &f, &err);
        else
            rc = anchor_metrics_histogram(m, rows[i].name, rows[i].help, rows[i].labels,
                                          rows[i].n_labels, rows[i].buckets, rows[i].n_buckets, &f,
                                          &err);
        if (rc != -1)
            fail_msg("row %zu (%s) was accepted", i, rows[i].msg);
        assert_null(f);
        assert_string_equal(anchor_err_msg(&err), rows[i].msg);
    }
    /* Happy twins: `le` is an ordinary label outside histograms, colons are
     * allowed in metric names, 8 labels are allowed. */
    assert_int_equal(anchor_metrics_gauge(m, "g_le", "h", le, 1, &f, &err), 0);
    assert_int_equal(anchor_metrics_gauge(m, "ns:g", "h", one, 1, &f, &err), 0);
    assert_int_equal(anchor_metrics_gauge(m, "g8", "h", nine, 8, &f, &err), 0);
    anchor_metrics_free(m);
}

static void test_invalid_series_refused(void **state)
{
    struct anchor_metrics *m = registry();
    struct anchor_metric *f = NULL;
    struct anchor_series *s = NULL;
    struct anchor_err err = {{0}};
    static const char *const labels[] = {"a", "b"};
    static const char *const null_value[] = {"x", NULL};
    static const char *const bad_utf8[] = {"x", "\xc0\xaf"};
    char long_value[ANCHOR_METRICS_MAX_LABEL_VALUE + 2];
    const char *too_long[] = {"x", long_value};
    char value[16];
    const char *values[] = {"x", value};
    int i;

    (void)state;
    memset(long_value, 'v', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    assert_int_equal(anchor_metrics_counter(m, "c_total", "h", labels, 2, &f, &err), 0);
    assert_int_equal(anchor_metric_series(f, labels, 1, &s, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "metric c_total has 2 labels, given 1 values");
    assert_int_equal(anchor_metric_series(f, NULL, 2, &s, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "label values of c_total are missing");
    assert_int_equal(anchor_metric_series(f, null_value, 2, &s, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "value of label b of metric c_total is missing or longer than 256 bytes");
    assert_int_equal(anchor_metric_series(f, too_long, 2, &s, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "value of label b of metric c_total is missing or longer than 256 bytes");
    assert_int_equal(anchor_metric_series(f, bad_utf8, 2, &s, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "value of label b of metric c_total is not valid UTF-8");
    assert_null(s);
    /* At the bound: accepted. */
    long_value[ANCHOR_METRICS_MAX_LABEL_VALUE] = '\0';
    assert_int_equal(anchor_metric_series(f, too_long, 2, &s, &err), 0);
    /* Cardinality bound: the existing series stay usable. */
    for (i = 1; i < ANCHOR_METRICS_MAX_SERIES; i++) {
        (void)snprintf(value, sizeof(value), "%d", i);
        assert_int_equal(anchor_metric_series(f, values, 2, &s, &err), 0);
    }
    (void)snprintf(value, sizeof(value), "one-more");
    assert_int_equal(anchor_metric_series(f, values, 2, &s, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "metric c_total has too many series (at most 1024)");
    (void)snprintf(value, sizeof(value), "%d", 7);
    assert_int_equal(anchor_metric_series(f, values, 2, &s, &err), 0);
    anchor_metrics_free(m);
}

/* --- threads ------------------------------------------------------------------- */

struct worker {
    struct anchor_metric *c, *h;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    static const char *const v[] = {"x509pop"};
    struct anchor_series *s = NULL, *hs = NULL;
    int i;

    if (anchor_metric_series(w->c, v, 1, &s, NULL) != 0 ||
        anchor_metric_series(w->h, NULL, 0, &hs, NULL) != 0)
        return NULL;
    for (i = 0; i < 20000; i++) {
        anchor_series_inc(s);
        anchor_series_observe(hs, 0.5);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    struct anchor_metrics *m = registry();
    struct worker w = {0};
    struct anchor_err err = {{0}};
    static const char *const labels[] = {"attestor_type"};
    static const char *const v[] = {"x509pop"};
    static const double b[] = {1};
    pthread_t t[4];
    char *out = NULL;
    size_t len, i;

    (void)state;
    assert_int_equal(anchor_metrics_counter(m, "c_total", "h", labels, 1, &w.c, &err), 0);
    assert_int_equal(anchor_metrics_histogram(m, "h_seconds", "h", NULL, 0, b, 1, &w.h, &err), 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, work, &w), 0);
    for (i = 0; i < 20; i++) {
        assert_int_equal(anchor_metrics_render(m, &out, &len, &err), 0);
        free(out);
    }
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_true(anchor_series_value(series(w.c, v, 1)) == 80000);
    assert_render(m, "# HELP c_total h\n# TYPE c_total counter\nc_total{attestor_type=\"x509pop\"} "
                     "80000\n# HELP h_seconds h\n# TYPE h_seconds histogram\n"
                     "h_seconds_bucket{le=\"1\"} 80000\nh_seconds_bucket{le=\"+Inf\"} 80000\n"
                     "h_seconds_sum 40000\nh_seconds_count 80000\n");
    anchor_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_with_labels),
        cmocka_unit_test(test_gauge_and_counter_without_labels),
        cmocka_unit_test(test_histogram_with_labels),
        cmocka_unit_test(test_histogram_default_buckets),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_number_forms),
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_invalid_registrations_refused),
        cmocka_unit_test(test_invalid_series_refused),
        cmocka_unit_test(test_concurrent_updates),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
