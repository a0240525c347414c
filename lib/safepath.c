/*
 * safepath.c — path validation and symlink-free operations beneath a root
 * directory (see safepath.h).
 *
 * SECURITY: this file is the confinement boundary for the standby's mail
 * store. Every function takes an already-open root directory fd; nothing
 * here resolves an absolute path.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef HAVE_LINUX_OPENAT2_H
#include <linux/openat2.h>
#endif

#include "safepath.h"

static bool use_openat2 = true;

void sp_set_use_openat2(bool on)
{
	use_openat2 = on;
}

int sp_check(struct slice path, struct err *e)
{
	size_t start = 0;

	if (path.len == 0)
		return err_set(e, EINVAL, "empty path");
	if (path.len > SP_PATH_MAX)
		return err_set(e, ENAMETOOLONG, "path longer than %d bytes", SP_PATH_MAX);
	if (path.p[0] == '/')
		return err_set(e, EINVAL, "absolute path '%.*s' refused", (int)path.len, path.p);
	if (memchr(path.p, '\0', path.len) != NULL)
		return err_set(e, EINVAL, "path with a NUL byte refused");
	for (size_t i = 0; i <= path.len; i++) {
		if (i < path.len && path.p[i] != '/')
			continue;
		size_t n = i - start;
		const char *c = path.p + start;

		if (n == 0)
			return err_set(e, EINVAL, "empty component in path '%.*s'",
				       (int)path.len, path.p);
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return err_set(e, EINVAL, "'.' or '..' in path '%.*s' refused",
				       (int)path.len, path.p);
		if (n > SP_NAME_MAX)
			return err_set(e, ENAMETOOLONG, "component longer than %d bytes",
				       SP_NAME_MAX);
		start = i + 1;
	}
	return 0;
}

/* Checks relpath as a C string before any system call sees it. */
static int check_cstr(const char *relpath, struct err *e)
{
	return sp_check(slice_cstr(relpath), e);
}

static int fail_open(const char *relpath, struct err *e)
{
	/* RESOLVE_BENEATH reports an escape as EXDEV; call every escape ELOOP. */
	if (errno == ELOOP || errno == EXDEV) {
		err_set(e, ELOOP, "refusing to follow a symlink in '%s'", relpath);
		errno = ELOOP;
		return -1;
	}
	return err_sys(e, "cannot open '%s'", relpath);
}

#if defined(HAVE_LINUX_OPENAT2_H) && defined(SYS_openat2)
static int try_openat2(int rootfd, const char *relpath, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
		/* Mount points below the root are fine (per-domain file systems). */
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, rootfd, relpath, &how, sizeof(how));

	if (fd < 0 && (errno == ENOSYS || errno == E2BIG))
		use_openat2 = false; /* old kernel: walk from now on */
	return fd;
}
#else
static int try_openat2(int rootfd, const char *relpath, int flags, mode_t mode)
{
	use_openat2 = false;
	errno = ENOSYS;
	return -1;
}
#endif

