/*
 * The URI SAN rule of x509pop attributes: a SAN of exactly the form
 * x509pop://<trust domain>/<type>/<value> yields x509_pop.san.<type> =
 * <value>; every other URI is ignored. The parser is deliberately narrow:
 * where a URI could be read two ways (percent-encoding, dot segments, a query
 * or fragment, userinfo or a port) it is ignored rather than interpreted, so
 * that no two certificates that look different to a person yield the same
 * attribute by normalisation. docs/x509pop.md lists the rules.
 */
#include "x509pop/internal.h"

#include <string.h>

#define SCHEME "x509pop://"

/* SPIFFE trust domain name characters (SPIFFE-ID 2.1): lowercase letters,
 * digits, '.', '-' and '_'. */
static int td_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* The type becomes part of an attribute name: letters, digits, '.', '-',
 * '_' (RFC 3986 unreserved without '~'). */
static int type_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* RFC 3986 pchar without pct-encoded, plus '/' between segments. */
static int value_char(unsigned char c)
{
    if (type_char(c) || c == '~' || c == ':' || c == '@' || c == '/')
        return 1;
    return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

/* A dot segment would be removed by RFC 3986 5.2.4 normalisation. */
static int is_dot_segment(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

int anchor__x509pop_uri_san_match(const char *uri, size_t uri_len, const char *trust_domain,
                                  const char **type, size_t *type_len, const char **value,
                                  size_t *value_len)
{
    size_t td_len;
    size_t pos = strlen(SCHEME);
    size_t t0, v0, seg;

    if (trust_domain == NULL || uri == NULL || uri_len > ANCHOR__X509POP_MAX_URI_LEN)
        return 0;
    td_len = strlen(trust_domain);
    if (td_len == 0)
        return 0;
    for (size_t i = 0; i < td_len; i++)
        if (!td_char((unsigned char)trust_domain[i]))
            return 0;
    /* The scheme is compared exactly (lowercase, as SPIFFE IDs). */
    if (uri_len < pos || memcmp(uri, SCHEME, pos) != 0)
        return 0;
    /* Authority: exactly the trust domain, then '/'. This also refuses
     * userinfo, ports, uppercase, and longer names sharing a prefix. */
    if (uri_len - pos < td_len + 1 || memcmp(uri + pos, trust_domain, td_len) != 0 ||
        uri[pos + td_len] != '/')
        return 0;
    pos += td_len + 1;
    t0 = pos;
    while (pos < uri_len && uri[pos] != '/') {
        if (!type_char((unsigned char)uri[pos]))
            return 0;
        pos++;
    }
    if (pos == t0 || pos == uri_len || is_dot_segment(uri + t0, pos - t0))
        return 0;
    *type = uri + t0;
    *type_len = pos - t0;
    pos++;
    v0 = pos;
    if (v0 == uri_len)
        return 0;
    /* Value: one or more non-empty, non-dot segments. Any '%', '?', '#' or
     * other character outside value_char makes the whole SAN ignored. */
    seg = v0;
    for (; pos <= uri_len; pos++) {
        if (pos == uri_len || uri[pos] == '/') {
            if (pos == seg || is_dot_segment(uri + seg, pos - seg))
                return 0;
            seg = pos + 1;
            continue;
        }
        if (!value_char((unsigned char)uri[pos]))
            return 0;
    }
    *value = uri + v0;
    *value_len = uri_len - v0;
    return 1;
}
