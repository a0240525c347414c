/*
 * conf.c — the option table and the mdrepl.conf parser (see conf.h).
 *
 * SECURITY: the config file is trusted (root-owned), but it is parsed with
 * the same bounds checks as anything else: line length, value ranges.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "xalloc.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
/* A value is at most CONFIG_MAX_VALUE bytes, from the file or from -o;
 * a line has room for one quoted with every byte escaped, so whatever
 * conf_dump prints (the config command) parses back. */
#define CONFIG_MAX_VALUE 4096
#define CONFIG_MAX_LINE (4 * CONFIG_MAX_VALUE)

#define OFF(f) offsetof(struct settings, f)

static const char *const roles[] = {"primary", "standby", NULL};
static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const targets[] = {"stderr", "syslog", NULL};
static const char *const sync_modes[] = {"syncfs", "fsync", NULL};
static const char *const compress_modes[] = {"auto", "always", "never", NULL};

#define KB 1024ULL
#define MB (1024ULL * KB)
#define GB (1024ULL * MB)
#define TB (1024ULL * GB)

/* clang-format off */
static const struct opt_def options[] = {
	{"node", "mail_root", OPT_PATH, "", OFF(node.mail_root), 0, 0, NULL,
	 "Root of the Maildir tree to replicate; every folder below it, at any depth, is replicated."},
	{"node", "state_dir", OPT_PATH, LOCALSTATEDIR "/lib/mdrepl", OFF(node.state_dir), 0, 0, NULL,
	 "Directory for the role, generation and node id, the journal, positions and control sockets."},
	{"node", "initial_role", OPT_ENUM, "standby", OFF(node.initial_role), 0, 0, roles,
	 "Role taken when state_dir is new; afterwards the role lives in state_dir and changes only by promote, demote or rejoin."},
	{"node", "name_separator", OPT_CHAR, ":", OFF(node.name_separator), 0, 0, NULL,
	 "Character between a message's base name and its info (\"2,FLAGS\"); \";\" on some systems."},
	{"node", "metrics_dir", OPT_PATH, "", OFF(node.metrics_dir), 0, 0, NULL,
	 "Every few seconds each daemon writes its metrics to mdrepl_DAEMON.prom in this directory, in Prometheus text format, for node_exporter's textfile collector; empty = off."},
	{"node", "preserve_owner", OPT_BOOL, "yes", OFF(node.preserve_owner), 0, 0, NULL,
	 "Give replicated files the owner and group they have on the primary (needs root on the standby)."},

	{"journal", "fsync_interval_ms", OPT_UINT, "50", OFF(journal.fsync_interval_ms), 0, 10000, NULL,
	 "Group commit: fsync the journal at most this often; 0 fsyncs every record."},
	{"journal", "fsync_records", OPT_UINT, "1000", OFF(journal.fsync_records), 1, 1000000, NULL,
	 "Group commit: fsync the journal after this many records even if the interval has not passed."},
	{"journal", "max_size", OPT_SIZE, "4G", OFF(journal.max_size), 1 * MB, 64 * TB, NULL,
	 "Largest size of the journal; past it the oldest segments are deleted and the standby is marked as needing a full sync."},
	{"journal", "segment_size", OPT_SIZE, "64M", OFF(journal.segment_size), 64 * KB, 4 * GB, NULL,
	 "Size at which a journal segment is closed and a new one started."},
	{"journal", "exclude", OPT_LIST, "", OFF(journal.exclude), 0, 0, NULL,
	 "Comma-separated file name patterns never replicated, added to the defaults (dovecot.index*, dovecot.list.index*, *.lock)."},

	{"listen", "address", OPT_ADDR, "127.0.0.1:7870", OFF(listen.address), 0, 0, NULL,
	 "Address and port mdrepl-syncd listens on (host:port, [v6]:port)."},

	{"peer", "address", OPT_ADDR, "", OFF(peer.address), 0, 0, NULL,
	 "Address of the other node's mdrepl-syncd, used by mdrepl-syncclient, audit and rejoin."},
	{"peer", "connect_timeout_ms", OPT_UINT, "5000", OFF(peer.connect_timeout_ms), 100, 600000, NULL,
	 "Give up connecting (TCP and TLS handshake) after this long."},
	{"peer", "io_timeout_ms", OPT_UINT, "60000", OFF(peer.io_timeout_ms), 1000, 3600000, NULL,
	 "Drop a connection on which nothing has moved for this long while a reply is due."},
	{"peer", "keepalive_s", OPT_UINT, "15", OFF(peer.keepalive_s), 1, 3600, NULL,
	 "Send a keepalive after this many idle seconds, so a dead peer is noticed."},

	{"tls", "ca_file", OPT_PATH, "", OFF(tls.ca_file), 0, 0, NULL,
	 "CA certificate (PEM) that signed the peer's certificate."},
	{"tls", "cert_file", OPT_PATH, "", OFF(tls.cert_file), 0, 0, NULL,
	 "This node's certificate (PEM)."},
	{"tls", "key_file", OPT_PATH, "", OFF(tls.key_file), 0, 0, NULL,
	 "This node's private key (PEM); refused if group or others can read it."},
	{"tls", "peer_fingerprint", OPT_STR, "", OFF(tls.peer_fingerprint), 0, 0, NULL,
	 "Optional SHA-256 fingerprint (hex, colons allowed) the peer's certificate must have."},
	{"tls", "insecure", OPT_BOOL, "no", OFF(tls.insecure), 0, 0, NULL,
	 "Allow plaintext to non-loopback addresses. Plaintext to loopback is always allowed when no certificate is configured."},

	{"sync", "batch_max_ops", OPT_UINT, "1000", OFF(sync.batch_max_ops), 1, 100000, NULL,
	 "Largest number of operations in one batch (one group commit on the standby)."},
	{"sync", "batch_max_bytes", OPT_SIZE, "16M", OFF(sync.batch_max_bytes), 64 * KB, 1 * GB, NULL,
	 "Largest number of content bytes in one batch."},
	{"sync", "window", OPT_UINT, "4", OFF(sync.window), 1, 64, NULL,
	 "Batches in flight before waiting for an acknowledgement."},
	{"sync", "coalesce_ms", OPT_UINT, "2", OFF(sync.coalesce_ms), 0, 10000, NULL,
	 "Wait this long for more journal records before sending, so create/rename/unlink of one message collapse."},
	{"sync", "compress", OPT_ENUM, "auto", OFF(sync.compress), 0, 0, compress_modes,
	 "Deflate message bodies and deltas: auto = while output backs up (the link may be the bottleneck), never to a peer on this host, always, or never. A deflated body is sent only when it is smaller."},
	{"sync", "compress_level", OPT_UINT, "1", OFF(sync.compress_level), 1, 9, NULL,
	 "zlib level used when deflating."},
	{"sync", "apply_sync", OPT_ENUM, "syncfs", OFF(sync.apply_sync), 0, 0, sync_modes,
	 "How the standby makes a batch durable: one syncfs() of the mail file system, or fsync() of each file."},

	{"audit", "rate_limit", OPT_SIZE, "0", OFF(audit.rate_limit), 0, 64 * GB, NULL,
	 "Largest rate, in bytes per second, at which audit reads message content (--deep); 0 = unlimited."},
	{"audit", "settle_timeout_s", OPT_UINT, "30", OFF(audit.settle_timeout_s), 1, 3600, NULL,
	 "How long audit waits for in-flight replication to settle before re-checking a difference."},

	{"hooks", "dir", OPT_PATH, SYSCONFDIR "/mdrepl/hooks.d", OFF(hooks.dir), 0, 0, NULL,
	 "Executables run (in name order) after promote, demote and rejoin, and around a switchover."},
	{"hooks", "timeout_s", OPT_UINT, "60", OFF(hooks.timeout_s), 1, 3600, NULL,
	 "A hook still running after this many seconds is killed and reported as failed."},

	{"log", "level", OPT_ENUM, "info", OFF(log.level), 0, 0, levels,
	 "Least severe level logged."},
	{"log", "target", OPT_ENUM, "stderr", OFF(log.target), 0, 0, targets,
	 "stderr (read by journald under systemd) or syslog (facility mail)."},

	{NULL, NULL, OPT_STR, NULL, 0, 0, 0, NULL, NULL},
};
/* clang-format on */

