/* retr.c — RETR and TOP (RFC 1939 §7): the message streamed from a worker that reads and
 * byte-stuffs one piece at a time, the next piece read only when the client has taken most of the
 * previous one; and the read-ahead of the small messages after a RETR taken in order, in batches
 * that are read while the one before goes out. Memory: one piece per RETR, one batch being taken and
 * one being read per session, charged to the server's memory budget. */
#include "pop3/retr.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailbox/maildir.h"
#include "pop3/parse.h"
#include "pop3/session.h"
#include "server/server.h"
#include "util/budget.h"
#include "util/log.h"
#include "util/worker.h"

/* File octets a worker reads per read(2), and per job (piece) of a RETR/TOP. A piece becomes at
 * most twice as many octets with CRLF and stuffing; the next is read only once the output is down
 * to POP3_OUTPUT_LOW, so a RETR holds well under 1 MiB whatever the size of the message. */
#define POP3_RETR_READ 65536
#define POP3_RETR_PIECE (4 * POP3_RETR_READ)
/* Read-ahead: a client taking its messages in order (fetchmail and most others, pipelined or not)
 * gets the next small ones read by the same worker job as the one it asked for, as complete
 * responses; they wait for it in the session, at most this many messages and octets (as read). */
#define POP3_AHEAD_MSGS 32
#define POP3_AHEAD_OCTETS (256 * 1024)
/* Messages read ahead of the client's RETR, in the order it is expected to ask for them. */
struct pop3_ahead {
	unsigned count;   /* planned on the loop; on the worker, cut to what could be read */
	unsigned next;    /* the first not yet asked for */
	uint64_t charged; /* taken from srv->memory, the budget of message octets held in memory */
	struct {
		uint32_t num;
		struct maildir_msg msg;  /* a copy */
		struct evbuffer *resp;   /* the whole response ("+OK", stuffed message, "."); worker-built */
	} e[POP3_AHEAD_MSGS];
};

static void ahead_drop(struct pop3_session *s);

static void ahead_free(struct server *srv, struct pop3_ahead *a)
{
	if (a == NULL)
		return;
	budget_give(&srv->memory, a->charged);
	for (unsigned i = 0; i < POP3_AHEAD_MSGS; i++)
		if (a->e[i].resp != NULL)
			evbuffer_free(a->e[i].resp);
	free(a);
}

struct pop3_retr {
	struct server *srv;
	uint64_t conn_id;
	struct pop3_lock *lock;  /* a reference: its path names the maildir */
	struct maildir_msg msg;  /* a copy */
	uint32_t num;
	bool top;
	uint32_t lines;
	int fd;                  /* -1 until the first piece opens the file */
	struct pop3_stuff st;
	bool started;            /* the +OK line is in the output */
	bool finished;           /* ".CRLF" is in the output */
	int error;               /* errno of a failed open or read, else 0 */
	uint64_t sent;           /* octets of the response so far, for the log */
	struct evbuffer *out;    /* this piece, built on the worker */
	char *buf;               /* read buffer, POP3_RETR_READ octets */
	struct pop3_ahead *ahead; /* NULL, or the messages to read after this one */
};

static void retr_free(struct pop3_retr *r)
{
	if (r->fd >= 0)
		close(r->fd);
	if (r->out != NULL)
		evbuffer_free(r->out);
	free(r->buf);
	ahead_free(r->srv, r->ahead);
	pop3_lock_unref(r->srv, r->lock);
	free(r);
}

/* Worker thread: reads fd and byte-stuffs it into out until the end of the file (or of a TOP), or
 * until at least max file octets are taken. 1 at the end (the end marker is added), 0 when there is
 * more to read, -1 on an error (errno). */
static int stuff_from(int fd, struct pop3_stuff *st, char *buf, size_t max, struct evbuffer *out)
{
	size_t taken = 0;
	while (taken < max && !st->stopped) {
		ssize_t n = read(fd, buf, POP3_RETR_READ);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		struct evbuffer_iovec v;
		if (evbuffer_reserve_space(out, 2 * (ev_ssize_t)n, &v, 1) < 1) {
			errno = ENOMEM;
			return -1;
		}
		v.iov_len = pop3_stuff_chunk(st, buf, (size_t)n, v.iov_base);
		if (evbuffer_commit_space(out, &v, 1) != 0) {
			errno = ENOMEM;
			return -1;
		}
		taken += (size_t)n;
	}
	if (taken >= max && !st->stopped)
		return 0;
	char end[POP3_STUFF_END_MAX];
	if (evbuffer_add(out, end, pop3_stuff_end(st, end)) != 0) {
		errno = ENOMEM;
		return -1;
	}
	return 1;
}

