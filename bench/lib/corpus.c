// SPDX-License-Identifier: MIT
/*
 * The built-in corpus: pages that compress like process memory.
 *
 * A page is one of: a zero page, another same-filled page, an incompressible
 * page (already-compressed or random data: media, keys, hashes), or a heap
 * page. A heap page is a run of malloc-like chunks (an 8-byte size header,
 * then a payload) whose payload kinds mimic what heaps hold: objects with a
 * reference count, a type pointer and fields; arrays of pointers into a few
 * regions; strings of English-like words drawn with a Zipf law; arrays of
 * small integers and of doubles; hash-table entries with random hashes; and
 * free chunks (zeros). Each heap page has a "flavour" (the mix of those
 * kinds, drawn per page) so that compressed sizes spread broadly, as in a
 * real heap whose pages hold different data structures.
 *
 * Everything is integer-only and depends on (seed, page index) alone. The
 * weights below were tuned against lz4 histograms of real processes on a
 * Debian 12 machine; docs/corpus.md has the numbers and the bands that
 * tests/zsbench/test_corpus.c asserts. Changing anything here changes the
 * corpus: update docs/corpus.md and the golden hash in that test.
 */
#include "corpus.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "prng.h"

/* Page kinds, in parts per 10000. */
#define P_ZERO	 300
#define P_SAME	 60
#define P_RANDOM 520
/* Heap pages only partly used, in parts per 10000 of heap pages. */
#define P_PARTIAL 1200

/* clang-format off */
static const char *const words[] = {
	"the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with",
	"be", "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which",
	"but", "have", "an", "had", "they", "you", "were", "their", "one", "all", "we",
	"can", "her", "has", "there", "been", "if", "more", "when", "will", "would", "who",
	"so", "no", "other", "into", "out", "some", "time", "what", "about", "up", "them",
	"than", "only", "may", "its", "new", "these", "two", "first", "any", "like", "then",
	"state", "value", "return", "error", "file", "name", "list", "user", "data", "type",
	"object", "buffer", "memory", "page", "server", "client", "request", "response",
	"string", "number", "index", "table", "length", "count", "default", "config", "path",
	"module", "function", "result", "thread", "process", "version", "message", "status",
	"update", "system", "window", "handle", "session", "stream", "format", "source",
	"target", "option", "parent", "child", "content", "header", "payload", "address",
	"network", "connection", "timeout", "account", "document", "element", "attribute",
	"callback", "context", "instance", "property", "resource", "service", "transaction",
	"available", "following", "character", "different", "important", "information",
	"government", "development", "environment", "performance", "relationship",
	"management", "international", "particularly", "understanding", "considerable",
	"application", "implementation", "configuration", "initialization", "compression",
	"allocation", "fragmentation", "synchronization", "representation", "Zsmalloc",
	"Linux", "London", "Monday", "January", "Paris", "Python", "Mozilla", "Debian",
};
/* clang-format on */
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* Zipf(1) over the word ranks, as integer cumulative weights. */
static uint32_t zipf_cum[NWORDS];
static uint32_t zipf_total;

static pthread_once_t zipf_once = PTHREAD_ONCE_INIT;

static void zipf_init(void)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < NWORDS; i++) {
		sum += 1000000u / (uint32_t)(i + 1);
		zipf_cum[i] = sum;
	}
	zipf_total = sum;
}