const struct opt_def *conf_table(void)
{
	return options;
}

const char *conf_type_name(enum opt_type t)
{
	switch (t) {
	case OPT_STR: return "string";
	case OPT_PATH: return "path";
	case OPT_BOOL: return "boolean";
	case OPT_UINT: return "integer";
	case OPT_SIZE: return "size";
	case OPT_ENUM: return "choice";
	case OPT_LIST: return "list";
	case OPT_ADDR: return "address";
	case OPT_CHAR: return "character";
	}
	return "?";
}

static void *field(struct settings *s, const struct opt_def *o)
{
	return (char *)s + o->offset;
}

static const void *cfield(const struct settings *s, const struct opt_def *o)
{
	return (const char *)s + o->offset;
}

static void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void free_value(struct settings *s, const struct opt_def *o)
{
	switch (o->type) {
	case OPT_STR:
	case OPT_PATH:
	case OPT_ENUM:
	case OPT_ADDR: {
		char **p = field(s, o);
		free(*p);
		*p = NULL;
		break;
	}
	case OPT_LIST:
		strlist_free(field(s, o));
		break;
	default:
		break;
	}
}

static int parse_uint(const char *v, uint64_t *r)
{
	char *end;

	if (!isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	*r = strtoull(v, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

/* "512", "64K", "16M", "4G", "1T", optionally followed by "B" or "iB". */
static int parse_size(const char *v, uint64_t *r)
{
	char *end;
	uint64_t n, mult = 1;

	if (!isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case 'K': mult = KB; end++; break;
	case 'M': mult = MB; end++; break;
	case 'G': mult = GB; end++; break;
	case 'T': mult = TB; end++; break;
	default: break;
	}
	if (mult > 1 && *end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || (mult > 1 && n > UINT64_MAX / mult))
		return -1;
	*r = n * mult;
	return 0;
}

static int parse_bool(const char *v, bool *r)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*r = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*r = false;
			return 0;
		}
	}
	return -1;
}

