// SPDX-License-Identifier: MIT
/* --json FILE: everything the table shows, and more, for machines. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "zsbench.h"

static const char *const point_names[BENCH_NPOINTS] = {"fill", "half", "compact"};

static int rss_based(const char *kind)
{
	return !strcmp(kind, "glibc") || !strcmp(kind, "jemalloc") || !strcmp(kind, "mimalloc");
}

static void density(struct bench_json *j, const char *key, const struct bench_result *r,
		    double (*fn)(const struct bench_mem *))
{
	if (!r->ok || fn(&r->mem[0]) <= 0) {
		bench_json_null(j, key);
		return;
	}
	bench_json_object_begin(j, key);
	for (int p = 0; p < BENCH_NPOINTS; p++)
		bench_json_number(j, point_names[p], fn(&r->mem[p]));
	bench_json_object_end(j);
}

static void op(struct bench_json *j, const char *key, const struct bench_op_stats *st)
{
	bench_json_object_begin(j, key);
	bench_json_uint(j, "ops", st->ops);
	bench_json_number(j, "mb_s", st->mbps);
	bench_json_number(j, "p50_us", st->p50_us);
	bench_json_number(j, "p99_us", st->p99_us);
	bench_json_uint(j, "busy_ns", st->busy_ns);
	bench_json_uint(j, "wall_ns", st->wall_ns);
	bench_json_uint(j, "cpu_ns", st->cpu_ns);
	bench_json_number(j, "cpus", st->cpus);
	bench_json_number(j, "steal", st->steal);
	bench_json_object_end(j);
}

static void memory(struct bench_json *j, const struct bench_result *r)
{
	bench_json_object_begin(j, "memory");
	for (int p = 0; p < BENCH_NPOINTS; p++) {
		const struct bench_mem *m = &r->mem[p];

		bench_json_object_begin(j, point_names[p]);
		bench_json_number(j, "payload_bytes", m->payload >= 0 ? m->payload : NAN);
		bench_json_number(j, "held_bytes", m->held >= 0 ? m->held : NAN);
		bench_json_number(j, "rss_bytes", m->rss >= 0 ? m->rss : NAN);
		bench_json_object_end(j);
	}
	bench_json_number(j, "rss_peak_bytes", r->rss_peak >= 0 ? r->rss_peak : NAN);
	bench_json_object_end(j);
}

static void timeline(struct bench_json *j, const struct bench_result *r)
{
	bench_json_array_begin(j, "timeline");
	for (unsigned i = 0; i < r->nsamples; i++) {
		const struct bench_sample *s = &r->samples[i];

		bench_json_array_begin(j, NULL);
		bench_json_number(j, NULL, s->x);
		bench_json_number(j, NULL, s->held >= 0 ? s->held : NAN);
		bench_json_number(j, NULL, s->rss >= 0 ? s->rss : NAN);
		bench_json_array_end(j);
	}
	bench_json_array_end(j);
}

void zsb_json_result(struct bench_json *j, const char *kind, const struct bench_result *r,
		     unsigned runs)
{
	bench_json_object_begin(j, NULL);
	bench_json_string(j, "name", r->name[0] ? r->name : kind);
	bench_json_string(j, "kind", kind);
	bench_json_uint(j, "runs", runs);
	bench_json_bool(j, "ok", r->ok);
	bench_json_bool(j, "verified", r->verified);
	if (r->error[0])
		bench_json_string(j, "error", r->error);
	else
		bench_json_null(j, "error");
	bench_json_uint(j, "pages", r->pages);
	bench_json_uint(j, "freed", r->freed);
	bench_json_uint(j, "mismatches", r->mismatches);
	density(j, "density", r, rss_based(kind) ? bench_density_rss : bench_density_held);
	density(j, "density_held", r, bench_density_held);
	density(j, "density_rss", r, bench_density_rss);
	memory(j, r);
	op(j, "store", &r->op[BENCH_FILL]);
	op(j, "free", &r->op[BENCH_FREE]);
	bench_json_object_begin(j, "compact");
	bench_json_number(j, "ms", (double)r->op[BENCH_COMPACT].busy_ns / 1e6);
	bench_json_number(j, "pages_freed", (double)r->compacted);
	bench_json_object_end(j);
	op(j, "load", &r->op[BENCH_LOAD]);
	bench_json_object_begin(j, "extra");
	bench_json_members(j, r->extra);
	bench_json_object_end(j);
	timeline(j, r);
	bench_json_object_end(j);
}

void zsb_json_corpus(struct bench_json *j, const struct zsb_ctx *ctx)
{
	const struct bench_size_hist *h = &ctx->hist;
	char hash[24];

	snprintf(hash, sizeof(hash), "%016" PRIx64, ctx->pages_hash);
	bench_json_object_begin(j, "corpus");
	bench_json_string(j, "source", ctx->pages.source);
	bench_json_uint(j, "pages", ctx->pages.npages);
	bench_json_uint(j, "bytes", (uint64_t)ctx->pages.npages * BENCH_PAGE_SIZE);
	bench_json_uint(j, "seed", ctx->opt->seed);
	bench_json_string(j, "hash", hash);
	bench_json_string(j, "algorithm", ctx->opt->algorithm);
	bench_json_number(j, "level", ctx->opt->level);
	if (ctx->hist_ok) {
		bench_json_uint(j, "stored_bytes", h->stored_bytes);
		bench_json_uint(j, "zero_pages", h->zero);
		bench_json_uint(j, "same_pages", h->same);
		bench_json_uint(j, "huge_pages", h->huge);
		bench_json_uint(j, "huge_threshold", h->huge_threshold);
		bench_json_uint(j, "histogram_bin_bytes", BENCH_HIST_BIN);
		bench_json_array_begin(j, "histogram");
		for (int b = 0; b < BENCH_HIST_BINS; b++)
			bench_json_uint(j, NULL, h->bins[b]);
		bench_json_array_end(j);
	}
	bench_json_object_end(j);
}

FILE *zsb_json_begin(struct bench_json *j, const struct zsb_ctx *ctx, const char *path,
		     const char *tool)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		zsb_error("%s: %s", path, strerror(errno));
		return NULL;
	}
	bench_json_init(j, f);
	bench_json_object_begin(j, NULL);
	bench_json_string(j, "tool", tool);
	bench_json_string(j, "version", ZSBENCH_VERSION);
	zsb_json_corpus(j, ctx);
	return f;
}

int zsb_json_end(struct bench_json *j, FILE *f, const char *path)
{
	int err;

	bench_json_object_end(j);
	err = bench_json_finish(j);
	if (fclose(f) || err) {
		zsb_error("%s: write failed", path);
		return -EIO;
	}
	return 0;
}

int zsb_write_json(const struct zsb_ctx *ctx, const char *path)
{
	const struct zsb_options *opt = ctx->opt;
	struct bench_json j;
	FILE *f = zsb_json_begin(&j, ctx, path, "zsbench");

	if (!f)
		return -EIO;
	bench_json_object_begin(&j, "config");
	bench_json_uint(&j, "threads", opt->threads);
	bench_json_number(&j, "free_fraction", opt->free_fraction);
	bench_json_uint(&j, "repeat", opt->repeat);
	bench_json_uint(&j, "chain_size", opt->chain_size ? opt->chain_size : 8); /* the pool's default */
	bench_json_bool(&j, "zsram_built",
#ifdef HAVE_ZSRAM
			1
#else
			0
#endif
	);
	bench_json_object_end(&j);
	bench_json_array_begin(&j, "stores");
	for (int s = 0; s < ST_NSTORES; s++)
		if (ctx->ran[s])
			zsb_json_result(&j, zsb_store_key(s), &ctx->median[s], opt->repeat);
	bench_json_array_end(&j);
	bench_json_array_begin(&j, "skipped");
	for (int s = 0; s < ST_NSTORES; s++)
		if (ctx->skipped[s]) {
			bench_json_object_begin(&j, NULL);
			bench_json_string(&j, "kind", zsb_store_key(s));
			bench_json_string(&j, "reason", ctx->results[s][0].error);
			bench_json_object_end(&j);
		}
	bench_json_array_end(&j);
	bench_json_array_begin(&j, "failed"); /* each makes the exit status 1 */
	for (int s = 0; s < ST_NSTORES; s++) {
		const char *why = "read-back verification failed";

		if (!ctx->failed[s])
			continue;
		for (unsigned k = opt->repeat; k-- > 0;) /* the first run's that failed */
			if (!ctx->results[s][k].ok)
				why = ctx->results[s][k].error;
		bench_json_object_begin(&j, NULL);
		bench_json_string(&j, "kind", zsb_store_key(s));
		bench_json_string(&j, "reason", why);
		bench_json_object_end(&j);
	}
	bench_json_array_end(&j);
	if (ctx->ran[ST_ZSRAM] && ctx->ran[ST_RAW]) {
		/* paired per-round ratios, as the summary line gives them */
		bench_json_object_begin(&j, "zsram_vs_raw");
		bench_json_number(&j, "store", zsb_paired_ratio(ctx, ST_RAW, BENCH_FILL));
		bench_json_number(&j, "load", zsb_paired_ratio(ctx, ST_RAW, BENCH_LOAD));
		bench_json_object_end(&j);
	}
	bench_json_string(&j, "summary", ctx->summary);
	return zsb_json_end(&j, f, path);
}
