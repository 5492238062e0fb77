/* log.h — one line per event, key=value (DESIGN.md §4), to stderr. */
#ifndef MAILWERK_UTIL_LOG_H
#define MAILWERK_UTIL_LOG_H

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/* Writes "ts=<RFC 3339 UTC> level=<level> " followed by the formatted text and a newline, in one write. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

/* Copies s into buf (size >= 2) as a log value: printable ASCII kept, spaces, quotes, '=', controls and
 * 8-bit octets as \xHH, truncated with "..." when it does not fit. Returns buf. Peers choose these
 * strings, so nothing they send can forge a key or a line. */
const char *log_safe(char *buf, unsigned size, const char *s, unsigned len);

#endif
