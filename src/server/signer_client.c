/* signer_client.c — requests to the DKIM signer and their answers (signer_client.h). */
#include "server/signer_client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc/ipc.h"
#include "server/signer_msg.h"
#include "util/log.h"

#define SIGN_PAYLOAD_MAX (DNS_HOST_SIZE + DKIM_SELECTOR_MAX + 2 + DKIM_DIGEST_SIZE)

/* One message being signed. */
struct sign_op {
	struct signer_client *c;
	struct dkim_draft *draft;
	signer_done_fn *done;
	void *arg;
	size_t nkeys, waiting;           /* keys of the domain; SIGN answers still to come */
	char *fields[DKIM_SIGNER_KEYS_MAX]; /* up to "b=", then complete */
	enum signer_result failed;       /* SIGNER_SIGNED while none failed */
	char error[SIGNER_ERROR_MAX + 64];
};

/* One change to the key store (MAKE, ACTIVATE). */
struct key_op {
	signer_key_done_fn *done;
	void *arg;
};

/* One request on the wire (or waiting to go). */
struct request {
	struct request *prev, *next;
	uint64_t id;
	uint32_t type;
	struct sign_op *op;  /* KEYS, SIGN */
	struct key_op *kop;  /* MAKE, ACTIVATE */
	size_t slot; /* SIGN: the key's index in op */
	bool sent;
	unsigned sends; /* a request two signers died answering is not sent to a third (timer_cb fails it) */
	time_t asked; /* monotonic seconds */
	size_t len;
	unsigned char payload[SIGN_PAYLOAD_MAX];
};

struct signer_client {
	struct event_base *base;
	int fd; /* -1 while there is no signer */
	struct event *read_ev, *write_ev, *timer;
	struct request *head, *tail;
	size_t pending;
	uint64_t next_id;
	unsigned char *rec; /* IPC_RECORD_MAX */
};

static time_t now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* ---- operations ---- */

static void op_free(struct sign_op *op)
{
	for (size_t i = 0; i < DKIM_SIGNER_KEYS_MAX; i++)
		free(op->fields[i]);
	dkim_draft_free(op->draft);
	free(op);
}

/* The answer: the fields joined in key order, or the failure. */
static void op_finish(struct sign_op *op)
{
	char *out = NULL;
	if (op->failed == SIGNER_SIGNED) {
		size_t len = 0;
		for (size_t i = 0; i < op->nkeys; i++)
			len += strlen(op->fields[i]);
		if ((out = malloc(len + 1)) != NULL) {
			out[0] = '\0';
			for (size_t i = 0; i < op->nkeys; i++)
				strcat(out, op->fields[i]);
		} else {
			op->failed = SIGNER_KEY_FAILED;
			snprintf(op->error, sizeof(op->error), "out of memory");
		}
	}
	op->done(op->arg, op->failed, out, op->failed == SIGNER_SIGNED ? NULL : op->error);
	op_free(op);
}

/* The first failure is the one told, unless the signer is unavailable (the message waits then). */
static void op_fail(struct sign_op *op, enum signer_result r, const char *what, const char *detail)
{
	if (op->failed == SIGNER_SIGNED || r == SIGNER_UNAVAILABLE) {
		op->failed = r;
		snprintf(op->error, sizeof(op->error), "%s%s%s", what, detail != NULL ? ": " : "", detail != NULL ? detail : "");
	}
}

/* ---- the request list ---- */

static void request_unlink(struct signer_client *c, struct request *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		c->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	else
		c->tail = r->prev;
	c->pending--;
}

static void flush(struct signer_client *c);

static bool request_add(struct signer_client *c, struct sign_op *op, struct key_op *kop, uint32_t type, size_t slot,
			const void *payload, size_t len)
{
	struct request *r = calloc(1, sizeof(*r));
	if (r == NULL || len > sizeof(r->payload)) {
		free(r);
		return false;
	}
	r->id = ++c->next_id;
	r->type = type;
	r->op = op;
	r->kop = kop;
	r->slot = slot;
	r->asked = now_seconds();
	r->len = len;
	memcpy(r->payload, payload, len);
	r->prev = c->tail;
	if (c->tail != NULL)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	c->pending++;
	if (!evtimer_pending(c->timer, NULL)) {
		struct timeval tv = {.tv_sec = 1};
		evtimer_add(c->timer, &tv);
	}
	flush(c);
	return true;
}

/* ---- the socket ---- */

