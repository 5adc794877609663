/*
 * Private to server_config.c and server_config_yaml.c: the table of settings
 * and the raw values read from the file or the command line, before they
 * are converted and checked.
 */
#ifndef ANCHOR_SERVER_CONFIG_H
#define ANCHOR_SERVER_CONFIG_H

#include <stddef.h>

#include "server.h"

enum config_kind { K_STR, K_MS, K_SEC, K_LEVEL, K_FORMAT, K_KEYTYPE };

/* One setting: its YAML key (nested under `ca:` when section is "ca"), its
 * --flag, its kind, and the offset of its field in struct server_config. */
struct config_row {
    const char *section;
    const char *key;
    const char *flag;
    enum config_kind kind;
    size_t off;
};

#define CONFIG_NROWS 19
extern const struct config_row CONFIG_ROWS[CONFIG_NROWS];

/* The raw value of each row (NULL: not given) and where it came from, for
 * messages ("--login-timeout", "ca.key-type"). */
struct config_raw {
    char *v[CONFIG_NROWS];
    char where[CONFIG_NROWS][64];
};

/* Replaces raw value i with a copy of value. */
int config_set_raw(struct config_raw *raw, size_t i, const char *value, const char *where,
                   struct anchor_err *err);

/* The row of `key` in `section` (NULL: top level), or CONFIG_NROWS. */
size_t config_find_row(const char *section, const char *key);

/* Reads server.yaml at path into raw, strictly: unknown and duplicate keys,
 * non-scalar values, anchors, aliases, tags and several documents are
 * errors naming the file and line. */
int config_read_yaml(const char *path, struct config_raw *raw, struct anchor_err *err);

#endif
