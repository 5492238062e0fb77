/* spf_macro.c — RFC 7208 §7 macro-strings: one walker checks the grammar and, given the values,
 * writes the expansion into a bounded sink. Names keep their right end when they grow too long
 * (§7.3 shortens them from the left), explanations keep their beginning. */
#include "auth/spf_macro.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* A name is built in a window this large: once it is full the older half is dropped, as only the
 * last 253 octets and the label boundary before them can matter (§7.3). */
#define SPF_MACRO_WINDOW 1024

const char *spf_macro_ctx_str(enum spf_macro_ctx c)
{
	switch (c) {
	case SPF_MACRO_DOMAIN: return "domain";
	case SPF_MACRO_MODIFIER: return "modifier";
	case SPF_MACRO_EXPLAIN: return "explain";
	}
	return "?";
}

const char *spf_macro_error_str(enum spf_macro_error e)
{
	switch (e) {
	case SPF_MACRO_OK: return "ok";
	case SPF_MACRO_SYNTAX: return "syntax";
	case SPF_MACRO_LETTER: return "letter";
	case SPF_MACRO_BAD_NAME: return "bad_name";
	}
	return "?";
}

struct spf_sink {
	char *buf;
	size_t size; /* room, the NUL included */
	size_t len;
	bool keep_tail; /* a name: drop from the front when full; else cut at the end */
	bool dropped;   /* keep_tail: octets were dropped from the front */
	char before;    /* keep_tail: the last octet dropped */
	bool printable; /* replace octets outside printable US-ASCII by '?' (explanations) */
};

static void sink_put(struct spf_sink *k, char c)
{
	if (k->printable && ((unsigned char)c < 0x20 || (unsigned char)c > 0x7e))
		c = '?';
	if (k->len + 1 < k->size) {
		k->buf[k->len++] = c;
		return;
	}
	if (!k->keep_tail)
		return;
	size_t drop = k->len / 2;
	k->before = k->buf[drop - 1];
	memmove(k->buf, k->buf + drop, k->len - drop);
	k->len -= drop;
	k->dropped = true;
	k->buf[k->len++] = c;
}

static void sink_puts(struct spf_sink *k, const char *s)
{
	for (; *s != '\0'; s++)
		sink_put(k, *s);
}

