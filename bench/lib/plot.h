/* SPDX-License-Identifier: MIT */
/*
 * Line plots to PNG through gnuplot (run with popen; data inline, so no
 * temporary files). Returns 0, or -ENOENT when gnuplot is not installed,
 * -EIO when it failed (message in err).
 */
#ifndef BENCH_PLOT_H
#define BENCH_PLOT_H

#include <stddef.h>

struct bench_plot_series {
	const char *title;
	const float *x, *y; /* n points; points with y < 0 are left out */
	size_t n;
	size_t stride; /* distance between points in floats (x[i * stride]) */
	int dashed;
};

/* A vertical line with a label (phase boundaries). */
struct bench_plot_mark {
	double x;
	const char *label;
};

struct bench_plot {
	const char *path; /* PNG file */
	const char *title, *xlabel, *ylabel;
	const struct bench_plot_series *series;
	size_t nseries;
	const struct bench_plot_mark *marks;
	size_t nmarks;
};

/* 1 when a gnuplot executable is on PATH. */
int bench_plot_available(void);
int bench_plot_png(const struct bench_plot *p, char *err, size_t errlen);

#endif /* BENCH_PLOT_H */
