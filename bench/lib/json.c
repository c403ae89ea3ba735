// SPDX-License-Identifier: MIT
/* Streaming JSON writer; see json.h. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>

static void indent(struct bench_json *j)
{
	fputc('\n', j->f);
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->f);
}

static void put_string(struct bench_json *j, const char *s)
{
	fputc('"', j->f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(j->f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", j->f);
		else if (*p == '\t')
			fputs("\\t", j->f);
		else if (*p < 0x20)
			fprintf(j->f, "\\u%04x", *p);
		else
			fputc(*p, j->f);
	}
	fputc('"', j->f);
}

/* Separator, indentation and key before a value. */
static void lead(struct bench_json *j, const char *key)
{
	if (j->depth > 0) {
		if (j->count[j->depth]++)
			fputc(',', j->f);
		indent(j);
	}
	if (key) {
		put_string(j, key);
		fputs(": ", j->f);
	}
}

void bench_json_init(struct bench_json *j, FILE *f)
{
	*j = (struct bench_json){.f = f};
}

static void open_(struct bench_json *j, const char *key, char c)
{
	lead(j, key);
	fputc(c, j->f);
	if (j->depth + 1 >= BENCH_JSON_DEPTH) {
		j->err = -EINVAL;
		return;
	}
	j->count[++j->depth] = 0;
}

static void close_(struct bench_json *j, char c)
{
	int had = j->count[j->depth];

	if (j->depth == 0) {
		j->err = -EINVAL;
		return;
	}
	j->depth--;
	if (had)
		indent(j);
	fputc(c, j->f);
}

void bench_json_object_begin(struct bench_json *j, const char *key)
{
	open_(j, key, '{');
}

void bench_json_object_end(struct bench_json *j)
{
	close_(j, '}');
}

void bench_json_array_begin(struct bench_json *j, const char *key)
{
	open_(j, key, '[');
}

void bench_json_array_end(struct bench_json *j)
{
	close_(j, ']');
}

void bench_json_string(struct bench_json *j, const char *key, const char *value)
{
	lead(j, key);
	put_string(j, value ? value : "");
}

void bench_json_number(struct bench_json *j, const char *key, double value)
{
	lead(j, key);
	if (!isfinite(value))
		fputs("null", j->f);
	else if (value == floor(value) && fabs(value) < 1e15)
		fprintf(j->f, "%.0f", value); /* byte counts stay exact */
	else
		fprintf(j->f, "%.6g", value);
}

void bench_json_uint(struct bench_json *j, const char *key, uint64_t value)
{
	lead(j, key);
	fprintf(j->f, "%" PRIu64, value);
}

void bench_json_bool(struct bench_json *j, const char *key, int value)
{
	lead(j, key);
	fputs(value ? "true" : "false", j->f);
}

void bench_json_null(struct bench_json *j, const char *key)
{
	lead(j, key);
	fputs("null", j->f);
}

void bench_json_members(struct bench_json *j, const char *members)
{
	if (!members || !*members)
		return;
	if (j->count[j->depth]++)
		fputc(',', j->f);
	indent(j);
	fputs(members, j->f);
}

int bench_json_finish(struct bench_json *j)
{
	fputc('\n', j->f);
	if (fflush(j->f) || ferror(j->f))
		j->err = -EIO;
	return j->err ? j->err : j->depth ? -EINVAL : 0;
}
