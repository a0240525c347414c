/*
 * json.h — a minimal JSON writer for `status --json`, `audit --json` and
 * the control sockets. Writes into a struct buf; strings are escaped (bytes
 * that are not valid UTF-8 come out as \u00XX of the byte, so output is
 * always valid JSON).
 *
 *     json_begin_obj(&j);
 *     json_key_str(&j, "role", "primary");
 *     json_key_u64(&j, "lsn", 42);
 *     json_end_obj(&j);
 */
#ifndef MDREPL_JSON_H
#define MDREPL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JSON_MAX_DEPTH 16

struct json {
	struct buf *out;
	int depth;
	bool first[JSON_MAX_DEPTH]; /* no element written yet at this depth */
};

void json_init(struct json *j, struct buf *out);
void json_begin_obj(struct json *j);
void json_end_obj(struct json *j);
void json_begin_arr(struct json *j);
void json_end_arr(struct json *j);
/* Starts a member "key": inside an object (follow with a value or begin_*). */
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const char *s, size_t n);
void json_u64(struct json *j, uint64_t v);
void json_i64(struct json *j, int64_t v);
void json_double(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

/* Shorthands for a member with a value. */
void json_key_str(struct json *j, const char *key, const char *s);
void json_key_u64(struct json *j, const char *key, uint64_t v);
void json_key_i64(struct json *j, const char *key, int64_t v);
void json_key_double(struct json *j, const char *key, double v);
void json_key_bool(struct json *j, const char *key, bool v);

/* Reads the value of key in a flat JSON object as produced by this writer:
 * strings unescaped into out (\uXXXX below 0x100 as that byte), other
 * values as their text. Returns 0, or -1 if the key is absent. */
int json_lookup(const char *obj, const char *key, struct buf *out);
/* Same, converted: a missing or non-numeric value gives def. */
double json_lookup_num(const char *obj, const char *key, double def);
bool json_lookup_bool(const char *obj, const char *key);

#endif
