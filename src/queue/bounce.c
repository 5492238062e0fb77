/* bounce.c — owns the text of delivery status notifications: the RFC 6522 multipart/report with its
 * human-readable part, the RFC 3464 message/delivery-status part and the returned header section.
 *
 * Everything that came from outside (remote replies, the original header section, addresses) is
 * treated as hostile: it is cleaned so that it cannot end a line, start a header field or a MIME
 * part, or push a line past 998 octets; the boundary is checked against every part it delimits. */
#include "queue/bounce.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/date.h"

/* RFC 5322 §2.1.1: lines SHOULD be at most 78 characters; folding aims for that where the text has
 * spaces, and BOUNCE_LINE_MAX is the hard limit. */
#define BOUNCE_FOLD_FIELD 78
#define BOUNCE_FOLD_TEXT 76
#define BOUNCE_DATE_MAX 64
/* RFC 5321 §4.5.3.1.2: a domain is at most 255 octets; queue ids are far shorter */
#define BOUNCE_TOKEN_MAX 255

const char *bounce_kind_str(enum bounce_kind k)
{
	switch (k) {
	case BOUNCE_KIND_FAILURE: return "failure";
	case BOUNCE_KIND_DELAY: return "delay";
	case BOUNCE_KIND_SUCCESS: return "success";
	}
	return "unknown";
}

const char *bounce_action_str(enum bounce_action a)
{
	switch (a) {
	case BOUNCE_ACTION_FAILED: return "failed";
	case BOUNCE_ACTION_DELAYED: return "delayed";
	case BOUNCE_ACTION_DELIVERED: return "delivered";
	case BOUNCE_ACTION_RELAYED: return "relayed";
	}
	return "unknown";
}

bool bounce_wanted(const char *sender)
{
	static const char daemon[] = "MAILER-DAEMON";

	if (sender == NULL || sender[0] == '\0' || strcmp(sender, "<>") == 0)
		return false; /* RFC 5321 §4.5.5: never a notification about a notification */
	const char *local = sender;
	if (local[0] == '<')
		local++;
	const char *at = strrchr(local, '@');
	size_t len = at != NULL ? (size_t)(at - local) : strlen(local);
	if (at == NULL && len > 0 && local[len - 1] == '>')
		len--;
	/* RFC 5322 §3.2.4: a quoted-string is semantically the same as the atom, so "\"MAILER-DAEMON\"" counts */
	if (len >= 2 && local[0] == '"' && local[len - 1] == '"') {
		local++;
		len -= 2;
	}
	if (len == sizeof(daemon) - 1 && strncasecmp(local, daemon, len) == 0)
		return false;
	return true;
}

/* ---- growing output buffer; an allocation failure is remembered and reported once at the end ---- */

struct bounce_buf {
	char *p;
	size_t len;
	size_t cap;
	bool oom;
};

static void bounce_buf_add(struct bounce_buf *b, const void *s, size_t n)
{
	if (b->oom || n == 0)
		return;
	if (n > SIZE_MAX - b->len - 1) {
		b->oom = true;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap != 0 ? b->cap : 1024;
		while (cap < b->len + n + 1) {
			if (cap > SIZE_MAX / 2) {
				b->oom = true;
				return;
			}
			cap *= 2;
		}
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void bounce_buf_str(struct bounce_buf *b, const char *s)
{
	bounce_buf_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void bounce_buf_printf(struct bounce_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		bounce_buf_add(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (big == NULL) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	bounce_buf_add(b, big, (size_t)n);
	free(big);
}

/* ---- cleaning of outside text ---- */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 §4: no overlong forms, no surrogates,
 * nothing past U+10FFFF), 0 when there is none; *cp_r is its code point. */
static size_t bounce_utf8_len(const unsigned char *s, size_t n, uint32_t *cp_r)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c < 0x80) {
		*cp_r = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		*cp_r = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		*cp_r = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		*cp_r = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
		if (s[i] < lo_i || s[i] > hi_i)
			return 0;
		*cp_r = (*cp_r << 6) | (s[i] & 0x3F);
	}
	return len;
}

/* Makes one line of s: every control character, CR and LF included, and every run of them with spaces
 * becomes a single space, and the ends are trimmed — so a multi-line reply reads as one line and
 * nothing in it can end a line or start a field (RFC 5322 §2.2). Octets >= 0x80: with utf8, well-formed
 * UTF-8 is kept; otherwise each character (or stray octet) becomes '?'. At most max octets are kept;
 * a cut is marked with "...". Returns a malloc'd string, NULL when out of memory. */
static char *bounce_clean(const char *s, size_t len, size_t max, bool utf8)
{
	char *out = malloc(max + 4);
	if (out == NULL)
		return NULL;
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0, i = 0;
	bool space = false;

	while (i < len) {
		unsigned char c = u[i];
		if (c <= 0x20 || c == 0x7F) {
			space = true;
			i++;
			continue;
		}
		const char *piece = s + i;
		size_t plen = 1, used = 1;
		if (c >= 0x80) {
			uint32_t cp;
			size_t k = bounce_utf8_len(u + i, len - i, &cp);
			used = k != 0 ? k : 1;
			if (utf8 && k != 0)
				plen = k;
			else
				piece = "?";
		}
		size_t sep = space && o > 0 ? 1 : 0;
		if (o + sep + plen > max) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (sep)
			out[o++] = ' ';
		space = false;
		memcpy(out + o, piece, plen);
		o += plen;
		i += used;
	}
	out[o] = '\0';
	return out;
}

static bool bounce_is_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

/* Length of a leading RFC 3464 type and its ";" plus following spaces ("smtp; ", "dns;"), 0 when s
 * does not start with one. */
static size_t bounce_type_len(const char *s)
{
	size_t i = 0;
	while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
	       s[i] == '-')
		i++;
	if (i == 0 || s[i] != ';')
		return 0;
	i++;
	while (s[i] == ' ')
		i++;
	return i;
}

