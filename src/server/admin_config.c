/*
 * Managed config over the admin API: SetConfig, GetConfig, ConfigHistory.
 *
 * SetConfig is the only way a document enters the store through this
 * server, and it stores only what the server itself can load: the text is
 * parsed with anchor_policy_doc_parse, exactly as `anchorctl config
 * validate` and the config watcher parse it. A document that fails is
 * refused with the parser's message (INVALID_ARGUMENT) and nothing is
 * stored, so the version in force stays. A stored document is applied at
 * once by polling the watcher (config_watch_check), so that when SetConfig
 * answers, this server runs the new version; other servers sharing the
 * store pick it up on their next poll.
 */
#include "admin.h"
#include "config_watch.h"
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Fills a ConfigDocument from a stored document; the strings are borrowed. */
static void doc_to_pb(Anchor__Admin__V1__ConfigDocument *pb, const struct anchor_store_doc *d)
{
    anchor__admin__v1__config_document__init(pb);
    pb->cluster_id = d->cluster_id;
    pb->section = d->section;
    pb->version = d->version;
    pb->revision = d->revision;
    if (d->text != NULL)
        pb->text = d->text;
    pb->text_size = d->text_len;
    pb->set_by = d->set_by;
    pb->set_at = d->set_at;
}

void admin_set_config(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                      size_t len, const char *who)
{
    struct server_ctx *ctx = a->ctx;
    Anchor__Admin__V1__SetConfigRequest *req;
    Anchor__Admin__V1__SetConfigResponse resp = ANCHOR__ADMIN__V1__SET_CONFIG_RESPONSE__INIT;
    struct anchor_policy_doc *doc = NULL;
    struct anchor_store_doc *stored = NULL;
    struct anchor_err err;
    int64_t version = 0;
    size_t n;

    req = anchor__admin__v1__set_config_request__unpack(NULL, len, msg);
    if (req == NULL) {
        admin_fail_malformed(call);
        return;
    }
    if (admin_check_cluster(a, call, req->cluster_id) != 0)
        goto out;
    if (req->section[0] != '\0' && strcmp(req->section, ANCHOR_POLICY_SECTION) != 0) {
        admin_fail(call, ANCHOR_RPC_INVALID_ARGUMENT, "unknown section \"%.256s\" (supported: %s)",
                   req->section, ANCHOR_POLICY_SECTION);
        goto out;
    }
    n = strlen(req->document);
    if (n > (size_t)ANCHOR_POLICY_MAX_DOC_BYTES) {
        admin_fail(call, ANCHOR_RPC_INVALID_ARGUMENT, "document too large (more than %d bytes)",
                   ANCHOR_POLICY_MAX_DOC_BYTES);
        goto out;
    }
    anchor_err_clear(&err);
    if (anchor_policy_doc_parse(&doc, req->document, n, &err) != 0) {
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_WARN, "Configuration document refused",
                    ANCHOR_LOG_STR("clusterId", req->cluster_id), ANCHOR_LOG_STR("by", who),
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)));
        anchor_rpc_call_finish(call, ANCHOR_RPC_INVALID_ARGUMENT, anchor_err_msg(&err));
        goto out;
    }
    if (anchor_store_doc_put(ctx->store, ctx->cfg.cluster_id, ANCHOR_POLICY_SECTION, req->document,
                             n, who, (int64_t)time(NULL), &version, &err) != 0 ||
        anchor_store_doc_get_version(ctx->store, ctx->cfg.cluster_id, ANCHOR_POLICY_SECTION,
                                     version, &stored, &err) != 0) {
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR, "cannot store configuration document",
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)));
        admin_fail(call, ANCHOR_RPC_INTERNAL, "cannot store the document: %s",
                   anchor_err_msg(&err));
        goto out;
    }
    ANCHOR_LOGF(ctx->log, ANCHOR_LOG_INFO, "Configuration document stored",
                ANCHOR_LOG_STR("clusterId", ctx->cfg.cluster_id),
                ANCHOR_LOG_STR("section", ANCHOR_POLICY_SECTION),
                ANCHOR_LOG_INT("version", version), ANCHOR_LOG_STR("setBy", who));
    /* Apply it now on this server; a store read failure here is logged by
     * the watcher and retried on its next tick, and the document is stored
     * either way, so SetConfig still succeeds. */
    (void)config_watch_check(ctx);
    resp.cluster_id = ctx->cfg.cluster_id;
    resp.section = (char *)ANCHOR_POLICY_SECTION;
    resp.version = version;
    resp.revision = stored != NULL ? stored->revision : 0;
    admin_reply(call, &resp.base);
