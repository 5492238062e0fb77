/* dkim_store.c — DKIM keys on disk (DATA_DIR/dkim) and the signer that uses the active ones. */
#include "keys/dkim_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/dkim_sign.h"
#include "util/log.h"

#define ACTIVE_FILE "active"
#define ACTIVE_MAX 8 /* lines read from an active file: one per key type is all that is written */

bool dkim_store_selector_valid(const char *s)
{
	size_t len = strlen(s), label = 0;
	if (len == 0 || len > DKIM_SELECTOR_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			   (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return label > 0 && s[len - 1] != '-';
}

/* The domain in the form the directory uses: lower case, a host name. */
static int store_domain(const char *domain, char out[DNS_HOST_SIZE], char *error_r, size_t error_size)
{
	size_t n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || n >= DNS_HOST_SIZE) {
		snprintf(error_r, error_size, "%s: not a domain name", domain);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ? domain[i] + 32 : domain[i]);
	out[n] = '\0';
	if (!dns_host_valid(out)) {
		snprintf(error_r, error_size, "%s: not a domain name", domain);
		return -1;
	}
	return 0;
}

static int store_dir(const char *data_dir, const char *domain, char *out, size_t size)
{
	return (size_t)snprintf(out, size, "%s/dkim/%s", data_dir, domain) < size ? 0 : -1;
}

/* ---- the active file ---- */

struct active_set {
	char sel[ACTIVE_MAX][DKIM_SELECTOR_MAX + 1];
	size_t n;
};

/* Reads dir/active; a missing file is an empty set. */
static int active_read(const char *dir, struct active_set *a, struct stat *st_r)
{
	char path[4096], line[256];
	memset(a, 0, sizeof(*a));
	snprintf(path, sizeof(path), "%s/" ACTIVE_FILE, dir);
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		if (st_r != NULL)
			memset(st_r, 0, sizeof(*st_r));
		return errno == ENOENT ? 0 : -1;
	}
	if (st_r != NULL && fstat(fileno(f), st_r) != 0)
		memset(st_r, 0, sizeof(*st_r));
	while (a->n < ACTIVE_MAX && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (dkim_store_selector_valid(line))
			snprintf(a->sel[a->n++], sizeof(a->sel[0]), "%.63s", line);
	}
	fclose(f);
	return 0;
}

static bool active_has(const struct active_set *a, const char *sel)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcasecmp(a->sel[i], sel) == 0)
			return true;
	return false;
}

