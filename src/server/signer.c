/* signer.c — the DKIM signer process (signer.h). A few threads, each reading whole requests from
 * the one SOCK_SEQPACKET socket (every recvmsg takes one record, so they never share a request)
 * and sending its reply: signing is all the work there is, and it uses every core. */
#include "server/signer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "auth/dkim_sig.h"
#include "ipc/ipc.h"
#include "keys/dkim_store.h"
#include "server/sandbox.h"
#include "server/signer_msg.h"
#include "util/identity.h"
#include "util/log.h"

#define SIGNER_THREADS_MAX 8

static void reply_error(uint64_t id, const char *why)
{
	char text[SIGNER_ERROR_MAX + 1];
	snprintf(text, sizeof(text), "%s", why);
	for (char *p = text; *p != '\0'; p++)
		if (*p < ' ' || *p > '~')
			*p = '?';
	ipc_send(SIGNER_FD, SIGNER_MSG_ERROR, id, text, strlen(text), NULL, 0);
}

/* One request, answered. */
static void signer_handle(struct dkim_signer *keys, const struct ipc_msg *m)
{
	const char *err;
	char domain[DNS_HOST_SIZE];
	if (m->type == SIGNER_MSG_KEYS) {
		struct dkim_signer_key k[DKIM_SIGNER_KEYS_MAX];
		char text[2 * (DKIM_SELECTOR_MAX + 32)];
		int n, len;
		if (signer_keys_parse(m->payload, m->len, domain, &err) != 0)
			reply_error(m->id, err);
		else if ((n = dkim_signer_keys(keys, domain, k)) < 0)
			reply_error(m->id, "out of memory");
		else if ((len = signer_keylist_format(k, (size_t)n, text, sizeof(text))) < 0)
			reply_error(m->id, "the key list does not fit");
		else
			ipc_send(SIGNER_FD, SIGNER_MSG_KEYLIST, m->id, text, (size_t)len, NULL, 0);
	} else if (m->type == SIGNER_MSG_SIGN) {
		char selector[DKIM_SELECTOR_MAX + 1], why[SIGNER_ERROR_MAX + 1];
		unsigned char digest[DKIM_DIGEST_SIZE], sig[DKIM_SIG_B_MAX];
		size_t sig_len = sizeof(sig);
		if (signer_sign_parse(m->payload, m->len, domain, selector, digest, &err) != 0)
			reply_error(m->id, err);
		else if (dkim_signer_sign_digest(keys, domain, selector, digest, sig, &sig_len, why, sizeof(why)) != 0)
			reply_error(m->id, why);
		else
			ipc_send(SIGNER_FD, SIGNER_MSG_SIGNATURE, m->id, sig, sig_len, NULL, 0);
	} else {
		reply_error(m->id, "an unknown request");
	}
}

/* A thread's life: requests until the worker's end closes. */
static void *signer_serve(void *arg)
{
	struct dkim_signer *keys = arg;
	unsigned char *rec = malloc(IPC_RECORD_MAX);
	if (rec == NULL)
		return NULL;
	for (;;) {
		int fds[IPC_FDS_MAX];
		size_t nfds = 0;
		struct ipc_msg m;
		const char *err = "";
		int r = ipc_recv_msg(SIGNER_FD, rec, &m, fds, &nfds, &err);
		if (r > 0) {
			ipc_fds_close(fds, nfds); /* the worker sends none */
			signer_handle(keys, &m);
		} else if (r < 0 && errno == EBADMSG) {
			log_warn("event=signer_request_refused error=\"%s\"", err);
		} else if (r == 0 || errno != EINTR) {
			break; /* the worker is gone (every thread sees it) */
		}
	}
	free(rec);
	return NULL;
}

int signer_run(const struct conf *c, char *error_r, size_t error_size)
{
	const char *user = c->signer_user[0] != '\0' ? c->signer_user : c->user;
	pid_t parent = getppid();
	if (user[0] != '\0' && identity_become(user, error_r, error_size) != 0)
		return -1;
	/* dies with the parent; no core file and no tracing by the user: the keys are in its memory */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_DUMPABLE, 0);
	if (getppid() != parent) {
		snprintf(error_r, error_size, "the parent is gone");
		return -1;
	}
	struct dkim_signer *keys = dkim_signer_new(c->data_dir);
	if (keys == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return -1;
	}
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n = cores < 1 ? 1 : cores > SIGNER_THREADS_MAX ? SIGNER_THREADS_MAX : (size_t)cores;
	pthread_t threads[SIGNER_THREADS_MAX];
	size_t started = 0;
	/* every thread first, then the filter: none of them is ever made under it */
	while (started + 1 < n && pthread_create(&threads[started], NULL, signer_serve, keys) == 0)
		started++;
	if (c->sandbox && sandbox_signer_enter(error_r, error_size) != 0) {
		/* the threads block in recvmsg: the process ends with them */
		dkim_signer_free(keys);
		return -1;
	}
	log_info("event=signer_started pid=%ld user=%s threads=%zu sandbox=%s", (long)getpid(),
		 user[0] != '\0' ? user : "(unchanged)", started + 1, c->sandbox ? "on" : "off");
	signer_serve(keys);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	dkim_signer_free(keys);
	log_info("event=signer_stopped pid=%ld", (long)getpid());
	return 0;
}
