/* SPDX-License-Identifier: MIT */
/*
 * zsram unit tests: config and argument errors, unwritten pages, same-filled
 * and incompressible pages, every codec, discard, mem_limit (-ENOSPC with the
 * old page intact), pread/pwrite at unaligned offsets against a shadow copy,
 * mm_stat against recounts, recompression, thread exit, the pool settings
 * (config.pool, zsram_pool) and both free modes (deferred, ZSRAM_SYNC_FREE).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <lz4.h>
#include <lz4hc.h>
#include <zstd.h>

#include "zsmalloc.h"
#include "zsram.h"
#include "zsram_internal.h"
#include "zsram_test.h"

struct codec_case {
	const char *name;
	int level;
};

/* zsram_create refuses cfg as a bad config: NULL and errno EINVAL. */
static void assert_create_einval(const struct zsram_config *cfg)
{
	errno = 0;
	assert_null(zsram_create(cfg));
	assert_int_equal(errno, EINVAL);
}

static const struct codec_case codec_cases[] = {
	{"lz4", 0}, {"lz4", 8}, {"lz4hc", 0}, {"lz4hc", 12}, {"zstd", 0},
	{"zstd", -5}, {"zstd", 1}, {"zstd", 9}, {"lzo", 0},
};
#define NR_CODEC_CASES (sizeof(codec_cases) / sizeof(codec_cases[0]))

