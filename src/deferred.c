/* SPDX-License-Identifier: MIT */
/*
 * deferred.c: deferred free (seed 002) -- per-thread buffers, a lockless
 * handoff, and a drain thread.
 *
 * Each (thread, pool) pair owns a slot with a buffer of entries. The owner
 * appends with plain stores and publishes the new count with a release
 * store: no lock, no read-modify-write on a shared line. The pool's drain
 * thread reads the count with an acquire load and frees the entries below
 * it in place, grouped by class (pool_free_batch holds a class lock across
 * each run of same-class handles). It keeps how far it got in 'consumed', a
 * field only it touches, so a partly filled buffer of an idle thread is
 * drained within one drain period without taking the buffer away from its
 * owner.
 *
 * A full buffer is the one handoff (the seed's, with its correction):
 *
 *   owner                                 drainer
 *   c = load_acquire(&s->count)           c = load_acquire(&s->count)
 *   if (c < size) {                       if (c == size) {      // owner stopped
 *       s->buf[c] = e;                        s->buf = spare;
 *       store_release(&s->count, c + 1);      s->consumed = 0;
 *   } else                                    store_release(&s->count, 0);
 *       free synchronously                    free old[consumed..size)
 *                                         }
 *
 * The owner writes nothing while count == size, so the drainer owns the
 * slot then; its release of count = 0 publishes the new buffer pointer to
 * the owner's acquire (publishing count first would let the owner write
 * into the old buffer: tests/models/deferred_handoff_bad.pml shows it). With
 * no spare buffer the drainer empties the full buffer in place and then
 * resets count; the owner frees synchronously meanwhile.
 *
 * Thread exit: a pthread key destructor marks the thread's slots dead with
 * a release store after its last publish; the drainer (acquire) drains what
 * is left and retires the slot. A slot is referenced by its owner thread and
 * by the pool; the last of the two to let go frees it, so a pool destroyed
 * before its threads exit, or a thread that exits first, are both fine.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_BUFFER   1024
#define DRAIN_PERIOD_MS  50 /* partly filled buffers wait at most about this */
#define TLS_ENTRIES      8
#define SLOT_LINE        64

struct dentry {
	unsigned long handle;
	unsigned long cookie;
};

struct dslot {
	/* Owner's line. count: owner store_release (append) / drainer
	 * store_release (reset when full); both sides load_acquire it. */
	unsigned count;
	bool dead;                /* owner store_release at thread exit */
	struct dentry *buf;       /* written by the drainer only while count == size */
	unsigned long queued;     /* owner store_relaxed; stats read relaxed */
	char pad_[SLOT_LINE - sizeof(unsigned) - sizeof(bool) - sizeof(void *) -
		  sizeof(unsigned long)];
	/* Drainer's line. */
	unsigned consumed;        /* entries of buf already freed. Drainer only */
	bool orphan;              /* pool gone: owner drops it. Sync: refs (acq_rel) */
	int refs;                 /* owner + pool; fetch_add_acq_rel, last one frees */
	struct list_node link;    /* registry. Synchronization: deferred.lock */
};

struct deferred {
	struct zs_pool *pool;
	uint64_t id;              /* immutable, unique per pool instance */
	unsigned size;            /* immutable: entries per buffer */
	pthread_mutex_t lock;     /* registry, spares, counters below */
	pthread_cond_t wake;      /* drainer waits on it */
	pthread_cond_t done;      /* flushers wait on it */
	struct list_node slots;   /* Synchronization: lock */
	struct dentry **spares;   /* Synchronization: lock */
	unsigned nr_spares, max_spares;
	bool kicked;              /* Synchronization: lock */
	bool stop;                /* written under lock with store_relaxed; read
				     unlocked with load_relaxed by owners (a hint:
				     they free synchronously once it is set) */
	uint64_t flush_req, pass_done; /* Synchronization: lock */
	unsigned long retired_queued;  /* queued by slots now retired. Sync: lock */
	unsigned long drained, batches; /* drainer writes store_relaxed; stats relaxed */
	unsigned long sync_frees;       /* atomic, relaxed (slow path only) */
	zs_deferred_hook hook;    /* set before first use */
	void *hook_ctx;
	pthread_t thread;
};

struct tls_entry {
	struct zs_pool *pool;
	uint64_t id;
	struct dslot *slot;
};

