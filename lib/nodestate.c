/*
 * nodestate.c — role, generation and node id in the state directory
 * (see nodestate.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "hash.h"
#include "nodestate.h"

#define STATE_FILE "node.state"
#define LOCK_FILE "node.lock"

const char *role_name(enum role r)
{
	return r == ROLE_PRIMARY ? "primary" : "standby";
}

int role_parse(const char *s, enum role *r)
{
	if (strcmp(s, "primary") == 0)
		*r = ROLE_PRIMARY;
	else if (strcmp(s, "standby") == 0)
		*r = ROLE_STANDBY;
	else
		return -1;
	return 0;
}

void node_id_hex(const uint8_t id[NODE_ID_LEN], char out[2 * NODE_ID_LEN + 1])
{
	struct buf b = BUF_INIT;

	hex_append(&b, id, NODE_ID_LEN);
	memcpy(out, buf_cstr(&b), 2 * NODE_ID_LEN + 1);
	buf_free(&b);
}

static int open_dir(const char *state_dir, struct err *e)
{
	int fd;

	if (fs_mkdir_p(state_dir, 0700, e) < 0)
		return -1;
	fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, "cannot open state directory %s", state_dir);
	return fd;
}

int nodestate_lock(const char *state_dir, struct err *e)
{
	int dfd = open_dir(state_dir, e), fd;

	if (dfd < 0)
		return -1;
	fd = openat(dfd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	close(dfd);
	if (fd < 0)
		return err_sys(e, "cannot open %s/%s", state_dir, LOCK_FILE);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			err_sys(e, "cannot lock %s/%s", state_dir, LOCK_FILE);
			close(fd);
			return -1;
		}
	}
	return fd;
}

int nodestate_save(const char *state_dir, const struct node_state *st, struct err *e)
{
	struct buf b = BUF_INIT;
	char id[2 * NODE_ID_LEN + 1];
	int dfd, r;

	node_id_hex(st->node_id, id);
	buf_printf(&b,
		   "# mdrepl node state: changed only by mdreplctl and the daemons, by atomic rename.\n"
		   "role=%s\ngeneration=%" PRIu64 "\nnode_id=%s\nmax_seen_generation=%" PRIu64
		   "\nfenced=%s\nfenced_by=%" PRIu64 "\n",
		   role_name(st->role), st->generation, id, st->max_seen_generation,
		   st->fenced ? "yes" : "no", st->fenced_by);
	dfd = open_dir(state_dir, e);
	if (dfd < 0) {
		buf_free(&b);
		return -1;
	}
	r = fs_write_atomic(dfd, STATE_FILE, b.data, b.len, 0644, e);
	close(dfd);
	buf_free(&b);
	return r;
}

static int parse_u64(const char *v, uint64_t *r)
{
	char *end;

	errno = 0;
	*r = strtoull(v, &end, 10);
	return errno != 0 || end == v || *end != '\0' ? -1 : 0;
}

/* Parses one "key=value" line into st; unknown keys are ignored so that a
 * newer version's file can be read by an older one. */
static int parse_line(char *line, struct node_state *st, unsigned *seen)
{
	char *eq = strchr(line, '=');

	if (line[0] == '#' || line[0] == '\0')
		return 0;
	if (eq == NULL)
		return -1;
	*eq = '\0';
	const char *k = line, *v = eq + 1;
	if (strcmp(k, "role") == 0) {
		*seen |= 1;
		return role_parse(v, &st->role);
	}
	if (strcmp(k, "generation") == 0) {
		*seen |= 2;
		return parse_u64(v, &st->generation);
	}
	if (strcmp(k, "node_id") == 0) {
		*seen |= 4;
		return hex_parse(v, st->node_id, NODE_ID_LEN);
	}
	if (strcmp(k, "max_seen_generation") == 0)
		return parse_u64(v, &st->max_seen_generation);
	if (strcmp(k, "fenced") == 0) {
		st->fenced = strcmp(v, "yes") == 0;
		return 0;
	}
	if (strcmp(k, "fenced_by") == 0)
		return parse_u64(v, &st->fenced_by);
	return 0;
}

static int parse_state(const char *path, struct buf *text, struct node_state *st, struct err *e)
{
	char *p = (char *)text->data, *nl;
	unsigned seen = 0, line = 0;

	memset(st, 0, sizeof(*st));
	for (; p != NULL && *p != '\0'; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		line++;
		if (parse_line(p, st, &seen) < 0)
			return err_set(e, ERR_CORRUPT, "%s:%u: malformed line", path, line);
	}
	if (seen != 7)
		return err_set(e, ERR_CORRUPT, "%s: role, generation or node_id missing", path);
	if (st->max_seen_generation < st->generation)
		st->max_seen_generation = st->generation;
	return 0;
}

/* Reads and parses the state file; returns 0, or -1 with errno ENOENT if
 * there is none yet. */
static int read_state(const char *state_dir, struct node_state *st, struct err *e)
{
	struct buf text = BUF_INIT;
	char path[4200];
	int dfd, r;

	snprintf(path, sizeof(path), "%s/%s", state_dir, STATE_FILE);
	dfd = open_dir(state_dir, e);
	if (dfd < 0)
		return -1;
	r = fs_read_file(dfd, STATE_FILE, &text, 64 * 1024, e);
	close(dfd);
	if (r == 0)
		r = parse_state(path, &text, st, e);
	buf_free(&text);
	return r;
}

int nodestate_load(const char *state_dir, const char *initial_role, struct node_state *st,
		   struct err *e)
{
	int lock, r;

	if (read_state(state_dir, st, e) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	/* A new node: create the state once, even if daemons start together. */
	lock = nodestate_lock(state_dir, e);
	if (lock < 0)
		return -1;
	r = read_state(state_dir, st, e);
	if (r < 0 && errno == ENOENT) {
		memset(st, 0, sizeof(*st));
		if (role_parse(initial_role, &st->role) < 0)
			r = err_set(e, ERR_CONFIG, "bad initial_role '%s'", initial_role);
		else if (getrandom(st->node_id, NODE_ID_LEN, 0) != NODE_ID_LEN)
			r = err_sys(e, "getrandom failed");
		else {
			st->generation = 1;
			st->max_seen_generation = 1;
			r = nodestate_save(state_dir, st, e);
		}
	}
	close(lock);
	return r;
}
