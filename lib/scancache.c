/*
 * scancache.c — the folder digest cache (declared in scan.h).
 *
 * An entry holds a folder's (non-deep) digest and a stamp (inode, size,
 * mtime, ctime) of every non-message entry of the listing it came from:
 * the folder directory, cur/, new/, tmp/, courierimapkeywords/ and each
 * metadata file. Adding, removing or renaming a message changes cur/'s or
 * new/'s stamp; rewriting or replacing a metadata file changes its own;
 * adding a metadata file or a subdirectory changes the folder's. ctime is
 * compared as well as mtime because nobody can set it (utimensat cannot)
 * and chmod moves it. Message files themselves are not stamped: Maildir
 * messages are never changed in place, so a deep digest (which hashes
 * content precisely to catch that) is never cached.
 *
 * An entry is stored only when every stamp is older than two seconds
 * before the listing started: a change during or after the listing then
 * necessarily moves a stamp, even with coarse file-system timestamps.
 *
 * An entry also keeps the folder's message count and bytes (scan.h's
 * folder_counts), so that an audit of an unchanged store can say how much
 * mail it compared without listing it.
 *
 * Several processes share one cache file (the rolling engine and the
 * audit on a primary; syncd's sessions on a standby), each holding the
 * entries in memory for its lifetime. So that one does not throw away
 * what another computed, a save first takes in the file's entries when
 * another process replaced the file since this one last read or wrote it,
 * keeping of two entries for a folder the one with the newer stamps (a
 * later listing rests on later ctimes). Entries are checked before use in
 * any case, so a merge can cost hits, never correctness.
 *
 * Digests depend on the naming and exclude rules as well: the file records
 * the fingerprint of the rules its entries were computed under, and a
 * cache asked for a digest under other rules (the configuration changed)
 * starts over; a file written under other rules is not merged.
 *
 * File format (big endian): "MDRDGC" u32 version, u64 rules fingerprint
 * (md_rules_id), u64 count, entries
 * (str folder, digest, u64 messages, u64 bytes, u32 nstamps, stamps: str
 * name, u64 ino, u64 size, i64 mtime_ns, i64 ctime_ns; str = u32 length +
 * bytes), u32 CRC-32 of everything before it. Anything that does not parse
 * exactly is discarded with a warning and rebuilt; a file of the previous
 * version (1 without counts, 2 without the rules) is discarded quietly.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "hash.h"
#include "log.h"
#include "safepath.h"
#include "scan.h"
#include "xalloc.h"

#define CACHE_MAGIC    "MDRDGC"
#define CACHE_VERSION  3
#define CACHE_MAX_FILE (512u << 20)
#define RACY_NS	       (2LL * 1000000000)

struct stamp {
	char *name; /* relative to the folder; "." is the folder itself */
	uint64_t ino, size;
	int64_t mtime_ns, ctime_ns;
};

struct centry {
	struct centry *next;
	char *folder;
	uint8_t digest[WIRE_DIGEST_LEN];
	struct folder_counts counts;
	struct stamp *st;
	uint32_t nst;
};

struct digest_cache {
	char *path; /* NULL: not persisted */
	struct centry **tab;
	size_t nbuckets, n;
	bool dirty;
	uint64_t rules_id; /* of the rules the entries were computed under */
	uint64_t hits, misses;
	struct stamp file; /* the file as last read or written (ino, size, mtime) */
};

static void clear(struct digest_cache *c);

static void stamp_set(struct stamp *s, const struct stat *st)
{
	s->ino = st->st_ino;
	s->size = (uint64_t)st->st_size;
	s->mtime_ns = ts_ns(st->st_mtim);
	s->ctime_ns = ts_ns(st->st_ctim);
}

static void centry_free(struct centry *ce)
{
	for (uint32_t i = 0; i < ce->nst; i++)
		free(ce->st[i].name);
	free(ce->st);
	free(ce->folder);
	free(ce);
}

/* ---------------------------------------------------------- hash table */

static size_t bucket(const struct digest_cache *c, const char *folder)
{
	return (size_t)(fnv1a(FNV1A_INIT, folder, strlen(folder)) & (c->nbuckets - 1));
}

static struct centry **find_slot(struct digest_cache *c, const char *folder)
{
	struct centry **pp = &c->tab[bucket(c, folder)];

