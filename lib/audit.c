/*
 * audit.c — classify the differences between this node's folders and the
 * standby's, looking twice so that only settled differences remain (see
 * audit.h).
 *
 * SECURITY: folder names and listings come from the peer. They are only
 * compared, sent back to the same peer as query arguments, and reported;
 * nothing here opens a path the peer named (local folders come from our
 * own walk, messages are hashed from our own listing).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "fsutil.h"
#include "log.h"
#include "safepath.h"
#include "xalloc.h"

#define PAUSE_SLICE_MS 500 /* longest wait between keepalive checks */

static const char *const kind_names[AK_COUNT] = {
    "missing",	"extra",      "flags",		"content",
    "metadata", "attributes", "folder_missing", "folder_extra",
};

const char *audit_kind_name(enum audit_kind k)
{
	return (unsigned)k < AK_COUNT ? kind_names[k] : "unknown";
}

/* ------------------------------------------------------------ the lists */

static void diff_free(struct audit_diff *d)
{
	free(d->folder);
	free(d->path);
	free(d->standby_path);
}

void audit_diffs_free(struct audit_diffs *d)
{
	for (size_t i = 0; i < d->n; i++)
		diff_free(&d->v[i]);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static int diff_cmp(const void *a, const void *b)
{
	const struct audit_diff *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	return c != 0 ? c : (int)x->kind - (int)y->kind;
}

void audit_diffs_sort(struct audit_diffs *d)
{
	if (d->n > 1)
		qsort(d->v, d->n, sizeof(*d->v), diff_cmp);
}

/* What a second look compares. Directories: presence and mode only (their
 * mtimes move with every delivery); a folder that is missing or extra as a
 * whole: presence only. */
static void snapshot(struct audit_entry *s, enum audit_kind k, const struct scan_entry *p)
{
	memset(s, 0, sizeof(*s));
	s->present = k == AK_FOLDER_MISSING || (p != NULL && k != AK_FOLDER_EXTRA);
	if (p == NULL || k == AK_FOLDER_MISSING || k == AK_FOLDER_EXTRA)
		return;
	s->mode = p->mode;
	if (S_ISDIR(p->mode))
		return;
	s->size = p->size;
	s->mtime_ns = p->mtime_ns;
	s->has_hash = p->has_hash;
	memcpy(s->sha256, p->sha256, SHA256_LEN);
}

static bool same_entry(const struct audit_entry *a, const struct audit_entry *b)
{
	if (a->present != b->present)
		return false;
	if (a->size != b->size || a->mtime_ns != b->mtime_ns || a->mode != b->mode)
		return false;
	return !(a->has_hash && b->has_hash && memcmp(a->sha256, b->sha256, SHA256_LEN) != 0);
}

static void join(struct buf *b, const char *folder, const char *name)
{
	buf_reset(b);
	if (folder[0] != '\0')
		buf_printf(b, "%s/", folder);
	buf_puts(b, name);
}

/* Appends a difference; p is the primary's entry (NULL if it has none). */
static struct audit_diff *add(struct audit_diffs *out, enum audit_kind k, const char *folder,
			      const char *name, const struct scan_entry *p)
{
	struct audit_diff *d;
	struct buf path = BUF_INIT;

	if (out->n == out->cap) {
		out->cap = out->cap ? 2 * out->cap : 16;
		out->v = xreallocarray(out->v, out->cap, sizeof(*out->v));
	}
	d = &out->v[out->n++];
	memset(d, 0, sizeof(*d));
	d->kind = k;
	d->folder = xstrdup(folder);
	if (name != NULL) {
		join(&path, folder, name);
		d->path = xstrdup(buf_cstr(&path));
	} else {
		d->path = xstrdup(folder);
	}
	snapshot(&d->primary, k, p);
	buf_free(&path);
	return d;
}

/* ------------------------------------------------------- one folder */

static bool is_message(const char *name)
{
	return strncmp(name, "cur/", 4) == 0 || strncmp(name, "new/", 4) == 0;
}

/* A message file that one side has and the other lacks under that name. */
struct cand {
	const struct scan_entry *en;
	struct slice base;
	bool used;
};

struct cands {
	struct cand *v;
	size_t n, cap;
};

static void cand_add(struct cands *c, const struct scan_entry *en, char sep)
{
	const char *b = en->name + 4, *s = strchr(b, sep);

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->v = xreallocarray(c->v, c->cap, sizeof(*c->v));
	}
	c->v[c->n++] = (struct cand){en, {b, s ? (size_t)(s - b) : strlen(b)}, false};
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	int c = slice_cmp(x->base, y->base);

	return c != 0 ? c : strcmp(x->en->name, y->en->name);
}

