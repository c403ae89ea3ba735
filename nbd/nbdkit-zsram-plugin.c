/* SPDX-License-Identifier: MIT */
/*
 * nbdkit-zsram-plugin: a compressed RAM disk served over NBD. nbdkit speaks
 * the protocol; this file maps its callbacks onto one libzsram store that
 * every connection shares (docs/nbd.md).
 *
 *   nbdkit zsram size=4G [algorithm=lz4] [level=N] [mem_limit=SIZE]
 *          [chain_size=N] [recomp_algorithm=NAME [recomp_level=N]
 *          [recompress=huge|BYTES] [recompress_interval=SECONDS]]
 *          [bg_compact=BOOL] [stats=FILE]
 *
 * Lifetime. config and config_complete parse and validate (a throwaway
 * store per check, so that a bad value stops nbdkit at start with a line
 * naming its key); after_fork creates the real store, because libzsram
 * starts threads (the pool's drain and arena workers) and threads do not
 * survive nbdkit's fork into the background; cleanup writes stats=FILE and
 * destroys it.
 *
 * Threads. NBDKIT_THREAD_MODEL_PARALLEL: nbdkit calls every data callback
 * from many threads at once, for one or many connections; libzsram is safe
 * for that (include/zsram.h) and every connection sees the same store, so
 * can_multi_conn is true. The plugin keeps no per-connection state.
 *
 * Memory between clients. nbdkit's threads malloc their request buffers,
 * and libzsram its per-thread codec contexts, from glibc's per-thread
 * arenas, which keep what is freed for the next request: 0.3-0.6 MiB per
 * arena (16 on a 2-CPU host) once a client has come and gone. When the
 * last connection closes, the plugin gives it back with malloc_trim(0),
 * and the pool's own reserve -- the arena's cache of resident free pages,
 * spare zspages, surplus deferred-free buffers (1-2 MiB after a 256 MiB
 * write) -- with zs_pool_trim(), at once rather than after the pool's
 * decay period: an idle disk holds only what it stores.
 * malloc_trim reaches the free chunks of every arena but the top chunk of
 * the main one only: a per-thread heap's top -- where a freed request
 * buffer goes when nothing was allocated after it, 0.3-0.6 MiB a heap --
 * stays (4.2 MiB in 15 heaps here, once libzsmalloc's zspage descriptors
 * no longer came from malloc and sat between the buffers). So at load the
 * plugin asks glibc for one arena (M_ARENA_MAX): every thread then shares
 * the main heap, whose top malloc_trim returns too. Request buffers are
 * one malloc a request; tcache serves the small allocations without the
 * arena lock.
 */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zsmalloc.h>
#include <zsram.h>

#include "atomics.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

#define PAGE ((uint64_t)ZSRAM_PAGE_SIZE)
/* Largest read or write request: nbdkit's own limit on a data request. */
#define MAX_REQUEST (32u * 1024 * 1024)
/* Pages whose states one extents step reads onto the stack. */
#define STATES_CHUNK 2048

/*
 * Configuration: written by config/config_complete on nbdkit's main thread
 * before any connection or the maintenance thread exists, read-only after.
 */
static int64_t disk_size = -1;	     /* bytes exported (size=) */
static const char *algorithm;	     /* NULL: lz4 */
static int level;		     /* 0: the codec's default */
static int64_t mem_limit;	     /* bytes; 0: none */
static unsigned chain_size;	     /* 0: the pool's default */
static bool bg_compact;		     /* ZSRAM_BG_COMPACT */
static const char *recomp_algorithm; /* NULL: no recompression */
static int recomp_level;
static bool recomp_set;		      /* recompress= given */
static unsigned recomp_mode;	      /* ZSRAM_RECOMP_HUGE or 0 */
static size_t recomp_threshold;	      /* bytes, when recomp_mode == 0 */
static unsigned recomp_interval = 60; /* seconds */
static char *stats_path;	      /* absolute (nbdkit may chdir("/")) */

/*
 * The store: created by after_fork before nbdkit accepts a connection
 * (nbdkit starts its connection threads after after_fork returns, which
 * orders the store's creation before every use), destroyed by cleanup after
 * the last connection closed. Immutable in between.
 */
