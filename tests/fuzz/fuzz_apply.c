/*
 * fuzz_apply.c — libFuzzer target for the standby's apply engine
 * (syncd/apply.c, pending.c) driven by hostile mutations, as a compromised
 * primary would send them (`make fuzz`, see tests/fuzz/README; the input
 * format and the starting tree are in fuzz_apply.h).
 *
 * Every input starts from the same small mail tree in the scratch
 * directory, next to a directory "outside" that the tree's planted
 * symlinks point into. Oracles beyond "no crash, no sanitizer report":
 *   - nothing outside the mail root changes (names, types, modes,
 *     contents);
 *   - inside it, every file is a message or a metadata file by
 *     md_classify() (nothing in tmp/, nothing excluded, nothing else), no
 *     file is set-user-ID or set-group-ID, no symlink is created (only the
 *     planted ones remain, pointing where they pointed), and the staging
 *     directory is empty once the engine is restarted;
 *   - a refused operation carries a wire error code (apply.h).
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "delta.h"
#include "fsutil.h"
#include "fuzz_apply.h"
#include "fuzzutil.h"
#include "hash.h"
#include "safepath.h"

static char base[512], root[600], outside[600];
static struct md_rules *rules;
static struct buf outside_before = BUF_INIT;

/* ------------------------------------------------------------ the tree */

static void make_tree(void)
{
	static const char *const dirs[] = {"u",	 "u/Maildir",	   "u/Maildir/cur",
					   "u/Maildir/new", "u/Maildir/tmp", "u/Maildir/.Sent",
					   "u/Maildir/.Sent/cur", "u/Maildir/.Sent/new",
					   "u/Maildir/.Sent/tmp"};
	static const char *const links[][2] = {
	    {FA_EVIL_DIR, "../../../outside"},
	    {FA_EVIL_MSG, "../../../../outside/secret"},
	    {FA_EVIL_META, "../../../../outside/secret"},
	    {FA_EVIL_USER, "../outside"},
	};
	int fd;

	fz_empty_dir(base);
	fz_empty_dir(root);
	fz_empty_dir(outside);
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (mkdirat(fd, dirs[i], 0700) < 0)
			abort();
	}
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (symlinkat(links[i][1], fd, links[i][0]) < 0)
			abort();
	}
	close(fd);
	fz_write(root, FA_MSG, FA_MSG_BODY, strlen(FA_MSG_BODY));
	fz_write(root, FA_UIDLIST, FA_UIDS, strlen(FA_UIDS));
	fz_write(outside, "secret", "secret\n", 7);
	fz_write(outside, "dovecot-uidlist", "outside\n", 8);
	for (int i = 0; i < 3; i++) {
		char d[700];

		snprintf(d, sizeof(d), "%s/%s", outside, (const char *[]){"cur", "new", "tmp"}[i]);
		fz_empty_dir(d);
	}
}

/* Appends a description of everything below dirfd (names, types, modes,
 * file contents; not times) to out, in name order. */
static void describe(int dirfd, const char *prefix, struct buf *out)
{
	struct dirent **v;
	char fdpath[64];
	int n;

	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", dirfd);
	n = scandir(fdpath, &v, NULL, alphasort);
	if (n < 0)
		abort();
	for (int i = 0; i < n; i++) {
		const char *name = v[i]->d_name;
		struct stat st;

		if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
		    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			buf_printf(out, "%s/%s %o\n", prefix, name, (unsigned)st.st_mode);
			if (S_ISREG(st.st_mode)) {
				int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
				uint8_t h[SHA256_LEN];

				if (fd < 0 || sha256_fd(fd, h, NULL, NULL) < 0)
					abort();
				hex_append(out, h, 8);
				buf_putc(out, '\n');
				close(fd);
			} else if (S_ISDIR(st.st_mode)) {
				int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
				char p[4200];

				snprintf(p, sizeof(p), "%s/%s", prefix, name);
				describe(sub, p, out);
				close(sub);
			}
		}
		free(v[i]);
	}
	free(v);
}

