/*
 * json.c — minimal JSON writer (see json.h).
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "json.h"

void json_init(struct json *j, struct buf *out)
{
	j->out = out;
	j->depth = 0;
	j->first[0] = true;
}

/* Writes the separator before a value at the current depth. */
static void sep(struct json *j)
{
	if (!j->first[j->depth])
		buf_putc(j->out, ',');
	j->first[j->depth] = false;
}

static void open_(struct json *j, char c)
{
	sep(j);
	buf_putc(j->out, c);
	if (j->depth < JSON_MAX_DEPTH - 1)
		j->depth++;
	j->first[j->depth] = true;
}

static void close_(struct json *j, char c)
{
	buf_putc(j->out, c);
	if (j->depth > 0)
		j->depth--;
}

void json_begin_obj(struct json *j)
{
	open_(j, '{');
}

void json_end_obj(struct json *j)
{
	close_(j, '}');
}

void json_begin_arr(struct json *j)
{
	open_(j, '[');
}

void json_end_arr(struct json *j)
{
	close_(j, ']');
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
	size_t n;
	unsigned c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	}
	return n;
}

static void write_string(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	buf_putc(out, '"');
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t u;

		if (c == '"' || c == '\\') {
			buf_putc(out, '\\');
			buf_putc(out, (char)c);
			i++;
		} else if (c == '\n') {
			buf_puts(out, "\\n");
			i++;
		} else if (c == '\t') {
			buf_puts(out, "\\t");
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			buf_printf(out, "\\u%04x", c);
			i++;
		} else if ((u = utf8_len(p + i, n - i)) == 0) {
			buf_printf(out, "\\u%04x", c); /* the raw byte, as a code point */
			i++;
		} else {
			buf_append(out, p + i, u);
			i += u;
		}
	}
	buf_putc(out, '"');
}

void json_key(struct json *j, const char *key)
{
	sep(j);
	write_string(j->out, key, strlen(key));
	buf_putc(j->out, ':');
	j->first[j->depth] = true; /* the value follows without a comma */
}

void json_strn(struct json *j, const char *s, size_t n)
{
	sep(j);
	write_string(j->out, s, n);
}

void json_str(struct json *j, const char *s)
{
	json_strn(j, s, strlen(s));
}

void json_u64(struct json *j, uint64_t v)
{
	sep(j);
	buf_printf(j->out, "%" PRIu64, v);
}

void json_i64(struct json *j, int64_t v)
{
	sep(j);
	buf_printf(j->out, "%" PRId64, v);
}

void json_double(struct json *j, double v)
{
	sep(j);
	if (isfinite(v))
		buf_printf(j->out, "%.6g", v);
	else
		buf_puts(j->out, "null");
}

void json_bool(struct json *j, bool v)
{
	sep(j);
	buf_puts(j->out, v ? "true" : "false");
}

void json_null(struct json *j)
{
	sep(j);
	buf_puts(j->out, "null");
}

void json_key_str(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_str(j, s);
}

void json_key_u64(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	json_u64(j, v);
}

void json_key_i64(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	json_i64(j, v);
}

void json_key_double(struct json *j, const char *key, double v)
{
	json_key(j, key);
	json_double(j, v);
}

void json_key_bool(struct json *j, const char *key, bool v)
{
	json_key(j, key);
	json_bool(j, v);
}
