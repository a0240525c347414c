/*
 * sentmap.c — what a sending session knows the standby holds (see
 * sentmap.h).
 *
 * Two direct-mapped tables from a 32-byte key (inode, content hash) to the
 * name a file was sent as, and a third from a name to its slots in those
 * two, so that a rename or unlink finds them without a search.
 *
 * Every path in a key slot has its name entry: a name entry taken over by
 * another name drops the key slots it held, since renames of that name
 * could no longer be followed and the path kept there could go stale. A
 * key slot taken over by another key leaves the old name's entry pointing
 * at it; every use compares the path stored there, so that is inert.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sentmap.h"
#include "xalloc.h"

#define KEY_SLOTS 65536
#define NAME_SLOTS 65536
#define NO_SLOT (-1)

struct keymap {
	struct {
		uint8_t key[SENTMAP_KEY_LEN];
		char *path;
	} slot[KEY_SLOTS];
};

struct name {
	uint64_t h; /* of the path; 0: free */
	int32_t ino, sha; /* slots in the key maps, or NO_SLOT */
	bool dropped;
};

struct sentmap {
	struct keymap inodes, contents;
	struct name names[NAME_SLOTS];
};

struct sentmap *sentmap_new(void)
{
	return xcalloc(1, sizeof(struct sentmap));
}

void sentmap_free(struct sentmap **mp)
{
	struct sentmap *m = *mp;

	if (m == NULL)
		return;
	for (size_t i = 0; i < KEY_SLOTS; i++) {
		free(m->inodes.slot[i].path);
		free(m->contents.slot[i].path);
	}
	free(m);
	*mp = NULL;
}

/* ------------------------------------------------------------ key maps */

static int32_t key_slot(const uint8_t *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h)); /* keys are hashes or inode numbers: mix */
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	return (int32_t)(h % KEY_SLOTS);
}

static const char *key_get(const struct keymap *k, const uint8_t *key)
{
	int32_t i = key_slot(key);

	if (k->slot[i].path != NULL && memcmp(k->slot[i].key, key, SENTMAP_KEY_LEN) == 0)
		return k->slot[i].path;
	return NULL;
}

static int32_t key_put(struct keymap *k, const uint8_t *key, const char *path)
{
	int32_t i = key_slot(key);

	free(k->slot[i].path);
	memcpy(k->slot[i].key, key, SENTMAP_KEY_LEN);
	k->slot[i].path = xstrdup(path);
	return i;
}

/* Slot i of k if it still holds path, else NO_SLOT. */
static int32_t key_holding(const struct keymap *k, int32_t i, const char *path)
{
	return i != NO_SLOT && k->slot[i].path != NULL && strcmp(k->slot[i].path, path) == 0
		       ? i
		       : NO_SLOT;
}

static void key_rename(struct keymap *k, int32_t i, const char *to)
{
	free(k->slot[i].path);
	k->slot[i].path = xstrdup(to);
}

static void key_drop(struct keymap *k, int32_t i)
{
	free(k->slot[i].path);
	k->slot[i].path = NULL;
}

/* --------------------------------------------------------------- names */

static uint64_t name_hash(const char *path)
{
	uint64_t h = fnv1a(FNV1A_INIT, path, strlen(path));

	return h != 0 ? h : 1;
}

static struct name *name_find(struct sentmap *m, const char *path)
{
	uint64_t h = name_hash(path);
	struct name *n = &m->names[h % NAME_SLOTS];

	return n->h == h ? n : NULL;
}

/* Forgets key slot i if the name evicted (hash h) holds it: a name the
 * map can no longer follow must not be offered, as it may be stale. */
static void evict_slot(struct keymap *k, int32_t i, uint64_t h)
{
	if (i != NO_SLOT && k->slot[i].path != NULL && name_hash(k->slot[i].path) == h)
		key_drop(k, i);
}

/* The entry for path, made (taking over its slot) if there is none. */
static struct name *name_claim(struct sentmap *m, const char *path)
{
	uint64_t h = name_hash(path);
	struct name *n = &m->names[h % NAME_SLOTS];

	if (n->h != h) {
		if (n->h != 0) {
			evict_slot(&m->inodes, n->ino, n->h);
			evict_slot(&m->contents, n->sha, n->h);
		}
		*n = (struct name){.h = h, .ino = NO_SLOT, .sha = NO_SLOT};
	}
	return n;
}

/* Drops what n says the standby holds at path: it is replaced or gone. */
static void name_clear(struct sentmap *m, struct name *n, const char *path)
{
	if (key_holding(&m->inodes, n->ino, path) != NO_SLOT)
		key_drop(&m->inodes, n->ino);
	if (key_holding(&m->contents, n->sha, path) != NO_SLOT)
		key_drop(&m->contents, n->sha);
	n->h = 0;
}

/* -------------------------------------------------------------- public */

void sentmap_sent(struct sentmap *m, const char *path, const uint8_t *inode_key,
		  const uint8_t *sha)
{
	struct name *n = name_find(m, path);

	if (n != NULL)
		name_clear(m, n, path); /* new content under an old name */
	if (inode_key == NULL && sha == NULL)
		return;
	n = name_claim(m, path);
	if (inode_key != NULL)
		n->ino = key_put(&m->inodes, inode_key, path);
	if (sha != NULL)
		n->sha = key_put(&m->contents, sha, path);
}

const char *sentmap_by_inode(const struct sentmap *m, const uint8_t *inode_key)
{
	return key_get(&m->inodes, inode_key);
}

const char *sentmap_by_content(const struct sentmap *m, const uint8_t *sha)
{
	return key_get(&m->contents, sha);
}

void sentmap_renamed(struct sentmap *m, const char *from, const char *to)
{
	struct name *n, was, *t;

	if (strcmp(from, to) == 0)
		return;
	sentmap_unlinked(m, to); /* a rename replaces what was there */
	if ((n = name_find(m, from)) == NULL)
		return;
	was = *n;
	n->h = 0;
	was.ino = key_holding(&m->inodes, was.ino, from);
	was.sha = key_holding(&m->contents, was.sha, from);
	if (was.ino != NO_SLOT)
		key_rename(&m->inodes, was.ino, to);
	if (was.sha != NO_SLOT)
		key_rename(&m->contents, was.sha, to);
	if (was.ino == NO_SLOT && was.sha == NO_SLOT && !was.dropped)
		return;
	t = name_claim(m, to);
	t->ino = was.ino;
	t->sha = was.sha;
	t->dropped = was.dropped;
}

void sentmap_unlinked(struct sentmap *m, const char *path)
{
	struct name *n = name_find(m, path);

	if (n != NULL)
		name_clear(m, n, path);
}

void sentmap_dropped(struct sentmap *m, const char *path)
{
	name_claim(m, path)->dropped = true;
}

bool sentmap_take_dropped(struct sentmap *m, const char *path)
{
	struct name *n = name_find(m, path);

	if (n == NULL || !n->dropped)
		return false;
	n->dropped = false;
	if (n->ino == NO_SLOT && n->sha == NO_SLOT)
		n->h = 0; /* nothing else to remember of it */
	return true;
}
