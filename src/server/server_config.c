/*
 * server.yaml and the command line of anchor-server.
 *
 * Every setting is one row of the table below: its YAML key (nested under
 * `ca:` for the CA's), its --flag, and its kind. Reading happens in two steps
 * so that a value is checked in one place whatever its source: the file
 * (server_config_yaml.c, strict) and then the flags fill a raw string per row
 * (a flag overrides the file), and then every row is converted and checked.
 */
#include "server_config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/spiffeid.h"

#define F(field) offsetof(struct server_config, field)

const struct config_row CONFIG_ROWS[] = {
    {NULL, "trust-domain", "trust-domain", K_STR, F(trust_domain)},
    {NULL, "cluster-id", "cluster-id", K_STR, F(cluster_id)},
    {NULL, "listen-address", "listen-address", K_STR, F(listen_address)},
    {NULL, "admin-socket", "admin-socket", K_STR, F(admin_socket)},
    {NULL, "admin-group", "admin-group", K_STR, F(admin_group)},
    {NULL, "data-dir", "data-dir", K_STR, F(data_dir)},
    {NULL, "datastore", "datastore", K_STR, F(datastore)},
    {NULL, "metrics-address", "metrics-address", K_STR, F(metrics_address)},
    {NULL, "log-level", "log-level", K_LEVEL, F(log_level)},
    {NULL, "log-format", "log-format", K_FORMAT, F(log_format)},
    {NULL, "login-timeout", "login-timeout", K_MS, F(login_timeout_ms)},
    {NULL, "config-poll-interval", "config-poll-interval", K_MS, F(config_poll_ms)},
    {"ca", "key-type", "ca-key-type", K_KEYTYPE, F(ca_key_type)},
    {"ca", "root-ttl", "ca-root-ttl", K_SEC, F(ca_root_ttl)},
    {"ca", "agent-svid-ttl", "ca-agent-svid-ttl", K_SEC, F(agent_svid_ttl)},
    {"ca", "server-cert-ttl", "ca-server-cert-ttl", K_SEC, F(server_cert_ttl)},
    {"ca", "upstream-cert", "ca-upstream-cert", K_STR, F(ca_upstream_cert)},
    {"ca", "upstream-key", "ca-upstream-key", K_STR, F(ca_upstream_key)},
    {"ca", "upstream-bundle", "ca-upstream-bundle", K_STR, F(ca_upstream_bundle)},
};
_Static_assert(sizeof(CONFIG_ROWS) / sizeof(CONFIG_ROWS[0]) == CONFIG_NROWS,
               "CONFIG_NROWS must be the number of rows");

static const char USAGE[] =
    "usage: anchor-server [--config FILE] [--FLAG VALUE]...\n"
    "\n"
    "Every key of server.yaml is also a flag (the ca keys as --ca-KEY):\n"
    "  --trust-domain NAME        trust domain (required)\n"
    "  --cluster-id ID            this server's cluster (required)\n"
    "  --listen-address H:P       agent API, TLS 1.3 [" SERVER_DEFAULT_LISTEN_ADDRESS "]\n"
    "  --admin-socket PATH        admin API [" SERVER_DEFAULT_ADMIN_SOCKET "]\n"
    "  --admin-group GROUP        group also allowed on the admin socket\n"
    "  --data-dir DIR             CA files and the SQLite store [" SERVER_DEFAULT_DATA_DIR "]\n"
    "  --datastore URL            [sqlite://<data-dir>/anchor.db]\n"
    "  --metrics-address H:P      /metrics, /health/* [" SERVER_DEFAULT_METRICS_ADDRESS "]\n"
    "  --log-level LEVEL          debug, info, warn, error [info]\n"
    "  --log-format FORMAT        json, text [json]\n"
    "  --login-timeout DURATION   a Login must finish within it [30s]\n"
    "  --config-poll-interval D   config watcher interval [1s]\n"
    "  --ca-key-type TYPE         ec-p256, rsa-2048 [ec-p256]\n"
    "  --ca-root-ttl DURATION     self-signed root lifetime [43800h]\n"
    "  --ca-agent-svid-ttl D      agent SVID lifetime [1h]\n"
    "  --ca-server-cert-ttl D     server TLS certificate lifetime [24h]\n"
    "  --ca-upstream-cert FILE    upstream CA certificate chain (PEM)\n"
    "  --ca-upstream-key FILE     upstream CA key (PEM)\n"
    "  --ca-upstream-bundle FILE  upstream roots (PEM)\n"
    "Durations: a number of seconds, or a number followed by ms, s, m, h or d.\n";

