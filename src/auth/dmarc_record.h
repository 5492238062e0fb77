/* dmarc_record.h — DMARC Policy Records (RFC 9989 §4.7, §4.8): the text of one TXT record at
 * _dmarc.<domain>, its character-strings already joined (§4.5), read into a struct. Pure, no
 * allocation, every octet hostile.
 *
 * What it implements:
 * - v must be the first tag and its value exactly "DMARC1" (case-sensitive); otherwise the text is
 *   not a DMARC Policy Record at all (§4.7 v) and a tree walk passes over it (§4.10 step 2).
 * - The rest is read leniently (§4.8): a tag-spec that does not parse is skipped, the first of two
 *   equal tags is kept, unknown tags are ignored, a bad value falls back to the tag's default.
 *   Tag names are matched without regard to case, and so are the values of p, sp, np, t, psd,
 *   adkim, aspf and fo (RFC 5234 §2.3: the quoted strings of §4.8's ABNF are case-insensitive).
 * - §4.10.1: without a valid p, or with an invalid sp or np, the record acts as p=none when rua holds
 *   at least one syntactically valid URI, and is otherwise unusable (no DMARC processing).
 * - The RFC 7489 tags pct, rf and ri are historic (§9.3, Appendix C.5.2): noted as warnings and not
 *   applied. In particular pct=0 does not turn into t=y: Appendix A.6 only calls the two analogous,
 *   and a record that wants testing mode under RFC 9989 says t=y.
 * - rua and ruf are kept as URIs (§4.8 dmarc-urilist; the obsolete "!size" suffix dropped); mailto:
 *   URIs must hold one valid mailbox, which is kept percent-decoded. Whether an external destination
 *   accepts reports (RFC 9990 §3) is the report sender's business. */
#ifndef MAILWERK_AUTH_DMARC_RECORD_H
#define MAILWERK_AUTH_DMARC_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* URIs kept per list (rua, ruf); more valid ones are counted in *_valid and dropped. */
#define DMARC_URIS_MAX 8
/* Octets for every kept URI and mailto address together (each with its NUL). */
#define DMARC_RECORD_TEXT_MAX 1024
/* dmarc_uri.addr when the URI is not a mailto: URI */
#define DMARC_URI_NO_ADDR UINT16_MAX

/* RFC 9989 §4.7 p, sp, np; in order of strictness. */
enum dmarc_policy {
	DMARC_POLICY_NONE = 0,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};
const char *dmarc_policy_str(enum dmarc_policy p);

/* RFC 9989 §4.7 adkim, aspf */
enum dmarc_align {
	DMARC_ALIGN_RELAXED = 0,
	DMARC_ALIGN_STRICT,
};
const char *dmarc_align_str(enum dmarc_align a);

/* RFC 9989 §4.7 psd */
enum dmarc_psd {
	DMARC_PSD_U = 0, /* the default: not a PSD, maybe an Organizational Domain */
	DMARC_PSD_Y,     /* published by a Public Suffix Operator */
	DMARC_PSD_N,     /* the Organizational Domain of itself and its subdomains */
};
const char *dmarc_psd_str(enum dmarc_psd p);

/* RFC 9989 §4.7 fo, as bits */
enum dmarc_fo {
	DMARC_FO_0 = 1 << 0,
	DMARC_FO_1 = 1 << 1,
	DMARC_FO_D = 1 << 2,
	DMARC_FO_S = 1 << 3,
};
/* The letter of one fo bit ("0", "1", "d", "s"). */
const char *dmarc_fo_str(enum dmarc_fo f);

enum dmarc_record_error {
	DMARC_RECORD_OK = 0,    /* a usable DMARC Policy Record */
	DMARC_RECORD_NOT_DMARC, /* does not start with v=DMARC1: not a DMARC Policy Record, ignored */
	DMARC_RECORD_NO_POLICY, /* a DMARC Policy Record without a usable policy and without a valid rua
				 * (§4.10.1): no DMARC processing; psd and the other tags are still read */
};
const char *dmarc_record_error_str(enum dmarc_record_error e);

/* What a domain owner would want to fix; one bit each. None of them makes the record unusable by
 * itself (that is what dmarc_record_error says). */
enum dmarc_record_warning {
	DMARC_WARN_P_MISSING = 1 << 0,
	DMARC_WARN_P_INVALID = 1 << 1,
	DMARC_WARN_SP_INVALID = 1 << 2,
	DMARC_WARN_NP_INVALID = 1 << 3,
	DMARC_WARN_P_NONE_BY_RUA = 1 << 4, /* §4.10.1: acting as p=none because rua is valid */
	DMARC_WARN_T_INVALID = 1 << 5,
	DMARC_WARN_PSD_INVALID = 1 << 6,
	DMARC_WARN_ADKIM_INVALID = 1 << 7,
	DMARC_WARN_ASPF_INVALID = 1 << 8,
	DMARC_WARN_FO_INVALID = 1 << 9,
	DMARC_WARN_FO_WITHOUT_RUF = 1 << 10,
	DMARC_WARN_URI_INVALID = 1 << 11,
	DMARC_WARN_URI_DROPPED = 1 << 12,
	DMARC_WARN_PCT = 1 << 13,
	DMARC_WARN_HISTORIC = 1 << 14, /* rf or ri */
	DMARC_WARN_SKIPPED = 1 << 15,  /* a tag-spec that does not parse, or a repeated tag */
	DMARC_WARN_UNKNOWN_TAG = 1 << 16,
	DMARC_WARN_TOO_MANY_TAGS = 1 << 17,
};
/* One sentence for one warning bit. */
const char *dmarc_record_warning_str(enum dmarc_record_warning w);

struct dmarc_uri {
	uint16_t uri;  /* offset of the URI (NUL-terminated) in dmarc_record.text */
	uint16_t addr; /* offset of a mailto: URI's mailbox "local@domain", else DMARC_URI_NO_ADDR */
};

struct dmarc_record {
	/* The policies as they apply (§4.7): sp falls back to p, np to sp or else p. After the §4.10.1
	 * fallback all three are none. */
	enum dmarc_policy p, sp, np;
	bool p_given, sp_given, np_given; /* present with a valid value */
	enum dmarc_psd psd;
	bool testing; /* t=y */
	enum dmarc_align adkim, aspf;
	unsigned fo;  /* enum dmarc_fo bits; DMARC_FO_0 by default */
	int pct;      /* RFC 7489 pct 0-100 when present and valid (not applied), else -1 */
	unsigned warnings; /* enum dmarc_record_warning bits */
	size_t rua_count, ruf_count; /* kept */
	size_t rua_valid, ruf_valid; /* syntactically valid, kept or not */
	struct dmarc_uri rua[DMARC_URIS_MAX], ruf[DMARC_URIS_MAX];
	size_t text_len;
	char text[DMARC_RECORD_TEXT_MAX];
};

/* Reads txt (len octets; may hold any octet). *r is always filled (defaults where nothing applies);
 * *error_r says why for anything but DMARC_RECORD_OK. */
enum dmarc_record_error dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r,
					   const char **error_r);

static inline const char *dmarc_uri_text(const struct dmarc_record *r, const struct dmarc_uri *u)
{
	return r->text + u->uri;
}

/* The mailbox of a mailto: URI, or NULL. */
static inline const char *dmarc_uri_addr(const struct dmarc_record *r, const struct dmarc_uri *u)
{
	return u->addr == DMARC_URI_NO_ADDR ? NULL : r->text + u->addr;
}

#endif
