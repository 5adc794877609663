/*
 * interop_client: libanchor's rpc client running the interop cases of
 * cases.py against any Echo server (proto/interop_echo.proto): python3-grpcio,
 * @grpc/grpc-js, or libanchor's own interop_server.
 *
 *   interop_client (--unix PATH | --tls HOST:PORT --ca F [--cert F --key F]
 *                   [--server-name NAME]) [--max-recv BYTES] --cases FILE
 *
 * FILE is a JSON list of cases (a case of kind "sleep" just lets the loop run
 * for timeout_ms); the cases run one after the other on one
 * connection (a new one is made if the last one closed), and each prints one
 * JSON result line in the form cases.py describes. Exits 0 once every case
 * has a result, whatever the statuses: judging them is the tests' job. A
 * last line named "__client_peer__" tells how the client saw the server
 * (URI SAN of its certificate, RFC 9266 exporter). --max-recv is the largest
 * response message accepted (16 MiB here, the library's default is 4 MiB).
 */
#include "anchor/rpc.h"
#include "interop_echo.pb-c.h"
#include "peer_util.h"

#include <event2/event.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct runner {
    struct event_base *base;
    struct anchor_rpc_client *client;
    int client_dead;
    /* how to connect */
    const char *unix_path, *host, *sni;
    size_t max_recv;
    uint16_t port;
    SSL_CTX *ctx;
    /* the cases */
    json_t *cases;
    size_t next;
    /* the case running */
    json_t *out, *replies;
    const char *kind;
    uint8_t **reqs;
    size_t *req_lens;
    size_t n_reqs, sent;
    struct anchor_rpc_client_call *cc;
    uint64_t started;
    int ended; /* the running case has its result (the call is gone) */
};

static void start_next(evutil_socket_t fd, short what, void *arg);

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* [[name, value]...] with -bin values in hex. */
static json_t *md_json(const struct anchor_rpc_md *md, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < n; i++) {
        json_t *v;

        if (ends_with(md[i].name, "-bin")) {
            char *hex = peer_hex(md[i].value, md[i].value_len);

            v = hex ? json_string(hex) : NULL;
            free(hex);
        } else {
            v = peer_json_text(md[i].value, md[i].value_len);
        }
        json_array_append_new(arr, json_pack("[so]", md[i].name, v ? v : json_null()));
    }
    return arr;
}

/* ------------------------------------------------------------ requests */

