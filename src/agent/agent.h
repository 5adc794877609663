/*
 * anchor-agent's internal interface. The agent is one libevent loop driving
 * one state machine (agent.c):
 *
 *   start ─► login (login.c) ─► SVID kept (svid_store.c) ─► renew (renew.c)
 *              ▲   │ unreachable: back off (backoff.c) and retry    │
 *              └───┴──── renewal refused, or the SVID expired ◄─────┘
 *
 * Every exchange with the server is a fresh TLS connection (tls.c) that
 * verifies the server's certificate against the trust bundle and requires
 * spiffe://<trust-domain>/server; renewals present the current SVID as the
 * client certificate. Login and renewal report their outcome to the state
 * machine through agent_login_done / agent_renew_done, always from a fresh
 * loop turn, never from inside an rpc callback, so the state machine may
 * free connections freely.
 */
#ifndef ANCHOR_AGENT_H
#define ANCHOR_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "anchor/agent_config.h"
#include "anchor/common.h"
#include "anchor/log.h"
#include "anchor/metrics.h"
#include "anchor/spiffeid.h"

struct event_base;
struct event;
struct evhttp;

/* --- backoff.c -------------------------------------------------------------- */

/* Retry delays: the first is ANCHOR_BACKOFF_MIN_MS, each failure doubles it up
 * to ANCHOR_BACKOFF_MAX_MS, and each actual delay is drawn uniformly from
 * [d/2, d] so that agents restarted together do not knock together. */
#define AGENT_BACKOFF_MIN_MS 1000u
#define AGENT_BACKOFF_MAX_MS 60000u

struct agent_backoff {
    uint32_t next_ms; /* 0: not failing */
    uint32_t attempts;
};

/* The delay before the next attempt, in milliseconds; advances the state. */
uint32_t agent_backoff_next(struct agent_backoff *b);
/* Back to the first delay after a success. */
void agent_backoff_reset(struct agent_backoff *b);

/* --- svid.c: an X.509 SVID with its key ---------------------------------------- */

struct agent_svid {
    STACK_OF(X509) * chain; /* the SVID first, then its CA certificates (no root) */
    EVP_PKEY *key;
    char *spiffe_id;
    time_t not_before;
    time_t not_after;
    time_t received; /* when the agent got it: notBefore is backdated by the CA */
};

/* Builds an SVID from the server's DER chain and the key the agent made for
 * it: checks that the first certificate's one URI SAN is spiffe_id (when not
 * NULL) and is in trust_domain, that its public key is `key`, and that it
 * verifies to `roots` now. Takes a reference on key. The caller frees *out
 * with agent_svid_free. */
int agent_svid_from_der(struct agent_svid **out, const uint8_t *const *der, const size_t *der_len,
                        size_t n, EVP_PKEY *key, const char *spiffe_id, const char *trust_domain,
                        STACK_OF(X509) * roots, struct anchor_err *err);
void agent_svid_free(struct agent_svid *svid);

/* Makes a new key for an SVID (EC P-256) and its SubjectPublicKeyInfo DER,
 * in a new buffer (OPENSSL_free). */
int agent_svid_key_new(EVP_PKEY **key, uint8_t **spki, size_t *spki_len, struct anchor_err *err);

/* Parses the DER roots of a Bundle message into a new stack; each must be a
 * CA certificate. At most ANCHOR_BUNDLE_MAX_ROOTS. */
int agent_roots_from_der(STACK_OF(X509) * *out, const uint8_t *const *der, const size_t *der_len,
                         size_t n, struct anchor_err *err);

/* --- svid_store.c: data-dir ------------------------------------------------------- */

/* File names inside data-dir. */
#define AGENT_SVID_FILE   "agent-svid.pem"
#define AGENT_KEY_FILE    "agent-svid-key.pem"
#define AGENT_BUNDLE_FILE "bundle.pem"

/* Creates data-dir (mode 0700) when it is missing. */
int agent_store_init(const char *dir, struct anchor_err *err);
/* Writes the SVID chain, its key (mode 0600) and the roots, each to a
 * temporary file that is flushed and renamed over the old one (key first;
 * see svid_store.c). Returns 0, or -1 with the file and reason in err. */
int agent_store_save(const char *dir, const struct agent_svid *svid, STACK_OF(X509) * roots,
                     struct anchor_err *err);
/* Reads the roots kept in data-dir into a new stack; *out is NULL (and 0 is
 * returned) when the file does not exist. */
