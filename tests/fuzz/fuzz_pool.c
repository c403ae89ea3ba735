/* SPDX-License-Identifier: MIT */
/*
 * fuzz_pool.c: a shadow-model fuzzer of the public allocator API
 * (libFuzzer). Each input is a pool configuration, then a sequence of
 * operations, each checked against a shadow copy of every live object.
 *
 * Pools are reused across inputs: creating and destroying one (and its
 * drain and arena threads) per input held the fuzzer to ~55 inputs/s. The
 * process keeps one pool per configuration (byte 0 selects one of 128),
 * created when an input first selects it. At the end of each input every
 * live object is verified and freed and queued deferred frees are flushed;
 * then no object may be left. Bit 7 of byte 0 chooses what else: set, the
 * pool is trimmed and must then be empty -- no page, no spare zspage, no
 * resident page, no committed chunk, every class at zero -- so that the
 * next input starts from the state a new pool has; clear, the pool keeps
 * its spare zspages and the arena's cache of resident pages for the next
 * input, as a busy pool does between bursts. A trim per input made the
 * next input fault every page in again (the arena's worker prefaults the
 * cache, the trim gives it back): most of the fuzzer's system time, and
 * a zspage build in each input's first allocation of every class. What a
 * reused pool does not forget (handle
 * generations, the high-water mark, cumulative counters, the fuzzer
 * thread's deferred-free buffer, and those pages) is what a long-lived
 * pool has too; counters are checked as differences from the input's
 * start.
 *
 * The pools have no decay (config_decode says why).
 *
 * Environment: FUZZ_POOL_FRESH=1 creates and destroys a pool per input,
 * as before, to tell whether a failure needs an earlier input's leftovers
 * (replay a crash with -runs=N to run it N times on one pool);
 * FUZZ_POOL_TRACE=1 prints each operation; FUZZ_POOL_PROFILE=1 prints the
 * time spent per operation at exit. The cached pools are destroyed at exit,
 * before LeakSanitizer's exit check.
 *
 * Input format (bytes past the end read as 0):
 *
 *   byte 0   the pool configuration, one of 128 (bits 0-6), and the end of
 *            the input (bit 7: trim, and check that the pool is empty;
 *            otherwise it keeps its spare and cached pages):
 *            chain size - 1 (bits 0-3), ZS_POOL_RETURN_ERRORS (bit 4),
 *            ZS_POOL_NO_SPARE (bit 5), "tight" (bit 6): a page limit of
 *            16..1036 pages and small deferred-free buffers (1..7 entries
 *            or the default; no, 1, 2 or the default spares), both
 *            derived from bits 0-5 (config_decode), so that every limit
 *            and buffer setting meets several chain sizes and flags
 *   then     operations: an opcode byte (modulo NR_OPS) and its arguments
 *
 * The configurations are few so that all of them stay cached: a pool
 * costs ~15 ms to create and ~18 ms to destroy (ASan; the destroy waits
 * for an RCU barrier), more than an input's operations.
 *
 * Checked: zs_malloc's and zs_malloc_write's errors (EINVAL, E2BIG, ENOMEM
 * only under a page limit), that every handle is new, that writes of up to
 * the object's capacity succeed and one byte more fails with -EINVAL (the
 * capacity from the public class statistics), that reads return the
 * shadow's bytes -- those zs_malloc_write filled the object with, too --
 * after writes, compaction, migration (zs_defrag), trimming and deferred
 * frees of other objects, and while compaction runs under a held read --
 * and the statistics: objs_used equals the live count once deferred frees
 * are flushed, zs_get_total_pages() is non-zero while objects live and zero
 * after a flush and zs_pool_trim() when none do, the deferred counters add
 * up, the class table sums to the pool figures, and the text and JSON
 * dumps behave like snprintf.
 *
 * With ZS_POOL_RETURN_ERRORS the input may also use handles that are not
 * live -- freed ones (double free), stale ones whose slot was reused, forged
 * values, bit flips of live handles, and 0 -- for zs_free,
 * zs_free_deferred, zs_obj_read_begin/_end and zs_obj_write: each must be
 * rejected (NULL with errno EBADF, -EBADF), counted once in
 * invalid_handles, and change nothing else (every live object is verified
 * at the end of the input).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zsmalloc.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LIVE    1024 /* shadowed live objects: enough for two arena chunks */
#define MAX_DEAD    64  /* remembered freed handles (a ring) */
#define KNOWN_SLOTS 8192 /* the live + pending handle set: 4x their most */
#define MAX_OPS     2048
#define HDR         8   /* the object header zsmalloc adds to a size */
#define NR_INDICES  256
#define NR_CONFIGS  128 /* byte 0 of an input selects one */
#define POOL_CACHE  NR_CONFIGS  /* pools kept between inputs, one per configuration */

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_pool: check failed: %s (line %d, op %u)\n", #cond,   \
				__LINE__, st.op_nr);                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Operations; tests/fuzz/gen-corpus.py uses the same numbers. */
