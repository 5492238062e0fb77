/* cli_dkim.c — owns `mailwerk dkim keygen|activate|list|sign|verify`: DKIM keys of the setup
 * (src/keys/dkim_store.c), their DNS records, and signing or verifying a message on stdin with the
 * code the server uses (src/auth/dkim_sign.c, dkim_verify.c). */
#include "cli/cli_common.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/dkim_key.h"
#include "auth/dkim_sign.h"
#include "auth/dkim_verify.h"
#include "cli/cli_dkim_dns.h"
#include "cli/cli_dns.h"
#include "conf/conf.h"
#include "keys/dkim_store.h"

/* A message read from stdin is at most this large (the largest [smtp] max_message_size allows). */
#define CLI_DKIM_MSG_MAX 1000000000u

static void cli_dkim_usage(FILE *f)
{
	fputs("usage: mailwerk dkim keygen --domain D --selector S [--algorithm rsa|ed25519] [--bits N]\n"
	      "       mailwerk dkim activate --domain D --selector S\n"
	      "       mailwerk dkim list [--domain D] [--no-dns] [--resolver ADDR@PORT]\n"
	      "       mailwerk dkim sign --domain D --selector S [--key FILE] < message\n"
	      "       mailwerk dkim verify [--resolver ADDR@PORT] < message\n"
	      "\n"
	      "keygen    makes a key for D under selector S (RSA 2048 by default; Ed25519 with\n"
	      "          --algorithm ed25519), stores it in DATA_DIR/dkim/D/S.pem and prints the DNS TXT\n"
	      "          record to publish. The first key of its algorithm for D signs at once.\n"
	      "activate  makes S the key of its algorithm that signs D's mail (key rotation: publish\n"
	      "          the new selector's record first, activate it, retire the old one later).\n"
	      "list      every key: domain, selector, algorithm, bits, whether it signs, and whether\n"
	      "          its DNS record holds this key (match, missing, mismatch, error).\n"
	      "sign      prints the message with a DKIM-Signature (relaxed/relaxed) on top; the key is\n"
	      "          D/S of the setup, or --key FILE (PEM, PKCS#1 or PKCS#8).\n"
	      "verify    checks every DKIM-Signature and prints one line per signature:\n"
	      "          RESULT d=DOMAIN s=SELECTOR a=ALGORITHM [reason]. Exit 0 only when there is at\n"
	      "          least one signature and all pass.\n"
	      "\n"
	      "  -c, --config FILE   the setup (default " CLI_DEFAULT_CONF ")\n"
	      "  -h, --help          show this help\n",
	      f);
}