static bool codec_built(const char *name)
{
	char list[128], *tok, *save = NULL;

	snprintf(list, sizeof(list), "%s", zsram_algorithms());
	for (tok = strtok_r(list, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (strcmp(tok, name) == 0)
			return true;
	return false;
}

static struct zsram *make(uint64_t pages, const char *algo, int level, uint64_t mem_limit)
{
	struct zsram_config cfg = {
		.disksize = pages * PAGE, .algorithm = algo, .level = level, .mem_limit = mem_limit,
	};
	struct zsram *zr = zsram_create(&cfg);

	assert_non_null(zr);
	return zr;
}

static void check_valid(struct zsram *zr)
{
	struct zsram_mm_stat st;
	struct zsram_recount rc;

	assert_true(zsram_is_valid(zr));
	zsram_recount(zr, &rc);
	zsram_mm_stat(zr, &st);
	assert_int_equal(rc.bad_slots, 0);
	assert_int_equal(st.orig_data_size, rc.pages_stored * PAGE);
	assert_int_equal(st.compr_data_size, rc.compr_bytes);
	assert_int_equal(st.same_pages, rc.same_pages);
	assert_int_equal(st.huge_pages, rc.huge_pages);
	assert_true(st.huge_pages_since >= st.huge_pages);
	assert_true(st.mem_used_max >= st.mem_used_total);
	if (st.mem_limit)
		assert_true(st.mem_used_max <= st.mem_limit);
}

static void read_expect(struct zsram *zr, uint64_t index, const void *want)
{
	unsigned char got[PAGE];

	assert_int_equal(zsram_read_page(zr, index, got), 0);
	assert_memory_equal(got, want, PAGE);
}

static void read_expect_zero(struct zsram *zr, uint64_t index)
{
	static const unsigned char zero[PAGE];

	read_expect(zr, index, zero);
}

/* ------------------------------------------------------------------ */

static void test_bad_config(void **state)
{
	struct zsram_config cfg = {.disksize = 16 * PAGE};
	struct zsram *zr;

	(void)state;
	errno = 0;
	assert_null(zsram_create(NULL));
	assert_int_equal(errno, EINVAL);

	cfg.disksize = 0;
	assert_create_einval(&cfg);

	cfg.disksize = 16 * PAGE + 512;
	assert_create_einval(&cfg);

	cfg.disksize = 16 * PAGE;
	cfg.algorithm = "no-such-codec";
	assert_create_einval(&cfg);

	cfg.algorithm = "lz4hc";
	cfg.level = 13;
	assert_create_einval(&cfg);

	cfg.algorithm = "zstd";
	cfg.level = 23;
	assert_create_einval(&cfg);

	cfg.algorithm = "lz4";
	cfg.level = -1;
	assert_create_einval(&cfg);

	cfg.level = 0;
	cfg.flags = 1u << 31;
	assert_create_einval(&cfg);

	/* NULL algorithm: lz4; flags that exist */
	cfg.algorithm = NULL;
	cfg.flags = ZSRAM_NO_SPARE | ZSRAM_BG_COMPACT | ZSRAM_SYNC_FREE;
	zr = zsram_create(&cfg);
	assert_non_null(zr);
	zsram_destroy(zr);
	zsram_destroy(NULL);

	assert_non_null(strstr(zsram_algorithms(), "lz4"));
	assert_non_null(strstr(zsram_algorithms(), "zstd"));
}

static void test_bad_args(void **state)
{
	struct zsram *zr = make(8, "lz4", 0, 0);
	unsigned char page[PAGE] = {1};
	struct zsram_mm_stat st;

	(void)state;
	assert_int_equal(zsram_write_page(NULL, 0, page), -EINVAL);
	assert_int_equal(zsram_read_page(NULL, 0, page), -EINVAL);
	assert_int_equal(zsram_write_page(zr, 0, NULL), -EINVAL);
	assert_int_equal(zsram_read_page(zr, 0, NULL), -EINVAL);
	assert_int_equal(zsram_write_page(zr, 8, page), -ERANGE);
	assert_int_equal(zsram_read_page(zr, 8, page), -ERANGE);
	assert_int_equal(zsram_write_page(zr, UINT64_MAX, page), -ERANGE);
	assert_int_equal(zsram_read_page(zr, UINT64_MAX, page), -ERANGE);

	assert_int_equal(zsram_discard(NULL, 0, 1), -EINVAL);
	assert_int_equal(zsram_discard(zr, 8, 0), -ERANGE);
	assert_int_equal(zsram_discard(zr, 7, 2), -ERANGE);
	assert_int_equal(zsram_discard(zr, 1, UINT64_MAX), -ERANGE); /* would wrap */
	assert_int_equal(zsram_discard(zr, 7, 1), 0);
	assert_int_equal(zsram_discard(zr, 0, 0), 0);

	assert_int_equal(zsram_pwrite(NULL, page, 1, 0), -EINVAL);
	assert_int_equal(zsram_pread(NULL, page, 1, 0), -EINVAL);
	assert_int_equal(zsram_pwrite(zr, NULL, 1, 0), -EINVAL);
	assert_int_equal(zsram_pread(zr, NULL, 1, 0), -EINVAL);
	assert_int_equal(zsram_pwrite(zr, page, 2, 8 * PAGE - 1), -ERANGE);
	assert_int_equal(zsram_pread(zr, page, 2, 8 * PAGE - 1), -ERANGE);
	assert_int_equal(zsram_pwrite(zr, page, 1, 8 * PAGE), -ERANGE);
	assert_int_equal(zsram_pread(zr, page, 1, UINT64_MAX), -ERANGE);
	assert_int_equal(zsram_pwrite(zr, page, 16, UINT64_MAX - 8), -ERANGE);
	assert_int_equal(zsram_pread(zr, page, 0, 8 * PAGE), 0);
	assert_int_equal(zsram_pwrite(zr, page, 0, 3), 0);
	assert_int_equal(zsram_pwrite(zr, page, 1, 8 * PAGE - 1), 1);

	/* failed calls changed nothing */
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.orig_data_size, PAGE); /* the 1-byte pwrite */
	assert_int_equal(zsram_compact(NULL), 0);
	zsram_mm_stat(NULL, &st);
	assert_int_equal(st.orig_data_size, 0);
	zsram_mm_stat(zr, NULL);
	check_valid(zr);
	zsram_destroy(zr);
}

static void test_unwritten_reads_zero(void **state)
{
	struct zsram *zr = make(64, "lz4", 0, 0);
	unsigned char buf[3 * PAGE];
	struct zsram_mm_stat st;

	(void)state;
	for (uint64_t i = 0; i < 64; i++) {
		memset(buf, 0xaa, PAGE);
		read_expect_zero(zr, i);
	}
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(zsram_pread(zr, buf, sizeof(buf), 1000), (ssize_t)sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.orig_data_size, 0);
	assert_int_equal(st.compr_data_size, 0);
	assert_int_equal(st.same_pages, 0);
	assert_int_equal(st.huge_pages, 0);
	assert_int_equal(st.mem_used_total, 0);
	zsram_destroy(zr);
}

static void test_same_filled(void **state)
{
	static const uint64_t patterns[] = {
		0, 0xffffffffffffffffull, 0x0101010101010101ull, 0x0102030405060708ull,
		0xdeadbeef00000000ull, 0x00000000000000ffull,
	};
	const size_t n = sizeof(patterns) / sizeof(patterns[0]);
	struct zsram *zr = make(64, "lz4", 0, 0);
	unsigned char page[PAGE];
	struct zsram_mm_stat st;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < PAGE; k += 8)
			memcpy(page + k, &patterns[i], 8);
		assert_int_equal(zsram_write_page(zr, i, page), 0);
		read_expect(zr, i, page);
	}
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.same_pages, n);
	assert_int_equal(st.orig_data_size, n * PAGE);
	assert_int_equal(st.compr_data_size, 0);
	assert_int_equal(st.mem_used_total, 0); /* no pool memory at all */

	/* nearly same-filled: one byte differs, at either end or the middle */
	for (size_t where = 0; where < 3; where++) {
		size_t at = where == 0 ? 0 : where == 1 ? PAGE - 1 : PAGE / 2 + 3;

		memset(page, 0x5a, PAGE);
		page[at] ^= 1;
		assert_int_equal(zsram_write_page(zr, 40 + where, page), 0);
		read_expect(zr, 40 + where, page);
	}
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.same_pages, n);
	assert_int_equal(st.orig_data_size, (n + 3) * PAGE);
	assert_true(st.compr_data_size > 0);

	/* overwrite a same-filled page with another pattern, then with data */
	memset(page, 0x77, PAGE);
	assert_int_equal(zsram_write_page(zr, 0, page), 0);
	read_expect(zr, 0, page);
	zt_fill(page, PAGE, ZT_TEXT, 1);
	assert_int_equal(zsram_write_page(zr, 0, page), 0);
	read_expect(zr, 0, page);
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.same_pages, n - 1);
	check_valid(zr);

	/* unaligned source buffers */
	{
		unsigned char raw[PAGE + 8];

		for (size_t k = 0; k < PAGE; k++)
			raw[3 + k] = (unsigned char)(k % 8 + 1);
		assert_int_equal(zsram_write_page(zr, 50, raw + 3), 0);
		read_expect(zr, 50, raw + 3);
		assert_int_equal(zsram_read_page(zr, 50, raw + 1), 0);
		for (size_t k = 0; k < PAGE; k++)
			assert_int_equal(raw[1 + k], k % 8 + 1);
	}
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.same_pages, n);
	check_valid(zr);
	zsram_destroy(zr);
}

static void test_incompressible(void **state)
{
	(void)state;
	for (size_t c = 0; c < NR_CODEC_CASES; c++) {
		const struct codec_case *cc = &codec_cases[c];
		struct zsram *zr;
		unsigned char page[PAGE];
		struct zsram_mm_stat st;

		if (!codec_built(cc->name))
			continue;
		zr = make(32, cc->name, cc->level, 0);
		for (uint64_t i = 0; i < 16; i++) {
			zt_fill(page, PAGE, ZT_RANDOM, i);
			assert_int_equal(zsram_write_page(zr, i, page), 0);
		}
		zsram_mm_stat(zr, &st);
		assert_int_equal(st.huge_pages, 16);
		assert_int_equal(st.huge_pages_since, 16);
		assert_int_equal(st.compr_data_size, 16 * PAGE);
		assert_true(st.mem_used_total >= 16 * PAGE);
		for (uint64_t i = 0; i < 16; i++) {
			zt_fill(page, PAGE, ZT_RANDOM, i);
			read_expect(zr, i, page);
		}
		/* overwrite half with compressible data: huge_pages drops, _since stays */
		for (uint64_t i = 0; i < 8; i++) {
			zt_fill(page, PAGE, ZT_TEXT, i);
			assert_int_equal(zsram_write_page(zr, i, page), 0);
		}
		zsram_mm_stat(zr, &st);
		assert_int_equal(st.huge_pages, 8);
		assert_int_equal(st.huge_pages_since, 16);
		assert_true(st.compr_data_size < 16 * PAGE);
		for (uint64_t i = 0; i < 8; i++) {
			zt_fill(page, PAGE, ZT_TEXT, i);
			read_expect(zr, i, page);
		}
		check_valid(zr);
		zsram_destroy(zr);
	}
}

