/*
 * A client connection: one HTTP/2 connection to one server, over a unix
 * socket or TCP with TLS, on the caller's event_base. Connecting and the TLS
 * handshake run in the background; calls may be started at once and their
 * frames wait until the connection is up. When the connection ends, every
 * call still open ends with UNAVAILABLE and on_close tells the owner, who
 * decides whether and when to reconnect (a new client).
 */
#include "rpc/internal.h"
#include "util/check.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <event2/bufferevent_ssl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct anchor_rpc_client *cl = arg;

    (void)fd;
    (void)what;
    if (cl->ready && !cl->notified && !cl->closed) {
        cl->notified = 1;
        if (cl->opts.on_connect != NULL)
            cl->opts.on_connect(cl); /* may free cl */
    }
}

static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct anchor_rpc_client *cl = arg;

    (void)fd;
    (void)what;
    if (!cl->ready)
        anchor__rpc_io_kill(&cl->io, "connect timeout");
}

static int on_connected(struct anchor__rpc_io *io)
{
    struct anchor_rpc_client *cl = io->owner;
    struct anchor_err err;
    int one = 1;
    evutil_socket_t fd = bufferevent_getfd(io->bev);

    if (cl->tls) {
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (anchor__rpc_tls_peer(&cl->peer, bufferevent_openssl_get_ssl(io->bev), 0, &err) != 0) {
            (void)snprintf(io->why, sizeof(io->why), "%s", anchor_err_msg(&err));
            return -1;
        }
    } else {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred)) {
            cl->peer.has_creds = 1;
            cl->peer.pid = cred.pid;
            cl->peer.uid = cred.uid;
            cl->peer.gid = cred.gid;
        }
    }
    cl->ready = 1;
    evtimer_del(cl->connect_ev);
    event_active(cl->notify_ev, 0, 0);
    return 0;
}

static void on_dead(struct anchor__rpc_io *io, const char *why)
{
    struct anchor_rpc_client *cl = io->owner;
    char msg[sizeof(cl->why) + 32];

    (void)snprintf(cl->why, sizeof(cl->why), "%s", why);
    (void)snprintf(msg, sizeof(msg), "connection lost: %s", cl->why);
    cl->closed = 1;
    evtimer_del(cl->connect_ev);
    /* Calls end first, while the session still exists. */
    while (cl->calls != NULL) {
        struct anchor_rpc_client_call *cc = cl->calls;
        anchor__rpc_ccall_end(cc, ANCHOR_RPC_UNAVAILABLE, msg);
        anchor__rpc_ccall_free(cc);
    }
    anchor__rpc_io_cleanup(&cl->io);
    cl->peer.ssl = NULL; /* freed with the connection */
    cl->peer.chain = NULL;
    if (cl->opts.on_close != NULL)
        cl->opts.on_close(cl, cl->why); /* may free cl: nothing after this */
}

static const struct anchor__rpc_io_ops client_ops = {on_connected, on_dead};

static int make_session(struct anchor_rpc_client *cl, struct anchor_err *err)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    nghttp2_settings_entry iv[2];
    int rc = -1;

    ENSURE(nghttp2_session_callbacks_new(&cbs) == 0, err, "out of memory");
    TRY(anchor__rpc_client_callbacks(cbs));
    ENSURE(nghttp2_option_new(&opt) == 0, err, "out of memory");
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    ENSURE(nghttp2_session_client_new2(&cl->io.h2, cbs, cl, opt) == 0, err, "out of memory");
    iv[0].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
    iv[0].value = 0;
    iv[1].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
    iv[1].value = cl->opts.max_header_list_size;
    ENSURE(nghttp2_submit_settings(cl->io.h2, NGHTTP2_FLAG_NONE, iv, 2) == 0, err,
           "cannot submit settings");
    rc = 0;
out:
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    return rc;
}