out:
    anchor_store_doc_free(stored);
    anchor_policy_doc_free(doc);
    anchor__admin__v1__set_config_request__free_unpacked(req, NULL);
}

/* The distinct sections of the cluster's documents, sorted, into a new array
 * of n strings (free each and the array). */
static int cluster_sections(struct server_ctx *ctx, char ***out, size_t *n, struct anchor_err *err)
{
    struct anchor_store_doc_list *l = NULL;
    char **v = NULL;
    size_t k = 0;

    if (anchor_store_doc_history(ctx->store, ctx->cfg.cluster_id, NULL, 0, &l, err) != 0)
        return -1;
    v = calloc(l->n + 1, sizeof(*v));
    if (v == NULL) {
        anchor_store_doc_list_free(l);
        anchor_err_set(err, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < l->n; i++) {
        size_t j = 0;

        while (j < k && strcmp(v[j], l->v[i].section) < 0)
            j++;
        if (j < k && strcmp(v[j], l->v[i].section) == 0)
            continue;
        memmove(&v[j + 1], &v[j], (k - j) * sizeof(*v));
        v[j] = l->v[i].section;
        l->v[i].section = NULL; /* moved into v */
        k++;
    }
    anchor_store_doc_list_free(l);
    *out = v;
    *n = k;
    return 0;
}

static void free_sections(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

/* Reads version `version` (0: the latest) of one section, answering
 * NOT_FOUND or INTERNAL itself when it cannot. */
static int read_section(struct server_admin *a, struct anchor_rpc_call *call, const char *section,
                        int64_t version, struct anchor_store_doc **out)
{
    struct server_ctx *ctx = a->ctx;
    struct anchor_err err;
    int r;

    anchor_err_clear(&err);
    if (version > 0)
        r = anchor_store_doc_get_version(ctx->store, ctx->cfg.cluster_id, section, version, out,
                                         &err);
    else
        r = anchor_store_doc_get_latest(ctx->store, ctx->cfg.cluster_id, section, out, &err);
    if (r != 0) {
        admin_fail(call, ANCHOR_RPC_INTERNAL, "cannot read the configuration: %s",
                   anchor_err_msg(&err));
        return -1;
    }
    if (*out != NULL)
        return 0;
    if (version > 0)
        admin_fail(call, ANCHOR_RPC_NOT_FOUND,
                   "cluster \"%s\" has no version %lld of section \"%.256s\"", ctx->cfg.cluster_id,
                   (long long)version, section);
    else
        admin_fail(call, ANCHOR_RPC_NOT_FOUND,
                   "cluster \"%s\" has no document of section \"%.256s\"", ctx->cfg.cluster_id,
                   section);
    return -1;
}

void admin_get_config(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                      size_t len, const char *who)
{
    struct server_ctx *ctx = a->ctx;
    Anchor__Admin__V1__GetConfigRequest *req;
    Anchor__Admin__V1__GetConfigResponse resp = ANCHOR__ADMIN__V1__GET_CONFIG_RESPONSE__INIT;
    Anchor__Admin__V1__ConfigDocument *pb = NULL, **pp = NULL;
    struct anchor_store_doc **docs = NULL;
    char **sections = NULL;
    size_t n = 0, got = 0;
    struct anchor_err err;

    (void)who;
    req = anchor__admin__v1__get_config_request__unpack(NULL, len, msg);
    if (req == NULL) {
        admin_fail_malformed(call);
        return;
    }
    if (admin_check_cluster(a, call, req->cluster_id) != 0)
        goto out;
    if (req->version < 0) {
        admin_fail(call, ANCHOR_RPC_INVALID_ARGUMENT, "version must be at least 1 (got %lld)",
                   (long long)req->version);
        goto out;
    }
    anchor_err_clear(&err);
    if (req->section[0] != '\0') {
        sections = calloc(1, sizeof(*sections));
        if (sections == NULL || (sections[0] = strdup(req->section)) == NULL) {
            anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "out of memory");
            goto out;
        }
        n = 1;
    } else if (cluster_sections(ctx, &sections, &n, &err) != 0) {
        admin_fail(call, ANCHOR_RPC_INTERNAL, "cannot read the configuration: %s",
                   anchor_err_msg(&err));
        goto out;
    }
    if (n == 0) {
        admin_fail(call, ANCHOR_RPC_NOT_FOUND, "cluster \"%s\" has no configuration documents",
                   ctx->cfg.cluster_id);
        goto out;
    }
    if (req->version > 0 && n > 1) {
        admin_fail(call, ANCHOR_RPC_INVALID_ARGUMENT,
                   "a version needs a section: cluster \"%s\" has %zu sections",
                   ctx->cfg.cluster_id, n);
        goto out;
    }
    docs = calloc(n, sizeof(struct anchor_store_doc *));
    pb = calloc(n, sizeof(*pb));
    pp = calloc(n, sizeof(Anchor__Admin__V1__ConfigDocument *));
    if (docs == NULL || pb == NULL || pp == NULL) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "out of memory");
        goto out;
    }
    for (got = 0; got < n; got++) {
        if (read_section(a, call, sections[got], req->version, &docs[got]) != 0)
            goto out;
        doc_to_pb(&pb[got], docs[got]);
        pp[got] = &pb[got];
    }
    resp.n_documents = n;
    resp.documents = pp;
    resp.active_agent_attestation_version = server_snapshot_version(ctx);
    admin_reply(call, &resp.base);