static struct zsram *store;

/* Open connections (atomic, relaxed: a count only): the last close trims
 * the heap (see above). */
static unsigned connections;

/* The maintenance thread (recompression): see maint_main. */
static pthread_t maint_thread;
static bool maint_running; /* main thread only */
static pthread_mutex_t maint_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t maint_cond = PTHREAD_COND_INITIALIZER;
static bool maint_stop; /* Synchronization: maint_lock */

/* nbdkit's NBDKIT_REGISTER_PLUGIN defines it; declared for -Wmissing-prototypes */
struct nbdkit_plugin *plugin_init(void);

static const char zero_page[ZSRAM_PAGE_SIZE];

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

static int parse_size_key(const char *key, const char *value, int64_t *out)
{
	int64_t v = nbdkit_parse_size(value); /* reports its own error */

	if (v == -1) {
		nbdkit_error("%s=%s: not a size", key, value);
		return -1;
	}
	*out = v;
	return 0;
}

static int zp_config_key(const char *key, const char *value)
{
	if (!strcmp(key, "size")) {
		if (parse_size_key(key, value, &disk_size))
			return -1;
		if (disk_size <= 0) {
			nbdkit_error("size=%s: the disk size must be greater than 0", value);
			return -1;
		}
	} else if (!strcmp(key, "algorithm")) {
		/* interned: lives until unload, whatever nbdkit does with value */
		algorithm = nbdkit_strdup_intern(value);
		if (!algorithm)
			return -1;
	} else if (!strcmp(key, "level")) {
		return nbdkit_parse_int("level", value, &level);
	} else if (!strcmp(key, "mem_limit")) {
		return parse_size_key(key, value, &mem_limit);
	} else if (!strcmp(key, "chain_size")) {
		return nbdkit_parse_unsigned("chain_size", value, &chain_size);
	} else if (!strcmp(key, "bg_compact")) {
		int b = nbdkit_parse_bool(value);

		if (b == -1) {
			nbdkit_error("bg_compact=%s: not a boolean", value);
			return -1;
		}
		bg_compact = b;
	} else if (!strcmp(key, "recomp_algorithm")) {
		recomp_algorithm = nbdkit_strdup_intern(value);
		if (!recomp_algorithm)
			return -1;
	} else if (!strcmp(key, "recomp_level")) {
		return nbdkit_parse_int("recomp_level", value, &recomp_level);
	} else if (!strcmp(key, "recompress")) {
		int64_t t;

		recomp_set = true;
		if (!strcmp(value, "huge")) {
			recomp_mode = ZSRAM_RECOMP_HUGE;
			return 0;
		}
		if (parse_size_key(key, value, &t))
			return -1;
		if (t > (int64_t)PAGE) {
			nbdkit_error("recompress=%s: 'huge' or a stored size in bytes, 0..4096",
				     value);
			return -1;
		}
		recomp_mode = 0;
		recomp_threshold = (size_t)t;
	} else if (!strcmp(key, "recompress_interval")) {
		if (nbdkit_parse_unsigned("recompress_interval", value, &recomp_interval))
			return -1;
		if (!recomp_interval) {
			nbdkit_error("recompress_interval=%s: seconds, at least 1", value);
			return -1;
		}
	} else if (!strcmp(key, "stats")) {
		free(stats_path);
		stats_path = nbdkit_absolute_path(value);
		if (!stats_path)
			return -1;
	} else {
		nbdkit_error("unknown parameter '%s' (see nbdkit zsram --help)", key);
		return -1;
	}
	return 0;
}

/* The store's config from the keys; pc must outlive the returned config's use. */
static struct zsram_config make_config(struct zs_pool_config *pc)
{
	struct zsram_config cfg = {0};

	memset(pc, 0, sizeof(*pc));
	pc->chain_size = chain_size;
	/* the disk is exported at size bytes; the store ends on a whole page */
	cfg.disksize = ((uint64_t)disk_size + PAGE - 1) / PAGE * PAGE;
	cfg.algorithm = algorithm;
	cfg.level = level;
	cfg.mem_limit = (uint64_t)mem_limit;
	cfg.flags = bg_compact ? ZSRAM_BG_COMPACT : 0;
	cfg.pool = pc;
	return cfg;
}

