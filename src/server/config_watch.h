/*
 * The config watcher: how a Trust Domain Server picks up managed
 * configuration without a restart (DESIGN.md "Managed configuration",
 * docs/admin.md "How a change reaches every server").
 *
 * The watcher polls the store's revision counter (ctx->store) on a libevent
 * timer every cfg.config_poll_ms (config-poll-interval, default 1 s). When the revision moved and
 * the latest AgentAttestation document of the server's cluster is a version it has not applied yet,
 * it parses that document with anchor_policy_doc_parse (the loader `anchorctl config validate`
 * runs) and swaps it in as the server's snapshot with server_snapshot_swap (server.h), logging, in
 * this order,
 *
 *   Metadata updated                  a new version was seen in the store
 *   Updating configuration snapshot   the parsed document replaces the snapshot
 *   Updating configuration cache      what was derived from the old snapshot
 *                                     (trust stores, verified-signature cache)
 *                                     goes with its last reference
 *
 * A document that does not parse (for example one written by a newer server
 * that knows a schema this one does not) is logged with its message and the
 * previous snapshot stays in force; the watcher does not try that version
 * again. A login in flight keeps the snapshot it started with (the snapshot
 * is reference-counted: the old one is freed when its last login lets go).
 *
 * Everything runs on the server's event loop thread. The entry points
 * main.c calls, server_config_watch_start and server_config_watch_stop, are
 * declared in server.h.
 */
#ifndef ANCHOR_SERVER_CONFIG_WATCH_H
#define ANCHOR_SERVER_CONFIG_WATCH_H

#include <stdint.h>

struct server_ctx;

/* Polls now instead of waiting for the timer: the admin API calls it right
 * after storing a document, so that this server applies the document before
 * SetConfig answers. Returns 0 when the store could be read (whether or not
 * anything changed), -1 when it could not (logged; the next tick tries
 * again) or the watcher is not running. */
int config_watch_check(struct server_ctx *ctx);

#endif
