// SPDX-License-Identifier: MIT
/* The kernel's zram, driven through sysfs and /dev/zramN; see kzram.h. */
#include "kzram.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CONTROL	 "/sys/class/zram-control"
#define MAX_DEVS 8

struct bench_kzram {
	int id;
	int fd;
	int slot; /* in the registry */
	char algorithm[32];
	uint64_t compacted0; /* pages_compacted before a compaction */
};

/*
 * Devices added and not yet removed, for cleanup on signals and after a
 * store's process died. bench_kzram_init() moves the registry into memory
 * shared with the children forked later, so that the parent can remove
 * what a child left when it died of SIGKILL or a crash; without it, each
 * process sees its own. An entry is claimed by whoever removes the device
 * (a compare-and-swap on dev), so that it is removed once, and never after
 * its number was handed to someone else's hot_add.
 */
struct reg_entry {
	int dev;     /* atomic: 0 free, -1 being filled, else the device's number + 1 */
	pid_t owner; /* the process that added it, which alone holds fd */
	int fd;	     /* its open /dev/zramN in owner, or -1 */
};

static struct reg_entry reg_local[MAX_DEVS];
static struct reg_entry *reg = reg_local;

int bench_kzram_init(void)
{
	void *p = mmap(NULL, sizeof(reg_local), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	reg = p; /* zero-filled: every entry free */
	return 0;
}

/* Takes entry i for removal: its device number, or -1 when it holds none. */
static int claim(int i)
{
	int v = __atomic_load_n(&reg[i].dev, __ATOMIC_ACQUIRE);

	/* acquire: pairs with register_device's release, so owner and fd are set */
	while (v > 0)
		if (__atomic_compare_exchange_n(&reg[i].dev, &v, 0, false, __ATOMIC_ACQUIRE,
						__ATOMIC_ACQUIRE))
			return v - 1;
	return -1;
}

/*
 * Blocks the signals whose handlers clean up (zsbench's: SIGINT, SIGTERM,
 * SIGHUP, SIGQUIT) while a device is added and registered, or claimed and
 * removed: a signal in between would find it unregistered, or claimed and
 * half removed, and kill the process with the device left behind.
 */
static void block_signals(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

static void restore_signals(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Writes a string to a sysfs file; async-signal-safe. 0 or -errno. */
static int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

static int sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* Formats a small non-negative int without stdio (signal handlers). */
static char *fmt_int(char *end, int v)
{
	*--end = '\0';
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

static void dev_path(char *buf, size_t len, int id, const char *attr)
{
	snprintf(buf, len, "/sys/block/zram%d/%s", id, attr);
}

/* Async-signal-safe teardown of one device. */
static void remove_device(int id, int fd)
{
	char path[64] = "/sys/block/zram", num[16], *n = fmt_int(num + sizeof(num), id);
	const struct timespec ts = {0, 20 * 1000 * 1000};

	if (fd >= 0)
		close(fd);
	strcat(path, n);
	strcat(path, "/reset");
	/* EBUSY while someone has it open: another thread's I/O in flight, or
	 * udev probing it after the change event that the reset sends (then
	 * hot_remove fails likewise); retry each for up to 2 s */
	for (int i = 0; i < 100 && sysfs_write(path, "1") == -EBUSY; i++)
		nanosleep(&ts, NULL);
	for (int i = 0; i < 100 && sysfs_write(CONTROL "/hot_remove", n) == -EBUSY; i++)
		nanosleep(&ts, NULL);
}

void bench_kzram_cleanup_all(void)
{
	for (int i = 0; i < MAX_DEVS; i++) {
		int id = claim(i);

		if (id >= 0)
			remove_device(id, reg[i].owner == getpid() ? reg[i].fd : -1);
	}
}

int bench_kzram_available(char *why, size_t len)
{
	if (access(CONTROL "/hot_add", F_OK) < 0) {
		snprintf(why, len, "no %s (zram module not loaded)", CONTROL);
		return 0;
	}
	/* hot_add is readable by root only: test the user first, so that the
	 * reason is the right one */
	if (geteuid() != 0) {
		snprintf(why, len, "not running as root");
		return 0;
	}
	if (access(CONTROL "/hot_add", R_OK) < 0) {
		snprintf(why, len, "%s/hot_add: %s", CONTROL, strerror(errno));
		return 0;
	}
	return 1;
}

/* Sets the algorithm: the one asked for, else lz4, else keep the default. */
static int set_algorithm(struct bench_kzram *z, const char *want)
{
	char path[64], list[256], *cur, *end;

	dev_path(path, sizeof(path), z->id, "comp_algorithm");
	if (sysfs_write(path, want) != 0)
		sysfs_write(path, "lz4"); /* failing that, the kernel's default stays */
	if (sysfs_read(path, list, sizeof(list)))
		return -EIO;
	/* the current one is in brackets: "lzo [lz4] zstd" */
	cur = strchr(list, '[');
	end = cur ? strchr(cur, ']') : NULL;
	if (!cur || !end)
		return -EIO;
	*end = '\0';
	snprintf(z->algorithm, sizeof(z->algorithm), "%s", cur + 1);
	return 0;
}

static int open_device(int id)
{
	char path[32];

	snprintf(path, sizeof(path), "/dev/zram%d", id);
	for (int i = 0; i < 100; i++) { /* the node may appear a moment after hot_add */
		int fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);

		if (fd >= 0 || errno != ENOENT)
			return fd < 0 ? -errno : fd;
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	return -ENOENT;
}

/* Call with the signals blocked. 0, or -EBUSY when the registry is full. */
static int register_device(struct bench_kzram *z)
{
	for (int i = 0; i < MAX_DEVS; i++) {
		int free_entry = 0;

		if (!__atomic_compare_exchange_n(&reg[i].dev, &free_entry, -1, false,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		reg[i].owner = getpid();
		reg[i].fd = -1;
		/* release: pairs with claim()'s acquire */
		__atomic_store_n(&reg[i].dev, z->id + 1, __ATOMIC_RELEASE);
		z->slot = i;
		return 0;
	}
	return -EBUSY;
}

struct bench_kzram *bench_kzram_create(uint64_t disksize, const char *algorithm, char *err,
				       size_t errlen)
{
	struct bench_kzram *z = calloc(1, sizeof(*z));
	char buf[64], path[64];
	sigset_t old;
	int r;

	if (!z || !bench_kzram_available(err, errlen)) {
		if (!z)
			snprintf(err, errlen, "out of memory");
		free(z);
		return NULL;
	}
	z->fd = -1;
	block_signals(&old);
	r = sysfs_read(CONTROL "/hot_add", buf, sizeof(buf));
	if (!r) {
		z->id = atoi(buf);
		r = register_device(z);
		if (r)
			remove_device(z->id, -1);
	}
	restore_signals(&old);
	if (r) {
		if (r == -EBUSY)
			snprintf(err, errlen, "too many zram devices in use by zsbench");
		else
			snprintf(err, errlen, "hot_add: %s", strerror(-r));
		free(z);
		return NULL;
	}
	r = set_algorithm(z, algorithm);
	snprintf(buf, sizeof(buf), "%" PRIu64, disksize);
	dev_path(path, sizeof(path), z->id, "disksize");
	if (!r)
		r = sysfs_write(path, buf);
	if (!r) {
		r = open_device(z->id);
		if (r >= 0) {
			z->fd = r;
			reg[z->slot].fd = r; /* read by this process's own handlers only */
			return z;
		}
	}
	snprintf(err, errlen, "zram%d: %s", z->id, strerror(-r));
	bench_kzram_destroy(z);
	return NULL;
}

void bench_kzram_destroy(struct bench_kzram *z)
{
	sigset_t old;

	if (!z)
		return;
	block_signals(&old);
	if (claim(z->slot) == z->id) /* else a handler or the parent removed it */
		remove_device(z->id, z->fd);
	else if (z->fd >= 0)
		close(z->fd);
	restore_signals(&old);
	free(z);
}

int bench_kzram_id(const struct bench_kzram *z)
{
	return z->id;
}

const char *bench_kzram_algorithm(const struct bench_kzram *z)
{
	return z->algorithm;
}

int bench_kzram_write(struct bench_kzram *z, uint64_t index, const void *page)
{
	ssize_t n = pwrite(z->fd, page, 4096, (off_t)(index * 4096));

	return n == 4096 ? 0 : n < 0 ? -errno : -EIO;
}

int bench_kzram_read(struct bench_kzram *z, uint64_t index, void *page)
{
	ssize_t n = pread(z->fd, page, 4096, (off_t)(index * 4096));

	return n == 4096 ? 0 : n < 0 ? -errno : -EIO;
}

int bench_kzram_discard(struct bench_kzram *z, uint64_t index, uint64_t npages)
{
	uint64_t range[2] = {index * 4096, npages * 4096};

	return ioctl(z->fd, BLKDISCARD, range) < 0 ? -errno : 0;
}

int bench_kzram_compact(struct bench_kzram *z)
{
	char path[64];

	dev_path(path, sizeof(path), z->id, "compact");
	return sysfs_write(path, "1");
}

int bench_kzram_mm_stat(struct bench_kzram *z, uint64_t v[9])
{
	char path[64], buf[512];
	int r;

	memset(v, 0, 9 * sizeof(*v));
	dev_path(path, sizeof(path), z->id, "mm_stat");
	r = sysfs_read(path, buf, sizeof(buf));
	if (r)
		return r;
	sscanf(buf,
	       "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
	       " %" SCNu64 " %" SCNu64,
	       &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]);
	return 0;
}

/* ---- as a store ---- */

static void *kz_create(void *arg, size_t npages, char *err, size_t errlen)
{
	return bench_kzram_create((uint64_t)(npages ? npages : 1) * 4096, arg, err, errlen);
}

static int kz_write(void *s, size_t index, const void *page)
{
	return bench_kzram_write(s, index, page);
}

static int kz_read(void *s, size_t index, void *page)
{
	return bench_kzram_read(s, index, page);
}

static int kz_discard(void *s, size_t index)
{
	return bench_kzram_discard(s, index, 1);
}

static long kz_compact(void *s)
{
	struct bench_kzram *z = s;
	uint64_t v[9];

	bench_kzram_mm_stat(z, v);
	z->compacted0 = v[6];
	if (bench_kzram_compact(z))
		return -1;
	bench_kzram_mm_stat(z, v);
	return (long)(v[6] - z->compacted0);
}

static void kz_memory(void *s, struct bench_mem *m)
{
	uint64_t v[9];

	if (bench_kzram_mm_stat(s, v))
		return;
	m->payload = (double)v[1];
	m->held = (double)v[2];
}

static void kz_extra(void *s, char *buf, size_t len)
{
	struct bench_kzram *z = s;
	uint64_t v[9];

	bench_kzram_mm_stat(z, v);
	snprintf(buf, len,
		 "\"device\": \"zram%d\", \"algorithm\": \"%s\", \"mem_used_max\": %" PRIu64
		 ", \"same_pages\": %" PRIu64 ", \"pages_compacted\": %" PRIu64
		 ", \"huge_pages\": %" PRIu64,
		 z->id, z->algorithm, v[4], v[5], v[6], v[7]);
}

static void kz_destroy(void *s)
{
	bench_kzram_destroy(s);
}

const struct bench_store_ops bench_kzram_ops = {
	.name = "kernel zram",
	.multithread = 1,
	.has_rss = 0,
	.create = kz_create,
	.write = kz_write,
	.read = kz_read,
	.discard = kz_discard,
	.compact = kz_compact,
	.memory = kz_memory,
	.extra = kz_extra,
	.destroy = kz_destroy,
};
