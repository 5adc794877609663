/*
 * Tests of the datastore (anchor/store.h) on its SQLite backend: schema
 * creation and migration, the versioned config documents and their history,
 * the revision counter, the attested agents, and the hostile twins: files
 * that are not anchor databases, a schema from the future, oversized and
 * malformed input, and SQL-looking input that must come back verbatim.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "anchor/store.h"

struct fixture {
    char dir[64];
    char path[128];
    char url[160];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    strcpy(fx->dir, "/tmp/anchor-test-store-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    (void)snprintf(fx->path, sizeof(fx->path), "%s/anchor.db", fx->dir);
    (void)snprintf(fx->url, sizeof(fx->url), "sqlite://%s", fx->path);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char p[192];
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    size_t i;

    for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        (void)snprintf(p, sizeof(p), "%s%s", fx->path, suffixes[i]);
        (void)unlink(p);
    }
    (void)rmdir(fx->dir);
    free(fx);
    return 0;
}

static struct anchor_store *open_ok(const struct fixture *fx)
{
    struct anchor_store *s = NULL;
    struct anchor_err err = {{0}};

    if (anchor_store_open(&s, fx->url, &err) != 0)
        fail_msg("open: %s", anchor_err_msg(&err));
    return s;
}

static int64_t put_ok(struct anchor_store *s, const char *cluster, const char *section,
                      const char *text, int64_t at)
{
    struct anchor_err err = {{0}};
    int64_t version = -1;

    if (anchor_store_doc_put(s, cluster, section, text, strlen(text), "uid=0", at, &version,
                             &err) != 0)
        fail_msg("put: %s", anchor_err_msg(&err));
    return version;
}

/* Runs one SQL statement on the file outside the store, as an operator (or an
 * attacker with write access) could. */
static void raw_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* --- schema ------------------------------------------------------------- */

static void test_fresh_open_creates_schema(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    struct stat st;
    int64_t rev = -1;
    struct anchor_err err = {{0}};

    assert_int_equal(anchor_store_schema_version(s), ANCHOR_STORE_SCHEMA_VERSION);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(anchor_store_doc_revision(s, &rev, &err), 0);
    assert_int_equal(rev, 0);
    anchor_store_free(s);
    assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), ANCHOR_STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                                       "AND name IN ('config_docs', 'agents', 'agent_attestors', "
                                       "'agent_attributes')"),
                     4);
    /* WAL is a property of the file, kept across connections. */
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *q = NULL;

        assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
}

static void test_reopen_keeps_data(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    struct anchor_store_doc *d = NULL;
    struct anchor_store_agent *got = NULL;
    struct anchor_err err = {{0}};
    const char *types[] = {"x509pop"};
    struct anchor_attr attrs[] = {{"x509_pop.serial_number", "3a7f2c1b"}};
    struct anchor_store_login a = {.spiffe_id = "spiffe://td/agents/x509pop/ab",
                                   .attestor_types = types,
                                   .n_attestor_types = 1,
                                   .attrs = attrs,
                                   .n_attrs = 1,
                                   .svid_serial = "0aff",
                                   .svid_expires_at = 5000,
                                   .now = 1000};

    assert_int_equal(put_ok(s, "c-8f2k1q", "AgentAttestation", "kind: AgentAttestation\n", 10), 1);
    assert_int_equal(anchor_store_agent_upsert(s, &a, &err), 0);
    anchor_store_free(s);

    s = open_ok(fx);
    assert_int_equal(anchor_store_doc_get_latest(s, "c-8f2k1q", "AgentAttestation", &d, &err), 0);
    assert_non_null(d);
    assert_string_equal(d->text, "kind: AgentAttestation\n");
    assert_int_equal(d->version, 1);
    assert_int_equal(d->set_at, 10);
    assert_string_equal(d->set_by, "uid=0");
    assert_int_equal(anchor_store_agent_get(s, a.spiffe_id, &got, &err), 0);
    assert_non_null(got);
    assert_string_equal(got->svid_serial, "0aff");
    assert_int_equal(got->n_attrs, 1);
    anchor_store_doc_free(d);
    anchor_store_agent_free(got);
    anchor_store_free(s);
}

/* A second open of an up-to-date file runs no migration and keeps the
 * version; two store objects on one file see each other's writes. */
