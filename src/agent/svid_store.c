/*
 * The agent's data-dir: its current SVID chain, the SVID's private key and
 * the trust bundle, as PEM files. Each file is written whole to a temporary
 * name in the same directory, flushed, given its final mode and renamed over
 * the old one, then the directory is flushed: a reader (or a crash) sees the
 * old file or the new one, never half of one. The key file has mode 0600
 * from the moment it exists (mkstemp). The two files of the pair are
 * replaced one after the other, key first: a reader that finds a key that
 * does not match the certificate reads again, and after a crash between the
 * two renames the next login replaces both.
 */
#include "agent.h"

#include "anchor/ca.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PEM_FILE ((size_t)2 * 1024 * 1024)

int agent_store_init(const char *dir, struct anchor_err *err)
{
    struct stat st;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        anchor_err_set(err, "data-dir %s: cannot create: %s", dir, strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        anchor_err_set(err, "data-dir %s: not a directory", dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        anchor_err_set(err, "data-dir %s: not writable: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
    size_t off = 0;

    /* Bounded: each turn writes at least one byte or fails. */
    while (off < len) {
        ssize_t n = write(fd, buf + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

/* Replaces dir/name with buf[0..len) atomically, with the given mode. */
static int write_atomic(const char *dir, const char *name, const char *buf, size_t len, mode_t mode,
                        struct anchor_err *err)
{
    char tmp[4096];
    char final[4096];
    int fd = -1;
    int dfd = -1;
    int rc = -1;

    if ((size_t)snprintf(final, sizeof(final), "%s/%s", dir, name) >= sizeof(final) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name) >= sizeof(tmp)) {
        anchor_err_set(err, "data-dir path too long");
        return -1;
    }
    /* mkstemp creates the file with mode 0600: a key is never readable by
     * others, not even for a moment. */
    fd = mkstemp(tmp);
    if (fd < 0) {
        anchor_err_set(err, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    if (write_all(fd, buf, len) != 0 || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        anchor_err_set(err, "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        anchor_err_set(err, "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, final) != 0) {
        anchor_err_set(err, "%s: cannot rename to %s: %s", tmp, final, strerror(errno));
        goto out;
    }
    tmp[0] = '\0';
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        (void)close(dfd);
    }
    rc = 0;
out:
    if (fd >= 0)
        (void)close(fd);
    if (rc != 0 && tmp[0] != '\0')
        (void)unlink(tmp);
    return rc;
}

/* The BIO's bytes; borrowed from it. */
static size_t bio_bytes(BIO *bio, char **data)
{
    long n = BIO_get_mem_data(bio, data);

    return n > 0 ? (size_t)n : 0;
}

static int certs_pem(BIO *bio, STACK_OF(X509) * certs)
{
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (PEM_write_bio_X509(bio, sk_X509_value(certs, i)) != 1)
            return -1;
    }
    return 0;
}

int agent_store_save(const char *dir, const struct agent_svid *svid, STACK_OF(X509) * roots,
                     struct anchor_err *err)
{
    int rc = -1;
    BIO *key = BIO_new(BIO_s_secmem());
    BIO *chain = BIO_new(BIO_s_mem());
    BIO *bundle = BIO_new(BIO_s_mem());
    char *data;
    size_t len;

    if (key == NULL || chain == NULL || bundle == NULL) {
        anchor_err_set(err, "out of memory");
        goto out;
    }
    if (PEM_write_bio_PrivateKey(key, svid->key, NULL, NULL, 0, NULL, NULL) != 1 ||
        certs_pem(chain, svid->chain) != 0 || (roots != NULL && certs_pem(bundle, roots) != 0)) {
        anchor_err_set(err, "cannot encode the SVID as PEM");
        goto out;
    }
    len = bio_bytes(key, &data);
    if (write_atomic(dir, AGENT_KEY_FILE, data, len, 0600, err) != 0)
        goto out;
    len = bio_bytes(chain, &data);
    if (write_atomic(dir, AGENT_SVID_FILE, data, len, 0644, err) != 0)
        goto out;
    if (roots != NULL) {
        len = bio_bytes(bundle, &data);
        if (write_atomic(dir, AGENT_BUNDLE_FILE, data, len, 0644, err) != 0)
            goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    BIO_free(key); /* secmem: wiped on free */
    BIO_free(chain);
    BIO_free(bundle);
    return rc;
}

static int read_file(const char *path, char **out, size_t *out_len, struct anchor_err *err)
{
    FILE *f = fopen(path, "rbe");
    char *buf = NULL;
    size_t len;

    if (f == NULL) {
        anchor_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    buf = malloc(MAX_PEM_FILE + 1);
    if (buf == NULL) {
        (void)fclose(f);
        anchor_err_set(err, "out of memory");
        return -1;
    }
    len = fread(buf, 1, MAX_PEM_FILE + 1, f);
    if (ferror(f) || len > MAX_PEM_FILE) {
        (void)fclose(f);
        free(buf);
        anchor_err_set(err, "%s: cannot read, or larger than %zu bytes", path, MAX_PEM_FILE);
        return -1;
    }
    (void)fclose(f);
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

/* Reads PEM CA certificates with the library's strict bundle reader. */
static int load_roots(const char *path, const char *trust_domain, STACK_OF(X509) * *out,
                      struct anchor_err *err)
{
    int rc = -1;
    char *text = NULL;
    size_t len = 0;
    struct anchor_bundle *b = NULL;
    STACK_OF(X509) *roots = NULL;

    if (read_file(path, &text, &len, err) != 0)
        return -1;
    if (anchor_bundle_parse_pem(&b, trust_domain, text, len, path, err) != 0)
        goto out;
    roots = sk_X509_dup(anchor_bundle_get0_roots(b));
    if (roots == NULL) {
        anchor_err_set(err, "out of memory");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(roots); i++)
        (void)X509_up_ref(sk_X509_value(roots, i));
    *out = roots;
    rc = 0;
out:
    anchor_bundle_free(b);
    free(text);
    return rc;
}

int agent_roots_load_pem(const char *path, const char *trust_domain, STACK_OF(X509) * *out,
                         struct anchor_err *err)
{
    return load_roots(path, trust_domain, out, err);
}

int agent_store_load_roots(const char *dir, const char *trust_domain, STACK_OF(X509) * *out,
                           struct anchor_err *err)
{
    char path[4096];

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, AGENT_BUNDLE_FILE) >= sizeof(path)) {
        anchor_err_set(err, "data-dir path too long");
        return -1;
    }
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        *out = NULL;
        return 0;
    }
    return load_roots(path, trust_domain, out, err);
}

/* Reads every CERTIFICATE of a PEM text as DER, into der[0..*n). */
static int pem_chain_der(const char *text, size_t len, uint8_t **der, size_t *der_len, size_t max,
                         size_t *n, struct anchor_err *err)
{
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    X509 *x = NULL;
    size_t k = 0;

    if (bio == NULL) {
        anchor_err_set(err, "out of memory");
        return -1;
    }
    while (k < max && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        int l = i2d_X509(x, NULL);
        unsigned char *p;

        der[k] = l > 0 ? OPENSSL_malloc((size_t)l) : NULL;
        p = der[k];
        if (p == NULL || i2d_X509(x, &p) != l) {
            X509_free(x);
            break;
        }
        der_len[k++] = (size_t)l;
        X509_free(x);
    }
    ERR_clear_error();
    BIO_free(bio);
    if (k == 0) {
        anchor_err_set(err, "no certificate");
        return -1;
    }
    *n = k;
    return 0;
}

int agent_store_load_svid(const char *dir, const char *trust_domain, STACK_OF(X509) * roots,
                          struct agent_svid **out, struct anchor_err *err)
{
    int rc = -1;
    char path[4096];
    char *text = NULL;
    size_t len = 0;
    uint8_t *der[8] = {0};
    size_t der_len[8];
    size_t n = 0;
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, AGENT_SVID_FILE) >= sizeof(path)) {
        anchor_err_set(err, "data-dir path too long");
        return -1;
    }
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        *out = NULL;
        return 0;
    }
    if (read_file(path, &text, &len, err) != 0 ||
        pem_chain_der(text, len, der, der_len, 8, &n, err) != 0)
        goto out;
    free(text);
    text = NULL;
    (void)snprintf(path, sizeof(path), "%s/%s", dir, AGENT_KEY_FILE);
    if (read_file(path, &text, &len, err) != 0)
        goto out;
    bio = BIO_new_mem_buf(text, (int)len);
    key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (key == NULL) {
        anchor_err_set(err, "%s: not a PEM private key", path);
        goto out;
    }
    if (agent_svid_from_der(out, (const uint8_t *const *)der, der_len, n, key, NULL, trust_domain,
                            roots, err) != 0)
        goto out;
    rc = 0;
out:
    ERR_clear_error();
    EVP_PKEY_free(key);
    BIO_free(bio);
    if (text != NULL)
        OPENSSL_cleanse(text, len);
    free(text);
    for (size_t i = 0; i < n; i++)
        OPENSSL_free(der[i]);
    return rc;
}
