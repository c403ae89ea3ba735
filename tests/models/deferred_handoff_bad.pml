/* SPDX-License-Identifier: MIT */
/*
 * deferred_handoff_bad.pml: deferred_handoff.pml with the owner's append
 * published the wrong way round: the new count becomes visible before the
 * entry (a plain or relaxed store of count instead of store_release, on a
 * machine or compiler that reorders the two stores). The drainer's acquire
 * of the count then no longer guarantees the entry: it frees what the
 * buffer held before -- a never-written word, or a handle from the
 * buffer's previous use (a double free) -- and the new entry is lost.
 *
 * Spin must report an error for this model (run-spin.sh ... expect-fail):
 * @spin safety
 */
#define BAD_COUNT_FIRST 1
#include "deferred_handoff.pml"