/*
 * Tries a one-page store with cfg (and the secondary codec, when alg is
 * not NULL): 0 if libzsram takes it, else the errno. It starts and joins
 * the pool's threads before nbdkit forks, which is harmless: none is left.
 */
static int try_store(struct zsram_config cfg, bool one_page, const char *alg, int alg_level)
{
	struct zsram *zr;
	int err = 0;

	if (one_page)
		cfg.disksize = PAGE;
	zr = zsram_create(&cfg);
	if (!zr)
		return errno ? errno : EINVAL;
	if (alg)
		err = -zsram_set_recomp_algorithm(zr, alg, alg_level);
	zsram_destroy(zr);
	return err;
}

/*
 * Each check adds one key to what earlier checks accepted, so the first
 * refusal names the key at fault.
 */
static int zp_config_complete(void)
{
	struct zs_pool_config pc;
	struct zsram_config cfg, base;
	int err;

	if (disk_size == -1) {
		nbdkit_error("size=: the disk size is required (e.g. size=4G)");
		return -1;
	}
	if (recomp_set && !recomp_algorithm) {
		nbdkit_error("recompress=: needs recomp_algorithm=");
		return -1;
	}
	if (recomp_algorithm && !recomp_set)
		recomp_mode = ZSRAM_RECOMP_HUGE; /* zram's usual first step */

	cfg = make_config(&pc);
	base = (struct zsram_config){.disksize = PAGE, .algorithm = algorithm};
	if (try_store(base, true, NULL, 0)) {
		nbdkit_error("algorithm=%s: unknown (this build has: %s)", algorithm,
			     zsram_algorithms());
		return -1;
	}
	base.level = level;
	if (try_store(base, true, NULL, 0)) {
		nbdkit_error("level=%d: out of range for algorithm %s (see docs/zsram.md)", level,
			     algorithm ? algorithm : "lz4");
		return -1;
	}
	base.pool = &pc;
	if (try_store(base, true, NULL, 0)) {
		nbdkit_error("chain_size=%u: out of range (1..16, 0 = default)", chain_size);
		return -1;
	}
	err = try_store(cfg, false, NULL, 0);
	if (err) {
		nbdkit_error("size=%" PRIi64 ": libzsram refuses the store: %s", disk_size,
			     strerror(err));
		return -1;
	}
	if (recomp_algorithm) {
		if (try_store(cfg, true, recomp_algorithm, 0)) {
			nbdkit_error("recomp_algorithm=%s: unknown (this build has: %s)",
				     recomp_algorithm, zsram_algorithms());
			return -1;
		}
		if (try_store(cfg, true, recomp_algorithm, recomp_level)) {
			nbdkit_error("recomp_level=%d: out of range for %s", recomp_level,
				     recomp_algorithm);
			return -1;
		}
	}
	return 0;
}

#define zp_config_help                                                                             \
	"size=<SIZE>             (required) disk size, e.g. 4G\n"                                  \
	"algorithm=lz4|lz4hc|zstd|lzo  compression (default lz4)\n"                                \
	"level=<N>               the codec's level (default: its own)\n"                           \
	"mem_limit=<SIZE>        pool memory limit; writes past it fail with ENOSPC\n"             \
	"chain_size=<N>          pages per zspage, 1..16 (default 8)\n"                            \
	"bg_compact=<BOOL>       compact the pool in a background thread\n"                        \
	"recomp_algorithm=<NAME> secondary codec for recompression\n"                              \
	"recomp_level=<N>        its level\n"                                                      \
	"recompress=huge|<BYTES> what to recompress (default huge)\n"                              \
	"recompress_interval=<S> seconds between recompression runs (default 60)\n"                \
	"stats=<FILE>            write zram's mm_stat line to FILE at exit"

static void zp_dump_plugin(void)
{
	printf("zsram_algorithms=%s\n", zsram_algorithms());
	printf("zsram_page_size=%d\n", ZSRAM_PAGE_SIZE);
}

/* ------------------------------------------------------------------ */
/* Store lifetime and maintenance                                      */

