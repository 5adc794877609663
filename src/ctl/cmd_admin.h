/*
 * What the anchorctl commands that talk to a running server share
 * (cmd_admin.c): finding the admin socket, one unary call of the admin API
 * (proto/admin.proto) over it, and the time format of their output.
 */
#ifndef ANCHOR_CTL_CMD_ADMIN_H
#define ANCHOR_CTL_CMD_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "admin.pb-c.h"

/* The socket anchor-server serves the admin API on by default. */
#define CTL_ADMIN_DEFAULT_SOCKET "/run/anchor/admin.sock"
/* Environment variable naming the socket when --admin-socket is not given. */
#define CTL_ADMIN_SOCKET_ENV "ANCHOR_ADMIN_SOCKET"
/* How long one call may take, in milliseconds. */
#define CTL_ADMIN_TIMEOUT_MS 30000

/* The socket to use: the --admin-socket value when given (flag_value not
 * NULL), else $ANCHOR_ADMIN_SOCKET when set and non-empty, else the
 * default. */
const char *ctl_admin_socket(const char *flag_value);

/* Calls /anchor.admin.v1.AdminAPI/<method> on the server at socket with req.
 * On success returns CTL_EXIT_OK with the response message in *resp,
 * *resp_len (free() it). Otherwise prints the reason on stderr (the
 * server's own message for a refused call; "cannot reach the admin socket
 * ..." when nothing answers there) and returns CTL_EXIT_FAIL. */
int ctl_admin_call(const char *socket, const char *method, const ProtobufCMessage *req,
                   uint8_t **resp, size_t *resp_len);

/* Writes unix time t as RFC 3339 UTC ("2026-01-02T03:04:05Z"), or "-" for
 * 0, into buf. */
void ctl_admin_time(char *buf, size_t size, int64_t t);

#endif
