/*
 * The AgentAttestation snapshot: the parsed policy document every Login
 * matches against. It is immutable and reference-counted (policy.h); a swap
 * publishes a new one whole, and a Login that took a reference before the
 * swap finishes on the document it started with (DESIGN.md "Managed
 * configuration").
 */
#include "server.h"

#include <stdlib.h>

struct anchor_policy_doc *server_snapshot_get(struct server_ctx *ctx)
{
    struct anchor_policy_doc *doc = NULL;

    pthread_mutex_lock(&ctx->snapshot_mu);
    if (ctx->snapshot != NULL)
        doc = anchor_policy_doc_up_ref(ctx->snapshot);
    pthread_mutex_unlock(&ctx->snapshot_mu);
    return doc;
}

void server_snapshot_swap(struct server_ctx *ctx, struct anchor_policy_doc *new_doc,
                          int64_t version)
{
    struct anchor_policy_doc *old;

    if (new_doc != NULL)
        new_doc = anchor_policy_doc_up_ref(new_doc);
    pthread_mutex_lock(&ctx->snapshot_mu);
    old = ctx->snapshot;
    ctx->snapshot = new_doc;
    ctx->snapshot_version = new_doc != NULL ? version : 0;
    pthread_mutex_unlock(&ctx->snapshot_mu);
    /* Freed outside the lock: the last reference may free CA stores. */
    anchor_policy_doc_free(old);
}

int64_t server_snapshot_version(struct server_ctx *ctx)
{
    int64_t v;

    pthread_mutex_lock(&ctx->snapshot_mu);
    v = ctx->snapshot_version;
    pthread_mutex_unlock(&ctx->snapshot_mu);
    return v;
}

int server_snapshot_load(struct server_ctx *ctx, struct anchor_err *err)
{
    struct anchor_store_doc *d = NULL;
    struct anchor_policy_doc *doc = NULL;
    struct anchor_err perr;

    if (anchor_store_doc_get_latest(ctx->store, ctx->cfg.cluster_id, ANCHOR_POLICY_SECTION, &d,
                                    err) != 0)
        return -1;
    if (d == NULL)
        return 0;
    anchor_err_clear(&perr);
    if (anchor_policy_doc_parse(&doc, d->text, d->text_len, &perr) != 0) {
        /* Stored documents were validated when set; one that no longer
         * parses (a newer server wrote it) must not stop this one. */
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR, "stored AgentAttestation document is invalid",
                    ANCHOR_LOG_INT("version", d->version),
                    ANCHOR_LOG_STR("error", anchor_err_msg(&perr)));
        anchor_store_doc_free(d);
        return 0;
    }
    server_snapshot_swap(ctx, doc, d->version);
    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_INFO, "Loaded AgentAttestation document",
                ANCHOR_LOG_STR("clusterId", ctx->cfg.cluster_id),
                ANCHOR_LOG_INT("version", d->version));
    anchor_policy_doc_free(doc);
    anchor_store_doc_free(d);
    return 0;
}
