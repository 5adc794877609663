/*
 * The server's plain HTTP endpoint on metrics-address: Prometheus text on
 * /metrics (docs/logs-and-metrics.md), /health/live (the process answers)
 * and /health/ready (the CA, the store and the agent listener are up). Also
 * the metric families the server registers, in the order they render.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

int server_metrics_init(struct server_ctx *ctx, struct anchor_err *err)
{
    static const char *const proof_labels[] = {"attestor_type", "outcome"};
    static const char *const result_label[] = {"result"};
    static const double buckets[] = ANCHOR_METRICS_DEFAULT_BUCKETS;
    static const char *const success[] = {"success"};
    static const char *const failed[] = {"failed"};
    struct anchor_metric *proof = NULL;
    struct anchor_metric *svid = NULL;
    struct anchor_metric *conn = NULL;
    struct anchor_series *unused = NULL;
    const char *ps[] = {ANCHOR_X509POP_TYPE, "success"};
    const char *pf[] = {ANCHOR_X509POP_TYPE, "failed"};

    if (anchor_metrics_new(&ctx->metrics, err) != 0)
        return -1;
    if (anchor_metrics_counter(ctx->metrics, "anchor_attestation_agent_proof_total",
                               "Agent proofs checked, by attestor type and outcome.", proof_labels,
                               2, &proof, err) != 0 ||
        anchor_metric_series(proof, ps, 2, &ctx->m.proof_success, err) != 0 ||
        anchor_metric_series(proof, pf, 2, &ctx->m.proof_failed, err) != 0)
        return -1;
    if (anchor_metrics_counter(ctx->metrics, "anchor_login_total", "Agent logins, by result.",
                               result_label, 1, &ctx->m.login_total, err) != 0 ||
        anchor_metric_series(ctx->m.login_total, success, 1, &unused, err) != 0 ||
        anchor_metric_series(ctx->m.login_total, failed, 1, &unused, err) != 0)
        return -1;
    if (anchor_metrics_counter(ctx->metrics, "anchor_svid_issued_total",
                               "Agent X.509 SVIDs signed (logins and renewals).", NULL, 0, &svid,
                               err) != 0 ||
        anchor_metric_series(svid, NULL, 0, &ctx->m.svid_issued, err) != 0)
        return -1;
    if (anchor_metrics_histogram(ctx->metrics, "anchor_login_duration_seconds",
                                 "Time from the start of a Login to its answer.", result_label, 1,
                                 buckets, sizeof(buckets) / sizeof(buckets[0]),
                                 &ctx->m.login_duration, err) != 0)
        return -1;
    if (anchor_metrics_gauge(ctx->metrics, "anchor_connected_agents",
                             "Agents not banned whose SVID has not expired (read from the store).",
                             NULL, 0, &conn, err) != 0 ||
        anchor_metric_series(conn, NULL, 0, &ctx->m.connected_agents, err) != 0)
        return -1;
    return 0;
}

void server_metrics_login(struct server_ctx *ctx, const char *result, double seconds)
{
    struct anchor_series *s = NULL;
    struct anchor_err err;
    const char *v[] = {result};

    anchor_err_clear(&err);
    if (anchor_metric_series(ctx->m.login_total, v, 1, &s, &err) == 0)
        anchor_series_inc(s);
    if (anchor_metric_series(ctx->m.login_duration, v, 1, &s, &err) == 0)
        anchor_series_observe(s, seconds);
}

/* anchor_connected_agents: agents that are not banned and hold an SVID that
 * has not expired, counted from the store when /metrics is read (so the
 * gauge survives restarts and counts logins made through other replicas). */
