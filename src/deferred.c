/* SPDX-License-Identifier: MIT */
/*
 * deferred.c: deferred free (seed 002) -- per-thread buffers, a lockless
 * handoff, and a drain thread.
 *
 * Each (thread, pool) pair owns a slot whose current buffer only that
 * thread writes. zs_free_deferred() appends an entry with plain stores and
 * publishes it with a release store of the buffer's count: no lock, no
 * read-modify-write on a shared line. The pool's drain thread reads the
 * count with an acquire load and frees the entries below it, grouped by
 * class (pool_free_batch holds a class lock across each run of same-class
 * handles).
 *
 *   owner                                   drainer
 *   b->e[c] = entry;                        c = load_acquire(&b->count);
 *   store_release(&b->count, c + 1);        free b->e[b->consumed .. c);
 *                                           b->consumed = c;
 *
 * Publishing the count before the entry would let the drainer free a stale
 * entry (tests/models/deferred_handoff_bad.pml: Spin finds it).
 *
 * A buffer that fills up is handed off by its owner at once: under the
 * pool's deferred lock (once per buffer, off the fast path) it joins the
 * drainer's queue and the owner takes an empty buffer from the spares,
 * initialised before the pointer to it is published. With no spare left --
 * a burst outruns the drainer -- the owner allocates one there and then
 * (grow_ok_locked: all buffers together hold at most
 * max(ZS_DEFERRED_GROW_MIN, ZS_DEFERRED_ENTRIES_PER_PAGE x pool pages)
 * handles, and ZS_DEFERRED_MAX_ENTRIES), published the same way, so the
 * handoff protocol is the one of tests/models/deferred_handoff.pml
 * whichever way the fresh buffer came. Past that bound it frees
 * synchronously until the drainer recycles one. Drained buffers all
 * return to the spares; those above the preallocated number are freed
 * when the pool goes idle (the arena's decay calls deferred_trim()). The
 * drainer also drains the partly filled buffers of idle threads in place
 * (it only reads below the published count), so nothing waits longer than
 * one drain period; a thread's exit marks its slot dead (release) and the
 * drainer retires it after draining what is left.
 *
 * A slot is referenced by its thread and by the pool; the last of the two
 * to let go frees it, so a pool destroyed before its threads exit, and a
 * thread that exits first, are both fine.
 *
 * Locking: deferred.lock protects the slot list, the full queue, the spares,
 * every slot's 'cur' pointer (written by the owner under it; the owner may
 * read its own without it), and each buffer's 'consumed' (the drainer's).
 * It ranks above the class locks: the drainer drops it while freeing.
 * deferred.pass_lock is held across each whole drain pass (by the drainer
 * or a flusher, which drains in its own thread): a pass takes buffers' entries off
 * the shared state into its own work list, and the fork handler takes
 * pass_lock so that no entries are in that list -- owned by a thread the
 * child will not have -- at fork(). pool->setup_lock serialises the
 * creation of the deferred state with zs_pool_set_deferred_hook().
 *
 *   pool->setup_lock -> deferred.pass_lock -> deferred.lock
 *                                          -> class locks (lock dropped)
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_BUFFER  1024
#define DEFAULT_SPARES  64   /* buffers are touched only when used */
#define DRAIN_BATCH     1024 /* handles sorted by class per pool_free_batch() */
#define DRAIN_PERIOD_MS 50   /* partly filled buffers wait at most about this */
#define TLS_ENTRIES     8

struct dentry {
	unsigned long handle;
	unsigned long cookie;
};

/*
 * Invariant: consumed <= count <= size. Entries [0, consumed) are freed or
 * queued for freeing; [consumed, count) wait; the owner writes only at
 * count, and only while the buffer is its slot's 'cur'.
 */
struct dbuf {
	unsigned count;      /* owner: store_release; drainer: load_acquire */
	unsigned consumed;   /* Synchronization: deferred.lock (drainer) */
	struct dbuf *next;   /* full queue / spare list. Sync: deferred.lock */
	struct dentry e[];
};

