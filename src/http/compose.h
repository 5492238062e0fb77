/* compose.h — turns a checked send request (email_req.h) into an RFC 5322 / MIME message with
 * GMime 3: multipart/alternative for text + html, multipart/related for inline images,
 * multipart/mixed for attachments; RFC 2047 encoded words for non-ASCII header text and display
 * names, RFC 2231 for non-ASCII file names, quoted-printable or base64 chosen per part, no line
 * over 998 octets (RFC 5322 §2.1.1), CRLF line ends. Any thread. */
#ifndef MAILWERK_HTTP_COMPOSE_H
#define MAILWERK_HTTP_COMPOSE_H

#include <stddef.h>
#include <stdint.h>

struct email_req;

struct compose_opts {
	const char *hostname;   /* the right side of a Message-ID we make: msg-id = <local@hostname> */
	const char *message_id_local; /* its left side (the email's id), unless headers{} gave a Message-ID */
	int64_t date;           /* the Date field, unix seconds */
	/* RFC 8058 one-click unsubscribe: when non-NULL, List-Unsubscribe: <URL> and
	 * List-Unsubscribe-Post: List-Unsubscribe=One-Click are added */
	const char *list_unsubscribe_url;
};

/* The whole message (header fields, blank line, body), CRLF lines, malloc'd, *len_r octets; the
 * Message-ID it carries (without brackets) in message_id_r (malloc'd) when message_id_r is not
 * NULL. NULL with a sentence in error on failure. */
char *compose_message(const struct email_req *r, const struct compose_opts *o, size_t *len_r,
		      char **message_id_r, char *error, size_t error_size);

/* The plain text a reader sees in html: tags dropped, block elements and <br> as line breaks,
 * entities decoded, links as "text (URL)", script/style content dropped, runs of blank lines
 * folded. For html-only requests, so that the message is not html-only. malloc'd; NULL when out
 * of memory. */
char *compose_html_to_text(const char *html);

#endif