/* Whether s holds something after its type ("dns;" alone does not). */
static bool bounce_has_value(const char *s)
{
	return s != NULL && s[bounce_type_len(s)] != '\0';
}

/* ---- line output ---- */

/* Moves i back to the start of the UTF-8 character it falls in, so a break never splits one. */
static size_t bounce_char_start(const char *s, size_t i)
{
	while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
		i--;
	return i;
}

/* Appends s (one line from bounce_clean(): no controls, single spaces) from column col, then CRLF.
 * It breaks before a space to stay within soft octets where the text allows, and never lets a line
 * pass BOUNCE_LINE_MAX: a longer word is cut. Continuation lines begin with indent; for a header
 * field that is whitespace, so each break at a space is a fold that unfolding undoes exactly
 * (RFC 5322 §2.2.3), and a cut word unfolds with one added space. */
static void bounce_fold_add(struct bounce_buf *b, const char *s, size_t col, const char *indent, size_t soft)
{
	size_t n = strlen(s);
	size_t ilen = strlen(indent);

	while (n > 0) {
		if (col + n <= soft) {
			bounce_buf_add(b, s, n);
			break;
		}
		size_t room = soft > col ? soft - col : 0;
		size_t cut = 0;
		for (size_t i = room < n ? room : n - 1; i > 0; i--) {
			if (s[i] == ' ') {
				cut = i;
				break;
			}
		}
		if (cut == 0) {
			/* no space early enough: the word runs to the next space if the line stays legal */
			size_t hard = BOUNCE_LINE_MAX - col;
			const char *sp = memchr(s + 1, ' ', n - 1);
			size_t next = sp != NULL ? (size_t)(sp - s) : n;
			if (next <= hard) {
				cut = next;
			} else {
				cut = bounce_char_start(s, hard);
				if (cut == 0)
					cut = hard;
			}
		}
		bounce_buf_add(b, s, cut);
		s += cut;
		n -= cut;
		if (n == 0)
			break;
		if (s[0] == ' ') {
			/* the space becomes the fold's whitespace */
			s++;
			n--;
		}
		bounce_buf_str(b, "\r\n");
		bounce_buf_str(b, indent);
		col = ilen;
	}
	bounce_buf_str(b, "\r\n");
}

/* "Name: value" as a header field folded at spaces (value from bounce_clean()). */
static void bounce_field_add(struct bounce_buf *b, const char *name, const char *value)
{
	bounce_buf_str(b, name);
	bounce_buf_str(b, ": ");
	bounce_fold_add(b, value, strlen(name) + 2, " ", BOUNCE_FOLD_FIELD);
}

/* A line of the text part: prefix (ours, short) then value, wrapped with indent. */
static void bounce_text_add(struct bounce_buf *b, const char *prefix, const char *value, const char *indent)
{
	struct bounce_buf line = {0};
	bounce_buf_str(&line, prefix);
	bounce_buf_str(&line, value);
	if (line.oom) {
		b->oom = true;
	} else if (line.p != NULL) {
		bounce_fold_add(b, line.p, 0, indent, BOUNCE_FOLD_TEXT);
	} else {
		bounce_buf_str(b, "\r\n");
	}
	free(line.p);
}

/* "type; address" for Final-Recipient / Original-Recipient (RFC 3464 §2.3.1, §2.3.2). An address with
 * UTF-8 gets the "utf-8" type in its utf-8-addr-xtext form (RFC 6533 §3): QCHARs as they are, every
 * other character as \x{HEXPOINT} — so this part stays 7-bit. type may be NULL for "rfc822". */
static void bounce_addr_field_add(struct bounce_buf *b, const char *name, const char *type, const char *addr)
{
	struct bounce_buf v = {0};

	if (bounce_is_ascii(addr)) {
		bounce_buf_str(&v, type != NULL ? type : "rfc822");
		bounce_buf_str(&v, "; ");
		bounce_buf_str(&v, addr);
	} else {
		bounce_buf_str(&v, "utf-8; ");
		const unsigned char *u = (const unsigned char *)addr;
		size_t n = strlen(addr);
		for (size_t i = 0; i < n;) {
			uint32_t cp;
			size_t k = bounce_utf8_len(u + i, n - i, &cp);
			if (k == 0) { /* not reached: addr comes from bounce_clean() */
				cp = '?';
				k = 1;
			}
			/* RFC 6533 §3: QCHAR is %x21-2a / %x2c-3c / %x3e-5b / %x5d-7e */
			if (cp > 0x20 && cp < 0x7F && cp != '+' && cp != '=' && cp != '\\') {
				char c = (char)cp;
				bounce_buf_add(&v, &c, 1);
			} else {
				bounce_buf_printf(&v, "\\x{%02" PRIX32 "}", cp);
			}
			i += k;
		}
	}
	if (v.oom)
		b->oom = true;
	else
		bounce_field_add(b, name, v.p);
	free(v.p);
}