struct dslot {
	struct dbuf *cur;     /* owner writes under deferred.lock; NULL: no buffer */
	unsigned long queued; /* owner store_relaxed; stats read relaxed */
	bool dead;            /* owner store_release at thread exit */
	bool orphan;          /* pool gone: the owner lets go. store_release */
	int refs;             /* owner + pool; fetch_add_acq_rel, the last one frees */
	struct list_node link; /* Synchronization: deferred.lock */
};

/*
 * The first cache line holds what zs_free_deferred's common case reads --
 * id (slot lookup), size and stop -- and nothing that changes after
 * setup but stop (once, at the end); the lock and everything it guards
 * start on the next line, so handoffs and drain passes do not evict it
 * from other threads' caches.
 */
struct deferred {
	struct zs_pool *pool;
	uint64_t id;              /* immutable, unique per pool instance */
	unsigned size;            /* immutable: entries per buffer */
	bool stop;                /* no drainer runs (stopping, never started, or a fork
				     child): written under lock with store_relaxed; owners
				     read it unlocked with load_relaxed (then free
				     synchronously) */
	zs_deferred_hook hook;    /* immutable: set before first use */
	void *hook_ctx;
	pthread_mutex_t lock __attribute__((aligned(64)));
	pthread_mutex_t pass_lock; /* held across each drain_pass: one at a time */
	pthread_cond_t wake;      /* the drainer waits on it */
	struct list_node slots;   /* Synchronization: lock */
	struct dbuf *full, **full_tail; /* handed-off buffers, FIFO. Sync: lock */
	struct dbuf *spares;      /* Synchronization: lock */
	unsigned nr_spares, max_spares; /* Synchronization: lock; max_spares is the
					   preallocated number, which trims keep */
	/* buffers of this state not yet freed or retired with their slot:
	 * spares + queued + being drained + the live slots' current ones.
	 * Synchronization: lock */
	unsigned nr_bufs, nr_slots;
	/* the pool's pages when a drain pass last found no full buffer left:
	 * then no queued handle holds memory, so a burst's bound does not
	 * grow with the objects it keeps alive meanwhile. Sync: lock */
	unsigned long calm_pages;
	bool kicked;              /* Synchronization: lock */
	unsigned long retired_queued;   /* Synchronization: lock */
	unsigned long drained, batches; /* written by a drain pass (the drainer's or a
					   flusher's), so under pass_lock: a plain add with
					   store_relaxed; stats load_relaxed */
	unsigned long sync_frees;       /* atomic, relaxed (slow path only) */
	pthread_t thread;
};
_Static_assert(offsetof(struct deferred, stop) < 64 && offsetof(struct deferred, hook_ctx) < 64 &&
		       offsetof(struct deferred, lock) == 64,
	       "struct deferred: the fast path's fields share no line with the lock");

struct tls_entry {
	struct zs_pool *pool;
	uint64_t id;
	struct dslot *slot;
};

static __thread struct tls_entry tls_slots[TLS_ENTRIES];
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static uint64_t next_id = 1; /* atomic, relaxed: unique ids */

static struct dbuf *buf_new(unsigned size)
{
	struct dbuf *b = fault(ZS_FAULT_ALLOC) ? NULL
						: malloc(sizeof(*b) + size * sizeof(struct dentry));

	if (b) {
		b->count = 0;
		b->consumed = 0;
		b->next = NULL;
	}
	return b;
}

static void slot_put(struct dslot *s)
{
	/* acq_rel: the last one to let go sees everything the other did */
	if (fetch_add_acq_rel(&s->refs, -1) == 1) {
		free(s->cur);
		free(s);
	}
}

/* Thread exit: hand every slot over to its drainer. */
static void thread_exit(void *arg)
{
	(void)arg;
	for (int i = 0; i < TLS_ENTRIES; i++) {
		struct dslot *s = tls_slots[i].slot;

		if (!s)
			continue;
		/* release: pairs with the drainer's load_acquire of dead, after
		 * which it sees this thread's last count */
		store_release(&s->dead, true);
		tls_slots[i].slot = NULL;
		slot_put(s);
	}
}