	while (*pp != NULL && strcmp((*pp)->folder, folder) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void grow(struct digest_cache *c)
{
	size_t old = c->nbuckets;
	struct centry **tab = c->tab;

	c->nbuckets *= 2;
	c->tab = xcalloc(c->nbuckets, sizeof(*c->tab));
	for (size_t i = 0; i < old; i++) {
		while (tab[i] != NULL) {
			struct centry *ce = tab[i], **slot;

			tab[i] = ce->next;
			slot = &c->tab[bucket(c, ce->folder)];
			ce->next = *slot;
			*slot = ce;
		}
	}
	free(tab);
}

/* Inserts ce, replacing an entry for the same folder. */
static void put(struct digest_cache *c, struct centry *ce)
{
	struct centry **pp = find_slot(c, ce->folder);

	if (*pp != NULL) {
		ce->next = (*pp)->next;
		centry_free(*pp);
	} else {
		ce->next = NULL;
		c->n++;
	}
	*pp = ce;
	if (c->n > c->nbuckets)
		grow(c);
}

static void drop(struct digest_cache *c, const char *folder)
{
	struct centry **pp = find_slot(c, folder), *ce = *pp;

	if (ce == NULL)
		return;
	*pp = ce->next;
	centry_free(ce);
	c->n--;
	c->dirty = true;
}

/* ------------------------------------------------------------ validity */

static int open_folder_path(int rootfd, const char *folder)
{
	if (*folder == '\0')
		return openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	return sp_open(rootfd, folder, O_PATH | O_DIRECTORY, 0, NULL);
}

static bool still_valid(int rootfd, const struct centry *ce)
{
	int dfd = open_folder_path(rootfd, ce->folder);
	bool ok = dfd >= 0;

	for (uint32_t i = 0; ok && i < ce->nst; i++) {
		struct stamp now;
		struct stat st;

		ok = fstatat(dfd, ce->st[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0;
		if (ok) {
			stamp_set(&now, &st);
			ok = now.ino == ce->st[i].ino && now.size == ce->st[i].size &&
			     now.mtime_ns == ce->st[i].mtime_ns &&
			     now.ctime_ns == ce->st[i].ctime_ns;
		}
	}
	if (dfd >= 0)
		close(dfd);
	return ok;
}

static bool is_message(const char *name)
{
	return strncmp(name, "cur/", 4) == 0 || strncmp(name, "new/", 4) == 0;
}

/* Stamps what the listing l of folder rests on; NULL if anything changed
 * since the listing started at start_ns or is too recent to trust. */
static struct centry *make_entry(int rootfd, const char *folder, const struct folder_list *l,
				 int64_t start_ns, const uint8_t digest[WIRE_DIGEST_LEN],
				 const struct folder_counts *counts)
{
	struct centry *ce = xcalloc(1, sizeof(*ce));
	int dfd = open_folder_path(rootfd, folder);
	bool ok = dfd >= 0;

	ce->folder = xstrdup(folder);
	memcpy(ce->digest, digest, WIRE_DIGEST_LEN);
	ce->counts = *counts;
	ce->st = xcalloc(l->n ? l->n : 1, sizeof(*ce->st));
	for (size_t i = 0; ok && i < l->n; i++) {
		const struct scan_entry *en = &l->v[i];
		struct stamp *s = &ce->st[ce->nst];
		struct stat st;

		if (is_message(en->name))
			continue;
		ok = fstatat(dfd, en->name, &st, AT_SYMLINK_NOFOLLOW) == 0;
		if (!ok)
			break;
		stamp_set(s, &st);
		s->name = xstrdup(en->name);
		ce->nst++;
		ok = s->ino == en->ino && s->mtime_ns < start_ns - RACY_NS &&
		     s->ctime_ns < start_ns - RACY_NS &&
		     (!S_ISREG(en->mode) || (s->size == en->size && s->mtime_ns == en->mtime_ns));
	}
	if (dfd >= 0)
		close(dfd);
	if (!ok) {
		centry_free(ce);
		return NULL;
	}
	return ce;
}

int digest_cache_get(struct digest_cache *c, int rootfd, const struct md_rules *rules,
		     const char *folder, bool deep, uint8_t out[WIRE_DIGEST_LEN], struct err *e)
{
	struct folder_counts counts;

	return digest_cache_get_counted(c, rootfd, rules, folder, deep, out, &counts, e);
}

int digest_cache_get_counted(struct digest_cache *c, int rootfd, const struct md_rules *rules,
			     const char *folder, bool deep, uint8_t out[WIRE_DIGEST_LEN],
			     struct folder_counts *counts_r, struct err *e)
{
	struct centry *ce, *ne;
	struct folder_list l;
	int64_t start;
	int r;

	if (c->rules_id != md_rules_id(rules)) {
		if (c->n > 0)
			log_info("naming or exclude rules changed: folder digests computed afresh");
		clear(c);
		c->rules_id = md_rules_id(rules);
		c->dirty = true;
	}
	ce = deep ? NULL : *find_slot(c, folder);
	if (ce != NULL && still_valid(rootfd, ce)) {
		c->hits++;
		memcpy(out, ce->digest, WIRE_DIGEST_LEN);
		*counts_r = ce->counts;
		return 0;
	}
	c->misses++;
	start = (int64_t)now_real_ns();
	r = scan_folder(rootfd, rules, folder, deep, &l, e);
	if (r == 1 && !deep)
		drop(c, folder);
	if (r != 0)
		return r;
	scan_digest(&l, deep, out);
	scan_count(&l, counts_r);
	if (!deep) {
		ne = make_entry(rootfd, folder, &l, start, out, counts_r);
		if (ne != NULL) {
			put(c, ne);
			c->dirty = true;
		} else if (ce != NULL) {
			drop(c, folder);
		}
	}
	folder_list_free(&l);
	return 0;
}

void digest_cache_stats(const struct digest_cache *c, uint64_t *hits, uint64_t *misses)
{
	*hits = c->hits;
	*misses = c->misses;
}

/* --------------------------------------------------------- persistence */

static void put_be(struct buf *b, uint64_t v, int n)
{
	uint8_t tmp[8];

	for (int i = n - 1; i >= 0; i--, v >>= 8)
		tmp[i] = (uint8_t)v;
	buf_append(b, tmp, (size_t)n);
}

static void put_str(struct buf *b, const char *s)
{
	size_t len = strlen(s);

	put_be(b, len, 4);
	buf_append(b, s, len);
}

static void serialize(const struct digest_cache *c, struct buf *b)
{
	buf_append(b, CACHE_MAGIC, 6);
	put_be(b, CACHE_VERSION, 4);
	put_be(b, c->rules_id, 8);
	put_be(b, c->n, 8);
	for (size_t i = 0; i < c->nbuckets; i++) {
		for (const struct centry *ce = c->tab[i]; ce != NULL; ce = ce->next) {
			put_str(b, ce->folder);
			buf_append(b, ce->digest, WIRE_DIGEST_LEN);
			put_be(b, ce->counts.messages, 8);
			put_be(b, ce->counts.bytes, 8);
			put_be(b, ce->nst, 4);
			for (uint32_t j = 0; j < ce->nst; j++) {
				const struct stamp *s = &ce->st[j];

				put_str(b, s->name);
				put_be(b, s->ino, 8);
				put_be(b, s->size, 8);
				put_be(b, (uint64_t)s->mtime_ns, 8);
				put_be(b, (uint64_t)s->ctime_ns, 8);
			}
		}
	}
	put_be(b, crc32_update(0, b->data, b->len), 4);
}

/* A bounds-checked reader: after any short read, ok is false for good. */
struct rd {
	const uint8_t *p;
	size_t len, pos;
	bool ok;
};

static uint64_t get_be(struct rd *r, int n)
{
	uint64_t v = 0;

	if (!r->ok || r->len - r->pos < (size_t)n) {
		r->ok = false;
		return 0;
	}
	for (int i = 0; i < n; i++)
		v = v << 8 | r->p[r->pos++];
	return v;
}

static char *get_str(struct rd *r)
{
	uint64_t len = get_be(r, 4);
	char *s;

	if (!r->ok || len > SP_PATH_MAX || r->len - r->pos < len) {
		r->ok = false;
		return NULL;
	}
	s = xstrndup((const char *)r->p + r->pos, (size_t)len);
	if (strlen(s) != len)
		r->ok = false; /* an embedded NUL */
	r->pos += (size_t)len;
	return s;
}

static struct centry *get_entry(struct rd *r)
{
	struct centry *ce = xcalloc(1, sizeof(*ce));
	uint64_t nst;

	ce->folder = get_str(r);
	if (r->ok && r->len - r->pos >= WIRE_DIGEST_LEN) {
		memcpy(ce->digest, r->p + r->pos, WIRE_DIGEST_LEN);
		r->pos += WIRE_DIGEST_LEN;
	} else {
		r->ok = false;
	}
	ce->counts.messages = get_be(r, 8);
	ce->counts.bytes = get_be(r, 8);
	nst = get_be(r, 4);
	/* Each stamp takes at least 36 bytes: bound the allocation by the file. */
	if (!r->ok || nst > (r->len - r->pos) / 36) {
		r->ok = false;
		centry_free(ce);
		return NULL;
	}
	ce->st = xcalloc(nst ? nst : 1, sizeof(*ce->st));
	for (; r->ok && ce->nst < nst; ce->nst++) {
		struct stamp *s = &ce->st[ce->nst];

		s->name = get_str(r);
		s->ino = get_be(r, 8);
		s->size = get_be(r, 8);
		s->mtime_ns = (int64_t)get_be(r, 8);
		s->ctime_ns = (int64_t)get_be(r, 8);
	}
	if (!r->ok) {
		centry_free(ce);
		return NULL;
	}
	return ce;
}

/* Loads the file's entries; returns 0, 1 for a file of an older version,
 * or -1 with a reason in e. */
static int load(struct digest_cache *c, const struct buf *b, struct err *e)
{
	struct rd r = {b->data, b->len, 6, true}, tail;
	uint64_t n, version;

	if (b->len < 6 + 4 + 8 + 8 + 4 || memcmp(b->data, CACHE_MAGIC, 6) != 0)
		return err_set(e, ERR_CORRUPT, "not a digest cache file");
	version = get_be(&r, 4);
	if (version > 0 && version < CACHE_VERSION)
		return 1;
	if (version != CACHE_VERSION)
		return err_set(e, ERR_CORRUPT, "unknown cache version");
	r.len = b->len - 4; /* the CRC */
	tail = (struct rd){b->data, b->len, r.len, true};
	if (crc32_update(0, b->data, r.len) != get_be(&tail, 4))
		return err_set(e, ERR_CORRUPT, "checksum mismatch");
	c->rules_id = get_be(&r, 8);
	n = get_be(&r, 8);
	for (uint64_t i = 0; r.ok && i < n; i++) {
		struct centry *ce = get_entry(&r);

		if (ce != NULL)
			put(c, ce);
	}
	if (!r.ok || r.pos != r.len)
		return err_set(e, ERR_CORRUPT, "malformed entries");
	return 0;
}

static void clear(struct digest_cache *c)
{
	for (size_t i = 0; i < c->nbuckets; i++) {
		while (c->tab[i] != NULL) {
			struct centry *ce = c->tab[i];

			c->tab[i] = ce->next;
			centry_free(ce);
		}
	}
	c->n = 0;
}

/* ------------------------------------------------------ sharing the file */

/* Remembers which version of the file this cache last read or wrote. */
static void note_file(struct digest_cache *c)
{
	struct stat st;

	memset(&c->file, 0, sizeof(c->file));
	if (stat(c->path, &st) == 0)
		stamp_set(&c->file, &st);
}

static bool file_replaced(const struct digest_cache *c)
{
	struct stamp now = {0};
	struct stat st;

	if (stat(c->path, &st) < 0)
		return false;
	stamp_set(&now, &st);
	return now.ino != c->file.ino || now.size != c->file.size ||
	       now.mtime_ns != c->file.mtime_ns || now.ctime_ns != c->file.ctime_ns;
}

/* The newest ctime an entry rests on. */
static int64_t newest(const struct centry *ce)
{
	int64_t t = INT64_MIN;

	for (uint32_t i = 0; i < ce->nst; i++) {
		if (ce->st[i].ctime_ns > t)
			t = ce->st[i].ctime_ns;
	}
	return t;
}

/* Takes in the entries of a file another process wrote, where newer. */
static void merge_file(struct digest_cache *c)
{
	struct digest_cache *other;

	if (!file_replaced(c))
		return;
	other = digest_cache_open(c->path);
	for (size_t i = 0; other->rules_id == c->rules_id && i < other->nbuckets; i++) {
		struct centry *ce;

		while ((ce = other->tab[i]) != NULL) {
			struct centry *mine = *find_slot(c, ce->folder);

			other->tab[i] = ce->next;
			other->n--;
			if (mine == NULL || newest(mine) < newest(ce))
				put(c, ce);
			else
				centry_free(ce);
		}
	}
	digest_cache_free(&other);
}

struct digest_cache *digest_cache_open(const char *path)
{
	struct digest_cache *c = xcalloc(1, sizeof(*c));
	struct buf b = BUF_INIT;
	struct err e;
	int r;

	c->nbuckets = 64;
	c->tab = xcalloc(c->nbuckets, sizeof(*c->tab));
	if (path == NULL)
		return c;
	c->path = xstrdup(path);
	if (fs_read_file(AT_FDCWD, path, &b, CACHE_MAX_FILE, &e) < 0) {
		if (errno != ENOENT)
			log_warn("digest cache not read, starting empty: %s", e.msg);
	} else if ((r = load(c, &b, &e)) != 0) {
		if (r < 0)
			log_warn("digest cache discarded, starting empty: %s path=%s", e.msg, path);
		else
			log_info("digest cache of an older version, rebuilding it path=%s", path);
		clear(c);
		c->dirty = true;
	}
	note_file(c);
	buf_free(&b);
	return c;
}

int digest_cache_save(struct digest_cache *c, struct err *e)
{
	struct buf b = BUF_INIT;
	int r;

	if (c->path == NULL || !c->dirty)
		return 0;
	merge_file(c);
	serialize(c, &b);
	r = fs_write_atomic(AT_FDCWD, c->path, b.data, b.len, 0600, e);
	buf_free(&b);
	if (r == 0) {
		c->dirty = false;
		note_file(c);
	}
	return r;
}

void digest_cache_free(struct digest_cache **cp)
{
	struct digest_cache *c = *cp;

	if (c == NULL)
		return;
	clear(c);
	free(c->tab);
	free(c->path);
	free(c);
	*cp = NULL;
}
