/*
 * conn.c — the transport (conn.h): TCP with keepalives, TLS 1.3 with
 * mutual certificate authentication (OpenSSL 3), the plaintext policy,
 * and framed wire messages over a non-blocking socket.
 *
 * Input is read into one bounded buffer (one whole frame plus read slack)
 * and decoded in place; a read offset marks what conn_next() consumed and
 * the buffer is compacted only when the offset grows large or room runs
 * out, so small frames cost no memmove each. Output is queued in a second
 * buffer and written as the socket allows.
 *
 * SECURITY: peers are authenticated by certificates from a private CA
 * (hostnames are not checked: the CA is the trust anchor), optionally
 * pinned by SHA-256 fingerprint. Plaintext is refused off loopback unless
 * [tls] insecure = yes. Key files readable by group or others are
 * refused. Every frame is bounded (WIRE_MAX_PAYLOAD) and CRC-checked by
 * the codec before it is decoded.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "certs.h"
#include "conn.h"
#include "fsutil.h"
#include "hash.h"
#include "xalloc.h"

#define TLS_HANDSHAKE_BYTE 0x16
#define FRAME_MAX	   (WIRE_MAX_PAYLOAD + WIRE_FRAME_OVERHEAD)
/* Input is bounded by one whole frame plus READ_ROOM bytes of read slack. */
#define READ_ROOM (64u * 1024)
#define IN_MAX	  (FRAME_MAX + READ_ROOM)
/* OpenSSL's read-ahead buffer: room for a few full TLS records. */
#define TLS_READ_BUFFER (80u * 1024)
/* How long a refused client gets to read why before we close. */
#define REFUSE_LINGER_MS 1000

struct tls_ctx {
	SSL_CTX *ssl; /* NULL: plaintext */
	bool server;
	bool insecure;
	bool pinned;
	uint8_t pin[SHA256_LEN];
	char pin_text[160]; /* peer_fingerprint as configured, for messages */
};

struct conn {
	int fd;
	SSL *ssl;
	bool server;
	bool broken; /* a fatal TLS error: no close_notify */
	bool eof;
	bool read_wants_write, write_wants_read;
	char peer[256];
	struct buf in;
	size_t in_off; /* bytes of in already taken by conn_next */
	struct buf out;
	size_t out_off;		      /* bytes of out already written */
	uint64_t bytes_in, bytes_out; /* plaintext links; TLS uses the BIO counters */
	bool same_host;		      /* both ends have one address: a loopback path */
};

/* ---------------------------------------------------------------- helpers */

/* Waits until fd is ready for ev or the monotonic deadline (ms) passes.
 * Returns the revents, 0 on timeout, -1 on a poll error. */
static int wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_mono_ms();
		struct pollfd p = {fd, ev, 0};
		int r;

		if (now >= deadline)
			return 0;
		r = poll(&p, 1, (int)(deadline - now > INT_MAX ? INT_MAX : deadline - now));
		if (r > 0)
			return p.revents;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static bool sa_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

bool conn_addr_is_loopback(const char *ip)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

	if (inet_pton(AF_INET, ip, &in.sin_addr) == 1)
		return sa_is_loopback((struct sockaddr *)&in);
	if (inet_pton(AF_INET6, ip, &in6.sin6_addr) == 1)
		return sa_is_loopback((struct sockaddr *)&in6);
	return false;
}

/* The IP address of a socket address, for comparing two. */
static struct slice sa_ip(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (struct slice){(const char *)&((const struct sockaddr_in *)ss)->sin_addr, 4};
	if (ss->ss_family == AF_INET6)
		return (struct slice){(const char *)&((const struct sockaddr_in6 *)ss)->sin6_addr, 16};
	return (struct slice){"", 0};
}

/* "ip:port" or "[ip6]:port" of a socket address. */
static void format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN + 20], serv[8]; /* numeric, with a possible %scope */

	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(out, outlen, "(unknown address)");
	else
		snprintf(out, outlen, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

static int set_sockopts(int fd, const struct settings *s, struct err *e)
{
	int one = 1;
	int idle = (int)s->peer.keepalive_s;
	int intvl = idle / 3 > 0 ? idle / 3 : 1;
	int cnt = 3;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0)
		return err_sys(e, "setsockopt on a peer connection failed");
	return 0;
}

/* The message for a refused plaintext link, naming the settings to change. */
static int plaintext_refused(struct err *e, const char *dir, const char *peer)
{
	return err_set(e, ERR_REFUSED,
		       "refusing a plaintext connection %s %s: without [tls] cert_file, plaintext "
		       "is allowed only over loopback; configure [tls] ca_file, cert_file and "
		       "key_file (mdreplctl gen-certs makes them) or set [tls] insecure = yes",
		       dir, peer);
}

