/*
 * AgentAttestation policy documents: the managed-configuration section that
 * says which attestors an agent must pass to be authorized.
 *
 *   section: AgentAttestation
 *   schema: v1
 *   spec:
 *     policies:
 *       - name: x509pop_policy
 *         agentPathTemplate: "/agents/{{x509_pop.subject.common_name}}"  (optional)
 *         requiredAttestors:
 *           - type: x509pop
 *             config: { caCerts: <PEM>, maxIntermediates: 4, maxRSAKeySize: 8192 }
 *
 * An agent is authorized when every attestor of at least one policy passes
 * (AND inside a policy, OR across policies). The document is parsed and
 * validated once, completely (docs/configuration.md lists every rule and its
 * message); each x509pop config becomes a ready `struct anchor_x509pop_config`
 * whose trust store is reused for every login. A parsed document is immutable
 * and reference-counted, so that a server can publish it as its configuration
 * snapshot: a login in flight keeps the reference it started with.
 *
 * Error messages name the place in the document, e.g.
 *   spec.policies[1].requiredAttestors[0].config: unknown key "maxIntermediate"
 *   policy "x509pop_policy": caCerts is required
 * and keep the documented phrases (docs/troubleshooting.md) intact.
 */
#ifndef ANCHOR_POLICY_H
#define ANCHOR_POLICY_H

#include <stddef.h>

#include "anchor/common.h"
#include "anchor/template.h"
#include "anchor/x509pop.h"

#define ANCHOR_POLICY_SECTION "AgentAttestation"
#define ANCHOR_POLICY_SCHEMA  "v1"
/* Largest document accepted, in bytes (checked before any parsing). */
#define ANCHOR_POLICY_MAX_DOC_BYTES (1024 * 1024)
/* Upper bounds of the x509pop limits: beyond them the limits protect
 * nothing, and a typo (81920 for 8192) is caught. */
#define ANCHOR_POLICY_MAX_INTERMEDIATES 100
#define ANCHOR_POLICY_MAX_RSA_KEY_SIZE  65536
/* Longest policy name, in bytes. */
#define ANCHOR_POLICY_MAX_NAME_BYTES 128

struct anchor_policy_doc;      /* the whole document, refcounted */
struct anchor_policy;          /* one entry of spec.policies, owned by its doc */
struct anchor_policy_attestor; /* one entry of requiredAttestors, owned by its policy */

/* Parses and validates an AgentAttestation v1 document of `len` bytes (the
 * text need not be NUL-terminated and must not contain NUL bytes). On success
 * *out holds a new document with one reference; on failure *out is untouched
 * and err holds the message. */
ANCHOR_API ANCHOR_WUR int anchor_policy_doc_parse(struct anchor_policy_doc **out, const char *text,
                                                  size_t len, struct anchor_err *err);

/* Reads the file at `path` (refusing more than ANCHOR_POLICY_MAX_DOC_BYTES
 * before reading it all) and parses it as anchor_policy_doc_parse does. A
 * read failure gives "cannot read <path>: <reason>". */
ANCHOR_API ANCHOR_WUR int anchor_policy_doc_parse_file(struct anchor_policy_doc **out,
                                                       const char *path, struct anchor_err *err);

/* Takes another reference and returns doc. Thread-safe. */
ANCHOR_API struct anchor_policy_doc *anchor_policy_doc_up_ref(struct anchor_policy_doc *doc);

/* Drops one reference; the last one frees the document and everything it
 * holds (borrowed pointers from the accessors die with it). Accepts NULL. */
ANCHOR_API void anchor_policy_doc_free(struct anchor_policy_doc *doc);

/* Number of policies (at least 1 in a parsed document). */
ANCHOR_API size_t anchor_policy_doc_count(const struct anchor_policy_doc *doc);

/* Policy i in document order, or NULL when i is out of range. Borrowed. */
ANCHOR_API const struct anchor_policy *anchor_policy_doc_get0(const struct anchor_policy_doc *doc,
                                                              size_t i);

/* The policy named `name`, or NULL. Borrowed. */
ANCHOR_API const struct anchor_policy *anchor_policy_doc_find(const struct anchor_policy_doc *doc,
                                                              const char *name);

/* The first policy (document order) with an attestor of type `type` among its
 * requiredAttestors, or NULL when none has. Borrowed. This is the policy that
 * `anchorctl x509pop check` runs. */
ANCHOR_API const struct anchor_policy *
anchor_policy_doc_first_requiring(const struct anchor_policy_doc *doc, const char *type);

/* The first policy (document order) whose required attestor types are all
 * among the `n` types in `provided`, or NULL when no policy applies (the
 * agent is then told "no cluster policy authorizes the provided attestors").
 * Borrowed. */
ANCHOR_API const struct anchor_policy *
anchor_policy_doc_first_satisfied(const struct anchor_policy_doc *doc, const char *const *provided,
                                  size_t n);

/* The policy's name (unique in its document). Borrowed. */
ANCHOR_API const char *anchor_policy_name(const struct anchor_policy *p);

/* The source text of the policy's agentPathTemplate, or NULL when the
 * document gives none. Borrowed. */
ANCHOR_API const char *anchor_policy_agent_path_template(const struct anchor_policy *p);

/* The policy's agentPathTemplate compiled at load time with
 * anchor_template_compile_path (so its syntax and literal text are already
 * known to be good), or NULL when the document gives none. Borrowed; render
 * it per login with anchor_template_render_spiffeid. */
ANCHOR_API const struct anchor_template *anchor_policy_agent_path(const struct anchor_policy *p);

/* Number of required attestors (at least 1; each type at most once). */
ANCHOR_API size_t anchor_policy_attestor_count(const struct anchor_policy *p);

/* Required attestor i in document order, or NULL when out of range. Borrowed. */
ANCHOR_API const struct anchor_policy_attestor *
anchor_policy_attestor_get0(const struct anchor_policy *p, size_t i);

/* The policy's required attestor of type `type`, or NULL. Borrowed. */
ANCHOR_API const struct anchor_policy_attestor *
anchor_policy_find_attestor(const struct anchor_policy *p, const char *type);

/* The attestor's type, e.g. "x509pop". Borrowed. */
ANCHOR_API const char *anchor_policy_attestor_type(const struct anchor_policy_attestor *a);

/* The ready x509pop configuration of an attestor of type "x509pop", or NULL
 * for any other type. Borrowed from the document: it lives as long as the
 * document; take anchor_x509pop_config_up_ref() to keep it longer. */
ANCHOR_API struct anchor_x509pop_config *
anchor_policy_attestor_x509pop(const struct anchor_policy_attestor *a);

#endif
