/*
 * The gRPC module end to end, in one process: our server and our client on
 * one event_base, over a unix socket and over TLS 1.3 with a test CA made
 * here (helper_pki). Each test starts a server with the echo service below,
 * runs the client against it until the calls end, and checks statuses,
 * messages, metadata, peers and the limits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "anchor/rpc.h"
#include "helper_pki.h"

/* --- the echo service ------------------------------------------------------ */

struct world {
    struct event_base *base;
    struct anchor_rpc_server *srv;
    char dir[64];
    char sock[100];
    uint16_t port;
    SSL_CTX *sctx, *cctx;
    /* what the server saw */
    int cancels;
    enum anchor_rpc_status cancel_why;
    struct anchor_rpc_peer peer;
    uint8_t srv_exporter[ANCHOR_RPC_EXPORTER_LEN];
    int has_chain;
    uint64_t deadline;
    int shutdown_done;
};

static struct world W;
static int pending; /* client calls still running */

static void finish_ok(struct anchor_rpc_call *call)
{
    anchor_rpc_call_finish(call, ANCHOR_RPC_OK, NULL);
}

static void send_or_fail(struct anchor_rpc_call *call, const void *msg, size_t len)
{
    struct anchor_err err;

    assert_int_equal(anchor_rpc_call_send(call, msg, len, &err), 0);
}

/* Unary: echoes the message; "x-echo" comes back as header and trailer. */
static void on_unary(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct anchor_err err;
    size_t vlen;
    const char *v = anchor_rpc_call_header(call, "x-echo", &vlen);
    const struct anchor_rpc_peer *p = anchor_rpc_call_peer(call);

    W.peer = *p;
    W.has_chain = p->chain != NULL;
    if (p->has_exporter)
        memcpy(W.srv_exporter, p->exporter, sizeof(W.srv_exporter));
    W.deadline = anchor_rpc_call_deadline_ms(call);
    if (v != NULL) {
        assert_int_equal(anchor_rpc_call_add_header(call, "x-echo", v, vlen, &err), 0);
        assert_int_equal(anchor_rpc_call_add_trailer(call, "x-echo-bin", v, vlen, &err), 0);
    }
    send_or_fail(call, msg, len);
    finish_ok(call);
}

/* Server streaming: the request is a count; that many messages follow. */
static void on_stream(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    char buf[32];
    int n = atoi(len < 10 ? (snprintf(buf, sizeof(buf), "%.*s", (int)len, msg), buf) : "0");

    for (int i = 0; i < n; i++) {
        int k = snprintf(buf, sizeof(buf), "msg %d", i);
        send_or_fail(call, buf, (size_t)k);
    }
    finish_ok(call);
}

/* Push: keeps the stream open and sends three messages from a timer. */
struct push {
    struct anchor_rpc_call *call;
    struct event *ev;
    int sent;
};

static void push_tick(evutil_socket_t fd, short what, void *arg)
{
    struct push *p = arg;
    struct timeval tv = {0, 5000};
    char buf[16];
    int k;

    (void)fd;
    (void)what;
    k = snprintf(buf, sizeof(buf), "push %d", p->sent++);
    send_or_fail(p->call, buf, (size_t)k);
    if (p->sent < 3) {
        evtimer_add(p->ev, &tv);
        return;
    }
    finish_ok(p->call);
    event_free(p->ev);
    free(p);
}

static void on_push(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct push *p = calloc(1, sizeof(*p));
    struct timeval tv = {0, 5000};

    (void)msg;
    (void)len;
    p->call = call;
    p->ev = evtimer_new(W.base, push_tick, p);
    anchor_rpc_call_set_data(call, p);
    evtimer_add(p->ev, &tv);
}

static void on_push_cancel(struct anchor_rpc_call *call, enum anchor_rpc_status why)
{
    struct push *p = anchor_rpc_call_data(call);

    W.cancels++;
    W.cancel_why = why;
    event_free(p->ev);
    free(p);
}

/* Bidi: echoes every message, finishes on half-close. */
static void on_bidi_start(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    (void)call;
    assert_null(msg);
    assert_int_equal(len, 0);
}

static void on_bidi_msg(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    send_or_fail(call, msg, len);
}

/* Client streaming: one reply, the messages concatenated. */
static void on_cs_start(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    (void)msg;
    (void)len;
    anchor_rpc_call_set_data(call, calloc(1, 4096));
}

static void on_cs_msg(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    char *acc = anchor_rpc_call_data(call);

    strncat(acc, (const char *)msg, len < 100 ? len : 100);
}

static void on_cs_done(struct anchor_rpc_call *call)
{
    char *acc = anchor_rpc_call_data(call);

    send_or_fail(call, acc, strlen(acc));
    free(acc);
    finish_ok(call);
}

