/*
 * Listeners: unix sockets (plain HTTP/2, prior knowledge) and TCP sockets
 * with TLS, each an evconnlistener on the server's event_base. Accepting
 * enforces the connection limit (the excess is closed at once), records
 * who the peer is (SO_PEERCRED on unix sockets, taken now, i.e. the process
 * that connected) and hands the socket to server_conn.c in a bufferevent.
 */
#include "rpc/internal.h"
#include "util/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* glibc's SOMAXCONN is still 128 while Linux allows 4096 by default since
 * 5.4; the kernel caps the value at net.core.somaxconn. A burst of clients
 * waits in the backlog rather than being refused. */
#define LISTEN_BACKLOG 4096

static void listener_free(struct anchor__rpc_listener *l)
{
    if (l->lev != NULL)
        evconnlistener_free(l->lev);
    if (l->retry != NULL)
        event_free(l->retry);
    if (l->unix_path != NULL) {
        (void)unlink(l->unix_path);
        free(l->unix_path);
    }
    SSL_CTX_free(l->ctx);
    free(l);
}

void anchor__rpc_close_listeners(struct anchor_rpc_server *srv)
{
    while (srv->listeners != NULL) {
        struct anchor__rpc_listener *l = srv->listeners;
        srv->listeners = l->next;
        listener_free(l);
    }
}

/* --- accepting ------------------------------------------------------------ */

static void peer_addr(struct anchor_rpc_peer *peer, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        (void)inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        (void)snprintf(peer->addr, sizeof(peer->addr), "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        (void)inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        (void)snprintf(peer->addr, sizeof(peer->addr), "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        (void)snprintf(peer->addr, sizeof(peer->addr), "unix");
    }
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct anchor__rpc_listener *l = arg;
    struct anchor_rpc_server *srv = l->srv;
    struct anchor_rpc_peer peer;
    struct bufferevent *bev = NULL;
    struct anchor__rpc_sconn *c;
    struct anchor_err err;
    SSL *ssl = NULL;
    int one = 1;

    (void)lev;
    (void)salen;
    /* Over the limit the connection is closed at once: cheaper for us than
     * any answer, and the client sees a reset and backs off. */
    if (srv->shutting_down || srv->n_conns >= srv->opts.max_connections) {
        evutil_closesocket(fd);
        return;
    }
    memset(&peer, 0, sizeof(peer));
    peer_addr(&peer, sa);
    if (sa->sa_family == AF_UNIX) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        peer.transport = ANCHOR_RPC_TRANSPORT_UNIX;
        /* Taken now: the credentials of the process that connected. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred)) {
            peer.has_creds = 1;
            peer.pid = cred.pid;
            peer.uid = cred.uid;
            peer.gid = cred.gid;
        }
    } else {
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        peer.transport = l->ctx != NULL ? ANCHOR_RPC_TRANSPORT_TLS : ANCHOR_RPC_TRANSPORT_TCP;
    }
    if (l->ctx != NULL) {
        ssl = SSL_new(l->ctx);
        if (ssl == NULL) {
            evutil_closesocket(fd);
            return;
        }
        bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL) {
            SSL_free(ssl);
            evutil_closesocket(fd);
            return;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL) {
            evutil_closesocket(fd);
            return;
        }
    }
    /* Takes bev, also on failure. */
    (void)anchor__rpc_sconn_new(&c, srv, bev, &peer, l->ctx != NULL, &err);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct anchor__rpc_listener *l = arg;

    (void)fd;
    (void)what;
    (void)evconnlistener_enable(l->lev);
}

static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
    struct anchor__rpc_listener *l = arg;
    struct timeval tv = {0, 100000};

    /* Out of descriptors or memory: pause accepting briefly rather than
     * spin on a listening socket that stays readable. */
    (void)evconnlistener_disable(lev);
    (void)evtimer_add(l->retry, &tv);
}

/* Wraps a listening fd; takes fd, also on failure. */
static int add_listener(struct anchor_rpc_server *srv, int fd, SSL_CTX *ctx, const char *unix_path,
                        struct anchor_err *err)
{
    struct anchor__rpc_listener *l = NULL;
    int rc = -1;

