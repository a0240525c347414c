/*
 * rejoin.h — what an old primary must hand the new primary before it
 * follows it (DESIGN §8): the messages only this node has, each judged by
 * what this node's journal says happened after the last of its records
 * the new primary made durable (lsn L, from the new primary's HELLO):
 *
 *   RJ_SEND     created here after L (a create, or a rename that made
 *               the base appear for its user): it never reached the new
 *               primary. Sent there under the same folder and name.
 *   RJ_EXPUNGED it existed here at L, so the new primary had it and has
 *               since expunged it: left alone (it goes when this node
 *               follows). Known so when no record after L made it appear
 *               and it was not touched since a stretch the journal did
 *               not watch began (below), or when a record shortly before
 *               L shows it appearing.
 *   RJ_RECOVER  the journal cannot tell: no usable position (another
 *               journal, none, records deleted by retention), or the
 *               message was touched (ctime) since the start of a stretch
 *               the journal did not watch — journald restarted, a queue
 *               overflow or an explicit rescan (a rescan record), or
 *               journald not running now. Kept: sent into the user's
 *               "Recovered" folder, so the user sees it and nothing
 *               reappears silently in its old place.
 *
 * Messages are compared by base name per user (a user is a folder with
 * its Maildir++ ".Sub" folders), so a move between one user's folders,
 * a flag change or a new/ -> cur/ move is not a difference: the new
 * primary's name wins when this node follows. Folders are compared by
 * digest first; every folder of a user with any differing folder is
 * listed on both sides.
 */
#ifndef MDREPL_REJOIN_H
#define MDREPL_REJOIN_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "conf.h"
#include "err.h"
#include "maildir.h"
#include "scan.h"

#define RJ_SLACK_NS (2 * 1000000000LL) /* events journaled late, coarse times */

enum rj_fate { RJ_SEND, RJ_RECOVER, RJ_EXPUNGED };

const char *rj_fate_name(enum rj_fate f);

/* What the journal says after L. */
struct rj_journal;

/* Reads STATE_DIR/journal after lsn `after` (the new primary's durable
 * position for journal `journal_id`; after = 0 or another journal id: the
 * journal cannot tell anything). journaling: mdrepl-journald is journaling
 * now (if not, everything touched since the last record is in doubt).
 * Returns the summary (rj_journal_free), never NULL; why it is blind, if
 * it is, in rj_journal_blind(). */
struct rj_journal *rj_journal_read(const char *jdir, const struct md_rules *rules,
				   uint64_t journal_id, uint64_t after, bool journaling);
/* NULL if the journal can tell, else why it cannot. */
const char *rj_journal_blind(const struct rj_journal *j);
/* Records read after L, and the last LSN. */
uint64_t rj_journal_records(const struct rj_journal *j);
uint64_t rj_journal_last(const struct rj_journal *j);
void rj_journal_free(struct rj_journal **j);

/* The fate of a message only this node has: user, base and folder name
 * it; ctime_ns is its inode change time here. */
enum rj_fate rj_judge(const struct rj_journal *j, struct slice user, struct slice base,
		      const char *folder, int64_t ctime_ns);

struct rj_item {
	char *folder; /* where it is here */
	char *name;   /* "cur/<name>" or "new/<name>" */
	char *user;   /* its user (folder without Maildir++ suffixes) */
	enum rj_fate fate;
};

struct rj_plan {
	struct rj_item *v;
	size_t n;
	uint64_t folders, differing, users;
	uint64_t renamed;      /* same base there under another name or folder */
	uint64_t incoming;     /* bases only the new primary has */
	char **remote_folders; /* sorted: folders that exist on the new primary */
	size_t nremote;
};

/* Compares this node (rootfd, digests from cache) with the new primary
 * (c, a REJOIN session) and judges every message only this node has.
 * Returns 0 or -1. */
int rj_compare(struct client *c, int rootfd, const struct md_rules *rules,
	       struct digest_cache *cache, const struct rj_journal *j, struct rj_plan *plan,
	       struct err *e);
/* True if folder exists on the new primary (or was created there since). */
bool rj_remote_has(const struct rj_plan *plan, const char *folder);
void rj_remote_add(struct rj_plan *plan, const char *folder);
void rj_plan_free(struct rj_plan *plan);

#endif
