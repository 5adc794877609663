/*
 * Fuzz target: the server side of one gRPC connection, fed the bytes a
 * client could send. The input follows the HTTP/2 client preface (added
 * here, so the fuzzer spends its time on frames): SETTINGS, HEADERS,
 * CONTINUATION, DATA, RST_STREAM, WINDOW_UPDATE, PING, GOAWAY... in any
 * order. The connection runs on memory I/O (no socket), its output is
 * drained after every chunk, and the event loop runs so that deferred
 * flushes, deadlines and teardown happen too. Handlers cover the four call
 * shapes, answering at once or keeping the call open.
 *
 * The first input byte chooses the chunk size the bytes are fed in, so that
 * frame boundaries fall everywhere.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "anchor/rpc.h"
#include "rpc/internal.h"

static struct event_base *base;
static struct anchor_rpc_server *srv;

static void echo(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct anchor_err err;
    size_t n = 0;

    (void)anchor_rpc_call_metadata(call, &n);
    if (anchor_rpc_call_add_header(call, "x-seen", "1", 1, &err) != 0 ||
        anchor_rpc_call_add_trailer(call, "x-raw-bin", msg, len < 64 ? len : 64, &err) != 0)
        abort();
    if (anchor_rpc_call_send(call, msg, len, &err) != 0) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, anchor_err_msg(&err));
        return;
    }
    anchor_rpc_call_finish(call, ANCHOR_RPC_OK, NULL);
}

static void stream(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct anchor_err err;
    size_t n = len > 0 ? msg[0] % 8 : 1;

    for (size_t i = 0; i < n; i++)
        if (anchor_rpc_call_send(call, msg, len, &err) != 0)
            break;
    anchor_rpc_call_finish(call, n % 2 ? ANCHOR_RPC_OK : ANCHOR_RPC_NOT_FOUND,
                           "stream end \xc3\xa9 %");
}

static void hold(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    (void)call;
    (void)msg;
    (void)len;
}

static void bidi_msg(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct anchor_err err;

    if (len > 0 && msg[0] == 'F') {
        anchor_rpc_call_finish(call, ANCHOR_RPC_ABORTED, "asked to");
        return;
    }
    if (anchor_rpc_call_send(call, msg, len, &err) != 0)
        anchor_rpc_call_finish(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, anchor_err_msg(&err));
}

static void finish(struct anchor_rpc_call *call)
{
    anchor_rpc_call_finish(call, ANCHOR_RPC_OK, NULL);
}

static void collect_done(struct anchor_rpc_call *call)
{
    struct anchor_err err;

    if (anchor_rpc_call_send(call, (const uint8_t *)"done", 4, &err) != 0)
        abort();
    anchor_rpc_call_finish(call, ANCHOR_RPC_OK, NULL);
}

static void cancelled(struct anchor_rpc_call *call, enum anchor_rpc_status why)
{
    (void)call;
    (void)why;
}

static const struct anchor_rpc_method methods[] = {
    {"/f.S/Unary", ANCHOR_RPC_UNARY, echo, NULL, NULL, cancelled, NULL},
    {"/f.S/Stream", ANCHOR_RPC_SERVER_STREAMING, stream, NULL, NULL, cancelled, NULL},
    {"/f.S/Hold", ANCHOR_RPC_SERVER_STREAMING, hold, NULL, NULL, cancelled, NULL},
    {"/f.S/Bidi", ANCHOR_RPC_BIDI_STREAMING, hold, bidi_msg, finish, cancelled, NULL},
    {"/f.S/Collect", ANCHOR_RPC_CLIENT_STREAMING, hold, NULL, collect_done, cancelled, NULL},
};

static void init(void)
{
    struct anchor_rpc_server_opts o;
    struct anchor_err err;

    base = event_base_new();
    anchor_rpc_server_opts_init(&o);
    /* Small limits so that the fuzzer reaches them. */
    o.max_recv_message_size = 4096;
    o.max_concurrent_streams = 8;
    o.max_header_list_size = 2048;
    o.max_output_buffer = 8192;
    o.max_call_send_queue = 16384;
    if (base == NULL || anchor_rpc_server_new(&srv, base, &o, &err) != 0)
        abort();
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (anchor_rpc_server_register(srv, &methods[i], &err) != 0)
            abort();
}

static int alive(void)
{
    return anchor_rpc_server_connection_count(srv) > 0;
}

static void drain(struct anchor__rpc_sconn *c)
{
    struct evbuffer *out = c->io.mem_out;

    (void)evbuffer_drain(out, evbuffer_get_length(out));
    anchor__rpc_io_flush(&c->io);
    (void)evbuffer_drain(out, evbuffer_get_length(out));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    struct anchor__rpc_sconn *c;
    struct anchor_err err;
    size_t chunk;

    if (srv == NULL)
        init();
    if (size == 0)
        return 0;
    chunk = (size_t)(data[0] % 64) + 1;
    if (data[0] >= 192)
        chunk = size; /* whole */
    data++;
    size--;
    if (anchor__rpc_server_conn_mem(srv, &c, &err) != 0)
        abort();
    anchor__rpc_io_feed(&c->io, preface, sizeof(preface) - 1);
    for (size_t off = 0; off < size && alive();) {
        size_t n = size - off < chunk ? size - off : chunk;
        anchor__rpc_io_feed(&c->io, data + off, n);
        off += n;
        if (!alive())
            break;
        drain(c);
        (void)event_base_loop(base, EVLOOP_NONBLOCK);
        if (alive())
            drain(c);
    }
    if (alive())
        anchor__rpc_sconn_free(c, ANCHOR_RPC_CANCELLED);
    (void)event_base_loop(base, EVLOOP_NONBLOCK);
    return 0;
}
