/* cli_init.c — `mailwerk init`: a working development setup in one directory: a self-signed
 * certificate, the accounts database with one local domain and a demo user, and mailwerk.conf.
 * It never overwrites an existing setup, and a failure part-way removes what this run created, so
 * running it again just works. */
#include "cli/cli_common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "auth/dkim_key.h"
#include "keys/dkim_store.h"
#include "mailbox/users.h"
#include "net/http_url.h"
#include "util/addr.h"
#include "util/identity.h"

#define CLI_INIT_DEFAULT_DIR "./var"
#define CLI_INIT_DEFAULT_DOMAIN "mailwerk.test"
/* X.520 ub-common-name: OpenSSL refuses a longer CN */
#define CLI_INIT_CN_MAX 64
/* RFC 8555 §7.1.1: Let's Encrypt's production directory, what --acme asks unless told otherwise */
#define CLI_INIT_ACME_DIRECTORY "https://acme-v02.api.letsencrypt.org/directory"
#define CLI_INIT_CERT_DAYS 3652 /* ten years, leap days included */

struct cli_init_paths {
	char dir[PATH_MAX]; /* absolute, after realpath */
	char tls[PATH_MAX];
	char key[PATH_MAX];
	char cert[PATH_MAX];
	char db[PATH_MAX];
	char conf[PATH_MAX];
	char conf_dir[PATH_MAX]; /* where conf is: dir, or the directory --config names */
	char conf_tmp[PATH_MAX];
};

/* What this run created, so a failure can remove exactly that and nothing that was there before. */
struct cli_init_undo {
	char *dirs[64]; /* created by the mkdir -p walk, in creation order (paths as given) */
	size_t n_dirs;
	bool tls_dir, key, cert, db, conf_tmp, conf;
	bool dkim; /* DIR/dkim/<domain>/ with the first key */
	char dkim_selector[DKIM_SELECTOR_MAX + 1];
	char dkim_domain[ADDR_DOMAIN_MAX + 1];
};

static void cli_init_usage(FILE *out)
{
	fputs("usage: mailwerk init [--dir DIR] [--config FILE] [--domain DOMAIN] [--hostname HOST] [--user USER]\n"
	      "                     [--acme [--acme-contact ADDRESS] [--acme-directory URL]]\n"
	      "\n"
	      "Creates a development setup in DIR: mailwerk.conf, mailwerk.db with DOMAIN as a local domain\n"
	      "and a user demo@DOMAIN, and a self-signed certificate for HOST in DIR/tls. Refuses to touch a\n"
	      "directory that already holds mailwerk.conf or mailwerk.db.\n"
	      "\n"
	      "      --dir DIR          where to create it (default " CLI_INIT_DEFAULT_DIR ")\n"
	      "      --config FILE      write the configuration to FILE instead of DIR/mailwerk.conf (an installed\n"
	      "                         server: --dir /var/lib/mailwerk --config /etc/mailwerk/mailwerk.conf);\n"
	      "                         its directory must exist, and with --user FILE is given to USER's group\n"
	      "      --domain DOMAIN    the first local domain (default " CLI_INIT_DEFAULT_DOMAIN ")\n"
	      "      --hostname HOST    the server's name, for EHLO and the certificate (default mail.DOMAIN)\n"
	      "      --user USER        serve switches to USER after binding its ports; DIR is given to USER\n"
	      "      --acme             get the certificate for HOST by ACME (RFC 8555): writes an [acme] section\n"
	      "                         (HTTP-01 on the http listener, which must then be port 80); the\n"
	      "                         self-signed certificate serves until the first one is installed\n"
	      "      --acme-contact ADDRESS  the account's contact for the CA's expiry notices (RFC 8555 §7.3)\n"
	      "      --acme-directory URL    the CA (default Let's Encrypt's production directory,\n"
	      "                         " CLI_INIT_ACME_DIRECTORY "); setting one agrees to its terms\n"
	      "  -h, --help             show this help\n",
	      out);
}

