/*
 * rolling.c — the rolling replication engine (see rolling.h).
 *
 * One event loop: the journal directory (inotify says when journald
 * wrote), the connection to the standby (ACKs), the control socket and
 * signals. Records are read as soon as they are written, coalesced for
 * coalesce_ms, turned into operations and sent at once; the batch they
 * belong to is closed (BATCH_END, one group commit on the standby) as soon
 * as no other batch is in flight, so batches are small when the load is
 * light (lowest lag) and grow with the load (highest throughput). The
 * standby's ACKs move the acknowledged position, written to the journal
 * directory for retention.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "client.h"
#include "coalesce.h"
#include "ctlsock.h"
#include "daemon.h"
#include "fsutil.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "nodestate.h"
#include "peer.h"
#include "reconcile.h"
#include "rolechange.h"
#include "rolling.h"
#include "safepath.h"
#include "xalloc.h"

#define PROG "mdrepl-syncclient"
#define LAG_RING 256	      /* unacknowledged batches tracked for lag */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define SESSION_LASTED_MS 10000 /* a session this long starts the backoff over */
#define FENCED_RETRY_MS 30000
#define DEFER_RETRY_MS 2000
#define ACKED_WRITE_MS 1000
#define METRICS_EVERY_MS 5000

enum state { ST_IDLE, ST_DISCONNECTED, ST_CONNECTED, ST_FENCED };

static const char *const state_names[] = {"idle", "disconnected", "connected", "fenced"};

/* A barrier record read while another was in progress. */
struct jrec_copy {
	struct jrec r;
	char *path, *path2;
};

/* An operation whose local file could not be read; retried later. */
struct deferred {
	struct cop op;
	uint64_t time_ns;
};

struct lagmark {
	uint64_t lsn;	  /* batch covers records <= lsn */
	uint64_t time_ns; /* journal time of its oldest record */
	uint64_t bytes;
};

struct engine {
	const struct settings *set;
	struct md_rules *rules;
	int rootfd, sigfd, ctlfd, inofd;
	char *jdir;
	bool stopping;

	enum state state;
	struct node_state node;
	uint64_t role_checked_ms;

	struct client *c;
	struct w_hello peer;
	struct jreader *rd;
	uint64_t journal_id;
	bool journal_awaited; /* the journal was missing at the last try */
	uint64_t read_lsn; /* last record taken from the journal */
	uint64_t read_time_ns;

	struct coalesce *co;
	uint64_t co_first_ms, co_first_ns;

	/* Operations sent whose BATCH_END waits: group commit on the standby
	 * is paid per batch, so while a batch is in flight the next one keeps
	 * growing; it is closed when the standby has caught up. */
	bool open_batch;
	uint64_t open_lsn, open_ns;

	struct deferred *def;
	size_t ndef, defcap;
	uint64_t defer_next_ms;

	/* A rescan (or other barrier) in progress lets other work proceed
	 * between users; barriers met meanwhile wait their turn. The position
	 * stays below all of them until they are done. */
	uint64_t barrier_lsn;  /* the one in progress, 0 if none */
	struct jrec_copy *queued;
	size_t nqueued, qcap;
	uint64_t yield_ms;

	struct lagmark lag[LAG_RING];
	size_t lag_head, lag_n;
	uint64_t committed_bytes;

	uint64_t backoff_ms, next_try_ms;
	uint64_t session_ms, session_lsn; /* when the session began, its durable lsn then */
	uint64_t acked_written, acked_write_ms;
	struct digest_cache *cache;

	uint64_t started_ns, connected_ns, reconnects, full_compares, records;
	uint64_t rate_ms, rate_records, rate_bytes, metrics_ms;
	double rec_rate, byte_rate;
	char last_error[ERR_MSG_MAX + 128];
};

static void set_error(struct engine *g, const char *what, const struct err *e)
{
	snprintf(g->last_error, sizeof(g->last_error), "%s: %s", what, e->msg);
	log_error("%s", g->last_error);
}

/* ----------------------------------------------------------- connection */

static void drop_queued(struct engine *g);

static void disconnect(struct engine *g, enum state next)
{
	/* Only a session that got something acknowledged, or lasted, starts
	 * the backoff over. One that fails at once every time (a standby
	 * refusing each batch: disk full, failing fsync) backs off, rather
	 * than being sent the same batch again several times a second. */
	bool fruitful = g->c != NULL && (client_durable_lsn(g->c) > g->session_lsn ||
					 now_mono_ms() - g->session_ms >= SESSION_LASTED_MS);

	if (fruitful)
		g->backoff_ms = 0;
	client_free(&g->c);
	jreader_free(&g->rd);
	coalesce_reset(g->co);
	g->lag_n = 0;
	g->open_batch = false;
	g->open_lsn = 0;
	g->barrier_lsn = 0;
	drop_queued(g);
	g->state = next;
	if (next == ST_DISCONNECTED) {
		g->backoff_ms = g->backoff_ms ? g->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (g->backoff_ms > BACKOFF_MAX_MS)
			g->backoff_ms = BACKOFF_MAX_MS;
		g->next_try_ms = now_mono_ms() + g->backoff_ms;
	} else if (next == ST_FENCED) {
		g->next_try_ms = now_mono_ms() + FENCED_RETRY_MS;
	}
}

