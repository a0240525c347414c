/*
 * session.c — one connection to mdrepl-syncd (see session.h).
 *
 * SECURITY: handles frames from the network. Every message is decoded by
 * wire.c (bounds-checked); every path is confined by apply.c/safepath.c.
 * Role and generation are checked before any mutation is accepted.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "control.h"
#include "delta.h"
#include "fsutil.h"
#include "log.h"
#include "nodestate.h"
#include "safepath.h"
#include "scan.h"
#include "session.h"
#include "standbypos.h"
#include "xalloc.h"

#define MAX_HELD       4096 /* unresolved NEEDs tracked per session */
#define FENCE_CHECK_MS 50   /* how soon a writer session notices a promotion */
#define SLOW_COMMIT_US 1000000 /* a commit this long is worth a warning */
#define SLOW_WARN_MS   60000   /* at most one such warning a minute */

struct session {
	const struct session_env *env;
	const struct settings *set;
	struct conn *conn;
	struct syncd_shared *sh;
	struct node_state node;
	struct w_hello peer;
	uint8_t peer_id[NODE_ID_LEN];
	bool writer;	  /* holds the writer lock: may mutate */
	int writer_lock;  /* fd of STATE_DIR/syncd.writer.lock */
	struct apply *apply;
	struct standby_pos pos;
	struct standby_pos next_pos; /* written by the commit hook */
	bool pos_rides_sync;	     /* state_dir on the mail file system, syncfs mode */
	struct digest_cache *digests;

	/* the batch being received */
	bool batch_open;
	bool batch_failed;
	struct err batch_err;
	uint64_t batch_ops;
	struct buf needs;
	uint32_t nneeds;

	/* records <= durable are on disk; NEEDs hold it back */
	uint64_t held[MAX_HELD];
	size_t nheld;
	uint64_t received_lsn, applied_lsn;
	uint64_t slow_warned_ms; /* when the last slow-commit warning went out */
	struct buf scratch;
};

void shared_error(struct syncd_shared *sh, const char *fmt, ...)
{
	va_list ap;
	char msg[sizeof(sh->last_error)];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	if (sh == NULL)
		return;
	memcpy(sh->last_error, msg, sizeof(msg));
	__atomic_store_n(&sh->last_error_ns, now_real_ns(), __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->errors, 1, __ATOMIC_RELAXED);
}

static int io_timeout(const struct session *ss)
{
	return (int)ss->set->peer.io_timeout_ms;
}

static int send_msg(struct session *ss, uint8_t type, const union w_msg *m, struct err *e)
{
	return conn_send(ss->conn, type, m, io_timeout(ss), e);
}

/* Sends an ERROR frame (best effort) and logs it. */
static void send_error(struct session *ss, uint32_t code, const char *text)
{
	union w_msg m = {.error = {.code = code, .text = slice_cstr(text)}};
	struct err e;

	log_warn("refusing %s: %s (%s)", conn_peer(ss->conn), text, wire_errcode_name(code));
	if (send_msg(ss, W_ERROR, &m, &e) < 0)
		log_debug("could not send error to %s: %s", conn_peer(ss->conn), e.msg);
}

/* ------------------------------------------------------------------ HELLO */

/* Checks role and generation (DESIGN §8). Returns 0, or -1 after telling
 * the peer why it is refused. */
static int check_role(struct session *ss, struct err *e)
{
	char text[512];
	uint32_t code = control_admit(ss->set, &ss->node, &ss->peer, ss->sh, text, sizeof(text));

	if (code == 0)
		return 0;
	send_error(ss, code, text);
	if (code == WE_GENERATION)
		__atomic_add_fetch(&ss->sh->refused, 1, __ATOMIC_RELAXED);
	return err_set(e, ERR_REFUSED, "%s", text);
}

/* A standby follows its primary's generation. */
static int adopt_generation(struct session *ss, struct err *e)
{
	int lock;
	int r = 0;

	if (ss->peer.generation <= ss->node.generation)
		return 0;
	lock = nodestate_lock(ss->set->node.state_dir, e);
	if (lock < 0)
		return -1;
	if (nodestate_load(ss->set->node.state_dir, ss->set->node.initial_role, &ss->node, e) < 0)
		r = -1;
	else if (ss->node.role == ROLE_STANDBY && ss->peer.generation > ss->node.generation) {
		ss->node.generation = ss->peer.generation;
		if (ss->node.max_seen_generation < ss->peer.generation)
			ss->node.max_seen_generation = ss->peer.generation;
		r = nodestate_save(ss->set->node.state_dir, &ss->node, e);
		if (r == 0)
			log_info("following primary generation %" PRIu64, ss->node.generation);
	}
	close(lock);
	return r;
}