/* One line with the reason OpenSSL queued, for cli_error. Clears the queue. */
static const char *cli_init_ssl_error(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();
	if (e == 0)
		snprintf(buf, size, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

static bool cli_init_path_join(char out[PATH_MAX], const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	if (n < 0 || n >= PATH_MAX) {
		cli_error("%s/%s: path too long", dir, name);
		return false;
	}
	return true;
}

/* Refuses when DIR already holds a setup. A missing DIR (or parent) is fine: nothing to overwrite. */
static bool cli_init_check_absent(const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (!cli_init_path_join(path, dir, name))
		return false;
	struct stat st;
	if (lstat(path, &st) == 0) {
		cli_error("%s already exists; init does not overwrite a setup (remove it, or choose another --dir)",
			  path);
		return false;
	}
	if (errno != ENOENT && errno != ENOTDIR) {
		cli_error("%s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

/* mkdir -p with mode 0750, recording each directory it creates. */
static bool cli_init_mkdirs(const char *dir, struct cli_init_undo *undo)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof(path)) {
		cli_error("--dir: %s", len ? "path too long" : "empty path");
		return false;
	}
	memcpy(path, dir, len + 1);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';

	for (size_t i = 1; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		if (i < len && path[i - 1] == '/')
			continue; /* "a//b" */
		char saved = path[i];
		path[i] = '\0';
		if (mkdir(path, 0750) == 0) {
			if (undo->n_dirs == sizeof(undo->dirs) / sizeof(undo->dirs[0]) ||
			    !(undo->dirs[undo->n_dirs] = strdup(path))) {
				rmdir(path);
				cli_error("%s: too many directories to create", dir);
				return false;
			}
			undo->n_dirs++;
			/* exactly 0750 even under a loose umask: the group is the server's, others get nothing */
			if (chmod(path, 0750) != 0) {
				cli_error("%s: %s", path, strerror(errno));
				return false;
			}
		} else {
			struct stat st;
			if (errno != EEXIST || stat(path, &st) != 0) {
				cli_error("cannot create %s: %s", path, strerror(errno));
				return false;
			}
			if (!S_ISDIR(st.st_mode)) {
				cli_error("%s exists and is not a directory", path);
				return false;
			}
		}
		path[i] = saved;
	}
	return true;
}

/* Writes a new file (never an existing one: O_EXCL), with exactly mode, and syncs it. */
static bool cli_init_file_create(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		cli_error("cannot create %s: %s", path, strerror(errno));
		return false;
	}
	const char *p = data;
	bool ok = fchmod(fd, mode) == 0;
	while (ok && len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = false;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (ok && fsync(fd) != 0)
		ok = false;
	if (!ok)
		cli_error("cannot write %s: %s", path, strerror(errno));
	if (close(fd) != 0 && ok) {
		cli_error("cannot write %s: %s", path, strerror(errno));
		ok = false;
	}
	return ok;
}

/* So the directory entries of files just created survive a crash too. */
static bool cli_init_dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		cli_error("cannot sync %s: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	return true;
}

static bool cli_init_ext_add(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	if (!ext)
		return false;
	bool ok = X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* A self-signed X.509v3 server certificate for host (RFC 5280): P-256 key, random 128-bit serial,
 * CN and subjectAltName = host, not a CA, good for TLS server authentication only. */
static X509 *cli_init_cert_make(const char *host, EVP_PKEY *pkey)
{
	X509 *x = X509_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	unsigned char rnd[16] = { 0 };
	char san[ADDR_DOMAIN_MAX + 8];
	X509V3_CTX ctx;
	bool ok = false;
	if (!x || X509_set_version(x, X509_VERSION_3) != 1)
		goto out;

	/* RFC 5280 §4.1.2.2: positive, at most 20 octets; random so no two inits collide in a client's
	 * cache. The top bit is cleared (positive) and the next one set (always 16 octets, never 0). */
	if (RAND_bytes(rnd, (int)sizeof(rnd)) != 1)
		goto out;
	rnd[0] = (unsigned char)((rnd[0] & 0x7f) | 0x40);
	if (!(bn = BN_bin2bn(rnd, (int)sizeof(rnd), NULL)) || !(serial = BN_to_ASN1_INTEGER(bn, NULL)) ||
	    X509_set_serialNumber(x, serial) != 1)
		goto out;

	/* an hour back, so a client whose clock is a little behind still accepts it */
	if (!X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), CLI_INIT_CERT_DAYS, -3600, NULL))
		goto out;
	if (X509_set_pubkey(x, pkey) != 1)
		goto out;
	X509_NAME *name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)host, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1)
		goto out;

	snprintf(san, sizeof(san), "DNS:%s", host);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	/* RFC 6125: clients match the name against subjectAltName, the CN is only for people */
	if (!cli_init_ext_add(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
	    !cli_init_ext_add(x, &ctx, NID_key_usage, "critical,digitalSignature") ||
	    !cli_init_ext_add(x, &ctx, NID_ext_key_usage, "serverAuth") ||
	    !cli_init_ext_add(x, &ctx, NID_subject_alt_name, san))
		goto out;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto out;
	ok = true;
out:
	OPENSSL_cleanse(rnd, sizeof(rnd));
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Writes what a BIO collected to a new file; the BIO's buffer is wiped (it may hold a private key). */
static bool cli_init_bio_save(BIO *bio, const char *path, mode_t mode)
{
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);
	if (len <= 0 || !data) {
		cli_error("%s: nothing to write", path);
		return false;
	}
	bool ok = cli_init_file_create(path, data, (size_t)len, mode);
	OPENSSL_cleanse(data, (size_t)len);
	return ok;
}

static bool cli_init_tls_write(const struct cli_init_paths *p, const char *host, struct cli_init_undo *undo)
{
	char err[256];
	bool ok = false;
	X509 *x = NULL;
	BIO *key_bio = NULL, *cert_bio = NULL;
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	if (!pkey) {
		cli_error("cannot generate a P-256 key: %s", cli_init_ssl_error(err, sizeof(err)));
		goto out;
	}
	x = cli_init_cert_make(host, pkey);
	if (!x) {
		cli_error("cannot make the certificate: %s", cli_init_ssl_error(err, sizeof(err)));
		goto out;
	}
	key_bio = BIO_new(BIO_s_mem());
	cert_bio = BIO_new(BIO_s_mem());
	if (!key_bio || !cert_bio || PEM_write_bio_PrivateKey(key_bio, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cert_bio, x) != 1) {
		cli_error("cannot encode the key and certificate: %s", cli_init_ssl_error(err, sizeof(err)));
		goto out;
	}
	/* The key first, and only readable by its owner: the server reads it before dropping privileges. */
	if (!cli_init_bio_save(key_bio, p->key, 0600))
		goto out;
	undo->key = true;
	if (!cli_init_bio_save(cert_bio, p->cert, 0644))
		goto out;
	undo->cert = true;
	ok = cli_init_dir_sync(p->tls);
out:
	BIO_free(key_bio);
	BIO_free(cert_bio);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return ok;
}

/* The local domain and demo@domain with a fresh password, returned in password_r for the summary. */
static bool cli_init_db_create(const struct cli_init_paths *p, const char *domain, char *password_r, size_t size,
			       struct cli_init_undo *undo)
{
	const char *err = NULL;
	/* users_open creates the file before it can fail, so mark it for removal first */
	undo->db = true;
	struct users *u = users_open(p->dir, &err);
	if (!u) {
		cli_error("%s: %s", p->db, err);
		return false;
	}
	bool ok = false;
	char address[ADDR_TEXT_MAX + 1];
	char hash[USERS_HASH_MAX];
	snprintf(address, sizeof(address), "demo@%s", domain);
	if (users_domain_add(u, domain, &err) != RESULT_OK) {
		cli_error("%s", err);
	} else if (users_password_generate(password_r, size) != RESULT_OK) {
		cli_error("cannot generate a password: the random number generator failed");
	} else if (users_hash_password(password_r, hash) != RESULT_OK) {
		cli_error("cannot hash the password (libcrypt failed)");
	} else if (users_user_add(u, address, hash, &err) != RESULT_OK) {
		cli_error("%s", err);
	} else {
		/* RFC 5321 §4.5.1: every domain must take mail for postmaster */
		char postmaster[ADDR_TEXT_MAX + 1];
		snprintf(postmaster, sizeof(postmaster), "postmaster@%s", domain);
		if (users_alias_add(u, postmaster, address, &err) != RESULT_OK)
			cli_error("%s", err);
		else
			ok = true;
	}
	users_close(u);
	return ok;
}

static bool cli_init_conf_write(struct cli_init_paths *p, const char *host, const char *user, const char *acme,
				const char *acme_contact, struct cli_init_undo *undo)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	if (!m) {
		cli_error("out of memory");
		return false;
	}
	fprintf(m,
		"# mailwerk configuration. Every key is documented in the README (\"Configuration\").\n"
		"\n"
		"[server]\n"
		"hostname = %s\n"
		"data_dir = %s\n"
		"%s%s\n"
		"max_connections = 1000\n"
		"max_connections_per_ip = 50\n"
		"\n"
		"[listen]\n"
		"# name = address[, address ...]; IPv6 as [::1]:port; an empty value disables that listener.\n"
		"# Production ports are 25 (smtp), 587 (submission), 465 (submissions), 110 (pop3) and 995 (pop3s);\n"
		"# http/https serve the Resend-compatible API (keys: mailwerk apikey create NAME).\n"
		"smtp = 127.0.0.1:2525\n"
		"submission = 127.0.0.1:2587\n"
		"submissions = 127.0.0.1:2465\n"
		"pop3 = 127.0.0.1:2110\n"
		"pop3s = 127.0.0.1:2995\n"
		"http = 127.0.0.1:2080\n"
		"https =\n"
		"\n"
		"[tls]\n"
		"cert = %s\n"
		"key = %s\n"
		"\n"
		"[smtp]\n"
		"max_message_size = 25M\n"
		"max_recipients = 100\n"
		"# Only ever honoured on loopback listeners: lets AUTH run without TLS for local development.\n"
		"allow_insecure_auth = no\n"
		"command_timeout = 5m\n"
		"data_timeout = 10m\n"
		"max_errors = 10\n"
		"\n"
		"[pop3]\n"
		"# RFC 1939 asks for at least 10 minutes before an idle session is logged out.\n"
		"idle_timeout = 10m\n",
		host, p->dir, user ? "user = " : "# In production, serve binds its ports as root and then runs as this user:\n# user = mailwerk", user ? user : "", p->cert, p->key);
	if (acme != NULL)
		fprintf(m,
			"\n"
			"[acme]\n"
			"# The certificate for [server] hostname comes from this CA (RFC 8555) and is renewed at two\n"
			"# thirds of its lifetime; [tls] cert serves until the first one is installed. Setting a\n"
			"# directory agrees to the CA's terms of service. The CA must reach this server on port 80\n"
			"# ([listen] http = 0.0.0.0:80) for http-01, or on 443 ([listen] https) for tls-alpn-01.\n"
			"directory = %s\n"
			"contact = %s\n"
			"challenge = http-01\n",
			acme, acme_contact != NULL ? acme_contact : "");
	if (fclose(m) != 0) {
		free(text);
		cli_error("out of memory");
		return false;
	}

	/* Write under a temporary name and rename, so mailwerk.conf either does not exist or is whole:
	 * its presence is what marks a finished setup. */
	bool ok = false;
	int fd = mkostemp(p->conf_tmp, O_CLOEXEC);
	if (fd < 0) {
		cli_error("cannot create a file in %s: %s", p->dir, strerror(errno));
		goto out;
	}
	undo->conf_tmp = true;
	const char *q = text;
	size_t left = len;
	bool written = fchmod(fd, 0640) == 0;
	while (written && left > 0) {
		ssize_t n = write(fd, q, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			written = false;
		else {
			q += n;
			left -= (size_t)n;
		}
	}
	if (!written || fsync(fd) != 0) {
		cli_error("cannot write %s: %s", p->conf_tmp, strerror(errno));
		close(fd);
		goto out;
	}
	if (close(fd) != 0) {
		cli_error("cannot write %s: %s", p->conf_tmp, strerror(errno));
		goto out;
	}
	/* RENAME_NOREPLACE: a mailwerk.conf that appeared since the check is not replaced. Some file
	 * systems do not support the flag; the check at the start covers those. */
	if (renameat2(AT_FDCWD, p->conf_tmp, AT_FDCWD, p->conf, RENAME_NOREPLACE) != 0) {
		if ((errno != EINVAL && errno != ENOSYS) || rename(p->conf_tmp, p->conf) != 0) {
			cli_error("cannot rename %s to %s: %s", p->conf_tmp, p->conf, strerror(errno));
			goto out;
		}
	}
	undo->conf_tmp = false;
	undo->conf = true;
	ok = cli_init_dir_sync(p->conf_dir);
out:
	free(text);
	return ok;
}

/* Removes what this run created, newest first. */
static void cli_init_undo_run(const struct cli_init_paths *p, struct cli_init_undo *undo)
{
	if (undo->conf)
		unlink(p->conf);
	if (undo->dkim) {
		char path[PATH_MAX + 512];
		snprintf(path, sizeof(path), "%s/dkim/%s/%s.pem", p->dir, undo->dkim_domain, undo->dkim_selector);
		unlink(path);
		snprintf(path, sizeof(path), "%s/dkim/%s/active", p->dir, undo->dkim_domain);
		unlink(path);
		snprintf(path, sizeof(path), "%s/dkim/%s", p->dir, undo->dkim_domain);
		rmdir(path);
		snprintf(path, sizeof(path), "%s/dkim", p->dir);
		rmdir(path);
	}
	if (undo->conf_tmp)
		unlink(p->conf_tmp);
	if (undo->db) {
		static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
		char path[PATH_MAX + 16];
		for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
			snprintf(path, sizeof(path), "%s%s", p->db, suffixes[i]);
			unlink(path);
		}
	}
	if (undo->cert)
		unlink(p->cert);
	if (undo->key)
		unlink(p->key);
	if (undo->tls_dir)
		rmdir(p->tls);
	for (size_t i = undo->n_dirs; i-- > 0;)
		rmdir(undo->dirs[i]);
}

