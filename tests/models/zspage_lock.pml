/* SPDX-License-Identifier: MIT */
/*
 * zspage_lock.pml: the zspage lock (seed 004) together with the lookup
 * protocol that object readers use against compaction and migration.
 *
 * C code modelled (src/internal.h, src/zspage.c, src/pool.c,
 * src/compact.c, src/migrate.c):
 *
 *   zspage_read_lock()       load; while not -1: CAS old -> old+1, a failed
 *   zspage_read_lock_slow()  CAS returning the current value; on -1 spin
 *                            (back off, yield) and reload
 *   zspage_read_unlock()     atomic decrement
 *   zspage_try_write_lock()  strong CAS 0 -> -1; a mover backs off on failure
 *   zspage_write_unlock()    store 0
 *   obj_lock()               obj = handle word; z = pdesc[pfn(obj)] (retry if
 *                            none); read-lock z; re-read the handle word
 *                            and pdesc[pfn(obj)];
 *                            changed: unlock and retry
 *   zs_obj_read_begin/_end   read the object's bytes under the read lock;
 *   + obj_unlock()           unlock the zspage found again from obj, pdesc
 *   zs_obj_write             write them under the same (shared) read lock
 *   compact_batch() +        class lock; try-write-lock the source zspage;
 *   move_objects_locked()    copy the object into the destination zspage
 *                            (no lock needed there: a free place); publish
 *                            the new obj; free the old place (the free list
 *                            link overwrites the object's first word);
 *                            unlock; class unlock
 *   migrate_page()           pdesc lookup; class lock; re-check pdesc;
 *                            try-write-lock the zspage; copy the page to a
 *                            new pfn; pdesc[new] = z; z->pfn[] = new; rewrite
 *                            obj; pdesc[old] = none; unlock; class unlock;
 *                            the old page goes back to the OS (zeroed)
 *
 * The world: one object, of two words, in one of two zspages. Zspage A has
 * one page, at pfn P0 or (after migration) P1; zspage B has one page, at
 * P2. obj names the pfn the object lives on (the pfn field of the handle
 * word; class and index never change here). data[] holds both words of the
 * object place on each pfn; 0 is garbage (free-list link, zeroed page,
 * never written). The object's content is a version number: 'cur' (a ghost)
 * is the version the last completed zs_obj_write wrote.
 *
 * Processes: NREADERS readers (obj_lock + read + unlock, NREADS times), one
 * updater (obj_lock + write of version cur+1 + unlock; the caller keeps it
 * from racing the readers of the same handle, as the API's concurrency
 * table asks: a client-side rwlock), one compactor and one migrator
 * (MOVES attempts each; a failed trylock is a skip, as in the C code).
 *
 * Properties:
 *   safety (assertions, checked in every state by mutex_monitor):
 *     - a zspage is never write-locked while a reader holds it, and the
 *       lock word always equals the holders (-1 for the writer);
 *     - a reader that passed obj_lock() reads a place that still belongs
 *       to its zspage and is where obj points, and sees both words equal to
 *       the current version (no half-moved, stale or freed object);
 *     - an update is never lost: after a move the new place holds it;
 *     - valid end states: no deadlock, every lock released at the end.
 *   liveness (LTL, weak fairness): every client finishes: readers and the
 *   updater get through obj_lock() although movers keep moving the object
 *   (the movers are bounded, so this is "eventually", not "wait-free").
 *
 * Checks run by tests/models/run-spin.sh (CI sizes; the README lists
 * deeper ones):
 * @spin safety
 * @spin ltl clients_finish -DMOVES=1
 */

#ifndef NREADERS
#define NREADERS 2
#endif
#ifndef NREADS
#define NREADS 1          /* accesses per reader */
#endif
#ifndef MOVES
#define MOVES 2           /* attempts per mover */
#endif
#ifndef UPDATES
#define UPDATES 1         /* writes by the updater */
#endif
#define NCLIENTS (NREADERS + 1)

#define WRLOCKED (-1)

/* zspages */
#define ZA 0
#define ZB 1
#define NOZ 2             /* pdesc of a page in no zspage */
/* page frame numbers */
#define P0 0
#define P1 1
#define P2 2
#define NPFN 3

