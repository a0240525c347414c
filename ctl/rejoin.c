/*
 * rejoin.c — the journal's account after the new primary's position, and
 * the compare that judges what only this node has (see rejoin.h).
 *
 * SECURITY: listings come from the new primary (authenticated, parsed by
 * wire.c); their names are only compared with local names, never used to
 * reach the local file system. Local paths come from our own scan.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "journal.h"
#include "log.h"
#include "rejoin.h"
#include "safepath.h"
#include "xalloc.h"

#define LOOKBACK    200000		/* records read before L when gaps follow it */
#define LOOKBACK_NS (60 * 1000000000LL) /* from this long before the first gap */

const char *rj_fate_name(enum rj_fate f)
{
	switch (f) {
	case RJ_SEND: return "send";
	case RJ_RECOVER: return "recover";
	default: return "expunged";
	}
}

/* ------------------------------------------------------------- journal */

struct ubase {
	char *user, *base;
};

struct gap {
	char *prefix;
	bool subtree;
	int64_t from_ns; /* messages touched since then are in doubt */
};

struct uset {
	struct ubase *v;
	size_t n, cap;
};

struct rj_journal {
	const struct md_rules *rules;
	char blind[ERR_MSG_MAX + 64]; /* "" if the journal can tell */
	struct uset created;	      /* bases that appeared after L */
	struct uset known;	      /* bases that appeared shortly before L */
	struct gap *gaps;
	size_t ngaps;
	uint64_t records, last;
};

static int ubase_cmp(const void *a, const void *b)
{
	const struct ubase *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	return c != 0 ? c : strcmp(x->base, y->base);
}

/* Splits a message path into user and base; false if it is no message. */
static bool message_of(const struct md_rules *rules, struct slice path, struct slice *user_r,
		       struct slice *base_r)
{
	struct md_class c;
	struct md_name n;

	md_classify(rules, path, false, &c);
	if (c.kind != MD_MESSAGE)
		return false;
	*user_r = md_user_of(c.folder);
	if (md_name_parse(c.name, md_rules_sep(rules), &n, NULL) == 0)
		*base_r = n.base;
	else
		*base_r = c.name;
	return true;
}

static void uset_add(struct uset *s, struct slice user, struct slice base)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	s->v[s->n].user = xstrndup(user.p, user.len);
	s->v[s->n].base = xstrndup(base.p, base.len);
	s->n++;
}

static bool uset_has(const struct uset *s, struct slice user, struct slice base)
{
	char *u = xstrndup(user.p, user.len), *b = xstrndup(base.p, base.len);
	struct ubase key = {u, b};
	bool r = s->n > 0 && bsearch(&key, s->v, s->n, sizeof(key), ubase_cmp) != NULL;

	free(u);
	free(b);
	return r;
}

static void uset_free(struct uset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].user);
		free(s->v[i].base);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* A record that makes a message base appear for its user: a create, or a
 * rename from elsewhere (a rename keeping a user's base is a flag change
 * or a move). Adds it to s. */
static void appeared(const struct md_rules *rules, const struct jrec *r, struct uset *s)
{
	struct slice u1, b1, u2, b2;

	if (r->type == JR_CREATE && message_of(rules, r->path, &u1, &b1))
		uset_add(s, u1, b1);
	else if (r->type == JR_RENAME && message_of(rules, r->path2, &u2, &b2) &&
		 (!message_of(rules, r->path, &u1, &b1) || !slice_eq(u1, u2) || !slice_eq(b1, b2)))
		uset_add(s, u2, b2);
}

static void add_gap(struct rj_journal *j, struct slice prefix, bool subtree, uint64_t from_ns)
{
	j->gaps = xreallocarray(j->gaps, j->ngaps + 1, sizeof(*j->gaps));
	j->gaps[j->ngaps].prefix = xstrndup(prefix.p, prefix.len);
	j->gaps[j->ngaps].subtree = subtree;
	j->gaps[j->ngaps].from_ns = (int64_t)from_ns - RJ_SLACK_NS;
	j->ngaps++;
}

/* One record after L; prev_ns: the time of the record before it. */
static void account(struct rj_journal *j, const struct jrec *r, uint64_t prev_ns)
{
	if (r->type == JR_START)
		add_gap(j, SLICE_LIT(""), true, prev_ns);
	else if (r->type == JR_RESCAN)
		add_gap(j, r->path, (r->flags & JR_F_SUBTREE) != 0, prev_ns);
	else
		appeared(j->rules, r, &j->created);
}

