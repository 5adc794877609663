/*
 * Internals of the gRPC module (include/anchor/rpc.h), shared by its files:
 *
 *   frame.c        the 5-byte length prefix and an incremental message reader
 *   status.c       status names, grpc-message percent-encoding, HTTP mapping
 *   timeout.c      grpc-timeout parsing and encoding
 *   md.c           metadata lists (the "-bin" base64 rule)
 *   io.c           one HTTP/2 connection's byte pump: bufferevent or memory
 *                  in, nghttp2 in the middle, a bounded output buffer out
 *   tls.c          ALPN, TLS 1.3, RFC 9266 exporter, peer chain
 *   server.c       the server object, registration, shutdown
 *   listener.c     unix and TLS listeners, accepting
 *   server_conn.c  a server connection: nghttp2 callbacks, call dispatch
 *   server_call.c  the handler's side of a call
 *   client.c       a client connection
 *   client_call.c  a client call
 *
 * Not a public header.
 */
#ifndef ANCHOR_RPC_INTERNAL_H
#define ANCHOR_RPC_INTERNAL_H

#include <stdint.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>

#include "anchor/rpc.h"

/* --- defaults (docs/rpc.md) ----------------------------------------------- */

#define ANCHOR__RPC_DEF_MAX_MESSAGE     (4u * 1024u * 1024u)
#define ANCHOR__RPC_DEF_MAX_STREAMS     100u
#define ANCHOR__RPC_DEF_MAX_HEADER_LIST (16u * 1024u)
#define ANCHOR__RPC_DEF_MAX_CONNECTIONS 1024u
#define ANCHOR__RPC_DEF_HANDSHAKE_MS    10000u
#define ANCHOR__RPC_DEF_IDLE_MS         300000u
#define ANCHOR__RPC_DEF_MAX_OUTPUT      (256u * 1024u)
#define ANCHOR__RPC_DEF_CALL_QUEUE      (8u * 1024u * 1024u)
#define ANCHOR__RPC_DEF_GRACE_MS        30000u
#define ANCHOR__RPC_DEF_CONNECT_MS      10000u
#define ANCHOR__RPC_DEF_CONN_RECV       (16u * 1024u * 1024u)

#define ANCHOR__RPC_PREFIX_LEN 5

/* --- frame.c --------------------------------------------------------------- */

/* Writes the gRPC message prefix (flag 0, 32-bit big-endian length). len must
 * be below 2^32. */
void anchor__rpc_prefix(uint8_t out[ANCHOR__RPC_PREFIX_LEN], size_t len);

/* An incremental reader of length-prefixed messages over DATA chunks. */
struct anchor__rpc_reader {
    size_t max; /* largest message accepted */
    uint8_t hdr[ANCHOR__RPC_PREFIX_LEN];
    size_t hdr_have; /* prefix bytes seen of the current message */
    uint8_t *buf;    /* the message body being gathered */
    size_t len;      /* its declared length */
    size_t have;     /* body bytes gathered */
    size_t cap;      /* body bytes allocated */
    uint8_t *done;   /* the message last handed out, freed on the next feed */
};

enum anchor__rpc_read {
    ANCHOR__RPC_READ_MORE = 0, /* all input consumed, no complete message */
    ANCHOR__RPC_READ_MSG = 1,  /* a message is complete (see _take) */
    ANCHOR__RPC_READ_TOO_LARGE = -1,
    ANCHOR__RPC_READ_COMPRESSED = -2,
    ANCHOR__RPC_READ_BAD_FLAG = -3,
    ANCHOR__RPC_READ_NOMEM = -4,
};

void anchor__rpc_reader_init(struct anchor__rpc_reader *r, size_t max);
void anchor__rpc_reader_cleanup(struct anchor__rpc_reader *r);
/* Consumes input until a message is complete or the input ends; *used
 * receives the bytes consumed. On READ_MSG, *msg and *len give the message, owned
 * by the reader until the next call. Errors are final for the stream. */
enum anchor__rpc_read anchor__rpc_reader_feed(struct anchor__rpc_reader *r, const uint8_t *in,
                                              size_t n, size_t *used, const uint8_t **msg,
                                              size_t *len);
/* 1 when the reader stands between messages (a stream may end there). */
int anchor__rpc_reader_idle(const struct anchor__rpc_reader *r);
/* Bytes allocated for the message being gathered (0 between messages). */
size_t anchor__rpc_reader_held(const struct anchor__rpc_reader *r);

/* --- status.c -------------------------------------------------------------- */

