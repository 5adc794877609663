/*
 * Internal interface of the agent configuration reader (agent_config.h),
 * shared by its two files: settings.c (the scalar settings, one table for the
 * file and the flags) and agent_config.c (the YAML document and its two
 * forms). Not a public header.
 */
#ifndef ANCHOR_AGENTCFG_INTERNAL_H
#define ANCHOR_AGENTCFG_INTERNAL_H

#include <stddef.h>

#include "anchor/agent_config.h"

/* One scalar setting: its key (as in the file and as a --flag), whether it
 * is a boolean, and its setter, which checks the value and stores a copy.
 * `where` names the setting in messages. */
struct anchor__agentcfg_setting {
    const char *key;
    int is_bool;
    int (*set)(struct anchor_agent_config *cfg, const char *v, size_t len, const char *where,
               struct anchor_err *err);
};

/* The setting named key, or NULL. */
const struct anchor__agentcfg_setting *anchor__agentcfg_find_setting(const char *key);

/* Checks a string value as every setting needs it: not empty, at most
 * ANCHOR_AGENT_CONFIG_MAX_VALUE bytes, no NUL or control character.
 * Messages: "<where>: a value is required", "<where>: longer than N bytes",
 * "<where>: control characters are not allowed". */
int anchor__agentcfg_check_text(const char *s, size_t len, const char *where,
                                struct anchor_err *err);

/* Checks and stores a cluster id (shared by cluster-id and
 * agent.auth.clusterId). */
int anchor__agentcfg_set_cluster_id(struct anchor_agent_config *cfg, const char *v, size_t len,
                                    const char *where, struct anchor_err *err);

/* A new NUL-terminated copy of s[0..len), or NULL. */
char *anchor__agentcfg_dup(const char *s, size_t len);

/* Frees *slot and stores value there. */
void anchor__agentcfg_replace(char **slot, char *value);

#endif