int conf_split_addr(const char *addr, char *host, size_t hostlen, unsigned *port_r,
		      struct err *e)
{
	const char *hend, *colon;
	uint64_t port = MDREPL_DEFAULT_PORT;
	size_t n;

	if (addr[0] == '[') {
		hend = strchr(addr, ']');
		if (hend == NULL)
			return err_set(e, ERR_CONFIG, "'%s': missing ']'", addr);
		addr++;
		colon = hend[1] == ':' ? hend + 1 : NULL;
		if (hend[1] != '\0' && colon == NULL)
			return err_set(e, ERR_CONFIG, "'%s': junk after ']'", addr - 1);
	} else {
		colon = strrchr(addr, ':');
		if (colon != NULL && strchr(addr, ':') != colon)
			return err_set(e, ERR_CONFIG,
				       "'%s': write IPv6 addresses as [address]:port", addr);
		hend = colon != NULL ? colon : addr + strlen(addr);
	}
	n = (size_t)(hend - addr);
	if (n == 0)
		return err_set(e, ERR_CONFIG, "'%s': missing host", addr);
	if (n >= hostlen)
		return err_set(e, ERR_CONFIG, "'%s': host name too long", addr);
	/* Port 0 is allowed: a listener then takes any free port (tests, demo). */
	if (colon != NULL && (parse_uint(colon + 1, &port) < 0 || port > 65535))
		return err_set(e, ERR_CONFIG, "'%s': port must be 0-65535", addr);
	memcpy(host, addr, n);
	host[n] = '\0';
	*port_r = (unsigned)port;
	return 0;
}

static int set_list(struct strlist *l, const char *v)
{
	const char *p = v;

	strlist_free(l);
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *a = p, *b = end;

		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		if (a == b)
			return -1; /* empty item */
		l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
		l->v[l->n++] = xstrndup(a, (size_t)(b - a));
		p = comma ? comma + 1 : end;
		if (comma && *p == '\0')
			return -1; /* trailing comma */
	}
	return 0;
}

/* Parses v into the field of o. Returns 0, or -1 with a message in e
 * describing the value (the caller adds where it came from). */