static void refresh_connected(struct server_ctx *ctx)
{
    struct anchor_store_agent_list *page = NULL;
    struct anchor_err err;
    char after[ANCHOR_STORE_MAX_ID_BYTES + 1] = "";
    int64_t now = (int64_t)time(NULL);
    uint64_t n = 0;

    anchor_err_clear(&err);
    /* At most 100 pages of ANCHOR_STORE_MAX_LIST agents. */
    for (int i = 0; i < 100; i++) {
        if (anchor_store_agent_list(ctx->store, after[0] != '\0' ? after : NULL, 0, &page, &err) !=
            0)
            return;
        for (size_t j = 0; j < page->n; j++) {
            if (!page->v[j].banned && page->v[j].svid_expires_at > now)
                n++;
        }
        if (page->n == 0) {
            anchor_store_agent_list_free(page);
            break;
        }
        (void)snprintf(after, sizeof(after), "%s", page->v[page->n - 1].spiffe_id);
        anchor_store_agent_list_free(page);
        page = NULL;
    }
    ctx->connected_agents = n;
    anchor_series_set(ctx->m.connected_agents, (double)n);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                       const char *body, size_t len)
{
    struct evbuffer *buf = evbuffer_new();

    if (buf == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    (void)evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    (void)evbuffer_add(buf, body, len);
    evhttp_send_reply(req, code, reason, buf);
    evbuffer_free(buf);
}

static void on_request(struct evhttp_request *req, void *data)
{
    struct server_ctx *ctx = data;
    const char *uri = evhttp_request_get_uri(req);
    struct evhttp_uri *parsed = NULL;
    const char *path = NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_send_error(req, 405, NULL);
        return;
    }
    parsed = uri != NULL ? evhttp_uri_parse(uri) : NULL;
    path = parsed != NULL ? evhttp_uri_get_path(parsed) : NULL;
    if (path == NULL) {
        evhttp_send_error(req, 400, NULL);
    } else if (strcmp(path, "/metrics") == 0) {
        char *text = NULL;
        size_t len = 0;
        struct anchor_err err;
        anchor_err_clear(&err);
        refresh_connected(ctx);
        if (anchor_metrics_render(ctx->metrics, &text, &len, &err) != 0) {
            evhttp_send_error(req, 500, NULL);
        } else {
            reply_text(req, 200, "OK", ANCHOR_METRICS_CONTENT_TYPE, text, len);
            free(text);
        }
    } else if (strcmp(path, "/health/live") == 0) {
        reply_text(req, 200, "OK", "text/plain", "ok\n", 3);
    } else if (strcmp(path, "/health/ready") == 0) {
        if (ctx->ready && !ctx->stopping)
            reply_text(req, 200, "OK", "text/plain", "ready\n", 6);
        else
            reply_text(req, 503, "Service Unavailable", "text/plain", "not ready\n", 10);
    } else {
        evhttp_send_error(req, 404, NULL);
    }
    if (parsed != NULL)
        evhttp_uri_free(parsed);
}

int server_http_start(struct server_ctx *ctx, struct anchor_err *err)
{
    struct evhttp_bound_socket *bs;
    char *host = NULL;
    uint16_t port = 0;

    if (ctx->cfg.metrics_address[0] == '\0' || strcmp(ctx->cfg.metrics_address, "off") == 0)
        return 0;
    if (server_split_hostport(ctx->cfg.metrics_address, &host, &port, err) != 0)
        return -1;
    ctx->http = evhttp_new(ctx->base);
    if (ctx->http == NULL) {
        free(host);
        anchor_err_set(err, "cannot make the metrics HTTP server");
        return -1;
    }
    evhttp_set_gencb(ctx->http, on_request, ctx);
    evhttp_set_timeout(ctx->http, 10);
    evhttp_set_max_headers_size(ctx->http, 8192);
    evhttp_set_max_body_size(ctx->http, 4096);
    bs = evhttp_bind_socket_with_handle(ctx->http, host != NULL ? host : "0.0.0.0", port);
    if (bs == NULL) {
        anchor_err_set(err, "metrics-address: cannot listen on %s", ctx->cfg.metrics_address);
        free(host);
        return -1;
    }
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        memset(&ss, 0, sizeof(ss));
        evutil_socket_t fd = evhttp_bound_socket_get_fd(bs);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET)
                ctx->metrics_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                ctx->metrics_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    free(host);
    return 0;
}

void server_http_stop(struct server_ctx *ctx)
{
    if (ctx->http != NULL)
        evhttp_free(ctx->http);
    ctx->http = NULL;
}
