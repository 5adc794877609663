/*
 * The agent's state machine (agent.h has the picture). One timer holds the
 * next step; a login or renewal in flight reports back through
 * agent_login_done / agent_renew_done, which decide the next step:
 *
 *   login ok        keep the SVID, log "Connected to server", renew later
 *   login refused   log the server's message; --once: exit 1; else retry
 *                   with backoff (the operator may fix the policy or files)
 *   unreachable     retry with backoff (1 s doubling to 60 s, jittered)
 *   renew ok        keep the new SVID, renew again later
 *   renew refused   (PERMISSION_DENIED, UNAUTHENTICATED) attest again now
 *   renew failed    retry with backoff; once the SVID has expired, attest
 *
 * Renewal is due before half of the SVID's lifetime has passed: at 40 to 50
 * percent of it, drawn at random so that agents spread out.
 */
#include "agent.h"

#include "anchor/rpc.h"
#include "anchor/x509pop.h"

#include <event2/event.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void format_time(char *buf, size_t size, time_t t)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        (void)snprintf(buf, size, "%lld", (long long)t);
}

static void schedule(struct agent *a, uint32_t delay_ms, void (*step)(struct agent *a))
{
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};

    a->next_step = step;
    if (evtimer_add(a->timer, &tv) != 0) {
        ANCHOR_LOGF(a->log, ANCHOR_LOG_ERROR, "Cannot schedule the next step",
                    ANCHOR_LOG_INT("delayMs", delay_ms));
        a->exit_code = 1;
        (void)event_base_loopexit(a->base, NULL);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct agent *a = arg;
    void (*step)(struct agent *) = a->next_step;

    (void)fd;
    (void)what;
    a->next_step = NULL;
    if (step != NULL && !a->stopping)
        step(a);
}

/* Prints "anchor-agent: <msg>" on stderr with control characters written as
 * \xNN: the message may come from the server, and must not be able to end
 * the line early or drive the terminal. */
static void put_error(const char *msg)
{
    (void)fputs("anchor-agent: ", stderr);
    for (const unsigned char *c = (const unsigned char *)msg; *c != '\0'; c++) {
        if (*c < 0x20 || *c == 0x7f)
            (void)fprintf(stderr, "\\x%02x", *c);
        else
            (void)fputc(*c, stderr);
    }
    (void)fputc('\n', stderr);
}

static void finish_once(struct agent *a, int code)
{
    a->exit_code = code;
    a->stopping = 1;
    (void)event_base_loopexit(a->base, NULL);
}

/* Milliseconds from now until the renewal of svid is due. The lifetime is
 * counted from when the agent received the SVID, not from notBefore, which
 * the CA backdates (ANCHOR_CA_BACKDATE) for peers with slow clocks. Never
 * less than AGENT_RENEW_MIN_MS, so that a server handing out SVIDs that are
 * about to expire cannot make the agent spin. */
#define AGENT_RENEW_MIN_MS 1000u
static uint32_t renew_delay_ms(const struct agent_svid *svid)
{
    time_t now = time(NULL);
    time_t start = svid->received > svid->not_before ? svid->received : svid->not_before;
    double ttl = difftime(svid->not_after, start);
    uint16_t r = 0;
    double at;
    double delay;

    if (ttl <= 0)
        return AGENT_RENEW_MIN_MS;
    (void)RAND_bytes((unsigned char *)&r, sizeof(r));
    /* 40..50 % of the lifetime: always before half of it has passed. */
    at = (double)start + ttl * (0.4 + 0.1 * (double)r / 65535.0);
    delay = (at - (double)now) * 1000.0;
    if (delay < AGENT_RENEW_MIN_MS)
        return AGENT_RENEW_MIN_MS;
    if (delay > 86400.0 * 1000.0)
        return 86400u * 1000u;
    return (uint32_t)delay;
}

static void do_login(struct agent *a);
static void do_renew(struct agent *a);

/* Installs a new SVID (and bundle, when given) and writes them to data-dir. */
static int install(struct agent *a, struct agent_svid *svid, STACK_OF(X509) * roots,
                   uint64_t sequence)
{
    struct anchor_err err;

    agent_svid_free(a->svid);
    a->svid = svid;
    if (roots != NULL) {
        sk_X509_pop_free(a->roots, X509_free);
        a->roots = roots;
        a->bundle_sequence = sequence;
    }
    if (a->svid_expiry != NULL)
        anchor_series_set(a->svid_expiry, (double)svid->not_after);
    anchor_err_clear(&err);
    if (agent_store_save(a->cfg->data_dir, a->svid, a->roots, &err) != 0) {
        ANCHOR_LOGF(a->log, ANCHOR_LOG_ERROR, "Cannot write the SVID to data-dir",
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)),
                    ANCHOR_LOG_STR("dataDir", a->cfg->data_dir));
        return -1;
    }
    return 0;
}

