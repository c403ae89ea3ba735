/* SPDX-License-Identifier: MIT */
/*
 * deferred_seed_swap.pml: seed 002's buffer handoff, where the *drainer*
 * swaps a full buffer for a spare -- the protocol src/deferred.c used until
 * the owner took over the handoff (deferred_handoff.pml
 * models that one). Kept because DESIGN.md section 6 and the seed describe
 * this protocol and its memory-ordering correction; it runs in seconds.
 *
 * The protocol (seed 002 with the reviewer's correction):
 *
 *   owner: c = load_acquire(&s->count); c == size: free synchronously;
 *          else s->buf[c] = entry; store_release(&s->count, c + 1)
 *   drainer: c = load_acquire(&s->count);
 *     c == size: old = s->buf; fresh = a spare; from = consumed;
 *       consumed = 0;
 *       fresh: s->buf = fresh; store_release(&s->count, 0);
 *              drain old[from, c); put old back among the spares
 *       none:  drain old[from, c) in place; store_release(&s->count, 0)
 *     c > consumed: drain buf[consumed, c); consumed = c
 *
 * The world: NOWNERS owners with a slot (count, buf, consumed) each and a
 * buffer of SIZE entries, NSPARE more buffers in the spare set shared by
 * all slots (so a buffer drained from one slot is recycled into another).
 * Owner k appends NVAL entries with distinct values (k * NVAL + 1 ..).
 * Buffers are never cleared: draining an entry that was not written again
 * shows up as a double free; 0 is memory never written.
 *
 * Memory ordering: the release/acquire pairs on count forbid the
 * reorderings that matter (entry store after count store, buf store after
 * count store, buf or entry loads before the count load), so Spin's
 * sequential consistency models the corrected code. The bad variant
 * (deferred_seed_swap_bad.pml, BAD_PUBLISH) is the seed's first version,
 * whose plain stores let count = 0 become visible before buf = fresh: the
 * two stores happen in the reversed order as separate steps.
 *
 * Properties (assertions; valid end states):
 *   - the owner never writes into a buffer the drainer has taken away
 *     (drained or recycled) and not handed back;
 *   - every drained entry was written (not 0) and is freed once, by the
 *     drainer or the synchronous fallback;
 *   - at the end every appended value was freed exactly once: none lost.
 *
 * Checks run by tests/models/run-spin.sh:
 * @spin safety
 * @spin safety -DNOWNERS=3 -DNVAL=3
 */

#ifndef NOWNERS
#define NOWNERS 2
#endif
#ifndef SIZE
#define SIZE 2            /* entries per buffer */
#endif
#ifndef NVAL
#define NVAL 4            /* entries each owner appends */
#endif
#ifndef NSPARE
#define NSPARE 1          /* buffers in the preallocated spare set */
#endif
#define NBUF (NOWNERS + NSPARE)
#define NONE 255
#define NTOTAL (NOWNERS * NVAL)

byte mem[NBUF * SIZE];    /* buffer b's entry i is mem[b * SIZE + i] */
byte count[NOWNERS];      /* s->count */
byte buf[NOWNERS];        /* s->buf */
byte consumed[NOWNERS];   /* s->consumed (drainer only) */
byte spares[NBUF];        /* the spare set: a stack, under d->lock */
byte nspares;
byte owners_done;

/* ghosts */
byte freed[NTOTAL + 1];   /* times each value was freed */
bool drainer_owns[NBUF];  /* buffer out of its slot: draining or spare */

/* Frees one value, asserting it is a real entry freed for the first time. */
inline free_value(v)
{
	d_step {
		assert(v != 0 && v <= NTOTAL);  /* a written entry */
		assert(freed[v] == 0);          /* not freed before */
		freed[v]++
	}
}

proctype owner(byte k)
{
	byte v = k * NVAL + 1, c, b;

	do
	:: v <= (k + 1) * NVAL ->
		c = count[k];                   /* load_acquire */
		if
		:: c == SIZE ->
			free_value(v)           /* full, not handed off: free_now() */
		:: else ->
			b = buf[k];             /* ordered after the acquire */
			d_step {
				assert(!drainer_owns[b]);
				mem[b * SIZE + c] = v
			}
			count[k] = c + 1        /* store_release */
		fi;
		d_step { v++; c = 0; b = 0 }
	:: else -> break
	od;
	owners_done++
}

/* Drains entries [from, to) of buffer b. */
inline drain_entries(b, from, to)
{
	i = from;
	do
	:: i < to ->
		e = mem[b * SIZE + i];
		free_value(e);
		d_step { i++; e = 0 }
	:: else -> break
	od
}

inline drain_slot(s)
{
	c = count[s];                           /* load_acquire */
	if
	:: c == SIZE ->                         /* the owner stopped writing */
		d_step {
			old = buf[s];
			drainer_owns[old] = true;
			from = consumed[s];
			consumed[s] = 0
		}
		/* spare_get(): empty, or taken by slots not modelled here */
		if
		:: nspares > 0 -> d_step { nspares--; fresh = spares[nspares]; spares[nspares] = 0 }
		:: true -> fresh = NONE
		fi;
		if
		:: fresh != NONE ->
#ifdef BAD_PUBLISH
			count[s] = 0;           /* published first: the bug */
			d_step { buf[s] = fresh; drainer_owns[fresh] = false };
#else
			d_step { buf[s] = fresh; drainer_owns[fresh] = false };
			count[s] = 0;           /* store_release: publishes buf */
#endif
			drain_entries(old, from, c);
			atomic { spares[nspares] = old; nspares++ }     /* spare_put */
		:: else ->
			drain_entries(old, from, c);
			drainer_owns[old] = false;
			count[s] = 0            /* same buffer, now empty */
		fi
	:: c < SIZE && c > consumed[s] ->
		drain_entries(buf[s], consumed[s], c);
		consumed[s] = c
	:: else
	fi;
	atomic { c = 0; old = 0; fresh = 0; from = 0 }
}

active proctype drainer()
{
	byte s, c, old, fresh, from, i, e;

	do
	:: owners_done < NOWNERS ->             /* drain_pass(), periodically */
		for (s : 0 .. NOWNERS - 1) {
			drain_slot(s)
		}
		s = 0
	:: owners_done == NOWNERS -> break
	od;
	/* deferred_destroy(): one last drain of every slot */
	for (s : 0 .. NOWNERS - 1) {
		drain_slot(s)
	}
	/* nothing lost, nothing freed twice */
	for (s : 1 .. NTOTAL) {
		assert(freed[s] == 1)
	}
}

init {
	byte k;

	atomic {
		for (k : 0 .. NOWNERS - 1) {
			buf[k] = k
		}
		for (k : 0 .. NSPARE - 1) {
			spares[k] = NOWNERS + k;
			drainer_owns[NOWNERS + k] = true
		}
		nspares = NSPARE;
		for (k : 0 .. NOWNERS - 1) {
			run owner(k)
		}
	}
}
