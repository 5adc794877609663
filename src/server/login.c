/*
 * Login: the agent API's bidirectional stream that attests an agent and
 * gives it its first X.509 SVID (proto/agent.proto, issue 4).
 *
 *   WAIT_START   LoginStart: cluster id, evidence per attestor, SVID key.
 *                The snapshot is taken here and kept to the end. The
 *                policies whose required attestors were all provided are
 *                tried in document order (login_attest.c); the first whose
 *                attestors all accept the evidence authorizes the agent,
 *                and one challenge per attestor goes back.
 *   WAIT_PROOFS  LoginProofs: each proof is checked against its nonce (used
 *                once, whatever the outcome) and the connection's RFC 9266
 *                exporter; then the agent's SPIFFE ID is rendered, a banned
 *                agent refused, the agent recorded and its SVID signed.
 *
 * Every way out goes through login_fail() or login_succeed(), which finish
 * the call, count the outcome and free the state, so a nonce never outlives
 * its stream. A timer bounds the whole exchange (login-timeout).
 *
 * The messages an operator or an agent sees are the documented ones
 * (docs/troubleshooting.md, docs/server.md), word for word.
 */
#include "login.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#define LOGIN_PATH "/anchor.agent.v1.AgentAPI/Login"

/* --- lifetime ---------------------------------------------------------------- */

static double elapsed(const struct server_login *l)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - l->t0.tv_sec) + (double)(now.tv_nsec - l->t0.tv_nsec) / 1e9;
}

static void login_free(struct server_login *l)
{
    struct server_ctx *ctx = l->ctx;

    if (ctx->logins == l)
        ctx->logins = l->next;
    if (l->prev != NULL)
        l->prev->next = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
    ctx->n_logins--;
    if (l->timer != NULL)
        event_free(l->timer);
    login_drop_attestors(l);
    OPENSSL_cleanse(l->exporter, sizeof(l->exporter));
    anchor_svid_request_free(l->req);
    anchor_policy_doc_free(l->snap);
    free(l);
}

/* Ends the login with a non-OK status: the agent gets agent_msg. */
static void login_fail(struct server_login *l, enum anchor_rpc_status status, const char *agent_msg)
{
    server_metrics_login(l->ctx, "failed", elapsed(l));
    anchor_rpc_call_finish(l->call, status, agent_msg);
    login_free(l);
}

static void internal_error(struct server_login *l, const char *what, const struct anchor_err *err)
{
    ANCHOR_LOGF(l->ctx->log, ANCHOR_LOG_ERROR, "Login failed: internal error",
                ANCHOR_LOG_STR("step", what), ANCHOR_LOG_STR("error", anchor_err_msg(err)),
                ANCHOR_LOG_STR("peer", l->peer));
    login_fail(l, ANCHOR_RPC_INTERNAL, "internal error");
}

static void on_timeout(evutil_socket_t fd, short what, void *data)
{
    struct server_login *l = data;

    (void)fd;
    (void)what;
    /* The state (and its nonces) goes with the call: a late proof, on this
     * stream or any other, finds nothing to answer. */
    ANCHOR_LOGF(l->ctx->log, ANCHOR_LOG_WARN, "Login timed out",
                ANCHOR_LOG_INT("timeoutMs", l->ctx->cfg.login_timeout_ms),
                ANCHOR_LOG_STR("peer", l->peer));
    login_fail(l, ANCHOR_RPC_DEADLINE_EXCEEDED, "login timed out");
}

/* --- step 1: LoginStart -------------------------------------------------------- */