/* The signer proof outcome of a failed login: "failed" when the server
 * refused the agent's attestation (its chain or its proof: the two
 * documented messages) or the agent could not load its credential to
 * prove; nothing for unreachable servers and for refusals that are not
 * about the proof (cluster id, policy, ban). */
static int proof_failed(const struct agent_result *r)
{
    static const char *const phrases[] = {
        "Attestor rejected proof, policy failed",
        "Authorization failed: challenge response failed validation",
    };

    if (r->credential_failed)
        return 1;
    if (r->status != ANCHOR_RPC_PERMISSION_DENIED)
        return 0;
    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++) {
        if (strncmp(r->message, phrases[i], strlen(phrases[i])) == 0)
            return 1;
    }
    return 0;
}

static void login_failed(struct agent *a, const struct agent_result *r)
{
    uint32_t delay;

    anchor_series_inc(a->login_failed);
    if (proof_failed(r))
        anchor_series_inc(a->proof_failed);
    if (a->once) {
        ANCHOR_LOGF(a->log, ANCHOR_LOG_ERROR, "Login failed", ANCHOR_LOG_STR("error", r->message),
                    ANCHOR_LOG_STR("status", anchor_rpc_status_name(r->status)));
        put_error(r->message);
        finish_once(a, 1);
        return;
    }
    delay = agent_backoff_next(&a->backoff);
    ANCHOR_LOGF(a->log, ANCHOR_LOG_ERROR, "Login failed", ANCHOR_LOG_STR("error", r->message),
                ANCHOR_LOG_STR("status", anchor_rpc_status_name(r->status)),
                ANCHOR_LOG_INT("attempt", a->backoff.attempts), ANCHOR_LOG_INT("retryInMs", delay));
    schedule(a, delay, do_login);
}

void agent_login_done(struct agent *a, const struct agent_result *r, struct agent_svid *svid,
                      STACK_OF(X509) * roots, uint64_t sequence)
{
    char expires[32];
    const char *types[8];
    size_t n = a->cfg->nattestors < 8 ? a->cfg->nattestors : 8;
    int stored;

    if (!r->ok || svid == NULL) {
        agent_svid_free(svid);
        sk_X509_pop_free(roots, X509_free);
        login_failed(a, r);
        return;
    }
    anchor_series_inc(a->proof_success);
    anchor_series_inc(a->login_success);
    agent_backoff_reset(&a->backoff);
    stored = install(a, svid, roots, sequence);
    for (size_t i = 0; i < n; i++)
        types[i] = a->cfg->attestors[i].type;
    format_time(expires, sizeof(expires), a->svid->not_after);
    ANCHOR_LOGF(a->log, ANCHOR_LOG_INFO, "Connected to server",
                ANCHOR_LOG_STR("spiffeId", a->svid->spiffe_id),
                ANCHOR_LOG_STR("serverAddress", a->cfg->server_address),
                ANCHOR_LOG_STRS("attestors", types, n), ANCHOR_LOG_STR("expiresAt", expires));
    if (a->once) {
        if (stored != 0) {
            (void)fprintf(stderr, "anchor-agent: cannot write the SVID to %s\n", a->cfg->data_dir);
            finish_once(a, 1);
            return;
        }
        (void)printf("%s\n", a->svid->spiffe_id);
        (void)fflush(stdout);
        finish_once(a, 0);
        return;
    }
    schedule(a, renew_delay_ms(a->svid), do_renew);
}

void agent_renew_done(struct agent *a, const struct agent_result *r, struct agent_svid *svid,
                      STACK_OF(X509) * roots, uint64_t sequence)
{
    char expires[32];
    uint32_t delay;

    if (r->ok && svid != NULL) {
        anchor_series_inc(a->renew_success);
        agent_backoff_reset(&a->backoff);
        (void)install(a, svid, roots, sequence);
        format_time(expires, sizeof(expires), a->svid->not_after);
        ANCHOR_LOGF(a->log, ANCHOR_LOG_INFO, "Renewed SVID",
                    ANCHOR_LOG_STR("spiffeId", a->svid->spiffe_id),
                    ANCHOR_LOG_STR("expiresAt", expires));
        schedule(a, renew_delay_ms(a->svid), do_renew);
        return;
    }
    agent_svid_free(svid);
    sk_X509_pop_free(roots, X509_free);
    anchor_series_inc(a->renew_failed);
    if (r->status == ANCHOR_RPC_PERMISSION_DENIED || r->status == ANCHOR_RPC_UNAUTHENTICATED) {
        ANCHOR_LOGF(a->log, ANCHOR_LOG_WARN, "SVID renewal refused, attesting again",
                    ANCHOR_LOG_STR("error", r->message),
                    ANCHOR_LOG_STR("status", anchor_rpc_status_name(r->status)));
        agent_backoff_reset(&a->backoff);
        schedule(a, 0, do_login);
        return;
    }
    delay = agent_backoff_next(&a->backoff);
    /* Look again as the SVID expires, not a back-off step later: from
     * then on the agent must attest, not renew. */
    if (a->svid != NULL) {
        double left_ms = difftime(a->svid->not_after, time(NULL)) * 1000.0 + 100.0;

        if (left_ms < (double)delay)
            delay = left_ms > 0 ? (uint32_t)left_ms : 0;
    }
    ANCHOR_LOGF(a->log, ANCHOR_LOG_WARN, "SVID renewal failed", ANCHOR_LOG_STR("error", r->message),
                ANCHOR_LOG_STR("status", anchor_rpc_status_name(r->status)),
                ANCHOR_LOG_INT("attempt", a->backoff.attempts), ANCHOR_LOG_INT("retryInMs", delay));
    schedule(a, delay, do_renew);
}

