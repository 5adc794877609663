/*
 * anchor_x509pop_verify: the server's checks in order, each happy case with
 * its hostile twins, asserting the exact message; then the attributes taken
 * from the verified chain. One row per case: a builder makes the anchors and
 * the presented chain, the runner verifies and compares.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchor/x509pop.h"
#include "helper_pki.h"
#include "x509pop/internal.h"

struct vin {
    X509 *anchors[4];
    size_t nanchors;
    X509 *chain[8];
    size_t nchain;
    long max_inter;
    long max_rsa;
    time_t at;
    const char *td;
};

/* The shared PKI: root -> inter -> leaf (EC P-256). */
static struct hp_pki P;

static void add_anchor(struct vin *in, X509 *x)
{
    X509_up_ref(x);
    in->anchors[in->nanchors++] = x;
}

/* Takes over the reference of x. */
static void add_chain(struct vin *in, X509 *x)
{
    in->chain[in->nchain++] = x;
}

static void add_chain_ref(struct vin *in, X509 *x)
{
    X509_up_ref(x);
    add_chain(in, x);
}

static X509 *leaf_with(const struct hp_cert_opts *o, EVP_PKEY *key)
{
    return hp_cert(o, key, P.inter, P.inter_key);
}

/* root -> inter -> leaf(opts, key) */
static void std_chain(struct vin *in, const struct hp_cert_opts *o, EVP_PKEY *key)
{
    add_anchor(in, P.root);
    add_chain(in, leaf_with(o, key));
    add_chain_ref(in, P.inter);
}

static const struct hp_cert_opts LEAF = {.cn = "node-1.example.org"};

/* --- builders ---------------------------------------------------------- */

static void b_ok_p256(struct vin *in)
{
    add_anchor(in, P.root);
    add_chain_ref(in, P.leaf);
    add_chain_ref(in, P.inter);
}

static void b_key(struct vin *in, enum hp_key_type t, int bits)
{
    EVP_PKEY *k = hp_key(t, bits);
    std_chain(in, &LEAF, k);
    EVP_PKEY_free(k);
}

static void b_ok_p384(struct vin *in)
{
    b_key(in, HP_EC_P384, 0);
}

static void b_ok_p521(struct vin *in)
{
    b_key(in, HP_EC_P521, 0);
}

static void b_ok_rsa2048(struct vin *in)
{
    b_key(in, HP_RSA, 2048);
}

static void b_ok_rsa4096(struct vin *in)
{
    b_key(in, HP_RSA, 4096);
}

static void b_rsa4096_limit3072(struct vin *in)
{
    b_key(in, HP_RSA, 4096);
    in->max_rsa = 3072;
}

static void b_rsa9216_leaf(struct vin *in)
{
    b_key(in, HP_RSA, 9216);
}

/* An RSA 9216 intermediate whose leaf's signature is broken: the size rule
 * must fire before any signature is checked. */
static void b_rsa9216_inter_bad_sig(struct vin *in)
{
    struct hp_cert_opts io = {.cn = "Big Intermediate", .ca = 1};
    EVP_PKEY *big = hp_key(HP_RSA, 9216);
    EVP_PKEY *other = hp_key_fresh(HP_EC_P256, 0);
    X509 *inter = hp_cert(&io, big, P.root, P.root_key);

    add_anchor(in, P.root);
    add_chain(in, hp_cert(&LEAF, P.leaf_key, inter, other));
    add_chain(in, inter);
    EVP_PKEY_free(big);
    EVP_PKEY_free(other);
}

static void b_ed25519(struct vin *in)
{
    b_key(in, HP_ED25519, 0);
}

static void b_secp256k1(struct vin *in)
{
    b_key(in, HP_EC_SECP256K1, 0);
}

static void b_direct(struct vin *in)
{
    add_anchor(in, P.root);
    add_chain(in, hp_cert(&LEAF, P.leaf_key, P.root, P.root_key));
    in->max_inter = 0;
}

static void b_one_inter_max0(struct vin *in)
{
    b_ok_p256(in);
    in->max_inter = 0;
}