/* Persists that a peer with a higher generation refused us. */
static void mark_fenced(struct engine *g, bool fenced, uint64_t by)
{
	struct err e;

	if (rolechange_fenced(g->set, fenced, by, &e) < 0 ||
	    nodestate_load(g->set->node.state_dir, g->set->node.initial_role, &g->node, &e) < 0)
		log_error("%s", e.msg);
}

/* After a refusal: does the peer outrank us? Asked by a probe, so the
 * answer rests on the peer's generation, not on the wording of its error.
 * Returns the peer's generation if it is higher than ours, else 0. */
static uint64_t outranked_by(struct engine *g)
{
	struct w_hello h;
	struct err e;

	if (peer_probe(g->set, &h, &e) < 0) {
		log_debug("probe after a refusal failed: %s", e.msg);
		return 0;
	}
	return h.generation > g->node.generation ? h.generation : 0;
}

/* Opens the journal just to learn its id. */
static int journal_identity(struct engine *g, struct err *e)
{
	bool gap;
	struct jreader *rd = jreader_open(g->jdir, 0, &gap, e);

	if (rd == NULL)
		return -1;
	g->journal_id = jreader_journal_id(rd);
	jreader_free(&rd);
	return 0;
}

static int yield_cb(void *ctx, struct err *e);
static void acked(struct engine *g);
static int run_queued(struct engine *g, struct err *e);
static int commit(struct engine *g, uint64_t lsn, uint64_t oldest_ns, struct err *e);

static int reconcile(struct engine *g, const char *prefix, uint64_t lsn, bool deep,
		     struct err *e)
{
	struct reconcile_opts o = {.rootfd = g->rootfd, .rules = g->rules, .cache = g->cache,
				   .deep = deep, .lsn = lsn, .yield = yield_cb, .yield_ctx = g};
	struct reconcile_stats st;

	if (reconcile_tree(g->c, &o, prefix, &st, e) < 0)
		return -1;
	if (st.folders_differing > 0)
		log_info("rescan of '%s': %" PRIu64 " folders compared, %" PRIu64 " differed",
			 prefix, st.folders_compared, st.folders_differing);
	return 0;
}

/* Compares the whole tree: covers every record up to the journal's tail. */
static int full_compare(struct engine *g, bool claimed, struct err *e)
{
	struct jrec rec;
	int r;

	while ((r = jreader_next(g->rd, &rec, e)) == 1) {
		g->read_lsn = rec.lsn;
		g->read_time_ns = rec.time_ns;
	}
	if (r < 0)
		return -1;
	log_info("full compare with %s, covering the journal up to lsn %" PRIu64,
		 client_peer(g->c), g->read_lsn);
	g->full_compares++;
	/* Records that arrive meanwhile are sent between users (yield_cb), but
	 * nothing is claimed until the compare is done. */
	g->barrier_lsn = client_sent_lsn(g->c) + 1;
	r = reconcile(g, "", g->read_lsn, false, e);
	g->barrier_lsn = 0;
	if (r < 0 || run_queued(g, e) < 0 || commit(g, g->read_lsn, 0, e) < 0 ||
	    client_drain(g->c, (int)g->set->peer.io_timeout_ms, e) < 0)
		return -1;
	if (claimed && journal_finish_full_sync(g->jdir, e) < 0)
		return -1;
	log_info("full compare done");
	return 0;
}

static int connect_peer(struct engine *g, struct err *e)
{
	struct client_opts o = {.set = g->set, .rootfd = g->rootfd, .rules = g->rules,
				.purpose = PURPOSE_REPLICATE};
	bool gap = false, claimed = false, full;
	uint64_t start;

	o.journal_id = g->journal_id;
	if (client_connect(&o, &g->c, &g->peer, e) < 0)
		return -1;
	g->session_ms = now_mono_ms();
	g->session_lsn = client_durable_lsn(g->c);
	full = g->peer.journal_id != g->journal_id || g->peer.durable_lsn == 0;
	start = full ? 0 : g->peer.durable_lsn;
	g->rd = jreader_open(g->jdir, start, &gap, e);
	if (g->rd == NULL)
		return -1;
	if (journal_needs_full_sync(g->jdir)) {
		if (journal_claim_full_sync(g->jdir, e) < 0)
			return -1;
		claimed = full = true;
	}
	g->read_lsn = start;
	g->state = ST_CONNECTED;
	g->connected_ns = now_real_ns();
	if (g->node.fenced)
		mark_fenced(g, false, 0);
	log_info("replicating to %s: journal %016" PRIx64 " from lsn %" PRIu64 "%s",
		 client_peer(g->c), g->journal_id, start,
		 full || gap ? " (full compare first)" : "");
	if (full || gap)
		return full_compare(g, claimed, e);
	return 0;
}

