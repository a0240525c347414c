/*
 * apply.c — the standby's apply engine (see apply.h, DESIGN §7).
 *
 * Content (PUT, DELTA, LINK with a copy) goes to a temporary file in
 * MAIL_ROOT/.mdrepl-tmp/ and joins the pending list, in arrival order;
 * apply_commit() makes the data durable, renames the files into place in
 * that order and makes the names durable. Operations on names (RENAME,
 * LINK, UNLINK, MKDIR, RMTREE, SETATTR) act at once and record the
 * directories they touched, which the commit makes durable too. Where an
 * operation names pending content, it acts on the pending list, so that
 * the result is what applying everything in order would give.
 *
 * A target on another file system than the staging directory (a mount
 * point below the root) is staged in its folder's tmp/ (or, failing that,
 * next to it under a dot name), so the final rename never crosses file
 * systems; its file system gets its own syncfs().
 *
 * SECURITY: every path comes from the peer. check_path() validates it
 * (sp_check() plus the Maildir rules: nothing in tmp/, nothing excluded,
 * cur/ new/ courierimapkeywords/ only as the last directory) and every
 * file-system access goes through a directory opened by safepath.h
 * beneath the root, with O_NOFOLLOW or AT_SYMLINK_NOFOLLOW on the last
 * component. File modes lose set-user-ID and set-group-ID bits (a
 * directory may keep set-group-ID); ownership is applied only when
 * preserve_owner is set and we run as root. Content is verified (size,
 * SHA-256) before it is renamed into place; a DEFLATE body inflates only
 * to its declared length.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "delta.h"
#include "fsutil.h"
#include "hash.h"
#include "log.h"
#include "safepath.h"
#include "xalloc.h"

#define DEFAULT_MAX_PENDING 256
#define MAX_XFERS	    64 /* chunked transfers open at once */
#define COURIER_DIR	    "courierimapkeywords"

struct attrs {
	uint32_t mode, uid, gid;
	int64_t mtime_ns;
	bool has_mtime;
};

/* Content waiting for apply_commit(), or still arriving (open). */
struct pend {
	char *path;    /* target, relative to the root */
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

struct apply {
	struct apply_opts o;
	int rootrd; /* the root, readable (fsync, syncfs) */
	dev_t rootdev;
	int stagefd; /* MAIL_ROOT/APPLY_TMPDIR */
	dev_t stagedev;
	bool chown_ok;
	struct pend **v; /* arrival order */
	size_t n, cap, ncomplete, nopen;
	struct touched *dirs;
	size_t ndirs, dircap;
	uint64_t seq;
	struct buf body; /* inflated bodies */
	struct apply_stats st;
};

/* ------------------------------------------------------------- errors */

static int wire_code(int err)
{
	switch (err) {
	case ENOSPC:
	case EDQUOT: return WE_NOSPACE;
	case ELOOP:
	case ENOTDIR:
	case EINVAL:
	case ENAMETOOLONG: return WE_PATH;
	default: return WE_IO;
	}
}

/* Turns the errno in e (from safepath.h, fsutil.h, hash.h) into a wire
 * code. */
static int fail(struct err *e)
{
	if (e != NULL)
		e->code = wire_code(e->code);
	return -1;
}

/* err_sys() with a wire code. */
static int fail_sys(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_sys(struct err *e, const char *fmt, ...)
{
	int saved = errno;
	char what[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return err_set(e, wire_code(saved), "%s: %s", what, strerror(saved));
}

static int need(struct apply *a)
{
	a->st.needs++;
	return 1;
}

/* ------------------------------------------------------------- paths */

enum pkind { PK_FILE, PK_DIR, PK_ANY };

static bool comp_is(struct slice c, const char *s)
{
	return slice_eq_cstr(c, s);
}

/* Validates a peer's path and copies it NUL-terminated into out. */
static int check_path(struct apply *a, struct slice p, enum pkind kind, char out[SP_PATH_MAX + 1],
		      struct err *e)
{
	size_t start = 0, ndirs = 0, k = 0;
	struct md_class c;
	bool file_ok, dir_ok;

	if (sp_check(p, e) < 0) {
		e->code = WE_PATH;
		return -1;
	}
	for (size_t i = 0; i < p.len; i++)
		ndirs += p.p[i] == '/';
	/* The directories on the way (component k of ndirs): nothing
	 * excluded, nothing in tmp/, and cur/ new/ courierimapkeywords/ only
	 * as the last one. The last component is classified below. */
	for (size_t i = 0; i < p.len; i++) {
		struct slice comp;
		bool last_dir;

		if (p.p[i] != '/')
			continue;
		comp = (struct slice){p.p + start, i - start};
		start = i + 1;
		last_dir = ++k == ndirs;
		if (md_excluded(a->o.rules, comp) || comp_is(comp, APPLY_TMPDIR) ||
		    comp_is(comp, "tmp") ||
		    (!last_dir &&
		     (comp_is(comp, "cur") || comp_is(comp, "new") || comp_is(comp, COURIER_DIR))))
			return err_set(e, WE_PATH, "path '%.*s' refused: not a replicated location",
				       (int)p.len, p.p);
	}
	md_classify(a->o.rules, p, false, &c);
	file_ok = c.kind == MD_MESSAGE || c.kind == MD_META;
	md_classify(a->o.rules, p, true, &c);
	dir_ok = c.kind == MD_DIR || c.kind == MD_SUBDIR || c.kind == MD_META;
	if ((kind == PK_FILE && !file_ok) || (kind == PK_DIR && !dir_ok) ||
	    (kind == PK_ANY && !file_ok && !dir_ok))
		return err_set(e, WE_PATH, "path '%.*s' refused: not replicated (%s)", (int)p.len,
			       p.p, kind == PK_DIR ? "directory" : "file");
	memcpy(out, p.p, p.len);
	out[p.len] = '\0';
	return 0;
}

/* Opens the directory holding path. Returns its fd, -2 if it (or a
 * directory above it) does not exist, or -1 (WE_PATH for a symlink or a
 * file in the way). */
static int open_parent(struct apply *a, const char *path, const char **name_r, struct err *e)
{
	int fd = sp_open_parent(a->o.rootfd, path, name_r, e);

	if (fd >= 0)
		return fd;
	return errno == ENOENT ? -2 : fail(e);
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Records a directory (given by path, or as the parent of path) whose
 * entries changed. */
static void touch(struct apply *a, const char *path, bool parent, dev_t dev)
{
	const char *slash = parent ? strrchr(path, '/') : NULL;
	size_t len = parent ? (slash ? (size_t)(slash - path) : 0) : strlen(path);

	for (size_t i = a->ndirs; i-- > 0;) {
		if (strlen(a->dirs[i].path) == len && strncmp(a->dirs[i].path, path, len) == 0)
			return;
	}
	if (a->ndirs == a->dircap) {
		a->dircap = a->dircap ? a->dircap * 2 : 16;
		a->dirs = xreallocarray(a->dirs, a->dircap, sizeof(*a->dirs));
	}
	a->dirs[a->ndirs].path = xstrndup(path, len);
	a->dirs[a->ndirs++].dev = dev;
}

static dev_t dev_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_dev : 0;
}

/* --------------------------------------------------------- attributes */

static struct timespec ns_to_ts(int64_t ns)
{
	int64_t sec = ns / 1000000000, rem = ns % 1000000000;

	if (rem < 0) {
		sec--;
		rem += 1000000000;
	}
	return (struct timespec){(time_t)sec, (long)rem};
}

/* Applies owner, mode and mtime to an open file or directory. */
static int set_attrs(struct apply *a, int fd, const struct attrs *at, bool dir, const char *path,
		     struct err *e)
{
	/* No set-user-ID files from the network; set-group-ID only on
	 * directories, where it means group inheritance. */
	mode_t mode = at->mode & (dir ? 03777 : 01777);

	if (a->chown_ok && fchown(fd, at->uid, at->gid) < 0)
		return fail_sys(e, "cannot set the owner of '%s'", path);
	if (fchmod(fd, mode) < 0)
		return fail_sys(e, "cannot set the mode of '%s'", path);
	if (at->has_mtime) {
		struct timespec ts[2] = {ns_to_ts(at->mtime_ns), ns_to_ts(at->mtime_ns)};

		if (futimens(fd, ts) < 0)
			return fail_sys(e, "cannot set the mtime of '%s'", path);
	}
	return 0;
}

static int64_t st_mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* True if the file open at fd already carries these attributes. */
static bool attrs_match(struct apply *a, const struct stat *st, const struct attrs *at)
{
	return (st->st_mode & 07777) == (at->mode & 01777) &&
	       (!at->has_mtime || st_mtime_ns(st) == at->mtime_ns) &&
	       (!a->chown_ok || (st->st_uid == at->uid && st->st_gid == at->gid));
}

/* ---------------------------------------------------------- pending */

static void pend_close(struct pend *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	sha256_free(&p->h);
}

/* Removes the pending entry at index i, deleting its temporary file
 * unless it has been renamed into place. */
static void pend_remove(struct apply *a, size_t i, bool unlink_tmp)
{
	struct pend *p = a->v[i];

	pend_close(p);
	if (unlink_tmp && unlinkat(p->sdir, p->tmp, 0) < 0 && errno != ENOENT)
		log_warn("cannot remove temporary file: %m name=%s", p->tmp);
	if (p->own_sdir)
		close(p->sdir);
	if (p->open)
		a->nopen--;
	else
		a->ncomplete--;
	free(p->path);
	free(p);
	memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof(*a->v));
	a->n--;
}

static size_t pend_index(struct apply *a, const struct pend *p)
{
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i] == p)
			return i;
	}
	log_fatal("apply: pending entry not in its list");
}

