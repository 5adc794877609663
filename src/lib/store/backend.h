/*
 * The store's backend interface: what a backend (store_sqlite.c today,
 * store_postgres.c later) implements. store.c checks every argument against
 * the bounds of anchor/store.h before calling through this table, so a
 * backend may rely on: non-NULL strings within their bounds, a document
 * without NUL bytes, 1 <= limit <= ANCHOR_STORE_MAX_LIST.
 *
 * Not a public header: only the store's files include it.
 */
#ifndef ANCHOR_STORE_BACKEND_H
#define ANCHOR_STORE_BACKEND_H

#include "anchor/store.h"

struct anchor__store_ops {
    /* The URL prefix that selects this backend, e.g. "sqlite://". */
    const char *scheme;
    /* Opens `rest` (the URL without the scheme) into *impl. */
    int (*open)(void **impl, const char *rest, struct anchor_err *err);
    void (*close)(void *impl);
    int (*schema_version)(const void *impl);
    int (*doc_put)(void *impl, const char *cluster_id, const char *section, const char *text,
                   size_t len, const char *set_by, int64_t set_at, int64_t *version,
                   struct anchor_err *err);
    /* version 0 means the latest. */
    int (*doc_get)(void *impl, const char *cluster_id, const char *section, int64_t version,
                   struct anchor_store_doc **out, struct anchor_err *err);
    /* section NULL means every section of the cluster. */
    int (*doc_history)(void *impl, const char *cluster_id, const char *section, size_t limit,
                       struct anchor_store_doc_list **out, struct anchor_err *err);
    int (*doc_revision)(void *impl, int64_t *revision, struct anchor_err *err);
    int (*agent_upsert)(void *impl, const struct anchor_store_login *a, struct anchor_err *err);
    int (*agent_get)(void *impl, const char *spiffe_id, struct anchor_store_agent **out,
                     struct anchor_err *err);
    /* after NULL means from the beginning. */
    int (*agent_list)(void *impl, const char *after, size_t limit,
                      struct anchor_store_agent_list **out, struct anchor_err *err);
    int (*agent_set_banned)(void *impl, const char *spiffe_id, int banned, struct anchor_err *err);
    int (*agent_set_svid)(void *impl, const char *spiffe_id, const char *svid_serial,
                          int64_t svid_expires_at, int64_t now, struct anchor_err *err);
};

/* The backends, defined by their store_<name>.c. */
extern const struct anchor__store_ops anchor__store_sqlite_ops;

/* Frees the members of a document, not the document itself. */
void anchor__store_doc_cleanup(struct anchor_store_doc *d);

/* Frees the members of an agent record, not the record itself. */
void anchor__store_agent_cleanup(struct anchor_store_agent *a);

#endif
