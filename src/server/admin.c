/*
 * The admin API's front door (admin.h): its own gRPC server on the unix
 * socket, the access check every call passes first, and the reply helpers
 * the handlers share.
 *
 * Who may call: uid 0, and a caller whose group id (as SO_PEERCRED reports
 * it when the connection was made: the process's effective gid) is the
 * configured admin-group. SO_PEERCRED does not carry supplementary groups;
 * docs/admin.md tells operators to run anchorctl with the group as its
 * primary group (sg, newgrp, a service's Group=) for non-root access.
 */
#include "admin.h"
#include "config_watch.h"
#include "server.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ADMIN_PKG "/anchor.admin.v1.AdminAPI/"

struct admin_method {
    const char *name;
    admin_handler_fn fn;
};

static const struct admin_method methods[] = {
    {"SetConfig", admin_set_config},         {"GetConfig", admin_get_config},
    {"ConfigHistory", admin_config_history}, {"ListAgents", admin_list_agents},
    {"GetAgent", admin_get_agent},           {"BanAgent", admin_ban_agent},
    {"UnbanAgent", admin_unban_agent},       {"GetBundle", admin_get_bundle},
};

void admin_fail(struct anchor_rpc_call *call, enum anchor_rpc_status status, const char *fmt, ...)
{
    char msg[ANCHOR_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    anchor_rpc_call_finish(call, status, msg);
}

void admin_fail_malformed(struct anchor_rpc_call *call)
{
    anchor_rpc_call_finish(call, ANCHOR_RPC_INVALID_ARGUMENT, "malformed request");
}

void admin_reply(struct anchor_rpc_call *call, const ProtobufCMessage *resp)
{
    size_t n = protobuf_c_message_get_packed_size(resp);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    struct anchor_err err;

    if (buf == NULL) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "out of memory");
        return;
    }
    (void)protobuf_c_message_pack(resp, buf);
    anchor_err_clear(&err);
    if (anchor_rpc_call_send(call, buf, n, &err) != 0) {
        /* The one reason a fresh unary call cannot send is size. */
        admin_fail(call, ANCHOR_RPC_RESOURCE_EXHAUSTED, "response too large (%zu bytes): %s", n,
                   anchor_err_msg(&err));
    } else {
        anchor_rpc_call_finish(call, ANCHOR_RPC_OK, NULL);
    }
    free(buf);
}

int admin_check_cluster(struct server_admin *a, struct anchor_rpc_call *call,
                        const char *cluster_id)
{
    const char *mine = a->ctx->cfg.cluster_id;

    if (cluster_id == NULL || cluster_id[0] == '\0') {
        anchor_rpc_call_finish(call, ANCHOR_RPC_INVALID_ARGUMENT, "a cluster id is required");
        return -1;
    }
    if (strcmp(cluster_id, mine) != 0) {
        admin_fail(call, ANCHOR_RPC_INVALID_ARGUMENT,
                   "cluster id \"%.256s\" does not match this server's cluster \"%s\"", cluster_id,
                   mine);
        return -1;
    }
    return 0;
}

/* 1 when the peer may use the admin API. A connection that is not a unix
 * socket with credentials is never let in. */
static int allowed(const struct server_admin *a, const struct anchor_rpc_peer *p)
{
    if (p->transport != ANCHOR_RPC_TRANSPORT_UNIX || !p->has_creds)
        return 0;
    return p->uid == 0 || (a->has_group && p->gid == a->group);
}

static void on_call(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    const struct admin_method *m = anchor_rpc_call_method_data(call);
    struct server_admin *a = anchor_rpc_server_data(anchor_rpc_call_server(call));
    const struct anchor_rpc_peer *p = anchor_rpc_call_peer(call);
    char who[32];

    if (!allowed(a, p)) {
        ANCHOR_LOGF(a->ctx->log, ANCHOR_LOG_WARN, "Admin request refused",
                    ANCHOR_LOG_STR("method", m->name), ANCHOR_LOG_INT("uid", p->uid),
                    ANCHOR_LOG_INT("gid", p->gid), ANCHOR_LOG_INT("pid", p->pid));
        if (a->has_group)
            admin_fail(call, ANCHOR_RPC_PERMISSION_DENIED,
                       "permission denied: uid %u gid %u is not root and not in the admin group "
                       "\"%s\"",
                       (unsigned)p->uid, (unsigned)p->gid, a->group_name);
        else
            admin_fail(call, ANCHOR_RPC_PERMISSION_DENIED,
                       "permission denied: uid %u is not root (no admin-group is configured)",
                       (unsigned)p->uid);
        return;
    }
    (void)snprintf(who, sizeof(who), "uid=%u", (unsigned)p->uid);
    ANCHOR_LOGF(a->ctx->log, ANCHOR_LOG_DEBUG, "Admin request", ANCHOR_LOG_STR("method", m->name),
                ANCHOR_LOG_STR("by", who), ANCHOR_LOG_INT("pid", p->pid));
    m->fn(a, call, msg, len, who);
}

