/*
 * The evidence wire form: the agent's certificates in DER, leaf first,
 * concatenated with nothing around them. Parsing only frames it: each
 * element must be a DER SEQUENCE with a minimal definite length, no larger
 * than ANCHOR_X509POP_MAX_CERT_BYTES, and the last must end exactly at the
 * end of the input. No X.509 decoding happens here, so the verifier can
 * refuse too long a chain before it spends anything on parsing.
 */
#include "x509pop/internal.h"
#include "util/check.h"

#include <stdlib.h>
#include <string.h>

#define EV_PREFIX "invalid x509pop evidence"

/* Reads the header of the DER element at buf[0..left) and sets *total to the
 * length of the whole element (header and content). */
static int frame_one(const uint8_t *buf, size_t left, size_t *total, size_t no,
                     struct anchor_err *err)
{
    int rc = -1;
    size_t hdr = 2;
    size_t clen;

    ENSURE(left >= 2, err, EV_PREFIX ": certificate %zu is truncated", no);
    ENSURE(buf[0] == 0x30, err, EV_PREFIX ": certificate %zu is not a DER SEQUENCE", no);
    if (buf[1] < 0x80) {
        clen = buf[1];
    } else {
        size_t nbytes = buf[1] & 0x7f;
        /* X.690 10.1: definite form, fewest octets. A certificate is at most
         * 64 KiB, so three length octets are always enough. */
        ENSURE(nbytes >= 1 && nbytes <= 3, err,
               EV_PREFIX ": certificate %zu has an invalid DER length", no);
        ENSURE(left >= 2 + nbytes, err, EV_PREFIX ": certificate %zu is truncated", no);
        ENSURE(buf[2] != 0, err, EV_PREFIX ": certificate %zu has an invalid DER length", no);
        clen = 0;
        for (size_t i = 0; i < nbytes; i++)
            clen = clen << 8 | buf[2 + i];
        ENSURE(clen >= 0x80, err, EV_PREFIX ": certificate %zu has an invalid DER length", no);
        hdr += nbytes;
    }
    ENSURE(hdr + clen <= ANCHOR_X509POP_MAX_CERT_BYTES, err,
           EV_PREFIX ": certificate %zu is larger than %d bytes", no,
           ANCHOR_X509POP_MAX_CERT_BYTES);
    ENSURE(hdr + clen <= left, err, EV_PREFIX ": certificate %zu is truncated", no);
    *total = hdr + clen;
    rc = 0;
out:
    return rc;
}

int anchor_x509pop_evidence_parse(struct anchor_x509pop_evidence **out, const uint8_t *buf,
                                  size_t len, struct anchor_err *err)
{
    int rc = -1;
    struct anchor_x509pop_evidence *ev = NULL;
    size_t cap = 0;
    size_t off = 0;

    ENSURE(buf != NULL && len > 0, err, EV_PREFIX ": empty");
    ENSURE(len <= ANCHOR_X509POP_MAX_EVIDENCE_BYTES, err, EV_PREFIX ": too large (%zu > %d bytes)",
           len, ANCHOR_X509POP_MAX_EVIDENCE_BYTES);
    ev = calloc(1, sizeof(*ev));
    ENSURE(ev != NULL, err, "out of memory");
    ev->buf = malloc(len);
    ENSURE(ev->buf != NULL, err, "out of memory");
    memcpy(ev->buf, buf, len);
    ev->len = len;
    while (off < len) {
        size_t total;
        TRY(frame_one(ev->buf + off, len - off, &total, ev->count + 1, err));
        if (ev->count == cap) {
            size_t ncap = cap == 0 ? 4 : cap * 2;
            struct anchor__x509pop_der *n = realloc(ev->certs, ncap * sizeof(*n));
            ENSURE(n != NULL, err, "out of memory");
            ev->certs = n;
            cap = ncap;
        }
        ev->certs[ev->count].p = ev->buf + off;
        ev->certs[ev->count].len = total;
        ev->count++;
        off += total;
    }
    *out = ev;
    ev = NULL;
    rc = 0;
out:
    anchor_x509pop_evidence_free(ev);
    return rc;
}

size_t anchor_x509pop_evidence_count(const struct anchor_x509pop_evidence *ev)
{
    return ev->count;
}

void anchor_x509pop_evidence_free(struct anchor_x509pop_evidence *ev)
{
    if (ev == NULL)
        return;
    free(ev->certs);
    free(ev->buf);
    free(ev);
}

int anchor__x509pop_chain_load(STACK_OF(X509) * *out, uint8_t **out_der, size_t *out_der_len,
                               const char *cert_path, const char *intermediates_path,
                               struct anchor_err *err)
{
    int rc = -1;
    char *text = NULL;
    size_t text_len = 0;
    STACK_OF(X509) *chain = NULL;
    STACK_OF(X509) *more = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    uint8_t *more_der = NULL;
    size_t more_der_len = 0;

    TRY(anchor__file_read(&text, &text_len, cert_path, ANCHOR__MAX_PEM_FILE_BYTES, err));
    TRY(anchor__certs_from_pem(&chain, &der, &der_len, text, text_len, cert_path, err));
    if (intermediates_path != NULL) {
        uint8_t *joined;
        anchor__file_free(text, text_len);
        text = NULL;
        TRY(anchor__file_read(&text, &text_len, intermediates_path, ANCHOR__MAX_PEM_FILE_BYTES,
                              err));
        TRY(anchor__certs_from_pem(&more, &more_der, &more_der_len, text, text_len,
                                   intermediates_path, err));
        while (sk_X509_num(more) > 0) {
            X509 *x = sk_X509_shift(more);
            if (sk_X509_push(chain, x) <= 0) {
                X509_free(x);
                FAIL(err, "out of memory");
            }
        }
        joined = realloc(der, der_len + more_der_len);
        ENSURE(joined != NULL, err, "out of memory");
        memcpy(joined + der_len, more_der, more_der_len);
        der = joined;
        der_len += more_der_len;
    }
    *out = chain;
    chain = NULL;
    *out_der = der;
    *out_der_len = der_len;
    der = NULL;
    rc = 0;
out:
    anchor__file_free(text, text_len);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(more, X509_free);
    free(der);
    free(more_der);
    return rc;
}

int anchor_x509pop_evidence_from_files(uint8_t **out, size_t *out_len, const char *cert_path,
                                       const char *intermediates_path, struct anchor_err *err)
{
    int rc = -1;
    STACK_OF(X509) *chain = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    struct anchor_x509pop_evidence *ev = NULL;

    TRY(anchor__x509pop_chain_load(&chain, &der, &der_len, cert_path, intermediates_path, err));
    /* The same framing the server applies, so the limits show here. */
    TRY(anchor_x509pop_evidence_parse(&ev, der, der_len, err));
    *out = der;
    *out_len = der_len;
    der = NULL;
    rc = 0;
out:
    anchor_x509pop_evidence_free(ev);
    sk_X509_pop_free(chain, X509_free);
    free(der);
    return rc;
}
