/* log.c — structured log lines to stderr (systemd/journald or a redirect takes them from there). */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			 log_level_str(level));
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* one write(2) per line keeps lines whole when several threads log */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

const char *log_safe(char *buf, unsigned size, const char *s, unsigned len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned o = 0;
	for (unsigned i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int plain = c > 0x20 && c < 0x7f && c != '"' && c != '=' && c != '\\';
		unsigned need = plain ? 1 : 4;
		if (o + need + 4 > size) {
			if (size >= 4) {
				o = o > size - 4 ? size - 4 : o;
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}
