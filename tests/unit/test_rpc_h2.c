/*
 * The server connection against hostile and malformed requests, driven
 * through memory I/O (no socket): a raw nghttp2 client made here writes
 * exactly the HTTP/2 frames a test wants, the bytes go into the server
 * connection's core, and the server's answer is decoded by the same raw
 * client. Each row of the table is one request and the HTTP status,
 * grpc-status and message it must get.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/rpc.h"
#include "rpc/internal.h"

/* --- the server side ------------------------------------------------------- */

static void on_unary(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct anchor_err err;
    size_t blen;
    const char *bin = anchor_rpc_call_header(call, "x-data-bin", &blen);

    if (bin != NULL)
        assert_int_equal(anchor_rpc_call_send(call, (const uint8_t *)bin, blen, &err), 0);
    else
        assert_int_equal(anchor_rpc_call_send(call, msg, len, &err), 0);
    anchor_rpc_call_finish(call, ANCHOR_RPC_OK, NULL);
}

static int flood_sent;

static void on_flood(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    static uint8_t big[32 * 1024];
    struct anchor_err err;

    (void)msg;
    (void)len;
    flood_sent = 0;
    while (anchor_rpc_call_send(call, big, sizeof(big), &err) == 0)
        flood_sent++;
    /* Left open: the peer is not reading. */
}

static void on_sink_msg(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    (void)call;
    (void)msg;
    (void)len;
}

static void on_sink(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    (void)call;
    (void)msg;
    (void)len;
}

static const struct anchor_rpc_method methods[] = {
    {"/t.S/Unary", ANCHOR_RPC_UNARY, on_unary, NULL, NULL, NULL, NULL},
    {"/t.S/Sink", ANCHOR_RPC_BIDI_STREAMING, on_sink, on_sink_msg, NULL, NULL, NULL},
    {"/t.S/Flood", ANCHOR_RPC_SERVER_STREAMING, on_flood, NULL, NULL, NULL, NULL},
};

/* --- the raw client -------------------------------------------------------- */