static void try_connect(struct engine *g)
{
	struct err e;
	uint64_t by;

	if (now_mono_ms() < g->next_try_ms)
		return;
	if (journal_identity(g, &e) < 0) {
		/* At boot the units may race: journald makes the journal a
		 * moment later. Said once, and shown in status meanwhile. */
		err_prefix(&e, "journal %s", g->jdir);
		snprintf(g->last_error, sizeof(g->last_error), "%s", e.msg);
		if (e.code != ENOENT)
			log_error("%s", e.msg);
		else if (!g->journal_awaited)
			log_info("waiting for mdrepl-journald to start the journal: %s", e.msg);
		g->journal_awaited = e.code == ENOENT;
		disconnect(g, ST_DISCONNECTED);
		return;
	}
	g->journal_awaited = false;
	g->reconnects++;
	if (connect_peer(g, &e) == 0)
		return;
	set_error(g, "replication", &e);
	if (e.code == ERR_REFUSED && (by = outranked_by(g)) != 0) {
		log_error("this node is fenced: the peer has generation %" PRIu64 ", higher than "
			  "ours (%" PRIu64 "); it keeps journaling locally; run 'mdreplctl rejoin' "
			  "to make it a standby",
			  by, g->node.generation);
		mark_fenced(g, true, by);
		disconnect(g, ST_FENCED);
		return;
	}
	disconnect(g, ST_DISCONNECTED);
}

/* ------------------------------------------------------------- sending */

