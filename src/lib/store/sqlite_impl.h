/*
 * Internals shared by the SQLite backend's files: the connection object, its
 * prepared statements (prepared once at open, reset after every use so no
 * read transaction stays open between calls), and small helpers that turn
 * SQLite's result codes into the library's error detail.
 *
 * Not a public header: only src/lib/store/store_sqlite*.c include it.
 */
#ifndef ANCHOR_STORE_SQLITE_IMPL_H
#define ANCHOR_STORE_SQLITE_IMPL_H

#include <sqlite3.h>
#include <stdint.h>

#include "store/backend.h"

enum sq_stmt_id {
    SQ_BEGIN,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_DOC_PUT,
    SQ_DOC_LATEST,
    SQ_DOC_VERSION,
    SQ_DOC_HISTORY_SECTION,
    SQ_DOC_HISTORY_ALL,
    SQ_DOC_REVISION,
    SQ_AGENT_UPSERT,
    SQ_AGENT_DELETE_TYPES,
    SQ_AGENT_DELETE_ATTRS,
    SQ_AGENT_INSERT_TYPE,
    SQ_AGENT_INSERT_ATTR,
    SQ_AGENT_GET,
    SQ_AGENT_GET_TYPES,
    SQ_AGENT_GET_ATTRS,
    SQ_AGENT_LIST_FIRST,
    SQ_AGENT_LIST_AFTER,
    SQ_AGENT_SET_BANNED,
    SQ_AGENT_SET_SVID,
    SQ_STMT_COUNT
};

struct sq {
    sqlite3 *db;
    char *path;
    int schema_version;
    sqlite3_stmt *stmt[SQ_STMT_COUNT];
};

/* The schema, one script per version: script i brings version i to i + 1.
 * Defined in store_sqlite_migrations.c. */
extern const char *const anchor__sq_migrations[];
extern const int anchor__sq_migration_count;

/* Sets "datastore <path>: <what>: <SQLite's message>" and returns -1. */
int anchor__sq_fail(struct sq *q, struct anchor_err *err, const char *what);

/* The statement `id`, reset and with its bindings cleared. */
sqlite3_stmt *anchor__sq_stmt(struct sq *q, enum sq_stmt_id id);

/* Binds a NUL-terminated string (bounded by store.c), or NULL as SQL NULL. */
int anchor__sq_bind_str(sqlite3_stmt *st, int idx, const char *s);

/* Copies text column `col` of the current row into a new string, "" for
 * NULL. Fails when the value is longer than `max` bytes. */
int anchor__sq_column_dup(struct sq *q, sqlite3_stmt *st, int col, size_t max, char **out,
                          size_t *len, struct anchor_err *err);

/* Runs one of SQ_BEGIN / SQ_COMMIT / SQ_ROLLBACK. */
int anchor__sq_exec(struct sq *q, enum sq_stmt_id id, struct anchor_err *err);

/* The document and agent operations, in store_sqlite_docs.c and
 * store_sqlite_agents.c. */
int anchor__sq_doc_put(void *impl, const char *cluster_id, const char *section, const char *text,
                       size_t len, const char *set_by, int64_t set_at, int64_t *version,
                       struct anchor_err *err);
int anchor__sq_doc_get(void *impl, const char *cluster_id, const char *section, int64_t version,
                       struct anchor_store_doc **out, struct anchor_err *err);
int anchor__sq_doc_history(void *impl, const char *cluster_id, const char *section, size_t limit,
                           struct anchor_store_doc_list **out, struct anchor_err *err);
int anchor__sq_doc_revision(void *impl, int64_t *revision, struct anchor_err *err);
int anchor__sq_agent_upsert(void *impl, const struct anchor_store_login *a, struct anchor_err *err);
int anchor__sq_agent_get(void *impl, const char *spiffe_id, struct anchor_store_agent **out,
                         struct anchor_err *err);
int anchor__sq_agent_list(void *impl, const char *after, size_t limit,
                          struct anchor_store_agent_list **out, struct anchor_err *err);
int anchor__sq_agent_set_banned(void *impl, const char *spiffe_id, int banned,
                                struct anchor_err *err);
int anchor__sq_agent_set_svid(void *impl, const char *spiffe_id, const char *svid_serial,
                              int64_t svid_expires_at, int64_t now, struct anchor_err *err);

#endif
