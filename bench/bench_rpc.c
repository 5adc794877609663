/*
 * bench_rpc: unary gRPC calls of libanchor's rpc module, over a unix socket
 * and over TLS 1.3 on loopback. Three ways to run it:
 *
 *   bench_rpc [-n CALLS] [-r RUNS] [-o OP]
 *       scripts/bench's convention: server and client in this one process on
 *       one event loop, so an operation is the whole round trip of a call
 *       (client and server work, no scheduler noise); prints
 *       "OP  N ns/op  M ns/op thread CPU" (medians of RUNS) for
 *       rpc_unary_unix, rpc_unary_unix_x16 (16 calls in flight),
 *       rpc_unary_tls and rpc_unary_tls_x16. The measured loop is
 *       bench_loop, for callgrind.
 *   bench_rpc server [--unix PATH] [--tls-port N --cert F --key F]
 *       serves /anchor.bench.Bench/Echo (the request bytes come back) and
 *       prints {"ready":true,"port":N}; stops on SIGTERM.
 *   bench_rpc client (--unix PATH | --tls HOST:PORT --ca F [--server-name N])
 *       [--calls N] [--warmup N] [--concurrency C] [--size B]
 *       N unary calls (after N warm-up calls) with C in flight on one
 *       connection; prints one JSON line: calls, seconds, calls_per_s,
 *       p50_us, p90_us, p99_us, max_us, errors.
 *
 * bench/bench_rpc.py runs the server and client roles as two processes, and
 * python3-grpcio's client against the same server, for bench/README.md.
 * Messages are raw bytes: this measures the transport, not protobuf. Every
 * run stops after its N calls.
 */
#include "anchor/rpc.h"

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PATH "/anchor.bench.Bench/Echo"

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *opt(int argc, char **argv, const char *name, const char *dflt)
{
    for (int i = 2; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    }
    return dflt;
}

/* --------------------------------------------------------------- server */

static void on_echo(struct anchor_rpc_call *call, const uint8_t *msg, size_t len)
{
    struct anchor_err err;

    if (anchor_rpc_call_send(call, msg, len, &err) != 0) {
        anchor_rpc_call_finish(call, ANCHOR_RPC_INTERNAL, anchor_err_msg(&err));
        return;
    }
    anchor_rpc_call_finish(call, ANCHOR_RPC_OK, NULL);
}

static void on_shutdown_done(struct anchor_rpc_server *srv)
{
    event_base_loopexit(anchor_rpc_server_data(srv), NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    anchor_rpc_server_shutdown(arg, on_shutdown_done);
}

static SSL_CTX *server_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "server certificate: %s\n", ERR_reason_error_string(ERR_get_error()));
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int run_server(int argc, char **argv)
{
    static const struct anchor_rpc_method m = {
        BENCH_PATH, ANCHOR_RPC_UNARY, on_echo, NULL, NULL, NULL, NULL};
    const char *unix_path = opt(argc, argv, "--unix", NULL);
    const char *tls_port = opt(argc, argv, "--tls-port", NULL);
    struct event_base *base = event_base_new();
    struct anchor_rpc_server *srv = NULL;
    struct event *sig = NULL;
    struct anchor_err err;
    SSL_CTX *ctx = NULL;
    uint16_t port = 0;
    int rc = 1;

    if (base == NULL || anchor_rpc_server_new(&srv, base, NULL, &err) != 0 ||
        anchor_rpc_server_register(srv, &m, &err) != 0) {
        fprintf(stderr, "server: %s\n", base ? anchor_err_msg(&err) : "no event base");
        goto out;
    }
    anchor_rpc_server_set_data(srv, base);
    if (unix_path != NULL && anchor_rpc_server_listen_unix(srv, unix_path, 0600, &err) != 0) {
        fprintf(stderr, "listen %s: %s\n", unix_path, anchor_err_msg(&err));
        goto out;
    }
    if (tls_port != NULL) {
        ctx = server_ctx(opt(argc, argv, "--cert", ""), opt(argc, argv, "--key", ""));
        if (ctx == NULL ||
            anchor_rpc_server_listen_tls(srv, "127.0.0.1", (uint16_t)strtoul(tls_port, NULL, 10),
                                         ctx, &port, &err) != 0) {
            fprintf(stderr, "listen tls: %s\n", ctx ? anchor_err_msg(&err) : "no context");
            goto out;
        }
    }
    sig = evsignal_new(base, SIGTERM, on_signal, srv);
    if (sig == NULL || evsignal_add(sig, NULL) != 0)
        goto out;
    printf("{\"ready\":true,\"port\":%u}\n", (unsigned)port);
    fflush(stdout);
    if (event_base_dispatch(base) != 0)
        goto out;
    rc = 0;
out:
    if (sig != NULL)
        event_free(sig);
    anchor_rpc_server_free(srv);
    SSL_CTX_free(ctx);
    if (base != NULL)
        event_base_free(base);
    return rc;
}

