/*
 * pending.c — the apply engine's staging and group commit (see apply.h).
 *
 * Content (PUT, DELTA, LINK with a copy) goes to a temporary file in
 * MAIL_ROOT/.mdrepl-tmp/ and joins the pending list, in arrival order;
 * apply_commit() makes the data durable, renames the files into place in
 * that order and makes the names durable, with the directories that
 * operations on names (apply.c) touched meanwhile.
 *
 * A target on another file system than the staging directory (a mount
 * point below the root) is staged in its folder's tmp/ (or, failing that,
 * next to it under a dot name), so the final rename never crosses file
 * systems; its file system gets its own syncfs(). A rename that fails
 * with EXDEV all the same (a bind mount) is restaged next to its target.
 *
 * SECURITY: targets reach here validated by apply.c; every access goes
 * through directories opened by safepath.h beneath the root, and temporary
 * files are created with O_EXCL | O_NOFOLLOW, mode 0600 until complete.
 * File modes lose set-user-ID and set-group-ID bits (a directory may keep
 * set-group-ID); owners are applied only with preserve_owner, as root.
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

#include "apply_int.h"
#include "fsutil.h"
#include "log.h"
#include "safepath.h"
#include "xalloc.h"

/* ------------------------------------------------------------- errors */

int ap_wire_code(int err)
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
int ap_fail(struct err *e)
{
	if (e != NULL)
		e->code = ap_wire_code(e->code);
	return -1;
}

/* err_sys() with a wire code. */
int ap_fail_sys(struct err *e, const char *fmt, ...)
{
	int saved = errno;
	char what[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return err_set(e, ap_wire_code(saved), "%s: %s", what, strerror(saved));
}

/* Opens the directory holding path. Returns its fd, -2 if it (or a
 * directory above it) does not exist, or -1 (WE_PATH for a symlink or a
 * file in the way). */
int ap_open_parent(struct apply *a, const char *path, const char **name_r, struct err *e)
{
	int fd = sp_open_parent(a->o.rootfd, path, name_r, e);

	if (fd >= 0)
		return fd;
	return errno == ENOENT ? -2 : ap_fail(e);
}

bool ap_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Records a directory (given by path, or as the parent of path) whose
 * entries changed. */
void ap_touch(struct apply *a, const char *path, bool parent, dev_t dev)
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

dev_t ap_dev_of(int fd)
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

/* Owner, mode (unless it is known to be `have` already) and mtime. */
static int set_attrs(struct apply *a, int fd, const struct attrs *at, bool dir, mode_t have,
		     const char *path, struct err *e)
{
	/* No set-user-ID files from the network; set-group-ID only on
	 * directories, where it means group inheritance. */
	mode_t mode = at->mode & (dir ? 03777 : 01777);

	if (a->chown_ok && fchown(fd, at->uid, at->gid) < 0)
		return ap_fail_sys(e, "cannot set the owner of '%s'", path);
	if (mode != have && fchmod(fd, mode) < 0)
		return ap_fail_sys(e, "cannot set the mode of '%s'", path);
	if (at->has_mtime) {
		struct timespec ts[2] = {ns_to_ts(at->mtime_ns), ns_to_ts(at->mtime_ns)};

		if (futimens(fd, ts) < 0)
			return ap_fail_sys(e, "cannot set the mtime of '%s'", path);
	}
	return 0;
}

int ap_set_attrs(struct apply *a, int fd, const struct attrs *at, bool dir, const char *path,
		 struct err *e)
{
	return set_attrs(a, fd, at, dir, (mode_t)-1, path, e);
}

int ap_set_temp_attrs(struct apply *a, struct pend *p, struct err *e)
{
	return set_attrs(a, p->fd, &p->at, false, a->temp_mode, p->path, e);
}

/* True if the file open at fd already carries these attributes. */
bool ap_attrs_match(struct apply *a, const struct stat *st, const struct attrs *at)
{
	return (st->st_mode & 07777) == (at->mode & 01777) &&
	       (!at->has_mtime || ts_ns(st->st_mtim) == at->mtime_ns) &&
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
void ap_pend_remove(struct apply *a, size_t i, bool unlink_tmp)
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
	a->names[p->slot]--;
	free(p->path);
	free(p);
	memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof(*a->v));
	a->n--;
}

