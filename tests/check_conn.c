/*
 * check_conn.c — the transport over real sockets on loopback: a forked
 * server child and the test process as client. Plaintext and TLS round
 * trips of many frames (one near the 1 MiB limit) through the event-loop
 * API; mutual-auth refusals (no client certificate, a certificate from
 * another CA, fingerprint pins both ways), plaintext/TLS mismatches with
 * their clear errors, key file permissions, version negotiation, the
 * plaintext-off-loopback policy, malformed input, and timeouts. Every
 * wait is bounded (poll timeouts, alarm() in the child).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "certs.h"
#include "conn.h"
#include "fsutil.h"
#include "testutil.h"
#include "wiresamples.h"

#define WAIT_MS 10000

static char dir[512];	   /* certificates: ca, primary, standby */
static char other[600];	   /* a second CA with its own "primary" */
static struct settings cs; /* client settings */
static struct settings ss; /* server settings */

static void set(struct settings *s, const char *assignment)
{
	struct err e;

	ck_assert_msg(conf_override(s, assignment, &e) == 0, "%s", e.msg);
}

static void setf(struct settings *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void setf(struct settings *s, const char *fmt, ...)
{
	char line[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	set(s, line);
}

static void use_tls(struct settings *s, const char *cadir, const char *node, const char *keydir)
{
	setf(s, "tls.ca_file=%s/ca.crt", cadir);
	setf(s, "tls.cert_file=%s/%s.crt", keydir, node);
	setf(s, "tls.key_file=%s/%s.key", keydir, node);
}

static void setup(void)
{
	struct err e;
	const char *const nodes[] = {"primary", "standby"};

	snprintf(dir, sizeof(dir), "%s", tu_mkdtemp());
	snprintf(other, sizeof(other), "%s/other", dir);
	ck_assert_msg(certs_generate(dir, nodes, 2, CERTS_NEW, &e) == 0, "%s", e.msg);
	ck_assert_msg(certs_generate(other, nodes, 1, CERTS_NEW, &e) == 0, "%s", e.msg);
	conf_defaults(&cs);
	conf_defaults(&ss);
	set(&cs, "peer.connect_timeout_ms=5000");
	set(&ss, "peer.connect_timeout_ms=5000");
}

static void teardown(void)
{
	conf_free(&cs);
	conf_free(&ss);
	tu_rmtree(dir);
}

/* ---------------------------------------------------------------- server child */

struct server {
	pid_t pid;
	int port;
	int errfd; /* the child's error text, if it failed */
};

typedef void (*serve_fn)(struct conn *c);

/* Listens on addr, forks a child that accepts one connection with ss and
 * hands it to fn; the child exits 0, or 1 with conn_accept's error. */
static void start_server(struct server *sv, const char *addr, serve_fn fn)
{
	struct err e;
	int lfd = conn_listen(addr, &e), p[2];

	ck_assert_msg(lfd >= 0, "%s", e.msg);
	sv->port = conn_bound_port(lfd);
	ck_assert_int_gt(sv->port, 0);
	ck_assert_int_eq(pipe(p), 0);
	sv->pid = fork();
	ck_assert_int_ge(sv->pid, 0);
	if (sv->pid == 0) {
		struct tls_ctx *t;
		struct conn *c;
		struct pollfd pf = {lfd, POLLIN, 0};
		int fd;

		alarm(30);
		close(p[0]);
		t = tls_ctx_new(&ss, true, &e);
		if (t == NULL || poll(&pf, 1, WAIT_MS) != 1 ||
		    (fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 ||
		    conn_accept(fd, &ss, t, &c, &e) < 0) {
			if (write(p[1], e.msg, strlen(e.msg)) < 0)
				_exit(3);
			_exit(1);
		}
		if (fn != NULL)
			fn(c);
		conn_free(&c);
		tls_ctx_free(&t);
		_exit(0);
	}
	close(lfd);
	close(p[1]);
	sv->errfd = p[0];
}

/* Waits (bounded) for the child; returns its exit status, error text in msg. */
static int finish_server(struct server *sv, char *msg, size_t len)
{
	uint64_t end = now_mono_ms() + WAIT_MS;
	int status = 0;
	ssize_t n;

	while (waitpid(sv->pid, &status, WNOHANG) == 0) {
		if (now_mono_ms() > end) {
			kill(sv->pid, SIGKILL);
			waitpid(sv->pid, &status, 0);
			ck_abort_msg("server child did not finish");
		}
		usleep(10000);
	}
	n = read(sv->errfd, msg, len - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(sv->errfd);
	ck_assert_msg(WIFEXITED(status), "server child died");
	return WEXITSTATUS(status);
}

static struct conn *client(const char *host, int port, struct err *e)
{
	struct tls_ctx *t = tls_ctx_new(&cs, false, e);
	struct conn *c = NULL;
	char addr[300];

	ck_assert_msg(t != NULL, "%s", e->msg);
	snprintf(addr, sizeof(addr), "%s:%d", host, port);
	if (conn_connect(&cs, t, addr, &c, e) < 0)
		c = NULL;
	tls_ctx_free(&t);
	return c;
}

/* Echoes every message back until the client closes. */
static void serve_echo(struct conn *c)
{
	struct w_frame f;
	union w_msg m;
	struct err e;

	for (;;) {
		struct pollfd p = {conn_fd(c), conn_events(c), 0};
		int rc;

		if (poll(&p, 1, WAIT_MS) != 1)
			_exit(4);
		if ((p.revents & POLLOUT) && conn_flush(c, &e) < 0)
			_exit(5);
		if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && conn_read(c, &e) < 0)
			return; /* the client closed */
		while ((rc = conn_next(c, &f, &m, &e)) == 1)
			if (conn_queue(c, f.type, &m, &e) < 0)
				_exit(6);
		if (rc < 0)
			_exit(7);
	}
}

/* Answers HELLO with the negotiated version, as a server would. */
static void serve_hello(struct conn *c)
{
	struct w_frame f;
	union w_msg m;
	struct w_hello mine = {.magic = SLICE_LIT(WIRE_MAGIC),
			       .ver_min = WIRE_VERSION_MIN,
			       .ver_max = WIRE_VERSION_MAX};
	struct err e;

	if (conn_recv(c, &f, &m, WAIT_MS, &e) < 0 || f.type != W_HELLO)
		_exit(8);
	mine.ver_min = mine.ver_max = wire_version_pick(&mine, &m.hello);
	m.hello = mine;
	if (conn_send(c, W_HELLO, &m, WAIT_MS, &e) < 0)
		_exit(9);
	/* Wait for the client to close. */
	conn_recv(c, &f, &m, WAIT_MS, &e);
}

/* Answers HELLO with versions 2-3, which the client does not speak. */
static void serve_future(struct conn *c)
{
	struct w_frame f;
	union w_msg m;
	struct err e;

	if (conn_recv(c, &f, &m, WAIT_MS, &e) < 0)
		_exit(8);
	m.hello = (struct w_hello){.magic = SLICE_LIT(WIRE_MAGIC), .ver_min = 2, .ver_max = 3};
	conn_send(c, W_HELLO, &m, WAIT_MS, &e);
	conn_recv(c, &f, &m, WAIT_MS, &e);
}

/* Refuses with a role error, as a primary does. */
static void serve_role_error(struct conn *c)
{
	struct w_frame f;
	union w_msg m;
	struct err e;

	if (conn_recv(c, &f, &m, WAIT_MS, &e) < 0)
		_exit(8);
	m.error = (struct w_error){WE_ROLE, SLICE_LIT("this node is a primary")};
	conn_send(c, W_ERROR, &m, WAIT_MS, &e);
}

static void hello_ok(struct conn *c)
{
	struct w_hello mine = {.magic = SLICE_LIT(WIRE_MAGIC),
			       .ver_min = WIRE_VERSION_MIN,
			       .ver_max = WIRE_VERSION_MAX},
		       theirs;
	struct err e;

	ck_assert_msg(conn_hello(c, &mine, &theirs, WAIT_MS, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(wire_version_pick(&mine, &theirs), WIRE_VERSION_MAX);
}

/* ---------------------------------------------------------------- round trips */

/* Message i of the stream: the samples, and one near-limit PUT. */
static uint8_t stream_msg(size_t i, union w_msg *m, uint8_t *big, size_t bign)
{
	if (i == 40) {
		memset(m, 0, sizeof(*m));
		m->put = (struct w_put){.lsn = 40,
					.path = SLICE_LIT("u/cur/big"),
					.size = bign,
					.raw_len = (uint32_t)bign,
					.body = {(const char *)big, bign}};
		return W_PUT;
	}
	return ws_sample(i % ws_count(), m);
}

/* Sends n messages and checks the n echoes, with the event-loop API. */
static void echo_stream(struct conn *c, size_t n)
{
	size_t bign = WIRE_MAX_PAYLOAD - 1024, sent = 0, got = 0;
	uint8_t *big = malloc(bign);
	uint64_t end = now_mono_ms() + 20000;
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct err e;

	for (size_t k = 0; k < bign; k++)
		big[k] = (uint8_t)(k * 7 + k / 4096);
	while (got < n) {
		struct pollfd p = {conn_fd(c), 0, 0};
		struct w_frame f;
		union w_msg m, want;
		int rc;

		/* Keep a few messages queued, never all: both sides' buffers fill. */
		while (sent < n && conn_pending(c) < 2 * WIRE_MAX_PAYLOAD) {
			uint8_t t = stream_msg(sent, &m, big, bign);
			ck_assert_msg(conn_queue(c, t, &m, &e) == 0, "%s", e.msg);
			sent++;
		}
		p.events = conn_events(c);
		ck_assert_msg(now_mono_ms() < end, "echo stream stalled at %zu/%zu", got, n);
		ck_assert_int_ge(poll(&p, 1, 1000), 0);
		if (p.revents & POLLOUT)
			ck_assert_msg(conn_flush(c, &e) >= 0, "%s", e.msg);
		if (p.revents & (POLLIN | POLLHUP | POLLERR))
			ck_assert_msg(conn_read(c, &e) == 1, "%s", e.msg);
		while ((rc = conn_next(c, &f, &m, &e)) == 1) {
			uint8_t t = stream_msg(got, &want, big, bign);
			ck_assert_uint_eq(f.type, t);
			buf_reset(&a);
			buf_reset(&b);
			ck_assert_int_eq(wire_encode(&a, t, &want, &e), 0);
			ck_assert_int_eq(wire_encode(&b, f.type, &m, &e), 0);
			ck_assert_uint_eq(a.len, b.len);
			ck_assert_msg(memcmp(a.data, b.data, a.len) == 0, "message %zu differs",
				      got);
			got++;
		}
		ck_assert_msg(rc == 0, "%s", e.msg);
	}
	ck_assert_uint_gt(conn_bytes_out(c), bign);
	ck_assert_uint_gt(conn_bytes_in(c), bign);
	free(big);
	buf_free(&a);
	buf_free(&b);
}

START_TEST(test_plain_roundtrip)
{
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600];

	start_server(&sv, "127.0.0.1:0", serve_echo);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert(!conn_is_tls(c));
	ck_assert_ptr_nonnull(strstr(conn_peer(c), "127.0.0.1:"));
	echo_stream(c, 300);
	conn_free(&c);
	ck_assert_ptr_null(c);
	ck_assert_msg(finish_server(&sv, msg, sizeof(msg)) == 0, "server: %s", msg);
}
END_TEST

START_TEST(test_plain_ipv6)
{
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600];

	start_server(&sv, "[::1]:0", serve_hello);
	c = client("[::1]", sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert_ptr_nonnull(strstr(conn_peer(c), "[::1]:"));
	hello_ok(c);
	conn_free(&c);
	ck_assert_msg(finish_server(&sv, msg, sizeof(msg)) == 0, "server: %s", msg);
}
END_TEST

START_TEST(test_tls_roundtrip)
{
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600];

	use_tls(&ss, dir, "standby", dir);
	use_tls(&cs, dir, "primary", dir);
	start_server(&sv, "127.0.0.1:0", serve_echo);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert(conn_is_tls(c));
	ck_assert_ptr_nonnull(strstr(conn_peer(c), "CN=standby"));
	echo_stream(c, 200);
	conn_free(&c);
	ck_assert_msg(finish_server(&sv, msg, sizeof(msg)) == 0, "server: %s", msg);
}
END_TEST

/* The server goes away while we write: an error, never SIGPIPE (which
 * would kill this test process: SIGPIPE is not ignored here). */
static void peer_gone(void)
{
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600];
	uint8_t *body = calloc(1, WIRE_CHUNK);
	union w_msg m = {.data = {1, 0, WIRE_CHUNK, {(const char *)body, WIRE_CHUNK}}};
	int rc = 0;

	start_server(&sv, "127.0.0.1:0", NULL);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert_int_eq(conn_send(c, W_PING, &(union w_msg){.ping = {1}}, WAIT_MS, &e), 0);
	ck_assert_msg(finish_server(&sv, msg, sizeof(msg)) == 0, "server: %s", msg);
	for (int i = 0; i < 200 && rc == 0; i++)
		rc = conn_send(c, W_DATA, &m, WAIT_MS, &e);
	ck_assert_int_eq(rc, -1);
	ck_assert_msg(strstr(e.msg, "127.0.0.1:") != NULL, "%s", e.msg);
	conn_free(&c);
	free(body);
}

START_TEST(test_peer_gone)
{
	peer_gone();
	use_tls(&ss, dir, "standby", dir);
	use_tls(&cs, dir, "primary", dir);
	peer_gone();
}
END_TEST

/* ---------------------------------------------------------------- TLS refusals */

START_TEST(test_tls_no_client_cert)
{
	/* A client without a certificate (plain OpenSSL) is refused. */
	struct server sv;
	char msg[600], ca[600], buf[16];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct timeval tv = {5, 0};
	SSL *ssl;
	int fd, r;

	signal(SIGPIPE, SIG_IGN); /* this raw OpenSSL client writes with write() */
	use_tls(&ss, dir, "standby", dir);
	start_server(&sv, "127.0.0.1:0", serve_echo);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	sa.sin_port = htons((uint16_t)sv.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	r = SSL_connect(ssl);
	if (r == 1) /* TLS 1.3: the refusal arrives after the handshake */
		r = SSL_read(ssl, buf, sizeof(buf));
	ck_assert_int_le(r, 0);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	ck_assert_int_eq(finish_server(&sv, msg, sizeof(msg)), 1);
	ck_assert_msg(strstr(msg, "presented no certificate") != NULL, "%s", msg);
}
END_TEST

/* A client that offers at most TLS 1.2 — with a valid certificate from the
 * right CA — is refused: the server speaks TLS 1.3 only. */
START_TEST(test_tls12_refused)
{
	struct server sv;
	char msg[600], path[600];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct timeval tv = {5, 0};
	SSL *ssl;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	use_tls(&ss, dir, "standby", dir);
	start_server(&sv, "127.0.0.1:0", serve_echo);
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
	snprintf(path, sizeof(path), "%s/primary.crt", dir);
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, path), 1);
	snprintf(path, sizeof(path), "%s/primary.key", dir);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 1);
	ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	sa.sin_port = htons((uint16_t)sv.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	ck_assert_int_le(SSL_connect(ssl), 0);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	ck_assert_int_eq(finish_server(&sv, msg, sizeof(msg)), 1);
}
END_TEST

START_TEST(test_tls_other_ca)
{
	/* The client's certificate comes from another CA: the server refuses
	 * it, and the client hears why. */
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600];
	struct w_hello mine = {.magic = SLICE_LIT(WIRE_MAGIC), .ver_min = 1, .ver_max = 1}, theirs;

	use_tls(&ss, dir, "standby", dir);
	use_tls(&cs, dir, "primary", other);
	start_server(&sv, "127.0.0.1:0", serve_hello);
	c = client("127.0.0.1", sv.port, &e);
	if (c != NULL) {
		ck_assert_int_eq(conn_hello(c, &mine, &theirs, WAIT_MS, &e), -1);
		conn_free(&c);
	}
	ck_assert_msg(strstr(e.msg, "refused our certificate") != NULL, "%s", e.msg);
	ck_assert_int_eq(finish_server(&sv, msg, sizeof(msg)), 1);
	ck_assert_msg(strstr(msg, "peer certificate verify failed: unable to get local issuer "
				  "certificate") != NULL,
		      "%s", msg);
}
END_TEST