static bool is_delimiter(char c)
{
	/* §7.1: delimiter = "." / "-" / "+" / "," / "/" / "_" / "=" */
	return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

/* RFC 3986 §2.3 unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" */
static bool is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* The value of a letter (§7.2) into buf (SPF_MACRO_VALUE_MAX + 1 octets), cut when longer. */
static size_t macro_value(const struct spf_macro_env *env, char letter, char *buf)
{
	const size_t size = SPF_MACRO_VALUE_MAX + 1;
	const struct dns_addr *ip = env->ip;
	const char *s = NULL;
	int n;

	switch (letter) {
	case 's': s = env->sender; break;
	case 'l': s = env->local; break;
	case 'o': s = env->sender_domain; break;
	case 'd': s = env->domain; break;
	case 'h': s = env->helo; break;
	case 'p': s = env->ptr_name != NULL ? env->ptr_name : "unknown"; break;
	case 'r': s = env->receiver != NULL && env->receiver[0] != '\0' ? env->receiver : "unknown"; break;
	case 'v': s = ip != NULL && ip->family == AF_INET6 ? "ip6" : "in-addr"; break;
	case 't':
		n = snprintf(buf, size, "%" PRIdMAX, (intmax_t)env->now);
		return n > 0 ? (size_t)n : 0;
	case 'c':
		if (ip == NULL)
			break;
		dns_addr_str(ip, buf, size);
		return strlen(buf);
	case 'i':
		if (ip == NULL)
			break;
		if (ip->family != AF_INET6) {
			n = snprintf(buf, size, "%u.%u.%u.%u", ip->bytes[0], ip->bytes[1], ip->bytes[2], ip->bytes[3]);
			return n > 0 ? (size_t)n : 0;
		}
		/* §7.3: for IPv6 the "dot-format": 32 nibbles separated by dots (RFC 7208 §7.4 writes them
		 * in lower case) */
		for (size_t i = 0; i < 16; i++) {
			static const char hex[] = "0123456789abcdef";
			buf[i * 4] = hex[ip->bytes[i] >> 4];
			buf[i * 4 + 1] = '.';
			buf[i * 4 + 2] = hex[ip->bytes[i] & 15];
			buf[i * 4 + 3] = '.';
		}
		buf[63] = '\0';
		return 63;
	}
	if (s == NULL)
		s = "";
	size_t len = strnlen(s, size - 1);
	memcpy(buf, s, len);
	buf[len] = '\0';
	return len;
}

/* One %{...} into the sink: §7.3 splits the value on the delimiters (default "."), reverses the
 * parts for "r", keeps the DIGIT right-hand ones, joins them with "."; an upper-case letter is then
 * URL-escaped. */
static void macro_put(struct spf_sink *k, const struct spf_macro_env *env, char letter, unsigned digits,
		      bool reverse, const char *delims, size_t ndelims)
{
	char value[SPF_MACRO_VALUE_MAX + 1];
	uint16_t start[SPF_MACRO_VALUE_MAX + 2]; /* part i is value[start[i] .. start[i + 1] - 1) */
	bool escape = letter >= 'A' && letter <= 'Z';
	size_t len = macro_value(env, ascii_lower(letter), value);
	size_t parts = 0;

	start[parts++] = 0;
	for (size_t i = 0; i < len; i++) {
		bool split = ndelims == 0 ? value[i] == '.' : memchr(delims, value[i], ndelims) != NULL;
		if (split)
			start[parts++] = (uint16_t)(i + 1);
	}
	start[parts] = (uint16_t)(len + 1);

	/* §7.3: "If no DIGITs are specified, or if the value specifies more parts than are
	 * available, all the available parts are used." */
	size_t keep = digits == 0 || digits > parts ? parts : digits;
	for (size_t j = 0; j < keep; j++) {
		/* reversed, the right-hand parts are the first ones of the value, last one first */
		size_t p = reverse ? keep - 1 - j : parts - keep + j;
		if (j > 0)
			sink_put(k, '.');
		for (size_t i = start[p]; i + 1 < start[p + 1]; i++) {
			unsigned char c = (unsigned char)value[i];
			if (escape && !is_unreserved(c)) {
				static const char hex[] = "0123456789ABCDEF";
				sink_put(k, '%');
				sink_put(k, hex[c >> 4]);
				sink_put(k, hex[c & 15]);
			} else {
				sink_put(k, (char)c);
			}
		}
	}
}

/* The grammar of §7.1, and the expansion when out is not NULL:
 *   macro-string = *( macro-expand / macro-literal )
 *   macro-expand = ( "%{" macro-letter transformers *delimiter "}" ) / "%%" / "%_" / "%-"
 *   macro-literal = %x21-24 / %x26-7E
 *   transformers = *DIGIT [ "r" ]
 * and §6.2 explain-string = *( macro-string / SP ). */
static enum spf_macro_error macro_walk(const char *s, size_t len, enum spf_macro_ctx ctx,
				       const struct spf_macro_env *env, struct spf_sink *out,
				       struct spf_macro_info *info, const char **error_r)
{
	bool uses_p = false;
	size_t tail = 0;

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		if (c != '%') {
			if ((c < 0x21 || c > 0x7e) && !(c == ' ' && ctx == SPF_MACRO_EXPLAIN)) {
				*error_r = "an octet that a macro-string cannot hold (§7.1)";
				return SPF_MACRO_SYNTAX;
			}
			if (out != NULL)
				sink_put(out, (char)c);
			i++;
			continue;
		}
		if (i + 1 >= len) {
			*error_r = "'%' at the end of a macro-string (§7.1)";
			return SPF_MACRO_SYNTAX;
		}
		char next = s[i + 1];
		if (next == '%' || next == '_' || next == '-') {
			if (out != NULL)
				sink_puts(out, next == '%' ? "%" : next == '_' ? " " : "%20");
			i += 2;
			tail = i;
			continue;
		}
		if (next != '{') {
			*error_r = "'%' not followed by '{', '%', '_' or '-' (§7.1)";
			return SPF_MACRO_SYNTAX;
		}
		i += 2;
		char letter = i < len ? s[i] : '\0';
		char lower = ascii_lower(letter);
		if (lower == '\0' || memchr("slodiphvcrt", lower, 11) == NULL) {
			*error_r = "unknown macro letter (§7.2)";
			return SPF_MACRO_SYNTAX;
		}
		if (ctx == SPF_MACRO_DOMAIN && (lower == 'c' || lower == 'r' || lower == 't')) {
			*error_r = "%{c}, %{r} and %{t} are allowed only in explanations (§7.1)";
			return SPF_MACRO_LETTER;
		}
		uses_p = uses_p || lower == 'p';
		i++;
		unsigned digits = 0;
		bool has_digits = false;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			has_digits = true;
			if (digits < 10000) /* any count above the number of parts means all of them */
				digits = digits * 10 + (unsigned)(s[i] - '0');
		}
		if (has_digits && digits == 0) {
			*error_r = "a macro part count of zero (§7.3: it MUST be nonzero)";
			return SPF_MACRO_SYNTAX;
		}
		bool reverse = i < len && (s[i] == 'r' || s[i] == 'R');
		if (reverse)
			i++;
		const char *delims = s + i;
		size_t ndelims = 0;
		for (; i < len && is_delimiter(s[i]); i++)
			ndelims++;
		if (i >= len || s[i] != '}') {
			*error_r = "a macro not closed by '}' (§7.1)";
			return SPF_MACRO_SYNTAX;
		}
		i++;
		tail = i;
		if (out != NULL)
			macro_put(out, env, letter, digits, reverse, delims, ndelims);
	}
	if (info != NULL) {
		info->uses_p = uses_p;
		info->tail = tail;
	}
	return SPF_MACRO_OK;
}

