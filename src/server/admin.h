/*
 * The admin API (proto/admin.proto, docs/admin.md): the operator's way into a
 * running Trust Domain Server, served on its unix socket (admin-socket) by a
 * gRPC server of its own, so that no admin method is ever reachable on the
 * agents' TLS listener.
 *
 *   admin.c          start and stop, the socket, access control, replies
 *   admin_config.c   SetConfig, GetConfig, ConfigHistory
 *   admin_agents.c   ListAgents, GetAgent, BanAgent, UnbanAgent, GetBundle
 *
 * Access: the caller's credentials are read from the socket (SO_PEERCRED)
 * when it connects; uid 0 and callers whose group id is admin-group are
 * served, anyone else gets PERMISSION_DENIED. The socket file itself is mode
 * 0600 (0660, group admin-group, when admin-group is set), so the file
 * system refuses most callers before the server sees them.
 *
 * Every handler runs on the server's loop thread and uses ctx->store. The
 * entry points main.c calls (server_admin_start, server_admin_stop) are
 * declared in server.h.
 */
#ifndef ANCHOR_SERVER_ADMIN_H
#define ANCHOR_SERVER_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "anchor/rpc.h"

#include "admin.pb-c.h"

struct server_ctx;

/* Largest page of ListAgents (a request for 0 or more gets this many). */
#define ADMIN_MAX_AGENTS_PAGE 1000

/* The admin API's state, ctx->admin. */
struct server_admin {
    struct server_ctx *ctx;
    struct anchor_rpc_server *rpc;
    int has_group;
    gid_t group;
    char group_name[64];
};

/* What the handler of one method does once the caller was let in: it reads
 * the request (msg, len), and answers with admin_reply or admin_fail. `who`
 * is the caller as recorded in the store ("uid=0"). */
typedef void (*admin_handler_fn)(struct server_admin *a, struct anchor_rpc_call *call,
                                 const uint8_t *msg, size_t len, const char *who);

/* The handlers, one per method of AdminAPI. */
void admin_set_config(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                      size_t len, const char *who);
void admin_get_config(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                      size_t len, const char *who);
void admin_config_history(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                          size_t len, const char *who);
void admin_list_agents(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                       size_t len, const char *who);
void admin_get_agent(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                     size_t len, const char *who);
void admin_ban_agent(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                     size_t len, const char *who);
void admin_unban_agent(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                       size_t len, const char *who);
void admin_get_bundle(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                      size_t len, const char *who);

/* Packs resp, sends it and finishes the call OK (INTERNAL or
 * RESOURCE_EXHAUSTED when it cannot be sent). */
void admin_reply(struct anchor_rpc_call *call, const ProtobufCMessage *resp);

/* Finishes the call with status and a formatted message. */
void admin_fail(struct anchor_rpc_call *call, enum anchor_rpc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Refuses (INVALID_ARGUMENT, returning -1) a cluster id other than the
 * server's; 0 when it matches. */
int admin_check_cluster(struct server_admin *a, struct anchor_rpc_call *call,
                        const char *cluster_id);

/* Answers INVALID_ARGUMENT "malformed request" (for an unpack failure). */
void admin_fail_malformed(struct anchor_rpc_call *call);

#endif
