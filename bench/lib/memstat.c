// SPDX-License-Identifier: MIT
/* RssAnon from /proc/self/statm; see memstat.h. */
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
