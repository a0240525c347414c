/*
 * mailgen.c — realistic Maildir++ trees and mail workloads, seeded and
 * repeatable, for the end-to-end tests, the benchmarks and the demo.
 *
 *   mailgen populate DIR [--users N] [--messages M] [--folders F] [--seed S]
 *                        [--big PERMILLE] [--domains D]
 *       Creates users (dom<d>/user<u>/Maildir) with INBOX and Maildir++
 *       folders, messages with real headers and bodies (lognormal sizes,
 *       a few multi-megabyte attachments), flags, mtimes in the past,
 *       dovecot-uidlist, dovecot-keywords, subscriptions, maildirfolder,
 *       and Dovecot index files (which replication must ignore).
 *
 *   mailgen load DIR [--rate R] [--seconds T] [--seed S] [--standby SDIR
 *                     --standby-state STATEDIR] [--mix deliver,flag,move,expunge,uidlist]
 *       Runs a live workload at R operations per second for T seconds:
 *       deliveries (tmp/ then rename into new/), flag changes (renames in
 *       cur/, new/ -> cur/), moves between folders, copies as hard links,
 *       expunges and dovecot-uidlist rewrites (via a .lock file renamed
 *       over). With --standby it also watches the standby's tree and state
 *       directory and reports, per delivered message, the time from its
 *       delivery on the primary to its being durable on the standby
 *       (visible there, then covered by the next position update that
 *       mdrepl-syncd writes after the batch's final sync): p50, p99, max.
 *
 *   mailgen burst DIR [--flags N] [--deliver N] [--expunge N] [--move N] [--seed S]
 *       A one-off burst of changes, for catch-up tests and benchmarks.
 *
 * Not installed; the tests and bench scripts run it from the build tree.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "xalloc.h"

/* ------------------------------------------------------------------ rng */

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static double rnd_unit(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

/* Lognormal message size, median ~6 KB; a few big attachments. */
static size_t message_size(unsigned big_permille)
{
	double u1 = rnd_unit() + 1e-12, u2 = rnd_unit();
	double z = sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2);
	double s = exp(log(6000.0) + 1.1 * z);

	if (rnd_below(1000) < big_permille)
		s = 1e6 + (double)rnd_below(4000000);
	if (s < 400)
		s = 400;
	if (s > 20e6)
		s = 20e6;
	return (size_t)s;
}

/* -------------------------------------------------------------- content */

