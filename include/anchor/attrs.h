/*
 * Attributes: the (name, value) pairs that attestation produces and that
 * templates consume, e.g. x509_pop.serial_number = "3a7f2c1b". A list keeps
 * insertion order (so logs and anchorctl print a stable order) and holds each
 * name at most once: setting a name again replaces its value (DESIGN.md: "a
 * later SAN of the same type replaces an earlier one").
 */
#ifndef ANCHOR_ATTRS_H
#define ANCHOR_ATTRS_H

#include "anchor/common.h"

struct anchor_attr {
    char *name;
    char *value;
};

struct anchor_attrs {
    struct anchor_attr *v;
    size_t n;
    size_t cap;
};

/* Prepares an empty list in caller-owned memory. */
ANCHOR_API void anchor_attrs_init(struct anchor_attrs *a);

/* Frees every name and value; the list is empty afterwards. */
ANCHOR_API void anchor_attrs_cleanup(struct anchor_attrs *a);

/* Copies name and value into the list, replacing the value of an existing
 * attribute of that name in place (its position is kept). */
ANCHOR_API ANCHOR_WUR int anchor_attrs_set(struct anchor_attrs *a, const char *name,
                                           const char *value, struct anchor_err *err);

/* The value of `name`, or NULL when absent. Borrowed from the list. */
ANCHOR_API const char *anchor_attrs_get(const struct anchor_attrs *a, const char *name);

/* Writes the log and CLI form `<type>:<name>="<value>"` (e.g.
 * x509pop:x509_pop.serial_number="3a7f2c1b"), the value quoted with `"` and
 * `\` escaped by a backslash, into a new string the caller frees with free(). */
ANCHOR_API ANCHOR_WUR int anchor_attr_format(char **out, const char *attestor_type,
                                             const struct anchor_attr *attr,
                                             struct anchor_err *err);

#endif
