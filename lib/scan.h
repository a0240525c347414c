/*
 * scan.h — listing folders and summarising them as digests, the same way
 * on both nodes, for full sync, rescans and the audit (DESIGN §6, §9).
 *
 * A "folder" here is any directory under mail_root that is not a cur/,
 * new/ or tmp/ directory and not excluded: Maildir folders, but also the
 * user and domain directories above them, so that empty folders and the
 * directory structure replicate too. The mail root itself is folder "".
 *
 * A folder's listing holds, sorted by name:
 *   - "."               the folder directory itself (mode, owner)
 *   - "cur", "new", "tmp" its Maildir subdirectories, if present
 *   - "cur/<name>", "new/<name>"  message files
 *   - "<meta>" and "courierimapkeywords/<name>"  metadata files, and the
 *     "courierimapkeywords" directory itself if present (so that the
 *     sender can create it, with its mode, before filling it)
 * Files in tmp/, excluded names (index caches, locks) and anything else
 * are left out. Symlinks are never followed and never listed. Directory
 * entries have size 0.
 *
 * The digest of a folder is SHA-256 (truncated to WIRE_DIGEST_LEN) over
 * its listing: for each entry its name, type, permission bits, and for
 * files size and mtime (ns); for metadata files also the content hash; for
 * messages the content hash only when `deep`. Owners are not in the
 * digest (a standby may run without root); directory mtimes are not
 * either (they change with every delivery).
 *
 * A directory listing taken while files are being renamed can miss
 * entries, so scan_folder() re-lists until two consecutive listings agree
 * or the directories' mtimes did not move in between (bounded retries).
 */
#ifndef MDREPL_SCAN_H
#define MDREPL_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "hash.h"
#include "maildir.h"
#include "wire.h"

struct scan_entry {
	char *name; /* relative to the folder, see above */
	uint64_t size;
	int64_t mtime_ns;
	uint32_t mode; /* full st_mode: type and permission bits */
	uint32_t uid, gid;
	uint32_t nlink;
	uint64_t dev, ino; /* local identity, for hard-link detection */
	bool has_hash;
	uint8_t sha256[SHA256_LEN];
};

struct folder_list {
	struct scan_entry *v; /* sorted by name (bytewise) */
	size_t n;
	size_t cap;
};

/* Lists one folder beneath rootfd ("" = the mail root). deep: also hash
 * every message's content. Returns 0, 1 if the folder does not exist
 * (out is empty), or -1. */
int scan_folder(int rootfd, const struct md_rules *rules, const char *folder, bool deep,
		struct folder_list *out, struct err *e);
void folder_list_free(struct folder_list *l);
/* Binary search by name; NULL if absent. */
const struct scan_entry *folder_list_find(const struct folder_list *l, struct slice name);

void scan_digest(const struct folder_list *l, bool deep, uint8_t out[WIRE_DIGEST_LEN]);

/* What a folder holds, for reports and for pacing reads: its message
 * files and their bytes. */
struct folder_counts {
	uint64_t messages, bytes;
};
void scan_count(const struct folder_list *l, struct folder_counts *out);

/* Hashes one file entry of a listing of the folder open at dfd, for
 * callers that hash messages one at a time (to pace the reads): sets
 * sha256 and has_hash, and size, mtime and mode to those of the content
 * hashed (re-hashing if it changed meanwhile). Returns 0, 1 if the file
 * vanished or is no longer a regular file, or -1. */
int scan_hash_entry(int dfd, struct scan_entry *en, struct err *e);

/* Calls fn for every folder at or below prefix ("" = whole tree), in
 * strcmp() order of the whole paths (which puts parents before children:
 * "a" < "a.b" < "a/x"), so two nodes' walks merge with strcmp(). A prefix
 * that does not exist or is not a folder gives no calls. Returns 0, -1 on
 * error, or what fn returned if non-zero (which stops the walk). */
typedef int scan_folder_fn(const char *folder, void *ctx);
int scan_walk(int rootfd, const struct md_rules *rules, const char *prefix, scan_folder_fn *fn,
	      void *ctx, struct err *e);

/* Folder digests with a cache, so that summarising a large unchanged store
 * costs a few stat() calls per folder rather than a listing: an entry is
 * reused while the folder's, cur/'s, new/'s, tmp/'s and
 * courierimapkeywords/'s directories and the metadata files keep their
 * inode, size, mtime and ctime, and is not stored at all when any of them
 * is within two seconds of the listing (timestamps are coarse; see "racy
 * git"). Messages are not stamped (Maildir never changes them in place), so
 * deep digests are never cached. Persisted as a file in the state
 * directory (path NULL: memory only). */
struct digest_cache;

struct digest_cache *digest_cache_open(const char *path);
/* Writes the cache back (atomic replace) if it changed. */
int digest_cache_save(struct digest_cache *c, struct err *e);
void digest_cache_free(struct digest_cache **c);
/* Digest of one folder, from the cache when still valid. Returns 0, 1 if
 * the folder does not exist, or -1. */
int digest_cache_get(struct digest_cache *c, int rootfd, const struct md_rules *rules,
		     const char *folder, bool deep, uint8_t out[WIRE_DIGEST_LEN],
		     struct err *e);
/* The same, also giving the folder's counts (kept in the cache with the
 * digest) in *counts_r. */
int digest_cache_get_counted(struct digest_cache *c, int rootfd, const struct md_rules *rules,
			     const char *folder, bool deep, uint8_t out[WIRE_DIGEST_LEN],
			     struct folder_counts *counts_r, struct err *e);
/* Counters for tests and status: lookups answered from the cache / by listing. */
void digest_cache_stats(const struct digest_cache *c, uint64_t *hits, uint64_t *misses);

#endif