/* The parts common to both transports; takes bev, also on failure. */
static int client_new(struct anchor_rpc_client **out, struct event_base *base,
                      struct bufferevent *bev, int tls, const char *authority,
                      const struct anchor_rpc_client_opts *opts, struct anchor_err *err)
{
    struct anchor_rpc_client *cl = NULL;
    struct timeval tv;
    int rc = -1;

    ENSURE(base != NULL, err, "no event base");
    cl = calloc(1, sizeof(*cl));
    ENSURE(cl != NULL, err, "out of memory");
    cl->base = base;
    cl->tls = tls;
    if (opts != NULL)
        cl->opts = *opts;
    if (cl->opts.max_recv_message_size == 0)
        cl->opts.max_recv_message_size = ANCHOR__RPC_DEF_MAX_MESSAGE;
    if (cl->opts.max_recv_message_size > UINT32_MAX)
        cl->opts.max_recv_message_size = UINT32_MAX;
    if (cl->opts.max_header_list_size == 0)
        cl->opts.max_header_list_size = ANCHOR__RPC_DEF_MAX_HEADER_LIST;
    if (cl->opts.connect_timeout_ms == 0)
        cl->opts.connect_timeout_ms = ANCHOR__RPC_DEF_CONNECT_MS;
    cl->authority = strdup(cl->opts.authority != NULL ? cl->opts.authority : authority);
    cl->opts.authority = NULL;
    ENSURE(cl->authority != NULL, err, "out of memory");
    cl->peer.transport = tls ? ANCHOR_RPC_TRANSPORT_TLS : ANCHOR_RPC_TRANSPORT_UNIX;
    (void)snprintf(cl->peer.addr, sizeof(cl->peer.addr), "%s", tls ? authority : "unix");
    cl->connect_ev = evtimer_new(base, connect_timeout_cb, cl);
    cl->notify_ev = event_new(base, -1, 0, notify_cb, cl);
    ENSURE(cl->connect_ev != NULL && cl->notify_ev != NULL, err, "out of memory");
    TRY(anchor__rpc_io_init(&cl->io, base, bev, ANCHOR__RPC_DEF_MAX_OUTPUT, &client_ops, cl, err));
    bev = NULL;
    TRY(make_session(cl, err));
    tv.tv_sec = cl->opts.connect_timeout_ms / 1000;
    tv.tv_usec = (cl->opts.connect_timeout_ms % 1000) * 1000;
    ENSURE(evtimer_add(cl->connect_ev, &tv) == 0, err, "cannot arm timer");
    *out = cl;
    cl = NULL;
    rc = 0;
out:
    if (bev != NULL)
        bufferevent_free(bev);
    anchor_rpc_client_free(cl);
    return rc;
}

int anchor_rpc_client_connect_unix(struct anchor_rpc_client **out, struct event_base *base,
                                   const char *path, const struct anchor_rpc_client_opts *opts,
                                   struct anchor_err *err)
{
    struct anchor_rpc_client *cl = NULL;
    struct bufferevent *bev = NULL;
    struct sockaddr_un sun;
    int rc = -1;

    ENSURE(path != NULL && strlen(path) < sizeof(sun.sun_path), err, "unix socket path too long");
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, strlen(path));
    bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    ENSURE(bev != NULL, err, "out of memory");
    TRY(client_new(&cl, base, bev, 0, "localhost", opts, err));
    bev = NULL;
    /* A unix connect fails at once when nobody listens: reported here, and
     * no callback follows. */
    ENSURE(bufferevent_socket_connect(cl->io.bev, (struct sockaddr *)&sun, sizeof(sun)) == 0, err,
           "cannot connect to %s: %s", path, strerror(errno));
    *out = cl;
    cl = NULL;
    rc = 0;
out:
    if (bev != NULL)
        bufferevent_free(bev);
    anchor_rpc_client_free(cl);
    return rc;
}

