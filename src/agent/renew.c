/*
 * SVID renewal: one RenewSVID call over mutual TLS, presenting the current
 * SVID as the client certificate, asking for a new SVID for a new key (a key
 * is never certified twice, so a leaked old key dies with its SVID). The
 * answer is checked as a login result is, and reported to the state machine
 * from a separate loop turn.
 */
#include "agent.h"

#include "agent.pb-c.h"
#include "anchor/rpc.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENEW_PATH       "/anchor.agent.v1.AgentAPI/RenewSVID"
#define RENEW_TIMEOUT_MS 30000u

struct renew {
    struct agent *a;
    SSL_CTX *ctx;
    struct anchor_rpc_client *client;
    EVP_PKEY *key;
    uint8_t *spki;
    size_t spki_len;
    int ended;
    struct agent_result res;
    struct agent_svid *svid;
    STACK_OF(X509) * roots;
    uint64_t sequence;
    struct event *done;
};

static void renew_free(struct renew *r)
{
    if (r == NULL)
        return;
    if (r->done != NULL)
        event_free(r->done);
    anchor_rpc_client_free(r->client);
    SSL_CTX_free(r->ctx);
    EVP_PKEY_free(r->key);
    OPENSSL_free(r->spki);
    agent_svid_free(r->svid);
    sk_X509_pop_free(r->roots, X509_free);
    free(r);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct renew *r = arg;
    struct agent *a = r->a;
    struct agent_svid *svid = r->svid;
    STACK_OF(X509) *roots = r->roots;

    (void)fd;
    (void)what;
    r->svid = NULL;
    r->roots = NULL;
    a->renew = NULL;
    anchor_rpc_client_free(r->client);
    r->client = NULL;
    agent_renew_done(a, &r->res, svid, roots, r->sequence);
    renew_free(r);
}

static void finish(struct renew *r, int ok, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void finish(struct renew *r, int ok, int status, const char *fmt, ...)
{
    va_list ap;
    struct anchor_err msg;
    const struct timeval now = {0, 0};

    if (r->ended)
        return;
    r->ended = 1;
    r->res.ok = ok;
    r->res.status = status;
    va_start(ap, fmt);
    anchor_err_vset(&msg, fmt, ap);
    va_end(ap);
    (void)snprintf(r->res.message, sizeof(r->res.message), "%s", anchor_err_msg(&msg));
    if (evtimer_add(r->done, &now) != 0)
        event_active(r->done, EV_TIMEOUT, 0);
}

static int take_response(struct renew *r, const Anchor__Agent__V1__RenewResponse *resp,
                         struct anchor_err *err)
{
    const struct anchor_agent_config *cfg = r->a->cfg;
    const Anchor__Agent__V1__X509SVID *s = resp->svid;
    const Anchor__Agent__V1__Bundle *b = resp->bundle;
    STACK_OF(X509) * verify_roots;
    const uint8_t *der[64];
    size_t der_len[64];

    if (s == NULL || s->n_cert_chain == 0 || s->n_cert_chain > 64) {
        anchor_err_set(err, "server renewal lacks the SVID");
        return -1;
    }
    if (b != NULL && b->n_roots > 0) {
        if (b->trust_domain[0] != '\0' && strcmp(b->trust_domain, cfg->trust_domain) != 0) {
            anchor_err_set(err, "server bundle is for trust domain %s, not %s", b->trust_domain,
                           cfg->trust_domain);
            return -1;
        }
        if (b->n_roots > 64) {
            anchor_err_set(err, "server bundle holds %zu roots", b->n_roots);
            return -1;
        }
        for (size_t i = 0; i < b->n_roots; i++) {
            der[i] = b->roots[i].data;
            der_len[i] = b->roots[i].len;
        }
        if (agent_roots_from_der(&r->roots, der, der_len, b->n_roots, err) != 0)
            return -1;
        r->sequence = b->sequence;
    }
    verify_roots = r->roots != NULL ? r->roots : r->a->roots;
    for (size_t i = 0; i < s->n_cert_chain; i++) {
        der[i] = s->cert_chain[i].data;
        der_len[i] = s->cert_chain[i].len;
    }
    return agent_svid_from_der(&r->svid, der, der_len, s->n_cert_chain, r->key, s->spiffe_id,
                               cfg->trust_domain, verify_roots, err);
}

static void on_message(struct anchor_rpc_client_call *cc, const uint8_t *msg, size_t len)
{
    struct renew *r = anchor_rpc_client_call_data(cc);
    Anchor__Agent__V1__RenewResponse *resp;
    struct anchor_err err;

    if (r->ended)
        return;
    anchor_err_clear(&err);
    resp = anchor__agent__v1__renew_response__unpack(NULL, len, msg);
    if (resp == NULL) {
        finish(r, 0, ANCHOR_RPC_INTERNAL, "server sent a malformed RenewResponse");
        return;
    }
    if (take_response(r, resp, &err) != 0)
        finish(r, 0, ANCHOR_RPC_INTERNAL, "%s", anchor_err_msg(&err));
    anchor__agent__v1__renew_response__free_unpacked(resp, NULL);
}

static void on_status(struct anchor_rpc_client_call *cc, enum anchor_rpc_status status,
                      const char *message, const struct anchor_rpc_md *trailers, size_t n)
{
    struct renew *r = anchor_rpc_client_call_data(cc);

    (void)trailers;
    (void)n;
    if (r->ended)
        return;
    if (status != ANCHOR_RPC_OK) {
        if (status == ANCHOR_RPC_UNAVAILABLE && r->a->tls_check.reason[0] != '\0')
            finish(r, 0, status, "%s", r->a->tls_check.reason);
        else
            finish(r, 0, status, "%s",
                   message[0] != '\0' ? message : anchor_rpc_status_name(status));
        return;
    }
    if (r->svid == NULL) {
        finish(r, 0, ANCHOR_RPC_INTERNAL, "server ended RenewSVID without an SVID");
        return;
    }
    finish(r, 1, ANCHOR_RPC_OK, "%s", "");
}

static void on_connect(struct anchor_rpc_client *client)
{
    static const struct anchor_rpc_client_call_cbs cbs = {NULL, on_message, on_status};
    struct renew *r = anchor_rpc_client_data(client);
    Anchor__Agent__V1__RenewRequest req = ANCHOR__AGENT__V1__RENEW_REQUEST__INIT;
    struct anchor_err err;
    uint8_t *buf;
    size_t len;
    int rc;

    anchor_err_clear(&err);
    req.public_key.data = r->spki;
    req.public_key.len = r->spki_len;
    len = anchor__agent__v1__renew_request__get_packed_size(&req);
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        finish(r, 0, ANCHOR_RPC_INTERNAL, "out of memory");
        return;
    }
    (void)anchor__agent__v1__renew_request__pack(&req, buf);
    rc = anchor_rpc_client_unary(NULL, client, RENEW_PATH, NULL, 0, buf, len, RENEW_TIMEOUT_MS,
                                 &cbs, r, &err);
    free(buf);
    if (rc != 0)
        finish(r, 0, ANCHOR_RPC_UNAVAILABLE, "%s", anchor_err_msg(&err));
}

