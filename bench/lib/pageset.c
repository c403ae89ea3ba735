// SPDX-License-Identifier: MIT
/* memfd-backed page sets; see pageset.h. */
#include "pageset.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "prng.h"

int bench_pages_init(struct bench_pages *ps, const char *source)
{
	memset(ps, 0, sizeof(*ps));
	ps->fd = memfd_create("zsbench-pages", MFD_CLOEXEC);
	if (ps->fd < 0)
		return -errno;
	snprintf(ps->source, sizeof(ps->source), "%s", source ? source : "");
	return 0;
}

int bench_pages_reserve(struct bench_pages *ps, size_t npages)
{
	size_t cap = ps->cap ? ps->cap : 256;
	void *p;

	if (ps->readonly)
		return -EPERM;
	if (npages <= ps->cap)
		return 0;
	while (cap < npages)
		cap *= 2;
	if (ftruncate(ps->fd, (off_t)(cap * BENCH_PAGE_SIZE)) < 0)
		return -errno;
	if (ps->data)
		p = mremap(ps->data, ps->cap * BENCH_PAGE_SIZE, cap * BENCH_PAGE_SIZE,
			   MREMAP_MAYMOVE);
	else
		p = mmap(NULL, cap * BENCH_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ps->fd,
			 0);
	if (p == MAP_FAILED)
		return -errno;
	ps->data = p;
	ps->cap = cap;
	return 0;
}

uint8_t *bench_pages_append(struct bench_pages *ps)
{
	uint8_t *page;
	int err = bench_pages_reserve(ps, ps->npages + 1);

	if (err) {
		errno = -err;
		return NULL;
	}
	page = ps->data + ps->npages++ * BENCH_PAGE_SIZE;
	memset(page, 0, BENCH_PAGE_SIZE); /* a popped page may have left bytes */
	return page;
}

void bench_pages_pop(struct bench_pages *ps)
{
	if (ps->npages)
		ps->npages--;
}

int bench_pages_map(struct bench_pages *ps, int fd, size_t npages)
{
	void *p;

	memset(ps, 0, sizeof(*ps));
	ps->fd = fd;
	ps->readonly = 1;
	if (npages == 0)
		return 0;
	p = mmap(NULL, npages * BENCH_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	ps->data = p;
	ps->npages = ps->cap = npages;
	return 0;
}

void bench_pages_free(struct bench_pages *ps)
{
	if (ps->data)
		munmap(ps->data, ps->cap * BENCH_PAGE_SIZE);
	if (ps->fd >= 0 && !ps->readonly)
		close(ps->fd);
	memset(ps, 0, sizeof(*ps));
	ps->fd = -1;
}

int bench_page_same_filled(const void *page, uint64_t *value)
{
	const uint64_t *w = page;
	uint64_t v = w[0];

	for (size_t i = 1; i < BENCH_PAGE_SIZE / sizeof(*w); i++)
		if (w[i] != v)
			return 0;
	if (value)
		*value = v;
	return 1;
}

void bench_pages_prefault(const struct bench_pages *ps)
{
	volatile uint8_t sink = 0;

	for (size_t i = 0; i < ps->npages; i++)
		sink ^= ps->data[i * BENCH_PAGE_SIZE];
	(void)sink;
}

uint64_t bench_pages_hash(const struct bench_pages *ps)
{
	uint64_t h = 0x243f6a8885a308d3ull ^ ps->npages;
	const uint64_t *w = (const uint64_t *)ps->data;
	size_t n = ps->npages * BENCH_PAGE_SIZE / sizeof(*w);

	for (size_t i = 0; i < n; i++) {
		uint64_t x = h ^ w[i];

		h = bench_splitmix64(&x);
	}
	return h;
}