/* root -> i1 -> ... -> in -> leaf */
static void b_n_inter(struct vin *in, int n)
{
    X509 *issuer = P.root;
    EVP_PKEY *issuer_key = P.root_key;
    X509 *inters[8];
    EVP_PKEY *keys[8];
    char cn[8][32];

    add_anchor(in, P.root);
    for (int i = 0; i < n; i++) {
        struct hp_cert_opts io = {.cn = cn[i], .ca = 1};
        snprintf(cn[i], sizeof(cn[i]), "Intermediate %d", i + 1);
        keys[i] = hp_key_fresh(HP_EC_P256, 0);
        inters[i] = hp_cert(&io, keys[i], issuer, issuer_key);
        issuer = inters[i];
        issuer_key = keys[i];
    }
    add_chain(in, hp_cert(&LEAF, P.leaf_key, issuer, issuer_key));
    for (int i = n - 1; i >= 0; i--) {
        add_chain(in, inters[i]);
        EVP_PKEY_free(keys[i]);
    }
}

static void b_4_inter(struct vin *in)
{
    b_n_inter(in, 4);
}

static void b_5_inter(struct vin *in)
{
    b_n_inter(in, 5);
}

static void b_expired(struct vin *in)
{
    struct hp_cert_opts o = LEAF;
    o.not_before = time(NULL) - 10 * 86400;
    o.not_after = time(NULL) - 86400;
    std_chain(in, &o, P.leaf_key);
}

/* A chain whose every certificate was valid five days ago. */
static void b_expired_at_past(struct vin *in)
{
    time_t now = time(NULL);
    struct hp_cert_opts ro = {.cn = "Old Root", .ca = 1, .not_before = now - 20 * 86400};
    struct hp_cert_opts o = LEAF;
    X509 *root = hp_cert(&ro, P.root_key, NULL, NULL);

    o.not_before = now - 10 * 86400;
    o.not_after = now - 86400;
    add_anchor(in, root);
    add_chain(in, hp_cert(&o, P.leaf_key, root, P.root_key));
    X509_free(root);
    in->at = now - 5 * 86400;
}

static void b_not_yet_valid(struct vin *in)
{
    struct hp_cert_opts o = LEAF;
    o.not_before = time(NULL) + 86400;
    o.not_after = time(NULL) + 10 * 86400;
    std_chain(in, &o, P.leaf_key);
}

static void b_untrusted_root(struct vin *in)
{
    struct hp_cert_opts ro = {.cn = "Other Root", .ca = 1};
    EVP_PKEY *k = hp_key_fresh(HP_EC_P256, 0);
    X509 *other = hp_cert(&ro, k, NULL, NULL);

    add_anchor(in, other);
    X509_free(other);
    EVP_PKEY_free(k);
    add_chain_ref(in, P.leaf);
    add_chain_ref(in, P.inter);
}

static void b_no_intermediate_sent(struct vin *in)
{
    add_anchor(in, P.root);
    add_chain_ref(in, P.leaf);
}

static void b_inter_is_anchor(struct vin *in)
{
    add_anchor(in, P.inter);
    add_chain_ref(in, P.leaf);
}

static void b_bad_signature(struct vin *in)
{
    EVP_PKEY *k = hp_key_fresh(HP_EC_P256, 0);
    add_anchor(in, P.root);
    add_chain(in, hp_cert(&LEAF, P.leaf_key, P.inter, k));
    add_chain_ref(in, P.inter);
    EVP_PKEY_free(k);
}

static void b_issuer_not_ca(struct vin *in)
{
    struct hp_cert_opts io = {.cn = "Not A CA", .ku = HP_KU_NONE};
    X509 *inter = hp_cert(&io, P.inter_key, P.root, P.root_key);

    add_anchor(in, P.root);
    add_chain(in, hp_cert(&LEAF, P.leaf_key, inter, P.inter_key));
    add_chain(in, inter);
}

static void b_pathlen0_root(struct vin *in)
{
    struct hp_cert_opts ro = {.cn = "Pathlen0 Root", .ca = 1, .has_pathlen = 1, .pathlen = 0};
    struct hp_cert_opts io = {.cn = "Intermediate", .ca = 1};
    X509 *root = hp_cert(&ro, P.root_key, NULL, NULL);
    X509 *inter = hp_cert(&io, P.inter_key, root, P.root_key);

    add_anchor(in, root);
    X509_free(root);
    add_chain(in, hp_cert(&LEAF, P.leaf_key, inter, P.inter_key));
    add_chain(in, inter);
}

