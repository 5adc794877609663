/*
 * Tests of the logger (anchor/log.h): the exact JSON and text lines for each
 * field type, escaping of quotes, newlines, control characters, terminal
 * escapes and invalid UTF-8 (every JSON line is parsed back with jansson),
 * the bounds, level filtering, the setting parsers, and whole lines when
 * several processes share one file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "anchor/log.h"

/* 2026-01-01T00:00:00.123Z */
static const struct timespec T0 = {.tv_sec = 1767225600, .tv_nsec = 123456789};

static void fixed_clock(struct timespec *now, void *data)
{
    (void)data;
    *now = T0;
}

static char *line_of(enum anchor_log_format fmt, enum anchor_log_level lvl, const char *msg,
                     const struct anchor_log_field *fields, size_t n)
{
    char *out = NULL;
    size_t len = 0;
    struct anchor_err err = {{0}};

    if (anchor_log_format_line(&out, &len, fmt, &T0, lvl, msg, fields, n, &err) != 0)
        fail_msg("format: %s", anchor_err_msg(&err));
    assert_int_equal(strlen(out), len);
    assert_true(len > 0 && out[len - 1] == '\n');
    /* One line: the only newline is the last byte. */
    assert_ptr_equal(strchr(out, '\n'), out + len - 1);
    return out;
}

/* Parses the JSON line at `line` (up to its newline) and returns the object
 * (the caller decrefs it). */
static json_t *parse_json(const char *line)
{
    json_error_t jerr;
    const char *nl = strchr(line, '\n');
    size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
    json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);

    if (obj == NULL)
        fail_msg("not JSON (%s): %s", jerr.text, line);
    assert_true(json_is_object(obj));
    return obj;
}

/* --- each field type, exact output -------------------------------------------- */

static void test_field_types_exact(void **state)
{
    static const char *const methods[] = {"x509pop"};
    static const char *const attrs[] = {"x509pop:x509_pop.serial_number=\"3a7f2c1b\"",
                                        "x509pop:x509_pop.subject.cn=\"node 1\""};
    static const struct {
        struct anchor_log_field f;
        const char *json, *text;
    } rows[] = {
        {ANCHOR_LOG_STR("spiffeId", "spiffe://example.org/agents/x509pop/3f"),
         "\"spiffeId\":\"spiffe://example.org/agents/x509pop/3f\"",
         "spiffeId=spiffe://example.org/agents/x509pop/3f"},
        {ANCHOR_LOG_STR("empty", ""), "\"empty\":\"\"", "empty=\"\""},
        {ANCHOR_LOG_STR("nullstr", NULL), "\"nullstr\":\"\"", "nullstr=\"\""},
        {ANCHOR_LOG_INT("count", 42), "\"count\":42", "count=42"},
        {ANCHOR_LOG_INT("neg", -7), "\"neg\":-7", "neg=-7"},
        {ANCHOR_LOG_INT("max", INT64_MAX), "\"max\":9223372036854775807",
         "max=9223372036854775807"},
        {ANCHOR_LOG_INT("min", INT64_MIN), "\"min\":-9223372036854775808",
         "min=-9223372036854775808"},
        {ANCHOR_LOG_BOOL("yes", 5), "\"yes\":true", "yes=true"},
        {ANCHOR_LOG_BOOL("no", 0), "\"no\":false", "no=false"},
        {ANCHOR_LOG_STRS("providedMethods", methods, 1), "\"providedMethods\":[\"x509pop\"]",
         "providedMethods=[x509pop]"},
        {ANCHOR_LOG_STRS("agentAttestationAttributes", attrs, 2),
         "\"agentAttestationAttributes\":[\"x509pop:x509_pop.serial_number=\\\"3a7f2c1b\\\"\","
         "\"x509pop:x509_pop.subject.cn=\\\"node 1\\\"\"]",
         "agentAttestationAttributes=[\"x509pop:x509_pop.serial_number=\\\"3a7f2c1b\\\"\", "
         "\"x509pop:x509_pop.subject.cn=\\\"node 1\\\"\"]"},
        {ANCHOR_LOG_STRS("none", methods, 0), "\"none\":[]", "none=[]"},
        {ANCHOR_LOG_STRS("nullarr", NULL, 3), "\"nullarr\":[]", "nullarr=[]"},
    };
    char want[1024];
    char *line;
    size_t i;
    json_t *obj;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        line = line_of(ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, "Event", &rows[i].f, 1);
        (void)snprintf(want, sizeof(want),
                       "{\"time\":\"2026-01-01T00:00:00.123Z\",\"level\":\"info\",\"msg\":"
                       "\"Event\",%s}\n",
                       rows[i].json);
        assert_string_equal(line, want);
        obj = parse_json(line);
        assert_non_null(json_object_get(obj, rows[i].f.key));
        json_decref(obj);
        free(line);

        line = line_of(ANCHOR_LOG_FORMAT_TEXT, ANCHOR_LOG_INFO, "Event", &rows[i].f, 1);
        (void)snprintf(want, sizeof(want), "2026-01-01T00:00:00.123Z INFO  Event %s\n",
                       rows[i].text);
        assert_string_equal(line, want);
        free(line);
    }
}

