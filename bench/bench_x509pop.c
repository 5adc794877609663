/*
 * Micro-benchmark of the server side of one x509pop login.
 *
 * A login costs the server: framing the evidence, verifying the chain to the
 * policy's trust anchors with the leaf checks and the attributes
 * (anchor_x509pop_evidence_parse + anchor_x509pop_verify), drawing the
 * challenge (anchor_x509pop_nonce), and checking the agent's answer
 * (anchor_x509pop_proof_parse + anchor_x509pop_proof_verify). That round is
 * timed here for an EC P-256 chain and an RSA-2048 chain, each root ->
 * intermediate -> leaf, generated in process (no files), and set against the
 * bare OpenSSL cost of one signature verification measured in the same run
 * (DESIGN.md "Speed": a login's irreducible cost is its signatures).
 *
 * The configuration (caCerts parsed into a trust store) is built once, outside
 * the loop, as the server does per configuration snapshot; config_new is
 * timed on its own, and the EC login is also timed against a caCerts of 64
 * certificates: if parsing caCerts were paid per login, that row would cost
 * far more than the 1-CA row (config_new of 64 CAs costs ~20 logins). The
 * engine remembers decoded intermediates per configuration, so the repeated
 * login-ec row is the steady state of a fleet sharing an intermediate;
 * login-ec-cold goes round more distinct intermediates than it remembers, the
 * cost of a first login. The agent's side (signing the proof) is not part of
 * the login round: the proof is signed once, for a fixed server nonce, and
 * the agent's signing is reported on its own rows.
 *
 * Usage: bench_x509pop [-n ITERATIONS] [-r RUNS] [-o OP]
 *   -n  iterations per run (default: calibrated to about 0.2 s per run)
 *   -r  runs; the figures are the medians of the runs' ns/op (default 5), by
 *       the monotonic clock and by the thread's CPU clock
 *   -o  run only the named operation (the output's first column)
 * Under callgrind, only the measured loop is counted:
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=bench_loop \
 *       bench_x509pop -n 20 -r 1 -o login-ec
 * and the instructions it collects divided by 20 are the cost of one op.
 * scripts/bench runs both; bench/README.md has the figures.
 */
#include <errno.h>
#include <getopt.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anchor/x509pop.h"
#include "x509pop/internal.h"

#define MAX_RUNS     31
#define EXTRA_CAS    63 /* the large caCerts: the chain's root and 63 others */
#define CALIBRATE_NS 200000000.0
#define DEFAULT_RUNS 5

static void die(const char *what, const struct anchor_err *err)
{
    (void)fprintf(stderr, "bench_x509pop: %s%s%s\n", what, err ? ": " : "",
                  err ? anchor_err_msg(err) : "");
    exit(1);
}

static void check(int ok, const char *what)
{
    if (!ok)
        die(what, NULL);
}

/* --- the PKI, in process ------------------------------------------------ */

enum alg { ALG_EC, ALG_RSA };

/* A chain root -> intermediate -> leaf and everything a login needs. */
struct chain {
    const char *name;
    EVP_PKEY *root_key, *int_key, *leaf_key;
    X509 *root, *inter, *leaf;
    char *ca_pem; /* caCerts: the root */
    size_t ca_pem_len;
    char *big_ca_pem; /* caCerts: the root and EXTRA_CAS other CAs */
    size_t big_ca_pem_len;
    uint8_t *evidence; /* leaf DER || intermediate DER */
    size_t evidence_len;
    struct anchor_x509pop_config *cfg, *big_cfg;
    uint8_t server_nonce[ANCHOR_X509POP_NONCE_LEN];
    uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN];
    uint8_t *proof; /* the agent's answer to server_nonce, wire form */
    size_t proof_len;
    struct anchor_x509pop_verified *verified; /* for the proof-only row */
};

