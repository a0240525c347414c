/*
 * apply.c — the standby's apply engine: the operations (see apply.h,
 * DESIGN §7). Staging and the group commit are in pending.c.
 *
 * Operations on names (RENAME, LINK, UNLINK, MKDIR, RMTREE, SETATTR) act
 * at once and record the directories they touched; content (PUT, DATA,
 * DELTA, a LINK that copies) becomes pending. Where an operation names
 * pending content, it acts on the pending list, so that the result is what
 * applying everything in order would give.
 *
 * SECURITY: every path comes from the peer. check_path() validates it
 * (sp_check() plus the Maildir rules: nothing in tmp/, nothing excluded,
 * cur/ new/ courierimapkeywords/ only as the last directory, and the last
 * component a message, a metadata file or a folder directory) and every
 * file-system access goes through a directory opened by safepath.h
 * beneath the root, with O_NOFOLLOW or AT_SYMLINK_NOFOLLOW on the last
 * component. Content is verified (size, SHA-256) before it is renamed into
 * place; a DEFLATE body inflates only to its declared length.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply_int.h"
#include "delta.h"
#include "fsutil.h"
#include "log.h"
#include "safepath.h"
#include "xalloc.h"

/* An operation that cannot be applied for want of content: counted, and
 * reported to the sender as NEED. */
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

/* p's content is all written and verified: set its attributes and make it
 * pending (or drop it when it changes nothing). pfd: the target's
 * directory if the caller has it open, else -1. */
static int finish(struct apply *a, struct pend *p, int pfd, struct err *e)
{
	if (ap_set_temp_attrs(a, p, e) < 0)
		return -1;
	if (close(p->fd) < 0) {
		p->fd = -1;
		return ap_fail_sys(e, "cannot write '%s'", p->path);
	}
	p->fd = -1;
	if (p->open) {
		p->open = false;
		a->nopen--;
		a->ncomplete++;
	}
	if (p->discard) {
		a->st.noops++;
		ap_pend_remove(a, ap_pend_index(a, p), true);
		return 0;
	}
	ap_pend_drop(a, p->path, false, p); /* superseded */
	if (ap_already_there(a, p, pfd)) {
		a->st.noops++;
		ap_pend_remove(a, ap_pend_index(a, p), true);
		return 0;
	}
	a->st.files_written++;
	a->st.bytes_written += p->size;
	return ap_maybe_flush(a, e);
}

/* A transfer that failed its checks is dropped: the batch is refused, and
 * a later DATA for it is a protocol error. */
static int transfer_failed(struct apply *a, struct pend *p)
{
	ap_pend_remove(a, ap_pend_index(a, p), true);
	return -1;
}

/* A transfer's last byte is in: check size and hash, then finish (pfd as
 * there). */
static int complete(struct apply *a, struct pend *p, int pfd, struct err *e)
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
	return finish(a, p, pfd, e);
}

int apply_put(struct apply *a, const struct w_put *m, struct err *e)
{
	char path[SP_PATH_MAX + 1];
	struct attrs at = {m->mode, m->uid, m->gid, m->mtime_ns, true};
	bool chunked = m->flags & WF_CHUNKED;
	const char *name;
	struct slice body;
	struct pend *p;
	int pfd, r;

	if (check_path(a, m->path, PK_FILE, path, e) < 0)
		return -1;
	if (m->size > WIRE_MAX_FILE)
		return err_set(e, WE_LIMIT, "'%s': %llu bytes is over the limit", path,
			       (unsigned long long)m->size);
	if (chunked && ap_xfer_find(a, m->xfer_id) != NULL)
		return err_set(e, WE_PROTOCOL, "transfer %u is already open", m->xfer_id);
	if (chunked && a->nopen >= MAX_XFERS)
		return err_set(e, WE_LIMIT, "more than %d transfers open", MAX_XFERS);
	if (body_bytes(a, m->body, m->flags, m->raw_len, &body, e) < 0)
		return err_prefix(e, "'%s'", path);
	if (body.len > m->size || (!chunked && body.len != m->size))
		return err_set(e, WE_INTEGRITY, "'%s': body of %zu bytes for a size of %llu", path,
			       body.len, (unsigned long long)m->size);
	pfd = ap_open_parent(a, path, &name, e);
	if (pfd == -2)
		return need(a); /* the sender creates directories with MKDIR first */
	if (pfd < 0)
		return -1;
	p = ap_pend_new(a, path, pfd, &at, false, e);
	if (p == NULL) {
		close(pfd);
		return -1;
	}
	p->size = m->size;
	memcpy(p->sha256, m->sha256, SHA256_LEN);
	p->h = sha256_new();
	p->open = chunked;
	p->xfer_id = m->xfer_id;
	if (ap_write_content(p, body, e) < 0) {
		close(pfd);
		ap_pend_discard_new(p);
		return -1;
	}
	ap_pend_add(a, p);
	/* A whole file is done at once, in the directory still open here. */
	r = chunked ? 0 : complete(a, p, pfd, e);
	close(pfd);
	return r;
}

