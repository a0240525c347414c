/*
 * watch.c — inotify events to journal records (see watch.h).
 *
 * Uses the inotify(7) system calls directly rather than libinotifytools:
 * that library keeps a watch's name after the kernel dropped the watch
 * (its remove fails with EINVAL and leaves the entry), so a directory
 * deleted and created again under the same name and then renamed keeps
 * reporting the old path; it also select()s (fd < 1024 only) and prints
 * to stderr. Here the tree of watches is ours (wtree.c).
 *
 * Directories are opened beneath mail_root without following symlinks
 * (safepath.h) and watched through /proc/self/fd/N, so the watch is on
 * exactly the directory that is then listed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "safepath.h"
#include "watch.h"
#include "wtree.h"
#include "xalloc.h"

#define WATCH_MASK                                                                                 \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF |   \
	 IN_MOVE_SELF | IN_ONLYDIR)
#define PENDING_MS	 5	     /* how long a MOVED_FROM waits for its MOVED_TO */
#define RETRY_MS	 (30 * 1000) /* retry of directories that could not be watched */
#define EVBUF_SIZE	 (64 * 1024)
#define READS_PER_CALL	 16
#define CHANGED_SLACK_NS 1000000000ULL /* timestamps are coarse */

/* A MOVED_FROM waiting for its MOVED_TO. */
struct pending {
	bool active;
	bool is_dir;
	uint32_t cookie;
	int parent_wd;
	enum md_kind kind;
	uint64_t since_ms;
	struct buf name, rel;
};

struct watcher {
	char *root;
	int rootfd;
	int ifd;
	bool proc_fd; /* /proc/self/fd works: watch what was opened */
	const struct md_rules *rules;
	watch_emit_fn *emit;
	void *ctx;
	struct wtree *tree;
	uint32_t gen; /* walk generation, for the sweep after a re-walk */
	struct pending pend;
	bool retry;
	uint64_t retry_at_ms;
	struct buf path; /* scratch */
	struct watcher_stats st;
	uint8_t evbuf[EVBUF_SIZE] __attribute__((aligned(__alignof__(struct inotify_event))));
};

/* What a walk journals about what it finds. */
struct walk {
	bool emit;	   /* a new directory: journal everything in it */
	bool rescan_new;   /* a retry: rescan what gets its first watch */
	uint64_t since_ns; /* restart: rescan what changed since */
	struct buf last;   /* last folder rescanned (cur/ and new/ share one) */
	uint64_t failed;
	int first_errno;
	char *first_failed;
};

static void emit(struct watcher *w, enum jrec_type t, uint32_t flags, struct slice p,
		 struct slice p2)
{
	w->emit(w->ctx, t, flags, p, p2);
}

static void emit1(struct watcher *w, enum jrec_type t, uint32_t flags, struct slice p)
{
	emit(w, t, flags, p, SLICE_LIT(""));
}

/* Directories that are part of the replicated structure. */
static bool dir_journaled(enum md_kind k)
{
	return k == MD_DIR || k == MD_SUBDIR || k == MD_META;
}

/* ...and of those, the ones to watch: all but tmp/. */
static bool dir_watched(const struct md_class *c)
{
	return dir_journaled(c->kind) && !(c->kind == MD_SUBDIR && slice_eq_cstr(c->name, "tmp"));
}

static bool file_replicated(enum md_kind k)
{
	return k == MD_MESSAGE || k == MD_META;
}

/* The folder a directory belongs to: itself, or the parent of cur/,
 * new/, tmp/ and courierimapkeywords/. */
static struct slice folder_of_dir(const struct md_rules *rules, struct slice rel)
{
	struct md_class c;

	if (rel.len == 0)
		return rel;
	md_classify(rules, rel, true, &c);
	return c.kind == MD_DIR ? rel : c.folder;
}

static void drop_watch(int wd, void *ctx)
{
	struct watcher *w = ctx;

	inotify_rm_watch(w->ifd, wd); /* fails harmlessly if the kernel dropped it */
}

