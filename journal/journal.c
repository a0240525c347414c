/*
 * journal.c — the journal writer: open and recovery, append, group
 * commit, rotation, retention, the acked position and the needs-full-sync
 * marker (see journal.h; the format and the rules are in docs/journal.md).
 *
 * One process writes (mdrepl-journald). Records are pwrite()n as they are
 * appended, so readers see them at once; fsyncs are batched. Segments are
 * created complete (header written and fsync'd under a temporary name,
 * then renamed), so a segment file with a bad header is corruption, never
 * a crash artefact.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "jformat.h"
#include "journal.h"
#include "log.h"
#include "xalloc.h"

#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
#define BOOT_ID_MAX  64

struct seginfo {
	uint64_t first; /* first LSN */
	uint64_t size;	/* bytes, header included */
};

struct journal {
	char *dir;
	int dirfd;
	struct journal_opts o;
	uint64_t id;
	int fd;		      /* the current (newest) segment */
	struct seginfo *segs; /* oldest first; the last is the current one */
	size_t nsegs, cap;
	uint64_t head;	  /* last LSN appended */
	uint64_t durable; /* last LSN fsync'd */
	uint64_t pending; /* records appended since the last fsync */
	uint64_t pending_since_ms;
	uint64_t total_size;
	bool broken;	/* a failed write or fsync: refuse further appends */
	struct buf rec; /* encoding buffer */
	struct journal_stats st;
};

static const char *const type_names[] = {
    [JR_CREATE] = "create",
    [JR_RENAME] = "rename",
    [JR_UNLINK] = "unlink",
    [JR_FOLDER_CREATE] = "folder_create",
    [JR_FOLDER_DELETE] = "folder_delete",
    [JR_FOLDER_RENAME] = "folder_rename",
    [JR_META_CHANGED] = "meta_changed",
    [JR_RESCAN] = "rescan",
    [JR_START] = "start",
    [JR_STOP] = "stop",
};

const char *jrec_type_name(enum jrec_type t)
{
	if (t < JR_CREATE || t > JR_STOP)
		return "unknown";
	return type_names[t];
}

static uint64_t new_journal_id(uint64_t not_this)
{
	uint64_t id = 0;

	while (id == 0 || id == not_this) {
		if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
			log_fatal("getrandom failed: %m");
	}
	return id;
}

/* The kernel's boot id ("" if unreadable: then every boot looks new). */
static void read_boot_id(char out[BOOT_ID_MAX])
{
	struct buf b = BUF_INIT;

	out[0] = '\0';
	if (fs_read_file(AT_FDCWD, BOOT_ID_PATH, &b, BOOT_ID_MAX - 1, NULL) == 0) {
		size_t n = b.len;

		while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == ' '))
			n--;
		memcpy(out, b.data, n);
		out[n] = '\0';
	}
	buf_free(&b);
}

/* journal.meta: "journal_id=<hex>\nboot_id=<uuid>\n", rewritten at every
 * open. Only the boot id is needed (the unclean-stop rule); the id is
 * there for people. Returns true if the file held a boot id. */
static bool read_meta_boot_id(struct journal *j, char boot[BOOT_ID_MAX])
{
	struct buf b = BUF_INIT;
	const char *p;
	bool ok = false;

	boot[0] = '\0';
	if (fs_read_file(j->dirfd, JMETA_FILE, &b, 4096, NULL) == 0 &&
	    (p = strstr(buf_cstr(&b), "boot_id=")) != NULL) {
		size_t n = strcspn(p + 8, "\n");

		if (n < BOOT_ID_MAX) {
			memcpy(boot, p + 8, n);
			boot[n] = '\0';
			ok = true;
		}
	}
	buf_free(&b);
	return ok;
}

static int write_meta(struct journal *j, const char *boot, struct err *e)
{
	struct buf b = BUF_INIT;
	int r;

	buf_printf(&b,
		   "# mdrepl journal metadata (docs/journal.md)\njournal_id=%016" PRIx64
		   "\nboot_id=%s\n",
		   j->id, boot);
	r = fs_write_atomic(j->dirfd, JMETA_FILE, b.data, b.len, 0600, e);
	buf_free(&b);
	return r;
}

