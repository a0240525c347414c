/*
 * testutil.h — helpers shared by the Check suites: scratch directories,
 * writing files, and running a suite with the standard runner.
 */
#ifndef MDREPL_TESTUTIL_H
#define MDREPL_TESTUTIL_H

#include <check.h>
#include <stddef.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); returns a static path
 * valid until the next call. */
const char *tu_mkdtemp(void);
/* A scratch mail root: top (a fresh directory) holds root/ (empty, the
 * mail root) and outside/secret (a file no confined operation may reach).
 * Fills top and root (PATH_MAX bytes each) and returns an fd on root. */
int tu_mail_root(char *top, char *root);
/* Removes a directory tree (no symlinks followed). */
void tu_rmtree(const char *path);
/* Writes a file (creating parents), aborting the test on failure. */
void tu_write(const char *path, const void *data, size_t len);
void tu_write_str(const char *path, const char *text);
/* Reads a whole file into a malloc'd NUL-terminated buffer; *len_r set if non-NULL. */
char *tu_read(const char *path, size_t *len_r);
/* Runs the suite; returns the process exit status. */
int tu_run(Suite *s);

#endif
