/*
 * gRPC statuses: their names, the percent-encoding of grpc-message
 * (PROTOCOL-HTTP2 "Responses": bytes outside %x20-%x7E, and '%' itself, are
 * sent as %XX of the UTF-8 bytes), and the statuses a client derives when a
 * server or proxy gave no grpc-status (http-grpc-status-mapping.md and
 * PROTOCOL-HTTP2 "Errors").
 */
#include "rpc/internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *anchor_rpc_status_name(int status)
{
    if (status < 0 || status > ANCHOR_RPC_UNAUTHENTICATED)
        return "UNKNOWN";
    return names[status];
}

char *anchor__rpc_pct_encode(const char *msg)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(msg);
    char *out = malloc(n * 3 + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)msg[i];
        if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
            out[o++] = (char)ch;
            continue;
        }
        out[o++] = '%';
        out[o++] = hex[ch >> 4];
        out[o++] = hex[ch & 0xf];
    }
    out[o] = '\0';
    return out;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

char *anchor__rpc_pct_decode(const char *in, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        /* The spec asks a receiver to keep an invalid escape as it is
         * rather than fail the call. */
        if (in[i] == '%' && i + 2 < len && (hi = hexval(in[i + 1])) >= 0 &&
            (lo = hexval(in[i + 2])) >= 0) {
            out[o++] = (char)((hi << 4) | lo);
            i += 2;
            continue;
        }
        out[o++] = in[i];
    }
    out[o] = '\0';
    return out;
}

enum anchor_rpc_status anchor__rpc_status_from_http(int http_status)
{
    switch (http_status) {
    case 400:
        return ANCHOR_RPC_INTERNAL;
    case 401:
        return ANCHOR_RPC_UNAUTHENTICATED;
    case 403:
        return ANCHOR_RPC_PERMISSION_DENIED;
    case 404:
        return ANCHOR_RPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return ANCHOR_RPC_UNAVAILABLE;
    default:
        return ANCHOR_RPC_UNKNOWN;
    }
}

enum anchor_rpc_status anchor__rpc_status_from_h2(uint32_t code)
{
    switch (code) {
    case NGHTTP2_REFUSED_STREAM:
        return ANCHOR_RPC_UNAVAILABLE;
    case NGHTTP2_CANCEL:
        return ANCHOR_RPC_CANCELLED;
    case NGHTTP2_ENHANCE_YOUR_CALM:
        return ANCHOR_RPC_RESOURCE_EXHAUSTED;
    case NGHTTP2_INADEQUATE_SECURITY:
        return ANCHOR_RPC_PERMISSION_DENIED;
    default:
        return ANCHOR_RPC_INTERNAL;
    }
}

int anchor__rpc_status_parse(const char *v, size_t len)
{
    int n = 0;

    if (len == 0 || len > 3)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n > ANCHOR_RPC_UNAUTHENTICATED ? ANCHOR_RPC_UNKNOWN : n;
}
