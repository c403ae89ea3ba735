/* SPDX-License-Identifier: MIT */
/*
 * Progress of a run, shared between the process that measures (a child or
 * a peer helper, which counts operations) and zsbench (which draws a bar on
 * a terminal). The counters live in a small memfd so exec'd helpers can map
 * them too; updating them is one relaxed atomic add per batch of operations.
 */
#ifndef BENCH_PROGRESS_H
#define BENCH_PROGRESS_H

#include <stdint.h>

struct bench_progress {
	uint64_t done;	/* atomic, relaxed: operations done in the current step */
	uint64_t total; /* atomic, relaxed: operations the current step will do */
};

/* A shared progress block (MAP_SHARED memfd); NULL + errno on failure. */
struct bench_progress *bench_progress_create(int *fd);
/* Maps an inherited block (helper side); NULL + errno. */
struct bench_progress *bench_progress_map(int fd);
void bench_progress_unmap(struct bench_progress *p);

static inline void bench_progress_reset(struct bench_progress *p, uint64_t total)
{
	if (!p)
		return;
	__atomic_store_n(&p->done, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&p->total, total, __ATOMIC_RELAXED);
}

static inline void bench_progress_add(struct bench_progress *p, uint64_t n)
{
	if (p)
		__atomic_fetch_add(&p->done, n, __ATOMIC_RELAXED);
}

/*
 * The bar on stderr: shown only when stderr is a terminal, and only once
 * the run has lasted a second. label is "what is running now".
 */
struct bench_bar {
	struct bench_progress *shared;
	int enabled; /* stderr is a terminal */
	int drawn;   /* something is on the line */
	uint64_t start_ns;
	unsigned step, nsteps;
	char label[64];
};

void bench_bar_init(struct bench_bar *b, struct bench_progress *shared, unsigned nsteps);
void bench_bar_step(struct bench_bar *b, const char *label);
/* Redraws (cheap; call a few times a second). */
void bench_bar_draw(struct bench_bar *b);
/* Erases the bar (before printing results). */
void bench_bar_clear(struct bench_bar *b);

#endif /* BENCH_PROGRESS_H */