static void test_two_connections_share_revision(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *a = open_ok(fx);
    struct anchor_store *b = open_ok(fx);
    struct anchor_err err = {{0}};
    int64_t rev1 = -1, rev2 = -1;

    assert_int_equal(anchor_store_doc_revision(b, &rev1, &err), 0);
    assert_int_equal(put_ok(a, "c1", "AgentAttestation", "x", 1), 1);
    assert_int_equal(anchor_store_doc_revision(b, &rev2, &err), 0);
    assert_true(rev2 > rev1);
    assert_int_equal(put_ok(b, "c1", "AgentAttestation", "y", 2), 2);
    assert_int_equal(anchor_store_doc_revision(a, &rev1, &err), 0);
    assert_true(rev1 > rev2);
    anchor_store_free(a);
    anchor_store_free(b);
}

/* --- config documents ----------------------------------------------------- */

static void test_versions_per_cluster_and_section(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    static const struct {
        const char *cluster, *section, *text;
        int64_t version;
    } rows[] = {
        {"c1", "AgentAttestation", "a1", 1},
        {"c1", "AgentAttestation", "a2", 2},
        {"c1", "Other", "o1", 1},
        {"c2", "AgentAttestation", "b1", 1},
        {"c1", "AgentAttestation", "a3", 3},
        {"c1", "Other", "o2", 2},
    };
    struct anchor_store_doc *d = NULL;
    struct anchor_err err = {{0}};
    int64_t rev = 0, prev = 0;
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(
            put_ok(s, rows[i].cluster, rows[i].section, rows[i].text, (int64_t)(100 + i)),
            rows[i].version);
        assert_int_equal(anchor_store_doc_revision(s, &rev, &err), 0);
        assert_true(rev > prev);
        prev = rev;
    }
    assert_int_equal(anchor_store_doc_get_latest(s, "c1", "AgentAttestation", &d, &err), 0);
    assert_string_equal(d->text, "a3");
    assert_int_equal(d->version, 3);
    assert_int_equal(d->text_len, 2);
    assert_int_equal(d->revision, rev - 1);
    anchor_store_doc_free(d);
    assert_int_equal(anchor_store_doc_get_version(s, "c1", "AgentAttestation", 2, &d, &err), 0);
    assert_string_equal(d->text, "a2");
    assert_int_equal(d->set_at, 101);
    anchor_store_doc_free(d);
    /* Hostile twins: absent version, absent section, absent cluster. */
    d = (struct anchor_store_doc *)1;
    assert_int_equal(anchor_store_doc_get_version(s, "c1", "AgentAttestation", 4, &d, &err), 0);
    assert_null(d);
    d = (struct anchor_store_doc *)1;
    assert_int_equal(anchor_store_doc_get_latest(s, "c1", "Nothing", &d, &err), 0);
    assert_null(d);
    d = (struct anchor_store_doc *)1;
    assert_int_equal(anchor_store_doc_get_latest(s, "c3", "AgentAttestation", &d, &err), 0);
    assert_null(d);
    assert_int_equal(anchor_store_doc_get_version(s, "c1", "AgentAttestation", 0, &d, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "config document version must be 1 or more");
    anchor_store_free(s);
}

static void test_history_order(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    struct anchor_store_doc_list *l = NULL;
    struct anchor_err err = {{0}};

    (void)put_ok(s, "c1", "A", "first", 10);
    (void)put_ok(s, "c1", "B", "b-first", 20);
    (void)put_ok(s, "c1", "A", "second!", 30);
    (void)put_ok(s, "c2", "A", "other cluster", 40);

    assert_int_equal(anchor_store_doc_history(s, "c1", "A", 0, &l, &err), 0);
    assert_int_equal(l->n, 2);
    assert_int_equal(l->v[0].version, 2);
    assert_int_equal(l->v[0].set_at, 30);
    assert_int_equal(l->v[0].text_len, 7);
    assert_null(l->v[0].text);
    assert_int_equal(l->v[1].version, 1);
    assert_string_equal(l->v[1].set_by, "uid=0");
    anchor_store_doc_list_free(l);

    assert_int_equal(anchor_store_doc_history(s, "c1", NULL, 0, &l, &err), 0);
    assert_int_equal(l->n, 3);
    assert_string_equal(l->v[0].section, "A");
    assert_string_equal(l->v[1].section, "B");
    assert_string_equal(l->v[2].section, "A");
    assert_true(l->v[0].revision > l->v[1].revision && l->v[1].revision > l->v[2].revision);
    anchor_store_doc_list_free(l);

    assert_int_equal(anchor_store_doc_history(s, "c1", NULL, 1, &l, &err), 0);
    assert_int_equal(l->n, 1);
    assert_int_equal(l->v[0].set_at, 30);
    anchor_store_doc_list_free(l);

    assert_int_equal(anchor_store_doc_history(s, "nobody", NULL, 0, &l, &err), 0);
    assert_int_equal(l->n, 0);
    anchor_store_doc_list_free(l);
    anchor_store_free(s);
}