/* stdin, whole, with bare LF line ends made CRLF (RFC 5322 §2.1: a message's lines end in CRLF). */
static char *cli_dkim_read_message(size_t *len_r)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	int ch, prev = 0;
	while (buf != NULL && (ch = getchar()) != EOF) {
		if (len + 3 > cap) {
			if (cap >= CLI_DKIM_MSG_MAX) {
				cli_error("the message on standard input is larger than %u octets", CLI_DKIM_MSG_MAX);
				free(buf);
				return NULL;
			}
			char *grown = realloc(buf, cap * 2);
			if (grown == NULL)
				break;
			buf = grown;
			cap *= 2;
		}
		if (ch == '\n' && prev != '\r')
			buf[len++] = '\r';
		buf[len++] = (char)ch;
		prev = ch;
	}
	if (buf == NULL || ferror(stdin)) {
		cli_error("cannot read the message from standard input");
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

static int cli_dkim_keygen(struct conf *cf, const char *domain, const char *selector, const char *algorithm,
			   unsigned bits)
{
	enum dkim_key_type t = DKIM_KEY_RSA;
	if (algorithm != NULL && strcmp(algorithm, "ed25519") == 0) {
		t = DKIM_KEY_ED25519;
	} else if (algorithm != NULL && strcmp(algorithm, "rsa") != 0) {
		cli_error("--algorithm %s: expected rsa or ed25519", algorithm);
		return CLI_EXIT_USAGE;
	}
	EVP_PKEY *key = NULL;
	const char *err;
	char e[512];
	bool activated;
	if (dkim_key_generate(t, bits, &key, &err) != DKIM_KEY_OK) {
		cli_error("cannot make the key: %s", err);
		return bits != 0 ? CLI_EXIT_USAGE : CLI_EXIT_RUNTIME;
	}
	int rc = CLI_EXIT_RUNTIME;
	char *txt = NULL;
	if (dkim_store_add(cf->data_dir, domain, selector, key, &activated, e, sizeof(e)) != 0) {
		cli_error("%s", e);
	} else if ((txt = dkim_key_record_format(key, &err)) == NULL) {
		cli_error("cannot format the DNS record: %s", err);
	} else {
		printf("; key %s for %s: %s %u bits, %s\n", selector, domain, dkim_key_type_str(t), dkim_key_bits(key),
		       activated ? "signing now" : "not signing yet (mailwerk dkim activate)");
		printf("; publish this TXT record, then check it with: mailwerk dkim list --domain %s\n", domain);
		char name[DNS_HOST_SIZE + 80];
		snprintf(name, sizeof(name), "%s._domainkey.%s", selector, domain);
		cli_dns_txt_line(name, txt);
		rc = CLI_EXIT_OK;
	}
	free(txt);
	EVP_PKEY_free(key);
	return rc;
}

/* ---- list, with the DNS check of each key ---- */

struct cli_dkim_list {
	struct cli_dns *dns; /* NULL: --no-dns */
	unsigned keys;
	unsigned problems;
};

static void cli_dkim_list_key(const struct dkim_store_key *k, void *arg)
{
	struct cli_dkim_list *l = arg;
	const char *dns = "-";
	char why[256] = "";
	l->keys++;
	if (l->dns != NULL) {
		enum cli_dkim_dns r = cli_dkim_dns_check(l->dns, k->domain, k->selector, k->pkey, why, sizeof(why));
		dns = cli_dkim_dns_str(r);
		if (r != CLI_DKIM_DNS_MATCH && k->active)
			l->problems++;
	}
	printf("%s %s %s %u %s dns=%s%s%s%s\n", k->domain, k->selector, dkim_key_type_str(k->type), k->bits,
	       k->active ? "active" : "inactive", dns, why[0] != '\0' ? " (" : "", why, why[0] != '\0' ? ")" : "");
}

static void cli_dkim_list_bad(const char *path, const char *reason, void *arg)
{
	struct cli_dkim_list *l = arg;
	l->problems++;
	printf("; %s: %s\n", path, reason);
}

/* ---- sign and verify ---- */

static int cli_dkim_sign(struct conf *cf, const char *domain, const char *selector, const char *key_file)
{
	EVP_PKEY *key = NULL;
	const char *err;
	char e[512];
	if (key_file != NULL) {
		if (dkim_key_file_load(key_file, &key, &err) != DKIM_KEY_OK) {
			cli_error("%s: %s", key_file, err);
			return CLI_EXIT_RUNTIME;
		}
	} else if ((key = dkim_store_load(cf->data_dir, domain, selector, e, sizeof(e))) == NULL) {
		cli_error("%s", e);
		return CLI_EXIT_RUNTIME;
	}
	size_t len;
	char *msg = cli_dkim_read_message(&len);
	int rc = CLI_EXIT_RUNTIME;
	if (msg != NULL) {
		struct dkim_sign_params p = {
			.domain = domain,
			.selector = selector,
			.key = key,
			.header_canon = DKIM_CANON_RELAXED,
			.body_canon = DKIM_CANON_RELAXED,
			.timestamp = time(NULL),
		};
		char *field = dkim_sign(&p, msg, len, &err);
		if (field == NULL) {
			cli_error("cannot sign: %s", err);
		} else {
			fputs(field, stdout);
			fwrite(msg, 1, len, stdout);
			rc = CLI_EXIT_OK;
		}
		free(field);
	}
	free(msg);
	EVP_PKEY_free(key);
	return rc;
}

static int cli_dkim_verify(const char *conf_path, const char *resolver)
{
	size_t len;
	char *msg = cli_dkim_read_message(&len);
	if (msg == NULL)
		return CLI_EXIT_RUNTIME;
	struct cli_dns d;
	if (cli_dns_open(&d, conf_path, resolver, 0) != 0) {
		free(msg);
		return CLI_EXIT_RUNTIME;
	}
	unsigned max = d.conf != NULL ? d.conf->dkim_max_signatures : 5;
	struct dkim_verify *v = dkim_verify_new(msg, len, max, time(NULL));
	int rc = CLI_EXIT_RUNTIME;
	if (v == NULL) {
		cli_error("out of memory");
	} else if (cli_dns_run(&d, dkim_verify_step, v) == 0) {
		size_t n = dkim_verify_count(v), passed = 0;
		if (n == 0)
			printf("none (no DKIM-Signature)\n");
		for (size_t i = 0; i < n; i++) {
			const struct dkim_sig_result *r = dkim_verify_result(v, i);
			printf("%s d=%s s=%s a=%s", dkim_result_str(r->result), r->domain[0] ? r->domain : "-",
			       r->selector[0] ? r->selector : "-", r->alg_known ? dkim_alg_str(r->alg) : "-");
			if (r->key_bits > 0)
				printf(" bits=%u", r->key_bits);
			if (r->reason != NULL && r->reason[0] != '\0')
				printf(" reason=\"%s\"", r->reason);
			putchar('\n');
			passed += r->result == DKIM_RESULT_PASS;
		}
		if (dkim_verify_ignored(v) > 0)
			printf("; %zu more signatures not checked (limit %u)\n", dkim_verify_ignored(v), max);
		rc = n > 0 && passed == n ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
	}
	dkim_verify_free(v);
	cli_dns_close(&d);
	free(msg);
	return rc;
}

int cli_dkim_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"domain", required_argument, NULL, 'd'},
		{"selector", required_argument, NULL, 's'},
		{"algorithm", required_argument, NULL, 'a'},
		{"bits", required_argument, NULL, 'b'},
		{"key", required_argument, NULL, 'k'},
		{"resolver", required_argument, NULL, 'r'},
		{"no-dns", no_argument, NULL, 'n'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *domain = NULL, *selector = NULL, *algorithm = NULL, *key_file = NULL, *resolver = NULL;
	const char *conf_path = NULL;
	unsigned bits = 0;
	bool no_dns = false;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': domain = optarg; break;
		case 's': selector = optarg; break;
		case 'a': algorithm = optarg; break;
		case 'k': key_file = optarg; break;
		case 'n': no_dns = true; break;
		case 'c': conf_path = optarg; break;
		case 'b': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || v < DKIM_KEY_RSA_BITS_NEW_MIN || v > DKIM_KEY_RSA_BITS_NEW_MAX) {
				cli_error("--bits %s: expected %d to %d", optarg, DKIM_KEY_RSA_BITS_NEW_MIN,
					  DKIM_KEY_RSA_BITS_NEW_MAX);
				return CLI_EXIT_USAGE;
			}
			bits = (unsigned)v;
			break;
		}
		case 'r':
			if (!cli_dns_resolver_ok(optarg))
				return CLI_EXIT_USAGE;
			resolver = optarg;
			break;
		case 'h':
			cli_dkim_usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_option_error("dkim", c, argv);
		}
	}
	if (argc - optind != 1) {
		cli_dkim_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *sub = argv[optind];
	bool needs_ds = strcmp(sub, "keygen") == 0 || strcmp(sub, "activate") == 0 || strcmp(sub, "sign") == 0;
	if (needs_ds && (domain == NULL || selector == NULL)) {
		cli_error("dkim %s needs --domain and --selector", sub);
		return CLI_EXIT_USAGE;
	}
	if (selector != NULL && !dkim_store_selector_valid(selector)) {
		cli_error("--selector %s: letters, digits and '-' in dot-separated labels, at most %d octets", selector,
			  DKIM_SELECTOR_MAX);
		return CLI_EXIT_USAGE;
	}
	int rc = CLI_EXIT_USAGE;
	struct conf *cf = NULL;
	char e[512];
	/* verify and sign --key need no setup */
	if (strcmp(sub, "verify") == 0) {
		rc = cli_dkim_verify(conf_path, resolver);
	} else if (strcmp(sub, "sign") == 0 && key_file != NULL) {
		rc = cli_dkim_sign(NULL, domain, selector, key_file);
	} else if ((cf = cli_data_conf_load(conf_path)) == NULL) {
		return CLI_EXIT_RUNTIME;
	} else if (strcmp(sub, "keygen") == 0) {
		rc = cli_dkim_keygen(cf, domain, selector, algorithm, bits);
	} else if (strcmp(sub, "activate") == 0) {
		rc = dkim_store_activate(cf->data_dir, domain, selector, e, sizeof(e)) == 0 ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
		if (rc == CLI_EXIT_OK)
			printf("%s now signs mail from %s\n", selector, domain);
		else
			cli_error("%s", e);
	} else if (strcmp(sub, "sign") == 0) {
		rc = cli_dkim_sign(cf, domain, selector, NULL);
	} else if (strcmp(sub, "list") == 0) {
		struct cli_dns d;
		struct cli_dkim_list l = {0};
		rc = CLI_EXIT_RUNTIME;
		if (no_dns || cli_dns_open(&d, conf_path, resolver, 0) == 0) {
			l.dns = no_dns ? NULL : &d;
			size_t published;
			/* keys copied in by hand, or made before public halves were kept, get theirs */
			dkim_store_publish(cf->data_dir, &published, e, sizeof(e));
			if (dkim_store_list(cf->data_dir, domain, cli_dkim_list_key, cli_dkim_list_bad, &l, e, sizeof(e)) != 0)
				cli_error("%s", e);
			else
				rc = l.problems == 0 ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
			if (l.keys == 0 && rc == CLI_EXIT_OK)
				printf("; no DKIM keys (mailwerk dkim keygen --domain D --selector S)\n");
			if (!no_dns)
				cli_dns_close(&d);
		}
	} else {
		cli_dkim_usage(stderr);
	}
	conf_free(cf);
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		rc = CLI_EXIT_RUNTIME;
	}
	return rc;
}
