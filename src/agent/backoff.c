/*
 * Retry delays for an unreachable server: exponential from one second to a
 * minute, with jitter so that a fleet of agents restarted together (or cut
 * off by the same outage) spreads its retries instead of arriving at once.
 */
#include "agent.h"

#include <openssl/rand.h>

/* A uniform draw in [lo, hi]; falls back to hi when the CSPRNG fails (a
 * longer wait is the safe side). */
static uint32_t draw(uint32_t lo, uint32_t hi)
{
    uint32_t r;

    if (hi <= lo || RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return hi;
    return lo + r % (hi - lo + 1);
}

uint32_t agent_backoff_next(struct agent_backoff *b)
{
    uint32_t d;

    if (b->next_ms == 0)
        b->next_ms = AGENT_BACKOFF_MIN_MS;
    d = b->next_ms;
    b->next_ms = d >= AGENT_BACKOFF_MAX_MS / 2 ? AGENT_BACKOFF_MAX_MS : d * 2;
    b->attempts++;
    return draw(d / 2, d);
}

void agent_backoff_reset(struct agent_backoff *b)
{
    b->next_ms = 0;
    b->attempts = 0;
}
