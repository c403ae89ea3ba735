/* SPDX-License-Identifier: MIT */
/*
 * fuzz_zsram.c: a shadow-model fuzzer of the zsram store (libFuzzer).
 * Each input is a store configuration, then a stream of operations --
 * pread/pwrite at unaligned offsets and lengths, whole-page writes and
 * reads, discards, compaction, recompression, the store pool's compaction,
 * defragmentation and trim, bad arguments -- checked against a shadow copy
 * of the disk: every read is compared with it, and mm_stat with what the
 * shadow knows after every operation.
 *
 * Input format (bytes past the end read as 0):
 *
 *   byte 0   the store configuration, one of 64 (bits 6-7 ignored):
 *            algorithm (bits 0-1, modulo the algorithms built in), its
 *            second level (bit 2; else level 0, the default),
 *            ZSRAM_SYNC_FREE (bit 3), a small mem_limit (bit 4: 4..16
 *            pages, less 100 bytes, so that it is rounded up), a pool of
 *            chain 4 with ZSRAM_NO_SPARE (bit 5); the disk is 16..40 pages
 *            (bits 2-3)
 *   then     operations: an opcode byte (modulo NR_OPS) and its arguments
 *
 * Checked, besides the reads: the errors (-ERANGE past the end, also for
 * offsets near 2^64; -EINVAL for NULL buffers, bad modes, unknown
 * algorithms and levels; -EBUSY for a second secondary algorithm; -ENOSPC
 * only with a mem_limit and never for a same-filled page, and then the
 * page keeps its content); a short pwrite stops at a page boundary with
 * the pages before it written; mm_stat: orig_data_size == 4096 x pages
 * stored, same_pages exact, huge_pages_since grows by exactly one per
 * incompressible page written and never for a same-filled one, huge_pages
 * within what the shadow knows (a page stored huge, not huge, or unknown:
 * learnt from huge_pages_since after each write), compr_data_size within
 * 4096 x huge_pages and that plus (huge class size - 1) per other page,
 * mem_limit rounded up, mem_used_max >= mem_used_total, pages_compacted
 * growing; and, once frees are finished (at once with ZSRAM_SYNC_FREE,
 * after zs_free_deferred_flush or zsram_compact otherwise), the pool holds
 * exactly one object per stored page that is not same-filled and
 * mem_used_total == zs_get_total_pages() x 4096.
 *
 * Stores are reused across inputs (creating one costs a pool, ~15 ms under
 * ASan): one per configuration, kept for the process. At the end of each
 * input every page is read back, the whole disk discarded, frees finished
 * and the pool trimmed; mm_stat must then show nothing stored and the pool
 * no object and no page. The secondary algorithm, once set, stays for the
 * store's life (the shadow remembers it: a later set is -EBUSY).
 * FUZZ_ZSRAM_TRACE=1 prints each operation.
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
#include "zsram.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PAGE       ZSRAM_PAGE_SIZE
#define MAX_PAGES  40
#define NR_CONFIGS 64
#define MAX_ALGS   8
#define MAX_OPS    1024
#define MAX_IO     (3 * PAGE) /* longest pread/pwrite */

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_zsram: check failed: %s (line %d, op %u)\n", #cond,  \
				__LINE__, op_nr);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Operations; tests/fuzz/gen-corpus.py uses the same numbers. */
enum op {
	OP_WRITE_PAGE = 0, /* u8 index (mod pages + 2), u8 kind, u8 seed */
	OP_READ_PAGE,      /* u8 index (mod pages + 2) */
	OP_PWRITE,         /* u8 page (mod pages + 1), u16 offset in it, u16 length
	                      (mod MAX_IO + 1), u8 kind, u8 seed */
	OP_PREAD,          /* u8 page (mod pages + 1), u16 offset in it, u16 length */
	OP_DISCARD,        /* u8 index (mod pages + 1), u8 count (mod pages + 2) */
	OP_COMPACT,        /* zsram_compact */
	OP_FLUSH,          /* zs_free_deferred_flush of the store's pool: exact pool figures */
	OP_SET_RECOMP,     /* u8 algorithm (mod algorithms + 1: the last is unknown),
	                      u8 level (mod 4: default, valid, too high, too low) */
	OP_RECOMPRESS,     /* u8 mode (mod 3: 0, ZSRAM_RECOMP_HUGE, a bad mode), u16 threshold */
	OP_MM_STAT,        /* the mm_stat checks, and a full read-back */
	OP_POOL,           /* u8 what (mod 3): zs_compact, zs_defrag, zs_pool_trim; read-back */
	OP_BAD_ARGS,       /* u8 which (mod 6), u64 offset: NULL buffers, ranges near 2^64 */
	OP_WRITE_RUN,      /* u8 index, u8 count (mod 8, + 1), u8 kind, u8 seed: whole pages */
	NR_OPS
};