static int take_writer_lock(struct session *ss, struct err *e)
{
	struct buf path = BUF_INIT;
	int fd;

	buf_printf(&path, "%s/syncd.writer.lock", ss->set->node.state_dir);
	fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	buf_free(&path);
	if (fd < 0)
		return err_sys(e, "cannot open writer lock");
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int32_t other = __atomic_load_n(&ss->sh->writer_pid, __ATOMIC_RELAXED);
		char text[200];

		close(fd);
		snprintf(text, sizeof(text),
			 "another primary session (pid %d) is already writing to this standby",
			 (int)other);
		send_error(ss, WE_BUSY, text);
		return err_set(e, ERR_REFUSED, "%s", text);
	}
	ss->writer_lock = fd;
	ss->writer = true;
	__atomic_store_n(&ss->sh->writer_pid, (int32_t)getpid(), __ATOMIC_RELAXED);
	return 0;
}

static void fill_hello(struct session *ss, struct w_hello *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = slice_cstr(WIRE_MAGIC);
	h->ver_min = WIRE_VERSION_MIN;
	h->ver_max = WIRE_VERSION_MAX;
	h->caps = CAP_ALL;
	memcpy(h->node_id, ss->node.node_id, NODE_ID_LEN);
	h->role = ss->node.role;
	h->generation = ss->node.generation;
	h->purpose = ss->peer.purpose;
	h->software = slice_cstr(PACKAGE_NAME " " PACKAGE_VERSION);
	if (ss->node.role == ROLE_PRIMARY &&
	    (ss->peer.purpose == PURPOSE_PROBE || ss->peer.purpose == PURPOSE_SWITCHOVER)) {
		/* A primary tells a probing standby how far its journal goes. */
		control_journal_head(ss->set, &h->journal_id, &h->durable_lsn);
		h->applied_lsn = h->received_lsn = h->durable_lsn;
	} else if (ss->peer.purpose == PURPOSE_PROBE) {
		h->journal_id = ss->pos.journal_id;
		h->durable_lsn = h->applied_lsn = h->received_lsn = ss->pos.durable_lsn;
	} else if (ss->pos.journal_id == ss->peer.journal_id) {
		/* Positions mean something only for the journal the sender names. */
		h->journal_id = ss->pos.journal_id;
		h->durable_lsn = h->applied_lsn = h->received_lsn = ss->pos.durable_lsn;
	}
}

static int version_ok(struct session *ss)
{
	const struct w_hello *h = &ss->peer;
	char text[200];

	if (!slice_eq_cstr(h->magic, WIRE_MAGIC)) {
		send_error(ss, WE_PROTOCOL, "not an mdrepl client (bad HELLO magic)");
		return -1;
	}
	if (h->ver_max < WIRE_VERSION_MIN || h->ver_min > WIRE_VERSION_MAX) {
		snprintf(text, sizeof(text),
			 "protocol version mismatch: this standby speaks %u-%u, the sender %u-%u; "
			 "upgrade the older side",
			 WIRE_VERSION_MIN, WIRE_VERSION_MAX, h->ver_min, h->ver_max);
		send_error(ss, WE_VERSION, text);
		return -1;
	}
	return 0;
}

