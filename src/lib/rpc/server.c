/*
 * The server object: its limits, the method table, its listeners
 * (listener.c) and the set of connections that they accepted, all on one
 * event_base; the conversation itself is server_conn.c's. Shutdown is
 * graceful: listeners close, every connection gets GOAWAY, calls in flight
 * may finish within the grace period.
 */
#include "rpc/internal.h"
#include "util/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void anchor_rpc_server_opts_init(struct anchor_rpc_server_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_recv_message_size = ANCHOR__RPC_DEF_MAX_MESSAGE;
    o->max_send_message_size = ANCHOR__RPC_DEF_MAX_MESSAGE;
    o->max_concurrent_streams = ANCHOR__RPC_DEF_MAX_STREAMS;
    o->max_header_list_size = ANCHOR__RPC_DEF_MAX_HEADER_LIST;
    o->max_connections = ANCHOR__RPC_DEF_MAX_CONNECTIONS;
    o->handshake_timeout_ms = ANCHOR__RPC_DEF_HANDSHAKE_MS;
    o->idle_timeout_ms = ANCHOR__RPC_DEF_IDLE_MS;
    o->max_output_buffer = ANCHOR__RPC_DEF_MAX_OUTPUT;
    o->max_call_send_queue = ANCHOR__RPC_DEF_CALL_QUEUE;
    o->shutdown_grace_ms = ANCHOR__RPC_DEF_GRACE_MS;
    o->max_connection_recv_buffer = ANCHOR__RPC_DEF_CONN_RECV;
}

/* Zero fields take their defaults. */
static void opts_fill(struct anchor_rpc_server_opts *o, const struct anchor_rpc_server_opts *in)
{
    struct anchor_rpc_server_opts d;

    anchor_rpc_server_opts_init(&d);
    *o = in != NULL ? *in : d;
#define DEF(f)                                                                                     \
    if (o->f == 0)                                                                                 \
    o->f = d.f
    DEF(max_recv_message_size);
    DEF(max_send_message_size);
    DEF(max_concurrent_streams);
    DEF(max_header_list_size);
    DEF(max_connections);
    DEF(handshake_timeout_ms);
    DEF(idle_timeout_ms);
    DEF(max_output_buffer);
    DEF(max_call_send_queue);
    DEF(shutdown_grace_ms);
    DEF(max_connection_recv_buffer);
#undef DEF
    /* The prefix length field is 32 bits. */
    if (o->max_recv_message_size > UINT32_MAX)
        o->max_recv_message_size = UINT32_MAX;
    if (o->max_send_message_size > UINT32_MAX - ANCHOR__RPC_PREFIX_LEN)
        o->max_send_message_size = UINT32_MAX - ANCHOR__RPC_PREFIX_LEN;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct anchor_rpc_server *srv = arg;

    (void)fd;
    (void)what;
    if (srv->grace != NULL)
        evtimer_del(srv->grace);
    if (srv->done != NULL)
        srv->done(srv);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct anchor_rpc_server *srv = arg;

    (void)fd;
    (void)what;
    while (srv->conns != NULL)
        anchor__rpc_sconn_free(srv->conns, ANCHOR_RPC_UNAVAILABLE);
}

int anchor_rpc_server_new(struct anchor_rpc_server **out, struct event_base *base,
                          const struct anchor_rpc_server_opts *opts, struct anchor_err *err)
{
    struct anchor_rpc_server *srv = NULL;
    int rc = -1;

    ENSURE(base != NULL, err, "no event base");
    srv = calloc(1, sizeof(*srv));
    ENSURE(srv != NULL, err, "out of memory");
    srv->base = base;
    opts_fill(&srv->opts, opts);
    srv->grace = evtimer_new(base, grace_cb, srv);
    srv->done_ev = event_new(base, -1, 0, done_cb, srv);
    ENSURE(srv->grace != NULL && srv->done_ev != NULL, err, "out of memory");
    *out = srv;
    srv = NULL;
    rc = 0;
out:
    anchor_rpc_server_free(srv);
    return rc;
}

