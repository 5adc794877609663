/*
 * anchor-server: the context every part of the program shares.
 *
 * The server is one thread running one libevent loop (ctx->base): the agent
 * API (TLS listener, Login/RenewSVID/FetchBundle), the admin API (unix socket)
 * and the config watcher (a timer polling the store), the metrics/health HTTP
 * endpoint, and the TLS rotation timer all run as callbacks on it. So the
 * store (one connection) and the rest of the context are used from that one
 * thread only. The configuration snapshot is nonetheless guarded by a mutex,
 * so that a helper thread could swap it safely.
 *
 * Files: main.c (arguments, start, loop, stop), server_config.c and
 * server_config_yaml.c (server.yaml and --flags), tls.c (server certificate
 * and its rotation), login.c and login_attest.c (the Login stream), issue.c
 * (agent SVIDs), renew.c (RenewSVID, FetchBundle over mutual TLS), http.c
 * (metrics and the health endpoints), snapshot.c (the AgentAttestation
 * snapshot). admin*.c and config_watch*.c (the admin API and the config
 * watcher) are a teammate's; their entry points are
 * declared at the bottom of this file.
 */
#ifndef ANCHOR_SERVER_H
#define ANCHOR_SERVER_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "anchor/ca.h"
#include "anchor/common.h"
#include "anchor/log.h"
#include "anchor/metrics.h"
#include "anchor/policy.h"
#include "anchor/rpc.h"
#include "anchor/store.h"

struct event_base;
struct event;
struct evhttp;

/* --- configuration (server_config.c) --------------------------------------- */

#define SERVER_DEFAULT_LISTEN_ADDRESS  "0.0.0.0:8081"
#define SERVER_DEFAULT_ADMIN_SOCKET    "/run/anchor/admin.sock"
#define SERVER_DEFAULT_DATA_DIR        "/var/lib/anchor"
#define SERVER_DEFAULT_METRICS_ADDRESS "127.0.0.1:9090"
#define SERVER_DEFAULT_LOGIN_TIMEOUT   30000    /* milliseconds */
#define SERVER_DEFAULT_AGENT_SVID_TTL  3600     /* seconds */
#define SERVER_DEFAULT_SERVER_CERT_TTL 86400    /* seconds */
#define SERVER_DEFAULT_CONFIG_POLL_MS  1000     /* config watcher interval */
#define SERVER_MAX_TTL                 31536000 /* one year, seconds */

/*
 * Every setting of server.yaml; each key is also a --flag of the same name
 * (nested ca keys as --ca-key-type, --ca-root-ttl...). Strings are owned by
 * the struct (free with server_config_cleanup); NULL means "not set" for the
 * optional ones. Durations are seconds unless the name says _ms.
 */
struct server_config {
    char *config_path;     /* --config, or NULL */
    char *trust_domain;    /* trust-domain (required) */
    char *cluster_id;      /* cluster-id (required) */
    char *listen_address;  /* listen-address, host:port */
    char *admin_socket;    /* admin-socket path */
    char *admin_group;     /* admin-group: group name also allowed on the admin socket, or NULL */
    char *data_dir;        /* data-dir */
    char *datastore;       /* datastore URL; default sqlite://<data-dir>/anchor.db */
    char *metrics_address; /* metrics-address, host:port; "" or "off" disables */
    enum anchor_log_level log_level;
    enum anchor_log_format log_format;
    long login_timeout_ms;            /* login-timeout (tests: may be small) */
    long config_poll_ms;              /* config-poll-interval, milliseconds (watcher) */
    enum anchor_key_type ca_key_type; /* ca.key-type: ec-p256 (default) | rsa-2048 */
    long ca_root_ttl;                 /* ca.root-ttl: self-signed root lifetime */
    long agent_svid_ttl;              /* ca.agent-svid-ttl */
    long server_cert_ttl;             /* ca.server-cert-ttl */
    char *ca_upstream_cert;           /* ca.upstream-cert: PEM chain, or NULL */
    char *ca_upstream_key;            /* ca.upstream-key */
    char *ca_upstream_bundle;         /* ca.upstream-bundle, or NULL */
};

/* Fills cfg from argv (--config FILE read first, then every other --flag
 * overriding the file), applies defaults and checks everything. On error
 * the message is in err (e.g. `server.yaml: unknown key "listen-adress"`)
 * and cfg must still be cleaned up. *exit_now is set to 1 when --help or
 * --version was printed. */
int server_config_load(struct server_config *cfg, int argc, char **argv, int *exit_now,
                       struct anchor_err *err);
void server_config_cleanup(struct server_config *cfg);
/* Splits "host:port" ("[v6]:port" too) into a new host string (free()) and
 * a port. An empty host ("" or "*") gives NULL (all addresses). */
int server_split_hostport(const char *addr, char **host, uint16_t *port, struct anchor_err *err);

/* --- metrics (http.c registers them) ---------------------------------------- */

struct server_metrics {
    struct anchor_series *proof_success; /* agent_proof_total{x509pop,success} */
    struct anchor_series *proof_failed;  /* agent_proof_total{x509pop,failed} */
    struct anchor_metric *login_total;   /* {result} */
    struct anchor_metric *login_duration;
    struct anchor_series *svid_issued;
    struct anchor_series *connected_agents;
};

/* --- the context -------------------------------------------------------------- */

