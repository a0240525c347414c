/*
 * jformat.h — the journal's on-disk format, shared by the writer
 * (journal.c) and the reader (jreader.c): segment names and headers, the
 * record codec, and a scanner that walks a segment's records and tells a
 * torn tail from corruption. docs/journal.md describes the bytes.
 *
 * Internal to journal/; programs use journal.h.
 */
#ifndef MDREPL_JFORMAT_H
#define MDREPL_JFORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "journal.h"

#define JSEG_MAGIC     "MDRJRNL\0"
#define JSEG_VERSION   1
#define JSEG_HDR_LEN   48
#define JREC_HDR_LEN   36
#define JREC_PATH_MAX  4095
/* The highest LSN: more than any journal writes in its life (a million
 * records a second for 146,000 years), and far enough from 2^64 that no
 * arithmetic on LSNs wraps. */
#define JLSN_MAX (UINT64_C(1) << 62)
#define JREC_MAX_LEN   (JREC_HDR_LEN + 2 * JREC_PATH_MAX)
#define JSEG_SUFFIX    ".seg"
#define JSEG_NAME_SIZE 24 /* "<16 hex>.seg" + NUL, rounded up */

#define JMETA_FILE	"journal.meta"
#define JACKED_FILE	"acked"
#define JMARKER_FILE	"needs-full-sync"
#define JMARKER_CLAIMED "needs-full-sync.claimed"

struct jseg_hdr {
	uint64_t journal_id;
	uint64_t first_lsn;
	uint64_t created_ns;
};

/* "<16 lowercase hex digits of first_lsn>.seg" into out. */
void jseg_name(uint64_t first_lsn, char out[JSEG_NAME_SIZE]);
/* Parses a segment file name; returns 0 and sets *first_lsn_r, or -1. */
int jseg_parse_name(const char *name, uint64_t *first_lsn_r);

void jseg_hdr_encode(const struct jseg_hdr *h, uint8_t out[JSEG_HDR_LEN]);
/* Reads and checks the header of an open segment (path names it in
 * errors, which are ERR_CORRUPT). Returns 0 or -1. */
int jseg_hdr_read(int fd, const char *path, struct jseg_hdr *h, struct err *e);

/* Lists the segments in dirfd, sorted by first LSN; *v_r is malloc'd
 * (caller frees), NULL when there are none. Returns 0 or -1. */
int jseg_list(int dirfd, const char *dir, uint64_t **v_r, size_t *n_r, struct err *e);

/* Appends the encoding of r to out (lengths must already be checked). */
void jrec_encode(struct buf *out, const struct jrec *r);

/* A cursor over one segment's records. */
struct jscan {
	int fd;
	char *path; /* for messages */
	struct jseg_hdr hdr;
	uint64_t next_lsn;  /* LSN the next record must carry */
	uint64_t last_type; /* type of the last record returned (0 = none) */
	uint64_t last_time_ns;
	uint64_t off; /* file offset of buf.data[0] */
	size_t pos;   /* parse position in buf */
	struct buf buf;
	/* Set when jscan_next() returns 0: */
	uint64_t tail_off; /* offset just past the last good record */
	bool torn;	   /* bytes after tail_off that do not form a record */
};

/* Opens dir/<segment of first_lsn> (O_RDONLY or O_RDWR) and checks its
 * header. Returns 0, or -1 (errno ENOENT kept when the file is missing). */
int jscan_open(struct jscan *s, int dirfd, const char *dir, uint64_t first_lsn, int oflags,
	       struct err *e);
/* 1 = a record in *r (slices point into the scanner until the next call),
 * 0 = no complete record at the current position (tail_off/torn say what
 * is there; call again later to see records appended since),
 * -1 = corruption (file and offset in e) or an I/O error. */
int jscan_next(struct jscan *s, struct jrec *r, struct err *e);
void jscan_close(struct jscan *s);

#endif
