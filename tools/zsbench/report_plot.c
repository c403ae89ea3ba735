// SPDX-License-Identifier: MIT
/* --plot FILE.png: memory held over the run, one line per store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "zsbench.h"

int zsb_write_plot(const struct zsb_ctx *ctx, const char *path,
		   const struct bench_result *const *rs, const char *const *titles, size_t n)
{
	struct bench_plot_series series[2 * ST_NSTORES + 8];
	float *buf[2 * ST_NSTORES + 8];
	char names[2 * ST_NSTORES + 8][64], err[256], title[400];
	size_t ns = 0, npages = ctx->pages.npages,
	       nfree = (size_t)(ctx->opt->free_fraction * (double)npages + 0.5);
	struct bench_plot_mark marks[3] = {
		{0, "fill"},
		{(double)npages, "free"},
		{(double)(npages + nfree), "compact, load"},
	};
	struct bench_plot p = {
		.path = path,
		.title = title,
		.xlabel = "operations (pages stored, freed, loaded)",
		.ylabel = "memory held, MiB",
		.series = series,
		.marks = marks,
		.nmarks = 3,
	};
	int r;

	snprintf(title, sizeof(title), "zsbench: %s, %zu pages", ctx->pages.source, npages);
	for (size_t i = 0; i < n && ns + 2 <= sizeof(series) / sizeof(series[0]); i++) {
		const struct bench_result *res = rs[i];
		/* held where the store reports it (zsram, zram), else RSS; zsram also by RSS */
		int has_held = res->nsamples && res->samples[0].held >= 0;
		int has_rss = res->nsamples && res->samples[0].rss >= 0;

		for (int k = 0; k < 2; k++) {
			int use_rss = k == 1 || !has_held;
			float *xy;

			if ((k == 0 && !has_held && !has_rss) || (k == 1 && !(has_held && has_rss)))
				continue;
			xy = malloc(res->nsamples * 2 * sizeof(float));
			if (!xy)
				break;
			for (unsigned s = 0; s < res->nsamples; s++) {
				float y = use_rss ? res->samples[s].rss : res->samples[s].held;

				xy[2 * s] = res->samples[s].x;
				xy[2 * s + 1] = y < 0 ? -1 : y / (1 << 20);
			}
			snprintf(names[ns], sizeof(names[ns]), "%s%s", titles[i],
				 k == 1 ? " (RSS)" : "");
			buf[ns] = xy;
			series[ns] = (struct bench_plot_series){.title = names[ns],
								.x = xy,
								.y = xy + 1,
								.n = res->nsamples,
								.stride = 2,
								.dashed = k == 1};
			ns++;
		}
	}
	p.nseries = ns;
	r = bench_plot_png(&p, err, sizeof(err));
	if (r)
		zsb_error("plot: %s", err);
	for (size_t i = 0; i < ns; i++)
		free(buf[i]);
	return r;
}