/* The first unused candidate with this base; NULL if none. */
static struct cand *cand_find(struct cands *c, struct slice base)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (slice_cmp(c->v[mid].base, base) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < c->n && slice_eq(c->v[lo].base, base); lo++) {
		if (!c->v[lo].used)
			return &c->v[lo];
	}
	return NULL;
}

/* An entry only the primary has (messages wait for pairing). */
static void only_primary(struct audit_diffs *out, const char *folder, const struct scan_entry *p,
			 struct cands *missing, char sep)
{
	if (S_ISDIR(p->mode))
		add(out, AK_FOLDER_MISSING, folder, p->name, p);
	else if (is_message(p->name))
		cand_add(missing, p, sep);
	else
		add(out, AK_METADATA, folder, p->name, p);
}

static void only_standby(struct audit_diffs *out, const char *folder, const struct scan_entry *s,
			 struct cands *extra, char sep)
{
	if (S_ISDIR(s->mode))
		add(out, AK_FOLDER_EXTRA, folder, s->name, NULL);
	else if (is_message(s->name))
		cand_add(extra, s, sep);
	else
		add(out, AK_METADATA, folder, s->name, NULL);
}

static bool hashes_differ(const struct scan_entry *p, const struct scan_entry *s)
{
	return p->has_hash && s->has_hash && memcmp(p->sha256, s->sha256, SHA256_LEN) != 0;
}

/* An entry both have under the same name. */
static void both(struct audit_diffs *out, const char *folder, const struct scan_entry *p,
		 const struct scan_entry *s, bool deep)
{
	bool attrs = (p->mode & 07777) != (s->mode & 07777);
	struct audit_diff *d;

	if (S_ISDIR(p->mode) != S_ISDIR(s->mode)) {
		add(out, AK_CONTENT, folder, p->name, p);
		return;
	}
	if (S_ISDIR(p->mode)) {
		if (attrs)
			add(out, AK_ATTRIBUTES, folder, strcmp(p->name, ".") ? p->name : NULL, p);
		return;
	}
	attrs = attrs || p->mtime_ns != s->mtime_ns;
	if (!is_message(p->name)) {
		/* Metadata files always carry their hash. */
		if (p->size != s->size || hashes_differ(p, s))
			add(out, AK_METADATA, folder, p->name, p);
		else if (attrs)
			add(out, AK_ATTRIBUTES, folder, p->name, p);
		return;
	}
	if (p->size != s->size) {
		add(out, AK_CONTENT, folder, p->name, p);
	} else if (deep && hashes_differ(p, s)) {
		d = add(out, AK_CONTENT, folder, p->name, p);
		d->by_hash = true;
	} else if (attrs) {
		add(out, AK_ATTRIBUTES, folder, p->name, p);
	}
}

/* Pairs messages missing under one name with the standby's extras of the
 * same base (flags); the rest are missing or extra. */
static void pair_messages(struct audit_diffs *out, const char *folder, struct cands *missing,
			  struct cands *extra)
{
	struct buf path = BUF_INIT;

