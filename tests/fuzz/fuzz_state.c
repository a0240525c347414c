/*
 * fuzz_state.c — libFuzzer target for the small state files a local user
 * with write access to the state directory could plant (`make fuzz`, see
 * tests/fuzz/README): node.state (lib/nodestate.c), standby.pos
 * (lib/standbypos.c), the journal's acked position (journal/journal.c)
 * and the digest cache (lib/scancache.c).
 *
 * Input: byte 0 selects the file (% 4: node.state, standby.pos, acked,
 * digest cache); for the digest cache, bit 0x10 appends the CRC-32 the
 * file ends with, so that mutations reach the entry parser. The rest is
 * the file's content.
 *
 * Oracles beyond "no crash, no sanitizer report": node.state, standby.pos
 * and acked either load, and then save and load back to the same values,
 * or are refused with an error naming the file. The digest cache is only
 * used (lookups, save, reopen): a bad one is discarded and rebuilt.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzzutil.h"
#include "hash.h"
#include "journal.h"
#include "maildir.h"
#include "nodestate.h"
#include "scan.h"
#include "standbypos.h"

static char state[512], root[512], cache[600];
static struct md_rules *rules;
static int rootfd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const dirs[] = {"u", "u/Maildir", "u/Maildir/cur", "u/Maildir/new",
					   "u/Maildir/tmp", "u/Maildir/.Sent",
					   "u/Maildir/.Sent/cur", "u/Maildir/.Sent/new"};

	(void)argc;
	(void)argv;
	snprintf(state, sizeof(state), "%s/state", fz_scratch());
	snprintf(root, sizeof(root), "%s/root", fz_scratch());
	snprintf(cache, sizeof(cache), "%s/digest.cache", state);
	fz_empty_dir(root);
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (mkdirat(rootfd, dirs[i], 0700) < 0)
			abort();
	}
	fz_write(root, "u/Maildir/cur/1.host:2,S", "mail\n", 5);
	fz_write(root, "u/Maildir/dovecot-uidlist", "3 V1 N2\n1 1.host\n", 17);
	rules = md_rules_new(':', NULL);
	return 0;
}

static void check_refusal(const struct err *e, const char *file)
{
	if (strstr(e->msg, file) == NULL) {
		fprintf(stderr, "error does not name %s: %s\n", file, e->msg);
		abort();
	}
}

static void node_state(void)
{
	struct node_state a, b;
	struct err e = {0};

	if (nodestate_load(state, "standby", &a, &e) < 0) {
		check_refusal(&e, "node.state");
		return;
	}
	if (nodestate_save(state, &a, &e) < 0 || nodestate_load(state, "standby", &b, &e) < 0 ||
	    memcmp(&a, &b, sizeof(a)) != 0)
		abort();
}

static void standby_pos(void)
{
	struct standby_pos a, b;
	struct err e = {0};

	if (standbypos_load(state, &a, &e) < 0) {
		check_refusal(&e, "standby.pos");
		return;
	}
	if (standbypos_save(state, &a, &e) < 0 || standbypos_load(state, &b, &e) < 0 ||
	    memcmp(&a, &b, sizeof(a)) != 0)
		abort();
}

static void acked(void)
{
	uint64_t id, lsn, id2, lsn2;
	struct err e = {0};

	if (journal_read_acked(state, &id, &lsn, &e) < 0) {
		check_refusal(&e, "acked");
		return;
	}
	if (journal_write_acked(state, id, lsn, &e) < 0 ||
	    journal_read_acked(state, &id2, &lsn2, &e) < 0 || id != id2 || lsn != lsn2)
		abort();
}

static void digest_cache(void)
{
	static const char *const folders[] = {"", "u", "u/Maildir", "u/Maildir/.Sent",
					      "u/Maildir/.Gone"};
	struct digest_cache *c = digest_cache_open(cache);
	uint8_t d[WIRE_DIGEST_LEN];
	struct err e = {0};

	for (size_t i = 0; i < sizeof(folders) / sizeof(folders[0]); i++) {
		if (digest_cache_get(c, rootfd, rules, folders[i], false, d, &e) < 0)
			abort();
	}
	if (digest_cache_save(c, &e) < 0)
		abort();
	digest_cache_free(&c);
	c = digest_cache_open(cache);
	digest_cache_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const files[] = {"node.state", "standby.pos", "acked",
					    "digest.cache"};
	unsigned which;

	if (size < 1)
		return 0;
	which = data[0] % 4;
	fz_empty_dir(state);
	fz_write(state, files[which], data + 1, size - 1);
	if (which == 3 && (data[0] & 0x10)) {
		uint8_t crc[4];
		uint32_t v = crc32_update(0, data + 1, size - 1);
		int fd = open(cache, O_WRONLY | O_APPEND | O_CLOEXEC);

		for (int i = 0; i < 4; i++)
			crc[i] = (uint8_t)(v >> (24 - 8 * i));
		if (fd < 0 || write(fd, crc, 4) != 4 || close(fd) < 0)
			abort();
	}
	switch (which) {
	case 0: node_state(); break;
	case 1: standby_pos(); break;
	case 2: acked(); break;
	default: digest_cache(); break;
	}
	return 0;
}