static bool local_exists(struct engine *g, const char *path)
{
	int fd = sp_open(g->rootfd, path, O_PATH, 0, NULL);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void defer(struct engine *g, const struct cop *op, const struct err *e)
{
	struct deferred *d;

	for (size_t i = 0; i < g->ndef; i++) {
		if (strcmp(g->def[i].op.path, op->path) == 0)
			return; /* already waiting */
	}
	log_warn("cannot read %s yet (%s); will retry", op->path, e->msg);
	if (g->ndef == g->defcap) {
		g->defcap = g->defcap ? 2 * g->defcap : 16;
		g->def = xreallocarray(g->def, g->defcap, sizeof(*g->def));
	}
	d = &g->def[g->ndef++];
	d->op = *op;
	d->op.path = xstrdup(op->path);
	d->op.to = op->to ? xstrdup(op->to) : NULL;
	d->time_ns = op->time_ns;
	if (g->defer_next_ms == 0)
		g->defer_next_ms = now_mono_ms() + DEFER_RETRY_MS;
}

/* Sends one operation. Returns 0, or -1 when the session failed. */
static int send_op(struct engine *g, const struct cop *op, struct err *e)
{
	struct md_class mc;
	int r;

	switch (op->type) {
	case COP_RENAME: return client_rename(g->c, op->lsn, op->path, op->to, e);
	case COP_UNLINK: return client_unlink(g->c, op->lsn, op->path, e);
	case COP_PUT:
	case COP_META:
		md_classify(g->rules, slice_cstr(op->path), false, &mc);
		if (mc.kind == MD_META)
			r = client_meta(g->c, op->lsn, op->path, NULL, (struct slice){"", 0}, e);
		else if (mc.kind == MD_MESSAGE)
			r = client_put(g->c, op->lsn, op->path, e);
		else
			return 0; /* not something we replicate */
		if (r == 1) {
			defer(g, op, e);
			return 0;
		}
		return r;
	}
	return 0;
}

/* The position a batch may claim: not past an operation still waiting. */
static uint64_t claimable(const struct engine *g, uint64_t lsn)
{
	for (size_t i = 0; i < g->ndef; i++) {
		if (g->def[i].op.lsn - 1 < lsn)
			lsn = g->def[i].op.lsn - 1;
	}
	if (g->barrier_lsn != 0 && g->barrier_lsn - 1 < lsn)
		lsn = g->barrier_lsn - 1;
	for (size_t i = 0; i < g->nqueued; i++) {
		if (g->queued[i].r.lsn - 1 < lsn)
			lsn = g->queued[i].r.lsn - 1;
	}
	return lsn;
}

/* Sends BATCH_END for everything sent so far, covering records <= lsn. */
static int close_batch(struct engine *g, uint64_t lsn, uint64_t oldest_ns, struct err *e)
{
	uint64_t before = client_get_stats(g->c)->put_bytes;
	uint64_t sent = client_sent_lsn(g->c);

	g->open_batch = false;
	lsn = claimable(g, lsn);
	if (client_commit(g->c, lsn, e) < 0)
		return -1;
	if (client_sent_lsn(g->c) > sent) {
		struct lagmark *m = &g->lag[(g->lag_head + g->lag_n) % LAG_RING];

		if (g->lag_n == LAG_RING) {
			/* Merge into the newest mark rather than lose the oldest time. */
			m = &g->lag[(g->lag_head + g->lag_n - 1) % LAG_RING];
			m->lsn = client_sent_lsn(g->c);
			return 0;
		}
		m->lsn = client_sent_lsn(g->c);
		m->time_ns = oldest_ns ? oldest_ns : now_real_ns();
		m->bytes = client_get_stats(g->c)->put_bytes - before + g->committed_bytes;
		g->committed_bytes = 0;
		g->lag_n++;
	}
	return 0;
}

/* Records that everything up to lsn has been sent; closes the batch now
 * if the last one closed here is acknowledged, else when it is
 * (maybe_close). Batches the client cut for size do not count: under a
 * load that keeps them coming, waiting for an idle standby would hold the
 * position back for as long as the load lasts. */
static int commit(struct engine *g, uint64_t lsn, uint64_t oldest_ns, struct err *e)
{
	if (!g->open_batch) {
		g->open_batch = true;
		g->open_ns = oldest_ns;
	} else if (oldest_ns != 0 && (g->open_ns == 0 || oldest_ns < g->open_ns)) {
		g->open_ns = oldest_ns;
	}
	if (lsn > g->open_lsn)
		g->open_lsn = lsn;
	/* The acknowledgement may have come while the journal kept us reading:
	 * look for it, or the open batch grows for as long as records keep
	 * coming (work() sees the connection again only when the reader runs
	 * dry) and none of it becomes durable meanwhile. */
	if (client_awaiting_ack(g->c) && client_poll(g->c, 0, e) < 0)
		return -1;
	return client_awaiting_ack(g->c) ? 0 : close_batch(g, g->open_lsn, g->open_ns, e);
}

static int maybe_close(struct engine *g, struct err *e)
{
	if (g->open_batch && !client_awaiting_ack(g->c))
		return close_batch(g, g->open_lsn, g->open_ns, e);
	return 0;
}

static int flush_ops(struct engine *g, uint64_t lsn, struct err *e)
{
	size_t n;
	const struct cop *ops = coalesce_ops(g->co, &n);
	uint64_t before = client_get_stats(g->c)->put_bytes;

	for (size_t i = 0; i < n; i++) {
		if (!ops[i].dead && send_op(g, &ops[i], e) < 0)
			return -1;
	}
	g->committed_bytes += client_get_stats(g->c)->put_bytes - before;
	coalesce_reset(g->co);
	g->co_first_ms = 0;
	return commit(g, lsn, g->co_first_ns, e);
}

static int retry_deferred(struct engine *g, struct err *e)
{
	size_t n = g->ndef;

	if (n == 0 || now_mono_ms() < g->defer_next_ms)
		return 0;
	g->ndef = 0; /* send_op re-defers what still fails */
	for (size_t i = 0; i < n; i++) {
		struct deferred d = g->def[i];

		if (send_op(g, &d.op, e) < 0)
			return -1;
		free(d.op.path);
		free(d.op.to);
	}
	g->defer_next_ms = g->ndef ? now_mono_ms() + DEFER_RETRY_MS : 0;
	return commit(g, g->read_lsn, 0, e);
}

/* Handles a folder record or rescan: a barrier for coalescing. */
static int barrier(struct engine *g, const struct jrec *r, struct err *e)
{
	char *path = xstrndup(r->path.p, r->path.len), *to = xstrndup(r->path2.p, r->path2.len);
	struct md_class mc;
	int rc = 0;

	switch (r->type) {
	case JR_FOLDER_CREATE:
		md_classify(g->rules, slice_cstr(path), true, &mc);
		if (mc.kind == MD_SUBDIR) {
			/* A folder's cur/, new/ or tmp/ made after the folder was
			 * compared: a compare does not see an empty one missing
			 * (and every delivery into it would then be asked for again
			 * and again), so it is created as such, after its folder. */
			char *folder = xstrndup(mc.folder.p, mc.folder.len);

			if (folder[0] != '\0')
				rc = reconcile(g, folder, r->lsn, false, e);
			free(folder);
			if (rc == 0)
				rc = client_mkdir(g->c, r->lsn, path, e);
			break;
		}
		rc = reconcile(g, path, r->lsn, false, e);
		break;
	case JR_RESCAN:
		rc = reconcile(g, path, r->lsn, (r->flags & JR_F_DEEP) != 0, e);
		break;
	case JR_FOLDER_DELETE:
		/* Never remove on the standby what still exists here. */
		if (path[0] != '\0' && !local_exists(g, path))
			rc = client_rmtree(g->c, r->lsn, path, e);
		else
			rc = reconcile(g, path, r->lsn, false, e);
		break;
	case JR_FOLDER_RENAME:
		if (path[0] != '\0' && to[0] != '\0' && !local_exists(g, path) &&
		    local_exists(g, to))
			rc = client_rename(g->c, r->lsn, path, to, e);
		if (rc == 0 && to[0] != '\0')
			rc = reconcile(g, to, r->lsn, false, e);
		if (rc == 0 && path[0] != '\0')
			rc = reconcile(g, path, r->lsn, false, e);
		break;
	default: /* JR_START, JR_STOP: nothing to send */
		break;
	}
	free(path);
	free(to);
	return rc;
}

static int pump_records(struct engine *g, bool yielding, struct err *e);

/* Between users of a long compare: send what came in meanwhile, so one
 * huge mailbox's rescan does not hold up everyone else. */
static int yield_cb(void *ctx, struct err *e)
{
	struct engine *g = ctx;

	if (now_mono_ms() - g->yield_ms < 20)
		return 0;
	g->yield_ms = now_mono_ms();
	if (client_poll(g->c, 0, e) < 0 || pump_records(g, true, e) < 0)
		return -1;
	acked(g);
	return 0;
}

static int run_barrier(struct engine *g, const struct jrec *r, struct err *e)
{
	int rc;

	g->barrier_lsn = r->lsn;
	rc = barrier(g, r, e);
	g->barrier_lsn = 0;
	if (rc == 0)
		rc = commit(g, r->lsn, r->time_ns, e);
	return rc;
}

static void queue_barrier(struct engine *g, const struct jrec *r)
{
	struct jrec_copy *q;

	if (g->nqueued == g->qcap) {
		g->qcap = g->qcap ? 2 * g->qcap : 8;
		g->queued = xreallocarray(g->queued, g->qcap, sizeof(*g->queued));
	}
	q = &g->queued[g->nqueued++];
	q->r = *r;
	q->path = xstrndup(r->path.p, r->path.len);
	q->path2 = xstrndup(r->path2.p, r->path2.len);
	q->r.path = slice_cstr(q->path);
	q->r.path2 = slice_cstr(q->path2);
}

static void drop_queued(struct engine *g)
{
	for (size_t i = 0; i < g->nqueued; i++) {
		free(g->queued[i].path);
		free(g->queued[i].path2);
	}
	g->nqueued = 0;
}

/* Runs the barriers met during an earlier one, in order. */
static int run_queued(struct engine *g, struct err *e)
{
	while (g->nqueued > 0) {
		struct jrec_copy q = g->queued[0];
		int rc;

		memmove(g->queued, g->queued + 1, (g->nqueued - 1) * sizeof(*g->queued));
		g->nqueued--;
		rc = flush_ops(g, q.r.lsn - 1, e);
		if (rc == 0)
			rc = run_barrier(g, &q.r, e);
		free(q.path);
		free(q.path2);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Reads what journald wrote and sends it, coalescing for coalesce_ms.
 * While yielding from a barrier, a further barrier is queued and reading
 * stops there, so nothing after it overtakes it. */
static int pump_records(struct engine *g, bool yielding, struct err *e)
{
	struct jrec rec;
	int r = 0; /* not read unless set; gcc -O1 cannot tell */

	if (!yielding && run_queued(g, e) < 0)
		return -1;
	while (g->nqueued == 0 && (r = jreader_next(g->rd, &rec, e)) == 1) {
		g->read_lsn = rec.lsn;
		g->read_time_ns = rec.time_ns;
		g->records++;
		if (coalesce_add(g->co, &rec)) {
			if (g->co_first_ms == 0) {
				g->co_first_ms = now_mono_ms();
				g->co_first_ns = rec.time_ns;
			}
			if (coalesce_count(g->co) >= g->set->sync.batch_max_ops &&
			    flush_ops(g, rec.lsn, e) < 0)
				return -1;
			continue;
		}
		if (yielding) {
			queue_barrier(g, &rec);
			break;
		}
		if (flush_ops(g, rec.lsn - 1, e) < 0 || run_barrier(g, &rec, e) < 0)
			return -1;
	}
	if (g->nqueued == 0 && r < 0)
		return -1;
	if (coalesce_count(g->co) > 0) {
		if (now_mono_ms() - g->co_first_ms >= g->set->sync.coalesce_ms)
			return flush_ops(g, g->read_lsn, e);
		return 0;
	}
	/* Records that collapsed to nothing still move the position. */
	coalesce_reset(g->co);
	g->co_first_ms = 0;
	return commit(g, g->read_lsn, 0, e);
}

static int pump_journal(struct engine *g, struct err *e)
{
	return pump_records(g, false, e);
}

/* Drops lag marks the standby has made durable; writes the acked file. */
static void acked(struct engine *g)
{
	uint64_t durable = client_durable_lsn(g->c);
	struct err e;

	while (g->lag_n > 0 && g->lag[g->lag_head].lsn <= durable) {
		g->lag_head = (g->lag_head + 1) % LAG_RING;
		g->lag_n--;
	}
	if (durable != g->acked_written && now_mono_ms() - g->acked_write_ms >= ACKED_WRITE_MS) {
		if (journal_write_acked(g->jdir, g->journal_id, durable, &e) < 0)
			log_warn("cannot record the acknowledged position: %s", e.msg);
		g->acked_written = durable;
		g->acked_write_ms = now_mono_ms();
	}
}

static void work(struct engine *g)
{
	struct err e;

	if (client_poll(g->c, 0, &e) < 0 || retry_deferred(g, &e) < 0 ||
	    pump_journal(g, &e) < 0 || maybe_close(g, &e) < 0 ||
	    client_keepalive(g->c, &e) < 0) {
		set_error(g, "replication", &e);
		disconnect(g, ST_DISCONNECTED);
		return;
	}
	acked(g);
}

/* -------------------------------------------------------------- status */

static double lag_seconds(const struct engine *g)
{
	uint64_t oldest = 0, now = now_real_ns();

	if (g->lag_n > 0)
		oldest = g->lag[g->lag_head].time_ns;
	else if (g->open_batch && g->open_ns != 0)
		oldest = g->open_ns;
	else if (g->co_first_ms != 0)
		oldest = g->co_first_ns;
	for (size_t i = 0; i < g->ndef; i++) {
		if (oldest == 0 || g->def[i].time_ns < oldest)
			oldest = g->def[i].time_ns;
	}
	return oldest && now > oldest ? (double)(now - oldest) / 1e9 : 0.0;
}

static uint64_t lag_bytes(const struct engine *g)
{
	uint64_t b = g->committed_bytes;

	for (size_t i = 0; i < g->lag_n; i++)
		b += g->lag[(g->lag_head + i) % LAG_RING].bytes;
	return b;
}

static void update_rates(struct engine *g)
{
	uint64_t now = now_mono_ms(), bytes = g->c ? client_wire_out(g->c) : 0;
	double dt;

	if (g->rate_ms == 0 || bytes < g->rate_bytes) {
		g->rate_ms = now;
		g->rate_records = g->records;
		g->rate_bytes = bytes;
		return;
	}
	if (now - g->rate_ms < 1000)
		return;
	dt = (double)(now - g->rate_ms) / 1000.0;
	/* Exponentially weighted, about a 10 s memory. */
	g->rec_rate = 0.9 * g->rec_rate + 0.1 * (double)(g->records - g->rate_records) / dt;
	g->byte_rate = 0.9 * g->byte_rate + 0.1 * (double)(bytes - g->rate_bytes) / dt;
	g->rate_ms = now;
	g->rate_records = g->records;
	g->rate_bytes = bytes;
}

static void status_json(struct engine *g, struct buf *out)
{
	const struct client_stats *st = g->c ? client_get_stats(g->c) : NULL;
	uint64_t durable = g->c ? client_durable_lsn(g->c) : g->acked_written;
	struct json j;
	char jid[17];

	snprintf(jid, sizeof(jid), "%016" PRIx64, g->journal_id);
	json_init(&j, out);
	json_begin_obj(&j);
	json_key_str(&j, "daemon", "syncclient");
	json_key_str(&j, "role", role_name(g->node.role));
	json_key_u64(&j, "generation", g->node.generation);
	json_key_str(&j, "state", state_names[g->state]);
	json_key_bool(&j, "connected", g->state == ST_CONNECTED);
	json_key_bool(&j, "fenced", g->state == ST_FENCED || g->node.fenced);
	json_key_str(&j, "peer", g->c ? client_peer(g->c) : g->set->peer.address);
	json_key_str(&j, "journal_id", jid);
	json_key_u64(&j, "read_lsn", g->read_lsn);
	json_key_u64(&j, "sent_lsn", g->c ? client_sent_lsn(g->c) : 0);
	json_key_u64(&j, "received_lsn", g->c ? client_received_lsn(g->c) : 0);
	json_key_u64(&j, "applied_lsn", g->c ? client_applied_lsn(g->c) : 0);
	json_key_u64(&j, "durable_lsn", durable);
	json_key_u64(&j, "lag_records", g->read_lsn > durable ? g->read_lsn - durable : 0);
	json_key_double(&j, "lag_seconds", lag_seconds(g));
	json_key_u64(&j, "lag_bytes", lag_bytes(g));
	json_key_double(&j, "records_per_s", g->rec_rate);
	json_key_double(&j, "wire_bytes_per_s", g->byte_rate);
	json_key_u64(&j, "deferred", g->ndef);
	json_key_u64(&j, "records", g->records);
	json_key_u64(&j, "reconnects", g->reconnects);
	json_key_u64(&j, "full_compares", g->full_compares);
	if (st != NULL) {
		json_key_u64(&j, "files_sent", st->puts);
		json_key_u64(&j, "bytes_sent", st->put_bytes);
		json_key_u64(&j, "renames", st->renames);
		json_key_u64(&j, "links", st->links + st->copies);
		json_key_u64(&j, "unlinks", st->unlinks);
		json_key_u64(&j, "deltas", st->deltas);
		json_key_u64(&j, "needs", st->needs);
		json_key_u64(&j, "transfers", client_transfers(g->c));
		json_key_u64(&j, "wire_bytes_out", client_wire_out(g->c));
		json_key_u64(&j, "wire_bytes_in", client_wire_in(g->c));
	}
	json_key_str(&j, "last_error", g->last_error);
	json_end_obj(&j);
	buf_putc(out, '\n');
}

static void write_metrics(struct engine *g)
{
	struct buf json = BUF_INIT;
	struct err e;

	if (g->set->node.metrics_dir[0] == '\0' || now_mono_ms() < g->metrics_ms)
		return;
	g->metrics_ms = now_mono_ms() + METRICS_EVERY_MS;
	status_json(g, &json);
	if (metrics_write(g->set->node.metrics_dir, "syncclient", buf_cstr(&json), &e) < 0)
		log_warn("metrics not written: %s", e.msg);
	buf_free(&json);
}

static void control(struct engine *g)
{
	struct ctl_request req;
	struct buf out = BUF_INIT;
	struct err e;
	int cfd = ctl_accept(g->ctlfd, &req, 1000, &e);

	if (cfd < 0) {
		log_warn("control: %s", e.msg);
		return;
	}
	if (strcmp(req.argv[0], "status") == 0)
		status_json(g, &out);
	else
		buf_printf(&out, "error: unknown command '%s'\n", req.argv[0]);
	ctl_reply(cfd, out.data, out.len);
	ctl_request_free(&req);
	buf_free(&out);
}

/* ------------------------------------------------------------------ loop */

static void check_role(struct engine *g)
{
	struct err e;

	if (now_mono_ms() - g->role_checked_ms < 1000 && g->role_checked_ms != 0)
		return;
	g->role_checked_ms = now_mono_ms();
	if (nodestate_load(g->set->node.state_dir, g->set->node.initial_role, &g->node, &e) < 0) {
		set_error(g, "node state", &e);
		return;
	}
	if (g->node.role != ROLE_PRIMARY && g->state != ST_IDLE) {
		log_info("this node is now a standby: replication idle");
		disconnect(g, ST_IDLE);
	} else if (g->node.role == ROLE_PRIMARY && g->state == ST_IDLE) {
		log_info("this node is the primary: replicating");
		g->state = ST_DISCONNECTED;
		g->next_try_ms = 0;
	}
}

static void watch_journal(struct engine *g)
{
	if (g->inofd < 0)
		return;
	/* Watched afresh each time: journald may create the directory late. */
	if (inotify_add_watch(g->inofd, g->jdir, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0 &&
	    errno != ENOENT)
		log_warn("inotify on %s: %m", g->jdir);
}

static void drain_inotify(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static int next_timeout(const struct engine *g)
{
	int t = 1000;

	if (g->role_checked_ms == 0)
		return 0; /* start replicating at once, not after the first timeout */
	if (g->state == ST_DISCONNECTED || g->state == ST_FENCED) {
		uint64_t now = now_mono_ms();
		t = g->next_try_ms > now ? (int)(g->next_try_ms - now) : 0;
	}
	if (g->state == ST_CONNECTED) {
		if (coalesce_count(g->co) > 0)
			t = (int)g->set->sync.coalesce_ms;
		if (client_busy(g->c) && t > 50)
			t = 50;
	}
	return t < 1000 ? t : 1000;
}

static void stop(struct engine *g)
{
	struct err e;

	if (g->state == ST_CONNECTED) {
		if (flush_ops(g, g->read_lsn, &e) < 0 ||
		    close_batch(g, g->open_lsn > g->read_lsn ? g->open_lsn : g->read_lsn, g->open_ns,
				&e) < 0 ||
		    client_drain(g->c, 5000, &e) < 0)
			log_warn("stopping with unacknowledged changes: %s", e.msg);
		g->acked_write_ms = 0;
		acked(g);
	}
	disconnect(g, ST_IDLE);
}

static void loop(struct engine *g)
{
	uint64_t wd = sd_watchdog_interval_ms(), next_wd = now_mono_ms() + wd;

	while (!g->stopping) {
		struct pollfd p[4] = {{g->sigfd, POLLIN, 0}, {g->ctlfd, POLLIN, 0},
				      {g->inofd, POLLIN, 0}, {-1, POLLIN, 0}};
		enum daemon_signal sig;

		if (g->state == ST_CONNECTED) {
			p[3].fd = client_fd(g->c);
			p[3].events = client_events(g->c);
		}
		if (poll(p, 4, next_timeout(g)) < 0 && errno != EINTR)
			log_fatal("poll: %m");
		while ((sig = daemon_signal_read(g->sigfd)) != DSIG_NONE) {
			if (sig == DSIG_TERM)
				g->stopping = true;
			else if (sig == DSIG_HUP) {
				log_reopen();
				log_info("reloaded: reconnecting with fresh TLS settings");
				if (g->state == ST_CONNECTED)
					disconnect(g, ST_DISCONNECTED);
			}
		}
		if (p[1].revents)
			control(g);
		if (p[2].revents) {
			drain_inotify(g->inofd);
			watch_journal(g);
		}
		check_role(g);
		if (g->state == ST_DISCONNECTED || g->state == ST_FENCED) {
			watch_journal(g);
			try_connect(g);
		}
		if (g->state == ST_CONNECTED)
			work(g);
		update_rates(g);
		write_metrics(g);
		if (wd && now_mono_ms() >= next_wd) {
			sd_notify_watchdog();
			sd_notify_status("%s, lag %.3f s", state_names[g->state], lag_seconds(g));
			next_wd = now_mono_ms() + wd;
		}
	}
	sd_notify_stopping();
	stop(g);
}

static void setup(struct engine *g, const struct settings *s, bool foreground)
{
	struct buf path = BUF_INIT;
	struct err e;

	g->set = s;
	g->state = ST_IDLE;
	g->started_ns = now_real_ns();
	if (nodestate_load(s->node.state_dir, s->node.initial_role, &g->node, &e) < 0 ||
	    daemon_check(s->node.state_dir, PROG, &e) < 0)
		log_fatal("%s", e.msg);
	g->rootfd = open(s->node.mail_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g->rootfd < 0)
		log_fatal("cannot open mail_root %s: %m", s->node.mail_root);
	g->rules = md_rules_new(s->node.name_separator, &s->journal.exclude);
	g->jdir = xasprintf("%s/journal", s->node.state_dir);
	g->co = coalesce_new();
	buf_printf(&path, "%s/digest.cache", s->node.state_dir);
	g->cache = digest_cache_open(buf_cstr(&path));
	g->sigfd = daemon_signals_init(&e);
	if (g->sigfd < 0 || ctl_path(s->node.state_dir, "syncclient.sock", &path, &e) < 0 ||
	    (g->ctlfd = ctl_listen(buf_cstr(&path), &e)) < 0)
		log_fatal("%s", e.msg);
	g->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (g->inofd < 0)
		log_warn("inotify_init1: %m; polling the journal once a second");
	watch_journal(g);
	if (daemon_start(s->node.state_dir, PROG, foreground, &e) < 0)
		log_fatal("%s", e.msg);
	buf_free(&path);
}

int rolling_main(const struct settings *s, bool foreground)
{
	static struct engine g;

	setup(&g, s, foreground);
	sd_notify_ready(role_name(g.node.role));
	log_info("rolling replication started: role=%s peer=%s", role_name(g.node.role),
		 s->peer.address);
	loop(&g);
	daemon_stop(s->node.state_dir, PROG);
	digest_cache_free(&g.cache);
	coalesce_free(&g.co);
	md_rules_free(&g.rules);
	for (size_t i = 0; i < g.ndef; i++) {
		free(g.def[i].op.path);
		free(g.def[i].op.to);
	}
	free(g.def);
	drop_queued(&g);
	free(g.queued);
	free(g.jdir);
	close(g.rootfd);
	log_info("stopped");
	return 0;
}
