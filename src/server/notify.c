/* notify.c — the sd_notify(3) protocol (notify.h). */
#include "server/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool service_notifier_open(struct service_notifier *n, char *error, size_t error_size)
{
	memset(n, 0, sizeof(*n));
	n->fd = -1;
	const char *path = getenv("NOTIFY_SOCKET");
	if (path == NULL || path[0] == '\0')
		return true;
	size_t len = strlen(path);
	bool abstract = path[0] == '@';
	if ((path[0] != '/' && !abstract) || len >= sizeof(n->addr.sun_path)) {
		snprintf(error, error_size, "NOTIFY_SOCKET=%s is neither an absolute path nor an abstract name that fits",
			 path);
		unsetenv("NOTIFY_SOCKET");
		return false;
	}
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, len);
	if (abstract)
		n->addr.sun_path[0] = '\0'; /* the abstract namespace: a leading NUL, no terminating one */
	n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (abstract ? 0 : 1));
	unsetenv("NOTIFY_SOCKET");
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0) {
		snprintf(error, error_size, "cannot make a socket for NOTIFY_SOCKET: %s", strerror(errno));
		return false;
	}
	return true;
}

void service_notify(const struct service_notifier *n, const char *fmt, ...)
{
	if (n->fd < 0)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len <= 0)
		return;
	if ((size_t)len >= sizeof(msg))
		len = (int)sizeof(msg) - 1;
	while (sendto(n->fd, msg, (size_t)len, MSG_NOSIGNAL, (const struct sockaddr *)&n->addr, n->addr_len) < 0 &&
	       errno == EINTR)
		;
}

bool service_notifier_env(const struct service_notifier *n, char *out, size_t size)
{
	if (n->fd < 0)
		return false;
	size_t len = (size_t)n->addr_len - offsetof(struct sockaddr_un, sun_path);
	bool abstract = len > 0 && n->addr.sun_path[0] == '\0';
	if (!abstract && len > 0)
		len--; /* the terminating NUL of a path */
	int w = snprintf(out, size, "NOTIFY_SOCKET=%s%.*s", abstract ? "@" : "", (int)(abstract ? len - 1 : len),
			 n->addr.sun_path + (abstract ? 1 : 0));
	return w > 0 && (size_t)w < size;
}

void service_notifier_close(struct service_notifier *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
