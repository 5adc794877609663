/*
 * The attestation half of a Login (login.c drives the stream): which policy
 * of the snapshot applies and whether its attestors accept the agent's
 * evidence, the check of the proofs against their nonces and the
 * connection's exporter, and the attributes and SPIFFE ID that follow.
 *
 * Failures are logged here with the engine's message under its documented
 * phrase (msg) and the full text in `error`, with attestorType; the caller
 * tells the agent only the documented agent-side message.
 */
#include "login.h"

#include <stdlib.h>
#include <string.h>

int login_type_ok(const char *t)
{
    size_t n = strlen(t);

    if (n == 0 || n > MAX_TYPE_LEN)
        return 0;
    for (const char *c = t; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return 0;
    }
    return 1;
}

/* The documented phrase an engine message starts with, so that the log's
 * msg is fixed while the full text goes in the error field. */
static const char *engine_phrase(const char *msg)
{
    static const char *const phrases[] = {
        "certificate chain verification failed",
        "certificate does not include digitalSignature key usage",
        "unsupported key type",
        "failed to verify signature",
    };
    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++) {
        if (strncmp(msg, phrases[i], strlen(phrases[i])) == 0)
            return phrases[i];
    }
    return LOGIN_MSG_REJECTED;
}

static void log_attestor_failure(struct server_login *l, const struct anchor_policy *policy,
                                 const char *type, const struct anchor_err *err)
{
    const char *msg = anchor_err_msg(err);

    ANCHOR_LOGF(l->ctx->log, ANCHOR_LOG_ERROR, engine_phrase(msg),
                ANCHOR_LOG_STR("attestorType", type), ANCHOR_LOG_STR("error", msg),
                ANCHOR_LOG_STR("policy", policy != NULL ? anchor_policy_name(policy) : ""),
                ANCHOR_LOG_STR("peer", l->peer));
}

static const Anchor__Agent__V1__AttestationData *
evidence_of(const Anchor__Agent__V1__LoginStart *st, const char *type)
{
    for (size_t i = 0; i < st->n_attestation_data; i++) {
        if (strcmp(st->attestation_data[i]->type, type) == 0)
            return st->attestation_data[i];
    }
    return NULL;
}

/* Runs one required attestor on its evidence. On failure err has the
 * engine's message (nothing is logged here). */
static int run_attestor(struct server_login *l, struct login_attestor *a,
                        const Anchor__Agent__V1__AttestationData *ev_msg, struct anchor_err *err)
{
    struct anchor_x509pop_evidence *ev = NULL;
    int rc = -1;

    if (ev_msg == NULL) {
        anchor_err_set(err, "no evidence for attestor type \"%s\"", a->type);
        return -1;
    }
    if (a->x509pop == NULL) {
        anchor_err_set(err, "attestor type \"%s\" is not supported by this server", a->type);
        return -1;
    }
    if (anchor_x509pop_evidence_parse(&ev, ev_msg->payload.data, ev_msg->payload.len, err) != 0)
        goto out;
    if (anchor_x509pop_verify(&a->verified, a->x509pop, ev, l->ctx->cfg.trust_domain, time(NULL),
                              err) != 0)
        goto out;
    rc = 0;
out:
    anchor_x509pop_evidence_free(ev);
    return rc;
}

void login_drop_attestors(struct server_login *l)
{
    for (size_t i = 0; i < l->n_att; i++) {
        anchor_x509pop_verified_free(l->att[i].verified);
        OPENSSL_cleanse(l->att[i].nonce, sizeof(l->att[i].nonce));
    }
    memset(l->att, 0, sizeof(l->att));
    l->n_att = 0;
}

/* 1 when every attestor p requires is among provided[0..n). */
static int applies(const struct anchor_policy *p, const char *const *provided, size_t n)
{
    size_t na = anchor_policy_attestor_count(p);

    for (size_t i = 0; i < na; i++) {
        const char *t = anchor_policy_attestor_type(anchor_policy_attestor_get0(p, i));
        size_t j = 0;
        while (j < n && strcmp(provided[j], t) != 0)
            j++;
        if (j == n)
            return 0;
    }
    return 1;
}

/* Runs every attestor of policy p (AND). On success l->att holds them; on
 * failure l->att is empty, err has the message and *failed_type the
 * attestor that gave it. */
static int try_policy(struct server_login *l, const struct anchor_policy *p,
                      const Anchor__Agent__V1__LoginStart *st, const char **failed_type,
                      struct anchor_err *err)
{
    size_t na = anchor_policy_attestor_count(p);

    if (na > MAX_ATTESTORS) {
        anchor_err_set(err, "policy requires %zu attestors (at most %d)", na, MAX_ATTESTORS);
        *failed_type = "";
        return -1;
    }
    for (size_t i = 0; i < na; i++) {
        const struct anchor_policy_attestor *pa = anchor_policy_attestor_get0(p, i);
        struct login_attestor *a = &l->att[i];

        a->type = anchor_policy_attestor_type(pa);
        a->x509pop = anchor_policy_attestor_x509pop(pa);
        l->n_att = i + 1;
        if (run_attestor(l, a, evidence_of(st, a->type), err) != 0) {
            *failed_type = a->type;
            login_drop_attestors(l);
            return -1;
        }
    }
    return 0;
}

