/*
 * safepath.h — paths received from outside, and file operations confined
 * beneath a root directory.
 *
 * SECURITY: every path that names a file in the mail store and comes from
 * the peer (or from a journal record) is checked by sp_check() and then
 * used only through these functions, which resolve it relative to a root
 * directory descriptor and never follow a symbolic link, in any component.
 * With openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) where the kernel has
 * it (Linux >= 5.6), else by walking the components with O_NOFOLLOW.
 * A symlink planted anywhere in the path makes the operation fail with
 * ELOOP (or ENOTDIR) instead of escaping the root.
 */
#ifndef MDREPL_SAFEPATH_H
#define MDREPL_SAFEPATH_H

#include <stdbool.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

#define SP_PATH_MAX 4095 /* bytes in a relative path */
#define SP_NAME_MAX 255	 /* bytes in one component */

/* Validates a relative path: non-empty, not absolute, no empty, "." or ".."
 * components, no NUL, within SP_PATH_MAX / SP_NAME_MAX. */
int sp_check(struct slice path, struct err *e);

/* Opens relpath beneath rootfd (flags as for openat; O_NOFOLLOW and
 * O_CLOEXEC are added). Returns the fd or -1; errno is kept. */
int sp_open(int rootfd, const char *relpath, int flags, mode_t mode, struct err *e);

/* Opens the directory that holds relpath's last component, beneath rootfd.
 * Returns the directory fd (caller closes) and sets *name_r to point at the
 * last component inside relpath. rootfd itself is dup'ed for a one-component
 * path. */
int sp_open_parent(int rootfd, const char *relpath, const char **name_r, struct err *e);

/* Renames/unlinks/links/creates beneath rootfd; the last component is
 * never followed (a symlink there is renamed or removed itself). */
int sp_rename(int rootfd, const char *from, const char *to, struct err *e);
int sp_unlink(int rootfd, const char *relpath, struct err *e);
int sp_rmdir(int rootfd, const char *relpath, struct err *e);
int sp_link(int rootfd, const char *from, const char *to, struct err *e);
/* Creates one directory; succeeds if it already is a directory. */
int sp_mkdir(int rootfd, const char *relpath, mode_t mode, struct err *e);
/* Creates relpath and any missing parents (like mkdir -p). */
int sp_mkdirs(int rootfd, const char *relpath, mode_t mode, struct err *e);

/* For tests: disable openat2 to exercise the component walk. */
void sp_set_use_openat2(bool on);

#endif
