/*
 * scan.c — folder listings, folder digests, the folder walk and the
 * digest cache (see scan.h).
 *
 * Everything is opened relative to directory descriptors: the folder
 * through safepath.h beneath the root, its entries with fstatat(...,
 * AT_SYMLINK_NOFOLLOW) and openat(..., O_NOFOLLOW) on that descriptor, so
 * no symlink is followed and no path string is resolved twice.
 *
 * SECURITY: folder names may come from the peer (LIST_REQ, DIGEST_REQ);
 * they are checked with sp_check() and opened with sp_open(). The cache
 * file is local state but is still parsed defensively: a wrong checksum,
 * version or length discards it.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "safepath.h"
#include "scan.h"
#include "xalloc.h"

#define SCAN_PAIRS     4		/* pairs of listings before giving up on agreement */
#define HASH_ROUNDS    3		/* attempts when files vanish while being hashed */
#define QUIET_NS       (50LL * 1000000) /* directory mtimes older than this are settled */
#define WALK_MAX_DEPTH 128
#define COURIER_DIR    "courierimapkeywords"
#define NSTAMPDIRS     4 /* ".", "cur", "new", COURIER_DIR: watched during a listing */

/* Opens a folder beneath rootfd for reading ("" = the root itself). */
static int open_folder(int rootfd, const char *folder, int flags, struct err *e)
{
	int fd;

	if (*folder != '\0')
		return sp_open(rootfd, folder, flags | O_DIRECTORY, 0, e);
	fd = openat(rootfd, ".", flags | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? err_sys(e, "cannot open the mail root") : fd;
}

/* A folder that is missing, or not a directory we may enter, is absent. */
static bool absent_errno(int err)
{
	return err == ENOENT || err == ENOTDIR || err == ELOOP;
}

/* ------------------------------------------------------------ listings */

static bool is_message(const char *name)
{
	return strncmp(name, "cur/", 4) == 0 || strncmp(name, "new/", 4) == 0;
}

static struct scan_entry *list_add(struct folder_list *l, const char *name, const struct stat *st)
{
	struct scan_entry *en;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	en = &l->v[l->n++];
	memset(en, 0, sizeof(*en));
	en->name = xstrdup(name);
	en->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
	en->mtime_ns = ts_ns(st->st_mtim);
	en->mode = st->st_mode;
	en->uid = st->st_uid;
	en->gid = st->st_gid;
	en->nlink = (uint32_t)st->st_nlink;
	en->dev = st->st_dev;
	en->ino = st->st_ino;
	return en;
}

void folder_list_free(struct folder_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct scan_entry *)a)->name, ((const struct scan_entry *)b)->name);
}

static int name_cmp(const char *a, struct slice b)
{
	size_t alen = strlen(a), n = alen < b.len ? alen : b.len;
	int c = memcmp(a, b.p, n);

	if (c != 0)
		return c;
	return alen < b.len ? -1 : alen > b.len ? 1 : 0;
}

const struct scan_entry *folder_list_find(const struct folder_list *l, struct slice name)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = name_cmp(l->v[mid].name, name);

		if (c == 0)
			return &l->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Opens a directory beneath dfd for readdir; NULL with errno on failure. */
static DIR *open_dir_at(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (d == NULL) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return d;
}

/* Adds the regular files of subdirectory sub whose "sub/name" classifies
 * as want (messages in cur/ and new/, metadata in COURIER_DIR). Clears
 * *clean if an entry vanished between readdir and fstatat. */
static int list_sub(int dfd, const struct md_rules *rules, const char *sub, enum md_kind want,
		    struct folder_list *out, bool *clean, struct err *e)
{
	DIR *d = open_dir_at(dfd, sub);
	struct buf rel = BUF_INIT;
	struct dirent *de;
	int r = 0;

	if (d == NULL) {
		*clean = false;
		return absent_errno(errno) ? 0 : err_sys(e, "cannot open %s", sub);
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct md_class c;
		struct stat st;

		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		buf_reset(&rel);
		buf_printf(&rel, "%s/%s", sub, de->d_name);
		md_classify(rules, buf_slice(&rel), false, &c);
		if (c.kind != want)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) {
				*clean = false; /* renamed away meanwhile */
				continue;
			}
			r = err_sys(e, "cannot stat %s", buf_cstr(&rel));
			break;
		}
		if (S_ISREG(st.st_mode))
			list_add(out, buf_cstr(&rel), &st);
	}
	if (r == 0 && errno != 0)
		r = err_sys(e, "cannot read directory %s", sub);
	closedir(d);
	buf_free(&rel);
	return r;
}

