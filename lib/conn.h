/*
 * conn.h — the transport: TCP, TLS 1.3 with mutual certificate
 * authentication (OpenSSL), and framed messages (wire.h) over it.
 *
 * Policy (DESIGN §6): with [tls] cert_file set, both sides use TLS 1.3,
 * each verifies the other's certificate against ca_file, and, if
 * peer_fingerprint is set, the peer certificate's SHA-256 must match it.
 * Without certificates the link is plaintext, allowed only when the peer
 * is a loopback address unless [tls] insecure = yes. A TLS server that
 * receives a plaintext client (its first byte is not a TLS handshake)
 * answers with a clear W_ERROR instead of a TLS alert.
 *
 * A conn is non-blocking. Event loops use conn_events/conn_read/
 * conn_next/conn_flush; one-shot clients use the blocking helpers
 * conn_send/conn_recv with a timeout.
 *
 * SECURITY: key files readable by group or others are refused.
 */
#ifndef MDREPL_CONN_H
#define MDREPL_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "wire.h"

struct tls_ctx;

/* Builds the TLS context from [tls]; returns NULL with e set on failure.
 * When no certificate is configured, returns a context that means
 * "plaintext" (tls_enabled() false). */
struct tls_ctx *tls_ctx_new(const struct settings *s, bool server, struct err *e);
bool tls_enabled(const struct tls_ctx *t);
void tls_ctx_free(struct tls_ctx **t);

struct conn;

/* Client: connects to addr ("host:port"), does the TLS handshake if
 * configured, all within s->peer.connect_timeout_ms. */
int conn_connect(const struct settings *s, struct tls_ctx *t, const char *addr,
		 struct conn **c_r, struct err *e);
/* Server: listening socket for addr (port 0 = any free port). */
int conn_listen(const char *addr, struct err *e);
/* The port a listening socket is bound to. */
int conn_bound_port(int fd);
/* Server: wraps an accepted socket, applies the plaintext policy and does
 * the TLS handshake within s->peer.connect_timeout_ms. Takes ownership of
 * fd: on failure it is closed (after a plaintext W_ERROR telling a refused
 * client why, where one can be sent). */
int conn_accept(int fd, const struct settings *s, struct tls_ctx *t, struct conn **c_r,
		struct err *e);
void conn_free(struct conn **c);

int conn_fd(const struct conn *c);
/* "address:port" and, with TLS, the peer certificate's subject CN. */
const char *conn_peer(const struct conn *c);
bool conn_is_tls(const struct conn *c);
/* Is the peer on this host (the connection's two ends share an address)? */
bool conn_same_host(const struct conn *c);

/* Event-loop interface. */
short conn_events(const struct conn *c); /* POLLIN, plus POLLOUT when output waits */
/* Queues one message for sending. Returns 0 or -1. */
int conn_queue(struct conn *c, uint8_t type, const union w_msg *m, struct err *e);
size_t conn_pending(const struct conn *c); /* bytes queued, not yet written */
/* Writes queued bytes: 1 all written, 0 would block, -1 error. */
int conn_flush(struct conn *c, struct err *e);
/* Reads what the socket has: 1 read something (or nothing pending), -1 on
 * error or when the peer closed (e says which). */
int conn_read(struct conn *c, struct err *e);
/* Takes the next complete message from what was read: 1 = one in *f and *m
 * (valid until the next conn_next/conn_read), 0 = none complete, -1 =
 * malformed frame (the connection must be dropped). Call it until it
 * returns 0 after conn_read and after conn_flush (a TLS read can complete
 * during a flush). */
int conn_next(struct conn *c, struct w_frame *f, union w_msg *m, struct err *e);

/* Blocking helpers (timeout in ms for the whole call). Return 0, or -1
 * (code ETIMEDOUT when the time ran out). */
int conn_send(struct conn *c, uint8_t type, const union w_msg *m, int timeout_ms,
	      struct err *e);
int conn_recv(struct conn *c, struct w_frame *f, union w_msg *m, int timeout_ms,
	      struct err *e);

/* Client side of HELLO: sends mine, reads the reply into theirs (its
 * slices are valid until the next conn_next/conn_read). A W_ERROR reply
 * becomes an error with code ERR_REFUSED and the peer's text; no common
 * version (wire_version_pick) gives an error naming both version ranges. */
int conn_hello(struct conn *c, const struct w_hello *mine, struct w_hello *theirs,
	       int timeout_ms, struct err *e);

/* Plaintext policy: true for 127.0.0.0/8, ::1 and ::ffff:127.x.y.z given
 * as a numeric address string. */
bool conn_addr_is_loopback(const char *ip);

/* Bytes read from / written to the socket (after TLS: the real wire). */
uint64_t conn_bytes_in(const struct conn *c);
uint64_t conn_bytes_out(const struct conn *c);

#endif
