/*
 * cmd_role.c — mdreplctl promote and demote (DESIGN §8), and the local
 * half of a promotion that switchover shares.
 *
 * promote [--wait[=SECONDS]] [--force]: probes the peer; refuses while a
 * live primary answers unless it drains first (--wait: until this
 * standby's durable position reaches the primary's journal head) or is
 * forced; refuses when the peer cannot be reached unless forced. Then
 * fences the local syncd (its replication session ends between frames),
 * syncfs()es the mail root, raises the generation above every generation
 * seen and becomes primary under the state lock, waits (bounded) for
 * mdrepl-journald to journal, and runs the promote hooks. Nothing here
 * walks the mail tree.
 *
 * demote [--force]: makes a primary a standby once it is sure the peer
 * has everything this node journaled (a standby's durable position, or
 * what a newer primary made durable of this node's journal); otherwise it
 * refuses unless forced, and a fenced node is pointed to rejoin.
 *
 * Exit status: 0 done, 1 refused or failed (roles unchanged), 2 usage,
 * 3 done but a hook failed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ctl.h"
#include "fsutil.h"
#include "hooks.h"
#include "jhead.h"
#include "peer.h"
#include "rolechange.h"
#include "standbypos.h"

#define DEFAULT_WAIT_S	  60
#define DRAIN_POLL_US	  200000
#define JOURNALD_START_MS 30000 /* mdrepl-journald watching a large tree */

int ctl_hooks(const struct settings *s, enum hook_event ev, const struct node_state *node)
{
	struct hook_env env = {.event = ev, .node = node, .peer = s->peer.address};
	struct hook_report rep;
	struct buf out = BUF_INIT;
	struct err e;
	int r = hooks_run(s->hooks.dir, s->hooks.timeout_s * 1000, &env, &rep, &e);

	hook_report_format(&rep, &out);
	printf("%s hooks (%s):\n%s", hook_event_name(ev), s->hooks.dir, buf_cstr(&out));
	if (r < 0)
		printf("  %s\n", e.msg);
	hook_report_free(&rep);
	buf_free(&out);
	return r;
}

/* ------------------------------------------------------------- promote */

/* Asks the local syncd to fence (on) or unfence; prints what it said. */
static void fence_syncd(const struct settings *s, bool on)
{
	const char *argv[] = {on ? "fence" : "unfence"};
	struct buf out = BUF_INIT;
	struct err e;

	if (ctl_ask(s, "syncd", 1, argv, &out, &e) < 0)
		printf("mdrepl-syncd: not running (%s)%s\n", e.msg,
		       on ? ": no replication session to end" : "");
	else
		printf("mdrepl-syncd: %s", strncmp(buf_cstr(&out), "ok ", 3) == 0
					       ? buf_cstr(&out) + 3
					       : buf_cstr(&out));
	buf_free(&out);
}

/* Makes everything the syncd wrote durable: one syncfs of the mail root's
 * file system (batches are already durable when acknowledged; this covers
 * the apply engine's names of a batch cut short). */