static void make_exit_key(void)
{
	pthread_key_create(&exit_key, thread_exit);
}

/* ------------------------------------------------------------------ */
/* Drain side                                                          */

/* Frees entries [from, to) of b and runs the hook for them. No lock held. */
static void drain_entries(struct deferred *d, struct dbuf *b, unsigned from, unsigned to)
{
	unsigned long handles[DRAIN_BATCH];

	while (from < to) {
		unsigned n = 0, start = from;

		while (from < to && n < DRAIN_BATCH) {
			if (b->e[from].handle)
				handles[n++] = b->e[from].handle;
			from++;
		}
		pool_free_batch(d->pool, handles, n);
		if (d->hook)
			for (unsigned i = start; i < from; i++)
				d->hook(d->hook_ctx, b->e[i].handle, b->e[i].cookie);
		store_relaxed(&d->drained, d->drained + (from - start));
	}
}

/* Puts a drained buffer back among the spares (or frees it). Lock held. */
static void spare_put_locked(struct deferred *d, struct dbuf *b)
{
	if (!d->max_spares) {
		/* ZS_DEFERRED_NO_SPARES: a full buffer's owner frees
		 * synchronously from then on; nothing is kept to hand out */
		free(b);
		d->nr_bufs--;
		return;
	}
	/* every buffer in use counts in nr_bufs, which grow_ok_locked()
	 * bounds: keep it for the rest of the burst; deferred_trim() frees
	 * those above max_spares when the pool goes idle */
	b->count = 0;
	b->consumed = 0;
	b->next = d->spares;
	d->spares = b;
	d->nr_spares++;
}

struct work {
	struct dbuf *b;
	unsigned from, to;
	bool recycle; /* a handed-off buffer: a spare once drained */
};

/*
 * One pass: takes the queue of full buffers and the waiting part of every
 * slot's current buffer, frees them with the lock dropped, recycles the
 * full buffers, and retires the slots of exited threads. Runs on one
 * thread at a time (under pass_lock): the drainer, a flusher, or destroy.
 *
 * The work is taken in rounds of at most 'cap' items; normally one round
 * takes all of it. Out of memory for the work list, the rounds take one
 * item each, so a pass never gives up. Rounds run one after the other, so
 * a buffer's in-place part (taken in a round) is always drained before the
 * buffer can be recycled from the queue (a later round or pass): FIFO.
 */
static void drain_pass(struct deferred *d)
{
	struct work one, *w;
	size_t nr, cap = 0, nfull = 0;
	struct list_node *n, *next;

	pthread_mutex_lock(&d->lock);
	for (n = d->slots.next; n != &d->slots; n = n->next)
		cap++;
	for (struct dbuf *b = d->full; b; b = b->next)
		nfull++;
	cap += nfull;
	w = cap && !fault(ZS_FAULT_ALLOC) ? malloc(cap * sizeof(*w)) : NULL;
	if (!w) {
		w = &one;
		cap = 1;
	}
	/* only the buffers queued now: a pass ends although owners go on */
	n = d->slots.next;
	for (;;) {
		nr = 0;
		for (; nfull && nr < cap; nfull--) {
			struct dbuf *b = d->full;

			d->full = b->next;
			if (!d->full)
				d->full_tail = &d->full;
			/* acquire: pairs with the owner's last store_release of count */
			w[nr++] = (struct work){ b, b->consumed, load_acquire(&b->count), true };
		}
		/* the slot cursor stays valid with the lock dropped: only a pass
		 * removes slots, and owners add theirs at the head */
		for (; n != &d->slots && nr < cap; n = n->next) {
			struct dbuf *b = container_of(n, struct dslot, link)->cur;
			unsigned c;

			if (!b)
				continue;
			c = load_acquire(&b->count); /* pairs with the owner's release */
			if (c > b->consumed) {
				w[nr++] = (struct work){ b, b->consumed, c, false };
				b->consumed = c;
			}
		}
		if (!nr)
			break;
		pthread_mutex_unlock(&d->lock);
		for (size_t i = 0; i < nr; i++) {
			drain_entries(d, w[i].b, w[i].from, w[i].to);
			if (w[i].recycle) {
				pthread_mutex_lock(&d->lock);
				spare_put_locked(d, w[i].b);
				pthread_mutex_unlock(&d->lock);
			}
		}
		store_relaxed(&d->batches, d->batches + nr);
		pthread_mutex_lock(&d->lock);
	}
	if (w != &one)
		free(w);
	if (!d->full) /* caught up: nothing queued holds pages */
		d->calm_pages = load_relaxed(&d->pool->pages_allocated);

	/* retire slots whose thread exited and whose buffer is drained */
	for (n = d->slots.next; n != &d->slots; n = next) {
		struct dslot *s = container_of(n, struct dslot, link);

		next = n->next;
		/* acquire: pairs with thread_exit()'s release; s->cur's count
		 * is final then */
		if (!load_acquire(&s->dead) ||
		    (s->cur && load_acquire(&s->cur->count) > s->cur->consumed))
			continue;
		list_del(&s->link);
		d->retired_queued += load_relaxed(&s->queued);
		d->nr_slots--;
		if (s->cur)
			d->nr_bufs--; /* freed with the slot */
		slot_put(s);
	}
	pthread_mutex_unlock(&d->lock);
}

