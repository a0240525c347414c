/*
 * journal.h — the journal: append-only, CRC'd, LSN-ordered hint records
 * in segment files under STATE_DIR/journal/ (DESIGN §5; the on-disk format
 * is in docs/journal.md).
 *
 * One writer (mdrepl-journald) appends; readers (the rolling engine,
 * `mdreplctl journal dump`) follow with cursors that resume at any LSN.
 * Records are written to the file as they are appended, so readers see
 * them at once; durability comes from group commit (journal_sync at most
 * every fsync_interval_ms or fsync_records, or per record).
 *
 * Opening for writing after a crash truncates a torn tail (an incomplete
 * or CRC-failing last record). A CRC failure with valid records after it
 * is corruption: reported with file and offset, never skipped.
 *
 * Retention: segments wholly at or below the standby's acknowledged LSN
 * (STATE_DIR/journal/acked, written by the rolling engine) are deleted;
 * past max_size the oldest segments are deleted anyway and the persistent
 * marker STATE_DIR/journal/needs-full-sync is created, which the rolling
 * engine claims (renames) and clears after a full compare.
 */
#ifndef MDREPL_JOURNAL_H
#define MDREPL_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

enum jrec_type {
	JR_CREATE = 1,	       /* path: a message or metadata file appeared */
	JR_RENAME = 2,	       /* path -> path2 (a file; may cross folders) */
	JR_UNLINK = 3,	       /* path: a file went away */
	JR_FOLDER_CREATE = 4,  /* path: a directory appeared */
	JR_FOLDER_DELETE = 5,  /* path: a directory went away */
	JR_FOLDER_RENAME = 6,  /* path -> path2: a directory was renamed */
	JR_META_CHANGED = 7,   /* path: a metadata file changed in place */
	JR_RESCAN = 8,	       /* path: compare this folder (or subtree, "" = all) */
	JR_START = 9,	       /* journald started; path = "clean" | "unclean" */
	JR_STOP = 10,	       /* journald stopped cleanly */
};

#define JR_F_SUBTREE 1u /* JR_RESCAN: the folder and everything below it */
#define JR_F_DEEP    2u /* JR_RESCAN: compare message contents too (audit --repair) */

struct jrec {
	uint64_t lsn;
	uint64_t time_ns; /* CLOCK_REALTIME when journaled */
	enum jrec_type type;
	uint32_t flags;
	struct slice path, path2; /* relative to mail_root; valid until the next read */
};

const char *jrec_type_name(enum jrec_type t);

struct journal_opts {
	uint64_t fsync_interval_ms; /* 0 = fsync every record */
	uint64_t fsync_records;
	uint64_t segment_size;
	uint64_t max_size;
};

struct journal;

/* Opens (creating if needed) the journal in dir for appending; recovers a
 * torn tail. *was_clean_r tells whether the last run ended with JR_STOP. */
struct journal *journal_open(const char *dir, const struct journal_opts *o, bool *was_clean_r,
			     struct err *e);
/* Appends a record and write()s it. Returns 0 and sets *lsn_r, or -1. */
int journal_append(struct journal *j, enum jrec_type type, uint32_t flags, struct slice path,
		   struct slice path2, uint64_t *lsn_r, struct err *e);
/* Group commit: fsyncs if records are waiting and the interval or count is
 * reached (force: now). Returns milliseconds until the next sync is due
 * (-1 if nothing is waiting), or -2 on error. */
int journal_sync(struct journal *j, bool force, struct err *e);
/* Deletes segments by the acked LSN and max_size (see above). */
int journal_retain(struct journal *j, struct err *e);
/* Appends JR_STOP, syncs and closes. */
int journal_close_clean(struct journal **j, struct err *e);
/* Closes without a stop record (for tests simulating a crash). */
void journal_free(struct journal **j);

uint64_t journal_id(const struct journal *j);	   /* random, per journal */
uint64_t journal_head(const struct journal *j);	   /* last LSN appended */
uint64_t journal_durable(const struct journal *j); /* last LSN fsync'd */
uint64_t journal_size(const struct journal *j);	   /* bytes in all segments */

/* Counters since journal_open, for status and tests. */
struct journal_stats {
	uint64_t appends;   /* records appended */
	uint64_t fsyncs;    /* fsyncs of segment data (group commits) */
	uint64_t rotations; /* segments started because the last one was full */
	uint64_t deleted;   /* segments deleted by retention */
	uint64_t segments;  /* segment files now */
};
void journal_get_stats(const struct journal *j, struct journal_stats *st);

/* Cursor for readers. */
struct jreader;

/* Opens a cursor positioned at the first record with LSN > after_lsn.
 * If records after after_lsn have been deleted by retention, *gap_r is set
 * (the caller must do a full compare) and the cursor starts at the oldest
 * record still there. Fails with e->code ENOENT while the journal has no
 * segment yet. */
struct jreader *jreader_open(const char *dir, uint64_t after_lsn, bool *gap_r, struct err *e);
/* Reads the next record: 1 = a record in *r, 0 = none yet (at the
 * writer's tail; try again later), -1 = corruption or I/O error (file and
 * offset in e; code ERR_CORRUPT), or the journal was restarted with a new
 * id (code ESTALE: reopen, and do a full compare). */
int jreader_next(struct jreader *rd, struct jrec *r, struct err *e);
uint64_t jreader_journal_id(const struct jreader *rd);
void jreader_free(struct jreader **rd);

/* The acknowledged position, written by the rolling engine (atomic
 * replace). Reading a missing file gives id 0 and LSN 0. Both return 0
 * or -1. */
int journal_write_acked(const char *dir, uint64_t journal_id, uint64_t lsn, struct err *e);
int journal_read_acked(const char *dir, uint64_t *journal_id_r, uint64_t *lsn_r, struct err *e);

/* needs-full-sync marker: journald sets it; the rolling engine claims it
 * (atomic rename to needs-full-sync.claimed) before a full compare and
 * removes the claim when that compare finished. A marker set again while
 * a claim is open survives the finish, so no deletion goes unnoticed.
 * journal_needs_full_sync: true while a marker or an unfinished claim
 * exists. journal_claim_full_sync: 1 = a full sync is claimed (the
 * marker existed, or an earlier claim was never finished), 0 = none is
 * needed, -1 = error. journal_finish_full_sync: 0 or -1. */
bool journal_needs_full_sync(const char *dir);
int journal_claim_full_sync(const char *dir, struct err *e);
int journal_finish_full_sync(const char *dir, struct err *e);

#endif
