/* SPDX-License-Identifier: MIT */
/*
 * arena.c: backing memory.
 *
 * A pool reserves one large virtual range (PROT_NONE, MAP_NORESERVE: costs
 * no memory) and maps it in 2 MiB chunks as zspages need pages. A page's
 * frame number (pfn) is its index in the range. A parallel array, pdesc,
 * holds each page's zspage (RCU-published), the analogue of struct page.
 *
 * Freed pages first go to a small cache of resident pages (reused without
 * a page fault); past its capacity (cache_cap_locked: 1/64 of the pages in
 * use, 128..512) plus a slack of one chunk's pages, the oldest down to the
 * capacity are queued for the arena's worker thread
 * (started on first use), which gives them back to the OS with
 * MADV_DONTNEED in one system call per batch. zs_free thus never waits for
 * a system call or the TLB shootdown that comes with it, unless the queue
 * is full. A chunk whose pages are all free is unmapped as a unit.
 *
 * The other way round, a growing pool would take a page fault (and the
 * kernel's zeroing of the page) for every fresh page in the writer's
 * thread; instead, when allocation finds the cache nearly empty
 * (ARENA_PREFAULT_LOW), the worker faults free pages in
 * (MADV_POPULATE_WRITE, then a write to each: in a VM the first write can
 * still trap to the hypervisor), ARENA_PREFAULT_BATCH at a time, and puts
 * them in the cache ahead of need. A refill's target starts small
 * (ARENA_PREFAULT_MIN) and doubles with each refill the pool asks for, up to
 * the cache's capacity; a trim or a decay starts it small again, so that a
 * pool that grows by a few pages is not handed hundreds it never uses.
 * Waking the worker is a system call and, for an idle CPU, an
 * interprocessor interrupt (a VM exit in a
 * guest: 15-18 us for the waking thread on a 2-CPU VM): the wide gap
 * between the two marks keeps it to one per ~100 pages in a small pool
 * and ~480 in a large one, and the allocator signals after dropping the
 * lock, so the worker never wakes only to wait for it. At most the cache's
 * capacity is resident beyond what zspages hold. With ZS_POOL_HUGEPAGES
 * the chunks are backed by transparent huge pages (without it, the range
 * is MADV_NOHUGEPAGE, whatever the system's THP setting) and single pages
 * are not madvised (that would split the huge page): whole chunks are
 * released, and zs_defrag() is what empties sparsely used ones. The worker
 * prefaults there too: its first touch of a chunk faults the whole huge
 * page in (about 90 us), which a writer would otherwise wait for.
 *
 * Allocation takes the lowest free pages, preferring a contiguous run so
 * that objects straddling two pages can be read in place.
 *
 * Locking: arena->lock (a leaf) protects the chunk table, the cache and the
 * counters. System calls that free memory run outside it: their pages are
 * "in transit", owned by the calling thread, and appear in no free list.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define CHUNK_BYTES ((size_t)1 << ZS_CHUNK_SHIFT)
#ifdef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE_ MADV_POPULATE_WRITE
#else
#define MADV_POPULATE_WRITE_ 23 /* Linux 5.14 */
#endif

/* ------------------------------------------------------------------ */
/* OS layer                                                            */

static size_t chunk_table_bytes(size_t nr_chunks)
{
	size_t bytes = nr_chunks * sizeof(struct arena_chunk);

	return (bytes + ZS_PAGE_SIZE - 1) & ~(size_t)(ZS_PAGE_SIZE - 1);
}

void *vm_reserve(size_t bytes, size_t align)
{
	size_t len = bytes + (align > ZS_PAGE_SIZE ? align : 0);
	char *p = fault(ZS_FAULT_MAP) ? MAP_FAILED
				      : mmap(NULL, len, PROT_NONE,
					     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *start;

	if (p == MAP_FAILED)
		return NULL;
	if (align <= ZS_PAGE_SIZE)
		return p;
	start = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (start > p)
		munmap(p, (size_t)(start - p));
	if (p + len > start + bytes)
		munmap(start + bytes, (size_t)(p + len - (start + bytes)));
	return start;
}

void vm_unreserve(void *addr, size_t bytes)
{
	if (addr)
		munmap(addr, bytes);
}

int vm_commit(void *addr, size_t bytes)
{
	if (fault(ZS_FAULT_MAP))
		return -ENOMEM;
	return mprotect(addr, bytes, PROT_READ | PROT_WRITE) ? -errno : 0;
}

/* Drops the pages and makes the range inaccessible again, in one call. */
static int vm_decommit(void *addr, size_t bytes)
{
	void *p;

	if (fault(ZS_FAULT_MAP))
		return -ENOMEM;
	p = mmap(addr, bytes, PROT_NONE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	return p == MAP_FAILED ? -errno : 0;
}

/* ------------------------------------------------------------------ */

static bool worker_start_locked(struct arena *a);
static bool worker_wake_locked(struct arena *a);

static inline unsigned chunk_first_pfn(size_t c)
{
	return (unsigned)(c * ZS_CHUNK_PAGES);
}

/* The worker's condition variable times decay ticks: on the monotonic
 * clock, so that a change of the system time neither stalls nor rushes
 * them. */
static void work_cond_init(struct arena *a)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->work, &ca);
	pthread_condattr_destroy(&ca);
}