/* Writes the set through a temporary file and rename(2), so a reader sees the old or the new one. */
static int active_write(const char *dir, const struct active_set *a, char *error_r, size_t error_size)
{
	char path[4096], tmp[4096];
	snprintf(path, sizeof(path), "%s/" ACTIVE_FILE, dir);
	/* one per thread: the signer's threads may write two domains' (or one's) files at once */
	snprintf(tmp, sizeof(tmp), "%s/." ACTIVE_FILE ".%ld.%ld", dir, (long)getpid(), (long)gettid());
	FILE *f = fopen(tmp, "we");
	if (f == NULL) {
		snprintf(error_r, error_size, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < a->n; i++)
		fprintf(f, "%s\n", a->sel[i]);
	/* which keys sign is no secret: the worker reads it, whoever owns the keys */
	bool ok = fflush(f) == 0 && fchmod(fileno(f), 0644) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		snprintf(error_r, error_size, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* ---- keys ---- */

/* The key of domain/selector from its file with this extension, read by load. */
static EVP_PKEY *store_key_load(const char *data_dir, const char *domain, const char *selector, const char *ext,
				enum dkim_key_error (*load)(const char *, EVP_PKEY **, const char **), char *error_r,
				size_t error_size)
{
	char dom[DNS_HOST_SIZE], dir[4096], path[4096 + 80];
	const char *err;
	EVP_PKEY *key = NULL;
	if (store_domain(domain, dom, error_r, error_size) != 0)
		return NULL;
	if (!dkim_store_selector_valid(selector)) {
		snprintf(error_r, error_size, "%s: not a valid selector", selector);
		return NULL;
	}
	if (store_dir(data_dir, dom, dir, sizeof(dir)) != 0) {
		snprintf(error_r, error_size, "the data directory path is too long");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s.%s", dir, selector, ext);
	if (load(path, &key, &err) != DKIM_KEY_OK) {
		snprintf(error_r, error_size, "%s: %s", path, err);
		return NULL;
	}
	return key;
}

EVP_PKEY *dkim_store_load(const char *data_dir, const char *domain, const char *selector, char *error_r,
			  size_t error_size)
{
	return store_key_load(data_dir, domain, selector, "pem", dkim_key_file_load, error_r, error_size);
}

EVP_PKEY *dkim_store_load_public(const char *data_dir, const char *domain, const char *selector, char *error_r,
				 size_t error_size)
{
	return store_key_load(data_dir, domain, selector, "pub", dkim_key_public_file_load, error_r, error_size);
}

static int selector_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The selectors of dir (its *.pem files), sorted; *n_r of them. */
static char **store_selectors(const char *dir, size_t *n_r)
{
	char **v = NULL;
	size_t n = 0;
	DIR *d = opendir(dir);
	*n_r = 0;
	if (d == NULL)
		return NULL;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 1000) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 4, ".pem") != 0)
			continue;
		char sel[DKIM_SELECTOR_MAX + 1];
		if (len - 4 > DKIM_SELECTOR_MAX)
			continue;
		memcpy(sel, e->d_name, len - 4);
		sel[len - 4] = '\0';
		if (!dkim_store_selector_valid(sel))
			continue;
		char **grown = realloc(v, (n + 1) * sizeof(*v));
		if (grown == NULL)
			break;
		v = grown;
		if ((v[n] = strdup(sel)) == NULL)
			break;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), selector_cmp);
	*n_r = n;
	return v;
}

static void selectors_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int list_domain(const char *data_dir, const char *dom, dkim_store_key_fn *fn, dkim_store_bad_fn *bad,
		       void *arg)
{
	char dir[4096], path[4096 + 80], err[512];
	struct active_set act;
	size_t n;
	if (store_dir(data_dir, dom, dir, sizeof(dir)) != 0)
		return -1;
	active_read(dir, &act, NULL);
	char **sel = store_selectors(dir, &n);
	for (size_t i = 0; i < n; i++) {
		EVP_PKEY *key = dkim_store_load_public(data_dir, dom, sel[i], err, sizeof(err));
		struct dkim_store_key k = {.active = active_has(&act, sel[i]), .pkey = key};
		snprintf(k.domain, sizeof(k.domain), "%s", dom);
		snprintf(k.selector, sizeof(k.selector), "%s", sel[i]);
		if (key == NULL || !dkim_key_type_get(key, &k.type)) {
			snprintf(path, sizeof(path), "%s/%s.pub", dir, sel[i]);
			if (bad != NULL)
				bad(path, key == NULL ? err : "not an RSA or Ed25519 key", arg);
			EVP_PKEY_free(key);
			continue;
		}
		k.bits = dkim_key_bits(key);
		fn(&k, arg);
		EVP_PKEY_free(key);
	}
	selectors_free(sel, n);
	return 0;
}

int dkim_store_list(const char *data_dir, const char *domain, dkim_store_key_fn *fn, dkim_store_bad_fn *bad,
		    void *arg, char *error_r, size_t error_size)
{
	char dom[DNS_HOST_SIZE], root[4096];
	if (domain != NULL) {
		if (store_domain(domain, dom, error_r, error_size) != 0)
			return -1;
		return list_domain(data_dir, dom, fn, bad, arg);
	}
	snprintf(root, sizeof(root), "%s/dkim", data_dir);
	size_t n;
	/* the domain directories, sorted: reuse the selector lister's sort on directory names */
	DIR *d = opendir(root);
	if (d == NULL)
		return errno == ENOENT ? 0 : (snprintf(error_r, error_size, "%s: %s", root, strerror(errno)), -1);
	char **names = NULL;
	n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 100000) {
		if (e->d_name[0] == '.' || !dns_host_valid(e->d_name))
			continue;
		char **grown = realloc(names, (n + 1) * sizeof(*names));
		if (grown == NULL || (grown[n] = strdup(e->d_name)) == NULL) {
			names = grown != NULL ? grown : names;
			break;
		}
		names = grown;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), selector_cmp);
	for (size_t i = 0; i < n; i++)
		list_domain(data_dir, names[i], fn, bad, arg);
	selectors_free(names, n);
	return 0;
}