/* Percent-encodes msg for grpc-message (gRPC PROTOCOL-HTTP2: bytes outside
 * 0x20..0x7e, and '%', become %XX). Returns a malloc'd string or NULL. */
char *anchor__rpc_pct_encode(const char *msg);
/* Decodes grpc-message; malformed escapes are kept as they are. Returns a
 * malloc'd NUL-terminated string or NULL (no memory). */
char *anchor__rpc_pct_decode(const char *in, size_t len);
/* The gRPC status for an HTTP status without grpc-status (gRPC
 * http-grpc-status-mapping.md). */
enum anchor_rpc_status anchor__rpc_status_from_http(int http_status);
/* The status for a stream reset by the peer with an HTTP/2 error code. */
enum anchor_rpc_status anchor__rpc_status_from_h2(uint32_t code);
/* Parses a grpc-status value: 1 to 3 digits, 0..16 accepted as is, other
 * numbers become UNKNOWN. -1 when not a number. */
int anchor__rpc_status_parse(const char *v, size_t len);

/* --- timeout.c ------------------------------------------------------------- */

/* Parses grpc-timeout ("1..8 digits" + one of H M S m u n) into milliseconds,
 * rounded up (so 1n is 1 ms). Returns 0 or -1 when malformed. */
int anchor__rpc_timeout_parse(const char *v, size_t len, uint64_t *ms);
/* Encodes ms as grpc-timeout into out (at least 16 bytes): the finest unit
 * whose value fits 8 digits. ms must be > 0. */
void anchor__rpc_timeout_encode(uint64_t ms, char out[16]);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t anchor__rpc_now_ms(void);

/* --- md.c ------------------------------------------------------------------ */

struct anchor__rpc_mdlist {
    struct anchor_rpc_md *items; /* names and values owned by the list */
    size_t n;
    size_t cap;
    size_t bytes; /* sum of name + value lengths + 32 each (RFC 9113 6.5.2) */
};

void anchor__rpc_mdlist_cleanup(struct anchor__rpc_mdlist *l);
/* Appends a copy of the header. With wire=1, a "-bin" value is base64 text
 * to decode (padded or not). Returns 0, or -1 (no memory, bad base64). */
int anchor__rpc_mdlist_add(struct anchor__rpc_mdlist *l, const char *name, size_t name_len,
                           const char *value, size_t value_len, int wire);
/* 1 if name may be sent as custom metadata: lower case token characters,
 * not ":..." and not "grpc-...". */
int anchor__rpc_md_name_ok(const char *name);
/* The wire form of a value: base64 (unpadded, as gRPC sends) for "-bin"
 * names, else a copy checked to hold only visible ASCII and space. Returns
 * a malloc'd string (length in *out_len) or NULL. */
char *anchor__rpc_md_wire_value(const char *name, const char *value, size_t len, size_t *out_len);

/* --- io.c: one connection's byte pump -------------------------------------- */

struct anchor__rpc_io;

struct anchor__rpc_io_ops {
    /* TLS handshake or TCP connect finished (bufferevent CONNECTED); return
     * -1 (with why set) to drop the connection. May be NULL. */
    int (*on_connected)(struct anchor__rpc_io *io);
    /* The connection is dead (EOF, error, protocol end, kill). Called from
     * the io's deferred event, never from inside nghttp2; the owner tears
     * everything down, the io included, and may free itself. */
    void (*on_dead)(struct anchor__rpc_io *io, const char *why);
};

struct anchor__rpc_io {
    struct event_base *base;
    nghttp2_session *h2;
    struct bufferevent *bev;  /* NULL for a memory connection */
    struct evbuffer *mem_out; /* output of a memory connection */
    struct event *kick;       /* deferred flush / teardown */
    size_t max_out;
    int started;        /* the h2 session may read and write */
    int paused;         /* reading stopped: output over max_out */
    int dead;           /* on_dead is due */
    int in_recv;        /* inside nghttp2_session_mem_recv */
    int lingering;      /* session over, our side shut: waiting for the peer's EOF */
    uint32_t linger_ms; /* how long at most [250] */
    struct event *linger_ev;
    char why[160]; /* why it died */
    const struct anchor__rpc_io_ops *ops;
    void *owner;
};

/* Sets the io up around bev (or memory I/O when bev is NULL) and takes
 * ownership of bev. The nghttp2 session is attached with _start. */
int anchor__rpc_io_init(struct anchor__rpc_io *io, struct event_base *base, struct bufferevent *bev,
                        size_t max_out, const struct anchor__rpc_io_ops *ops, void *owner,
                        struct anchor_err *err);