int config_set_raw(struct config_raw *raw, size_t i, const char *value, const char *where,
                   struct anchor_err *err)
{
    char *copy = strdup(value);

    if (copy == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    free(raw->v[i]);
    raw->v[i] = copy;
    /* Where the value came from, for messages; a cut one is still useful. */
    if (snprintf(raw->where[i], sizeof(raw->where[i]), "%s", where) < 0)
        raw->where[i][0] = '\0';
    return 0;
}

/* --- conversion ---------------------------------------------------------------- */

/* Reads a duration: digits, then optionally ms, s, m, h or d (no suffix:
 * seconds). Writes milliseconds. */
static int parse_duration_ms(const char *s, long *out)
{
    char *end = NULL;
    long long n;
    long long mult;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno != 0 || n < 0)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return -1;
    if (n > LONG_MAX / mult)
        return -1;
    *out = (long)(n * mult);
    return 0;
}

static int convert_row(struct server_config *cfg, size_t i, const char *v, const char *where,
                       struct anchor_err *err)
{
    void *field = (char *)cfg + CONFIG_ROWS[i].off;
    struct anchor_err sub;
    long ms = 0;

    anchor_err_clear(&sub);
    switch (CONFIG_ROWS[i].kind) {
    case K_STR: {
        char **sp = field;
        char *copy = strdup(v);
        if (copy == NULL) {
            anchor_err_set(err, "out of memory");
            return -1;
        }
        free(*sp);
        *sp = copy;
        return 0;
    }
    case K_MS:
    case K_SEC:
        if (parse_duration_ms(v, &ms) != 0 || ms <= 0) {
            anchor_err_set(err, "%s: invalid duration \"%s\" (e.g. 30s, 500ms, 1h)", where, v);
            return -1;
        }
        if (CONFIG_ROWS[i].kind == K_MS) {
            *(long *)field = ms;
        } else {
            if (ms % 1000 != 0 || ms / 1000 > SERVER_MAX_TTL * 10L) {
                anchor_err_set(err, "%s: invalid duration \"%s\" (whole seconds, at most 10y)",
                               where, v);
                return -1;
            }
            *(long *)field = ms / 1000;
        }
        return 0;
    case K_LEVEL:
        if (anchor_log_level_parse(v, field, &sub) != 0) {
            anchor_err_set(err, "%s: %s", where, anchor_err_msg(&sub));
            return -1;
        }
        return 0;
    case K_FORMAT:
        if (anchor_log_format_parse(v, field, &sub) != 0) {
            anchor_err_set(err, "%s: %s", where, anchor_err_msg(&sub));
            return -1;
        }
        return 0;
    case K_KEYTYPE:
        if (anchor_key_type_parse(field, v, &sub) != 0) {
            anchor_err_set(err, "%s: %s", where, anchor_err_msg(&sub));
            return -1;
        }
        return 0;
    }
    return -1;
}

static int set_default(char **field, const char *value, struct anchor_err *err)
{
    if (*field != NULL)
        return 0;
    *field = strdup(value);
    if (*field == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    return 0;
}

int server_split_hostport(const char *addr, char **host, uint16_t *port, struct anchor_err *err)
{
    const char *colon = strrchr(addr, ':');
    const char *h = addr;
    size_t hlen;
    char *end = NULL;
    long p;

    if (colon == NULL) {
        anchor_err_set(err, "invalid address \"%s\" (expected host:port)", addr);
        return -1;
    }
    hlen = (size_t)(colon - addr);
    if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
        h = addr + 1;
        hlen -= 2;
    }
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > 65535) {
        anchor_err_set(err, "invalid address \"%s\" (bad port)", addr);
        return -1;
    }
    if (hlen == 0 || (hlen == 1 && h[0] == '*')) {
        *host = NULL;
    } else {
        *host = strndup(h, hlen);
        if (*host == NULL) {
            anchor_err_set(err, "out of memory");
            return -1;
        }
    }
    *port = (uint16_t)p;
    return 0;
}