    ENSURE(!srv->shutting_down, err, "server is shutting down");
    l = calloc(1, sizeof(*l));
    ENSURE(l != NULL, err, "out of memory");
    l->srv = srv;
    if (ctx != NULL) {
        TRY(anchor__rpc_tls_server_ctx(ctx, err));
        ENSURE(SSL_CTX_up_ref(ctx) == 1, err, "cannot reference the TLS context");
        l->ctx = ctx;
    }
    if (unix_path != NULL) {
        l->unix_path = strdup(unix_path);
        ENSURE(l->unix_path != NULL, err, "out of memory");
    }
    /* libevent accepts in a loop until accept() fails: a blocking socket
     * (listen_fd's caller may pass one) would stall the whole loop. */
    ENSURE(evutil_make_socket_nonblocking(fd) == 0 && evutil_make_socket_closeonexec(fd) == 0, err,
           "cannot make the listening socket non-blocking");
    l->retry = evtimer_new(srv->base, retry_cb, l);
    ENSURE(l->retry != NULL, err, "out of memory");
    /* Backlog 0: the socket is already listening (libevent calls listen()
     * again with 128 for a negative backlog). */
    l->lev = evconnlistener_new(srv->base, accept_cb, l,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    ENSURE(l->lev != NULL, err, "cannot listen");
    fd = -1;
    evconnlistener_set_error_cb(l->lev, accept_error_cb);
    l->next = srv->listeners;
    srv->listeners = l;
    l = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (l != NULL) {
        /* The socket file belongs to this listener only once it exists. */
        if (rc != 0 && l->unix_path != NULL) {
            free(l->unix_path);
            l->unix_path = NULL;
        }
        listener_free(l);
    }
    return rc;
}

int anchor_rpc_server_listen_unix(struct anchor_rpc_server *srv, const char *path, mode_t mode,
                                  struct anchor_err *err)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd = -1;
    int rc = -1;

    ENSURE(path != NULL && strlen(path) < sizeof(sun.sun_path), err, "unix socket path too long");
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, strlen(path));
    /* A socket left by a previous run is replaced; any other file is not. */
    if (lstat(path, &st) == 0) {
        ENSURE(S_ISSOCK(st.st_mode), err, "%s exists and is not a socket", path);
        ENSURE(unlink(path) == 0, err, "cannot remove stale socket %s: %s", path, strerror(errno));
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ENSURE(fd >= 0, err, "socket: %s", strerror(errno));
    ENSURE(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0, err, "cannot bind %s: %s", path,
           strerror(errno));
    if (mode != 0 && chmod(path, mode) != 0) {
        anchor_err_set(err, "cannot chmod %s: %s", path, strerror(errno));
        (void)unlink(path);
        goto out;
    }
    if (listen(fd, LISTEN_BACKLOG) != 0) {
        anchor_err_set(err, "cannot listen on %s: %s", path, strerror(errno));
        (void)unlink(path);
        goto out;
    }
    rc = add_listener(srv, fd, NULL, path, err);
    fd = -1;
    if (rc != 0)
        (void)unlink(path);
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

int anchor_rpc_server_listen_tls(struct anchor_rpc_server *srv, const char *host, uint16_t port,
                                 SSL_CTX *ctx, uint16_t *port_out, struct anchor_err *err)
{
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char portstr[8];
    int fd = -1;
    int one = 1;
    int gai;
    int rc = -1;

    ENSURE(ctx != NULL, err, "a TLS context is required");
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    (void)snprintf(portstr, sizeof(portstr), "%u", port);
    gai = getaddrinfo(host, portstr, &hints, &res);
    ENSURE(gai == 0, err, "cannot resolve %s: %s", host ? host : "*", gai_strerror(gai));
    fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ENSURE(fd >= 0, err, "socket: %s", strerror(errno));
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ENSURE(bind(fd, res->ai_addr, res->ai_addrlen) == 0, err, "cannot bind %s:%u: %s",
           host ? host : "*", port, strerror(errno));
    ENSURE(listen(fd, LISTEN_BACKLOG) == 0, err, "cannot listen: %s", strerror(errno));
    ENSURE(getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0, err, "getsockname: %s",
           strerror(errno));
    if (port_out != NULL)
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    rc = add_listener(srv, fd, ctx, NULL, err);
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    if (res != NULL)
        freeaddrinfo(res);
    return rc;
}

int anchor_rpc_server_listen_fd(struct anchor_rpc_server *srv, int fd, SSL_CTX *ctx,
                                struct anchor_err *err)
{
    return add_listener(srv, fd, ctx, NULL, err);
}
