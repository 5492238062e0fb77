/* result.h — the three-way outcome of anything that maps to an SMTP reply class. */
#ifndef MAILWERK_UTIL_RESULT_H
#define MAILWERK_UTIL_RESULT_H

/* 2xx / 4xx / 5xx: the split of the whole product (RFC 5321 §4.2.1). */
enum result {
	RESULT_OK = 0,
	RESULT_TEMPFAIL,
	RESULT_PERMFAIL,
};

static inline const char *result_str(enum result r)
{
	switch (r) {
	case RESULT_OK: return "ok";
	case RESULT_TEMPFAIL: return "tempfail";
	case RESULT_PERMFAIL: return "permfail";
	}
	return "?";
}

#endif