/* ---- status codes ---- */

/* RFC 3463 §2: class "." subject "." detail, class 2, 4 or 5, then 1 to 3 digits twice. */
static bool bounce_status_valid(const char *s)
{
	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	s += 2;
	for (int part = 0; part < 2; part++) {
		size_t d = 0;
		while (s[d] >= '0' && s[d] <= '9')
			d++;
		if (d < 1 || d > 3)
			return false;
		s += d;
		if (part == 0 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

/* The status actually reported, one that fits the action: a delayed recipient is still being tried,
 * so its status is a transient 4.X.X (RFC 3463 §2); a failed one is a permanent 5.X.X, or a 4.X.X that
 * ran out of time, such as X.4.7 (RFC 3463 §3.5). */
static const char *bounce_status_pick(const struct bounce_rcpt *rc)
{
	const char *s = rc->status;
	if (rc->action == BOUNCE_ACTION_DELIVERED || rc->action == BOUNCE_ACTION_RELAYED)
		return bounce_status_valid(s) && s[0] == '2' ? s : "2.0.0"; /* RFC 3463 §3.1: success */
	if (rc->action == BOUNCE_ACTION_DELAYED)
		return bounce_status_valid(s) && s[0] == '4' ? s : "4.0.0";
	return bounce_status_valid(s) && s[0] != '2' ? s : "5.0.0";
}

/* Plain words for RFC 3463 subject.detail codes (§3.1-§3.8; X.1.10 is RFC 7505's null MX). */
static const struct {
	const char *code;
	const char *words;
} bounce_status_words_table[] = {
	{"1.0", "there is a problem with the address"},
	{"1.1", "the recipient's mailbox does not exist"},
	{"1.2", "the recipient's domain does not exist or does not take mail"},
	{"1.3", "the recipient's address is not valid"},
	{"1.4", "the recipient's address is ambiguous"},
	{"1.6", "the recipient's mailbox has moved"},
	{"1.7", "your sender address is not valid"},
	{"1.8", "your sender address's domain is not valid"},
	{"1.10", "the recipient's domain does not accept mail"},
	{"2.0", "there is a problem with the recipient's mailbox"},
	{"2.1", "the recipient's mailbox is disabled"},
	{"2.2", "the recipient's mailbox is full"},
	{"2.3", "the message is larger than the recipient accepts"},
	{"2.4", "a mailing list could not be expanded"},
	{"3.0", "the receiving mail system has a problem"},
	{"3.1", "the receiving mail system is out of space"},
	{"3.2", "the receiving mail system does not accept messages now"},
	{"3.3", "the receiving mail system lacks a feature the message needs"},
	{"3.4", "the message is too large for the receiving mail system"},
	{"3.5", "the receiving mail system is misconfigured"},
	{"4.0", "there is a network or routing problem"},
	{"4.1", "the receiving server did not answer"},
	{"4.2", "the connection to the receiving server failed"},
	{"4.3", "a directory server (such as DNS) failed"},
	{"4.4", "no route to the recipient's domain was found"},
	{"4.5", "the mail system is congested"},
	{"4.6", "the message was caught in a routing loop"},
	{"4.7", "the message could not be delivered in time"},
	{"5.0", "there was a problem talking to the receiving server"},
	{"5.1", "the receiving server rejected a command"},
	{"5.2", "the receiving server reported a syntax error"},
	{"5.3", "the message has too many recipients"},
	{"5.4", "the receiving server rejected a command argument"},
	{"5.5", "the receiving server speaks another protocol version"},
	{"6.0", "there is a problem with the message's content"},
	{"6.1", "the receiving side does not support the message's content"},
	{"6.2", "the content would have to be converted, which is not allowed"},
	{"6.3", "the content would have to be converted, which is not possible"},
	{"6.4", "the content was converted with loss"},
	{"6.5", "converting the content failed"},
	{"7.0", "the message was refused for a security or policy reason"},
	{"7.1", "the recipient's server refused to accept the message"},
	{"7.2", "expanding a mailing list was not allowed"},
	{"7.3", "a needed security conversion was not possible"},
	{"7.4", "a needed security feature is not supported"},
	{"7.5", "a cryptographic operation failed"},
	{"7.6", "a cryptographic algorithm is not supported"},
	{"7.7", "the message failed an integrity check"},
};

static const char *bounce_status_words(const char *status)
{
	const char *sd = status + 2; /* after "5." */
	const char *dot = strchr(sd, '.');
	size_t subject_len = (size_t)(dot - sd);
	const char *generic = NULL;
	size_t n = sizeof(bounce_status_words_table) / sizeof(bounce_status_words_table[0]);

	for (size_t i = 0; i < n; i++) {
		const char *code = bounce_status_words_table[i].code;
		if (strcmp(code, sd) == 0)
			return bounce_status_words_table[i].words;
		if (strncmp(code, sd, subject_len) == 0 && strcmp(code + subject_len, ".0") == 0)
			generic = bounce_status_words_table[i].words;
	}
	if (generic != NULL)
		return generic;
	return status[0] == '5' ? "delivery failed permanently" : "delivery failed for now";
}

/* ---- the report ---- */

/* Values of one recipient, cleaned once for both the text and the delivery-status part. */
struct bounce_clean_rcpt {
	char *addr;
	char *orcpt;
	char *remote_mta;
	char *diagnostic;
	const char *status;
};

static void bounce_clean_rcpts_free(struct bounce_clean_rcpt *c, size_t n)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(c[i].addr);
		free(c[i].orcpt);
		free(c[i].remote_mta);
		free(c[i].diagnostic);
	}
	free(c);
}

static char *bounce_clean_str(const char *s, size_t max, bool utf8)
{
	return bounce_clean(s != NULL ? s : "", s != NULL ? strlen(s) : 0, max, utf8);
}

/* A host name or queue id: cleaned, without spaces, short enough that the fixed lines holding it
 * (From:, Message-ID:, Reporting-MTA:) stay far below the line limit. */
static char *bounce_clean_token(const char *s, size_t max)
{
	char *t = bounce_clean_str(s, max, false);
	if (t != NULL) {
		size_t o = 0;
		for (size_t i = 0; t[i] != '\0'; i++) {
			if (t[i] != ' ')
				t[o++] = t[i];
		}
		t[o] = '\0';
	}
	return t;
}

static struct bounce_clean_rcpt *bounce_clean_rcpts(const struct bounce_report *r)
{
	struct bounce_clean_rcpt *c = calloc(r->rcpt_count, sizeof(*c));
	if (c == NULL)
		return NULL;
	for (size_t i = 0; i < r->rcpt_count; i++) {
		const struct bounce_rcpt *rc = &r->rcpts[i];
		c[i].status = bounce_status_pick(rc);
		c[i].addr = bounce_clean_str(rc->addr, BOUNCE_VALUE_MAX, true);
		if (c[i].addr == NULL)
			goto oom;
		if (rc->orcpt != NULL && (c[i].orcpt = bounce_clean_str(rc->orcpt, BOUNCE_VALUE_MAX, true)) == NULL)
			goto oom;
		if (rc->remote_mta != NULL &&
		    (c[i].remote_mta = bounce_clean_str(rc->remote_mta, BOUNCE_VALUE_MAX, false)) == NULL)
			goto oom;
		if (rc->diagnostic != NULL) {
			size_t len = rc->diagnostic_len != 0 ? rc->diagnostic_len : strlen(rc->diagnostic);
			/* the delivery-status part is 7-bit: RFC 3464 §2.1 fields are US-ASCII text */
			c[i].diagnostic = bounce_clean(rc->diagnostic, len, BOUNCE_DIAG_MAX, false);
			if (c[i].diagnostic == NULL)
				goto oom;
		}
	}
	return c;
oom:
	bounce_clean_rcpts_free(c, r->rcpt_count);
	return NULL;
}

/* The human-readable first part (RFC 6522 §3: it explains the report in the sender's terms). */
static void bounce_text_part(struct bounce_buf *b, const struct bounce_report *r, const char *host, const char *qid,
			     const struct bounce_clean_rcpt *c, bool full, bool full_refused)
{
	char date[BOUNCE_DATE_MAX];

	bounce_buf_printf(b, "This is the mail delivery system at %s.\r\n\r\n", host);
	if (r->withhold_content) {
		bounce_buf_str(b, r->kind == BOUNCE_KIND_SUCCESS
					  ? "You asked to be told when your message was delivered. It has been\r\n"
					    "delivered to the recipients below, or handed on to a server that\r\n"
					    "does not report delivery itself.\r\n"
				  : r->kind == BOUNCE_KIND_DELAY
					  ? "Your message has not been delivered to one or more of its recipients\r\n"
					    "yet. It is still in the queue and delivery will be retried.\r\n"
					  : "Your message could not be delivered to one or more of its recipients.\r\n"
					    "Delivery to them has been given up and will not be retried.\r\n");
		bounce_buf_str(b, "\r\nNothing of your message is attached: it was sent with REQUIRETLS,\r\n"
				  "and this report may travel without TLS.\r\n");
	} else if (r->kind == BOUNCE_KIND_SUCCESS) {
		bounce_buf_str(b, "You asked to be told when your message was delivered. It has been\r\n"
				  "delivered to the recipients below, or handed on to a server that\r\n"
				  "does not report delivery itself. The header of your message is\r\n"
				  "attached.\r\n");
	} else if (r->kind == BOUNCE_KIND_DELAY) {
		bounce_buf_str(b, "Your message has not been delivered to one or more of its recipients\r\n"
				  "yet. It is still in the queue and delivery will be retried; you do\r\n"
				  "not need to send it again. If it cannot be delivered in the end, you\r\n"
				  "will get another notice.\r\n");
	} else {
		bounce_buf_str(b, "Your message could not be delivered to one or more of its recipients.\r\n"
				  "Delivery to them has been given up and will not be retried. The\r\n");
		if (full)
			bounce_buf_str(b, "details follow; your message is attached.\r\n");
		else if (full_refused)
			bounce_buf_str(b, "details follow. Your message is too large (or has lines too long)\r\n"
					  "to be returned whole: only its header is attached.\r\n");
		else
			bounce_buf_str(b, "details follow; the header of your message is attached.\r\n");
	}
	bounce_buf_str(b, "\r\n");
	bounce_text_add(b, "Queue ID: ", qid, "    ");
	if (r->arrival != 0) {
		date_rfc5322_format(r->arrival, date, sizeof(date));
		bounce_text_add(b, "Received: ", date, "    ");
	}
	for (size_t i = 0; i < r->rcpt_count; i++) {
		const struct bounce_rcpt *rc = &r->rcpts[i];
		bool delayed = rc->action == BOUNCE_ACTION_DELAYED;
		bool ok = rc->action == BOUNCE_ACTION_DELIVERED || rc->action == BOUNCE_ACTION_RELAYED;
		struct bounce_buf line = {0};

		bounce_buf_str(b, "\r\n");
		bounce_buf_printf(&line, "<%s>: %s", c[i].addr,
				  rc->action == BOUNCE_ACTION_DELIVERED ? "delivered to the mailbox"
				  : rc->action == BOUNCE_ACTION_RELAYED ? "relayed to a server that does not report delivery"
				  : delayed				? "not delivered yet"
									: "could not be delivered");
		bounce_text_add(b, "", line.oom ? "" : line.p, "    ");
		b->oom |= line.oom;
		free(line.p);
		if (!ok) {
			line = (struct bounce_buf){0};
			bounce_buf_printf(&line, "%s (status %s).", bounce_status_words(c[i].status), c[i].status);
			bounce_text_add(b, "    Reason: ", line.oom ? "" : line.p, "    ");
			b->oom |= line.oom;
			free(line.p);
		}
		if (bounce_has_value(c[i].remote_mta))
			bounce_text_add(b, "    Remote server: ", c[i].remote_mta + bounce_type_len(c[i].remote_mta), "    ");
		if (bounce_has_value(c[i].diagnostic)) {
			size_t t = bounce_type_len(c[i].diagnostic);
			bool smtp = t == 0 || strncasecmp(c[i].diagnostic, "smtp;", 5) == 0;
			bounce_text_add(b, smtp ? "    The remote server replied: " : "    Details: ", c[i].diagnostic + t,
					"    ");
		}
		if (rc->last_attempt != 0) {
			date_rfc5322_format(rc->last_attempt, date, sizeof(date));
			bounce_text_add(b, ok ? "    Delivered: " : "    Last attempt: ", date, "    ");
		}
		if (delayed && rc->retry_until != 0) {
			date_rfc5322_format(rc->retry_until, date, sizeof(date));
			bounce_text_add(b, "    Delivery will be tried until: ", date, "    ");
		}
	}
}

/* "type; value" where value may lack its type (then default_type is put in front). */
static void bounce_typed_field_add(struct bounce_buf *b, const char *name, const char *default_type, const char *value)
{
	if (bounce_type_len(value) != 0) {
		bounce_field_add(b, name, value);
		return;
	}
	struct bounce_buf v = {0};
	bounce_buf_printf(&v, "%s; %s", default_type, value);
	if (v.oom)
		b->oom = true;
	else
		bounce_field_add(b, name, v.p);
	free(v.p);
}

/* The machine-readable part: RFC 3464 §2.2 per-message fields, then for each recipient a blank line
 * and its §2.3 fields, in the order the RFC lists them. */
static void bounce_status_part(struct bounce_buf *b, const struct bounce_report *r, const char *host, const char *qid,
			       const char *envid, const struct bounce_clean_rcpt *c)
{
	char date[BOUNCE_DATE_MAX];

	if (envid != NULL)
		bounce_field_add(b, "Original-Envelope-Id", envid); /* RFC 3461 §6.3 a */
	bounce_buf_printf(b, "Reporting-MTA: dns; %s\r\n", host);
	/* RFC 3464 §2.4: an X- extension field, so the sender can quote the id to the postmaster */
	bounce_field_add(b, "X-Mailwerk-Queue-ID", qid);
	if (r->arrival != 0) {
		date_rfc5322_format(r->arrival, date, sizeof(date));
		bounce_field_add(b, "Arrival-Date", date);
	}
	for (size_t i = 0; i < r->rcpt_count; i++) {
		const struct bounce_rcpt *rc = &r->rcpts[i];
		bounce_buf_str(b, "\r\n");
		if (c[i].orcpt != NULL) {
			/* RFC 3461 §6.3 d: taken from ORCPT; a value without a type is an rfc822 address */
			size_t t = bounce_type_len(c[i].orcpt);
			char type[64] = "rfc822";
			if (t != 0) {
				size_t tl = (size_t)(strchr(c[i].orcpt, ';') - c[i].orcpt);
				if (tl < sizeof(type)) {
					memcpy(type, c[i].orcpt, tl);
					type[tl] = '\0';
				}
			}
			bounce_addr_field_add(b, "Original-Recipient", type, c[i].orcpt + t);
		}
		bounce_addr_field_add(b, "Final-Recipient", NULL, c[i].addr);
		bounce_field_add(b, "Action", bounce_action_str(rc->action));
		bounce_field_add(b, "Status", c[i].status);
		if (bounce_has_value(c[i].remote_mta))
			bounce_typed_field_add(b, "Remote-MTA", "dns", c[i].remote_mta);
		if (bounce_has_value(c[i].diagnostic))
			bounce_typed_field_add(b, "Diagnostic-Code", "smtp", c[i].diagnostic);
		if (rc->last_attempt != 0) {
			date_rfc5322_format(rc->last_attempt, date, sizeof(date));
			bounce_field_add(b, "Last-Attempt-Date", date);
		}
		/* RFC 3464 §2.3: Will-Retry-Until belongs to "delayed" reports only */
		if (rc->action == BOUNCE_ACTION_DELAYED && rc->retry_until != 0) {
			date_rfc5322_format(rc->retry_until, date, sizeof(date));
			bounce_field_add(b, "Will-Retry-Until", date);
		}
	}
}

/* RFC 5322 §2.2: a field line starts with a name of printable characters other than ':' and then,
 * after optional whitespace (obsolete syntax, §4.5), the colon. */
static bool bounce_is_field_line(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7F && s[i] != ':')
		i++;
	if (i == 0)
		return false;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i < n && s[i] == ':';
}

