/*
 * The agent API's TLS 1.3 context: the server's own certificate
 * (spiffe://<trust-domain>/server, signed by the trust domain's CA, with the
 * CA chain after it) and the client-certificate policy.
 *
 * Client certificates are requested but optional at the handshake: Login
 * runs before the agent has an SVID, while RenewSVID and FetchBundle require
 * one (renew.c checks it). A certificate that is presented must verify
 * against the trust domain's roots, or the handshake fails.
 *
 * Rotation: the listener keeps one SSL_CTX for its life and makes each
 * connection's SSL from it, so rotating means installing a new certificate
 * and key in that same context; connections already open keep theirs. A
 * timer does it when two thirds of the certificate's lifetime have passed.
 */
#include "server.h"

#include <event2/event.h>
#include <openssl/err.h>

static void drain_ossl(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    buf[0] = '\0';
    if (e != 0)
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

/* Installs a fresh server certificate in ctx->tls. */
static int install_cert(struct server_ctx *ctx, struct anchor_err *err)
{
    struct anchor_svid_options opt = {.ttl = ctx->cfg.server_cert_ttl};
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    char ossl[256];
    int rc = -1;

    if (anchor_ca_issue_server_cert(&cert, &key, ctx->ca, ctx->cfg.ca_key_type, &opt, err) != 0)
        return -1;
    if (SSL_CTX_use_certificate(ctx->tls, cert) != 1 ||
        SSL_CTX_use_PrivateKey(ctx->tls, key) != 1 ||
        SSL_CTX_set1_chain(ctx->tls, anchor_ca_get0_chain(ctx->ca)) != 1 ||
        SSL_CTX_check_private_key(ctx->tls) != 1) {
        drain_ossl(ossl, sizeof(ossl));
        anchor_err_set(err, "cannot install the server certificate: %s", ossl);
        goto out;
    }
    {
        const ASN1_TIME *na = X509_get0_notAfter(cert);
        struct tm tm;
        if (ASN1_TIME_to_tm(na, &tm) == 1)
            ctx->tls_not_after = timegm(&tm);
    }
    rc = 0;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

static void arm_rotation(struct server_ctx *ctx)
{
    time_t now = time(NULL);
    long life = ctx->cfg.server_cert_ttl;
    long wait = ctx->tls_not_after - now - life / 3;
    struct timeval tv;

    if (wait < 1)
        wait = 1;
    tv.tv_sec = wait;
    tv.tv_usec = 0;
    (void)evtimer_add(ctx->tls_rotate, &tv);
}

static void on_rotate(evutil_socket_t fd, short what, void *data)
{
    struct server_ctx *ctx = data;
    struct anchor_err err;

    (void)fd;
    (void)what;
    anchor_err_clear(&err);
    if (install_cert(ctx, &err) != 0) {
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR, "Server certificate rotation failed",
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)));
        /* Retry in a minute; the current certificate stays in use. */
        struct timeval tv = {60, 0};
        (void)evtimer_add(ctx->tls_rotate, &tv);
        return;
    }
    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_INFO, "Server certificate rotated",
                ANCHOR_LOG_INT("notAfter", (int64_t)ctx->tls_not_after));
    arm_rotation(ctx);
}

int server_tls_init(struct server_ctx *ctx, struct anchor_err *err)
{
    char ossl[256];

    ctx->tls = SSL_CTX_new(TLS_server_method());
    if (ctx->tls == NULL) {
        drain_ossl(ossl, sizeof(ossl));
        anchor_err_set(err, "cannot make the TLS context: %s", ossl);
        return -1;
    }
    (void)SSL_CTX_set_min_proto_version(ctx->tls, TLS1_3_VERSION);
    /* No session tickets: resumption would skip the client certificate
     * check that renewal relies on, and saves little here. */
    (void)SSL_CTX_set_num_tickets(ctx->tls, 0);
    SSL_CTX_set_session_cache_mode(ctx->tls, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set1_verify_cert_store(ctx->tls, ctx->trust_store) != 1) {
        drain_ossl(ossl, sizeof(ossl));
        anchor_err_set(err, "cannot set the client trust store: %s", ossl);
        return -1;
    }
    /* Request a certificate, do not require one (Login has none). */
    SSL_CTX_set_verify(ctx->tls, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_verify_depth(ctx->tls, 8);
    if (install_cert(ctx, err) != 0)
        return -1;
    ctx->tls_rotate = evtimer_new(ctx->base, on_rotate, ctx);
    if (ctx->tls_rotate == NULL) {
        anchor_err_set(err, "cannot make the rotation timer");
        return -1;
    }
    arm_rotation(ctx);
    return 0;
}

void server_tls_cleanup(struct server_ctx *ctx)
{
    if (ctx->tls_rotate != NULL)
        event_free(ctx->tls_rotate);
    ctx->tls_rotate = NULL;
    SSL_CTX_free(ctx->tls);
    ctx->tls = NULL;
}