static void disconnect(struct signer_client *c, const char *why)
{
	if (c->fd < 0)
		return;
	log_warn("event=signer_lost error=\"%s\" waiting=%zu", why, c->pending);
	event_free(c->read_ev);
	event_free(c->write_ev);
	c->read_ev = c->write_ev = NULL;
	close(c->fd);
	c->fd = -1;
	/* what was sent goes again to the next signer, but only once: a request that kills the signer
	 * must not kill every one the parent starts */
	for (struct request *r = c->head; r != NULL; r = r->next)
		r->sent = false;
}

/* Sends every request not sent yet, in order, until the socket is full. */
static void flush(struct signer_client *c)
{
	if (c->fd < 0)
		return;
	for (struct request *r = c->head; r != NULL; r = r->next) {
		if (r->sent || r->sends >= 2)
			continue;
		if (ipc_send(c->fd, r->type, r->id, r->payload, r->len, NULL, 0) != 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
				event_add(c->write_ev, NULL);
			else
				disconnect(c, strerror(errno));
			return;
		}
		r->sent = true;
		r->sends++;
	}
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	flush(arg);
}

/* KEYLIST: one SIGN per key; none is the answer "no key". */
static void on_keylist(struct signer_client *c, struct sign_op *op, const struct ipc_msg *m)
{
	struct dkim_signer_key keys[DKIM_SIGNER_KEYS_MAX];
	size_t n = 0;
	const char *err;
	if (signer_keylist_parse(m->payload, m->len, keys, &n, &err) != 0) {
		op_fail(op, SIGNER_UNAVAILABLE, "the signer's key list was refused", err);
		op_finish(op);
		return;
	}
	op->nkeys = op->waiting = n;
	for (size_t i = 0; i < n; i++) {
		unsigned char digest[DKIM_DIGEST_SIZE], payload[SIGN_PAYLOAD_MAX];
		op->fields[i] = dkim_draft_field(op->draft, keys[i].selector, keys[i].alg, digest, &err);
		int len = op->fields[i] != NULL ? signer_sign_format(dkim_draft_domain(op->draft), keys[i].selector, digest,
								    payload, sizeof(payload))
						: -1;
		if (len < 0 || !request_add(c, op, NULL, SIGNER_MSG_SIGN, i, payload, (size_t)len)) {
			op_fail(op, SIGNER_KEY_FAILED, "cannot ask for a signature", op->fields[i] == NULL ? err : "out of memory");
			op->waiting--;
		}
	}
	if (op->waiting == 0)
		op_finish(op);
}

static void on_signature(struct sign_op *op, size_t slot, const struct ipc_msg *m)
{
	const char *err;
	if (signer_signature_check(m->len, &err) != 0) {
		op_fail(op, SIGNER_KEY_FAILED, "the signer's signature was refused", err);
	} else if (op->failed == SIGNER_SIGNED) {
		char *full = dkim_draft_finish(op->draft, op->fields[slot], m->payload, m->len, &err);
		if (full == NULL) {
			op_fail(op, SIGNER_KEY_FAILED, err, NULL);
		} else {
			free(op->fields[slot]);
			op->fields[slot] = full;
		}
	}
	if (--op->waiting == 0)
		op_finish(op);
}

/* A key op's answer; m NULL: none came (failed says why). */
static void key_op_answer(struct key_op *kop, const struct ipc_msg *m, const char *failed)
{
	char text[SIGNER_ERROR_MAX + 1];
	const char *err = failed;
	int active = -1;
	enum signer_result r = SIGNER_KEY_FAILED;
	if (m == NULL) {
		r = SIGNER_UNAVAILABLE;
	} else if (m->type == SIGNER_MSG_DONE) {
		active = signer_done_parse(m->payload, m->len, &err);
		if (active >= 0)
			r = SIGNER_SIGNED;
	} else if (m->type == SIGNER_MSG_ERROR) {
		if (signer_error_parse(m->payload, m->len, text, &err) == 0)
			err = text;
	} else {
		err = "the signer answered with the wrong type of message";
	}
	kop->done(kop->arg, r, active == 1, r == SIGNER_SIGNED ? NULL : err);
	free(kop);
}