static void cli_init_undo_free(struct cli_init_undo *undo)
{
	for (size_t i = 0; i < undo->n_dirs; i++)
		free(undo->dirs[i]);
	undo->n_dirs = 0;
}

/* Validates a domain name for init: ASCII only (it ends up in a certificate, which needs A-labels),
 * no address literal. Folds it to lower case into out. */
static bool cli_init_name_check(const char *what, const char *s, char out[ADDR_DOMAIN_MAX + 1])
{
	const char *err = NULL;
	size_t len = strlen(s);
	if (addr_parse_domain(s, len, 0, &err) != ADDR_OK) {
		cli_error("%s \"%s\": %s%s", what, s, err ? err : "not a domain name",
			  addr_parse_domain(s, len, ADDR_ALLOW_UTF8, &err) == ADDR_OK ? " (use the xn-- form)" : "");
		return false;
	}
	if (s[0] == '[') {
		cli_error("%s \"%s\": an address literal, not a domain name", what, s);
		return false;
	}
	for (size_t i = 0; i <= len; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	return true;
}

/* inih trims values and strips " ;" comments, so a path with those could not be read back as written. */
static bool cli_init_path_ini_safe(const char *path)
{
	size_t len = strlen(path);
	if (len == 0 || path[len - 1] == ' ' || path[len - 1] == '\t')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c < 0x20 || c == 0x7f || c == ';' || c == '#')
			return false;
	}
	return true;
}