/* --------------------------------------------------------------- client */

struct bench {
    struct event_base *base;
    struct anchor_rpc_client *client;
    uint8_t *msg;
    size_t size;
    long warmup, calls, concurrency, started, done, errors, in_flight;
    uint64_t *lat; /* ns per measured call */
    uint64_t t0, t1;
};

static void fill(struct bench *b);

static void on_status(struct anchor_rpc_client_call *cc, enum anchor_rpc_status status,
                      const char *message, const struct anchor_rpc_md *trailers, size_t n)
{
    struct bench *b = anchor_rpc_client_data(anchor_rpc_client_call_client(cc));
    uint64_t started = (uint64_t)(uintptr_t)anchor_rpc_client_call_data(cc);
    long i = b->done++;

    (void)trailers;
    (void)n;
    b->in_flight--;
    if (status != ANCHOR_RPC_OK) {
        if (b->errors++ < 5)
            fprintf(stderr, "call: %s %s\n", anchor_rpc_status_name((int)status), message);
    }
    if (b->warmup > 0 && i == b->warmup - 1)
        b->t0 = now_ns();
    if (i >= b->warmup && b->lat != NULL)
        b->lat[i - b->warmup] = now_ns() - started;
    if (b->done == b->warmup + b->calls) {
        b->t1 = now_ns();
        event_base_loopexit(b->base, NULL);
        return;
    }
    fill(b);
}

