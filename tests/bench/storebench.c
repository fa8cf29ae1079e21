/*
 * storebench.c -- throughput of the state store (src/store*.c) and, for
 * LMDB, the growth of the file when expired records are purged and new
 * ones written.
 *
 *   storebench -b lmdb [-p FILE] [-n N] [-w W] [-g G] [-k]
 *   storebench -b redis [-s HOST:PORT] [-n N] [-w W]
 *
 * Loads N greylist-like records ("g|203.0.113.0/24|sender1@example.com|
 * rcpt1@example.org", expiring in 1 hour), then prints:
 *   get    lookups of loaded keys in random order, 1 and 4 threads;
 *   put    W writes (LMDB: one fsync per commit, as the milter runs);
 *   incr   W increments of counters;
 * and for LMDB the growth test on a second file (FILE.growth, max_size
 * 1 GB): G distinct keys inserted, file size (st_size, and allocated
 * blocks); the clock moved 2 hours on (store_set_clock_offset);
 * store_purge (count, time); G more distinct keys; the file size again.
 * The loads use STORE_NOSYNC (said in the output): what is measured
 * there is space, not disk latency.
 *
 * Metrics are registered, as in the milter, so their cost is included.
 * The files are removed at the end unless -k; Redis keys (prefix
 * "storebench:") are deleted.  Only the given path and server are used.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "store.h"

#define GROWTH_MAP	(1ULL << 30)
#define TTL		3600
#define MAXTHREADS	4

static struct store_conf	 conf;
static const char		*backend = "lmdb";
static char			*path;
static char			*server = "127.0.0.1:6379";
static size_t			 nrec = 100000;
static size_t			 nwrite = 2000;
static size_t			 ngrowth = 1000000;
static int			 keep;

static void
usage(void)
{
	fprintf(stderr, "usage: storebench -b lmdb|redis [-p file] "
	    "[-s host:port] [-n records] [-w writes] [-g growth-keys] "
	    "[-k]\n");
	exit(2);
}

static void
die(const char *what, const struct err *e)
{
	fprintf(stderr, "storebench: %s: %s\n", what, e != NULL ? e->msg :
	    strerror(errno));
	exit(1);
}

static double
now_s(void)
{
	struct timespec	 ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The i-th greylist triplet key; distinct for distinct i. */
static void
key_of(char *buf, size_t len, uint64_t i)
{
	(void)snprintf(buf, len, "g|203.0.%u.0/24|sender%llu@example.com|"
	    "rcpt%llu@example.org", (unsigned)(i % 256),
	    (unsigned long long)i, (unsigned long long)(i % 1000));
}

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static struct store *
open_store(const struct store_conf *c, unsigned flags)
{
	struct store	*st;
	struct err	 e;

	err_clear(&e);
	if ((st = store_open(c, flags, &e)) == NULL)
		die("open", &e);
	return st;
}

/* Writes keys [from, from + n) expiring TTL seconds from store_now(). */
static double
load(struct store *st, uint64_t from, size_t n)
{
	struct store_rec	 r;
	struct err		 e;
	char			 key[128];
	uint64_t		 now = store_now(), i;
	double			 t0 = now_s();

	r.first = r.last = now;
	r.expires = now + TTL;
	r.count = 0;
	r.value = 0;
	for (i = from; i < from + n; i++) {
		key_of(key, sizeof(key), i);
		if (store_put(st, key, &r, &e) != RC_OK)
			die("put", &e);
	}
	return now_s() - t0;
}

struct job {
	pthread_t	 t;
	struct store	*st;
	size_t		 n;
	uint64_t	 seed;
	size_t		 misses;
};

static void *
get_main(void *arg)
{
	struct job		*j = arg;
	struct store_rec	 r;
	struct err		 e;
	char			 key[128];
	size_t			 i;
	enum rc			 rc;

	for (i = 0; i < j->n; i++) {
		key_of(key, sizeof(key), xorshift(&j->seed) % nrec);
		rc = store_get(j->st, key, &r, &e);
		if (rc == RC_NOTFOUND)
			j->misses++;
		else if (rc != RC_OK)
			die("get", &e);
	}
	return NULL;
}

