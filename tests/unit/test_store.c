/*
 * test_store.c - the state store: the record text form and key shaping,
 * then the same tests against LMDB (a file under /tmp) and Redis (a
 * redis-server this test starts on a free loopback port; skipped if
 * redis-server is not installed), plus backend-specific ones: a full
 * LMDB map and its purge, the purger thread, a Redis outage and its
 * recovery, failover, AUTH and SELECT.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <lmdb.h>

#include "store.h"
#include "unit.h"
#include "util.h"

struct fx {
	enum store_backend	 backend;
	/* LMDB */
	char			 dir[64];
	char			 path[96];
	/* Redis */
	int			 have_redis;
	int			 port;
	pid_t			 pid;
	char			 server[32];
	char			*servers[2];
	struct store_conf	 conf;
	struct store		*st;
};

static struct fx	 fx_lmdb = { .backend = STORE_LMDB };
static struct fx	 fx_redis = { .backend = STORE_REDIS };

/* ---- helpers ---- */

static int
free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd, port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static redisContext *
raw_connect(int port)
{
	struct timeval	 tv = { 1, 0 };
	redisContext	*c;

	c = redisConnectWithTimeout("127.0.0.1", port, tv);
	if (c != NULL && c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* A raw command on a new connection; the reply (caller frees) or NULL. */
static redisReply *
raw(struct fx *f, int argc, const char **argv)
{
	redisContext	*c = raw_connect(f->port);
	redisReply	*r;

	if (c == NULL)
		return NULL;
	r = redisCommandArgv(c, argc, argv, NULL);
	redisFree(c);
	return r;
}

static void
raw_ok(struct fx *f, int argc, const char **argv)
{
	redisReply	*r = raw(f, argc, argv);

	assert_non_null(r);
	assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
}

static long long
raw_int(struct fx *f, int argc, const char **argv)
{
	redisReply	*r = raw(f, argc, argv);
	long long	 v;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/* Starts redis-server on f->port; 0 when it answers PING. */
static int
redis_start(struct fx *f)
{
	char		 port[16];
	redisContext	*c;
	redisReply	*r;
	int		 i, status, fd;

	(void)snprintf(port, sizeof(port), "%d", f->port);
	f->pid = fork();
	if (f->pid == -1)
		return -1;
	if (f->pid == 0) {
		/* gone with the test, even if it crashes */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			(void)dup2(fd, 0);
			(void)dup2(fd, 1);
			(void)dup2(fd, 2);
		}
		execlp("redis-server", "redis-server", "--port", port,
		    "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		    (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
			f->pid = 0;
			return -1;
		}
		if ((c = raw_connect(f->port)) != NULL) {
			r = redisCommand(c, "PING");
			redisFree(c);
			if (r != NULL && r->type == REDIS_REPLY_STATUS) {
				freeReplyObject(r);
				return 0;
			}
			freeReplyObject(r);
		}
		(void)usleep(10000);
	}
	return -1;
}

static void
redis_stop(struct fx *f)
{
	if (f->pid <= 0)
		return;
	(void)kill(f->pid, SIGTERM);
	(void)waitpid(f->pid, NULL, 0);
	f->pid = 0;
}

static struct store_rec
rec(uint64_t first, uint64_t last, uint64_t expires, uint32_t count,
    int32_t value)
{
	struct store_rec	 r;

	r.first = first;
	r.last = last;
	r.expires = expires;
	r.count = count;
	r.value = value;
	return r;
}

static void
assert_rec_equal(const struct store_rec *a, const struct store_rec *b)
{
	assert_int_equal(a->first, b->first);
	assert_int_equal(a->last, b->last);
	assert_int_equal(a->expires, b->expires);
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->value, b->value);
}

static struct store *
open_conf(struct fx *f, const struct store_conf *c, unsigned flags)
{
	struct err	 e;
	struct store	*st;

	err_clear(&e);
	st = store_open(c, flags, &e);
	if (st == NULL)
		print_error("store_open: %s\n", e.msg);
	assert_non_null(st);
	assert_string_equal(store_backend_name(st),
	    f->backend == STORE_LMDB ? "lmdb" : "redis");
	return st;
}

/* The test's fixture; skips if the backend went missing (main() does
 * not run the Redis group without redis-server). */
static struct fx *
fx_of(void **state)
{
	struct fx	*f = *state;

	if (f->backend == STORE_REDIS && !f->have_redis)
		skip();
	return f;
}

/* ---- group and test set-up ---- */

static int
group_lmdb(void **state)
{
	*state = &fx_lmdb;
	return 0;
}

static int
group_redis(void **state)
{
	*state = &fx_redis;
	return 0;
}

static int
setup(void **state)
{
	struct fx	*f = *state;
	const char	*flush[] = { "FLUSHALL" };

	store_set_clock_offset(0);
	memset(&f->conf, 0, sizeof(f->conf));
	f->conf.backend = f->backend;
	f->st = NULL;
	if (f->backend == STORE_LMDB) {
		(void)str_copy(f->dir, "/tmp/portero-store-XXXXXX",
		    sizeof(f->dir));
		assert_non_null(mkdtemp(f->dir));
		(void)snprintf(f->path, sizeof(f->path), "%s/state.lmdb",
		    f->dir);
		f->conf.path = f->path;
		f->conf.max_size = 64 << 20;
	} else {
		if (!f->have_redis)
			return 0;
		(void)snprintf(f->server, sizeof(f->server), "127.0.0.1:%d",
		    f->port);
		f->servers[0] = f->server;
		f->conf.servers = f->servers;
		f->conf.nservers = 1;
		f->conf.prefix = "t:";
		f->conf.timeout_ms = 500;
		raw_ok(f, 1, flush);
	}
	f->st = open_conf(f, &f->conf, 0);
	return 0;
}

static int
teardown(void **state)
{
	struct fx	*f = *state;
	char		 p[128];

	store_close(f->st);
	f->st = NULL;
	store_set_clock_offset(0);
	if (f->backend == STORE_LMDB) {
		(void)unlink(f->path);
		(void)snprintf(p, sizeof(p), "%s-lock", f->path);
		(void)unlink(p);
		(void)rmdir(f->dir);
	}
	return 0;
}

/* ---- record form and key shape (no backend) ---- */

static void
test_rec_roundtrip(void **st)
{
	static const struct {
		uint64_t	f, l, x;
		uint32_t	c;
		int32_t		v;
	} rows[] = {
		{ 0, 0, 0, 0, 0 },
		{ 1700000000, 1700000100, 1700003600, 3, -7 },
		{ UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT32_MAX, INT32_MAX },
		{ 1, 2, 3, 4, INT32_MIN },
	};
	struct store_rec	 a, b;
	char			 buf[STORE_REC_MAX];
	size_t			 i;
	int			 n;

	(void)st;
	for (i = 0; i < NELEM(rows); i++) {
		a = rec(rows[i].f, rows[i].l, rows[i].x, rows[i].c, rows[i].v);
		n = store_rec_format(&a, buf, sizeof(buf));
		assert_true(n > 0 && (size_t)n < sizeof(buf));
		assert_int_equal(strlen(buf), (size_t)n);
		memset(&b, 0xa5, sizeof(b));
		assert_int_equal(store_rec_parse(buf, (size_t)n, &b), 0);
		assert_rec_equal(&a, &b);
	}
	a = rec(1700000000, 1700000100, 1700003600, 3, -7);
	assert_int_equal(store_rec_format(&a, buf, sizeof(buf)), 39);
	assert_string_equal(buf, "1 1700000000 1700000100 1700003600 3 -7");
	/* too small a buffer is refused, not cut */
	assert_int_equal(store_rec_format(&a, buf, 10), -1);
	/* the length bounds the parse, not a NUL */
	assert_int_equal(store_rec_parse("1 1 2 3 4 56", 11, &b), 0);
	assert_int_equal(b.value, 5);
}

static void
test_rec_reject(void **st)
{
	static const char *const bad[] = {
		"",
		"1",
		"1 ",
		"1 1 2 3 4",			/* missing field */
		"1 1 2 3 4 ",
		"1 1 2 3 4 5 ",			/* trailing garbage */
		"1 1 2 3 4 5 6",
		"1 1 2 3 4 5x",
		"1 1 2 3 4 5\n",
		"2 1 2 3 4 5",			/* version */
		"11 1 2 3 4 5",
		" 1 1 2 3 4 5",
		"1  1 2 3 4 5",
		"1 1 2 3 4 +5",
		"1 -1 2 3 4 5",		/* only value is signed */
		"1 1 2 3 -4 5",
		"1 1 2 3 4 -",
		"1 1 2 3 4 --5",
		"1 18446744073709551616 2 3 4 5",	/* overflow */
		"1 1 2 99999999999999999999 4 5",
		"1 1 2 3 4294967296 5",
		"1 1 2 3 4 2147483648",
		"1 1 2 3 4 -2147483649",
		"1 a 2 3 4 5",
		"garbage",
	};
	struct store_rec	 r;
	size_t			 i;

	(void)st;
	for (i = 0; i < NELEM(bad); i++)
		if (store_rec_parse(bad[i], strlen(bad[i]), &r) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(store_rec_parse("1 1 2 3 4294967295 -2147483648",
	    30, &r), 0);
	assert_int_equal(r.count, UINT32_MAX);
	assert_int_equal(r.value, INT32_MIN);
	/* an embedded NUL is garbage too */
	assert_int_equal(store_rec_parse("1 1 2 3 4 5\0", 12, &r), -1);
}

static void
test_key_shape(void **st)
{
	char	 key[STORE_KEY_MAX + 200], out[STORE_KEY_MAX + 1];
	char	 out2[STORE_KEY_MAX + 1];

	(void)st;
	store_key_shape("g|192.0.2.0/24|a@example.net|b@example.org", out);
	assert_string_equal(out, "g|192.0.2.0/24|a@example.net|b@example.org");
	/* exactly STORE_KEY_MAX bytes: kept */
	memset(key, 'k', STORE_KEY_MAX);
	key[STORE_KEY_MAX] = '\0';
	store_key_shape(key, out);
	assert_string_equal(out, key);
	/* one more: prefix, '#', 16 hex digits of FNV-1a 64 */
	key[STORE_KEY_MAX] = 'k';
	key[STORE_KEY_MAX + 1] = '\0';
	store_key_shape(key, out);
	assert_int_equal(strlen(out), STORE_KEY_MAX);
	assert_memory_equal(out, key, STORE_KEY_MAX - 17);
	assert_int_equal(out[STORE_KEY_MAX - 17], '#');
	/* a fixed vector: shapes must never change (gateways of different
	 * versions share a Redis) */
	memcpy(key, "g|", 2);
	memset(key + 2, 'x', 398);
	memcpy(key + 400, "|end", 5);
	store_key_shape(key, out);
	assert_string_equal(out + STORE_KEY_MAX - 17, "#2e908e3f37303673");
	/* keys that differ only past the kept prefix stay apart */
	key[401] = 'E';
	store_key_shape(key, out2);
	assert_memory_equal(out, out2, STORE_KEY_MAX - 17);
	assert_string_not_equal(out, out2);
}

/* ---- both backends ---- */

static void
test_roundtrip(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 a, b;
	struct err		 e;
	uint64_t		 now = store_now();

	a = rec(now - 10, now, now + 100, 3, -7);
	assert_int_equal(store_put(f->st, "g|192.0.2.0/24|a@ex.net|b@ex.org",
	    &a, &e), RC_OK);
	assert_int_equal(store_get(f->st, "g|192.0.2.0/24|a@ex.net|b@ex.org",
	    &b, &e), RC_OK);
	assert_rec_equal(&a, &b);
	/* overwrite */
	a.count = 4;
	a.value = 1;
	assert_int_equal(store_put(f->st, "g|192.0.2.0/24|a@ex.net|b@ex.org",
	    &a, &e), RC_OK);
	assert_int_equal(store_get(f->st, "g|192.0.2.0/24|a@ex.net|b@ex.org",
	    &b, &e), RC_OK);
	assert_rec_equal(&a, &b);
	assert_int_equal(store_del(f->st, "g|192.0.2.0/24|a@ex.net|b@ex.org",
	    &e), RC_OK);
	assert_int_equal(store_get(f->st, "g|192.0.2.0/24|a@ex.net|b@ex.org",
	    &b, &e), RC_NOTFOUND);
	assert_int_equal(store_del(f->st, "g|192.0.2.0/24|a@ex.net|b@ex.org",
	    &e), RC_NOTFOUND);
	/* UTF-8 bytes are allowed */
	assert_int_equal(store_put(f->st, "c|j\xc3\xb6rg@ex.org", &a, &e),
	    RC_OK);
	assert_int_equal(store_get(f->st, "c|j\xc3\xb6rg@ex.org", &b, &e),
	    RC_OK);
}

static void
test_notfound_invalid(void **state)
{
	static const char *const bad[] = { "", "a b", "a\tb", "a\x7f",
	    "a\nb", "\x01" };
	struct fx		*f = fx_of(state);
	struct store_rec	 a, b;
	struct err		 e;
	uint32_t		 n;
	size_t			 i;
	uint64_t		 before;

	assert_int_equal(store_get(f->st, "g|nothing", &b, &e), RC_NOTFOUND);
	a = rec(1, 1, store_now() + 100, 1, 0);
	for (i = 0; i < NELEM(bad); i++) {
		before = metrics_value(M.store_errors, "put");
		assert_int_equal(store_put(f->st, bad[i], &a, &e), RC_INVAL);
		assert_non_null(strstr(e.msg, "invalid key"));
		assert_int_equal(metrics_value(M.store_errors, "put"),
		    before + 1);
		assert_int_equal(store_get(f->st, bad[i], &b, &e), RC_INVAL);
		assert_int_equal(store_del(f->st, bad[i], &e), RC_INVAL);
		assert_int_equal(store_incr(f->st, bad[i], 10, &n, &e),
		    RC_INVAL);
	}
	assert_int_equal(store_scan(f->st, "a b", NULL, NULL, &e), RC_INVAL);
	assert_int_equal(store_incr(f->st, "b|x", 0, &n, &e), RC_INVAL);
	/* NOTFOUND is an answer, not an error */
	before = metrics_value(M.store_errors, "get");
	assert_int_equal(store_get(f->st, "g|nothing", &b, &e), RC_NOTFOUND);
	assert_int_equal(metrics_value(M.store_errors, "get"), before);
}

struct seen {
	size_t	 n;
	size_t	 stop_after;	/* 0: never */
	char	 keys[16][STORE_KEY_MAX + 1];
	uint32_t counts[16];
};

static int
collect(const char *key, const struct store_rec *r, void *arg)
{
	struct seen	*s = arg;

	if (s->n < NELEM(s->keys)) {
		(void)str_copy(s->keys[s->n], key, sizeof(s->keys[0]));
		s->counts[s->n] = r->count;
	}
	s->n++;
	return s->stop_after != 0 && s->n >= s->stop_after;
}

/* Index of key among the seen ones, or -1. */
static int
seen_idx(const struct seen *s, const char *key)
{
	size_t	 i;

	for (i = 0; i < s->n && i < NELEM(s->keys); i++)
		if (strcmp(s->keys[i], key) == 0)
			return (int)i;
	return -1;
}

static void
test_expiry(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 a, b;
	struct seen		 s;
	struct err		 e;
	uint64_t		 now = store_now();
	uint32_t		 n;

	a = rec(now, now, now + 100, 5, 0);
	assert_int_equal(store_put(f->st, "g|x", &a, &e), RC_OK);
	assert_int_equal(store_put(f->st, "g|y", &a, &e), RC_OK);
	store_set_clock_offset(99);
	assert_int_equal(store_get(f->st, "g|x", &b, &e), RC_OK);
	store_set_clock_offset(100);
	assert_int_equal(store_get(f->st, "g|x", &b, &e), RC_NOTFOUND);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "g|", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 0);
	/* incr treats an expired record as absent */
	assert_int_equal(store_incr(f->st, "g|y", 60, &n, &e), RC_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_get(f->st, "g|y", &b, &e), RC_OK);
	assert_int_equal(b.first, now + 100);
	assert_int_equal(b.expires, now + 160);
	store_set_clock_offset(0);

	/* writing a record that has already expired deletes the key */
	assert_int_equal(store_put(f->st, "g|z", &a, &e), RC_OK);
	a.expires = store_now();
	assert_int_equal(store_put(f->st, "g|z", &a, &e), RC_OK);
	assert_int_equal(store_get(f->st, "g|z", &b, &e), RC_NOTFOUND);
	assert_int_equal(store_del(f->st, "g|z", &e), RC_NOTFOUND);
}

static void
test_incr(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 b;
	struct err		 e;
	uint64_t		 now = store_now();
	uint32_t		 n, i;

	for (i = 1; i <= 5; i++) {
		assert_int_equal(store_incr(f->st, "b|192.0.2.7", 60, &n, &e),
		    RC_OK);
		assert_int_equal(n, i);
	}
	assert_int_equal(store_get(f->st, "b|192.0.2.7", &b, &e), RC_OK);
	assert_int_equal(b.count, 5);
	assert_true(b.first >= now && b.first <= now + 1);
	/* the window is fixed: later increments keep the expiry */
	assert_int_equal(b.expires, b.first + 60);
	store_set_clock_offset(30);
	assert_int_equal(store_incr(f->st, "b|192.0.2.7", 60, &n, &e), RC_OK);
	assert_int_equal(n, 6);
	assert_int_equal(store_get(f->st, "b|192.0.2.7", &b, &e), RC_OK);
	assert_int_equal(b.expires, b.first + 60);
	assert_true(b.last >= b.first + 30);
	assert_int_equal(b.value, 0);
	/* a new window after the expiry */
	store_set_clock_offset(61);
	assert_int_equal(store_incr(f->st, "b|192.0.2.7", 60, &n, &e), RC_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_get(f->st, "b|192.0.2.7", &b, &e), RC_OK);
	assert_int_equal(b.count, 1);
	assert_true(b.first >= now + 61);
	assert_int_equal(b.expires, b.first + 60);
	/* the counter keeps a value set by put */
	store_set_clock_offset(0);
	b = rec(now, now, now + 100, 7, 42);
	assert_int_equal(store_put(f->st, "b|v", &b, &e), RC_OK);
	assert_int_equal(store_incr(f->st, "b|v", 10, &n, &e), RC_OK);
	assert_int_equal(n, 8);
	assert_int_equal(store_get(f->st, "b|v", &b, &e), RC_OK);
	assert_int_equal(b.value, 42);
	assert_int_equal(b.expires, now + 100);
	assert_int_equal(b.first, now);
	/* the count saturates */
	b = rec(now, now, now + 100, UINT32_MAX, 0);
	assert_int_equal(store_put(f->st, "b|max", &b, &e), RC_OK);
	assert_int_equal(store_incr(f->st, "b|max", 10, &n, &e), RC_OK);
	assert_int_equal(n, UINT32_MAX);
}

static void
test_scan(void **state)
{
	static const char *const live[] = { "g|a|1", "g|a|2", "g|b|1", "w|a",
	    "x*1", "x?2", "xa3", "[k]", "x\\y" };
	struct fx		*f = fx_of(state);
	struct store_rec	 a;
	struct seen		 s;
	struct err		 e;
	uint64_t		 now = store_now();
	size_t			 i;

	for (i = 0; i < NELEM(live); i++) {
		a = rec(now, now, now + 100, (uint32_t)i + 1, 0);
		assert_int_equal(store_put(f->st, live[i], &a, &e), RC_OK);
	}
	a = rec(now, now, now + 5, 99, 0);
	assert_int_equal(store_put(f->st, "g|a|old", &a, &e), RC_OK);
	store_set_clock_offset(10);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "g|a|", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.counts[seen_idx(&s, "g|a|1")], 1);
	assert_int_equal(s.counts[seen_idx(&s, "g|a|2")], 2);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, NELEM(live));
	for (i = 0; i < NELEM(live); i++)
		assert_true(seen_idx(&s, live[i]) >= 0);

	/* glob characters in the prefix are literal */
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "x*", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "x*1");
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "x?", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "[", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "[k]");
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "x\\", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "x\\y");

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "zzz", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 0);

	/* fn stops the scan */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(store_scan(f->st, "", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 2);
}

