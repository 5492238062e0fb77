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
#include "auth/dkim_key.h"
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

/* MAKE and ACTIVATE: the store's private side changes only here (and by the CLI). */
/* Under the context's manage_mu. */
static void signer_manage(const char *data_dir, const struct ipc_msg *m)
{
	const char *err, *e;
	char domain[DNS_HOST_SIZE], selector[DKIM_SELECTOR_MAX + 1], why[SIGNER_ERROR_MAX + 1];
	bool active = true;
	if (m->type == SIGNER_MSG_MAKE) {
		struct signer_make k;
		EVP_PKEY *key = NULL;
		if (signer_make_parse(m->payload, m->len, &k, &err) != 0) {
			reply_error(m->id, err);
			return;
		}
		if (dkim_key_generate(k.type, k.bits, &key, &e) != DKIM_KEY_OK) {
			reply_error(m->id, e);
			return;
		}
		bool activated = false;
		int rc = dkim_store_add(data_dir, k.domain, k.selector, key, &activated, why, sizeof(why));
		EVP_PKEY_free(key);
		if (rc == 0 && !activated && !k.when_first)
			rc = dkim_store_activate(data_dir, k.domain, k.selector, why, sizeof(why));
		if (rc != 0) {
			reply_error(m->id, why);
			return;
		}
		active = activated || !k.when_first;
		log_info("event=dkim_key_made domain=%s selector=%s type=%s active=%s", k.domain, k.selector,
			 dkim_key_type_str(k.type), active ? "yes" : "no");
	} else {
		if (signer_activate_parse(m->payload, m->len, domain, selector, &err) != 0) {
			reply_error(m->id, err);
			return;
		}
		if (dkim_store_activate(data_dir, domain, selector, why, sizeof(why)) != 0) {
			reply_error(m->id, why);
			return;
		}
		log_info("event=dkim_key_activated domain=%s selector=%s", domain, selector);
	}
	const char *answer = active ? "active" : "inactive";
	ipc_send(SIGNER_FD, SIGNER_MSG_DONE, m->id, answer, strlen(answer), NULL, 0);
}

/* One request, answered. */
static void signer_handle(struct dkim_signer *keys, const char *data_dir, pthread_mutex_t *manage_mu,
			  const struct ipc_msg *m)
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
	} else if (m->type == SIGNER_MSG_MAKE || m->type == SIGNER_MSG_ACTIVATE) {
		pthread_mutex_lock(manage_mu);
		signer_manage(data_dir, m);
		pthread_mutex_unlock(manage_mu);
	} else {
		reply_error(m->id, "an unknown request");
	}
}

struct signer_ctx {
	struct dkim_signer *keys;
	const char *data_dir;
	pthread_mutex_t manage_mu; /* one change to the store at a time: each reads, then replaces, an active file */
};

/* A thread's life: requests until the worker's end closes. */
static void *signer_serve(void *arg)
{
	struct signer_ctx *ctx = arg;
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
			signer_handle(ctx->keys, ctx->data_dir, &ctx->manage_mu, &m);
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
	/* a store made before the public halves existed gets them (the worker lists keys by them) */
	size_t published = 0;
	char perr[512];
	if (dkim_store_publish(c->data_dir, &published, perr, sizeof(perr)) != 0)
		log_warn("event=dkim_publish_failed error=\"%s\"", perr);
	else if (published > 0)
		log_info("event=dkim_published keys=%zu", published);
	struct dkim_signer *keys = dkim_signer_new(c->data_dir);
	if (keys == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return -1;
	}
	struct signer_ctx ctx = {.keys = keys, .data_dir = c->data_dir};
	pthread_mutex_init(&ctx.manage_mu, NULL);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n = cores < 1 ? 1 : cores > SIGNER_THREADS_MAX ? SIGNER_THREADS_MAX : (size_t)cores;
	pthread_t threads[SIGNER_THREADS_MAX];
	size_t started = 0;
	/* every thread first, then the filter: none of them is ever made under it */
	while (started + 1 < n && pthread_create(&threads[started], NULL, signer_serve, &ctx) == 0)
		started++;
	if (c->sandbox && sandbox_signer_enter(error_r, error_size) != 0) {
		/* the threads block in recvmsg: the process ends with them */
		dkim_signer_free(keys);
		return -1;
	}
	log_info("event=signer_started pid=%ld user=%s threads=%zu sandbox=%s", (long)getpid(),
		 user[0] != '\0' ? user : "(unchanged)", started + 1, c->sandbox ? "on" : "off");
	signer_serve(&ctx);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&ctx.manage_mu);
	dkim_signer_free(keys);
	log_info("event=signer_stopped pid=%ld", (long)getpid());
	return 0;
}