static void b_unknown_critical(struct vin *in)
{
    struct hp_cert_opts o = LEAF;
    o.unknown_critical = 1;
    std_chain(in, &o, P.leaf_key);
}

static void b_ku_absent(struct vin *in)
{
    struct hp_cert_opts o = LEAF;
    o.ku = HP_KU_NONE;
    std_chain(in, &o, P.leaf_key);
}

static void b_ku_no_digsig(struct vin *in)
{
    struct hp_cert_opts o = LEAF;
    o.ku = HP_KU_NO_DIGSIG;
    std_chain(in, &o, P.leaf_key);
}

static void b_ca_leaf(struct vin *in)
{
    struct hp_cert_opts o = LEAF;
    o.ca = 1;
    std_chain(in, &o, P.leaf_key);
}

static void b_anchor_as_leaf(struct vin *in)
{
    add_anchor(in, P.root);
    add_chain_ref(in, P.root);
}

static void b_rsa1024_leaf(struct vin *in)
{
    b_key(in, HP_RSA, 1024);
}

/* root -> inter(key of type) -> leaf(P-256) */
static void b_inter_key(struct vin *in, enum hp_key_type t, int bits)
{
    struct hp_cert_opts io = {.cn = "Odd Key Intermediate", .ca = 1};
    EVP_PKEY *k = hp_key(t, bits);
    X509 *inter = hp_cert(&io, k, P.root, P.root_key);

    add_anchor(in, P.root);
    add_chain(in, hp_cert(&LEAF, P.leaf_key, inter, k));
    add_chain(in, inter);
    EVP_PKEY_free(k);
}

static void b_rsa1024_inter(struct vin *in)
{
    b_inter_key(in, HP_RSA, 1024);
}

static void b_ed25519_inter(struct vin *in)
{
    b_inter_key(in, HP_ED25519, 0);
}

static void b_secp256k1_inter(struct vin *in)
{
    b_inter_key(in, HP_EC_SECP256K1, 0);
}

static void b_rsa2048_inter(struct vin *in)
{
    b_inter_key(in, HP_RSA, 2048);
}

/* anchor(key of type) -> leaf(P-256) */
static void b_root_key(struct vin *in, enum hp_key_type t, int bits)
{
    struct hp_cert_opts ro = {.cn = "Odd Key Root", .ca = 1};
    EVP_PKEY *k = hp_key(t, bits);
    X509 *root = hp_cert(&ro, k, NULL, NULL);

    add_anchor(in, root);
    add_chain(in, hp_cert(&LEAF, P.leaf_key, root, k));
    X509_free(root);
    EVP_PKEY_free(k);
}

static void b_rsa1024_root(struct vin *in)
{
    b_root_key(in, HP_RSA, 1024);
}

static void b_secp256k1_root(struct vin *in)
{
    b_root_key(in, HP_EC_SECP256K1, 0);
}

static void b_p384_root(struct vin *in)
{
    b_root_key(in, HP_EC_P384, 0);
}

static void b_eku_client(struct vin *in)
{
    struct hp_cert_opts o = LEAF;
    o.eku = "clientAuth,serverAuth";
    std_chain(in, &o, P.leaf_key);
}

static void b_eku_empty(struct vin *in)
{
    struct hp_cert_opts o = LEAF;
    o.eku_empty = 1;
    std_chain(in, &o, P.leaf_key);
}

static void b_garbage_second(struct vin *in)
{
    b_ok_p256(in);
}

/* --- runner ------------------------------------------------------------ */

struct vcase {
    const char *name;
    void (*build)(struct vin *in);
    const char *want; /* NULL: success; a trailing '*' matches a prefix */
    int garbage_second;
};