static EVP_PKEY *keygen(enum alg alg)
{
    EVP_PKEY *k = alg == ALG_EC ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);

    check(k != NULL, "key generation");
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    check(ext != NULL && X509_add_ext(x, ext, -1) == 1, "extension");
    X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer_key (self-signed when issuer is
 * NULL), valid from an hour ago for a day, with the extensions a strict
 * RFC 5280 verifier wants. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int ca)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char serial[8];
    BIGNUM *bn;

    check(x != NULL && name != NULL, "out of memory");
    check(RAND_bytes(serial, sizeof(serial)) == 1, "random");
    serial[0] &= 0x7f;
    serial[0] |= 0x10;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    check(bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL, "serial");
    BN_free(bn);
    check(X509_set_version(x, X509_VERSION_3) == 1, "version");
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                     0) == 1,
          "name");
    check(X509_set_subject_name(x, name) == 1, "subject");
    check(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1, "issuer");
    check(X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
              X509_gmtime_adj(X509_getm_notAfter(x), 86400) != NULL,
          "validity");
    check(X509_set_pubkey(x, key) == 1, "public key");
    add_ext(x, issuer ? issuer : x, NID_basic_constraints,
            ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, issuer ? issuer : x, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
    if (issuer != NULL)
        add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    check(X509_sign(x, issuer_key, EVP_sha256()) > 0, "signing a certificate");
    X509_NAME_free(name);
    return x;
}

static void append_pem(char **pem, size_t *len, X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;

    check(bio != NULL && PEM_write_bio_X509(bio, x) == 1, "PEM");
    n = BIO_get_mem_data(bio, &data);
    *pem = realloc(*pem, *len + (size_t)n + 1);
    check(*pem != NULL, "out of memory");
    memcpy(*pem + *len, data, (size_t)n);
    *len += (size_t)n;
    (*pem)[*len] = '\0';
    BIO_free(bio);
}

static void append_der(uint8_t **buf, size_t *len, X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);

    check(n > 0, "DER");
    *buf = realloc(*buf, *len + (size_t)n);
    check(*buf != NULL, "out of memory");
    memcpy(*buf + *len, der, (size_t)n);
    *len += (size_t)n;
    OPENSSL_free(der);
}

/* The agent's answer to the chain's server nonce, as the agent makes it. */
static void agent_prove(const struct chain *c, EVP_PKEY *leaf_key, uint8_t **out, size_t *out_len)
{
    uint8_t agent_nonce[ANCHOR_X509POP_NONCE_LEN];
    uint8_t msg[ANCHOR__X509POP_SIGNED_LEN];
    struct anchor_x509pop_proof proof;
    uint8_t *sig = NULL;
    size_t sig_len;
    struct anchor_err err;

    if (anchor_x509pop_nonce(agent_nonce, &err) != 0)
        die("agent nonce", &err);
    anchor__x509pop_signed_message(msg, c->server_nonce, agent_nonce, c->exporter);
    if (anchor__x509pop_sign(leaf_key, msg, sizeof(msg), &sig, &sig_len, &err) != 0)
        die("agent signature", &err);
    proof.agent_nonce = agent_nonce;
    proof.agent_nonce_len = sizeof(agent_nonce);
    proof.signature = sig;
    proof.signature_len = sig_len;
    if (anchor_x509pop_proof_encode(out, out_len, &proof, &err) != 0)
        die("proof encoding", &err);
    free(sig);
}

