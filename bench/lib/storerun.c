// SPDX-License-Identifier: MIT
/* The measured fill / free / compact / load run; see storerun.h. */
#include "storerun.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memstat.h"
#include "prng.h"
#include "timing.h"

#define MAX_THREADS	  256
#define SAMPLES_PER_PHASE 140

struct run {
	const struct bench_store_ops *ops;
	void *store;
	const struct bench_pages *ps;
	const struct bench_run_cfg *cfg;
	struct bench_result *res;
	unsigned threads;
	uint64_t rss_base;
	size_t *plan, nfree;	      /* pages freed, in order */
	size_t *live, nlive;	      /* pages kept, ascending */
	uint32_t *lat[BENCH_NPHASES]; /* per-operation latency, ns (no entry for compact) */
	uint64_t x_base;	      /* operations before the current phase (timeline x) */
	size_t nops;		      /* operations in the current phase */
	size_t cursor;		      /* atomic, relaxed: the next operation to take */
	int stop;		      /* atomic, relaxed: a worker failed; the others stop */
};

/* One thread of a phase: takes operations from the run's cursor. */
struct worker {
	struct run *run;
	pthread_t tid;
	unsigned id;
	enum bench_phase phase;
	uint64_t busy_ns;
	uint64_t mismatches;
	int err;
	size_t err_index;
	uint8_t *buf; /* 4096-aligned page buffer for reads */
};

size_t *bench_free_plan(size_t npages, double fraction, uint64_t seed, size_t *nfree)
{
	size_t *idx = malloc((npages ? npages : 1) * sizeof(*idx));
	struct bench_rng r;

	if (!idx)
		return NULL;
	if (!(fraction >= 0)) /* NaN too: (size_t)NaN below would free past the end */
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	bench_rng_seed(&r, seed ^ 0x66726565706c616eull); /* "freeplan" */
	for (size_t i = 0; i < npages; i++)
		idx[i] = i;
	for (size_t i = npages; i > 1; i--) {
		size_t j = (size_t)bench_rng_below(&r, i), t = idx[i - 1];

		idx[i - 1] = idx[j];
		idx[j] = t;
	}
	*nfree = (size_t)(fraction * (double)npages + 0.5);
	return idx;
}

uint8_t *bench_free_map(size_t npages, const size_t *plan, size_t nfree)
{
	uint8_t *freed = calloc(npages ? npages : 1, 1);

	if (!freed)
		return NULL;
	for (size_t k = 0; k < nfree; k++)
		freed[plan[k]] = 1;
	return freed;
}

double bench_density_held(const struct bench_mem *m)
{
	return m->held > 0 && m->payload >= 0 ? m->payload / m->held : 0;
}

double bench_density_rss(const struct bench_mem *m)
{
	return m->rss > 0 && m->payload >= 0 ? m->payload / m->rss : 0;
}

static void read_mem(struct run *r, struct bench_mem *m)
{
	m->payload = m->held = m->rss = -1;
	r->ops->memory(r->store, m);
	if (r->ops->has_rss) {
		m->rss = (double)bench_rss_anon() - (double)r->rss_base;
		if (m->rss > r->res->rss_peak)
			r->res->rss_peak = m->rss;
	}
}

/* Called by worker 0 only, between operations. */
static void sample(struct run *r, uint64_t x)
{
	struct bench_result *res = r->res;
	struct bench_mem m;

	if (res->nsamples >= BENCH_TIMELINE_MAX)
		return;
	read_mem(r, &m);
	res->samples[res->nsamples++] =
		(struct bench_sample){.x = (float)x, .held = (float)m.held, .rss = (float)m.rss};
}

static int do_op(struct worker *w, size_t k, uint64_t *ns)
{
	struct run *r = w->run;
	size_t idx;
	uint64_t t0, t1;
	int err;

	switch (w->phase) {
	case BENCH_FILL:
		idx = k;
		t0 = bench_now_ns();
		err = r->ops->write(r->store, idx, bench_page(r->ps, idx));
		t1 = bench_now_ns();
		break;
	case BENCH_FREE:
		idx = r->plan[k];
		t0 = bench_now_ns();
		err = r->ops->discard(r->store, idx);
		t1 = bench_now_ns();
		break;
	default:
		idx = r->live[k];
		t0 = bench_now_ns();
		err = r->ops->read(r->store, idx, w->buf);
		t1 = bench_now_ns();
		if (!err && memcmp(w->buf, bench_page(r->ps, idx), BENCH_PAGE_SIZE))
			w->mismatches++;
		break;
	}
	*ns = t1 - t0;
	r->lat[w->phase][k] = *ns > UINT32_MAX ? UINT32_MAX : (uint32_t)*ns;
	if (err)
		w->err_index = idx;
	return err;
}