static void send_challenges(struct server_login *l)
{
    Anchor__Agent__V1__Challenge ch[MAX_ATTESTORS];
    Anchor__Agent__V1__Challenge *chp[MAX_ATTESTORS];
    Anchor__Agent__V1__LoginChallenges chs = ANCHOR__AGENT__V1__LOGIN_CHALLENGES__INIT;
    Anchor__Agent__V1__LoginResponse resp = ANCHOR__AGENT__V1__LOGIN_RESPONSE__INIT;
    struct anchor_err err;
    uint8_t *buf = NULL;
    size_t len = 0;

    anchor_err_clear(&err);
    for (size_t i = 0; i < l->n_att; i++) {
        anchor__agent__v1__challenge__init(&ch[i]);
        ch[i].type = (char *)l->att[i].type;
        ch[i].nonce.data = l->att[i].nonce;
        ch[i].nonce.len = sizeof(l->att[i].nonce);
        chp[i] = &ch[i];
    }
    chs.n_challenges = l->n_att;
    chs.challenges = chp;
    resp.step_case = ANCHOR__AGENT__V1__LOGIN_RESPONSE__STEP_CHALLENGES;
    resp.challenges = &chs;
    if (server_pack(&resp.base, &buf, &len, &err) != 0 ||
        anchor_rpc_call_send(l->call, buf, len, &err) != 0) {
        free(buf);
        internal_error(l, "send challenges", &err);
        return;
    }
    free(buf);
    l->state = WAIT_PROOFS;
}

static void on_start(struct server_login *l, const Anchor__Agent__V1__LoginStart *st)
{
    struct server_ctx *ctx = l->ctx;
    const char *provided[MAX_ATTESTORS];
    size_t n = st->n_attestation_data;
    struct anchor_err err;

    anchor_err_clear(&err);
    if (n > MAX_ATTESTORS) {
        login_fail(l, ANCHOR_RPC_INVALID_ARGUMENT, "too many attestors");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        provided[i] = st->attestation_data[i]->type;
        if (!login_type_ok(provided[i])) {
            login_fail(l, ANCHOR_RPC_INVALID_ARGUMENT, "invalid attestor type");
            return;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(provided[i], provided[j]) == 0) {
                login_fail(l, ANCHOR_RPC_INVALID_ARGUMENT, "attestor type given twice");
                return;
            }
        }
    }
    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_INFO, "Login started with multi-attestation support",
                ANCHOR_LOG_STRS("providedMethods", provided, n), ANCHOR_LOG_STR("peer", l->peer));

    if (strcmp(st->cluster_id, ctx->cfg.cluster_id) != 0) {
        char msg[ANCHOR_STORE_MAX_NAME_BYTES * 2 + 96];
        (void)snprintf(msg, sizeof(msg),
                       "cluster id \"%.*s\" does not match this server's cluster \"%s\"",
                       ANCHOR_STORE_MAX_NAME_BYTES, st->cluster_id, ctx->cfg.cluster_id);
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR, "Login refused: wrong cluster id",
                    ANCHOR_LOG_STR("clusterId", st->cluster_id),
                    ANCHOR_LOG_STR("expected", ctx->cfg.cluster_id),
                    ANCHOR_LOG_STR("peer", l->peer));
        login_fail(l, ANCHOR_RPC_INVALID_ARGUMENT, msg);
        return;
    }
    if (server_key_request_parse(&l->req, &st->public_key, &st->csr, &err) != 0) {
        char msg[ANCHOR_ERR_MAX + 32];
        (void)snprintf(msg, sizeof(msg), "invalid SVID key: %s", anchor_err_msg(&err));
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR, "Login refused: invalid SVID key",
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)), ANCHOR_LOG_STR("peer", l->peer));
        login_fail(l, ANCHOR_RPC_INVALID_ARGUMENT, msg);
        return;
    }

    /* The snapshot is held from here to the end of this login. */
    l->snap = server_snapshot_get(ctx);
    switch (login_match_policy(l, st, provided, n, &err)) {
    case LOGIN_MATCHED:
        break;
    case LOGIN_NO_POLICY:
        login_fail(l, ANCHOR_RPC_PERMISSION_DENIED, LOGIN_MSG_NO_POLICY);
        return;
    case LOGIN_REJECTED:
        login_fail(l, ANCHOR_RPC_PERMISSION_DENIED, LOGIN_MSG_REJECTED);
        return;
    case LOGIN_MATCH_ERROR:
        internal_error(l, "policy", &err);
        return;
    }
    for (size_t i = 0; i < l->n_att; i++) {
        if (anchor_x509pop_nonce(l->att[i].nonce, &err) != 0) {
            internal_error(l, "nonce", &err);
            return;
        }
        l->att[i].nonce_live = 1;
    }
    send_challenges(l);
}

