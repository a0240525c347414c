/*
 * standbypos.h — the standby's replication position (STATE_DIR/standby.pos):
 * which primary's journal it follows and the LSN up to which every record
 * is durable on disk here. Written atomically by mdrepl-syncd after each
 * group commit; sent back to the primary in HELLO so rolling replication
 * resumes exactly there; read by mdreplctl status and promote.
 */
#ifndef MDREPL_STANDBYPOS_H
#define MDREPL_STANDBYPOS_H

#include <stdint.h>

#include "err.h"
#include "nodestate.h"

struct standby_pos {
	uint64_t journal_id;	       /* the primary's journal */
	uint64_t durable_lsn;	       /* every record <= this is durable here */
	uint8_t primary_id[NODE_ID_LEN]; /* node id of the primary followed */
	uint64_t generation;	       /* the primary's generation */
	uint64_t updated_ns;	       /* wall clock of the last update */
};

/* Reads the position; a missing file gives an all-zero position and 0. */
int standbypos_load(const char *state_dir, struct standby_pos *p, struct err *e);
int standbypos_save(const char *state_dir, const struct standby_pos *p, struct err *e);
/* Replaces the file without syncing it: for a caller that syncs the file
 * system right after (syncd's group commit). */
int standbypos_replace(const char *state_dir, const struct standby_pos *p, struct err *e);
/* Forgets the position (a node that stops following, or follows a new
 * primary: the next sender does a full compare). Durable: the directory is
 * fsync'd. A missing file is not an error. Returns 0 or -1. */
int standbypos_remove(const char *state_dir, struct err *e);

#endif