static void on_reply(struct signer_client *c, const struct ipc_msg *m)
{
	struct request *r = c->head;
	while (r != NULL && !(r->id == m->id && r->sent))
		r = r->next;
	if (r == NULL) {
		log_warn("event=signer_reply_ignored id=%llu type=%u", (unsigned long long)m->id, (unsigned)m->type);
		return;
	}
	request_unlink(c, r);
	struct sign_op *op = r->op;
	struct key_op *kop = r->kop;
	uint32_t asked = r->type;
	size_t slot = r->slot;
	free(r);
	if (kop != NULL) {
		key_op_answer(kop, m, NULL);
		return;
	}
	char text[SIGNER_ERROR_MAX + 1];
	const char *err;
	if (m->type == SIGNER_MSG_ERROR) {
		if (signer_error_parse(m->payload, m->len, text, &err) != 0)
			snprintf(text, sizeof(text), "(an error the signer could not say: %s)", err);
		op_fail(op, SIGNER_KEY_FAILED, text, NULL);
		if (asked == SIGNER_MSG_KEYS || --op->waiting == 0)
			op_finish(op);
	} else if (asked == SIGNER_MSG_KEYS && m->type == SIGNER_MSG_KEYLIST) {
		on_keylist(c, op, m);
	} else if (asked == SIGNER_MSG_SIGN && m->type == SIGNER_MSG_SIGNATURE) {
		on_signature(op, slot, m);
	} else {
		op_fail(op, SIGNER_KEY_FAILED, "the signer answered with the wrong type of message", NULL);
		if (asked == SIGNER_MSG_KEYS || --op->waiting == 0)
			op_finish(op);
	}
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct signer_client *c = arg;
	/* a few records a wake-up, so that a busy signer does not starve the rest of the loop */
	for (int i = 0; i < 64 && c->fd >= 0; i++) {
		int fds[IPC_FDS_MAX];
		size_t nfds = 0;
		struct ipc_msg m;
		const char *err = "";
		int r = ipc_recv_msg(c->fd, c->rec, &m, fds, &nfds, &err);
		if (r > 0) {
			ipc_fds_close(fds, nfds);
			on_reply(c, &m);
		} else if (r < 0 && errno == EBADMSG) {
			log_warn("event=signer_reply_refused error=\"%s\"", err);
		} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			return;
		} else {
			disconnect(c, r == 0 ? "the signer closed its end" : strerror(errno));
			return;
		}
	}
}

/* Once a second while requests wait: those asked too long ago fail. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct signer_client *c = arg;
	time_t now = now_seconds();
	struct request *r = c->head;
	while (r != NULL) {
		struct request *next = r->next;
		bool poison = r->sends >= 2 && !r->sent; /* two signers died with it in hand */
		if ((poison || now - r->asked >= SIGNER_CLIENT_WAIT_SECONDS) && r->kop != NULL) {
			struct key_op *kop = r->kop;
			request_unlink(c, r);
			free(r);
			key_op_answer(kop, NULL, poison ? "the DKIM signer died answering it, twice" : "the DKIM signer did not answer in time");
		} else if (poison || now - r->asked >= SIGNER_CLIENT_WAIT_SECONDS) {
			struct sign_op *op = r->op;
			request_unlink(c, r);
			op_fail(op, SIGNER_UNAVAILABLE,
				poison ? "the DKIM signer died answering it, twice" : "the DKIM signer did not answer in time", NULL);
			bool last = r->type == SIGNER_MSG_KEYS || --op->waiting == 0;
			free(r);
			if (last) {
				/* its other requests, if any, are gone already: a message's requests are asked together */
				op_finish(op);
			}
		}
		r = next;
	}
	if (c->pending > 0) {
		struct timeval tv = {.tv_sec = 1};
		evtimer_add(c->timer, &tv);
	}
}

/* ---- the interface ---- */

struct signer_client *signer_client_new(struct event_base *base)
{
	struct signer_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->base = base;
	c->fd = -1;
	c->rec = malloc(IPC_RECORD_MAX);
	c->timer = evtimer_new(base, timer_cb, c);
	if (c->rec == NULL || c->timer == NULL) {
		signer_client_free(c);
		return NULL;
	}
	return c;
}

void signer_client_free(struct signer_client *c)
{
	if (c == NULL)
		return;
	disconnect(c, "the worker is stopping");
	while (c->head != NULL) {
		struct request *r = c->head;
		struct sign_op *op = r->op;
		struct key_op *kop = r->kop;
		bool keys = r->type == SIGNER_MSG_KEYS;
		request_unlink(c, r);
		free(r);
		if (kop != NULL) {
			key_op_answer(kop, NULL, "the worker is stopping");
			continue;
		}
		/* the op's other requests, if any, are further on: each one counts its answer */
		op_fail(op, SIGNER_UNAVAILABLE, "the worker is stopping", NULL);
		if (keys || --op->waiting == 0)
			op_finish(op);
	}
	if (c->timer != NULL)
		event_free(c->timer);
	free(c->rec);
	free(c);
}

