/*
 * The command-line parser every anchorctl command uses: hand-written and
 * strict, because a mistyped flag on an operator's command must be an error,
 * never a silently different check. Also the one place that prints
 * "anchorctl: " errors, and the line writer that keeps text taken from
 * certificates and documents from driving the operator's terminal.
 */
#include "ctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ctl_put_line(FILE *stream, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(stream, "\\x%02x", *p);
        } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            /* U+0080..U+009F, the C1 controls, in UTF-8 */
            fprintf(stream, "\\xc2\\x%02x", p[1]);
            p++;
        } else {
            fputc(*p, stream);
        }
    }
    fputc('\n', stream);
}

void ctl_error(const char *fmt, ...)
{
    va_list ap;
    char msg[2048];

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fputs("anchorctl: ", stderr);
    ctl_put_line(stderr, msg);
}

static struct ctl_flag *find_flag(struct ctl_flag *flags, size_t nflags, const char *name,
                                  size_t len)
{
    for (size_t i = 0; i < nflags; i++) {
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
            return &flags[i];
    }
    return NULL;
}

int ctl_parse_args(int argc, char **argv, struct ctl_flag *flags, size_t nflags, const char **pos,
                   size_t max_pos, size_t *npos, int *help, char *msg, size_t msg_size)
{
    int flags_done = 0;

    *npos = 0;
    *help = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq;
        struct ctl_flag *f;
        size_t name_len;

        if (!flags_done && strcmp(arg, "--") == 0) {
            flags_done = 1;
            continue;
        }
        if (!flags_done && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)) {
            *help = 1;
            return 0;
        }
        if (flags_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (*npos == max_pos) {
                (void)snprintf(msg, msg_size, "unexpected argument \"%s\"", arg);
                return -1;
            }
            pos[(*npos)++] = arg;
            continue;
        }
        eq = strchr(arg, '=');
        name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        f = strncmp(arg, "--", 2) == 0 ? find_flag(flags, nflags, arg, name_len) : NULL;
        if (f == NULL) {
            (void)snprintf(msg, msg_size, "unknown flag \"%.*s\"", (int)name_len, arg);
            return -1;
        }
        if (f->seen) {
            (void)snprintf(msg, msg_size, "%s given more than once", f->name);
            return -1;
        }
        f->seen = 1;
        if (f->metavar == NULL) {
            if (eq != NULL) {
                (void)snprintf(msg, msg_size, "%s takes no value", f->name);
                return -1;
            }
            f->value = "";
            continue;
        }
        if (eq != NULL) {
            f->value = eq + 1;
        } else if (i + 1 < argc && argv[i + 1][0] != '-') {
            f->value = argv[++i];
        } else {
            /* A following "--x" is taken for a forgotten value, not a value:
             * a value that starts with "-" is written --flag=-value. */
            (void)snprintf(msg, msg_size, "%s needs a value (%s)", f->name, f->metavar);
            return -1;
        }
        if (f->value[0] == '\0') {
            (void)snprintf(msg, msg_size, "%s needs a value (%s)", f->name, f->metavar);
            return -1;
        }
    }
    return 0;
}
