/*
 * cmd_rejoin.c — mdreplctl rejoin [--dry-run]: run on an old primary
 * after the other node was promoted (DESIGN §8). Opens a REJOIN session
 * with the new primary (which reports how far it had this node's journal
 * made durable), judges every message only this node has (rejoin.h),
 * sends what never reached the new primary to its folder there and what
 * the journal cannot account for to the user's "Recovered" folder (linked
 * into a local .Recovered first, so both nodes agree afterwards), waits
 * until all of it is durable there, prints the report, and only then
 * becomes the new primary's standby (its generation, not fenced, no
 * standby position: the new primary's sender does a full compare, which
 * expunges and renames here what the new primary did) and runs the rejoin
 * hooks. --dry-run prints the report and changes nothing.
 *
 * Exit status: 0 rejoined, 1 nothing changed here (run it again), 2 usage,
 * 3 rejoined but a hook failed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "ctl.h"
#include "fsutil.h"
#include "jhead.h"
#include "rejoin.h"
#include "rolechange.h"
#include "safepath.h"
#include "xalloc.h"

#define RECOVERED ".Recovered"

struct rejoin {
	const struct settings *s;
	int rootfd;
	struct md_rules *rules;
	struct client *c;
	struct rj_plan plan;
	uint64_t sent, recovered, expunged, failed;
	struct buf path, to;
};

static void join(struct buf *b, const char *a, const char *z)
{
	buf_reset(b);
	if (a[0] != '\0')
		buf_printf(b, "%s/", a);
	buf_puts(b, z);
}

static bool local_is_dir(int rootfd, const char *path)
{
	int fd = sp_open(rootfd, path, O_RDONLY | O_DIRECTORY, 0, NULL);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Creates folder on the new primary (with its cur/ new/ tmp/ and
 * maildirfolder as they are here), and the folders above it it lacks. */
static int remote_folder(struct rejoin *rj, const char *folder, struct err *e)
{
	static const char *const subs[] = {"cur", "new", "tmp"};
	char *prefix = xstrdup(folder);
	struct buf p = BUF_INIT;
	int r = 0;

	for (char *slash = prefix; r == 0 && slash != NULL;) {
		slash = strchr(slash + 1, '/');
		if (slash != NULL)
			*slash = '\0';
		if (!rj_remote_has(&rj->plan, prefix)) {
			r = client_mkdir(rj->c, 0, prefix, e);
			for (size_t i = 0; r == 0 && i < 3; i++) {
				join(&p, prefix, subs[i]);
				if (local_is_dir(rj->rootfd, buf_cstr(&p)))
					r = client_mkdir(rj->c, 0, buf_cstr(&p), e);
			}
			join(&p, prefix, "maildirfolder");
			if (r == 0 &&
			    faccessat(rj->rootfd, buf_cstr(&p), F_OK, AT_SYMLINK_NOFOLLOW) == 0)
				r = client_put(rj->c, 0, buf_cstr(&p), e) < 0 ? -1 : 0;
			rj_remote_add(&rj->plan, prefix);
		}
		if (slash != NULL)
			*slash = '/';
	}
	free(prefix);
	buf_free(&p);
	return r;
}