/* Certificates encoded once at start, sent with every SVID and bundle. */
struct server_der {
    uint8_t **der;
    size_t *len;
    size_t n;
};
int server_der_from_stack(struct server_der *out, STACK_OF(X509) * certs, struct anchor_err *err);
void server_der_cleanup(struct server_der *d);

struct server_login; /* a Login in flight (login.c) */
struct server_admin; /* the admin API (teammate) */
struct server_watch; /* the config watcher (teammate) */

struct server_ctx {
    struct server_config cfg;
    struct event_base *base;
    struct anchor_log *log; /* never NULL once started */
    struct anchor_metrics *metrics;
    struct server_metrics m;
    struct anchor_store *store; /* loop thread only */
    struct anchor_ca *ca;
    struct anchor_bundle *bundle; /* the roots served to agents */
    struct server_der roots_der;  /* the bundle's roots, DER, encoded once */
    struct server_der chain_der;  /* the CA chain sent after an SVID (no root) */
    X509_STORE *trust_store;      /* verifies agent SVIDs on mutual TLS */

    /* agent API */
    struct anchor_rpc_server *rpc;
    SSL_CTX *tls;                /* current server certificate (tls.c) */
    time_t tls_not_after;        /* of the current server certificate */
    struct event *tls_rotate;    /* rotation timer */
    uint16_t listen_port;        /* bound port (listen-address may say 0) */
    struct server_login *logins; /* Logins in flight, a list */
    size_t n_logins;
    uint64_t connected_agents; /* last value of the gauge (http.c) */

    /* metrics and health */
    struct evhttp *http;
    uint16_t metrics_port;
    int ready; /* 1 once every part is up: /health/ready */

    /* The AgentAttestation snapshot: NULL until a document was applied.
     * Use server_snapshot_get / _swap, never the fields directly. */
    pthread_mutex_t snapshot_mu;
    struct anchor_policy_doc *snapshot;
    int64_t snapshot_version; /* store version of the document, 0 if none */

    /* the teammate's parts, opaque here */
    struct server_admin *admin;
    struct server_watch *watch;

    struct event *sigint, *sigterm;
    int stopping;
};

/* --- the AgentAttestation snapshot (snapshot.c) ------------------------------ */

/* Returns a new reference to the current snapshot (NULL when no document
 * was applied yet). The caller drops it with anchor_policy_doc_free. A Login
 * takes one when it starts and keeps it to the end. */
struct anchor_policy_doc *server_snapshot_get(struct server_ctx *ctx);

/* Publishes new_doc as the snapshot. Takes a reference of its own on
 * new_doc (the caller keeps, and later frees, its own); NULL clears the
 * snapshot. The previous document loses the context's reference; Logins
 * that took one keep it alive until they end. version is the store version
 * of the document (0 when not from the store), kept for health and logs. */
void server_snapshot_swap(struct server_ctx *ctx, struct anchor_policy_doc *new_doc,
                          int64_t version);

/* Version of the document of the current snapshot (0: none). */
int64_t server_snapshot_version(struct server_ctx *ctx);

/* Reads the latest AgentAttestation document of the cluster from the store
 * and, when there is one, parses it and publishes it (used at start before
 * the watcher runs). A document that does not parse is logged and skipped
 * (the snapshot stays empty). */
int server_snapshot_load(struct server_ctx *ctx, struct anchor_err *err);

/* --- parts of the server (each file's own contract) --------------------------- */

/* tls.c: builds ctx->tls with a fresh spiffe://<td>/server certificate and
 * arms the rotation timer (rotation at two thirds of its lifetime). */
int server_tls_init(struct server_ctx *ctx, struct anchor_err *err);
void server_tls_cleanup(struct server_ctx *ctx);

/* login.c / renew.c: register the AgentAPI methods on ctx->rpc. */
int server_login_register(struct server_ctx *ctx, struct anchor_err *err);
void server_login_cleanup(struct server_ctx *ctx); /* drops logins in flight */
int server_renew_register(struct server_ctx *ctx, struct anchor_err *err);

/* http.c: registers the metric families (before anything counts) and serves
 * them with /health/live and /health/ready on cfg.metrics_address. */
int server_metrics_init(struct server_ctx *ctx, struct anchor_err *err);
int server_http_start(struct server_ctx *ctx, struct anchor_err *err);
void server_http_stop(struct server_ctx *ctx);
/* Counts a Login outcome ("success", "failed") with its duration. */
void server_metrics_login(struct server_ctx *ctx, const char *result, double seconds);

/* --- the teammate's parts (admin*.c, config_watch*.c) ------------------------- */

/*
 * Started by main.c after the store, the CA and the initial snapshot are
 * ready, on ctx->base; stopped before those are freed. They are weak here so
 * that the server links before they exist; main.c calls them when present.
 *   server_admin_start: listens on cfg.admin_socket (access: root and
 *     cfg.admin_group), serves the admin API with ctx->store.
 *   server_config_watch_start: polls the store every cfg.config_poll_ms and
 *     calls server_snapshot_swap on a new AgentAttestation document of
 *     cfg.cluster_id (its version now server_snapshot_version(ctx)).
 */
int server_admin_start(struct server_ctx *ctx, struct anchor_err *err) __attribute__((weak));
void server_admin_stop(struct server_ctx *ctx) __attribute__((weak));
int server_config_watch_start(struct server_ctx *ctx, struct anchor_err *err) __attribute__((weak));
void server_config_watch_stop(struct server_ctx *ctx) __attribute__((weak));

#endif