static void chain_init(struct chain *c, const char *name, enum alg alg, int extra_cas)
{
    struct anchor_err err;

    memset(c, 0, sizeof(*c));
    c->name = name;
    c->root_key = keygen(alg);
    c->int_key = keygen(alg);
    c->leaf_key = keygen(alg);
    c->root = make_cert("bench root CA", c->root_key, NULL, c->root_key, 1);
    c->inter = make_cert("bench intermediate CA", c->int_key, c->root, c->root_key, 1);
    c->leaf = make_cert("bench-node.example.org", c->leaf_key, c->inter, c->int_key, 0);
    append_pem(&c->ca_pem, &c->ca_pem_len, c->root);
    append_der(&c->evidence, &c->evidence_len, c->leaf);
    append_der(&c->evidence, &c->evidence_len, c->inter);
    /* The large caCerts: other CAs first, the chain's root last. */
    for (int i = 0; i < extra_cas; i++) {
        EVP_PKEY *k = keygen(ALG_EC);
        char cn[64];
        X509 *x;

        (void)snprintf(cn, sizeof(cn), "bench unrelated CA %d", i);
        x = make_cert(cn, k, NULL, k, 1);
        append_pem(&c->big_ca_pem, &c->big_ca_pem_len, x);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    append_pem(&c->big_ca_pem, &c->big_ca_pem_len, c->root);
    if (anchor_x509pop_config_new(&c->cfg, c->ca_pem, c->ca_pem_len,
                                  ANCHOR_X509POP_DEFAULT_MAX_INTERMEDIATES,
                                  ANCHOR_X509POP_DEFAULT_MAX_RSA_KEY_SIZE, &err) != 0 ||
        anchor_x509pop_config_new(&c->big_cfg, c->big_ca_pem, c->big_ca_pem_len,
                                  ANCHOR_X509POP_DEFAULT_MAX_INTERMEDIATES,
                                  ANCHOR_X509POP_DEFAULT_MAX_RSA_KEY_SIZE, &err) != 0)
        die("config", &err);
    check(RAND_bytes(c->server_nonce, sizeof(c->server_nonce)) == 1 &&
              RAND_bytes(c->exporter, sizeof(c->exporter)) == 1,
          "random");
    agent_prove(c, c->leaf_key, &c->proof, &c->proof_len);
}

static void chain_cleanup(struct chain *c)
{
    anchor_x509pop_verified_free(c->verified);
    anchor_x509pop_config_free(c->cfg);
    anchor_x509pop_config_free(c->big_cfg);
    free(c->proof);
    free(c->evidence);
    free(c->ca_pem);
    free(c->big_ca_pem);
    X509_free(c->root);
    X509_free(c->inter);
    X509_free(c->leaf);
    EVP_PKEY_free(c->root_key);
    EVP_PKEY_free(c->int_key);
    EVP_PKEY_free(c->leaf_key);
}

/* Agents that each present their own intermediate under the chain's root:
 * one more than the configuration remembers decoded intermediates, so a
 * login that goes round them never finds its intermediate remembered (the
 * cost of a first login, or of a fleet with many intermediates). */
#ifndef ANCHOR__X509POP_CACHE_SIZE
#define ANCHOR__X509POP_CACHE_SIZE 0 /* an engine without the cache */
#endif
#define FLEET_SIZE (ANCHOR__X509POP_CACHE_SIZE + 1)

struct agent {
    uint8_t *evidence;
    size_t evidence_len;
    uint8_t *proof;
    size_t proof_len;
};

struct fleet {
    const struct chain *c;
    struct agent v[FLEET_SIZE];
    size_t n, next;
};

static void fleet_init(struct fleet *f, const struct chain *c, enum alg alg)
{
    memset(f, 0, sizeof(*f));
    f->c = c;
    f->n = FLEET_SIZE;
    for (size_t i = 0; i < f->n; i++) {
        EVP_PKEY *ik = keygen(alg), *lk = keygen(alg);
        char cn[64];
        X509 *inter, *leaf;

        (void)snprintf(cn, sizeof(cn), "bench intermediate CA %zu", i);
        inter = make_cert(cn, ik, c->root, c->root_key, 1);
        (void)snprintf(cn, sizeof(cn), "bench-node-%zu.example.org", i);
        leaf = make_cert(cn, lk, inter, ik, 0);
        append_der(&f->v[i].evidence, &f->v[i].evidence_len, leaf);
        append_der(&f->v[i].evidence, &f->v[i].evidence_len, inter);
        agent_prove(c, lk, &f->v[i].proof, &f->v[i].proof_len);
        X509_free(inter);
        X509_free(leaf);
        EVP_PKEY_free(ik);
        EVP_PKEY_free(lk);
    }
}

static void fleet_cleanup(struct fleet *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].evidence);
        free(f->v[i].proof);
    }
}

/* --- the operations ------------------------------------------------------ */

