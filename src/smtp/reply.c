/* reply.c — formatting of SMTP replies. */
#include "smtp/reply.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>

void smtp_reply(struct evbuffer *out, int code, const char *enh, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	evbuffer_add_printf(out, "%d %s %s\r\n", code, enh, text);
}

void smtp_reply_line(struct evbuffer *out, int code, int last, const char *text)
{
	evbuffer_add_printf(out, "%d%c%s\r\n", code, last ? ' ' : '-', text);
}
