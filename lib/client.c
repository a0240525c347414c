/*
 * client.c — the sending side of a session (see client.h).
 *
 * Output is queued on the connection and flushed as it grows, so a large
 * batch never sits in memory whole; while waiting to write, incoming
 * frames (ACKs) are read and handled, so neither side can block the other.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "delta.h"
#include "fsutil.h"
#include "log.h"
#include "safepath.h"
#include "sentmap.h"
#include "xalloc.h"

#define OUT_FLUSH (64u << 10)	  /* write out once this much is queued */
#define OUT_HIGH (1u << 20)	  /* and wait for the peer past this */
#define DEDUPE_MIN_SIZE 2048	  /* smaller files are cheaper to send than to link */
#define DELTA_MIN_SIZE 4096	  /* smaller metadata files go whole */
#define SIG_CACHE_MAX (64u << 20) /* bytes of signatures kept for metadata deltas */
#define MAX_INFLIGHT 64
#define MAX_XFERS 16		  /* large files in progress at once */
#define XFER_ROUND (1u << 20)	  /* bytes of them sent per round */
#define NEED_SLOTS 4096		  /* needs remembered per session (lossy) */
#define NEED_TRIES 3		  /* times one need is answered before giving up */

/* Signature of a metadata file's content as last sent, for deltas
 * without a round trip. */
struct sigent {
	char *path;
	uint8_t sha[SHA256_LEN];
	struct buf sig;
	struct sigent *next;
};

struct need {
	uint64_t lsn;
	char *path;
};

/* A need answered before in this session, and how often: one that comes
 * back after its answer was applied is missing more than the file. */
struct need_seen {
	uint64_t key; /* 0: free */
	unsigned times;
};

struct inflight {
	uint64_t seq, lsn;
	bool own; /* ended by the client itself (size, query, NEEDs), not by client_commit() */
};

/* A large file being sent a chunk at a time, between other operations, so
 * that one big message does not hold up everyone else's small changes. */
struct xfer {
	uint32_t id;
	int fd;
	uint64_t lsn, off, size;
	uint64_t dev, ino;	     /* of the file, and */
	uint8_t sha[SHA256_LEN]; /* its content: what a link from it names */
	struct xfer *next;
};

enum compress { COMPRESS_AUTO, COMPRESS_ALWAYS, COMPRESS_NEVER };

struct client {
	struct client_opts o;
	const struct settings *set;
	enum compress compress; /* [sync] compress, resolved once */
	struct tls_ctx *tls;
	struct conn *conn;
	struct w_hello peer;

	/* batches */
	uint64_t next_seq;
	struct inflight inflight[MAX_INFLIGHT];
	size_t ninflight;
	uint64_t batch_ops, batch_bytes;
	uint64_t sent_lsn; /* highest lsn in a BATCH_END sent */
	uint64_t want_lsn; /* highest lsn asked for (transfers may hold it back) */
	uint64_t received_lsn, applied_lsn, durable_lsn;
	struct need *needs;
	size_t nneeds, needcap;
	struct need_seen *seen; /* NEED_SLOTS, made at the first need */
	uint32_t next_xfer;
	struct xfer *xfers; /* in progress, oldest first */
	size_t nxfers;
	uint64_t last_send_ms;

	/* the query being answered */
	uint32_t next_qid, qid;
	uint8_t qtype;
	bool qdone;
	int qstatus;
	struct err qerr;
	void *qctx;
	void *qowned; /* a started query's context, freed by client_wait */

	struct sentmap *sent; /* for links instead of content, and dropped names */
	struct sigent *sigs;
	size_t sig_bytes;
	struct buf content, zbuf;
	struct client_stats st;
};

static void xfer_done(struct client *c, struct xfer **link);

/* ------------------------------------------------------------ dedupe */

static void inode_key(const struct stat *st, uint8_t key[32])
{
	uint64_t dev = st->st_dev, ino = st->st_ino;

	memset(key, 0, 32);
	/* A different hash seed from content keys: first bytes are never all 0. */
	memcpy(key, &ino, 8);
	memcpy(key + 8, &dev, 8);
	key[31] = 0x5a;
}

/* ------------------------------------------------------------- plumbing */

static int timeout_ms(const struct client *c)
{
	return (int)c->set->peer.io_timeout_ms;
}

static int dispatch(struct client *c, const struct w_frame *f, const union w_msg *m,
		    struct err *e);

/* One round of I/O: waits up to timeout_ms for the socket, reads and
 * handles complete frames, writes queued output. */
static int pump(struct client *c, int timeout, struct err *e)
{
	struct pollfd p = {conn_fd(c->conn), conn_events(c->conn), 0};
	struct w_frame f;
	union w_msg m;
	int r;

	if (poll(&p, 1, timeout) < 0 && errno != EINTR)
		return err_sys(e, "poll");
	if (p.revents & (POLLOUT | POLLERR | POLLHUP)) {
		if (conn_flush(c->conn, e) < 0)
			return -1;
	}
	if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
		if (conn_read(c->conn, e) < 0)
			return err_prefix(e, "connection to %s", conn_peer(c->conn));
	}
	while ((r = conn_next(c->conn, &f, &m, e)) == 1) {
		if (dispatch(c, &f, &m, e) < 0)
			return -1;
	}
	return r < 0 ? -1 : 0;
}

/* Queues a frame; flushes (handling input meanwhile) when much is queued. */
static int send_frame(struct client *c, uint8_t type, const union w_msg *m, struct err *e)
{
	uint64_t deadline;

	if (conn_queue(c->conn, type, m, e) < 0)
		return -1;
	c->last_send_ms = now_mono_ms();
	/* Small frames wait for the batch end (one TLS record, one packet for a
	 * flag change and its BATCH_END); queries and large output go now. */
	if (conn_pending(c->conn) < OUT_FLUSH)
		return 0;
	if (conn_pending(c->conn) < OUT_HIGH)
		return conn_flush(c->conn, e) < 0 ? -1 : 0;
	deadline = now_mono_ms() + (uint64_t)timeout_ms(c);
	while (conn_pending(c->conn) > OUT_HIGH / 4) {
		if (now_mono_ms() > deadline)
			return err_set(e, ETIMEDOUT, "%s stopped reading for %d ms",
				       conn_peer(c->conn), timeout_ms(c));
		if (pump(c, 100, e) < 0)
			return -1;
	}
	return 0;
}

