/*
 * check_coalesce.c — collapsing journal records: each documented chain,
 * order kept, lowest contributing LSN carried, barriers refused; and a
 * random model check: applying the coalesced operations to a model store
 * gives the same files as applying every record, also when the store had
 * already received part of the window (a replay after a broken session).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalesce.h"
#include "testutil.h"

static struct coalesce *co;
static uint64_t next_lsn;

static void setup(void)
{
	co = coalesce_new();
	next_lsn = 1;
}

static void teardown(void)
{
	coalesce_free(&co);
	ck_assert_ptr_null(co);
}

static bool add(enum jrec_type t, const char *a, const char *b)
{
	struct jrec r = {.lsn = next_lsn++, .time_ns = 1000 * next_lsn, .type = t,
			 .path = slice_cstr(a), .path2 = slice_cstr(b ? b : "")};

	if (getenv("COALESCE_TRACE"))
		fprintf(stderr, "rec %llu type %d %s %s\n", (unsigned long long)r.lsn, t, a, b ? b : "");

	return coalesce_add(co, &r);
}

/* Renders the live ops as "put c;rename a>b;..." for compact assertions. */
static const char *render(void)
{
	static char out[4096];
	size_t n, len = 0;
	const struct cop *ops = coalesce_ops(co, &n);

	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		static const char *const names[] = {"put", "rename", "unlink", "meta"};

		if (ops[i].dead)
			continue;
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s %s%s%s@%llu",
					len ? ";" : "", names[ops[i].type], ops[i].path,
					ops[i].to ? ">" : "", ops[i].to ? ops[i].to : "",
					(unsigned long long)ops[i].lsn);
	}
	return out;
}

START_TEST(test_chains)
{
	add(JR_CREATE, "u/new/a", NULL);
	add(JR_RENAME, "u/new/a", "u/cur/a:2,");
	add(JR_RENAME, "u/cur/a:2,", "u/cur/a:2,S");
	/* The intermediate names go too: after a reconnect the window is
	 * replayed and the peer may already hold one of them. */
	ck_assert_str_eq(render(), "unlink u/new/a@2;put u/cur/a:2,S@1;unlink u/cur/a:2,@3");
	coalesce_reset(co);

	add(JR_RENAME, "u/cur/b:2,", "u/cur/b:2,S");
	add(JR_RENAME, "u/cur/b:2,S", "u/.Sent/cur/b:2,S");
	ck_assert_str_eq(render(), "rename u/cur/b:2,>u/.Sent/cur/b:2,S@4;unlink u/cur/b:2,S@5");
	coalesce_reset(co);

	add(JR_CREATE, "u/new/c", NULL);
	add(JR_UNLINK, "u/new/c", NULL);
	ck_assert_str_eq(render(), "unlink u/new/c@7");
	ck_assert_uint_eq(coalesce_count(co), 1);
	coalesce_reset(co);

	add(JR_RENAME, "u/cur/d:2,", "u/cur/d:2,T");
	add(JR_UNLINK, "u/cur/d:2,T", NULL);
	ck_assert_str_eq(render(), "unlink u/cur/d:2,@8;unlink u/cur/d:2,T@9");
	coalesce_reset(co);

	add(JR_CREATE, "u/new/e", NULL);
	add(JR_RENAME, "u/new/e", "u/cur/e:2,S");
	add(JR_UNLINK, "u/cur/e:2,S", NULL);
	ck_assert_str_eq(render(), "unlink u/new/e@11;unlink u/cur/e:2,S@12");
	coalesce_reset(co);

	/* Renamed back where it was: only the last step. */
	add(JR_RENAME, "u/cur/f:2,", "u/cur/f:2,S");
	add(JR_RENAME, "u/cur/f:2,S", "u/cur/f:2,");
	ck_assert_str_eq(render(), "rename u/cur/f:2,S>u/cur/f:2,@14");
}
END_TEST

START_TEST(test_meta_moves_after)
{
	add(JR_META_CHANGED, "u/dovecot-uidlist", NULL);
	add(JR_CREATE, "u/new/a", NULL);
	add(JR_META_CHANGED, "u/dovecot-uidlist", NULL);
	/* One uidlist update, after the delivery it names, with the lower LSN. */
	ck_assert_str_eq(render(), "put u/new/a@2;meta u/dovecot-uidlist@1");
}
END_TEST

START_TEST(test_order_and_duplicates)
{
	add(JR_CREATE, "u/new/a", NULL);
	add(JR_CREATE, "v/new/b", NULL);
	add(JR_CREATE, "u/new/a", NULL); /* CREATE then CLOSE_WRITE */
	add(JR_UNLINK, "w/cur/x", NULL);
	/* The duplicate folds into one put, at the later place. */
	ck_assert_str_eq(render(), "put v/new/b@2;put u/new/a@1;unlink w/cur/x@4");
}
END_TEST

START_TEST(test_rename_over)
{
	add(JR_CREATE, "u/cur/b", NULL);
	add(JR_RENAME, "u/cur/a", "u/cur/b"); /* replaces b */
	ck_assert_str_eq(render(), "rename u/cur/a>u/cur/b@2");
}
END_TEST

