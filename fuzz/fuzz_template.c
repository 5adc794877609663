/*
 * Fuzz target for the template compiler and renderer. The input is a
 * template, optionally followed by a NUL byte and a value: the template is
 * compiled (plainly and as a path), then rendered with every placeholder set
 * to that value. A path rendering that succeeds must be a valid SPIFFE ID
 * path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nul = memchr(s, '\0', size);
    size_t tlen = nul != NULL ? (size_t)(nul - s) : size;
    char *value = NULL, *out = NULL;
    struct anchor_template *t = NULL, *tp = NULL;
    struct anchor_attrs attrs;
    struct anchor_err err;

    anchor_attrs_init(&attrs);
    int path_ok = anchor_template_compile_path(&tp, s, tlen, &err) == 0;

    if (anchor_template_compile(&t, s, tlen, &err) != 0) {
        /* compile_path accepts a subset of what compile accepts */
        if (path_ok)
            abort();
        goto out;
    }
    value = nul != NULL ? strndup(nul + 1, size - tlen - 1) : strdup("v");
    if (value == NULL)
        goto out;
    for (size_t i = 0; i < anchor_template_placeholder_count(t); i++)
        if (anchor_attrs_set(&attrs, anchor_template_placeholder_name(t, i), value, &err) != 0)
            goto out;
    if (anchor_template_render(&out, t, &attrs, &err) == 0)
        free(out);
    out = NULL;
    if (anchor_template_render_path(&out, t, &attrs, &err) == 0 &&
        anchor_spiffeid_path_validate(out, strlen(out), &err) != 0)
        abort();
out:
    free(out);
    free(value);
    anchor_attrs_cleanup(&attrs);
    anchor_template_free(tp);
    anchor_template_free(t);
    return 0;
}
