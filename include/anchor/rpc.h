/*
 * gRPC over HTTP/2: the transport every anchor conversation runs on.
 *
 * A server (anchor_rpc_server) listens on unix sockets (plain HTTP/2 with
 * prior knowledge) and on TCP with TLS 1.3 (from an SSL_CTX the caller
 * configured), all on one libevent event_base. Handlers are registered by
 * full method path ("/pkg.Service/Method"). Messages reach handlers as raw
 * bytes: protobuf (un)packing is the caller's job, so this module depends on
 * no particular .proto.
 *
 * A client (anchor_rpc_client) is one HTTP/2 connection to one server, over a
 * unix socket or TCP+TLS. Reconnecting and back-off are the caller's choice:
 * when the connection dies, every call on it ends with UNAVAILABLE and the
 * caller frees the client and makes a new one when it wants.
 *
 * Thread model: single-threaded. Every function of this header must be called
 * from the thread that runs the event_base the object was made with, and every
 * callback runs on that thread, from inside event_base_dispatch/loop. No
 * function blocks, except that anchor_rpc_client_connect_tcp resolves the host
 * name with getaddrinfo (use a numeric address to avoid it).
 *
 * Ownership (STYLE.md, libuv style): the caller owns the server, the client
 * and the calls it starts, and frees them; a callback is never called after
 * the function that would have arranged it returned an error; every handle
 * carries a `void *data` for its owner (anchor_rpc_*_set_data / _data).
 * Errors follow anchor/common.h: 0 on success, -1 with the detail in `err`.
 *
 * The wire (gRPC PROTOCOL-HTTP2): 5-byte length-prefixed messages
 * (compressed flag 0; a compressed message is refused with UNIMPLEMENTED),
 * content-type application/grpc (application/grpc+proto accepted; anything
 * else is answered with HTTP 415), status in trailers (grpc-status,
 * percent-encoded grpc-message), Trailers-Only responses for early errors,
 * grpc-timeout deadlines. docs/rpc.md lists the limits, their defaults and
 * the status each one produces.
 */
#ifndef ANCHOR_RPC_H
#define ANCHOR_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "anchor/common.h"

struct event_base;

/* --- status codes (gRPC doc/statuscodes.md) -------------------------------- */

enum anchor_rpc_status {
    ANCHOR_RPC_OK = 0,
    ANCHOR_RPC_CANCELLED = 1,
    ANCHOR_RPC_UNKNOWN = 2,
    ANCHOR_RPC_INVALID_ARGUMENT = 3,
    ANCHOR_RPC_DEADLINE_EXCEEDED = 4,
    ANCHOR_RPC_NOT_FOUND = 5,
    ANCHOR_RPC_ALREADY_EXISTS = 6,
    ANCHOR_RPC_PERMISSION_DENIED = 7,
    ANCHOR_RPC_RESOURCE_EXHAUSTED = 8,
    ANCHOR_RPC_FAILED_PRECONDITION = 9,
    ANCHOR_RPC_ABORTED = 10,
    ANCHOR_RPC_OUT_OF_RANGE = 11,
    ANCHOR_RPC_UNIMPLEMENTED = 12,
    ANCHOR_RPC_INTERNAL = 13,
    ANCHOR_RPC_UNAVAILABLE = 14,
    ANCHOR_RPC_DATA_LOSS = 15,
    ANCHOR_RPC_UNAUTHENTICATED = 16,
};

/* The canonical upper-case name of a status ("DEADLINE_EXCEEDED"), or
 * "UNKNOWN" for a value outside 0..16. Never NULL. */
ANCHOR_API const char *anchor_rpc_status_name(int status);

/* The RFC 9266 tls-exporter channel binding is this many bytes. */
#define ANCHOR_RPC_EXPORTER_LEN 32

/* --- metadata --------------------------------------------------------------- */

/*
 * One header (gRPC "metadata"). The name is lower case and NUL-terminated.
 * The value is value_len bytes followed by a NUL (not counted) so that text
 * values can be used as C strings. Values of "-bin" headers are
 * base64-decoded on receipt and base64-encoded on sending, as gRPC requires,
 * so here they are the raw bytes.
 */
struct anchor_rpc_md {
    const char *name;
    const char *value;
    size_t value_len;
};

