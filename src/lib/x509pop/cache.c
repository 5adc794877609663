/*
 * A small per-configuration cache of decoded intermediate certificates.
 *
 * Most of the agents of a trust domain present the same one or two
 * intermediates, and in OpenSSL 3.0 decoding a certificate costs about as
 * much as verifying its signature (the public key goes through the provider
 * decoders). So the configuration remembers the decoded X509 objects of
 * intermediates that were part of a successfully verified chain, keyed by the
 * SHA-256 of their exact DER, and later logins that present the same bytes
 * reuse them. Only parsing is saved: every login still verifies every
 * signature, validity period and constraint. The cache is bounded, lives and
 * dies with the configuration snapshot, and is safe to share between threads
 * (a mutex guards the table; X509 objects are reference-counted and OpenSSL
 * guards their lazily computed fields).
 */
#include "x509pop/internal.h"
#include "util/check.h"

#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    uint8_t hash[ANCHOR__X509POP_HASH_LEN];
    X509 *x;
};

struct anchor__x509pop_cache {
    pthread_mutex_t lock;
    struct entry v[ANCHOR__X509POP_CACHE_SIZE];
    size_t n;
    size_t next; /* replacement cursor once full (round robin) */
};

int anchor__x509pop_cache_new(struct anchor__x509pop_cache **out, struct anchor_err *err)
{
    int rc = -1;
    struct anchor__x509pop_cache *c = calloc(1, sizeof(*c));

    ENSURE(c != NULL, err, "out of memory");
    ENSURE(pthread_mutex_init(&c->lock, NULL) == 0, err, "out of memory");
    *out = c;
    c = NULL;
    rc = 0;
out:
    free(c);
    return rc;
}

void anchor__x509pop_cache_free(struct anchor__x509pop_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        X509_free(c->v[i].x);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int anchor__x509pop_der_hash(uint8_t hash[ANCHOR__X509POP_HASH_LEN], const uint8_t *der, size_t len)
{
    unsigned int n = 0;

    if (EVP_Digest(der, len, hash, &n, EVP_sha256(), NULL) != 1 || n != ANCHOR__X509POP_HASH_LEN) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

X509 *anchor__x509pop_cache_get(struct anchor__x509pop_cache *c,
                                const uint8_t hash[ANCHOR__X509POP_HASH_LEN])
{
    X509 *x = NULL;

    if (c == NULL || pthread_mutex_lock(&c->lock) != 0)
        return NULL;
    for (size_t i = 0; i < c->n; i++) {
        if (memcmp(c->v[i].hash, hash, ANCHOR__X509POP_HASH_LEN) == 0) {
            if (X509_up_ref(c->v[i].x) == 1)
                x = c->v[i].x;
            break;
        }
    }
    (void)pthread_mutex_unlock(&c->lock);
    return x;
}

void anchor__x509pop_cache_put(struct anchor__x509pop_cache *c,
                               const uint8_t hash[ANCHOR__X509POP_HASH_LEN], X509 *x)
{
    struct entry *slot = NULL;

    if (c == NULL || X509_up_ref(x) != 1)
        return;
    if (pthread_mutex_lock(&c->lock) != 0) {
        X509_free(x);
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (memcmp(c->v[i].hash, hash, ANCHOR__X509POP_HASH_LEN) == 0) {
            /* Another login got there first. */
            (void)pthread_mutex_unlock(&c->lock);
            X509_free(x);
            return;
        }
    }
    if (c->n < ANCHOR__X509POP_CACHE_SIZE) {
        slot = &c->v[c->n++];
    } else {
        slot = &c->v[c->next];
        c->next = (c->next + 1) % ANCHOR__X509POP_CACHE_SIZE;
        X509_free(slot->x);
    }
    memcpy(slot->hash, hash, ANCHOR__X509POP_HASH_LEN);
    slot->x = x;
    (void)pthread_mutex_unlock(&c->lock);
}

size_t anchor__x509pop_cache_count(struct anchor__x509pop_cache *c)
{
    size_t n = 0;

    if (c == NULL || pthread_mutex_lock(&c->lock) != 0)
        return 0;
    n = c->n;
    (void)pthread_mutex_unlock(&c->lock);
    return n;
}