static const struct vcase CASES[] = {
    {"ok EC P-256", b_ok_p256, NULL, 0},
    {"ok EC P-384", b_ok_p384, NULL, 0},
    {"ok EC P-521", b_ok_p521, NULL, 0},
    {"ok RSA 2048", b_ok_rsa2048, NULL, 0},
    {"ok RSA 4096", b_ok_rsa4096, NULL, 0},
    {"unsupported ED25519", b_ed25519, "unsupported key type ED25519", 0},
    {"unsupported secp256k1", b_secp256k1, "unsupported key type EC secp256k1", 0},
    {"ok leaf issued by the anchor", b_direct, NULL, 0},
    {"one intermediate, max 0", b_one_inter_max0,
     "certificate chain verification failed: too many intermediates (1 > 0)", 0},
    {"ok 4 intermediates", b_4_inter, NULL, 0},
    {"5 intermediates", b_5_inter,
     "certificate chain verification failed: too many intermediates (5 > 4)", 0},
    {"RSA 4096 within maxRSAKeySize 3072", b_rsa4096_limit3072,
     "certificate chain verification failed: RSA key size 4096 exceeds maxRSAKeySize 3072", 0},
    {"RSA 9216 leaf", b_rsa9216_leaf,
     "certificate chain verification failed: RSA key size 9216 exceeds maxRSAKeySize 8192", 0},
    {"RSA 9216 intermediate before signatures", b_rsa9216_inter_bad_sig,
     "certificate chain verification failed: RSA key size 9216 exceeds maxRSAKeySize 8192", 0},
    {"expired", b_expired, "certificate chain verification failed: certificate has expired", 0},
    {"ok expired leaf verified at a past time", b_expired_at_past, NULL, 0},
    {"not yet valid", b_not_yet_valid,
     "certificate chain verification failed: certificate is not yet valid", 0},
    {"untrusted root", b_untrusted_root,
     "certificate chain verification failed: unable to get local issuer certificate", 0},
    {"intermediate missing", b_no_intermediate_sent,
     "certificate chain verification failed: unable to get local issuer certificate", 0},
    {"ok intermediate in caCerts is an anchor", b_inter_is_anchor, NULL, 0},
    {"bad leaf signature", b_bad_signature,
     "certificate chain verification failed: certificate signature failure", 0},
    {"issuer is not a CA", b_issuer_not_ca,
     "certificate chain verification failed: invalid CA certificate", 0},
    {"path length exceeded", b_pathlen0_root,
     "certificate chain verification failed: path length constraint exceeded", 0},
    {"unknown critical extension", b_unknown_critical,
     "certificate chain verification failed: unhandled critical extension", 0},
    {"key usage absent", b_ku_absent, "certificate does not include digitalSignature key usage", 0},
    {"key usage without digitalSignature", b_ku_no_digsig,
     "certificate does not include digitalSignature key usage", 0},
    {"CA:TRUE leaf", b_ca_leaf,
     "certificate chain verification failed: leaf certificate is a CA certificate", 0},
    {"anchor presented as leaf", b_anchor_as_leaf,
     "certificate chain verification failed: leaf certificate is itself a trust anchor", 0},
    {"RSA 1024 leaf", b_rsa1024_leaf,
     "certificate chain verification failed: certificate 1 has an RSA key of 1024 bits, below "
     "the minimum 2048",
     0},
    {"ok RSA 2048 intermediate", b_rsa2048_inter, NULL, 0},
    {"RSA 1024 intermediate", b_rsa1024_inter,
     "certificate chain verification failed: certificate 2 has an RSA key of 1024 bits, below "
     "the minimum 2048",
     0},
    {"ok Ed25519 intermediate", b_ed25519_inter, NULL, 0},
    {"secp256k1 intermediate", b_secp256k1_inter,
     "certificate chain verification failed: certificate 2 has an unsupported key type EC "
     "secp256k1",
     0},
    {"ok P-384 anchor", b_p384_root, NULL, 0},
    {"RSA 1024 anchor", b_rsa1024_root,
     "certificate chain verification failed: the trust anchor has an RSA key of 1024 bits, below "
     "the minimum 2048",
     0},
    {"secp256k1 anchor", b_secp256k1_root,
     "certificate chain verification failed: the trust anchor has an unsupported key type EC "
     "secp256k1",
     0},
    {"ok leaf EKU clientAuth", b_eku_client, NULL, 0},
    {"empty leaf EKU", b_eku_empty,
     "certificate chain verification failed: leaf certificate has an empty or invalid extended "
     "key usage extension",
     0},
    {"second element not a certificate", b_garbage_second,
     "certificate chain verification failed: certificate 2 is not a valid DER certificate*", 1},
};

