/*
 * mdworkload.c — a Maildir workload for the end-to-end tests and the
 * benchmark: what an MDA and an IMAP server do to a mail store.
 *
 *   mdworkload setup ROOT [--users N] [--folders N] [--messages N]
 *   mdworkload run ROOT [--deliveries N] [--flags N] [--moves N]
 *                  [--expunges N] [--folder-ops N] [--uidlists N]
 *                  [--rate OPS_PER_S] [--seed S]
 *
 * setup makes users u000.. with Maildir/{cur,new,tmp}, Maildir++ folders
 * and a dovecot-uidlist. run lists the tree, then performs the operations
 * in a random interleaving: deliveries (write tmp/, rename to new/ with
 * S=size), flag changes (new->cur, flag edits in cur), moves between
 * folders, expunges, folders created / renamed / deleted, and
 * dovecot-uidlist rewritten as Dovecot does (write dovecot-uidlist.lock,
 * rename it over dovecot-uidlist).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "xalloc.h"

#define P 4096

struct msg {
	char *folder; /* relative to ROOT */
	char sub;     /* 'n' or 'c' */
	char *name;
};

struct state {
	const char *root;
	struct msg *m;
	size_t nm, capm;
	char **folders; /* every folder, relative to ROOT */
	size_t nf, capf;
	unsigned long counter;
	unsigned long delivered; /* messages this run wrote */
};

static void die(const char *what, const char *path)
{
	fprintf(stderr, "mdworkload: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

/* snprintf into a P-byte path buffer; a path that does not fit is fatal. */
static void pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pathf(char *out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, P, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= P) {
		fprintf(stderr, "mdworkload: path too long\n");
		exit(1);
	}
}

/* Appends "/name" to the path in out. */
static void path_add(char *out, const char *name)
{
	size_t n = strlen(out);

	if (n + 1 + strlen(name) >= P) {
		fprintf(stderr, "mdworkload: path too long\n");
		exit(1);
	}
	out[n] = '/';
	memcpy(out + n + 1, name, strlen(name) + 1);
}

static void join(char *out, const char *a, const char *b, const char *c)
{
	pathf(out, "%s/%s%s%s", a, b, c[0] ? "/" : "", c);
}

static void mkfolder(struct state *st, const char *rel)
{
	static const char *const subs[] = {"", "cur", "new", "tmp"};
	char p[P];

	for (int i = 0; i < 4; i++) {
		join(p, st->root, rel, subs[i]);
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			die("mkdir", p);
	}
}

static void write_file(const char *path, size_t size, unsigned long tag)
{
	char buf[8192];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		die("create", path);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + (i * 7 + tag) % 26);
	snprintf(buf, sizeof(buf), "Subject: message %lu\n\n", tag);
	buf[strlen(buf)] = 'x';
	while (size > 0) {
		size_t n = size < sizeof(buf) ? size : sizeof(buf);

		if (fs_write_all(fd, buf, n) < 0)
			die("write", path);
		size -= n;
	}
	close(fd);
}

static void add_folder(struct state *st, const char *rel)
{
	if (st->nf == st->capf) {
		st->capf = st->capf ? 2 * st->capf : 64;
		st->folders = xreallocarray(st->folders, st->capf, sizeof(char *));
	}
	st->folders[st->nf++] = xstrdup(rel);
}

static void add_msg(struct state *st, const char *folder, char sub, const char *name)
{
	if (st->nm == st->capm) {
		st->capm = st->capm ? 2 * st->capm : 1024;
		st->m = xreallocarray(st->m, st->capm, sizeof(*st->m));
	}
	st->m[st->nm++] = (struct msg){xstrdup(folder), sub, xstrdup(name)};
}

static void del_msg(struct state *st, size_t i)
{
	free(st->m[i].folder);
	free(st->m[i].name);
	st->m[i] = st->m[--st->nm];
}

static size_t pick(size_t n)
{
	return (size_t)random() % n;
}