static int sync_mail(const struct settings *s, struct err *e)
{
	int fd = open(s->node.mail_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return err_sys(e, "cannot open mail_root %s", s->node.mail_root);
	r = syncfs(fd);
	close(fd);
	return r < 0 ? err_sys(e, "syncfs of %s failed", s->node.mail_root) : 0;
}

int ctl_promote_here(const struct settings *s, uint64_t peer_generation, uint64_t t0_ms)
{
	struct node_state before, after;
	struct standby_pos pos;
	uint64_t t_fence = now_mono_ms(), t_sync;
	struct err e;
	int r;

	fence_syncd(s, true);
	t_sync = now_mono_ms();
	if (sync_mail(s, &e) < 0 ||
	    (r = rolechange_promote(s, peer_generation, &before, &after, &e)) < 0) {
		fprintf(stderr, "mdreplctl: not promoted: %s\n", e.msg);
		fence_syncd(s, false);
		return EXIT_FAIL;
	}
	fence_syncd(s, false); /* as a primary it refuses replication anyway */
	if (r == 1) {
		printf("already the primary (generation %" PRIu64 ")\n", after.generation);
		return EXIT_OK;
	}
	if (standbypos_load(s->node.state_dir, &pos, &e) < 0)
		memset(&pos, 0, sizeof(pos));
	printf("promoted: primary, generation %" PRIu64 " -> %" PRIu64 " (in %" PRIu64
	       " ms: fence %" PRIu64 " ms, syncfs and state %" PRIu64 " ms)\n",
	       before.generation, after.generation, now_mono_ms() - t0_ms, t_sync - t_fence,
	       now_mono_ms() - t_sync);
	printf("durable here: journal %016" PRIx64 " up to lsn %" PRIu64 " (of the old primary, "
	       "generation %" PRIu64 ")\n",
	       pos.journal_id, pos.durable_lsn, pos.generation);
	t0_ms = now_mono_ms();
	if (rolechange_notify(s, JOURNALD_START_MS, &e) < 0)
		printf("mdrepl-journald: %s; it starts journaling within a second once running\n",
		       e.msg);
	else
		printf("mdrepl-journald: journaling (started in %" PRIu64 " ms)\n",
		       now_mono_ms() - t0_ms);
	return ctl_hooks(s, HOOK_PROMOTE, &after) < 0 ? EXIT_HOOKS : EXIT_OK;
}

/* Waits until this standby has made durable the primary's journal up to
 * the head the primary reports (probed again each round). Returns 0, or
 * -1 with the reason printed into why. */
static int drain(const struct settings *s, struct w_hello *h, unsigned seconds, struct buf *why)
{
	uint64_t deadline = now_mono_ms() + (uint64_t)seconds * 1000;
	struct standby_pos pos;
	struct err e;

	for (;;) {
		if (h->journal_id == 0) {
			buf_printf(why, "the primary at %s reports no journal head",
				   s->peer.address);
			return -1;
		}
		if (standbypos_load(s->node.state_dir, &pos, &e) < 0) {
			buf_printf(why, "%s", e.msg);
			return -1;
		}
		if (pos.journal_id == h->journal_id && pos.durable_lsn >= h->durable_lsn) {
			printf("drained: durable here up to lsn %" PRIu64
			       ", the primary's head is %" PRIu64 "\n",
			       pos.durable_lsn, h->durable_lsn);
			return 0;
		}
		if (now_mono_ms() >= deadline) {
			if (pos.journal_id == h->journal_id)
				buf_printf(why,
					   "%" PRIu64 " records not yet here (durable lsn %" PRIu64
					   ", the primary's head %" PRIu64 ") after %u s",
					   h->durable_lsn - pos.durable_lsn, pos.durable_lsn,
					   h->durable_lsn, seconds);
			else
				buf_printf(why,
					   "this standby does not follow the primary's journal "
					   "%016" PRIx64 " yet (a full sync runs?) after %u s",
					   h->journal_id, seconds);
			return -1;
		}
		usleep(DRAIN_POLL_US);
		if (peer_probe(s, h, &e) < 0) {
			buf_printf(why, "the primary stopped answering while draining: %s", e.msg);
			return -1;
		}
	}
}

/* Decides from a probe of the peer whether to promote. Returns 0 to go
 * on (peer_gen_r: the peer's generation, 0 if unknown), or EXIT_FAIL. */
static int check_peer(const struct settings *s, bool wait, unsigned seconds, bool force,
		      uint64_t *peer_gen_r)
{
	struct buf why = BUF_INIT;
	struct w_hello h;
	struct err e;
	int r = 0;

	*peer_gen_r = 0;
	if (peer_probe(s, &h, &e) < 0) {
		if (!force) {
			fprintf(
			    stderr,
			    "mdreplctl: not promoted: the peer at %s cannot be reached (%s); if "
			    "the primary is down for good, use --force\n",
			    s->peer.address, e.msg);
			return EXIT_FAIL;
		}
		printf("the peer at %s cannot be reached (%s): promoting (--force)\n",
		       s->peer.address, e.msg);
		return 0;
	}
	*peer_gen_r = h.generation;
	if (h.role != ROLE_PRIMARY) {
		printf("the peer at %s is a standby (generation %" PRIu64 ")\n", s->peer.address,
		       h.generation);
		return 0;
	}
	if (!wait && !force) {
		fprintf(stderr,
			"mdreplctl: not promoted: the primary at %s is alive (generation %" PRIu64
			"): use --wait to drain first, or switchover for a planned swap\n",
			s->peer.address, h.generation);
		return EXIT_FAIL;
	}
	if (wait && drain(s, &h, seconds, &why) < 0) {
		if (!force) {
			fprintf(stderr,
				"mdreplctl: not promoted: %s; --force promotes anyway; rejoin will "
				"merge them back\n",
				buf_cstr(&why));
			r = EXIT_FAIL;
		} else {
			printf("%s: promoting anyway (--force)\n", buf_cstr(&why));
		}
	} else if (!wait) {
		printf("the primary at %s is alive (generation %" PRIu64 "): promoting anyway "
		       "(--force); it is fenced as soon as it meets this node\n",
		       s->peer.address, h.generation);
	}
	buf_free(&why);
	return r;
}

int cmd_promote(const struct settings *s, int argc, char **argv)
{
	static const struct option longopts[] = {{"wait", optional_argument, NULL, 'w'},
						 {"force", no_argument, NULL, 'f'},
						 {NULL, 0, NULL, 0}};
	uint64_t t0 = now_mono_ms(), peer_gen;
	unsigned seconds = DEFAULT_WAIT_S;
	bool wait = false, force = false;
	struct node_state node;
	struct err e;
	char *end;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'f') {
			force = true;
			continue;
		}
		if (opt != 'w')
			return ctl_usage("promote [--wait[=SECONDS]] [--force]");
		wait = true;
		if (optarg != NULL) {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || v == 0 || v > 86400)
				return ctl_usage("promote --wait=SECONDS (1-86400)");
			seconds = (unsigned)v;
		}
	}
	if (optind < argc)
		return ctl_usage("promote [--wait[=SECONDS]] [--force]");
	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, &e) < 0)
		return ctl_fail("%s", e.msg);
	if (node.role == ROLE_PRIMARY) {
		printf("this node is already the primary (generation %" PRIu64 ")%s\n",
		       node.generation,
		       node.fenced ? "; it is FENCED: the other node was promoted since: run "
				     "'mdreplctl rejoin' here"
				   : "");
		return EXIT_OK;
	}
	if (check_peer(s, wait, seconds, force, &peer_gen) != 0)
		return EXIT_FAIL;
	return ctl_promote_here(s, peer_gen, t0);
}