static int mkdir_p2(const char *data_dir, const char *dom, char *dir, size_t size, char *error_r, size_t error_size)
{
	char root[4096];
	snprintf(root, sizeof(root), "%s/dkim", data_dir);
	if (store_dir(data_dir, dom, dir, size) != 0) {
		snprintf(error_r, error_size, "the data directory path is too long");
		return -1;
	}
	/* the private keys are mode 0600 (DESIGN.md §6); their public halves and the active list are
	 * read by the worker, which may be another user than the signer (signer.h) */
	if ((mkdir(root, 0755) != 0 && errno != EEXIST) || (mkdir(dir, 0755) != 0 && errno != EEXIST)) {
		snprintf(error_r, error_size, "%s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* The active set without the selector of type t, other than keep. */
static void active_drop_type(const char *data_dir, const char *dom, struct active_set *a, enum dkim_key_type t)
{
	struct active_set out = {0};
	char err[256];
	for (size_t i = 0; i < a->n; i++) {
		EVP_PKEY *k = dkim_store_load_public(data_dir, dom, a->sel[i], err, sizeof(err));
		enum dkim_key_type kt;
		bool same = k != NULL && dkim_key_type_get(k, &kt) && kt == t;
		EVP_PKEY_free(k);
		if (!same && k != NULL)
			memcpy(out.sel[out.n++], a->sel[i], sizeof(out.sel[0]));
	}
	*a = out;
}

static bool active_has_type(const char *data_dir, const char *dom, const struct active_set *a, enum dkim_key_type t)
{
	char err[256];
	for (size_t i = 0; i < a->n; i++) {
		EVP_PKEY *k = dkim_store_load_public(data_dir, dom, a->sel[i], err, sizeof(err));
		enum dkim_key_type kt;
		bool same = k != NULL && dkim_key_type_get(k, &kt) && kt == t;
		EVP_PKEY_free(k);
		if (same)
			return true;
	}
	return false;
}

int dkim_store_add(const char *data_dir, const char *domain, const char *selector, const EVP_PKEY *key,
		   bool *activated_r, char *error_r, size_t error_size)
{
	char dom[DNS_HOST_SIZE], dir[4096], path[4096 + 80];
	const char *err;
	enum dkim_key_type t;
	*activated_r = false;
	if (store_domain(domain, dom, error_r, error_size) != 0)
		return -1;
	if (!dkim_store_selector_valid(selector)) {
		snprintf(error_r, error_size, "%s: not a valid selector (letters, digits, '-', dots)", selector);
		return -1;
	}
	if (!dkim_key_type_get(key, &t)) {
		snprintf(error_r, error_size, "not an RSA or Ed25519 key");
		return -1;
	}
	if (mkdir_p2(data_dir, dom, dir, sizeof(dir), error_r, error_size) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.pem", dir, selector);
	if (dkim_key_file_write(key, path, &err) != DKIM_KEY_OK) {
		snprintf(error_r, error_size, "%s: %s", path, err);
		return -1;
	}
	/* the public half beside it: what a process without the key lists and checks */
	char pub[4096 + 80];
	snprintf(pub, sizeof(pub), "%s/%s.pub", dir, selector);
	if (dkim_key_public_file_write(key, pub, &err) != DKIM_KEY_OK) {
		snprintf(error_r, error_size, "%s: %s", pub, err);
		unlink(path);
		return -1;
	}
	struct active_set act;
	active_read(dir, &act, NULL);
	if (!active_has_type(data_dir, dom, &act, t) && act.n < ACTIVE_MAX) {
		snprintf(act.sel[act.n++], sizeof(act.sel[0]), "%s", selector);
		if (active_write(dir, &act, error_r, error_size) != 0)
			return -1;
		*activated_r = true;
	}
	return 0;
}

static int publish_one(const char *data_dir, const char *dom, const char *dir, const char *sel);

int dkim_store_activate(const char *data_dir, const char *domain, const char *selector, char *error_r,
			size_t error_size)
{
	char dom[DNS_HOST_SIZE], dir[4096];
	enum dkim_key_type t;
	/* a key copied in by hand (opendkim-genkey's) gets its public half here */
	if (dkim_store_selector_valid(selector) && store_domain(domain, dom, error_r, error_size) == 0 &&
	    store_dir(data_dir, dom, dir, sizeof(dir)) == 0)
		publish_one(data_dir, dom, dir, selector);
	EVP_PKEY *key = dkim_store_load_public(data_dir, domain, selector, error_r, error_size);
	if (key == NULL)
		return -1;
	bool typed = dkim_key_type_get(key, &t);
	EVP_PKEY_free(key);
	if (!typed) {
		snprintf(error_r, error_size, "not an RSA or Ed25519 key");
		return -1;
	}
	if (store_domain(domain, dom, error_r, error_size) != 0 ||
	    mkdir_p2(data_dir, dom, dir, sizeof(dir), error_r, error_size) != 0)
		return -1;
	struct active_set act;
	active_read(dir, &act, NULL);
	active_drop_type(data_dir, dom, &act, t);
	snprintf(act.sel[act.n++], sizeof(act.sel[0]), "%s", selector);
	return active_write(dir, &act, error_r, error_size);
}

/* ---- the store's files: public halves and ownership ---- */

/* Calls fn for every domain directory under data_dir/dkim. 0, or -1 with a sentence. */
static int each_domain(const char *data_dir, int (*fn)(const char *data_dir, const char *dom, void *arg), void *arg,
		       char *error_r, size_t error_size)
{
	char root[4096];
	snprintf(root, sizeof(root), "%s/dkim", data_dir);
	DIR *d = opendir(root);
	if (d == NULL)
		return errno == ENOENT ? 0 : (snprintf(error_r, error_size, "%s: %s", root, strerror(errno)), -1);
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !dns_host_valid(e->d_name))
			continue;
		if (fn(data_dir, e->d_name, arg) != 0)
			rc = -1;
	}
	closedir(d);
	if (rc != 0)
		snprintf(error_r, error_size, "%s: some key files could not be brought up to date (see the log)", root);
	return rc;
}

/* Writes dir/sel.pub from dir/sel.pem unless it is there: 1 written, 0 there already, -1 (logged). */
static int publish_one(const char *data_dir, const char *dom, const char *dir, const char *sel)
{
	char pub[4096 + 80], err[512];
	const char *e = err;
	snprintf(pub, sizeof(pub), "%s/%s.pub", dir, sel);
	struct stat st;
	/* stat, not access(2): the signer's seccomp list has the one and not the other */
	if (stat(pub, &st) == 0 || errno != ENOENT)
		return 0;
	EVP_PKEY *key = dkim_store_load(data_dir, dom, sel, err, sizeof(err));
	int rc = key != NULL && dkim_key_public_file_write(key, pub, &e) == DKIM_KEY_OK ? 1 : -1;
	EVP_PKEY_free(key);
	if (rc < 0)
		log_warn("event=dkim_public_key_failed path=%s error=\"%s\"", pub, e);
	return rc;
}

static int publish_domain(const char *data_dir, const char *dom, void *arg)
{
	char dir[4096];
	size_t n, *written = arg;
	int rc = 0;
	if (store_dir(data_dir, dom, dir, sizeof(dir)) != 0)
		return -1;
	char **sel = store_selectors(dir, &n);
	for (size_t i = 0; i < n; i++) {
		int r = publish_one(data_dir, dom, dir, sel[i]);
		if (r < 0)
			rc = -1;
		else
			*written += (size_t)r;
	}
	selectors_free(sel, n);
	return rc;
}

int dkim_store_publish(const char *data_dir, size_t *written_r, char *error_r, size_t error_size)
{
	*written_r = 0;
	return each_domain(data_dir, publish_domain, written_r, error_r, error_size);
}

struct give {
	uid_t uid;
	gid_t gid;
};

/* path to uid/gid with mode, never through a link. 0, or -1 (logged). */
static int give_one(const char *path, const struct give *g, mode_t mode)
{
	if (fchownat(AT_FDCWD, path, g->uid, g->gid, AT_SYMLINK_NOFOLLOW) != 0 || chmod(path, mode) != 0) {
		log_warn("event=dkim_store_give_failed path=%s error=\"%s\"", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int give_domain(const char *data_dir, const char *dom, void *arg)
{
	const struct give *g = arg;
	char dir[4096], path[4096 + 300];
	if (store_dir(data_dir, dom, dir, sizeof(dir)) != 0)
		return -1;
	struct stat st;
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return 0; /* not a directory of ours */
	int rc = give_one(dir, g, 0755);
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.' || len < 4)
			continue;
		bool secret = strcmp(e->d_name + len - 4, ".pem") == 0;
		if (!secret && strcmp(e->d_name + len - 4, ".pub") != 0 && strcmp(e->d_name, ACTIVE_FILE) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (give_one(path, g, secret ? 0600 : 0644) != 0)
			rc = -1;
	}
	if (d != NULL)
		closedir(d);
	return rc;
}

int dkim_store_give(const char *data_dir, uid_t uid, gid_t gid, char *error_r, size_t error_size)
{
	char root[4096];
	struct give g = {uid, gid};
	snprintf(root, sizeof(root), "%s/dkim", data_dir);
	if ((mkdir(root, 0755) != 0 && errno != EEXIST) || give_one(root, &g, 0755) != 0) {
		snprintf(error_r, error_size, "%s: %s", root, strerror(errno));
		return -1;
	}
	return each_domain(data_dir, give_domain, &g, error_r, error_size);
}

/* ---- the signer ---- */

struct signer_domain {
	struct signer_domain *next;
	char domain[DNS_HOST_SIZE];
	struct timespec mtime; /* of the active file when these keys were read */
	ino_t ino;
	EVP_PKEY *keys[2];     /* Ed25519 first, then RSA; NULL when none */
	char selectors[2][DKIM_SELECTOR_MAX + 1];
};

struct dkim_signer {
	char *data_dir;
	pthread_mutex_t mu; /* guards domains; signing itself runs outside it on refcounted keys */
	struct signer_domain *domains;
};

struct dkim_signer *dkim_signer_new(const char *data_dir)
{
	struct dkim_signer *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->data_dir = strdup(data_dir)) == NULL) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

static void signer_domain_clear(struct signer_domain *d)
{
	for (int i = 0; i < 2; i++) {
		EVP_PKEY_free(d->keys[i]);
		d->keys[i] = NULL;
		d->selectors[i][0] = '\0';
	}
}

void dkim_signer_free(struct dkim_signer *s)
{
	if (s == NULL)
		return;
	while (s->domains != NULL) {
		struct signer_domain *d = s->domains;
		s->domains = d->next;
		signer_domain_clear(d);
		free(d);
	}
	pthread_mutex_destroy(&s->mu);
	free(s->data_dir);
	free(s);
}

/* Whether st is the active file d's keys were read from: it is replaced by rename, so a new inode
 * or time means new contents. */
static bool signer_file_same(const struct stat *st, const struct signer_domain *d)
{
	return d->ino != 0 && st->st_ino == d->ino && st->st_mtim.tv_sec == d->mtime.tv_sec &&
	       st->st_mtim.tv_nsec == d->mtime.tv_nsec;
}

/* Reads the domain's active keys again when its active file changed. Under s->mu. */
static void signer_refresh(struct dkim_signer *s, struct signer_domain *d)
{
	char dir[4096], err[512];
	struct active_set act;
	struct stat st;
	store_dir(s->data_dir, d->domain, dir, sizeof(dir));
	/* one stat(2) a message while nothing changed; the file is opened and read only then */
	char path[4096 + sizeof(ACTIVE_FILE) + 1];
	snprintf(path, sizeof(path), "%s/" ACTIVE_FILE, dir);
	if (stat(path, &st) == 0 && signer_file_same(&st, d))
		return;
	if (active_read(dir, &act, &st) != 0)
		return; /* unreadable now: keep what we had */
	if (signer_file_same(&st, d))
		return; /* the stat failed for a moment, the file had not changed */
	signer_domain_clear(d);
	d->ino = st.st_ino;
	d->mtime = st.st_mtim;
	for (size_t i = 0; i < act.n; i++) {
		EVP_PKEY *k = dkim_store_load(s->data_dir, d->domain, act.sel[i], err, sizeof(err));
		enum dkim_key_type t;
		if (k == NULL || !dkim_key_type_get(k, &t)) {
			EVP_PKEY_free(k);
			continue;
		}
		int slot = t == DKIM_KEY_ED25519 ? 0 : 1;
		EVP_PKEY_free(d->keys[slot]);
		d->keys[slot] = k;
		snprintf(d->selectors[slot], sizeof(d->selectors[slot]), "%s", act.sel[i]);
	}
}

/* The domain's entry, made when first asked for and refreshed. Under s->mu. NULL when out of memory. */
static struct signer_domain *signer_domain_get(struct dkim_signer *s, const char *dom)
{
	struct signer_domain *d = s->domains;
	while (d != NULL && strcmp(d->domain, dom) != 0)
		d = d->next;
	if (d == NULL && (d = calloc(1, sizeof(*d))) != NULL) {
		snprintf(d->domain, sizeof(d->domain), "%s", dom);
		d->next = s->domains;
		s->domains = d;
	}
	if (d != NULL)
		signer_refresh(s, d);
	return d;
}

int dkim_signer_keys(struct dkim_signer *s, const char *domain, struct dkim_signer_key out[DKIM_SIGNER_KEYS_MAX])
{
	char dom[DNS_HOST_SIZE], err[256];
	if (store_domain(domain, dom, err, sizeof(err)) != 0)
		return 0; /* not a domain we could have keys for */
	int n = 0;
	pthread_mutex_lock(&s->mu);
	struct signer_domain *d = signer_domain_get(s, dom);
	for (int i = 0; d != NULL && i < 2; i++) {
		enum dkim_key_type t;
		if (d->keys[i] == NULL || !dkim_key_type_get(d->keys[i], &t))
			continue;
		out[n].alg = t == DKIM_KEY_RSA ? DKIM_ALG_RSA_SHA256 : DKIM_ALG_ED25519_SHA256;
		memcpy(out[n].selector, d->selectors[i], sizeof(out[n].selector));
		n++;
	}
	pthread_mutex_unlock(&s->mu);
	return d == NULL ? -1 : n;
}

int dkim_signer_sign_digest(struct dkim_signer *s, const char *domain, const char *selector,
			    const unsigned char digest[DKIM_DIGEST_SIZE], unsigned char *sig, size_t *sig_len,
			    char *error_r, size_t error_size)
{
	char dom[DNS_HOST_SIZE];
	EVP_PKEY *key = NULL;
	if (store_domain(domain, dom, error_r, error_size) != 0)
		return -1;
	pthread_mutex_lock(&s->mu);
	struct signer_domain *d = signer_domain_get(s, dom);
	for (int i = 0; d != NULL && i < 2; i++)
		if (d->keys[i] != NULL && strcmp(d->selectors[i], selector) == 0 && EVP_PKEY_up_ref(d->keys[i]) == 1)
			key = d->keys[i];
	pthread_mutex_unlock(&s->mu);
	if (key == NULL) {
		/* only an active key signs: one just replaced is asked for again by the next message */
		snprintf(error_r, error_size, "%s._domainkey.%s is not an active key", selector, dom);
		return -1;
	}
	bool ok = dkim_key_sign_digest(key, digest, DKIM_DIGEST_SIZE, sig, sig_len);
	EVP_PKEY_free(key);
	if (!ok) {
		snprintf(error_r, error_size, "%s._domainkey.%s cannot sign", selector, dom);
		return -1;
	}
	return 0;
}
