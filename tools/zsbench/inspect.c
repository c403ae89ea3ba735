// SPDX-License-Identifier: MIT
/*
 * zsbench classes (the per-class table of zsram's own pool, zsram_pool(),
 * once zsram holds every page) and zsbench hist.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zsmalloc.h>

#include "zsbench.h"

static int dump(struct zs_pool *pool, enum zs_stats_format fmt, FILE *out)
{
	int n = zs_pool_stats_dump(pool, fmt, NULL, 0);
	char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;

	if (!buf)
		return -ENOMEM;
	zs_pool_stats_dump(pool, fmt, buf, (size_t)n + 1);
	fputs(buf, out);
	free(buf);
	return 0;
}

int zsb_classes(struct zsb_ctx *ctx)
{
	struct zsb_options *opt = ctx->opt;
	struct zsb_zs_cfg cfg = {.codec = opt->algorithm,
				 .level = opt->level,
				 .chain_size = opt->chain_size,
				 .deferred = 1};
	struct zs_pool_stats st;
	struct zs_pool *pool;
	char err[200], held[32];
	void *z = zsb_zsram_fill(&cfg, &ctx->pages, err, sizeof(err));
	int r = 0;

	if (!z) {
		zsb_error("classes: %s", err);
		return -EINVAL;
	}
	pool = zsb_zsram_pool(z);
	zs_pool_stats(pool, &st);
	zsb_fmt_mib(held, sizeof(held), (double)st.pages_allocated * ZS_PAGE_SIZE);
	printf("zsbench classes: %s: %zu pages, %s, chain size %u; %s's pool holds %lu objects "
	       "in %lu pages (%s)\n\n",
	       ctx->pages.source, ctx->pages.npages, opt->algorithm,
	       opt->chain_size ? opt->chain_size : 8, zsb_store_name(ST_ZSRAM), st.objs_used,
	       st.pages_allocated, held);
	r = dump(pool, ZS_STATS_TEXT, stdout);
	if (!r && opt->json_path) {
		FILE *f = fopen(opt->json_path, "w");

		if (!f || dump(pool, ZS_STATS_JSON, f) || fclose(f)) {
			zsb_error("%s: %s", opt->json_path, strerror(errno));
			r = -EIO;
		}
	}
	zsb_zsram_destroy(z);
	return r;
}

int zsb_hist(struct zsb_ctx *ctx)
{
	const struct bench_size_hist *h = &ctx->hist;
	double n = h->pages ? (double)h->pages : 1;

	if (!ctx->hist_ok)
		return -EINVAL;
	zsb_print_corpus(ctx);
	printf("%-13s %8s %7s\n", "stored bytes", "pages", "share");
	printf("%-13s %8zu %6.2f%%\n", "same-filled", h->same, 100.0 * (double)h->same / n);
	for (int b = 0; b < BENCH_HIST_BINS; b++) {
		char range[32], bar[61];
		double share = (double)h->bins[b] / n;
		int w = (int)(share * 200 + 0.5);

		if (b * BENCH_HIST_BIN >= (int)h->huge_threshold)
			break;
		snprintf(range, sizeof(range), "%d-%d", b * BENCH_HIST_BIN,
			 (b + 1) * BENCH_HIST_BIN - 1);
		memset(bar, '#', (size_t)(w > 60 ? 60 : w));
		bar[w > 60 ? 60 : w] = '\0';
		printf("%-13s %8zu %6.2f%% %s\n", range, h->bins[b], 100.0 * share, bar);
	}
	printf("%-13s %8zu %6.2f%%\n", "huge (raw)", h->huge, 100.0 * (double)h->huge / n);
	return 0;
}
