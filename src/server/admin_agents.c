/*
 * Agents and the bundle over the admin API: ListAgents, GetAgent, BanAgent,
 * UnbanAgent, GetBundle. The agent records are the store's (what the Login
 * path recorded); a ban is the store's banned flag, which Login and
 * RenewSVID read on every call, so it takes effect on the agent's next login
 * or renewal. An agent may be named by its full SPIFFE ID or by its path
 * alone ("/agents/x509pop/..."), which is read in the server's trust domain.
 */
#include "admin.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

/* An Agent message over a store record: strings borrowed from the record,
 * the attribute arrays owned here (agent_pb_cleanup). */
struct agent_pb {
    Anchor__Admin__V1__Agent msg;
    Anchor__Admin__V1__Attribute *attrs;
    Anchor__Admin__V1__Attribute **attr_ptrs;
};

static int agent_pb_init(struct agent_pb *p, const struct anchor_store_agent *ag)
{
    memset(p, 0, sizeof(*p));
    anchor__admin__v1__agent__init(&p->msg);
    p->attrs = calloc(ag->n_attrs + 1, sizeof(*p->attrs));
    p->attr_ptrs = calloc(ag->n_attrs + 1, sizeof(Anchor__Admin__V1__Attribute *));
    if (p->attrs == NULL || p->attr_ptrs == NULL)
        return -1;
    for (size_t i = 0; i < ag->n_attrs; i++) {
        anchor__admin__v1__attribute__init(&p->attrs[i]);
        p->attrs[i].name = (char *)ag->attrs[i].name;
        p->attrs[i].value = (char *)ag->attrs[i].value;
        p->attr_ptrs[i] = &p->attrs[i];
    }
    p->msg.spiffe_id = ag->spiffe_id;
    p->msg.n_attestor_types = ag->n_attestor_types;
    p->msg.attestor_types = ag->attestor_types;
    p->msg.n_attributes = ag->n_attrs;
    p->msg.attributes = p->attr_ptrs;
    p->msg.svid_serial = ag->svid_serial != NULL ? ag->svid_serial : (char *)"";
    p->msg.svid_expires_at = ag->svid_expires_at;
    p->msg.first_seen = ag->first_seen;
    p->msg.last_seen = ag->last_seen;
    p->msg.banned = ag->banned != 0;
    return 0;
}

static void agent_pb_cleanup(struct agent_pb *p)
{
    free(p->attrs);
    free(p->attr_ptrs);
}

void admin_list_agents(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                       size_t len, const char *who)
{
    Anchor__Admin__V1__ListAgentsRequest *req;
    Anchor__Admin__V1__ListAgentsResponse resp = ANCHOR__ADMIN__V1__LIST_AGENTS_RESPONSE__INIT;
    struct anchor_store_agent_list *l = NULL;
    struct agent_pb *pbs = NULL;
    Anchor__Admin__V1__Agent **pp = NULL;
    size_t limit, done = 0;
    struct anchor_err err;

    (void)who;
    req = anchor__admin__v1__list_agents_request__unpack(NULL, len, msg);
    if (req == NULL) {
        admin_fail_malformed(call);
        return;
    }
    limit =
        req->limit == 0 || req->limit > ADMIN_MAX_AGENTS_PAGE ? ADMIN_MAX_AGENTS_PAGE : req->limit;
    anchor_err_clear(&err);
    if (anchor_store_agent_list(a->ctx->store, req->after[0] != '\0' ? req->after : NULL, limit, &l,
                                &err) != 0) {
        admin_fail(call, ANCHOR_RPC_INTERNAL, "cannot list agents: %s", anchor_err_msg(&err));
        goto out;
    }
    pbs = calloc(l->n + 1, sizeof(*pbs));
    pp = calloc(l->n + 1, sizeof(Anchor__Admin__V1__Agent *));
    if (pbs == NULL || pp == NULL)
        goto oom;
    for (done = 0; done < l->n; done++) {
        if (agent_pb_init(&pbs[done], &l->v[done]) != 0) {
            done++; /* its arrays are freed below too */
            goto oom;
        }
        pp[done] = &pbs[done].msg;
    }
    resp.n_agents = l->n;
    resp.agents = pp;
    /* A full page may have a next one; a short page is the last. */
    if (l->n == limit && l->n > 0)
        resp.next_after = l->v[l->n - 1].spiffe_id;
    admin_reply(call, &resp.base);
    goto out;
oom:
    anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "out of memory");
