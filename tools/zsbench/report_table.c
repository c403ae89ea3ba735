// SPDX-License-Identifier: MIT
/* The table on stdout and the one-line summary. */
#include <stdio.h>
#include <string.h>

#include "timing.h"
#include "zsbench.h"

static const char *const compact_word[ST_NSTORES] = {
	[ST_ZSRAM] = "compact",	   [ST_GLIBC] = "trim",	   [ST_JEMALLOC] = "purge",
	[ST_MIMALLOC] = "collect", [ST_KZRAM] = "compact", [ST_RAW] = "",
};

void zsb_fmt_mib(char *buf, size_t len, double bytes)
{
	if (bytes < 0)
		snprintf(buf, len, "-");
	else if (bytes >= 10.0 * (1 << 30))
		snprintf(buf, len, "%.1f GiB", bytes / (1 << 30));
	else
		snprintf(buf, len, "%.1f MiB", bytes / (1 << 20));
}

void zsb_print_corpus(const struct zsb_ctx *ctx)
{
	const struct bench_size_hist *h = &ctx->hist;
	char orig[32], stored[32];
	double n = h->pages ? (double)h->pages : 1;

	zsb_fmt_mib(orig, sizeof(orig), (double)ctx->pages.npages * BENCH_PAGE_SIZE);
	printf("zsbench %s: %s: %zu pages (%s)\n", ZSBENCH_VERSION, ctx->pages.source,
	       ctx->pages.npages, orig);
	if (ctx->hist_ok) {
		zsb_fmt_mib(stored, sizeof(stored), (double)h->stored_bytes);
		size_t med = bench_size_hist_quantile(h, 0.5);

		printf("%s: %s stored (%.3f of the original); %.1f%% zero, %.1f%% same-filled, "
		       "%.1f%% incompressible; median %zu-%zu bytes\n",
		       ctx->opt->algorithm, stored, (double)h->stored_bytes / (n * BENCH_PAGE_SIZE),
		       100.0 * (double)h->zero / n, 100.0 * (double)h->same / n,
		       100.0 * (double)h->huge / n, med - BENCH_HIST_BIN, med - 1);
	}
	if (ctx->opt->command == CMD_SCALING)
		printf("1 and %u threads, %.0f%% freed, %u round%s%s\n", ctx->opt->threads,
		       ctx->opt->free_fraction * 100, ctx->opt->repeat,
		       ctx->opt->repeat == 1 ? "" : "s", ctx->opt->repeat > 1 ? " (medians)" : "");
	else if (ctx->opt->command == CMD_BENCH || ctx->opt->command == CMD_ABLATE)
		printf("%u thread%s, %.0f%% freed, %u run%s%s\n", ctx->opt->threads,
		       ctx->opt->threads == 1 ? "" : "s", ctx->opt->free_fraction * 100,
		       ctx->opt->repeat, ctx->opt->repeat == 1 ? "" : "s",
		       ctx->opt->repeat > 1 ? " (medians)" : "");
	printf("\n");
	fflush(stdout);
}

static void print_density(double d)
{
	if (d > 0)
		printf("  %6.3f", d);
	else
		printf("  %6s", "-");
}

static void print_op(const struct bench_op_stats *op)
{
	if (op->ops)
		printf("  %6.0f %6.1f %6.1f", op->mbps, op->p50_us, op->p99_us);
	else
		printf("  %6s %6s %6s", "-", "-", "-");
}

static void print_row(const struct zsb_ctx *ctx, enum zsb_store s)
{
	const struct bench_result *r = &ctx->median[s];
	char name[BENCH_NAME_MAX];

	snprintf(name, sizeof(name), "%s", s == ST_RAW ? r->name : zsb_store_name(s));
	if (!r->ok) {
		printf("%-14s  %.90s\n", name, r->error);
		return;
	}
	printf("%-14s", name);
	for (int p = 0; p < BENCH_NPOINTS; p++)
		print_density(s == ST_GLIBC || s == ST_JEMALLOC || s == ST_MIMALLOC
				      ? bench_density_rss(&r->mem[p])
				      : bench_density_held(&r->mem[p]));
	printf(" %-7s", compact_word[s]);
	if (r->rss_peak >= 0)
		printf(" %7.1f", r->rss_peak / (1 << 20));
	else
		printf(" %7s", s == ST_KZRAM ? "kernel" : "-");
	print_op(&r->op[BENCH_FILL]);
	print_op(&r->op[BENCH_LOAD]);
	printf("  %s\n", r->verified ? "yes" : "NO");
	if (s == ST_ZSRAM) { /* the same run measured as the other peers are: by RSS */
		printf("%-14s", "  by RSS");
		for (int p = 0; p < BENCH_NPOINTS; p++)
			print_density(bench_density_rss(&r->mem[p]));
		printf("\n");
	}
}

/* The kernel may have used another algorithm than the one asked for. */
static void note_kzram_algorithm(const struct zsb_ctx *ctx)
{
	const char *a = strstr(ctx->median[ST_KZRAM].extra, "\"algorithm\": \"");
	char used[32];

	if (!ctx->ran[ST_KZRAM] || !a || sscanf(a + 14, "%31[^\"]", used) != 1)
		return;
	if (strcmp(used, ctx->opt->algorithm))
		printf("kernel zram used %s: this kernel has no %s.\n", used, ctx->opt->algorithm);
}

