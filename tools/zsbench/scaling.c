// SPDX-License-Identifier: MIT
/*
 * zsbench scaling: how each store's speed grows with threads, in one run.
 *
 * Each --repeat round runs every store of --stores (default: zsram, the
 * kernel's zram when it can run, and the raw codec) once with one thread
 * and once with N (--threads N, default one per CPU, at least 2), the same
 * full run as the main table's (bench_store_run). The table gives, per
 * store, for the store and load phases: the medians at 1 and at N threads,
 * and "xN/1", the median of the rounds' ratios (round k at N threads over
 * round k at one): the two runs of a pair ran seconds apart, so a machine
 * that drifts between rounds moves both.
 *
 * "CPUs" is the CPU time of the store's whole process during the phase
 * over its wall time (storerun.h): every thread counts, the store's own
 * background threads included. A store whose one writer is helped by a
 * thread of its own on another CPU (zsram's arena worker faults fresh pool
 * pages in ahead of need) shows more than 1 at one thread; on a machine
 * with no CPU to spare, the N-thread run pays for that help, and the ratio
 * says how much. The host's steal time during the store phases
 * (timing.h) follows the table: on a virtual machine whose host is busy,
 * the N-thread runs lose CPUs to other guests, and the ratios with them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "json.h"
#include "timing.h"
#include "zsbench.h"

#define DEFAULT_STORES (1u << ST_ZSRAM | 1u << ST_KZRAM | 1u << ST_RAW)

/* Phases the table shows. */
static const int phases[] = {BENCH_FILL, BENCH_LOAD};
static const char *const phase_keys[] = {"store", "load"};
#define NPHASES 2

struct scaling {
	unsigned n;				  /* threads of the second run of each pair */
	struct bench_result *runs[2][ST_NSTORES]; /* [0]: 1 thread, [1]: n; opt->repeat each */
	struct bench_result med[2][ST_NSTORES];
};

/* Median over the rounds of run k at n threads over run k at one; 0 if none. */
static double paired(const struct scaling *sc, unsigned repeat, enum zsb_store s, int phase)
{
	return zsb_paired_median(sc->runs[1][s], sc->runs[0][s], repeat, phase);
}

static void run_rounds(struct zsb_ctx *ctx, struct scaling *sc)
{
	struct zsb_options *opt = ctx->opt;
	const unsigned threads[2] = {1, sc->n};

	for (unsigned rep = 0; rep < opt->repeat; rep++) {
		for (int i = 0; i < 2; i++) {
			opt->threads = threads[i];
			for (int s = 0; s < ST_NSTORES; s++) {
				char label[80];

				if (!zsb_store_wanted(ctx, (enum zsb_store)s))
					continue;
				snprintf(label, sizeof(label), "%s, %u thread%s (run %u/%u)",
					 zsb_store_name(s), threads[i], threads[i] == 1 ? "" : "s",
					 rep + 1, opt->repeat);
				bench_bar_step(&ctx->bar, label);
				zsb_run_store(ctx, (enum zsb_store)s, &sc->runs[i][s][rep]);
			}
		}
	}
	bench_bar_clear(&ctx->bar);
}

/*
 * The host's steal, in CPUs, during 'phase' of every good run at 1 (i = 0)
 * or n threads (i = 1), all stores and rounds together: their median, or
 * -1 where the kernel does not say.
 */
static double steal_median(const struct zsb_ctx *ctx, const struct scaling *sc, int i, int phase)
{
	static double v[ST_NSTORES * ZSB_MAX_REPEAT];
	unsigned k = 0;

	for (int s = 0; s < ST_NSTORES; s++)
		for (unsigned rep = 0; ctx->ran[s] && rep < ctx->opt->repeat; rep++) {
			const struct bench_result *r = &sc->runs[i][s][rep];

			if (r->ok && r->op[phase].steal >= 0)
				v[k++] = r->op[phase].steal;
		}
	return k ? bench_median(v, k) : -1;
}

static void print_steal(const struct zsb_ctx *ctx, const struct scaling *sc)
{
	double one = steal_median(ctx, sc, 0, BENCH_FILL), n = steal_median(ctx, sc, 1, BENCH_FILL);

	if (one < 0 || n < 0)
		return;
	printf("Steal (/proc/stat): the host ran something else for %.2f of this machine's CPUs "
	       "during the store phases at one thread, %.2f at %u (medians of all runs)%s\n",
	       one, n, sc->n,
	       n >= 0.05 ? ": a busy host, whose steal at more threads makes the ratios read low."
			 : ".");
}

