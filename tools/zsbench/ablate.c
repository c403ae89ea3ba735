// SPDX-License-Identifier: MIT
/*
 * zsbench --ablate: zsram with and without each improvement that can be
 * switched, side by side on the same pages (each variant in a child process
 * of its own; a bare zsmalloc pool with zsram's storage rules when zsram is
 * not built):
 *
 *   baseline          zsram's defaults: deferred free (zs_free_deferred,
 *                     flushed at the end of the free phase), class-index
 *                     zs_free on the drain thread, chain size 8 (or
 *                     --chain-size), zsram_compact
 *   sync free         ZSRAM_SYNC_FREE: the discarding thread calls zs_free
 *   pool-lock free    sync free with ZS_POOL_FREE_POOL_LOCK: zs_free through
 *                     the pool lock. Set on the baseline it would change
 *                     nothing measurable: under deferred free only the
 *                     drain thread frees, in class batches that take no
 *                     pool lock; so it is compared with "sync free"
 *   chain 4 / 16      zspages of up to 4 or 16 pages (via config.pool)
 *   no compaction     the compact phase does nothing
 *   huge pages        ZS_POOL_HUGEPAGES: the pool's 2 MiB chunks are backed
 *                     by transparent huge pages. Faulting a chunk in takes
 *                     about half the CPU time of faulting its 512 pages one
 *                     by one, work that the arena's worker takes from the
 *                     writers' CPUs on a small machine; but memory goes back
 *                     by whole chunks only, so compare the RSS column
 *
 * The free path only differs under contention, so the default is one
 * thread per CPU.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zsmalloc.h>

#include "json.h"
#include "peer.h"
#include "zsbench.h"

#define MAX_VARIANTS 8

struct variant {
	char name[32];
	struct zsb_zs_cfg cfg;
};

struct ablate_job {
	struct zsb_ctx *ctx;
	const struct variant *v;
	unsigned threads;
};

static int variant_child(void *jp, struct bench_result *res)
{
	const struct ablate_job *job = jp;
	struct bench_store_ops ops = *zsb_zsram_store();
	struct bench_run_cfg cfg = {.threads = job->threads,
				    .free_fraction = job->ctx->opt->free_fraction,
				    .seed = job->ctx->opt->seed,
				    .progress = job->ctx->bar.shared};

	ops.name = job->v->name;
	if (!job->v->cfg.compact)
		ops.compact = NULL;
	return bench_store_run(&ops, (void *)&job->v->cfg, &job->ctx->pages, &cfg, res);
}

static size_t make_variants(const struct zsb_options *opt, struct variant *v)
{
	unsigned chain = opt->chain_size ? opt->chain_size : 8;
	struct zsb_zs_cfg base = {.codec = opt->algorithm,
				  .level = opt->level,
				  .chain_size = chain,
				  .deferred = 1,
				  .compact = 1};
	static const unsigned chains[] = {4, 8, 16};
	size_t n = 0;

	v[n] = (struct variant){.cfg = base};
	snprintf(v[n++].name, sizeof(v->name), "baseline (chain %u)", chain);
	v[n] = (struct variant){.name = "sync free", .cfg = base};
	v[n++].cfg.deferred = 0;
	v[n] = (struct variant){.name = "pool-lock free", .cfg = base};
	v[n].cfg.deferred = 0;
	v[n++].cfg.flags |= ZS_POOL_FREE_POOL_LOCK;
	for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
		if (chains[i] == chain)
			continue;
		v[n] = (struct variant){.cfg = base};
		v[n].cfg.chain_size = chains[i];
		snprintf(v[n++].name, sizeof(v->name), "chain %u", chains[i]);
	}
	v[n] = (struct variant){.name = "no compaction", .cfg = base};
	v[n++].cfg.compact = 0;
	v[n] = (struct variant){.name = "huge pages", .cfg = base};
	v[n++].cfg.flags |= ZS_POOL_HUGEPAGES;
	return n;
}

static void print_row(const struct bench_result *r)
{
	const struct bench_op_stats *st = &r->op[BENCH_FILL], *fr = &r->op[BENCH_FREE],
				    *ld = &r->op[BENCH_LOAD];

	if (!r->ok) {
		printf("%-20s %.100s\n", r->name, r->error);
		return;
	}
	printf("%-20s %6.3f %6.3f %6.3f %6.3f  %6.0f %6.1f  %6.0f %6.2f %6.1f  %6.0f %6.1f  %s\n",
	       r->name, bench_density_held(&r->mem[0]), bench_density_held(&r->mem[1]),
	       bench_density_held(&r->mem[2]), bench_density_rss(&r->mem[2]), st->mbps, st->p99_us,
	       fr->mbps, fr->p50_us, fr->p99_us, ld->mbps, ld->p99_us, r->verified ? "yes" : "NO");
}

static int write_json(struct zsb_ctx *ctx, const struct bench_result *med, size_t n,
		      unsigned threads)
{
	struct bench_json j;
	FILE *f = zsb_json_begin(&j, ctx, ctx->opt->json_path, "zsbench --ablate");

	if (!f)
		return -EIO;
	bench_json_uint(&j, "threads", threads);
	bench_json_array_begin(&j, "variants");
	for (size_t i = 0; i < n; i++)
		zsb_json_result(&j, zsb_zsram_store()->name, &med[i], ctx->opt->repeat);
	bench_json_array_end(&j);
	return zsb_json_end(&j, f, ctx->opt->json_path);
}

static void report(struct zsb_ctx *ctx, const struct bench_result *med, size_t n, unsigned threads)
{
	const struct bench_result *rs[MAX_VARIANTS];
	const char *titles[MAX_VARIANTS];

	printf("%-20s %-27s  %-13s  %-20s  %-13s  %s\n", "", "density", "store", "free", "load",
	       "read");
	printf("%-20s %6s %6s %6s %6s  %6s %6s  %6s %6s %6s  %6s %6s  %s\n", "variant", "fill",
	       "half", "compct", "RSS", "MB/s", "p99us", "MB/s", "p50us", "p99us", "MB/s", "p99us",
	       "back");
	for (size_t i = 0; i < n; i++) {
		print_row(&med[i]);
		rs[i] = &med[i];
		titles[i] = med[i].name;
	}
	printf("\n%s, %u thread%s; deferred free unless \"sync\"/\"pool-lock free\"; "
	       "density = data / pool pages (zram's mm_stat), RSS: after compaction, data / "
	       "growth of RssAnon; free MB/s counts freed page bytes over the time in discard "
	       "(+ the flush of deferred frees).\n",
	       zsb_zsram_store()->name, threads, threads == 1 ? "" : "s");
	if (ctx->opt->json_path)
		write_json(ctx, med, n, threads);
	if (ctx->opt->plot_path)
		zsb_write_plot(ctx, ctx->opt->plot_path, rs, titles, n);
}

int zsb_ablate(struct zsb_ctx *ctx)
{
	struct zsb_options *opt = ctx->opt;
	struct variant v[MAX_VARIANTS];
	struct bench_result med[MAX_VARIANTS];
	struct bench_result *runs = calloc(opt->repeat, sizeof(*runs));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = opt->threads_set ? opt->threads : ncpu > 0 ? (unsigned)ncpu : 1;
	size_t n = make_variants(opt, v);
	int bad = 0;

	if (!runs)
		return -ENOMEM;
	ctx->bar.nsteps = (unsigned)n * opt->repeat;
	opt->threads = threads;
	zsb_print_corpus(ctx);
	for (size_t i = 0; i < n; i++) {
		struct ablate_job job = {.ctx = ctx, .v = &v[i], .threads = threads};

		for (unsigned rep = 0; rep < opt->repeat; rep++) {
			bench_bar_step(&ctx->bar, v[i].name);
			if (bench_child_run(variant_child, &job, &runs[rep], zsb_bar_wait,
					    &ctx->bar))
				snprintf(runs[rep].name, sizeof(runs[rep].name), "%s", v[i].name);
		}
		zsb_median_result(runs, opt->repeat, &med[i]);
		bad |= !med[i].ok || !med[i].verified;
	}
	bench_bar_clear(&ctx->bar);
	report(ctx, med, n, threads);
	free(runs);
	return bad ? -EIO : 0;
}
