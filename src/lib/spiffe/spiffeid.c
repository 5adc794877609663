/*
 * SPIFFE IDs: the grammar of the SPIFFE-ID standard, checked byte by byte
 * with no URI library in between (a general URI parser would accept
 * percent-encoding, ports, userinfo and case variants that the standard
 * forbids, and two spellings of one ID would compare unequal).
 *
 * The checks run left to right over a bounded (pointer, length) input and
 * stop at the first fault, so the message names the first thing wrong.
 */
#include "anchor/spiffeid.h"

#include <stdlib.h>
#include <string.h>

#include "util/check.h"

#define WHAT_ID   "invalid SPIFFE ID"
#define WHAT_TD   "invalid trust domain"
#define WHAT_PATH "invalid SPIFFE ID path"

#define R_EMPTY      "cannot be empty"
#define R_SCHEME     "scheme is missing or invalid"
#define R_TD_MISSING "trust domain is missing"
#define R_TD_CHARS                                                                                 \
    "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and "        \
    "underscores"
#define R_PORT      "trust domain cannot have a port"
#define R_USERINFO  "trust domain cannot have userinfo"
#define R_QUERY     "query is not allowed"
#define R_FRAGMENT  "fragment is not allowed"
#define R_PERCENT   "percent-encoding is not allowed"
#define R_SLASH     "path must start with \"/\""
#define R_TRAILING  "path cannot have a trailing slash"
#define R_EMPTY_SEG "path cannot contain empty segments"
#define R_DOT_SEG   "path cannot contain dot segments"
#define R_SEG_CHARS                                                                                \
    "path segment characters are limited to letters, numbers, dots, dashes, and underscores"

struct anchor_spiffeid {
    size_t len;    /* of str */
    size_t td_len; /* of the trust domain inside str */
    char *td;      /* own copy of the trust domain, NUL-terminated */
    char *path;    /* points into str: "" or "/..." */
    char str[];    /* the whole ID, NUL-terminated */
};

static int is_td_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int is_seg_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* The reason a byte that is neither a grammar character nor "/" is refused:
 * URI syntax the standard forbids gets its own words. */
static const char *bad_char_reason(unsigned char c, const char *otherwise)
{
    switch (c) {
    case '?':
        return R_QUERY;
    case '#':
        return R_FRAGMENT;
    case '%':
        return R_PERCENT;
    default:
        return otherwise;
    }
}

/* Trust domain name s[0..len): SPIFFE-ID 2.1. standalone: checked on its own
 * (not as part of an ID), which changes the message's first words. */
static int td_check(const char *s, size_t len, int standalone, struct anchor_err *err)
{
    int rc = -1;
    const char *what = standalone ? WHAT_TD : WHAT_ID;

    ENSURE(len > 0, err, "%s: %s", what, standalone ? R_EMPTY : R_TD_MISSING);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (is_td_char(c))
            continue;
        if (c == ':' && standalone && len - i >= 3 && memcmp(s + i, "://", 3) == 0)
            FAIL(err, "%s: expected a trust domain name, not a URI", what);
        ENSURE(c != ':', err, "%s: %s", what, R_PORT);
        ENSURE(c != '@', err, "%s: %s", what, R_USERINFO);
        FAIL(err, "%s: %s", what, bad_char_reason(c, R_TD_CHARS));
    }
    ENSURE(len <= ANCHOR_TRUST_DOMAIN_MAX_LEN, err,
           "%s: trust domain is too long (%zu bytes, at most %d)", what, len,
           ANCHOR_TRUST_DOMAIN_MAX_LEN);
    rc = 0;
out:
    return rc;
}

/* Path p[0..len), which is empty or starts with "/": SPIFFE-ID 2.2. */
static int path_check(const char *p, size_t len, const char *what, struct anchor_err *err)
{
    int rc = -1;
    size_t seg = 0; /* start of the current segment */

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c == '/') {
            if (i > 0) {
                size_t n = i - seg;

                ENSURE(n > 0, err, "%s: %s", what, R_EMPTY_SEG);
                ENSURE(!(n == 1 && p[seg] == '.') &&
                           !(n == 2 && p[seg] == '.' && p[seg + 1] == '.'),
                       err, "%s: %s", what, R_DOT_SEG);
            }
            seg = i + 1;
            continue;
        }
        ENSURE(is_seg_char(c), err, "%s: %s", what, bad_char_reason(c, R_SEG_CHARS));
    }
    if (len > 0) {
        size_t n = len - seg;

        ENSURE(n > 0, err, "%s: %s", what, R_TRAILING);
        ENSURE(!(n == 1 && p[seg] == '.') && !(n == 2 && p[seg] == '.' && p[seg + 1] == '.'), err,
               "%s: %s", what, R_DOT_SEG);
    }
    rc = 0;
out:
    return rc;
}

int anchor_trust_domain_validate(const char *name, size_t len, struct anchor_err *err)
{
    return td_check(name, len, 1, err);
}

int anchor_spiffeid_path_validate(const char *path, size_t len, struct anchor_err *err)
{
    int rc = -1;

    ENSURE(len == 0 || path[0] == '/', err, "%s: %s", WHAT_PATH, R_SLASH);
    TRY(path_check(path, len, WHAT_PATH, err));
    rc = 0;
out:
    return rc;
}

