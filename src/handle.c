/* SPDX-License-Identifier: MIT */
/*
 * handle.c: handle slots, generation tags, validation.
 *
 * A handle names an 8-byte slot word in a reserved table; the word holds the
 * object's location (obj) while the handle is live, so that compaction and
 * migration can move the object by rewriting one word. Layout in internal.h.
 *
 * Free slots are kept in two places:
 *   - a per-class cache, a list chained through the free slot words and
 *     protected by that class's lock, which zs_malloc/zs_free hold anyway:
 *     the hot paths take no extra lock and touch no shared line for handles;
 *   - a global list (handles.lock, a leaf lock) that caches refill from and
 *     spill to in batches of HANDLE_BATCH.
 *
 * Every slot word is written with a release store (or relaxed where the
 * write publishes nothing), because handle_lookup() reads slot words
 * without a lock to validate handles and to find a class.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

#define HANDLE_BATCH       32
#define HANDLE_CACHE_MAX   (4 * HANDLE_BATCH)
#define HANDLE_COMMIT      ((size_t)(2u << 20) / sizeof(uint64_t)) /* 2 MiB of slots */
#define SLOTS_PER_PAGE     (ZS_PAGE_SIZE / sizeof(uint64_t))

/* Free-slot word (layout in internal.h): the slot's next generation, and
 * link = next free index + 1 (0 = end). */
static inline uint64_t free_word(uint64_t gen, uint64_t link)
{
	return (gen << SLOT_FREE_GEN_SHIFT) | (link << SLOT_LINK_SHIFT);
}

static inline uint64_t free_gen(uint64_t w)
{
	return w >> SLOT_FREE_GEN_SHIFT;
}

static inline uint64_t free_link(uint64_t w)
{
	return (w & ((1ull << SLOT_FREE_GEN_SHIFT) - 1)) >> SLOT_LINK_SHIFT;
}

static inline uint64_t handle_idx(unsigned long handle)
{
	return handle >> HANDLE_IDX_SHIFT;
}

static inline uint64_t handle_gen(unsigned long handle)
{
	return (handle >> HANDLE_GEN_SHIFT) & HANDLE_GEN_MASK;
}

/* The live slot word of handle at obj. */
static inline uint64_t live_word(unsigned long handle, uint64_t obj)
{
	return ((handle_gen(handle) & ((1u << SLOT_GEN_BITS) - 1)) << SLOT_GEN_SHIFT) | obj |
	       SLOT_ALLOC;
}

/*
 * A fresh slot's first generation: a hash of its index and the table's
 * random seed, so that a guessed handle matches a live one only by a
 * 1-in-2^32 chance even in a new pool, where every slot would otherwise be
 * on generation 1.
 */
static inline uint64_t first_gen(const struct handle_table *t, uint64_t idx)
{
	uint64_t z = (idx ^ t->gen_seed) * 0x9e3779b97f4a7c15ull;
	uint64_t gen = (z >> 32) & HANDLE_GEN_MASK;
	return gen ? gen : 1;
}

static inline uint64_t next_gen(uint64_t gen)
{
	gen = (gen + 1) & HANDLE_GEN_MASK;
	return gen ? gen : 1; /* generation 0 is never handed out */
}

int handle_table_init(struct handle_table *t, size_t max_slots)
{
	memset(t, 0, sizeof(*t));
	/* whole commits, below the 31-bit index (the last commit loses a slot) */
	if (max_slots > HANDLE_MAX_SLOTS)
		max_slots = HANDLE_MAX_SLOTS;
	max_slots = (max_slots + HANDLE_COMMIT - 1) / HANDLE_COMMIT * HANDLE_COMMIT;
	t->slots = vm_reserve(max_slots * sizeof(uint64_t), ZS_PAGE_SIZE);
	if (!t->slots)
		return -ENOMEM;
	t->nr_max = max_slots;
	if (getrandom(&t->gen_seed, sizeof(t->gen_seed), GRND_NONBLOCK) != sizeof(t->gen_seed))
		t->gen_seed = (uint64_t)(uintptr_t)t ^ (uint64_t)time(NULL);
	if (pthread_mutex_init(&t->lock, NULL)) {
		vm_unreserve(t->slots, max_slots * sizeof(uint64_t));
		return -ENOMEM;
	}
	return 0;
}