int arena_init(struct arena *a, size_t reserve_pages, bool hugepages, unsigned decay_ms)
{
	size_t nr_chunks = (reserve_pages + ZS_CHUNK_PAGES - 1) / ZS_CHUNK_PAGES;

	memset(a, 0, sizeof(*a));
	if (nr_chunks == 0)
		nr_chunks = 1;
	if (nr_chunks * ZS_CHUNK_PAGES > ZS_MAX_PFN + 1)
		nr_chunks = (ZS_MAX_PFN + 1) / ZS_CHUNK_PAGES;
	a->nr_chunks = nr_chunks;
	a->hugepages = hugepages;
	a->decay_ms = decay_ms;
	a->prefault_goal = ARENA_PREFAULT_MIN / 2; /* doubled by the first refill */
	a->base = vm_reserve(nr_chunks * CHUNK_BYTES, CHUNK_BYTES);
	if (!a->base)
		goto fail;
	/*
	 * Pages go back to the OS one by one: where transparent huge pages
	 * are "always" on, a chunk faulted in as one huge page would give
	 * nothing back for a single page (the kernel only queues the huge
	 * page for a later split), and khugepaged would collapse sparse chunks
	 * back into huge pages, refilling what compaction freed. The flag
	 * stays with the chunks as vm_commit() maps them.
	 */
	if (!hugepages)
		(void)madvise(a->base, nr_chunks * CHUNK_BYTES, MADV_NOHUGEPAGE);
	/* one pdesc page (512 pointers) per chunk */
	a->pdesc = vm_reserve(nr_chunks * ZS_CHUNK_PAGES * sizeof(*a->pdesc), ZS_PAGE_SIZE);
	if (!a->pdesc)
		goto fail;
	/*
	 * The chunk table (1.7 MB for the largest arena) is a mapping of its
	 * own, so that rows never touched cost nothing. calloc() gave that only
	 * while glibc served it with mmap: once a process had freed one such
	 * table (a pool destroyed), glibc's dynamic mmap threshold rose above
	 * it, and the next pool's table came from the heap, zeroed and
	 * resident (+1.7 MiB in nbdkit, which validates its configuration
	 * with a throwaway store).
	 */
	a->chunks = vm_reserve(chunk_table_bytes(nr_chunks), ZS_PAGE_SIZE);
	if (!a->chunks || vm_commit(a->chunks, chunk_table_bytes(nr_chunks)))
		goto fail;
	a->pending = malloc(ARENA_PENDING_MAX * sizeof(*a->pending));
	if (!a->pending || pthread_mutex_init(&a->lock, NULL))
		goto fail;
	work_cond_init(a);
	pthread_cond_init(&a->idle, NULL);
	return 0;
fail:
	free(a->pending);
	vm_unreserve(a->chunks, chunk_table_bytes(nr_chunks));
	vm_unreserve(a->pdesc, a->nr_chunks * ZS_CHUNK_PAGES * sizeof(*a->pdesc));
	vm_unreserve(a->base, a->nr_chunks * CHUNK_BYTES);
	memset(a, 0, sizeof(*a));
	return -ENOMEM;
}

void arena_destroy(struct arena *a)
{
	if (!a->base)
		return;
	pthread_mutex_lock(&a->lock);
	a->worker_stop = true;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->lock);
	if (a->worker_started)
		pthread_join(a->worker, NULL);
	pthread_cond_destroy(&a->work);
	pthread_cond_destroy(&a->idle);
	free(a->pending);
	vm_unreserve(a->base, a->nr_chunks * CHUNK_BYTES);
	vm_unreserve(a->pdesc, a->nr_chunks * ZS_CHUNK_PAGES * sizeof(*a->pdesc));
	vm_unreserve(a->chunks, chunk_table_bytes(a->nr_chunks));
	pthread_mutex_destroy(&a->lock);
	memset(a, 0, sizeof(*a));
}

/* Maps chunk c (all its pages free). Call with the arena lock held. */
static int chunk_map_locked(struct arena *a, size_t c)
{
	struct arena_chunk *ch = &a->chunks[c];
	char *addr = a->base + c * CHUNK_BYTES;
	int err;

	if (c >= a->top) {
		/* the chunk's pdesc page, mapped once and kept: lockless readers
		 * may look up any pfn they ever saw */
		err = vm_commit((char *)a->pdesc + c * ZS_PAGE_SIZE, ZS_PAGE_SIZE);
		if (err)
			return err;
		a->top = c + 1;
	}
	err = vm_commit(addr, CHUNK_BYTES);
	if (err)
		return err;
	if (a->hugepages)
		(void)madvise(addr, CHUNK_BYTES, MADV_HUGEPAGE);
	memset(ch->free_map, 0xff, sizeof(ch->free_map));
	ch->nr_free = ZS_CHUNK_PAGES;
	ch->nr_used = 0;
	ch->state = CHUNK_MAPPED;
	store_relaxed(&a->chunks_mapped, a->chunks_mapped + 1);
	return 0;
}