/* ---------------------------------------------------------------- TLS context */

/* Appends OpenSSL's first queued reason to a message and clears the queue. */
static int ssl_config_error(struct err *e, const char *what, const char *path)
{
	char reason[256] = "unknown OpenSSL error";
	unsigned long code = ERR_peek_error();

	if (code != 0)
		ERR_error_string_n(code, reason, sizeof(reason));
	ERR_clear_error();
	return err_set(e, ERR_CONFIG, "%s %s: %s", what, path, reason);
}

static int check_key_file(const char *path, struct err *e)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return err_sys(e, "cannot use [tls] key_file %s", path);
	if (st.st_mode & 077)
		return err_set(
		    e, ERR_CONFIG,
		    "key file %s is readable by group or others (mode %04o): chmod 600 %s", path,
		    (unsigned)(st.st_mode & 07777), path);
	return 0;
}

static int load_tls(struct tls_ctx *t, const struct settings *s, struct err *e)
{
	const char *cert = s->tls.cert_file, *key = s->tls.key_file, *ca = s->tls.ca_file;
	int verify = SSL_VERIFY_PEER | (t->server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);

	if (key[0] == '\0' || ca[0] == '\0')
		return err_set(e, ERR_CONFIG, "[tls] cert_file needs key_file and ca_file too");
	if (check_key_file(key, e) < 0)
		return -1;
	t->ssl = SSL_CTX_new(t->server ? TLS_server_method() : TLS_client_method());
	if (t->ssl == NULL)
		return ssl_config_error(e, "cannot create a TLS context for", cert);
	SSL_CTX_set_min_proto_version(t->ssl, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_chain_file(t->ssl, cert) != 1)
		return ssl_config_error(e, "cannot load [tls] cert_file", cert);
	if (SSL_CTX_use_PrivateKey_file(t->ssl, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(t->ssl) != 1) {
		if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
			ERR_clear_error();
			return err_set(e, ERR_CONFIG,
				       "[tls] key_file %s does not match cert_file %s", key, cert);
		}
		return ssl_config_error(e, "cannot load [tls] key_file", key);
	}
	if (SSL_CTX_load_verify_locations(t->ssl, ca, NULL) != 1)
		return ssl_config_error(e, "cannot load [tls] ca_file", ca);
	SSL_CTX_set_verify(t->ssl, verify, NULL);
	SSL_CTX_set_mode(t->ssl,
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
	/* Read ahead: one read() brings in several records, instead of two
	 * reads (header, then body) per 16 kB record. What it buffers is seen
	 * by SSL_has_pending(), not by poll(). */
	SSL_CTX_set_read_ahead(t->ssl, 1);
	SSL_CTX_set_default_read_buffer_len(t->ssl, TLS_READ_BUFFER);
	SSL_CTX_set_session_cache_mode(t->ssl, SSL_SESS_CACHE_OFF);
	if (t->server)
		SSL_CTX_set_num_tickets(t->ssl,
					0); /* no resumption: nothing to send after the handshake */
	return 0;
}

struct tls_ctx *tls_ctx_new(const struct settings *s, bool server, struct err *e)
{
	struct tls_ctx *t = xcalloc(1, sizeof(*t));
	const char *fp = s->tls.peer_fingerprint;

	t->server = server;
	t->insecure = s->tls.insecure;
	if (s->tls.cert_file[0] == '\0')
		return t;
	if (fp[0] != '\0') {
		if (hex_parse(fp, t->pin, SHA256_LEN) < 0) {
			err_set(e, ERR_CONFIG, "[tls] peer_fingerprint must be 64 hex digits");
			goto fail;
		}
		t->pinned = true;
		snprintf(t->pin_text, sizeof(t->pin_text), "%s", fp);
	}
	if (load_tls(t, s, e) == 0)
		return t;
fail:
	tls_ctx_free(&t);
	return NULL;
}

bool tls_enabled(const struct tls_ctx *t)
{
	return t != NULL && t->ssl != NULL;
}

void tls_ctx_free(struct tls_ctx **t)
{
	if (*t == NULL)
		return;
	SSL_CTX_free((*t)->ssl);
	free(*t);
	*t = NULL;
}

static int (*socket_read)(BIO *, char *, int);

/* The socket BIO's read, except that a plaintext ERROR frame arriving where
 * the peer's first TLS record belongs is left unread (the read fails), so
 * plaintext_answer() can show its text instead of "wrong version number". */
static int guarded_read(BIO *b, char *out, int len)
{
	int fd = -1;
	uint8_t first;

	BIO_get_fd(b, &fd);
	if (BIO_number_read(b) == 0 && recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT) == 1 &&
	    first == W_ERROR) {
		BIO_clear_retry_flags(b);
		errno = EPROTO;
		return -1;
	}
	return socket_read(b, out, len);
}

