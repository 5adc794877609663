/*
 * anchorctl's internal interface: the exit statuses, the strict argument
 * parser shared by every command, the RFC 3339 time parser, and the entry
 * points of the command groups (one file per group: cmd_x509pop.c,
 * cmd_config.c). main.c dispatches on the first words of the command line.
 */
#ifndef ANCHOR_CTL_H
#define ANCHOR_CTL_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

/* Exit statuses (docs/anchorctl.md). */
#define CTL_EXIT_OK    0 /* the check passed, the document is valid */
#define CTL_EXIT_FAIL  1 /* the check failed: the message is on stderr */
#define CTL_EXIT_USAGE 2 /* the command line is wrong: message and usage on stderr */

/* One flag a command accepts. The parser fills `value` and `seen`. A flag
 * with a NULL metavar is a switch and takes no value. */
struct ctl_flag {
    const char *name;    /* "--policy" */
    const char *metavar; /* "POLICY.yaml", or NULL for a switch */
    const char *value;   /* the value given, borrowed from argv */
    int seen;
};

/* Parses argv[0..argc) (the words after the command's name) against flags.
 * Accepted forms: "--flag VALUE", "--flag=VALUE", and "--" ending the flags.
 * Refused, with a message in msg: an unknown flag, a flag given twice, a
 * missing or empty value, a value given to a switch, more positional words
 * than max_pos. "-h" and "--help" set *help and stop. Positional words go to
 * pos[0..*npos). Returns 0 or -1. */
int ctl_parse_args(int argc, char **argv, struct ctl_flag *flags, size_t nflags, const char **pos,
                   size_t max_pos, size_t *npos, int *help, char *msg, size_t msg_size);

/* Parses an RFC 3339 date-time (section 5.6): YYYY-MM-DDTHH:MM:SS, optional
 * fraction of a second (ignored), then "Z" or an offset +HH:MM / -HH:MM.
 * "t" and "z" are accepted as "T" and "Z" (RFC 3339 5.6, NOTE). Dates are
 * checked against the calendar; leap seconds (":60") are refused. Returns
 * 0 with the time in *out, or -1. */
int ctl_parse_rfc3339(const char *s, time_t *out);

/* Writes s and a newline to stream, with control characters (C0, DEL, and
 * the C1 controls in UTF-8) written as \xNN, so that text taken from a
 * certificate or a document can neither forge an output line nor send
 * escape sequences to a terminal. */
void ctl_put_line(FILE *stream, const char *s);

/* Prints "anchorctl: <msg>" to stderr, through ctl_put_line. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Command groups: argv starts after the group's name. Each returns an exit
 * status. */
int ctl_x509pop_main(int argc, char **argv);
int ctl_config_main(int argc, char **argv);
/* Admin API commands (cmd_admin*.c): config set|get|history (other config
 * commands go on to ctl_config_main), agent list|show|ban|unban, bundle show. */
int ctl_admin_config_main(int argc, char **argv);
int ctl_agent_main(int argc, char **argv);
int ctl_bundle_main(int argc, char **argv);

/* Help texts of the groups, printed to the given stream. */
void ctl_x509pop_help(FILE *stream);
void ctl_config_help(FILE *stream);
void ctl_admin_config_help(FILE *stream);
void ctl_agent_help(FILE *stream);
void ctl_bundle_help(FILE *stream);

#endif
