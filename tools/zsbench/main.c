// SPDX-License-Identifier: MIT
/*
 * zsbench: main, the corpus, signals.
 *
 * Every store is measured in a process of its own (a fork for zsram and
 * bare pools, a peer helper for malloc, jemalloc and mimalloc, a fork for
 * the kernel's zram), so this process only prepares the pages, waits, and
 * reports.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corpus.h"
#include "kzram.h"
#include "peer.h"
#include "zsbench.h"

void zsb_error(const char *fmt, ...)
{
	va_list ap;

	fputs("zsbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void zsb_warn_cb(void *ctx, const char *msg)
{
	struct zsb_ctx *c = ctx;

	if (c)
		bench_bar_clear(&c->bar);
	zsb_error("%s", msg);
}

void zsb_bar_wait(void *bar)
{
	bench_bar_draw(bar);
}

static int load_pid(struct zsb_ctx *ctx, size_t max_pages)
{
	struct bench_pid_stats st;
	int err =
		bench_corpus_read_pid(&ctx->pages, ctx->opt->pid, max_pages, &st, zsb_warn_cb, ctx);

	if (err) {
		zsb_error("pid %d: %s", (int)ctx->opt->pid,
			  err == -ENOENT  ? "no resident anonymous memory"
			  : err == -ESRCH ? "no such process"
					  : strerror(-err));
		return err;
	}
	snprintf(ctx->pages.source, sizeof(ctx->pages.source),
		 "pid %d, resident anonymous memory in %zu regions%s", (int)ctx->opt->pid,
		 st.regions, st.truncated ? " (capped by --size)" : "");
	return 0;
}

static int load_inputs(struct zsb_ctx *ctx, size_t max_pages)
{
	int truncated = 0;
	int err = bench_corpus_read_paths(&ctx->pages, ctx->opt->inputs, ctx->opt->ninputs,
					  max_pages, &truncated, zsb_warn_cb, ctx);

	if (err) {
		if (err == -ENOENT)
			zsb_error("no pages read from the inputs");
		else
			zsb_error("reading the inputs: %s", strerror(-err));
		return err;
	}
	snprintf(ctx->pages.source, sizeof(ctx->pages.source), "%zu input path%s%s",
		 ctx->opt->ninputs, ctx->opt->ninputs == 1 ? "" : "s",
		 truncated ? " (capped by --size)" : "");
	return 0;
}

int zsb_load_corpus(struct zsb_ctx *ctx)
{
	struct zsb_options *opt = ctx->opt;
	size_t npages = (size_t)(opt->size / BENCH_PAGE_SIZE); /* >= 1 (options.c) */
	int err = bench_pages_init(&ctx->pages, "");

	if (err) {
		zsb_error("memfd: %s", strerror(-err));
		return err;
	}
	if (opt->pid || opt->ninputs) {
		err = opt->pid ? load_pid(ctx, npages) : load_inputs(ctx, npages);
	} else {
		err = bench_corpus_generate(&ctx->pages, npages, opt->seed);
		snprintf(ctx->pages.source, sizeof(ctx->pages.source), "built-in corpus, seed %llu",
			 (unsigned long long)opt->seed);
		if (err)
			zsb_error("generating the corpus: %s", strerror(-err));
	}
	if (err)
		return err;
	ctx->pages_hash = bench_pages_hash(&ctx->pages);
	ctx->huge = zsb_huge_size(opt->chain_size);
	err = bench_size_hist_compute(&ctx->pages, opt->algorithm, opt->level, ctx->huge,
				      &ctx->hist);
	ctx->hist_ok = !err;
	if (err == -ENOENT) {
		/* a name only zsram knows (options.c refuses any other): one
		 * line for all the stores that lack it (the kernel's zram falls
		 * back to lz4 and the table says so) */
		ctx->skipped[ST_GLIBC] = ctx->skipped[ST_JEMALLOC] = ctx->skipped[ST_MIMALLOC] = 1;
		ctx->skipped[ST_RAW] = 1;
		zsb_error("algorithm '%s' is zsram's only (the others have %s): the malloc peers "
			  "and the raw codec are skipped",
			  opt->algorithm, bench_codec_names());
	}
	return 0;
}

/*
 * A signal must not leave a kernel zram device behind. The device belongs
 * to the store's child, which gets the signal too (forwarded here, or from
 * the terminal) and runs this same handler, inherited: it removes its
 * device, then dies of the signal. This process waits for it, removes
 * what a child that died otherwise left, then dies of the signal itself.
 */
static void on_signal(int sig)
{
	static int entered; /* atomic: a thread runs the cleanup */

	/* A process-directed signal (the one forwarded to a child, a second
	 * Ctrl-C) goes to any thread that does not block it: the store's
	 * other threads would run this too, and their raise() would end the
	 * process in the middle of the first one's cleanup. They wait for it. */
	if (__atomic_exchange_n(&entered, 1, __ATOMIC_SEQ_CST))
		for (;;)
			pause();
	bench_child_stop(sig);
	bench_kzram_cleanup_all();
	signal(sig, SIG_DFL);
	raise(sig); /* blocked until the handler returns: then it kills */
}

static void install_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};

	/* the others wait too: a second Ctrl-C, or the child's SIGTERM when
	 * its parent dies (peer.c), must not cut the cleanup short */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&sa.sa_mask, sigs[i]);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	bench_kzram_init(); /* failing that, each child cleans up alone */
	atexit(bench_kzram_cleanup_all);
}

static int dispatch(struct zsb_ctx *ctx)
{
	switch (ctx->opt->command) {
	case CMD_CLASSES:
		return zsb_classes(ctx);
	case CMD_HIST:
		return zsb_hist(ctx);
	case CMD_ABLATE:
		return zsb_ablate(ctx);
	case CMD_SCALING:
		return zsb_scaling(ctx);
	case CMD_BENCH:
		break;
	}
	return zsb_bench(ctx);
}

int main(int argc, char **argv)
{
	struct zsb_options opt;
	struct zsb_ctx ctx = {.opt = &opt, .progress_fd = -1};
	struct bench_progress *prog;
	int r = zsb_parse_options(argc, argv, &opt);

	if (r) {
		free(opt.inputs); /* parsed before the error, or NULL */
		return r > 0 ? 0 : (fputs("Try 'zsbench --help'.\n", stderr), 2);
	}
	install_signals();
	prog = bench_progress_create(&ctx.progress_fd);
	bench_bar_init(&ctx.bar, prog, 1);
	r = zsb_load_corpus(&ctx) ? -1 : dispatch(&ctx);
	bench_bar_clear(&ctx.bar);
	bench_pages_free(&ctx.pages);
	free(opt.inputs);
	return r ? 1 : 0;
}
