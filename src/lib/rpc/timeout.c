/*
 * grpc-timeout (PROTOCOL-HTTP2 "Timeout"): a positive integer of at most 8
 * ASCII digits followed by a unit, H, M, S, m, u or n. Deadlines are kept in
 * milliseconds of CLOCK_MONOTONIC; sub-millisecond timeouts round up so that
 * a deadline never fires before its time.
 */
#include "rpc/internal.h"

#include <stdio.h>
#include <time.h>

int anchor__rpc_timeout_parse(const char *v, size_t len, uint64_t *ms)
{
    uint64_t n = 0;
    uint64_t out;

    if (len < 2 || len > 9)
        return -1;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    /* 8 digits at most: no product below can overflow 64 bits. */
    switch (v[len - 1]) {
    case 'H':
        out = n * 3600000u;
        break;
    case 'M':
        out = n * 60000u;
        break;
    case 'S':
        out = n * 1000u;
        break;
    case 'm':
        out = n;
        break;
    case 'u':
        out = (n + 999u) / 1000u;
        break;
    case 'n':
        out = (n + 999999u) / 1000000u;
        break;
    default:
        return -1;
    }
    *ms = out;
    return 0;
}

void anchor__rpc_timeout_encode(uint64_t ms, char out[16])
{
    /* Milliseconds when they fit, else the coarsest exact-enough unit,
     * rounding up so the server's deadline is never earlier than ours. */
    if (ms <= 99999999u)
        (void)snprintf(out, 16, "%um", (unsigned)ms);
    else if ((ms + 999u) / 1000u <= 99999999u)
        (void)snprintf(out, 16, "%uS", (unsigned)((ms + 999u) / 1000u));
    else if ((ms + 59999u) / 60000u <= 99999999u)
        (void)snprintf(out, 16, "%uM", (unsigned)((ms + 59999u) / 60000u));
    else
        (void)snprintf(out, 16, "%uH", 99999999u);
}

uint64_t anchor__rpc_now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
