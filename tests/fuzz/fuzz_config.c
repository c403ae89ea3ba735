/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c: configurations, valid and not, into zs_create_pool_ex()
 * and zsram_create() (libFuzzer). Each input builds one zs_pool_config or
 * one zsram_config (with or without a pool configuration) from its bytes
 * -- raw values, boundary values and the values in between -- and checks
 * the outcome: a configuration the headers call bad (a chain size above
 * 16, an unknown flag, a disk size of 0 or not a multiple of 4096, an
 * unknown algorithm, a level outside the algorithm's range, a NULL store
 * configuration) gives NULL with errno EINVAL; any other gives a working
 * pool or store -- objects or pages written, read back and compared,
 * freed, discarded, compacted, the statistics consistent -- or, only for
 * configurations that ask for a great deal of memory or address space,
 * NULL with errno ENOMEM. Then it is destroyed (LeakSanitizer checks each
 * input: nothing is cached here).
 *
 * Input format (bytes past the end read as 0):
 *
 *   byte 0   bit 0: a store (else a pool); bit 1: NULL configuration;
 *            bit 2: the store gets a pool configuration; bits 3-7: unused
 *   pool configuration (pool_config_from): max_pages, chain_size, flags,
 *            compact_threshold, deferred_buffer_size, deferred_spares,
 *            each a mode byte (default, small, larger, raw) and its value
 *   store configuration (store_config_from): disksize, algorithm (a
 *            name built in, NULL, or raw bytes), level, mem_limit, flags
 *   then     the pool configuration, when there is one
 *   then     a seed for the contents written
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zsmalloc.h"
#include "zsram.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_config: check failed: %s (line %d)\n", #cond,        \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define PAGE           4096
#define KNOWN_POOL     0x3fu /* ZS_POOL_* */
#define KNOWN_STORE    0x0fu /* ZSRAM_* */
#define MAX_CHAIN      16

/* A value by mode: 0 (the default), small, larger, or raw. */
static uint64_t get_val(struct input *in)
{
	switch (get8(in) % 4) {
	case 0:
		return 0;
	case 1:
		return get8(in);
	case 2:
		return get16(in);
	default:
		return get64(in);
	}
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = mix(&seed);
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

/* any value: the library refuses those past its bounds */
static unsigned clamp_deferred(uint64_t v)
{
	return (unsigned)v;
}

/* include/zsmalloc.h: per buffer, spares, and the spares' handles together
 * (0 = the defaults: 1024 per buffer, spares not counted) */
static bool deferred_bad(const struct zs_pool_config *pc)
{
	uint64_t size = pc->deferred_buffer_size ? pc->deferred_buffer_size : 1024;
	uint64_t spares = pc->deferred_spares == ZS_DEFERRED_NO_SPARES ? 0 : pc->deferred_spares;

	return size > ZS_DEFERRED_MAX_BUFFER || spares > ZS_DEFERRED_MAX_SPARES ||
	       size * spares > ZS_DEFERRED_MAX_ENTRIES;
}

static void pool_config_from(struct input *in, struct zs_pool_config *pc)
{
	uint64_t v;

	memset(pc, 0, sizeof(*pc));
	pc->max_pages = (size_t)get_val(in);
	v = get_val(in);
	pc->chain_size = (unsigned)(v > 64 ? v : v % 20); /* mostly near 1..16 */
	v = get_val(in);
	pc->flags = (unsigned)(v > 0xffff ? v : v & 0x7f); /* mostly known bits, + 0x40 */
	pc->compact_threshold = (size_t)get_val(in);
	pc->deferred_buffer_size = clamp_deferred(get_val(in));
	pc->deferred_spares = clamp_deferred(get_val(in));
}

static bool pool_config_bad(const struct zs_pool_config *pc)
{
	return pc->chain_size > MAX_CHAIN || (pc->flags & ~KNOWN_POOL) || deferred_bad(pc);
}

/* What a pool reserves or preallocates grows with these. */
static bool pool_config_big(const struct zs_pool_config *pc)
{
	return pc->max_pages > (1ull << 28) ||
	       (uint64_t)pc->deferred_buffer_size * (pc->deferred_spares + 1) > (1ull << 20);
}

/* Some objects written, read back, freed (directly and deferred). */
static void exercise_pool(struct zs_pool *pool, const struct zs_pool_config *pc, uint64_t seed)
{
	static const size_t sizes[] = { 1, 17, 200, 1000, 3000, 3624, 3625, 4096 };
	unsigned long h[sizeof(sizes) / sizeof(sizes[0])];
	static unsigned char buf[PAGE], local[PAGE];
	struct zs_pool_stats s;
	unsigned n = 0;

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fill(buf, sizes[i], seed + i);
		errno = 0;
		h[i] = zs_malloc_write(pool, buf, sizes[i]);
		if (!h[i]) {
			/* only a page limit makes memory run out here */
			CHECK(errno == ENOMEM && pc->max_pages != 0);
			continue;
		}
		n++;
	}
	zs_pool_stats(pool, &s);
	CHECK(s.objs_used == n);
	CHECK(pc->max_pages == 0 || s.pages_allocated <= pc->max_pages);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *p;

		if (!h[i])
			continue;
		fill(buf, sizes[i], seed + i);
		p = zs_obj_read_begin(pool, h[i], sizes[i], local);
		CHECK(p != NULL);
		CHECK(memcmp(p, buf, sizes[i]) == 0);
		zs_obj_read_end(pool, h[i], sizes[i], p);
	}
	(void)zs_compact(pool);
	(void)zs_defrag(pool);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (!h[i])
			continue;
		if (i & 1)
			zs_free_deferred(pool, h[i]);
		else
			zs_free(pool, h[i]);
	}
	zs_free_deferred_flush(pool);
	zs_pool_trim(pool);
	zs_pool_stats(pool, &s);
	CHECK(s.objs_used == 0 && s.pages_allocated == 0);
	CHECK(zs_get_total_pages(pool) == 0);
	CHECK(zs_pool_stats_dump(pool, ZS_STATS_TEXT, NULL, 0) > 0);
}

