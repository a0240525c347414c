/*
 * cmd_status.c — mdreplctl status [--json]: the node's role and
 * generation, and what each local daemon reports (journald, syncclient,
 * syncd) — positions, lag, connection, last error. A table for people;
 * --json for monitoring, one object with the node and each daemon's own
 * status object (null for a daemon that is not running).
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "ctlsock.h"
#include "json.h"
#include "nodestate.h"
#include "standbypos.h"

static const char *const daemons[] = {"journald", "syncclient", "syncd"};
#define NDAEMONS 3

int ctl_ask(const struct settings *s, const char *daemon, int argc, const char *const *argv,
	    struct buf *out, struct err *e)
{
	struct buf name = BUF_INIT, path = BUF_INIT;
	int r;

	buf_printf(&name, "%s.sock", daemon);
	r = ctl_path(s->node.state_dir, buf_cstr(&name), &path, e);
	if (r == 0)
		r = ctl_call(buf_cstr(&path), argc, argv, out, 5000, e);
	buf_free(&name);
	buf_free(&path);
	return r;
}

static void print_json(const struct node_state *node, struct buf replies[NDAEMONS])
{
	struct buf out = BUF_INIT;
	struct json j;
	char id[2 * NODE_ID_LEN + 1];

	node_id_hex(node->node_id, id);
	json_init(&j, &out);
	json_begin_obj(&j);
	json_key(&j, "node");
	json_begin_obj(&j);
	json_key_str(&j, "role", role_name(node->role));
	json_key_u64(&j, "generation", node->generation);
	json_key_str(&j, "node_id", id);
	json_key_bool(&j, "fenced", node->fenced);
	json_end_obj(&j);
	for (int i = 0; i < NDAEMONS; i++) {
		json_key(&j, daemons[i]);
		if (replies[i].len > 0 && replies[i].data[0] == '{') {
			/* The daemon's own object, embedded as it sent it. */
			buf_truncate(&replies[i], strcspn(buf_cstr(&replies[i]), "\n"));
			j.first[j.depth] = false;
			buf_put_slice(&out, buf_slice(&replies[i]));
		} else {
			json_null(&j);
		}
	}
	json_end_obj(&j);
	printf("%s\n", buf_cstr(&out));
	buf_free(&out);
}

static void line(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(const char *label, const char *fmt, ...)
{
	va_list ap;

	printf("%-12s ", label);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void print_error(const char *obj)
{
	struct buf v = BUF_INIT;

	if (json_lookup(obj, "last_error", &v) == 0 && v.len > 0)
		line("", "last error: %s", buf_cstr(&v));
	buf_free(&v);
}

static void table_journald(const char *o)
{
	line("journald", "running, head lsn %.0f (durable %.0f), %.0f watches, %.0f overflows, "
			 "%.0f rescans%s",
	     json_lookup_num(o, "head_lsn", 0), json_lookup_num(o, "durable_lsn", 0),
	     json_lookup_num(o, "watches", 0), json_lookup_num(o, "overflows", 0),
	     json_lookup_num(o, "rescans", 0),
	     json_lookup_bool(o, "needs_full_sync") ? ", STANDBY NEEDS A FULL SYNC" : "");
	print_error(o);
}

static void table_syncclient(const char *o)
{
	struct buf state = BUF_INIT, peer = BUF_INIT;

	json_lookup(o, "state", &state);
	json_lookup(o, "peer", &peer);
	line("syncclient", "%s%s %s", buf_cstr(&state),
	     json_lookup_bool(o, "fenced") ? " (FENCED: the peer has a higher generation; run "
					     "'mdreplctl rejoin')"
					   : "",
	     buf_cstr(&peer));
	line("", "lsn read %.0f, sent %.0f, received %.0f, applied %.0f, durable %.0f",
	     json_lookup_num(o, "read_lsn", 0), json_lookup_num(o, "sent_lsn", 0),
	     json_lookup_num(o, "received_lsn", 0), json_lookup_num(o, "applied_lsn", 0),
	     json_lookup_num(o, "durable_lsn", 0));
	line("", "lag %.0f records, %.3f s, %.0f bytes; %.1f records/s, %.0f bytes/s on the wire",
	     json_lookup_num(o, "lag_records", 0), json_lookup_num(o, "lag_seconds", 0),
	     json_lookup_num(o, "lag_bytes", 0), json_lookup_num(o, "records_per_s", 0),
	     json_lookup_num(o, "wire_bytes_per_s", 0));
	if (json_lookup_num(o, "deferred", 0) > 0)
		line("", "%.0f files waiting to be readable", json_lookup_num(o, "deferred", 0));
	print_error(o);
	buf_free(&state);
	buf_free(&peer);
}

static void table_syncd(const char *o)
{
	struct buf peer = BUF_INIT;

	json_lookup(o, "peer", &peer);
	line("syncd", "listening on port %.0f, %s", json_lookup_num(o, "port", 0),
	     json_lookup_bool(o, "connected") ? "primary connected" : "no primary connected");
	if (json_lookup_bool(o, "connected"))
		line("", "from %s", buf_cstr(&peer));
	line("", "durable lsn %.0f, applied %.0f, received %.0f; %.0f batches, last %.1f s ago",
	     json_lookup_num(o, "durable_lsn", 0), json_lookup_num(o, "applied_lsn", 0),
	     json_lookup_num(o, "received_lsn", 0), json_lookup_num(o, "batches", 0),
	     json_lookup_num(o, "last_batch_age_s", -1));
	if (json_lookup_num(o, "batches", 0) > 0)
		line("", "commit took %.1f ms, longest %.1f ms", json_lookup_num(o, "last_commit_us", 0) / 1e3,
		     json_lookup_num(o, "max_commit_us", 0) / 1e3);
	print_error(o);
	buf_free(&peer);
}

static void print_table(const struct settings *s, const struct node_state *node,
			struct buf replies[NDAEMONS])
{
	void (*show[NDAEMONS])(const char *) = {table_journald, table_syncclient, table_syncd};
	char id[2 * NODE_ID_LEN + 1];

	node_id_hex(node->node_id, id);
	line("node", "%s, generation %" PRIu64 ", id %s%s", role_name(node->role),
	     node->generation, id, node->fenced ? ", FENCED" : "");
	for (int i = 0; i < NDAEMONS; i++) {
		if (replies[i].len > 0 && replies[i].data[0] == '{')
			show[i](buf_cstr(&replies[i]));
		else
			line(daemons[i], "not running");
	}
	(void)s;
}

int cmd_status(const struct settings *s, int argc, char **argv)
{
	static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
						 {NULL, 0, NULL, 0}};
	const char *req[] = {"status"};
	struct buf replies[NDAEMONS];
	struct node_state node;
	struct err e;
	bool json = false;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "j", longopts, NULL)) != -1) {
		if (opt != 'j') {
			fprintf(stderr, "usage: mdreplctl status [--json]\n");
			return 2;
		}
		json = true;
	}
	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, &e) < 0) {
		fprintf(stderr, "mdreplctl: %s\n", e.msg);
		return 1;
	}
	for (int i = 0; i < NDAEMONS; i++) {
		buf_init(&replies[i], 0);
		if (ctl_ask(s, daemons[i], 1, req, &replies[i], &e) < 0)
			buf_reset(&replies[i]);
	}
	if (json)
		print_json(&node, replies);
	else
		print_table(s, &node, replies);
	for (int i = 0; i < NDAEMONS; i++)
		buf_free(&replies[i]);
	return 0;
}
