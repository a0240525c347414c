/*
 * wtree.h — the tree of watched directories: which inotify watch
 * descriptor stands for which directory, found by descriptor (events) and
 * by parent and name (renames, deletions). A node knows only its own name
 * and parent, so renaming a directory is O(1) and every directory below
 * it gets its new path at once.
 */
#ifndef MDREPL_WTREE_H
#define MDREPL_WTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct wnode {
	int wd;
	uint32_t mark;		   /* walk generation that last saw it */
	char *name;		   /* "" for the root */
	struct wnode *parent;	   /* NULL: the root, or detached */
	struct wnode *child;	   /* first child */
	struct wnode *next, *prev; /* siblings */
	struct wnode *wd_next;	   /* hash chains */
	struct wnode *name_next;
	bool in_names; /* in the name hash (attached) */
};

struct wtree;

/* Called for every node removed, to remove its watch. */
typedef void wtree_drop_fn(int wd, void *ctx);

struct wtree *wtree_new(void);
/* Frees every node (their watches are the caller's). */
void wtree_free(struct wtree **t);

struct wnode *wtree_root(const struct wtree *t);
struct wnode *wtree_by_wd(const struct wtree *t, int wd);
struct wnode *wtree_child(const struct wtree *t, const struct wnode *parent, const char *name);

/* Records that wd watches parent/name (the root when parent is NULL):
 * creates a node, or moves the node that already has wd there (the
 * directory was renamed meanwhile). A different node under that name is
 * detached. *is_new_r tells whether the node was created. */
struct wnode *wtree_attach(struct wtree *t, struct wnode *parent, const char *name, int wd,
			   bool *is_new_r);
/* Detaches n from its parent: its path is unknown from now on (events for
 * it and below are ignored) until it is removed. */
void wtree_detach(struct wtree *t, struct wnode *n);
/* Removes n and everything below it, calling drop for each. */
void wtree_remove(struct wtree *t, struct wnode *n, wtree_drop_fn *drop, void *ctx);
/* Removes every node whose mark differs from mark (not seen by a walk). */
void wtree_sweep(struct wtree *t, uint32_t mark, wtree_drop_fn *drop, void *ctx);

/* Path of n relative to the root ("" for the root) into out (replaced).
 * Returns 0, or -1 if n is detached. */
int wtree_path(const struct wtree *t, const struct wnode *n, struct buf *out);
size_t wtree_count(const struct wtree *t);

#endif