void anchor_rpc_server_free(struct anchor_rpc_server *srv)
{
    if (srv == NULL)
        return;
    anchor__rpc_close_listeners(srv);
    srv->done = NULL;
    while (srv->conns != NULL)
        anchor__rpc_sconn_free(srv->conns, ANCHOR_RPC_UNAVAILABLE);
    for (size_t i = 0; i < srv->n_methods; i++)
        free(srv->methods[i].path);
    free(srv->methods);
    if (srv->grace != NULL)
        event_free(srv->grace);
    if (srv->done_ev != NULL)
        event_free(srv->done_ev);
    free(srv);
}

void anchor_rpc_server_set_data(struct anchor_rpc_server *srv, void *data)
{
    srv->data = data;
}

void *anchor_rpc_server_data(const struct anchor_rpc_server *srv)
{
    return srv->data;
}

size_t anchor_rpc_server_connection_count(const struct anchor_rpc_server *srv)
{
    return srv->n_conns;
}

int anchor_rpc_server_register(struct anchor_rpc_server *srv, const struct anchor_rpc_method *m,
                               struct anchor_err *err)
{
    struct anchor__rpc_method_entry *tab;
    char *path = NULL;
    int rc = -1;

    ENSURE(m != NULL && m->path != NULL && m->path[0] == '/', err,
           "method path must begin with '/'");
    ENSURE(m->on_call != NULL, err, "method %s has no on_call handler", m->path);
    ENSURE(m->kind >= ANCHOR_RPC_UNARY && m->kind <= ANCHOR_RPC_BIDI_STREAMING, err,
           "method %s has an unknown kind", m->path);
    ENSURE(anchor__rpc_server_find(srv, m->path) == NULL, err, "method %s already registered",
           m->path);
    path = strdup(m->path);
    ENSURE(path != NULL, err, "out of memory");
    tab = realloc(srv->methods, (srv->n_methods + 1) * sizeof(*tab));
    ENSURE(tab != NULL, err, "out of memory");
    srv->methods = tab;
    tab[srv->n_methods].m = *m;
    tab[srv->n_methods].m.path = path;
    tab[srv->n_methods].path = path;
    srv->n_methods++;
    path = NULL;
    rc = 0;
out:
    free(path);
    return rc;
}

const struct anchor__rpc_method_entry *anchor__rpc_server_find(const struct anchor_rpc_server *srv,
                                                               const char *path)
{
    /* A linear scan: a server has a handful of methods. */
    for (size_t i = 0; i < srv->n_methods; i++)
        if (strcmp(srv->methods[i].path, path) == 0)
            return &srv->methods[i];
    return NULL;
}

void anchor__rpc_server_conn_gone(struct anchor_rpc_server *srv)
{
    if (srv->shutting_down && srv->n_conns == 0)
        event_active(srv->done_ev, 0, 0);
}

void anchor_rpc_server_shutdown(struct anchor_rpc_server *srv,
                                void (*done)(struct anchor_rpc_server *srv))
{
    struct timeval tv;

    srv->done = done;
    if (srv->shutting_down)
        return;
    srv->shutting_down = 1;
    anchor__rpc_close_listeners(srv);
    for (struct anchor__rpc_sconn *c = srv->conns; c != NULL; c = c->next)
        anchor__rpc_sconn_goaway(c);
    if (srv->n_conns == 0) {
        event_active(srv->done_ev, 0, 0);
        return;
    }
    tv.tv_sec = srv->opts.shutdown_grace_ms / 1000;
    tv.tv_usec = (srv->opts.shutdown_grace_ms % 1000) * 1000;
    (void)evtimer_add(srv->grace, &tv);
}

int anchor__rpc_server_conn_mem(struct anchor_rpc_server *srv, struct anchor__rpc_sconn **out,
                                struct anchor_err *err)
{
    struct anchor_rpc_peer peer;

    memset(&peer, 0, sizeof(peer));
    peer.transport = ANCHOR_RPC_TRANSPORT_MEM;
    (void)snprintf(peer.addr, sizeof(peer.addr), "memory");
    return anchor__rpc_sconn_new(out, srv, NULL, &peer, 0, err);
}
