/*
 * The SQLite schema as a list of migrations. Script i takes a database of
 * schema version i to version i + 1; store_sqlite.c runs the missing ones in
 * one transaction at open and records the result in PRAGMA user_version.
 * A released script is never edited: a change is a new script at the end
 * (and ANCHOR_STORE_SCHEMA_VERSION in anchor/store.h goes up by one).
 *
 * PRAGMA application_id marks the file as anchor's ("ANCH"), so open can
 * refuse another application's SQLite database instead of adding tables to
 * it.
 */
#include "store/sqlite_impl.h"

const char *const anchor__sq_migrations[] = {
    /* 0 -> 1: config documents and attested agents. */
    "PRAGMA application_id = 1095648072;\n"
    "CREATE TABLE config_docs (\n"
    "  revision   INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  cluster_id TEXT NOT NULL,\n"
    "  section    TEXT NOT NULL,\n"
    "  version    INTEGER NOT NULL CHECK (version > 0),\n"
    "  body       TEXT NOT NULL,\n"
    "  set_by     TEXT NOT NULL,\n"
    "  set_at     INTEGER NOT NULL,\n"
    "  UNIQUE (cluster_id, section, version)\n"
    ");\n"
    "CREATE TABLE agents (\n"
    "  spiffe_id       TEXT PRIMARY KEY NOT NULL,\n"
    "  svid_serial     TEXT NOT NULL DEFAULT '',\n"
    "  svid_expires_at INTEGER NOT NULL DEFAULT 0,\n"
    "  first_seen      INTEGER NOT NULL,\n"
    "  last_seen       INTEGER NOT NULL,\n"
    "  banned          INTEGER NOT NULL DEFAULT 0 CHECK (banned IN (0, 1))\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE agent_attestors (\n"
    "  spiffe_id     TEXT NOT NULL REFERENCES agents (spiffe_id) ON DELETE CASCADE,\n"
    "  pos           INTEGER NOT NULL,\n"
    "  attestor_type TEXT NOT NULL,\n"
    "  PRIMARY KEY (spiffe_id, pos)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE agent_attributes (\n"
    "  spiffe_id TEXT NOT NULL REFERENCES agents (spiffe_id) ON DELETE CASCADE,\n"
    "  pos       INTEGER NOT NULL,\n"
    "  name      TEXT NOT NULL,\n"
    "  value     TEXT NOT NULL,\n"
    "  PRIMARY KEY (spiffe_id, pos)\n"
    ") WITHOUT ROWID;\n",
};

const int anchor__sq_migration_count =
    (int)(sizeof(anchor__sq_migrations) / sizeof(anchor__sq_migrations[0]));

_Static_assert(sizeof(anchor__sq_migrations) / sizeof(anchor__sq_migrations[0]) ==
                   ANCHOR_STORE_SCHEMA_VERSION,
               "one migration per schema version");