static const char *const words[] = {
	"meeting", "report", "invoice", "project", "the", "and", "schedule", "please",
	"review", "attached", "budget", "quarter", "update", "server", "backup", "thanks",
	"tomorrow", "deadline", "draft", "customer", "support", "ticket", "release", "notes",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static void add_words(struct buf *b, size_t target)
{
	size_t col = 0;

	while (b->len < target) {
		const char *w = words[rnd_below(NWORDS)];

		buf_puts(b, w);
		col += strlen(w) + 1;
		if (col > 70) {
			buf_puts(b, "\r\n");
			col = 0;
		} else {
			buf_putc(b, ' ');
		}
	}
}

static void add_base64ish(struct buf *b, size_t target)
{
	static const char alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	while (b->len < target) {
		for (int i = 0; i < 76; i++)
			buf_putc(b, alpha[rnd_below(64)]);
		buf_puts(b, "\r\n");
	}
}

static void make_message(struct buf *b, size_t size, unsigned n, const char *user)
{
	time_t t = 1700000000 + (time_t)rnd_below(30000000);
	char date[64];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_reset(b);
	buf_printf(b,
		   "Return-Path: <sender%u@example.org>\r\nReceived: from mx.example.org by "
		   "mail.example.net; %s\r\nFrom: Sender %u <sender%u@example.org>\r\nTo: %s\r\n"
		   "Subject: %s %s %u\r\nDate: %s\r\nMessage-ID: <%016" PRIx64
		   "@example.org>\r\nMIME-Version: 1.0\r\n",
		   n % 97, date, n % 97, n % 97, user, words[rnd_below(NWORDS)],
		   words[rnd_below(NWORDS)], n, date, rnd());
	if (size > 100000) {
		buf_puts(b, "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
			    "Content-Type: text/plain\r\n\r\n");
		add_words(b, b->len + 600);
		buf_puts(b, "\r\n--b1\r\nContent-Type: application/pdf\r\n"
			    "Content-Transfer-Encoding: base64\r\n\r\n");
		add_base64ish(b, size);
		buf_puts(b, "--b1--\r\n");
	} else {
		buf_puts(b, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
		add_words(b, size);
	}
}

/* ----------------------------------------------------------- file system */

/* snprintf that refuses to truncate a path. */
static void pathf(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void pathf(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "mailgen: path too long\n");
		exit(1);
	}
}

static void die(const char *what)
{
	fprintf(stderr, "mailgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || fs_write_all(fd, data, len) < 0 || close(fd) < 0)
		die(path);
}

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = {{t, (long)rnd_below(1000000000)}, {t, (long)rnd_below(1000000000)}};

	if (utimensat(AT_FDCWD, path, ts, 0) < 0)
		die(path);
}

static void mkdirs(const char *path)
{
	struct err e;

	if (fs_mkdir_p(path, 0700, &e) < 0) {
		fprintf(stderr, "mailgen: %s\n", e.msg);
		exit(1);
	}
}

static void make_folder(const char *dir, bool sub)
{
	char p[PATH_MAX];

	pathf(p, sizeof(p), "%s/cur", dir);
	mkdirs(p);
	pathf(p, sizeof(p), "%s/new", dir);
	mkdirs(p);
	pathf(p, sizeof(p), "%s/tmp", dir);
	mkdirs(p);
	if (sub) {
		pathf(p, sizeof(p), "%s/maildirfolder", dir);
		write_file(p, "", 0);
	}
}

static unsigned long long name_counter;

/* A unique Maildir base name carrying S= and W= hints. */
static void base_name(char *out, size_t len, size_t size)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	pathf(out, len, "%ld.M%ldP%dQ%llu.mailgen,S=%zu,W=%zu", (long)ts.tv_sec,
		 ts.tv_nsec / 1000, (int)getpid(), ++name_counter, size, size + size / 40);
}

static const char *const flag_sets[] = {"", "S", "RS", "FS", "S", "S", "Sa", "T", "DS", "FRS"};

/* ------------------------------------------------------------- populate */

static const char *const folder_names[] = {".Sent", ".Drafts", ".Trash", ".Junk", ".Archive",
					  ".Archive.2024", ".Projects", ".Lists"};

struct popt {
	unsigned users, messages, folders, domains, big_permille;
};

static void write_uidlist(const char *folder)
{
	char p[PATH_MAX], sub[PATH_MAX];
	struct buf b = BUF_INIT;
	unsigned uid = 1;

	buf_printf(&b, "3 V%u N%u G%016" PRIx64 "%016" PRIx64 "\n", 1700000000u, 1u, rnd(), rnd());
	for (int d = 0; d < 2; d++) {
		DIR *dir;
		struct dirent *de;

		pathf(sub, sizeof(sub), "%s/%s", folder, d ? "new" : "cur");
		dir = opendir(sub);
		if (dir == NULL)
			continue;
		while ((de = readdir(dir)) != NULL) {
			char *colon;

			if (de->d_name[0] == '.')
				continue;
			colon = strchr(de->d_name, ':');
			buf_printf(&b, "%u :%.*s\n", uid++,
				   (int)(colon ? (size_t)(colon - de->d_name) : strlen(de->d_name)),
				   de->d_name);
		}
		closedir(dir);
	}
	pathf(p, sizeof(p), "%s/dovecot-uidlist", folder);
	write_file(p, b.data, b.len);
	buf_free(&b);
}

