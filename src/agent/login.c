/*
 * The client side of the Login stream (proto/agent.proto): on a new TLS
 * connection that authenticated the server, send the cluster id, the
 * evidence of each configured attestor and the public key of a freshly made
 * SVID key; answer each challenge with a proof bound to this connection's
 * RFC 9266 exporter; receive the SVID and the bundle, check them, and hand
 * them to the state machine.
 *
 * The credential is loaded from its files at every attempt, so a replaced
 * certificate or key is used at the next login without a restart.
 *
 * The outcome is decided once (the first of: result received and stream
 * ended OK, a non-OK status, a local failure, the connection closing) and
 * delivered from a separate loop turn, where the connection can be freed.
 */
#include "agent.h"

#include "agent.pb-c.h"
#include "anchor/rpc.h"
#include "anchor/x509pop.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGIN_PATH       "/anchor.agent.v1.AgentAPI/Login"
#define LOGIN_TIMEOUT_MS 60000u
#define MAX_ATTESTORS    8

struct login {
    struct agent *a;
    SSL_CTX *ctx;
    struct anchor_rpc_client *client;
    struct anchor_x509pop_credential *cred[MAX_ATTESTORS];
    EVP_PKEY *key;
    uint8_t *spki;
    size_t spki_len;
    int challenged;
    int ended;
    struct agent_result res;
    struct agent_svid *svid;
    STACK_OF(X509) * roots;
    uint64_t sequence;
    struct event *done;
};

static void login_free(struct login *l)
{
    if (l == NULL)
        return;
    if (l->done != NULL)
        event_free(l->done);
    anchor_rpc_client_free(l->client);
    SSL_CTX_free(l->ctx);
    for (size_t i = 0; i < MAX_ATTESTORS; i++)
        anchor_x509pop_credential_free(l->cred[i]);
    EVP_PKEY_free(l->key);
    OPENSSL_free(l->spki);
    agent_svid_free(l->svid);
    sk_X509_pop_free(l->roots, X509_free);
    free(l);
}