/* Walks relpath one component at a time, refusing symlinks. */
static int walk_open(int rootfd, const char *relpath, int flags, mode_t mode)
{
	const char *p = relpath, *slash;
	int dirfd = rootfd, fd;

	while ((slash = strchr(p, '/')) != NULL) {
		char comp[SP_NAME_MAX + 1];
		size_t n = (size_t)(slash - p);

		memcpy(comp, p, n);
		comp[n] = '\0';
		fd = openat(dirfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOTDIR) {
			struct stat st;
			/* Report a symlink as such, not as "not a directory". */
			if (fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				errno = ELOOP;
			else
				errno = ENOTDIR;
		}
		if (dirfd != rootfd) {
			int saved = errno;
			close(dirfd);
			errno = saved;
		}
		if (fd < 0)
			return -1;
		dirfd = fd;
		p = slash + 1;
	}
	fd = openat(dirfd, p, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	if (dirfd != rootfd) {
		int saved = errno;
		close(dirfd);
		errno = saved;
	}
	return fd;
}

int sp_open(int rootfd, const char *relpath, int flags, mode_t mode, struct err *e)
{
	int fd = -1;

	if (check_cstr(relpath, e) < 0) {
		errno = EINVAL;
		return -1;
	}
	if (use_openat2) {
		fd = try_openat2(rootfd, relpath, flags, mode);
		if (fd >= 0)
			return fd;
		if (use_openat2)
			return fail_open(relpath, e);
	}
	fd = walk_open(rootfd, relpath, flags, mode);
	if (fd < 0)
		return fail_open(relpath, e);
	return fd;
}

int sp_open_parent(int rootfd, const char *relpath, const char **name_r, struct err *e)
{
	const char *slash;
	char dir[SP_PATH_MAX + 1];
	size_t n;
	int fd;

	if (check_cstr(relpath, e) < 0) {
		errno = EINVAL;
		return -1;
	}
	slash = strrchr(relpath, '/');
	if (slash == NULL) {
		*name_r = relpath;
		fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? err_sys(e, "dup") : fd;
	}
	n = (size_t)(slash - relpath);
	memcpy(dir, relpath, n);
	dir[n] = '\0';
	*name_r = slash + 1;
	return sp_open(rootfd, dir, O_PATH | O_DIRECTORY, 0, e);
}

/* Runs one *at() operation on the parent directory of relpath. */
enum at_op { AT_UNLINK, AT_RMDIR, AT_MKDIR };

static int at_one(int rootfd, const char *relpath, enum at_op op, mode_t mode, struct err *e)
{
	const char *name;
	int dfd = sp_open_parent(rootfd, relpath, &name, e), r, saved;

	if (dfd < 0)
		return -1;
	switch (op) {
	case AT_UNLINK: r = unlinkat(dfd, name, 0); break;
	case AT_RMDIR: r = unlinkat(dfd, name, AT_REMOVEDIR); break;
	default: r = mkdirat(dfd, name, mode); break;
	}
	saved = errno;
	if (r < 0 && op == AT_MKDIR && errno == EEXIST) {
		struct stat st;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			r = 0;
		else
			errno = saved = EEXIST;
	}
	close(dfd);
	errno = saved;
	if (r < 0)
		return err_sys(e, "%s('%s') failed",
			       op == AT_UNLINK ? "unlink" : op == AT_RMDIR ? "rmdir" : "mkdir",
			       relpath);
	return 0;
}

int sp_unlink(int rootfd, const char *relpath, struct err *e)
{
	return at_one(rootfd, relpath, AT_UNLINK, 0, e);
}

int sp_rmdir(int rootfd, const char *relpath, struct err *e)
{
	return at_one(rootfd, relpath, AT_RMDIR, 0, e);
}

int sp_mkdir(int rootfd, const char *relpath, mode_t mode, struct err *e)
{
	return at_one(rootfd, relpath, AT_MKDIR, mode, e);
}

int sp_mkdirs(int rootfd, const char *relpath, mode_t mode, struct err *e)
{
	char path[SP_PATH_MAX + 1];
	size_t len = strlen(relpath);

	if (check_cstr(relpath, e) < 0)
		return -1;
	memcpy(path, relpath, len + 1);
	for (size_t i = 0; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (sp_mkdir(rootfd, path, mode, e) < 0)
			return -1;
		if (i < len)
			path[i] = '/';
	}
	return 0;
}

/* Renames or links between two paths beneath rootfd. */
static int two_path_op(int rootfd, const char *from, const char *to, bool link, struct err *e)
{
	const char *fname, *tname;
	int fdir, tdir, r, saved;

	fdir = sp_open_parent(rootfd, from, &fname, e);
	if (fdir < 0)
		return -1;
	tdir = sp_open_parent(rootfd, to, &tname, e);
	if (tdir < 0) {
		saved = errno;
		close(fdir);
		errno = saved;
		return -1;
	}
	/* linkat without AT_SYMLINK_FOLLOW links a symlink itself, never its target. */
	r = link ? linkat(fdir, fname, tdir, tname, 0) : renameat(fdir, fname, tdir, tname);
	saved = errno;
	close(fdir);
	close(tdir);
	errno = saved;
	if (r < 0)
		return err_sys(e, "%s('%s' -> '%s') failed", link ? "link" : "rename", from, to);
	return 0;
}

int sp_rename(int rootfd, const char *from, const char *to, struct err *e)
{
	return two_path_op(rootfd, from, to, false, e);
}

int sp_link(int rootfd, const char *from, const char *to, struct err *e)
{
	return two_path_op(rootfd, from, to, true, e);
}
