/*
 * The two line formats of the logger (anchor/log.h): JSON lines and text for
 * terminals. A line is built in a growing buffer capped at
 * ANCHOR_LOG_MAX_LINE; a field that does not fit is taken back out whole and
 * the line ends with logTruncated=true, so a cut line is still well formed.
 *
 * Strings are walked as UTF-8. JSON (RFC 8259 7) escapes `"`, `\` and every
 * control character, and writes U+FFFD for a byte that is not part of a valid
 * UTF-8 sequence, so the output always parses. The text format escapes the
 * same characters with C-like escapes (\n, \x1b, \xff for an invalid byte) and
 * quotes a value unless it is made only of plain printable ASCII, so no value
 * can begin a new line, send a terminal escape or pass for another field.
 * Both formats also escape the C1 controls and the Unicode line separators
 * and bidirectional overrides, which some viewers act on.
 */
#include "anchor/log.h"
#include "util/check.h"

#include <stdlib.h>
#include <string.h>

/* Room kept at the end for the truncation marker and the closing bytes. */
#define RESERVE 64

struct lb {
    char *p;
    size_t len;
    size_t cap;
    int over; /* the last put did not fit: roll back */
    int oom;
};

static void lb_put(struct lb *b, const void *data, size_t n)
{
    size_t want = b->len + n + RESERVE;
    size_t cap = b->cap;
    char *grown;

    if (b->over)
        return;
    if (want > ANCHOR_LOG_MAX_LINE) {
        b->over = 1;
        return;
    }
    if (want > cap) {
        while (cap < want)
            cap *= 2;
        if (cap > ANCHOR_LOG_MAX_LINE)
            cap = ANCHOR_LOG_MAX_LINE;
        grown = realloc(b->p, cap);
        if (grown == NULL) {
            b->over = b->oom = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

/* Writes into the reserved room; only for the short closing bytes. */
static void lb_put_reserved(struct lb *b, const char *s)
{
    size_t n = strlen(s);

    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void lb_puts(struct lb *b, const char *s)
{
    lb_put(b, s, strlen(s));
}

/* The length (1 to 4) of the well-formed UTF-8 sequence at s (Unicode 15,
 * table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), with
 * its code point in *cp; 0 when the byte at s does not start one. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len, i;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        *cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        *cp = c & 0x0fu;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        *cp = c & 0x07u;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3fu);
    }
    return len;
}

/* Code points that are printable but that some viewers act on: C1
 * controls, line and paragraph separators, bidirectional controls. */
static int is_sneaky(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x2028 && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* The length of s to show, at most ANCHOR_LOG_MAX_VALUE bytes and not in the
 * middle of a UTF-8 sequence; *cut says whether anything was left out. */
static size_t shown_len(const char *s, int *cut)
{
    size_t len = strnlen(s, ANCHOR_LOG_MAX_VALUE + 1);

    *cut = len > ANCHOR_LOG_MAX_VALUE;
    if (*cut) {
        len = ANCHOR_LOG_MAX_VALUE;
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
            len--;
    }
    return len;
}

/* Appends s as a JSON string, quotes included. */
static void json_str(struct lb *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)(s != NULL ? s : "");
    int cut;
    size_t len = shown_len((const char *)u, &cut);
    size_t i = 0, n;
    uint32_t cp;
    char esc[8];

    lb_put(b, "\"", 1);
    while (i < len) {
        n = utf8_seq(u + i, len - i, &cp);
        if (n == 0) {
            lb_puts(b, "\\ufffd");
            i++;
            continue;
        }
        if (cp == '"')
            lb_puts(b, "\\\"");
        else if (cp == '\\')
            lb_puts(b, "\\\\");
        else if (cp == '\n')
            lb_puts(b, "\\n");
        else if (cp == '\r')
            lb_puts(b, "\\r");
        else if (cp == '\t')
            lb_puts(b, "\\t");
        else if (cp < 0x20 || cp == 0x7f || is_sneaky(cp)) {
            (void)snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
            lb_puts(b, esc);
        } else
            lb_put(b, u + i, n);
        i += n;
    }
    if (cut)
        lb_puts(b, "...");
    lb_put(b, "\"", 1);
}

/* Appends s for the text format: escaped, and in quotes unless `bare` or
 * every byte is plain (printable ASCII other than space " \ = [ ] ,). */
static void text_str(struct lb *b, const char *s, int bare)
{
    const unsigned char *u = (const unsigned char *)(s != NULL ? s : "");
    int cut, quote = 0;
    size_t len = shown_len((const char *)u, &cut);
    size_t i, n;
    uint32_t cp;
    char esc[8];

    if (!bare) {
        quote = len == 0;
        for (i = 0; i < len && !quote; i++)
            quote = u[i] <= 0x20 || u[i] >= 0x7f || strchr("\"\\=[],", u[i]) != NULL;
    }
    if (quote)
        lb_put(b, "\"", 1);
    for (i = 0; i < len; i += n) {
        n = utf8_seq(u + i, len - i, &cp);
        if (n == 0) {
            (void)snprintf(esc, sizeof(esc), "\\x%02x", u[i]);
            lb_puts(b, esc);
            n = 1;
        } else if (cp == '"' && quote)
            lb_puts(b, "\\\"");
        else if (cp == '\\')
            lb_puts(b, "\\\\");
        else if (cp == '\n')
            lb_puts(b, "\\n");
        else if (cp == '\r')
            lb_puts(b, "\\r");
        else if (cp == '\t')
            lb_puts(b, "\\t");
        else if (cp < 0x20 || cp == 0x7f) {
            (void)snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)cp);
            lb_puts(b, esc);
        } else if (is_sneaky(cp)) {
            (void)snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
            lb_puts(b, esc);
        } else
            lb_put(b, u + i, n);
    }
    if (cut)
        lb_puts(b, "...");
    if (quote)
        lb_put(b, "\"", 1);
}

static void put_int(struct lb *b, int64_t v)
{
    char num[32];

    (void)snprintf(num, sizeof(num), "%lld", (long long)v);
    lb_puts(b, num);
}

static void json_field(struct lb *b, const struct anchor_log_field *f)
{
    size_t i, n;

    lb_put(b, ",", 1);
    json_str(b, f->key);
    lb_put(b, ":", 1);
    switch (f->type) {
    case ANCHOR_LOG_FIELD_STR:
        json_str(b, f->u.str);
        break;
    case ANCHOR_LOG_FIELD_INT:
        put_int(b, f->u.i);
        break;
    case ANCHOR_LOG_FIELD_BOOL:
        lb_puts(b, f->u.b ? "true" : "false");
        break;
    case ANCHOR_LOG_FIELD_STRS:
        n = f->u.strs.v == NULL ? 0 : f->u.strs.n;
        lb_put(b, "[", 1);
        for (i = 0; i < n && i < ANCHOR_LOG_MAX_ARRAY; i++) {
            if (i > 0)
                lb_put(b, ",", 1);
            json_str(b, f->u.strs.v[i]);
        }
        if (n > ANCHOR_LOG_MAX_ARRAY)
            lb_puts(b, ",\"...\"");
        lb_put(b, "]", 1);
        break;
    default:
        lb_puts(b, "null");
        break;
    }
}

static void text_field(struct lb *b, const struct anchor_log_field *f)
{
    size_t i, n;

    lb_put(b, " ", 1);
    text_str(b, f->key, 1);
    lb_put(b, "=", 1);
    switch (f->type) {
    case ANCHOR_LOG_FIELD_STR:
        text_str(b, f->u.str, 0);
        break;
    case ANCHOR_LOG_FIELD_INT:
        put_int(b, f->u.i);
        break;
    case ANCHOR_LOG_FIELD_BOOL:
        lb_puts(b, f->u.b ? "true" : "false");
        break;
    case ANCHOR_LOG_FIELD_STRS:
        n = f->u.strs.v == NULL ? 0 : f->u.strs.n;
        lb_put(b, "[", 1);
        for (i = 0; i < n && i < ANCHOR_LOG_MAX_ARRAY; i++) {
            if (i > 0)
                lb_puts(b, ", ");
            text_str(b, f->u.strs.v[i], 0);
        }
        if (n > ANCHOR_LOG_MAX_ARRAY)
            lb_puts(b, ", ...");
        lb_put(b, "]", 1);
        break;
    default:
        lb_puts(b, "?");
        break;
    }
}

static const char *const text_levels[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

/* RFC 3339 in UTC with milliseconds: 2026-01-01T00:00:00.000Z. */
static void put_time(struct lb *b, const struct timespec *now)
{
    struct tm tm;
    time_t t = now->tv_sec;
    char buf[64];
    long ms = now->tv_nsec / 1000000;

    if (gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    if (ms < 0 || ms > 999)
        ms = 0;
    (void)snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    lb_puts(b, buf);
}

int anchor_log_format_line(char **out, size_t *len, enum anchor_log_format format,
                           const struct timespec *now, enum anchor_log_level lvl, const char *msg,
                           const struct anchor_log_field *fields, size_t n, struct anchor_err *err)
{
    int rc = -1;
    struct lb b = {0};
    size_t i, mark;
    int json = format == ANCHOR_LOG_FORMAT_JSON;

    ENSURE(lvl >= ANCHOR_LOG_DEBUG && lvl <= ANCHOR_LOG_ERROR, err, "invalid log level %d",
           (int)lvl);
    ENSURE(json || format == ANCHOR_LOG_FORMAT_TEXT, err, "invalid log format %d", (int)format);
    ENSURE(n == 0 || fields != NULL, err, "log fields are missing");
    b.cap = 1024;
    b.p = malloc(b.cap);
    ENSURE(b.p != NULL, err, "out of memory");
    if (json) {
        lb_puts(&b, "{\"time\":\"");
        put_time(&b, now);
        lb_puts(&b, "\",\"level\":");
        json_str(&b, anchor_log_level_name(lvl));
        lb_puts(&b, ",\"msg\":");
        json_str(&b, msg);
    } else {
        put_time(&b, now);
        lb_put(&b, " ", 1);
        lb_puts(&b, text_levels[lvl]);
        lb_put(&b, " ", 1);
        text_str(&b, msg, 1);
    }
    ENSURE(!b.over, err, "out of memory");
    for (i = 0; i < n; i++) {
        mark = b.len;
        if (json)
            json_field(&b, &fields[i]);
        else
            text_field(&b, &fields[i]);
        ENSURE(!b.oom, err, "out of memory");
        if (b.over) {
            b.len = mark;
            lb_put_reserved(&b, json ? ",\"logTruncated\":true" : " logTruncated=true");
            break;
        }
    }
    lb_put_reserved(&b, json ? "}\n" : "\n");
    b.p[b.len] = '\0';
    *out = b.p;
    *len = b.len;
    b.p = NULL;
    rc = 0;
out:
    free(b.p);
    return rc;
}
