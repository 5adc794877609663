/*
 * The AgentAttestation v1 policy document (policy.h): read by the strict YAML
 * reader (ytree.h), then walked top-down exactly along the documented shape,
 * each level first checking its keys (unknown and duplicate keys are errors
 * naming the key and where it is), then its values. Each x509pop config is
 * handed to the engine once, here, so that the resulting document holds ready
 * trust stores and a login never parses caCerts.
 *
 * Locations in messages are paths into the document
 * (spec.policies[1].requiredAttestors[0].config); the x509pop config's own
 * rules speak of the policy by name (policy "edge": caCerts is required), the
 * way the operator documentation phrases them.
 */
#include "anchor/policy.h"
#include "anchor/template.h"
#include "policy/ytree.h"
#include "util/check.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct anchor_policy_attestor {
    char *type;
    struct anchor_x509pop_config *x509pop;
};

struct anchor_policy {
    char *name;
    struct anchor_template *agent_path; /* NULL when the document gives none */
    struct anchor_policy_attestor *attestors;
    size_t nattestors;
};

struct anchor_policy_doc {
    atomic_long refs;
    struct anchor_policy *policies;
    size_t npolicies;
};

/* Room for the deepest path, spec.policies[N].requiredAttestors[N], with
 * 20-digit indexes; ".config" is added in a buffer 8 bytes longer. */
#define PATH_MAX_LEN 80

static const char *const root_keys[] = {"section", "schema", "spec", NULL};
static const char *const spec_keys[] = {"policies", NULL};
static const char *const policy_keys[] = {"name", "agentPathTemplate", "requiredAttestors", NULL};
static const char *const attestor_keys[] = {"type", "config", NULL};
static const char *const x509pop_keys[] = {"caCerts", "maxIntermediates", "maxRSAKeySize", NULL};

/* --- small helpers ---------------------------------------------------------- */

static char *dup_str(const char *s, size_t len)
{
    char *d = malloc(len + 1);

    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static int has_control_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f)
            return 1;
    }
    return 0;
}

/* Checks that `node` is present and a mapping; `what` names it for the
 * message: "<path>: expected a mapping (got ...)". */
static int expect_map(const struct anchor__ytree *node, const char *path, struct anchor_err *err)
{
    char got[160];

    if (node != NULL && node->kind == ANCHOR__YTREE_MAP)
        return 0;
    anchor__ytree_describe(got, sizeof(got), node);
    anchor_err_set(err, "%s: expected a mapping (got %s)", path, got);
    return -1;
}

/* The string value of `field` in `map`, required: "<path>: <field> is
 * required" when absent or null; "<path>.<field>: expected a string (got
 * ...)" when a list, mapping or boolean. Borrowed from the tree. */
static int get_string(const struct anchor__ytree **out, const struct anchor__ytree *map,
                      const char *path, const char *field, struct anchor_err *err)
{
    const struct anchor__ytree *v = anchor__ytree_get(map, field);
    char got[160];
    const char *sep = path[0] == '\0' ? "" : ".";

    if (anchor__ytree_is_null(v)) {
        if (path[0] == '\0')
            anchor_err_set(err, "%s is required", field);
        else
            anchor_err_set(err, "%s: %s is required", path, field);
        return -1;
    }
    if (v->kind != ANCHOR__YTREE_SCALAR || anchor__ytree_is_bool(v)) {
        anchor__ytree_describe(got, sizeof(got), v);
        anchor_err_set(err, "%s%s%s: expected a string (got %s)", path, sep, field, got);
        return -1;
    }
    *out = v;
    return 0;
}

/* A required list: "<path>: <field> is required", "<path>.<field>: expected
 * a list (got ...)", and "<path>.<field>: <empty_msg>" when it is empty. */
static int get_list(const struct anchor__ytree **out, const struct anchor__ytree *map,
                    const char *path, const char *field, const char *empty_msg,
                    struct anchor_err *err)
{
    const struct anchor__ytree *v = anchor__ytree_get(map, field);
    char got[160];

    if (anchor__ytree_is_null(v)) {
        anchor_err_set(err, "%s: %s is required", path, field);
        return -1;
    }
    if (v->kind != ANCHOR__YTREE_SEQ) {
        anchor__ytree_describe(got, sizeof(got), v);
        anchor_err_set(err, "%s.%s: expected a list (got %s)", path, field, got);
        return -1;
    }
    if (v->nkids == 0) {
        anchor_err_set(err, "%s.%s: %s", path, field, empty_msg);
        return -1;
    }
    *out = v;
    return 0;
}