static void *drain_main(void *arg)
{
	struct deferred *d = arg;

	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		if (!d->kicked) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += DRAIN_PERIOD_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&d->wake, &d->lock, &ts);
		}
		d->kicked = false;
		pthread_mutex_unlock(&d->lock);
		pthread_mutex_lock(&d->pass_lock);
		drain_pass(d);
		pthread_mutex_unlock(&d->pass_lock);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */

static void deferred_free_struct(struct deferred *d)
{
	while (d->spares) {
		struct dbuf *b = d->spares;
		d->spares = b->next;
		free(b);
	}
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->pass_lock);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/*
 * Builds the deferred state with its spares and starts the drainer. Call
 * with pool->setup_lock held: the hook it copies cannot change meanwhile.
 */
static struct deferred *deferred_create_locked(struct zs_pool *pool)
{
	const struct zs_pool_config *cfg = &pool->config;
	/* sizeof is a multiple of the alignment */
	struct deferred *d = fault(ZS_FAULT_ALLOC) ? NULL : aligned_alloc(64, sizeof(*d));
	pthread_condattr_t ca;
	long cpus;

	if (!d)
		return NULL;
	memset(d, 0, sizeof(*d));
	d->pool = pool;
	d->id = fetch_add_relaxed(&next_id, 1);
	d->size = cfg->deferred_buffer_size ? cfg->deferred_buffer_size : DEFAULT_BUFFER;
	/* enough to absorb a burst of 64k frees while the drainer catches up,
	 * and never fewer than 4 per CPU */
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	d->max_spares = cfg->deferred_spares == ZS_DEFERRED_NO_SPARES ? 0
			: cfg->deferred_spares ? cfg->deferred_spares
					       : DEFAULT_SPARES;
	if (!cfg->deferred_spares && cpus > 0 && d->max_spares < 4 * (unsigned)cpus)
		d->max_spares = 4 * (unsigned)cpus;
	d->calm_pages = load_relaxed(&pool->pages_allocated);
	d->hook = pool->deferred_hook;
	d->hook_ctx = pool->deferred_hook_ctx;
	d->full_tail = &d->full;
	list_init(&d->slots);
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->pass_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->wake, &ca);
	pthread_condattr_destroy(&ca);
	while (d->nr_spares < d->max_spares) {
		struct dbuf *b = buf_new(d->size);
		if (!b) {
			deferred_free_struct(d);
			return NULL;
		}
		spare_put_locked(d, b); /* not shared yet */
		d->nr_bufs++;
	}
	/* no drainer: every call frees synchronously */
	if (pthread_create(&d->thread, NULL, drain_main, d))
		d->stop = true; /* not shared yet */
	/* release: other threads see d whole (pairs with deferred_get()'s
	 * load_acquire) */
	store_release(&pool->deferred, d);
	return d;
}

