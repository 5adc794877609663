/*
 * Strict PEM framing (RFC 7468, with the RFC 1421 headers that mark
 * encrypted legacy keys). anchor reads operator-supplied PEM text (caCerts,
 * agent certificate and key files), so this reader refuses what OpenSSL's
 * lenient reader quietly accepts: a block without its END line, mismatched
 * labels, characters outside the base64 alphabet, misplaced padding and
 * non-zero pad bits. Text between blocks is ignored, as RFC 7468 section 5.2
 * allows. Every message names the source and the 1-based block number.
 */
#include "crypto/crypto.h"
#include "util/check.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define BEGIN_PREFIX "-----BEGIN "
#define END_PREFIX   "-----END "
#define DASHES       "-----"

enum state { OUTSIDE, HEADERS, BODY };

/* A line of the input without its end-of-line and trailing blanks. */
struct line {
    const char *p;
    size_t len;
};

static int starts_with(const struct line *l, const char *prefix)
{
    size_t n = strlen(prefix);

    return l->len >= n && memcmp(l->p, prefix, n) == 0;
}

/* Extracts the label of a "-----BEGIN X-----" or "-----END X-----" line:
 * printable ASCII without '-', single inner spaces (RFC 7468 "label"). */
static int line_label(const struct line *l, const char *prefix, char *label)
{
    size_t plen = strlen(prefix);
    size_t n;

    if (l->len < plen + 1 + strlen(DASHES) ||
        memcmp(l->p + l->len - strlen(DASHES), DASHES, strlen(DASHES)) != 0)
        return -1;
    n = l->len - plen - strlen(DASHES);
    if (n == 0 || n > ANCHOR__PEM_LABEL_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)l->p[plen + i];
        if (c == ' ') {
            if (i == 0 || i == n - 1 || l->p[plen + i - 1] == ' ')
                return -1;
        } else if (c < 0x21 || c > 0x7e || c == '-') {
            return -1;
        }
    }
    memcpy(label, l->p + plen, n);
    label[n] = '\0';
    return 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict base64 (RFC 4648 section 4): whole quanta, '=' only at the very
 * end, pad bits zero. Returns the decoded length or -1. */
static long b64_decode(uint8_t *out, const char *in, size_t len)
{
    size_t o = 0;

    if (len == 0 || len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + (size_t)k];
            if (c == '=') {
                /* Padding only in the last quantum, only in its tail. */
                if (i + 4 != len || k < 2)
                    return -1;
                pad++;
                v[k] = 0;
                continue;
            }
            if (pad > 0)
                return -1;
            v[k] = b64_value(c);
            if (v[k] < 0)
                return -1;
        }
        out[o++] = (uint8_t)((v[0] << 2) | (v[1] >> 4));
        if (pad == 2 && (v[1] & 0x0f) != 0)
            return -1;
        if (pad < 2)
            out[o++] = (uint8_t)(((v[1] & 0x0f) << 4) | (v[2] >> 2));
        if (pad == 1 && (v[2] & 0x03) != 0)
            return -1;
        if (pad == 0)
            out[o++] = (uint8_t)(((v[2] & 0x03) << 6) | v[3]);
    }
    return (long)o;
}

void anchor__pem_blocks_cleanup(struct anchor__pem_blocks *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++) {
        OPENSSL_cleanse(b->v[i].der, b->v[i].der_len);
        free(b->v[i].der);
    }
    free(b->v);
    b->v = NULL;
    b->n = 0;
}

/* Decodes the collected body into a new block appended to out. */
static int finish_block(struct anchor__pem_blocks *out, struct anchor__pem_block *cur,
                        const char *b64, size_t b64_len, const char *source, size_t no,
                        struct anchor_err *err)
{
    int rc = -1;
    uint8_t *der = NULL;
    long n;

    ENSURE(b64_len > 0, err, "%s: PEM block %zu (%s) is empty", source, no, cur->label);
    der = malloc(b64_len / 4 * 3);
    ENSURE(der != NULL, err, "out of memory");
    n = b64_decode(der, b64, b64_len);
    ENSURE(n > 0, err, "%s: PEM block %zu (%s) has invalid base64", source, no, cur->label);
    cur->der = der;
    cur->der_len = (size_t)n;
    der = NULL;
    out->v[out->n++] = *cur;
    rc = 0;
out:
    free(der);
    return rc;
}

