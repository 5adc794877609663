/*
 * gRPC message framing (PROTOCOL-HTTP2 "Length-Prefixed-Message"): each
 * message is a 1-byte compressed flag, a 4-byte big-endian length and the
 * bytes. The reader gathers one message at a time from the DATA chunks of a
 * stream and checks the declared length against the limit before it
 * allocates anything. The buffer then grows with the bytes that actually
 * arrive (doubling, up to the declared length), so a peer that declares
 * large messages and sends little costs little.
 */
#include "rpc/internal.h"

#include <stdlib.h>
#include <string.h>

/* The first allocation for a message body, at most. */
#define FIRST_CHUNK (16u * 1024u)

void anchor__rpc_prefix(uint8_t out[ANCHOR__RPC_PREFIX_LEN], size_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

void anchor__rpc_reader_init(struct anchor__rpc_reader *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max;
}

void anchor__rpc_reader_cleanup(struct anchor__rpc_reader *r)
{
    free(r->buf);
    free(r->done);
    r->buf = NULL;
    r->done = NULL;
    r->hdr_have = 0;
    r->have = 0;
    r->len = 0;
}

int anchor__rpc_reader_idle(const struct anchor__rpc_reader *r)
{
    return r->hdr_have == 0;
}

size_t anchor__rpc_reader_held(const struct anchor__rpc_reader *r)
{
    return r->buf != NULL ? r->cap : 0;
}

/* Reads the prefix once it is whole: flag, length, allocation. */
static enum anchor__rpc_read start_body(struct anchor__rpc_reader *r)
{
    uint32_t len = ((uint32_t)r->hdr[1] << 24) | ((uint32_t)r->hdr[2] << 16) |
                   ((uint32_t)r->hdr[3] << 8) | (uint32_t)r->hdr[4];

    if (r->hdr[0] == 1)
        return ANCHOR__RPC_READ_COMPRESSED;
    if (r->hdr[0] != 0)
        return ANCHOR__RPC_READ_BAD_FLAG;
    if (len > r->max)
        return ANCHOR__RPC_READ_TOO_LARGE;
    r->len = len;
    r->have = 0;
    r->cap = len < FIRST_CHUNK ? len : FIRST_CHUNK;
    /* One byte more so that an empty message still has a buffer. */
    r->buf = malloc(r->cap + 1);
    if (r->buf == NULL)
        return ANCHOR__RPC_READ_NOMEM;
    return ANCHOR__RPC_READ_MORE;
}

/* Makes room for `need` body bytes in all. */
static int grow(struct anchor__rpc_reader *r, size_t need)
{
    size_t cap = r->cap;
    uint8_t *buf;

    if (need <= cap)
        return 0;
    while (cap < need)
        cap = cap > r->len / 2 ? r->len : cap * 2;
    buf = realloc(r->buf, cap + 1);
    if (buf == NULL)
        return -1;
    r->buf = buf;
    r->cap = cap;
    return 0;
}

enum anchor__rpc_read anchor__rpc_reader_feed(struct anchor__rpc_reader *r, const uint8_t *in,
                                              size_t n, size_t *used, const uint8_t **msg,
                                              size_t *len)
{
    size_t pos = 0;
    enum anchor__rpc_read rc;

    /* The message handed out by the previous call is released now. */
    free(r->done);
    r->done = NULL;
    for (;;) {
        if (r->hdr_have < ANCHOR__RPC_PREFIX_LEN) {
            size_t take = ANCHOR__RPC_PREFIX_LEN - r->hdr_have;
            if (take > n - pos)
                take = n - pos;
            memcpy(r->hdr + r->hdr_have, in + pos, take);
            r->hdr_have += take;
            pos += take;
            if (r->hdr_have < ANCHOR__RPC_PREFIX_LEN)
                break;
            rc = start_body(r);
            if (rc != ANCHOR__RPC_READ_MORE) {
                *used = pos;
                return rc;
            }
        }
        size_t take = r->len - r->have;
        if (take > n - pos)
            take = n - pos;
        if (grow(r, r->have + take) != 0) {
            *used = pos;
            return ANCHOR__RPC_READ_NOMEM;
        }
        if (take > 0)
            memcpy(r->buf + r->have, in + pos, take);
        r->have += take;
        pos += take;
        if (r->have == r->len) {
            *used = pos;
            *msg = r->buf;
            *len = r->len;
            r->done = r->buf;
            r->buf = NULL;
            r->hdr_have = 0;
            return ANCHOR__RPC_READ_MSG;
        }
        break;
    }
    *used = pos;
    return ANCHOR__RPC_READ_MORE;
}