/* When gaps follow L, the bases that appeared in the records just before
 * L (up to LOOKBACK of them, from a little before the first gap) are
 * known to have reached the new primary: touched in a gap or not, one of
 * them missing there was expunged there. */
static void look_back(struct rj_journal *j, const char *jdir, uint64_t after)
{
	int64_t since = INT64_MAX;
	struct jreader *rd;
	struct jrec r;
	struct err e;
	bool gap;

	for (size_t i = 0; i < j->ngaps; i++)
		since = j->gaps[i].from_ns < since ? j->gaps[i].from_ns : since;
	if (j->ngaps == 0)
		return;
	since -= LOOKBACK_NS;
	rd = jreader_open(jdir, after > LOOKBACK ? after - LOOKBACK : 0, &gap, &e);
	while (rd != NULL && jreader_next(rd, &r, &e) == 1 && r.lsn <= after) {
		if ((int64_t)r.time_ns >= since)
			appeared(j->rules, &r, &j->known);
	}
	jreader_free(&rd);
	if (j->known.n > 0)
		qsort(j->known.v, j->known.n, sizeof(*j->known.v), ubase_cmp);
}

/* Opens the journal after L, preferring to see record L itself (its time
 * starts a gap that follows it). Returns the reader or NULL (blind set). */
static struct jreader *open_after(struct rj_journal *j, const char *jdir, uint64_t after)
{
	struct jreader *rd;
	struct err e;
	bool gap = false;

	rd = jreader_open(jdir, after - 1, &gap, &e);
	if (rd != NULL && gap) {
		jreader_free(&rd);
		rd = jreader_open(jdir, after, &gap, &e);
	}
	if (rd == NULL)
		snprintf(j->blind, sizeof(j->blind), "the journal cannot be read: %s", e.msg);
	else if (gap)
		snprintf(j->blind, sizeof(j->blind),
			 "the journal no longer holds the records after lsn %llu (retention)",
			 (unsigned long long)after);
	if (gap)
		jreader_free(&rd);
	return rd;
}

struct rj_journal *rj_journal_read(const char *jdir, const struct md_rules *rules,
				   uint64_t journal_id, uint64_t after, bool journaling)
{
	struct rj_journal *j = xcalloc(1, sizeof(*j));
	struct jreader *rd;
	uint64_t prev_ns = 0;
	struct jrec r;
	struct err e;
	int k;

	j->rules = rules;
	if (after == 0) {
		snprintf(j->blind, sizeof(j->blind),
			 "the new primary has no durable position in this node's journal");
		return j;
	}
	rd = open_after(j, jdir, after);
	if (rd == NULL)
		return j;
	if (jreader_journal_id(rd) != journal_id) {
		snprintf(j->blind, sizeof(j->blind),
			 "the new primary followed another journal than the one here");
		jreader_free(&rd);
		return j;
	}
	while ((k = jreader_next(rd, &r, &e)) == 1) {
		if (r.lsn > after) {
			account(j, &r, prev_ns);
			j->records++;
		}
		j->last = r.lsn;
		prev_ns = r.time_ns;
	}
	if (k < 0)
		snprintf(j->blind, sizeof(j->blind), "the journal cannot be read: %s", e.msg);
	else if (j->last < after)
		snprintf(j->blind, sizeof(j->blind),
			 "the new primary has more of this journal (lsn %llu) than is here (%llu): "
			 "records were lost in a crash",
			 (unsigned long long)after, (unsigned long long)j->last);
	else if (!journaling)
		add_gap(j, SLICE_LIT(""), true, prev_ns);
	jreader_free(&rd);
	if (j->created.n > 0)
		qsort(j->created.v, j->created.n, sizeof(*j->created.v), ubase_cmp);
	if (j->blind[0] == '\0')
		look_back(j, jdir, after);
	return j;
}

const char *rj_journal_blind(const struct rj_journal *j)
{
	return j->blind[0] ? j->blind : NULL;
}

uint64_t rj_journal_records(const struct rj_journal *j)
{
	return j->records;
}

uint64_t rj_journal_last(const struct rj_journal *j)
{
	return j->last;
}