static void describe_outside(struct buf *out)
{
	int fd = open(outside, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	buf_reset(out);
	describe(fd, "", out);
	close(fd);
}

/* Checks every entry of the mail root (see the file comment). */
static void check_root(int dirfd, const char *rel, size_t *nlinks)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;

	if (d == NULL)
		abort();
	while ((de = readdir(d)) != NULL) {
		char path[SP_PATH_MAX + 300], target[256];
		struct md_class c;
		struct stat st;
		ssize_t n;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			abort();
		if (S_ISLNK(st.st_mode)) {
			n = readlinkat(dirfd, de->d_name, target, sizeof(target) - 1);
			if (n < 0)
				abort();
			target[n] = '\0';
			if (strcmp(target, "../../../outside") != 0 &&
			    strcmp(target, "../../../../outside/secret") != 0 &&
			    strcmp(target, "../outside") != 0) {
				fprintf(stderr, "symlink %s -> %s created\n", path, target);
				abort();
			}
			++*nlinks;
			continue;
		}
		if (strcmp(path, APPLY_TMPDIR) == 0) {
			/* Checked empty after a restart of the engine. */
			continue;
		}
		md_classify(rules, slice_cstr(path), S_ISDIR(st.st_mode), &c);
		if (S_ISDIR(st.st_mode)) {
			if (c.kind != MD_DIR && c.kind != MD_SUBDIR && c.kind != MD_META) {
				fprintf(stderr, "directory %s (kind %d) created\n", path, c.kind);
				abort();
			}
			check_root(openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW),
				   path, nlinks);
		} else if (!S_ISREG(st.st_mode) || (c.kind != MD_MESSAGE && c.kind != MD_META) ||
			   (st.st_mode & (S_ISUID | S_ISGID))) {
			fprintf(stderr, "file %s (mode %o, kind %d) created\n", path,
				(unsigned)st.st_mode, c.kind);
			abort();
		}
	}
	closedir(d);
}