/* The documented lines, through the logger object and the ANCHOR_LOGF macro. */
static void test_documented_lines(void **state)
{
    static const char *const methods[] = {"x509pop"};
    static const char *const attrs[] = {"x509pop:x509_pop.serial_number=\"3a7f2c1b\""};
    struct anchor_log *log = NULL;
    struct anchor_err err = {{0}};
    FILE *tmp = tmpfile();
    char buf[4096];
    size_t n;
    json_t *obj, *arr;

    (void)state;
    assert_non_null(tmp);
    assert_int_equal(anchor_log_new_fp(&log, tmp, ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_DEBUG, &err),
                     0);
    anchor_log_set_clock(log, fixed_clock, NULL);
    ANCHOR_LOGF(log, ANCHOR_LOG_INFO, "Login started with multi-attestation support",
                ANCHOR_LOG_STRS("providedMethods", methods, 1));
    ANCHOR_LOGF(log, ANCHOR_LOG_INFO, "Authorization received and verified",
                ANCHOR_LOG_STRS("agentAttestationAttributes", attrs, 1));
    anchor_log(log, ANCHOR_LOG_WARN, "attestation policy not found or no matching policy", NULL, 0);
    anchor_log_free(log);
    rewind(tmp);
    n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    assert_string_equal(
        buf, "{\"time\":\"2026-01-01T00:00:00.123Z\",\"level\":\"info\",\"msg\":\"Login started "
             "with multi-attestation support\",\"providedMethods\":[\"x509pop\"]}\n"
             "{\"time\":\"2026-01-01T00:00:00.123Z\",\"level\":\"info\",\"msg\":\"Authorization "
             "received and verified\",\"agentAttestationAttributes\":[\"x509pop:x509_pop.serial_"
             "number=\\\"3a7f2c1b\\\"\"]}\n"
             "{\"time\":\"2026-01-01T00:00:00.123Z\",\"level\":\"warn\",\"msg\":\"attestation "
             "policy not found or no matching policy\"}\n");
    obj = parse_json(strchr(buf, '\n') + 1);
    arr = json_object_get(obj, "agentAttestationAttributes");
    assert_true(json_is_array(arr));
    assert_string_equal(json_string_value(json_array_get(arr, 0)),
                        "x509pop:x509_pop.serial_number=\"3a7f2c1b\"");
    json_decref(obj);
    fclose(tmp);

    tmp = tmpfile();
    assert_non_null(tmp);
    assert_int_equal(
        anchor_log_new(&log, fileno(tmp), ANCHOR_LOG_FORMAT_TEXT, ANCHOR_LOG_INFO, &err), 0);
    anchor_log_set_clock(log, fixed_clock, NULL);
    ANCHOR_LOGF(log, ANCHOR_LOG_INFO, "Connected to agent",
                ANCHOR_LOG_STR("spiffeId", "spiffe://example.org/agents/x509pop/3f"));
    ANCHOR_LOGF(log, ANCHOR_LOG_ERROR, "failed to verify signature",
                ANCHOR_LOG_STR("attestorType", "x509pop"), ANCHOR_LOG_INT("attempt", 2));
    anchor_log_free(log);
    rewind(tmp);
    n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    assert_string_equal(buf, "2026-01-01T00:00:00.123Z INFO  Connected to agent "
                             "spiffeId=spiffe://example.org/agents/x509pop/3f\n"
                             "2026-01-01T00:00:00.123Z ERROR failed to verify signature "
                             "attestorType=x509pop attempt=2\n");
    fclose(tmp);
}

