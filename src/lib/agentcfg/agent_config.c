/*
 * The agent's bootstrap configuration (agent_config.h): agent.yaml read by the
 * strict YAML reader the policy documents use (policy/ytree.h), in the Linux
 * form, the Helm values form, or both when they agree.
 *
 * The scalar settings are checked by the table of settings.c, shared with
 * the command-line flags, so that `--server-address` is checked exactly as
 * `server-address:` is. The file is parsed into a fresh object
 * first and moved into the caller's only when all of it is valid, so a
 * failed parse leaves the caller's configuration untouched.
 */
#include "agentcfg/internal.h"
#include "anchor/spiffeid.h"
#include "anchor/x509pop.h"
#include "policy/ytree.h"
#include "util/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const root_keys[] = {
    "trust-domain",    "server-address", "trust-bundle-path",
    "data-dir",        "log-level",      "log-format",
    "metrics-address", "cluster-id",     "disable-kubernetes-attestation",
    "agent-attestors", "agent",          NULL};
static const char *const helm_agent_keys[] = {"auth", NULL};
static const char *const helm_auth_keys[] = {"clusterId", "attestors", NULL};
static const char *const attestor_keys[] = {"type", "config", NULL};
static const char *const x509pop_keys[] = {"certificatePath", "privateKeyPath", "intermediatesPath",
                                           NULL};

/* Room for "agent.auth.attestors[N].config" with a 20-digit N. */
#define WHERE_MAX 96

static int node_string(const char **out, size_t *out_len, const struct anchor__ytree *v,
                       const char *where, struct anchor_err *err)
{
    char got[160];

    if (anchor__ytree_is_null(v)) {
        anchor_err_set(err, "%s: a value is required", where);
        return -1;
    }
    if (v->kind != ANCHOR__YTREE_SCALAR || anchor__ytree_is_bool(v)) {
        anchor__ytree_describe(got, sizeof(got), v);
        anchor_err_set(err, "%s: expected a string (got %s)", where, got);
        return -1;
    }
    if (anchor__agentcfg_check_text(v->str, v->len, where, err) != 0)
        return -1;
    *out = v->str;
    *out_len = v->len;
    return 0;
}

static int expect_map(const struct anchor__ytree *node, const char *where, struct anchor_err *err)
{
    char got[160];

    if (node != NULL && node->kind == ANCHOR__YTREE_MAP)
        return 0;
    anchor__ytree_describe(got, sizeof(got), node);
    anchor_err_set(err, "%s: expected a mapping (got %s)", where, got);
    return -1;
}

/* --- attestors ------------------------------------------------------------------ */

static void attestors_free(struct anchor_agent_attestor *a, size_t n)
{
    for (size_t i = 0; i < n && a != NULL; i++) {
        free(a[i].type);
        free(a[i].certificate_path);
        free(a[i].private_key_path);
        free(a[i].intermediates_path);
    }
    free(a);
}

/* Reads an optional (required == 0) or required string field of map into a
 * new string at *slot. */
