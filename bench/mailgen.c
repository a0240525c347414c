/*
 * mailgen.c — realistic Maildir++ trees and mail workloads, seeded and
 * repeatable, for the end-to-end tests, the benchmarks and the demo.
 *
 *   mailgen populate DIR [--users N] [--messages M] [--folders F] [--seed S]
 *                        [--big PERMILLE] [--domains D]
 *       Creates users (dom<d>/user<u>/Maildir) with INBOX and Maildir++
 *       folders, messages with real headers and bodies (lognormal sizes,
 *       a few multi-megabyte attachments), flags, mtimes in the past,
 *       dovecot-uidlist, dovecot-keywords, dovecot-uidvalidity,
 *       subscriptions, maildirfolder, and Dovecot index files (which
 *       replication must ignore).
 *
 *   mailgen load DIR [--rate R] [--seconds T] [--seed S] [--standby SDIR
 *                     --standby-state STATEDIR] [--mix deliver,flag,move,copy,expunge,uidlist]
 *       Runs a live workload at R operations per second for T seconds:
 *       deliveries (tmp/ then rename into new/), flag changes (renames in
 *       cur/, new/ -> cur/), moves between folders, copies as hard links,
 *       expunges and dovecot-uidlist updates as Dovecot makes them (UIDs
 *       kept, new ones appended, written to a .lock file renamed over).
 *       With --standby it also watches the standby's tree and state
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
#include "hash.h"
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

/*
 * Body text comes from two pools generated once per process (lines of
 * words; base64-like lines for attachments), copied from a random line
 * onwards.  Generating text word by word for every delivery took CPU the
 * replicator it measures needed (at 3,000 ops/s: 0.66 s of user CPU per
 * 5 s, against 0.26 s with the pools).  Every message still differs: its
 * headers carry a unique Message-ID, and slices start anywhere in the pool.
 */
#define POOL_BYTES (4u << 20)

struct pool {
	char *data;
	size_t len;
};

static struct pool text_pool, b64_pool;