void handle_table_destroy(struct handle_table *t)
{
	if (!t->slots)
		return;
	vm_unreserve(t->slots, t->nr_max * sizeof(uint64_t));
	pthread_mutex_destroy(&t->lock);
	memset(t, 0, sizeof(*t));
}

size_t handle_table_bytes(struct handle_table *t)
{
	pthread_mutex_lock(&t->lock);
	size_t n = t->bump; /* touched slots; the rest of the commit is not resident */
	pthread_mutex_unlock(&t->lock);
	return n * sizeof(uint64_t);
}

/* Pushes slot idx on the class's cache. Class lock held. */
static inline void cache_push(struct handle_table *t, struct size_class *class, uint64_t idx,
			      uint64_t gen)
{
	store_release(&t->slots[idx], free_word(gen, class->handle_cache));
	class->handle_cache = idx + 1;
	class->handle_cached++;
}

/* Moves up to HANDLE_BATCH free slots into the class's cache. */
static void cache_refill_locked(struct handle_table *t, struct size_class *class)
{
	assert_held(&class->lock);
	pthread_mutex_lock(&t->lock);
	for (unsigned n = 0; n < HANDLE_BATCH; n++) {
		uint64_t idx, w;

		if (t->free_head) {
			idx = t->free_head - 1;
			w = load_relaxed(&t->slots[idx]);
			t->free_head = free_link(w);
			t->nr_free--;
			cache_push(t, class, idx, free_gen(w));
			continue;
		}
		if (t->bump == t->nr_committed) {
			if (t->nr_committed == t->nr_max ||
			    vm_commit(t->slots + t->nr_committed, HANDLE_COMMIT * sizeof(uint64_t)))
				break;
			/* pairs with handle_lookup()'s load_acquire: a validator
			 * that sees the new bound finds the slots mapped */
			store_release(&t->nr_committed, t->nr_committed + HANDLE_COMMIT);
		}
		if (t->bump == HANDLE_MAX_SLOTS)
			break; /* index + 1 must fit the free word's link */
		idx = t->bump++;
		cache_push(t, class, idx, first_gen(t, idx));
	}
	pthread_mutex_unlock(&t->lock);
}

/* Gives 'count' cached slots back to the global list. */
static void cache_spill_locked(struct handle_table *t, struct size_class *class, unsigned count)
{
	pthread_mutex_lock(&t->lock);
	while (count-- && class->handle_cache) {
		uint64_t idx = class->handle_cache - 1;
		uint64_t w = load_relaxed(&t->slots[idx]);

		class->handle_cache = free_link(w);
		class->handle_cached--;
		store_relaxed(&t->slots[idx], free_word(free_gen(w), t->free_head));
		t->free_head = idx + 1;
		t->nr_free++;
	}
	pthread_mutex_unlock(&t->lock);
}

unsigned long handle_alloc_locked(struct handle_table *t, struct size_class *class)
{
	uint64_t idx, w, gen;

	assert_held(&class->lock);
	if (!class->handle_cache)
		cache_refill_locked(t, class);
	if (!class->handle_cache)
		return 0;
	idx = class->handle_cache - 1;
	w = load_relaxed(&t->slots[idx]);
	class->handle_cache = free_link(w);
	class->handle_cached--;
	gen = free_gen(w);
	/* the slot still reads as free until handle_publish_locked() */
	return (unsigned long)((idx << HANDLE_IDX_SHIFT) | (gen << HANDLE_GEN_SHIFT));
}

void handle_publish_locked(struct handle_table *t, struct size_class *class,
			   unsigned long handle, uint64_t obj)
{
	assert_held(&class->lock);
	/* release: pairs with handle_lookup()'s acquire; the object's header
	 * and its zspage are in place before the handle resolves */
	store_release(&t->slots[handle_idx(handle)], live_word(handle, obj));
}

void handle_move_locked(struct handle_table *t, struct size_class *class, unsigned long handle,
			uint64_t obj)
{
	assert_held(&class->lock);
	ZS_ASSERT(load_relaxed(&t->slots[handle_idx(handle)]) & SLOT_ALLOC);
	/* release: pairs with handle_lookup()'s acquire in readers, which see
	 * the copied object before its new location */
	store_release(&t->slots[handle_idx(handle)], live_word(handle, obj));
}

