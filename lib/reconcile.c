/*
 * reconcile.c — digest compare, then listing compare, then the operations
 * that make the peer equal to us (see reconcile.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "fsutil.h"
#include "log.h"
#include "reconcile.h"
#include "xalloc.h"

/* A folder and, once compared, its digests on each side. */
struct fentry {
	char *folder;
	bool local, remote;
	uint8_t ld[WIRE_DIGEST_LEN], rd[WIRE_DIGEST_LEN];
};

struct fset {
	struct fentry *v;
	size_t n, cap;
	bool sorted;
};

struct rc {
	struct client *c;
	const struct reconcile_opts *o;
	struct reconcile_stats *st;
	struct fset folders;
	struct err *e;
};

static struct fentry *fset_add(struct fset *s, const char *folder, size_t len)
{
	struct fentry *f;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	f = &s->v[s->n++];
	memset(f, 0, sizeof(*f));
	f->folder = xstrndup(folder, len);
	s->sorted = false;
	return f;
}

static int fentry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fentry *)a)->folder, ((const struct fentry *)b)->folder);
}

/* Sorts and merges entries for the same folder (one local, one remote). */
static void fset_merge(struct fset *s)
{
	size_t out = 0;

	if (s->n > 0)
		qsort(s->v, s->n, sizeof(*s->v), fentry_cmp);
	for (size_t i = 0; i < s->n; i++) {
		if (out > 0 && strcmp(s->v[out - 1].folder, s->v[i].folder) == 0) {
			struct fentry *d = &s->v[out - 1], *x = &s->v[i];

			if (x->local) {
				d->local = true;
				memcpy(d->ld, x->ld, WIRE_DIGEST_LEN);
			}
			if (x->remote) {
				d->remote = true;
				memcpy(d->rd, x->rd, WIRE_DIGEST_LEN);
			}
			free(x->folder);
			continue;
		}
		s->v[out++] = s->v[i];
	}
	s->n = out;
	s->sorted = true;
}

static void fset_free(struct fset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].folder);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* ---------------------------------------------------------------- digests */

static int local_digest(const char *folder, void *ctx)
{
	struct rc *rc = ctx;
	struct fentry *f = fset_add(&rc->folders, folder, strlen(folder));
	int r;

	if (rc->o->cache != NULL)
		r = digest_cache_get(rc->o->cache, rc->o->rootfd, rc->o->rules, folder,
				     rc->o->deep, f->ld, rc->e);
	else {
		struct folder_list fl = {0};

		r = scan_folder(rc->o->rootfd, rc->o->rules, folder, rc->o->deep, &fl, rc->e);
		if (r == 0)
			scan_digest(&fl, rc->o->deep, f->ld);
		folder_list_free(&fl);
	}
	if (r < 0)
		return -1;
	f->local = r == 0;
	return 0;
}

static int remote_digest(const struct w_digest_entry *d, void *ctx)
{
	struct rc *rc = ctx;
	struct fentry *f = fset_add(&rc->folders, d->folder.p, d->folder.len);

	f->remote = true;
	memcpy(f->rd, d->digest, WIRE_DIGEST_LEN);
	return 0;
}

static bool differs(const struct fentry *f)
{
	return f->local != f->remote ||
	       (f->local && memcmp(f->ld, f->rd, WIRE_DIGEST_LEN) != 0);
}

/* ------------------------------------------------------- one user's folders */

/* A folder's two listings. */
struct pair {
	const struct fentry *f;
	struct folder_list l, r;
	bool *renamed; /* per remote entry: renamed away in phase 2 */
};

static void join(struct buf *b, const char *folder, const char *name)
{
	buf_reset(b);
	if (folder[0] != '\0')
		buf_printf(b, "%s/", folder);
	buf_puts(b, name);
}

static bool is_message(const char *name)
{
	return strncmp(name, "cur/", 4) == 0 || strncmp(name, "new/", 4) == 0;
}

static bool is_dir(const struct scan_entry *s)
{
	return S_ISDIR(s->mode);
}

/* The base of a message entry "cur/<base>:2,F" as a slice. */
static struct slice base_of(const char *name, char sep)
{
	const char *b = name + 4, *s = strchr(b, sep);

	return (struct slice){b, s ? (size_t)(s - b) : strlen(b)};
}

/* A message the peer has that we do not have under that name. */
struct spare {
	struct slice base;
	struct pair *p;
	size_t k; /* index in p->r */
	bool used;
};

static int spare_cmp(const void *a, const void *b)
{
	return slice_cmp(((const struct spare *)a)->base, ((const struct spare *)b)->base);
}

