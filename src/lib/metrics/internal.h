/*
 * The metrics registry's data, shared by metrics.c (registration, series,
 * updates) and metrics_render.c (exposition). Everything reachable from a
 * registry is guarded by its mutex.
 *
 * Not a public header: only src/lib/metrics/ includes it.
 */
#ifndef ANCHOR_METRICS_INTERNAL_H
#define ANCHOR_METRICS_INTERNAL_H

#include <pthread.h>

#include "anchor/metrics.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct anchor_series {
    struct anchor_metric *family;
    char **values;     /* one per label name of the family */
    double value;      /* counter, gauge */
    uint64_t *buckets; /* histogram: observations per bucket, the last one +Inf */
    double sum;
    uint64_t count;
    struct anchor_series *next;
};

struct anchor_metric {
    struct anchor_metrics *registry;
    enum metric_type type;
    char *name;
    char *help;
    char **label_names;
    size_t n_labels;
    double *bounds; /* histogram upper bounds, without +Inf */
    size_t n_bounds;
    struct anchor_series *series, *series_tail;
    size_t n_series;
    struct anchor_metric *next;
};

struct anchor_metrics {
    pthread_mutex_t lock;
    struct anchor_metric *families, *families_tail;
};

/* "counter", "gauge" or "histogram", for the TYPE line. */
const char *anchor__metrics_type_name(int type);

#endif
