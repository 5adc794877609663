/*
 * The store interface: picks a backend by the URL's scheme, checks every
 * argument against the bounds of anchor/store.h, and calls the backend
 * through its table of operations (backend.h). Keeping the checks here means
 * every backend stores the same things and refuses the same things with the
 * same messages.
 */
#include "store/backend.h"
#include "util/check.h"

#include <stdlib.h>
#include <string.h>

struct anchor_store {
    const struct anchor__store_ops *ops;
    void *impl;
};

static const struct anchor__store_ops *const backends[] = {
    &anchor__store_sqlite_ops,
};

/* Checks a required string: present, non-empty, at most `max` bytes. */
static int check_str(const char *what, const char *s, size_t max, struct anchor_err *err)
{
    int rc = -1;
    size_t len;

    ENSURE(s != NULL, err, "%s is missing", what);
    len = strnlen(s, max + 1);
    ENSURE(len > 0, err, "%s is empty", what);
    ENSURE(len <= max, err, "%s is longer than %zu bytes", what, max);
    rc = 0;
out:
    return rc;
}

static int check_spiffe_id(const char *id, struct anchor_err *err)
{
    int rc = -1;

    TRY(check_str("SPIFFE ID", id, ANCHOR_STORE_MAX_ID_BYTES, err));
    ENSURE(strncmp(id, "spiffe://", 9) == 0 && id[9] != '\0', err,
           "SPIFFE ID does not start with spiffe://");
    rc = 0;
out:
    return rc;
}

/* An SVID serial is hex digits only (the certificate's serial number). */
static int check_serial(const char *serial, struct anchor_err *err)
{
    int rc = -1;
    size_t i;

    TRY(check_str("SVID serial", serial, ANCHOR_STORE_MAX_SERIAL_BYTES, err));
    for (i = 0; serial[i] != '\0'; i++)
        ENSURE(strchr("0123456789abcdefABCDEF", serial[i]) != NULL, err,
               "SVID serial is not hexadecimal");
    rc = 0;
out:
    return rc;
}

static size_t clamp_limit(size_t limit)
{
    return limit == 0 || limit > ANCHOR_STORE_MAX_LIST ? ANCHOR_STORE_MAX_LIST : limit;
}

int anchor_store_open(struct anchor_store **out, const char *url, struct anchor_err *err)
{
    int rc = -1;
    struct anchor_store *s = NULL;
    const struct anchor__store_ops *ops = NULL;
    size_t i, n;

    ENSURE(url != NULL && url[0] != '\0', err, "datastore URL is empty");
    ENSURE(strnlen(url, 4097) <= 4096, err, "datastore URL is too long");
    for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        n = strlen(backends[i]->scheme);
        if (strncmp(url, backends[i]->scheme, n) == 0)
            ops = backends[i];
    }
    ENSURE(ops != NULL, err, "datastore URL %s: unsupported scheme (supported: sqlite://<path>)",
           url);
    s = calloc(1, sizeof(*s));
    ENSURE(s != NULL, err, "out of memory");
    s->ops = ops;
    TRY(ops->open(&s->impl, url + strlen(ops->scheme), err));
    *out = s;
    s = NULL;
    rc = 0;
out:
    free(s);
    return rc;
}

void anchor_store_free(struct anchor_store *s)
{
    if (s == NULL)
        return;
    s->ops->close(s->impl);
    free(s);
}

int anchor_store_schema_version(const struct anchor_store *s)
{
    return s->ops->schema_version(s->impl);
}