/* Runs in its own loop turn: frees the connection, then reports. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct login *l = arg;
    struct agent *a = l->a;
    struct agent_svid *svid = l->svid;
    STACK_OF(X509) *roots = l->roots;

    (void)fd;
    (void)what;
    l->svid = NULL;
    l->roots = NULL;
    a->login = NULL;
    anchor_rpc_client_free(l->client);
    l->client = NULL;
    agent_login_done(a, &l->res, svid, roots, l->sequence);
    login_free(l);
}

/* Decides the outcome (the first call wins) and schedules its delivery. */
static void finish(struct login *l, int ok, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void finish(struct login *l, int ok, int status, const char *fmt, ...)
{
    va_list ap;
    struct anchor_err msg;
    const struct timeval now = {0, 0};

    if (l->ended)
        return;
    l->ended = 1;
    l->res.ok = ok;
    l->res.status = status;
    va_start(ap, fmt);
    anchor_err_vset(&msg, fmt, ap);
    va_end(ap);
    (void)snprintf(l->res.message, sizeof(l->res.message), "%s", anchor_err_msg(&msg));
    if (evtimer_add(l->done, &now) != 0)
        event_active(l->done, EV_TIMEOUT, 0);
}

/* --- messages ----------------------------------------------------------------------- */

static int send_request(struct login *l, struct anchor_rpc_client_call *cc,
                        const Anchor__Agent__V1__LoginRequest *req, struct anchor_err *err)
{
    size_t len = anchor__agent__v1__login_request__get_packed_size(req);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    int rc;

    (void)l;
    if (buf == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    (void)anchor__agent__v1__login_request__pack(req, buf);
    rc = anchor_rpc_client_call_send(cc, buf, len, err);
    free(buf);
    return rc;
}

static int send_start(struct login *l, struct anchor_rpc_client_call *cc, struct anchor_err *err)
{
    struct anchor_agent_config *cfg = l->a->cfg;
    Anchor__Agent__V1__LoginRequest req = ANCHOR__AGENT__V1__LOGIN_REQUEST__INIT;
    Anchor__Agent__V1__LoginStart start = ANCHOR__AGENT__V1__LOGIN_START__INIT;
    Anchor__Agent__V1__AttestationData data[MAX_ATTESTORS];
    Anchor__Agent__V1__AttestationData *pdata[MAX_ATTESTORS];
    uint8_t *evidence[MAX_ATTESTORS] = {0};
    const char *types[MAX_ATTESTORS];
    size_t n = cfg->nattestors;
    int rc = -1;

    for (size_t i = 0; i < n; i++) {
        size_t len = 0;

        anchor__agent__v1__attestation_data__init(&data[i]);
        if (anchor_x509pop_credential_evidence(l->cred[i], &evidence[i], &len, err) != 0)
            goto out;
        data[i].type = cfg->attestors[i].type;
        data[i].payload.data = evidence[i];
        data[i].payload.len = len;
        pdata[i] = &data[i];
        types[i] = cfg->attestors[i].type;
    }
    start.cluster_id = cfg->cluster_id;
    start.n_attestation_data = n;
    start.attestation_data = pdata;
    start.public_key.data = l->spki;
    start.public_key.len = l->spki_len;
    req.step_case = ANCHOR__AGENT__V1__LOGIN_REQUEST__STEP_START;
    req.start = &start;
    ANCHOR_LOGF(l->a->log, ANCHOR_LOG_DEBUG, "Sending Login",
                ANCHOR_LOG_STRS("attestors", types, n),
                ANCHOR_LOG_STR("clusterId", cfg->cluster_id),
                ANCHOR_LOG_STR("serverAddress", cfg->server_address));
    rc = send_request(l, cc, &req, err);
out:
    for (size_t i = 0; i < n; i++)
        free(evidence[i]);
    return rc;
}

/* Answers the server's challenges, one proof per challenge, each bound to
 * this connection's exporter. */
static int answer(struct login *l, struct anchor_rpc_client_call *cc,
                  const Anchor__Agent__V1__LoginChallenges *ch, struct anchor_err *err)
{
    const struct anchor_rpc_peer *peer = anchor_rpc_client_peer(l->client);
    Anchor__Agent__V1__LoginRequest req = ANCHOR__AGENT__V1__LOGIN_REQUEST__INIT;
    Anchor__Agent__V1__LoginProofs proofs = ANCHOR__AGENT__V1__LOGIN_PROOFS__INIT;
    Anchor__Agent__V1__ChallengeResponse resp[MAX_ATTESTORS];
    Anchor__Agent__V1__ChallengeResponse *presp[MAX_ATTESTORS];
    uint8_t *payload[MAX_ATTESTORS] = {0};
    size_t n = 0;
    int rc = -1;

    if (l->challenged) {
        anchor_err_set(err, "server sent a second set of challenges");
        return -1;
    }
    l->challenged = 1;
    if (ch->n_challenges == 0 || ch->n_challenges > l->a->cfg->nattestors) {
        anchor_err_set(err, "server sent %zu challenges for %zu attestors", ch->n_challenges,
                       l->a->cfg->nattestors);
        return -1;
    }
    if (peer == NULL || !peer->has_exporter) {
        anchor_err_set(err, "the TLS connection has no channel binding");
        return -1;
    }
    for (size_t i = 0; i < ch->n_challenges; i++) {
        const Anchor__Agent__V1__Challenge *c = ch->challenges[i];
        size_t k = l->a->cfg->nattestors;
        size_t len = 0;

        for (size_t j = 0; j < l->a->cfg->nattestors; j++) {
            if (strcmp(l->a->cfg->attestors[j].type, c->type) == 0)
                k = j;
        }
        if (k == l->a->cfg->nattestors) {
            anchor_err_set(err, "server challenged an attestor the agent did not offer");
            goto out;
        }
        if (c->nonce.len != ANCHOR_X509POP_NONCE_LEN) {
            anchor_err_set(err, "server nonce is %zu bytes, expected %d", c->nonce.len,
                           ANCHOR_X509POP_NONCE_LEN);
            goto out;
        }
        if (anchor_x509pop_credential_prove(l->cred[k], c->nonce.data, peer->exporter, &payload[n],
                                            &len, err) != 0)
            goto out;
        anchor__agent__v1__challenge_response__init(&resp[n]);
        resp[n].type = l->a->cfg->attestors[k].type;
        resp[n].payload.data = payload[n];
        resp[n].payload.len = len;
        presp[n] = &resp[n];
        n++;
    }
    proofs.n_responses = n;
    proofs.responses = presp;
    req.step_case = ANCHOR__AGENT__V1__LOGIN_REQUEST__STEP_PROOFS;
    req.proofs = &proofs;
    if (send_request(l, cc, &req, err) != 0 || anchor_rpc_client_call_close_send(cc, err) != 0)
        goto out;
    l->res.proof_sent = 1;
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(payload[i]);
    return rc;
}

/* Checks and keeps the result: the bundle first (it verifies the SVID). */
static int take_result(struct login *l, const Anchor__Agent__V1__LoginResult *r,
                       struct anchor_err *err)
{
    const struct anchor_agent_config *cfg = l->a->cfg;
    const Anchor__Agent__V1__Bundle *b = r->bundle;
    const Anchor__Agent__V1__X509SVID *s = r->svid;
    const uint8_t *der[64];
    size_t der_len[64];

    if (l->svid != NULL || !l->challenged) {
        anchor_err_set(err, "server sent a result %s", l->svid != NULL ? "twice" : "unchallenged");
        return -1;
    }
    if (s == NULL || b == NULL) {
        anchor_err_set(err, "server result lacks the SVID or the bundle");
        return -1;
    }
    if (b->trust_domain[0] != '\0' && strcmp(b->trust_domain, cfg->trust_domain) != 0) {
        anchor_err_set(err, "server bundle is for trust domain %s, not %s", b->trust_domain,
                       cfg->trust_domain);
        return -1;
    }
    if (b->n_roots == 0 || b->n_roots > 64 || s->n_cert_chain == 0 || s->n_cert_chain > 64) {
        anchor_err_set(err, "server result holds %zu roots and %zu SVID certificates", b->n_roots,
                       s->n_cert_chain);
        return -1;
    }
    for (size_t i = 0; i < b->n_roots; i++) {
        der[i] = b->roots[i].data;
        der_len[i] = b->roots[i].len;
    }
    if (agent_roots_from_der(&l->roots, der, der_len, b->n_roots, err) != 0)
        return -1;
    l->sequence = b->sequence;
    for (size_t i = 0; i < s->n_cert_chain; i++) {
        der[i] = s->cert_chain[i].data;
        der_len[i] = s->cert_chain[i].len;
    }
    return agent_svid_from_der(&l->svid, der, der_len, s->n_cert_chain, l->key, s->spiffe_id,
                               cfg->trust_domain, l->roots, err);
}

/* --- rpc callbacks ----------------------------------------------------------------- */

static void on_message(struct anchor_rpc_client_call *cc, const uint8_t *msg, size_t len)
{
    struct login *l = anchor_rpc_client_call_data(cc);
    Anchor__Agent__V1__LoginResponse *resp;
    struct anchor_err err;
    int rc = -1;

    if (l->ended)
        return;
    anchor_err_clear(&err);
    resp = anchor__agent__v1__login_response__unpack(NULL, len, msg);
    if (resp == NULL) {
        finish(l, 0, ANCHOR_RPC_INTERNAL, "server sent a malformed LoginResponse");
        return;
    }
    switch (resp->step_case) {
    case ANCHOR__AGENT__V1__LOGIN_RESPONSE__STEP_CHALLENGES:
        rc = answer(l, cc, resp->challenges, &err);
        break;
    case ANCHOR__AGENT__V1__LOGIN_RESPONSE__STEP_RESULT:
        rc = take_result(l, resp->result, &err);
        break;
    default:
        anchor_err_set(&err, "server sent an empty LoginResponse");
        break;
    }
    anchor__agent__v1__login_response__free_unpacked(resp, NULL);
    if (rc != 0)
        finish(l, 0, ANCHOR_RPC_INTERNAL, "%s", anchor_err_msg(&err));
}

static void on_status(struct anchor_rpc_client_call *cc, enum anchor_rpc_status status,
                      const char *message, const struct anchor_rpc_md *trailers, size_t n)
{
    struct login *l = anchor_rpc_client_call_data(cc);

    (void)trailers;
    (void)n;
    if (l->ended)
        return;
    if (status != ANCHOR_RPC_OK) {
        if (status == ANCHOR_RPC_UNAVAILABLE && l->a->tls_check.reason[0] != '\0')
            finish(l, 0, status, "%s", l->a->tls_check.reason);
        else
            finish(l, 0, status, "%s",
                   message[0] != '\0' ? message : anchor_rpc_status_name(status));
        return;
    }
    if (l->svid == NULL) {
        finish(l, 0, ANCHOR_RPC_INTERNAL, "server ended the Login without a result");
        return;
    }
    finish(l, 1, ANCHOR_RPC_OK, "%s", "");
}

static void on_connect(struct anchor_rpc_client *client)
{
    static const struct anchor_rpc_client_call_cbs cbs = {NULL, on_message, on_status};
    struct login *l = anchor_rpc_client_data(client);
    struct anchor_rpc_client_call *cc = NULL;
    struct anchor_err err;

    anchor_err_clear(&err);
    if (anchor_rpc_client_call_start(&cc, client, LOGIN_PATH, NULL, 0, LOGIN_TIMEOUT_MS, &cbs, l,
                                     &err) != 0) {
        finish(l, 0, ANCHOR_RPC_UNAVAILABLE, "%s", anchor_err_msg(&err));
        return;
    }
    if (send_start(l, cc, &err) != 0) {
        /* The call ends with the connection, freed in on_done. */
        finish(l, 0, ANCHOR_RPC_INTERNAL, "%s", anchor_err_msg(&err));
        return;
    }
}

static void on_close(struct anchor_rpc_client *client, const char *why)
{
    struct login *l = anchor_rpc_client_data(client);

    if (l->a->tls_check.reason[0] != '\0')
        finish(l, 0, ANCHOR_RPC_UNAVAILABLE, "%s", l->a->tls_check.reason);
    else
        finish(l, 0, ANCHOR_RPC_UNAVAILABLE, "cannot reach the server at %s: %s",
               l->a->cfg->server_address, why != NULL ? why : "connection closed");
}

/* --- start ------------------------------------------------------------------------- */

/* Loads each attestor's credential from its files, as they are now. */
static int load_credentials(struct login *l, struct anchor_err *err)
{
    const struct anchor_agent_config *cfg = l->a->cfg;

    if (cfg->nattestors > MAX_ATTESTORS) {
        anchor_err_set(err, "too many attestors");
        return -1;
    }
    for (size_t i = 0; i < cfg->nattestors; i++) {
        const struct anchor_agent_attestor *at = &cfg->attestors[i];

        if (anchor_x509pop_credential_load(&l->cred[i], at->certificate_path,
                                           at->intermediates_path, at->private_key_path,
                                           err) != 0) {
            anchor_err_prefix(err, "x509pop credential");
            return -1;
        }
    }
    return 0;
}

int login_start(struct agent *a, int *credential_failed, struct anchor_err *err)
{
    struct login *l = calloc(1, sizeof(*l));
    struct anchor_rpc_client_opts opts = {0};
    const char *sni = NULL;

    if (l == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    l->a = a;
    l->done = evtimer_new(a->base, on_done, l);
    if (l->done == NULL) {
        anchor_err_set(err, "out of memory");
        goto fail;
    }
    *credential_failed = 0;
    if (load_credentials(l, err) != 0) {
        *credential_failed = 1;
        goto fail;
    }
    if (agent_svid_key_new(&l->key, &l->spki, &l->spki_len, err) != 0)
        goto fail;
    if (agent_tls_ctx_new(&l->ctx, &a->tls_check, a->cfg->trust_domain, a->bootstrap_roots,
                          a->roots, NULL, err) != 0)
        goto fail;
    opts.on_connect = on_connect;
    opts.on_close = on_close;
    /* SNI only for names: RFC 6066 3 forbids literal addresses. */
    if (strspn(a->cfg->server_host, "0123456789.") != strlen(a->cfg->server_host) &&
        strchr(a->cfg->server_host, ':') == NULL)
        sni = a->cfg->server_host;
    if (anchor_rpc_client_connect_tls(&l->client, a->base, a->cfg->server_host, a->cfg->server_port,
                                      l->ctx, sni, &opts, err) != 0)
        goto fail;
    anchor_rpc_client_set_data(l->client, l);
    a->login = l;
    return 0;
fail:
    login_free(l);
    return -1;
}

void login_cancel(struct agent *a)
{
    struct login *l = a->login;

    if (l == NULL)
        return;
    a->login = NULL;
    l->ended = 1;
    login_free(l);
}