struct user_plan {
	struct pair *p;
	size_t n;
	struct spare *spares; /* sorted by base */
	size_t nspares;
};

static struct spare *find_spare(struct user_plan *u, struct slice base)
{
	struct spare key = {.base = base};
	struct spare *s;

	if (u->nspares == 0)
		return NULL; /* spares is NULL: bsearch must not see it */
	s = bsearch(&key, u->spares, u->nspares, sizeof(key), spare_cmp);
	if (s == NULL)
		return NULL;
	while (s > u->spares && slice_eq(s[-1].base, base))
		s--;
	for (; s < u->spares + u->nspares && slice_eq(s->base, base); s++) {
		if (!s->used)
			return s;
	}
	return NULL;
}

static void collect_spares(struct user_plan *u, char sep)
{
	size_t cap = 0;

	for (size_t i = 0; i < u->n; i++) {
		struct pair *p = &u->p[i];

		p->renamed = xcalloc(p->r.n ? p->r.n : 1, sizeof(bool));
		for (size_t k = 0; k < p->r.n; k++) {
			const char *name = p->r.v[k].name;

			if (!is_message(name) || folder_list_find(&p->l, slice_cstr(name)))
				continue;
			if (u->nspares == cap) {
				cap = cap ? 2 * cap : 64;
				u->spares = xreallocarray(u->spares, cap, sizeof(*u->spares));
			}
			u->spares[u->nspares++] =
				(struct spare){.base = base_of(name, sep), .p = p, .k = k};
		}
	}
	if (u->nspares > 0) /* qsort(NULL, 0) is undefined */
		qsort(u->spares, u->nspares, sizeof(*u->spares), spare_cmp);
}

/* Phase 1: directories we have and the peer lacks, parents first. */
static int make_dirs(struct rc *rc, struct user_plan *u)
{
	struct buf path = BUF_INIT;
	int r = 0;

	for (size_t i = 0; i < u->n && r == 0; i++) {
		struct pair *p = &u->p[i];

		if (!p->f->local)
			continue;
		if (!p->f->remote) {
			r = client_mkdir(rc->c, rc->o->lsn, p->f->folder, rc->e);
			rc->st->folders_created++;
		}
		for (size_t k = 0; k < p->l.n && r == 0; k++) {
			const struct scan_entry *s = &p->l.v[k];

			if (!is_dir(s) || strcmp(s->name, ".") == 0 ||
			    folder_list_find(&p->r, slice_cstr(s->name)))
				continue;
			join(&path, p->f->folder, s->name);
			r = client_mkdir(rc->c, rc->o->lsn, buf_cstr(&path), rc->e);
		}
	}
	buf_free(&path);
	return r;
}

/* Phase 2: messages we have that the peer lacks or has otherwise. */
static int send_message(struct rc *rc, struct user_plan *u, struct pair *p,
			const struct scan_entry *s, struct buf *path, struct buf *from)
{
	const struct scan_entry *theirs = folder_list_find(&p->r, slice_cstr(s->name));
	char sep = md_rules_sep(rc->o->rules);
	struct spare *sp;

	join(path, p->f->folder, s->name);
	if (theirs != NULL) {
		if (theirs->size != s->size ||
		    (rc->o->deep && s->has_hash && theirs->has_hash &&
		     memcmp(theirs->sha256, s->sha256, SHA256_LEN) != 0))
			return client_put(rc->c, rc->o->lsn, buf_cstr(path), rc->e);
		if (theirs->mtime_ns != s->mtime_ns || (theirs->mode & 07777) != (s->mode & 07777))
			return client_setattr(rc->c, rc->o->lsn, buf_cstr(path), rc->e);
		return 0;
	}
	sp = find_spare(u, base_of(s->name, sep));
	if (sp != NULL) {
		sp->used = true;
		sp->p->renamed[sp->k] = true;
		join(from, sp->p->f->folder, sp->p->r.v[sp->k].name);
		return client_rename(rc->c, rc->o->lsn, buf_cstr(from), buf_cstr(path), rc->e);
	}
	return client_put(rc->c, rc->o->lsn, buf_cstr(path), rc->e);
}

static bool is_message_file(const struct scan_entry *s)
{
	return is_message(s->name) && !is_dir(s);
}

/* Will phase 2 read this message's content? (A rename or link of a spare
 * the peer has will not, but that costs only a wasted read-ahead.) */
static bool will_send(const struct pair *p, const struct scan_entry *s)
{
	const struct scan_entry *theirs = folder_list_find(&p->r, slice_cstr(s->name));

	return theirs == NULL || theirs->size != s->size;
}