static int read_sysctl(const char *path)
{
	struct buf b = BUF_INIT;
	int v = -1;

	if (fs_read_file(AT_FDCWD, path, &b, 64, NULL) == 0)
		v = atoi(buf_cstr(&b));
	buf_free(&b);
	return v;
}

static int add_watch(struct watcher *w, int fd, const char *rel)
{
	char p[64];

	if (w->proc_fd) {
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		return inotify_add_watch(w->ifd, p, WATCH_MASK);
	}
	char *abs = xasprintf("%s/%s", w->root, rel);
	int wd = inotify_add_watch(w->ifd, abs, WATCH_MASK | IN_DONT_FOLLOW);

	free(abs);
	return wd;
}

static void watch_failed(struct watcher *w, struct buf *rel, int err, struct walk *wk, bool covered)
{
	if (err == ENOENT || err == ENOTDIR)
		return; /* gone already: its parent's events say so */
	wk->failed++;
	if (wk->first_failed == NULL) {
		wk->first_errno = err;
		wk->first_failed = buf_strdup(rel);
	}
	w->retry = true;
	w->retry_at_ms = now_mono_ms() + RETRY_MS;
	if (!covered)
		emit1(w, JR_RESCAN, JR_F_SUBTREE, folder_of_dir(w->rules, buf_slice(rel)));
}

static void rescan_folder(struct watcher *w, struct walk *wk, struct slice folder)
{
	if (slice_eq(folder, buf_slice(&wk->last)))
		return;
	buf_set(&wk->last, folder.p, folder.len);
	emit1(w, JR_RESCAN, 0, folder);
}

static bool changed_since(const struct stat *sb, uint64_t since_ns)
{
	uint64_t c = (uint64_t)ts_ns(sb->st_ctim);

	return c + CHANGED_SLACK_NS >= since_ns;
}

static void add_tree(struct watcher *w, struct wnode *parent, const char *name, enum md_kind kind,
		     struct buf *rel, struct walk *wk, bool covered);

/* One entry of a directory being listed (rel holds its path). */
static void list_entry(struct watcher *w, struct wnode *node, int dfd, const struct dirent *d,
		       struct buf *rel, struct walk *wk, bool covered)
{
	bool is_dir = d->d_type == DT_DIR;
	struct md_class c;
	struct stat sb;

	if (d->d_type == DT_UNKNOWN && fstatat(dfd, d->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
		is_dir = S_ISDIR(sb.st_mode);
	md_classify(w->rules, buf_slice(rel), is_dir, &c);
	if (is_dir) {
		if (!dir_journaled(c.kind))
			return;
		if (wk->emit && !covered)
			emit1(w, JR_FOLDER_CREATE, 0, buf_slice(rel));
		if (dir_watched(&c))
			add_tree(w, node, d->d_name, c.kind, rel, wk, covered);
		return;
	}
	if (covered || !file_replicated(c.kind))
		return;
	if (wk->emit)
		emit1(w, c.kind == MD_META ? JR_META_CHANGED : JR_CREATE, 0, buf_slice(rel));
	else if (wk->since_ns != 0 && c.kind == MD_META &&
		 fstatat(dfd, d->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		 changed_since(&sb, wk->since_ns))
		emit1(w, JR_META_CHANGED, 0, buf_slice(rel));
}

static void list_dir(struct watcher *w, struct wnode *node, int fd, struct buf *rel,
		     struct walk *wk, bool covered)
{
	int dfd = dup(fd);
	size_t base = rel->len;
	struct dirent *d;
	DIR *dp;

	if (dfd < 0 || (dp = fdopendir(dfd)) == NULL) {
		log_warn("cannot list %s/%s: %m", w->root, buf_cstr(rel));
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (base > 0)
			buf_putc(rel, '/');
		buf_puts(rel, d->d_name);
		list_entry(w, node, fd, d, rel, wk, covered);
		buf_truncate(rel, base);
	}
	closedir(dp);
}

/* Rescans for a directory that changed while journald was stopped. */
static bool note_changed(struct watcher *w, int fd, enum md_kind kind, struct buf *rel,
			 struct walk *wk)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0 || !changed_since(&sb, wk->since_ns))
		return false;
	if (kind == MD_DIR) { /* entries may have come or gone: all of it */
		emit1(w, JR_RESCAN, JR_F_SUBTREE, buf_slice(rel));
		return true;
	}
	rescan_folder(w, wk, folder_of_dir(w->rules, buf_slice(rel)));
	return false;
}

/* Watches the directory rel (parent/name; the root if parent is NULL),
 * then lists it, so that whatever appears in it is either listed or seen
 * as an event. */
static void add_tree(struct watcher *w, struct wnode *parent, const char *name, enum md_kind kind,
		     struct buf *rel, struct walk *wk, bool covered)
{
	struct wnode *node;
	bool is_new;
	int fd, wd;

