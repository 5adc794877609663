/*
 * interop_server: the Echo service of proto/interop_echo.proto served by
 * libanchor's rpc module, for the interop and abuse tests (test_*.py here),
 * which point python3-grpcio and @grpc/grpc-js clients and hand-built HTTP/2
 * frames at it.
 *
 *   interop_server [--unix PATH] [--tls-port N [--tls-host H] --cert F --key F
 *                  [--ca F]]
 *                  [--max-recv B] [--max-streams N] [--max-connections N]
 *                  [--handshake-timeout-ms N] [--idle-timeout-ms N]
 *                  [--max-output-buffer B] [--max-call-send-queue B]
 *                  [--grace-ms N]
 *
 * TLS listens on 127.0.0.1 unless --tls-host says otherwise (e.g. ::1).
 * Prints one JSON line {"ready":true,"pid":..,"unix":..,"port":..} once it
 * listens, serves until SIGTERM or SIGINT, then shuts down gracefully (calls
 * in flight finish) and exits 0.
 */
#include "anchor/rpc.h"
#include "interop_echo.pb-c.h"
#include "peer_util.h"

#include <event2/event.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------- replies */

/* Packs reply and sends it on call; 0 on success. A refused send (the
 * peer's queue is full) is reported to the caller, who retries later. */
static int send_reply(struct anchor_rpc_call *call, const Anchor__Interop__EchoReply *reply)
{
    size_t n = anchor__interop__echo_reply__get_packed_size(reply);
    uint8_t *buf = malloc(n ? n : 1);
    struct anchor_err err;
    int rc;

    if (buf == NULL)
        return -1;
    anchor__interop__echo_reply__pack(reply, buf);
    rc = anchor_rpc_call_send(call, buf, n, &err);
    free(buf);
    return rc;
}

static Anchor__Interop__EchoRequest *parse_request(struct anchor_rpc_call *call, const uint8_t *msg,
                                                   size_t len)
{
    Anchor__Interop__EchoRequest *req = anchor__interop__echo_request__unpack(NULL, len, msg);

    if (req == NULL)
        anchor_rpc_call_finish(call, ANCHOR_RPC_INVALID_ARGUMENT, "malformed EchoRequest");
    return req;
}

/* ------------------------------------------------------- timed handlers */

/* State of Echo (with a delay) and Count: a timer that answers later. */
struct timed {
    struct anchor_rpc_call *call;
    struct event *timer;
    Anchor__Interop__EchoRequest *req;
    int32_t next; /* Count: index of the next reply */
    int unary;
};

static void timed_free(struct timed *t)
{
    if (t == NULL)
        return;
    if (t->timer != NULL)
        event_free(t->timer);
    anchor__interop__echo_request__free_unpacked(t->req, NULL);
    free(t);
}

static void timed_arm(struct timed *t, int32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    evtimer_add(t->timer, &tv);
}

static void timed_fire(evutil_socket_t fd, short what, void *arg)
{
    struct timed *t = arg;
    Anchor__Interop__EchoReply reply = ANCHOR__INTEROP__ECHO_REPLY__INIT;
    char text[512];

    (void)fd;
    (void)what;
    if (t->unary) {
        reply.text = t->req->text;
        reply.payload = t->req->payload;
        if (send_reply(t->call, &reply) != 0) {
            anchor_rpc_call_finish(t->call, ANCHOR_RPC_INTERNAL, "send failed");
        } else {
            anchor_rpc_call_finish(t->call, ANCHOR_RPC_OK, NULL);
        }
        timed_free(t);
        return;
    }
    /* Count: one reply per tick with a delay, else as many as the call's
     * queue takes; a full queue (the peer stopped reading) is retried
     * later, so the server holds a bounded amount per call. */
    while (t->next < t->req->count) {
        snprintf(text, sizeof(text), "%s-%d", t->req->text, t->next);
        reply.text = text;
        reply.index = t->next;
        reply.payload = t->req->payload;
        if (send_reply(t->call, &reply) != 0) {
            timed_arm(t, 5);
            return;
        }
        t->next++;
        if (t->req->delay_ms > 0 && t->next < t->req->count) {
            timed_arm(t, t->req->delay_ms);
            return;
        }
    }
    anchor_rpc_call_finish(t->call, ANCHOR_RPC_OK, NULL);
    timed_free(t);
}