	if (extra->n > 1) /* qsort of NULL, even for 0 entries, is undefined */
		qsort(extra->v, extra->n, sizeof(*extra->v), cand_cmp);
	for (size_t i = 0; i < missing->n; i++) {
		const struct scan_entry *p = missing->v[i].en;
		struct cand *x = cand_find(extra, missing->v[i].base);
		struct audit_diff *d;

		if (x == NULL) {
			add(out, AK_MISSING, folder, p->name, p);
			continue;
		}
		x->used = true;
		d = add(out, AK_FLAGS, folder, p->name, p);
		join(&path, folder, x->en->name);
		d->standby_path = xstrdup(buf_cstr(&path));
	}
	for (size_t i = 0; i < extra->n; i++) {
		if (!extra->v[i].used)
			add(out, AK_EXTRA, folder, extra->v[i].en->name, NULL);
	}
	buf_free(&path);
}

void audit_compare(const char *folder, const struct folder_list *primary,
		   const struct folder_list *standby, char sep, bool deep, struct audit_diffs *out)
{
	struct cands missing = {0}, extra = {0};
	size_t i = 0, j = 0;

	if (primary == NULL || standby == NULL) {
		if (primary != NULL)
			add(out, AK_FOLDER_MISSING, folder, NULL, NULL);
		else if (standby != NULL)
			add(out, AK_FOLDER_EXTRA, folder, NULL, NULL);
		return;
	}
	/* Both listings are sorted by name (scan.h, LIST_REP): merge them. */
	while (i < primary->n || j < standby->n) {
		int c = i == primary->n	  ? 1
			: j == standby->n ? -1
					  : strcmp(primary->v[i].name, standby->v[j].name);

		if (c < 0)
			only_primary(out, folder, &primary->v[i++], &missing, sep);
		else if (c > 0)
			only_standby(out, folder, &standby->v[j++], &extra, sep);
		else
			both(out, folder, &primary->v[i++], &standby->v[j++], deep);
	}
	pair_messages(out, folder, &missing, &extra);
	free(missing.v);
	free(extra.v);
}

/* ------------------------------------------------------ the second look */

static const struct audit_diff *find_diff(const struct audit_diffs *d, const struct audit_diff *key)
{
	return d->n ? bsearch(key, d->v, d->n, sizeof(*d->v), diff_cmp) : NULL;
}

void audit_confirm(struct audit_diffs *d, const struct audit_diffs *again)
{
	size_t out = 0;

	for (size_t i = 0; i < d->n; i++) {
		struct audit_diff *x = &d->v[i];
		const struct audit_diff *y = find_diff(again, x);

		if (y == NULL || !same_entry(&x->primary, &y->primary)) {
			diff_free(x);
			continue;
		}
		free(x->standby_path);
		x->standby_path = y->standby_path ? xstrdup(y->standby_path) : NULL;
		x->by_hash = y->by_hash;
		d->v[out++] = *x;
	}
	d->n = out;
}

/* ------------------------------------------------------------ the engine */

/* A folder as one side's digests describe it. */
struct fent {
	char *folder;
	uint8_t digest[WIRE_DIGEST_LEN];
	struct folder_counts counts; /* local side only */
};

struct fents {
	struct fent *v;
	size_t n, cap;
};

/* Bytes allowed so far against a clock: one for each node's disk. */
struct pacer {
	uint64_t start_ms, bytes;
};

struct audit {
	struct client *c;
	struct audit_opts o;
	struct fents local, remote;
	struct pacer here, peer;
	struct audit_stats st;
	struct err *e; /* during audit_scan, for the walk's callbacks */
};

static struct fent *fents_add(struct fents *s, const char *folder, size_t len)
{
	struct fent *f;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	f = &s->v[s->n++];
	memset(f, 0, sizeof(*f));
	f->folder = xstrndup(folder, len);
	return f;
}

static void fents_free(struct fents *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].folder);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int fent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fent *)a)->folder, ((const struct fent *)b)->folder);
}

