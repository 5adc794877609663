/*
 * x509-limbo against the x509pop chain verifier.
 *
 * x509-limbo (C2SP/x509-limbo) is a suite of X.509 path-validation testcases
 * written against RFC 5280 and the Web PKI. The shared data directory keeps a
 * limbo.json and our client-chain-subset.tsv, which sorts each testcase into
 * a tier for anchor: `core` (chain validation that does not depend on a
 * hostname), `optional`, `nc` (name constraints) and `skip`, and gives the
 * result anchor must reach, `expected_with_leaf_ku_policy` (limbo's, turned to
 * FAILURE where the leaf lacks digitalSignature, which x509pop requires). The
 * files are read where they live, $ANCHOR_SHARED_DIR/testdata/external/
 * x509-limbo/, never copied into the repository.
 *
 * Each testcase runs through the server's own public path, as a login would:
 *   caCerts          = the testcase's trusted_certs, PEM, concatenated (the
 *                      config refuses a non-CA entry: that is a FAILURE);
 *   evidence         = peer_certificate DER || untrusted_intermediates DER,
 *                      the bytes exactly as given (PEM decoded, never parsed
 *                      and re-encoded, so malformed DER reaches the engine);
 *   maxIntermediates = max_chain_depth when the testcase sets it, otherwise
 *                      LIMBO_MAX_INTERMEDIATES (see below);
 *   at               = validation_time truncated to the second (null: now);
 *   trust domain     = none.
 * A testcase succeeds when anchor_x509pop_config_new(), _evidence_parse()
 * and _verify() all return 0. Where limbo says SUCCESS and the TSV says
 * FAILURE (the leaf lacks digitalSignature), the refusal must also carry the
 * documented key-usage message, so that it is refused for that reason.
 *
 * maxIntermediates counts the intermediates the agent sends, before any
 * parsing (DESIGN.md step 1); limbo's max_chain_depth counts those of the
 * path that is built. They agree when the evidence is exactly the path. With
 * no max_chain_depth the limit is set above every testcase's count, so that
 * the chain verifier, not the count, decides: the product default (4) would
 * refuse cve-2024-0567 (9 intermediates) and the 100-certificate
 * pathological chains before OpenSSL sees them. test_default_limit_refuses_
 * pathological_chains() checks that separately, with the documented message.
 *
 * A verified testcase also has its attributes checked against its own
 * certificates (attrs_round()), and, when limbo ships the leaf's key, runs a
 * challenge/proof round with that key (and its hostile twin, the proof
 * replayed against another challenge). Every testcase is also run again on a configuration
 * that has already seen it (see run_case()): answers must not change.
 *
 * Differences kept on purpose are the rows of `kept[]`, each explained in
 * docs/conformance.md (the test checks that the docs name it), and each must
 * still be a difference (a kept row that starts to pass fails the test, so
 * the table cannot rot). The optional and nc tiers run for information only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anchor/x509pop.h"
#include "x509pop/internal.h" /* the agent's signing, for the proof round */

/* Above the largest intermediate count of any testcase (100): the count
 * check never decides a testcase that does not set max_chain_depth. */
#define LIMBO_MAX_INTERMEDIATES 128
/* The documented message of DESIGN.md step 4. */
#define LIMBO_NO_DIGSIG_MSG "certificate does not include digitalSignature key usage"
/* The documented message of a refused proof (a detail may follow). */
#define LIMBO_SIG_FAILED_MSG "failed to verify signature"

/* One kept difference: the testcase, the result anchor gives, and why. */
struct kept {
    const char *id;
    const char *we_give;
    const char *why;
};

/* Only the OpenSSL 3.0 behaviours that the data's TSV shows in its
 * openssl_3_0_19_cli_baseline column, each documented in docs/conformance.md
 * under its id ("Kept differences"). */
static const struct kept kept[] = {
    {"pathlen::max-chain-depth-1-self-issued", "FAILURE",
     "maxIntermediates counts the intermediates sent, before parsing, self-issued ones "
     "included; so does OpenSSL's verify depth"},
    {"rfc5280::validity::notafter-exact", "FAILURE",
     "OpenSSL 3.0 treats notAfter as exclusive (X509_cmp_time: equal is expired)"},
    {"rfc5280::validity::notafter-fractional", "FAILURE",
     "the same second as notAfter: OpenSSL 3.0 treats notAfter as exclusive"},
    {NULL, NULL, NULL},
};

