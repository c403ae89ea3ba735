/* SPDX-License-Identifier: MIT */
/*
 * Timing and statistics for benchmarks: a monotonic clock in nanoseconds,
 * percentiles of latency samples and medians of repeated figures. All
 * functions here are meant to run *outside* measured sections, except
 * bench_now_ns(), which is what measured sections are bracketed with. The
 * hypervisor's steal time tells a measurement a noisy host spoiled.
 */
#ifndef BENCH_TIMING_H
#define BENCH_TIMING_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * CPU time in nanoseconds that the whole process (every thread, background
 * ones included, user and kernel time), or the calling thread, has used.
 */
static inline uint64_t bench_cpu_ns(clockid_t clock)
{
	struct timespec ts;

	if (clock_gettime(clock, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#define bench_process_cpu_ns() bench_cpu_ns(CLOCK_PROCESS_CPUTIME_ID)
#define bench_thread_cpu_ns()  bench_cpu_ns(CLOCK_THREAD_CPUTIME_ID)

/*
 * Steal: the time a hypervisor ran something else while this machine's
 * virtual CPUs had work, all CPUs together, since boot ("steal" of the
 * "cpu" line of /proc/stat). A phase that had some ran slower for reasons
 * outside the program. bench_steal_ns() gives it in ns, or -1 where the
 * kernel does not say; bench_parse_steal() reads the field, in clock ticks,
 * from that line (0 on success, -EINVAL when it is not such a line).
 */
int64_t bench_steal_ns(void);
int bench_parse_steal(const char *line, uint64_t *ticks);

/*
 * Percentiles (0..100, nearest-rank) of n latency samples in ns. Sorts
 * 'samples' in place. pct and out have npct entries. Returns 0, or -EINVAL
 * when n is 0 (out is then set to 0).
 */
int bench_percentiles(uint32_t *samples, size_t n, const double *pct, double *out, size_t npct);

/* Median of n doubles (mean of the middle two for even n); sorts v in place. 0 for n = 0. */
double bench_median(double *v, size_t n);

/* Megabytes (10^6 bytes) per second; 0 when ns is 0. */
double bench_mbps(uint64_t bytes, uint64_t ns);

#endif /* BENCH_TIMING_H */