int anchor_store_doc_put(struct anchor_store *s, const char *cluster_id, const char *section,
                         const char *text, size_t len, const char *set_by, int64_t set_at,
                         int64_t *version, struct anchor_err *err)
{
    int rc = -1;

    TRY(check_str("cluster id", cluster_id, ANCHOR_STORE_MAX_NAME_BYTES, err));
    TRY(check_str("section", section, ANCHOR_STORE_MAX_NAME_BYTES, err));
    TRY(check_str("set_by", set_by, ANCHOR_STORE_MAX_NAME_BYTES, err));
    ENSURE(text != NULL, err, "config document is missing");
    ENSURE(len <= ANCHOR_STORE_MAX_DOC_BYTES, err,
           "config document is too large (%zu bytes, at most %d)", len, ANCHOR_STORE_MAX_DOC_BYTES);
    ENSURE(memchr(text, '\0', len) == NULL, err, "config document contains a NUL byte");
    TRY(s->ops->doc_put(s->impl, cluster_id, section, text, len, set_by, set_at, version, err));
    rc = 0;
out:
    return rc;
}

int anchor_store_doc_get_latest(struct anchor_store *s, const char *cluster_id, const char *section,
                                struct anchor_store_doc **out, struct anchor_err *err)
{
    int rc = -1;

    TRY(check_str("cluster id", cluster_id, ANCHOR_STORE_MAX_NAME_BYTES, err));
    TRY(check_str("section", section, ANCHOR_STORE_MAX_NAME_BYTES, err));
    TRY(s->ops->doc_get(s->impl, cluster_id, section, 0, out, err));
    rc = 0;
out:
    return rc;
}

int anchor_store_doc_get_version(struct anchor_store *s, const char *cluster_id,
                                 const char *section, int64_t version,
                                 struct anchor_store_doc **out, struct anchor_err *err)
{
    int rc = -1;

    TRY(check_str("cluster id", cluster_id, ANCHOR_STORE_MAX_NAME_BYTES, err));
    TRY(check_str("section", section, ANCHOR_STORE_MAX_NAME_BYTES, err));
    ENSURE(version >= 1, err, "config document version must be 1 or more");
    TRY(s->ops->doc_get(s->impl, cluster_id, section, version, out, err));
    rc = 0;
out:
    return rc;
}

int anchor_store_doc_history(struct anchor_store *s, const char *cluster_id, const char *section,
                             size_t limit, struct anchor_store_doc_list **out,
                             struct anchor_err *err)
{
    int rc = -1;

    TRY(check_str("cluster id", cluster_id, ANCHOR_STORE_MAX_NAME_BYTES, err));
    if (section != NULL)
        TRY(check_str("section", section, ANCHOR_STORE_MAX_NAME_BYTES, err));
    TRY(s->ops->doc_history(s->impl, cluster_id, section, clamp_limit(limit), out, err));
    rc = 0;
out:
    return rc;
}

int anchor_store_doc_revision(struct anchor_store *s, int64_t *revision, struct anchor_err *err)
{
    return s->ops->doc_revision(s->impl, revision, err);
}

int anchor_store_agent_upsert(struct anchor_store *s, const struct anchor_store_login *a,
                              struct anchor_err *err)
{
    int rc = -1;
    size_t i;

    ENSURE(a != NULL, err, "login record is missing");
    TRY(check_spiffe_id(a->spiffe_id, err));
    ENSURE(a->n_attestor_types <= ANCHOR_STORE_MAX_TYPES, err,
           "agent has too many attestor types (%zu, at most %d)", a->n_attestor_types,
           ANCHOR_STORE_MAX_TYPES);
    ENSURE(a->n_attrs <= ANCHOR_STORE_MAX_ATTRS, err,
           "agent has too many attributes (%zu, at most %d)", a->n_attrs, ANCHOR_STORE_MAX_ATTRS);
    ENSURE(a->n_attestor_types == 0 || a->attestor_types != NULL, err,
           "attestor types are missing");
    ENSURE(a->n_attrs == 0 || a->attrs != NULL, err, "attributes are missing");
    for (i = 0; i < a->n_attestor_types; i++)
        TRY(check_str("attestor type", a->attestor_types[i], ANCHOR_STORE_MAX_TYPE_BYTES, err));
    for (i = 0; i < a->n_attrs; i++) {
        TRY(check_str("attribute name", a->attrs[i].name, ANCHOR_STORE_MAX_ATTR_NAME, err));
        ENSURE(a->attrs[i].value != NULL, err, "attribute %s has no value", a->attrs[i].name);
        ENSURE(strnlen(a->attrs[i].value, ANCHOR_STORE_MAX_ATTR_VALUE + 1) <=
                   ANCHOR_STORE_MAX_ATTR_VALUE,
               err, "attribute %s is longer than %d bytes", a->attrs[i].name,
               ANCHOR_STORE_MAX_ATTR_VALUE);
    }
    if (a->svid_serial != NULL)
        TRY(check_serial(a->svid_serial, err));
    TRY(s->ops->agent_upsert(s->impl, a, err));
    rc = 0;
out:
    return rc;
}

