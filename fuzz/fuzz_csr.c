/*
 * Fuzz target for SVID requests: the bytes an agent sends as its CSR or its
 * public key (both DER) go to anchor_svid_request_parse_csr and _spki; a
 * request either accepts must hold a key that passes anchor_svid_key_check.
 */
#include <stdint.h>
#include <stdlib.h>

#include "anchor/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct anchor_svid_request *req = NULL;
    struct anchor_err err;

    if (anchor_svid_request_parse_csr(&req, data, size, &err) == 0) {
        if (anchor_svid_key_check(anchor_svid_request_get0_key(req), &err) != 0)
            abort();
        anchor_svid_request_free(req);
        req = NULL;
    }
    if (anchor_svid_request_parse_spki(&req, data, size, &err) == 0) {
        if (anchor_svid_key_check(anchor_svid_request_get0_key(req), &err) != 0)
            abort();
        anchor_svid_request_free(req);
    }
    return 0;
}
