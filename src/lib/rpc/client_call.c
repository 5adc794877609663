/*
 * A client call: the request (headers, queued messages, end of stream) and
 * the response (headers, messages, trailers) of one HTTP/2 stream, and the
 * status the caller gets. The status is grpc-status from the trailers (or
 * from a Trailers-Only response); without one, it is derived from the HTTP
 * status (http-grpc-status-mapping.md) or the stream's reset code
 * (PROTOCOL-HTTP2 "Errors"). Local failures end the call at once (deadline,
 * oversized response): the caller gets its status, the stream is reset
 * with CANCEL, and the call object stays, inert, until nghttp2 closes the
 * stream, because nghttp2 may still hold its data provider until then.
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

static struct anchor_rpc_client_call *stream_call(nghttp2_session *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2, id);
}

void anchor__rpc_ccall_end(struct anchor_rpc_client_call *cc, enum anchor_rpc_status st,
                           const char *msg)
{
    if (cc->done)
        return;
    cc->done = 1;
    if (cc->deadline_ev != NULL)
        evtimer_del(cc->deadline_ev);
    if (cc->cbs.on_status != NULL)
        cc->cbs.on_status(cc, st, msg != NULL ? msg : "", cc->trailers.items, cc->trailers.n);
}

void anchor__rpc_ccall_free(struct anchor_rpc_client_call *cc)
{
    struct anchor_rpc_client *cl = cc->client;

    if (cc->prev != NULL)
        cc->prev->next = cc->next;
    else
        cl->calls = cc->next;
    if (cc->next != NULL)
        cc->next->prev = cc->prev;
    if (cc->stream_id > 0 && cl->io.h2 != NULL)
        (void)nghttp2_session_set_stream_user_data(cl->io.h2, cc->stream_id, NULL);
    anchor__rpc_reader_cleanup(&cc->reader);
    anchor__rpc_mdlist_cleanup(&cc->headers);
    anchor__rpc_mdlist_cleanup(&cc->trailers);
    if (cc->deadline_ev != NULL)
        event_free(cc->deadline_ev);
    if (cc->sendq != NULL)
        evbuffer_free(cc->sendq);
    free(cc);
}

/* Ends the call from our side: status to the caller, RST_STREAM CANCEL to
 * the server. */
static void end_local(struct anchor_rpc_client_call *cc, enum anchor_rpc_status st, const char *msg)
{
    struct anchor_rpc_client *cl = cc->client;

    if (cc->done)
        return;
    if (cl->io.h2 != NULL && cc->stream_id > 0) {
        (void)nghttp2_submit_rst_stream(cl->io.h2, NGHTTP2_FLAG_NONE, cc->stream_id,
                                        NGHTTP2_CANCEL);
        anchor__rpc_io_schedule(&cl->io);
    }
    anchor__rpc_ccall_end(cc, st, msg);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    end_local(arg, ANCHOR_RPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

/* --- nghttp2 callbacks ----------------------------------------------------- */

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
    struct anchor_rpc_client *cl = arg;
    struct anchor_rpc_client_call *cc;
    struct anchor__rpc_mdlist *l;

    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    cc = stream_call(h2, frame->hd.stream_id);
    if (cc == NULL || cc->done)
        return 0;
    l = frame->headers.cat == NGHTTP2_HCAT_RESPONSE ? &cc->headers : &cc->trailers;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        cc->http_status = st;
        return 0;
    }
    if (namelen > 0 && name[0] == ':')
        return 0;
    if (l->bytes + namelen + valuelen + 32 > cl->opts.max_header_list_size)
        return 0;
    /* A "-bin" value that is not base64 is dropped, not fatal. */
    (void)anchor__rpc_mdlist_add(l, (const char *)name, namelen, (const char *)value, valuelen, 1);
    return 0;
}