/* The first entry of md[0..n) named `name` (lower case), or NULL. */
ANCHOR_API const struct anchor_rpc_md *anchor_rpc_md_find(const struct anchor_rpc_md *md, size_t n,
                                                          const char *name);

/* --- server ------------------------------------------------------------------ */

struct anchor_rpc_server;
struct anchor_rpc_call;

/*
 * Limits of a server. anchor_rpc_server_opts_init() fills the defaults given
 * in brackets; 0 in a field means "the default" too, so a zeroed struct is
 * valid. Every limit, and what a peer that exceeds it gets, is in docs/rpc.md.
 */
struct anchor_rpc_server_opts {
    /* Largest request message accepted, in bytes [4 MiB]. A larger one ends
     * the call with RESOURCE_EXHAUSTED before its body is buffered. */
    size_t max_recv_message_size;
    /* Largest response message a handler may send [4 MiB]; a larger send
     * fails (the call goes on). */
    size_t max_send_message_size;
    /* SETTINGS_MAX_CONCURRENT_STREAMS advertised per connection [100].
     * gRPC clients queue calls beyond it. A peer that opens more streams
     * anyway breaks RFC 9113 5.1.2: before it acknowledged our SETTINGS the
     * extra stream gets RST_STREAM(REFUSED_STREAM); after, nghttp2 ends the
     * connection with GOAWAY(PROTOCOL_ERROR) and the calls on it are
     * cancelled (handlers get on_cancel CANCELLED). */
    uint32_t max_concurrent_streams;
    /* SETTINGS_MAX_HEADER_LIST_SIZE advertised [16 KiB] (RFC 9113 6.5.2
     * size: names + values + 32 per field, pseudo-headers included). A
     * larger request header block is answered Trailers-Only
     * RESOURCE_EXHAUSTED "request header list too large"; the part beyond
     * the limit is decoded but not stored. */
    uint32_t max_header_list_size;
    /* Connections open at once, over all listeners [1024]. Excess
     * connections are closed right after accept. */
    size_t max_connections;
    /* Milliseconds from accept until the connection completed its TLS
     * handshake (TLS listeners) and sent its first complete request headers
     * [10000]; else the connection is closed (slowloris). */
    uint32_t handshake_timeout_ms;
    /* Milliseconds a connection may stay without any open stream before the
     * server sends GOAWAY and closes it [300000]. */
    uint32_t idle_timeout_ms;
    /* Bytes a connection may hold in its output buffer; above it the server
     * stops reading from that peer until the buffer drains [256 KiB]. */
    size_t max_output_buffer;
    /* Bytes of response messages queued on one call and not yet written;
     * anchor_rpc_call_send fails above it [8 MiB]. */
    size_t max_call_send_queue;
    /* Milliseconds anchor_rpc_server_shutdown waits for calls in flight
     * before it cancels them [30000]. */
    uint32_t shutdown_grace_ms;
    /* Bytes one connection may hold in request messages still arriving, over
     * all its streams [16 MiB]. A message that would go beyond ends its call
     * with RESOURCE_EXHAUSTED ("connection receive buffer full"), so that
     * many streams with large partial messages cannot add up. */
    size_t max_connection_recv_buffer;
};

/* Fills opts with the defaults. */
ANCHOR_API void anchor_rpc_server_opts_init(struct anchor_rpc_server_opts *opts);

/* Makes a server on `base` with the limits in opts (NULL: defaults). The
 * caller frees it with anchor_rpc_server_free. */
ANCHOR_API ANCHOR_WUR int anchor_rpc_server_new(struct anchor_rpc_server **out,
                                                struct event_base *base,
                                                const struct anchor_rpc_server_opts *opts,
                                                struct anchor_err *err);

/* Cancels every call in flight (each handler gets on_cancel with
 * UNAVAILABLE), closes every connection and listener (a unix listener's
 * socket file is unlinked) and frees the server. Accepts NULL. Must not be
 * called from inside one of the server's callbacks. */
ANCHOR_API void anchor_rpc_server_free(struct anchor_rpc_server *srv);

ANCHOR_API void anchor_rpc_server_set_data(struct anchor_rpc_server *srv, void *data);
ANCHOR_API void *anchor_rpc_server_data(const struct anchor_rpc_server *srv);

/* The four gRPC call shapes. */
enum anchor_rpc_kind {
    ANCHOR_RPC_UNARY = 0,
    ANCHOR_RPC_SERVER_STREAMING = 1,
    ANCHOR_RPC_CLIENT_STREAMING = 2,
    ANCHOR_RPC_BIDI_STREAMING = 3,
};