/* The user a folder belongs to: "u007/Maildir" for ".../Maildir/.X". */
static void user_of(const char *folder, char *out)
{
	const char *m = strstr(folder, "/Maildir");

	pathf(out, "%.*s", (int)(m ? m - folder + 8 : (long)strlen(folder)), folder);
}

static void deliver(struct state *st, const char *folder)
{
	char tmp[P], dst[P], name[256];
	size_t size = 200 + pick(3800);
	unsigned long n = ++st->counter;

	st->delivered++;
	snprintf(name, sizeof(name), "%ld.M%luP%ld.mdwork", (long)time(NULL), n, (long)getpid());
	join(tmp, st->root, folder, "tmp");
	path_add(tmp, name);
	write_file(tmp, size, n);
	snprintf(name + strlen(name), sizeof(name) - strlen(name), ",S=%zu", size);
	join(dst, st->root, folder, "new");
	path_add(dst, name);
	if (rename(tmp, dst) < 0)
		die("rename", tmp);
	add_msg(st, folder, 'n', name);
}

static void msg_path(struct state *st, const struct msg *m, char *out)
{
	join(out, st->root, m->folder, m->sub == 'n' ? "new" : "cur");
	path_add(out, m->name);
}

/* new -> cur with \Seen, or a flag toggled in cur. */
static void flag(struct state *st)
{
	static const char letters[] = "DFRST";
	struct msg *m = &st->m[pick(st->nm)];
	char from[P], to[P], name[512], *info;

	msg_path(st, m, from);
	info = strstr(m->name, ":2,");
	if (m->sub == 'n' || info == NULL) {
		snprintf(name, sizeof(name), "%.*s:2,S",
			 (int)(info ? info - m->name : (long)strlen(m->name)), m->name);
	} else {
		char flags[64] = "", c = letters[pick(5)];
		size_t k = 0;

		/* the letters set now, with c toggled */
		for (const char *l = letters; *l; l++) {
			if ((strchr(info + 3, *l) != NULL) != (*l == c))
				flags[k++] = *l;
		}
		flags[k] = '\0';
		snprintf(name, sizeof(name), "%.*s:2,%s", (int)(info - m->name), m->name, flags);
	}
	m->sub = 'c';
	free(m->name);
	m->name = xstrdup(name);
	msg_path(st, m, to);
	if (rename(from, to) < 0)
		die("rename", from);
}

/* A random other folder of the same user, or NULL. */
static const char *other_folder(struct state *st, const char *folder)
{
	char user[P], u2[P];
	const char *found = NULL;
	size_t n = 0;

	user_of(folder, user);
	for (size_t i = 0; i < st->nf; i++) {
		user_of(st->folders[i], u2);
		if (strcmp(user, u2) == 0 && strcmp(st->folders[i], folder) != 0 && pick(++n) == 0)
			found = st->folders[i]; /* reservoir sampling */
	}
	return found;
}

static void move(struct state *st)
{
	struct msg *m = &st->m[pick(st->nm)];
	const char *to_folder = other_folder(st, m->folder);
	char from[P], to[P];

	if (to_folder == NULL)
		return;
	msg_path(st, m, from);
	free(m->folder);
	m->folder = xstrdup(to_folder);
	m->sub = 'c';
	msg_path(st, m, to);
	if (rename(from, to) < 0)
		die("rename", from);
}

static void expunge(struct state *st)
{
	size_t i = pick(st->nm);
	char p[P];

	msg_path(st, &st->m[i], p);
	if (unlink(p) < 0)
		die("unlink", p);
	del_msg(st, i);
}

static void rewrite_uidlist(struct state *st)
{
	const char *f = st->folders[pick(st->nf)];
	char lock[P], dst[P];

	join(lock, st->root, f, "dovecot-uidlist.lock");
	join(dst, st->root, f, "dovecot-uidlist");
	write_file(lock, 60 + pick(400), ++st->counter);
	if (rename(lock, dst) < 0)
		die("rename", lock);
}

static int rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char p[P];

	if (d == NULL)
		return unlink(path);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		join(p, path, e->d_name, "");
		if (e->d_type == DT_DIR)
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	return rmdir(path);
}

