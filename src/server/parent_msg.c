/* parent_msg.c — the listener list the parent sends its worker (parent_msg.h). */
#include "server/parent_msg.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int parent_sockets_format(const struct parent_socket *s, size_t n, char *out, size_t size)
{
	size_t used = 0;
	if (size > 0)
		out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(out + used, size - used, "%s %s\n", conf_listener_str(s[i].role), s[i].addr);
		if (w < 0 || (size_t)w >= size - used)
			return -1;
		used += (size_t)w;
	}
	return (int)used;
}

static bool role_parse(const unsigned char *p, size_t n, enum conf_listener *role_r)
{
	for (int r = 0; r < CONF_LISTEN_COUNT; r++) {
		const char *name = conf_listener_str((enum conf_listener)r);
		if (strlen(name) == n && memcmp(name, p, n) == 0) {
			*role_r = (enum conf_listener)r;
			return true;
		}
	}
	return false;
}

int parent_sockets_parse(const unsigned char *p, size_t len, const int *fds, size_t nfds, struct parent_socket *out,
			 const char **error_r)
{
	size_t count = 0, pos = 0;
	while (pos < len) {
		const unsigned char *nl = memchr(p + pos, '\n', len - pos);
		if (nl == NULL) {
			*error_r = "a listener line without its newline";
			return -1;
		}
		size_t line_len = (size_t)(nl - (p + pos));
		const unsigned char *sp = memchr(p + pos, ' ', line_len);
		if (count == nfds) {
			*error_r = "more listener lines than descriptors";
			return -1;
		}
		if (sp == NULL) {
			*error_r = "a listener line without a space between role and address";
			return -1;
		}
		struct parent_socket *s = &out[count];
		if (!role_parse(p + pos, (size_t)(sp - (p + pos)), &s->role)) {
			*error_r = "an unknown listener role";
			return -1;
		}
		const unsigned char *a = sp + 1;
		size_t alen = (size_t)(nl - a);
		if (alen == 0 || alen >= sizeof(s->addr)) {
			*error_r = "a listener address that is empty or too long";
			return -1;
		}
		for (size_t i = 0; i < alen; i++)
			if (a[i] <= ' ' || a[i] > '~') {
				*error_r = "a listener address with a character that is not printable ASCII";
				return -1;
			}
		memcpy(s->addr, a, alen);
		s->addr[alen] = '\0';
		s->fd = fds[count];
		count++;
		pos += line_len + 1;
	}
	if (count != nfds) {
		*error_r = "fewer listener lines than descriptors";
		return -1;
	}
	return 0;
}
