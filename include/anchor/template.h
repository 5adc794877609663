/*
 * Templates: text with `{{attribute.name}}` placeholders that attestation
 * attributes fill, e.g. the agent path template
 *
 *   /agents/{{x509_pop.subject.common_name}}/{{x509_pop.serial_number}}
 *
 * A template is compiled once, when its configuration document is loaded,
 * into literal and placeholder parts; rendering it per login only looks up
 * and copies. A compiled template is immutable and may be rendered from any
 * number of threads at once.
 *
 * Syntax (docs/identities.md "Templates"):
 *   - a placeholder is "{{", optional spaces or tabs, an attribute name,
 *     optional spaces or tabs, "}}";
 *   - an attribute name is 1..128 bytes of [A-Za-z0-9._-];
 *   - every other byte is literal text; there is no escape, so a literal
 *     "{{" or "}}" cannot be written: an unclosed "{{", a "{{" inside a
 *     placeholder and a "}}" with no "{{" before it are errors;
 *   - a template is at most 4096 bytes and holds no NUL byte.
 *
 * Rendering looks every placeholder up in a `struct anchor_attrs`. A missing
 * attribute is an error naming it, never an empty string. Path rendering
 * (SPIFFE ID paths) adds the rules of docs/identities.md "Values in a path":
 * each value is non-empty and made of [A-Za-z0-9._-/], and every segment of
 * the result is valid; a value may contain "/" and so span several segments.
 * Errors name the attribute whose value broke the rule.
 */
#ifndef ANCHOR_TEMPLATE_H
#define ANCHOR_TEMPLATE_H

#include <stddef.h>

#include "anchor/attrs.h"
#include "anchor/common.h"
#include "anchor/spiffeid.h"

/* Longest template source, in bytes. */
#define ANCHOR_TEMPLATE_MAX_LEN 4096
/* Longest attribute name inside a placeholder, in bytes. */
#define ANCHOR_TEMPLATE_MAX_NAME 128
/* Longest plain rendering, in bytes. */
#define ANCHOR_TEMPLATE_MAX_OUTPUT 65536

struct anchor_template;

/* Compiles text[0..len) into a new template the caller frees with
 * anchor_template_free. On error the message is "invalid template: <reason>"
 * with the byte offset of the fault, e.g.
 *   invalid template: unclosed "{{" at offset 8
 *   invalid template: empty attribute name at offset 8
 *   invalid template: nested "{{" at offset 12
 *   invalid template: "}}" without "{{" at offset 3
 *   invalid template: invalid character '/' in attribute name at offset 10
 */
ANCHOR_API ANCHOR_WUR int anchor_template_compile(struct anchor_template **out, const char *text,
                                                  size_t len, struct anchor_err *err);

/* Like anchor_template_compile, for a template that renders a SPIFFE ID
 * path: also checks that the text around the placeholders can make one (it
 * renders the template with every placeholder set to "x" and checks the
 * result, which must not be empty), e.g. "invalid template: not a SPIFFE ID
 * path: path must start with "/"". */
ANCHOR_API ANCHOR_WUR int anchor_template_compile_path(struct anchor_template **out,
                                                       const char *text, size_t len,
                                                       struct anchor_err *err);

/* Frees the template. Accepts NULL. */
ANCHOR_API void anchor_template_free(struct anchor_template *t);

/* The template's source text, NUL-terminated. Borrowed. */
ANCHOR_API const char *anchor_template_text(const struct anchor_template *t);

/* Number of placeholders, and the attribute name of the i-th (i < count),
 * in the order they appear. Borrowed. For validating configuration. */
ANCHOR_API size_t anchor_template_placeholder_count(const struct anchor_template *t);
ANCHOR_API const char *anchor_template_placeholder_name(const struct anchor_template *t, size_t i);

/* Renders t with attrs into a new NUL-terminated string the caller frees
 * with free(). Errors: `attribute "<name>" is missing`; "rendered template
 * is too long (N bytes, at most 65536)". */
ANCHOR_API ANCHOR_WUR int anchor_template_render(char **out, const struct anchor_template *t,
                                                 const struct anchor_attrs *attrs,
                                                 struct anchor_err *err);

/* Renders t as a SPIFFE ID path into a new string (free()). Besides the
 * errors of anchor_template_render:
 *   attribute "<name>" is empty and cannot be used in a SPIFFE ID path
 *   attribute "<name>" value "<v>" cannot be used in a SPIFFE ID path:
 *       character '<c>' is not allowed
 *   attribute "<name>" value "<v>" makes an empty SPIFFE ID path segment
 *   attribute "<name>" value "<v>" makes a "." or ".." SPIFFE ID path segment
 * and, for faults of the literal text, the messages of
 * anchor_spiffeid_path_validate. <v> is the value with bytes outside
 * printable ASCII, '"' and '\' written as \xNN, cut to 64 bytes ("..."). */
ANCHOR_API ANCHOR_WUR int anchor_template_render_path(char **out, const struct anchor_template *t,
                                                      const struct anchor_attrs *attrs,
                                                      struct anchor_err *err);

/* Renders t as a path and builds spiffe://<trust_domain><path>; the caller
 * frees *out with anchor_spiffeid_free. Errors as _render_path and
 * anchor_spiffeid_from_path. */
ANCHOR_API ANCHOR_WUR int anchor_template_render_spiffeid(struct anchor_spiffeid **out,
                                                          const struct anchor_template *t,
                                                          const char *trust_domain,
                                                          const struct anchor_attrs *attrs,
                                                          struct anchor_err *err);

#endif
