/* SPDX-License-Identifier: MIT */
/*
 * What a process holds: anonymous resident memory (RssAnon), the honest
 * measure of what an allocator in this process costs. File-backed and
 * shared memory (the memfd holding the benchmark pages) is not counted.
 */
#ifndef BENCH_MEMSTAT_H
#define BENCH_MEMSTAT_H

#include <stdint.h>

/* RssAnon of the calling process in bytes (resident - shared of /proc/self/statm); 0 on error. */
uint64_t bench_rss_anon(void);

/*
 * Bytes the machine can still give without swapping: MemAvailable of
 * /proc/meminfo, else sysconf(_SC_AVPHYS_PAGES) pages (free memory only);
 * 0 when neither says.
 */
uint64_t bench_mem_available(void);

#endif /* BENCH_MEMSTAT_H */
