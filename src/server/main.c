/*
 * anchor-server: the Trust Domain Server.
 *
 * main() reads the configuration, then brings the parts up in dependency
 * order on one libevent loop: logger, metrics, data directory, store, CA and
 * bundle, the AgentAttestation snapshot, the agent API (TLS 1.3, Login,
 * RenewSVID, FetchBundle), the metrics/health endpoint, and the teammate's
 * admin API and config watcher. SIGINT/SIGTERM stop it gracefully: the
 * listener closes, calls in flight get the rpc module's grace period, and the
 * parts are torn down in reverse order.
 */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

/* Largest Login/Renew message: evidence is at most 1 MiB, a key or CSR at
 * most 64 KiB; anything bigger is refused before it is buffered. */
#define SERVER_MAX_RECV_MESSAGE ((size_t)2 * 1024 * 1024)

int server_der_from_stack(struct server_der *out, STACK_OF(X509) * certs, struct anchor_err *err)
{
    int n = certs != NULL ? sk_X509_num(certs) : 0;

    memset(out, 0, sizeof(*out));
    if (n == 0)
        return 0;
    out->der = calloc((size_t)n, sizeof(*out->der));
    out->len = calloc((size_t)n, sizeof(*out->len));
    if (out->der == NULL || out->len == NULL) {
        anchor_err_set(err, "out of memory");
        server_der_cleanup(out);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        unsigned char *der = NULL;
        int len = i2d_X509(sk_X509_value(certs, i), &der);
        if (len <= 0) {
            anchor_err_set(err, "cannot encode a CA certificate");
            server_der_cleanup(out);
            return -1;
        }
        out->der[i] = der;
        out->len[i] = (size_t)len;
        out->n++;
    }
    return 0;
}

void server_der_cleanup(struct server_der *d)
{
    for (size_t i = 0; d->der != NULL && i < d->n; i++)
        OPENSSL_free(d->der[i]);
    free(d->der);
    free(d->len);
    memset(d, 0, sizeof(*d));
}

