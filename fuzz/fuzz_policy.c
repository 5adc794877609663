/*
 * Fuzz target of the AgentAttestation policy loader (policy.h): any bytes go
 * to anchor_policy_doc_parse; a document that parses is walked through every
 * accessor, shared and released, so that the sanitizers see the whole
 * lifetime of a parsed document. The seed corpus (fuzz/corpus/policy/) holds
 * valid documents and hostile ones: aliases, tags, several documents, bad
 * integers, bad UTF-8, deep nesting.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "anchor/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct anchor_policy_doc *doc = NULL, *ref;
    struct anchor_err err;
    const char *provided[] = {ANCHOR_X509POP_TYPE};

    anchor_err_clear(&err);
    if (anchor_policy_doc_parse(&doc, (const char *)data, size, &err) != 0) {
        /* Every failure explains itself. */
        if (anchor_err_msg(&err)[0] == '\0')
            __builtin_trap();
        return 0;
    }
    ref = anchor_policy_doc_up_ref(doc);
    for (size_t i = 0; i < anchor_policy_doc_count(doc); i++) {
        const struct anchor_policy *p = anchor_policy_doc_get0(doc, i);

        if (anchor_policy_doc_find(doc, anchor_policy_name(p)) != p)
            __builtin_trap();
        (void)anchor_policy_agent_path_template(p);
        for (size_t k = 0; k < anchor_policy_attestor_count(p); k++) {
            const struct anchor_policy_attestor *a = anchor_policy_attestor_get0(p, k);

            if (anchor_policy_find_attestor(p, anchor_policy_attestor_type(a)) != a)
                __builtin_trap();
            if (anchor_policy_attestor_x509pop(a) != NULL &&
                anchor_x509pop_config_ca_count(anchor_policy_attestor_x509pop(a)) == 0)
                __builtin_trap();
        }
    }
    (void)anchor_policy_doc_first_requiring(doc, ANCHOR_X509POP_TYPE);
    (void)anchor_policy_doc_first_satisfied(doc, provided, 1);
    anchor_policy_doc_free(doc);
    anchor_policy_doc_free(ref);
    return 0;
}