static void test_document_size_bounds(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    struct anchor_store_doc *d = NULL;
    struct anchor_err err = {{0}};
    size_t max = ANCHOR_STORE_MAX_DOC_BYTES;
    char *big = malloc(max + 2);
    int64_t v = -1;

    assert_non_null(big);
    memset(big, 'y', max + 1);
    big[max + 1] = '\0';
    /* At the bound: stored and read back whole. */
    assert_int_equal(anchor_store_doc_put(s, "c1", "A", big, max, "uid=0", 1, &v, &err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(anchor_store_doc_get_latest(s, "c1", "A", &d, &err), 0);
    assert_int_equal(d->text_len, max);
    assert_memory_equal(d->text, big, max);
    anchor_store_doc_free(d);
    /* One byte more: refused before the backend. */
    v = -1;
    assert_int_equal(anchor_store_doc_put(s, "c1", "A", big, max + 1, "uid=0", 1, &v, &err), -1);
    assert_string_equal(anchor_err_msg(&err),
                        "config document is too large (1048577 bytes, at most 1048576)");
    assert_int_equal(v, -1);
    free(big);
    anchor_store_free(s);
}

/* Table of refused arguments, each with its exact message. */
static void test_put_refuses_bad_arguments(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    char long_name[ANCHOR_STORE_MAX_NAME_BYTES + 2];
    static const char nul_doc[] = {'a', '\0', 'b'};
    struct {
        const char *cluster, *section, *text;
        size_t len;
        const char *set_by, *msg;
    } rows[] = {
        {NULL, "A", "x", 1, "uid=0", "cluster id is missing"},
        {"", "A", "x", 1, "uid=0", "cluster id is empty"},
        {long_name, "A", "x", 1, "uid=0", "cluster id is longer than 256 bytes"},
        {"c1", "", "x", 1, "uid=0", "section is empty"},
        {"c1", long_name, "x", 1, "uid=0", "section is longer than 256 bytes"},
        {"c1", "A", "x", 1, NULL, "set_by is missing"},
        {"c1", "A", NULL, 0, "uid=0", "config document is missing"},
        {"c1", "A", nul_doc, sizeof(nul_doc), "uid=0", "config document contains a NUL byte"},
    };
    struct anchor_err err = {{0}};
    int64_t rev = -1, v;
    size_t i;

    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        anchor_err_clear(&err);
        assert_int_equal(anchor_store_doc_put(s, rows[i].cluster, rows[i].section, rows[i].text,
                                              rows[i].len, rows[i].set_by, 1, &v, &err),
                         -1);
        assert_string_equal(anchor_err_msg(&err), rows[i].msg);
    }
    /* The happy twin of the long name: exactly at the bound. */
    long_name[ANCHOR_STORE_MAX_NAME_BYTES] = '\0';
    assert_int_equal(put_ok(s, long_name, long_name, "x", 1), 1);
    assert_int_equal(anchor_store_doc_revision(s, &rev, &err), 0);
    assert_int_equal(rev, 1);
    anchor_store_free(s);
}

/* SQL-looking input, quotes, invalid UTF-8 and control bytes are data: they
 * come back byte for byte and the schema is untouched. */
static void test_injection_stored_verbatim(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    static const char *const hostile[] = {
        "c'; DROP TABLE config_docs; --",    "x\" OR 1=1 --",
        "'); DELETE FROM agents; SELECT ('", "%s%n\\x00 ?1 :name @p $v",
        "\xff\xfe invalid utf-8 \xc0\xaf",   "line\nbreak\r\ttab",
    };
    struct anchor_store_doc *d = NULL;
    struct anchor_store_agent *got = NULL;
    struct anchor_err err = {{0}};
    char id[256];
    size_t i;
    int64_t v;

    for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        assert_int_equal(anchor_store_doc_put(s, hostile[i], hostile[i], hostile[i],
                                              strlen(hostile[i]), hostile[i], 7, &v, &err),
                         0);
        assert_int_equal(v, 1);
        assert_int_equal(anchor_store_doc_get_latest(s, hostile[i], hostile[i], &d, &err), 0);
        assert_non_null(d);
        assert_string_equal(d->cluster_id, hostile[i]);
        assert_string_equal(d->section, hostile[i]);
        assert_string_equal(d->set_by, hostile[i]);
        assert_int_equal(d->text_len, strlen(hostile[i]));
        assert_memory_equal(d->text, hostile[i], d->text_len);
        anchor_store_doc_free(d);

        (void)snprintf(id, sizeof(id), "spiffe://td/%s", hostile[i]);
        {
            const char *types[] = {hostile[i]};
            struct anchor_attr attrs[] = {{(char *)hostile[i], (char *)hostile[i]}};
            struct anchor_store_login a = {.spiffe_id = id,
                                           .attestor_types = types,
                                           .n_attestor_types = 1,
                                           .attrs = attrs,
                                           .n_attrs = 1,
                                           .now = 3};

            assert_int_equal(anchor_store_agent_upsert(s, &a, &err), 0);
        }
        assert_int_equal(anchor_store_agent_get(s, id, &got, &err), 0);
        assert_non_null(got);
        assert_string_equal(got->spiffe_id, id);
        assert_string_equal(got->attestor_types[0], hostile[i]);
        assert_string_equal(got->attrs[0].name, hostile[i]);
        assert_string_equal(got->attrs[0].value, hostile[i]);
        anchor_store_agent_free(got);
    }
    anchor_store_free(s);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM config_docs"), 6);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM agents"), 6);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                                       "AND name IN ('config_docs', 'agents', 'agent_attestors', "
                                       "'agent_attributes')"),
                     4);
}

