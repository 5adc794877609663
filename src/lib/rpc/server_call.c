/*
 * The handler's side of a server call: metadata and peer accessors, and the
 * response. A response is HEADERS, then DATA carrying the queued messages,
 * then trailers with grpc-status and grpc-message; or, when the call ends
 * before anything was sent, a single Trailers-Only HEADERS frame
 * (PROTOCOL-HTTP2 "Responses"). Messages wait in the call's send queue and
 * nghttp2 pulls them as flow control allows (the data provider below); the
 * trailers are submitted from the provider when the queue runs dry after
 * the status was decided.
 */
#include "rpc/internal.h"
#include "util/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAKE_NV(n, v, vl)                                                                          \
    (nghttp2_nv)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), strlen(n), (vl), NGHTTP2_NV_FLAG_NONE                      \
    }

int anchor__rpc_call_new(struct anchor_rpc_call **out, struct anchor__rpc_sconn *c,
                         int32_t stream_id)
{
    struct anchor_rpc_call *call = calloc(1, sizeof(*call));

    if (call == NULL)
        return -1;
    call->sendq = evbuffer_new();
    if (call->sendq == NULL) {
        free(call);
        return -1;
    }
    call->conn = c;
    call->stream_id = stream_id;
    anchor__rpc_reader_init(&call->reader, 0);
    *out = call;
    return 0;
}

void anchor__rpc_call_free(struct anchor_rpc_call *call)
{
    if (call == NULL)
        return;
    free(call->path);
    free(call->method_name);
    anchor__rpc_mdlist_cleanup(&call->req);
    anchor__rpc_mdlist_cleanup(&call->resp_headers);
    anchor__rpc_mdlist_cleanup(&call->trailers);
    anchor__rpc_call_release_reader(call);
    free(call->unary_msg);
    if (call->deadline_ev != NULL)
        event_free(call->deadline_ev);
    evbuffer_free(call->sendq);
    free(call->status_msg);
    free(call);
}

void anchor__rpc_call_release_reader(struct anchor_rpc_call *call)
{
    call->conn->recv_held -= anchor__rpc_reader_held(&call->reader);
    anchor__rpc_reader_cleanup(&call->reader);
}

void anchor__rpc_call_cancel(struct anchor_rpc_call *call, enum anchor_rpc_status why)
{
    if (call->handler_done)
        return;
    call->handler_done = 1;
    if (call->started && call->method->m.on_cancel != NULL)
        call->method->m.on_cancel(call, why);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct anchor_rpc_call *call = arg;

    (void)fd;
    (void)what;
    anchor__rpc_call_respond(call, 200, ANCHOR_RPC_DEADLINE_EXCEEDED, "deadline exceeded", 1);
    anchor__rpc_call_cancel(call, ANCHOR_RPC_DEADLINE_EXCEEDED);
}

int anchor__rpc_call_arm_deadline(struct anchor_rpc_call *call)
{
    uint64_t now = anchor__rpc_now_ms();
    uint64_t left = call->deadline_ms > now ? call->deadline_ms - now : 0;
    struct timeval tv;

    /* grpc-timeout reaches 11 000 years; a timer past a year is never
     * useful and might overflow the event loop's arithmetic. */
    if (left > 366ull * 24 * 3600 * 1000)
        return 0;

    call->deadline_ev = evtimer_new(call->conn->srv->base, deadline_cb, call);
    if (call->deadline_ev == NULL)
        return -1;
    tv.tv_sec = (time_t)(left / 1000);
    tv.tv_usec = (suseconds_t)((left % 1000) * 1000);
    return evtimer_add(call->deadline_ev, &tv);
}

/* --- the response on the wire --------------------------------------------- */

/* Moves n bytes of the send queue into buf, keeping track of where the
 * message being transmitted ends (head_left), so that dropping the queue
 * never cuts a message in half on the wire. */
static int take_queue(struct anchor_rpc_call *call, uint8_t *buf, size_t n)
{
    while (n > 0) {
        size_t take;
        if (call->head_left == 0) {
            uint8_t p[ANCHOR__RPC_PREFIX_LEN];
            if (evbuffer_copyout(call->sendq, p, sizeof(p)) != (ssize_t)sizeof(p))
                return -1;
            call->head_left =
                ANCHOR__RPC_PREFIX_LEN +
                (((size_t)p[1] << 24) | ((size_t)p[2] << 16) | ((size_t)p[3] << 8) | (size_t)p[4]);
        }
        take = n < call->head_left ? n : call->head_left;
        if (evbuffer_remove(call->sendq, buf, take) != (int)take)
            return -1;
        call->head_left -= take;
        buf += take;
        n -= take;
    }
    return 0;
}