/* --- escaping ------------------------------------------------------------------- */

static void test_escaping(void **state)
{
    static const struct {
        const char *in;
        const char *json;    /* the encoded JSON string, quotes included */
        const char *decoded; /* what jansson reads back; NULL: same as in */
        const char *text;    /* the text format's value */
    } rows[] = {
        {"say \"hi\"", "\"say \\\"hi\\\"\"", NULL, "\"say \\\"hi\\\"\""},
        {"C:\\dir", "\"C:\\\\dir\"", NULL, "\"C:\\\\dir\""},
        {"a\nINFO  forged=1", "\"a\\nINFO  forged=1\"", NULL, "\"a\\nINFO  forged=1\""},
        {"cr\rtab\t", "\"cr\\rtab\\t\"", NULL, "\"cr\\rtab\\t\""},
        {"\x1b[31mred", "\"\\u001b[31mred\"", NULL, "\"\\x1b[31mred\""},
        {"bell\x07", "\"bell\\u0007\"", NULL, "\"bell\\x07\""},
        {"del\x7f", "\"del\\u007f\"", NULL, "\"del\\x7f\""},
        {"\xff\xfe", "\"\\ufffd\\ufffd\"", "\xef\xbf\xbd\xef\xbf\xbd", "\"\\xff\\xfe\""},
        {"over\xc0\xaflong", "\"over\\ufffd\\ufffdlong\"", "over\xef\xbf\xbd\xef\xbf\xbdlong",
         "\"over\\xc0\\xaflong\""},
        {"sur\xed\xa0\x80", "\"sur\\ufffd\\ufffd\\ufffd\"",
         "sur\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "\"sur\\xed\\xa0\\x80\""},
        {"cut\xe2\x82", "\"cut\\ufffd\\ufffd\"", "cut\xef\xbf\xbd\xef\xbf\xbd",
         "\"cut\\xe2\\x82\""},
        {"big\xf4\x90\x80\x80", "\"big\\ufffd\\ufffd\\ufffd\\ufffd\"",
         "big\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "\"big\\xf4\\x90\\x80\\x80\""},
        {"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80",
         "\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\"", NULL,
         "\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\""},
        {"csi\xc2\x9b", "\"csi\\u009b\"", NULL, "\"csi\\u009b\""},
        {"rlo\xe2\x80\xae", "\"rlo\\u202e\"", NULL, "\"rlo\\u202e\""},
        {"ls\xe2\x80\xa8", "\"ls\\u2028\"", NULL, "\"ls\\u2028\""},
        {"a=b", "\"a=b\"", NULL, "\"a=b\""},
        {"with space", "\"with space\"", NULL, "\"with space\""},
        {"[x],y", "\"[x],y\"", NULL, "\"[x],y\""},
        {"plain-value_1.2:3/4@x+y%z", "\"plain-value_1.2:3/4@x+y%z\"", NULL,
         "plain-value_1.2:3/4@x+y%z"},
    };
    char want[512];
    char *line;
    json_t *obj;
    size_t i;
    struct anchor_log_field f;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        f = ANCHOR_LOG_STR("v", rows[i].in);
        line = line_of(ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, "m", &f, 1);
        (void)snprintf(want, sizeof(want),
                       "{\"time\":\"2026-01-01T00:00:00.123Z\",\"level\":\"info\",\"msg\":\"m\","
                       "\"v\":%s}\n",
                       rows[i].json);
        assert_string_equal(line, want);
        obj = parse_json(line);
        assert_string_equal(json_string_value(json_object_get(obj, "v")),
                            rows[i].decoded != NULL ? rows[i].decoded : rows[i].in);
        json_decref(obj);
        free(line);

        line = line_of(ANCHOR_LOG_FORMAT_TEXT, ANCHOR_LOG_INFO, "m", &f, 1);
        (void)snprintf(want, sizeof(want), "2026-01-01T00:00:00.123Z INFO  m v=%s\n", rows[i].text);
        assert_string_equal(line, want);
        free(line);
    }
}

