/*
 * Fuzz target for the SPIFFE ID parser: any bytes go to anchor_spiffeid_parse
 * and the validators; an accepted ID must give back exactly the input, agree
 * with the non-allocating validator, and rebuild from its parts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/spiffeid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct anchor_spiffeid *id = NULL, *again = NULL;
    struct anchor_err err;
    int ok = anchor_spiffeid_parse(&id, s, size, &err) == 0;

    if ((anchor_spiffeid_validate(s, size, &err) == 0) != ok)
        abort();
    int td_ok = anchor_trust_domain_validate(s, size, &err) == 0;
    int path_ok = anchor_spiffeid_path_validate(s, size, &err) == 0;

    if (!ok)
        return 0;
    /* an ID has "://", which neither a trust domain nor a path may hold */
    if (td_ok || path_ok)
        abort();
    if (anchor_spiffeid_len(id) != size || memcmp(anchor_spiffeid_str(id), s, size) != 0)
        abort();
    if (anchor_spiffeid_from_path(&again, anchor_spiffeid_trust_domain(id),
                                  anchor_spiffeid_path(id), &err) != 0 ||
        !anchor_spiffeid_equal(id, again))
        abort();
    anchor_spiffeid_free(again);
    anchor_spiffeid_free(id);
    return 0;
}