static void pool_words(struct buf *b)
{
	size_t col = 0;

	while (b->len < POOL_BYTES) {
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
	buf_puts(b, "\r\n");
}

static void pool_base64ish(struct buf *b)
{
	static const char alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	while (b->len < POOL_BYTES) {
		for (int i = 0; i < 76; i++)
			buf_putc(b, alpha[rnd_below(64)]);
		buf_puts(b, "\r\n");
	}
}

static void pool_fill(struct pool *p, void (*fill)(struct buf *))
{
	struct buf b;

	buf_init(&b, 0);
	fill(&b);
	p->len = b.len;
	p->data = buf_strdup(&b);
	buf_free(&b);
}

static void pools_init(void)
{
	pool_fill(&text_pool, pool_words);
	pool_fill(&b64_pool, pool_base64ish);
}

static void pools_free(void)
{
	free(text_pool.data);
	free(b64_pool.data);
	memset(&text_pool, 0, sizeof(text_pool));
	memset(&b64_pool, 0, sizeof(b64_pool));
}

/* Appends whole lines of pool p, from a random line on, until b holds at
 * least target bytes.  Every line of a pool ends in CRLF. */
static void add_lines(struct buf *b, const struct pool *p, size_t target)
{
	size_t off = (size_t)rnd_below(p->len);
	const char *nl = memchr(p->data + off, '\n', p->len - off);

	off = nl != NULL ? (size_t)(nl - p->data) + 1 : 0;
	while (b->len < target) {
		size_t want = target - b->len, n;

		if (off == p->len)
			off = 0;
		n = p->len - off < want ? p->len - off : want;
		nl = memchr(p->data + off + n - 1, '\n', p->len - off - n + 1);
		n = (size_t)(nl - p->data) + 1 - off;
		buf_append(b, p->data + off, n);
		off += n;
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
		add_lines(b, &text_pool, b->len + 600);
		buf_puts(b, "\r\n--b1\r\nContent-Type: application/pdf\r\n"
			    "Content-Transfer-Encoding: base64\r\n\r\n");
		add_lines(b, &b64_pool, size);
		buf_puts(b, "--b1--\r\n");
	} else {
		buf_puts(b, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
		add_lines(b, &text_pool, size);
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
	struct buf b = BUF_INIT, hdr = BUF_INIT;
	unsigned uid = 1;

	/* Header last: it names the next UID, known once the list is written. */
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
	buf_printf(&hdr, "3 V%u N%u G%016" PRIx64 "%016" PRIx64 "\n", 1700000000u, uid, rnd(),
		   rnd());
	if (b.len > 0)
		buf_append(&hdr, b.data, b.len);
	pathf(p, sizeof(p), "%s/dovecot-uidlist", folder);
	write_file(p, hdr.data, hdr.len);
	buf_free(&b);
	buf_free(&hdr);
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
		/* Dovecot's per-user UIDVALIDITY: the value, and a marker file named by it. */
		pathf(p, sizeof(p), "%s/dovecot-uidvalidity", user);
		write_file(p, "6553f100\n", 9);
		pathf(p, sizeof(p), "%s/dovecot-uidvalidity.6553f100", user);
		write_file(p, "", 0);
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

/* The message files of one folder, "cur/NAME" or "new/NAME": listed once
 * when a workload starts, then kept up to date by its own operations, so
 * that picking one costs the generator nothing next to the daemons it
 * measures (a readdir per operation grew with the folders). */
struct msgs {
	char **v;
	size_t n, cap;
};

static void msgs_add(struct msgs *m, const char *sub, const char *name)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->v = xreallocarray(m->v, m->cap, sizeof(char *));
	}
	m->v[m->n++] = xasprintf("%s/%s", sub, name);
}

/* Removes entry i (order does not matter). */
static void msgs_del(struct msgs *m, size_t i)
{
	free(m->v[i]);
	m->v[i] = m->v[--m->n];
}

static void msgs_list(struct msgs *m, const char *folder)
{
	char p[PATH_MAX];
	struct dirent *de;

	for (int d = 0; d < 2; d++) {
		DIR *dir;

		pathf(p, sizeof(p), "%s/%s", folder, d ? "new" : "cur");
		dir = opendir(p);
		if (dir == NULL)
			continue;
		while ((de = readdir(dir)) != NULL) {
			if (de->d_name[0] != '.')
				msgs_add(m, d ? "new" : "cur", de->d_name);
		}
		closedir(dir);
	}
}

static void msgs_free(struct msgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i]);
	free(m->v);
	memset(m, 0, sizeof(*m));
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
	struct msgs *m; /* per folder, as f */
	struct buf msg;
	struct delivery *dv;
	size_t ndv, capdv;
	uint64_t counts[6];
	uint64_t delivered_bytes;
	/* the generator's own delays, which would otherwise count as lag */
	uint64_t op_max_ns, behind_max_ns;
	/* base name -> index + 1 into dv (open addressing, power of two) */
	uint32_t *byname;
	size_t nslots;
	/* deliveries visible on the standby, waiting for the next position */
	size_t *visible;
	size_t nvisible, capvisible;
};

/* A workload's state, freed at its end (the tests run mailgen under LSan). */
static void load_free(struct load *l)
{
	for (size_t i = 0; l->m != NULL && i < l->f.n; i++)
		msgs_free(&l->m[i]);
	free(l->m);
	folders_free(&l->f);
	buf_free(&l->msg);
	free(l->dv);
	free(l->byname);
	free(l->visible);
	memset(l, 0, sizeof(*l));
}

static void index_put(struct load *l, size_t i)
{
	size_t mask, k;

	if (2 * (l->ndv + 1) > l->nslots) {
		/* Grow and rehash: keeps probes short at any number of deliveries. */
		free(l->byname);
		l->nslots = l->nslots ? 2 * l->nslots : 4096;
		l->byname = xcalloc(l->nslots, sizeof(*l->byname));
		for (size_t j = 0; j < l->ndv; j++) {
			if (j != i)
				index_put(l, j);
		}
	}
	mask = l->nslots - 1;
	k = fnv1a(FNV1A_INIT, l->dv[i].base, strlen(l->dv[i].base)) & mask;
	while (l->byname[k] != 0)
		k = (k + 1) & mask;
	l->byname[k] = (uint32_t)i + 1;
}