/*
 * Takes the phase's operations BENCH_CLAIM_BATCH at a time from the shared cursor
 * until none are left: the threads finish together, whichever of them runs
 * slower (a data-dependent page mix, a CPU taken by another process, worker
 * 0's sampling), as they would feeding from one request queue. With one
 * thread it is the plain loop over the list.
 */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;
	size_t every = r->nops / r->threads / SAMPLES_PER_PHASE, done = 0;

	if (!every)
		every = 1;
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		size_t first = __atomic_fetch_add(&r->cursor, BENCH_CLAIM_BATCH, __ATOMIC_RELAXED);
		size_t end =
			first + BENCH_CLAIM_BATCH < r->nops ? first + BENCH_CLAIM_BATCH : r->nops;

		if (first >= r->nops)
			break;
		for (size_t k = first; k < end; k++, done++) {
			uint64_t ns;

			if (w->id == 0 && done % every == 0)
				sample(r, r->x_base + k);
			w->err = do_op(w, k, &ns);
			w->busy_ns += ns;
			if (w->err) {
				__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
				return NULL;
			}
		}
		bench_progress_add(r->cfg->progress, end - first);
	}
	return NULL;
}

static const char *phase_name(enum bench_phase ph)
{
	static const char *const names[] = {"store", "free", "compact", "load"};

	return names[ph];
}

void bench_steal_share(struct bench_op_stats *st, int64_t s0, int64_t s1)
{
	int known = s0 >= 0 && s1 >= s0 && st->wall_ns;

	st->steal_ns = known ? s1 - s0 : -1;
	st->steal = known ? (double)st->steal_ns / (double)st->wall_ns : -1;
}

/* Wall time, process CPU time and the host's steal since t0, c0, s0. */
static void phase_times(struct bench_op_stats *st, uint64_t t0, uint64_t c0, int64_t s0)
{
	uint64_t c1 = bench_process_cpu_ns();
	int64_t s1 = bench_steal_ns();

	st->wall_ns = bench_now_ns() - t0;
	st->cpu_ns = c0 && c1 > c0 ? c1 - c0 : 0;
	st->cpus = st->wall_ns && st->cpu_ns ? (double)st->cpu_ns / (double)st->wall_ns : 0;
	bench_steal_share(st, s0, s1);
}

/* Runs one phase over nops operations on r->threads threads. */
static int run_phase(struct run *r, struct worker *w, enum bench_phase ph, size_t nops)
{
	struct bench_op_stats *st = &r->res->op[ph];
	unsigned started = 1;
	int64_t s0 = bench_steal_ns();
	uint64_t t0 = bench_now_ns(), c0 = bench_process_cpu_ns();
	int err = 0;

	r->nops = nops;
	r->cursor = 0;
	for (unsigned t = 0; t < r->threads; t++) {
		w[t].phase = ph;
		w[t].busy_ns = 0;
		w[t].err = 0;
	}
	for (unsigned t = 1; t < r->threads; t++, started++)
		if (pthread_create(&w[t].tid, NULL, worker_main, &w[t]))
			break;
	if (started < r->threads) /* could not start them all: do the rest here */
		for (unsigned t = started; t < r->threads; t++)
			worker_main(&w[t]);
	worker_main(&w[0]);
	for (unsigned t = 1; t < started; t++)
		pthread_join(w[t].tid, NULL);
	phase_times(st, t0, c0, s0);
	st->ops = nops;
	st->bytes = (uint64_t)nops * BENCH_PAGE_SIZE;
	for (unsigned t = 0; t < r->threads; t++) {
		if (w[t].busy_ns > st->busy_ns)
			st->busy_ns = w[t].busy_ns;
		r->res->mismatches += w[t].mismatches;
		w[t].mismatches = 0;
		if (w[t].err && !err) {
			err = w[t].err;
			snprintf(r->res->error, sizeof(r->res->error), "%s of page %zu: %s",
				 phase_name(ph), w[t].err_index, strerror(-err));
		}
	}
	r->x_base += nops;
	return err;
}

static int run_compact(struct run *r)
{
	struct bench_op_stats *st = &r->res->op[BENCH_COMPACT];
	uint64_t t0;

	sample(r, r->x_base);
	if (r->ops->compact) {
		int64_t s0 = bench_steal_ns();
		uint64_t c0 = bench_process_cpu_ns();

		t0 = bench_now_ns();
		r->res->compacted = r->ops->compact(r->store);
		st->busy_ns = bench_now_ns() - t0;
		phase_times(st, t0, c0, s0);
		st->ops = 1;
		st->p50_us = st->p99_us = (double)st->busy_ns / 1e3;
	}
	sample(r, r->x_base);
	return 0;
}

/* Freed pages must read as zeros; untimed. */
static void check_freed(struct run *r, uint8_t *buf)
{
	for (size_t k = 0; k < r->nfree; k++) {
		size_t idx = r->plan[k];

		if (r->ops->read(r->store, idx, buf) || !bench_page_same_filled(buf, NULL) ||
		    buf[0] != 0)
			r->res->mismatches++;
	}
}