static int hello(struct session *ss, struct err *e)
{
	struct w_frame f;
	union w_msg m;

	if (conn_recv(ss->conn, &f, &m, (int)ss->set->peer.connect_timeout_ms, e) < 0)
		return err_prefix(e, "waiting for HELLO from %s", conn_peer(ss->conn));
	if (f.type != W_HELLO) {
		send_error(ss, WE_PROTOCOL, "expected HELLO");
		return err_set(e, ERR_PROTO, "%s sent %s before HELLO", conn_peer(ss->conn),
			       wire_type_name(f.type));
	}
	ss->peer = m.hello;
	memcpy(ss->peer_id, m.hello.node_id, NODE_ID_LEN);
	ss->peer.software = (struct slice){NULL, 0}; /* points into the frame */
	ss->peer.magic = slice_eq_cstr(m.hello.magic, WIRE_MAGIC) ? slice_cstr(WIRE_MAGIC)
								 : (struct slice){"", 0};
	if (version_ok(ss) < 0)
		return err_set(e, ERR_REFUSED, "version or magic refused");
	if (nodestate_load(ss->set->node.state_dir, ss->set->node.initial_role, &ss->node, e) < 0)
		return -1;
	if (check_role(ss, e) < 0)
		return -1;
	if (control_purpose_writes(ss->peer.purpose) &&
	    (take_writer_lock(ss, e) < 0 ||
	     (ss->peer.purpose != PURPOSE_REJOIN && adopt_generation(ss, e) < 0)))
		return -1;
	if (ss->peer.purpose != PURPOSE_AUDIT &&
	    standbypos_load(ss->set->node.state_dir, &ss->pos, e) < 0)
		log_warn("%s; starting from position 0", e->msg);
	fill_hello(ss, &m.hello);
	if (send_msg(ss, W_HELLO, &m, e) < 0)
		return -1;
	log_info("session from %s: purpose=%u generation=%" PRIu64 " journal=%016" PRIx64
		 " resume_lsn=%" PRIu64,
		 conn_peer(ss->conn), ss->peer.purpose, ss->peer.generation, ss->peer.journal_id,
		 m.hello.durable_lsn);
	if (ss->writer) {
		snprintf(ss->sh->peer, sizeof(ss->sh->peer), "%s", conn_peer(ss->conn));
		__atomic_store_n(&ss->sh->sender_generation, ss->peer.generation,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&ss->sh->journal_id, ss->peer.journal_id, __ATOMIC_RELAXED);
		__atomic_store_n(&ss->sh->durable_lsn, m.hello.durable_lsn, __ATOMIC_RELAXED);
		ss->received_lsn = ss->applied_lsn = m.hello.durable_lsn;
		if (ss->pos.journal_id != ss->peer.journal_id) {
			/* A new journal: positions restart from its beginning. */
			ss->pos.journal_id = ss->peer.journal_id;
			ss->pos.durable_lsn = 0;
		}
	}
	return 0;
}

/* --------------------------------------------------------------- queries */

static int reply_digests(struct session *ss, const struct w_digest_req *q, struct err *e);
static int reply_list(struct session *ss, const struct w_list_req *q, struct err *e);
static int reply_sig(struct session *ss, const struct w_sig_req *q, struct err *e);
static int reply_read(struct session *ss, const struct w_read_req *q, struct err *e);

struct digest_walk {
	struct session *ss;
	uint32_t id, flags;
	struct buf entries;
	struct err *e;
};

static int flush_digests(struct digest_walk *w, bool more)
{
	union w_msg m = {.digest_rep = {.id = w->id, .more = more,
					.entries = buf_slice(&w->entries)}};

	if (send_msg(w->ss, W_DIGEST_REP, &m, w->e) < 0)
		return -1;
	buf_reset(&w->entries);
	return 0;
}

static int digest_one(const char *folder, void *ctx)
{
	struct digest_walk *w = ctx;
	struct w_digest_entry d = {.folder = slice_cstr(folder)};
	int r;

	r = digest_cache_get(w->ss->digests, w->ss->env->rootfd, w->ss->env->rules, folder,
			     (w->flags & WF_HASH) != 0, d.digest, w->e);
	if (r < 0)
		return -1;
	if (r == 1)
		return 0; /* vanished during the walk */
	if (wire_entries_room(&w->entries) < strlen(folder) + 64 && flush_digests(w, true) < 0)
		return -1;
	return wire_digest_append(&w->entries, &d) < 0 ? -1 : 0;
}

static int reply_digests(struct session *ss, const struct w_digest_req *q, struct err *e)
{
	struct digest_walk w = {.ss = ss, .id = q->id, .flags = q->flags, .e = e};
	char *prefix = xstrndup(q->prefix.p, q->prefix.len);
	int r = 0;

	buf_init(&w.entries, 0);
	if (prefix[0] != '\0' && sp_check(q->prefix, e) < 0) {
		r = -1;
	} else {
		struct err we;
		if (scan_walk(ss->env->rootfd, ss->env->rules, prefix, digest_one, &w, &we) != 0) {
			*e = we;
			r = -1;
		}
	}
	if (r == 0)
		r = flush_digests(&w, false);
	if (digest_cache_save(ss->digests, e) < 0)
		log_warn("digest cache not saved: %s", e->msg);
	buf_free(&w.entries);
	free(prefix);
	return r;
}