/* The message and the keys are escaped too: neither can forge a line. */
static void test_message_and_key_injection(void **state)
{
    struct anchor_log_field f = ANCHOR_LOG_STR("k\"\n", "v");
    char *line;
    json_t *obj;

    (void)state;
    line = line_of(ANCHOR_LOG_FORMAT_TEXT, ANCHOR_LOG_WARN,
                   "bad\n2026-01-01T00:00:00.000Z INFO  forged \x1b]0;t\x07 \\", &f, 1);
    assert_string_equal(line, "2026-01-01T00:00:00.123Z WARN  bad\\n2026-01-01T00:00:00.000Z "
                              "INFO  forged \\x1b]0;t\\x07 \\\\ k\"\\n=v\n");
    free(line);
    line = line_of(ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_WARN, "bad\n\"}{\"x", &f, 1);
    assert_string_equal(line, "{\"time\":\"2026-01-01T00:00:00.123Z\",\"level\":\"warn\","
                              "\"msg\":\"bad\\n\\\"}{\\\"x\",\"k\\\"\\n\":\"v\"}\n");
    obj = parse_json(line);
    assert_string_equal(json_string_value(json_object_get(obj, "msg")), "bad\n\"}{\"x");
    json_decref(obj);
    free(line);
    /* A NULL message is an empty one. */
    line = line_of(ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_ERROR, NULL, NULL, 0);
    assert_string_equal(line, "{\"time\":\"2026-01-01T00:00:00.123Z\",\"level\":\"error\","
                              "\"msg\":\"\"}\n");
    free(line);
}

/* Every byte value, alone and in pairs, gives valid JSON that reads back. */
static void test_all_bytes_give_valid_json(void **state)
{
    char in[3];
    char *line;
    json_t *obj;
    struct anchor_log_field f;
    int a, b;

    (void)state;
    for (a = 1; a < 256; a++) {
        for (b = 0; b < 256; b += (a < 0x80 ? 255 : 1)) {
            in[0] = (char)a;
            in[1] = (char)b;
            in[2] = '\0';
            f = ANCHOR_LOG_STR("v", in);
            line = line_of(ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, in, &f, 1);
            obj = parse_json(line);
            json_decref(obj);
            free(line);
            line = line_of(ANCHOR_LOG_FORMAT_TEXT, ANCHOR_LOG_INFO, in, &f, 1);
            for (size_t i = 0; line[i + 1] != '\0'; i++)
                assert_true((unsigned char)line[i] >= 0x20 && line[i] != 0x7f);
            free(line);
        }
    }
}

/* --- bounds ------------------------------------------------------------------ */