START_TEST(test_tls_server_other_ca)
{
	/* The server's certificate comes from another CA: the client refuses. */
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600];

	use_tls(&ss, dir, "primary", other);
	use_tls(&cs, dir, "primary", dir);
	start_server(&sv, "127.0.0.1:0", NULL);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(e.msg, "peer certificate verify failed") != NULL, "%s", e.msg);
	ck_assert_msg(strstr(e.msg, "the server at 127.0.0.1:") != NULL, "%s", e.msg);
	finish_server(&sv, msg, sizeof(msg));
}
END_TEST

START_TEST(test_tls_pin)
{
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600], path[600], pin[200];
	struct buf real = BUF_INIT, wrong = BUF_INIT;

	use_tls(&ss, dir, "standby", dir);
	use_tls(&cs, dir, "primary", dir);
	snprintf(path, sizeof(path), "%s/standby.crt", dir);
	ck_assert_int_eq(certs_fingerprint(path, &real, &e), 0);
	snprintf(path, sizeof(path), "%s/primary.crt", dir);
	ck_assert_int_eq(certs_fingerprint(path, &wrong, &e), 0);

	/* Mismatch: refused, and the error shows the real fingerprint. */
	setf(&cs, "tls.peer_fingerprint=%s", buf_cstr(&wrong));
	start_server(&sv, "127.0.0.1:0", serve_hello);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(e.msg, "fingerprint mismatch") != NULL, "%s", e.msg);
	ck_assert_msg(strstr(e.msg, buf_cstr(&real)) != NULL, "%s", e.msg);
	finish_server(&sv, msg, sizeof(msg));

	/* Match, written lowercase without colons. */
	size_t k = 0;
	for (const char *p = buf_cstr(&real); *p != '\0'; p++)
		if (*p != ':')
			pin[k++] = (char)(*p >= 'A' && *p <= 'F' ? *p + 32 : *p);
	pin[k] = '\0';
	setf(&cs, "tls.peer_fingerprint=%s", pin);
	start_server(&sv, "127.0.0.1:0", serve_hello);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	hello_ok(c);
	conn_free(&c);
	ck_assert_msg(finish_server(&sv, msg, sizeof(msg)) == 0, "server: %s", msg);

	/* The server pins too: a wrong pin there refuses us with a W_ERROR. */
	setf(&ss, "tls.peer_fingerprint=%s", buf_cstr(&real));
	start_server(&sv, "127.0.0.1:0", serve_hello);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	{
		struct w_hello mine = {.magic = SLICE_LIT(WIRE_MAGIC), .ver_min = 1, .ver_max = 1},
			       theirs;
		ck_assert_int_eq(conn_hello(c, &mine, &theirs, WAIT_MS, &e), -1);
		ck_assert_int_eq(e.code, ERR_REFUSED);
		ck_assert_msg(strstr(e.msg, "fingerprint not accepted") != NULL, "%s", e.msg);
	}
	conn_free(&c);
	ck_assert_int_eq(finish_server(&sv, msg, sizeof(msg)), 1);
	ck_assert_msg(strstr(msg, "fingerprint mismatch") != NULL, "%s", msg);
	buf_free(&real);
	buf_free(&wrong);
}
END_TEST

