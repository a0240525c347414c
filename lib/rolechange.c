/*
 * rolechange.c — role and generation changes of this node (see
 * rolechange.h).
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "ctlsock.h"
#include "rolechange.h"
#include "standbypos.h"

typedef int change_fn(struct node_state *st, uint64_t arg);

/* Load, change, save under the lock. fn returns 0 (save), 1 (nothing to
 * save) or -1. Returns fn's result, or -1 on an I/O error. */
static int change(const struct settings *s, change_fn *fn, uint64_t arg,
		  struct node_state *before_r, struct node_state *after_r, struct err *e)
{
	struct node_state st;
	int lock = nodestate_lock(s->node.state_dir, e), r;

	if (lock < 0)
		return -1;
	r = nodestate_load(s->node.state_dir, s->node.initial_role, &st, e);
	if (r == 0 && before_r != NULL)
		*before_r = st;
	if (r == 0)
		r = fn(&st, arg);
	if (r == 0 && nodestate_save(s->node.state_dir, &st, e) < 0)
		r = -1;
	if (r >= 0 && after_r != NULL)
		*after_r = st;
	close(lock);
	return r;
}

static uint64_t max3(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t m = a > b ? a : b;

	return m > c ? m : c;
}

static int to_primary(struct node_state *st, uint64_t peer_generation)
{
	if (st->role == ROLE_PRIMARY)
		return 1;
	st->role = ROLE_PRIMARY;
	st->generation = max3(st->generation, st->max_seen_generation, peer_generation) + 1;
	st->max_seen_generation = st->generation;
	st->fenced = false;
	st->fenced_by = 0;
	return 0;
}

static int to_standby(struct node_state *st, uint64_t unused)
{
	bool was_standby = st->role == ROLE_STANDBY && !st->fenced;

	(void)unused;
	st->role = ROLE_STANDBY;
	st->fenced = false;
	st->fenced_by = 0;
	return was_standby ? 1 : 0;
}

static int to_follower(struct node_state *st, uint64_t generation)
{
	to_standby(st, 0);
	if (st->generation < generation)
		st->generation = generation;
	if (st->max_seen_generation < generation)
		st->max_seen_generation = generation;
	return 0;
}

static int set_fenced(struct node_state *st, uint64_t by)
{
	bool fenced = by != 0 && st->role == ROLE_PRIMARY; /* only a primary is fenced */
	uint64_t fenced_by = fenced ? by : 0;
	bool changed = st->fenced != fenced || st->fenced_by != fenced_by ||
		       st->max_seen_generation < by;

	if (st->max_seen_generation < by)
		st->max_seen_generation = by;
	st->fenced = fenced;
	st->fenced_by = fenced_by;
	return changed ? 0 : 1;
}

int rolechange_promote(const struct settings *s, uint64_t peer_generation,
		       struct node_state *before_r, struct node_state *after_r, struct err *e)
{
	return change(s, to_primary, peer_generation, before_r, after_r, e);
}

int rolechange_demote(const struct settings *s, struct node_state *before_r,
		      struct node_state *after_r, struct err *e)
{
	int r = change(s, to_standby, 0, before_r, after_r, e);

	if (r >= 0 && standbypos_remove(s->node.state_dir, e) < 0)
		return -1;
	return r;
}

int rolechange_follow(const struct settings *s, uint64_t generation, struct node_state *before_r,
		      struct node_state *after_r, struct err *e)
{
	int r = change(s, to_follower, generation, before_r, after_r, e);

	if (r < 0 || standbypos_remove(s->node.state_dir, e) < 0)
		return -1;
	return 0;
}

int rolechange_fenced(const struct settings *s, bool fenced, uint64_t by, struct err *e)
{
	return change(s, set_fenced, fenced ? (by ? by : 1) : 0, NULL, NULL, e) < 0 ? -1 : 0;
}

int rolechange_notify(const struct settings *s, int timeout_ms, struct err *e)
{
	const char *argv[] = {"role"};
	struct buf path = BUF_INIT, out = BUF_INIT;
	int r = ctl_path(s->node.state_dir, "journald.sock", &path, e);

	if (r == 0)
		r = ctl_call(buf_cstr(&path), 1, argv, &out, timeout_ms, e);
	if (r == 0 && strncmp(buf_cstr(&out), "ok", 2) != 0)
		r = err_set(e, ERR_PROTO, "mdrepl-journald answered: %s", buf_cstr(&out));
	buf_free(&path);
	buf_free(&out);
	return r;
}