static void on_cs_cancel(struct anchor_rpc_call *call, enum anchor_rpc_status why)
{
    (void)why;
    free(anchor_rpc_call_data(call));
}

/* Fail: the request is "<code>:<message>". */
static void on_fail(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    char buf[256];

    snprintf(buf, sizeof(buf), "%.*s", (int)len, msg);
    anchor_rpc_call_finish(call, (enum anchor_rpc_status)atoi(buf), strchr(buf, ':') + 1);
}

/* Hang: never answers; the library tells it when the call is over. */
static void on_hang(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    (void)call;
    (void)msg;
    (void)len;
}

static void on_hang_cancel(struct anchor_rpc_call *call, enum anchor_rpc_status why)
{
    (void)call;
    W.cancels++;
    W.cancel_why = why;
}

/* Flood: sends 64 KiB messages until the queue refuses, then finishes. */
static void on_flood(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    static uint8_t big[64 * 1024];
    struct anchor_err err;
    int n = 0;

    (void)msg;
    (void)len;
    while (anchor_rpc_call_send(call, big, sizeof(big), &err) == 0)
        n++;
    assert_non_null(strstr(anchor_err_msg(&err), "send queue full"));
    assert_true(anchor_rpc_call_send_queued(call) <= 8u * 1024 * 1024 + 64 * 1024 + 5);
    assert_true(n > 1);
    finish_ok(call);
}

static const struct anchor_rpc_method methods[] = {
    {"/test.Echo/Unary", ANCHOR_RPC_UNARY, on_unary, NULL, NULL, NULL, NULL},
    {"/test.Echo/Stream", ANCHOR_RPC_SERVER_STREAMING, on_stream, NULL, NULL, NULL, NULL},
    {"/test.Echo/Push", ANCHOR_RPC_SERVER_STREAMING, on_push, NULL, NULL, on_push_cancel, NULL},
    {"/test.Echo/Bidi", ANCHOR_RPC_BIDI_STREAMING, on_bidi_start, on_bidi_msg, finish_ok, NULL,
     NULL},
    {"/test.Echo/Collect", ANCHOR_RPC_CLIENT_STREAMING, on_cs_start, on_cs_msg, on_cs_done,
     on_cs_cancel, NULL},
    {"/test.Echo/Fail", ANCHOR_RPC_UNARY, on_fail, NULL, NULL, NULL, NULL},
    {"/test.Echo/Hang", ANCHOR_RPC_UNARY, on_hang, NULL, NULL, on_hang_cancel, NULL},
    {"/test.Echo/Flood", ANCHOR_RPC_SERVER_STREAMING, on_flood, NULL, NULL, NULL, NULL},
};

/* --- TLS material ----------------------------------------------------------- */

static SSL_CTX *make_ctx(int server, X509 *ca, X509 *cert, EVP_PKEY *key)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);

    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(st, ca), 1);
    if (cert != NULL) {
        assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    return ctx;
}

static void make_tls(void)
{
    struct hp_cert_opts ca_o = {0}, srv_o = {0}, cli_o = {0};
    EVP_PKEY *ca_key = hp_key_fresh(HP_EC_P256, 0);
    EVP_PKEY *srv_key = hp_key_fresh(HP_EC_P256, 0);
    EVP_PKEY *cli_key = hp_key_fresh(HP_EC_P256, 0);
    X509 *ca, *srv, *cli;

    ca_o.ca = 1;
    ca_o.cn = "rpc test CA";
    ca = hp_cert(&ca_o, ca_key, NULL, NULL);
    srv_o.cn = "server";
    srv_o.dns = "localhost";
    srv_o.uris[0] = "spiffe://example.org/server";
    srv = hp_cert(&srv_o, srv_key, ca, ca_key);
    cli_o.cn = "agent";
    cli_o.uris[0] = "spiffe://example.org/agent";
    cli = hp_cert(&cli_o, cli_key, ca, ca_key);
    W.sctx = make_ctx(1, ca, srv, srv_key);
    W.cctx = make_ctx(0, ca, cli, cli_key);
    X509_free(ca);
    X509_free(srv);
    X509_free(cli);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(cli_key);
}

/* --- setup ------------------------------------------------------------------ */

static void start_server(const struct anchor_rpc_server_opts *opts)
{
    struct anchor_err err;

    assert_int_equal(anchor_rpc_server_new(&W.srv, W.base, opts, &err), 0);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        assert_int_equal(anchor_rpc_server_register(W.srv, &methods[i], &err), 0);
    if (anchor_rpc_server_listen_unix(W.srv, W.sock, 0600, &err) != 0)
        fail_msg("%s", anchor_err_msg(&err));
    if (anchor_rpc_server_listen_tls(W.srv, "127.0.0.1", 0, W.sctx, &W.port, &err) != 0)
        fail_msg("%s", anchor_err_msg(&err));
}

