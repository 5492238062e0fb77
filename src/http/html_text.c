/* html_text.c — compose_html_to_text (declared in compose.h): the plain text a reader sees in an html
 * body, for the text/plain alternative of an html-only message. A single forward pass over the input
 * with no recursion and no backtracking, so hostile input (unterminated tags, comments and entities,
 * megabytes of '<') costs linear time; tags are recognised roughly the way the WHATWG tokenizer
 * does (§13.2.5), which is all a text rendering needs. */
#include "http/compose.h"
#include "util/hex.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Tag names we act on are short; a longer name is an element we do not know. */
#define HTML_NAME_MAX 16
/* The longest entity name in our table plus room: "&" name ";" beyond this is plain text. */
#define HTML_ENTITY_MAX 10

struct html_out {
	char *buf;
	size_t len, cap;
	unsigned breaks; /* line breaks owed before the next text */
	bool space;      /* a collapsed whitespace run owed before the next text */
	bool failed;     /* out of memory: the result is NULL */
};

struct html_tag {
	char name[HTML_NAME_MAX + 1]; /* lower case; "" when too long or not a name */
	bool closing;
	const char *href, *alt; /* raw attribute values (entities not decoded), NULL when absent */
	size_t href_len, alt_len;
};

static bool html_out_reserve(struct html_out *o, size_t n)
{
	if (o->failed)
		return false;
	if (o->cap - o->len > n)
		return true;
	size_t cap = o->cap ? o->cap : 256;
	while (cap - o->len <= n) {
		if (cap > SIZE_MAX / 2) {
			o->failed = true;
			return false;
		}
		cap *= 2;
	}
	char *b = realloc(o->buf, cap);
	if (b == NULL) {
		o->failed = true;
		return false;
	}
	o->buf = b;
	o->cap = cap;
	return true;
}

/* Visible text: first whatever line breaks or space are owed (none at the very start, so the
 * result needs no leading trim; three or more breaks fold into one blank line). */