/* --- step 2: LoginProofs ------------------------------------------------------- */

static void login_succeed(struct server_login *l, const struct anchor_spiffeid *id,
                          const struct server_svid *svid, char **formatted, size_t n_formatted)
{
    Anchor__Agent__V1__X509SVID svid_msg;
    Anchor__Agent__V1__Bundle bundle_msg;
    ProtobufCBinaryData roots[ANCHOR_BUNDLE_MAX_ROOTS];
    Anchor__Agent__V1__LoginResult result = ANCHOR__AGENT__V1__LOGIN_RESULT__INIT;
    Anchor__Agent__V1__LoginResponse resp = ANCHOR__AGENT__V1__LOGIN_RESPONSE__INIT;
    struct anchor_err err;
    uint8_t *buf = NULL;
    size_t len = 0;

    anchor_err_clear(&err);
    server_svid_msg(&svid_msg, svid, anchor_spiffeid_str(id));
    server_bundle_msg(l->ctx, &bundle_msg, roots);
    result.svid = &svid_msg;
    result.bundle = &bundle_msg;
    result.n_attributes = n_formatted;
    result.attributes = formatted;
    resp.step_case = ANCHOR__AGENT__V1__LOGIN_RESPONSE__STEP_RESULT;
    resp.result = &result;
    if (server_pack(&resp.base, &buf, &len, &err) != 0 ||
        anchor_rpc_call_send(l->call, buf, len, &err) != 0) {
        free(buf);
        internal_error(l, "send result", &err);
        return;
    }
    free(buf);
    server_metrics_login(l->ctx, "success", elapsed(l));
    anchor_rpc_call_finish(l->call, ANCHOR_RPC_OK, NULL);
    ANCHOR_LOGF(l->ctx->log, ANCHOR_LOG_INFO, "Connected to agent",
                ANCHOR_LOG_STR("spiffeId", anchor_spiffeid_str(id)),
                ANCHOR_LOG_STR("svidSerial", svid->meta.serial),
                ANCHOR_LOG_INT("svidExpiresAt", (int64_t)svid->meta.not_after),
                ANCHOR_LOG_STR("peer", l->peer));
    login_free(l);
}

