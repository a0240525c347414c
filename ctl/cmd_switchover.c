/*
 * cmd_switchover.c — mdreplctl switchover [--wait=SECONDS]: the planned,
 * zero-loss role swap for rolling upgrades (DESIGN §8), run on the standby
 * (the node that becomes primary), driving its primary through a
 * SWITCHOVER session (docs/protocol.md §6):
 *
 *   1. freeze: the primary runs its freeze hooks (stop deliveries, IMAP);
 *   2. drain: wait until this standby has made durable the primary's whole
 *      journal (its head, unchanged for a moment, so that the last events
 *      of the frozen services are in it);
 *   3. demote: the primary becomes a standby and runs its demote hooks;
 *   4. promote here, as `mdreplctl promote` does, then the thaw hooks here;
 *   5. wait until replication runs the other way, less than a second behind
 *      (or with nothing left to send), and report.
 *
 * A failure before the demote asks the primary to thaw and leaves both
 * roles as they were. Exit status: 0 done, 1 not done (roles unchanged, or
 * a message saying exactly what state the pair is in), 2 usage, 3 done
 * but a hook failed or the reverse replication did not catch up in time.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ctl.h"
#include "fsutil.h"
#include "json.h"
#include "peer.h"
#include "standbypos.h"

#define DEFAULT_WAIT_S 60
#define POLL_US	       100000
#define HEAD_STABLE_MS 500 /* the frozen primary's journal head must rest this long */
#define MAX_LAG_S 1.0	   /* replication to the old primary counts as caught up */

struct sw {
	const struct settings *s;
	struct peer *p;
	unsigned seconds;
	int hook_ms; /* for a request that runs the primary's hooks */
	struct w_control_rep rep;
	struct buf text;
	bool hooks_failed;
};

/* Sends one request; prints the primary's account of it. Returns 0 (the
 * request was answered; sw->rep.status says how it went) or -1. */
static int request(struct sw *sw, const char *cmd, int timeout_ms)
{
	struct err e;

	if (peer_control(sw->p, cmd, timeout_ms, &sw->rep, &sw->text, &e) < 0) {
		fprintf(stderr, "mdreplctl: '%s' on the primary: %s\n", cmd, e.msg);
		return -1;
	}
	if (sw->text.len > 0)
		printf("%s", buf_cstr(&sw->text));
	return 0;
}

/* Before the demote: asks the primary to thaw, and gives up. */
static int abort_switchover(struct sw *sw, const char *why)
{
	fprintf(stderr, "mdreplctl: switchover aborted: %s\n", why);
	if (sw->p != NULL && request(sw, "thaw", sw->hook_ms) == 0 && sw->rep.status == 0)
		fprintf(stderr, "mdreplctl: the primary thawed; roles are unchanged\n");
	else
		fprintf(stderr, "mdreplctl: the primary did not confirm its thaw hooks: check the "
				"mail services there; roles are unchanged\n");
	return EXIT_FAIL;
}

/* Step 2: waits until this standby has the primary's journal up to a
 * head that stayed put for HEAD_STABLE_MS. Returns 0 or -1 (why set). */
static int drain(struct sw *sw, struct buf *why)
{
	uint64_t deadline = now_mono_ms() + (uint64_t)sw->seconds * 1000, since = 0, head = 0;
	int io = (int)sw->s->peer.io_timeout_ms;
	struct standby_pos pos = {0};
	struct err e;

	for (;;) {
		if (request(sw, "head", io) < 0) {
			buf_puts(why, "lost the primary while draining");
			return -1;
		}
		if (since == 0 || sw->rep.head_lsn != head) {
			head = sw->rep.head_lsn;
			since = now_mono_ms();
		}
		if (standbypos_load(sw->s->node.state_dir, &pos, &e) < 0) {
			buf_printf(why, "%s", e.msg);
			return -1;
		}
		if (pos.journal_id == sw->rep.journal_id && pos.durable_lsn >= head &&
		    now_mono_ms() - since >= HEAD_STABLE_MS) {
			printf("drained: durable here up to lsn %" PRIu64
			       " of the primary's journal "
			       "%016" PRIx64 "\n",
			       pos.durable_lsn, sw->rep.journal_id);
			return 0;
		}
		if (now_mono_ms() >= deadline) {
			buf_printf(why,
				   "this standby has the primary's journal up to lsn %" PRIu64
				   " of %" PRIu64 " after %u s%s",
				   pos.journal_id == sw->rep.journal_id ? pos.durable_lsn : 0, head,
				   sw->seconds,
				   pos.journal_id == sw->rep.journal_id
				       ? ""
				       : " (it does not follow that journal yet)");
			return -1;
		}
		usleep(POLL_US);
	}
}

/* Step 3. Returns 0 once the primary is a standby, -1 if it is not (a
 * thaw may follow if sw->p is open), -2 if nobody can tell (said why). */
static int demote_primary(struct sw *sw)
{
	struct w_hello h;
	struct err e;

	if (request(sw, "demote", sw->hook_ms) == 0) {
		if (sw->rep.role != ROLE_STANDBY)
			return -1;
		sw->hooks_failed |= sw->rep.status != 0;
		return 0;
	}
	/* The session broke: ask afresh what the primary is now. */
	peer_free(&sw->p);
	if (peer_probe(sw->s, &h, &e) < 0) {
		fprintf(stderr,
			"mdreplctl: cannot tell whether the primary at %s demoted (%s): run "
			"'mdreplctl status' there before anything else\n",
			sw->s->peer.address, e.msg);
		return -2;
	}
	if (h.role == ROLE_STANDBY) {
		sw->rep.generation = h.generation;
		return 0;
	}
	sw->p = peer_open(sw->s, PURPOSE_SWITCHOVER, 0, &h, &e);
	return -1;
}