/* Keeps `concurrency` calls in flight until every call was started. */
static void fill(struct bench *b)
{
    static const struct anchor_rpc_client_call_cbs cbs = {NULL, NULL, on_status};
    struct anchor_err err;

    while (b->started < b->warmup + b->calls && b->in_flight < b->concurrency) {
        uint64_t t = now_ns();

        if (anchor_rpc_client_unary(NULL, b->client, BENCH_PATH, NULL, 0, b->msg, b->size, 10000,
                                    &cbs, (void *)(uintptr_t)t, &err) != 0) {
            fprintf(stderr, "start: %s\n", anchor_err_msg(&err));
            event_base_loopexit(b->base, NULL);
            return;
        }
        b->started++;
        b->in_flight++;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *sorted, long n, double p)
{
    long i = (long)(p * (double)(n - 1) + 0.5);

    return (double)sorted[i] / 1000.0;
}

static SSL_CTX *client_ctx(const char *ca, const char *name)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
        X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(ctx), name, 0) != 1) {
        fprintf(stderr, "client CA: %s\n", ERR_reason_error_string(ERR_get_error()));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static int run_client(int argc, char **argv)
{
    const char *unix_path = opt(argc, argv, "--unix", NULL);
    const char *tls = opt(argc, argv, "--tls", NULL);
    const char *name = opt(argc, argv, "--server-name", "localhost");
    struct bench b = {0};
    struct anchor_rpc_client_opts copts = {0};
    struct anchor_err err;
    SSL_CTX *ctx = NULL;
    int rc = 1;

    b.calls = strtol(opt(argc, argv, "--calls", "20000"), NULL, 10);
    b.warmup = strtol(opt(argc, argv, "--warmup", "1000"), NULL, 10);
    b.size = strtoul(opt(argc, argv, "--size", "100"), NULL, 10);
    b.concurrency = strtol(opt(argc, argv, "--concurrency", "1"), NULL, 10);
    if (b.calls < 1 || b.warmup < 0 || b.concurrency < 1 || (unix_path == NULL) == (tls == NULL)) {
        fprintf(stderr, "usage: bench_rpc client (--unix PATH | --tls HOST:PORT --ca F) "
                        "[--calls N] [--warmup N] [--concurrency C] [--size B]\n");
        return 2;
    }
    b.base = event_base_new();
    b.msg = calloc(1, b.size ? b.size : 1);
    b.lat = calloc((size_t)b.calls, sizeof(*b.lat));
    if (b.base == NULL || b.msg == NULL || b.lat == NULL)
        goto out;
    memset(b.msg, 'a', b.size);
    if (unix_path != NULL) {
        if (anchor_rpc_client_connect_unix(&b.client, b.base, unix_path, &copts, &err) != 0) {
            fprintf(stderr, "connect: %s\n", anchor_err_msg(&err));
            goto out;
        }
    } else {
        char host[64];
        const char *colon = strrchr(tls, ':');

        if (colon == NULL || (size_t)(colon - tls) >= sizeof(host))
            goto out;
        memcpy(host, tls, (size_t)(colon - tls));
        host[colon - tls] = '\0';
        ctx = client_ctx(opt(argc, argv, "--ca", ""), name);
        if (ctx == NULL || anchor_rpc_client_connect_tls(&b.client, b.base, host,
                                                         (uint16_t)strtoul(colon + 1, NULL, 10),
                                                         ctx, name, &copts, &err) != 0) {
            fprintf(stderr, "connect: %s\n", ctx ? anchor_err_msg(&err) : "no context");
            goto out;
        }
    }
    anchor_rpc_client_set_data(b.client, &b);
    if (b.warmup == 0)
        b.t0 = now_ns();
    fill(&b);
    if (event_base_dispatch(b.base) != 0 || b.done < b.warmup + b.calls)
        goto out;
    qsort(b.lat, (size_t)b.calls, sizeof(*b.lat), cmp_u64);
    {
        double secs = (double)(b.t1 - b.t0) / 1e9;

        printf("{\"calls\":%ld,\"concurrency\":%ld,\"size\":%zu,\"seconds\":%.3f,"
               "\"calls_per_s\":%.0f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
               "\"max_us\":%.1f,\"errors\":%ld}\n",
               b.calls, b.concurrency, b.size, secs, (double)b.calls / secs,
               pct_us(b.lat, b.calls, 0.50), pct_us(b.lat, b.calls, 0.90),
               pct_us(b.lat, b.calls, 0.99), pct_us(b.lat, b.calls, 1.0), b.errors);
    }
    rc = b.errors ? 1 : 0;
out:
    anchor_rpc_client_free(b.client);
    SSL_CTX_free(ctx);
    free(b.msg);
    free(b.lat);
    if (b.base != NULL)
        event_base_free(b.base);
    return rc;
}

/* ------------------------------------------------------ in one process */

/* A self-signed P-256 certificate for "localhost", made at start. */
static int self_signed(EVP_PKEY **key_out, X509 **cert_out)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_EXTENSION *san = NULL;
    X509_NAME *name;
    int ok = 0;

    if (key == NULL || cert == NULL)
        goto out;
    name = X509_get_subject_name(cert);
    san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:localhost");
    if (san == NULL || X509_set_version(cert, X509_VERSION_3) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(cert), 86400) == NULL ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(cert, name) != 1 || X509_set_pubkey(cert, key) != 1 ||
        X509_add_ext(cert, san, -1) != 1 || X509_sign(cert, key, EVP_sha256()) == 0)
        goto out;
    *key_out = key;
    *cert_out = cert;
    key = NULL;
    cert = NULL;
    ok = 1;
out:
    X509_EXTENSION_free(san);
    EVP_PKEY_free(key);
    X509_free(cert);
    return ok ? 0 : -1;
}

static void run_calls(struct bench *b, long n)
{
    b->warmup = 0;
    b->calls = n;
    b->started = b->done = b->errors = b->in_flight = 0;
    fill(b);
    event_base_dispatch(b->base);
}

