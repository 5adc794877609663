/*
 * RenewSVID and FetchBundle: the agent API's calls after Login, over mutual
 * TLS with the agent's X.509 SVID. The handshake already verified the
 * client chain against the trust domain's roots (tls.c); here the SVID's
 * SPIFFE ID must be in this trust domain and name an agent the store
 * recorded and did not ban.
 */
#include "issue.h"

#include <stdlib.h>
#include <string.h>

#define RENEW_PATH  "/anchor.agent.v1.AgentAPI/RenewSVID"
#define BUNDLE_PATH "/anchor.agent.v1.AgentAPI/FetchBundle"

/* Checks the caller: writes its ID and store record on success; on failure
 * the call is finished. */
static int authorize(struct server_ctx *ctx, struct anchor_rpc_call *call,
                     struct anchor_spiffeid **id_out, struct anchor_store_agent **rec_out)
{
    const struct anchor_rpc_peer *peer = anchor_rpc_call_peer(call);
    struct anchor_spiffeid *id = NULL;
    struct anchor_store_agent *rec = NULL;
    struct anchor_err err;

    anchor_err_clear(&err);
    if (peer->transport != ANCHOR_RPC_TRANSPORT_TLS || peer->chain == NULL ||
        sk_X509_num(peer->chain) < 1) {
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_WARN, "Agent call refused: no client certificate",
                    ANCHOR_LOG_STR("method", anchor_rpc_call_path(call)),
                    ANCHOR_LOG_STR("peer", peer->addr));
        anchor_rpc_call_finish(call, ANCHOR_RPC_UNAUTHENTICATED,
                               "a client certificate (the agent's X.509 SVID) is required");
        return -1;
    }
    if (anchor_svid_get_spiffeid(&id, sk_X509_value(peer->chain, 0), &err) != 0 ||
        !anchor_spiffeid_member_of(id, ctx->cfg.trust_domain)) {
        ANCHOR_LOGF(
            ctx->log, ANCHOR_LOG_WARN, "Agent call refused: not an SVID of this trust domain",
            ANCHOR_LOG_STR("error", anchor_err_msg(&err)), ANCHOR_LOG_STR("peer", peer->addr));
        anchor_spiffeid_free(id);
        anchor_rpc_call_finish(call, ANCHOR_RPC_UNAUTHENTICATED,
                               "the client certificate is not an X.509 SVID of this trust domain");
        return -1;
    }
    if (anchor_store_agent_get(ctx->store, anchor_spiffeid_str(id), &rec, &err) != 0) {
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR, "Agent call failed: store error",
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)));
        anchor_spiffeid_free(id);
        anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "internal error");
        return -1;
    }
    if (rec == NULL || rec->banned) {
        const char *why = rec == NULL ? "agent is not attested" : "agent is banned";
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR,
                    rec == NULL ? "Agent call refused: agent is not attested"
                                : "Agent call refused: agent is banned",
                    ANCHOR_LOG_STR("spiffeId", anchor_spiffeid_str(id)),
                    ANCHOR_LOG_STR("method", anchor_rpc_call_path(call)),
                    ANCHOR_LOG_STR("peer", peer->addr));
        anchor_store_agent_free(rec);
        anchor_spiffeid_free(id);
        anchor_rpc_call_finish(call, ANCHOR_RPC_PERMISSION_DENIED, why);
        return -1;
    }
    *id_out = id;
    *rec_out = rec;
    return 0;
}

static void send_and_finish(struct server_ctx *ctx, struct anchor_rpc_call *call,
                            const ProtobufCMessage *msg)
{
    struct anchor_err err;
    uint8_t *buf = NULL;
    size_t len = 0;

    anchor_err_clear(&err);
    if (server_pack(msg, &buf, &len, &err) != 0 ||
        anchor_rpc_call_send(call, buf, len, &err) != 0) {
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR, "Agent call failed: cannot send the answer",
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)));
        free(buf);
        anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "internal error");
        return;
    }
    free(buf);
    anchor_rpc_call_finish(call, ANCHOR_RPC_OK, NULL);
}