/* The latest pending content for path: complete only, or also arriving. */
static struct pend *pend_find(struct apply *a, const char *path, bool complete_only)
{
	for (size_t i = a->n; i-- > 0;) {
		struct pend *p = a->v[i];

		if (!p->discard && (!p->open || !complete_only) && strcmp(p->path, path) == 0)
			return p;
	}
	return NULL;
}

static struct pend *xfer_find(struct apply *a, uint32_t id)
{
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i]->open && a->v[i]->xfer_id == id)
			return a->v[i];
	}
	return NULL;
}

/* Drops complete content pending for path, or anywhere beneath it when
 * tree is set (content still arriving there is discarded when done). */
static void pend_drop(struct apply *a, const char *path, bool tree, const struct pend *keep)
{
	for (size_t i = 0; i < a->n;) {
		struct pend *p = a->v[i];
		bool hit = tree ? under(p->path, path) : strcmp(p->path, path) == 0;

		if (hit && p != keep && !p->open) {
			pend_remove(a, i, true);
			continue;
		}
		if (hit && p != keep && tree)
			p->discard = true;
		i++;
	}
}

/* Picks where the temporary file for path goes: the staging directory,
 * or, when path's directory pfd is on another file system (or local is
 * set), its folder's tmp/ or that directory itself (under a dot name, which
 * Maildir readers and scan.c ignore). */
static int stage_dir(struct apply *a, struct pend *p, int pfd, bool local, struct err *e)
{
	dev_t pdev = dev_of(pfd);
	struct md_class c;
	struct buf tmp = BUF_INIT;
	int fd = -1;

	p->own_sdir = false;
	p->sdir = a->stagefd;
	p->dev = a->stagedev;
	if (pdev == a->stagedev && !local)
		return 0;
	md_classify(a->o.rules, slice_cstr(p->path), false, &c);
	if (c.folder.len > 0)
		buf_printf(&tmp, "%.*s/", (int)c.folder.len, c.folder.p);
	buf_puts(&tmp, "tmp");
	if (!local)
		fd = sp_open(a->o.rootfd, buf_cstr(&tmp), O_RDONLY | O_DIRECTORY, 0, NULL);
	buf_free(&tmp);
	if (fd >= 0 && dev_of(fd) != pdev) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail_sys(e, "cannot open a staging directory for '%s'", p->path);
	p->sdir = fd;
	p->own_sdir = true;
	p->dev = pdev;
	return 0;
}

