/*
 * The config watcher (config_watch.h): a libevent timer on the server's loop
 * that polls the store's revision counter and, when the cluster's
 * AgentAttestation document has a version the server has not applied,
 * parses it and swaps the server's snapshot. The revision is one indexed
 * query, so polling every second costs nothing; the document is read and
 * parsed only when the revision moved, and applied only when its version is
 * new, so documents of other clusters or sections sharing the store cost one
 * read each.
 */
#include "config_watch.h"
#include "server.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct server_watch {
    struct server_ctx *ctx;
    struct event *timer;
    int64_t last_revision;  /* revision seen at the last successful poll, -1 none */
    int64_t failed_version; /* a version that did not parse: not tried again */
    int store_failing;      /* the last poll could not read the store */
};

/* Logs the refusal of a stored document that does not parse. */
static void log_refused(struct server_ctx *ctx, const struct anchor_store_doc *d,
                        const struct anchor_err *err)
{
    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR,
                "Configuration document refused, previous configuration stays in force",
                ANCHOR_LOG_STR("clusterId", d->cluster_id), ANCHOR_LOG_STR("section", d->section),
                ANCHOR_LOG_INT("version", d->version),
                ANCHOR_LOG_INT("activeVersion", server_snapshot_version(ctx)),
                ANCHOR_LOG_STR("error", anchor_err_msg(err)));
}

/* Parses and applies one stored document. The three log lines keep the
 * documented words and order (docs/admin.md, issue 4). */
static void apply(struct server_watch *w, const struct anchor_store_doc *d)
{
    struct server_ctx *ctx = w->ctx;
    struct anchor_policy_doc *doc = NULL;
    struct anchor_err err;
    int64_t previous = server_snapshot_version(ctx);

    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_INFO, "Metadata updated",
                ANCHOR_LOG_STR("clusterId", d->cluster_id), ANCHOR_LOG_STR("section", d->section),
                ANCHOR_LOG_INT("version", d->version), ANCHOR_LOG_INT("revision", d->revision),
                ANCHOR_LOG_STR("setBy", d->set_by), ANCHOR_LOG_INT("setAt", d->set_at));
    anchor_err_clear(&err);
    if (anchor_policy_doc_parse(&doc, d->text, d->text_len, &err) != 0) {
        w->failed_version = d->version;
        log_refused(ctx, d, &err);
        return;
    }
    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_INFO, "Updating configuration snapshot",
                ANCHOR_LOG_STR("section", d->section), ANCHOR_LOG_INT("version", d->version),
                ANCHOR_LOG_INT("previousVersion", previous),
                ANCHOR_LOG_INT("policies", (int64_t)anchor_policy_doc_count(doc)));
    server_snapshot_swap(ctx, doc, d->version);
    /* The swap took its own reference; ours goes, and with the previous
     * snapshot's last reference (once the logins holding it end) go the
     * trust stores and the verified-signature cache built for it. */
    anchor_policy_doc_free(doc);
    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_INFO, "Updating configuration cache",
                ANCHOR_LOG_STR("section", d->section), ANCHOR_LOG_INT("version", d->version));
}

/* Notes the end of an outage of the store, if there was one. */
static void store_ok(struct server_watch *w, int64_t rev)
{
    if (!w->store_failing)
        return;
    w->store_failing = 0;
    ANCHOR_LOGF(w->ctx->log, ANCHOR_LOG_INFO, "configuration datastore readable again",
                ANCHOR_LOG_INT("revision", rev));
}

static int poll_store(struct server_watch *w)
{
    struct server_ctx *ctx = w->ctx;
    struct anchor_store_doc *d = NULL;
    struct anchor_err err;
    int64_t rev = 0;

    anchor_err_clear(&err);
    if (anchor_store_doc_revision(ctx->store, &rev, &err) != 0)
        goto fail;
    if (rev == w->last_revision) {
        store_ok(w, rev);
        return 0;
    }
    if (anchor_store_doc_get_latest(ctx->store, ctx->cfg.cluster_id, ANCHOR_POLICY_SECTION, &d,
                                    &err) != 0)
        goto fail;
    w->last_revision = rev;
    store_ok(w, rev);
    /* A document is applied once: the version in force (loaded at start, or
     * by an earlier poll) and a version that failed are not tried again. */
    if (d != NULL && d->version != server_snapshot_version(ctx) && d->version != w->failed_version)
        apply(w, d);
    anchor_store_doc_free(d);
    return 0;
fail:
    /* Logged once per outage, not on every tick of it. */
    if (!w->store_failing)
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_WARN, "cannot read configuration from the datastore",
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)));
    w->store_failing = 1;
    return -1;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)poll_store(arg);
}

int config_watch_check(struct server_ctx *ctx)
{
    if (ctx == NULL || ctx->watch == NULL)
        return -1;
    return poll_store(ctx->watch);
}

int server_config_watch_start(struct server_ctx *ctx, struct anchor_err *err)
{
    struct server_watch *w;
    long ms = ctx->cfg.config_poll_ms > 0 ? ctx->cfg.config_poll_ms : SERVER_DEFAULT_CONFIG_POLL_MS;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    w->ctx = ctx;
    w->last_revision = -1;
    w->timer = event_new(ctx->base, -1, EV_PERSIST, on_tick, w);
    if (w->timer == NULL || event_add(w->timer, &tv) != 0) {
        anchor_err_set(err, "config watcher: cannot arm its timer");
        if (w->timer != NULL)
            event_free(w->timer);
        free(w);
        return -1;
    }
    ctx->watch = w;
    /* A document stored between the start-up load and now is applied at
     * once rather than a tick later. */
    (void)poll_store(w);
    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_DEBUG, "Config watcher started",
                ANCHOR_LOG_STR("clusterId", ctx->cfg.cluster_id), ANCHOR_LOG_INT("intervalMs", ms),
                ANCHOR_LOG_INT("version", server_snapshot_version(ctx)));
    return 0;
}

void server_config_watch_stop(struct server_ctx *ctx)
{
    struct server_watch *w = ctx != NULL ? ctx->watch : NULL;

    if (w == NULL)
        return;
    event_free(w->timer);
    free(w);
    ctx->watch = NULL;
}