struct raw {
    nghttp2_session *s;
    const uint8_t *body;
    size_t body_len;
    size_t body_off;
    int http_status;
    int grpc_status;
    char grpc_message[256];
    int rst_code;
    int closed;
    int goaway;
    size_t data_bytes;
    char first_msg[64];
};

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *arg)
{
    struct raw *r = arg;
    size_t n = r->body_len - r->body_off;

    (void)s;
    (void)id;
    (void)src;
    if (n > len)
        n = len;
    if (n > 0)
        memcpy(buf, r->body + r->body_off, n);
    r->body_off += n;
    if (r->body_off == r->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int raw_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                      const uint8_t *value, size_t vl, uint8_t flags, void *arg)
{
    struct raw *r = arg;
    char v[256];

    (void)s;
    (void)f;
    (void)flags;
    snprintf(v, sizeof(v), "%.*s", (int)vl, value);
    if (nl == 7 && memcmp(name, ":status", 7) == 0)
        r->http_status = atoi(v);
    else if (nl == 11 && memcmp(name, "grpc-status", 11) == 0)
        r->grpc_status = atoi(v);
    else if (nl == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(r->grpc_message, sizeof(r->grpc_message), "%s", v);
    return 0;
}

static int raw_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
                    void *arg)
{
    struct raw *r = arg;

    (void)s;
    (void)flags;
    (void)id;
    if (r->data_bytes == 0 && len > 5)
        snprintf(r->first_msg, sizeof(r->first_msg), "%.*s", (int)(len - 5), d + 5);
    r->data_bytes += len;
    return 0;
}

static int raw_close(nghttp2_session *s, int32_t id, uint32_t code, void *arg)
{
    struct raw *r = arg;

    (void)s;
    (void)id;
    r->closed = 1;
    r->rst_code = (int)code;
    return 0;
}

static int raw_frame(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
    struct raw *r = arg;

    (void)s;
    if (f->hd.type == NGHTTP2_GOAWAY)
        r->goaway = 1;
    return 0;
}

static void raw_init(struct raw *r)
{
    nghttp2_session_callbacks *cbs;

    memset(r, 0, sizeof(*r));
    r->grpc_status = -1;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, raw_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, raw_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, raw_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, raw_frame);
    assert_int_equal(nghttp2_session_client_new(&r->s, cbs, r), 0);
    nghttp2_session_callbacks_del(cbs);
    assert_int_equal(nghttp2_submit_settings(r->s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

/* --- the table ------------------------------------------------------------- */

struct row {
    const char *name;
    const char *method;     /* :method, NULL: POST */
    const char *path;       /* NULL: /t.S/Unary */
    const char *ctype;      /* NULL: application/grpc */
    const char *extra_name; /* one more header */
    const char *extra_value;
    size_t extra_len; /* 0: strlen */
    const uint8_t *body;
    size_t body_len;
    int want_http;
    int want_grpc;
    const char *want_msg;  /* substring of grpc-message, NULL: no check */
    const char *want_echo; /* first response message, NULL: no check */
};

static struct event_base *base;
static struct anchor_rpc_server *srv;

static void pump_n(struct raw *r, struct anchor__rpc_sconn *c, int rounds)
{
    for (int round = 0; round < rounds; round++) {
        const uint8_t *p;
        ssize_t n;
        int moved = 0;

        while ((n = nghttp2_session_mem_send(r->s, &p)) > 0) {
            if (anchor_rpc_server_connection_count(srv) == 0)
                break;
            anchor__rpc_io_feed(&c->io, p, (size_t)n);
            moved = 1;
        }
        if (anchor_rpc_server_connection_count(srv) == 0)
            return;
        {
            struct evbuffer *out = c->io.mem_out;
            size_t len = evbuffer_get_length(out);
            if (len > 0) {
                uint8_t *buf = evbuffer_pullup(out, -1);
                assert_int_equal(nghttp2_session_mem_recv(r->s, buf, len), (ssize_t)len);
                evbuffer_drain(out, len);
                moved = 1;
            }
        }
        anchor__rpc_io_flush(&c->io);
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (!moved && evbuffer_get_length(c->io.mem_out) == 0)
            return;
    }
}

static void pump(struct raw *r, struct anchor__rpc_sconn *c)
{
    pump_n(r, c, 20);
}

static void run_row(const struct row *row)
{
    struct anchor__rpc_sconn *c;
    struct anchor_err err;
    struct raw r;
    nghttp2_nv nv[8];
    nghttp2_data_provider prd;
    size_t k = 0;

#define NV(n, v, vl)                                                                               \
    nv[k++] = (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), (vl), NGHTTP2_NV_FLAG_NONE}
    assert_int_equal(anchor__rpc_server_conn_mem(srv, &c, &err), 0);
    raw_init(&r);
    NV(":method", row->method ? row->method : "POST", strlen(row->method ? row->method : "POST"));
    NV(":scheme", "http", 4);
    NV(":path", row->path ? row->path : "/t.S/Unary", strlen(row->path ? row->path : "/t.S/Unary"));
    NV(":authority", "localhost", 9);
    NV("te", "trailers", 2 + 6);
    NV("content-type", row->ctype ? row->ctype : "application/grpc",
       strlen(row->ctype ? row->ctype : "application/grpc"));
    if (row->extra_name != NULL)
        NV(row->extra_name, row->extra_value,
           row->extra_len ? row->extra_len : strlen(row->extra_value));
#undef NV
    r.body = row->body;
    r.body_len = row->body_len;
    prd.source.ptr = NULL;
    prd.read_callback = body_read;
    assert_true(nghttp2_submit_request(r.s, NULL, nv, k, &prd, NULL) > 0);
    pump(&r, c);
    if (r.http_status != row->want_http || r.grpc_status != row->want_grpc)
        fail_msg("%s: got HTTP %d grpc-status %d (%s), want %d %d", row->name, r.http_status,
                 r.grpc_status, r.grpc_message, row->want_http, row->want_grpc);
    if (row->want_msg != NULL && strstr(r.grpc_message, row->want_msg) == NULL)
        fail_msg("%s: grpc-message \"%s\" lacks \"%s\"", row->name, r.grpc_message, row->want_msg);
    if (row->want_echo != NULL)
        assert_string_equal(r.first_msg, row->want_echo);
    assert_true(r.closed);
    /* The connection survives a bad call. */
    assert_int_equal(anchor_rpc_server_connection_count(srv), 1);
    nghttp2_session_del(r.s);
    anchor__rpc_sconn_free(c, ANCHOR_RPC_CANCELLED);
}

static const uint8_t msg_ok[] = {0, 0, 0, 0, 2, 'h', 'i'};
static const uint8_t msg_two[] = {0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 1, 'b'};
static const uint8_t msg_compressed[] = {1, 0, 0, 0, 2, 'h', 'i'};
static const uint8_t msg_flag2[] = {2, 0, 0, 0, 2, 'h', 'i'};
static const uint8_t msg_truncated[] = {0, 0, 0, 0, 9, 'h', 'i'};
static const uint8_t msg_huge[] = {0, 0x06, 0x40, 0, 0, 'x'}; /* 100 MiB declared */
static const uint8_t msg_short_prefix[] = {0, 0, 0};
static const uint8_t msg_empty[] = {0, 0, 0, 0, 0};

static char big_value[20000];

static void test_table(void **state)
{
    const struct row rows[] = {
        {"ok", NULL, NULL, NULL, NULL, NULL, 0, msg_ok, sizeof(msg_ok), 200, 0, NULL, "hi"},
        {"ok +proto", NULL, NULL, "application/grpc+proto", NULL, NULL, 0, msg_ok, sizeof(msg_ok),
         200, 0, NULL, "hi"},
        {"empty message", NULL, NULL, NULL, NULL, NULL, 0, msg_empty, sizeof(msg_empty), 200, 0,
         NULL, NULL},
        {"binary metadata", NULL, NULL, NULL, "x-data-bin", "aGVsbG8", 0, msg_ok, sizeof(msg_ok),
         200, 0, NULL, "hello"},
        {"padded binary metadata", NULL, NULL, NULL, "x-data-bin", "aGVsbG8=", 0, msg_ok,
         sizeof(msg_ok), 200, 0, NULL, "hello"},
        {"bad binary metadata", NULL, NULL, NULL, "x-data-bin", "a!!", 0, msg_ok, sizeof(msg_ok),
         200, 13, "binary", NULL},
        {"content-type", NULL, NULL, "text/plain", NULL, NULL, 0, msg_ok, sizeof(msg_ok), 415, 13,
         "content-type", NULL},
        {"content-type prefix", NULL, NULL, "application/grpcx", NULL, NULL, 0, msg_ok,
         sizeof(msg_ok), 415, 13, NULL, NULL},
        {"method", "PUT", NULL, NULL, NULL, NULL, 0, msg_ok, sizeof(msg_ok), 405, 13, "POST", NULL},
        {"unknown method", NULL, "/t.S/Nope", NULL, NULL, NULL, 0, msg_ok, sizeof(msg_ok), 200, 12,
         "/t.S/Nope", NULL},
        {"compressed", NULL, NULL, NULL, NULL, NULL, 0, msg_compressed, sizeof(msg_compressed), 200,
         12, "compressed", NULL},
        {"grpc-encoding", NULL, NULL, NULL, "grpc-encoding", "gzip", 0, msg_ok, sizeof(msg_ok), 200,
         12, "gzip", NULL},
        {"grpc-encoding identity", NULL, NULL, NULL, "grpc-encoding", "identity", 0, msg_ok,
         sizeof(msg_ok), 200, 0, NULL, "hi"},
        {"flag 2", NULL, NULL, NULL, NULL, NULL, 0, msg_flag2, sizeof(msg_flag2), 200, 13, NULL,
         NULL},
        {"no message", NULL, NULL, NULL, NULL, NULL, 0, NULL, 0, 200, 13, "without a message",
         NULL},
        {"two messages", NULL, NULL, NULL, NULL, NULL, 0, msg_two, sizeof(msg_two), 200, 13,
         "too many", NULL},
        {"truncated", NULL, NULL, NULL, NULL, NULL, 0, msg_truncated, sizeof(msg_truncated), 200,
         13, "inside a message", NULL},
        {"short prefix", NULL, NULL, NULL, NULL, NULL, 0, msg_short_prefix,
         sizeof(msg_short_prefix), 200, 13, NULL, NULL},
        {"100 MiB declared", NULL, NULL, NULL, NULL, NULL, 0, msg_huge, sizeof(msg_huge), 200, 8,
         "larger than max", NULL},
        {"bad timeout", NULL, NULL, NULL, "grpc-timeout", "12x", 0, msg_ok, sizeof(msg_ok), 200, 13,
         "grpc-timeout", NULL},
        {"timeout 9 digits", NULL, NULL, NULL, "grpc-timeout", "123456789S", 0, msg_ok,
         sizeof(msg_ok), 200, 13, NULL, NULL},
        {"timeout ok", NULL, NULL, NULL, "grpc-timeout", "10S", 0, msg_ok, sizeof(msg_ok), 200, 0,
         NULL, "hi"},
        {"timeout max", NULL, NULL, NULL, "grpc-timeout", "99999999H", 0, msg_ok, sizeof(msg_ok),
         200, 0, NULL, "hi"},
        {"timeout zero", NULL, NULL, NULL, "grpc-timeout", "0n", 0, msg_ok, sizeof(msg_ok), 200, 4,
         NULL, NULL},
        {"huge header", NULL, NULL, NULL, "x-big", big_value, sizeof(big_value) - 1, msg_ok,
         sizeof(msg_ok), 200, 8, "header list", NULL},
    };

    (void)state;
    memset(big_value, 'v', sizeof(big_value) - 1);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        run_row(&rows[i]);
}

/* A peer that never reads: the output buffer stays bounded, the handler's
 * queue refuses more, and the connection stops reading. */
static void test_backpressure(void **state)
{
    struct anchor__rpc_sconn *c;
    struct anchor_err err;
    struct raw r;
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)"/t.S/Flood", 5, 10, 0},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
    };
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 31) - 1};
    nghttp2_data_provider prd = {{0}, body_read};
    const uint8_t *p;
    ssize_t n;

    (void)state;
    assert_int_equal(anchor__rpc_server_conn_mem(srv, &c, &err), 0);
    raw_init(&r);
    r.body = msg_ok;
    r.body_len = sizeof(msg_ok);
    /* Open every window so that only our own bound holds data back. */
    assert_int_equal(nghttp2_submit_settings(r.s, NGHTTP2_FLAG_NONE, &iv, 1), 0);
    assert_int_equal(nghttp2_submit_window_update(r.s, NGHTTP2_FLAG_NONE, 0, (1 << 30)), 0);
    assert_true(nghttp2_submit_request(r.s, NULL, nv, 5, &prd, NULL) > 0);
    while ((n = nghttp2_session_mem_send(r.s, &p)) > 0)
        anchor__rpc_io_feed(&c->io, p, (size_t)n);
    for (int i = 0; i < 10; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        anchor__rpc_io_flush(&c->io);
    }
    assert_true(flood_sent > 10);
    /* Bounded by max_output_buffer plus one frame. */
    assert_true(evbuffer_get_length(c->io.mem_out) >= 256 * 1024);
    assert_true(evbuffer_get_length(c->io.mem_out) <= 256 * 1024 + 16384 + 9);
    assert_true(c->io.paused);
    assert_int_equal(anchor_rpc_server_connection_count(srv), 1);
    nghttp2_session_del(r.s);
    anchor__rpc_sconn_free(c, ANCHOR_RPC_CANCELLED);
}