static void run_case(const struct vcase *c)
{
    struct vin in;
    struct anchor_err err;
    struct anchor_x509pop_config *cfg = NULL;
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    char *pem;
    uint8_t *der;
    size_t der_len;
    int rc;

    memset(&in, 0, sizeof(in));
    in.max_inter = ANCHOR_X509POP_DEFAULT_MAX_INTERMEDIATES;
    in.max_rsa = ANCHOR_X509POP_DEFAULT_MAX_RSA_KEY_SIZE;
    c->build(&in);
    if (in.at == 0)
        in.at = time(NULL);
    anchor_err_clear(&err);
    pem = hp_pem_certs(in.anchors, in.nanchors);
    if (anchor_x509pop_config_new(&cfg, pem, strlen(pem), in.max_inter, in.max_rsa, &err) != 0)
        fail_msg("%s: config: %s", c->name, anchor_err_msg(&err));
    der = hp_der_chain(in.chain, in.nchain, &der_len);
    if (c->garbage_second) {
        /* Replace everything after the leaf by a SEQUENCE holding an INTEGER. */
        size_t leaf_len;
        uint8_t *leaf = hp_der(in.chain[0], &leaf_len);
        static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x05};
        memcpy(der + leaf_len, junk, sizeof(junk));
        der_len = leaf_len + sizeof(junk);
        free(leaf);
    }
    if (anchor_x509pop_evidence_parse(&ev, der, der_len, &err) != 0)
        fail_msg("%s: evidence: %s", c->name, anchor_err_msg(&err));
    rc = anchor_x509pop_verify(&v, cfg, ev, in.td, in.at, &err);
    if (c->want == NULL) {
        if (rc != 0)
            fail_msg("%s: want success, got \"%s\"", c->name, anchor_err_msg(&err));
        assert_non_null(v);
        assert_int_equal(strlen(anchor_x509pop_verified_fingerprint(v)), 40);
    } else {
        size_t wl = strlen(c->want);
        int prefix = c->want[wl - 1] == '*';
        if (rc == 0)
            fail_msg("%s: want \"%s\", got success", c->name, c->want);
        if (prefix ? strncmp(anchor_err_msg(&err), c->want, wl - 1) != 0
                   : strcmp(anchor_err_msg(&err), c->want) != 0)
            fail_msg("%s: want \"%s\", got \"%s\"", c->name, c->want, anchor_err_msg(&err));
    }
    anchor_x509pop_verified_free(v);
    anchor_x509pop_evidence_free(ev);
    anchor_x509pop_config_free(cfg);
    free(der);
    free(pem);
    for (size_t i = 0; i < in.nanchors; i++)
        X509_free(in.anchors[i]);
    for (size_t i = 0; i < in.nchain; i++)
        X509_free(in.chain[i]);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++)
        run_case(&CASES[i]);
}

/* --- attributes --------------------------------------------------------- */

static char *sha1_hex(X509 *x)
{
    unsigned char md[20];
    unsigned int n = 0;
    char *s = malloc(41);

    assert_int_equal(X509_digest(x, EVP_sha1(), md, &n), 1);
    for (unsigned int i = 0; i < n; i++)
        sprintf(s + 2 * i, "%02x", md[i]);
    return s;
}

static char *serial_of(X509 *x)
{
    const ASN1_INTEGER *ai = X509_get0_serialNumber(x);
    const unsigned char *d = ASN1_STRING_get0_data(ai);
    int n = ASN1_STRING_length(ai);
    char *s = malloc(2 * (size_t)n + 1);

    for (int i = 0; i < n; i++)
        sprintf(s + 2 * i, "%02x", d[i]);
    return s;
}

