/* parse.h — pure parsers for SMTP command lines and their arguments (RFC 5321 §4.1, RFC 1870, RFC 3030,
 * RFC 4954, RFC 6152, RFC 6531). No I/O; every byte is treated as hostile. */
#ifndef MAILWERK_SMTP_PARSE_H
#define MAILWERK_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

/* RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including the CRLF. */
#define SMTP_CMD_LINE_MAX 512
/* RFC 3461 §4 (as RFC 5321 §4.5.3.1.4 allows extensions to): the DSN parameters make a RCPT line up
 * to 500 octets longer (NOTIFY, ORCPT) and a MAIL line up to 112 (RET, ENVID). MAIL and RCPT may take
 * this many octets, CRLF included; every other command keeps SMTP_CMD_LINE_MAX. */
#define SMTP_CMD_LINE_MAX_PARAMS (SMTP_CMD_LINE_MAX + 500)
/* RFC 3461 §4.4: an ENVID value is at most 100 octets; §4.2: an ORCPT value at most 500 (both as
 * sent, xtext-encoded). */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_COUNT,
};

const char *smtp_verb_str(enum smtp_verb v);

struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg; /* points into the line: what follows the verb and its separating space(s); "" if none */
	size_t arg_len;  /* trailing spaces removed */
};

enum smtp_parse_error {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_UNKNOWN,     /* 500 5.5.1: unknown verb */
	SMTP_PARSE_SYNTAX,      /* 501 5.5.4: bad arguments */
	SMTP_PARSE_BAD_PARAM,   /* 555 5.5.4: unknown or unsupported MAIL/RCPT parameter */
	SMTP_PARSE_BAD_SENDER,  /* 553 5.1.7: unusable MAIL FROM path */
	SMTP_PARSE_BAD_RCPT,    /* 553 5.1.3: unusable RCPT TO path */
	SMTP_PARSE_NEED_UTF8,   /* 553 5.6.7: UTF-8 address without SMTPUTF8 (RFC 6531 §3.6) */
	SMTP_PARSE_TOO_BIG,     /* 552 5.3.4: SIZE= over our limit (checked by the caller; never returned here) */
	SMTP_PARSE_TOO_LONG,    /* 500 5.5.2: a line over the limit of its verb (RFC 5321 §4.2.2, §4.5.3.1.4) */
};

/* line: one command line without its CRLF; len <= SMTP_CMD_LINE_MAX - 2. The verb is
 * case-insensitive. Any octet < 0x20 (other than none) or 0x7f in the line is a syntax error. */
enum smtp_parse_error smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd_r, const char **error_r);

/* EHLO/HELO argument: a domain or an address literal (RFC 5321 §4.1.1.1). */
enum smtp_parse_error smtp_helo_parse(const char *arg, size_t len, const char **error_r);

enum smtp_body_type {
	SMTP_BODY_UNSPECIFIED = 0,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

/* RFC 3461 §4.3 RET= */
enum smtp_dsn_ret {
	SMTP_DSN_RET_UNSPECIFIED = 0,
	SMTP_DSN_RET_FULL,
	SMTP_DSN_RET_HDRS,
};

/* RFC 3461 §4.1 NOTIFY= values as bits; 0 means the parameter was not given. NEVER is alone. */
enum smtp_dsn_notify {
	SMTP_DSN_NOTIFY_SUCCESS = 1 << 0,
	SMTP_DSN_NOTIFY_FAILURE = 1 << 1,
	SMTP_DSN_NOTIFY_DELAY = 1 << 2,
	SMTP_DSN_NOTIFY_NEVER = 1 << 3,
};

struct smtp_mail_args {
	struct addr from;
	bool has_size;
	uint64_t size;              /* RFC 1870 SIZE= */
	enum smtp_body_type body;   /* RFC 6152 BODY= */
	bool smtputf8;              /* RFC 6531 SMTPUTF8 */
	bool has_auth;              /* RFC 4954 §5 AUTH= (value kept as given, xtext decoded) */
	char auth[ADDR_TEXT_MAX + 1];
	enum smtp_dsn_ret ret;      /* RFC 3461 §4.3 RET= */
	bool has_envid;             /* RFC 3461 §4.4 ENVID= (xtext decoded: printable ASCII) */
	char envid[SMTP_ENVID_MAX + 1];
	bool requiretls;            /* RFC 8689 §2 REQUIRETLS (whether TLS is up is the caller's check) */
};

/* arg: what follows "MAIL" — "FROM:<path> [SP param]..."; RFC 5321 §4.1.1.2. Parameter keywords
 * are case-insensitive; a parameter given twice is a syntax error. */
enum smtp_parse_error smtp_mail_parse(const char *arg, size_t len, struct smtp_mail_args *m_r, const char **error_r);

struct smtp_rcpt_args {
	struct addr to;
	unsigned notify;            /* RFC 3461 §4.1: enum smtp_dsn_notify bits; 0 when not given */
	bool has_orcpt;             /* RFC 3461 §4.2 ORCPT=addr-type;xtext */
	char orcpt[SMTP_ORCPT_MAX + 1]; /* "addr-type;address", the address xtext decoded */
};

/* arg: what follows "RCPT" — "TO:<path> [SP param]..."; RFC 5321 §4.1.1.3. smtputf8: the MAIL
 * command of this transaction carried SMTPUTF8. NOTIFY and ORCPT are the parameters known (RFC 3461
 * §4.1, §4.2); any other is 555, a malformed or repeated one a syntax error. */
enum smtp_parse_error smtp_rcpt_parse(const char *arg, size_t len, bool smtputf8, struct smtp_rcpt_args *r_r,
				      const char **error_r);

/* RFC 3030 §2: "BDAT" SP chunk-size [SP "LAST"]; chunk-size is 1*DIGIT (at most 18 digits here). */
enum smtp_parse_error smtp_bdat_parse(const char *arg, size_t len, uint64_t *size_r, bool *last_r, const char **error_r);

#endif