/* The deadline passes while a peer that stopped reading has megabytes
 * queued: the status goes out after the message already on its way, never
 * inside one, and the rest of the queue is dropped. */
static void test_deadline_mid_stream(void **state)
{
    struct anchor__rpc_sconn *c;
    struct anchor_err err;
    struct raw r;
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)"/t.S/Flood", 5, 10, 0},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
        {(uint8_t *)"grpc-timeout", (uint8_t *)"30m", 12, 3, 0},
    };
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 31) - 1};
    nghttp2_data_provider prd = {{0}, body_read};
    struct timeval tv = {0, 60000};
    const uint8_t *p;
    ssize_t n;

    (void)state;
    assert_int_equal(anchor__rpc_server_conn_mem(srv, &c, &err), 0);
    raw_init(&r);
    r.body = msg_ok;
    r.body_len = sizeof(msg_ok);
    assert_int_equal(nghttp2_submit_settings(r.s, NGHTTP2_FLAG_NONE, &iv, 1), 0);
    assert_int_equal(nghttp2_submit_window_update(r.s, NGHTTP2_FLAG_NONE, 0, (1 << 30)), 0);
    assert_true(nghttp2_submit_request(r.s, NULL, nv, 6, &prd, NULL) > 0);
    while ((n = nghttp2_session_mem_send(r.s, &p)) > 0)
        anchor__rpc_io_feed(&c->io, p, (size_t)n);
    /* Take a little (a message is cut at the buffer's edge), then stall
     * past the deadline. */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_true(flood_sent > 10);
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    pump_n(&r, c, 500);
    assert_int_equal(r.grpc_status, ANCHOR_RPC_DEADLINE_EXCEEDED);
    assert_true(r.data_bytes > 0);
    assert_int_equal(r.data_bytes % (5 + 32 * 1024), 0);
    assert_true(r.data_bytes < (size_t)flood_sent * (5 + 32 * 1024));
    nghttp2_session_del(r.s);
    anchor__rpc_sconn_free(c, ANCHOR_RPC_CANCELLED);
}