/* Drops the queued messages, except the rest of one already on its way. */
static void drop_queue(struct anchor_rpc_call *call)
{
    size_t len = evbuffer_get_length(call->sendq);
    struct evbuffer *keep;

    if (len <= call->head_left)
        return;
    keep = evbuffer_new();
    /* Without memory, the cut message is the lesser evil. */
    if (keep == NULL || evbuffer_remove_buffer(call->sendq, keep, call->head_left) < 0) {
        (void)evbuffer_drain(call->sendq, len);
        call->head_left = 0;
        if (keep != NULL)
            evbuffer_free(keep);
        return;
    }
    evbuffer_free(call->sendq);
    call->sendq = keep;
}

static ssize_t read_queue(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
                          uint32_t *flags, nghttp2_data_source *source, void *arg)
{
    struct anchor_rpc_call *call = source->ptr;
    size_t n = evbuffer_get_length(call->sendq);
    nghttp2_nv *nva = NULL;
    char *pct = NULL;
    char status[8];
    size_t k = 0;
    int rv;

    (void)arg;
    if (n > length)
        n = length;
    if (n > 0 && take_queue(call, buf, n) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (evbuffer_get_length(call->sendq) > 0 || !call->final_queued)
        return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
    /* Queue empty and the status decided: the trailers end the stream. */
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    nva = calloc(call->trailers.n + 2, sizeof(*nva));
    if (nva == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    (void)snprintf(status, sizeof(status), "%d", call->status);
    nva[k++] = MAKE_NV("grpc-status", status, strlen(status));
    if (call->status_msg != NULL && call->status_msg[0] != '\0') {
        pct = anchor__rpc_pct_encode(call->status_msg);
        if (pct != NULL)
            nva[k++] = MAKE_NV("grpc-message", pct, strlen(pct));
    }
    for (size_t i = 0; i < call->trailers.n; i++)
        nva[k++] = MAKE_NV(call->trailers.items[i].name, call->trailers.items[i].value,
                           call->trailers.items[i].value_len);
    rv = nghttp2_submit_trailer(h2, stream_id, nva, k);
    free(nva);
    free(pct);
    return rv == 0 ? (ssize_t)n : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

/* Submits the response HEADERS. trailers_only: they carry the status and
 * end the stream. */
static int submit_headers(struct anchor_rpc_call *call, int http_status, int trailers_only)
{
    nghttp2_session *h2 = call->conn->io.h2;
    size_t cap = 4 + call->resp_headers.n + call->trailers.n;
    nghttp2_nv *nva = calloc(cap, sizeof(*nva));
    nghttp2_data_provider prd;
    char hs[8], st[8];
    char *pct = NULL;
    size_t k = 0;
    int rv;

    if (nva == NULL)
        return -1;
    (void)snprintf(hs, sizeof(hs), "%d", http_status);
    nva[k++] = MAKE_NV(":status", hs, strlen(hs));
    nva[k++] = MAKE_NV("content-type", "application/grpc", 16);
    for (size_t i = 0; i < call->resp_headers.n; i++)
        nva[k++] = MAKE_NV(call->resp_headers.items[i].name, call->resp_headers.items[i].value,
                           call->resp_headers.items[i].value_len);
    if (trailers_only) {
        (void)snprintf(st, sizeof(st), "%d", call->status);
        nva[k++] = MAKE_NV("grpc-status", st, strlen(st));
        if (call->status_msg != NULL && call->status_msg[0] != '\0') {
            pct = anchor__rpc_pct_encode(call->status_msg);
            if (pct != NULL)
                nva[k++] = MAKE_NV("grpc-message", pct, strlen(pct));
        }
        for (size_t i = 0; i < call->trailers.n; i++)
            nva[k++] = MAKE_NV(call->trailers.items[i].name, call->trailers.items[i].value,
                               call->trailers.items[i].value_len);
    }
    prd.source.ptr = call;
    prd.read_callback = read_queue;
    rv = nghttp2_submit_response(h2, call->stream_id, nva, k, trailers_only ? NULL : &prd);
    free(nva);
    free(pct);
    if (rv != 0)
        return -1;
    call->headers_sent = 1;
    return 0;
}

void anchor__rpc_call_respond(struct anchor_rpc_call *call, int http_status,
                              enum anchor_rpc_status status, const char *msg, int drop)
{
    if (call->final_queued)
        return;
    call->final_queued = 1;
    call->status = (int)status;
    call->status_msg = msg != NULL ? strdup(msg) : NULL;
    if (call->deadline_ev != NULL)
        evtimer_del(call->deadline_ev);
    if (drop)
        drop_queue(call);
    if (!call->headers_sent)
        (void)submit_headers(call, http_status, 1);
    else
        (void)nghttp2_session_resume_data(call->conn->io.h2, call->stream_id);
    anchor__rpc_io_schedule(&call->conn->io);
}

/* --- the handler's API ---------------------------------------------------- */

const char *anchor_rpc_call_path(const struct anchor_rpc_call *call)
{
    return call->path;
}

void *anchor_rpc_call_method_data(const struct anchor_rpc_call *call)
{
    return call->method->m.data;
}

void anchor_rpc_call_set_data(struct anchor_rpc_call *call, void *data)
{
    call->data = data;
}

void *anchor_rpc_call_data(const struct anchor_rpc_call *call)
{
    return call->data;
}

struct anchor_rpc_server *anchor_rpc_call_server(const struct anchor_rpc_call *call)
{
    return call->conn->srv;
}

const struct anchor_rpc_md *anchor_rpc_call_metadata(const struct anchor_rpc_call *call, size_t *n)
{
    *n = call->req.n;
    return call->req.items;
}

const char *anchor_rpc_call_header(const struct anchor_rpc_call *call, const char *name,
                                   size_t *len)
{
    const struct anchor_rpc_md *md = anchor_rpc_md_find(call->req.items, call->req.n, name);

    if (md == NULL)
        return NULL;
    if (len != NULL)
        *len = md->value_len;
    return md->value;
}

uint64_t anchor_rpc_call_deadline_ms(const struct anchor_rpc_call *call)
{
    return call->deadline_ms;
}

const struct anchor_rpc_peer *anchor_rpc_call_peer(const struct anchor_rpc_call *call)
{
    return &call->conn->peer;
}

static int add_md(struct anchor__rpc_mdlist *l, const char *name, const void *value,
                  size_t value_len, struct anchor_err *err)
{
    char *wire = NULL;
    size_t wire_len = 0;
    int rc = -1;

    ENSURE(name != NULL && anchor__rpc_md_name_ok(name), err, "invalid metadata name");
    wire = anchor__rpc_md_wire_value(name, value, value_len, &wire_len);
    ENSURE(wire != NULL, err, "invalid value for metadata %s", name);
    ENSURE(anchor__rpc_mdlist_add(l, name, strlen(name), wire, wire_len, 0) == 0, err,
           "out of memory");
    rc = 0;
out:
    free(wire);
    return rc;
}

int anchor_rpc_call_add_header(struct anchor_rpc_call *call, const char *name, const void *value,
                               size_t value_len, struct anchor_err *err)
{
    int rc = -1;

    ENSURE(!call->headers_sent && !call->handler_done, err, "response headers already sent");
    TRY(add_md(&call->resp_headers, name, value, value_len, err));
    rc = 0;
out:
    return rc;
}

int anchor_rpc_call_add_trailer(struct anchor_rpc_call *call, const char *name, const void *value,
                                size_t value_len, struct anchor_err *err)
{
    int rc = -1;

    ENSURE(!call->handler_done, err, "call already finished");
    TRY(add_md(&call->trailers, name, value, value_len, err));
    rc = 0;
out:
    return rc;
}

static int unary_response(const struct anchor_rpc_call *call)
{
    return call->method->m.kind == ANCHOR_RPC_UNARY ||
           call->method->m.kind == ANCHOR_RPC_CLIENT_STREAMING;
}

int anchor_rpc_call_send(struct anchor_rpc_call *call, const uint8_t *msg, size_t len,
                         struct anchor_err *err)
{
    const struct anchor_rpc_server_opts *o = &call->conn->srv->opts;
    size_t queued = evbuffer_get_length(call->sendq);
    uint8_t prefix[ANCHOR__RPC_PREFIX_LEN];
    int rc = -1;

    ENSURE(!call->handler_done && !call->final_queued, err, "call already finished");
    ENSURE(len <= o->max_send_message_size, err,
           "response message larger than max (%zu vs. %zu bytes)", len, o->max_send_message_size);
    ENSURE(!unary_response(call) || call->msgs_sent == 0, err,
           "a unary response carries exactly one message");
    /* One message is always accepted into an empty queue. */
    ENSURE(queued == 0 || queued + len + ANCHOR__RPC_PREFIX_LEN <= o->max_call_send_queue, err,
           "send queue full (%zu bytes waiting)", queued);
    if (!call->headers_sent)
        ENSURE(submit_headers(call, 200, 0) == 0, err, "cannot submit response headers");
    anchor__rpc_prefix(prefix, len);
    ENSURE(evbuffer_add(call->sendq, prefix, sizeof(prefix)) == 0 &&
               (len == 0 || evbuffer_add(call->sendq, msg, len) == 0),
           err, "out of memory");
    call->msgs_sent++;
    (void)nghttp2_session_resume_data(call->conn->io.h2, call->stream_id);
    anchor__rpc_io_schedule(&call->conn->io);
    rc = 0;
out:
    return rc;
}

size_t anchor_rpc_call_send_queued(const struct anchor_rpc_call *call)
{
    return evbuffer_get_length(call->sendq);
}

void anchor_rpc_call_finish(struct anchor_rpc_call *call, enum anchor_rpc_status status,
                            const char *message)
{
    if (call->handler_done)
        return;
    call->handler_done = 1;
    if (status == ANCHOR_RPC_OK && unary_response(call) && call->msgs_sent == 0) {
        status = ANCHOR_RPC_INTERNAL;
        message = "handler finished a unary call without a response message";
    }
    anchor__rpc_call_respond(call, 200, status, message, 0);
}