/* Pumps until *done or the I/O timeout passes without progress. */
static int wait_for(struct client *c, const bool *done, struct err *e)
{
	uint64_t deadline = now_mono_ms() + (uint64_t)timeout_ms(c);

	while (!*done) {
		uint64_t before = conn_bytes_in(c->conn);

		if (now_mono_ms() > deadline)
			return err_set(e, ETIMEDOUT, "no answer from %s for %d ms",
				       conn_peer(c->conn), timeout_ms(c));
		if (pump(c, 100, e) < 0)
			return -1;
		if (conn_bytes_in(c->conn) != before)
			deadline = now_mono_ms() + (uint64_t)timeout_ms(c);
	}
	return 0;
}

/* ------------------------------------------------------------ connection */

static void fill_hello(const struct client *c, const struct node_state *node, struct w_hello *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = slice_cstr(WIRE_MAGIC);
	h->ver_min = WIRE_VERSION_MIN;
	h->ver_max = WIRE_VERSION_MAX;
	h->caps = CAP_ALL;
	memcpy(h->node_id, node->node_id, NODE_ID_LEN);
	h->role = node->role;
	h->generation = node->generation;
	h->purpose = c->o.purpose;
	h->journal_id = c->o.journal_id;
	h->software = slice_cstr(PACKAGE_NAME " " PACKAGE_VERSION);
}

int client_connect(const struct client_opts *o, struct client **c_r, struct w_hello *peer_r,
		   struct err *e)
{
	struct client *c = xcalloc(1, sizeof(*c));
	struct node_state node;
	struct w_hello mine;

	c->o = *o;
	c->set = o->set;
	c->compress = strcmp(o->set->sync.compress, "always") == 0  ? COMPRESS_ALWAYS
		      : strcmp(o->set->sync.compress, "never") == 0 ? COMPRESS_NEVER
								    : COMPRESS_AUTO;
	c->next_seq = 1;
	c->next_qid = 1;
	buf_init(&c->content, 0);
	buf_init(&c->zbuf, 0);
	if (o->set->peer.address[0] == '\0') {
		err_set(e, ERR_CONFIG, "[peer] address is not set");
		goto fail;
	}
	if (nodestate_load(o->set->node.state_dir, o->set->node.initial_role, &node, e) < 0)
		goto fail;
	c->tls = tls_ctx_new(o->set, false, e);
	if (c->tls == NULL)
		goto fail;
	if (conn_connect(o->set, c->tls, o->set->peer.address, &c->conn, e) < 0)
		goto fail;
	fill_hello(c, &node, &mine);
	if (conn_hello(c->conn, &mine, &c->peer, (int)o->set->peer.connect_timeout_ms, e) < 0)
		goto fail;
	c->peer.magic = slice_cstr(WIRE_MAGIC);
	c->peer.software = (struct slice){"", 0};
	c->durable_lsn = c->received_lsn = c->applied_lsn = c->peer.durable_lsn;
	c->sent_lsn = c->peer.durable_lsn;
	c->sent = sentmap_new();
	c->last_send_ms = now_mono_ms();
	*peer_r = c->peer;
	*c_r = c;
	return 0;
fail:
	client_free(&c);
	return -1;
}

void client_free(struct client **cp)
{
	struct client *c = *cp;

	if (c == NULL)
		return;
	conn_free(&c->conn);
	tls_ctx_free(&c->tls);
	for (size_t i = 0; i < c->nneeds; i++)
		free(c->needs[i].path);
	free(c->needs);
	free(c->seen);
	while (c->xfers != NULL)
		xfer_done(c, &c->xfers);
	sentmap_free(&c->sent);
	while (c->sigs != NULL) {
		struct sigent *s = c->sigs;
		c->sigs = s->next;
		free(s->path);
		buf_free(&s->sig);
		free(s);
	}
	buf_free(&c->content);
	buf_free(&c->zbuf);
	free(c->qowned);
	free(c);
	*cp = NULL;
}

const char *client_peer(const struct client *c)
{
	return conn_peer(c->conn);
}

int client_fd(const struct client *c)
{
	return conn_fd(c->conn);
}

short client_events(const struct client *c)
{
	return conn_events(c->conn);
}

/* -------------------------------------------------------------- incoming */

static void add_need(struct client *c, uint64_t lsn, struct slice path)
{
	if (c->nneeds == c->needcap) {
		c->needcap = c->needcap ? 2 * c->needcap : 16;
		c->needs = xreallocarray(c->needs, c->needcap, sizeof(*c->needs));
	}
	c->needs[c->nneeds].lsn = lsn;
	c->needs[c->nneeds].path = xstrndup(path.p, path.len);
	c->nneeds++;
}

static int on_ack(struct client *c, const struct w_ack *a, struct err *e)
{
	struct w_need n;
	size_t pos = 0;
	int r;

	if (c->ninflight == 0 || c->inflight[0].seq != a->seq)
		return err_set(e, ERR_PROTO, "%s acknowledged batch %" PRIu64 " out of order",
			       conn_peer(c->conn), a->seq);
	if (a->status != 0)
		return err_set(e, (int)a->status, "%s refused batch %" PRIu64 ": %.*s (%s)",
			       conn_peer(c->conn), a->seq, (int)a->text.len, a->text.p,
			       wire_errcode_name(a->status));
	memmove(c->inflight, c->inflight + 1, (c->ninflight - 1) * sizeof(c->inflight[0]));
	c->ninflight--;
	c->received_lsn = a->received_lsn;
	c->applied_lsn = a->applied_lsn;
	c->durable_lsn = a->durable_lsn;
	c->st.acked_batches++;
	while ((r = wire_need_next(a->needs, &pos, &n, e)) == 1) {
		log_debug("peer needs content for %.*s lsn=%" PRIu64, (int)n.path.len, n.path.p,
			  n.lsn);
		add_need(c, n.lsn, n.path);
	}
	return r;
}

