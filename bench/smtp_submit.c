/* smtp_submit.c — a load client for authenticated SMTP submission, for bench/api.sh: Postfix's
 * smtp-source cannot AUTH, so it cannot drive a submission listener, where a server signs what it
 * accepts. SESSIONS threads each open one connection, EHLO, AUTH PLAIN (RFC 4954, RFC 4616), then
 * send messages over it until MESSAGES have been sent in all: MAIL, RCPT and DATA in one write
 * (RFC 2920 PIPELINING), the message, and the final reply awaited before the next. Plain text only
 * (the server must allow AUTH without TLS on loopback). Prints nothing and exits 0 when every
 * message got its 250; else one line on stderr and exit 1.
 *
 * usage: smtp_submit -s SESSIONS -m MESSAGES -l SIZE -u USER -p PASSWORD -f FROM -t TO HOST:PORT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct opts {
	int sessions;
	long messages;
	long size;
	const char *user, *password, *from, *to;
	struct sockaddr_in addr;
};

static struct opts o;
static atomic_long next_msg, sent;
static atomic_int failed;

struct conn {
	int fd;
	char buf[8192];
	size_t len, off;
};

static void fail(const char *what, const char *detail)
{
	if (atomic_exchange(&failed, 1) == 0)
		fprintf(stderr, "smtp_submit: %s%s%s\n", what, detail != NULL ? ": " : "", detail != NULL ? detail : "");
}

static int send_all(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One reply (RFC 5321 §4.2: "NNN-" lines, then "NNN "): its code, or -1 when the connection ends. */
static int reply(struct conn *c, char *last, size_t last_size)
{
	for (;;) {
		char *nl = c->off < c->len ? memchr(c->buf + c->off, '\n', c->len - c->off) : NULL;
		if (nl == NULL) {
			if (c->off > 0) {
				memmove(c->buf, c->buf + c->off, c->len - c->off);
				c->len -= c->off;
				c->off = 0;
			}
			if (c->len == sizeof(c->buf))
				return -1; /* a line longer than any reply */
			ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return -1;
			c->len += (size_t)r;
			continue;
		}
		char *line = c->buf + c->off;
		size_t n = (size_t)(nl - line) + 1;
		c->off += n;
		if (n < 5)
			return -1;
		if (last != NULL)
			snprintf(last, last_size, "%.*s", (int)(n > 2 ? n - 2 : n), line);
		if (line[3] == ' ')
			return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	}
}

