/* SPDX-License-Identifier: MIT */
/*
 * Fault injection for tests: builds with -Drace_hooks=true (never
 * production) let a test make the library's allocations, mappings and
 * madvise calls fail, to check that each failure reaches the caller as a
 * clear error and that no stored object is lost or damaged. Elsewhere
 * fault() is the constant false and costs nothing.
 *
 * Shared by libzsmalloc and libzsram (which reaches the hook through
 * libzsmalloc's exported symbol in those builds).
 */
#ifndef ZS_FAULT_H
#define ZS_FAULT_H

#include <stdbool.h>

enum zs_fault_point {
	ZS_FAULT_ALLOC,   /* malloc/calloc/aligned_alloc returns NULL */
	ZS_FAULT_MAP,     /* mmap/mprotect (reserve, commit, decommit) fails */
	ZS_FAULT_MADVISE, /* madvise does nothing (pages stay resident, or are not
			     prefaulted) */
	ZS_NR_FAULT_POINTS
};

#ifdef ZS_RACE_HOOKS
/* Set by tests; true makes that call fail. Called from any thread. */
extern bool (*zs_fault_hook)(enum zs_fault_point point);
static inline bool fault(enum zs_fault_point point)
{
	/* acquire: pairs with the test's release store of the hook */
	bool (*h)(enum zs_fault_point) = __atomic_load_n(&zs_fault_hook, __ATOMIC_ACQUIRE);
	return h && h(point);
}
#else
#define fault(point) ((void)(point), false)
#endif

#endif /* ZS_FAULT_H */
