/*
 * err.h — how functions report failure to their callers.
 *
 * One convention everywhere: a function returns 0 on success and -1 on
 * failure (1 / 0 / -1 where "try" semantics apply), and fills a caller-owned
 * struct err with a message that can be logged or shown as it is.
 * Passing NULL for the struct err is allowed and drops the message.
 */
#ifndef MDREPL_ERR_H
#define MDREPL_ERR_H

#include <stddef.h>

#define ERR_MSG_MAX 512

struct err {
	int code;		  /* errno value or an ERR_* code, 0 if none */
	char msg[ERR_MSG_MAX];	  /* NUL-terminated, truncated with "..." */
};

/* Codes for failures that are not an errno. Kept clear of errno values. */
enum {
	ERR_PROTO = 1000, /* malformed or unexpected protocol data */
	ERR_CONFIG,	  /* bad configuration */
	ERR_CORRUPT,	  /* on-disk data fails its checksum or format */
	ERR_REFUSED,	  /* peer refused us (role, generation, version) */
	ERR_USAGE,	  /* bad command-line usage */
};

/* Sets code and message; returns -1 so that `return err_set(...)` reads well. */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like err_set with code = errno, appending ": strerror(errno)". */
int err_sys(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefixes the existing message with more context ("while X: <old>"). */
int err_prefix(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void err_clear(struct err *e);

#endif