/* The running query's reply handlers copy what they need out of the frame. */
struct list_ctx {
	struct folder_list *out;
};

static int on_list(struct client *c, const struct w_list_rep *r, struct err *e)
{
	struct list_ctx *lc = c->qctx;
	struct w_list_entry l;
	size_t pos = 0;
	int k;

	c->st.query_bytes += r->entries.len;
	if (r->status != 0)
		c->qstatus = 1;
	while ((k = wire_list_next(r->entries, &pos, &l, e)) == 1) {
		struct folder_list *fl = lc->out;
		struct scan_entry *s;

		if (fl->n == fl->cap) {
			fl->cap = fl->cap ? 2 * fl->cap : 64;
			fl->v = xreallocarray(fl->v, fl->cap, sizeof(*fl->v));
		}
		s = &fl->v[fl->n++];
		memset(s, 0, sizeof(*s));
		s->name = xstrndup(l.name.p, l.name.len);
		s->size = l.size;
		s->mtime_ns = l.mtime_ns;
		s->mode = l.mode;
		s->uid = l.uid;
		s->gid = l.gid;
		s->nlink = l.nlink;
		s->has_hash = l.has_hash;
		memcpy(s->sha256, l.sha256, SHA256_LEN);
	}
	if (k < 0)
		return -1;
	c->qdone = !r->more;
	return 0;
}

struct digest_ctx {
	client_digest_fn *fn;
	void *ctx;
};

static int on_digests(struct client *c, const struct w_digest_rep *r, struct err *e)
{
	struct digest_ctx *dc = c->qctx;
	struct w_digest_entry d;
	size_t pos = 0;
	int k;

	c->st.query_bytes += r->entries.len;
	while ((k = wire_digest_next(r->entries, &pos, &d, e)) == 1) {
		if (dc->fn(&d, dc->ctx) < 0)
			return err_set(e, EINTR, "digest handler failed");
	}
	if (k < 0)
		return -1;
	c->qdone = !r->more;
	return 0;
}

struct sig_ctx {
	struct buf *sig;
	uint8_t *sha;
	uint64_t *size;
};

static int on_sig(struct client *c, const struct w_sig_rep *r, struct err *e)
{
	struct sig_ctx *sc = c->qctx;

	c->st.query_bytes += r->sig.len;
	if (r->status != 0) {
		c->qstatus = 1;
	} else {
		buf_set(sc->sig, r->sig.p, r->sig.len);
		memcpy(sc->sha, r->sha256, SHA256_LEN);
		*sc->size = r->size;
	}
	c->qdone = true;
	return 0;
}

static int dispatch(struct client *c, const struct w_frame *f, const union w_msg *m,
		    struct err *e)
{
	switch (f->type) {
	case W_ACK: return on_ack(c, &m->ack, e);
	case W_PONG: return 0;
	case W_ERROR:
		return err_set(e, ERR_REFUSED, "%s: %.*s", conn_peer(c->conn),
			       (int)m->error.text.len, m->error.text.p);
	default: break;
	}
	if (f->type != c->qtype + 1 || c->qdone)
		return err_set(e, ERR_PROTO, "unexpected %s from %s", wire_type_name(f->type),
			       conn_peer(c->conn));
	switch (f->type) {
	case W_LIST_REP:
		if (m->list_rep.id != c->qid)
			break;
		return on_list(c, &m->list_rep, e);
	case W_DIGEST_REP:
		if (m->digest_rep.id != c->qid)
			break;
		return on_digests(c, &m->digest_rep, e);
	case W_SIG_REP:
		if (m->sig_rep.id != c->qid)
			break;
		return on_sig(c, &m->sig_rep, e);
	default: break;
	}
	return err_set(e, ERR_PROTO, "%s answered a query we did not ask", conn_peer(c->conn));
}

/* ---------------------------------------------------------------- queries */

static int end_batch(struct client *c, uint64_t lsn, bool own, struct err *e);

/* Sends a query; its replies are handled as they arrive. */
static int query_send(struct client *c, uint8_t type, union w_msg *m, void *ctx, struct err *e)
{
	uint32_t id = c->next_qid++;

	if (c->qtype != 0)
		return err_set(e, EBUSY, "a query to %s is still unanswered", conn_peer(c->conn));
	if (end_batch(c, c->sent_lsn, true, e) < 0)
		return -1;
	switch (type) {
	case W_LIST_REQ: m->list_req.id = id; break;
	case W_DIGEST_REQ: m->digest_req.id = id; break;
	case W_SIG_REQ: m->sig_req.id = id; break;
	default: return err_set(e, EINVAL, "not a query");
	}
	c->qid = id;
	c->qtype = type;
	c->qdone = false;
	c->qstatus = 0;
	c->qctx = ctx;
	if (send_frame(c, type, m, e) < 0) {
		c->qtype = 0;
		return -1;
	}
	return 0;
}

/* Pumps until the last reply frame of the query sent was handled. */
static int query_wait(struct client *c, struct err *e)
{
	int r = wait_for(c, &c->qdone, e);

	c->qtype = 0;
	return r < 0 ? -1 : c->qstatus;
}

static int query(struct client *c, uint8_t type, union w_msg *m, void *ctx, struct err *e)
{
	return query_send(c, type, m, ctx, e) < 0 ? -1 : query_wait(c, e);
}

int client_digests(struct client *c, const char *prefix, uint32_t flags, client_digest_fn *fn,
		   void *ctx, struct err *e)
{
	union w_msg m = {.digest_req = {.flags = flags, .prefix = slice_cstr(prefix)}};
	struct digest_ctx dc = {fn, ctx};

	return query(c, W_DIGEST_REQ, &m, &dc, e);
}

