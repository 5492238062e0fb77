/* listener.c — listening sockets (libevent evconnlistener) and address helpers. */
#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

void net_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t size)
{
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)size);
		else
			inet_ntop(AF_INET6, a, buf, (socklen_t)size);
	} else if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)size);
	} else {
		snprintf(buf, size, "unknown");
	}
}

void net_client_key(const struct sockaddr *sa, unsigned ipv6_prefix, char *buf, size_t size)
{
	if (sa->sa_family != AF_INET6 || IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr) ||
	    ipv6_prefix >= 128) {
		net_sockaddr_ip(sa, buf, size);
		return;
	}
	struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
	for (unsigned bit = ipv6_prefix; bit < 128; bit++)
		a.s6_addr[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
	char text[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET6, &a, text, sizeof(text));
	snprintf(buf, size, "%s/%u", text, ipv6_prefix);
}

bool net_sockaddr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

int net_listen_socket(const struct conf_addr *a, char *error_r, size_t error_size)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, NET_LISTEN_BACKLOG) != 0) {
		snprintf(error_r, error_size, "cannot listen on %s: %s", a->text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct evconnlistener *net_listener_new(struct event_base *base, int fd, evconnlistener_cb cb, void *arg)
{
	/* the parent made it non-blocking (the flag belongs to the socket both processes share) and
	 * listening: backlog 0 tells libevent not to call listen(2), which the sandbox refuses */
	return evconnlistener_new(base, cb, arg, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
}