/* Verifies leaf (+ intermediates) against anchors and returns the result. */
static struct anchor_x509pop_verified *verify_ok(X509 **anchors, size_t na, X509 **chain, size_t nc,
                                                 const char *td)
{
    struct anchor_err err;
    struct anchor_x509pop_config *cfg = NULL;
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    char *pem = hp_pem_certs(anchors, na);
    size_t len;
    uint8_t *der = hp_der_chain(chain, nc, &len);

    anchor_err_clear(&err);
    if (anchor_x509pop_config_new(&cfg, pem, strlen(pem), 4, 8192, &err) != 0 ||
        anchor_x509pop_evidence_parse(&ev, der, len, &err) != 0 ||
        anchor_x509pop_verify(&v, cfg, ev, td, time(NULL), &err) != 0)
        fail_msg("verify: %s", anchor_err_msg(&err));
    anchor_x509pop_evidence_free(ev);
    anchor_x509pop_config_free(cfg);
    free(pem);
    free(der);
    return v;
}

static void assert_attr(const struct anchor_attrs *a, size_t i, const char *name, const char *value)
{
    assert_true(i < a->n);
    assert_string_equal(a->v[i].name, name);
    assert_string_equal(a->v[i].value, value);
}

static void test_attrs_chain(void **state)
{
    X509 *anchors[] = {P.root};
    /* An unrelated CA the agent sends along: not in the verified chain, so
     * it yields no attribute. */
    struct hp_cert_opts xo = {.cn = "Stray CA", .ca = 1};
    EVP_PKEY *xk = hp_key_fresh(HP_EC_P256, 0);
    X509 *stray = hp_cert(&xo, xk, NULL, NULL);
    X509 *chain[] = {P.leaf, P.inter, stray};
    struct anchor_x509pop_verified *v = verify_ok(anchors, 1, chain, 3, NULL);
    const struct anchor_attrs *a = anchor_x509pop_verified_attrs(v);
    char *is = serial_of(P.inter), *rs = serial_of(P.root);
    char *ih = sha1_hex(P.inter), *rh = sha1_hex(P.root), *lh = sha1_hex(P.leaf);
    char n1[64], n2[64];
    char *desc = NULL;
    struct anchor_err err;

    (void)state;
    snprintf(n1, sizeof(n1), "x509_pop.ca.%s", is);
    snprintf(n2, sizeof(n2), "x509_pop.ca.%s", rs);
    assert_int_equal(a->n, 4);
    assert_attr(a, 0, "x509_pop.subject.common_name", "node-1.example.org");
    assert_attr(a, 1, "x509_pop.serial_number", "3a7f2c1b");
    assert_attr(a, 2, n1, ih);
    assert_attr(a, 3, n2, rh);
    assert_string_equal(anchor_x509pop_verified_fingerprint(v), lh);
    assert_int_equal(anchor_x509pop_verified_describe(v, &desc, &err), 0);
    assert_non_null(strstr(desc, "subject=\"CN=node-1.example.org,O=anchor-tests\""));
    assert_non_null(strstr(desc, "key=EC P-256"));
    assert_non_null(strstr(desc, "chain=3"));
    free(desc);
    anchor_x509pop_verified_free(v);
    free(is);
    free(rs);
    free(ih);
    free(rh);
    free(lh);
    X509_free(stray);
    EVP_PKEY_free(xk);
}

struct serial_row {
    const char *serial_hex;
    const char *want;
};