/* Read-ahead: the kernel is asked for the content of the next
 * READ_AHEAD messages to send, so that a cold disk serves many reads at
 * once instead of one file at a time (the sender reads one by one). */
#define READ_AHEAD 64
#define READ_AHEAD_BYTES (128 * 1024) /* per file: a big one reads ahead itself */

struct ahead {
	size_t i, k;  /* next entry to consider */
	size_t n;     /* messages passed and not yet handled by phase 2 */
	struct buf path;
};

static void read_ahead(struct rc *rc, struct user_plan *u, struct ahead *a)
{
	while (a->n < READ_AHEAD && a->i < u->n) {
		struct pair *p = &u->p[a->i];
		const struct scan_entry *s;

		if (a->k >= p->l.n) {
			a->i++;
			a->k = 0;
			continue;
		}
		s = &p->l.v[a->k++];
		if (!is_message_file(s))
			continue;
		a->n++;
		if (!will_send(p, s))
			continue;
		join(&a->path, p->f->folder, s->name);
		fs_willneed(rc->o->rootfd, buf_cstr(&a->path), READ_AHEAD_BYTES);
	}
}

static int send_messages(struct rc *rc, struct user_plan *u)
{
	struct buf path = BUF_INIT, from = BUF_INIT;
	struct ahead ra = {.path = BUF_INIT};
	int r = 0;

	for (size_t i = 0; i < u->n && r == 0; i++) {
		struct pair *p = &u->p[i];

		for (size_t k = 0; k < p->l.n && r == 0; k++) {
			if (!is_message_file(&p->l.v[k]))
				continue;
			if (ra.n > 0)
				ra.n--;
			read_ahead(rc, u, &ra);
			r = send_message(rc, u, p, &p->l.v[k], &path, &from);
		}
	}
	buf_free(&ra.path);
	buf_free(&path);
	buf_free(&from);
	return r;
}

/* Phase 3: what the peer has and we do not (not renamed away in phase 2). */
static int delete_extras(struct rc *rc, struct user_plan *u)
{
	struct buf path = BUF_INIT;
	int r = 0;

	for (size_t i = 0; i < u->n && r == 0; i++) {
		struct pair *p = &u->p[i];

		if (!p->f->local)
			continue; /* the whole folder goes in phase 5 */
		for (size_t k = 0; k < p->r.n && r == 0; k++) {
			const struct scan_entry *s = &p->r.v[k];

			if (is_dir(s) || p->renamed[k] || folder_list_find(&p->l, slice_cstr(s->name)))
				continue;
			join(&path, p->f->folder, s->name);
			r = client_unlink(rc->c, rc->o->lsn, buf_cstr(&path), rc->e);
		}
	}
	buf_free(&path);
	return r;
}

/* Phase 4: metadata files, as deltas against the peer's copy. */
static int send_meta(struct rc *rc, struct user_plan *u)
{
	struct buf path = BUF_INIT, sig = BUF_INIT;
	int r = 0;

	for (size_t i = 0; i < u->n && r == 0; i++) {
		struct pair *p = &u->p[i];

		for (size_t k = 0; k < p->l.n && r == 0; k++) {
			const struct scan_entry *s = &p->l.v[k], *theirs;
			uint8_t sha[SHA256_LEN];
			uint64_t size;
			int q;

			if (is_dir(s) || is_message(s->name))
				continue;
			theirs = folder_list_find(&p->r, slice_cstr(s->name));
			join(&path, p->f->folder, s->name);
			if (theirs != NULL && theirs->size == s->size &&
			    theirs->mtime_ns == s->mtime_ns &&
			    memcmp(theirs->sha256, s->sha256, SHA256_LEN) == 0) {
				if ((theirs->mode & 07777) != (s->mode & 07777))
					r = client_setattr(rc->c, rc->o->lsn, buf_cstr(&path), rc->e);
				continue;
			}
			if (theirs == NULL || theirs->size < 4096) {
				r = client_meta(rc->c, rc->o->lsn, buf_cstr(&path), NULL,
						(struct slice){"", 0}, rc->e);
				continue;
			}
			q = client_sig(rc->c, buf_cstr(&path), &sig, sha, &size, rc->e);
			if (q < 0)
				r = -1;
			else
				r = client_meta(rc->c, rc->o->lsn, buf_cstr(&path),
						q == 0 ? sha : NULL, buf_slice(&sig), rc->e);
		}
	}
	buf_free(&path);
	buf_free(&sig);
	return r;
}

