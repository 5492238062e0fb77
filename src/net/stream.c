/* stream.c — plain and TLS bufferevents for client connections. */
#include "net/stream.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <unistd.h>

static struct bufferevent *stream_tls_new(struct event_base *base, SSL_CTX *ctx, int fd)
{
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL)
		return NULL;
	struct bufferevent *bev =
		bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* clients that drop the TCP connection without close_notify are common and harmless here:
	 * every reply says on its own whether it is complete */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

struct bufferevent *net_stream_accept(struct event_base *base, SSL_CTX *ctx, int fd, bool implicit_tls)
{
	struct bufferevent *bev = implicit_tls ? stream_tls_new(base, ctx, fd)
					       : bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		close(fd);
	return bev;
}

struct bufferevent *net_stream_starttls(struct event_base *base, SSL_CTX *ctx, struct bufferevent *plain)
{
	struct bufferevent *tls = stream_tls_new(base, ctx, bufferevent_getfd(plain));
	if (tls == NULL)
		return NULL;
	bufferevent_setfd(plain, -1); /* the TLS bufferevent owns the socket now */
	bufferevent_free(plain);
	return tls;
}

void net_stream_free(struct bufferevent *bev, bool tls)
{
	if (bev == NULL)
		return;
	SSL *ssl = tls ? bufferevent_openssl_get_ssl(bev) : NULL;
	if (ssl != NULL && SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
	bufferevent_free(bev);
}

bool net_stream_tls_info(struct bufferevent *bev, const char **version_r, const char **cipher_r)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl == NULL)
		return false;
	*version_r = SSL_get_version(ssl);
	*cipher_r = SSL_get_cipher_name(ssl);
	return true;
}