/*
 * A method's handler.
 *
 * on_call (required) starts the call:
 *   UNARY, SERVER_STREAMING: once the single request message and the end of
 *     the request stream arrived; msg/len is that message (len may be 0). A
 *     request with no message or with two is answered INTERNAL by the
 *     library, and on_call is not called.
 *   CLIENT_STREAMING, BIDI_STREAMING: when the request headers arrived; msg
 *     is NULL and len 0; the messages follow through on_message, then
 *     on_half_close.
 * on_message: one request message (streaming requests only). msg is valid
 *   until the callback returns.
 * on_half_close: the client finished sending (streaming requests only).
 * on_cancel: the call ended before the handler finished it: the peer reset
 *   the stream or closed the connection (CANCELLED), the deadline passed
 *   (DEADLINE_EXCEEDED; the library has sent that status), a request message
 *   was too large or malformed (RESOURCE_EXHAUSTED, INTERNAL; sent too), or
 *   the server was freed (UNAVAILABLE). The handler drops its state; the call
 *   is freed when on_cancel returns. May be NULL for handlers that always
 *   finish a call before on_call returns.
 *
 * The call is valid from on_call until the handler's anchor_rpc_call_finish
 * returns or on_cancel returns, whichever comes first; only one of the two
 * happens. The handler may answer from inside on_call or later (from a timer,
 * another call's callback...), and may keep a server-streaming call open as
 * long as it likes, pushing messages with anchor_rpc_call_send.
 */
struct anchor_rpc_method {
    const char *path; /* "/pkg.Service/Method", copied by register */
    enum anchor_rpc_kind kind;
    void (*on_call)(struct anchor_rpc_call *call, const uint8_t *msg, size_t len);
    void (*on_message)(struct anchor_rpc_call *call, const uint8_t *msg, size_t len);
    void (*on_half_close)(struct anchor_rpc_call *call);
    void (*on_cancel)(struct anchor_rpc_call *call, enum anchor_rpc_status why);
    void *data; /* reachable from each call with anchor_rpc_call_method_data */
};

/* Registers a method (the struct is copied). Fails if the path is already
 * registered or does not begin with '/'. A request for a path that is not
 * registered is answered UNIMPLEMENTED. */
ANCHOR_API ANCHOR_WUR int anchor_rpc_server_register(struct anchor_rpc_server *srv,
                                                     const struct anchor_rpc_method *method,
                                                     struct anchor_err *err);

/* Listens on a unix socket at path (a stale socket file there is removed
 * first; mode, if non-zero, is applied with chmod). Plain HTTP/2 with prior
 * knowledge; every connection's peer credentials are taken with SO_PEERCRED
 * at accept. */
ANCHOR_API ANCHOR_WUR int anchor_rpc_server_listen_unix(struct anchor_rpc_server *srv,
                                                        const char *path, mode_t mode,
                                                        struct anchor_err *err);

/* Listens on TCP host:port (host NULL: all addresses; a numeric address or a
 * name resolved with getaddrinfo; port 0: any free port) with TLS. The
 * server takes a reference on ctx and sets on it: minimum version TLS 1.3
 * and the ALPN selection of "h2" (a client that offers ALPN without h2 is
 * refused). Certificate, key, client-certificate policy and verification
 * callback are the caller's. *port_out (if not NULL) receives the bound
 * port. */
ANCHOR_API ANCHOR_WUR int anchor_rpc_server_listen_tls(struct anchor_rpc_server *srv,
                                                       const char *host, uint16_t port,
                                                       SSL_CTX *ctx, uint16_t *port_out,
                                                       struct anchor_err *err);

/* Serves an already bound and listening socket fd (unix or TCP; the server
 * takes ownership of fd, also on failure). ctx NULL: plain HTTP/2, with
 * SO_PEERCRED taken for AF_UNIX; otherwise TLS as in listen_tls. Useful for
 * socket activation and tests. */
ANCHOR_API ANCHOR_WUR int anchor_rpc_server_listen_fd(struct anchor_rpc_server *srv, int fd,
                                                      SSL_CTX *ctx, struct anchor_err *err);

