// SPDX-License-Identifier: MIT
/*
 * zsram as a measured store, run in a forked child so that its RSS is its
 * own; the store --ablate varies and classes fills. Its pool takes
 * --chain-size and the variants' ZS_POOL_* flags through config.pool, and
 * a variant with synchronous free sets ZSRAM_SYNC_FREE. Built without zsram
 * (HAVE_ZSRAM unset), the same calls run a bare zsmalloc pool with the same
 * storage rules (store_zs.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zsmalloc.h>

#include "peer.h"
#include "zsbench.h"

#ifdef HAVE_ZSRAM
#include <zsram.h>

static void *zr_create(void *argp, size_t npages, char *err, size_t errlen)
{
	const struct zsb_zs_cfg *arg = argp;
	struct zs_pool_config pc = {.chain_size = arg->chain_size, .flags = arg->flags};
	struct zsram_config cfg = {
		.disksize = (uint64_t)(npages ? npages : 1) * ZSRAM_PAGE_SIZE,
		.algorithm = arg->codec,
		.level = arg->level,
		.flags = arg->deferred ? 0 : ZSRAM_SYNC_FREE,
		.pool = &pc,
	};
	struct zsram *zr = zsram_create(&cfg);

	if (!zr && errno == EINVAL && arg->chain_size)
		snprintf(err, errlen,
			 "zsram_create: algorithm '%s' (level %d) or chain size %u not supported",
			 arg->codec, arg->level, arg->chain_size);
	else if (!zr && errno == EINVAL)
		snprintf(err, errlen, "zsram_create: algorithm '%s' (level %d) not supported",
			 arg->codec, arg->level);
	else if (!zr)
		snprintf(err, errlen, "zsram_create: %s", strerror(errno));
	return zr;
}

static int zr_write(void *s, size_t index, const void *page)
{
	return zsram_write_page(s, index, page);
}

static int zr_read(void *s, size_t index, void *page)
{
	return zsram_read_page(s, index, page);
}

static int zr_discard(void *s, size_t index)
{
	return zsram_discard(s, index, 1);
}

/* End of the free phase: the deferred frees finish (counted in its time). */
static void zr_flush(void *s)
{
	zs_free_deferred_flush(zsram_pool(s));
}

static long zr_compact(void *s)
{
	return (long)zsram_compact(s);
}

static void zr_memory(void *s, struct bench_mem *m)
{
	struct zsram_mm_stat st;

	zsram_mm_stat(s, &st);
	m->payload = (double)st.compr_data_size;
	m->held = (double)st.mem_used_total;
}

static void zr_extra(void *s, char *buf, size_t len)
{
	struct zsram_mm_stat st;
	struct zs_pool_stats ps;

	zsram_mm_stat(s, &st);
	zs_pool_stats(zsram_pool(s), &ps);
	snprintf(buf, len,
		 "\"mm_stat\": [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
		 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 "], "
		 "\"deferred_queued\": %lu, \"deferred_sync\": %lu, \"huge_class_size\": %zu",
		 st.orig_data_size, st.compr_data_size, st.mem_used_total, st.mem_limit,
		 st.mem_used_max, st.same_pages, st.pages_compacted, st.huge_pages,
		 st.huge_pages_since, ps.deferred_queued, ps.deferred_sync,
		 zs_huge_class_size(zsram_pool(s)));
}

static void zr_destroy(void *s)
{
	zsram_destroy(s);
}

static const struct bench_store_ops zsram_ops = {
	.name = "zsram",
	.multithread = 1,
	.has_rss = 1,
	.create = zr_create,
	.write = zr_write,
	.read = zr_read,
	.discard = zr_discard,
	.flush = zr_flush,
	.compact = zr_compact,
	.memory = zr_memory,
	.extra = zr_extra,
	.destroy = zr_destroy,
};

const struct bench_store_ops *zsb_zsram_store(void)
{
	return &zsram_ops;
}

struct zs_pool *zsb_zsram_pool(void *store)
{
	return zsram_pool(store);
}

bool zsb_zsram_has_algorithm(const char *name)
{
	const char *p = zsram_algorithms(); /* space-separated */
	size_t n = strlen(name);

	while (*p) {
		size_t k = strcspn(p, " ");

		if (k == n && !strncmp(p, name, n))
			return true;
		p += k + (p[k] == ' ');
	}
	return false;
}
#else  /* !HAVE_ZSRAM */
const struct bench_store_ops *zsb_zsram_store(void)
{
	return &zsb_zs_ops;
}

bool zsb_zsram_has_algorithm(const char *name)
{
	int lo, hi;

	return bench_codec_levels(name, &lo, &hi) == 0; /* the bare pool's codecs */
}

struct zs_pool *zsb_zsram_pool(void *store)
{
	return zsb_zs_pool(store);
}
#endif /* HAVE_ZSRAM */

const char *zsb_algorithms(void)
{
	static char names[128];

	if (!names[0]) {
#ifdef HAVE_ZSRAM
		const char *p = zsram_algorithms(); /* space-separated */
#else
		const char *p = "";
#endif
		int lo, hi;

		snprintf(names, sizeof(names), "%s", bench_codec_names());
		while (*p) { /* zsram's that benchlib lacks (none when built alike) */
			size_t k = strcspn(p, " ");
			char one[32];

			snprintf(one, sizeof(one), "%.*s", (int)k, p);
			if (bench_codec_levels(one, &lo, &hi))
				snprintf(names + strlen(names), sizeof(names) - strlen(names),
					 ", %s", one);
			p += k + (p[k] == ' ');
		}
	}
	return names;
}

bool zsb_algorithm_known(const char *name)
{
	int lo, hi;

	return bench_codec_levels(name, &lo, &hi) == 0 || zsb_zsram_has_algorithm(name);
}

void *zsb_zsram_fill(const struct zsb_zs_cfg *cfg, const struct bench_pages *ps, char *err,
		     size_t errlen)
{
	const struct bench_store_ops *ops = zsb_zsram_store();
	void *s = ops->create((void *)cfg, ps->npages, err, errlen);

	for (size_t i = 0; s && i < ps->npages; i++) {
		int r = ops->write(s, i, bench_page(ps, i));

		if (r) {
			snprintf(err, errlen, "store of page %zu: %s", i, strerror(-r));
			ops->destroy(s);
			return NULL;
		}
	}
	return s;
}

void zsb_zsram_destroy(void *store)
{
	zsb_zsram_store()->destroy(store);
}

static int child(void *cp, struct bench_result *res)
{
	struct zsb_ctx *ctx = cp;
	struct zsb_options *opt = ctx->opt;
	struct bench_run_cfg cfg = {.threads = opt->threads,
				    .free_fraction = opt->free_fraction,
				    .seed = opt->seed,
				    .progress = ctx->bar.shared};
	/* zsram's defaults (deferred free, compaction) with --chain-size */
	struct zsb_zs_cfg arg = {.codec = opt->algorithm,
				 .level = opt->level,
				 .chain_size = opt->chain_size,
				 .deferred = 1,
				 .compact = 1};

	bench_test_kill(zsb_store_key(ST_ZSRAM));
	return bench_store_run(zsb_zsram_store(), &arg, &ctx->pages, &cfg, res);
}

int zsb_run_zsram(struct zsb_ctx *ctx, struct bench_result *res)
{
	int err = bench_child_run(child, ctx, res, zsb_bar_wait, &ctx->bar);

	snprintf(res->name, sizeof(res->name), "%s", zsb_store_name(ST_ZSRAM));
	return err;
}