START_TEST(test_plain_client_tls_server)
{
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600];
	struct w_hello mine = {.magic = SLICE_LIT(WIRE_MAGIC), .ver_min = 1, .ver_max = 1}, theirs;

	use_tls(&ss, dir, "standby", dir);
	start_server(&sv, "127.0.0.1:0", NULL);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert_int_eq(conn_hello(c, &mine, &theirs, WAIT_MS, &e), -1);
	ck_assert_int_eq(e.code, ERR_REFUSED);
	ck_assert_msg(strstr(e.msg, "this server requires TLS; configure [tls] cert_file/key_file/"
				    "ca_file") != NULL,
		      "%s", e.msg);
	ck_assert_msg(strstr(e.msg, "(auth)") != NULL, "%s", e.msg);
	conn_free(&c);
	ck_assert_int_eq(finish_server(&sv, msg, sizeof(msg)), 1);
	ck_assert_msg(strstr(msg, "refused a plaintext client") != NULL, "%s", msg);
}
END_TEST

START_TEST(test_tls_client_plain_server)
{
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600];

	use_tls(&cs, dir, "primary", dir);
	start_server(&sv, "127.0.0.1:0", NULL);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(e.msg, "does not use TLS") != NULL, "%s", e.msg);
	ck_assert_int_eq(finish_server(&sv, msg, sizeof(msg)), 1);
	ck_assert_msg(strstr(msg, "refused a TLS client") != NULL, "%s", msg);
}
END_TEST