/* Appends one cleaned header line (no CR/LF) plus CRLF, split so that no line passes BOUNCE_LINE_MAX. */
static void bounce_header_line_add(struct bounce_buf *b, const char *s, size_t n)
{
	size_t col = 0; /* octets already on the current output line */

	while (col + n > BOUNCE_LINE_MAX) {
		/* break before the last whitespace that keeps the line legal — a fold (RFC 5322 §2.2.3) — or,
		 * when there is none, cut and begin the continuation with a space */
		size_t room = BOUNCE_LINE_MAX - col;
		size_t cut = 0;
		for (size_t i = room; i > 0; i--) {
			if (s[i] == ' ' || s[i] == '\t') {
				cut = i;
				break;
			}
		}
		bool fold = cut != 0;
		if (!fold) {
			cut = bounce_char_start(s, room);
			if (cut == 0)
				cut = room;
		}
		bounce_buf_add(b, s, cut);
		bounce_buf_str(b, fold ? "\r\n" : "\r\n ");
		col = fold ? 0 : 1;
		s += cut;
		n -= cut;
	}
	bounce_buf_add(b, s, n);
	bounce_buf_str(b, "\r\n");
}

/* The header section of the original for the third part: lines up to the first empty one, or up to
 * the first line that is neither a field nor a continuation — where a message without the empty
 * line runs into its body — so no body text is ever returned. Line ends become CRLF; control
 * characters other than HTAB (NUL, stray CR) are dropped; octets that are not well-formed UTF-8
 * become '?'. */
