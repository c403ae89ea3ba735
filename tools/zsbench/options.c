// SPDX-License-Identifier: MIT
/* Command line: options, subcommands, --help. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memstat.h"
#include "zsbench.h"

static const struct {
	const char *key, *name;
} store_names[ST_NSTORES] = {
#ifdef HAVE_ZSRAM
	[ST_ZSRAM] = {"zsram", "zsram"},
#else
	[ST_ZSRAM] = {"zsram", "zsmalloc"},
#endif
	[ST_GLIBC] = {"glibc", "glibc malloc"},	  [ST_JEMALLOC] = {"jemalloc", "jemalloc"},
	[ST_MIMALLOC] = {"mimalloc", "mimalloc"}, [ST_KZRAM] = {"kzram", "kernel zram"},
	[ST_RAW] = {"raw", "raw codec"},
};

const char *zsb_store_name(enum zsb_store s)
{
	return store_names[s].name;
}

const char *zsb_store_key(enum zsb_store s)
{
	return store_names[s].key;
}

void zsb_usage(FILE *out)
{
	fprintf(out,
		"usage: zsbench [OPTIONS]                 the built-in corpus\n"
		"       zsbench --input PATH... [OPTIONS] files and directories, as 4 KiB pages\n"
		"       zsbench --pid PID [OPTIONS]       a running process's anonymous memory\n"
		"       zsbench classes [OPTIONS]         per-class table of zsram's pool, filled\n"
		"       zsbench hist [OPTIONS]            compressed-size histogram of the corpus\n"
		"       zsbench --ablate [OPTIONS]        the allocator's improvements, in zsram\n"
		"       zsbench scaling [OPTIONS]         1 thread against --threads N, paired\n"
		"\n"
		"Stores the pages in zsram, frees a random part, compacts, reads everything back\n"
		"and verifies it; does the same with glibc malloc, jemalloc, mimalloc (each in a\n"
		"process of its own) and, as root with /sys/class/zram-control, the kernel's "
		"zram;\n"
		"prints density, RSS, throughput and p50/p99 latency for each.\n"
		"\n"
		"options:\n"
		"  --input PATH...        read files/directories (recursively) instead\n"
		"  --pid PID              snapshot a process's resident anonymous memory\n"
		"  --size SIZE            corpus size (built-in: default 256M) or cap on what\n"
		"                         is read (default 1G); suffixes K, M, G\n"
		"  --algorithm NAME       %s (default lz4)\n"
		"  --level N              codec level (0 = the codec's default)\n"
		"  --threads N            threads storing and loading (default 1; ablate,\n"
		"                         scaling: CPUs, scaling at least 2)\n"
		"  --free-fraction F      part of the pages freed (default 0.5)\n"
		"  --chain-size N         zspage chain of zsram's pool (1..16; default 8)\n"
		"  --seed N               corpus and free-order seed (default 1)\n"
		"  --repeat N             run N times, report medians (default 1)\n"
		"  --stores LIST          of zsram,glibc,jemalloc,mimalloc,kzram,raw (default "
		"all;\n"
		"                         scaling: zsram,kzram,raw)\n"
		"  --json FILE            write the results as JSON\n"
		"  --plot FILE.png        plot memory held over the run (needs gnuplot)\n"
		"  --ablate               run the ablation instead\n"
		"  -h, --help             this text\n"
		"  -V, --version          print the version\n"
		"\n"
		"Each command refuses the options it does not use. See zsbench(1) for what each\n"
		"figure means.\n",
		zsb_algorithms());
}

/*
 * SIZE: a number of bytes, maybe fractional, with an optional suffix K, M,
 * G or T (powers of 1024; "KiB" and "KB" read alike), rounded down to whole
 * pages. 0; -EINVAL when it is no such thing (NaN and infinities
 * included), -ERANGE from 2^63 bytes up, -EDOM under one page (0 among them).
 */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v = strtod(s, &end), bytes;
	uint64_t mult = 1;

	if (end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		mult = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mult = 1ull << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mult = 1ull << 30;
		end++;
		break;
	case 't':
	case 'T':
		mult = 1ull << 40;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -EINVAL;
	bytes = v * (double)mult;
	if (bytes >= 0x1p63) /* (uint64_t) of more is undefined */
		return -ERANGE;
	*out = (uint64_t)bytes / BENCH_PAGE_SIZE * BENCH_PAGE_SIZE;
	return *out ? 0 : -EDOM;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return end == s || *end || errno || *out > max || s[0] == '-' ? -EINVAL : 0;
}