/* Worker thread: one whole message as a RETR response into resp; false on any failure (then the
 * client's own RETR of it reads it again and reports what went wrong). */
static bool ahead_read(const char *maildir, const struct maildir_msg *m, char *buf, struct evbuffer *resp)
{
	struct pop3_stuff st;
	int fd = maildir_msg_open(maildir, m);
	bool ok = fd >= 0;

	pop3_stuff_init(&st, false, 0);
	if (ok)
		ok = evbuffer_add_printf(resp, "+OK %llu octets\r\n", (unsigned long long)m->size) > 0;
	if (ok)
		ok = stuff_from(fd, &st, buf, SIZE_MAX, resp) == 1;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Worker thread: reads the planned messages, in order, up to the first that cannot be read. */
static void ahead_work(struct pop3_ahead *a, const char *maildir, char *buf)
{
	unsigned i = 0;

	for (; i < a->count; i++) {
		if ((a->e[i].resp = evbuffer_new()) == NULL || !ahead_read(maildir, &a->e[i].msg, buf, a->e[i].resp))
			break;
	}
	for (unsigned j = i; j < a->count; j++) {
		if (a->e[j].resp != NULL)
			evbuffer_free(a->e[j].resp);
		a->e[j].resp = NULL;
	}
	a->count = i;
}

/* Worker thread: opens the file on the first call, then reads, converts and stuffs up to
 * POP3_RETR_PIECE octets of it into r->out; at the end of the file (or of TOP) adds the end marker. */
static void retr_work(void *arg)
{
	struct pop3_retr *r = arg;
	if (r->fd < 0) {
		r->fd = maildir_msg_open(r->lock->path, &r->msg);
		if (r->fd < 0) {
			r->error = errno ? errno : EIO;
			return;
		}
		if (r->top)
			evbuffer_add_printf(r->out, "+OK Top of message %u follows\r\n", r->num);
		else
			evbuffer_add_printf(r->out, "+OK %llu octets\r\n", (unsigned long long)r->msg.size);
		r->started = true;
	}
	int end = stuff_from(r->fd, &r->st, r->buf, POP3_RETR_PIECE, r->out);
	if (end < 0) {
		r->error = errno;
		return;
	}
	if (end == 1) {
		r->finished = true;
		close(r->fd);
		r->fd = -1;
		if (r->ahead != NULL)
			ahead_work(r->ahead, r->lock->path, r->buf);
	}
}

static void retr_done(void *arg);

static void retr_submit(struct pop3_session *s)
{
	struct pop3_retr *r = s->retr;
	s->retr = NULL; /* the worker has it now; retr_done gives it back */
	worker_pool_submit(s->srv->workers, retr_work, retr_done, r);
}

static void retr_done(void *arg)
{
	struct pop3_retr *r = arg;
	struct pop3_session *s = pop3_session_find(r->srv, r->conn_id);
	if (s == NULL) {
		retr_free(r);
		return;
	}
	if (r->error != 0 && !r->started) {
		log_warn("session=%llx event=%s result=error msg=%u error=\"%s\"", (unsigned long long)s->conn.id,
			 r->top ? "top" : "retr", r->num, strerror(r->error));
		evbuffer_add_printf(line_session_out(&s->ls), "-ERR [SYS/TEMP] Cannot read message %u\r\n", r->num);
		retr_free(r);
		pop3_session_resume(s);
		return;
	}
	r->sent += evbuffer_get_length(r->out);
	evbuffer_add_buffer(line_session_out(&s->ls), r->out);
	if (r->error != 0) {
		/* part of the message is out: the response cannot be completed, the session cannot go on */
		log_warn("session=%llx event=%s result=error msg=%u error=\"%s\"", (unsigned long long)s->conn.id,
			 r->top ? "top" : "retr", r->num, strerror(r->error));
		retr_free(r);
		line_session_close(&s->ls, "read_error");
		return;
	}
	if (r->finished) {
		if (r->top)
			log_info("session=%llx event=top msg=%u uid=%s lines=%u sent=%llu", (unsigned long long)s->conn.id,
				 r->num, r->msg.uid, r->lines, (unsigned long long)r->sent);
		else
			log_info("session=%llx event=retr msg=%u uid=%s size=%llu sent=%llu", (unsigned long long)s->conn.id,
				 r->num, r->msg.uid, (unsigned long long)r->msg.size, (unsigned long long)r->sent);
		s->retrieved++;
		if (r->ahead != NULL && r->ahead->count > 0) {
			ahead_drop(s);
			s->ahead = r->ahead; /* they wait for the client's next RETRs */
			r->ahead = NULL;
		}
		retr_free(r);
		pop3_session_resume(s);
		return;
	}
	/* park it; the next piece is read once the client has taken most of this one */
	s->retr = r;
	if (pop3_session_output_low(s))
		retr_submit(s);
}

void pop3_retr_continue(struct pop3_session *s)
{
	if (s->retr != NULL && pop3_session_output_low(s))
		retr_submit(s);
}

/* Plans the messages after number after for reading ahead: those not deleted, in order, within the
 * window. NULL when there are none or the memory budget has no room. */
static struct pop3_ahead *ahead_plan(struct pop3_session *s, uint32_t after)
{
	struct pop3_ahead *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL; /* no read-ahead is no harm */
	uint64_t octets = 0;
	for (uint32_t n = after + 1; n <= s->msg_count && a->count < POP3_AHEAD_MSGS; n++) {
		const struct maildir_msg *next = &s->msgs[n - 1];
		if (s->deleted[n - 1])
			continue;
		if (next->size > POP3_AHEAD_OCTETS - octets)
			break;
		octets += next->size;
		a->e[a->count].num = n;
		a->e[a->count].msg = *next;
		a->count++;
	}
	/* held in memory like message content in SMTP sessions: only while the budget has room */
	uint64_t charge = 2 * octets; /* CRLF and byte-stuffing may double it */
	if (a->count == 0 || !budget_take(&s->srv->memory, charge)) {
		free(a);
		return NULL;
	}
	a->charged = charge;
	return a;
}

/* A batch read ahead while the client takes the one before it, so that reading and sending overlap. */
struct pop3_ahead_job {
	struct server *srv;
	uint64_t conn_id;
	unsigned generation;     /* the session's ahead_generation when it was planned */
	struct pop3_lock *lock;  /* a reference: its path names the maildir */
	struct pop3_ahead *a;
	char buf[POP3_RETR_READ];
};

static void ahead_job_work(void *arg)
{
	struct pop3_ahead_job *j = arg;
	ahead_work(j->a, j->lock->path, j->buf);
}

static void ahead_drop(struct pop3_session *s)
{
	ahead_free(s->srv, s->ahead);
	ahead_free(s->srv, s->ahead_next);
	s->ahead = s->ahead_next = NULL;
	s->ahead_generation++; /* a batch still being read is dropped when it arrives */
	s->ahead_pending = false;
	s->ahead_wait = 0;
}

static bool ahead_serve(struct pop3_session *s, uint32_t num);

static void ahead_job_done(void *arg)
{
	struct pop3_ahead_job *j = arg;
	struct pop3_session *s = pop3_session_find(j->srv, j->conn_id);

	if (s == NULL || j->generation != s->ahead_generation || j->a->count == 0) {
		if (s != NULL && j->generation == s->ahead_generation)
			s->ahead_pending = false;
		uint32_t wait = s != NULL && j->generation == s->ahead_generation ? s->ahead_wait : 0;
		ahead_free(j->srv, j->a);
		pop3_lock_unref(j->srv, j->lock);
		free(j);
		if (wait != 0) { /* the client asked for one that could not be read ahead: read it itself */
			s->ahead_wait = 0;
			if (!pop3_retr_start(s, wait, false, 0))
				pop3_session_resume(s);
		}
		return;
	}
	s->ahead_pending = false;
	s->ahead_next = j->a;
	pop3_lock_unref(j->srv, j->lock);
	free(j);
	if (s->ahead_wait != 0) {
		uint32_t num = s->ahead_wait;
		s->ahead_wait = 0;
		if (ahead_serve(s, num) || !pop3_retr_start(s, num, false, 0))
			pop3_session_resume(s);
	}
}

/* Starts reading the batch after the current one, unless one is on its way or ready. */
static void ahead_refill(struct pop3_session *s)
{
	const struct pop3_ahead *cur = s->ahead;
	if (s->ahead_pending || s->ahead_next != NULL || cur == NULL)
		return;
	struct pop3_ahead *a = ahead_plan(s, cur->e[cur->count - 1].num);
	if (a == NULL)
		return;
	struct pop3_ahead_job *j = malloc(sizeof(*j));
	if (j == NULL) {
		ahead_free(s->srv, a);
		return;
	}
	j->srv = s->srv;
	j->conn_id = s->conn.id;
	j->generation = s->ahead_generation;
	j->lock = pop3_lock_ref(s->lock);
	j->a = a;
	s->ahead_pending = true;
	s->ahead_pending_first = a->e[0].num;
	worker_pool_submit(s->srv->workers, ahead_job_work, ahead_job_done, j);
}

/* Sends the response to RETR num from what was read ahead; false when it is not there. */
static bool ahead_serve(struct pop3_session *s, uint32_t num)
{
	struct pop3_ahead *a = s->ahead;

	if ((a == NULL || a->next == a->count) && s->ahead_next != NULL) {
		ahead_free(s->srv, a); /* used up: the next batch takes over */
		a = s->ahead = s->ahead_next;
		s->ahead_next = NULL;
	}
	if (a == NULL || a->next >= a->count || a->e[a->next].num != num)
		return false;
	struct evbuffer *resp = a->e[a->next].resp;
	size_t sent = evbuffer_get_length(resp);
	evbuffer_add_buffer(line_session_out(&s->ls), resp);
	log_info("session=%llx event=retr msg=%u uid=%s size=%llu sent=%zu", (unsigned long long)s->conn.id, num,
		 a->e[a->next].msg.uid, (unsigned long long)a->e[a->next].msg.size, sent);
	s->retrieved++;
	s->last_retr = num;
	a->next++;
	if (2 * (a->count - a->next) <= a->count)
		ahead_refill(s); /* half taken: the next batch is read while the rest goes out */
	return true;
}

/* RETR num from the read-ahead: answered now, or (when its batch is still being read) as soon as it
 * is in. false when it was not read ahead: the caller reads it. */
static bool ahead_take(struct pop3_session *s, uint32_t num)
{
	if (s->ahead == NULL && s->ahead_next == NULL && !s->ahead_pending)
		return false;
	if (ahead_serve(s, num))
		return true;
	if (s->ahead_pending && s->ahead_pending_first == num &&
	    (s->ahead == NULL || s->ahead->next == s->ahead->count)) {
		/* RFC 2449 §6.6: later commands wait until this response is complete */
		s->ahead_wait = num;
		line_session_wait(&s->ls);
		return true;
	}
	ahead_drop(s); /* the client went another way */
	return false;
}

bool pop3_retr_start(struct pop3_session *s, uint32_t num, bool top, uint32_t lines)
{
	const struct maildir_msg *m = &s->msgs[num - 1];
	if (!top && ahead_take(s, num))
		return s->ahead_wait != 0;
	struct pop3_retr *r = calloc(1, sizeof(*r));
	if (r != NULL) {
		r->out = evbuffer_new();
		r->buf = malloc(POP3_RETR_READ);
	}
	if (r == NULL || r->out == NULL || r->buf == NULL) {
		if (r != NULL) {
			if (r->out != NULL)
				evbuffer_free(r->out);
			free(r->buf);
			free(r);
		}
		evbuffer_add_printf(line_session_out(&s->ls), "-ERR [SYS/TEMP] Out of memory, try again later\r\n");
		return false;
	}
	r->srv = s->srv;
	r->conn_id = s->conn.id;
	r->lock = pop3_lock_ref(s->lock);
	r->msg = *m;
	r->num = num;
	r->top = top;
	r->lines = lines;
	r->fd = -1;
	pop3_stuff_init(&r->st, top, lines);
	if (!top) {
		/* a second RETR in order: the messages after this small one are read with it */
		if (num == s->last_retr + 1 && m->size <= POP3_RETR_PIECE)
			r->ahead = ahead_plan(s, num);
		s->last_retr = num;
	}
	/* RFC 2449 §6.6: later commands wait until this response is complete */
	line_session_wait(&s->ls);
	s->retr = r;
	retr_submit(s);
	return true;
}

void pop3_retr_free(struct pop3_session *s)
{
	/* a RETR parked between two pieces; one on a worker is freed by retr_done */
	if (s->retr != NULL) {
		retr_free(s->retr);
		s->retr = NULL;
	}
	ahead_drop(s);
}
