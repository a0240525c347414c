/*
 * err.c — caller-owned error messages (see err.h).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

/* Writes fmt into e->msg, marking truncation with a trailing "...". */
static void err_vformat(struct err *e, size_t off, const char *fmt, va_list ap)
{
	int n = vsnprintf(e->msg + off, sizeof(e->msg) - off, fmt, ap);

	if (n < 0)
		e->msg[off] = '\0';
	else if ((size_t)n >= sizeof(e->msg) - off)
		memcpy(e->msg + sizeof(e->msg) - 4, "...", 4);
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	e->code = code;
	va_start(ap, fmt);
	err_vformat(e, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int err_sys(struct err *e, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	size_t len;

	if (e == NULL)
		return -1;
	e->code = saved;
	va_start(ap, fmt);
	err_vformat(e, 0, fmt, ap);
	va_end(ap);
	len = strlen(e->msg);
	if (len < sizeof(e->msg) - 1) {
		int n = snprintf(e->msg + len, sizeof(e->msg) - len, ": %s",
				 strerror(saved));
		if (n < 0 || (size_t)n >= sizeof(e->msg) - len)
			memcpy(e->msg + sizeof(e->msg) - 4, "...", 4);
	}
	errno = saved;
	return -1;
}

int err_prefix(struct err *e, const char *fmt, ...)
{
	char old[ERR_MSG_MAX];
	va_list ap;
	size_t len;
	int n;

	if (e == NULL)
		return -1;
	memcpy(old, e->msg, sizeof(old));
	va_start(ap, fmt);
	err_vformat(e, 0, fmt, ap);
	va_end(ap);
	len = strlen(e->msg);
	n = snprintf(e->msg + len, sizeof(e->msg) - len, ": %s", old);
	if (n < 0 || (size_t)n >= sizeof(e->msg) - len)
		memcpy(e->msg + sizeof(e->msg) - 4, "...", 4);
	return -1;
}

void err_clear(struct err *e)
{
	if (e != NULL) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}