/* Many keys: LMDB's scan goes through several batches. */
static void
test_scan_many(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 a;
	struct seen		 s;
	struct err		 e;
	char			 key[32];
	uint64_t		 now = store_now();
	int			 i;

	for (i = 0; i < 700; i++) {
		(void)snprintf(key, sizeof(key), "c|%04d@ex.org", i);
		a = rec(now, now, now + (i % 3 == 0 ? 5 : 100), 1, 0);
		assert_int_equal(store_put(f->st, key, &a, &e), RC_OK);
	}
	a = rec(now, now, now + 100, 1, 0);
	assert_int_equal(store_put(f->st, "d|after", &a, &e), RC_OK);
	store_set_clock_offset(10);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "c|", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 700 - 234);
	if (f->backend == STORE_LMDB)	/* key order */
		assert_string_equal(s.keys[0], "c|0001@ex.org");
}

static void
test_long_keys(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 a, b;
	struct seen		 s;
	struct err		 e;
	char			 k1[1100], k2[1100], sh1[STORE_KEY_MAX + 1];
	char			 sh2[STORE_KEY_MAX + 1];
	char			 rk[STORE_KEY_MAX + 8];
	const char		*exists[2] = { "EXISTS", rk };
	uint64_t		 now = store_now();

	memset(k1, 'a', sizeof(k1) - 2);
	k1[0] = 'g';
	k1[1] = '|';
	k1[sizeof(k1) - 2] = '1';
	k1[sizeof(k1) - 1] = '\0';
	memcpy(k2, k1, sizeof(k1));
	k2[sizeof(k2) - 2] = '2';
	a = rec(now, now, now + 100, 1, 0);
	assert_int_equal(store_put(f->st, k1, &a, &e), RC_OK);
	a.count = 2;
	assert_int_equal(store_put(f->st, k2, &a, &e), RC_OK);
	assert_int_equal(store_get(f->st, k1, &b, &e), RC_OK);
	assert_int_equal(b.count, 1);
	assert_int_equal(store_get(f->st, k2, &b, &e), RC_OK);
	assert_int_equal(b.count, 2);
	/* stored under the shaped key, the same on both backends */
	store_key_shape(k1, sh1);
	store_key_shape(k2, sh2);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "g|", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.counts[seen_idx(&s, sh1)], 1);
	assert_int_equal(s.counts[seen_idx(&s, sh2)], 2);
	if (f->backend == STORE_REDIS) {
		(void)snprintf(rk, sizeof(rk), "t:%s", sh1);
		assert_int_equal(raw_int(f, 2, exists), 1);
	}
	assert_int_equal(store_del(f->st, k1, &e), RC_OK);
	assert_int_equal(store_get(f->st, k1, &b, &e), RC_NOTFOUND);
	assert_int_equal(store_get(f->st, k2, &b, &e), RC_OK);
	assert_int_equal(store_incr(f->st, k1, 10, &b.count, &e), RC_OK);
	assert_int_equal(b.count, 1);
}

