/* SPDX-License-Identifier: MIT */
/*
 * deferred_handoff.pml: the deferred-free buffer handoff between the owner
 * threads and the drain thread (seed 002 with its memory-ordering
 * correction), as implemented in src/deferred.c.
 *
 * C code modelled:
 *
 *   queue()          owner: c = load_acquire(count); c == size: free_now()
 *                    (synchronous free); else buf[c] = entry (plain store
 *                    through the plain load of s->buf), store_release(count,
 *                    c + 1)
 *   drain_slot()     drainer: c = load_acquire(count);
 *                      c == size: old = s->buf; fresh = spare_get();
 *                        from = consumed; consumed = 0;
 *                        fresh: s->buf = fresh; store_release(count, 0);
 *                               drain old[from, c); spare_put(old)
 *                        none:  drain old[from, c) in place;
 *                               store_release(count, 0)
 *                      c > consumed: drain buf[consumed, c); consumed = c
 *   spare_get/put()  the pool's preallocated set, under d->lock (atomic
 *                    here); shared by every slot, so a buffer drained from
 *                    one slot is recycled into another
 *   deferred_destroy the final drain_slot() once the owners are done
 *
 * The world: NOWNERS owner threads, each with a slot (count, buf,
 * consumed) and a buffer of SIZE entries; NSPARE more buffers in the spare
 * set. Owner k appends NVAL entries with distinct values (k * NVAL + 1 ..),
 * each one handle to free. Buffers are never cleared, as in C: a recycled
 * buffer still holds the values it had, so draining an entry that was not
 * rewritten shows up as a double free. 0 is memory never written.
 *
 * Memory ordering. Spin interleaves whole statements: it is sequentially
 * consistent. In C, the release/acquire pairs on count forbid exactly the
 * reorderings that would matter here -- the entry store after the count
 * store (owner), the entry loads before the count load (drainer), the buf
 * store after the count store (drainer), the buf load before the count
 * load (owner) -- so sequential consistency is a faithful model of the
 * correct code. The bad variant (deferred_handoff_bad.pml, BAD_PUBLISH)
 * models what the seed's first version allowed with plain stores: the
 * drainer's count = 0 becomes visible before buf = fresh, i.e. the two
 * stores happen in the reversed order as separate steps.
 *
 * Properties (assertions; valid end states):
 *   - the owner never writes into a buffer the drainer has taken away
 *     (drained or recycled) and not handed back;
 *   - every drained entry was written (not 0) and is freed once: no value
 *     is freed twice, by the drainer or by the synchronous fallback;
 *   - at the end every appended value was freed exactly once: none lost.
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
