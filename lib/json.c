/*
 * json.c — minimal JSON writer (see json.h).
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
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

/* Copies the JSON string starting after its opening quote; returns the
 * position after the closing quote, or NULL if malformed. */
static const char *read_string(const char *p, struct buf *out)
{
	while (*p != '\0' && *p != '"') {
		if (*p != '\\') {
			buf_putc(out, *p++);
			continue;
		}
		p++;
		switch (*p) {
		case 'n': buf_putc(out, '\n'); p++; break;
		case 't': buf_putc(out, '\t'); p++; break;
		case 'u': {
			unsigned v = 0;

			/* Four hex digits; the NUL at the end is not one, so
			 * nothing past it is read. */
			for (int i = 1; i <= 4; i++) {
				int d = hex_value(p[i]);

				if (d < 0)
					return NULL;
				v = v << 4 | (unsigned)d;
			}
			buf_putc(out, v < 0x100 ? (char)v : '?');
			p += 5;
			break;
		}
		case '\0': return NULL;
		default: buf_putc(out, *p++); break;
		}
	}
	return *p == '"' ? p + 1 : NULL;
}

int json_lookup(const char *obj, const char *key, struct buf *out)
{
	size_t klen = strlen(key);
	int depth = 0;
	bool in_str = false;

	buf_reset(out);
	for (const char *p = obj; *p != '\0'; p++) {
		if (in_str) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				in_str = false;
			continue;
		}
		if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			depth--;
		} else if (*p == '"') {
			/* A member name at depth 1 followed by ':' is a candidate. */
			if (depth == 1 && strncmp(p + 1, key, klen) == 0 && p[1 + klen] == '"' &&
			    p[2 + klen] == ':') {
				const char *v = p + 3 + klen, *end;

				if (*v == '"')
					return read_string(v + 1, out) ? 0 : -1;
				for (end = v; *end && *end != ',' && *end != '}'; end++)
					;
				buf_append(out, v, (size_t)(end - v));
				return 0;
			}
			in_str = true;
		}
	}
	return -1;
}

double json_lookup_num(const char *obj, const char *key, double def)
{
	struct buf v = BUF_INIT;
	double r = def;
	char *end;

	if (json_lookup(obj, key, &v) == 0 && v.len > 0) {
		r = strtod(buf_cstr(&v), &end);
		if (*end != '\0')
			r = def;
	}
	buf_free(&v);
	return r;
}

bool json_lookup_bool(const char *obj, const char *key)
{
	struct buf v = BUF_INIT;
	bool r = json_lookup(obj, key, &v) == 0 && strcmp(buf_cstr(&v), "true") == 0;

	buf_free(&v);
	return r;
}
