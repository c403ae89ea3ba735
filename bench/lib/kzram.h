/* SPDX-License-Identifier: MIT */
/*
 * The kernel's zram as a benchmark peer. Needs root and
 * /sys/class/zram-control. A device is hot-added for the run, written and
 * read with O_DIRECT (page-aligned buffers) so the page cache stays out of
 * it, discarded with BLKDISCARD, compacted through sysfs, and always reset
 * and hot-removed again: by bench_kzram_destroy(), or, on a signal or an
 * early exit, by bench_kzram_cleanup_all() -- in the process that added
 * it, or, after bench_kzram_init(), in its parent once it died.
 *
 * Functions return 0 or a negative errno; create() also explains in err.
 */
#ifndef BENCH_KZRAM_H
#define BENCH_KZRAM_H

#include <stddef.h>
#include <stdint.h>

#include "storerun.h"

struct bench_kzram;

/* 1 when the kernel zram can be used here; else 0 and a reason in why. */
int bench_kzram_available(char *why, size_t len);

/*
 * Hot-adds a device of disksize bytes with 'algorithm' (falls back to lz4,
 * then to the kernel's current default, when the kernel lacks it: see
 * bench_kzram_algorithm). NULL with a one-line reason in err.
 */
struct bench_kzram *bench_kzram_create(uint64_t disksize, const char *algorithm, char *err,
				       size_t errlen);
/* Resets and hot-removes the device. */
void bench_kzram_destroy(struct bench_kzram *z);
/*
 * Puts the registry of added devices in memory shared with the processes
 * forked after it: call it once, before any fork, for
 * bench_kzram_cleanup_all() to see the devices of children. 0 or -errno
 * (then each process keeps its own registry).
 */
int bench_kzram_init(void);
/*
 * Resets and removes every registered device not removed yet: this
 * process's, and, after bench_kzram_init(), those of children, which must
 * be dead by then (a live child's open device cannot be reset). Each
 * device is removed once, by whoever claims it first. The creating and
 * removing calls block SIGINT, SIGTERM, SIGHUP and SIGQUIT meanwhile, so a
 * handler of those never finds a device half added or half removed.
 * Async-signal-safe (open/write/close/nanosleep): call it from such
 * handlers, at exit, and after a child died.
 */
void bench_kzram_cleanup_all(void);

int bench_kzram_id(const struct bench_kzram *z);
const char *bench_kzram_algorithm(const struct bench_kzram *z);
/* page must be 4096-byte aligned (O_DIRECT). */
int bench_kzram_write(struct bench_kzram *z, uint64_t index, const void *page);
int bench_kzram_read(struct bench_kzram *z, uint64_t index, void *page);
int bench_kzram_discard(struct bench_kzram *z, uint64_t index, uint64_t npages);
/* Writes 1 to compact. */
int bench_kzram_compact(struct bench_kzram *z);
/* The device's mm_stat: orig, compr, mem_used_total, mem_limit, mem_used_max,
 * same_pages, pages_compacted, huge_pages, huge_pages_since (0 if absent). */
int bench_kzram_mm_stat(struct bench_kzram *z, uint64_t v[9]);

/* As a store for bench_store_run; create() takes the algorithm name (const char *). */
extern const struct bench_store_ops bench_kzram_ops;

#endif /* BENCH_KZRAM_H */