int anchor_store_agent_get(struct anchor_store *s, const char *spiffe_id,
                           struct anchor_store_agent **out, struct anchor_err *err)
{
    int rc = -1;

    TRY(check_spiffe_id(spiffe_id, err));
    TRY(s->ops->agent_get(s->impl, spiffe_id, out, err));
    rc = 0;
out:
    return rc;
}

int anchor_store_agent_list(struct anchor_store *s, const char *after, size_t limit,
                            struct anchor_store_agent_list **out, struct anchor_err *err)
{
    int rc = -1;

    if (after != NULL)
        TRY(check_str("list position", after, ANCHOR_STORE_MAX_ID_BYTES, err));
    TRY(s->ops->agent_list(s->impl, after, clamp_limit(limit), out, err));
    rc = 0;
out:
    return rc;
}

int anchor_store_agent_set_banned(struct anchor_store *s, const char *spiffe_id, int banned,
                                  struct anchor_err *err)
{
    int rc = -1;

    TRY(check_spiffe_id(spiffe_id, err));
    TRY(s->ops->agent_set_banned(s->impl, spiffe_id, banned != 0, err));
    rc = 0;
out:
    return rc;
}

int anchor_store_agent_set_svid(struct anchor_store *s, const char *spiffe_id,
                                const char *svid_serial, int64_t svid_expires_at, int64_t now,
                                struct anchor_err *err)
{
    int rc = -1;

    TRY(check_spiffe_id(spiffe_id, err));
    TRY(check_serial(svid_serial, err));
    TRY(s->ops->agent_set_svid(s->impl, spiffe_id, svid_serial, svid_expires_at, now, err));
    rc = 0;
out:
    return rc;
}

void anchor__store_doc_cleanup(struct anchor_store_doc *d)
{
    free(d->cluster_id);
    free(d->section);
    free(d->text);
    free(d->set_by);
    memset(d, 0, sizeof(*d));
}

void anchor_store_doc_free(struct anchor_store_doc *d)
{
    if (d == NULL)
        return;
    anchor__store_doc_cleanup(d);
    free(d);
}

void anchor_store_doc_list_free(struct anchor_store_doc_list *l)
{
    size_t i;

    if (l == NULL)
        return;
    for (i = 0; i < l->n; i++)
        anchor__store_doc_cleanup(&l->v[i]);
    free(l->v);
    free(l);
}

void anchor__store_agent_cleanup(struct anchor_store_agent *a)
{
    size_t i;

    free(a->spiffe_id);
    for (i = 0; i < a->n_attestor_types; i++)
        free(a->attestor_types[i]);
    free(a->attestor_types);
    for (i = 0; i < a->n_attrs; i++) {
        free(a->attrs[i].name);
        free(a->attrs[i].value);
    }
    free(a->attrs);
    free(a->svid_serial);
    memset(a, 0, sizeof(*a));
}

void anchor_store_agent_free(struct anchor_store_agent *a)
{
    if (a == NULL)
        return;
    anchor__store_agent_cleanup(a);
    free(a);
}

void anchor_store_agent_list_free(struct anchor_store_agent_list *l)
{
    size_t i;

    if (l == NULL)
        return;
    for (i = 0; i < l->n; i++)
        anchor__store_agent_cleanup(&l->v[i]);
    free(l->v);
    free(l);
}