static struct deferred *deferred_get(struct zs_pool *pool)
{
	/* acquire: pairs with deferred_create_locked()'s store_release */
	struct deferred *d = load_acquire(&pool->deferred);

	if (d)
		return d;
	pthread_mutex_lock(&pool->setup_lock);
	d = load_relaxed(&pool->deferred); /* written under this lock */
	if (!d)
		d = deferred_create_locked(pool);
	pthread_mutex_unlock(&pool->setup_lock);
	return d;
}

/* The calling thread's slot for this pool, registering one if needed. */
static struct dslot *slot_get(struct zs_pool *pool, struct deferred *d)
{
	struct tls_entry *free_entry = NULL;
	struct dslot *s;

	for (int i = 0; i < TLS_ENTRIES; i++) {
		struct tls_entry *e = &tls_slots[i];

		if (e->slot && e->pool == pool && e->id == d->id)
			return e->slot;
		/* an entry of a destroyed pool: let go of it */
		if (e->slot && load_acquire(&e->slot->orphan)) {
			slot_put(e->slot);
			e->slot = NULL;
		}
		if (!e->slot && !free_entry)
			free_entry = e;
	}
	if (!free_entry || load_relaxed(&d->stop))
		return NULL; /* too many pools in this thread: free synchronously */
	pthread_once(&exit_key_once, make_exit_key);
	s = fault(ZS_FAULT_ALLOC) ? NULL : calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cur = buf_new(d->size);
	if (!s->cur) {
		free(s);
		return NULL;
	}
	s->refs = 2; /* this thread and the pool */
	pthread_setspecific(exit_key, tls_slots); /* any non-NULL value arms it */
	pthread_mutex_lock(&d->lock);
	list_add(&d->slots, &s->link);
	d->nr_slots++;
	d->nr_bufs++;
	pthread_mutex_unlock(&d->lock);
	free_entry->pool = pool;
	free_entry->id = d->id;
	free_entry->slot = s;
	return s;
}

/*
 * May a burst add one more buffer? The preallocated spares and one buffer
 * per thread always fit; beyond them, the pool's buffers together hold at
 * most max(ZS_DEFERRED_GROW_MIN, ZS_DEFERRED_ENTRIES_PER_PAGE x its pages)
 * handles, and never ZS_DEFERRED_MAX_ENTRIES. The pages are counted when
 * the drain side last caught up (calm_pages), not now: queued handles are
 * live objects, so under a sustained overload -- threads allocating as
 * fast as they queue frees -- a bound on the current pages would grow with
 * the very objects the queue keeps alive, and the synchronous fallback,
 * the backpressure that lets the drainer catch up, would never come. No
 * growth without spares (ZS_DEFERRED_NO_SPARES: full buffers free
 * synchronously).
 */
static bool grow_ok_locked(struct deferred *d)
{
	unsigned long limit = d->calm_pages * ZS_DEFERRED_ENTRIES_PER_PAGE;
	unsigned long want = ((unsigned long)d->nr_bufs + 1) * d->size;

	if (!d->max_spares)
		return false;
	if (d->nr_bufs < d->max_spares + d->nr_slots)
		return true;
	if (limit < ZS_DEFERRED_GROW_MIN)
		limit = ZS_DEFERRED_GROW_MIN;
	if (limit > ZS_DEFERRED_MAX_ENTRIES)
		limit = ZS_DEFERRED_MAX_ENTRIES;
	return want <= limit;
}

/*
 * Owner, slow path: queues the current buffer (if any and not empty) for
 * the drainer and takes a spare, or allocates one within the bound, under
 * the lock. Returns the new current buffer, or NULL when none is left.
 */
static struct dbuf *handoff(struct deferred *d, struct dslot *s)
{
	struct dbuf *b = s->cur, *fresh;
	bool grew = false;