/* Hands everything init made to the server's user, who must write the databases and read the key
 * and configuration again on reload. */
/* The domain's first DKIM key (RSA 2048, RFC 8301 §3.2), signing at once: authenticated mail is then
 * signed from the first message, and `mailwerk dns records` prints the record to publish. The
 * selector names the month, so that a rotation later gets a new one. */
static bool cli_init_dkim(const struct cli_init_paths *p, const char *domain, struct cli_init_undo *undo)
{
	EVP_PKEY *key = NULL;
	const char *err;
	char e[512];
	bool activated;
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	snprintf(undo->dkim_selector, sizeof(undo->dkim_selector), "mw%04d%02d", tm.tm_year + 1900, tm.tm_mon + 1);
	snprintf(undo->dkim_domain, sizeof(undo->dkim_domain), "%s", domain);
	if (dkim_key_generate(DKIM_KEY_RSA, 0, &key, &err) != DKIM_KEY_OK) {
		cli_error("cannot make a DKIM key: %s", err);
		return false;
	}
	undo->dkim = true;
	bool ok = dkim_store_add(p->dir, domain, undo->dkim_selector, key, &activated, e, sizeof(e)) == 0;
	if (!ok)
		cli_error("%s", e);
	EVP_PKEY_free(key);
	return ok;
}

