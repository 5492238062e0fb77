/* log.h — one line per event, key=value (DESIGN.md §4), to stderr. */
#ifndef MAILWERK_UTIL_LOG_H
#define MAILWERK_UTIL_LOG_H

#include <stddef.h>

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

/* Room for any encoding of len octets: each may become \xNN, then two quotes and the NUL. */
#define LOG_VALUE_SIZE(len) (4 * (size_t)(len) + 3)

/* Writes the src_len octets at src (NULs included) into dst as one logfmt value, the form Loki, Vector,
 * humanlog and lnav read: bare when it is non-empty printable text without a space, '=', '"' or '\';
 * otherwise in double quotes, with \" and \\ inside. Control octets (0x00-0x1f, 0x7f), C1 controls
 * and octets that are not well-formed UTF-8 go out as \xNN; other UTF-8 is kept. When the value does
 * not fit in dst_size, it is cut after a whole character or escape and ends in "..." (and its closing
 * quote). dst is NUL-terminated when dst_size > 0. Returns the length written, without the NUL.
 * Peers choose these strings, so nothing they send can forge a key or a line. */
size_t log_value_encode(char *dst, size_t dst_size, const char *src, size_t src_len);

/* log_value_encode for a printf argument: the value, quotes included, so the format has key=%s (never
 * key="%s"). Returns buf. */
const char *log_safe(char *buf, unsigned size, const char *s, unsigned len);

#endif
