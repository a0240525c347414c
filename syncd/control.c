/*
 * control.c — admission by role and generation, the journal head, and
 * the switchover requests (see control.h).
 *
 * SECURITY: h and req come from an authenticated peer but are still
 * parsed input: only their numbers and the command word are used; no
 * path from them reaches the file system.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "fsutil.h"
#include "hooks.h"
#include "jhead.h"
#include "log.h"
#include "rolechange.h"
#include "xalloc.h"

#define JOURNALD_TIMEOUT_MS 5000 /* for journald to stop journaling at a demote */
#define CONTROL_TEXT_MAX    (16 * 1024)

bool control_purpose_writes(uint32_t purpose)
{
	return purpose == PURPOSE_REPLICATE || purpose == PURPOSE_SYNC || purpose == PURPOSE_REJOIN;
}

/* ---------------------------------------------------------------- admission */

static uint32_t refuse(char *text, size_t len, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static uint32_t refuse(char *text, size_t len, uint32_t code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, len, fmt, ap);
	va_end(ap);
	return code;
}

/* Replication into this node (REPLICATE, SYNC). */
static uint32_t admit_replication(const struct node_state *node, const struct w_hello *h,
				  const struct syncd_shared *sh, char *text, size_t len)
{
	if (node->role == ROLE_PRIMARY)
		return refuse(text, len, WE_ROLE,
			      "this node is the primary (generation %" PRIu64
			      ") and does not accept replication; if the sender is the old "
			      "primary, run 'mdreplctl rejoin' on it",
			      node->generation);
	if (__atomic_load_n(&sh->fence_until_ns, __ATOMIC_RELAXED) > now_real_ns())
		return refuse(text, len, WE_ROLE,
			      "this node is being promoted and accepts no replication");
	if (h->generation < node->generation)
		return refuse(text, len, WE_GENERATION,
			      "the sender's generation %" PRIu64
			      " is lower than this node's %" PRIu64
			      ": the sender is a stale primary and is fenced; run 'mdreplctl "
			      "rejoin' on it",
			      h->generation, node->generation);
	return 0;
}

/* The old primary merging into this one (REJOIN), or the standby driving a
 * switchover (SWITCHOVER): this node must be the primary, and the peer must
 * not outrank it (then the peer should be the primary). */
static uint32_t admit_to_primary(const struct node_state *node, const struct w_hello *h,
				 const char *what, const char *instead, char *text, size_t len)
{
	if (node->role != ROLE_PRIMARY)
		return refuse(text, len, WE_ROLE,
			      "this node is a standby (generation %" PRIu64 "): %s %s",
			      node->generation, what, instead);
	if (h->generation > node->generation)
		return refuse(text, len, WE_GENERATION,
			      "the sender's generation %" PRIu64
			      " is higher than this primary's %" PRIu64
			      ": the sender should be the primary; %s is refused",
			      h->generation, node->generation, what);
	return 0;
}

uint32_t control_admit(const struct settings *s, const struct node_state *node,
		       const struct w_hello *h, const struct syncd_shared *sh, char *text,
		       size_t len)
{
	struct err e;

	if (node->role == ROLE_PRIMARY && h->role == ROLE_PRIMARY &&
	    h->generation > node->generation) {
		log_error("a primary with generation %" PRIu64
			  " contacted this primary (generation "
			  "%" PRIu64 "): this node is fenced; run 'mdreplctl rejoin' here",
			  h->generation, node->generation);
		if (rolechange_fenced(s, true, h->generation, &e) < 0)
			log_error("%s", e.msg);
	}
	switch (h->purpose) {
	case PURPOSE_REPLICATE:
	case PURPOSE_SYNC: return admit_replication(node, h, sh, text, len);
	case PURPOSE_REJOIN:
		return admit_to_primary(node, h, "a rejoin",
					"merges into the primary: run it against the primary", text,
					len);
	case PURPOSE_SWITCHOVER:
		if (h->role == ROLE_PRIMARY)
			return refuse(text, len, WE_ROLE,
				      "a switchover is run on the standby, not on a primary");
		return admit_to_primary(node, h, "a switchover",
					"needs the primary: run 'mdreplctl switchover' on the "
					"standby, with [peer] address naming the primary",
					text, len);
	case PURPOSE_AUDIT:
	case PURPOSE_PROBE: return 0;
	default: return refuse(text, len, WE_PROTOCOL, "unknown session purpose %u", h->purpose);
	}
}

