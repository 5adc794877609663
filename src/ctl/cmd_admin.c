/*
 * anchorctl's admin API client (cmd_admin.h): one unary gRPC call over the
 * server's unix socket, on a libevent loop that runs until the call ends.
 *
 * Before the HTTP/2 connection is made, a plain connect() tells whether
 * anything listens on the socket at all, so that a missing server, a wrong
 * path and a socket the caller may not open each get a message saying so
 * rather than a transport status.
 */
#include "cmd_admin.h"
#include "ctl.h"

#include "anchor/rpc.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

const char *ctl_admin_socket(const char *flag_value)
{
    const char *env;

    if (flag_value != NULL)
        return flag_value;
    env = getenv(CTL_ADMIN_SOCKET_ENV);
    if (env != NULL && env[0] != '\0')
        return env;
    return CTL_ADMIN_DEFAULT_SOCKET;
}

void ctl_admin_time(char *buf, size_t size, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (t == 0 || gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        (void)snprintf(buf, size, "%s", t == 0 ? "-" : "?");
}

/* Prints why the socket cannot be reached and returns -1, or returns 0 when
 * something accepts connections there. */
static int probe(const char *path)
{
    struct sockaddr_un sa;
    int fd, e;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        ctl_error("admin socket path too long: %s", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ctl_error("cannot reach the admin socket %s: %s", path, strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(fd);
        return 0;
    }
    e = errno;
    close(fd);
    if (e == EACCES || e == EPERM)
        ctl_error("cannot reach the admin socket %s: %s (the admin API is for root and the "
                  "server's admin-group)",
                  path, strerror(e));
    else
        ctl_error("cannot reach the admin socket %s: %s (is anchor-server running? "
                  "--admin-socket or " CTL_ADMIN_SOCKET_ENV " name another socket)",
                  path, strerror(e));
    return -1;
}

struct call_state {
    struct event_base *base;
    uint8_t *resp;
    size_t resp_len;
    int got_resp;
    int done;
    enum anchor_rpc_status status;
    char message[1024];
};

static void on_message(struct anchor_rpc_client_call *cc, const uint8_t *msg, size_t len)
{
    struct call_state *st = anchor_rpc_client_call_data(cc);

    if (st->got_resp)
        return; /* a unary call has one; the status will say what went wrong */
    st->resp = malloc(len > 0 ? len : 1);
    if (st->resp == NULL)
        return;
    memcpy(st->resp, msg, len);
    st->resp_len = len;
    st->got_resp = 1;
}

static void on_status(struct anchor_rpc_client_call *cc, enum anchor_rpc_status status,
                      const char *message, const struct anchor_rpc_md *trailers, size_t n)
{
    struct call_state *st = anchor_rpc_client_call_data(cc);

    (void)trailers;
    (void)n;
    st->status = status;
    (void)snprintf(st->message, sizeof(st->message), "%s", message);
    st->done = 1;
    event_base_loopbreak(st->base);
}

int ctl_admin_call(const char *socket, const char *method, const ProtobufCMessage *req,
                   uint8_t **resp, size_t *resp_len)
{
    static const struct anchor_rpc_client_call_cbs cbs = {.on_message = on_message,
                                                          .on_status = on_status};
    struct call_state st;
    struct anchor_rpc_client *client = NULL;
    struct anchor_err err;
    char path[128];
    uint8_t *buf = NULL;
    size_t n;
    int rc = CTL_EXIT_FAIL;

    memset(&st, 0, sizeof(st));
    if (probe(socket) != 0)
        return CTL_EXIT_FAIL;
    n = protobuf_c_message_get_packed_size(req);
    buf = malloc(n > 0 ? n : 1);
    st.base = event_base_new();
    if (buf == NULL || st.base == NULL) {
        ctl_error("out of memory");
        goto out;
    }
    (void)protobuf_c_message_pack(req, buf);
    (void)snprintf(path, sizeof(path), "/anchor.admin.v1.AdminAPI/%s", method);
    anchor_err_clear(&err);
    if (anchor_rpc_client_connect_unix(&client, st.base, socket, NULL, &err) != 0 ||
        anchor_rpc_client_unary(NULL, client, path, NULL, 0, buf, n, CTL_ADMIN_TIMEOUT_MS, &cbs,
                                &st, &err) != 0) {
        ctl_error("cannot reach the admin socket %s: %s", socket, anchor_err_msg(&err));
        goto out;
    }
    while (!st.done && event_base_dispatch(st.base) == 0)
        ;
    if (!st.done) {
        ctl_error("admin API call %s did not finish", method);
    } else if (st.status != ANCHOR_RPC_OK) {
        /* The server's message as it is; the status name only when there is
         * no message (a transport failure without detail). */
        if (st.message[0] != '\0')
            ctl_error("%s", st.message);
        else
            ctl_error("%s failed: %s", method, anchor_rpc_status_name((int)st.status));
    } else if (!st.got_resp) {
        ctl_error("%s: the server sent no response", method);
    } else {
        *resp = st.resp;
        *resp_len = st.resp_len;
        st.resp = NULL;
        rc = CTL_EXIT_OK;
    }
out:
    anchor_rpc_client_free(client);
    if (st.base != NULL) {
        (void)event_base_loop(st.base, EVLOOP_NONBLOCK);
        event_base_free(st.base);
    }
    free(st.resp);
    free(buf);
    return rc;
}
