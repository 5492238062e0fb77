/* listener.h — binding listening sockets and describing peer addresses. */
#ifndef MAILWERK_NET_LISTENER_H
#define MAILWERK_NET_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <event2/listener.h>

struct conf_addr;

/* Textual IP of sa; IPv4-mapped IPv6 addresses are shown as IPv4. */
void net_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t size);
/* What per-client limits count by (connections, AUTH failure delays): an IPv4 address, or the
 * prefix of ipv6_prefix bits of an IPv6 one, as "2001:db8:1:2::/64" — an IPv6 client commonly holds
 * a whole /64 and can use a new address for every connection. */
#define NET_CLIENT_KEY_SIZE 46
void net_client_key(const struct sockaddr *sa, unsigned ipv6_prefix, char *buf, size_t size);
/* 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104 */
bool net_sockaddr_is_loopback(const struct sockaddr *sa);

/* Connections the kernel holds for a listener nobody accepts from: while the worker restarts they
 * wait here rather than being refused. */
#define NET_LISTEN_BACKLOG 1024

/* A non-blocking, close-on-exec listening socket bound to a (the parent binds them all). Its
 * descriptor, or -1 with a sentence in error_r. */
int net_listen_socket(const struct conf_addr *a, char *error_r, size_t error_size);

/* Accepts on the listening socket fd (taken over: freed with the listener) and hands each
 * connection to cb. NULL when out of memory. */
struct evconnlistener *net_listener_new(struct event_base *base, int fd, evconnlistener_cb cb, void *arg);

#endif