/* Every codec: mixed pages round-trip, overwritten, partly discarded. */
static void test_codecs_round_trip(void **state)
{
	enum { N = 256 };

	(void)state;
	for (size_t c = 0; c < NR_CODEC_CASES; c++) {
		const struct codec_case *cc = &codec_cases[c];
		unsigned char *shadow = malloc((size_t)N * PAGE);
		uint64_t seed = 42 + c;
		struct zsram *zr;

		assert_non_null(shadow);
		if (!codec_built(cc->name)) {
			/* not built in: refused as a bad config */
			struct zsram_config cfg = {.disksize = PAGE, .algorithm = cc->name};

			errno = 0;
			assert_null(zsram_create(&cfg));
			assert_int_equal(errno, EINVAL);
			free(shadow);
			continue;
		}
		zr = make(N, cc->name, cc->level, 0);
		for (int round = 0; round < 2; round++) {
			for (uint64_t i = 0; i < N; i++) {
				unsigned char *p = shadow + i * PAGE;

				zt_fill(p, PAGE, (enum zt_kind)zt_below(&seed, ZT_NR_KINDS),
					zt_rng(&seed));
				assert_int_equal(zsram_write_page(zr, i, p), 0);
			}
			for (uint64_t i = 0; i < N; i++)
				read_expect(zr, i, shadow + i * PAGE);
			check_valid(zr);
		}
		assert_int_equal(zsram_discard(zr, N / 4, N / 2), 0);
		memset(shadow + (size_t)N / 4 * PAGE, 0, (size_t)N / 2 * PAGE);
		for (uint64_t i = 0; i < N; i++)
			read_expect(zr, i, shadow + i * PAGE);
		check_valid(zr);
		zsram_destroy(zr);
		free(shadow);
	}
}

static void test_discard(void **state)
{
	enum { N = 512 };
	struct zsram *zr = make(N, "lz4", 0, 0);
	unsigned char page[PAGE];
	struct zsram_mm_stat st, st0;

	(void)state;
	for (uint64_t i = 0; i < N; i++) {
		zt_fill(page, PAGE, (enum zt_kind)(i % ZT_NR_KINDS), i);
		assert_int_equal(zsram_write_page(zr, i, page), 0);
	}
	zsram_mm_stat(zr, &st0);
	assert_int_equal(st0.orig_data_size, (uint64_t)N * PAGE);
	assert_int_equal(st0.same_pages, N / 4);
	assert_true(st0.huge_pages >= N / 4);

	/* one page, a range, a range with holes, an empty range */
	assert_int_equal(zsram_discard(zr, 0, 1), 0);
	read_expect_zero(zr, 0);
	assert_int_equal(zsram_discard(zr, 100, 100), 0);
	assert_int_equal(zsram_discard(zr, 150, 100), 0);
	assert_int_equal(zsram_discard(zr, 150, 100), 0);
	for (uint64_t i = 0; i < N; i++) {
		if (i == 0 || (i >= 100 && i < 250)) {
			read_expect_zero(zr, i);
		} else {
			zt_fill(page, PAGE, (enum zt_kind)(i % ZT_NR_KINDS), i);
			read_expect(zr, i, page);
		}
	}
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.orig_data_size, (uint64_t)(N - 151) * PAGE);
	check_valid(zr);

	/* everything: counters to zero; compaction returns the memory */
	assert_int_equal(zsram_discard(zr, 0, N), 0);
	zsram_compact(zr);
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.orig_data_size, 0);
	assert_int_equal(st.compr_data_size, 0);
	assert_int_equal(st.same_pages, 0);
	assert_int_equal(st.huge_pages, 0);
	assert_int_equal(st.huge_pages_since, st0.huge_pages_since);
	assert_int_equal(st.mem_used_total, 0);
	assert_int_equal(st.mem_used_max, st0.mem_used_max);
	check_valid(zr);
	for (uint64_t i = 0; i < N; i++)
		read_expect_zero(zr, i);
	zsram_destroy(zr);
}

