/* listener.c — listening sockets (libevent evconnlistener) and address helpers. */
#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

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

struct evconnlistener *net_listen(struct event_base *base, const struct conf_addr *a, evconnlistener_cb cb,
				  void *arg, char *error_r, size_t error_size)
{
	unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
	struct evconnlistener *l = evconnlistener_new_bind(base, cb, arg, flags, 1024, (const struct sockaddr *)&a->ss,
							   (int)a->len);
	if (l == NULL)
		snprintf(error_r, error_size, "cannot listen on %s: %s", a->text, strerror(errno));
	return l;
}