static void html_out_text(struct html_out *o, const char *s, size_t n)
{
	if (n == 0 || !html_out_reserve(o, n + 2))
		return;
	if (o->len > 0 && o->breaks > 0) {
		for (unsigned i = 0; i < o->breaks && i < 2; i++)
			o->buf[o->len++] = '\n';
	} else if (o->len > 0 && o->space && o->buf[o->len - 1] != '\n') {
		o->buf[o->len++] = ' ';
	}
	o->breaks = 0;
	o->space = false;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

/* A block boundary owes at least n breaks; <br> adds one to whatever is owed. */
static void html_out_block(struct html_out *o, unsigned n)
{
	if (o->breaks < n)
		o->breaks = n;
}

static void html_out_utf8(struct html_out *o, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	html_out_text(o, b, n);
}

static const struct {
	const char *name;
	uint32_t cp;
} html_entities[] = {
	{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", ' '},
	{"copy", 0xa9}, {"reg", 0xae}, {"trade", 0x2122}, {"hellip", 0x2026}, {"mdash", 0x2014},
	{"ndash", 0x2013}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201c}, {"rdquo", 0x201d},
	{"bull", 0x2022}, {"middot", 0xb7}, {"euro", 0x20ac}, {"laquo", 0xab}, {"raquo", 0xbb},
	{"shy", 0}, /* a soft hyphen is invisible */
};

static bool html_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool html_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool html_is_alnum(char c)
{
	return html_is_alpha(c) || (c >= '0' && c <= '9');
}

/* The character reference at s[0] == '&' (n octets available): emitted, and its length returned;
 * 0 when it is none, so that the '&' is literal text (as the WHATWG tokenizer leaves unknown ones). */
static size_t html_entity(struct html_out *o, const char *s, size_t n, bool pre)
{
	size_t i = 1;
	if (i < n && s[i] == '#') {
		bool hex = i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X');
		i += hex ? 2 : 1;
		size_t start = i;
		uint32_t cp = 0;
		for (; i < n; i++) {
			int d = hex ? hex_digit_value((unsigned char)(s[i])) : (s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : -1);
			if (d < 0)
				break;
			/* saturate: anything past U+10FFFF is as invalid as the overflow would be */
			cp = cp > 0x10ffff ? cp : cp * (hex ? 16 : 10) + (uint32_t)d;
		}
		if (i == start)
			return 0;
		if (i < n && s[i] == ';')
			i++;
		/* WHATWG §13.2.5.80: NUL, surrogates and out-of-range values become U+FFFD; so do the
		 * other C0 controls, which have no business in text/plain */
		if (cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == ' ') {
			if (pre && cp == '\n')
				o->breaks++;
			else if (pre)
				html_out_text(o, " ", 1);
			else
				o->space = true;
		} else if (cp < 0x20 || cp == 0x7f || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
			html_out_utf8(o, 0xfffd);
		} else {
			html_out_utf8(o, cp);
		}
		return i;
	}
	while (i < n && i <= HTML_ENTITY_MAX && html_is_alnum(s[i]))
		i++;
	if (i == 1 || i >= n || s[i] != ';')
		return 0;
	for (size_t k = 0; k < sizeof(html_entities) / sizeof(html_entities[0]); k++) {
		const char *name = html_entities[k].name;
		if (strlen(name) == i - 1 && memcmp(name, s + 1, i - 1) == 0) {
			if (html_entities[k].cp != 0)
				html_out_utf8(o, html_entities[k].cp);
			return i + 1;
		}
	}
	return 0;
}

/* Text between tags (or an attribute value shown as text): entities decoded, whitespace runs
 * collapsed to one space unless inside <pre>. */
static void html_text_run(struct html_out *o, const char *s, size_t n, bool pre)
{
	size_t i = 0;
	while (i < n && !o->failed) {
		size_t start = i;
		while (i < n && s[i] != '&' && !html_is_space(s[i]))
			i++;
		html_out_text(o, s + start, i - start);
		if (i >= n)
			break;
		if (s[i] == '&') {
			size_t used = html_entity(o, s + i, n - i, pre);
			if (used == 0) {
				html_out_text(o, "&", 1);
				used = 1;
			}
			i += used;
		} else if (pre) {
			/* CRLF is one line break; breaks owed fold like any others */
			if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			if (s[i] == '\n' || s[i] == '\r')
				o->breaks++;
			else
				html_out_text(o, " ", 1);
			i++;
		} else {
			o->space = true;
			i++;
		}
	}
}

/* The tag starting at s[i] == '<' with a name or "/" name after it: its end (just past '>'), or 0
 * when the input ends first. Attribute values may be quoted and then hold '>'. */
static size_t html_tag_parse(const char *s, size_t n, size_t i, struct html_tag *t)
{
	memset(t, 0, sizeof(*t));
	i++;
	if (s[i] == '/') {
		t->closing = true;
		i++;
	}
	size_t nlen = 0;
	while (i < n && !html_is_space(s[i]) && s[i] != '>' && s[i] != '/') {
		if (nlen < HTML_NAME_MAX + 1)
			t->name[nlen] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i]);
		nlen++;
		i++;
	}
	t->name[nlen <= HTML_NAME_MAX ? nlen : 0] = '\0';
	for (;;) {
		while (i < n && (html_is_space(s[i]) || s[i] == '/'))
			i++;
		if (i >= n)
			return 0;
		if (s[i] == '>')
			return i + 1;
		size_t an = i;
		/* at least one octet, so that a stray '=' or quote still moves us on */
		do
			i++;
		while (i < n && !html_is_space(s[i]) && s[i] != '>' && s[i] != '/' && s[i] != '=');
		size_t alen = i - an;
		while (i < n && html_is_space(s[i]))
			i++;
		const char *v = NULL;
		size_t vlen = 0;
		if (i < n && s[i] == '=') {
			i++;
			while (i < n && html_is_space(s[i]))
				i++;
			if (i < n && (s[i] == '"' || s[i] == '\'')) {
				const char *q = memchr(s + i + 1, s[i], n - i - 1);
				if (q == NULL)
					return 0;
				v = s + i + 1;
				vlen = (size_t)(q - v);
				i = (size_t)(q - s) + 1;
			} else {
				v = s + i;
				while (i < n && !html_is_space(s[i]) && s[i] != '>')
					i++;
				vlen = (size_t)(s + i - v);
			}
		}
		if (v != NULL && alen == 4 && strncasecmp(s + an, "href", 4) == 0) {
			t->href = v;
			t->href_len = vlen;
		} else if (v != NULL && alen == 3 && strncasecmp(s + an, "alt", 3) == 0) {
			t->alt = v;
			t->alt_len = vlen;
		}
	}
}