static void entry_from_scan(const struct scan_entry *s, struct w_list_entry *l)
{
	memset(l, 0, sizeof(*l));
	l->name = slice_cstr(s->name);
	l->size = s->size;
	l->mtime_ns = s->mtime_ns;
	l->mode = s->mode;
	l->uid = s->uid;
	l->gid = s->gid;
	l->nlink = s->nlink;
	l->has_hash = s->has_hash;
	memcpy(l->sha256, s->sha256, SHA256_LEN);
}

static int reply_list(struct session *ss, const struct w_list_req *q, struct err *e)
{
	struct folder_list fl = {0};
	struct buf entries = BUF_INIT;
	union w_msg m = {.list_rep = {.id = q->id}};
	char *folder = xstrndup(q->folder.p, q->folder.len);
	int r;

	if (folder[0] != '\0' && sp_check(q->folder, e) < 0) {
		free(folder);
		return -1;
	}
	r = scan_folder(ss->env->rootfd, ss->env->rules, folder, (q->flags & WF_HASH) != 0, &fl, e);
	free(folder);
	if (r < 0)
		return -1;
	if (r == 1)
		m.list_rep.status = WE_NOTFOUND;
	for (size_t i = 0; r == 0 && i < fl.n; i++) {
		struct w_list_entry l;

		entry_from_scan(&fl.v[i], &l);
		if (wire_entries_room(&entries) < l.name.len + 128) {
			m.list_rep.more = true;
			m.list_rep.entries = buf_slice(&entries);
			if (send_msg(ss, W_LIST_REP, &m, e) < 0)
				goto fail;
			buf_reset(&entries);
		}
		wire_list_append(&entries, &l);
	}
	m.list_rep.more = false;
	m.list_rep.entries = buf_slice(&entries);
	r = send_msg(ss, W_LIST_REP, &m, e);
	folder_list_free(&fl);
	buf_free(&entries);
	return r;
fail:
	folder_list_free(&fl);
	buf_free(&entries);
	return -1;
}

/* Opens a regular file named by the peer beneath the root, read-only
 * (O_NONBLOCK: opening a FIFO planted in the tree must not block). */
static int open_peer_file(struct session *ss, struct slice path, struct stat *st, struct err *e)
{
	char *p = xstrndup(path.p, path.len);
	int fd = -1;

	if (sp_check(path, e) == 0)
		fd = sp_open(ss->env->rootfd, p, O_RDONLY | O_NONBLOCK, 0, e);
	free(p);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		errno = ENOENT;
		return err_set(e, ENOENT, "'%.*s' is not a regular file", (int)path.len, path.p);
	}
	return fd;
}

static int reply_sig(struct session *ss, const struct w_sig_req *q, struct err *e)
{
	union w_msg m = {.sig_rep = {.id = q->id}};
	struct buf sig = BUF_INIT;
	struct stat st;
	int fd = open_peer_file(ss, q->path, &st, e), r;

	if (fd < 0) {
		if (errno != ENOENT && e->code != ENOENT)
			return -1;
		m.sig_rep.status = WE_NOTFOUND;
		return send_msg(ss, W_SIG_REP, &m, e);
	}
	r = sha256_fd(fd, m.sig_rep.sha256, &m.sig_rep.size, e);
	if (r == 0)
		r = delta_signature(fd, &sig, e);
	close(fd);
	if (r < 0)
		return -1;
	if (sig.len > WIRE_MAX_PAYLOAD - 1024) {
		/* Too large to ship as one frame: the sender falls back to a put. */
		buf_reset(&sig);
	}
	m.sig_rep.sig = buf_slice(&sig);
	r = send_msg(ss, W_SIG_REP, &m, e);
	buf_free(&sig);
	return r;
}

static int reply_read(struct session *ss, const struct w_read_req *q, struct err *e)
{
	union w_msg m = {.read_rep = {.id = q->id}};
	struct stat st;
	int fd = open_peer_file(ss, q->path, &st, e), r = 0;
	uint8_t *chunk;
	off_t off = 0;

	if (fd < 0) {
		if (errno != ENOENT && e->code != ENOENT)
			return -1;
		m.read_rep.status = WE_NOTFOUND;
		return send_msg(ss, W_READ_REP, &m, e);
	}
	m.read_rep.size = (uint64_t)st.st_size;
	m.read_rep.mtime_ns = ts_ns(st.st_mtim);
	m.read_rep.mode = st.st_mode & 07777;
	m.read_rep.uid = st.st_uid;
	m.read_rep.gid = st.st_gid;
	chunk = xmalloc(WIRE_CHUNK);
	do {
		ssize_t n = pread(fd, chunk, WIRE_CHUNK, off);

		if (n < 0) {
			r = err_sys(e, "cannot read '%.*s'", (int)q->path.len, q->path.p);
			break;
		}
		off += n;
		m.read_rep.more = n > 0 && (uint64_t)off < (uint64_t)st.st_size;
		m.read_rep.raw_len = (uint32_t)n;
		m.read_rep.body = (struct slice){(const char *)chunk, (size_t)n};
		r = send_msg(ss, W_READ_REP, &m, e);
	} while (r == 0 && m.read_rep.more);
	free(chunk);
	close(fd);
	return r;
}