/* Graceful shutdown: closes the listeners, sends GOAWAY on every connection,
 * lets the calls in flight finish (those still open after
 * shutdown_grace_ms are cancelled with UNAVAILABLE), closes each connection
 * once its calls ended, then calls done(srv) (may be NULL) once no connection
 * remains. The caller still frees the server, typically from done. */
ANCHOR_API void anchor_rpc_server_shutdown(struct anchor_rpc_server *srv,
                                           void (*done)(struct anchor_rpc_server *srv));

/* Connections currently open (for tests and metrics). */
ANCHOR_API size_t anchor_rpc_server_connection_count(const struct anchor_rpc_server *srv);

/* --- server: the call a handler serves --------------------------------------- */

/* How a connection reached the server. */
enum anchor_rpc_transport {
    ANCHOR_RPC_TRANSPORT_UNIX = 1, /* unix socket, plain HTTP/2 */
    ANCHOR_RPC_TRANSPORT_TLS = 2,  /* TCP with TLS 1.3 */
    ANCHOR_RPC_TRANSPORT_TCP = 3,  /* TCP without TLS (listen_fd with ctx NULL) */
    ANCHOR_RPC_TRANSPORT_MEM = 4,  /* in-memory connection (tests, fuzzing) */
};

/*
 * The peer of a connection. Valid as long as the call it came from.
 *   has_creds: pid, uid, gid were read with SO_PEERCRED when the unix
 *     connection was accepted (the process that connected, not a later
 *     holder of the socket).
 *   ssl: the TLS session (borrowed), NULL without TLS.
 *   chain: the verified peer chain, leaf first (SSL_get0_verified_chain;
 *     borrowed), NULL when the peer sent no certificate or without TLS.
 *   exporter: RFC 9266 tls-exporter (label "EXPORTER-Channel-Binding",
 *     32 bytes, empty context) when has_exporter.
 *   addr: printable remote address ("unix", "192.0.2.1:4433", "[::1]:4433").
 */
struct anchor_rpc_peer {
    enum anchor_rpc_transport transport;
    int has_creds;
    pid_t pid;
    uid_t uid;
    gid_t gid;
    SSL *ssl;
    STACK_OF(X509) * chain;
    int has_exporter;
    uint8_t exporter[ANCHOR_RPC_EXPORTER_LEN];
    char addr[64];
};

/* The method's full path ("/pkg.Service/Method"). */
ANCHOR_API const char *anchor_rpc_call_path(const struct anchor_rpc_call *call);
/* The `data` of the method's registration. */
ANCHOR_API void *anchor_rpc_call_method_data(const struct anchor_rpc_call *call);
ANCHOR_API void anchor_rpc_call_set_data(struct anchor_rpc_call *call, void *data);
ANCHOR_API void *anchor_rpc_call_data(const struct anchor_rpc_call *call);
ANCHOR_API struct anchor_rpc_server *anchor_rpc_call_server(const struct anchor_rpc_call *call);

/* The request headers, pseudo-headers (":path"...) excluded, in the order
 * received; *n receives their count. Includes content-type, te, user-agent,
 * grpc-timeout and every custom header (e.g. "workload.spiffe.io"). Valid
 * for the call's life. */
ANCHOR_API const struct anchor_rpc_md *anchor_rpc_call_metadata(const struct anchor_rpc_call *call,
                                                                size_t *n);
/* The value of request header `name` (lower case) or NULL; *len (if not
 * NULL) receives its length. */
ANCHOR_API const char *anchor_rpc_call_header(const struct anchor_rpc_call *call, const char *name,
                                              size_t *len);

/* The call's deadline, in milliseconds of CLOCK_MONOTONIC, from grpc-timeout;
 * 0 when the client set none. The library enforces it (on_cancel with
 * DEADLINE_EXCEEDED). */
ANCHOR_API uint64_t anchor_rpc_call_deadline_ms(const struct anchor_rpc_call *call);

/* The connection's peer (never NULL). */
ANCHOR_API const struct anchor_rpc_peer *anchor_rpc_call_peer(const struct anchor_rpc_call *call);

/* Adds a response header (before the first send) or trailer (before finish).
 * Names are lower case, must not start with ':' or "grpc-"; values of names
 * ending "-bin" are base64-encoded here. Fails after the headers went out
 * (add_header) or on a bad name. */
ANCHOR_API ANCHOR_WUR int anchor_rpc_call_add_header(struct anchor_rpc_call *call, const char *name,
                                                     const void *value, size_t value_len,
                                                     struct anchor_err *err);