enum login_match login_match_policy(struct server_login *l, const Anchor__Agent__V1__LoginStart *st,
                                    const char *const *provided, size_t n, struct anchor_err *err)
{
    struct server_ctx *ctx = l->ctx;
    struct policy_failure {
        const struct anchor_policy *policy;
        const char *type;
        struct anchor_err err;
    } *fails = NULL;
    size_t n_tried = 0;
    size_t np = l->snap != NULL ? anchor_policy_doc_count(l->snap) : 0;

    /* OR across policies, in document order: the first whose attestors all
     * pass authorizes the agent. */
    for (size_t i = 0; i < np && l->policy == NULL; i++) {
        const struct anchor_policy *p = anchor_policy_doc_get0(l->snap, i);
        if (!applies(p, provided, n))
            continue;
        if (n_tried == 0 && fails == NULL)
            fails = calloc(np, sizeof(*fails));
        if (fails == NULL) {
            anchor_err_set(err, "out of memory");
            return LOGIN_MATCH_ERROR;
        }
        anchor_err_clear(&fails[n_tried].err);
        if (try_policy(l, p, st, &fails[n_tried].type, &fails[n_tried].err) == 0)
            l->policy = p;
        else
            fails[n_tried++].policy = p;
    }
    if (l->policy != NULL) {
        free(fails);
        return LOGIN_MATCHED;
    }
    if (n_tried == 0) {
        ANCHOR_LOGF(ctx->log, ANCHOR_LOG_ERROR, LOGIN_MSG_POLICY_NOTFOUND,
                    ANCHOR_LOG_STRS("providedMethods", provided, n),
                    ANCHOR_LOG_BOOL("documentLoaded", l->snap != NULL),
                    ANCHOR_LOG_STR("clusterId", ctx->cfg.cluster_id),
                    ANCHOR_LOG_STR("peer", l->peer));
        free(fails);
        return LOGIN_NO_POLICY;
    }
    /* Every applicable policy failed: each one's reason is logged. */
    for (size_t i = 0; i < n_tried; i++)
        log_attestor_failure(l, fails[i].policy, fails[i].type, &fails[i].err);
    anchor_series_inc(ctx->m.proof_failed);
    free(fails);
    return LOGIN_REJECTED;
}

int login_check_proofs(struct server_login *l, const Anchor__Agent__V1__LoginProofs *pr)
{
    for (size_t i = 0; i < l->n_att; i++) {
        struct login_attestor *a = &l->att[i];
        const Anchor__Agent__V1__ChallengeResponse *resp = NULL;
        struct anchor_x509pop_proof proof;
        struct anchor_err err;
        int ok;

        anchor_err_clear(&err);
        for (size_t j = 0; j < pr->n_responses; j++) {
            if (strcmp(pr->responses[j]->type, a->type) == 0) {
                resp = pr->responses[j];
                break;
            }
        }
        if (!a->nonce_live) {
            anchor_err_set(&err, "failed to verify signature: the challenge was already answered");
            ok = 0;
        } else if (resp == NULL) {
            anchor_err_set(&err, "failed to verify signature: no response to the challenge");
            ok = 0;
        } else {
            ok = anchor_x509pop_proof_parse(&proof, resp->payload.data, resp->payload.len, &err) ==
                     0 &&
                 anchor_x509pop_proof_verify(a->verified, a->nonce, &proof, l->exporter, &err) == 0;
            if (!ok && strncmp(anchor_err_msg(&err), "failed to verify signature", 26) != 0)
                anchor_err_prefix(&err, "failed to verify signature");
        }
        /* One answer per nonce, whatever it was. */
        a->nonce_live = 0;
        OPENSSL_cleanse(a->nonce, sizeof(a->nonce));
        if (!ok) {
            log_attestor_failure(l, l->policy, a->type, &err);
            anchor_series_inc(l->ctx->m.proof_failed);
            return -1;
        }
        anchor_series_inc(l->ctx->m.proof_success);
    }
    return 0;
}

/* Merges the attributes of every attestor, and their log form. */
int login_collect_attrs(struct server_login *l, struct anchor_attrs *attrs, char ***formatted,
                        size_t *n_formatted, struct anchor_err *err)
{
    size_t total = 0;
    size_t k = 0;
    char **f;

    for (size_t i = 0; i < l->n_att; i++)
        total += anchor_x509pop_verified_attrs(l->att[i].verified)->n;
    f = calloc(total > 0 ? total : 1, sizeof(*f));
    if (f == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < l->n_att; i++) {
        const struct anchor_attrs *va = anchor_x509pop_verified_attrs(l->att[i].verified);
        for (size_t j = 0; j < va->n; j++) {
            if (anchor_attrs_set(attrs, va->v[j].name, va->v[j].value, err) != 0 ||
                anchor_attr_format(&f[k], l->att[i].type, &va->v[j], err) != 0)
                goto fail;
            k++;
        }
    }
    *formatted = f;
    *n_formatted = k;
    return 0;
fail:
    for (size_t i = 0; i < k; i++)
        free(f[i]);
    free(f);
    return -1;
}

int login_agent_id(struct server_login *l, const struct anchor_attrs *attrs,
                   struct anchor_spiffeid **id, struct anchor_err *err)
{
    const struct anchor_template *t = anchor_policy_agent_path(l->policy);
    char path[128];

    if (t != NULL)
        return anchor_template_render_spiffeid(id, t, l->ctx->cfg.trust_domain, attrs, err);
    /* The default: /agents/<first attestor type>/<SHA-1 of the x509pop leaf>. */
    (void)snprintf(path, sizeof(path), "/agents/%s/%s", ANCHOR_X509POP_TYPE,
                   anchor_x509pop_verified_fingerprint(l->att[0].verified));
    return anchor_spiffeid_from_path(id, l->ctx->cfg.trust_domain, path, err);
}