struct row {
    const char *id;
    const char *tier;
    const char *limbo_expected;
    const char *expected; /* expected_with_leaf_ku_policy */
    const char *max_depth;
};

struct suite {
    json_t *root;
    char *tsv; /* the file's text; rows point into it */
    struct row *rows;
    size_t n;
};

struct outcome {
    int success;
    const char *stage; /* where a FAILURE arose: config, evidence or verify */
    struct anchor_err err;
    int repeat_differs; /* a later login on a config that has seen it answered otherwise */
    int primed;         /* re-run after a login at a time when every certificate was valid */
    int primed_ok;      /* ... and that earlier login succeeded (intermediates remembered) */
    int proved;         /* a proof round with the testcase's leaf key passed, its twin failed */
    int proof_wrong;    /* the proof round went otherwise (PROOF line printed) */
    int attrs_wrong;    /* the attributes name what the chain did not use (ATTRS line) */
    size_t excluded;    /* unusable certificates checked absent from the attributes */
};

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    assert_true(len >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    (void)fclose(f);
    return buf;
}

static void data_path(char *out, size_t cap, const char *file)
{
    const char *shared = getenv("ANCHOR_SHARED_DIR");

    if (shared == NULL)
        fail_msg("ANCHOR_SHARED_DIR is not set (ctest sets it)");
    (void)snprintf(out, cap, "%s/testdata/external/x509-limbo/%s", shared, file);
}

/* Splits the TSV in place: a row per line after the header, ten columns. */
static void parse_tsv(struct suite *s)
{
    static const char hdr[] = "id\ttier\tvalidation_kind\tlimbo_expected\t"
                              "expected_with_leaf_ku_policy\tfeatures\tmax_chain_depth\t";
    char *line, *next;
    size_t cap = 0;

    next = strchr(s->tsv, '\n');
    assert_non_null(next);
    assert_true(strncmp(s->tsv, hdr, sizeof(hdr) - 1) == 0);
    for (line = next + 1; *line != '\0'; line = next) {
        char *col[10] = {NULL};
        size_t ncol = 0;
        char *p = line;

        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        else
            next = line + strlen(line);
        if (*line == '\0')
            continue;
        while (ncol < 10) {
            char *tab = strchr(p, '\t');

            col[ncol++] = p;
            if (tab == NULL)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        assert_true(ncol >= 9);
        if (s->n == cap) {
            cap = cap ? 2 * cap : 256;
            s->rows = realloc(s->rows, cap * sizeof(*s->rows));
            assert_non_null(s->rows);
        }
        s->rows[s->n].id = col[0];
        s->rows[s->n].tier = col[1];
        s->rows[s->n].limbo_expected = col[3];
        s->rows[s->n].expected = col[4];
        s->rows[s->n].max_depth = col[6];
        s->n++;
    }
}

static int setup(void **state)
{
    struct suite *s = calloc(1, sizeof(*s));
    char path[4096];
    json_error_t jerr;

    assert_non_null(s);
    data_path(path, sizeof(path), "limbo.json");
    s->root = json_load_file(path, 0, &jerr);
    if (s->root == NULL)
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    data_path(path, sizeof(path), "client-chain-subset.tsv");
    s->tsv = read_text(path);
    parse_tsv(s);
    /* The TSV sorts every limbo testcase, each once. */
    assert_int_equal(s->n, json_array_size(json_object_get(s->root, "testcases")));
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct suite *s = *state;

    json_decref(s->root);
    free(s->rows);
    free(s->tsv);
    free(s);
    return 0;
}

static const json_t *find_case(const struct suite *s, const char *id)
{
    size_t i;
    json_t *tc;

    json_array_foreach(json_object_get(s->root, "testcases"), i, tc)
    {
        const char *tid = json_string_value(json_object_get(tc, "id"));

        if (tid != NULL && strcmp(tid, id) == 0)
            return tc;
    }
    fail_msg("limbo.json has no testcase %s", id);
    return NULL;
}

/* RFC 3339 (as limbo writes it) to seconds since the epoch, any fraction of
 * a second dropped: X.509 times have whole seconds, and a time inside the
 * second of notAfter is still inside the validity period. */
static time_t parse_rfc3339(const char *s)
{
    struct tm tm;
    int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0;
    const char *p;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        fail_msg("bad validation_time %s", s);
    p = s + n;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (*p == '+' || *p == '-') {
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || strlen(p) != 6)
            fail_msg("bad validation_time offset %s", s);
        if (*p == '-') {
            oh = -oh;
            om = -om;
        }
    } else if (strcmp(p, "Z") != 0) {
        fail_msg("bad validation_time %s", s);
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    assert_true(t != (time_t)-1);
    return t - (time_t)(oh * 3600 + om * 60);
}

/* Appends the DER inside one PEM certificate block to buf, untouched. */
static void append_der(uint8_t **buf, size_t *len, const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen = 0;

    assert_non_null(bio);
    if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1)
        fail_msg("limbo.json: a certificate is not PEM");
    assert_string_equal(name, "CERTIFICATE");
    *buf = realloc(*buf, *len + (size_t)dlen);
    assert_non_null(*buf);
    memcpy(*buf + *len, data, (size_t)dlen);
    *len += (size_t)dlen;
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
}

