/*
 * The byte pump of one HTTP/2 connection, shared by server and client
 * connections. Bytes from the peer (a bufferevent, plain or TLS, or a test
 * feeding memory) go into nghttp2; nghttp2's output goes into an output
 * buffer that is never filled beyond max_out: past it, the pump stops asking
 * nghttp2 for frames and stops reading from the peer, so a peer that does
 * not read cannot make us buffer without bound (issue 3, back-pressure).
 * Reading resumes when the buffer drained.
 *
 * nghttp2 forbids re-entering a session from its callbacks, and handlers run
 * inside them, so work that handlers trigger (a send, a finish) only
 * schedules the `kick` event; the flush and any teardown happen there, from
 * the event loop. Teardown goes through ops->on_dead, which frees the owner.
 */
#include "rpc/internal.h"
#include "util/check.h"

#include <event2/bufferevent_ssl.h>
#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static struct evbuffer *out_buf(const struct anchor__rpc_io *io)
{
    return io->bev != NULL ? bufferevent_get_output(io->bev) : io->mem_out;
}

size_t anchor__rpc_io_out_len(const struct anchor__rpc_io *io)
{
    return evbuffer_get_length(out_buf(io));
}

void anchor__rpc_io_kill(struct anchor__rpc_io *io, const char *why)
{
    size_t n;

    if (io->dead || io->kick == NULL)
        return;
    io->dead = 1;
    /* Cut by hand: snprintf("%s") of a longer buffer warns at -O2. */
    n = strnlen(why, sizeof(io->why) - 1);
    memcpy(io->why, why, n);
    io->why[n] = '\0';
    if (io->bev != NULL)
        bufferevent_disable(io->bev, EV_READ | EV_WRITE);
    event_active(io->kick, 0, 0);
}

void anchor__rpc_io_schedule(struct anchor__rpc_io *io)
{
    if (io->kick != NULL)
        event_active(io->kick, 0, 0);
}

static void set_paused(struct anchor__rpc_io *io, int paused)
{
    if (io->paused == paused)
        return;
    io->paused = paused;
    if (io->bev == NULL)
        return;
    if (paused)
        bufferevent_disable(io->bev, EV_READ);
    else
        bufferevent_enable(io->bev, EV_READ);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anchor__rpc_io_kill(arg, "connection finished");
}

/* Closing a socket that still has unread input makes the kernel send a
 * reset, which can destroy our last frames before the peer read them. So
 * the write side is shut first and the rest of the input is read and
 * dropped until the peer closes too, for at most linger_ms. A client that
 * does not poll an idle connection (grpcio) learns of our GOAWAY only when
 * it next writes a request: into a half-open socket it is refused cleanly
 * by the GOAWAY and retried on a new connection; into a closed one it fails
 * with EPIPE. Hence a server lingers for seconds. */
static void linger(struct anchor__rpc_io *io)
{
    struct timeval tv = {(time_t)(io->linger_ms / 1000),
                         (suseconds_t)(io->linger_ms % 1000) * 1000};

    if (io->lingering)
        return;
    io->lingering = 1;
    if (io->bev == NULL || io->linger_ev == NULL) {
        anchor__rpc_io_kill(io, "connection finished");
        return;
    }
    (void)shutdown(bufferevent_getfd(io->bev), SHUT_WR);
    bufferevent_disable(io->bev, EV_WRITE);
    (void)bufferevent_enable(io->bev, EV_READ);
    (void)evtimer_add(io->linger_ev, &tv);
}