static __thread struct tls_entry tls_slots[TLS_ENTRIES];
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static uint64_t next_id = 1; /* atomic, relaxed: unique ids */

static void slot_put(struct dslot *s)
{
	/* acq_rel: the last one to let go sees everything the other did */
	if (fetch_add_acq_rel(&s->refs, -1) == 1) {
		free(s->buf);
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
		 * which it sees our final count */
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

/* Frees entries [from, to) of buf and runs the hook for them. */
static void drain_entries(struct deferred *d, struct dentry *buf, unsigned from, unsigned to)
{
	unsigned long handles[256];

	while (from < to) {
		unsigned n = 0, start = from;

		while (from < to && n < 256) {
			if (buf[from].handle)
				handles[n++] = buf[from].handle;
			from++;
		}
		pool_free_batch(d->pool, handles, n);
		if (d->hook)
			for (unsigned i = start; i < from; i++)
				d->hook(d->hook_ctx, buf[i].handle, buf[i].cookie);
		store_relaxed(&d->drained, d->drained + (from - start));
	}
}

static struct dentry *spare_get(struct deferred *d)
{
	struct dentry *b = NULL;

	pthread_mutex_lock(&d->lock);
	if (d->nr_spares)
		b = d->spares[--d->nr_spares];
	pthread_mutex_unlock(&d->lock);
	return b;
}

static void spare_put(struct deferred *d, struct dentry *b)
{
	pthread_mutex_lock(&d->lock);
	if (d->nr_spares < d->max_spares) {
		d->spares[d->nr_spares++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&d->lock);
	free(b);
}

/* Drains one slot. Drainer only (or destroy, with no owner running). */
static void drain_slot(struct deferred *d, struct dslot *s)
{
	/* acquire: pairs with the owner's store_release of count; entries
	 * below c are written */
	unsigned c = load_acquire(&s->count);

	if (c == d->size) {
		/* the owner stopped writing: the slot is ours until count drops */
		struct dentry *old = s->buf, *fresh = spare_get(d);
		unsigned from = s->consumed;

		store_relaxed(&d->batches, d->batches + 1);
		s->consumed = 0;
		if (fresh) {
			s->buf = fresh;
			race_window(ZS_RACE_DEFERRED_HANDOFF, d->pool);
			/* release: publishes buf before count (seed 002's
			 * correction); pairs with the owner's load_acquire */
			store_release(&s->count, 0);
			drain_entries(d, old, from, c);
			spare_put(d, old);
		} else {
			drain_entries(d, old, from, c);
			store_release(&s->count, 0); /* same buffer, now empty */
		}
	} else if (c > s->consumed) {
		drain_entries(d, s->buf, s->consumed, c);
		s->consumed = c;
	}
}

/* One pass over every slot; retires slots of exited threads. */
static void drain_pass(struct deferred *d)
{
	struct list_node *n, *next;

	pthread_mutex_lock(&d->lock);
	for (n = d->slots.next; n != &d->slots; n = next) {
		struct dslot *s = container_of(n, struct dslot, link);
		/* acquire: pairs with thread_exit()'s release */
		bool dead = load_acquire(&s->dead);

		next = n->next;
		pthread_mutex_unlock(&d->lock); /* no lock held while freeing */
		drain_slot(d, s);
		pthread_mutex_lock(&d->lock);
		if (dead) {
			/* drain_slot() saw the final count: nothing is left */
			next = n->next;
			list_del(&s->link);
			d->retired_queued += load_relaxed(&s->queued);
			slot_put(s);
		}
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
		drain_pass(d);
		pthread_mutex_lock(&d->lock);
		d->pass_done = req;
		pthread_cond_broadcast(&d->done);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

static void kick(struct deferred *d)
{
	pthread_mutex_lock(&d->lock);
	d->kicked = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */

static void deferred_free_struct(struct deferred *d)
{
	for (unsigned i = 0; i < d->nr_spares; i++)
		free(d->spares[i]);
	free(d->spares);
	pthread_cond_destroy(&d->wake);
	pthread_cond_destroy(&d->done);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static struct deferred *deferred_get(struct zs_pool *pool)
{
	/* acquire: pairs with the CAS below that published it */
	struct deferred *d = load_acquire(&pool->deferred), *expected = NULL;
	const struct zs_pool_config *cfg = &pool->config;
	pthread_condattr_t ca;
	long cpus;

	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->pool = pool;
	d->id = fetch_add_relaxed(&next_id, 1);
	d->size = cfg->deferred_buffer_size ? cfg->deferred_buffer_size : DEFAULT_BUFFER;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	d->max_spares = cfg->deferred_spares == ZS_DEFERRED_NO_SPARES ? 0
			: cfg->deferred_spares ? cfg->deferred_spares
					       : 4 * (unsigned)(cpus > 0 ? cpus : 1);
	list_init(&d->slots);
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&d->done, NULL);
	d->spares = calloc(d->max_spares ? d->max_spares : 1, sizeof(*d->spares));
	if (!d->spares)
		goto fail;
	for (; d->nr_spares < d->max_spares; d->nr_spares++) {
		d->spares[d->nr_spares] = malloc(d->size * sizeof(struct dentry));
		if (!d->spares[d->nr_spares])
			goto fail;
	}
	pthread_mutex_lock(&d->lock);
	d->hook = pool->deferred_hook;
	d->hook_ctx = pool->deferred_hook_ctx;
	pthread_mutex_unlock(&d->lock);
	/* release on success: the drainer and other threads see d whole */
	if (!__atomic_compare_exchange_n(&pool->deferred, &expected, d, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		deferred_free_struct(d);
		return expected; /* another thread won */
	}
	if (pthread_create(&d->thread, NULL, drain_main, d)) {
		/* no drainer: every call frees synchronously from now on */
		pthread_mutex_lock(&d->lock);
		store_relaxed(&d->stop, true);
		pthread_mutex_unlock(&d->lock);
	}
	return d;
fail:
	deferred_free_struct(d);
	return NULL;
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
	s = aligned_alloc(SLOT_LINE, (sizeof(*s) + SLOT_LINE - 1) / SLOT_LINE * SLOT_LINE);
	if (!s)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->buf = malloc(d->size * sizeof(struct dentry));
	if (!s->buf) {
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

static void free_now(struct zs_pool *pool, struct deferred *d, unsigned long handle,
		     unsigned long cookie)
{
	if (d)
		fetch_add_relaxed(&d->sync_frees, 1);
	zs_free(pool, handle);
	if (d && d->hook)
		d->hook(d->hook_ctx, handle, cookie);
}

static void queue(struct zs_pool *pool, unsigned long handle, unsigned long cookie)
{
	struct deferred *d = deferred_get(pool);
	struct dslot *s;
	unsigned c;

	if (!d || !(s = slot_get(pool, d))) {
		free_now(pool, d, handle, cookie);
		return;
	}
	/* acquire: pairs with the drainer's store_release(count, 0), so that
	 * after a handoff we write into the new buffer */
	c = load_acquire(&s->count);
	if (c == d->size) {
		free_now(pool, d, handle, cookie); /* full, not handed off yet */
		return;
	}
	s->buf[c].handle = handle;
	s->buf[c].cookie = cookie;
	/* release: the entry is written before the drainer sees the count */
	store_release(&s->count, c + 1);
	store_relaxed(&s->queued, s->queued + 1);
	if (c + 1 == d->size)
		kick(d);
}

ZS_EXPORT void zs_free_deferred(struct zs_pool *pool, unsigned long handle)
{
	if (handle)
		queue(pool, handle, 0);
}

ZS_EXPORT void zs_free_deferred_cookie(struct zs_pool *pool, unsigned long handle,
				       unsigned long cookie)
{
	queue(pool, handle, cookie);
}

ZS_EXPORT int zs_pool_set_deferred_hook(struct zs_pool *pool, zs_deferred_hook hook, void *ctx)
{
	if (load_acquire(&pool->deferred))
		return -EBUSY; /* only before the first deferred free */
	pool->deferred_hook = hook;
	pool->deferred_hook_ctx = ctx;
	return 0;
}

ZS_EXPORT void zs_free_deferred_flush(struct zs_pool *pool)
{
	struct deferred *d = load_acquire(&pool->deferred);
	uint64_t target;

	if (!d || load_relaxed(&d->stop))
		return;
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
	drain_pass(d);
	while (!list_empty(&d->slots)) {
		struct dslot *s = container_of(d->slots.next, struct dslot, link);

		drain_slot(d, s);
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
