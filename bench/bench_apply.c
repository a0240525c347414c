/*
 * bench_apply.c — what a group commit of the apply engine costs: N small
 * messages PUT and committed, with syncfs() or with an fsync() per file,
 * on the file system holding DIR (default $TMPDIR or /tmp).
 *
 *     bench-apply [-r ROUNDS] [-s SIZE] [DIR]
 *
 * Prints, per batch size and mode, the median over the rounds of the time
 * to stage the files (PUT) and of apply_commit() alone.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "fsutil.h"
#include "hash.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int mkdir_op(struct apply *a, const char *path, struct err *e)
{
	struct w_mkdir m = {.path = slice_cstr(path), .mode = 0700};

	return apply_mkdir(a, &m, e);
}

/* One round: a fresh root, N PUTs, one commit. Returns 0 or -1. */
static int round_once(const char *dir, int n, size_t size, bool syncfs, uint64_t *put_ns,
		      uint64_t *commit_ns)
{
	char root[4096], path[128];
	char *body = malloc(size);
	struct md_rules *rules = md_rules_new(':', NULL);
	struct apply_opts o = {.rules = rules, .use_syncfs = syncfs, .max_pending = 100000};
	struct apply *a;
	struct err e;
	uint64_t t0;
	int r = -1;

	snprintf(root, sizeof(root), "%s/bench-apply.XXXXXX", dir);
	if (mkdtemp(root) == NULL || (o.rootfd = open(root, O_RDONLY | O_DIRECTORY)) < 0) {
		perror(root);
		goto out;
	}
	a = apply_new(&o, &e);
	if (a == NULL || mkdir_op(a, "u", &e) < 0 || mkdir_op(a, "u/Maildir", &e) < 0 ||
	    mkdir_op(a, "u/Maildir/new", &e) < 0 || apply_commit(a, &e) < 0)
		goto fail;
	t0 = now_mono_ns();
	for (int i = 0; i < n; i++) {
		struct w_put m = {.size = size,
				  .mtime_ns = 1700000000000000000LL,
				  .mode = 0600,
				  .raw_len = (uint32_t)size,
				  .body = {body, size}};

		memset(body, 'a' + i % 26, size);
		sha256_buf(body, size, m.sha256);
		snprintf(path, sizeof(path), "u/Maildir/new/%d.M%dP1.bench", i, i);
		m.path = slice_cstr(path);
		if (apply_put(a, &m, &e) != 0)
			goto fail;
	}
	*put_ns = now_mono_ns() - t0;
	t0 = now_mono_ns();
	if (apply_commit(a, &e) < 0)
		goto fail;
	*commit_ns = now_mono_ns() - t0;
	r = 0;
fail:
	if (r < 0)
		fprintf(stderr, "bench-apply: %s\n", e.msg);
	apply_free(&a);
	close(o.rootfd);
	{
		struct err ignored;
		fs_rmtree_at(AT_FDCWD, root, &ignored);
	}
out:
	md_rules_free(&rules);
	free(body);
	return r;
}

int main(int argc, char **argv)
{
	static const int sizes[] = {1, 10, 100, 1000};
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	size_t size = 4096;
	int rounds = 5, opt;

	while ((opt = getopt(argc, argv, "r:s:")) != -1) {
		if (opt == 'r')
			rounds = atoi(optarg);
		else if (opt == 's')
			size = (size_t)atol(optarg);
		else
			return 2;
	}
	if (optind < argc)
		dir = argv[optind];
	if (rounds < 1 || rounds > 100)
		return 2;
	printf("%6s %7s %12s %12s %14s %10s\n", "files", "mode", "put ms", "commit ms",
	       "commit/file ms", "files/s");
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		for (int mode = 0; mode < 2; mode++) {
			uint64_t put[100], commit[100];

			for (int i = 0; i < rounds; i++) {
				if (round_once(dir, sizes[k], size, mode == 0, &put[i],
					       &commit[i]) < 0)
					return 1;
			}
			qsort(put, (size_t)rounds, sizeof(put[0]), cmp_u64);
			qsort(commit, (size_t)rounds, sizeof(commit[0]), cmp_u64);
			printf("%6d %7s %12.2f %12.2f %14.3f %10.0f\n", sizes[k],
			       mode == 0 ? "syncfs" : "fsync", put[rounds / 2] / 1e6,
			       commit[rounds / 2] / 1e6, commit[rounds / 2] / 1e6 / sizes[k],
			       sizes[k] / ((put[rounds / 2] + commit[rounds / 2]) / 1e9));
		}
	}
	return 0;
}
