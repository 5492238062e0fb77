/* conf_int.h — what conf.c and conf_parse.c share, and no one else. */
#ifndef MAILWERK_CONF_CONF_INT_H
#define MAILWERK_CONF_CONF_INT_H

#include <stddef.h>

/* RFC 1123 §2.1 host name; NULL, or a sentence. */
const char *conf_parse_hostname(const char *s);
/* [mta_sts] mx: host names or "*." patterns, comma-separated, "" for none; NULL, or a sentence in msg. */
const char *conf_parse_mx_list(const char *v, char *msg, size_t size);

#endif
