/* stream.h — the bufferevent of a client connection, plain or TLS: made at accept, upgraded by
 * STARTTLS/STLS, and closed with a TLS close_notify. Shared by the SMTP and POP3 sessions. */
#ifndef MAILWERK_NET_STREAM_H
#define MAILWERK_NET_STREAM_H

#include <openssl/ssl.h>
#include <stdbool.h>

struct bufferevent;
struct event_base;

/* For an accepted socket: plain, or TLS from the first octet (RFC 8314 §3.3) when implicit_tls.
 * NULL on failure, with fd closed. */
struct bufferevent *net_stream_accept(struct event_base *base, SSL_CTX *ctx, int fd, bool implicit_tls);

/* STARTTLS (RFC 3207) / STLS (RFC 2595): call once the positive reply has been written out. Moves the
 * socket under a TLS bufferevent and frees the plain one without closing the socket. Plaintext the
 * client sent meanwhile is still in the kernel and fails the handshake: never read as a command
 * (CVE-2011-0411). NULL on failure, with plain left as it was. */
struct bufferevent *net_stream_starttls(struct event_base *base, SSL_CTX *ctx, struct bufferevent *plain);

/* Frees the stream; a TLS stream whose handshake completed says close_notify first (RFC 8446 §6.1),
 * best effort on the non-blocking socket. */
void net_stream_free(struct bufferevent *bev, bool tls);

/* The negotiated protocol and cipher of a TLS stream; false for a plain one. */
bool net_stream_tls_info(struct bufferevent *bev, const char **version_r, const char **cipher_r);

#endif