static int set_value(struct settings *s, const struct opt_def *o, const char *v, struct err *e)
{
	uint64_t n;

	if (strlen(v) > CONFIG_MAX_VALUE)
		return err_set(e, ERR_CONFIG, "%s.%s: value longer than %d bytes", o->section,
			       o->key, CONFIG_MAX_VALUE);
	switch (o->type) {
	case OPT_STR:
	case OPT_PATH:
		if (o->type == OPT_PATH && v[0] != '\0' && v[0] != '/')
			return err_set(e, ERR_CONFIG, "%s.%s must be an absolute path, not '%s'",
				       o->section, o->key, v);
		free_value(s, o);
		*(char **)field(s, o) = xstrdup(v);
		return 0;
	case OPT_ADDR: {
		char host[256];
		unsigned port;

		if (v[0] != '\0' && conf_split_addr(v, host, sizeof(host), &port, e) < 0)
			return err_prefix(e, "bad address for %s.%s", o->section, o->key);
		free_value(s, o);
		*(char **)field(s, o) = xstrdup(v);
		return 0;
	}
	case OPT_ENUM:
		for (const char *const *c = o->choices; *c != NULL; c++) {
			if (strcmp(*c, v) == 0) {
				free_value(s, o);
				*(char **)field(s, o) = xstrdup(v);
				return 0;
			}
		}
		{
			struct buf choices = BUF_INIT;
			for (const char *const *c = o->choices; *c != NULL; c++)
				buf_printf(&choices, "%s%s", c == o->choices ? "" : ", ", *c);
			err_set(e, ERR_CONFIG, "%s.%s must be one of %s, not '%s'", o->section,
				o->key, buf_cstr(&choices), v);
			buf_free(&choices);
		}
		return -1;
	case OPT_BOOL:
		if (parse_bool(v, field(s, o)) < 0)
			return err_set(e, ERR_CONFIG, "%s.%s must be yes or no, not '%s'",
				       o->section, o->key, v);
		return 0;
	case OPT_UINT:
	case OPT_SIZE:
		if ((o->type == OPT_UINT ? parse_uint(v, &n) : parse_size(v, &n)) < 0)
			return err_set(e, ERR_CONFIG, "%s.%s must be %s, not '%s'", o->section,
				       o->key,
				       o->type == OPT_UINT ? "a whole number"
							   : "a size such as 512K, 64M or 4G",
				       v);
		if (n < o->min || n > o->max)
			return err_set(e, ERR_CONFIG,
				       "%s.%s = %s is out of range (%" PRIu64 " to %" PRIu64 ")",
				       o->section, o->key, v, o->min, o->max);
		*(uint64_t *)field(s, o) = n;
		return 0;
	case OPT_LIST:
		if (set_list(field(s, o), v) < 0)
			return err_set(e, ERR_CONFIG,
				       "%s.%s: '%s' has an empty item in its comma-separated list",
				       o->section, o->key, v);
		return 0;
	case OPT_CHAR:
		if (strlen(v) != 1 || v[0] == '/' || isalnum((unsigned char)v[0]) ||
		    isspace((unsigned char)v[0]))
			return err_set(e, ERR_CONFIG,
				       "%s.%s must be one punctuation character, not '%s'",
				       o->section, o->key, v);
		*(char *)field(s, o) = v[0];
		return 0;
	}
	return err_set(e, ERR_CONFIG, "internal: unknown option type");
}

void conf_defaults(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	for (const struct opt_def *o = options; o->section != NULL; o++) {
		struct err e;

		if (set_value(s, o, o->def, &e) < 0)
			log_fatal("internal: bad built-in default: %s", e.msg);
	}
}

static const struct opt_def *find_option(const char *section, size_t seclen, const char *key,
					 size_t keylen)
{
	for (const struct opt_def *o = options; o->section != NULL; o++) {
		if (strlen(o->section) == seclen && strncmp(o->section, section, seclen) == 0 &&
		    strlen(o->key) == keylen && strncmp(o->key, key, keylen) == 0)
			return o;
	}
	return NULL;
}

static bool section_exists(const char *section, size_t len)
{
	for (const struct opt_def *o = options; o->section != NULL; o++) {
		if (strlen(o->section) == len && strncmp(o->section, section, len) == 0)
			return true;
	}
	return false;
}

static bool is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Parses the value part of a line (after '='), handling quotes and
 * trailing comments, into out. Returns 0 or -1 with a message in e. */
static int parse_value(const char *p, const char *end, struct buf *out, struct err *e)
{
	while (p < end && is_blank(*p))
		p++;
	if (p < end && *p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\') {
				if (++p == end)
					break;
				if (*p != '"' && *p != '\\')
					return err_set(e, ERR_CONFIG,
						       "unknown escape '\\%c' in quoted value", *p);
			}
			buf_putc(out, *p);
		}
		if (p == end)
			return err_set(e, ERR_CONFIG, "missing closing quote");
		for (p++; p < end && is_blank(*p); p++)
			;
		if (p < end && *p != '#' && *p != ';')
			return err_set(e, ERR_CONFIG, "junk after closing quote");
		return 0;
	}
	const char *v = p;
	for (; p < end; p++) {
		/* A comment starts at '#' or ';' preceded by whitespace. */
		if ((*p == '#' || *p == ';') && p > v && is_blank(p[-1]))
			break;
		if (*p == '"')
			return err_set(e, ERR_CONFIG, "quote in the middle of a value");
	}
	while (p > v && is_blank(p[-1]))
		p--;
	buf_append(out, v, (size_t)(p - v));
	return 0;
}

