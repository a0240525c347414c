/*
 * journald.h — the state of mdrepl-journald shared by its main loop
 * (journald.c) and its control commands (jdctl.c). Internal.
 */
#ifndef MDREPL_JOURNALD_H
#define MDREPL_JOURNALD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "conf.h"
#include "err.h"
#include "journal.h"
#include "maildir.h"
#include "nodestate.h"
#include "watch.h"

struct jd {
	const struct settings *s;
	struct md_rules *rules;
	char *jdir;	 /* STATE_DIR/journal */
	char *sock_path; /* STATE_DIR/journald.sock */
	enum role role;
	struct stat role_st; /* node.state as last read */
	struct journal *j;   /* open while primary */
	struct watcher *w;   /* watching while primary */
	bool lost;	     /* an append failed: rescan once appends work again */
	uint64_t records, rescans;
	char last_error[ERR_MSG_MAX];
	uint64_t start_ms;
	uint64_t retry_at_ms; /* primary but not journaling: when to try again */
};

/* journald's status as one JSON object (the control socket's `status`,
 * and the metrics file). */
void jd_status_json(struct jd *jd, struct buf *out);

/* Appends a record (the watcher's callback, also used by commands).
 * A failed append is logged and remembered; the next append that works
 * is preceded by a full rescan, so no failure leaves a silent gap.
 * Returns 0 or -1. */
int jd_append(struct jd *jd, enum jrec_type t, uint32_t flags, struct slice path,
	      struct slice path2);
/* Records the last error for status. */
void jd_error(struct jd *jd, const char *msg);
/* Re-reads node.state now; starts or stops journaling on a role change. */
void jd_check_role(struct jd *jd, bool force);

/* Handles one control request (argv), writing the reply into out. */
void jdctl_handle(struct jd *jd, int argc, char **argv, struct buf *out);

#endif
