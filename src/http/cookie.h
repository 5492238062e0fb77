/* cookie.h — reading one cookie out of a request's Cookie field (RFC 6265 §4.2, §5.4) and writing
 * the Set-Cookie field of the dashboard's session. Pure: no I/O; every byte is hostile. */
#ifndef MAILWERK_HTTP_COOKIE_H
#define MAILWERK_HTTP_COOKIE_H

#include <stdbool.h>
#include <stddef.h>

/* The value of the first cookie called name in the Cookie field value header ("a=1; b=2"), without
 * the DQUOTEs of a quoted value, into out (size octets, NUL-terminated). 1 when found, 0 when
 * absent, -1 when the value does not fit or holds an octet RFC 6265 §4.1.1 does not allow in a
 * cookie-value (controls, space, DQUOTE, comma, semicolon, backslash). */
int http_cookie_get(const char *header, const char *name, char *out, size_t size);

/* A Set-Cookie field line (with CRLF) for name=value (RFC 6265 §4.1): HttpOnly, SameSite=Strict,
 * Path=/, Max-Age=max_age (0 removes the cookie, §5.3 item 3), Secure when secure. false when it
 * does not fit in out. */
bool http_cookie_set_line(char *out, size_t size, const char *name, const char *value, unsigned max_age, bool secure);

#endif
