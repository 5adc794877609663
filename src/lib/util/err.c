/*
 * The error object: a fixed buffer that holds the one message a failed call
 * leaves for its caller. Fixed size so that recording an error never fails.
 */
#include "anchor/common.h"
#include "util/check.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

void anchor_err_clear(struct anchor_err *err)
{
    if (err != NULL)
        err->msg[0] = '\0';
}

void anchor_err_vset(struct anchor_err *err, const char *fmt, va_list ap)
{
    if (err == NULL)
        return;
    (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

void anchor_err_set(struct anchor_err *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    anchor_err_vset(err, fmt, ap);
    va_end(ap);
}

void anchor_err_prefix(struct anchor_err *err, const char *prefix)
{
    char tmp[ANCHOR_ERR_MAX];
    size_t plen;

    if (err == NULL)
        return;
    /* Built by hand: the joined text may be cut, which snprintf warns of. */
    memcpy(tmp, err->msg, sizeof(tmp));
    plen = strnlen(prefix, sizeof(err->msg) - 3);
    memcpy(err->msg, prefix, plen);
    memcpy(err->msg + plen, ": ", 2);
    memcpy(err->msg + plen + 2, tmp, sizeof(err->msg) - plen - 3);
    err->msg[sizeof(err->msg) - 1] = '\0';
}

const char *anchor_err_msg(const struct anchor_err *err)
{
    return err == NULL ? "" : err->msg;
}

void anchor__err_set_ossl(struct anchor_err *err, const char *fmt, ...)
{
    va_list ap;
    unsigned long code = ERR_peek_last_error();
    char reason[256];
    size_t used;

    va_start(ap, fmt);
    anchor_err_vset(err, fmt, ap);
    va_end(ap);
    if (err != NULL && code != 0) {
        ERR_error_string_n(code, reason, sizeof(reason));
        used = strlen(err->msg);
        (void)snprintf(err->msg + used, sizeof(err->msg) - used, ": %s", reason);
    }
    ERR_clear_error();
}
