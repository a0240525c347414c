/*
 * jreader.c — journal cursors (see journal.h): find the segment that holds
 * a position, read records in LSN order, follow the writer across segment
 * rotation, and tell "nothing yet" (the live tail) from corruption.
 *
 * Segments are contiguous: the one after a segment whose records end at
 * LSN n is named after n + 1. Its existence proves the writer finished
 * the earlier one (it fsyncs a segment before starting the next), so a
 * reader re-reads the earlier segment once more before moving on, and
 * anything incomplete left there is corruption rather than "not yet".
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jformat.h"
#include "journal.h"
#include "xalloc.h"

struct jreader {
	char *dir;
	int dirfd;
	uint64_t id;	/* the journal id the cursor follows */
	uint64_t after; /* records up to this LSN are skipped */
	struct jscan sc;
};

/* Index of the last segment whose first LSN is <= lsn, or -1. */
static ssize_t find_segment(const uint64_t *v, size_t n, uint64_t lsn)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] <= lsn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ssize_t)lo - 1;
}

/* Opens segments from index i on until one of the journal's own id opens
 * (older ones may be leftovers of an earlier id). Returns the index used
 * or -1. */
static ssize_t open_from(struct jreader *rd, const uint64_t *v, size_t n, size_t i, struct err *e)
{
	for (; i < n; i++) {
		if (jscan_open(&rd->sc, rd->dirfd, rd->dir, v[i], O_RDONLY, e) < 0) {
			if (errno == ENOENT)
				continue; /* deleted by retention meanwhile */
			return -1;
		}
		if (rd->sc.hdr.journal_id == rd->id)
			return (ssize_t)i;
		jscan_close(&rd->sc);
	}
	return err_set(e, ENOENT, "journal %s: its segments disappeared while opening", rd->dir);
}

static int newest_id(struct jreader *rd, uint64_t newest, struct err *e)
{
	struct jscan sc;

	if (jscan_open(&sc, rd->dirfd, rd->dir, newest, O_RDONLY, e) < 0)
		return -1;
	rd->id = sc.hdr.journal_id;
	jscan_close(&sc);
	return 0;
}

struct jreader *jreader_open(const char *dir, uint64_t after_lsn, bool *gap_r, struct err *e)
{
	struct jreader *rd = xcalloc(1, sizeof(*rd));
	uint64_t *v = NULL;
	size_t n = 0;
	ssize_t i, used;

	rd->dir = xstrdup(dir);
	rd->after = after_lsn;
	rd->sc.fd = -1;
	*gap_r = false;
	rd->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rd->dirfd < 0) {
		err_sys(e, "cannot open journal directory %s", dir);
		goto fail;
	}
	if (jseg_list(rd->dirfd, dir, &v, &n, e) < 0)
		goto fail;
	if (n == 0) {
		err_set(e, ENOENT, "journal %s has no segments yet", dir);
		goto fail;
	}
	if (newest_id(rd, v[n - 1], e) < 0)
		goto fail;
	i = find_segment(v, n, after_lsn + 1);
	used = open_from(rd, v, n, i < 0 ? 0 : (size_t)i, e);
	if (used < 0)
		goto fail;
	/* Records after after_lsn are missing if the segment we start in
	 * begins later than the first of them. */
	*gap_r = v[used] > after_lsn + 1;
	free(v);
	return rd;
fail:
	free(v);
	jreader_free(&rd);
	return NULL;
}

/* True if the current segment's name now refers to another file. */
static bool replaced(struct jreader *rd)
{
	char name[JSEG_NAME_SIZE];
	struct stat a, b;

	jseg_name(rd->sc.hdr.first_lsn, name);
	if (fstat(rd->sc.fd, &a) < 0 || fstatat(rd->dirfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	return a.st_ino != b.st_ino || a.st_dev != b.st_dev;
}

/* At the end of the current segment: moves to the next one if it exists.
 * Returns 1 if a record was read meanwhile (in *r), 0 if the cursor moved
 * on, 2 if there is nothing more yet, -1 on error. */
static int next_segment(struct jreader *rd, struct jrec *r, struct err *e)
{
	struct jscan next;
	int rc;

	/* An empty segment has no successor, unless a journal restart
	 * replaced it under the same name. */
	if (rd->sc.next_lsn == rd->sc.hdr.first_lsn && !replaced(rd))
		return 2;
	if (jscan_open(&next, rd->dirfd, rd->dir, rd->sc.next_lsn, O_RDONLY, e) < 0)
		return errno == ENOENT ? 2 : -1;
	/* The writer closed the current segment: read what it finished. */
	rc = jscan_next(&rd->sc, r, e);
	if (rc != 0) {
		jscan_close(&next);
		return rc;
	}
	if (rd->sc.torn) {
		rc = err_set(e, ERR_CORRUPT,
			     "journal corrupt: %s: offset %" PRIu64
			     ": incomplete record at the end of a closed segment",
			     rd->sc.path, rd->sc.tail_off);
		jscan_close(&next);
		return rc;
	}
	if (next.hdr.journal_id != rd->id) {
		rc = err_set(e, ESTALE,
			     "journal %s was restarted with a new id %016" PRIx64
			     " (was %016" PRIx64 "): reopen and do a full compare",
			     rd->dir, next.hdr.journal_id, rd->id);
		jscan_close(&next);
		return rc;
	}
	jscan_close(&rd->sc);
	rd->sc = next;
	return 0;
}

int jreader_next(struct jreader *rd, struct jrec *r, struct err *e)
{
	for (;;) {
		int rc = jscan_next(&rd->sc, r, e);

		if (rc == 0)
			rc = next_segment(rd, r, e);
		if (rc < 0)
			return -1;
		if (rc == 2)
			return 0;
		if (rc == 1 && r->lsn > rd->after)
			return 1;
	}
}

uint64_t jreader_journal_id(const struct jreader *rd)
{
	return rd->id;
}

void jreader_free(struct jreader **rdp)
{
	struct jreader *rd = *rdp;

	if (rd == NULL)
		return;
	jscan_close(&rd->sc);
	if (rd->dirfd >= 0)
		close(rd->dirfd);
	free(rd->dir);
	free(rd);
	*rdp = NULL;
}
