/* parent_inherit.c — the text a parent hands to the program it executes in its place
 * (parent_inherit.h). */
#include "server/parent_inherit.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int parent_inherit_format(const struct parent_inherit *in, char *out, size_t size)
{
	int w = snprintf(out, size, "v1 seq=%u worker=%ld signer=%ld ipc=%d", in->seq, (long)in->worker, (long)in->signer,
			 in->ipc);
	if (w < 0 || (size_t)w >= size)
		return -1;
	size_t used = (size_t)w;
	for (size_t i = 0; i < in->nsocks; i++) {
		const struct parent_socket *s = &in->socks[i];
		w = snprintf(out + used, size - used, " sock=%d,%s,%s", s->fd, conf_listener_str(s->role), s->addr);
		if (w < 0 || (size_t)w >= size - used)
			return -1;
		used += (size_t)w;
	}
	return (int)used;
}

/* A decimal number in [min, max]: no sign, no leading zero. */
static bool number_parse(const char *p, size_t len, long min, long max, long *v_r)
{
	if (len == 0 || len > 10 || (len > 1 && p[0] == '0'))
		return false;
	long long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	if (v < min || v > max)
		return false;
	*v_r = (long)v;
	return true;
}

/* The next space-separated token of *pos: its start and length; false at the end. */
static bool token_next(const char **pos, const char **tok_r, size_t *len_r)
{
	const char *p = *pos;
	if (*p == '\0')
		return false;
	const char *end = strchr(p, ' ');
	size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
	*tok_r = p;
	*len_r = len;
	*pos = end != NULL ? end + 1 : p + len;
	return true;
}

/* tok is "KEY=NUMBER" with the number in [min, max]. */
static bool field_parse(const char *tok, size_t len, const char *key, long min, long max, long *v_r)
{
	size_t klen = strlen(key);
	return len > klen + 1 && memcmp(tok, key, klen) == 0 && tok[klen] == '=' &&
	       number_parse(tok + klen + 1, len - klen - 1, min, max, v_r);
}

static bool role_parse(const char *p, size_t n, enum conf_listener *role_r)
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

/* "sock=FD,ROLE,ADDR" into s; NULL, or what is wrong. */
static const char *sock_parse(const char *tok, size_t len, struct parent_socket *s)
{
	if (len < 5 || memcmp(tok, "sock=", 5) != 0)
		return "a field that is not a socket after the worker's";
	const char *p = tok + 5, *end = tok + len;
	const char *c1 = memchr(p, ',', (size_t)(end - p));
	const char *c2 = c1 != NULL ? memchr(c1 + 1, ',', (size_t)(end - c1 - 1)) : NULL;
	long fd;
	if (c2 == NULL)
		return "a socket without its descriptor, role and address";
	if (!number_parse(p, (size_t)(c1 - p), 3, PARENT_INHERIT_FD_MAX, &fd))
		return "a socket descriptor that is not a number from 3 up";
	if (!role_parse(c1 + 1, (size_t)(c2 - c1 - 1), &s->role))
		return "a socket of an unknown role";
	const char *a = c2 + 1;
	size_t alen = (size_t)(end - a);
	if (alen == 0 || alen >= sizeof(s->addr))
		return "a socket address that is empty or too long";
	for (size_t i = 0; i < alen; i++)
		if (a[i] <= ' ' || a[i] > '~')
			return "a socket address with a character that is not printable ASCII";
	memcpy(s->addr, a, alen);
	s->addr[alen] = '\0';
	s->fd = (int)fd;
	return NULL;
}

int parent_inherit_parse(const char *text, struct parent_inherit *in_r, const char **error_r)
{
	memset(in_r, 0, sizeof(*in_r));
	size_t tlen = strlen(text);
	if (tlen > PARENT_INHERIT_MAX) {
		*error_r = "longer than any hand-over";
		return -1;
	}
	if (tlen > 0 && text[tlen - 1] == ' ') {
		*error_r = "a trailing space";
		return -1;
	}
	const char *pos = text, *tok;
	size_t len;
	long seq, worker, signer, ipc;
	if (!token_next(&pos, &tok, &len) || len != 2 || memcmp(tok, "v1", 2) != 0) {
		*error_r = "not a hand-over of this version (v1)";
		return -1;
	}
	if (!token_next(&pos, &tok, &len) || !field_parse(tok, len, "seq", 1, 0xffffffffL, &seq)) {
		*error_r = "no upgrade number (seq=) second";
		return -1;
	}
	if (!token_next(&pos, &tok, &len) || !field_parse(tok, len, "worker", 2, PARENT_INHERIT_PID_MAX, &worker)) {
		*error_r = "no worker pid (worker=) third";
		return -1;
	}
	/* 0: the old program had none running; 1 is init, never our child */
	if (!token_next(&pos, &tok, &len) || !field_parse(tok, len, "signer", 0, PARENT_INHERIT_PID_MAX, &signer) ||
	    signer == 1) {
		*error_r = "no signer pid, or 0 for none (signer=) fourth";
		return -1;
	}
	if (signer == worker) {
		*error_r = "a signer pid that is the worker's";
		return -1;
	}
	if (!token_next(&pos, &tok, &len) || !field_parse(tok, len, "ipc", 3, PARENT_INHERIT_FD_MAX, &ipc)) {
		*error_r = "no socketpair descriptor from 3 up (ipc=) fifth";
		return -1;
	}
	in_r->seq = (unsigned)seq;
	in_r->worker = (pid_t)worker;
	in_r->signer = (pid_t)signer;
	in_r->ipc = (int)ipc;
	while (token_next(&pos, &tok, &len)) {
		if (in_r->nsocks == IPC_FDS_MAX) {
			*error_r = "more sockets than a worker can be sent";
			return -1;
		}
		struct parent_socket *s = &in_r->socks[in_r->nsocks];
		const char *err = len == 0 ? "an empty field (two spaces)" : sock_parse(tok, len, s);
		if (err != NULL) {
			*error_r = err;
			return -1;
		}
		if (s->fd == in_r->ipc) {
			*error_r = "a socket descriptor that is the socketpair's";
			return -1;
		}
		for (size_t i = 0; i < in_r->nsocks; i++)
			if (in_r->socks[i].fd == s->fd) {
				*error_r = "a socket descriptor named twice";
				return -1;
			}
		in_r->nsocks++;
	}
	return 0;
}