static inline bool page_free(const struct arena_chunk *ch, unsigned i)
{
	return ch->free_map[i / 64] >> (i % 64) & 1;
}

static inline void take_page(struct arena *a, size_t c, unsigned i)
{
	struct arena_chunk *ch = &a->chunks[c];

	ZS_ASSERT_INTERNAL(page_free(ch, i));
	ch->free_map[i / 64] &= ~(1ull << (i % 64));
	ch->nr_free--;
	ch->nr_used++;
}

/* First run of n free pages in ch, or -1. */
static int find_run(const struct arena_chunk *ch, unsigned n)
{
	unsigned run = 0;

	for (unsigned i = 0; i < ZS_CHUNK_PAGES; i++) {
		if (!(i % 64) && ch->free_map[i / 64] == 0) {
			run = 0;
			i += 63;
			continue;
		}
		run = page_free(ch, i) ? run + 1 : 0;
		if (run == n)
			return (int)(i + 1 - n);
	}
	return -1;
}

/* Chunk c has no free page, advance the hint past full chunks. */
static void advance_hint_locked(struct arena *a)
{
	while (a->hint < a->nr_chunks) {
		struct arena_chunk *ch = &a->chunks[a->hint];
		if (ch->state == CHUNK_UNMAPPED || (ch->state == CHUNK_MAPPED && ch->nr_free))
			break;
		a->hint++;
	}
}

/* Resident free pages the cache keeps: 1/64 of the pages in use, 128..512. */
static unsigned cache_cap_locked(const struct arena *a)
{
	size_t cap = a->pages_used / ARENA_CACHE_SHARE;

	return cap < ARENA_CACHE_MIN   ? ARENA_CACHE_MIN
	       : cap > ARENA_CACHE_MAX ? ARENA_CACHE_MAX
				       : (unsigned)cap;
}

/* How many pages a refill fills the cache up to: the goal, within the capacity. */
static unsigned prefault_target_locked(const struct arena *a)
{
	unsigned cap = cache_cap_locked(a);

	return a->prefault_goal < cap ? a->prefault_goal : cap;
}

/* Fewer cached pages than this make allocation ask for a refill. */
static unsigned prefault_low_locked(const struct arena *a)
{
	unsigned half = prefault_target_locked(a) / 2;

	return half < ARENA_PREFAULT_LOW ? half : ARENA_PREFAULT_LOW;
}

static void cache_push_locked(struct arena *a, uint32_t pfn)
{
	ZS_ASSERT(a->cache_nr < ARENA_CACHE_RING); /* the ring never overflows */
	a->cache[(a->cache_head) % ARENA_CACHE_RING] = pfn;
	a->cache_head = (a->cache_head + 1) % ARENA_CACHE_RING;
	a->cache_nr++;
}

static uint32_t cache_pop_locked(struct arena *a)
{
	a->cache_head = (a->cache_head + ARENA_CACHE_RING - 1) % ARENA_CACHE_RING;
	a->cache_nr--;
	return a->cache[a->cache_head];
}

/* Removes the oldest cached page. */
static uint32_t cache_pop_oldest_locked(struct arena *a)
{
	unsigned tail = (a->cache_head + ARENA_CACHE_RING - a->cache_nr) % ARENA_CACHE_RING;
	a->cache_nr--;
	return a->cache[tail];
}

/*
 * Allocation or free: the idle period starts again. Returns true when the
 * worker must be woken to start ticking (once per idle period: it was
 * disarmed), false if it ticks already or cannot run.
 */
static bool note_activity_locked(struct arena *a)
{
	a->last_active = a->epoch;
	if (a->decay_armed || !a->decay_ms)
		return false;
	a->decay_armed = worker_start_locked(a);
	return a->decay_armed;
}