static void do_login(struct agent *a)
{
    struct anchor_err err;
    struct agent_result r;
    int credential_failed = 0;

    anchor_err_clear(&err);
    if (login_start(a, &credential_failed, &err) == 0)
        return;
    /* A local failure: most often a certificate or key file that was
     * replaced by a broken one. The agent cannot prove: a failed proof. */
    memset(&r, 0, sizeof(r));
    r.status = credential_failed ? ANCHOR_RPC_FAILED_PRECONDITION : ANCHOR_RPC_INTERNAL;
    r.credential_failed = credential_failed;
    (void)snprintf(r.message, sizeof(r.message), "%s", anchor_err_msg(&err));
    login_failed(a, &r);
}

static void do_renew(struct agent *a)
{
    struct anchor_err err;
    struct agent_result r;

    if (a->svid == NULL || time(NULL) >= a->svid->not_after) {
        ANCHOR_LOGF(a->log, ANCHOR_LOG_WARN, "SVID expired, attesting again",
                    ANCHOR_LOG_STR("spiffeId", a->svid != NULL ? a->svid->spiffe_id : ""));
        /* A new phase: logins back off from the first step again. */
        agent_backoff_reset(&a->backoff);
        do_login(a);
        return;
    }
    anchor_err_clear(&err);
    if (renew_start(a, &err) == 0)
        return;
    memset(&r, 0, sizeof(r));
    r.status = ANCHOR_RPC_INTERNAL;
    (void)snprintf(r.message, sizeof(r.message), "%s", anchor_err_msg(&err));
    agent_renew_done(a, &r, NULL, NULL, 0);
}

/* --- setup ------------------------------------------------------------------------ */

static int register_metrics(struct agent *a, struct anchor_err *err)
{
    static const char *const proof_labels[] = {"attestor_type", "outcome"};
    static const char *const result_labels[] = {"result"};
    static const char *const ok[] = {ANCHOR_X509POP_TYPE, "success"};
    static const char *const bad[] = {ANCHOR_X509POP_TYPE, "failed"};
    static const char *const success[] = {"success"};
    static const char *const failure[] = {"failed"};
    struct anchor_metric *proof;
    struct anchor_metric *logins;
    struct anchor_metric *renewals;
    struct anchor_metric *expiry;

    if (anchor_metrics_new(&a->metrics, err) != 0 ||
        anchor_metrics_counter(a->metrics, "anchor_attestation_signer_proof_total",
                               "Proofs of possession made by this agent, by attestor type and "
                               "outcome.",
                               proof_labels, 2, &proof, err) != 0 ||
        anchor_metric_series(proof, ok, 2, &a->proof_success, err) != 0 ||
        anchor_metric_series(proof, bad, 2, &a->proof_failed, err) != 0 ||
        anchor_metrics_counter(a->metrics, "anchor_agent_logins_total",
                               "Logins to the Trust Domain Server, by result.", result_labels, 1,
                               &logins, err) != 0 ||
        anchor_metric_series(logins, success, 1, &a->login_success, err) != 0 ||
        anchor_metric_series(logins, failure, 1, &a->login_failed, err) != 0 ||
        anchor_metrics_counter(a->metrics, "anchor_agent_svid_renewals_total",
                               "Renewals of the agent SVID, by result.", result_labels, 1,
                               &renewals, err) != 0 ||
        anchor_metric_series(renewals, success, 1, &a->renew_success, err) != 0 ||
        anchor_metric_series(renewals, failure, 1, &a->renew_failed, err) != 0 ||
        anchor_metrics_gauge(a->metrics, "anchor_agent_svid_expiry_timestamp_seconds",
                             "When the agent's current SVID expires (Unix time; 0: none).", NULL, 0,
                             &expiry, err) != 0 ||
        anchor_metric_series(expiry, NULL, 0, &a->svid_expiry, err) != 0)
        return -1;
    return 0;
}

