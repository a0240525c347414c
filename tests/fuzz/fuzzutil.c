/*
 * fuzzutil.c — scratch directory and file helpers for the fuzz targets
 * (see fuzzutil.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "fuzzutil.h"
#include "log.h"

static char scratch[256];

static void remove_scratch(void)
{
	if (scratch[0] != '\0')
		fs_rmtree_at(AT_FDCWD, scratch, NULL);
}

const char *fz_scratch(void)
{
	const char *base = getenv("TMPDIR");

	if (scratch[0] != '\0')
		return scratch;
	if (access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";
	else if (base == NULL || base[0] == '\0')
		base = "/tmp";
	snprintf(scratch, sizeof(scratch), "%s/mdrepl-fuzz-XXXXXX", base);
	if (mkdtemp(scratch) == NULL) {
		perror(scratch);
		abort();
	}
	atexit(remove_scratch);
	log_init("fuzz", LOG_TARGET_STDERR, LOG_LEVEL_ERROR);
	return scratch;
}

void fz_empty_dir(const char *dir)
{
	struct err e;

	if (fs_rmtree_at(AT_FDCWD, dir, &e) < 0 && errno != ENOENT) {
		fprintf(stderr, "fuzz: cannot empty %s: %s\n", dir, e.msg);
		abort();
	}
	if (mkdir(dir, 0700) < 0) {
		perror(dir);
		abort();
	}
}

void fz_write(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		abort();
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fs_write_all(fd, p, n) < 0 || close(fd) < 0) {
		perror(path);
		abort();
	}
}

long long fz_size(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		abort();
	return lstat(path, &st) < 0 ? -1 : (long long)st.st_size;
}
