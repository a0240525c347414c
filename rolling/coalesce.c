/*
 * coalesce.c — collapsing journal records on the same file into one
 * operation (see coalesce.h).
 *
 * A hash table maps a path to the live operation whose result is that
 * path (the target of a put, meta or rename), so each record costs O(1).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "coalesce.h"
#include "xalloc.h"

struct slot {
	char *key; /* NULL = empty; points to the op's own string */
	size_t op;
};

struct coalesce {
	struct cop *ops;
	size_t n, cap, live;
	struct slot *tab;
	size_t tabcap, tabused; /* tabcap is a power of two */
};

struct coalesce *coalesce_new(void)
{
	struct coalesce *c = xcalloc(1, sizeof(*c));

	c->tabcap = 1024;
	c->tab = xcalloc(c->tabcap, sizeof(*c->tab));
	return c;
}

void coalesce_reset(struct coalesce *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->ops[i].path);
		free(c->ops[i].to);
	}
	c->n = c->live = 0;
	memset(c->tab, 0, c->tabcap * sizeof(*c->tab));
	c->tabused = 0;
}

void coalesce_free(struct coalesce **cp)
{
	if (*cp == NULL)
		return;
	coalesce_reset(*cp);
	free((*cp)->ops);
	free((*cp)->tab);
	free(*cp);
	*cp = NULL;
}

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Finds the slot for key: its own, or the empty one where it would go.
 * Deleted entries are marked with op = SIZE_MAX and key kept, so probing
 * continues past them. */
static struct slot *find(struct coalesce *c, const char *key)
{
	size_t i = hash(key) & (c->tabcap - 1);

	for (;;) {
		struct slot *s = &c->tab[i];

		if (s->key == NULL || (s->op != SIZE_MAX && strcmp(s->key, key) == 0))
			return s;
		i = (i + 1) & (c->tabcap - 1);
	}
}

static void grow(struct coalesce *c)
{
	struct slot *old = c->tab;
	size_t oldcap = c->tabcap;

	c->tabcap *= 2;
	c->tab = xcalloc(c->tabcap, sizeof(*c->tab));
	c->tabused = 0;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].key != NULL && old[i].op != SIZE_MAX) {
			*find(c, old[i].key) = old[i];
			c->tabused++;
		}
	}
	free(old);
}

/* The live op that produces path, or NULL. */
static struct cop *producer(struct coalesce *c, const char *path)
{
	struct slot *s = find(c, path);

	return s->key != NULL ? &c->ops[s->op] : NULL;
}

static void forget(struct coalesce *c, const char *path)
{
	struct slot *s = find(c, path);

	if (s->key != NULL)
		s->op = SIZE_MAX; /* tombstone: key stays valid until reset */
}

/* Records that op i now produces its result path. */
static void produce(struct coalesce *c, size_t i)
{
	struct cop *o = &c->ops[i];
	const char *key = o->type == COP_RENAME ? o->to : o->path;
	struct slot *s;

	if (2 * (c->tabused + 1) > c->tabcap)
		grow(c);
	s = find(c, key);
	if (s->key == NULL)
		c->tabused++;
	s->key = (char *)key;
	s->op = i;
}

static void kill_op(struct coalesce *c, struct cop *o)
{
	forget(c, o->type == COP_RENAME ? o->to : o->path);
	o->dead = true;
	c->live--;
}

static size_t add_op(struct coalesce *c, enum cop_type t, const struct jrec *r, struct slice path,
		     struct slice to)
{
	struct cop *o;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 256;
		c->ops = xreallocarray(c->ops, c->cap, sizeof(*c->ops));
	}
	o = &c->ops[c->n];
	memset(o, 0, sizeof(*o));
	o->type = t;
	o->lsn = r->lsn;
	o->time_ns = r->time_ns;
	o->path = xstrndup(path.p, path.len);
	if (t == COP_RENAME)
		o->to = xstrndup(to.p, to.len);
	c->live++;
	return c->n++;
}

/* A file is replaced or removed: whatever produced it is moot. */
static void supersede(struct coalesce *c, const char *path)
{
	struct cop *o = producer(c, path);

	if (o == NULL)
		return;
	if (o->type == COP_RENAME) {
		/* The renamed file is gone: the source must still go on the peer. */
		char *from = o->path;

		forget(c, o->to);
		free(o->to);
		o->to = NULL;
		o->path = from;
		o->type = COP_UNLINK;
		return;
	}
	kill_op(c, o);
}

static void on_create(struct coalesce *c, const struct jrec *r, enum cop_type t)
{
	char *path = xstrndup(r->path.p, r->path.len);
	struct cop *o = producer(c, path);

	if (o != NULL && (o->type == COP_PUT || o->type == COP_META) && o->type == t) {
		if (t == COP_META) {
			/* Keep one, at the later place, so it follows what it names. */
			uint64_t lsn = o->lsn;

			kill_op(c, o);
			produce(c, add_op(c, t, r, r->path, r->path));
			c->ops[c->n - 1].lsn = lsn;
		}
		free(path);
		return;
	}
	if (o != NULL)
		supersede(c, path);
	produce(c, add_op(c, t, r, r->path, r->path));
	free(path);
}

static void on_rename(struct coalesce *c, const struct jrec *r)
{
	char *from = xstrndup(r->path.p, r->path.len), *to = xstrndup(r->path2.p, r->path2.len);
	struct cop *o;

	supersede(c, to); /* a rename over an existing file replaces it */
	o = producer(c, from);
	if (o == NULL) {
		produce(c, add_op(c, COP_RENAME, r, r->path, r->path2));
	} else {
		/* Fold into what produced `from`, moved to this record's place so
		 * it still follows everything before it (an unlink of `to`, say). */
		enum cop_type t = o->type;
		struct slice src = slice_cstr(t == COP_RENAME ? o->path : to);
		uint64_t lsn = o->lsn;
		size_t i;

		if (t == COP_RENAME && strcmp(o->path, to) == 0) {
			kill_op(c, o); /* renamed back where it was */
		} else {
			char *keep = xstrdup(src.p);

			kill_op(c, o);
			i = add_op(c, t, r, slice_cstr(keep), slice_cstr(to));
			c->ops[i].lsn = lsn;
			produce(c, i);
			free(keep);
		}
	}
	free(from);
	free(to);
}

static void on_unlink(struct coalesce *c, const struct jrec *r)
{
	char *path = xstrndup(r->path.p, r->path.len);

	/* Whatever produced the file is moot (a rename becomes an unlink of its
	 * source). The file itself is unlinked on the peer in any case: it may
	 * predate the window, or a rename may have replaced an older file of
	 * that name there; an unlink of a name the peer never had is harmless. */
	supersede(c, path);
	add_op(c, COP_UNLINK, r, r->path, r->path);
	free(path);
}

bool coalesce_add(struct coalesce *c, const struct jrec *r)
{
	switch (r->type) {
	case JR_CREATE: on_create(c, r, COP_PUT); return true;
	case JR_META_CHANGED: on_create(c, r, COP_META); return true;
	case JR_RENAME: on_rename(c, r); return true;
	case JR_UNLINK: on_unlink(c, r); return true;
	default: return false;
	}
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
