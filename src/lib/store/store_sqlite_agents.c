/*
 * Attested agents in SQLite: a row in `agents` per SPIFFE ID, with its
 * attestor types and attributes in child tables (ordered by position,
 * removed with the agent by ON DELETE CASCADE). An upsert rewrites the
 * children in the same IMMEDIATE transaction as the row, so a reader never
 * sees an agent with half of its attributes. A read keeps the agent's
 * statement open while it reads the children, so all three come from one
 * snapshot.
 */
#include "store/sqlite_impl.h"
#include "util/check.h"

#include <stdlib.h>
#include <string.h>

/* Runs a statement that returns no rows. */
static int step_done(struct sq *q, sqlite3_stmt *st, const char *what, struct anchor_err *err)
{
    int r = sqlite3_step(st);

    if (r != SQLITE_DONE) {
        (void)anchor__sq_fail(q, err, what);
        (void)sqlite3_reset(st);
        return -1;
    }
    (void)sqlite3_reset(st);
    return 0;
}

static int write_children(struct sq *q, const struct anchor_store_login *a, struct anchor_err *err)
{
    int rc = -1;
    sqlite3_stmt *st;
    size_t i;
    const char *what = "cannot record the agent";

    st = anchor__sq_stmt(q, SQ_AGENT_DELETE_TYPES);
    ENSURE(anchor__sq_bind_str(st, 1, a->spiffe_id) == 0, err, "%s", what);
    TRY(step_done(q, st, what, err));
    st = anchor__sq_stmt(q, SQ_AGENT_DELETE_ATTRS);
    ENSURE(anchor__sq_bind_str(st, 1, a->spiffe_id) == 0, err, "%s", what);
    TRY(step_done(q, st, what, err));
    for (i = 0; i < a->n_attestor_types; i++) {
        st = anchor__sq_stmt(q, SQ_AGENT_INSERT_TYPE);
        ENSURE(anchor__sq_bind_str(st, 1, a->spiffe_id) == 0 &&
                   sqlite3_bind_int64(st, 2, (sqlite3_int64)i) == SQLITE_OK &&
                   anchor__sq_bind_str(st, 3, a->attestor_types[i]) == 0,
               err, "%s", what);
        TRY(step_done(q, st, what, err));
    }
    for (i = 0; i < a->n_attrs; i++) {
        st = anchor__sq_stmt(q, SQ_AGENT_INSERT_ATTR);
        ENSURE(anchor__sq_bind_str(st, 1, a->spiffe_id) == 0 &&
                   sqlite3_bind_int64(st, 2, (sqlite3_int64)i) == SQLITE_OK &&
                   anchor__sq_bind_str(st, 3, a->attrs[i].name) == 0 &&
                   anchor__sq_bind_str(st, 4, a->attrs[i].value) == 0,
               err, "%s", what);
        TRY(step_done(q, st, what, err));
    }
    rc = 0;
out:
    return rc;
}