void rj_journal_free(struct rj_journal **jp)
{
	struct rj_journal *j = *jp;

	if (j == NULL)
		return;
	uset_free(&j->created);
	uset_free(&j->known);
	for (size_t i = 0; i < j->ngaps; i++)
		free(j->gaps[i].prefix);
	free(j->gaps);
	free(j);
	*jp = NULL;
}

static bool gap_covers(const struct gap *g, const char *folder)
{
	size_t n = strlen(g->prefix);

	if (n == 0)
		return g->subtree || folder[0] == '\0';
	if (strncmp(folder, g->prefix, n) != 0)
		return false;
	return folder[n] == '\0' || (g->subtree && folder[n] == '/');
}

enum rj_fate rj_judge(const struct rj_journal *j, struct slice user, struct slice base,
		      const char *folder, int64_t ctime_ns)
{
	if (j->blind[0] != '\0')
		return RJ_RECOVER;
	if (uset_has(&j->created, user, base))
		return RJ_SEND;
	if (uset_has(&j->known, user, base))
		return RJ_EXPUNGED;
	for (size_t i = 0; i < j->ngaps; i++) {
		if (ctime_ns >= j->gaps[i].from_ns && gap_covers(&j->gaps[i], folder))
			return RJ_RECOVER;
	}
	return RJ_EXPUNGED;
}

/* ------------------------------------------------------------- compare */

struct fdig {
	char *folder;
	bool local, remote;
	uint8_t ld[WIRE_DIGEST_LEN], rd[WIRE_DIGEST_LEN];
};

struct fset {
	struct fdig *v;
	size_t n, cap;
};

struct cmp {
	struct client *c;
	int rootfd;
	const struct md_rules *rules;
	struct digest_cache *cache;
	const struct rj_journal *j;
	struct rj_plan *plan;
	struct fset local, remote;
	struct err *e;
};

static struct fdig *fset_add(struct fset *s, const char *folder, size_t len)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	memset(&s->v[s->n], 0, sizeof(s->v[0]));
	s->v[s->n].folder = xstrndup(folder, len);
	return &s->v[s->n++];
}

static void fset_free(struct fset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].folder);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int fdig_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fdig *)a)->folder, ((const struct fdig *)b)->folder);
}

static int on_local(const char *folder, void *ctx)
{
	struct cmp *m = ctx;
	struct fdig *f = fset_add(&m->local, folder, strlen(folder));
	int r = digest_cache_get(m->cache, m->rootfd, m->rules, folder, false, f->ld, m->e);

	if (r < 0)
		return -1;
	f->local = r == 0;
	return 0;
}

static int on_remote(const struct w_digest_entry *d, void *ctx)
{
	struct cmp *m = ctx;
	struct fdig *f = fset_add(&m->remote, d->folder.p, d->folder.len);

	f->remote = true;
	memcpy(f->rd, d->digest, WIRE_DIGEST_LEN);
	return 0;
}

/* Merges both sides into one sorted set (local entries absorb remote). */
static void merge(struct cmp *m, struct fset *all)
{
	size_t i = 0, k = 0;

	qsort(m->local.v, m->local.n, sizeof(struct fdig), fdig_cmp);
	qsort(m->remote.v, m->remote.n, sizeof(struct fdig), fdig_cmp);
	while (i < m->local.n || k < m->remote.n) {
		int c = i == m->local.n	   ? 1
			: k == m->remote.n ? -1
					   : strcmp(m->local.v[i].folder, m->remote.v[k].folder);
		struct fdig *f =
		    fset_add(all, c <= 0 ? m->local.v[i].folder : m->remote.v[k].folder,
			     strlen(c <= 0 ? m->local.v[i].folder : m->remote.v[k].folder));

		if (c <= 0) {
			f->local = m->local.v[i].local;
			memcpy(f->ld, m->local.v[i++].ld, WIRE_DIGEST_LEN);
		}
		if (c >= 0) {
			f->remote = true;
			memcpy(f->rd, m->remote.v[k++].rd, WIRE_DIGEST_LEN);
		}
	}
}

static bool differs(const struct fdig *f)
{
	return f->local != f->remote || (f->local && memcmp(f->ld, f->rd, WIRE_DIGEST_LEN) != 0);
}

/* One message of a user's listing. */
struct msg {
	const char *folder;
	const char *name; /* "cur/..." or "new/..." */
	struct slice base;
};

struct msgs {
	struct msg *v;
	size_t n, cap;
	struct folder_list *lists; /* own the names */
	size_t nlists;
};