/* A body that never ends (no END_STREAM): the stream stays open. */
struct open_body {
    const uint8_t *p;
    size_t len, off;
};

static ssize_t open_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *arg)
{
    struct open_body *b = src->ptr;
    size_t n = b->len - b->off;

    (void)s;
    (void)id;
    (void)flags;
    (void)arg;
    if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    if (n > len)
        n = len;
    memcpy(buf, b->p + b->off, n);
    b->off += n;
    return (ssize_t)n;
}

/* Partial messages on several streams add up against the connection's
 * receive budget: past it, the stream that asks for more is refused. */
static void test_connection_recv_budget(void **state)
{
    struct anchor_rpc_server_opts o;
    struct anchor__rpc_sconn *c;
    struct anchor_err err;
    struct raw r;
    static uint8_t body[5 + 40 * 1024];
    struct open_body b[3];
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)"/t.S/Sink", 5, 9, 0},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
    };
    int32_t ids[3];

    (void)state;
    anchor_rpc_server_free(srv);
    anchor_rpc_server_opts_init(&o);
    o.max_connection_recv_buffer = 100 * 1024;
    assert_int_equal(anchor_rpc_server_new(&srv, base, &o, &err), 0);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        assert_int_equal(anchor_rpc_server_register(srv, &methods[i], &err), 0);
    assert_int_equal(anchor__rpc_server_conn_mem(srv, &c, &err), 0);
    raw_init(&r);
    /* Each declares 60 KiB and sends 40 KiB of it. */
    memset(body, 'z', sizeof(body));
    anchor__rpc_prefix(body, 60 * 1024);
    for (int i = 0; i < 3; i++) {
        nghttp2_data_provider prd;
        b[i].p = body;
        b[i].len = sizeof(body);
        b[i].off = 0;
        prd.source.ptr = &b[i];
        prd.read_callback = open_read;
        ids[i] = nghttp2_submit_request(r.s, NULL, nv, 5, &prd, NULL);
        assert_true(ids[i] > 0);
    }
    pump_n(&r, c, 50);
    /* Buffers grow with what arrives (16, 32, then the declared 60 KiB):
     * not all three fit in 100 KiB, so a stream was refused, and the
     * connection lives. */
    assert_int_equal(anchor_rpc_server_connection_count(srv), 1);
    assert_int_equal(r.grpc_status, ANCHOR_RPC_RESOURCE_EXHAUSTED);
    assert_string_equal(r.grpc_message, "connection receive buffer full");
    assert_true(c->recv_held <= 100 * 1024);
    assert_true(c->recv_held > 0);
    nghttp2_session_del(r.s);
    anchor__rpc_sconn_free(c, ANCHOR_RPC_CANCELLED);
}

/* Bytes that are not HTTP/2 end the connection. */
static void test_garbage(void **state)
{
    static const char junk[] = "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n";
    struct anchor__rpc_sconn *c;
    struct anchor_err err;

    (void)state;
    assert_int_equal(anchor__rpc_server_conn_mem(srv, &c, &err), 0);
    anchor__rpc_io_feed(&c->io, (const uint8_t *)junk, sizeof(junk) - 1);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(anchor_rpc_server_connection_count(srv), 0);
}

static int setup(void **state)
{
    struct anchor_err err;

    (void)state;
    base = event_base_new();
    assert_int_equal(anchor_rpc_server_new(&srv, base, NULL, &err), 0);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        assert_int_equal(anchor_rpc_server_register(srv, &methods[i], &err), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    anchor_rpc_server_free(srv);
    event_base_free(base);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_mid_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_recv_budget, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
