/*
 * Fixtures shared by the x509pop fuzz targets (fuzz_x509pop_evidence,
 * fuzz_x509pop_proof, fuzz_login): a test root and two chains under it, made
 * with `openssl` for the seed corpora, whose keys signed the proof seeds.
 * One copy, so that a re-made PKI is changed in one place. Test material
 * only; nothing secret.
 */
#ifndef ANCHOR_FUZZ_FIXTURES_H
#define ANCHOR_FUZZ_FIXTURES_H

#include <time.h>

/* 2035-01-01T00:00:00Z, inside the validity (2026-2046) of the chains. */
#define FUZZ_TIME ((time_t)2051222400)

/* The fuzz root: EC P-256. */
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

/* Test chains (leaf, intermediate) under that root: an EC P-256 leaf and an
 * RSA 2048 leaf, both with x509pop://example.org/... URI SANs. */
static const char EC_CHAIN_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIICSjCCAfGgAwIBAgIECn8sGzAKBggqhkjOPQQDAjAyMRQwEgYDVQQKDAthbmNo\n"
    "b3ItZnV6ejEaMBgGA1UEAwwRRnV6eiBJbnRlcm1lZGlhdGUwHhcNMjYxMjAzMTY0\n"
    "MjQ0WhcNNDYxMTI4MTY0MjQ0WjAzMRQwEgYDVQQKDAthbmNob3ItZnV6ejEbMBkG\n"
    "A1UEAwwSbm9kZS0xLmV4YW1wbGUub3JnMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD\n"
    "QgAENXpdWPmvOy8x44BMtOK5OvScCv941rfsiHbBUq8ifUcD5XA8yvQflPgdXs9T\n"
    "GUO/uMiS2gjap+SW+a9TV5dwP6OB8zCB8DAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB\n"
    "/wQEAwIHgDAdBgNVHQ4EFgQUYJQt7oN9kAKG1dlIoYTdYtPL4+owHwYDVR0jBBgw\n"
    "FoAUo4kX9HF+Ns6+fzodXjrIRhJtDB4wgY8GA1UdEQSBhzCBhIYseDUwOXBvcDov\n"
    "L2V4YW1wbGUub3JnL2Vudmlyb25tZW50L3Byb2R1Y3Rpb26GJHg1MDlwb3A6Ly9l\n"
    "eGFtcGxlLm9yZy9yZWdpb24vZXUvd2VzdIYaeDUwOXBvcDovL290aGVyLm9yZy90\n"
    "ZWFtL3iCEm5vZGUtMS5leGFtcGxlLm9yZzAKBggqhkjOPQQDAgNHADBEAiBcS+IN\n"
    "iolgs0YjD3Mc6xxE5MvyykV+r2FeaseNIgv69AIgUT7w7MB/wlzHY6hiQXubK2Xq\n"
    "2A6QyARElJh0eKAt5nQ=\n"
    "-----END CERTIFICATE-----\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBsDCCAVWgAwIBAgICEAEwCgYIKoZIzj0EAwIwKjEUMBIGA1UECgwLYW5jaG9y\n"
    "LWZ1enoxEjAQBgNVBAMMCUZ1enogUm9vdDAeFw0yNjEyMDMxNjQyNDRaFw00NjEx\n"
    "MjgxNjQyNDRaMDIxFDASBgNVBAoMC2FuY2hvci1mdXp6MRowGAYDVQQDDBFGdXp6\n"
    "IEludGVybWVkaWF0ZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFqnhk+TqTD9\n"
    "Tw4TSmNWlW1AjHSljR28GpbX6ltWiuWIg458pzbEmn9yePPQzcqTibte11L/CXyr\n"
    "oD/LkwijfhSjYzBhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGGMB0G\n"
    "A1UdDgQWBBSjiRf0cX42zr5/Oh1eOshGEm0MHjAfBgNVHSMEGDAWgBQ/xQ0QS/mW\n"
    "IF0BaZ1qvDhRRUvppDAKBggqhkjOPQQDAgNJADBGAiEAqFZD+3wBfYX8Dg10I9Mc\n"
    "3ctebJWKx+ttP1skeptpCO4CIQDC2KYMGpdgMwZNFzdBWK0y7Yq3iAybaAx1cE1k\n"
    "IMR5cg==\n"
    "-----END CERTIFICATE-----\n";

