/* SPDX-License-Identifier: MIT */
/*
 * zsram internals shared by the library's files and its tests: the export
 * macro, assertion levels (the allocator's ZS_DEBUG, -Ddebug_level), and
 * the invariant checks that tests call.
 */
#ifndef ZSRAM_INTERNAL_H
#define ZSRAM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "zsram.h"

#define ZSRAM_EXPORT __attribute__((visibility("default")))

#ifndef ZS_DEBUG
#define ZS_DEBUG 0
#endif
#if ZS_DEBUG < 0 || ZS_DEBUG > 3
#error "ZS_DEBUG must be 0..3"
#endif

/* Prints where and aborts: a bug in this library (debug builds only). */
void zsram_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#define ZSRAM_CHECK_(cond) ((cond) ? (void)0 : zsram_assert_fail(#cond, __FILE__, __LINE__))
#if ZS_DEBUG >= 1
#define ZSRAM_ASSERT(cond) ZSRAM_CHECK_(cond)
#else
#define ZSRAM_ASSERT(cond) ((void)0)
#endif
#if ZS_DEBUG >= 2
#define ZSRAM_ASSERT_INTERNAL(cond) ZSRAM_CHECK_(cond)
#else
#define ZSRAM_ASSERT_INTERNAL(cond) ((void)0)
#endif

/* What the slots hold, counted slot by slot. */
struct zsram_recount {
	uint64_t pages_stored; /* slots holding a page (same-filled ones included) */
	uint64_t compr_bytes;  /* sum of stored lengths (huge: 4096, same-filled: 0) */
	uint64_t same_pages;
	uint64_t huge_pages;
	uint64_t recompressed; /* pages stored with the secondary codec */
	uint64_t bad_slots;    /* slots that break the slot invariants */
};

/*
 * Walks every slot, each under its lock, and counts. Exact when no write or
 * discard runs meanwhile; safe to call at any time.
 */
void zsram_recount(struct zsram *zr, struct zsram_recount *out);

/*
 * True when every slot keeps its invariants and the mm_stat counters equal
 * a recount. Call with the store quiet (no write or discard in flight).
 */
bool zsram_is_valid(struct zsram *zr);

#endif /* ZSRAM_INTERNAL_H */
