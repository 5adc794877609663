/*
 * One server connection: the nghttp2 server session and the dispatch of its
 * streams to calls. Request headers are checked in the order a gRPC server
 * is expected to (PROTOCOL-HTTP2 "Requests"): HTTP method POST (else 405),
 * content-type application/grpc[+...] (else 415), grpc-encoding identity
 * (else UNIMPLEMENTED), a well-formed grpc-timeout (else INTERNAL), a
 * registered path (else UNIMPLEMENTED). Failures before a handler is
 * involved are answered with a Trailers-Only response. Request messages are
 * framed by frame.c and handed over as they complete.
 *
 * Timers guard the connection: the handshake/first-request timer closes a
 * peer that does not complete its TLS handshake and first request headers
 * in time (slowloris), the idle timer sends GOAWAY when no stream has been
 * open for idle_timeout_ms.
 */
#include "rpc/internal.h"
#include "util/check.h"

#include <event2/bufferevent_ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ms_tv(struct timeval *tv, uint32_t ms)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

static struct anchor_rpc_call *stream_call(nghttp2_session *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2, id);
}

/* The library ends a call: the status goes out, the handler (if it was
 * given the call) learns through on_cancel. */
static void fail_call(struct anchor_rpc_call *call, enum anchor_rpc_status st, const char *msg)
{
    /* Nothing more is read on this call. */
    anchor__rpc_call_release_reader(call);
    anchor__rpc_call_respond(call, 200, st, msg, 1);
    anchor__rpc_call_cancel(call, st);
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame, void *arg)
{
    struct anchor__rpc_sconn *c = arg;
    struct anchor_rpc_call *call;

    if (c->closing || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (anchor__rpc_call_new(&call, c, frame->hd.stream_id) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    (void)nghttp2_session_set_stream_user_data(h2, frame->hd.stream_id, call);
    call->next = c->calls;
    if (c->calls != NULL)
        c->calls->prev = call;
    c->calls = call;
    c->n_calls++;
    evtimer_del(c->idle_ev);
    return 0;
}

static int content_type_ok(const uint8_t *v, size_t len)
{
    static const char ct[] = "application/grpc";
    size_t n = sizeof(ct) - 1;

    /* "application/grpc" alone or followed by "+<subtype>" or ";params". */
    return len >= n && memcmp(v, ct, n) == 0 && (len == n || v[n] == '+' || v[n] == ';');
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
    struct anchor__rpc_sconn *c = arg;
    struct anchor_rpc_call *call;
    char **slot = NULL;

    (void)flags;
    if (c->closing || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    call = stream_call(h2, frame->hd.stream_id);
    if (call == NULL || call->bad_header)
        return 0;
    /* RFC 9113 6.5.2: the size of a header list counts 32 bytes per field.
     * Past the limit the rest is decoded (HPACK state) but not kept. */
    if (call->req.bytes + namelen + valuelen + 32 > c->srv->opts.max_header_list_size) {
        call->bad_header = 1;
        return 0;
    }
    if (namelen > 0 && name[0] == ':') {
        if (namelen == 5 && memcmp(name, ":path", 5) == 0)
            slot = &call->path;
        else if (namelen == 7 && memcmp(name, ":method", 7) == 0)
            slot = &call->method_name;
        if (slot != NULL && *slot == NULL) {
            *slot = strndup((const char *)value, valuelen);
            if (*slot == NULL)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        call->req.bytes += namelen + valuelen + 32;
        return 0;
    }
    if (namelen == 12 && memcmp(name, "content-type", 12) == 0)
        call->content_type_ok = content_type_ok(value, valuelen);
    if (anchor__rpc_mdlist_add(&call->req, (const char *)name, namelen, (const char *)value,
                               valuelen, 1) != 0)
        call->bad_header = 2;
    return 0;
}

/* The request headers are complete: check them and start the call. */
static void dispatch(struct anchor__rpc_sconn *c, struct anchor_rpc_call *call)
{
    const struct anchor__rpc_method_entry *m;
    const char *v;
    size_t len;
    uint64_t ms;
    char msg[300];

    if (call->bad_header == 1) {
        anchor__rpc_call_respond(call, 200, ANCHOR_RPC_RESOURCE_EXHAUSTED,
                                 "request header list too large", 1);
        return;
    }
    if (call->bad_header == 2) {
        anchor__rpc_call_respond(call, 200, ANCHOR_RPC_INTERNAL, "malformed binary metadata", 1);
        return;
    }
    if (call->method_name == NULL || strcmp(call->method_name, "POST") != 0) {
        anchor__rpc_call_respond(call, 405, ANCHOR_RPC_INTERNAL, "gRPC requires method POST", 1);
        return;
    }
    if (!call->content_type_ok) {
        anchor__rpc_call_respond(call, 415, ANCHOR_RPC_INTERNAL,
                                 "invalid gRPC request content-type", 1);
        return;
    }
    v = anchor_rpc_call_header(call, "grpc-encoding", &len);
    if (v != NULL && strcmp(v, "identity") != 0) {
        (void)snprintf(msg, sizeof(msg), "grpc-encoding %.200s is not supported", v);
        anchor__rpc_call_respond(call, 200, ANCHOR_RPC_UNIMPLEMENTED, msg, 1);
        return;
    }
    v = anchor_rpc_call_header(call, "grpc-timeout", &len);
    if (v != NULL) {
        if (anchor__rpc_timeout_parse(v, len, &ms) != 0) {
            anchor__rpc_call_respond(call, 200, ANCHOR_RPC_INTERNAL, "malformed grpc-timeout", 1);
            return;
        }
        if (ms == 0) {
            anchor__rpc_call_respond(call, 200, ANCHOR_RPC_DEADLINE_EXCEEDED, "deadline exceeded",
                                     1);
            return;
        }
        call->deadline_ms = anchor__rpc_now_ms() + ms;
    }
    m = call->path != NULL ? anchor__rpc_server_find(c->srv, call->path) : NULL;
    if (m == NULL) {
        (void)snprintf(msg, sizeof(msg), "unknown method %.200s",
                       call->path != NULL ? call->path : "");
        anchor__rpc_call_respond(call, 200, ANCHOR_RPC_UNIMPLEMENTED, msg, 1);
        return;
    }
    call->method = m;
    anchor__rpc_reader_init(&call->reader, c->srv->opts.max_recv_message_size);
    if (call->deadline_ms != 0 && anchor__rpc_call_arm_deadline(call) != 0) {
        anchor__rpc_call_respond(call, 200, ANCHOR_RPC_RESOURCE_EXHAUSTED, "out of memory", 1);
        return;
    }
    if (m->m.kind == ANCHOR_RPC_CLIENT_STREAMING || m->m.kind == ANCHOR_RPC_BIDI_STREAMING) {
        call->started = 1;
        m->m.on_call(call, NULL, 0);
    }
}

static int unary_request(const struct anchor_rpc_call *call)
{
    return call->method->m.kind == ANCHOR_RPC_UNARY ||
           call->method->m.kind == ANCHOR_RPC_SERVER_STREAMING;
}

static void on_request_message(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    call->n_msgs++;
    if (unary_request(call)) {
        if (call->n_msgs > 1) {
            fail_call(call, ANCHOR_RPC_INTERNAL, "too many request messages for a unary request");
            return;
        }
        call->unary_msg = malloc(len + 1);
        if (call->unary_msg == NULL) {
            fail_call(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        memcpy(call->unary_msg, msg, len);
        call->unary_len = len;
        return;
    }
    if (call->method->m.on_message != NULL)
        call->method->m.on_message(call, msg, len);
}

/* The client ended its request stream. */
static void end_of_request(struct anchor_rpc_call *call)
{
    const struct anchor__rpc_method_entry *m = call->method;

    call->remote_closed = 1;
    if (call->handler_done || call->final_queued || m == NULL)
        return;
    if (!anchor__rpc_reader_idle(&call->reader)) {
        fail_call(call, ANCHOR_RPC_INTERNAL, "request ended inside a message");
        return;
    }
    if (unary_request(call)) {
        if (call->n_msgs != 1) {
            fail_call(call, ANCHOR_RPC_INTERNAL, "unary request without a message");
            return;
        }
        call->started = 1;
        m->m.on_call(call, call->unary_msg, call->unary_len);
        free(call->unary_msg);
        call->unary_msg = NULL;
        return;
    }
    if (m->m.on_half_close != NULL)
        m->m.on_half_close(call);
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *arg)
{
    struct anchor__rpc_sconn *c = arg;
    struct anchor_rpc_call *call;

    if (c->closing)
        return 0;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    call = stream_call(h2, frame->hd.stream_id);
    if (call == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (!c->got_request) {
            c->got_request = 1;
            evtimer_del(c->handshake_ev);
        }
        dispatch(c, call);
    }
    /* The handler may have finished the call inside dispatch; the stream
     * lives on until nghttp2 closes it, so call is still valid. */
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        end_of_request(call);
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *arg)
{
    struct anchor__rpc_sconn *c = arg;
    struct anchor_rpc_call *call;
    char msg[128];

    (void)flags;
    if (c->closing)
        return 0;
    call = stream_call(h2, stream_id);
    while (call != NULL && call->method != NULL && len > 0 && !call->handler_done &&
           !call->final_queued) {
        const uint8_t *m;
        size_t mlen, used = 0;
        size_t before = anchor__rpc_reader_held(&call->reader);
        enum anchor__rpc_read r =
            anchor__rpc_reader_feed(&call->reader, data, len, &used, &m, &mlen);
        data += used;
        len -= used;
        c->recv_held = c->recv_held - before + anchor__rpc_reader_held(&call->reader);
        if (c->recv_held > c->srv->opts.max_connection_recv_buffer) {
            fail_call(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, "connection receive buffer full");
            break;
        }
        switch (r) {
        case ANCHOR__RPC_READ_MORE:
            break;
        case ANCHOR__RPC_READ_MSG:
            on_request_message(call, m, mlen);
            continue;
        case ANCHOR__RPC_READ_TOO_LARGE:
            (void)snprintf(msg, sizeof(msg), "received message larger than max (%zu bytes)",
                           call->reader.max);
            fail_call(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, msg);
            break;
        case ANCHOR__RPC_READ_COMPRESSED:
            fail_call(call, ANCHOR_RPC_UNIMPLEMENTED, "compressed messages are not supported");
            break;
        case ANCHOR__RPC_READ_BAD_FLAG:
            fail_call(call, ANCHOR_RPC_INTERNAL, "invalid message flags");
            break;
        case ANCHOR__RPC_READ_NOMEM:
            fail_call(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        break;
    }
    return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *arg)
{
    struct anchor__rpc_sconn *c = arg;
    struct anchor_rpc_call *call;

    if (c->closing || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA))
        return 0;
    call = stream_call(h2, frame->hd.stream_id);
    /* The response is complete while the client still sends: tell it to
     * stop (RFC 9113 8.1: RST_STREAM NO_ERROR after a complete response). */
    if (call != NULL && !call->remote_closed)
        (void)nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                        NGHTTP2_NO_ERROR);
    return 0;
}

static void unlink_call(struct anchor__rpc_sconn *c, struct anchor_rpc_call *call)
{
    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    c->n_calls--;
}

static int on_stream_close(nghttp2_session *h2, int32_t stream_id, uint32_t code, void *arg)
{
    struct anchor__rpc_sconn *c = arg;
    struct anchor_rpc_call *call;

    (void)code;
    if (c->closing)
        return 0;
    call = stream_call(h2, stream_id);
    if (call == NULL)
        return 0;
    (void)nghttp2_session_set_stream_user_data(h2, stream_id, NULL);
    /* Reset by the peer, or closed before the handler finished. */
    anchor__rpc_call_cancel(call, ANCHOR_RPC_CANCELLED);
    unlink_call(c, call);
    anchor__rpc_call_free(call);
    anchor__rpc_sconn_call_gone(c);
    return 0;
}

void anchor__rpc_sconn_call_gone(struct anchor__rpc_sconn *c)
{
    struct timeval tv;

    if (c->n_calls > 0 || !c->got_request || c->goaway_sent)
        return;
    ms_tv(&tv, c->srv->opts.idle_timeout_ms);
    (void)evtimer_add(c->idle_ev, &tv);
}

static void handshake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct anchor__rpc_sconn *c = arg;

    (void)fd;
    (void)what;
    if (!c->got_request)
        anchor__rpc_io_kill(&c->io, "no request within the handshake timeout");
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct anchor__rpc_sconn *c = arg;
    struct timeval tv;

    (void)fd;
    (void)what;
    if (c->goaway_sent) {
        /* GOAWAY went unanswered for a whole handshake timeout. */
        anchor__rpc_io_kill(&c->io, "idle connection did not close");
        return;
    }
    anchor__rpc_sconn_goaway(c);
    ms_tv(&tv, c->srv->opts.handshake_timeout_ms);
    (void)evtimer_add(c->idle_ev, &tv);
}

void anchor__rpc_sconn_goaway(struct anchor__rpc_sconn *c)
{
    if (c->goaway_sent)
        return;
    c->goaway_sent = 1;
    if (!c->io.started) {
        anchor__rpc_io_kill(&c->io, "server shutting down");
        return;
    }
    /* The streams the server has seen may finish; later ones are refused
     * and a client retries them elsewhere (RFC 9113 6.8). */
    (void)nghttp2_submit_goaway(c->io.h2, NGHTTP2_FLAG_NONE,
                                nghttp2_session_get_last_proc_stream_id(c->io.h2), NGHTTP2_NO_ERROR,
                                NULL, 0);
    anchor__rpc_io_schedule(&c->io);
}

static int on_connected(struct anchor__rpc_io *io)
{
    struct anchor__rpc_sconn *c = io->owner;
    SSL *ssl = bufferevent_openssl_get_ssl(io->bev);
    struct anchor_err err;

    if (ssl == NULL)
        return 0;
    if (anchor__rpc_tls_peer(&c->peer, ssl, 1, &err) != 0) {
        (void)snprintf(io->why, sizeof(io->why), "%s", anchor_err_msg(&err));
        return -1;
    }
    return 0;
}

static void on_dead(struct anchor__rpc_io *io, const char *why)
{
    (void)why;
    anchor__rpc_sconn_free(io->owner, ANCHOR_RPC_CANCELLED);
}

static const struct anchor__rpc_io_ops sconn_ops = {on_connected, on_dead};

static int make_session(struct anchor__rpc_sconn *c, struct anchor_err *err)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    nghttp2_settings_entry iv[2];
    int rc = -1;

    ENSURE(nghttp2_session_callbacks_new(&cbs) == 0, err, "out of memory");
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    ENSURE(nghttp2_option_new(&opt) == 0, err, "out of memory");
    /* Keep the HPACK decoder's table at the default 4 KiB whatever the
     * peer asks of its encoder. */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    ENSURE(nghttp2_session_server_new2(&c->io.h2, cbs, c, opt) == 0, err, "out of memory");
    iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[0].value = c->srv->opts.max_concurrent_streams;
    iv[1].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
    iv[1].value = c->srv->opts.max_header_list_size;
    ENSURE(nghttp2_submit_settings(c->io.h2, NGHTTP2_FLAG_NONE, iv, 2) == 0, err,
           "cannot submit settings");
    rc = 0;
out:
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    return rc;
}

int anchor__rpc_sconn_new(struct anchor__rpc_sconn **out, struct anchor_rpc_server *srv,
                          struct bufferevent *bev, const struct anchor_rpc_peer *peer, int tls,
                          struct anchor_err *err)
{
    struct anchor__rpc_sconn *c = NULL;
    struct timeval tv;
    int rc = -1;

    c = calloc(1, sizeof(*c));
    ENSURE(c != NULL, err, "out of memory");
    c->srv = srv;
    c->peer = *peer;
    TRY(anchor__rpc_io_init(&c->io, srv->base, bev, srv->opts.max_output_buffer, &sconn_ops, c,
                            err));
    bev = NULL; /* the io owns it now */
    c->io.linger_ms = srv->opts.handshake_timeout_ms;
    c->handshake_ev = evtimer_new(srv->base, handshake_cb, c);
    c->idle_ev = evtimer_new(srv->base, idle_cb, c);
    ENSURE(c->handshake_ev != NULL && c->idle_ev != NULL, err, "out of memory");
    TRY(make_session(c, err));
    ms_tv(&tv, srv->opts.handshake_timeout_ms);
    ENSURE(evtimer_add(c->handshake_ev, &tv) == 0, err, "cannot arm timer");
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    if (!tls)
        anchor__rpc_io_start(&c->io);
    *out = c;
    c = NULL;
    rc = 0;
out:
    if (bev != NULL)
        bufferevent_free(bev); /* not handed to the io */
    if (c != NULL) {
        anchor__rpc_io_cleanup(&c->io);
        if (c->handshake_ev != NULL)
            event_free(c->handshake_ev);
        if (c->idle_ev != NULL)
            event_free(c->idle_ev);
        free(c);
    }
    return rc;
}

void anchor__rpc_sconn_free(struct anchor__rpc_sconn *c, enum anchor_rpc_status why)
{
    struct anchor_rpc_server *srv = c->srv;

    /* Handlers learn first, while the session still exists (an on_cancel
     * may touch other calls). */
    while (c->calls != NULL) {
        struct anchor_rpc_call *call = c->calls;
        anchor__rpc_call_cancel(call, why);
        if (call->stream_id > 0 && c->io.h2 != NULL)
            (void)nghttp2_session_set_stream_user_data(c->io.h2, call->stream_id, NULL);
        unlink_call(c, call);
        anchor__rpc_call_free(call);
    }
    c->closing = 1;
    anchor__rpc_io_cleanup(&c->io);
    event_free(c->handshake_ev);
    event_free(c->idle_ev);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->n_conns--;
    free(c);
    anchor__rpc_server_conn_gone(srv);
}
