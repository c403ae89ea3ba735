// SPDX-License-Identifier: MIT
/* gnuplot through popen; see plot.h. */
#include "plot.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int bench_plot_available(void)
{
	const char *path = getenv("PATH");
	char dir[PATH_MAX];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		if (snprintf(dir, sizeof(dir), "%.*s/gnuplot", (int)n, path) < (int)sizeof(dir) &&
		    access(dir, X_OK) == 0)
			return 1;
		path += n + (path[n] == ':');
	}
	return 0;
}

/* gnuplot single-quoted string: only ' needs doubling. */
static void put_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; s && *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static void put_data(FILE *f, size_t i, const struct bench_plot_series *s)
{
	size_t st = s->stride ? s->stride : 1;

	fprintf(f, "$d%zu << EOD\n", i);
	for (size_t k = 0; k < s->n; k++)
		if (s->y[k * st] >= 0)
			fprintf(f, "%g %g\n", (double)s->x[k * st], (double)s->y[k * st]);
	fputs("EOD\n", f);
}

int bench_plot_png(const struct bench_plot *p, char *err, size_t errlen)
{
	FILE *f;
	int status;

	if (!bench_plot_available()) {
		snprintf(err, errlen, "gnuplot is not installed (Debian: apt install gnuplot-nox)");
		return -ENOENT;
	}
	/* a path gnuplot cannot write is one clear line here, not its own
	 * several on stderr */
	f = fopen(p->path, "w");
	if (!f) {
		snprintf(err, errlen, "cannot write %s: %s", p->path, strerror(errno));
		return -errno;
	}
	fclose(f);
	f = popen("gnuplot 2>/dev/null", "w");
	if (!f) {
		snprintf(err, errlen, "cannot run gnuplot: %s", strerror(errno));
		return -EIO;
	}
	for (size_t i = 0; i < p->nseries; i++)
		put_data(f, i, &p->series[i]);
	fputs("set terminal pngcairo size 1100,650 font ',11'\nset output ", f);
	put_quoted(f, p->path);
	fputs("\nset title ", f);
	put_quoted(f, p->title);
	fputs("\nset xlabel ", f);
	put_quoted(f, p->xlabel);
	fputs("\nset ylabel ", f);
	put_quoted(f, p->ylabel);
	fputs("\nset key bottom right box opaque\nset grid\nset yrange [0:*]\n", f);
	for (size_t i = 0; i < p->nmarks; i++) {
		fprintf(f, "set arrow from %g, graph 0 to %g, graph 1 nohead dt 3 lc 'gray'\n",
			p->marks[i].x, p->marks[i].x);
		fprintf(f, "set label %zu ", i + 1);
		put_quoted(f, p->marks[i].label);
		fprintf(f, " at %g, graph 0.97 offset 0.5,0 tc 'gray40'\n", p->marks[i].x);
	}
	fputs("plot ", f);
	for (size_t i = 0; i < p->nseries; i++) {
		fprintf(f, "%s$d%zu using 1:2 with lines lw 2 %s title ", i ? ", " : "", i,
			p->series[i].dashed ? "dt 2" : "");
		put_quoted(f, p->series[i].title);
	}
	fputs("\n", f);
	status = pclose(f);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "gnuplot failed (%s %d) writing %s",
			 status != -1 && WIFEXITED(status) ? "exit status" : "wait status",
			 status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : status, p->path);
		return -EIO;
	}
	return 0;
}