/* ------------------------------------------------------------- mutations */

static void hold(struct session *ss, uint64_t lsn)
{
	if (lsn == 0)
		return;
	for (size_t i = 0; i < ss->nheld; i++) {
		if (ss->held[i] == lsn)
			return;
	}
	if (ss->nheld < MAX_HELD)
		ss->held[ss->nheld++] = lsn;
	else
		ss->held[MAX_HELD - 1] = ss->held[MAX_HELD - 1] < lsn ? ss->held[MAX_HELD - 1] : lsn;
}

static void release(struct session *ss, uint64_t lsn)
{
	for (size_t i = 0; i < ss->nheld; i++) {
		if (ss->held[i] == lsn) {
			ss->held[i] = ss->held[--ss->nheld];
			return;
		}
	}
}

static uint64_t lowest_held(const struct session *ss)
{
	uint64_t low = UINT64_MAX;

	for (size_t i = 0; i < ss->nheld; i++)
		low = ss->held[i] < low ? ss->held[i] : low;
	return low;
}

/* Applies one mutation; a NEED is recorded for the ACK. */
static void apply_one(struct session *ss, uint8_t type, const union w_msg *m)
{
	struct err e;
	uint64_t lsn = 0;
	struct slice path = {"", 0};
	int r;

	if (ss->batch_failed)
		return; /* the batch is already refused; skip the rest of it */
	ss->batch_open = true;
	ss->batch_ops++;
	switch (type) {
	case W_PUT: r = apply_put(ss->apply, &m->put, &e); lsn = m->put.lsn; path = m->put.path; break;
	case W_DATA: r = apply_data(ss->apply, &m->data, &e); break;
	case W_RENAME: {
		struct w_rename rn = m->rename;

		/* The target travels as a tail after the prefix it shares with the source. */
		wire_rename_to(&rn, &ss->scratch);
		rn.to = buf_slice(&ss->scratch);
		r = apply_rename(ss->apply, &rn, &e);
		lsn = rn.lsn;
		path = rn.to;
		break;
	}
	case W_LINK: r = apply_link(ss->apply, &m->link, &e); lsn = m->link.lsn; path = m->link.to; break;
	case W_UNLINK: r = apply_unlink(ss->apply, &m->unlink, &e); lsn = m->unlink.lsn; break;
	case W_MKDIR: r = apply_mkdir(ss->apply, &m->mkdir, &e); lsn = m->mkdir.lsn; break;
	case W_RMTREE: r = apply_rmtree(ss->apply, &m->rmtree, &e); lsn = m->rmtree.lsn; break;
	case W_DELTA: r = apply_delta(ss->apply, &m->delta, &e); lsn = m->delta.lsn; path = m->delta.path; break;
	case W_SETATTR: r = apply_setattr(ss->apply, &m->setattr, &e); lsn = m->setattr.lsn; path = m->setattr.path; break;
	default: r = err_set(&e, WE_PROTOCOL, "unexpected %s", wire_type_name(type)); break;
	}
	if (r < 0) {
		ss->batch_failed = true;
		ss->batch_err = e;
		return;
	}
	if (r == 1) {
		struct w_need n = {.lsn = lsn, .path = path};

		if (wire_entries_room(&ss->needs) > path.len + 32) {
			wire_need_append(&ss->needs, &n);
			ss->nneeds++;
		}
		hold(ss, lsn);
		log_debug("%s of '%.*s' (record %llu) needs the content", wire_type_name(type),
			  (int)path.len, path.p, (unsigned long long)lsn);
		__atomic_add_fetch(&ss->sh->needs, 1, __ATOMIC_RELAXED);
	} else if (lsn != 0) {
		release(ss, lsn); /* content for an earlier NEED arrived */
	}
	if (ss->received_lsn < lsn)
		ss->received_lsn = lsn;
	__atomic_add_fetch(&ss->sh->ops, 1, __ATOMIC_RELAXED);
}

