/*
 * jhead.c — the local journal's id and head (see jhead.h).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlsock.h"
#include "jhead.h"
#include "journal.h"
#include "json.h"
#include "xalloc.h"

#define JOURNALD_TIMEOUT_MS 2000

/* Asks mdrepl-journald. Returns 0 if it answered and is journaling. */
static int from_journald(const struct settings *s, struct jhead *h)
{
	const char *argv[] = {"status"};
	struct buf path = BUF_INIT, out = BUF_INIT, id = BUF_INIT;
	struct err e;
	int r = -1;

	if (ctl_path(s->node.state_dir, "journald.sock", &path, &e) == 0 &&
	    ctl_call(buf_cstr(&path), 1, argv, &out, JOURNALD_TIMEOUT_MS, &e) == 0 &&
	    json_lookup_bool(buf_cstr(&out), "journaling") &&
	    json_lookup(buf_cstr(&out), "journal_id", &id) == 0 &&
	    sscanf(buf_cstr(&id), "%" SCNx64, &h->journal_id) == 1) {
		h->head_lsn = (uint64_t)json_lookup_num(buf_cstr(&out), "head_lsn", 0);
		h->journaling = true;
		r = 0;
	}
	buf_free(&path);
	buf_free(&out);
	buf_free(&id);
	return r;
}

/* Reads the journal files from the acknowledged position to the end. */
static void from_files(const struct settings *s, struct jhead *h)
{
	char *jdir = xasprintf("%s/journal", s->node.state_dir);
	uint64_t acked_id = 0, acked = 0;
	struct jreader *rd;
	struct jrec rec;
	struct err e;
	bool gap;

	journal_read_acked(jdir, &acked_id, &acked, NULL);
	rd = jreader_open(jdir, acked, &gap, &e);
	if (rd != NULL && jreader_journal_id(rd) != acked_id) {
		jreader_free(&rd);
		rd = jreader_open(jdir, 0, &gap, &e);
	}
	if (rd != NULL) {
		h->journal_id = jreader_journal_id(rd);
		h->head_lsn = h->journal_id == acked_id ? acked : 0;
		while (jreader_next(rd, &rec, &e) == 1)
			h->head_lsn = rec.lsn;
		jreader_free(&rd);
	}
	free(jdir);
}

void jhead_get(const struct settings *s, struct jhead *h)
{
	memset(h, 0, sizeof(*h));
	if (from_journald(s, h) < 0) {
		memset(h, 0, sizeof(*h));
		from_files(s, h);
	}
}
