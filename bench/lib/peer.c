// SPDX-License-Identifier: MIT
/* Child processes and peer helpers; see peer.h. */
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads the result from the pipe, calling wait() between polls. Returns bytes read. */
static size_t read_result(int fd, struct bench_result *res, bench_wait_fn wait, void *wctx)
{
	size_t got = 0;

	while (got < sizeof(*res)) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, 100);
		ssize_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			if (wait)
				wait(wctx);
			continue;
		}
		n = read(fd, (char *)res + got, sizeof(*res) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* Reaps the child; turns "no result" into an error line. */
static int collect(pid_t pid, int fd, struct bench_result *res, bench_wait_fn wait, void *wctx,
		   const char *what)
{
	size_t got = read_result(fd, res, wait, wctx);
	int status = 0;

	close(fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got == sizeof(*res))
		return 0;
	memset(res, 0, sizeof(*res));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		snprintf(res->error, sizeof(res->error), "%s: cannot execute", what);
		return -ENOENT;
	}
	if (WIFSIGNALED(status))
		snprintf(res->error, sizeof(res->error), "%s: killed by signal %d (%s)", what,
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(res->error, sizeof(res->error), "%s: exited with status %d, no result",
			 what, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return -ECHILD;
}

/*
 * The child being waited for, for bench_child_stop() from a signal
 * handler; 0: none. Written by the thread that forks and reaps, before and
 * after it waits.
 */
static volatile pid_t running;

void bench_child_stop(int sig)
{
	pid_t pid = running;

	if (pid <= 0)
		return;
	kill(pid, sig);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/*
 * A child must not outlive zsbench: SIGTERM when the parent goes (its
 * handler, inherited from zsbench, removes kernel zram devices first).
 */
static void die_with_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		raise(SIGTERM);
}

int bench_child_run(int (*fn)(void *ctx, struct bench_result *res), void *ctx,
		    struct bench_result *res, bench_wait_fn wait, void *wctx)
{
	pid_t parent = getpid();
	int fds[2], err;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		static struct bench_result
			child_res; /* static: keep it off the RSS delta's stack */

		close(fds[0]);
		die_with_parent(parent);
		fn(ctx, &child_res);
		_exit(write_all(fds[1], &child_res, sizeof(child_res)) ? 1 : 0);
	}
	close(fds[1]);
	running = pid;
	err = collect(pid, fds[0], res, wait, wctx, "child");
	running = 0;
	return err;
}

static void keep_fd(int fd)
{
	if (fd >= 0)
		fcntl(fd, F_SETFD, 0);
}

int bench_peer_run(const struct bench_peer_req *req, struct bench_result *res, bench_wait_fn wait,
		   void *wctx)
{
	char a[10][96];
	char *argv[12];
	pid_t parent = getpid();
	int fds[2], err;
	pid_t pid;

	if (access(req->helper, X_OK) < 0) {
		memset(res, 0, sizeof(*res));
		snprintf(res->error, sizeof(res->error), "%s: %s", req->helper, strerror(errno));
		return -ENOENT;
	}
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	snprintf(a[0], sizeof(a[0]), "--pages-fd=%d", req->pages->fd);
	snprintf(a[1], sizeof(a[1]), "--npages=%zu", req->pages->npages);
	snprintf(a[2], sizeof(a[2]), "--result-fd=%d", fds[1]);
	snprintf(a[3], sizeof(a[3]), "--progress-fd=%d", req->progress_fd);
	snprintf(a[4], sizeof(a[4]), "--algorithm=%s", req->codec);
	snprintf(a[5], sizeof(a[5]), "--level=%d", req->level);
	snprintf(a[6], sizeof(a[6]), "--threads=%u", req->threads);
	snprintf(a[7], sizeof(a[7]), "--free-fraction=%.17g", req->free_fraction);
	snprintf(a[8], sizeof(a[8]), "--seed=%" PRIu64, req->seed);
	snprintf(a[9], sizeof(a[9]), "--huge=%zu", req->huge);
	argv[0] = (char *)req->helper;
	for (int i = 0; i < 10; i++)
		argv[i + 1] = a[i];
	argv[11] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		die_with_parent(parent);
		keep_fd(req->pages->fd);
		keep_fd(req->progress_fd);
		keep_fd(fds[1]);
		execv(req->helper, argv);
		_exit(127);
	}
	close(fds[1]);
	running = pid;
	err = collect(pid, fds[0], res, wait, wctx, req->helper);
	running = 0;
	return err;
}

