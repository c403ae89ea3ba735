/* SPDX-License-Identifier: MIT */
/* The zsbench tests' CHECK: reports a failed condition and counts it. */
#ifndef ZSB_TEST_CHECK_H
#define ZSB_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

#endif /* ZSB_TEST_CHECK_H */
