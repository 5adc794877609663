/*
 * Agent SVIDs: the key request, the signature (SPIFFE X509-SVID profile,
 * done by the CA module), and the proto views that carry the result to the
 * agent without copying the certificates again.
 */
#include "issue.h"

#include <stdlib.h>
#include <string.h>

int server_key_request_parse(struct anchor_svid_request **out, const ProtobufCBinaryData *pk,
                             const ProtobufCBinaryData *csr, struct anchor_err *err)
{
    if ((pk->len == 0) == (csr->len == 0)) {
        anchor_err_set(err, "exactly one of public_key and csr must be set");
        return -1;
    }
    if (pk->len != 0)
        return anchor_svid_request_parse_spki(out, pk->data, pk->len, err);
    return anchor_svid_request_parse_csr(out, csr->data, csr->len, err);
}

int server_svid_issue(struct server_ctx *ctx, struct server_svid *out,
                      const struct anchor_spiffeid *id, const struct anchor_svid_request *req,
                      struct anchor_err *err)
{
    struct anchor_svid_options opt = {.ttl = ctx->cfg.agent_svid_ttl};

    memset(out, 0, sizeof(*out));
    if (anchor_ca_issue_svid(&out->der, &out->der_len, &out->meta, ctx->ca, id, req, &opt, err) !=
        0)
        return -1;
    out->n_chain = 1 + ctx->chain_der.n;
    out->chain = calloc(out->n_chain, sizeof(*out->chain));
    if (out->chain == NULL) {
        server_svid_cleanup(out);
        anchor_err_set(err, "out of memory");
        return -1;
    }
    out->chain[0].data = out->der;
    out->chain[0].len = out->der_len;
    for (size_t i = 0; i < ctx->chain_der.n; i++) {
        out->chain[1 + i].data = ctx->chain_der.der[i];
        out->chain[1 + i].len = ctx->chain_der.len[i];
    }
    anchor_series_inc(ctx->m.svid_issued);
    return 0;
}

void server_svid_cleanup(struct server_svid *s)
{
    OPENSSL_free(s->der);
    free(s->chain);
    memset(s, 0, sizeof(*s));
}

void server_svid_msg(Anchor__Agent__V1__X509SVID *msg, const struct server_svid *s,
                     const char *spiffe_id)
{
    anchor__agent__v1__x509_svid__init(msg);
    msg->spiffe_id = (char *)spiffe_id;
    msg->n_cert_chain = s->n_chain;
    msg->cert_chain = s->chain;
    msg->expires_at = (int64_t)s->meta.not_after;
    msg->issued_at = (int64_t)s->meta.not_before;
}

void server_bundle_msg(struct server_ctx *ctx, Anchor__Agent__V1__Bundle *msg,
                       ProtobufCBinaryData *roots)
{
    anchor__agent__v1__bundle__init(msg);
    msg->trust_domain = ctx->cfg.trust_domain;
    for (size_t i = 0; i < ctx->roots_der.n; i++) {
        roots[i].data = ctx->roots_der.der[i];
        roots[i].len = ctx->roots_der.len[i];
    }
    msg->n_roots = ctx->roots_der.n;
    msg->roots = roots;
    msg->sequence = anchor_bundle_sequence(ctx->bundle);
}

int server_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len, struct anchor_err *err)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n > 0 ? n : 1);

    if (buf == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    *len = protobuf_c_message_pack(msg, buf);
    *out = buf;
    return 0;
}