START_TEST(test_key_mode)
{
	char key[600], want[1400];
	struct tls_ctx *t;
	struct err e;

	use_tls(&cs, dir, "primary", dir);
	snprintf(key, sizeof(key), "%s/primary.key", dir);
	t = tls_ctx_new(&cs, false, &e);
	ck_assert_msg(t != NULL, "%s", e.msg);
	ck_assert(tls_enabled(t));
	tls_ctx_free(&t);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(chmod(key, 0644), 0);
	ck_assert_ptr_null(tls_ctx_new(&cs, false, &e));
	snprintf(want, sizeof(want),
		 "key file %s is readable by group or others (mode 0644): chmod 600 %s", key, key);
	ck_assert_str_eq(e.msg, want);
	ck_assert_int_eq(chmod(key, 0640), 0);
	ck_assert_ptr_null(tls_ctx_new(&cs, true, &e));
	ck_assert_ptr_nonnull(strstr(e.msg, "(mode 0640)"));
	/* A missing file and a key that does not match the certificate. */
	ck_assert_int_eq(chmod(key, 0600), 0);
	setf(&cs, "tls.key_file=%s/standby.key", dir);
	ck_assert_ptr_null(tls_ctx_new(&cs, false, &e));
	ck_assert_msg(strstr(e.msg, "standby.key does not match cert_file") != NULL, "%s", e.msg);
	setf(&cs, "tls.key_file=%s/nope.key", dir);
	ck_assert_ptr_null(tls_ctx_new(&cs, false, &e));
	ck_assert_msg(strstr(e.msg, "No such file") != NULL, "%s", e.msg);
	/* Without cert_file the context means plaintext. */
	set(&ss, "tls.insecure=yes");
	t = tls_ctx_new(&ss, true, &e);
	ck_assert(!tls_enabled(t));
	tls_ctx_free(&t);
}
END_TEST

