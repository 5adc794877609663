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
 * delivered from a separate loop turn, where the connection can be freed;
 * that shell, shared with renew.c, is exchange.c.
 */
#include "agent.h"
#include "exchange.h"

#include "agent.pb-c.h"
#include "anchor/rpc.h"
#include "anchor/x509pop.h"

#include <stdlib.h>
#include <string.h>

#define LOGIN_PATH       "/anchor.agent.v1.AgentAPI/Login"
#define LOGIN_TIMEOUT_MS 60000u
#define MAX_ATTESTORS    8

struct login {
    struct agent_exchange x; /* first: the exchange is the login */
    struct anchor_x509pop_credential *cred[MAX_ATTESTORS];
    int challenged;
};

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
    struct anchor_agent_config *cfg = l->x.a->cfg;
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
    start.public_key.data = l->x.spki;
    start.public_key.len = l->x.spki_len;
    req.step_case = ANCHOR__AGENT__V1__LOGIN_REQUEST__STEP_START;
    req.start = &start;
    ANCHOR_LOGF(l->x.a->log, ANCHOR_LOG_DEBUG, "Sending Login",
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
    const struct anchor_rpc_peer *peer = anchor_rpc_client_peer(l->x.client);
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
    if (ch->n_challenges == 0 || ch->n_challenges > l->x.a->cfg->nattestors) {
        anchor_err_set(err, "server sent %zu challenges for %zu attestors", ch->n_challenges,
                       l->x.a->cfg->nattestors);
        return -1;
    }
    if (peer == NULL || !peer->has_exporter) {
        anchor_err_set(err, "the TLS connection has no channel binding");
        return -1;
    }
    for (size_t i = 0; i < ch->n_challenges; i++) {
        const Anchor__Agent__V1__Challenge *c = ch->challenges[i];
        size_t k = l->x.a->cfg->nattestors;
        size_t len = 0;

        for (size_t j = 0; j < l->x.a->cfg->nattestors; j++) {
            if (strcmp(l->x.a->cfg->attestors[j].type, c->type) == 0)
                k = j;
        }
        if (k == l->x.a->cfg->nattestors) {
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
        resp[n].type = l->x.a->cfg->attestors[k].type;
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
    l->x.res.proof_sent = 1;
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
    const Anchor__Agent__V1__Bundle *b = r->bundle;
    const Anchor__Agent__V1__X509SVID *s = r->svid;

    if (l->x.svid != NULL || !l->challenged) {
        anchor_err_set(err, "server sent a result %s",
                       l->x.svid != NULL ? "twice" : "unchallenged");
        return -1;
    }
    if (s == NULL || b == NULL) {
        anchor_err_set(err, "server result lacks the SVID or the bundle");
        return -1;
    }
    if (agent_exchange_check_trust_domain(&l->x, b, err) != 0)
        return -1;
    if (b->n_roots == 0 || b->n_roots > EXCHANGE_MAX_CERTS || s->n_cert_chain == 0 ||
        s->n_cert_chain > EXCHANGE_MAX_CERTS) {
        anchor_err_set(err, "server result holds %zu roots and %zu SVID certificates", b->n_roots,
                       s->n_cert_chain);
        return -1;
    }
    if (agent_exchange_take_bundle(&l->x, b, err) != 0)
        return -1;
    return agent_exchange_take_svid(&l->x, s, l->x.roots, err);
}

/* --- rpc callbacks ----------------------------------------------------------------- */

static void on_message(struct anchor_rpc_client_call *cc, const uint8_t *msg, size_t len)
{
    struct login *l = anchor_rpc_client_call_data(cc);
    Anchor__Agent__V1__LoginResponse *resp;
    struct anchor_err err;
    int rc = -1;

    if (l->x.ended)
        return;
    anchor_err_clear(&err);
    resp = anchor__agent__v1__login_response__unpack(NULL, len, msg);
    if (resp == NULL) {
        agent_exchange_finish(&l->x, 0, ANCHOR_RPC_INTERNAL,
                              "server sent a malformed LoginResponse");
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
        agent_exchange_finish(&l->x, 0, ANCHOR_RPC_INTERNAL, "%s", anchor_err_msg(&err));
}

static void on_status(struct anchor_rpc_client_call *cc, enum anchor_rpc_status status,
                      const char *message, const struct anchor_rpc_md *trailers, size_t n)
{
    struct login *l = anchor_rpc_client_call_data(cc);

    (void)trailers;
    (void)n;
    agent_exchange_status(&l->x, status, message, "server ended the Login without a result");
}

/* Once connected: opens the stream and sends the start. */
static void on_connect(struct agent_exchange *x, struct anchor_rpc_client *client)
{
    static const struct anchor_rpc_client_call_cbs cbs = {NULL, on_message, on_status};
    struct login *l = (struct login *)x;
    struct anchor_rpc_client_call *cc = NULL;
    struct anchor_err err;

    anchor_err_clear(&err);
    if (anchor_rpc_client_call_start(&cc, client, LOGIN_PATH, NULL, 0, LOGIN_TIMEOUT_MS, &cbs, l,
                                     &err) != 0) {
        agent_exchange_finish(x, 0, ANCHOR_RPC_UNAVAILABLE, "%s", anchor_err_msg(&err));
        return;
    }
    if (send_start(l, cc, &err) != 0) {
        /* The call ends with the connection, freed in on_done. */
        agent_exchange_finish(x, 0, ANCHOR_RPC_INTERNAL, "%s", anchor_err_msg(&err));
        return;
    }
}

static void deliver(struct agent_exchange *x, struct agent_svid *svid, STACK_OF(X509) * roots)
{
    struct agent *a = x->a;

    a->login = NULL;
    agent_login_done(a, &x->res, svid, roots, x->sequence);
}

static void cleanup(struct agent_exchange *x)
{
    struct login *l = (struct login *)x;

    for (size_t i = 0; i < MAX_ATTESTORS; i++)
        anchor_x509pop_credential_free(l->cred[i]);
}

static const struct agent_exchange_ops login_ops = {on_connect, deliver, cleanup};

/* --- start ------------------------------------------------------------------------- */

/* Loads each attestor's credential from its files, as they are now. */
static int load_credentials(struct login *l, struct anchor_err *err)
{
    const struct anchor_agent_config *cfg = l->x.a->cfg;

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
    struct agent_exchange *x = NULL;
    struct login *l;

    if (agent_exchange_new(&x, sizeof(*l), a, &login_ops, err) != 0)
        return -1;
    l = (struct login *)x;
    *credential_failed = 0;
    if (load_credentials(l, err) != 0) {
        *credential_failed = 1;
        goto fail;
    }
    if (agent_exchange_connect(x, NULL, err) != 0)
        goto fail;
    a->login = l;
    return 0;
fail:
    agent_exchange_free(x);
    return -1;
}

void login_cancel(struct agent *a)
{
    struct login *l = a->login;

    if (l == NULL)
        return;
    a->login = NULL;
    l->x.ended = 1;
    agent_exchange_free(&l->x);
}