static int field_string(char **slot, const struct anchor__ytree *map, const char *field,
                        int required, const char *where, struct anchor_err *err)
{
    const struct anchor__ytree *v = anchor__ytree_get(map, field);
    char here[WHERE_MAX + 32];
    const char *s;
    size_t len;

    if (v == NULL) {
        if (!required)
            return 0;
        anchor_err_set(err, "%s: %s is required", where, field);
        return -1;
    }
    (void)snprintf(here, sizeof(here), "%s.%s", where, field);
    if (node_string(&s, &len, v, here, err) != 0)
        return -1;
    *slot = anchor__agentcfg_dup(s, len);
    if (*slot == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    return 0;
}

static int parse_x509pop(struct anchor_agent_attestor *a, const struct anchor__ytree *cfg,
                         const char *where, struct anchor_err *err)
{
    char here[WHERE_MAX];

    /* A location for messages only: a cut one is still useful. */
    if (snprintf(here, sizeof(here), "%s.config", where) < 0)
        here[0] = '\0';
    if (anchor__ytree_is_null(cfg)) {
        anchor_err_set(err, "%s: certificatePath is required", here);
        return -1;
    }
    if (expect_map(cfg, here, err) != 0 || anchor__ytree_check_keys(cfg, here, x509pop_keys, err))
        return -1;
    if (field_string(&a->certificate_path, cfg, "certificatePath", 1, here, err) != 0 ||
        field_string(&a->private_key_path, cfg, "privateKeyPath", 1, here, err) != 0 ||
        field_string(&a->intermediates_path, cfg, "intermediatesPath", 0, here, err) != 0)
        return -1;
    return 0;
}

/* Reads a list of attestors at `where` (agent-attestors or
 * agent.auth.attestors) into a new array. */
static int parse_attestors(struct anchor_agent_attestor **out, size_t *nout,
                           const struct anchor__ytree *list, const char *where,
                           struct anchor_err *err)
{
    int rc = -1;
    struct anchor_agent_attestor *a = NULL;
    size_t n = 0;
    char got[160];
    char here[WHERE_MAX];
    char q[128];

    if (anchor__ytree_is_null(list))
        FAIL(err, "%s: at least one attestor is required", where);
    if (list->kind != ANCHOR__YTREE_SEQ) {
        anchor__ytree_describe(got, sizeof(got), list);
        FAIL(err, "%s: expected a list (got %s)", where, got);
    }
    ENSURE(list->nkids > 0, err, "%s: at least one attestor is required", where);
    a = calloc(list->nkids, sizeof(*a));
    ENSURE(a != NULL, err, "out of memory");
    for (size_t i = 0; i < list->nkids; i++) {
        const struct anchor__ytree *node = list->kids[i];
        const struct anchor__ytree *type;
        char twhere[WHERE_MAX + 8];
        const char *t;
        size_t tlen;

        (void)snprintf(here, sizeof(here), "%s[%zu]", where, i);
        TRY(expect_map(node, here, err));
        TRY(anchor__ytree_check_keys(node, here, attestor_keys, err));
        type = anchor__ytree_get(node, "type");
        ENSURE(type != NULL, err, "%s: type is required", here);
        (void)snprintf(twhere, sizeof(twhere), "%s.type", here);
        TRY(node_string(&t, &tlen, type, twhere, err));
        anchor__ytree_quote(q, sizeof(q), t, tlen);
        ENSURE(strcmp(t, ANCHOR_X509POP_TYPE) == 0, err,
               "%s: unknown attestor type \"%s\" (supported: x509pop)", twhere, q);
        for (size_t j = 0; j < n; j++)
            ENSURE(strcmp(a[j].type, t) != 0, err, "%s: duplicate attestor type \"%s\"", twhere, q);
        a[n].type = anchor__agentcfg_dup(t, tlen);
        n++;
        ENSURE(a[n - 1].type != NULL, err, "out of memory");
        TRY(parse_x509pop(&a[n - 1], anchor__ytree_get(node, "config"), here, err));
    }
    *out = a;
    *nout = n;
    a = NULL;
    rc = 0;
out:
    if (rc != 0)
        attestors_free(a, n);
    return rc;
}

static int str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static int attestors_equal(const struct anchor_agent_attestor *a, size_t na,
                           const struct anchor_agent_attestor *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++) {
        if (!str_eq(a[i].type, b[i].type) ||
            !str_eq(a[i].certificate_path, b[i].certificate_path) ||
            !str_eq(a[i].private_key_path, b[i].private_key_path) ||
            !str_eq(a[i].intermediates_path, b[i].intermediates_path))
            return 0;
    }
    return 1;
}

/* --- the two forms ------------------------------------------------------------- */

/* The Helm values form: agent.auth.{clusterId, attestors}. Writes what it
 * finds to *cluster_id (borrowed from the tree) and the attestor array. */
static int parse_helm(const struct anchor__ytree *agent, const struct anchor__ytree **cluster_id,
                      struct anchor_agent_attestor **att, size_t *natt, struct anchor_err *err)
{
    const struct anchor__ytree *auth;
    const struct anchor__ytree *list;

    if (expect_map(agent, "agent", err) != 0 ||
        anchor__ytree_check_keys(agent, "agent", helm_agent_keys, err) != 0)
        return -1;
    auth = anchor__ytree_get(agent, "auth");
    if (auth == NULL) {
        anchor_err_set(err, "agent: auth is required");
        return -1;
    }
    if (expect_map(auth, "agent.auth", err) != 0 ||
        anchor__ytree_check_keys(auth, "agent.auth", helm_auth_keys, err) != 0)
        return -1;
    *cluster_id = anchor__ytree_get(auth, "clusterId");
    list = anchor__ytree_get(auth, "attestors");
    if (list != NULL && parse_attestors(att, natt, list, "agent.auth.attestors", err) != 0)
        return -1;
    return 0;
}

static void config_clear(struct anchor_agent_config *cfg)
{
    free(cfg->trust_domain);
    free(cfg->cluster_id);
    free(cfg->server_address);
    free(cfg->server_host);
    free(cfg->trust_bundle_path);
    free(cfg->data_dir);
    free(cfg->metrics_address);
    free(cfg->metrics_host);
    attestors_free(cfg->attestors, cfg->nattestors);
}

