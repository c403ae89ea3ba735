// SPDX-License-Identifier: MIT
/* RssAnon from /proc/self/statm, MemAvailable from /proc/meminfo; see memstat.h. */
#include "memstat.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

uint64_t bench_rss_anon(void)
{
	/* statm: size resident shared text lib data dt, in pages; shared = file + shmem */
	char buf[256];
	unsigned long long size, resident, shared;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu %llu", &size, &resident, &shared) != 3 || shared > resident)
		return 0;
	return (uint64_t)(resident - shared) * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t bench_mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kb;
	long pages = sysconf(_SC_AVPHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
			fclose(f);
			return (uint64_t)kb << 10;
		}
	if (f)
		fclose(f);
	return pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
}