static int grpc_content_type(const struct anchor__rpc_mdlist *l)
{
    const struct anchor_rpc_md *ct = anchor_rpc_md_find(l->items, l->n, "content-type");

    return ct != NULL && strncmp(ct->value, "application/grpc", 16) == 0 &&
           (ct->value[16] == '\0' || ct->value[16] == '+' || ct->value[16] == ';');
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *arg)
{
    struct anchor_rpc_client *cl = arg;
    struct anchor_rpc_client_call *cc;

    if (frame->hd.type == NGHTTP2_GOAWAY) {
        cl->goaway_recv = 1;
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_RESPONSE)
        return 0;
    cc = stream_call(h2, frame->hd.stream_id);
    if (cc == NULL || cc->done)
        return 0;
    cc->got_headers = 1;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        /* Trailers-Only: the headers carry the status. */
        struct anchor__rpc_mdlist tmp = cc->trailers;
        cc->trailers = cc->headers;
        cc->headers = tmp;
        cc->trailers_only = 1;
        return 0;
    }
    if (cc->http_status != 200 || !grpc_content_type(&cc->headers)) {
        cc->bad_response = 1;
        return 0;
    }
    if (cc->cbs.on_headers != NULL)
        cc->cbs.on_headers(cc, cc->headers.items, cc->headers.n);
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *arg)
{
    struct anchor_rpc_client_call *cc = stream_call(h2, stream_id);
    char msg[128];

    (void)flags;
    (void)arg;
    while (cc != NULL && !cc->done && !cc->bad_response && len > 0) {
        const uint8_t *m;
        size_t mlen, used = 0;
        enum anchor__rpc_read r = anchor__rpc_reader_feed(&cc->reader, data, len, &used, &m, &mlen);
        data += used;
        len -= used;
        switch (r) {
        case ANCHOR__RPC_READ_MORE:
            break;
        case ANCHOR__RPC_READ_MSG:
            if (cc->cbs.on_message != NULL)
                cc->cbs.on_message(cc, m, mlen);
            continue;
        case ANCHOR__RPC_READ_TOO_LARGE:
            (void)snprintf(msg, sizeof(msg), "received message larger than max (%zu bytes)",
                           cc->reader.max);
            end_local(cc, ANCHOR_RPC_RESOURCE_EXHAUSTED, msg);
            break;
        case ANCHOR__RPC_READ_COMPRESSED:
            end_local(cc, ANCHOR_RPC_INTERNAL, "compressed message without grpc-encoding");
            break;
        case ANCHOR__RPC_READ_BAD_FLAG:
            end_local(cc, ANCHOR_RPC_INTERNAL, "invalid message flags");
            break;
        case ANCHOR__RPC_READ_NOMEM:
            end_local(cc, ANCHOR_RPC_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        break;
    }
    return 0;
}

static void final_status(struct anchor_rpc_client_call *cc, uint32_t code)
{
    const struct anchor_rpc_md *st =
        anchor_rpc_md_find(cc->trailers.items, cc->trailers.n, "grpc-status");
    const struct anchor_rpc_md *gm =
        anchor_rpc_md_find(cc->trailers.items, cc->trailers.n, "grpc-message");
    char buf[96];
    char *msg = NULL;
    int status;

    if (st != NULL && !cc->bad_response &&
        (status = anchor__rpc_status_parse(st->value, st->value_len)) >= 0) {
        if (status == ANCHOR_RPC_OK && !anchor__rpc_reader_idle(&cc->reader)) {
            anchor__rpc_ccall_end(cc, ANCHOR_RPC_INTERNAL, "response ended inside a message");
            return;
        }
        if (gm != NULL)
            msg = anchor__rpc_pct_decode(gm->value, gm->value_len);
        anchor__rpc_ccall_end(cc, (enum anchor_rpc_status)status, msg);
        free(msg);
        return;
    }
    if (cc->http_status != 0 && cc->http_status != 200) {
        (void)snprintf(buf, sizeof(buf), "unexpected HTTP status %d", cc->http_status);
        anchor__rpc_ccall_end(cc, anchor__rpc_status_from_http(cc->http_status), buf);
    } else if (cc->bad_response) {
        anchor__rpc_ccall_end(cc, ANCHOR_RPC_UNKNOWN, "response is not application/grpc");
    } else if (code != NGHTTP2_NO_ERROR) {
        (void)snprintf(buf, sizeof(buf), "stream reset by the server (HTTP/2 error %u)", code);
        anchor__rpc_ccall_end(cc, anchor__rpc_status_from_h2(code), buf);
    } else {
        anchor__rpc_ccall_end(cc, ANCHOR_RPC_INTERNAL,
                              "server closed the stream without sending trailers");
    }
}

static int on_stream_close(nghttp2_session *h2, int32_t stream_id, uint32_t code, void *arg)
{
    struct anchor_rpc_client *cl = arg;
    struct anchor_rpc_client_call *cc = stream_call(h2, stream_id);

    if (cc == NULL || cl->freeing)
        return 0;
    final_status(cc, code);
    anchor__rpc_ccall_free(cc);
    return 0;
}

static int on_frame_not_send(nghttp2_session *h2, const nghttp2_frame *frame, int lib_error,
                             void *arg)
{
    struct anchor_rpc_client *cl = arg;
    struct anchor_rpc_client_call *cc;

    if (cl->freeing || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    cc = stream_call(h2, frame->hd.stream_id);
    if (cc == NULL)
        return 0;
    /* The request never left (GOAWAY received, stream limit...): no stream
     * exists, so the call can go at once. */
    anchor__rpc_ccall_end(cc, ANCHOR_RPC_UNAVAILABLE, nghttp2_strerror(lib_error));
    anchor__rpc_ccall_free(cc);
    return 0;
}

int anchor__rpc_client_callbacks(nghttp2_session_callbacks *cbs)
{
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    return 0;
}

/* --- the request ------------------------------------------------------------ */

static ssize_t read_queue(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
                          uint32_t *flags, nghttp2_data_source *source, void *arg)
{
    struct anchor_rpc_client_call *cc = source->ptr;
    size_t n = evbuffer_get_length(cc->sendq);

    (void)h2;
    (void)stream_id;
    (void)arg;
    if (n > length)
        n = length;
    if (n > 0 && evbuffer_remove(cc->sendq, buf, n) != (int)n)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (evbuffer_get_length(cc->sendq) == 0 && (cc->close_send || cc->done)) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        cc->eof_sent = 1;
        return (ssize_t)n;
    }
    return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

int anchor_rpc_client_call_start(struct anchor_rpc_client_call **out, struct anchor_rpc_client *cl,
                                 const char *path, const struct anchor_rpc_md *md, size_t n_md,
                                 uint32_t timeout_ms, const struct anchor_rpc_client_call_cbs *cbs,
                                 void *data, struct anchor_err *err)
{
    struct anchor_rpc_client_call *cc = NULL;
    nghttp2_nv *nva = NULL;
    char **wire = NULL;
    char tmo[16];
    size_t k = 0;
    nghttp2_data_provider prd;
    int32_t id;
    int rc = -1;

    ENSURE(!cl->closed, err, "connection closed: %s", cl->why);
    ENSURE(!cl->goaway_recv, err, "connection is going away (GOAWAY received)");
    ENSURE(path != NULL && path[0] == '/', err, "method path must begin with '/'");
    cc = calloc(1, sizeof(*cc));
    ENSURE(cc != NULL, err, "out of memory");
    cc->client = cl;
    cc->data = data;
    if (cbs != NULL)
        cc->cbs = *cbs;
    anchor__rpc_reader_init(&cc->reader, cl->opts.max_recv_message_size);
    cc->sendq = evbuffer_new();
    nva = calloc(8 + n_md, sizeof(*nva));
    wire = calloc(n_md + 1, sizeof(*wire));
    ENSURE(cc->sendq != NULL && nva != NULL && wire != NULL, err, "out of memory");
    nva[k++] = MAKE_NV(":method", "POST", 4);
    nva[k++] = MAKE_NV(":scheme", cl->tls ? "https" : "http", cl->tls ? 5u : 4u);
    nva[k++] = MAKE_NV(":path", path, strlen(path));
    nva[k++] = MAKE_NV(":authority", cl->authority, strlen(cl->authority));
    nva[k++] = MAKE_NV("te", "trailers", 8);
    nva[k++] = MAKE_NV("content-type", "application/grpc", 16);
    nva[k++] = MAKE_NV("user-agent", "anchor-rpc/0.1", 14);
    if (timeout_ms > 0) {
        anchor__rpc_timeout_encode(timeout_ms, tmo);
        nva[k++] = MAKE_NV("grpc-timeout", tmo, strlen(tmo));
    }
    for (size_t i = 0; i < n_md; i++) {
        size_t wl = 0;
        ENSURE(md[i].name != NULL && anchor__rpc_md_name_ok(md[i].name), err,
               "invalid metadata name %s", md[i].name ? md[i].name : "(null)");
        wire[i] = anchor__rpc_md_wire_value(md[i].name, md[i].value, md[i].value_len, &wl);
        ENSURE(wire[i] != NULL, err, "invalid value for metadata %s", md[i].name);
        nva[k++] = MAKE_NV(md[i].name, wire[i], wl);
    }
    prd.source.ptr = cc;
    prd.read_callback = read_queue;
    id = nghttp2_submit_request(cl->io.h2, NULL, nva, k, &prd, cc);
    ENSURE(id > 0, err, "cannot start the call: %s", nghttp2_strerror(id));
    cc->stream_id = id;
    if (timeout_ms > 0) {
        struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
        cc->deadline_ev = evtimer_new(cl->base, deadline_cb, cc);
        if (cc->deadline_ev == NULL || evtimer_add(cc->deadline_ev, &tv) != 0) {
            /* The stream exists now: reset it and let it close as a zombie. */
            cc->done = 1;
            (void)nghttp2_submit_rst_stream(cl->io.h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
            cc->next = cl->calls;
            if (cl->calls != NULL)
                cl->calls->prev = cc;
            cl->calls = cc;
            cc = NULL;
            anchor__rpc_io_schedule(&cl->io);
            FAIL(err, "cannot arm the deadline timer");
        }
    }
    cc->next = cl->calls;
    if (cl->calls != NULL)
        cl->calls->prev = cc;
    cl->calls = cc;
    anchor__rpc_io_schedule(&cl->io);
    *out = cc;
    cc = NULL;
    rc = 0;
out:
    if (wire != NULL)
        for (size_t i = 0; i < n_md; i++)
            free(wire[i]);
    free(wire);
    free(nva);
    if (cc != NULL) {
        anchor__rpc_reader_cleanup(&cc->reader);
        if (cc->sendq != NULL)
            evbuffer_free(cc->sendq);
        free(cc);
    }
    return rc;
}

int anchor_rpc_client_call_send(struct anchor_rpc_client_call *cc, const uint8_t *msg, size_t len,
                                struct anchor_err *err)
{
    uint8_t prefix[ANCHOR__RPC_PREFIX_LEN];
    int rc = -1;

    ENSURE(!cc->done, err, "call already ended");
    ENSURE(!cc->close_send, err, "request stream already closed");
    ENSURE(len <= UINT32_MAX, err, "message too large");
    anchor__rpc_prefix(prefix, len);
    ENSURE(evbuffer_add(cc->sendq, prefix, sizeof(prefix)) == 0 &&
               (len == 0 || evbuffer_add(cc->sendq, msg, len) == 0),
           err, "out of memory");
    if (cc->client->io.h2 != NULL)
        (void)nghttp2_session_resume_data(cc->client->io.h2, cc->stream_id);
    anchor__rpc_io_schedule(&cc->client->io);
    rc = 0;
out:
    return rc;
}

int anchor_rpc_client_call_close_send(struct anchor_rpc_client_call *cc, struct anchor_err *err)
{
    int rc = -1;

    ENSURE(!cc->done, err, "call already ended");
    cc->close_send = 1;
    if (cc->client->io.h2 != NULL)
        (void)nghttp2_session_resume_data(cc->client->io.h2, cc->stream_id);
    anchor__rpc_io_schedule(&cc->client->io);
    rc = 0;
out:
    return rc;
}

int anchor_rpc_client_unary(struct anchor_rpc_client_call **out, struct anchor_rpc_client *cl,
                            const char *path, const struct anchor_rpc_md *md, size_t n_md,
                            const uint8_t *msg, size_t len, uint32_t timeout_ms,
                            const struct anchor_rpc_client_call_cbs *cbs, void *data,
                            struct anchor_err *err)
{
    struct anchor_rpc_client_call *cc = NULL;
    int rc = -1;

    TRY(anchor_rpc_client_call_start(&cc, cl, path, md, n_md, timeout_ms, cbs, data, err));
    /* Neither can fail on a call just started, short of memory; then the
     * call is cancelled so that no callback follows the error. */
    if (anchor_rpc_client_call_send(cc, msg, len, err) != 0 ||
        anchor_rpc_client_call_close_send(cc, err) != 0) {
        anchor_rpc_client_call_cancel(cc);
        goto out;
    }
    if (out != NULL)
        *out = cc;
    rc = 0;
out:
    return rc;
}

void anchor_rpc_client_call_cancel(struct anchor_rpc_client_call *cc)
{
    struct anchor_rpc_client *cl = cc->client;

    if (cc->done)
        return;
    cc->done = 1;
    if (cc->deadline_ev != NULL)
        evtimer_del(cc->deadline_ev);
    if (cl->io.h2 != NULL && cc->stream_id > 0) {
        (void)nghttp2_submit_rst_stream(cl->io.h2, NGHTTP2_FLAG_NONE, cc->stream_id,
                                        NGHTTP2_CANCEL);
        anchor__rpc_io_schedule(&cl->io);
    }
}

void anchor_rpc_client_call_set_data(struct anchor_rpc_client_call *cc, void *data)
{
    cc->data = data;
}

void *anchor_rpc_client_call_data(const struct anchor_rpc_client_call *cc)
{
    return cc->data;
}

struct anchor_rpc_client *anchor_rpc_client_call_client(const struct anchor_rpc_client_call *cc)
{
    return cc->client;
}