static const char *zipf_word(struct bench_rng *r)
{
	uint32_t x = (uint32_t)bench_rng_below(r, zipf_total);
	size_t lo = 0, hi = NWORDS - 1;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (zipf_cum[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return words[lo];
}

/* Payload kinds of heap chunks. */
enum chunk_kind {
	K_OBJECT,
	K_POINTERS,
	K_TEXT,
	K_INTS,
	K_DOUBLES,
	K_HASHES,
	K_FREE,
	K_COPY,
	K_NKINDS
};

/* Per-page state: the flavour and the "address space" the page's pointers point into. */
struct heap {
	struct bench_rng r;
	uint32_t weight[K_NKINDS]; /* flavour: relative weights of chunk kinds */
	uint32_t wsum;
	uint64_t region[3];    /* bases of the regions pointers point into */
	uint64_t cursor;       /* recent allocations: most pointers land near it */
	uint64_t types[4];     /* "type object" pointers shared by many objects */
	uint8_t layout[4][16]; /* field kinds of each type's objects */
};

enum field { F_COUNT, F_TYPE, F_NEAR, F_FAR, F_NULL, F_SMALL, F_FLAGS, F_DOUBLE, F_NFIELDS };

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* Pointers cluster: objects point at objects allocated near them. */
static uint64_t near_pointer(struct heap *h)
{
	/* One draw per statement: C leaves the order of operands unspecified,
	 * and the corpus must not depend on the compiler. */
	if (bench_rng_chance(&h->r, 1, 16)) {
		uint64_t base = h->region[bench_rng_below(&h->r, 3)];

		h->cursor = base + (bench_rng_below(&h->r, 1u << 20) << 4);
	}
	h->cursor += bench_rng_below(&h->r, 8) << 4;
	return h->cursor + (bench_rng_below(&h->r, 64) << 4);
}

static uint64_t far_pointer(struct heap *h)
{
	uint64_t base = h->region[bench_rng_below(&h->r, 3)];

	return base + (bench_rng_below(&h->r, 1u << 22) << 4);
}

static uint64_t field_value(struct heap *h, int type, enum field f, size_t i)
{
	switch (f) {
	case F_COUNT:
		return bench_rng_range(&h->r, 1, 3);
	case F_TYPE:
		return h->types[type];
	case F_NEAR:
		return near_pointer(h);
	case F_FAR:
		return far_pointer(h);
	case F_SMALL:
		return i + bench_rng_below(&h->r, 4);
	case F_FLAGS:
		return 0x100000001ull << type;
	case F_DOUBLE:
		return 0x4000000000000000ull + ((uint64_t)bench_rng_below(&h->r, 64) << 46);
	case F_NULL:
	case F_NFIELDS:
		break;
	}
	return 0;
}

/* Objects of one of the page's types: refcount, type, then the type's layout. */
static void fill_object(struct heap *h, uint8_t *p, size_t n)
{
	int type = (int)bench_rng_below(&h->r, 4);

	for (size_t off = 0, i = 0; off + 8 <= n; off += 8, i++) {
		enum field f = i == 0	? F_COUNT
			       : i == 1 ? F_TYPE
					: (enum field)h->layout[type][i % 16];

		put64(p + off, field_value(h, type, f, i));
	}
}

static void fill_pointers(struct heap *h, uint8_t *p, size_t n)
{
	for (size_t off = 0; off + 8 <= n; off += 8)
		put64(p + off, bench_rng_chance(&h->r, 1, 6) ? 0 : near_pointer(h));
}

/* Strings: words with a Zipf law; some are indented lines of code. */
static void fill_text(struct heap *h, uint8_t *p, size_t n)
{
	size_t off = 0;

	while (off < n) {
		const char *w = zipf_word(&h->r);
		size_t len = strlen(w);

		if (off + len + 1 > n)
			break;
		memcpy(p + off, w, len);
		off += len;
		if (bench_rng_chance(&h->r, 1, 10)) {
			size_t indent = 4 * bench_rng_below(&h->r, 4);

			p[off++] = '\n';
			for (size_t k = 0; k < indent && off < n; k++)
				p[off++] = ' ';
		} else {
			p[off++] = bench_rng_chance(&h->r, 1, 16) ? '.' : ' ';
		}
	}
}

static void fill_ints(struct heap *h, uint8_t *p, size_t n)
{
	uint32_t v = (uint32_t)bench_rng_below(&h->r, 4096);
	uint32_t spread = 1u << bench_rng_below(&h->r, 10);

	for (size_t off = 0; off + 4 <= n; off += 4) {
		uint32_t x = v + (uint32_t)bench_rng_below(&h->r, spread);

		memcpy(p + off, &x, 4);
	}
}

static void fill_doubles(struct heap *h, uint8_t *p, size_t n)
{
	/* measurements: one magnitude, a few significant bits */
	uint64_t hi = 0x4080000000000000ull + (bench_rng_below(&h->r, 16) << 52);
	int bits = (int)bench_rng_range(&h->r, 4, 40);

	for (size_t off = 0; off + 8 <= n; off += 8)
		put64(p + off, hi | (bench_rng_next(&h->r) >> (64 - bits) << (52 - bits)));
}

static void fill_hashes(struct heap *h, uint8_t *p, size_t n)
{
	/* (hash, key pointer, value pointer) entries, some empty */
	for (size_t off = 0; off + 24 <= n; off += 24) {
		if (bench_rng_chance(&h->r, 1, 3))
			continue;
		put64(p + off, bench_rng_next(&h->r));
		put64(p + off + 8, near_pointer(h));
		put64(p + off + 16, near_pointer(h));
	}
}

/* A copy of an earlier chunk of the page with a word changed: heaps repeat themselves. */
static void fill_copy(struct heap *h, uint8_t *page, size_t off, size_t n)
{
	size_t from;

	if (off < n + 8) {
		fill_object(h, page + off, n);
		return;
	}
	from = 8 + bench_rng_below(&h->r, (off - n - 8) / 8 + 1) * 8;
	memcpy(page + off, page + from, n);
	from = off + 8 * bench_rng_below(&h->r, n / 8); /* the word to change */
	put64(page + from, near_pointer(h));
}

static enum chunk_kind pick_kind(struct heap *h)
{
	uint32_t x = (uint32_t)bench_rng_below(&h->r, h->wsum);
	int k = 0;

	while (x >= h->weight[k])
		x -= h->weight[k++];
	return (enum chunk_kind)k;
}

/* Chunk sizes: mostly small, sometimes a few hundred bytes, rarely big. */
static size_t chunk_size(struct heap *h, enum chunk_kind k)
{
	uint64_t x = bench_rng_below(&h->r, 100);
	size_t n = x < 60   ? bench_rng_range(&h->r, 16, 96)
		   : x < 92 ? bench_rng_range(&h->r, 96, 512)
			    : bench_rng_range(&h->r, 512, 2048);

	if (k == K_FREE)
		n = bench_rng_range(&h->r, 16, 256);
	return (n + 15) & ~(size_t)15;
}

static void heap_flavour(struct heap *h)
{
	/* Each page mixes kinds with weights drawn per page: 0..w_max each. */
	static const uint32_t w_max[K_NKINDS] = {
		[K_OBJECT] = 30, [K_POINTERS] = 10, [K_TEXT] = 30, [K_INTS] = 10,
		[K_DOUBLES] = 4, [K_HASHES] = 4,    [K_FREE] = 25, [K_COPY] = 50,
	};

	h->wsum = 0;
	for (int k = 0; k < K_NKINDS; k++) {
		/* squared: a page is usually dominated by one or two kinds */
		uint32_t w = (uint32_t)bench_rng_below(&h->r, w_max[k] + 1);

		h->weight[k] = w * w;
		h->wsum += h->weight[k];
	}
	if (!h->wsum) {
		h->weight[K_OBJECT] = 1;
		h->wsum = 1;
	}
}

static void heap_page(struct heap *h, uint8_t *page)
{
	size_t off = 0, end = BENCH_PAGE_SIZE;

	heap_flavour(h);
	/* the top of a heap, or an arena not used up yet: the rest stays zero */
	if (bench_rng_chance(&h->r, P_PARTIAL, 10000))
		end = 16 * bench_rng_range(&h->r, 8, BENCH_PAGE_SIZE / 16);
	while (off + 16 <= end) {
		enum chunk_kind k = pick_kind(h);
		size_t n = chunk_size(h, k);

		if (off + 8 + n > end)
			n = end - off - 8;
		put64(page + off, (uint64_t)(n + 8) | (k == K_FREE ? 0 : 1));
		off += 8;
		switch (k) {
		case K_OBJECT:
			fill_object(h, page + off, n);
			break;
		case K_POINTERS:
			fill_pointers(h, page + off, n);
			break;
		case K_TEXT:
			fill_text(h, page + off, n);
			break;
		case K_INTS:
			fill_ints(h, page + off, n);
			break;
		case K_DOUBLES:
			fill_doubles(h, page + off, n);
			break;
		case K_HASHES:
			fill_hashes(h, page + off, n);
			break;
		case K_COPY:
			fill_copy(h, page, off, n);
			break;
		case K_FREE:
		case K_NKINDS:
			break; /* zeros: the page starts zeroed */
		}
		off += n;
	}
}

/* Compressed or encrypted data: random bytes, sometimes followed by zeros. */
static void random_page(struct bench_rng *r, uint8_t *page)
{
	size_t end = BENCH_PAGE_SIZE;

	if (bench_rng_chance(r, 2, 5))
		end = 8 * bench_rng_range(r, 2560 / 8, BENCH_PAGE_SIZE / 8);
	for (size_t off = 0; off < end; off += 8)
		put64(page + off, bench_rng_next(r));
}

static void same_page(struct bench_rng *r, uint8_t *page)
{
	static const uint64_t patterns[] = {~0ull, 0x0101010101010101ull, 0x2020202020202020ull,
					    0x00000000deadbeefull};
	uint64_t v = patterns[bench_rng_below(r, 4)];

	for (size_t off = 0; off < BENCH_PAGE_SIZE; off += 8)
		put64(page + off, v);
}

void bench_corpus_page(uint64_t seed, uint64_t index, uint8_t *page)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull ^ index;
	struct heap h;
	uint64_t kind;

	pthread_once(&zipf_once, zipf_init);
	bench_rng_seed(&h.r, bench_splitmix64(&s));
	/* The address space is per seed (one "process"), the rest per page. */
	for (int i = 0; i < 3; i++) {
		uint64_t as = seed + 17 * (uint64_t)i;

		h.region[i] =
			(0x0000550000000000ull | (bench_splitmix64(&as) & 0x00ffff000000ull)) +
			((uint64_t)i << 40);
	}
	for (int i = 0; i < 4; i++)
		h.types[i] = h.region[0] + 0x1000 * (uint64_t)(i + 1) * 40;
	h.cursor = h.region[0] + (bench_rng_below(&h.r, 1u << 20) << 4);
	for (int t = 0; t < 4; t++)
		for (int i = 0; i < 16; i++)
			h.layout[t][i] = (uint8_t)bench_rng_below(&h.r, F_NFIELDS);
	memset(page, 0, BENCH_PAGE_SIZE);
	kind = bench_rng_below(&h.r, 10000);
	if (kind < P_ZERO)
		return;
	if (kind < P_ZERO + P_SAME)
		same_page(&h.r, page);
	else if (kind < P_ZERO + P_SAME + P_RANDOM)
		random_page(&h.r, page);
	else
		heap_page(&h, page);
}

int bench_corpus_generate(struct bench_pages *ps, size_t npages, uint64_t seed)
{
	int err = bench_pages_reserve(ps, ps->npages + npages);

	if (err)
		return err;
	for (size_t i = 0; i < npages; i++) {
		uint8_t *page = bench_pages_append(ps);

		if (!page)
			return -errno;
		bench_corpus_page(seed, i, page);
	}
	return 0;
}