enum op {
	OP_MALLOC = 0,       /* u16 size (mod 4201: 0 and > 4096 are invalid) */
	OP_MALLOC_SMALL,     /* u8 size - 1 */
	OP_MALLOC_BURST,     /* u8 count - 1 (mod 32), u16 size - 1 (mod 4096); each written */
	OP_WRITE,            /* u8 object, u16 length (mod size + 1) */
	OP_WRITE_CAP,        /* u8 object: capacity bytes succeed, capacity + 1 fail */
	OP_READ,             /* u8 object, u16 length (mod capacity + 1) */
	OP_READ_TOO_LONG,    /* u8 object, u8 excess - 1 (mod 16) */
	OP_FREE,             /* u8 object */
	OP_FREE_DEFERRED,    /* u8 object */
	OP_FREE_MANY,        /* u8 stride (mod 4, + 2), u8 deferred mask */
	OP_FLUSH,
	OP_COMPACT,
	OP_DEFRAG,
	OP_TRIM,
	OP_STATS,            /* u8: class sums (bit 1); a dump when bits 1-3 are 0: JSON (bit 0), small buffer size (bits 4-7) */
	OP_FLUSH_TRIM_CHECK,
	OP_READ_HOLD,        /* u8 object, u8 what (compact, defrag, trim, free another) */
	OP_READ_TWO,         /* u8 object, u8 object */
	OP_ZERO,             /* zs_free(0), zs_free_deferred(0): ignored */
	OP_BAD_FREE,         /* bad handle (see pick_bad) */
	OP_BAD_READ,         /* bad handle or 0, u16 length */
	OP_BAD_WRITE,        /* bad handle or 0, u16 length */
	OP_BAD_READ_END,     /* bad handle or 0 */
	OP_BAD_DEFERRED,     /* bad handle */
	OP_MALLOC_MANY,      /* u8 (count / 4 - 1) mod 64, u16 size - 1 (mod 4096); each written */
	OP_MALLOC_WRITE,     /* u16 size (as OP_MALLOC), through zs_malloc_write */
	NR_OPS
};

struct obj {
	unsigned long h;
	size_t size;     /* as requested */
	size_t cap;      /* what the class holds */
	uint32_t version; /* writes so far */
	size_t valid;    /* bytes [0, valid) are known: data[] */
	unsigned char data[ZS_MAX_ALLOC_SIZE];
};

/* A pool kept between inputs; empty whenever no input runs. */
struct cached_pool {
	struct zs_pool *pool; /* NULL: unused entry */
	struct zs_pool_config cfg;
	unsigned long last_used; /* input number, for eviction */
	size_t cap_of_index[NR_INDICES]; /* capacity per class index; 0: unknown */
};

struct state {
	struct cached_pool *entry;
	struct zs_pool *pool;
	struct zs_pool_config cfg;
	bool return_errors;
	bool trim_at_end; /* byte 0, bit 7: the reset trims, and checks the pool empty */
	const size_t *cap_of_index; /* the cached pool's table */
	/* the pool's cumulative counters when the input started */
	unsigned long invalid0, deferred0;
	unsigned nlive;
	unsigned long pending[MAX_LIVE]; /* deferred frees not yet flushed */
	unsigned npending;
	unsigned long dead[MAX_DEAD];
	unsigned ndead, dead_next;
	unsigned long invalid;   /* expected invalid_handles */
	unsigned long deferred;  /* zs_free_deferred calls with a non-zero handle */
	unsigned op_nr;
	struct obj live[MAX_LIVE]; /* last: not cleared per input */
};

static struct state st;
static struct cached_pool pools[POOL_CACHE];
static unsigned long nr_inputs, nr_created;
static double ms_created, ms_destroyed; /* time in zs_create_pool_ex / zs_destroy_pool */
static int trace = -1; /* FUZZ_POOL_TRACE=1: print each operation */
static int fresh;      /* FUZZ_POOL_FRESH=1: a new pool per input */
static int profile;    /* FUZZ_POOL_PROFILE=1: time per operation, at exit */
static double op_ms[NR_OPS + 1];        /* + the end-of-input reset */
static unsigned long op_count[NR_OPS + 1];

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static const char *const op_names[NR_OPS] = {
	"malloc", "malloc_small", "malloc_burst", "write", "write_cap", "read",
	"read_too_long", "free", "free_deferred", "free_many", "flush", "compact",
	"defrag", "trim", "stats", "flush_trim_check", "read_hold", "read_two",
	"zero", "bad_free", "bad_read", "bad_write", "bad_read_end", "bad_deferred",
	"malloc_many", "malloc_write",
};
static unsigned char scratch[ZS_MAX_ALLOC_SIZE + 64];
static unsigned char scratch2[ZS_MAX_ALLOC_SIZE + 64];
static unsigned char local[ZS_MAX_ALLOC_SIZE + 64];
static char dump[64 * 1024];
static char dump_small[256];

/* The bytes version 'version' of handle h writes, 'len' of them. */
static void pattern(unsigned char *buf, size_t len, unsigned long h, uint32_t version)
{
	uint64_t s = h ^ ((uint64_t)version << 40) ^ ((uint64_t)len << 20), v;
	size_t i;

	/* whole words with a constant-size copy: a variable one per word was
	 * a call into ASan's memcpy each time */
	for (i = 0; i + 8 <= len; i += 8) {
		v = mix(&s);
		memcpy(buf + i, &v, 8);
	}
	if (i < len) {
		v = mix(&s);
		memcpy(buf + i, &v, len - i);
	}
}