/* Directories whose mtimes tell whether a listing saw a quiet folder. */
static const char *const watched[NSTAMPDIRS] = {".", "cur", "new", COURIER_DIR};

static int stamp_slot(const char *name)
{
	for (int i = 0; i < NSTAMPDIRS; i++) {
		if (strcmp(name, watched[i]) == 0)
			return i;
	}
	return -1;
}

/* Lists one entry of the folder directory itself. */
static int list_top(int dfd, const struct md_rules *rules, const char *name,
		    struct folder_list *out, int64_t mt[NSTAMPDIRS], bool *clean, struct err *e)
{
	struct md_class c;
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		*clean = false;
		return errno == ENOENT ? 0 : err_sys(e, "cannot stat %s", name);
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return 0; /* symlinks, devices, sockets: never listed */
	md_classify(rules, slice_cstr(name), S_ISDIR(st.st_mode), &c);
	if (S_ISREG(st.st_mode)) {
		if (c.kind == MD_META)
			list_add(out, name, &st);
		return 0;
	}
	if (c.kind == MD_SUBDIR) {
		list_add(out, name, &st);
		if (strcmp(name, "tmp") == 0)
			return 0;
		mt[stamp_slot(name)] = ts_ns(st.st_mtim);
		return list_sub(dfd, rules, name, MD_MESSAGE, out, clean, e);
	}
	if (c.kind == MD_META) { /* COURIER_DIR */
		list_add(out, name, &st);
		mt[stamp_slot(name)] = ts_ns(st.st_mtim);
		return list_sub(dfd, rules, name, MD_META, out, clean, e);
	}
	return 0; /* subfolders are folders of their own; the rest is not replicated */
}

/* One listing. *clean_r: no entry vanished while it was taken (a sure
 * sign of a concurrent change). *quiet_r: also, the watched directories'
 * mtimes did not move during it and are old enough that a change would
 * have moved them. */
