/*
 * standbypos.c — the standby's durable replication position
 * (see standbypos.h). A one-line text file, replaced atomically.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "hash.h"
#include "standbypos.h"

#define POS_FILE "standby.pos"

static int open_state(const char *state_dir, struct err *e)
{
	int fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return err_sys(e, "cannot open state directory %s", state_dir);
	return fd;
}

int standbypos_load(const char *state_dir, struct standby_pos *p, struct err *e)
{
	struct buf text = BUF_INIT;
	char id[2 * NODE_ID_LEN + 1];
	int dfd, r, n;

	memset(p, 0, sizeof(*p));
	dfd = open_state(state_dir, e);
	if (dfd < 0)
		return -1;
	r = fs_read_file(dfd, POS_FILE, &text, 4096, e);
	close(dfd);
	if (r < 0) {
		buf_free(&text);
		return errno == ENOENT ? 0 : -1;
	}
	n = sscanf(buf_cstr(&text),
		   "v1 journal=%" SCNx64 " durable=%" SCNu64 " primary=%32s generation=%" SCNu64
		   " updated=%" SCNu64,
		   &p->journal_id, &p->durable_lsn, id, &p->generation, &p->updated_ns);
	buf_free(&text);
	if (n != 5 || hex_parse(id, p->primary_id, NODE_ID_LEN) < 0) {
		memset(p, 0, sizeof(*p));
		return err_set(e, ERR_CORRUPT, "%s/%s is malformed", state_dir, POS_FILE);
	}
	return 0;
}

static int write_pos(const char *state_dir, const struct standby_pos *p, bool durable,
		     struct err *e)
{
	struct buf text = BUF_INIT;
	char id[2 * NODE_ID_LEN + 1];
	int dfd, r;

	node_id_hex(p->primary_id, id);
	buf_printf(&text,
		   "v1 journal=%016" PRIx64 " durable=%" PRIu64 " primary=%s generation=%" PRIu64
		   " updated=%" PRIu64 "\n",
		   p->journal_id, p->durable_lsn, id, p->generation, p->updated_ns);
	dfd = open_state(state_dir, e);
	if (dfd < 0) {
		buf_free(&text);
		return -1;
	}
	r = durable ? fs_write_atomic(dfd, POS_FILE, text.data, text.len, 0644, e)
		    : fs_write_replace(dfd, POS_FILE, text.data, text.len, 0644, e);
	close(dfd);
	buf_free(&text);
	return r;
}

int standbypos_save(const char *state_dir, const struct standby_pos *p, struct err *e)
{
	return write_pos(state_dir, p, true, e);
}

int standbypos_replace(const char *state_dir, const struct standby_pos *p, struct err *e)
{
	return write_pos(state_dir, p, false, e);
}

int standbypos_remove(const char *state_dir, struct err *e)
{
	int dfd = open_state(state_dir, e), r = 0;

	if (dfd < 0)
		return -1;
	if (unlinkat(dfd, POS_FILE, 0) < 0 && errno != ENOENT)
		r = err_sys(e, "cannot remove %s/%s", state_dir, POS_FILE);
	else
		r = fs_fsync_dir(dfd, NULL, e);
	close(dfd);
	return r;
}
