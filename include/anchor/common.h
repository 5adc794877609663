/*
 * Shared definitions of libanchor's public API: the export macro, the
 * warn-unused-result marker, and the error object that every fallible
 * function fills.
 *
 * The error idiom (STYLE.md): a fallible function returns 0 on success and
 * -1 on failure, writes its results only on success, and puts the detail into
 * the caller's `struct anchor_err`. The library never logs; the program at the
 * top of the stack reads the message once and shows it to the operator. The
 * messages are the documented ones (docs/troubleshooting.md), word for word.
 */
#ifndef ANCHOR_COMMON_H
#define ANCHOR_COMMON_H

#include <stdarg.h>
#include <stddef.h>

#define ANCHOR_API __attribute__((visibility("default")))
#define ANCHOR_WUR __attribute__((warn_unused_result))

/* Longest message an error object keeps; longer messages are cut. */
#define ANCHOR_ERR_MAX 1024

struct anchor_err {
    char msg[ANCHOR_ERR_MAX];
};

/* Empties the error object. Accepts NULL. */
ANCHOR_API void anchor_err_clear(struct anchor_err *err);

/* Replaces the message with the formatted text. Accepts a NULL err (the
 * detail is then dropped). */
ANCHOR_API void anchor_err_set(struct anchor_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like anchor_err_set with a va_list. */
ANCHOR_API void anchor_err_vset(struct anchor_err *err, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Puts `prefix: ` in front of the current message (used where a documented
 * phrase must lead a lower layer's detail). */
ANCHOR_API void anchor_err_prefix(struct anchor_err *err, const char *prefix);

/* The message, never NULL ("" when empty). */
ANCHOR_API const char *anchor_err_msg(const struct anchor_err *err);

#endif