static void test_attrs_serial_and_cn(void **state)
{
    static const struct serial_row rows[] = {
        {"3a7f2c1b", "3a7f2c1b"},
        {"abc", "0abc"},
        {"0abc", "0abc"},
        {"80", "80"},
        {"ff00", "ff00"},
        {"1", "01"},
        {"0102030405060708090a0b0c0d0e0f1011121314", "0102030405060708090a0b0c0d0e0f1011121314"},
    };
    X509 *anchors[] = {P.inter};

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct hp_cert_opts o = {.cn = "n", .serial_hex = rows[i].serial_hex};
        X509 *leaf = leaf_with(&o, P.leaf_key);
        struct anchor_x509pop_verified *v = verify_ok(anchors, 1, &leaf, 1, NULL);
        const char *got =
            anchor_attrs_get(anchor_x509pop_verified_attrs(v), "x509_pop.serial_number");
        if (got == NULL || strcmp(got, rows[i].want) != 0)
            fail_msg("serial %s: want %s, got %s", rows[i].serial_hex, rows[i].want,
                     got ? got : "(none)");
        anchor_x509pop_verified_free(v);
        X509_free(leaf);
    }
    /* An empty or absent CN gives no common_name attribute. */
    {
        struct hp_cert_opts e = {.cn = ""};
        struct hp_cert_opts n = {.cn = NULL};
        X509 *le = leaf_with(&e, P.leaf_key), *ln = leaf_with(&n, P.leaf_key);
        struct anchor_x509pop_verified *ve = verify_ok(anchors, 1, &le, 1, NULL);
        struct anchor_x509pop_verified *vn = verify_ok(anchors, 1, &ln, 1, NULL);
        assert_null(
            anchor_attrs_get(anchor_x509pop_verified_attrs(ve), "x509_pop.subject.common_name"));
        assert_null(
            anchor_attrs_get(anchor_x509pop_verified_attrs(vn), "x509_pop.subject.common_name"));
        assert_int_equal(anchor_x509pop_verified_attrs(vn)->n, 2);
        anchor_x509pop_verified_free(ve);
        anchor_x509pop_verified_free(vn);
        X509_free(le);
        X509_free(ln);
    }
}

static void test_attrs_san(void **state)
{
    struct hp_cert_opts o = {
        .cn = "n",
        .uris = {"x509pop://example.org/environment/staging",
                 "x509pop://example.org/environment/production", "x509pop://other.org/team/blue",
                 "x509pop://example.org.evil/team/red", "spiffe://example.org/team/green",
                 "x509pop://example.org/path/a/b/c", "x509pop://example.org/bad/x?y=1",
                 "x509pop://EXAMPLE.ORG/team/upper"},
        .dns = "node-1.example.org",
    };
    X509 *anchors[] = {P.inter};
    X509 *leaf = leaf_with(&o, P.leaf_key);
    struct anchor_x509pop_verified *v = verify_ok(anchors, 1, &leaf, 1, "example.org");
    struct anchor_x509pop_verified *none = verify_ok(anchors, 1, &leaf, 1, NULL);
    const struct anchor_attrs *a = anchor_x509pop_verified_attrs(v);

    (void)state;
    /* cn, serial, ca.<inter>, san.environment, san.path */
    assert_int_equal(a->n, 5);
    assert_attr(a, 3, "x509_pop.san.environment", "production");
    assert_attr(a, 4, "x509_pop.san.path", "a/b/c");
    assert_null(anchor_attrs_get(a, "x509_pop.san.team"));
    assert_null(anchor_attrs_get(a, "x509_pop.san.bad"));
    assert_int_equal(anchor_x509pop_verified_attrs(none)->n, 3);
    anchor_x509pop_verified_free(v);
    anchor_x509pop_verified_free(none);
    X509_free(leaf);
}

/* The configuration is shared by concurrent logins: references. */
static void test_config_refcount(void **state)
{
    X509 *anchors[] = {P.root};
    char *pem = hp_pem_certs(anchors, 1);
    struct anchor_x509pop_config *cfg = NULL;
    struct anchor_err err;

    (void)state;
    assert_int_equal(anchor_x509pop_config_new(&cfg, pem, strlen(pem), 4, 8192, &err), 0);
    assert_ptr_equal(anchor_x509pop_config_up_ref(cfg), cfg);
    anchor_x509pop_config_free(cfg);
    assert_int_equal(anchor_x509pop_config_ca_count(cfg), 1);
    assert_int_equal(anchor_x509pop_config_max_intermediates(cfg), 4);
    assert_int_equal(anchor_x509pop_config_max_rsa_key_size(cfg), 8192);
    anchor_x509pop_config_free(cfg);
    anchor_x509pop_config_free(NULL);
    free(pem);
}

/* Decoded intermediates are reused across logins on one configuration, but
 * every signature, validity period and constraint is still checked. */
