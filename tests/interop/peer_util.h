/*
 * Helpers shared by the interop peer programs (interop_server.c,
 * interop_client.c): TLS contexts from PEM files, hex, a monotonic clock and
 * JSON strings that survive bytes that are not UTF-8. Test code: a failure
 * prints a message and returns NULL or -1; the programs then exit.
 */
#ifndef INTEROP_PEER_UTIL_H
#define INTEROP_PEER_UTIL_H

#include <jansson.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

/* A TLS 1.3 server context with cert_file (chain) and key_file; with
 * ca_file, client certificates are required and verified against it. NULL
 * on failure (printed to stderr). The caller frees it with SSL_CTX_free. */
SSL_CTX *peer_tls_server_ctx(const char *cert_file, const char *key_file, const char *ca_file);

/* A TLS 1.3 client context that verifies the server against ca_file and
 * its name against host (a DNS name or an IP address); with cert_file and
 * key_file it presents a client certificate. NULL on failure. */
SSL_CTX *peer_tls_client_ctx(const char *ca_file, const char *host, const char *cert_file,
                             const char *key_file);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t peer_now_ms(void);

/* Lower-case hex of buf[0..len) into a new string (malloc), or NULL. */
char *peer_hex(const void *buf, size_t len);

/* Decodes hex text into a new buffer (malloc) of *len bytes; NULL when the
 * text is not hex. */
uint8_t *peer_unhex(const char *hex, size_t *len);

/* A JSON string of buf[0..len) when it is UTF-8, else "invalid-utf8:<hex>"
 * (so a mangled message shows up as a mismatch, not as a crash). */
json_t *peer_json_text(const char *buf, size_t len);

/* The URI SAN of cert, or NULL (borrowed from a new string: caller frees). */
char *peer_uri_san(X509 *cert);

#endif