START_TEST(test_barriers)
{
	ck_assert(!add(JR_FOLDER_CREATE, "u/.New", NULL));
	ck_assert(!add(JR_RESCAN, "", NULL));
	ck_assert(!add(JR_FOLDER_RENAME, "u/.A", "u/.B"));
	ck_assert(!add(JR_START, "clean", NULL));
	ck_assert_uint_eq(coalesce_count(co), 0);
}
END_TEST

/* A model store: a set of paths holding a content id. As in Maildir, a
 * name belongs to one message for good: path i is variant i % NVAR (new/,
 * cur/ with flags, another folder) of base i / NVAR. */
#define NVAR 3
#define NPATHS 12
struct model {
	int v[NPATHS]; /* 0 = absent */
};

static const char *pname(int i)
{
	static char names[NPATHS][16];

	snprintf(names[i], sizeof(names[i]), "u/cur/p%d", i);
	return names[i];
}

static int pindex(const char *p)
{
	return atoi(strrchr(p, 'p') + 1);
}

/* Applies one record literally to a model store (as a session that sent
 * it uncoalesced, before the connection broke, would have). */
struct rec {
	enum jrec_type t;
	int a, b, content;
};

static void apply_rec(struct model *m, const struct rec *r)
{
	if (r->t == JR_CREATE)
		m->v[r->a] = r->content;
	else if (r->t == JR_RENAME && m->v[r->a]) {
		m->v[r->b] = m->v[r->a];
		m->v[r->a] = 0;
	} else if (r->t == JR_UNLINK)
		m->v[r->a] = 0;
}

/* Random windows of records. The peer starts from the state before the
 * window with any prefix of it already applied (a replay after a broken
 * session), then gets the coalesced operations: it must end up equal to
 * the primary. Renames move a message among its base's names; deliveries
 * use a base never seen (Maildir names are unique). */
START_TEST(test_random_model)
{
	unsigned seed = 4242;

	for (int round = 0; round < 5000; round++) {
		struct model start, truth, peer;
		struct rec recs[12];
		int nrec = 0, want = 1 + rand_r(&seed) % 10;

		coalesce_reset(co);
		bool used[NPATHS / NVAR];

		for (int i = 0; i < NPATHS; i++)
			start.v[i] = 0;
		for (int b = 0; b < NPATHS / NVAR; b++) {
			used[b] = rand_r(&seed) % 2;
			if (used[b] && rand_r(&seed) % 3)
				start.v[b * NVAR + rand_r(&seed) % NVAR] = 100 + b;
		}
		truth = start;
		for (int k = 0; k < want; k++) {
			int a = rand_r(&seed) % NPATHS, b = rand_r(&seed) % NPATHS, t = rand_r(&seed) % 3;
			struct rec r = {0};

			b = a - a % NVAR + b % NVAR; /* same base */
			if (t == 0 && !used[a / NVAR]) {
				used[a / NVAR] = true;
				r = (struct rec){JR_CREATE, a, 0, 1000 + round * 16 + k};
			} else if (t == 1 && truth.v[a] && a != b)
				r = (struct rec){JR_RENAME, a, b, 0};
			else if (t == 2 && truth.v[a])
				r = (struct rec){JR_UNLINK, a, 0, 0};
			else
				continue;
			apply_rec(&truth, &r);
			recs[nrec++] = r;
			add(r.t, pname(r.a), r.t == JR_RENAME ? pname(r.b) : NULL);
		}
		peer = start;
		for (int k = 0, p = nrec ? rand_r(&seed) % (nrec + 1) : 0; k < p; k++)
			apply_rec(&peer, &recs[k]);
		/* Apply the ops as the peer would: a put sends the final content of
		 * its path (as the sender reads the file system then), a rename
		 * moves (or, its source missing and target absent, is a NEED the
		 * sender answers with the content), an unlink removes. */
		{
			size_t n;
			const struct cop *ops = coalesce_ops(co, &n);

			for (size_t i = 0; i < n; i++) {
				const struct cop *o = &ops[i];
				int p = pindex(o->path);

				if (o->dead)
					continue;
				if (o->type == COP_PUT) {
					if (truth.v[p])
						peer.v[p] = truth.v[p];
				} else if (o->type == COP_UNLINK) {
					peer.v[p] = 0;
				} else if (o->type == COP_RENAME) {
					int q = pindex(o->to);
					if (peer.v[p]) {
						peer.v[q] = peer.v[p];
						peer.v[p] = 0;
					} else if (!peer.v[q] && truth.v[q]) {
						peer.v[q] = truth.v[q]; /* NEED: content sent */
					}
				}
			}
		}
		for (int i = 0; i < NPATHS; i++)
			ck_assert_msg(peer.v[i] == truth.v[i], "round %d path %d: peer %d truth %d ops %s",
				      round, i, peer.v[i], truth.v[i], render());
	}
}
END_TEST

static Suite *coalesce_suite(void)
{
	Suite *s = suite_create("coalesce");
	TCase *core = tcase_create("core"), *model = tcase_create("model");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(model, setup, teardown);
	tcase_add_test(core, test_chains);
	tcase_add_test(core, test_meta_moves_after);
	tcase_add_test(core, test_order_and_duplicates);
	tcase_add_test(core, test_rename_over);
	tcase_add_test(core, test_barriers);
	tcase_set_timeout(model, 60); /* a busy 2-core CI machine */
	tcase_add_test(model, test_random_model);
	suite_add_tcase(s, core);
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	return tu_run(coalesce_suite());
}
