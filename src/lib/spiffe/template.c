/*
 * Templates: compiled once into a list of parts (literal text, or a
 * placeholder naming an attribute), rendered per request by copying. The
 * compiler reads the source left to right through one cursor and stops at the
 * first fault with its byte offset; the renderer sizes its output before it
 * writes, so it allocates once.
 *
 * Path rendering remembers which output bytes each value produced, so that
 * when a segment of the result is empty or a dot segment the message names
 * the attribute responsible rather than the whole path.
 */
#include "anchor/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"

#define WHAT      "invalid template"
#define PATH_WHAT "invalid SPIFFE ID path: "

struct part {
    const char *lit; /* literal: points into t->text; NULL for a placeholder */
    size_t len;      /* of the literal */
    char *name;      /* placeholder: the attribute name (owned) */
};

struct anchor_template {
    char *text;
    size_t len;
    struct part *parts;
    size_t nparts;
    size_t nnames; /* placeholders among the parts */
};

/* Where one value landed in a path rendering. */
struct span {
    size_t start, end;
    const char *name, *value;
};

typedef const char *(*lookup_fn)(const void *ctx, const char *name);

static int is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static int is_path_char(unsigned char c)
{
    return is_name_char(c) || c == '/';
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Writes c as 'c' when printable, else as '\xNN'. */
static void char_repr(char *buf, size_t size, unsigned char c)
{
    if (c >= 0x20 && c < 0x7f && c != '\\')
        (void)snprintf(buf, size, "'%c'", c);
    else
        (void)snprintf(buf, size, "'\\x%02x'", c);
}

/* Writes s[0..len) for a message: printable ASCII kept, '"', '\' and every
 * other byte as \xNN, cut after 64 input bytes with "...". */
static void value_repr(char *buf, size_t size, const char *s, size_t len)
{
    size_t o = 0, max = len > 64 ? 64 : len;

    for (size_t i = 0; i < max && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
    }
    if (max < len && o + 4 <= size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

static int find(const char *s, size_t len, size_t from, const char *pat, size_t *at)
{
    for (size_t i = from; i + 1 < len; i++) {
        if (s[i] == pat[0] && s[i + 1] == pat[1]) {
            *at = i;
            return 1;
        }
    }
    return 0;
}

static int add_part(struct anchor_template *t, size_t *cap, const char *lit, size_t len, char *name,
                    struct anchor_err *err)
{
    int rc = -1;

    if (t->nparts == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct part *v = realloc(t->parts, ncap * sizeof(*v));

        ENSURE(v != NULL, err, "out of memory");
        t->parts = v;
        *cap = ncap;
    }
    t->parts[t->nparts].lit = lit;
    t->parts[t->nparts].len = len;
    t->parts[t->nparts].name = name;
    t->nparts++;
    if (name != NULL)
        t->nnames++;
    rc = 0;
out:
    return rc;
}

/* Reads the placeholder whose "{{" is at `open`; on success *next is the
 * offset just past its "}}" and *name a new copy of the attribute name. */
static int read_placeholder(const char *s, size_t len, size_t open, size_t *next, char **name,
                            struct anchor_err *err)
{
    int rc = -1;
    size_t close, nested, a = open + 2, b;
    char c[8];

    ENSURE(find(s, len, a, "}}", &close), err, "%s: unclosed \"{{\" at offset %zu", WHAT, open);
    ENSURE(!find(s, close, a, "{{", &nested), err, "%s: nested \"{{\" at offset %zu", WHAT, nested);
    b = close;
    while (a < b && is_blank(s[a]))
        a++;
    while (b > a && is_blank(s[b - 1]))
        b--;
    ENSURE(a < b, err, "%s: empty attribute name at offset %zu", WHAT, open);
    for (size_t i = a; i < b; i++) {
        if (!is_name_char((unsigned char)s[i])) {
            char_repr(c, sizeof(c), (unsigned char)s[i]);
            FAIL(err, "%s: invalid character %s in attribute name at offset %zu", WHAT, c, i);
        }
    }
    ENSURE(b - a <= ANCHOR_TEMPLATE_MAX_NAME, err,
           "%s: attribute name too long at offset %zu (at most %d bytes)", WHAT, a,
           ANCHOR_TEMPLATE_MAX_NAME);
    *name = strndup(s + a, b - a);
    ENSURE(*name != NULL, err, "out of memory");
    *next = close + 2;
    rc = 0;
out:
    return rc;
}

static int parse(struct anchor_template *t, struct anchor_err *err)
{
    int rc = -1;
    size_t cap = 0, i = 0, open, stray, next;
    const char *s = t->text;
    char *name = NULL;

    while (i < t->len) {
        if (!find(s, t->len, i, "{{", &open))
            open = t->len;
        ENSURE(!find(s, open, i, "}}", &stray), err, "%s: \"}}\" without \"{{\" at offset %zu",
               WHAT, stray);
        if (open > i)
            TRY(add_part(t, &cap, s + i, open - i, NULL, err));
        if (open == t->len)
            break;
        TRY(read_placeholder(s, t->len, open, &next, &name, err));
        TRY(add_part(t, &cap, NULL, 0, name, err));
        name = NULL;
        i = next;
    }
    rc = 0;
out:
    free(name);
    return rc;
}

int anchor_template_compile(struct anchor_template **out, const char *text, size_t len,
                            struct anchor_err *err)
{
    int rc = -1;
    struct anchor_template *t = NULL;
    const char *nul;

    ENSURE(len <= ANCHOR_TEMPLATE_MAX_LEN, err, "%s: too long (%zu bytes, at most %d)", WHAT, len,
           ANCHOR_TEMPLATE_MAX_LEN);
    nul = memchr(text, '\0', len);
    ENSURE(nul == NULL, err, "%s: NUL byte at offset %zu", WHAT, (size_t)(nul - text));
    t = calloc(1, sizeof(*t));
    ENSURE(t != NULL, err, "out of memory");
    t->text = strndup(text, len);
    ENSURE(t->text != NULL, err, "out of memory");
    t->len = len;
    TRY(parse(t, err));
    *out = t;
    t = NULL;
    rc = 0;
out:
    anchor_template_free(t);
    return rc;
}

void anchor_template_free(struct anchor_template *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nparts; i++)
        free(t->parts[i].name);
    free(t->parts);
    free(t->text);
    free(t);
}

const char *anchor_template_text(const struct anchor_template *t)
{
    return t->text;
}

size_t anchor_template_placeholder_count(const struct anchor_template *t)
{
    return t->nnames;
}

const char *anchor_template_placeholder_name(const struct anchor_template *t, size_t i)
{
    for (size_t p = 0; p < t->nparts; p++) {
        if (t->parts[p].name == NULL)
            continue;
        if (i == 0)
            return t->parts[p].name;
        i--;
    }
    return NULL;
}

static const char *lookup_attrs(const void *ctx, const char *name)
{
    return anchor_attrs_get(ctx, name);
}

static const char *lookup_dummy(const void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return "x";
}

/* The core of every rendering: looks every placeholder up, records where
 * each value lands in spans[] (room for t->nnames entries), and writes the
 * result. In path mode each value is first checked for path characters. */
static int render(char **out, size_t *out_len, const struct anchor_template *t, lookup_fn lookup,
                  const void *ctx, struct span *spans, int path, struct anchor_err *err)
{
    int rc = -1;
    size_t total = 0, o = 0, k = 0;
    char *buf = NULL, vrepr[4 * 64 + 4], c[8];

    for (size_t p = 0; p < t->nparts; p++) {
        const struct part *part = &t->parts[p];
        const char *v;
        size_t vlen;

        if (part->name == NULL) {
            total += part->len;
            continue;
        }
        v = lookup(ctx, part->name);
        ENSURE(v != NULL, err, "attribute \"%s\" is missing", part->name);
        vlen = strlen(v);
        if (path) {
            ENSURE(vlen > 0, err,
                   "attribute \"%s\" is empty and cannot be used in a SPIFFE ID path", part->name);
            for (size_t i = 0; i < vlen; i++) {
                if (is_path_char((unsigned char)v[i]))
                    continue;
                value_repr(vrepr, sizeof(vrepr), v, vlen);
                char_repr(c, sizeof(c), (unsigned char)v[i]);
                FAIL(err,
                     "attribute \"%s\" value \"%s\" cannot be used in a SPIFFE ID path: "
                     "character %s is not allowed",
                     part->name, vrepr, c);
            }
        }
        /* start and end are set once the output is laid out below */
        spans[k++] = (struct span){0, vlen, part->name, v};
        total += vlen;
    }
    ENSURE(total <= ANCHOR_TEMPLATE_MAX_OUTPUT, err,
           "rendered template is too long (%zu bytes, at most %d)", total,
           ANCHOR_TEMPLATE_MAX_OUTPUT);
    buf = malloc(total + 1);
    ENSURE(buf != NULL, err, "out of memory");
    k = 0;
    for (size_t p = 0; p < t->nparts; p++) {
        const struct part *part = &t->parts[p];
        struct span *sp;

        if (part->name == NULL) {
            memcpy(buf + o, part->lit, part->len);
            o += part->len;
            continue;
        }
        sp = &spans[k++];
        memcpy(buf + o, sp->value, sp->end);
        sp->start = o;
        o += sp->end;
        sp->end = o;
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    return rc;
}

/* Checks segment [a, b) of a rendered path; a fault inside (or, for an empty
 * segment, touching) a value's span is blamed on that value's attribute. */
static int segment_check(const char *path, size_t a, size_t b, const struct span *spans,
                         size_t nspans, struct anchor_err *err)
{
    int rc = -1;
    size_t n = b - a;
    int empty = n == 0, dots = (n == 1 && path[a] == '.') || (n == 2 && !memcmp(path + a, "..", 2));
    char vrepr[4 * 64 + 4];

    if (!empty && !dots)
        return 0;
    for (size_t k = 0; k < nspans; k++) {
        const struct span *s = &spans[k];
        int blamed = empty ? (s->start <= b && s->end >= a) : (s->start < b && s->end > a);

        if (!blamed)
            continue;
        value_repr(vrepr, sizeof(vrepr), s->value, strlen(s->value));
        FAIL(err, "attribute \"%s\" value \"%s\" makes %s SPIFFE ID path segment", s->name, vrepr,
             empty ? "an empty" : "a \".\" or \"..\"");
    }
    rc = 0; /* the literal text is at fault: the caller's full check reports it */
out:
    return rc;
}

static int render_path(char **out, const struct anchor_template *t, lookup_fn lookup,
                       const void *ctx, struct anchor_err *err)
{
    int rc = -1;
    char *path = NULL;
    size_t len, seg = 1;
    struct span *spans = NULL;

    spans = calloc(t->nnames + 1, sizeof(*spans));
    ENSURE(spans != NULL, err, "out of memory");
    TRY(render(&path, &len, t, lookup, ctx, spans, 1, err));
    if (len > 0 && path[0] == '/') {
        for (size_t i = 1; i <= len; i++) {
            if (i < len && path[i] != '/')
                continue;
            TRY(segment_check(path, seg, i, spans, t->nnames, err));
            seg = i + 1;
        }
    }
    TRY(anchor_spiffeid_path_validate(path, len, err));
    *out = path;
    path = NULL;
    rc = 0;
out:
    free(spans);
    free(path);
    return rc;
}

int anchor_template_compile_path(struct anchor_template **out, const char *text, size_t len,
                                 struct anchor_err *err)
{
    int rc = -1;
    struct anchor_template *t = NULL;
    char *path = NULL;

    struct anchor_err inner;
    const char *reason;

    /* An SVID's SPIFFE ID has a path (SPIFFE X509-SVID 3). */
    ENSURE(len > 0, err, "%s: not a SPIFFE ID path: path cannot be empty", WHAT);
    TRY(anchor_template_compile(&t, text, len, err));
    /* With "x" for every value only the literal text can be at fault, and the
     * path validator's message says how; drop its leading words. */
    if (render_path(&path, t, lookup_dummy, NULL, &inner) != 0) {
        reason = anchor_err_msg(&inner);
        if (strncmp(reason, PATH_WHAT, strlen(PATH_WHAT)) == 0)
            reason += strlen(PATH_WHAT);
        FAIL(err, "%s: not a SPIFFE ID path: %s", WHAT, reason);
    }
    *out = t;
    t = NULL;
    rc = 0;
out:
    free(path);
    anchor_template_free(t);
    return rc;
}

int anchor_template_render(char **out, const struct anchor_template *t,
                           const struct anchor_attrs *attrs, struct anchor_err *err)
{
    int rc = -1;
    size_t len;
    struct span *spans = calloc(t->nnames + 1, sizeof(*spans));

    ENSURE(spans != NULL, err, "out of memory");
    TRY(render(out, &len, t, lookup_attrs, attrs, spans, 0, err));
    rc = 0;
out:
    free(spans);
    return rc;
}

int anchor_template_render_path(char **out, const struct anchor_template *t,
                                const struct anchor_attrs *attrs, struct anchor_err *err)
{
    return render_path(out, t, lookup_attrs, attrs, err);
}

int anchor_template_render_spiffeid(struct anchor_spiffeid **out, const struct anchor_template *t,
                                    const char *trust_domain, const struct anchor_attrs *attrs,
                                    struct anchor_err *err)
{
    int rc = -1;
    char *path = NULL;

    TRY(anchor_template_render_path(&path, t, attrs, err));
    TRY(anchor_spiffeid_from_path(out, trust_domain, path, err));
    rc = 0;
out:
    free(path);
    return rc;
}
