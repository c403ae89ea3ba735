/* SPDX-License-Identifier: MIT */
/*
 * A small streaming JSON writer: nested objects and arrays, escaped strings,
 * numbers (non-finite ones become null). Keys are given for members of an
 * object and NULL for elements of an array or the top-level value. Errors
 * (from the stream) are sticky: check bench_json_finish().
 */
#ifndef BENCH_JSON_H
#define BENCH_JSON_H

#include <stdint.h>
#include <stdio.h>

#define BENCH_JSON_DEPTH 16

struct bench_json {
	FILE *f;
	int depth;
	int count[BENCH_JSON_DEPTH]; /* values written at each level */
	int err;
};

void bench_json_init(struct bench_json *j, FILE *f);
void bench_json_object_begin(struct bench_json *j, const char *key);
void bench_json_object_end(struct bench_json *j);
void bench_json_array_begin(struct bench_json *j, const char *key);
void bench_json_array_end(struct bench_json *j);
void bench_json_string(struct bench_json *j, const char *key, const char *value);
void bench_json_number(struct bench_json *j, const char *key, double value);
void bench_json_uint(struct bench_json *j, const char *key, uint64_t value);
void bench_json_bool(struct bench_json *j, const char *key, int value);
void bench_json_null(struct bench_json *j, const char *key);
/* Object members already in JSON ("\"a\": 1, \"b\": 2"), spliced into the open object. */
void bench_json_members(struct bench_json *j, const char *members);
/* Ends the document (newline, flush). 0, or -EIO when a write failed or nesting is open. */
int bench_json_finish(struct bench_json *j);

#endif /* BENCH_JSON_H */