/* A bare signature and what verifies it. */
struct bare_sig {
    EVP_PKEY *key;
    int pss; /* RSASSA-PSS salt 32 rather than PKCS#1 v1.5 (RSA keys only) */
    uint8_t msg[ANCHOR__X509POP_SIGNED_LEN];
    unsigned char sig[1024];
    size_t sig_len;
};

static int rsa_params(EVP_PKEY_CTX *pctx, int pss)
{
    if (!pss)
        return 1;
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1;
}

static void bare_init(struct bare_sig *b, EVP_PKEY *key, int pss)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;

    memset(b, 0, sizeof(*b));
    b->key = key;
    b->pss = pss;
    b->sig_len = sizeof(b->sig);
    check(RAND_bytes(b->msg, sizeof(b->msg)) == 1, "random");
    check(md != NULL && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) == 1 &&
              (EVP_PKEY_is_a(key, "EC") || rsa_params(pctx, pss)) &&
              EVP_DigestSign(md, b->sig, &b->sig_len, b->msg, sizeof(b->msg)) == 1,
          "bare signature");
    EVP_MD_CTX_free(md);
}

/* One EVP_DigestVerify of one signature, with its context set up and torn
 * down: the least an in-process verifier can pay per signature. */
static int op_bare_verify(void *arg)
{
    const struct bare_sig *b = arg;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok;

    ok = md != NULL && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, b->key) == 1 &&
         (EVP_PKEY_is_a(b->key, "EC") || rsa_params(pctx, b->pss)) &&
         EVP_DigestVerify(md, b->sig, b->sig_len, b->msg, sizeof(b->msg)) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

static int op_bare_sign(void *arg)
{
    const struct bare_sig *b = arg;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    int ok;

    ok = md != NULL && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, b->key) == 1 &&
         (EVP_PKEY_is_a(b->key, "EC") || rsa_params(pctx, b->pss)) &&
         EVP_DigestSign(md, sig, &sig_len, b->msg, sizeof(b->msg)) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

static int report(int rc, const char *what, const struct anchor_err *err)
{
    if (rc != 0)
        die(what, err);
    return rc;
}

/* The server's half of a login, against a ready configuration. */
static int login(const struct chain *c, const struct anchor_x509pop_config *cfg,
                 const uint8_t *evidence, size_t evidence_len, const uint8_t *proof_buf,
                 size_t proof_len)
{
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    struct anchor_x509pop_proof proof;
    uint8_t nonce[ANCHOR_X509POP_NONCE_LEN];
    struct anchor_err err;

    report(anchor_x509pop_evidence_parse(&ev, evidence, evidence_len, &err), "evidence", &err);
    report(anchor_x509pop_verify(&v, cfg, ev, NULL, time(NULL), &err), "verify", &err);
    /* The challenge is drawn as a login draws it; the proof answers the
     * chain's fixed nonce, signed once outside the loop. */
    report(anchor_x509pop_nonce(nonce, &err), "nonce", &err);
    report(anchor_x509pop_proof_parse(&proof, proof_buf, proof_len, &err), "proof", &err);
    report(anchor_x509pop_proof_verify(v, c->server_nonce, &proof, c->exporter, &err),
           "proof verify", &err);
    anchor_x509pop_verified_free(v);
    anchor_x509pop_evidence_free(ev);
    return 0;
}

static int op_login(void *arg)
{
    const struct chain *c = arg;

    return login(c, c->cfg, c->evidence, c->evidence_len, c->proof, c->proof_len);
}

/* Round robin over the fleet: each login presents an intermediate that the
 * configuration has not seen lately, so nothing decoded is reused. */
static int op_login_cold(void *arg)
{
    struct fleet *f = arg;
    const struct agent *a = &f->v[f->next];

    f->next = (f->next + 1) % f->n;
    return login(f->c, f->c->cfg, a->evidence, a->evidence_len, a->proof, a->proof_len);
}

static int op_login_big_ca(void *arg)
{
    const struct chain *c = arg;

    return login(c, c->big_cfg, c->evidence, c->evidence_len, c->proof, c->proof_len);
}