int client_digests_start(struct client *c, const char *prefix, uint32_t flags,
			 client_digest_fn *fn, void *ctx, struct err *e)
{
	union w_msg m = {.digest_req = {.flags = flags, .prefix = slice_cstr(prefix)}};
	struct digest_ctx *dc = xmalloc(sizeof(*dc));

	*dc = (struct digest_ctx){fn, ctx};
	if (query_send(c, W_DIGEST_REQ, &m, dc, e) < 0) {
		free(dc);
		return -1;
	}
	c->qowned = dc;
	return 0;
}

int client_wait(struct client *c, struct err *e)
{
	int r = query_wait(c, e);

	free(c->qowned);
	c->qowned = NULL;
	return r;
}

int client_list(struct client *c, const char *folder, uint32_t flags, struct folder_list *out,
		struct err *e)
{
	union w_msg m = {.list_req = {.flags = flags, .folder = slice_cstr(folder)}};
	struct list_ctx lc = {out};

	memset(out, 0, sizeof(*out));
	return query(c, W_LIST_REQ, &m, &lc, e);
}

int client_sig(struct client *c, const char *path, struct buf *sig, uint8_t sha_r[SHA256_LEN],
	       uint64_t *size_r, struct err *e)
{
	union w_msg m = {.sig_req = {.path = slice_cstr(path)}};
	struct sig_ctx sc = {sig, sha_r, size_r};

	return query(c, W_SIG_REQ, &m, &sc, e);
}

/* -------------------------------------------------------------- mutations */

static void count_op(struct client *c, uint64_t bytes)
{
	c->batch_ops++;
	c->batch_bytes += bytes;
}

/* Closes the batch early when it reached its size limits. */
static int maybe_cut(struct client *c, struct err *e)
{
	if (c->batch_ops >= c->set->sync.batch_max_ops ||
	    c->batch_bytes >= c->set->sync.batch_max_bytes)
		return end_batch(c, c->sent_lsn, true, e);
	return 0;
}

static void dry(const struct client *c, const char *what, const char *a, const char *b)
{
	(void)c;
	printf("would %s %s%s%s\n", what, a, b ? " -> " : "", b ? b : "");
}

/* True for errors that mean "the file is not there any more". */
static bool gone(int err)
{
	return err == ENOENT || err == ELOOP || err == ENOTDIR;
}

/* Opens a local file for sending; returns the fd, or -1 with errno ENOENT
 * when it is gone or no longer a regular file (the caller drops the op).
 * O_NONBLOCK: opening a FIFO planted in the tree must not block. */
static int open_local(struct client *c, const char *path, struct stat *st, struct err *e)
{
	int fd = sp_open(c->o.rootfd, path, O_RDONLY | O_NONBLOCK, 0, e);

	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	return fd;
}

static void attrs_from(const struct stat *st, bool owner, uint32_t *mode, uint32_t *uid,
		       uint32_t *gid)
{
	*mode = st->st_mode & 07777;
	*uid = owner ? st->st_uid : UINT32_MAX;
	*gid = owner ? st->st_gid : UINT32_MAX;
}

static int send_link(struct client *c, uint64_t lsn, const char *from, const char *to,
		     const struct stat *st, const uint8_t *sha, bool copy, struct err *e)
{
	union w_msg m = {.link = {.lsn = lsn, .from = slice_cstr(from), .to = slice_cstr(to),
				  .flags = copy ? WF_COPY : 0, .size = (uint64_t)st->st_size,
				  .mtime_ns = ts_ns(st->st_mtim)}};

	attrs_from(st, c->set->node.preserve_owner, &m.link.mode, &m.link.uid, &m.link.gid);
	if (sha != NULL)
		memcpy(m.link.sha256, sha, SHA256_LEN);
	if (copy)
		c->st.copies++;
	else
		c->st.links++;
	count_op(c, 0);
	return send_frame(c, W_LINK, &m, e);
}

/* The zlib level for the next body, or 0 not to deflate it. Deflating
 * pays when the link is what limits: in auto mode, while output backs up
 * (the kernel's socket buffer took less than OUT_FLUSH at the last flush),
 * and never to a peer on this host, where the link is memory and the peer
 * shares our CPU, which deflating would take from it while giving it
 * inflating to do on top. On a fast LAN the link keeps up and the CPU is
 * better spent reading and hashing files (a full sync ran 1.6x faster
 * here without). */
static int deflate_level(const struct client *c)
{
	if (c->compress == COMPRESS_NEVER ||
	    (c->compress == COMPRESS_AUTO &&
	     (conn_same_host(c->conn) || conn_pending(c->conn) < OUT_FLUSH)))
		return 0;
	return (int)c->set->sync.compress_level;
}

/* Sends one chunk of content, deflated when that pays. */
static int send_chunk(struct client *c, uint8_t type, union w_msg *m, const uint8_t *data,
		      size_t len, struct err *e)
{
	uint32_t *flags = type == W_PUT ? &m->put.flags : &m->data.flags;
	struct slice *body = type == W_PUT ? &m->put.body : &m->data.body;
	uint32_t *raw = type == W_PUT ? &m->put.raw_len : &m->data.raw_len;
	int z = wire_deflate(data, len, deflate_level(c), &c->zbuf);

	*raw = (uint32_t)len;
	if (z == 1) {
		*flags |= WF_DEFLATE;
		*body = buf_slice(&c->zbuf);
	} else {
		*body = (struct slice){(const char *)data, len};
	}
	return send_frame(c, type, m, e);
}

/* Sends the next chunk of a transfer; returns 1 when it was the last. */
static int xfer_step(struct client *c, struct xfer *x, uint8_t *chunk, struct err *e)
{
	union w_msg d = {.data = {.xfer_id = x->id}};
	size_t want = x->size - x->off < WIRE_CHUNK ? (size_t)(x->size - x->off) : WIRE_CHUNK;
	ssize_t n = pread(x->fd, chunk, want, (off_t)x->off);

	if (n <= 0) {
		/* Shrunk or unreadable under us: end the session; the next one
		 * resends from the standby's durable position. */
		return err_sys(e, "short read while sending a file");
	}
	x->off += (uint64_t)n;
	d.data.flags = x->off >= x->size ? WF_LAST : 0;
	if (send_chunk(c, W_DATA, &d, chunk, (size_t)n, e) < 0)
		return -1;
	/* The chunk is batch content: a BATCH_END must follow it, or the last
	 * chunk of a file would never be committed. */
	count_op(c, (uint64_t)n);
	return x->off >= x->size;
}

