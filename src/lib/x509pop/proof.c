/*
 * Challenge and proof. The server draws a 32-byte nonce; the agent answers
 * with its own 32-byte nonce and a signature with the leaf's key over
 * "anchor x509pop v1" || server_nonce || agent_nonce || exporter, where the
 * exporter is the connection's RFC 9266 channel binding, so that an answer
 * is bound to one challenge and one TLS connection. The wire form of an
 * answer is u16be len || agent nonce || u16be len || signature, exactly.
 */
#include "x509pop/internal.h"
#include "util/check.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define SIG_FAILED   ANCHOR__X509POP_SIG_FAILED
#define PROOF_PREFIX "invalid x509pop proof"

int anchor_x509pop_nonce(uint8_t nonce[ANCHOR_X509POP_NONCE_LEN], struct anchor_err *err)
{
    int rc = -1;

    ENSURE_OSSL(RAND_bytes(nonce, ANCHOR_X509POP_NONCE_LEN) == 1, err, "cannot draw a nonce");
    rc = 0;
out:
    return rc;
}

/* Reads a u16be length and that many bytes at *pos of buf[0..len). */
static int read_field(const uint8_t **field, size_t *field_len, const uint8_t *buf, size_t len,
                      size_t *pos, struct anchor_err *err)
{
    int rc = -1;
    size_t n;

    ENSURE(len - *pos >= 2, err, PROOF_PREFIX ": truncated");
    n = (size_t)buf[*pos] << 8 | buf[*pos + 1];
    *pos += 2;
    ENSURE(len - *pos >= n, err, PROOF_PREFIX ": truncated");
    *field = buf + *pos;
    *field_len = n;
    *pos += n;
    rc = 0;
out:
    return rc;
}

int anchor_x509pop_proof_parse(struct anchor_x509pop_proof *out, const uint8_t *buf, size_t len,
                               struct anchor_err *err)
{
    int rc = -1;
    struct anchor_x509pop_proof p;
    size_t pos = 0;

    ENSURE(buf != NULL || len == 0, err, PROOF_PREFIX ": truncated");
    TRY(read_field(&p.agent_nonce, &p.agent_nonce_len, buf, len, &pos, err));
    TRY(read_field(&p.signature, &p.signature_len, buf, len, &pos, err));
    ENSURE(pos == len, err, PROOF_PREFIX ": %zu trailing bytes", len - pos);
    ENSURE(p.signature_len <= ANCHOR_X509POP_MAX_SIGNATURE_BYTES, err,
           PROOF_PREFIX ": signature longer than %d bytes", ANCHOR_X509POP_MAX_SIGNATURE_BYTES);
    *out = p;
    rc = 0;
out:
    return rc;
}

int anchor_x509pop_proof_encode(uint8_t **out, size_t *out_len,
                                const struct anchor_x509pop_proof *proof, struct anchor_err *err)
{
    int rc = -1;
    uint8_t *buf = NULL;
    size_t n = proof->agent_nonce_len;
    size_t s = proof->signature_len;

    ENSURE(n <= 0xffff, err, PROOF_PREFIX ": agent nonce too long");
    ENSURE(s <= ANCHOR_X509POP_MAX_SIGNATURE_BYTES, err,
           PROOF_PREFIX ": signature longer than %d bytes", ANCHOR_X509POP_MAX_SIGNATURE_BYTES);
    buf = malloc(4 + n + s);
    ENSURE(buf != NULL, err, "out of memory");
    buf[0] = (uint8_t)(n >> 8);
    buf[1] = (uint8_t)n;
    if (n > 0)
        memcpy(buf + 2, proof->agent_nonce, n);
    buf[2 + n] = (uint8_t)(s >> 8);
    buf[3 + n] = (uint8_t)s;
    if (s > 0)
        memcpy(buf + 4 + n, proof->signature, s);
    *out = buf;
    *out_len = 4 + n + s;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    return rc;
}

void anchor__x509pop_signed_message(uint8_t out[ANCHOR__X509POP_SIGNED_LEN],
                                    const uint8_t server_nonce[ANCHOR_X509POP_NONCE_LEN],
                                    const uint8_t agent_nonce[ANCHOR_X509POP_NONCE_LEN],
                                    const uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN])
{
    size_t l = sizeof(ANCHOR_X509POP_SIGNED_LABEL) - 1;

    memcpy(out, ANCHOR_X509POP_SIGNED_LABEL, l);
    memcpy(out + l, server_nonce, ANCHOR_X509POP_NONCE_LEN);
    memcpy(out + l + ANCHOR_X509POP_NONCE_LEN, agent_nonce, ANCHOR_X509POP_NONCE_LEN);
    memcpy(out + l + 2 * ANCHOR_X509POP_NONCE_LEN, exporter, ANCHOR_X509POP_EXPORTER_LEN);
}

int anchor_x509pop_proof_verify(const struct anchor_x509pop_verified *v,
                                const uint8_t server_nonce[ANCHOR_X509POP_NONCE_LEN],
                                const struct anchor_x509pop_proof *proof,
                                const uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN],
                                struct anchor_err *err)
{
    int rc = -1;
    uint8_t msg[ANCHOR__X509POP_SIGNED_LEN];

    ENSURE(proof->agent_nonce != NULL && proof->agent_nonce_len > 0, err,
           SIG_FAILED ": agent nonce is missing");
    ENSURE(proof->agent_nonce_len == ANCHOR_X509POP_NONCE_LEN, err,
           SIG_FAILED ": agent nonce is %zu bytes, expected %d", proof->agent_nonce_len,
           ANCHOR_X509POP_NONCE_LEN);
    /* An agent that echoes the challenge adds no freshness of its own. */
    ENSURE(CRYPTO_memcmp(proof->agent_nonce, server_nonce, ANCHOR_X509POP_NONCE_LEN) != 0, err,
           SIG_FAILED ": agent nonce equals the server nonce");
    anchor__x509pop_signed_message(msg, server_nonce, proof->agent_nonce, exporter);
    TRY(anchor__x509pop_sig_verify(v->key, msg, sizeof(msg), proof->signature, proof->signature_len,
                                   err));
    rc = 0;
out:
    return rc;
}