static int parse_stores(const char *list, unsigned *mask)
{
	char buf[256], *save, *tok;

	snprintf(buf, sizeof(buf), "%s", list);
	*mask = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int found = 0;

		if (!strcmp(tok, "all")) {
			*mask = (1u << ST_NSTORES) - 1;
			continue;
		}
		if (!strcmp(tok, "zram") || !strcmp(tok, "kernel"))
			tok = "kzram";
		for (int s = 0; s < ST_NSTORES; s++)
			if (!strcmp(tok, store_names[s].key)) {
				*mask |= 1u << s;
				found = 1;
			}
		if (!found) {
			zsb_error("unknown store '%s' (known: zsram, glibc, jemalloc, mimalloc, "
				  "kzram, raw)",
				  tok);
			return -EINVAL;
		}
	}
	if (!*mask) { /* "," or "": a run of nothing */
		zsb_error("--stores '%s' names no store", list);
		return -EINVAL;
	}
	return 0;
}

enum {
	O_INPUT = 256,
	O_PID,
	O_SIZE,
	O_ALGO,
	O_LEVEL,
	O_THREADS,
	O_FREE,
	O_CHAIN,
	O_SEED,
	O_REPEAT,
	O_STORES,
	O_JSON,
	O_PLOT,
	O_ABLATE
};

static const struct option long_opts[] = {
	{"input", required_argument, NULL, O_INPUT},
	{"pid", required_argument, NULL, O_PID},
	{"size", required_argument, NULL, O_SIZE},
	{"algorithm", required_argument, NULL, O_ALGO},
	{"level", required_argument, NULL, O_LEVEL},
	{"threads", required_argument, NULL, O_THREADS},
	{"free-fraction", required_argument, NULL, O_FREE},
	{"chain-size", required_argument, NULL, O_CHAIN},
	{"seed", required_argument, NULL, O_SEED},
	{"repeat", required_argument, NULL, O_REPEAT},
	{"stores", required_argument, NULL, O_STORES},
	{"json", required_argument, NULL, O_JSON},
	{"plot", required_argument, NULL, O_PLOT},
	{"ablate", no_argument, NULL, O_ABLATE},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{0},
};

#define OPT(o)	   (1u << ((o) - O_INPUT))
#define OPT_CORPUS (OPT(O_INPUT) | OPT(O_PID) | OPT(O_SIZE) | OPT(O_SEED))
#define OPT_CODEC  (OPT(O_ALGO) | OPT(O_LEVEL) | OPT(O_CHAIN))
#define OPT_RUN	   (OPT(O_THREADS) | OPT(O_FREE) | OPT(O_REPEAT))

/*
 * The options each command reads (zsbench(1), COMMANDS): any other given
 * would be silently ignored, so it is a usage error. classes and hist
 * measure no run (no threads, frees, rounds or stores); --ablate runs
 * zsram's variants only (no --stores); scaling draws no plot.
 */
static const struct {
	const char *name;
	unsigned uses;
} commands[] = {
	[CMD_BENCH] = {"zsbench", ~0u},
	[CMD_CLASSES] = {"zsbench classes", OPT_CORPUS | OPT_CODEC | OPT(O_JSON)},
	[CMD_HIST] = {"zsbench hist", OPT_CORPUS | OPT_CODEC},
	[CMD_ABLATE] = {"zsbench --ablate", OPT_CORPUS | OPT_CODEC | OPT_RUN | OPT(O_JSON) |
						    OPT(O_PLOT) | OPT(O_ABLATE)},
	[CMD_SCALING] = {"zsbench scaling",
			 OPT_CORPUS | OPT_CODEC | OPT_RUN | OPT(O_STORES) | OPT(O_JSON)},
};

/* 0 when the command reads every option given; else -1 after naming the first that it does not. */
static int check_command_options(const struct zsb_options *opt)
{
	unsigned uses = commands[opt->command].uses, extra;
	const char *why = "";

	if ((opt->command == CMD_CLASSES || opt->command == CMD_HIST) &&
	    (opt->ninputs || opt->pid)) {
		uses &= ~OPT(O_SEED); /* it seeds the built-in corpus, and there is no free order */
		why = " with --input or --pid";
	}
	extra = opt->given & ~uses;
	if (!extra)
		return 0;
	for (int o = O_INPUT; o <= O_ABLATE; o++)
		if (extra & OPT(o)) {
			if (o == O_ABLATE)
				zsb_error("--ablate and %s are two commands: give one",
					  commands[opt->command].name + strlen("zsbench "));
			else
				zsb_error("%s does not use --%s%s", commands[opt->command].name,
					  long_opts[o - O_INPUT].name, o == O_SEED ? why : "");
			break;
		}
	return -1;
}

