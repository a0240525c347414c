/*
 * certs.c — private CA and node certificates for mutual TLS (certs.h),
 * built with OpenSSL 3's EVP and X509 APIs (no openssl(1) involved).
 *
 * SECURITY: private keys are written with mode 0600 by an atomic
 * O_EXCL-temp-and-rename, so no other user can open them at any moment;
 * existing files are never overwritten unless the caller says so.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "fsutil.h"
#include "hash.h"

#define CA_NAME "ca"

struct issuer {
	EVP_PKEY *key;
	X509 *cert;
};

static int ossl_error(struct err *e, const char *what)
{
	char reason[256] = "unknown OpenSSL error";
	unsigned long code = ERR_peek_error();

	if (code != 0)
		ERR_error_string_n(code, reason, sizeof(reason));
	ERR_clear_error();
	return err_set(e, ERR_CONFIG, "%s: %s", what, reason);
}

int certs_check_name(const char *name, struct err *e)
{
	size_t n = strlen(name);

	if (n == 0 || n > 63 || !isalnum((unsigned char)name[0]) || strcmp(name, CA_NAME) == 0)
		goto bad;
	for (const char *p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			goto bad;
	return 0;
bad:
	return err_set(e, ERR_USAGE,
		       "bad node name '%s': use 1-63 letters, digits, '-' and '.', starting with "
		       "a letter or digit (and not \"ca\")",
		       name);
}

/* dir/name.ext into out. */
static int file_path(struct buf *out, const char *dir, const char *name, const char *ext,
		     struct err *e)
{
	buf_reset(out);
	if (buf_printf(out, "%s/%s.%s", dir, name, ext) < 0)
		return err_set(e, ENAMETOOLONG, "path too long: %s/%s.%s", dir, name, ext);
	return 0;
}

/* Writes what a PEM writer put into a memory BIO to path, atomically. */
static int write_bio(BIO *bio, const char *path, mode_t mode, struct err *e)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);

	if (len <= 0)
		return err_set(e, ERR_CONFIG, "cannot encode %s", path);
	if (fs_write_atomic(AT_FDCWD, path, data, (size_t)len, mode, e) < 0)
		return -1;
	return 0;
}

static int save_pair(const char *dir, const char *name, EVP_PKEY *key, X509 *cert, struct err *e)
{
	BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
	struct buf path = BUF_INIT;
	int rc = -1;

	if (kb == NULL || cb == NULL ||
	    PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cb, cert) != 1) {
		ossl_error(e, "cannot encode a key or certificate as PEM");
		goto out;
	}
	if (file_path(&path, dir, name, "key", e) < 0 ||
	    write_bio(kb, buf_cstr(&path), 0600, e) < 0 ||
	    file_path(&path, dir, name, "crt", e) < 0 ||
	    write_bio(cb, buf_cstr(&path), 0644, e) < 0)
		goto out;
	rc = 0;
out:
	BIO_free(kb);
	BIO_free(cb);
	buf_free(&path);
	return rc;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value, struct err *e)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return ossl_error(e, "cannot build a certificate extension");
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : ossl_error(e, "cannot add a certificate extension");
}

/* A random positive 127-bit serial number. */
static int set_serial(X509 *cert, struct err *e)
{
	BIGNUM *bn = BN_new();
	int ok = bn != NULL && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
		 BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;

	BN_free(bn);
	return ok ? 0 : ossl_error(e, "cannot make a serial number");
}

/* Fills the parts every certificate has: version, serial, validity,
 * subject CN (and O=mdrepl), public key. */
static int cert_base(X509 *cert, EVP_PKEY *key, const char *cn, struct err *e)
{
	X509_NAME *name = X509_get_subject_name(cert);

	if (X509_set_version(cert, 2) != 1 || set_serial(cert, e) < 0)
		return -1;
	/* An hour of slack for clocks that disagree a little. */
	if (X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), CERTS_VALID_DAYS, 0, NULL) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"mdrepl", -1,
				       -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
				       0) != 1 ||
	    X509_set_pubkey(cert, key) != 1)
		return ossl_error(e, "cannot fill in a certificate");
	return 0;
}