static int list_once(int dfd, const struct md_rules *rules, struct folder_list *out, bool *clean_r,
		     bool *quiet_r, struct err *e)
{
	int64_t before[NSTAMPDIRS], after[NSTAMPDIRS], start = (int64_t)now_real_ns();
	struct dirent *de;
	struct stat st;
	DIR *d;
	int r = 0;

	for (int i = 0; i < NSTAMPDIRS; i++)
		before[i] = after[i] = -1;
	if (fstat(dfd, &st) < 0)
		return err_sys(e, "cannot stat folder");
	list_add(out, ".", &st);
	before[0] = ts_ns(st.st_mtim);
	d = open_dir_at(dfd, ".");
	if (d == NULL)
		return err_sys(e, "cannot open folder");
	while (r == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = list_top(dfd, rules, de->d_name, out, before, clean_r, e);
	}
	if (r == 0 && errno != 0)
		r = err_sys(e, "cannot read folder");
	closedir(d);
	if (r < 0)
		return -1;
	qsort(out->v, out->n, sizeof(*out->v), entry_cmp);

	*quiet_r = *clean_r;
	for (int i = 0; i < NSTAMPDIRS; i++) {
		if (fstatat(dfd, watched[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			after[i] = ts_ns(st.st_mtim);
		if (before[i] != after[i] || after[i] > start - QUIET_NS)
			*quiet_r = false;
	}
	return 0;
}

static bool lists_equal(const struct folder_list *a, const struct folder_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct scan_entry *x = &a->v[i], *y = &b->v[i];

		if (strcmp(x->name, y->name) != 0 || x->size != y->size ||
		    x->mtime_ns != y->mtime_ns || x->mode != y->mode || x->ino != y->ino)
			return false;
	}
	return true;
}

/* Re-lists until a listing stayed quiet, or two clean listings taken back
 * to back agree. Between pairs that did not, it backs off (1, 2, 4 ms) so
 * that a gap can open in a burst of changes; after SCAN_PAIRS it uses the
 * last listing. */
static int list_stable(int dfd, const struct md_rules *rules, const char *folder,
		       struct folder_list *out, struct err *e)
{
	struct folder_list prev = {0};
	bool quiet = false, clean, prev_clean = false, agreed = false;
	int tries;

	for (tries = 1;; tries++) {
		clean = true;
		if (list_once(dfd, rules, out, &clean, &quiet, e) < 0) {
			folder_list_free(&prev);
			folder_list_free(out);
			return -1;
		}
		agreed =
		    quiet || (tries % 2 == 0 && clean && prev_clean && lists_equal(&prev, out));
		if (agreed || tries == 2 * SCAN_PAIRS)
			break;
		if (tries % 2 == 0)
			usleep(1000u << (tries / 2 - 1));
		folder_list_free(&prev);
		prev = *out;
		prev_clean = clean;
		memset(out, 0, sizeof(*out));
	}
	folder_list_free(&prev);
	if (!agreed)
		log_debug("folder listing did not settle after %d tries, using the last folder=%s",
			  tries, folder);
	return 0;
}

int scan_hash_entry(int dfd, struct scan_entry *en, struct err *e)
{
	struct stat st, st2;
	int fd, r = -1;

	fd = sp_open(dfd, en->name, O_RDONLY | O_NONBLOCK, 0, e);
	if (fd < 0)
		return absent_errno(errno) ? 1 : -1;
	for (int i = 0; i < HASH_ROUNDS; i++) {
		if (fstat(fd, &st) < 0) {
			r = err_sys(e, "cannot stat %s", en->name);
			break;
		}
		if (!S_ISREG(st.st_mode)) {
			r = 1;
			break;
		}
		if (sha256_fd(fd, en->sha256, NULL, e) < 0 || fstat(fd, &st2) < 0) {
			r = err_prefix(e, "cannot hash %s", en->name);
			break;
		}
		r = 0;
		if (st.st_size == st2.st_size && ts_ns(st.st_mtim) == ts_ns(st2.st_mtim))
			break;
	}
	if (r == 0) {
		/* Describe the content that was hashed. */
		en->has_hash = true;
		en->size = (uint64_t)st2.st_size;
		en->mtime_ns = ts_ns(st2.st_mtim);
		en->mode = st2.st_mode;
		en->nlink = (uint32_t)st2.st_nlink;
	}
	close(fd);
	return r;
}

/* Hashes metadata files, and messages when deep. A file that vanished
 * makes it return 1 (re-list), or is dropped when drop is set. */
static int hash_entries(int dfd, struct folder_list *l, bool deep, bool drop, struct err *e)
{
	size_t i = 0;

	while (i < l->n) {
		struct scan_entry *en = &l->v[i];
		int r = 0;

		if (S_ISREG(en->mode) && (deep || !is_message(en->name)))
			r = scan_hash_entry(dfd, en, e);
		if (r < 0)
			return -1;
		if (r == 1 && !drop)
			return 1;
		if (r == 1) {
			log_debug("file vanished while being listed, left out name=%s", en->name);
			free(en->name);
			memmove(en, en + 1, (l->n - i - 1) * sizeof(*en));
			l->n--;
			continue;
		}
		i++;
	}
	return 0;
}

int scan_folder(int rootfd, const struct md_rules *rules, const char *folder, bool deep,
		struct folder_list *out, struct err *e)
{
	int dfd, r = 0;

	memset(out, 0, sizeof(*out));
	dfd = open_folder(rootfd, folder, O_RDONLY, e);
	if (dfd < 0)
		return absent_errno(errno) ? 1 : -1;
	for (int round = 1; round <= HASH_ROUNDS; round++) {
		folder_list_free(out);
		r = list_stable(dfd, rules, folder, out, e);
		if (r == 0)
			r = hash_entries(dfd, out, deep, round == HASH_ROUNDS, e);
		if (r != 1)
			break;
	}
	close(dfd);
	if (r < 0) {
		folder_list_free(out);
		return err_prefix(e, "cannot list folder '%s'", folder);
	}
	return 0;
}

/* ------------------------------------------------------------- digests */

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

void scan_digest(const struct folder_list *l, bool deep, uint8_t out[WIRE_DIGEST_LEN])
{
	static const char tag[] = "mdrepl folder digest v1";
	struct sha256 *h = sha256_new();
	uint8_t full[SHA256_LEN], hdr[8];

	sha256_update(h, tag, sizeof(tag)); /* with its NUL */
	sha256_update(h, &(uint8_t){deep}, 1);
	put_be(hdr, l->n, 8);
	sha256_update(h, hdr, 8);
	for (size_t i = 0; i < l->n; i++) {
		const struct scan_entry *en = &l->v[i];
		size_t len = strlen(en->name);
		bool file = S_ISREG(en->mode);
		uint8_t rec[1 + 4 + 8 + 8 + 1]; /* type, mode, size, mtime, hashed */

		put_be(rec, len, 4);
		sha256_update(h, rec, 4);
		sha256_update(h, en->name, len);
		rec[0] = file ? 'f' : 'd';
		put_be(rec + 1, en->mode & 07777, 4);
		if (!file) {
			sha256_update(h, rec, 5);
			continue;
		}
		put_be(rec + 5, en->size, 8);
		put_be(rec + 13, (uint64_t)en->mtime_ns, 8);
		rec[21] = en->has_hash && (deep || !is_message(en->name));
		sha256_update(h, rec, sizeof(rec));
		if (rec[21])
			sha256_update(h, en->sha256, SHA256_LEN);
	}
	sha256_final(h, full);
	sha256_free(&h);
	memcpy(out, full, WIRE_DIGEST_LEN);
}

void scan_count(const struct folder_list *l, struct folder_counts *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < l->n; i++) {
		if (S_ISREG(l->v[i].mode) && is_message(l->v[i].name)) {
			out->messages++;
			out->bytes += l->v[i].size;
		}
	}
}

/* ---------------------------------------------------------------- walk */

/* A growable array of strings. */
struct names {
	char **v;
	size_t n, cap;
};

static void names_add(struct names *l, const char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = xstrdup(s);
}

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

struct walk {
	const struct md_rules *rules;
	struct names found;
};

/* True if relpath names a directory that is a folder (scan.h). */
static bool is_folder(const struct md_rules *rules, struct slice relpath)
{
	struct md_class c;

	md_classify(rules, relpath, true, &c);
	return c.kind == MD_DIR;
}

/* Names of the subfolders of dfd, whose path is path. */
static int child_folders(struct walk *w, int dfd, struct buf *path, struct names *kids,
			 struct err *e)
{
	DIR *d = open_dir_at(dfd, ".");
	size_t base = path->len;
	struct dirent *de;
	int r = 0;

	if (d == NULL)
		return err_sys(e, "cannot read directory '%s'", buf_cstr(path));
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (base > 0)
			buf_putc(path, '/');
		buf_puts(path, de->d_name);
		if (path->len > SP_PATH_MAX)
			log_warn("path too long to replicate, skipped path=%s", buf_cstr(path));
		else if (is_folder(w->rules, buf_slice(path)))
			names_add(kids, de->d_name);
		buf_truncate(path, base);
	}
	if (errno != 0)
		r = err_sys(e, "cannot read directory '%s'", buf_cstr(path));
	closedir(d);
	return r;
}

