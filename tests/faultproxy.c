/*
 * faultproxy.c — a TCP proxy on 127.0.0.1 that injects network faults
 * between mdrepl-syncclient and mdrepl-syncd, for the end-to-end and soak
 * tests.
 *
 *   faultproxy LISTEN_PORT_FILE TARGET_PORT [--seed S]
 *
 * Listens on a free port (written to LISTEN_PORT_FILE) and forwards each
 * connection to 127.0.0.1:TARGET_PORT. The fault mode is read from the
 * file LISTEN_PORT_FILE.mode whenever it changes, so a test switches
 * modes without restarting the proxy (connections already open get a
 * fault point of the new mode, counted from their current position):
 *   pass            forward faithfully
 *   cut N           close each connection after a random 1..N bytes
 *                   (either direction), mid-frame
 *   stall MS N      after a random 1..N bytes, stop forwarding for MS ms
 *   half N          after a random 1..N bytes (either direction), deliver
 *                   the bytes up to that point and then nothing more:
 *                   a frame half written, then silence with the
 *                   connection still open (a peer that froze, a network
 *                   partition); both ends must notice by their timeouts.
 *                   Closes once either end does, or after 60 s
 *   corrupt N       flip one bit at a random offset within the first 1..N
 *                   bytes from client to server (plaintext links only;
 *                   the receiver must detect and refuse it)
 *   refuse          accept and close at once
 * Counters go to LISTEN_PORT_FILE.stats ("connections=N cuts=N stalls=N
 * corruptions=N halves=N") after every event. Single-threaded, poll-based.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"

#define MAXPAIRS 32
#define HALF_HOLD_S 60 /* a silenced connection is closed after this long */

enum mode { M_PASS, M_CUT, M_STALL, M_CORRUPT, M_HALF, M_REFUSE };

struct pair {
	int fd[2];		  /* 0 = client side, 1 = server side */
	uint64_t moved, budget;	  /* bytes forwarded; fault point */
	bool faulted;
	time_t silenced;	  /* half mode: since when nothing is forwarded; 0 = not */
};

static struct pair pairs[MAXPAIRS];

static struct {
	enum mode mode;
	uint64_t n, ms;
	struct timespec mtime;
	uint64_t connections, cuts, stalls, corruptions, halves;
	uint64_t seed;
	char statsfile[4200], modefile[4200];
} px = {.seed = 12345, .n = 1};

static uint64_t rnd(void)
{
	px.seed ^= px.seed << 13;
	px.seed ^= px.seed >> 7;
	px.seed ^= px.seed << 17;
	return px.seed;
}

static void read_mode(void)
{
	struct stat st;
	char line[128] = "";
	FILE *f;

	if (stat(px.modefile, &st) < 0 ||
	    (st.st_mtim.tv_sec == px.mtime.tv_sec && st.st_mtim.tv_nsec == px.mtime.tv_nsec))
		return;
	px.mtime = st.st_mtim;
	f = fopen(px.modefile, "r");
	if (f == NULL)
		return;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	px.n = px.ms = 0;
	if (sscanf(line, "cut %lu", &px.n) == 1)
		px.mode = M_CUT;
	else if (sscanf(line, "stall %lu %lu", &px.ms, &px.n) == 2)
		px.mode = M_STALL;
	else if (sscanf(line, "corrupt %lu", &px.n) == 1)
		px.mode = M_CORRUPT;
	else if (sscanf(line, "half %lu", &px.n) == 1)
		px.mode = M_HALF;
	else if (strncmp(line, "refuse", 6) == 0)
		px.mode = M_REFUSE;
	else
		px.mode = M_PASS;
	if (px.n == 0)
		px.n = 1;
	/* Connections already open get a fault point of the new mode too,
	 * counted from where they are. */
	for (int i = 0; i < MAXPAIRS; i++) {
		if (pairs[i].fd[0] >= 0 && pairs[i].silenced == 0) {
			pairs[i].budget = pairs[i].moved + 1 + rnd() % px.n;
			pairs[i].faulted = false;
		}
	}
}

static void write_stats(void)
{
	char text[256];
	int n = snprintf(text, sizeof(text),
			 "connections=%lu cuts=%lu stalls=%lu corruptions=%lu halves=%lu\n",
			 px.connections, px.cuts, px.stalls, px.corruptions, px.halves);

	fs_write_atomic(AT_FDCWD, px.statsfile, text, (size_t)n, 0644, NULL);
}