/* --- agents ---------------------------------------------------------------- */

static void test_agent_upsert_keeps_first_seen_and_banned(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    struct anchor_store_agent *got = NULL;
    struct anchor_err err = {{0}};
    const char *types1[] = {"x509pop"};
    const char *types2[] = {"x509pop", "tpm"};
    struct anchor_attr attrs1[] = {{"x509_pop.serial_number", "01"},
                                   {"x509_pop.subject.cn", "node-1"}};
    struct anchor_attr attrs2[] = {{"x509_pop.serial_number", "02"}};
    struct anchor_store_login a = {.spiffe_id = "spiffe://td/agent/1",
                                   .attestor_types = types1,
                                   .n_attestor_types = 1,
                                   .attrs = attrs1,
                                   .n_attrs = 2,
                                   .svid_serial = "ab01",
                                   .svid_expires_at = 1100,
                                   .now = 100};

    assert_int_equal(anchor_store_agent_upsert(s, &a, &err), 0);
    assert_int_equal(anchor_store_agent_get(s, a.spiffe_id, &got, &err), 0);
    assert_int_equal(got->first_seen, 100);
    assert_int_equal(got->last_seen, 100);
    assert_int_equal(got->banned, 0);
    assert_string_equal(got->svid_serial, "ab01");
    assert_int_equal(got->svid_expires_at, 1100);
    assert_int_equal(got->n_attrs, 2);
    assert_string_equal(got->attrs[1].name, "x509_pop.subject.cn");
    assert_string_equal(got->attrs[1].value, "node-1");
    anchor_store_agent_free(got);

    assert_int_equal(anchor_store_agent_set_banned(s, a.spiffe_id, 1, &err), 0);
    a.attestor_types = types2;
    a.n_attestor_types = 2;
    a.attrs = attrs2;
    a.n_attrs = 1;
    a.svid_serial = NULL; /* keep the recorded SVID */
    a.svid_expires_at = 7;
    a.now = 200;
    assert_int_equal(anchor_store_agent_upsert(s, &a, &err), 0);
    assert_int_equal(anchor_store_agent_get(s, a.spiffe_id, &got, &err), 0);
    assert_int_equal(got->first_seen, 100);
    assert_int_equal(got->last_seen, 200);
    assert_int_equal(got->banned, 1);
    assert_string_equal(got->svid_serial, "ab01");
    assert_int_equal(got->svid_expires_at, 1100);
    assert_int_equal(got->n_attestor_types, 2);
    assert_string_equal(got->attestor_types[0], "x509pop");
    assert_string_equal(got->attestor_types[1], "tpm");
    assert_int_equal(got->n_attrs, 1);
    assert_string_equal(got->attrs[0].value, "02");
    anchor_store_agent_free(got);

    /* A new agent with no SVID yet. */
    a.spiffe_id = "spiffe://td/agent/2";
    assert_int_equal(anchor_store_agent_upsert(s, &a, &err), 0);
    assert_int_equal(anchor_store_agent_get(s, a.spiffe_id, &got, &err), 0);
    assert_string_equal(got->svid_serial, "");
    assert_int_equal(got->svid_expires_at, 0);
    anchor_store_agent_free(got);
    got = (struct anchor_store_agent *)1;
    assert_int_equal(anchor_store_agent_get(s, "spiffe://td/agent/3", &got, &err), 0);
    assert_null(got);
    anchor_store_free(s);
}