static void test_intermediate_cache(void **state)
{
    X509 *anchors[] = {P.root};
    char *pem = hp_pem_certs(anchors, 1);
    struct anchor_x509pop_config *cfg = NULL;
    struct anchor_err err;
    EVP_PKEY *other = hp_key_fresh(HP_EC_P256, 0);
    struct hp_cert_opts lo = LEAF;
    X509 *forged = hp_cert(&lo, P.leaf_key, P.inter, other);
    struct hp_cert_opts xo = {.cn = "Stray CA", .ca = 1};
    X509 *stray = hp_cert(&xo, other, NULL, NULL);
    X509 *good[] = {P.leaf, P.inter, stray};
    X509 *bad[] = {forged, P.inter};
    size_t good_len, bad_len;
    uint8_t *good_der = hp_der_chain(good, 3, &good_len);
    uint8_t *bad_der = hp_der_chain(bad, 2, &bad_len);
    const char *want_attr = NULL;

    (void)state;
    assert_int_equal(anchor_x509pop_config_new(&cfg, pem, strlen(pem), 4, 8192, &err), 0);
    /* A failed chain teaches the cache nothing. */
    for (int round = 0; round < 2; round++) {
        struct anchor_x509pop_evidence *ev = NULL;
        struct anchor_x509pop_verified *v = NULL;
        assert_int_equal(anchor_x509pop_evidence_parse(&ev, bad_der, bad_len, &err), 0);
        assert_int_equal(anchor_x509pop_verify(&v, cfg, ev, NULL, time(NULL), &err), -1);
        assert_string_equal(anchor_err_msg(&err),
                            "certificate chain verification failed: certificate signature failure");
        anchor_x509pop_evidence_free(ev);
        assert_int_equal(anchor__x509pop_cache_count(cfg->cache), 0);
    }
    /* Good chains: the intermediate is remembered, the stray CA is not, and
     * the second login gives the same attributes. */
    for (int round = 0; round < 3; round++) {
        struct anchor_x509pop_evidence *ev = NULL;
        struct anchor_x509pop_verified *v = NULL;
        const struct anchor_attrs *a;
        assert_int_equal(anchor_x509pop_evidence_parse(&ev, good_der, good_len, &err), 0);
        if (anchor_x509pop_verify(&v, cfg, ev, NULL, time(NULL), &err) != 0)
            fail_msg("round %d: %s", round, anchor_err_msg(&err));
        a = anchor_x509pop_verified_attrs(v);
        assert_int_equal(a->n, 4);
        if (want_attr == NULL)
            want_attr = strdup(a->v[2].value);
        assert_string_equal(a->v[2].value, want_attr);
        assert_int_equal(anchor__x509pop_cache_count(cfg->cache), 1);
        anchor_x509pop_verified_free(v);
        anchor_x509pop_evidence_free(ev);
    }
    /* With the intermediate cached, a forged leaf still fails, and so does
     * a login at a time outside the intermediate's validity. */
    {
        struct anchor_x509pop_evidence *ev = NULL;
        struct anchor_x509pop_verified *v = NULL;
        assert_int_equal(anchor_x509pop_evidence_parse(&ev, bad_der, bad_len, &err), 0);
        assert_int_equal(anchor_x509pop_verify(&v, cfg, ev, NULL, time(NULL), &err), -1);
        assert_string_equal(anchor_err_msg(&err),
                            "certificate chain verification failed: certificate signature failure");
        anchor_x509pop_evidence_free(ev);
        assert_int_equal(anchor_x509pop_evidence_parse(&ev, good_der, good_len, &err), 0);
        assert_int_equal(anchor_x509pop_verify(&v, cfg, ev, NULL, time(NULL) + 365 * 86400, &err),
                         -1);
        assert_string_equal(anchor_err_msg(&err),
                            "certificate chain verification failed: certificate has expired");
        anchor_x509pop_evidence_free(ev);
    }
    free((char *)want_attr);
    free(good_der);
    free(bad_der);
    X509_free(forged);
    X509_free(stray);
    EVP_PKEY_free(other);
    anchor_x509pop_config_free(cfg);
    free(pem);
}

static int setup(void **state)
{
    (void)state;
    hp_pki_init(&P, HP_EC_P256, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hp_pki_cleanup(&P);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_attrs_chain),
        cmocka_unit_test(test_attrs_serial_and_cn),
        cmocka_unit_test(test_attrs_san),
        cmocka_unit_test(test_config_refcount),
        cmocka_unit_test(test_intermediate_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
