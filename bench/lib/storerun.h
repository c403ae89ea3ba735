/* SPDX-License-Identifier: MIT */
/*
 * One measured run of a page store, the same for every store zsbench
 * compares (zsram, malloc peers, the kernel's zram, bare zsmalloc pools):
 *
 *   1. fill:    write every page, in index order (in every phase, threads
 *               take the next BENCH_CLAIM_BATCH operations from a shared
 *               cursor, so they finish together whichever runs slower);
 *   2. free:    discard a random fraction of the pages (bench_free_plan);
 *   3. compact: the store's compaction (zsram_compact, malloc_trim, a
 *               jemalloc purge, mi_collect, zram's compact), if it has one;
 *   4. load:    read every live page back; then, untimed, compare each with
 *               its original and check that discarded pages read as zeros.
 *
 * Measured: each operation is bracketed by bench_now_ns(); its latency goes
 * into a preallocated array (percentiles are computed after the run).
 * Throughput is bytes / busy time, where busy time is the sum of a thread's
 * operation latencies and the slowest thread counts; the program's own work
 * (sampling memory, checking data, progress) happens between operations and
 * is not counted. Memory is read after each phase and ~100 times in each
 * phase for the timeline. Each phase also records its wall time and the
 * CPU time of the whole process during it (CLOCK_PROCESS_CPUTIME_ID: every
 * thread, the store's background threads included, user and kernel time),
 * so that a store whose one writer is helped by a thread of its own on
 * another CPU shows it (cpus > 1), and the hypervisor's steal time, which
 * says how much of the machine another guest took meanwhile.
 *
 * The result is a flat struct so it can travel over a pipe from a child.
 */
#ifndef BENCH_STORERUN_H
#define BENCH_STORERUN_H

#include <stddef.h>
#include <stdint.h>

#include "pageset.h"
#include "progress.h"

/* Operations a thread takes at a time from a phase's shared cursor. */
#define BENCH_CLAIM_BATCH 64

enum bench_phase { BENCH_FILL, BENCH_FREE, BENCH_COMPACT, BENCH_LOAD, BENCH_NPHASES };
/* Memory readings: after fill, after free, after compaction. */
enum bench_point { BENCH_AFTER_FILL, BENCH_AFTER_FREE, BENCH_AFTER_COMPACT, BENCH_NPOINTS };

/* One memory reading. Unknown figures are negative. */
struct bench_mem {
	double payload; /* bytes of live data as the store keeps it (zram's compr_data_size) */
	double held;	/* memory the store says it holds (zram's mem_used_total), or -1 */
	double rss;	/* growth of this process's RssAnon since before create(), or -1 */
};

/* A timeline point: x counts operations over the whole run. */
struct bench_sample {
	float x, held, rss;
};

struct bench_op_stats {
	uint64_t ops, bytes; /* bytes: uncompressed page bytes */
	uint64_t busy_ns;    /* slowest thread's summed operation latencies */
	uint64_t wall_ns;    /* the phase's start to its last thread's end */
	uint64_t cpu_ns;     /* CPU time the process used meanwhile (0: unknown) */
	double mbps;	     /* bytes / busy_ns, 10^6 bytes per second */
	double cpus;	     /* cpu_ns / wall_ns: CPUs kept busy (0: unknown) */
	int64_t steal_ns;    /* the host's steal meanwhile, all CPUs (timing.h; -1: unknown) */
	double steal;	     /* steal_ns / wall_ns: CPUs the host took (-1: unknown) */
	double p50_us, p99_us;
};

#define BENCH_TIMELINE_MAX 480
#define BENCH_NAME_MAX	   40

struct bench_result {
	char name[BENCH_NAME_MAX];
	int ok;		 /* the run reached the end */
	int verified;	 /* every live page read back equal, every freed page as zeros */
	char error[200]; /* why not ok (one line) */
	uint64_t pages, freed, mismatches;
	struct bench_mem mem[BENCH_NPOINTS];
	double rss_peak; /* highest RssAnon growth seen (-1 when not applicable) */
	struct bench_op_stats op[BENCH_NPHASES];
	long compacted; /* what compact() returned (pages freed, when the store knows) */
	unsigned nsamples;
	struct bench_sample samples[BENCH_TIMELINE_MAX];
	char extra[512]; /* store-specific figures: JSON object members, or "" */
};

/*
 * A store under test. All callbacks get the object create() returned.
 * write/read/discard may run from several threads at once on different
 * indices when multithread is set; the rest run from one thread.
 */
struct bench_store_ops {
	const char *name;
	int multithread;
	int has_rss; /* the store's memory is this process's anonymous memory */
	/* NULL with a one-line reason in err. */
	void *(*create)(void *arg, size_t npages, char *err, size_t errlen);
	int (*write)(void *s, size_t index, const void *page); /* 0 or -errno */
	int (*read)(void *s, size_t index, void *page);	       /* 0 or -errno; 4096-aligned */
	int (*discard)(void *s, size_t index);		       /* 0 or -errno */
	void (*flush)(void *s);	  /* end of the free phase (deferred frees); may be NULL */
	long (*compact)(void *s); /* NULL: no compaction step */
	void (*memory)(void *s, struct bench_mem *m);  /* sets payload and held */
	void (*extra)(void *s, char *buf, size_t len); /* may be NULL */
	void (*destroy)(void *s);
};

struct bench_run_cfg {
	unsigned threads;		 /* 1.. (forced to 1 for stores that are not multithread) */
	double free_fraction;		 /* 0..1 */
	uint64_t seed;			 /* for the free plan */
	struct bench_progress *progress; /* may be NULL */
};

/*
 * The indices a run frees, in the order it frees them: the first
 * round(fraction * npages) of a seeded shuffle. malloc'd; NULL + errno.
 */
size_t *bench_free_plan(size_t npages, double fraction, uint64_t seed, size_t *nfree);
/* The first nfree indices of plan as a map by page (1: freed). malloc'd; NULL + errno. */
uint8_t *bench_free_map(size_t npages, const size_t *plan, size_t nfree);

/*
 * Runs the four phases. Returns 0 when the run reached the end (res->ok),
 * else a negative errno with res->error set. Never prints.
 */
int bench_store_run(const struct bench_store_ops *ops, void *arg, const struct bench_pages *ps,
		    const struct bench_run_cfg *cfg, struct bench_result *res);

/*
 * Sets st->steal_ns and st->steal from readings of bench_steal_ns() taken
 * at a phase's start and end (-1: unknown); st->wall_ns must be set.
 */
void bench_steal_share(struct bench_op_stats *st, int64_t s0, int64_t s1);

/* payload / held and payload / rss of a reading; 0 when not known. */
double bench_density_held(const struct bench_mem *m);
double bench_density_rss(const struct bench_mem *m);

#endif /* BENCH_STORERUN_H */
