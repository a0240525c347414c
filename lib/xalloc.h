/*
 * xalloc.h — allocation that never returns NULL.
 *
 * Running out of memory is not a condition a replication daemon can
 * usefully recover from mid-operation; these log and abort instead, so
 * that callers need not thread ENOMEM through every path. Limits on
 * untrusted sizes are enforced before allocating (see buf.h maxima).
 */
#ifndef MDREPL_XALLOC_H
#define MDREPL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Grows an array: returns p resized to hold nmemb * size bytes, overflow-checked. */
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated printf-formatted string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
