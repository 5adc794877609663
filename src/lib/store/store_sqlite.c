/*
 * The SQLite backend: a store is one connection to one database file.
 *
 * Open creates the file with mode 0600 (SQLite gives the -wal and -shm files
 * the same mode), then sets up the connection: extended result codes, a busy
 * timeout so that a second process (anchorctl, a restarting server) waits for
 * the lock instead of failing, foreign keys, WAL journal (readers never block
 * the writer), synchronous=FULL (a committed config document survives power
 * loss), the defensive flag (SQL cannot corrupt the file on purpose), and a
 * length limit on any value. Then it applies the missing migrations
 * (store_sqlite_migrations.c) in one IMMEDIATE transaction and prepares every
 * statement once. The document and agent operations live in
 * store_sqlite_docs.c and store_sqlite_agents.c.
 */
#include "store/sqlite_impl.h"
#include "util/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "ANCH", written by the first migration. */
#define SQ_APPLICATION_ID  1095648072
#define SQ_BUSY_TIMEOUT_MS 5000
/* Longest value SQLite accepts on this connection: a document plus room. */
#define SQ_MAX_LENGTH 4194304

static const char *const stmt_sql[SQ_STMT_COUNT] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_DOC_PUT] = "INSERT INTO config_docs (cluster_id, section, version, body, set_by, set_at) "
                   "SELECT ?1, ?2, COALESCE(MAX(version), 0) + 1, ?3, ?4, ?5 FROM config_docs "
                   "WHERE cluster_id = ?1 AND section = ?2 RETURNING version",
    [SQ_DOC_LATEST] = "SELECT cluster_id, section, version, revision, body, set_by, set_at "
                      "FROM config_docs WHERE cluster_id = ?1 AND section = ?2 "
                      "ORDER BY version DESC LIMIT 1",
    [SQ_DOC_VERSION] = "SELECT cluster_id, section, version, revision, body, set_by, set_at "
                       "FROM config_docs WHERE cluster_id = ?1 AND section = ?2 AND version = ?3",
    [SQ_DOC_HISTORY_SECTION] = "SELECT cluster_id, section, version, revision, "
                               "length(CAST(body AS BLOB)), set_by, set_at FROM config_docs "
                               "WHERE cluster_id = ?1 AND section = ?2 "
                               "ORDER BY revision DESC LIMIT ?3",
    [SQ_DOC_HISTORY_ALL] = "SELECT cluster_id, section, version, revision, "
                           "length(CAST(body AS BLOB)), set_by, set_at FROM config_docs "
                           "WHERE cluster_id = ?1 ORDER BY revision DESC LIMIT ?3",
    [SQ_DOC_REVISION] = "SELECT COALESCE(MAX(revision), 0) FROM config_docs",
    [SQ_AGENT_UPSERT] =
        "INSERT INTO agents (spiffe_id, svid_serial, svid_expires_at, first_seen, last_seen) "
        "VALUES (?1, COALESCE(?2, ''), CASE WHEN ?2 IS NULL THEN 0 ELSE ?3 END, ?4, ?4) "
        "ON CONFLICT (spiffe_id) DO UPDATE SET "
        "svid_serial = CASE WHEN ?2 IS NULL THEN svid_serial ELSE excluded.svid_serial END, "
        "svid_expires_at = CASE WHEN ?2 IS NULL THEN svid_expires_at "
        "ELSE excluded.svid_expires_at END, "
        "last_seen = excluded.last_seen",
    [SQ_AGENT_DELETE_TYPES] = "DELETE FROM agent_attestors WHERE spiffe_id = ?1",
    [SQ_AGENT_DELETE_ATTRS] = "DELETE FROM agent_attributes WHERE spiffe_id = ?1",
    [SQ_AGENT_INSERT_TYPE] =
        "INSERT INTO agent_attestors (spiffe_id, pos, attestor_type) VALUES (?1, ?2, ?3)",
    [SQ_AGENT_INSERT_ATTR] =
        "INSERT INTO agent_attributes (spiffe_id, pos, name, value) VALUES (?1, ?2, ?3, ?4)",
    [SQ_AGENT_GET] = "SELECT spiffe_id, svid_serial, svid_expires_at, first_seen, last_seen, "
                     "banned FROM agents WHERE spiffe_id = ?1",
    [SQ_AGENT_GET_TYPES] = "SELECT attestor_type FROM agent_attestors WHERE spiffe_id = ?1 "
                           "ORDER BY pos LIMIT ?2",
    [SQ_AGENT_GET_ATTRS] = "SELECT name, value FROM agent_attributes WHERE spiffe_id = ?1 "
                           "ORDER BY pos LIMIT ?2",
    [SQ_AGENT_LIST_FIRST] = "SELECT spiffe_id, svid_serial, svid_expires_at, first_seen, "
                            "last_seen, banned FROM agents ORDER BY spiffe_id LIMIT ?1",
    [SQ_AGENT_LIST_AFTER] = "SELECT spiffe_id, svid_serial, svid_expires_at, first_seen, "
                            "last_seen, banned FROM agents WHERE spiffe_id > ?2 "
                            "ORDER BY spiffe_id LIMIT ?1",
    [SQ_AGENT_SET_BANNED] = "UPDATE agents SET banned = ?2 WHERE spiffe_id = ?1",
    [SQ_AGENT_SET_SVID] = "UPDATE agents SET svid_serial = ?2, svid_expires_at = ?3, "
                          "last_seen = ?4 WHERE spiffe_id = ?1",
};

