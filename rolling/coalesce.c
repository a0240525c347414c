/*
 * coalesce.c — collapsing journal records on the same file into one
 * operation (see coalesce.h).
 *
 * Two hash tables keyed by path: `prod` maps a path to the live operation
 * whose result it is (the target of a put, meta or rename); `touch` maps a
 * path to the last operation that named it at all. Each record costs O(1).
 *
 * Where a folded operation goes matters. A put (or meta) moves to the
 * place of the latest record, since its content is read when it is sent
 * and must land after anything done to its name before. A rename chain
 * stays at the place of its first rename, since its source name may be
 * reused afterwards; if its target was named by something in between, it
 * is not folded at all.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "coalesce.h"
#include "hash.h"
#include "xalloc.h"

#define NONE SIZE_MAX

/* Open-addressing table from a path (a copy it owns) to an op index. */
struct ptab {
	struct {
		char *key;
		size_t op; /* NONE marks a deleted entry */
	} *slot;
	size_t cap, used; /* cap is a power of two */
};

struct coalesce {
	struct cop *ops;
	size_t n, cap, live;
	struct ptab prod, touch;
};

static void ptab_init(struct ptab *t)
{
	t->cap = 1024;
	t->used = 0;
	t->slot = xcalloc(t->cap, sizeof(*t->slot));
}

static size_t ptab_find(const struct ptab *t, const char *key)
{
	size_t i = (size_t)fnv1a(FNV1A_INIT, key, strlen(key)) & (t->cap - 1);

	while (t->slot[i].key != NULL && strcmp(t->slot[i].key, key) != 0)
		i = (i + 1) & (t->cap - 1);
	return i;
}

static void ptab_set(struct ptab *t, const char *key, size_t op)
{
	size_t i;

	if (2 * (t->used + 1) > t->cap) {
		struct ptab old = *t;

		t->cap *= 2;
		t->used = 0;
		t->slot = xcalloc(t->cap, sizeof(*t->slot));
		for (size_t k = 0; k < old.cap; k++) {
			if (old.slot[k].key != NULL) {
				i = ptab_find(t, old.slot[k].key);
				t->slot[i] = old.slot[k];
				t->used++;
			}
		}
		free(old.slot);
	}
	i = ptab_find(t, key);
	if (t->slot[i].key == NULL) {
		t->used++;
		t->slot[i].key = xstrdup(key);
	}
	t->slot[i].op = op;
}

static size_t ptab_get(const struct ptab *t, const char *key)
{
	size_t i = ptab_find(t, key);

	return t->slot[i].key != NULL ? t->slot[i].op : NONE;
}

static void ptab_clear(struct ptab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slot[i].key);
	memset(t->slot, 0, t->cap * sizeof(*t->slot));
	t->used = 0;
}

struct coalesce *coalesce_new(void)
{
	struct coalesce *c = xcalloc(1, sizeof(*c));

	ptab_init(&c->prod);
	ptab_init(&c->touch);
	return c;
}

void coalesce_reset(struct coalesce *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->ops[i].path);
		free(c->ops[i].to);
	}
	c->n = c->live = 0;
	ptab_clear(&c->prod);
	ptab_clear(&c->touch);
}

void coalesce_free(struct coalesce **cp)
{
	if (*cp == NULL)
		return;
	coalesce_reset(*cp);
	free((*cp)->ops);
	free((*cp)->prod.slot);
	free((*cp)->touch.slot);
	free(*cp);
	*cp = NULL;
}

static const char *result_of(const struct cop *o)
{
	return o->type == COP_RENAME ? o->to : o->path;
}

/* The live op that produces path, or NULL. */
static struct cop *producer(struct coalesce *c, const char *path)
{
	size_t i = ptab_get(&c->prod, path);

	return i != NONE ? &c->ops[i] : NULL;
}

/* Records that op i names its paths (and produces its result). */
static void note(struct coalesce *c, size_t i)
{
	struct cop *o = &c->ops[i];

	ptab_set(&c->touch, o->path, i);
	if (o->to != NULL)
		ptab_set(&c->touch, o->to, i);
	if (o->type != COP_UNLINK)
		ptab_set(&c->prod, result_of(o), i);
}

static void kill_op(struct coalesce *c, struct cop *o)
{
	if (o->type != COP_UNLINK && producer(c, result_of(o)) == o)
		ptab_set(&c->prod, result_of(o), NONE);
	o->dead = true;
	c->live--;
}

static size_t add_op(struct coalesce *c, enum cop_type t, uint64_t lsn, uint64_t time_ns,
		     const char *path, const char *to)
{
	struct cop *o;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 256;
		c->ops = xreallocarray(c->ops, c->cap, sizeof(*c->ops));
	}
	o = &c->ops[c->n];
	memset(o, 0, sizeof(*o));
	o->type = t;
	o->lsn = lsn;
	o->time_ns = time_ns;
	o->path = xstrdup(path);
	o->to = to != NULL ? xstrdup(to) : NULL;
	c->live++;
	note(c, c->n);
	return c->n++;
}