ANCHOR_API ANCHOR_WUR int anchor_rpc_call_add_trailer(struct anchor_rpc_call *call,
                                                      const char *name, const void *value,
                                                      size_t value_len, struct anchor_err *err);

/* Queues one response message (the response headers go first, once). The
 * bytes are copied. Fails when msg is larger than max_send_message_size,
 * when the call's queue holds more than max_call_send_queue bytes (the peer
 * does not read: the handler may retry later or finish the call), or when
 * the call is a unary or client-streaming call that already sent its one
 * message. Failing leaves the call open. */
ANCHOR_API ANCHOR_WUR int anchor_rpc_call_send(struct anchor_rpc_call *call, const uint8_t *msg,
                                               size_t len, struct anchor_err *err);

/* Bytes of response messages queued on the call and not yet written. */
ANCHOR_API size_t anchor_rpc_call_send_queued(const struct anchor_rpc_call *call);

/* Ends the call with status and message (NULL: none; UTF-8 text, sent
 * percent-encoded in grpc-message) after the queued messages. When nothing
 * was sent yet and status is not OK, the response is Trailers-Only. After
 * this the handler must not use call again, and on_cancel is not called. A
 * unary call finished OK without a message is turned into INTERNAL as the
 * gRPC spec requires of a unary response. */
ANCHOR_API void anchor_rpc_call_finish(struct anchor_rpc_call *call, enum anchor_rpc_status status,
                                       const char *message);

/* --- client ------------------------------------------------------------------ */

struct anchor_rpc_client;
struct anchor_rpc_client_call;

/* Options of a client connection; a zeroed struct takes the defaults in
 * brackets. */
struct anchor_rpc_client_opts {
    /* Largest response message accepted [4 MiB]; a larger one ends the call
     * with RESOURCE_EXHAUSTED. */
    size_t max_recv_message_size;
    /* SETTINGS_MAX_HEADER_LIST_SIZE advertised [16 KiB]. */
    uint32_t max_header_list_size;
    /* Milliseconds for TCP connect + TLS handshake [10000]. */
    uint32_t connect_timeout_ms;
    /* :authority of requests [the host, or "localhost" for unix sockets]. */
    const char *authority;
    /* The connection is ready (handshake done: the exporter is available).
     * Optional; calls may be started before. */
    void (*on_connect)(struct anchor_rpc_client *client);
    /* The connection closed or failed (every call on it has already ended
     * with UNAVAILABLE or another status); `why` says why. Optional. The
     * caller still frees the client. */
    void (*on_close)(struct anchor_rpc_client *client, const char *why);
};

/* Connects to a unix socket (plain HTTP/2, prior knowledge). The connection
 * is made in the background; calls may be started at once. The caller frees
 * the client with anchor_rpc_client_free. */
ANCHOR_API ANCHOR_WUR int anchor_rpc_client_connect_unix(struct anchor_rpc_client **out,
                                                         struct event_base *base, const char *path,
                                                         const struct anchor_rpc_client_opts *opts,
                                                         struct anchor_err *err);

/* Connects to host:port over TCP with TLS from ctx. host is a numeric
 * address or a name resolved with getaddrinfo (the first address is
 * tried). The caller configured ctx's verification: trust store, verify
 * callback checking, e.g., the server's SPIFFE ID. The client sets ALPN "h2"
 * and, when sni is not NULL, the SNI host name on its SSL object, and
 * requires TLS 1.3. The handshake runs in the background; a failed handshake
 * ends every call with UNAVAILABLE and on_close gets the TLS reason. */
ANCHOR_API ANCHOR_WUR int
anchor_rpc_client_connect_tls(struct anchor_rpc_client **out, struct event_base *base,
                              const char *host, uint16_t port, SSL_CTX *ctx, const char *sni,
                              const struct anchor_rpc_client_opts *opts, struct anchor_err *err);

/* Ends every call still open (each gets on_status CANCELLED with message
 * "client closed", so per-call state is dropped in one place), closes the
 * connection and frees the client. Accepts NULL. May be called from
 * on_close and on_connect, not from a call's callbacks. After freeing the
 * last object of a base, run the loop once (EVLOOP_NONBLOCK) before
 * event_base_free: libevent finishes TLS bufferevents lazily. */