/* caCerts: the trusted certificates' PEM, one after the other. */
static char *ca_pem(const json_t *tc, size_t *len)
{
    const json_t *certs = json_object_get(tc, "trusted_certs");
    size_t i, cap = 1;
    char *out;
    json_t *c;

    json_array_foreach(certs, i, c) cap += strlen(json_string_value(c)) + 1;
    out = calloc(1, cap);
    assert_non_null(out);
    *len = 0;
    json_array_foreach(certs, i, c)
    {
        const char *pem = json_string_value(c);
        size_t n = strlen(pem);

        memcpy(out + *len, pem, n);
        *len += n;
        if (n == 0 || pem[n - 1] != '\n')
            out[(*len)++] = '\n';
    }
    out[*len] = '\0';
    return out;
}

/* The limit a testcase runs with: its max_chain_depth, or the generous
 * default when it sets none. */
static long case_max_intermediates(const json_t *tc)
{
    const json_t *depth = json_object_get(tc, "max_chain_depth");

    if (json_is_integer(depth))
        return (long)json_integer_value(depth);
    return LIMBO_MAX_INTERMEDIATES;
}

/* One login on a ready configuration: evidence_parse then verify. Returns
 * 0 on success, else -1 with the stage and message in o. */
static int login(const struct anchor_x509pop_config *cfg, const uint8_t *evidence, size_t ev_len,
                 time_t at, struct outcome *o)
{
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    int rc = -1;

    anchor_err_clear(&o->err);
    if (anchor_x509pop_evidence_parse(&ev, evidence, ev_len, &o->err) != 0) {
        o->stage = "evidence";
    } else if (anchor_x509pop_verify(&v, cfg, ev, NULL, at, &o->err) != 0) {
        o->stage = "verify";
    } else {
        o->stage = "";
        assert_non_null(anchor_x509pop_verified_attrs(v));
        rc = 0;
    }
    anchor_x509pop_verified_free(v);
    anchor_x509pop_evidence_free(ev);
    return rc;
}

/* ANCHOR_LIMBO_VERBOSE=1: a line per testcase. */
static int verbose(void)
{
    const char *v = getenv("ANCHOR_LIMBO_VERBOSE");

    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

/* Narrows [*lo, *hi] to the validity period of one PEM certificate.
 * Returns 0, or -1 when the certificate does not decode (malformed ones are
 * part of limbo). */
static int narrow_validity(const char *pem, time_t *lo, time_t *hi)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    struct tm nb, na;
    int rc = -1;

    if (x != NULL && ASN1_TIME_to_tm(X509_get0_notBefore(x), &nb) == 1 &&
        ASN1_TIME_to_tm(X509_get0_notAfter(x), &na) == 1) {
        time_t b = timegm(&nb), a = timegm(&na);

        if (b > *lo)
            *lo = b;
        if (a < *hi)
            *hi = a;
        rc = 0;
    }
    X509_free(x);
    BIO_free(bio);
    return rc;
}

