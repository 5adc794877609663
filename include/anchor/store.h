/*
 * The datastore: what a Trust Domain Server keeps across restarts.
 *
 *   config documents  per (cluster id, section), versioned 1, 2, 3, ... with
 *                     the YAML text, who set it and when; a store-wide
 *                     revision counter lets a watcher poll for any change;
 *   attested agents   one row per SPIFFE ID: attestor types, attributes, the
 *                     current SVID serial and expiry, first/last seen, banned.
 *
 * A store is opened from a URL and the scheme picks the backend:
 *   sqlite://<path>   embedded SQLite (sqlite:///var/lib/anchor/anchor.db is
 *                     an absolute path, sqlite://anchor.db a relative one).
 * A PostgreSQL backend (postgres://...) will implement the same interface.
 *
 * Every input is checked against the bounds below before it reaches a
 * backend, and every value is bound to a prepared statement: SQL is never
 * built from input. Strings are stored byte for byte.
 *
 * Thread safety: a store object is one connection. Use it from one thread at
 * a time (the server's loop owns it); separate store objects, even in
 * separate processes, may share one database file.
 *
 * Errors follow the library's idiom (anchor/common.h). "Not found" is not an
 * error for the getters: they succeed and write NULL.
 */
#ifndef ANCHOR_STORE_H
#define ANCHOR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "anchor/attrs.h"
#include "anchor/common.h"

/* Bounds on what is stored, checked before any backend work. Lengths are
 * in bytes and exclude the terminating NUL. */
#define ANCHOR_STORE_MAX_DOC_BYTES    1048576 /* a config document, 1 MiB */
#define ANCHOR_STORE_MAX_NAME_BYTES   256     /* cluster id, section, set_by */
#define ANCHOR_STORE_MAX_ID_BYTES     2048    /* SPIFFE ID (SPIFFE-ID 2.3) */
#define ANCHOR_STORE_MAX_TYPES        16      /* attestor types per agent */
#define ANCHOR_STORE_MAX_TYPE_BYTES   64      /* one attestor type */
#define ANCHOR_STORE_MAX_ATTRS        128     /* attributes per agent */
#define ANCHOR_STORE_MAX_ATTR_NAME    256     /* one attribute name */
#define ANCHOR_STORE_MAX_ATTR_VALUE   4096    /* one attribute value */
#define ANCHOR_STORE_MAX_SERIAL_BYTES 64      /* SVID serial, hex digits */
#define ANCHOR_STORE_MAX_LIST         10000   /* rows one list call returns */

/* The newest schema version this build reads and writes. A database of a
 * newer version is refused at open. */
#define ANCHOR_STORE_SCHEMA_VERSION 1

struct anchor_store;

/* --- opening ------------------------------------------------------------- */

/* Opens the store at `url`, creating it when absent (an SQLite file is
 * created with mode 0600), and brings its schema to
 * ANCHOR_STORE_SCHEMA_VERSION in one transaction. Refuses, with a message
 * naming the path: an unknown scheme, a file that is not an SQLite database,
 * an SQLite database of another application, and a schema newer than this
 * build. On success *out is a store the caller frees with anchor_store_free. */
ANCHOR_API ANCHOR_WUR int anchor_store_open(struct anchor_store **out, const char *url,
                                            struct anchor_err *err);

/* Closes the connection and frees the store. Accepts NULL. */
ANCHOR_API void anchor_store_free(struct anchor_store *s);

/* The schema version of the open database (ANCHOR_STORE_SCHEMA_VERSION once
 * open succeeded). */
ANCHOR_API int anchor_store_schema_version(const struct anchor_store *s);

/* --- config documents ---------------------------------------------------- */

struct anchor_store_doc {
    char *cluster_id;
    char *section;
    int64_t version;  /* 1, 2, 3, ... per (cluster id, section) */
    int64_t revision; /* store-wide, increases with every put */
    char *text;       /* NUL-terminated; NULL in history entries */
    size_t text_len;  /* bytes of text, without the NUL */
    char *set_by;     /* who set it, e.g. "uid=0" */
    int64_t set_at;   /* unix seconds */
};

struct anchor_store_doc_list {
    struct anchor_store_doc *v;
    size_t n;
};

/* Stores `text` (`len` bytes, no NUL byte inside, at most
 * ANCHOR_STORE_MAX_DOC_BYTES) as the next version of (cluster_id, section),
 * recording set_by and set_at (unix seconds). cluster_id, section and set_by
 * are 1..ANCHOR_STORE_MAX_NAME_BYTES bytes. On success writes the new version
 * to *version (1 for the first document of that pair). The store does not
 * parse the text; the caller validates it first. */
ANCHOR_API ANCHOR_WUR int anchor_store_doc_put(struct anchor_store *s, const char *cluster_id,
                                               const char *section, const char *text, size_t len,
                                               const char *set_by, int64_t set_at, int64_t *version,
                                               struct anchor_err *err);

/* Reads the latest version of (cluster_id, section) into a new document the
 * caller frees with anchor_store_doc_free; writes NULL when there is none. */
ANCHOR_API ANCHOR_WUR int anchor_store_doc_get_latest(struct anchor_store *s,
                                                      const char *cluster_id, const char *section,
                                                      struct anchor_store_doc **out,
                                                      struct anchor_err *err);

/* Reads version `version` (>= 1) of (cluster_id, section) like
 * anchor_store_doc_get_latest; writes NULL when that version does not exist. */
