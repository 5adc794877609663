/*
 * The logger object (anchor/log.h): a descriptor, a format, a minimum level
 * and a clock. Formatting is in log_format.c; this file decides whether an
 * event is written and writes each line with a single write(), so lines from
 * several threads or processes on one descriptor stay whole.
 */
#include "anchor/log.h"
#include "util/check.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

struct anchor_log {
    int fd;
    enum anchor_log_format format;
    atomic_int min;
    anchor_log_clock_fn clock;
    void *clock_data;
    atomic_uint_least64_t dropped;
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void real_clock(struct timespec *now, void *data)
{
    (void)data;
    if (clock_gettime(CLOCK_REALTIME, now) != 0) {
        now->tv_sec = 0;
        now->tv_nsec = 0;
    }
}

int anchor_log_new(struct anchor_log **out, int fd, enum anchor_log_format format,
                   enum anchor_log_level min, struct anchor_err *err)
{
    int rc = -1;
    struct anchor_log *log = NULL;

    ENSURE(fd >= 0, err, "invalid log descriptor %d", fd);
    ENSURE(format == ANCHOR_LOG_FORMAT_JSON || format == ANCHOR_LOG_FORMAT_TEXT, err,
           "invalid log format %d", (int)format);
    ENSURE(min >= ANCHOR_LOG_DEBUG && min <= ANCHOR_LOG_ERROR, err, "invalid log level %d",
           (int)min);
    log = calloc(1, sizeof(*log));
    ENSURE(log != NULL, err, "out of memory");
    log->fd = fd;
    log->format = format;
    atomic_init(&log->min, (int)min);
    atomic_init(&log->dropped, 0);
    log->clock = real_clock;
    *out = log;
    log = NULL;
    rc = 0;
out:
    free(log);
    return rc;
}

int anchor_log_new_fp(struct anchor_log **out, FILE *fp, enum anchor_log_format format,
                      enum anchor_log_level min, struct anchor_err *err)
{
    int rc = -1;
    int fd;

    ENSURE(fp != NULL, err, "log stream is missing");
    (void)fflush(fp);
    fd = fileno(fp);
    ENSURE(fd >= 0, err, "log stream has no file descriptor");
    TRY(anchor_log_new(out, fd, format, min, err));
    rc = 0;
out:
    return rc;
}

void anchor_log_free(struct anchor_log *log)
{
    free(log);
}

void anchor_log_set_level(struct anchor_log *log, enum anchor_log_level min)
{
    if (min >= ANCHOR_LOG_DEBUG && min <= ANCHOR_LOG_ERROR)
        atomic_store(&log->min, (int)min);
}

void anchor_log_set_clock(struct anchor_log *log, anchor_log_clock_fn clock, void *data)
{
    log->clock = clock != NULL ? clock : real_clock;
    log->clock_data = clock != NULL ? data : NULL;
}

int anchor_log_enabled(const struct anchor_log *log, enum anchor_log_level lvl)
{
    return log != NULL && (int)lvl >= atomic_load(&log->min) && lvl <= ANCHOR_LOG_ERROR;
}

uint64_t anchor_log_dropped(const struct anchor_log *log)
{
    return atomic_load(&log->dropped);
}

/* One write() for the whole line; the loop only continues a write that a
 * signal or a full disk cut short. */
static int write_line(int fd, const char *p, size_t len)
{
    ssize_t w;

    while (len > 0) {
        w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

void anchor_log(struct anchor_log *log, enum anchor_log_level lvl, const char *msg,
                const struct anchor_log_field *fields, size_t n)
{
    struct timespec now;
    char *line = NULL;
    size_t len;

    if (!anchor_log_enabled(log, lvl))
        return;
    log->clock(&now, log->clock_data);
    if (anchor_log_format_line(&line, &len, log->format, &now, lvl, msg, fields, n, NULL) != 0 ||
        write_line(log->fd, line, len) != 0)
        atomic_fetch_add(&log->dropped, 1);
    free(line);
}

int anchor_log_level_parse(const char *s, enum anchor_log_level *out, struct anchor_err *err)
{
    int rc = -1;
    int i, found = -1;

    ENSURE(s != NULL, err, "log level is missing");
    for (i = 0; i <= ANCHOR_LOG_ERROR; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            found = i;
    if (strcasecmp(s, "warning") == 0)
        found = ANCHOR_LOG_WARN;
    ENSURE(found >= 0, err, "unknown log level %.64s (debug, info, warn, error)", s);
    *out = (enum anchor_log_level)found;
    rc = 0;
out:
    return rc;
}

int anchor_log_format_parse(const char *s, enum anchor_log_format *out, struct anchor_err *err)
{
    int rc = -1;

    ENSURE(s != NULL, err, "log format is missing");
    if (strcasecmp(s, "json") == 0)
        *out = ANCHOR_LOG_FORMAT_JSON;
    else if (strcasecmp(s, "text") == 0)
        *out = ANCHOR_LOG_FORMAT_TEXT;
    else
        FAIL(err, "unknown log format %.64s (json, text)", s);
    rc = 0;
out:
    return rc;
}

const char *anchor_log_level_name(enum anchor_log_level lvl)
{
    if (lvl < ANCHOR_LOG_DEBUG || lvl > ANCHOR_LOG_ERROR)
        return "unknown";
    return level_names[lvl];
}