static void bounce_headers_part(struct bounce_buf *b, const char *msg, size_t len)
{
	const unsigned char *u = (const unsigned char *)msg;
	size_t pos = 0;
	bool first = true;
	struct bounce_buf line = {0};

	while (pos < len && b->len < BOUNCE_HEADERS_MAX && !b->oom) {
		const char *lf = memchr(msg + pos, '\n', len - pos);
		size_t end = lf != NULL ? (size_t)(lf - msg) : len;
		size_t next = lf != NULL ? end + 1 : len;
		size_t e = end;
		while (e > pos && msg[e - 1] == '\r')
			e--;
		if (e == pos)
			break; /* the empty line: end of the header section */
		bool cont = msg[pos] == ' ' || msg[pos] == '\t';
		if (cont ? first : !bounce_is_field_line(msg + pos, e - pos))
			break;
		first = false;
		line.len = 0;
		size_t room = BOUNCE_HEADERS_MAX - b->len;
		for (size_t i = pos; i < e && line.len <= room;) {
			unsigned char ch = u[i];
			if (ch >= 0x80) {
				uint32_t cp;
				size_t k = bounce_utf8_len(u + i, e - i, &cp);
				if (k == 0) {
					bounce_buf_add(&line, "?", 1);
					i++;
				} else {
					bounce_buf_add(&line, msg + i, k);
					i += k;
				}
				continue;
			}
			if ((ch >= 0x20 && ch != 0x7F) || ch == '\t')
				bounce_buf_add(&line, msg + i, 1);
			i++;
		}
		if (line.oom) {
			b->oom = true;
			break;
		}
		/* a continuation that was only whitespace (or control characters) carries nothing */
		size_t ws = 0;
		while (ws < line.len && (line.p[ws] == ' ' || line.p[ws] == '\t'))
			ws++;
		if (ws == line.len) {
			pos = next;
			continue;
		}
		/* the cap also holds for one enormous line */
		if (line.len > room) {
			line.len = bounce_char_start(line.p, room);
			if (line.len == 0)
				break;
		}
		bounce_header_line_add(b, line.p, line.len);
		pos = next;
	}
	free(line.p);
}