static void timed_cancel(struct anchor_rpc_call *call, enum anchor_rpc_status why)
{
    (void)why;
    timed_free(anchor_rpc_call_data(call));
}

static void timed_start(struct anchor_rpc_call *call, const uint8_t *msg, size_t len, int unary)
{
    struct event_base *base = anchor_rpc_server_data(anchor_rpc_call_server(call));
    struct timed *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    t->call = call;
    t->unary = unary;
    t->req = parse_request(call, msg, len);
    if (t->req == NULL) {
        free(t);
        return;
    }
    t->timer = evtimer_new(base, timed_fire, t);
    if (t->timer == NULL) {
        timed_free(t);
        anchor_rpc_call_finish(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    anchor_rpc_call_set_data(call, t);
    timed_arm(t, t->req->delay_ms > 0 ? t->req->delay_ms : 0);
}

static void on_echo(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    timed_start(call, msg, len, 1);
}

static void on_count(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    timed_start(call, msg, len, 0);
}

/* ------------------------------------------------------ stream handlers */

/* State of Chat and Collect. */
struct streamed {
    int32_t seen;
    char *joined; /* Collect: texts joined by "," */
};

static void streamed_cancel(struct anchor_rpc_call *call, enum anchor_rpc_status why)
{
    struct streamed *s = anchor_rpc_call_data(call);

    (void)why;
    if (s != NULL)
        free(s->joined);
    free(s);
}

static void on_stream_call(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct streamed *s = calloc(1, sizeof(*s));

    (void)msg;
    (void)len;
    if (s == NULL || (s->joined = strdup("")) == NULL) {
        free(s);
        anchor_rpc_call_finish(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    anchor_rpc_call_set_data(call, s);
}

static void finish_stream(struct anchor_rpc_call *call, enum anchor_rpc_status st, const char *m)
{
    streamed_cancel(call, st);
    anchor_rpc_call_finish(call, st, m);
}

static void on_chat_message(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct streamed *s = anchor_rpc_call_data(call);
    Anchor__Interop__EchoRequest *req = anchor__interop__echo_request__unpack(NULL, len, msg);
    Anchor__Interop__EchoReply reply = ANCHOR__INTEROP__ECHO_REPLY__INIT;
    int rc;

    if (req == NULL) {
        finish_stream(call, ANCHOR_RPC_INVALID_ARGUMENT, "malformed EchoRequest");
        return;
    }
    reply.text = req->text;
    reply.index = s->seen++;
    rc = send_reply(call, &reply);
    anchor__interop__echo_request__free_unpacked(req, NULL);
    if (rc != 0)
        finish_stream(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, "reply queue full");
}

static void on_chat_half_close(struct anchor_rpc_call *call)
{
    finish_stream(call, ANCHOR_RPC_OK, NULL);
}

static void on_collect_message(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct streamed *s = anchor_rpc_call_data(call);
    Anchor__Interop__EchoRequest *req = anchor__interop__echo_request__unpack(NULL, len, msg);
    size_t old, add;
    char *grown;

    if (req == NULL) {
        finish_stream(call, ANCHOR_RPC_INVALID_ARGUMENT, "malformed EchoRequest");
        return;
    }
    old = strlen(s->joined);
    add = strlen(req->text);
    grown = realloc(s->joined, old + add + 2);
    if (grown == NULL) {
        anchor__interop__echo_request__free_unpacked(req, NULL);
        finish_stream(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    s->joined = grown;
    if (s->seen++ > 0)
        strcat(s->joined, ",");
    strcat(s->joined, req->text);
    anchor__interop__echo_request__free_unpacked(req, NULL);
}

static void on_collect_half_close(struct anchor_rpc_call *call)
{
    struct streamed *s = anchor_rpc_call_data(call);
    Anchor__Interop__EchoReply reply = ANCHOR__INTEROP__ECHO_REPLY__INIT;

    reply.text = s->joined;
    reply.index = s->seen;
    if (send_reply(call, &reply) != 0) {
        finish_stream(call, ANCHOR_RPC_INTERNAL, "send failed");
        return;
    }
    finish_stream(call, ANCHOR_RPC_OK, NULL);
}

/* --------------------------------------------------- immediate handlers */

static void on_fail(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    Anchor__Interop__EchoRequest *req = parse_request(call, msg, len);
    Anchor__Interop__EchoReply reply = ANCHOR__INTEROP__ECHO_REPLY__INIT;

    if (req == NULL)
        return;
    if (req->status == 0 && send_reply(call, &reply) != 0) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "send failed");
    } else {
        anchor_rpc_call_finish(call, (enum anchor_rpc_status)req->status, req->status_message);
    }
    anchor__interop__echo_request__free_unpacked(req, NULL);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void on_metadata(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    Anchor__Interop__EchoRequest *req = parse_request(call, msg, len);
    Anchor__Interop__EchoReply reply = ANCHOR__INTEROP__ECHO_REPLY__INIT;
    Anchor__Interop__Pair pairs[16];
    Anchor__Interop__Pair *pp[16];
    char *owned[16] = {0};
    size_t n_md = 0, np = 0;
    const struct anchor_rpc_md *md;
    struct anchor_err err;
    enum anchor_rpc_status st = ANCHOR_RPC_OK;
    const char *why = NULL;

    if (req == NULL)
        return;
    md = anchor_rpc_call_metadata(call, &n_md);
    for (size_t k = 0; k < req->n_echo_keys && st == ANCHOR_RPC_OK; k++) {
        const char *key = req->echo_keys[k];
        char trailer[256];

        for (size_t i = 0; i < n_md && st == ANCHOR_RPC_OK; i++) {
            if (strcmp(md[i].name, key) != 0)
                continue;
            snprintf(trailer, sizeof(trailer), "trailer-%s", key);
            if (np == 16 ||
                anchor_rpc_call_add_header(call, key, md[i].value, md[i].value_len, &err) != 0 ||
                anchor_rpc_call_add_trailer(call, trailer, md[i].value, md[i].value_len, &err) !=
                    0) {
                st = ANCHOR_RPC_INTERNAL;
                why = np == 16 ? "too many headers" : anchor_err_msg(&err);
                break;
            }
            anchor__interop__pair__init(&pairs[np]);
            pairs[np].key = (char *)key;
            if (ends_with(key, "-bin")) {
                owned[np] = peer_hex(md[i].value, md[i].value_len);
                pairs[np].value = owned[np] ? owned[np] : "";
            } else {
                pairs[np].value = (char *)md[i].value;
            }
            pp[np] = &pairs[np];
            np++;
        }
    }
    if (st == ANCHOR_RPC_OK) {
        reply.n_metadata = np;
        reply.metadata = pp;
        if (send_reply(call, &reply) != 0) {
            st = ANCHOR_RPC_INTERNAL;
            why = "send failed";
        }
    }
    anchor_rpc_call_finish(call, st, why);
    for (size_t i = 0; i < np; i++)
        free(owned[i]);
    anchor__interop__echo_request__free_unpacked(req, NULL);
}

static const char *transport_name(enum anchor_rpc_transport t)
{
    switch (t) {
    case ANCHOR_RPC_TRANSPORT_UNIX:
        return "unix";
    case ANCHOR_RPC_TRANSPORT_TLS:
        return "tls";
    case ANCHOR_RPC_TRANSPORT_TCP:
        return "tcp";
    case ANCHOR_RPC_TRANSPORT_MEM:
        return "mem";
    }
    return "unknown";
}

static void on_peer(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    const struct anchor_rpc_peer *peer = anchor_rpc_call_peer(call);
    Anchor__Interop__EchoReply reply = ANCHOR__INTEROP__ECHO_REPLY__INIT;
    Anchor__Interop__Pair pairs[10];
    Anchor__Interop__Pair *pp[10];
    char vals[10][96];
    char *uri = NULL;
    size_t n = 0;

    (void)msg;
    (void)len;
#define ADD(k, ...)                                                                                \
    do {                                                                                           \
        anchor__interop__pair__init(&pairs[n]);                                                    \
        snprintf(vals[n], sizeof(vals[n]), __VA_ARGS__);                                           \
        pairs[n].key = (k);                                                                        \
        pairs[n].value = vals[n];                                                                  \
        pp[n] = &pairs[n];                                                                         \
        n++;                                                                                       \
    } while (0)
    ADD("transport", "%s", transport_name(peer->transport));
    ADD("addr", "%s", peer->addr);
    if (peer->has_creds) {
        ADD("pid", "%ld", (long)peer->pid);
        ADD("uid", "%ld", (long)peer->uid);
        ADD("gid", "%ld", (long)peer->gid);
    }
    if (peer->chain != NULL && sk_X509_num(peer->chain) > 0 &&
        (uri = peer_uri_san(sk_X509_value(peer->chain, 0))) != NULL)
        ADD("peer_uri", "%s", uri);
    ADD("exporter_len", "%d", peer->has_exporter ? ANCHOR_RPC_EXPORTER_LEN : 0);
    if (peer->has_exporter) {
        char *hex = peer_hex(peer->exporter, sizeof(peer->exporter));

        ADD("exporter", "%s", hex ? hex : "");
        free(hex);
    }
    ADD("connections", "%zu", anchor_rpc_server_connection_count(anchor_rpc_call_server(call)));
#undef ADD
    free(uri);
    reply.n_metadata = n;
    reply.metadata = pp;
    if (send_reply(call, &reply) != 0) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "send failed");
        return;
    }
    anchor_rpc_call_finish(call, ANCHOR_RPC_OK, NULL);
}

/* Not in the proto: a unary handler that finishes OK without a response
 * message, which the library must turn into INTERNAL (docs/rpc.md). */
static void on_no_reply(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    (void)msg;
    (void)len;
    anchor_rpc_call_finish(call, ANCHOR_RPC_OK, NULL);
}

/* ---------------------------------------------------------------- main */

static const struct anchor_rpc_method METHODS[] = {
    {"/anchor.interop.Echo/Echo", ANCHOR_RPC_UNARY, on_echo, NULL, NULL, timed_cancel, NULL},
    {"/anchor.interop.Echo/Count", ANCHOR_RPC_SERVER_STREAMING, on_count, NULL, NULL, timed_cancel,
     NULL},
    {"/anchor.interop.Echo/Chat", ANCHOR_RPC_BIDI_STREAMING, on_stream_call, on_chat_message,
     on_chat_half_close, streamed_cancel, NULL},
    {"/anchor.interop.Echo/Collect", ANCHOR_RPC_CLIENT_STREAMING, on_stream_call,
     on_collect_message, on_collect_half_close, streamed_cancel, NULL},
    {"/anchor.interop.Echo/Fail", ANCHOR_RPC_UNARY, on_fail, NULL, NULL, NULL, NULL},
    {"/anchor.interop.Echo/Metadata", ANCHOR_RPC_UNARY, on_metadata, NULL, NULL, NULL, NULL},
    {"/anchor.interop.Echo/Peer", ANCHOR_RPC_UNARY, on_peer, NULL, NULL, NULL, NULL},
    {"/anchor.interop.Test/NoReply", ANCHOR_RPC_UNARY, on_no_reply, NULL, NULL, NULL, NULL},
};

struct args {
    const char *unix_path, *cert, *key, *ca, *tls_host;
    long tls_port; /* -1: no TLS listener */
    struct anchor_rpc_server_opts opts;
};

static int parse_args(int argc, char **argv, struct args *a)
{
    a->tls_port = -1;
    a->tls_host = "127.0.0.1";
    anchor_rpc_server_opts_init(&a->opts);
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (v == NULL) {
            fprintf(stderr, "%s needs a value\n", k);
            return -1;
        }
        i++;
        if (strcmp(k, "--unix") == 0)
            a->unix_path = v;
        else if (strcmp(k, "--tls-port") == 0)
            a->tls_port = strtol(v, NULL, 10);
        else if (strcmp(k, "--tls-host") == 0)
            a->tls_host = v;
        else if (strcmp(k, "--cert") == 0)
            a->cert = v;
        else if (strcmp(k, "--key") == 0)
            a->key = v;
        else if (strcmp(k, "--ca") == 0)
            a->ca = v;
        else if (strcmp(k, "--max-recv") == 0)
            a->opts.max_recv_message_size = strtoul(v, NULL, 10);
        else if (strcmp(k, "--max-streams") == 0)
            a->opts.max_concurrent_streams = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "--max-connections") == 0)
            a->opts.max_connections = strtoul(v, NULL, 10);
        else if (strcmp(k, "--handshake-timeout-ms") == 0)
            a->opts.handshake_timeout_ms = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "--idle-timeout-ms") == 0)
            a->opts.idle_timeout_ms = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "--max-output-buffer") == 0)
            a->opts.max_output_buffer = strtoul(v, NULL, 10);
        else if (strcmp(k, "--max-call-send-queue") == 0)
            a->opts.max_call_send_queue = strtoul(v, NULL, 10);
        else if (strcmp(k, "--grace-ms") == 0)
            a->opts.shutdown_grace_ms = (uint32_t)strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "unknown option %s\n", k);
            return -1;
        }
    }
    if (a->unix_path == NULL && a->tls_port < 0) {
        fprintf(stderr, "usage: interop_server [--unix PATH] [--tls-port N --cert F --key F]\n");
        return -1;
    }
    if (a->tls_port > 65535 || (a->tls_port >= 0 && (a->cert == NULL || a->key == NULL))) {
        fprintf(stderr, "--tls-port needs a port, --cert and --key\n");
        return -1;
    }
    return 0;
}