static void xfer_done(struct client *c, struct xfer **link)
{
	struct xfer *x = *link;

	*link = x->next;
	close(x->fd);
	free(x);
	c->nxfers--;
}

/* Sends up to `budget` bytes of the transfers in progress, oldest first:
 * the oldest holds the batch position back (xfer_low_lsn), so finishing
 * it first lets the standby's position move; taking turns would keep every
 * one of them, and so the position, waiting while others start. */
static int xfer_round(struct client *c, uint64_t budget, struct err *e)
{
	uint8_t *chunk;
	uint64_t sent = 0;

	if (c->xfers == NULL)
		return 0;
	chunk = xmalloc(WIRE_CHUNK);
	while (c->xfers != NULL && sent < budget) {
		uint64_t before = c->xfers->off;
		int r = xfer_step(c, c->xfers, chunk, e);

		if (r < 0) {
			free(chunk);
			return -1;
		}
		sent += c->xfers->off - before;
		if (r == 1)
			xfer_done(c, &c->xfers);
	}
	free(chunk);
	return 0;
}

/* The lowest journal position a transfer in progress serves (0: none). */
static uint64_t xfer_low_lsn(const struct client *c)
{
	uint64_t low = 0;

	for (const struct xfer *x = c->xfers; x != NULL; x = x->next) {
		if (x->lsn != 0 && (low == 0 || x->lsn < low))
			low = x->lsn;
	}
	return low;
}

/* Sends the rest of transfer *link and ends it. */
static int xfer_complete(struct client *c, struct xfer **link, struct err *e)
{
	uint8_t *chunk = xmalloc(WIRE_CHUNK);
	int r;

	while ((r = xfer_step(c, *link, chunk, e)) == 0)
		;
	free(chunk);
	if (r < 0)
		return -1;
	xfer_done(c, link);
	return 0;
}

/* True if x sends the file st (by inode) or content sha (either may be NULL). */
static bool xfer_is(const struct xfer *x, const struct stat *st, const uint8_t *sha)
{
	return (st != NULL && x->dev == (uint64_t)st->st_dev && x->ino == (uint64_t)st->st_ino) ||
	       (sha != NULL && memcmp(x->sha, sha, SHA256_LEN) == 0);
}

/* Finishes the transfer of the file st or of content sha, if one is in
 * progress: the standby can link only from a complete file. */
static int xfer_finish(struct client *c, const struct stat *st, const uint8_t *sha,
		       struct err *e)
{
	for (struct xfer **link = &c->xfers; *link != NULL; link = &(*link)->next) {
		if (xfer_is(*link, st, sha))
			return xfer_complete(c, link, e);
	}
	return 0;
}

/* Starts sending a large file: the PUT now, its content in rounds. */
static int xfer_start(struct client *c, union w_msg *put, int fd, const struct stat *st,
		      struct err *e)
{
	struct xfer *x, **tail = &c->xfers;

	/* Too many at once: finish the oldest first (bounds open files). */
	while (c->nxfers >= MAX_XFERS) {
		if (xfer_complete(c, &c->xfers, e) < 0)
			return -1;
	}
	put->put.flags |= WF_CHUNKED;
	put->put.xfer_id = ++c->next_xfer;
	put->put.raw_len = 0;
	put->put.body = (struct slice){"", 0};
	if (send_frame(c, W_PUT, put, e) < 0)
		return -1;
	x = xcalloc(1, sizeof(*x));
	x->id = put->put.xfer_id;
	x->fd = fd;
	x->lsn = put->put.lsn;
	x->size = (uint64_t)st->st_size;
	x->dev = (uint64_t)st->st_dev;
	x->ino = (uint64_t)st->st_ino;
	memcpy(x->sha, put->put.sha256, SHA256_LEN);
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = x;
	c->nxfers++;
	return 0;
}

/* Sends path's content (or a link to a copy the peer already has). */
static int send_put(struct client *c, uint64_t lsn, const char *path, bool dedupe,
		    bool *dropped_r, struct err *e)
{
	union w_msg m = {.put = {.lsn = lsn, .path = slice_cstr(path)}};
	uint8_t ikey[32], sha[SHA256_LEN];
	const char *have;
	struct stat st;
	int fd = open_local(c, path, &st, e), r;

	*dropped_r = fd < 0 && gone(errno);
	if (fd < 0) {
		if (!gone(errno))
			return 1;
		sentmap_dropped(c->sent, path);
		c->st.dropped++;
		return 0;
	}
	inode_key(&st, ikey);
	if (dedupe && st.st_nlink > 1 && (have = sentmap_by_inode(c->sent, ikey)) != NULL &&
	    strcmp(have, path) != 0) {
		close(fd);
		if (xfer_finish(c, &st, NULL, e) < 0)
			return -1;
		return send_link(c, lsn, have, path, &st, NULL, false, e);
	}
	if ((uint64_t)st.st_size <= WIRE_CHUNK) {
		/* Read whole, so that what is hashed is exactly what is sent. */
		if (fs_read_fd(fd, &c->content, WIRE_CHUNK, e) < 0) {
			close(fd);
			err_prefix(e, "cannot send %s", path);
			return 1;
		}
		st.st_size = (off_t)c->content.len;
		sha256_buf(c->content.data, c->content.len, sha);
	} else if (sha256_fd(fd, sha, NULL, e) < 0) {
		close(fd);
		err_prefix(e, "cannot send %s", path);
		return 1;
	}
	if (dedupe && st.st_size >= DEDUPE_MIN_SIZE &&
	    (have = sentmap_by_content(c->sent, sha)) != NULL && strcmp(have, path) != 0) {
		close(fd);
		if (xfer_finish(c, NULL, sha, e) < 0)
			return -1;
		return send_link(c, lsn, have, path, &st, sha, true, e);
	}
	m.put.size = (uint64_t)st.st_size;
	m.put.mtime_ns = ts_ns(st.st_mtim);
	attrs_from(&st, c->set->node.preserve_owner, &m.put.mode, &m.put.uid, &m.put.gid);
	memcpy(m.put.sha256, sha, SHA256_LEN);
	if ((uint64_t)st.st_size <= WIRE_CHUNK) {
		r = send_chunk(c, W_PUT, &m, c->content.data, (size_t)st.st_size, e);
		close(fd);
	} else {
		r = xfer_start(c, &m, fd, &st, e); /* keeps fd */
		if (r < 0)
			close(fd);
	}
	if (r < 0)
		return -1;
	sentmap_sent(c->sent, path, st.st_nlink > 1 ? ikey : NULL,
		     st.st_size >= DEDUPE_MIN_SIZE ? sha : NULL);
	c->st.puts++;
	c->st.put_bytes += (uint64_t)st.st_size;
	count_op(c, (uint64_t)st.st_size);
	return 0;
}

