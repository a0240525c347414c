/*
 * fuzz_journal.c — libFuzzer target for the journal reader and the
 * writer's recovery (journal/jformat.c, jreader.c, journal.c), `make
 * fuzz`, see tests/fuzz/README.
 *
 * The journal is read from files, so each input becomes a journal
 * directory in the scratch directory (tmpfs):
 *
 *     byte 0      flags: 1 = fix up the header and record CRCs, so that
 *                 mutations reach the checks behind them; 2 = also open
 *                 the journal for writing (recovery of a torn tail),
 *                 append a record, close it and read that back; 4 = the
 *                 cursor starts after the LSN in bytes 1..8 (else 0)
 *     rest        segment files back to back: a new one starts at each
 *                 "MDRJRNL\0" (the segment magic); each is named after
 *                 the first LSN in its header (bytes 24..31), or after
 *                 its index when it is too short to have one
 *
 * Oracles beyond "no crash, no sanitizer report, no hang": records come
 * out in LSN order without gaps, after the cursor's start; a cursor at
 * its tail stays there; corruption is reported with ERR_CORRUPT naming
 * the journal directory, and an offset it names lies within the file; a
 * journal the writer accepted takes a new record, and a reader then
 * finds that record, then the stop record, then nothing.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "hash.h"
#include "jformat.h"
#include "journal.h"

#define MAX_SEGS 8

static char jdir[512];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(jdir, sizeof(jdir), "%s/journal", fz_scratch());
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes the header CRC and every record CRC whose length fits. */
static void fix_crcs(uint8_t *p, size_t n)
{
	size_t off = JSEG_HDR_LEN;

	if (n < JSEG_HDR_LEN)
		return;
	put_le32(p + 44, crc32_update(0, p, 44));
	while (n - off >= 8) {
		uint32_t len = le32(p + off);

		if (len < JREC_HDR_LEN || len > n - off)
			break;
		put_le32(p + off + 4, crc32_update(crc32_update(0, p + off, 4), p + off + 8, len - 8));
		off += len;
	}
}

/* Splits the input into segment files and writes them; returns the size
 * of the largest (to check the offsets errors name). */
static size_t write_segments(uint8_t *p, size_t n, bool fix)
{
	size_t start = 0, largest = 0;

	for (int i = 0; start < n && i < MAX_SEGS; i++) {
		const uint8_t *next = n - start > 8 ? memmem(p + start + 1, n - start - 1,
							     JSEG_MAGIC, 8)
						    : NULL;
		size_t end = next && i + 1 < MAX_SEGS ? (size_t)(next - p) : n;
		char name[JSEG_NAME_SIZE];

		if (fix)
			fix_crcs(p + start, end - start);
		jseg_name(end - start >= 32 ? le64(p + start + 24) : 1000000 + (uint64_t)i, name);
		fz_write(jdir, name, p + start, end - start);
		if (end - start > largest)
			largest = end - start;
		start = end;
	}
	return largest;
}

/* An error must be corruption naming the journal (and an offset in a
 * file), or an ordinary error (a vanished segment, a restarted id). */
static void check_error(const struct err *e, size_t largest)
{
	const char *at;

	if (e->code != ERR_CORRUPT)
		return;
	if (strstr(e->msg, jdir) == NULL)
		abort();
	at = strstr(e->msg, ": offset ");
	if (at != NULL && strtoull(at + 9, NULL, 10) > largest)
		abort();
}

/* Reads everything after `after`; returns the last LSN read (after if
 * none), or sets *failed. */
static uint64_t read_all(uint64_t after, size_t largest, size_t limit, bool *failed)
{
	struct err e = {0};
	struct jrec r;
	bool gap;
	struct jreader *rd = jreader_open(jdir, after, &gap, &e);
	uint64_t last = after;
	size_t count = 0;
	int rc;

	*failed = true;
	if (rd == NULL) {
		check_error(&e, largest);
		return last;
	}
	while ((rc = jreader_next(rd, &r, &e)) == 1) {
		if (r.lsn <= after || (count > 0 && r.lsn != last + 1) || r.type < JR_CREATE ||
		    r.type > JR_STOP || r.path.len > JREC_PATH_MAX || r.path2.len > JREC_PATH_MAX)
			abort();
		last = r.lsn;
		if (++count > limit)
			abort(); /* more records than the bytes can hold: a loop */
	}
	if (rc == 0) {
		*failed = false;
		if (jreader_next(rd, &r, &e) != 0)
			abort(); /* the tail moved without a write */
	} else {
		check_error(&e, largest);
	}
	jreader_free(&rd);
	return last;
}

/* Opens the journal for writing, appends, closes cleanly, and checks that
 * a reader sees exactly what was appended. */
static void write_and_read_back(size_t largest, size_t limit)
{
	struct journal_opts o = {.fsync_interval_ms = 50,
				 .fsync_records = 1000,
				 .segment_size = 64 * 1024,
				 .max_size = 1 << 30};
	struct err e = {0};
	struct jrec r;
	struct jreader *rd;
	struct journal *j;
	uint64_t head, lsn = 0;
	bool clean, gap, failed;

	j = journal_open(jdir, &o, &clean, &e);
	if (j == NULL) {
		check_error(&e, largest);
		return;
	}
	head = journal_head(j);
	if (journal_append(j, JR_CREATE, 0, SLICE_LIT("u/Maildir/new/1.fuzz"), SLICE_LIT(""), &lsn,
			   &e) < 0 ||
	    journal_close_clean(&j, &e) < 0) {
		/* The LSNs ran out: a journal at UINT64_MAX cannot go on. */
		journal_free(&j);
		return;
	}
	if (lsn != head + 1)
		abort();
	rd = jreader_open(jdir, head, &gap, &e);
	if (rd == NULL || jreader_next(rd, &r, &e) != 1 || r.lsn != lsn || r.type != JR_CREATE ||
	    !slice_eq_cstr(r.path, "u/Maildir/new/1.fuzz") || jreader_next(rd, &r, &e) != 1 ||
	    r.type != JR_STOP || jreader_next(rd, &r, &e) != 0) {
		fprintf(stderr, "read back after recovery failed: %s\n", e.msg);
		abort();
	}
	jreader_free(&rd);
	read_all(0, largest + 4096, limit + 2, &failed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t flags, *copy;
	uint64_t after = 0;
	size_t skip = 1, largest, limit;
	bool failed;

	if (size < 1 || size > 1 << 20)
		return 0;
	flags = data[0];
	if ((flags & 4) && size >= 9) {
		after = le64(data + 1);
		skip = 9;
	}
	copy = malloc(size - skip + 1);
	memcpy(copy, data + skip, size - skip);
	fz_empty_dir(jdir);
	largest = write_segments(copy, size - skip, flags & 1);
	free(copy);
	limit = size / JREC_HDR_LEN + 1;
	read_all(after, largest, limit, &failed);
	if (flags & 2)
		write_and_read_back(largest, limit);
	return 0;
}
