/*
 * apply.h — the standby's apply engine (DESIGN §7): turns decoded
 * mutation messages into changes of the mail store, durably and
 * idempotently, confined beneath the mail root.
 *
 * Content is written to a temporary file (in MAIL_ROOT/.mdrepl-tmp/, or,
 * for a target on another file system or behind a mount point, the
 * folder's tmp/ or the target's directory under a ".mdrepl-" name), with
 * mode, owner and mtime (ns) set, and is renamed into place only at
 * apply_commit(),
 * after its data is on disk — so no partial file is ever visible in cur/
 * or new/. apply_commit() is the group commit: one syncfs() (or an fsync
 * per file) for the data, the renames in the order the operations
 * arrived (message files before the uidlist that names them), then one
 * more syncfs() (or an fsync per touched directory) for the names. A
 * chunked transfer still arriving is not renamed (it keeps its place in
 * the order for the commit after its last byte).
 *
 * Operations that touch a path with uncommitted content (a link from it,
 * a directory rename or removal above it) first flush the pending content
 * into place; a rename or unlink of pending content just retargets or
 * drops it.
 *
 * Every operation is idempotent: replaying an applied batch after a crash
 * changes nothing (a PUT or DELTA whose result is already there with the
 * same size, mtime and SHA-256 is a no-op). Each returns
 *    0  applied, or already in the requested state;
 *    1  NEED: the content it refers to is not here (rename/link source
 *       missing and target absent, delta base differs, a delta that does
 *       not produce result_sha256), or the target's directory does not
 *       exist (directories are never created implicitly: the sender sends
 *       MKDIR first); the sender must send the whole content, with any
 *       missing directories;
 *   -1  error; e->code is a wire_errcode (WE_PATH, WE_NOSPACE, WE_IO,
 *       WE_INTEGRITY, WE_LIMIT, WE_PROTOCOL) and e->msg says what failed.
 *       The batch must not be acknowledged: call apply_abort().
 *
 * Bodies: a WF_DEFLATE body must inflate to exactly raw_len bytes; for a
 * raw body raw_len is not used. LINK without WF_COPY falls back to a local
 * copy where a hard link is impossible (EXDEV, EMLINK).
 *
 * SECURITY: every path is checked with sp_check() and resolved with
 * safepath.h beneath the root: no absolute paths, "..", NUL, and no
 * symlink is ever followed. Paths inside tmp/ or excluded are refused, and
 * so is anything md_classify() does not call a message, a metadata file or
 * a folder directory. Files never get set-user-ID or set-group-ID bits;
 * owners are set only with preserve_owner when running as root.
 */
#ifndef MDREPL_APPLY_H
#define MDREPL_APPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "maildir.h"
#include "wire.h"

#define APPLY_TMPDIR ".mdrepl-tmp"

struct apply_opts {
	int rootfd;		     /* the mail root, opened O_DIRECTORY */
	const struct md_rules *rules;
	bool preserve_owner;	     /* chown to the sender's uid/gid (needs root) */
	bool use_syncfs;	     /* syncfs() per batch, else fsync() per file */
	uint32_t max_pending;	     /* flush early past this many pending files */
};

struct apply_stats {
	uint64_t files_written, bytes_written;
	uint64_t renames, links, copies, unlinks, mkdirs, rmtrees, deltas, setattrs;
	uint64_t needs, commits, noops;
	uint64_t syncs; /* sync rounds of commits: syncfs() calls, or fsync() passes */
};

struct apply;

/* Creates the engine; removes leftovers of an earlier crash from
 * MAIL_ROOT/.mdrepl-tmp. */
struct apply *apply_new(const struct apply_opts *o, struct err *e);
void apply_free(struct apply **a);

int apply_put(struct apply *a, const struct w_put *m, struct err *e);
int apply_data(struct apply *a, const struct w_data *m, struct err *e);
int apply_rename(struct apply *a, const struct w_rename *m, struct err *e);
int apply_link(struct apply *a, const struct w_link *m, struct err *e);
int apply_unlink(struct apply *a, const struct w_unlink *m, struct err *e);
int apply_mkdir(struct apply *a, const struct w_mkdir *m, struct err *e);
int apply_rmtree(struct apply *a, const struct w_rmtree *m, struct err *e);
int apply_delta(struct apply *a, const struct w_delta *m, struct err *e);
int apply_setattr(struct apply *a, const struct w_setattr *m, struct err *e);

/* Makes everything applied since the last commit durable. A chunked PUT
 * still in progress stays pending across commits. Returns 0 or -1. */
int apply_commit(struct apply *a, struct err *e);
/* apply_commit, calling hook(ctx) after the renames and before the final
 * sync (also when there was nothing to commit): a caller whose own state
 * lives on the same file system gets it made durable by that same sync. */
typedef int apply_hook_fn(void *ctx, struct err *e);
int apply_commit_hook(struct apply *a, apply_hook_fn *hook, void *ctx, struct err *e);
/* Drops uncommitted content (temporary files); already-renamed names stay. */
void apply_abort(struct apply *a);

const struct apply_stats *apply_get_stats(const struct apply *a);

#endif