/* Where "</name" starts at or after i (case-insensitive), or n: the end of <script>, <style> and
 * <title> content, which is raw text (WHATWG §13.2.5.2-4) and not shown. */
static size_t html_find_end_tag(const char *s, size_t n, size_t i, const char *name)
{
	size_t nl = strlen(name);
	for (; i + 2 + nl <= n; i++) {
		if (s[i] == '<' && s[i + 1] == '/' && strncasecmp(s + i + 2, name, nl) == 0 &&
		    (i + 2 + nl == n || !html_is_alnum(s[i + 2 + nl])))
			return i;
	}
	return n;
}

static bool html_name_in(const char *name, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(name, *list) == 0)
			return true;
	return false;
}

static const char *const html_blocks[] = {
	"div", "tr", "table", "ul", "ol", "dl", "dt", "dd", "li", "section", "article", "header", "footer",
	"nav", "aside", "main", "blockquote", "hr", "form", "center", "address", "figure", "figcaption",
	"pre", "tbody", "thead", "tfoot", "caption", "body", "html", NULL,
};
static const char *const html_paragraphs[] = {"p", "h1", "h2", "h3", "h4", "h5", "h6", NULL};

struct html_link {
	char *href;     /* decoded, NULL when no link is open or it is not worth showing */
	size_t start;   /* where its text starts in the output */
};

/* The href as text: entities decoded, whitespace collapsed and trimmed. NULL for in-page anchors and
 * scripts, which mean nothing in plain text. */
static char *html_href_decode(const char *s, size_t n)
{
	struct html_out t = {0};
	html_text_run(&t, s, n, false);
	if (t.failed || t.len == 0 || t.buf[0] == '#' ||
	    (t.len >= 11 && strncasecmp(t.buf, "javascript:", 11) == 0)) {
		free(t.buf);
		return NULL;
	}
	t.buf[t.len] = '\0';
	return t.buf;
}

/* RFC-less convention of text mails: "text (URL)", or the URL alone when the text is the URL. */
static void html_link_close(struct html_out *o, struct html_link *l)
{
	if (l->href == NULL)
		return;
	size_t s = l->start;
	while (s < o->len && html_is_space(o->buf[s]))
		s++;
	const char *text = o->buf + s;
	size_t tlen = o->len - s, hlen = strlen(l->href);
	bool same = (tlen == hlen && memcmp(text, l->href, hlen) == 0) ||
		    (hlen > 7 && strncasecmp(l->href, "mailto:", 7) == 0 && tlen == hlen - 7 &&
		     memcmp(text, l->href + 7, tlen) == 0);
	if (s >= o->len) {
		html_out_text(o, l->href, hlen);
	} else if (!same) {
		o->space = true;
		html_out_text(o, "(", 1);
		html_out_text(o, l->href, hlen);
		html_out_text(o, ")", 1);
	}
	free(l->href);
	l->href = NULL;
}

