/*
 * metrics.c — Prometheus text format from a daemon's status object (see
 * metrics.h).
 */
#include "config.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "metrics.h"

/* Members that only grow: exposed as counters (_total). */
static const char *const counters[] = {
	"records", "events", "batches", "ops", "content_bytes", "needs", "refused", "errors",
	"reconnects", "full_compares", "files_sent", "bytes_sent", "renames", "links", "unlinks",
	"deltas", "wire_bytes_out", "wire_bytes_in", "overflows", "rescans", "appends", "fsyncs",
	NULL,
};

static bool is_counter(struct slice key)
{
	for (const char *const *c = counters; *c != NULL; c++) {
		if (slice_eq_cstr(key, *c))
			return true;
	}
	return false;
}

struct member {
	struct slice key;
	struct slice value; /* raw: a number, true/false/null, or a string's contents */
	bool is_string;
};

/* Scans a JSON string body at p (after the opening quote); returns the
 * position of the closing quote or NULL. Escapes are kept as they are. */
static const char *string_end(const char *p)
{
	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			return p;
	}
	return NULL;
}

/* Skips a nested object or array starting at p; returns the end or NULL. */
static const char *skip_nested(const char *p)
{
	int depth = 0;

	for (; *p != '\0'; p++) {
		if (*p == '"') {
			p = string_end(p + 1);
			if (p == NULL)
				return NULL;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if ((*p == '}' || *p == ']') && --depth == 0) {
			return p + 1;
		}
	}
	return NULL;
}

/* Reads the next member of a flat object; 1 = a member, 0 = end, -1 = bad. */
static int next_member(const char **pp, struct member *m)
{
	const char *p = *pp, *q;

	while (*p == ',' || isspace((unsigned char)*p))
		p++;
	if (*p == '}')
		return 0;
	if (*p != '"' || (q = string_end(p + 1)) == NULL)
		return -1;
	m->key = (struct slice){p + 1, (size_t)(q - p - 1)};
	p = q + 1;
	if (*p++ != ':')
		return -1;
	m->is_string = *p == '"';
	if (m->is_string) {
		if ((q = string_end(p + 1)) == NULL)
			return -1;
		m->value = (struct slice){p + 1, (size_t)(q - p - 1)};
		p = q + 1;
	} else if (*p == '{' || *p == '[') {
		if ((q = skip_nested(p)) == NULL)
			return -1;
		m->value = (struct slice){"", 0};
		m->key.len = 0; /* nested: not exported */
		p = q;
	} else {
		for (q = p; *q != '\0' && *q != ',' && *q != '}'; q++)
			;
		m->value = (struct slice){p, (size_t)(q - p)};
		p = q;
	}
	*pp = p;
	return 1;
}

static void put_name(struct buf *out, const char *daemon, struct slice key)
{
	buf_printf(out, "mdrepl_%s_", daemon);
	for (size_t i = 0; i < key.len; i++)
		buf_putc(out, isalnum((unsigned char)key.p[i]) ? key.p[i] : '_');
}

static void put_label_value(struct buf *out, struct slice v)
{
	for (size_t i = 0; i < v.len; i++) {
		char c = v.p[i];

		if (c == '\\' && i + 1 < v.len && v.p[i + 1] == 'n') {
			buf_puts(out, "\\n");
			i++;
		} else if (c == '\\' && i + 1 < v.len) {
			/* JSON escapes of quote and backslash are Prometheus's too. */
			buf_putc(out, '\\');
			buf_putc(out, v.p[++i]);
		} else if (c == '"') {
			buf_puts(out, "\\\"");
		} else {
			buf_putc(out, c);
		}
	}
}

int metrics_render(const char *daemon, const char *status_json, struct buf *out,
		   struct err *e)
{
	const char *p = status_json;
	struct buf info = BUF_INIT;
	struct member m;
	int r;

	buf_reset(out);
	while (isspace((unsigned char)*p))
		p++;
	if (*p++ != '{')
		return err_set(e, ERR_PROTO, "%s status is not a JSON object", daemon);
	while ((r = next_member(&p, &m)) == 1) {
		if (m.key.len == 0)
			continue;
		if (m.is_string) {
			buf_puts(&info, info.len ? "," : "");
			for (size_t i = 0; i < m.key.len; i++)
				buf_putc(&info, isalnum((unsigned char)m.key.p[i]) ? m.key.p[i] : '_');
			buf_puts(&info, "=\"");
			put_label_value(&info, m.value);
			buf_putc(&info, '"');
			continue;
		}
		if (slice_eq_cstr(m.value, "null"))
			continue;
		buf_puts(out, "# TYPE ");
		put_name(out, daemon, m.key);
		buf_printf(out, "%s %s\n", is_counter(m.key) ? "_total" : "",
			   is_counter(m.key) ? "counter" : "gauge");
		put_name(out, daemon, m.key);
		buf_puts(out, is_counter(m.key) ? "_total " : " ");
		if (slice_eq_cstr(m.value, "true") || slice_eq_cstr(m.value, "false"))
			buf_putc(out, m.value.p[0] == 't' ? '1' : '0');
		else
			buf_put_slice(out, m.value);
		buf_putc(out, '\n');
	}
	if (r < 0) {
		buf_free(&info);
		return err_set(e, ERR_PROTO, "%s status is malformed JSON", daemon);
	}
	buf_printf(out, "# TYPE mdrepl_%s_info gauge\nmdrepl_%s_info{%s} 1\n", daemon, daemon,
		   buf_cstr(&info));
	buf_free(&info);
	return 0;
}

int metrics_write(const char *dir, const char *daemon, const char *status_json, struct err *e)
{
	struct buf text = BUF_INIT, path = BUF_INIT;
	int r = metrics_render(daemon, status_json, &text, e);

	if (r == 0) {
		buf_printf(&path, "%s/mdrepl_%s.prom", dir, daemon);
		/* Atomic (the collector must never read half a file); durability
		 * does not matter, the next write comes in seconds. */
		r = fs_write_replace(AT_FDCWD, buf_cstr(&path), text.data, text.len, 0644, e);
	}
	buf_free(&text);
	buf_free(&path);
	return r;
}