static int setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof(W));
    pending = 0;
    W.base = event_base_new();
    snprintf(W.dir, sizeof(W.dir), "/tmp/anchor-rpc-XXXXXX");
    assert_non_null(mkdtemp(W.dir));
    snprintf(W.sock, sizeof(W.sock), "%s/s.sock", W.dir);
    make_tls();
    start_server(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    anchor_rpc_server_free(W.srv);
    /* Let libevent finish the bufferevents it frees lazily. */
    for (int i = 0; i < 3; i++)
        event_base_loop(W.base, EVLOOP_NONBLOCK);
    SSL_CTX_free(W.sctx);
    SSL_CTX_free(W.cctx);
    event_base_free(W.base);
    (void)rmdir(W.dir);
    return 0;
}

/* --- the client side --------------------------------------------------------- */

struct result {
    int ended;
    enum anchor_rpc_status status;
    char message[256];
    int n_msgs;
    char msgs[16][128];
    int got_headers;
    char header_echo[64];
    char trailer_echo[64];
    int n_pending; /* calls still running in this test */
};

static void r_headers(struct anchor_rpc_client_call *cc, const struct anchor_rpc_md *md, size_t n)
{
    struct result *r = anchor_rpc_client_call_data(cc);
    const struct anchor_rpc_md *e = anchor_rpc_md_find(md, n, "x-echo");

    r->got_headers++;
    if (e != NULL)
        snprintf(r->header_echo, sizeof(r->header_echo), "%s", e->value);
}

static void r_message(struct anchor_rpc_client_call *cc, const uint8_t *msg, size_t len)
{
    struct result *r = anchor_rpc_client_call_data(cc);

    if (r->n_msgs < 16)
        snprintf(r->msgs[r->n_msgs], sizeof(r->msgs[0]), "%.*s", (int)(len < 100 ? len : 100), msg);
    r->n_msgs++;
}

static void r_status(struct anchor_rpc_client_call *cc, enum anchor_rpc_status st,
                     const char *message, const struct anchor_rpc_md *tr, size_t n)
{
    struct result *r = anchor_rpc_client_call_data(cc);
    const struct anchor_rpc_md *e = anchor_rpc_md_find(tr, n, "x-echo-bin");

    r->ended++;
    r->status = st;
    snprintf(r->message, sizeof(r->message), "%s", message);
    if (e != NULL)
        snprintf(r->trailer_echo, sizeof(r->trailer_echo), "%.*s", (int)e->value_len, e->value);
    if (--pending <= 0)
        event_base_loopbreak(W.base);
}

static const struct anchor_rpc_client_call_cbs cbs = {r_headers, r_message, r_status};

static void watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopbreak(W.base);
}

/* Runs the loop until `pending` calls ended or 5 s passed. */
static void run(void)
{
    struct timeval tv = {5, 0};
    struct event *ev = evtimer_new(W.base, watchdog, NULL);

    evtimer_add(ev, &tv);
    event_base_dispatch(W.base);
    event_free(ev);
}

/* Runs the loop for ms milliseconds. */
static void run_for(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_base_loopexit(W.base, &tv);
    event_base_dispatch(W.base);
}

static struct anchor_rpc_client *unix_client(void)
{
    struct anchor_rpc_client *cl;
    struct anchor_err err;

    if (anchor_rpc_client_connect_unix(&cl, W.base, W.sock, NULL, &err) != 0)
        fail_msg("%s", anchor_err_msg(&err));
    return cl;
}

static struct anchor_rpc_client *tls_client(SSL_CTX *ctx)
{
    struct anchor_rpc_client *cl;
    struct anchor_err err;

    if (anchor_rpc_client_connect_tls(&cl, W.base, "127.0.0.1", W.port, ctx, "localhost", NULL,
                                      &err) != 0)
        fail_msg("%s", anchor_err_msg(&err));
    return cl;
}

static void unary(struct anchor_rpc_client *cl, const char *path, const char *msg, uint32_t timeout,
                  struct result *r)
{
    struct anchor_err err;
    struct anchor_rpc_md md[] = {{"x-echo", "hello-md", 8}};

    pending++;
    if (anchor_rpc_client_unary(NULL, cl, path, md, 1, (const uint8_t *)msg, strlen(msg), timeout,
                                &cbs, r, &err) != 0)
        fail_msg("%s", anchor_err_msg(&err));
}

/* --- tests ------------------------------------------------------------------- */