static int expect(struct conn *c, int want, const char *what)
{
	char last[512] = "";
	int code = reply(c, last, sizeof(last));
	if (code != want) {
		char d[600];
		snprintf(d, sizeof(d), "%s: wanted %d, got %s", what, want, code < 0 ? "the connection closed" : last);
		fail("unexpected reply", d);
		return -1;
	}
	return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(const unsigned char *in, size_t n, char *out)
{
	size_t o_ = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
		out[o_++] = b64[v >> 18 & 63];
		out[o_++] = b64[v >> 12 & 63];
		out[o_++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		out[o_++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[o_] = '\0';
}

/* The body: SIZE octets of 70-character lines (each ends in CRLF), the last line shorter. */
static char *body_make(size_t *len_r)
{
	char *b = malloc((size_t)o.size + 3);
	if (b == NULL)
		return NULL;
	size_t n = 0;
	while (n < (size_t)o.size) {
		size_t line = (size_t)o.size - n;
		if (line > 72)
			line = 72;
		for (size_t i = 0; i + 2 < line; i++, n++)
			b[n] = (char)('a' + (n % 26));
		if (line >= 2) {
			b[n++] = '\r';
			b[n++] = '\n';
		} else {
			b[n++] = 'z';
		}
	}
	*len_r = n;
	return b;
}

static void *session(void *arg)
{
	(void)arg;
	struct conn c = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
	char line[1024], plain[512], auth[700], head[2048];
	size_t body_len;
	char *body = body_make(&body_len);
	int one = 1;
	if (c.fd < 0 || body == NULL || connect(c.fd, (struct sockaddr *)&o.addr, sizeof(o.addr)) != 0) {
		fail("connect", strerror(errno));
		goto out;
	}
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (expect(&c, 220, "greeting") != 0)
		goto out;
	if (send_all(&c, "EHLO client.bench.example\r\n", 27) != 0 || expect(&c, 250, "EHLO") != 0)
		goto out;
	/* RFC 4616: authzid NUL authcid NUL passwd */
	size_t un = strlen(o.user), pn = strlen(o.password);
	plain[0] = '\0';
	memcpy(plain + 1, o.user, un);
	plain[1 + un] = '\0';
	memcpy(plain + 2 + un, o.password, pn);
	base64((const unsigned char *)plain, 2 + un + pn, auth);
	int n = snprintf(line, sizeof(line), "AUTH PLAIN %s\r\n", auth);
	if (send_all(&c, line, (size_t)n) != 0 || expect(&c, 235, "AUTH") != 0)
		goto out;
	int env = snprintf(line, sizeof(line), "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", o.from, o.to);
	for (;;) {
		long k = atomic_fetch_add(&next_msg, 1);
		if (k >= o.messages || atomic_load(&failed))
			break;
		if (send_all(&c, line, (size_t)env) != 0 || expect(&c, 250, "MAIL") != 0 || expect(&c, 250, "RCPT") != 0 ||
		    expect(&c, 354, "DATA") != 0)
			goto out;
		int h = snprintf(head, sizeof(head),
				 "From: <%s>\r\nTo: <%s>\r\nSubject: bench %ld\r\nDate: Mon, 07 Dec 2026 00:00:00 +0000\r\n"
				 "Message-ID: <%ld.%d@client.bench.example>\r\n\r\n",
				 o.from, o.to, k, k, (int)getpid());
		if (send_all(&c, head, (size_t)h) != 0 || send_all(&c, body, body_len) != 0 ||
		    send_all(&c, "\r\n.\r\n", 5) != 0 || expect(&c, 250, "end of data") != 0)
			goto out;
		atomic_fetch_add(&sent, 1);
	}
	send_all(&c, "QUIT\r\n", 6);
	reply(&c, NULL, 0);
out:
	if (c.fd >= 0)
		close(c.fd);
	free(body);
	return NULL;
}

int main(int argc, char **argv)
{
	int ch;
	o.sessions = 32;
	o.size = 2048;
	while ((ch = getopt(argc, argv, "s:m:l:u:p:f:t:")) != -1) {
		switch (ch) {
		case 's': o.sessions = atoi(optarg); break;
		case 'm': o.messages = atol(optarg); break;
		case 'l': o.size = atol(optarg); break;
		case 'u': o.user = optarg; break;
		case 'p': o.password = optarg; break;
		case 'f': o.from = optarg; break;
		case 't': o.to = optarg; break;
		default: goto usage;
		}
	}
	if (optind + 1 != argc || o.sessions < 1 || o.sessions > 1000 || o.messages < 1 || o.size < 1 ||
	    o.size > 100000000 || o.user == NULL || o.password == NULL || o.from == NULL || o.to == NULL ||
	    strlen(o.user) + strlen(o.password) > 400 || strlen(o.from) + strlen(o.to) > 900)
		goto usage;
	char host[64];
	const char *colon = strrchr(argv[optind], ':');
	if (colon == NULL || (size_t)(colon - argv[optind]) >= sizeof(host))
		goto usage;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - argv[optind]), argv[optind]);
	o.addr.sin_family = AF_INET;
	o.addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &o.addr.sin_addr) != 1)
		goto usage;
	pthread_t *t = calloc((size_t)o.sessions, sizeof(*t));
	if (t == NULL)
		return 1;
	int started = 0;
	for (; started < o.sessions; started++)
		if (pthread_create(&t[started], NULL, session, NULL) != 0)
			break;
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	free(t);
	if (!failed && atomic_load(&sent) != o.messages)
		fail("not every message was sent", NULL);
	return failed ? 1 : 0;
usage:
	fprintf(stderr, "usage: smtp_submit -s SESSIONS -m MESSAGES -l SIZE -u USER -p PASSWORD -f FROM -t TO HOST:PORT\n");
	return 2;
}
