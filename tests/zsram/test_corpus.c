/* SPDX-License-Identifier: MIT */
/*
 * Round trip of a real corpus through zsram with every codec: a bounded,
 * deterministic sample of the machine's files (/usr/bin, /usr/lib: code,
 * data, text, compressed archives) read as 4 KiB pages, written, read back,
 * rewritten in another order, partly discarded, and checked against mm_stat
 * and a recount each time.
 *
 *   test_zsram_corpus [--mib N] [--root DIR]...   (default 8 MiB of /usr/bin and /usr/lib)
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "zsram.h"
#include "zsram_internal.h"
#include "zsram_test.h"

#define PER_FILE_MAX (128 * 1024) /* bytes taken from one file: many files, not a few */
#define MAX_ROOTS    8

static struct {
	char **paths;
	size_t n, cap;
} files;

static unsigned char *corpus; /* npages pages */
static size_t npages;

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F || !S_ISREG(st->st_mode) || st->st_size < PAGE)
		return 0;
	if (files.n == files.cap) {
		size_t cap = files.cap ? files.cap * 2 : 1024;
		char **p = realloc(files.paths, cap * sizeof(*p));

		if (!p)
			return 1;
		files.paths = p;
		files.cap = cap;
	}
	files.paths[files.n] = strdup(path);
	if (!files.paths[files.n])
		return 1;
	files.n++;
	return 0;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads up to PER_FILE_MAX whole pages of the file into the corpus. */
static void take_file(const char *path, size_t max_pages)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t want = PER_FILE_MAX / PAGE;

	if (fd < 0)
		return;
	if (want > max_pages - npages)
		want = max_pages - npages;
	for (size_t i = 0; i < want; i++) {
		ssize_t r = pread(fd, corpus + npages * PAGE, PAGE, (off_t)(i * PAGE));

		if (r <= 0)
			break;
		if (r < PAGE) /* the tail, zero-padded as a page cache would */
			memset(corpus + npages * PAGE + r, 0, PAGE - (size_t)r);
		npages++;
	}
	close(fd);
}

/* Loads about 'mib' MiB from the roots: every k-th file in path order. */
static int load_corpus(size_t mib, const char *const *roots, size_t nroots)
{
	size_t max_pages = mib * 256, stride;

	for (size_t r = 0; r < nroots; r++)
		nftw(roots[r], collect, 32, FTW_PHYS);
	if (!files.n)
		return -1;
	qsort(files.paths, files.n, sizeof(*files.paths), cmp_path);
	corpus = malloc(max_pages * PAGE);
	if (!corpus)
		return -1;
	/* spread the sample over the whole tree */
	stride = files.n / (max_pages * PAGE / (PER_FILE_MAX / 2) + 1) + 1;
	for (size_t pass = 0; pass < stride && npages < max_pages; pass++)
		for (size_t i = pass; i < files.n && npages < max_pages; i += stride)
			take_file(files.paths[i], max_pages);
	for (size_t i = 0; i < files.n; i++)
		free(files.paths[i]);
	free(files.paths);
	return npages ? 0 : -1;
}

struct codec_case {
	const char *name;
	int level;
};

static const struct codec_case cases[] = {
	{"lz4", 0}, {"lz4", 4}, {"lz4hc", 0}, {"zstd", 0}, {"zstd", 1}, {"zstd", -3}, {"lzo", 0},
};

static bool codec_built(const char *name)
{
	char list[128], *tok, *save = NULL;

	snprintf(list, sizeof(list), "%s", zsram_algorithms());
	for (tok = strtok_r(list, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (strcmp(tok, name) == 0)
			return true;
	return false;
}

static const unsigned char *corpus_page(size_t i)
{
	return corpus + i * PAGE;
}

/* Reads every page back; 'map' gives each index's corpus page, SIZE_MAX: discarded. */
static void verify_all(struct zsram *zr, const size_t *map)
{
	static const unsigned char zero[PAGE];
	unsigned char got[PAGE];
	struct zsram_mm_stat st;
	uint64_t stored = 0, same = 0;

	for (size_t i = 0; i < npages; i++) {
		const unsigned char *want = map[i] == SIZE_MAX ? zero : corpus_page(map[i]);

		assert_int_equal(zsram_read_page(zr, i, got), 0);
		if (memcmp(got, want, PAGE) != 0)
			fail_msg("page %zu (corpus page %zu) differs", i, map[i]);
		stored += map[i] != SIZE_MAX;
		same += map[i] != SIZE_MAX && zt_same_filled(want);
	}
	zsram_mm_stat(zr, &st);
	assert_int_equal(st.orig_data_size, stored * PAGE);
	assert_int_equal(st.same_pages, same);
	assert_true(st.compr_data_size <= (stored - same) * PAGE);
	assert_true(st.mem_used_max >= st.mem_used_total);
	assert_true(zsram_is_valid(zr));
}

static void test_corpus_codecs(void **state)
{
	size_t *map = malloc(npages * sizeof(*map));

	(void)state;
	assert_non_null(map);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct zsram_config cfg = {
			.disksize = (uint64_t)npages * PAGE,
			.algorithm = cases[c].name,
			.level = cases[c].level,
		};
		struct zsram_mm_stat st;
		struct zsram *zr;

		if (!codec_built(cases[c].name))
			continue;
		zr = zsram_create(&cfg);
		assert_non_null(zr);
		/* in order */
		for (size_t i = 0; i < npages; i++) {
			map[i] = i;
			assert_int_equal(zsram_write_page(zr, i, corpus_page(i)), 0);
		}
		verify_all(zr, map);
		zsram_mm_stat(zr, &st);
		printf("# %-5s %3d: %zu pages, compr/orig %.3f, compr/mem_used %.3f, same %llu, "
		       "huge %llu\n",
		       cases[c].name, cases[c].level, npages,
		       (double)st.compr_data_size / (double)st.orig_data_size,
		       st.mem_used_total ? (double)st.compr_data_size / (double)st.mem_used_total : 0,
		       (unsigned long long)st.same_pages, (unsigned long long)st.huge_pages);
		/* rewritten in another order: every slot replaces its object */
		for (size_t i = 0; i < npages; i++) {
			map[i] = (i * 7 + 3) % npages;
			assert_int_equal(zsram_write_page(zr, i, corpus_page(map[i])), 0);
		}
		verify_all(zr, map);
		/* every third page discarded, then compacted */
		for (size_t i = 0; i < npages; i += 3) {
			map[i] = SIZE_MAX;
			assert_int_equal(zsram_discard(zr, i, 1), 0);
		}
		zsram_compact(zr);
		verify_all(zr, map);
		zsram_destroy(zr);
	}
	free(map);
}

int main(int argc, char **argv)
{
	const char *roots[MAX_ROOTS] = {"/usr/bin", "/usr/lib"};
	size_t nroots = 0, mib = 8;
	int rc;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus_codecs),
	};

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
			mib = strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc && nroots < MAX_ROOTS) {
			roots[nroots++] = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [--mib N] [--root DIR]...\n", argv[0]);
			return 2;
		}
	}
	if (!nroots)
		nroots = 2;
	if (!mib || load_corpus(mib, roots, nroots)) {
		fprintf(stderr, "no corpus: no readable files under the roots\n");
		return 77; /* meson: skipped */
	}
	printf("# corpus: %zu pages\n", npages);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(corpus);
	return rc;
}
