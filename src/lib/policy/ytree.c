/*
 * The strict YAML reader (ytree.h): libyaml's events folded into a tree with
 * an explicit stack of open containers, so that nesting depth is bounded by
 * a constant and never by the C stack. The raw bytes are checked (size, NUL,
 * UTF-8) before libyaml sees them, and libyaml is told the input is UTF-8 so
 * that it never guesses another encoding from a byte-order mark.
 */
#include "policy/ytree.h"
#include "util/check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Returns the offset of the first byte that breaks UTF-8 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t need;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07u;
        } else {
            return i;
        }
        if (len - i <= need)
            return i;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += need + 1;
    }
    return len;
}

void anchor__ytree_free(struct anchor__ytree *t)
{
    if (t == NULL)
        return;
    /* Depth is bounded by ANCHOR__YTREE_MAX_DEPTH, so recursion is bounded. */
    for (size_t i = 0; i < t->nkids; i++)
        anchor__ytree_free(t->kids[i]);
    free(t->kids);
    free(t->str);
    free(t);
}

static int add_kid(struct anchor__ytree *parent, struct anchor__ytree *kid, struct anchor_err *err)
{
    int rc = -1;

    if (parent->nkids == parent->cap) {
        size_t cap = parent->cap == 0 ? 4 : parent->cap * 2;
        struct anchor__ytree **kids = realloc(parent->kids, cap * sizeof(*kids));

        ENSURE(kids != NULL, err, "out of memory");
        parent->kids = kids;
        parent->cap = cap;
    }
    parent->kids[parent->nkids++] = kid;
    rc = 0;
out:
    return rc;
}

static void set_yaml_error(struct anchor_err *err, const yaml_parser_t *p)
{
    const char *problem = p->problem != NULL ? p->problem : "malformed YAML";

    if (p->error == YAML_MEMORY_ERROR) {
        anchor_err_set(err, "out of memory");
    } else if (p->context != NULL) {
        anchor_err_set(err, "invalid YAML at line %zu, column %zu: %s %s", p->problem_mark.line + 1,
                       p->problem_mark.column + 1, problem, p->context);
    } else {
        anchor_err_set(err, "invalid YAML at line %zu, column %zu: %s", p->problem_mark.line + 1,
                       p->problem_mark.column + 1, problem);
    }
}

/* Builds the node of a scalar, sequence-start or mapping-start event. */
static int node_from_event(struct anchor__ytree **out, const yaml_event_t *ev,
                           struct anchor_err *err)
{
    int rc = -1;
    struct anchor__ytree *n = NULL;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    unsigned long line = (unsigned long)ev->start_mark.line + 1;
    unsigned long col = (unsigned long)ev->start_mark.column + 1;

    if (ev->type == YAML_SCALAR_EVENT) {
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
    } else {
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
    }
    ENSURE(anchor == NULL, err, "line %lu, column %lu: YAML anchors and aliases are not allowed",
           line, col);
    ENSURE(tag == NULL, err, "line %lu, column %lu: YAML tags are not allowed", line, col);
    n = calloc(1, sizeof(*n));
    ENSURE(n != NULL, err, "out of memory");
    n->line = line;
    n->column = col;
    if (ev->type == YAML_SCALAR_EVENT) {
        size_t len = ev->data.scalar.length;

        n->kind = ANCHOR__YTREE_SCALAR;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        /* Escapes in quoted scalars ("\0", "\x00") can still produce NUL. */
        ENSURE(memchr(ev->data.scalar.value, '\0', len) == NULL, err,
               "line %lu, column %lu: NUL characters are not allowed", line, col);
        n->str = malloc(len + 1);
        ENSURE(n->str != NULL, err, "out of memory");
        memcpy(n->str, ev->data.scalar.value, len);
        n->str[len] = '\0';
        n->len = len;
    } else {
        n->kind = ev->type == YAML_SEQUENCE_START_EVENT ? ANCHOR__YTREE_SEQ : ANCHOR__YTREE_MAP;
    }
    *out = n;
    n = NULL;
    rc = 0;
out:
    anchor__ytree_free(n);
    return rc;
}