/* Lookups per second with nthreads threads, n lookups each. */
static double
bench_get(struct store *st, int nthreads, size_t n)
{
	struct job	 j[MAXTHREADS];
	double		 t0;
	int		 i;

	t0 = now_s();
	for (i = 0; i < nthreads; i++) {
		memset(&j[i], 0, sizeof(j[i]));
		j[i].st = st;
		j[i].n = n;
		j[i].seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
		if (pthread_create(&j[i].t, NULL, get_main, &j[i]) != 0)
			die("pthread_create", NULL);
	}
	for (i = 0; i < nthreads; i++) {
		(void)pthread_join(j[i].t, NULL);
		if (j[i].misses > 0) {
			fprintf(stderr, "storebench: %zu lookups missed\n",
			    j[i].misses);
			exit(1);
		}
	}
	return (double)n * nthreads / (now_s() - t0);
}

static double
bench_put(struct store *st, size_t n)
{
	struct store_rec	 r;
	struct err		 e;
	char			 key[128];
	uint64_t		 now = store_now(), seed = 42;
	size_t			 i;
	double			 t0 = now_s();

	r.first = r.last = now;
	r.expires = now + TTL;
	r.value = 0;
	for (i = 0; i < n; i++) {
		/* half updates of loaded keys, half new keys */
		key_of(key, sizeof(key), i % 2 == 0 ?
		    xorshift(&seed) % nrec : nrec + i);
		r.count = (uint32_t)i;
		if (store_put(st, key, &r, &e) != RC_OK)
			die("put", &e);
	}
	return (double)n / (now_s() - t0);
}

static double
bench_incr(struct store *st, size_t n)
{
	struct err	 e;
	char		 key[64];
	uint32_t	 c;
	size_t		 i;
	double		 t0 = now_s();

	for (i = 0; i < n; i++) {
		(void)snprintf(key, sizeof(key), "b|192.0.2.%zu", i % 200);
		if (store_incr(st, key, TTL, &c, &e) != RC_OK)
			die("incr", &e);
	}
	return (double)n / (now_s() - t0);
}

static void
file_sizes(const char *p, unsigned long long *size, unsigned long long *alloc)
{
	struct stat	 sb;

	if (stat(p, &sb) == -1)
		die(p, NULL);
	*size = (unsigned long long)sb.st_size;
	*alloc = (unsigned long long)sb.st_blocks * 512;
}

static void
rm_env(const char *p)
{
	char	 lock[4096];

	(void)unlink(p);
	if (snprintf(lock, sizeof(lock), "%s-lock", p) < (int)sizeof(lock))
		(void)unlink(lock);
}

static void
growth(void)
{
	struct store_conf	 c = conf;
	struct store		*st;
	struct err		 e;
	unsigned long long	 size, alloc;
	size_t			 removed;
	double			 t, t0;
	char			 gpath[4096];

	if (snprintf(gpath, sizeof(gpath), "%s.growth", path) >=
	    (int)sizeof(gpath))
		die("path too long", NULL);
	rm_env(gpath);
	c.path = gpath;
	c.max_size = GROWTH_MAP;
	st = open_store(&c, STORE_NOSYNC);
	printf("growth: %s, max_size %llu bytes, STORE_NOSYNC\n", gpath,
	    (unsigned long long)GROWTH_MAP);
	t = load(st, 1000000000ULL, ngrowth);
	file_sizes(gpath, &size, &alloc);
	printf("growth: %zu keys inserted in %.1f s (%.0f/s): file %llu "
	    "bytes, allocated %llu bytes\n", ngrowth, t, ngrowth / t, size,
	    alloc);
	store_set_clock_offset(2 * 3600);
	t0 = now_s();
	if (store_purge(st, &removed, &e) != RC_OK)
		die("purge", &e);
	printf("growth: clock +2 h, store_purge removed %zu records in "
	    "%.2f s\n", removed, now_s() - t0);
	t = load(st, 2000000000ULL, ngrowth);
	file_sizes(gpath, &size, &alloc);
	printf("growth: %zu more keys inserted in %.1f s (%.0f/s): file "
	    "%llu bytes, allocated %llu bytes\n", ngrowth, t, ngrowth / t,
	    size, alloc);
	store_set_clock_offset(0);
	store_close(st);
	if (!keep)
		rm_env(gpath);
}

