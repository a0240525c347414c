/*
 * fsutil.h — small durable file-system helpers.
 *
 * The pattern every state file follows: write a temporary file with
 * O_EXCL, fsync it, rename it over the old one, fsync the directory.
 * After a crash the file is either the old or the new version, whole.
 */
#ifndef MDREPL_FSUTIL_H
#define MDREPL_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"
#include "err.h"

/* Atomically replaces dir/name with data (mode for a new file). dirfd may be
 * AT_FDCWD with a path in name. */
int fs_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		    struct err *e);
/* Atomically replaces dir/name like fs_write_atomic, but leaves durability
 * to the caller (a following syncfs of that file system). */
int fs_write_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		     struct err *e);
/* Reads a whole (small) file into out, at most max bytes. Returns 0, or -1
 * (errno kept; ENOENT for a missing file). */
int fs_read_file(int dirfd, const char *name, struct buf *out, size_t max, struct err *e);
/* Reads an open file from offset 0 to EOF into out (replacing it), at most
 * max bytes. Returns 0 or -1 (EFBIG past max). */
int fs_read_fd(int fd, struct buf *out, size_t max, struct err *e);
/* fsyncs a directory by path or fd. */
/* Asks the kernel to read the first len bytes of rootfd/relpath ahead,
 * without waiting; a file that cannot be opened is skipped. */
void fs_willneed(int rootfd, const char *relpath, off_t len);

int fs_fsync_dir(int dirfd, const char *path, struct err *e);
/* write()s all of data, retrying on EINTR and short writes. */
int fs_write_all(int fd, const void *data, size_t len);
/* read()s exactly len bytes unless EOF comes first; returns bytes read or -1. */
ssize_t fs_read_full(int fd, void *data, size_t len);
/* mkdir -p of an absolute or relative path (trusted, local). */
int fs_mkdir_p(const char *path, mode_t mode, struct err *e);
/* Removes a directory tree beneath dirfd without following symlinks. */
int fs_rmtree_at(int dirfd, const char *name, struct err *e);

/* Monotonic and wall clocks. */
uint64_t now_mono_ns(void);
uint64_t now_mono_ms(void);
uint64_t now_real_ns(void);
/* A file time (st_mtim, st_ctim) in nanoseconds since the epoch. */
int64_t ts_ns(struct timespec ts);

#endif