/*
 * Recompresses every recompress_interval seconds until cleanup says stop.
 * Periodic, not on flush: a run walks every slot, and clients (qemu)
 * flush often.
 */
static void *maint_main(void *arg)
{
	struct timespec ts;
	bool stop;

	(void)arg;
	pthread_mutex_lock(&maint_lock);
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += recomp_interval;
		while (!maint_stop && pthread_cond_timedwait(&maint_cond, &maint_lock, &ts) == 0)
			;
		stop = maint_stop;
		if (stop)
			break;
		pthread_mutex_unlock(&maint_lock);
		long n = zsram_recompress(store, recomp_mode, recomp_threshold);

		if (n < 0)
			nbdkit_debug("zsram: recompress: %s", strerror((int)-n));
		else
			nbdkit_debug("zsram: recompressed %ld pages", n);
		pthread_mutex_lock(&maint_lock);
	}
	pthread_mutex_unlock(&maint_lock);
	return NULL;
}

static int zp_after_fork(void)
{
	struct zs_pool_config pc;
	struct zsram_config cfg = make_config(&pc);
	int err;

	store = zsram_create(&cfg);
	if (!store) {
		nbdkit_error("zsram: cannot create the store: %m");
		return -1;
	}
	if (recomp_algorithm) {
		err = zsram_set_recomp_algorithm(store, recomp_algorithm, recomp_level);
		if (err) {
			nbdkit_error("recomp_algorithm=%s: %s", recomp_algorithm, strerror(-err));
			return -1;
		}
		err = pthread_create(&maint_thread, NULL, maint_main, NULL);
		if (err) {
			nbdkit_error("zsram: cannot start the recompression thread: %s",
				     strerror(err));
			return -1;
		}
		maint_running = true;
	}
	return 0;
}

static void write_stats(void)
{
	struct zsram_mm_stat st;
	FILE *f;

	zsram_mm_stat(store, &st);
	f = fopen(stats_path, "w");
	if (!f) {
		nbdkit_error("stats=%s: %m", stats_path);
		return;
	}
	/* zram's mm_stat line: the same nine fields, order and widths */
	fprintf(f,
		"%8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
		" %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
		st.orig_data_size, st.compr_data_size, st.mem_used_total, st.mem_limit,
		st.mem_used_max, st.same_pages, st.pages_compacted, st.huge_pages,
		st.huge_pages_since);
	if (fclose(f))
		nbdkit_error("stats=%s: %m", stats_path);
}

static void zp_cleanup(void)
{
	if (maint_running) {
		pthread_mutex_lock(&maint_lock);
		maint_stop = true;
		pthread_cond_signal(&maint_cond);
		pthread_mutex_unlock(&maint_lock);
		pthread_join(maint_thread, NULL);
		maint_running = false;
	}
	if (!store)
		return;
	if (stats_path)
		write_stats();
	zsram_destroy(store);
	store = NULL;
}

static void zp_load(void)
{
#ifdef __GLIBC__
	mallopt(M_ARENA_MAX, 1); /* see "Memory between clients" above */
#endif
}

static void zp_unload(void)
{
	zp_cleanup(); /* nbdkit calls cleanup first; this covers a failed start */
	free(stats_path);
	stats_path = NULL;
}

/* ------------------------------------------------------------------ */
/* Connections and capabilities                                        */

static void *zp_open(int readonly)
{
	(void)readonly;
	fetch_add_relaxed(&connections, 1);
	return NBDKIT_HANDLE_NOT_NEEDED; /* one store for all connections */
}

/*
 * nbdkit calls close after the connection's worker threads have ended, so
 * their freed buffers and codec contexts are in glibc's free lists by now.
 * A client connecting meanwhile just mallocs afresh.
 */
static void zp_close(void *h)
{
	(void)h;
	if (fetch_sub_relaxed(&connections, 1) == 1) {
		/* the pool before the heaps: tests/nbd/test_memory.sh reads
		 * trimmed heaps as "the close has trimmed the pool too" */
		zs_pool_trim(zsram_pool(store));
#ifdef __GLIBC__
		malloc_trim(0);
#endif
	}
}

static int64_t zp_get_size(void *h)
{
	(void)h;
	return disk_size;
}