/* A time inside every certificate's validity period (the middle of their
 * common window), or -1 when there is none or a certificate is malformed. */
static time_t common_valid_time(const json_t *tc)
{
    static const char *const lists[] = {"trusted_certs", "untrusted_intermediates"};
    time_t lo = 0, hi = (time_t)1 << 40;
    size_t i;
    json_t *c;

    if (narrow_validity(json_string_value(json_object_get(tc, "peer_certificate")), &lo, &hi))
        return -1;
    for (size_t l = 0; l < 2; l++) {
        json_array_foreach(json_object_get(tc, lists[l]), i, c)
        {
            if (narrow_validity(json_string_value(c), &lo, &hi) != 0)
                return -1;
        }
    }
    return lo < hi ? lo + (hi - lo) / 2 : -1;
}

static int same_outcome(const struct outcome *a, const struct outcome *b)
{
    return a->success == b->success &&
           strcmp(anchor_err_msg(&a->err), anchor_err_msg(&b->err)) == 0;
}

static void report_repeat(const json_t *tc, const char *what, const struct outcome *first,
                          const struct outcome *then)
{
    print_message("REPEAT %s: %s: alone %s (%s), after %s (%s)\n",
                  json_string_value(json_object_get(tc, "id")), what,
                  first->success ? "SUCCESS" : "FAILURE", anchor_err_msg(&first->err),
                  then->success ? "SUCCESS" : "FAILURE", anchor_err_msg(&then->err));
}

/* Signs the proof for (server_nonce, exporter) with key, as the agent does,
 * into a new wire-form buffer (free()). */
static uint8_t *sign_proof(EVP_PKEY *key, const uint8_t server_nonce[ANCHOR_X509POP_NONCE_LEN],
                           const uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN], size_t *len)
{
    uint8_t agent_nonce[ANCHOR_X509POP_NONCE_LEN];
    uint8_t msg[ANCHOR__X509POP_SIGNED_LEN];
    struct anchor_x509pop_proof proof;
    struct anchor_err err;
    uint8_t *sig = NULL, *out = NULL;
    size_t sig_len;

    assert_int_equal(anchor_x509pop_nonce(agent_nonce, &err), 0);
    anchor__x509pop_signed_message(msg, server_nonce, agent_nonce, exporter);
    if (anchor__x509pop_sign(key, msg, sizeof(msg), &sig, &sig_len, &err) != 0)
        fail_msg("signing with the testcase's leaf key: %s", anchor_err_msg(&err));
    proof.agent_nonce = agent_nonce;
    proof.agent_nonce_len = sizeof(agent_nonce);
    proof.signature = sig;
    proof.signature_len = sig_len;
    assert_int_equal(anchor_x509pop_proof_encode(&out, len, &proof, &err), 0);
    free(sig);
    return out;
}

/* After a successful verification, a challenge and proof round with the
 * testcase's own leaf key (limbo ships it): the proof must verify, and its
 * hostile twin, the same proof against another challenge, must be refused
 * with the documented message. Returns 0 when both hold. */
static int proof_round(const json_t *tc, const struct anchor_x509pop_config *cfg,
                       const uint8_t *evidence, size_t ev_len, time_t at)
{
    const char *key_pem = json_string_value(json_object_get(tc, "peer_certificate_key"));
    const char *id = json_string_value(json_object_get(tc, "id"));
    BIO *bio = BIO_new_mem_buf(key_pem, -1);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    struct anchor_x509pop_proof proof;
    uint8_t nonce[ANCHOR_X509POP_NONCE_LEN], other[ANCHOR_X509POP_NONCE_LEN];
    uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN];
    struct anchor_err err;
    uint8_t *wire;
    size_t wire_len;
    int rc = -1;

    if (key == NULL)
        fail_msg("%s: peer_certificate_key does not load", id);
    assert_int_equal(anchor_x509pop_evidence_parse(&ev, evidence, ev_len, &err), 0);
    assert_int_equal(anchor_x509pop_verify(&v, cfg, ev, NULL, at, &err), 0);
    assert_int_equal(anchor_x509pop_nonce(nonce, &err), 0);
    assert_int_equal(anchor_x509pop_nonce(other, &err), 0);
    memset(exporter, 0xa5, sizeof(exporter));
    wire = sign_proof(key, nonce, exporter, &wire_len);
    assert_int_equal(anchor_x509pop_proof_parse(&proof, wire, wire_len, &err), 0);
    if (anchor_x509pop_proof_verify(v, nonce, &proof, exporter, &err) != 0)
        print_message("PROOF %s: a good proof is refused: %s\n", id, anchor_err_msg(&err));
    else if (anchor_x509pop_proof_verify(v, other, &proof, exporter, &err) == 0)
        print_message("PROOF %s: a proof for another challenge is accepted\n", id);
    else if (strncmp(anchor_err_msg(&err), LIMBO_SIG_FAILED_MSG, strlen(LIMBO_SIG_FAILED_MSG)) != 0)
        print_message("PROOF %s: refused with \"%s\"\n", id, anchor_err_msg(&err));
    else
        rc = 0;
    free(wire);
    anchor_x509pop_verified_free(v);
    anchor_x509pop_evidence_free(ev);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return rc;
}