/* mem_limit: -ENOSPC once the pool would pass it; the page keeps its old content. */
static void test_mem_limit(void **state)
{
	enum { N = 256, LIMIT_PAGES = 32 };
	struct zsram *zr = make(N, "lz4", 0, LIMIT_PAGES * PAGE - 100); /* rounds up */
	unsigned char page[PAGE], old[PAGE];
	struct zsram_mm_stat st;
	uint64_t i, stored;
	int err = 0;

	(void)state;
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.mem_limit, LIMIT_PAGES * PAGE);

	/* page 0 holds compressible data; then fill the pool with huge pages */
	zt_fill(old, PAGE, ZT_TEXT, 7);
	assert_int_equal(zsram_write_page(zr, 0, old), 0);
	for (i = 1; i < N; i++) {
		zt_fill(page, PAGE, ZT_RANDOM, i);
		err = zsram_write_page(zr, i, page);
		if (err)
			break;
	}
	assert_int_equal(err, -ENOSPC);
	stored = i - 1;
	/* page 0's zspage takes a few pages (up to a chain of 8) */
	assert_true(stored >= LIMIT_PAGES - 8 && stored < LIMIT_PAGES);
	zsram_mm_stat(zr, &st);
	assert_true(st.mem_used_total <= st.mem_limit);
	assert_true(st.mem_used_max <= st.mem_limit);
	assert_int_equal(st.huge_pages, stored);

	/* overwriting page 0 with an incompressible page is refused ... */
	zt_fill(page, PAGE, ZT_RANDOM, 9999);
	assert_int_equal(zsram_write_page(zr, 0, page), -ENOSPC);
	read_expect(zr, 0, old);
	/* ... so is a partial write that makes it incompressible ... */
	assert_int_equal(zsram_pwrite(zr, page, PAGE - 10, 5), -ENOSPC);
	read_expect(zr, 0, old);
	/* ... and so is a pwrite across two pages, leaving both intact */
	{
		unsigned char two[2 * PAGE];

		zt_fill(two, sizeof(two), ZT_RANDOM, 4242);
		assert_int_equal(zsram_pwrite(zr, two, PAGE, (stored + 1) * PAGE + 100), -ENOSPC);
		read_expect_zero(zr, stored + 1);
		read_expect_zero(zr, stored + 2);
		/* a short write: the first page fits (same-filled), the second does not */
		memset(two, 0x22, PAGE);
		assert_int_equal(zsram_pwrite(zr, two, 2 * PAGE, (stored + 1) * PAGE), PAGE);
		read_expect(zr, stored + 1, two);
		read_expect_zero(zr, stored + 2);
		assert_int_equal(zsram_discard(zr, stored + 1, 1), 0);
	}
	/* same-filled pages need no memory: always accepted */
	memset(page, 0x11, PAGE);
	assert_int_equal(zsram_write_page(zr, N - 1, page), 0);
	read_expect(zr, N - 1, page);
	check_valid(zr);

	/* discards are freed through the deferred path; a write at the limit
	 * finishes them and succeeds */
	assert_int_equal(zsram_discard(zr, 1, 4), 0);
	for (i = 0; i < 4; i++) {
		zt_fill(page, PAGE, ZT_RANDOM, 5000 + i);
		assert_int_equal(zsram_write_page(zr, stored + 1 + i, page), 0);
		read_expect(zr, stored + 1 + i, page);
	}
	zsram_mm_stat(zr, &st);
	assert_true(st.mem_used_max <= st.mem_limit);
	read_expect(zr, 0, old);
	check_valid(zr);
	zsram_destroy(zr);
}

/* pread/pwrite at random unaligned offsets and lengths against a shadow copy. */
static void test_pread_pwrite_shadow(void **state)
{
	enum { N = 48, OPS = 6000 };
	const size_t size = (size_t)N * PAGE;
	unsigned char *shadow = calloc(1, size), *buf = malloc(size), *got = malloc(size);
	struct zsram *zr = make(N, "lz4", 0, 0);
	uint64_t seed = 1234;

	(void)state;
	assert_non_null(shadow);
	assert_non_null(buf);
	assert_non_null(got);
	for (int op = 0; op < OPS; op++) {
		unsigned what = zt_below(&seed, 10);
		size_t off = zt_below(&seed, (unsigned)size), len;

		/* mostly short, sometimes spanning several pages */
		len = zt_below(&seed, 4) ? zt_below(&seed, 300) + 1 : zt_below(&seed, 3 * PAGE) + 1;
		if (len > size - off)
			len = size - off;
		if (what < 5) {
			zt_fill(buf, len, (enum zt_kind)zt_below(&seed, ZT_NR_KINDS), zt_rng(&seed));
			if (zt_below(&seed, 8) == 0)
				memset(buf, 0, len); /* zeros make pages same-filled again */
			assert_int_equal(zsram_pwrite(zr, buf, len, off), (ssize_t)len);
			memcpy(shadow + off, buf, len);
		} else if (what < 9) {
			memset(got, 0xcc, len);
			assert_int_equal(zsram_pread(zr, got, len, off), (ssize_t)len);
			assert_memory_equal(got, shadow + off, len);
		} else {
			uint64_t first = off / PAGE, n = zt_below(&seed, 4);

			if (n > N - first)
				n = N - first;
			assert_int_equal(zsram_discard(zr, first, n), 0);
			memset(shadow + first * PAGE, 0, n * PAGE);
		}
		if (op % 1000 == 999) {
			assert_int_equal(zsram_pread(zr, got, size, 0), (ssize_t)size);
			assert_memory_equal(got, shadow, size);
			check_valid(zr);
		}
	}
	/* page-aligned whole pages through pread, unaligned buffer */
	assert_int_equal(zsram_pread(zr, got + 1, 2 * PAGE, PAGE), 2 * PAGE);
	assert_memory_equal(got + 1, shadow + PAGE, 2 * PAGE);
	zsram_destroy(zr);
	free(shadow);
	free(buf);
	free(got);
}