static void config_defaults(struct anchor_agent_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = ANCHOR_LOG_INFO;
    cfg->log_format = ANCHOR_LOG_FORMAT_JSON;
    cfg->disable_kubernetes_attestation = -1;
}

/* Moves each setting the file gave (set in `from`) into `to`. */
static void config_merge(struct anchor_agent_config *to, struct anchor_agent_config *from,
                         const struct anchor__ytree *root)
{
    if (from->server_address != NULL)
        to->server_port = from->server_port;
    if (from->metrics_address != NULL)
        to->metrics_port = from->metrics_port;
#define MOVE(f)                                                                                    \
    do {                                                                                           \
        if (from->f != NULL) {                                                                     \
            anchor__agentcfg_replace(&to->f, from->f);                                             \
            from->f = NULL;                                                                        \
        }                                                                                          \
    } while (0)
    MOVE(trust_domain);
    MOVE(cluster_id);
    MOVE(server_address);
    MOVE(server_host);
    MOVE(trust_bundle_path);
    MOVE(data_dir);
    MOVE(metrics_address);
    MOVE(metrics_host);
#undef MOVE
    if (anchor__ytree_get(root, "log-level") != NULL)
        to->log_level = from->log_level;
    if (anchor__ytree_get(root, "log-format") != NULL)
        to->log_format = from->log_format;
    if (from->disable_kubernetes_attestation != -1)
        to->disable_kubernetes_attestation = from->disable_kubernetes_attestation;
    if (from->attestors != NULL) {
        attestors_free(to->attestors, to->nattestors);
        to->attestors = from->attestors;
        to->nattestors = from->nattestors;
        from->attestors = NULL;
        from->nattestors = 0;
    }
}

int anchor_agent_config_parse(struct anchor_agent_config *cfg, const char *text, size_t len,
                              struct anchor_err *err)
{
    int rc = -1;
    struct anchor__ytree *root = NULL;
    struct anchor_agent_config tmp;
    const struct anchor__ytree *helm_cluster = NULL;
    struct anchor_agent_attestor *helm_att = NULL;
    size_t helm_natt = 0;
    const struct anchor__ytree *v;
    char got[160];

    config_defaults(&tmp);
    ENSURE(len <= ANCHOR_AGENT_CONFIG_MAX_BYTES, err, "document too large (%zu bytes, at most %zu)",
           len, ANCHOR_AGENT_CONFIG_MAX_BYTES);
    TRY(anchor__ytree_parse(&root, text, len, ANCHOR_AGENT_CONFIG_MAX_BYTES, err));
    ENSURE(root != NULL, err, "the document is empty");
    if (root->kind != ANCHOR__YTREE_MAP) {
        anchor__ytree_describe(got, sizeof(got), root);
        FAIL(err, "the agent configuration must be a mapping of settings (got %s)", got);
    }
    TRY(anchor__ytree_check_keys(root, "", root_keys, err));
    /* Document order for the scalar settings, so the first problem is the
     * one reported. */
    for (size_t i = 0; i + 1 < root->nkids; i += 2) {
        const struct anchor__agentcfg_setting *s =
            anchor__agentcfg_find_setting(root->kids[i]->str);
        const char *str;
        size_t slen;

        if (s == NULL)
            continue;
        v = root->kids[i + 1];
        if (s->is_bool) {
            /* A plain YAML boolean, never the quoted string "true". */
            if (v->kind != ANCHOR__YTREE_SCALAR || !v->plain) {
                anchor__ytree_describe(got, sizeof(got), v);
                FAIL(err, "%s: expected true or false (got %s)", s->key, got);
            }
            TRY(s->set(&tmp, v->str, v->len, s->key, err));
            continue;
        }
        TRY(node_string(&str, &slen, v, s->key, err));
        TRY(s->set(&tmp, str, slen, s->key, err));
    }
    v = anchor__ytree_get(root, "agent-attestors");
    if (v != NULL)
        TRY(parse_attestors(&tmp.attestors, &tmp.nattestors, v, "agent-attestors", err));
    v = anchor__ytree_get(root, "agent");
    if (v != NULL)
        TRY(parse_helm(v, &helm_cluster, &helm_att, &helm_natt, err));
    if (helm_cluster != NULL) {
        const char *str;
        size_t slen;
        char q1[128];
        char q2[128];

        TRY(node_string(&str, &slen, helm_cluster, "agent.auth.clusterId", err));
        if (tmp.cluster_id != NULL) {
            anchor__ytree_quote(q1, sizeof(q1), tmp.cluster_id, strlen(tmp.cluster_id));
            anchor__ytree_quote(q2, sizeof(q2), str, slen);
            ENSURE(strcmp(tmp.cluster_id, str) == 0, err,
                   "cluster-id \"%s\" and agent.auth.clusterId \"%s\" disagree: give one", q1, q2);
        } else {
            TRY(anchor__agentcfg_set_cluster_id(&tmp, str, slen, "agent.auth.clusterId", err));
        }
    }
    if (helm_att != NULL) {
        if (tmp.attestors != NULL) {
            ENSURE(attestors_equal(tmp.attestors, tmp.nattestors, helm_att, helm_natt), err,
                   "agent-attestors and agent.auth.attestors disagree: give one");
        } else {
            tmp.attestors = helm_att;
            tmp.nattestors = helm_natt;
            helm_att = NULL;
            helm_natt = 0;
        }
    }
    config_merge(cfg, &tmp, root);
    rc = 0;
out:
    attestors_free(helm_att, helm_natt);
    config_clear(&tmp);
    anchor__ytree_free(root);
    return rc;
}

