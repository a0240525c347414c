/*
 * conf.h — mdrepl.conf: the option table, the parser, and the typed
 * settings every program reads.
 *
 * Syntax (mdrepl.conf(5)):
 *     # comment            ; comment
 *     [section]
 *     key = value          # trailing comment after whitespace
 *     key = "quoted # not a comment, \" and \\ escaped"
 *
 * Every option is declared once, in the table in conf.c, with its type,
 * default, bounds and a one-line meaning; the parser, `mdreplctl config`
 * and the mdrepl.conf(5) man page all come from that table. An unknown
 * section or key, a bad value and a key given twice are errors that name
 * file:line. Command-line overrides ("-o section.key=value") go through
 * the same parser.
 */
#ifndef MDREPL_CONF_H
#define MDREPL_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define MDREPL_DEFAULT_CONFIG SYSCONFDIR "/mdrepl/mdrepl.conf"
#define MDREPL_DEFAULT_PORT 7870

struct strlist {
	char **v;
	size_t n;
};

struct settings {
	struct {
		char *mail_root;
		char *state_dir;
		char *initial_role; /* "primary" | "standby" */
		char name_separator;
		char *metrics_dir; /* "" = off */
		bool preserve_owner;
	} node;
	struct {
		uint64_t fsync_interval_ms; /* 0 = fsync every record */
		uint64_t fsync_records;
		uint64_t max_size;
		uint64_t segment_size;
		struct strlist exclude; /* added to the built-in defaults */
	} journal;
	struct {
		char *address;
	} listen;
	struct {
		char *address;
		uint64_t connect_timeout_ms;
		uint64_t io_timeout_ms;
		uint64_t keepalive_s;
	} peer;
	struct {
		char *ca_file;
		char *cert_file;
		char *key_file;
		char *peer_fingerprint;
		bool insecure;
	} tls;
	struct {
		uint64_t batch_max_ops;
		uint64_t batch_max_bytes;
		uint64_t window;
		uint64_t coalesce_ms;
		char *compress;		 /* "auto" | "always" | "never" */
		uint64_t compress_level; /* zlib level, 1-9 */
		char *apply_sync;	 /* "syncfs" | "fsync" */
	} sync;
	struct {
		uint64_t rate_limit; /* bytes per second read for --deep; 0 = none */
		uint64_t settle_timeout_s;
	} audit;
	struct {
		char *dir;
		uint64_t timeout_s;
	} hooks;
	struct {
		char *level;  /* error | warn | info | debug */
		char *target; /* stderr | syslog */
	} log;
};

enum opt_type { OPT_STR, OPT_PATH, OPT_BOOL, OPT_UINT, OPT_SIZE, OPT_ENUM, OPT_LIST, OPT_ADDR, OPT_CHAR };

struct opt_def {
	const char *section;
	const char *key;
	enum opt_type type;
	const char *def;	    /* default, in config syntax; "" = unset */
	size_t offset;		    /* into struct settings */
	uint64_t min, max;	    /* OPT_UINT / OPT_SIZE bounds */
	const char *const *choices; /* OPT_ENUM: NULL-terminated */
	const char *help;	    /* meaning, one sentence, for man page and --help */
};

/* The option table, terminated by an entry with section == NULL. */
const struct opt_def *conf_table(void);
const char *conf_type_name(enum opt_type t);

/* Fills s with the defaults. Call before conf_load(). */
void conf_defaults(struct settings *s);
/* Reads a config file into s. Errors name path:line. */
int conf_load(struct settings *s, const char *path, struct err *e);
/* Parses a whole config text; origin names it in errors. */
int conf_parse(struct settings *s, const char *text, size_t len, const char *origin,
		 struct err *e);
/* Applies one "section.key=value" override (from -o). */
int conf_override(struct settings *s, const char *assignment, struct err *e);
/* Checks cross-option rules (required keys, absolute paths). */
int conf_validate(const struct settings *s, struct err *e);
/* Prints the effective configuration in config syntax. */
void conf_dump(const struct settings *s, FILE *out);
void conf_free(struct settings *s);

/* Splits "host:port" / "[v6]:port" / "host" (default port). */
int conf_split_addr(const char *addr, char *host, size_t hostlen, unsigned *port_r,
		      struct err *e);

#endif