/* Random writes, partial writes and discards; mm_stat against the shadow and a recount. */
static void test_mm_stat_consistency(void **state)
{
	enum { N = 300, OPS = 4000 };
	unsigned char *shadow = calloc(N, PAGE), page[PAGE];
	bool stored[N] = {false};
	struct zsram *zr = make(N, "zstd", 1, 0);
	struct zsram_mm_stat st;
	struct zsram_recount rc;
	uint64_t seed = 99, same;
	size_t nstored;

	(void)state;
	assert_non_null(shadow);
	for (int op = 0; op < OPS; op++) {
		uint64_t i = zt_below(&seed, N);
		unsigned what = zt_below(&seed, 10);

		if (what < 6) {
			zt_fill(shadow + i * PAGE, PAGE, (enum zt_kind)zt_below(&seed, ZT_NR_KINDS),
				zt_rng(&seed));
			assert_int_equal(zsram_write_page(zr, i, shadow + i * PAGE), 0);
			stored[i] = true;
		} else if (what < 8) {
			size_t off = zt_below(&seed, PAGE), len = zt_below(&seed, PAGE - off) + 1;

			zt_fill(page, len, (enum zt_kind)zt_below(&seed, ZT_NR_KINDS), zt_rng(&seed));
			assert_int_equal(zsram_pwrite(zr, page, len, i * PAGE + off), (ssize_t)len);
			memcpy(shadow + i * PAGE + off, page, len);
			stored[i] = true;
		} else {
			assert_int_equal(zsram_discard(zr, i, 1), 0);
			memset(shadow + i * PAGE, 0, PAGE);
			stored[i] = false;
		}
	}
	/* recount from the shadow alone, with the codec itself: a page is
	 * huge when zstd -1 does not get it below zs_huge_class_size() */
	size_t huge_size = zs_huge_class_size(zsram_pool(zr)), huge = 0;
	uint64_t compr = 0;
	static unsigned char cbuf[2 * PAGE];

	same = 0;
	nstored = 0;
	for (size_t i = 0; i < N; i++) {
		read_expect(zr, i, shadow + i * PAGE);
		nstored += stored[i];
		if (!stored[i])
			continue;
		if (zt_same_filled(shadow + i * PAGE)) {
			same++;
			continue;
		}
		size_t n = ZSTD_compress(cbuf, sizeof(cbuf), shadow + i * PAGE, PAGE, 1);
		assert_false(ZSTD_isError(n));
		huge += n >= huge_size;
		compr += n >= huge_size ? PAGE : n;
	}
	zsram_mm_stat(zr, &st);
	zsram_recount(zr, &rc);
	assert_int_equal(st.orig_data_size, nstored * PAGE);
	assert_int_equal(st.same_pages, same);
	assert_int_equal(rc.same_pages, same);
	assert_int_equal(st.compr_data_size, rc.compr_bytes);
	assert_int_equal(st.huge_pages, rc.huge_pages);
	assert_int_equal(st.huge_pages, huge);
	assert_int_equal(st.compr_data_size, compr);
	assert_true(st.huge_pages > 0);
	assert_true(st.mem_used_total >= st.compr_data_size);
	assert_true(st.mem_used_max >= st.mem_used_total);
	assert_true(st.huge_pages_since >= st.huge_pages);
	check_valid(zr);

	/* compaction frees pages and counts them */
	for (size_t i = 0; i < N; i += 2)
		assert_int_equal(zsram_discard(zr, i, 1), 0);
	{
		unsigned long freed = zsram_compact(zr);
		struct zsram_mm_stat st2;

		zsram_mm_stat(zr, &st2);
		assert_int_equal(st2.pages_compacted, st.pages_compacted + freed);
		assert_true(st2.mem_used_total <= st.mem_used_total);
	}
	for (size_t i = 1; i < N; i += 2)
		read_expect(zr, i, shadow + i * PAGE);
	check_valid(zr);
	zsram_destroy(zr);
	free(shadow);
}

static void test_recompress(void **state)
{
	enum { N = 96 };
	struct zsram *zr = make(N, "lz4", 0, 0);
	unsigned char page[PAGE];
	struct zsram_mm_stat st0, st;
	struct zsram_recount rc;
	long n;

	(void)state;
	/* thirds: nibble noise (huge for lz4, not for zstd), random, text */
	for (uint64_t i = 0; i < N; i++) {
		zt_fill(page, PAGE, i % 3 == 0 ? ZT_NIBBLE : i % 3 == 1 ? ZT_RANDOM : ZT_TEXT, i);
		assert_int_equal(zsram_write_page(zr, i, page), 0);
	}
	zsram_mm_stat(zr, &st0);
	assert_int_equal(st0.huge_pages, 2 * N / 3);

	assert_int_equal(zsram_recompress(zr, ZSRAM_RECOMP_HUGE, 0), -EINVAL); /* none set */
	assert_int_equal(zsram_set_recomp_algorithm(zr, "nope", 0), -EINVAL);
	assert_int_equal(zsram_set_recomp_algorithm(zr, "zstd", 99), -EINVAL);
	assert_int_equal(zsram_set_recomp_algorithm(NULL, "zstd", 0), -EINVAL);
	assert_int_equal(zsram_set_recomp_algorithm(zr, "zstd", 0), 0);
	assert_int_equal(zsram_set_recomp_algorithm(zr, "lz4hc", 0), -EBUSY);
	assert_int_equal(zsram_recompress(zr, 1u << 7, 0), -EINVAL);

	n = zsram_recompress(zr, ZSRAM_RECOMP_HUGE, 0);
	assert_int_equal(n, N / 3);
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.huge_pages, N / 3);
	assert_int_equal(st.huge_pages_since, st0.huge_pages_since);
	assert_true(st.compr_data_size < st0.compr_data_size);
	zsram_recount(zr, &rc);
	assert_int_equal(rc.recompressed, N / 3);
	check_valid(zr);
	/* the random pages were marked: nothing left to gain */
	assert_int_equal(zsram_recompress(zr, ZSRAM_RECOMP_HUGE, 0), 0);

	/* threshold mode: zstd beats lz4 on the text pages */
	n = zsram_recompress(zr, 0, 64);
	assert_true(n > 0 && n <= N / 3);
	for (uint64_t i = 0; i < N; i++) {
		zt_fill(page, PAGE, i % 3 == 0 ? ZT_NIBBLE : i % 3 == 1 ? ZT_RANDOM : ZT_TEXT, i);
		read_expect(zr, i, page);
	}
	/* partial writes of recompressed pages decode with the secondary codec */
	memset(page, 0x3c, 100);
	assert_int_equal(zsram_pwrite(zr, page, 100, 0 * PAGE + 50), 100);
	zt_fill(page, PAGE, ZT_NIBBLE, 0);
	memset(page + 50, 0x3c, 100);
	read_expect(zr, 0, page);
	check_valid(zr);
	/* a written page is a primary-codec page again */
	zsram_recount(zr, &rc);
	assert_true(rc.recompressed < (uint64_t)(N / 3 + n));
	zsram_destroy(zr);
}

/*
 * Recompression replaces a page only when the object zs_malloc allocates
 * for it -- payload plus ZS_OBJ_HEADER_SIZE -- falls in a smaller class.
 * The lengths are worked out here with lz4 and lz4hc themselves, so the
 * pages that gain are known exactly; comparing the payloads' classes
 * (the header left out) also replaces pages whose object stays in its
 * class, and the count differs.
 */
/* Text, then random bytes from a point that varies: lz4hc gains a little,
 * often less than a class, over lz4. */
static void gain_page(unsigned char *page, uint64_t i)
{
	size_t text = 512 + (size_t)(i * 37 % 3000);

	zt_fill(page, PAGE, ZT_TEXT, i * 7919);
	zt_fill(page + text, PAGE - text, ZT_RANDOM, i);
}