int anchor_rpc_client_connect_tls(struct anchor_rpc_client **out, struct event_base *base,
                                  const char *host, uint16_t port, SSL_CTX *ctx, const char *sni,
                                  const struct anchor_rpc_client_opts *opts, struct anchor_err *err)
{
    struct anchor_rpc_client *cl = NULL;
    struct bufferevent *bev = NULL;
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    char authority[300];
    SSL *ssl = NULL;
    int gai;
    int rc = -1;

    ENSURE(ctx != NULL && host != NULL, err, "a host and a TLS context are required");
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    (void)snprintf(portstr, sizeof(portstr), "%u", port);
    gai = getaddrinfo(host, portstr, &hints, &res);
    ENSURE(gai == 0, err, "cannot resolve %s: %s", host, gai_strerror(gai));
    ssl = SSL_new(ctx);
    ENSURE_OSSL(ssl != NULL, err, "cannot create a TLS session");
    TRY(anchor__rpc_tls_client_ssl(ssl, sni, err));
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    ENSURE(bev != NULL, err, "out of memory");
    ssl = NULL; /* the bufferevent owns it */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    (void)snprintf(authority, sizeof(authority), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
                   port);
    TRY(client_new(&cl, base, bev, 1, authority, opts, err));
    bev = NULL;
    ENSURE(bufferevent_socket_connect(cl->io.bev, res->ai_addr, (int)res->ai_addrlen) == 0, err,
           "cannot connect to %s: %s", authority, strerror(errno));
    *out = cl;
    cl = NULL;
    rc = 0;
out:
    SSL_free(ssl);
    if (bev != NULL)
        bufferevent_free(bev);
    if (res != NULL)
        freeaddrinfo(res);
    anchor_rpc_client_free(cl);
    return rc;
}

/* Best effort, never blocking: tell the server we are leaving (GOAWAY, which
 * also ends every stream) by writing what is queued straight to the socket,
 * since no loop iteration follows a free. */
static void say_goodbye(struct anchor_rpc_client *cl)
{
    struct anchor__rpc_io *io = &cl->io;
    struct evbuffer *out;
    const uint8_t *data;
    ssize_t n;
    size_t len;

    if (!cl->ready || cl->closed || io->dead || io->h2 == NULL || io->bev == NULL)
        return;
    if (nghttp2_session_terminate_session(io->h2, NGHTTP2_NO_ERROR) != 0)
        return;
    out = bufferevent_get_output(io->bev);
    while ((n = nghttp2_session_mem_send(io->h2, &data)) > 0 &&
           evbuffer_get_length(out) < io->max_out)
        if (evbuffer_add(out, data, (size_t)n) != 0)
            return;
    len = evbuffer_get_length(out);
    if (len == 0 || len > INT_MAX)
        return;
    if (cl->tls) {
        SSL *ssl = bufferevent_openssl_get_ssl(io->bev);
        if (ssl != NULL)
            (void)SSL_write(ssl, evbuffer_pullup(out, -1), (int)len);
        ERR_clear_error();
    } else {
        /* Not evbuffer_write: libevent keeps the output's start frozen
         * outside its own write callback. */
        (void)send(bufferevent_getfd(io->bev), evbuffer_pullup(out, -1), len,
                   MSG_NOSIGNAL | MSG_DONTWAIT);
    }
}

void anchor_rpc_client_free(struct anchor_rpc_client *cl)
{
    if (cl == NULL)
        return;
    /* First, while the calls still exist (nghttp2 may pull their data);
     * their streams closing on the way must not end them. */
    cl->freeing = 1;
    say_goodbye(cl);
    while (cl->calls != NULL) {
        struct anchor_rpc_client_call *cc = cl->calls;
        anchor__rpc_ccall_end(cc, ANCHOR_RPC_CANCELLED, "client closed");
        anchor__rpc_ccall_free(cc);
    }
    anchor__rpc_io_cleanup(&cl->io);
    if (cl->connect_ev != NULL)
        event_free(cl->connect_ev);
    if (cl->notify_ev != NULL)
        event_free(cl->notify_ev);
    free(cl->authority);
    free(cl);
}

void anchor_rpc_client_set_data(struct anchor_rpc_client *cl, void *data)
{
    cl->data = data;
}

void *anchor_rpc_client_data(const struct anchor_rpc_client *cl)
{
    return cl->data;
}

int anchor_rpc_client_is_ready(const struct anchor_rpc_client *cl)
{
    return cl->ready && !cl->closed;
}

const struct anchor_rpc_peer *anchor_rpc_client_peer(const struct anchor_rpc_client *cl)
{
    return &cl->peer;
}
