/*
 * The shell shared by the agent's exchanges with the server (login.c,
 * renew.c): each runs on its own TLS connection that authenticated the
 * server, with a freshly made SVID key whose public key goes in the request.
 *
 * The outcome is decided once (the first of: the call ending, a local
 * failure, the connection closing) and delivered from a separate loop turn,
 * where the connection can be freed. The owner supplies what differs: what to
 * send once connected, how to report the outcome, and its own fields to free.
 * The response's bundle and SVID are checked and kept here, so both kinds
 * check them the same way.
 */
#include "exchange.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs in its own loop turn: frees the connection, then reports. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct agent_exchange *x = arg;
    struct agent_svid *svid = x->svid;
    STACK_OF(X509) *roots = x->roots;

    (void)fd;
    (void)what;
    x->svid = NULL;
    x->roots = NULL;
    anchor_rpc_client_free(x->client);
    x->client = NULL;
    x->ops->deliver(x, svid, roots);
    agent_exchange_free(x);
}

int agent_exchange_new(struct agent_exchange **out, size_t size, struct agent *a,
                       const struct agent_exchange_ops *ops, struct anchor_err *err)
{
    struct agent_exchange *x = calloc(1, size);

    if (x == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    x->ops = ops;
    x->a = a;
    x->done = evtimer_new(a->base, on_done, x);
    if (x->done == NULL) {
        anchor_err_set(err, "out of memory");
        agent_exchange_free(x);
        return -1;
    }
    *out = x;
    return 0;
}

void agent_exchange_free(struct agent_exchange *x)
{
    if (x == NULL)
        return;
    if (x->done != NULL)
        event_free(x->done);
    anchor_rpc_client_free(x->client);
    SSL_CTX_free(x->ctx);
    if (x->ops->cleanup != NULL)
        x->ops->cleanup(x);
    EVP_PKEY_free(x->key);
    OPENSSL_free(x->spki);
    agent_svid_free(x->svid);
    sk_X509_pop_free(x->roots, X509_free);
    free(x);
}

void agent_exchange_finish(struct agent_exchange *x, int ok, int status, const char *fmt, ...)
{
    va_list ap;
    struct anchor_err msg;
    const struct timeval now = {0, 0};

    if (x->ended)
        return;
    x->ended = 1;
    x->res.ok = ok;
    x->res.status = status;
    va_start(ap, fmt);
    anchor_err_vset(&msg, fmt, ap);
    va_end(ap);
    (void)snprintf(x->res.message, sizeof(x->res.message), "%s", anchor_err_msg(&msg));
    if (evtimer_add(x->done, &now) != 0)
        event_active(x->done, EV_TIMEOUT, 0);
}

void agent_exchange_status(struct agent_exchange *x, enum anchor_rpc_status status,
                           const char *message, const char *no_svid)
{
    if (x->ended)
        return;
    if (status != ANCHOR_RPC_OK) {
        if (status == ANCHOR_RPC_UNAVAILABLE && x->a->tls_check.reason[0] != '\0')
            agent_exchange_finish(x, 0, status, "%s", x->a->tls_check.reason);
        else
            agent_exchange_finish(x, 0, status, "%s",
                                  message[0] != '\0' ? message : anchor_rpc_status_name(status));
        return;
    }
    if (x->svid == NULL) {
        agent_exchange_finish(x, 0, ANCHOR_RPC_INTERNAL, "%s", no_svid);
        return;
    }
    agent_exchange_finish(x, 1, ANCHOR_RPC_OK, "%s", "");
}

int agent_exchange_check_trust_domain(struct agent_exchange *x, const Anchor__Agent__V1__Bundle *b,
                                      struct anchor_err *err)
{
    const char *td = x->a->cfg->trust_domain;

    if (b->trust_domain[0] != '\0' && strcmp(b->trust_domain, td) != 0) {
        anchor_err_set(err, "server bundle is for trust domain %s, not %s", b->trust_domain, td);
        return -1;
    }
    return 0;
}

int agent_exchange_take_bundle(struct agent_exchange *x, const Anchor__Agent__V1__Bundle *b,
                               struct anchor_err *err)
{
    const uint8_t *der[EXCHANGE_MAX_CERTS];
    size_t der_len[EXCHANGE_MAX_CERTS];

    /* The callers check this too, with their own messages; this bound keeps
     * the arrays safe whatever a caller does. */
    if (b->n_roots == 0 || b->n_roots > EXCHANGE_MAX_CERTS) {
        anchor_err_set(err, "server bundle holds %zu roots", b->n_roots);
        return -1;
    }
    for (size_t i = 0; i < b->n_roots; i++) {
        der[i] = b->roots[i].data;
        der_len[i] = b->roots[i].len;
    }
    if (agent_roots_from_der(&x->roots, der, der_len, b->n_roots, err) != 0)
        return -1;
    x->sequence = b->sequence;
    return 0;
}

int agent_exchange_take_svid(struct agent_exchange *x, const Anchor__Agent__V1__X509SVID *s,
                             STACK_OF(X509) * roots, struct anchor_err *err)
{
    const uint8_t *der[EXCHANGE_MAX_CERTS];
    size_t der_len[EXCHANGE_MAX_CERTS];

    if (s->n_cert_chain == 0 || s->n_cert_chain > EXCHANGE_MAX_CERTS) {
        anchor_err_set(err, "server SVID chain holds %zu certificates", s->n_cert_chain);
        return -1;
    }
    for (size_t i = 0; i < s->n_cert_chain; i++) {
        der[i] = s->cert_chain[i].data;
        der_len[i] = s->cert_chain[i].len;
    }
    return agent_svid_from_der(&x->svid, der, der_len, s->n_cert_chain, x->key, s->spiffe_id,
                               x->a->cfg->trust_domain, roots, err);
}

/* --- connection ---------------------------------------------------------------------- */

static void on_connect(struct anchor_rpc_client *client)
{
    struct agent_exchange *x = anchor_rpc_client_data(client);

    x->ops->connect(x, client);
}

static void on_close(struct anchor_rpc_client *client, const char *why)
{
    struct agent_exchange *x = anchor_rpc_client_data(client);

    if (x->a->tls_check.reason[0] != '\0')
        agent_exchange_finish(x, 0, ANCHOR_RPC_UNAVAILABLE, "%s", x->a->tls_check.reason);
    else
        agent_exchange_finish(x, 0, ANCHOR_RPC_UNAVAILABLE, "cannot reach the server at %s: %s",
                              x->a->cfg->server_address, why != NULL ? why : "connection closed");
}

int agent_exchange_connect(struct agent_exchange *x, const struct agent_svid *client_svid,
                           struct anchor_err *err)
{
    struct agent *a = x->a;
    struct anchor_rpc_client_opts opts = {0};
    const char *host = a->cfg->server_host;
    const char *sni = NULL;

    if (agent_svid_key_new(&x->key, &x->spki, &x->spki_len, err) != 0)
        return -1;
    if (agent_tls_ctx_new(&x->ctx, &a->tls_check, a->cfg->trust_domain, a->bootstrap_roots,
                          a->roots, client_svid, err) != 0)
        return -1;
    opts.on_connect = on_connect;
    opts.on_close = on_close;
    /* SNI only for names: RFC 6066 3 forbids literal addresses. */
    if (strspn(host, "0123456789.") != strlen(host) && strchr(host, ':') == NULL)
        sni = host;
    if (anchor_rpc_client_connect_tls(&x->client, a->base, host, a->cfg->server_port, x->ctx, sni,
                                      &opts, err) != 0)
        return -1;
    anchor_rpc_client_set_data(x->client, x);
    return 0;
}