static int add_input(struct zsb_options *opt, char *path)
{
	char **n = realloc(opt->inputs, (opt->ninputs + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	opt->inputs = n;
	opt->inputs[opt->ninputs++] = path;
	return 0;
}

/* The options that take a number. 0, or -1 after saying what is wrong. */
static int parse_number(struct zsb_options *opt, int c, const char *arg)
{
	unsigned long long u = 0;
	char *end = NULL;
	int bad = 0;

	switch (c) {
	case O_PID:
		bad = parse_uint(arg, 0x7fffffff, &u) || !u;
		opt->pid = (pid_t)u;
		break;
	case O_LEVEL: {
		long l;

		errno = 0;
		l = strtol(arg, &end, 10);
		/* out of int: ERANGE or a silent wrap would pass the range check */
		bad = end == arg || *end || errno || l < INT_MIN || l > INT_MAX;
		opt->level = (int)l;
		break;
	}
	case O_THREADS:
		bad = parse_uint(arg, 256, &u) || !u;
		opt->threads = (unsigned)u;
		opt->threads_set = 1;
		break;
	case O_FREE:
		opt->free_fraction = strtod(arg, &end);
		/* written so that NaN fails too: every comparison with it is false */
		bad = end == arg || *end || !(opt->free_fraction >= 0 && opt->free_fraction <= 1);
		break;
	case O_CHAIN:
		bad = parse_uint(arg, 16, &u) || !u;
		opt->chain_size = (unsigned)u;
		break;
	case O_SEED:
		bad = parse_uint(arg, ~0ull, &u);
		opt->seed = u;
		break;
	case O_REPEAT:
		bad = parse_uint(arg, ZSB_MAX_REPEAT, &u) || !u;
		opt->repeat = (unsigned)u;
		break;
	default:
		return -1;
	}
	if (bad)
		zsb_error("bad value '%s' for --%s", arg, long_opts[c - O_INPUT].name);
	return bad ? -1 : 0;
}

/* One option; 1 = stop with success (help, version), <0 = error. */
static int parse_one(struct zsb_options *opt, int c, char *arg)
{
	switch (c) {
	case O_INPUT:
		return add_input(opt, arg);
	case O_SIZE:
		switch (parse_size(arg, &opt->size)) {
		case 0:
			opt->size_set = 1;
			return 0;
		case -ERANGE:
			zsb_error("--size '%s' is too large", arg);
			return -1;
		case -EDOM:
			zsb_error("--size '%s' is less than one page (4K)", arg);
			return -1;
		}
		zsb_error("bad --size '%s' (bytes, with an optional K, M, G or T suffix)", arg);
		return -1;
	case O_ALGO:
		opt->algorithm = arg;
		return 0;
	case O_STORES:
		opt->stores_set = 1;
		return parse_stores(arg, &opt->stores);
	case O_JSON:
		opt->json_path = arg;
		return 0;
	case O_PLOT:
		opt->plot_path = arg;
		return 0;
	case O_ABLATE:
		opt->command = CMD_ABLATE;
		return 0;
	case 'h':
		zsb_usage(stdout);
		return 1;
	case 'V':
		printf("zsbench %s\n", ZSBENCH_VERSION);
		return 1;
	case '?':
		return -1;
	}
	return parse_number(opt, c, arg);
}

/*
 * The largest --size this machine can hold now. The pages stay in a memfd
 * (S bytes of shared memory) for the whole run, and the process of the
 * store being measured holds a copy of them on top: compressed, but a page
 * that does not compress is kept whole, and raw's buffer is prefaulted to
 * the pages' size; stores run one at a time. Its bookkeeping (free plan,
 * latencies: about 40 bytes a page) and the store's own metadata take a
 * few percent more, so a run is allowed 2 S + S/16 of MemAvailable: S up
 * to 16/33 of it. UINT64_MAX when the machine does not say.
 */
static uint64_t size_limit(void)
{
	uint64_t avail = bench_mem_available();

	return avail ? avail / 33 * 16 / BENCH_PAGE_SIZE * BENCH_PAGE_SIZE : UINT64_MAX;
}

/* Resolves opt->size (defaults, the memory check); 0, or -1 after saying why. */
static int resolve_size(struct zsb_options *opt)
{
	uint64_t limit = size_limit();
	char want[32], most[32];

	if (!opt->size_set && (opt->ninputs || opt->pid)) {
		/* a cap: what is read may be far less, so the default only shrinks */
		opt->size = ZSB_DEFAULT_READ_CAP < limit ? ZSB_DEFAULT_READ_CAP : limit;
		if (opt->size >= BENCH_PAGE_SIZE)
			return 0;
	} else if (!opt->size_set) {
		opt->size = ZSB_DEFAULT_SIZE;
	}
	if (opt->size <= limit && opt->size >= BENCH_PAGE_SIZE)
		return 0;
	zsb_fmt_mib(want, sizeof(want), (double)opt->size);
	zsb_fmt_mib(most, sizeof(most), (double)limit);
	zsb_error("--size %s%s: a run holds the pages and a store's copy of them, about 2.1 "
		  "times that, more than this machine has available (MemAvailable in "
		  "/proc/meminfo); at most %s here",
		  want, opt->size_set ? "" : " (the default)", most);
	return -1;
}

/*
 * Whether the --json or --plot file can be written, before any work: a run
 * of minutes must not end in "cannot open". An existing file is opened
 * for writing without truncation; a new one is created and removed again,
 * so that a run that fails early leaves nothing behind. 0, or -1 after
 * saying why.
 */
static int check_output(const char *path, const char *option)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);

	if (fd >= 0) {
		close(fd);
		unlink(path);
		return 0;
	}
	if (errno == EEXIST)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	zsb_error("%s %s: %s", option, path, strerror(errno));
	return -1;
}

