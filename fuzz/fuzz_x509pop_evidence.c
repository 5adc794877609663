/*
 * Fuzz target: the evidence decoder and the whole server verification
 * behind it. Input is the evidence wire form (DER certificates, leaf first);
 * when it frames, it is verified against a fixed anchor at a fixed time
 * with trust domain example.org, so chain building, the leaf checks and the
 * attribute extraction (CN, serial, URI SANs) all see fuzzed certificates.
 * Seeds: real chains issued by the embedded root (fuzz/corpus/x509pop_evidence).
 */
#include <stdint.h>
#include <stdlib.h>

#include "anchor/x509pop.h"

/* A fixed test root (EC P-256, valid 2026-2046), made with `openssl req`. */
static const char ROOT_PEM[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIBujCCAV+gAwIBAgIUdtIUMhDIenxCd1z4TgcG63VL8w4wCgYIKoZIzj0EAwIw\n"
                               "KjEUMBIGA1UECgwLYW5jaG9yLWZ1enoxEjAQBgNVBAMMCUZ1enogUm9vdDAeFw0y\n"
                               "NjEyMDMxNjQyNDRaFw00NjExMjgxNjQyNDRaMCoxFDASBgNVBAoMC2FuY2hvci1m\n"
                               "dXp6MRIwEAYDVQQDDAlGdXp6IFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC\n"
                               "AARgTkS4qLkR3Ki5jMkC6k9NIvdnwqfyAYV7yv4TEO+nI7ozvsgQTedjaAE9VIWJ\n"
                               "ePnYIX4Tzlj3kA1ngAZcFkTeo2MwYTAfBgNVHSMEGDAWgBQ/xQ0QS/mWIF0BaZ1q\n"
                               "vDhRRUvppDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4E\n"
                               "FgQUP8UNEEv5liBdAWmdarw4UUVL6aQwCgYIKoZIzj0EAwIDSQAwRgIhAKaDCdRs\n"
                               "fAthBtoTKipjOPfLUhqW7yzJpbhIB6CZ/V6WAiEAkH4EjYfNV6UL2t0TxPfFh13h\n"
                               "Uf9DEMvYT0R3Bf2dY28=\n"
                               "-----END CERTIFICATE-----\n";

/* 2035-01-01T00:00:00Z, inside the validity of the seed chains. */
#define FUZZ_TIME ((time_t)2051222400)

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