static void on_proofs(struct server_login *l, const Anchor__Agent__V1__LoginProofs *pr)
{
    struct server_ctx *ctx = l->ctx;
    struct anchor_attrs attrs;
    char **formatted = NULL;
    size_t n_formatted = 0;
    struct anchor_spiffeid *id = NULL;
    struct anchor_store_agent *rec = NULL;
    struct server_svid svid;
    const char *types[MAX_ATTESTORS];
    struct anchor_err err;

    anchor_err_clear(&err);
    anchor_attrs_init(&attrs);
    memset(&svid, 0, sizeof(svid));
    if (login_check_proofs(l, pr) != 0) {
        login_fail(l, ANCHOR_RPC_PERMISSION_DENIED, LOGIN_MSG_BAD_PROOF);
        goto out;
    }
    if (login_collect_attrs(l, &attrs, &formatted, &n_formatted, &err) != 0) {
        internal_error(l, "attributes", &err);
        goto out;
    }
    ANCHOR_LOGF(
        ctx->log, ANCHOR_LOG_INFO, "Authorization received and verified",
        ANCHOR_LOG_STRS("agentAttestationAttributes", (const char *const *)formatted, n_formatted),
        ANCHOR_LOG_STR("policy", anchor_policy_name(l->policy)), ANCHOR_LOG_STR("peer", l->peer));
    if (login_agent_id(l, &attrs, &id, &err) != 0) {
        char msg[ANCHOR_ERR_MAX + 48];
        (void)snprintf(msg, sizeof(msg), "cannot make the agent's SPIFFE ID: %s",
                       anchor_err_msg(&err));
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR, "Login failed: cannot make the agent's SPIFFE ID",
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)),
                    ANCHOR_LOG_STR("policy", anchor_policy_name(l->policy)),
                    ANCHOR_LOG_STR("peer", l->peer));
        login_fail(l, ANCHOR_RPC_PERMISSION_DENIED, msg);
        goto out;
    }
    if (anchor_store_agent_get(ctx->store, anchor_spiffeid_str(id), &rec, &err) != 0) {
        internal_error(l, "store", &err);
        goto out;
    }
    if (rec != NULL && rec->banned) {
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR, "Login refused: agent is banned",
                    ANCHOR_LOG_STR("spiffeId", anchor_spiffeid_str(id)),
                    ANCHOR_LOG_STR("peer", l->peer));
        login_fail(l, ANCHOR_RPC_PERMISSION_DENIED, "agent is banned");
        goto out;
    }
    if (server_svid_issue(ctx, &svid, id, l->req, &err) != 0) {
        internal_error(l, "issue SVID", &err);
        goto out;
    }
    for (size_t i = 0; i < l->n_att; i++)
        types[i] = l->att[i].type;
    {
        struct anchor_store_login rec_in = {
            .spiffe_id = anchor_spiffeid_str(id),
            .attestor_types = types,
            .n_attestor_types = l->n_att,
            .attrs = attrs.v,
            .n_attrs = attrs.n,
            .svid_serial = svid.meta.serial,
            .svid_expires_at = (int64_t)svid.meta.not_after,
            .now = (int64_t)time(NULL),
        };
        if (anchor_store_agent_upsert(ctx->store, &rec_in, &err) != 0) {
            internal_error(l, "store", &err);
            goto out;
        }
    }
    login_succeed(l, id, &svid, formatted, n_formatted);
out:
    server_svid_cleanup(&svid);
    anchor_store_agent_free(rec);
    anchor_spiffeid_free(id);
    for (size_t i = 0; i < n_formatted; i++)
        free(formatted[i]);
    free(formatted);
    anchor_attrs_cleanup(&attrs);
}

/* --- rpc callbacks ------------------------------------------------------------ */

static void on_call(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct server_ctx *ctx = anchor_rpc_call_method_data(call);
    const struct anchor_rpc_peer *peer = anchor_rpc_call_peer(call);
    struct server_login *l;
    struct timeval tv;

    (void)msg;
    (void)len;
    if (ctx->stopping) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_UNAVAILABLE, "server is stopping");
        return;
    }
    if (ctx->n_logins >= MAX_LOGINS_IN_FLIGHT) {
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_WARN, "Login refused: too many logins in flight",
                    ANCHOR_LOG_INT("inFlight", (int64_t)ctx->n_logins),
                    ANCHOR_LOG_STR("peer", peer->addr));
        anchor_rpc_call_finish(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, "too many logins in flight");
        return;
    }
    if (!peer->has_exporter) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_FAILED_PRECONDITION, "Login requires TLS");
        return;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    l->ctx = ctx;
    l->call = call;
    l->state = WAIT_START;
    clock_gettime(CLOCK_MONOTONIC, &l->t0);
    (void)snprintf(l->peer, sizeof(l->peer), "%s", peer->addr);
    memcpy(l->exporter, peer->exporter, sizeof(l->exporter));
    l->next = ctx->logins;
    if (ctx->logins != NULL)
        ctx->logins->prev = l;
    ctx->logins = l;
    ctx->n_logins++;
    anchor_rpc_call_set_data(call, l);
    l->timer = evtimer_new(ctx->base, on_timeout, l);
    tv.tv_sec = ctx->cfg.login_timeout_ms / 1000;
    tv.tv_usec = (ctx->cfg.login_timeout_ms % 1000) * 1000;
    if (l->timer == NULL || evtimer_add(l->timer, &tv) != 0) {
        struct anchor_err err;
        anchor_err_set(&err, "cannot arm the login timer");
        internal_error(l, "timer", &err);
    }
}