int apply_data(struct apply *a, const struct w_data *m, struct err *e)
{
	struct pend *p = ap_xfer_find(a, m->xfer_id);
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
	if (ap_write_content(p, body, e) < 0)
		return -1;
	return m->flags & WF_LAST ? complete(a, p, -1, e) : 0;
}

/* ------------------------------------------------------------- names */

/* Removes the file at a checked path, and content pending for it. */
static int unlink_file(struct apply *a, const char *path, struct err *e)
{
	const char *name;
	int pfd, r = 0;

	ap_pend_drop(a, path, false, NULL);
	pfd = ap_open_parent(a, path, &name, e);
	if (pfd == -2)
		return 0; /* gone with its directory */
	if (pfd < 0)
		return -1;
	if (unlinkat(pfd, name, 0) == 0) {
		ap_touch(a, path, true, ap_dev_of(pfd));
		a->st.unlinks++;
	} else if (errno == EISDIR) {
		r = err_set(e, WE_PATH, "'%s' is a directory: RMTREE removes directories", path);
	} else if (errno != ENOENT) {
		r = ap_fail_sys(e, "unlink '%s' failed", path);
	}
	close(pfd);
	return r;
}

/* A file renamed into a folder this node does not have (the sender created
 * it and renamed or deleted it again before this was sent): the rename
 * cannot be done, but the sender no longer has the file under its old
 * name, so it goes here too, and the target is needed (the sender sends it,
 * or an UNLINK if it is gone there as well). Kept, the old name would be a
 * message the primary has moved or expunged: seen twice, or back. */
static int rename_nowhere(struct apply *a, const char *from, struct err *e)
{
	return unlink_file(a, from, e) < 0 ? -1 : need(a);
}

/* A pending file moves to another name: retarget it, and remove what the
 * old name held on disk. */
static int retarget(struct apply *a, struct pend *p, const char *from, const char *to,
		    struct err *e)
{
	const char *fname, *tname;
	int fpfd, tpfd = ap_open_parent(a, to, &tname, e);

	if (tpfd == -2)
		return rename_nowhere(a, from, e);
	if (tpfd < 0)
		return -1;
	ap_pend_rename(a, p, xstrdup(to));
	if (ap_dev_of(tpfd) != p->dev && !p->open) {
		/* The new name is on another file system: restage there. */
		size_t i = ap_pend_index(a, p);

		if (ap_restage(a, i, tpfd, e) < 0) {
			close(tpfd);
			return -1;
		}
		p = a->v[i];
	}
	close(tpfd);
	fpfd = ap_open_parent(a, from, &fname, e);
	if (fpfd >= 0) {
		if (unlinkat(fpfd, fname, 0) == 0)
			ap_touch(a, from, true, ap_dev_of(fpfd));
		close(fpfd);
	}
	ap_pend_drop(a, to, false, p);
	a->st.renames++;
	if (!p->open && ap_already_there(a, p, -1)) /* a replay: the target is this already */
		ap_pend_remove(a, ap_pend_index(a, p), true);
	return 0;
}

/* True if path exists on disk or as complete pending content. */
static bool exists(struct apply *a, const char *path)
{
	const char *name;
	struct stat st;
	int pfd;
	bool r;

	if (ap_pend_find(a, path, true) != NULL)
		return true;
	pfd = ap_open_parent(a, path, &name, NULL);
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
		if (!a->v[i]->open && ap_under(a->v[i]->path, dir))
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

		if (p->open && ap_under(p->path, from))
			ap_pend_rename(a, p, xasprintf("%s%s", to, p->path + n));
	}
}