int agent_store_load_roots(const char *dir, const char *trust_domain, STACK_OF(X509) * *out,
                           struct anchor_err *err);
/* Reads the SVID and its key kept in data-dir and checks them as a new
 * SVID is checked (agent_svid_from_der, against roots, now: an expired SVID
 * is refused). *out is NULL (and 0 is returned) when there is none. */
int agent_store_load_svid(const char *dir, const char *trust_domain, STACK_OF(X509) * roots,
                          struct agent_svid **out, struct anchor_err *err);
/* Reads a PEM file of CA certificates (the bootstrap bundle) into a new
 * stack. */
int agent_roots_load_pem(const char *path, const char *trust_domain, STACK_OF(X509) * *out,
                         struct anchor_err *err);

/* --- tls.c ------------------------------------------------------------------------ */

/* What the verification callback checks, and why it refused a server. */
struct agent_tls_check {
    char expected[ANCHOR_TRUST_DOMAIN_MAX_LEN + 32]; /* spiffe://<td>/server */
    char reason[512];                                /* "" until a refusal */
};

/* A client SSL_CTX that trusts the union of `bootstrap` and `current` (either
 * may be NULL) and accepts only a server whose certificate's SPIFFE ID is
 * spiffe://<trust_domain>/server. With client_svid, presents it (mutual
 * TLS). chk must outlive the context; its reason says why a handshake was
 * refused. The caller frees *out with SSL_CTX_free. */
int agent_tls_ctx_new(SSL_CTX **out, struct agent_tls_check *chk, const char *trust_domain,
                      STACK_OF(X509) * bootstrap, STACK_OF(X509) * current,
                      const struct agent_svid *client_svid, struct anchor_err *err);

/* --- the agent ------------------------------------------------------------------- */

struct login;
struct renew;

struct agent {
    struct anchor_agent_config *cfg;
    struct anchor_log *log;
    struct event_base *base;
    struct anchor_metrics *metrics;
    struct anchor_series *proof_success;
    struct anchor_series *proof_failed;
    struct anchor_series *login_success;
    struct anchor_series *login_failed;
    struct anchor_series *renew_success;
    struct anchor_series *renew_failed;
    struct anchor_series *svid_expiry;
    struct evhttp *http;
    int once;
    int exit_code;
    int stopping;

    STACK_OF(X509) * bootstrap_roots; /* trust-bundle-path */
    STACK_OF(X509) * roots;           /* the bundle from the server, or NULL */
    uint64_t bundle_sequence;
    struct agent_svid *svid; /* NULL until the first login */

    struct login *login; /* the attempt in flight, if any */
    struct renew *renew;
    struct event *timer; /* the next step */
    void (*next_step)(struct agent *a);
    struct agent_backoff backoff;
    struct agent_tls_check tls_check;
};

/* The outcome of an exchange with the server. */
struct agent_result {
    int ok;
    int status;            /* gRPC status; ANCHOR_RPC_UNAVAILABLE for transport failures */
    char message[1024];    /* the server's message or the local reason */
    int proof_sent;        /* login: the challenge was answered */
    int credential_failed; /* login: the credential files could not be used */
};

/* login.c: one Login stream on a new connection. The result, and on success
 * the new SVID (ownership to the agent) and roots, are given to
 * agent_login_done. On failure to start, *credential_failed says whether the
 * credential files were the cause. */
int login_start(struct agent *a, int *credential_failed, struct anchor_err *err);
/* Abandons the attempt in flight (no callback afterwards). */
void login_cancel(struct agent *a);

/* renew.c: one RenewSVID call over mutual TLS with the current SVID. */
int renew_start(struct agent *a, struct anchor_err *err);
void renew_cancel(struct agent *a);

/* agent.c: the state machine. */
void agent_login_done(struct agent *a, const struct agent_result *r, struct agent_svid *svid,
                      STACK_OF(X509) * roots, uint64_t sequence);
void agent_renew_done(struct agent *a, const struct agent_result *r, struct agent_svid *svid,
                      STACK_OF(X509) * roots, uint64_t sequence);
int agent_init(struct agent *a, struct anchor_err *err);
void agent_start(struct agent *a);
void agent_stop(struct agent *a);
void agent_cleanup(struct agent *a);

/* metrics_http.c: GET /metrics on cfg->metrics_address (when set). */
int agent_metrics_http_start(struct agent *a, struct anchor_err *err);
/* Closes the endpoint. Accepts an agent without one. */
void agent_metrics_http_stop(struct agent *a);

#endif