/* RFC 2046 §5.1.1: the boundary must not occur in any encapsulated part. Candidates are the random hex
 * plus a fixed-width counter; since at most one candidate can match at each offset of the content,
 * one of the first (content length + 1) candidates is free, so the loop ends. */
static void bounce_boundary_pick(char out[80], const unsigned char random[BOUNCE_RANDOM_LEN],
				 const struct bounce_buf *parts, size_t nparts)
{
	static const char hex[] = "0123456789abcdef";
	char rnd[2 * BOUNCE_RANDOM_LEN + 1];

	for (size_t i = 0; i < BOUNCE_RANDOM_LEN; i++) {
		rnd[2 * i] = hex[random[i] >> 4];
		rnd[2 * i + 1] = hex[random[i] & 15];
	}
	rnd[2 * BOUNCE_RANDOM_LEN] = '\0';
	for (uint32_t counter = 0;; counter++) {
		/* token characters only, 54 octets: within RFC 2046's 70 and needs no quoting */
		snprintf(out, 80, "mailwerk-dsn-%s-%08" PRIx32, rnd, counter);
		size_t blen = strlen(out);
		bool found = false;
		for (size_t p = 0; p < nparts && !found; p++)
			found = parts[p].p != NULL && memmem(parts[p].p, parts[p].len, out, blen) != NULL;
		if (!found)
			return;
	}
}