/* Writes value under key behind the store's back. */
static void
write_raw(struct fx *f, const char *key, const char *value, size_t vlen)
{
	if (f->backend == STORE_LMDB) {
		MDB_env	*env;
		MDB_txn	*txn;
		MDB_dbi	 dbi;
		MDB_val	 k, v;

		store_close(f->st);
		f->st = NULL;
		assert_int_equal(mdb_env_create(&env), 0);
		assert_int_equal(mdb_env_set_mapsize(env, f->conf.max_size),
		    0);
		assert_int_equal(mdb_env_open(env, f->path, MDB_NOSUBDIR,
		    0600), 0);
		assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
		k.mv_size = strlen(key);
		k.mv_data = (void *)(uintptr_t)key;
		v.mv_size = vlen;
		v.mv_data = (void *)(uintptr_t)value;
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
		mdb_env_close(env);
		f->st = open_conf(f, &f->conf, 0);
	} else {
		char		 rk[512];
		const char	*argv[3] = { "SET", rk, NULL };
		redisContext	*c = raw_connect(f->port);
		redisReply	*r;
		size_t		 len[3];

		(void)snprintf(rk, sizeof(rk), "t:%s", key);
		argv[2] = value;
		len[0] = 3;
		len[1] = strlen(rk);
		len[2] = vlen;
		assert_non_null(c);
		r = redisCommandArgv(c, 3, argv, len);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_STATUS);
		freeReplyObject(r);
		redisFree(c);
	}
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"garbage",
		"1 2 3",
		"1 1 2 99999999999 4 5 x",
		"2 1 1 99999999999 1 0",
		"1 1 1 99999999999 1 0 ",
		"1 1 1 99999999999 1 99999999999",
		"",
	};
	struct fx		*f = fx_of(state);
	struct store_rec	 b;
	struct seen		 s;
	struct err		 e;
	uint32_t		 n;
	char			 key[32];
	size_t			 i;

	for (i = 0; i < NELEM(bad); i++) {
		(void)snprintf(key, sizeof(key), "g|bad%zu", i);
		write_raw(f, key, bad[i], strlen(bad[i]));
	}
	write_raw(f, "g|nul", "1 1 1 99999999999 1\0 0", 22);
	/* the control: a good record written the same way is read */
	write_raw(f, "g|good", "1 1 1 99999999999 1 0", 21);
	assert_int_equal(store_get(f->st, "g|good", &b, &e), RC_OK);
	assert_int_equal(b.expires, 99999999999ULL);
	for (i = 0; i < NELEM(bad); i++) {
		(void)snprintf(key, sizeof(key), "g|bad%zu", i);
		if (store_get(f->st, key, &b, &e) != RC_NOTFOUND)
			fail_msg("\"%s\" was read", bad[i]);
	}
	assert_int_equal(store_get(f->st, "g|nul", &b, &e), RC_NOTFOUND);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "g|", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "g|good");
	/* incr starts over */
	assert_int_equal(store_incr(f->st, "g|bad0", 10, &n, &e), RC_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_incr(f->st, "g|bad0", 10, &n, &e), RC_OK);
	assert_int_equal(n, 2);
}