int anchor__sq_agent_upsert(void *impl, const struct anchor_store_login *a, struct anchor_err *err)
{
    int rc = -1;
    struct sq *q = impl;
    sqlite3_stmt *st;
    int in_tx = 0;
    const char *what = "cannot record the agent";

    TRY(anchor__sq_exec(q, SQ_BEGIN, err));
    in_tx = 1;
    st = anchor__sq_stmt(q, SQ_AGENT_UPSERT);
    ENSURE(anchor__sq_bind_str(st, 1, a->spiffe_id) == 0 &&
               anchor__sq_bind_str(st, 2, a->svid_serial) == 0 &&
               sqlite3_bind_int64(st, 3, a->svid_expires_at) == SQLITE_OK &&
               sqlite3_bind_int64(st, 4, a->now) == SQLITE_OK,
           err, "%s", what);
    TRY(step_done(q, st, what, err));
    TRY(write_children(q, a, err));
    TRY(anchor__sq_exec(q, SQ_COMMIT, err));
    in_tx = 0;
    rc = 0;
out:
    if (in_tx)
        (void)sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int read_types(struct sq *q, struct anchor_store_agent *a, struct anchor_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = anchor__sq_stmt(q, SQ_AGENT_GET_TYPES);
    int r;

    a->attestor_types = calloc(ANCHOR_STORE_MAX_TYPES, sizeof(*a->attestor_types));
    ENSURE(a->attestor_types != NULL, err, "out of memory");
    if (anchor__sq_bind_str(st, 1, a->spiffe_id) != 0 ||
        sqlite3_bind_int64(st, 2, ANCHOR_STORE_MAX_TYPES) != SQLITE_OK) {
        (void)anchor__sq_fail(q, err, "cannot read the agent");
        goto out;
    }
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        TRY(anchor__sq_column_dup(q, st, 0, ANCHOR_STORE_MAX_TYPE_BYTES,
                                  &a->attestor_types[a->n_attestor_types], NULL, err));
        a->n_attestor_types++;
    }
    if (r != SQLITE_DONE) {
        (void)anchor__sq_fail(q, err, "cannot read the agent");
        goto out;
    }
    rc = 0;
out:
    (void)sqlite3_reset(st);
    return rc;
}

static int read_attrs(struct sq *q, struct anchor_store_agent *a, struct anchor_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = anchor__sq_stmt(q, SQ_AGENT_GET_ATTRS);
    struct anchor_attr *at;
    int r;

    a->attrs = calloc(ANCHOR_STORE_MAX_ATTRS, sizeof(*a->attrs));
    ENSURE(a->attrs != NULL, err, "out of memory");
    if (anchor__sq_bind_str(st, 1, a->spiffe_id) != 0 ||
        sqlite3_bind_int64(st, 2, ANCHOR_STORE_MAX_ATTRS) != SQLITE_OK) {
        (void)anchor__sq_fail(q, err, "cannot read the agent");
        goto out;
    }
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        at = &a->attrs[a->n_attrs];
        /* Counted first so that cleanup frees a half-read pair. */
        a->n_attrs++;
        TRY(anchor__sq_column_dup(q, st, 0, ANCHOR_STORE_MAX_ATTR_NAME, &at->name, NULL, err));
        TRY(anchor__sq_column_dup(q, st, 1, ANCHOR_STORE_MAX_ATTR_VALUE, &at->value, NULL, err));
    }
    if (r != SQLITE_DONE) {
        (void)anchor__sq_fail(q, err, "cannot read the agent");
        goto out;
    }
    rc = 0;
out:
    (void)sqlite3_reset(st);
    return rc;
}

/* Reads the current row of an agent query (spiffe_id, svid_serial,
 * svid_expires_at, first_seen, last_seen, banned) and its children. */
static int read_agent(struct sq *q, sqlite3_stmt *st, struct anchor_store_agent *a,
                      struct anchor_err *err)
{
    int rc = -1;

    TRY(anchor__sq_column_dup(q, st, 0, ANCHOR_STORE_MAX_ID_BYTES, &a->spiffe_id, NULL, err));
    TRY(anchor__sq_column_dup(q, st, 1, ANCHOR_STORE_MAX_SERIAL_BYTES, &a->svid_serial, NULL, err));
    a->svid_expires_at = sqlite3_column_int64(st, 2);
    a->first_seen = sqlite3_column_int64(st, 3);
    a->last_seen = sqlite3_column_int64(st, 4);
    a->banned = sqlite3_column_int(st, 5) != 0;
    TRY(read_types(q, a, err));
    TRY(read_attrs(q, a, err));
    rc = 0;
out:
    return rc;
}

int anchor__sq_agent_get(void *impl, const char *spiffe_id, struct anchor_store_agent **out,
                         struct anchor_err *err)
{
    int rc = -1;
    struct sq *q = impl;
    sqlite3_stmt *st = anchor__sq_stmt(q, SQ_AGENT_GET);
    struct anchor_store_agent *a = NULL;
    int r;