ANCHOR_API ANCHOR_WUR int anchor_store_doc_get_version(struct anchor_store *s,
                                                       const char *cluster_id, const char *section,
                                                       int64_t version,
                                                       struct anchor_store_doc **out,
                                                       struct anchor_err *err);

/* Lists the versions of (cluster_id, section), or of every section of the
 * cluster when section is NULL, newest first (by revision), at most `limit`
 * entries (0 or more than ANCHOR_STORE_MAX_LIST mean ANCHOR_STORE_MAX_LIST).
 * Entries carry everything but the text (text is NULL, text_len its size).
 * The caller frees the list with anchor_store_doc_list_free; an empty
 * history is a list with n == 0. */
ANCHOR_API ANCHOR_WUR int anchor_store_doc_history(struct anchor_store *s, const char *cluster_id,
                                                   const char *section, size_t limit,
                                                   struct anchor_store_doc_list **out,
                                                   struct anchor_err *err);

/* Writes the store-wide revision of config documents: 0 for an empty store,
 * and a larger number after every put, whichever process made it. One cheap
 * query, meant to be polled: when it changes, reread the documents. */
ANCHOR_API ANCHOR_WUR int anchor_store_doc_revision(struct anchor_store *s, int64_t *revision,
                                                    struct anchor_err *err);

/* Frees a document and its strings. Accepts NULL. */
ANCHOR_API void anchor_store_doc_free(struct anchor_store_doc *d);

/* Frees a list and its documents. Accepts NULL. */
ANCHOR_API void anchor_store_doc_list_free(struct anchor_store_doc_list *l);

/* --- attested agents ----------------------------------------------------- */

struct anchor_store_agent {
    char *spiffe_id;       /* spiffe://..., the key */
    char **attestor_types; /* e.g. {"x509pop"}, in the order given */
    size_t n_attestor_types;
    struct anchor_attr *attrs; /* name/value pairs, in the order given */
    size_t n_attrs;
    char *svid_serial;       /* hex digits of the current SVID's serial, "" if none */
    int64_t svid_expires_at; /* unix seconds, 0 if none */
    int64_t first_seen;      /* unix seconds of the first login */
    int64_t last_seen;       /* unix seconds of the latest login or renewal */
    int banned;              /* 1 when banned: refuse login and renewal */
};

struct anchor_store_agent_list {
    struct anchor_store_agent *v;
    size_t n;
};

/* What a successful login records (see anchor_store_agent_upsert). Every
 * pointer is borrowed for the call. */
struct anchor_store_login {
    const char *spiffe_id;
    const char *const *attestor_types; /* n_attestor_types entries */
    size_t n_attestor_types;
    const struct anchor_attr *attrs; /* n_attrs entries */
    size_t n_attrs;
    const char *svid_serial; /* hex digits, or NULL to keep the recorded SVID */
    int64_t svid_expires_at; /* used when svid_serial is not NULL */
    int64_t now;             /* unix seconds of the login */
};

/* Records a successful login, in one transaction: a new agent gets
 * first_seen = last_seen = login->now and banned = 0; a known agent keeps its
 * first_seen and banned flag and gets last_seen = login->now and the attestor
 * types and attributes of `login` (replacing the previous ones). The SVID
 * serial and expiry are replaced when login->svid_serial is not NULL, and
 * otherwise kept (empty for a new agent). The store copies what it needs. */
ANCHOR_API ANCHOR_WUR int anchor_store_agent_upsert(struct anchor_store *s,
                                                    const struct anchor_store_login *login,
                                                    struct anchor_err *err);

/* Reads the agent `spiffe_id` into a new record the caller frees with
 * anchor_store_agent_free; writes NULL when the agent is unknown. */
ANCHOR_API ANCHOR_WUR int anchor_store_agent_get(struct anchor_store *s, const char *spiffe_id,
                                                 struct anchor_store_agent **out,
                                                 struct anchor_err *err);

/* Lists agents ordered by SPIFFE ID (bytewise), starting after `after` (NULL
 * for the beginning; pass the last ID of a page to get the next page), at
 * most `limit` (0 or more than ANCHOR_STORE_MAX_LIST mean
 * ANCHOR_STORE_MAX_LIST). The caller frees the list with
 * anchor_store_agent_list_free. */
ANCHOR_API ANCHOR_WUR int anchor_store_agent_list(struct anchor_store *s, const char *after,
                                                  size_t limit,
                                                  struct anchor_store_agent_list **out,
                                                  struct anchor_err *err);

/* Sets (banned = 1) or clears (banned = 0) the banned flag of a known agent.
 * Fails with "agent <id> not found" for an unknown one. */
ANCHOR_API ANCHOR_WUR int anchor_store_agent_set_banned(struct anchor_store *s,
                                                        const char *spiffe_id, int banned,
                                                        struct anchor_err *err);

/* Records a renewal: the new SVID serial (hex digits) and expiry, and
 * last_seen = now. Fails with "agent <id> not found" for an unknown agent. */
ANCHOR_API ANCHOR_WUR int anchor_store_agent_set_svid(struct anchor_store *s, const char *spiffe_id,
                                                      const char *svid_serial,
                                                      int64_t svid_expires_at, int64_t now,
                                                      struct anchor_err *err);

/* Frees an agent record and everything it points to. Accepts NULL. */
ANCHOR_API void anchor_store_agent_free(struct anchor_store_agent *a);

/* Frees a list and its records. Accepts NULL. */
ANCHOR_API void anchor_store_agent_list_free(struct anchor_store_agent_list *l);

#endif
