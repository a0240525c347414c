/*
 * jhead.h — how far this node's journal goes, for role changes (a
 * primary's answer to a probe, the checks of demote and rejoin): asks
 * mdrepl-journald for its status and, when it does not answer or is not
 * journaling, reads the journal files from the acknowledged position to
 * their end.
 */
#ifndef MDREPL_JHEAD_H
#define MDREPL_JHEAD_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"

struct jhead {
	uint64_t journal_id; /* 0: no journal */
	uint64_t head_lsn;   /* the last LSN journaled */
	bool journaling;     /* mdrepl-journald answered and is journaling */
};

void jhead_get(const struct settings *s, struct jhead *h);

#endif
