/*
 * Fuzz target: the URI SAN parser. Input: "<trust domain>\n<uri>" (no
 * newline: the whole input is the URI and the trust domain is example.org).
 * Checks the parser's promises: a match lies inside the input, the type is
 * one non-empty segment, the value is non-empty and the URI is rebuilt
 * exactly from the parts. Seeds: fuzz/corpus/uri_san.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x509pop/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    char td[256] = "example.org";
    const char *uri = in;
    size_t uri_len = size;
    const char *t = NULL, *v = NULL;
    size_t tl = 0, vl = 0;

    if (nl != NULL) {
        size_t n = (size_t)(nl - in);
        if (n >= sizeof(td))
            return 0;
        memcpy(td, in, n);
        td[n] = '\0';
        uri = nl + 1;
        uri_len = size - n - 1;
    }
    if (anchor__x509pop_uri_san_match(uri, uri_len, td, &t, &tl, &v, &vl) != 1)
        return 0;
    if (tl == 0 || vl == 0 || memchr(t, '/', tl) != NULL || t < uri || v + vl != uri + uri_len ||
        uri_len != strlen("x509pop://") + strlen(td) + 1 + tl + 1 + vl ||
        memcmp(uri + strlen("x509pop://"), td, strlen(td)) != 0)
        abort();
    return 0;
}