static void test_unix_unary(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    struct result r = {0};

    (void)state;
    unary(cl, "/test.Echo/Unary", "ping", 2000, &r);
    run();
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    assert_int_equal(r.n_msgs, 1);
    assert_string_equal(r.msgs[0], "ping");
    assert_int_equal(r.got_headers, 1);
    assert_string_equal(r.header_echo, "hello-md");
    assert_string_equal(r.trailer_echo, "hello-md");
    assert_int_equal(W.peer.transport, ANCHOR_RPC_TRANSPORT_UNIX);
    assert_true(W.peer.has_creds);
    assert_int_equal(W.peer.pid, getpid());
    assert_int_equal(W.peer.uid, getuid());
    assert_int_equal(W.peer.gid, getgid());
    assert_true(W.deadline > 0);
    assert_true(anchor_rpc_client_is_ready(cl));
    assert_int_equal(anchor_rpc_client_peer(cl)->pid, getpid());
    anchor_rpc_client_free(cl);
}

static void test_unix_many_unary(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    static struct result r[300];

    (void)state;
    memset(r, 0, sizeof(r));
    /* More than max_concurrent_streams at once: nghttp2 queues the rest. */
    for (int i = 0; i < 300; i++)
        unary(cl, "/test.Echo/Unary", "x", 0, &r[i]);
    run();
    for (int i = 0; i < 300; i++) {
        assert_int_equal(r[i].ended, 1);
        assert_int_equal(r[i].status, ANCHOR_RPC_OK);
        assert_string_equal(r[i].msgs[0], "x");
    }
    assert_int_equal(W.deadline, 0);
    anchor_rpc_client_free(cl);
}

static void test_unix_server_stream(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    struct result r = {0}, z = {0};

    (void)state;
    unary(cl, "/test.Echo/Stream", "5", 0, &r);
    unary(cl, "/test.Echo/Stream", "0", 0, &z);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    assert_int_equal(r.n_msgs, 5);
    assert_string_equal(r.msgs[0], "msg 0");
    assert_string_equal(r.msgs[4], "msg 4");
    /* No message: a Trailers-Only OK. */
    assert_int_equal(z.status, ANCHOR_RPC_OK);
    assert_int_equal(z.n_msgs, 0);
    assert_int_equal(z.got_headers, 0);
    anchor_rpc_client_free(cl);
}

static void test_unix_push_later(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    struct result r = {0};

    (void)state;
    unary(cl, "/test.Echo/Push", "", 0, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    assert_int_equal(r.n_msgs, 3);
    assert_string_equal(r.msgs[2], "push 2");
    assert_int_equal(W.cancels, 0);
    anchor_rpc_client_free(cl);
}

static void test_bidi_and_client_stream(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    struct anchor_rpc_client_call *b, *c;
    struct result rb = {0}, rc = {0};
    struct anchor_err err;

    (void)state;
    pending = 2;
    assert_int_equal(
        anchor_rpc_client_call_start(&b, cl, "/test.Echo/Bidi", NULL, 0, 0, &cbs, &rb, &err), 0);
    assert_int_equal(
        anchor_rpc_client_call_start(&c, cl, "/test.Echo/Collect", NULL, 0, 0, &cbs, &rc, &err), 0);
    for (int i = 0; i < 3; i++) {
        char m[8];
        snprintf(m, sizeof(m), "m%d", i);
        assert_int_equal(anchor_rpc_client_call_send(b, (uint8_t *)m, strlen(m), &err), 0);
        assert_int_equal(anchor_rpc_client_call_send(c, (uint8_t *)m, strlen(m), &err), 0);
    }
    assert_int_equal(anchor_rpc_client_call_send(b, (uint8_t *)"", 0, &err), 0);
    assert_int_equal(anchor_rpc_client_call_close_send(b, &err), 0);
    assert_int_equal(anchor_rpc_client_call_close_send(c, &err), 0);
    assert_int_not_equal(anchor_rpc_client_call_send(c, (uint8_t *)"x", 1, &err), 0);
    run();
    assert_int_equal(rb.status, ANCHOR_RPC_OK);
    assert_int_equal(rb.n_msgs, 4);
    assert_string_equal(rb.msgs[2], "m2");
    assert_string_equal(rb.msgs[3], "");
    assert_int_equal(rc.status, ANCHOR_RPC_OK);
    assert_int_equal(rc.n_msgs, 1);
    assert_string_equal(rc.msgs[0], "m0m1m2");
    anchor_rpc_client_free(cl);
}

static void test_error_status(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    struct result r = {0}, u = {0}, e = {0};

    (void)state;
    /* Non-ASCII and '%' survive percent-encoding both ways. */
    unary(cl, "/test.Echo/Fail", "5:caf\xc3\xa9 100% \xe2\x9c\x93\n", 0, &r);
    unary(cl, "/test.Echo/Nope", "", 0, &u);
    /* OK without a message from a unary handler is INTERNAL. */
    unary(cl, "/test.Echo/Fail", "0:", 0, &e);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_NOT_FOUND);
    assert_string_equal(r.message, "caf\xc3\xa9 100% \xe2\x9c\x93\n");
    assert_int_equal(r.got_headers, 0);
    assert_int_equal(u.status, ANCHOR_RPC_UNIMPLEMENTED);
    assert_non_null(strstr(u.message, "/test.Echo/Nope"));
    assert_int_equal(e.status, ANCHOR_RPC_INTERNAL);
    anchor_rpc_client_free(cl);
}