static void test_bounds(void **state)
{
    char *big = malloc(ANCHOR_LOG_MAX_VALUE + 100);
    const char *many[ANCHOR_LOG_MAX_ARRAY + 5];
    struct anchor_log_field fields[40];
    char *line;
    json_t *obj, *arr;
    size_t i;

    (void)state;
    assert_non_null(big);
    /* A long value is cut at the bound and marked. */
    memset(big, 'a', ANCHOR_LOG_MAX_VALUE + 99);
    big[ANCHOR_LOG_MAX_VALUE + 99] = '\0';
    fields[0] = ANCHOR_LOG_STR("v", big);
    line = line_of(ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, "m", fields, 1);
    obj = parse_json(line);
    assert_int_equal(strlen(json_string_value(json_object_get(obj, "v"))),
                     ANCHOR_LOG_MAX_VALUE + 3);
    assert_string_equal(json_string_value(json_object_get(obj, "v")) + ANCHOR_LOG_MAX_VALUE, "...");
    json_decref(obj);
    free(line);
    /* Exactly at the bound: whole, no mark. */
    big[ANCHOR_LOG_MAX_VALUE] = '\0';
    line = line_of(ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, "m", fields, 1);
    obj = parse_json(line);
    assert_string_equal(json_string_value(json_object_get(obj, "v")), big);
    json_decref(obj);
    free(line);
    /* The cut never splits a UTF-8 sequence. */
    memset(big, 'a', ANCHOR_LOG_MAX_VALUE + 99);
    memcpy(big + ANCHOR_LOG_MAX_VALUE - 1, "\xe2\x9c\x93", 3);
    line = line_of(ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, "m", fields, 1);
    assert_null(strstr(line, "\\ufffd"));
    obj = parse_json(line);
    assert_int_equal(strlen(json_string_value(json_object_get(obj, "v"))),
                     ANCHOR_LOG_MAX_VALUE - 1 + 3);
    json_decref(obj);
    free(line);

    /* A long array shows its first elements and a mark. */
    for (i = 0; i < ANCHOR_LOG_MAX_ARRAY + 5; i++)
        many[i] = "e";
    fields[0] = ANCHOR_LOG_STRS("arr", many, ANCHOR_LOG_MAX_ARRAY + 5);
    line = line_of(ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, "m", fields, 1);
    obj = parse_json(line);
    arr = json_object_get(obj, "arr");
    assert_int_equal(json_array_size(arr), ANCHOR_LOG_MAX_ARRAY + 1);
    assert_string_equal(json_string_value(json_array_get(arr, ANCHOR_LOG_MAX_ARRAY)), "...");
    json_decref(obj);
    free(line);

    /* Many large fields: the line stops before the cap, whole fields only. */
    memset(big, '"', ANCHOR_LOG_MAX_VALUE);
    big[ANCHOR_LOG_MAX_VALUE] = '\0';
    for (i = 0; i < 40; i++)
        fields[i] = ANCHOR_LOG_STR("quotes", big);
    line = line_of(ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, "m", fields, 40);
    assert_true(strlen(line) <= ANCHOR_LOG_MAX_LINE);
    assert_non_null(strstr(line, ",\"logTruncated\":true}\n"));
    obj = json_loads(line, 0, NULL); /* repeated keys are fine for this check */
    assert_non_null(obj);
    json_decref(obj);
    free(line);
    line = line_of(ANCHOR_LOG_FORMAT_TEXT, ANCHOR_LOG_INFO, "m", fields, 40);
    assert_true(strlen(line) <= ANCHOR_LOG_MAX_LINE);
    assert_non_null(strstr(line, " logTruncated=true\n"));
    free(line);
    free(big);
}

/* --- levels and settings ------------------------------------------------------ */