/* ---------------------------------------------------------------- HELLO */

START_TEST(test_version_mismatch)
{
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600];
	struct w_hello mine = {.magic = SLICE_LIT(WIRE_MAGIC), .ver_min = 1, .ver_max = 1}, theirs;

	start_server(&sv, "127.0.0.1:0", serve_future);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert_int_eq(conn_hello(c, &mine, &theirs, WAIT_MS, &e), -1);
	ck_assert_int_eq(e.code, ERR_REFUSED);
	ck_assert_msg(
	    strstr(e.msg, "protocol version mismatch: we speak 1-1, the peer speaks 2-3") != NULL,
	    "%s", e.msg);
	conn_free(&c);
	finish_server(&sv, msg, sizeof(msg));
}
END_TEST

START_TEST(test_hello_error_reply)
{
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600];
	struct w_hello mine = {.magic = SLICE_LIT(WIRE_MAGIC), .ver_min = 1, .ver_max = 1}, theirs;

	start_server(&sv, "127.0.0.1:0", serve_role_error);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert_int_eq(conn_hello(c, &mine, &theirs, WAIT_MS, &e), -1);
	ck_assert_int_eq(e.code, ERR_REFUSED);
	ck_assert_msg(strstr(e.msg, "(role): this node is a primary") != NULL, "%s", e.msg);
	conn_free(&c);
	finish_server(&sv, msg, sizeof(msg));
}
END_TEST

