/*
 * Internal error-handling macros (STYLE.md "Errors, one idiom"). Every
 * fallible library function declares `int rc = -1;`, frees what it took at a
 * single `out:` label, and uses these to jump there:
 *
 *   TRY(call)                 call returned non-zero: its detail is already set
 *   ENSURE(cond, err, ...)    cond is false: set the formatted detail
 *   ENSURE_OSSL(cond, err, ...) like ENSURE, and append OpenSSL's queued error
 *   FAIL(err, ...)            unconditional failure with a detail
 *
 * Not a public header: only the library includes it.
 */
#ifndef ANCHOR_UTIL_CHECK_H
#define ANCHOR_UTIL_CHECK_H

#include "anchor/common.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((expr) != 0)                                                                           \
            goto out;                                                                              \
    } while (0)

#define ENSURE(cond, err, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            anchor_err_set((err), __VA_ARGS__);                                                    \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define ENSURE_OSSL(cond, err, ...)                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            anchor__err_set_ossl((err), __VA_ARGS__);                                              \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define FAIL(err, ...)                                                                             \
    do {                                                                                           \
        anchor_err_set((err), __VA_ARGS__);                                                        \
        goto out;                                                                                  \
    } while (0)

/* Sets the formatted message followed by ": <reason>" of the most recent
 * OpenSSL error, and empties OpenSSL's error queue of this thread. */
void anchor__err_set_ossl(struct anchor_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