out:
    for (size_t i = 0; pbs != NULL && i < done; i++)
        agent_pb_cleanup(&pbs[i]);
    free(pbs);
    free(pp);
    anchor_store_agent_list_free(l);
    anchor__admin__v1__list_agents_request__free_unpacked(req, NULL);
}

/* The SPIFFE ID the operator means: a path alone is read in the server's
 * trust domain. Answers INVALID_ARGUMENT itself for an empty one. */
static int agent_id(struct server_admin *a, struct anchor_rpc_call *call, const char *given,
                    char *buf, size_t size)
{
    int n;

    if (given[0] == '\0') {
        anchor_rpc_call_finish(call, ANCHOR_RPC_INVALID_ARGUMENT, "an agent SPIFFE ID is required");
        return -1;
    }
    if (given[0] == '/')
        n = snprintf(buf, size, "spiffe://%s%s", a->ctx->cfg.trust_domain, given);
    else
        n = snprintf(buf, size, "%s", given);
    if (n < 0 || (size_t)n >= size) {
        admin_fail(call, ANCHOR_RPC_INVALID_ARGUMENT, "agent SPIFFE ID longer than %d bytes",
                   ANCHOR_STORE_MAX_ID_BYTES);
        return -1;
    }
    return 0;
}

/* Reads the agent, answering NOT_FOUND or INTERNAL itself when it cannot. */
static int read_agent(struct server_admin *a, struct anchor_rpc_call *call, const char *id,
                      struct anchor_store_agent **out)
{
    struct anchor_err err;

    anchor_err_clear(&err);
    if (anchor_store_agent_get(a->ctx->store, id, out, &err) != 0) {
        admin_fail(call, ANCHOR_RPC_INTERNAL, "cannot read agent: %s", anchor_err_msg(&err));
        return -1;
    }
    if (*out == NULL) {
        admin_fail(call, ANCHOR_RPC_NOT_FOUND, "agent %s not found", id);
        return -1;
    }
    return 0;
}

static void reply_agent(struct anchor_rpc_call *call, const struct anchor_store_agent *ag)
{
    struct agent_pb p;

    if (agent_pb_init(&p, ag) != 0)
        anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "out of memory");
    else
        admin_reply(call, &p.msg.base);
    agent_pb_cleanup(&p);
}

void admin_get_agent(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                     size_t len, const char *who)
{
    Anchor__Admin__V1__GetAgentRequest *req;
    struct anchor_store_agent *ag = NULL;
    char id[ANCHOR_STORE_MAX_ID_BYTES + 1];

    (void)who;
    req = anchor__admin__v1__get_agent_request__unpack(NULL, len, msg);
    if (req == NULL) {
        admin_fail_malformed(call);
        return;
    }
    if (agent_id(a, call, req->spiffe_id, id, sizeof(id)) == 0 && read_agent(a, call, id, &ag) == 0)
        reply_agent(call, ag);
    anchor_store_agent_free(ag);
    anchor__admin__v1__get_agent_request__free_unpacked(req, NULL);
}