/* Phase 5: folders the peer has and we do not, topmost only. */
static int remove_folders(struct rc *rc, struct user_plan *u)
{
	const char *removed = NULL;
	size_t rlen = 0;
	int r = 0;

	for (size_t i = 0; i < u->n && r == 0; i++) {
		const char *f = u->p[i].f->folder;

		if (u->p[i].f->local)
			continue;
		if (removed && strncmp(f, removed, rlen) == 0 && f[rlen] == '/')
			continue; /* inside a folder already removed */
		r = client_rmtree(rc->c, rc->o->lsn, f, rc->e);
		rc->st->folders_removed++;
		removed = f;
		rlen = strlen(f);
	}
	return r;
}

static int list_pair(struct rc *rc, struct pair *p)
{
	int r;

	memset(&p->l, 0, sizeof(p->l));
	memset(&p->r, 0, sizeof(p->r));
	if (p->f->local) {
		r = scan_folder(rc->o->rootfd, rc->o->rules, p->f->folder, rc->o->deep, &p->l,
				rc->e);
		if (r < 0)
			return -1;
	}
	if (p->f->remote) {
		r = client_list(rc->c, p->f->folder, rc->o->deep ? WF_HASH : 0, &p->r, rc->e);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int reconcile_user(struct rc *rc, const struct fentry *first, size_t n)
{
	struct user_plan u = {.n = n};
	int r = 0;

	u.p = xcalloc(n, sizeof(*u.p));
	for (size_t i = 0; i < n && r == 0; i++) {
		u.p[i].f = &first[i];
		r = list_pair(rc, &u.p[i]);
	}
	rc->st->folders_differing += n;
	if (r == 0) {
		collect_spares(&u, md_rules_sep(rc->o->rules));
		r = make_dirs(rc, &u);
	}
	if (r == 0)
		r = send_messages(rc, &u);
	if (r == 0)
		r = delete_extras(rc, &u);
	if (r == 0)
		r = send_meta(rc, &u);
	if (r == 0)
		r = remove_folders(rc, &u);
	for (size_t i = 0; i < n; i++) {
		folder_list_free(&u.p[i].l);
		folder_list_free(&u.p[i].r);
		free(u.p[i].renamed);
	}
	free(u.spares);
	free(u.p);
	return r;
}

/* ------------------------------------------------------------------ tree */

/* Orders folders by user, then by path (parents first within a user), so
 * that one user's folders are handled together. */
static int by_user(const void *a, const void *b)
{
	const char *fa = ((const struct fentry *)a)->folder, *fb = ((const struct fentry *)b)->folder;
	int c = slice_cmp(md_user_of(slice_cstr(fa)), md_user_of(slice_cstr(fb)));

	return c != 0 ? c : strcmp(fa, fb);
}

/* Collects the differing folders, then hands them over a user at a time. */
int reconcile_tree(struct client *c, const struct reconcile_opts *o, const char *prefix,
		   struct reconcile_stats *st, struct err *e)
{
	struct rc rc = {.c = c, .o = o, .st = st, .e = e};
	struct fentry *diff;
	size_t ndiff = 0, i = 0;
	int r;

	memset(st, 0, sizeof(*st));
	r = scan_walk(o->rootfd, o->rules, prefix, local_digest, &rc, e);
	if (r == 0)
		r = client_digests(c, prefix, o->deep ? WF_HASH : 0, remote_digest, &rc, e);
	if (r != 0) {
		fset_free(&rc.folders);
		return -1;
	}
	fset_merge(&rc.folders);
	st->folders_compared = rc.folders.n;
	diff = xcalloc(rc.folders.n ? rc.folders.n : 1, sizeof(*diff));
	for (size_t k = 0; k < rc.folders.n; k++) {
		if (differs(&rc.folders.v[k]))
			diff[ndiff++] = rc.folders.v[k];
	}
	qsort(diff, ndiff, sizeof(*diff), by_user);
	while (i < ndiff && r == 0) {
		struct slice user = md_user_of(slice_cstr(diff[i].folder));
		size_t j = i + 1;

		while (j < ndiff && slice_eq(md_user_of(slice_cstr(diff[j].folder)), user))
			j++;
		r = reconcile_user(&rc, diff + i, j - i);
		if (o->progress != NULL)
			o->progress(j, ndiff, o->progress_ctx);
		if (r == 0 && o->yield != NULL && j < ndiff)
			r = o->yield(o->yield_ctx, e);
		i = j;
	}
	free(diff);
	fset_free(&rc.folders);
	if (r == 0 && o->cache != NULL && digest_cache_save(o->cache, e) < 0)
		log_warn("digest cache not saved: %s", e->msg);
	return r;
}