/* Takes n pages from the chunk bitmaps, lowest first, runs preferred. */
static int take_from_chunks_locked(struct arena *a, unsigned n, uint32_t *pfns)
{
	unsigned got = 0, tries = 0;
	size_t c;

	/* a contiguous run among the first few chunks that have free pages */
	for (c = a->hint; c < a->nr_chunks && tries < 4; c++) {
		struct arena_chunk *ch = &a->chunks[c];
		int start;

		if (ch->state == CHUNK_BUSY || ch->state == CHUNK_DRAINING)
			continue;
		if (ch->state == CHUNK_UNMAPPED && chunk_map_locked(a, c))
			return -ENOMEM;
		if (ch->nr_free == 0)
			continue;
		tries++;
		if (ch->nr_free < n || (start = find_run(ch, n)) < 0)
			continue;
		for (unsigned i = 0; i < n; i++) {
			take_page(a, c, (unsigned)start + i);
			pfns[i] = chunk_first_pfn(c) + (unsigned)start + i;
		}
		advance_hint_locked(a);
		return 0;
	}
	/* scattered lowest pages */
	for (c = a->hint; c < a->nr_chunks && got < n; c++) {
		struct arena_chunk *ch = &a->chunks[c];

		if (ch->state == CHUNK_BUSY || ch->state == CHUNK_DRAINING)
			continue;
		if (ch->state == CHUNK_UNMAPPED && chunk_map_locked(a, c))
			break;
		for (unsigned i = 0; i < ZS_CHUNK_PAGES && got < n && ch->nr_free; i++) {
			if (page_free(ch, i)) {
				take_page(a, c, i);
				pfns[got++] = chunk_first_pfn(c) + i;
			}
		}
	}
	advance_hint_locked(a);
	if (got == n)
		return 0;
	/* undo: the pages were free and not resident, so just flip them back */
	for (unsigned i = 0; i < got; i++) {
		struct arena_chunk *ch = &a->chunks[pfn_chunk(pfns[i])];
		unsigned p = pfns[i] % ZS_CHUNK_PAGES;
		ch->free_map[p / 64] |= 1ull << (p % 64);
		ch->nr_free++;
		ch->nr_used--;
		if (pfn_chunk(pfns[i]) < a->hint)
			a->hint = pfn_chunk(pfns[i]);
	}
	return -ENOMEM;
}

int arena_alloc_pages(struct arena *a, unsigned n, uint32_t *pfns)
{
	bool wake = false;
	int err = 0;

	pthread_mutex_lock(&a->lock);
	if (a->cache_nr >= n) {
		/* resident pages: no page fault, no zeroing by the kernel */
		for (unsigned i = 0; i < n; i++) {
			pfns[i] = cache_pop_locked(a);
			a->chunks[pfn_chunk(pfns[i])].nr_used++;
		}
	} else {
		err = take_from_chunks_locked(a, n, pfns);
	}
	if (!err)
		store_relaxed(&a->pages_used, a->pages_used + n);
	if (!err && a->cache_nr < prefault_low_locked(a) && !a->prefault_wanted) {
		/* each refill the pool asks for is twice the last one */
		if (a->prefault_goal < ARENA_CACHE_MAX)
			a->prefault_goal *= 2;
		a->prefault_wanted = wake = worker_start_locked(a);
	}
	if (!err && note_activity_locked(a))
		wake = true;
	pthread_mutex_unlock(&a->lock);
	/* after the unlock: the worker reads prefault_wanted under the lock
	 * before it waits, so the signal cannot be lost */
	if (wake)
		pthread_cond_signal(&a->work);
	return err;
}

int arena_alloc_page_below(struct arena *a, size_t below, uint32_t *pfn)
{
	int err = -ENOMEM;

	pthread_mutex_lock(&a->lock);
	for (size_t c = a->hint; c < below && c < a->nr_chunks; c++) {
		struct arena_chunk *ch = &a->chunks[c];

		if (ch->state == CHUNK_BUSY || ch->state == CHUNK_DRAINING)
			continue;
		if (ch->state == CHUNK_UNMAPPED && chunk_map_locked(a, c))
			break;
		if (!ch->nr_free)
			continue;
		for (unsigned i = 0; i < ZS_CHUNK_PAGES; i++) {
			if (page_free(ch, i)) {
				take_page(a, c, i);
				*pfn = chunk_first_pfn(c) + i;
				err = 0;
				break;
			}
		}
		break;
	}
	if (!err) {
		store_relaxed(&a->pages_used, a->pages_used + 1);
		advance_hint_locked(a);
	}
	pthread_mutex_unlock(&a->lock);
	return err;
}

/*
 * Gives sorted pages back to the OS. Each madvise() of a mapping that other
 * threads are using costs a TLB shootdown (an IPI to every CPU running
 * them), so the runs go in one process_madvise() call where the kernel
 * supports MADV_DONTNEED there with PIDFD_SELF (Linux 6.13 and later batch
 * the flush); elsewhere, one madvise() per run.
 */
#define PIDFD_SELF_THREAD_GROUP (-10000)
static int process_madvise_ok = 1; /* atomic, relaxed: cleared on first failure */

static void discard_pages(struct arena *a, const uint32_t *pfns, unsigned n)
{
	struct iovec iov[ARENA_CACHE_RING];
	unsigned nr = 0;
	size_t total = 0;
	long done = -1;

	if (fault(ZS_FAULT_MADVISE))
		return; /* the pages stay resident: still free, merely not returned */
	for (unsigned i = 0; i < n;) {
		unsigned j = i + 1;
		while (j < n && pfns[j] == pfns[j - 1] + 1)
			j++;
		iov[nr].iov_base = arena_page(a, pfns[i]);
		iov[nr].iov_len = (size_t)(j - i) << ZS_PAGE_SHIFT;
		total += iov[nr++].iov_len;
		i = j;
	}
#ifdef SYS_process_madvise
	if (load_relaxed(&process_madvise_ok)) {
		done = syscall(SYS_process_madvise, PIDFD_SELF_THREAD_GROUP, iov, (size_t)nr,
			       MADV_DONTNEED, 0u);
		if (done < 0)
			store_relaxed(&process_madvise_ok, 0);
	}
#endif
	if (done == (long)total)
		return;
	/* not supported, or stopped part-way: finish run by run (a repeated
	 * MADV_DONTNEED of a range already discarded is harmless) */
	for (unsigned i = 0; i < nr; i++)
		(void)madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED);
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return (a > b) - (a < b);
}