static int msg_cmp(const void *a, const void *b)
{
	return slice_cmp(((const struct msg *)a)->base, ((const struct msg *)b)->base);
}

static void collect(struct msgs *ms, const char *folder, const struct folder_list *fl, char sep)
{
	for (size_t i = 0; i < fl->n; i++) {
		const struct scan_entry *s = &fl->v[i];
		struct md_name n;
		struct msg *m;

		if (!S_ISREG(s->mode) ||
		    (strncmp(s->name, "cur/", 4) != 0 && strncmp(s->name, "new/", 4) != 0))
			continue;
		if (ms->n == ms->cap) {
			ms->cap = ms->cap ? 2 * ms->cap : 256;
			ms->v = xreallocarray(ms->v, ms->cap, sizeof(*ms->v));
		}
		m = &ms->v[ms->n++];
		m->folder = folder;
		m->name = s->name;
		m->base = md_name_parse(slice_cstr(s->name + 4), sep, &n, NULL) == 0
			      ? n.base
			      : slice_cstr(s->name + 4);
	}
}

static struct folder_list *new_list(struct msgs *ms)
{
	ms->lists = xreallocarray(ms->lists, ms->nlists + 1, sizeof(*ms->lists));
	memset(&ms->lists[ms->nlists], 0, sizeof(ms->lists[0]));
	return &ms->lists[ms->nlists++];
}

static void msgs_free(struct msgs *ms)
{
	for (size_t i = 0; i < ms->nlists; i++)
		folder_list_free(&ms->lists[i]);
	free(ms->lists);
	free(ms->v);
	memset(ms, 0, sizeof(*ms));
}

static bool has_base(const struct msgs *ms, struct slice base)
{
	struct msg key = {.base = base};

	return ms->n > 0 && bsearch(&key, ms->v, ms->n, sizeof(key), msg_cmp) != NULL;
}

/* True if the other side has exactly this folder and name (ms sorted by
 * base: only the run of entries with m's base is looked at). */
static bool has_name(const struct msgs *ms, const struct msg *m)
{
	struct msg key = {.base = m->base};
	const struct msg *hit = ms->n ? bsearch(&key, ms->v, ms->n, sizeof(key), msg_cmp) : NULL;
	const struct msg *lo = hit, *end = ms->v + ms->n;

	if (hit == NULL)
		return false;
	while (lo > ms->v && slice_eq(lo[-1].base, m->base))
		lo--;
	for (; lo < end && slice_eq(lo->base, m->base); lo++) {
		if (strcmp(lo->folder, m->folder) == 0 && strcmp(lo->name, m->name) == 0)
			return true;
	}
	return false;
}

static int64_t ctime_of(int rootfd, const char *folder, const char *name)
{
	char *path = folder[0] ? xasprintf("%s/%s", folder, name) : xstrdup(name);
	const char *last;
	struct stat st;
	int dfd = sp_open_parent(rootfd, path, &last, NULL);
	int64_t t = INT64_MAX; /* unknown: judged as recent, i.e. in doubt */

	if (dfd >= 0 && fstatat(dfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0)
		t = ts_ns(st.st_ctim);
	if (dfd >= 0)
		close(dfd);
	free(path);
	return t;
}

static void add_item(struct rj_plan *p, const struct msg *m, struct slice user, enum rj_fate f)
{
	struct rj_item *it;

	p->v = xreallocarray(p->v, p->n + 1, sizeof(*p->v));
	it = &p->v[p->n++];
	it->folder = xstrdup(m->folder);
	it->name = xstrdup(m->name);
	it->user = xstrndup(user.p, user.len);
	it->fate = f;
}

/* Lists every folder of one user on both sides and judges the messages
 * only this node has. */
static int compare_user(struct cmp *m, const struct fdig *first, size_t n)
{
	struct msgs here = {0}, there = {0};
	char sep = md_rules_sep(m->rules);
	struct slice user = md_user_of(slice_cstr(first->folder));
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		const struct fdig *f = &first[i];

		if (f->local &&
		    scan_folder(m->rootfd, m->rules, f->folder, false, new_list(&here), m->e) < 0)
			r = -1;
		else if (f->local)
			collect(&here, f->folder, &here.lists[here.nlists - 1], sep);
		if (r == 0 && f->remote &&
		    client_list(m->c, f->folder, 0, new_list(&there), m->e) < 0)
			r = -1;
		else if (r == 0 && f->remote)
			collect(&there, f->folder, &there.lists[there.nlists - 1], sep);
	}
	if (r == 0) {
		if (there.n > 0)
			qsort(there.v, there.n, sizeof(*there.v), msg_cmp);
		if (here.n > 0)
			qsort(here.v, here.n, sizeof(*here.v), msg_cmp);
		for (size_t i = 0; i < here.n; i++) {
			const struct msg *x = &here.v[i];

			if (has_base(&there, x->base)) {
				m->plan->renamed += !has_name(&there, x);
				continue;
			}
			add_item(m->plan, x, user,
				 rj_judge(m->j, user, x->base, x->folder,
					  ctime_of(m->rootfd, x->folder, x->name)));
		}
		for (size_t i = 0; i < there.n; i++)
			m->plan->incoming += !has_base(&here, there.v[i].base);
	}
	msgs_free(&here);
	msgs_free(&there);
	return r;
}

