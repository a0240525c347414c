/*
 * buf.c — growable byte buffer with an optional maximum (see buf.h).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"

static const char empty[1] = "";

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}

void buf_reset(struct buf *b)
{
	buf_truncate(b, 0);
}

void buf_truncate(struct buf *b, size_t len)
{
	if (len < b->len) {
		b->len = len;
		b->data[len] = '\0';
	}
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_truncate(b, 0);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

int buf_reserve(struct buf *b, size_t n)
{
	size_t need, cap;

	if (n > SIZE_MAX / 2 - b->len - 1 || (b->max && b->len + n > b->max)) {
		errno = EMSGSIZE;
		return -1;
	}
	need = b->len + n + 1; /* +1 for the terminating NUL */
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	/* Don't allocate far past the maximum just because we double. */
	if (b->max && cap > b->max + 1)
		cap = b->max + 1;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	return 0;
}

uint8_t *buf_space(struct buf *b, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return NULL;
	return b->data + b->len;
}

void buf_commit(struct buf *b, size_t n)
{
	/* Callers commit at most what buf_space() granted. */
	if (b->len + n >= b->cap)
		abort();
	b->len += n;
	b->data[b->len] = '\0';
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int buf_put_slice(struct buf *b, struct slice s)
{
	return buf_append(b, s.p, s.len);
}

int buf_set(struct buf *b, const void *p, size_t n)
{
	/* p may point into b itself. */
	if (b->data != NULL && (const uint8_t *)p >= b->data &&
	    (const uint8_t *)p < b->data + b->cap) {
		memmove(b->data, p, n);
		b->len = n;
		b->data[n] = '\0';
		return 0;
	}
	buf_reset(b);
	return buf_append(b, p, n);
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t avail;
	int n;

	if (buf_reserve(b, 64) < 0)
		return -1;
	avail = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf((char *)b->data + b->len, avail, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto fail;
	if ((size_t)n >= avail) {
		if (buf_reserve(b, (size_t)n) < 0)
			goto fail;
		va_start(ap, fmt);
		n = vsnprintf((char *)b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0 || (size_t)n >= b->cap - b->len)
			goto fail;
	}
	b->len += (size_t)n;
	return 0;
fail:
	if (b->data != NULL)
		b->data[b->len] = '\0';
	return -1;
}

const char *buf_cstr(const struct buf *b)
{
	return b->data != NULL ? (const char *)b->data : empty;
}

struct slice buf_slice(const struct buf *b)
{
	return (struct slice){buf_cstr(b), b->len};
}

char *buf_strdup(const struct buf *b)
{
	return xstrndup(buf_cstr(b), b->len);
}

struct slice slice_cstr(const char *s)
{
	return (struct slice){s, strlen(s)};
}

bool slice_eq(struct slice a, struct slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool slice_eq_cstr(struct slice a, const char *s)
{
	return slice_eq(a, slice_cstr(s));
}

bool slice_starts_with(struct slice a, const char *prefix)
{
	size_t n = strlen(prefix);

	return a.len >= n && memcmp(a.p, prefix, n) == 0;
}

int slice_cmp(struct slice a, struct slice b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.p, b.p, n) : 0;

	if (c != 0)
		return c;
	return a.len < b.len ? -1 : a.len > b.len;
}
