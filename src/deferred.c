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
 * drainer's queue and the owner takes an empty buffer from the preallocated
 * spares, initialised before the pointer to it is published. With no spare
 * left the owner frees synchronously until the drainer recycles one. The
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
 * deferred.pass_lock is held across each whole drain pass (by the drainer,
 * or a flusher where no drainer runs): a pass takes buffers' entries off
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
	pthread_cond_t done;      /* flushers wait on it */
	struct list_node slots;   /* Synchronization: lock */
	struct dbuf *full, **full_tail; /* handed-off buffers, FIFO. Sync: lock */
	struct dbuf *spares;      /* Synchronization: lock */
	unsigned nr_spares, max_spares; /* Synchronization: lock */
	bool kicked;              /* Synchronization: lock */
	uint64_t flush_req, pass_done;  /* Synchronization: lock */
	unsigned long retired_queued;   /* Synchronization: lock */
	unsigned long drained, batches; /* drainer store_relaxed; stats load_relaxed */
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
	struct dbuf *b = malloc(sizeof(*b) + size * sizeof(struct dentry));

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
	if (d->nr_spares >= d->max_spares) {
		free(b);
		return;
	}
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
 * thread at a time: the drainer, or (with no drainer) a flusher under
 * inline_lock, or destroy.
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
	w = cap ? malloc(cap * sizeof(*w)) : NULL;
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
		slot_put(s);
	}
	pthread_mutex_unlock(&d->lock);
}

static void *drain_main(void *arg)
{
	struct deferred *d = arg;

	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		uint64_t req;

		if (!d->kicked && d->flush_req == d->pass_done) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += DRAIN_PERIOD_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&d->wake, &d->lock, &ts);
		}
		req = d->flush_req;
		d->kicked = false;
		pthread_mutex_unlock(&d->lock);
		pthread_mutex_lock(&d->pass_lock);
		drain_pass(d);
		pthread_mutex_unlock(&d->pass_lock);
		pthread_mutex_lock(&d->lock);
		d->pass_done = req;
		pthread_cond_broadcast(&d->done);
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
	pthread_cond_destroy(&d->done);
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
	struct deferred *d = aligned_alloc(64, sizeof(*d)); /* a multiple of the alignment */
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
	pthread_cond_init(&d->done, NULL);
	while (d->nr_spares < d->max_spares) {
		struct dbuf *b = buf_new(d->size);
		if (!b) {
			deferred_free_struct(d);
			return NULL;
		}
		spare_put_locked(d, b); /* not shared yet */
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
	s = calloc(1, sizeof(*s));
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
	pthread_mutex_unlock(&d->lock);
	free_entry->pool = pool;
	free_entry->id = d->id;
	free_entry->slot = s;
	return s;
}

/*
 * Owner, slow path: queues the current buffer (if any and not empty) for
 * the drainer and takes a spare, under the lock. Returns the new current
 * buffer, or NULL when no spare is left.
 */
static struct dbuf *handoff(struct deferred *d, struct dslot *s)
{
	struct dbuf *b = s->cur, *fresh;

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
	}
	/* the drainer reads cur under this lock: it never sees the queued
	 * buffer as current, nor the spare before spare_put_locked() reset it */
	s->cur = fresh;
	pthread_mutex_unlock(&d->lock);
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
	uint64_t target;

	if (!d)
		return;
	if (load_relaxed(&d->stop)) {
		/* no drainer (a fork child, or it could not be started): what
		 * was queued before is freed here */
		pthread_mutex_lock(&d->pass_lock);
		drain_pass(d);
		pthread_mutex_unlock(&d->pass_lock);
		return;
	}
	pthread_mutex_lock(&d->lock);
	target = ++d->flush_req;
	pthread_cond_signal(&d->wake);
	while (d->pass_done < target)
		pthread_cond_wait(&d->done, &d->lock);
	pthread_mutex_unlock(&d->lock);
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
	for (n = d->slots.next; n != &d->slots; n = n->next)
		st->deferred_queued += load_relaxed(&container_of(n, struct dslot, link)->queued);
	pthread_mutex_unlock(&d->lock);
	st->deferred_drained = load_relaxed(&d->drained);
	st->deferred_batches = load_relaxed(&d->batches);
	st->deferred_sync = load_relaxed(&d->sync_frees);
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
			pthread_cond_init(&d->done, NULL);
			store_relaxed(&d->stop, true);
		}
		pthread_mutex_unlock(&d->lock);
		pthread_mutex_unlock(&d->pass_lock);
	}
	pthread_mutex_unlock(&pool->setup_lock);
}
