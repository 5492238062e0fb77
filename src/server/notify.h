/* notify.h — telling the service manager how the server is doing: the sd_notify(3) datagram
 * protocol (READY=1, RELOADING=1, STOPPING=1, STATUS=...) to the UNIX socket named by
 * $NOTIFY_SOCKET, which systemd sets for a Type=notify unit. Written here rather than linked from
 * libsystemd: one sendto(2) of a text datagram. Without $NOTIFY_SOCKET every call does nothing. */
#ifndef MAILWERK_SERVER_NOTIFY_H
#define MAILWERK_SERVER_NOTIFY_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

struct service_notifier {
	int fd; /* -1: nobody to tell */
	struct sockaddr_un addr;
	socklen_t addr_len;
};

/* Reads $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace) and unsets it, so that no
 * program the server might start sends as if it were the server. false with a sentence when it is
 * set but unusable; the notifier then stays silent. */
bool service_notifier_open(struct service_notifier *n, char *error, size_t error_size);
/* Sends one state message ("READY=1\nSTATUS=..."); failures are ignored, as sd_notify's are by
 * its callers: the manager's own timeout reports a server that never said it was ready. */
void service_notify(const struct service_notifier *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "NOTIFY_SOCKET=..." as it was before open unset it, into out, for a program that takes our place
 * (execve keeps the pid, so the manager hears it as us). false when there is nobody to tell, or
 * it does not fit. */
bool service_notifier_env(const struct service_notifier *n, char *out, size_t size);
void service_notifier_close(struct service_notifier *n);

#endif
