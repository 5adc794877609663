/*
 * Reading server.yaml with libyaml's event parser. The file is a mapping of
 * settings with one nested mapping, `ca:`; every value is a scalar. The
 * reader only collects raw strings (server_config.c converts and checks
 * them), and it is strict so that a typo is an error, never a default.
 */
#include "server_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define MAX_CONFIG_BYTES ((size_t)256 * 1024)

struct yreader {
    yaml_parser_t p;
    yaml_event_t ev;
    int have_ev;
    const char *path;
};

static int next_event(struct yreader *y, struct anchor_err *err)
{
    if (y->have_ev)
        yaml_event_delete(&y->ev);
    y->have_ev = 0;
    if (!yaml_parser_parse(&y->p, &y->ev)) {
        anchor_err_set(err, "%s: invalid YAML at line %zu, column %zu: %s", y->path,
                       y->p.problem_mark.line + 1, y->p.problem_mark.column + 1,
                       y->p.problem != NULL ? y->p.problem : "syntax error");
        return -1;
    }
    y->have_ev = 1;
    if (y->ev.type == YAML_ALIAS_EVENT) {
        anchor_err_set(err, "%s: line %zu: YAML anchors and aliases are not allowed", y->path,
                       y->ev.start_mark.line + 1);
        return -1;
    }
    if ((y->ev.type == YAML_SCALAR_EVENT && y->ev.data.scalar.anchor != NULL) ||
        (y->ev.type == YAML_MAPPING_START_EVENT && y->ev.data.mapping_start.anchor != NULL) ||
        (y->ev.type == YAML_SEQUENCE_START_EVENT && y->ev.data.sequence_start.anchor != NULL)) {
        anchor_err_set(err, "%s: line %zu: YAML anchors and aliases are not allowed", y->path,
                       y->ev.start_mark.line + 1);
        return -1;
    }
    if ((y->ev.type == YAML_SCALAR_EVENT && y->ev.data.scalar.tag != NULL) ||
        (y->ev.type == YAML_MAPPING_START_EVENT && y->ev.data.mapping_start.tag != NULL) ||
        (y->ev.type == YAML_SEQUENCE_START_EVENT && y->ev.data.sequence_start.tag != NULL)) {
        anchor_err_set(err, "%s: line %zu: YAML tags are not allowed", y->path,
                       y->ev.start_mark.line + 1);
        return -1;
    }
    return 0;
}

size_t config_find_row(const char *section, const char *key)
{
    for (size_t i = 0; i < CONFIG_NROWS; i++) {
        int same_section = (section == NULL && CONFIG_ROWS[i].section == NULL) ||
                           (section != NULL && CONFIG_ROWS[i].section != NULL &&
                            strcmp(section, CONFIG_ROWS[i].section) == 0);
        if (same_section && strcmp(CONFIG_ROWS[i].key, key) == 0)
            return i;
    }
    return CONFIG_NROWS;
}

/* Reads one mapping (the top level, or `ca:`) whose MAPPING_START was the
 * last event. */
static int read_mapping(struct yreader *y, const char *section, struct config_raw *raw, int *seen,
                        struct anchor_err *err)
{
    int ca_seen = 0;