static const char RSA_CHAIN_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDFjCCArygAwIBAgICAIAwCgYIKoZIzj0EAwIwMjEUMBIGA1UECgwLYW5jaG9y\n"
    "LWZ1enoxGjAYBgNVBAMMEUZ1enogSW50ZXJtZWRpYXRlMB4XDTI2MTIwMzE2NDI0\n"
    "NFoXDTQ2MTEyODE2NDI0NFowNTEUMBIGA1UECgwLYW5jaG9yLWZ1enoxHTAbBgNV\n"
    "BAMMFHJzYS1ub2RlLmV4YW1wbGUub3JnMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n"
    "MIIBCgKCAQEA1Y9OueeiduZAeAS6B2b4L6h1pJfy5gAb0pgKep19v+MOULshFF8V\n"
    "z6dFP8a68KBFE9R/fBLFgr18D9es7rrOCh3Dl0Bb2w24TCA4gF72DM9DHerzCRoY\n"
    "cH6zZ7H9OQHbNAerZc2SQXltdvGxEyQfWtNoZsG5zLQQJw/LnL8dPLLDdAXeT4rD\n"
    "lGvvmrjkLJiIV1bPdN9ASCyQZd9/yDqf/lfPr8NpjnoWov9ayscRJ7se+VmF7Tth\n"
    "ZLfTgXovCbRWHpY3FwjxhyDr5Khp6fvhjGT0c5GlAA8CftNCYSk9VaHQzimaNoMm\n"
    "JS6SPCPeFx03j2TUGWARfJaP5kDXzTJiFQIDAQABo4HzMIHwMAwGA1UdEwEB/wQC\n"
    "MAAwDgYDVR0PAQH/BAQDAgeAMB0GA1UdDgQWBBRISpheCO0TeoqfRkyr5cuuQroc\n"
    "+jAfBgNVHSMEGDAWgBSjiRf0cX42zr5/Oh1eOshGEm0MHjCBjwYDVR0RBIGHMIGE\n"
    "hix4NTA5cG9wOi8vZXhhbXBsZS5vcmcvZW52aXJvbm1lbnQvcHJvZHVjdGlvboYk\n"
    "eDUwOXBvcDovL2V4YW1wbGUub3JnL3JlZ2lvbi9ldS93ZXN0hhp4NTA5cG9wOi8v\n"
    "b3RoZXIub3JnL3RlYW0veIISbm9kZS0xLmV4YW1wbGUub3JnMAoGCCqGSM49BAMC\n"
    "A0gAMEUCIAgENoo62RUkruG+6OyqwcZrd/nU/7JA0VbhmnFe+i6IAiEA+RUIvMgv\n"
    "EJpCYeJYHVXoySlEEPtSdujr/rR8CeSVJCU=\n"
    "-----END CERTIFICATE-----\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBsDCCAVWgAwIBAgICEAEwCgYIKoZIzj0EAwIwKjEUMBIGA1UECgwLYW5jaG9y\n"
    "LWZ1enoxEjAQBgNVBAMMCUZ1enogUm9vdDAeFw0yNjEyMDMxNjQyNDRaFw00NjEx\n"
    "MjgxNjQyNDRaMDIxFDASBgNVBAoMC2FuY2hvci1mdXp6MRowGAYDVQQDDBFGdXp6\n"
    "IEludGVybWVkaWF0ZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFqnhk+TqTD9\n"
    "Tw4TSmNWlW1AjHSljR28GpbX6ltWiuWIg458pzbEmn9yePPQzcqTibte11L/CXyr\n"
    "oD/LkwijfhSjYzBhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGGMB0G\n"
    "A1UdDgQWBBSjiRf0cX42zr5/Oh1eOshGEm0MHjAfBgNVHSMEGDAWgBQ/xQ0QS/mW\n"
    "IF0BaZ1qvDhRRUvppDAKBggqhkjOPQQDAgNJADBGAiEAqFZD+3wBfYX8Dg10I9Mc\n"
    "3ctebJWKx+ttP1skeptpCO4CIQDC2KYMGpdgMwZNFzdBWK0y7Yq3iAybaAx1cE1k\n"
    "IMR5cg==\n"
    "-----END CERTIFICATE-----\n";

#endif
