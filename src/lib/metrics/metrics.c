/*
 * The metrics registry: families checked at registration (names, labels,
 * buckets), series found or created by label values, and the updates. One
 * mutex per registry guards every family and series, so updates from
 * several threads and a concurrent scrape are safe; an update holds it for a
 * few instructions only. Rendering is in metrics_render.c.
 */
#include "metrics/internal.h"
#include "util/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"counter", "gauge", "histogram"};
static const char *const hist_suffixes[] = {"_bucket", "_sum", "_count"};

/* Well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF): the exposition format is UTF-8 text. */
static int utf8_valid(const unsigned char *s)
{
    unsigned char lo, hi;
    size_t len, i;

    while (*s != '\0') {
        lo = 0x80;
        hi = 0xbf;
        if (*s < 0x80)
            len = 1;
        else if (*s >= 0xc2 && *s <= 0xdf)
            len = 2;
        else if (*s >= 0xe0 && *s <= 0xef) {
            len = 3;
            lo = *s == 0xe0 ? 0xa0 : 0x80;
            hi = *s == 0xed ? 0x9f : 0xbf;
        } else if (*s >= 0xf0 && *s <= 0xf4) {
            len = 4;
            lo = *s == 0xf0 ? 0x90 : 0x80;
            hi = *s == 0xf4 ? 0x8f : 0xbf;
        } else
            return 0;
        if (len > 1 && (s[1] < lo || s[1] > hi))
            return 0;
        for (i = 2; i < len; i++)
            if ((s[i] & 0xc0) != 0x80)
                return 0;
        s += len;
    }
    return 1;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names (colons allowed), or
 * [a-zA-Z_][a-zA-Z0-9_]* for label names. */
static int name_valid(const char *s, int colons)
{
    size_t i, len;
    char c;

    if (s == NULL)
        return 0;
    len = strnlen(s, ANCHOR_METRICS_MAX_NAME + 1);
    if (len == 0 || len > ANCHOR_METRICS_MAX_NAME)
        return 0;
    for (i = 0; i < len; i++) {
        c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (colons && c == ':') || (i > 0 && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Whether `name` of a family of type `type` collides with any registered
 * family, counting a histogram's _bucket, _sum and _count series names. */
static int name_taken(const struct anchor_metrics *m, const char *name, enum metric_type type)
{
    const struct anchor_metric *f;
    size_t i, n;

    for (f = m->families; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return 1;
        for (i = 0; i < 3; i++) {
            n = strlen(f->name);
            if (f->type == METRIC_HISTOGRAM && strncmp(name, f->name, n) == 0 &&
                strcmp(name + n, hist_suffixes[i]) == 0)
                return 1;
            n = strlen(name);
            if (type == METRIC_HISTOGRAM && strncmp(f->name, name, n) == 0 &&
                strcmp(f->name + n, hist_suffixes[i]) == 0)
                return 1;
        }
    }
    return 0;
}

static int check_family(const struct anchor_metrics *m, enum metric_type type, const char *name,
                        const char *help, const char *const *label_names, size_t n_labels,
                        struct anchor_err *err)
{
    int rc = -1;
    size_t i, j;

    ENSURE(name_valid(name, 1), err, "invalid metric name %.*s", ANCHOR_METRICS_MAX_NAME,
           name != NULL ? name : "(null)");
    ENSURE(type != METRIC_COUNTER || ends_with(name, "_total"), err,
           "counter name %s does not end in _total", name);
    ENSURE(help != NULL && strnlen(help, ANCHOR_METRICS_MAX_HELP + 1) <= ANCHOR_METRICS_MAX_HELP,
           err, "HELP text of metric %s is missing or longer than %d bytes", name,
           ANCHOR_METRICS_MAX_HELP);
    ENSURE(utf8_valid((const unsigned char *)help), err,
           "HELP text of metric %s is not valid UTF-8", name);
    ENSURE(n_labels <= ANCHOR_METRICS_MAX_LABELS, err,
           "metric %s has too many labels (%zu, at most %d)", name, n_labels,
           ANCHOR_METRICS_MAX_LABELS);
    ENSURE(n_labels == 0 || label_names != NULL, err, "label names of metric %s are missing", name);
    for (i = 0; i < n_labels; i++) {
        ENSURE(name_valid(label_names[i], 0) && strncmp(label_names[i], "__", 2) != 0, err,
               "invalid label name %.*s for metric %s", ANCHOR_METRICS_MAX_NAME,
               label_names[i] != NULL ? label_names[i] : "(null)", name);
        ENSURE(type != METRIC_HISTOGRAM || strcmp(label_names[i], "le") != 0, err,
               "label name le is reserved in histogram %s", name);
        for (j = 0; j < i; j++)
            ENSURE(strcmp(label_names[i], label_names[j]) != 0, err,
                   "label name %s is repeated in metric %s", label_names[i], name);
    }
    ENSURE(!name_taken(m, name, type), err, "metric %s is already registered", name);
    rc = 0;
out:
    return rc;
}

static void series_free(struct anchor_series *s, size_t n_labels)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; s->values != NULL && i < n_labels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->buckets);
    free(s);
}

static void family_free(struct anchor_metric *f)
{
    struct anchor_series *s, *next;
    size_t i;

    if (f == NULL)
        return;
    for (s = f->series; s != NULL; s = next) {
        next = s->next;
        series_free(s, f->n_labels);
    }
    for (i = 0; f->label_names != NULL && i < f->n_labels; i++)
        free(f->label_names[i]);
    free(f->label_names);
    free(f->bounds);
    free(f->name);
    free(f->help);
    free(f);
}

/* Creates a series with copies of `values`, appended to f. Under the lock. */
static int series_new(struct anchor_metric *f, const char *const *values,
                      struct anchor_series **out, struct anchor_err *err)
{
    int rc = -1;
    struct anchor_series *s = NULL;
    size_t i;

    ENSURE(f->n_series < ANCHOR_METRICS_MAX_SERIES, err,
           "metric %s has too many series (at most %d)", f->name, ANCHOR_METRICS_MAX_SERIES);
    s = calloc(1, sizeof(*s));
    ENSURE(s != NULL, err, "out of memory");
    s->family = f;
    s->values = calloc(f->n_labels + 1, sizeof(*s->values));
    ENSURE(s->values != NULL, err, "out of memory");
    for (i = 0; i < f->n_labels; i++) {
        s->values[i] = strdup(values[i]);
        ENSURE(s->values[i] != NULL, err, "out of memory");
    }
    if (f->type == METRIC_HISTOGRAM) {
        s->buckets = calloc(f->n_bounds + 1, sizeof(*s->buckets));
        ENSURE(s->buckets != NULL, err, "out of memory");
    }
    if (f->series_tail != NULL)
        f->series_tail->next = s;
    else
        f->series = s;
    f->series_tail = s;
    f->n_series++;
    *out = s;
    s = NULL;
    rc = 0;
out:
    series_free(s, f->n_labels);
    return rc;
}

static int family_new(struct anchor_metrics *m, enum metric_type type, const char *name,
                      const char *help, const char *const *label_names, size_t n_labels,
                      const double *bounds, size_t n_bounds, struct anchor_metric **out,
                      struct anchor_err *err)
{
    int rc = -1;
    struct anchor_metric *f = NULL;
    struct anchor_series *unused;
    size_t i;
    int locked = 0;

    ENSURE(pthread_mutex_lock(&m->lock) == 0, err, "metrics registry lock failed");
    locked = 1;
    TRY(check_family(m, type, name, help, label_names, n_labels, err));
    f = calloc(1, sizeof(*f));
    ENSURE(f != NULL, err, "out of memory");
    f->registry = m;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help);
    f->label_names = calloc(n_labels + 1, sizeof(*f->label_names));
    ENSURE(f->name != NULL && f->help != NULL && f->label_names != NULL, err, "out of memory");
    f->n_labels = n_labels;
    for (i = 0; i < n_labels; i++) {
        f->label_names[i] = strdup(label_names[i]);
        ENSURE(f->label_names[i] != NULL, err, "out of memory");
    }
    if (n_bounds > 0) {
        f->bounds = calloc(n_bounds, sizeof(*f->bounds));
        ENSURE(f->bounds != NULL, err, "out of memory");
        memcpy(f->bounds, bounds, n_bounds * sizeof(*bounds));
        f->n_bounds = n_bounds;
    }
    /* A family without labels has exactly one series: show it from the
     * start. */
    if (n_labels == 0)
        TRY(series_new(f, NULL, &unused, err));
    if (m->families_tail != NULL)
        m->families_tail->next = f;
    else
        m->families = f;
    m->families_tail = f;
    *out = f;
    f = NULL;
    rc = 0;
out:
    if (locked)
        pthread_mutex_unlock(&m->lock);
    family_free(f);
    return rc;
}

int anchor_metrics_new(struct anchor_metrics **out, struct anchor_err *err)
{
    int rc = -1;
    struct anchor_metrics *m = NULL;

    m = calloc(1, sizeof(*m));
    ENSURE(m != NULL, err, "out of memory");
    ENSURE(pthread_mutex_init(&m->lock, NULL) == 0, err, "metrics registry lock failed");
    *out = m;
    m = NULL;
    rc = 0;
out:
    free(m);
    return rc;
}

void anchor_metrics_free(struct anchor_metrics *m)
{
    struct anchor_metric *f, *next;

    if (m == NULL)
        return;
    for (f = m->families; f != NULL; f = next) {
        next = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int anchor_metrics_counter(struct anchor_metrics *m, const char *name, const char *help,
                           const char *const *label_names, size_t n_labels,
                           struct anchor_metric **out, struct anchor_err *err)
{
    return family_new(m, METRIC_COUNTER, name, help, label_names, n_labels, NULL, 0, out, err);
}

int anchor_metrics_gauge(struct anchor_metrics *m, const char *name, const char *help,
                         const char *const *label_names, size_t n_labels,
                         struct anchor_metric **out, struct anchor_err *err)
{
    return family_new(m, METRIC_GAUGE, name, help, label_names, n_labels, NULL, 0, out, err);
}

int anchor_metrics_histogram(struct anchor_metrics *m, const char *name, const char *help,
                             const char *const *label_names, size_t n_labels, const double *buckets,
                             size_t n_buckets, struct anchor_metric **out, struct anchor_err *err)
{
    int rc = -1;
    size_t i;

    ENSURE(n_buckets >= 1 && n_buckets <= ANCHOR_METRICS_MAX_BUCKETS && buckets != NULL, err,
           "histogram %.*s needs 1 to %d buckets", ANCHOR_METRICS_MAX_NAME,
           name != NULL ? name : "(null)", ANCHOR_METRICS_MAX_BUCKETS);
    for (i = 0; i < n_buckets; i++) {
        ENSURE(isfinite(buckets[i]), err, "histogram %s has a bucket that is not finite", name);
        ENSURE(i == 0 || buckets[i] > buckets[i - 1], err,
               "histogram %s buckets are not strictly increasing", name);
    }
    TRY(family_new(m, METRIC_HISTOGRAM, name, help, label_names, n_labels, buckets, n_buckets, out,
                   err));
    rc = 0;
out:
    return rc;
}

int anchor_metric_series(struct anchor_metric *f, const char *const *label_values, size_t n_values,
                         struct anchor_series **out, struct anchor_err *err)
{
    int rc = -1;
    struct anchor_metrics *m = f->registry;
    struct anchor_series *s;
    size_t i;
    int locked = 0;

    ENSURE(n_values == f->n_labels, err, "metric %s has %zu labels, given %zu values", f->name,
           f->n_labels, n_values);
    ENSURE(n_values == 0 || label_values != NULL, err, "label values of %s are missing", f->name);
    for (i = 0; i < n_values; i++) {
        ENSURE(label_values[i] != NULL &&
                   strnlen(label_values[i], ANCHOR_METRICS_MAX_LABEL_VALUE + 1) <=
                       ANCHOR_METRICS_MAX_LABEL_VALUE,
               err, "value of label %s of metric %s is missing or longer than %d bytes",
               f->label_names[i], f->name, ANCHOR_METRICS_MAX_LABEL_VALUE);
        ENSURE(utf8_valid((const unsigned char *)label_values[i]), err,
               "value of label %s of metric %s is not valid UTF-8", f->label_names[i], f->name);
    }
    ENSURE(pthread_mutex_lock(&m->lock) == 0, err, "metrics registry lock failed");
    locked = 1;
    for (s = f->series; s != NULL; s = s->next) {
        for (i = 0; i < n_values && strcmp(s->values[i], label_values[i]) == 0; i++)
            ;
        if (i == n_values)
            break;
    }
    if (s == NULL)
        TRY(series_new(f, label_values, &s, err));
    *out = s;
    rc = 0;
out:
    if (locked)
        pthread_mutex_unlock(&m->lock);
    return rc;
}

void anchor_series_add(struct anchor_series *s, double v)
{
    pthread_mutex_t *lock = &s->family->registry->lock;

    if (s->family->type == METRIC_HISTOGRAM || isnan(v))
        return;
    if (s->family->type == METRIC_COUNTER && !(v >= 0))
        return;
    pthread_mutex_lock(lock);
    s->value += v;
    pthread_mutex_unlock(lock);
}

void anchor_series_inc(struct anchor_series *s)
{
    anchor_series_add(s, 1);
}

void anchor_series_set(struct anchor_series *s, double v)
{
    pthread_mutex_t *lock = &s->family->registry->lock;

    if (s->family->type != METRIC_GAUGE)
        return;
    pthread_mutex_lock(lock);
    s->value = v;
    pthread_mutex_unlock(lock);
}

void anchor_series_observe(struct anchor_series *s, double v)
{
    const struct anchor_metric *f = s->family;
    pthread_mutex_t *lock = &f->registry->lock;
    size_t i;

    if (f->type != METRIC_HISTOGRAM || isnan(v))
        return;
    /* The first bucket whose upper bound holds v; n_bounds is +Inf. */
    for (i = 0; i < f->n_bounds && v > f->bounds[i]; i++)
        ;
    pthread_mutex_lock(lock);
    s->buckets[i]++;
    s->sum += v;
    s->count++;
    pthread_mutex_unlock(lock);
}

double anchor_series_value(struct anchor_series *s)
{
    pthread_mutex_t *lock = &s->family->registry->lock;
    double v;

    pthread_mutex_lock(lock);
    v = s->family->type == METRIC_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(lock);
    return v;
}

const char *anchor__metrics_type_name(int type)
{
    return type_names[type];
}