/* Ban and unban: both requests are one SPIFFE ID. */
static void set_banned(struct server_admin *a, struct anchor_rpc_call *call, const char *given,
                       int banned, const char *who)
{
    struct anchor_store_agent *ag = NULL;
    struct anchor_err err;
    char id[ANCHOR_STORE_MAX_ID_BYTES + 1];

    if (agent_id(a, call, given, id, sizeof(id)) != 0 || read_agent(a, call, id, &ag) != 0)
        goto out;
    anchor_store_agent_free(ag);
    ag = NULL;
    anchor_err_clear(&err);
    if (anchor_store_agent_set_banned(a->ctx->store, id, banned, &err) != 0) {
        admin_fail(call, ANCHOR_RPC_INTERNAL, "cannot update agent: %s", anchor_err_msg(&err));
        goto out;
    }
    ANCHOR_LOGF(a->ctx->log, ANCHOR_LOG_INFO, banned ? "Agent banned" : "Agent unbanned",
                ANCHOR_LOG_STR("spiffeId", id), ANCHOR_LOG_STR("by", who));
    if (read_agent(a, call, id, &ag) == 0)
        reply_agent(call, ag);
out:
    anchor_store_agent_free(ag);
}

void admin_ban_agent(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                     size_t len, const char *who)
{
    Anchor__Admin__V1__BanAgentRequest *req;

    req = anchor__admin__v1__ban_agent_request__unpack(NULL, len, msg);
    if (req == NULL) {
        admin_fail_malformed(call);
        return;
    }
    set_banned(a, call, req->spiffe_id, 1, who);
    anchor__admin__v1__ban_agent_request__free_unpacked(req, NULL);
}

void admin_unban_agent(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                       size_t len, const char *who)
{
    Anchor__Admin__V1__UnbanAgentRequest *req;

    req = anchor__admin__v1__unban_agent_request__unpack(NULL, len, msg);
    if (req == NULL) {
        admin_fail_malformed(call);
        return;
    }
    set_banned(a, call, req->spiffe_id, 0, who);
    anchor__admin__v1__unban_agent_request__free_unpacked(req, NULL);
}

void admin_get_bundle(struct server_admin *a, struct anchor_rpc_call *call, const uint8_t *msg,
                      size_t len, const char *who)
{
    Anchor__Admin__V1__GetBundleRequest *req;
    Anchor__Admin__V1__GetBundleResponse resp = ANCHOR__ADMIN__V1__GET_BUNDLE_RESPONSE__INIT;
    const struct anchor_bundle *b = a->ctx->bundle;
    STACK_OF(X509) * roots;
    ProtobufCBinaryData *der = NULL;
    char *pem = NULL, *jwks = NULL;
    size_t n = 0;
    struct anchor_err err;

    (void)who;
    req = anchor__admin__v1__get_bundle_request__unpack(NULL, len, msg);
    if (req == NULL) {
        admin_fail_malformed(call);
        return;
    }
    if (b == NULL) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_UNAVAILABLE, "the trust bundle is not ready");
        goto out;
    }
    anchor_err_clear(&err);
    if (anchor_bundle_to_pem(&pem, NULL, b, &err) != 0 ||
        anchor_bundle_to_jwks(&jwks, b, &err) != 0) {
        admin_fail(call, ANCHOR_RPC_INTERNAL, "cannot encode the bundle: %s", anchor_err_msg(&err));
        goto out;
    }
    roots = anchor_bundle_get0_roots(b);
    der = calloc((size_t)sk_X509_num(roots) + 1, sizeof(*der));
    if (der == NULL)
        goto oom;
    for (n = 0; n < (size_t)sk_X509_num(roots); n++) {
        unsigned char *p = NULL;
        int l = i2d_X509(sk_X509_value(roots, (int)n), &p);

        if (l <= 0)
            goto oom;
        der[n].data = p;
        der[n].len = (size_t)l;
    }
    resp.trust_domain = (char *)anchor_bundle_trust_domain(b);
    resp.pem = pem;
    resp.jwks = jwks;
    resp.sequence = anchor_bundle_sequence(b);
    resp.n_roots = n;
    resp.roots = der;
    admin_reply(call, &resp.base);
    goto out;
oom:
    anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, "out of memory");
out:
    for (size_t i = 0; der != NULL && i < n; i++)
        OPENSSL_free(der[i].data);
    free(der);
    free(pem);
    free(jwks);
    anchor__admin__v1__get_bundle_request__free_unpacked(req, NULL);
}