    for (size_t guard = 0; guard < 4 * CONFIG_NROWS + 8; guard++) {
        char key[64];
        size_t line;
        size_t i;

        if (next_event(y, err) != 0)
            return -1;
        if (y->ev.type == YAML_MAPPING_END_EVENT)
            return 0;
        line = y->ev.start_mark.line + 1;
        if (y->ev.type != YAML_SCALAR_EVENT) {
            anchor_err_set(err, "%s: line %zu: expected a key", y->path, line);
            return -1;
        }
        (void)snprintf(key, sizeof(key), "%s", (const char *)y->ev.data.scalar.value);
        if (section == NULL && strcmp(key, "ca") == 0) {
            if (ca_seen) {
                anchor_err_set(err, "%s: line %zu: duplicate key \"ca\"", y->path, line);
                return -1;
            }
            ca_seen = 1;
            if (next_event(y, err) != 0)
                return -1;
            if (y->ev.type != YAML_MAPPING_START_EVENT) {
                anchor_err_set(err, "%s: line %zu: ca: expected a mapping", y->path, line);
                return -1;
            }
            if (read_mapping(y, "ca", raw, seen, err) != 0)
                return -1;
            continue;
        }
        i = config_find_row(section, key);
        if (i == CONFIG_NROWS) {
            anchor_err_set(err, "%s: line %zu: unknown key \"%s%s%s\"", y->path, line,
                           section != NULL ? section : "", section != NULL ? "." : "", key);
            return -1;
        }
        if (seen[i]) {
            anchor_err_set(err, "%s: line %zu: duplicate key \"%s%s%s\"", y->path, line,
                           section != NULL ? section : "", section != NULL ? "." : "", key);
            return -1;
        }
        seen[i] = 1;
        if (next_event(y, err) != 0)
            return -1;
        if (y->ev.type != YAML_SCALAR_EVENT) {
            anchor_err_set(err, "%s: line %zu: %s: expected a scalar value", y->path, line, key);
            return -1;
        }
        if (strlen((const char *)y->ev.data.scalar.value) != y->ev.data.scalar.length) {
            anchor_err_set(err, "%s: line %zu: %s: NUL byte in value", y->path, line, key);
            return -1;
        }
        {
            char where[64];
            if (snprintf(where, sizeof(where), "%s%s%s", section != NULL ? section : "",
                         section != NULL ? "." : "", key) < 0)
                where[0] = '\0';
            if (config_set_raw(raw, i, (const char *)y->ev.data.scalar.value, where, err) != 0)
                return -1;
        }
    }
    anchor_err_set(err, "%s: too many keys", y->path);
    return -1;
}

static int read_file(const char *path, char **out, size_t *out_len, struct anchor_err *err)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;

    if (fp == NULL) {
        anchor_err_set(err, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    buf = malloc(MAX_CONFIG_BYTES + 1);
    if (buf == NULL) {
        (void)fclose(fp);
        anchor_err_set(err, "out of memory");
        return -1;
    }
    len = fread(buf, 1, MAX_CONFIG_BYTES + 1, fp);
    if (ferror(fp)) {
        anchor_err_set(err, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    if (len > MAX_CONFIG_BYTES) {
        anchor_err_set(err, "%s: file too large (at most %zu bytes)", path, MAX_CONFIG_BYTES);
        goto fail;
    }
    (void)fclose(fp);
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
fail:
    (void)fclose(fp);
    free(buf);
    return -1;
}

int config_read_yaml(const char *path, struct config_raw *raw, struct anchor_err *err)
{
    struct yreader y = {.path = path};
    int seen[CONFIG_NROWS] = {0};
    char *text = NULL;
    size_t len = 0;
    int rc = -1;

    if (read_file(path, &text, &len, err) != 0)
        return -1;
    if (!yaml_parser_initialize(&y.p)) {
        free(text);
        anchor_err_set(err, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
    if (next_event(&y, err) != 0 || y.ev.type != YAML_STREAM_START_EVENT)
        goto out;
    if (next_event(&y, err) != 0)
        goto out;
    if (y.ev.type == YAML_STREAM_END_EVENT) {
        rc = 0; /* an empty file sets nothing */
        goto out;
    }
    if (next_event(&y, err) != 0)
        goto out;
    if (y.ev.type == YAML_SCALAR_EVENT && y.ev.data.scalar.length == 0) {
        rc = 0; /* a document holding only comments */
        goto out;
    }
    if (y.ev.type != YAML_MAPPING_START_EVENT) {
        anchor_err_set(err, "%s: line %zu: expected a mapping of settings", path,
                       y.ev.start_mark.line + 1);
        goto out;
    }
    if (read_mapping(&y, NULL, raw, seen, err) != 0)
        goto out;
    if (next_event(&y, err) != 0) /* DOCUMENT_END */
        goto out;
    if (next_event(&y, err) != 0)
        goto out;
    if (y.ev.type != YAML_STREAM_END_EVENT) {
        anchor_err_set(err, "%s: line %zu: more than one YAML document in the file", path,
                       y.ev.start_mark.line + 1);
        goto out;
    }
    rc = 0;
out:
    if (y.have_ev)
        yaml_event_delete(&y.ev);
    yaml_parser_delete(&y.p);
    free(text);
    return rc;
}