/* Lowercase hex SHA-1 of the DER inside one PEM certificate (not parsed). */
static void pem_sha1_hex(const char *pem, char hex[41])
{
    uint8_t *der = NULL;
    size_t len = 0;
    unsigned char md[20];

    append_der(&der, &len, pem);
    assert_non_null(SHA1(der, len, md));
    for (size_t i = 0; i < sizeof(md); i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
    free(der);
}

/* Whether a certificate could not be part of any chain verified at `at`:
 * outside its validity period, or with a critical extension OpenSSL does not
 * handle. A certificate that does not decode counts as usable (unknown). */
static int unusable_at(const char *pem, time_t at)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    int bad = 0;

    if (x != NULL)
        bad = X509_cmp_time(X509_get0_notAfter(x), &at) < 0 ||
              X509_cmp_time(X509_get0_notBefore(x), &at) > 0 ||
              (X509_get_extension_flags(x) & EXFLAG_CRITICAL) != 0;
    X509_free(x);
    BIO_free(bio);
    return bad;
}

/* The attributes of a verified testcase come from the verified chain only
 * (DESIGN.md): the leaf fingerprint is the peer certificate's; every
 * x509_pop.ca.* value is the SHA-1 of a certificate the testcase supplied;
 * and no certificate that no chain could use at `at` (expired, not yet
 * valid, unhandled critical extension) is among them, although the agent
 * sent it or caCerts holds it. Returns 0 when all hold, adding to *excluded
 * the number of such certificates checked absent. */
static int attrs_round(const json_t *tc, const struct anchor_x509pop_config *cfg,
                       const uint8_t *evidence, size_t ev_len, time_t at, size_t *excluded)
{
    static const char *const lists[] = {"trusted_certs", "untrusted_intermediates"};
    const char *id = json_string_value(json_object_get(tc, "id"));
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    const struct anchor_attrs *attrs;
    struct anchor_err err;
    char leaf_hex[41];
    size_t nca = 0, i;
    int rc = 0;
    json_t *c;

    assert_int_equal(anchor_x509pop_evidence_parse(&ev, evidence, ev_len, &err), 0);
    assert_int_equal(anchor_x509pop_verify(&v, cfg, ev, NULL, at, &err), 0);
    attrs = anchor_x509pop_verified_attrs(v);
    pem_sha1_hex(json_string_value(json_object_get(tc, "peer_certificate")), leaf_hex);
    if (strcmp(anchor_x509pop_verified_fingerprint(v), leaf_hex) != 0) {
        print_message("ATTRS %s: leaf fingerprint %s, not the peer certificate's %s\n", id,
                      anchor_x509pop_verified_fingerprint(v), leaf_hex);
        rc = -1;
    }
    for (size_t a = 0; a < attrs->n; a++) {
        int known = 0;

        if (strncmp(attrs->v[a].name, "x509_pop.ca.", 12) != 0)
            continue;
        nca++;
        for (size_t l = 0; l < 2; l++) {
            json_array_foreach(json_object_get(tc, lists[l]), i, c)
            {
                char hex[41];

                pem_sha1_hex(json_string_value(c), hex);
                if (strcmp(hex, attrs->v[a].value) != 0)
                    continue;
                known = 1;
                if (unusable_at(json_string_value(c), at)) {
                    print_message("ATTRS %s: %s names a certificate no chain can use\n", id,
                                  attrs->v[a].name);
                    rc = -1;
                }
            }
        }
        if (!known) {
            print_message("ATTRS %s: %s=%s is no certificate of the testcase\n", id,
                          attrs->v[a].name, attrs->v[a].value);
            rc = -1;
        }
    }
    if (nca == 0) {
        print_message("ATTRS %s: no x509_pop.ca.* attribute\n", id);
        rc = -1;
    }
    for (size_t l = 0; l < 2; l++) {
        json_array_foreach(json_object_get(tc, lists[l]), i, c)
        {
            *excluded += (size_t)unusable_at(json_string_value(c), at);
        }
    }
    anchor_x509pop_verified_free(v);
    anchor_x509pop_evidence_free(ev);
    return rc;
}