short lock[2];            /* zspage lock words: reader count or WRLOCKED */
byte obj = P0;            /* handle word: pfn of the object's place */
byte pdesc[NPFN];         /* pfn -> zspage (RCU-published) */
byte apfn = P0;           /* zspage A's pfn[0]; written under class + write lock */
byte data[2 * NPFN];      /* two words of the object place on each pfn */
bool class_locked;        /* the class lock (a mutex) */

/* ghosts */
byte cur = 1;             /* version of the last completed write */
byte rd_in[2];            /* readers inside each zspage's read lock */
bool wr_in[2];            /* a mover inside each zspage's write lock */
byte finished;            /* clients done */
byte crd;                 /* client-side rwlock: readers of the handle ... */
bool cwr;                 /* ... and the updater */

/* zspage_read_lock(z): on return the caller holds a read lock on z. */
inline read_lock(z)
{
	old = lock[z];                          /* load_relaxed */
	do
	:: old == WRLOCKED ->
		old = lock[z]                   /* slow path: back off, reload */
	:: old != WRLOCKED ->
		/* cas_weak_acquire(old -> old+1). A weak CAS may also fail
		 * spuriously, leaving old as it was: a stutter step that the
		 * interleavings already cover, so it is not modelled (and an
		 * endless run of them would be a fake livelock). */
		atomic {
			if
			:: lock[z] == old ->
				lock[z] = old + 1;
				rd_in[z]++;
				ok = true
			:: lock[z] != old ->    /* failed: old = the current value */
				old = lock[z];
				ok = false
			fi
		}
		if
		:: ok -> break
		:: else                         /* retry at once */
		fi
	od
}

/* zspage_read_unlock(z): fetch_sub_release(lock, 1). */
inline read_unlock(z)
{
	d_step { lock[z]--; rd_in[z]-- }
}

/* zspage_try_write_lock(z): cas_strong_acquire(0 -> WRLOCKED). */
inline try_write_lock(z)
{
	atomic {
		if
		:: lock[z] == 0 -> lock[z] = WRLOCKED; wr_in[z] = true; ok = true
		:: else -> ok = false
		fi
	}
}

/* zspage_write_unlock(z): store_release(lock, 0). */
inline write_unlock(z)
{
	d_step { wr_in[z] = false; lock[z] = 0 }
}

/*
 * obj_lock(): leaves o = the object's pfn and z = its zspage, z read-locked
 * and obj == o. Every step reads shared state once.
 */
inline obj_lock()
{
	do
	:: true ->
		o = obj;                        /* handle_lookup: load_acquire */
		z = pdesc[o];                   /* pdesc_zspage under RCU */
		if
		:: z == NOZ -> goto retry       /* page being migrated away */
		:: else
		fi;
		read_lock(z);
		if
		:: obj == o && pdesc[o] == z -> break /* word == w, pdesc still z */
		:: else -> read_unlock(z)       /* moved meanwhile */
		fi;
retry:		skip
	od
}

proctype reader()
{
	byte o, z, w0, w1, n;
	short old;
	bool ok;

	do
	:: n < NREADS ->
		atomic { !cwr -> crd++ }        /* the caller's own exclusion */
		obj_lock();
		/* the place still belongs to z, and the object is there */
		assert(pdesc[o] == z && obj == o && lock[z] > 0);
		w0 = data[2 * o];
		w1 = data[2 * o + 1];
		assert(w0 == cur && w1 == cur); /* whole, current, not freed */
		/* zs_obj_read_end(): obj_unlock() finds the zspage again from
		 * the handle word and pdesc: still z */
		assert(obj == o && pdesc[obj] == z);
		read_unlock(z);
		d_step { crd--; n++; o = 0; z = 0; w0 = 0; w1 = 0; old = 0; ok = false }
	:: else -> break
	od;
	finished++
}

/* zs_obj_write of the next version, once or twice. */
proctype updater()
{
	byte o, z, n;
	short old;
	bool ok;

	do
	:: n < UPDATES ->
		atomic { !cwr && crd == 0 -> cwr = true }
		obj_lock();
		assert(pdesc[o] == z && obj == o && lock[z] > 0);
		data[2 * o] = cur + 1;
		data[2 * o + 1] = cur + 1;
		cur++;                          /* ghost: the write completed */
		assert(obj == o && pdesc[obj] == z);    /* obj_unlock() */
		read_unlock(z);
		d_step { cwr = false; n++; o = 0; z = 0; old = 0; ok = false }
	:: else -> break
	od;
	finished++
}