/*
 * Gives pages in transit (counted in a->transit by whoever took them) back
 * to the OS and marks them free; unmaps chunks that became entirely free.
 * Call without the arena lock; n <= ARENA_CACHE_RING.
 */
static void evict(struct arena *a, uint32_t *pfns, unsigned n)
{
	size_t release[ARENA_CACHE_RING];
	unsigned nr_release = 0;

	qsort(pfns, n, sizeof(*pfns), cmp_u32);
	if (!a->hugepages)
		discard_pages(a, pfns, n);

	pthread_mutex_lock(&a->lock);
	for (unsigned i = 0; i < n; i++) {
		size_t c = pfn_chunk(pfns[i]);
		struct arena_chunk *ch = &a->chunks[c];
		unsigned p = pfns[i] % ZS_CHUNK_PAGES;

		ch->free_map[p / 64] |= 1ull << (p % 64);
		ch->nr_free++;
		if (c < a->hint)
			a->hint = c;
		if (ch->nr_free == ZS_CHUNK_PAGES &&
		    (ch->state == CHUNK_MAPPED || ch->state == CHUNK_DRAINING)) {
			ch->state = CHUNK_BUSY; /* no allocation from it while unmapping */
			release[nr_release++] = c;
		}
	}
	if (nr_release) {
		int err[ARENA_CACHE_RING];

		pthread_mutex_unlock(&a->lock);
		for (unsigned i = 0; i < nr_release; i++) {
			err[i] = vm_decommit(a->base + release[i] * CHUNK_BYTES, CHUNK_BYTES);
			/*
			 * The chunk's pdesc page holds only NULLs now (every page's
			 * zspage unpublished itself before the page came back), and
			 * no one writes it while the chunk is BUSY: discard it too.
			 * It stays mapped, so a lockless reader of a stale pfn reads
			 * a zero page -- NULL, what it read before -- and the next
			 * zspage built in this chunk faults it back in.
			 */
			if (!err[i])
				(void)madvise((char *)a->pdesc + release[i] * ZS_PAGE_SIZE,
					      ZS_PAGE_SIZE, MADV_DONTNEED);
		}
		pthread_mutex_lock(&a->lock);
		for (unsigned i = 0; i < nr_release; i++) {
			size_t c = release[i];

			if (err[i]) {
				a->chunks[c].state = CHUNK_MAPPED; /* keep it; its pages are free */
			} else {
				a->chunks[c].state = CHUNK_UNMAPPED;
				store_relaxed(&a->chunks_mapped, a->chunks_mapped - 1);
				store_relaxed(&a->chunks_released, a->chunks_released + 1);
			}
			if (c < a->hint)
				a->hint = c;
		}
	}
	/* in transit until the chunks they emptied are unmapped too: arena_trim
	 * (RSS reflects it on return) and the fork handler (no chunk left BUSY
	 * in a child) wait for transit == 0 */
	a->transit -= n;
	if (!a->transit)
		pthread_cond_broadcast(&a->idle);
	pthread_mutex_unlock(&a->lock);
}

/*
 * Faults up to ARENA_PREFAULT_BATCH fresh pages in, ahead of need, and adds
 * them to the cache. Called by the worker with the lock held; drops it
 * around the system call.
 */
static void prefault_batch_locked(struct arena *a)
{
	uint32_t batch[ARENA_PREFAULT_BATCH];
	unsigned n = prefault_target_locked(a) - a->cache_nr; /* the worker checked > 0 */

	if (n > ARENA_PREFAULT_BATCH)
		n = ARENA_PREFAULT_BATCH;
	if (take_from_chunks_locked(a, n, batch)) {
		a->prefault_wanted = false; /* the arena is full: allocation says so */
		return;
	}
	a->transit += n;
	pthread_mutex_unlock(&a->lock);
	/* the pages are ours (in transit): touching them is safe */
	for (unsigned i = 0; i < n;) {
		unsigned j = i + 1;
		while (j < n && batch[j] == batch[j - 1] + 1)
			j++;
		if (!fault(ZS_FAULT_MADVISE))
			madvise(arena_page(a, batch[i]), (size_t)(j - i) << ZS_PAGE_SHIFT,
				MADV_POPULATE_WRITE_); /* fails before Linux 5.14: the touch faults */
		i = j;
	}
	/*
	 * And write to each page: in a guest, a page the kernel has just
	 * populated can still cost the first write a trip to the hypervisor
	 * (on this project's 2-CPU VM, 40-180 us per page with or without the
	 * populate, 40-60 ns after a touch); that trip belongs here, not in
	 * the writer that pops the page from the cache. A zero into a zeroed
	 * page changes nothing.
	 */
	for (unsigned i = 0; i < n; i++)
		*(volatile char *)arena_page(a, batch[i]) = 0;
	pthread_mutex_lock(&a->lock);
	/* frees may have filled the cache meanwhile: keep what fits below the
	 * eviction mark (the ring must never overflow), give the rest back */
	unsigned room = cache_cap_locked(a) + ZS_MAX_CHAIN - 1, keep;
	room = a->cache_nr < room ? room - a->cache_nr : 0;
	keep = n < room ? n : room;
	for (unsigned i = 0; i < n; i++)
		a->chunks[pfn_chunk(batch[i])].nr_used--;
	/* as if freed: last-to-first, so that popping returns them in order */
	for (unsigned i = keep; i-- > 0;)
		cache_push_locked(a, batch[i]);
	a->transit -= keep;
	store_relaxed(&a->pages_prefaulted, a->pages_prefaulted + keep);
	if (!a->transit)
		pthread_cond_broadcast(&a->idle);
	if (keep < n) {
		pthread_mutex_unlock(&a->lock);
		evict(a, batch + keep, n - keep); /* still counted in transit */
		pthread_mutex_lock(&a->lock);
	}
}

