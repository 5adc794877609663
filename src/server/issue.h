/*
 * Agent SVID issuance shared by Login (login.c) and RenewSVID (renew.c):
 * reading the key the agent asks to have certified, signing its X.509 SVID,
 * and filling the proto messages that carry an SVID and the bundle.
 */
#ifndef ANCHOR_SERVER_ISSUE_H
#define ANCHOR_SERVER_ISSUE_H

#include "server.h"

#include "agent.pb-c.h"

/* One signed agent SVID. */
struct server_svid {
    uint8_t *der; /* OPENSSL_free */
    size_t der_len;
    struct anchor_svid_meta meta;
    /* cert_chain of the proto message: the SVID then ctx->chain_der */
    ProtobufCBinaryData *chain;
    size_t n_chain;
};

/* Reads the key to certify: exactly one of public_key (SPKI DER) and csr
 * (PKCS#10 DER) must be non-empty. The caller frees *out. */
int server_key_request_parse(struct anchor_svid_request **out, const ProtobufCBinaryData *pk,
                             const ProtobufCBinaryData *csr, struct anchor_err *err);

/* Signs an agent SVID for id and req with cfg.agent_svid_ttl and counts it
 * in anchor_svid_issued_total. Free with server_svid_cleanup. */
int server_svid_issue(struct server_ctx *ctx, struct server_svid *out,
                      const struct anchor_spiffeid *id, const struct anchor_svid_request *req,
                      struct anchor_err *err);
void server_svid_cleanup(struct server_svid *s);

/* Fills msg with views into s and id (borrowed; valid while both live). */
void server_svid_msg(Anchor__Agent__V1__X509SVID *msg, const struct server_svid *s,
                     const char *spiffe_id);

/* Fills msg with views into ctx's bundle; roots must have room for
 * ctx->roots_der.n entries. */
void server_bundle_msg(struct server_ctx *ctx, Anchor__Agent__V1__Bundle *msg,
                       ProtobufCBinaryData *roots);

/* Packs a message into a new buffer (free()). */
int server_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len, struct anchor_err *err);

#endif