static const char *const op_names[NR_OPS] = {
	"write_page", "read_page", "pwrite", "pread", "discard", "compact", "flush",
	"set_recomp", "recompress", "mm_stat", "pool", "bad_args", "write_run",
};

/* What the shadow knows of how a stored page is kept. */
enum huge_state { NOT_HUGE = 0, HUGE, HUGE_UNKNOWN };

/* A store kept between inputs; everything discarded whenever no input runs. */
struct cached_store {
	struct zsram *zr; /* NULL: not created yet */
	struct zsram_config cfg;
	struct zs_pool_config pool_cfg;
	uint64_t pages;
	bool recomp_set; /* the secondary algorithm is set (for good) */
	struct zsram_mm_stat last; /* at the end of the last input */
};

static struct cached_store stores[NR_CONFIGS];
static const char *algs[MAX_ALGS];
static char alg_names[128];
static unsigned nr_algs;

/* The input's state. */
static struct cached_store *cs;
static struct zsram *zr;
static unsigned op_nr;
static int trace = -1; /* FUZZ_ZSRAM_TRACE=1 */
static unsigned char disk[MAX_PAGES * PAGE]; /* the shadow */
static bool stored[MAX_PAGES];       /* written and not discarded since */
static bool random_full[MAX_PAGES];  /* last written whole with random bytes */
static unsigned char huge[MAX_PAGES]; /* enum huge_state, for stored pages */
static struct zsram_mm_stat prev;   /* after the previous operation */
static size_t huge_size;            /* zs_huge_class_size() of the store's pool */
/* for the summary at exit: which paths ran */
static unsigned long nr_inputs, nr_created, nr_enospc, nr_short, nr_recompressed;
static double ms_created; /* time in zsram_create */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static unsigned char iobuf[MAX_IO + 64], readbuf[MAX_IO + 64], pagebuf[PAGE];

static void fill_random(unsigned char *p, size_t n, uint64_t *s)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = mix(s);
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

/*
 * One page of content: kind (mod 8) 0 zeros, 1 one 8-byte word repeated,
 * 2 random (incompressible), 3 text-like (a short random phrase repeated
 * with a few changes), 4 half random half zero, 5 a repeated word with one
 * byte changed, 6 random for a seed-chosen length then zeros (across the
 * huge threshold), 7 a 16-byte pattern repeated (not same-filled).
 */
enum { KIND_RANDOM = 2 };
static void gen_page(unsigned char *p, unsigned kind, unsigned seed, unsigned salt)
{
	uint64_t s = ((uint64_t)seed << 32) ^ ((uint64_t)kind << 16) ^ salt ^ 0x5a5a;
	uint64_t w = mix(&s) | 1;
	unsigned char phrase[64];
	size_t plen;

	switch (kind % 8) {
	case 0:
		memset(p, 0, PAGE);
		break;
	case 1:
		for (size_t i = 0; i < PAGE; i += 8)
			memcpy(p + i, &w, 8);
		break;
	case 2:
		fill_random(p, PAGE, &s);
		break;
	case 3:
		plen = 16 + mix(&s) % 48;
		fill_random(phrase, plen, &s);
		for (size_t i = 0; i < PAGE; i++)
			p[i] = phrase[i % plen];
		for (unsigned i = 0; i < 8; i++)
			p[mix(&s) % PAGE] ^= (unsigned char)(1 + i);
		break;
	case 4:
		fill_random(p, PAGE / 2, &s);
		memset(p + PAGE / 2, 0, PAGE / 2);
		break;
	case 5:
		for (size_t i = 0; i < PAGE; i += 8)
			memcpy(p + i, &w, 8);
		p[seed % PAGE] ^= 0x80;
		break;
	case 6: {
		size_t n = (size_t)seed * 16 % PAGE;

		fill_random(p, n, &s);
		memset(p + n, 0, PAGE - n);
		break;
	}
	default: {
		uint64_t w2 = mix(&s);

		if (w2 == w)
			w2++;
		for (size_t i = 0; i < PAGE; i += 16) {
			memcpy(p + i, &w, 8);
			memcpy(p + i + 8, &w2, 8);
		}
		break;
	}
	}
}