/* Splits and checks a whole ID; on success *td_len is the trust domain's
 * length (it starts right after the prefix, the path right after it). */
static int id_check(const char *s, size_t len, size_t *td_len, struct anchor_err *err)
{
    int rc = -1;
    const char *td;
    size_t rest, n = 0;

    ENSURE(len > 0, err, "%s: %s", WHAT_ID, R_EMPTY);
    ENSURE(len <= ANCHOR_SPIFFEID_MAX_LEN, err, "%s: too long (%zu bytes, at most %d)", WHAT_ID,
           len, ANCHOR_SPIFFEID_MAX_LEN);
    /* SPIFFE-ID 2: the scheme is exactly "spiffe", lowercase. */
    ENSURE(len >= ANCHOR_SPIFFEID_PREFIX_LEN &&
               memcmp(s, ANCHOR_SPIFFEID_PREFIX, ANCHOR_SPIFFEID_PREFIX_LEN) == 0,
           err, "%s: %s", WHAT_ID, R_SCHEME);
    td = s + ANCHOR_SPIFFEID_PREFIX_LEN;
    rest = len - ANCHOR_SPIFFEID_PREFIX_LEN;
    while (n < rest && td[n] != '/')
        n++;
    TRY(td_check(td, n, 0, err));
    TRY(path_check(td + n, rest - n, WHAT_ID, err));
    *td_len = n;
    rc = 0;
out:
    return rc;
}

int anchor_spiffeid_validate(const char *s, size_t len, struct anchor_err *err)
{
    size_t td_len;

    return id_check(s, len, &td_len, err);
}

/* Makes the object from a checked ID s[0..len). */
static int id_new(struct anchor_spiffeid **out, const char *s, size_t len, size_t td_len,
                  struct anchor_err *err)
{
    int rc = -1;
    struct anchor_spiffeid *id = NULL;

    id = malloc(sizeof(*id) + len + 1 + td_len + 1);
    ENSURE(id != NULL, err, "out of memory");
    id->len = len;
    id->td_len = td_len;
    memcpy(id->str, s, len);
    id->str[len] = '\0';
    id->path = id->str + ANCHOR_SPIFFEID_PREFIX_LEN + td_len;
    id->td = id->str + len + 1;
    memcpy(id->td, s + ANCHOR_SPIFFEID_PREFIX_LEN, td_len);
    id->td[td_len] = '\0';
    *out = id;
    rc = 0;
out:
    return rc;
}

int anchor_spiffeid_parse(struct anchor_spiffeid **out, const char *s, size_t len,
                          struct anchor_err *err)
{
    int rc = -1;
    size_t td_len;

    TRY(id_check(s, len, &td_len, err));
    TRY(id_new(out, s, len, td_len, err));
    rc = 0;
out:
    return rc;
}

int anchor_spiffeid_from_path(struct anchor_spiffeid **out, const char *trust_domain,
                              const char *path, struct anchor_err *err)
{
    int rc = -1;
    size_t td_len = strlen(trust_domain), path_len = strlen(path), len;
    char buf[ANCHOR_SPIFFEID_MAX_LEN + 1];

    TRY(anchor_trust_domain_validate(trust_domain, td_len, err));
    TRY(anchor_spiffeid_path_validate(path, path_len, err));
    len = ANCHOR_SPIFFEID_PREFIX_LEN + td_len + path_len;
    ENSURE(len <= ANCHOR_SPIFFEID_MAX_LEN, err, "%s: too long (%zu bytes, at most %d)", WHAT_ID,
           len, ANCHOR_SPIFFEID_MAX_LEN);
    memcpy(buf, ANCHOR_SPIFFEID_PREFIX, ANCHOR_SPIFFEID_PREFIX_LEN);
    memcpy(buf + ANCHOR_SPIFFEID_PREFIX_LEN, trust_domain, td_len);
    memcpy(buf + ANCHOR_SPIFFEID_PREFIX_LEN + td_len, path, path_len);
    TRY(id_new(out, buf, len, td_len, err));
    rc = 0;
out:
    return rc;
}

struct anchor_spiffeid *anchor_spiffeid_dup(const struct anchor_spiffeid *id)
{
    struct anchor_spiffeid *copy = NULL;

    if (id_new(&copy, id->str, id->len, id->td_len, NULL) != 0)
        return NULL;
    return copy;
}

void anchor_spiffeid_free(struct anchor_spiffeid *id)
{
    free(id);
}

const char *anchor_spiffeid_str(const struct anchor_spiffeid *id)
{
    return id->str;
}

size_t anchor_spiffeid_len(const struct anchor_spiffeid *id)
{
    return id->len;
}

const char *anchor_spiffeid_trust_domain(const struct anchor_spiffeid *id)
{
    return id->td;
}

const char *anchor_spiffeid_path(const struct anchor_spiffeid *id)
{
    return id->path;
}

int anchor_spiffeid_member_of(const struct anchor_spiffeid *id, const char *trust_domain)
{
    return strcmp(id->td, trust_domain) == 0;
}

int anchor_spiffeid_equal(const struct anchor_spiffeid *a, const struct anchor_spiffeid *b)
{
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}
