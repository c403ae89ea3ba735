/* SPDX-License-Identifier: MIT */
/*
 * Where benchmark pages come from:
 *
 *  - the built-in corpus: generated in-process and deterministic for a seed,
 *    built to compress like process memory (see docs/corpus.md for the
 *    calibration and the bands tests/zsbench asserts);
 *  - files and directories, read as 4 KiB pages (the last page of a file is
 *    zero-padded);
 *  - a snapshot of a running process's anonymous memory, read through
 *    /proc/PID/maps, /proc/PID/pagemap and /proc/PID/mem (nothing is written
 *    to the process, it is not stopped, and pages that are not resident are
 *    skipped so that reading does not fault them in).
 *
 * These functions return 0 or a negative errno and never print: problems
 * with one file or region go to the warn callback and the read continues.
 */
#ifndef BENCH_CORPUS_H
#define BENCH_CORPUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pageset.h"

#define BENCH_CORPUS_DEFAULT_SEED 1

/* Called once per problem with a one-line message (no newline). */
typedef void (*bench_warn_fn)(void *ctx, const char *msg);

/*
 * Writes page 'index' of the built-in corpus for 'seed'. Each page depends
 * only on (seed, index), so the first N pages are the same whatever the size.
 */
void bench_corpus_page(uint64_t seed, uint64_t index, uint8_t *page);
/* Appends npages pages of the built-in corpus. 0 or -errno. */
int bench_corpus_generate(struct bench_pages *ps, size_t npages, uint64_t seed);

/*
 * Appends the pages of each path (a file, or a directory walked recursively
 * without following symbolic links) until max_pages (0 = no limit). Returns
 * 0 when at least one page was read, -ENOENT when none was, other -errno on
 * a failure of the page set itself. *truncated is set when max_pages stopped
 * the read.
 */
int bench_corpus_read_paths(struct bench_pages *ps, char *const *paths, size_t npaths,
			    size_t max_pages, int *truncated, bench_warn_fn warn, void *ctx);

struct bench_pid_stats {
	size_t regions; /* anonymous regions read */
	size_t pages;	/* resident pages read */
	size_t skipped; /* pages not resident (or unreadable), skipped */
	int truncated;	/* max_pages stopped the read */
};

/*
 * Appends the resident pages of the anonymous, readable mappings of 'pid'
 * (heap, stack, anonymous mmaps). Needs ptrace access to the process (root
 * or the same user with ptrace_scope allowing it). 0, or -errno: -ESRCH no
 * such process, -EACCES/-EPERM not allowed, -ENOENT nothing resident.
 */
int bench_corpus_read_pid(struct bench_pages *ps, pid_t pid, size_t max_pages,
			  struct bench_pid_stats *st, bench_warn_fn warn, void *ctx);

#endif /* BENCH_CORPUS_H */