/* Purge removes the expired records only (Redis: nothing to do). */
static void
test_purge(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 a;
	struct seen		 s;
	struct err		 e;
	char			 key[32];
	uint64_t		 now = store_now();
	size_t			 removed = 99;
	int			 i;

	for (i = 0; i < 2500; i++) {
		(void)snprintf(key, sizeof(key), "g|%05d", i);
		a = rec(now, now, now + (i % 2 == 0 ? 10 : 1000), 1, 0);
		assert_int_equal(store_put(f->st, key, &a, &e), RC_OK);
	}
	assert_int_equal(store_purge(f->st, &removed, &e), RC_OK);
	assert_int_equal(removed, 0);
	store_set_clock_offset(100);
	assert_int_equal(store_purge(f->st, &removed, &e), RC_OK);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_scan(f->st, "g|", collect, &s, &e), RC_OK);
	assert_int_equal(s.n, 1250);
	if (f->backend == STORE_REDIS) {
		assert_int_equal(removed, 0);
		return;
	}
	/* over several transactions of at most 1000 deletions */
	assert_int_equal(removed, 1250);
	assert_int_equal(store_purge(f->st, &removed, &e), RC_OK);
	assert_int_equal(removed, 0);
	assert_int_equal(store_purge(f->st, NULL, &e), RC_OK);
	store_set_clock_offset(0);
	assert_int_equal(store_get(f->st, "g|00001", &a, &e), RC_OK);
	assert_int_equal(store_get(f->st, "g|00000", &a, &e), RC_NOTFOUND);
}

