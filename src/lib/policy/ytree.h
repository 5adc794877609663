/*
 * A strict YAML reader for configuration documents: libyaml's event stream
 * turned into a small tree of scalars, sequences and mappings, refusing what a
 * configuration document has no use for and what makes YAML surprising:
 * anchors and aliases, explicit tags, more than one document, NUL bytes,
 * bytes that are not UTF-8, documents over the caller's size limit, and
 * nesting deeper than ANCHOR__YTREE_MAX_DEPTH. Scalars keep their text and
 * whether they were written plain (unquoted), so that the caller can tell the
 * integer 4 from the string "4".
 *
 * Internal to libanchor (the policy loader; later the other config sections).
 */
#ifndef ANCHOR_POLICY_YTREE_H
#define ANCHOR_POLICY_YTREE_H

#include <stddef.h>

#include "anchor/common.h"

#define ANCHOR__YTREE_MAX_DEPTH 32
#define ANCHOR__YTREE_MAX_NODES 100000

enum anchor__ytree_kind {
    ANCHOR__YTREE_SCALAR,
    ANCHOR__YTREE_SEQ,
    ANCHOR__YTREE_MAP,
};

struct anchor__ytree {
    enum anchor__ytree_kind kind;
    unsigned long line; /* 1-based position of the node's first character */
    unsigned long column;
    /* scalar: the text (NUL-terminated, no NUL inside) and its style */
    char *str;
    size_t len;
    int plain;
    /* sequence: n items in kids; mapping: kids[2i] key, kids[2i+1] value */
    struct anchor__ytree **kids;
    size_t nkids;
    size_t cap;
};

/* Parses `len` bytes of YAML (at most max_len) into a new tree the caller
 * frees with anchor__ytree_free. A stream with no document, or whose only
 * document is an empty/null scalar, gives *out == NULL and success. */
int anchor__ytree_parse(struct anchor__ytree **out, const char *text, size_t len, size_t max_len,
                        struct anchor_err *err);

/* Frees a tree. Accepts NULL. */
void anchor__ytree_free(struct anchor__ytree *t);

/* Whether the node is YAML null: absent (NULL), or a plain scalar "", "~",
 * "null", "Null" or "NULL". */
int anchor__ytree_is_null(const struct anchor__ytree *t);

/* Whether the node is a plain scalar that YAML reads as a boolean: true and
 * false (YAML 1.2), yes/no and on/off (YAML 1.1, which many tools still
 * follow), each in lower, Title or UPPER case. */
int anchor__ytree_is_bool(const struct anchor__ytree *t);

/* Checks a mapping's keys: each a non-null string scalar, no key twice, each
 * one of the NULL-terminated `allowed` list. Messages, located at `path`
 * ("<path>: " in front, nothing when path is ""):
 *   unknown key "<k>"       duplicate key "<k>"      keys must be strings */
int anchor__ytree_check_keys(const struct anchor__ytree *map, const char *path,
                             const char *const *allowed, struct anchor_err *err);

/* The value of key `key` in a mapping, or NULL when absent. */
const struct anchor__ytree *anchor__ytree_get(const struct anchor__ytree *map, const char *key);

/* Writes a short, printable rendering of s[0..len) for messages: ASCII
 * printable characters as they are, `"` and `\` escaped, other bytes as \xNN,
 * cut to about 60 characters with "..." after. Always NUL-terminates. */
void anchor__ytree_quote(char *buf, size_t size, const char *s, size_t len);

/* Writes what a node is, for "(got ...)" in messages: the quoted text of a
 * scalar (a quoted scalar says so), "a list", "a mapping", "nothing". */
void anchor__ytree_describe(char *buf, size_t size, const struct anchor__ytree *t);

#endif