static void populate_folder(const char *folder, const char *user, unsigned n, bool sub,
			    unsigned big, struct buf *msg)
{
	char p[PATH_MAX], base[200];

	make_folder(folder, sub);
	for (unsigned i = 0; i < n; i++) {
		size_t size = message_size(big);
		bool is_new = rnd_below(10) == 0;

		make_message(msg, size, i, user);
		base_name(base, sizeof(base), msg->len);
		if (is_new)
			pathf(p, sizeof(p), "%s/new/%s", folder, base);
		else
			pathf(p, sizeof(p), "%s/cur/%s:2,%s", folder, base,
				 flag_sets[rnd_below(10)]);
		write_file(p, msg->data, msg->len);
		set_mtime(p, 1700000000 + (time_t)rnd_below(30000000));
	}
	write_uidlist(folder);
	/* Index files Dovecot rebuilds: replication must ignore them. */
	pathf(p, sizeof(p), "%s/dovecot.index.cache", folder);
	write_file(p, "cache", 5);
}

static void populate(const char *root, const struct popt *o)
{
	struct buf msg = BUF_INIT;
	unsigned per_user = o->users ? o->messages / o->users : 0;

	for (unsigned u = 0; u < o->users; u++) {
		char user[PATH_MAX], folder[PATH_MAX], addr[64], p[PATH_MAX];
		unsigned nf = o->folders < 8 ? o->folders : 8;
		unsigned inbox = nf ? per_user / 2 : per_user;

		pathf(user, sizeof(user), "%s/dom%u/user%u/Maildir", root, u % o->domains, u);
		pathf(addr, sizeof(addr), "user%u@dom%u.example.net", u, u % o->domains);
		populate_folder(user, addr, inbox + (u == 0 ? o->messages % o->users : 0), false,
				o->big_permille, &msg);
		for (unsigned f = 0; f < nf; f++) {
			pathf(folder, sizeof(folder), "%s/%s", user, folder_names[f]);
			populate_folder(folder, addr, (per_user - inbox) / nf, true, o->big_permille,
					&msg);
		}
		pathf(p, sizeof(p), "%s/subscriptions", user);
		write_file(p, "Sent\nDrafts\nTrash\n", 18);
		pathf(p, sizeof(p), "%s/dovecot-keywords", user);
		write_file(p, "0 $Forwarded\n1 $Junk\n", 21);
	}
	buf_free(&msg);
}

/* -------------------------------------------------------------- folders */

struct folders {
	char **v;
	size_t n, cap;
};

static void folders_free(struct folders *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i]);
	free(f->v);
	memset(f, 0, sizeof(*f));
}

static void collect(const char *dir, struct folders *f)
{
	char p[PATH_MAX];
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;

	if (d == NULL)
		return;
	pathf(p, sizeof(p), "%s/cur", dir);
	if (stat(p, &st) == 0) {
		if (f->n == f->cap) {
			f->cap = f->cap ? 2 * f->cap : 64;
			f->v = xreallocarray(f->v, f->cap, sizeof(char *));
		}
		f->v[f->n++] = xstrdup(dir);
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, "cur") == 0 || strcmp(de->d_name, "new") == 0 ||
		    strcmp(de->d_name, "tmp") == 0)
			continue;
		pathf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			collect(p, f);
	}
	closedir(d);
}