static bool cli_init_give(const struct cli_init_paths *p, const struct cli_init_undo *undo, uid_t uid, gid_t gid)
{
	char dkim_dir[PATH_MAX + 8], dkim_domain[PATH_MAX + 300], dkim_key[PATH_MAX + 400], dkim_active[PATH_MAX + 310];
	snprintf(dkim_dir, sizeof(dkim_dir), "%s/dkim", p->dir);
	snprintf(dkim_domain, sizeof(dkim_domain), "%s/%s", dkim_dir, undo->dkim_domain);
	snprintf(dkim_key, sizeof(dkim_key), "%s/%s.pem", dkim_domain, undo->dkim_selector);
	snprintf(dkim_active, sizeof(dkim_active), "%s/active", dkim_domain);
	const char *keys[] = {dkim_dir, dkim_domain, dkim_key, dkim_active};
	for (size_t i = 0; undo->dkim && i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (chown(keys[i], uid, gid) != 0) {
			cli_error("cannot give %s to the user: %s", keys[i], strerror(errno));
			return false;
		}
	}
	char wal[PATH_MAX + 8], shm[PATH_MAX + 8];
	snprintf(wal, sizeof(wal), "%s-wal", p->db);
	snprintf(shm, sizeof(shm), "%s-shm", p->db);
	const char *paths[] = {p->dir, p->tls, p->key, p->cert, p->db, wal, shm};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (chown(paths[i], uid, gid) != 0 && !(i >= 5 && errno == ENOENT)) {
			cli_error("cannot give %s to the user: %s", paths[i], strerror(errno));
			return false;
		}
	}
	/* a configuration outside DIR (/etc/mailwerk) stays its owner's: the user reads it (a reload
	 * reads it again after the switch) through its group, and cannot change it */
	bool conf_in_dir = strcmp(p->conf_dir, p->dir) == 0;
	if (chown(p->conf, conf_in_dir ? uid : (uid_t)-1, gid) != 0) {
		cli_error("cannot give %s to the user: %s", p->conf, strerror(errno));
		return false;
	}
	return true;
}