/* Parses an optional limit: absent leaves *out as is; otherwise a plain
 * decimal integer, 0 or without leading zeros, no sign, in [min, max].
 * Everything YAML would read as something else (4.0, 0x4, +4, "4", true,
 * 1e3, 4_000, 0o4) is refused, and so is a number too long to convert. */
static int parse_limit(long *out, const struct anchor__ytree *map, const char *field, long min,
                       long max, const char *qname, struct anchor_err *err)
{
    const struct anchor__ytree *v = anchor__ytree_get(map, field);
    const char *kind = min == 0 ? "a non-negative integer" : "a positive integer";
    char got[160];
    long value = 0;
    int ok;

    if (v == NULL)
        return 0;
    anchor__ytree_describe(got, sizeof(got), v);
    ok = v->kind == ANCHOR__YTREE_SCALAR && v->plain && v->len > 0 &&
         strspn(v->str, "0123456789") == v->len && (v->str[0] != '0' || v->len == 1);
    if (!ok) {
        anchor_err_set(err, "policy \"%s\": %s must be %s (got %s)", qname, field, kind, got);
        return -1;
    }
    /* The loop stops once value passes max (small), so it cannot overflow. */
    for (size_t i = 0; i < v->len && value <= max; i++)
        value = value * 10 + (v->str[i] - '0');
    if (value > max) {
        anchor_err_set(err, "policy \"%s\": %s must be at most %ld (got %s)", qname, field, max,
                       got);
        return -1;
    }
    if (value < min) {
        anchor_err_set(err, "policy \"%s\": %s must be %s (got %s)", qname, field, kind, got);
        return -1;
    }
    *out = value;
    return 0;
}

static int is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    }
    return 1;
}

/* --- the x509pop attestor's config ----------------------------------------- */

static int parse_x509pop(struct anchor_policy_attestor *a, const struct anchor__ytree *cfg,
                         const char *path, const char *qname, struct anchor_err *err)
{
    int rc = -1;
    const struct anchor__ytree *ca;
    long max_int = ANCHOR_X509POP_DEFAULT_MAX_INTERMEDIATES;
    long max_rsa = ANCHOR_X509POP_DEFAULT_MAX_RSA_KEY_SIZE;
    char where[PATH_MAX_LEN + 8];
    char got[160];
    char prefix[ANCHOR_POLICY_MAX_NAME_BYTES * 4 + 16];

    (void)snprintf(where, sizeof(where), "%s.config", path);
    if (!anchor__ytree_is_null(cfg)) {
        TRY(expect_map(cfg, where, err));
        TRY(anchor__ytree_check_keys(cfg, where, x509pop_keys, err));
    } else {
        cfg = NULL;
    }
    ca = anchor__ytree_get(cfg, "caCerts");
    ENSURE(ca != NULL, err, "policy \"%s\": caCerts is required (the x509pop config has none)",
           qname);
    if (ca->kind != ANCHOR__YTREE_SCALAR) {
        anchor__ytree_describe(got, sizeof(got), ca);
        FAIL(err, "policy \"%s\": caCerts must be PEM text (got %s)", qname, got);
    }
    /* Present but empty: null, "", or only whitespace (the documented case). */
    ENSURE(!anchor__ytree_is_null(ca) && !is_blank(ca->str, ca->len), err,
           "policy \"%s\": caCerts is required", qname);
    TRY(parse_limit(&max_int, cfg, "maxIntermediates", 0, ANCHOR_POLICY_MAX_INTERMEDIATES, qname,
                    err));
    TRY(parse_limit(&max_rsa, cfg, "maxRSAKeySize", 1, ANCHOR_POLICY_MAX_RSA_KEY_SIZE, qname, err));
    if (anchor_x509pop_config_new(&a->x509pop, ca->str, ca->len, max_int, max_rsa, err) != 0) {
        (void)snprintf(prefix, sizeof(prefix), "policy \"%s\"", qname);
        anchor_err_prefix(err, prefix);
        goto out;
    }
    rc = 0;
out:
    return rc;
}

/* --- policies and attestors -------------------------------------------------- */

struct attestor_type {
    const char *name;
    int (*parse)(struct anchor_policy_attestor *a, const struct anchor__ytree *cfg,
                 const char *path, const char *qname, struct anchor_err *err);
};