static void reset_batch(struct session *ss)
{
	ss->batch_open = false;
	ss->batch_failed = false;
	ss->batch_ops = 0;
	ss->nneeds = 0;
	buf_reset(&ss->needs);
	err_clear(&ss->batch_err);
}

static uint32_t errcode_of(const struct err *e)
{
	if (e->code >= WE_PROTOCOL && e->code <= WE_NOTFOUND)
		return (uint32_t)e->code;
	if (e->code == ENOSPC || e->code == EDQUOT)
		return WE_NOSPACE;
	return WE_IO;
}

/* The durable position a successful batch ending at lsn gives: not past
 * an unresolved NEED. Only rolling replication moves the position; a
 * one-shot sync does not. */
static uint64_t new_durable(const struct session *ss, uint64_t lsn)
{
	if (ss->peer.purpose != PURPOSE_REPLICATE)
		return ss->pos.durable_lsn;
	if (ss->nheld > 0 && lowest_held(ss) - 1 < lsn)
		lsn = lowest_held(ss) - 1;
	return lsn > ss->pos.durable_lsn ? lsn : ss->pos.durable_lsn;
}

/* Commit hook: the position file replaced after the renames, made durable
 * by the commit's own final syncfs. */
static int write_pos_hook(void *ctx, struct err *e)
{
	struct session *ss = ctx;

	if (ss->next_pos.durable_lsn == ss->pos.durable_lsn)
		return 0;
	return standbypos_replace(ss->set->node.state_dir, &ss->next_pos, e);
}

/* Group commit of the batch and its position: one sync for both when
 * they share a file system, else the position is synced on its own after. */
static int commit_batch(struct session *ss, uint64_t lsn, struct err *e)
{
	ss->next_pos = ss->pos;
	ss->next_pos.durable_lsn = new_durable(ss, lsn);
	if (ss->next_pos.durable_lsn != ss->pos.durable_lsn) {
		ss->next_pos.generation = ss->peer.generation;
		memcpy(ss->next_pos.primary_id, ss->peer_id, NODE_ID_LEN);
		ss->next_pos.updated_ns = now_real_ns();
	}
	if (ss->pos_rides_sync) {
		if (apply_commit_hook(ss->apply, write_pos_hook, ss, e) < 0)
			return -1;
	} else if (apply_commit(ss->apply, e) < 0 ||
		   (ss->next_pos.durable_lsn != ss->pos.durable_lsn &&
		    standbypos_save(ss->set->node.state_dir, &ss->next_pos, e) < 0)) {
		return -1;
	}
	ss->pos = ss->next_pos;
	return 0;
}

/* Accounts for a commit's duration; a slow one (the standby's disk, most
 * likely) is logged, so that growing lag has a visible cause. */
static void commit_took(struct session *ss, uint64_t seq, uint64_t us)
{
	uint64_t now = now_mono_ms();

	__atomic_store_n(&ss->sh->last_commit_us, us, __ATOMIC_RELAXED);
	if (us > __atomic_load_n(&ss->sh->max_commit_us, __ATOMIC_RELAXED))
		__atomic_store_n(&ss->sh->max_commit_us, us, __ATOMIC_RELAXED); /* one writer */
	if (us < SLOW_COMMIT_US || (ss->slow_warned_ms != 0 && now - ss->slow_warned_ms < SLOW_WARN_MS))
		return;
	ss->slow_warned_ms = now;
	log_warn("batch %" PRIu64 " took %" PRIu64 " ms to become durable (%s of the mail file "
		 "system): the standby's storage is slow, and replication lag grows while it is",
		 seq, us / 1000, ss->set->sync.apply_sync);
}

/* Commits the batch, persists the position, acknowledges. Returns 0 to
 * go on, -1 to end the session (a refused batch ends it: the sender
 * reconnects and resumes from the durable position). */