static int check_config(struct server_config *cfg, struct anchor_err *err)
{
    struct anchor_err sub;
    char *host = NULL;
    uint16_t port;

    anchor_err_clear(&sub);
    if (cfg->trust_domain == NULL || cfg->trust_domain[0] == '\0') {
        anchor_err_set(err, "trust-domain is required");
        return -1;
    }
    if (anchor_trust_domain_validate(cfg->trust_domain, strlen(cfg->trust_domain), &sub) != 0) {
        anchor_err_set(err, "trust-domain: %s", anchor_err_msg(&sub));
        return -1;
    }
    if (cfg->cluster_id == NULL || cfg->cluster_id[0] == '\0') {
        anchor_err_set(err, "cluster-id is required");
        return -1;
    }
    if (strlen(cfg->cluster_id) > ANCHOR_STORE_MAX_NAME_BYTES) {
        anchor_err_set(err, "cluster-id: too long (at most %d bytes)", ANCHOR_STORE_MAX_NAME_BYTES);
        return -1;
    }
    for (const char *c = cfg->cluster_id; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.')) {
            anchor_err_set(err,
                           "cluster-id: invalid character in \"%s\" (allowed: "
                           "letters, digits, '-', '_', '.')",
                           cfg->cluster_id);
            return -1;
        }
    }
    if (server_split_hostport(cfg->listen_address, &host, &port, &sub) != 0) {
        anchor_err_set(err, "listen-address: %s", anchor_err_msg(&sub));
        return -1;
    }
    free(host);
    host = NULL;
    if (cfg->metrics_address[0] != '\0' && strcmp(cfg->metrics_address, "off") != 0) {
        if (server_split_hostport(cfg->metrics_address, &host, &port, &sub) != 0) {
            anchor_err_set(err, "metrics-address: %s", anchor_err_msg(&sub));
            return -1;
        }
        free(host);
    }
    if ((cfg->ca_upstream_cert == NULL) != (cfg->ca_upstream_key == NULL)) {
        anchor_err_set(err, "ca.upstream-cert and ca.upstream-key must be given together");
        return -1;
    }
    if (cfg->ca_upstream_bundle != NULL && cfg->ca_upstream_cert == NULL) {
        anchor_err_set(err, "ca.upstream-bundle needs ca.upstream-cert and ca.upstream-key");
        return -1;
    }
    if (cfg->agent_svid_ttl > SERVER_MAX_TTL || cfg->server_cert_ttl > SERVER_MAX_TTL) {
        anchor_err_set(err, "ca: SVID and server certificate TTLs are at most 8760h");
        return -1;
    }
    if (cfg->agent_svid_ttl < 60 || cfg->server_cert_ttl < 60) {
        anchor_err_set(err, "ca: SVID and server certificate TTLs are at least 60s");
        return -1;
    }
    if (strncmp(cfg->datastore, "sqlite://", 9) != 0 &&
        strncmp(cfg->datastore, "postgres://", 11) != 0 &&
        strncmp(cfg->datastore, "postgresql://", 13) != 0) {
        anchor_err_set(err, "datastore: unsupported URL \"%s\" (expected sqlite://PATH)",
                       cfg->datastore);
        return -1;
    }
    return 0;
}

