/* emails_raw.c — the request of POST /emails/raw (mailwerk's own, for applications that build
 * their own MIME): {"raw": an RFC 5322 message, "to"/"cc"/"bcc": its envelope, "scheduled_at"?}.
 * The message is checked as submission would (RFC 6409 §8): lines end in CRLF (bare LF is made
 * CRLF, a bare CR refused), none is over 998 octets (RFC 5322 §2.1.1), exactly one From with
 * one mailbox (its domain signs), no Bcc field (it would show the blind recipients); Date and
 * Message-ID are added when missing (RFC 5322 §3.6). Pure: no I/O. */
#include "http/emails_raw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dmarc_from.h"
#include "util/date.h"
#include "util/header.h"

static bool fail(char *err, size_t size, const char *msg)
{
	snprintf(err, size, "%s", msg);
	return false;
}

/* CRLF lines: bare LF becomes CRLF; a bare CR, a NUL or a line over 998 octets refuses it. */
static char *normalize(const char *in, size_t len, size_t *len_r, char *err, size_t esize)
{
	size_t lf = 0;
	for (size_t i = 0; i < len; i++)
		lf += in[i] == '\n' && (i == 0 || in[i - 1] != '\r');
	char *out = malloc(len + lf + 3);
	if (out == NULL) {
		fail(err, esize, "Out of memory.");
		return NULL;
	}
	size_t o = 0, line = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '\0' || (c == '\r' && (i + 1 == len || in[i + 1] != '\n'))) {
			free(out);
			fail(err, esize, c == '\0' ? "The `raw` message holds a NUL octet."
						   : "The `raw` message holds a bare CR: lines end in CRLF (or LF).");
			return NULL;
		}
		if (c == '\n') {
			if (o == 0 || out[o - 1] != '\r')
				out[o++] = '\r';
			out[o++] = '\n';
			line = 0;
			continue;
		}
		if (c != '\r' && ++line > 998) {
			free(out);
			fail(err, esize, "The `raw` message has a line longer than 998 octets (RFC 5322 section 2.1.1).");
			return NULL;
		}
		out[o++] = c;
	}
	if (o < 2 || out[o - 2] != '\r' || out[o - 1] != '\n') {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

static bool has_field(const char *msg, size_t len, const char *name, size_t *count_r)
{
	size_t pos = 0, n = 0;
	struct header_field f;
	while (header_next(msg, len, &pos, &f))
		n += header_is(&f, name);
	if (count_r != NULL)
		*count_r = n;
	return n > 0;
}

char *emails_raw_message(const char *raw, size_t len, const char *hostname, const char *message_id_local, int64_t now,
			 char domain_r[256], size_t *len_r, char *err, size_t esize)
{
	size_t n;
	char *msg = normalize(raw, len, &n, err, esize);
	if (msg == NULL)
		return NULL;
	size_t body = header_body_offset(msg, n);
	size_t froms = 0;
	has_field(msg, body, "From", &froms);
	struct dmarc_from from;
	const char *why;
	if (froms != 1 || dmarc_from_parse(msg, body, &from, &why) != DMARC_FROM_OK || from.mailboxes != 1 ||
	    from.count != 1) {
		free(msg);
		fail(err, esize, "The `raw` message needs exactly one From field with one address of a domain of this "
				 "server (RFC 5322 section 3.6.2).");
		return NULL;
	}
	if (has_field(msg, body, "Bcc", NULL)) {
		free(msg);
		fail(err, esize, "The `raw` message has a Bcc field: give blind recipients in `bcc` only.");
		return NULL;
	}
	snprintf(domain_r, 256, "%s", from.domains[0]);
	/* RFC 5322 §3.6: Date is required, Message-ID expected; a submission server adds them (RFC 6409 §8.2-8.3) */
	char top[512] = "";
	size_t tlen = 0;
	if (!has_field(msg, body, "Date", NULL)) {
		char date[64];
		date_rfc5322_format((time_t)now, date, sizeof(date));
		tlen += (size_t)snprintf(top + tlen, sizeof(top) - tlen, "Date: %s\r\n", date);
	}
	if (!has_field(msg, body, "Message-ID", NULL))
		tlen += (size_t)snprintf(top + tlen, sizeof(top) - tlen, "Message-ID: <%s@%s>\r\n", message_id_local, hostname);
	if (tlen > 0) {
		char *grown = malloc(n + tlen + 1);
		if (grown == NULL) {
			free(msg);
			fail(err, esize, "Out of memory.");
			return NULL;
		}
		memcpy(grown, top, tlen);
		memcpy(grown + tlen, msg, n + 1);
		free(msg);
		msg = grown;
		n += tlen;
	}
	*len_r = n;
	return msg;
}