static void on_message(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct server_login *l = anchor_rpc_call_data(call);
    Anchor__Agent__V1__LoginRequest *req;

    req = anchor__agent__v1__login_request__unpack(NULL, len, msg);
    if (req == NULL) {
        ANCHOR_LOGF(l->ctx->log, ANCHOR_LOG_ERROR, "Login refused: malformed message",
                    ANCHOR_LOG_STR("peer", l->peer));
        login_fail(l, ANCHOR_RPC_INVALID_ARGUMENT, "malformed LoginRequest");
        return;
    }
    if (l->state == WAIT_START && req->step_case == ANCHOR__AGENT__V1__LOGIN_REQUEST__STEP_START) {
        on_start(l, req->start);
    } else if (l->state == WAIT_PROOFS &&
               req->step_case == ANCHOR__AGENT__V1__LOGIN_REQUEST__STEP_PROOFS) {
        on_proofs(l, req->proofs);
    } else {
        ANCHOR_LOGF(l->ctx->log, ANCHOR_LOG_ERROR, "Login refused: unexpected message",
                    ANCHOR_LOG_STR("expected", l->state == WAIT_START ? "start" : "proofs"),
                    ANCHOR_LOG_STR("peer", l->peer));
        login_fail(l, ANCHOR_RPC_INVALID_ARGUMENT,
                   l->state == WAIT_START ? "expected LoginStart" : "expected LoginProofs");
    }
    anchor__agent__v1__login_request__free_unpacked(req, NULL);
}

static void on_half_close(struct anchor_rpc_call *call)
{
    struct server_login *l = anchor_rpc_call_data(call);

    /* Every state still waits for a message the agent can no longer send. */
    login_fail(l, ANCHOR_RPC_INVALID_ARGUMENT, "login stream closed before the login completed");
}

static void on_cancel(struct anchor_rpc_call *call, enum anchor_rpc_status why)
{
    struct server_login *l = anchor_rpc_call_data(call);

    if (l == NULL)
        return;
    ANCHOR_LOGF(l->ctx->log, ANCHOR_LOG_WARN, "Login abandoned",
                ANCHOR_LOG_STR("reason", anchor_rpc_status_name((int)why)),
                ANCHOR_LOG_STR("peer", l->peer));
    server_metrics_login(l->ctx, "failed", elapsed(l));
    login_free(l);
}

int server_login_register(struct server_ctx *ctx, struct anchor_err *err)
{
    struct anchor_rpc_method m = {
        .path = LOGIN_PATH,
        .kind = ANCHOR_RPC_BIDI_STREAMING,
        .on_call = on_call,
        .on_message = on_message,
        .on_half_close = on_half_close,
        .on_cancel = on_cancel,
        .data = ctx,
    };
    return anchor_rpc_server_register(ctx->rpc, &m, err);
}

void server_login_cleanup(struct server_ctx *ctx)
{
    /* Bounded by the number of logins in flight. login_free unlinks each
     * login from ctx->logins before freeing it (the analyzer assumes the
     * opaque anchor_rpc_call_finish could have changed the list head). */
    while (ctx->logins != NULL)
        login_fail(ctx->logins, ANCHOR_RPC_UNAVAILABLE, /* NOLINT(clang-analyzer-unix.Malloc) */
                   "server is stopping");
}