/* Runs one testcase through config_new, evidence_parse and verify.
 *
 * The engine remembers decoded intermediates per configuration
 * (src/lib/x509pop/cache.c) to save parsing; that must never change an
 * answer. So each testcase also logs in a second time on the same
 * configuration, and once more on a fresh configuration after a first login
 * at a time when every certificate was valid (so that its intermediates are
 * remembered), and every answer must equal the first. */
static void run_case(const json_t *tc, long max_intermediates, struct outcome *o)
{
    const char *vt = json_string_value(json_object_get(tc, "validation_time"));
    time_t at = vt != NULL ? parse_rfc3339(vt) : time(NULL);
    time_t primed = common_valid_time(tc);
    struct anchor_x509pop_config *cfg = NULL;
    uint8_t *evidence = NULL;
    size_t pem_len, ev_len = 0, i;
    char *pem = ca_pem(tc, &pem_len);
    json_t *c;

    append_der(&evidence, &ev_len, json_string_value(json_object_get(tc, "peer_certificate")));
    json_array_foreach(json_object_get(tc, "untrusted_intermediates"), i, c)
    {
        append_der(&evidence, &ev_len, json_string_value(c));
    }
    anchor_err_clear(&o->err);
    o->success = 0;
    o->repeat_differs = 0;
    o->primed = 0;
    o->primed_ok = 0;
    o->proved = 0;
    o->proof_wrong = 0;
    o->attrs_wrong = 0;
    o->excluded = 0;
    if (anchor_x509pop_config_new(&cfg, pem, pem_len, max_intermediates,
                                  ANCHOR_X509POP_DEFAULT_MAX_RSA_KEY_SIZE, &o->err) != 0) {
        o->stage = "config";
    } else {
        struct outcome again;

        o->success = login(cfg, evidence, ev_len, at, o) == 0;
        if (o->success && attrs_round(tc, cfg, evidence, ev_len, at, &o->excluded) != 0)
            o->attrs_wrong = 1;
        if (o->success && json_is_string(json_object_get(tc, "peer_certificate_key"))) {
            if (proof_round(tc, cfg, evidence, ev_len, at) == 0)
                o->proved = 1;
            else
                o->proof_wrong = 1;
        }
        again.success = login(cfg, evidence, ev_len, at, &again) == 0;
        if (!same_outcome(o, &again)) {
            o->repeat_differs = 1;
            report_repeat(tc, "second login", o, &again);
        }
        anchor_x509pop_config_free(cfg);
        cfg = NULL;
        if (primed != -1 && primed != at &&
            anchor_x509pop_config_new(&cfg, pem, pem_len, max_intermediates,
                                      ANCHOR_X509POP_DEFAULT_MAX_RSA_KEY_SIZE, &again.err) == 0) {
            o->primed = 1;
            o->primed_ok = login(cfg, evidence, ev_len, primed, &again) == 0;
            if (verbose())
                print_message("primed %s at %lld: %s\n",
                              json_string_value(json_object_get(tc, "id")), (long long)primed,
                              o->primed_ok ? "SUCCESS" : anchor_err_msg(&again.err));
            again.success = login(cfg, evidence, ev_len, at, &again) == 0;
            if (!same_outcome(o, &again)) {
                o->repeat_differs = 1;
                report_repeat(tc, "login after a login at a valid time", o, &again);
            }
        }
    }
    anchor_x509pop_config_free(cfg);
    free(evidence);
    free(pem);
}