/* Gives path (mode and owner of like) to the owner of like when root. */
static void same_owner(int rootfd, const char *path, const struct stat *like)
{
	if (geteuid() == 0 &&
	    fchownat(rootfd, path, like->st_uid, like->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		fprintf(stderr, "mdreplctl: chown %s: %s\n", path, strerror(errno));
}

/* Makes the user's local .Recovered folder like the message's folder. */
static int local_recovered(struct rejoin *rj, const char *folder, const char *rec, struct err *e)
{
	static const char *const subs[] = {"", "cur", "new", "tmp"};
	struct buf p = BUF_INIT;
	struct stat like;
	int fd, r = 0;

	fd = folder[0] ? sp_open(rj->rootfd, folder, O_RDONLY | O_DIRECTORY, 0, e)
		       : dup(rj->rootfd); /* the mail root is the user's Maildir */
	if (fd < 0 || fstat(fd, &like) < 0) {
		if (fd >= 0)
			close(fd);
		return err_sys(e, "cannot open folder %s", folder);
	}
	close(fd);
	for (size_t i = 0; r == 0 && i < 4; i++) {
		join(&p, rec, subs[i]);
		if (subs[i][0] == '\0')
			buf_set(&p, rec, strlen(rec));
		if (!local_is_dir(rj->rootfd, buf_cstr(&p))) {
			r = sp_mkdir(rj->rootfd, buf_cstr(&p), like.st_mode & 07777, e);
			same_owner(rj->rootfd, buf_cstr(&p), &like);
		}
	}
	join(&p, rec, "maildirfolder");
	if (r == 0 && faccessat(rj->rootfd, buf_cstr(&p), F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		fd = sp_open(rj->rootfd, buf_cstr(&p), O_WRONLY | O_CREAT | O_EXCL, 0600, e);
		if (fd < 0 && errno != EEXIST)
			r = -1;
		if (fd >= 0) {
			close(fd);
			same_owner(rj->rootfd, buf_cstr(&p), &like);
		}
	}
	buf_free(&p);
	return r;
}

/* Links the message into the user's .Recovered folder here; sets rj->to to
 * its new path. Returns 0, or -1 (e). */
static int link_recovered(struct rejoin *rj, const struct rj_item *it, struct err *e)
{
	struct buf rec = BUF_INIT;
	struct stat a, b;
	int r;

	join(&rec, it->user, RECOVERED);
	r = local_recovered(rj, it->folder, buf_cstr(&rec), e);
	join(&rj->to, buf_cstr(&rec), it->name);
	if (r == 0 && sp_link(rj->rootfd, buf_cstr(&rj->path), buf_cstr(&rj->to), e) < 0) {
		/* Already linked by an earlier run that did not finish? */
		r = errno == EEXIST && fstatat(rj->rootfd, buf_cstr(&rj->path), &a, 0) == 0 &&
			    fstatat(rj->rootfd, buf_cstr(&rj->to), &b, 0) == 0 &&
			    a.st_ino == b.st_ino
			? 0
			: -1;
	}
	buf_free(&rec);
	return r;
}

/* Sends one message (SEND: where it is; RECOVER: into Recovered).
 * Returns 0 (sent, or counted as failed: a local problem), or -1 when the
 * session failed. */
static int send_item(struct rejoin *rj, const struct rj_item *it, struct err *e)
{
	struct buf rec = BUF_INIT;
	const char *target, *folder = it->folder;
	int r;

	join(&rj->path, it->folder, it->name);
	target = buf_cstr(&rj->path);
	join(&rec, it->user, RECOVERED);
	if (it->fate == RJ_RECOVER && strcmp(it->folder, buf_cstr(&rec)) != 0) {
		if (link_recovered(rj, it, e) < 0) {
			fprintf(stderr, "mdreplctl: cannot keep %s in %s: %s\n", target,
				buf_cstr(&rec), e->msg);
			rj->failed++;
			buf_free(&rec);
			return 0;
		}
		target = buf_cstr(&rj->to);
		folder = buf_cstr(&rec);
	}
	r = remote_folder(rj, folder, e);
	if (r == 0)
		r = client_put(rj->c, 0, target, e);
	if (r == 1) {
		fprintf(stderr, "mdreplctl: cannot send %s: %s\n", target, e->msg);
		rj->failed++;
	} else if (r == 0 && it->fate == RJ_SEND) {
		printf("  sent      %s\n", target);
	} else if (r == 0) {
		printf("  recovered %s (from %s)\n", target, buf_cstr(&rj->path));
	}
	buf_free(&rec);
	return r < 0 ? -1 : 0;
}

static void count(struct rejoin *rj)
{
	for (size_t i = 0; i < rj->plan.n; i++) {
		rj->sent += rj->plan.v[i].fate == RJ_SEND;
		rj->recovered += rj->plan.v[i].fate == RJ_RECOVER;
		rj->expunged += rj->plan.v[i].fate == RJ_EXPUNGED;
	}
}

static void print_plan(struct rejoin *rj, bool dry)
{
	for (size_t i = 0; dry && i < rj->plan.n; i++) {
		const struct rj_item *it = &rj->plan.v[i];

		if (it->fate == RJ_SEND)
			printf("  would send      %s/%s\n", it->folder, it->name);
		else if (it->fate == RJ_RECOVER)
			printf("  would recover   %s/%s -> %s/" RECOVERED "/%s\n", it->folder,
			       it->name, it->user, it->name);
	}
	printf("%" PRIu64 " messages %s back (created here after the new primary's position)\n",
	       rj->sent, dry ? "to send" : "sent");
	printf("%" PRIu64 " messages %s Recovered folders (the journal cannot tell whether the new "
	       "primary had them)\n",
	       rj->recovered, dry ? "to keep in" : "kept in");
	printf("%" PRIu64 " messages here were expunged on the new primary: removed here when this "
	       "node follows\n",
	       rj->expunged);
	printf("%" PRIu64
	       " messages have another name or folder there (flags, moves): renamed here "
	       "when this node follows\n",
	       rj->plan.renamed);
	printf("%" PRIu64
	       " messages only the new primary has: copied here when this node follows\n",
	       rj->plan.incoming);
}

static int execute(struct rejoin *rj, struct err *e)
{
	for (size_t i = 0; i < rj->plan.n; i++) {
		if (rj->plan.v[i].fate != RJ_EXPUNGED && send_item(rj, &rj->plan.v[i], e) < 0)
			return -1;
	}
	if (client_drain(rj->c, (int)rj->s->peer.io_timeout_ms * 3, e) < 0)
		return err_prefix(e, "waiting until the new primary has it all");
	return rj->failed > 0
		   ? err_set(e, EIO, "%" PRIu64 " messages could not be sent", rj->failed)
		   : 0;
}

/* Connects, reads the journal, compares. Returns 0 or -1. */
static int prepare(struct rejoin *rj, const struct jhead *jh, struct w_hello *h, struct err *e)
{
	struct client_opts o = {.set = rj->s,
				.rootfd = rj->rootfd,
				.rules = rj->rules,
				.purpose = PURPOSE_REJOIN,
				.journal_id = jh->journal_id};
	char *jdir = xasprintf("%s/journal", rj->s->node.state_dir);
	char *cpath = xasprintf("%s/digest.cache", rj->s->node.state_dir);
	struct digest_cache *cache = digest_cache_open(cpath);
	struct rj_journal *j;
	uint64_t after;
	int r;

	r = client_connect(&o, &rj->c, h, e);
	if (r == 0) {
		after = h->journal_id == jh->journal_id ? h->durable_lsn : 0;
		printf("rejoin: the new primary %s (generation %" PRIu64
		       ") made durable this node's "
		       "journal %016" PRIx64 " up to lsn %" PRIu64
		       "; the journal here goes to %" PRIu64 "\n",
		       client_peer(rj->c), h->generation, jh->journal_id, after, jh->head_lsn);
		j = rj_journal_read(jdir, rj->rules, jh->journal_id, after, jh->journaling);
		if (rj_journal_blind(j) != NULL)
			printf(
			    "the journal cannot tell what happened after that: %s; every message "
			    "only this node has goes to a Recovered folder\n",
			    rj_journal_blind(j));
		else
			printf("read %" PRIu64 " journal records after lsn %" PRIu64 "\n",
			       rj_journal_records(j), after);
		r = rj_compare(rj->c, rj->rootfd, rj->rules, cache, j, &rj->plan, e);
		rj_journal_free(&j);
	}
	if (r == 0)
		printf("compared %" PRIu64 " folders: %" PRIu64 " differ, in %" PRIu64 " users\n",
		       rj->plan.folders, rj->plan.differing, rj->plan.users);
	digest_cache_free(&cache);
	free(cpath);
	free(jdir);
	return r;
}

static int follow(struct rejoin *rj, const struct w_hello *h)
{
	struct node_state before, after;
	struct err e;

	if (rolechange_follow(rj->s, h->generation, &before, &after, &e) < 0)
		return ctl_fail("everything was sent, but the role change failed: %s; run rejoin "
				"again",
				e.msg);
	printf("this node is now a standby of %s: generation %" PRIu64 " -> %" PRIu64
	       ", not fenced; the new primary's sender makes it equal (a full compare)\n",
	       rj->s->peer.address, before.generation, after.generation);
	if (rolechange_notify(rj->s, 30000, &e) < 0)
		printf("mdrepl-journald: %s\n", e.msg);
	return ctl_hooks(rj->s, HOOK_REJOIN, &after) < 0 ? EXIT_HOOKS : EXIT_OK;
}

int cmd_rejoin(const struct settings *s, int argc, char **argv)
{
	static const struct option longopts[] = {{"dry-run", no_argument, NULL, 'n'},
						 {NULL, 0, NULL, 0}};
	struct rejoin rj = {.s = s};
	struct node_state node;
	struct jhead jh;
	struct w_hello h;
	bool dry = false;
	struct err e;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt != 'n')
			return ctl_usage("rejoin [--dry-run]");
		dry = true;
	}
	if (optind < argc)
		return ctl_usage("rejoin [--dry-run]");
	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, &e) < 0)
		return ctl_fail("%s", e.msg);
	if (node.role == ROLE_STANDBY) {
		printf("this node is already a standby (generation %" PRIu64
		       "): nothing to rejoin\n",
		       node.generation);
		return EXIT_OK;
	}
	rj.rootfd = open(s->node.mail_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rj.rootfd < 0)
		return ctl_fail("cannot open mail_root %s: %s", s->node.mail_root, strerror(errno));
	rj.rules = md_rules_new(s->node.name_separator, &s->journal.exclude);
	jhead_get(s, &jh);
	if (prepare(&rj, &jh, &h, &e) < 0) {
		rc = ctl_fail("rejoin: %s; nothing changed here", e.msg);
	} else {
		count(&rj);
		if (!dry && execute(&rj, &e) < 0)
			rc = ctl_fail(
			    "rejoin: %s; this node is unchanged (still primary, fenced): run "
			    "rejoin again",
			    e.msg);
		else
			rc = EXIT_OK;
		print_plan(&rj, dry);
		client_free(&rj.c);
		if (rc == EXIT_OK && !dry)
			rc = follow(&rj, &h);
	}
	client_free(&rj.c);
	rj_plan_free(&rj.plan);
	md_rules_free(&rj.rules);
	buf_free(&rj.path);
	buf_free(&rj.to);
	close(rj.rootfd);
	return rc;
}
