/*
 * Config documents in SQLite. Each put is one INSERT ... SELECT that computes
 * the next version of its (cluster id, section) and inserts it in a single
 * statement, so two writers cannot hand out the same version (and the
 * UNIQUE constraint would refuse it if they tried). The revision column is
 * an AUTOINCREMENT key: it only grows, across every document and process,
 * which is what a watcher polls.
 */
#include "store/sqlite_impl.h"
#include "util/check.h"

#include <stdlib.h>
#include <string.h>

/* Columns of the document queries: cluster_id, section, version, revision,
 * body (or its length in history), set_by, set_at. */
static int read_doc(struct sq *q, sqlite3_stmt *st, int with_text, struct anchor_store_doc *d,
                    struct anchor_err *err)
{
    int rc = -1;

    TRY(anchor__sq_column_dup(q, st, 0, ANCHOR_STORE_MAX_NAME_BYTES, &d->cluster_id, NULL, err));
    TRY(anchor__sq_column_dup(q, st, 1, ANCHOR_STORE_MAX_NAME_BYTES, &d->section, NULL, err));
    d->version = sqlite3_column_int64(st, 2);
    d->revision = sqlite3_column_int64(st, 3);
    if (with_text)
        TRY(anchor__sq_column_dup(q, st, 4, ANCHOR_STORE_MAX_DOC_BYTES, &d->text, &d->text_len,
                                  err));
    else
        d->text_len = (size_t)sqlite3_column_int64(st, 4);
    TRY(anchor__sq_column_dup(q, st, 5, ANCHOR_STORE_MAX_NAME_BYTES, &d->set_by, NULL, err));
    d->set_at = sqlite3_column_int64(st, 6);
    rc = 0;
out:
    return rc;
}

int anchor__sq_doc_put(void *impl, const char *cluster_id, const char *section, const char *text,
                       size_t len, const char *set_by, int64_t set_at, int64_t *version,
                       struct anchor_err *err)
{
    int rc = -1;
    struct sq *q = impl;
    sqlite3_stmt *st = anchor__sq_stmt(q, SQ_DOC_PUT);

    if (anchor__sq_bind_str(st, 1, cluster_id) != 0 || anchor__sq_bind_str(st, 2, section) != 0 ||
        sqlite3_bind_text(st, 3, text, (int)len, SQLITE_STATIC) != SQLITE_OK ||
        anchor__sq_bind_str(st, 4, set_by) != 0 || sqlite3_bind_int64(st, 5, set_at) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        (void)anchor__sq_fail(q, err, "cannot store the config document");
        goto out;
    }
    *version = sqlite3_column_int64(st, 0);
    /* RETURNING rows are produced before the statement finishes: step to
     * the end so the INSERT commits before reporting success. */
    if (sqlite3_step(st) != SQLITE_DONE) {
        (void)anchor__sq_fail(q, err, "cannot store the config document");
        goto out;
    }
    rc = 0;
out:
    (void)sqlite3_reset(st);
    return rc;
}

int anchor__sq_doc_get(void *impl, const char *cluster_id, const char *section, int64_t version,
                       struct anchor_store_doc **out, struct anchor_err *err)
{
    int rc = -1;
    struct sq *q = impl;
    sqlite3_stmt *st = anchor__sq_stmt(q, version == 0 ? SQ_DOC_LATEST : SQ_DOC_VERSION);
    struct anchor_store_doc *d = NULL;
    int r;

    if (anchor__sq_bind_str(st, 1, cluster_id) != 0 || anchor__sq_bind_str(st, 2, section) != 0 ||
        (version != 0 && sqlite3_bind_int64(st, 3, version) != SQLITE_OK)) {
        (void)anchor__sq_fail(q, err, "cannot read the config document");
        goto out;
    }
    r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        *out = NULL;
        rc = 0;
        goto out;
    }
    if (r != SQLITE_ROW) {
        (void)anchor__sq_fail(q, err, "cannot read the config document");
        goto out;
    }
    d = calloc(1, sizeof(*d));
    ENSURE(d != NULL, err, "out of memory");
    TRY(read_doc(q, st, 1, d, err));
    *out = d;
    d = NULL;
    rc = 0;
out:
    (void)sqlite3_reset(st);
    anchor_store_doc_free(d);
    return rc;
}

int anchor__sq_doc_history(void *impl, const char *cluster_id, const char *section, size_t limit,
                           struct anchor_store_doc_list **out, struct anchor_err *err)
{
    int rc = -1;
    struct sq *q = impl;
    sqlite3_stmt *st =
        anchor__sq_stmt(q, section != NULL ? SQ_DOC_HISTORY_SECTION : SQ_DOC_HISTORY_ALL);
    struct anchor_store_doc_list *l = NULL;
    struct anchor_store_doc *grown;
    size_t cap = 0;
    int r;

    l = calloc(1, sizeof(*l));
    ENSURE(l != NULL, err, "out of memory");
    if (anchor__sq_bind_str(st, 1, cluster_id) != 0 ||
        (section != NULL && anchor__sq_bind_str(st, 2, section) != 0) ||
        sqlite3_bind_int64(st, 3, (sqlite3_int64)limit) != SQLITE_OK) {
        (void)anchor__sq_fail(q, err, "cannot read the config history");
        goto out;
    }
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->n == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            grown = realloc(l->v, cap * sizeof(*l->v));
            ENSURE(grown != NULL, err, "out of memory");
            l->v = grown;
        }
        memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
        l->n++;
        TRY(read_doc(q, st, 0, &l->v[l->n - 1], err));
    }
    if (r != SQLITE_DONE) {
        (void)anchor__sq_fail(q, err, "cannot read the config history");
        goto out;
    }
    *out = l;
    l = NULL;
    rc = 0;
out:
    (void)sqlite3_reset(st);
    anchor_store_doc_list_free(l);
    return rc;
}

int anchor__sq_doc_revision(void *impl, int64_t *revision, struct anchor_err *err)
{
    int rc = -1;
    struct sq *q = impl;
    sqlite3_stmt *st = anchor__sq_stmt(q, SQ_DOC_REVISION);

    if (sqlite3_step(st) != SQLITE_ROW) {
        (void)anchor__sq_fail(q, err, "cannot read the config revision");
        goto out;
    }
    *revision = sqlite3_column_int64(st, 0);
    rc = 0;
out:
    (void)sqlite3_reset(st);
    return rc;
}
