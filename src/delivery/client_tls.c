/* client_tls.c — the outbound SMTP client's TLS (client_int.h): STARTTLS (RFC 3207) and implicit
 * TLS (RFC 8314), the certificate checks a policy asks for (PKIX names, DANE), and the client TLS
 * context every connection shares. */
#include "delivery/client_int.h"
#include "delivery/dane.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

bool client_tls_verify_wanted(const struct delivery_client *c)
{
	return c->tls_policy == DELIVERY_TLS_REQUIRED || c->tls_policy == DELIVERY_TLS_IMPLICIT ||
	       c->tls_policy == DELIVERY_TLS_DANE;
}

/* Whether no TLS means no delivery to this host. */
bool client_tls_required(const struct delivery_client *c)
{
	return c->tls_policy == DELIVERY_TLS_REQUIRED || c->tls_policy == DELIVERY_TLS_ENCRYPT ||
	       c->tls_policy == DELIVERY_TLS_DANE;
}

/* Moves the socket from the plain bufferevent to a TLS one; the handshake starts at once. */
void client_tls_begin(struct delivery_client *c)
{
	/* RFC 3207 §4.2 (and the STARTTLS injection of CVE-2011-0411, here from the server's side):
	 * anything that arrived in the clear after the 220 is dropped, never read as a reply */
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));

	SSL *ssl = SSL_new(c->tls_ctx);
	if (ssl == NULL) {
		client_fail(c, DELIVERY_ERR_TLS_HANDSHAKE, true, 451, "4.7.5", "cannot set up TLS");
		return;
	}
	unsigned char ipbuf[16];
	bool is_ip = inet_pton(AF_INET, c->host, ipbuf) == 1 || inet_pton(AF_INET6, c->host, ipbuf) == 1;
	if (is_ip) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->host);
	} else {
		/* RFC 6066 §3: SNI is a host name, never an address literal */
		SSL_set_tlsext_host_name(ssl, c->host);
		X509_VERIFY_PARAM_set_hostflags(SSL_get0_param(ssl), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		SSL_set1_host(ssl, c->host);
	}
	/* Opportunistic TLS (RFC 3207 §4.1 and RFC 7435): any certificate is better than plain text;
	 * whether it verified is reported all the same */
	SSL_set_verify(ssl, client_tls_verify_wanted(c) ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (c->tls_policy == DELIVERY_TLS_DANE) {
		/* RFC 7672 §2.2: with usable TLSA records, only a matching certificate will do; a
		 * mismatch fails the handshake, and the host is left for the next MX (4.7.5) */
		char why[128];
		int usable = delivery_dane_setup(ssl, c->job.dane_tlsa, c->job.dane_tlsa_count, c->job.dane_names,
						 c->job.dane_name_count, why, sizeof(why));
		if (usable <= 0) {
			SSL_free(ssl);
			client_fail(c, DELIVERY_ERR_TLS_HANDSHAKE, true, 451, "4.7.5",
				    usable == 0 ? "DANE: no usable TLSA record" : why);
			return;
		}
	}

	evutil_socket_t fd = bufferevent_getfd(c->bev);
	struct bufferevent *tls =
		bufferevent_openssl_socket_new(c->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		client_fail(c, DELIVERY_ERR_TLS_HANDSHAKE, true, 451, "4.7.5", "cannot set up TLS");
		return;
	}
	/* the plain bufferevent goes without closing the socket, which the TLS one now owns */
	bufferevent_setfd(c->bev, -1);
	bufferevent_free(c->bev);
	c->bev = tls;
	c->tls = true;
	c->state = CLIENT_STATE_TLS;
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	struct timeval wt = client_tv(c->to.data_block_ms);
	bufferevent_set_timeouts(tls, NULL, &wt);
	bufferevent_setwatermark(tls, EV_READ, 0, CLIENT_INPUT_MAX);
	bufferevent_setcb(tls, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	client_timer_arm(c, c->to.tls_ms);
}

void client_tls_done(struct delivery_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	client_copy_safe(c->tls_version, sizeof(c->tls_version), SSL_get_version(ssl));
	const char *cipher = SSL_get_cipher_name(ssl);
	client_copy_safe(c->tls_cipher, sizeof(c->tls_cipher), cipher != NULL ? cipher : "");
	c->tls_verified = SSL_get0_peer_certificate(ssl) != NULL && SSL_get_verify_result(ssl) == X509_V_OK;
	c->tls_up = true;
	if (c->tls_policy == DELIVERY_TLS_DANE)
		delivery_dane_matched(ssl, c->dane_match, sizeof(c->dane_match));
	log_info("queue_id=%s event=smtp_out_tls host=%s ip=%s version=%s cipher=%s verified=%s policy=%s dane=\"%s\"",
		 c->log_id, c->host, c->ip, c->tls_version, c->tls_cipher, c->tls_verified ? "yes" : "no",
		 delivery_tls_policy_str(c->tls_policy), c->dane_match);
	c->state = CLIENT_STATE_REPLIES;
	evtimer_del(c->timer);
	delivery_reply_init(&c->reply);
	if (c->tls_policy == DELIVERY_TLS_IMPLICIT) {
		/* RFC 8314 §3.3: the SMTP dialogue starts inside TLS with the greeting */
		client_send(c, CLIENT_CMD_GREETING, 0, NULL);
		return;
	}
	/* RFC 3207 §4.2: the client discards what it knew from the server and says EHLO again */
	delivery_ehlo_init(&c->ehlo);
	c->esmtp = false;
	c->helo_tried = false;
	client_send(c, CLIENT_CMD_EHLO, 0, "EHLO %s", c->job.helo_name);
}

/* What went wrong in a handshake, for the error text. */
void client_tls_why(struct delivery_client *c, const char *what, char *buf, size_t size)
{
	unsigned long e = 0, last;
	while ((last = bufferevent_get_openssl_error(c->bev)) != 0)
		if (e == 0)
			e = last;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (v != X509_V_OK && client_tls_verify_wanted(c)) {
		c->tls_verify_error = v;
		snprintf(buf, size, "TLS handshake failed: certificate not verified for %s: %s", c->host,
			 X509_verify_cert_error_string(v));
	} else if (e != 0) {
		char ossl[200];
		ERR_error_string_n(e, ossl, sizeof(ossl));
		snprintf(buf, size, "TLS handshake failed: %s", ossl);
	} else {
		snprintf(buf, size, "TLS handshake failed: %s", what);
	}
	ERR_clear_error();
}

SSL_CTX *delivery_client_tls_ctx_new(char *error_r, size_t error_size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		snprintf(error_r, error_size, "cannot create a TLS context");
		return NULL;
	}
	/* RFC 8996: nothing below TLS 1.2; RFC 7525 §3.1 */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (!delivery_dane_ctx_enable(ctx)) {
		snprintf(error_r, error_size, "cannot enable DANE in the TLS context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(error_r, error_size, "cannot load the system's trusted certificates");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}