/* The delivery whose base name is name[0..len), or NULL. */
static struct delivery *index_get(struct load *l, const char *name, size_t len)
{
	size_t mask = l->nslots - 1, k;

	if (l->nslots == 0)
		return NULL;
	for (k = fnv1a(FNV1A_INIT, name, len) & mask; l->byname[k] != 0; k = (k + 1) & mask) {
		struct delivery *d = &l->dv[l->byname[k] - 1];

		if (strncmp(d->base, name, len) == 0 && d->base[len] == '\0')
			return d;
	}
	return NULL;
}

enum { OP_DELIVER, OP_FLAG, OP_MOVE, OP_COPY, OP_EXPUNGE, OP_UIDLIST };
static const char *const op_names[] = {"deliver", "flag", "move", "copy", "expunge", "uidlist"};

static void deliver(struct load *l, size_t fi)
{
	const char *folder = l->f.v[fi];
	char tmp[PATH_MAX], dst[PATH_MAX], base[200];
	size_t size = message_size(2);
	struct delivery *d;

	make_message(&l->msg, size, (unsigned)l->ndv, "load@example.net");
	base_name(base, sizeof(base), l->msg.len);
	pathf(tmp, sizeof(tmp), "%s/tmp/%s", folder, base);
	pathf(dst, sizeof(dst), "%s/new/%s", folder, base);
	write_file(tmp, l->msg.data, l->msg.len);
	l->delivered_bytes += l->msg.len;
	if (l->ndv == l->capdv) {
		l->capdv = l->capdv ? 2 * l->capdv : 1024;
		l->dv = xreallocarray(l->dv, l->capdv, sizeof(*l->dv));
	}
	d = &l->dv[l->ndv];
	memset(d, 0, sizeof(*d));
	pathf(d->base, sizeof(d->base), "%s", base);
	index_put(l, l->ndv++);
	d->t_ns = now_real_ns();
	if (rename(tmp, dst) < 0)
		die(dst);
	msgs_add(&l->m[fi], "new", base);
}

/* Picks a random message of folder fi: its index, or -1 if it has none. */
static ssize_t pick(struct load *l, size_t fi, char *path, size_t len)
{
	struct msgs *m = &l->m[fi];
	size_t i;

	if (m->n == 0)
		return -1;
	i = rnd_below(m->n);
	pathf(path, len, "%s/%s", l->f.v[fi], m->v[i]);
	return (ssize_t)i;
}

/* A rename or link that found its source gone (someone else's change):
 * the list forgets it. */
static bool done_or_gone(struct msgs *m, ssize_t i, int r, const char *what)
{
	if (r == 0)
		return true;
	if (errno != ENOENT)
		die(what);
	msgs_del(m, (size_t)i);
	return false;
}

static void flag_change(struct load *l, size_t fi)
{
	struct msgs *m = &l->m[fi];
	char src[PATH_MAX], dst[PATH_MAX], *name, *colon;
	ssize_t i = pick(l, fi, src, sizeof(src));

	if (i < 0)
		return;
	name = strchr(m->v[i], '/') + 1;
	colon = strchr(name, ':');
	pathf(dst, sizeof(dst), "%s/cur/%.*s:2,%s", l->f.v[fi],
	      (int)(colon ? (size_t)(colon - name) : strlen(name)), name, flag_sets[rnd_below(10)]);
	if (strcmp(src, dst) == 0 || !done_or_gone(m, i, rename(src, dst), dst))
		return;
	free(m->v[i]);
	m->v[i] = xstrdup(dst + strlen(l->f.v[fi]) + 1);
}