static int batch_end(struct session *ss, const struct w_batch_end *b, struct err *e)
{
	union w_msg m = {.ack = {.seq = b->seq}};
	uint64_t t0 = now_mono_ns();
	struct err ce;
	int r;

	if (!ss->batch_failed && commit_batch(ss, b->lsn, &ce) < 0) {
		ss->batch_failed = true;
		ss->batch_err = ce;
	}
	if (ss->batch_failed) {
		apply_abort(ss->apply);
		m.ack.status = errcode_of(&ss->batch_err);
		m.ack.text = slice_cstr(ss->batch_err.msg);
		m.ack.durable_lsn = m.ack.applied_lsn = ss->pos.durable_lsn;
		m.ack.received_lsn = ss->received_lsn;
		shared_error(ss->sh, "batch %" PRIu64 " refused: %s", b->seq, ss->batch_err.msg);
		send_msg(ss, W_ACK, &m, e);
		*e = ss->batch_err;
		return -1;
	}
	if (b->lsn > ss->received_lsn)
		ss->received_lsn = b->lsn;
	if (b->lsn > ss->applied_lsn)
		ss->applied_lsn = b->lsn;
	m.ack.received_lsn = ss->received_lsn;
	m.ack.applied_lsn = ss->applied_lsn;
	m.ack.durable_lsn = ss->pos.durable_lsn;
	m.ack.needs = buf_slice(&ss->needs);
	__atomic_store_n(&ss->sh->received_lsn, ss->received_lsn, __ATOMIC_RELAXED);
	__atomic_store_n(&ss->sh->applied_lsn, ss->applied_lsn, __ATOMIC_RELAXED);
	__atomic_store_n(&ss->sh->durable_lsn, ss->pos.durable_lsn, __ATOMIC_RELAXED);
	__atomic_store_n(&ss->sh->last_batch_ns, now_real_ns(), __ATOMIC_RELAXED);
	commit_took(ss, b->seq, (now_mono_ns() - t0) / 1000);
	__atomic_add_fetch(&ss->sh->batches, 1, __ATOMIC_RELAXED);
	r = send_msg(ss, W_ACK, &m, e);
	reset_batch(ss); /* after sending: the ACK points into ss->needs */
	return r;
}

/* ------------------------------------------------------------------ loop */

static bool is_mutation(uint8_t type)
{
	return type >= W_PUT && type <= W_SETATTR;
}

/* A rejoin only adds to the primary: it never removes, renames or patches
 * (docs/protocol.md §6). */
static bool rejoin_allows(uint8_t type)
{
	return type == W_PUT || type == W_DATA || type == W_LINK || type == W_MKDIR ||
	       type == W_SETATTR;
}

static int control(struct session *ss, const struct w_control *req, struct err *e)
{
	union w_msg rep;

	if (ss->peer.purpose != PURPOSE_SWITCHOVER) {
		send_error(ss, WE_PROTOCOL, "CONTROL is allowed only in a switchover session");
		return err_set(e, ERR_PROTO, "CONTROL outside a switchover session");
	}
	control_request(ss->set, req, &rep.control_rep, &ss->scratch);
	return send_msg(ss, W_CONTROL_REP, &rep, e);
}

static int dispatch(struct session *ss, const struct w_frame *f, const union w_msg *m,
		    struct err *e)
{
	if (is_mutation(f->type)) {
		if (!ss->writer) {
			send_error(ss, WE_PROTOCOL, "this session is read-only (audit/probe)");
			return err_set(e, ERR_PROTO, "mutation on a read-only session");
		}
		if (ss->peer.purpose == PURPOSE_REJOIN && !rejoin_allows(f->type)) {
			send_error(ss, WE_PROTOCOL, "a rejoin may only add files and folders");
			return err_set(e, ERR_PROTO, "%s in a rejoin session",
				       wire_type_name(f->type));
		}
		if (f->type == W_PUT || f->type == W_DATA)
			__atomic_add_fetch(&ss->sh->content_bytes, f->len, __ATOMIC_RELAXED);
		apply_one(ss, f->type, m);
		return 0;
	}
	switch (f->type) {
	case W_BATCH_END:
		if (!ss->writer)
			return err_set(e, ERR_PROTO, "BATCH_END on a read-only session");
		return batch_end(ss, &m->batch_end, e);
	case W_PING: {
		union w_msg pong = {.ping = m->ping};
		return send_msg(ss, W_PONG, &pong, e);
	}
	case W_DIGEST_REQ: return reply_digests(ss, &m->digest_req, e);
	case W_LIST_REQ: return reply_list(ss, &m->list_req, e);
	case W_SIG_REQ: return reply_sig(ss, &m->sig_req, e);
	case W_READ_REQ: return reply_read(ss, &m->read_req, e);
	case W_CONTROL: return control(ss, &m->control, e);
	case W_ERROR:
		return err_set(e, ERR_REFUSED, "peer reported: %.*s", (int)m->error.text.len,
			       m->error.text.p);
	default:
		send_error(ss, WE_PROTOCOL, "unexpected message");
		return err_set(e, ERR_PROTO, "unexpected %s from %s", wire_type_name(f->type),
			       conn_peer(ss->conn));
	}
}