/* --- the command line ----------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct config_raw *raw, char **config_path,
                      int *exit_now, struct anchor_err *err)
{
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        const char *name;
        const char *value;
        size_t name_len;
        const char *eq;
        size_t i;
        char where[80];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            (void)fputs(USAGE, stdout);
            *exit_now = 1;
            return 0;
        }
        if (strcmp(arg, "--version") == 0) {
            (void)printf("anchor-server %s\n", "0.1.0");
            *exit_now = 1;
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            anchor_err_set(err, "unexpected argument \"%s\"", arg);
            return -1;
        }
        name = arg + 2;
        eq = strchr(name, '=');
        name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if (eq != NULL) {
            value = eq + 1;
        } else {
            if (a + 1 >= argc) {
                anchor_err_set(err, "--%.*s needs a value", (int)name_len, name);
                return -1;
            }
            value = argv[++a];
        }
        if (name_len == 6 && strncmp(name, "config", 6) == 0) {
            char *copy = strdup(value);
            if (copy == NULL) {
                anchor_err_set(err, "out of memory");
                return -1;
            }
            free(*config_path);
            *config_path = copy;
            continue;
        }
        for (i = 0; i < CONFIG_NROWS; i++) {
            if (strlen(CONFIG_ROWS[i].flag) == name_len &&
                strncmp(CONFIG_ROWS[i].flag, name, name_len) == 0)
                break;
        }
        if (i == CONFIG_NROWS) {
            anchor_err_set(err, "unknown flag \"--%.*s\"", (int)name_len, name);
            return -1;
        }
        (void)snprintf(where, sizeof(where), "--%s", CONFIG_ROWS[i].flag);
        if (config_set_raw(raw, i, value, where, err) != 0)
            return -1;
    }
    return 0;
}

int server_config_load(struct server_config *cfg, int argc, char **argv, int *exit_now,
                       struct anchor_err *err)
{
    struct config_raw file_raw;
    struct config_raw flag_raw;
    char *config_path = NULL;
    char dbbuf[4200];
    int rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    memset(&file_raw, 0, sizeof(file_raw));
    memset(&flag_raw, 0, sizeof(flag_raw));
    *exit_now = 0;
    cfg->log_level = ANCHOR_LOG_INFO;
    cfg->log_format = ANCHOR_LOG_FORMAT_JSON;
    cfg->login_timeout_ms = SERVER_DEFAULT_LOGIN_TIMEOUT;
    cfg->config_poll_ms = SERVER_DEFAULT_CONFIG_POLL_MS;
    cfg->ca_key_type = ANCHOR_KEY_EC_P256;
    cfg->ca_root_ttl = ANCHOR_CA_DEFAULT_ROOT_TTL;
    cfg->agent_svid_ttl = SERVER_DEFAULT_AGENT_SVID_TTL;
    cfg->server_cert_ttl = SERVER_DEFAULT_SERVER_CERT_TTL;

    if (parse_args(argc, argv, &flag_raw, &config_path, exit_now, err) != 0)
        goto out;
    if (*exit_now) {
        rc = 0;
        goto out;
    }
    if (config_path != NULL && config_read_yaml(config_path, &file_raw, err) != 0)
        goto out;
    cfg->config_path = config_path;
    config_path = NULL;
    for (size_t i = 0; i < CONFIG_NROWS; i++) {
        char where[200];
        const char *v = flag_raw.v[i] != NULL ? flag_raw.v[i] : file_raw.v[i];
        if (v == NULL)
            continue;
        if (flag_raw.v[i] != NULL)
            (void)snprintf(where, sizeof(where), "%s", flag_raw.where[i]);
        else
            (void)snprintf(where, sizeof(where), "%s: %s", cfg->config_path, file_raw.where[i]);
        if (convert_row(cfg, i, v, where, err) != 0)
            goto out;
    }
    if (set_default(&cfg->listen_address, SERVER_DEFAULT_LISTEN_ADDRESS, err) != 0 ||
        set_default(&cfg->admin_socket, SERVER_DEFAULT_ADMIN_SOCKET, err) != 0 ||
        set_default(&cfg->data_dir, SERVER_DEFAULT_DATA_DIR, err) != 0 ||
        set_default(&cfg->metrics_address, SERVER_DEFAULT_METRICS_ADDRESS, err) != 0)
        goto out;
    (void)snprintf(dbbuf, sizeof(dbbuf), "sqlite://%s/anchor.db", cfg->data_dir);
    if (set_default(&cfg->datastore, dbbuf, err) != 0)
        goto out;
    if (check_config(cfg, err) != 0)
        goto out;
    rc = 0;
out:
    for (size_t i = 0; i < CONFIG_NROWS; i++) {
        free(file_raw.v[i]);
        free(flag_raw.v[i]);
    }
    free(config_path);
    return rc;
}

void server_config_cleanup(struct server_config *cfg)
{
    for (size_t i = 0; i < CONFIG_NROWS; i++) {
        if (CONFIG_ROWS[i].kind == K_STR) {
            char **sp = (char **)((char *)cfg + CONFIG_ROWS[i].off);
            free(*sp);
            *sp = NULL;
        }
    }
    free(cfg->config_path);
    cfg->config_path = NULL;
}