/*
 * The worker: gives queued pages back to the OS, a batch at a time, and
 * refills the cache of a growing pool between batches.
 */
static void decay_locked(struct arena *a)
{
	bool (*fn)(void *) = a->decay_fn;
	void *ctx = a->decay_ctx;
	unsigned long before = a->pages_used + a->cache_nr + a->pending_nr, after;
	bool more = false;

	/* decay_busy keeps arena_decay_stop() waiting while fn runs, so that
	 * zs_destroy_pool() does not free what it touches */
	a->decay_busy = true;
	pthread_mutex_unlock(&a->lock);
	if (fn)
		more = fn(ctx); /* frees spare zspages: their pages land in the cache */
	arena_trim(a);
	pthread_mutex_lock(&a->lock);
	a->decay_busy = false;
	pthread_cond_broadcast(&a->idle);
	after = a->pages_used + a->cache_nr + a->pending_nr;
	if (before > after)
		store_relaxed(&a->pages_decayed, a->pages_decayed + (before - after));
	/* a free during the release may have cached pages again: keep
	 * ticking for them, as for what fn could not release yet */
	a->decay_armed = more || a->cache_nr || a->pending_nr;
	a->last_active = a->epoch;
}

/* Timespec 'ms' milliseconds after now, on the monotonic clock. */
static struct timespec deadline_after(unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static bool time_reached(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/*
 * The worker: gives queued pages back to the OS, a batch at a time, refills
 * the cache of a growing pool between batches, and, while something may be
 * cached (decay_armed), ticks every decay_ms / ARENA_DECAY_TICKS to release
 * it once the arena has been idle that long. Disarmed, it sleeps untimed:
 * an idle, empty pool costs no wake-ups.
 */
static void *worker_main(void *arg)
{
	struct arena *a = arg;
	uint32_t batch[ARENA_CACHE_RING];
	struct timespec tick = { 0, 0 };
	bool ticking = false;

	pthread_mutex_lock(&a->lock);
	while (!a->worker_stop) {
		unsigned n = 0;

		if (a->fork_pause) {
			/* a fork waits for transit == 0: start no batch */
			pthread_cond_wait(&a->work, &a->lock);
			continue;
		}
		if (!a->pending_nr) {
			/* releases first: this loop comes back here after each
			 * batch, so queued pages never wait for a whole refill */
			if (a->prefault_wanted && a->cache_nr < prefault_target_locked(a)) {
				prefault_batch_locked(a);
			} else if (a->prefault_wanted) {
				a->prefault_wanted = false; /* refilled */
			} else if (a->decay_armed) {
				unsigned period = a->decay_ms / ARENA_DECAY_TICKS;

				if (!ticking) {
					tick = deadline_after(period ? period : 1);
					ticking = true;
				} else if (time_reached(&tick)) {
					a->epoch++;
					tick = deadline_after(period ? period : 1);
					if (a->epoch - a->last_active >= ARENA_DECAY_TICKS) {
						decay_locked(a);
						ticking = a->decay_armed;
					}
				} else {
					pthread_cond_timedwait(&a->work, &a->lock, &tick);
				}
			} else {
				ticking = false;
				pthread_cond_wait(&a->work, &a->lock);
			}
			continue;
		}
		while (a->pending_nr && n < ARENA_CACHE_RING)
			batch[n++] = a->pending[--a->pending_nr];
		a->transit += n;
		pthread_mutex_unlock(&a->lock);
		evict(a, batch, n);
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* Starts the worker if it does not run yet; false if it cannot run. */
static bool worker_start_locked(struct arena *a)
{
	if (!a->worker_started) {
		if (pthread_create(&a->worker, NULL, worker_main, a))
			return false;
		a->worker_started = true;
	}
	return true;
}

/* Wakes the worker, starting it if needed; false if it cannot run. */
static bool worker_wake_locked(struct arena *a)
{
	if (!worker_start_locked(a))
		return false;
	pthread_cond_signal(&a->work);
	return true;
}

/*
 * Queues pages for the worker, starting it if needed. Returns false when
 * the queue has no room (or no thread can run): the caller releases them.
 */
static bool queue_release_locked(struct arena *a, const uint32_t *pfns, unsigned n)
{
	if (a->pending_nr + n > ARENA_PENDING_MAX || !worker_wake_locked(a))
		return false;
	memcpy(a->pending + a->pending_nr, pfns, n * sizeof(*pfns));
	a->pending_nr += n;
	return true;
}

void arena_free_pages(struct arena *a, unsigned n, const uint32_t *pfns)
{
	uint32_t out[ARENA_CACHE_RING];
	unsigned nr_out = 0;
	bool wake;

	pthread_mutex_lock(&a->lock);
	wake = note_activity_locked(a);
	/* pushed last-to-first so that popping returns them in order */
	for (unsigned i = n; i-- > 0;) {
		struct arena_chunk *ch = &a->chunks[pfn_chunk(pfns[i])];

		ch->nr_used--;
		if (ch->state == CHUNK_DRAINING)
			out[nr_out++] = pfns[i]; /* zs_defrag() is emptying it */
		else
			cache_push_locked(a, pfns[i]);
	}
	store_relaxed(&a->pages_used, a->pages_used - n);
	/* past the slack, evict the oldest down to the capacity: a burst of
	 * frees stays for the allocations that follow it, and an eviction is
	 * one large batch (few system calls) */
	unsigned cap = cache_cap_locked(a);
	if (a->cache_nr >= cap + ARENA_CACHE_SLACK + ZS_MAX_CHAIN) {
		while (a->cache_nr > cap)
			out[nr_out++] = cache_pop_oldest_locked(a);
	}
	if (nr_out && queue_release_locked(a, out, nr_out))
		nr_out = 0;
	a->transit += nr_out;
	pthread_mutex_unlock(&a->lock);
	/* after the unlock, as in arena_alloc_pages() */
	if (wake)
		pthread_cond_signal(&a->work);
	if (nr_out)
		evict(a, out, nr_out);
}

void arena_note_activity(struct arena *a)
{
	bool wake;

	pthread_mutex_lock(&a->lock);
	wake = note_activity_locked(a);
	pthread_mutex_unlock(&a->lock);
	if (wake)
		pthread_cond_signal(&a->work);
}

void arena_set_decay(struct arena *a, bool (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&a->lock);
	a->decay_fn = fn;
	a->decay_ctx = ctx;
	pthread_mutex_unlock(&a->lock);
}

/* Waits, with a->lock held, until no decay release is in progress. */
static void decay_wait_locked(struct arena *a)
{
	while (a->decay_busy)
		pthread_cond_wait(&a->idle, &a->lock);
}

void arena_decay_stop(struct arena *a)
{
	pthread_mutex_lock(&a->lock);
	a->decay_fn = NULL;
	decay_wait_locked(a);
	pthread_mutex_unlock(&a->lock);
}

void arena_return_pages(struct arena *a, unsigned n, const uint32_t *pfns)
{
	uint32_t out[ZS_MAX_CHAIN];

	pthread_mutex_lock(&a->lock);
	for (unsigned i = 0; i < n; i++) {
		a->chunks[pfn_chunk(pfns[i])].nr_used--;
		out[i] = pfns[i];
	}
	store_relaxed(&a->pages_used, a->pages_used - n);
	a->transit += n;
	pthread_mutex_unlock(&a->lock);
	evict(a, out, n);
}

void arena_trim(struct arena *a)
{
	uint32_t out[ARENA_CACHE_RING];

	for (;;) {
		unsigned nr_out = 0;

		pthread_mutex_lock(&a->lock);
		a->prefault_wanted = false;
		a->prefault_goal = ARENA_PREFAULT_MIN / 2;
		while (a->cache_nr && nr_out < ARENA_CACHE_RING)
			out[nr_out++] = cache_pop_oldest_locked(a);
		while (a->pending_nr && nr_out < ARENA_CACHE_RING)
			out[nr_out++] = a->pending[--a->pending_nr];
		if (!nr_out) {
			/* wait for the worker's batch in flight, if any; a
			 * prefault batch lands in the cache: go round again */
			bool again = a->transit != 0;
			while (a->transit)
				pthread_cond_wait(&a->idle, &a->lock);
			pthread_mutex_unlock(&a->lock);
			if (again)
				continue;
			break;
		}
		a->transit += nr_out;
		pthread_mutex_unlock(&a->lock);
		/* evict() also unmaps chunks that were left empty */
		evict(a, out, nr_out);
	}
}

size_t arena_defrag_victims(struct arena *a, size_t *victims, size_t max)
{
	size_t nr = 0, free_below = 0, consumed = 0, c;

	pthread_mutex_lock(&a->lock);
	for (c = 0; c < a->top; c++) {
		const struct arena_chunk *ch = &a->chunks[c];
		if (ch->state != CHUNK_BUSY)
			free_below += ch->state == CHUNK_UNMAPPED ? ZS_CHUNK_PAGES : ch->nr_free;
	}
	/* top-down: chunk c is emptied if its pages and those of the victims
	 * above it fit into the free pages below it */
	for (c = a->top; c-- > 0 && nr < max;) {
		const struct arena_chunk *ch = &a->chunks[c];
		size_t here = ch->state == CHUNK_MAPPED ? ch->nr_free : 0;

		if (ch->state == CHUNK_UNMAPPED)
			here = ZS_CHUNK_PAGES;
		free_below -= here;
		if (ch->state != CHUNK_MAPPED || ch->nr_used == 0)
			continue;
		if (ch->nr_used > ZS_CHUNK_PAGES * 3 / 4)
			continue;
		if (consumed + ch->nr_used > free_below)
			continue;
		consumed += ch->nr_used;
		victims[nr++] = c;
	}
	for (size_t i = 0; i < nr; i++)
		a->chunks[victims[i]].state = CHUNK_DRAINING;
	pthread_mutex_unlock(&a->lock);
	return nr;
}

void arena_undrain(struct arena *a, size_t c)
{
	pthread_mutex_lock(&a->lock);
	if (a->chunks[c].state == CHUNK_DRAINING) {
		a->chunks[c].state = CHUNK_MAPPED;
		/* allocation skipped it while draining: the hint may be past it */
		if (a->chunks[c].nr_free && c < a->hint)
			a->hint = c;
	}
	pthread_mutex_unlock(&a->lock);
}

size_t arena_metadata_bytes(struct arena *a)
{
	size_t top, mapped;

	pthread_mutex_lock(&a->lock);
	top = a->top;
	mapped = a->chunks_mapped;
	pthread_mutex_unlock(&a->lock);
	/* the pdesc pages of mapped chunks (an unmapped chunk's is discarded
	 * with it) plus the touched part of the chunk table */
	return mapped * ZS_PAGE_SIZE + top * sizeof(struct arena_chunk);
}

void arena_cache_state(struct arena *a, unsigned *capacity, unsigned *cached)
{
	pthread_mutex_lock(&a->lock);
	*capacity = cache_cap_locked(a);
	*cached = a->cache_nr;
	pthread_mutex_unlock(&a->lock);
}

void arena_prefault_state(struct arena *a, unsigned *target, bool *wanted)
{
	pthread_mutex_lock(&a->lock);
	*target = prefault_target_locked(a);
	*wanted = a->prefault_wanted;
	pthread_mutex_unlock(&a->lock);
}

unsigned long arena_resident_pages(struct arena *a)
{
	unsigned long n;

	pthread_mutex_lock(&a->lock);
	n = a->pages_used + a->cache_nr + a->pending_nr + a->transit;
	if (a->hugepages) {
		/* free pages inside a mapped THP chunk stay resident */
		n = 0;
		for (size_t c = 0; c < a->top; c++)
			if (a->chunks[c].state != CHUNK_UNMAPPED)
				n += ZS_CHUNK_PAGES;
	}
	pthread_mutex_unlock(&a->lock);
	return n;
}

/*
 * fork() (fork.c), with every class lock of the pool held: takes the arena
 * lock and waits until no page is in transit -- a batch being released or
 * prefaulted by a thread the child will not have would be lost to it --
 * keeping the worker from starting another. The lock is held across fork().
 */
void arena_fork_lock(struct arena *a)
{
	pthread_mutex_lock(&a->lock);
	a->fork_pause = true;
	while (a->transit)
		pthread_cond_wait(&a->idle, &a->lock);
}

/*
 * fork(), phase 1 (before the pool's other locks): keeps the worker from
 * starting a decay and waits for one in progress -- it takes class locks
 * and frees zspages it has unlinked, so it must finish before phase 2
 * takes those locks (and a child must not inherit a zspage it was about
 * to free). fork_pause stays set until arena_fork_release().
 */
void arena_fork_quiesce(struct arena *a)
{
	pthread_mutex_lock(&a->lock);
	a->fork_pause = true;
	decay_wait_locked(a);
	pthread_mutex_unlock(&a->lock);
}

/* Returns once no decay release is in progress (zs_pool_trim). */
void arena_decay_wait(struct arena *a)
{
	pthread_mutex_lock(&a->lock);
	decay_wait_locked(a);
	pthread_mutex_unlock(&a->lock);
}

void arena_fork_release(struct arena *a, bool child)
{
	a->fork_pause = false;
	if (child && a->worker_started) {
		/* the worker, and any waits on these condition variables, stayed
		 * in the parent: the child starts its own when it needs one */
		work_cond_init(a);
		pthread_cond_init(&a->idle, NULL);
		a->worker_started = false;
		/* a decay in progress stayed in the parent with its worker:
		 * arena_decay_stop() must not wait for it; the next
		 * allocation or free arms the child's own worker */
		a->decay_busy = false;
		a->decay_armed = false;
	} else if (a->worker_started) {
		pthread_cond_signal(&a->work); /* it may have paused */
	}
	pthread_mutex_unlock(&a->lock);
}
