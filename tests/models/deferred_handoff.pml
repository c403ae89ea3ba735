/* SPDX-License-Identifier: MIT */
/*
 * deferred_handoff.pml: the deferred-free buffers of src/deferred.c --
 * owners appending lock-free, handing full buffers off under the pool's
 * deferred lock, and the drain thread draining queued buffers and idle
 * threads' prefixes in place, then recycling drained buffers as spares.
 *
 * C code modelled:
 *
 *   queue()           owner k: b = s->cur (its own; no spare earlier:
 *                     handoff() for one, none: free_now()); c = b->count
 *                     (its own); b->e[c] = entry; store_release(&b->count,
 *                     c + 1); full: handoff()
 *   handoff()         owner, under d->lock: queue b (if any) on the full
 *                     FIFO; s->cur = a spare, or NULL when none is left
 *   free_now()        the synchronous fallback
 *   drain_pass()      drainer, under d->lock: take the full FIFO, each as
 *                     (b, b->consumed, load_acquire(&b->count), recycle);
 *                     for every slot's cur: c = load_acquire(&cur->count),
 *                     c > consumed: (cur, consumed, c, in place),
 *                     consumed = c. Unlocked: free each item's entries;
 *                     recycle ones go back through spare_put_locked()
 *                     (count = consumed = 0; beyond max_spares: free()).
 *                     Under the lock: retire slots whose thread exited
 *                     and whose cur is drained (slot_put frees cur).
 *   thread_exit()     store_release(&s->dead, true)
 *   deferred_destroy  one last drain_pass() once the owners are done
 *
 * The world: NOWNERS owner threads with a slot each, a buffer of SIZE
 * entries each to start with, and NSPARE preallocated spares (max_spares
 * = NSPARE, so one buffer too many is freed on recycling). Owner k appends
 * NVAL entries with distinct values (k * NVAL + 1 ..), each a handle to
 * free, then exits. Buffers are never cleared, as in C: a recycled buffer
 * still holds its old values, so draining an entry that was not written
 * again shows up as a double free; 0 is memory never written.
 *
 * Memory ordering. Spin interleaves whole statements: it is sequentially
 * consistent. The lock orders everything but the owner's lock-free
 * append, and there the release of count (owner) and the acquire of count
 * (drainer) forbid exactly the reorderings that matter -- the entry store
 * after the count store, the entry loads before the count load -- so
 * sequential consistency is a faithful model of the correct code. The bad
 * variant (deferred_handoff_bad.pml, BAD_COUNT_FIRST) models what a plain
 * or relaxed count store allows: the count becomes visible before the
 * entry, i.e. the two stores happen in the reversed order as separate
 * steps.
 *
 * Properties (assertions; valid end states):
 *   - an owner writes only into its slot's current buffer: never into one
 *     that is queued, being drained for recycling, spare, or freed;
 *   - the drainer drains a work item only while its buffer is still in
 *     the same use (not recycled since the item was taken: an epoch
 *     ghost), and every entry it drains was written (not 0) and is freed
 *     once -- by the drainer or by the synchronous fallback, never twice;
 *   - consumed <= count <= SIZE for every buffer in use;
 *   - at the end every appended value was freed exactly once (none lost)
 *     and every exited thread's slot was retired.
 *
 * Checks run by tests/models/run-spin.sh (three owners: see the README):
 * @spin safety -DNVAL=4
 * @spin safety -DNVAL=5 -DSIZE=3
 * @spin safety -DNSPARE=2 -DNVAL=4
 */

#ifndef NOWNERS
#define NOWNERS 2
#endif
#ifndef SIZE
#define SIZE 2            /* entries per buffer */
#endif
#ifndef NVAL
#define NVAL 3            /* entries each owner appends */
#endif
#ifndef NSPARE
#define NSPARE 1          /* preallocated spares, and max_spares */
#endif
#define NBUF (NOWNERS + NSPARE)
#define NWORK (NBUF + NOWNERS)  /* work items of one pass, at most */
#define NONE 255
#define NTOTAL (NOWNERS * NVAL)

