/*
 * tcpinfo.c — TCP_INFO's send-limit counters (see tcpinfo.h).
 */
#include "config.h"

#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/tcp.h>

#include "tcpinfo.h"

int tcp_send_limits(int fd, uint64_t *busy_us, uint64_t *rwnd_us)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    len < offsetof(struct tcp_info, tcpi_rwnd_limited) + sizeof(ti.tcpi_rwnd_limited))
		return -1;
	*busy_us = ti.tcpi_busy_time;
	*rwnd_us = ti.tcpi_rwnd_limited;
	return 0;
}
