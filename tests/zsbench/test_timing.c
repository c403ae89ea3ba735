// SPDX-License-Identifier: MIT
/*
 * The host's steal time (timing.h): the field is read from /proc/stat's
 * "cpu" line as the kernel writes it (eighth number), lines that are not
 * that one are refused, and on this machine the reading is known and never
 * goes backwards.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "timing.h"

static void test_parse(void)
{
	uint64_t t = 0;

	/* user nice system idle iowait irq softirq steal guest guest_nice */
	CHECK(!bench_parse_steal("cpu  206601 0 93019 8471186 1060 0 1305 28094 0 0\n", &t) &&
		      t == 28094,
	      "steal of a full line: %llu", (unsigned long long)t);
	t = 0;
	CHECK(!bench_parse_steal("cpu 1 2 3 4 5 6 7 8", &t) && t == 8,
	      "steal of a short line: %llu", (unsigned long long)t);
	CHECK(bench_parse_steal("cpu0 1 2 3 4 5 6 7 8 9 10\n", &t) == -EINVAL, "a per-CPU line");
	CHECK(bench_parse_steal("cpu  1 2 3 4 5 6 7\n", &t) == -EINVAL, "a line without steal");
	CHECK(bench_parse_steal("intr 1 2 3 4 5 6 7 8\n", &t) == -EINVAL, "another line");
	CHECK(bench_parse_steal("cpu  1 2 x 4 5 6 7 8\n", &t) == -EINVAL, "a line with a word");
}

static void test_reading(void)
{
	int64_t a = bench_steal_ns(), b = bench_steal_ns();

	CHECK(a >= 0, "steal unknown on Linux: %lld", (long long)a);
	CHECK(b >= a, "steal went back: %lld then %lld", (long long)a, (long long)b);
}

int main(void)
{
	test_parse();
	test_reading();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("timing: all checks passed\n");
	return failures ? 1 : 0;
}