/* Creates pending content for path (whose directory is pfd) with an empty
 * temporary file, open for writing in p->fd. */
static struct pend *pend_new(struct apply *a, const char *path, int pfd, const struct attrs *at,
			     bool local, struct err *e)
{
	struct pend *p = xcalloc(1, sizeof(*p));

	p->path = xstrdup(path);
	p->at = *at;
	p->fd = -1;
	if (stage_dir(a, p, pfd, local, e) < 0) {
		free(p->path);
		free(p);
		return NULL;
	}
	snprintf(p->tmp, sizeof(p->tmp), ".mdrepl-%ld-%llu", (long)getpid(),
		 (unsigned long long)++a->seq);
	p->fd = openat(p->sdir, p->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (p->fd < 0) {
		fail_sys(e, "cannot create a temporary file for '%s'", path);
		if (p->own_sdir)
			close(p->sdir);
		free(p->path);
		free(p);
		return NULL;
	}
	return p;
}

/* Appends p to the pending list (arrival order). */
static void pend_add(struct apply *a, struct pend *p)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 32;
		a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
	}
	a->v[a->n++] = p;
	if (p->open)
		a->nopen++;
	else
		a->ncomplete++;
}

/* Releases a pend that never joined the list. */
static void pend_discard_new(struct pend *p)
{
	pend_close(p);
	unlinkat(p->sdir, p->tmp, 0);
	if (p->own_sdir)
		close(p->sdir);
	free(p->path);
	free(p);
}

static int write_content(struct pend *p, struct slice data, struct err *e)
{
	if (fs_write_all(p->fd, data.p, data.len) < 0)
		return fail_sys(e, "cannot write '%s'", p->path);
	if (p->h != NULL)
		sha256_update(p->h, data.p, data.len);
	p->got += data.len;
	return 0;
}

/* Copies in (from offset 0) into p's temporary file, hashing it. */
static int copy_content(struct pend *p, int in, struct err *e)
{
	char *chunk = xmalloc(65536);
	off_t off = 0;
	ssize_t n;
	int r = 0;

	while ((n = pread(in, chunk, 65536, off)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = fail_sys(e, "cannot read the source of '%s'", p->path);
			break;
		}
		if ((r = write_content(p, (struct slice){chunk, (size_t)n}, e)) < 0)
			break;
		off += n;
	}
	free(chunk);
	return r;
}

/* Makes a copy of pending content p (or of the open file src, when p is
 * NULL) for path, whose directory is pfd, staged there when local. Checks
 * size and hash. Returns the new pend (not yet in the list), or NULL with
 * *r set: 1 NEED, -1. */
static struct pend *copy_of(struct apply *a, const struct pend *p, int src, const char *path,
			    int pfd, bool local, const struct w_link *m, int *r, struct err *e)
{
	struct attrs at = {m->mode, m->uid, m->gid, m->mtime_ns, true};
	uint8_t got[SHA256_LEN];
	struct pend *q;
	int fd = src;

	*r = -1;
	if (p != NULL) {
		fd = openat(p->sdir, p->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			fail_sys(e, "cannot open the pending content of '%s'", p->path);
			return NULL;
		}
	}
	q = pend_new(a, path, pfd, &at, local, e);
	if (q != NULL) {
		q->h = sha256_new();
		q->size = m->size;
		memcpy(q->sha256, m->sha256, SHA256_LEN);
		if (copy_content(q, fd, e) == 0) {
			sha256_final(q->h, got);
			sha256_free(&q->h);
			if (q->got != m->size || memcmp(got, m->sha256, SHA256_LEN) != 0)
				*r = 1;
			else if (set_attrs(a, q->fd, &q->at, false, path, e) == 0)
				*r = 0;
		}
		if (*r == 0 && close(q->fd) < 0)
			*r = fail_sys(e, "cannot write '%s'", path);
		if (*r == 0)
			q->fd = -1;
		if (*r != 0) {
			pend_discard_new(q);
			q = NULL;
		}
	}
	if (p != NULL)
		close(fd);
	return q;
}

/* Hard-links pending content p to a second temporary file for path. */
static struct pend *link_pending(struct apply *a, const struct pend *p, const char *path,
				 struct err *e)
{
	struct pend *q = xcalloc(1, sizeof(*q));

	q->path = xstrdup(path);
	q->fd = -1;
	q->at = p->at;
	q->size = p->size;
	memcpy(q->sha256, p->sha256, SHA256_LEN);
	q->sdir = p->sdir;
	q->dev = p->dev;
	if (p->own_sdir) {
		q->sdir = fcntl(p->sdir, F_DUPFD_CLOEXEC, 0);
		q->own_sdir = true;
	}
	snprintf(q->tmp, sizeof(q->tmp), ".mdrepl-%ld-%llu", (long)getpid(),
		 (unsigned long long)++a->seq);
	if (q->sdir < 0 || linkat(p->sdir, p->tmp, q->sdir, q->tmp, 0) < 0) {
		fail_sys(e, "cannot link the pending content of '%s'", p->path);
		if (q->own_sdir && q->sdir >= 0)
			close(q->sdir);
		free(q->path);
		free(q);
		return NULL;
	}
	return q;
}

/* Moves the temporary file of the complete pending entry at index i into
 * its target's directory pfd (its file system, its mount), keeping its
 * place in the order. */