static void test_level_filtering(void **state)
{
    struct anchor_log *log = NULL;
    struct anchor_err err = {{0}};
    FILE *tmp = tmpfile();
    char buf[2048];
    size_t n;

    (void)state;
    assert_non_null(tmp);
    assert_int_equal(
        anchor_log_new(&log, fileno(tmp), ANCHOR_LOG_FORMAT_TEXT, ANCHOR_LOG_WARN, &err), 0);
    anchor_log_set_clock(log, fixed_clock, NULL);
    assert_false(anchor_log_enabled(log, ANCHOR_LOG_INFO));
    assert_true(anchor_log_enabled(log, ANCHOR_LOG_ERROR));
    anchor_log(log, ANCHOR_LOG_DEBUG, "d1", NULL, 0);
    anchor_log(log, ANCHOR_LOG_INFO, "i1", NULL, 0);
    anchor_log(log, ANCHOR_LOG_WARN, "w1", NULL, 0);
    anchor_log(log, ANCHOR_LOG_ERROR, "e1", NULL, 0);
    anchor_log_set_level(log, ANCHOR_LOG_DEBUG);
    anchor_log(log, ANCHOR_LOG_DEBUG, "d2", NULL, 0);
    anchor_log_set_level(log, ANCHOR_LOG_ERROR);
    anchor_log(log, ANCHOR_LOG_WARN, "w2", NULL, 0);
    anchor_log(log, (enum anchor_log_level)9, "bogus level", NULL, 0);
    assert_int_equal(anchor_log_dropped(log), 0);
    anchor_log_free(log);
    rewind(tmp);
    n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    assert_string_equal(buf, "2026-01-01T00:00:00.123Z WARN  w1\n"
                             "2026-01-01T00:00:00.123Z ERROR e1\n"
                             "2026-01-01T00:00:00.123Z DEBUG d2\n");
    fclose(tmp);
}