/* Frees the session, the bufferevent (closing the socket) and the events. */
void anchor__rpc_io_cleanup(struct anchor__rpc_io *io);
/* Starts exchanging HTTP/2 frames (after the handshake, for TLS). */
void anchor__rpc_io_start(struct anchor__rpc_io *io);
/* Feeds bytes read from the peer to nghttp2, then flushes. */
void anchor__rpc_io_feed(struct anchor__rpc_io *io, const uint8_t *data, size_t len);
/* Schedules a flush (after a submit from outside nghttp2's callbacks). */
void anchor__rpc_io_schedule(struct anchor__rpc_io *io);
/* Flushes nghttp2's output now (never from inside an nghttp2 callback). */
void anchor__rpc_io_flush(struct anchor__rpc_io *io);
/* Marks the io dead with a reason; on_dead follows from the event loop. */
void anchor__rpc_io_kill(struct anchor__rpc_io *io, const char *why);
/* Bytes waiting in the output buffer. */
size_t anchor__rpc_io_out_len(const struct anchor__rpc_io *io);

/* --- tls.c ----------------------------------------------------------------- */

/* Prepares a server SSL_CTX: TLS 1.3 minimum, ALPN "h2" selection. */
int anchor__rpc_tls_server_ctx(SSL_CTX *ctx, struct anchor_err *err);
/* Prepares a client SSL: TLS 1.3 minimum, ALPN "h2", SNI. */
int anchor__rpc_tls_client_ssl(SSL *ssl, const char *sni, struct anchor_err *err);
/* After the handshake: checks that "h2" was negotiated (or, on the server,
 * that the client offered no ALPN), fills ssl, chain and exporter of peer. */
int anchor__rpc_tls_peer(struct anchor_rpc_peer *peer, SSL *ssl, int is_server,
                         struct anchor_err *err);

/* --- server ---------------------------------------------------------------- */

struct anchor__rpc_method_entry {
    struct anchor_rpc_method m;
    char *path;
};

struct anchor__rpc_listener {
    struct anchor__rpc_listener *next;
    struct evconnlistener *lev;
    struct event *retry; /* re-enables accept after EMFILE and the like */
    SSL_CTX *ctx;
    char *unix_path; /* unlinked on close */
    int is_unix;
    struct anchor_rpc_server *srv;
};

struct anchor__rpc_sconn;

struct anchor_rpc_server {
    struct event_base *base;
    struct anchor_rpc_server_opts opts;
    struct anchor__rpc_method_entry *methods;
    size_t n_methods;
    struct anchor__rpc_listener *listeners;
    struct anchor__rpc_sconn *conns; /* doubly linked */
    size_t n_conns;
    int shutting_down;
    struct event *grace;
    struct event *done_ev;
    void (*done)(struct anchor_rpc_server *srv);
    void *data;
};

/* A server call's life, seen from the library. */
struct anchor_rpc_call {
    struct anchor_rpc_call *prev, *next; /* in the connection */
    struct anchor__rpc_sconn *conn;
    int32_t stream_id;
    const struct anchor__rpc_method_entry *method;
    char *path;
    char *method_name; /* :method */
    int content_type_ok;
    int bad_header; /* 1: header list too large, 2: malformed "-bin" value */
    struct anchor__rpc_mdlist req;
    struct anchor__rpc_mdlist resp_headers;
    struct anchor__rpc_mdlist trailers;
    struct anchor__rpc_reader reader;
    uint8_t *unary_msg;
    size_t unary_len;
    unsigned n_msgs;
    uint64_t deadline_ms;
    struct event *deadline_ev;
    struct evbuffer *sendq;
    size_t head_left;  /* bytes of sendq's first message still to go out */
    int started;       /* on_call ran */
    int handler_done;  /* finish or on_cancel: no more handler callbacks */
    int headers_sent;  /* response HEADERS submitted */
    int final_queued;  /* status decided, trailers follow the queue */
    int remote_closed; /* END_STREAM received */
    int msgs_sent;
    int status;
    char *status_msg;
    void *data;
};

struct anchor__rpc_sconn {
    struct anchor__rpc_sconn *prev, *next;
    struct anchor_rpc_server *srv;
    struct anchor__rpc_io io;
    struct anchor_rpc_peer peer;
    struct anchor_rpc_call *calls;
    size_t n_calls;
    size_t recv_held; /* bytes of request messages being gathered, all calls */
    int got_request;  /* first request headers seen (handshake timer off) */
    int goaway_sent;
    int closing; /* being freed: nghttp2 callbacks do nothing */
    struct event *handshake_ev;
    struct event *idle_ev;
};

