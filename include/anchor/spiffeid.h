/*
 * SPIFFE IDs and trust domain names, checked exactly as the SPIFFE-ID
 * standard says (docs/identities.md "SPIFFE IDs"):
 *
 *   spiffe://<trust domain>[/<segment>...]
 *
 *   scheme        "spiffe", lowercase, followed by "://"
 *   trust domain  1..255 bytes of [a-z0-9._-]; no port, no userinfo
 *   path          empty, or "/"-separated segments of [A-Za-z0-9._-], none
 *                 empty, "." or ".."; no trailing "/"
 *   whole ID      at most 2048 bytes; no query, no fragment, no
 *                 percent-encoding
 *
 * A parsed ID (`struct anchor_spiffeid`) is immutable and holds the text of
 * the whole ID, of its trust domain and of its path. The validators that do
 * not allocate are meant for hot paths (checking a peer's URI SAN).
 *
 * Every message starts with what was being checked ("invalid SPIFFE ID: ",
 * "invalid trust domain: " or "invalid SPIFFE ID path: ") followed by one of
 * the documented reasons, word for word.
 */
#ifndef ANCHOR_SPIFFEID_H
#define ANCHOR_SPIFFEID_H

#include <stddef.h>

#include "anchor/common.h"

/* Longest SPIFFE ID accepted or built, in bytes (SPIFFE-ID 2.3). */
#define ANCHOR_SPIFFEID_MAX_LEN 2048
/* Longest trust domain name accepted, in bytes (SPIFFE-ID 2.1). */
#define ANCHOR_TRUST_DOMAIN_MAX_LEN 255
/* "spiffe://" */
#define ANCHOR_SPIFFEID_PREFIX     "spiffe://"
#define ANCHOR_SPIFFEID_PREFIX_LEN 9

struct anchor_spiffeid;

/* Checks that name[0..len) is a trust domain name (not an ID). Returns 0, or
 * -1 with "invalid trust domain: <reason>" in err. */
ANCHOR_API ANCHOR_WUR int anchor_trust_domain_validate(const char *name, size_t len,
                                                       struct anchor_err *err);

/* Checks that path[0..len) is the path of a SPIFFE ID: empty, or "/" followed
 * by valid segments. Returns 0, or -1 with "invalid SPIFFE ID path: <reason>"
 * in err. */
ANCHOR_API ANCHOR_WUR int anchor_spiffeid_path_validate(const char *path, size_t len,
                                                        struct anchor_err *err);

/* Checks that s[0..len) is a SPIFFE ID without keeping anything. Returns 0,
 * or -1 with "invalid SPIFFE ID: <reason>" in err. */
ANCHOR_API ANCHOR_WUR int anchor_spiffeid_validate(const char *s, size_t len,
                                                   struct anchor_err *err);

/* Parses s[0..len) (any bytes; a NUL inside is refused) into a new ID that
 * the caller frees with anchor_spiffeid_free. Messages as _validate. */
ANCHOR_API ANCHOR_WUR int anchor_spiffeid_parse(struct anchor_spiffeid **out, const char *s,
                                                size_t len, struct anchor_err *err);

/* Builds spiffe://<trust_domain><path> from a trust domain name and a path
 * ("" for the trust domain's own ID, else starting with "/"). Each part is
 * checked with the validators above; the whole ID must fit
 * ANCHOR_SPIFFEID_MAX_LEN ("invalid SPIFFE ID: too long (N bytes, at most
 * 2048)"). The caller frees *out with anchor_spiffeid_free. */
ANCHOR_API ANCHOR_WUR int anchor_spiffeid_from_path(struct anchor_spiffeid **out,
                                                    const char *trust_domain, const char *path,
                                                    struct anchor_err *err);

/* A new copy of id (NULL when memory is short). */
ANCHOR_API struct anchor_spiffeid *anchor_spiffeid_dup(const struct anchor_spiffeid *id);

/* Frees the ID. Accepts NULL. */
ANCHOR_API void anchor_spiffeid_free(struct anchor_spiffeid *id);

/* The whole ID, "spiffe://example.org/agents/a". Borrowed from id. */
ANCHOR_API const char *anchor_spiffeid_str(const struct anchor_spiffeid *id);
/* Length of anchor_spiffeid_str(id). */
ANCHOR_API size_t anchor_spiffeid_len(const struct anchor_spiffeid *id);
/* The trust domain name, "example.org". Borrowed from id. */
ANCHOR_API const char *anchor_spiffeid_trust_domain(const struct anchor_spiffeid *id);
/* The path, "/agents/a", or "" for a trust domain's own ID. Borrowed. */
ANCHOR_API const char *anchor_spiffeid_path(const struct anchor_spiffeid *id);

/* 1 when id belongs to the trust domain named trust_domain, else 0. */
ANCHOR_API int anchor_spiffeid_member_of(const struct anchor_spiffeid *id,
                                         const char *trust_domain);

/* 1 when both IDs are the same (byte for byte: the grammar has one spelling
 * per ID), else 0. */
ANCHOR_API int anchor_spiffeid_equal(const struct anchor_spiffeid *a,
                                     const struct anchor_spiffeid *b);

#endif