static void test_agent_ban_unban_and_svid(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    struct anchor_store_agent *got = NULL;
    struct anchor_err err = {{0}};
    struct anchor_store_login a = {.spiffe_id = "spiffe://td/agent/1", .now = 5};

    assert_int_equal(anchor_store_agent_upsert(s, &a, &err), 0);
    assert_int_equal(anchor_store_agent_set_banned(s, a.spiffe_id, 1, &err), 0);
    assert_int_equal(anchor_store_agent_get(s, a.spiffe_id, &got, &err), 0);
    assert_int_equal(got->banned, 1);
    anchor_store_agent_free(got);
    assert_int_equal(anchor_store_agent_set_banned(s, a.spiffe_id, 0, &err), 0);
    assert_int_equal(anchor_store_agent_get(s, a.spiffe_id, &got, &err), 0);
    assert_int_equal(got->banned, 0);
    anchor_store_agent_free(got);

    assert_int_equal(anchor_store_agent_set_svid(s, a.spiffe_id, "DEADBEEF01", 9000, 60, &err), 0);
    assert_int_equal(anchor_store_agent_get(s, a.spiffe_id, &got, &err), 0);
    assert_string_equal(got->svid_serial, "DEADBEEF01");
    assert_int_equal(got->svid_expires_at, 9000);
    assert_int_equal(got->last_seen, 60);
    assert_int_equal(got->first_seen, 5);
    anchor_store_agent_free(got);

    /* Hostile twins: unknown agents, bad serials, bad IDs. */
    assert_int_equal(anchor_store_agent_set_banned(s, "spiffe://td/nobody", 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "agent spiffe://td/nobody not found");
    assert_int_equal(anchor_store_agent_set_svid(s, "spiffe://td/nobody", "01", 1, 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "agent spiffe://td/nobody not found");
    assert_int_equal(anchor_store_agent_set_svid(s, a.spiffe_id, "01'; --", 1, 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "SVID serial is not hexadecimal");
    assert_int_equal(anchor_store_agent_set_svid(s, a.spiffe_id, "", 1, 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "SVID serial is empty");
    assert_int_equal(anchor_store_agent_set_banned(s, "https://td/x", 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "SPIFFE ID does not start with spiffe://");
    assert_int_equal(anchor_store_agent_set_banned(s, "spiffe://", 1, &err), -1);
    assert_string_equal(anchor_err_msg(&err), "SPIFFE ID does not start with spiffe://");
    anchor_store_free(s);
}

static void test_agent_list_order_limit_paging(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    struct anchor_store_agent_list *l = NULL;
    struct anchor_err err = {{0}};
    static const char *const ids[] = {"spiffe://td/c", "spiffe://td/a", "spiffe://td/B",
                                      "spiffe://td/b"};
    size_t i;

    for (i = 0; i < 4; i++) {
        struct anchor_store_login a = {.spiffe_id = ids[i], .now = (int64_t)i};

        assert_int_equal(anchor_store_agent_upsert(s, &a, &err), 0);
    }
    assert_int_equal(anchor_store_agent_list(s, NULL, 0, &l, &err), 0);
    assert_int_equal(l->n, 4);
    /* Bytewise: uppercase before lowercase. */
    assert_string_equal(l->v[0].spiffe_id, "spiffe://td/B");
    assert_string_equal(l->v[1].spiffe_id, "spiffe://td/a");
    assert_string_equal(l->v[2].spiffe_id, "spiffe://td/b");
    assert_string_equal(l->v[3].spiffe_id, "spiffe://td/c");
    anchor_store_agent_list_free(l);

    assert_int_equal(anchor_store_agent_list(s, NULL, 2, &l, &err), 0);
    assert_int_equal(l->n, 2);
    anchor_store_agent_list_free(l);
    assert_int_equal(anchor_store_agent_list(s, "spiffe://td/a", 2, &l, &err), 0);
    assert_int_equal(l->n, 2);
    assert_string_equal(l->v[0].spiffe_id, "spiffe://td/b");
    assert_string_equal(l->v[1].spiffe_id, "spiffe://td/c");
    anchor_store_agent_list_free(l);
    assert_int_equal(anchor_store_agent_list(s, "spiffe://td/c", 2, &l, &err), 0);
    assert_int_equal(l->n, 0);
    anchor_store_agent_list_free(l);
    anchor_store_free(s);
}

static void test_agent_refuses_bad_records(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    struct anchor_err err = {{0}};
    char long_value[ANCHOR_STORE_MAX_ATTR_VALUE + 2];
    char long_id[ANCHOR_STORE_MAX_ID_BYTES + 16];
    const char *types[ANCHOR_STORE_MAX_TYPES + 1];
    struct anchor_attr attrs[ANCHOR_STORE_MAX_ATTRS + 1];
    struct anchor_attr bad_value[] = {{"n", long_value}};
    struct anchor_attr no_value[] = {{"n", NULL}};
    const char *empty_type[] = {""};
    size_t i;
    struct {
        struct anchor_store_login a;
        const char *msg;
    } rows[] = {
        {{.spiffe_id = NULL}, "SPIFFE ID is missing"},
        {{.spiffe_id = "td/agent"}, "SPIFFE ID does not start with spiffe://"},
        {{.spiffe_id = long_id}, "SPIFFE ID is longer than 2048 bytes"},
        {{.spiffe_id = "spiffe://td/a",
          .attestor_types = types,
          .n_attestor_types = ANCHOR_STORE_MAX_TYPES + 1},
         "agent has too many attestor types (17, at most 16)"},
        {{.spiffe_id = "spiffe://td/a", .attestor_types = empty_type, .n_attestor_types = 1},
         "attestor type is empty"},
        {{.spiffe_id = "spiffe://td/a", .attrs = attrs, .n_attrs = ANCHOR_STORE_MAX_ATTRS + 1},
         "agent has too many attributes (129, at most 128)"},
        {{.spiffe_id = "spiffe://td/a", .attrs = bad_value, .n_attrs = 1},
         "attribute n is longer than 4096 bytes"},
        {{.spiffe_id = "spiffe://td/a", .attrs = no_value, .n_attrs = 1},
         "attribute n has no value"},
        {{.spiffe_id = "spiffe://td/a", .attrs = NULL, .n_attrs = 1}, "attributes are missing"},
        {{.spiffe_id = "spiffe://td/a", .svid_serial = "xyz"}, "SVID serial is not hexadecimal"},
    };
    struct anchor_store_agent_list *l = NULL;

    memset(long_value, 'v', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    memcpy(long_id, "spiffe://td/", 12);
    memset(long_id + 12, 'i', sizeof(long_id) - 13);
    long_id[sizeof(long_id) - 1] = '\0';
    for (i = 0; i < ANCHOR_STORE_MAX_TYPES + 1; i++)
        types[i] = "x509pop";
    for (i = 0; i < ANCHOR_STORE_MAX_ATTRS + 1; i++)
        attrs[i] = (struct anchor_attr){"n", "v"};
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        anchor_err_clear(&err);
        assert_int_equal(anchor_store_agent_upsert(s, &rows[i].a, &err), -1);
        assert_string_equal(anchor_err_msg(&err), rows[i].msg);
    }
    assert_int_equal(anchor_store_agent_list(s, NULL, 0, &l, &err), 0);
    assert_int_equal(l->n, 0);
    anchor_store_agent_list_free(l);
    /* Happy twins at the bounds. */
    {
        struct anchor_store_login a = {.spiffe_id = "spiffe://td/a",
                                       .attestor_types = types,
                                       .n_attestor_types = ANCHOR_STORE_MAX_TYPES,
                                       .attrs = attrs,
                                       .n_attrs = ANCHOR_STORE_MAX_ATTRS};
        struct anchor_store_agent *got = NULL;

        long_value[ANCHOR_STORE_MAX_ATTR_VALUE] = '\0';
        attrs[0].value = long_value;
        assert_int_equal(anchor_store_agent_upsert(s, &a, &err), 0);
        assert_int_equal(anchor_store_agent_get(s, "spiffe://td/a", &got, &err), 0);
        assert_int_equal(got->n_attestor_types, ANCHOR_STORE_MAX_TYPES);
        assert_int_equal(got->n_attrs, ANCHOR_STORE_MAX_ATTRS);
        assert_string_equal(got->attrs[0].value, long_value);
        anchor_store_agent_free(got);
    }
    anchor_store_free(s);
}

/* Another process holding the write lock for a moment makes a write wait
 * (busy timeout), not fail. */
static void test_waits_for_a_briefly_held_lock(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    struct anchor_err err = {{0}};
    int fds[2], status;
    char c;
    pid_t pid;
    const struct anchor_store_login a = {.spiffe_id = "spiffe://td/a", .now = 1};

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sqlite3 *db = NULL;

        if (sqlite3_open(fx->path, &db) != SQLITE_OK ||
            sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
            write(fds[1], "L", 1) != 1)
            _exit(1);
        (void)usleep(300 * 1000);
        _exit(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : 1);
    }
    assert_int_equal(read(fds[0], &c, 1), 1);
    assert_int_equal(put_ok(s, "c1", "A", "x", 1), 1);
    assert_int_equal(anchor_store_agent_upsert(s, &a, &err), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fds[0]);
    close(fds[1]);
    anchor_store_free(s);
}

/* --- files that are not ours -------------------------------------------------- */

static void test_newer_schema_refused(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    struct anchor_err err = {{0}};
    char want[512];

    anchor_store_free(s);
    raw_sql(fx->path, "PRAGMA user_version = 99");
    s = NULL;
    assert_int_equal(anchor_store_open(&s, fx->url, &err), -1);
    assert_null(s);
    (void)snprintf(want, sizeof(want),
                   "datastore %s has schema version 99, newer than this build supports (%d): "
                   "run a newer anchor or restore a backup",
                   fx->path, ANCHOR_STORE_SCHEMA_VERSION);
    assert_string_equal(anchor_err_msg(&err), want);
    /* Nothing was changed by the refused open. */
    assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 99);
}

static void test_hostile_files_refused(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = NULL;
    struct anchor_err err = {{0}};
    char want[512];
    unsigned char junk[8192];
    size_t i;

    /* Text. */
    write_file(fx->path, "this is not a database\n", 23);
    assert_int_equal(anchor_store_open(&s, fx->url, &err), -1);
    (void)snprintf(want, sizeof(want),
                   "datastore %s is not an SQLite database or is damaged (file is not a "
                   "database)",
                   fx->path);
    assert_string_equal(anchor_err_msg(&err), want);

    /* Random bytes. */
    for (i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    write_file(fx->path, junk, sizeof(junk));
    assert_int_equal(anchor_store_open(&s, fx->url, &err), -1);
    assert_string_equal(anchor_err_msg(&err), want);

    /* The SQLite magic followed by garbage. */
    memcpy(junk, "SQLite format 3", 16);
    write_file(fx->path, junk, sizeof(junk));
    assert_int_equal(anchor_store_open(&s, fx->url, &err), -1);
    assert_non_null(strstr(anchor_err_msg(&err), "is not an SQLite database or is damaged"));
    assert_int_equal(unlink(fx->path), 0);

    /* Another application's database. */
    raw_sql(fx->path, "CREATE TABLE users (name TEXT)");
    assert_int_equal(anchor_store_open(&s, fx->url, &err), -1);
    (void)snprintf(want, sizeof(want), "datastore %s is an SQLite database of another application",
                   fx->path);
    assert_string_equal(anchor_err_msg(&err), want);
    assert_int_equal(unlink(fx->path), 0);
    raw_sql(fx->path, "PRAGMA application_id = 42");
    assert_int_equal(anchor_store_open(&s, fx->url, &err), -1);
    assert_string_equal(anchor_err_msg(&err), want);
    assert_int_equal(unlink(fx->path), 0);

    /* An empty file is an empty database: it becomes ours. */
    write_file(fx->path, "", 0);
    assert_int_equal(anchor_store_open(&s, fx->url, &err), 0);
    anchor_store_free(s);
    s = NULL;

    /* A directory, a missing parent, and URLs that name no SQLite file. */
    (void)snprintf(want, sizeof(want), "sqlite://%s", fx->dir);
    assert_int_equal(anchor_store_open(&s, want, &err), -1);
    assert_non_null(strstr(anchor_err_msg(&err), "cannot open datastore"));
    assert_int_equal(anchor_store_open(&s, "sqlite:///nonexistent-dir/x/anchor.db", &err), -1);
    assert_string_equal(anchor_err_msg(&err), "cannot open datastore /nonexistent-dir/x/anchor.db: "
                                              "No such file or directory");
    assert_int_equal(anchor_store_open(&s, "sqlite://", &err), -1);
    assert_string_equal(anchor_err_msg(&err), "datastore URL sqlite:// has no path");
    assert_int_equal(anchor_store_open(&s, "postgres://db/anchor", &err), -1);
    assert_string_equal(anchor_err_msg(&err), "datastore URL postgres://db/anchor: unsupported "
                                              "scheme (supported: sqlite://<path>)");
    assert_int_equal(anchor_store_open(&s, "", &err), -1);
    assert_string_equal(anchor_err_msg(&err), "datastore URL is empty");
    assert_null(s);
}

/* Damage past the first page shows when the data is read, as a clear error
 * naming the file, never as wrong data or a crash. */
static void test_damaged_pages_reported(void **state)
{
    struct fixture *fx = *state;
    struct anchor_store *s = open_ok(fx);
    struct anchor_store_doc *d = NULL;
    struct anchor_err err = {{0}};
    unsigned char junk[4096];
    char want[256];
    struct stat st;
    FILE *f;
    long off;

    (void)put_ok(s, "c1", "A", "text", 1);
    anchor_store_free(s);
    assert_int_equal(stat(fx->path, &st), 0);
    memset(junk, 0xa5, sizeof(junk));
    f = fopen(fx->path, "r+b");
    assert_non_null(f);
    for (off = 4096; off < st.st_size; off += 4096) {
        assert_int_equal(fseek(f, off, SEEK_SET), 0);
        assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
    }
    assert_int_equal(fclose(f), 0);
    s = NULL;
    if (anchor_store_open(&s, fx->url, &err) == 0) {
        assert_int_equal(anchor_store_doc_get_latest(s, "c1", "A", &d, &err), -1);
        assert_null(d);
        anchor_store_free(s);
    }
    (void)snprintf(want, sizeof(want), "datastore %s", fx->path);
    assert_non_null(strstr(anchor_err_msg(&err), want));
    assert_non_null(strstr(anchor_err_msg(&err), "malformed"));
}

/* An existing file keeps its mode; a new one gets 0600 whatever the umask
 * allows beyond it. */
static void test_new_file_mode_with_open_umask(void **state)
{
    struct fixture *fx = *state;
    mode_t old = umask(0);
    struct anchor_store *s = open_ok(fx);
    struct stat st;

    (void)umask(old);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    anchor_store_free(s);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_fresh_open_creates_schema),
        T(test_reopen_keeps_data),
        T(test_two_connections_share_revision),
        T(test_versions_per_cluster_and_section),
        T(test_history_order),
        T(test_document_size_bounds),
        T(test_put_refuses_bad_arguments),
        T(test_injection_stored_verbatim),
        T(test_agent_upsert_keeps_first_seen_and_banned),
        T(test_agent_ban_unban_and_svid),
        T(test_agent_list_order_limit_paging),
        T(test_agent_refuses_bad_records),
        T(test_waits_for_a_briefly_held_lock),
        T(test_newer_schema_refused),
        T(test_hostile_files_refused),
        T(test_damaged_pages_reported),
        T(test_new_file_mode_with_open_umask),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