static void on_shutdown_done(struct anchor_rpc_server *srv)
{
    event_base_loopexit(anchor_rpc_server_data(srv), NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    anchor_rpc_server_shutdown(arg, on_shutdown_done);
}

int main(int argc, char **argv)
{
    struct args a = {0};
    struct anchor_err err;
    struct event_base *base = NULL;
    struct anchor_rpc_server *srv = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    SSL_CTX *ctx = NULL;
    uint16_t port = 0;
    json_t *ready = NULL;
    int rc = 1;

    signal(SIGPIPE, SIG_IGN);
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    base = event_base_new();
    if (base == NULL || anchor_rpc_server_new(&srv, base, &a.opts, &err) != 0) {
        fprintf(stderr, "server: %s\n", base ? anchor_err_msg(&err) : "event_base_new failed");
        goto out;
    }
    anchor_rpc_server_set_data(srv, base);
    for (size_t i = 0; i < sizeof(METHODS) / sizeof(METHODS[0]); i++) {
        if (anchor_rpc_server_register(srv, &METHODS[i], &err) != 0) {
            fprintf(stderr, "register %s: %s\n", METHODS[i].path, anchor_err_msg(&err));
            goto out;
        }
    }
    if (a.unix_path != NULL && anchor_rpc_server_listen_unix(srv, a.unix_path, 0600, &err) != 0) {
        fprintf(stderr, "listen %s: %s\n", a.unix_path, anchor_err_msg(&err));
        goto out;
    }
    if (a.tls_port >= 0) {
        ctx = peer_tls_server_ctx(a.cert, a.key, a.ca);
        if (ctx == NULL)
            goto out;
        if (anchor_rpc_server_listen_tls(srv, a.tls_host, (uint16_t)a.tls_port, ctx, &port, &err) !=
            0) {
            fprintf(stderr, "listen tls: %s\n", anchor_err_msg(&err));
            goto out;
        }
    }
    sigterm = evsignal_new(base, SIGTERM, on_signal, srv);
    sigint = evsignal_new(base, SIGINT, on_signal, srv);
    if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0) {
        fprintf(stderr, "signals: cannot install handlers\n");
        goto out;
    }
    ready = json_pack("{s:b,s:I,s:s?,s:I}", "ready", 1, "pid", (json_int_t)getpid(), "unix",
                      a.unix_path, "port", (json_int_t)port);
    if (ready == NULL || json_dumpf(ready, stdout, JSON_COMPACT) != 0)
        goto out;
    printf("\n");
    fflush(stdout);
    if (event_base_dispatch(base) != 0)
        goto out;
    rc = 0;
out:
    json_decref(ready);
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    anchor_rpc_server_free(srv);
    SSL_CTX_free(ctx);
    if (base != NULL)
        event_base_free(base);
    return rc;
}