static void print_table(const struct zsb_ctx *ctx, const struct scaling *sc)
{
	char nt[16];

	snprintf(nt, sizeof(nt), "%u thr", sc->n);
	printf("%-14s", "");
	for (int p = 0; p < NPHASES; p++)
		printf("  %-38s", phase_keys[p]);
	printf("\n%-14s", "");
	for (int p = 0; p < NPHASES; p++)
		printf("  %-20s %-17s", "MB/s", "CPUs");
	printf("\n%-14s", "store");
	for (int p = 0; p < NPHASES; p++)
		printf("  %6s %6s %6s %8s %8s", "1 thr", nt, "xN/1", "1 thr", nt);
	printf("  %s\n", "back");
	for (int s = 0; s < ST_NSTORES; s++) {
		const struct bench_result *a = &sc->med[0][s], *b = &sc->med[1][s];

		if (!ctx->ran[s])
			continue;
		printf("%-14s", s == ST_RAW ? a->name : zsb_store_name(s));
		if (!a->ok || !b->ok) {
			printf("  %.90s\n", a->ok ? b->error : a->error);
			continue;
		}
		for (int p = 0; p < NPHASES; p++) {
			const struct bench_op_stats *x = &a->op[phases[p]], *y = &b->op[phases[p]];

			printf("  %6.0f %6.0f %6.2f %8.2f %8.2f", x->mbps, y->mbps,
			       paired(sc, ctx->opt->repeat, (enum zsb_store)s, phases[p]), x->cpus,
			       y->cpus);
		}
		printf("  %s\n", a->verified && b->verified ? "yes" : "NO");
	}
	printf("\nxN/1: speed at %u threads over one thread%s; CPUs: the store process's CPU "
	       "time in the phase over its wall time (its own background threads included).\n",
	       sc->n, ctx->opt->repeat > 1 ? " (median of the rounds' ratios)" : "");
	print_steal(ctx, sc);
}

static void json_side(struct bench_json *j, const char *key, const struct bench_op_stats *st)
{
	bench_json_object_begin(j, key);
	bench_json_number(j, "mb_s", st->mbps);
	bench_json_number(j, "cpus", st->cpus);
	bench_json_number(j, "steal", st->steal);
	bench_json_object_end(j);
}

static int write_json(const struct zsb_ctx *ctx, const struct scaling *sc)
{
	struct bench_json j;
	FILE *f = zsb_json_begin(&j, ctx, ctx->opt->json_path, "zsbench scaling");

	if (!f)
		return -EIO;
	bench_json_uint(&j, "threads", sc->n);
	bench_json_uint(&j, "runs", ctx->opt->repeat);
	bench_json_array_begin(&j, "stores");
	for (int s = 0; s < ST_NSTORES; s++) {
		const struct bench_result *a = &sc->med[0][s], *b = &sc->med[1][s];

		if (!ctx->ran[s])
			continue;
		bench_json_object_begin(&j, NULL);
		bench_json_string(&j, "kind", zsb_store_key(s));
		bench_json_bool(&j, "ok", a->ok && b->ok);
		bench_json_bool(&j, "verified", a->verified && b->verified);
		for (int p = 0; p < NPHASES; p++) {
			bench_json_object_begin(&j, phase_keys[p]);
			json_side(&j, "one", &a->op[phases[p]]);
			json_side(&j, "n", &b->op[phases[p]]);
			bench_json_number(
				&j, "ratio",
				paired(sc, ctx->opt->repeat, (enum zsb_store)s, phases[p]));
			bench_json_object_end(&j);
		}
		bench_json_object_end(&j);
	}
	bench_json_array_end(&j);
	return zsb_json_end(&j, f, ctx->opt->json_path);
}

static void free_runs(struct scaling *sc)
{
	for (int i = 0; i < 2; i++)
		for (int s = 0; s < ST_NSTORES; s++)
			free(sc->runs[i][s]);
}

int zsb_scaling(struct zsb_ctx *ctx)
{
	struct zsb_options *opt = ctx->opt;
	struct scaling sc = {0};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nstores = 0;
	int bad = 0;

	/* --threads 1 is a usage error (options.c) */
	sc.n = opt->threads_set ? opt->threads : ncpu > 2 ? (unsigned)ncpu : 2;
	if (!opt->stores_set)
		opt->stores = DEFAULT_STORES;
	for (int i = 0; i < 2; i++)
		for (int s = 0; s < ST_NSTORES; s++)
			if (!(sc.runs[i][s] = calloc(opt->repeat, sizeof(struct bench_result)))) {
				free_runs(&sc);
				zsb_error("out of memory");
				return -ENOMEM;
			}
	for (int s = 0; s < ST_NSTORES; s++)
		nstores += !!(opt->stores & (1u << s));
	ctx->bar.nsteps = 2 * nstores * opt->repeat;
	opt->threads = sc.n; /* what the corpus line says */
	zsb_print_corpus(ctx);
	run_rounds(ctx, &sc);
	for (int s = 0; s < ST_NSTORES; s++)
		for (int i = 0; ctx->ran[s] && i < 2; i++)
			zsb_median_result(sc.runs[i][s], opt->repeat, &sc.med[i][s]);
	/* a store that failed in any run fails the whole */
	bad = zsb_stores_verdict(ctx) != 0;
	print_table(ctx, &sc); /* run_rounds left opt->threads at sc.n */
	if (opt->json_path && write_json(ctx, &sc))
		bad = 1;
	free_runs(&sc);
	return bad ? -EIO : 0;
}