/* buffer states (ghost, except that C knows them by where b is linked) */
#define B_SPARE  0        /* on the spare list */
#define B_CUR    1        /* some slot's cur */
#define B_QUEUED 2        /* on the full FIFO */
#define B_TAKEN  3        /* taken off the FIFO by a pass, being drained */
#define B_FREED  4        /* free()d */

byte mem[NBUF * SIZE];    /* buffer b's entry i is mem[b * SIZE + i] */
byte count[NBUF];         /* b->count: owner store_release, drainer load_acquire */
byte consumed[NBUF];      /* b->consumed. Sync: d->lock */
byte cur[NOWNERS];        /* s->cur: written under d->lock by its owner */
bool dead[NOWNERS];       /* s->dead */
bool retired[NOWNERS];    /* slot off the pool's list */
byte fifo[NBUF];          /* the full queue. Sync: d->lock */
byte fifo_len;
byte spares[NBUF];        /* the spare list (a stack). Sync: d->lock */
byte nspares;
bool dlock;               /* d->lock */
byte owners_done;

/* ghosts */
byte freed[NTOTAL + 1];   /* times each value was freed */
byte bstate[NBUF];        /* B_* */
byte bowner[NBUF];        /* for B_CUR: the slot */
byte epoch[NBUF];         /* bumped when a buffer is recycled or freed */

inline lock()
{
	atomic { !dlock -> dlock = true }
}

inline unlock()
{
	dlock = false
}

/* Frees one value, asserting it is a real entry freed for the first time. */
inline free_value(v)
{
	d_step {
		assert(v != 0 && v <= NTOTAL);  /* a written entry */
		assert(freed[v] == 0);          /* not freed before */
		freed[v]++
	}
}

/* handoff(): with the lock held, queue b (if any), take a spare for cur. */
inline handoff_locked(k, b)
{
	d_step {
		if
		:: b != NONE ->
			assert(bstate[b] == B_CUR && bowner[b] == k);
			fifo[fifo_len] = b;
			fifo_len++;
			bstate[b] = B_QUEUED
		:: else
		fi;
		if
		:: nspares > 0 ->
			nspares--;
			b = spares[nspares];
			spares[nspares] = 0;
			assert(bstate[b] == B_SPARE && count[b] == 0 && consumed[b] == 0);
			bstate[b] = B_CUR;
			bowner[b] = k
		:: else ->
			b = NONE
		fi;
		cur[k] = b
	}
}

proctype owner(byte k)
{
	byte v = k * NVAL + 1, c, b;

	do
	:: v <= (k + 1) * NVAL ->
		b = cur[k];                     /* its own: no lock needed */
		if
		:: b == NONE ->                 /* no spare last time: try again */
			lock();
			handoff_locked(k, b);
			unlock()
		:: else
		fi;
		if
		:: b == NONE ->
			free_value(v)           /* free_now() */
		:: else ->
			c = count[b];           /* its own */
			assert(c < SIZE);
#ifdef BAD_COUNT_FIRST
			count[b] = c + 1;       /* published before the entry: the bug */
			d_step {
				assert(bstate[b] == B_CUR && bowner[b] == k);
				mem[b * SIZE + c] = v
			};
#else
			d_step {
				assert(bstate[b] == B_CUR && bowner[b] == k);
				mem[b * SIZE + c] = v
			};
			count[b] = c + 1;       /* store_release */
#endif
			if
			:: c + 1 == SIZE ->     /* full: hand it off now */
				lock();
				handoff_locked(k, b);
				unlock()
			:: else
			fi
		fi;
		d_step { v++; c = 0; b = 0 }
	:: else -> break
	od;
	dead[k] = true;                         /* thread_exit(): store_release */
	owners_done++
}