/* ------------------------------------------------------------------ */
/* Shadow bookkeeping                                                  */

/*
 * The handles that are live or pending (deferred, not yet flushed): an
 * open-addressing set, linear probing, deletion by backward shift. A
 * linear scan of both arrays per new handle made a burst of mallocs
 * quadratic.
 */
static unsigned long known[KNOWN_SLOTS]; /* 0: empty (no handle is 0) */
static unsigned nknown;

static unsigned known_home(unsigned long h)
{
	return (unsigned)(((h >> 1) * 0x9e3779b97f4a7c15ull) >> 40) & (KNOWN_SLOTS - 1);
}

static bool is_known(unsigned long h)
{
	for (unsigned i = known_home(h); known[i]; i = (i + 1) & (KNOWN_SLOTS - 1))
		if (known[i] == h)
			return true;
	return false;
}

static void known_add(unsigned long h)
{
	unsigned i = known_home(h);

	while (known[i])
		i = (i + 1) & (KNOWN_SLOTS - 1);
	known[i] = h;
	nknown++;
}

static void known_remove(unsigned long h)
{
	unsigned i = known_home(h), j;

	while (known[i] != h) {
		CHECK(known[i] != 0);
		i = (i + 1) & (KNOWN_SLOTS - 1);
	}
	/* shift back each later entry of the run that may move into the hole */
	for (j = (i + 1) & (KNOWN_SLOTS - 1); known[j]; j = (j + 1) & (KNOWN_SLOTS - 1)) {
		unsigned home = known_home(known[j]);

		if (((j - home) & (KNOWN_SLOTS - 1)) >= ((j - i) & (KNOWN_SLOTS - 1))) {
			known[i] = known[j];
			i = j;
		}
	}
	known[i] = 0;
	nknown--;
}

static void remember_dead(unsigned long h)
{
	st.dead[st.dead_next] = h;
	st.dead_next = (st.dead_next + 1) % MAX_DEAD;
	if (st.ndead < MAX_DEAD)
		st.ndead++;
}

/* Removes live object i (swapping the last one in). */
static unsigned long forget_live(unsigned i)
{
	unsigned long h = st.live[i].h;

	st.nlive--;
	if (i != st.nlive)
		memcpy(&st.live[i], &st.live[st.nlive], sizeof(st.live[i]));
	return h;
}

static size_t capacity(size_t size)
{
	unsigned idx = zs_lookup_class_index(st.pool, (unsigned)(size + HDR));

	CHECK(idx < NR_INDICES && st.cap_of_index[idx] >= size);
	return st.cap_of_index[idx];
}

static void verify(const struct obj *o)
{
	unsigned char *p;

	errno = 0;
	p = zs_obj_read_begin(st.pool, o->h, o->valid, local);
	CHECK(p != NULL);
	CHECK(memcmp(p, o->data, o->valid) == 0);
	zs_obj_read_end(st.pool, o->h, o->valid, p);
}

static void verify_all(void)
{
	for (unsigned i = 0; i < st.nlive; i++)
		verify(&st.live[i]);
}

static void flush(void)
{
	zs_free_deferred_flush(st.pool);
	for (unsigned i = 0; i < st.npending; i++) {
		known_remove(st.pending[i]);
		remember_dead(st.pending[i]);
	}
	st.npending = 0;
}

/* The class table sums to the pool's figures (exact: nothing pending). */
static void check_class_sums(const struct zs_pool_stats *s)
{
	unsigned long used = 0, allocated = 0, zspages_pages = 0;
	unsigned n = zs_class_count(st.pool);
	struct zs_class_stats cs;

	for (unsigned i = 0; i < n; i++) {
		CHECK(zs_class_stats(st.pool, i, &cs) == 0);
		CHECK(cs.obj_used <= cs.obj_allocated);
		used += cs.obj_used;
		allocated += cs.obj_allocated;
		zspages_pages += cs.pages_used;
	}
	CHECK(zs_class_stats(st.pool, n, &cs) == -ENOENT);
	CHECK(used == s->objs_used && allocated == s->objs_allocated);
	CHECK(zspages_pages == s->pages_allocated);
}

/*
 * The statistics. Exact (objs_used, the deferred counters, the class
 * sums) only with no deferred free pending: the drain thread may be
 * freeing meanwhile. The class table is summed when classes is set (a
 * call per class: the costly part).
 */
static void check_stats(bool classes)
{
	struct zs_pool_stats s;
	unsigned long pages = zs_get_total_pages(st.pool);

	zs_pool_stats(st.pool, &s);
	CHECK(s.invalid_handles - st.invalid0 == st.invalid);
	if (st.nlive > 0) /* pending ones may be freed already */
		CHECK(pages > 0 && s.pages_allocated > 0);
	CHECK(s.pages_max >= s.pages_allocated);
	CHECK(s.objs_allocated >= s.objs_used);
	CHECK(s.pages_spare <= s.pages_allocated);
	if (st.npending) {
		CHECK(s.objs_used >= st.nlive && s.objs_used <= st.nlive + st.npending);
		return;
	}
	CHECK(s.objs_used == st.nlive);
	CHECK(s.pages_allocated == pages);
	CHECK(s.deferred_queued + s.deferred_sync - st.deferred0 == st.deferred);
	CHECK(s.deferred_drained == s.deferred_queued);
	if (classes)
		check_class_sums(&s);
}

