/* emails_raw.h — the message of a POST /emails/raw request, checked and completed. */
#ifndef MAILWERK_HTTP_EMAILS_RAW_H
#define MAILWERK_HTTP_EMAILS_RAW_H

#include <stddef.h>
#include <stdint.h>

/* raw (len octets) as it is queued: CRLF lines, Date and Message-ID <message_id_local@hostname>
 * added when missing; its From domain in domain_r. malloc'd (*len_r octets, NUL after them); NULL
 * with a sentence for the client in err. */
char *emails_raw_message(const char *raw, size_t len, const char *hostname, const char *message_id_local, int64_t now,
			 char domain_r[256], size_t *len_r, char *err, size_t esize);

#endif