out:
    for (size_t i = 0; docs != NULL && i < got; i++)
        anchor_store_doc_free(docs[i]);
    free(docs);
    free(pb);
    free(pp);
    free_sections(sections, n);
    anchor__admin__v1__get_config_request__free_unpacked(req, NULL);
}

void admin_config_history(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                          size_t len, const char *who)
{
    struct server_ctx *ctx = a->ctx;
    Anchor__Admin__V1__ConfigHistoryRequest *req;
    Anchor__Admin__V1__ConfigHistoryResponse resp =
        ANCHOR__ADMIN__V1__CONFIG_HISTORY_RESPONSE__INIT;
    Anchor__Admin__V1__ConfigDocument *pb = NULL, **pp = NULL;
    struct anchor_store_doc_list *l = NULL;
    struct anchor_err err;

    (void)who;
    req = anchor__admin__v1__config_history_request__unpack(NULL, len, msg);
    if (req == NULL) {
        admin_fail_malformed(call);
        return;
    }
    if (admin_check_cluster(a, call, req->cluster_id) != 0)
        goto out;
    anchor_err_clear(&err);
    if (anchor_store_doc_history(ctx->store, ctx->cfg.cluster_id,
                                 req->section[0] != '\0' ? req->section : NULL, req->limit, &l,
                                 &err) != 0) {
        admin_fail(call, ANCHOR_RPC_INTERNAL, "cannot read the configuration history: %s",
                   anchor_err_msg(&err));
        goto out;
    }
    pb = calloc(l->n + 1, sizeof(*pb));
    pp = calloc(l->n + 1, sizeof(Anchor__Admin__V1__ConfigDocument *));
    if (pb == NULL || pp == NULL) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < l->n; i++) {
        doc_to_pb(&pb[i], &l->v[i]);
        pp[i] = &pb[i];
    }
    resp.n_documents = l->n;
    resp.documents = pp;
    admin_reply(call, &resp.base);
out:
    free(pb);
    free(pp);
    anchor_store_doc_list_free(l);
    anchor__admin__v1__config_history_request__free_unpacked(req, NULL);
}