/* The parse state: the root, the stack of open containers, counters. */
struct build {
    struct anchor__ytree *root;
    struct anchor__ytree *stack[ANCHOR__YTREE_MAX_DEPTH];
    size_t depth;
    size_t nodes;
    size_t documents;
    int done;
};

static int on_event(struct build *b, const yaml_event_t *ev, struct anchor_err *err)
{
    int rc = -1;
    struct anchor__ytree *n = NULL, *attached;
    unsigned long line = (unsigned long)ev->start_mark.line + 1;
    unsigned long col = (unsigned long)ev->start_mark.column + 1;

    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_NO_EVENT:
        break;
    case YAML_STREAM_END_EVENT:
        b->done = 1;
        break;
    case YAML_DOCUMENT_START_EVENT:
        ENSURE(b->documents == 0, err,
               "line %lu, column %lu: more than one YAML document in the file", line, col);
        break;
    case YAML_DOCUMENT_END_EVENT:
        b->documents++;
        break;
    case YAML_ALIAS_EVENT:
        FAIL(err, "line %lu, column %lu: YAML anchors and aliases are not allowed", line, col);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        b->depth--;
        break;
    case YAML_SCALAR_EVENT:
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        ENSURE(++b->nodes <= ANCHOR__YTREE_MAX_NODES, err,
               "line %lu, column %lu: too many YAML nodes (more than %d)", line, col,
               ANCHOR__YTREE_MAX_NODES);
        TRY(node_from_event(&n, ev, err));
        if (b->depth == 0)
            b->root = n;
        else
            TRY(add_kid(b->stack[b->depth - 1], n, err));
        /* The tree owns the node from here on. */
        attached = n;
        n = NULL;
        if (attached->kind != ANCHOR__YTREE_SCALAR) {
            ENSURE(b->depth < ANCHOR__YTREE_MAX_DEPTH, err,
                   "line %lu, column %lu: YAML nested too deeply (more than %d levels)", line, col,
                   ANCHOR__YTREE_MAX_DEPTH);
            b->stack[b->depth++] = attached;
        }
        break;
    }
    rc = 0;
out:
    anchor__ytree_free(n);
    return rc;
}

int anchor__ytree_parse(struct anchor__ytree **out, const char *text, size_t len, size_t max_len,
                        struct anchor_err *err)
{
    int rc = -1;
    yaml_parser_t parser;
    int parser_ready = 0;
    struct build b;
    const char *nul;
    size_t bad;

    memset(&b, 0, sizeof(b));
    ENSURE(len <= max_len, err, "document too large (%zu bytes, at most %zu)", len, max_len);
    nul = memchr(text, '\0', len);
    ENSURE(nul == NULL, err, "document contains a NUL byte (at byte %zu)", (size_t)(nul - text));
    bad = utf8_invalid_at((const unsigned char *)text, len);
    ENSURE(bad == len, err, "document is not valid UTF-8 (at byte %zu)", bad);

    ENSURE(yaml_parser_initialize(&parser) != 0, err, "out of memory");
    parser_ready = 1;
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!b.done) {
        yaml_event_t ev;
        int ok;

        if (yaml_parser_parse(&parser, &ev) == 0) {
            set_yaml_error(err, &parser);
            goto out;
        }
        ok = on_event(&b, &ev, err);
        yaml_event_delete(&ev);
        TRY(ok);
    }
    if (anchor__ytree_is_null(b.root)) {
        anchor__ytree_free(b.root);
        b.root = NULL;
    }
    *out = b.root;
    b.root = NULL;
    rc = 0;
out:
    if (parser_ready)
        yaml_parser_delete(&parser);
    anchor__ytree_free(b.root);
    return rc;
}