/* A socket BIO that writes with MSG_NOSIGNAL, so a peer that went away is
 * an EPIPE error, not a SIGPIPE that kills the daemon. */
static int nosigpipe_write(BIO *b, const char *data, int len)
{
	int fd = -1;
	ssize_t n;

	BIO_get_fd(b, &fd);
	BIO_clear_retry_flags(b);
	n = send(fd, data, (size_t)len, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static BIO *socket_bio(int fd)
{
	static BIO_METHOD *method;
	const BIO_METHOD *sock = BIO_s_socket();
	BIO *b;

	if (method == NULL) {
		method = BIO_meth_new(BIO_TYPE_SOCKET, "mdrepl socket");
		if (method == NULL)
			return NULL;
		socket_read = BIO_meth_get_read(sock);
		BIO_meth_set_write(method, nosigpipe_write);
		BIO_meth_set_read(method, guarded_read);
		BIO_meth_set_puts(method, BIO_meth_get_puts(sock));
		BIO_meth_set_ctrl(method, BIO_meth_get_ctrl(sock));
		BIO_meth_set_create(method, BIO_meth_get_create(sock));
		BIO_meth_set_destroy(method, BIO_meth_get_destroy(sock));
	}
	b = BIO_new(method);
	if (b != NULL)
		BIO_set_fd(b, fd, BIO_NOCLOSE);
	return b;
}

/* ---------------------------------------------------------------- conn basics */

static struct conn *conn_new(int fd, bool server)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	struct sockaddr_storage ss, me;
	socklen_t len = sizeof(ss), mylen = sizeof(me);

	c->fd = fd;
	c->server = server;
	buf_init(&c->in, IN_MAX);
	buf_init(&c->out, 0);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		format_addr((struct sockaddr *)&ss, len, c->peer, sizeof(c->peer));
		/* A connection to oneself goes from and to the same address
		 * (127.0.0.1, or this host's own), whichever was dialled. */
		c->same_host = getsockname(fd, (struct sockaddr *)&me, &mylen) == 0 &&
			       ss.ss_family == me.ss_family && sa_ip(&ss).len > 0 &&
			       memcmp(sa_ip(&ss).p, sa_ip(&me).p, sa_ip(&ss).len) == 0;
	} else {
		snprintf(c->peer, sizeof(c->peer), "(unconnected)");
	}
	return c;
}

void conn_free(struct conn **cp)
{
	struct conn *c = *cp;

	if (c == NULL)
		return;
	if (c->ssl != NULL) {
		/* One non-blocking close_notify, so the peer sees a clean end. */
		if (!c->broken && SSL_is_init_finished(c->ssl))
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	ERR_clear_error();
	if (c->fd >= 0)
		close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
	*cp = NULL;
}

int conn_fd(const struct conn *c)
{
	return c->fd;
}

const char *conn_peer(const struct conn *c)
{
	return c->peer;
}

bool conn_same_host(const struct conn *c)
{
	return c->same_host;
}

bool conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL;
}

uint64_t conn_bytes_in(const struct conn *c)
{
	return c->ssl != NULL ? BIO_number_read(SSL_get_rbio(c->ssl)) : c->bytes_in;
}

uint64_t conn_bytes_out(const struct conn *c)
{
	return c->ssl != NULL ? BIO_number_written(SSL_get_wbio(c->ssl)) : c->bytes_out;
}

static const char *them(const struct conn *c)
{
	return c->server ? "client" : "server";
}

/* Sets e from a failed TLS call (rc: its return value), in words an
 * operator can act on, with OpenSSL's own reason in parentheses. */