static void test_recompress_gain(void **state)
{
	enum { N = 768, HC_LEVEL = 3 };
	struct zsram *zr = make(N, "lz4", 0, 0);
	struct zs_pool *pool = zsram_pool(zr);
	size_t huge = zs_huge_class_size(pool);
	static unsigned char page[PAGE], out[LZ4_COMPRESSBOUND(PAGE)];
	long want = 0, header_blind = 0;
	struct zsram_recount rc;

	(void)state;
	for (uint64_t i = 0; i < N; i++) {
		int old, hc;
		unsigned stored;

		gain_page(page, i);
		assert_int_equal(zsram_write_page(zr, i, page), 0);
		old = LZ4_compress_default((const char *)page, (char *)out, PAGE, sizeof(out));
		hc = LZ4_compress_HC((const char *)page, (char *)out, PAGE, sizeof(out), HC_LEVEL);
		assert_true(old > 0 && hc > 0);
		stored = (size_t)old >= huge ? PAGE : (unsigned)old;
		if ((size_t)hc < huge && zs_lookup_class_index(pool, (unsigned)hc + ZS_OBJ_HEADER_SIZE) <
						 zs_lookup_class_index(pool, stored + ZS_OBJ_HEADER_SIZE))
			want++;
		if ((size_t)hc < huge && hc < (int)stored &&
		    zs_lookup_class_index(pool, (unsigned)hc) < zs_lookup_class_index(pool, stored))
			header_blind++;
	}
	print_message("pages that gain a class: %ld (%ld by the payload alone)\n", want,
		      header_blind);
	/* the data must tell the two rules apart, or the test proves nothing */
	assert_true(want > 0 && want != header_blind);
	assert_int_equal(zsram_set_recomp_algorithm(zr, "lz4hc", HC_LEVEL), 0);
	assert_int_equal(zsram_recompress(zr, 0, 0), want);
	zsram_recount(zr, &rc);
	assert_int_equal(rc.recompressed, (uint64_t)want);
	for (uint64_t i = 0; i < N; i++) {
		gain_page(page, i);
		read_expect(zr, i, page);
	}
	check_valid(zr);
	zsram_destroy(zr);
}

/* ------------------------------------------------------------------ */
/* Pool settings and free modes                                        */

/* Objects the slots hold (compressed and huge pages), by recount. */
static uint64_t slot_objects(struct zsram *zr)
{
	struct zsram_recount rc;

	zsram_recount(zr, &rc);
	return rc.pages_stored - rc.same_pages;
}

static struct zsram *make_cfg(uint64_t pages, uint64_t mem_limit, unsigned flags,
			      const struct zs_pool_config *pc)
{
	struct zsram_config cfg = {
		.disksize = pages * PAGE, .mem_limit = mem_limit, .flags = flags, .pool = pc,
	};
	struct zsram *zr = zsram_create(&cfg);

	assert_non_null(zr);
	assert_non_null(zsram_pool(zr));
	return zr;
}

/* A page lz4 compresses to about 3420 bytes: huge with chain 4, not with 8. */
static void fill_3400(unsigned char *page, uint64_t seed)
{
	zt_fill(page, 3400, ZT_RANDOM, seed);
	memset(page + 3400, 0, PAGE - 3400);
}

/* Writes n text pages, discards them all and waits for the frees; *ps then
 * holds the pool's figures, and no object is left. */
static void fill_discard_all(struct zsram *zr, uint64_t n, struct zs_pool_stats *ps)
{
	unsigned char page[PAGE];

	for (uint64_t i = 0; i < n; i++) {
		zt_fill(page, PAGE, ZT_TEXT, i);
		assert_int_equal(zsram_write_page(zr, i, page), 0);
	}
	assert_int_equal(zsram_discard(zr, 0, n), 0);
	zs_free_deferred_flush(zsram_pool(zr));
	zs_pool_stats(zsram_pool(zr), ps);
	assert_int_equal(ps->objs_used, 0);
}

/*
 * A page of 'len' random bytes, then zeros, that lz4 compresses to exactly
 * 'target' bytes; false when no prefix length gives it.
 */
static bool fill_lz4_exact(unsigned char *page, size_t target)
{
	static unsigned char cbuf[2 * PAGE];

	for (size_t len = target / 2; len < PAGE; len++) {
		zt_fill(page, len, ZT_RANDOM, 7);
		memset(page + len, 0, PAGE - len);
		int n = LZ4_compress_default((const char *)page, (char *)cbuf, PAGE,
					     (int)sizeof(cbuf));
		if (n == (int)target)
			return true;
		if (n > (int)target)
			break;
	}
	return false;
}

/*
 * The huge threshold to the byte: a page lz4 compresses to
 * zs_huge_class_size() - 1 bytes is stored compressed, one that compresses
 * to zs_huge_class_size() is stored raw (lz4 compresses into room for its
 * worst case and the length is checked afterwards).
 */
static void test_huge_boundary(void **state)
{
	struct zsram *zr = make(8, "lz4", 0, 0);
	size_t hs = zs_huge_class_size(zsram_pool(zr));
	unsigned char below[PAGE], at[PAGE];
	struct zsram_mm_stat st;

	(void)state;
	assert_true(fill_lz4_exact(below, hs - 1));
	assert_true(fill_lz4_exact(at, hs));
	assert_int_equal(zsram_write_page(zr, 0, below), 0);
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.huge_pages, 0);
	assert_int_equal(st.compr_data_size, hs - 1);
	assert_int_equal(zsram_write_page(zr, 1, at), 0);
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.huge_pages, 1);
	assert_int_equal(st.compr_data_size, hs - 1 + PAGE);
	read_expect(zr, 0, below);
	read_expect(zr, 1, at);
	check_valid(zr);
	zsram_destroy(zr);
}

