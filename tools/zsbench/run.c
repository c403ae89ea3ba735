// SPDX-License-Identifier: MIT
/*
 * The main run: every store in turn, --repeat times, then medians, the
 * table, the summary line, JSON and the plot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timing.h"
#include "zsbench.h"

static int run_one(struct zsb_ctx *ctx, enum zsb_store s, struct bench_result *res)
{
	switch (s) {
	case ST_ZSRAM:
		return zsb_run_zsram(ctx, res);
	case ST_GLIBC:
	case ST_JEMALLOC:
	case ST_MIMALLOC:
		return zsb_run_peer(ctx, s, res);
	case ST_KZRAM:
		return zsb_run_kzram(ctx, res);
	case ST_RAW:
		return zsb_run_raw(ctx, res);
	case ST_NSTORES:
		break;
	}
	return -EINVAL;
}

/*
 * One line per problem. A store this machine lacks (-ENOENT: its helper was
 * not built or cannot run; -ENODEV: no kernel zram here) is skipped; any
 * other problem fails the run: the store's process died or returned an
 * error, or pages read back wrong (zsbench(1), EXIT STATUS). A store that
 * failed without ever giving a result is not tried again.
 */
static void report_problem(struct zsb_ctx *ctx, enum zsb_store s, int err,
			   const struct bench_result *res)
{
	bench_bar_clear(&ctx->bar);
	if (err == -ENOENT || err == -ENODEV) {
		zsb_error("%s: %s", zsb_store_name(s), res->error[0] ? res->error : strerror(-err));
		ctx->skipped[s] = 1;
		return;
	}
	ctx->failed[s] = 1;
	if (!res->ok)
		zsb_error("%s: %s", zsb_store_name(s),
			  res->error[0] ? res->error : strerror(err ? -err : EIO));
	else
		zsb_error("%s: read-back verification FAILED: %llu pages differ", zsb_store_name(s),
			  (unsigned long long)res->mismatches);
}

int zsb_run_store(struct zsb_ctx *ctx, enum zsb_store s, struct bench_result *res)
{
	int err = run_one(ctx, s, res);

	if (err || !res->ok || !res->verified)
		report_problem(ctx, s, err, res);
	if (!ctx->skipped[s] && !(ctx->failed[s] && !res->ok && !ctx->ran[s]))
		ctx->ran[s] = 1;
	return err;
}

bool zsb_store_wanted(const struct zsb_ctx *ctx, enum zsb_store s)
{
	return (ctx->opt->stores & (1u << s)) && !ctx->skipped[s] &&
	       !(ctx->failed[s] && !ctx->ran[s]);
}

int zsb_stores_verdict(const struct zsb_ctx *ctx)
{
	int ran = 0, failed = 0;

	for (int s = 0; s < ST_NSTORES; s++) {
		ran |= ctx->ran[s];
		failed |= ctx->failed[s];
	}
	if (!ran)
		zsb_error("no store ran (each one asked for was skipped or failed: see above)");
	return ran && !failed ? 0 : -EIO;
}

static unsigned count_steps(const struct zsb_options *opt)
{
	unsigned n = 0;

	for (int s = 0; s < ST_NSTORES; s++)
		n += !!(opt->stores & (1u << s));
	return n * opt->repeat;
}

static void run_all(struct zsb_ctx *ctx)
{
	struct zsb_options *opt = ctx->opt;

	for (unsigned rep = 0; rep < opt->repeat; rep++) {
		for (int s = 0; s < ST_NSTORES; s++) {
			char label[64];

			if (!zsb_store_wanted(ctx, (enum zsb_store)s))
				continue;
			if (opt->repeat > 1)
				snprintf(label, sizeof(label), "%s (run %u/%u)", zsb_store_name(s),
					 rep + 1, opt->repeat);
			else
				snprintf(label, sizeof(label), "%s", zsb_store_name(s));
			bench_bar_step(&ctx->bar, label);
			zsb_run_store(ctx, (enum zsb_store)s, &ctx->results[s][rep]);
		}
	}
	bench_bar_clear(&ctx->bar);
}