static int tls_fail(struct conn *c, int rc, const char *during, struct err *e)
{
	int saved = errno;
	int se = SSL_get_error(c->ssl, rc);
	unsigned long code = ERR_peek_error();
	int reason = ERR_GET_LIB(code) == ERR_LIB_SSL ? ERR_GET_REASON(code) : 0;
	long vr = SSL_get_verify_result(c->ssl);
	char ossl[256];

	c->broken = true;
	if (code != 0)
		ERR_error_string_n(code, ossl, sizeof(ossl));
	else if (se == SSL_ERROR_SYSCALL && saved != 0)
		snprintf(ossl, sizeof(ossl), "%s", strerror(saved));
	else
		snprintf(ossl, sizeof(ossl), "connection closed");
	ERR_clear_error();
	if (vr != X509_V_OK)
		return err_set(e, ERR_REFUSED,
			       "peer certificate verify failed: %s: the %s at %s presented a "
			       "certificate that our [tls] ca_file does not vouch for (%s)",
			       X509_verify_cert_error_string(vr), them(c), c->peer, ossl);
	switch (reason) {
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return err_set(
		    e, ERR_REFUSED,
		    "the %s at %s requires a client certificate: set [tls] cert_file and "
		    "key_file (%s)",
		    them(c), c->peer, ossl);
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		return err_set(e, ERR_REFUSED,
			       "the %s at %s presented no certificate; each node needs [tls] "
			       "cert_file and key_file (%s)",
			       them(c), c->peer, ossl);
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
		return err_set(
		    e, ERR_REFUSED,
		    "the %s at %s refused our certificate: is our cert_file signed by the "
		    "CA in its [tls] ca_file? (%s)",
		    them(c), c->peer, ossl);
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_HTTP_REQUEST:
		return err_set(
		    e, ERR_REFUSED,
		    "the %s at %s does not speak TLS: configure [tls] on both nodes (%s)", them(c),
		    c->peer, ossl);
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
		return err_set(e, ERR_REFUSED, "the %s at %s does not support TLS 1.3 (%s)",
			       them(c), c->peer, ossl);
	default: break;
	}
	return err_set(e, EPROTO, "TLS %s %s failed: %s", during, c->peer, ossl);
}

/* ---------------------------------------------------------------- raw I/O */

/* Reads up to len bytes: returns the count, 0 if it would block, -1 on an
 * error (e set), -2 at the end of the stream. */
static ssize_t raw_read(struct conn *c, uint8_t *p, size_t len, struct err *e)
{
	ssize_t n;

	if (c->ssl != NULL) {
		int r, se;

		ERR_clear_error();
		errno = 0; /* SSL_ERROR_SYSCALL with errno 0 is an EOF */
		r = SSL_read(c->ssl, p, len > INT_MAX ? INT_MAX : (int)len);
		c->read_wants_write = false;
		if (r > 0)
			return r;
		se = SSL_get_error(c->ssl, r);
		if (se == SSL_ERROR_WANT_READ)
			return 0;
		if (se == SSL_ERROR_WANT_WRITE) {
			c->read_wants_write = true;
			return 0;
		}
		if (se == SSL_ERROR_ZERO_RETURN ||
		    (se == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0) ||
		    ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			c->broken = se != SSL_ERROR_ZERO_RETURN;
			ERR_clear_error();
			return -2;
		}
		return tls_fail(c, r, "read from", e);
	}
	do
		n = recv(c->fd, p, len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		c->bytes_in += (uint64_t)n;
		return n;
	}
	if (n == 0)
		return -2;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	return err_sys(e, "read from %s failed", c->peer);
}