static bool page_is_same(const unsigned char *p)
{
	uint64_t w, v;

	memcpy(&w, p, 8);
	for (size_t i = 8; i < PAGE; i += 8) {
		memcpy(&v, p + i, 8);
		if (v != w)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* The shadow's figures                                                 */

struct counts {
	uint64_t stored, same, nonsame, huge, huge_unknown;
};

static struct counts count(void)
{
	struct counts c = { 0 };

	for (uint64_t i = 0; i < cs->pages; i++) {
		if (!stored[i])
			continue;
		c.stored++;
		if (page_is_same(disk + i * PAGE)) {
			c.same++;
			continue;
		}
		c.nonsame++;
		c.huge += huge[i] == HUGE;
		c.huge_unknown += huge[i] == HUGE_UNKNOWN;
	}
	return c;
}

/* The pool holds exactly the slots' objects: call when no free is queued. */
static void check_pool_exact(void)
{
	struct zs_pool *pool = zsram_pool(zr);
	struct zs_pool_stats ps;
	struct zsram_mm_stat m;
	struct counts c = count();

	zs_pool_stats(pool, &ps);
	CHECK(ps.objs_used == c.nonsame);
	/* the pool's decay (the arena's worker, after an idle period) may
	 * free spare zspages meanwhile: pages only go down */
	uint64_t before = (uint64_t)zs_get_total_pages(pool) * PAGE;
	zsram_mm_stat(zr, &m);
	uint64_t after = (uint64_t)zs_get_total_pages(pool) * PAGE;
	CHECK(m.mem_used_total <= before && m.mem_used_total >= after);
	CHECK(m.mem_used_max >= m.mem_used_total);
}

/*
 * mm_stat after an operation: exact where the shadow knows, bounded where
 * it does not. since_delta_max: how many huge pages the operation may have
 * stored (huge_pages_since grows by at most that much).
 */
static struct zsram_mm_stat check_mm(uint64_t since_delta_max)
{
	struct zsram_mm_stat m;
	struct counts c = count();

	zsram_mm_stat(zr, &m);
	CHECK(m.orig_data_size == c.stored * PAGE);
	CHECK(m.same_pages == c.same);
	CHECK(m.huge_pages >= c.huge && m.huge_pages <= c.huge + c.huge_unknown);
	CHECK(m.compr_data_size >= m.huge_pages * PAGE);
	CHECK(m.compr_data_size <= m.huge_pages * PAGE + (c.nonsame - m.huge_pages) * (huge_size - 1));
	if (c.nonsame == 0)
		CHECK(m.compr_data_size == 0);
	CHECK(m.mem_limit == (cs->cfg.mem_limit + PAGE - 1) / PAGE * PAGE);
	CHECK(m.mem_used_max >= prev.mem_used_max);
	CHECK(m.pages_compacted >= prev.pages_compacted);
	CHECK(m.huge_pages_since >= prev.huge_pages_since);
	CHECK(m.huge_pages_since - prev.huge_pages_since <= since_delta_max);
	if (cs->cfg.flags & ZSRAM_SYNC_FREE)
		check_pool_exact();
	prev = m;
	return m;
}

static void verify_range(uint64_t off, size_t len)
{
	ssize_t r = zsram_pread(zr, readbuf, len, off);

	CHECK(r == (ssize_t)len);
	CHECK(memcmp(readbuf, disk + off, len) == 0);
}

static void verify_all(void)
{
	for (uint64_t i = 0; i < cs->pages; i++) {
		CHECK(zsram_read_page(zr, i, pagebuf) == 0);
		CHECK(memcmp(pagebuf, disk + i * PAGE, PAGE) == 0);
	}
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */

/* Records a successful store of page i whose new content is in disk[]. */
static void stored_page(uint64_t i, enum huge_state h, bool rnd)
{
	stored[i] = true;
	random_full[i] = rnd;
	huge[i] = page_is_same(disk + i * PAGE) ? NOT_HUGE : h;
}

/* Learns how the pages just stored are kept, from huge_pages_since. */
static void learn_huge(const uint64_t *idx, unsigned n, uint64_t since0, uint64_t since1)
{
	uint64_t delta = since1 - since0;
	unsigned nonsame = 0;

	for (unsigned k = 0; k < n; k++)
		nonsame += !page_is_same(disk + idx[k] * PAGE);
	CHECK(delta <= nonsame);
	for (unsigned k = 0; k < n; k++) {
		if (page_is_same(disk + idx[k] * PAGE))
			continue;
		if (delta == 0)
			huge[idx[k]] = NOT_HUGE;
		else if (delta == nonsame)
			huge[idx[k]] = HUGE;
		else
			huge[idx[k]] = HUGE_UNKNOWN;
	}
	check_mm(0);
}

static void do_write_page(uint64_t i, unsigned kind, unsigned seed)
{
	uint64_t since0 = prev.huge_pages_since;
	struct zsram_mm_stat m;
	int rc;

	gen_page(pagebuf, kind, seed, (unsigned)i);
	rc = zsram_write_page(zr, i, pagebuf);
	if (i >= cs->pages) {
		CHECK(rc == -ERANGE);
		check_mm(0);
		return;
	}
	if (rc == -ENOSPC) {
		/* a same-filled page needs no memory; the old content stays */
		CHECK(cs->cfg.mem_limit != 0 && !page_is_same(pagebuf));
		nr_enospc++;
		check_mm(0);
		verify_range(i * PAGE, PAGE);
		return;
	}
	CHECK(rc == 0);
	memcpy(disk + i * PAGE, pagebuf, PAGE);
	stored_page(i, HUGE_UNKNOWN, kind % 8 == KIND_RANDOM);
	m = check_mm(1);
	if (page_is_same(pagebuf))
		CHECK(m.huge_pages_since == since0);
	if (random_full[i]) /* 4096 random bytes never compress below the huge size */
		CHECK(m.huge_pages_since == since0 + 1);
	learn_huge(&i, 1, since0, m.huge_pages_since);
}

static void do_pwrite(uint64_t off, size_t len, unsigned kind, unsigned seed)
{
	uint64_t since0 = prev.huge_pages_since, idx[MAX_IO / PAGE + 2];
	uint64_t end = off + len, disk_bytes = cs->pages * PAGE;
	struct zsram_mm_stat m;
	unsigned n = 0;
	ssize_t r;

	for (unsigned k = 0; k * PAGE < len; k++)
		gen_page(iobuf + (size_t)k * PAGE, kind + k, seed, (unsigned)(off / PAGE) + k);
	r = zsram_pwrite(zr, iobuf, len, off);
	if (end > disk_bytes) {
		CHECK(r == -ERANGE);
		check_mm(0);
		return;
	}
	if (r < 0) {
		CHECK(r == -ENOSPC && cs->cfg.mem_limit != 0 && len > 0);
		nr_enospc++;
		r = 0;
	}
	CHECK((size_t)r <= len);
	if ((size_t)r < len) {
		/* short: whole pages of the range done, the failed one untouched */
		CHECK(cs->cfg.mem_limit != 0);
		nr_short += r > 0;
		CHECK(r == 0 || (off + (uint64_t)r) % PAGE == 0);
		uint64_t fail = (off + (uint64_t)r) / PAGE;
		size_t in_page = PAGE - (size_t)((off + (uint64_t)r) % PAGE);
		size_t n_fail = in_page < len - (size_t)r ? in_page : len - (size_t)r;

		/* the page it failed on would not have been same-filled */
		memcpy(pagebuf, disk + fail * PAGE, PAGE);
		memcpy(pagebuf + (off + (uint64_t)r) % PAGE, iobuf + r, n_fail);
		CHECK(!page_is_same(pagebuf));
	}
	memcpy(disk + off, iobuf, (size_t)r);
	for (uint64_t pg = off / PAGE; r > 0 && pg * PAGE < off + (uint64_t)r; pg++) {
		stored_page(pg, HUGE_UNKNOWN, false);
		idx[n++] = pg;
	}
	m = check_mm(n);
	learn_huge(idx, n, since0, m.huge_pages_since);
	if ((size_t)r < len)
		verify_range(off, len);
}

static void do_discard(uint64_t i, uint64_t n)
{
	int rc = zsram_discard(zr, i, n);

	if (i >= cs->pages || n > cs->pages - i) {
		CHECK(rc == -ERANGE);
	} else {
		CHECK(rc == 0);
		memset(disk + i * PAGE, 0, n * PAGE);
		for (uint64_t k = i; k < i + n; k++) {
			stored[k] = false;
			random_full[k] = false;
			huge[k] = NOT_HUGE;
		}
	}
	check_mm(0);
}

static void do_set_recomp(unsigned a, unsigned lv)
{
	const char *name = a < nr_algs ? algs[a] : "nonesuch";
	int level = 0, rc;
	bool valid = a < nr_algs;

	/* levels: 0 (default), one valid, one above, one below the range */
	if (strcmp(name, "lz4") == 0) {
		static const int l[4] = { 0, 9, 65538, -1 };
		level = l[lv];
	} else if (strcmp(name, "lz4hc") == 0) {
		static const int l[4] = { 0, 4, 13, -1 };
		level = l[lv];
	} else if (strcmp(name, "zstd") == 0) {
		static const int l[4] = { 0, -3, 23, -131073 };
		level = l[lv];
	} else if (strcmp(name, "lzo") == 0) {
		static const int l[4] = { 0, 1, 2, -1 };
		level = l[lv];
	} else {
		level = lv;
	}
	if (lv >= 2)
		valid = false;
	rc = zsram_set_recomp_algorithm(zr, name, level);
	if (!valid) {
		CHECK(rc == -EINVAL);
	} else if (cs->recomp_set) {
		CHECK(rc == -EBUSY);
	} else {
		CHECK(rc == 0);
		cs->recomp_set = true;
	}
	check_mm(0);
}

static void do_recompress(unsigned mode, size_t threshold)
{
	struct counts c = count();
	long rc;

	rc = zsram_recompress(zr, mode, threshold);
	if ((mode & ~ZSRAM_RECOMP_HUGE) || !cs->recomp_set) {
		CHECK(rc == -EINVAL);
		check_mm(0);
		return;
	}
	CHECK(rc >= 0 || ((rc == -ENOSPC || rc == -ENOMEM) && cs->cfg.mem_limit != 0));
	CHECK(rc <= (long)c.nonsame);
	nr_recompressed += rc > 0 ? (unsigned long)rc : 0;
	/* a page that was huge may not be now, unless it is random; a page
	 * never becomes huge */
	for (uint64_t i = 0; rc > 0 && i < cs->pages; i++)
		if (stored[i] && huge[i] == HUGE && !random_full[i])
			huge[i] = HUGE_UNKNOWN;
	check_mm(0);
	verify_all();
}

static void do_bad_args(unsigned which, uint64_t off)
{
	uint64_t disk_bytes = cs->pages * PAGE;

	switch (which % 6) {
	case 0:
		CHECK(zsram_pread(zr, NULL, 0, 0) == -EINVAL);
		CHECK(zsram_pwrite(zr, NULL, 0, 0) == -EINVAL);
		break;
	case 1:
		CHECK(zsram_read_page(zr, 0, NULL) == -EINVAL);
		CHECK(zsram_write_page(zr, 0, NULL) == -EINVAL);
		break;
	case 2: /* near 2^64: offset + count wraps */
		off |= 0xfffffffffffff000ull;
		CHECK(zsram_pread(zr, readbuf, PAGE + 1, off) == -ERANGE);
		CHECK(zsram_pwrite(zr, iobuf, PAGE + 1, off) == -ERANGE);
		break;
	case 3: /* any offset: in range or not */
		if (off < disk_bytes) {
			size_t len = (size_t)(disk_bytes - off < 100 ? disk_bytes - off : 100);
			verify_range(off, len);
		} else {
			CHECK(zsram_pread(zr, readbuf, 1, off) == -ERANGE);
		}
		break;
	case 4: /* pages: indices far out, and discards that wrap */
		CHECK(zsram_read_page(zr, off | (1ull << 63), pagebuf) == -ERANGE);
		CHECK(zsram_write_page(zr, off | (1ull << 63), pagebuf) == -ERANGE);
		CHECK(zsram_discard(zr, 1, UINT64_MAX) == -ERANGE);
		CHECK(zsram_discard(zr, off | (1ull << 63), 1) == -ERANGE);
		break;
	default: /* zero-length transfers at the end are in range */
		CHECK(zsram_pread(zr, readbuf, 0, disk_bytes) == 0);
		CHECK(zsram_pwrite(zr, iobuf, 0, disk_bytes) == 0);
		CHECK(zsram_pread(zr, readbuf, 0, disk_bytes + 1) == -ERANGE);
		break;
	}
	check_mm(0);
}

static void run_op(struct input *in)
{
	enum op op = (enum op)(get8(in) % NR_OPS);
	uint64_t np = cs->pages;

	if (trace)
		fprintf(stderr, "op %u: %s\n", op_nr, op_names[op]);
	switch (op) {
	case OP_WRITE_PAGE: {
		uint64_t i = get8(in) % (np + 2);
		unsigned kind = get8(in);

		do_write_page(i, kind, get8(in));
		break;
	}
	case OP_READ_PAGE: {
		uint64_t i = get8(in) % (np + 2);
		int rc = zsram_read_page(zr, i, pagebuf);

		if (i >= np) {
			CHECK(rc == -ERANGE);
		} else {
			CHECK(rc == 0);
			CHECK(memcmp(pagebuf, disk + i * PAGE, PAGE) == 0);
		}
		break;
	}
	case OP_PWRITE: {
		uint64_t off = (uint64_t)(get8(in) % (np + 1)) * PAGE;
		size_t len;
		unsigned kind;

		off += get16(in) % PAGE;
		len = get16(in) % (MAX_IO + 1);
		kind = get8(in);
		do_pwrite(off, len, kind, get8(in));
		break;
	}
	case OP_PREAD: {
		uint64_t off = (uint64_t)(get8(in) % (np + 1)) * PAGE;
		size_t len;

		off += get16(in) % PAGE;
		len = get16(in) % (MAX_IO + 1);
		if (off + len > np * PAGE)
			CHECK(zsram_pread(zr, readbuf, len, off) == -ERANGE);
		else
			verify_range(off, len);
		break;
	}
	case OP_DISCARD: {
		uint64_t i = get8(in) % (np + 1);

		do_discard(i, get8(in) % (np + 2));
		break;
	}
	case OP_COMPACT:
		(void)zsram_compact(zr);
		check_mm(0);
		check_pool_exact(); /* it finished the queued frees first */
		break;
	case OP_FLUSH:
		zs_free_deferred_flush(zsram_pool(zr));
		check_mm(0);
		check_pool_exact();
		break;
	case OP_SET_RECOMP: {
		unsigned a = get8(in) % (nr_algs + 1);

		do_set_recomp(a, get8(in) % 4);
		break;
	}
	case OP_RECOMPRESS: {
		unsigned mode = get8(in) % 3;

		do_recompress(mode == 2 ? 2u : mode, get16(in));
		break;
	}
	case OP_MM_STAT:
		check_mm(0);
		verify_all();
		break;
	case OP_POOL:
		switch (get8(in) % 3) {
		case 0:
			(void)zs_compact(zsram_pool(zr));
			break;
		case 1:
			(void)zs_defrag(zsram_pool(zr));
			break;
		default:
			zs_pool_trim(zsram_pool(zr));
			break;
		}
		check_mm(0);
		verify_all();
		break;
	case OP_BAD_ARGS: {
		unsigned which = get8(in);

		do_bad_args(which, get64(in));
		break;
	}
	case OP_WRITE_RUN: {
		uint64_t i = get8(in) % np;
		unsigned n = get8(in) % 8 + 1, kind = get8(in), seed = get8(in);

		for (unsigned k = 0; k < n && i + k < np; k++)
			do_write_page(i + k, kind, seed + k);
		break;
	}
	default:
		break;
	}
}

/* ------------------------------------------------------------------ */

static void parse_algorithms(void)
{
	char *save = NULL;

	snprintf(alg_names, sizeof(alg_names), "%s", zsram_algorithms());
	for (char *t = strtok_r(alg_names, " ", &save); t && nr_algs < MAX_ALGS;
	     t = strtok_r(NULL, " ", &save))
		algs[nr_algs++] = t;
	CHECK(nr_algs > 0);
}

/* Configuration b (0..NR_CONFIGS-1); tests/fuzz/gen-corpus.py mirrors it. */
static void config_decode(unsigned b, struct cached_store *c)
{
	const char *alg = algs[(b & 3) % nr_algs];
	int level = 0;

	memset(&c->cfg, 0, sizeof(c->cfg));
	memset(&c->pool_cfg, 0, sizeof(c->pool_cfg));
	if (b & 4) {
		if (strcmp(alg, "lz4") == 0)
			level = 65537; /* the fastest: compresses least */
		else if (strcmp(alg, "lz4hc") == 0)
			level = 12;
		else if (strcmp(alg, "zstd") == 0)
			level = -5;
		else
			level = 1;
	}
	c->pages = 16 + 8 * ((b >> 2) & 3);
	c->cfg.disksize = c->pages * PAGE;
	c->cfg.algorithm = alg;
	c->cfg.level = level;
	c->cfg.flags = (b & 8) ? ZSRAM_SYNC_FREE : 0;
	if (b & 16)
		c->cfg.mem_limit = (4 + 4 * (uint64_t)(b & 3)) * PAGE - 100;
	if (b & 32) {
		c->cfg.flags |= ZSRAM_NO_SPARE;
		c->pool_cfg.chain_size = 4;
		c->cfg.pool = &c->pool_cfg;
	}
}

static void store_setup(unsigned b)
{
	cs = &stores[b];
	if (!cs->zr) {
		double t0 = now_ms();

		config_decode(b, cs);
		cs->zr = zsram_create(&cs->cfg);
		CHECK(cs->zr != NULL);
		nr_created++;
		ms_created += now_ms() - t0;
		zsram_mm_stat(cs->zr, &cs->last);
	}
	zr = cs->zr;
	huge_size = zs_huge_class_size(zsram_pool(zr));
	prev = cs->last;
	memset(disk, 0, sizeof(disk));
	memset(stored, 0, sizeof(stored));
	memset(random_full, 0, sizeof(random_full));
	memset(huge, 0, sizeof(huge));
}

/* Ends an input: everything read back, then discarded; the store empty. */
static void store_reset(void)
{
	struct zs_pool *pool = zsram_pool(zr);
	struct zs_pool_stats ps;

	verify_all();
	do_discard(0, cs->pages);
	(void)zsram_compact(zr); /* finishes the queued frees */
	check_pool_exact();
	zs_pool_trim(pool);
	zs_pool_stats(pool, &ps);
	CHECK(ps.objs_used == 0 && ps.objs_allocated == 0 && ps.pages_allocated == 0);
	CHECK(zs_get_total_pages(pool) == 0);
	cs->last = check_mm(0);
	CHECK(cs->last.orig_data_size == 0 && cs->last.compr_data_size == 0 &&
	      cs->last.same_pages == 0 && cs->last.huge_pages == 0 &&
	      cs->last.mem_used_total == 0);
}

static void stores_destroy(void)
{
	double t0 = now_ms();

	for (unsigned i = 0; i < NR_CONFIGS; i++) {
		zsram_destroy(stores[i].zr);
		stores[i].zr = NULL;
	}
	fprintf(stderr,
		"fuzz_zsram: %lu inputs, %lu stores created (%.0f ms), destroyed in %.0f ms; "
		"%lu writes refused (ENOSPC), %lu short pwrites, %lu pages recompressed\n",
		nr_inputs, nr_created, ms_created, now_ms() - t0, nr_enospc, nr_short,
		nr_recompressed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };

	if (trace < 0) {
		trace = getenv("FUZZ_ZSRAM_TRACE") != NULL;
		parse_algorithms();
		atexit(stores_destroy); /* before LeakSanitizer's exit check */
	}
	op_nr = 0;
	nr_inputs++;
	store_setup(get8(&in) % NR_CONFIGS);
	if (trace)
		fprintf(stderr, "store: %s level %d, %llu pages, mem_limit %llu, flags %#x%s\n",
			cs->cfg.algorithm, cs->cfg.level, (unsigned long long)cs->pages,
			(unsigned long long)cs->cfg.mem_limit, cs->cfg.flags,
			cs->recomp_set ? ", secondary set" : "");
	for (; in.n > 0 && op_nr < MAX_OPS; op_nr++)
		run_op(&in);
	store_reset();
	return 0;
}