size_t ap_pend_index(struct apply *a, const struct pend *p)
{
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i] == p)
			return i;
	}
	log_fatal("apply: pending entry not in its list");
}

static uint32_t name_slot(const char *path)
{
	return (uint32_t)fnv1a(FNV1A_INIT, path, strlen(path)) & (PEND_SLOTS - 1);
}

/* Might an entry other than other (listed, or NULL) be pending for
 * exactly this path? */
static bool maybe_pending(const struct apply *a, const char *path, const struct pend *other)
{
	uint32_t slot = name_slot(path);

	return a->names[slot] > (other != NULL && other->slot == slot ? 1u : 0u);
}

/* The latest pending content for path: complete only, or also arriving. */
struct pend *ap_pend_find(struct apply *a, const char *path, bool complete_only)
{
	if (!maybe_pending(a, path, NULL))
		return NULL;
	for (size_t i = a->n; i-- > 0;) {
		struct pend *p = a->v[i];

		if (!p->discard && (!p->open || !complete_only) && strcmp(p->path, path) == 0)
			return p;
	}
	return NULL;
}

struct pend *ap_xfer_find(struct apply *a, uint32_t id)
{
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i]->open && a->v[i]->xfer_id == id)
			return a->v[i];
	}
	return NULL;
}

/* Drops complete content pending for path, or anywhere beneath it when
 * tree is set (content still arriving there is discarded when done). */