static void test_deadline(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    struct result r = {0};

    (void)state;
    unary(cl, "/test.Echo/Hang", "", 50, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_DEADLINE_EXCEEDED);
    run_for(100);
    /* The server's own deadline or the client's RST_STREAM: either way the
     * handler heard of it, once. */
    assert_int_equal(W.cancels, 1);
    assert_true(W.cancel_why == ANCHOR_RPC_DEADLINE_EXCEEDED ||
                W.cancel_why == ANCHOR_RPC_CANCELLED);
    anchor_rpc_client_free(cl);
}

static void test_client_cancel(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    struct anchor_rpc_client_call *cc;
    struct anchor_err err;
    struct result r = {0};

    (void)state;
    assert_int_equal(anchor_rpc_client_unary(&cc, cl, "/test.Echo/Hang", NULL, 0,
                                             (const uint8_t *)"", 0, 0, &cbs, &r, &err),
                     0);
    run_for(50);
    anchor_rpc_client_call_cancel(cc);
    run_for(50);
    assert_int_equal(r.ended, 0);
    assert_int_equal(W.cancels, 1);
    assert_int_equal(W.cancel_why, ANCHOR_RPC_CANCELLED);
    /* And the connection still serves. */
    unary(cl, "/test.Echo/Unary", "again", 0, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    anchor_rpc_client_free(cl);
}

static void test_client_free_cancels(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    struct result r = {0};

    (void)state;
    unary(cl, "/test.Echo/Push", "", 0, &r);
    run_for(3);
    anchor_rpc_client_free(cl);
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.status, ANCHOR_RPC_CANCELLED);
    run_for(50);
    /* The server saw the connection go and cancelled the pusher. */
    assert_int_equal(W.cancels, 1);
    assert_int_equal(W.cancel_why, ANCHOR_RPC_CANCELLED);
    pending = 0;
}

static void test_message_too_large(void **state)
{
    struct anchor_rpc_server_opts o;
    struct anchor_rpc_client *cl;
    struct result r = {0}, ok = {0};
    char *big = malloc(4096);

    (void)state;
    anchor_rpc_server_free(W.srv);
    anchor_rpc_server_opts_init(&o);
    o.max_recv_message_size = 1024;
    start_server(&o);
    cl = unix_client();
    memset(big, 'a', 4095);
    big[4095] = '\0';
    unary(cl, "/test.Echo/Unary", big, 0, &r);
    unary(cl, "/test.Echo/Unary", "small", 0, &ok);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_RESOURCE_EXHAUSTED);
    assert_int_equal(ok.status, ANCHOR_RPC_OK);
    free(big);
    anchor_rpc_client_free(cl);
}

static void test_client_max_recv(void **state)
{
    struct anchor_rpc_client_opts o = {0};
    struct anchor_rpc_client *cl;
    struct anchor_err err;
    struct result r = {0};
    char big[3000];

    (void)state;
    o.max_recv_message_size = 100;
    assert_int_equal(anchor_rpc_client_connect_unix(&cl, W.base, W.sock, &o, &err), 0);
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    unary(cl, "/test.Echo/Unary", big, 0, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_RESOURCE_EXHAUSTED);
    assert_int_equal(r.n_msgs, 0);
    anchor_rpc_client_free(cl);
}

static void test_tls_unary_exporter(void **state)
{
    struct anchor_rpc_client *cl = tls_client(W.cctx);
    const struct anchor_rpc_peer *p;
    struct result r = {0};
    X509 *leaf;
    char uri[128] = "";

    (void)state;
    unary(cl, "/test.Echo/Unary", "over tls", 1000, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    assert_string_equal(r.msgs[0], "over tls");
    assert_int_equal(W.peer.transport, ANCHOR_RPC_TRANSPORT_TLS);
    assert_true(W.peer.has_exporter);
    assert_true(W.has_chain);
    assert_false(W.peer.has_creds);
    p = anchor_rpc_client_peer(cl);
    assert_true(p->has_exporter);
    /* Both ends derive the same RFC 9266 value. */
    assert_memory_equal(p->exporter, W.srv_exporter, ANCHOR_RPC_EXPORTER_LEN);
    assert_non_null(p->chain);
    leaf = sk_X509_value(p->chain, 0);
    {
        GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
        for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
            if (g->type == GEN_URI)
                snprintf(uri, sizeof(uri), "%s",
                         (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier));
        }
        GENERAL_NAMES_free(names);
    }
    assert_string_equal(uri, "spiffe://example.org/server");
    anchor_rpc_client_free(cl);
}