/* Step 5: this node's syncclient is connected (its full compare done) and
 * has nothing left, or less than a second, to send: with the mail services
 * already running here, "no lag at all" may never be seen. */
static bool caught_up(const struct settings *s, double *lag_r, double *records_r)
{
	const char *argv[] = {"status"};
	struct buf out = BUF_INIT;
	struct err e;
	bool ok = false;

	if (ctl_ask(s, "syncclient", 1, argv, &out, &e) == 0) {
		*lag_r = json_lookup_num(buf_cstr(&out), "lag_seconds", -1);
		*records_r = json_lookup_num(buf_cstr(&out), "lag_records", -1);
		ok = json_lookup_bool(buf_cstr(&out), "connected") && *lag_r >= 0 &&
		     (*records_r == 0 || *lag_r < MAX_LAG_S);
	}
	buf_free(&out);
	return ok;
}

static int wait_reverse(const struct settings *s, unsigned seconds)
{
	uint64_t deadline = now_mono_ms() + (uint64_t)seconds * 1000, t0 = now_mono_ms();
	double lag = -1, records = -1;

	while (!caught_up(s, &lag, &records)) {
		if (now_mono_ms() >= deadline) {
			fprintf(stderr,
				"mdreplctl: replication to %s has not caught up after %u s: "
				"see 'mdreplctl status'\n",
				s->peer.address, seconds);
			return -1;
		}
		usleep(POLL_US);
	}
	printf("replicating to %s: lag %.0f records, %.3f s (after %.1f s)\n", s->peer.address,
	       records, lag, (double)(now_mono_ms() - t0) / 1000.0);
	return 0;
}

static int parse(int argc, char **argv, unsigned *seconds)
{
	static const struct option longopts[] = {{"wait", required_argument, NULL, 'w'},
						 {NULL, 0, NULL, 0}};
	char *end;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		unsigned long v;

		if (opt != 'w')
			return -1;
		v = strtoul(optarg, &end, 10);
		if (*optarg == '\0' || *end != '\0' || v == 0 || v > 86400)
			return -1;
		*seconds = (unsigned)v;
	}
	return optind < argc ? -1 : 0;
}

int cmd_switchover(const struct settings *s, int argc, char **argv)
{
	struct sw sw = {.s = s, .seconds = DEFAULT_WAIT_S};
	uint64_t t0 = now_mono_ms();
	struct buf why = BUF_INIT;
	struct node_state node;
	struct w_hello h;
	struct err e;
	int rc, d = 0;

	if (parse(argc, argv, &sw.seconds) < 0)
		return ctl_usage("switchover [--wait=SECONDS]");
	sw.hook_ms = (int)(s->peer.io_timeout_ms + s->hooks.timeout_s * 1000 * 8);
	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, &e) < 0)
		return ctl_fail("%s", e.msg);
	if (node.role == ROLE_PRIMARY)
		return ctl_fail("this node is the primary: run switchover on the standby, the node "
				"that is to become primary");
	sw.p = peer_open(s, PURPOSE_SWITCHOVER, 0, &h, &e);
	if (sw.p == NULL)
		return ctl_fail("switchover not started: %s", e.msg);
	printf("switchover: %s (primary, generation %" PRIu64 ") -> this node\n", peer_name(sw.p),
	       h.generation);
	if (request(&sw, "freeze", sw.hook_ms) < 0 || sw.rep.status != 0)
		rc = abort_switchover(&sw, "the primary's freeze hooks failed");
	else if (drain(&sw, &why) < 0)
		rc = abort_switchover(&sw, buf_cstr(&why));
	else if ((d = demote_primary(&sw)) == -2)
		rc = EXIT_FAIL;
	else if (d < 0)
		rc = sw.p ? abort_switchover(&sw, "the primary did not demote")
			  : ctl_fail("the primary did not demote and cannot be thawed: check it");
	else
		rc = -1;
	peer_free(&sw.p);
	buf_free(&why);
	if (rc != -1) {
		buf_free(&sw.text);
		return rc;
	}
	printf("the old primary is now a standby (generation %" PRIu64 ")\n", sw.rep.generation);
	rc = ctl_promote_here(s, sw.rep.generation, now_mono_ms());
	buf_free(&sw.text);
	if (rc == EXIT_FAIL)
		return ctl_fail(
		    "the old primary is demoted but this node was not promoted: fix the "
		    "cause and run 'mdreplctl promote --force' here (or on the other node)");
	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, &e) < 0 ||
	    ctl_hooks(s, HOOK_THAW, &node) < 0 || sw.hooks_failed)
		rc = EXIT_HOOKS;
	if (wait_reverse(s, sw.seconds) < 0)
		rc = EXIT_HOOKS;
	printf("switchover %s in %.1f s\n", rc == EXIT_OK ? "done" : "done, with warnings above",
	       (double)(now_mono_ms() - t0) / 1000.0);
	return rc;
}
