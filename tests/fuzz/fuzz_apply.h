/*
 * fuzz_apply.h — what fuzz_apply.c and gen_corpus.c share: the input
 * format of the apply-engine target and the mail tree it starts from.
 *
 * Input: one flags byte, then messages, each
 *     u8 type | u16 payload length (little endian) | payload
 * decoded with wire_decode() (no frame CRC, so mutations reach the
 * fields). Mutations go to the apply engine as syncd's session gives them;
 * BATCH_END commits.
 */
#ifndef MDREPL_FUZZ_APPLY_H
#define MDREPL_FUZZ_APPLY_H

#define FA_FIX	     0x01 /* fix up sizes and SHA-256s, so content is accepted */
#define FA_FSYNC     0x02 /* fsync per file instead of syncfs */
#define FA_WALK	     0x04 /* safepath: component walk instead of openat2 */
#define FA_SMALLPEND 0x08 /* flush pending content early (max_pending 2) */

/* The tree every input starts from, beneath the mail root. */
#define FA_MSG	     "u/Maildir/cur/1.host:2,S"
#define FA_MSG_BODY  "Subject: one\n\nbody\n"
#define FA_UIDLIST   "u/Maildir/dovecot-uidlist"
#define FA_UIDS	     "3 V1 N2\n1 1.host\n"
/* Symlinks a local user planted: each points out of the mail root. */
#define FA_EVIL_DIR  "u/Maildir/.Evil"		/* -> ../../../outside */
#define FA_EVIL_MSG  "u/Maildir/new/2.host"	/* -> ../../../../outside/secret */
#define FA_EVIL_META "u/Maildir/.Sent/dovecot-uidlist"
#define FA_EVIL_USER "v"			/* -> ../outside */

#endif