static void move_or_copy(struct load *l, size_t from, size_t to, bool copy)
{
	char src[PATH_MAX], dst[PATH_MAX], base[200];
	struct stat st;
	ssize_t i;

	if (from == to || (i = pick(l, from, src, sizeof(src))) < 0)
		return;
	if (copy) {
		/* Dovecot copies by hard link under a new name. */
		if (stat(src, &st) < 0) {
			done_or_gone(&l->m[from], i, -1, src);
			return;
		}
		base_name(base, sizeof(base), (size_t)st.st_size);
		pathf(dst, sizeof(dst), "%s/cur/%s:2,S", l->f.v[to], base);
		if (done_or_gone(&l->m[from], i, link(src, dst), dst))
			msgs_add(&l->m[to], "cur", strrchr(dst, '/') + 1);
		return;
	}
	pathf(dst, sizeof(dst), "%s/cur/%s", l->f.v[to], strrchr(src, '/') + 1);
	if (!done_or_gone(&l->m[from], i, rename(src, dst), dst))
		return;
	msgs_add(&l->m[to], "cur", strrchr(dst, '/') + 1);
	msgs_del(&l->m[from], (size_t)i);
}

/* Marks a delivery gone when the load expunges it (path's base). */
static void forget_delivery(struct load *l, const char *path)
{
	const char *name = strrchr(path, '/') + 1, *colon = strchr(name, ':');
	struct delivery *d = index_get(l, name, colon ? (size_t)(colon - name) : strlen(name));

	if (d != NULL)
		d->gone = true;
}

static void expunge(struct load *l, size_t fi)
{
	char p[PATH_MAX];
	ssize_t i = pick(l, fi, p, sizeof(p));

	if (i < 0)
		return;
	forget_delivery(l, p);
	if (unlink(p) < 0 && errno != ENOENT)
		die(p);
	msgs_del(&l->m[fi], (size_t)i);
}

/* A message's base name in "cur/NAME:2,FLAGS" or "new/NAME". */
static struct slice msg_base(const char *entry)
{
	const char *name = strchr(entry, '/') + 1, *colon = strchr(name, ':');

	return (struct slice){name, colon ? (size_t)(colon - name) : strlen(name)};
}