static const struct attestor_type attestor_types[] = {
    {ANCHOR_X509POP_TYPE, parse_x509pop},
};

static int parse_attestor(struct anchor_policy *p, const struct anchor__ytree *node,
                          const char *path, const char *qname, struct anchor_err *err)
{
    int rc = -1;
    struct anchor_policy_attestor *a = &p->attestors[p->nattestors];
    const struct anchor__ytree *type;
    const struct attestor_type *t = NULL;
    char q[128];

    TRY(expect_map(node, path, err));
    TRY(anchor__ytree_check_keys(node, path, attestor_keys, err));
    TRY(get_string(&type, node, path, "type", err));
    anchor__ytree_quote(q, sizeof(q), type->str, type->len);
    for (size_t i = 0; i < sizeof(attestor_types) / sizeof(attestor_types[0]); i++) {
        if (strcmp(attestor_types[i].name, type->str) == 0)
            t = &attestor_types[i];
    }
    ENSURE(t != NULL, err, "%s.type: unknown attestor type \"%s\" (supported: %s)", path, q,
           ANCHOR_X509POP_TYPE);
    for (size_t i = 0; i < p->nattestors; i++) {
        ENSURE(strcmp(p->attestors[i].type, t->name) != 0, err,
               "%s.type: duplicate attestor type \"%s\"", path, q);
    }
    a->type = dup_str(t->name, strlen(t->name));
    ENSURE(a->type != NULL, err, "out of memory");
    /* Counted before the config is parsed, so that cleanup frees the type. */
    p->nattestors++;
    TRY(t->parse(a, anchor__ytree_get(node, "config"), path, qname, err));
    rc = 0;
out:
    return rc;
}

static int parse_policy(struct anchor_policy_doc *doc, const struct anchor__ytree *node,
                        size_t index, struct anchor_err *err)
{
    int rc = -1;
    struct anchor_policy *p = &doc->policies[index];
    const struct anchor__ytree *name, *tmpl, *list;
    char path[PATH_MAX_LEN], apath[PATH_MAX_LEN], where[PATH_MAX_LEN + 24];
    char qname[ANCHOR_POLICY_MAX_NAME_BYTES * 4 + 8];
    char got[160];

    (void)snprintf(path, sizeof(path), "spec.policies[%zu]", index);
    TRY(expect_map(node, path, err));
    TRY(anchor__ytree_check_keys(node, path, policy_keys, err));

    TRY(get_string(&name, node, path, "name", err));
    ENSURE(name->len <= ANCHOR_POLICY_MAX_NAME_BYTES, err, "%s.name: longer than %d bytes", path,
           ANCHOR_POLICY_MAX_NAME_BYTES);
    ENSURE(!has_control_chars(name->str, name->len), err,
           "%s.name: control characters are not allowed", path);
    anchor__ytree_quote(qname, sizeof(qname), name->str, name->len);
    for (size_t i = 0; i < index; i++) {
        ENSURE(strcmp(doc->policies[i].name, name->str) != 0, err,
               "%s.name: duplicate policy name \"%s\"", path, qname);
    }
    p->name = dup_str(name->str, name->len);
    ENSURE(p->name != NULL, err, "out of memory");

    tmpl = anchor__ytree_get(node, "agentPathTemplate");
    if (tmpl != NULL) {
        anchor__ytree_describe(got, sizeof(got), tmpl);
        ENSURE(tmpl->kind == ANCHOR__YTREE_SCALAR && !anchor__ytree_is_null(tmpl) &&
                   !anchor__ytree_is_bool(tmpl),
               err, "%s.agentPathTemplate: expected a string (got %s)", path, got);
        ENSURE(tmpl->str[0] == '/', err, "%s.agentPathTemplate: must start with \"/\" (got %s)",
               path, got);
        ENSURE(!has_control_chars(tmpl->str, tmpl->len), err,
               "%s.agentPathTemplate: control characters are not allowed", path);
        /* Compiled once here, rendered per login (template.h). */
        if (anchor_template_compile_path(&p->agent_path, tmpl->str, tmpl->len, err) != 0) {
            (void)snprintf(where, sizeof(where), "%s.agentPathTemplate", path);
            anchor_err_prefix(err, where);
            goto out;
        }
    }

    TRY(get_list(&list, node, path, "requiredAttestors", "at least one attestor is required", err));
    p->attestors = calloc(list->nkids, sizeof(*p->attestors));
    ENSURE(p->attestors != NULL, err, "out of memory");
    for (size_t i = 0; i < list->nkids; i++) {
        (void)snprintf(apath, sizeof(apath), "spec.policies[%zu].requiredAttestors[%zu]", index, i);
        TRY(parse_attestor(p, list->kids[i], apath, qname, err));
    }
    rc = 0;
out:
    return rc;
}

