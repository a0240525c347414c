/*
 * wtree.c — the tree of watched directories (see wtree.h): nodes in two
 * chained hash tables (by watch descriptor; by parent and name) plus
 * parent/child links for paths and subtree removal.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "wtree.h"
#include "xalloc.h"

struct wtree {
	struct wnode *root;
	struct wnode **by_wd, **by_name;
	size_t cap; /* buckets in each table, a power of two */
	size_t count;
};

static size_t wd_slot(const struct wtree *t, int wd)
{
	return (size_t)(unsigned)wd & (t->cap - 1);
}

static size_t name_slot(const struct wtree *t, const struct wnode *parent, const char *name)
{
	uint64_t h = 14695981039346656037ULL ^ ((uintptr_t)parent * 0x9e3779b97f4a7c15ULL);

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 29)) & (t->cap - 1);
}

struct wtree *wtree_new(void)
{
	struct wtree *t = xcalloc(1, sizeof(*t));

	t->cap = 1024;
	t->by_wd = xcalloc(t->cap, sizeof(*t->by_wd));
	t->by_name = xcalloc(t->cap, sizeof(*t->by_name));
	return t;
}

static void free_node(struct wnode *n)
{
	free(n->name);
	free(n);
}

void wtree_free(struct wtree **tp)
{
	struct wtree *t = *tp;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->cap; i++) {
		for (struct wnode *n = t->by_wd[i], *nx; n != NULL; n = nx) {
			nx = n->wd_next;
			free_node(n);
		}
	}
	free(t->by_wd);
	free(t->by_name);
	free(t);
	*tp = NULL;
}

struct wnode *wtree_root(const struct wtree *t)
{
	return t->root;
}

struct wnode *wtree_by_wd(const struct wtree *t, int wd)
{
	for (struct wnode *n = t->by_wd[wd_slot(t, wd)]; n != NULL; n = n->wd_next) {
		if (n->wd == wd)
			return n;
	}
	return NULL;
}

struct wnode *wtree_child(const struct wtree *t, const struct wnode *parent, const char *name)
{
	for (struct wnode *n = t->by_name[name_slot(t, parent, name)]; n != NULL;
	     n = n->name_next) {
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	}
	return NULL;
}

static void unchain(struct wnode **slot, struct wnode *n, bool by_name)
{
	for (; *slot != NULL; slot = by_name ? &(*slot)->name_next : &(*slot)->wd_next) {
		if (*slot == n) {
			*slot = by_name ? n->name_next : n->wd_next;
			return;
		}
	}
}

static void grow(struct wtree *t)
{
	struct wnode **old = t->by_wd;
	size_t oldcap = t->cap;

	t->cap *= 2;
	t->by_wd = xcalloc(t->cap, sizeof(*t->by_wd));
	free(t->by_name);
	t->by_name = xcalloc(t->cap, sizeof(*t->by_name));
	for (size_t i = 0; i < oldcap; i++) {
		for (struct wnode *n = old[i], *nx; n != NULL; n = nx) {
			size_t s = wd_slot(t, n->wd);

			nx = n->wd_next;
			n->wd_next = t->by_wd[s];
			t->by_wd[s] = n;
			if (n->in_names) {
				s = name_slot(t, n->parent, n->name);
				n->name_next = t->by_name[s];
				t->by_name[s] = n;
			}
		}
	}
	free(old);
}

void wtree_detach(struct wtree *t, struct wnode *n)
{
	if (n->in_names) {
		unchain(&t->by_name[name_slot(t, n->parent, n->name)], n, true);
		n->in_names = false;
	}
	if (n->parent != NULL) {
		if (n->prev != NULL)
			n->prev->next = n->next;
		else
			n->parent->child = n->next;
		if (n->next != NULL)
			n->next->prev = n->prev;
	}
	n->parent = NULL;
	n->next = n->prev = NULL;
}