static int make_ca(struct issuer *ca, struct err *e)
{
	ca->key = EVP_EC_gen("P-256");
	ca->cert = X509_new();
	if (ca->key == NULL || ca->cert == NULL)
		return ossl_error(e, "cannot generate the CA key");
	if (cert_base(ca->cert, ca->key, "mdrepl CA", e) < 0 ||
	    X509_set_issuer_name(ca->cert, X509_get_subject_name(ca->cert)) != 1 ||
	    add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE", e) < 0 ||
	    add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign", e) < 0 ||
	    add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash", e) < 0)
		return -1;
	if (X509_sign(ca->cert, ca->key, EVP_sha256()) <= 0)
		return ossl_error(e, "cannot sign the CA certificate");
	return 0;
}

static int load_ca(const char *dir, struct issuer *ca, struct err *e)
{
	struct buf path = BUF_INIT;
	BIO *b = NULL;
	int rc = -1;

	if (file_path(&path, dir, CA_NAME, "key", e) < 0)
		goto out;
	b = BIO_new_file(buf_cstr(&path), "r");
	ca->key = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (ca->key == NULL) {
		ossl_error(e, "cannot read the CA key");
		err_prefix(e, "%s", buf_cstr(&path));
		goto out;
	}
	if (file_path(&path, dir, CA_NAME, "crt", e) < 0)
		goto out;
	b = BIO_new_file(buf_cstr(&path), "r");
	ca->cert = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (ca->cert == NULL) {
		ossl_error(e, "cannot read the CA certificate");
		err_prefix(e, "%s", buf_cstr(&path));
		goto out;
	}
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		ERR_clear_error();
		err_set(e, ERR_CONFIG, "%s/ca.key does not belong to %s/ca.crt", dir, dir);
		goto out;
	}
	rc = 0;
out:
	buf_free(&path);
	return rc;
}

static int make_node(const char *dir, const char *name, const struct issuer *ca, struct err *e)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	struct buf san = BUF_INIT;
	int rc = -1;

	if (key == NULL || cert == NULL) {
		ossl_error(e, "cannot generate a node key");
		goto out;
	}
	buf_printf(&san, "DNS:%s", name);
	if (cert_base(cert, key, name, e) < 0 ||
	    X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) != 1 ||
	    add_ext(cert, ca->cert, NID_basic_constraints, "critical,CA:FALSE", e) < 0 ||
	    add_ext(cert, ca->cert, NID_key_usage, "critical,digitalSignature", e) < 0 ||
	    add_ext(cert, ca->cert, NID_ext_key_usage, "serverAuth,clientAuth", e) < 0 ||
	    add_ext(cert, ca->cert, NID_subject_alt_name, buf_cstr(&san), e) < 0 ||
	    add_ext(cert, ca->cert, NID_subject_key_identifier, "hash", e) < 0 ||
	    add_ext(cert, ca->cert, NID_authority_key_identifier, "keyid:always", e) < 0)
		goto out;
	if (X509_sign(cert, ca->key, EVP_sha256()) <= 0) {
		ossl_error(e, "cannot sign a node certificate");
		goto out;
	}
	rc = save_pair(dir, name, key, cert, e);
out:
	if (rc < 0)
		err_prefix(e, "node %s", name);
	EVP_PKEY_free(key);
	X509_free(cert);
	buf_free(&san);
	return rc;
}

/* Refuses to go on if a file we would write exists (unless replacing). */
static int check_free(const char *dir, const char *name, struct err *e)
{
	static const char *const exts[] = {"key", "crt"};
	struct buf path = BUF_INIT;
	int rc = 0;

	for (size_t i = 0; i < 2 && rc == 0; i++) {
		if (file_path(&path, dir, name, exts[i], e) < 0)
			rc = -1;
		else if (access(buf_cstr(&path), F_OK) == 0)
			rc = err_set(e, EEXIST,
				     "%s already exists: gen-certs does not overwrite it (--force "
				     "replaces the CA and every listed node; --add signs new nodes "
				     "with the existing CA)",
				     buf_cstr(&path));
	}
	buf_free(&path);
	return rc;
}

static int prepare_dir(const char *dir, const char *const *names, size_t n, enum certs_mode mode,
		       struct err *e)
{
	for (size_t i = 0; i < n; i++)
		if (certs_check_name(names[i], e) < 0)
			return -1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_sys(e, "cannot create %s", dir);
	if (mode == CERTS_REPLACE)
		return 0;
	if (mode == CERTS_NEW && check_free(dir, CA_NAME, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (check_free(dir, names[i], e) < 0)
			return -1;
	return 0;
}

int certs_generate(const char *dir, const char *const *names, size_t n, enum certs_mode mode,
		   struct err *e)
{
	struct issuer ca = {NULL, NULL};
	int rc = -1;

	if (prepare_dir(dir, names, n, mode, e) < 0)
		return -1;
	if (mode == CERTS_ADD
		? load_ca(dir, &ca, e) < 0
		: (make_ca(&ca, e) < 0 || save_pair(dir, CA_NAME, ca.key, ca.cert, e) < 0))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (make_node(dir, names[i], &ca, e) < 0)
			goto out;
	rc = 0;
out:
	EVP_PKEY_free(ca.key);
	X509_free(ca.cert);
	return rc;
}

int certs_fingerprint(const char *path, struct buf *out, struct err *e)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *cert = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	BIO_free(b);
	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &len) != 1) {
		X509_free(cert);
		ossl_error(e, "cannot read certificate");
		return err_prefix(e, "%s", path);
	}
	X509_free(cert);
	return certs_format_fingerprint(out, md, len);
}

int certs_format_fingerprint(struct buf *out, const unsigned char *md, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf_printf(out, "%02X%s", md[i], i + 1 < n ? ":" : "") < 0)
			return -1;
	return 0;
}