void ap_pend_drop(struct apply *a, const char *path, bool tree, const struct pend *keep)
{
	if (!tree && !maybe_pending(a, path, keep))
		return;
	for (size_t i = 0; i < a->n;) {
		struct pend *p = a->v[i];
		bool hit = tree ? ap_under(p->path, path) : strcmp(p->path, path) == 0;

		if (hit && p != keep && !p->open) {
			ap_pend_remove(a, i, true);
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
	dev_t pdev = ap_dev_of(pfd);
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
	if (fd >= 0 && ap_dev_of(fd) != pdev) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ap_fail_sys(e, "cannot open a staging directory for '%s'", p->path);
	p->sdir = fd;
	p->own_sdir = true;
	p->dev = pdev;
	return 0;
}

/* Creates pending content for path (whose directory is pfd) with an empty
 * temporary file, open for writing in p->fd. */
struct pend *ap_pend_new(struct apply *a, const char *path, int pfd, const struct attrs *at,
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
	snprintf(p->tmp, sizeof(p->tmp), ".mdrepl-%ld-%llu", (long)a->pid,
		 (unsigned long long)++a->seq);
	p->fd = openat(p->sdir, p->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (p->fd < 0) {
		ap_fail_sys(e, "cannot create a temporary file for '%s'", path);
		if (p->own_sdir)
			close(p->sdir);
		free(p->path);
		free(p);
		return NULL;
	}
	return p;
}

/* Appends p to the pending list (arrival order). */
void ap_pend_add(struct apply *a, struct pend *p)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 32;
		a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
	}
	a->v[a->n++] = p;
	p->slot = name_slot(p->path);
	a->names[p->slot]++;
	if (p->open)
		a->nopen++;
	else
		a->ncomplete++;
}

void ap_pend_rename(struct apply *a, struct pend *p, char *path)
{
	a->names[p->slot]--;
	free(p->path);
	p->path = path;
	p->slot = name_slot(path);
	a->names[p->slot]++;
}

/* Releases a pend that never joined the list. */
void ap_pend_discard_new(struct pend *p)
{
	pend_close(p);
	unlinkat(p->sdir, p->tmp, 0);
	if (p->own_sdir)
		close(p->sdir);
	free(p->path);
	free(p);
}

int ap_write_content(struct pend *p, struct slice data, struct err *e)
{
	if (fs_write_all(p->fd, data.p, data.len) < 0)
		return ap_fail_sys(e, "cannot write '%s'", p->path);
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
			r = ap_fail_sys(e, "cannot read the source of '%s'", p->path);
			break;
		}
		if ((r = ap_write_content(p, (struct slice){chunk, (size_t)n}, e)) < 0)
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
struct pend *ap_copy_of(struct apply *a, const struct pend *p, int src, const char *path, int pfd,
			bool local, const struct w_link *m, int *r, struct err *e)
{
	struct attrs at = {m->mode, m->uid, m->gid, m->mtime_ns, true};
	uint8_t got[SHA256_LEN];
	struct pend *q;
	int fd = src;

	*r = -1;
	if (p != NULL) {
		fd = openat(p->sdir, p->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			ap_fail_sys(e, "cannot open the pending content of '%s'", p->path);
			return NULL;
		}
	}
	q = ap_pend_new(a, path, pfd, &at, local, e);
	if (q != NULL) {
		q->h = sha256_new();
		q->size = m->size;
		memcpy(q->sha256, m->sha256, SHA256_LEN);
		if (copy_content(q, fd, e) == 0) {
			sha256_final(q->h, got);
			sha256_free(&q->h);
			if (q->got != m->size || memcmp(got, m->sha256, SHA256_LEN) != 0)
				*r = 1;
			else if (ap_set_temp_attrs(a, q, e) == 0)
				*r = 0;
		}
		if (*r == 0 && close(q->fd) < 0)
			*r = ap_fail_sys(e, "cannot write '%s'", path);
		if (*r == 0)
			q->fd = -1;
		if (*r != 0) {
			ap_pend_discard_new(q);
			q = NULL;
		}
	}
	if (p != NULL)
		close(fd);
	return q;
}

/* Hard-links pending content p to a second temporary file for path. */
struct pend *ap_link_pending(struct apply *a, const struct pend *p, const char *path, struct err *e)
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
		ap_fail_sys(e, "cannot link the pending content of '%s'", p->path);
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
int ap_restage(struct apply *a, size_t i, int pfd, struct err *e)
{
	struct pend *p = a->v[i], *q;
	struct w_link m = {.size = p->size,
			   .mtime_ns = p->at.mtime_ns,
			   .mode = p->at.mode,
			   .uid = p->at.uid,
			   .gid = p->at.gid};
	int r;

	memcpy(m.sha256, p->sha256, SHA256_LEN);
	q = ap_copy_of(a, p, -1, p->path, pfd, true, &m, &r, e);
	if (q == NULL)
		return r < 0 ? -1 : err_set(e, WE_IO, "pending content of '%s' changed", p->path);
	q->at = p->at;
	q->slot = p->slot; /* q takes p's place in the list, and in names */
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
	mode_t mask;

	a->o = *o;
	if (a->o.max_pending == 0)
		a->o.max_pending = DEFAULT_MAX_PENDING;
	a->stagefd = -1;
	a->chown_ok = o->preserve_owner && geteuid() == 0;
	a->pid = getpid();
	mask = umask(0); /* read by setting it: put back at once */
	umask(mask);
	a->temp_mode = 0600 & ~mask;
	buf_init(&a->body, WIRE_MAX_PAYLOAD + 1);
	a->rootrd = openat(o->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->rootrd < 0) {
		ap_fail_sys(e, "cannot open the mail root");
		goto bad;
	}
	a->rootdev = ap_dev_of(a->rootrd);
	/* Whatever an earlier run left staged was never acknowledged. */
	if (fs_rmtree_at(o->rootfd, APPLY_TMPDIR, e) < 0) {
		err_prefix(e, "cannot empty the staging directory " APPLY_TMPDIR);
		ap_fail(e);
		goto bad;
	}
	if (mkdirat(o->rootfd, APPLY_TMPDIR, 0700) < 0) {
		ap_fail_sys(e, "cannot create the staging directory " APPLY_TMPDIR);
		goto bad;
	}
	a->stagefd =
	    openat(o->rootfd, APPLY_TMPDIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (a->stagefd < 0) {
		ap_fail_sys(e, "cannot open the staging directory " APPLY_TMPDIR);
		goto bad;
	}
	a->stagedev = ap_dev_of(a->stagefd);
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
		ap_pend_remove(a, a->n - 1, true);
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
		return ap_fail_sys(e, "syncfs of the mail root failed (%s)", what);
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
			return ap_fail_sys(e, "syncfs below the mail root failed (%s)", what);
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
			ap_fail_sys(e, "cannot fsync the content of '%s'", p->path);
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
			ap_fail_sys(e, "cannot fsync directory '%s'", path);
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
		pfd = ap_open_parent(a, p->path, &name, e);
		if (pfd == -2)
			return err_set(e, WE_IO, "directory of '%s' vanished before commit",
				       p->path);
		if (pfd < 0)
			return -1;
		r = renameat(p->sdir, p->tmp, pfd, name);
		if (r < 0 && errno == EXDEV) {
			/* A mount point (a bind mount, even) between the
			 * staging directory and the target: restage next to it. */
			r = ap_restage(a, i, pfd, e);
			p = a->v[i];
			if (r == 0 && (r = renameat(p->sdir, p->tmp, pfd, name)) < 0)
				ap_fail_sys(e, "rename into '%s' failed", p->path);
		} else if (r < 0) {
			ap_fail_sys(e, "rename into '%s' failed", p->path);
		}
		if (r < 0) {
			close(pfd);
			return -1;
		}
		ap_touch(a, p->path, true, p->dev);
		close(pfd);
		ap_pend_remove(a, i, false);
	}
	return 0;
}

int apply_commit(struct apply *a, struct err *e)
{
	return apply_commit_hook(a, NULL, NULL, e);
}

int apply_commit_hook(struct apply *a, apply_hook_fn *hook, void *ctx, struct err *e)
{
	int r;

	if (a->ncomplete == 0 && a->ndirs == 0) {
		a->st.commits++;
		return hook != NULL && hook(ctx, e) < 0 ? err_prefix(e, "commit failed") : 0;
	}
	/* Content first, so that no rename exposes a file whose data could
	 * still be lost; a batch of renames and unlinks only (flag changes,
	 * expunges) has none, and its names need just the second sync. */
	r = 0;
	if (a->ncomplete > 0) {
		a->st.syncs++;
		r = a->o.use_syncfs ? sync_filesystems(a, "content", e) : fsync_pending(a, e);
	}
	if (r == 0)
		r = rename_pending(a, e);
	if (r == 0 && hook != NULL)
		r = hook(ctx, e);
	if (r == 0) {
		a->st.syncs++;
		r = a->o.use_syncfs ? sync_filesystems(a, "names", e) : fsync_touched(a, e);
	}
	if (r < 0)
		return err_prefix(e, "commit failed");
	touched_clear(a);
	a->st.commits++;
	return 0;
}

/* Commits early when too much content is pending. */
int ap_maybe_flush(struct apply *a, struct err *e)
{
	return a->ncomplete >= a->o.max_pending ? apply_commit(a, e) : 0;
}

/* Does the file at path already hold exactly this content and mtime?
 * If so, also brings its mode and owner in line. */
bool ap_already_there(struct apply *a, const struct pend *p, int pfd)
{
	uint8_t have[SHA256_LEN];
	const char *name = strrchr(p->path, '/') ? strrchr(p->path, '/') + 1 : p->path;
	struct stat st;
	bool same = false;
	int fd;

	if (pfd >= 0) {
		fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	} else {
		if ((pfd = ap_open_parent(a, p->path, &name, NULL)) < 0)
			return false;
		fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		close(pfd);
	}
	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == p->size &&
	    ts_ns(st.st_mtim) == p->at.mtime_ns && sha256_fd(fd, have, NULL, NULL) == 0 &&
	    memcmp(have, p->sha256, SHA256_LEN) == 0)
		same = ap_attrs_match(a, &st, &p->at) ||
		       ap_set_attrs(a, fd, &p->at, false, p->path, NULL) == 0;
	close(fd);
	return same;
}