/* Links n under parent with name (which it takes over). */
static void link_node(struct wtree *t, struct wnode *n, struct wnode *parent, char *name)
{
	size_t s;

	free(n->name);
	n->name = name;
	n->parent = parent;
	if (parent == NULL) {
		t->root = n;
		return;
	}
	n->prev = NULL;
	n->next = parent->child;
	if (parent->child != NULL)
		parent->child->prev = n;
	parent->child = n;
	s = name_slot(t, parent, name);
	n->name_next = t->by_name[s];
	t->by_name[s] = n;
	n->in_names = true;
}

struct wnode *wtree_attach(struct wtree *t, struct wnode *parent, const char *name, int wd,
			   bool *is_new_r)
{
	struct wnode *n = wtree_by_wd(t, wd), *other;

	*is_new_r = n == NULL;
	if (n != NULL && n->parent == parent && (parent != NULL || n == t->root) &&
	    strcmp(n->name, name) == 0)
		return n;
	other = parent != NULL ? wtree_child(t, parent, name) : NULL;
	if (other != NULL && other != n)
		wtree_detach(t, other); /* that directory was replaced */
	if (n == NULL) {
		if (t->count >= t->cap)
			grow(t);
		n = xcalloc(1, sizeof(*n));
		n->wd = wd;
		size_t s = wd_slot(t, wd);
		n->wd_next = t->by_wd[s];
		t->by_wd[s] = n;
		t->count++;
	} else {
		wtree_detach(t, n);
	}
	link_node(t, n, parent, xstrdup(name));
	return n;
}

/* Unlinks n from both tables and its parent; the caller frees it. */
static void unlink_node(struct wtree *t, struct wnode *n, wtree_drop_fn *drop, void *ctx)
{
	wtree_detach(t, n);
	unchain(&t->by_wd[wd_slot(t, n->wd)], n, false);
	if (t->root == n)
		t->root = NULL;
	t->count--;
	drop(n->wd, ctx);
}

void wtree_remove(struct wtree *t, struct wnode *n, wtree_drop_fn *drop, void *ctx)
{
	while (n->child != NULL)
		wtree_remove(t, n->child, drop, ctx);
	unlink_node(t, n, drop, ctx);
	free_node(n);
}

void wtree_sweep(struct wtree *t, uint32_t mark, wtree_drop_fn *drop, void *ctx)
{
	struct wnode **dead = NULL;
	size_t ndead = 0, cap = 0;

	for (size_t i = 0; i < t->cap; i++) {
		for (struct wnode *n = t->by_wd[i]; n != NULL; n = n->wd_next) {
			if (n->mark == mark)
				continue;
			if (ndead == cap) {
				cap = cap ? 2 * cap : 64;
				dead = xreallocarray(dead, cap, sizeof(*dead));
			}
			dead[ndead++] = n;
		}
	}
	/* Unseen nodes hang only below unseen nodes (a walk attaches what it
	 * sees to what it saw), so unlinking them in any order is safe. */
	for (size_t i = 0; i < ndead; i++) {
		while (dead[i]->child != NULL)
			wtree_detach(t, dead[i]->child);
		unlink_node(t, dead[i], drop, ctx);
	}
	for (size_t i = 0; i < ndead; i++)
		free_node(dead[i]);
	free(dead);
}

static int path_rec(const struct wtree *t, const struct wnode *n, struct buf *out, int depth)
{
	if (n == t->root)
		return 0;
	if (n->parent == NULL || depth > 4096)
		return -1;
	if (path_rec(t, n->parent, out, depth + 1) < 0)
		return -1;
	if (out->len > 0)
		buf_putc(out, '/');
	return buf_puts(out, n->name);
}

int wtree_path(const struct wtree *t, const struct wnode *n, struct buf *out)
{
	buf_reset(out);
	return path_rec(t, n, out, 0);
}

size_t wtree_count(const struct wtree *t)
{
	return t->count;
}
