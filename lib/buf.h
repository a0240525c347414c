/*
 * buf.h — a growable, binary-safe byte buffer with an optional maximum,
 * and a read-only slice type.
 *
 * Used instead of strcpy/strcat/sprintf everywhere. The contents are kept
 * NUL-terminated (the NUL is not counted in len), so buf_cstr() is always a
 * valid C string for text. A buffer created with a maximum refuses to grow
 * past it (returns -1, errno EMSGSIZE) — that is how sizes chosen by a peer
 * are bounded. Allocation failure aborts (xalloc.h).
 *
 * The fields are visible so buffers can live on the stack (BUF_INIT);
 * treat them as read-only and change them only through these functions.
 */
#ifndef MDREPL_BUF_H
#define MDREPL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data; /* NULL until the first write */
	size_t len;    /* bytes in use */
	size_t cap;    /* bytes allocated (always > len once allocated) */
	size_t max;    /* largest allowed len; 0 = no limit */
};

#define BUF_INIT {NULL, 0, 0, 0}

/* A view of bytes owned by someone else. */
struct slice {
	const char *p;
	size_t len;
};

#define SLICE_LIT(s) ((struct slice){(s), sizeof(s) - 1})

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);

/* Empties the buffer, keeping its allocation. */
void buf_reset(struct buf *b);
/* Shortens to len bytes (no-op if already shorter). */
void buf_truncate(struct buf *b, size_t len);
/* Drops the first n bytes (memmove; consume in large steps). */
void buf_consume(struct buf *b, size_t n);

/* Makes room for n more bytes. Returns 0, or -1 (EMSGSIZE) past max. */
int buf_reserve(struct buf *b, size_t n);
/* Returns a pointer to n writable bytes at the end, or NULL past max.
 * Follow with buf_commit() of the bytes actually written. */
uint8_t *buf_space(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);

int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_put_slice(struct buf *b, struct slice s);
/* Replaces the contents. */
int buf_set(struct buf *b, const void *p, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* NUL-terminated view of the contents; "" for an empty buffer. */
const char *buf_cstr(const struct buf *b);
struct slice buf_slice(const struct buf *b);
/* Returns a malloc'd NUL-terminated copy. */
char *buf_strdup(const struct buf *b);

/* Slice helpers. */
struct slice slice_cstr(const char *s);
bool slice_eq(struct slice a, struct slice b);
bool slice_eq_cstr(struct slice a, const char *s);
bool slice_starts_with(struct slice a, const char *prefix);
int slice_cmp(struct slice a, struct slice b);

#endif
