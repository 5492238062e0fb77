/* log.c — structured log lines to stderr (systemd/journald or a redirect takes them from there), and the
 * logfmt encoding of the values peers choose. */
#include "util/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/utf8.h"

#define LOG_LINE_MAX 2048

static const char log_hex[] = "0123456789abcdef";

static const char *log_level_str(enum log_level l)
{
	switch (l) {
	case LOG_LEVEL_DEBUG: return "debug";
	case LOG_LEVEL_INFO: return "info";
	case LOG_LEVEL_WARN: return "warn";
	case LOG_LEVEL_ERROR: return "error";
	}
	return "?";
}

/* How the octets at s are written: as they are (n of them), as '\' and the octet, or one octet as \xNN. */
enum log_out {
	LOG_OUT_COPY,
	LOG_OUT_BACKSLASH,
	LOG_OUT_HEX,
};

static enum log_out log_classify(const unsigned char *s, size_t len, size_t *n_r)
{
	unsigned char c = s[0];

	*n_r = 1;
	if (c < 0x20 || c == 0x7f)
		return LOG_OUT_HEX;
	if (c == '"' || c == '\\')
		return LOG_OUT_BACKSLASH;
	if (c < 0x80)
		return LOG_OUT_COPY;
	size_t n = utf8_len(s, len); /* RFC 3629 §4: well-formed UTF-8 only */
	/* U+0080-U+009F are the C1 controls (ECMA-48 §5.3): a terminal showing the log may act on them
	 * as it would on ESC; the lead octet goes out as \xc2, the lone continuation after it as well */
	if (n == 0 || (c == 0xc2 && s[1] < 0xa0))
		return LOG_OUT_HEX;
	*n_r = n;
	return LOG_OUT_COPY;
}

static size_t log_out_width(enum log_out k, size_t n)
{
	return k == LOG_OUT_COPY ? n : k == LOG_OUT_BACKSLASH ? 2 : 4;
}

static size_t log_out_put(char *dst, enum log_out k, const unsigned char *s, size_t n)
{
	switch (k) {
	case LOG_OUT_COPY:
		memcpy(dst, s, n);
		return n;
	case LOG_OUT_BACKSLASH:
		dst[0] = '\\';
		dst[1] = (char)s[0];
		return 2;
	case LOG_OUT_HEX:
		break;
	}
	dst[0] = '\\';
	dst[1] = 'x';
	dst[2] = log_hex[s[0] >> 4];
	dst[3] = log_hex[s[0] & 15];
	return 4;
}

/* logfmt: a bare value runs to the next space and has no escapes, so anything empty, with a space, '=' or
 * '"', or needing an escape (a backslash, a control, an octet that is not UTF-8) is quoted. */
static bool log_value_needs_quotes(const unsigned char *s, size_t len)
{
	if (len == 0)
		return true;
	for (size_t i = 0; i < len;) {
		size_t n;
		if (log_classify(s + i, len - i, &n) != LOG_OUT_COPY || s[i] == ' ' || s[i] == '=')
			return true;
		i += n;
	}
	return false;
}

size_t log_value_encode(char *dst, size_t dst_size, const char *src, size_t src_len)
{
	const unsigned char *s = (const unsigned char *)src;
	if (dst_size == 0)
		return 0;
	size_t room = dst_size - 1; /* for the NUL */
	bool quote = log_value_needs_quotes(s, src_len);
	size_t close = quote ? 1 : 0, o = 0;
	if (quote) {
		if (room < 2) {
			dst[0] = '\0';
			return 0;
		}
		dst[o++] = '"';
	}
	/* where "..." still fits with the closing quote: always at the end of a whole unit, so a cut
	 * never leaves half an escape or half a UTF-8 sequence */
	size_t mark = o + 3 + close <= room ? o : SIZE_MAX;
	for (size_t i = 0; i < src_len;) {
		size_t n;
		enum log_out k = log_classify(s + i, src_len - i, &n);
		if (o + log_out_width(k, n) + close > room) {
			if (mark != SIZE_MAX) {
				o = mark;
				memcpy(dst + o, "...", 3);
				o += 3;
			}
			break;
		}
		o += log_out_put(dst + o, k, s + i, n);
		i += n;
		if (o + 3 + close <= room)
			mark = o;
	}
	if (quote)
		dst[o++] = '"';
	dst[o] = '\0';
	return o;
}

const char *log_safe(char *buf, unsigned size, const char *s, unsigned len)
{
	log_value_encode(buf, size, s, len);
	return buf;
}

/* The last guard: whatever a caller formatted, no control octet (CR, LF, ESC ...) and nothing that is
 * not UTF-8 reaches the output, so a line can never be split or forged, even by a %s that skipped
 * log_safe. Quotes and backslashes are left alone here: they belong to the caller's format. */
static size_t log_line_scrub(char *dst, size_t room, const char *src, size_t len)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t n;
		enum log_out k = log_classify(s + i, len - i, &n);
		if (k == LOG_OUT_BACKSLASH)
			k = LOG_OUT_COPY;
		if (o + log_out_width(k, n) > room)
			break;
		o += log_out_put(dst + o, k, s + i, n);
		i += n;
	}
	return o;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char text[LOG_LINE_MAX];
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			 log_level_str(level));
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	size_t tlen = m < 0 ? 0 : (size_t)m;
	if (tlen > sizeof(text) - 1)
		tlen = sizeof(text) - 1;
	size_t len = (size_t)n + log_line_scrub(line + n, sizeof(line) - (size_t)n - 1, text, tlen);
	line[len++] = '\n';
	/* one write(2) per line keeps lines whole when several threads log */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
