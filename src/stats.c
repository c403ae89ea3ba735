/* SPDX-License-Identifier: MIT */
/*
 * stats.c: pool counters, the per-class table, and its text and JSON dumps.
 *
 * The text table has the columns of the kernel's debugfs "classes" file,
 * which is what users of zsmalloc already read:
 *   class size 10% 20% ... 90% 99% 100% obj_allocated obj_used pages_used
 *   pages_per_zspage freeable
 * The "10%" column counts zspages 0-9 % used, ..., "99%" 90-99 %, "100%" full.
 * Per-class figures are read under each class lock, so each row is
 * consistent; the pool-wide counters are relaxed atomics.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static void class_stats_locked(struct size_class *class, struct zs_class_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->index = class->index;
	out->size = class->size;
	for (int fg = 1; fg < ZS_NR_FULLNESS; fg++)
		out->zspages[fg - 1] = class->nr_zspages[fg];
	out->obj_allocated = class->objs_allocated;
	out->obj_used = class->objs_used;
	out->pages_used = class->objs_allocated / class->objs_per_zspage * class->pages_per_zspage;
	out->pages_per_zspage = class->pages_per_zspage;
	out->objs_per_zspage = class->objs_per_zspage;
	out->freeable = class_compactable_locked(class);
}

ZS_EXPORT unsigned int zs_class_count(struct zs_pool *pool)
{
	return pool ? pool->nr_classes : 0;
}

ZS_EXPORT int zs_class_stats(struct zs_pool *pool, unsigned int index, struct zs_class_stats *out)
{
	struct size_class *class;

	if (!pool || !out)
		return -EINVAL;
	if (index >= pool->nr_classes)
		return -ENOENT;
	class = &pool->classes[index];
	zs_mutex_lock(&class->lock);
	class_stats_locked(class, out);
	zs_mutex_unlock(&class->lock);
	return 0;
}

ZS_EXPORT void zs_pool_stats(struct zs_pool *pool, struct zs_pool_stats *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!pool)
		return;
	for (unsigned k = 0; k < pool->nr_classes; k++) {
		struct size_class *class = &pool->classes[k];
		zs_mutex_lock(&class->lock);
		st->objs_allocated += class->objs_allocated;
		st->objs_used += class->objs_used;
		zs_mutex_unlock(&class->lock);
	}
	st->pages_compacted = load_relaxed(&pool->pages_compacted);
	st->pages_allocated = load_relaxed(&pool->pages_allocated);
	st->pages_max = load_relaxed(&pool->pages_max);
	st->pages_migrated = load_relaxed(&pool->pages_migrated);
	st->pages_resident = arena_resident_pages(&pool->arena);
	st->chunks_committed = load_relaxed(&pool->arena.chunks_mapped);
	st->chunks_released = load_relaxed(&pool->arena.chunks_released);
	st->pages_prefaulted = load_relaxed(&pool->arena.pages_prefaulted);
	st->pages_decayed = load_relaxed(&pool->arena.pages_decayed);
	st->metadata_bytes = sizeof(*pool) + pool->nr_classes * sizeof(struct size_class) +
			     arena_metadata_bytes(&pool->arena) +
			     handle_table_bytes(&pool->handles) + slab_bytes(&pool->slab);
	st->invalid_handles = load_relaxed(&pool->invalid_handles);
	st->compactions = load_relaxed(&pool->compactions);
	st->pages_spare = load_relaxed(&pool->spare_pages);
	st->psi_trigger = bg_psi_active(pool); /* pool->bg: set at create, cleared at destroy */
	deferred_stats(pool, st);
}

