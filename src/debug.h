/* SPDX-License-Identifier: MIT */
/*
 * Assertion levels, chosen at build time with -Ddebug_level=N:
 *   0  none (release)
 *   1  cheap checks on arguments and states (ZS_ASSERT)
 *   2  internal checks: lock ownership, list membership (ZS_ASSERT_INTERNAL)
 *   3  expensive checks: whole-structure validation (ZS_ASSERT_EXPENSIVE)
 * A failed assertion prints where and aborts: a bug in this library.
 */
#ifndef ZS_DEBUG_H
#define ZS_DEBUG_H

#ifndef ZS_DEBUG
#define ZS_DEBUG 0
#endif
#if ZS_DEBUG < 0 || ZS_DEBUG > 3
#error "ZS_DEBUG must be 0..3"
#endif

void zs_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#define ZS_CHECK_(cond) ((cond) ? (void)0 : zs_assert_fail(#cond, __FILE__, __LINE__))

#if ZS_DEBUG >= 1
#define ZS_ASSERT(cond) ZS_CHECK_(cond)
#else
#define ZS_ASSERT(cond) ((void)0)
#endif
#if ZS_DEBUG >= 2
#define ZS_ASSERT_INTERNAL(cond) ZS_CHECK_(cond)
#else
#define ZS_ASSERT_INTERNAL(cond) ((void)0)
#endif
#if ZS_DEBUG >= 3
#define ZS_ASSERT_EXPENSIVE(cond) ZS_CHECK_(cond)
#else
#define ZS_ASSERT_EXPENSIVE(cond) ((void)0)
#endif

#endif /* ZS_DEBUG_H */