static bool is_inbox(const char *f)
{
	size_t n = strlen(f);

	return n >= 8 && strcmp(f + n - 8, "/Maildir") == 0;
}

/* Creates, renames or deletes a Maildir++ folder (never an INBOX). New
 * names carry the pid, so that runs one after the other on a tree do not
 * collide. */
static void folder_op(struct state *st)
{
	const char *f = st->folders[pick(st->nf)];
	char user[P], rel[P], from[P], to[P];
	int what = (int)pick(3);

	user_of(f, user);
	if (is_inbox(f) || what == 0) {
		pathf(rel, "%s/.F%luP%ld", user, ++st->counter, (long)getpid());
		mkfolder(st, rel);
		add_folder(st, rel);
		for (int i = 0, n = (int)pick(4); i < n; i++)
			deliver(st, rel);
		return;
	}
	join(from, st->root, f, "");
	if (what == 1) {
		pathf(rel, "%s/.R%luP%ld", user, ++st->counter, (long)getpid());
		join(to, st->root, rel, "");
		if (rename(from, to) < 0)
			die("rename", from);
		for (size_t i = 0; i < st->nm; i++) {
			if (strcmp(st->m[i].folder, f) == 0) {
				free(st->m[i].folder);
				st->m[i].folder = xstrdup(rel);
			}
		}
	} else {
		if (rm_tree(from) < 0)
			die("rm -r", from);
		for (size_t i = st->nm; i > 0; i--) {
			if (strcmp(st->m[i - 1].folder, f) == 0)
				del_msg(st, i - 1);
		}
	}
	for (size_t i = 0; i < st->nf; i++) {
		if (st->folders[i] == f) {
			free(st->folders[i]);
			if (what == 1)
				st->folders[i] = xstrdup(rel);
			else
				st->folders[i] = st->folders[--st->nf];
			break;
		}
	}
}

/* Lists the messages of one folder's new/ or cur/. */
static void scan_sub(struct state *st, const char *folder, char sub)
{
	char p[P];
	DIR *d;
	struct dirent *e;

	join(p, st->root, folder, sub == 'n' ? "new" : "cur");
	if ((d = opendir(p)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			add_msg(st, folder, sub, e->d_name);
	}
	closedir(d);
}

/* Finds every folder (a directory with cur/) under ROOT. */
static void scan(struct state *st, const char *rel, int depth)
{
	char p[P], sub[P];
	struct dirent *e;
	struct stat sb;
	DIR *d;

	join(p, st->root, rel, "");
	if (depth > 6 || (d = opendir(p)) == NULL)
		return;
	join(sub, st->root, rel, "cur");
	if (rel[0] != '\0' && stat(sub, &sb) == 0) {
		add_folder(st, rel);
		scan_sub(st, rel, 'n');
		scan_sub(st, rel, 'c');
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, "cur") == 0 ||
		    strcmp(e->d_name, "new") == 0 || strcmp(e->d_name, "tmp") == 0)
			continue;
		if (rel[0] == '\0')
			pathf(sub, "%s", e->d_name);
		else
			pathf(sub, "%s/%s", rel, e->d_name);
		scan(st, sub, depth + 1);
	}
	closedir(d);
}

static void setup(struct state *st, int users, int folders, int messages)
{
	static const char *const names[] = {".Sent", ".Trash", ".Archive", ".Drafts", ".Lists"};
	char rel[P], path[P];

	for (int u = 0; u < users; u++) {
		pathf(rel, "u%03d", u);
		join(path, st->root, rel, "");
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			die("mkdir", path);
		pathf(rel, "u%03d/Maildir", u);
		mkfolder(st, rel);
		add_folder(st, rel);
		join(path, st->root, rel, "dovecot-uidlist");
		write_file(path, 100, ++st->counter);
		for (int f = 0; f < folders; f++) {
			if (f < 5)
				pathf(rel, "u%03d/Maildir/%s", u, names[f]);
			else
				pathf(rel, "u%03d/Maildir/%s%d", u, names[f % 5], f);
			mkfolder(st, rel);
			add_folder(st, rel);
		}
		for (int i = 0; i < messages; i++) {
			pathf(rel, "u%03d/Maildir", u);
			deliver(st, rel);
		}
	}
}