/* snprintf-style appender: counts what it would write past the end. */
struct out {
	char *buf;
	size_t size, len;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	size_t room = o->len < o->size ? o->size - o->len : 0;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static void dump_text(struct zs_pool *pool, struct out *o)
{
	static const char *const cols[ZS_NR_FULLNESS_COLUMNS] = {
		"10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%", "99%", "100%"
	};
	unsigned long tot[ZS_NR_FULLNESS_COLUMNS] = { 0 };
	unsigned long t_alloc = 0, t_used = 0, t_pages = 0, t_free = 0;

	put(o, " %5s %5s", "class", "size");
	for (int i = 0; i < ZS_NR_FULLNESS_COLUMNS; i++)
		put(o, " %9s", cols[i]);
	put(o, " %13s %10s %10s %16s %8s\n", "obj_allocated", "obj_used", "pages_used",
	    "pages_per_zspage", "freeable");
	for (unsigned k = 0; k < pool->nr_classes; k++) {
		struct zs_class_stats cs;

		zs_class_stats(pool, k, &cs);
		put(o, " %5u %5u", cs.index, cs.size);
		for (int i = 0; i < ZS_NR_FULLNESS_COLUMNS; i++) {
			put(o, " %9lu", cs.zspages[i]);
			tot[i] += cs.zspages[i];
		}
		put(o, " %13lu %10lu %10lu %16u %8lu\n", cs.obj_allocated, cs.obj_used,
		    cs.pages_used, cs.pages_per_zspage, cs.freeable);
		t_alloc += cs.obj_allocated;
		t_used += cs.obj_used;
		t_pages += cs.pages_used;
		t_free += cs.freeable;
	}
	put(o, "\n %5s %5s", "Total", "");
	for (int i = 0; i < ZS_NR_FULLNESS_COLUMNS; i++)
		put(o, " %9lu", tot[i]);
	put(o, " %13lu %10lu %10lu %16s %8lu\n", t_alloc, t_used, t_pages, "", t_free);
}

static void json_string(struct out *o, const char *s)
{
	put(o, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			put(o, "\\%c", ch);
		else if (ch < 0x20)
			put(o, "\\u%04x", ch);
		else
			put(o, "%c", ch);
	}
	put(o, "\"");
}

static void dump_json(struct zs_pool *pool, struct out *o)
{
	struct zs_pool_stats st;

	zs_pool_stats(pool, &st);
	put(o, "{\"pool\":");
	json_string(o, pool->name);
	put(o, ",\"chain_size\":%u,\"huge_class_size\":%zu", pool->chain_size,
	    pool->huge_class_size);
	put(o, ",\"pages_allocated\":%lu,\"pages_max\":%lu,\"pages_compacted\":%lu"
	       ",\"pages_migrated\":%lu,\"pages_resident\":%lu,\"objs_allocated\":%lu"
	       ",\"objs_used\":%lu,\"metadata_bytes\":%lu,\"invalid_handles\":%lu",
	    st.pages_allocated, st.pages_max, st.pages_compacted, st.pages_migrated,
	    st.pages_resident, st.objs_allocated, st.objs_used, st.metadata_bytes,
	    st.invalid_handles);
	put(o, ",\"classes\":[");
	for (unsigned k = 0; k < pool->nr_classes; k++) {
		struct zs_class_stats cs;

		zs_class_stats(pool, k, &cs);
		put(o, "%s{\"class\":%u,\"size\":%u,\"fullness\":[", k ? "," : "", cs.index, cs.size);
		for (int i = 0; i < ZS_NR_FULLNESS_COLUMNS; i++)
			put(o, "%s%lu", i ? "," : "", cs.zspages[i]);
		put(o, "],\"obj_allocated\":%lu,\"obj_used\":%lu,\"pages_used\":%lu"
		       ",\"pages_per_zspage\":%u,\"objs_per_zspage\":%u,\"freeable\":%lu}",
		    cs.obj_allocated, cs.obj_used, cs.pages_used, cs.pages_per_zspage,
		    cs.objs_per_zspage, cs.freeable);
	}
	put(o, "]}\n");
}

ZS_EXPORT int zs_pool_stats_dump(struct zs_pool *pool, enum zs_stats_format format, char *buf,
				 size_t size)
{
	struct out o = { .buf = buf, .size = size, .len = 0 };

	if (!pool || (!buf && size) ||
	    (format != ZS_STATS_TEXT && format != ZS_STATS_JSON))
		return -EINVAL;
	if (size)
		buf[0] = '\0';
	if (format == ZS_STATS_JSON)
		dump_json(pool, &o);
	else
		dump_text(pool, &o);
	return (int)o.len;
}