static void check_staging_empty(int rootfd)
{
	int fd = openat(rootfd, APPLY_TMPDIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (d == NULL)
		abort();
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			abort();
	}
	closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(base, sizeof(base), "%s/apply", fz_scratch());
	snprintf(root, sizeof(root), "%s/root", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	rules = md_rules_new(':', NULL);
	make_tree();
	describe_outside(&outside_before);
	return 0;
}

/* ------------------------------------------------------------- fix-ups */

/* The content of path beneath rootfd (regular files only), or -1. */
static int read_current(int rootfd, struct slice path, struct buf *out)
{
	char *p = strndup(path.p, path.len);
	int fd = sp_open(rootfd, p, O_RDONLY | O_NONBLOCK, 0, NULL), r;

	free(p);
	if (fd < 0)
		return -1;
	buf_reset(out);
	r = fs_read_fd(fd, out, 1 << 20, NULL);
	close(fd);
	return r;
}

/* Makes the sizes and hashes in m agree with the content, the way an
 * honest primary would send them. */
static void fix_up(int rootfd, uint8_t type, union w_msg *m)
{
	struct buf raw = BUF_INIT, cur = BUF_INIT;

	if (type == W_PUT && !(m->put.flags & WF_CHUNKED)) {
		struct slice body = m->put.body;

		if (m->put.flags & WF_DEFLATE) {
			if (wire_inflate(m->put.body, m->put.raw_len, &raw, NULL) < 0)
				goto out;
			body = buf_slice(&raw);
		}
		m->put.size = body.len;
		sha256_buf(body.p, body.len, m->put.sha256);
	} else if (type == W_LINK && read_current(rootfd, m->link.from, &cur) == 0) {
		m->link.size = cur.len;
		sha256_buf(cur.data, cur.len, m->link.sha256);
	} else if (type == W_DELTA && !(m->delta.flags & WF_DEFLATE) &&
		   read_current(rootfd, m->delta.path, &cur) == 0) {
		int bfd = memfd_create("base", MFD_CLOEXEC), ofd = memfd_create("out", MFD_CLOEXEC);
		uint64_t size;

		sha256_buf(cur.data, cur.len, m->delta.base_sha256);
		if (bfd >= 0 && ofd >= 0 && fs_write_all(bfd, cur.data, cur.len) == 0 &&
		    delta_patch(bfd, m->delta.delta, ofd, 1 << 20, &size, NULL) == 0 &&
		    sha256_fd(ofd, m->delta.result_sha256, NULL, NULL) == 0)
			m->delta.result_size = size;
		close(bfd);
		close(ofd);
	}
out:
	buf_free(&raw);
	buf_free(&cur);
}

/* ------------------------------------------------------------- the run */

struct run {
	struct apply_opts o;
	struct apply *a;
	struct buf scratch;
	bool failed;
};

static void restart(struct run *r)
{
	struct err e = {0};

	apply_free(&r->a);
	r->a = apply_new(&r->o, &e);
	if (r->a == NULL) {
		fprintf(stderr, "apply_new: %s\n", e.msg);
		abort();
	}
	r->failed = false;
}

static void refused(struct run *r, const struct err *e)
{
	if (e->code < WE_PROTOCOL || e->code > WE_NOTFOUND) {
		fprintf(stderr, "refusal without a wire error code (%d): %s\n", e->code, e->msg);
		abort();
	}
	r->failed = true;
}

/* As syncd's session does: a refused operation fails the batch; at its
 * end the batch is aborted and the session ends (the engine restarts). */
static void one(struct run *r, uint8_t type, union w_msg *m)
{
	struct err e = {0};
	int rc;

	if (type == W_BATCH_END) {
		if (!r->failed && apply_commit(r->a, &e) < 0)
			refused(r, &e);
		if (r->failed)
			restart(r);
		return;
	}
	if (r->failed)
		return;
	switch (type) {
	case W_PUT: rc = apply_put(r->a, &m->put, &e); break;
	case W_DATA: rc = apply_data(r->a, &m->data, &e); break;
	case W_RENAME:
		wire_rename_to(&m->rename, &r->scratch);
		m->rename.to = buf_slice(&r->scratch);
		rc = apply_rename(r->a, &m->rename, &e);
		break;
	case W_LINK: rc = apply_link(r->a, &m->link, &e); break;
	case W_UNLINK: rc = apply_unlink(r->a, &m->unlink, &e); break;
	case W_MKDIR: rc = apply_mkdir(r->a, &m->mkdir, &e); break;
	case W_RMTREE: rc = apply_rmtree(r->a, &m->rmtree, &e); break;
	case W_DELTA: rc = apply_delta(r->a, &m->delta, &e); break;
	case W_SETATTR: rc = apply_setattr(r->a, &m->setattr, &e); break;
	default: return; /* not a mutation: the session would end */
	}
	if (rc < 0)
		refused(r, &e);
	else if (rc != 0 && rc != 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r = {.scratch = BUF_INIT};
	struct err e = {0};
	size_t off = 1, nlinks = 0;
	int rootfd;

	if (size < 1)
		return 0;
	make_tree();
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r.o = (struct apply_opts){.rootfd = rootfd,
				  .rules = rules,
				  .use_syncfs = !(data[0] & FA_FSYNC),
				  .max_pending = data[0] & FA_SMALLPEND ? 2 : 0};
	sp_set_use_openat2(!(data[0] & FA_WALK));
	restart(&r);
	while (size - off >= 3) {
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		struct w_frame f = {data[off], data + off + 3, len};
		union w_msg m;

		if (len > size - off - 3)
			break;
		off += 3 + len;
		if (wire_decode(&f, &m, NULL) < 0)
			continue;
		if (data[0] & FA_FIX)
			fix_up(rootfd, f.type, &m);
		one(&r, f.type, &m);
	}
	if (!r.failed && apply_commit(r.a, &e) < 0)
		refused(&r, &e);
	restart(&r); /* leftovers of a crash are cleared at the next start */
	apply_free(&r.a);
	buf_free(&r.scratch);

	check_root(dup(rootfd), "", &nlinks);
	if (nlinks > 4)
		abort();
	check_staging_empty(rootfd);
	close(rootfd);
	describe_outside(&r.scratch);
	if (!slice_eq(buf_slice(&r.scratch), buf_slice(&outside_before))) {
		fprintf(stderr, "outside the mail root changed:\n%s---\n%s",
			buf_cstr(&outside_before), buf_cstr(&r.scratch));
		abort();
	}
	buf_free(&r.scratch);
	return 0;
}
