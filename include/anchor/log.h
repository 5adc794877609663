/*
 * Structured logging for the programs (the library itself never logs).
 *
 * A logger writes one line per event to a file descriptor, in one of two
 * formats (docs/logs-and-metrics.md has the full reference):
 *
 *   json  {"time":"2026-01-01T00:00:00.000Z","level":"info","msg":"Connected to agent",
 *          "spiffeId":"spiffe://example.org/agents/x509pop/3f..."}
 *   text  2026-01-01T00:00:00.000Z INFO  Connected to agent spiffeId=spiffe://example.org/...
 *
 * time is RFC 3339 in UTC with milliseconds; fields follow in the order given.
 * Field values are typed: string, integer, bool, array of strings. Any bytes
 * are accepted: JSON output is always valid JSON (invalid UTF-8 becomes
 * U+FFFD) and a text line never contains a raw control character, so a field
 * cannot start a new line or drive the terminal.
 *
 * Bounds: a string (message, value or array element) longer than
 * ANCHOR_LOG_MAX_VALUE bytes is cut and ends in "..."; an array shows at most
 * ANCHOR_LOG_MAX_ARRAY elements; a line stops adding fields before it would
 * pass ANCHOR_LOG_MAX_LINE bytes and then carries logTruncated=true.
 *
 * Each line is written with one write() call, so the lines of threads or
 * processes sharing the descriptor (O_APPEND files, pipes for lines up to
 * PIPE_BUF) do not interleave. anchor_log() may be called from several
 * threads at once; it allocates the line per call and shares no buffer.
 */
#ifndef ANCHOR_LOG_H
#define ANCHOR_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "anchor/common.h"

#define ANCHOR_LOG_MAX_VALUE 4096
#define ANCHOR_LOG_MAX_ARRAY 64
#define ANCHOR_LOG_MAX_LINE  65536

enum anchor_log_level {
    ANCHOR_LOG_DEBUG = 0,
    ANCHOR_LOG_INFO = 1,
    ANCHOR_LOG_WARN = 2,
    ANCHOR_LOG_ERROR = 3,
};

enum anchor_log_format {
    ANCHOR_LOG_FORMAT_JSON = 0,
    ANCHOR_LOG_FORMAT_TEXT = 1,
};

enum anchor_log_field_type {
    ANCHOR_LOG_FIELD_STR,
    ANCHOR_LOG_FIELD_INT,
    ANCHOR_LOG_FIELD_BOOL,
    ANCHOR_LOG_FIELD_STRS,
};

/* One field of an event. Build it with the macros below; everything it
 * points to is only borrowed for the duration of the call. A NULL string
 * (or array element) is logged as an empty string. */
struct anchor_log_field {
    const char *key;
    enum anchor_log_field_type type;
    union {
        const char *str;
        int64_t i;
        int b;
        struct {
            const char *const *v;
            size_t n;
        } strs;
    } u;
};

#define ANCHOR_LOG_STR(k, s)                                                                       \
    ((struct anchor_log_field){.key = (k), .type = ANCHOR_LOG_FIELD_STR, .u.str = (s)})
#define ANCHOR_LOG_INT(k, x)                                                                       \
    ((struct anchor_log_field){.key = (k), .type = ANCHOR_LOG_FIELD_INT, .u.i = (int64_t)(x)})
#define ANCHOR_LOG_BOOL(k, x)                                                                      \
    ((struct anchor_log_field){.key = (k), .type = ANCHOR_LOG_FIELD_BOOL, .u.b = (x) != 0})
#define ANCHOR_LOG_STRS(k, arr, count)                                                             \
    ((struct anchor_log_field){                                                                    \
        .key = (k), .type = ANCHOR_LOG_FIELD_STRS, .u.strs = {.v = (arr), .n = (count)}})

/* Logs `msg` at `lvl` with one or more fields given as the macros above:
 *   ANCHOR_LOGF(log, ANCHOR_LOG_INFO, "Connected to agent",
 *               ANCHOR_LOG_STR("spiffeId", id));
 * Without fields call anchor_log(log, lvl, msg, NULL, 0). */