void zsb_print_table(struct zsb_ctx *ctx)
{
	int any = 0;

	for (int s = 0; s < ST_NSTORES; s++)
		any |= ctx->ran[s];
	if (!any)
		return;
	printf("%-14s  %-32s %7s  %-20s  %-20s  %s\n", "", "density (data / memory held)", "RSS",
	       "store", "load", "read");
	printf("%-14s  %6s  %6s  %6s %-7s %7s  %6s %6s %6s  %6s %6s %6s  %s\n", "store", "fill",
	       "half", "compct", "", "MiB", "MB/s", "p50us", "p99us", "MB/s", "p50us", "p99us",
	       "back");
	for (int s = 0; s < ST_NSTORES; s++)
		if (ctx->ran[s])
			print_row(ctx, (enum zsb_store)s);
	printf("\ndensity: zsram%s and kernel zram: compr_data_size / mem_used_total (mm_stat);\n"
	       "malloc peers and \"by RSS\": the same payload / growth of the process's RssAnon.\n"
	       "RSS: peak RssAnon growth. Throughput: page bytes / time in store/load calls.\n",
#ifdef HAVE_ZSRAM
	       ""
#else
	       " (here a bare zsmalloc pool: zsram not built)"
#endif
	);
	note_kzram_algorithm(ctx);
}

/* Appends ", name 0.543" for each malloc peer that ran. */
static void append_peers(struct zsb_ctx *ctx, char *buf, size_t len, double *best)
{
	for (int s = ST_GLIBC; s <= ST_MIMALLOC; s++) {
		const struct bench_result *r = &ctx->median[s];
		double d = bench_density_rss(&r->mem[BENCH_AFTER_COMPACT]);
		size_t used = strlen(buf);

		if (!ctx->ran[s] || !r->ok || d <= 0)
			continue;
		snprintf(buf + used, len - used, "%s%s %.3f", *best > 0 ? ", " : "",
			 zsb_store_name(s), d);
		if (d > *best)
			*best = d;
	}
}

/* See zsbench.h. */
double zsb_paired_median(const struct bench_result *a, const struct bench_result *b, unsigned n,
			 int phase)
{
	static double v[ZSB_MAX_REPEAT];
	size_t k = 0;

	for (unsigned r = 0; r < n; r++)
		if (a[r].ok && b[r].ok && b[r].op[phase].mbps > 0)
			v[k++] = a[r].op[phase].mbps / b[r].op[phase].mbps;
	return k ? bench_median(v, k) : 0;
}

double zsb_paired_ratio(const struct zsb_ctx *ctx, enum zsb_store peer, int phase)
{
	return zsb_paired_median(ctx->results[ST_ZSRAM], ctx->results[peer], ctx->opt->repeat,
				 phase);
}

void zsb_summarize(struct zsb_ctx *ctx)
{
	const struct bench_result *z = &ctx->median[ST_ZSRAM], *k = &ctx->median[ST_KZRAM],
				  *raw = &ctx->median[ST_RAW];
	char peers[256] = "", *out = ctx->summary;
	size_t len = sizeof(ctx->summary), used;
	double best = 0, zr = bench_density_rss(&z->mem[BENCH_AFTER_COMPACT]),
	       zh = bench_density_held(&z->mem[BENCH_AFTER_COMPACT]);

	if (!(ctx->opt->stores & (1u << ST_ZSRAM))) {
		snprintf(out, len, "(%s was not among --stores.)", zsb_store_name(ST_ZSRAM));
		return;
	}
	if (ctx->skipped[ST_ZSRAM] && !ctx->ran[ST_ZSRAM]) {
		snprintf(out, len, "(%s did not run: see the first message.)",
			 zsb_store_name(ST_ZSRAM));
		return;
	}
	if (!ctx->ran[ST_ZSRAM] || !z->ok) {
		snprintf(out, len, "%s did not run to the end; see the messages above.",
			 zsb_store_name(ST_ZSRAM));
		return;
	}
	append_peers(ctx, peers, sizeof(peers), &best);
	snprintf(out, len,
		 "After freeing %.0f%% and compacting, %s keeps %.2f of its memory busy "
		 "with data (%.2f by mm_stat)",
		 ctx->opt->free_fraction * 100, zsb_store_name(ST_ZSRAM), zr, zh);
	used = strlen(out);
	if (best > 0)
		snprintf(out + used, len - used, ", %.1fx the best malloc (%s)", zr / best, peers);
	used = strlen(out);
	if (ctx->ran[ST_KZRAM] && k->ok)
		snprintf(out + used, len - used, "; the kernel's zram %.2f",
			 bench_density_held(&k->mem[BENCH_AFTER_COMPACT]));
	used = strlen(out);
	if (ctx->ran[ST_RAW] && raw->ok && raw->op[BENCH_FILL].mbps > 0)
		snprintf(out + used, len - used,
			 "; it stores at %.2fx and loads at %.2fx %s speed%s",
			 zsb_paired_ratio(ctx, ST_RAW, BENCH_FILL),
			 zsb_paired_ratio(ctx, ST_RAW, BENCH_LOAD), raw->name,
			 ctx->opt->repeat > 1 ? " (median of the runs' ratios)" : "");
	used = strlen(out);
	snprintf(out + used, len - used, ".");
}