void handle_free_locked(struct handle_table *t, struct size_class *class, unsigned long handle)
{
	uint64_t idx = handle_idx(handle);

	assert_held(&class->lock);
	/* a new generation: the freed handle, and any copy of it, is stale */
	cache_push(t, class, idx, next_gen(handle_gen(handle)));
	if (class->handle_cached > HANDLE_CACHE_MAX)
		cache_spill_locked(t, class, HANDLE_CACHE_MAX / 2);
}

void handle_unalloc_locked(struct handle_table *t, struct size_class *class,
			   unsigned long handle)
{
	uint64_t idx = handle_idx(handle);

	assert_held(&class->lock);
	cache_push(t, class, idx, handle_gen(handle)); /* not used: same generation */
}

void handle_cache_drain_locked(struct handle_table *t, struct size_class *class)
{
	assert_held(&class->lock);
	cache_spill_locked(t, class, ~0u);
}

/*
 * Gives the table's free tail back to the OS: the slots above the highest
 * one that is not on the global free list (live, held by a zs_malloc in
 * progress, or in a class's cache -- callers drain those first) leave the
 * free list, bump comes down to the page above that slot, and the pages of
 * slot words above it are discarded with MADV_DONTNEED.
 *
 * Why lockless validation stays safe: the pages stay mapped (nr_committed
 * does not move), so handle_lookup() may still load any slot below it; a
 * discarded one reads as 0 -- ALLOC clear, "not live" -- which is what it
 * was. No one writes those words meanwhile: under the table lock every
 * one of them is on the free list, which this function holds and empties
 * of them before the discard. Their generations go with them, so the
 * table's seed changes: when bump hands these slots out again, their
 * first generations are fresh random ones, and a stale handle of the old
 * life matches only by the 1-in-2^32 chance of a forged one.
 *
 * Returns the bytes discarded. Takes and drops the table lock (a leaf);
 * costs one pass over the free list.
 */
size_t handle_table_shrink(struct handle_table *t)
{
	uint64_t *is_free, head = 0, prev = 0, idx, keep, nr_free = 0;
	size_t bytes = 0;

	pthread_mutex_lock(&t->lock);
	if (t->nr_free == 0 || fault(ZS_FAULT_ALLOC) ||
	    !(is_free = calloc((t->bump + 63) / 64, sizeof(uint64_t))))
		goto out;
	for (idx = t->free_head; idx; idx = free_link(load_relaxed(&t->slots[idx - 1])))
		is_free[(idx - 1) / 64] |= 1ull << ((idx - 1) % 64);
	for (keep = t->bump; keep > 0 && (is_free[(keep - 1) / 64] >> ((keep - 1) % 64) & 1);)
		keep--;
	free(is_free);
	keep = (keep + SLOTS_PER_PAGE - 1) / SLOTS_PER_PAGE * SLOTS_PER_PAGE;
	if (keep >= t->bump)
		goto out;
	/* relink the free slots below keep, in their order (relaxed stores:
	 * a link publishes nothing, and lockless readers only test ALLOC,
	 * which stays clear) */
	for (idx = t->free_head; idx;) {
		uint64_t next = free_link(load_relaxed(&t->slots[idx - 1]));

		if (idx - 1 < keep) {
			if (prev) {
				uint64_t pw = load_relaxed(&t->slots[prev - 1]);
				store_relaxed(&t->slots[prev - 1], free_word(free_gen(pw), idx));
			} else {
				head = idx;
			}
			prev = idx;
			nr_free++;
		}
		idx = next;
	}
	if (prev) {
		uint64_t pw = load_relaxed(&t->slots[prev - 1]);
		store_relaxed(&t->slots[prev - 1], free_word(free_gen(pw), 0));
	}
	t->free_head = head;
	t->nr_free = nr_free;
	bytes = (t->bump - keep) * sizeof(uint64_t);
	bytes = (bytes + ZS_PAGE_SIZE - 1) / ZS_PAGE_SIZE * ZS_PAGE_SIZE;
	if (!fault(ZS_FAULT_MADVISE)) /* kept resident: their words read as free */
		(void)madvise(t->slots + keep, bytes, MADV_DONTNEED);
	t->bump = keep;
	t->gen_seed = t->gen_seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
out:
	pthread_mutex_unlock(&t->lock);
	return bytes;
}