static void seg_push(struct journal *j, uint64_t first, uint64_t size)
{
	if (j->nsegs == j->cap) {
		j->cap = j->cap ? 2 * j->cap : 16;
		j->segs = xreallocarray(j->segs, j->cap, sizeof(*j->segs));
	}
	j->segs[j->nsegs++] = (struct seginfo){first, size};
	j->total_size += size;
	j->st.segments = j->nsegs;
}

/* Creates the segment for first_lsn complete: header written and fsync'd
 * under a temporary name, renamed into place (replacing an empty segment
 * of that name), directory fsync'd. Returns its fd (read-write) or -1. */
static int create_segment(struct journal *j, uint64_t first_lsn, struct err *e)
{
	struct jseg_hdr h = {j->id, first_lsn, now_real_ns()};
	uint8_t hdr[JSEG_HDR_LEN];
	char name[JSEG_NAME_SIZE], tmp[JSEG_NAME_SIZE + 8];
	int fd;

	jseg_name(first_lsn, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	unlinkat(j->dirfd, tmp, 0);
	fd = openat(j->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_sys(e, "cannot create journal segment %s/%s", j->dir, tmp);
	jseg_hdr_encode(&h, hdr);
	if (fs_write_all(fd, hdr, sizeof(hdr)) < 0 || fsync(fd) < 0) {
		err_sys(e, "cannot write journal segment %s/%s", j->dir, tmp);
		goto fail;
	}
	if (renameat(j->dirfd, tmp, j->dirfd, name) < 0) {
		err_sys(e, "rename(%s -> %s) failed in %s", tmp, name, j->dir);
		goto fail;
	}
	if (fs_fsync_dir(j->dirfd, NULL, e) < 0) {
		close(fd);
		return -1;
	}
	return fd;
fail:
	close(fd);
	unlinkat(j->dirfd, tmp, 0);
	return -1;
}

/* Removes temporary files a crash of the writer left behind (segments
 * being created, journal.meta being replaced). Those of other writers
 * (acked) are theirs: fs_write_atomic replaces a leftover itself. */
static void remove_leftovers(struct journal *j)
{
	int fd = openat(j->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *d;
	DIR *dp;

	if (fd < 0 || (dp = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((d = readdir(dp)) != NULL) {
		if (strstr(d->d_name, JSEG_SUFFIX ".tmp") != NULL ||
		    strncmp(d->d_name, JMETA_FILE ".tmp.", strlen(JMETA_FILE) + 5) == 0)
			unlinkat(j->dirfd, d->d_name, 0);
	}
	closedir(dp);
}

static int seg_file_size(struct journal *j, uint64_t first, uint64_t *size_r, struct err *e)
{
	char name[JSEG_NAME_SIZE];
	struct stat sb;

	jseg_name(first, name);
	if (fstatat(j->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(e, "cannot stat journal segment %s/%s", j->dir, name);
	*size_r = (uint64_t)sb.st_size;
	return 0;
}

/* Deletes older segments that belong to another journal id: leftovers of
 * a journal restart that crashed before it finished. */
static int drop_stale_segments(struct journal *j, const uint64_t *lsns, size_t n, struct err *e)
{
	for (size_t i = 0; i + 1 < n; i++) {
		struct jscan sc;
		char name[JSEG_NAME_SIZE];

		if (jscan_open(&sc, j->dirfd, j->dir, lsns[i], O_RDONLY, e) < 0)
			return -1;
		if (sc.hdr.journal_id != j->id) {
			jseg_name(lsns[i], name);
			log_warn(
			    "deleting journal segment %s/%s of an earlier journal id %016" PRIx64,
			    j->dir, name, sc.hdr.journal_id);
			unlinkat(j->dirfd, name, 0);
		}
		jscan_close(&sc);
	}
	return 0;
}

/* Reads a segment to its end. For the newest, a torn tail is cut off;
 * for an older one it is corruption. Returns 0 and fills *sc (left open
 * at the tail), or -1. */
static int scan_segment(struct journal *j, uint64_t first, bool newest, struct jscan *sc,
			struct err *e)
{
	struct jrec r;
	int rc;

	if (jscan_open(sc, j->dirfd, j->dir, first, newest ? O_RDWR : O_RDONLY, e) < 0)
		return -1;
	while ((rc = jscan_next(sc, &r, e)) == 1)
		;
	if (rc < 0)
		goto fail;
	if (sc->torn && !newest) {
		err_set(e, ERR_CORRUPT,
			"journal corrupt: %s: offset %" PRIu64
			": incomplete record in a closed segment",
			sc->path, sc->tail_off);
		goto fail;
	}
	if (sc->torn) {
		log_warn("journal %s: cutting a torn tail at offset %" PRIu64
			 " (the last record was incomplete after a crash)",
			 sc->path, sc->tail_off);
		if (ftruncate(sc->fd, (off_t)sc->tail_off) < 0 || fsync(sc->fd) < 0) {
			err_sys(e, "cannot truncate journal segment %s", sc->path);
			goto fail;
		}
	}
	return 0;
fail:
	jscan_close(sc);
	return -1;
}

/* Finds the head and the last record's type from the newest segment (and
 * the one before it, if the newest holds no record yet). */
static int recover(struct journal *j, const uint64_t *lsns, size_t n, uint64_t *last_type_r,
		   struct err *e)
{
	struct jscan sc, prev;
	uint64_t size;

	if (scan_segment(j, lsns[n - 1], true, &sc, e) < 0)
		return -1;
	j->id = sc.hdr.journal_id;
	j->fd = sc.fd;
	sc.fd = -1;
	j->head = sc.next_lsn - 1;
	*last_type_r = sc.last_type;
	size = sc.tail_off;
	jscan_close(&sc);
	if (*last_type_r == 0 && n > 1) {
		if (scan_segment(j, lsns[n - 2], false, &prev, e) < 0)
			return -1;
		if (prev.hdr.journal_id == j->id)
			*last_type_r = prev.last_type;
		if (prev.hdr.journal_id == j->id && prev.next_lsn != lsns[n - 1]) {
			err_set(e, ERR_CORRUPT,
				"journal corrupt: %s: ends at LSN %" PRIu64
				" but the next segment starts at %" PRIu64,
				prev.path, prev.next_lsn - 1, lsns[n - 1]);
			jscan_close(&prev);
			return -1;
		}
		jscan_close(&prev);
	}
	if (drop_stale_segments(j, lsns, n, e) < 0)
		return -1;
	for (size_t i = 0; i + 1 < n; i++) {
		uint64_t sz = 0;

		if (seg_file_size(j, lsns[i], &sz, NULL) == 0)
			seg_push(j, lsns[i], sz);
	}
	seg_push(j, lsns[n - 1], size);
	return 0;
}

/* Starts a new journal id at LSN first (keeping LSNs increasing), and
 * deletes every older segment: after an unclean stop across a reboot the
 * old records may have lost their unsynced tail, which a reader may
 * already have seen. */
static int restart_journal(struct journal *j, uint64_t first, struct err *e)
{
	char name[JSEG_NAME_SIZE];
	uint64_t old = j->id;
	int fd;

	j->id = new_journal_id(old);
	fd = create_segment(j, first, e);
	if (fd < 0)
		return -1;
	if (j->fd >= 0)
		close(j->fd);
	j->fd = fd;
	for (size_t i = 0; i < j->nsegs; i++) {
		if (j->segs[i].first == first)
			continue;
		jseg_name(j->segs[i].first, name);
		unlinkat(j->dirfd, name, 0);
	}
	j->nsegs = 0;
	j->total_size = 0;
	seg_push(j, first, JSEG_HDR_LEN);
	log_warn("journal %s: unclean stop across a reboot; unsynced records may be lost, so a new "
		 "journal id %016" PRIx64 " starts at LSN %" PRIu64 " (was %016" PRIx64
		 "; the standby will do a full compare)",
		 j->dir, j->id, first, old);
	return 0;
}

static int open_dirfd(struct journal *j, const char *dir, struct err *e)
{
	if (fs_mkdir_p(dir, 0700, e) < 0)
		return -1;
	j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0)
		return err_sys(e, "cannot open journal directory %s", dir);
	/* One writer: a second one would interleave LSNs. */
	if (flock(j->dirfd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK
			   ? err_set(e, EBUSY, "journal %s is open for writing by another process",
				     dir)
			   : err_sys(e, "cannot lock journal directory %s", dir);
	return 0;
}

struct journal *journal_open(const char *dir, const struct journal_opts *o, bool *was_clean_r,
			     struct err *e)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	char boot[BOOT_ID_MAX], meta_boot[BOOT_ID_MAX];
	uint64_t *lsns = NULL, last_type = 0;
	bool have_meta, clean;
	size_t n = 0;

	j->dir = xstrdup(dir);
	j->o = *o;
	j->fd = -1;
	j->dirfd = -1;
	if (open_dirfd(j, dir, e) < 0)
		goto fail;
	remove_leftovers(j);
	if (jseg_list(j->dirfd, dir, &lsns, &n, e) < 0)
		goto fail;
	read_boot_id(boot);
	have_meta = read_meta_boot_id(j, meta_boot);
	if (n == 0) {
		/* A new journal (or one whose segments were all removed:
		 * then not clean, and the new id forces a full compare). */
		j->id = new_journal_id(0);
		j->fd = create_segment(j, 1, e);
		if (j->fd < 0)
			goto fail;
		seg_push(j, 1, JSEG_HDR_LEN);
		clean = !have_meta;
	} else {
		if (recover(j, lsns, n, &last_type, e) < 0)
			goto fail;
		clean = last_type == JR_STOP;
		if (!clean && (!have_meta || boot[0] == '\0' || strcmp(boot, meta_boot) != 0) &&
		    restart_journal(j, j->head + 1, e) < 0)
			goto fail;
	}
	j->durable = j->head;
	if (write_meta(j, boot, e) < 0)
		goto fail;
	free(lsns);
	*was_clean_r = clean;
	return j;
fail:
	err_prefix(e, "cannot open journal %s", dir);
	free(lsns);
	journal_free(&j);
	return NULL;
}

static int sync_now(struct journal *j, struct err *e)
{
	if (fdatasync(j->fd) < 0) {
		j->broken = true;
		return err_sys(e, "fsync of journal segment in %s failed", j->dir);
	}
	j->st.fsyncs++;
	j->durable = j->head;
	j->pending = 0;
	return 0;
}

static int rotate(struct journal *j, struct err *e)
{
	int fd;

	if (j->pending > 0 && sync_now(j, e) < 0)
		return -1;
	fd = create_segment(j, j->head + 1, e);
	if (fd < 0)
		return -1;
	close(j->fd);
	j->fd = fd;
	seg_push(j, j->head + 1, JSEG_HDR_LEN);
	j->st.rotations++;
	return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int journal_append(struct journal *j, enum jrec_type type, uint32_t flags, struct slice path,
		   struct slice path2, uint64_t *lsn_r, struct err *e)
{
	struct jrec r = {j->head + 1, now_real_ns(), type, flags, path, path2};
	struct seginfo *cur = &j->segs[j->nsegs - 1];
	size_t len = JREC_HDR_LEN + path.len + path2.len;

	if (j->broken)
		return err_set(e, EIO, "journal %s is unusable after an earlier write failure",
			       j->dir);
	if (path.len > JREC_PATH_MAX || path2.len > JREC_PATH_MAX)
		return err_set(e, ENAMETOOLONG, "journal record path longer than %d bytes",
			       JREC_PATH_MAX);
	if (type < JR_CREATE || type > JR_STOP)
		return err_set(e, EINVAL, "unknown journal record type %d", (int)type);
	if (j->head >= JLSN_MAX)
		return err_set(e, EOVERFLOW,
			       "journal %s has used every LSN; move it aside to start a new one",
			       j->dir);
	if (cur->size > JSEG_HDR_LEN && cur->size + len > j->o.segment_size) {
		if (rotate(j, e) < 0)
			return -1;
		cur = &j->segs[j->nsegs - 1];
	}
	buf_reset(&j->rec);
	jrec_encode(&j->rec, &r);
	if (pwrite_all(j->fd, j->rec.data, j->rec.len, cur->size) < 0) {
		err_sys(e, "cannot append to journal in %s", j->dir);
		/* Never leave a partial record that later appends would follow. */
		if (ftruncate(j->fd, (off_t)cur->size) < 0)
			j->broken = true;
		return -1;
	}
	cur->size += len;
	j->total_size += len;
	j->head = r.lsn;
	j->st.appends++;
	if (j->pending++ == 0)
		j->pending_since_ms = now_mono_ms();
	if (lsn_r != NULL)
		*lsn_r = r.lsn;
	if (j->o.fsync_interval_ms == 0)
		return sync_now(j, e);
	return 0;
}

int journal_sync(struct journal *j, bool force, struct err *e)
{
	uint64_t now, due;

	if (j->pending == 0)
		return -1;
	now = now_mono_ms();
	due = j->pending_since_ms + j->o.fsync_interval_ms;
	if (!force && j->pending < j->o.fsync_records && now < due)
		return due - now > 1000000 ? 1000000 : (int)(due - now);
	return sync_now(j, e) < 0 ? -2 : -1;
}

static int create_marker(struct journal *j, uint64_t upto, struct err *e)
{
	struct buf b = BUF_INIT;
	int r;

	buf_printf(&b,
		   "journal max_size exceeded: records up to LSN %" PRIu64
		   " were deleted before the standby acknowledged them; a full compare is needed\n",
		   upto);
	r = fs_write_atomic(j->dirfd, JMARKER_FILE, b.data, b.len, 0600, e);
	buf_free(&b);
	return r;
}

static int delete_oldest(struct journal *j, struct err *e)
{
	char name[JSEG_NAME_SIZE];

	jseg_name(j->segs[0].first, name);
	if (unlinkat(j->dirfd, name, 0) < 0 && errno != ENOENT)
		return err_sys(e, "cannot delete journal segment %s/%s", j->dir, name);
	j->total_size -= j->segs[0].size;
	memmove(j->segs, j->segs + 1, (j->nsegs - 1) * sizeof(*j->segs));
	j->nsegs--;
	j->st.segments = j->nsegs;
	j->st.deleted++;
	return 0;
}

int journal_retain(struct journal *j, struct err *e)
{
	uint64_t acked_id, acked = 0;
	bool marked = false;
	size_t deleted = 0;

	if (journal_read_acked(j->dir, &acked_id, &acked, e) < 0)
		return -1;
	if (acked_id != j->id)
		acked = 0; /* a position in another journal says nothing here */
	/* The last LSN of segment 0 is one before segment 1's first. */
	while (j->nsegs > 1 && j->segs[1].first - 1 <= acked) {
		if (delete_oldest(j, e) < 0)
			return -1;
		deleted++;
	}
	while (j->nsegs > 1 && j->total_size > j->o.max_size) {
		uint64_t last = j->segs[1].first - 1;

		/* The marker must be durable before unacked records go. */
		if (!marked && last > acked) {
			if (create_marker(j, last, e) < 0)
				return -1;
			marked = true;
			log_warn("journal %s is larger than max_size %" PRIu64
				 " bytes: deleting unacknowledged records; the standby needs a "
				 "full sync",
				 j->dir, j->o.max_size);
		}
		if (delete_oldest(j, e) < 0)
			return -1;
		deleted++;
	}
	if (deleted > 0)
		return fs_fsync_dir(j->dirfd, NULL, e);
	return 0;
}

int journal_close_clean(struct journal **jp, struct err *e)
{
	struct journal *j = *jp;
	int r = 0;

	if (j == NULL)
		return 0;
	if (journal_append(j, JR_STOP, 0, SLICE_LIT(""), SLICE_LIT(""), NULL, e) < 0 ||
	    journal_sync(j, true, e) == -2)
		r = -1;
	journal_free(jp);
	return r;
}

void journal_free(struct journal **jp)
{
	struct journal *j = *jp;

	if (j == NULL)
		return;
	if (j->fd >= 0)
		close(j->fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j->segs);
	free(j->dir);
	buf_free(&j->rec);
	free(j);
	*jp = NULL;
}

uint64_t journal_id(const struct journal *j)
{
	return j->id;
}

uint64_t journal_head(const struct journal *j)
{
	return j->head;
}

uint64_t journal_durable(const struct journal *j)
{
	return j->durable;
}

uint64_t journal_size(const struct journal *j)
{
	return j->total_size;
}

void journal_get_stats(const struct journal *j, struct journal_stats *st)
{
	*st = j->st;
}

int journal_write_acked(const char *dir, uint64_t journal_id, uint64_t lsn, struct err *e)
{
	struct buf b = BUF_INIT;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return err_sys(e, "cannot open journal directory %s", dir);
	buf_printf(&b, "journal_id=%016" PRIx64 "\nlsn=%" PRIu64 "\n", journal_id, lsn);
	r = fs_write_atomic(fd, JACKED_FILE, b.data, b.len, 0600, e);
	close(fd);
	buf_free(&b);
	return r;
}

int journal_read_acked(const char *dir, uint64_t *journal_id_r, uint64_t *lsn_r, struct err *e)
{
	struct buf b = BUF_INIT;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;
	unsigned long long id, lsn;
	char tail;

	*journal_id_r = 0;
	*lsn_r = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : err_sys(e, "cannot open journal directory %s", dir);
	if (fs_read_file(fd, JACKED_FILE, &b, 256, e) < 0) {
		r = errno == ENOENT ? 0 : -1;
	} else if (sscanf(buf_cstr(&b), "journal_id=%16llx\nlsn=%llu%c", &id, &lsn, &tail) != 3 ||
		   tail != '\n') {
		r = err_set(e, ERR_CORRUPT, "%s/%s: malformed acknowledged position", dir,
			    JACKED_FILE);
	} else {
		*journal_id_r = id;
		*lsn_r = lsn;
	}
	close(fd);
	buf_free(&b);
	return r;
}

bool journal_needs_full_sync(const char *dir)
{
	struct buf p = BUF_INIT;
	bool r;

	buf_printf(&p, "%s/%s", dir, JMARKER_FILE);
	r = access(buf_cstr(&p), F_OK) == 0;
	buf_reset(&p);
	buf_printf(&p, "%s/%s", dir, JMARKER_CLAIMED);
	r = r || access(buf_cstr(&p), F_OK) == 0;
	buf_free(&p);
	return r;
}

int journal_claim_full_sync(const char *dir, struct err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return errno == ENOENT ? 0 : err_sys(e, "cannot open journal directory %s", dir);
	if (renameat(fd, JMARKER_FILE, fd, JMARKER_CLAIMED) == 0)
		r = fs_fsync_dir(fd, NULL, e) < 0 ? -1 : 1;
	else if (errno != ENOENT)
		r = err_sys(e, "cannot claim %s/%s", dir, JMARKER_FILE);
	else
		r = faccessat(fd, JMARKER_CLAIMED, F_OK, 0) == 0 ? 1 : 0;
	close(fd);
	return r;
}

int journal_finish_full_sync(const char *dir, struct err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : err_sys(e, "cannot open journal directory %s", dir);
	if (unlinkat(fd, JMARKER_CLAIMED, 0) < 0 && errno != ENOENT)
		r = err_sys(e, "cannot remove %s/%s", dir, JMARKER_CLAIMED);
	else
		r = fs_fsync_dir(fd, NULL, e);
	close(fd);
	return r;
}