static const struct kept *find_kept(const char *id)
{
    for (size_t i = 0; kept[i].id != NULL; i++)
        if (strcmp(kept[i].id, id) == 0)
            return &kept[i];
    return NULL;
}

static const char *result_name(int success)
{
    return success ? "SUCCESS" : "FAILURE";
}

struct counts {
    size_t run, pass, kept, wrong, stale_kept, ku_policy, primed, primed_ok, repeat, proved;
    size_t excluded;
};

/* A row that limbo passes but x509pop refuses for want of digitalSignature
 * must be refused for that reason, with the documented message. */
static int ku_policy_row(const struct row *row)
{
    return strcmp(row->limbo_expected, "SUCCESS") == 0 && strcmp(row->expected, "FAILURE") == 0;
}

/* Runs every row of one tier. In a strict tier a disagreement is counted as
 * wrong unless kept[] holds it; in an informational tier it is printed. */
static void run_tier(const struct suite *s, const char *tier, int strict, struct counts *k)
{
    memset(k, 0, sizeof(*k));
    for (size_t r = 0; r < s->n; r++) {
        const struct row *row = &s->rows[r];
        const json_t *tc;
        const struct kept *kp;
        struct outcome o;
        int want;

        if (strcmp(row->tier, tier) != 0)
            continue;
        tc = find_case(s, row->id);
        assert_true(strcmp(row->expected, "SUCCESS") == 0 || strcmp(row->expected, "FAILURE") == 0);
        want = strcmp(row->expected, "SUCCESS") == 0;
        /* The TSV and limbo.json must agree on the depth limit. */
        if (*row->max_depth != '\0')
            assert_int_equal(atol(row->max_depth),
                             json_integer_value(json_object_get(tc, "max_chain_depth")));
        run_case(tc, case_max_intermediates(tc), &o);
        k->run++;
        k->primed += (size_t)o.primed;
        k->primed_ok += (size_t)o.primed_ok;
        kp = strict ? find_kept(row->id) : NULL;
        k->proved += (size_t)o.proved;
        k->excluded += o.excluded;
        if (o.repeat_differs || o.proof_wrong || o.attrs_wrong) {
            k->wrong++; /* REPEAT, PROOF or ATTRS line printed by run_case() */
            k->repeat += (size_t)o.repeat_differs;
            continue;
        }
        if (o.success == want && ku_policy_row(row) &&
            strcmp(anchor_err_msg(&o.err), LIMBO_NO_DIGSIG_MSG) != 0) {
            k->wrong++;
            print_message("%s %-8s %s: refused, but not for the leaf's key usage: %s\n",
                          strict ? "MISMATCH" : "differs ", tier, row->id, anchor_err_msg(&o.err));
            continue;
        }
        k->ku_policy += o.success == want && ku_policy_row(row);
        if (o.success == want) {
            k->pass++;
            if (kp != NULL) {
                k->stale_kept++;
                print_message("STALE KEPT %s: now gives the expected %s; remove it from "
                              "kept[] and docs/conformance.md\n",
                              row->id, row->expected);
            } else if (verbose()) {
                print_message("ok   %-8s %s %s%s%s%s%s\n", tier, row->id, result_name(o.success),
                              o.success ? "" : " at ", o.stage, o.success ? "" : ": ",
                              anchor_err_msg(&o.err));
            }
            continue;
        }
        if (kp != NULL && strcmp(kp->we_give, result_name(o.success)) == 0) {
            k->kept++;
            print_message("KEPT %s: expected %s, anchor gives %s (%s)\n", row->id, row->expected,
                          result_name(o.success), kp->why);
            continue;
        }
        k->wrong++;
        print_message("%s %-8s %s: expected %s, anchor gives %s%s%s%s%s\n",
                      strict ? "MISMATCH" : "differs ", tier, row->id, row->expected,
                      result_name(o.success), o.success ? "" : " at ", o.stage,
                      o.success ? "" : ": ", anchor_err_msg(&o.err));
    }
}