/* Flush and trim: exact figures, and no pages without objects. */
static void check_settled(void)
{
	flush();
	zs_pool_trim(st.pool);
	check_stats(true);
	if (st.nlive == 0)
		CHECK(zs_get_total_pages(st.pool) == 0);
	else
		CHECK(zs_get_total_pages(st.pool) > 0);
}

/*
 * snprintf's contract, for one format (a dump costs ~1 ms under ASan: the
 * input picks which). The text table is the same twice while no deferred
 * free is pending; the JSON also carries pages_resident, which the arena's
 * releaser thread changes at any time.
 */
static void check_dump(enum zs_stats_format fmt, unsigned small)
{
	int len = zs_pool_stats_dump(st.pool, fmt, dump, sizeof(dump));
	int len0 = zs_pool_stats_dump(st.pool, fmt, NULL, 0);
	bool same = fmt == ZS_STATS_TEXT && !st.npending;

	CHECK(len > 0 && (size_t)len < sizeof(dump));
	CHECK((size_t)len == strlen(dump));
	CHECK(len0 > 0 && (!same || len0 == len));
	if (small == 0)
		return;
	int len2 = zs_pool_stats_dump(st.pool, fmt, dump_small, small);
	CHECK(len2 > 0);
	CHECK(strlen(dump_small) == ((unsigned)len2 < small ? (unsigned)len2 : small - 1));
	if (same)
		CHECK(len2 == len && memcmp(dump_small, dump, small - 1) == 0);
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */

/* How do_malloc() fills the new object. */
enum fill { FILL_NONE, FILL_WRITE /* zs_obj_write after */, FILL_AT_ALLOC /* zs_malloc_write */ };

static void do_malloc(size_t size, enum fill fill)
{
	struct zs_pool_stats s1;
	unsigned long h;

	if (size >= 1 && size <= ZS_MAX_ALLOC_SIZE && st.nlive == MAX_LIVE)
		return;
	errno = 0;
	if (fill == FILL_AT_ALLOC) {
		/* keyed on the op number: the handle does not exist yet */
		pattern(scratch, size <= ZS_MAX_ALLOC_SIZE ? size : 0, st.op_nr, 1);
		h = zs_malloc_write(st.pool, scratch, size);
	} else {
		h = zs_malloc(st.pool, size);
	}
	if (size == 0) {
		CHECK(h == 0 && errno == EINVAL);
		return;
	}
	if (size > ZS_MAX_ALLOC_SIZE) {
		CHECK(h == 0 && errno == E2BIG);
		return;
	}
	if (h == 0) {
		/* only a page limit makes memory run out here; nothing changed */
		CHECK(errno == ENOMEM && st.cfg.max_pages != 0);
		zs_pool_stats(st.pool, &s1);
		if (!st.npending)
			CHECK(s1.objs_used == st.nlive);
		return;
	}
	CHECK(!is_known(h));
	known_add(h);
	struct obj *o = &st.live[st.nlive++];
	o->h = h;
	o->size = size;
	o->cap = capacity(size);
	o->version = 0;
	o->valid = 0;
	if (fill == FILL_AT_ALLOC) {
		o->version = 1;
		memcpy(o->data, scratch, size);
		o->valid = size;
	} else if (fill == FILL_WRITE) {
		o->version++;
		pattern(o->data, size, h, o->version);
		CHECK(zs_obj_write(st.pool, h, o->data, size) == 0);
		o->valid = size;
	}
}

static struct obj *pick(struct input *in)
{
	unsigned b = get8(in);

	return st.nlive ? &st.live[b % st.nlive] : NULL;
}

static void do_write(struct obj *o, size_t len)
{
	o->version++;
	pattern(scratch, len, o->h, o->version);
	CHECK(zs_obj_write(st.pool, o->h, scratch, len) == 0);
	memcpy(o->data, scratch, len);
	if (len > o->valid)
		o->valid = len;
}

static void do_read(struct obj *o, size_t len)
{
	size_t n = len < o->valid ? len : o->valid;
	unsigned char *p;

	errno = 0;
	p = zs_obj_read_begin(st.pool, o->h, len, local);
	CHECK(p != NULL);
	CHECK(memcmp(p, o->data, n) == 0);
	zs_obj_read_end(st.pool, o->h, len, p);
}

static void do_free(unsigned i, bool deferred)
{
	unsigned long h = forget_live(i);

	if (deferred && st.npending == MAX_LIVE)
		flush(); /* the shadow's queue is full */
	if (deferred) {
		zs_free_deferred(st.pool, h);
		st.pending[st.npending++] = h;
		st.deferred++;
	} else {
		zs_free(st.pool, h);
		known_remove(h);
		remember_dead(h);
	}
}

/*
 * A handle that is not live: freed (a double free), stale (freed, its slot
 * reused), forged, a live one with a bit flipped or another generation, or
 * 0 -- also when the candidate happens to be live after all.
 */
static unsigned long pick_bad(struct input *in)
{
	unsigned kind = get8(in) % 5;
	unsigned long h = 0;

	switch (kind) {
	case 0: /* freed earlier: a double free, or stale if its slot is reused */
		if (st.ndead) {
			h = st.dead[get8(in) % st.ndead];
			break;
		}
		/* fall through */
	case 1: /* forged */
		h = (unsigned long)get64(in);
		break;
	case 2: /* a live handle with one bit flipped */
		if (st.nlive) {
			h = st.live[get8(in) % st.nlive].h;
			h ^= 1ul << (get8(in) % 64);
			break;
		}
		h = (unsigned long)get64(in);
		break;
	case 3: /* the next or previous generation of a live handle's slot */
		if (st.nlive) {
			h = st.live[get8(in) % st.nlive].h;
			h += (get8(in) & 1) ? 2ul : -2ul;
			break;
		}
		h = 0;
		break;
	default:
		h = 0;
		break;
	}
	return is_known(h) ? 0 : h;
}

/* Runs a bad-handle operation after settling; checks it was counted only. */
static void bad_op(enum op op, struct input *in)
{
	struct zs_pool_stats s0, s1;
	unsigned long h;
	bool zero_ok;
	size_t len;
	int rc;
	void *p;

	if (!st.return_errors)
		return; /* it would abort: the documented default */
	if (st.npending)
		flush(); /* exact figures from here on */
	/* 0 is ignored by the frees, rejected by the others */
	zero_ok = op == OP_BAD_READ || op == OP_BAD_WRITE || op == OP_BAD_READ_END;
	h = pick_bad(in);
	if (h == 0 && !zero_ok)
		return;
	zs_pool_stats(st.pool, &s0);
	switch (op) {
	case OP_BAD_FREE:
		zs_free(st.pool, h);
		break;
	case OP_BAD_READ:
		len = get16(in) % (ZS_MAX_ALLOC_SIZE + 1);
		errno = 0;
		p = zs_obj_read_begin(st.pool, h, len, local);
		CHECK(p == NULL && errno == EBADF);
		break;
	case OP_BAD_WRITE:
		len = get16(in) % (ZS_MAX_ALLOC_SIZE + 1);
		memset(scratch, 0xa5, len);
		rc = zs_obj_write(st.pool, h, scratch, len);
		CHECK(rc == -EBADF);
		break;
	case OP_BAD_READ_END:
		zs_obj_read_end(st.pool, h, 0, local);
		break;
	case OP_BAD_DEFERRED:
		/* flushed at once: a forged value must not become some later
		 * allocation's handle while it waits in the queue */
		zs_free_deferred(st.pool, h);
		st.deferred++;
		zs_free_deferred_flush(st.pool);
		break;
	default:
		return;
	}
	st.invalid++;
	zs_pool_stats(st.pool, &s1);
	CHECK(s1.invalid_handles == s0.invalid_handles + 1);
	CHECK(s1.invalid_handles - st.invalid0 == st.invalid);
	CHECK(s1.objs_used == s0.objs_used && s1.objs_used == st.nlive);
}

static void do_read_hold(struct input *in)
{
	struct obj *o = pick(in);
	unsigned what = get8(in) % 4;
	unsigned char *p;

	if (!o)
		return;
	/* copies: the entry may move when a free below swaps the last in */
	unsigned long h = o->h;
	size_t valid = o->valid;

	memcpy(scratch2, o->data, valid);
	errno = 0;
	p = zs_obj_read_begin(st.pool, h, valid, local);
	CHECK(p != NULL);
	/* the object cannot move while read: compaction and migration skip
	 * its zspage; the others do not touch it */
	switch (what) {
	case 0:
		zs_compact(st.pool);
		break;
	case 1:
		zs_defrag(st.pool);
		break;
	case 2:
		zs_pool_trim(st.pool);
		break;
	default:
		/* free another object of the pool meanwhile */
		for (unsigned i = 0; i < st.nlive; i++) {
			if (st.live[i].h != h) {
				do_free(i, false);
				break;
			}
		}
		break;
	}
	CHECK(memcmp(p, scratch2, valid) == 0);
	zs_obj_read_end(st.pool, h, valid, p);
}

static void do_read_two(struct input *in)
{
	struct obj *a = pick(in), *b = pick(in);
	unsigned char *pa, *pb;
	static unsigned char local2[ZS_MAX_ALLOC_SIZE];

	if (!a)
		return;
	errno = 0;
	pa = zs_obj_read_begin(st.pool, a->h, a->valid, local);
	CHECK(pa != NULL);
	pb = zs_obj_read_begin(st.pool, b->h, b->valid, local2);
	CHECK(pb != NULL);
	CHECK(memcmp(pa, a->data, a->valid) == 0);
	CHECK(memcmp(pb, b->data, b->valid) == 0);
	zs_obj_read_end(st.pool, b->h, b->valid, pb);
	zs_obj_read_end(st.pool, a->h, a->valid, pa);
}

static void run_op(struct input *in)
{
	enum op op = (enum op)(get8(in) % NR_OPS);
	double t0 = profile ? now_ms() : 0;
	struct obj *o;
	size_t len;
	int rc;

	if (trace)
		fprintf(stderr, "%8.3f ms  op %u: %s (live %u, pending %u, pages %lu)\n",
			now_ms(), st.op_nr, op_names[op], st.nlive, st.npending,
			zs_get_total_pages(st.pool));

	switch (op) {
	case OP_MALLOC:
		do_malloc(get16(in) % (ZS_MAX_ALLOC_SIZE + 105), FILL_NONE);
		break;
	case OP_MALLOC_SMALL: {
		size_t size = get8(in) + 1; /* arguments in input order */

		do_malloc(size, (get8(in) & 1) ? FILL_WRITE : FILL_NONE);
		break;
	}
	case OP_MALLOC_BURST:
	case OP_MALLOC_MANY: {
		/* many: up to 256 pages of huge objects, half an arena chunk
		 * (a few of them in one input fill chunks that zs_defrag() can
		 * then empty; 1024 per op made it a third of the fuzzer's time) */
		unsigned n = op == OP_MALLOC_BURST ? get8(in) % 32 + 1 : (get8(in) % 64 + 1) * 4;
		size_t size = get16(in) % ZS_MAX_ALLOC_SIZE + 1;

		for (unsigned i = 0; i < n; i++)
			do_malloc(size, FILL_WRITE);
		break;
	}
	case OP_MALLOC_WRITE:
		do_malloc(get16(in) % (ZS_MAX_ALLOC_SIZE + 105), FILL_AT_ALLOC);
		break;
	case OP_WRITE:
		if ((o = pick(in)))
			do_write(o, get16(in) % (o->size + 1));
		break;
	case OP_WRITE_CAP:
		if (!(o = pick(in)))
			break;
		do_write(o, o->cap);
		/* one byte more than the class holds: refused, nothing written */
		memset(scratch, 0x5a, o->cap + 1);
		rc = zs_obj_write(st.pool, o->h, scratch, o->cap + 1);
		CHECK(rc == -EINVAL);
		verify(o);
		break;
	case OP_READ:
		if ((o = pick(in)))
			do_read(o, get16(in) % (o->cap + 1));
		break;
	case OP_READ_TOO_LONG:
		if (!(o = pick(in)))
			break;
		len = o->cap + 1 + get8(in) % 16;
		errno = 0;
		CHECK(zs_obj_read_begin(st.pool, o->h, len, local) == NULL && errno == EINVAL);
		verify(o); /* and the refused read left no lock behind */
		break;
	case OP_FREE:
		if ((o = pick(in)))
			do_free((unsigned)(o - st.live), false);
		break;
	case OP_FREE_DEFERRED:
		if ((o = pick(in)))
			do_free((unsigned)(o - st.live), true);
		break;
	case OP_FREE_MANY: {
		unsigned stride = get8(in) % 4 + 2, mask = get8(in);

		/* from the top, so that the swap-in keeps the walk simple */
		for (unsigned i = st.nlive; i-- > 0;)
			if (i % stride == 0)
				do_free(i, (mask >> (i % 8)) & 1);
		break;
	}
	case OP_FLUSH:
		flush();
		check_stats(false);
		break;
	case OP_COMPACT: {
		unsigned long freed = zs_compact(st.pool);

		if (trace)
			fprintf(stderr, "  compacted: %lu pages freed\n", freed);
		verify_all();
		break;
	}
	case OP_DEFRAG: {
		unsigned long moved = zs_defrag(st.pool);

		if (trace)
			fprintf(stderr, "  defrag: %lu pages migrated\n", moved);
		verify_all();
		break;
	}
	case OP_TRIM:
		zs_pool_trim(st.pool);
		break;
	case OP_STATS: {
		unsigned b = get8(in);

		/* the class sums in one stats op in two (each settled check
		 * and each input's end sum them too) */
		check_stats(b & 2);
		(void)zs_compactable_pages(st.pool);
		CHECK(zs_huge_class_size(st.pool) > 0 &&
		      zs_huge_class_size(st.pool) <= ZS_MAX_ALLOC_SIZE);
		/* one stats op in eight also dumps the table: formatting 100+
		 * lines three times (vsnprintf is intercepted by ASan) made
		 * this op the fuzzer's costliest */
		if ((b & 14) == 0)
			check_dump((b & 1) ? ZS_STATS_JSON : ZS_STATS_TEXT, b >> 4);
		break;
	}
	case OP_FLUSH_TRIM_CHECK:
		check_settled();
		break;
	case OP_READ_HOLD:
		do_read_hold(in);
		break;
	case OP_READ_TWO:
		do_read_two(in);
		break;
	case OP_ZERO: {
		struct zs_pool_stats s0, s1;

		zs_pool_stats(st.pool, &s0);
		zs_free(st.pool, 0);
		zs_free_deferred(st.pool, 0);
		zs_pool_stats(st.pool, &s1);
		CHECK(s1.invalid_handles == s0.invalid_handles);
		break;
	}
	case OP_BAD_FREE:
	case OP_BAD_READ:
	case OP_BAD_WRITE:
	case OP_BAD_READ_END:
	case OP_BAD_DEFERRED:
		bad_op(op, in);
		break;
	default:
		break;
	}
	if (profile) {
		op_ms[op] += now_ms() - t0;
		op_count[op]++;
	}
}

/* ------------------------------------------------------------------ */

static bool same_config(const struct zs_pool_config *a, const struct zs_pool_config *b)
{
	return a->max_pages == b->max_pages && a->chain_size == b->chain_size &&
	       a->flags == b->flags && a->compact_threshold == b->compact_threshold &&
	       a->deferred_buffer_size == b->deferred_buffer_size &&
	       a->deferred_spares == b->deferred_spares;
}

/* A new pool for cfg in entry e, with its capacity table. */
static void pool_create(struct cached_pool *e, const struct zs_pool_config *cfg)
{
	unsigned n;

	double t0 = now_ms();

	memset(e, 0, sizeof(*e));
	e->cfg = *cfg;
	e->pool = zs_create_pool_ex("fuzz", cfg);
	CHECK(e->pool != NULL);
	nr_created++;
	ms_created += now_ms() - t0;

	/* capacity of each class: its size, less the header unless huge */
	n = zs_class_count(e->pool);
	for (unsigned i = 0; i < n; i++) {
		struct zs_class_stats cs;

		CHECK(zs_class_stats(e->pool, i, &cs) == 0);
		CHECK(cs.index < NR_INDICES);
		bool huge = cs.pages_per_zspage == 1 && cs.objs_per_zspage == 1;
		e->cap_of_index[cs.index] = huge ? cs.size : cs.size - HDR;
	}
}

static void pool_destroy(struct cached_pool *e)
{
	double t0 = now_ms();

	zs_destroy_pool(e->pool);
	e->pool = NULL;
	ms_destroyed += now_ms() - t0;
}

/* The cached pool of configuration cfg, created (evicting the least
 * recently used one) when there is none. */
static struct cached_pool *pool_get(const struct zs_pool_config *cfg)
{
	struct cached_pool *e = NULL, *victim = &pools[0];

	for (unsigned i = 0; i < POOL_CACHE && !e; i++) {
		if (pools[i].pool && same_config(&pools[i].cfg, cfg))
			e = &pools[i];
		else if (!pools[i].pool || (victim->pool && pools[i].last_used < victim->last_used))
			victim = &pools[i];
	}
	if (!e) {
		if (victim->pool)
			pool_destroy(victim);
		pool_create(victim, cfg);
		e = victim;
	}
	e->last_used = nr_inputs;
	return e;
}

/* Configuration b (0..NR_CONFIGS-1); tests/fuzz/gen-corpus.py mirrors it. */
static void config_decode(unsigned b, struct zs_pool_config *cfg)
{
	static const size_t limits[16] = { 16,  20,  24,  28,  32,  40,  48,  64,
					   80,  96,  128, 192, 256, 384, 512, 1036 };
	static const unsigned spares[4] = { 0, ZS_DEFERRED_NO_SPARES, 1, 2 };
	unsigned c = b & 15, v = (b >> 4) & 3;

	memset(cfg, 0, sizeof(*cfg));
	/*
	 * No decay: it runs on the arena's worker when the pool has made no
	 * arena call for decay_ms, which a cached pool does between its inputs
	 * and during an input whose allocations all find room in existing
	 * zspages; it then frees spare zspages and cached pages while the
	 * checks below sum the classes one lock at a time, so the sums and the
	 * pool's figures differed (a 1 h soak: check_class_sums, 1 of ~300,000
	 * inputs). The checks are exact only for a pool that changes through
	 * the harness's calls alone; decay racing the API is the stress
	 * test's and test_decay_returns' business.
	 */
	cfg->decay_ms = ZS_DECAY_NEVER;
	cfg->chain_size = c + 1;
	cfg->flags = ((b & 0x10) ? ZS_POOL_RETURN_ERRORS : 0) | ((b & 0x20) ? ZS_POOL_NO_SPARE : 0);
	if (b & 0x40) {
		cfg->max_pages = limits[(c * 7 + v * 5) % 16];
		cfg->deferred_buffer_size = (c + v) % 8;
		cfg->deferred_spares = spares[(c / 2 + v) % 4];
	}
}

static void pool_setup(struct input *in)
{
	struct cached_pool *e;
	struct zs_pool_stats s;

	unsigned b = get8(in);

	memset(&st, 0, offsetof(struct state, live));
	config_decode(b % NR_CONFIGS, &st.cfg);
	st.trim_at_end = b & 0x80;
	st.return_errors = st.cfg.flags & ZS_POOL_RETURN_ERRORS;
	e = pool_get(&st.cfg);
	st.entry = e;
	st.pool = e->pool;
	st.cap_of_index = e->cap_of_index;
	zs_pool_stats(st.pool, &s);
	st.invalid0 = s.invalid_handles;
	st.deferred0 = s.deferred_queued + s.deferred_sync;
}

/*
 * After the input's last free, flush and trim: the pool must hold nothing,
 * as a new one does, and the figures of every class must be zero.
 */
static void check_empty(void)
{
	struct zs_pool_stats s;
	struct zs_class_stats cs;
	unsigned n = zs_class_count(st.pool);

	CHECK(st.nlive == 0 && st.npending == 0 && nknown == 0);
	zs_pool_stats(st.pool, &s);
	CHECK(s.objs_used == 0 && s.objs_allocated == 0);
	CHECK(s.pages_allocated == 0 && s.pages_spare == 0);
	CHECK(zs_get_total_pages(st.pool) == 0);
	/* trim gave the cached pages and the empty chunks back to the OS, and
	 * waited for releases in flight: exact now (a chunk the arena's worker
	 * was still unmapping used to slip through: corpus-pool/
	 * trim-chunk-release shows it with -runs=500) */
	CHECK(s.pages_resident == 0 && s.chunks_committed == 0);
	CHECK(zs_compactable_pages(st.pool) == 0);
	for (unsigned i = 0; i < n; i++) {
		CHECK(zs_class_stats(st.pool, i, &cs) == 0);
		CHECK(cs.obj_used == 0 && cs.obj_allocated == 0 && cs.pages_used == 0);
		CHECK(cs.freeable == 0);
		for (unsigned c = 0; c < ZS_NR_FULLNESS_COLUMNS; c++)
			CHECK(cs.zspages[c] == 0);
	}
}

/*
 * After the input's last free, without a trim: no object is left, and the
 * only pages are those of spare zspages (one per class at most).
 */
static void check_no_objects(void)
{
	struct zs_pool_stats s;

	CHECK(st.nlive == 0 && st.npending == 0 && nknown == 0);
	zs_pool_stats(st.pool, &s);
	CHECK(s.objs_used == 0);
	CHECK(s.pages_allocated == s.pages_spare);
	CHECK(zs_get_total_pages(st.pool) == s.pages_allocated);
	if (st.cfg.flags & ZS_POOL_NO_SPARE)
		CHECK(s.pages_allocated == 0 && s.objs_allocated == 0);
}

/*
 * Ends an input: everything verified, then freed; the pool left without
 * objects, and empty if the input asks for it (st.trim_at_end).
 * Only what needs the pool's threads waits for them (a flush when the
 * input queued deferred frees; trim for a release in flight): on a busy
 * machine each such handoff costs a scheduling delay.
 */
static void pool_reset(void)
{
	/* every live object intact after a flush (and a trim: no operation
	 * repairs one, so intact then means intact before); the figures
	 * exact */
	if (st.deferred)
		flush();
	if (st.trim_at_end)
		zs_pool_trim(st.pool);
	check_stats(true);
	CHECK(st.nlive == 0 || zs_get_total_pages(st.pool) > 0);
	verify_all();
	for (unsigned i = st.nlive; i-- > 0;)
		do_free(i, false);
	if (!st.trim_at_end) {
		check_no_objects();
		return;
	}
	zs_pool_trim(st.pool);
	check_stats(false); /* check_empty() sees every class at zero */
	check_empty();
}

/*
 * At exit, destroys the cached pools. Registered with atexit() at the first
 * input, after LeakSanitizer's own exit check, so it runs before that check,
 * which then sees whatever a destroyed pool leaves behind.
 */
static void pools_destroy(void)
{
	for (unsigned i = 0; i < POOL_CACHE; i++)
		if (pools[i].pool)
			pool_destroy(&pools[i]);
	for (unsigned i = 0; profile && i <= NR_OPS; i++)
		fprintf(stderr, "fuzz_pool: %-16s %8lu ops %8.0f ms\n",
			i < NR_OPS ? op_names[i] : "(reset)", op_count[i], op_ms[i]);
	fprintf(stderr, "fuzz_pool: %lu inputs, %lu pools created (%.0f ms), destroyed in %.0f ms\n",
		nr_inputs, nr_created, ms_created, ms_destroyed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };

	if (trace < 0) {
		trace = getenv("FUZZ_POOL_TRACE") != NULL;
		fresh = getenv("FUZZ_POOL_FRESH") != NULL;
		profile = getenv("FUZZ_POOL_PROFILE") != NULL;
		atexit(pools_destroy);
	}
	nr_inputs++;
	pool_setup(&in);
	if (trace)
		fprintf(stderr, "pool: chain %u flags 0x%x max_pages %zu deferred %u/%#x\n",
			st.cfg.chain_size, st.cfg.flags, st.cfg.max_pages,
			st.cfg.deferred_buffer_size, st.cfg.deferred_spares);
	for (st.op_nr = 0; in.n > 0 && st.op_nr < MAX_OPS; st.op_nr++)
		run_op(&in);

	double t0 = profile ? now_ms() : 0;
	pool_reset();
	if (profile) {
		op_ms[NR_OPS] += now_ms() - t0;
		op_count[NR_OPS]++;
	}
	if (trace)
		fprintf(stderr, "%8.3f ms  reset (invalid handles %lu)\n", now_ms(), st.invalid);
	if (fresh) {
		for (unsigned i = 0; i < POOL_CACHE; i++)
			if (pools[i].pool == st.pool)
				pool_destroy(&pools[i]);
	}
	st.pool = NULL;
	return 0;
}

