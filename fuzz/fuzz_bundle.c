/*
 * Fuzz target for the trust bundle readers: the same bytes go to the SPIFFE
 * bundle (JWKS) reader and the PEM reader. A JWKS bundle that is accepted
 * must be written back and read again to the same roots and sequence.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct anchor_bundle *b = NULL, *again = NULL, *pem = NULL;
    struct anchor_err err;
    char *text = NULL;

    if (anchor_bundle_parse_pem(&pem, "example.org", s, size, "fuzz", &err) == 0)
        anchor_bundle_free(pem);
    if (anchor_bundle_parse_jwks(&b, "example.org", s, size, &err) != 0)
        return 0;
    if (anchor_bundle_to_jwks(&text, b, &err) != 0 ||
        anchor_bundle_parse_jwks(&again, "example.org", text, strlen(text), &err) != 0 ||
        anchor_bundle_sequence(again) != anchor_bundle_sequence(b) ||
        sk_X509_num(anchor_bundle_get0_roots(again)) != sk_X509_num(anchor_bundle_get0_roots(b)))
        abort();
    for (int i = 0; i < sk_X509_num(anchor_bundle_get0_roots(b)); i++)
        if (X509_cmp(sk_X509_value(anchor_bundle_get0_roots(b), i),
                     sk_X509_value(anchor_bundle_get0_roots(again), i)) != 0)
            abort();
    free(text);
    anchor_bundle_free(again);
    anchor_bundle_free(b);
    return 0;
}