	pthread_mutex_lock(&d->lock);
	race_window(ZS_RACE_DEFERRED_HANDOFF, d->pool);
	if (b) {
		b->next = NULL;
		*d->full_tail = b;
		d->full_tail = &b->next;
		d->kicked = true;
		pthread_cond_signal(&d->wake);
	}
	fresh = d->spares;
	if (fresh) {
		d->spares = fresh->next;
		d->nr_spares--;
	} else if (grow_ok_locked(d) && (fresh = buf_new(d->size))) {
		/* initialised by buf_new() before cur publishes it, as a
		 * recycled spare is by spare_put_locked() */
		d->nr_bufs++;
		grew = d->nr_bufs > d->max_spares + d->nr_slots;
	}
	/* the drainer reads cur under this lock: it never sees the queued
	 * buffer as current, nor the spare before spare_put_locked() reset it */
	s->cur = fresh;
	pthread_mutex_unlock(&d->lock);
	/* a surplus buffer: have the arena's worker tick, so that it is freed
	 * once the pool goes idle (the arena lock is a leaf: not under ours) */
	if (grew)
		arena_note_activity(&d->pool->arena);
	return fresh;
}

static void free_now(struct zs_pool *pool, struct deferred *d, unsigned long handle,
		     unsigned long cookie)
{
	zs_deferred_hook hook;
	void *ctx;

	if (d) {
		fetch_add_relaxed(&d->sync_frees, 1);
		hook = d->hook;
		ctx = d->hook_ctx;
	} else {
		/* d could not be allocated: the pool's hook is still the one a
		 * drainer would run (the cookie's work must not be lost); read
		 * it under the lock zs_pool_set_deferred_hook() writes it with */
		pthread_mutex_lock(&pool->setup_lock);
		hook = pool->deferred_hook;
		ctx = pool->deferred_hook_ctx;
		pthread_mutex_unlock(&pool->setup_lock);
	}
	zs_free(pool, handle);
	if (hook)
		hook(ctx, handle, cookie);
}

static void queue(struct zs_pool *pool, unsigned long handle, unsigned long cookie)
{
	struct deferred *d = deferred_get(pool);
	struct dslot *s;
	struct dbuf *b;
	unsigned c;

	if (!d || load_relaxed(&d->stop) || !(s = slot_get(pool, d)) ||
	    (!(b = s->cur) && !(b = handoff(d, s)))) {
		/* no buffer to queue into, or no drainer (a fork child, or its
		 * thread could not be started) */
		free_now(pool, d, handle, cookie);
		return;
	}
	c = b->count; /* only this thread writes it */
	b->e[c].handle = handle;
	b->e[c].cookie = cookie;
	/* release: the entry is written before the drainer sees the count */
	store_release(&b->count, c + 1);
	store_relaxed(&s->queued, s->queued + 1);
	if (c + 1 == d->size)
		handoff(d, s); /* full: queue it now, so the next call has room */
}

ZS_EXPORT void zs_free_deferred(struct zs_pool *pool, unsigned long handle)
{
	if (pool && handle)
		queue(pool, handle, 0);
}

ZS_EXPORT void zs_free_deferred_cookie(struct zs_pool *pool, unsigned long handle,
				       unsigned long cookie)
{
	if (pool)
		queue(pool, handle, cookie);
}

ZS_EXPORT int zs_pool_set_deferred_hook(struct zs_pool *pool, zs_deferred_hook hook, void *ctx)
{
	int err = 0;

	if (!pool)
		return -EINVAL;
	/* under setup_lock: a first deferred free creating the state at the
	 * same time either copies this hook or makes this call fail */
	pthread_mutex_lock(&pool->setup_lock);
	if (load_relaxed(&pool->deferred)) {
		err = -EBUSY; /* only before the first deferred free */
	} else {
		pool->deferred_hook = hook;
		pool->deferred_hook_ctx = ctx;
	}
	pthread_mutex_unlock(&pool->setup_lock);
	return err;
}