static int64_t int_field(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static const char *str_field(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s ? s : "";
}

/* Packs the EchoRequest a case's request object describes into a new
 * buffer (*len bytes), or returns NULL. */
static uint8_t *pack_request(json_t *r, size_t *len)
{
    Anchor__Interop__EchoRequest req = ANCHOR__INTEROP__ECHO_REQUEST__INIT;
    json_t *keys = json_object_get(r, "echo_keys");
    char *key_ptrs[32];
    size_t plen = (size_t)int_field(r, "payload_len");
    uint8_t *payload = malloc(plen ? plen : 1);
    uint8_t *buf = NULL;

    if (payload == NULL)
        return NULL;
    for (size_t i = 0; i < plen; i++)
        payload[i] = (uint8_t)(i % 251);
    req.text = (char *)str_field(r, "text");
    req.count = (int32_t)int_field(r, "count");
    req.delay_ms = (int32_t)int_field(r, "delay_ms");
    req.status = (int32_t)int_field(r, "status");
    req.status_message = (char *)str_field(r, "status_message");
    req.payload.data = payload;
    req.payload.len = plen;
    for (size_t i = 0; i < json_array_size(keys) && i < 32; i++)
        key_ptrs[req.n_echo_keys++] = (char *)json_string_value(json_array_get(keys, i));
    req.echo_keys = key_ptrs;
    *len = anchor__interop__echo_request__get_packed_size(&req);
    buf = malloc(*len ? *len : 1);
    if (buf != NULL)
        anchor__interop__echo_request__pack(&req, buf);
    free(payload);
    return buf;
}

/* ----------------------------------------------------------- callbacks */

static void on_headers(struct anchor_rpc_client_call *cc, const struct anchor_rpc_md *md, size_t n)
{
    struct runner *r = anchor_rpc_client_call_data(cc);

    json_object_set_new(r->out, "initial_metadata", md_json(md, n));
}

static void send_next_or_close(struct runner *r)
{
    struct anchor_err err;

    if (r->ended)
        return;
    if (r->sent < r->n_reqs) {
        if (anchor_rpc_client_call_send(r->cc, r->reqs[r->sent], r->req_lens[r->sent], &err) != 0)
            fprintf(stderr, "send: %s\n", anchor_err_msg(&err));
        r->sent++;
    } else if (anchor_rpc_client_call_close_send(r->cc, &err) != 0) {
        fprintf(stderr, "close_send: %s\n", anchor_err_msg(&err));
    }
}

static void on_message(struct anchor_rpc_client_call *cc, const uint8_t *msg, size_t len)
{
    struct runner *r = anchor_rpc_client_call_data(cc);
    Anchor__Interop__EchoReply *rep = anchor__interop__echo_reply__unpack(NULL, len, msg);
    uint8_t digest[SHA256_DIGEST_LENGTH];
    json_t *o, *md;
    char *hex;

    if (rep == NULL) {
        json_array_append_new(r->replies, json_pack("{s:b}", "unparsable", 1));
    } else {
        md = json_array();
        for (size_t i = 0; i < rep->n_metadata; i++)
            json_array_append_new(
                md, json_pack("[ss]", rep->metadata[i]->key, rep->metadata[i]->value));
        SHA256(rep->payload.data, rep->payload.len, digest);
        hex = peer_hex(digest, sizeof(digest));
        o = json_pack("{s:o,s:i,s:o,s:I,s:s}", "text", peer_json_text(rep->text, strlen(rep->text)),
                      "index", (int)rep->index, "metadata", md, "payload_len",
                      (json_int_t)rep->payload.len, "payload_sha256", hex ? hex : "");
        json_array_append_new(r->replies, o);
        free(hex);
        anchor__interop__echo_reply__free_unpacked(rep, NULL);
    }
    /* Bidi ping-pong: the next request goes out once a reply came. */
    if (strcmp(r->kind, "bidi") == 0)
        send_next_or_close(r);
}

static void free_case(struct runner *r)
{
    for (size_t i = 0; i < r->n_reqs; i++)
        free(r->reqs[i]);
    free(r->reqs);
    free(r->req_lens);
    r->reqs = NULL;
    r->req_lens = NULL;
    r->n_reqs = r->sent = 0;
    json_decref(r->out);
    r->out = r->replies = NULL;
    r->cc = NULL;
    r->ended = 0;
}

static void emit(struct runner *r, int code, const char *message, json_t *trailers)
{
    struct timeval now = {0, 0};

    json_object_set_new(r->out, "code", json_integer(code));
    json_object_set_new(r->out, "message", peer_json_text(message, strlen(message)));
    json_object_set_new(r->out, "trailing_metadata", trailers ? trailers : json_array());
    json_object_set_new(r->out, "elapsed_ms",
                        json_integer((json_int_t)(peer_now_ms() - r->started)));
    json_dumpf(r->out, stdout, JSON_COMPACT);
    printf("\n");
    fflush(stdout);
    r->ended = 1;
    r->cc = NULL;
    /* The next case starts from the loop, outside this call's callbacks (it
     * frees this case's state first: start_case may still be on the stack). */
    event_base_once(r->base, -1, EV_TIMEOUT, start_next, r, &now);
}

static void on_status(struct anchor_rpc_client_call *cc, enum anchor_rpc_status status,
                      const char *message, const struct anchor_rpc_md *trailers, size_t n)
{
    struct runner *r = anchor_rpc_client_call_data(cc);

    emit(r, (int)status, message, md_json(trailers, n));
}

static void on_close(struct anchor_rpc_client *client, const char *why)
{
    struct runner *r = anchor_rpc_client_data(client);

    fprintf(stderr, "connection closed: %s\n", why ? why : "");
    r->client_dead = 1;
}

/* ----------------------------------------------------------------- run */

static int connect_client(struct runner *r, struct anchor_err *err)
{
    struct anchor_rpc_client_opts opts = {0};

    opts.max_recv_message_size = r->max_recv;
    opts.on_close = on_close;
    if (r->unix_path != NULL) {
        if (anchor_rpc_client_connect_unix(&r->client, r->base, r->unix_path, &opts, err) != 0)
            return -1;
    } else {
        opts.authority = r->sni;
        if (anchor_rpc_client_connect_tls(&r->client, r->base, r->host, r->port, r->ctx, r->sni,
                                          &opts, err) != 0)
            return -1;
    }
    anchor_rpc_client_set_data(r->client, r);
    r->client_dead = 0;
    return 0;
}

static int start_case(struct runner *r, json_t *c, struct anchor_err *err)
{
    static const struct anchor_rpc_client_call_cbs cbs = {on_headers, on_message, on_status};
    json_t *reqs = json_object_get(c, "requests");
    json_t *mdj = json_object_get(c, "metadata");
    struct anchor_rpc_md md[16];
    uint8_t *md_bufs[16] = {0};
    size_t n_md = 0;
    const char *method = str_field(c, "method");
    uint32_t timeout = (uint32_t)int_field(c, "timeout_ms");
    int rc = -1;

    r->kind = str_field(c, "kind");
    r->n_reqs = json_array_size(reqs) ? json_array_size(reqs) : 1;
    r->reqs = calloc(r->n_reqs, sizeof(*r->reqs));
    r->req_lens = calloc(r->n_reqs, sizeof(*r->req_lens));
    if (r->reqs == NULL || r->req_lens == NULL) {
        anchor_err_set(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r->n_reqs; i++) {
        json_t *empty = json_object();

        r->reqs[i] =
            pack_request(json_array_size(reqs) ? json_array_get(reqs, i) : empty, &r->req_lens[i]);
        json_decref(empty);
        if (r->reqs[i] == NULL) {
            anchor_err_set(err, "cannot pack request");
            goto out;
        }
    }
    for (size_t i = 0; i < json_array_size(mdj) && n_md < 16; i++, n_md++) {
        const char *k = json_string_value(json_array_get(json_array_get(mdj, i), 0));
        const char *v = json_string_value(json_array_get(json_array_get(mdj, i), 1));

        md[n_md].name = k;
        md[n_md].value = v;
        md[n_md].value_len = strlen(v);
        if (ends_with(k, "-bin")) {
            md_bufs[n_md] = peer_unhex(v, &md[n_md].value_len);
            md[n_md].value = (const char *)md_bufs[n_md];
        }
    }
    r->started = peer_now_ms();
    if (strcmp(r->kind, "unary") == 0 || strcmp(r->kind, "server_stream") == 0) {
        if (anchor_rpc_client_unary(&r->cc, r->client, method, md, n_md, r->reqs[0], r->req_lens[0],
                                    timeout, &cbs, r, err) != 0)
            goto out;
        r->sent = 1;
    } else {
        if (anchor_rpc_client_call_start(&r->cc, r->client, method, md, n_md, timeout, &cbs, r,
                                         err) != 0)
            goto out;
        if (strcmp(r->kind, "bidi") == 0) {
            send_next_or_close(r);
        } else { /* client_stream, bidi_burst: everything, then half-close */
            while (r->sent < r->n_reqs && !r->ended)
                send_next_or_close(r);
            send_next_or_close(r); /* half-close */
        }
    }
    rc = 0;
out:
    for (size_t i = 0; i < n_md; i++)
        free(md_bufs[i]);
    return rc;
}

static void sleep_done(evutil_socket_t fd, short what, void *arg)
{
    struct runner *r = arg;

    (void)fd;
    (void)what;
    emit(r, 0, "", NULL);
}

/* The last line: the server as this client saw it (the URI SAN of its
 * verified leaf, the RFC 9266 exporter), to compare with the server's view. */
static void print_peer(struct runner *r)
{
    const struct anchor_rpc_peer *peer;
    json_t *o;
    char *uri = NULL, *hex = NULL;

    if (r->client == NULL || !anchor_rpc_client_is_ready(r->client))
        return;
    peer = anchor_rpc_client_peer(r->client);
    if (peer->chain != NULL && sk_X509_num(peer->chain) > 0)
        uri = peer_uri_san(sk_X509_value(peer->chain, 0));
    if (peer->has_exporter)
        hex = peer_hex(peer->exporter, sizeof(peer->exporter));
    o = json_pack("{s:s,s:s?,s:s?,s:b}", "name", "__client_peer__", "server_uri", uri, "exporter",
                  hex, "tls", peer->ssl != NULL);
    json_dumpf(o, stdout, JSON_COMPACT);
    printf("\n");
    fflush(stdout);
    json_decref(o);
    free(uri);
    free(hex);
}

static void start_next(evutil_socket_t fd, short what, void *arg)
{
    struct runner *r = arg;
    struct anchor_err err;
    json_t *c;

    (void)fd;
    (void)what;
    free_case(r);
    if (r->next >= json_array_size(r->cases)) {
        print_peer(r);
        event_base_loopexit(r->base, NULL);
        return;
    }
    c = json_array_get(r->cases, r->next++);
    r->out = json_pack("{s:O,s:[],s:[],s:[]}", "name", json_object_get(c, "name"), "replies",
                       "initial_metadata", "trailing_metadata");
    r->replies = json_object_get(r->out, "replies");
    r->started = peer_now_ms();
    if (r->client_dead) {
        anchor_rpc_client_free(r->client);
        r->client = NULL;
        if (connect_client(r, &err) != 0) {
            emit(r, ANCHOR_RPC_UNAVAILABLE, anchor_err_msg(&err), NULL);
            return;
        }
    }
    if (strcmp(str_field(c, "kind"), "sleep") == 0) {
        /* Not a call: the loop runs idle for timeout_ms (to see what the
         * library sends on its own meanwhile), then the result is OK. */
        struct timeval tv = {0, 0};
        int64_t ms = int_field(c, "timeout_ms");

        tv.tv_sec = (time_t)(ms / 1000);
        tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
        r->ended = 1;
        event_base_once(r->base, -1, EV_TIMEOUT, sleep_done, r, &tv);
        return;
    }
    if (start_case(r, c, &err) != 0) {
        /* No callback will come: report the local failure as the result. */
        json_object_set_new(r->out, "local_error", json_string(anchor_err_msg(&err)));
        emit(r, -1, anchor_err_msg(&err), NULL);
    }
}

int main(int argc, char **argv)
{
    struct runner r = {0};
    struct anchor_err err;
    json_error_t jerr;
    const char *ca = NULL, *cert = NULL, *key = NULL, *cases = NULL, *tls = NULL;
    char host[256] = "";
    struct timeval now = {0, 0};
    int rc = 1;

    signal(SIGPIPE, SIG_IGN);
    r.max_recv = 16u << 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--unix") == 0)
            r.unix_path = argv[i + 1];
        else if (strcmp(argv[i], "--tls") == 0)
            tls = argv[i + 1];
        else if (strcmp(argv[i], "--ca") == 0)
            ca = argv[i + 1];
        else if (strcmp(argv[i], "--cert") == 0)
            cert = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            key = argv[i + 1];
        else if (strcmp(argv[i], "--server-name") == 0)
            r.sni = argv[i + 1];
        else if (strcmp(argv[i], "--cases") == 0)
            cases = argv[i + 1];
        else if (strcmp(argv[i], "--max-recv") == 0)
            r.max_recv = strtoul(argv[i + 1], NULL, 10);
    }
    if (cases == NULL || (r.unix_path == NULL) == (tls == NULL) || (tls != NULL && ca == NULL)) {
        fprintf(stderr, "usage: interop_client (--unix PATH | --tls HOST:PORT --ca F "
                        "[--cert F --key F] [--server-name N]) --cases FILE\n");
        return 2;
    }
    if (tls != NULL) {
        const char *colon = strrchr(tls, ':');

        if (colon == NULL || (size_t)(colon - tls) >= sizeof(host)) {
            fprintf(stderr, "--tls wants HOST:PORT\n");
            return 2;
        }
        memcpy(host, tls, (size_t)(colon - tls));
        r.host = host;
        r.port = (uint16_t)strtoul(colon + 1, NULL, 10);
        if (r.sni == NULL)
            r.sni = host;
        r.ctx = peer_tls_client_ctx(ca, r.sni, cert, key);
        if (r.ctx == NULL)
            return 1;
    }
    r.cases = json_load_file(cases, 0, &jerr);
    if (!json_is_array(r.cases)) {
        fprintf(stderr, "%s: %s\n", cases, jerr.text);
        goto out;
    }
    r.base = event_base_new();
    if (r.base == NULL)
        goto out;
    if (connect_client(&r, &err) != 0) {
        fprintf(stderr, "connect: %s\n", anchor_err_msg(&err));
        goto out;
    }
    event_base_once(r.base, -1, EV_TIMEOUT, start_next, &r, &now);
    if (event_base_dispatch(r.base) != 0)
        goto out;
    rc = 0;
out:
    anchor_rpc_client_free(r.client);
    free_case(&r);
    json_decref(r.cases);
    SSL_CTX_free(r.ctx);
    if (r.base != NULL)
        event_base_free(r.base);
    return rc;
}