static void finish_stats(struct run *r)
{
	static const double pct[2] = {50, 99};
	size_t n[BENCH_NPHASES] = {r->ps->npages, r->nfree, 0, r->nlive};

	for (int ph = 0; ph < BENCH_NPHASES; ph++) {
		struct bench_op_stats *st = &r->res->op[ph];
		double out[2];

		if (ph == BENCH_COMPACT)
			continue;
		st->mbps = bench_mbps(st->bytes, st->busy_ns);
		if (st->ops == n[ph] && !bench_percentiles(r->lat[ph], n[ph], pct, out, 2)) {
			st->p50_us = out[0] / 1e3;
			st->p99_us = out[1] / 1e3;
		}
	}
}

static int setup(struct run *r, struct worker *w)
{
	size_t npages = r->ps->npages;
	uint8_t *freed;

	r->plan = bench_free_plan(npages, r->cfg->free_fraction, r->cfg->seed, &r->nfree);
	r->live = malloc((npages ? npages : 1) * sizeof(*r->live));
	freed = r->plan ? bench_free_map(npages, r->plan, r->nfree) : NULL;
	if (!r->plan || !r->live || !freed) {
		free(freed);
		return -ENOMEM;
	}
	for (size_t i = 0; i < npages; i++)
		if (!freed[i])
			r->live[r->nlive++] = i;
	free(freed);
	for (int ph = 0; ph < BENCH_NPHASES; ph++) {
		/* calloc + memset: touched now, so they are in the RSS baseline */
		r->lat[ph] = calloc(npages ? npages : 1, sizeof(uint32_t));
		if (!r->lat[ph])
			return -ENOMEM;
		memset(r->lat[ph], 1, npages * sizeof(uint32_t));
	}
	for (unsigned t = 0; t < r->threads; t++) {
		w[t] = (struct worker){.run = r, .id = t};
		w[t].buf = aligned_alloc(BENCH_PAGE_SIZE, BENCH_PAGE_SIZE);
		if (!w[t].buf)
			return -ENOMEM;
		memset(w[t].buf, 0, BENCH_PAGE_SIZE);
	}
	return 0;
}

static void teardown(struct run *r, struct worker *w)
{
	for (unsigned t = 0; t < r->threads; t++)
		free(w[t].buf);
	for (int ph = 0; ph < BENCH_NPHASES; ph++)
		free(r->lat[ph]);
	free(r->plan);
	free(r->live);
}

static int phases(struct run *r, struct worker *w)
{
	struct bench_result *res = r->res;
	struct bench_progress *prog = r->cfg->progress;
	int err;

	bench_progress_reset(prog, r->ps->npages + r->nfree + r->nlive);
	err = run_phase(r, w, BENCH_FILL, r->ps->npages);
	if (err)
		return err;
	read_mem(r, &res->mem[BENCH_AFTER_FILL]);
	err = run_phase(r, w, BENCH_FREE, r->nfree);
	if (err)
		return err;
	if (r->ops->flush) {
		uint64_t t0 = bench_now_ns();

		r->ops->flush(r->store);
		res->op[BENCH_FREE].busy_ns += bench_now_ns() - t0;
	}
	read_mem(r, &res->mem[BENCH_AFTER_FREE]);
	run_compact(r);
	read_mem(r, &res->mem[BENCH_AFTER_COMPACT]);
	err = run_phase(r, w, BENCH_LOAD, r->nlive);
	if (err)
		return err;
	sample(r, r->x_base);
	check_freed(r, w[0].buf);
	return 0;
}

int bench_store_run(const struct bench_store_ops *ops, void *arg, const struct bench_pages *ps,
		    const struct bench_run_cfg *cfg, struct bench_result *res)
{
	struct worker *w;
	struct run r = {.ops = ops, .ps = ps, .cfg = cfg, .res = res};
	int err;

	memset(res, 0, sizeof(*res));
	snprintf(res->name, sizeof(res->name), "%s", ops->name);
	res->pages = ps->npages;
	res->rss_peak = ops->has_rss ? 0 : -1;
	r.threads = ops->multithread && cfg->threads > 1 ? cfg->threads : 1;
	if (r.threads > MAX_THREADS)
		r.threads = MAX_THREADS;
	w = calloc(r.threads, sizeof(*w));
	err = w ? setup(&r, w) : -ENOMEM;
	if (err) {
		snprintf(res->error, sizeof(res->error), "%s: out of memory", ops->name);
		goto out;
	}
	res->freed = r.nfree;
	bench_pages_prefault(ps);
	r.rss_base = bench_rss_anon();
	r.store = ops->create(arg, ps->npages, res->error, sizeof(res->error));
	if (!r.store) {
		err = -EINVAL;
		goto out;
	}
	err = phases(&r, w);
	finish_stats(&r);
	if (ops->extra)
		ops->extra(r.store, res->extra, sizeof(res->extra));
	ops->destroy(r.store);
	res->ok = !err;
	res->verified = !err && res->mismatches == 0;
out:
	if (w)
		teardown(&r, w);
	free(w);
	return err;
}