static void test_pool_config(void **state)
{
	struct zs_pool_config pc = {.chain_size = 4};
	struct zsram_config bad = {.disksize = 16 * PAGE, .pool = &pc};
	unsigned char page[PAGE];
	struct zsram_mm_stat st;
	struct zs_class_stats cs;
	struct zs_pool_stats ps;
	struct zsram *zr;

	(void)state;
	assert_null(zsram_pool(NULL));

	/* defaults: chain 8 */
	zr = make_cfg(64, 0, 0, NULL);
	assert_int_equal(zs_huge_class_size(zsram_pool(zr)), 3625);
	fill_3400(page, 1);
	assert_int_equal(zsram_write_page(zr, 0, page), 0);
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.huge_pages, 0);
	zsram_destroy(zr);

	/* chain 4: the pool's table, and zsram's huge threshold, follow */
	zr = make_cfg(64, 0, 0, &pc);
	assert_int_equal(zs_huge_class_size(zsram_pool(zr)), 3257);
	for (unsigned i = 0; i < zs_class_count(zsram_pool(zr)); i++) {
		assert_int_equal(zs_class_stats(zsram_pool(zr), i, &cs), 0);
		assert_true(cs.pages_per_zspage >= 1 && cs.pages_per_zspage <= 4);
	}
	fill_3400(page, 1);
	assert_int_equal(zsram_write_page(zr, 0, page), 0);
	read_expect(zr, 0, page);
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.huge_pages, 1);
	assert_int_equal(st.compr_data_size, PAGE);
	check_valid(zr);
	zsram_destroy(zr);

	/* bad values: zs_create_pool_ex's EINVAL */
	pc.chain_size = 17;
	assert_create_einval(&bad);
	pc.chain_size = 0;
	pc.flags = 1u << 31;
	assert_create_einval(&bad);

	/* max_pages is mem_limit's: ignored when given here ... */
	pc = (struct zs_pool_config){.max_pages = 2};
	zr = make_cfg(32, 0, 0, &pc);
	for (uint64_t i = 0; i < 16; i++) {
		zt_fill(page, PAGE, ZT_RANDOM, i);
		assert_int_equal(zsram_write_page(zr, i, page), 0);
	}
	zsram_destroy(zr);
	/* ... and mem_limit still holds */
	pc.max_pages = 1000;
	zr = make_cfg(32, 8 * PAGE, 0, &pc);
	{
		uint64_t i;
		int err = 0;

		for (i = 0; i < 32 && !err; i++) {
			zt_fill(page, PAGE, ZT_RANDOM, i);
			err = zsram_write_page(zr, i, page);
		}
		assert_int_equal(err, -ENOSPC);
		assert_int_equal(i - 1, 8);
	}
	zsram_destroy(zr);

	/* NO_SPARE: the last emptied zspage is freed as well */
	for (int no_spare = 0; no_spare < 2; no_spare++) {
		pc = (struct zs_pool_config){.flags = no_spare ? ZS_POOL_NO_SPARE : 0};
		zr = make_cfg(64, 0, 0, &pc);
		fill_discard_all(zr, 64, &ps);
		if (no_spare) {
			assert_int_equal(zs_get_total_pages(zsram_pool(zr)), 0);
		} else {
			assert_true(ps.pages_spare > 0);
			assert_int_equal(zs_get_total_pages(zsram_pool(zr)), ps.pages_spare);
		}
		zsram_destroy(zr);
	}

	/* deferred_*: buffers of 4 handles and no spares, so only the first 4
	 * of 64 discards are queued; the rest free synchronously */
	pc = (struct zs_pool_config){.deferred_buffer_size = 4,
				     .deferred_spares = ZS_DEFERRED_NO_SPARES};
	zr = make_cfg(64, 0, 0, &pc);
	fill_discard_all(zr, 64, &ps);
	assert_int_equal(ps.deferred_queued, 4);
	assert_int_equal(ps.deferred_sync, 60);
	zsram_destroy(zr);

	/* the ZSRAM_* flags add to the pool's */
	pc = (struct zs_pool_config){.chain_size = 4};
	zr = make_cfg(16, 0, ZSRAM_NO_SPARE | ZSRAM_SYNC_FREE, &pc);
	assert_int_equal(zs_huge_class_size(zsram_pool(zr)), 3257);
	zt_fill(page, PAGE, ZT_TEXT, 5);
	assert_int_equal(zsram_write_page(zr, 3, page), 0);
	assert_int_equal(zsram_discard(zr, 3, 1), 0);
	assert_int_equal(zs_get_total_pages(zsram_pool(zr)), 0); /* sync, no spare */
	zsram_destroy(zr);
}

/*
 * Random writes, partial writes, discards and recompression in one free
 * mode: mm_stat equals a recount after every step; the pool holds exactly
 * the slots' objects (sync) or those plus the queued ones (deferred: exact
 * after a flush); discarding everything empties the counters at once and
 * the pool after the flush.
 */