/* The measured loop (callgrind counts only this function and its callees). */
__attribute__((noinline)) void bench_loop(struct bench *b, long n);
__attribute__((noinline)) void bench_loop(struct bench *b, long n)
{
    run_calls(b, n);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs op `name` RUNS times and prints the medians of wall-clock and
 * thread-CPU nanoseconds per call (client and server share the thread). */
static int measure(const char *name, struct bench *b, long calls, int runs, long concurrency)
{
    double ns[32], cpu[32];

    b->concurrency = concurrency;
    run_calls(b, 50); /* handshake and warm-up, not measured */
    for (int r = 0; r < runs; r++) {
        uint64_t t = now_ns(), c = cpu_ns();

        bench_loop(b, calls);
        ns[r] = (double)(now_ns() - t) / (double)calls;
        cpu[r] = (double)(cpu_ns() - c) / (double)calls;
        if (b->errors != 0 || b->done != calls) {
            fprintf(stderr, "%s: %ld errors\n", name, b->errors);
            return -1;
        }
    }
    qsort(ns, (size_t)runs, sizeof(ns[0]), cmp_double);
    qsort(cpu, (size_t)runs, sizeof(cpu[0]), cmp_double);
    printf("%-22s %10.0f ns/op %10.0f ns/op thread CPU\n", name, ns[runs / 2], cpu[runs / 2]);
    fflush(stdout);
    return 0;
}

static int run_inproc(int argc, char **argv)
{
    static const struct anchor_rpc_method m = {
        BENCH_PATH, ANCHOR_RPC_UNARY, on_echo, NULL, NULL, NULL, NULL};
    struct anchor_rpc_client_opts copts = {0};
    struct anchor_rpc_server *srv = NULL;
    struct bench b = {0};
    struct anchor_err err = {{0}};
    SSL_CTX *sctx = NULL, *cctx = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char dir[] = "/tmp/bench_rpc.XXXXXX", path[64] = "";
    const char *only = NULL;
    long calls = 2000;
    int runs = 5, rc = 1;
    uint16_t port = 0;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-n") == 0)
            calls = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "-r") == 0)
            runs = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "-o") == 0)
            only = argv[i + 1];
    }
    if (calls < 1 || runs < 1 || runs > 32) {
        fprintf(stderr, "usage: bench_rpc [-n CALLS] [-r RUNS (1..32)] [-o OP]\n");
        return 2;
    }
    b.size = 100;
    b.msg = calloc(1, b.size);
    b.base = event_base_new();
    if (b.msg == NULL || b.base == NULL || mkdtemp(dir) == NULL || self_signed(&key, &cert) != 0)
        goto out;
    snprintf(path, sizeof(path), "%s/s", dir);
    sctx = SSL_CTX_new(TLS_server_method());
    cctx = SSL_CTX_new(TLS_client_method());
    if (sctx == NULL || cctx == NULL || SSL_CTX_use_certificate(sctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(sctx, key) != 1 ||
        X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), cert) != 1 ||
        X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(cctx), "localhost", 0) != 1)
        goto out;
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    if (anchor_rpc_server_new(&srv, b.base, NULL, &err) != 0 ||
        anchor_rpc_server_register(srv, &m, &err) != 0 ||
        anchor_rpc_server_listen_unix(srv, path, 0600, &err) != 0 ||
        anchor_rpc_server_listen_tls(srv, "127.0.0.1", 0, sctx, &port, &err) != 0) {
        fprintf(stderr, "server: %s\n", anchor_err_msg(&err));
        goto out;
    }
    if (only == NULL || strncmp(only, "rpc_unary_unix", 14) == 0) {
        if (anchor_rpc_client_connect_unix(&b.client, b.base, path, &copts, &err) != 0)
            goto out;
        anchor_rpc_client_set_data(b.client, &b);
        if ((only == NULL || strcmp(only, "rpc_unary_unix") == 0) &&
            measure("rpc_unary_unix", &b, calls, runs, 1) != 0)
            goto out;
        if ((only == NULL || strcmp(only, "rpc_unary_unix_x16") == 0) &&
            measure("rpc_unary_unix_x16", &b, calls, runs, 16) != 0)
            goto out;
        anchor_rpc_client_free(b.client);
        b.client = NULL;
    }
    if (only == NULL || strncmp(only, "rpc_unary_tls", 13) == 0) {
        if (anchor_rpc_client_connect_tls(&b.client, b.base, "127.0.0.1", port, cctx, "localhost",
                                          &copts, &err) != 0)
            goto out;
        anchor_rpc_client_set_data(b.client, &b);
        if ((only == NULL || strcmp(only, "rpc_unary_tls") == 0) &&
            measure("rpc_unary_tls", &b, calls, runs, 1) != 0)
            goto out;
        if ((only == NULL || strcmp(only, "rpc_unary_tls_x16") == 0) &&
            measure("rpc_unary_tls_x16", &b, calls, runs, 16) != 0)
            goto out;
    }
    rc = 0;
out:
    if (rc != 0 && err.msg[0] == '\0')
        fprintf(stderr, "bench_rpc: setup failed\n");
    anchor_rpc_client_free(b.client);
    anchor_rpc_server_free(srv);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    EVP_PKEY_free(key);
    X509_free(cert);
    free(b.msg);
    if (b.base != NULL)
        event_base_free(b.base);
    rmdir(dir);
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "server") == 0)
        return run_server(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "client") == 0)
        return run_client(argc, argv);
    return run_inproc(argc, argv);
}