/* -------------------------------------------------------------- demote */

/* What the peer has durable of our journal, from a probe (a standby
 * reports its position) or, for a primary that outranks us, a REJOIN
 * HELLO (the position it kept from when it was our standby). Returns 0
 * and fills *have_r, or -1 with why. */
static int peer_has(const struct settings *s, const struct node_state *node, uint64_t jid,
		    uint64_t *have_r, struct buf *why)
{
	struct w_hello h;
	struct peer *p;
	struct err e;

	if (peer_probe(s, &h, &e) < 0) {
		buf_printf(why, "the peer at %s cannot be reached (%s)", s->peer.address, e.msg);
		return -1;
	}
	if (h.role == ROLE_PRIMARY && h.generation <= node->generation) {
		buf_printf(why,
			   "the peer at %s is a primary of generation %" PRIu64 ", not newer "
			   "than this one: demoting would leave the stale one as primary",
			   s->peer.address, h.generation);
		return -1;
	}
	if (h.role == ROLE_PRIMARY) {
		p = peer_open(s, PURPOSE_REJOIN, jid, &h, &e);
		if (p == NULL) {
			buf_printf(why, "cannot ask the new primary what it has: %s", e.msg);
			return -1;
		}
		peer_free(&p);
	}
	*have_r = h.journal_id == jid ? h.durable_lsn : 0;
	return 0;
}

int cmd_demote(const struct settings *s, int argc, char **argv)
{
	static const struct option longopts[] = {{"force", no_argument, NULL, 'f'},
						 {NULL, 0, NULL, 0}};
	struct node_state node, after;
	struct buf why = BUF_INIT;
	struct jhead jh;
	uint64_t have = 0;
	bool force = false;
	struct err e;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt != 'f')
			return ctl_usage("demote [--force]");
		force = true;
	}
	if (optind < argc)
		return ctl_usage("demote [--force]");
	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, &e) < 0)
		return ctl_fail("%s", e.msg);
	if (node.role == ROLE_STANDBY) {
		printf("this node is already a standby (generation %" PRIu64 ")\n",
		       node.generation);
		return EXIT_OK;
	}
	jhead_get(s, &jh);
	if (peer_has(s, &node, jh.journal_id, &have, &why) == 0 && have < jh.head_lsn)
		buf_printf(&why,
			   "the peer has this node's journal up to lsn %" PRIu64 " of %" PRIu64
			   ": %" PRIu64 " records would be dropped",
			   have, jh.head_lsn, jh.head_lsn - have);
	if (why.len > 0 && !force) {
		fprintf(
		    stderr, "mdreplctl: not demoted: %s; %s, or demote --force\n", buf_cstr(&why),
		    node.fenced ? "this node is fenced: run 'mdreplctl rejoin', which merges "
				  "what only this node has"
				: "let the standby catch up (mdreplctl status), use switchover");
		buf_free(&why);
		return EXIT_FAIL;
	}
	if (why.len > 0)
		printf("%s: demoting anyway (--force)\n", buf_cstr(&why));
	else
		printf("the peer has everything journaled here (up to lsn %" PRIu64 ")\n",
		       jh.head_lsn);
	buf_free(&why);
	r = rolechange_demote(s, &node, &after, &e);
	if (r < 0)
		return ctl_fail("not demoted: %s", e.msg);
	printf("demoted: standby, generation %" PRIu64 "\n", after.generation);
	if (rolechange_notify(s, JOURNALD_START_MS, &e) < 0)
		printf("mdrepl-journald: %s; it stops within a second once running\n", e.msg);
	else
		printf("mdrepl-journald: stopped journaling\n");
	return ctl_hooks(s, HOOK_DEMOTE, &after) < 0 ? EXIT_HOOKS : EXIT_OK;
}
