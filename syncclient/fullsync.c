/*
 * fullsync.c — mdrepl-syncclient --all / --user / --folder (see fullsync.h).
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "fsutil.h"
#include "fullsync.h"
#include "log.h"
#include "nodestate.h"
#include "reconcile.h"
#include "safepath.h"

struct progress {
	struct client *c;
	uint64_t start_ms, last_ms;
	bool tty;
};

static void human(double bytes, char *out, size_t len)
{
	const char *units[] = {"B", "KB", "MB", "GB", "TB"};
	int u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static void show_progress(uint64_t done, uint64_t total, void *ctx)
{
	struct progress *p = ctx;
	const struct client_stats *st = client_get_stats(p->c);
	uint64_t now = now_mono_ms(), elapsed = now - p->start_ms;
	double rate = elapsed ? (double)st->put_bytes * 1000.0 / (double)elapsed : 0;
	char sent[32], r[32];

	if (!p->tty || (now - p->last_ms < 200 && done < total))
		return;
	p->last_ms = now;
	human((double)st->put_bytes, sent, sizeof(sent));
	human(rate, r, sizeof(r));
	fprintf(stderr, "\r  folders %" PRIu64 "/%" PRIu64 "  files %" PRIu64 "  %s  %s/s  ETA %" PRIu64
			"s   ",
		done, total, st->puts + st->renames + st->links + st->copies, sent, r,
		done ? elapsed * (total - done) / done / 1000 : 0);
	if (done == total)
		fputc('\n', stderr);
}

static void summary(struct client *c, const struct reconcile_stats *rs, uint64_t ms,
		    bool dry_run)
{
	const struct client_stats *st = client_get_stats(c);
	char bytes[32], wire[32];

	human((double)st->put_bytes, bytes, sizeof(bytes));
	human((double)client_wire_out(c), wire, sizeof(wire));
	printf("%s in %.1f s: sent %" PRIu64 " files (%s), renamed %" PRIu64 ", linked %" PRIu64
	       ", copied %" PRIu64 ", deleted %" PRIu64 ", %" PRIu64 " metadata deltas, %" PRIu64
	       " attribute updates; folders: %" PRIu64 " compared, %" PRIu64 " differed, %" PRIu64
	       " created, %" PRIu64 " removed; %s on the wire\n",
	       dry_run ? "dry run done" : "done", (double)ms / 1000.0, st->puts, bytes, st->renames,
	       st->links, st->copies, st->unlinks, st->deltas, st->setattrs, rs->folders_compared,
	       rs->folders_differing, rs->folders_created, rs->folders_removed, wire);
	fflush(stdout);
}

static int refuse_on_standby(const struct settings *s)
{
	struct node_state node;
	struct err e;

	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, &e) < 0) {
		log_error("%s", e.msg);
		return -1;
	}
	if (node.role != ROLE_PRIMARY) {
		log_error("this node is a %s: run the sync on the primary (mdreplctl status shows "
			  "the role)",
			  role_name(node.role));
		return -1;
	}
	return 0;
}

int fullsync_run(const struct settings *s, const char *prefix, bool dry_run)
{
	struct client_opts co = {.set = s, .purpose = PURPOSE_SYNC, .dry_run = dry_run};
	struct reconcile_opts ro = {0};
	struct reconcile_stats rs;
	struct progress pg = {.tty = isatty(2)};
	struct buf cache = BUF_INIT;
	struct client *c = NULL;
	struct w_hello peer;
	struct err e;
	int rc = 1;

	if (prefix[0] != '\0' && sp_check(slice_cstr(prefix), &e) < 0) {
		log_error("bad path '%s': %s", prefix, e.msg);
		return 1;
	}
	if (refuse_on_standby(s) < 0)
		return 1;
	co.rootfd = open(s->node.mail_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (co.rootfd < 0) {
		log_error("cannot open mail_root %s: %m", s->node.mail_root);
		return 1;
	}
	co.rules = md_rules_new(s->node.name_separator, &s->journal.exclude);
	buf_printf(&cache, "%s/digest.cache", s->node.state_dir);
	ro.cache = digest_cache_open(buf_cstr(&cache));
	ro.rootfd = co.rootfd;
	ro.rules = co.rules;
	ro.progress = show_progress;
	ro.progress_ctx = &pg;
	pg.start_ms = now_mono_ms();
	if (client_connect(&co, &c, &peer, &e) < 0) {
		log_error("%s", e.msg);
		goto out;
	}
	pg.c = c;
	log_info("synchronising '%s' to %s", prefix[0] ? prefix : "(all)", client_peer(c));
	if (reconcile_tree(c, &ro, prefix, &rs, &e) < 0 ||
	    client_drain(c, (int)s->peer.io_timeout_ms, &e) < 0) {
		log_error("sync failed: %s", e.msg);
		goto out;
	}
	summary(c, &rs, now_mono_ms() - pg.start_ms, dry_run);
	rc = 0;
out:
	client_free(&c);
	digest_cache_free(&ro.cache);
	md_rules_free((struct md_rules **)&co.rules);
	close(co.rootfd);
	buf_free(&cache);
	return rc;
}
