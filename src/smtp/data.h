/* data.h — message content as it arrives after DATA (line by line, dot-unstuffed) or in BDAT chunks
 * (counted octets). Enforces the line and size limits and the CRLF rules that stop SMTP smuggling. */
#ifndef MAILWERK_SMTP_DATA_H
#define MAILWERK_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including the CRLF. */
#define SMTP_TEXT_LINE_MAX 1000

enum smtp_data_status {
	SMTP_DATA_MORE = 0, /* everything available was consumed; wait for more */
	SMTP_DATA_END,      /* the end-of-data line "." was consumed */
	SMTP_DATA_BARE_EOL, /* a bare CR or LF: reject and close (RFC 5321 §2.3.8, CVE-2023-51764..6) */
};

/* The first problem that makes the message unacceptable; reading goes on to the end of the data
 * so that the reply comes at the right moment, but nothing more is kept. */
enum smtp_data_error {
	SMTP_DATA_OK = 0,
	SMTP_DATA_TOO_BIG,       /* 552 5.3.4 over max_message_size (RFC 1870 §6) */
	SMTP_DATA_LINE_TOO_LONG, /* 552 5.3.4 line over 1000 octets */
	SMTP_DATA_NUL,           /* 550 5.6.0 NUL octet (RFC 5322 §2.1: not allowed in messages) */
	SMTP_DATA_BARE,          /* 550 5.5.2 bare CR or LF inside a BDAT chunk */
	SMTP_DATA_NO_MEMORY,     /* 452 4.3.1 the sessions together hold as much as they may */
	SMTP_DATA_SPILL_FAILED,  /* 451 4.3.0 the spool could not be written (disk full, I/O error) */
};
const char *smtp_data_error_str(enum smtp_data_error e);

struct budget;

/* Past this many octets in memory, the body of a message goes on into a spool (smtp_data_set_spill):
 * the header section stays in memory, where everything that looks at headers wants it. */
#define SMTP_DATA_MEMORY_MAX (256 * 1024)

/* Where content past SMTP_DATA_MEMORY_MAX goes: open() makes the spool (false: none could be made),
 * write() appends to it (false: it failed). */
struct smtp_data_spill {
	bool (*open)(void *arg);
	bool (*write)(void *arg, const void *p, size_t n);
	void *arg;
};

struct smtp_data {
	struct evbuffer *body; /* accepted content: CRLF lines, dots removed; once spilling, its header part */
	struct budget *memory; /* what the body is charged to (NULL: nothing) */
	uint64_t charged;      /* octets of the body taken from memory */
	const struct smtp_data_spill *spill; /* NULL: everything stays in memory */
	bool spilling;         /* the content after the header section goes to the spool now */
	uint64_t spilled;      /* octets written to the spool */
	size_t spill_every;    /* memory_max of smtp_data_set_spill */
	size_t spill_try;      /* the body length at which to look for the end of the header section again */
	uint64_t max_size;
	uint64_t size;         /* content octets seen, including those dropped after an error */
	enum smtp_data_error error;
	bool discarding;       /* DATA: dropping the rest of an over-long line */
	bool discard_cr;       /* DATA: the last dropped octet was CR */
	size_t line_len;       /* BDAT: octets of the current line so far */
	bool chunk_cr;         /* BDAT: the previous octet was CR */
};

/* body must be an empty evbuffer owned by the caller. */
void smtp_data_begin(struct smtp_data *d, struct evbuffer *body, uint64_t max_size);
/* Charges the body to memory from now on: content that does not fit is dropped, and the message
 * fails with SMTP_DATA_NO_MEMORY, so that no client can make the sessions hold more. */
void smtp_data_set_budget(struct smtp_data *d, struct budget *memory);
/* Gives back what the body was charged (before the body is freed or handed on). */
void smtp_data_release(struct smtp_data *d);
/* Lets the body past memory_max octets (SMTP_DATA_MEMORY_MAX; less in tests) go on into a spool
 * (kept by the caller). */
void smtp_data_set_spill(struct smtp_data *d, const struct smtp_data_spill *spill, size_t memory_max);

/* DATA phase: consumes complete lines from in. RFC 5321 §4.1.1.4: only a line that is exactly "."
 * ends the data; §4.5.2: a leading dot of any other line is removed. */
enum smtp_data_status smtp_data_read(struct smtp_data *d, struct evbuffer *in);

/* BDAT phase (RFC 3030 §2): moves exactly len octets (len <= evbuffer_get_length(in)) into the body,
 * checking them without ever looking for a dot line. */
void smtp_data_chunk(struct smtp_data *d, struct evbuffer *in, size_t len);
/* After BDAT LAST: completes an unterminated last line with CRLF. */
void smtp_data_chunk_finish(struct smtp_data *d);

#endif