ZS_EXPORT void zs_free_deferred_flush(struct zs_pool *pool)
{
	struct deferred *d = pool ? load_acquire(&pool->deferred) : NULL;

	if (!d)
		return;
	/*
	 * The pass runs here, in the caller, with or without a drainer: a
	 * pass the drainer has in progress holds pass_lock and has freed what
	 * it took when it lets go, and this pass takes everything else queued
	 * before the call (full buffers and every slot's published count).
	 * Waking the drainer and waiting for its pass instead cost each flush
	 * two thread switches (on a VM, an interprocessor interrupt each).
	 */
	pthread_mutex_lock(&d->pass_lock);
	drain_pass(d);
	pthread_mutex_unlock(&d->pass_lock);
}

void deferred_destroy(struct zs_pool *pool)
{
	struct deferred *d = load_acquire(&pool->deferred);

	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	bool running = !d->stop;
	store_relaxed(&d->stop, true);
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	if (running)
		pthread_join(d->thread, NULL);
	/* no owner runs now (zs_destroy_pool's contract): drain and let go */
	pthread_mutex_lock(&d->pass_lock);
	drain_pass(d);
	pthread_mutex_unlock(&d->pass_lock);
	while (!list_empty(&d->slots)) {
		struct dslot *s = container_of(d->slots.next, struct dslot, link);

		list_del(&s->link);
		store_release(&s->orphan, true); /* the owner lets go lazily */
		slot_put(s);
	}
	pool->deferred = NULL;
	deferred_free_struct(d);
}

void deferred_stats(struct zs_pool *pool, struct zs_pool_stats *st)
{
	struct deferred *d = load_acquire(&pool->deferred);
	struct list_node *n;

	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	st->deferred_queued = d->retired_queued;
	st->deferred_bytes = (unsigned long)d->nr_bufs *
			     (sizeof(struct dbuf) + d->size * sizeof(struct dentry));
	for (n = d->slots.next; n != &d->slots; n = n->next)
		st->deferred_queued += load_relaxed(&container_of(n, struct dslot, link)->queued);
	pthread_mutex_unlock(&d->lock);
	st->deferred_drained = load_relaxed(&d->drained);
	st->deferred_batches = load_relaxed(&d->batches);
	st->deferred_sync = load_relaxed(&d->sync_frees);
}

bool deferred_trim(struct zs_pool *pool)
{
	struct deferred *d = load_acquire(&pool->deferred); /* pairs with the creation */
	struct dbuf *list = NULL;
	bool more;

	if (!d)
		return false;
	pthread_mutex_lock(&d->lock);
	while (d->nr_spares > d->max_spares) {
		struct dbuf *b = d->spares;

		d->spares = b->next;
		d->nr_spares--;
		d->nr_bufs--;
		b->next = list;
		list = b;
	}
	/* grown buffers still queued come back as spares after their drain */
	more = d->nr_bufs > d->max_spares + d->nr_slots;
	pthread_mutex_unlock(&d->lock);
	while (list) {
		struct dbuf *b = list;

		list = b->next;
		free(b);
	}
	return more;
}

/*
 * fork() (fork.c). Prepare, phase 1: no deferred state can be created and
 * no drain pass is in progress (its work list would be lost to the child);
 * phase 2: no handoff is in progress. Parent and child release in reverse.
 */
void deferred_fork_quiesce(struct zs_pool *pool)
{
	struct deferred *d;

	pthread_mutex_lock(&pool->setup_lock);
	d = load_relaxed(&pool->deferred); /* written under setup_lock */
	if (d)
		pthread_mutex_lock(&d->pass_lock);
}

void deferred_fork_lock(struct zs_pool *pool)
{
	struct deferred *d = load_relaxed(&pool->deferred);

	if (d)
		pthread_mutex_lock(&d->lock);
}

void deferred_fork_release(struct zs_pool *pool, bool child)
{
	struct deferred *d = load_relaxed(&pool->deferred);

	if (d) {
		if (child) {
			/* the drainer, and any waits on these condition variables,
			 * stayed in the parent: from now on this process frees
			 * synchronously and flushes drain in place */
			pthread_cond_init(&d->wake, NULL);
			store_relaxed(&d->stop, true);
		}
		pthread_mutex_unlock(&d->lock);
		pthread_mutex_unlock(&d->pass_lock);
	}
	pthread_mutex_unlock(&pool->setup_lock);
}