/* Writes up to len bytes: returns the count, 0 if it would block, -1. */
static ssize_t raw_write(struct conn *c, const uint8_t *p, size_t len, struct err *e)
{
	ssize_t n;

	if (c->ssl != NULL) {
		int r, se;

		ERR_clear_error();
		errno = 0;
		r = SSL_write(c->ssl, p, len > INT_MAX ? INT_MAX : (int)len);
		c->write_wants_read = false;
		if (r > 0)
			return r;
		se = SSL_get_error(c->ssl, r);
		if (se == SSL_ERROR_WANT_WRITE)
			return 0;
		if (se == SSL_ERROR_WANT_READ) {
			c->write_wants_read = true;
			return 0;
		}
		return tls_fail(c, r, "write to", e);
	}
	do
		n = send(c->fd, p, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0) {
		c->bytes_out += (uint64_t)n;
		return n;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	return err_sys(e, "write to %s failed", c->peer);
}

/* Before a read: moves unconsumed input to the front when room is needed
 * or when no more is moved than was consumed since (so each byte is moved
 * at most about once, however much one read brought in). */
static void compact_in(struct conn *c)
{
	size_t left = c->in.len - c->in_off;

	if (c->in_off == 0)
		return;
	if (left == 0) {
		buf_reset(&c->in);
		c->in_off = 0;
	} else if (c->in_off >= left || IN_MAX - c->in.len < READ_ROOM) {
		buf_consume(&c->in, c->in_off);
		c->in_off = 0;
	}
}

/* Reads what the socket (or TLS) has, up to the input bound. Returns 1, or
 * -1 (e set; EOF is reported once the bytes before it were taken). */
static int fill(struct conn *c, struct err *e)
{
	bool got = false;

	if (c->eof)
		return err_set(e, ECONNRESET, "connection closed by the %s at %s%s", them(c),
			       c->peer, c->in.len > c->in_off ? " in the middle of a frame" : "");
	compact_in(c);
	for (;;) {
		size_t room = IN_MAX - c->in.len;
		uint8_t *p;
		ssize_t n;

		if (room == 0)
			return 1;
		if (room > READ_ROOM)
			room = READ_ROOM;
		p = buf_space(&c->in, room);
		if (p == NULL)
			return err_set(e, EMSGSIZE, "input buffer full");
		n = raw_read(c, p, room, e);
		if (n == 0)
			return 1;
		if (n == -2) {
			c->eof = true;
			return got ? 1 : fill(c, e);
		}
		if (n < 0)
			return -1;
		buf_commit(&c->in, (size_t)n);
		got = true;
	}
}

/* ---------------------------------------------------------------- event loop */

short conn_events(const struct conn *c)
{
	return POLLIN | (conn_pending(c) > 0 || c->read_wants_write ? POLLOUT : 0);
}

size_t conn_pending(const struct conn *c)
{
	return c->out.len - c->out_off;
}

int conn_queue(struct conn *c, uint8_t type, const union w_msg *m, struct err *e)
{
	if (c->out_off > 0 && c->out_off >= c->out.len / 2) {
		buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
	return wire_encode(&c->out, type, m, e);
}

int conn_flush(struct conn *c, struct err *e)
{
	if (c->read_wants_write && fill(c, e) < 0)
		return -1;
	while (conn_pending(c) > 0) {
		ssize_t n = raw_write(c, c->out.data + c->out_off, conn_pending(c), e);

		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		c->out_off += (size_t)n;
	}
	buf_reset(&c->out);
	c->out_off = 0;
	return 1;
}

int conn_read(struct conn *c, struct err *e)
{
	if (fill(c, e) < 0)
		return -1;
	if (c->write_wants_read && conn_pending(c) > 0 && conn_flush(c, e) < 0)
		return -1;
	return 1;
}

int conn_next(struct conn *c, struct w_frame *f, union w_msg *m, struct err *e)
{
	bool pulled = false;

	for (;;) {
		size_t used, avail;
		int rc = 0;

		avail = c->in.len - c->in_off;
		if (avail > 0)
			rc = wire_frame_parse(c->in.data + c->in_off, avail, f, &used, e);
		if (rc < 0)
			return err_prefix(e, "from %s", c->peer);
		if (rc == 1) {
			c->in_off += used;
			if (wire_decode(f, m, e) < 0)
				return err_prefix(e, "from %s", c->peer);
			return 1;
		}
		/* TLS may hold bytes, read ahead or decrypted, that poll() will
		 * not announce. */
		if (pulled || c->ssl == NULL || !SSL_has_pending(c->ssl) || c->eof)
			return 0;
		if (fill(c, e) < 0)
			return -1;
		pulled = true;
	}
}

/* ---------------------------------------------------------------- blocking helpers */

int conn_send(struct conn *c, uint8_t type, const union w_msg *m, int timeout_ms, struct err *e)
{
	uint64_t deadline = now_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);

	if (conn_queue(c, type, m, e) < 0)
		return -1;
	for (;;) {
		int rc = conn_flush(c, e), ev;

		if (rc != 0)
			return rc < 0 ? -1 : 0;
		ev = wait_fd(c->fd, c->write_wants_read ? POLLIN : POLLOUT, deadline);
		if (ev == 0)
			return err_set(e, ETIMEDOUT, "sending %s to %s timed out after %d ms",
				       wire_type_name(type), c->peer, timeout_ms);
		if (ev < 0)
			return err_sys(e, "poll failed");
	}
}

int conn_recv(struct conn *c, struct w_frame *f, union w_msg *m, int timeout_ms, struct err *e)
{
	uint64_t deadline = now_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		int rc = conn_next(c, f, m, e), ev;

		if (rc != 0)
			return rc < 0 ? -1 : 0;
		ev = wait_fd(c->fd, conn_events(c), deadline);
		if (ev == 0)
			return err_set(e, ETIMEDOUT, "no message from %s within %d ms", c->peer,
				       timeout_ms);
		if (ev < 0)
			return err_sys(e, "poll failed");
		if ((ev & POLLOUT) && conn_flush(c, e) < 0)
			return -1;
		if ((ev & (POLLIN | POLLHUP | POLLERR)) && conn_read(c, e) < 0)
			return -1;
	}
}