static const struct fent *fents_find(const struct fents *s, const char *folder)
{
	struct fent key = {.folder = (char *)folder};

	return s->n ? bsearch(&key, s->v, s->n, sizeof(*s->v), fent_cmp) : NULL;
}

struct audit *audit_new(struct client *c, const struct audit_opts *o)
{
	struct audit *a = xcalloc(1, sizeof(*a));

	a->c = c;
	a->o = *o;
	a->here.start_ms = a->peer.start_ms = now_mono_ms();
	return a;
}

void audit_free(struct audit **ap)
{
	struct audit *a = *ap;

	if (a == NULL)
		return;
	fents_free(&a->local);
	fents_free(&a->remote);
	free(a);
	*ap = NULL;
}

int audit_pause(struct audit *a, uint64_t ms, struct err *e)
{
	uint64_t end = now_mono_ms() + ms, now;

	/* Waiting on the session notices a peer that went away, and reads
	 * its PONGs. */
	while ((now = now_mono_ms()) < end) {
		uint64_t left = end - now;

		if (client_poll(a->c, (int)(left < PAUSE_SLICE_MS ? left : PAUSE_SLICE_MS), e) <
			0 ||
		    client_keepalive(a->c, e) < 0)
			return -1;
	}
	return client_keepalive(a->c, e);
}

/* Charges bytes to a pacer and waits until the rate limit allows them. */
static int pace(struct audit *a, struct pacer *p, uint64_t bytes, struct err *e)
{
	uint64_t due, now;

	p->bytes += bytes;
	if (a->o.rate_limit == 0)
		return client_keepalive(a->c, e);
	due = p->start_ms + p->bytes / a->o.rate_limit * 1000 +
	      p->bytes % a->o.rate_limit * 1000 / a->o.rate_limit;
	now = now_mono_ms();
	if (due <= now)
		return client_keepalive(a->c, e);
	a->st.paced_ms += due - now;
	return audit_pause(a, due - now, e);
}

/* Hashes the listing's messages one at a time, paced; drops those that
 * vanished meanwhile. Returns 0, 1 if the folder itself vanished, -1. */
