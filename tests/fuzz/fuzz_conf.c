/*
 * fuzz_conf.c — libFuzzer target for the config parser (lib/conf.c:
 * conf_parse, conf_override, conf_validate, conf_dump), `make fuzz`, see
 * tests/fuzz/README.
 *
 * Input: a config text; if it contains a line "%%", the text before it is
 * the file and every line after it is one "-o section.key=value"
 * override.
 *
 * Oracles beyond "no crash, no sanitizer report": a refused file names
 * itself and the line (ERR_CONFIG, "fuzz.conf:N"), a refused override
 * names itself ("-o ..."); and what `mdreplctl config` prints is a config
 * file that parses back to the same settings (conf_dump of the result
 * parses, and dumps identically).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fuzzutil.h"

#define ORIGIN "fuzz.conf"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_scratch(); /* quiet logging */
	return 0;
}

static char *dump(const struct settings *s, size_t *len_r)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len_r);

	if (f == NULL)
		abort();
	conf_dump(s, f);
	if (fclose(f) != 0)
		abort();
	return text;
}

/* The printed configuration must read back as itself. */
static void check_round_trip(const struct settings *s)
{
	struct settings again;
	struct err e = {0};
	size_t n1, n2;
	char *d1 = dump(s, &n1), *d2;

	conf_defaults(&again);
	if (conf_parse(&again, d1, n1, "dump", &e) < 0) {
		fprintf(stderr, "conf_dump output does not parse: %s\n%s", e.msg, d1);
		abort();
	}
	d2 = dump(&again, &n2);
	if (n1 != n2 || memcmp(d1, d2, n1) != 0) {
		fprintf(stderr, "conf_dump output does not read back the same:\n%s---\n%s", d1,
			d2);
		abort();
	}
	free(d1);
	free(d2);
	conf_free(&again);
}

static void overrides(struct settings *s, const char *p, const char *end)
{
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *lend = nl ? nl : end;
		char *line = strndup(p, (size_t)(lend - p));
		struct err e = {0};

		if (conf_override(s, line, &e) < 0 &&
		    (e.code != ERR_CONFIG || strncmp(e.msg, "-o ", 3) != 0))
			abort();
		free(line);
		p = nl ? nl + 1 : end;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *sep = NULL;
	size_t len = size;
	struct settings s;
	struct err e = {0};

	if (size >= 3 && memcmp(data, "%%\n", 3) == 0)
		sep = text;
	else if (size >= 4)
		sep = memmem(data, size, "\n%%\n", 4);
	if (sep != NULL)
		len = (size_t)(sep - text) + (sep == text ? 0 : 1);
	conf_defaults(&s);
	if (conf_parse(&s, text, len, ORIGIN, &e) < 0) {
		if (e.code != ERR_CONFIG || strncmp(e.msg, ORIGIN ":", strlen(ORIGIN) + 1) != 0)
			abort();
		conf_free(&s);
		return 0;
	}
	if (sep != NULL)
		overrides(&s, strchr(sep + (sep == text ? 0 : 1), '\n') + 1, text + size);
	conf_validate(&s, &e);
	check_round_trip(&s);
	conf_free(&s);
	return 0;
}