/* A file is replaced or removed: whatever produced it is moot, but a
 * renamed file's source must still go on the peer. */
static void supersede(struct coalesce *c, const char *path)
{
	struct cop *o = producer(c, path);

	if (o == NULL)
		return;
	if (o->type == COP_RENAME) {
		ptab_set(&c->prod, o->to, NONE);
		free(o->to);
		o->to = NULL;
		o->type = COP_UNLINK;
		return;
	}
	kill_op(c, o);
}

static void on_create(struct coalesce *c, const struct jrec *r, enum cop_type t, const char *path)
{
	struct cop *o = producer(c, path);
	uint64_t lsn = r->lsn;
	size_t i;

	if (o != NULL && o->type == t) {
		/* Already to be sent: one is enough, at the later place (a uidlist
		 * must follow the deliveries it names). */
		lsn = o->lsn;
		kill_op(c, o);
	} else {
		supersede(c, path);
	}
	i = add_op(c, t, r->lsn, r->time_ns, path, NULL);
	c->ops[i].lsn = lsn; /* the lowest contributing record */
}

/* Folding a rename into what produced its source leaves the source name
 * behind as an intermediate. The peer may hold it (a replay after a broken
 * session can find the window partly applied), so it is unlinked there;
 * that costs nothing when the peer never had it. */
static void on_rename(struct coalesce *c, const struct jrec *r, const char *from, const char *to)
{
	struct cop *o;
	size_t oi;

	supersede(c, to); /* a rename over an existing file replaces it */
	o = producer(c, from);
	if (o == NULL) {
		add_op(c, COP_RENAME, r->lsn, r->time_ns, from, to);
		return;
	}
	oi = (size_t)(o - c->ops);
	if (o->type != COP_RENAME) {
		/* put/meta: sent at the latest place under its final name */
		enum cop_type t = o->type;
		uint64_t lsn = o->lsn;

		kill_op(c, o);
		oi = add_op(c, t, r->lsn, r->time_ns, to, NULL);
		c->ops[oi].lsn = lsn; /* the lowest contributing record */
		add_op(c, COP_UNLINK, r->lsn, r->time_ns, from, NULL);
		return;
	}
	if (ptab_get(&c->touch, to) != NONE && ptab_get(&c->touch, to) > oi) {
		/* Something named `to` after the first rename: keep both steps. */
		add_op(c, COP_RENAME, r->lsn, r->time_ns, from, to);
		return;
	}
	if (strcmp(o->path, to) == 0) {
		/* Renamed back where it was: only the last step can matter (a peer
		 * that already has the file at `to` ignores it). */
		kill_op(c, o);
		add_op(c, COP_RENAME, r->lsn, r->time_ns, from, to);
		return;
	}
	/* Fold in place: a->from, from->to  =>  a->to at the first rename. */
	ptab_set(&c->prod, from, NONE);
	free(o->to);
	o->to = xstrdup(to);
	o->time_ns = r->time_ns;
	note(c, oi);
	add_op(c, COP_UNLINK, r->lsn, r->time_ns, from, NULL);
}

static void on_unlink(struct coalesce *c, const struct jrec *r, const char *path)
{
	/* Whatever produced the file is moot (a rename becomes an unlink of its
	 * source). The file itself is unlinked on the peer in any case: it may
	 * predate the window, or a rename may have replaced an older file of
	 * that name there; an unlink of a name the peer never had is harmless. */
	supersede(c, path);
	add_op(c, COP_UNLINK, r->lsn, r->time_ns, path, NULL);
}

bool coalesce_add(struct coalesce *c, const struct jrec *r)
{
	char *a, *b;

	if (r->type != JR_CREATE && r->type != JR_META_CHANGED && r->type != JR_RENAME &&
	    r->type != JR_UNLINK)
		return false;
	a = xstrndup(r->path.p, r->path.len);
	b = xstrndup(r->path2.p, r->path2.len);
	switch (r->type) {
	case JR_CREATE: on_create(c, r, COP_PUT, a); break;
	case JR_META_CHANGED: on_create(c, r, COP_META, a); break;
	case JR_RENAME: on_rename(c, r, a, b); break;
	default: on_unlink(c, r, a); break;
	}
	free(a);
	free(b);
	return true;
}

const struct cop *coalesce_ops(const struct coalesce *c, size_t *n_r)
{
	*n_r = c->n;
	return c->ops;
}

size_t coalesce_count(const struct coalesce *c)
{
	return c->live;
}
