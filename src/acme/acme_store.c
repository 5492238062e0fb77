/* acme_store.c — data_dir/acme: account.pem (the account key), cert.pem (the private key of the
 * certificate in use, then its chain: one file, so that one rename replaces both together) and
 * next_key.pem (the key the next certificate will have). All mode 0600, the worker's user's. A
 * new certificate or next key is written on a worker thread (write, fsync, rename, fsync of the
 * directory): the loop never waits on the disk. */
#include "acme/acme_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme/acme_x509.h"
#include "server/server.h"
#include "util/log.h"
#include "util/worker.h"

#define ACME_FILE_MAX (256 * 1024)

/* Reads a whole small file; malloc'd and NUL-terminated, NULL (errno set) when it cannot. */
static char *file_read(const char *path, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	char *buf = malloc(ACME_FILE_MAX + 1);
	size_t len = 0;
	ssize_t n = 0;
	while (buf != NULL && len < ACME_FILE_MAX && (n = read(fd, buf + len, ACME_FILE_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (buf == NULL || n < 0 || len >= ACME_FILE_MAX) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

/* Writes path by a temporary file, fsync and rename, mode 0600; 0 or -1 with a sentence. */
static int file_write(const char *dir, const char *name, const char *a, size_t alen, const char *b, size_t blen,
		      char *error, size_t error_size)
{
	char tmp[4200], path[4200];
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(error, error_size, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	bool ok = (size_t)write(fd, a, alen) == alen && (blen == 0 || (size_t)write(fd, b, blen) == blen) && fsync(fd) == 0;
	int e = errno;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		snprintf(error, error_size, "cannot write %s: %s", path, strerror(ok ? errno : e));
		unlink(tmp);
		return -1;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int acme_store_account(struct acme *a, char *error, size_t error_size)
{
	error[0] = '\0';
	if (mkdir(a->dir_path, 0700) != 0 && errno != EEXIST) {
		snprintf(error, error_size, "cannot create %s: %s", a->dir_path, strerror(errno));
		return -1;
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s/account.pem", a->dir_path);
	size_t len;
	char *pem = file_read(path, &len);
	if (pem != NULL) {
		a->account = acme_key_from_pem(pem, len);
		OPENSSL_cleanse(pem, len);
		free(pem);
		if (a->account == NULL) {
			snprintf(error, error_size, "%s is not a private key", path);
			return -1;
		}
		return 0;
	}
	if (errno != ENOENT) {
		snprintf(error, error_size, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	/* the first start with ACME: a new account key (at start-up, before the loop runs) */
	if ((a->account = acme_key_new()) == NULL || (pem = acme_key_pem(a->account, &len)) == NULL) {
		snprintf(error, error_size, "cannot make an account key");
		return -1;
	}
	int rc = file_write(a->dir_path, "account.pem", pem, len, "", 0, error, error_size);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (rc == 0)
		log_info("event=acme_account_key_created path=%s", path);
	return rc;
}

bool acme_store_load_cert(struct acme *a)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/cert.pem", a->dir_path);
	size_t len;
	char *pem = file_read(path, &len);
	if (pem == NULL)
		return false;
	EVP_PKEY *key = acme_key_from_pem(pem, len);
	int64_t nb, na;
	if (key == NULL || !acme_pem_dates(pem, len, &nb, &na)) {
		log_warn("event=acme_certificate_unusable path=%s error=\"not a key and a certificate chain\"", path);
		EVP_PKEY_free(key);
		OPENSSL_cleanse(pem, len);
		free(pem);
		return false;
	}
	a->key = key;
	a->chain = pem;
	a->chain_len = len;
	a->not_before = nb;
	a->not_after = na;
	return true;
}

struct save_job {
	struct acme *a;
	void (*done)(struct acme *a, bool ok, const char *error);
	char *key_pem;
	size_t key_len;
	const char *chain; /* a->new_chain: unchanged until done */
	size_t chain_len;
	char dir[4096];
	bool ok;
	char error[300];
};

static void save_work(void *arg)
{
	struct save_job *j = arg;
	j->ok = file_write(j->dir, "cert.pem", j->key_pem, j->key_len, j->chain, j->chain_len, j->error,
			   sizeof(j->error)) == 0;
}

static void save_done(void *arg)
{
	struct save_job *j = arg;
	OPENSSL_cleanse(j->key_pem, j->key_len);
	free(j->key_pem);
	j->done(j->a, j->ok, j->error);
	free(j);
}

void acme_store_save_cert(struct acme *a, void (*done)(struct acme *a, bool ok, const char *error))
{
	struct save_job *j = calloc(1, sizeof(*j));
	if (j == NULL || (j->key_pem = acme_key_pem(a->new_key, &j->key_len)) == NULL) {
		free(j);
		done(a, false, "out of memory");
		return;
	}
	j->a = a;
	j->done = done;
	j->chain = a->new_chain;
	j->chain_len = a->new_chain_len;
	snprintf(j->dir, sizeof(j->dir), "%s", a->dir_path);
	worker_pool_submit(a->srv->workers, save_work, save_done, j);
}

/* ---- the next key (RFC 7671 §8.1) ---- */

void acme_store_next_key_open(struct acme *a)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/" ACME_NEXT_KEY_FILE, a->dir_path);
	size_t len;
	char *pem = file_read(path, &len);
	a->next_why = "first_start";
	if (pem != NULL) {
		EVP_PKEY *k = acme_key_from_pem(pem, len);
		OPENSSL_cleanse(pem, len);
		free(pem);
		if (k != NULL && (a->key == NULL || EVP_PKEY_eq(k, a->key) != 1)) {
			a->next_key = k;
			log_info("event=acme_next_key_loaded path=%s", path);
			return;
		}
		/* in use already: the process ended between installing it and staging the one after */
		a->next_why = k != NULL ? "in_use" : "unreadable";
		if (k == NULL)
			log_warn("event=acme_next_key_unusable path=%s error=\"not a private key\"", path);
		EVP_PKEY_free(k);
	} else if (errno != ENOENT) {
		a->next_why = "unreadable";
		log_warn("event=acme_next_key_unusable path=%s error=\"%s\"", path, strerror(errno));
	} else if (a->key != NULL) {
		a->next_why = "missing";
	}
}

struct stage_job {
	struct acme *a;
	const char *why;
	EVP_PKEY *key;
	char *pem;
	size_t len;
	char dir[4096];
	bool ok;
	char error[300];
};

static void stage_work(void *arg)
{
	struct stage_job *j = arg;
	j->ok = file_write(j->dir, ACME_NEXT_KEY_FILE, j->pem, j->len, "", 0, j->error, sizeof(j->error)) == 0;
}

static void stage_done(void *arg)
{
	struct stage_job *j = arg;
	struct acme *a = j->a;
	OPENSSL_cleanse(j->pem, j->len);
	free(j->pem);
	a->staging = false;
	if (j->ok) {
		EVP_PKEY_free(a->next_key);
		a->next_key = j->key; /* on disk now: its record may be printed and published */
		log_info("event=acme_next_key_staged path=%s/" ACME_NEXT_KEY_FILE " reason=%s", j->dir, j->why);
	} else {
		char e[LOG_VALUE_SIZE(sizeof(j->error))];
		log_warn("event=acme_next_key_failed reason=store error=%s",
			 log_safe(e, sizeof(e), j->error, (unsigned)strlen(j->error)));
		EVP_PKEY_free(j->key);
	}
	free(j);
}

void acme_store_next_key_stage(struct acme *a, const char *why)
{
	EVP_PKEY_free(a->next_key); /* after an install, it is the key in use now */
	a->next_key = NULL;
	/* one write at a time (they share the temporary file); the key being written has not been
	 * used (an order meanwhile got a fresh one), so it is the next one */
	if (a->staging)
		return;
	struct stage_job *j = calloc(1, sizeof(*j));
	if (j == NULL || (j->key = acme_key_new()) == NULL || (j->pem = acme_key_pem(j->key, &j->len)) == NULL) {
		if (j != NULL)
			EVP_PKEY_free(j->key);
		free(j);
		log_warn("event=acme_next_key_failed reason=key error=\"cannot make a P-256 key\"");
		return;
	}
	j->a = a;
	j->why = why;
	snprintf(j->dir, sizeof(j->dir), "%s", a->dir_path);
	a->staging = true;
	worker_pool_submit(a->srv->workers, stage_work, stage_done, j);
}