static int cmp_slice(const void *a, const void *b)
{
	const struct slice *x = a, *y = b;
	int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Dovecot's update of dovecot-uidlist: the lines of messages still there
 * keep their UIDs and order, new messages are appended with the next UID
 * (so that, as with Dovecot, most of the file stays as it was); written to
 * the .lock file and renamed over. */
static void rewrite_uidlist(struct load *l, size_t fi)
{
	const struct msgs *m = &l->m[fi];
	char lock[PATH_MAX], p[PATH_MAX];
	struct buf old = BUF_INIT, out = BUF_INIT;
	struct slice *bases = xcalloc(m->n + 1, sizeof(*bases));
	bool *listed = xcalloc(m->n + 1, sizeof(*listed));
	unsigned next = 1;
	struct err e;
	int fd;

	for (size_t i = 0; i < m->n; i++)
		bases[i] = msg_base(m->v[i]);
	qsort(bases, m->n, sizeof(*bases), cmp_slice);
	pathf(p, sizeof(p), "%s/dovecot-uidlist", l->f.v[fi]);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && fs_read_fd(fd, &old, 64u << 20, &e) < 0)
		buf_reset(&old);
	if (fd >= 0)
		close(fd);
	buf_putc(&old, '\0');
	for (char *line = strchr((char *)old.data, '\n'); line != NULL && line[1] != '\0';) {
		char *end = strchr(++line, '\n'), *colon = strstr(line, " :");
		struct slice key, *hit;
		unsigned uid = (unsigned)strtoul(line, NULL, 10);

		if (end == NULL || colon == NULL || colon > end)
			break;
		key = (struct slice){colon + 2, (size_t)(end - colon - 2)};
		hit = bsearch(&key, bases, m->n, sizeof(*bases), cmp_slice);
		if (hit != NULL && !listed[hit - bases]) {
			listed[hit - bases] = true;
			buf_append(&out, line, (size_t)(end - line) + 1);
		}
		if (uid >= next)
			next = uid + 1;
		line = end;
	}
	for (size_t i = 0; i < m->n; i++) {
		if (!listed[i])
			buf_printf(&out, "%u :%.*s\n", next++, (int)bases[i].len, bases[i].p);
	}
	buf_reset(&old);
	buf_printf(&old, "3 V%u N%u G%016" PRIx64 "%016" PRIx64 "\n", 1700000000u, next, rnd(),
		   rnd());
	buf_append(&old, out.data, out.len);
	pathf(lock, sizeof(lock), "%s/dovecot-uidlist.lock", l->f.v[fi]);
	write_file(lock, old.data, old.len);
	if (rename(lock, p) < 0)
		die(p);
	buf_free(&old);
	buf_free(&out);
	free(bases);
	free(listed);
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

/* Another folder of the same user as folder a (IMAP moves stay within a
 * user), by index. */
static size_t sibling(const struct folders *f, size_t a)
{
	size_t n = user_len(f->v[a]), start = 0, count = 0;

	/* collect() lists a user's folders together: find the run. */
	for (size_t i = 0; i < f->n; i++) {
		if (user_len(f->v[i]) == n && strncmp(f->v[i], f->v[a], n) == 0) {
			if (count++ == 0)
				start = i;
		} else if (count > 0) {
			break;
		}
	}
	return count ? start + rnd_below(count) : a;
}

static void one_op(struct load *l, int op)
{
	size_t a = rnd_below(l->f.n), b = sibling(&l->f, a);

	switch (op) {
	case OP_DELIVER: deliver(l, a); break;
	case OP_FLAG: flag_change(l, a); break;
	case OP_MOVE: move_or_copy(l, a, b, false); break;
	case OP_COPY: move_or_copy(l, a, b, true); break;
	case OP_EXPUNGE: expunge(l, a); break;
	default: rewrite_uidlist(l, a); break;
	}
	l->counts[op]++;
}

/* The folders under dir and their messages: what a workload works on. */
static void load_init(struct load *l, const char *dir)
{
	collect(dir, &l->f);
	if (l->f.n == 0) {
		fprintf(stderr, "mailgen: no Maildir folders under %s\n", dir);
		exit(1);
	}
	l->m = xcalloc(l->f.n, sizeof(*l->m));
	for (size_t i = 0; i < l->f.n; i++)
		msgs_list(&l->m[i], l->f.v[i]);
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
	const char *colon = strchr(name, ':');
	struct delivery *d = index_get(l, name, colon ? (size_t)(colon - name) : strlen(name));

	if (d == NULL || d->vis_ns != 0)
		return;
	d->vis_ns = t;
	if (l->nvisible == l->capvisible) {
		l->capvisible = l->capvisible ? 2 * l->capvisible : 1024;
		l->visible = xreallocarray(l->visible, l->capvisible, sizeof(*l->visible));
	}
	l->visible[l->nvisible++] = (size_t)(d - l->dv);
}

/* Reads the standby's events, waiting up to timeout_ns for the first. */
static void watch_events(struct watch *w, struct load *l, int64_t timeout_ns)
{
	char buf[65536] __attribute__((aligned(8)));
	struct pollfd p = {w->fd, POLLIN, 0};
	struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
	ssize_t n;

	/* ppoll: a sub-millisecond wait must not become a busy loop. */
	if (ppoll(&p, 1, &ts, NULL) <= 0)
		return;
	n = read(w->fd, buf, sizeof(buf));
	for (char *q = buf; n > 0 && q < buf + n;) {
		struct inotify_event *ev = (struct inotify_event *)q;
		uint64_t t = now_real_ns();

		if (ev->wd == w->pos_wd && ev->len && strcmp(ev->name, "standby.pos") == 0) {
			for (size_t i = 0; i < l->nvisible; i++)
				l->dv[l->visible[i]].dur_ns = t;
			l->nvisible = 0;
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
	uint64_t *vis = xcalloc(l->ndv + 1, sizeof(uint64_t));
	size_t n = 0, missing = 0;

	for (size_t i = 0; i < l->ndv; i++) {
		if (l->dv[i].dur_ns) {
			vis[n] = l->dv[i].vis_ns - l->dv[i].t_ns;
			lag[n++] = l->dv[i].dur_ns - l->dv[i].t_ns;
		} else if (!l->dv[i].gone) {
			missing++;
		}
	}
	qsort(lag, n, sizeof(*lag), cmp_u64);
	qsort(vis, n, sizeof(*vis), cmp_u64);
	printf("lag: deliveries=%zu measured=%zu not_durable=%zu p50_ms=%.2f p99_ms=%.2f "
	       "max_ms=%.2f visible_p50_ms=%.2f visible_p99_ms=%.2f\n",
	       l->ndv, n, missing, n ? (double)lag[n / 2] / 1e6 : -1,
	       n ? (double)lag[(n * 99) / 100] / 1e6 : -1, n ? (double)lag[n - 1] / 1e6 : -1,
	       n ? (double)vis[n / 2] / 1e6 : -1, n ? (double)vis[(n * 99) / 100] / 1e6 : -1);
	free(lag);
	free(vis);
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

static void run_load(const char *dir, double rate, double seconds, const unsigned mix[6],
		     const char *standby, const char *sstate)
{
	struct load l = {0};
	struct watch w = {.fd = -1, .pos_wd = -1};
	uint64_t start = now_mono_ns(), n = 0, end, ran_ns, op_start, op_ns;

	load_init(&l, dir);
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
				watch_events(&w, &l, wait);
			else {
				struct timespec ts = {wait / 1000000000, wait % 1000000000};
				nanosleep(&ts, NULL);
			}
			continue;
		}
		if ((uint64_t)-wait > l.behind_max_ns)
			l.behind_max_ns = (uint64_t)-wait;
		op_start = now_mono_ns();
		one_op(&l, pick_op(mix));
		op_ns = now_mono_ns() - op_start;
		if (op_ns > l.op_max_ns)
			l.op_max_ns = op_ns;
		n++;
		if (w.fd >= 0)
			watch_events(&w, &l, 0);
	}
	ran_ns = now_mono_ns() - start;
	if (w.fd >= 0) {
		/* Let the last deliveries arrive (bounded). */
		uint64_t stop = now_mono_ns() + 10000000000ULL;
		size_t pending;

		do {
			watch_events(&w, &l, 50000000);
			pending = 0;
			for (size_t i = 0; i < l.ndv; i++)
				pending += l.dv[i].dur_ns == 0 && !l.dv[i].gone;
		} while (pending > 0 && now_mono_ns() < stop);
	}
	printf("load: ops=%" PRIu64 " seconds=%.2f", n, (double)ran_ns / 1e9);
	for (int i = 0; i < 6; i++)
		printf(" %s=%" PRIu64, op_names[i], l.counts[i]);
	printf(" delivered_bytes=%" PRIu64 " op_max_ms=%.2f behind_max_ms=%.2f\n", l.delivered_bytes,
	       (double)l.op_max_ns / 1e6, (double)l.behind_max_ns / 1e6);
	if (w.fd >= 0) {
		report_lag(&l);
		close(w.fd);
	}
	fflush(stdout);
	load_free(&l);
}

static void run_burst(const char *dir, unsigned flags, unsigned del, unsigned exp, unsigned mv)
{
	struct load l = {0};

	load_init(&l, dir);
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
	pools_init(); /* before any timed work */
	if (strcmp(cmd, "populate") == 0)
		populate(dir, &po);
	else if (strcmp(cmd, "load") == 0 && rate > 0 && (standby == NULL) == (sstate == NULL))
		run_load(dir, rate, seconds, mix, standby, sstate);
	else if (strcmp(cmd, "burst") == 0)
		run_burst(dir, flags, del, exp, mv);
	else
		usage();
	pools_free();
	return 0;
}