int client_put(struct client *c, uint64_t lsn, const char *path, struct err *e)
{
	bool dropped;
	int r;

	if (c->o.dry_run) {
		dry(c, "send", path, NULL);
		return 0;
	}
	r = send_put(c, lsn, path, true, &dropped, e);
	return r != 0 ? r : maybe_cut(c, e);
}

/* --------------------------------------------------------- metadata files */

static struct sigent *sig_find(struct client *c, const char *path)
{
	for (struct sigent *s = c->sigs; s != NULL; s = s->next) {
		if (strcmp(s->path, path) == 0)
			return s;
	}
	return NULL;
}

/* Remembers the signature of what was just sent as path's content. */
static void sig_remember(struct client *c, const char *path, const uint8_t *sha,
			 const uint8_t *data, size_t len)
{
	struct sigent *s = sig_find(c, path);
	struct err e;

	if (s == NULL) {
		if (c->sig_bytes > SIG_CACHE_MAX)
			return;
		s = xcalloc(1, sizeof(*s));
		s->path = xstrdup(path);
		buf_init(&s->sig, 0);
		s->next = c->sigs;
		c->sigs = s;
	}
	c->sig_bytes -= s->sig.len;
	memcpy(s->sha, sha, SHA256_LEN);
	if (delta_signature_buf((struct slice){(const char *)data, len}, &s->sig, &e) < 0)
		buf_reset(&s->sig);
	c->sig_bytes += s->sig.len;
}

int client_meta(struct client *c, uint64_t lsn, const char *path, const uint8_t *base_sha,
		struct slice sig, struct err *e)
{
	union w_msg m = {.delta = {.lsn = lsn, .path = slice_cstr(path)}};
	struct buf delta = BUF_INIT;
	struct sigent *cached = NULL;
	struct stat st;
	bool dropped;
	int fd, r;

	if (c->o.dry_run) {
		dry(c, "update metadata", path, NULL);
		return 0;
	}
	if (base_sha == NULL && (cached = sig_find(c, path)) != NULL && cached->sig.len > 0) {
		base_sha = cached->sha;
		sig = buf_slice(&cached->sig);
	}
	fd = open_local(c, path, &st, e);
	if (fd < 0) {
		if (!gone(errno))
			return 1;
		c->st.dropped++;
		return 0;
	}
	/* Metadata files are small: read whole, so what is hashed is what is sent. */
	r = fs_read_fd(fd, &c->content, 256u << 20, e);
	close(fd);
	if (r < 0) {
		err_prefix(e, "cannot send %s", path);
		return 1;
	}
	sha256_buf(c->content.data, c->content.len, m.delta.result_sha256);
	/* A delta only when it is much smaller than the file and fits a frame;
	 * delta_make returns 1 past that bound. */
	if (base_sha != NULL && sig.len > 0 && c->content.len >= DELTA_MIN_SIZE &&
	    memcmp(base_sha, m.delta.result_sha256, SHA256_LEN) != 0 &&
	    delta_make(sig, buf_slice(&c->content),
		       c->content.len / 2 < WIRE_CHUNK ? c->content.len / 2 : WIRE_CHUNK, &delta,
		       e) == 0) {
		memcpy(m.delta.base_sha256, base_sha, SHA256_LEN);
		m.delta.result_size = c->content.len;
		m.delta.mtime_ns = ts_ns(st.st_mtim);
		attrs_from(&st, c->set->node.preserve_owner, &m.delta.mode, &m.delta.uid,
			   &m.delta.gid);
		m.delta.raw_len = (uint32_t)delta.len;
		m.delta.delta = buf_slice(&delta);
		if (wire_deflate(delta.data, delta.len, deflate_level(c), &c->zbuf) == 1) {
			m.delta.flags = WF_DEFLATE;
			m.delta.delta = buf_slice(&c->zbuf);
		}
		r = send_frame(c, W_DELTA, &m, e);
		c->st.deltas++;
		c->st.delta_bytes += delta.len;
		count_op(c, delta.len);
	} else {
		r = send_put(c, lsn, path, false, &dropped, e);
	}
	buf_free(&delta);
	if (r == 0 && c->content.len > 0)
		sig_remember(c, path, m.delta.result_sha256, c->content.data, c->content.len);
	return r != 0 ? r : maybe_cut(c, e);
}

/* ------------------------------------------------------- name operations */

static void rename_known(struct client *c, const char *from, const char *to)
{
	struct sigent *s = sig_find(c, from);

	if (s != NULL) {
		free(s->path);
		s->path = xstrdup(to);
	}
}

int client_rename(struct client *c, uint64_t lsn, const char *from, const char *to,
		  struct err *e)
{
	union w_msg m = {.rename = {.lsn = lsn, .from = slice_cstr(from), .to = slice_cstr(to)}};

