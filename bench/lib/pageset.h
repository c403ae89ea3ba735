/* SPDX-License-Identifier: MIT */
/*
 * A set of 4 KiB pages held in a memfd, so that child processes (the peer
 * helpers) can map the very same bytes without copying and without the
 * pages counting in their anonymous RSS.
 *
 * Invariant: data maps cap * BENCH_PAGE_SIZE bytes of fd; pages 0..npages-1
 * hold content; npages <= cap.
 */
#ifndef BENCH_PAGESET_H
#define BENCH_PAGESET_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_PAGE_SIZE 4096

struct bench_pages {
	int fd;		  /* memfd; -1 when empty */
	uint8_t *data;	  /* page-aligned mapping of fd */
	size_t npages;	  /* pages with content */
	size_t cap;	  /* pages mapped */
	int readonly;	  /* mapped from another process's fd (bench_pages_map) */
	char source[256]; /* what the pages are, for reports */
};

/* An empty set. Returns 0 or -errno. */
int bench_pages_init(struct bench_pages *ps, const char *source);
/* Makes room for at least npages pages in all. 0 or -errno (-ENOMEM, -ENOSPC...). */
int bench_pages_reserve(struct bench_pages *ps, size_t npages);
/* Appends one zeroed page and returns it, or NULL with errno set. */
uint8_t *bench_pages_append(struct bench_pages *ps);
/* Drops the last page (an append that turned out empty). */
void bench_pages_pop(struct bench_pages *ps);
/* Maps npages of an inherited memfd read-only (peer side). 0 or -errno. */
int bench_pages_map(struct bench_pages *ps, int fd, size_t npages);
void bench_pages_free(struct bench_pages *ps);

static inline const uint8_t *bench_page(const struct bench_pages *ps, size_t i)
{
	return ps->data + i * BENCH_PAGE_SIZE;
}

/*
 * True when the page is one 8-byte value repeated (zram's "same-filled"
 * page, stored without memory); the value goes to *value when not NULL.
 */
int bench_page_same_filled(const void *page, uint64_t *value);

/*
 * Touches every page so that a process that mapped the set (a fork or a
 * helper) takes its page faults now, not inside a measured section.
 */
void bench_pages_prefault(const struct bench_pages *ps);

/* A 64-bit hash of the pages' bytes (for determinism checks). */
uint64_t bench_pages_hash(const struct bench_pages *ps);

#endif /* BENCH_PAGESET_H */