    ENSURE(anchor__sq_bind_str(st, 1, spiffe_id) == 0, err, "cannot read the agent");
    r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        *out = NULL;
        rc = 0;
        goto out;
    }
    if (r != SQLITE_ROW) {
        (void)anchor__sq_fail(q, err, "cannot read the agent");
        goto out;
    }
    a = calloc(1, sizeof(*a));
    ENSURE(a != NULL, err, "out of memory");
    TRY(read_agent(q, st, a, err));
    *out = a;
    a = NULL;
    rc = 0;
out:
    (void)sqlite3_reset(st);
    anchor_store_agent_free(a);
    return rc;
}

int anchor__sq_agent_list(void *impl, const char *after, size_t limit,
                          struct anchor_store_agent_list **out, struct anchor_err *err)
{
    int rc = -1;
    struct sq *q = impl;
    sqlite3_stmt *st =
        anchor__sq_stmt(q, after != NULL ? SQ_AGENT_LIST_AFTER : SQ_AGENT_LIST_FIRST);
    struct anchor_store_agent_list *l = NULL;
    struct anchor_store_agent *grown;
    size_t cap = 0;
    int r;

    l = calloc(1, sizeof(*l));
    ENSURE(l != NULL, err, "out of memory");
    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)limit) != SQLITE_OK ||
        (after != NULL && anchor__sq_bind_str(st, 2, after) != 0)) {
        (void)anchor__sq_fail(q, err, "cannot list the agents");
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
        TRY(read_agent(q, st, &l->v[l->n - 1], err));
    }
    if (r != SQLITE_DONE) {
        (void)anchor__sq_fail(q, err, "cannot list the agents");
        goto out;
    }
    *out = l;
    l = NULL;
    rc = 0;
out:
    (void)sqlite3_reset(st);
    anchor_store_agent_list_free(l);
    return rc;
}

/* Runs an UPDATE of one agent and fails when no row matched. */
static int update_one(struct sq *q, sqlite3_stmt *st, const char *spiffe_id, struct anchor_err *err)
{
    int rc = -1;

    TRY(step_done(q, st, "cannot update the agent", err));
    ENSURE(sqlite3_changes(q->db) > 0, err, "agent %s not found", spiffe_id);
    rc = 0;
out:
    return rc;
}

int anchor__sq_agent_set_banned(void *impl, const char *spiffe_id, int banned,
                                struct anchor_err *err)
{
    int rc = -1;
    struct sq *q = impl;
    sqlite3_stmt *st = anchor__sq_stmt(q, SQ_AGENT_SET_BANNED);

    ENSURE(anchor__sq_bind_str(st, 1, spiffe_id) == 0 &&
               sqlite3_bind_int(st, 2, banned) == SQLITE_OK,
           err, "cannot update the agent");
    TRY(update_one(q, st, spiffe_id, err));
    rc = 0;
out:
    return rc;
}

int anchor__sq_agent_set_svid(void *impl, const char *spiffe_id, const char *svid_serial,
                              int64_t svid_expires_at, int64_t now, struct anchor_err *err)
{
    int rc = -1;
    struct sq *q = impl;
    sqlite3_stmt *st = anchor__sq_stmt(q, SQ_AGENT_SET_SVID);

    ENSURE(anchor__sq_bind_str(st, 1, spiffe_id) == 0 &&
               anchor__sq_bind_str(st, 2, svid_serial) == 0 &&
               sqlite3_bind_int64(st, 3, svid_expires_at) == SQLITE_OK &&
               sqlite3_bind_int64(st, 4, now) == SQLITE_OK,
           err, "cannot update the agent");
    TRY(update_one(q, st, spiffe_id, err));
    rc = 0;
out:
    return rc;
}