/* Resolves admin-group: a group name, or a number. */
static int resolve_group(struct server_admin *a, const char *name, struct anchor_err *err)
{
    struct group gr, *res = NULL;
    char buf[16384], *end;
    unsigned long n;
    int e;

    (void)snprintf(a->group_name, sizeof(a->group_name), "%s", name);
    errno = 0;
    n = strtoul(name, &end, 10);
    if (name[0] >= '0' && name[0] <= '9' && *end == '\0' && errno == 0 && n <= 0x7fffffffUL) {
        a->group = (gid_t)n;
        a->has_group = 1;
        return 0;
    }
    e = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
    if (res == NULL) {
        anchor_err_set(err, "admin-group \"%.64s\": %s", name,
                       e != 0 ? strerror(e) : "no such group");
        return -1;
    }
    a->group = gr.gr_gid;
    a->has_group = 1;
    return 0;
}

/* Makes the socket's directory (one level, mode 0755) when it is missing,
 * e.g. /run/anchor on a fresh boot. */
static void make_parent_dir(const char *path)
{
    char dir[4096];
    char *slash;

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return;
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return;
    *slash = '\0';
    (void)mkdir(dir, 0755);
}

/* 1 when a process accepts connections on the socket at path: another
 * server runs there, and taking its socket over (the rpc listener removes a
 * stale socket file) would silently cut its operators off. */
static int socket_in_use(const char *path)
{
    struct sockaddr_un sa;
    int fd, r;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return 0; /* the listener reports the bad path */
    memcpy(sa.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    (void)close(fd);
    return r == 0;
}

static int listen_socket(struct server_admin *a, const char *path, struct anchor_err *err)
{
    mode_t mode = a->has_group ? 0660 : 0600;

    make_parent_dir(path);
    if (socket_in_use(path)) {
        anchor_err_set(err, "admin socket %s is in use by another process (another anchor-server?)",
                       path);
        return -1;
    }
    if (anchor_rpc_server_listen_unix(a->rpc, path, mode, err) != 0) {
        anchor_err_prefix(err, "admin socket");
        return -1;
    }
    if (a->has_group && chown(path, (uid_t)-1, a->group) != 0) {
        anchor_err_set(err, "admin socket %s: cannot give it to group %s: %s", path, a->group_name,
                       strerror(errno));
        return -1;
    }
    return 0;
}

static void admin_free(struct server_admin *a)
{
    if (a == NULL)
        return;
    anchor_rpc_server_free(a->rpc);
    free(a);
}

int server_admin_start(struct server_ctx *ctx, struct anchor_err *err)
{
    struct server_admin *a = calloc(1, sizeof(*a));
    struct anchor_rpc_method rm;
    char path[128];
    const char *sock =
        ctx->cfg.admin_socket != NULL ? ctx->cfg.admin_socket : SERVER_DEFAULT_ADMIN_SOCKET;

    if (a == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    a->ctx = ctx;
    if (ctx->cfg.admin_group != NULL && ctx->cfg.admin_group[0] != '\0' &&
        resolve_group(a, ctx->cfg.admin_group, err) != 0)
        goto fail;
    if (anchor_rpc_server_new(&a->rpc, ctx->base, NULL, err) != 0)
        goto fail;
    anchor_rpc_server_set_data(a->rpc, a);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        (void)snprintf(path, sizeof(path), ADMIN_PKG "%s", methods[i].name);
        rm = (struct anchor_rpc_method){.path = path,
                                        .kind = ANCHOR_RPC_UNARY,
                                        .on_call = on_call,
                                        .data = (void *)&methods[i]};
        if (anchor_rpc_server_register(a->rpc, &rm, err) != 0)
            goto fail;
    }
    if (listen_socket(a, sock, err) != 0)
        goto fail;
    ctx->admin = a;
    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_INFO, "Admin API listening", ANCHOR_LOG_STR("socket", sock),
                ANCHOR_LOG_STR("adminGroup", a->has_group ? a->group_name : ""));
    return 0;
fail:
    admin_free(a);
    return -1;
}

void server_admin_stop(struct server_ctx *ctx)
{
    if (ctx == NULL)
        return;
    admin_free(ctx->admin);
    ctx->admin = NULL;
}