static void test_tls_stream_and_push(void **state)
{
    struct anchor_rpc_client *cl = tls_client(W.cctx);
    struct result r = {0}, p = {0};

    (void)state;
    unary(cl, "/test.Echo/Stream", "7", 0, &r);
    unary(cl, "/test.Echo/Push", "", 0, &p);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    assert_int_equal(r.n_msgs, 7);
    assert_int_equal(p.status, ANCHOR_RPC_OK);
    assert_int_equal(p.n_msgs, 3);
    anchor_rpc_client_free(cl);
}

static int closes;
static char close_why[256];

static void on_close(struct anchor_rpc_client *cl, const char *why)
{
    (void)cl;
    closes++;
    snprintf(close_why, sizeof(close_why), "%s", why);
}

static void test_tls_untrusted_server(void **state)
{
    struct hp_cert_opts o = {0};
    EVP_PKEY *k = hp_key_fresh(HP_EC_P256, 0);
    X509 *other;
    SSL_CTX *ctx;
    struct anchor_rpc_client_opts co = {0};
    struct anchor_rpc_client *cl;
    struct anchor_err err;
    struct result r = {0};

    (void)state;
    o.ca = 1;
    o.cn = "another CA";
    other = hp_cert(&o, k, NULL, NULL);
    ctx = make_ctx(0, other, NULL, NULL);
    co.on_close = on_close;
    closes = 0;
    assert_int_equal(anchor_rpc_client_connect_tls(&cl, W.base, "127.0.0.1", W.port, ctx,
                                                   "localhost", &co, &err),
                     0);
    unary(cl, "/test.Echo/Unary", "x", 0, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_UNAVAILABLE);
    assert_int_equal(closes, 1);
    assert_non_null(strstr(close_why, "certificate verify failed"));
    assert_false(anchor_rpc_client_is_ready(cl));
    /* A client without a certificate is refused by the server. */
    anchor_rpc_client_free(cl);
    SSL_CTX_free(ctx);
    X509_free(other);
    EVP_PKEY_free(k);
}

static void test_tls_no_client_cert(void **state)
{
    struct hp_cert_opts o = {0};
    SSL_CTX *ctx;
    struct anchor_rpc_client *cl;
    struct result r = {0};
    X509_STORE *st = SSL_CTX_get_cert_store(W.sctx);
    X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(X509_STORE_get0_objects(st), 0));

    (void)state;
    (void)o;
    ctx = make_ctx(0, ca, NULL, NULL);
    cl = tls_client(ctx);
    unary(cl, "/test.Echo/Unary", "x", 0, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_UNAVAILABLE);
    anchor_rpc_client_free(cl);
    SSL_CTX_free(ctx);
}

static void on_shutdown_done(struct anchor_rpc_server *srv)
{
    (void)srv;
    W.shutdown_done++;
}

static void test_graceful_shutdown(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    struct result r = {0}, late = {0};
    struct anchor_err err;

    (void)state;
    unary(cl, "/test.Echo/Push", "", 0, &r);
    run_for(2);
    anchor_rpc_server_shutdown(W.srv, on_shutdown_done);
    /* The push in flight finishes; the socket file is gone. */
    run();
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    assert_int_equal(r.n_msgs, 3);
    run_for(50);
    assert_int_equal(W.shutdown_done, 1);
    assert_int_equal(anchor_rpc_server_connection_count(W.srv), 0);
    assert_int_not_equal(access(W.sock, F_OK), 0);
    assert_int_not_equal(
        anchor_rpc_client_call_start(NULL, cl, "/test.Echo/Unary", NULL, 0, 0, &cbs, &late, &err),
        0);
    anchor_rpc_client_free(cl);
}

static void test_max_connections(void **state)
{
    struct anchor_rpc_server_opts o;
    struct anchor_rpc_client *a, *b;
    struct result ra = {0}, rb = {0};

    (void)state;
    anchor_rpc_server_free(W.srv);
    anchor_rpc_server_opts_init(&o);
    o.max_connections = 1;
    start_server(&o);
    a = unix_client();
    unary(a, "/test.Echo/Unary", "a", 0, &ra);
    run();
    b = unix_client();
    unary(b, "/test.Echo/Unary", "b", 0, &rb);
    run();
    assert_int_equal(ra.status, ANCHOR_RPC_OK);
    assert_int_equal(rb.status, ANCHOR_RPC_UNAVAILABLE);
    assert_int_equal(anchor_rpc_server_connection_count(W.srv), 1);
    anchor_rpc_client_free(a);
    anchor_rpc_client_free(b);
}

