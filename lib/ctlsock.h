/*
 * ctlsock.h — the local control sockets through which mdreplctl talks to
 * the daemons (status, notify, role changes).
 *
 * A Unix stream socket in the state directory, mode 0600. A client
 * connects, writes one request — a command and its arguments, each
 * terminated by a NUL byte — shuts down its writing side, and reads the
 * reply until the server closes. Binary-safe, so paths with spaces or
 * newlines pass unharmed. The server checks the caller's uid
 * (SO_PEERCRED): root or its own uid only.
 *
 * SECURITY: requests are bounded (CTL_MAX_REQUEST) and read with a
 * timeout, so a stuck client cannot stall a daemon for long.
 */
#ifndef MDREPL_CTLSOCK_H
#define MDREPL_CTLSOCK_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

#define CTL_MAX_REQUEST (256 * 1024)
#define CTL_MAX_ARGS 1024

struct ctl_request {
	char *argv[CTL_MAX_ARGS + 1]; /* argv[0] is the command; NULL-terminated */
	int argc;
	struct buf raw; /* owns the strings */
};

/* Binds and listens at path (a stale socket is replaced). Returns the fd. */
int ctl_listen(const char *path, struct err *e);

/* Accepts a connection on lfd and reads its request (timeout_ms bound).
 * Returns the connection fd to reply on, or -1 (the connection, if any,
 * is closed). */
int ctl_accept(int lfd, struct ctl_request *req, int timeout_ms, struct err *e);
void ctl_request_free(struct ctl_request *req);

/* Writes the whole reply and closes cfd. */
void ctl_reply(int cfd, const void *data, size_t len);

/* Client: sends argv (argc strings) to the socket at path, reads the reply
 * into out. Returns 0 or -1 (e.g. ENOENT/ECONNREFUSED: daemon not running). */
int ctl_call(const char *path, int argc, const char *const *argv, struct buf *out,
	     int timeout_ms, struct err *e);

/* Builds STATE_DIR/NAME into out, checking it fits a sockaddr_un. */
int ctl_path(const char *state_dir, const char *name, struct buf *out, struct err *e);

#endif