/* Returns 0 to run, 1 to exit successfully (help), -1 on a usage error. */
int zsb_parse_options(int argc, char **argv, struct zsb_options *opt)
{
	static const char *const words[] = {"classes", "hist", "ablate", "scaling"};
	int c, r, first_is_command = 0;

	for (size_t w = 0; argc > 1 && w < sizeof(words) / sizeof(words[0]); w++)
		first_is_command |= !strcmp(argv[1], words[w]);

	*opt = (struct zsb_options){.algorithm = "lz4",
				    .threads = 1,
				    .free_fraction = 0.5,
				    .seed = BENCH_CORPUS_DEFAULT_SEED,
				    .repeat = 1,
				    .stores = (1u << ST_NSTORES) - 1};
	while ((c = getopt_long(argc, argv, "hV", long_opts, NULL)) != -1) {
		if (c >= O_INPUT && c <= O_ABLATE)
			opt->given |= OPT(c);
		r = parse_one(opt, c, optarg);
		if (r)
			return r < 0 ? -1 : 1;
	}
	for (int i = optind; i < argc; i++) {
		/* the first word names a command, unless --input takes it as a
		 * path; as argv[1] ("zsbench hist --input DIR") it always does
		 * (getopt moved it here, first of the words) */
		int cmd = i == optind && (opt->ninputs == 0 || first_is_command);

		if (cmd && !strcmp(argv[i], "classes"))
			opt->command = CMD_CLASSES;
		else if (cmd && !strcmp(argv[i], "hist"))
			opt->command = CMD_HIST;
		else if (cmd && !strcmp(argv[i], "ablate"))
			opt->command = CMD_ABLATE;
		else if (cmd && !strcmp(argv[i], "scaling"))
			opt->command = CMD_SCALING;
		else if (opt->ninputs) /* --input PATH... takes the paths that follow */
			add_input(opt, argv[i]);
		else {
			zsb_error("unexpected argument '%s' (paths go after --input)", argv[i]);
			return -1;
		}
	}
	if (check_command_options(opt))
		return -1;
	if (opt->command == CMD_SCALING && opt->threads_set && opt->threads < 2) {
		zsb_error("scaling compares one thread with more: --threads must be 2 or more");
		return -1;
	}
	if (opt->ninputs && opt->pid) {
		zsb_error("--input and --pid exclude each other");
		return -1;
	}
	/* the same list the stores' codecs use (zsb_algorithms): a name that
	 * only zsram knows runs there, and the other stores say they lack it
	 * (main.c); a bad level for a known one is a usage error, so that no
	 * store runs at a level others clamp */
	int lo, hi;
	if (!zsb_algorithm_known(opt->algorithm)) {
		zsb_error("unknown --algorithm '%s' (known here: %s)", opt->algorithm,
			  zsb_algorithms());
		return -1;
	}
	if (opt->level && !bench_codec_levels(opt->algorithm, &lo, &hi) &&
	    (opt->level < lo || opt->level > hi)) {
		zsb_error("bad --level %d for %s (%d..%d, or 0 for the default)", opt->level,
			  opt->algorithm, lo, hi);
		return -1;
	}
	if ((opt->json_path && check_output(opt->json_path, "--json")) ||
	    (opt->plot_path && check_output(opt->plot_path, "--plot")))
		return -1;
	return resolve_size(opt);
}