static void fuzz_pool(struct input *in, bool null_config)
{
	struct zs_pool_config pc;
	struct zs_pool *pool;
	char name[100];
	unsigned nlen;

	pool_config_from(in, &pc);
	/* names longer than the pool keeps (63 bytes) too */
	nlen = get8(in) % sizeof(name);
	memset(name, 'n', nlen);
	name[nlen] = '\0';
	errno = 0;
	pool = zs_create_pool_ex(name, null_config ? NULL : &pc);
	if (null_config) {
		CHECK(pool != NULL); /* NULL: the defaults */
		memset(&pc, 0, sizeof(pc));
	} else if (pool_config_bad(&pc)) {
		CHECK(pool == NULL && errno == EINVAL);
		return;
	} else if (!pool) {
		CHECK(errno == ENOMEM && pool_config_big(&pc));
		return;
	}
	exercise_pool(pool, &pc, get64(in));
	zs_destroy_pool(pool);
}

/* ------------------------------------------------------------------ */
/* Stores                                                              */

struct level_range {
	const char *name;
	int min, max;
};

/* include/zsram.h */
static const struct level_range levels[] = {
	{ "lz4", 1, 65537 },
	{ "lz4hc", 1, 12 },
	{ "zstd", -131072, 22 },
	{ "lzo", 1, 1 },
};

static const char *algs[8];
static char alg_names[128];
static unsigned nr_algs;

static bool algorithm_built_in(const char *name)
{
	for (unsigned i = 0; i < nr_algs; i++)
		if (strcmp(algs[i], name) == 0)
			return true;
	return false;
}

static bool level_ok(const char *name, int level)
{
	if (level == 0)
		return true;
	for (unsigned i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(levels[i].name, name) == 0)
			return level >= levels[i].min && level <= levels[i].max;
	return false;
}