int anchor__ytree_is_null(const struct anchor__ytree *t)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (t == NULL)
        return 1;
    if (t->kind != ANCHOR__YTREE_SCALAR || !t->plain)
        return 0;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        if (strcmp(t->str, nulls[i]) == 0)
            return 1;
    }
    return 0;
}

int anchor__ytree_is_bool(const struct anchor__ytree *t)
{
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE",
                                        "yes",  "Yes",  "YES",  "no",    "No",    "NO",
                                        "on",   "On",   "ON",   "off",   "Off",   "OFF"};

    if (t == NULL || t->kind != ANCHOR__YTREE_SCALAR || !t->plain)
        return 0;
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        if (strcmp(t->str, bools[i]) == 0)
            return 1;
    }
    return 0;
}

const struct anchor__ytree *anchor__ytree_get(const struct anchor__ytree *map, const char *key)
{
    if (map == NULL || map->kind != ANCHOR__YTREE_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        const struct anchor__ytree *k = map->kids[i];

        if (k->kind == ANCHOR__YTREE_SCALAR && strcmp(k->str, key) == 0)
            return map->kids[i + 1];
    }
    return NULL;
}

static void set_located(struct anchor_err *err, const char *path, const char *msg,
                        const char *quoted)
{
    if (path[0] == '\0')
        anchor_err_set(err, "%s \"%s\"", msg, quoted);
    else
        anchor_err_set(err, "%s: %s \"%s\"", path, msg, quoted);
}

int anchor__ytree_check_keys(const struct anchor__ytree *map, const char *path,
                             const char *const *allowed, struct anchor_err *err)
{
    char q[128];

    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        const struct anchor__ytree *k = map->kids[i];
        int known = 0;

        if (k->kind != ANCHOR__YTREE_SCALAR || anchor__ytree_is_null(k)) {
            if (path[0] == '\0')
                anchor_err_set(err, "keys must be strings (line %lu)", k->line);
            else
                anchor_err_set(err, "%s: keys must be strings (line %lu)", path, k->line);
            return -1;
        }
        anchor__ytree_quote(q, sizeof(q), k->str, k->len);
        for (size_t a = 0; allowed[a] != NULL; a++)
            known |= strcmp(k->str, allowed[a]) == 0;
        if (!known) {
            set_located(err, path, "unknown key", q);
            return -1;
        }
        /* Every earlier key is known and distinct, so this loop is short. */
        for (size_t j = 0; j < i; j += 2) {
            if (strcmp(map->kids[j]->str, k->str) == 0) {
                set_located(err, path, "duplicate key", q);
                return -1;
            }
        }
    }
    return 0;
}

void anchor__ytree_quote(char *buf, size_t size, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    const size_t limit = 60;

    if (size == 0)
        return;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[4];
        size_t n = 0;

        if (i >= limit) {
            if (o + 4 <= size) {
                memcpy(buf + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (c == '"' || c == '\\') {
            tmp[n++] = '\\';
            tmp[n++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            tmp[n++] = (char)c;
        } else {
            tmp[n++] = '\\';
            tmp[n++] = 'x';
            tmp[n++] = hex[c >> 4];
            tmp[n++] = hex[c & 0xf];
        }
        if (o + n + 1 > size)
            break;
        memcpy(buf + o, tmp, n);
        o += n;
    }
    buf[o] = '\0';
}

void anchor__ytree_describe(char *buf, size_t size, const struct anchor__ytree *t)
{
    char q[128];

    if (t == NULL) {
        (void)snprintf(buf, size, "nothing");
    } else if (t->kind == ANCHOR__YTREE_SEQ) {
        (void)snprintf(buf, size, "a list");
    } else if (t->kind == ANCHOR__YTREE_MAP) {
        (void)snprintf(buf, size, "a mapping");
    } else {
        anchor__ytree_quote(q, sizeof(q), t->str, t->len);
        (void)snprintf(buf, size, "%s\"%s\"", t->plain ? "" : "the quoted string ", q);
    }
}
