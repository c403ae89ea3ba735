/* SPDX-License-Identifier: MIT */
/*
 * zsbench: what would zsmalloc do for my data?
 *
 * Cross-file declarations, grouped by the file that defines them.
 * The program may print; what it measures lives in bench/lib.
 */
#ifndef ZSBENCH_H
#define ZSBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec.h"
#include "corpus.h"
#include "pageset.h"
#include "progress.h"
#include "storerun.h"

#define ZSBENCH_VERSION "0.1.0"
/* --size of the built-in corpus, and the cap on what --input and --pid read, when not given. */
#define ZSB_DEFAULT_SIZE     (256ull << 20)
#define ZSB_DEFAULT_READ_CAP (1ull << 30)
/* Most --repeat rounds. */
#define ZSB_MAX_REPEAT 1000

enum zsb_command { CMD_BENCH, CMD_CLASSES, CMD_HIST, CMD_ABLATE, CMD_SCALING };

/* Stores of the main run, in table order. */
enum zsb_store {
	ST_ZSRAM, /* zsram, or a bare zsmalloc pool when zsram is not built */
	ST_GLIBC,
	ST_JEMALLOC,
	ST_MIMALLOC,
	ST_KZRAM,
	ST_RAW, /* the codec alone */
	ST_NSTORES
};

struct zsb_options {
	enum zsb_command command;
	char **inputs; /* --input paths */
	size_t ninputs;
	pid_t pid;     /* --pid; 0 = none */
	uint64_t size; /* bytes, whole pages: the built-in corpus's, or the cap on
			  what --input and --pid read (the default resolved) */
	int size_set;  /* --size given */
	const char *algorithm;
	int level;
	unsigned threads;
	int threads_set;
	double free_fraction;
	unsigned chain_size; /* 0 = default */
	uint64_t seed;
	unsigned repeat;
	unsigned stores; /* bit mask of enum zsb_store */
	int stores_set;	 /* --stores given */
	unsigned given;	 /* the long options given, a bit each (options.c) */
	const char *json_path;
	const char *plot_path;
};

/* Everything a run needs; results[store][repeat]. */
struct zsb_ctx {
	struct zsb_options *opt;
	struct bench_pages pages;
	struct bench_size_hist hist;
	int hist_ok;
	uint64_t pages_hash;
	size_t huge; /* zs_huge_class_size() of zsram's pool (--chain-size): the
			malloc peers store raw from the same size */
	int progress_fd;
	struct bench_bar bar;
	struct bench_result *results[ST_NSTORES]; /* opt->repeat each */
	struct bench_result median[ST_NSTORES];
	int ran[ST_NSTORES];	 /* got a result (maybe an error) */
	int skipped[ST_NSTORES]; /* not available here (no helper, no kernel zram, an
				    algorithm it lacks): reason printed, not a failure */
	int failed[ST_NSTORES];	 /* died, returned an error or read back wrong at
				    least once: reason printed, exit status 1 */
	char summary[512];
};

/* options.c */
int zsb_parse_options(int argc, char **argv, struct zsb_options *opt);
void zsb_usage(FILE *out);
const char *zsb_store_name(enum zsb_store s);
const char *zsb_store_key(enum zsb_store s);

/* main.c */
__attribute__((format(printf, 1, 2))) void zsb_error(const char *fmt, ...);
void zsb_warn_cb(void *ctx, const char *msg);
int zsb_load_corpus(struct zsb_ctx *ctx);
void zsb_bar_wait(void *bar);

/* run.c */
int zsb_bench(struct zsb_ctx *ctx);
/* One run of store s into res; says what went wrong, marks it ran, skipped or failed. */
int zsb_run_store(struct zsb_ctx *ctx, enum zsb_store s, struct bench_result *res);
/* Whether store s is to run (again): in --stores, available, and not failed without a result. */
bool zsb_store_wanted(const struct zsb_ctx *ctx, enum zsb_store s);
/*
 * The exit verdict of the stores of a main or scaling run: 0 when at least
 * one ran and none failed; else -EIO after saying "no store ran" if none did.
 */
int zsb_stores_verdict(const struct zsb_ctx *ctx);
void zsb_median_result(const struct bench_result *rs, unsigned n, struct bench_result *out);

/*
 * The knobs of zsram's pool (store_zsram.c) and of a bare pool (store_zs.c);
 * both stores take one of these as their create() argument.
 */