int conn_hello(struct conn *c, const struct w_hello *mine, struct w_hello *theirs, int timeout_ms,
	       struct err *e)
{
	uint64_t deadline = now_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	union w_msg m = {.hello = *mine};
	struct w_frame f;
	uint64_t now;

	if (conn_send(c, W_HELLO, &m, timeout_ms, e) < 0)
		return -1;
	now = now_mono_ms();
	if (conn_recv(c, &f, &m, now < deadline ? (int)(deadline - now) : 0, e) < 0)
		return -1;
	if (f.type == W_ERROR)
		return err_set(e, ERR_REFUSED, "the %s at %s refused the session (%s): %.*s",
			       them(c), c->peer, wire_errcode_name(m.error.code),
			       (int)m.error.text.len, m.error.text.p);
	if (f.type != W_HELLO)
		return err_set(e, ERR_PROTO, "expected HELLO from %s, got %s", c->peer,
			       wire_type_name(f.type));
	*theirs = m.hello;
	if (wire_version_pick(mine, theirs) == 0)
		return err_set(e, ERR_REFUSED,
			       "protocol version mismatch: we speak %u-%u, the peer speaks %u-%u "
			       "(peer %s)",
			       mine->ver_min, mine->ver_max, theirs->ver_min, theirs->ver_max,
			       c->peer);
	return 0;
}

/* ---------------------------------------------------------------- set-up */

/* Ends a refused link so that the client reads what we sent (an ERROR, a
 * TLS alert) rather than a reset, which closing with unread input would
 * cause: half-close, then discard its input until it closes (bounded). */
static void linger(struct conn *c)
{
	uint64_t deadline = now_mono_ms() + REFUSE_LINGER_MS;
	uint8_t sink[4096];

	shutdown(c->fd, SHUT_WR);
	while (wait_fd(c->fd, POLLIN, deadline) > 0 && recv(c->fd, sink, sizeof(sink), 0) > 0)
		;
}

/* Answers a client we refuse with a plaintext ERROR, then lingers. */
static void refuse_plain(struct conn *c, uint32_t code, const char *text)
{
	union w_msg m = {.error = {code, slice_cstr(text)}};
	uint64_t deadline = now_mono_ms() + REFUSE_LINGER_MS;
	uint8_t sink[4096];
	struct buf out = BUF_INIT;
	size_t off = 0;

	while (recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	if (wire_encode(&out, W_ERROR, &m, NULL) == 0) {
		while (off < out.len && wait_fd(c->fd, POLLOUT, deadline) > 0) {
			ssize_t n = send(c->fd, out.data + off, out.len - off, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				break;
			off += n > 0 ? (size_t)n : 0;
		}
	}
	buf_free(&out);
	linger(c);
}

/* The first byte a new client sent, without consuming it; -1 with e set. */
static int peek_first(struct conn *c, uint64_t deadline, struct err *e)
{
	for (;;) {
		uint8_t b;
		ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
		int ev;

		if (n == 1)
			return b;
		if (n == 0)
			return err_set(e, ECONNRESET,
				       "the client at %s closed the connection before "
				       "sending anything",
				       c->peer);
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return err_sys(e, "read from %s failed", c->peer);
		ev = wait_fd(c->fd, POLLIN, deadline);
		if (ev == 0)
			return err_set(e, ETIMEDOUT, "the client at %s sent nothing in time",
				       c->peer);
		if (ev < 0)
			return err_sys(e, "poll failed");
	}
}

/* Client in a TLS handshake: a plaintext mdrepl server answers our
 * ClientHello with a plaintext ERROR frame (which guarded_read() left
 * unread). Returns 1 with e set to its text if that is what arrived, 0
 * otherwise. */
static int plaintext_answer(struct conn *c, uint64_t deadline, struct err *e)
{
	uint8_t b, raw[4096];
	size_t got = 0, used;
	struct w_frame f;
	union w_msg m;

	if (BIO_number_read(SSL_get_rbio(c->ssl)) != 0 ||
	    recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) != 1 || b != W_ERROR)
		return 0;
	while (got < sizeof(raw)) {
		ssize_t n = recv(c->fd, raw + got, sizeof(raw) - got, MSG_DONTWAIT);
		int rc;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (wait_fd(c->fd, POLLIN, deadline) <= 0)
				return 0;
			continue;
		}
		if (n <= 0)
			return 0;
		got += (size_t)n;
		rc = wire_frame_parse(raw, got, &f, &used, NULL);
		if (rc < 0 || (rc == 1 && (wire_decode(&f, &m, NULL) < 0 || f.type != W_ERROR)))
			return 0;
		if (rc == 1) {
			c->broken = true;
			err_set(e, ERR_REFUSED, "the server at %s refused the session (%s): %.*s",
				c->peer, wire_errcode_name(m.error.code), (int)m.error.text.len,
				m.error.text.p);
			return 1;
		}
	}
	return 0;
}