static int walk_dir(struct walk *w, int dfd, struct buf *path, unsigned depth, struct err *e)
{
	struct names kids = {0};
	size_t base = path->len;
	int r;

	names_add(&w->found, buf_cstr(path));
	if (depth >= WALK_MAX_DEPTH)
		return err_set(e, ELOOP, "folder tree deeper than %d levels at '%s'",
			       WALK_MAX_DEPTH, buf_cstr(path));
	r = child_folders(w, dfd, path, &kids, e);
	for (size_t i = 0; r == 0 && i < kids.n; i++) {
		int cfd = openat(dfd, kids.v[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (cfd < 0) {
			if (absent_errno(errno))
				continue; /* removed, or replaced by a symlink, meanwhile */
			r = err_sys(e, "cannot open '%s/%s'", buf_cstr(path), kids.v[i]);
			break;
		}
		if (base > 0)
			buf_putc(path, '/');
		buf_puts(path, kids.v[i]);
		r = walk_dir(w, cfd, path, depth + 1, e);
		buf_truncate(path, base);
		close(cfd);
	}
	names_free(&kids);
	return r;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* True if every component of prefix is a folder, so that walking it is
 * walking what a walk from the root would reach. */
static bool prefix_ok(const struct md_rules *rules, const char *prefix)
{
	size_t len = strlen(prefix);

	for (size_t i = 1; i <= len; i++) {
		if ((i == len || prefix[i] == '/') && !is_folder(rules, (struct slice){prefix, i}))
			return false;
	}
	return true;
}

int scan_walk(int rootfd, const struct md_rules *rules, const char *prefix, scan_folder_fn *fn,
	      void *ctx, struct err *e)
{
	struct walk w = {.rules = rules};
	struct buf path = BUF_INIT;
	int dfd, r = 0;

	if (*prefix != '\0') {
		if (sp_check(slice_cstr(prefix), e) < 0)
			return -1;
		if (!prefix_ok(rules, prefix))
			return 0; /* not a folder: nothing to walk */
	}
	dfd = open_folder(rootfd, prefix, O_RDONLY, e);
	if (dfd < 0)
		return absent_errno(errno) ? 0 : -1;
	buf_puts(&path, prefix);
	r = walk_dir(&w, dfd, &path, 0, e);
	close(dfd);
	buf_free(&path);
	if (r == 0) {
		/* Sorted whole paths keep parents first ("a" < "a.b" < "a/x"),
		 * so both nodes can merge their walks with strcmp(). */
		if (w.found.n > 1)
			qsort(w.found.v, w.found.n, sizeof(*w.found.v), str_cmp);
		for (size_t i = 0; i < w.found.n && r == 0; i++)
			r = fn(w.found.v[i], ctx);
	}
	names_free(&w.found);
	return r;
}
