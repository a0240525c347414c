/*
 * apply_int.h — what apply.c (the operations) and pending.c (staging, the
 * pending list, the group commit) share. Internal to syncd/libsyncd.a:
 * the interface is apply.h.
 */
#ifndef MDREPL_APPLY_INT_H
#define MDREPL_APPLY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "apply.h"
#include "buf.h"
#include "err.h"
#include "hash.h"

#define DEFAULT_MAX_PENDING 256
#define PEND_SLOTS	    16384 /* a power of two, well above max_pending */
#define MAX_XFERS	    64 /* chunked transfers open at once */
#define COURIER_DIR	    "courierimapkeywords"

/* What a file or directory carries besides its content. */
struct attrs {
	uint32_t mode, uid, gid;
	int64_t mtime_ns;
	bool has_mtime;
};

/* Content waiting for apply_commit(), or still arriving (open). */
struct pend {
	char *path;    /* target, relative to the root (ap_pend_rename changes it) */
	uint32_t slot; /* path's slot in apply.names */
	int sdir;      /* directory holding the temporary file */
	bool own_sdir; /* sdir is ours to close (not a->stagefd) */
	dev_t dev;     /* file system of sdir, and of the target's directory */
	char tmp[64];  /* temporary file name in sdir */
	uint64_t size;
	uint8_t sha256[SHA256_LEN];
	struct attrs at;
	/* a chunked transfer */
	bool open;
	bool discard; /* superseded or removed while arriving: dropped when done */
	uint32_t xfer_id;
	int fd;
	uint64_t got;
	struct sha256 *h;
};

/* A directory whose entries changed, to make durable at commit. */
struct touched {
	char *path;
	dev_t dev;
};

/* The engine (opaque in apply.h). */
struct apply {
	struct apply_opts o;
	int rootrd; /* the root, readable (fsync, syncfs) */
	dev_t rootdev;
	int stagefd; /* MAIL_ROOT/APPLY_TMPDIR */
	dev_t stagedev;
	bool chown_ok;
	pid_t pid;	   /* of this session, in temporary names */
	mode_t temp_mode;  /* what a new temporary file is made with */
	struct pend **v; /* arrival order */
	size_t n, cap, ncomplete, nopen;
	/* How many pending entries' paths hash to each slot: most lookups by
	 * path find an empty slot and skip the walk of v. */
	uint32_t names[PEND_SLOTS];
	struct touched *dirs;
	size_t ndirs, dircap;
	uint64_t seq;
	struct buf body; /* inflated bodies */
	struct apply_stats st;
};

/* The wire error code (WE_*) for an errno value. */
int ap_wire_code(int err);

/* Turns the errno in e (from safepath.h, fsutil.h, hash.h) into a wire
 * code. */
int ap_fail(struct err *e);

/* err_sys() with a wire code. */
int ap_fail_sys(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens the directory holding path. Returns its fd, -2 if it (or a
 * directory above it) does not exist, or -1 (WE_PATH for a symlink or a
 * file in the way). */
int ap_open_parent(struct apply *a, const char *path, const char **name_r, struct err *e);

/* True if path is dir or lies beneath it. */
bool ap_under(const char *path, const char *dir);

/* Records a directory (given by path, or as the parent of path) whose
 * entries changed. */
void ap_touch(struct apply *a, const char *path, bool parent, dev_t dev);

/* The file system an open file is on (0 if fstat fails). */
dev_t ap_dev_of(int fd);

/* Applies owner, mode and mtime to an open file or directory. */
int ap_set_attrs(struct apply *a, int fd, const struct attrs *at, bool dir, const char *path,
		 struct err *e);

/* The same for p's temporary file, made by ap_pend_new: its mode is set
 * only when it differs from the one the file was made with. */
int ap_set_temp_attrs(struct apply *a, struct pend *p, struct err *e);

/* True if the file open at fd already carries these attributes. */
bool ap_attrs_match(struct apply *a, const struct stat *st, const struct attrs *at);

/* Removes the pending entry at index i, deleting its temporary file
 * unless it has been renamed into place. */
void ap_pend_remove(struct apply *a, size_t i, bool unlink_tmp);

/* Where p is in the pending list (it must be there). */
size_t ap_pend_index(struct apply *a, const struct pend *p);

/* The latest pending content for path: complete only, or also arriving. */
struct pend *ap_pend_find(struct apply *a, const char *path, bool complete_only);

/* The chunked transfer still arriving with this id, or NULL. */
struct pend *ap_xfer_find(struct apply *a, uint32_t id);

/* Drops complete content pending for path, or anywhere beneath it when
 * tree is set (content still arriving there is discarded when done),
 * except keep (NULL, or an entry in the list). */
void ap_pend_drop(struct apply *a, const char *path, bool tree, const struct pend *keep);

/* Creates pending content for path (whose directory is pfd) with an empty
 * temporary file, open for writing in p->fd. */
struct pend *ap_pend_new(struct apply *a, const char *path, int pfd, const struct attrs *at,
			 bool local, struct err *e);

/* Appends p to the pending list (arrival order). */
void ap_pend_add(struct apply *a, struct pend *p);

/* Gives a listed pending entry another target path (taking path). */
void ap_pend_rename(struct apply *a, struct pend *p, char *path);

/* Releases a pend that never joined the list. */
void ap_pend_discard_new(struct pend *p);

/* Appends data to p's temporary file (and its running hash). */
int ap_write_content(struct pend *p, struct slice data, struct err *e);

/* Makes a copy of pending content p (or of the open file src, when p is
 * NULL) for path, whose directory is pfd, staged there when local. Checks
 * size and hash. Returns the new pend (not yet in the list), or NULL with
 * *r set: 1 NEED, -1. */
struct pend *ap_copy_of(struct apply *a, const struct pend *p, int src, const char *path, int pfd,
			bool local, const struct w_link *m, int *r, struct err *e);

/* Hard-links pending content p to a second temporary file for path. */
struct pend *ap_link_pending(struct apply *a, const struct pend *p, const char *path,
			     struct err *e);

/* Moves the temporary file of the complete pending entry at index i into
 * its target's directory pfd (its file system, its mount), keeping its
 * place in the order. */
int ap_restage(struct apply *a, size_t i, int pfd, struct err *e);

/* Commits early when too much content is pending. */
int ap_maybe_flush(struct apply *a, struct err *e);

/* Does the file at path already hold exactly this content and mtime?
 * If so, also brings its mode and owner in line. pfd is the directory
 * holding it when the caller has it open, else -1. */
bool ap_already_there(struct apply *a, const struct pend *p, int pfd);

#endif
