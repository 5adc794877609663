/*
 * The scalar settings of agent.yaml (agent_config.h): one table of setters,
 * used for the keys of the file and for the command-line flags alike, so a
 * value is checked in one place whatever its source. Also the host:port
 * splitter of server-address and metrics-address.
 */
#include "agentcfg/internal.h"
#include "anchor/spiffeid.h"
#include "policy/ytree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *anchor__agentcfg_dup(const char *s, size_t len)
{
    char *d = malloc(len + 1);

    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

void anchor__agentcfg_replace(char **slot, char *value)
{
    free(*slot);
    *slot = value;
}

static int has_control_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f)
            return 1;
    }
    return 0;
}

/* Checks a string value as every setting needs it: not empty, not too long,
 * no NUL or control character. `where` names the setting. */
int anchor__agentcfg_check_text(const char *s, size_t len, const char *where,
                                struct anchor_err *err)
{
    if (len == 0) {
        anchor_err_set(err, "%s: a value is required", where);
        return -1;
    }
    if (len > ANCHOR_AGENT_CONFIG_MAX_VALUE) {
        anchor_err_set(err, "%s: longer than %d bytes", where, ANCHOR_AGENT_CONFIG_MAX_VALUE);
        return -1;
    }
    if (memchr(s, '\0', len) != NULL || has_control_chars(s, len)) {
        anchor_err_set(err, "%s: control characters are not allowed", where);
        return -1;
    }
    return 0;
}

/* The string scalar of a present node: "<where>: a value is required" when
 * null, "<where>: expected a string (got ...)" for a list, mapping or
 * boolean, then check_text. Borrowed from the tree. */
int anchor_agent_config_split_address(const char *addr, char **host, uint16_t *port,
                                      struct anchor_err *err)
{
    const char *colon;
    const char *h;
    size_t hlen;
    unsigned long p = 0;
    char q[128];
    char *copy;

    anchor__ytree_quote(q, sizeof(q), addr, strlen(addr));
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');

        if (close == NULL || close[1] != ':') {
            anchor_err_set(err, "expected host:port (got \"%s\")", q);
            return -1;
        }
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)) != NULL) {
            anchor_err_set(err, "expected host:port (got \"%s\")", q);
            return -1;
        }
        h = addr;
        hlen = (size_t)(colon - addr);
    }
    if (hlen == 0 || memchr(h, ' ', hlen) != NULL) {
        anchor_err_set(err, "expected host:port (got \"%s\")", q);
        return -1;
    }
    /* Digits only, no sign or leading zero, so that "+80" or "080" are not
     * read as something the operator did not write. */
    if (colon[1] == '\0' || colon[1] == '0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5) {
        anchor_err_set(err, "invalid port in \"%s\" (1 to 65535)", q);
        return -1;
    }
    for (const char *c = colon + 1; *c != '\0'; c++)
        p = p * 10 + (unsigned long)(*c - '0');
    if (p < 1 || p > 65535) {
        anchor_err_set(err, "invalid port in \"%s\" (1 to 65535)", q);
        return -1;
    }
    copy = anchor__agentcfg_dup(h, hlen);
    if (copy == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    *host = copy;
    *port = (uint16_t)p;
    return 0;
}

/* --- the scalar settings ------------------------------------------------------ */

static int set_path(char **slot, const char *v, size_t len, const char *where,
                    struct anchor_err *err)
{
    char *d;