void anchor__rpc_io_flush(struct anchor__rpc_io *io)
{
    struct evbuffer *out = out_buf(io);

    if (io->dead || !io->started || io->h2 == NULL || io->in_recv || io->lingering)
        return;
    while (evbuffer_get_length(out) < io->max_out) {
        const uint8_t *data = NULL;
        ssize_t n = nghttp2_session_mem_send(io->h2, &data);
        if (n < 0) {
            anchor__rpc_io_kill(io, nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        if (evbuffer_add(out, data, (size_t)n) != 0) {
            anchor__rpc_io_kill(io, "out of memory");
            return;
        }
    }
    set_paused(io, evbuffer_get_length(out) >= io->max_out);
    /* The session is over (GOAWAY exchanged and no stream left, or a fatal
     * protocol error answered) once everything it wrote has left. */
    if (!nghttp2_session_want_read(io->h2) && !nghttp2_session_want_write(io->h2) &&
        evbuffer_get_length(out) == 0)
        linger(io);
}

void anchor__rpc_io_feed(struct anchor__rpc_io *io, const uint8_t *data, size_t len)
{
    ssize_t n;

    if (io->dead || !io->started || io->h2 == NULL)
        return;
    io->in_recv = 1;
    n = nghttp2_session_mem_recv(io->h2, data, len);
    io->in_recv = 0;
    if (n < 0) {
        /* Fatal for the session (bad preface, flood, no memory): whatever
         * nghttp2 queued (a GOAWAY) is not worth waiting for. */
        anchor__rpc_io_kill(io, nghttp2_strerror((int)n));
        return;
    }
    anchor__rpc_io_flush(io);
}

static void read_cb(struct bufferevent *bev, void *arg);

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct anchor__rpc_io *io = arg;

    (void)fd;
    (void)what;
    /* Bytes that arrived before the session started (with the last
     * handshake flight) are waiting in the input buffer. */
    if (!io->dead && io->started && io->bev != NULL &&
        evbuffer_get_length(bufferevent_get_input(io->bev)) > 0)
        read_cb(io->bev, io);
    if (!io->dead)
        anchor__rpc_io_flush(io);
    if (io->dead)
        io->ops->on_dead(io, io->why); /* frees io */
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct anchor__rpc_io *io = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (io->lingering) {
        (void)evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    while (!io->dead && io->started && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        anchor__rpc_io_feed(io, v.iov_base, v.iov_len);
        (void)evbuffer_drain(in, v.iov_len);
    }
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct anchor__rpc_io *io = arg;

    (void)bev;
    anchor__rpc_io_flush(io);
}

static void tls_reason(struct anchor__rpc_io *io, char *buf, size_t len)
{
    unsigned long e = bufferevent_get_openssl_error(io->bev);
    char reason[120];

    if (e == 0) {
        int se = EVUTIL_SOCKET_ERROR();
        (void)snprintf(buf, len, "%s", se != 0 ? evutil_socket_error_to_string(se) : "closed");
        return;
    }
    ERR_error_string_n(e, reason, sizeof(reason));
    (void)snprintf(buf, len, "TLS: %s", reason);
    while (bufferevent_get_openssl_error(io->bev) != 0)
        ;
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct anchor__rpc_io *io = arg;
    char reason[160];
    char why[256];

    if (what & BEV_EVENT_CONNECTED) {
        if (io->ops->on_connected != NULL && io->ops->on_connected(io) != 0) {
            anchor__rpc_io_kill(io, io->why[0] ? io->why : "connection refused");
            return;
        }
        anchor__rpc_io_start(io);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        /* Over TLS a refused or reset connect surfaces as EOF; the socket's
         * pending error tells the operator the real cause. */
        int se = 0;
        socklen_t sl = sizeof(se);
        evutil_socket_t fd = bufferevent_getfd(bev);

        if (!io->started && fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &se, &sl) == 0 &&
            se == 0)
            se = EVUTIL_SOCKET_ERROR(); /* libevent may have taken SO_ERROR already */
        if (!io->started && (se == ECONNREFUSED || se == ECONNRESET || se == ETIMEDOUT ||
                             se == EHOSTUNREACH || se == ENETUNREACH)) {
            (void)snprintf(why, sizeof(why), "connect failed: %s", strerror(se));
            anchor__rpc_io_kill(io, why);
            return;
        }
        anchor__rpc_io_kill(io, io->started ? "connection closed by peer"
                                            : "connect failed: connection closed by peer");
        return;
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        tls_reason(io, reason, sizeof(reason));
        (void)snprintf(why, sizeof(why), "%s: %s",
                       io->started ? "connection error" : "connect failed", reason);
        anchor__rpc_io_kill(io, why);
    }
}

int anchor__rpc_io_init(struct anchor__rpc_io *io, struct event_base *base, struct bufferevent *bev,
                        size_t max_out, const struct anchor__rpc_io_ops *ops, void *owner,
                        struct anchor_err *err)
{
    int rc = -1;

    memset(io, 0, sizeof(*io));
    io->base = base;
    io->bev = bev;
    io->max_out = max_out;
    io->linger_ms = 250;
    io->ops = ops;
    io->owner = owner;
    io->kick = event_new(base, -1, 0, kick_cb, io);
    io->linger_ev = evtimer_new(base, linger_cb, io);
    ENSURE(io->kick != NULL && io->linger_ev != NULL, err, "out of memory");
    if (bev == NULL) {
        io->mem_out = evbuffer_new();
        ENSURE(io->mem_out != NULL, err, "out of memory");
    } else {
        bufferevent_setcb(bev, read_cb, write_cb, event_cb, io);
        /* Refill when half drained rather than empty: no bubble in a
         * stream of large messages. */
        bufferevent_setwatermark(bev, EV_WRITE, max_out / 2, 0);
        ENSURE(bufferevent_enable(bev, EV_READ | EV_WRITE) == 0, err,
               "cannot enable the connection");
    }
    rc = 0;
out:
    if (rc != 0) {
        /* bev stays the caller's on failure. */
        io->bev = NULL;
        anchor__rpc_io_cleanup(io);
    }
    return rc;
}

void anchor__rpc_io_start(struct anchor__rpc_io *io)
{
    io->started = 1;
    anchor__rpc_io_schedule(io);
}

void anchor__rpc_io_cleanup(struct anchor__rpc_io *io)
{
    if (io->h2 != NULL)
        nghttp2_session_del(io->h2);
    if (io->bev != NULL)
        bufferevent_free(io->bev);
    if (io->mem_out != NULL)
        evbuffer_free(io->mem_out);
    if (io->kick != NULL)
        event_free(io->kick);
    if (io->linger_ev != NULL)
        event_free(io->linger_ev);
    io->linger_ev = NULL;
    io->h2 = NULL;
    io->bev = NULL;
    io->mem_out = NULL;
    io->kick = NULL;
}