/* The median over runs of the double at byte offset 'off' of each result. */
static double median_at(const struct bench_result *rs, unsigned n, size_t off)
{
	static double v[ZSB_MAX_REPEAT];
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++)
		if (rs[i].ok)
			memcpy(&v[k++], (const char *)&rs[i] + off, sizeof(double));
	return k ? bench_median(v, k) : 0;
}

#define OFF(r, field) ((size_t)((const char *)&(r).field - (const char *)&(r)))

void zsb_median_result(const struct bench_result *rs, unsigned n, struct bench_result *out)
{
	unsigned first = 0;

	while (first < n - 1 && !rs[first].ok)
		first++;
	*out = rs[first]; /* name, extra and timeline from the first good run */
	for (unsigned i = 0; i < n; i++) {
		out->ok &= rs[i].ok;
		out->verified &= rs[i].verified;
		out->mismatches += i == first ? 0 : rs[i].mismatches;
	}
	if (n == 1)
		return;
	for (int p = 0; p < BENCH_NPOINTS; p++) {
		out->mem[p].payload = median_at(rs, n, OFF(*out, mem[p].payload));
		out->mem[p].held = median_at(rs, n, OFF(*out, mem[p].held));
		out->mem[p].rss = median_at(rs, n, OFF(*out, mem[p].rss));
	}
	out->rss_peak = median_at(rs, n, OFF(*out, rss_peak));
	for (int ph = 0; ph < BENCH_NPHASES; ph++) {
		out->op[ph].mbps = median_at(rs, n, OFF(*out, op[ph].mbps));
		out->op[ph].p50_us = median_at(rs, n, OFF(*out, op[ph].p50_us));
		out->op[ph].p99_us = median_at(rs, n, OFF(*out, op[ph].p99_us));
		out->op[ph].cpus = median_at(rs, n, OFF(*out, op[ph].cpus));
		out->op[ph].steal = median_at(rs, n, OFF(*out, op[ph].steal));
	}
}

static int plot(struct zsb_ctx *ctx)
{
	const struct bench_result *rs[ST_NSTORES];
	const char *titles[ST_NSTORES];
	size_t n = 0;

	for (int s = 0; s < ST_NSTORES; s++)
		if (ctx->ran[s] && ctx->median[s].nsamples) {
			rs[n] = &ctx->median[s];
			titles[n++] = zsb_store_name(s);
		}
	return zsb_write_plot(ctx, ctx->opt->plot_path, rs, titles, n);
}

int zsb_bench(struct zsb_ctx *ctx)
{
	struct zsb_options *opt = ctx->opt;
	int bad = 0;

	for (int s = 0; s < ST_NSTORES; s++) {
		ctx->results[s] = calloc(opt->repeat, sizeof(struct bench_result));
		if (!ctx->results[s]) {
			zsb_error("out of memory");
			return -ENOMEM;
		}
	}
	ctx->bar.nsteps = count_steps(opt);
	zsb_print_corpus(ctx);
	run_all(ctx);
	for (int s = 0; s < ST_NSTORES; s++)
		if (ctx->ran[s])
			zsb_median_result(ctx->results[s], opt->repeat, &ctx->median[s]);
	zsb_print_table(ctx);
	zsb_summarize(ctx);
	printf("\n%s\n", ctx->summary);
	fflush(stdout);
	if (opt->json_path && zsb_write_json(ctx, opt->json_path))
		bad = 1;
	if (opt->plot_path)
		plot(ctx); /* a missing gnuplot is one line, not a failed run */
	for (int s = 0; s < ST_NSTORES; s++)
		free(ctx->results[s]);
	return zsb_stores_verdict(ctx) || bad ? -EIO : 0;
}