/* Takes up the SVID a previous run kept in data-dir, when it still verifies
 * to the trust bundle and has not expired, so that the agent holds a valid
 * SVID (/health/ready) while the server is out of reach. The agent logs in
 * at start all the same. */
static void load_kept_svid(struct agent *a)
{
    STACK_OF(X509) *all = sk_X509_dup(a->bootstrap_roots);
    struct agent_svid *svid = NULL;
    struct anchor_err err;
    char expires[32];

    anchor_err_clear(&err);
    for (int i = 0; all != NULL && i < sk_X509_num(a->roots); i++) {
        if (sk_X509_push(all, sk_X509_value(a->roots, i)) <= 0) {
            sk_X509_free(all);
            all = NULL;
        }
    }
    if (all == NULL)
        return;
    if (agent_store_load_svid(a->cfg->data_dir, a->cfg->trust_domain, all, &svid, &err) != 0) {
        ANCHOR_LOGF(a->log, ANCHOR_LOG_INFO, "Ignoring the SVID kept in data-dir",
                    ANCHOR_LOG_STR("error", anchor_err_msg(&err)));
    } else if (svid != NULL) {
        a->svid = svid;
        anchor_series_set(a->svid_expiry, (double)svid->not_after);
        format_time(expires, sizeof(expires), svid->not_after);
        ANCHOR_LOGF(a->log, ANCHOR_LOG_INFO, "Loaded SVID from data-dir",
                    ANCHOR_LOG_STR("spiffeId", svid->spiffe_id),
                    ANCHOR_LOG_STR("expiresAt", expires));
    }
    sk_X509_free(all);
}

int agent_init(struct agent *a, struct anchor_err *err)
{
    const struct anchor_agent_config *cfg = a->cfg;
    struct anchor_err werr;

    if (register_metrics(a, err) != 0)
        return -1;
    /* Refuse to start on credentials the server would refuse anyway, with
     * the engine's message (key mismatch, no digitalSignature, ...). */
    for (size_t i = 0; i < cfg->nattestors; i++) {
        struct anchor_x509pop_credential *cred = NULL;
        const struct anchor_agent_attestor *at = &cfg->attestors[i];

        if (anchor_x509pop_credential_load(&cred, at->certificate_path, at->intermediates_path,
                                           at->private_key_path, err) != 0) {
            anchor_err_prefix(err, "x509pop credential");
            return -1;
        }
        anchor_x509pop_credential_free(cred);
    }
    if (agent_roots_load_pem(cfg->trust_bundle_path, cfg->trust_domain, &a->bootstrap_roots, err) !=
        0) {
        anchor_err_prefix(err, "trust-bundle-path");
        return -1;
    }
    if (agent_store_init(cfg->data_dir, err) != 0)
        return -1;
    anchor_err_clear(&werr);
    if (agent_store_load_roots(cfg->data_dir, cfg->trust_domain, &a->roots, &werr) != 0)
        ANCHOR_LOGF(a->log, ANCHOR_LOG_WARN, "Ignoring the bundle kept in data-dir",
                    ANCHOR_LOG_STR("error", anchor_err_msg(&werr)));
    load_kept_svid(a);
    a->timer = evtimer_new(a->base, on_timer, a);
    if (a->timer == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    if (cfg->metrics_address != NULL && agent_metrics_http_start(a, err) != 0)
        return -1;
    return 0;
}

void agent_start(struct agent *a)
{
    if (a->cfg->disable_kubernetes_attestation == 0)
        ANCHOR_LOGF(a->log, ANCHOR_LOG_WARN,
                    "Kubernetes attestation is not available in anchor-agent; ignoring it",
                    ANCHOR_LOG_BOOL("disableKubernetesAttestation", 0));
    schedule(a, 0, do_login);
}

void agent_stop(struct agent *a)
{
    a->stopping = 1;
    login_cancel(a);
    renew_cancel(a);
    if (a->timer != NULL)
        (void)evtimer_del(a->timer);
    (void)event_base_loopexit(a->base, NULL);
}

void agent_cleanup(struct agent *a)
{
    login_cancel(a);
    renew_cancel(a);
    if (a->timer != NULL)
        event_free(a->timer);
    a->timer = NULL;
    agent_metrics_http_stop(a);
    agent_svid_free(a->svid);
    a->svid = NULL;
    sk_X509_pop_free(a->roots, X509_free);
    sk_X509_pop_free(a->bootstrap_roots, X509_free);
    a->roots = a->bootstrap_roots = NULL;
    anchor_metrics_free(a->metrics);
    a->metrics = NULL;
}