/* The chain half alone: evidence_parse + verify. */
static int op_chain(void *arg)
{
    const struct chain *c = arg;
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    struct anchor_err err;

    report(anchor_x509pop_evidence_parse(&ev, c->evidence, c->evidence_len, &err), "evidence",
           &err);
    report(anchor_x509pop_verify(&v, c->cfg, ev, NULL, time(NULL), &err), "verify", &err);
    anchor_x509pop_verified_free(v);
    anchor_x509pop_evidence_free(ev);
    return 0;
}

/* The proof half alone: proof_parse + proof_verify. */
static int op_proof(void *arg)
{
    const struct chain *c = arg;
    struct anchor_x509pop_proof proof;
    struct anchor_err err;

    report(anchor_x509pop_proof_parse(&proof, c->proof, c->proof_len, &err), "proof", &err);
    report(anchor_x509pop_proof_verify(c->verified, c->server_nonce, &proof, c->exporter, &err),
           "proof verify", &err);
    return 0;
}

static int op_config(void *arg)
{
    const struct chain *c = arg;
    struct anchor_x509pop_config *cfg = NULL;
    struct anchor_err err;

    report(anchor_x509pop_config_new(&cfg, c->ca_pem, c->ca_pem_len,
                                     ANCHOR_X509POP_DEFAULT_MAX_INTERMEDIATES,
                                     ANCHOR_X509POP_DEFAULT_MAX_RSA_KEY_SIZE, &err),
           "config", &err);
    anchor_x509pop_config_free(cfg);
    return 0;
}

static int op_config_big(void *arg)
{
    const struct chain *c = arg;
    struct anchor_x509pop_config *cfg = NULL;
    struct anchor_err err;

    report(anchor_x509pop_config_new(&cfg, c->big_ca_pem, c->big_ca_pem_len,
                                     ANCHOR_X509POP_DEFAULT_MAX_INTERMEDIATES,
                                     ANCHOR_X509POP_DEFAULT_MAX_RSA_KEY_SIZE, &err),
           "config", &err);
    anchor_x509pop_config_free(cfg);
    return 0;
}

/* The agent's side, reported apart: sign a fresh answer and encode it. */
static int op_prove(void *arg)
{
    const struct chain *c = arg;
    uint8_t *proof = NULL;
    size_t len;

    agent_prove(c, c->leaf_key, &proof, &len);
    free(proof);
    return 0;
}

/* --- measuring ------------------------------------------------------------ */

struct op {
    const char *name;
    int (*fn)(void *arg);
    void *arg;
    const char *what;
    double ns;  /* median wall-clock ns/op, filled by measure() */
    double cpu; /* median thread-CPU ns/op */
};

/* The measured loop; callgrind counts only this function's calls. */
__attribute__((noinline)) void bench_loop(const struct op *op, long n);
__attribute__((noinline)) void bench_loop(const struct op *op, long n)
{
    for (long i = 0; i < n; i++)
        if (op->fn(op->arg) != 0)
            die(op->name, NULL);
}

static double clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Runs op `runs` times `n` iterations (n <= 0: calibrated) after a warm-up
 * call, and keeps the median ns/op, by the monotonic clock and by the
 * thread's CPU clock (the second is less disturbed by other processes on a
 * busy machine). */
static void measure(struct op *op, long n, int runs)
{
    double per[MAX_RUNS], cpu[MAX_RUNS];

    if (op->fn(op->arg) != 0) /* warm-up: first-use costs are not per-login */
        die(op->name, NULL);
    if (n <= 0) {
        double t0 = now_ns(), one;

        bench_loop(op, 5);
        one = (now_ns() - t0) / 5;
        n = (long)(CALIBRATE_NS / (one > 1 ? one : 1));
        if (n < 5)
            n = 5;
    }
    for (int r = 0; r < runs; r++) {
        double c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), t0 = now_ns();

        bench_loop(op, n);
        per[r] = (now_ns() - t0) / (double)n;
        cpu[r] = (clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)n;
    }
    qsort(per, (size_t)runs, sizeof(per[0]), cmp_double);
    qsort(cpu, (size_t)runs, sizeof(cpu[0]), cmp_double);
    op->ns = per[runs / 2];
    op->cpu = cpu[runs / 2];
    printf("%-22s %12.0f ns/op %12.0f cpu-ns/op  (median of %d x %ld; wall min %.0f max %.0f)  "
           "%s\n",
           op->name, op->ns, op->cpu, runs, n, per[0], per[runs - 1], op->what);
    (void)fflush(stdout);
}