static int listen_any(unsigned *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		perror("faultproxy: listen");
		exit(1);
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static int connect_target(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void close_pair(struct pair *p)
{
	close(p->fd[0]);
	close(p->fd[1]);
	p->fd[0] = p->fd[1] = -1;
}

/* Forwards what one side has to the other, applying the fault. */
static void forward(struct pair *p, int from)
{
	char buf[16384];
	ssize_t n = read(p->fd[from], buf, sizeof(buf));
	size_t len;

	if (n <= 0) {
		close_pair(p);
		return;
	}
	if (p->silenced != 0)
		return; /* half written: swallow everything from now on */
	len = (size_t)n;
	if (!p->faulted && px.mode != M_PASS && p->moved + len >= p->budget) {
		size_t at = p->budget > p->moved ? (size_t)(p->budget - p->moved) : 0;

		if (px.mode == M_CUT) {
			/* Deliver up to the cut point, then drop the connection. */
			fs_write_all(p->fd[!from], buf, at);
			px.cuts++;
			write_stats();
			close_pair(p);
			return;
		}
		if (px.mode == M_HALF) {
			/* Deliver up to the fault point, then go silent, still open. */
			fs_write_all(p->fd[!from], buf, at);
			px.halves++;
			p->faulted = true;
			p->silenced = time(NULL);
			write_stats();
			return;
		}
		if (px.mode == M_CORRUPT && from == 0) {
			buf[at < len ? at : len - 1] ^= (char)(1u << (rnd() % 8));
			px.corruptions++;
			p->faulted = true;
			write_stats();
		} else if (px.mode == M_STALL) {
			struct timespec ts = {(time_t)(px.ms / 1000), (long)(px.ms % 1000) * 1000000L};

			px.stalls++;
			p->faulted = true;
			write_stats();
			nanosleep(&ts, NULL); /* stalls every connection: it is a test */
		}
	}
	p->moved += len;
	if (fs_write_all(p->fd[!from], buf, len) < 0)
		close_pair(p);
}

int main(int argc, char **argv)
{
	unsigned port, target;
	char line[32];
	int lfd, n;

	if (argc < 3) {
		fprintf(stderr, "usage: faultproxy LISTEN_PORT_FILE TARGET_PORT [--seed S]\n");
		return 2;
	}
	if (argc == 5 && strcmp(argv[3], "--seed") == 0)
		px.seed = strtoull(argv[4], NULL, 10) | 1;
	target = (unsigned)atoi(argv[2]);
	snprintf(px.modefile, sizeof(px.modefile), "%s.mode", argv[1]);
	snprintf(px.statsfile, sizeof(px.statsfile), "%s.stats", argv[1]);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < MAXPAIRS; i++)
		pairs[i].fd[0] = pairs[i].fd[1] = -1;
	lfd = listen_any(&port);
	n = snprintf(line, sizeof(line), "%u\n", port);
	write_stats();
	fs_write_atomic(AT_FDCWD, argv[1], line, (size_t)n, 0644, NULL);
	for (;;) {
		struct pollfd p[1 + 2 * MAXPAIRS];
		int np = 1;

		read_mode();
		p[0] = (struct pollfd){lfd, POLLIN, 0};
		for (int i = 0; i < MAXPAIRS; i++) {
			p[np++] = (struct pollfd){pairs[i].fd[0], POLLIN, 0};
			p[np++] = (struct pollfd){pairs[i].fd[1], POLLIN, 0};
		}
		if (poll(p, (nfds_t)np, 200) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents & POLLIN) {
			int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), slot = -1, s;

			read_mode(); /* the mode may have changed while we waited */
			for (int i = 0; i < MAXPAIRS && slot < 0; i++)
				if (pairs[i].fd[0] < 0)
					slot = i;
			px.connections++;
			if (c >= 0 && (px.mode == M_REFUSE || slot < 0 || (s = connect_target(target)) < 0)) {
				close(c);
			} else if (c >= 0) {
				pairs[slot] = (struct pair){{c, s}, 0, 1 + rnd() % px.n, false, 0};
			}
			write_stats();
		}
		for (int i = 0; i < MAXPAIRS; i++) {
			for (int side = 0; side < 2; side++) {
				if (pairs[i].fd[side] >= 0 && p[1 + 2 * i + side].revents)
					forward(&pairs[i], side);
			}
			if (pairs[i].fd[0] >= 0 && pairs[i].silenced != 0 &&
			    time(NULL) - pairs[i].silenced > HALF_HOLD_S)
				close_pair(&pairs[i]);
		}
	}
}
