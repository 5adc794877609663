/*
 * exchange.c: one request/response exchange with the server on its own TLS
 * connection (a Login stream, a RenewSVID call), whose outcome is decided once
 * and delivered from a fresh loop turn. The owner embeds struct
 * agent_exchange as the FIRST member of its own struct and supplies the
 * per-kind parts through struct agent_exchange_ops.
 */
#ifndef ANCHOR_AGENT_EXCHANGE_H
#define ANCHOR_AGENT_EXCHANGE_H

#include "agent.h"

#include "agent.pb-c.h"
#include "anchor/rpc.h"

#include <event2/event.h>

struct agent_exchange;

/* Most certificates an SVID chain or a bundle from the server may hold. */
#define EXCHANGE_MAX_CERTS 64

/* The per-kind parts of an exchange. */
struct agent_exchange_ops {
    /* Called when the connection is up: starts the call and sends the
     * request, or decides the outcome with agent_exchange_finish. */
    void (*connect)(struct agent_exchange *x, struct anchor_rpc_client *client);
    /* Called once, from its own loop turn, after the connection was freed:
     * detaches the exchange from the agent and reports x->res, handing over
     * svid and roots (either may be NULL). The exchange is freed afterwards. */
    void (*deliver)(struct agent_exchange *x, struct agent_svid *svid, STACK_OF(X509) * roots);
    /* Frees the owner's own fields (not the struct itself); may be NULL. */
    void (*cleanup)(struct agent_exchange *x);
};

struct agent_exchange {
    const struct agent_exchange_ops *ops;
    struct agent *a;
    SSL_CTX *ctx;
    struct anchor_rpc_client *client;
    EVP_PKEY *key; /* the new SVID key */
    uint8_t *spki;
    size_t spki_len;
    int ended; /* the outcome is decided */
    struct agent_result res;
    struct agent_svid *svid;
    STACK_OF(X509) * roots;
    uint64_t sequence;
    struct event *done;
};

/* Allocates size bytes (the owner's struct, which begins with struct
 * agent_exchange) zeroed, and readies the delivery event. Returns 0 and sets
 * *out, freed with agent_exchange_free; on error returns -1 with err set and
 * *out untouched. */
int agent_exchange_new(struct agent_exchange **out, size_t size, struct agent *a,
                       const struct agent_exchange_ops *ops, struct anchor_err *err)
    __attribute__((warn_unused_result));

/* Makes a new SVID key and connects to the server over TLS, presenting
 * client_svid when not NULL; ops->connect runs once the connection is up.
 * Returns 0, or -1 with err set (the caller frees the exchange). */
int agent_exchange_connect(struct agent_exchange *x, const struct agent_svid *client_svid,
                           struct anchor_err *err) __attribute__((warn_unused_result));

/* Frees the exchange and everything it holds, the owner's fields through
 * ops->cleanup. Accepts NULL. Nothing is delivered. */
void agent_exchange_free(struct agent_exchange *x);

/* Decides the outcome (the first call wins) and schedules its delivery from
 * a fresh loop turn. */
void agent_exchange_finish(struct agent_exchange *x, int ok, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Decides the outcome from the call's final status: a non-OK status fails
 * with the TLS check's reason or the server's message; OK without an SVID
 * fails with no_svid; otherwise succeeds. Does nothing once decided. */
void agent_exchange_status(struct agent_exchange *x, enum anchor_rpc_status status,
                           const char *message, const char *no_svid);

/* Fails with a message if bundle b names a trust domain other than the
 * agent's. Returns 0 or -1 with err set. */
int agent_exchange_check_trust_domain(struct agent_exchange *x, const Anchor__Agent__V1__Bundle *b,
                                      struct anchor_err *err) __attribute__((warn_unused_result));

/* Keeps the roots (1 to EXCHANGE_MAX_CERTS, else an error) and the sequence of b.
 * Returns 0 or -1 with err set. */
int agent_exchange_take_bundle(struct agent_exchange *x, const Anchor__Agent__V1__Bundle *b,
                               struct anchor_err *err) __attribute__((warn_unused_result));

/* Checks SVID s (1 to EXCHANGE_MAX_CERTS certificates, else an error) against the
 * exchange's key, the trust domain and roots, and keeps it. Returns 0 or -1
 * with err set. */
int agent_exchange_take_svid(struct agent_exchange *x, const Anchor__Agent__V1__X509SVID *s,
                             STACK_OF(X509) * roots, struct anchor_err *err)
    __attribute__((warn_unused_result));

#endif
