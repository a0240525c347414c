/*
 * audit.h — the comparison behind `mdreplctl audit` (DESIGN §9): this
 * primary's tree against the standby's, over a read-only session
 * (PURPOSE_AUDIT). It reports; it never changes anything on either side.
 *
 * As reconcile.h does, it compares per-folder digests first (both sides
 * keep them in a digest cache, so an unchanged store costs a few stat()
 * calls per folder and a few bytes per folder on the wire) and lists only
 * the folders whose digests differ. With `deep` the contents are compared
 * too: a user's folders (md_user_of) that are alike by their digests by
 * deep digests, which the standby computes for them in one request
 * (WF_HASH), other folders by listings with content hashes; a folder is
 * listed only when its digests differ. This node hashes one message at a
 * time; each node hashes at most rate_limit bytes per second.
 *
 * Each difference is classified (enum audit_kind). A folder that exists on
 * one side only is reported once, at its topmost missing level, not with
 * everything below it. A message whose base name the standby has under
 * another name in the same folder is one `flags` difference, not a missing
 * and an extra one; one in another folder (an unreplicated move) is missing
 * here and extra there.
 *
 * Live replication must never show as a difference, so the caller looks
 * twice: audit_scan(), then — after waiting for the standby to catch up
 * with the journal head — audit_recheck(), which lists the differing
 * folders again (standby first, then this side) and keeps only differences
 * found again with the same kind and path whose primary-side entry did not
 * change in between. A change on the primary after the first look either
 * reaches the standby before the second (no difference) or shows as a
 * changed primary entry (dropped: the next audit judges it).
 */
#ifndef MDREPL_AUDIT_H
#define MDREPL_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "err.h"
#include "maildir.h"
#include "scan.h"

enum audit_kind {
	AK_MISSING,	   /* a message only the primary has */
	AK_EXTRA,	   /* a message (any file in cur/ or new/) only the standby has */
	AK_FLAGS,	   /* a message the standby has under another name: flags, new/ vs cur/ */
	AK_CONTENT,	   /* same name, other size, or (deep) other SHA-256 */
	AK_METADATA,	   /* a metadata file missing on, extra on, or different on the standby */
	AK_ATTRIBUTES,	   /* same content, other mode or mtime */
	AK_FOLDER_MISSING, /* a folder (or its cur/, new/, tmp/) only the primary has */
	AK_FOLDER_EXTRA,   /* a folder (or its cur/, new/, tmp/) only the standby has */
};
#define AK_COUNT 8

/* "missing", "extra", "flags", ... as in the reports. */
const char *audit_kind_name(enum audit_kind k);

/* The primary's side of a difference when it was seen, so that a second
 * look can tell a settled difference from a change made meanwhile. */
struct audit_entry {
	bool present;
	uint64_t size;
	int64_t mtime_ns;
	uint32_t mode;
	bool has_hash;
	uint8_t sha256[SHA256_LEN];
};

struct audit_diff {
	enum audit_kind kind;
	char *folder;	    /* the folder it belongs to ("" = mail_root) */
	char *path;	    /* relative to mail_root; the standby's name for extras */
	char *standby_path; /* AK_FLAGS: the standby's name; otherwise NULL */
	bool by_hash;	    /* AK_CONTENT with equal sizes: found only by --deep */
	struct audit_entry primary;
};

struct audit_diffs {
	struct audit_diff *v;
	size_t n, cap;
};

void audit_diffs_free(struct audit_diffs *d);
/* Sorts by path (then kind), the order reports use. */
void audit_diffs_sort(struct audit_diffs *d);

/* Appends the differences between one folder's listings to out. primary or
 * standby is NULL when the folder does not exist on that side. sep is the
 * Maildir name separator; deep compares the content hashes the listings
 * carry. */
void audit_compare(const char *folder, const struct folder_list *primary,
		   const struct folder_list *standby, char sep, bool deep, struct audit_diffs *out);

/* Keeps in d only the differences `again` holds too (same kind and path,
 * the primary's entry unchanged), taking their latest form from `again`;
 * frees the others. Both must be sorted (audit_diffs_sort). */
void audit_confirm(struct audit_diffs *d, const struct audit_diffs *again);

struct audit_opts {
	int rootfd; /* this node's mail root */
	const struct md_rules *rules;
	struct digest_cache *cache; /* local digests and counts (may be NULL) */
	const char *prefix;	    /* "" = the whole tree, else a folder (--user) */
	bool deep;
	uint64_t rate_limit; /* content bytes hashed per second on each side; 0 = no limit */
	/* Progress (may be NULL): folders done of total. */
	void (*progress)(uint64_t done, uint64_t total, void *ctx);
	void *progress_ctx;
};

struct audit_stats {
	uint64_t folders;	      /* compared: on either side */
	uint64_t messages, bytes;     /* the primary's messages in them, and their size */
	uint64_t folders_listed;      /* listed on both sides (digests differed, or deep) */
	uint64_t hashed, peer_hashed; /* message bytes hashed here and on the standby */
	uint64_t paced_ms;	      /* time spent waiting for the rate limit */
};

struct audit;

/* An audit over the session c (PURPOSE_AUDIT; the caller owns c). */
struct audit *audit_new(struct client *c, const struct audit_opts *o);
void audit_free(struct audit **a);

/* The first look: fills out (sorted) with every difference found and st
 * with what was compared. Returns 0 or -1. */
int audit_scan(struct audit *a, struct audit_diffs *out, struct audit_stats *st, struct err *e);

/* The second look at the folders of d (see above); d keeps what it
 * confirms. Returns 0 or -1. */
int audit_recheck(struct audit *a, struct audit_diffs *d, struct err *e);

/* Waits ms milliseconds, keeping the session alive. Returns 0 or -1. */
int audit_pause(struct audit *a, uint64_t ms, struct err *e);

#endif
