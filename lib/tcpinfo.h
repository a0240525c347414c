/*
 * tcpinfo.h — what TCP itself knows about why a connection's output waits.
 *
 * Kept apart from conn.c because the fields come from <linux/tcp.h>, which
 * clashes with the <netinet/tcp.h> the rest of the transport uses.
 */
#ifndef MDREPL_TCPINFO_H
#define MDREPL_TCPINFO_H

#include <stdint.h>

/* Cumulative microseconds the socket fd has been busy sending, and of
 * those, limited by the peer's advertised receive window (Linux 4.10+).
 * Returns 0, or -1 when the kernel does not say (not TCP, too old). */
int tcp_send_limits(int fd, uint64_t *busy_us, uint64_t *rwnd_us);

#endif