/* drain_pass(): the drainer's locals are declared in drainer(). */
inline drain_pass()
{
	/* under the lock: take the full FIFO, then every cur's new part */
	lock();
	nw = 0;
	i = 0;
	do
	:: i < fifo_len ->
		d_step {
			b = fifo[i];
			assert(bstate[b] == B_QUEUED);
			bstate[b] = B_TAKEN;
			wb[nw] = b;
			wfrom[nw] = consumed[b];
			wto[nw] = count[b];     /* load_acquire */
			wrec[nw] = true;
			wepoch[nw] = epoch[b];
			nw++;
			fifo[i] = 0;
			i++;
			b = 0
		}
	:: else -> break
	od;
	fifo_len = 0;
	k = 0;
	do
	:: k < NOWNERS ->
		if
		:: !retired[k] && cur[k] != NONE ->
			d_step {
				b = cur[k];
				c = count[b];   /* load_acquire */
				assert(consumed[b] <= c && c <= SIZE);
				if
				:: c > consumed[b] ->
					wb[nw] = b;
					wfrom[nw] = consumed[b];
					wto[nw] = c;
					wrec[nw] = false;
					wepoch[nw] = epoch[b];
					nw++;
					consumed[b] = c
				:: else
				fi;
				b = 0;
				c = 0
			}
		:: else
		fi;
		k++
	:: else -> break
	od;
	unlock();

	/* unlocked: free, then recycle the handed-off buffers */
	w = 0;
	do
	:: w < nw ->
		i = wfrom[w];
		do
		:: i < wto[w] ->
			d_step {
				b = wb[w];
				assert(epoch[b] == wepoch[w]);  /* same use of b */
				e = mem[b * SIZE + i];
				b = 0
			}
			free_value(e);
			d_step { i++; e = 0 }
		:: else -> break
		od;
		if
		:: wrec[w] ->
			lock();
			d_step {                /* spare_put_locked() */
				b = wb[w];
				assert(bstate[b] == B_TAKEN);
				epoch[b]++;
				if
				:: nspares >= NSPARE ->
					bstate[b] = B_FREED
				:: else ->
					count[b] = 0;
					consumed[b] = 0;
					spares[nspares] = b;
					nspares++;
					bstate[b] = B_SPARE
				fi;
				b = 0
			}
			unlock()
		:: else
		fi;
		d_step { wb[w] = 0; wfrom[w] = 0; wto[w] = 0; wrec[w] = false; wepoch[w] = 0; w++ }
	:: else -> break
	od;

	/* retire the slots of exited threads whose cur is drained */
	lock();
	k = 0;
	do
	:: k < NOWNERS ->
		d_step {
			if
			:: !retired[k] && dead[k] &&    /* load_acquire(dead) */
			   (cur[k] == NONE || count[cur[k]] == consumed[cur[k]]) ->
				retired[k] = true;
				if              /* slot_put(): free(s->cur) */
				:: cur[k] != NONE ->
					epoch[cur[k]]++;
					bstate[cur[k]] = B_FREED
				:: else
				fi
			:: else
			fi;
			k++
		}
	:: else -> break
	od;
	unlock();
	d_step { nw = 0; w = 0; i = 0; k = 0 }
}

active proctype drainer()
{
	byte nw, w, i, k, b, c, e;
	byte wb[NWORK], wfrom[NWORK], wto[NWORK], wepoch[NWORK];
	bool wrec[NWORK];

	do
	:: owners_done < NOWNERS ->             /* a pass every drain period */
		drain_pass()
	:: owners_done == NOWNERS -> break
	od;
	drain_pass();                           /* deferred_destroy() */

	/* nothing lost, nothing freed twice, every slot retired */
	for (i : 1 .. NTOTAL) {
		assert(freed[i] == 1)
	}
	for (k : 0 .. NOWNERS - 1) {
		assert(retired[k])
	}
}

init {
	byte k;

	atomic {
		for (k : 0 .. NOWNERS - 1) {
			cur[k] = k;
			bstate[k] = B_CUR;
			bowner[k] = k
		}
		for (k : 0 .. NSPARE - 1) {
			spares[k] = NOWNERS + k;
			bstate[NOWNERS + k] = B_SPARE
		}
		nspares = NSPARE;
		for (k : 0 .. NOWNERS - 1) {
			run owner(k)
		}
	}
}
