/*
 * Metrics: a registry of counters, gauges and histograms with labels, and
 * its rendering in the Prometheus text exposition format 0.0.4 (what the
 * servers' /metrics endpoints answer, with ANCHOR_METRICS_CONTENT_TYPE).
 *
 *   registry  anchor_metrics_new()
 *   family    anchor_metrics_counter() / _gauge() / _histogram(): a name,
 *             a HELP text and a fixed list of label names, checked here
 *   series    anchor_metric_series(): the family's values for one list of
 *             label values, created on first use; keep the handle on hot
 *             paths
 *   update    anchor_series_inc() / _add() / _set() / _observe()
 *   render    anchor_metrics_render()
 *
 * Names follow docs/logs-and-metrics.md: metric names match
 * [a-zA-Z_:][a-zA-Z0-9_:]* and a counter's ends in _total; label names match
 * [a-zA-Z_][a-zA-Z0-9_]* and do not start with __; a histogram has no label
 * `le`. Families render in registration order, series in creation order.
 *
 * Families and series belong to the registry and stay valid until
 * anchor_metrics_free. Every function may be called from several threads at
 * once: a registry has one mutex, held briefly by each update and for the
 * whole of a render (so a scrape sees one consistent state).
 */
#ifndef ANCHOR_METRICS_H
#define ANCHOR_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "anchor/common.h"

#define ANCHOR_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Bounds, checked at registration and at series creation. */
#define ANCHOR_METRICS_MAX_NAME        200  /* metric and label names, bytes */
#define ANCHOR_METRICS_MAX_HELP        1024 /* HELP text, bytes */
#define ANCHOR_METRICS_MAX_LABELS      8    /* label names per family */
#define ANCHOR_METRICS_MAX_LABEL_VALUE 256  /* one label value, bytes */
#define ANCHOR_METRICS_MAX_SERIES      1024 /* series per family */
#define ANCHOR_METRICS_MAX_BUCKETS     64   /* histogram buckets besides +Inf */

/* Prometheus's default latency buckets, in seconds. */
#define ANCHOR_METRICS_DEFAULT_BUCKETS                                                             \
    {                                                                                              \
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10                                    \
    }

struct anchor_metrics;
struct anchor_metric;
struct anchor_series;

/* Creates an empty registry the caller frees with anchor_metrics_free. */
ANCHOR_API ANCHOR_WUR int anchor_metrics_new(struct anchor_metrics **out, struct anchor_err *err);

/* Frees the registry with all its families and series. Accepts NULL. */
ANCHOR_API void anchor_metrics_free(struct anchor_metrics *m);

/* Registers a counter family: `name` (ending in _total), `help` (UTF-8, any
 * characters; escaped when rendered) and `n_labels` label names (may be 0,
 * label_names then may be NULL). Refuses an invalid or already registered
 * name (including a histogram's _bucket/_sum/_count names), an invalid or
 * repeated label name. A family without labels has its one series at once,
 * rendered as 0. *out is borrowed from the registry. */
ANCHOR_API ANCHOR_WUR int anchor_metrics_counter(struct anchor_metrics *m, const char *name,
                                                 const char *help, const char *const *label_names,
                                                 size_t n_labels, struct anchor_metric **out,
                                                 struct anchor_err *err);

/* Registers a gauge family, as anchor_metrics_counter (no _total rule). */
ANCHOR_API ANCHOR_WUR int anchor_metrics_gauge(struct anchor_metrics *m, const char *name,
                                               const char *help, const char *const *label_names,
                                               size_t n_labels, struct anchor_metric **out,
                                               struct anchor_err *err);

/* Registers a histogram family with the upper bounds `buckets` (1 to
 * ANCHOR_METRICS_MAX_BUCKETS finite values, strictly increasing; +Inf is
 * implicit). Otherwise as anchor_metrics_gauge. */
ANCHOR_API ANCHOR_WUR int anchor_metrics_histogram(struct anchor_metrics *m, const char *name,
                                                   const char *help, const char *const *label_names,
                                                   size_t n_labels, const double *buckets,
                                                   size_t n_buckets, struct anchor_metric **out,
                                                   struct anchor_err *err);

/* Finds or creates the series of `f` for `label_values` (n_values must equal
 * the family's number of label names; each value valid UTF-8 of at most
 * ANCHOR_METRICS_MAX_LABEL_VALUE bytes). Refuses a new series beyond
 * ANCHOR_METRICS_MAX_SERIES. *out is borrowed from the registry. Creating a
 * series ahead of time makes it render as 0 before its first event. */
ANCHOR_API ANCHOR_WUR int anchor_metric_series(struct anchor_metric *f,
                                               const char *const *label_values, size_t n_values,
                                               struct anchor_series **out, struct anchor_err *err);

/* Adds 1 to a counter or gauge. Ignored for a histogram. */
ANCHOR_API void anchor_series_inc(struct anchor_series *s);

/* Adds v to a gauge, or to a counter when v >= 0 (a counter never goes
 * down: a negative or NaN v is ignored). Ignored for a histogram. */
ANCHOR_API void anchor_series_add(struct anchor_series *s, double v);

/* Sets a gauge to v. Ignored for counters and histograms. */
ANCHOR_API void anchor_series_set(struct anchor_series *s, double v);

/* Records v in a histogram: counted in every bucket whose bound is >= v,
 * added to the sum. NaN is ignored. Ignored for counters and gauges. */
ANCHOR_API void anchor_series_observe(struct anchor_series *s, double v);

/* The current value of a counter or gauge, or the observation count of a
 * histogram. */
ANCHOR_API double anchor_series_value(struct anchor_series *s);

/* Renders every family in the text exposition format 0.0.4 into a new
 * NUL-terminated string the caller frees with free(). */
ANCHOR_API ANCHOR_WUR int anchor_metrics_render(struct anchor_metrics *m, char **out, size_t *len,
                                                struct anchor_err *err);

#endif