static int rename_on_disk(struct apply *a, const char *from, const char *to, struct err *e)
{
	char scratch[SP_PATH_MAX + 1];
	const char *fname, *tname;
	struct stat st;
	int fpfd, tpfd, r;
	bool dir;

	fpfd = ap_open_parent(a, from, &fname, e);
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
	tpfd = ap_open_parent(a, to, &tname, e);
	if (tpfd < 0) {
		close(fpfd);
		if (tpfd == -2)
			return dir ? need(a) : rename_nowhere(a, from, e);
		return -1;
	}
	ap_pend_drop(a, to, false, NULL); /* the rename replaces it */
	r = renameat(fpfd, fname, tpfd, tname);
	if (r < 0)
		ap_fail_sys(e, "rename '%s' -> '%s' failed", from, to);
	else {
		ap_touch(a, from, true, ap_dev_of(fpfd));
		ap_touch(a, to, true, ap_dev_of(tpfd));
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
	p = ap_pend_find(a, from, false);
	if (p != NULL) {
		if (check_path(a, m->to, PK_FILE, to, e) < 0)
			return -1;
		return retarget(a, p, from, to, e);
	}
	return rename_on_disk(a, from, to, e);
}

/* A hard link shares its source's inode, so a source here of another
 * size or mtime is not the file the primary linked: NEED its content
 * rather than spread the difference (a copy is checked by its hash). */
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
	tpfd = ap_open_parent(a, to, &tname, e);
	if (tpfd < 0)
		return tpfd == -2 ? need(a) : -1;
	p = ap_pend_find(a, from, false);
	if (p != NULL) {
		if (p->open || p->size != m->size ||
		    (copy ? memcmp(p->sha256, m->sha256, SHA256_LEN) != 0
			  : p->at.mtime_ns != m->mtime_ns)) {
			close(tpfd);
			return need(a);
		}
		r = 0;
		if (!copy && p->dev == ap_dev_of(tpfd))
			q = ap_link_pending(a, p, to, e);
		else
			q = ap_copy_of(a, p, -1, to, tpfd, false, m, &r, e);
		close(tpfd);
		if (q == NULL)
			return r > 0 ? need(a) : -1;
		ap_pend_add(a, q);
		if (copy)
			a->st.copies++;
		else
			a->st.links++;
		return ap_maybe_flush(a, e);
	}
	fpfd = ap_open_parent(a, from, &fname, e);
	if (fpfd < 0) {
		close(tpfd);
		return fpfd == -2 ? need(a) : -1;
	}
	if (fstatat(fpfd, fname, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != m->size || (!copy && ts_ns(st.st_mtim) != m->mtime_ns)) {
		r = need(a);
	} else if (!copy && linkat(fpfd, fname, tpfd, tname, 0) == 0) {
		ap_touch(a, to, true, ap_dev_of(tpfd));
		a->st.links++;
		r = 0;
	} else if (!copy && errno == EEXIST) {
		r = 0;
	} else if (!copy && errno != EXDEV && errno != EMLINK) {
		r = ap_fail_sys(e, "link '%s' -> '%s' failed", from, to);
	} else {
		/* Asked to copy, or a hard link is impossible here. */
		src = openat(fpfd, fname, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (src < 0) {
			r = errno == ENOENT ? need(a) : ap_fail_sys(e, "cannot open '%s'", from);
		} else {
			q = ap_copy_of(a, NULL, src, to, tpfd, false, m, &r, e);
			close(src);
			if (r > 0)
				need(a);
		}
		if (q != NULL) {
			ap_pend_add(a, q);
			a->st.copies++;
			r = ap_maybe_flush(a, e);
		}
	}
	close(fpfd);
	close(tpfd);
	return r;
}

int apply_unlink(struct apply *a, const struct w_unlink *m, struct err *e)
{
	char path[SP_PATH_MAX + 1];

	if (check_path(a, m->path, PK_FILE, path, e) < 0)
		return -1;
	return unlink_file(a, path, e);
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
	pfd = ap_open_parent(a, path, &name, e);
	if (pfd < 0)
		return pfd == -2 ? need(a) : -1;
	created = mkdirat(pfd, name, 0700) == 0;
	if (!created && errno != EEXIST) {
		r = ap_fail_sys(e, "mkdir '%s' failed", path);
		close(pfd);
		return r;
	}
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = errno == ENOTDIR || errno == ELOOP
			? err_set(e, WE_PATH, "'%s' exists and is not a directory", path)
			: ap_fail_sys(e, "cannot open directory '%s'", path);
		close(pfd);
		return r;
	}
	r = ap_set_attrs(a, fd, &at, true, path, e);
	if (r == 0) {
		ap_touch(a, path, true, ap_dev_of(pfd));
		ap_touch(a, path, false, ap_dev_of(fd));
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
	ap_pend_drop(a, path, true, NULL);
	pfd = ap_open_parent(a, path, &name, e);
	if (pfd == -2)
		return 0;
	if (pfd < 0)
		return -1;
	r = fs_rmtree_at(pfd, name, e);
	if (r < 0) {
		err_prefix(e, "cannot remove '%s'", path);
		ap_fail(e);
	} else {
		ap_touch(a, path, true, ap_dev_of(pfd));
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

	*pp = ap_pend_find(a, path, true);
	if (*pp != NULL) {
		fd = openat((*pp)->sdir, (*pp)->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		return fd >= 0 ? fd : ap_fail_sys(e, "cannot open pending '%s'", path);
	}
	pfd = ap_open_parent(a, path, &name, e);
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = -2;
	else if (fd < 0)
		fd = errno == ELOOP ? err_set(e, WE_PATH, "'%s' is a symlink", path)
				    : ap_fail_sys(e, "cannot open '%s'", path);
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
	pfd = ap_open_parent(a, path, &name, e);
	if (pfd < 0)
		return pfd == -2 ? need(a) : -1;
	q = ap_pend_new(a, path, pfd, &at, false, e);
	close(pfd);
	if (q == NULL)
		return -1;
	r = delta_patch(base, delta, q->fd, m->result_size, &size, &de);
	if (r < 0 && de.code != ERR_CORRUPT && de.code != EFBIG) {
		err_set(e, ap_wire_code(de.code), "delta for '%s': %s", path, de.msg);
	} else if (r == 0 && sha256_fd(q->fd, got, NULL, e) < 0) {
		r = ap_fail(e);
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
		r = ap_set_temp_attrs(a, q, e);
		if (r == 0 && close(q->fd) < 0)
			r = ap_fail_sys(e, "cannot write '%s'", path);
		if (r == 0)
			q->fd = -1;
	}
	if (r != 0) {
		ap_pend_discard_new(q);
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
		return ap_fail(e);
	}
	if (size == m->result_size && memcmp(have, m->result_sha256, SHA256_LEN) == 0) {
		/* Applied before: just the attributes. */
		struct attrs at = {m->mode, m->uid, m->gid, m->mtime_ns, true};

		r = ap_attrs_match(a, &st, &at) ? 0 : ap_set_attrs(a, base, &at, false, path, e);
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
	ap_pend_drop(a, path, false, NULL); /* the old pending content was the base */
	if (ap_already_there(a, q, -1)) {   /* a replay over a replayed base */
		ap_pend_discard_new(q);
		a->st.noops++;
		return 0;
	}
	ap_pend_add(a, q);
	a->st.deltas++;
	a->st.bytes_written += q->size;
	return ap_maybe_flush(a, e);
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
		r = ap_set_attrs(a, fd, &at, S_ISDIR(st.st_mode), path, e);
	/* Without syncfs, only an fsync makes an inode change durable. */
	if (r == 0 && p == NULL && !a->o.use_syncfs && fsync(fd) < 0)
		r = ap_fail_sys(e, "cannot fsync '%s'", path);
	if (r == 0 && p != NULL)
		p->at = at;
	if (r == 0) {
		ap_touch(a, path, true,
			 p != NULL ? p->dev : ap_dev_of(fd)); /* its file system syncs */
		a->st.setattrs++;
	}
	close(fd);
	return r;
}