    (void)where;
    d = anchor__agentcfg_dup(v, len);
    if (d == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    anchor__agentcfg_replace(slot, d);
    return 0;
}

static int set_trust_domain(struct anchor_agent_config *cfg, const char *v, size_t len,
                            const char *where, struct anchor_err *err)
{
    if (anchor_trust_domain_validate(v, len, err) != 0) {
        anchor_err_prefix(err, where);
        return -1;
    }
    return set_path(&cfg->trust_domain, v, len, where, err);
}

static int set_address(char **addr_slot, char **host_slot, uint16_t *port_slot, const char *v,
                       size_t len, const char *where, struct anchor_err *err)
{
    char *addr = anchor__agentcfg_dup(v, len);
    char *host = NULL;
    uint16_t port = 0;

    if (addr == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    if (anchor_agent_config_split_address(addr, &host, &port, err) != 0) {
        free(addr);
        anchor_err_prefix(err, where);
        return -1;
    }
    anchor__agentcfg_replace(addr_slot, addr);
    anchor__agentcfg_replace(host_slot, host);
    *port_slot = port;
    return 0;
}

static int set_server_address(struct anchor_agent_config *cfg, const char *v, size_t len,
                              const char *where, struct anchor_err *err)
{
    return set_address(&cfg->server_address, &cfg->server_host, &cfg->server_port, v, len, where,
                       err);
}

static int set_metrics_address(struct anchor_agent_config *cfg, const char *v, size_t len,
                               const char *where, struct anchor_err *err)
{
    return set_address(&cfg->metrics_address, &cfg->metrics_host, &cfg->metrics_port, v, len, where,
                       err);
}

static int set_trust_bundle_path(struct anchor_agent_config *cfg, const char *v, size_t len,
                                 const char *where, struct anchor_err *err)
{
    return set_path(&cfg->trust_bundle_path, v, len, where, err);
}

static int set_data_dir(struct anchor_agent_config *cfg, const char *v, size_t len,
                        const char *where, struct anchor_err *err)
{
    return set_path(&cfg->data_dir, v, len, where, err);
}

int anchor__agentcfg_set_cluster_id(struct anchor_agent_config *cfg, const char *v, size_t len,
                                    const char *where, struct anchor_err *err)
{
    char q[128];

    anchor__ytree_quote(q, sizeof(q), v, len);
    if (len > ANCHOR_AGENT_CONFIG_MAX_CLUSTER_ID ||
        strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len) {
        anchor_err_set(err,
                       "%s: invalid cluster id \"%s\" (1 to %d letters, digits, '.', '_' or '-')",
                       where, q, ANCHOR_AGENT_CONFIG_MAX_CLUSTER_ID);
        return -1;
    }
    return set_path(&cfg->cluster_id, v, len, where, err);
}

static int set_log_level(struct anchor_agent_config *cfg, const char *v, size_t len,
                         const char *where, struct anchor_err *err)
{
    enum anchor_log_level lvl;

    (void)len;
    if (anchor_log_level_parse(v, &lvl, err) != 0) {
        anchor_err_prefix(err, where);
        return -1;
    }
    cfg->log_level = lvl;
    return 0;
}

static int set_log_format(struct anchor_agent_config *cfg, const char *v, size_t len,
                          const char *where, struct anchor_err *err)
{
    enum anchor_log_format fmt;

    (void)len;
    if (anchor_log_format_parse(v, &fmt, err) != 0) {
        anchor_err_prefix(err, where);
        return -1;
    }
    cfg->log_format = fmt;
    return 0;
}

/* YAML 1.2's booleans only: yes/no/on/off mean different things to
 * different readers, so they are refused here. */
static int set_disable_k8s(struct anchor_agent_config *cfg, const char *v, size_t len,
                           const char *where, struct anchor_err *err)
{
    char q[128];

    if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0) {
        cfg->disable_kubernetes_attestation = 1;
        return 0;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0) {
        cfg->disable_kubernetes_attestation = 0;
        return 0;
    }
    anchor__ytree_quote(q, sizeof(q), v, len);
    anchor_err_set(err, "%s: expected true or false (got \"%s\")", where, q);
    return -1;
}

static const struct anchor__agentcfg_setting settings[] = {
    {"trust-domain", 0, set_trust_domain},
    {"server-address", 0, set_server_address},
    {"trust-bundle-path", 0, set_trust_bundle_path},
    {"data-dir", 0, set_data_dir},
    {"log-level", 0, set_log_level},
    {"log-format", 0, set_log_format},
    {"metrics-address", 0, set_metrics_address},
    {"cluster-id", 0, anchor__agentcfg_set_cluster_id},
    {"disable-kubernetes-attestation", 1, set_disable_k8s},
};

const struct anchor__agentcfg_setting *anchor__agentcfg_find_setting(const char *key)
{
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    }
    return NULL;
}

int anchor_agent_config_set(struct anchor_agent_config *cfg, const char *key, const char *value,
                            struct anchor_err *err)
{
    const struct anchor__agentcfg_setting *s = anchor__agentcfg_find_setting(key);
    char q[128];
    size_t len = strlen(value);

    if (s == NULL) {
        anchor__ytree_quote(q, sizeof(q), key, strlen(key));
        anchor_err_set(err, "unknown setting \"%s\"", q);
        return -1;
    }
    if (anchor__agentcfg_check_text(value, len, s->key, err) != 0)
        return -1;
    return s->set(cfg, value, len, s->key, err);
}
