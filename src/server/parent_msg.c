/* parent_msg.c — the payloads of what the parent and its worker say (parent_msg.h): the listener
 * list, the drain's deadline and an upgrade's outcome. */
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

int parent_drain_format(unsigned seconds, char *out, size_t size)
{
	int w = snprintf(out, size, "%u", seconds);
	return w < 0 || (size_t)w >= size ? -1 : w;
}

/* A decimal number of at most 10 digits, no sign, no leading zero (but "0"), at most max. */
static bool decimal_parse(const unsigned char *p, size_t len, unsigned long long max, unsigned long long *v_r)
{
	if (len == 0 || len > 10 || (len > 1 && p[0] == '0'))
		return false;
	unsigned long long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v > max)
		return false;
	*v_r = v;
	return true;
}

int parent_drain_parse(const unsigned char *p, size_t len, unsigned *seconds_r, const char **error_r)
{
	unsigned long long v;
	if (!decimal_parse(p, len, PARENT_DRAIN_MAX_SECONDS, &v)) {
		*error_r = "a drain deadline that is not a number of seconds up to a day";
		return -1;
	}
	*seconds_r = (unsigned)v;
	return 0;
}

int parent_upgrade_format(const struct parent_upgrade_outcome *o, char *out, size_t size)
{
	char reason[PARENT_UPGRADE_REASON_MAX + 1];
	size_t n = 0;
	for (; !o->done && o->reason[n] != '\0' && n < PARENT_UPGRADE_REASON_MAX; n++)
		reason[n] = o->reason[n] >= ' ' && o->reason[n] <= '~' ? o->reason[n] : '?';
	if (!o->done && n == 0)
		reason[n++] = '?'; /* a failure always says something */
	reason[n] = '\0';
	int w = o->done ? snprintf(out, size, "%u done", o->seq) : snprintf(out, size, "%u failed %s", o->seq, reason);
	return w < 0 || (size_t)w >= size ? -1 : w;
}

int parent_upgrade_parse(const unsigned char *p, size_t len, struct parent_upgrade_outcome *o_r, const char **error_r)
{
	const unsigned char *sp = memchr(p, ' ', len);
	unsigned long long seq;
	if (sp == NULL || !decimal_parse(p, (size_t)(sp - p), 0xffffffffULL, &seq) || seq == 0) {
		*error_r = "an upgrade outcome without its number";
		return -1;
	}
	const unsigned char *w = sp + 1;
	size_t wlen = len - (size_t)(w - p);
	memset(o_r, 0, sizeof(*o_r));
	o_r->seq = (unsigned)seq;
	if (wlen == 4 && memcmp(w, "done", 4) == 0) {
		o_r->done = true;
		return 0;
	}
	if (wlen < 7 || memcmp(w, "failed ", 7) != 0) {
		*error_r = "an upgrade outcome that is neither done nor failed with a reason";
		return -1;
	}
	const unsigned char *r = w + 7;
	size_t rlen = wlen - 7;
	if (rlen == 0 || rlen > PARENT_UPGRADE_REASON_MAX) {
		*error_r = "an upgrade failure whose reason is empty or too long";
		return -1;
	}
	for (size_t i = 0; i < rlen; i++)
		if (r[i] < ' ' || r[i] > '~') {
			*error_r = "an upgrade failure whose reason is not printable ASCII";
			return -1;
		}
	memcpy(o_r->reason, r, rlen);
	o_r->reason[rlen] = '\0';
	return 0;
}