ANCHOR_API void anchor_rpc_client_free(struct anchor_rpc_client *client);

ANCHOR_API void anchor_rpc_client_set_data(struct anchor_rpc_client *client, void *data);
ANCHOR_API void *anchor_rpc_client_data(const struct anchor_rpc_client *client);

/* 1 once the connection is ready (TLS handshake done), else 0. */
ANCHOR_API int anchor_rpc_client_is_ready(const struct anchor_rpc_client *client);

/* The server's peer information (ssl, verified chain, exporter) once
 * ready; before, a peer with transport set and nothing else. */
ANCHOR_API const struct anchor_rpc_peer *
anchor_rpc_client_peer(const struct anchor_rpc_client *client);

/*
 * Callbacks of a client call. All optional.
 * on_headers: the response headers arrived (not called for a Trailers-Only
 *   response).
 * on_message: one response message; valid until the callback returns.
 * on_status: the call ended, with the status, the decoded grpc-message
 *   (never NULL, "" when none) and the trailers. The call is freed when
 *   on_status returns. Local failures have statuses too: deadline
 *   (DEADLINE_EXCEEDED), connection lost or refused (UNAVAILABLE), response
 *   too large (RESOURCE_EXHAUSTED), malformed response (INTERNAL).
 */
struct anchor_rpc_client_call_cbs {
    void (*on_headers)(struct anchor_rpc_client_call *cc, const struct anchor_rpc_md *md, size_t n);
    void (*on_message)(struct anchor_rpc_client_call *cc, const uint8_t *msg, size_t len);
    void (*on_status)(struct anchor_rpc_client_call *cc, enum anchor_rpc_status status,
                      const char *message, const struct anchor_rpc_md *trailers, size_t n);
};

/* Starts a call of `path` with custom request headers md[0..n_md) (lower-case
 * names; "-bin" values are base64-encoded here) and a timeout in
 * milliseconds (0: none; sent as grpc-timeout and enforced locally). The
 * request stream stays open: send messages with _send, end it with
 * _close_send. Fails once the connection closed or the server sent GOAWAY
 * (make a new client then). On failure no callback is ever called. `data` is the call's
 * user pointer. The call belongs to the library: it is freed after on_status
 * returns or by _cancel. */
ANCHOR_API ANCHOR_WUR int
anchor_rpc_client_call_start(struct anchor_rpc_client_call **out, struct anchor_rpc_client *client,
                             const char *path, const struct anchor_rpc_md *md, size_t n_md,
                             uint32_t timeout_ms, const struct anchor_rpc_client_call_cbs *cbs,
                             void *data, struct anchor_err *err);

/* A unary or server-streaming call: _start, one _send of msg, _close_send.
 * *out (if out is not NULL) receives the call, e.g. to cancel it. */
ANCHOR_API ANCHOR_WUR int anchor_rpc_client_unary(struct anchor_rpc_client_call **out,
                                                  struct anchor_rpc_client *client,
                                                  const char *path, const struct anchor_rpc_md *md,
                                                  size_t n_md, const uint8_t *msg, size_t len,
                                                  uint32_t timeout_ms,
                                                  const struct anchor_rpc_client_call_cbs *cbs,
                                                  void *data, struct anchor_err *err);

/* Queues one request message (copied). Fails after _close_send or once the
 * call ended. */
ANCHOR_API ANCHOR_WUR int anchor_rpc_client_call_send(struct anchor_rpc_client_call *cc,
                                                      const uint8_t *msg, size_t len,
                                                      struct anchor_err *err);

/* Ends the request stream (half-close) after the queued messages. */
ANCHOR_API ANCHOR_WUR int anchor_rpc_client_call_close_send(struct anchor_rpc_client_call *cc,
                                                            struct anchor_err *err);

/* Cancels the call (RST_STREAM CANCEL) and frees it at once: no callback of
 * it is called afterwards. Must not be called from inside this call's
 * on_status. */
ANCHOR_API void anchor_rpc_client_call_cancel(struct anchor_rpc_client_call *cc);

ANCHOR_API void anchor_rpc_client_call_set_data(struct anchor_rpc_client_call *cc, void *data);
ANCHOR_API void *anchor_rpc_client_call_data(const struct anchor_rpc_client_call *cc);
ANCHOR_API struct anchor_rpc_client *
anchor_rpc_client_call_client(const struct anchor_rpc_client_call *cc);

#endif
