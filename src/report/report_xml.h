/* report_xml.h — a small writer of XML documents for the reports of this directory: a growing
 * buffer, elements on their own indented lines, and text escaped so that any octets (from the
 * network, from DNS) make well-formed XML 1.0 in UTF-8. Not a general XML library: no attributes,
 * no mixed content. */
#ifndef MAILWERK_REPORT_REPORT_XML_H
#define MAILWERK_REPORT_REPORT_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct report_xml {
	char *buf;  /* NUL-terminated once anything was written */
	size_t len, size;
	bool nomem; /* an allocation failed: the content is incomplete */
};

void report_xml_init(struct report_xml *x);
void report_xml_free(struct report_xml *x);

/* Appends s as it is (markup the caller wrote). */
void report_xml_raw(struct report_xml *x, const char *s);
/* Appends len octets of text, escaped: "<", ">" and "&" as entity references; octets that are not
 * valid UTF-8 (overlong forms, surrogates, beyond U+10FFFF), control characters (C0, DEL, C1) and
 * the non-characters U+FFFE and U+FFFF, which XML 1.0 §2.2 Char cannot hold or which have no place
 * in a report, each become U+FFFD. */
void report_xml_text(struct report_xml *x, const char *s, size_t len);

/* "<name>" / "</name>" on their own line, indented by depth * 2 spaces */
void report_xml_open(struct report_xml *x, unsigned depth, const char *name);
void report_xml_close(struct report_xml *x, unsigned depth, const char *name);
/* "<name>text</name>" on one line; text is escaped */
void report_xml_elem(struct report_xml *x, unsigned depth, const char *name, const char *text);
void report_xml_elem_i64(struct report_xml *x, unsigned depth, const char *name, int64_t v);
void report_xml_elem_u64(struct report_xml *x, unsigned depth, const char *name, uint64_t v);

#endif