static void note_peer_cn(struct conn *c)
{
	X509 *cert = SSL_get1_peer_certificate(c->ssl);
	char cn[128];
	size_t len = strlen(c->peer);

	if (cert == NULL)
		return;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) >
	    0) {
		for (char *p = cn; *p != '\0'; p++)
			if (*p < 0x21 || *p > 0x7e)
				*p = '?'; /* a CN is for logs: keep it printable */
		snprintf(c->peer + len, sizeof(c->peer) - len, " CN=%s", cn);
	}
	X509_free(cert);
}

/* The SHA-256 fingerprint of the peer certificate in openssl's
 * "AB:CD:..." form; checks it against the pin. Returns 0 or -1. */
static int check_pin(struct conn *c, const struct tls_ctx *t, struct err *e)
{
	X509 *cert = SSL_get1_peer_certificate(c->ssl);
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct buf fp = BUF_INIT;

	if (cert == NULL)
		return err_set(e, ERR_REFUSED, "the %s at %s presented no certificate", them(c),
			       c->peer);
	if (X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != SHA256_LEN) {
		X509_free(cert);
		return err_set(e, ERR_CONFIG, "cannot compute the peer certificate's fingerprint");
	}
	X509_free(cert);
	if (memcmp(md, t->pin, SHA256_LEN) == 0)
		return 0;
	certs_format_fingerprint(&fp, md, SHA256_LEN);
	err_set(e, ERR_REFUSED,
		"peer certificate fingerprint mismatch: the %s at %s presented SHA-256 %s; "
		"[tls] peer_fingerprint expects %s. If that certificate is the right one, put "
		"its fingerprint in peer_fingerprint",
		them(c), c->peer, buf_cstr(&fp), t->pin_text);
	buf_free(&fp);
	return -1;
}

/* Runs the TLS handshake within the deadline, then checks the pin. */
static int tls_handshake(struct conn *c, const struct tls_ctx *t, uint64_t deadline, struct err *e)
{
	BIO *bio = socket_bio(c->fd);

	c->ssl = SSL_new(t->ssl);
	if (c->ssl == NULL || bio == NULL) {
		BIO_free(bio);
		return ssl_config_error(e, "cannot start TLS with", c->peer);
	}
	SSL_set_bio(c->ssl, bio, bio);
	for (;;) {
		int rc, ev;

		ERR_clear_error();
		rc = c->server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
		if (rc == 1)
			break;
		switch (SSL_get_error(c->ssl, rc)) {
		case SSL_ERROR_WANT_READ: ev = POLLIN; break;
		case SSL_ERROR_WANT_WRITE: ev = POLLOUT; break;
		default:
			if (!c->server && plaintext_answer(c, deadline, e))
				return -1;
			return tls_fail(c, rc, "handshake with", e);
		}
		ev = wait_fd(c->fd, (short)ev, deadline);
		if (ev == 0)
			return err_set(e, ETIMEDOUT, "TLS handshake with %s timed out", c->peer);
		if (ev < 0)
			return err_sys(e, "poll failed");
	}
	note_peer_cn(c);
	return t->pinned ? check_pin(c, t, e) : 0;
}

/* Connects one resolved address within the deadline; returns the fd or -1. */
static int connect_one(const struct addrinfo *ai, const char *addr, uint64_t deadline,
		       struct err *e)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int soerr = 0, ev;
	socklen_t len = sizeof(soerr);

	if (fd < 0)
		return err_sys(e, "socket() failed");
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		err_sys(e, "cannot connect to %s", addr);
		close(fd);
		return -1;
	}
	ev = wait_fd(fd, POLLOUT, deadline);
	if (ev == 0) {
		close(fd);
		return err_set(e, ETIMEDOUT, "cannot connect to %s: no answer in time", addr);
	}
	if (ev < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
		errno = soerr != 0 ? soerr : errno;
		err_sys(e, "cannot connect to %s", addr);
		close(fd);
		return -1;
	}
	return fd;
}

int conn_connect(const struct settings *s, struct tls_ctx *t, const char *addr, struct conn **c_r,
		 struct err *e)
{
	uint64_t deadline = now_mono_ms() + s->peer.connect_timeout_ms;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res, *ai;
	char host[256], port[8];
	unsigned portnum;
	struct conn *c;
	int fd = -1, rc;