enum spf_macro_error spf_macro_check(const char *s, size_t len, enum spf_macro_ctx ctx,
				     struct spf_macro_info *info_r, const char **error_r)
{
	return macro_walk(s, len, ctx, NULL, NULL, info_r, error_r);
}

bool spf_macro_name_ok(const char *name)
{
	size_t len = strnlen(name, DNS_HOST_SIZE), label = 0;

	if (len == 0 || len > DNS_HOST_SIZE - 1)
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > DNS_LABEL_MAX)
				return false;
			label = 0;
		} else if (c < 0x20 || c > 0x7e || c == '\\') {
			return false;
		} else {
			label++;
		}
	}
	return true;
}

enum spf_macro_error spf_macro_expand_domain(const char *s, size_t len, const struct spf_macro_env *env,
					     char out[DNS_HOST_SIZE], const char **error_r)
{
	char window[SPF_MACRO_WINDOW];
	struct spf_sink k = {.buf = window, .size = sizeof(window), .keep_tail = true};
	enum spf_macro_error e;

	out[0] = '\0';
	if ((e = macro_walk(s, len, SPF_MACRO_DOMAIN, env, &k, NULL, error_r)) != SPF_MACRO_OK)
		return e;
	size_t end = k.len;
	/* §7.3 (and the suite's "trailing-dot-domain"): a trailing dot is not part of the name asked */
	if (end > 0 && window[end - 1] == '.')
		end--;
	size_t from = 0;
	if (k.dropped || end > DNS_HOST_SIZE - 1) {
		/* §7.3: "the left side is truncated to fit, by removing successive domain labels (and
		 * their following dots) until the total length does not exceed 253 characters" */
		from = end > DNS_HOST_SIZE - 1 ? end - (DNS_HOST_SIZE - 1) : 0;
		while (from < end && !(from == 0 ? k.before == '.' : window[from - 1] == '.'))
			from++;
	}
	if (from >= end) {
		*error_r = end == 0 ? "expands to an empty name" : "expands to a name whose last label is too long";
		return SPF_MACRO_BAD_NAME;
	}
	memcpy(out, window + from, end - from);
	out[end - from] = '\0';
	if (!spf_macro_name_ok(out)) {
		out[0] = '\0';
		*error_r = "expands to something that is not a domain name (an empty or long label, or an "
			   "octet DNS names cannot carry here)";
		return SPF_MACRO_BAD_NAME;
	}
	return SPF_MACRO_OK;
}

enum spf_macro_error spf_macro_expand_text(const char *s, size_t len, const struct spf_macro_env *env,
					   char *out, size_t out_size, const char **error_r)
{
	struct spf_sink k = {.buf = out, .size = out_size, .printable = true};
	enum spf_macro_error e = macro_walk(s, len, SPF_MACRO_EXPLAIN, env, &k, NULL, error_r);
	out[e == SPF_MACRO_OK ? k.len : 0] = '\0';
	return e;
}