/* zs_compact(): moves the object to the other zspage. */
proctype compactor()
{
	byte n, src, dst, zs;
	bool ok;

	do
	:: n < MOVES ->
		atomic {
			!class_locked -> class_locked = true;
			src = obj;              /* stable under the class lock */
			if
			:: src == P2 -> zs = ZB; dst = apfn
			:: else -> zs = ZA; dst = P2
			fi
		}
		try_write_lock(zs);
		if
		:: ok ->
			data[2 * dst] = data[2 * src];          /* zspage_obj_copy */
			data[2 * dst + 1] = data[2 * src + 1];
			obj = dst;                              /* handle_move_locked */
			data[2 * src] = 0;                      /* zspage_obj_free_locked */
			write_unlock(zs)
		:: else                         /* a reader holds it: skip */
		fi;
		d_step { class_locked = false; n++; src = 0; dst = 0; zs = 0; ok = false }
	:: else -> break
	od
}

/* zs_defrag() -> migrate_page(): moves zspage A's page to the other pfn. */
proctype migrator()
{
	byte n, pfn, npfn, z;
	bool ok;

	do
	:: n < MOVES ->
		atomic {
			ok = false;
			pfn = apfn;             /* the racy peek at a page in use */
			z = pdesc[pfn]          /* under RCU */
		}
		if
		:: z == NOZ -> goto next        /* moved or freed: -EAGAIN */
		:: else
		fi;
		atomic { !class_locked -> class_locked = true }
		if
		:: pdesc[pfn] != z -> goto unlock       /* moved meanwhile */
		:: else
		fi;
		try_write_lock(z);
		if
		:: ok ->
			npfn = (pfn == P0 -> P1 : P0);  /* arena_alloc_page_below */
			data[2 * npfn] = data[2 * pfn]; /* memcpy of the page */
			data[2 * npfn + 1] = data[2 * pfn + 1];
			pdesc[npfn] = z;                /* pdesc_set(new, z) */
			apfn = npfn;                    /* z->pfn[i] = new */
			if                              /* rewrite_page_objs_locked */
			:: obj == pfn -> obj = npfn
			:: else
			fi;
			pdesc[pfn] = NOZ;               /* pdesc_set(old, NULL) */
			write_unlock(z)
		:: else                         /* readers hold it: skip */
		fi;
unlock:		class_locked = false;
		if
		:: ok ->                        /* arena_return_pages: zeroed */
			d_step { data[2 * pfn] = 0; data[2 * pfn + 1] = 0 }
		:: else
		fi;
next:		atomic { n++; pfn = 0; npfn = 0; z = 0; ok = false }
	:: else -> break
	od
}

/* Checks the lock invariants in every reachable state. */
active proctype mutex_monitor()
{
end:	atomic {
		(wr_in[ZA] && rd_in[ZA] > 0) || (wr_in[ZB] && rd_in[ZB] > 0) ||
		(lock[ZA] != (wr_in[ZA] -> WRLOCKED : rd_in[ZA])) ||
		(lock[ZB] != (wr_in[ZB] -> WRLOCKED : rd_in[ZB])) ->
		assert(false)
	}
}

init {
	byte i;

	atomic {
		pdesc[P0] = ZA;
		pdesc[P1] = NOZ;
		pdesc[P2] = ZB;
		data[2 * P0] = 1;
		data[2 * P0 + 1] = 1;
		for (i : 1 .. NREADERS) {
			run reader()
		}
		run updater();
		run compactor();
		run migrator()
	}
	/* everyone done (mutex_monitor never ends): all locks free, the
	 * object whole and current where obj points */
	_nr_pr == 2;
	assert(lock[ZA] == 0 && lock[ZB] == 0 && !class_locked);
	assert(finished == NCLIENTS && pdesc[obj] != NOZ);
	assert(data[2 * obj] == cur && data[2 * obj + 1] == cur && cur == 1 + UPDATES)
}

/* Every client gets through, whatever the movers do (weak fairness). */
ltl clients_finish { <> (finished == NCLIENTS) }