struct counts {
	long deliveries, flags, moves, expunges, folder_ops, uidlists;
};

static void pace(long done, long rate, struct timespec *t0)
{
	struct timespec now;
	double due, el;

	if (rate <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	el = (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
	due = (double)done / (double)rate;
	if (due > el)
		usleep((useconds_t)((due - el) * 1e6));
}

static void run(struct state *st, struct counts c, long rate)
{
	struct timespec t0;
	long done = 0;

	scan(st, "", 0);
	if (st->nf == 0) {
		fprintf(stderr, "mdworkload: no folders under %s (run setup first)\n", st->root);
		exit(1);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long total =
		    c.deliveries + c.flags + c.moves + c.expunges + c.folder_ops + c.uidlists;
		long r;

		if (total == 0)
			break;
		r = (long)pick((size_t)total);
		if ((r -= c.deliveries) < 0) {
			deliver(st, st->folders[pick(st->nf)]);
			c.deliveries--;
		} else if ((r -= c.flags) < 0) {
			if (st->nm > 0)
				flag(st);
			c.flags--;
		} else if ((r -= c.moves) < 0) {
			if (st->nm > 0)
				move(st);
			c.moves--;
		} else if ((r -= c.expunges) < 0) {
			if (st->nm > 0)
				expunge(st);
			c.expunges--;
		} else if ((r -= c.folder_ops) < 0) {
			folder_op(st);
			c.folder_ops--;
		} else {
			rewrite_uidlist(st);
			c.uidlists--;
		}
		pace(++done, rate, &t0);
	}
	printf("mdworkload: %ld operations, %zu messages in %zu folders, delivered=%lu\n", done,
	       st->nm, st->nf, st->delivered);
}

static void state_free(struct state *st)
{
	while (st->nm > 0)
		del_msg(st, st->nm - 1);
	for (size_t i = 0; i < st->nf; i++)
		free(st->folders[i]);
	free(st->m);
	free(st->folders);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"users", required_argument, NULL, 'u'},
						 {"folders", required_argument, NULL, 'F'},
						 {"messages", required_argument, NULL, 'm'},
						 {"deliveries", required_argument, NULL, 'd'},
						 {"flags", required_argument, NULL, 'f'},
						 {"moves", required_argument, NULL, 'v'},
						 {"expunges", required_argument, NULL, 'x'},
						 {"folder-ops", required_argument, NULL, 'o'},
						 {"uidlists", required_argument, NULL, 'l'},
						 {"rate", required_argument, NULL, 'r'},
						 {"seed", required_argument, NULL, 's'},
						 {NULL, 0, NULL, 0}};
	struct state st = {0};
	struct counts c = {0};
	long users = 10, folders = 3, messages = 5, rate = 0, seed = 1;
	int opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		long v = optarg ? atol(optarg) : 0;

		switch (opt) {
		case 'u': users = v; break;
		case 'F': folders = v; break;
		case 'm': messages = v; break;
		case 'd': c.deliveries = v; break;
		case 'f': c.flags = v; break;
		case 'v': c.moves = v; break;
		case 'x': c.expunges = v; break;
		case 'o': c.folder_ops = v; break;
		case 'l': c.uidlists = v; break;
		case 'r': rate = v; break;
		case 's': seed = v; break;
		default: return 2;
		}
	}
	if (argc - optind != 2 || (strcmp(argv[optind], "setup") && strcmp(argv[optind], "run"))) {
		fprintf(stderr, "usage: mdworkload setup|run ROOT [options]\n");
		return 2;
	}
	st.root = argv[optind + 1];
	srandom((unsigned)seed);
	if (strcmp(argv[optind], "setup") == 0)
		setup(&st, (int)users, (int)folders, (int)messages);
	else
		run(&st, c, rate);
	state_free(&st);
	return 0;
}