static int hash_local(struct audit *a, const char *folder, struct folder_list *l, struct err *e)
{
	int dfd = folder[0] ? sp_open(a->o.rootfd, folder, O_RDONLY | O_DIRECTORY, 0, e)
			    : openat(a->o.rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t i = 0;
	int r = 0;

	if (dfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 1;
		return err_sys(e, "cannot open folder '%s'", folder);
	}
	while (r == 0 && i < l->n) {
		struct scan_entry *en = &l->v[i];

		if (!S_ISREG(en->mode) || !is_message(en->name) || en->has_hash) {
			i++;
			continue;
		}
		r = scan_hash_entry(dfd, en, e);
		if (r == 1) {
			free(en->name);
			memmove(en, en + 1, (l->n - i - 1) * sizeof(*en));
			l->n--;
			r = 0;
			continue;
		}
		if (r == 0) {
			a->st.hashed += en->size;
			r = pace(a, &a->here, en->size, e);
		}
		i++;
	}
	close(dfd);
	return r < 0 ? err_prefix(e, "in folder '%s'", folder) : 0;
}

/* The standby's listing of folder (hashed when deep, paced by the size
 * this node has there). Returns 0, 1 if it has no such folder, -1. */
static int list_peer(struct audit *a, const char *folder, struct folder_list *r, struct err *e)
{
	const struct fent *mine = fents_find(&a->local, folder);
	uint64_t expected = mine ? mine->counts.bytes : 0;
	struct folder_counts peer;
	int rr;

	if (a->o.deep && pace(a, &a->peer, expected, e) < 0)
		return -1;
	rr = client_list(a->c, folder, a->o.deep ? WF_HASH : 0, r, e);
	if (rr >= 0 && a->o.deep) {
		/* Charge what the standby really hashed. */
		scan_count(r, &peer);
		a->peer.bytes = a->peer.bytes - expected + peer.bytes;
		a->st.peer_hashed += peer.bytes;
	}
	return rr;
}

/* This node's listing of folder, hashed when deep. Returns 0, 1 if there
 * is no such folder, -1. */
static int list_here(struct audit *a, const char *folder, struct folder_list *l, struct err *e)
{
	int rl = scan_folder(a->o.rootfd, a->o.rules, folder, false, l, e);

	if (rl == 0 && a->o.deep)
		rl = hash_local(a, folder, l, e);
	return rl;
}

static void compare_lists(struct audit *a, const char *folder, int rl, struct folder_list *l,
			  int rr, struct folder_list *r, struct audit_diffs *out)
{
	audit_compare(folder, rl == 0 ? l : NULL, rr == 0 ? r : NULL, md_rules_sep(a->o.rules),
		      a->o.deep, out);
	a->st.folders_listed++;
	folder_list_free(l);
	folder_list_free(r);
}

/* Lists one folder on both sides, the standby first (see audit.h), and
 * compares the listings. */
static int look(struct audit *a, const char *folder, struct audit_diffs *out, struct err *e)
{
	struct folder_list l = {0}, r = {0};
	int rl, rr = list_peer(a, folder, &r, e);

	if (rr < 0)
		return -1;
	rl = list_here(a, folder, &l, e);
	if (rl < 0) {
		folder_list_free(&r);
		return -1;
	}
	compare_lists(a, folder, rl, &l, rr, &r, out);
	return 0;
}

static int local_digest(const char *folder, void *ctx)
{
	struct audit *a = ctx;
	struct fent *f = fents_add(&a->local, folder, strlen(folder));
	struct folder_list l;
	int r;

	if (a->o.cache != NULL) {
		r = digest_cache_get_counted(a->o.cache, a->o.rootfd, a->o.rules, folder, false,
					     f->digest, &f->counts, a->e);
	} else {
		r = scan_folder(a->o.rootfd, a->o.rules, folder, false, &l, a->e);
		if (r == 0) {
			scan_digest(&l, false, f->digest);
			scan_count(&l, &f->counts);
			folder_list_free(&l);
		}
	}
	if (r == 1) { /* vanished during the walk */
		free(f->folder);
		a->local.n--;
		return 0;
	}
	/* A first walk of a large store takes a while: keep the session. */
	return r < 0 || client_keepalive(a->c, a->e) < 0 ? -1 : 0;
}

static int remote_digest(const struct w_digest_entry *d, void *ctx)
{
	struct audit *a = ctx;
	struct fent *f = fents_add(&a->remote, d->folder.p, d->folder.len);

	memcpy(f->digest, d->digest, WIRE_DIGEST_LEN);
	return 0;
}

/* True if a proper ancestor of folder (the mail root, or a prefix ending
 * before a '/') is in the sorted list s: a folder missing as a whole is
 * reported once, at its top. */
static bool under_any(const struct fents *s, const char *folder)
{
	struct buf up = BUF_INIT;
	bool found = folder[0] != '\0' && fents_find(s, "") != NULL;

	for (const char *p = strchr(folder, '/'); p != NULL && !found; p = strchr(p + 1, '/')) {
		buf_set(&up, folder, (size_t)(p - folder));
		found = fents_find(s, buf_cstr(&up)) != NULL;
	}
	buf_free(&up);
	return found;
}

/* A folder on one side only: reported unless an ancestor already was. */
static void one_sided(struct fents *seen, const char *folder, enum audit_kind k,
		      struct audit_diffs *out)
{
	if (under_any(seen, folder))
		return;
	fents_add(seen, folder, strlen(folder)); /* in order: seen stays sorted */
	add(out, k, folder, NULL, NULL);
}

/* A folder of the merged digest lists: either side may lack it. */
struct mrg {
	const struct fent *l, *r;
};

static const char *mrg_folder(const struct mrg *m)
{
	return m->l ? m->l->folder : m->r->folder;
}

/* With deep: the folders m[0..*n_r) one deep DIGEST_REQ for m[0] covers
 * exactly — one user's folders (md_user_of), on both sides and alike by
 * their shallow digests, with nothing else sorting among them (a prefix
 * request returns everything below the prefix). */
static bool deep_group(const struct mrg *m, size_t left, size_t *n_r)
{
	const char *top = mrg_folder(&m[0]);
	size_t len = strlen(top), n = 1;

	if (len == 0 || !slice_eq_cstr(md_user_of(slice_cstr(top)), top))
		return false;
	for (; n < left && strncmp(mrg_folder(&m[n]), top, len) == 0; n++) {
		const char *f = mrg_folder(&m[n]);

		if (f[len] != '/' || !slice_eq_cstr(md_user_of(slice_cstr(f)), top))
			return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (m[i].l == NULL || m[i].r == NULL ||
		    memcmp(m[i].l->digest, m[i].r->digest, WIRE_DIGEST_LEN) != 0)
			return false;
	}
	*n_r = n;
	return true;
}

static int deep_digest(const struct w_digest_entry *d, void *ctx)
{
	struct fents *s = ctx;

	memcpy(fents_add(s, d->folder.p, d->folder.len)->digest, d->digest, WIRE_DIGEST_LEN);
	return 0;
}

/* One user's folders by deep digests. The standby computes its side in
 * one request while this node hashes its own; a folder whose deep
 * digests differ is then listed on both sides. */
static int deep_user(struct audit *a, const struct mrg *m, size_t n, struct audit_diffs *out,
		     struct err *e)
{
	uint8_t(*mine)[WIRE_DIGEST_LEN] = xcalloc(n, WIRE_DIGEST_LEN);
	bool *gone = xcalloc(n, sizeof(*gone));
	struct fents theirs = {0};
	uint64_t bytes = 0;
	int r;

	for (size_t i = 0; i < n; i++)
		bytes += m[i].l->counts.bytes;
	r = pace(a, &a->peer, bytes, e);
	if (r == 0)
		r = client_digests_start(a->c, m[0].l->folder, WF_HASH, deep_digest, &theirs, e);
	for (size_t i = 0; i < n && r == 0; i++) {
		struct folder_list l = {0};
		int here = list_here(a, m[i].l->folder, &l, e);

		if (here == 0)
			scan_digest(&l, true, mine[i]);
		gone[i] = here == 1;
		r = here < 0 ? -1 : 0;
		folder_list_free(&l);
	}
	if (r == 0 && (r = client_wait(a->c, e)) == 0) {
		a->st.peer_hashed += bytes;
		if (theirs.n > 1)
			qsort(theirs.v, theirs.n, sizeof(*theirs.v), fent_cmp);
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct fent *t = fents_find(&theirs, m[i].l->folder);

		if (gone[i] || t == NULL || memcmp(mine[i], t->digest, WIRE_DIGEST_LEN) != 0)
			r = look(a, m[i].l->folder, out, e);
	}
	fents_free(&theirs);
	free(mine);
	free(gone);
	return r;
}

/* Merges the two sorted digest lists. */
static struct mrg *merge(const struct audit *a, size_t *n_r)
{
	struct mrg *m = xcalloc(a->local.n + a->remote.n + 1, sizeof(*m));
	size_t i = 0, j = 0, n = 0;

	while (i < a->local.n || j < a->remote.n) {
		const struct fent *l = i < a->local.n ? &a->local.v[i] : NULL;
		const struct fent *r = j < a->remote.n ? &a->remote.v[j] : NULL;
		int c = l == NULL ? 1 : r == NULL ? -1 : strcmp(l->folder, r->folder);

		m[n++] = (struct mrg){c <= 0 ? l : NULL, c >= 0 ? r : NULL};
		i += c <= 0;
		j += c >= 0;
	}
	*n_r = n;
	return m;
}

/* Handles each folder: one-sided ones are reported, those that differ are
 * listed, and with deep the others are compared by content. */
static int compare_trees(struct audit *a, struct audit_diffs *out, struct err *e)
{
	struct fents missing = {0}, extra = {0};
	size_t n, i = 0, k;
	struct mrg *m = merge(a, &n);
	int r = 0;

	for (size_t x = 0; x < n; x++) {
		a->st.folders++;
		if (m[x].l != NULL) {
			a->st.messages += m[x].l->counts.messages;
			a->st.bytes += m[x].l->counts.bytes;
		}
	}
	while (r == 0 && i < n) {
		const struct mrg *f = &m[i];

		k = 1;
		if (f->r == NULL)
			one_sided(&missing, f->l->folder, AK_FOLDER_MISSING, out);
		else if (f->l == NULL)
			one_sided(&extra, f->r->folder, AK_FOLDER_EXTRA, out);
		else if (a->o.deep && deep_group(f, n - i, &k))
			r = deep_user(a, f, k, out, e);
		else if (a->o.deep || memcmp(f->l->digest, f->r->digest, WIRE_DIGEST_LEN) != 0)
			r = look(a, f->l->folder, out, e);
		i += k;
		if (a->o.progress != NULL)
			a->o.progress(i, n, a->o.progress_ctx);
	}
	free(m);
	fents_free(&missing);
	fents_free(&extra);
	return r;
}

/* Sorts a digest list and checks that it names each folder once. */
static int sort_unique(struct fents *s, const char *side, struct err *e)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), fent_cmp);
	for (size_t i = 1; i < s->n; i++) {
		if (strcmp(s->v[i - 1].folder, s->v[i].folder) == 0)
			return err_set(e, ERR_PROTO, "%s digests name folder '%s' twice", side,
				       s->v[i].folder);
	}
	return 0;
}