/* ---------------------------------------------------------------- policy, errors */

START_TEST(test_loopback_decision)
{
	static const char *const yes[] = {"127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1",
					  "::ffff:127.1.2.3"};
	static const char *const no[] = {
	    "10.0.0.1",	       "192.0.2.2", "128.0.0.1", "::2",	      "fd00::2",
	    "::ffff:10.0.0.1", "0.0.0.0",   "::",	 "localhost", ""};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(conn_addr_is_loopback(yes[i]), "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!conn_addr_is_loopback(no[i]), "%s", no[i]);
}
END_TEST

/* A non-loopback IPv4 address of this machine, or NULL. */
static const char *outside_address(void)
{
	static char ip[INET_ADDRSTRLEN];
	struct ifaddrs *ifs, *i;

	ip[0] = '\0';
	if (getifaddrs(&ifs) < 0)
		return NULL;
	for (i = ifs; i != NULL && ip[0] == '\0'; i = i->ifa_next) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)i->ifa_addr;
		if (in == NULL || in->sin_family != AF_INET ||
		    (ntohl(in->sin_addr.s_addr) >> 24) == 127)
			continue;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
	}
	freeifaddrs(ifs);
	return ip[0] != '\0' ? ip : NULL;
}

START_TEST(test_plaintext_policy)
{
	const char *ip = outside_address();
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600], addr[64];
	struct w_hello mine = {.magic = SLICE_LIT(WIRE_MAGIC), .ver_min = 1, .ver_max = 1}, theirs;
	struct tls_ctx *t;

	if (ip == NULL) {
		fprintf(stderr,
			"check_conn: no non-loopback address; policy tested on strings only\n");
		return;
	}
	snprintf(addr, sizeof(addr), "%s:0", ip);
	/* The client refuses to talk plaintext to a non-loopback address. */
	t = tls_ctx_new(&cs, false, &e);
	snprintf(addr, sizeof(addr), "%s:9", ip);
	ck_assert_int_eq(conn_connect(&cs, t, addr, &c, &e), -1);
	ck_assert_msg(strstr(e.msg, "refusing a plaintext connection to") != NULL, "%s", e.msg);
	ck_assert_msg(strstr(e.msg, "[tls] insecure = yes") != NULL, "%s", e.msg);
	tls_ctx_free(&t);
	/* An insecure client gets through, but the server refuses it. */
	set(&cs, "tls.insecure=yes");
	snprintf(addr, sizeof(addr), "%s:0", ip);
	start_server(&sv, addr, NULL);
	c = client(ip, sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert_int_eq(conn_hello(c, &mine, &theirs, WAIT_MS, &e), -1);
	ck_assert_msg(strstr(e.msg, "accepts plaintext only from loopback") != NULL, "%s", e.msg);
	conn_free(&c);
	ck_assert_int_eq(finish_server(&sv, msg, sizeof(msg)), 1);
	ck_assert_msg(strstr(msg, "refusing a plaintext connection from") != NULL, "%s", msg);
	/* With insecure on the server too, it works. */
	set(&ss, "tls.insecure=yes");
	start_server(&sv, addr, serve_hello);
	c = client(ip, sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	hello_ok(c);
	conn_free(&c);
	ck_assert_msg(finish_server(&sv, msg, sizeof(msg)) == 0, "server: %s", msg);
}
END_TEST

START_TEST(test_malformed_from_peer)
{
	/* A frame with a bad CRC from the peer: conn_next fails, naming the peer. */
	struct err e;
	struct conn *c;
	char msg[600];
	int lfd, fd, p[2];
	pid_t pid;

	lfd = conn_listen("127.0.0.1:0", &e);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		/* A raw server: sends a PING whose CRC is wrong. */
		static const uint8_t bad[] = {0x03, 0x01, 0x07, 0, 0, 0, 0};
		struct pollfd pf = {lfd, POLLIN, 0};
		alarm(20);
		close(p[1]);
		if (poll(&pf, 1, WAIT_MS) != 1 || (fd = accept(lfd, NULL, NULL)) < 0)
			_exit(1);
		if (write(fd, bad, sizeof(bad)) != sizeof(bad))
			_exit(2);
		if (read(p[0], msg, 1) < 0) /* until the parent is done */
			_exit(3);
		_exit(0);
	}
	c = client("127.0.0.1", conn_bound_port(lfd), &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	{
		struct w_frame f;
		union w_msg m;
		ck_assert_int_eq(conn_recv(c, &f, &m, WAIT_MS, &e), -1);
		ck_assert_msg(strstr(e.msg, "CRC mismatch") != NULL, "%s", e.msg);
		ck_assert_msg(strstr(e.msg, "from 127.0.0.1:") != NULL, "%s", e.msg);
	}
	conn_free(&c);
	close(p[1]);
	close(lfd);
	waitpid(pid, NULL, 0);
	close(p[0]);
}
END_TEST

START_TEST(test_timeouts_and_close)
{
	struct server sv;
	struct err e;
	struct conn *c;
	char msg[600];
	struct w_frame f;
	union w_msg m;
	uint64_t t0;

	start_server(&sv, "127.0.0.1:0", serve_hello);
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	t0 = now_mono_ms();
	ck_assert_int_eq(conn_recv(c, &f, &m, 300, &e), -1);
	ck_assert_int_eq(e.code, ETIMEDOUT);
	ck_assert_uint_lt(now_mono_ms() - t0, 3000);
	hello_ok(c);
	conn_free(&c);
	ck_assert_msg(finish_server(&sv, msg, sizeof(msg)) == 0, "server: %s", msg);
	/* Nobody listening: a clear connect error. */
	set(&cs, "peer.connect_timeout_ms=1000");
	c = client("127.0.0.1", sv.port, &e);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(e.msg, "cannot connect to 127.0.0.1:") != NULL, "%s", e.msg);
	/* conn_listen errors and forms. */
	ck_assert_int_eq(conn_listen("127.0.0.1:99999", &e), -1);
	ck_assert_int_eq(conn_listen("[::1:0", &e), -1);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("conn");
	TCase *core = tcase_create("core"), *tls = tcase_create("tls"),
	      *errors = tcase_create("errors");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(tls, setup, teardown);
	tcase_add_checked_fixture(errors, setup, teardown);
	tcase_set_timeout(core, 60);
	tcase_set_timeout(tls, 60);
	tcase_set_timeout(errors, 60);
	tcase_add_test(core, test_plain_roundtrip);
	tcase_add_test(core, test_plain_ipv6);
	tcase_add_test(core, test_version_mismatch);
	tcase_add_test(core, test_hello_error_reply);
	tcase_add_test(tls, test_tls_roundtrip);
	tcase_add_test(tls, test_tls_no_client_cert);
	tcase_add_test(tls, test_tls12_refused);
	tcase_add_test(tls, test_tls_other_ca);
	tcase_add_test(tls, test_tls_server_other_ca);
	tcase_add_test(tls, test_tls_pin);
	tcase_add_test(tls, test_plain_client_tls_server);
	tcase_add_test(tls, test_tls_client_plain_server);
	tcase_add_test(tls, test_key_mode);
	tcase_add_test(errors, test_loopback_decision);
	tcase_add_test(errors, test_plaintext_policy);
	tcase_add_test(errors, test_malformed_from_peer);
	tcase_add_test(errors, test_timeouts_and_close);
	tcase_add_test(errors, test_peer_gone);
	suite_add_tcase(su, core);
	suite_add_tcase(su, tls);
	suite_add_tcase(su, errors);
	return tu_run(su);
}