static void free_mode_run(unsigned flags)
{
	enum { N = 200, OPS = 3000 };
	unsigned char *shadow = calloc(N, PAGE), page[PAGE];
	struct zsram *zr = make_cfg(N, 0, flags, NULL);
	struct zs_pool *pool = zsram_pool(zr);
	bool sync = flags & ZSRAM_SYNC_FREE;
	struct zsram_mm_stat st;
	struct zs_pool_stats ps;
	uint64_t seed = 77;

	assert_non_null(shadow);
	assert_int_equal(zsram_set_recomp_algorithm(zr, "zstd", 0), 0);
	for (int op = 0; op < OPS; op++) {
		uint64_t i = zt_below(&seed, N);
		unsigned what = zt_below(&seed, 20);

		if (what < 10) {
			zt_fill(shadow + i * PAGE, PAGE, (enum zt_kind)zt_below(&seed, ZT_NR_KINDS),
				zt_rng(&seed));
			assert_int_equal(zsram_write_page(zr, i, shadow + i * PAGE), 0);
		} else if (what < 15) {
			size_t off = zt_below(&seed, PAGE), len = zt_below(&seed, PAGE - off) + 1;
			enum zt_kind kind = (enum zt_kind)zt_below(&seed, ZT_NR_KINDS);

			zt_fill(page, len, kind, zt_rng(&seed));
			assert_int_equal(zsram_pwrite(zr, page, len, i * PAGE + off), (ssize_t)len);
			memcpy(shadow + i * PAGE + off, page, len);
		} else if (what < 19) {
			uint64_t n = zt_below(&seed, 4) + 1;

			if (n > N - i)
				n = N - i;
			assert_int_equal(zsram_discard(zr, i, n), 0);
			memset(shadow + i * PAGE, 0, n * PAGE);
		} else {
			assert_true(zsram_recompress(zr, zt_below(&seed, 2) ? ZSRAM_RECOMP_HUGE : 0,
						     zt_below(&seed, 2000)) >= 0);
		}
		/* exact at every step, whatever the free mode */
		assert_true(zsram_is_valid(zr));
		if (op % 100 == 99) {
			check_valid(zr);
			zs_pool_stats(pool, &ps);
			if (sync) {
				assert_int_equal(ps.objs_used, slot_objects(zr));
				assert_int_equal(ps.deferred_queued, 0);
			} else {
				assert_true(ps.objs_used >= slot_objects(zr));
				zs_free_deferred_flush(pool);
				zs_pool_stats(pool, &ps);
				assert_int_equal(ps.objs_used, slot_objects(zr));
			}
		}
	}
	for (uint64_t i = 0; i < N; i++)
		read_expect(zr, i, shadow + i * PAGE);
	zs_pool_stats(pool, &ps);
	if (sync)
		assert_int_equal(ps.deferred_queued + ps.deferred_sync, 0);
	else
		assert_true(ps.deferred_queued > 0); /* overwrites and discards went there */

	/* discard everything: the counters drop at once ... */
	assert_int_equal(zsram_discard(zr, 0, N), 0);
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.orig_data_size, 0);
	assert_int_equal(st.compr_data_size, 0);
	assert_int_equal(st.same_pages, 0);
	assert_int_equal(st.huge_pages, 0);
	check_valid(zr);
	/* ... and the pool is empty once the queued frees are done */
	zs_free_deferred_flush(pool);
	zs_pool_stats(pool, &ps);
	assert_int_equal(ps.objs_used, 0);
	assert_int_equal(ps.pages_allocated, ps.pages_spare);
	zs_pool_trim(pool);
	assert_int_equal(zs_get_total_pages(pool), 0);
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.mem_used_total, 0);
	for (uint64_t i = 0; i < N; i++)
		read_expect_zero(zr, i);
	zsram_destroy(zr);
	free(shadow);
}

static void test_free_deferred_default(void **state)
{
	(void)state;
	free_mode_run(0);
}

static void test_free_sync(void **state)
{
	(void)state;
	free_mode_run(ZSRAM_SYNC_FREE);
}

/*
 * At mem_limit, overwrites keep working in both modes: the write that
 * finds the pool full finishes the queued frees of earlier overwrites and
 * tries again.
 */
static void test_mem_limit_overwrite(void **state)
{
	enum { N = 64, LIMIT_PAGES = 16 };
	unsigned char page[PAGE];

	(void)state;
	for (int sync = 0; sync < 2; sync++) {
		unsigned flags = sync ? ZSRAM_SYNC_FREE : 0;
		struct zsram *zr = make_cfg(N, LIMIT_PAGES * PAGE, flags, NULL);
		struct zsram_mm_stat st;
		uint64_t i, stored;
		int err = 0;

		for (i = 0; i < N; i++) {
			zt_fill(page, PAGE, ZT_RANDOM, i);
			err = zsram_write_page(zr, i, page);
			if (err)
				break;
		}
		assert_int_equal(err, -ENOSPC);
		stored = i;
		assert_int_equal(stored, LIMIT_PAGES);
		/* one page of room: every overwrite needs it before the old goes */
		assert_int_equal(zsram_discard(zr, stored - 1, 1), 0);
		stored--;
		for (int round = 0; round < 3; round++)
			for (i = 0; i < stored; i++) {
				zt_fill(page, PAGE, ZT_RANDOM, 1000 * (round + 1) + i);
				assert_int_equal(zsram_write_page(zr, i, page), 0);
			}
		for (i = 0; i < stored; i++) {
			zt_fill(page, PAGE, ZT_RANDOM, 3000 + i);
			read_expect(zr, i, page);
		}
		zsram_mm_stat(zr, &st);
		assert_int_equal(st.huge_pages, stored);
		assert_int_equal(st.compr_data_size, stored * PAGE);
		assert_true(st.mem_used_max <= st.mem_limit);
		check_valid(zr);
		zsram_destroy(zr);
	}
}

static void *thread_rw(void *arg)
{
	struct zsram *zr = arg;
	unsigned char page[PAGE], got[PAGE];

	for (uint64_t i = 0; i < 16; i++) {
		zt_fill(page, PAGE, ZT_TEXT, i + 1000);
		if (zsram_write_page(zr, i, page) || zsram_read_page(zr, i, got) ||
		    memcmp(page, got, PAGE))
			return (void *)1;
	}
	return NULL;
}

/* Threads that used codecs exit: their scratch state is freed (ASan checks leaks). */
static void test_thread_exit(void **state)
{
	struct zsram *zr = make(16, "zstd", 0, 0);

	(void)state;
	for (int k = 0; k < 8; k++) {
		pthread_t th;
		void *ret;

		assert_int_equal(pthread_create(&th, NULL, thread_rw, zr), 0);
		assert_int_equal(pthread_join(th, &ret), 0);
		assert_null(ret);
	}
	check_valid(zr);
	zsram_destroy(zr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_unwritten_reads_zero),
		cmocka_unit_test(test_same_filled),
		cmocka_unit_test(test_incompressible),
		cmocka_unit_test(test_codecs_round_trip),
		cmocka_unit_test(test_discard),
		cmocka_unit_test(test_mem_limit),
		cmocka_unit_test(test_pread_pwrite_shadow),
		cmocka_unit_test(test_mm_stat_consistency),
		cmocka_unit_test(test_recompress),
		cmocka_unit_test(test_recompress_gain),
		cmocka_unit_test(test_thread_exit),
		cmocka_unit_test(test_pool_config),
		cmocka_unit_test(test_huge_boundary),
		cmocka_unit_test(test_free_deferred_default),
		cmocka_unit_test(test_free_sync),
		cmocka_unit_test(test_mem_limit_overwrite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
