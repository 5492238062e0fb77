/* message.c — adds the trace and submission header fields to received content. */
#include "smtp/message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/date.h"
#include "util/header.h"

bool message_tls_required_no(const char *msg, size_t len)
{
	size_t pos = 0;
	struct header_field f;

	while (header_next(msg, len, &pos, &f)) {
		if (!header_is(&f, "TLS-Required"))
			continue;
		size_t a = 0, b = f.value_len;
		while (a < b && (f.value[a] == ' ' || f.value[a] == '\t' || f.value[a] == '\r' || f.value[a] == '\n'))
			a++;
		while (b > a && (f.value[b - 1] == ' ' || f.value[b - 1] == '\t' || f.value[b - 1] == '\r' ||
				 f.value[b - 1] == '\n'))
			b--;
		if (b - a == 2 && strncasecmp(f.value + a, "no", 2) == 0)
			return true;
	}
	return false;
}

bool message_has_header(const char *msg, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	size_t i = 0;

	while (i < len) {
		const char *line = msg + i;
		size_t rest = len - i;
		const char *lf = memchr(line, '\n', rest);
		size_t llen = lf ? (size_t)(lf - line) + 1 : rest;
		if (line[0] == '\r' || line[0] == '\n')
			return false; /* the empty line: end of the header section */
		if (line[0] != ' ' && line[0] != '\t' && llen > nlen && strncasecmp(line, name, nlen) == 0) {
			size_t j = nlen;
			while (j < llen && (line[j] == ' ' || line[j] == '\t'))
				j++;
			if (j < llen && line[j] == ':')
				return true;
		}
		i += llen;
	}
	return false;
}

char *message_compose(const struct message_trace *t, bool submission, const char *content, size_t len,
		      size_t *size_r)
{
	char date[64], head[2048];
	size_t n = 0;
	date_rfc5322_format(t->now, date, sizeof(date));

#define HEAD_ADD(...)                                                                     \
	do {                                                                              \
		int w_ = snprintf(head + n, sizeof(head) - n, __VA_ARGS__);               \
		n = (w_ < 0 || (size_t)w_ >= sizeof(head) - n) ? sizeof(head) - 1 : n + (size_t)w_; \
	} while (0)

	/* RFC 5321 §4.4 Stamp: "from" Extended-Domain, "by" Domain, "with" Protocol, "id", "for", date.
	 * TCP-info is the address literal alone: no reverse lookup is made on the loop. */
	bool v6 = strchr(t->client_ip, ':') != NULL;
	HEAD_ADD("Received: from %s ([%s%s])\r\n\tby %s (mailwerk) with %s id %s", t->helo, v6 ? "IPv6:" : "",
		 t->client_ip, t->hostname, t->protocol, t->queue_id);
	if (t->tls_version != NULL)
		HEAD_ADD("\r\n\t(using %s with cipher %s)", t->tls_version, t->tls_cipher);
	if (t->auth_user != NULL)
		HEAD_ADD("\r\n\t(authenticated as %s)", t->auth_user);
	if (t->rcpt != NULL)
		HEAD_ADD("\r\n\tfor <%s>", t->rcpt);
	HEAD_ADD(";\r\n\t%s\r\n", date);
	if (submission) {
		/* RFC 6409 §8.2, §8.3: a submission server may add Date and Message-ID */
		if (!message_has_header(content, len, "Date"))
			HEAD_ADD("Date: %s\r\n", date);
		if (!message_has_header(content, len, "Message-ID"))
			HEAD_ADD("Message-ID: <%s@%s>\r\n", t->queue_id, t->hostname);
	}
#undef HEAD_ADD

	char *out = malloc(n + len + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, head, n);
	memcpy(out + n, content, len);
	out[n + len] = '\0';
	*size_r = n + len;
	return out;
}