	*c_r = NULL;
	if (conf_split_addr(addr, host, sizeof(host), &portnum, e) < 0)
		return -1;
	snprintf(port, sizeof(port), "%u", portnum);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return err_set(e, ERR_CONFIG, "cannot resolve %s: %s", host, gai_strerror(rc));
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		if (!tls_enabled(t) && !t->insecure && !sa_is_loopback(ai->ai_addr)) {
			char where[300];
			format_addr(ai->ai_addr, ai->ai_addrlen, where, sizeof(where));
			plaintext_refused(e, "to", where);
			continue;
		}
		fd = connect_one(ai, addr, deadline, e);
	}
	freeaddrinfo(res);
	if (fd < 0)
		return -1;
	c = conn_new(fd, false);
	if (set_sockopts(fd, s, e) < 0 ||
	    (tls_enabled(t) && tls_handshake(c, t, deadline, e) < 0)) {
		conn_free(&c);
		return -1;
	}
	*c_r = c;
	return 0;
}

int conn_accept(int fd, const struct settings *s, struct tls_ctx *t, struct conn **c_r,
		struct err *e)
{
	uint64_t deadline = now_mono_ms() + s->peer.connect_timeout_ms;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct conn *c;
	int first;

	*c_r = NULL;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		err_sys(e, "fcntl on an accepted socket failed");
		close(fd);
		return -1;
	}
	c = conn_new(fd, true);
	if (set_sockopts(fd, s, e) < 0)
		goto fail;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
		err_sys(e, "cannot set up the connection from %s", c->peer);
		goto fail;
	}
	if (!tls_enabled(t) && !t->insecure && !sa_is_loopback((struct sockaddr *)&ss)) {
		refuse_plain(c, WE_AUTH,
			     "this server accepts plaintext only from loopback: "
			     "configure [tls] on both nodes, or set [tls] insecure = yes");
		plaintext_refused(e, "from", c->peer);
		goto fail;
	}
	first = peek_first(c, deadline, e);
	if (first < 0)
		goto fail;
	if (tls_enabled(t) && first != TLS_HANDSHAKE_BYTE) {
		refuse_plain(c, WE_AUTH,
			     "this server requires TLS; configure [tls] cert_file/"
			     "key_file/ca_file");
		err_set(e, ERR_REFUSED,
			"refused a plaintext client at %s: this server requires TLS", c->peer);
		goto fail;
	}
	if (!tls_enabled(t) && first == TLS_HANDSHAKE_BYTE) {
		refuse_plain(c, WE_AUTH,
			     "this server does not use TLS (no [tls] cert_file): "
			     "configure the same [tls] settings on both nodes");
		err_set(e, ERR_REFUSED, "refused a TLS client at %s: [tls] is not configured here",
			c->peer);
		goto fail;
	}
	if (tls_enabled(t) && tls_handshake(c, t, deadline, e) < 0) {
		if (c->ssl != NULL && !c->broken && SSL_is_init_finished(c->ssl)) {
			/* Pin refused after a good handshake: tell the client why. */
			union w_msg m = {
			    .error = {WE_AUTH, slice_cstr("certificate refused: "
							  "fingerprint not accepted")}};
			struct err ignored;
			conn_send(c, W_ERROR, &m, REFUSE_LINGER_MS, &ignored);
		}
		linger(c);
		goto fail;
	}
	*c_r = c;
	return 0;
fail:
	conn_free(&c);
	return -1;
}

/* Splits a listen address; unlike a peer address it may name port 0. */
static int split_listen_addr(const char *addr, char *host, size_t hostlen, unsigned *port,
			     struct err *e)
{
	size_t n = strlen(addr);
	char tmp[300];

	if (n < 2 || strcmp(addr + n - 2, ":0") != 0 || n >= sizeof(tmp))
		return conf_split_addr(addr, host, hostlen, port, e);
	memcpy(tmp, addr, n + 1);
	tmp[n - 1] = '1'; /* any valid port for the parser; 0 below */
	if (conf_split_addr(tmp, host, hostlen, port, e) < 0)
		return -1;
	*port = 0;
	return 0;
}

int conn_listen(const char *addr, struct err *e)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res;
	char host[256], port[8];
	unsigned portnum;
	int fd, one = 1, rc;

	if (split_listen_addr(addr, host, sizeof(host), &portnum, e) < 0)
		return err_prefix(e, "cannot listen on %s", addr);
	snprintf(port, sizeof(port), "%u", portnum);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return err_set(e, ERR_CONFIG, "cannot listen on %s: %s", addr, gai_strerror(rc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		err_sys(e, "cannot listen on %s", addr);
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int conn_bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}