static int parse_root(struct anchor_policy_doc *doc, const struct anchor__ytree *root,
                      struct anchor_err *err)
{
    int rc = -1;
    const struct anchor__ytree *section, *schema, *spec, *list;
    char got[160];

    ENSURE(root != NULL, err, "the document is empty");
    if (root->kind != ANCHOR__YTREE_MAP) {
        anchor__ytree_describe(got, sizeof(got), root);
        FAIL(err, "the document must be a mapping of section, schema and spec (got %s)", got);
    }
    TRY(anchor__ytree_check_keys(root, "", root_keys, err));
    TRY(get_string(&section, root, "", "section", err));
    anchor__ytree_describe(got, sizeof(got), section);
    ENSURE(strcmp(section->str, ANCHOR_POLICY_SECTION) == 0, err,
           "section: expected \"%s\" (got %s)", ANCHOR_POLICY_SECTION, got);
    TRY(get_string(&schema, root, "", "schema", err));
    anchor__ytree_describe(got, sizeof(got), schema);
    ENSURE(strcmp(schema->str, ANCHOR_POLICY_SCHEMA) == 0, err, "schema: expected \"%s\" (got %s)",
           ANCHOR_POLICY_SCHEMA, got);
    spec = anchor__ytree_get(root, "spec");
    ENSURE(!anchor__ytree_is_null(spec), err, "spec is required");
    TRY(expect_map(spec, "spec", err));
    TRY(anchor__ytree_check_keys(spec, "spec", spec_keys, err));
    TRY(get_list(&list, spec, "spec", "policies", "at least one policy is required", err));

    doc->policies = calloc(list->nkids, sizeof(*doc->policies));
    ENSURE(doc->policies != NULL, err, "out of memory");
    for (size_t i = 0; i < list->nkids; i++) {
        /* Counted first, so that a half-built policy is freed with the doc. */
        doc->npolicies++;
        TRY(parse_policy(doc, list->kids[i], i, err));
    }
    rc = 0;
out:
    return rc;
}

/* --- the public API ---------------------------------------------------------- */

static void policy_cleanup(struct anchor_policy *p)
{
    for (size_t i = 0; i < p->nattestors; i++) {
        free(p->attestors[i].type);
        anchor_x509pop_config_free(p->attestors[i].x509pop);
    }
    free(p->attestors);
    anchor_template_free(p->agent_path);
    free(p->name);
}

static void doc_destroy(struct anchor_policy_doc *doc)
{
    for (size_t i = 0; i < doc->npolicies; i++)
        policy_cleanup(&doc->policies[i]);
    free(doc->policies);
    free(doc);
}

int anchor_policy_doc_parse(struct anchor_policy_doc **out, const char *text, size_t len,
                            struct anchor_err *err)
{
    int rc = -1;
    struct anchor__ytree *tree = NULL;
    struct anchor_policy_doc *doc = NULL;

    TRY(anchor__ytree_parse(&tree, text, len, ANCHOR_POLICY_MAX_DOC_BYTES, err));
    doc = calloc(1, sizeof(*doc));
    ENSURE(doc != NULL, err, "out of memory");
    atomic_init(&doc->refs, 1);
    TRY(parse_root(doc, tree, err));
    *out = doc;
    doc = NULL;
    rc = 0;
out:
    if (doc != NULL)
        doc_destroy(doc);
    anchor__ytree_free(tree);
    return rc;
}

int anchor_policy_doc_parse_file(struct anchor_policy_doc **out, const char *path,
                                 struct anchor_err *err)
{
    int rc = -1;
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;

