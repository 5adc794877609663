/*
 * SVID renewal: one RenewSVID call over mutual TLS, presenting the current
 * SVID as the client certificate, asking for a new SVID for a new key (a key
 * is never certified twice, so a leaked old key dies with its SVID). The
 * answer is checked as a login result is, and reported to the state machine
 * from a separate loop turn (the shell shared with login.c is exchange.c).
 */
#include "agent.h"
#include "exchange.h"

#include "agent.pb-c.h"
#include "anchor/rpc.h"

#include <stdlib.h>

#define RENEW_PATH       "/anchor.agent.v1.AgentAPI/RenewSVID"
#define RENEW_TIMEOUT_MS 30000u

struct renew {
    struct agent_exchange x; /* first: the exchange is the renewal */
};

/* Checks and keeps the answer: the bundle is optional, the SVID is verified
 * against the new roots when sent, else the current ones. */
static int take_response(struct renew *r, const Anchor__Agent__V1__RenewResponse *resp,
                         struct anchor_err *err)
{
    const Anchor__Agent__V1__X509SVID *s = resp->svid;
    const Anchor__Agent__V1__Bundle *b = resp->bundle;

    if (s == NULL || s->n_cert_chain == 0 || s->n_cert_chain > EXCHANGE_MAX_CERTS) {
        anchor_err_set(err, "server renewal lacks the SVID");
        return -1;
    }
    if (b != NULL && b->n_roots > 0) {
        if (agent_exchange_check_trust_domain(&r->x, b, err) != 0)
            return -1;
        if (b->n_roots > EXCHANGE_MAX_CERTS) {
            anchor_err_set(err, "server bundle holds %zu roots", b->n_roots);
            return -1;
        }
        if (agent_exchange_take_bundle(&r->x, b, err) != 0)
            return -1;
    }
    return agent_exchange_take_svid(&r->x, s, r->x.roots != NULL ? r->x.roots : r->x.a->roots, err);
}

static void on_message(struct anchor_rpc_client_call *cc, const uint8_t *msg, size_t len)
{
    struct renew *r = anchor_rpc_client_call_data(cc);
    Anchor__Agent__V1__RenewResponse *resp;
    struct anchor_err err;

    if (r->x.ended)
        return;
    anchor_err_clear(&err);
    resp = anchor__agent__v1__renew_response__unpack(NULL, len, msg);
    if (resp == NULL) {
        agent_exchange_finish(&r->x, 0, ANCHOR_RPC_INTERNAL,
                              "server sent a malformed RenewResponse");
        return;
    }
    if (take_response(r, resp, &err) != 0)
        agent_exchange_finish(&r->x, 0, ANCHOR_RPC_INTERNAL, "%s", anchor_err_msg(&err));
    anchor__agent__v1__renew_response__free_unpacked(resp, NULL);
}

static void on_status(struct anchor_rpc_client_call *cc, enum anchor_rpc_status status,
                      const char *message, const struct anchor_rpc_md *trailers, size_t n)
{
    struct renew *r = anchor_rpc_client_call_data(cc);

    (void)trailers;
    (void)n;
    agent_exchange_status(&r->x, status, message, "server ended RenewSVID without an SVID");
}

/* Once connected: sends the request for the new key. */
static void on_connect(struct agent_exchange *x, struct anchor_rpc_client *client)
{
    static const struct anchor_rpc_client_call_cbs cbs = {NULL, on_message, on_status};
    Anchor__Agent__V1__RenewRequest req = ANCHOR__AGENT__V1__RENEW_REQUEST__INIT;
    struct anchor_err err;
    uint8_t *buf;
    size_t len;
    int rc;

    anchor_err_clear(&err);
    req.public_key.data = x->spki;
    req.public_key.len = x->spki_len;
    len = anchor__agent__v1__renew_request__get_packed_size(&req);
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        agent_exchange_finish(x, 0, ANCHOR_RPC_INTERNAL, "out of memory");
        return;
    }
    (void)anchor__agent__v1__renew_request__pack(&req, buf);
    rc = anchor_rpc_client_unary(NULL, client, RENEW_PATH, NULL, 0, buf, len, RENEW_TIMEOUT_MS,
                                 &cbs, x, &err);
    free(buf);
    if (rc != 0)
        agent_exchange_finish(x, 0, ANCHOR_RPC_UNAVAILABLE, "%s", anchor_err_msg(&err));
}

static void deliver(struct agent_exchange *x, struct agent_svid *svid, STACK_OF(X509) * roots)
{
    struct agent *a = x->a;

    a->renew = NULL;
    agent_renew_done(a, &x->res, svid, roots, x->sequence);
}

static const struct agent_exchange_ops renew_ops = {on_connect, deliver, NULL};

int renew_start(struct agent *a, struct anchor_err *err)
{
    struct agent_exchange *x = NULL;

    if (agent_exchange_new(&x, sizeof(struct renew), a, &renew_ops, err) != 0)
        return -1;
    if (a->svid == NULL) {
        anchor_err_set(err, "no SVID to renew");
        goto fail;
    }
    if (agent_exchange_connect(x, a->svid, err) != 0)
        goto fail;
    a->renew = (struct renew *)x;
    return 0;
fail:
    agent_exchange_free(x);
    return -1;
}

void renew_cancel(struct agent *a)
{
    struct renew *r = a->renew;

    if (r == NULL)
        return;
    a->renew = NULL;
    r->x.ended = 1;
    agent_exchange_free(&r->x);
}
