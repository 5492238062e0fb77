/* dane.c — DANE for the SMTP client through OpenSSL's DANE API (RFC 7672, RFC 7671). */
#include "delivery/dane.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

bool delivery_dane_ctx_enable(SSL_CTX *ctx)
{
	return SSL_CTX_dane_enable(ctx) > 0;
}

int delivery_dane_setup(SSL *ssl, const struct dns_tlsa *tlsa, size_t count, const char *const *names,
			size_t name_count, char *error_r, size_t error_size)
{
	if (name_count == 0 || SSL_dane_enable(ssl, names[0]) <= 0) {
		snprintf(error_r, error_size, "cannot enable DANE");
		return -1;
	}
	/* RFC 7672 §3.1.1: a DANE-EE(3) match authenticates the server whatever names it carries */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (size_t i = 1; i < name_count; i++)
		if (SSL_add1_host(ssl, names[i]) != 1) {
			snprintf(error_r, error_size, "cannot add the name %s", names[i]);
			return -1;
		}
	int usable = 0;
	for (size_t i = 0; i < count; i++) {
		/* RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) are not for SMTP */
		if (tlsa[i].usage != 2 && tlsa[i].usage != 3)
			continue;
		int rc = SSL_dane_tlsa_add(ssl, tlsa[i].usage, tlsa[i].selector, tlsa[i].mtype, tlsa[i].data, tlsa[i].len);
		if (rc < 0) {
			snprintf(error_r, error_size, "cannot add a TLSA record");
			return -1;
		}
		usable += rc > 0;
	}
	return usable;
}

void delivery_dane_matched(SSL *ssl, char *out, size_t size)
{
	uint8_t usage, selector, mtype;
	const unsigned char *data;
	size_t len;
	out[0] = '\0';
	if (SSL_get0_dane_authority(ssl, NULL, NULL) < 0 ||
	    SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, &data, &len) < 0 || data == NULL)
		return;
	struct dns_tlsa t = {.usage = usage, .selector = selector, .mtype = mtype, .data = data, .len = len};
	dns_tlsa_text(&t, 16, out, size);
	size_t n = strlen(out);
	if (len > 16 && n + 4 < size)
		memcpy(out + n, "...", 4);
}
