/* SPDX-License-Identifier: MIT */
/*
 * zspage_lock_aba_bad.pml: zspage_lock_aba.pml with obj_lock() trusting the
 * handle word alone after its read lock (the code before the fix): the
 * reader locks the dead zspage A, reads a place that zspage C owns and a
 * mover frees, and its unlock drives C's lock word to -1.
 *
 * Spin must report an assertion violation (run-spin.sh ... expect-fail):
 * @spin safety
 */
#define NO_PDESC_RECHECK 1
#include "zspage_lock_aba.pml"
