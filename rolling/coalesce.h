/*
 * coalesce.h — turns a window of journal records into the operations to
 * send, collapsing chains on one file:
 *
 *     create a, rename a->b, rename b->c   =>  put c, unlink a, unlink b
 *     rename a->b, rename b->c             =>  rename a->c, unlink b
 *     create a, unlink a                   =>  unlink a (no content sent;
 *                                              harmless if the peer never had it)
 *     create a, rename a->b, unlink b      =>  unlink b
 *     rename a->b, unlink b                =>  unlink a, unlink b
 *     meta_changed m, ..., meta_changed m  =>  one meta m, at the later place
 *
 * Collapsing a rename chain assumes its intermediate names were fresh,
 * which Maildir guarantees for messages (names are unique; MDAs never
 * rename onto an existing message). The one rename-over that happens,
 * dovecot-uidlist replaced by its .lock file, arrives as a metadata
 * change. A single rename over an existing file stays a rename and
 * replaces it on the peer as it did here.
 *
 * The unlinks of intermediate names cost a few bytes and matter after a
 * reconnect: the window is replayed from the standby's durable position
 * and the standby may already hold some of it.
 *
 * Order is otherwise kept (a uidlist change stays after the deliveries it
 * names). Folder records and rescans are barriers: the caller processes
 * what was coalesced before them first. Each operation carries the lowest
 * LSN that contributed to it, so that a NEED for it holds the standby's
 * durable position below every record it stands for.
 */
#ifndef MDREPL_COALESCE_H
#define MDREPL_COALESCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "journal.h"

enum cop_type { COP_PUT, COP_RENAME, COP_UNLINK, COP_META };

struct cop {
	enum cop_type type;
	uint64_t lsn;	   /* lowest contributing record */
	uint64_t time_ns;  /* when the newest contributing record was journaled */
	char *path;	   /* PUT/UNLINK/META: the file; RENAME: the source */
	char *to;	   /* RENAME: the target */
	bool dead;	   /* collapsed away */
};

struct coalesce;

struct coalesce *coalesce_new(void);
void coalesce_free(struct coalesce **c);

/* Adds a file record (JR_CREATE, JR_RENAME, JR_UNLINK, JR_META_CHANGED).
 * Returns false for any other type: a barrier the caller handles after
 * taking the operations collected so far. */
bool coalesce_add(struct coalesce *c, const struct jrec *r);

/* The live operations in order (n_r set); valid until coalesce_reset. */
const struct cop *coalesce_ops(const struct coalesce *c, size_t *n_r);
size_t coalesce_count(const struct coalesce *c); /* live operations */
void coalesce_reset(struct coalesce *c);

#endif
