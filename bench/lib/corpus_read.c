// SPDX-License-Identifier: MIT
/* Reading real data as pages: files, directories, a process's memory. See corpus.h. */
#include "corpus.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct reader {
	struct bench_pages *ps;
	size_t max_pages;
	int truncated;
	size_t pages_read;
	bench_warn_fn warn;
	void *ctx;
};

__attribute__((format(printf, 2, 3))) static void warnf(struct reader *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!r->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->warn(r->ctx, msg);
}

static int full(struct reader *r)
{
	if (r->max_pages && r->ps->npages >= r->max_pages) {
		r->truncated = 1;
		return 1;
	}
	return 0;
}

/* Reads up to one page; returns bytes read (0 at EOF) or -errno. */
static ssize_t read_page(int fd, uint8_t *buf)
{
	size_t got = 0;

	while (got < BENCH_PAGE_SIZE) {
		ssize_t n = read(fd, buf + got, BENCH_PAGE_SIZE - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Returns 0, or a negative errno from the page set (which stops the whole read). */
static int read_file(struct reader *r, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		warnf(r, "%s: %s", path, strerror(errno));
		return 0;
	}
	while (!full(r)) {
		uint8_t *page = bench_pages_append(r->ps);
		ssize_t n;

		if (!page) {
			close(fd);
			return -errno;
		}
		n = read_page(fd, page);
		if (n <= 0) {
			bench_pages_pop(r->ps);
			if (n < 0)
				warnf(r, "%s: %s", path, strerror((int)-n));
			break;
		}
		r->pages_read++;
	}
	close(fd);
	return 0;
}

static int read_path(struct reader *r, const char *path, int depth);

static int read_dir(struct reader *r, const char *path, int depth)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int err = 0;

	if (!d) {
		warnf(r, "%s: %s", path, strerror(errno));
		return 0;
	}
	while (!err && !full(r) && (e = readdir(d))) {
		char sub[PATH_MAX];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub)) {
			warnf(r, "%s/%s: path too long", path, e->d_name);
			continue;
		}
		err = read_path(r, sub, depth + 1);
	}
	closedir(d);
	return err;
}

static int read_path(struct reader *r, const char *path, int depth)
{
	struct stat st;

	/* The top-level paths follow links (the user named them); inner ones don't. */
	if ((depth ? lstat(path, &st) : stat(path, &st)) < 0) {
		warnf(r, "%s: %s", path, strerror(errno));
		return 0;
	}
	if (S_ISDIR(st.st_mode))
		return depth > 64 ? 0 : read_dir(r, path, depth);
	if (S_ISREG(st.st_mode))
		return read_file(r, path);
	if (!depth)
		warnf(r, "%s: not a regular file or directory", path);
	return 0;
}

int bench_corpus_read_paths(struct bench_pages *ps, char *const *paths, size_t npaths,
			    size_t max_pages, int *truncated, bench_warn_fn warn, void *ctx)
{
	struct reader r = {.ps = ps, .max_pages = max_pages, .warn = warn, .ctx = ctx};
	int err = 0;

	for (size_t i = 0; i < npaths && !err && !full(&r); i++)
		err = read_path(&r, paths[i], 0);
	if (truncated)
		*truncated = r.truncated;
	if (err)
		return err;
	return r.pages_read ? 0 : -ENOENT;
}

/* ---- a running process's anonymous memory ---- */

static int anonymous_mapping(const char *perms, unsigned long inode, const char *name)
{
	if (perms[0] != 'r' || inode != 0)
		return 0;
	if (!*name || !strcmp(name, "[heap]") || !strncmp(name, "[stack", 6) ||
	    !strncmp(name, "[anon:", 6))
		return 1;
	return 0; /* [vdso], [vvar], [vsyscall], files */
}

#define PAGEMAP_PRESENT (1ull << 63)
#define PAGEMAP_BATCH	512

static int read_region(struct reader *r, int memfd, int mapfd, uint64_t start, uint64_t end,
		       struct bench_pid_stats *st)
{
	uint64_t entries[PAGEMAP_BATCH];

	for (uint64_t addr = start; addr < end && !full(r);) {
		size_t n = (end - addr) / BENCH_PAGE_SIZE;
		ssize_t got;

		if (n > PAGEMAP_BATCH)
			n = PAGEMAP_BATCH;
		got = pread(mapfd, entries, n * 8, (off_t)(addr / BENCH_PAGE_SIZE * 8));
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		n = (size_t)got / 8;
		for (size_t i = 0; i < n && !full(r); i++, addr += BENCH_PAGE_SIZE) {
			uint8_t *page;

			if (!(entries[i] & PAGEMAP_PRESENT)) {
				st->skipped++;
				continue;
			}
			page = bench_pages_append(r->ps);
			if (!page)
				return -errno;
			if (pread(memfd, page, BENCH_PAGE_SIZE, (off_t)addr) != BENCH_PAGE_SIZE) {
				bench_pages_pop(r->ps);
				st->skipped++;
				continue;
			}
			st->pages++;
		}
	}
	return 0;
}

static int open_proc(pid_t pid, const char *what)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	return open(path, O_RDONLY | O_CLOEXEC);
}

int bench_corpus_read_pid(struct bench_pages *ps, pid_t pid, size_t max_pages,
			  struct bench_pid_stats *st, bench_warn_fn warn, void *ctx)
{
	struct reader r = {.ps = ps, .max_pages = max_pages, .warn = warn, .ctx = ctx};
	int mapsfd = open_proc(pid, "maps"), memfd = open_proc(pid, "mem"),
	    pmfd = open_proc(pid, "pagemap");
	FILE *maps = mapsfd >= 0 ? fdopen(mapsfd, "r") : NULL;
	char line[4096];
	int err = 0;

	memset(st, 0, sizeof(*st));
	if (!maps || memfd < 0 || pmfd < 0) {
		err = errno == ENOENT ? -ESRCH : -errno;
		goto out;
	}
	while (!err && !full(&r) && fgets(line, sizeof(line), maps)) {
		uint64_t start, end;
		unsigned long inode;
		char perms[8], name[4096] = "";
		int off = 0;

		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %lu %n", &start, &end, perms,
			   &inode, &off) < 4)
			continue;
		sscanf(line + off, "%4095[^\n]", name);
		if (!anonymous_mapping(perms, inode, name))
			continue;
		st->regions++;
		err = read_region(&r, memfd, pmfd, start, end, st);
		if (err == -EIO || err == -EACCES || err == -EPERM) {
			warnf(&r, "pid %d: region %" PRIx64 "-%" PRIx64 ": %s", (int)pid, start,
			      end, strerror(-err));
			if (err == -EIO)
				err = 0;
		}
	}
	if (!err && !st->pages)
		err = -ENOENT;
out:
	st->truncated = r.truncated;
	if (maps)
		fclose(maps);
	else if (mapsfd >= 0)
		close(mapsfd);
	if (memfd >= 0)
		close(memfd);
	if (pmfd >= 0)
		close(pmfd);
	return err;
}
