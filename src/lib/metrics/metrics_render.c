/*
 * The Prometheus text exposition format, version 0.0.4: for each family a
 * HELP line (with `\` and newline escaped), a TYPE line, then one sample
 * line per series, `name{label="value",...} number`, label values with `\`,
 * `"` and newline escaped. A histogram's series become cumulative
 * name_bucket{...,le="<bound>"} lines ending with le="+Inf", then name_sum
 * and name_count. Numbers are written in the shortest form that reads back
 * as the same double, and +Inf, -Inf, NaN as the format spells them.
 */
#include "metrics/internal.h"
#include "util/check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mb {
    char *p;
    size_t len;
    size_t cap;
    int oom;
};

static void mb_put(struct mb *b, const char *s, size_t n)
{
    size_t cap = b->cap == 0 ? 4096 : b->cap;
    char *grown;

    if (b->oom)
        return;
    while (b->len + n + 1 > cap)
        cap *= 2;
    if (cap != b->cap) {
        grown = realloc(b->p, cap);
        if (grown == NULL) {
            b->oom = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void mb_puts(struct mb *b, const char *s)
{
    mb_put(b, s, strlen(s));
}

/* Appends s with a backslash before each byte of `special` and newlines as
 * \n (HELP escapes `\`; label values escape `\` and `"`). */
static void mb_escaped(struct mb *b, const char *s, const char *special)
{
    size_t run;

    while (*s != '\0') {
        run = strcspn(s, special);
        mb_put(b, s, run);
        s += run;
        if (*s == '\n')
            mb_puts(b, "\\n");
        else if (*s != '\0') {
            mb_put(b, "\\", 1);
            mb_put(b, s, 1);
        } else
            break;
        s++;
    }
}

/* The shortest of %.15g / %.17g that reads back as v. */
static void mb_double(struct mb *b, double v)
{
    char num[40];

    if (isnan(v)) {
        mb_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        mb_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    (void)snprintf(num, sizeof(num), "%.15g", v);
    if (strtod(num, NULL) != v)
        (void)snprintf(num, sizeof(num), "%.17g", v);
    mb_puts(b, num);
}

static void mb_u64(struct mb *b, uint64_t v)
{
    char num[24];

    (void)snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    mb_puts(b, num);
}

/* Writes `{l1="v1",...` plus an `le` label when le_bound is not NULL (NaN
 * there means +Inf), and the closing brace; nothing for no labels. */
static void mb_labels(struct mb *b, const struct anchor_metric *f, const struct anchor_series *s,
                      const double *le_bound)
{
    size_t i;

    if (f->n_labels == 0 && le_bound == NULL)
        return;
    mb_put(b, "{", 1);
    for (i = 0; i < f->n_labels; i++) {
        if (i > 0)
            mb_put(b, ",", 1);
        mb_puts(b, f->label_names[i]);
        mb_puts(b, "=\"");
        mb_escaped(b, s->values[i], "\\\"\n");
        mb_put(b, "\"", 1);
    }
    if (le_bound != NULL) {
        if (f->n_labels > 0)
            mb_put(b, ",", 1);
        mb_puts(b, "le=\"");
        if (isnan(*le_bound))
            mb_puts(b, "+Inf");
        else
            mb_double(b, *le_bound);
        mb_put(b, "\"", 1);
    }
    mb_put(b, "}", 1);
}

static void render_histogram(struct mb *b, const struct anchor_metric *f,
                             const struct anchor_series *s)
{
    uint64_t cumulative = 0;
    double inf_marker = NAN; /* mb_labels writes +Inf for NaN */
    size_t i;

    for (i = 0; i <= f->n_bounds; i++) {
        cumulative += s->buckets[i];
        mb_puts(b, f->name);
        mb_puts(b, "_bucket");
        mb_labels(b, f, s, i < f->n_bounds ? &f->bounds[i] : &inf_marker);
        mb_put(b, " ", 1);
        mb_u64(b, cumulative);
        mb_put(b, "\n", 1);
    }
    mb_puts(b, f->name);
    mb_puts(b, "_sum");
    mb_labels(b, f, s, NULL);
    mb_put(b, " ", 1);
    mb_double(b, s->sum);
    mb_put(b, "\n", 1);
    mb_puts(b, f->name);
    mb_puts(b, "_count");
    mb_labels(b, f, s, NULL);
    mb_put(b, " ", 1);
    mb_u64(b, s->count);
    mb_put(b, "\n", 1);
}

static void render_family(struct mb *b, const struct anchor_metric *f)
{
    const struct anchor_series *s;

    mb_puts(b, "# HELP ");
    mb_puts(b, f->name);
    mb_put(b, " ", 1);
    mb_escaped(b, f->help, "\\\n");
    mb_puts(b, "\n# TYPE ");
    mb_puts(b, f->name);
    mb_put(b, " ", 1);
    mb_puts(b, anchor__metrics_type_name((int)f->type));
    mb_put(b, "\n", 1);
    for (s = f->series; s != NULL; s = s->next) {
        if (f->type == METRIC_HISTOGRAM) {
            render_histogram(b, f, s);
            continue;
        }
        mb_puts(b, f->name);
        mb_labels(b, f, s, NULL);
        mb_put(b, " ", 1);
        mb_double(b, s->value);
        mb_put(b, "\n", 1);
    }
}

int anchor_metrics_render(struct anchor_metrics *m, char **out, size_t *len, struct anchor_err *err)
{
    int rc = -1;
    struct mb b = {0};
    const struct anchor_metric *f;
    int locked = 0;

    ENSURE(pthread_mutex_lock(&m->lock) == 0, err, "metrics registry lock failed");
    locked = 1;
    mb_put(&b, "", 0);
    for (f = m->families; f != NULL; f = f->next)
        render_family(&b, f);
    ENSURE(!b.oom, err, "out of memory");
    *out = b.p;
    *len = b.len;
    b.p = NULL;
    rc = 0;
out:
    if (locked)
        pthread_mutex_unlock(&m->lock);
    free(b.p);
    return rc;
}