/* Whether the original can be returned whole (RET=FULL) as a message/rfc822 part without breaking
 * the report: not over BOUNCE_FULL_MAX, CRLF line ends only, no NUL, no line over BOUNCE_LINE_MAX
 * (RFC 5322 §2.1.1). What mailwerk queues keeps to this; anything else goes back as its header. */
static bool bounce_full_ok(const char *msg, size_t len)
{
	size_t col = 0;
	if (msg == NULL || len == 0 || len > BOUNCE_FULL_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = msg[i];
		if (c == '\0' || (c == '\r' && (i + 1 == len || msg[i + 1] != '\n')) || (c == '\n' && (i == 0 || msg[i - 1] != '\r')))
			return false;
		if (c == '\r')
			continue;
		col = c == '\n' ? 0 : col + 1;
		if (col > BOUNCE_LINE_MAX)
			return false;
	}
	return true;
}

static bool bounce_has_8bit(const struct bounce_buf *b)
{
	for (size_t i = 0; i < b->len; i++) {
		if ((unsigned char)b->p[i] >= 0x80)
			return true;
	}
	return false;
}

char *bounce_compose(const struct bounce_report *r, size_t *size_r)
{
	if (!bounce_wanted(r->sender) || r->rcpt_count == 0)
		return NULL;

	char *host = bounce_clean_token(r->hostname, BOUNCE_TOKEN_MAX);
	char *qid = bounce_clean_token(r->queue_id, BOUNCE_TOKEN_MAX);
	char *sender = bounce_clean_str(r->sender, BOUNCE_VALUE_MAX, true);
	char *envid = r->envid != NULL ? bounce_clean_str(r->envid, BOUNCE_VALUE_MAX, false) : NULL;
	struct bounce_clean_rcpt *c = bounce_clean_rcpts(r);
	struct bounce_buf parts[3] = {{0}, {0}, {0}};
	struct bounce_buf out = {0};
	char *result = NULL;
	bool headers_utf8 = false;

	if (host == NULL || qid == NULL || sender == NULL || (r->envid != NULL && envid == NULL) || c == NULL)
		goto done;

	/* RFC 3461 §4.3: RET=FULL asks for the whole message in a failure report; a report without a
	 * failure returns the header section only */
	bool want_full = r->return_full && r->kind == BOUNCE_KIND_FAILURE && !r->withhold_content;
	bool full = want_full && bounce_full_ok(r->original, r->original_len);
	bounce_text_part(&parts[0], r, host, qid, c, full, want_full && !full);
	bounce_status_part(&parts[1], r, host, qid, envid, c);
	bounce_headers_part(&parts[2], r->original != NULL ? r->original : "", r->original != NULL ? r->original_len : 0);
	if (parts[0].oom || parts[1].oom || parts[2].oom)
		goto done;
	/* UTF-8 left in the header section makes it message/global-headers (RFC 6533 §4), and a whole
	 * message with it message/global (RFC 6533 §3) */
	headers_utf8 = bounce_has_8bit(&parts[2]);
	bool full_8bit = false;
	if (full) {
		parts[2].len = 0;
		bounce_buf_add(&parts[2], r->original, r->original_len);
		if (r->original_len < 2 || memcmp(r->original + r->original_len - 2, "\r\n", 2) != 0)
			bounce_buf_str(&parts[2], "\r\n");
		if (parts[2].oom)
			goto done;
		full_8bit = bounce_has_8bit(&parts[2]);
	}

	char boundary[80], date[BOUNCE_DATE_MAX];
	bool text_8bit = bounce_has_8bit(&parts[0]);
	date_rfc5322_format(r->now, date, sizeof(date));

	/* the report's author is the mail system itself */
	bounce_buf_str(&out, "From: Mail Delivery System <MAILER-DAEMON@");
	bounce_buf_str(&out, host);
	bounce_buf_str(&out, ">\r\n");
	struct bounce_buf to = {0};
	bounce_buf_printf(&to, "<%s>", sender);
	if (to.oom)
		out.oom = true;
	else
		bounce_field_add(&out, "To", to.p);
	free(to.p);
	bounce_field_add(&out, "Subject", r->kind == BOUNCE_KIND_DELAY     ? "Delayed Mail (still being retried)"
					  : r->kind == BOUNCE_KIND_SUCCESS ? "Successful Mail Delivery Report"
									   : "Undelivered Mail Returned to Sender");
	bounce_field_add(&out, "Date", date);
	/* one failure report, one delay warning and success reports per message: their ids differ (a
	 * success report of a later attempt gets the time of its own in the id) */
	if (r->kind == BOUNCE_KIND_SUCCESS)
		bounce_buf_printf(&out, "Message-ID: <%s.dsn-success.%lld@%s>\r\n", qid, (long long)r->now, host);
	else
		bounce_buf_printf(&out, "Message-ID: <%s.%s@%s>\r\n", qid, r->kind == BOUNCE_KIND_DELAY ? "dsn-delay" : "dsn",
				  host);
	/* RFC 3834 §5: a response generated automatically to a message */
	bounce_buf_str(&out, "Auto-Submitted: auto-replied\r\n");
	bounce_buf_str(&out, "MIME-Version: 1.0\r\n");
	if (out.oom)
		goto done;
	/* the header fields so far (the sender's address is in To:) are checked with the parts, so the
	 * boundary occurs nowhere but in its own parameter and delimiters */
	struct bounce_buf checked[4] = {parts[0], parts[1], parts[2], out};
	bounce_boundary_pick(boundary, r->random, checked, 4);
	bounce_buf_printf(&out, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n",
			  boundary);
	/* RFC 2045 §6.4: a multipart is 7bit or 8bit as its parts are */
	bounce_buf_printf(&out, "Content-Transfer-Encoding: %s\r\n", text_8bit || headers_utf8 || full_8bit ? "8bit" : "7bit");
	bounce_buf_str(&out, "\r\nThis is a MIME-encapsulated message: a delivery status notification (RFC 3464).\r\n");

	bounce_buf_printf(&out, "\r\n--%s\r\n", boundary);
	bounce_buf_str(&out, "Content-Description: Notification\r\n");
	bounce_buf_printf(&out, "Content-Type: text/plain; charset=%s\r\n", text_8bit ? "utf-8" : "us-ascii");
	bounce_buf_printf(&out, "Content-Transfer-Encoding: %s\r\n\r\n", text_8bit ? "8bit" : "7bit");
	bounce_buf_add(&out, parts[0].p, parts[0].len);

	bounce_buf_printf(&out, "\r\n--%s\r\n", boundary);
	bounce_buf_str(&out, "Content-Description: Delivery report\r\n");
	bounce_buf_str(&out, "Content-Type: message/delivery-status\r\n\r\n");
	bounce_buf_add(&out, parts[1].p, parts[1].len);

	if (r->withhold_content) {
		bounce_buf_printf(&out, "\r\n--%s--\r\n", boundary);
		goto composed;
	}
	bounce_buf_printf(&out, "\r\n--%s\r\n", boundary);
	if (full) {
		/* RFC 3464 §2: the returned message as message/rfc822 (RFC 6533 §3 message/global with UTF-8
		 * in its header); RFC 2046 §5.2.1 allows 8bit for it */
		bounce_buf_str(&out, "Content-Description: Undelivered message\r\n");
		bounce_buf_printf(&out, "Content-Type: %s\r\nContent-Transfer-Encoding: %s\r\n\r\n",
				  headers_utf8 ? "message/global" : "message/rfc822", full_8bit ? "8bit" : "7bit");
	} else if (r->kind == BOUNCE_KIND_SUCCESS) {
		bounce_buf_str(&out, "Content-Description: Message headers\r\n");
	} else {
		bounce_buf_str(&out, "Content-Description: Undelivered message headers\r\n");
	}
	/* RFC 6522 §4 text/rfc822-headers; with UTF-8 in them, RFC 6533 §4 message/global-headers */
	if (full)
		; /* its type is above */
	else if (headers_utf8)
		bounce_buf_str(&out, "Content-Type: message/global-headers\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
	else
		bounce_buf_str(&out, "Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 7bit\r\n\r\n");
	bounce_buf_add(&out, parts[2].p, parts[2].len);
	bounce_buf_printf(&out, "\r\n--%s--\r\n", boundary);

composed:
	if (!out.oom && out.p != NULL) {
		result = out.p;
		*size_r = out.len;
		out.p = NULL;
	}
done:
	free(out.p);
	for (size_t i = 0; i < 3; i++)
		free(parts[i].p);
	bounce_clean_rcpts_free(c, r->rcpt_count);
	free(host);
	free(qid);
	free(sender);
	free(envid);
	return result;
}