/* server_conn.c */
/* Makes a connection around bev (NULL: memory I/O); takes bev, also on
 * failure. Plain connections start at once, TLS ones after the handshake. */
int anchor__rpc_sconn_new(struct anchor__rpc_sconn **out, struct anchor_rpc_server *srv,
                          struct bufferevent *bev, const struct anchor_rpc_peer *peer, int tls,
                          struct anchor_err *err);
/* Cancels the connection's calls with `why` for their handlers, tears the
 * connection down and frees it. */
void anchor__rpc_sconn_free(struct anchor__rpc_sconn *c, enum anchor_rpc_status why);
/* Sends GOAWAY (graceful: calls in flight go on). */
void anchor__rpc_sconn_goaway(struct anchor__rpc_sconn *c);
/* A call of c ended and was unlinked: arm the idle timer when none is left. */
void anchor__rpc_sconn_call_gone(struct anchor__rpc_sconn *c);

/* server_call.c */
int anchor__rpc_call_new(struct anchor_rpc_call **out, struct anchor__rpc_sconn *c,
                         int32_t stream_id);
/* Frees a call (no callback). */
void anchor__rpc_call_free(struct anchor_rpc_call *call);
/* Ends a call from the library's side with status and message: queued data
 * is dropped when drop_queue, the status goes out (Trailers-Only when no
 * headers went out yet, with HTTP status http_status, normally 200). */
void anchor__rpc_call_respond(struct anchor_rpc_call *call, int http_status,
                              enum anchor_rpc_status status, const char *msg, int drop_queue);
/* The handler learns that the call is over (no-op if it already knows). */
void anchor__rpc_call_cancel(struct anchor_rpc_call *call, enum anchor_rpc_status why);
/* Frees the message being gathered and gives its bytes back to the
 * connection's receive budget. */
void anchor__rpc_call_release_reader(struct anchor_rpc_call *call);
/* Starts the deadline timer. */
int anchor__rpc_call_arm_deadline(struct anchor_rpc_call *call);

/* server.c */
const struct anchor__rpc_method_entry *anchor__rpc_server_find(const struct anchor_rpc_server *srv,
                                                               const char *path);
/* listener.c: closes and frees every listener (unix socket files go). */
void anchor__rpc_close_listeners(struct anchor_rpc_server *srv);
/* A connection was freed: update counts, finish a shutdown when it was the
 * last one. */
void anchor__rpc_server_conn_gone(struct anchor_rpc_server *srv);

/* A memory connection for fuzzing and tests: bytes in with
 * anchor__rpc_io_feed(&c->io, ...), bytes out in c->io.mem_out. */
int anchor__rpc_server_conn_mem(struct anchor_rpc_server *srv, struct anchor__rpc_sconn **out,
                                struct anchor_err *err);

/* --- client --------------------------------------------------------------- */

struct anchor_rpc_client {
    struct event_base *base;
    struct anchor__rpc_io io;
    struct anchor_rpc_client_opts opts;
    char *authority;
    int tls;
    struct anchor_rpc_peer peer;
    struct anchor_rpc_client_call *calls; /* doubly linked, zombies included */
    int ready;
    int notified;    /* on_connect delivered */
    int closed;      /* the connection is gone: calls ended, new ones fail */
    int goaway_recv; /* the server said GOAWAY: no new calls */
    int freeing;     /* inside anchor_rpc_client_free */
    struct event *connect_ev;
    struct event *notify_ev;
    char why[160];
    void *data;
};

struct anchor_rpc_client_call {
    struct anchor_rpc_client_call *prev, *next;
    struct anchor_rpc_client *client;
    int32_t stream_id;
    struct anchor_rpc_client_call_cbs cbs;
    void *data;
    struct evbuffer *sendq;
    int close_send; /* the request stream ends after the queue */
    int eof_sent;
    int done; /* on_status delivered or cancelled: a zombie waiting for
               * nghttp2 to close its stream */
    int got_headers;
    int trailers_only;
    int http_status;
    int bad_response; /* not application/grpc or not HTTP 200 */
    struct anchor__rpc_reader reader;
    struct anchor__rpc_mdlist headers;
    struct anchor__rpc_mdlist trailers;
    struct event *deadline_ev;
};

/* client_call.c */
int anchor__rpc_client_callbacks(nghttp2_session_callbacks *cbs);
/* Delivers on_status (if not done) and marks the call done. */
void anchor__rpc_ccall_end(struct anchor_rpc_client_call *cc, enum anchor_rpc_status st,
                           const char *msg);
/* Unlinks and frees a call (no callback). */
void anchor__rpc_ccall_free(struct anchor_rpc_client_call *cc);

#endif