int anchor__pem_parse(struct anchor__pem_blocks *out, const char *text, size_t len,
                      const char *source, struct anchor_err *err)
{
    int rc = -1;
    struct anchor__pem_blocks blocks = {NULL, 0};
    struct anchor__pem_block cur;
    char *b64 = NULL;
    size_t b64_len = 0;
    size_t pos = 0;
    enum state st = OUTSIDE;

    memset(&cur, 0, sizeof(cur));
    blocks.v = calloc(ANCHOR__MAX_PEM_BLOCKS, sizeof(*blocks.v));
    b64 = malloc(len + 1);
    ENSURE(blocks.v != NULL && b64 != NULL, err, "out of memory");
    while (pos < len) {
        struct line l;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        char label[ANCHOR__PEM_LABEL_MAX + 1];

        l.p = text + pos;
        l.len = end - pos;
        pos = nl != NULL ? end + 1 : len;
        while (l.len > 0 &&
               (l.p[l.len - 1] == '\r' || l.p[l.len - 1] == ' ' || l.p[l.len - 1] == '\t'))
            l.len--;

        if (st == OUTSIDE) {
            if (starts_with(&l, BEGIN_PREFIX)) {
                ENSURE(blocks.n < ANCHOR__MAX_PEM_BLOCKS, err, "%s: more than %d PEM blocks",
                       source, ANCHOR__MAX_PEM_BLOCKS);
                ENSURE(line_label(&l, BEGIN_PREFIX, cur.label) == 0, err,
                       "%s: PEM block %zu has a malformed BEGIN line", source, blocks.n + 1);
                cur.encrypted = 0;
                b64_len = 0;
                st = HEADERS;
            } else {
                ENSURE(!starts_with(&l, END_PREFIX), err, "%s: PEM END line without BEGIN", source);
            }
            continue;
        }
        if (starts_with(&l, END_PREFIX)) {
            ENSURE(line_label(&l, END_PREFIX, label) == 0 && strcmp(label, cur.label) == 0, err,
                   "%s: PEM block %zu (%s) has a mismatched END line", source, blocks.n + 1,
                   cur.label);
            TRY(finish_block(&blocks, &cur, b64, b64_len, source, blocks.n + 1, err));
            memset(&cur, 0, sizeof(cur));
            st = OUTSIDE;
            continue;
        }
        ENSURE(!starts_with(&l, DASHES), err, "%s: PEM block %zu (%s) has no END line", source,
               blocks.n + 1, cur.label);
        if (l.len == 0)
            continue;
        if (st == HEADERS && memchr(l.p, ':', l.len) != NULL) {
            /* RFC 1421 4.6.1.1: "Proc-Type: 4,ENCRYPTED" marks an encrypted
             * legacy key; other headers carry nothing anchor uses. */
            struct line h = l;
            if (starts_with(&h, "Proc-Type:") && l.len >= 9 &&
                memcmp(l.p + l.len - 9, "ENCRYPTED", 9) == 0)
                cur.encrypted = 1;
            continue;
        }
        st = BODY;
        for (size_t i = 0; i < l.len; i++) {
            unsigned char c = (unsigned char)l.p[i];
            ENSURE(c == '=' || b64_value(c) >= 0, err, "%s: PEM block %zu (%s) has invalid base64",
                   source, blocks.n + 1, cur.label);
            b64[b64_len++] = (char)c;
        }
    }
    ENSURE(st == OUTSIDE, err, "%s: PEM block %zu (%s) has no END line", source, blocks.n + 1,
           cur.label);
    *out = blocks;
    blocks.v = NULL;
    blocks.n = 0;
    rc = 0;
out:
    anchor__pem_blocks_cleanup(&blocks);
    if (b64 != NULL) {
        OPENSSL_cleanse(b64, len + 1);
        free(b64);
    }
    return rc;
}
