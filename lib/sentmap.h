/*
 * sentmap.h — what a sending session knows the standby holds, by name:
 * the files it sent, keyed by inode and by content hash (so that a hard
 * link or a copy of one becomes a LINK instead of the content again), and
 * the names it could not send because they were gone before they were
 * read (so that a later rename of one sends its new name instead of a
 * rename the standby cannot do).
 *
 * Names follow the session's renames and unlinks: a message delivered to
 * new/ and then flagged into cur/ before being copied is linked from its
 * cur/ name, the one the standby has by then.
 *
 * Lossy and bounded (direct-mapped tables): a forgotten entry only costs
 * bytes — the content is sent rather than linked, or the standby asks for
 * it (NEED) — never correctness.
 */
#ifndef MDREPL_SENTMAP_H
#define MDREPL_SENTMAP_H

#include <stdbool.h>
#include <stdint.h>

#define SENTMAP_KEY_LEN 32

struct sentmap;

struct sentmap *sentmap_new(void);
void sentmap_free(struct sentmap **mp);

/* path was sent with this inode key and content hash (either may be NULL). */
void sentmap_sent(struct sentmap *m, const char *path, const uint8_t *inode_key,
		  const uint8_t *sha);
/* The name a file with this inode key or content hash was sent as, or NULL. */
const char *sentmap_by_inode(const struct sentmap *m, const uint8_t *inode_key);
const char *sentmap_by_content(const struct sentmap *m, const uint8_t *sha);

/* The standby was told to rename from to to, or to unlink path. */
void sentmap_renamed(struct sentmap *m, const char *from, const char *to);
void sentmap_unlinked(struct sentmap *m, const char *path);

/* path was not sent: it was gone when it came to be read. */
void sentmap_dropped(struct sentmap *m, const char *path);
/* True (and forgotten) if path was dropped and not sent since. */
bool sentmap_take_dropped(struct sentmap *m, const char *path);

#endif