#define NTHREADS	8
#define NOPS		2000

struct worker {
	pthread_t	 t;
	struct store	*st;
	int		 id;
	int		 shared_incrs;
	int		 failures;
	struct err	 why;
};

static atomic_int	 counts_seen[NTHREADS * NOPS + 2];

static void
worker_fail(struct worker *w, const char *what, int i, const struct err *e)
{
	if (w->failures++ == 0)
		err_set(&w->why, "thread %d op %d: %s: %s", w->id, i, what,
		    e->msg);
}

static void *
worker_main(void *arg)
{
	struct worker		*w = arg;
	struct store_rec	 a, b;
	struct err		 e;
	int32_t			 last[16];
	uint32_t		 n, own = 0;
	char			 key[64], okey[32];
	uint64_t		 now;
	int			 i, j;
	enum rc			 rc;

	for (j = 0; j < 16; j++)
		last[j] = -1;
	(void)snprintf(okey, sizeof(okey), "b|own%d", w->id);
	for (i = 0; i < NOPS; i++) {
		j = (i * 7 + w->id) % 16;
		(void)snprintf(key, sizeof(key), "g|t%d|%d", w->id, j);
		now = store_now();
		err_clear(&e);
		switch (i % 4) {
		case 0:
			a = rec(now, now, now + 3600, 1, i);
			if (store_put(w->st, key, &a, &e) != RC_OK)
				worker_fail(w, "put", i, &e);
			else
				last[j] = i;
			break;
		case 1:
			if (store_incr(w->st, "b|shared", 3600, &n, &e) !=
			    RC_OK) {
				worker_fail(w, "incr shared", i, &e);
				break;
			}
			w->shared_incrs++;
			if (n < NELEM(counts_seen))
				atomic_fetch_add(&counts_seen[n], 1);
			break;
		case 2:
			rc = store_get(w->st, key, &b, &e);
			if (last[j] < 0 ? rc != RC_NOTFOUND : rc != RC_OK ||
			    b.value != last[j])
				worker_fail(w, "get", i, &e);
			break;
		default:
			if (store_incr(w->st, okey, 3600, &n, &e) != RC_OK ||
			    n != ++own)
				worker_fail(w, "incr own", i, &e);
			break;
		}
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct fx		*f = fx_of(state);
	struct worker		 w[NTHREADS];
	struct store_rec	 b;
	struct err		 e;
	int			 i, total = 0;

	for (i = 0; i < (int)NELEM(counts_seen); i++)
		atomic_store(&counts_seen[i], 0);
	for (i = 0; i < NTHREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].st = f->st;
		w[i].id = i;
		assert_int_equal(pthread_create(&w[i].t, NULL, worker_main,
		    &w[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		(void)pthread_join(w[i].t, NULL);
		if (w[i].failures > 0)
			fail_msg("%d failures, first: %s", w[i].failures,
			    w[i].why.msg);
		total += w[i].shared_incrs;
	}
	assert_int_equal(total, NTHREADS * NOPS / 4);
	assert_int_equal(store_get(f->st, "b|shared", &b, &e), RC_OK);
	assert_int_equal(b.count, total);
	/* every count handed out exactly once: the increments are atomic */
	for (i = 1; i <= total; i++)
		if (atomic_load(&counts_seen[i]) != 1)
			fail_msg("count %d returned %d times", i,
			    atomic_load(&counts_seen[i]));
	assert_int_equal(store_get(f->st, "b|own3", &b, &e), RC_OK);
	assert_int_equal(b.count, NOPS / 4);
}

/* Two gateways: Redis handles share records; a second LMDB open of the
 * same file in one process is refused (LMDB's locks are per process). */
static void
test_two_handles(void **state)
{
	struct fx		*f = fx_of(state);
	struct store		*st2;
	struct store_rec	 a, b;
	struct err		 e;
	uint64_t		 now = store_now();
	uint32_t		 n;

	if (f->backend == STORE_LMDB) {
		err_clear(&e);
		assert_null(store_open(&f->conf, 0, &e));
		assert_non_null(strstr(e.msg, "already open"));
		/* the first handle still works */
		a = rec(now, now, now + 100, 1, 0);
		assert_int_equal(store_put(f->st, "w|a", &a, &e), RC_OK);
		return;
	}
	st2 = open_conf(f, &f->conf, 0);
	a = rec(now, now, now + 100, 9, 1);
	assert_int_equal(store_put(f->st, "w|192.0.2.0/24", &a, &e), RC_OK);
	assert_int_equal(store_get(st2, "w|192.0.2.0/24", &b, &e), RC_OK);
	assert_rec_equal(&a, &b);
	assert_int_equal(store_incr(f->st, "b|x", 60, &n, &e), RC_OK);
	assert_int_equal(store_incr(st2, "b|x", 60, &n, &e), RC_OK);
	assert_int_equal(n, 2);
	assert_int_equal(store_del(st2, "w|192.0.2.0/24", &e), RC_OK);
	assert_int_equal(store_get(f->st, "w|192.0.2.0/24", &b, &e),
	    RC_NOTFOUND);
	store_close(st2);
}

/* ---- LMDB only ---- */

static uint64_t
file_size(const char *path)
{
	struct stat	 sb;

	assert_int_equal(stat(path, &sb), 0);
	return (uint64_t)sb.st_size;
}

/* Fills a 1 MB map; returns how many distinct keys went in. */
static int
fill(struct store *st, const char *path, int from, uint64_t now,
    struct err *e)
{
	struct store_rec	 a;
	char			 key[96];
	int			 i;
	enum rc			 rc = RC_OK;

	a = rec(now, now, now + 100, 1, 0);
	for (i = from; i < from + 100000; i++) {
		(void)snprintf(key, sizeof(key), "g|198.51.100.0/24|"
		    "sender%d@example.net|rcpt@example.org", i);
		if ((rc = store_put(st, key, &a, e)) != RC_OK)
			break;
		if (i % 500 == 0)
			assert_true(file_size(path) <= 1 << 20);
	}
	assert_int_equal(rc, RC_TEMP);
	return i - from;
}

static void
test_lmdb_full(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 a;
	struct err		 e;
	uint64_t		 now = store_now();
	uint64_t		 before;
	size_t			 removed;
	uint32_t		 n;
	int			 i, got, again;

	store_close(f->st);
	f->conf.max_size = 1 << 20;
	f->st = open_conf(f, &f->conf, STORE_NOSYNC);
	before = metrics_value(M.store_errors, "put");
	got = fill(f->st, f->path, 0, now, &e);
	assert_true(got > 1000);
	assert_non_null(strstr(e.msg, "store full"));
	assert_non_null(strstr(e.msg, "1048576"));
	assert_int_equal(metrics_value(M.store_errors, "put"), before + 1);
	assert_true(file_size(f->path) <= 1 << 20);
	/* new keys are refused, existing ones may still change, and
	 * delete works */
	assert_int_equal(store_incr(f->st, "b|new", 60, &n, &e), RC_TEMP);
	a = rec(now, now, now + 100, 5, 0);
	assert_int_equal(store_put(f->st, "g|198.51.100.0/24|sender1@"
	    "example.net|rcpt@example.org", &a, &e), RC_OK);
	assert_int_equal(store_del(f->st, "g|198.51.100.0/24|sender2@"
	    "example.net|rcpt@example.org", &e), RC_OK);
	/* after the expiry, purge makes room again */
	store_set_clock_offset(200);
	assert_int_equal(store_purge(f->st, &removed, &e), RC_OK);
	assert_int_equal(removed, (size_t)got - 1);
	now = store_now();
	for (i = 0; i < 3; i++) {
		again = fill(f->st, f->path, 1000000 * (i + 1), now, &e);
		assert_true(again > got * 9 / 10);
		store_set_clock_offset(200 + 200 * (i + 1));
		assert_int_equal(store_purge(f->st, &removed, &e), RC_OK);
		assert_int_equal(removed, (size_t)again);
		now = store_now();
	}
	assert_true(file_size(f->path) <= 1 << 20);
}

/* The purger thread, woken by a full map, deletes the expired records. */
static void
test_lmdb_purger(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 a, b;
	struct err		 e;
	uint64_t		 now = store_now(), t0;
	enum rc			 rc;

	store_close(f->st);
	f->conf.max_size = 1 << 20;
	f->st = open_conf(f, &f->conf, STORE_PURGER | STORE_NOSYNC);
	(void)fill(f->st, f->path, 0, now, &e);
	assert_non_null(strstr(e.msg, "in the background"));
	store_set_clock_offset(200);
	a = rec(now, now, store_now() + 100, 1, 0);
	t0 = now_ms();
	do {
		(void)usleep(100000);
		rc = store_put(f->st, "g|after", &a, &e);
	} while (rc != RC_OK && now_ms() - t0 < 15000);
	assert_int_equal(rc, RC_OK);
	assert_int_equal(store_get(f->st, "g|198.51.100.0/24|sender1@"
	    "example.net|rcpt@example.org", &b, &e), RC_NOTFOUND);
}

/* ---- Redis only ---- */

static void
test_redis_ttl(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 a, b;
	struct err		 e;
	const char		*ttl[2] = { "TTL", "t:g|ttl" };
	const char		*ttl2[2] = { "TTL", "t:b|ttl" };
	const char		*exists[2] = { "EXISTS", "t:g|short" };
	uint64_t		 now = store_now();
	uint32_t		 n;
	long long		 t;

	a = rec(now, now, now + 100, 1, 0);
	assert_int_equal(store_put(f->st, "g|ttl", &a, &e), RC_OK);
	t = raw_int(f, 2, ttl);
	assert_true(t >= 98 && t <= 100);
	/* incr: EX on creation, the TTL kept after */
	assert_int_equal(store_incr(f->st, "b|ttl", 50, &n, &e), RC_OK);
	assert_int_equal(store_incr(f->st, "b|ttl", 500, &n, &e), RC_OK);
	assert_int_equal(n, 2);
	t = raw_int(f, 2, ttl2);
	assert_true(t >= 48 && t <= 50);
	/* Redis expires keys itself (real time) */
	a = rec(now, now, store_now() + 1, 1, 0);
	assert_int_equal(store_put(f->st, "g|short", &a, &e), RC_OK);
	assert_int_equal(raw_int(f, 2, exists), 1);
	(void)usleep(2200000);
	assert_int_equal(raw_int(f, 2, exists), 0);
	assert_int_equal(store_get(f->st, "g|short", &b, &e), RC_NOTFOUND);
}

static void
test_redis_outage(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 a, b;
	struct err		 e;
	uint64_t		 now = store_now(), t0;
	uint32_t		 n;
	int			 i;
	enum rc			 rc;

	a = rec(now, now, now + 100, 1, 0);
	assert_int_equal(store_put(f->st, "g|k", &a, &e), RC_OK);
	redis_stop(f);
	t0 = now_ms();
	assert_int_equal(store_get(f->st, "g|k", &b, &e), RC_TEMP);
	assert_true(now_ms() - t0 < 1000);
	/* then at once, without trying to connect, during the backoff */
	for (i = 0; i < 20; i++) {
		t0 = now_ms();
		err_clear(&e);
		assert_int_equal(store_put(f->st, "g|k", &a, &e), RC_TEMP);
		assert_true(now_ms() - t0 < 50);
		assert_non_null(strstr(e.msg, "no server reachable"));
		assert_non_null(strstr(e.msg, f->server));
		t0 = now_ms();
		assert_int_equal(store_incr(f->st, "b|k", 10, &n, &e),
		    RC_TEMP);
		assert_true(now_ms() - t0 < 50);
	}
	/* a new server on the same port: back after the backoff */
	assert_int_equal(redis_start(f), 0);
	t0 = now_ms();
	do {
		rc = store_put(f->st, "g|k", &a, &e);
		if (rc != RC_OK)
			(void)usleep(50000);
	} while (rc != RC_OK && now_ms() - t0 < 40000);
	assert_int_equal(rc, RC_OK);
	assert_int_equal(store_get(f->st, "g|k", &b, &e), RC_OK);
}

static void
test_redis_failover(void **state)
{
	struct fx		*f = fx_of(state);
	struct fx		 first;
	struct store_conf	 c = f->conf;
	struct store		*st2;
	struct store_rec	 a, b;
	struct err		 e;
	char			 dead[32], *servers[2];
	const char		*exists[2] = { "EXISTS", "t:g|back" };
	uint64_t		 now = store_now(), t0;
	int			 i;

	memset(&first, 0, sizeof(first));
	first.port = free_port();
	(void)snprintf(dead, sizeof(dead), "127.0.0.1:%d", first.port);
	servers[0] = dead;
	servers[1] = f->server;
	c.servers = servers;
	c.nservers = 2;
	st2 = open_conf(f, &c, 0);
	a = rec(now, now, now + 100, 1, 0);
	for (i = 0; i < 50; i++) {
		t0 = now_ms();
		assert_int_equal(store_put(st2, "g|f", &a, &e), RC_OK);
		assert_int_equal(store_get(f->st, "g|f", &b, &e), RC_OK);
		if (i > 0)
			assert_true(now_ms() - t0 < 100);
	}
	/* the first server comes up: used again after its backoff */
	assert_int_equal(redis_start(&first), 0);
	t0 = now_ms();
	do {
		(void)usleep(50000);
		assert_int_equal(store_put(st2, "g|back", &a, &e), RC_OK);
	} while (raw_int(&first, 2, exists) == 0 && now_ms() - t0 < 10000);
	assert_int_equal(raw_int(&first, 2, exists), 1);
	/* it goes away again: the same operation goes on to the second */
	redis_stop(&first);
	t0 = now_ms();
	assert_int_equal(store_put(st2, "g|again", &a, &e), RC_OK);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(store_get(f->st, "g|again", &b, &e), RC_OK);
	store_close(st2);
	/* malformed addresses are refused at open */
	servers[0] = "::1:6379";
	c.nservers = 1;
	assert_null(store_open(&c, 0, &e));
	assert_non_null(strstr(e.msg, "bad server"));
	servers[0] = "[::1]:70000";
	assert_null(store_open(&c, 0, &e));
	servers[0] = "unix:relative";
	assert_null(store_open(&c, 0, &e));
	c.nservers = 0;
	assert_null(store_open(&c, 0, &e));
}

static void
test_redis_auth_db(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_conf	 c = f->conf;
	struct store		*st2;
	struct store_rec	 a, b;
	struct err		 e;
	const char		*setpw[4] = { "CONFIG", "SET", "requirepass",
	    "s3cret" };
	const char		*auth[2] = { "AUTH", "s3cret" };
	const char		*exists3[2] = { "EXISTS", "t:w|db" };
	uint64_t		 now = store_now();
	redisContext		*rc;
	redisReply		*r;

	/* SELECT */
	c.db = 3;
	st2 = open_conf(f, &c, 0);
	a = rec(now, now, now + 100, 1, 0);
	assert_int_equal(store_put(st2, "w|db", &a, &e), RC_OK);
	assert_int_equal(store_get(f->st, "w|db", &b, &e), RC_NOTFOUND);
	assert_int_equal(raw_int(f, 2, exists3), 0);
	store_close(st2);

	/* AUTH */
	raw_ok(f, 4, setpw);
	c.db = 0;
	c.password = "s3cret";
	st2 = open_conf(f, &c, 0);
	assert_int_equal(store_put(st2, "w|pw", &a, &e), RC_OK);
	assert_int_equal(store_get(st2, "w|pw", &b, &e), RC_OK);
	store_close(st2);
	c.password = "Zq81xx";
	st2 = open_conf(f, &c, 0);
	assert_int_equal(store_get(st2, "w|pw", &b, &e), RC_TEMP);
	assert_non_null(strstr(e.msg, "AUTH"));
	assert_null(strstr(e.msg, "Zq81xx"));	/* no password in logs */
	store_close(st2);
	/* back to no password for the other tests */
	rc = raw_connect(f->port);
	assert_non_null(rc);
	r = redisCommandArgv(rc, 2, auth, NULL);
	assert_non_null(r);
	freeReplyObject(r);
	r = redisCommand(rc, "CONFIG SET requirepass %s", "");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	redisFree(rc);
}

/* INFO's total_connections_received. */
static long long
connections_received(struct fx *f)
{
	const char	*info[2] = { "INFO", "stats" };
	redisReply	*r = raw(f, 2, info);
	const char	*p;
	long long	 n;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	p = strstr(r->str, "total_connections_received:");
	assert_non_null(p);
	n = strtoll(p + strlen("total_connections_received:"), NULL, 10);
	freeReplyObject(r);
	return n;
}

/* Sequential operations reuse one pooled connection, also after an
 * error reply. */
static void
test_redis_pool(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 a, b;
	struct err		 e;
	const char		*lpush[3] = { "LPUSH", "t:g|list", "x" };
	uint64_t		 now = store_now();
	long long		 n0;
	int			 i;

	raw_ok(f, 3, lpush);
	n0 = connections_received(f);
	a = rec(now, now, now + 100, 1, 0);
	for (i = 0; i < 100; i++) {
		assert_int_equal(store_put(f->st, "g|p", &a, &e), RC_OK);
		assert_int_equal(store_get(f->st, "g|p", &b, &e), RC_OK);
		assert_int_equal(store_get(f->st, "g|list", &b, &e), RC_TEMP);
	}
	/* the store's one connection and the INFO below */
	assert_int_equal(connections_received(f) - n0, 2);
}

/*
 * A server that takes connections but never answers (a listening socket
 * nobody accepts on): the first command times out, then operations fail
 * at once during the backoff; a failed probe doubles the backoff.
 */
static void
test_redis_hang(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_conf	 c = f->conf;
	struct store		*st2;
	struct store_rec	 b;
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	struct err		 e;
	char			 addr[32], *servers[1];
	uint64_t		 t0, dt;
	int			 fd, i;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	(void)snprintf(addr, sizeof(addr), "127.0.0.1:%d",
	    ntohs(sin.sin_port));
	servers[0] = addr;
	c.servers = servers;
	c.nservers = 1;
	c.timeout_ms = 200;
	st2 = open_conf(f, &c, 0);

	t0 = now_ms();
	assert_int_equal(store_get(st2, "g|h", &b, &e), RC_TEMP);
	dt = now_ms() - t0;
	assert_true(dt >= 150 && dt < 1000);
	assert_non_null(strstr(e.msg, "no answer within 200 ms"));
	for (i = 0; i < 10; i++) {
		t0 = now_ms();
		assert_int_equal(store_get(st2, "g|h", &b, &e), RC_TEMP);
		assert_true(now_ms() - t0 < 50);
		assert_non_null(strstr(e.msg, "no server reachable"));
	}
	/* after the first backoff (1 s) one caller probes, and waits */
	(void)usleep(1100000);
	t0 = now_ms();
	assert_int_equal(store_get(st2, "g|h", &b, &e), RC_TEMP);
	assert_true(now_ms() - t0 >= 150);
	/* the failed probe doubled the backoff: still down 1.1 s later */
	(void)usleep(1100000);
	t0 = now_ms();
	assert_int_equal(store_get(st2, "g|h", &b, &e), RC_TEMP);
	assert_true(now_ms() - t0 < 50);
	store_close(st2);
	close(fd);
}

/* A reply of the wrong type is an error, not a crash. */
static void
test_redis_wrongtype(void **state)
{
	struct fx		*f = fx_of(state);
	struct store_rec	 a, b;
	struct err		 e;
	const char		*lpush[3] = { "LPUSH", "t:g|list", "x" };
	uint32_t		 n;
	uint64_t		 now = store_now();

	raw_ok(f, 3, lpush);
	assert_int_equal(store_get(f->st, "g|list", &b, &e), RC_TEMP);
	assert_non_null(strstr(e.msg, "WRONGTYPE"));
	assert_int_equal(store_incr(f->st, "g|list", 10, &n, &e), RC_TEMP);
	/* the connection is still good */
	a = rec(now, now, now + 100, 1, 0);
	assert_int_equal(store_put(f->st, "g|ok", &a, &e), RC_OK);
	assert_int_equal(store_get(f->st, "g|ok", &b, &e), RC_OK);
}

#define T(fn)	cmocka_unit_test_setup_teardown(fn, setup, teardown)
/* The tests both backends pass. */
#define COMMON	T(test_roundtrip), T(test_notfound_invalid), \
	T(test_expiry), T(test_incr), T(test_scan), T(test_scan_many), \
	T(test_long_keys), T(test_malformed), T(test_purge), \
	T(test_threads), T(test_two_handles)

int
main(void)
{
	const struct CMUnitTest rec_tests[] = {
		cmocka_unit_test(test_rec_roundtrip),
		cmocka_unit_test(test_rec_reject),
		cmocka_unit_test(test_key_shape),
	};
	const struct CMUnitTest lmdb_tests[] = {
		COMMON,
		T(test_lmdb_full),
		T(test_lmdb_purger),
	};
	const struct CMUnitTest redis_tests[] = {
		COMMON,
		T(test_redis_ttl),
		T(test_redis_failover),
		T(test_redis_auth_db),
		T(test_redis_wrongtype),
		T(test_redis_pool),
		T(test_redis_hang),
		T(test_redis_outage),
	};
	int	 rc = 0;

	metrics_init();
	rc |= cmocka_run_group_tests_name("store-rec", rec_tests, NULL, NULL);
	rc |= cmocka_run_group_tests_name("store-lmdb", lmdb_tests,
	    group_lmdb, NULL);
	/*
	 * Without redis-server the group is reported as one skip: cmocka's
	 * TAP output writes skipped tests as "not ok", which tests/run.sh
	 * would count as failures.
	 */
	(void)signal(SIGPIPE, SIG_IGN);
	fx_redis.port = free_port();
	fx_redis.have_redis = redis_start(&fx_redis) == 0;
	if (fx_redis.have_redis) {
		rc |= cmocka_run_group_tests_name("store-redis", redis_tests,
		    group_redis, NULL);
		redis_stop(&fx_redis);
	} else
		printf("ok - store-redis # SKIP redis-server not installed or "
		    "did not start\n");
	return rc;
}
