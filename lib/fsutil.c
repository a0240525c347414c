/*
 * fsutil.c — durable file-system helpers (see fsutil.h).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "safepath.h"

int fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t fs_read_full(int fd, void *data, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)data + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

void fs_willneed(int rootfd, const char *relpath, off_t len)
{
	int fd = sp_open(rootfd, relpath, O_RDONLY | O_NONBLOCK | O_NOFOLLOW, 0, NULL);

	if (fd < 0)
		return;
	(void)posix_fadvise(fd, 0, len, POSIX_FADV_WILLNEED);
	close(fd);
}

int fs_fsync_dir(int dirfd, const char *path, struct err *e)
{
	int fd = openat(dirfd, path ? path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return err_sys(e, "cannot open directory %s", path ? path : ".");
	r = fsync(fd);
	if (r < 0)
		err_sys(e, "fsync of directory %s failed", path ? path : ".");
	close(fd);
	return r;
}

/* Splits name into its directory part (for the fsync) and base. */
static void dir_of(const char *name, char *dir, size_t dirlen)
{
	const char *slash = strrchr(name, '/');

	if (slash == NULL)
		snprintf(dir, dirlen, ".");
	else if (slash == name)
		snprintf(dir, dirlen, "/");
	else
		snprintf(dir, dirlen, "%.*s", (int)(slash - name), name);
}

/* Writes data to a temporary file and renames it over dir/name; with
 * durable, fsyncs the file before and the directory after the rename. */
static int replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		   bool durable, struct err *e)
{
	char tmp[4200], dir[4200];
	int fd, n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", name, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return err_set(e, ENAMETOOLONG, "path too long: %s", name);
	unlinkat(dirfd, tmp, 0); /* a leftover from a crash of this pid number */
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return err_sys(e, "cannot create %s", tmp);
	if (fs_write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0)) {
		err_sys(e, "cannot write %s", tmp);
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	if (close(fd) < 0) {
		err_sys(e, "cannot write %s", tmp);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		err_sys(e, "rename(%s -> %s) failed", tmp, name);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	if (!durable)
		return 0;
	dir_of(name, dir, sizeof(dir));
	return fs_fsync_dir(dirfd, dir, e);
}

int fs_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		    struct err *e)
{
	return replace(dirfd, name, data, len, mode, true, e);
}

int fs_write_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		     struct err *e)
{
	return replace(dirfd, name, data, len, mode, false, e);
}

int fs_read_fd(int fd, struct buf *out, size_t max, struct err *e)
{
	off_t off = 0;

	buf_reset(out);
	for (;;) {
		uint8_t *space = buf_space(out, 65536);
		ssize_t n;

		if (space == NULL)
			return err_set(e, EFBIG, "file larger than the buffer allows");
		n = pread(fd, space, 65536, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_sys(e, "read failed");
		}
		if (n == 0)
			return 0;
		if (out->len + (size_t)n > max) {
			errno = EFBIG;
			return err_set(e, EFBIG, "file larger than %zu bytes", max);
		}
		buf_commit(out, (size_t)n);
		off += n;
	}
}

int fs_read_file(int dirfd, const char *name, struct buf *out, size_t max, struct err *e)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int r, saved;

	buf_reset(out);
	if (fd < 0)
		return err_sys(e, "cannot open %s", name);
	r = fs_read_fd(fd, out, max, e);
	saved = errno;
	close(fd);
	errno = saved;
	if (r < 0)
		err_prefix(e, "%s", name);
	return r;
}

int fs_mkdir_p(const char *path, mode_t mode, struct err *e)
{
	char tmp[4200];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return err_set(e, ENAMETOOLONG, "bad directory path '%s'", path);
	memcpy(tmp, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return err_sys(e, "cannot create directory %s", tmp);
		if (i < len)
			tmp[i] = '/';
	}
	return 0;
}

int fs_rmtree_at(int dirfd, const char *name, struct err *e)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ENOTDIR || errno == ELOOP) {
			/* A file or symlink: remove the entry itself. */
			if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
				return err_sys(e, "cannot remove %s", name);
			return 0;
		}
		return err_sys(e, "cannot open %s", name);
	}
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return err_sys(e, "cannot read %s", name);
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN) {
			if (fs_rmtree_at(fd, de->d_name, e) < 0) {
				r = -1;
				break;
			}
		} else if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT) {
			r = err_sys(e, "cannot remove %s/%s", name, de->d_name);
			break;
		}
	}
	closedir(d);
	if (r == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = err_sys(e, "cannot remove directory %s", name);
	return r;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t now_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t now_mono_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000ULL;
}

uint64_t now_real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

int64_t ts_ns(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
