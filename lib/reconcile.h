/*
 * reconcile.h — make the peer's copy of a subtree equal to ours: the one
 * comparison behind one-shot full sync, rescans in rolling replication
 * (journal rescan records, the needs-full-sync marker) and audit repair.
 *
 * Per-folder digests are compared first (both sides cache them), and only
 * folders whose digests differ are listed and compared entry by entry.
 * Folders are handled a user at a time (a user = the folder with its
 * Maildir++ ".Sub" folders), so memory stays bounded on large stores and
 * moves between one user's folders are seen as moves:
 *   - a message whose base name the peer has under another name (a flag
 *     change, new/ -> cur/, a move between folders) is renamed there, or
 *     linked if the old name must stay too — never sent again;
 *   - other missing messages are sent (the client dedupes copies);
 *   - a message with the same name but other size (or content, deep) is
 *     sent again; with only another mtime or mode it gets its attributes;
 *   - metadata files are sent as librsync deltas against the peer's copy;
 *   - what the peer has and we do not is deleted there, after the
 *     messages and before the metadata files (a uidlist never names a
 *     message that is not there), and folders it has and we do not are
 *     removed last.
 */
#ifndef MDREPL_RECONCILE_H
#define MDREPL_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "err.h"
#include "maildir.h"
#include "scan.h"

struct reconcile_opts {
	int rootfd;
	const struct md_rules *rules;
	struct digest_cache *cache; /* local digests (may be NULL) */
	bool deep;		    /* compare message content hashes too */
	uint64_t lsn;		    /* journal record the changes serve (0 = none) */
	/* Progress callback (may be NULL): folders done of total. */
	void (*progress)(uint64_t done, uint64_t total, void *ctx);
	void *progress_ctx;
	/* Called between users (may be NULL), so that a long compare does not
	 * hold up other work, e.g. rolling replication of other users'
	 * changes. Returns 0, or -1 to stop with the error in e. */
	int (*yield)(void *ctx, struct err *e);
	void *yield_ctx;
};

struct reconcile_stats {
	uint64_t folders_compared;  /* digests compared */
	uint64_t folders_differing; /* listed on both sides */
	uint64_t folders_created, folders_removed;
};

/* Reconciles every folder at or below prefix ("" = the whole tree). */
int reconcile_tree(struct client *c, const struct reconcile_opts *o, const char *prefix,
		   struct reconcile_stats *st, struct err *e);

#endif
