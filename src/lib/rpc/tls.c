/*
 * TLS glue: what the gRPC transport itself requires of a TLS connection,
 * on top of the certificate, key and verification policy that the caller
 * configured. TLS 1.3 only; ALPN "h2" (RFC 9113 3.2, and gRPC clients insist
 * on it); after the handshake, the verified peer chain and the RFC 9266
 * tls-exporter channel binding, which x509pop signs so that a proof cannot
 * be relayed through another connection.
 */
#include "rpc/internal.h"
#include "util/check.h"

#include <string.h>

static const unsigned char alpn_h2[] = {2, 'h', '2'};

static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    /* in is a list of length-prefixed protocol names (RFC 7301 3.1). */
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int anchor__rpc_tls_server_ctx(SSL_CTX *ctx, struct anchor_err *err)
{
    int rc = -1;

    ENSURE_OSSL(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1, err,
                "cannot require TLS 1.3");
    SSL_CTX_set_alpn_select_cb(ctx, select_h2, NULL);
    rc = 0;
out:
    return rc;
}

int anchor__rpc_tls_client_ssl(SSL *ssl, const char *sni, struct anchor_err *err)
{
    int rc = -1;

    ENSURE_OSSL(SSL_set_min_proto_version(ssl, TLS1_3_VERSION) == 1, err, "cannot require TLS 1.3");
    /* SSL_set_alpn_protos returns 0 on success, unlike most of OpenSSL. */
    ENSURE_OSSL(SSL_set_alpn_protos(ssl, alpn_h2, sizeof(alpn_h2)) == 0, err, "cannot set ALPN");
    if (sni != NULL)
        ENSURE_OSSL(SSL_set_tlsext_host_name(ssl, sni) == 1, err, "cannot set SNI");
    rc = 0;
out:
    return rc;
}

int anchor__rpc_tls_peer(struct anchor_rpc_peer *peer, SSL *ssl, int is_server,
                         struct anchor_err *err)
{
    static const char label[] = "EXPORTER-Channel-Binding";
    const unsigned char *proto = NULL;
    unsigned int proto_len = 0;
    X509 *leaf;
    int rc = -1;

    SSL_get0_alpn_selected(ssl, &proto, &proto_len);
    /* A server selects h2 or refuses the handshake, so a client without
     * ALPN is the only case left there; it gets HTTP/2 anyway (prior
     * knowledge). A client insists on h2. */
    if (!is_server)
        ENSURE(proto_len == 2 && memcmp(proto, "h2", 2) == 0, err,
               "server did not negotiate HTTP/2 (ALPN h2)");
    ENSURE(SSL_version(ssl) >= TLS1_3_VERSION, err, "TLS 1.3 required");
    peer->ssl = ssl;
    peer->chain = NULL;
    leaf = SSL_get0_peer_certificate(ssl);
    /* Only a chain that verification accepted is handed to handlers. */
    if (leaf != NULL && SSL_get_verify_result(ssl) == X509_V_OK)
        peer->chain = SSL_get0_verified_chain(ssl);
    /* RFC 9266 section 2: 32 bytes, label EXPORTER-Channel-Binding, empty
     * context (in TLS 1.3 the same as no context). */
    ENSURE_OSSL(SSL_export_keying_material(ssl, peer->exporter, ANCHOR_RPC_EXPORTER_LEN, label,
                                           sizeof(label) - 1, NULL, 0, 0) == 1,
                err, "cannot export the TLS channel binding");
    peer->has_exporter = 1;
    rc = 0;
out:
    return rc;
}
