/* SPDX-License-Identifier: MIT */
/*
 * deferred_seed_swap_bad.pml: deferred_seed_swap.pml with the handoff as
 * seed 002's first version wrote it, before the reviewer's correction:
 * "def->handles = new_buf; WRITE_ONCE(def->count, 0);" are plain stores
 * that may become visible in the other order, so the drainer's count = 0
 * is modelled as happening before buf = fresh, as two separate steps. An
 * owner that sees count == 0 in between still finds the old buffer in
 * s->buf and appends into a buffer the drainer is draining and will
 * recycle: the entry is lost (or, once the buffer is reused, freed twice).
 *
 * Spin must report an error for this model (run-spin.sh ... expect-fail):
 * @spin safety
 */
#define BAD_PUBLISH 1
#include "deferred_seed_swap.pml"