static int restage(struct apply *a, size_t i, int pfd, struct err *e)
{
	struct pend *p = a->v[i], *q;
	struct w_link m = {.size = p->size,
			   .mtime_ns = p->at.mtime_ns,
			   .mode = p->at.mode,
			   .uid = p->at.uid,
			   .gid = p->at.gid};
	int r;

	memcpy(m.sha256, p->sha256, SHA256_LEN);
	q = copy_of(a, p, -1, p->path, pfd, true, &m, &r, e);
	if (q == NULL)
		return r < 0 ? -1 : err_set(e, WE_IO, "pending content of '%s' changed", p->path);
	q->at = p->at;
	unlinkat(p->sdir, p->tmp, 0);
	if (p->own_sdir)
		close(p->sdir);
	free(p->path);
	free(p);
	a->v[i] = q;
	return 0;
}

/* ---------------------------------------------------------- lifecycle */

struct apply *apply_new(const struct apply_opts *o, struct err *e)
{
	struct apply *a = xcalloc(1, sizeof(*a));

	a->o = *o;
	if (a->o.max_pending == 0)
		a->o.max_pending = DEFAULT_MAX_PENDING;
	a->stagefd = -1;
	a->chown_ok = o->preserve_owner && geteuid() == 0;
	buf_init(&a->body, WIRE_MAX_PAYLOAD + 1);
	a->rootrd = openat(o->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->rootrd < 0) {
		fail_sys(e, "cannot open the mail root");
		goto bad;
	}
	a->rootdev = dev_of(a->rootrd);
	/* Whatever an earlier run left staged was never acknowledged. */
	if (fs_rmtree_at(o->rootfd, APPLY_TMPDIR, e) < 0) {
		err_prefix(e, "cannot empty the staging directory " APPLY_TMPDIR);
		fail(e);
		goto bad;
	}
	if (mkdirat(o->rootfd, APPLY_TMPDIR, 0700) < 0) {
		fail_sys(e, "cannot create the staging directory " APPLY_TMPDIR);
		goto bad;
	}
	a->stagefd =
	    openat(o->rootfd, APPLY_TMPDIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (a->stagefd < 0) {
		fail_sys(e, "cannot open the staging directory " APPLY_TMPDIR);
		goto bad;
	}
	a->stagedev = dev_of(a->stagefd);
	return a;
bad:
	apply_free(&a);
	return NULL;
}

void apply_free(struct apply **ap)
{
	struct apply *a = *ap;

	if (a == NULL)
		return;
	apply_abort(a);
	free(a->v);
	free(a->dirs);
	if (a->stagefd >= 0)
		close(a->stagefd);
	if (a->rootrd >= 0)
		close(a->rootrd);
	buf_free(&a->body);
	free(a);
	*ap = NULL;
}

static void touched_clear(struct apply *a)
{
	for (size_t i = 0; i < a->ndirs; i++)
		free(a->dirs[i].path);
	a->ndirs = 0;
}

void apply_abort(struct apply *a)
{
	while (a->n > 0)
		pend_remove(a, a->n - 1, true);
	touched_clear(a);
}

const struct apply_stats *apply_get_stats(const struct apply *a)
{
	return &a->st;
}

/* ------------------------------------------------------------- commit */

/* syncfs() of the root's file system and of every other one in devs. */
static int sync_filesystems(struct apply *a, const char *what, struct err *e)
{
	dev_t done[16];
	size_t ndone = 0;

	if (syncfs(a->rootrd) < 0)
		return fail_sys(e, "syncfs of the mail root failed (%s)", what);
	done[ndone++] = a->rootdev;
	/* File systems mounted below the root: through a pending file's
	 * staging directory, or a touched directory. */
	for (size_t i = 0; i < a->n + a->ndirs; i++) {
		dev_t dev = i < a->n ? a->v[i]->dev : a->dirs[i - a->n].dev;
		bool seen = false;
		int fd;

		for (size_t j = 0; j < ndone; j++)
			seen = seen || done[j] == dev;
		if (seen || (i < a->n && a->v[i]->open))
			continue;
		fd = i < a->n ? fcntl(a->v[i]->sdir, F_DUPFD_CLOEXEC, 0)
			      : sp_open(a->o.rootfd, a->dirs[i - a->n].path, O_RDONLY | O_DIRECTORY,
					0, NULL);
		if (fd < 0)
			continue; /* a directory removed since: its parent is listed too */
		if (syncfs(fd) < 0) {
			close(fd);
			return fail_sys(e, "syncfs below the mail root failed (%s)", what);
		}
		close(fd);
		if (ndone < sizeof(done) / sizeof(done[0]))
			done[ndone++] = dev;
	}
	return 0;
}

static int fsync_pending(struct apply *a, struct err *e)
{
	for (size_t i = 0; i < a->n; i++) {
		struct pend *p = a->v[i];
		int fd;

		if (p->open)
			continue;
		fd = openat(p->sdir, p->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0) {
			fail_sys(e, "cannot fsync the content of '%s'", p->path);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

static int fsync_touched(struct apply *a, struct err *e)
{
	for (size_t i = 0; i < a->ndirs; i++) {
		const char *path = a->dirs[i].path;
		int fd = *path ? sp_open(a->o.rootfd, path, O_RDONLY | O_DIRECTORY, 0, NULL)
			       : fcntl(a->rootrd, F_DUPFD_CLOEXEC, 0);

		if (fd < 0)
			continue; /* removed since: its parent is listed too */
		if (fsync(fd) < 0) {
			fail_sys(e, "cannot fsync directory '%s'", path);
			close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* Renames every complete pending file into place, in arrival order. */
static int rename_pending(struct apply *a, struct err *e)
{
	for (size_t i = 0; i < a->n;) {
		struct pend *p = a->v[i];
		const char *name;
		int pfd, r;

		if (p->open) {
			i++;
			continue;
		}
		pfd = open_parent(a, p->path, &name, e);
		if (pfd == -2)
			return err_set(e, WE_IO, "directory of '%s' vanished before commit",
				       p->path);
		if (pfd < 0)
			return -1;
		r = renameat(p->sdir, p->tmp, pfd, name);
		if (r < 0 && errno == EXDEV) {
			/* A mount point (a bind mount, even) between the
			 * staging directory and the target: restage next to it. */
			r = restage(a, i, pfd, e);
			p = a->v[i];
			if (r == 0 && (r = renameat(p->sdir, p->tmp, pfd, name)) < 0)
				fail_sys(e, "rename into '%s' failed", p->path);
		} else if (r < 0) {
			fail_sys(e, "rename into '%s' failed", p->path);
		}
		if (r < 0) {
			close(pfd);
			return -1;
		}
		touch(a, p->path, true, p->dev);
		close(pfd);
		pend_remove(a, i, false);
	}
	return 0;
}

int apply_commit(struct apply *a, struct err *e)
{
	int r;

	if (a->ncomplete == 0 && a->ndirs == 0) {
		a->st.commits++;
		return 0;
	}
	r = a->o.use_syncfs ? sync_filesystems(a, "content", e) : fsync_pending(a, e);
	if (r == 0)
		r = rename_pending(a, e);
	if (r == 0)
		r = a->o.use_syncfs ? sync_filesystems(a, "names", e) : fsync_touched(a, e);
	if (r < 0)
		return err_prefix(e, "commit failed");
	touched_clear(a);
	a->st.commits++;
	return 0;
}

/* Commits early when too much content is pending. */
static int maybe_flush(struct apply *a, struct err *e)
{
	return a->ncomplete >= a->o.max_pending ? apply_commit(a, e) : 0;
}

/* ---------------------------------------------------------- content */

/* The raw bytes of a body: inflated into a->body when deflated. For a raw
 * body, raw_len is not needed and not checked. */
static int body_bytes(struct apply *a, struct slice body, uint32_t flags, uint32_t raw_len,
		      struct slice *out, struct err *e)
{
	if (!(flags & WF_DEFLATE)) {
		*out = body;
		return 0;
	}
	if (wire_inflate(body, raw_len, &a->body, e) < 0)
		return -1;
	*out = buf_slice(&a->body);
	return 0;
}

/* Does the file at path already hold exactly this content and mtime?
 * If so, also brings its mode and owner in line. */
static bool already_there(struct apply *a, const struct pend *p)
{
	uint8_t have[SHA256_LEN];
	const char *name;
	struct stat st;
	bool same = false;
	int pfd = open_parent(a, p->path, &name, NULL), fd;

	if (pfd < 0)
		return false;
	fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	close(pfd);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == p->size &&
	    st_mtime_ns(&st) == p->at.mtime_ns && sha256_fd(fd, have, NULL, NULL) == 0 &&
	    memcmp(have, p->sha256, SHA256_LEN) == 0)
		same = attrs_match(a, &st, &p->at) ||
		       set_attrs(a, fd, &p->at, false, p->path, NULL) == 0;
	close(fd);
	return same;
}

/* p's content is all written and verified: set its attributes and make it
 * pending (or drop it when it changes nothing). */
static int finish(struct apply *a, struct pend *p, struct err *e)
{
	if (set_attrs(a, p->fd, &p->at, false, p->path, e) < 0)
		return -1;
	if (close(p->fd) < 0) {
		p->fd = -1;
		return fail_sys(e, "cannot write '%s'", p->path);
	}
	p->fd = -1;
	if (p->open) {
		p->open = false;
		a->nopen--;
		a->ncomplete++;
	}
	if (p->discard) {
		a->st.noops++;
		pend_remove(a, pend_index(a, p), true);
		return 0;
	}
	pend_drop(a, p->path, false, p); /* superseded */
	if (already_there(a, p)) {
		a->st.noops++;
		pend_remove(a, pend_index(a, p), true);
		return 0;
	}
	a->st.files_written++;
	a->st.bytes_written += p->size;
	return maybe_flush(a, e);
}

/* A transfer that failed its checks is dropped: the batch is refused, and
 * a later DATA for it is a protocol error. */
static int transfer_failed(struct apply *a, struct pend *p)
{
	pend_remove(a, pend_index(a, p), true);
	return -1;
}

/* A transfer's last byte is in: check size and hash, then finish. */
static int complete(struct apply *a, struct pend *p, struct err *e)
{
	uint8_t got[SHA256_LEN];

	if (p->got != p->size) {
		err_set(e, WE_INTEGRITY, "'%s' ended after %llu of %llu bytes", p->path,
			(unsigned long long)p->got, (unsigned long long)p->size);
		return transfer_failed(a, p);
	}
	sha256_final(p->h, got);
	sha256_free(&p->h);
	if (memcmp(got, p->sha256, SHA256_LEN) != 0) {
		err_set(e, WE_INTEGRITY, "content of '%s' does not match its SHA-256", p->path);
		return transfer_failed(a, p);
	}
	return finish(a, p, e);
}

int apply_put(struct apply *a, const struct w_put *m, struct err *e)
{
	char path[SP_PATH_MAX + 1];
	struct attrs at = {m->mode, m->uid, m->gid, m->mtime_ns, true};
	bool chunked = m->flags & WF_CHUNKED;
	const char *name;
	struct slice body;
	struct pend *p;
	int pfd;

	if (check_path(a, m->path, PK_FILE, path, e) < 0)
		return -1;
	if (m->size > WIRE_MAX_FILE)
		return err_set(e, WE_LIMIT, "'%s': %llu bytes is over the limit", path,
			       (unsigned long long)m->size);
	if (chunked && xfer_find(a, m->xfer_id) != NULL)
		return err_set(e, WE_PROTOCOL, "transfer %u is already open", m->xfer_id);
	if (chunked && a->nopen >= MAX_XFERS)
		return err_set(e, WE_LIMIT, "more than %d transfers open", MAX_XFERS);
	if (body_bytes(a, m->body, m->flags, m->raw_len, &body, e) < 0)
		return err_prefix(e, "'%s'", path);
	if (body.len > m->size || (!chunked && body.len != m->size))
		return err_set(e, WE_INTEGRITY, "'%s': body of %zu bytes for a size of %llu", path,
			       body.len, (unsigned long long)m->size);
	pfd = open_parent(a, path, &name, e);
	if (pfd == -2)
		return need(a); /* the sender creates directories with MKDIR first */
	if (pfd < 0)
		return -1;
	p = pend_new(a, path, pfd, &at, false, e);
	close(pfd);
	if (p == NULL)
		return -1;
	p->size = m->size;
	memcpy(p->sha256, m->sha256, SHA256_LEN);
	p->h = sha256_new();
	p->open = chunked;
	p->xfer_id = m->xfer_id;
	if (write_content(p, body, e) < 0) {
		pend_discard_new(p);
		return -1;
	}
	pend_add(a, p);
	return chunked ? 0 : complete(a, p, e);
}

int apply_data(struct apply *a, const struct w_data *m, struct err *e)
{
	struct pend *p = xfer_find(a, m->xfer_id);
	struct slice body;

	if (p == NULL)
		return err_set(e, WE_PROTOCOL, "DATA for transfer %u, which is not open",
			       m->xfer_id);
	if (body_bytes(a, m->body, m->flags, m->raw_len, &body, e) < 0)
		return err_prefix(e, "'%s'", p->path);
	if (body.len > p->size - p->got) {
		err_set(e, WE_INTEGRITY, "'%s': more bytes than its size of %llu", p->path,
			(unsigned long long)p->size);
		return transfer_failed(a, p);
	}
	if (write_content(p, body, e) < 0)
		return -1;
	return m->flags & WF_LAST ? complete(a, p, e) : 0;
}

/* ------------------------------------------------------------- names */

/* A pending file moves to another name: retarget it, and remove what the
 * old name held on disk. */
static int retarget(struct apply *a, struct pend *p, const char *from, const char *to,
		    struct err *e)
{
	const char *fname, *tname;
	int fpfd, tpfd = open_parent(a, to, &tname, e);

	if (tpfd == -2)
		return need(a);
	if (tpfd < 0)
		return -1;
	free(p->path);
	p->path = xstrdup(to);
	if (dev_of(tpfd) != p->dev && !p->open) {
		/* The new name is on another file system: restage there. */
		size_t i = pend_index(a, p);

		if (restage(a, i, tpfd, e) < 0) {
			close(tpfd);
			return -1;
		}
		p = a->v[i];
	}
	close(tpfd);
	fpfd = open_parent(a, from, &fname, e);
	if (fpfd >= 0) {
		if (unlinkat(fpfd, fname, 0) == 0)
			touch(a, from, true, dev_of(fpfd));
		close(fpfd);
	}
	pend_drop(a, to, false, p);
	a->st.renames++;
	if (!p->open && already_there(a, p)) /* a replay: the target is this already */
		pend_remove(a, pend_index(a, p), true);
	return 0;
}

/* True if path exists on disk or as complete pending content. */
static bool exists(struct apply *a, const char *path)
{
	const char *name;
	struct stat st;
	int pfd;
	bool r;

	if (pend_find(a, path, true) != NULL)
		return true;
	pfd = open_parent(a, path, &name, NULL);
	if (pfd < 0)
		return false;
	r = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(pfd);
	return r;
}

/* Commits before a directory above pending content moves. */
static int flush_under(struct apply *a, const char *dir, struct err *e)
{
	for (size_t i = 0; i < a->n; i++) {
		if (!a->v[i]->open && under(a->v[i]->path, dir))
			return apply_commit(a, e);
	}
	return 0;
}

/* After a directory rename, transfers still arriving follow it. */
static void retarget_open(struct apply *a, const char *from, const char *to)
{
	size_t n = strlen(from);

	for (size_t i = 0; i < a->n; i++) {
		struct pend *p = a->v[i];

		if (p->open && under(p->path, from)) {
			char *np = xasprintf("%s%s", to, p->path + n);

			free(p->path);
			p->path = np;
		}
	}
}

static int rename_on_disk(struct apply *a, const char *from, const char *to, struct err *e)
{
	char scratch[SP_PATH_MAX + 1];
	const char *fname, *tname;
	struct stat st;
	int fpfd, tpfd, r;
	bool dir;

	fpfd = open_parent(a, from, &fname, e);
	if (fpfd == -1)
		return -1;
	if (fpfd == -2 || fstatat(fpfd, fname, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (fpfd >= 0)
			close(fpfd);
		return exists(a, to) ? 0 : need(a); /* done before, or the content is gone */
	}
	dir = S_ISDIR(st.st_mode);
	if ((!dir && !S_ISREG(st.st_mode)) ||
	    check_path(a, slice_cstr(from), dir ? PK_DIR : PK_FILE, scratch, e) < 0 ||
	    check_path(a, slice_cstr(to), dir ? PK_DIR : PK_FILE, scratch, e) < 0) {
		close(fpfd);
		return err_set(e, WE_PATH, "rename '%s' -> '%s' refused: not a replicated %s", from,
			       to, dir ? "directory" : "file");
	}
	if (dir && flush_under(a, from, e) < 0) {
		close(fpfd);
		return -1;
	}
	tpfd = open_parent(a, to, &tname, e);
	if (tpfd < 0) {
		close(fpfd);
		return tpfd == -2 ? need(a) : -1;
	}
	pend_drop(a, to, false, NULL); /* the rename replaces it */
	r = renameat(fpfd, fname, tpfd, tname);
	if (r < 0)
		fail_sys(e, "rename '%s' -> '%s' failed", from, to);
	else {
		touch(a, from, true, dev_of(fpfd));
		touch(a, to, true, dev_of(tpfd));
		if (dir)
			retarget_open(a, from, to);
		a->st.renames++;
	}
	close(fpfd);
	close(tpfd);
	return r;
}

int apply_rename(struct apply *a, const struct w_rename *m, struct err *e)
{
	char from[SP_PATH_MAX + 1], to[SP_PATH_MAX + 1];
	struct pend *p;

	if (check_path(a, m->from, PK_ANY, from, e) < 0 || check_path(a, m->to, PK_ANY, to, e) < 0)
		return -1;
	if (strcmp(from, to) == 0)
		return exists(a, to) ? 0 : need(a);
	p = pend_find(a, from, false);
	if (p != NULL) {
		if (check_path(a, m->to, PK_FILE, to, e) < 0)
			return -1;
		return retarget(a, p, from, to, e);
	}
	return rename_on_disk(a, from, to, e);
}

int apply_link(struct apply *a, const struct w_link *m, struct err *e)
{
	char from[SP_PATH_MAX + 1], to[SP_PATH_MAX + 1];
	const char *fname, *tname;
	struct pend *p, *q = NULL;
	bool copy = m->flags & WF_COPY;
	struct stat st;
	int fpfd, tpfd, src, r;

	if (check_path(a, m->from, PK_FILE, from, e) < 0 ||
	    check_path(a, m->to, PK_FILE, to, e) < 0)
		return -1;
	if (exists(a, to))
		return 0;
	tpfd = open_parent(a, to, &tname, e);
	if (tpfd < 0)
		return tpfd == -2 ? need(a) : -1;
	p = pend_find(a, from, false);
	if (p != NULL) {
		if (p->open || p->size != m->size ||
		    (copy && memcmp(p->sha256, m->sha256, SHA256_LEN) != 0)) {
			close(tpfd);
			return need(a);
		}
		r = 0;
		if (!copy && p->dev == dev_of(tpfd))
			q = link_pending(a, p, to, e);
		else
			q = copy_of(a, p, -1, to, tpfd, false, m, &r, e);
		close(tpfd);
		if (q == NULL)
			return r > 0 ? need(a) : -1;
		pend_add(a, q);
		if (copy)
			a->st.copies++;
		else
			a->st.links++;
		return maybe_flush(a, e);
	}
	fpfd = open_parent(a, from, &fname, e);
	if (fpfd < 0) {
		close(tpfd);
		return fpfd == -2 ? need(a) : -1;
	}
	if (fstatat(fpfd, fname, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != m->size) {
		r = need(a);
	} else if (!copy && linkat(fpfd, fname, tpfd, tname, 0) == 0) {
		touch(a, to, true, dev_of(tpfd));
		a->st.links++;
		r = 0;
	} else if (!copy && errno == EEXIST) {
		r = 0;
	} else if (!copy && errno != EXDEV && errno != EMLINK) {
		r = fail_sys(e, "link '%s' -> '%s' failed", from, to);
	} else {
		/* Asked to copy, or a hard link is impossible here. */
		src = openat(fpfd, fname, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (src < 0) {
			r = errno == ENOENT ? need(a) : fail_sys(e, "cannot open '%s'", from);
		} else {
			q = copy_of(a, NULL, src, to, tpfd, false, m, &r, e);
			close(src);
			if (r > 0)
				need(a);
		}
		if (q != NULL) {
			pend_add(a, q);
			a->st.copies++;
			r = maybe_flush(a, e);
		}
	}
	close(fpfd);
	close(tpfd);
	return r;
}

int apply_unlink(struct apply *a, const struct w_unlink *m, struct err *e)
{
	char path[SP_PATH_MAX + 1];
	const char *name;
	int pfd, r = 0;

	if (check_path(a, m->path, PK_FILE, path, e) < 0)
		return -1;
	pend_drop(a, path, false, NULL);
	pfd = open_parent(a, path, &name, e);
	if (pfd == -2)
		return 0; /* gone with its directory */
	if (pfd < 0)
		return -1;
	if (unlinkat(pfd, name, 0) == 0) {
		touch(a, path, true, dev_of(pfd));
		a->st.unlinks++;
	} else if (errno == EISDIR) {
		r = err_set(e, WE_PATH, "'%s' is a directory: RMTREE removes directories", path);
	} else if (errno != ENOENT) {
		r = fail_sys(e, "unlink '%s' failed", path);
	}
	close(pfd);
	return r;
}

int apply_mkdir(struct apply *a, const struct w_mkdir *m, struct err *e)
{
	char path[SP_PATH_MAX + 1];
	struct attrs at = {m->mode, m->uid, m->gid, 0, false};
	const char *name;
	bool created;
	int pfd, fd, r;

	if (check_path(a, m->path, PK_DIR, path, e) < 0)
		return -1;
	pfd = open_parent(a, path, &name, e);
	if (pfd < 0)
		return pfd == -2 ? need(a) : -1;
	created = mkdirat(pfd, name, 0700) == 0;
	if (!created && errno != EEXIST) {
		r = fail_sys(e, "mkdir '%s' failed", path);
		close(pfd);
		return r;
	}
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = errno == ENOTDIR || errno == ELOOP
			? err_set(e, WE_PATH, "'%s' exists and is not a directory", path)
			: fail_sys(e, "cannot open directory '%s'", path);
		close(pfd);
		return r;
	}
	r = set_attrs(a, fd, &at, true, path, e);
	if (r == 0) {
		touch(a, path, true, dev_of(pfd));
		touch(a, path, false, dev_of(fd));
		if (created)
			a->st.mkdirs++;
		else
			a->st.noops++;
	}
	close(fd);
	close(pfd);
	return r;
}

int apply_rmtree(struct apply *a, const struct w_rmtree *m, struct err *e)
{
	char path[SP_PATH_MAX + 1];
	const char *name;
	int pfd, r;

	if (m->path.len == 0)
		return err_set(e, WE_PATH, "refusing to remove the mail root");
	if (check_path(a, m->path, PK_DIR, path, e) < 0)
		return -1;
	pend_drop(a, path, true, NULL);
	pfd = open_parent(a, path, &name, e);
	if (pfd == -2)
		return 0;
	if (pfd < 0)
		return -1;
	r = fs_rmtree_at(pfd, name, e);
	if (r < 0) {
		err_prefix(e, "cannot remove '%s'", path);
		fail(e);
	} else {
		touch(a, path, true, dev_of(pfd));
		a->st.rmtrees++;
	}
	close(pfd);
	return r;
}

/* ----------------------------------------------------- delta, setattr */

/* Opens what a DELTA or SETATTR applies to: pending content, else the
 * file on disk. Returns the fd, -2 if absent, -1. */
static int open_current(struct apply *a, const char *path, struct pend **pp, struct err *e)
{
	const char *name;
	int pfd, fd;

	*pp = pend_find(a, path, true);
	if (*pp != NULL) {
		fd = openat((*pp)->sdir, (*pp)->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		return fd >= 0 ? fd : fail_sys(e, "cannot open pending '%s'", path);
	}
	pfd = open_parent(a, path, &name, e);
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = -2;
	else if (fd < 0)
		fd = errno == ELOOP ? err_set(e, WE_PATH, "'%s' is a symlink", path)
				    : fail_sys(e, "cannot open '%s'", path);
	close(pfd);
	return fd;
}

/* Patches base into a new pending file for path. Returns 0, 1 (NEED), -1. */
static int patch(struct apply *a, const struct w_delta *m, const char *path, int base,
		 struct pend **q_r, struct err *e)
{
	struct attrs at = {m->mode, m->uid, m->gid, m->mtime_ns, true};
	uint8_t got[SHA256_LEN];
	struct slice delta;
	const char *name;
	struct err de;
	uint64_t size;
	struct pend *q;
	int pfd, r;

	if (body_bytes(a, m->delta, m->flags, m->raw_len, &delta, e) < 0)
		return err_prefix(e, "delta for '%s'", path);
	pfd = open_parent(a, path, &name, e);
	if (pfd < 0)
		return pfd == -2 ? need(a) : -1;
	q = pend_new(a, path, pfd, &at, false, e);
	close(pfd);
	if (q == NULL)
		return -1;
	r = delta_patch(base, delta, q->fd, m->result_size, &size, &de);
	if (r < 0 && de.code != ERR_CORRUPT && de.code != EFBIG) {
		err_set(e, wire_code(de.code), "delta for '%s': %s", path, de.msg);
	} else if (r == 0 && sha256_fd(q->fd, got, NULL, e) < 0) {
		r = fail(e);
	} else if (r < 0 || size != m->result_size ||
		   memcmp(got, m->result_sha256, SHA256_LEN) != 0) {
		/* A delta that does not produce the promised file: the
		 * sender falls back to sending it whole. */
		log_debug("delta does not produce the expected file, asking for it whole: %s "
			  "path=%s",
			  r < 0 ? de.msg : "size or hash differs", path);
		r = 1;
	} else {
		q->size = size;
		memcpy(q->sha256, got, SHA256_LEN);
		r = set_attrs(a, q->fd, &q->at, false, path, e);
		if (r == 0 && close(q->fd) < 0)
			r = fail_sys(e, "cannot write '%s'", path);
		if (r == 0)
			q->fd = -1;
	}
	if (r != 0) {
		pend_discard_new(q);
		return r > 0 ? need(a) : -1;
	}
	*q_r = q;
	return 0;
}

int apply_delta(struct apply *a, const struct w_delta *m, struct err *e)
{
	char path[SP_PATH_MAX + 1];
	uint8_t have[SHA256_LEN];
	struct pend *p, *q = NULL;
	struct stat st;
	uint64_t size;
	int base, r;

	if (check_path(a, m->path, PK_FILE, path, e) < 0)
		return -1;
	if (m->result_size > WIRE_MAX_FILE)
		return err_set(e, WE_LIMIT, "'%s': %llu bytes is over the limit", path,
			       (unsigned long long)m->result_size);
	base = open_current(a, path, &p, e);
	if (base == -2)
		return need(a);
	if (base < 0)
		return -1;
	if (fstat(base, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(base);
		return need(a);
	}
	if (sha256_fd(base, have, &size, e) < 0) {
		close(base);
		return fail(e);
	}
	if (size == m->result_size && memcmp(have, m->result_sha256, SHA256_LEN) == 0) {
		/* Applied before: just the attributes. */
		struct attrs at = {m->mode, m->uid, m->gid, m->mtime_ns, true};

		r = attrs_match(a, &st, &at) ? 0 : set_attrs(a, base, &at, false, path, e);
		if (p != NULL)
			p->at = at;
		close(base);
		a->st.noops++;
		return r;
	}
	if (memcmp(have, m->base_sha256, SHA256_LEN) != 0) {
		close(base);
		return need(a);
	}
	r = patch(a, m, path, base, &q, e);
	close(base);
	if (r != 0)
		return r;
	pend_drop(a, path, false, NULL); /* the old pending content was the base */
	if (already_there(a, q)) {	 /* a replay over a replayed base */
		pend_discard_new(q);
		a->st.noops++;
		return 0;
	}
	pend_add(a, q);
	a->st.deltas++;
	a->st.bytes_written += q->size;
	return maybe_flush(a, e);
}

int apply_setattr(struct apply *a, const struct w_setattr *m, struct err *e)
{
	char path[SP_PATH_MAX + 1];
	struct attrs at = {m->mode, m->uid, m->gid, m->mtime_ns, true};
	struct pend *p;
	struct stat st;
	int fd, r;

	if (check_path(a, m->path, PK_ANY, path, e) < 0)
		return -1;
	fd = open_current(a, path, &p, e);
	if (fd == -2)
		return need(a);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))) {
		close(fd);
		return err_set(e, WE_PATH, "'%s' is not a file or directory", path);
	}
	r = check_path(a, m->path, S_ISDIR(st.st_mode) ? PK_DIR : PK_FILE, path, e);
	if (r == 0)
		r = set_attrs(a, fd, &at, S_ISDIR(st.st_mode), path, e);
	/* Without syncfs, only an fsync makes an inode change durable. */
	if (r == 0 && p == NULL && !a->o.use_syncfs && fsync(fd) < 0)
		r = fail_sys(e, "cannot fsync '%s'", path);
	if (r == 0 && p != NULL)
		p->at = at;
	if (r == 0) {
		touch(a, path, true, p != NULL ? p->dev : dev_of(fd)); /* its file system syncs */
		a->st.setattrs++;
	}
	close(fd);
	return r;
}