int audit_scan(struct audit *a, struct audit_diffs *out, struct audit_stats *st, struct err *e)
{
	int r;

	memset(out, 0, sizeof(*out));
	a->e = e;
	r = scan_walk(a->o.rootfd, a->o.rules, a->o.prefix, local_digest, a, e);
	if (r == 0)
		r = client_digests(a->c, a->o.prefix, 0, remote_digest, a, e);
	if (r == 0)
		r = sort_unique(&a->local, "local", e);
	if (r == 0)
		r = sort_unique(&a->remote, "the standby's", e);
	if (r == 0)
		r = compare_trees(a, out, e);
	a->e = NULL;
	if (a->o.cache != NULL) {
		struct err ce;

		if (digest_cache_save(a->o.cache, &ce) < 0)
			log_warn("digest cache not saved: %s", ce.msg);
	}
	audit_diffs_sort(out);
	*st = a->st;
	return r != 0 ? -1 : 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int audit_recheck(struct audit *a, struct audit_diffs *d, struct err *e)
{
	struct audit_diffs again = {0};
	char **folders = xcalloc(d->n ? d->n : 1, sizeof(*folders));
	size_t n = 0;
	int r = 0;

	for (size_t i = 0; i < d->n; i++)
		folders[n++] = d->v[i].folder;
	qsort(folders, n, sizeof(*folders), str_cmp);
	/* Budgets restart: the wait before this look is not credit. */
	a->here = a->peer = (struct pacer){now_mono_ms(), 0};
	for (size_t i = 0; i < n && r == 0; i++) {
		if (i > 0 && strcmp(folders[i], folders[i - 1]) == 0)
			continue;
		r = look(a, folders[i], &again, e);
	}
	free(folders);
	if (r == 0) {
		audit_diffs_sort(&again);
		audit_confirm(d, &again);
	}
	audit_diffs_free(&again);
	return r;
}