int cli_init_main(int argc, char **argv)
{
	enum { OPT_DIR = 256, OPT_CONFIG, OPT_DOMAIN, OPT_HOSTNAME, OPT_USER, OPT_ACME, OPT_ACME_CONTACT, OPT_ACME_DIRECTORY };
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, OPT_DIR },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "domain", required_argument, NULL, OPT_DOMAIN },
		{ "hostname", required_argument, NULL, OPT_HOSTNAME },
		{ "user", required_argument, NULL, OPT_USER },
		{ "acme", no_argument, NULL, OPT_ACME },
		{ "acme-contact", required_argument, NULL, OPT_ACME_CONTACT },
		{ "acme-directory", required_argument, NULL, OPT_ACME_DIRECTORY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = CLI_INIT_DEFAULT_DIR, *domain_arg = CLI_INIT_DEFAULT_DOMAIN, *host_arg = NULL, *user = NULL,
		   *config = NULL, *acme_contact = NULL, *acme_directory = NULL;
	bool acme = false;
	optind = 0; /* glibc: 0 re-initialises, so a second call in one process parses afresh */
	opterr = 0; /* our own one-line errors instead of getopt's */
	int c;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DIR:
			dir = optarg;
			break;
		case OPT_CONFIG:
			config = optarg;
			break;
		case OPT_DOMAIN:
			domain_arg = optarg;
			break;
		case OPT_HOSTNAME:
			host_arg = optarg;
			break;
		case OPT_USER:
			user = optarg;
			break;
		case OPT_ACME:
			acme = true;
			break;
		case OPT_ACME_CONTACT:
			acme_contact = optarg;
			break;
		case OPT_ACME_DIRECTORY:
			acme_directory = optarg;
			break;
		case 'h':
			cli_init_usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_option_error("init", c, argv);
		}
	}
	if (optind < argc) {
		cli_error("unexpected argument \"%s\"; see: mailwerk init --help", argv[optind]);
		return CLI_EXIT_USAGE;
	}

	if ((acme_contact != NULL || acme_directory != NULL) && !acme) {
		cli_error("--acme-contact and --acme-directory go with --acme");
		return CLI_EXIT_USAGE;
	}
	if (acme_contact != NULL) {
		struct addr a;
		const char *aerr;
		if (addr_parse_mailbox(acme_contact, strlen(acme_contact), 0, &a, &aerr) != ADDR_OK) {
			cli_error("--acme-contact \"%s\": %s", acme_contact, aerr);
			return CLI_EXIT_USAGE;
		}
	}
	if (acme && acme_directory == NULL)
		acme_directory = CLI_INIT_ACME_DIRECTORY;
	if (acme) {
		struct http_url u;
		const char *uerr = NULL;
		if (http_url_parse(acme_directory, strlen(acme_directory), &u, &uerr) != HTTP_URL_OK || !u.https) {
			cli_error("--acme-directory \"%s\": %s", acme_directory, uerr != NULL ? uerr : "not an https URL");
			return CLI_EXIT_USAGE;
		}
	}

	char domain[ADDR_DOMAIN_MAX + 1], host[ADDR_DOMAIN_MAX + 1];
	if (!cli_init_name_check("--domain", domain_arg, domain))
		return CLI_EXIT_USAGE;
	/* "demo@" + domain must still be a valid address (RFC 5321 §4.5.3.1) */
	if (strlen(domain) + 5 > ADDR_TEXT_MAX) {
		cli_error("--domain \"%s\": too long for an address", domain_arg);
		return CLI_EXIT_USAGE;
	}
	char default_host[ADDR_DOMAIN_MAX + 8];
	if (!host_arg) {
		snprintf(default_host, sizeof(default_host), "mail.%s", domain);
		host_arg = default_host;
	}
	if (!cli_init_name_check(host_arg == default_host ? "hostname" : "--hostname", host_arg, host))
		return CLI_EXIT_USAGE;
	if (strlen(host) > CLI_INIT_CN_MAX) {
		cli_error("hostname \"%s\" is longer than %d characters, which a certificate cannot hold; "
			  "choose a shorter one with --hostname",
			  host, CLI_INIT_CN_MAX);
		return CLI_EXIT_USAGE;
	}

	uid_t uid = 0;
	gid_t gid = 0;
	char user_err[256];
	if (user != NULL && identity_lookup(user, &uid, &gid, user_err, sizeof(user_err)) != 0) {
		cli_error("--user: %s (create it first, e.g. useradd --system %s)", user_err, user);
		return CLI_EXIT_USAGE;
	}
	/* --config FILE: its directory (which must exist) and name */
	char config_dir[PATH_MAX] = "", config_name[256] = "mailwerk.conf";
	if (config != NULL) {
		const char *slash = strrchr(config, '/');
		const char *name = slash != NULL ? slash + 1 : config;
		size_t dlen = slash == NULL ? 1 : slash == config ? 1 : (size_t)(slash - config);
		if (name[0] == '\0' || strlen(name) >= sizeof(config_name) || dlen >= sizeof(config_dir)) {
			cli_error("--config \"%s\": not a file name", config);
			return CLI_EXIT_USAGE;
		}
		snprintf(config_name, sizeof(config_name), "%s", name);
		snprintf(config_dir, sizeof(config_dir), "%.*s", (int)dlen, slash == NULL ? "." : config);
		char real[PATH_MAX];
		if (realpath(config_dir, real) == NULL) {
			cli_error("--config: %s: %s (create the directory first)", config_dir, strerror(errno));
			return CLI_EXIT_USAGE;
		}
		snprintf(config_dir, sizeof(config_dir), "%s", real);
		if (!cli_init_path_ini_safe(config_dir)) {
			cli_error("--config: %s has characters a configuration value cannot hold", config_dir);
			return CLI_EXIT_USAGE;
		}
	}
	if (!cli_init_check_absent(config != NULL ? config_dir : dir, config_name) ||
	    !cli_init_check_absent(dir, "mailwerk.db"))
		return CLI_EXIT_RUNTIME;

	struct cli_init_paths *p = calloc(1, sizeof(*p));
	struct cli_init_undo undo = { 0 };
	char password[USERS_PASSWORD_GEN_LEN + 1] = "";
	int rc = CLI_EXIT_RUNTIME;
	if (!p) {
		cli_error("out of memory");
		return CLI_EXIT_RUNTIME;
	}
	if (!cli_init_mkdirs(dir, &undo))
		goto fail;
	/* Every path in the configuration is absolute, so the server does not depend on its cwd. */
	if (!realpath(dir, p->dir)) {
		cli_error("%s: %s", dir, strerror(errno));
		goto fail;
	}
	if (!cli_init_path_ini_safe(p->dir)) {
		cli_error("%s: the path has characters a configuration value cannot hold (control characters, ';', '#', "
			  "trailing blanks); choose another --dir",
			  p->dir);
		goto fail;
	}
	if (!cli_init_path_join(p->tls, p->dir, "tls") || !cli_init_path_join(p->key, p->tls, "key.pem") ||
	    !cli_init_path_join(p->cert, p->tls, "cert.pem") || !cli_init_path_join(p->db, p->dir, "mailwerk.db") ||
	    !cli_init_path_join(p->conf, config != NULL ? config_dir : p->dir, config_name) ||
	    !cli_init_path_join(p->conf_tmp, config != NULL ? config_dir : p->dir, ".mailwerk.conf.XXXXXX"))
		goto fail;
	snprintf(p->conf_dir, sizeof(p->conf_dir), "%s", config != NULL ? config_dir : p->dir);

	if (mkdir(p->tls, 0750) == 0) {
		undo.tls_dir = true;
		if (chmod(p->tls, 0750) != 0) {
			cli_error("%s: %s", p->tls, strerror(errno));
			goto fail;
		}
	} else if (errno != EEXIST) {
		cli_error("cannot create %s: %s", p->tls, strerror(errno));
		goto fail;
	}
	if (!cli_init_tls_write(p, host, &undo))
		goto fail;
	if (!cli_init_db_create(p, domain, password, sizeof(password), &undo))
		goto fail;
	if (!cli_init_dkim(p, domain, &undo))
		goto fail;
	/* last: a mailwerk.conf on disk means everything it points to is in place */
	if (!cli_init_conf_write(p, host, user, acme ? acme_directory : NULL, acme_contact, &undo))
		goto fail;
	if (user != NULL && !cli_init_give(p, &undo, uid, gid))
		goto fail;

	char dkim_path[PATH_MAX + 400];
	snprintf(dkim_path, sizeof(dkim_path), "%s/dkim/%s/%s.pem", p->dir, domain, undo.dkim_selector);
	printf("Created a development setup in %s:\n"
	       "  %-32s the configuration\n"
	       "  %-32s accounts and local domains (local domain: %s)\n"
	       "  %-32s a self-signed certificate for %s\n"
	       "  %-32s its private key (mode 0600)\n"
	       "  %-32s the DKIM key signing %s's mail (selector %s)\n"
	       "\n"
	       "Demo user: demo@%s\n"
	       "Password:  %s\n"
	       "           (shown only this once; change it with: mailwerk user passwd demo@%s -c %s)\n"
	       "\n"
	       "Next: mailwerk serve -c %s\n"
	       "DNS:  mailwerk dns records --domain %s -c %s prints the records to publish\n",
	       p->dir, p->conf, p->db, domain, p->cert, host, p->key, dkim_path, domain, undo.dkim_selector, domain,
	       password, domain, p->conf, p->conf, domain, p->conf);
	/* Unseen, the demo password is lost: undo, so that running init again gives a new one. */
	if (fflush(stdout) != 0) {
		cli_error("cannot write to standard output: %s; the setup was removed again", strerror(errno));
		goto fail;
	}
	rc = CLI_EXIT_OK;
	goto out;

fail:
	cli_init_undo_run(p, &undo);
out:
	OPENSSL_cleanse(password, sizeof(password));
	cli_init_undo_free(&undo);
	free(p);
	return rc;
}
