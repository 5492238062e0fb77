/* fuzz_mtasts.c — libFuzzer harness for src/delivery/mtasts.c. The input is read as a policy text and
 * as one TXT record (the promises of mtasts.h checked on what parses), then cut at '|' into TXT
 * records for the §3.1 choice, and last its first line is taken as an MX host name and the rest as a
 * policy whose patterns it is matched against. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delivery/mtasts.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

#define FUZZ_TXT_MAX 8

static void fuzz_check_pattern(const char *pat)
{
	size_t len = strnlen(pat, MTASTS_MX_SIZE);
	FUZZ_CHECK(len > 0 && len < MTASTS_MX_SIZE);
	const char *name = pat[0] == '*' && pat[1] == '.' ? pat + 2 : pat;
	FUZZ_CHECK(dns_host_valid(name));
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(!(pat[i] >= 'A' && pat[i] <= 'Z'));
	/* a pattern matches the names it stands for */
	char host[MTASTS_MX_SIZE + 2];
	if (name != pat) {
		snprintf(host, sizeof(host), "x.%s", name);
		if (strlen(host) < DNS_HOST_SIZE)
			FUZZ_CHECK(mtasts_mx_match(pat, host));
		FUZZ_CHECK(!mtasts_mx_match(pat, name));
		snprintf(host, sizeof(host), "x.y.%s", name);
		FUZZ_CHECK(!mtasts_mx_match(pat, host));
	} else {
		FUZZ_CHECK(mtasts_mx_match(pat, pat));
		snprintf(host, sizeof(host), "%s.", pat);
		FUZZ_CHECK(mtasts_mx_match(pat, host));
		for (size_t i = 0; host[i] != '\0'; i++)
			host[i] = (char)toupper((unsigned char)host[i]);
		FUZZ_CHECK(mtasts_mx_match(pat, host));
	}
}

static void fuzz_policy(const char *text, size_t len, struct mtasts_policy *p, enum mtasts_error *e_r)
{
	struct mtasts_policy again;
	const char *err = NULL, *err2 = NULL;
	enum mtasts_error e = mtasts_policy_parse(text, len, p, &err);
	FUZZ_CHECK(e <= MTASTS_MULTIPLE && e != MTASTS_ID && e != MTASTS_NO_RECORD && e != MTASTS_MULTIPLE);
	FUZZ_CHECK(e == MTASTS_OK || err != NULL);
	FUZZ_CHECK(p->mx_count <= MTASTS_MX_MAX);
	if (e == MTASTS_OK) {
		FUZZ_CHECK(len <= MTASTS_POLICY_MAX);
		FUZZ_CHECK(p->mode <= MTASTS_MODE_ENFORCE);
		FUZZ_CHECK(p->max_age <= MTASTS_MAX_AGE_MAX);
		FUZZ_CHECK(!p->max_age_capped || p->max_age == MTASTS_MAX_AGE_MAX);
		FUZZ_CHECK(p->mode == MTASTS_MODE_NONE || p->mx_count > 0);
		for (size_t i = 0; i < p->mx_count; i++) {
			fuzz_check_pattern(p->mx[i]);
			for (size_t j = 0; j < i; j++)
				FUZZ_CHECK(strcmp(p->mx[i], p->mx[j]) != 0);
		}
	} else {
		FUZZ_CHECK(p->mx_count == 0 && p->mode == MTASTS_MODE_NONE && p->max_age == 0);
	}
	/* the same text reads the same */
	FUZZ_CHECK(mtasts_policy_parse(text, len, &again, &err2) == e);
	FUZZ_CHECK(memcmp(p, &again, sizeof(again)) == 0);
	*e_r = e;
}

static void fuzz_txt(const char *txt, size_t len)
{
	struct mtasts_txt r;
	const char *err = NULL;
	enum mtasts_error e = mtasts_txt_parse(txt, len, &r, &err);
	FUZZ_CHECK(e == MTASTS_OK || e == MTASTS_SYNTAX || e == MTASTS_VERSION || e == MTASTS_ID);
	FUZZ_CHECK(e == MTASTS_OK || err != NULL);
	if (e == MTASTS_OK) {
		size_t n = strnlen(r.id, sizeof(r.id));
		FUZZ_CHECK(n >= 1 && n <= MTASTS_ID_MAX);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(isalnum((unsigned char)r.id[i]));
		FUZZ_CHECK(mtasts_txt_is_sts(txt, len));
	} else {
		FUZZ_CHECK(r.id[0] == '\0');
	}
	if (!mtasts_txt_is_sts(txt, len))
		FUZZ_CHECK(e == MTASTS_VERSION);
}

static void fuzz_select(const char *data, size_t size)
{
	struct dns_txt txts[FUZZ_TXT_MAX];
	size_t n = 0, start = 0, sts = 0;
	char *text = malloc(size + 1);
	if (text == NULL)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t i = 0; i <= size && n < FUZZ_TXT_MAX; i++) {
		if (i == size || text[i] == '|') {
			text[i] = '\0';
			txts[n].text = text + start;
			txts[n].len = i - start;
			sts += mtasts_txt_is_sts(txts[n].text, txts[n].len);
			n++;
			start = i + 1;
		}
	}
	struct mtasts_txt r;
	const char *err = NULL;
	enum mtasts_error e = mtasts_txt_select(txts, n, &r, &err);
	FUZZ_CHECK(e == MTASTS_OK || err != NULL);
	FUZZ_CHECK(e != MTASTS_NO_RECORD || sts == 0);
	FUZZ_CHECK(e != MTASTS_MULTIPLE || sts >= 2);
	if (e == MTASTS_OK)
		FUZZ_CHECK(sts == 1 && r.id[0] != '\0');
	free(text);
}

static void fuzz_match(const char *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	if (nl == NULL)
		return;
	size_t hlen = (size_t)(nl - data);
	char *host = malloc(hlen + 1);
	if (host == NULL)
		return;
	memcpy(host, data, hlen);
	host[hlen] = '\0';
	struct mtasts_policy *p = malloc(sizeof(*p));
	if (p != NULL) {
		enum mtasts_error e;
		fuzz_policy(nl + 1, size - hlen - 1, p, &e);
		bool any = false;
		for (size_t i = 0; i < p->mx_count; i++) {
			bool m = mtasts_mx_match(p->mx[i], host);
			any |= m;
			if (!m)
				continue;
			/* a match is the name itself, or one label more than a wildcard's name */
			size_t len = strlen(host);
			if (len > 0 && host[len - 1] == '.')
				host[--len] = '\0';
			if (p->mx[i][0] == '*') {
				const char *dot = strchr(host, '.');
				FUZZ_CHECK(dot != NULL && strcasecmp(dot + 1, p->mx[i] + 2) == 0);
			} else {
				FUZZ_CHECK(strcasecmp(host, p->mx[i]) == 0);
			}
			FUZZ_CHECK(dns_host_valid(host));
			break;
		}
		FUZZ_CHECK(mtasts_policy_mx_match(p, host) == any);
		free(p);
	}
	free(host);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size heap copies, so that ASan sees any read past the end */
	char *copy = malloc(size > 0 ? size : 1);
	struct mtasts_policy *p = malloc(sizeof(*p));
	if (copy == NULL || p == NULL) {
		free(copy);
		free(p);
		return 0;
	}
	memcpy(copy, data, size);
	enum mtasts_error e;
	fuzz_policy(copy, size, p, &e);
	fuzz_txt(copy, size);
	fuzz_select(copy, size);
	fuzz_match(copy, size);
	free(p);
	free(copy);
	return 0;
}
