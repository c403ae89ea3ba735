/* SPDX-License-Identifier: MIT */
/*
 * Atomic accessors whose names carry their memory order, so that a grep for
 * "_acquire" or "_release" finds every synchronisation point. Each use of an
 * acquire or release says, in a comment at the call, which access it pairs
 * with. Relaxed accessors are for words other threads read or write where no
 * ordering is needed (statistics, hints); plain loads and stores of words
 * another thread writes concurrently are data races and are not allowed.
 *
 * These are the GCC/Clang __atomic builtins on plain integer and pointer
 * objects; ThreadSanitizer understands them.
 */
#ifndef ZS_ATOMICS_H
#define ZS_ATOMICS_H

#define load_relaxed(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define load_acquire(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

#define fetch_add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define fetch_sub_relaxed(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_RELAXED)
#define fetch_sub_release(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_RELEASE)
#define fetch_add_acq_rel(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
#define add_fetch_relaxed(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define exchange_acq_rel(p, v)  __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define exchange_acquire(p, v)  __atomic_exchange_n((p), (v), __ATOMIC_ACQUIRE)
#define exchange_release(p, v)  __atomic_exchange_n((p), (v), __ATOMIC_RELEASE)

/*
 * Compare-exchange: on failure *expected is updated with the current value,
 * so retry loops must not reload (seed 004's review: a failed cmpxchg already
 * returned the current value) and must not pause between attempts.
 */
#define cas_weak_acquire(p, expected, desired)                                                     \
	__atomic_compare_exchange_n((p), (expected), (desired), 1, __ATOMIC_ACQUIRE,               \
				    __ATOMIC_RELAXED)
#define cas_strong_acquire(p, expected, desired)                                                   \
	__atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_ACQUIRE,               \
				    __ATOMIC_RELAXED)
#define cas_weak_acq_rel(p, expected, desired)                                                     \
	__atomic_compare_exchange_n((p), (expected), (desired), 1, __ATOMIC_ACQ_REL,               \
				    __ATOMIC_RELAXED)

/* Full fence: orders earlier stores before later loads (Dekker-style). */
#define fence_seq_cst() __atomic_thread_fence(__ATOMIC_SEQ_CST)

/* Spin-wait hint for busy loops that re-read a word (never inside a CAS retry). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

#endif /* ZS_ATOMICS_H */