static void html_tag_apply(struct html_out *o, const struct html_tag *t, struct html_link *link,
			   unsigned *pre)
{
	const char *nm = t->name;
	if (strcmp(nm, "br") == 0) {
		o->breaks++;
	} else if (html_name_in(nm, html_paragraphs)) {
		html_out_block(o, 2);
	} else if (html_name_in(nm, html_blocks)) {
		html_out_block(o, 1);
		if (strcmp(nm, "pre") == 0 && !t->closing)
			(*pre)++;
		else if (strcmp(nm, "pre") == 0 && *pre > 0)
			(*pre)--;
		if (strcmp(nm, "li") == 0 && !t->closing) {
			html_out_text(o, "-", 1);
			o->space = true;
		}
	} else if ((strcmp(nm, "td") == 0 || strcmp(nm, "th") == 0) && t->closing) {
		o->space = true;
	} else if (strcmp(nm, "a") == 0) {
		/* an <a> inside an open one closes it first, as the adoption agency would */
		html_link_close(o, link);
		if (!t->closing && t->href != NULL) {
			link->href = html_href_decode(t->href, t->href_len);
			link->start = o->len;
		}
	} else if (strcmp(nm, "img") == 0 && t->alt != NULL) {
		html_text_run(o, t->alt, t->alt_len, false);
	}
}

char *compose_html_to_text(const char *html)
{
	struct html_out o = {0};
	struct html_link link = {0};
	unsigned pre = 0;
	size_t n = html != NULL ? strlen(html) : 0, i = 0;
	while (i < n && !o.failed) {
		size_t start = i;
		const char *lt = memchr(html + i, '<', n - i);
		i = lt != NULL ? (size_t)(lt - html) : n;
		html_text_run(&o, html + start, i - start, pre > 0);
		if (i >= n)
			break;
		char c = i + 1 < n ? html[i + 1] : '\0';
		if (c == '!' && i + 3 < n && html[i + 2] == '-' && html[i + 3] == '-') {
			/* a comment; one never closed hides the rest, as in a browser */
			const char *end = strstr(html + i + 4, "-->");
			i = end != NULL ? (size_t)(end - html) + 3 : n;
		} else if (c == '!' || c == '?') {
			/* <!DOCTYPE ...>, <![CDATA[...]]> and processing instructions */
			const char *end = memchr(html + i, '>', n - i);
			i = end != NULL ? (size_t)(end - html) + 1 : n;
		} else if (html_is_alpha(c) || (c == '/' && i + 2 < n && html_is_alpha(html[i + 2]))) {
			struct html_tag t;
			size_t end = html_tag_parse(html, n, i, &t);
			if (end == 0)
				break; /* the WHATWG tokenizer drops a tag cut off by the end of input */
			i = end;
			if (!t.closing && (strcmp(t.name, "script") == 0 || strcmp(t.name, "style") == 0 ||
					   strcmp(t.name, "title") == 0)) {
				i = html_find_end_tag(html, n, i, t.name);
				const char *gt = memchr(html + i, '>', n - i);
				i = gt != NULL ? (size_t)(gt - html) + 1 : n;
				continue;
			}
			html_tag_apply(&o, &t, &link, &pre);
		} else {
			html_out_text(&o, "<", 1);
			i++;
		}
	}
	html_link_close(&o, &link);
	if (!html_out_reserve(&o, 1)) {
		free(o.buf);
		free(link.href);
		return NULL;
	}
	/* breaks and spaces still owed are simply dropped; what a literal &nbsp; (or <pre>) left at
	 * either end is trimmed */
	while (o.len > 0 && (o.buf[o.len - 1] == ' ' || o.buf[o.len - 1] == '\n'))
		o.len--;
	size_t lead = 0;
	while (lead < o.len && (o.buf[lead] == ' ' || o.buf[lead] == '\n'))
		lead++;
	memmove(o.buf, o.buf + lead, o.len - lead);
	o.len -= lead;
	o.buf[o.len] = '\0';
	return o.buf;
}
