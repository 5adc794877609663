/*
 * The agent's optional HTTP endpoint on metrics-address: GET /metrics
 * (Prometheus text, docs/logs-and-metrics.md), /health/live (the process
 * runs) and /health/ready (it holds an SVID that has not expired). Served by
 * libevent's evhttp on the agent's loop.
 */
#include "agent.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                  const char *body, size_t len)
{
    struct evbuffer *buf = evbuffer_new();

    if (buf == NULL) {
        evhttp_send_error(req, 500, "Internal Server Error");
        return;
    }
    (void)evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    (void)evbuffer_add(buf, body, len);
    evhttp_send_reply(req, code, reason, buf);
    evbuffer_free(buf);
}

static int is_get(struct evhttp_request *req)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
        return 1;
    evhttp_send_error(req, 405, "Method Not Allowed");
    return 0;
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    struct agent *a = arg;
    struct anchor_err err;
    char *text = NULL;
    size_t len = 0;

    if (!is_get(req))
        return;
    if (anchor_metrics_render(a->metrics, &text, &len, &err) != 0) {
        evhttp_send_error(req, 500, "Internal Server Error");
        return;
    }
    reply(req, 200, "OK", ANCHOR_METRICS_CONTENT_TYPE, text, len);
    free(text);
}

static void on_live(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (is_get(req))
        reply(req, 200, "OK", "text/plain", "ok\n", 3);
}

static void on_ready(struct evhttp_request *req, void *arg)
{
    struct agent *a = arg;

    if (!is_get(req))
        return;
    if (a->svid != NULL && time(NULL) < a->svid->not_after)
        reply(req, 200, "OK", "text/plain", "ok\n", 3);
    else
        reply(req, 503, "Service Unavailable", "text/plain", "no valid SVID\n", 14);
}

int agent_metrics_http_start(struct agent *a, struct anchor_err *err)
{
    a->http = evhttp_new(a->base);
    if (a->http == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    if (evhttp_set_cb(a->http, "/metrics", on_metrics, a) != 0 ||
        evhttp_set_cb(a->http, "/health/live", on_live, a) != 0 ||
        evhttp_set_cb(a->http, "/health/ready", on_ready, a) != 0) {
        anchor_err_set(err, "cannot set up the metrics endpoint");
        return -1;
    }
    if (evhttp_bind_socket_with_handle(a->http, a->cfg->metrics_host, a->cfg->metrics_port) ==
        NULL) {
        anchor_err_set(err, "metrics-address %s: cannot listen", a->cfg->metrics_address);
        return -1;
    }
    return 0;
}

void agent_metrics_http_stop(struct agent *a)
{
    if (a->http != NULL)
        evhttp_free(a->http);
    a->http = NULL;
}