static int zp_block_size(void *h, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
	(void)h;
	*minimum = 1;	   /* partial pages are read-modify-written under the slot lock */
	*preferred = PAGE; /* whole pages skip the read-modify-write */
	*maximum = MAX_REQUEST;
	return 0;
}

static int yes(void *h)
{
	(void)h;
	return 1;
}

static int no(void *h)
{
	(void)h;
	return 0;
}

static int fua_native(void *h)
{
	(void)h;
	return NBDKIT_FUA_NATIVE; /* RAM: a write is as durable as it gets once it returns */
}

/*
 * NATIVE, and cache does nothing: every page already sits in RAM, and
 * decompressing it ahead of a read would only burn CPU (EMULATE would make
 * nbdkit read and drop the data).
 */
static int cache_native(void *h)
{
	(void)h;
	return NBDKIT_CACHE_NATIVE;
}

static int zp_thread_model(void)
{
	return NBDKIT_THREAD_MODEL_PARALLEL;
}

/* ------------------------------------------------------------------ */
/* Data                                                                */

/* libzsram's -errno into nbdkit's error for the client. */
static int fail(long neg_errno)
{
	nbdkit_set_error((int)-neg_errno);
	return -1;
}

static int zp_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	unsigned char *p = buf;

	(void)h;
	(void)flags;
	while (count) {
		/* a short count means a later page failed: retrying reports it */
		ssize_t r = zsram_pread(store, p, count, offset);

		if (r < 0)
			return fail(r);
		p += r;
		count -= (uint32_t)r;
		offset += (uint64_t)r;
	}
	return 0;
}

/*
 * mem_limit: the page that does not fit fails with ENOSPC and keeps its
 * old content; pages of the same request before it hold the new data (a
 * failed write may leave either, as on any disk).
 */
static int zp_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	const unsigned char *p = buf;

	(void)h;
	(void)flags; /* FUA: nothing to flush */
	while (count) {
		ssize_t r = zsram_pwrite(store, p, count, offset);

		if (r < 0)
			return fail(r);
		p += r;
		count -= (uint32_t)r;
		offset += (uint64_t)r;
	}
	return 0;
}

static int zp_flush(void *h, uint32_t flags)
{
	(void)h;
	(void)flags;
	return 0; /* RAM: nothing is volatile beyond the process itself */
}

/*
 * The whole pages inside [offset, offset + count): *first, *n. The disk's
 * last page counts as whole when the range reaches the disk's end (the
 * store's bytes past size are never exported).
 */
static void whole_pages(uint32_t count, uint64_t offset, uint64_t *first, uint64_t *n)
{
	uint64_t end = offset + count, a = (offset + PAGE - 1) / PAGE, b = end / PAGE;

	if (end == (uint64_t)disk_size)
		b = (end + PAGE - 1) / PAGE;
	*first = a;
	*n = b > a ? b - a : 0;
}

/* Zeros [offset, offset + len) inside one page, unless it reads as zeros already. */
static int zero_partial(uint64_t offset, size_t len)
{
	uint8_t st;
	ssize_t r;

	if (zsram_page_states(store, offset / PAGE, 1, &st) == 0 && st != ZSRAM_PAGE_DATA)
		return 0; /* a racing write is ordered after this zero: same result */
	r = zsram_pwrite(store, zero_page, len, offset);
	return r < 0 ? fail(r) : 0;
}

static int zp_trim(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	uint64_t first, n;
	int err;

	(void)h;
	(void)flags;
	/* advisory: partial pages stay as they are */
	whole_pages(count, offset, &first, &n);
	err = n ? zsram_discard(store, first, n) : 0;
	return err ? fail(err) : 0;
}

/*
 * Whole pages: with MAY_TRIM (the client allows a hole) discarded; without
 * it stored as zero pages (same-filled: allocated, reported ZERO not HOLE,
 * yet no pool memory). Neither needs memory, so neither can fail with
 * ENOSPC. Partial head and tail pages are written with zeros.
 */