static int
del_fn(const char *key, const struct store_rec *r, void *arg)
{
	struct err	 e;

	(void)r;
	(void)store_del(arg, key, &e);
	return 0;
}

int
main(int argc, char **argv)
{
	struct store	*st;
	struct err	 e;
	char		*servers[1];
	double		 t;
	int		 ch, lmdb;

	while ((ch = getopt(argc, argv, "b:p:s:n:w:g:k")) != -1) {
		switch (ch) {
		case 'b':
			backend = optarg;
			break;
		case 'p':
			path = optarg;
			break;
		case 's':
			server = optarg;
			break;
		case 'n':
			nrec = strtoul(optarg, NULL, 10);
			break;
		case 'w':
			nwrite = strtoul(optarg, NULL, 10);
			break;
		case 'g':
			ngrowth = strtoul(optarg, NULL, 10);
			break;
		case 'k':
			keep = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || nrec == 0 || nwrite == 0)
		usage();
	lmdb = strcmp(backend, "lmdb") == 0;
	if (!lmdb && strcmp(backend, "redis") != 0)
		usage();
	(void)signal(SIGPIPE, SIG_IGN);
	metrics_init();

	memset(&conf, 0, sizeof(conf));
	if (lmdb) {
		if (path == NULL)
			path = "/tmp/storebench.lmdb";
		conf.backend = STORE_LMDB;
		conf.path = path;
		conf.max_size = GROWTH_MAP;
		rm_env(path);
		printf("storebench: lmdb %s, %zu records\n", path, nrec);
	} else {
		servers[0] = server;
		conf.backend = STORE_REDIS;
		conf.servers = servers;
		conf.nservers = 1;
		conf.prefix = "storebench:";
		conf.timeout_ms = 1000;
		conf.pool = 8;
		printf("storebench: redis %s, %zu records\n", server, nrec);
	}

	/* load without waiting for the disk, then measure as the milter
	 * runs (LMDB: a sync per commit) */
	st = open_store(&conf, lmdb ? STORE_NOSYNC : 0);
	t = load(st, 0, nrec);
	printf("load: %zu records in %.1f s (%.0f/s)%s\n", nrec, t, nrec / t,
	    lmdb ? " (STORE_NOSYNC)" : "");
	if (lmdb) {
		store_close(st);
		st = open_store(&conf, 0);
	}
	printf("%s get: %.0f lookups/s (1 thread)\n", backend,
	    bench_get(st, 1, nrec));
	printf("%s get: %.0f lookups/s (%d threads)\n", backend,
	    bench_get(st, MAXTHREADS, nrec), MAXTHREADS);
	printf("%s put: %.0f writes/s (1 thread%s)\n", backend,
	    bench_put(st, nwrite), lmdb ? ", fsync per commit" : "");
	printf("%s incr: %.0f increments/s (1 thread%s)\n", backend,
	    bench_incr(st, nwrite), lmdb ? ", fsync per commit" : "");
	if (!lmdb) {
		err_clear(&e);
		if (store_scan(st, "", del_fn, st, &e) != RC_OK)
			die("cleanup", &e);
	}
	store_close(st);
	if (lmdb && !keep)
		rm_env(path);
	if (lmdb && ngrowth > 0)
		growth();
	return 0;
}
