/*
 * The agent's TLS client context. The server is authenticated the SPIFFE
 * way: its chain must verify to the trust bundle (the bootstrap bundle from
 * trust-bundle-path and the bundle the server last returned), and its
 * certificate's one URI SAN must be exactly spiffe://<trust-domain>/server.
 * Host names play no part. For renewals the agent presents its SVID.
 */
#include "agent.h"

#include "anchor/ca.h"
#include "anchor/spiffeid.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

static void set_reason(struct agent_tls_check *chk, const char *what, const char *detail)
{
    /* A message for the log: cutting a long detail is acceptable. */
    if (snprintf(chk->reason, sizeof(chk->reason), "%s: %s", what, detail) < 0)
        chk->reason[0] = '\0';
}

/* OpenSSL's verification callback: keeps its verdict on the chain, then at
 * the leaf (depth 0, checked last) requires the server's SPIFFE ID. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct agent_tls_check *chk = ssl != NULL ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
    struct anchor_spiffeid *id = NULL;
    struct anchor_err err;
    int match;

    if (chk == NULL)
        return 0;
    if (!ok) {
        set_reason(chk, "server certificate verification failed",
                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)));
        return 0;
    }
    if (X509_STORE_CTX_get_error_depth(xs) != 0)
        return 1;
    if (anchor_svid_get_spiffeid(&id, X509_STORE_CTX_get_current_cert(xs), &err) != 0) {
        set_reason(chk, "server certificate is not an SVID", anchor_err_msg(&err));
        return 0;
    }
    match = strcmp(anchor_spiffeid_str(id), chk->expected) == 0;
    if (!match) {
        char got[ANCHOR_SPIFFEID_MAX_LEN + 64];

        (void)snprintf(got, sizeof(got), "%s, expected %s", anchor_spiffeid_str(id), chk->expected);
        set_reason(chk, "server presented SPIFFE ID", got);
    }
    anchor_spiffeid_free(id);
    return match;
}

static int add_roots(X509_STORE *store, STACK_OF(X509) * roots)
{
    for (int i = 0; i < sk_X509_num(roots); i++) {
        /* The same root in both bundles is not an error. */
        if (X509_STORE_add_cert(store, sk_X509_value(roots, i)) != 1) {
            unsigned long e = ERR_peek_last_error();

            if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE)
                return -1;
            ERR_clear_error();
        }
    }
    return 0;
}

int agent_tls_ctx_new(SSL_CTX **out, struct agent_tls_check *chk, const char *trust_domain,
                      STACK_OF(X509) * bootstrap, STACK_OF(X509) * current,
                      const struct agent_svid *client_svid, struct anchor_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    (void)snprintf(chk->expected, sizeof(chk->expected), "spiffe://%s/server", trust_domain);
    chk->reason[0] = '\0';
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        add_roots(SSL_CTX_get_cert_store(ctx), bootstrap) != 0 ||
        add_roots(SSL_CTX_get_cert_store(ctx), current) != 0) {
        anchor_err_set(err, "cannot build the TLS client context");
        goto fail;
    }
    SSL_CTX_set_app_data(ctx, chk);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
    if (client_svid != NULL) {
        if (SSL_CTX_use_certificate(ctx, sk_X509_value(client_svid->chain, 0)) != 1 ||
            SSL_CTX_use_PrivateKey(ctx, client_svid->key) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            anchor_err_set(err, "cannot use the SVID as the client certificate");
            goto fail;
        }
        for (int i = 1; i < sk_X509_num(client_svid->chain); i++) {
            if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(client_svid->chain, i)) != 1) {
                anchor_err_set(err, "cannot use the SVID chain as the client certificate");
                goto fail;
            }
        }
    }
    ERR_clear_error();
    *out = ctx;
    return 0;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return -1;
}
