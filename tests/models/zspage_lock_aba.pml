/* SPDX-License-Identifier: MIT */
/*
 * zspage_lock_aba.pml: obj_lock() (src/pool.c) against a zspage that dies
 * and a page that comes back in another zspage -- the ABA that the re-check
 * of pdesc after the read lock guards against, and that zspage_lock.pml
 * (where zspages never die) cannot show.
 *
 * The world: one object; zspage A holds page P0, where the object starts;
 * zspage B holds page P2; zspage C has no page yet. A recycler does what
 * compaction and the arena can do between a reader's lookup and its lock:
 *
 *   1. compacts the object from A (source, write-trylocked) into B; A is
 *      empty: it dies and is unpublished from P0 (zspage_destroy), and P0
 *      goes back to the arena, its bytes freed;
 *   2. a new zspage C takes P0 (zspage_create publishes pdesc[P0] = C);
 *   3. compacts the object from B into C, at P0: obj is P0 again, the word
 *      the reader read;
 *   4. compacts the object from C back into B, freeing its place on P0.
 *
 * NREADERS readers (default 2; each zs_obj_read_begin ... _end) does obj_lock(): o = obj;
 * z = pdesc[o]; read-lock z; re-check obj == o and pdesc[o] == z, else
 * unlock and retry; reads the object's place; and obj_unlock(), which
 * unlocks the zspage that pdesc names for obj, as the C code does.
 *
 * Checked (safety): the reader's read lock is on the zspage that holds the
 * object, the object is whole and not freed while it reads, and the lock
 * words stay consistent (a read unlock of a zspage the reader never locked
 * drives its count to -1, which reads as write-locked). With -DNO_PDESC_RECHECK
 * (zspage_lock_aba_bad.pml) the reader trusts obj alone, and Spin must
 * find the violation.
 *
 * @spin safety
 */

#ifndef NREADERS
#define NREADERS 2
#endif
#define WRLOCKED (-1)

#define ZA 0
#define ZB 1
#define ZC 2
#define NOZ 3
#define P0 0
#define P2 1
#define NPFN 2

short lock[3];          /* zspage lock words */
byte obj = P0;          /* handle word: pfn of the object's place */
byte pdesc[NPFN];       /* pfn -> zspage */
byte data[NPFN];        /* the object's place on each pfn: 1 = the object, 0 = free */
bool class_locked;

byte holder = ZA;       /* ghost: the zspage the object is in */
byte rd_in[3];          /* ghost: readers inside each zspage's read lock */
bool wr_in[3];          /* ghost: a mover inside each zspage's write lock */
byte readers_done;

inline read_lock(z)
{
	old = lock[z];
	do
	:: old == WRLOCKED -> old = lock[z]
	:: old != WRLOCKED ->
		atomic {
			if
			:: lock[z] == old -> lock[z] = old + 1; rd_in[z]++; ok = true
			:: lock[z] != old -> old = lock[z]; ok = false
			fi
		}
		if
		:: ok -> break
		:: else
		fi
	od
}

inline read_unlock(z)
{
	d_step { lock[z]--; rd_in[z]-- }
}

inline try_write_lock(z)
{
	atomic {
		if
		:: lock[z] == 0 -> lock[z] = WRLOCKED; wr_in[z] = true; ok = true
		:: else -> ok = false
		fi
	}
}

inline write_unlock(z)
{
	d_step { wr_in[z] = false; lock[z] = 0 }
}

/* Compacts the object from zspage src (page sp) to zspage dst (page dp),
 * retrying while a reader holds src (compaction skips it; a later pass
 * comes back). */
inline compact_move(src, sp, dst, dp)
{
	do
	:: atomic { !class_locked -> class_locked = true };
		try_write_lock(src);
		if
		:: ok ->
			data[dp] = data[sp];    /* zspage_obj_copy */
			d_step { obj = dp; holder = dst } /* handle_move_locked (release);
			                                     the ghost moves with it */
			data[sp] = 0;           /* zspage_obj_free_locked */
			write_unlock(src);
			class_locked = false;
			break
		:: else -> class_locked = false
		fi
	od
}

proctype recycler()
{
	bool ok;

	compact_move(ZA, P0, ZB, P2);   /* 1: object into B; A now empty */
	pdesc[P0] = NOZ;                /* zspage_destroy: unpublish, page freed */
	pdesc[P0] = ZC;                 /* 2: a new zspage C takes P0 */
	compact_move(ZB, P2, ZC, P0);   /* 3: object into C at P0: obj == P0 again */
	compact_move(ZC, P0, ZB, P2)    /* 4: and out again, its place on P0 freed */
}

proctype reader()
{
	byte o, z;
	short old;
	bool ok;

	do /* obj_lock() */
	:: true ->
		o = obj;                        /* handle_lookup */
		z = pdesc[o];                   /* pdesc_zspage under RCU */
		if
		:: z == NOZ -> goto retry
		:: else
		fi;
		read_lock(z);
		if
#ifdef NO_PDESC_RECHECK
		:: obj == o -> break
#else
		:: obj == o && pdesc[o] == z -> break
#endif
		:: else -> read_unlock(z)
		fi;
retry:		skip
	od;
	/* zs_obj_read_begin: the zspage read-locked is the one that holds the
	 * object (so no mover can take it away), and its place is whole */
	assert(holder == z && obj == o);
	assert(data[o] == 1);
	assert(data[o] == 1);           /* read again: nothing moved it meanwhile */
	/* zs_obj_read_end -> obj_unlock(): the zspage pdesc names for obj */
	read_unlock(pdesc[obj]);
	readers_done++
}

active proctype monitor()
{
end:	atomic {
		(lock[ZA] != (wr_in[ZA] -> WRLOCKED : rd_in[ZA])) ||
		(lock[ZB] != (wr_in[ZB] -> WRLOCKED : rd_in[ZB])) ||
		(lock[ZC] != (wr_in[ZC] -> WRLOCKED : rd_in[ZC])) ||
		lock[ZA] < WRLOCKED || lock[ZB] < WRLOCKED || lock[ZC] < WRLOCKED ->
		assert(false)
	}
}

init {
	byte i;

	atomic {
		pdesc[P0] = ZA;
		pdesc[P2] = ZB;
		data[P0] = 1;
		for (i : 1 .. NREADERS) {
			run reader()
		}
		run recycler()
	}
	_nr_pr == 2;
	assert(readers_done == NREADERS && lock[ZA] == 0 && lock[ZB] == 0 && lock[ZC] == 0);
	assert(obj == P2 && data[P2] == 1 && !class_locked)
}