    f = fopen(path, "rb");
    ENSURE(f != NULL, err, "cannot read %s: %s", path, strerror(errno));
    ENSURE(fstat(fileno(f), &st) == 0, err, "cannot read %s: %s", path, strerror(errno));
    ENSURE(!S_ISDIR(st.st_mode), err, "cannot read %s: %s", path, strerror(EISDIR));
    ENSURE(!S_ISREG(st.st_mode) || st.st_size <= ANCHOR_POLICY_MAX_DOC_BYTES, err,
           "%s: document too large (%lld bytes, at most %d)", path, (long long)st.st_size,
           ANCHOR_POLICY_MAX_DOC_BYTES);
    /* Read one byte past the limit so that the parser reports the size. */
    buf = malloc(ANCHOR_POLICY_MAX_DOC_BYTES + 1);
    ENSURE(buf != NULL, err, "out of memory");
    len = fread(buf, 1, ANCHOR_POLICY_MAX_DOC_BYTES + 1, f);
    ENSURE(!ferror(f), err, "cannot read %s: %s", path, strerror(errno));
    if (len > ANCHOR_POLICY_MAX_DOC_BYTES)
        FAIL(err, "%s: document too large (more than %d bytes)", path, ANCHOR_POLICY_MAX_DOC_BYTES);
    if (anchor_policy_doc_parse(out, buf, len, err) != 0) {
        anchor_err_prefix(err, path);
        goto out;
    }
    rc = 0;
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return rc;
}

struct anchor_policy_doc *anchor_policy_doc_up_ref(struct anchor_policy_doc *doc)
{
    atomic_fetch_add_explicit(&doc->refs, 1, memory_order_relaxed);
    return doc;
}

void anchor_policy_doc_free(struct anchor_policy_doc *doc)
{
    if (doc == NULL)
        return;
    if (atomic_fetch_sub_explicit(&doc->refs, 1, memory_order_acq_rel) != 1)
        return;
    doc_destroy(doc);
}

size_t anchor_policy_doc_count(const struct anchor_policy_doc *doc)
{
    return doc->npolicies;
}

const struct anchor_policy *anchor_policy_doc_get0(const struct anchor_policy_doc *doc, size_t i)
{
    return i < doc->npolicies ? &doc->policies[i] : NULL;
}

const struct anchor_policy *anchor_policy_doc_find(const struct anchor_policy_doc *doc,
                                                   const char *name)
{
    for (size_t i = 0; i < doc->npolicies; i++) {
        if (strcmp(doc->policies[i].name, name) == 0)
            return &doc->policies[i];
    }
    return NULL;
}

const struct anchor_policy *anchor_policy_doc_first_requiring(const struct anchor_policy_doc *doc,
                                                              const char *type)
{
    for (size_t i = 0; i < doc->npolicies; i++) {
        if (anchor_policy_find_attestor(&doc->policies[i], type) != NULL)
            return &doc->policies[i];
    }
    return NULL;
}

static int provided_has(const char *const *provided, size_t n, const char *type)
{
    for (size_t i = 0; i < n; i++) {
        if (provided[i] != NULL && strcmp(provided[i], type) == 0)
            return 1;
    }
    return 0;
}

const struct anchor_policy *anchor_policy_doc_first_satisfied(const struct anchor_policy_doc *doc,
                                                              const char *const *provided, size_t n)
{
    for (size_t i = 0; i < doc->npolicies; i++) {
        const struct anchor_policy *p = &doc->policies[i];
        size_t k = 0;

        while (k < p->nattestors && provided_has(provided, n, p->attestors[k].type))
            k++;
        if (k == p->nattestors)
            return p;
    }
    return NULL;
}

const char *anchor_policy_name(const struct anchor_policy *p)
{
    return p->name;
}

const char *anchor_policy_agent_path_template(const struct anchor_policy *p)
{
    return p->agent_path != NULL ? anchor_template_text(p->agent_path) : NULL;
}

const struct anchor_template *anchor_policy_agent_path(const struct anchor_policy *p)
{
    return p->agent_path;
}

size_t anchor_policy_attestor_count(const struct anchor_policy *p)
{
    return p->nattestors;
}

const struct anchor_policy_attestor *anchor_policy_attestor_get0(const struct anchor_policy *p,
                                                                 size_t i)
{
    return i < p->nattestors ? &p->attestors[i] : NULL;
}

const struct anchor_policy_attestor *anchor_policy_find_attestor(const struct anchor_policy *p,
                                                                 const char *type)
{
    for (size_t i = 0; i < p->nattestors; i++) {
        if (strcmp(p->attestors[i].type, type) == 0)
            return &p->attestors[i];
    }
    return NULL;
}

const char *anchor_policy_attestor_type(const struct anchor_policy_attestor *a)
{
    return a->type;
}

struct anchor_x509pop_config *anchor_policy_attestor_x509pop(const struct anchor_policy_attestor *a)
{
    return a->x509pop;
}
