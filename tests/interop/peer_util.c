/*
 * Helpers of the interop peer programs; see peer_util.h.
 */
#include "peer_util.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void print_ossl(const char *what)
{
    char buf[256];

    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    fprintf(stderr, "%s: %s\n", what, buf);
    ERR_clear_error();
}

SSL_CTX *peer_tls_server_ctx(const char *cert_file, const char *key_file, const char *ca_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        print_ossl("SSL_CTX_new");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        print_ossl("server certificate");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            print_ossl("client CA");
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
}

SSL_CTX *peer_tls_client_ctx(const char *ca_file, const char *host, const char *cert_file,
                             const char *key_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_VERIFY_PARAM *param;

    if (ctx == NULL) {
        print_ossl("SSL_CTX_new");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        print_ossl("client CA");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    param = SSL_CTX_get0_param(ctx);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1)
        host = NULL;
    ERR_clear_error(); /* the failed attempt to read host as an IP address */
    if (host != NULL && X509_VERIFY_PARAM_set1_host(param, host, 0) != 1) {
        print_ossl("server name");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (cert_file != NULL && (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
                              SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)) {
        print_ossl("client certificate");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

uint64_t peer_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

char *peer_hex(const void *buf, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = buf;
    char *out = malloc(2 * len + 1);

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
    return out;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint8_t *peer_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    uint8_t *out;

    if (n % 2 != 0)
        return NULL;
    out = malloc(n / 2 + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return out;
}

json_t *peer_json_text(const char *buf, size_t len)
{
    json_t *s = json_stringn(buf, len);
    char *hex;
    char *tagged;

    if (s != NULL)
        return s;
    hex = peer_hex(buf, len);
    if (hex == NULL)
        return NULL;
    tagged = malloc(strlen(hex) + sizeof("invalid-utf8:"));
    if (tagged == NULL) {
        free(hex);
        return NULL;
    }
    strcpy(tagged, "invalid-utf8:");
    strcat(tagged, hex);
    s = json_string(tagged);
    free(hex);
    free(tagged);
    return s;
}

char *peer_uri_san(X509 *cert)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    char *out = NULL;

    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && out == NULL; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

        if (gn->type == GEN_URI) {
            const ASN1_IA5STRING *s = gn->d.uniformResourceIdentifier;

            out = strndup((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
        }
    }
    GENERAL_NAMES_free(names);
    return out;
}