int anchor__sq_fail(struct sq *q, struct anchor_err *err, const char *what)
{
    int code = sqlite3_extended_errcode(q->db);

    if ((code & 0xff) == SQLITE_BUSY)
        anchor_err_set(err, "datastore %s: %s: database is locked by another process", q->path,
                       what);
    else
        anchor_err_set(err, "datastore %s: %s: %s", q->path, what, sqlite3_errmsg(q->db));
    return -1;
}

sqlite3_stmt *anchor__sq_stmt(struct sq *q, enum sq_stmt_id id)
{
    sqlite3_stmt *st = q->stmt[id];

    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
    return st;
}

int anchor__sq_bind_str(sqlite3_stmt *st, int idx, const char *s)
{
    if (s == NULL)
        return sqlite3_bind_null(st, idx) == SQLITE_OK ? 0 : -1;
    /* store.c bounded every string far below INT_MAX. */
    return sqlite3_bind_text(st, idx, s, (int)strlen(s), SQLITE_STATIC) == SQLITE_OK ? 0 : -1;
}

int anchor__sq_column_dup(struct sq *q, sqlite3_stmt *st, int col, size_t max, char **out,
                          size_t *len, struct anchor_err *err)
{
    int rc = -1;
    const unsigned char *text = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    char *copy = NULL;

    ENSURE(text != NULL || sqlite3_column_type(st, col) == SQLITE_NULL, err,
           "datastore %s: out of memory", q->path);
    ENSURE(n >= 0 && (size_t)n <= max, err, "datastore %s: a stored value is longer than %zu bytes",
           q->path, max);
    copy = malloc((size_t)n + 1);
    ENSURE(copy != NULL, err, "out of memory");
    if (n > 0)
        memcpy(copy, text, (size_t)n);
    copy[n] = '\0';
    *out = copy;
    if (len != NULL)
        *len = (size_t)n;
    rc = 0;
out:
    return rc;
}

int anchor__sq_exec(struct sq *q, enum sq_stmt_id id, struct anchor_err *err)
{
    sqlite3_stmt *st = anchor__sq_stmt(q, id);
    int r = sqlite3_step(st);

    (void)sqlite3_reset(st);
    if (r != SQLITE_DONE)
        return anchor__sq_fail(q, err,
                               id == SQ_BEGIN    ? "cannot start a transaction"
                               : id == SQ_COMMIT ? "cannot commit"
                                                 : "cannot roll back");
    return 0;
}

/* Creates the file with mode 0600 when it does not exist; an existing file
 * keeps its mode. */