/* ------------------------------------------------------------- journal head */

void control_journal_head(const struct settings *s, uint64_t *journal_id_r, uint64_t *head_r)
{
	struct jhead h;

	jhead_get(s, &h);
	*journal_id_r = h.journal_id;
	*head_r = h.head_lsn;
}

/* ------------------------------------------------------------- switchover */

static int run_hooks(const struct settings *s, enum hook_event ev, struct buf *text)
{
	struct node_state node;
	struct hook_report rep;
	struct hook_env env = {.event = ev, .node = &node, .peer = s->peer.address};
	struct err e;
	int r;

	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, &e) < 0) {
		buf_printf(text, "%s hooks not run: %s\n", hook_event_name(ev), e.msg);
		return -1;
	}
	r = hooks_run(s->hooks.dir, s->hooks.timeout_s * 1000, &env, &rep, &e);
	buf_printf(text, "%s hooks on the peer (%s):\n", hook_event_name(ev), s->hooks.dir);
	hook_report_format(&rep, text);
	if (r < 0)
		buf_printf(text, "  %s\n", e.msg);
	hook_report_free(&rep);
	return r;
}

static uint32_t demote(const struct settings *s, struct buf *text)
{
	struct node_state before, after;
	struct err e;
	int r = rolechange_demote(s, &before, &after, &e);

	if (r < 0) {
		buf_printf(text, "not demoted: %s\n", e.msg);
		return WE_IO;
	}
	if (r == 1) {
		buf_printf(text, "already a standby (generation %" PRIu64 ")\n", after.generation);
		return 0;
	}
	log_info("demoted by a switchover: now a standby, generation %" PRIu64, after.generation);
	buf_printf(text, "demoted: standby, generation %" PRIu64 "\n", after.generation);
	if (rolechange_notify(s, JOURNALD_TIMEOUT_MS, &e) < 0)
		buf_printf(text, "(mdrepl-journald: %s; it stops within a second)\n", e.msg);
	return run_hooks(s, HOOK_DEMOTE, text) < 0 ? WE_IO : 0;
}

/* Runs a request that needs this node to be the primary. */
static uint32_t on_primary(const struct settings *s, const struct node_state *node, const char *cmd,
			   struct buf *text)
{
	if (node->role != ROLE_PRIMARY) {
		buf_printf(text, "refused '%s': this node is not the primary\n", cmd);
		return WE_ROLE;
	}
	if (strcmp(cmd, "freeze") == 0)
		return run_hooks(s, HOOK_FREEZE, text) < 0 ? WE_IO : 0;
	return demote(s, text);
}

static bool known(const char *cmd)
{
	static const char *const cmds[] = {"freeze", "head", "demote", "thaw"};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmd, cmds[i]) == 0)
			return true;
	}
	return false;
}

/* freeze, demote, thaw. */
static uint32_t act(const struct settings *s, const char *cmd, struct buf *text)
{
	struct node_state node;
	struct err e;

	log_info("switchover request: %s", cmd);
	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, &e) < 0) {
		buf_printf(text, "%s\n", e.msg);
		return WE_IO;
	}
	if (strcmp(cmd, "thaw") == 0)
		return run_hooks(s, HOOK_THAW, text) < 0 ? WE_IO : 0;
	return on_primary(s, &node, cmd, text);
}

void control_request(const struct settings *s, const struct w_control *req,
		     struct w_control_rep *rep, struct buf *text)
{
	char *cmd = xstrndup(req->command.p, req->command.len);
	struct node_state node;
	struct err e;

	memset(rep, 0, sizeof(*rep));
	rep->id = req->id;
	buf_reset(text);
	if (!known(cmd)) {
		buf_puts(text, "unknown request (freeze, head, demote, thaw)\n");
		rep->status = WE_PROTOCOL;
	} else if (strcmp(cmd, "head") != 0) {
		rep->status = act(s, cmd, text);
	}
	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, &e) == 0) {
		rep->role = node.role;
		rep->generation = node.generation;
	}
	control_journal_head(s, &rep->journal_id, &rep->head_lsn);
	if (text->len > CONTROL_TEXT_MAX)
		buf_truncate(text, CONTROL_TEXT_MAX);
	rep->text = buf_slice(text);
	free(cmd);
}