struct parser {
	struct settings *s;
	const char *origin;
	unsigned line;
	const char *section;
	size_t seclen;
	unsigned char seen[128]; /* which options were set in this file */
};

static int parse_line(struct parser *ps, const char *p, const char *end, struct err *e)
{
	const char *key, *kend, *eq;
	const struct opt_def *o;
	struct buf value = BUF_INIT;
	int r;

	while (p < end && is_blank(*p))
		p++;
	if (p == end || *p == '#' || *p == ';')
		return 0;
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));
		const char *rest;

		if (close == NULL)
			return err_set(e, ERR_CONFIG, "missing ']' in section header");
		for (rest = close + 1; rest < end && is_blank(*rest); rest++)
			;
		if (rest < end && *rest != '#' && *rest != ';')
			return err_set(e, ERR_CONFIG, "junk after section header");
		ps->section = p + 1;
		ps->seclen = (size_t)(close - p - 1);
		if (!section_exists(ps->section, ps->seclen))
			return err_set(e, ERR_CONFIG, "unknown section [%.*s]", (int)ps->seclen,
				       ps->section);
		return 0;
	}
	eq = memchr(p, '=', (size_t)(end - p));
	if (eq == NULL)
		return err_set(e, ERR_CONFIG, "expected 'key = value', '[section]' or a comment");
	key = p;
	for (kend = eq; kend > key && is_blank(kend[-1]); kend--)
		;
	if (kend == key)
		return err_set(e, ERR_CONFIG, "missing key before '='");
	if (ps->section == NULL)
		return err_set(e, ERR_CONFIG, "'%.*s' is outside any [section]",
			       (int)(kend - key), key);
	o = find_option(ps->section, ps->seclen, key, (size_t)(kend - key));
	if (o == NULL)
		return err_set(e, ERR_CONFIG, "unknown key '%.*s' in section [%.*s]",
			       (int)(kend - key), key, (int)ps->seclen, ps->section);
	if (ps->seen[o - options])
		return err_set(e, ERR_CONFIG, "duplicate key '%s' in section [%s]", o->key,
			       o->section);
	ps->seen[o - options] = 1;
	r = parse_value(eq + 1, end, &value, e);
	if (r == 0 && memchr(buf_cstr(&value), '\0', value.len) != NULL)
		r = err_set(e, ERR_CONFIG, "NUL byte in value");
	if (r == 0)
		r = set_value(ps->s, o, buf_cstr(&value), e);
	buf_free(&value);
	return r;
}

int conf_parse(struct settings *s, const char *text, size_t len, const char *origin,
		 struct err *e)
{
	struct parser ps = {.s = s, .origin = origin};
	const char *p = text, *end = text + len;

	_Static_assert(sizeof(options) / sizeof(options[0]) <= sizeof(ps.seen),
		       "parser.seen too small for the option table");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *lend = nl ? nl : end;

		ps.line++;
		if (lend - p > CONFIG_MAX_LINE)
			return err_set(e, ERR_CONFIG, "%s:%u: line longer than %d bytes", origin,
				       ps.line, CONFIG_MAX_LINE);
		if (parse_line(&ps, p, lend, e) < 0)
			return err_prefix(e, "%s:%u", origin, ps.line);
		p = nl ? nl + 1 : end;
	}
	return 0;
}

int conf_load(struct settings *s, const char *path, struct err *e)
{
	struct buf text;
	struct stat st;
	int fd, r = -1;

	buf_init(&text, CONFIG_MAX_BYTES);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, "cannot open config file %s", path);
	if (fstat(fd, &st) < 0) {
		err_sys(e, "cannot stat %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(e, ERR_CONFIG, "config file %s is not a regular file", path);
		goto out;
	}
	for (;;) {
		uint8_t *space = buf_space(&text, 4096);
		ssize_t n;

		if (space == NULL) {
			err_set(e, ERR_CONFIG, "config file %s is larger than %d bytes", path,
				CONFIG_MAX_BYTES);
			goto out;
		}
		n = read(fd, space, 4096);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_sys(e, "cannot read %s", path);
			goto out;
		}
		if (n == 0)
			break;
		buf_commit(&text, (size_t)n);
	}
	r = conf_parse(s, buf_cstr(&text), text.len, path, e);
out:
	close(fd);
	buf_free(&text);
	return r;
}