static int zp_zero(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	uint64_t end = offset + count, first, n;
	int err;

	(void)h;
	whole_pages(count, offset, &first, &n);
	if (!n) {
		/* inside one page, or across one page boundary */
		uint64_t mid = (offset / PAGE + 1) * PAGE;

		if (end <= mid)
			return zero_partial(offset, count);
		if (zero_partial(offset, (size_t)(mid - offset)))
			return -1;
		return zero_partial(mid, (size_t)(end - mid));
	}
	if (offset < first * PAGE && zero_partial(offset, (size_t)(first * PAGE - offset)))
		return -1;
	if (flags & NBDKIT_FLAG_MAY_TRIM) {
		err = zsram_discard(store, first, n);
		if (err)
			return fail(err);
	} else {
		for (uint64_t i = first; i < first + n; i++) {
			err = zsram_write_page(store, i, zero_page);
			if (err)
				return fail(err);
		}
	}
	if (end > (first + n) * PAGE &&
	    zero_partial((first + n) * PAGE, (size_t)(end - (first + n) * PAGE)))
		return -1;
	return 0;
}

static int zp_cache(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	(void)h;
	(void)count;
	(void)offset;
	(void)flags;
	return 0; /* see cache_native */
}

static uint32_t extent_type(uint8_t st)
{
	switch (st) {
	case ZSRAM_PAGE_EMPTY:
		return NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
	case ZSRAM_PAGE_ZERO:
		return NBDKIT_EXTENT_ZERO;
	default:
		return 0;
	}
}

/*
 * One extent per run of pages of the same type, from offset to the end of
 * the request's last page (or of the disk). zsram_page_states never reports
 * a written page as empty (include/zsram.h), so a write that completed
 * before this request is never shown as a hole; a write racing it may show
 * either way, as the NBD protocol allows.
 */
static int zp_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags,
		      struct nbdkit_extents *extents)
{
	uint8_t st[STATES_CHUNK];
	uint64_t page = offset / PAGE, end_page = (offset + count + PAGE - 1) / PAGE;
	uint64_t run_start = offset, pos = offset;
	uint32_t run_type = UINT32_MAX;
	bool one = flags & NBDKIT_FLAG_REQ_ONE;
	int err;

	(void)h;
	while (page < end_page) {
		uint64_t n = end_page - page < STATES_CHUNK ? end_page - page : STATES_CHUNK;

		err = zsram_page_states(store, page, n, st);
		if (err)
			return fail(err);
		for (uint64_t i = 0; i < n; i++) {
			uint32_t t = extent_type(st[i]);

			if (t != run_type) {
				if (run_type != UINT32_MAX) {
					if (nbdkit_add_extent(extents, run_start, pos - run_start,
							      run_type))
						return -1;
					if (one)
						return 0;
				}
				run_type = t;
				run_start = pos;
			}
			pos = (page + i + 1) * PAGE;
			if (pos > (uint64_t)disk_size)
				pos = (uint64_t)disk_size;
		}
		page += n;
	}
	if (run_type != UINT32_MAX &&
	    nbdkit_add_extent(extents, run_start, pos - run_start, run_type))
		return -1;
	return 0;
}

static struct nbdkit_plugin plugin = {
	.name = "zsram",
	.longname = "nbdkit zsram plugin (compressed RAM disk)",
	.version = "0.1.0",
	.description = "A compressed RAM disk on libzsram (zram in userspace)",
	.magic_config_key = "size",
	.config = zp_config_key,
	.config_complete = zp_config_complete,
	.config_help = zp_config_help,
	.dump_plugin = zp_dump_plugin,
	.thread_model = zp_thread_model,
	.after_fork = zp_after_fork,
	.cleanup = zp_cleanup,
	.load = zp_load,
	.unload = zp_unload,
	.open = zp_open,
	.close = zp_close,
	.get_size = zp_get_size,
	.block_size = zp_block_size,
	.can_write = yes,
	.can_flush = yes,
	.is_rotational = no,
	.can_trim = yes,
	.can_zero = yes,
	.can_fast_zero = yes,
	.can_fua = fua_native,
	.can_multi_conn = yes,
	.can_extents = yes,
	.can_cache = cache_native,
	.pread = zp_pread,
	.pwrite = zp_pwrite,
	.flush = zp_flush,
	.trim = zp_trim,
	.zero = zp_zero,
	.cache = zp_cache,
	.extents = zp_extents,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
