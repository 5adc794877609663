/*
 * The CA's files: paths inside the CA directory, PEM files written
 * atomically (temporary file, flush, rename, flush of the directory), and
 * certificate and key files read with the strict loaders of crypto/, a key
 * file refused when others may read it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/internal.h"
#include "crypto/crypto.h"
#include "util/check.h"

int anchor__ca_path_join(char *buf, const char *dir, const char *name, struct anchor_err *err)
{
    int n = snprintf(buf, ANCHOR__CA_MAX_PATH, "%s/%s", dir, name);

    if (n < 0 || n >= ANCHOR__CA_MAX_PATH) {
        anchor_err_set(err, "CA directory path is too long");
        return -1;
    }
    return 0;
}

/* Writes data to path through a temporary file in the same directory:
 * created with mode `mode`, written, flushed, renamed over path, and the
 * directory flushed, so that path holds either its old content or all of
 * data. */
static int write_atomic(const char *dir, const char *path, const void *data, size_t len,
                        mode_t mode, struct anchor_err *err)
{
    int rc = -1, fd = -1, dfd = -1, made = 0;
    char tmp[ANCHOR__CA_MAX_PATH];
    size_t done = 0;

    ENSURE(snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) < (int)sizeof(tmp), err,
           "CA directory path is too long");
    fd = mkstemp(tmp); /* mode 0600 from the start: no window for a key */
    ENSURE(fd >= 0, err, "cannot create %s: %s", tmp, strerror(errno));
    made = 1;
    ENSURE(fchmod(fd, mode) == 0, err, "cannot set the mode of %s: %s", tmp, strerror(errno));
    while (done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        ENSURE(n > 0, err, "cannot write %s: %s", tmp, strerror(errno));
        done += (size_t)n;
    }
    ENSURE(fsync(fd) == 0, err, "cannot flush %s: %s", tmp, strerror(errno));
    ENSURE(close(fd) == 0, err, "cannot write %s: %s", tmp, strerror(errno));
    fd = -1;
    ENSURE(rename(tmp, path) == 0, err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    made = 0;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ENSURE(dfd >= 0 && fsync(dfd) == 0, err, "cannot flush directory %s: %s", dir, strerror(errno));
    rc = 0;
out:
    if (fd >= 0)
        (void)close(fd);
    if (dfd >= 0)
        (void)close(dfd);
    if (made)
        (void)unlink(tmp);
    return rc;
}

/* Encodes cert, or when cert is NULL the private key, as PEM into a new
 * buffer (OPENSSL_clear_free). */
static int to_pem(char **out, size_t *out_len, X509 *cert, EVP_PKEY *key, struct anchor_err *err)
{
    int rc = -1;
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data, *copy;
    long n;

    ENSURE_OSSL(bio != NULL, err, "out of memory");
    if (cert != NULL)
        ENSURE_OSSL(PEM_write_bio_X509(bio, cert) == 1, err, "cannot encode the CA certificate");
    else
        ENSURE_OSSL(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1, err,
                    "cannot encode the CA key");
    n = BIO_get_mem_data(bio, &data);
    ENSURE(n > 0, err, "cannot encode the CA files");
    copy = OPENSSL_malloc((size_t)n);
    ENSURE(copy != NULL, err, "out of memory");
    memcpy(copy, data, (size_t)n);
    *out = copy;
    *out_len = (size_t)n;
    rc = 0;
out:
    BIO_free(bio);
    return rc;
}

int anchor__ca_load_certs(STACK_OF(X509) * *out, const char *path, struct anchor_err *err)
{
    int rc = -1;
    char *text = NULL;
    size_t len = 0;

    TRY(anchor__file_read(&text, &len, path, (size_t)ANCHOR__MAX_PEM_FILE_BYTES, err));
    TRY(anchor__certs_from_pem(out, NULL, NULL, text, len, path, err));
    rc = 0;
out:
    anchor__file_free(text, len);
    return rc;
}

/* Loads a key file, refusing one that others can read. group_ok: only
 * "others" bits are refused (an upstream key may be shared with a group). */
int anchor__ca_load_key(EVP_PKEY **out, const char *path, int group_ok, struct anchor_err *err)
{
    int rc = -1;
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    mode_t bad = group_ok ? S_IRWXO : (S_IRWXG | S_IRWXO);

    ENSURE(stat(path, &st) == 0, err, "%s: cannot open: %s", path, strerror(errno));
    ENSURE((st.st_mode & bad) == 0, err, "CA key %s is accessible by %s (mode 0%03o)%s", path,
           group_ok ? "others" : "group or others", (unsigned)(st.st_mode & 0777),
           group_ok ? "" : "; it must be 0600");
    TRY(anchor__file_read(&text, &len, path, (size_t)ANCHOR__MAX_PEM_FILE_BYTES, err));
    TRY(anchor__key_from_pem(out, text, len, path, err));
    rc = 0;
out:
    anchor__file_free(text, len);
    return rc;
}

int anchor__ca_write_pem(const char *dir, const char *path, X509 *cert, EVP_PKEY *key, mode_t mode,
                         struct anchor_err *err)
{
    int rc = -1;
    char *pem = NULL;
    size_t len = 0;

    TRY(to_pem(&pem, &len, cert, key, err));
    TRY(write_atomic(dir, path, pem, len, mode, err));
    rc = 0;
out:
    OPENSSL_clear_free(pem, len);
    return rc;
}

int anchor__ca_file_exists(const char *path, int *exists, struct anchor_err *err)
{
    struct stat st;

    if (lstat(path, &st) == 0) {
        *exists = 1;
        return 0;
    }
    if (errno == ENOENT) {
        *exists = 0;
        return 0;
    }
    anchor_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    return -1;
}

/* Loads, or makes, the root in opt->dir; called with the lock held. */