#define ANCHOR_LOGF(log, lvl, msg, ...)                                                            \
    anchor_log((log), (lvl), (msg), (const struct anchor_log_field[]){__VA_ARGS__},                \
               sizeof((const struct anchor_log_field[]){__VA_ARGS__}) /                            \
                   sizeof(struct anchor_log_field))

/* Where the time of an event comes from: fills *now (CLOCK_REALTIME by
 * default; tests set a fixed clock). */
typedef void (*anchor_log_clock_fn)(struct timespec *now, void *data);

struct anchor_log;

/* Creates a logger writing `format` lines of level `min` and above to `fd`,
 * which stays the caller's (anchor_log_free does not close it). The caller
 * frees the logger with anchor_log_free. */
ANCHOR_API ANCHOR_WUR int anchor_log_new(struct anchor_log **out, int fd,
                                         enum anchor_log_format format, enum anchor_log_level min,
                                         struct anchor_err *err);

/* Like anchor_log_new for a stdio stream backed by a descriptor (stderr, a
 * file from fopen): flushes `fp` once and then writes to fileno(fp),
 * bypassing its buffer. Fails for a stream without a descriptor. */
ANCHOR_API ANCHOR_WUR int anchor_log_new_fp(struct anchor_log **out, FILE *fp,
                                            enum anchor_log_format format,
                                            enum anchor_log_level min, struct anchor_err *err);

/* Frees the logger. Accepts NULL. */
ANCHOR_API void anchor_log_free(struct anchor_log *log);

/* Changes the minimum level; safe while other threads log (a config reload
 * may call it). */
ANCHOR_API void anchor_log_set_level(struct anchor_log *log, enum anchor_log_level min);

/* Replaces the clock (NULL restores the real one). Call before sharing the
 * logger between threads. */
ANCHOR_API void anchor_log_set_clock(struct anchor_log *log, anchor_log_clock_fn clock, void *data);

/* Returns 1 when an event of `lvl` would be written, so that a caller can skip
 * building expensive fields. */
ANCHOR_API int anchor_log_enabled(const struct anchor_log *log, enum anchor_log_level lvl);

/* Writes one event when `lvl` is at least the minimum level. Never fails
 * from the caller's point of view: a line that cannot be allocated or written
 * is counted by anchor_log_dropped. `fields` may be NULL when n is 0. */
ANCHOR_API void anchor_log(struct anchor_log *log, enum anchor_log_level lvl, const char *msg,
                           const struct anchor_log_field *fields, size_t n);

/* The number of lines lost so far (out of memory, write errors). */
ANCHOR_API uint64_t anchor_log_dropped(const struct anchor_log *log);

/* Formats one event into a new NUL-terminated string (with its trailing
 * newline) that the caller frees with free(), exactly as anchor_log would
 * write it at time `now`, ignoring the minimum level. */
ANCHOR_API ANCHOR_WUR int
anchor_log_format_line(char **out, size_t *len, enum anchor_log_format format,
                       const struct timespec *now, enum anchor_log_level lvl, const char *msg,
                       const struct anchor_log_field *fields, size_t n, struct anchor_err *err);

/* Parses a log-level setting: debug, info, warn (or warning), error, in any
 * case. Fails with "unknown log level <s> (debug, info, warn, error)". */
ANCHOR_API ANCHOR_WUR int anchor_log_level_parse(const char *s, enum anchor_log_level *out,
                                                 struct anchor_err *err);

/* Parses a log-format setting: json or text. Fails with
 * "unknown log format <s> (json, text)". */
ANCHOR_API ANCHOR_WUR int anchor_log_format_parse(const char *s, enum anchor_log_format *out,
                                                  struct anchor_err *err);

/* The lowercase name of a level ("info"), as in the JSON format. */
ANCHOR_API const char *anchor_log_level_name(enum anchor_log_level lvl);

#endif