static void test_core(void **state)
{
    const struct suite *s = *state;
    struct counts k;

    run_tier(s, "core", 1, &k);
    print_message("limbo core: %zu run, %zu pass (%zu of them refused for the leaf's key "
                  "usage, as limbo's SUCCESS turned FAILURE by our policy), %zu kept "
                  "differences, %zu mismatches, %zu stale kept entries\n",
                  k.run, k.pass, k.ku_policy, k.kept, k.wrong, k.stale_kept);
    print_message("limbo core: every testcase logged in twice on one configuration; %zu also "
                  "after a login at a time when all its certificates were valid (%zu of those "
                  "succeeded, so their intermediates were remembered); answers changed: %zu\n",
                  k.primed, k.primed_ok, k.repeat);
    print_message("limbo core: %zu verified testcases with the leaf's key in limbo.json also "
                  "passed a challenge/proof round with it, and refused the proof replayed "
                  "against another challenge\n",
                  k.proved);
    print_message("limbo core: attributes of each verified testcase checked against its "
                  "certificates; %zu supplied certificates that no chain could use were among "
                  "the checked\n",
                  k.excluded);
    assert_int_equal(k.run, 92); /* the data README's core count; docs/conformance.md */
    assert_int_equal(k.wrong, 0);
    assert_int_equal(k.stale_kept, 0);
    assert_int_equal(k.pass + k.kept, k.run);
}

/* Every kept difference is a core testcase and is explained in the docs. */
static void test_kept_documented(void **state)
{
    const struct suite *s = *state;
    const char *src = getenv("ANCHOR_SOURCE_DIR");
    char path[4096];
    char *doc;

    if (src == NULL)
        fail_msg("ANCHOR_SOURCE_DIR is not set (ctest sets it)");
    (void)snprintf(path, sizeof(path), "%s/docs/conformance.md", src);
    doc = read_text(path);
    for (size_t i = 0; kept[i].id != NULL; i++) {
        size_t r;

        for (r = 0; r < s->n; r++)
            if (strcmp(s->rows[r].id, kept[i].id) == 0)
                break;
        if (r == s->n || strcmp(s->rows[r].tier, "core") != 0)
            fail_msg("kept[] names %s, which is not a core testcase", kept[i].id);
        if (strstr(doc, kept[i].id) == NULL)
            fail_msg("docs/conformance.md does not explain the kept difference %s", kept[i].id);
    }
    free(doc);
}

/* With the product default (4), the 100-intermediate pathological chains
 * are refused by the count alone, before any parsing, with the documented
 * message. */
static void test_default_limit_refuses_pathological_chains(void **state)
{
    const struct suite *s = *state;
    size_t seen = 0;

    for (size_t r = 0; r < s->n; r++) {
        const json_t *tc;
        struct outcome o;
        size_t n;
        char want[128];

        if (strncmp(s->rows[r].id, "pathological::pathological-chain-", 33) != 0)
            continue;
        tc = find_case(s, s->rows[r].id);
        n = json_array_size(json_object_get(tc, "untrusted_intermediates"));
        assert_true(n > ANCHOR_X509POP_DEFAULT_MAX_INTERMEDIATES);
        run_case(tc, ANCHOR_X509POP_DEFAULT_MAX_INTERMEDIATES, &o);
        assert_false(o.success);
        assert_string_equal(o.stage, "verify");
        (void)snprintf(want, sizeof(want),
                       "certificate chain verification failed: too many intermediates "
                       "(%zu > %d)",
                       n, ANCHOR_X509POP_DEFAULT_MAX_INTERMEDIATES);
        assert_string_equal(anchor_err_msg(&o.err), want);
        seen++;
    }
    assert_int_equal(seen, 4);
}

/* The optional and nc tiers: printed, never failed. */
static void test_informational_tiers(void **state)
{
    const struct suite *s = *state;
    static const char *const tiers[] = {"optional", "nc"};

    for (size_t i = 0; i < 2; i++) {
        struct counts k;

        run_tier(s, tiers[i], 0, &k);
        print_message("limbo %s (informational): %zu run, %zu agree, %zu differ\n", tiers[i], k.run,
                      k.pass, k.wrong);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core),
        cmocka_unit_test(test_kept_documented),
        cmocka_unit_test(test_default_limit_refuses_pathological_chains),
        cmocka_unit_test(test_informational_tiers),
    };

    return cmocka_run_group_tests_name("x509-limbo", tests, setup, teardown);
}