	fd = rel->len > 0 ? sp_open(w->rootfd, buf_cstr(rel), O_RDONLY | O_DIRECTORY, 0, NULL)
			  : openat(w->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		watch_failed(w, rel, errno == ELOOP ? ENOTDIR : errno, wk, covered);
		return;
	}
	wd = add_watch(w, fd, buf_cstr(rel));
	if (wd < 0) {
		watch_failed(w, rel, errno, wk, covered);
		close(fd);
		return;
	}
	node = wtree_attach(w->tree, parent, name, wd, &is_new);
	node->mark = w->gen;
	if (is_new && wk->rescan_new && !covered) {
		emit1(w, JR_RESCAN, JR_F_SUBTREE, folder_of_dir(w->rules, buf_slice(rel)));
		covered = true;
	}
	if (wk->since_ns != 0 && !covered)
		covered = note_changed(w, fd, kind, rel, wk);
	list_dir(w, node, fd, rel, wk, covered);
	close(fd);
}

/* The watch limit in force: fs.inotify.max_user_watches, or the user
 * namespace's user.max_inotify_watches if that is lower. */
static void watch_limit(const char **name_r, int *value_r)
{
	int fs = read_sysctl("/proc/sys/fs/inotify/max_user_watches");
	int us = read_sysctl("/proc/sys/user/max_inotify_watches");

	*name_r = "fs.inotify.max_user_watches";
	*value_r = fs;
	if (us >= 0 && (fs < 0 || us < fs)) {
		*name_r = "user.max_inotify_watches";
		*value_r = us;
	}
}

static void walk_done(struct watcher *w, struct walk *wk)
{
	const char *name;
	int limit;

	w->st.failed = wk->failed;
	if (wk->failed > 0 && wk->first_errno == ENOSPC) {
		watch_limit(&name, &limit);
		log_error("cannot watch %llu directories (first %s/%s): inotify watch limit reached "
			  "(%s = %d); raise it, e.g. sysctl -w %s=%d; journaled rescans for them, "
			  "retrying every %d s",
			  (unsigned long long)wk->failed, w->root, wk->first_failed, name, limit, name,
			  2 * limit, RETRY_MS / 1000);
	} else if (wk->failed > 0) {
		log_error("cannot watch %llu directories (first %s/%s): %s; journaled rescans for "
			  "them, retrying every %d s",
			  (unsigned long long)wk->failed, w->root, wk->first_failed,
			  strerror(wk->first_errno), RETRY_MS / 1000);
	}
	buf_free(&wk->last);
	free(wk->first_failed);
}

/* Walks the whole tree: watches what is not watched, fixes the paths of
 * directories that moved unseen, forgets what is gone. */
static int rewalk(struct watcher *w, struct walk *wk)
{
	struct buf rel = BUF_INIT;

	w->gen++;
	add_tree(w, NULL, "", MD_DIR, &rel, wk, false);
	buf_free(&rel);
	walk_done(w, wk);
	if (wtree_root(w->tree) == NULL || wtree_root(w->tree)->mark != w->gen)
		return -1;
	wtree_sweep(w->tree, w->gen, drop_watch, w);
	return 0;
}

int watcher_start(struct watcher *w, uint64_t changed_since_ns, struct err *e)
{
	struct walk wk = {.since_ns = changed_since_ns};

	if (rewalk(w, &wk) < 0)
		return err_sys(e, "cannot watch mail_root %s", w->root);
	log_info("watching %zu directories under %s", wtree_count(w->tree), w->root);
	return 0;
}

/* A new directory (created, or moved in from outside): watch it and
 * journal what is already in it. */
static void dir_appeared(struct watcher *w, struct wnode *parent, const char *name,
			 const struct md_class *c)
{
	struct walk wk = {.emit = true};
	struct buf rel = BUF_INIT;

	if (dir_journaled(c->kind))
		emit1(w, JR_FOLDER_CREATE, 0, buf_slice(&w->path));
	if (!dir_watched(c))
		return;
	buf_set(&rel, w->path.data, w->path.len);
	add_tree(w, parent, name, c->kind, &rel, &wk, false);
	buf_free(&rel);
	walk_done(w, &wk);
}

static void file_changed(struct watcher *w, const struct md_class *c)
{
	if (c->kind == MD_MESSAGE)
		emit1(w, JR_CREATE, 0, buf_slice(&w->path));
	else if (c->kind == MD_META)
		emit1(w, JR_META_CHANGED, 0, buf_slice(&w->path));
}

/* A MOVED_FROM whose MOVED_TO did not come: it left the watched tree. */
static void flush_pending(struct watcher *w)
{
	struct pending *p = &w->pend;
	struct wnode *parent, *child;

	p->active = false;
	if (!p->is_dir) {
		if (file_replicated(p->kind))
			emit1(w, JR_UNLINK, 0, buf_slice(&p->rel));
		return;
	}
	if (dir_journaled(p->kind))
		emit1(w, JR_FOLDER_DELETE, 0, buf_slice(&p->rel));
	parent = wtree_by_wd(w->tree, p->parent_wd);
	child = parent ? wtree_child(w->tree, parent, buf_cstr(&p->name)) : NULL;
	if (child != NULL) /* the kernel would go on watching it elsewhere */
		wtree_remove(w->tree, child, drop_watch, w);
}

static void moved_dir(struct watcher *w, struct wnode *dir, const char *name,
		      const struct md_class *c)
{
	struct pending *p = &w->pend;
	struct wnode *parent = wtree_by_wd(w->tree, p->parent_wd);
	struct wnode *child = parent ? wtree_child(w->tree, parent, buf_cstr(&p->name)) : NULL;
	bool src_j = dir_journaled(p->kind), dst_j = dir_journaled(c->kind);

	if (src_j && dst_j)
		emit(w, JR_FOLDER_RENAME, 0, buf_slice(&p->rel), buf_slice(&w->path));
	else if (src_j)
		emit1(w, JR_FOLDER_DELETE, 0, buf_slice(&p->rel));
	if (child != NULL && dir_watched(c)) {
		bool is_new;

		wtree_attach(w->tree, dir, name, child->wd, &is_new);
	} else if (child != NULL) {
		wtree_remove(w->tree, child, drop_watch, w);
	} else if (dir_watched(c)) {
		/* the source was not watched: what is in it is news */
		struct walk wk = {.emit = true};
		struct buf rel = BUF_INIT;

		if (!src_j)
			emit1(w, JR_FOLDER_CREATE, 0, buf_slice(&w->path));
		buf_set(&rel, w->path.data, w->path.len);
		add_tree(w, dir, name, c->kind, &rel, &wk, false);
		buf_free(&rel);
		walk_done(w, &wk);
	} else if (!src_j && dst_j) {
		emit1(w, JR_FOLDER_CREATE, 0, buf_slice(&w->path));
	}
}

/* A rename pair: one record where both ends are replicated alike. */
static void moved(struct watcher *w, struct wnode *dir, const char *name, const struct md_class *c,
		  bool is_dir)
{
	struct pending *p = &w->pend;

	p->active = false;
	if (is_dir) {
		moved_dir(w, dir, name, c);
		return;
	}
	if (p->kind == c->kind && file_replicated(c->kind)) {
		emit(w, JR_RENAME, 0, buf_slice(&p->rel), buf_slice(&w->path));
		return;
	}
	/* e.g. dovecot-uidlist.lock (excluded) renamed over dovecot-uidlist */
	if (file_replicated(p->kind))
		emit1(w, JR_UNLINK, 0, buf_slice(&p->rel));
	file_changed(w, c);
}

static void set_pending(struct watcher *w, const struct inotify_event *ev, const struct md_class *c)
{
	struct pending *p = &w->pend;

	p->active = true;
	p->is_dir = (ev->mask & IN_ISDIR) != 0;
	p->cookie = ev->cookie;
	p->parent_wd = ev->wd;
	p->kind = c->kind;
	p->since_ms = now_mono_ms();
	buf_set(&p->name, ev->name, strlen(ev->name));
	buf_set(&p->rel, w->path.data, w->path.len);
}

static void overflow(struct watcher *w)
{
	struct walk wk = {0};

	w->st.overflows++;
	log_warn("inotify event queue overflowed (fs.inotify.max_queued_events = %d): "
		 "re-watching the tree and journaling a full rescan",
		 read_sysctl("/proc/sys/fs/inotify/max_queued_events"));
	/* Watches first: a rescan journaled before them could miss changes. */
	if (rewalk(w, &wk) < 0)
		log_error("cannot watch mail_root %s after the overflow: %m", w->root);
	emit1(w, JR_RESCAN, JR_F_SUBTREE, SLICE_LIT(""));
}

static void root_lost(struct watcher *w, uint32_t mask)
{
	log_error("mail_root %s was %s: nothing is journaled until it is back (retrying every "
		  "%d s)",
		  w->root, mask & IN_DELETE_SELF ? "deleted" : "moved", RETRY_MS / 1000);
	w->retry = true;
	w->retry_at_ms = now_mono_ms() + RETRY_MS;
	emit1(w, JR_RESCAN, JR_F_SUBTREE, SLICE_LIT(""));
}

static void handle(struct watcher *w, const struct inotify_event *ev)
{
	bool is_dir = (ev->mask & IN_ISDIR) != 0;
	struct wnode *dir;
	struct md_class c;

	w->st.events++;
	if (w->pend.active && !((ev->mask & IN_MOVED_TO) && ev->cookie == w->pend.cookie))
		flush_pending(w);
	if (ev->mask & IN_Q_OVERFLOW) {
		overflow(w);
		return;
	}
	dir = wtree_by_wd(w->tree, ev->wd);
	if (dir == NULL)
		return; /* a watch we removed; late events */
	if (ev->mask & IN_IGNORED) {
		wtree_remove(w->tree, dir, drop_watch, w);
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		if (dir == wtree_root(w->tree))
			root_lost(w, ev->mask);
		return; /* otherwise the parent's event tells */
	}
	if (ev->len == 0 || ev->name[0] == '\0' || wtree_path(w->tree, dir, &w->path) < 0)
		return;
	if (w->path.len > 0)
		buf_putc(&w->path, '/');
	buf_puts(&w->path, ev->name);
	md_classify(w->rules, buf_slice(&w->path), is_dir, &c);
	if (ev->mask & IN_MOVED_FROM) {
		set_pending(w, ev, &c);
	} else if (ev->mask & IN_MOVED_TO) {
		if (w->pend.active)
			moved(w, dir, ev->name, &c, is_dir);
		else if (is_dir)
			dir_appeared(w, dir, ev->name, &c);
		else
			file_changed(w, &c);
	} else if (ev->mask & IN_CREATE) {
		if (is_dir)
			dir_appeared(w, dir, ev->name, &c);
		else
			file_changed(w, &c);
	} else if (ev->mask & IN_CLOSE_WRITE) {
		file_changed(w, &c);
	} else if (ev->mask & IN_DELETE) {
		struct wnode *gone = is_dir ? wtree_child(w->tree, dir, ev->name) : NULL;

		if (gone != NULL) /* free the name now; IN_IGNORED removes it */
			wtree_detach(w->tree, gone);
		if (is_dir ? dir_journaled(c.kind) : file_replicated(c.kind))
			emit1(w, is_dir ? JR_FOLDER_DELETE : JR_UNLINK, 0, buf_slice(&w->path));
	}
}

int watcher_process(struct watcher *w, struct err *e)
{
	for (int i = 0; i < READS_PER_CALL; i++) {
		ssize_t n = read(w->ifd, w->evbuf, sizeof(w->evbuf));
		size_t off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return err_sys(e, "read from inotify failed");
		while (off + sizeof(struct inotify_event) <= (size_t)n) {
			const struct inotify_event *ev = (const void *)(w->evbuf + off);

			handle(w, ev);
			off += sizeof(*ev) + ev->len;
		}
	}
	return 0;
}

int watcher_timeout_ms(const struct watcher *w)
{
	uint64_t now = now_mono_ms(), due = UINT64_MAX;

	if (w->pend.active)
		due = w->pend.since_ms + PENDING_MS;
	if (w->retry && w->retry_at_ms < due)
		due = w->retry_at_ms;
	if (due == UINT64_MAX)
		return -1;
	return due <= now ? 0 : (int)(due - now);
}

static void reopen_root(struct watcher *w)
{
	int fd = open(w->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	close(w->rootfd);
	w->rootfd = fd;
}

void watcher_tick(struct watcher *w)
{
	uint64_t now = now_mono_ms();

	if (w->pend.active && now >= w->pend.since_ms + PENDING_MS)
		flush_pending(w);
	if (w->retry && now >= w->retry_at_ms) {
		struct walk wk = {.rescan_new = true};

		w->retry = false;
		if (wtree_root(w->tree) == NULL)
			reopen_root(w); /* mail_root was deleted or moved */
		if (rewalk(w, &wk) < 0 && !w->retry) {
			w->retry = true;
			w->retry_at_ms = now + RETRY_MS;
		}
	}
}

void watcher_drain(struct watcher *w)
{
	struct err e;

	watcher_process(w, &e);
	if (w->pend.active)
		flush_pending(w);
}

void watcher_get_stats(const struct watcher *w, struct watcher_stats *st)
{
	*st = w->st;
	st->watches = wtree_count(w->tree);
}

struct watcher *watcher_new(const char *mail_root, const struct md_rules *rules,
			    watch_emit_fn *emit_fn, void *ctx, struct err *e)
{
	struct watcher *w = xcalloc(1, sizeof(*w));

	w->root = xstrdup(mail_root);
	w->rules = rules;
	w->emit = emit_fn;
	w->ctx = ctx;
	w->ifd = -1;
	w->tree = wtree_new();
	w->proc_fd = access("/proc/self/fd", X_OK) == 0;
	w->rootfd = open(mail_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->rootfd < 0) {
		err_sys(e, "cannot open mail_root %s", mail_root);
		watcher_free(&w);
		return NULL;
	}
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ifd < 0) {
		err_sys(e, "inotify_init1 failed (fs.inotify.max_user_instances = %d)",
			read_sysctl("/proc/sys/fs/inotify/max_user_instances"));
		watcher_free(&w);
		return NULL;
	}
	return w;
}

int watcher_fd(const struct watcher *w)
{
	return w->ifd;
}

void watcher_free(struct watcher **wp)
{
	struct watcher *w = *wp;

	if (w == NULL)
		return;
	if (w->ifd >= 0)
		close(w->ifd); /* removes every watch */
	if (w->rootfd >= 0)
		close(w->rootfd);
	wtree_free(&w->tree);
	buf_free(&w->pend.name);
	buf_free(&w->pend.rel);
	buf_free(&w->path);
	free(w->root);
	free(w);
	*wp = NULL;
}
