/*
 * certs.h — a private certificate authority and node certificates for
 * mdrepl's mutual TLS (DESIGN §6), made with OpenSSL's own APIs:
 * `mdreplctl gen-certs` is the front end.
 *
 * In a directory (created 0700 if missing) it writes
 *     ca.key, ca.crt          EC P-256 CA: CA:TRUE, keyUsage keyCertSign
 *     NAME.key, NAME.crt      per node: CN=NAME, subjectAltName DNS:NAME,
 *                             extendedKeyUsage serverAuth + clientAuth
 * keys with mode 0600, certificates 0644 (less if the umask says so),
 * each file written atomically. Everything is valid CERTS_VALID_DAYS.
 */
#ifndef MDREPL_CERTS_H
#define MDREPL_CERTS_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

#define CERTS_VALID_DAYS 3650

enum certs_mode {
	CERTS_NEW,     /* make a new CA; refuse if any file to write exists */
	CERTS_REPLACE, /* make a new CA, overwriting existing files */
	CERTS_ADD,     /* sign new node certificates with the CA already in dir */
};

/* Makes (or, with CERTS_ADD, loads) the CA in dir and a key and
 * certificate for each of the n node names. Returns 0, or -1 with e set;
 * after a failure some files may have been written. */
int certs_generate(const char *dir, const char *const *names, size_t n, enum certs_mode mode,
		   struct err *e);

/* Appends the SHA-256 fingerprint of the PEM certificate at path, in
 * openssl's "AB:CD:..." form, to out. Returns 0 or -1. */
int certs_fingerprint(const char *path, struct buf *out, struct err *e);

/* Appends n digest bytes as "AB:CD:..." (how openssl x509 -fingerprint
 * prints them). Returns 0 or -1. */
int certs_format_fingerprint(struct buf *out, const unsigned char *md, size_t n);

/* Checks a node name: 1-63 letters, digits, '-' and '.', starting with a
 * letter or digit, and not "ca". Returns 0 or -1. */
int certs_check_name(const char *name, struct err *e);

#endif