static void on_close(struct anchor_rpc_client *client, const char *why)
{
    struct renew *r = anchor_rpc_client_data(client);

    if (r->a->tls_check.reason[0] != '\0')
        finish(r, 0, ANCHOR_RPC_UNAVAILABLE, "%s", r->a->tls_check.reason);
    else
        finish(r, 0, ANCHOR_RPC_UNAVAILABLE, "cannot reach the server at %s: %s",
               r->a->cfg->server_address, why != NULL ? why : "connection closed");
}

int renew_start(struct agent *a, struct anchor_err *err)
{
    struct renew *r = calloc(1, sizeof(*r));
    struct anchor_rpc_client_opts opts = {0};
    const char *host = a->cfg->server_host;
    const char *sni = NULL;

    if (r == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    r->a = a;
    r->done = evtimer_new(a->base, on_done, r);
    if (r->done == NULL) {
        anchor_err_set(err, "out of memory");
        goto fail;
    }
    if (a->svid == NULL) {
        anchor_err_set(err, "no SVID to renew");
        goto fail;
    }
    if (agent_svid_key_new(&r->key, &r->spki, &r->spki_len, err) != 0 ||
        agent_tls_ctx_new(&r->ctx, &a->tls_check, a->cfg->trust_domain, a->bootstrap_roots,
                          a->roots, a->svid, err) != 0)
        goto fail;
    opts.on_connect = on_connect;
    opts.on_close = on_close;
    if (strspn(host, "0123456789.") != strlen(host) && strchr(host, ':') == NULL)
        sni = host;
    if (anchor_rpc_client_connect_tls(&r->client, a->base, host, a->cfg->server_port, r->ctx, sni,
                                      &opts, err) != 0)
        goto fail;
    anchor_rpc_client_set_data(r->client, r);
    a->renew = r;
    return 0;
fail:
    renew_free(r);
    return -1;
}

void renew_cancel(struct agent *a)
{
    struct renew *r = a->renew;

    if (r == NULL)
        return;
    a->renew = NULL;
    r->ended = 1;
    renew_free(r);
}
