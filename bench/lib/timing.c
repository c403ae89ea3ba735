// SPDX-License-Identifier: MIT
/* Percentiles and medians; see timing.h. */
#include "timing.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int bench_percentiles(uint32_t *samples, size_t n, const double *pct, double *out, size_t npct)
{
	if (n == 0) {
		for (size_t i = 0; i < npct; i++)
			out[i] = 0;
		return -EINVAL;
	}
	qsort(samples, n, sizeof(*samples), cmp_u32);
	for (size_t i = 0; i < npct; i++) {
		/* nearest rank: the smallest sample with at least pct% at or below it */
		double rank = ceil(pct[i] / 100.0 * (double)n);
		size_t k = rank < 1 ? 0 : (size_t)rank - 1;

		out[i] = samples[k < n ? k : n - 1];
	}
	return 0;
}

double bench_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_mbps(uint64_t bytes, uint64_t ns)
{
	return ns ? (double)bytes * 1e3 / (double)ns : 0;
}

int bench_parse_steal(const char *line, uint64_t *ticks)
{
	/* cpu user nice system idle iowait irq softirq steal ... */
	uint64_t f[8];
	int end = 0;

	if (strncmp(line, "cpu ", 4) ||
	    sscanf(line + 4,
		   " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64 " %" SCNu64 "%n",
		   &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &end) != 8 ||
	    !end)
		return -EINVAL;
	*ticks = f[7];
	return 0;
}

int64_t bench_steal_ns(void)
{
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "re");
	char line[512];
	uint64_t ticks;
	int err;

	if (!f)
		return -1;
	err = !fgets(line, sizeof(line), f) || bench_parse_steal(line, &ticks) || hz <= 0;
	fclose(f);
	return err ? -1 : (int64_t)(ticks * (1000000000ull / (uint64_t)hz));
}