void signer_client_connect(struct signer_client *c, int fd)
{
	disconnect(c, "a new signer replaces it");
	evutil_make_socket_nonblocking(fd);
	c->read_ev = event_new(c->base, fd, EV_READ | EV_PERSIST, read_cb, c);
	c->write_ev = event_new(c->base, fd, EV_WRITE, write_cb, c);
	if (c->read_ev == NULL || c->write_ev == NULL || event_add(c->read_ev, NULL) != 0) {
		log_error("event=signer_connect_failed error=\"out of memory\"");
		if (c->read_ev != NULL)
			event_free(c->read_ev);
		if (c->write_ev != NULL)
			event_free(c->write_ev);
		c->read_ev = c->write_ev = NULL;
		close(fd);
		return;
	}
	c->fd = fd;
	log_info("event=signer_connected waiting=%zu", c->pending);
	flush(c);
}

/* An operation that failed before any request: answered from the loop, as promised. */
static void op_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	op_finish(arg);
}

void signer_client_sign(struct signer_client *c, struct dkim_draft *draft, signer_done_fn *done, void *arg)
{
	struct sign_op *op = calloc(1, sizeof(*op));
	if (op == NULL) {
		dkim_draft_free(draft);
		done(arg, SIGNER_KEY_FAILED, NULL, "out of memory");
		return;
	}
	op->c = c;
	op->draft = draft;
	op->done = done;
	op->arg = arg;
	const char *domain = dkim_draft_domain(draft);
	if (!request_add(c, op, NULL, SIGNER_MSG_KEYS, 0, domain, strlen(domain))) {
		op_fail(op, SIGNER_KEY_FAILED, "out of memory", NULL);
		if (event_base_once(c->base, -1, EV_TIMEOUT, op_deferred_cb, op, NULL) != 0) {
			dkim_draft_free(draft);
			free(op);
			done(arg, SIGNER_KEY_FAILED, NULL, "out of memory");
		}
	}
}

/* A key op whose request could not be made: answered from the loop. */
static void key_op_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct key_op *kop = arg;
	kop->done(kop->arg, SIGNER_KEY_FAILED, false, "out of memory, or a name that is not one");
	free(kop);
}

static void key_op_start(struct signer_client *c, uint32_t type, const char *payload, int len, signer_key_done_fn *done,
			 void *arg)
{
	struct key_op *kop = malloc(sizeof(*kop));
	if (kop == NULL) {
		done(arg, SIGNER_KEY_FAILED, false, "out of memory");
		return;
	}
	*kop = (struct key_op){done, arg};
	if (len >= 0 && request_add(c, NULL, kop, type, 0, payload, (size_t)len))
		return;
	if (event_base_once(c->base, -1, EV_TIMEOUT, key_op_deferred_cb, kop, NULL) != 0) {
		free(kop);
		done(arg, SIGNER_KEY_FAILED, false, "out of memory");
	}
}

void signer_client_make_key(struct signer_client *c, const struct signer_make *k, signer_key_done_fn *done, void *arg)
{
	char payload[SIGN_PAYLOAD_MAX];
	key_op_start(c, SIGNER_MSG_MAKE, payload, signer_make_format(k, payload, sizeof(payload)), done, arg);
}

void signer_client_activate(struct signer_client *c, const char *domain, const char *selector,
			    signer_key_done_fn *done, void *arg)
{
	char payload[SIGN_PAYLOAD_MAX];
	key_op_start(c, SIGNER_MSG_ACTIVATE, payload, signer_activate_format(domain, selector, payload, sizeof(payload)),
		     done, arg);
}

struct dkim_draft *signer_draft_new(const struct conf *c, const char *domain, const char *msg, size_t len, time_t now,
				    const struct dkim_body_tail *tail, const char **error_r)
{
	struct dkim_sign_params p = {
		.domain = domain,
		.header_canon = c->dkim_header_relaxed ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
		.body_canon = c->dkim_body_relaxed ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
		.timestamp = now,
		.expire = c->dkim_expiration > 0 ? now + (time_t)c->dkim_expiration : 0,
	};
	if (tail != NULL)
		p.body_tail = *tail;
	return dkim_draft_new(&p, msg, len, error_r);
}

size_t signer_client_pending(const struct signer_client *c)
{
	return c->pending;
}