	if (c->o.dry_run) {
		dry(c, "rename", from, to);
		return 0;
	}
	if (sentmap_take_dropped(c->sent, from)) {
		/* from's content never went: it was gone (this rename, most
		 * likely) before it could be read. The standby cannot rename
		 * what it lacks and would ask for to, so send to now, and unlink
		 * from in case an earlier session left one there. */
		bool dropped;
		int r = send_put(c, lsn, to, true, &dropped, e);

		if (r < 0)
			return -1;
		if (r == 0)
			return client_unlink(c, lsn, from, e);
		/* Unreadable for now: the rename, and the standby's NEED, then. */
	}
	rename_known(c, from, to);
	sentmap_renamed(c->sent, from, to);
	c->st.renames++;
	count_op(c, 0);
	return send_frame(c, W_RENAME, &m, e) < 0 ? -1 : maybe_cut(c, e);
}

int client_link(struct client *c, uint64_t lsn, const char *from, const char *to, bool copy,
		struct err *e)
{
	uint8_t sha[SHA256_LEN];
	struct stat st;
	int fd;

	if (c->o.dry_run) {
		dry(c, copy ? "copy" : "link", from, to);
		return 0;
	}
	fd = open_local(c, to, &st, e);
	if (fd < 0) {
		if (!gone(errno))
			return 1;
		c->st.dropped++;
		return 0;
	}
	if (copy && sha256_fd(fd, sha, NULL, e) < 0) {
		close(fd);
		return 1;
	}
	close(fd);
	if (send_link(c, lsn, from, to, &st, copy ? sha : NULL, copy, e) < 0)
		return -1;
	return maybe_cut(c, e);
}

int client_unlink(struct client *c, uint64_t lsn, const char *path, struct err *e)
{
	union w_msg m = {.unlink = {.lsn = lsn, .path = slice_cstr(path)}};

	if (c->o.dry_run) {
		dry(c, "delete", path, NULL);
		return 0;
	}
	sentmap_unlinked(c->sent, path);
	c->st.unlinks++;
	count_op(c, 0);
	return send_frame(c, W_UNLINK, &m, e) < 0 ? -1 : maybe_cut(c, e);
}

int client_mkdir(struct client *c, uint64_t lsn, const char *path, struct err *e)
{
	union w_msg m = {.mkdir = {.lsn = lsn, .path = slice_cstr(path)}};
	struct stat st;
	int fd;

	if (c->o.dry_run) {
		dry(c, "create folder", path, NULL);
		return 0;
	}
	fd = sp_open(c->o.rootfd, path, O_RDONLY | O_DIRECTORY, 0, e);
	if (fd < 0) {
		c->st.dropped++;
		return gone(errno) ? 0 : -1;
	}
	fstat(fd, &st);
	close(fd);
	attrs_from(&st, c->set->node.preserve_owner, &m.mkdir.mode, &m.mkdir.uid, &m.mkdir.gid);
	c->st.mkdirs++;
	count_op(c, 0);
	return send_frame(c, W_MKDIR, &m, e) < 0 ? -1 : maybe_cut(c, e);
}

int client_rmtree(struct client *c, uint64_t lsn, const char *path, struct err *e)
{
	union w_msg m = {.rmtree = {.lsn = lsn, .path = slice_cstr(path)}};

	if (c->o.dry_run) {
		dry(c, "remove folder", path, NULL);
		return 0;
	}
	c->st.rmtrees++;
	count_op(c, 0);
	return send_frame(c, W_RMTREE, &m, e) < 0 ? -1 : maybe_cut(c, e);
}

int client_setattr(struct client *c, uint64_t lsn, const char *path, struct err *e)
{
	union w_msg m = {.setattr = {.lsn = lsn, .path = slice_cstr(path)}};
	struct stat st;
	int fd;

	if (c->o.dry_run) {
		dry(c, "set attributes of", path, NULL);
		return 0;
	}
	fd = open_local(c, path, &st, e);
	if (fd < 0) {
		c->st.dropped++;
		return gone(errno) ? 0 : -1;
	}
	close(fd);
	m.setattr.mtime_ns = ts_ns(st.st_mtim);
	attrs_from(&st, c->set->node.preserve_owner, &m.setattr.mode, &m.setattr.uid,
		   &m.setattr.gid);
	c->st.setattrs++;
	count_op(c, 0);
	return send_frame(c, W_SETATTR, &m, e) < 0 ? -1 : maybe_cut(c, e);
}

/* ------------------------------------------------------------- batching */

/* How many times this need has now been asked for in this session
 * (lossy: a need pushed out by others counts from 1 again). */
static unsigned need_times(struct client *c, const struct need *n)
{
	uint64_t key = n->lsn * 0x9e3779b97f4a7c15ULL, h;
	struct need_seen *s;

	for (const char *p = n->path; *p != '\0'; p++)
		key = (key ^ (uint8_t)*p) * 1099511628211ULL; /* FNV-1a */
	key |= 1;
	if (c->seen == NULL)
		c->seen = xcalloc(NEED_SLOTS, sizeof(*c->seen));
	h = key ^ (key >> 31);
	s = &c->seen[h % NEED_SLOTS];
	if (s->key != key) {
		s->key = key;
		s->times = 0;
	}
	return ++s->times;
}

/* Sends MKDIR for each directory above path, top-down: a need that came
 * back after its answer lacks a directory on the standby (removed there by
 * hand, say), and only the sender knows what each should be. */