/* Picks a random message file in folder (cur/ or new/); false if none. */
static bool pick_message(const char *folder, char *out, size_t len, bool *in_new)
{
	char p[PATH_MAX];
	struct dirent *de;
	unsigned seen = 0;
	bool found = false;

	for (int d = 0; d < 2; d++) {
		DIR *dir;

		pathf(p, sizeof(p), "%s/%s", folder, d ? "new" : "cur");
		dir = opendir(p);
		if (dir == NULL)
			continue;
		/* Reservoir sampling: one pass, uniform choice. */
		while ((de = readdir(dir)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (rnd_below(++seen) == 0) {
				pathf(out, len, "%s/%s", p, de->d_name);
				*in_new = d == 1;
				found = true;
			}
		}
		closedir(dir);
	}
	return found;
}

/* ------------------------------------------------------------ workload */

struct delivery {
	char base[200];
	uint64_t t_ns;	 /* delivered on the primary */
	uint64_t vis_ns; /* visible on the standby */
	uint64_t dur_ns; /* durable on the standby */
	bool gone;	 /* expunged by the load itself */
};

struct load {
	struct folders f;
	struct buf msg;
	struct delivery *dv;
	size_t ndv, capdv;
	uint64_t counts[6];
};

enum { OP_DELIVER, OP_FLAG, OP_MOVE, OP_COPY, OP_EXPUNGE, OP_UIDLIST };
static const char *const op_names[] = {"deliver", "flag", "move", "copy", "expunge", "uidlist"};

static void deliver(struct load *l, const char *folder)
{
	char tmp[PATH_MAX], dst[PATH_MAX], base[200];
	size_t size = message_size(2);
	struct delivery *d;

	make_message(&l->msg, size, (unsigned)l->ndv, "load@example.net");
	base_name(base, sizeof(base), l->msg.len);
	pathf(tmp, sizeof(tmp), "%s/tmp/%s", folder, base);
	pathf(dst, sizeof(dst), "%s/new/%s", folder, base);
	write_file(tmp, l->msg.data, l->msg.len);
	if (l->ndv == l->capdv) {
		l->capdv = l->capdv ? 2 * l->capdv : 1024;
		l->dv = xreallocarray(l->dv, l->capdv, sizeof(*l->dv));
	}
	d = &l->dv[l->ndv++];
	memset(d, 0, sizeof(*d));
	pathf(d->base, sizeof(d->base), "%s", base);
	d->t_ns = now_real_ns();
	if (rename(tmp, dst) < 0)
		die(dst);
}

static void flag_change(const char *folder)
{
	char src[PATH_MAX], dst[PATH_MAX], *slash, *colon;
	bool in_new;

	if (!pick_message(folder, src, sizeof(src), &in_new))
		return;
	slash = strrchr(src, '/');
	colon = strchr(slash, ':');
	pathf(dst, sizeof(dst), "%s/cur/%.*s:2,%s", folder,
		 (int)(colon ? (size_t)(colon - slash - 1) : strlen(slash + 1)), slash + 1,
		 flag_sets[rnd_below(10)]);
	if (strcmp(src, dst) != 0 && rename(src, dst) < 0 && errno != ENOENT)
		die(dst);
}

static void move_or_copy(const char *from, const char *to, bool copy)
{
	char src[PATH_MAX], dst[PATH_MAX], base[200];
	bool in_new;
	struct stat st;

	if (strcmp(from, to) == 0 || !pick_message(from, src, sizeof(src), &in_new))
		return;
	if (copy) {
		/* Dovecot copies by hard link under a new name. */
		if (stat(src, &st) < 0)
			return;
		base_name(base, sizeof(base), (size_t)st.st_size);
		pathf(dst, sizeof(dst), "%s/cur/%s:2,S", to, base);
		if (link(src, dst) < 0 && errno != ENOENT)
			die(dst);
		return;
	}
	pathf(dst, sizeof(dst), "%s/cur/%s", to, strrchr(src, '/') + 1);
	if (rename(src, dst) < 0 && errno != ENOENT)
		die(dst);
}

/* Marks a delivery gone when the load expunges it (path's base). */
static void forget_delivery(struct load *l, const char *path)
{
	const char *name = strrchr(path, '/') + 1, *colon = strchr(name, ':');
	size_t n = colon ? (size_t)(colon - name) : strlen(name);

	for (size_t i = 0; i < l->ndv; i++) {
		if (strlen(l->dv[i].base) == n && strncmp(l->dv[i].base, name, n) == 0)
			l->dv[i].gone = true;
	}
}

static void expunge(struct load *l, const char *folder)
{
	char p[PATH_MAX];
	bool in_new;

	if (!pick_message(folder, p, sizeof(p), &in_new))
		return;
	forget_delivery(l, p);
	if (unlink(p) < 0 && errno != ENOENT)
		die(p);
}

static void rewrite_uidlist(const char *folder)
{
	char lock[PATH_MAX], p[PATH_MAX];

	write_uidlist(folder);
	/* Dovecot's way: write the .lock file, rename it over. */
	pathf(p, sizeof(p), "%s/dovecot-uidlist", folder);
	pathf(lock, sizeof(lock), "%s/dovecot-uidlist.lock", folder);
	if (rename(p, lock) < 0 || rename(lock, p) < 0)
		die(p);
}

static int pick_op(const unsigned mix[6])
{
	unsigned total = 0, r;

	for (int i = 0; i < 6; i++)
		total += mix[i];
	r = (unsigned)rnd_below(total);
	for (int i = 0; i < 6; i++) {
		if (r < mix[i])
			return i;
		r -= mix[i];
	}
	return OP_DELIVER;
}

/* Length of the user part of a folder path (through "/Maildir"). */
static size_t user_len(const char *folder)
{
	const char *m = strstr(folder, "/Maildir");

	return m ? (size_t)(m - folder) + 8 : strlen(folder);
}

/* Another folder of the same user as a (IMAP moves stay within a user). */
static const char *sibling(const struct folders *f, const char *a)
{
	size_t n = user_len(a), start = 0, count = 0;

	/* collect() lists a user's folders together: find the run. */
	for (size_t i = 0; i < f->n; i++) {
		if (user_len(f->v[i]) == n && strncmp(f->v[i], a, n) == 0) {
			if (count++ == 0)
				start = i;
		} else if (count > 0) {
			break;
		}
	}
	return count ? f->v[start + rnd_below(count)] : a;
}

static void one_op(struct load *l, int op)
{
	const char *a = l->f.v[rnd_below(l->f.n)], *b = sibling(&l->f, a);

	switch (op) {
	case OP_DELIVER: deliver(l, a); break;
	case OP_FLAG: flag_change(a); break;
	case OP_MOVE: move_or_copy(a, b, false); break;
	case OP_COPY: move_or_copy(a, b, true); break;
	case OP_EXPUNGE: expunge(l, a); break;
	default: rewrite_uidlist(a); break;
	}
	l->counts[op]++;
}

/* ------------------------------------------------- standby lag watching */

struct watch {
	int fd, pos_wd;
};

static void watch_add(struct watch *w, const char *path, bool pos)
{
	int wd = inotify_add_watch(w->fd, path, pos ? IN_MOVED_TO : IN_MOVED_TO | IN_CREATE);

	if (wd >= 0 && pos)
		w->pos_wd = wd;
}

static void watch_tree(struct watch *w, const char *root)
{
	struct folders f = {0};
	char p[PATH_MAX];

	collect(root, &f);
	for (size_t i = 0; i < f.n; i++) {
		pathf(p, sizeof(p), "%s/new", f.v[i]);
		watch_add(w, p, false);
		pathf(p, sizeof(p), "%s/cur", f.v[i]);
		watch_add(w, p, false);
		free(f.v[i]);
	}
	free(f.v);
}

/* Marks a name seen on the standby (by its base, before any ':'). */
static void seen_name(struct load *l, const char *name, uint64_t t)
{
	char base[200];
	const char *colon = strchr(name, ':');

	pathf(base, sizeof(base), "%.*s", (int)(colon ? (size_t)(colon - name) : strlen(name)),
		 name);
	for (size_t i = l->ndv; i > 0; i--) {
		struct delivery *d = &l->dv[i - 1];

		if (d->vis_ns == 0 && strcmp(d->base, base) == 0) {
			d->vis_ns = t;
			return;
		}
		if (l->ndv - i > 4096)
			break; /* far back: not one of ours in flight */
	}
}

static void watch_events(struct watch *w, struct load *l, int timeout)
{
	char buf[65536] __attribute__((aligned(8)));
	struct pollfd p = {w->fd, POLLIN, 0};
	ssize_t n;

	if (poll(&p, 1, timeout) <= 0)
		return;
	n = read(w->fd, buf, sizeof(buf));
	for (char *q = buf; n > 0 && q < buf + n;) {
		struct inotify_event *ev = (struct inotify_event *)q;
		uint64_t t = now_real_ns();

		if (ev->wd == w->pos_wd && ev->len && strcmp(ev->name, "standby.pos") == 0) {
			for (size_t i = 0; i < l->ndv; i++) {
				if (l->dv[i].vis_ns && !l->dv[i].dur_ns)
					l->dv[i].dur_ns = t;
			}
		} else if (ev->len) {
			seen_name(l, ev->name, t);
		}
		q += sizeof(*ev) + ev->len;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report_lag(struct load *l)
{
	uint64_t *lag = xcalloc(l->ndv + 1, sizeof(uint64_t));
	size_t n = 0, missing = 0;

	for (size_t i = 0; i < l->ndv; i++) {
		if (l->dv[i].dur_ns)
			lag[n++] = l->dv[i].dur_ns - l->dv[i].t_ns;
		else if (!l->dv[i].gone)
			missing++;
	}
	qsort(lag, n, sizeof(*lag), cmp_u64);
	printf("lag: deliveries=%zu measured=%zu not_durable=%zu p50_ms=%.2f p99_ms=%.2f "
	       "max_ms=%.2f\n",
	       l->ndv, n, missing, n ? (double)lag[n / 2] / 1e6 : -1,
	       n ? (double)lag[(n * 99) / 100] / 1e6 : -1, n ? (double)lag[n - 1] / 1e6 : -1);
	free(lag);
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
	fprintf(stderr,
		"usage: mailgen populate DIR [--users N] [--messages M] [--folders F] [--seed S]\n"
		"                            [--big PERMILLE] [--domains D]\n"
		"       mailgen load DIR [--rate R] [--seconds T] [--seed S]\n"
		"                        [--mix D,F,M,C,E,U] [--standby DIR --standby-state DIR]\n"
		"       mailgen burst DIR [--flags N] [--deliver N] [--expunge N] [--move N] [--seed S]\n");
	exit(2);
}

static void parse_mix(const char *s, unsigned mix[6])
{
	if (sscanf(s, "%u,%u,%u,%u,%u,%u", &mix[0], &mix[1], &mix[2], &mix[3], &mix[4], &mix[5]) != 6)
		usage();
}

/* A workload's state, freed at its end (the tests run mailgen under LSan). */
static void load_free(struct load *l)
{
	folders_free(&l->f);
	buf_free(&l->msg);
	free(l->dv);
}

static void run_load(const char *dir, double rate, double seconds, const unsigned mix[6],
		     const char *standby, const char *sstate)
{
	struct load l = {0};
	struct watch w = {.fd = -1, .pos_wd = -1};
	uint64_t start = now_mono_ns(), n = 0, end;

	collect(dir, &l.f);
	if (l.f.n == 0) {
		fprintf(stderr, "mailgen: no Maildir folders under %s\n", dir);
		exit(1);
	}
	if (standby != NULL) {
		w.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		watch_tree(&w, standby);
		watch_add(&w, sstate, true);
	}
	end = start + (uint64_t)(seconds * 1e9);
	while (now_mono_ns() < end) {
		uint64_t due = start + (uint64_t)((double)n * 1e9 / rate);
		int64_t wait = (int64_t)(due - now_mono_ns());

		if (wait > 0) {
			if (w.fd >= 0)
				watch_events(&w, &l, (int)(wait / 1000000));
			else {
				struct timespec ts = {wait / 1000000000, wait % 1000000000};
				nanosleep(&ts, NULL);
			}
			continue;
		}
		one_op(&l, pick_op(mix));
		n++;
		if (w.fd >= 0)
			watch_events(&w, &l, 0);
	}
	if (w.fd >= 0) {
		/* Let the last deliveries arrive (bounded). */
		uint64_t stop = now_mono_ns() + 10000000000ULL;
		size_t pending;

		do {
			watch_events(&w, &l, 50);
			pending = 0;
			for (size_t i = 0; i < l.ndv; i++)
				pending += l.dv[i].dur_ns == 0 && !l.dv[i].gone;
		} while (pending > 0 && now_mono_ns() < stop);
	}
	printf("load: ops=%" PRIu64 " seconds=%.1f", n, (double)(now_mono_ns() - start) / 1e9);
	for (int i = 0; i < 6; i++)
		printf(" %s=%" PRIu64, op_names[i], l.counts[i]);
	printf("\n");
	if (w.fd >= 0)
		report_lag(&l);
	fflush(stdout);
	load_free(&l);
}

static void run_burst(const char *dir, unsigned flags, unsigned del, unsigned exp, unsigned mv)
{
	struct load l = {0};

	collect(dir, &l.f);
	if (l.f.n == 0) {
		fprintf(stderr, "mailgen: no Maildir folders under %s\n", dir);
		exit(1);
	}
	for (unsigned i = 0; i < flags; i++)
		one_op(&l, OP_FLAG);
	for (unsigned i = 0; i < del; i++)
		one_op(&l, OP_DELIVER);
	for (unsigned i = 0; i < exp; i++)
		one_op(&l, OP_EXPUNGE);
	for (unsigned i = 0; i < mv; i++)
		one_op(&l, OP_MOVE);
	printf("burst: flags=%u deliver=%u expunge=%u move=%u\n", flags, del, exp, mv);
	load_free(&l);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"users", required_argument, NULL, 'u'}, {"messages", required_argument, NULL, 'm'},
		{"folders", required_argument, NULL, 'F'}, {"seed", required_argument, NULL, 's'},
		{"big", required_argument, NULL, 'b'}, {"domains", required_argument, NULL, 'd'},
		{"rate", required_argument, NULL, 'r'}, {"seconds", required_argument, NULL, 't'},
		{"mix", required_argument, NULL, 'x'}, {"standby", required_argument, NULL, 'S'},
		{"standby-state", required_argument, NULL, 'T'},
		{"flags", required_argument, NULL, 'f'}, {"deliver", required_argument, NULL, 'D'},
		{"expunge", required_argument, NULL, 'E'}, {"move", required_argument, NULL, 'M'},
		{NULL, 0, NULL, 0},
	};
	struct popt po = {.users = 10, .messages = 1000, .folders = 4, .domains = 3,
			  .big_permille = 2};
	unsigned mix[6] = {40, 30, 10, 5, 10, 5}, flags = 1000, del = 500, exp = 200, mv = 100;
	double rate = 200, seconds = 10;
	const char *cmd, *dir, *standby = NULL, *sstate = NULL;
	int opt;

	if (argc < 3)
		usage();
	cmd = argv[1];
	dir = argv[2];
	optind = 3;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u': po.users = (unsigned)atoi(optarg); break;
		case 'm': po.messages = (unsigned)atoi(optarg); break;
		case 'F': po.folders = (unsigned)atoi(optarg); break;
		case 's': rng_state ^= strtoull(optarg, NULL, 10) * 0x9E3779B97F4A7C15ULL + 1; break;
		case 'b': po.big_permille = (unsigned)atoi(optarg); break;
		case 'd': po.domains = (unsigned)atoi(optarg) ? (unsigned)atoi(optarg) : 1; break;
		case 'r': rate = atof(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 'x': parse_mix(optarg, mix); break;
		case 'S': standby = optarg; break;
		case 'T': sstate = optarg; break;
		case 'f': flags = (unsigned)atoi(optarg); break;
		case 'D': del = (unsigned)atoi(optarg); break;
		case 'E': exp = (unsigned)atoi(optarg); break;
		case 'M': mv = (unsigned)atoi(optarg); break;
		default: usage();
		}
	}
	if (strcmp(cmd, "populate") == 0)
		populate(dir, &po);
	else if (strcmp(cmd, "load") == 0 && rate > 0 && (standby == NULL) == (sstate == NULL))
		run_load(dir, rate, seconds, mix, standby, sstate);
	else if (strcmp(cmd, "burst") == 0)
		run_burst(dir, flags, del, exp, mv);
	else
		usage();
	return 0;
}