/* The median of the named operation, by the wall clock or the CPU clock. */
static double ns_of(const struct op *ops, size_t n, const char *name, int cpu)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ops[i].name, name) == 0)
            return cpu ? ops[i].cpu : ops[i].ns;
    return 0;
}

static void ratio(const char *a_name, double a, const char *label, double b)
{
    if (a > 0 && b > 0)
        printf("  %-13s / %-28s = %5.2f\n", a_name, label, a / b);
}

/* The login rounds against the bare signatures they cannot avoid: the
 * leaf's signature and the proof's, plus the intermediate's unless it is
 * remembered (DESIGN.md "Speed"). */
static void print_ratios(const struct op *ops, size_t n, int cpu)
{
    double p256 = ns_of(ops, n, "verify-p256", cpu);
    double pss = ns_of(ops, n, "verify-rsa2048-pss", cpu);
    double pkcs1 = ns_of(ops, n, "verify-rsa2048-pkcs1", cpu);
    double login_ec = ns_of(ops, n, "login-ec", cpu);
    double login_rsa = ns_of(ops, n, "login-rsa", cpu);

    printf("ratios (%s clock) to the bare signature costs measured above:\n",
           cpu ? "thread CPU" : "wall");
    ratio("login-ec", login_ec, "1 P-256 verify", p256);
    ratio("login-ec", login_ec, "2 P-256 verifies", 2 * p256);
    ratio("login-ec", login_ec, "3 P-256 verifies", 3 * p256);
    ratio("login-ec-64ca", ns_of(ops, n, "login-ec-64ca", cpu), "login-ec", login_ec);
    ratio("login-ec-cold", ns_of(ops, n, "login-ec-cold", cpu), "1 P-256 verify", p256);
    ratio("login-ec-cold", ns_of(ops, n, "login-ec-cold", cpu), "3 P-256 verifies", 3 * p256);
    ratio("login-rsa", login_rsa, "1 RSA-2048 PSS verify", pss);
    ratio("login-rsa", login_rsa, "1 PKCS#1 + 1 PSS verify", pkcs1 + pss);
    ratio("login-rsa", login_rsa, "2 PKCS#1 + 1 PSS verifies", 2 * pkcs1 + pss);
}

