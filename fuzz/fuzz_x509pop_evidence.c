/*
 * Fuzz target: the evidence decoder and the whole server verification
 * behind it. Input is the evidence wire form (DER certificates, leaf first);
 * when it frames, it is verified against a fixed anchor at a fixed time
 * with trust domain example.org, so chain building, the leaf checks and the
 * attribute extraction (CN, serial, URI SANs) all see fuzzed certificates.
 * Seeds: real chains issued by the fixture root of fixtures.h
 * (fuzz/corpus/x509pop_evidence).
 */
#include <stdint.h>
#include <stdlib.h>

#include "anchor/x509pop.h"
#include "fixtures.h"

static struct anchor_x509pop_config *config(void)
{
    static struct anchor_x509pop_config *cfg;
    struct anchor_err err;

    if (cfg == NULL &&
        anchor_x509pop_config_new(&cfg, ROOT_PEM, sizeof(ROOT_PEM) - 1, 4, 8192, &err) != 0)
        abort();
    return cfg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct anchor_x509pop_evidence *ev = NULL;
    struct anchor_x509pop_verified *v = NULL;
    struct anchor_err err;
    char *desc = NULL;

    if (anchor_x509pop_evidence_parse(&ev, data, size, &err) != 0)
        return 0;
    if (anchor_x509pop_verify(&v, config(), ev, "example.org", FUZZ_TIME, &err) == 0) {
        const struct anchor_attrs *a = anchor_x509pop_verified_attrs(v);
        for (size_t i = 0; i < a->n; i++) {
            char *line = NULL;
            if (anchor_attr_format(&line, ANCHOR_X509POP_TYPE, &a->v[i], &err) == 0)
                free(line);
        }
        if (anchor_x509pop_verified_describe(v, &desc, &err) == 0)
            free(desc);
    }
    anchor_x509pop_verified_free(v);
    anchor_x509pop_evidence_free(ev);
    return 0;
}