static int mkdir_ancestors(struct client *c, uint64_t lsn, const char *path, struct err *e)
{
	char dir[SP_PATH_MAX + 1];
	size_t len = strlen(path);

	if (len > SP_PATH_MAX)
		return 0;
	memcpy(dir, path, len + 1);
	for (char *slash = strchr(dir, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		int r;

		*slash = '\0';
		r = client_mkdir(c, lsn, dir, e);
		*slash = '/';
		if (r < 0)
			return -1;
	}
	return 0;
}

/* Answers one need: the content after all, or an unlink that resolves it
 * when the file is gone here too; a directory is created. */
static int answer_need(struct client *c, const struct need *n, struct err *e)
{
	/* The path comes from the peer: resolve it only through safepath. */
	int dfd = sp_open(c->o.rootfd, n->path, O_RDONLY | O_DIRECTORY, 0, NULL);
	bool dropped = false;
	int r;

	if (dfd >= 0) {
		/* A folder rename the peer could not do: the caller's rescan of
		 * the folder fills it. */
		close(dfd);
		return client_mkdir(c, n->lsn, n->path, e);
	}
	r = send_put(c, n->lsn, n->path, false, &dropped, e);
	if (r == 1) {
		/* Unreadable here for now: the hold stays until a rescan. */
		log_warn("%s", e->msg);
		r = 0;
	} else if (r == 0 && dropped) {
		union w_msg m = {.unlink = {.lsn = n->lsn, .path = slice_cstr(n->path)}};
		c->st.dropped--; /* counted as the unlink below */
		r = send_frame(c, W_UNLINK, &m, e);
		count_op(c, 0);
	}
	c->st.needs++;
	return r;
}

/* Answers NEEDs. One asked for again is answered with its directories
 * first; one that still comes back ends the session with the reason
 * rather than being resent as fast as the standby can refuse it. */
static int answer_needs(struct client *c, struct err *e)
{
	while (c->nneeds > 0) {
		struct need n = c->needs[--c->nneeds];
		unsigned times = need_times(c, &n);
		int r = 0;

		if (times >= NEED_TRIES) {
			r = err_set(e, ERR_PROTO,
				    "%s keeps asking for '%s' (lsn %" PRIu64 ") and cannot "
				    "apply it, even with its directories made first; run "
				    "'mdreplctl audit --repair' on the primary",
				    conn_peer(c->conn), n.path, n.lsn);
		} else if (times == 2) {
			log_warn("%s asked again for '%s' (lsn %" PRIu64 "): creating its "
				 "directories there first",
				 conn_peer(c->conn), n.path, n.lsn);
			r = mkdir_ancestors(c, n.lsn, n.path, e);
		}
		if (r == 0)
			r = answer_need(c, &n, e);
		free(n.path);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* Ends the current batch (see client_commit); own: the client ends it
 * by itself, and client_awaiting_ack() does not wait for it. */
static int end_batch(struct client *c, uint64_t lsn, bool own, struct err *e)
{
	union w_msg m;

	if (c->o.dry_run)
		return 0;
	if (lsn > c->want_lsn)
		c->want_lsn = lsn;
	if (answer_needs(c, e) < 0 || xfer_round(c, XFER_ROUND, e) < 0)
		return -1;
	/* Not past a large file still on its way. */
	if (xfer_low_lsn(c) != 0 && xfer_low_lsn(c) - 1 < lsn)
		lsn = xfer_low_lsn(c) - 1;
	if (lsn < c->sent_lsn)
		lsn = c->sent_lsn;
	if (c->batch_ops == 0 && lsn == c->sent_lsn)
		return 0;
	while (c->ninflight >= c->set->sync.window || c->ninflight == MAX_INFLIGHT) {
		if (pump(c, 100, e) < 0)
			return -1;
		if (answer_needs(c, e) < 0)
			return -1;
	}
	m.batch_end.seq = c->next_seq++;
	m.batch_end.lsn = lsn;
	if (send_frame(c, W_BATCH_END, &m, e) < 0)
		return -1;
	c->inflight[c->ninflight].seq = m.batch_end.seq;
	c->inflight[c->ninflight].lsn = lsn;
	c->inflight[c->ninflight].own = own;
	c->ninflight++;
	c->sent_lsn = lsn;
	c->batch_ops = c->batch_bytes = 0;
	c->st.batches++;
	return conn_flush(c->conn, e) < 0 ? -1 : 0;
}

int client_commit(struct client *c, uint64_t lsn, struct err *e)
{
	return end_batch(c, lsn, false, e);
}

int client_drain(struct client *c, int timeout, struct err *e)
{
	uint64_t deadline = now_mono_ms() + (uint64_t)timeout;

	if (c->o.dry_run)
		return 0;
	for (;;) {
		if (c->nneeds > 0 || c->batch_ops > 0 || c->xfers != NULL) {
			if (client_commit(c, c->want_lsn > c->sent_lsn ? c->want_lsn : c->sent_lsn,
					  e) < 0)
				return -1;
		}
		if (c->ninflight == 0 && c->nneeds == 0 && c->xfers == NULL &&
		    conn_pending(c->conn) == 0)
			return 0;
		if (now_mono_ms() > deadline)
			return err_set(e, ETIMEDOUT, "%s did not acknowledge within %d ms",
				       conn_peer(c->conn), timeout);
		if (pump(c, 100, e) < 0)
			return -1;
	}
}

int client_poll(struct client *c, int timeout, struct err *e)
{
	if (pump(c, timeout, e) < 0)
		return -1;
	if (c->nneeds > 0)
		return end_batch(c, c->sent_lsn, true, e);
	return xfer_round(c, XFER_ROUND, e);
}

int client_keepalive(struct client *c, struct err *e)
{
	union w_msg m = {.ping = {.token = now_mono_ms()}};

	if (now_mono_ms() - c->last_send_ms < c->set->peer.keepalive_s * 1000)
		return 0;
	return send_frame(c, W_PING, &m, e);
}

bool client_busy(const struct client *c)
{
	return c->ninflight > 0 || c->nneeds > 0 || c->batch_ops > 0 || c->xfers != NULL;
}

size_t client_transfers(const struct client *c)
{
	return c->nxfers;
}

uint64_t client_durable_lsn(const struct client *c)
{
	return c->durable_lsn;
}

uint64_t client_received_lsn(const struct client *c)
{
	return c->received_lsn;
}

uint64_t client_applied_lsn(const struct client *c)
{
	return c->applied_lsn;
}

bool client_awaiting_ack(const struct client *c)
{
	for (size_t i = 0; i < c->ninflight; i++) {
		if (!c->inflight[i].own)
			return true;
	}
	return false;
}

uint64_t client_sent_lsn(const struct client *c)
{
	return c->sent_lsn;
}

const struct client_stats *client_get_stats(const struct client *c)
{
	return &c->st;
}

uint64_t client_wire_out(const struct client *c)
{
	return conn_bytes_out(c->conn);
}

uint64_t client_wire_in(const struct client *c)
{
	return conn_bytes_in(c->conn);
}