void bench_test_kill(const char *key)
{
	const char *want = getenv("ZSBENCH_TEST_KILL");

	if (want && !strcmp(want, key))
		kill(getpid(), SIGKILL);
}

/* ---- helper side ---- */

struct peer_args {
	int pages_fd, result_fd, progress_fd, level;
	size_t npages, huge;
	unsigned threads;
	double free_fraction;
	uint64_t seed;
	const char *codec;
};

static int parse_args(int argc, char **argv, struct peer_args *pa)
{
	*pa = (struct peer_args){.pages_fd = -1,
				 .result_fd = -1,
				 .progress_fd = -1,
				 .threads = 1,
				 .free_fraction = 0.5,
				 .codec = "lz4"};
	for (int i = 1; i < argc; i++) {
		char *v = strchr(argv[i], '=');

		if (!v)
			return -1;
		v++;
		if (!strncmp(argv[i], "--pages-fd=", 11))
			pa->pages_fd = atoi(v);
		else if (!strncmp(argv[i], "--npages=", 9))
			pa->npages = strtoull(v, NULL, 10);
		else if (!strncmp(argv[i], "--result-fd=", 12))
			pa->result_fd = atoi(v);
		else if (!strncmp(argv[i], "--progress-fd=", 14))
			pa->progress_fd = atoi(v);
		else if (!strncmp(argv[i], "--algorithm=", 12))
			pa->codec = v;
		else if (!strncmp(argv[i], "--level=", 8))
			pa->level = atoi(v);
		else if (!strncmp(argv[i], "--threads=", 10))
			pa->threads = (unsigned)atoi(v);
		else if (!strncmp(argv[i], "--free-fraction=", 16))
			pa->free_fraction = strtod(v, NULL);
		else if (!strncmp(argv[i], "--seed=", 7))
			pa->seed = strtoull(v, NULL, 10);
		else if (!strncmp(argv[i], "--huge=", 7))
			pa->huge = strtoull(v, NULL, 10);
		else
			return -1;
	}
	return pa->pages_fd < 0 || pa->result_fd < 0 ? -1 : 0;
}

int bench_peer_main(int argc, char **argv, const struct bench_allocator *alloc)
{
	static struct bench_result res;
	struct bench_store_ops ops = bench_mstore_ops;
	struct bench_mstore_arg marg;
	struct bench_run_cfg cfg;
	struct bench_pages ps;
	struct peer_args pa;
	int err;

	if (parse_args(argc, argv, &pa))
		return 2;
	marg = (struct bench_mstore_arg){.alloc = alloc, .codec = pa.codec, .level = pa.level,
					  .huge = pa.huge};
	cfg = (struct bench_run_cfg){
		.threads = pa.threads, .free_fraction = pa.free_fraction, .seed = pa.seed};
	if (pa.progress_fd >= 0)
		cfg.progress = bench_progress_map(pa.progress_fd);
	ops.name = alloc->name;
	err = bench_pages_map(&ps, pa.pages_fd, pa.npages);
	if (err) {
		memset(&res, 0, sizeof(res));
		snprintf(res.error, sizeof(res.error), "%s: cannot map the pages: %s", alloc->name,
			 strerror(-err));
	} else {
		bench_store_run(&ops, &marg, &ps, &cfg, &res);
	}
	return write_all(pa.result_fd, &res, sizeof(res)) ? 1 : 0;
}
