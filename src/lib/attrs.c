/*
 * Attribute lists: ordered (name, value) pairs with unique names, produced by
 * attestation and consumed by templates and logs. Small lists (a handful to a
 * few dozen entries), so lookup is a linear scan; order is insertion order,
 * and setting an existing name replaces its value in place.
 */
#include "anchor/attrs.h"
#include "util/check.h"

#include <stdlib.h>
#include <string.h>

void anchor_attrs_init(struct anchor_attrs *a)
{
    a->v = NULL;
    a->n = 0;
    a->cap = 0;
}

void anchor_attrs_cleanup(struct anchor_attrs *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i].name);
        free(a->v[i].value);
    }
    free(a->v);
    anchor_attrs_init(a);
}

static struct anchor_attr *find(const struct anchor_attrs *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].name, name) == 0)
            return &a->v[i];
    return NULL;
}

int anchor_attrs_set(struct anchor_attrs *a, const char *name, const char *value,
                     struct anchor_err *err)
{
    int rc = -1;
    struct anchor_attr *slot = find(a, name);
    char *n = NULL;
    char *v = strdup(value);

    ENSURE(v != NULL, err, "out of memory");
    if (slot != NULL) {
        free(slot->value);
        slot->value = v;
        v = NULL;
        rc = 0;
        goto out;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap == 0 ? 8 : a->cap * 2;
        struct anchor_attr *nv = realloc(a->v, cap * sizeof(*nv));
        ENSURE(nv != NULL, err, "out of memory");
        a->v = nv;
        a->cap = cap;
    }
    n = strdup(name);
    ENSURE(n != NULL, err, "out of memory");
    a->v[a->n].name = n;
    a->v[a->n].value = v;
    a->n++;
    n = NULL;
    v = NULL;
    rc = 0;
out:
    free(n);
    free(v);
    return rc;
}

const char *anchor_attrs_get(const struct anchor_attrs *a, const char *name)
{
    const struct anchor_attr *slot = find(a, name);

    return slot != NULL ? slot->value : NULL;
}

int anchor_attr_format(char **out, const char *attestor_type, const struct anchor_attr *attr,
                       struct anchor_err *err)
{
    int rc = -1;
    size_t tlen = strlen(attestor_type);
    size_t nlen = strlen(attr->name);
    size_t vlen = strlen(attr->value);
    size_t o = 0;
    char *s = NULL;

    /* Worst case every value byte is escaped: type ':' name '=' '"' 2v '"' NUL. */
    ENSURE(vlen < ((size_t)-1 - tlen - nlen - 5) / 2, err, "attribute too long");
    s = malloc(tlen + nlen + 2 * vlen + 5);
    ENSURE(s != NULL, err, "out of memory");
    memcpy(s + o, attestor_type, tlen);
    o += tlen;
    s[o++] = ':';
    memcpy(s + o, attr->name, nlen);
    o += nlen;
    s[o++] = '=';
    s[o++] = '"';
    for (size_t i = 0; i < vlen; i++) {
        if (attr->value[i] == '"' || attr->value[i] == '\\')
            s[o++] = '\\';
        s[o++] = attr->value[i];
    }
    s[o++] = '"';
    s[o] = '\0';
    *out = s;
    rc = 0;
out:
    return rc;
}