static int make_data_dir(const char *dir, struct anchor_err *err)
{
    struct stat st;

    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            anchor_err_set(err, "data-dir %s is not a directory", dir);
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT || mkdir(dir, 0700) != 0) {
        anchor_err_set(err, "cannot create data-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int open_ca(struct server_ctx *ctx, struct anchor_err *err)
{
    struct anchor_ca_options opt = {
        .trust_domain = ctx->cfg.trust_domain,
        .key_type = ctx->cfg.ca_key_type,
        .root_ttl = ctx->cfg.ca_root_ttl,
    };

    if (ctx->cfg.ca_upstream_cert != NULL) {
        opt.upstream_cert_path = ctx->cfg.ca_upstream_cert;
        opt.upstream_key_path = ctx->cfg.ca_upstream_key;
        opt.upstream_bundle_path = ctx->cfg.ca_upstream_bundle;
    } else {
        opt.dir = ctx->cfg.data_dir;
    }
    if (anchor_ca_open(&ctx->ca, &opt, err) != 0)
        return -1;
    if (anchor_bundle_from_ca(&ctx->bundle, ctx->ca, 1, 0, err) != 0 ||
        anchor_bundle_store_new(&ctx->trust_store, ctx->bundle, err) != 0 ||
        server_der_from_stack(&ctx->roots_der, anchor_bundle_get0_roots(ctx->bundle), err) != 0 ||
        server_der_from_stack(&ctx->chain_der, anchor_ca_get0_chain(ctx->ca), err) != 0)
        return -1;
    return 0;
}

static int start_agent_api(struct server_ctx *ctx, struct anchor_err *err)
{
    struct anchor_rpc_server_opts opts;
    char *host = NULL;
    uint16_t port = 0;
    int rc = -1;

    anchor_rpc_server_opts_init(&opts);
    opts.max_recv_message_size = SERVER_MAX_RECV_MESSAGE;
    if (anchor_rpc_server_new(&ctx->rpc, ctx->base, &opts, err) != 0)
        return -1;
    anchor_rpc_server_set_data(ctx->rpc, ctx);
    if (server_login_register(ctx, err) != 0 || server_renew_register(ctx, err) != 0)
        return -1;
    if (server_split_hostport(ctx->cfg.listen_address, &host, &port, err) != 0)
        return -1;
    if (anchor_rpc_server_listen_tls(ctx->rpc, host, port, ctx->tls, &ctx->listen_port, err) != 0) {
        anchor_err_prefix(err, "listen-address");
        goto out;
    }
    rc = 0;
out:
    free(host);
    return rc;
}

static void on_rpc_drained(struct anchor_rpc_server *srv)
{
    struct server_ctx *ctx = anchor_rpc_server_data(srv);

    event_base_loopexit(ctx->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *data)
{
    struct server_ctx *ctx = data;

    (void)what;
    if (ctx->stopping) {
        /* A second signal: stop now. */
        event_base_loopbreak(ctx->base);
        return;
    }
    ctx->stopping = 1;
    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_INFO, "Stopping", ANCHOR_LOG_STR("signal", strsignal(sig)));
    if (ctx->watch != NULL && server_config_watch_stop != NULL)
        server_config_watch_stop(ctx);
    server_login_cleanup(ctx);
    if (ctx->rpc != NULL)
        anchor_rpc_server_shutdown(ctx->rpc, on_rpc_drained);
    else
        event_base_loopexit(ctx->base, NULL);
}

static int start(struct server_ctx *ctx, struct anchor_err *err)
{
    if (server_metrics_init(ctx, err) != 0)
        return -1;
    if (make_data_dir(ctx->cfg.data_dir, err) != 0)
        return -1;
    if (anchor_store_open(&ctx->store, ctx->cfg.datastore, err) != 0)
        return -1;
    if (open_ca(ctx, err) != 0)
        return -1;
    if (server_snapshot_load(ctx, err) != 0)
        return -1;
    ctx->base = event_base_new();
    if (ctx->base == NULL) {
        anchor_err_set(err, "cannot make the event loop");
        return -1;
    }
    if (server_tls_init(ctx, err) != 0 || start_agent_api(ctx, err) != 0)
        return -1;
    if (server_http_start(ctx, err) != 0)
        return -1;
    if (server_config_watch_start != NULL && server_config_watch_start(ctx, err) != 0)
        return -1;
    if (server_admin_start != NULL && server_admin_start(ctx, err) != 0)
        return -1;
    ctx->sigint = evsignal_new(ctx->base, SIGINT, on_signal, ctx);
    ctx->sigterm = evsignal_new(ctx->base, SIGTERM, on_signal, ctx);
    if (ctx->sigint == NULL || ctx->sigterm == NULL || evsignal_add(ctx->sigint, NULL) != 0 ||
        evsignal_add(ctx->sigterm, NULL) != 0) {
        anchor_err_set(err, "cannot install signal handlers");
        return -1;
    }
    ctx->ready = 1;
    ANCHOR_LOGF(
        ctx->log, ANCHOR_LOG_INFO, "Server started",
        ANCHOR_LOG_STR("trustDomain", ctx->cfg.trust_domain),
        ANCHOR_LOG_STR("clusterId", ctx->cfg.cluster_id),
        ANCHOR_LOG_STR("listenAddress", ctx->cfg.listen_address),
        ANCHOR_LOG_INT("port", ctx->listen_port), ANCHOR_LOG_INT("metricsPort", ctx->metrics_port),
        ANCHOR_LOG_STR("caMode", anchor_ca_is_upstream(ctx->ca) ? "upstream" : "self-signed"));
    return 0;
}

static void stop(struct server_ctx *ctx)
{
    if (ctx->watch != NULL && server_config_watch_stop != NULL)
        server_config_watch_stop(ctx);
    if (ctx->admin != NULL && server_admin_stop != NULL)
        server_admin_stop(ctx);
    server_login_cleanup(ctx);
    anchor_rpc_server_free(ctx->rpc);
    ctx->rpc = NULL;
    server_http_stop(ctx);
    server_tls_cleanup(ctx);
    if (ctx->sigint != NULL)
        event_free(ctx->sigint);
    if (ctx->sigterm != NULL)
        event_free(ctx->sigterm);
    if (ctx->base != NULL) {
        /* Let libevent finish TLS bufferevents before the base goes. */
        (void)event_base_loop(ctx->base, EVLOOP_NONBLOCK);
        event_base_free(ctx->base);
    }
    server_snapshot_swap(ctx, NULL, 0);
    server_der_cleanup(&ctx->roots_der);
    server_der_cleanup(&ctx->chain_der);
    X509_STORE_free(ctx->trust_store);
    anchor_bundle_free(ctx->bundle);
    anchor_ca_free(ctx->ca);
    anchor_store_free(ctx->store);
    anchor_metrics_free(ctx->metrics);
}

int main(int argc, char **argv)
{
    struct server_ctx ctx;
    struct anchor_err err;
    int exit_now = 0;
    int status = 1;

    memset(&ctx, 0, sizeof(ctx));
    anchor_err_clear(&err);
    (void)signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&ctx.snapshot_mu, NULL);
    if (server_config_load(&ctx.cfg, argc, argv, &exit_now, &err) != 0) {
        (void)fprintf(stderr, "anchor-server: %s\n", anchor_err_msg(&err));
        server_config_cleanup(&ctx.cfg);
        return 2;
    }
    if (exit_now) {
        server_config_cleanup(&ctx.cfg);
        return 0;
    }
    if (anchor_log_new_fp(&ctx.log, stderr, ctx.cfg.log_format, ctx.cfg.log_level, &err) != 0) {
        (void)fprintf(stderr, "anchor-server: %s\n", anchor_err_msg(&err));
        server_config_cleanup(&ctx.cfg);
        return 1;
    }
    if (start(&ctx, &err) != 0) {
        ANCHOR_LOGF(ctx.log, ANCHOR_LOG_ERROR, "Server failed to start",
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)));
        goto out;
    }
    if (event_base_dispatch(ctx.base) < 0) {
        ANCHOR_LOGF(ctx.log, ANCHOR_LOG_ERROR, "Event loop failed",
                    ANCHOR_LOG_STR("error", strerror(errno)));
        goto out;
    }
    ANCHOR_LOGF(ctx.log, ANCHOR_LOG_INFO, "Server stopped",
                ANCHOR_LOG_STR("clusterId", ctx.cfg.cluster_id));
    status = 0;
out:
    ctx.ready = 0;
    stop(&ctx);
    anchor_log_free(ctx.log);
    server_config_cleanup(&ctx.cfg);
    pthread_mutex_destroy(&ctx.snapshot_mu);
    return status;
}