int anchor_agent_config_load_file(struct anchor_agent_config *cfg, const char *path,
                                  struct anchor_err *err)
{
    int rc = -1;
    int fd = -1;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    ENSURE(fd >= 0, err, "%s: cannot open: %s", path, strerror(errno));
    ENSURE(fstat(fd, &st) == 0, err, "%s: cannot stat: %s", path, strerror(errno));
    ENSURE(S_ISREG(st.st_mode), err, "%s: not a regular file", path);
    ENSURE((unsigned long long)st.st_size <= ANCHOR_AGENT_CONFIG_MAX_BYTES, err,
           "%s: document too large (%lld bytes, at most %zu)", path, (long long)st.st_size,
           ANCHOR_AGENT_CONFIG_MAX_BYTES);
    buf = malloc(ANCHOR_AGENT_CONFIG_MAX_BYTES + 2);
    ENSURE(buf != NULL, err, "out of memory");
    /* Read up to one byte past the limit: the file may have grown since fstat. */
    for (int i = 0; i < 1024 && len <= ANCHOR_AGENT_CONFIG_MAX_BYTES; i++) {
        ssize_t n = read(fd, buf + len, ANCHOR_AGENT_CONFIG_MAX_BYTES + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        ENSURE(n >= 0, err, "%s: cannot read: %s", path, strerror(errno));
        if (n == 0)
            break;
        len += (size_t)n;
    }
    ENSURE(len <= ANCHOR_AGENT_CONFIG_MAX_BYTES, err, "%s: document too large (at most %zu bytes)",
           path, ANCHOR_AGENT_CONFIG_MAX_BYTES);
    buf[len] = '\0';
    if (anchor_agent_config_parse(cfg, buf, len, err) != 0) {
        anchor_err_prefix(err, path);
        goto out;
    }
    rc = 0;
out:
    free(buf);
    if (fd >= 0)
        (void)close(fd);
    return rc;
}

int anchor_agent_config_finish(struct anchor_agent_config *cfg, struct anchor_err *err)
{
    if (cfg->trust_domain == NULL) {
        anchor_err_set(err, "trust-domain is required");
        return -1;
    }
    if (cfg->cluster_id == NULL) {
        anchor_err_set(err, "cluster-id is required (cluster-id or agent.auth.clusterId)");
        return -1;
    }
    if (cfg->server_address == NULL) {
        anchor_err_set(err, "server-address is required");
        return -1;
    }
    if (cfg->trust_bundle_path == NULL) {
        anchor_err_set(err, "trust-bundle-path is required");
        return -1;
    }
    if (cfg->nattestors == 0) {
        anchor_err_set(
            err, "at least one attestor is required (agent-attestors or agent.auth.attestors)");
        return -1;
    }
    if (cfg->data_dir == NULL) {
        cfg->data_dir = anchor__agentcfg_dup(ANCHOR_AGENT_DEFAULT_DATA_DIR,
                                             strlen(ANCHOR_AGENT_DEFAULT_DATA_DIR));
        if (cfg->data_dir == NULL) {
            anchor_err_set(err, "out of memory");
            return -1;
        }
    }
    return 0;
}

int anchor_agent_config_new(struct anchor_agent_config **out, struct anchor_err *err)
{
    struct anchor_agent_config *cfg = malloc(sizeof(*cfg));

    if (cfg == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    config_defaults(cfg);
    *out = cfg;
    return 0;
}

void anchor_agent_config_free(struct anchor_agent_config *cfg)
{
    if (cfg == NULL)
        return;
    config_clear(cfg);
    free(cfg);
}