int main(int argc, char **argv)
{
    long n = 0;
    int runs = DEFAULT_RUNS, opt;
    const char *only = NULL;
    struct chain ec, rsa;
    struct fleet ec_fleet;
    int want_ec, want_rsa;
    struct bare_sig p256 = {0}, pss = {0}, pkcs1 = {0};
    struct anchor_err err;
    struct anchor_x509pop_evidence *ev = NULL;

    while ((opt = getopt(argc, argv, "n:r:o:")) != -1) {
        char *end;

        switch (opt) {
        case 'n':
            errno = 0;
            n = strtol(optarg, &end, 10);
            check(errno == 0 && *end == '\0' && n > 0, "-n wants a positive integer");
            break;
        case 'r':
            runs = atoi(optarg);
            check(runs >= 1 && runs <= MAX_RUNS, "-r wants 1..31");
            break;
        case 'o':
            only = optarg;
            break;
        default:
            (void)fprintf(stderr, "usage: %s [-n ITERATIONS] [-r RUNS] [-o OP]\n", argv[0]);
            return 2;
        }
    }

    /* Only what the selected operations need (RSA key generation is slow
     * under valgrind). */
    want_rsa = only == NULL || strstr(only, "rsa") != NULL;
    want_ec = only == NULL || !want_rsa;
    memset(&ec, 0, sizeof(ec));
    memset(&rsa, 0, sizeof(rsa));
    if (want_ec) {
        chain_init(&ec, "ec", ALG_EC, EXTRA_CAS);
        fleet_init(&ec_fleet, &ec, ALG_EC);
        bare_init(&p256, ec.leaf_key, 0);
        /* A verified object for the proof-only row. */
        if (anchor_x509pop_evidence_parse(&ev, ec.evidence, ec.evidence_len, &err) != 0 ||
            anchor_x509pop_verify(&ec.verified, ec.cfg, ev, NULL, time(NULL), &err) != 0)
            die("ec verify", &err);
        anchor_x509pop_evidence_free(ev);
        ev = NULL;
    }
    if (want_rsa) {
        chain_init(&rsa, "rsa", ALG_RSA, 0);
        bare_init(&pss, rsa.leaf_key, 1);
        bare_init(&pkcs1, rsa.int_key, 0);
        if (anchor_x509pop_evidence_parse(&ev, rsa.evidence, rsa.evidence_len, &err) != 0 ||
            anchor_x509pop_verify(&rsa.verified, rsa.cfg, ev, NULL, time(NULL), &err) != 0)
            die("rsa verify", &err);
        anchor_x509pop_evidence_free(ev);
    }

    struct op ops[] = {
        {"verify-p256", op_bare_verify, &p256, "bare OpenSSL: ECDSA P-256 SHA-256 verify", 0, 0},
        {"verify-rsa2048-pss", op_bare_verify, &pss, "bare OpenSSL: RSA-2048 PSS SHA-256 verify", 0,
         0},
        {"verify-rsa2048-pkcs1", op_bare_verify, &pkcs1,
         "bare OpenSSL: RSA-2048 PKCS#1 v1.5 SHA-256 verify (certificate signatures)", 0, 0},
        {"login-ec", op_login, &ec, "server login round, P-256 root->int->leaf", 0, 0},
        {"login-ec-64ca", op_login_big_ca, &ec, "the same, caCerts of 64 CAs", 0, 0},
        {"login-ec-cold", op_login_cold, &ec_fleet,
         "the same, a different intermediate each login (none remembered)", 0, 0},
        {"login-rsa", op_login, &rsa, "server login round, RSA-2048 root->int->leaf", 0, 0},
        {"chain-ec", op_chain, &ec, "evidence_parse + verify only, P-256", 0, 0},
        {"proof-ec", op_proof, &ec, "proof_parse + proof_verify only, P-256", 0, 0},
        {"chain-rsa", op_chain, &rsa, "evidence_parse + verify only, RSA-2048", 0, 0},
        {"proof-rsa", op_proof, &rsa, "proof_parse + proof_verify only, RSA-2048", 0, 0},
        {"config-ec-1ca", op_config, &ec, "config_new, caCerts of 1 CA (per snapshot)", 0, 0},
        {"config-ec-64ca", op_config_big, &ec, "config_new, caCerts of 64 CAs (per snapshot)", 0,
         0},
        {"prove-ec", op_prove, &ec, "agent: sign + encode a proof, P-256 (not in the login)", 0, 0},
        {"prove-rsa", op_prove, &rsa, "agent: sign + encode a proof, RSA-2048 (not in the login)",
         0, 0},
        {"sign-p256", op_bare_sign, &p256, "bare OpenSSL: ECDSA P-256 SHA-256 sign", 0, 0},
    };
    size_t nops = sizeof(ops) / sizeof(ops[0]);
    size_t ran = 0;

    printf("bench_x509pop: %s, %d run(s) per op\n", OpenSSL_version(OPENSSL_VERSION), runs);
    for (size_t i = 0; i < nops; i++) {
        if (only != NULL && strcmp(only, ops[i].name) != 0)
            continue;
        if (!(strstr(ops[i].name, "rsa") != NULL ? want_rsa : want_ec))
            continue;
        measure(&ops[i], n, runs);
        ran++;
    }
    check(ran > 0, "-o names no operation");
    if (only == NULL) {
        print_ratios(ops, nops, 0);
        print_ratios(ops, nops, 1);
    }
    if (want_ec)
        fleet_cleanup(&ec_fleet);
    chain_cleanup(&ec);
    chain_cleanup(&rsa);
    return 0;
}