static int by_user(const void *a, const void *b)
{
	const char *fa = ((const struct fdig *)a)->folder, *fb = ((const struct fdig *)b)->folder;
	int c = slice_cmp(md_user_of(slice_cstr(fa)), md_user_of(slice_cstr(fb)));

	return c != 0 ? c : strcmp(fa, fb);
}

/* Remembers which folders the new primary has. */
static void note_remote(struct rj_plan *p, const struct fset *all)
{
	for (size_t i = 0; i < all->n; i++) {
		if (all->v[i].remote)
			rj_remote_add(p, all->v[i].folder);
	}
}

int rj_compare(struct client *c, int rootfd, const struct md_rules *rules,
	       struct digest_cache *cache, const struct rj_journal *j, struct rj_plan *plan,
	       struct err *e)
{
	struct cmp m = {
	    .c = c, .rootfd = rootfd, .rules = rules, .cache = cache, .j = j, .plan = plan, .e = e};
	struct fset all = {0};
	size_t i = 0;
	int r;

	memset(plan, 0, sizeof(*plan));
	r = scan_walk(rootfd, rules, "", on_local, &m, e);
	if (r == 0)
		r = client_digests(c, "", 0, on_remote, &m, e);
	if (r == 0) {
		merge(&m, &all);
		note_remote(plan, &all);
		qsort(all.v, all.n, sizeof(*all.v), by_user);
		plan->folders = all.n;
	}
	while (r == 0 && i < all.n) {
		struct slice user = md_user_of(slice_cstr(all.v[i].folder));
		size_t k = i + 1, ndiff = differs(&all.v[i]);

		while (k < all.n && slice_eq(md_user_of(slice_cstr(all.v[k].folder)), user))
			ndiff += differs(&all.v[k++]);
		if (ndiff > 0) {
			plan->differing += ndiff;
			plan->users++;
			r = compare_user(&m, &all.v[i], k - i);
		}
		i = k;
	}
	fset_free(&m.local);
	fset_free(&m.remote);
	fset_free(&all);
	if (r == 0 && digest_cache_save(cache, e) < 0)
		log_warn("digest cache not saved: %s", e->msg);
	return r < 0 ? -1 : 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool rj_remote_has(const struct rj_plan *plan, const char *folder)
{
	return plan->nremote > 0 && bsearch(&folder, plan->remote_folders, plan->nremote,
					    sizeof(char *), str_cmp) != NULL;
}

void rj_remote_add(struct rj_plan *p, const char *folder)
{
	size_t i = p->nremote;

	if (rj_remote_has(p, folder))
		return;
	p->remote_folders = xreallocarray(p->remote_folders, p->nremote + 1, sizeof(char *));
	/* Insertion keeps the array sorted; folders arrive mostly in order. */
	while (i > 0 && strcmp(p->remote_folders[i - 1], folder) > 0) {
		p->remote_folders[i] = p->remote_folders[i - 1];
		i--;
	}
	p->remote_folders[i] = xstrdup(folder);
	p->nremote++;
}

void rj_plan_free(struct rj_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].folder);
		free(p->v[i].name);
		free(p->v[i].user);
	}
	for (size_t i = 0; i < p->nremote; i++)
		free(p->remote_folders[i]);
	free(p->v);
	free(p->remote_folders);
	memset(p, 0, sizeof(*p));
}
