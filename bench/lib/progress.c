// SPDX-License-Identifier: MIT
/* Shared progress counters and the terminal bar; see progress.h. */
#include "progress.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "timing.h"

struct bench_progress *bench_progress_create(int *fd)
{
	struct bench_progress *p;

	*fd = memfd_create("zsbench-progress", MFD_CLOEXEC);
	if (*fd < 0)
		return NULL;
	if (ftruncate(*fd, 4096) < 0) {
		close(*fd);
		*fd = -1;
		return NULL;
	}
	p = bench_progress_map(*fd);
	if (!p) {
		close(*fd);
		*fd = -1;
	}
	return p;
}

struct bench_progress *bench_progress_map(int fd)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

void bench_progress_unmap(struct bench_progress *p)
{
	if (p)
		munmap(p, 4096);
}

void bench_bar_init(struct bench_bar *b, struct bench_progress *shared, unsigned nsteps)
{
	memset(b, 0, sizeof(*b));
	b->shared = shared;
	b->enabled = isatty(STDERR_FILENO);
	b->start_ns = bench_now_ns();
	b->nsteps = nsteps;
}

void bench_bar_step(struct bench_bar *b, const char *label)
{
	b->step++;
	snprintf(b->label, sizeof(b->label), "%s", label);
	bench_progress_reset(b->shared, 0);
	bench_bar_draw(b);
}

void bench_bar_draw(struct bench_bar *b)
{
	enum { WIDTH = 30 };
	char bar[WIDTH + 1];
	uint64_t done = 0, total = 0;
	unsigned fill;

	if (!b->enabled || bench_now_ns() - b->start_ns < 1000000000ull)
		return;
	if (b->shared) {
		done = __atomic_load_n(&b->shared->done, __ATOMIC_RELAXED);
		total = __atomic_load_n(&b->shared->total, __ATOMIC_RELAXED);
	}
	fill = total ? (unsigned)(done * WIDTH / total) : 0;
	if (fill > WIDTH)
		fill = WIDTH;
	memset(bar, '#', fill);
	memset(bar + fill, '.', WIDTH - fill);
	bar[WIDTH] = '\0';
	fprintf(stderr, "\r[%s] %u/%u %-40.40s", bar, b->step, b->nsteps, b->label);
	fflush(stderr);
	b->drawn = 1;
}

void bench_bar_clear(struct bench_bar *b)
{
	if (!b->drawn)
		return;
	fprintf(stderr, "\r%*s\r", 80, "");
	fflush(stderr);
	b->drawn = 0;
}