int conf_override(struct settings *s, const char *assignment, struct err *e)
{
	const char *dot = strchr(assignment, '.');
	const char *eq = strchr(assignment, '=');
	const struct opt_def *o;
	struct buf value = BUF_INIT;
	int r;

	if (dot == NULL || eq == NULL || dot > eq)
		return err_set(e, ERR_CONFIG, "-o %s: expected section.key=value", assignment);
	o = find_option(assignment, (size_t)(dot - assignment), dot + 1, (size_t)(eq - dot - 1));
	if (o == NULL)
		return err_set(e, ERR_CONFIG, "-o %s: unknown option '%.*s'", assignment,
			       (int)(eq - assignment), assignment);
	r = parse_value(eq + 1, eq + 1 + strlen(eq + 1), &value, e);
	if (r == 0)
		r = set_value(s, o, buf_cstr(&value), e);
	buf_free(&value);
	if (r == 0)
		return 0;
	/* A long value would push the reason out of the message. */
	if (strlen(assignment) > 128)
		return err_prefix(e, "-o %.*s=...", (int)(eq - assignment), assignment);
	return err_prefix(e, "-o %s", assignment);
}

int conf_validate(const struct settings *s, struct err *e)
{
	if (s->node.mail_root[0] == '\0')
		return err_set(e, ERR_CONFIG, "[node] mail_root is not set");
	if (s->node.state_dir[0] == '\0')
		return err_set(e, ERR_CONFIG, "[node] state_dir is not set");
	if ((s->tls.cert_file[0] == '\0') != (s->tls.key_file[0] == '\0'))
		return err_set(e, ERR_CONFIG, "[tls] cert_file and key_file must be set together");
	if (s->tls.cert_file[0] != '\0' && s->tls.ca_file[0] == '\0')
		return err_set(e, ERR_CONFIG,
			       "[tls] ca_file is needed to verify the peer when cert_file is set");
	if (s->tls.peer_fingerprint[0] != '\0') {
		size_t hex = 0;

		for (const char *p = s->tls.peer_fingerprint; *p != '\0'; p++) {
			if (isxdigit((unsigned char)*p))
				hex++;
			else if (*p != ':')
				return err_set(e, ERR_CONFIG,
					       "[tls] peer_fingerprint must be hex digits and colons");
		}
		if (hex != 64)
			return err_set(e, ERR_CONFIG,
				       "[tls] peer_fingerprint must be a SHA-256 fingerprint (64 hex digits)");
	}
	return 0;
}

/* Prints a value in config syntax, quoting when a reader would need it. */
static void dump_string(FILE *out, const char *v)
{
	bool quote = v[0] == '\0' ? false : strpbrk(v, "#;\"\\") != NULL ||
					     is_blank(v[0]) || is_blank(v[strlen(v) - 1]);

	if (!quote) {
		fputs(v, out);
		return;
	}
	fputc('"', out);
	for (; *v != '\0'; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', out);
		fputc(*v, out);
	}
	fputc('"', out);
}

void conf_dump(const struct settings *s, FILE *out)
{
	const char *section = NULL;

	for (const struct opt_def *o = options; o->section != NULL; o++) {
		const void *f = cfield(s, o);

		if (section == NULL || strcmp(section, o->section) != 0) {
			fprintf(out, "%s[%s]\n", section ? "\n" : "", o->section);
			section = o->section;
		}
		fprintf(out, "%s = ", o->key);
		switch (o->type) {
		case OPT_STR:
		case OPT_PATH:
		case OPT_ENUM:
		case OPT_ADDR:
			dump_string(out, *(char *const *)f);
			break;
		case OPT_BOOL:
			fputs(*(const bool *)f ? "yes" : "no", out);
			break;
		case OPT_UINT:
		case OPT_SIZE:
			fprintf(out, "%" PRIu64, *(const uint64_t *)f);
			break;
		case OPT_CHAR: {
			char c[2] = {*(const char *)f, '\0'};
			dump_string(out, c);
			break;
		}
		case OPT_LIST: {
			const struct strlist *l = f;
			struct buf items = BUF_INIT;

			/* One value for the whole list, quoted if an item needs it;
			 * no longer than the value it was parsed from. */
			for (size_t i = 0; i < l->n; i++)
				buf_printf(&items, "%s%s", i ? "," : "", l->v[i]);
			dump_string(out, buf_cstr(&items));
			buf_free(&items);
			break;
		}
		}
		fputc('\n', out);
	}
}

void conf_free(struct settings *s)
{
	for (const struct opt_def *o = options; o->section != NULL; o++)
		free_value(s, o);
}
