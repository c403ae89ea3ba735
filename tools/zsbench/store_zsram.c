// SPDX-License-Identifier: MIT
/*
 * zsram as a measured store, run in a forked child so that its RSS is its
 * own. Built without zsram (HAVE_ZSRAM unset), the row is a bare zsmalloc
 * pool with the same storage rules (store_zs.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "peer.h"
#include "zsbench.h"

#ifdef HAVE_ZSRAM
#include <zsram.h>

struct zsram_arg {
	const char *codec;
	int level;
};

static void *zr_create(void *argp, size_t npages, char *err, size_t errlen)
{
	const struct zsram_arg *arg = argp;
	struct zsram_config cfg = {
		.disksize = (uint64_t)(npages ? npages : 1) * ZSRAM_PAGE_SIZE,
		.algorithm = arg->codec,
		.level = arg->level,
	};
	struct zsram *zr = zsram_create(&cfg);

	if (!zr && errno == EINVAL)
		snprintf(err, errlen, "zsram_create: algorithm '%s' (level %d) not supported",
			 arg->codec, arg->level);
	else if (!zr)
		snprintf(err, errlen, "zsram_create: %s", strerror(errno));
	return zr;
}

static int zr_write(void *s, size_t index, const void *page)
{
	return zsram_write_page(s, index, page);
}

static int zr_read(void *s, size_t index, void *page)
{
	return zsram_read_page(s, index, page);
}

static int zr_discard(void *s, size_t index)
{
	return zsram_discard(s, index, 1);
}

static long zr_compact(void *s)
{
	return (long)zsram_compact(s);
}

static void zr_memory(void *s, struct bench_mem *m)
{
	struct zsram_mm_stat st;

	zsram_mm_stat(s, &st);
	m->payload = (double)st.compr_data_size;
	m->held = (double)st.mem_used_total;
}

static void zr_extra(void *s, char *buf, size_t len)
{
	struct zsram_mm_stat st;

	zsram_mm_stat(s, &st);
	snprintf(buf, len,
		 "\"mm_stat\": [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
		 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 "]",
		 st.orig_data_size, st.compr_data_size, st.mem_used_total, st.mem_limit,
		 st.mem_used_max, st.same_pages, st.pages_compacted, st.huge_pages,
		 st.huge_pages_since);
}

static void zr_destroy(void *s)
{
	zsram_destroy(s);
}

static const struct bench_store_ops zsram_ops = {
	.name = "zsram",
	.multithread = 1,
	.has_rss = 1,
	.create = zr_create,
	.write = zr_write,
	.read = zr_read,
	.discard = zr_discard,
	.compact = zr_compact,
	.memory = zr_memory,
	.extra = zr_extra,
	.destroy = zr_destroy,
};
#endif /* HAVE_ZSRAM */

static int child(void *cp, struct bench_result *res)
{
	struct zsb_ctx *ctx = cp;
	struct zsb_options *opt = ctx->opt;
	struct bench_run_cfg cfg = {.threads = opt->threads,
				    .free_fraction = opt->free_fraction,
				    .seed = opt->seed,
				    .progress = ctx->bar.shared};
#ifdef HAVE_ZSRAM
	struct zsram_arg arg = {.codec = opt->algorithm, .level = opt->level};

	return bench_store_run(&zsram_ops, &arg, &ctx->pages, &cfg, res);
#else
	struct zsb_zs_cfg arg = {.codec = opt->algorithm,
				 .level = opt->level,
				 .chain_size = opt->chain_size,
				 .compact = 1};

	return bench_store_run(&zsb_zs_ops, &arg, &ctx->pages, &cfg, res);
#endif
}

int zsb_run_zsram(struct zsb_ctx *ctx, struct bench_result *res)
{
	int err = bench_child_run(child, ctx, res, zsb_bar_wait, &ctx->bar);

	snprintf(res->name, sizeof(res->name), "%s", zsb_store_name(ST_ZSRAM));
	return err;
}