/* A level: 0, small, raw, or one at or just past an end of name's range. */
static int get_level(struct input *in, const char *name)
{
	unsigned mode = get8(in) % 4;
	const struct level_range *r = NULL;

	for (unsigned i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (name && strcmp(levels[i].name, name) == 0)
			r = &levels[i];
	switch (mode) {
	case 0:
		return 0;
	case 1:
		return (int)(int8_t)get8(in);
	case 2:
		return (int)get32(in);
	default:
		if (!r)
			return (int)(int8_t)get8(in);
		switch (get8(in) % 4) {
		case 0:
			return r->min;
		case 1:
			return r->max;
		case 2:
			return r->min - 1;
		default:
			return r->max + 1;
		}
	}
}

static void exercise_store(struct zsram *zr, const struct zsram_config *cfg, uint64_t seed)
{
	static unsigned char page[PAGE], back[3 * PAGE], buf[3 * PAGE];
	uint64_t pages = cfg->disksize / PAGE, last = pages - 1;
	struct zsram_mm_stat m;
	struct zs_pool_stats ps;
	int rc;

	/* the first and last pages: incompressible, compressible, same-filled */
	fill(page, PAGE, seed);
	rc = zsram_write_page(zr, last, page);
	CHECK(rc == 0 || (rc == -ENOSPC && cfg->mem_limit));
	if (rc == 0) {
		CHECK(zsram_read_page(zr, last, back) == 0);
		CHECK(memcmp(page, back, PAGE) == 0);
	}
	for (size_t i = 0; i < PAGE; i++)
		page[i] = (unsigned char)("zsram"[i % 5] + (i % 300 == 0));
	rc = zsram_write_page(zr, 0, page);
	CHECK(rc == 0 || (rc == -ENOSPC && cfg->mem_limit));
	memset(buf, 0, sizeof(buf));
	if (rc == 0)
		memcpy(buf, page, PAGE);
	if (pages >= 3) {
		/* an unaligned write over three pages, then read back */
		ssize_t r;

		fill(page, 300, seed + 1);
		r = zsram_pwrite(zr, page, 300, PAGE - 100);
		CHECK(r == 300 || (cfg->mem_limit && (r == -ENOSPC || r == 100)));
		if (r > 0)
			memcpy(buf + PAGE - 100, page, (size_t)r);
		CHECK(zsram_pread(zr, back, 2 * PAGE, 0) == 2 * PAGE);
		CHECK(memcmp(back, buf, 2 * PAGE) == 0);
	}
	memset(page, 0, PAGE);
	CHECK(zsram_write_page(zr, last, page) == 0); /* same-filled: never ENOSPC */
	CHECK(zsram_write_page(zr, pages, page) == -ERANGE);
	CHECK(zsram_pread(zr, back, 1, cfg->disksize) == -ERANGE);
	zsram_mm_stat(zr, &m);
	CHECK(m.same_pages >= 1 && m.orig_data_size >= PAGE && m.orig_data_size <= 3 * PAGE);
	CHECK(m.mem_limit == (cfg->mem_limit + PAGE - 1) / PAGE * PAGE ||
	      (cfg->mem_limit > UINT64_MAX - PAGE)); /* rounded past 2^64: clamped */
	/* only the pages written: a discard walks every slot it is given */
	CHECK(zsram_discard(zr, 0, pages < 3 ? pages : 3) == 0);
	CHECK(zsram_discard(zr, last, 1) == 0);
	(void)zsram_compact(zr);
	zsram_mm_stat(zr, &m);
	CHECK(m.orig_data_size == 0 && m.compr_data_size == 0 && m.same_pages == 0);
	CHECK(m.huge_pages == 0);
	zs_pool_stats(zsram_pool(zr), &ps);
	CHECK(ps.objs_used == 0);
}

static void fuzz_store(struct input *in, bool null_config, bool with_pool)
{
	struct zsram_config cfg = { 0 };
	struct zs_pool_config pc;
	struct zsram *zr;
	char alg[16];
	unsigned sel, mode;
	bool bad = false, big = false;

	/* disk size */
	mode = get8(in) % 6;
	switch (mode) {
	case 0:
		cfg.disksize = 0;
		break;
	case 1:
		cfg.disksize = (uint64_t)(get8(in) + 1) * PAGE;
		break;
	case 2:
		cfg.disksize = (uint64_t)(get16(in) + 1) * PAGE;
		break;
	case 3:
		cfg.disksize = get64(in);
		break;
	case 4: /* not a multiple of 4096 */
		cfg.disksize = (uint64_t)get8(in) * PAGE + get16(in) % (PAGE - 1) + 1;
		break;
	default: /* large: terabytes of slots, mapped on demand */
		cfg.disksize = ((uint64_t)get8(in) + 1) << 40;
		break;
	}
	/* algorithm: built in, NULL (lz4), or raw bytes */
	sel = get8(in) % (nr_algs + 2);
	if (sel < nr_algs) {
		cfg.algorithm = algs[sel];
	} else if (sel == nr_algs) {
		cfg.algorithm = NULL;
	} else {
		unsigned n = get8(in) % sizeof(alg);

		for (unsigned i = 0; i < n; i++)
			alg[i] = (char)get8(in);
		alg[n] = '\0';
		cfg.algorithm = alg;
	}
	cfg.level = get_level(in, cfg.algorithm ? cfg.algorithm : "lz4");
	cfg.mem_limit = get_val(in);
	mode = get8(in);
	cfg.flags = mode < 0xf0 ? mode & 0x1f : get32(in); /* mostly known bits, + 0x10 */
	if (with_pool) {
		pool_config_from(in, &pc);
		cfg.pool = &pc;
	}

	if (cfg.disksize == 0 || cfg.disksize % PAGE || (cfg.flags & ~KNOWN_STORE))
		bad = true;
	{
		const char *name = cfg.algorithm ? cfg.algorithm : "lz4";

		if (!algorithm_built_in(name) || !level_ok(name, cfg.level))
			bad = true;
	}
	if (with_pool && pool_config_bad(&pc))
		bad = true;
	/* what may run out: slots (16 bytes a page, mapped on demand), the
	 * pool's reservation (mem_limit), deferred buffers */
	big = cfg.disksize > (1ull << 40) || cfg.mem_limit > (1ull << 40) ||
	      (with_pool && pool_config_big(&pc));

	errno = 0;
	zr = zsram_create(null_config ? NULL : &cfg);
	if (null_config) {
		CHECK(zr == NULL && errno == EINVAL);
		return;
	}
	if (bad) {
		CHECK(zr == NULL && errno == EINVAL);
		return;
	}
	if (!zr) {
		CHECK(errno == ENOMEM && big);
		return;
	}
	exercise_store(zr, &cfg, get64(in));
	zsram_destroy(zr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	unsigned b0;

	if (!nr_algs) {
		char *save = NULL;

		snprintf(alg_names, sizeof(alg_names), "%s", zsram_algorithms());
		for (char *t = strtok_r(alg_names, " ", &save); t && nr_algs < 8;
		     t = strtok_r(NULL, " ", &save))
			algs[nr_algs++] = t;
		CHECK(nr_algs > 0);
	}
	b0 = get8(&in);
	if (b0 & 1)
		fuzz_store(&in, b0 & 2, b0 & 4);
	else
		fuzz_pool(&in, b0 & 2);
	return 0;
}