/* True when mdreplctl promote asked (through the listener) that
 * replication end: this node is about to become primary. */
static bool fence_requested(const struct session *ss)
{
	return ss->writer && ss->peer.purpose != PURPOSE_REJOIN &&
	       __atomic_load_n(&ss->sh->fence_until_ns, __ATOMIC_RELAXED) > now_real_ns();
}

/* Serves until the peer leaves (-1 with e), or a promotion ends the session
 * (1: a batch not yet committed is discarded, never half-applied). */
static int serve(struct session *ss, struct err *e)
{
	uint64_t last = now_mono_ms();

	for (;;) {
		struct w_frame f;
		union w_msg m;
		/* Mid-batch the sender owes us data; idle, it pings every keepalive_s. */
		uint64_t timeout = ss->batch_open ? (uint64_t)io_timeout(ss)
						  : ss->set->peer.keepalive_s * 3000;
		/* A writer wakes up every FENCE_CHECK_MS to see whether to end. */
		int wait = ss->writer && timeout > FENCE_CHECK_MS ? FENCE_CHECK_MS : (int)timeout;

		if (fence_requested(ss)) {
			send_error(ss, WE_ROLE, "this node is being promoted: replication ends");
			log_info("session with %s ended for a promotion%s", conn_peer(ss->conn),
				 ss->batch_open ? " (its open batch is discarded)" : "");
			return 1;
		}
		if (conn_recv(ss->conn, &f, &m, wait, e) < 0) {
			if (e->code != ETIMEDOUT)
				return -1;
			if (now_mono_ms() - last < timeout)
				continue;
			/* Say how long it really was, not the last short wait. */
			return err_set(e, ETIMEDOUT, "no message from %s within %" PRIu64 " ms%s",
				       conn_peer(ss->conn), timeout,
				       ss->batch_open ? " in the middle of a batch" : "");
		}
		last = now_mono_ms();
		if (dispatch(ss, &f, &m, e) < 0)
			return -1;
	}
}

static int open_engine(struct session *ss, struct err *e)
{
	struct apply_opts ao = {
		.rootfd = ss->env->rootfd,
		.rules = ss->env->rules,
		.preserve_owner = ss->set->node.preserve_owner && geteuid() == 0,
		.use_syncfs = strcmp(ss->set->sync.apply_sync, "syncfs") == 0,
		.max_pending = (uint32_t)ss->set->sync.batch_max_ops,
	};

	struct stat root, state;

	ss->apply = apply_new(&ao, e);
	if (ss->apply == NULL)
		return -1;
	ss->pos_rides_sync = ao.use_syncfs && fstat(ss->env->rootfd, &root) == 0 &&
			     stat(ss->set->node.state_dir, &state) == 0 &&
			     root.st_dev == state.st_dev;
	return 0;
}

static void session_free(struct session *ss)
{
	apply_free(&ss->apply);
	digest_cache_free(&ss->digests);
	conn_free(&ss->conn);
	buf_free(&ss->needs);
	buf_free(&ss->scratch);
	if (ss->writer) {
		__atomic_store_n(&ss->sh->writer_pid, 0, __ATOMIC_RELAXED);
		close(ss->writer_lock);
	}
}

int session_run(int fd, const struct session_env *env)
{
	struct session ss = {.env = env, .set = env->set, .sh = env->shared, .writer_lock = -1};
	struct buf cache = BUF_INIT;
	struct err e;
	int status = 0;

	buf_init(&ss.needs, 0);
	if (conn_accept(fd, env->set, env->tls, &ss.conn, &e) < 0) {
		log_warn("connection refused: %s", e.msg);
		return 1;
	}
	buf_printf(&cache, "%s/digest.cache", env->set->node.state_dir);
	ss.digests = digest_cache_open(buf_cstr(&cache));
	buf_free(&cache);
	if (hello(&ss, &e) < 0 || (ss.writer && open_engine(&ss, &e) < 0)) {
		log_warn("session with %s ended: %s", conn_peer(ss.conn), e.msg);
		session_free(&ss);
		return 1;
	}
	if (serve(&ss, &e) < 0) {
		bool eof = strstr(e.msg, "closed") != NULL && !ss.batch_open;

		if (eof)
			log_info("session with %s ended", conn_peer(ss.conn));
		else
			shared_error(ss.sh, "session with %s ended: %s", conn_peer(ss.conn), e.msg);
		status = eof ? 0 : 1;
	}
	if (ss.apply != NULL)
		apply_abort(ss.apply);
	session_free(&ss);
	return status;
}