static void on_renew(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct server_ctx *ctx = anchor_rpc_call_method_data(call);
    Anchor__Agent__V1__RenewRequest *req = NULL;
    struct anchor_spiffeid *id = NULL;
    struct anchor_store_agent *rec = NULL;
    struct anchor_svid_request *key = NULL;
    struct server_svid svid;
    struct anchor_err err;
    Anchor__Agent__V1__X509SVID svid_msg;
    Anchor__Agent__V1__Bundle bundle_msg;
    ProtobufCBinaryData roots[ANCHOR_BUNDLE_MAX_ROOTS];
    Anchor__Agent__V1__RenewResponse resp = ANCHOR__AGENT__V1__RENEW_RESPONSE__INIT;

    anchor_err_clear(&err);
    memset(&svid, 0, sizeof(svid));
    if (authorize(ctx, call, &id, &rec) != 0)
        return;
    req = anchor__agent__v1__renew_request__unpack(NULL, len, msg);
    if (req == NULL) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_INVALID_ARGUMENT, "malformed RenewRequest");
        goto out;
    }
    if (server_key_request_parse(&key, &req->public_key, &req->csr, &err) != 0) {
        char m[ANCHOR_ERR_MAX + 32];
        (void)snprintf(m, sizeof(m), "invalid SVID key: %s", anchor_err_msg(&err));
        anchor_rpc_call_finish(call, ANCHOR_RPC_INVALID_ARGUMENT, m);
        goto out;
    }
    if (server_svid_issue(ctx, &svid, id, key, &err) != 0 ||
        anchor_store_agent_set_svid(ctx->store, anchor_spiffeid_str(id), svid.meta.serial,
                                    (int64_t)svid.meta.not_after, (int64_t)time(NULL), &err) != 0) {
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR, "Renewal failed: internal error",
                    ANCHOR_LOG_STR("spiffeId", anchor_spiffeid_str(id)),
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)));
        anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "internal error");
        goto out;
    }
    server_svid_msg(&svid_msg, &svid, anchor_spiffeid_str(id));
    server_bundle_msg(ctx, &bundle_msg, roots);
    resp.svid = &svid_msg;
    resp.bundle = &bundle_msg;
    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_INFO, "Renewed agent SVID",
                ANCHOR_LOG_STR("spiffeId", anchor_spiffeid_str(id)),
                ANCHOR_LOG_STR("svidSerial", svid.meta.serial),
                ANCHOR_LOG_INT("svidExpiresAt", (int64_t)svid.meta.not_after));
    send_and_finish(ctx, call, &resp.base);
out:
    server_svid_cleanup(&svid);
    anchor_svid_request_free(key);
    if (req != NULL)
        anchor__agent__v1__renew_request__free_unpacked(req, NULL);
    anchor_store_agent_free(rec);
    anchor_spiffeid_free(id);
}

static void on_bundle(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct server_ctx *ctx = anchor_rpc_call_method_data(call);
    struct anchor_spiffeid *id = NULL;
    struct anchor_store_agent *rec = NULL;
    Anchor__Agent__V1__FetchBundleRequest *req;
    Anchor__Agent__V1__Bundle bundle_msg;
    ProtobufCBinaryData roots[ANCHOR_BUNDLE_MAX_ROOTS];
    Anchor__Agent__V1__FetchBundleResponse resp = ANCHOR__AGENT__V1__FETCH_BUNDLE_RESPONSE__INIT;

    if (authorize(ctx, call, &id, &rec) != 0)
        return;
    req = anchor__agent__v1__fetch_bundle_request__unpack(NULL, len, msg);
    if (req == NULL) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_INVALID_ARGUMENT, "malformed FetchBundleRequest");
    } else {
        anchor__agent__v1__fetch_bundle_request__free_unpacked(req, NULL);
        server_bundle_msg(ctx, &bundle_msg, roots);
        resp.bundle = &bundle_msg;
        send_and_finish(ctx, call, &resp.base);
    }
    anchor_store_agent_free(rec);
    anchor_spiffeid_free(id);
}

int server_renew_register(struct server_ctx *ctx, struct anchor_err *err)
{
    struct anchor_rpc_method renew = {
        .path = RENEW_PATH,
        .kind = ANCHOR_RPC_UNARY,
        .on_call = on_renew,
        .data = ctx,
    };
    struct anchor_rpc_method bundle = {
        .path = BUNDLE_PATH,
        .kind = ANCHOR_RPC_UNARY,
        .on_call = on_bundle,
        .data = ctx,
    };

    if (anchor_rpc_server_register(ctx->rpc, &renew, err) != 0)
        return -1;
    return anchor_rpc_server_register(ctx->rpc, &bundle, err);
}
