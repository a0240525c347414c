/*
 * jreplay.c — the replay checker of the journald end-to-end tests:
 *
 *   jreplay [-s SEP] JOURNAL_DIR COPY FINAL
 *
 * COPY is a copy of the tree taken before journald started, FINAL the
 * tree after the workload. jreplay applies the journal's records to COPY
 * and the test then compares COPY with FINAL: equal means the journal
 * carried every change.
 *
 * Records are applied literally — names and structure come from the
 * journal alone: a create makes a placeholder file, renames and unlinks
 * move and remove what is in COPY, folder records do the same to
 * directories. Only file contents, which the journal does not carry, are
 * taken from FINAL at the end (every placeholder is filled from FINAL at
 * the path it ended up at; one FINAL does not have stays and shows up in
 * the comparison). A record that cannot apply literally (its source is
 * missing) is an anomaly: it is counted and printed, and then validated
 * against FINAL the way the sender validates hints (DESIGN §5): a rename
 * whose source is gone becomes a transfer of the target. A rescan makes
 * that folder (or subtree) of COPY equal to FINAL's; nothing else ever
 * compares whole trees.
 *
 * Prints the records replayed per type, the rescans and the anomalies.
 * Exit status 0, 1 on a journal error, 2 on usage.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "journal.h"
#include "maildir.h"
#include "safepath.h"
#include "xalloc.h"

#define PH	  "\0jreplay placeholder\0"
#define PH_LEN	  (sizeof(PH) - 1)
#define MAX_SHOWN 30

struct rp {
	int copyfd, finalfd;
	struct md_rules *rules;
	uint64_t count[JR_STOP + 1];
	uint64_t anomalies, filled, unfilled;
};

static void anomaly(struct rp *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void anomaly(struct rp *rp, const char *fmt, ...)
{
	va_list ap;

	if (rp->anomalies++ >= MAX_SHOWN)
		return;
	va_start(ap, fmt);
	fputs("jreplay: anomaly: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
}

static const char *dot(const char *rel)
{
	return rel[0] ? rel : ".";
}

/* 'd', 'f' (anything but a directory), or 0 if missing. */
static int kind_at(int fd, const char *rel)
{
	struct stat sb;

	if (fstatat(fd, dot(rel), &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return S_ISDIR(sb.st_mode) ? 'd' : 'f';
}

static bool parent_is_dir(int fd, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	char *parent;
	bool r;

	if (slash == NULL)
		return true;
	parent = xstrndup(rel, (size_t)(slash - rel));
	r = kind_at(fd, parent) == 'd';
	free(parent);
	return r;
}

static void mkparents(struct rp *rp, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	char *parent;

	if (slash == NULL)
		return;
	parent = xstrndup(rel, (size_t)(slash - rel));
	sp_mkdirs(rp->copyfd, parent, 0700, NULL);
	free(parent);
}

static void write_at(int dfd, const char *rel, const void *data, size_t len)
{
	int fd = openat(dfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0 || fs_write_all(fd, data, len) < 0) {
		fprintf(stderr, "jreplay: cannot write %s: %s\n", rel, strerror(errno));
		exit(1);
	}
	close(fd);
}

/* Copies FINAL's file rel into COPY. */
static void transfer(struct rp *rp, const char *rel)
{
	struct buf b = BUF_INIT;

	if (fs_read_file(rp->finalfd, rel, &b, 1 << 30, NULL) == 0) {
		mkparents(rp, rel);
		write_at(rp->copyfd, rel, b.data ? (const void *)b.data : "", b.len);
	}
	buf_free(&b);
}

static void rmtree(struct rp *rp, const char *rel)
{
	if (kind_at(rp->copyfd, rel) == 'd')
		fs_rmtree_at(rp->copyfd, rel, NULL);
	else
		unlinkat(rp->copyfd, rel, 0);
}

static char *child_path(const char *rel, const char *name)
{
	return rel[0] ? xasprintf("%s/%s", rel, name) : xstrdup(name);
}

typedef void entry_fn(struct rp *rp, const char *rel, const char *name, bool is_dir, void *arg);

static void each_entry(struct rp *rp, int rootfd, const char *rel, entry_fn *fn, void *arg)
{
	int fd = openat(rootfd, dot(rel), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *d;
	DIR *dp;

	if (fd < 0 || (dp = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			fn(rp, rel, d->d_name, d->d_type == DT_DIR, arg);
	}
	closedir(dp);
}

static void sync_dir(struct rp *rp, const char *rel, bool subtree);

/* Which part of a folder a rescan covers: its files, its cur/ new/ tmp/
 * and metadata directories, and only with subtree its child folders. */
static bool in_scope(struct rp *rp, const char *child, bool is_dir, bool subtree)
{
	struct md_class c;

	md_classify(rp->rules, slice_cstr(child), is_dir, &c);
	if (!is_dir)
		return c.kind == MD_MESSAGE || c.kind == MD_META;
	if (c.kind == MD_DIR)
		return subtree;
	return c.kind == MD_SUBDIR || c.kind == MD_META;
}

static void sync_from_final(struct rp *rp, const char *rel, const char *name, bool is_dir,
			    void *arg)
{
	bool subtree = *(bool *)arg;
	char *child = child_path(rel, name);
	struct md_class c;

	if (in_scope(rp, child, is_dir, subtree)) {
		md_classify(rp->rules, slice_cstr(child), is_dir, &c);
		if (!is_dir)
			transfer(rp, child);
		else if (c.kind == MD_SUBDIR && slice_eq_cstr(c.name, "tmp"))
			sp_mkdirs(rp->copyfd, child, 0700, NULL); /* never its contents */
		else
			sync_dir(rp, child, subtree);
	}
	free(child);
}

static void drop_extra(struct rp *rp, const char *rel, const char *name, bool is_dir, void *arg)
{
	bool subtree = *(bool *)arg;
	char *child = child_path(rel, name);
	int fk = kind_at(rp->finalfd, child);

	if ((fk == 0 || (fk == 'd') != is_dir) && in_scope(rp, child, is_dir, subtree))
		rmtree(rp, child);
	free(child);
}

/* Makes COPY's rel equal to FINAL's (see in_scope for what that covers). */
static void sync_dir(struct rp *rp, const char *rel, bool subtree)
{
	if (kind_at(rp->finalfd, rel) != 'd') {
		if (rel[0] != '\0')
			rmtree(rp, rel);
		return;
	}
	if (rel[0] != '\0' && kind_at(rp->copyfd, rel) != 'd') {
		rmtree(rp, rel);
		sp_mkdirs(rp->copyfd, rel, 0700, NULL);
	}
	each_entry(rp, rp->copyfd, rel, drop_extra, &subtree);
	each_entry(rp, rp->finalfd, rel, sync_from_final, &subtree);
}

static void apply_file_record(struct rp *rp, const struct jrec *r, const char *p, const char *p2)
{
	switch (r->type) {
	case JR_CREATE:
	case JR_META_CHANGED:
		if (!parent_is_dir(rp->copyfd, p)) {
			anomaly(rp, "%s %s: its directory is missing", jrec_type_name(r->type), p);
			if (kind_at(rp->finalfd, p) == 'f')
				transfer(rp, p);
			break;
		}
		write_at(rp->copyfd, p, PH, PH_LEN);
		break;
	case JR_RENAME:
		if (kind_at(rp->copyfd, p) == 'f' && parent_is_dir(rp->copyfd, p2)) {
			if (renameat(rp->copyfd, p, rp->copyfd, p2) < 0)
				anomaly(rp, "rename %s -> %s: %s", p, p2, strerror(errno));
			break;
		}
		anomaly(rp, "rename %s -> %s: source or target directory missing", p, p2);
		if (kind_at(rp->finalfd, p2) == 'f')
			transfer(rp, p2);
		if (kind_at(rp->finalfd, p) == 0 && kind_at(rp->copyfd, p) == 'f')
			unlinkat(rp->copyfd, p, 0);
		break;
	case JR_UNLINK:
		if (kind_at(rp->copyfd, p) != 'f')
			anomaly(rp, "unlink %s: not there", p);
		else
			unlinkat(rp->copyfd, p, 0);
		break;
	default: break;
	}
}

static void apply_dir_record(struct rp *rp, const struct jrec *r, const char *p, const char *p2)
{
	switch (r->type) {
	case JR_FOLDER_CREATE:
		if (!parent_is_dir(rp->copyfd, p))
			anomaly(rp, "folder_create %s: its parent is missing", p);
		sp_mkdirs(rp->copyfd, p, 0700, NULL);
		break;
	case JR_FOLDER_DELETE:
		if (kind_at(rp->copyfd, p) != 'd') {
			anomaly(rp, "folder_delete %s: not there", p);
		} else if (unlinkat(rp->copyfd, p, AT_REMOVEDIR) < 0) {
			anomaly(rp, "folder_delete %s: %s", p, strerror(errno));
			rmtree(rp, p);
		}
		break;
	case JR_FOLDER_RENAME:
		if (kind_at(rp->copyfd, p) == 'd' && parent_is_dir(rp->copyfd, p2)) {
			if (renameat(rp->copyfd, p, rp->copyfd, p2) < 0) {
				anomaly(rp, "folder_rename %s -> %s: %s", p, p2, strerror(errno));
				rmtree(rp, p2);
				renameat(rp->copyfd, p, rp->copyfd, p2);
			}
			break;
		}
		anomaly(rp, "folder_rename %s -> %s: source or target parent missing", p, p2);
		sync_dir(rp, p2, true); /* a transfer of the folder */
		break;
	case JR_RESCAN: sync_dir(rp, p, (r->flags & JR_F_SUBTREE) != 0); break;
	default: break;
	}
}

static void apply(struct rp *rp, const struct jrec *r)
{
	char *p = xstrndup(r->path.p, r->path.len), *p2 = xstrndup(r->path2.p, r->path2.len);

	rp->count[r->type]++;
	if (r->type <= JR_UNLINK || r->type == JR_META_CHANGED)
		apply_file_record(rp, r, p, p2);
	else
		apply_dir_record(rp, r, p, p2);
	free(p);
	free(p2);
}

/* Fills every placeholder from FINAL at the path it ended up at. */
static void fill(struct rp *rp, const char *rel, const char *name, bool is_dir, void *arg)
{
	char *child = child_path(rel, name), buf[PH_LEN];
	struct stat sb;
	int fd;

	if (is_dir) {
		each_entry(rp, rp->copyfd, child, fill, arg);
	} else if (fstatat(rp->copyfd, child, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		   sb.st_size == (off_t)PH_LEN &&
		   (fd = openat(rp->copyfd, child, O_RDONLY | O_CLOEXEC)) >= 0) {
		bool ph = read(fd, buf, PH_LEN) == (ssize_t)PH_LEN && memcmp(buf, PH, PH_LEN) == 0;

		close(fd);
		if (ph && kind_at(rp->finalfd, child) == 'f') {
			transfer(rp, child);
			rp->filled++;
		} else if (ph) {
			printf("jreplay: %s was journaled but is not in the final tree\n", child);
			rp->unfilled++;
		}
	}
	free(child);
}

static int replay(struct rp *rp, const char *jdir)
{
	struct jreader *rd;
	struct jrec r;
	struct err e;
	bool gap;
	int rc;

	rd = jreader_open(jdir, 0, &gap, &e);
	if (rd == NULL) {
		fprintf(stderr, "jreplay: %s\n", e.msg);
		return 1;
	}
	if (gap) {
		fprintf(stderr, "jreplay: the journal does not start at LSN 1\n");
		jreader_free(&rd);
		return 1;
	}
	while ((rc = jreader_next(rd, &r, &e)) == 1)
		apply(rp, &r);
	jreader_free(&rd);
	if (rc < 0) {
		fprintf(stderr, "jreplay: %s\n", e.msg);
		return 1;
	}
	each_entry(rp, rp->copyfd, "", fill, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct rp rp = {0};
	char sep = ':';
	int opt, rc;

	while ((opt = getopt(argc, argv, "s:")) != -1) {
		if (opt != 's' || optarg[0] == '\0' || optarg[1] != '\0') {
			fprintf(stderr, "usage: jreplay [-s SEP] JOURNAL_DIR COPY FINAL\n");
			return 2;
		}
		sep = optarg[0];
	}
	if (argc - optind != 3) {
		fprintf(stderr, "usage: jreplay [-s SEP] JOURNAL_DIR COPY FINAL\n");
		return 2;
	}
	rp.copyfd = open(argv[optind + 1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rp.finalfd = open(argv[optind + 2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rp.copyfd < 0 || rp.finalfd < 0) {
		fprintf(stderr, "jreplay: cannot open %s or %s: %s\n", argv[optind + 1],
			argv[optind + 2], strerror(errno));
		return 1;
	}
	rp.rules = md_rules_new(sep, NULL);
	rc = replay(&rp, argv[optind]);
	printf("replayed:");
	for (int t = JR_CREATE; t <= JR_STOP; t++)
		printf(" %s=%" PRIu64, jrec_type_name((enum jrec_type)t), rp.count[t]);
	printf("\nrescans=%" PRIu64 " anomalies=%" PRIu64 " filled=%" PRIu64 " unfilled=%" PRIu64
	       "\n",
	       rp.count[JR_RESCAN], rp.anomalies, rp.filled, rp.unfilled);
	md_rules_free(&rp.rules);
	close(rp.copyfd);
	close(rp.finalfd);
	return rc;
}
