/*
 * wiresamples.c — sample protocol messages (see wiresamples.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "wiresamples.h"

#define NSAMPLES 33

static char long_path[WIRE_MAX_PATH + 1];
static uint8_t body[8192];
static struct buf run = BUF_INIT, deflated = BUF_INIT;

size_t ws_count(void)
{
	return NSAMPLES;
}

static struct slice longest(void)
{
	memset(long_path, 'p', WIRE_MAX_PATH);
	for (size_t i = 64; i < WIRE_MAX_PATH; i += 64)
		long_path[i] = '/';
	return (struct slice){long_path, WIRE_MAX_PATH};
}

static void fill_hash(uint8_t *h, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		h[i] = (uint8_t)(seed + 37 * i);
}

static void digest_run(size_t n)
{
	buf_reset(&run);
	for (size_t i = 0; i < n; i++) {
		struct w_digest_entry d = {.folder = i == 1 ? longest() : SLICE_LIT("bob/.Sent")};
		fill_hash(d.digest, sizeof(d.digest), (uint8_t)i);
		if (wire_digest_append(&run, &d) < 0)
			abort();
	}
}

static void list_run(void)
{
	static const int64_t mtimes[] = {INT64_MIN, -1, 0, INT64_MAX};

	buf_reset(&run);
	for (size_t i = 0; i < 4; i++) {
		struct w_list_entry l = {
		    .name = i == 0 ? SLICE_LIT("cur/1700000000.M1P2.host,S=1234:2,RS")
				   : SLICE_LIT("dovecot-uidlist"),
		    .size = i == 3 ? UINT64_MAX : i * 1000,
		    .mtime_ns = mtimes[i],
		    .mode = 0600,
		    .uid = i == 2 ? UINT32_MAX : 1000,
		    .gid = 1000,
		    .nlink = (uint32_t)i + 1,
		    .has_hash = i % 2 == 1,
		};
		if (l.has_hash)
			fill_hash(l.sha256, SHA256_LEN, (uint8_t)(i * 3));
		if (wire_list_append(&run, &l) < 0)
			abort();
	}
}

static void need_run(void)
{
	struct w_need a = {UINT64_MAX, SLICE_LIT("bob/cur/x:2,S")}, b = {7, SLICE_LIT("")};

	buf_reset(&run);
	if (wire_need_append(&run, &a) < 0 || wire_need_append(&run, &b) < 0)
		abort();
}

static uint8_t sample_session(size_t i, union w_msg *m)
{
	switch (i) {
	case 0:
		m->hello = (struct w_hello){SLICE_LIT(WIRE_MAGIC),
					    WIRE_VERSION_MIN,
					    UINT32_MAX,
					    UINT64_MAX,
					    {0},
					    ROLE_PRIMARY,
					    UINT64_MAX,
					    PURPOSE_REPLICATE,
					    UINT64_MAX,
					    UINT64_MAX - 2,
					    UINT64_MAX - 1,
					    UINT64_MAX,
					    SLICE_LIT("mdrepl 0.1.0")};
		fill_hash(m->hello.node_id, NODE_ID_LEN, 9);
		return W_HELLO;
	case 1: m->hello.magic = SLICE_LIT(WIRE_MAGIC); return W_HELLO;
	case 2:
		m->error = (struct w_error){WE_GENERATION,
					    SLICE_LIT("sender generation 3 is lower than ours (4): "
						      "run `mdreplctl rejoin` on the old primary")};
		return W_ERROR;
	case 3: m->error.code = UINT32_MAX; return W_ERROR;
	case 4: m->ping.token = UINT64_MAX; return W_PING;
	case 5: return W_PONG;
	default: return 0;
	}
}

static uint8_t sample_query(size_t i, union w_msg *m)
{
	switch (i) {
	case 6:
		m->digest_req = (struct w_digest_req){1, WF_HASH, SLICE_LIT("")};
		return W_DIGEST_REQ;
	case 7:
		digest_run(3);
		m->digest_rep = (struct w_digest_rep){UINT32_MAX, true, buf_slice(&run)};
		return W_DIGEST_REP;
	case 8: m->digest_rep.id = 5; return W_DIGEST_REP;
	case 9: m->list_req = (struct w_list_req){2, 0, longest()}; return W_LIST_REQ;
	case 10:
		list_run();
		m->list_rep = (struct w_list_rep){3, 0, true, buf_slice(&run)};
		return W_LIST_REP;
	case 11: m->list_rep.status = WE_NOTFOUND; return W_LIST_REP;
	case 12:
		m->sig_req = (struct w_sig_req){4, SLICE_LIT("bob/dovecot-uidlist")};
		return W_SIG_REQ;
	case 13:
		m->sig_rep =
		    (struct w_sig_rep){.id = 4, .size = 12345, .sig = {(const char *)body, 300}};
		fill_hash(m->sig_rep.sha256, SHA256_LEN, 1);
		return W_SIG_REP;
	case 14: m->read_req = (struct w_read_req){5, SLICE_LIT("bob/cur/y")}; return W_READ_REQ;
	case 15:
		m->read_rep = (struct w_read_rep){
		    5, 0, true, 9000, -5, 0644, 8, 8, 0, 4096, {(const char *)body, 4096}};
		return W_READ_REP;
	default: return 0;
	}
}

static uint8_t sample_mutation(size_t i, union w_msg *m)
{
	switch (i) {
	case 16:
		m->put = (struct w_put){.lsn = 42,
					.path = SLICE_LIT("bob/new/1.host"),
					.size = 100,
					.mtime_ns = -1000000001,
					.mode = 0600,
					.uid = 1000,
					.gid = UINT32_MAX,
					.raw_len = 100,
					.body = {(const char *)body, 100}};
		fill_hash(m->put.sha256, SHA256_LEN, 2);
		return W_PUT;
	case 17:
		m->put = (struct w_put){.lsn = UINT64_MAX,
					.path = longest(),
					.size = WIRE_MAX_FILE,
					.mtime_ns = INT64_MAX,
					.flags = WF_CHUNKED,
					.xfer_id = UINT32_MAX};
		return W_PUT;
	case 18:
		buf_reset(&deflated);
		if (wire_deflate(body, sizeof(body), 6, &deflated) != 1)
			abort();
		m->put = (struct w_put){.lsn = 1,
					.path = SLICE_LIT("a/cur/b"),
					.size = sizeof(body),
					.flags = WF_DEFLATE,
					.raw_len = sizeof(body),
					.body = buf_slice(&deflated)};
		return W_PUT;
	case 19: m->data = (struct w_data){7, WF_LAST, 10, {(const char *)body, 10}}; return W_DATA;
	case 20: m->rename = (struct w_rename){.lsn = 9, .from = longest(), .to = longest()}; return W_RENAME;
	case 21:
		m->link = (struct w_link){10,
					  SLICE_LIT("a/cur/1"),
					  SLICE_LIT("b/cur/1"),
					  WF_COPY,
					  77,
					  INT64_MIN,
					  0640,
					  1,
					  2,
					  {0}};
		fill_hash(m->link.sha256, SHA256_LEN, 3);
		return W_LINK;
	case 22: m->unlink = (struct w_unlink){11, SLICE_LIT("a/cur/2:2,S")}; return W_UNLINK;
	case 23:
		m->mkdir = (struct w_mkdir){12, SLICE_LIT("a/.Drafts"), 0700, 5, 6};
		return W_MKDIR;
	case 24: m->rmtree = (struct w_rmtree){13, SLICE_LIT("a/.Trash")}; return W_RMTREE;
	default: return 0;
	}
}

static uint8_t sample_rest(size_t i, union w_msg *m)
{
	switch (i) {
	case 25:
		m->delta = (struct w_delta){.lsn = 14,
					    .path = SLICE_LIT("a/dovecot-uidlist"),
					    .result_size = 999,
					    .mtime_ns = 1,
					    .mode = 0600,
					    .raw_len = 50,
					    .delta = {(const char *)body, 50}};
		fill_hash(m->delta.base_sha256, SHA256_LEN, 4);
		fill_hash(m->delta.result_sha256, SHA256_LEN, 5);
		return W_DELTA;
	case 26:
		m->setattr = (struct w_setattr){15, SLICE_LIT("a/cur/3"), -7, 0644, 0, 0};
		return W_SETATTR;
	case 27: m->batch_end = (struct w_batch_end){UINT64_MAX, UINT64_MAX}; return W_BATCH_END;
	case 28:
		need_run();
		m->ack = (struct w_ack){3, 0, 100, 90, 95, SLICE_LIT(""), buf_slice(&run)};
		return W_ACK;
	case 29:
		m->ack = (struct w_ack){4,
					WE_NOSPACE,
					1,
					1,
					1,
					SLICE_LIT("No space left on device: batch not applied"),
					SLICE_LIT("")};
		return W_ACK;
	case 30:
		digest_run(2);
		m->digest_rep = (struct w_digest_rep){1, false, buf_slice(&run)};
		return W_DIGEST_REP;
	case 31: m->control = (struct w_control){UINT32_MAX, SLICE_LIT("demote")}; return W_CONTROL;
	case 32:
		m->control_rep = (struct w_control_rep){
		    7,
		    WE_IO,
		    ROLE_STANDBY,
		    UINT64_MAX,
		    UINT64_MAX - 1,
		    UINT64_MAX - 2,
		    SLICE_LIT("demoted; hook 20-imap FAILED, exit status 3")};
		return W_CONTROL_REP;
	default: return 0;
	}
}

uint8_t ws_sample(size_t i, union w_msg *m)
{
	uint8_t t;

	memset(m, 0, sizeof(*m));
	for (size_t k = 0; k < sizeof(body); k++)
		body[k] = (uint8_t)("mdrepl sample body "[k % 19] + (k / 1024));
	t = sample_session(i, m);
	if (t == 0)
		t = sample_query(i, m);
	if (t == 0)
		t = sample_mutation(i, m);
	if (t == 0)
		t = sample_rest(i, m);
	if (t == 0)
		abort();
	return t;
}