static int raw_connect(void)
{
    struct sockaddr_un sun = {0};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", W.sock);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    return fd;
}

static void test_handshake_timeout(void **state)
{
    struct anchor_rpc_server_opts o;
    int fd;

    (void)state;
    anchor_rpc_server_free(W.srv);
    anchor_rpc_server_opts_init(&o);
    o.handshake_timeout_ms = 50;
    start_server(&o);
    fd = raw_connect();
    run_for(20);
    assert_int_equal(anchor_rpc_server_connection_count(W.srv), 1);
    run_for(100);
    /* Said nothing: closed. */
    assert_int_equal(anchor_rpc_server_connection_count(W.srv), 0);
    close(fd);
}

static void test_garbage_preface(void **state)
{
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct anchor_rpc_client *cl;
    struct result r = {0};
    char buf[256];
    int fd = raw_connect();
    ssize_t n;

    (void)state;
    assert_int_equal(write(fd, junk, sizeof(junk) - 1), (ssize_t)(sizeof(junk) - 1));
    run_for(30);
    assert_int_equal(anchor_rpc_server_connection_count(W.srv), 0);
    /* The server's SETTINGS may have gone out before it read the junk; then
     * the socket is closed. */
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        ;
    assert_int_equal(n, 0);
    close(fd);
    cl = unix_client();
    unary(cl, "/test.Echo/Unary", "still up", 0, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    anchor_rpc_client_free(cl);
}

static void test_idle_timeout(void **state)
{
    struct anchor_rpc_server_opts o;
    struct anchor_rpc_client_opts co = {0};
    struct anchor_rpc_client *cl;
    struct anchor_err err;
    struct result r = {0};

    (void)state;
    anchor_rpc_server_free(W.srv);
    anchor_rpc_server_opts_init(&o);
    o.idle_timeout_ms = 50;
    start_server(&o);
    co.on_close = on_close;
    closes = 0;
    assert_int_equal(anchor_rpc_client_connect_unix(&cl, W.base, W.sock, &co, &err), 0);
    unary(cl, "/test.Echo/Unary", "x", 0, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    run_for(200);
    assert_int_equal(anchor_rpc_server_connection_count(W.srv), 0);
    assert_int_equal(closes, 1);
    anchor_rpc_client_free(cl);
}

static void test_send_queue_bound(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    struct result r = {0};

    (void)state;
    /* The handler fills its queue in one go: send fails at the bound. */
    unary(cl, "/test.Echo/Flood", "", 0, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    assert_true(r.n_msgs > 1);
    anchor_rpc_client_free(cl);
}

static void test_connect_refused(void **state)
{
    struct anchor_rpc_client *cl = NULL;
    struct anchor_err err;
    char path[160];

    (void)state;
    snprintf(path, sizeof(path), "%s/none.sock", W.dir);
    assert_int_not_equal(anchor_rpc_client_connect_unix(&cl, W.base, path, NULL, &err), 0);
    assert_null(cl);
    assert_non_null(strstr(anchor_err_msg(&err), "cannot connect"));
}

static void test_register_errors(void **state)
{
    struct anchor_err err;
    struct anchor_rpc_method m = methods[0];

    (void)state;
    assert_int_not_equal(anchor_rpc_server_register(W.srv, &m, &err), 0);
    assert_non_null(strstr(anchor_err_msg(&err), "already registered"));
    m.path = "noslash";
    assert_int_not_equal(anchor_rpc_server_register(W.srv, &m, &err), 0);
    m.path = "/x.Y/Z";
    m.on_call = NULL;
    assert_int_not_equal(anchor_rpc_server_register(W.srv, &m, &err), 0);
}

static void test_shutdown_grace_expires(void **state)
{
    struct anchor_rpc_server_opts o;
    struct anchor_rpc_client *cl;
    struct result r = {0};

    (void)state;
    anchor_rpc_server_free(W.srv);
    anchor_rpc_server_opts_init(&o);
    o.shutdown_grace_ms = 50;
    start_server(&o);
    cl = unix_client();
    unary(cl, "/test.Echo/Hang", "", 0, &r);
    run_for(20);
    anchor_rpc_server_shutdown(W.srv, on_shutdown_done);
    run();
    /* The hanging call is cut at the end of the grace period. */
    assert_int_equal(r.status, ANCHOR_RPC_UNAVAILABLE);
    assert_int_equal(W.cancels, 1);
    assert_int_equal(W.cancel_why, ANCHOR_RPC_UNAVAILABLE);
    run_for(10);
    assert_int_equal(W.shutdown_done, 1);
    anchor_rpc_client_free(cl);
}

static void test_server_free_cancels(void **state)
{
    struct anchor_rpc_client *cl = unix_client();
    struct result r = {0};

    (void)state;
    unary(cl, "/test.Echo/Hang", "", 0, &r);
    run_for(20);
    anchor_rpc_server_free(W.srv);
    W.srv = NULL;
    assert_int_equal(W.cancels, 1);
    assert_int_equal(W.cancel_why, ANCHOR_RPC_UNAVAILABLE);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_UNAVAILABLE);
    anchor_rpc_client_free(cl);
}

static void test_listen_fd(void **state)
{
    struct sockaddr_un sun = {0};
    struct anchor_rpc_client *cl;
    struct anchor_err err;
    struct result r = {0};
    char path[100];
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    (void)state;
    snprintf(path, sizeof(path), "%s/fd.sock", W.dir);
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(anchor_rpc_server_listen_fd(W.srv, fd, NULL, &err), 0);
    assert_int_equal(anchor_rpc_client_connect_unix(&cl, W.base, path, NULL, &err), 0);
    unary(cl, "/test.Echo/Unary", "via fd", 0, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    assert_true(W.peer.has_creds);
    anchor_rpc_client_free(cl);
    unlink(path);
}

static int connects;

static void on_connect(struct anchor_rpc_client *cl)
{
    (void)cl;
    connects++;
}

static void test_on_connect_then_calls(void **state)
{
    struct anchor_rpc_client_opts o = {0};
    struct anchor_rpc_client *cl;
    struct anchor_err err;
    struct result r = {0};

    (void)state;
    o.on_connect = on_connect;
    connects = 0;
    assert_int_equal(anchor_rpc_client_connect_tls(&cl, W.base, "127.0.0.1", W.port, W.cctx,
                                                   "localhost", &o, &err),
                     0);
    assert_false(anchor_rpc_client_is_ready(cl));
    /* A call started before the handshake waits for it. */
    unary(cl, "/test.Echo/Stream", "2", 0, &r);
    run();
    assert_int_equal(connects, 1);
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    assert_int_equal(r.n_msgs, 2);
    anchor_rpc_client_free(cl);
}

static void free_in_done(struct anchor_rpc_server *srv)
{
    anchor_rpc_server_free(srv);
    W.srv = NULL;
    W.shutdown_done++;
}

static struct anchor_rpc_client *freed_client;

static void free_on_close(struct anchor_rpc_client *cl, const char *why)
{
    (void)why;
    assert_ptr_equal(cl, freed_client);
    anchor_rpc_client_free(cl);
    freed_client = NULL;
}

/* The owners free from the callbacks meant for it: the server from
 * shutdown's done, the client from on_close. */
static void test_free_from_callbacks(void **state)
{
    struct anchor_rpc_client_opts co = {0};
    struct anchor_err err;
    struct result r = {0};

    (void)state;
    co.on_close = free_on_close;
    assert_int_equal(anchor_rpc_client_connect_unix(&freed_client, W.base, W.sock, &co, &err), 0);
    unary(freed_client, "/test.Echo/Unary", "x", 0, &r);
    run();
    assert_int_equal(r.status, ANCHOR_RPC_OK);
    anchor_rpc_server_shutdown(W.srv, free_in_done);
    run_for(100);
    assert_int_equal(W.shutdown_done, 1);
    assert_null(W.srv);
    assert_null(freed_client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_unix_unary),
        T(test_unix_many_unary),
        T(test_unix_server_stream),
        T(test_unix_push_later),
        T(test_bidi_and_client_stream),
        T(test_error_status),
        T(test_deadline),
        T(test_client_cancel),
        T(test_client_free_cancels),
        T(test_message_too_large),
        T(test_client_max_recv),
        T(test_tls_unary_exporter),
        T(test_tls_stream_and_push),
        T(test_tls_untrusted_server),
        T(test_tls_no_client_cert),
        T(test_graceful_shutdown),
        T(test_max_connections),
        T(test_handshake_timeout),
        T(test_garbage_preface),
        T(test_idle_timeout),
        T(test_send_queue_bound),
        T(test_connect_refused),
        T(test_register_errors),
        T(test_shutdown_grace_expires),
        T(test_server_free_cancels),
        T(test_listen_fd),
        T(test_on_connect_then_calls),
        T(test_free_from_callbacks),
#undef T
    };

    signal(SIGPIPE, SIG_IGN);
    /* A hang (a blocking socket in the loop...) ends the program rather
     * than the test run. */
    alarm(120);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