static void test_write_failure_counted(void **state)
{
    struct anchor_log *log = NULL;
    struct anchor_err err = {{0}};
    int fds[2];

    (void)state;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(close(fds[0]), 0);
    assert_int_equal(anchor_log_new(&log, fds[1], ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, &err),
                     0);
    /* The read end is gone: EPIPE (SIGPIPE ignored by the test). */
    anchor_log(log, ANCHOR_LOG_INFO, "lost", NULL, 0);
    assert_int_equal(anchor_log_dropped(log), 1);
    anchor_log_free(log);
    close(fds[1]);
    assert_int_equal(anchor_log_new(&log, -1, ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "invalid log descriptor -1");
}

static void test_setting_parsers(void **state)
{
    static const struct {
        const char *in;
        int ok;
        enum anchor_log_level lvl;
    } levels[] = {
        {"debug", 1, ANCHOR_LOG_DEBUG},
        {"INFO", 1, ANCHOR_LOG_INFO},
        {"warn", 1, ANCHOR_LOG_WARN},
        {"Warning", 1, ANCHOR_LOG_WARN},
        {"error", 1, ANCHOR_LOG_ERROR},
        {"trace", 0, 0},
        {"", 0, 0},
        {"info ", 0, 0},
    };
    enum anchor_log_level lvl;
    enum anchor_log_format fmt;
    struct anchor_err err = {{0}};
    char want[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (levels[i].ok) {
            assert_int_equal(anchor_log_level_parse(levels[i].in, &lvl, &err), 0);
            assert_int_equal(lvl, levels[i].lvl);
        } else {
            assert_int_equal(anchor_log_level_parse(levels[i].in, &lvl, &err), -1);
            (void)snprintf(want, sizeof(want), "unknown log level %s (debug, info, warn, error)",
                           levels[i].in);
            assert_string_equal(anchor_err_msg(&err), want);
        }
    }
    assert_int_equal(anchor_log_format_parse("json", &fmt, &err), 0);
    assert_int_equal(fmt, ANCHOR_LOG_FORMAT_JSON);
    assert_int_equal(anchor_log_format_parse("TEXT", &fmt, &err), 0);
    assert_int_equal(fmt, ANCHOR_LOG_FORMAT_TEXT);
    assert_int_equal(anchor_log_format_parse("logfmt", &fmt, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "unknown log format logfmt (json, text)");
    assert_string_equal(anchor_log_level_name(ANCHOR_LOG_WARN), "warn");
}

/* Hostile twins of the constructors and the formatter. */
static void test_bad_arguments_refused(void **state)
{
    struct anchor_log *log = NULL;
    struct anchor_err err = {{0}};
    char membuf[64];
    FILE *mem = fmemopen(membuf, sizeof(membuf), "w");
    char *line = NULL;
    size_t len = 0;

    (void)state;
    assert_non_null(mem);
    assert_int_equal(anchor_log_new_fp(&log, mem, ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, &err),
                     -1);
    assert_string_equal(anchor_err_msg(&err), "log stream has no file descriptor");
    fclose(mem);
    assert_int_equal(anchor_log_new(&log, 2, (enum anchor_log_format)7, ANCHOR_LOG_INFO, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "invalid log format 7");
    assert_int_equal(
        anchor_log_new(&log, 2, ANCHOR_LOG_FORMAT_TEXT, (enum anchor_log_level) - 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "invalid log level -1");
    assert_null(log);
    assert_int_equal(anchor_log_format_line(&line, &len, ANCHOR_LOG_FORMAT_JSON, &T0,
                                            (enum anchor_log_level)4, "m", NULL, 0, &err),
                     -1);
    assert_string_equal(anchor_err_msg(&err), "invalid log level 4");
    assert_int_equal(anchor_log_format_line(&line, &len, ANCHOR_LOG_FORMAT_JSON, &T0,
                                            ANCHOR_LOG_INFO, "m", NULL, 2, &err),
                     -1);
    assert_string_equal(anchor_err_msg(&err), "log fields are missing");
    assert_int_equal(anchor_log_format_line(&line, &len, (enum anchor_log_format)9, &T0,
                                            ANCHOR_LOG_INFO, "m", NULL, 0, &err),
                     -1);
    assert_string_equal(anchor_err_msg(&err), "invalid log format 9");
    assert_null(line);
    anchor_log_free(NULL);
}

/* Four processes append to one file: every line is whole. */
static void test_processes_do_not_interleave(void **state)
{
    char path[] = "/tmp/anchor-test-log-XXXXXX";
    int fd = mkstemp(path);
    int procs = 4, lines = 300, p, i, status, fd2;
    pid_t pids[4];
    FILE *f;
    char *buf = NULL;
    size_t cap = 0, count = 0;
    ssize_t got;
    json_t *obj;
    char filler[600];

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    memset(filler, 'f', sizeof(filler) - 1);
    filler[sizeof(filler) - 1] = '\0';
    for (p = 0; p < procs; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            struct anchor_log *log = NULL;

            fd2 = open(path, O_WRONLY | O_APPEND);
            if (fd2 < 0 ||
                anchor_log_new(&log, fd2, ANCHOR_LOG_FORMAT_JSON, ANCHOR_LOG_INFO, NULL) != 0)
                _exit(1);
            for (i = 0; i < lines; i++)
                ANCHOR_LOGF(log, ANCHOR_LOG_INFO, "line", ANCHOR_LOG_INT("proc", p),
                            ANCHOR_LOG_INT("i", i), ANCHOR_LOG_STR("filler", filler));
            anchor_log_free(log);
            _exit(0);
        }
    }
    for (p = 0; p < procs; p++) {
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    f = fopen(path, "r");
    assert_non_null(f);
    while ((got = getline(&buf, &cap, f)) > 0) {
        obj = parse_json(buf);
        assert_string_equal(json_string_value(json_object_get(obj, "filler")), filler);
        json_decref(obj);
        count++;
    }
    assert_int_equal(count, (size_t)(procs * lines));
    free(buf);
    fclose(f);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_types_exact),
        cmocka_unit_test(test_documented_lines),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_message_and_key_injection),
        cmocka_unit_test(test_all_bytes_give_valid_json),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_level_filtering),
        cmocka_unit_test(test_write_failure_counted),
        cmocka_unit_test(test_setting_parsers),
        cmocka_unit_test(test_bad_arguments_refused),
        cmocka_unit_test(test_processes_do_not_interleave),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
