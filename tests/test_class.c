/* SPDX-License-Identifier: MIT */
/*
 * The size-class table must equal the Linux kernel's for chain sizes 4, 8
 * and 16. The reference below is written from the kernel's definition
 * (mm/zsmalloc.c: calculate_zspage_chain_size, can_merge, huge_class_size),
 * independently of src/class.c, plus values known from kernels in the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "zsmalloc.h"

#define NR_LOGICAL 255

struct ref_class {
	unsigned size, pages, objs, canonical; /* canonical: logical index it merges into */
};

struct ref_table {
	struct ref_class c[NR_LOGICAL];
	unsigned nr_distinct;
	size_t huge_class_size;
};

/* The kernel's table, from its definition. */
static void ref_build(struct ref_table *t, unsigned chain)
{
	int prev = -1;

	t->nr_distinct = 0;
	t->huge_class_size = 0;
	for (int i = NR_LOGICAL - 1; i >= 0; i--) {
		unsigned size = 32 + 16 * (unsigned)i, pages = 1, waste_min = ~0u;

		if (size > 4096)
			size = 4096;
		if (size & (size - 1)) {
			for (unsigned k = 1; k <= chain; k++) {
				unsigned waste = (k * 4096) % size;
				if (waste < waste_min) {
					waste_min = waste;
					pages = k;
				}
			}
		}
		t->c[i].size = size;
		t->c[i].pages = pages;
		t->c[i].objs = pages * 4096 / size;
		if (pages != 1 && t->c[i].objs != 1 && !t->huge_class_size)
			t->huge_class_size = size - 7;
		if (prev >= 0 && t->c[prev].pages == pages && t->c[prev].objs == t->c[i].objs) {
			t->c[i].canonical = (unsigned)prev;
			continue;
		}
		t->c[i].canonical = (unsigned)i;
		prev = i;
		t->nr_distinct++;
	}
}

static void check_chain(unsigned chain)
{
	struct zs_pool_config cfg = { .chain_size = chain };
	struct zs_pool *pool = zs_create_pool_ex("classes", &cfg);
	struct ref_table ref;
	unsigned seen = 0;

	assert_non_null(pool);
	ref_build(&ref, chain);
	assert_int_equal(zs_class_count(pool), ref.nr_distinct);
	assert_int_equal(zs_huge_class_size(pool), ref.huge_class_size);

	for (unsigned k = 0; k < zs_class_count(pool); k++) {
		struct zs_class_stats cs;
		const struct ref_class *r;

		assert_int_equal(zs_class_stats(pool, k, &cs), 0);
		assert_true(cs.index < NR_LOGICAL);
		r = &ref.c[cs.index];
		assert_int_equal(r->canonical, cs.index);
		assert_int_equal(cs.size, r->size);
		assert_int_equal(cs.pages_per_zspage, r->pages);
		assert_int_equal(cs.objs_per_zspage, r->objs);
		seen++;
	}
	assert_int_equal(seen, ref.nr_distinct);
	assert_int_equal(zs_class_stats(pool, zs_class_count(pool), &(struct zs_class_stats){ 0 }),
			 -2 /* -ENOENT */);

	/* every size maps to the canonical class of its logical class */
	for (unsigned size = 1; size <= 4096; size++) {
		unsigned logical = size <= 32 ? 0 : (size - 32 + 15) / 16;
		assert_int_equal(zs_lookup_class_index(pool, size), ref.c[logical].canonical);
	}
	zs_destroy_pool(pool);
}

static void test_chain4(void **state)
{
	(void)state;
	check_chain(4);
}

static void test_chain8(void **state)
{
	(void)state;
	check_chain(8);
}

static void test_chain16(void **state)
{
	(void)state;
	check_chain(16);
}

/* Values seen on real kernels, so the reference itself is anchored. */
static void test_known_values(void **state)
{
	struct ref_table ref;
	struct zs_pool *pool = zs_create_pool("default");

	(void)state;
	assert_int_equal(zs_huge_class_size(pool), 3625); /* CONFIG_ZSMALLOC_CHAIN_SIZE=8 */
	zs_destroy_pool(pool);
	ref_build(&ref, 4);
	/* chain 4 (kernels before 6.3): the largest non-huge class is 3264 */
	assert_int_equal(ref.huge_class_size + 7, 3264);
	/* 4096 is always one object on one page */
	assert_int_equal(ref.c[254].pages, 1);
	assert_int_equal(ref.c[254].objs, 1);
}

static void test_bad_config(void **state)
{
	struct zs_pool_config cfg = { .chain_size = 17 };

	(void)state;
	assert_null(zs_create_pool_ex("bad", &cfg));
	cfg.chain_size = 8;
	cfg.flags = 1u << 30;
	assert_null(zs_create_pool_ex("bad", &cfg));
	for (unsigned chain = 1; chain <= 16; chain++) {
		cfg = (struct zs_pool_config){ .chain_size = chain };
		struct zs_pool *pool = zs_create_pool_ex("ok", &cfg);
		assert_non_null(pool);
		zs_destroy_pool(pool);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain4),       cmocka_unit_test(test_chain8),
		cmocka_unit_test(test_chain16),      cmocka_unit_test(test_known_values),
		cmocka_unit_test(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
