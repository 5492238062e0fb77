/* json.c — owns the strict loading of request bodies (see json.h): a depth pre-scan, then jansson
 * with the flags that make it refuse what RFC 8259 leaves open (duplicate keys, §4) and what a
 * mail header can never carry (NUL). Pure: no I/O, no state. */
#include "http/json.h"
#include "util/date.h"

#include <stdbool.h>
#include <stdio.h>

/* Where the scan stands, counted the way jansson counts (load.c stream_get): lines from 1, columns
 * in characters, so that the pre-scan's errors point where jansson's would. */
struct http_json_pos {
	unsigned long line, column;
};

static void http_json_pos_step(struct http_json_pos *p, unsigned char c)
{
	if (c == '\n') {
		p->line++;
		p->column = 0;
	} else if (c < 0x80 || c > 0xbf) {
		/* a UTF-8 continuation octet is part of the character before it */
		p->column++;
	}
}

/* Finds the first '[' or '{' that opens level max_depth + 1. Strings are skipped with their escapes,
 * so brackets inside them do not count; an unterminated string or unbalanced brackets are left for
 * jansson to report. One pass, no recursion, whatever the input. */
static bool http_json_depth_ok(const char *buf, size_t len, unsigned max_depth, struct http_json_pos *at_r)
{
	struct http_json_pos pos = { 1, 0 };
	unsigned long depth = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		http_json_pos_step(&pos, c);
		if (in_string) {
			if (c == '\\' && i + 1 < len) {
				/* RFC 8259 §7: the octet after a backslash never ends the string */
				i++;
				http_json_pos_step(&pos, (unsigned char)buf[i]);
			} else if (c == '"') {
				in_string = false;
			}
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth) {
				*at_r = pos;
				return false;
			}
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return true;
}

json_t *http_json_load(const char *buf, size_t len, unsigned max_depth, char *error, size_t error_size)
{
	char dummy[1];
	struct http_json_pos at;
	json_error_t jerr;

	if (error == NULL || error_size == 0) {
		error = dummy;
		error_size = sizeof(dummy);
	}
	error[0] = '\0';
	if (buf == NULL) {
		buf = "";
		len = 0;
	}
	if (!http_json_depth_ok(buf, len, max_depth, &at)) {
		snprintf(error, error_size,
			 "Invalid JSON at line %lu, column %lu: nested deeper than %u levels.", at.line,
			 at.column, max_depth);
		return NULL;
	}
	/* Without JSON_DECODE_ANY the top level must be an object or an array; without
	 * JSON_DISABLE_EOF_CHECK anything but white space after it is an error; without JSON_ALLOW_NUL
	 * "\u0000" is refused (and a raw NUL is a control character, refused in any case). */
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (jerr.line > 0)
			snprintf(error, error_size, "Invalid JSON at line %d, column %d: %s.", jerr.line,
				 jerr.column, jerr.text);
		else
			snprintf(error, error_size, "Invalid JSON: %s.", jerr.text);
	}
	return root;
}

json_t *http_json_time(int64_t ms)
{
	char t[40];
	date_rfc3339_ms_format(ms, t, sizeof(t));
	return json_string(t);
}