struct zsb_zs_cfg {
	const char *codec;
	int level;
	unsigned chain_size; /* 0 = the pool's default (8) */
	unsigned flags;	     /* ZS_POOL_* */
	int deferred;	     /* discards and overwrites through zs_free_deferred
				(zsram: 0 sets ZSRAM_SYNC_FREE) */
	int compact;	     /* 0: no compaction step (ablate drops it) */
};

/* store_zsram.c: zsram (or a bare pool when zsram is not built) */
int zsb_run_zsram(struct zsb_ctx *ctx, struct bench_result *res); /* the main row, in a child */
/*
 * The store behind the "zsram" row: zsram with config.pool = {chain_size,
 * flags}, or zsb_zs_ops when zsram is not built. Its flush finishes the
 * deferred frees.
 */
const struct bench_store_ops *zsb_zsram_store(void);
/* Writes every page into a new such store; for the classes table. NULL + message. */
void *zsb_zsram_fill(const struct zsb_zs_cfg *cfg, const struct bench_pages *ps, char *err,
		     size_t errlen);
/* Whether the zsram row can use that algorithm (zsram's codecs, or the bare pool's). */
bool zsb_zsram_has_algorithm(const char *name);
/*
 * The algorithms some store here can use: benchlib's (malloc peers, raw,
 * the corpus line), then any of zsram's that benchlib lacks; ", "-separated.
 * Both come from the same libraries, so the lists agree (lzo in both with
 * liblzo2). zsb_algorithm_known: name is among them.
 */
const char *zsb_algorithms(void);
bool zsb_algorithm_known(const char *name);
/* Its pool (zsram_pool()): statistics only, never free through it. */
struct zs_pool *zsb_zsram_pool(void *store);
void zsb_zsram_destroy(void *store);

/* store_zs.c: a page store directly on a zsmalloc pool */
extern const struct bench_store_ops zsb_zs_ops;
/* zs_huge_class_size() of a pool with that chain (0 = default); BENCH_HUGE_SIZE if none. */
size_t zsb_huge_size(unsigned chain_size);
struct zs_pool *zsb_zs_pool(void *store);

/* store_peer.c: malloc peers and the kernel's zram */
int zsb_run_peer(struct zsb_ctx *ctx, enum zsb_store s, struct bench_result *res);
int zsb_run_kzram(struct zsb_ctx *ctx, struct bench_result *res);
int zsb_run_raw(struct zsb_ctx *ctx, struct bench_result *res);

/* inspect.c: zsbench classes, zsbench hist */
int zsb_classes(struct zsb_ctx *ctx);
int zsb_hist(struct zsb_ctx *ctx);

/* ablate.c */
int zsb_ablate(struct zsb_ctx *ctx);

/* scaling.c: zsbench scaling */
int zsb_scaling(struct zsb_ctx *ctx);

/* report_table.c */
void zsb_print_corpus(const struct zsb_ctx *ctx);
void zsb_print_table(struct zsb_ctx *ctx);
void zsb_summarize(struct zsb_ctx *ctx);
/*
 * zsram's speed over a peer's in one phase (BENCH_FILL, BENCH_LOAD): the
 * median of the runs' ratios, run k of zsram over run k of the peer. The
 * stores take turns within each --repeat round, so a pair ran seconds
 * apart and a machine that drifts between rounds moves both sides of it;
 * the ratio of the two medians would mix rounds. 0 when no round has both.
 */
double zsb_paired_ratio(const struct zsb_ctx *ctx, enum zsb_store peer, int phase);
/* The same over any two series of n runs: median of a[k] / b[k] in one phase. */
double zsb_paired_median(const struct bench_result *a, const struct bench_result *b, unsigned n,
			 int phase);
void zsb_fmt_mib(char *buf, size_t len, double bytes);

/* report_json.c */
int zsb_write_json(const struct zsb_ctx *ctx, const char *path);
struct bench_json;
/*
 * A --json document: opens path and writes the top-level object's tool,
 * version and corpus; NULL after saying why. zsb_json_end closes the object
 * and the file: 0, or -EIO after saying so.
 */
FILE *zsb_json_begin(struct bench_json *j, const struct zsb_ctx *ctx, const char *path,
		     const char *tool);
int zsb_json_end(struct bench_json *j, FILE *f, const char *path);
/* For ablate: one result object, as in "stores". */
void zsb_json_result(struct bench_json *j, const char *kind, const struct bench_result *r,
		     unsigned runs);
void zsb_json_corpus(struct bench_json *j, const struct zsb_ctx *ctx);

/* report_plot.c */
int zsb_write_plot(const struct zsb_ctx *ctx, const char *path,
		   const struct bench_result *const *rs, const char *const *titles, size_t n);

#endif /* ZSBENCH_H */