static int create_file(const char *path, struct anchor_err *err)
{
    int rc = -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    ENSURE(fd >= 0, err, "cannot open datastore %s: %s", path, strerror(errno));
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Reads the single integer a PRAGMA or SELECT without inputs returns. */
static int query_int(struct sq *q, const char *sql, int64_t *out, struct anchor_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        (void)anchor__sq_fail(q, err, sql);
        goto out;
    }
    *out = sqlite3_column_int64(st, 0);
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Switches to WAL. This is the first statement that reads the file, so it is
 * where a file that is not an SQLite database shows. */
static int set_wal(struct sq *q, struct anchor_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    const unsigned char *mode;

    if (r == SQLITE_OK)
        r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        r = sqlite3_extended_errcode(q->db) & 0xff;
        ENSURE(r != SQLITE_NOTADB && r != SQLITE_CORRUPT, err,
               "datastore %s is not an SQLite database or is damaged (%s)", q->path,
               sqlite3_errmsg(q->db));
        (void)anchor__sq_fail(q, err, "cannot switch to WAL journal");
        goto out;
    }
    mode = sqlite3_column_text(st, 0);
    ENSURE(mode != NULL && strcmp((const char *)mode, "wal") == 0, err,
           "datastore %s: the file system does not support the WAL journal", q->path);
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Checks that the file is anchor's (or empty) and of a version this build
 * knows, then runs the missing migrations. Inside the caller's transaction. */
static int migrate(struct sq *q, struct anchor_err *err)
{
    int rc = -1;
    int64_t version, app_id, objects;
    char sql[64];
    int v;

    TRY(query_int(q, "PRAGMA application_id", &app_id, err));
    TRY(query_int(q, "PRAGMA user_version", &version, err));
    TRY(query_int(q, "SELECT count(*) FROM sqlite_schema", &objects, err));
    ENSURE(app_id == SQ_APPLICATION_ID || (app_id == 0 && version == 0 && objects == 0), err,
           "datastore %s is an SQLite database of another application", q->path);
    ENSURE(version <= ANCHOR_STORE_SCHEMA_VERSION, err,
           "datastore %s has schema version %lld, newer than this build supports (%d): "
           "run a newer anchor or restore a backup",
           q->path, (long long)version, ANCHOR_STORE_SCHEMA_VERSION);
    ENSURE(version >= 0, err, "datastore %s has an invalid schema version %lld", q->path,
           (long long)version);
    for (v = (int)version; v < anchor__sq_migration_count; v++) {
        if (sqlite3_exec(q->db, anchor__sq_migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
            (void)anchor__sq_fail(q, err, "schema migration failed");
            goto out;
        }
    }
    if (version < anchor__sq_migration_count) {
        /* A PRAGMA takes no bound parameters; the number is our constant. */
        (void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", anchor__sq_migration_count);
        if (sqlite3_exec(q->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            (void)anchor__sq_fail(q, err, "schema migration failed");
            goto out;
        }
    }
    q->schema_version = anchor__sq_migration_count;
    rc = 0;
out:
    return rc;
}

static int configure(struct sq *q, struct anchor_err *err)
{
    int rc = -1;

    (void)sqlite3_extended_result_codes(q->db, 1);
    (void)sqlite3_busy_timeout(q->db, SQ_BUSY_TIMEOUT_MS);
    (void)sqlite3_limit(q->db, SQLITE_LIMIT_LENGTH, SQ_MAX_LENGTH);
    (void)sqlite3_db_config(q->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    (void)sqlite3_db_config(q->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    TRY(set_wal(q, err));
    if (sqlite3_exec(q->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL", NULL, NULL,
                     NULL) != SQLITE_OK) {
        (void)anchor__sq_fail(q, err, "cannot configure the connection");
        goto out;
    }
    rc = 0;
out:
    return rc;
}

/* Prepares statements first..last (inclusive) for the connection's life. */
static int prepare(struct sq *q, int first, int last, struct anchor_err *err)
{
    int rc = -1;
    int i;

    for (i = first; i <= last; i++) {
        if (sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->stmt[i],
                               NULL) != SQLITE_OK) {
            (void)anchor__sq_fail(q, err, "cannot prepare a statement");
            goto out;
        }
    }
    rc = 0;
out:
    return rc;
}

static void sq_close(void *impl)
{
    struct sq *q = impl;
    int i;

    if (q == NULL)
        return;
    for (i = 0; i < SQ_STMT_COUNT; i++)
        sqlite3_finalize(q->stmt[i]);
    sqlite3_close(q->db);
    free(q->path);
    free(q);
}

static int sq_open(void **impl, const char *path, struct anchor_err *err)
{
    int rc = -1;
    struct sq *q = NULL;

    ENSURE(path[0] != '\0', err, "datastore URL sqlite:// has no path");
    q = calloc(1, sizeof(*q));
    ENSURE(q != NULL, err, "out of memory");
    q->path = strdup(path);
    ENSURE(q->path != NULL, err, "out of memory");
    TRY(create_file(path, err));
    if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        ENSURE(q->db != NULL, err, "out of memory");
        (void)anchor__sq_fail(q, err, "cannot open");
        goto out;
    }
    TRY(configure(q, err));
    TRY(prepare(q, SQ_BEGIN, SQ_ROLLBACK, err));
    TRY(anchor__sq_exec(q, SQ_BEGIN, err));
    if (migrate(q, err) != 0) {
        (void)sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    TRY(anchor__sq_exec(q, SQ_COMMIT, err));
    /* The other statements name the tables, so they exist only now. */
    TRY(prepare(q, SQ_ROLLBACK + 1, SQ_STMT_COUNT - 1, err));
    *impl = q;
    q = NULL;
    rc = 0;
out:
    sq_close(q);
    return rc;
}

static int sq_schema_version(const void *impl)
{
    const struct sq *q = impl;

    return q->schema_version;
}

const struct anchor__store_ops anchor__store_sqlite_ops = {
    .scheme = "sqlite://",
    .open = sq_open,
    .close = sq_close,
    .schema_version = sq_schema_version,
    .doc_put = anchor__sq_doc_put,
    .doc_get = anchor__sq_doc_get,
    .doc_history = anchor__sq_doc_history,
    .doc_revision = anchor__sq_doc_revision,
    .agent_upsert = anchor__sq_agent_upsert,
    .agent_get = anchor__sq_agent_get,
    .agent_list = anchor__sq_agent_list,
    .agent_set_banned = anchor__sq_agent_set_banned,
    .agent_set_svid = anchor__sq_agent_set_svid,
};
