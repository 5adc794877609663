/*
 * Metadata lists: the headers of a request or response as gRPC presents
 * them. Every name and value is copied and NUL-terminated. Names ending in
 * "-bin" carry binary values, base64-encoded on the wire (PROTOCOL-HTTP2
 * "Custom-Metadata"; padding optional on receipt, omitted on sending), so
 * the list holds the decoded bytes.
 */
#include "rpc/internal.h"

#include <stdlib.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int is_bin(const char *name, size_t len)
{
    return len >= 4 && memcmp(name + len - 4, "-bin", 4) == 0;
}

static int b64val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Decodes base64 with or without padding into out (at least len bytes).
 * Returns the decoded length or -1. */
static long b64_decode(const char *in, size_t len, uint8_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;

    while (len > 0 && in[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* A lone trailing sextet cannot encode a byte. */
    if (bits >= 6)
        return -1;
    return (long)o;
}

void anchor__rpc_mdlist_cleanup(struct anchor__rpc_mdlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->items[i].name);
        free((char *)l->items[i].value);
    }
    free(l->items);
    memset(l, 0, sizeof(*l));
}

int anchor__rpc_mdlist_add(struct anchor__rpc_mdlist *l, const char *name, size_t name_len,
                           const char *value, size_t value_len, int wire)
{
    char *n = NULL;
    char *v = NULL;
    size_t vlen = value_len;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct anchor_rpc_md *items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL)
            return -1;
        l->items = items;
        l->cap = cap;
    }
    n = malloc(name_len + 1);
    v = malloc(value_len + 1);
    if (n == NULL || v == NULL)
        goto fail;
    memcpy(n, name, name_len);
    n[name_len] = '\0';
    if (wire && is_bin(name, name_len)) {
        long d = b64_decode(value, value_len, (uint8_t *)v);
        if (d < 0)
            goto fail;
        vlen = (size_t)d;
    } else {
        memcpy(v, value, value_len);
    }
    v[vlen] = '\0';
    l->items[l->n].name = n;
    l->items[l->n].value = v;
    l->items[l->n].value_len = vlen;
    l->n++;
    l->bytes += name_len + value_len + 32;
    return 0;
fail:
    free(n);
    free(v);
    return -1;
}

int anchor__rpc_md_name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > 256 || strncmp(name, "grpc-", 5) == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
              ch == '.'))
            return 0;
    }
    /* Connection-specific headers are forbidden in HTTP/2 (RFC 9113 8.2.2). */
    if (strcmp(name, "connection") == 0 || strcmp(name, "te") == 0 ||
        strcmp(name, "transfer-encoding") == 0 || strcmp(name, "upgrade") == 0 ||
        strcmp(name, "keep-alive") == 0 || strcmp(name, "proxy-connection") == 0 ||
        strcmp(name, "content-type") == 0)
        return 0;
    return 1;
}

char *anchor__rpc_md_wire_value(const char *name, const char *value, size_t len, size_t *out_len)
{
    const uint8_t *in = (const uint8_t *)value;
    char *out;
    size_t o = 0;
    size_t i = 0;

    if (!is_bin(name, strlen(name))) {
        for (size_t k = 0; k < len; k++)
            if (in[k] < 0x20 || in[k] > 0x7e)
                return NULL;
        out = malloc(len + 1);
        if (out == NULL)
            return NULL;
        memcpy(out, value, len);
        out[len] = '\0';
        *out_len = len;
        return out;
    }
    out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

const struct anchor_rpc_md *anchor_rpc_md_find(const struct anchor_rpc_md *md, size_t n,
                                               const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(md[i].name, name) == 0)
            return &md[i];
    return NULL;
}
