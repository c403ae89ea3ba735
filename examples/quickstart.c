/* SPDX-License-Identifier: MIT */
/*
 * The README's example: store a few blobs, read them back, free half,
 * compact. Build: cc quickstart.c $(pkg-config --cflags --libs zsmalloc)
 */
#include <stdio.h>
#include <string.h>
#include <zsmalloc.h>

int main(void)
{
	struct zs_pool *pool = zs_create_pool("example");
	unsigned long handles[1000];
	char blob[300], copy[300];

	if (!pool)
		return 1;
	for (int i = 0; i < 1000; i++) {
		size_t len = 100 + (size_t)i % 200;

		memset(blob, 'a' + i % 26, len);
		handles[i] = zs_malloc(pool, len);    /* a handle, not a pointer */
		if (!handles[i] || zs_obj_write(pool, handles[i], blob, len))
			return 1;
	}

	/* Reading maps the object (or copies it, if it straddles two pages
	 * that are not adjacent); it cannot move until read_end. */
	char *p = zs_obj_read_begin(pool, handles[42], 100, copy);
	int ok = p[0] == 'a' + 42 % 26 && p[99] == 'a' + 42 % 26;
	zs_obj_read_end(pool, handles[42], 100, p);

	for (int i = 0; i < 1000; i += 2)
		zs_free(pool, handles[i]);
	unsigned long before = zs_get_total_pages(pool);
	unsigned long freed = zs_compact(pool);  /* moves objects, frees pages */
	printf("%s: %lu pages, compaction freed %lu, %lu left\n", ok ? "ok" : "BAD", before,
	       freed, zs_get_total_pages(pool));

	for (int i = 1; i < 1000; i += 2)
		zs_free(pool, handles[i]);
	zs_destroy_pool(pool);
	return ok ? 0 : 1;
}
