/*
 * peer.c — probe and switchover sessions with the peer (see peer.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "fsutil.h"
#include "nodestate.h"
#include "peer.h"
#include "xalloc.h"

struct peer {
	struct tls_ctx *tls;
	struct conn *conn;
	uint32_t next_id;
};

void peer_free(struct peer **pp)
{
	struct peer *p = *pp;

	if (p == NULL)
		return;
	conn_free(&p->conn);
	tls_ctx_free(&p->tls);
	free(p);
	*pp = NULL;
}

const char *peer_name(const struct peer *p)
{
	return conn_peer(p->conn);
}

struct peer *peer_open(const struct settings *s, uint32_t purpose, uint64_t journal_id,
		       struct w_hello *h, struct err *e)
{
	struct peer *p = xcalloc(1, sizeof(*p));
	struct node_state node;
	struct w_hello mine = {
	    .magic = SLICE_LIT(WIRE_MAGIC),
	    .ver_min = WIRE_VERSION_MIN,
	    .ver_max = WIRE_VERSION_MAX,
	    .purpose = purpose,
	    .journal_id = journal_id,
	    .software = SLICE_LIT(PACKAGE_NAME " " PACKAGE_VERSION),
	};

	p->next_id = 1;
	if (s->peer.address[0] == '\0') {
		err_set(e, ERR_CONFIG, "[peer] address is not set");
		goto fail;
	}
	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, e) < 0)
		goto fail;
	memcpy(mine.node_id, node.node_id, NODE_ID_LEN);
	mine.role = node.role;
	mine.generation = node.generation;
	p->tls = tls_ctx_new(s, false, e);
	if (p->tls == NULL || conn_connect(s, p->tls, s->peer.address, &p->conn, e) < 0 ||
	    conn_hello(p->conn, &mine, h, (int)s->peer.connect_timeout_ms, e) < 0)
		goto fail;
	h->magic = SLICE_LIT(WIRE_MAGIC);
	h->software = (struct slice){"", 0};
	return p;
fail:
	peer_free(&p);
	return NULL;
}

int peer_probe(const struct settings *s, struct w_hello *h, struct err *e)
{
	struct peer *p = peer_open(s, PURPOSE_PROBE, 0, h, e);

	if (p == NULL)
		return -1;
	peer_free(&p);
	return 0;
}

int peer_control(struct peer *p, const char *command, int timeout_ms, struct w_control_rep *rep,
		 struct buf *text, struct err *e)
{
	union w_msg m = {.control = {.id = p->next_id++, .command = slice_cstr(command)}};
	uint64_t deadline = now_mono_ms() + (uint64_t)timeout_ms;
	uint32_t id = m.control.id;

	if (conn_send(p->conn, W_CONTROL, &m, timeout_ms, e) < 0)
		return -1;
	for (;;) {
		struct w_frame f;
		uint64_t now = now_mono_ms();

		if (now >= deadline)
			return err_set(e, ETIMEDOUT, "%s did not answer '%s' within %d ms",
				       conn_peer(p->conn), command, timeout_ms);
		if (conn_recv(p->conn, &f, &m, (int)(deadline - now), e) < 0)
			return err_prefix(e, "waiting for the answer to '%s'", command);
		if (f.type == W_PING) {
			/* m still holds the PING: a PONG echoes its token */
			if (conn_send(p->conn, W_PONG, &m, timeout_ms, e) < 0)
				return -1;
			continue;
		}
		if (f.type == W_ERROR)
			return err_set(e, ERR_REFUSED, "%s: %.*s (%s)", conn_peer(p->conn),
				       (int)m.error.text.len, m.error.text.p,
				       wire_errcode_name(m.error.code));
		if (f.type != W_CONTROL_REP || m.control_rep.id != id)
			return err_set(e, ERR_PROTO, "%s sent %s while we waited for CONTROL_REP",
				       conn_peer(p->conn), wire_type_name(f.type));
		*rep = m.control_rep;
		buf_set(text, rep->text.p, rep->text.len);
		rep->text = buf_slice(text);
		return 0;
	}
}
